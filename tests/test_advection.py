"""Advection: kernels vs NumPy references, invariants, published cases (SCIENCE.md 2, 10.1).

Published numbers: libmpdata++ paper test suite (Jaruga et al. 2015, GMD 8:1005), files under
shared/data/transport_benchmarks/libmpdataxx_paper2015 (setups in that folder's README).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

from aqforecast.kernels import advection as kadv
from aqforecast.transport import Advection, advect

RNG = np.random.default_rng(20240604)


# --------------------------------------------------------------------------------------------
# plain-NumPy references
# --------------------------------------------------------------------------------------------
def _zero_closed(flux, axis, closed):
    f = flux.copy()
    if closed & 1:
        np.moveaxis(f, axis, 0)[0] = 0.0
    if closed & 2:
        np.moveaxis(f, axis, 0)[-1] = 0.0
    return f


def upwind_reference(q, h, mass, fx, fy, fz, scale, closed=(0, 0, 0)):
    """Unsplit donor cell with numpy slicing; returns (q_new interior, mass_new)."""
    nz, ny, nx = mass.shape
    fx = _zero_closed(fx * scale, 2, closed[0])
    fy = _zero_closed(fy * scale, 1, closed[1])
    fz = _zero_closed(fz * scale, 0, closed[2])
    c = q[:, h:h + nz, h:h + ny, h:h + nx]
    xm = q[:, h:h + nz, h:h + ny, h - 1:h + nx]        # left neighbours incl. ghost, nx+1
    xp = q[:, h:h + nz, h:h + ny, h:h + nx + 1]
    ym = q[:, h:h + nz, h - 1:h + ny, h:h + nx]
    yp = q[:, h:h + nz, h:h + ny + 1, h:h + nx]
    zm = q[:, h - 1:h + nz, h:h + ny, h:h + nx]
    zp = q[:, h:h + nz + 1, h:h + ny, h:h + nx]
    Fx = np.where(fx >= 0, fx * xm, fx * xp)
    Fy = np.where(fy >= 0, fy * ym, fy * yp)
    Fz = np.where(fz >= 0, fz * zm, fz * zp)
    div = (np.diff(fx, axis=2) + np.diff(fy, axis=1) + np.diff(fz, axis=0))
    m1 = mass - div
    tr = c * mass - (np.diff(Fx, axis=3) + np.diff(Fy, axis=2) + np.diff(Fz, axis=1))
    return tr / m1, m1


def walcek_face_reference(qc, qd, qu, ed, eu, c):
    """Vectorised Walcek (2000) face value, SCIENCE.md 2.2 step 3."""
    alpha = np.ones_like(c)
    alpha = np.where(ed, 1.7763 - 0.5 * c, alpha)
    alpha = np.where(eu, 1.2578 + 0.58502 * c, alpha)
    small = c < 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        lim = np.where(small, 0.98 * 6.0 / (1.0 - 2.0 * c), np.inf)
        alpha = np.where(small, np.minimum(alpha, lim), alpha)
        f1 = (qc * (1 + alpha * (2 * c - 1) / 6) + qd * alpha * (4 - 5 * c) / 12
              + qu * alpha * (c - 2) / 12)
        ic = 1.0 / c
        f2 = (qc * (1 - alpha * (ic + 2 * c - 3) / 6) + qd * alpha * (ic - c) / 12
              + qu * alpha * (ic + 5 * c - 6) / 12)
    qf = np.where(small, f1, f2)
    return np.clip(qf, np.minimum(qc, qd), np.maximum(qc, qd))


def walcek_line_reference(a, h, phi, m0, periodic=False, passes=None):
    """One Walcek sweep of a padded line; returns (new interior values, new air mass).
    passes: None or a list that receives the numbers of positive and negative clipping passes
    run (more than one: a periodic line whose wrapped face needed another pass)."""
    n = m0.size
    m1 = m0 - phi[1:] + phi[:-1]
    mid, lft, rgt = a[1:-1], a[:-2], a[2:]
    ext = np.zeros(a.size, dtype=bool)
    ext[1:-1] = (mid >= np.maximum(lft, rgt)) | (mid <= np.minimum(lft, rgt))
    f = np.arange(n + 1)
    p = f - 1 + h
    pos = phi > 0
    # upwind interior cell of each face (-1: a ghost cell outside a non-periodic line)
    up_pos = np.where(f >= 1, f - 1, n - 1 if periodic else -1)
    up_neg = np.where(f < n, f, 0 if periodic else -1)
    upcell = np.where(pos, up_pos, up_neg)
    mu = np.where(upcell >= 0, m0[np.clip(upcell, 0, n - 1)],
                  np.where(pos, m0[0], m0[n - 1]))
    c = np.abs(phi) / mu
    qc = np.where(pos, a[p], a[p + 1])
    qd = np.where(pos, a[p + 1], a[p])
    qu = np.where(pos, a[p - 1], a[p + 2])
    ed = np.where(pos, ext[p + 1], ext[p])
    eu = np.where(pos, ext[p - 1], ext[p + 2])
    qf = walcek_face_reference(qc, qd, qu, ed, eu, c)
    # outflow-only upstream cells use the donor-cell value
    uc = np.clip(upcell, 0, n - 1)
    donor = (upcell >= 0) & np.where(pos, phi[uc] < 0, phi[uc + 1] > 0)
    qf = np.where(donor, qc, qf)
    flux = np.where(phi == 0, 0.0, phi * qf)

    def positive_pass():
        for i in range(n):
            if phi[i + 1] > 0 and phi[i] >= 0:
                q0 = a[i + h]
                qup = a[i + h - 1] if phi[i] > 0 else q0
                qs = (q0 * m0[i] + flux[i] - flux[i + 1]) / m1[i]
                qn = min(max(qs, min(q0, qup)), max(q0, qup))
                if qn != qs:
                    flux[i + 1] = flux[i] + q0 * m0[i] - qn * m1[i]

    def negative_pass():
        for i in range(n - 1, -1, -1):
            if phi[i] < 0 and phi[i + 1] <= 0:
                q0 = a[i + h]
                qup = a[i + h + 1] if phi[i + 1] < 0 else q0
                qs = (q0 * m0[i] + flux[i] - flux[i + 1]) / m1[i]
                qn = min(max(qs, min(q0, qup)), max(q0, qup))
                if qn != qs:
                    flux[i] = flux[i + 1] - q0 * m0[i] + qn * m1[i]

    npos = nneg = 0
    for _ in range(4):
        positive_pass()
        npos += 1
        if not (periodic and phi[0] > 0 and flux[0] != flux[n]):
            break
        flux[0] = flux[n]
    for _ in range(4):
        negative_pass()
        nneg += 1
        if not (periodic and phi[0] < 0 and flux[0] != flux[n]):
            break
        flux[n] = flux[0]
    if passes is not None:
        passes += [npos, nneg]
    if periodic:
        if phi[0] > 0:
            flux[0] = flux[n]
        else:
            flux[n] = flux[0]
    return (a[h:h + n] * m0 + flux[:-1] - flux[1:]) / m1, m1


def walcek_sweep_reference(q, h, mass, flux, axis, scale, closed):
    """Apply the line reference to every line along ``axis`` (0 = x, 1 = y, 2 = z)."""
    qax, max_ = 3 - axis, 2 - axis
    qt = np.moveaxis(q, qax, -1).copy()
    mt = np.moveaxis(mass, max_, -1).copy()
    ft = _zero_closed(np.moveaxis(flux, max_, -1) * scale, 2, closed)
    periodic = bool(closed & 4)
    nz_, ny_, _ = mt.shape
    mnew = np.empty_like(mt)
    for k in range(nz_):
        for j in range(ny_):
            phi = ft[k, j]
            for s in range(q.shape[0]):
                new, _ = walcek_line_reference(qt[s, k + h, j + h], h, phi, mt[k, j],
                                               periodic)
                qt[s, k + h, j + h, h:h + new.size] = new
            mnew[k, j] = mt[k, j] - phi[1:] + phi[:-1]
    return np.moveaxis(qt, -1, qax), np.moveaxis(mnew, -1, max_)


def random_case(shape, nspec, h, divergent=True, cmax=0.4):
    nz, ny, nx = shape
    q = RNG.uniform(0.0, 2.0, (nspec, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    mass = RNG.uniform(1.0, 2.0, shape)
    fx = RNG.uniform(-cmax, cmax, (nz, ny, nx + 1))
    fy = RNG.uniform(-cmax, cmax, (nz, ny + 1, nx))
    fz = RNG.uniform(-cmax, cmax, (nz + 1, ny, nx))
    if not divergent:
        fx[:] = 0.3
        fy[:] = -0.2
        fz[:] = 0.1
    return q, mass, fx, fy, fz


SHAPES = [(1, 1, 1), (1, 1, 7), (1, 6, 1), (5, 1, 1), (3, 4, 5), (6, 7, 9)]


# --------------------------------------------------------------------------------------------
# kernels vs references
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("h", [1, 2])
def test_upwind_kernel_matches_numpy(shape, h):
    for closed in [(0, 0, 0), (3, 1, 2)]:
        q, mass, fx, fy, fz = random_case(shape, 3, h)
        out = np.zeros_like(q)
        m_out = np.empty_like(mass)
        kadv.upwind_step(q, out, h, mass, m_out, fx, fy, fz, 0.5, *closed)
        ref_q, ref_m = upwind_reference(q, h, mass, fx, fy, fz, 0.5, closed)
        nz, ny, nx = shape
        np.testing.assert_allclose(out[:, h:h + nz, h:h + ny, h:h + nx], ref_q, rtol=1e-13)
        np.testing.assert_allclose(m_out, ref_m, rtol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("h", [2, 3])
def test_walcek_sweep_matches_numpy(shape, axis, h):
    sweeps = (kadv.walcek_sweep_x, kadv.walcek_sweep_y, kadv.walcek_sweep_z)
    for closed, sign in [(0, 1.0), (3, -1.0), (1, 0.0), (4, 1.0), (4, -1.0), (4, 0.0)]:
        q, mass, fx, fy, fz = random_case(shape, 2, h, cmax=0.7)
        flux = (fx, fy, fz)[axis]
        if sign != 0.0:  # one-signed flow in this case; mixed signs otherwise
            flux = sign * np.abs(flux)
        if closed & 4:  # periodic line: one face at both ends, periodic ghosts
            fl = np.moveaxis(flux, 2 - axis, 0)
            fl[-1] = fl[0]
            qa = np.moveaxis(q, 3 - axis, 0)
            n = qa.shape[0] - 2 * h
            qa[:h] = qa[n:n + h]
            qa[n + h:] = qa[h:2 * h]
        ref_q, ref_m = walcek_sweep_reference(q, h, mass, flux, axis, 0.9, closed)
        sweeps[axis](q, h, mass, flux, 0.9, closed)
        np.testing.assert_allclose(q, ref_q, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(mass, ref_m, rtol=1e-14)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("h", [2, 3])
def test_tiled_sweeps_equal_line_kernel_bit_for_bit(axis, h):
    """The tiled (vectorised) sweeps do the line kernel's arithmetic: identical results for
    several tiles, a partial last tile, mixed-sign flow, extrema, zeros and closed walls."""
    shape = (3, 2 * kadv.TILE + 5, kadv.TILE + 3)
    if axis == 2:
        shape = (kadv.TILE + 6, 3, 2 * kadv.TILE + 1)
    for closed in (0, 1, 2, 3):
        q, mass, fx, fy, fz = random_case(shape, 3, h, cmax=0.7)
        q[q < 0.4] = 0.0  # plateaus of zeros: extremum flags on ties
        flux = (fx, fy, fz)[axis]
        flux[..., ::7] = 0.0
        ref_q, ref_m = q.copy(), mass.copy()
        perm_q = ((0, 1, 2, 3), (0, 1, 3, 2), (0, 2, 3, 1))[axis]
        perm = ((0, 1, 2), (0, 2, 1), (1, 2, 0))[axis]
        kadv._walcek_lines(ref_q.transpose(perm_q), h, ref_m.transpose(perm),
                           flux.transpose(perm), 0.9, closed)
        (kadv.walcek_sweep_x, kadv.walcek_sweep_y, kadv.walcek_sweep_z)[axis](
            q, h, mass, flux, 0.9, closed)
        np.testing.assert_array_equal(q, ref_q)
        np.testing.assert_array_equal(mass, ref_m)


def _periodic_case(shape, axis, h, nspec, flow, fill_ghosts=True):
    """Random mixing ratios (with plateaus of zeros), random air mass and random divergent
    fluxes along ``axis`` (0 = x, 1 = y, 2 = z) for a periodic sweep: face n carries face 0's
    flux, and (``fill_ghosts``) the ghosts hold the periodic images. flow: "mixed", "positive"
    or "negative" (one-signed flow: the wrapped face's clipping passes repeat most often)."""
    q, mass, fx, fy, fz = random_case(shape, nspec, h, cmax=0.7)
    q[q < 0.4] = 0.0
    flux = (fx, fy, fz)[axis]
    if flow == "positive":
        flux[...] = np.abs(flux)
    elif flow == "negative":
        flux[...] = -np.abs(flux)
    fl = np.moveaxis(flux, 2 - axis, 0)  # faces along the sweep first
    fl[3::7] = 0.0
    fl[0].flat[::5] = 0.0  # some lines without flow through the wrapped face
    fl[-1] = fl[0]
    if fill_ghosts:
        qa = np.moveaxis(q, 3 - axis, 0)
        n = qa.shape[0] - 2 * h
        qa[:h] = qa[n:n + h]
        qa[n + h:] = qa[h:2 * h]
    return q, mass, flux


PERIODIC_SHAPES = [(3, 2 * kadv.TILE + 5, kadv.TILE + 3), (kadv.TILE + 6, 3, 2 * kadv.TILE + 1),
                   (2, 1, 9), (4, 7, 1), (1, 1, 1), (5, 3, 2), (2, kadv.TILE, kadv.TILE),
                   (1, kadv.TILE + 5, 1), (2, 1, kadv.TILE + 5)]


@pytest.mark.parametrize("shape", PERIODIC_SHAPES)
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("h", [2, 3])
def test_periodic_tiled_sweeps_equal_line_kernel_bit_for_bit(shape, axis, h):
    """Periodic lines (closed = 4) take the tiled sweeps too: bit for bit the line kernel's
    mixing ratios and air mass (walcek_line(..., periodic=True)), for mixed and one-signed
    flow, full sub-steps and partial ones (scale != 1), with and without periodic ghosts,
    several tiles, partial last tiles and single lines."""
    perm_q = ((0, 1, 2, 3), (0, 1, 3, 2), (0, 2, 3, 1))[axis]
    perm = ((0, 1, 2), (0, 2, 1), (1, 2, 0))[axis]
    sweep = (kadv.walcek_sweep_x, kadv.walcek_sweep_y, kadv.walcek_sweep_z)[axis]
    for flow in ("mixed", "positive", "negative"):
        for scale, fill in ((0.9, True), (1.0 / 3.0, True), (1.0, False)):
            q, mass, flux = _periodic_case(shape, axis, h, 3, flow, fill)
            ref_q, ref_m = q.copy(), mass.copy()
            kadv._walcek_lines(ref_q.transpose(perm_q), h, ref_m.transpose(perm),
                               flux.transpose(perm), scale, 4)
            sweep(q, h, mass, flux, scale, 4)
            np.testing.assert_array_equal(q, ref_q)
            np.testing.assert_array_equal(mass, ref_m)


def test_periodic_wrap_repeats_clipping_passes():
    """The periodic cases of the bit-identity test reach the repeated clipping passes of the
    wrapped face (lines whose faces 0 and n carry different fluxes after a pass), in both flow
    directions, up to the limit of four passes on lines of one cell (counted with the NumPy
    reference)."""
    h = 2
    for nx in (9, 1):
        passes = {"positive": [], "negative": []}
        for flow, most in passes.items():
            q, mass, flux = _periodic_case((4, 100, nx), 0, h, 3, flow)
            for k, j, s in np.ndindex(mass.shape[0], mass.shape[1], 3):
                count = []
                walcek_line_reference(q[s, k + h, j + h], h, flux[k, j] * 0.9, mass[k, j],
                                      True, count)
                most.append(max(count))
        assert min(max(p) for p in passes.values()) >= (4 if nx == 1 else 2), passes


@pytest.mark.parametrize("shape", [(4, 9, 11), (1, 1, 12), (7, 1, 1), (3, 5, 1),
                                   (2, 2 * kadv.TILE + 3, kadv.TILE + 1)])
def test_mass_conservation_periodic(shape):
    """Periodic boundaries, strong circulation (sub-stepped) + divergent part, random air mass:
    sum(q M) per species and sum(M) conserved to round-off (no boundary fluxes), positive mass,
    mixing ratios within the initial bounds."""
    op = Advection(shape, scheme="walcek", boundary="periodic", nspec=3)
    h = op.halo
    q, mass, _, _, _ = random_case(shape, 3, h)
    fx, fy, fz, div = flow_fields(shape, 0.8, 0.04, periodic=True)
    nz, ny, nx = shape
    inner = np.s_[:, h:h + nz, h:h + ny, h:h + nx]
    lo, hi = q[inner].min(), q[inner].max()
    total0 = (q[inner] * mass).sum(axis=(1, 2, 3))
    air0 = mass.sum()
    for step in range(10):
        sign = 1.0 if step % 2 == 0 else -1.0
        op(q, mass, fx + sign * div[0], fy + sign * div[1], fz + sign * div[2])
    total1 = (q[inner] * mass).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(total1, total0, rtol=1e-12)
    assert mass.sum() == pytest.approx(air0, rel=1e-13)
    assert mass.min() > 0
    assert q[inner].min() >= lo - 1e-12 and q[inner].max() <= hi + 1e-12


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_periodic_sweep_conserves_each_line(axis):
    """One periodic tiled sweep moves tracer mass only along its lines: sum(q M) of every line
    (and its air mass) is unchanged to round-off, with a divergent flow and scale != 1."""
    shape = (3, kadv.TILE + 5, 2 * kadv.TILE + 3)
    h = 3
    q, mass, flux = _periodic_case(shape, axis, h, 2, "mixed")
    nz, ny, nx = shape
    inner = np.s_[:, h:h + nz, h:h + ny, h:h + nx]
    before = (q[inner] * mass).sum(axis=3 - axis)
    air = mass.sum(axis=2 - axis)
    (kadv.walcek_sweep_x, kadv.walcek_sweep_y, kadv.walcek_sweep_z)[axis](q, h, mass, flux,
                                                                         0.6, 4)
    np.testing.assert_allclose((q[inner] * mass).sum(axis=3 - axis), before, rtol=1e-13,
                               atol=1e-13)
    np.testing.assert_allclose(mass.sum(axis=2 - axis), air, rtol=1e-14)


def test_walcek_face_value_limits():
    """Both branches agree at c = 0.5 (q_c + alpha (q_d - q_u)/8) and q_f -> q_c at c = 1."""
    qc, qd, qu = 1.0, 1.5, 0.8
    f = walcek_face_reference(np.array([qc] * 2), np.array([qd] * 2), np.array([qu] * 2),
                              np.zeros(2, bool), np.zeros(2, bool), np.array([0.5, 1.0]))
    assert f[0] == pytest.approx(qc + (qd - qu) / 8, rel=1e-14)
    assert f[1] == pytest.approx(qc, rel=1e-14)
    a = np.array([0.0, 0.8, 1.0, 1.5, 0.0, 0.0])  # h = 2, line of 2 cells
    phi = np.array([0.0, 0.5, 0.0])
    m0 = np.ones(2)
    line = a.copy()
    kadv.walcek_line(line, 2, phi, m0, m0 - phi[1:] + phi[:-1], np.zeros(6, np.int8), np.zeros(3))
    ref, _ = walcek_line_reference(a, 2, phi, m0)
    np.testing.assert_allclose(line[2:4], ref, rtol=1e-15)


# --------------------------------------------------------------------------------------------
# invariants
# --------------------------------------------------------------------------------------------
def flow_fields(shape, amp, div_amp, periodic=False, closed=False):
    """Face air-mass fluxes: a random non-divergent circulation (stream functions in the x-y and
    x-z planes, amplitude ``amp``) plus a random divergent part of amplitude ``div_amp``."""
    nz, ny, nx = shape
    psi_xy = RNG.uniform(-amp, amp, (nz, ny + 1, nx + 1))
    psi_xz = RNG.uniform(-amp, amp, (nz + 1, ny, nx + 1))
    if periodic:
        psi_xy[:, -1, :] = psi_xy[:, 0, :]
        psi_xy[:, :, -1] = psi_xy[:, :, 0]
        psi_xz[-1] = psi_xz[0]
        psi_xz[..., -1] = psi_xz[..., 0]
    if closed:  # no flux through the walls
        for p in (psi_xy[:, 0], psi_xy[:, -1], psi_xy[..., 0], psi_xy[..., -1], psi_xz[0],
                  psi_xz[-1], psi_xz[..., 0], psi_xz[..., -1]):
            p[...] = 0.0
    fx = np.diff(psi_xy, axis=1) + np.diff(psi_xz, axis=0)
    fy = -np.diff(psi_xy, axis=2)
    fz = -np.diff(psi_xz, axis=2)
    div = [RNG.uniform(-div_amp, div_amp, f.shape) for f in (fx, fy, fz)]
    if periodic:
        div[0][..., -1] = div[0][..., 0]
        div[1][:, -1] = div[1][:, 0]
        div[2][-1] = div[2][0]
    if closed:
        for d, ax in zip(div, (2, 1, 0)):
            np.moveaxis(d, ax, 0)[[0, -1]] = 0.0
    return fx, fy, fz, div


@pytest.mark.parametrize("scheme", ["walcek", "donor_cell", "donor_cell_unsplit"])
@pytest.mark.parametrize("shape", [(4, 9, 11), (1, 1, 12), (7, 1, 1), (3, 5, 1)])
def test_mass_conservation_closed(scheme, shape):
    """Strong circulation (sub-stepped) + divergent part, random air mass, closed walls:
    sum(q M) per species conserved to 1e-12 relative, air mass stays positive."""
    op = Advection(shape, scheme=scheme, boundary="closed", nspec=3)
    h = op.halo
    q, mass, _, _, _ = random_case(shape, 3, h)
    fx, fy, fz, div = flow_fields(shape, 0.8, 0.04, closed=True)
    nz, ny, nx = shape
    inner = np.s_[:, h:h + nz, h:h + ny, h:h + nx]
    total0 = (q[inner] * mass).sum(axis=(1, 2, 3))
    air0 = mass.sum()
    nsub = 0
    for step in range(10):
        sign = 1.0 if step % 2 == 0 else -1.0
        nsub = max(nsub, op(q, mass, fx + sign * div[0], fy + sign * div[1],
                            fz + sign * div[2]))
    total1 = (q[inner] * mass).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(total1, total0, rtol=1e-12)
    assert mass.sum() == pytest.approx(air0, rel=1e-13)
    assert mass.min() > 0
    if shape == (4, 9, 11):
        assert nsub >= 2


@pytest.mark.parametrize("scheme", ["walcek", "donor_cell", "donor_cell_unsplit"])
@pytest.mark.parametrize("boundary", ["open", "closed", "periodic"])
def test_free_stream_preservation(scheme, boundary):
    """A uniform mixing ratio stays uniform (1e-13) with non-uniform air mass and divergent flow."""
    shape = (5, 8, 10)
    op = Advection(shape, scheme=scheme, boundary=boundary)
    h = op.halo
    _, mass, _, _, _ = random_case(shape, 1, h)
    fx, fy, fz, div = flow_fields(shape, 0.3, 0.05, periodic=boundary == "periodic",
                                  closed=boundary == "closed")
    q = np.full(op.padded_shape(2), 1.0)
    q[1] = 3.7e-9
    for step in range(20):
        sign = 1.0 if step % 2 == 0 else -1.0
        op(q, mass, fx + sign * div[0], fy + sign * div[1], fz + sign * div[2])
    nz, ny, nx = shape
    inner = q[:, h:h + nz, h:h + ny, h:h + nx]
    np.testing.assert_allclose(inner[0], 1.0, rtol=1e-13, atol=0)
    np.testing.assert_allclose(inner[1], 3.7e-9, rtol=1e-13, atol=0)


@pytest.mark.parametrize("scheme", ["walcek", "donor_cell", "donor_cell_unsplit"])
def test_positivity_and_bounds(scheme):
    """Random non-negative fields with zeros and divergent flows: no negatives, no new extrema."""
    shape = (6, 10, 12)
    op = Advection(shape, scheme=scheme, boundary="open", nspec=2)
    h = op.halo
    q, mass, _, _, _ = random_case(shape, 2, h)
    fx, fy, fz, div = flow_fields(shape, 0.6, 0.05)
    nz, ny, nx = shape
    inner = np.s_[:, h:h + nz, h:h + ny, h:h + nx]
    q[inner] = q[inner] * (RNG.uniform(0, 1, (2,) + shape) > 0.5)
    lo = q[inner].min(axis=(1, 2, 3))
    hi = q[inner].max(axis=(1, 2, 3))
    for step in range(30):
        sign = 1.0 if step % 2 == 0 else -1.0
        op(q, mass, fx + sign * div[0], fy + sign * div[1], fz + sign * div[2])
    assert (q[inner] >= 0).all()
    assert (q[inner].max(axis=(1, 2, 3)) <= hi * (1 + 1e-12)).all()
    assert (q[inner].min(axis=(1, 2, 3)) >= lo - 1e-14).all()


def test_substeps_from_courant():
    shape = (2, 3, 4)
    op = Advection(shape, scheme="walcek")
    mass = np.full(shape, 2.0)
    fx = np.zeros((2, 3, 5))
    fy = np.zeros((2, 4, 4))
    fz = np.zeros((3, 3, 4))
    fx[0, 0, :] = 3.1  # uniform flow, Courant 1.55 (no divergence inside the row)
    assert op.substeps(mass, fx, fy, fz) == 3
    fx[0, 0, :] = 1.5  # exactly 0.75
    assert op.substeps(mass, fx, fy, fz) == 1
    assert Advection(shape, scheme="donor_cell_unsplit").substeps(mass, fx, fy, fz) == 1
    fy[0, :, :] = 1.5  # the unsplit limit counts both directions: 1.5 in total
    assert Advection(shape, scheme="donor_cell_unsplit").substeps(mass, fx, fy, fz) == 2
    assert op.substeps(mass, fx, fy, fz) == 1
    fx[...] = 0.0
    fy[...] = 0.0
    fx[0, 0, 1] = 1.0  # cell 0 loses 1.0 by x and 0.7 by y: 1.7 of its 2.0 kg in the step
    fy[0, 1, 0] = 0.7
    n_outer, per_level, n_z = op.plan(mass, fx, fy, fz)
    # outer steps: the horizontal divergence removes <= half of the smaller of the start and
    # end mass (2 - 1.7 = 0.3) per outer step
    assert n_outer == math.ceil(1.7 / 0.3 / 0.5)
    assert op.substeps(mass, fx, fy, fz) == n_outer * max(per_level.max(), n_z)


def test_upwind_is_a_deprecated_name():
    with pytest.warns(DeprecationWarning, match="donor_cell_unsplit"):
        assert Advection((1, 1, 4), scheme="upwind").scheme == "donor_cell_unsplit"
    with pytest.raises(ValueError, match="scheme must be one of"):
        Advection((1, 1, 4), scheme="ppm")


def test_inflow_boundary_values():
    """Inflow faces take the prescribed value; the domain fills with it; outflow zero-gradient."""
    shape = (1, 1, 20)
    op = Advection(shape, scheme="walcek", boundary=("inflow", "closed", "closed"))
    h = op.halo
    q = np.zeros(op.padded_shape(1))
    mass = np.ones(shape)
    fx = np.full((1, 1, 21), 0.5)
    fy = np.zeros((1, 2, 20))
    fz = np.zeros((2, 1, 20))
    bv = {"west": np.full((1, 1, 1, h), 2.0), "east": np.full((1, 1, 1, h), 99.0)}
    for _ in range(80):
        op(q, mass, fx, fy, fz, boundary_values=bv)
    np.testing.assert_allclose(q[0, h, h, h:h + 20], 2.0, rtol=1e-12)
    assert q[0, h, h, h + 20:].max() == pytest.approx(2.0)  # east ghosts zero-gradient


# --------------------------------------------------------------------------------------------
# public advect()
# --------------------------------------------------------------------------------------------
def _courant(shape, cx=0.0, cy=0.0, cz=0.0):
    nz, ny, nx = shape
    return (np.full((nz, ny, nx + 1), cx), np.full((nz, ny + 1, nx), cy),
            np.full((nz + 1, ny, nx), cz))


def test_advect_validation():
    q = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"cy has shape \(2, 3, 4\), expected \(2, 4, 4\)"):
        advect(q, (np.zeros((2, 3, 5)), np.zeros((2, 3, 4)), np.zeros((3, 3, 4))), 1)
    with pytest.raises(ValueError, match="scheme"):
        advect(q, _courant(q.shape), 1, scheme="ppm")
    with pytest.raises(ValueError, match="boundary"):
        advect(q, _courant(q.shape), 1, boundary="wall")
    with pytest.raises(ValueError, match="float64"):
        advect(q.astype(np.float32), _courant(q.shape), 1)
    with pytest.raises(ValueError, match="nsteps"):
        advect(q, _courant(q.shape), -1)


