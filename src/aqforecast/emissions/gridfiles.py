"""Gridded emission files on regular lon/lat grids: open any supported format as an xarray
Dataset with CF lon/lat, find the coordinates by their CF attributes, and pick the cells around a
model domain (:mod:`.layouts` reads the emissions from them).

Formats: CF NetCDF; MEIC's GMT-style NetCDF (``x_range``, ``y_range``, ``spacing``,
``dimension``, ``z`` flattened from the north; pixel or grid-line registration, from the range,
spacing and dimension); ESRI ASCII grids (``.asc``: ``ncols``, ``nrows``,
``xllcorner``/``xllcenter``, ``yllcorner``/``yllcenter``, ``cellsize``, ``NODATA_value``; first
row north). Declared no-data values become NaN with ``_FillValue`` set in the encoding.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..io import InputFileError, open_dataset
from ..io.text import read_text
from .units import is_number

log = logging.getLogger(__name__)

__all__ = ["open_grid_file", "lonlat_names", "cell_bounds", "select_cells"]


def open_grid_file(path: Path):
    """An xarray Dataset with CF lon/lat for any supported file, and whether its single data
    variable is taken whatever its name (ESRI ASCII, GMT)."""
    if path.suffix.lower() == ".asc":
        return _esri_ascii_dataset(path), True
    ds = open_dataset(path, what="gridded emission inventory")
    if {"x_range", "y_range", "spacing", "dimension", "z"} <= set(ds.variables):
        try:
            return _gmt_dataset(ds, path), True
        finally:
            ds.close()
    return ds, False


def _lonlat_dataset(lon_edges, lat_edges, z: np.ndarray, nodata, units, name: str):
    import xarray as xr

    lon_e, lat_e = np.asarray(lon_edges, float), np.asarray(lat_edges, float)
    lon = 0.5 * (lon_e[1:] + lon_e[:-1])
    lat = 0.5 * (lat_e[1:] + lat_e[:-1])
    attrs = {"units": units} if units else {}
    da = xr.DataArray(z, dims=("lat", "lon"), attrs=attrs)
    if nodata is not None:
        da = da.where(z != nodata)
        da.encoding["_FillValue"] = nodata
    return xr.Dataset(
        {name: da,
         "lat_bnds": (("lat", "nv"), np.column_stack([lat_e[:-1], lat_e[1:]])),
         "lon_bnds": (("lon", "nv"), np.column_stack([lon_e[:-1], lon_e[1:]]))},
        coords={"lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north",
                                     "bounds": "lat_bnds"}),
                "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east",
                                     "bounds": "lon_bnds"})})


def _esri_ascii_dataset(path: Path):
    """An ESRI ASCII grid as a Dataset (rows from the north in the file, south first here)."""
    text = read_text(path, what="ESRI ASCII grid")
    head: dict[str, float] = {}
    tokens = text.split()
    i = 0
    while i + 1 < len(tokens) and not is_number(tokens[i]):
        head[tokens[i].lower()] = float(tokens[i + 1]) if is_number(tokens[i + 1]) else np.nan
        i += 2
    need = ["ncols", "nrows", "cellsize"]
    miss = [k for k in need if k not in head] + [
        k for k in ("xllcorner", "yllcorner") if k not in head and k.replace("corner", "center")
        not in head]
    if miss or not all(np.isfinite(head[k]) for k in need):
        raise InputFileError(f"{path}: ESRI ASCII grid header lacks {', '.join(miss) or 'numbers'}"
                             "; expected ncols, nrows, xllcorner|xllcenter, yllcorner|yllcenter, "
                             "cellsize [, NODATA_value]")
    nx, ny, d = int(head["ncols"]), int(head["nrows"]), head["cellsize"]
    x0 = head.get("xllcorner", head.get("xllcenter", 0.0) - 0.5 * d)
    y0 = head.get("yllcorner", head.get("yllcenter", 0.0) - 0.5 * d)
    try:
        z = np.array(tokens[i:], dtype=float)
    except ValueError:
        raise InputFileError(f"{path}: ESRI ASCII grid data are not all numbers") from None
    if z.size != nx * ny:
        raise InputFileError(f"{path}: ESRI ASCII grid has {z.size} values, expected nrows x "
                             f"ncols = {ny} x {nx} = {nx * ny}")
    z = z.reshape(ny, nx)[::-1]
    return _lonlat_dataset(x0 + d * np.arange(nx + 1), y0 + d * np.arange(ny + 1), z,
                           head.get("nodata_value"), None, "z")


def _gmt_dataset(ds, path: Path):
    """MEIC's GMT-style NetCDF (x_range, y_range, spacing, dimension, z) as a Dataset."""
    nx, ny = (int(v) for v in np.asarray(ds["dimension"].values).ravel()[:2])
    dx, dy = (abs(float(v)) for v in np.asarray(ds["spacing"].values).ravel()[:2])
    edges = []
    for rng, n, d in ((ds["x_range"], nx, dx), (ds["y_range"], ny, dy)):
        a, b = sorted(float(v) for v in np.asarray(rng.values).ravel()[:2])
        if abs((b - a) / d - n) < 1e-6:          # pixel registration: the range is the edges
            edges.append(a + d * np.arange(n + 1))
        elif abs((b - a) / d - (n - 1)) < 1e-6:  # grid-line registration: cell centres
            edges.append(a - 0.5 * d + d * np.arange(n + 1))
        else:
            raise InputFileError(f"{path}: GMT grid range {a:g}..{b:g} with spacing {d:g} does "
                                 f"not fit its dimension {n}")
    z = np.asarray(ds["z"].values, dtype=float)
    if z.size != nx * ny:
        raise InputFileError(f"{path}: variable 'z' has {z.size} values, expected {nx} x {ny}")
    attrs = ds["z"].attrs
    nodata = attrs.get("nodata_value", ds["z"].encoding.get("_FillValue"))
    z = z.reshape(ny, nx)[::-1]           # GMT stores rows from the north
    out = _lonlat_dataset(edges[0], edges[1], z, None if nodata is None else float(nodata),
                          attrs.get("units"), "z")
    return out



