"""Vertical allocation: Briggs plume rise for stacks, layer fractions for area sources.

Plume rise (SCIENCE.md 1.6) follows the Briggs formulas as coded in SMOKE/CMAQ ``PLMRIS``
(Briggs 1969, 1971, 1972 "Discussion on chimney plumes in neutral and stable surroundings",
Atmos. Environ. 6, 507; Briggs 1975 "Plume rise predictions", in Lectures on Air Pollution and
Environmental Impact Analyses, AMS; CMAQ User's Guide 6.9 inline plume rise). With stack height
h_s, diameter d, exit velocity v_s, exit temperature T_s, ambient temperature T_a and wind u at the
stack top (u >= 1 m/s), friction velocity u*, kinematic surface heat flux H (K m s-1), mixing height
z_i and potential-temperature gradient dtheta/dz:

    F    = g v_s d^2 (T_s - T_a) / (4 T_s)                  buoyancy flux, m4 s-3
    dh_m = 3 d v_s / u                                      momentum rise (used when F <= 0 or larger)
    neutral   dh_n = min(10 h_s, 1.2 (F/(u u*^2))^0.6 (h_s + 1.3 F/(u u*^2))^0.4)
    unstable  dh_u = 30 (F/u)^0.6
    stable    dh_s = 2.6 (F/(u s))^(1/3),  s = max(g/T_a dtheta/dz, 3e-5) s-2

    convective (g H / T_a > 3e-6) and h_s < z_i:  dh = max(min(dh_n, dh_u), dh_m)
    convective and h_s >= z_i, or stable (g H/T_a < -3e-6 or dtheta/dz > 0.001 K/m):
                                                  dh = min(dh_n, dh_s)   (max with dh_m above z_i)
    otherwise (neutral):                          dh = dh_n
    F <= 0:                                       dh = max(dh_m, 2 m)

The plume centreline is ``h_s + dh``; the plume spreads uniformly in height between
``h_s + 0.5 dh`` and ``h_s + 1.5 dh`` (SMOKE ``PLSPRD`` top = 1.5 dh), capped at the model top.
Differences from CMAQ: the layer-by-layer residual-buoyancy iteration of PLMRIS is not done
(met at the stack top only), and the plume is spread by height, not pressure.
Without meteorology every stack emits into the layer containing its stack top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import GRAVITY

__all__ = ["buoyancy_flux", "briggs_plume_rise", "layer_fractions", "PlumeMet",
           "stack_layer_fractions", "area_layer_fractions"]

_SMALL_S = 3.0e-5     # minimum stability parameter s, s-2 (CMAQ SMALL)
_HCRIT = 3.0e-6       # |g H / T| threshold for convective/stable, m2 s-3 (CMAQ 1e-4*0.03)


def buoyancy_flux(diameter, exit_velocity, exit_temperature, ambient_temperature):
    """Briggs buoyancy flux F = g v d^2 (Ts - Ta)/(4 Ts), m4 s-3 (negative for cold plumes)."""
    d, v, ts, ta = (np.asarray(a, dtype=float) for a in
                    (diameter, exit_velocity, exit_temperature, ambient_temperature))
    return 0.25 * GRAVITY * v * d * d * (ts - ta) / ts


def briggs_plume_rise(stack_height, diameter, exit_velocity, exit_temperature,
                      ambient_temperature, wind_speed, ustar=0.3, heat_flux_kin=0.0,
                      mixing_height=1000.0, dthetadz=0.0):
    """Plume rise dh (m) above the stack top (module docstring); arrays broadcast.

    ``heat_flux_kin`` is the kinematic surface sensible heat flux H / (rho c_p), K m s-1.
    """
    hs, d, vs, ts, ta, u, us, hfx, zi, dth = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (
        stack_height, diameter, exit_velocity, exit_temperature, ambient_temperature,
        wind_speed, ustar, heat_flux_kin, mixing_height, dthetadz)))
    u = np.maximum(u, 1.0)
    us = np.maximum(us, 0.01)
    F = buoyancy_flux(d, vs, ts, ta)
    Fp = np.maximum(F, 1e-12)
    dh_m = 3.0 * d * vs / u
    b = Fp / (u * us * us)
    dh_n = np.minimum(10.0 * hs, 1.2 * b**0.6 * (hs + 1.3 * b) ** 0.4)
    dh_u = 30.0 * (Fp / u) ** 0.6
    s = np.maximum(GRAVITY * dth / ta, _SMALL_S)
    dh_s = 2.6 * (Fp / (u * s)) ** (1.0 / 3.0)
    hstar = GRAVITY * hfx / ta
    convective = hstar > _HCRIT
    below_zi = hs < zi
    stable = (~convective) & ((hstar < -_HCRIT) | (dth > 0.001))
    dh = np.where(
        convective & below_zi, np.maximum(np.minimum(dh_n, dh_u), dh_m),
        np.where(convective, np.maximum(np.minimum(dh_n, dh_s), dh_m),
                 np.where(stable, np.minimum(dh_n, dh_s), dh_n)))
    return np.where(F <= 0.0, np.maximum(dh_m, 2.0), dh)


def layer_fractions(z_interfaces, bottom, top) -> np.ndarray:
    """Fractions of a uniform slab [bottom, top] (m) in each layer of ``z_interfaces`` (nz+1,).

    A slab above the model top is moved into the top layer; a zero-thickness slab goes to the
    layer containing it. Sums to 1.
    """
    z = np.asarray(z_interfaces, dtype=float)
    nz = z.size - 1
    top = float(min(top, z[-1]))
    bottom = float(min(bottom, top))
    if top - bottom <= 1e-9:
        k = int(np.clip(np.searchsorted(z, top, side="right") - 1, 0, nz - 1))
        out = np.zeros(nz)
        out[k] = 1.0
        return out
    ov = np.clip(np.minimum(z[1:], top) - np.maximum(z[:-1], bottom), 0.0, None)
    return ov / ov.sum()


@dataclass
class PlumeMet:
    """Meteorology for plume rise on the model grid (all optional but ``z_interfaces``).

    z_interfaces: layer interface heights above ground, m, (nz+1, ny, nx) or (nz+1,).
    temperature: K, (nz, ny, nx); wind_speed: m s-1, (nz, ny, nx);
    dthetadz: K m-1, (nz, ny, nx); ustar: m s-1 (ny, nx); heat_flux: surface sensible heat flux
    W m-2 (ny, nx); air_density: kg m-3 (ny, nx) for H -> kinematic; pblh: m (ny, nx).
    """

    z_interfaces: np.ndarray
    temperature: np.ndarray | None = None
    wind_speed: np.ndarray | None = None
    dthetadz: np.ndarray | None = None
    ustar: np.ndarray | None = None
    heat_flux: np.ndarray | None = None
    air_density: np.ndarray | None = None
    pblh: np.ndarray | None = None

    def column_heights(self, j: int, i: int) -> np.ndarray:
        z = np.asarray(self.z_interfaces, dtype=float)
        return z if z.ndim == 1 else z[:, j, i]

    @property
    def has_plume_met(self) -> bool:
        return self.temperature is not None and self.wind_speed is not None


def _at(a, j, i, default):
    if a is None:
        return default
    a = np.asarray(a, dtype=float)
    return a if a.ndim == 0 else a[..., j, i]


def stack_layer_fractions(points, cells, met: PlumeMet) -> np.ndarray:
    """Layer fractions (npoint, nz) of each stack's emissions.

    ``cells``: (j, i) arrays of each stack's model cell (all inside). With plume meteorology the
    Briggs rise is used; otherwise the stack-top layer.
    """
    jj, ii = cells
    nz = np.asarray(met.z_interfaces).shape[0] - 1
    out = np.zeros((len(points), nz))
    for n in range(len(points)):
        j, i = int(jj[n]), int(ii[n])
        z = met.column_heights(j, i)
        hs = float(points.stack_height[n])
        if not met.has_plume_met:
            out[n] = layer_fractions(z, hs, hs)
            continue
        k = int(np.clip(np.searchsorted(z, hs, side="right") - 1, 0, nz - 1))
        ta = _at(met.temperature, j, i, None)[k]
        u = _at(met.wind_speed, j, i, None)[k]
        dth = _at(met.dthetadz, j, i, np.zeros(nz))
        dth = float(np.asarray(dth)[k]) if np.ndim(dth) else float(dth)
        rho = float(_at(met.air_density, j, i, 1.2))
        hfx = float(_at(met.heat_flux, j, i, 0.0)) / (rho * 1004.5)
        dh = float(briggs_plume_rise(hs, points.stack_diameter[n], points.exit_velocity[n],
                                     points.exit_temperature[n], ta, u,
                                     float(_at(met.ustar, j, i, 0.3)), hfx,
                                     float(_at(met.pblh, j, i, 1000.0)), dth))
        out[n] = layer_fractions(z, hs + 0.5 * dh, hs + 1.5 * dh)
    return out


def area_layer_fractions(profile, nz: int) -> np.ndarray:
    """A sector's area-source layer profile (fractions of layers 1..n) padded to nz, summing to 1.

    ``None`` means all in layer 1 (the surface layer).
    """
    out = np.zeros(nz)
    if profile is None:
        out[0] = 1.0
        return out
    p = np.asarray(profile, dtype=float)
    if p.ndim != 1 or p.size > nz or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"area layer profile {profile!r} must be <= {nz} fractions >= 0")
    out[: p.size] = p / p.sum()
    return out
