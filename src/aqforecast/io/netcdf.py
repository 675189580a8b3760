"""CF-1.10 NetCDF writing and reading, always atomic.

Every file is written to a temporary name in the destination directory and renamed over the final
name only when complete (``os.replace`` is atomic on POSIX), so a crash or an exception never
leaves a half-written product.

Layout written for gridded fields (CF-1.10 conventions, section 5.6 "grid mappings"):

* dimensions ``(time, lev, y, x)`` (any leading subset), ``x``/``y`` projection coordinates in m
  with ``standard_name = projection_x_coordinate``/``projection_y_coordinate``;
* 2-D auxiliary coordinates ``lon``/``lat`` (``coordinates = "lon lat"`` on each data variable);
* a scalar ``crs`` variable with the Lambert-conformal ``grid_mapping`` attributes;
* ``lev`` as dimensionless eta (``atmosphere_hybrid_sigma_pressure_coordinate`` would need
  formula terms we do not carry; we store eta with ``positive = "up"`` and ``axis = "Z"``);
* zlib compression and chunks of one time step x full horizontal map (fast maps) with a short
  time run per chunk (readable point time series).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from .. import __version__
from .. import species as species_registry
from ..grid import LambertGrid

CF_CONVENTIONS = "CF-1.10"

__all__ = [
    "CF_CONVENTIONS",
    "InputFileError",
    "atomic_path",
    "grid_dataset",
    "species_attrs",
    "write_dataset",
    "open_dataset",
]


class InputFileError(ValueError):
    """An input file is missing, unreadable or lacks what we need; the message names both."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched (an earlier
    complete version, if any, survives).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; products are world-readable
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def species_attrs(name: str, units: str | None = None) -> dict:
    """CF attributes of a species variable (from the species registry)."""
    sp = species_registry.get(name)
    attrs = {"long_name": sp.long_name, "units": units or sp.output_units}
    if sp.standard_name:
        std = sp.standard_name
        # a standard name must match its units: mole fractions for ppb, mass concentration ug m-3
        if attrs["units"] in ("ppb", "ppm", "mol mol-1", "1e-9") and std.startswith("mass_"):
            std = None
        if attrs["units"] in ("ug m-3", "kg m-3") and std.startswith("mole_fraction"):
            std = "mass_concentration_of_" + std[len("mole_fraction_of_"):]
        if std:
            attrs["standard_name"] = std
    return attrs


def grid_dataset(grid: LambertGrid, with_metrics: bool = True) -> xr.Dataset:
    """A CF dataset describing ``grid``: coordinates, ``crs`` and (optionally) metrics."""
    lon, lat = grid.lonlat
    coords = {
        "x": ("x", grid.x, {"standard_name": "projection_x_coordinate",
                            "long_name": "x coordinate of projection", "units": "m", "axis": "X"}),
        "y": ("y", grid.y, {"standard_name": "projection_y_coordinate",
                            "long_name": "y coordinate of projection", "units": "m", "axis": "Y"}),
        "lon": (("y", "x"), lon, {"standard_name": "longitude", "long_name": "longitude",
                                  "units": "degrees_east"}),
        "lat": (("y", "x"), lat, {"standard_name": "latitude", "long_name": "latitude",
                                  "units": "degrees_north"}),
    }
    if grid.vertical is not None:
        coords["lev"] = ("lev", grid.vertical.eta_centres, {
            "long_name": "eta (dry hydrostatic pressure terrain-following) at layer centre",
            "units": "1", "positive": "down", "axis": "Z"})
    ds = xr.Dataset(coords=coords)
    ds["crs"] = xr.DataArray(np.int32(0), attrs=grid.cf_grid_mapping())
    if with_metrics:
        ds["map_factor"] = (("y", "x"), grid.map_factor, {
            "long_name": "map scale factor at cell centre", "units": "1",
            "grid_mapping": "crs", "coordinates": "lon lat"})
        ds["cell_area"] = (("y", "x"), grid.cell_area, {
            "standard_name": "cell_area", "long_name": "true horizontal cell area", "units": "m2",
            "grid_mapping": "crs", "coordinates": "lon lat"})
        clon, clat = grid.corner_lonlat
        ds["lon_corner"] = (("y_corner", "x_corner"), clon, {
            "long_name": "longitude of cell corners", "units": "degrees_east"})
        ds["lat_corner"] = (("y_corner", "x_corner"), clat, {
            "long_name": "latitude of cell corners", "units": "degrees_north"})
    ds.attrs.update(global_attrs(title=f"aqforecast grid {grid.name}", domain=grid.name,
                                 dx_m=float(grid.dx)))
    return ds