@pytest.mark.parametrize("scheme", ["donor_cell_unsplit", "walcek"])
def test_advect_periodic_shift_and_directions(scheme):
    """Courant 1 (upwind) shifts a periodic field by one cell per step in every direction;
    a periodic Walcek run conserves sum(q) and bounds."""
    q = RNG.uniform(0, 1, (4, 5, 6))
    for axis, kw in ((2, "cx"), (1, "cy"), (0, "cz")):
        for sign in (1.0, -1.0):
            c = _courant(q.shape, **{kw: sign})
            if scheme == "donor_cell_unsplit":
                out = advect(q, c, 3, scheme="donor_cell_unsplit", boundary="periodic")
                np.testing.assert_allclose(out, np.roll(q, int(3 * sign), axis=axis), rtol=1e-14)
            else:
                c = _courant(q.shape, **{kw: 0.37 * sign})
                out = advect(q, c, 5, scheme="walcek", boundary="periodic")
                assert out.sum() == pytest.approx(q.sum(), rel=1e-13)
                assert out.min() >= q.min() - 1e-15 and out.max() <= q.max() + 1e-15


def test_advect_closed_and_zero_steps():
    q = RNG.uniform(0, 1, (3, 4, 5))
    c = tuple(RNG.uniform(-0.2, 0.2, a.shape) for a in _courant(q.shape))
    np.testing.assert_array_equal(advect(q, c, 0), q)
    # with unit mass and closed walls the mass-weighted total is conserved
    out = advect(q, (c[0] * 0, c[1] * 0, c[2] * 0), 3, boundary="closed")
    np.testing.assert_array_equal(out, q)


