"""Reader for WRF-ARW ``wrfout`` files: one or several files, several times each.

What it owns: turning the raw WRF history variables into physical fields on WRF's own grid, with
standard names and SI units (the regridding to the model grid is :mod:`aqforecast.met`).

Derived fields (WRF-ARW Tech. Note v4, Skamarock et al. 2019, sections 2.1-2.3; the same formulas
as wrf-python's ``getvar``, checked against its CI results in ``tests/test_wrf.py``):

* pressure ``p = P + PB`` (Pa); potential temperature ``theta = T + 300`` (K);
  temperature ``T = theta (p / 1e5) ** (R_d / c_p)`` with R_d = 287, c_p = 1004.5 (WRF's values);
* geopotential height at w levels ``z_stag = (PH + PHB) / g`` (m above sea level, g = 9.81) and at
  mass levels the mean of the two bounding w levels; heights above ground subtract ``HGT``;
* dry-air density ``rho_d = p / (R_d T (1 + (R_v/R_d) q_v))`` (WRF's equation of state written for
  the inverse dry density alpha_d, R_v/R_d = 461.6/287);
* dry column mass ``mu_d = MU + MUB`` (Pa) when present, else ``sum(rho_d g dz)`` (hydrostatic);
* winds destaggered to mass points by averaging the two bounding faces (U, V, W); WRF winds are
  **grid-relative** (along the model x and y axes) already, so nothing is rotated when the model
  uses the same projection. :meth:`WrfOutput.earth_relative` rotates them to east/north with
  COSALPHA/SINALPHA (``ue = u cos a - v sin a``, ``ve = v cos a + u sin a``) for products;
* precipitation rate (mm h-1) from differences of the accumulated ``RAINC + RAINNC`` (plus
  ``I_RAINC``/``I_RAINNC`` x ``BUCKET_MM`` when the bucket option is on) between consecutive
  records, across file boundaries; a negative difference (accumulation restarted by a new run)
  falls back to the next interval's rate, or zero;
* cloud fraction ``CLDFRA`` when present, else a relative-humidity proxy (Sundqvist et al. 1989,
  MWR 117, 1641: ``f = 1 - sqrt((1 - RH)/(1 - RH_c))`` above RH_c = 0.8) [L].

Container: :class:`WrfOutput` indexes the files once (checks every needed variable in every file
before reading any data, reads ``Times`` and the static fields) and returns one time at a time as
a :class:`WrfFields` dataclass of float64 numpy arrays ``(lev, y, x)`` -- 16 days of hourly 3-D
fields do not fit comfortably in memory at once. :meth:`WrfOutput.to_dataset` returns a tidy CF
``xarray.Dataset`` of the derived fields for chosen times (notebooks, tests, products).
"""

from __future__ import annotations

import glob as _glob
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields as dc_fields
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from ..constants import CP_DRY, GRAVITY, P0, R_DRY, THETA_BASE
from .netcdf import NETCDF_LOCK, InputFileError

__all__ = [
    "WrfOutput",
    "WrfFields",
    "WrfStatic",
    "REQUIRED_CORE",
    "REQUIRED_CTM",
    "destagger",
    "read_wrfout",
    "relative_humidity",
    "cloud_fraction_proxy",
    "R_VAPOUR_OVER_DRY",
    "PLAUSIBLE_RANGE",
    "check_plausible",
]

log = logging.getLogger(__name__)

#: R_v / R_d used by WRF (461.6 / 287).
R_VAPOUR_OVER_DRY = 461.6 / 287.0

#: Physically plausible range of each wrfout variable we read (units of the file): a value
#: outside, or NaN/inf, is an :class:`InputFileError` naming the file, the variable, the record
#: and the first offending index -- a corrupt or mislabelled file must not run silently. The
#: bounds are generous (record observed values lie well inside): winds 150 m/s (jet cores reach
#: ~110), W 60 m/s (strongest updrafts ~50), perturbation potential temperature T = theta - 300 K
#: in -150..400 (theta 150..700 K up to 10 hPa), water vapour <= 0.06 kg/kg (dew point 35 C at
#: 1050 hPa ~0.036), pressures 0..1.2e5 Pa, geopotential -5e3..5e5 m2 s-2, 2 m temperature
#: 170..340 K, PBL height 0..8 km, heat fluxes +-2000 W m-2, u* 0..10 m/s, SW down 0..1500 W m-2,
#: accumulated rain 0..1e5 mm (WRF writes round-off negatives, -7e-9 in the wrf-python test
#: file: small negatives pass), cloud fraction 0..1, cloud water 0..0.02 kg/kg.
PLAUSIBLE_RANGE: dict[str, tuple[float, float]] = {
    "U": (-150.0, 150.0), "V": (-150.0, 150.0), "W": (-60.0, 60.0),
    "U10": (-100.0, 100.0), "V10": (-100.0, 100.0),
    "T": (-150.0, 400.0), "T2": (170.0, 340.0), "QVAPOR": (-1e-3, 0.06),
    "QCLOUD": (-1e-3, 0.02), "CLDFRA": (-0.01, 1.01),
    "P": (-1.2e5, 1.2e5), "PB": (0.0, 1.2e5), "PSFC": (3.0e4, 1.2e5),
    "PH": (-5.0e4, 5.0e4), "PHB": (-5.0e3, 5.0e5), "MU": (-5.0e4, 5.0e4), "MUB": (0.0, 1.2e5),
    "PBLH": (-1.0, 8000.0), "HFX": (-2000.0, 2000.0), "LH": (-2000.0, 2000.0),
    "UST": (-1e-3, 10.0), "SWDOWN": (-1.0, 1500.0), "RAINC": (-1.0, 1e5),
    "RAINNC": (-1.0, 1e5),
}


