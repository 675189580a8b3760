"""Vertical diffusion: Thomas solver, kernel vs dense NumPy solve, analytic cases (SCIENCE.md 3.2,
10.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import solve_banded

from aqforecast.kernels import diffusion as kdiff
from aqforecast.transport import VerticalMixing

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("n", [1, 2, 5, 40])
def test_thomas_matches_solve_banded(n):
    a = RNG.uniform(-1, 0, n)
    c = RNG.uniform(-1, 0, n)
    b = 1.0 + np.abs(a) + np.abs(c) + RNG.uniform(0, 1, n)
    d = RNG.normal(size=n)
    x = np.empty(n)
    kdiff.thomas_solve(a, b, c, d, x, np.empty(n))
    ab = np.zeros((3, n))
    ab[0, 1:] = c[:-1]
    ab[1] = b
    ab[2, :-1] = a[1:]
    np.testing.assert_allclose(x, solve_banded((1, 1), ab, d), rtol=1e-12, atol=1e-14)
    dense = np.diag(b) + np.diag(a[1:], -1) + np.diag(c[:-1], 1)
    np.testing.assert_allclose(x, np.linalg.solve(dense, d), rtol=1e-12, atol=1e-14)


def diffusion_reference(q, rho_dz, cond, dep, emis, dt, theta):
    """Dense NumPy solve, column by column, of SCIENCE.md 3.2; q (nspec, nz, ny, nx) interior."""
    nspec, nz, ny, nx = q.shape
    out = np.empty_like(q)
    deposited = np.empty((nspec, ny, nx))
    for j in range(ny):
        for i in range(nx):
            g = cond[:, j, i].copy()
            g[0] = g[nz] = 0.0
            md = rho_dz[:, j, i]
            lap = np.zeros((nz, nz))  # D(q) = lap @ q, kg m-2 s-1
            for k in range(nz):
                lap[k, k] = -(g[k] + g[k + 1])
                if k > 0:
                    lap[k, k - 1] = g[k]
                if k < nz - 1:
                    lap[k, k + 1] = g[k + 1]
            for s in range(nspec):
                lhs = np.diag(md) - dt * theta * lap
                lhs[0, 0] += dt * dep[s, j, i]
                rhs = md * q[s, :, j, i] + dt * (1 - theta) * lap @ q[s, :, j, i]
                ne = emis.shape[1]
                rhs[:ne] += dt * emis[s, :, j, i]
                x = np.linalg.solve(lhs, rhs)
                out[s, :, j, i] = x
                deposited[s, j, i] = dt * dep[s, j, i] * x[0]
    return out, deposited


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 1, 3), (7, 4, 3), (12, 2, 2)])
@pytest.mark.parametrize("theta", [1.0, 0.5])
@pytest.mark.parametrize("h", [0, 2])
def test_vertical_diffusion_kernel_matches_dense_solve(shape, theta, h):
    nz, ny, nx = shape
    nspec, ne = 3, min(2, nz)
    q = RNG.uniform(0, 1, (nspec, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    rho_dz = RNG.uniform(20, 80, shape)
    cond = RNG.uniform(0, 5, (nz + 1, ny, nx))
    dep = RNG.uniform(0, 0.02, (nspec, ny, nx))
    emis = RNG.uniform(0, 1e-3, (nspec, ne, ny, nx))
    inner = np.s_[:, h:h + nz, h:h + ny, h:h + nx]
    ref, ref_dep = diffusion_reference(q[inner].copy(), rho_dz, cond, dep, emis, 60.0, theta)
    ghosts = q.copy()
    deposited = np.empty((nspec, ny, nx))
    kdiff.vertical_diffusion(q, h, rho_dz, cond, dep, emis, 60.0, theta, deposited)
    np.testing.assert_allclose(q[inner], ref, rtol=1e-11)
    np.testing.assert_allclose(deposited, ref_dep, rtol=1e-11)
    mask = np.ones(q.shape, bool)
    mask[inner] = False
    np.testing.assert_array_equal(q[mask], ghosts[mask])


def test_conductance_kernel():
    nz, ny, nx = 5, 2, 3
    rho = RNG.uniform(0.8, 1.2, (nz, ny, nx))
    dz = RNG.uniform(20, 200, (nz, ny, nx))
    zc = np.cumsum(dz, axis=0) - dz / 2
    kz = RNG.uniform(0.1, 50, (nz + 1, ny, nx))
    out = np.empty((nz + 1, ny, nx))
    kdiff.diffusion_conductance(rho, kz, zc, out)
    ref = 0.5 * (rho[1:] + rho[:-1]) * kz[1:-1] / np.diff(zc, axis=0)
    np.testing.assert_allclose(out[1:-1], ref, rtol=1e-14)
    assert (out[0] == 0).all() and (out[-1] == 0).all()


def _column_operator(nz, dz, kz_value, nspec=1, rho=1.2, halo=0):
    op = VerticalMixing((nz, 1, 1), nspec=nspec, halo=halo)
    op.set_met(np.full((nz, 1, 1), rho), np.full((nz, 1, 1), dz),
               np.full((nz + 1, 1, 1), kz_value))
    return op


def test_gaussian_puff_against_analytic():
    """Constant K, reflecting ground: q = Gaussian + image (SCIENCE.md 10.2.1), 400 x 5 m layers."""
    nz, dz, kz, H, s0 = 400, 5.0, 10.0, 300.0, 50.0
    dt, nsteps = 2.0, 500
    op = _column_operator(nz, dz, kz)
    z = (np.arange(nz) + 0.5) * dz

    def analytic(t):
        s2 = s0 ** 2 + 2 * kz * t
        return (np.exp(-(z - H) ** 2 / (2 * s2)) + np.exp(-(z + H) ** 2 / (2 * s2))) / math.sqrt(
            2 * math.pi * s2)

    q = analytic(0.0)[None, :, None, None].copy()
    mass0 = (q * 1.2 * dz).sum()
    for _ in range(nsteps):
        op(q, dt)
    exact = analytic(dt * nsteps)
    err = np.abs(q[0, :, 0, 0] - exact).max() / exact.max()
    assert err < 2e-3
    assert (q * 1.2 * dz).sum() == pytest.approx(mass0, rel=1e-13)
    # second moment about the ground image: variance grows as 2 K t
    zc = (q[0, :, 0, 0] * z).sum() / q.sum()
    assert zc == pytest.approx((exact * z).sum() / exact.sum(), rel=1e-3)


def test_mass_conservation_with_emissions_no_deposition():
    nz, ny, nx, nspec = 15, 3, 4, 2
    op = VerticalMixing((nz, ny, nx), nspec=nspec, halo=1, cell_area=np.full((ny, nx), 9e6))
    rho = RNG.uniform(0.6, 1.2, (nz, ny, nx))
    dz = RNG.uniform(20, 400, (nz, ny, nx))
    op.set_met(rho, dz, RNG.uniform(0.01, 200, (nz + 1, ny, nx)))
    q = RNG.uniform(0, 1e-6, (nspec, nz + 2, ny + 2, nx + 2))
    emis = RNG.uniform(0, 1e-9, (nspec, 3, ny, nx))
    inner = np.s_[:, 1:-1, 1:-1, 1:-1]
    m0 = (q[inner] * rho * dz).sum(axis=(1, 2, 3))
    for _ in range(50):
        dep = op(q, 300.0, emissions=emis)
        assert (dep == 0).all()
    m1 = (q[inner] * rho * dz).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(m1, m0 + 50 * 300.0 * emis.sum(axis=(1, 2, 3)), rtol=1e-12)
    assert (q >= 0).all()


def test_deposition_decay_well_mixed():
    """Well-mixed layer h = 1000 m, v_d = 1 cm/s: q(t) = q0 exp(-v_d t / h); budget closes."""
    nz, dz, vd, dt, nsteps = 20, 50.0, 0.01, 60.0, 360
    op = _column_operator(nz, dz, 1.0e4, nspec=2, halo=1)
    q = np.ones((2, nz + 2, 3, 3))
    vdep = np.array([vd, 0.0])[:, None, None] * np.ones((2, 1, 1))
    deposited = np.zeros(2)
    for _ in range(nsteps):
        deposited += op(q, dt, deposition_velocity=vdep)
    t = dt * nsteps
    mean = q[0, 1:-1, 1, 1].mean()
    assert mean == pytest.approx(math.exp(-vd * t / (nz * dz)), rel=2e-3)
    # backward Euler: exactly (1 + v_d dt / h)^-n for a perfectly mixed column, to mixing error
    assert mean == pytest.approx((1 + vd * dt / (nz * dz)) ** -nsteps, rel=2e-3)
    column0 = 1.2 * nz * dz
    assert deposited[0] + (q[0, 1:-1, 1, 1] * 1.2 * dz).sum() == pytest.approx(column0, rel=1e-12)
    assert deposited[1] == 0.0
    np.testing.assert_allclose(q[1, 1:-1, 1, 1], 1.0, rtol=1e-13)


def test_vertical_mixing_validation():
    op = VerticalMixing((3, 2, 2), nspec=1)
    with pytest.raises(RuntimeError, match="set_met"):
        op(np.zeros((1, 3, 2, 2)), 10.0)
    with pytest.raises(ValueError, match=r"kz has shape \(3, 2, 2\), expected \(4, 2, 2\)"):
        op.set_met(np.ones((3, 2, 2)), np.ones((3, 2, 2)), np.ones((3, 2, 2)))


def _column_thomas_reference(q, h, rho_dz, cond, dep, emis, dt, theta):
    """Straightforward per-column reference with :func:`thomas_solve` (SCIENCE.md 3.2, increment
    form); q (nspec, nz+2h, ny+2h, nx+2h) is not modified. Returns (interior q, deposited)."""
    nspec = q.shape[0]
    nz, ny, nx = rho_dz.shape
    ne = emis.shape[1]
    out = q[:, h:h + nz, h:h + ny, h:h + nx].copy()
    deposited = np.empty((nspec, ny, nx))
    x, work = np.empty(nz), np.empty(nz)
    for j in range(ny):
        for i in range(nx):
            inv = dt / rho_dz[:, j, i]
            glo = np.zeros(nz)
            ghi = np.zeros(nz)
            glo[1:] = inv[1:] * cond[1:nz, j, i]
            ghi[:-1] = inv[:-1] * cond[1:nz, j, i]
            a, c = -theta * glo, -theta * ghi
            for s in range(nspec):
                col = out[s, :, j, i]
                b = 1.0 - a - c
                d = np.zeros(nz)
                d[1:] -= glo[1:] * (col[1:] - col[:-1])
                d[:-1] += ghi[:-1] * (col[1:] - col[:-1])
                d[:ne] += dt * emis[s, :, j, i] / rho_dz[:ne, j, i]
                dep_coef = dt * dep[s, j, i] / rho_dz[0, j, i]
                b[0] += dep_coef
                d[0] -= dep_coef * col[0]
                kdiff.thomas_solve(a, b, c, d, x, work)
                deposited[s, j, i] = dt * dep[s, j, i] * (col[0] + x[0])
                out[s, :, j, i] = col + x
    return out, deposited


@pytest.mark.parametrize("nspec, nz, ny, nx, ne, h", [
    (1, 1, 3, 1, 0, 0), (2, 1, 2, 5, 1, 1), (3, 2, 3, 1, 2, 2), (1, 2, 1, 9, 0, 1),
    (4, 7, 5, 13, 3, 2), (2, 20, 4, 37, 2, 0), (5, 12, 3, 64, 12, 3), (1, 30, 2, 8, 0, 2)])
@pytest.mark.parametrize("theta", [1.0, 0.5])
def test_vertical_diffusion_kernel_matches_column_thomas(nspec, nz, ny, nx, ne, h, theta):
    """The row-vectorised kernel agrees with a plain column-by-column thomas_solve to round-off,
    ghosts untouched."""
    rng = np.random.default_rng(1000 * nz + 10 * nx + nspec)
    q = rng.uniform(0, 1, (nspec, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    rho_dz = rng.uniform(5, 500, (nz, ny, nx))
    cond = rng.uniform(0, 5, (nz + 1, ny, nx)) * (rng.uniform(size=(nz + 1, ny, nx)) > 0.1)
    dep = rng.uniform(0, 0.05, (nspec, ny, nx)) * (rng.uniform(size=(nspec, ny, nx)) > 0.3)
    emis = rng.uniform(0, 1e-3, (nspec, ne, ny, nx))
    ref, ref_dep = _column_thomas_reference(q, h, rho_dz, cond, dep, emis, 120.0, theta)
    before = q.copy()
    deposited = np.full((nspec, ny, nx), np.nan)
    kdiff.vertical_diffusion(q, h, rho_dz, cond, dep, emis, 120.0, theta, deposited)
    inner = np.s_[:, h:h + nz, h:h + ny, h:h + nx]
    # the kernel multiplies by reciprocal pivots (a few ulp of the O(1) column values apart from
    # thomas_solve's divisions; a cancelling q + x near 0 keeps that absolute size)
    np.testing.assert_allclose(q[inner], ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(deposited, ref_dep, rtol=1e-13, atol=1e-300)
    mask = np.ones(q.shape, bool)
    mask[inner] = False
    np.testing.assert_array_equal(q[mask], before[mask])


def test_vertical_diffusion_kernel_non_contiguous_inputs():
    """Strided (non-C-contiguous) q, emissions and deposition views give the same result."""
    rng = np.random.default_rng(3)
    nspec, nz, ny, nx, h = 3, 6, 4, 11, 1
    rho_dz = rng.uniform(20, 80, (nz, ny, nx))
    cond = rng.uniform(0, 5, (nz + 1, ny, nx))
    q = rng.uniform(0, 1, (nspec, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    dep = rng.uniform(0, 0.02, (nspec, ny, nx))
    emis = rng.uniform(0, 1e-3, (nspec, 2, ny, nx))
    q_big = np.zeros((2 * nspec,) + q.shape[1:])
    q_big[::2] = q
    emis_big = np.zeros((nspec, 4, ny, nx))
    emis_big[:, ::2] = emis
    dep_t = np.ascontiguousarray(dep.transpose(0, 2, 1)).transpose(0, 2, 1)
    d1, d2 = np.empty((nspec, ny, nx)), np.empty((nspec, ny, nx))
    kdiff.vertical_diffusion(q, h, rho_dz, cond, dep, emis, 60.0, 1.0, d1)
    view = q_big[::2]
    kdiff.vertical_diffusion(view, h, rho_dz, cond, dep_t, emis_big[:, ::2], 60.0, 1.0, d2)
    np.testing.assert_array_equal(view, q)
    np.testing.assert_array_equal(d2, d1)
    assert (q_big[1::2] == 0).all()
