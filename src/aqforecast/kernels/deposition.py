"""Deposition and boundary-layer mixing coefficients (numba).

* Gas dry deposition velocity v_d = 1/(r_a + r_b + r_c) (SCIENCE.md 4.1): aerodynamic resistance
  with Businger-Dyer stability functions, quasi-laminar r_b (Wesely & Hicks 1977), surface
  resistance r_c of Wesely (1989, Atmos. Environ. 23, 1293) with the Walmsley & Wesely (1996)
  corrections; base resistances of Wesely's Table 1 as given in SCIENCE.md 4.1 (11 land uses x 5
  seasons; where two transcriptions disagree the HYSPLIT value is used, r_gsS LU11 = 400 and
  r_gsO season 3 LU11 = 200).
* Particle dry deposition velocity, the simple form of Wesely et al. (1985) plus an optional
  settling velocity (SCIENCE.md 4.2, fallback).
* Wet scavenging c <- c exp(-Lambda dt), Lambda = A P^B (P in mm h-1) (SCIENCE.md 4.3).
* Holtslag & Boville (1993) eddy diffusivity profile with a floor Kz_min (SCIENCE.md 3.1).

Resistances in s m-1, velocities in m s-1, lengths in m, temperatures of the surface in deg C,
solar irradiance in W m-2. The gridded kernels run rows on threads
(:func:`.threads.parallel_kernel`); they are called without the leading ``start, stop``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .threads import parallel_kernel

__all__ = [
    "WESELY_RI", "WESELY_RLU", "WESELY_RAC", "WESELY_RGSS", "WESELY_RGSO", "WESELY_RCLS",
    "WESELY_RCLO", "RESISTANCE_INF", "surface_resistance", "wesely_rc", "aerodynamic_resistance",
    "dry_deposition_velocity_gas", "dry_deposition_velocity_particle", "wet_scavenging",
    "holtslag_boville_kz", "SPECIAL_NONE", "SPECIAL_SO2", "SPECIAL_O3",
]

#: "Infinite" resistance of Wesely's table (9999 in the original), s m-1.
RESISTANCE_INF = 1.0e25
_X = RESISTANCE_INF
#: Base resistances [season-1, landuse-1], s m-1 (Wesely 1989 Table 1, SCIENCE.md 4.1).
WESELY_RI = np.array([
    [_X, 60, 120, 70, 130, 100, _X, _X, 80, 100, 150],
    [_X, _X, _X, _X, 250, 500, _X, _X, _X, _X, _X],
    [_X, _X, _X, _X, 250, 500, _X, _X, _X, _X, _X],
    [_X, _X, _X, _X, 400, 800, _X, _X, _X, _X, _X],
    [_X, 120, 240, 140, 250, 190, _X, _X, 160, 200, 300]], dtype=np.float64)
WESELY_RLU = np.array([
    [_X, 2000, 2000, 2000, 2000, 2000, _X, _X, 2500, 2000, 4000],
    [_X, 9000, 9000, 9000, 4000, 8000, _X, _X, 9000, 9000, 9000],
    [_X, _X, 9000, 9000, 4000, 8000, _X, _X, 9000, 9000, 9000],
    [_X, _X, _X, _X, 6000, 9000, _X, _X, 9000, 9000, 9000],
    [_X, 4000, 4000, 4000, 2000, 3000, _X, _X, 4000, 4000, 8000]], dtype=np.float64)
WESELY_RAC = np.array([
    [100, 200, 100, 2000, 2000, 2000, 0, 0, 300, 150, 200],
    [100, 150, 100, 1500, 2000, 1700, 0, 0, 200, 120, 140],
    [100, 10, 100, 1000, 2000, 1500, 0, 0, 100, 50, 120],
    [100, 10, 10, 1000, 2000, 1500, 0, 0, 50, 10, 50],
    [100, 50, 80, 1200, 2000, 1500, 0, 0, 200, 60, 120]], dtype=np.float64)
WESELY_RGSS = np.array([
    [400, 150, 350, 500, 500, 100, 0, 1000, 0, 220, 400],
    [400, 200, 350, 500, 500, 100, 0, 1000, 0, 300, 400],
    [400, 150, 350, 500, 500, 200, 0, 1000, 0, 200, 400],
    [100, 100, 100, 100, 100, 100, 0, 1000, 100, 100, 50],
    [500, 150, 350, 500, 500, 200, 0, 1000, 0, 250, 400]], dtype=np.float64)
WESELY_RGSO = np.array([
    [300, 150, 200, 200, 200, 300, 2000, 400, 1000, 180, 200],
    [300, 150, 200, 200, 200, 300, 2000, 400, 800, 180, 200],
    [300, 150, 200, 200, 200, 300, 2000, 400, 1000, 180, 200],
    [600, 3500, 3500, 3500, 3500, 3500, 2000, 400, 3500, 3500, 3500],
    [300, 150, 200, 200, 200, 300, 2000, 400, 1000, 180, 200]], dtype=np.float64)
WESELY_RCLS = np.array([
    [_X, 2000, 2000, 2000, 2000, 2000, _X, _X, 2500, 2000, 4000],
    [_X, 9000, 9000, 9000, 2000, 4000, _X, _X, 9000, 9000, 9000],
    [_X, _X, 9000, 9000, 3000, 6000, _X, _X, 9000, 9000, 9000],
    [_X, _X, _X, 9000, 200, 400, _X, _X, 9000, _X, 9000],
    [_X, 4000, 4000, 4000, 2000, 3000, _X, _X, 4000, 4000, 8000]], dtype=np.float64)
WESELY_RCLO = np.array([
    [_X, 1000, 1000, 1000, 1000, 1000, _X, _X, 1000, 1000, 1000],
    [_X, 400, 400, 400, 1000, 600, _X, _X, 400, 400, 400],
    [_X, 1000, 400, 400, 1000, 600, _X, _X, 800, 600, 600],
    [_X, 1000, 1000, 400, 1500, 600, _X, _X, 800, 1000, 800],
    [_X, 1000, 500, 500, 1500, 700, _X, _X, 600, 800, 800]], dtype=np.float64)

SPECIAL_NONE, SPECIAL_SO2, SPECIAL_O3 = 0, 1, 2
#: Table entries of 0 ("no resistance") are floored at this value so 1/r stays finite [D].
_R_FLOOR = 1.0
#: Bounds of r_c, s m-1 (HYSPLIT).
RC_MIN, RC_MAX = 10.0, 9999.0
_KARMAN = 0.4
_NU_AIR = 1.5e-5  # kinematic viscosity of air, m2 s-1
_D_H2O = 2.5e-5  # molecular diffusivity of water vapour, m2 s-1
_PRANDTL = 0.72


@njit(cache=True, inline="always")
def wesely_rc(landuse, season, solar, t_surface, wetness, dratio, hstar, f0, special, slope=0.0):
    """Bulk surface resistance r_c (s m-1) of Wesely (1989), SCIENCE.md 4.1.

    landuse: 1..11 (Wesely classes); season: 1..5; solar: irradiance G, W m-2; t_surface: deg C;
    wetness: 0 dry, 1 dew, 2 rain; dratio: D_H2O/D_x; hstar: effective Henry constant, M atm-1;
    f0: reactivity factor; special: SPECIAL_SO2 / SPECIAL_O3 wet-leaf rules, else SPECIAL_NONE;
    slope: terrain slope, rad. Result bounded to [10, 9999] s m-1.
    """
    s = season - 1
    lu = landuse - 1
    ri = WESELY_RI[s, lu]
    rlu = WESELY_RLU[s, lu]
    rac = WESELY_RAC[s, lu]
    rgss = max(WESELY_RGSS[s, lu], _R_FLOOR)
    rgso = max(WESELY_RGSO[s, lu], _R_FLOOR)
    rcls = max(WESELY_RCLS[s, lu], _R_FLOOR)
    rclo = max(WESELY_RCLO[s, lu], _R_FLOOR)
    ts = t_surface
    if 0.0 < ts < 40.0:
        rs = ri * (1.0 + (200.0 / (solar + 0.1)) ** 2) * (400.0 / (ts * (40.0 - ts)))
    else:
        rs = RESISTANCE_INF
    if wetness > 0 and season != 4:
        rs *= 3.0
    rs = min(rs, RESISTANCE_INF)
    rsx = rs * dratio
    rmx = 1.0 / (hstar / 3000.0 + 100.0 * f0)
    rlux = rlu / (1.0e-5 * hstar + f0)
    if wetness > 0 and season != 4 and rlu < RESISTANCE_INF:
        if special == SPECIAL_SO2:
            rlux = 100.0 if wetness == 1 else 1.0 / (1.0 / 5000.0 + 1.0 / (3.0 * rlu))
        elif special == SPECIAL_O3:
            rlux = 1.0 / ((1.0 / 3000.0 if wetness == 1 else 1.0 / 1000.0) + 1.0 / (3.0 * rlu))
    rdc = 100.0 * (1.0 + 1000.0 / (solar + 10.0)) / (1.0 + 1000.0 * slope)
    rclx = 1.0 / (1.0e-5 * hstar / rcls + f0 / rclo)
    rgsx = 1.0 / (1.0e-5 * hstar / rgss + f0 / rgso)
    cold = 1000.0 * math.exp(-ts - 4.0)  # Wesely's low-temperature increase
    rlux += cold
    rclx += cold
    rgsx += cold
    g = 1.0 / (rsx + rmx) + 1.0 / rlux + 1.0 / (rdc + rclx) + 1.0 / (rac + rgsx)
    rc = 1.0 / g
    return min(max(rc, RC_MIN), RC_MAX)


@parallel_kernel(lambda landuse, *_: landuse.shape[0])
@njit(cache=True, nogil=True)
def surface_resistance(start, stop, landuse, season, solar, t_surface, wetness, dratio, hstar, f0,
                       special, out):
    """r_c per cell and species. landuse, wetness: (ny, nx) int; season: int 1..5;
    solar (W m-2), t_surface (deg C): (ny, nx); dratio, hstar, f0, special: (nspec,);
    out: (nspec, ny, nx), s m-1."""
    nspec = dratio.shape[0]
    ny, nx = landuse.shape
    for j in range(start, stop):
        for i in range(nx):
            for s in range(nspec):
                out[s, j, i] = wesely_rc(landuse[j, i], season, solar[j, i], t_surface[j, i],
                                         wetness[j, i], dratio[s], hstar[s], f0[s], special[s])


@njit(cache=True, inline="always")
def _psi_h(zeta):
    """Businger-Dyer integrated stability function for heat (SCIENCE.md 4.1); zeta = z/L,
    the stable form is held at zeta = 1 beyond 1."""
    if zeta > 0.0:
        return -5.0 * min(zeta, 1.0)
    return 2.0 * math.log(0.5 * (1.0 + math.sqrt(1.0 - 16.0 * zeta)))


@njit(cache=True, inline="always")
def aerodynamic_resistance(z_ref, z0, ustar, obukhov_length):
    """r_a = [ln(z_r/z_0) - psi_h(z_r/L) + psi_h(z_0/L)]/(kappa u*), s m-1 (L = inf: neutral)."""
    inv_l = 0.0 if math.isinf(obukhov_length) else 1.0 / obukhov_length
    ra = (math.log(z_ref / z0) - _psi_h(z_ref * inv_l) + _psi_h(z0 * inv_l)) / (_KARMAN * ustar)
    return max(ra, 0.0)


@parallel_kernel(lambda rc, *_: rc.shape[1])
@njit(cache=True, nogil=True)
def dry_deposition_velocity_gas(start, stop, rc, z_ref, z0, ustar, obukhov_length, dratio, out):
    """v_d = 1/(r_a + r_b + r_c), m s-1.

    rc: (nspec, ny, nx) surface resistance, s m-1; z_ref: (ny, nx) height of the lowest layer
    midpoint, m; z0: (ny, nx) roughness length, m; ustar: (ny, nx) friction velocity, m s-1;
    obukhov_length: (ny, nx), m; dratio: (nspec,) D_H2O/D_x. r_b = 2/(kappa u*) (Sc/Pr)^(2/3)
    with Sc = nu/D_x (Wesely & Hicks 1977). out: (nspec, ny, nx).
    """
    nspec = rc.shape[0]
    ny, nx = z0.shape
    for j in range(start, stop):
        for i in range(nx):
            us = max(ustar[j, i], 1.0e-3)
            ra = aerodynamic_resistance(z_ref[j, i], z0[j, i], us, obukhov_length[j, i])
            for s in range(nspec):
                sc = _NU_AIR / (_D_H2O / dratio[s])
                rb = 2.0 / (_KARMAN * us) * (sc / _PRANDTL) ** (2.0 / 3.0)
                out[s, j, i] = 1.0 / (ra + rb + rc[s, j, i])


@parallel_kernel(lambda ustar, *_: ustar.shape[0])
@njit(cache=True, nogil=True)
def dry_deposition_velocity_particle(start, stop, ustar, obukhov_length, settling, out):
    """Fine-particle v_d = u*/500 [1 + (-300/L)^(2/3)] (L < 0) or u*/500 (L >= 0), plus the
    settling velocity (Wesely et al. 1985 sulfate-over-grass form, SCIENCE.md 4.2 fallback).

    ustar, obukhov_length: (ny, nx); settling: (nspec,) m s-1; out: (nspec, ny, nx), m s-1.
    """
    nspec = settling.shape[0]
    ny, nx = ustar.shape
    for j in range(start, stop):
        for i in range(nx):
            el = obukhov_length[j, i]
            v = ustar[j, i] / 500.0
            if el < 0.0:
                v *= 1.0 + (-300.0 / el) ** (2.0 / 3.0)
            for s in range(nspec):
                out[s, j, i] = v + settling[s]


@parallel_kernel(lambda q, halo, precip, *_: precip.shape[1])
@njit(cache=True, nogil=True)
def wet_scavenging(start, stop, q, halo, precip, coef_a, coef_b, dt, rho_dz, deposited):
    """c <- c exp(-A P^B dt) in every layer with precipitation, in place on ``q``.

    q: (nspec, nz+2h, ny+2h, nx+2h) mixing ratios; precip: (nz, ny, nx) precipitation rate
    through the layer, mm h-1 (0 above cloud top); coef_a (s-1), coef_b: (nspec,);
    rho_dz: (nz, ny, nx) kg m-2; deposited: (nspec, ny, nx) receives the column loss
    sum_k rho_dz (q_old - q_new), [q] kg m-2.
    """
    nspec = q.shape[0]
    nz, ny, nx = precip.shape
    h = halo
    for j in range(start, stop):
        for s in range(nspec):
            for i in range(nx):
                deposited[s, j, i] = 0.0
        for k in range(nz):
            for i in range(nx):
                p = precip[k, j, i]
                if p <= 0.0:
                    continue
                for s in range(nspec):
                    if coef_a[s] <= 0.0:
                        continue
                    lam = coef_a[s] * p ** coef_b[s]
                    old = q[s, k + h, j + h, i + h]
                    new = old * math.exp(-lam * dt)
                    q[s, k + h, j + h, i + h] = new
                    deposited[s, j, i] += rho_dz[k, j, i] * (old - new)


_EPS_SL = 0.1  # surface-layer fraction of the PBL
_C1 = 0.6
_A_HB = 7.2


@njit(cache=True, inline="always")
def _phi_stable(zeta):
    return 1.0 + 5.0 * zeta if zeta <= 1.0 else 5.0 + zeta


@parallel_kernel(lambda z_interface, *_: z_interface.shape[1])
@njit(cache=True, nogil=True)
def holtslag_boville_kz(start, stop, z_interface, pbl_height, ustar, obukhov_length, wstar, kz_min,
                        out):
    """Eddy diffusivity for scalars, Holtslag & Boville (1993), SCIENCE.md 3.1, m2 s-1.

    K = kappa w_t z (1 - z/h)^2 inside the PBL (0 < z < h), floored at kz_min everywhere.
    Stable/neutral (L >= 0): w_t = u*/phi_h(z/L). Unstable: surface layer (z <= 0.1 h)
    w_t = u*/phi_h(z/L) with phi_h = (1 - 15 z/L)^(-1/2); outer layer w_m = (u*^3 + 0.6 w*^3)^(1/3),
    w_t = w_m/Pr, Pr = phi_h/phi_m + 7.2 kappa 0.1 w*/w_m evaluated at z = 0.1 h. Above the PBL
    only kz_min (the local Ri closure is not implemented here).

    z_interface: (nz+1, ny, nx) interface heights above ground, m; pbl_height, ustar,
    obukhov_length, wstar, kz_min: (ny, nx); out: (nz+1, ny, nx).
    """
    nzi, ny, nx = z_interface.shape
    for j in range(start, stop):
        for i in range(nx):
            h = pbl_height[j, i]
            us = ustar[j, i]
            el = obukhov_length[j, i]
            ws = wstar[j, i]
            kmin = kz_min[j, i]
            unstable = el < 0.0
            wm = 1.0
            pr = 1.0
            if unstable:
                zs = _EPS_SL * h
                phi_h_s = (1.0 - 15.0 * zs / el) ** -0.5
                phi_m_s = (1.0 - 15.0 * zs / el) ** (-1.0 / 3.0)
                wm = (us ** 3 + _C1 * ws ** 3) ** (1.0 / 3.0)
                pr = phi_h_s / phi_m_s + _A_HB * _KARMAN * _EPS_SL * ws / wm
            for k in range(nzi):
                z = z_interface[k, j, i]
                kz = 0.0
                if 0.0 < z < h:
                    shape = _KARMAN * z * (1.0 - z / h) ** 2
                    if not unstable:
                        zeta = 0.0 if math.isinf(el) else z / el
                        kz = shape * us / _phi_stable(zeta)
                    elif z <= _EPS_SL * h:
                        kz = shape * us * (1.0 - 15.0 * z / el) ** 0.5
                    else:
                        kz = shape * wm / pr
                out[k, j, i] = max(kz, kmin)