def check_plausible(values: np.ndarray, name: str, where: str) -> None:
    """Raise :class:`InputFileError` naming ``where``, ``name`` and the first offending index
    when ``values`` has NaN/inf or leaves :data:`PLAUSIBLE_RANGE` of ``name``."""
    lo, hi = PLAUSIBLE_RANGE.get(name, (-np.inf, np.inf))
    bad = ~np.isfinite(values)
    if np.isfinite(lo) or np.isfinite(hi):
        with np.errstate(invalid="ignore"):
            bad |= (values < lo) | (values > hi)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        v = float(values[idx])
        raise InputFileError(f"{where}: variable {name} has {v:.6g} at index {idx} "
                             f"(expected finite values in [{lo:g}, {hi:g}]); "
                             f"{int(bad.sum())} value(s) affected")


#: Variables every use of a wrfout file needs (pressure, heights, temperature, winds, grid).
REQUIRED_CORE: tuple[str, ...] = (
    "Times", "U", "V", "W", "PH", "PHB", "T", "P", "PB", "QVAPOR", "HGT", "XLAT", "XLONG",
    "MAPFAC_M", "MAPFAC_U", "MAPFAC_V", "PSFC",
)
#: What the chemistry-transport model needs on top of :data:`REQUIRED_CORE`.
REQUIRED_CTM: tuple[str, ...] = REQUIRED_CORE + (
    "PBLH", "HFX", "LH", "UST", "RAINC", "RAINNC", "SWDOWN", "T2", "LU_INDEX", "ZNW", "P_TOP",
)
_STATIC = ("HGT", "XLAT", "XLONG", "MAPFAC_M", "MAPFAC_U", "MAPFAC_V", "COSALPHA", "SINALPHA",
           "LANDMASK", "XLAND", "LU_INDEX", "ZNW", "ZNU", "P_TOP", "C3F", "C4F")
#: WRF land-use tables: (ISURBAN, ISWATER) when the file's global attributes do not say.
_LANDUSE_DEFAULTS = {"USGS": (1, 16), "MODIFIED_IGBP_MODIS_NOAH": (13, 17), "MODIS": (13, 17)}
_RH_CRIT = 0.8


def destagger(a: np.ndarray, axis: int) -> np.ndarray:
    """Average a staggered array to mass points along ``axis`` (n+1 -> n), as WRF/wrf-python."""
    a = np.asarray(a)
    n = a.shape[axis]
    lo = np.take(a, np.arange(0, n - 1), axis=axis)
    hi = np.take(a, np.arange(1, n), axis=axis)
    return 0.5 * (lo + hi)


def relative_humidity(qv, p, t):
    """Relative humidity (fraction) over water from mixing ratio (kg kg-1), p (Pa), T (K).

    Saturation vapour pressure of Bolton (1980, MWR 108, 1046) eq. 10,
    e_s = 611.2 exp(17.67 (T - 273.15) / (T - 29.65)) Pa, and
    q_s = 0.622 e_s / (p - 0.378 e_s), as wrf-python's ``rh`` (Fortran DRH); not clipped.
    """
    es = 611.2 * np.exp(17.67 * (t - 273.15) / (t - 29.65))
    qs = 0.622 * es / np.maximum(p - 0.378 * es, 1.0)
    return qv / qs


def cloud_fraction_proxy(rh, rh_crit: float = _RH_CRIT):
    """Cloud fraction from relative humidity (Sundqvist et al. 1989): 0 below ``rh_crit``."""
    x = np.clip((1.0 - np.minimum(rh, 1.0)) / (1.0 - rh_crit), 0.0, 1.0)
    return 1.0 - np.sqrt(x)


