"""Deposition kernels: Wesely r_c, v_d, wet scavenging, Holtslag-Boville Kz (SCIENCE.md 3.1, 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aqforecast.kernels import deposition as kdep
from aqforecast.transport import WetScavenging

RNG = np.random.default_rng(11)
INF = kdep.RESISTANCE_INF
# SCIENCE.md 4.1 species parameters: (D_H2O/D_x, H*, f0)
SO2 = (1.9, 1.0e5, 0.0)
O3 = (1.6, 0.01, 1.0)
NO2 = (1.6, 0.01, 0.1)
HNO3 = (1.9, 1.0e14, 0.0)


def rc_reference(lu, season, g, ts, wet, dratio, hstar, f0, special):
    """Plain-Python Wesely (1989) r_c, written from SCIENCE.md 4.1."""
    s, l = season - 1, lu - 1
    fl = lambda v: max(v, 1.0)  # noqa: E731  zero table entries -> 1 s/m
    ri, rlu, rac = kdep.WESELY_RI[s, l], kdep.WESELY_RLU[s, l], kdep.WESELY_RAC[s, l]
    rgss, rgso = fl(kdep.WESELY_RGSS[s, l]), fl(kdep.WESELY_RGSO[s, l])
    rcls, rclo = fl(kdep.WESELY_RCLS[s, l]), fl(kdep.WESELY_RCLO[s, l])
    rs = ri * (1 + (200 / (g + 0.1)) ** 2) * (400 / (ts * (40 - ts))) if 0 < ts < 40 else INF
    if wet and season != 4:
        rs *= 3
    rs = min(rs, INF)
    rlux = rlu / (1e-5 * hstar + f0)
    if wet and season != 4 and rlu < INF:
        if special == kdep.SPECIAL_SO2:
            rlux = 100.0 if wet == 1 else 1 / (1 / 5000 + 1 / (3 * rlu))
        elif special == kdep.SPECIAL_O3:
            rlux = 1 / ((1 / 3000 if wet == 1 else 1 / 1000) + 1 / (3 * rlu))
    cold = 1000 * math.exp(-ts - 4)
    terms = [
        1 / (rs * dratio + 1 / (hstar / 3000 + 100 * f0)),
        1 / (rlux + cold),
        1 / (100 * (1 + 1000 / (g + 10)) + 1 / (1e-5 * hstar / rcls + f0 / rclo) + cold),
        1 / (rac + 1 / (1e-5 * hstar / rgss + f0 / rgso) + cold),
    ]
    return min(max(1 / sum(terms), 10.0), 9999.0)


def test_wesely_spot_values():
    # SO2 over water: ground resistance ~0 -> bounded at 10 s/m
    assert kdep.wesely_rc(7, 1, 500.0, 20.0, 0, *SO2, kdep.SPECIAL_SO2) == 10.0
    # O3 over water: r_gsx = 1/(1e-7/1 + 1/2000) = 1999.60008 s/m
    assert kdep.wesely_rc(7, 1, 500.0, 20.0, 0, *O3, kdep.SPECIAL_O3) == pytest.approx(
        1.0 / (1e-7 + 1.0 / 2000.0), rel=1e-9)
    # O3, deciduous forest, midsummer, G = 800 W/m2, Ts = 25 C, dry (hand-computed 103.6 s/m):
    # r_s = 70 (1 + (200/800.1)^2)(400/375) = 79.33; 1/r_c = 1/(1.6 r_s + 0.01) + 1/2000
    #       + 1/(223.46 + 1000) + 1/(2000 + 200)
    rc = kdep.wesely_rc(4, 1, 800.0, 25.0, 0, *O3, kdep.SPECIAL_O3)
    assert rc == pytest.approx(103.63, abs=0.02)
    # HNO3 anywhere: very soluble, bounded at 10 s/m
    assert kdep.wesely_rc(2, 1, 300.0, 15.0, 0, *HNO3, kdep.SPECIAL_NONE) == 10.0
    # frozen surface: stomata shut (T <= 0), r_c larger than at 10 C
    assert kdep.wesely_rc(2, 1, 300.0, -5.0, 0, *NO2, 0) > kdep.wesely_rc(2, 1, 300.0, 10.0, 0,
                                                                            *NO2, 0)


@pytest.mark.parametrize("species,special", [(SO2, 1), (O3, 2), (NO2, 0), (HNO3, 0)])
def test_wesely_matches_reference(species, special):
    for _ in range(200):
        lu, season = int(RNG.integers(1, 12)), int(RNG.integers(1, 6))
        g, ts, wet = RNG.uniform(0, 1000), RNG.uniform(-10, 45), int(RNG.integers(0, 3))
        got = kdep.wesely_rc(lu, season, g, ts, wet, *species, special)
        assert got == pytest.approx(rc_reference(lu, season, g, ts, wet, *species, special),
                                    rel=1e-12)


def test_surface_resistance_grid_kernel():
    ny, nx = 3, 4
    lu = RNG.integers(1, 12, (ny, nx))
    g = RNG.uniform(0, 900, (ny, nx))
    ts = RNG.uniform(1, 35, (ny, nx))
    wet = RNG.integers(0, 3, (ny, nx))
    par = np.array([SO2, O3, NO2])
    special = np.array([1, 2, 0])
    out = np.empty((3, ny, nx))
    kdep.surface_resistance(lu, 5, g, ts, wet, par[:, 0].copy(), par[:, 1].copy(),
                            par[:, 2].copy(), special, out)
    for s in range(3):
        for j in range(ny):
            for i in range(nx):
                assert out[s, j, i] == pytest.approx(rc_reference(
                    lu[j, i], 5, g[j, i], ts[j, i], wet[j, i], *par[s], special[s]), rel=1e-12)


def test_gas_deposition_velocity_matches_numpy():
    ny, nx = 4, 5
    rc = RNG.uniform(10, 2000, (2, ny, nx))
    zr = RNG.uniform(10, 40, (ny, nx))
    z0 = RNG.uniform(0.001, 1.0, (ny, nx))
    us = RNG.uniform(0.05, 0.8, (ny, nx))
    el = RNG.choice([-50.0, -500.0, 30.0, 300.0, np.inf], (ny, nx))
    dratio = np.array([1.9, 1.6])
    out = np.empty((2, ny, nx))
    kdep.dry_deposition_velocity_gas(rc, zr, z0, us, el, dratio, out)

    def psi_h(zeta):
        return np.where(zeta > 0, -5 * np.minimum(zeta, 1.0),
                        2 * np.log(0.5 * (1 + np.sqrt(1 - 16 * np.minimum(zeta, 0)))))

    ra = (np.log(zr / z0) - psi_h(zr / el) + psi_h(z0 / el)) / (0.4 * us)
    sc = 1.5e-5 / (2.5e-5 / dratio)
    rb = 2 / (0.4 * us)[None] * ((sc / 0.72) ** (2 / 3))[:, None, None]
    np.testing.assert_allclose(out, 1 / (ra[None] + rb + rc), rtol=1e-12)
    # neutral, z0 = 0.1 m, z = 20 m, u* = 0.4: r_a = ln(200)/0.16 = 33.11 s/m
    assert kdep.aerodynamic_resistance(20.0, 0.1, 0.4, np.inf) == pytest.approx(
        math.log(200) / 0.16, rel=1e-14)


def test_particle_deposition_velocity():
    us = np.array([[0.5, 0.5]])
    el = np.array([[-100.0, 50.0]])
    out = np.empty((2, 1, 2))
    kdep.dry_deposition_velocity_particle(us, el, np.array([0.0, 1e-4]), out)
    assert out[0, 0, 0] == pytest.approx(0.001 * (1 + 3.0 ** (2 / 3)), rel=1e-14)
    assert out[0, 0, 1] == pytest.approx(0.001, rel=1e-14)
    assert out[1, 0, 1] == pytest.approx(0.0011, rel=1e-14)


def test_wet_scavenging_exact_decay_and_budget():
    nz, ny, nx, h = 6, 3, 2, 1
    precip = np.zeros((nz, ny, nx))
    precip[:4] = RNG.uniform(0.5, 10, (4, ny, nx))  # rain below "cloud top" at layer 4
    a = np.array([1e-4, 0.0, 5e-5])
    b = np.array([0.62, 0.62, 1.0])
    rho_dz = RNG.uniform(50, 200, (nz, ny, nx))
    q = RNG.uniform(0, 1, (3, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    q0 = q.copy()
    op = WetScavenging((nz, ny, nx), a, b, halo=h)
    dt, nsteps = 300.0, 12
    total = np.zeros(3)
    for _ in range(nsteps):
        total += op(q, dt, precip, rho_dz)
    inner = np.s_[:, h:h + nz, h:h + ny, h:h + nx]
    lam = a[:, None, None, None] * precip[None] ** b[:, None, None, None]
    np.testing.assert_allclose(q[inner], q0[inner] * np.exp(-lam * dt * nsteps), rtol=1e-12)
    remaining = (q[inner] * rho_dz).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(total + remaining, (q0[inner] * rho_dz).sum(axis=(1, 2, 3)),
                               rtol=1e-13)
    assert total[1] == 0.0
    np.testing.assert_array_equal(q[:, h + 4:h + nz], q0[:, h + 4:h + nz])  # above cloud top


def kz_reference(z, h, us, el, ws, kmin):
    """Vectorised HB93 profile from SCIENCE.md 3.1 (one column)."""
    k = np.zeros_like(z)
    inside = (z > 0) & (z < h)
    shape = 0.4 * z * (1 - z / h) ** 2
    if el >= 0:
        zeta = 0.0 if np.isinf(el) else z / el
        phi = np.where(zeta <= 1, 1 + 5 * zeta, 5 + zeta)
        k = np.where(inside, shape * us / phi, 0.0)
    else:
        zs = 0.1 * h
        wm = (us ** 3 + 0.6 * ws ** 3) ** (1 / 3)
        pr = (1 - 15 * zs / el) ** -0.5 / (1 - 15 * zs / el) ** (-1 / 3) + 7.2 * 0.4 * 0.1 * ws / wm
        surface = shape * us * np.sqrt(np.maximum(1 - 15 * z / el, 0))
        k = np.where(inside & (z <= zs), surface, np.where(inside, shape * wm / pr, 0.0))
    return np.maximum(k, kmin)


def test_holtslag_boville_kz_matches_reference():
    nzi, ny, nx = 31, 2, 3
    z = np.linspace(0, 3000, nzi)[:, None, None] * np.ones((1, ny, nx))
    h = np.array([[1000.0, 500.0, 1500.0], [200.0, 800.0, 1200.0]])
    us = RNG.uniform(0.1, 0.6, (ny, nx))
    el = np.array([[-50.0, 100.0, np.inf], [20.0, -300.0, -10.0]])
    ws = np.where(el < 0, RNG.uniform(0.5, 2.5, (ny, nx)), 0.0)
    kmin = np.full((ny, nx), 0.01)
    kmin[0, 0] = 1.0
    out = np.empty((nzi, ny, nx))
    kdep.holtslag_boville_kz(z, h, us, el, ws, kmin, out)
    for j in range(ny):
        for i in range(nx):
            np.testing.assert_allclose(out[:, j, i], kz_reference(
                z[:, j, i], h[j, i], us[j, i], el[j, i], ws[j, i], kmin[j, i]), rtol=1e-12)
    # neutral: K = kappa u* z (1 - z/h)^2, maximal at z = h/3: 4/27 kappa u* h
    zz = np.linspace(0, 900, 901)[:, None, None]
    o = np.empty_like(zz)
    kdep.holtslag_boville_kz(zz, np.array([[900.0]]), np.array([[0.3]]),
                             np.array([[np.inf]]), np.array([[0.0]]), np.array([[0.0]]), o)
    assert o.max() == pytest.approx(4 / 27 * 0.4 * 0.3 * 900, rel=1e-12)
    assert o[0, 0, 0] == 0.0 and o[-1, 0, 0] == 0.0