# --------------------------------------------------------------------------------------------
# published cases
# --------------------------------------------------------------------------------------------
def _round_half_away(x):
    return math.floor(x + 0.5)


def _gauss_cell_average(xc, dx, shift, sigma=1.5, x0=220.0):
    s = sigma * math.sqrt(2.0)
    return 0.5 * (erf((xc + dx / 2 - x0 - shift) / s) - erf((xc - dx / 2 - x0 - shift) / s)) / dx


def _convergence_error(dx, c):
    nx = _round_half_away(440.0 / dx)
    dt = c * dx
    nt = _round_half_away(1.0 / dt)
    xc = np.arange(nx) * dx
    psi = _gauss_cell_average(xc, dx, 0.0)
    out = advect(psi[None, None], _courant((1, 1, nx), cx=c), nt, scheme="donor_cell_unsplit")[0, 0]
    exact = _gauss_cell_average(xc, dx, nt * dt)
    return math.sqrt(np.sum((out - exact) ** 2) / nx) / (nt * dt)


def _check_convergence_rows(rows):
    for dx, c, published in rows:
        err = _convergence_error(dx, c)
        assert float(f"{err:.4e}") == pytest.approx(published, rel=1e-12), (dx, c, err)


def _convergence_table(shared_data):
    path = (shared_data / "transport_benchmarks" / "libmpdataxx_paper2015" / "2_convergence_1d"
            / "err_mpdata_iters=1.txt")
    return np.loadtxt(path)


