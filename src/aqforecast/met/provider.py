"""Meteorology on the model grid at any model time: :class:`MetProvider`.

Set up once per domain (indexes the wrfout files, checks that the WRF grid carries the model
grid), then asked for fields at model times. Each WRF record that is needed is regridded once to
the model grid (:class:`MetState`, float64 numpy) and kept in a small cache; a model time between
two records is served by **linear interpolation in time** of the two bracketing states (exact at
the record times), so calling it every step costs a few array blends.

Horizontal: the model grid must be the WRF grid or an aligned window of it (same projection --
Lambert, polar stereographic or Mercator -- and dx, cell centres coinciding); otherwise
:class:`MetGridError` says what differs.
WRF winds are grid-relative, so with the same projection no rotation is needed; the staggered
WRF U/V are used directly at the model's x/y faces (no destaggering).

Vertical: WRF eta levels -> model eta levels, mass-weighted in dry pressure
(:mod:`aqforecast.met.vertical`); pressure linear in dry pressure; T from the remapped theta.
Layer thickness, interface heights and dry-air density come from the hydrostatic relation on the
model levels, ``dz_k = dp_k / (g rho_k)`` with ``rho = p / (R_d T (1 + 1.608 q_v))`` (WRF's
equation of state for dry density), so that cell air mass ``M = rho A dz = dp A / g`` exactly
(``dp`` = dry-pressure thickness, ``A = dx^2 / m^2`` true cell area).

Air-mass fluxes (SCIENCE.md 1.2, 2.1, 2.5): x-face ``F = u (dp_u / g) (dy / m_u)`` (kg s-1),
y-face likewise; the vertical mass flux is diagnosed per step "yamo"-style, integrating upwards
from zero at the ground so that the air mass advected with the three fluxes over the step equals
the met air mass at the end of the step (:meth:`MetProvider.air_mass_fluxes`).

Precipitation is piecewise constant in time: between records i and i+1 the rate is the mean over
that interval (from the accumulations), so the precipitation total is conserved.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime, timezone
from dataclasses import dataclass, fields as dc_fields

import numpy as np
import xarray as xr

from ..constants import GRAVITY, KAPPA, P0, R_DRY
from ..grid import LambertGrid
from ..io.netcdf import InputFileError, grid_dataset
from ..io.wrf import R_VAPOUR_OVER_DRY, REQUIRED_CTM, WrfOutput
from .boundary_layer import kz_minimum, kz_profile
from .vertical import (MassWeightedRemap, interface_dry_pressure, interp_columns,
                       remap_mass_weighted)

__all__ = ["MetProvider", "MetState", "AirMassFluxes", "MetGridError", "grid_window",
           "as_datetime64"]

log = logging.getLogger(__name__)


class MetGridError(InputFileError):
    """The wrfout grid does not carry the model grid (projection, dx, placement or size)."""


@dataclass
class MetState:
    """Meteorology of one time on the model grid; float64, SI units, ``(lev, y, x)``.

    Level 0 is the ground layer. Interface arrays have nz+1 levels (index k = bottom of layer
    k); face arrays: x-faces (nz, ny, nx+1), y-faces (nz, ny+1, nx). Winds are grid-relative.
    """

    time: np.datetime64
    mass: np.ndarray          # cell dry-air mass, kg
    mu_dry: np.ndarray        # (ny, nx) model dry column mass (p_dry,surface - p_top), Pa
    p: np.ndarray             # pressure at layer centres, Pa
    t: np.ndarray             # temperature, K
    theta: np.ndarray         # potential temperature, K
    qv: np.ndarray            # water vapour mixing ratio, kg kg-1
    qc: np.ndarray            # cloud water mixing ratio, kg kg-1
    rho_dry: np.ndarray       # dry-air density, kg m-3
    cldfra: np.ndarray        # cloud fraction, 1
    dz: np.ndarray            # layer thickness, m
    z_centre: np.ndarray      # layer-centre height above ground, m
    z_interface: np.ndarray   # (nz+1) interface height above ground, m
    kz: np.ndarray            # (nz+1) eddy diffusivity at interfaces, m2 s-1
    u: np.ndarray             # x wind at cell centres, m s-1
    v: np.ndarray             # y wind at cell centres, m s-1
    u_face: np.ndarray        # (nz, ny, nx+1) x wind at x-faces, m s-1
    v_face: np.ndarray        # (nz, ny+1, nx) y wind at y-faces, m s-1
    flux_x: np.ndarray        # (nz, ny, nx+1) air-mass flux through x-faces, kg s-1 (+ to east)
    flux_y: np.ndarray        # (nz, ny+1, nx) air-mass flux through y-faces, kg s-1 (+ to north)
    psfc: np.ndarray          # (ny, nx) surface pressure, Pa
    t2: np.ndarray            # 2 m temperature, K
    u10: np.ndarray           # 10 m grid-relative wind, m s-1 (zeros when absent)
    v10: np.ndarray
    pblh: np.ndarray          # boundary-layer height, m
    hfx: np.ndarray           # sensible heat flux, W m-2
    lh: np.ndarray            # latent heat flux, W m-2
    ust: np.ndarray           # friction velocity, m s-1
    swdown: np.ndarray        # surface downward shortwave, W m-2
    rain_rate: np.ndarray     # precipitation rate, mm h-1 (constant over a met interval)
    lwp: np.ndarray           # column cloud liquid water path, g m-2

    @staticmethod
    def lerp(a: "MetState", b: "MetState", w: float, time) -> "MetState":
        """(1 - w) a + w b for every array (fresh arrays); rain is taken from ``a`` unless w = 1."""
        out = {}
        for f in dc_fields(MetState):
            if f.name == "time":
                continue
            x, y = getattr(a, f.name), getattr(b, f.name)
            if f.name == "rain_rate":
                out[f.name] = (y if w >= 1.0 else x).copy()
            else:
                out[f.name] = (1.0 - w) * x + w * y
        return MetState(time=time, **out)


@dataclass
class AirMassFluxes:
    """Air-mass fluxes for one transport step [t, t + dt], kg s-1 (multiply by dt for kg).

    ``flux_x`` (nz, ny, nx+1), ``flux_y`` (nz, ny+1, nx): horizontal fluxes at mid-step;
    ``flux_z`` (nz+1, ny, nx): diagnosed vertical flux, + upwards, 0 at the ground, so that
    ``mass_start + dt * (flux convergence) == mass_end`` to round-off. ``flux_z[-1]`` is the
    residual flux through the lid (monitor it: SCIENCE.md 2.5).
    """

    flux_x: np.ndarray
    flux_y: np.ndarray
    flux_z: np.ndarray
    mass_start: np.ndarray
    mass_end: np.ndarray
    dt: float

    @property
    def top_flux_fraction(self) -> float:
        """max |lid flux| dt / column air mass (1): the lid's share of the column mass."""
        col = self.mass_start.sum(axis=0)
        return float(np.max(np.abs(self.flux_z[-1]) * self.dt / col))

    def step_fluxes(self):
        """(flux_x, flux_y, flux_z) in kg per step, the arrays :class:`~aqforecast.transport.
        advection.Advection` takes."""
        return self.flux_x * self.dt, self.flux_y * self.dt, self.flux_z * self.dt