def lonlat_names(ds, path: Path) -> tuple[str, str]:
    import cf_xarray  # noqa: F401  (registers the .cf accessor)

    def pick(coords, key):
        names = [n for n in coords.get(key, []) if ds[n].ndim == 1 and ds[n].dims == (n,)]
        return names[0] if len(names) == 1 else None

    coords = ds.cf.coordinates
    lon, lat = pick(coords, "longitude"), pick(coords, "latitude")
    if lon is None or lat is None:
        guessed = ds.cf.guess_coord_axis().cf.coordinates
        lon, lat = lon or pick(guessed, "longitude"), lat or pick(guessed, "latitude")
        if lon is None or lat is None:
            raise InputFileError(
                f"{path}: no 1-D latitude/longitude coordinates found (CF standard_name "
                "latitude/longitude or units degrees_north/degrees_east); the inventory must "
                "be on a regular lon/lat grid")
        log.info("%s: lon/lat coordinates %r/%r found by name (no CF attributes)", path, lon, lat)
    return lon, lat


def cell_bounds(ds, name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) edges of each cell of 1-D coordinate ``name`` (file order)."""
    c = np.asarray(ds[name].values, dtype=float)
    if c.size == 0 or not np.all(np.isfinite(c)):
        raise InputFileError(f"{path}: coordinate {name!r} is empty or has non-finite values")
    bname = ds[name].attrs.get("bounds")
    if bname is None and f"{name}_bnds" in ds.variables:
        bname = f"{name}_bnds"
    if bname is not None:
        if bname not in ds.variables:
            raise InputFileError(f"{path}: coordinate {name!r} names bounds {bname!r}, absent")
        b = np.asarray(ds[bname].values, dtype=float)
        if b.shape != (c.size, 2):
            raise InputFileError(f"{path}: {bname!r} has shape {b.shape}, expected ({c.size}, 2)")
        return b.min(axis=1), b.max(axis=1)
    if c.size < 2:
        raise InputFileError(f"{path}: coordinate {name!r} has one value and no bounds")
    d = np.diff(c)
    if np.any(d == 0) or np.any(np.sign(d) != np.sign(d[0])) or \
            np.max(np.abs(d - d.mean())) > 1e-6 * abs(d.mean()):
        raise InputFileError(f"{path}: coordinate {name!r} must be monotonic with regular "
                             f"spacing (or have CF bounds); spacing ranges "
                             f"{d.min():g}..{d.max():g}")
    h = 0.5 * abs(d.mean())
    return c - h, c + h


def select_cells(lo, hi, window, path: Path, name: str, is_lon: bool):
    """Cells overlapping ``window`` (with a margin of two cells): (file indices, ascending
    order) and their edges; longitudes moved to -180..180 first."""
    lo, hi = lo.copy(), hi.copy()
    if is_lon:
        east = lo >= 180.0 - 1e-9
        lo[east] -= 360.0
        hi[east] -= 360.0
    order = np.argsort(lo, kind="stable")
    keep = np.ones(lo.size, bool)
    if window is not None:
        m = 2.0 * float(np.max(hi - lo))
        keep = (hi > window[0] - m) & (lo < window[1] + m)
    idx = order[keep[order]]
    if idx.size == 0:
        return idx, None
    low, h = lo[idx], hi[idx]
    if np.any(np.abs(low[1:] - h[:-1]) > 1e-6 * max(1.0, float(np.max(np.abs(h))))):
        raise InputFileError(f"{path}: the cells of coordinate {name!r} are not contiguous "
                             "around the model domain")
    return idx, np.concatenate([low, h[-1:]])