def test_donor_cell_convergence_table_subset(shared_data):
    """Donor cell reproduces libmpdata++'s iters=1 table to its 4 printed digits (dx >= 1/16
    plus the finest-grid entries at C = 0.5 and 0.95)."""
    table = _convergence_table(shared_data)
    assert table.shape == (152, 3)
    rows = [r for r in table if r[0] >= 1 / 16 or (r[0] == 1 / 128 and r[1] in (0.5, 0.95))]
    assert len(rows) > 90
    _check_convergence_rows(rows)


@pytest.mark.slow
def test_donor_cell_convergence_table_full(shared_data):
    _check_convergence_rows(_convergence_table(shared_data))


def test_rotating_cone_walcek_beats_mpdata_fct(shared_data):
    """Anderson & Fattahi / Smolarkiewicz rotating cone, 6 revolutions (3768 steps)."""
    stats = (shared_data / "transport_benchmarks" / "libmpdataxx_paper2015" / "3_rotating_cone_2d"
             / "stats_fct_.txt").read_text()
    published_rms = float(stats.split("rms error")[-1].split("=")[1].split()[0])
    assert published_rms == pytest.approx(3.6731e-4)
    n, dt, omega, nt = 101, 0.1, 0.1, 628 * 6
    idx = np.arange(n, dtype=np.float64)
    x, y = np.meshgrid(idx, idx, indexing="xy")  # rows are y (j), columns x (i)
    h, h0, r, x0, y0 = 4.0, 1.0, 15.0, 50.0, 75.0
    psi0 = h0 + np.maximum(0.0, h - np.sqrt(((x - x0) ** 2 + (y - y0) ** 2) / (r / h) ** 2))
    cx, cy, cz = _courant((1, n, n))
    cx[0] = (omega * (idx - 50.0) * dt)[:, None]   # depends on y (row)
    cy[0] = (-omega * (idx - 50.0) * dt)[None, :]  # depends on x (column)
    out = advect(psi0[None], (cx, cy, cz), nt, scheme="walcek", boundary="open")[0]
    rms = math.sqrt(np.mean((out - psi0) ** 2)) / (nt * dt)
    assert rms < published_rms
    assert rms < 1.5e-4  # measured 1.07e-4: guard against regressions
    assert out.max() <= psi0.max()
    assert out.min() >= 0.0
    assert out.min() >= h0 - 1e-12  # monotone: background never undershoots
    assert out.max() > 4.5  # peak preserved far better than MPDATA-FCT's 3.53