def as_datetime64(time) -> np.datetime64:
    """datetime64[ms] (UTC) from a datetime64, an ISO string or a (timezone-aware) datetime."""
    if isinstance(time, datetime) and time.tzinfo is not None:
        time = time.astimezone(timezone.utc).replace(tzinfo=None)
    return np.datetime64(time).astype("datetime64[ms]")


def grid_window(grid: LambertGrid, wrf: WrfOutput) -> tuple[int, int]:
    """(j0, i0) offset of the model grid inside the WRF grid; :class:`MetGridError` otherwise."""
    src = wrf.paths[0]
    try:
        wrf.check_projection(grid)  # MAP_PROJ, TRUELAT1/2, STAND_LON, DX/DY
    except InputFileError as exc:
        raise MetGridError(str(exc)) from None
    xw, yw = grid.to_xy(wrf.static.lon[0, 0], wrf.static.lat[0, 0])
    fi = (grid.x[0] - float(xw)) / grid.dx
    fj = (grid.y[0] - float(yw)) / grid.dx
    i0, j0 = int(round(fi)), int(round(fj))
    if abs(fi - i0) > 0.05 or abs(fj - j0) > 0.05:
        raise MetGridError(
            f"{src}: model grid {grid.name!r} cell centres are not on WRF cell centres: its first "
            f"cell lies at WRF cell ({fi:.3f}, {fj:.3f}) (i, j); grids must be aligned")
    if i0 < 0 or j0 < 0 or i0 + grid.nx > wrf.nx or j0 + grid.ny > wrf.ny:
        raise MetGridError(
            f"{src}: model grid {grid.name!r} ({grid.nx} x {grid.ny} cells from WRF cell "
            f"i={i0}, j={j0}) is not inside the WRF grid ({wrf.nx} x {wrf.ny} cells)")
    lon, lat = grid.lonlat
    wl = wrf.static.lon[j0:j0 + grid.ny, i0:i0 + grid.nx]
    wa = wrf.static.lat[j0:j0 + grid.ny, i0:i0 + grid.nx]
    dist = np.hypot((wl - lon) * np.cos(np.deg2rad(lat)), wa - lat) * 111195.0
    if dist.max() > 0.05 * grid.dx:
        raise MetGridError(f"{src}: XLAT/XLONG differ from model grid {grid.name!r} cell centres "
                           f"by up to {dist.max():.0f} m")
    return j0, i0