@dataclass
class WrfStatic:
    """Time-invariant fields of a WRF domain, numpy float64 (y, x) unless noted."""

    hgt: np.ndarray          # terrain height, m
    lat: np.ndarray          # cell-centre latitude, deg
    lon: np.ndarray          # cell-centre longitude, deg
    mapfac_m: np.ndarray     # map factor at mass points
    mapfac_u: np.ndarray     # (ny, nx+1) at x-faces
    mapfac_v: np.ndarray     # (ny+1, nx) at y-faces
    cosalpha: np.ndarray     # grid rotation (WRF convention)
    sinalpha: np.ndarray
    landmask: np.ndarray     # 1 land, 0 water
    lu_index: np.ndarray     # dominant land-use category (int64), -1 when absent
    urban_fraction: np.ndarray  # 1 where lu_index == ISURBAN, else 0
    eta_w: np.ndarray        # (nz+1,) eta at w levels (ZNW), 1 at the surface
    p_top: float             # Pa
    c3f: np.ndarray | None   # hybrid coefficients (HYBRID_OPT=2) at w levels, else None
    c4f: np.ndarray | None


@dataclass
class WrfFields:
    """All fields of one WRF time on WRF's own grid, float64 numpy, SI units.

    3-D arrays are ``(lev, y, x)``; ``_stag`` arrays are on the C-grid faces: ``u_stag``
    (nz, ny, nx+1), ``v_stag`` (nz, ny+1, nx), ``w_stag`` and the w-level heights (nz+1, ny, nx).
    Winds are grid-relative (WRF's own convention). ``rain_rate`` (mm h-1) is the mean over the
    interval ending at ``time`` (zero at the first record when no later record exists).
    """

    time: np.datetime64
    u_stag: np.ndarray
    v_stag: np.ndarray
    w_stag: np.ndarray
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    p: np.ndarray            # pressure, Pa
    theta: np.ndarray        # potential temperature, K
    t: np.ndarray            # temperature, K
    qv: np.ndarray           # water vapour mixing ratio, kg kg-1
    qc: np.ndarray           # cloud water mixing ratio, kg kg-1 (zeros when absent)
    z_stag: np.ndarray       # geopotential height of w levels, m above sea level
    z: np.ndarray            # geopotential height of mass levels, m above sea level
    height_stag: np.ndarray  # w-level height above ground, m
    height: np.ndarray       # mass-level height above ground, m
    rho_dry: np.ndarray      # dry-air density, kg m-3
    mu_dry: np.ndarray       # dry column mass (surface dry pressure - p_top), Pa
    cldfra: np.ndarray       # cloud fraction, 1
    cldfra_is_proxy: bool
    psfc: np.ndarray         # surface pressure, Pa
    t2: np.ndarray | None    # 2 m temperature, K
    u10: np.ndarray | None   # 10 m grid-relative wind, m s-1
    v10: np.ndarray | None
    pblh: np.ndarray | None  # boundary-layer height, m
    hfx: np.ndarray | None   # upward sensible heat flux, W m-2
    lh: np.ndarray | None    # upward latent heat flux, W m-2
    ust: np.ndarray | None   # friction velocity, m s-1
    swdown: np.ndarray | None  # downward shortwave at the surface, W m-2
    rain_rate: np.ndarray | None  # precipitation rate, mm h-1


def _parse_times(chars: np.ndarray) -> np.ndarray:
    """WRF ``Times`` char array (Time, 19) -> datetime64[s]."""
    out = []
    for row in np.atleast_2d(chars):
        s = b"".join(np.asarray(row, dtype="S1").tolist()).decode("ascii").strip("\x00 ")
        out.append(np.datetime64(s.replace("_", "T"), "s"))
    return np.array(out, dtype="datetime64[s]")


