"""Vertical eddy diffusivity Kz on the model grid (SCIENCE.md 3.1).

* Inside the PBL: the Holtslag & Boville (1993, J. Climate 6, 1825) K-profile, computed by the
  numba kernel :func:`aqforecast.kernels.deposition.holtslag_boville_kz` from the PBL height,
  u*, the Obukhov length and the convective velocity scale w* derived here from the surface
  fluxes:

      (w'theta_v')_0 = H / (rho c_p) + 0.61 theta_1 E / (rho L_v)         (H, E: HFX, LH in W m-2)
      L  = - u*^3 theta_v0 / (kappa g (w'theta_v')_0)                   (Obukhov length, m)
      w* = [(g / theta_v0) (w'theta_v')_0 h]^(1/3)  for (w'theta_v')_0 > 0, else 0.

* Above the PBL: HB93's local closure K = l^2 S F(Ri), 1/l = 1/(kappa z) + 1/lambda,
  lambda = 30 + 270 exp(1 - z/1000) m, F = (1 - 18 Ri)^(1/2) (Ri < 0), 1/[1 + 10 Ri (1 + 8 Ri)]
  (Ri >= 0), Ri = (g/theta_v)(d theta_v/dz)/S^2 (HB93 eqs. 3.2-3.7).
* Everywhere a floor K_min = 0.01 + 0.99 f_urb m2 s-1 (CMAQ KZMIN: 1.0 urban, 0.01 otherwise,
  linear in the urban fraction [D]), and a cap of :data:`KZ_MAX`.

Kz is returned at layer interfaces (nz+1, ny, nx), index k = bottom of layer k; the ground
(k = 0) and lid (k = nz) values are 0 (no diffusive flux through them).
"""

from __future__ import annotations

import numpy as np

from ..constants import CP_DRY, GRAVITY, KARMAN
from ..kernels.deposition import holtslag_boville_kz

__all__ = ["kz_profile", "kz_minimum", "obukhov_length", "convective_velocity", "KZ_MAX"]

#: Upper bound of Kz, m2 s-1 [D] (keeps the implicit solver well conditioned; HB93 values in a
#: deep convective PBL stay below ~300 m2 s-1).
KZ_MAX = 1000.0
_LV = 2.5e6  # latent heat of vaporisation, J kg-1
_USTAR_MIN = 0.01


def kz_minimum(urban_fraction):
    """K_min = 0.01 + 0.99 f_urb, m2 s-1 (CMAQ KZMIN rural 0.01 / urban 1.0)."""
    return 0.01 + 0.99 * np.clip(np.asarray(urban_fraction, dtype=float), 0.0, 1.0)


def _virtual_heat_flux(hfx, lh, rho, theta1):
    return hfx / (rho * CP_DRY) + 0.61 * theta1 * lh / (rho * _LV)


def obukhov_length(ustar, hfx, lh, rho, theta_v1):
    """Obukhov length L (m) from u* (m s-1), HFX, LH (W m-2), surface air density (kg m-3) and
    the lowest-layer virtual potential temperature (K); +inf for zero buoyancy flux."""
    wtv = _virtual_heat_flux(hfx, lh, rho, theta_v1)
    us = np.maximum(ustar, _USTAR_MIN)
    with np.errstate(divide="ignore"):
        el = -us**3 * theta_v1 / (KARMAN * GRAVITY * wtv)
    return np.where(np.abs(wtv) < 1e-12, np.inf, el)


def convective_velocity(pblh, hfx, lh, rho, theta_v1):
    """Deardorff convective velocity scale w* (m s-1); 0 for stable/neutral surface layers."""
    wtv = _virtual_heat_flux(hfx, lh, rho, theta_v1)
    return np.cbrt(np.maximum(GRAVITY / theta_v1 * wtv * pblh, 0.0))