class MetProvider:
    """Meteorology for one model domain from its wrfout files, at any model time.

    Parameters
    ----------
    grid: the model :class:`~aqforecast.grid.LambertGrid`, with a ``vertical`` grid.
    paths: wrfout path(s) or glob pattern(s) of this domain.
    required: wrfout variables to insist on (default :data:`aqforecast.io.wrf.REQUIRED_CTM`).
    cache_size: number of regridded WRF records kept (>= 2: the bracketing pair).
    kz_local_closure: add HB93's local Ri closure above the PBL (else K_min there).

    Typical use per model step ``[t, t + dt]``::

        met = MetProvider.from_config(cfg, "d01")
        s = met.state(t)                          # MetState: rho_dry, dz, kz, t, p, qv, ...
        fl = met.air_mass_fluxes(t, dt)           # kg s-1 faces + diagnosed vertical flux
        fx, fy, fz = fl.step_fluxes()             # kg per step for Advection
    """

    def __init__(self, grid: LambertGrid, paths, required=REQUIRED_CTM, cache_size: int = 4,
                 kz_local_closure: bool = True):
        if grid.vertical is None:
            raise ValueError(f"grid {grid.name!r} has no vertical grid")
        self.grid = grid
        self.vertical = grid.vertical
        self.wrf = WrfOutput(paths, required)
        self.times = self.wrf.times
        if len(self.times) == 0:
            raise InputFileError(f"{self.wrf.paths[0]}: no times in the wrfout files")
        self.j0, self.i0 = grid_window(grid, self.wrf)
        st = self.wrf.static
        if st.p_top > self.vertical.p_top + 1e-6:
            raise MetGridError(f"{self.wrf.paths[0]}: WRF P_TOP = {st.p_top} Pa lies below the "
                               f"model top ({self.vertical.p_top} Pa); the model column must lie "
                               "inside WRF's (model p_top >= WRF P_TOP)")
        if np.any(~np.isfinite(st.eta_w)):
            raise InputFileError(f"{self.wrf.paths[0]}: ZNW (eta levels) missing or invalid")
        ny, nx = grid.ny, grid.nx
        self._sy = slice(self.j0, self.j0 + ny)
        self._sx = slice(self.i0, self.i0 + nx)
        win = (self._sy, self._sx)
        self.landmask = st.landmask[win].copy()
        self.lu_index = st.lu_index[win].copy()
        self.urban_fraction = st.urban_fraction[win].copy()
        self.terrain_height = st.hgt[win].copy()
        self.kz_min = kz_minimum(self.urban_fraction)
        self.cell_area = grid.cell_area
        self._dy_u = grid.dx / grid.map_factor_u
        self._dx_v = grid.dx / grid.map_factor_v
        self._eta_m = np.asarray(self.vertical.eta_interfaces)
        self.kz_local_closure = kz_local_closure
        self._cache: OrderedDict[int, MetState] = OrderedDict()
        self._cache_size = max(2, int(cache_size))
        mf = st.mapfac_m[win]
        if np.max(np.abs(mf / grid.map_factor - 1.0)) > 1e-4:
            raise MetGridError(f"{self.wrf.paths[0]}: MAPFAC_M differs from the model grid's map "
                               f"factor by {np.max(np.abs(mf / grid.map_factor - 1.0)):.2e}")
        log.info("met %s: %d wrfout times %s .. %s from %d file(s), window j0=%d i0=%d",
                 grid.name, len(self.times), self.times[0], self.times[-1],
                 len(self.wrf.paths), self.j0, self.i0)

    @classmethod
    def from_config(cls, cfg, domain: str, grids: dict | None = None, **kw) -> "MetProvider":
        """Provider for ``domain`` from a :class:`~aqforecast.config.RunConfig`."""
        from ..config import resolve_path
        from ..grid import grids_from_config
        grids = grids if grids is not None else grids_from_config(cfg)
        pattern = resolve_path(cfg, cfg.inputs.met.paths[domain])
        return cls(grids[domain], str(pattern), **kw)

    def close(self):
        self.wrf.close()

    @property
    def interval(self) -> np.timedelta64:
        """The files' own output interval: the most common spacing of the times."""
        if len(self.times) < 2:
            return np.timedelta64(0, "s")
        steps, counts = np.unique(np.diff(self.times), return_counts=True)
        return steps[int(np.argmax(counts))]

    def check_period(self, start, end=None) -> None:
        """The wrfout times cover [start, end] (``end`` None: the start alone) with no gap
        longer than :attr:`interval` inside it; else :class:`InputFileError` naming the files
        and the gap (a missing day must not be bridged by interpolation)."""
        start = np.datetime64(as_datetime64(start), "s")
        end = start if end is None else np.datetime64(as_datetime64(end), "s")
        where = f"met {self.grid.name} ({self.wrf.paths[0].parent})"
        t0, t1 = self.times[0], self.times[-1]
        if start < t0 or end > t1:
            raise InputFileError(f"{where}: wrfout times {t0} .. {t1} do not cover the run "
                                 f"{start} .. {end}; provide met files for the whole period")
        lo = int(np.searchsorted(self.times, start, side="right")) - 1
        hi = int(np.searchsorted(self.times, end, side="left"))
        step = self.interval
        span = self.times[lo:hi + 1]
        gaps = np.flatnonzero(np.diff(span) > step)
        if gaps.size:
            a, b = span[gaps[0]], span[gaps[0] + 1]
            raise InputFileError(
                f"{where}: no wrfout record between {a} and {b} ({(b - a) / np.timedelta64(1, 'h'):g}"
                f" h; the files' interval is {step / np.timedelta64(1, 'm'):g} min); "
                f"{gaps.size} gap(s) within the run {start} .. {end}")

    # ------------------------------------------------------------------ one record
    def _staggered_mu(self, mu_full: np.ndarray, axis: int) -> np.ndarray:
        """Dry column mass at x (axis=1) or y (axis=0) faces of the full WRF grid, edge-padded."""
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 1)
        m = np.pad(mu_full, pad, mode="edge")
        lo = [slice(None), slice(None)]
        hi = [slice(None), slice(None)]
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        return 0.5 * (m[tuple(lo)] + m[tuple(hi)])

    def _record(self, i: int) -> MetState:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        state = self._compute_record(i)
        self._cache[i] = state
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return state

    def _compute_record(self, i: int) -> MetState:
        f = self.wrf.fields(i)
        st = self.wrf.static
        sy, sx = self._sy, self._sx
        ny, nx = self.grid.ny, self.grid.nx
        ptw, ptm = st.p_top, self.vertical.p_top
        eta_w, eta_m = st.eta_w, self._eta_m
        c3, c4 = st.c3f, st.c4f

        def pressures(mu_w):
            pw = interface_dry_pressure(eta_w, mu_w, ptw, c3, c4)
            pm = interface_dry_pressure(eta_m, mu_w + ptw - ptm, ptm)
            return pw, pm

        mu_w = f.mu_dry[sy, sx]
        pw, pm = pressures(mu_w)
        c = (slice(None), sy, sx)
        remap = MassWeightedRemap(pw, pm)  # the mass points' fields share their pressures
        theta = remap(f.theta[c])
        qv = remap(f.qv[c])
        qc = np.maximum(remap(f.qc[c]), 0.0)
        cld = np.clip(remap(f.cldfra[c]), 0.0, 1.0)
        pwc = 0.5 * (pw[1:] + pw[:-1])
        pmc = 0.5 * (pm[1:] + pm[:-1])
        p = interp_columns(pwc, f.p[c], pmc)
        t = theta * (p / P0) ** KAPPA
        rho = p / (R_DRY * t * (1.0 + R_VAPOUR_OVER_DRY * qv))
        dp = pm[:-1] - pm[1:]
        dz = dp / (GRAVITY * rho)
        zi = np.concatenate([np.zeros((1, ny, nx)), np.cumsum(dz, axis=0)])
        mass = dp / GRAVITY * self.cell_area
        # faces: WRF's staggered winds, remapped with the face column mass
        mu_u = self._staggered_mu(f.mu_dry, 1)[sy, self.i0:self.i0 + nx + 1]
        pwu, pmu = pressures(mu_u)
        u_face = remap_mass_weighted(pwu, f.u_stag[:, sy, self.i0:self.i0 + nx + 1], pmu)
        flux_x = u_face * (pmu[:-1] - pmu[1:]) / GRAVITY * self._dy_u
        mu_v = self._staggered_mu(f.mu_dry, 0)[self.j0:self.j0 + ny + 1, sx]
        pwv, pmv = pressures(mu_v)
        v_face = remap_mass_weighted(pwv, f.v_stag[:, self.j0:self.j0 + ny + 1, sx], pmv)
        flux_y = v_face * (pmv[:-1] - pmv[1:]) / GRAVITY * self._dx_v
        u = 0.5 * (u_face[..., 1:] + u_face[..., :-1])
        v = 0.5 * (v_face[:, 1:] + v_face[:, :-1])
        w2 = (sy, sx)
        zeros = np.zeros((ny, nx))

        def sfc(a):
            return zeros.copy() if a is None else a[w2].copy()

        pblh, ust, hfx, lh = sfc(f.pblh), sfc(f.ust), sfc(f.hfx), sfc(f.lh)
        kz = kz_profile(zi, pblh, ust, hfx, lh, rho[0], theta * (1.0 + 0.608 * qv), u, v,
                        self.urban_fraction, local_closure=self.kz_local_closure)
        n = len(self.times)
        rain = self.wrf.rain_rate(i + 1) if i + 1 < n else self.wrf.rain_rate(i)
        return MetState(
            time=f.time, mass=mass, mu_dry=mu_w + ptw - ptm, p=p, t=t, theta=theta, qv=qv,
            qc=qc, rho_dry=rho, cldfra=cld, dz=dz, z_centre=zi[:-1] + 0.5 * dz, z_interface=zi,
            kz=kz, u=u, v=v, u_face=u_face, v_face=v_face, flux_x=flux_x, flux_y=flux_y,
            psfc=sfc(f.psfc), t2=sfc(f.t2), u10=sfc(f.u10), v10=sfc(f.v10), pblh=pblh,
            hfx=hfx, lh=lh, ust=ust, swdown=sfc(f.swdown), rain_rate=rain[w2].copy(),
            lwp=np.sum(rho * qc * dz, axis=0) * 1000.0)

    # ------------------------------------------------------------------ any time
    def _bracket(self, time) -> tuple[int, float, np.datetime64]:
        t = as_datetime64(time)
        t0, t1 = self.times[0], self.times[-1]
        if t < t0 or t > t1:
            raise ValueError(f"met {self.grid.name}: time {t} outside the wrfout times "
                             f"{t0} .. {t1} ({self.wrf.paths[0].parent})")
        if len(self.times) == 1:
            return 0, 0.0, t
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        i = min(max(i, 0), len(self.times) - 2)
        span = (self.times[i + 1] - self.times[i]) / np.timedelta64(1, "ms")
        w = float((t - self.times[i]) / np.timedelta64(1, "ms")) / span
        return i, w, t

    def state(self, time) -> MetState:
        """All fields at ``time`` (datetime64/ISO string), linear in time between records.

        Returns fresh arrays (safe to modify)."""
        i, w, t = self._bracket(time)
        a = self._record(i)
        if len(self.times) == 1:
            return MetState.lerp(a, a, 0.0, t)
        return MetState.lerp(a, self._record(i + 1), w, t)

    def field(self, name: str, time) -> np.ndarray:
        """One :class:`MetState` field at ``time`` (cheaper than :meth:`state`)."""
        i, w, _ = self._bracket(time)
        a = getattr(self._record(i), name)
        if len(self.times) == 1:
            return a.copy()
        b = getattr(self._record(i + 1), name)
        if name == "rain_rate":
            return (b if w >= 1.0 else a).copy()
        return (1.0 - w) * a + w * b

    def air_mass_fluxes(self, time, dt: float) -> AirMassFluxes:
        """Face air-mass fluxes (kg s-1) for the step [time, time + dt] and the diagnosed
        vertical flux that makes the advected air mass equal the met mass at time + dt.

        Horizontal fluxes are taken at mid-step; the vertical flux is integrated upwards from
        zero at the ground (SCIENCE.md 2.5, CMAQ "yamo"):
        ``fz[k+1] = fz[k] + (horizontal convergence)_k - (M_k(t+dt) - M_k(t)) / dt``.
        """
        t = as_datetime64(time)
        step = np.timedelta64(int(round(dt * 1000.0)), "ms")
        m0 = self.field("mass", t)
        m1 = self.field("mass", t + step)
        fx = self.field("flux_x", t + step / 2)
        fy = self.field("flux_y", t + step / 2)
        conv = (fx[..., :-1] - fx[..., 1:]) + (fy[:, :-1] - fy[:, 1:])
        fz = np.zeros((m0.shape[0] + 1,) + m0.shape[1:])
        np.cumsum(conv - (m1 - m0) / dt, axis=0, out=fz[1:])
        return AirMassFluxes(fx, fy, fz, m0, m1, float(dt))

    # ------------------------------------------------------------------ output
    def to_dataset(self, times=None) -> xr.Dataset:
        """CF dataset of the main model-grid fields at ``times`` (default: the wrfout times)."""
        times = self.times if times is None else np.atleast_1d(times)
        states = [self.state(t) for t in times]
        ds = grid_dataset(self.grid, with_metrics=False)
        ds = ds.assign_coords(time=("time", np.array([s.time for s in states],
                                                       dtype="datetime64[ns]")))
        L, S = ("time", "lev", "y", "x"), ("time", "y", "x")
        spec = {
            "air_mass": (L, "mass", {"long_name": "dry air mass of cell", "units": "kg"}),
            "air_pressure": (L, "p", {"standard_name": "air_pressure", "units": "Pa"}),
            "air_temperature": (L, "t", {"standard_name": "air_temperature", "units": "K"}),
            "air_density": (L, "rho_dry", {"long_name": "dry air density", "units": "kg m-3"}),
            "humidity_mixing_ratio": (L, "qv", {"standard_name": "humidity_mixing_ratio",
                                                "units": "kg kg-1"}),
            "layer_thickness": (L, "dz", {"long_name": "layer thickness", "units": "m"}),
            "height": (L, "z_centre", {"standard_name": "height", "units": "m"}),
            "x_wind": (L, "u", {"standard_name": "x_wind", "units": "m s-1"}),
            "y_wind": (L, "v", {"standard_name": "y_wind", "units": "m s-1"}),
            "cloud_fraction": (L, "cldfra", {
                "standard_name": "cloud_area_fraction_in_atmosphere_layer", "units": "1"}),
            "kz": (("time", "lev_interface", "y", "x"), "kz", {
                "long_name": "vertical eddy diffusivity at layer bottom interfaces",
                "units": "m2 s-1"}),
            "pblh": (S, "pblh", {"standard_name": "atmosphere_boundary_layer_thickness",
                                 "units": "m"}),
            "ustar": (S, "ust", {"long_name": "friction velocity", "units": "m s-1"}),
            "t2": (S, "t2", {"standard_name": "air_temperature", "units": "K",
                             "long_name": "2 m temperature"}),
            "swdown": (S, "swdown", {"standard_name": "surface_downwelling_shortwave_flux_in_air",
                                     "units": "W m-2"}),
            "precipitation_rate": (S, "rain_rate", {"standard_name": "lwe_precipitation_rate",
                                                    "units": "mm h-1"}),
        }
        for name, (dims, attr, attrs) in spec.items():
            ds[name] = (dims, np.stack([getattr(s, attr) for s in states]).astype(np.float32),
                        attrs)
        ds.attrs["met_source"] = ", ".join(str(p) for p in self.wrf.paths)
        return ds