def _expand_paths(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        s = str(p)
        if any(c in s for c in "*?["):
            hits = sorted(_glob.glob(s))
            if not hits:
                raise InputFileError(f"{s}: no wrfout file matches this pattern")
            out.extend(Path(h) for h in hits)
        else:
            out.append(Path(s))
    if not out:
        raise InputFileError("no wrfout files given")
    return out


class WrfOutput:
    """An index over one or several ``wrfout`` files of one domain, sorted by ``Times``.

    Parameters
    ----------
    paths: a path, a glob pattern, or a sequence of them.
    required: variables every file must have; default :data:`REQUIRED_CTM`. Pass
        :data:`REQUIRED_CORE` for files without surface physics (e.g. the wrf-python CI file).

    All files are checked (existence, NetCDF, variables, consistent dimensions) before any data
    is read; an :class:`~aqforecast.io.InputFileError` names the file and every missing
    variable. Duplicate times (overlapping files) keep the first file's record.

    At most :attr:`max_open` files are held open at a time (the most recently read; others are
    reopened when read again): an open NetCDF-4 file holds ~3.6 MB of HDF5 metadata and caches,
    so a 15-day run's files all open cost 124 MB on the sample case's 34 files (more with
    hourly files or WRF's full variable set).
    """

    #: files held open at once (a run reads forward through them: the current and next file)
    max_open = 3

    def __init__(self, paths, required: Sequence[str] = REQUIRED_CTM):
        self.paths = _expand_paths(paths)
        self.required = tuple(required)
        self._handles: dict[int, netCDF4.Dataset] = {}  # insertion order = least recent first
        dims0 = None
        records = []  # (time, file index, record index)
        for fi, path in enumerate(self.paths):
            if not path.exists():
                self.close()
                raise InputFileError(f"{path}: wrfout file does not exist")
            try:
                ds = netCDF4.Dataset(path)
            except OSError as exc:
                self.close()
                raise InputFileError(f"{path}: cannot read wrfout file as NetCDF: {exc}") from None
            ds.set_auto_mask(False)
            missing = [v for v in self.required if v not in ds.variables]
            if missing:
                ds.close()
                self.close()
                raise InputFileError(
                    f"{path}: wrfout file lacks required variable(s) {', '.join(missing)}")
            dims = {k: len(v) for k, v in ds.dimensions.items()
                    if k in ("west_east", "south_north", "bottom_top")}
            if dims0 is None:
                dims0 = dims
                self.attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
            elif dims != dims0:
                ds.close()
                self.close()
                raise InputFileError(f"{path}: grid dimensions {dims} differ from "
                                     f"{self.paths[0]} {dims0}")
            self._handles[fi] = ds
            for ri, t in enumerate(_parse_times(ds["Times"][:])):
                records.append((t, fi, ri))
            self._trim()
        records.sort(key=lambda r: (r[0], r[1]))
        keep, seen = [], set()
        for r in records:
            if r[0] in seen:
                log.warning("wrfout time %s appears twice; using %s", r[0], self.paths[keep[-1][1]])
                continue
            seen.add(r[0])
            keep.append(r)
        self._records = keep
        self.times = np.array([r[0] for r in keep], dtype="datetime64[s]")
        self.nz, self.ny, self.nx = dims0["bottom_top"], dims0["south_north"], dims0["west_east"]
        self.static = self._read_static()
        self._acc_cache: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self._records)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for ds in self._handles.values():
            try:
                ds.close()
            except RuntimeError:
                pass
        self._handles = {}

    def _trim(self) -> None:
        """Close the least recently used files beyond :attr:`max_open` (the most recent, last in
        ``_handles``, stays open)."""
        while len(self._handles) > max(self.max_open, 1):
            try:
                self._handles.pop(next(iter(self._handles))).close()
            except RuntimeError:
                pass

    def _dataset(self, fi: int) -> netCDF4.Dataset:
        """File ``fi`` open (reopened if it was closed), marked most recently used. Callers hold
        :data:`~aqforecast.io.netcdf.NETCDF_LOCK`."""
        ds = self._handles.pop(fi, None)
        if ds is None:
            try:
                ds = netCDF4.Dataset(self.paths[fi])
            except OSError as exc:
                raise InputFileError(
                    f"{self.paths[fi]}: cannot reopen wrfout file: {exc}") from None
            ds.set_auto_mask(False)
        self._handles[fi] = ds
        self._trim()
        return ds

    @property
    def projection(self) -> dict:
        """Projection attributes (lower-case WRF names): map_proj, truelat1/2, stand_lon,
        moad_cen_lat, cen_lat/lon, dx, dy."""
        a = self.attrs
        return {k.lower(): (float(a[k]) if k != "MAP_PROJ" else int(a[k]))
                for k in ("MAP_PROJ", "TRUELAT1", "TRUELAT2", "STAND_LON", "MOAD_CEN_LAT",
                          "CEN_LAT", "CEN_LON", "DX", "DY") if k in a}

    def has(self, name: str) -> bool:
        with NETCDF_LOCK:
            return name in self._dataset(self._records[0][1] if self._records else 0).variables

    def _var(self, name: str, i: int) -> np.ndarray:
        """Record ``i`` (sorted index) of variable ``name``, float64."""
        t, fi, ri = self._records[i]
        with NETCDF_LOCK:
            v = self._dataset(fi)[name]
            if v.dimensions and v.dimensions[0] == "Time":
                a = np.asarray(v[ri], dtype=np.float64)
            else:
                a = np.asarray(v[:], dtype=np.float64)
        check_plausible(a, name, f"{self.paths[fi]} (record {ri}, {t})")
        return a

    def _first(self, name: str) -> np.ndarray | None:
        with NETCDF_LOCK:
            ds = self._dataset(self._records[0][1] if self._records else 0)
            if name not in ds.variables:
                return None
            v = ds[name]
            a = np.asarray(v[0] if v.dimensions and v.dimensions[0] == "Time" else v[:])
        return a.astype(np.float64)

    def _read_static(self) -> WrfStatic:
        g = {n: self._first(n) for n in _STATIC}
        ny, nx = self.ny, self.nx
        hgt = g["HGT"]
        if g["COSALPHA"] is None or g["SINALPHA"] is None:
            map_proj = int(self.attrs.get("MAP_PROJ", 0))
            if map_proj in (1, 2) and g["XLONG"] is not None:
                from ..grid import lambert_cone_constant
                t1 = float(self.attrs["TRUELAT1"])
                n = (lambert_cone_constant(t1, float(self.attrs["TRUELAT2"])) if map_proj == 1
                     else (1.0 if t1 >= 0 else -1.0))  # polar: +-1 by the pole
                dlon = (g["XLONG"] - float(self.attrs["STAND_LON"]) + 180.0) % 360.0 - 180.0
                a = -np.deg2rad(n * dlon)
                g["COSALPHA"], g["SINALPHA"] = np.cos(a), np.sin(a)
            else:  # Mercator and lat-lon grids have no rotation
                g["COSALPHA"], g["SINALPHA"] = np.ones((ny, nx)), np.zeros((ny, nx))
        if g["LANDMASK"] is not None:
            landmask = g["LANDMASK"]
        elif g["XLAND"] is not None:
            landmask = (g["XLAND"] < 1.5).astype(np.float64)
        else:
            landmask = np.ones((ny, nx))
        mminlu = str(self.attrs.get("MMINLU", "USGS")).strip()
        isurban, _ = _LANDUSE_DEFAULTS.get(mminlu, (1, 16))
        isurban = int(self.attrs.get("ISURBAN", isurban))
        if g["LU_INDEX"] is not None:
            lu = np.rint(g["LU_INDEX"]).astype(np.int64)
            urban = (lu == isurban).astype(np.float64)
        else:
            lu = np.full((ny, nx), -1, dtype=np.int64)
            urban = np.zeros((ny, nx))
        p_top = float(np.ravel(g["P_TOP"])[0]) if g["P_TOP"] is not None else 5000.0
        eta_w = g["ZNW"]
        if eta_w is None:
            # without ZNW, recover eta from the base state: PB = eta MUB + p_top needs MUB; fall
            # back to None and let the caller use pressure directly.
            eta_w = np.full(self.nz + 1, np.nan)
        hybrid = int(self.attrs.get("HYBRID_OPT", 0)) == 2 and g["C3F"] is not None
        return WrfStatic(
            hgt=hgt, lat=g["XLAT"], lon=g["XLONG"], mapfac_m=g["MAPFAC_M"],
            mapfac_u=g["MAPFAC_U"], mapfac_v=g["MAPFAC_V"], cosalpha=g["COSALPHA"],
            sinalpha=g["SINALPHA"], landmask=landmask, lu_index=lu, urban_fraction=urban,
            eta_w=eta_w, p_top=p_top, c3f=g["C3F"] if hybrid else None,
            c4f=g["C4F"] if hybrid else None)

    # ------------------------------------------------------------------ precipitation
    def _accumulated_rain(self, i: int) -> np.ndarray:
        """Total accumulated precipitation (mm) of record i, bucket counters included."""
        if i not in self._acc_cache:
            acc = self._var("RAINC", i) + self._var("RAINNC", i)
            bucket = float(self.attrs.get("BUCKET_MM", -1.0))
            if bucket > 0:
                for name in ("I_RAINC", "I_RAINNC"):
                    if self.has(name):
                        acc = acc + bucket * self._var(name, i)
            if len(self._acc_cache) > 8:
                self._acc_cache.pop(next(iter(self._acc_cache)))
            self._acc_cache[i] = acc
        return self._acc_cache[i]

    def _interval_rate(self, i: int) -> np.ndarray | None:
        """Rate (mm/h) over (t_{i-1}, t_i], or None if unknown (first record / reset)."""
        if i <= 0 or i >= len(self):
            return None
        dt_h = (self.times[i] - self.times[i - 1]) / np.timedelta64(1, "h")
        d = self._accumulated_rain(i) - self._accumulated_rain(i - 1)
        if np.any(d < -1e-3):  # accumulation restarted (a new run): the difference is meaningless
            return None
        return np.maximum(d, 0.0) / dt_h

    def rain_rate(self, i: int) -> np.ndarray:
        """Mean precipitation rate (mm h-1) over the interval ending at record ``i``.

        The first record (and a record where the accumulation was reset) takes the rate of the
        following interval; with a single record the rate is zero.
        """
        if not (self.has("RAINC") and self.has("RAINNC")):
            return np.zeros((self.ny, self.nx))
        for j in (i, i + 1):
            r = self._interval_rate(j)
            if r is not None:
                return r
        return np.zeros((self.ny, self.nx))

    # ------------------------------------------------------------------ one time
    def index_of(self, time) -> int:
        """Sorted record index of an exact time (datetime64 or ISO string)."""
        t = np.datetime64(time, "s")
        hit = np.nonzero(self.times == t)[0]
        if hit.size == 0:
            raise KeyError(f"time {t} not in wrfout files {self.paths[0]}..")
        return int(hit[0])

    def fields(self, i: int) -> WrfFields:
        """Derived fields of sorted record ``i`` (see the module docstring for the formulas)."""
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} out of range 0..{len(self) - 1}")
        opt = {n: (self._var(n, i) if self.has(n) else None)
               for n in ("T2", "U10", "V10", "PBLH", "HFX", "LH", "UST", "SWDOWN", "MU", "MUB",
                         "CLDFRA", "QCLOUD")}
        u_stag = self._var("U", i)
        v_stag = self._var("V", i)
        w_stag = self._var("W", i)
        p = self._var("P", i) + self._var("PB", i)
        theta = self._var("T", i) + THETA_BASE
        t = theta * (p / P0) ** (R_DRY / CP_DRY)
        qv = np.maximum(self._var("QVAPOR", i), 0.0)
        qc = np.maximum(opt["QCLOUD"], 0.0) if opt["QCLOUD"] is not None else np.zeros_like(qv)
        z_stag = (self._var("PH", i) + self._var("PHB", i)) / GRAVITY
        z = destagger(z_stag, 0)
        hgt = self.static.hgt
        rho = p / (R_DRY * t * (1.0 + R_VAPOUR_OVER_DRY * qv))
        if opt["MU"] is not None and opt["MUB"] is not None:
            mu = opt["MU"] + opt["MUB"]
        else:
            mu = np.sum(rho * np.diff(z_stag, axis=0), axis=0) * GRAVITY
        if opt["CLDFRA"] is not None:
            cld, proxy = np.clip(opt["CLDFRA"], 0.0, 1.0), False
        else:
            cld, proxy = cloud_fraction_proxy(relative_humidity(qv, p, t)), True
        has_rain = self.has("RAINC") and self.has("RAINNC")
        return WrfFields(
            time=self.times[i], u_stag=u_stag, v_stag=v_stag, w_stag=w_stag,
            u=destagger(u_stag, 2), v=destagger(v_stag, 1), w=destagger(w_stag, 0),
            p=p, theta=theta, t=t, qv=qv, qc=qc, z_stag=z_stag, z=z,
            height_stag=z_stag - hgt, height=z - hgt, rho_dry=rho, mu_dry=mu,
            cldfra=cld, cldfra_is_proxy=proxy, psfc=self._var("PSFC", i), t2=opt["T2"],
            u10=opt["U10"], v10=opt["V10"], pblh=opt["PBLH"], hfx=opt["HFX"], lh=opt["LH"],
            ust=opt["UST"], swdown=opt["SWDOWN"],
            rain_rate=self.rain_rate(i) if has_rain else None)

    def vertical_grid(self):
        """The file's own levels as a :class:`~aqforecast.grid.VerticalGrid` (ZNW, P_TOP)."""
        from ..grid import VerticalGrid
        return VerticalGrid(tuple(float(e) for e in self.static.eta_w), float(self.static.p_top))

    def attribute(self, key: str, kind=float):
        """Global attribute ``key`` of the first file; :class:`InputFileError` when absent."""
        if key not in self.attrs:
            raise InputFileError(f"{self.paths[0]}: wrfout file lacks the global attribute "
                                 f"{key} (is it a WRF-ARW history file?)")
        try:
            return kind(np.ravel(self.attrs[key])[0])
        except (TypeError, ValueError):
            raise InputFileError(f"{self.paths[0]}: global attribute {key} = "
                                 f"{self.attrs[key]!r} is not a number") from None

    @property
    def projection_kind(self) -> str:
        """The file's projection as ``projection.kind`` ('lambert', 'polar', 'mercator') from
        MAP_PROJ 1, 2, 3; other projections (6: rotated lat-lon) are an InputFileError."""
        from ..grid import WRF_MAP_PROJ
        code = self.attribute("MAP_PROJ", int)
        if code not in WRF_MAP_PROJ:
            name = {0: "ideal (no projection)", 6: "(rotated) latitude-longitude"}.get(code, "")
            raise InputFileError(
                f"{self.paths[0]}: MAP_PROJ={code} {name} is not supported; aqforecast runs on "
                "WRF's Lambert conformal (1), polar stereographic (2) and Mercator (3) grids")
        return WRF_MAP_PROJ[code]

    def model_grid(self, name: str = "wrf", vertical=None):
        """The file's horizontal grid as a :class:`~aqforecast.grid.ProjectedGrid` of its
        projection (MAP_PROJ 1, 2, 3), placed by the least-squares fit of the cell centres to
        XLAT/XLONG; origin latitude (Lambert) MOAD_CEN_LAT, else CEN_LAT. Square cells only."""
        from ..grid import grid_class
        kind = self.projection_kind
        dx = self.attribute("DX")
        dy = self.attribute("DY") if "DY" in self.attrs else dx
        if abs(dx - dy) > 1e-6 * dx:
            raise InputFileError(f"{self.paths[0]}: DX = {dx} m and DY = {dy} m differ; the "
                                 "model needs square cells")
        t1 = self.attribute("TRUELAT1")
        t2 = self.attribute("TRUELAT2") if kind == "lambert" else t1
        ref = self.attribute("MOAD_CEN_LAT" if "MOAD_CEN_LAT" in self.attrs else "CEN_LAT")
        args = (name, self.nx, self.ny, dx, t1, t2, self.attribute("STAND_LON"), ref)
        try:
            probe = grid_class(kind)(*args, 0.0, 0.0)
        except ValueError as exc:
            raise InputFileError(f"{self.paths[0]}: projection attributes MAP_PROJ/TRUELAT1/"
                                 f"TRUELAT2 make no valid projection: {exc}") from None
        x, y = probe.to_xy(self.static.lon, self.static.lat)
        x0 = float(np.mean(x - dx * (np.arange(self.nx) + 0.5)))
        y0 = float(np.mean(y - dx * (np.arange(self.ny)[:, None] + 0.5)))
        return grid_class(kind)(*args, x0, y0, vertical)

    def lambert_grid(self, name: str = "wrf", vertical=None):
        """The file's grid as a :class:`~aqforecast.grid.LambertGrid` (MAP_PROJ = 1 only; see
        :meth:`model_grid` for every projection)."""
        pj = self.projection
        if pj.get("map_proj") != 1:
            raise InputFileError(f"{self.paths[0]}: MAP_PROJ={pj.get('map_proj')} is not "
                                 "Lambert conformal (1)")
        return self.model_grid(name, vertical)

    def check_projection(self, grid) -> None:
        """:class:`InputFileError` naming the file and every attribute (MAP_PROJ, TRUELAT1/2,
        STAND_LON, DX/DY) where the file's projection differs from the model ``grid``'s."""
        src = self.paths[0]
        kind = self.projection_kind
        code = self.attribute("MAP_PROJ", int)
        if kind != grid.kind:
            raise InputFileError(
                f"{src}: MAP_PROJ={code} ({kind}), but model grid {grid.name!r} is {grid.kind} "
                f"(MAP_PROJ={grid.map_proj}); set projection.kind: {kind} (regridding between "
                "projections is not supported)")
        pj = {k: self.attribute(k.upper()) for k in ("truelat1", "stand_lon", "dx")}
        pj["truelat2"] = self.attribute("TRUELAT2") if kind == "lambert" else pj["truelat1"]
        pj["dy"] = self.attribute("DY") if "DY" in self.attrs else pj["dx"]
        diffs = []
        if kind == "lambert":
            wt = sorted((pj["truelat1"], pj["truelat2"]))
            gt = sorted((grid.truelat1, grid.truelat2))
            if max(abs(wt[0] - gt[0]), abs(wt[1] - gt[1])) > 1e-3:
                diffs.append(f"TRUELAT1/2 = {pj['truelat1']}/{pj['truelat2']} vs model "
                             f"{grid.truelat1}/{grid.truelat2}")
        elif abs(pj["truelat1"] - grid.truelat1) > 1e-3:
            diffs.append(f"TRUELAT1 = {pj['truelat1']} vs model truelat1 {grid.truelat1}")
        # Mercator: STAND_LON only shifts x (XLAT/XLONG checks the placement)
        if kind != "mercator" and abs(((pj["stand_lon"] - grid.stand_lon) + 180) % 360 - 180) \
                > 1e-3:
            diffs.append(f"STAND_LON = {pj['stand_lon']} vs model {grid.stand_lon}")
        if abs(pj["dx"] - grid.dx) > 1e-3 * grid.dx or abs(pj["dy"] - grid.dx) > 1e-3 * grid.dx:
            diffs.append(f"DX/DY = {pj['dx']}/{pj['dy']} m vs model dx {grid.dx} m")
        if diffs:
            raise InputFileError(f"{src}: WRF grid differs from model grid {grid.name!r}: "
                                 + "; ".join(diffs) + " (horizontal regridding is not supported)")

    def earth_relative(self, u, v):
        """Rotate grid-relative (u, v) at mass points to (eastward, northward), WRF's formula."""
        c, s = self.static.cosalpha, self.static.sinalpha
        return u * c - v * s, v * c + u * s

    # ------------------------------------------------------------------ tidy dataset
    def to_dataset(self, indices: Iterable[int] | None = None) -> xr.Dataset:
        """CF ``xarray.Dataset`` of the derived fields at the given record indices (default all).

        Dims ``(time, lev, y, x)``, staggered ``lev_stag``/``x_stag``/``y_stag``; ``lon``/``lat``
        auxiliary coordinates; ``time`` as datetime64.
        """
        idx = list(range(len(self))) if indices is None else list(indices)
        recs = [self.fields(i) for i in idx]
        st = self.static
        spec = _DATASET_VARS
        data = {}
        for name, (dims, attrs) in spec.items():
            vals = [getattr(r, name) for r in recs]
            if vals[0] is None:
                continue
            data[name] = (("time",) + dims, np.stack(vals).astype(np.float32), attrs)
        ds = xr.Dataset(data, coords={
            "time": ("time", np.array([r.time for r in recs], dtype="datetime64[ns]")),
            "lon": (("y", "x"), st.lon, {"standard_name": "longitude", "units": "degrees_east"}),
            "lat": (("y", "x"), st.lat, {"standard_name": "latitude", "units": "degrees_north"}),
        })
        ds["terrain_height"] = (("y", "x"), st.hgt, {
            "standard_name": "surface_altitude", "units": "m"})
        ds["map_factor"] = (("y", "x"), st.mapfac_m, {"long_name": "map factor", "units": "1"})
        ds["land_binary_mask"] = (("y", "x"), st.landmask, {
            "standard_name": "land_binary_mask", "units": "1"})
        ds.attrs.update({"source": "WRF-ARW wrfout via aqforecast.io.wrf",
                         "wrf_files": ", ".join(str(p) for p in self.paths),
                         **{k: v for k, v in self.projection.items()}})
        return ds


