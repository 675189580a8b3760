"""CF-1.10 NetCDF writing and reading, always atomic.

Every file is written to a temporary name in the destination directory and renamed over the final
name only when complete (``os.replace`` is atomic on POSIX), so a crash or an exception never
leaves a half-written product.

Layout written for gridded fields (CF-1.10 conventions, section 5.6 "grid mappings"):

* dimensions ``(time, lev, y, x)`` (any leading subset), ``x``/``y`` projection coordinates in m
  with ``standard_name = projection_x_coordinate``/``projection_y_coordinate``;
* 2-D auxiliary coordinates ``lon``/``lat`` with CF cell bounds ``lon_bnds``/``lat_bnds``
  (y, x, nv4: the corners south-west, south-east, north-east, north-west, anticlockwise);
  every data variable lists ``lon lat`` and the other auxiliary coordinates it spans (e.g. a
  ``time`` coordinate on a ``lead_window`` or ``day`` dimension, named by ``cell_methods``) in
  its ``coordinates`` attribute;
* a scalar ``crs`` variable with the projection's ``grid_mapping`` attributes;
* ``cell_area`` (m2, true area dx dy / m**2) and ``cell_measures = "area: cell_area"`` on every
  gridded data variable (CF 7.2);
* ``lev``: WRF's terrain-following eta in dry hydrostatic pressure, which is CF's
  ``atmosphere_sigma_coordinate`` (Appendix D): ``p = ptop + lev (ps - ptop)`` with
  ``formula_terms = "sigma: lev ps: ps ptop: ptop"``; the eta of the layer interfaces of the
  whole column is ``lev_interface`` (nz + 1, a plain coordinate, not an axis; not CF
  ``bounds`` of ``lev``: the compliance checker 6.1 compares the bounds' own ``formula_terms``
  with lev's and fails the CF-1.7 form ``sigma: lev_bnds ...``), ``ptop`` the model top (Pa)
  and ``ps`` the dry hydrostatic surface pressure (Pa): (time, y, x) where the model wrote it
  (``conc_*``, ``tags_*``, initial states), else a scalar reference 101325 Pa giving the
  nominal level pressures (grid files, :func:`vertical_coordinate`). The pressure this gives
  is the dry-air (hydrostatic) pressure of WRF's eta, the model's vertical coordinate
  (:class:`aqforecast.grid.VerticalGrid`);
* zlib compression and chunks of one time step x full horizontal map (fast maps) with a short
  time run per chunk (readable point time series).

:func:`write_dataset` is the one place these conventions are applied (``grid_mapping``,
``coordinates``, ``cell_measures``, the consistency of ``formula_terms``), so every file the
package writes through it passes the IOOS compliance checker ``cf:1.10`` (tested).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from .. import __version__
from .. import species as species_registry
from ..grid import LambertGrid

CF_CONVENTIONS = "CF-1.10"

#: Reference surface pressure of the nominal level pressures in files without met (Pa).
REFERENCE_SURFACE_PRESSURE = 101325.0
_SIGMA_TERMS = "ps: ps ptop: ptop"


#: Serialises reads of open NetCDF files between threads (the HDF5 library is not built
#: thread-safe; nested domains may step on two threads, Simulation)
NETCDF_LOCK = threading.RLock()

__all__ = [
    "CF_CONVENTIONS",
    "InputFileError",
    "atomic_path",
    "grid_dataset",
    "vertical_coordinate",
    "surface_pressure_variable",
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
    coords["lon"][2]["bounds"] = "lon_bnds"
    coords["lat"][2]["bounds"] = "lat_bnds"
    ds = xr.Dataset(coords=coords)
    if grid.vertical is not None:
        ds = ds.merge(vertical_coordinate(grid.vertical))
    ds["crs"] = xr.DataArray(np.int32(0), attrs=grid.cf_grid_mapping())
    clon, clat = grid.corner_lonlat
    ds["lon_bnds"] = (("y", "x", "nv4"), _cell_bounds(clon), {"units": "degrees_east"})
    ds["lat_bnds"] = (("y", "x", "nv4"), _cell_bounds(clat), {"units": "degrees_north"})
    ds["cell_area"] = (("y", "x"), grid.cell_area, {
        "standard_name": "cell_area", "long_name": "true horizontal cell area", "units": "m2",
        "grid_mapping": "crs", "coordinates": "lon lat"})
    if with_metrics:
        ds["map_factor"] = (("y", "x"), grid.map_factor, {
            "long_name": "map scale factor at cell centre", "units": "1",
            "grid_mapping": "crs", "coordinates": "lon lat"})
        ds["lon_corner"] = (("y_corner", "x_corner"), clon, {
            "long_name": "longitude of cell corners", "units": "degrees_east"})
        ds["lat_corner"] = (("y_corner", "x_corner"), clat, {
            "long_name": "latitude of cell corners", "units": "degrees_north"})
    ds.attrs.update(global_attrs(title=f"aqforecast grid {grid.name}", domain=grid.name,
                                 dx_m=float(grid.dx)))
    return ds


def _cell_bounds(corners: np.ndarray) -> np.ndarray:
    """(ny+1, nx+1) corner values -> (ny, nx, 4) CF bounds: SW, SE, NE, NW (anticlockwise)."""
    c = np.asarray(corners, dtype=float)
    return np.stack([c[:-1, :-1], c[:-1, 1:], c[1:, 1:], c[1:, :-1]], axis=-1)


def vertical_coordinate(vertical, surface_pressure=None) -> xr.Dataset:
    """The CF vertical coordinate of a :class:`~aqforecast.grid.VerticalGrid`: ``lev`` (sigma =
    eta at layer centres), ``lev_interface`` (eta at the nz + 1 interfaces), ``ptop`` and ``ps``
    (module docstring).

    ``surface_pressure``: the dry hydrostatic surface pressure, Pa, as an
    :class:`xarray.DataArray` (e.g. dims (time, y, x)); None gives the scalar reference
    101325 Pa (nominal level pressures).
    """
    def sigma(name: str, where: str) -> dict:
        return {"standard_name": "atmosphere_sigma_coordinate",
                "long_name": f"eta (dry hydrostatic pressure terrain-following) at {where}",
                "units": "1", "positive": "down", "axis": "Z",
                "formula_terms": f"sigma: {name} {_SIGMA_TERMS}",
                "computed_standard_name": "air_pressure"}

    eta = np.asarray(vertical.eta_interfaces, dtype=float)
    lev = xr.Dataset(coords={
        "lev": ("lev", vertical.eta_centres, sigma("lev", "layer centre")),
        "lev_interface": ("lev_interface", eta, {
            "long_name": "eta at the layer interfaces (1 = surface, 0 = model top)",
            "units": "1", "comment": "pressure p = ptop + lev_interface (ps - ptop), as for "
            "lev; not an axis (lev is the vertical axis of the data)"})})
    lev["ptop"] = ((), float(vertical.p_top), {
        "long_name": "pressure at the model top", "units": "Pa"})
    lev["ps"] = surface_pressure_variable(surface_pressure)
    return lev


def surface_pressure_variable(values=None, dims=None) -> xr.DataArray:
    """The ``ps`` formula term: dry hydrostatic surface pressure (Pa), ``values`` with ``dims``
    (or a DataArray), or the scalar reference 101325 Pa when None."""
    if values is None:
        return xr.DataArray(REFERENCE_SURFACE_PRESSURE, attrs={
            "long_name": "reference dry surface pressure of the nominal level pressures",
            "units": "Pa", "comment": "no meteorology in this file: the level pressures "
            "p = ptop + lev (ps - ptop) are nominal; the model's actual dry hydrostatic surface "
            "pressure is in its conc_<domain>.nc files"})
    da = values if isinstance(values, xr.DataArray) else xr.DataArray(values, dims=dims)
    return da.assign_attrs({"long_name": "dry hydrostatic surface pressure (WRF mu_d + p_top)",
                            "units": "Pa", "comment": "the ps of lev's formula_terms: "
                            "p = ptop + lev (ps - ptop) is the dry hydrostatic pressure"})


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
    # CF 7.1: boundary variables carry no _FillValue (they are never missing)
    bounds = {b for v in ds.variables.values() for b in str(v.attrs.get("bounds", "")).split()}
    for name, var in ds.variables.items():
        if var.dtype.kind in "fiu" and var.ndim >= 1 and name not in ds.dims:
            chunks = []
            for d, n in zip(var.dims, var.shape):
                chunks.append(min(n, time_chunk) if d == "time" else (1 if d == "tag" else n))
            e = {"chunksizes": tuple(max(1, c) for c in chunks)}
            if compression_level > 0:
                e.update(zlib=True, complevel=compression_level, shuffle=True)
            if var.dtype.kind == "f" and name not in bounds:
                e["_FillValue"] = np.nan if var.dtype == np.float64 else np.float32(np.nan)
            elif name in bounds:
                e["_FillValue"] = None
            enc[name] = e
        elif name in ds.dims and var.dtype.kind in "OUS":
            # string labels of a dimension (obs.nc stations) as a CF char array (dim, strlen):
            # a string *coordinate variable* is not CF (coordinates are numeric, monotonic);
            # xarray reads the char array back as the same string index
            enc[name] = {"dtype": "S1", "_FillValue": None}
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

    Data variables with ``y``/``x`` dims get ``grid_mapping = "crs"``, ``coordinates`` (``lon
    lat`` and every other auxiliary coordinate spanning a subset of their dims) and
    ``cell_measures = "area: cell_area"`` when the dataset carries those variables; bounds and
    formula-term variables are written as plain variables; a vertical coordinate whose formula
    terms are not all present loses its standard_name and formula_terms (module docstring).
    """
    path = Path(path)
    ds = _cf_finish(ds.copy())
    ds.attrs.setdefault("title", f"aqforecast {path.stem}")
    enc = _encoding(ds, compression_level, time_chunk)
    # attributes that xarray would otherwise move to encoding
    for name in list(ds.variables):
        ds[name].attrs.pop("_FillValue", None)
        ds[name].encoding = {}  # what a source file carried must not fight the attrs
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=enc)
    return path


