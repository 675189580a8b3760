"""Chemical boundary and initial conditions from a NetCDF file on a regular lon/lat grid.

The file is what a global or regional model (CAMS, GEOS-Chem, WACCM, a coarser aqforecast run)
gives after regridding to heights: CF NetCDF with the 1-D coordinates

* ``time`` -- CF time, increasing (a single record is used at all times: a climatology);
* ``height`` -- layer height above ground, m (``units = "m"``), increasing;
* ``lat`` -- degrees_north, ``lon`` -- degrees_east; regular or not, monotonic either way;

and one data variable per model species, named as the model names it (``O3``, ``NO2``, ``SO4``,
...), dims ``(time, height, lat, lon)``, with a ``units`` attribute from :data:`GAS_UNITS` for
gases and :data:`AEROSOL_UNITS` for aerosols. Variables that are not model species are ignored;
model species the file lacks keep the background profiles (:mod:`aqforecast.transport.boundary`),
and :attr:`BoundaryFile.missing` lists them.

Sampling (:meth:`BoundaryFile.sample`) is bilinear in (lon, lat) index space, linear in height
(constant beyond the file's lowest and highest levels) and linear in time between the two
records around the requested time. Points or times outside the file are an
:class:`~aqforecast.io.InputFileError` naming the file and the range, raised by
:meth:`BoundaryFile.check_covers` before a run starts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .. import species as species_registry
from .netcdf import NETCDF_LOCK, InputFileError, open_dataset

__all__ = ["BoundaryFile", "GAS_UNITS", "AEROSOL_UNITS"]

log = logging.getLogger(__name__)

#: gas units -> factor to mol mol-1
GAS_UNITS = {"mol mol-1": 1.0, "mol/mol": 1.0, "mole mole-1": 1.0, "ppm": 1e-6, "ppmv": 1e-6,
             "ppb": 1e-9, "ppbv": 1e-9}
#: aerosol units -> (factor, per volume): per volume values are divided by the air density
#: (kg m-3) to give kg kg-1
AEROSOL_UNITS = {"kg kg-1": (1.0, False), "kg/kg": (1.0, False), "ug m-3": (1e-9, True),
                 "ug/m3": (1e-9, True), "ug m**-3": (1e-9, True), "\u00b5g m-3": (1e-9, True),
                 "kg m-3": (1.0, True)}
_DIMS = ("time", "height", "lat", "lon")


def _axis_fraction(values, coord):
    """Fractional index of ``values`` on the monotonic 1-D ``coord`` (NaN outside)."""
    idx = np.arange(coord.size, dtype=float)
    if coord.size > 1 and coord[0] > coord[-1]:
        coord, idx = coord[::-1], idx[::-1]
    return np.interp(values, coord, idx, left=np.nan, right=np.nan)


class BoundaryFile:
    """A validated boundary-condition file (see the module docstring for its layout).

    path: the NetCDF file; species: the model's species names. Opening checks the coordinates,
    the dims and units of every model species in the file, and that the file holds at least one
    of them; data are read lazily, one time record at a time.
    """

    def __init__(self, path, species):
        self.path = Path(path)
        ds = open_dataset(self.path, required=_DIMS, what="boundary-condition")
        self._ds = ds
        where = f"{self.path}"
        for c in ("height", "lat", "lon"):
            v = np.asarray(ds[c].values, dtype=float)
            if v.ndim != 1 or v.size < 1 or not np.all(np.isfinite(v)):
                raise InputFileError(f"{where}: coordinate {c!r} must be 1-D and finite")
            if v.size > 1 and not (np.all(np.diff(v) > 0) or np.all(np.diff(v) < 0)):
                raise InputFileError(f"{where}: coordinate {c!r} must be strictly monotonic")
        self.height = np.asarray(ds["height"].values, dtype=float)
        if self.height.size > 1 and self.height[0] > self.height[-1]:
            raise InputFileError(f"{where}: coordinate 'height' must increase upwards")
        units = str(ds["height"].attrs.get("units", "")).strip()
        if units != "m":
            raise InputFileError(f"{where}: coordinate 'height' has units {units!r}, expected "
                                 f"'m' (height above ground)")
        self.lat = np.asarray(ds["lat"].values, dtype=float)
        self.lon = np.asarray(ds["lon"].values, dtype=float)
        self.times = np.asarray(ds["time"].values).astype("datetime64[s]")
        if self.times.size > 1 and not np.all(np.diff(self.times) > np.timedelta64(0, "s")):
            raise InputFileError(f"{where}: coordinate 'time' must increase")
        self.variables: dict[str, tuple[float, bool]] = {}
        self.missing: list[str] = []
        for name in species:
            if name not in ds.data_vars:
                self.missing.append(name)
                continue
            var = ds[name]
            if tuple(var.dims) != _DIMS:
                raise InputFileError(f"{where}: variable {name!r} has dims {tuple(var.dims)}, "
                                     f"expected {_DIMS}")
            unit = str(var.attrs.get("units", "")).strip()
            if species_registry.get(name).phase == "gas":
                if unit not in GAS_UNITS:
                    raise InputFileError(f"{where}: variable {name!r} (a gas) has units "
                                         f"{unit!r}, expected one of {sorted(GAS_UNITS)}")
                self.variables[name] = (GAS_UNITS[unit], False)
            else:
                if unit not in AEROSOL_UNITS:
                    raise InputFileError(f"{where}: variable {name!r} (an aerosol) has units "
                                         f"{unit!r}, expected one of {sorted(AEROSOL_UNITS)}")
                self.variables[name] = AEROSOL_UNITS[unit]
        if not self.variables:
            raise InputFileError(f"{where}: boundary-condition file holds none of the model "
                                 f"species {list(species)}")
        if self.missing:
            log.warning("%s: no %s in the boundary-condition file; they keep the background "
                        "profiles", where, ", ".join(self.missing))
        self._records: dict[int, dict[str, np.ndarray]] = {}

    def close(self) -> None:
        self._ds.close()

    # -- checks ---------------------------------------------------------------------------
    def check_covers(self, lon, lat, start=None, end=None) -> None:
        """Raise :class:`InputFileError` unless every point (lon, lat) (deg) lies inside the
        file's grid and [start, end] inside its times."""
        self._fractions(lon, lat)
        for t in (start, end):
            if t is not None:
                self._check_time(np.datetime64(t, "s"))

    def _fractions(self, lon, lat):
        """Fractional (lat, lon) indices of the points; an error if any lies outside."""
        lon = np.asarray(lon, dtype=float).ravel()
        lat = np.asarray(lat, dtype=float).ravel()
        fi = _axis_fraction(lon, self.lon)
        fj = _axis_fraction(lat, self.lat)
        if np.isnan(fi).any() or np.isnan(fj).any():
            raise InputFileError(
                f"{self.path}: boundary-condition grid (lon {self.lon.min():.3f}..."
                f"{self.lon.max():.3f}, lat {self.lat.min():.3f}...{self.lat.max():.3f}) does "
                f"not cover the model domain and its ghost cells (lon {lon.min():.3f}..."
                f"{lon.max():.3f}, lat {lat.min():.3f}...{lat.max():.3f})")
        return fj, fi

    def _check_time(self, t) -> None:
        if self.times.size > 1 and (t < self.times[0] or t > self.times[-1]):
            raise InputFileError(f"{self.path}: boundary-condition times {self.times[0]} ... "
                                 f"{self.times[-1]} do not cover {t}")

    # -- sampling -------------------------------------------------------------------------
    def weights(self, lon, lat):
        """Bilinear weights for the points (lon, lat) (deg, any equal shapes), for
        :meth:`sample`; the points must lie inside the grid (:meth:`check_covers`)."""
        fj, fi = self._fractions(lon, lat)

        def axis(f, n):
            i0 = np.minimum(np.floor(f).astype(np.int64), max(n - 2, 0))
            return i0, np.minimum(i0 + 1, n - 1), f - i0

        j0, j1, wj = axis(fj, self.lat.size)
        i0, i1, wi = axis(fi, self.lon.size)
        return j0, j1, wj, i0, i1, wi

    def _record(self, it, weights, key):
        """Record ``it`` of every variable at the points of ``weights``: name -> (nlev, npts),
        in the file's units times the unit factor; cached per ``key`` (two records kept): one key
        per point set (the weights). Domains stepping on two threads share the file: its reads
        and cache hold :data:`~aqforecast.io.netcdf.NETCDF_LOCK`."""
        with NETCDF_LOCK:
            return self._record_locked(it, weights, key)

    def _record_locked(self, it, weights, key):
        ck = (key, it)
        if ck in self._records:
            return self._records[ck]
        j0, j1, wj, i0, i1, wi = weights
        # read only the window around the points (a global file's record is large)
        ja, jb, ia, ib = int(j0.min()), int(j1.max()) + 1, int(i0.min()), int(i1.max()) + 1
        j0, j1, i0, i1 = j0 - ja, j1 - ja, i0 - ia, i1 - ia
        out = {}
        for name, (factor, _) in self.variables.items():
            try:
                f = np.asarray(self._ds[name].isel(time=it, lat=slice(ja, jb),
                                                   lon=slice(ia, ib)).values, dtype=float)
            except Exception as exc:  # a truncated or corrupt file
                raise InputFileError(f"{self.path}: cannot read {name!r} at record {it}: "
                                     f"{exc}") from None
            v = ((f[:, j0, i0] * (1 - wj) + f[:, j1, i0] * wj) * (1 - wi)
                 + (f[:, j0, i1] * (1 - wj) + f[:, j1, i1] * wj) * wi)
            per_volume = self.variables[name][1]
            # output units (ppb, ug m-3; kg kg-1 aerosols at <= 1.3 kg m-3 air) for the check
            scale = 1e9 if (species_registry.get(name).phase == "gas" or per_volume) else 1.3e9
            msg = species_registry.implausible(name, v * factor * scale,
                                               f"{self.path} (record {it}, at the model's "
                                               f"boundary points)")
            if msg:
                raise InputFileError(msg)
            out[name] = v * factor
        old = [k for k in self._records if k[0] == key]
        if len(old) >= 2:
            del self._records[min(old, key=lambda k: k[1])]
        self._records[ck] = out
        return out

    def sample(self, time, weights, height, air_density, key="points"):
        """Values at ``time`` in model units (gases mol mol-1, aerosols kg kg-1).

        weights: from :meth:`weights` for npts points; height: (nz, npts) heights above ground
        of the model's layer centres there, m; air_density: (nz, npts) kg m-3 (converts
        per-volume aerosol units). Returns name -> (nz, npts) for the species in the file.
        """
        t = np.datetime64(time, "s")
        self._check_time(t)
        if self.times.size == 1:  # one record: valid at all times
            t = self.times[0]
        it = int(np.searchsorted(self.times, t, side="right")) - 1
        it = min(it, self.times.size - 1)
        a = self._record(it, weights, key)
        if it + 1 < self.times.size and t > self.times[it]:
            b = self._record(it + 1, weights, key)
            w = float((t - self.times[it]) / (self.times[it + 1] - self.times[it]))
        else:
            b, w = a, 0.0
        height = np.asarray(height, dtype=float)
        nlev = self.height.size
        if nlev > 1:
            fk = np.interp(height, self.height, np.arange(nlev, dtype=float))
            k0 = np.minimum(np.floor(fk).astype(np.int64), nlev - 2)
            wk = fk - k0
            k1 = k0 + 1
        else:
            k0 = k1 = np.zeros(height.shape, dtype=np.int64)
            wk = np.zeros(height.shape)
        out = {}
        for name, (_, per_volume) in self.variables.items():
            prof = (1.0 - w) * a[name] + w * b[name]  # (nlev, npts)
            v = (np.take_along_axis(prof, k0, axis=0) * (1.0 - wk)
                 + np.take_along_axis(prof, k1, axis=0) * wk)
            out[name] = v / air_density if per_volume else v
        return out