def global_attrs(title: str, **extra) -> dict:
    """Global CF attributes common to every file we write."""
    attrs = {
        "Conventions": CF_CONVENTIONS,
        "title": title,
        "institution": "aqforecast",
        "source": f"aqforecast {__version__}",
        "history": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} created by aqforecast "
                   f"{__version__}",
    }
    attrs.update({k: v for k, v in extra.items() if v is not None})
    return attrs


def _encoding(ds: xr.Dataset, compression_level: int, time_chunk: int) -> dict:
    enc = {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "fiu" and var.ndim >= 1 and name not in ds.dims:
            chunks = []
            for d, n in zip(var.dims, var.shape):
                chunks.append(min(n, time_chunk) if d == "time" else (1 if d == "tag" else n))
            e = {"chunksizes": tuple(max(1, c) for c in chunks)}
            if compression_level > 0:
                e.update(zlib=True, complevel=compression_level, shuffle=True)
            if var.dtype.kind == "f":
                e["_FillValue"] = np.nan if var.dtype == np.float64 else np.float32(np.nan)
            enc[name] = e
        elif name in ds.coords or var.ndim == 0:
            enc[name] = {"_FillValue": None}
    if "time" in ds.variables:
        enc.setdefault("time", {})
        enc["time"].update(units="hours since 1970-01-01 00:00:00", calendar="standard",
                           dtype="float64")
    return enc


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, compression_level: int = 4,
                  time_chunk: int = 24) -> Path:
    """Write ``ds`` to ``path`` as NetCDF4 (CF-1.10), atomically. Returns the path.

    Data variables with ``y``/``x`` dims get ``grid_mapping = "crs"`` and ``coordinates =
    "lon lat"`` when the dataset carries those variables.
    """
    path = Path(path)
    ds = ds.copy()
    ds.attrs.setdefault("Conventions", CF_CONVENTIONS)
    for name, var in ds.data_vars.items():
        if {"y", "x"} <= set(var.dims):
            if "crs" in ds.variables:
                var.attrs.setdefault("grid_mapping", "crs")
            if "lon" in ds.variables and "lat" in ds.variables:
                var.attrs.setdefault("coordinates", "lon lat")
    enc = _encoding(ds, compression_level, time_chunk)
    # attributes that xarray would otherwise move to encoding
    for name in list(ds.variables):
        ds[name].attrs.pop("_FillValue", None)
        ds[name].encoding = {}  # what a source file carried must not fight the attrs
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=enc)
    return path


def open_dataset(path: str | os.PathLike, required: Iterable[str] = (),
                 required_dims: Mapping[str, Iterable[str]] | None = None,
                 what: str = "input") -> xr.Dataset:
    """Open a NetCDF file and check it has the ``required`` variables (and their dims).

    Raises :class:`InputFileError` naming the file and every missing variable.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: {what} file does not exist")
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # netCDF4 raises OSError/RuntimeError/ValueError variously
        raise InputFileError(f"{path}: cannot read {what} file as NetCDF: {exc}") from None
    missing = [v for v in required if v not in ds.variables]
    if missing:
        ds.close()
        raise InputFileError(f"{path}: {what} file lacks required variable(s) "
                             f"{', '.join(missing)}")
    for v, dims in (required_dims or {}).items():
        if tuple(ds[v].dims) != tuple(dims):
            ds.close()
            raise InputFileError(f"{path}: variable {v!r} has dims {tuple(ds[v].dims)}, "
                                 f"expected {tuple(dims)}")
    return ds