def _plan_substeps_numpy(mass, flux_x, flux_y, flux_z, courant_max, mass_end=None):
    """The array form of plan_substeps (NumPy temporaries, max_courant per level): the
    reference of the one-pass kernels in kernels/substeps.py."""
    from aqforecast.transport.advection import OUTER_DIVERGENCE_MAX

    div_h = (flux_x[:, :, 1:] - flux_x[:, :, :-1]) + (flux_y[:, 1:, :] - flux_y[:, :-1, :])
    div_z = flux_z[1:] - flux_z[:-1]
    if mass_end is None:
        mass_end = mass - div_h - div_z
    m0 = np.minimum(mass, mass_end)
    if not np.all(m0 > 0.0):
        raise ValueError("empty")
    worst = max(float(np.max(div_h / m0)), float(np.max(div_z / m0)))
    if not math.isfinite(worst) or worst > 1e6:
        raise ValueError("empty")
    n_outer = max(1, math.ceil(worst / OUTER_DIVERGENCE_MAX - 1e-12))
    nz = mass.shape[0]
    out = np.zeros(5)
    per_level = np.ones(nz, dtype=np.int64)
    m_h = m0 - np.maximum(div_z, 0.0) / n_outer
    zero = np.zeros((2,) + m0.shape[1:])
    for k in range(nz):
        kadv.max_courant(m_h[k:k + 1], flux_x[k:k + 1] / n_outer, flux_y[k:k + 1] / n_outer,
                         zero, courant_max, out)
        per_level[k] = max(1, math.ceil(out[3] - 1e-12))
    zx = np.zeros(m0.shape[:2] + (m0.shape[2] + 1,))
    zy = np.zeros((m0.shape[0], m0.shape[1] + 1, m0.shape[2]))
    kadv.max_courant(m0 - np.maximum(div_h, 0.0) / n_outer, zx, zy, flux_z / n_outer,
                     courant_max, out)
    return n_outer, per_level, max(1, math.ceil(out[3] - 1e-12))