def _cf_finish(ds: xr.Dataset) -> xr.Dataset:
    """Apply the conventions of the module docstring to a copy about to be written."""
    ds.attrs.setdefault("Conventions", CF_CONVENTIONS)
    for key, value in global_attrs("").items():   # history, institution, source (CF 2.6.2)
        if key not in ("title", "Conventions"):
            ds.attrs.setdefault(key, value)
    refs = set()
    for var in ds.variables.values():
        refs.update(str(var.attrs.get("bounds", "")).split())
        terms = str(var.attrs.get("formula_terms", "")).split()
        refs.update(t for t in terms[1::2])
    refs.add("cell_area")
    # bounds, formula terms and cell measures are variables of their own, not coordinates
    demote = [n for n in refs if n in ds.coords and n not in ds.dims]
    if demote:
        ds = ds.reset_coords(demote)
    for v in ("lev",):
        if v in ds.variables and "formula_terms" in ds[v].attrs:
            terms = ds[v].attrs["formula_terms"].split()[1::2]
            if any(t not in ds.variables for t in terms):
                for k in ("formula_terms", "standard_name", "computed_standard_name"):
                    ds[v].attrs.pop(k, None)
    has_lonlat = "lon" in ds.variables and "lat" in ds.variables
    aux = [n for n in ds.coords if n not in ds.dims and n not in ("lon", "lat")]
    for name, var in ds.data_vars.items():
        if not {"y", "x"} <= set(var.dims) or name in refs - {"ps"}:
            continue
        if "crs" in ds.variables:
            var.attrs.setdefault("grid_mapping", "crs")
        var.encoding.pop("coordinates", None)   # what a source file listed is recomputed
        if "coordinates" not in var.attrs:
            names = (["lon", "lat"] if has_lonlat else []) + [
                n for n in aux if set(ds[n].dims) <= set(var.dims)]
            if names:
                var.attrs["coordinates"] = " ".join(names)
        if "cell_area" in ds.variables:
            var.attrs.setdefault("cell_measures", "area: cell_area")
    return ds


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