_L = ("lev", "y", "x")
_S = ("y", "x")
_DATASET_VARS = {
    "u": (_L, {"standard_name": "x_wind", "units": "m s-1",
               "long_name": "grid-relative x wind at mass points"}),
    "v": (_L, {"standard_name": "y_wind", "units": "m s-1",
               "long_name": "grid-relative y wind at mass points"}),
    "w": (_L, {"standard_name": "upward_air_velocity", "units": "m s-1"}),
    "p": (_L, {"standard_name": "air_pressure", "units": "Pa"}),
    "theta": (_L, {"standard_name": "air_potential_temperature", "units": "K"}),
    "t": (_L, {"standard_name": "air_temperature", "units": "K"}),
    "qv": (_L, {"standard_name": "humidity_mixing_ratio", "units": "kg kg-1"}),
    "z": (_L, {"standard_name": "geopotential_height", "units": "m"}),
    "height": (_L, {"standard_name": "height", "units": "m",
                    "long_name": "height of layer centre above ground"}),
    "z_stag": (("lev_stag", "y", "x"), {"standard_name": "geopotential_height", "units": "m",
                                        "long_name": "geopotential height of w levels"}),
    "rho_dry": (_L, {"long_name": "dry air density", "units": "kg m-3"}),
    "cldfra": (_L, {"standard_name": "cloud_area_fraction_in_atmosphere_layer", "units": "1"}),
    "mu_dry": (_S, {"long_name": "dry air column mass (surface dry pressure - p_top)",
                    "units": "Pa"}),
    "psfc": (_S, {"standard_name": "surface_air_pressure", "units": "Pa"}),
    "t2": (_S, {"standard_name": "air_temperature", "units": "K", "long_name": "2 m temperature"}),
    "pblh": (_S, {"standard_name": "atmosphere_boundary_layer_thickness", "units": "m"}),
    "hfx": (_S, {"standard_name": "surface_upward_sensible_heat_flux", "units": "W m-2"}),
    "lh": (_S, {"standard_name": "surface_upward_latent_heat_flux", "units": "W m-2"}),
    "ust": (_S, {"long_name": "friction velocity", "units": "m s-1"}),
    "swdown": (_S, {"standard_name": "surface_downwelling_shortwave_flux_in_air",
                    "units": "W m-2"}),
    "rain_rate": (_S, {"standard_name": "lwe_precipitation_rate", "units": "mm h-1",
                       "long_name": "precipitation rate over the preceding interval"}),
}
assert set(_DATASET_VARS) <= {f.name for f in dc_fields(WrfFields)}


def read_wrfout(paths, required: Sequence[str] = REQUIRED_CTM, times=None) -> xr.Dataset:
    """Read wrfout file(s) into a tidy CF dataset (all times, or those in ``times``)."""
    with WrfOutput(paths, required) as wo:
        idx = None if times is None else [wo.index_of(t) for t in np.atleast_1d(times)]
        return wo.to_dataset(idx)