def test_plan_substeps_equals_array_form():
    """The one-pass planning kernels give the array form's outer steps, per-level horizontal
    and vertical sub-step counts on random fluxes from tiny to cell-emptying (both raise on the
    latter), with and without the end mass given."""
    from aqforecast.transport.advection import plan_substeps

    rng = np.random.default_rng(1)
    raised = 0
    for trial in range(120):
        nz, ny, nx = (int(v) for v in rng.integers(1, 6, 3))
        mass = rng.uniform(0.5, 2.0, (nz, ny, nx))
        sc = rng.choice([0.05, 0.5, 3.0, 20.0])
        fx = rng.normal(0, sc, (nz, ny, nx + 1))
        fy = rng.normal(0, sc, (nz, ny + 1, nx))
        fz = rng.normal(0, sc / 5, (nz + 1, ny, nx))
        fz[0] = fz[-1] = 0.0
        end = None if trial % 2 else mass - ((fx[:, :, 1:] - fx[:, :, :-1])
                                             + (fy[:, 1:] - fy[:, :-1])) - (fz[1:] - fz[:-1])
        cmax = float(rng.choice([0.5, 0.9, 1.0]))
        try:
            want = _plan_substeps_numpy(mass, fx, fy, fz, cmax, end)
        except ValueError:
            with pytest.raises(ValueError, match="empty a cell"):
                plan_substeps(mass, fx, fy, fz, cmax, end)
            raised += 1
            continue
        got = plan_substeps(mass, fx, fy, fz, cmax, end)
        assert got[0] == want[0] and got[2] == want[2]
        np.testing.assert_array_equal(got[1], want[1])
    assert 5 < raised < 100