def kz_profile(z_interface, pblh, ustar, hfx, lh, rho_surface, theta_v, u, v, urban_fraction,
               local_closure: bool = True):
    """Eddy diffusivity for scalars at layer interfaces, m2 s-1, shape (nz+1, ny, nx).

    z_interface: (nz+1, ny, nx) interface heights above ground, m (z_interface[0] = 0).
    pblh, ustar, hfx, lh, rho_surface: (ny, nx) PBL height (m), u* (m s-1), sensible and latent
    heat flux (W m-2, upward positive), lowest-layer air density (kg m-3).
    theta_v, u, v: (nz, ny, nx) layer-centre virtual potential temperature (K) and winds (m s-1).
    urban_fraction: (ny, nx) in [0, 1], sets K_min.
    """
    zi = np.ascontiguousarray(z_interface, dtype=np.float64)
    nz = zi.shape[0] - 1
    tv1 = theta_v[0]
    h = np.maximum(np.asarray(pblh, dtype=float), 10.0)
    us = np.maximum(np.asarray(ustar, dtype=float), _USTAR_MIN)
    el = obukhov_length(us, hfx, lh, rho_surface, tv1)
    ws = convective_velocity(h, hfx, lh, rho_surface, tv1)
    kmin = np.ascontiguousarray(kz_minimum(urban_fraction))
    out = np.empty_like(zi)
    holtslag_boville_kz(zi, np.ascontiguousarray(h), np.ascontiguousarray(us),
                        np.ascontiguousarray(el, dtype=np.float64), np.ascontiguousarray(ws),
                        kmin, out)
    # Guard [D]: in free convection with weak wind (u* -> 0, -z/L >> 1) HB93's surface-layer
    # form kappa u* z (1 - 15 z/L)^(1/2) (1 - z/h)^2 grows like u*^(-1/2) and can exceed the
    # outer-layer value by a factor 3 just below z = 0.1 h; cap it by the outer-layer form
    # kappa (w_m/Pr) z (1 - z/h)^2, which it should join continuously at 0.1 h.
    unstable = np.isfinite(el) & (el < 0.0)
    if np.any(unstable):
        zs = 0.1 * h
        x = np.where(unstable, 1.0 - 15.0 * zs / np.where(unstable, el, -1.0), 1.0)
        wm = np.cbrt(us**3 + 0.6 * ws**3)
        pr = x ** -0.5 / x ** (-1.0 / 3.0) + 7.2 * KARMAN * 0.1 * ws / wm
        z = zi
        outer = KARMAN * (wm / pr) * z * np.clip(1.0 - z / h, 0.0, None) ** 2
        cap = unstable & (z <= zs) & (z < h)
        out = np.where(cap, np.minimum(out, np.maximum(outer, kmin)), out)
    if local_closure and nz > 1:
        zc = 0.5 * (zi[1:] + zi[:-1])
        dzc = np.maximum(np.diff(zc, axis=0), 1e-3)
        s2 = np.maximum((np.diff(u, axis=0) ** 2 + np.diff(v, axis=0) ** 2) / dzc**2, 1e-10)
        tvf = 0.5 * (theta_v[1:] + theta_v[:-1])
        ri = GRAVITY / tvf * np.diff(theta_v, axis=0) / dzc / s2
        fri = np.where(ri < 0.0, np.sqrt(np.abs(1.0 - 18.0 * np.minimum(ri, 0.0))),
                       1.0 / (1.0 + 10.0 * np.maximum(ri, 0.0) * (1.0 + 8.0 * np.maximum(ri, 0.0))))
        z = zi[1:-1]
        lam = 30.0 + 270.0 * np.exp(1.0 - z / 1000.0)
        ell = 1.0 / (1.0 / (KARMAN * np.maximum(z, 1e-3)) + 1.0 / lam)
        klocal = ell**2 * np.sqrt(s2) * fri
        above = z >= h[None]
        out[1:-1] = np.where(above, np.maximum(out[1:-1], klocal), out[1:-1])
    np.minimum(out, KZ_MAX, out=out)
    out[0] = 0.0
    out[-1] = 0.0
    return out
