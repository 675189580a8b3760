"""Hot-spot screening on 3 x 3 km cells, with the top contributing sectors and regions.

Fields on the model grid are aggregated to blocks of ``f x f`` cells, ``f = round(3000 m / dx)``
(1 km grid -> 3 x 3 cells; a 3 km grid is used as is), as (optionally weighted) block means;
blocks cut by the grid edge are the means of the cells they hold. The N blocks with the highest
value are listed:

* concentration hot spots: e.g. the daily-mean surface PM2.5 (sum of the component species);
* emission hot spots: emission density (flux per area) as an anomaly -- the ratio to the domain
  median of the positive block values (``mode="median"``), or the excess over a prior inventory
  on the same grid (``mode="prior"``, ranked by ``value - prior``; the ratio is reported).

With tag fields (concentration tags ``(ntag, ny, nx)`` or tagged emissions on the same tag axis)
each block gets its top regions and sectors and their shares (% of the sum over tags) in
columns ``region_1, region_1_pct, ..., sector_1, sector_1_pct, ...``. Block polygons are given
by their corner lon/lat (``lon_sw, lat_sw, lon_se, ..., lat_nw``), written as CSV and optionally
as GeoJSON (both atomically).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..config.localtime import LocalTime
from ..io import atomic_path
from .receptors import pollutant_field

log = logging.getLogger(__name__)

__all__ = ["block_factor", "aggregate_blocks", "block_corners", "screen_hotspots",
           "concentration_hotspots", "emission_hotspots", "write_hotspots_csv",
           "write_hotspots_geojson"]

#: Side of the screening cells, m.
BLOCK_M = 3000.0
_CORNERS = ("sw", "se", "ne", "nw")


def block_factor(dx_m: float, block_m: float = BLOCK_M) -> int:
    """Model cells per block side: round(block_m/dx), at least 1 (warned if not integral)."""
    ratio = block_m / float(dx_m)
    f = max(1, int(round(ratio)))
    if abs(ratio - f) > 1e-6 * ratio and ratio > 1:
        log.warning("dx = %g m does not divide %g m; using %d x %d cell blocks (%g m)", dx_m,
                    block_m, f, f, f * dx_m)
    if ratio < 1:
        log.warning("grid (dx = %g m) is coarser than the %g m screening cells; using cells",
                    dx_m, block_m)
    return f


def aggregate_blocks(field, factor: int, weights=None) -> np.ndarray:
    """Block means over the last two axes, (..., ny, nx) -> (..., ceil(ny/f), ceil(nx/f)).

    NaN cells are ignored; ``weights`` (ny, nx), e.g. cell areas, gives weighted means; edge
    blocks are the means of the cells they hold.
    """
    a = np.asarray(field, dtype=float)
    ny, nx = a.shape[-2:]
    f = int(factor)
    nby, nbx = -(-ny // f), -(-nx // f)
    w = np.ones((ny, nx)) if weights is None else np.asarray(weights, dtype=float)
    pad = ((0, nby * f - ny), (0, nbx * f - nx))
    wp = np.pad(w, pad)
    ap = np.pad(a, ((0, 0),) * (a.ndim - 2) + pad)
    wfull = np.broadcast_to(wp, ap.shape)
    good = np.isfinite(ap)
    num = np.where(good, ap * wfull, 0.0)
    den = np.where(good, wfull, 0.0)
    shp = ap.shape[:-2] + (nby, f, nbx, f)
    num = num.reshape(shp).sum(axis=(-3, -1))
    den = den.reshape(shp).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _corners_from_centres(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell-corner lon/lat (ny+1, nx+1) estimated from centres (linear extrapolation)."""
    def corners(c):
        ny, nx = c.shape
        if ny < 2 or nx < 2:
            raise ValueError("need at least 2 x 2 cells to estimate cell corners; pass them")
        e = np.empty((ny + 2, nx + 2))
        e[1:-1, 1:-1] = c
        e[0, 1:-1] = 2 * c[0] - c[1]
        e[-1, 1:-1] = 2 * c[-1] - c[-2]
        e[:, 0] = 2 * e[:, 1] - e[:, 2]
        e[:, -1] = 2 * e[:, -2] - e[:, -3]
        return 0.25 * (e[:-1, :-1] + e[1:, :-1] + e[:-1, 1:] + e[1:, 1:])
    return corners(np.asarray(lon, float)), corners(np.asarray(lat, float))


def block_corners(corner_lon, corner_lat, factor: int):
    """Block corner lon/lat (nby+1, nbx+1) from cell corners (ny+1, nx+1)."""
    corner_lon, corner_lat = np.asarray(corner_lon), np.asarray(corner_lat)
    ny, nx = corner_lon.shape[0] - 1, corner_lon.shape[1] - 1
    jj = np.minimum(np.arange(0, -(-ny // factor) + 1) * factor, ny)
    ii = np.minimum(np.arange(0, -(-nx // factor) + 1) * factor, nx)
    return corner_lon[np.ix_(jj, ii)], corner_lat[np.ix_(jj, ii)]


def _top(share: np.ndarray, labels: Sequence[str], top: int, prefix: str) -> dict:
    order = np.argsort(-share, kind="stable")[:top]
    row = {}
    for n in range(top):
        if n < len(order) and np.isfinite(share[order[n]]):
            row[f"{prefix}_{n + 1}"] = labels[order[n]]
            row[f"{prefix}_{n + 1}_pct"] = float(share[order[n]])
        else:
            row[f"{prefix}_{n + 1}"] = ""
            row[f"{prefix}_{n + 1}_pct"] = np.nan
    return row


def _group_shares(tags_block: np.ndarray, labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Shares (%) per label group of one block's tag values (ntag,)."""
    names = list(dict.fromkeys(labels.tolist()))
    sums = np.array([tags_block[labels == n].sum() for n in names])
    tot = tags_block.sum()
    return names, (100.0 * sums / tot if tot > 0 else np.full(len(names), np.nan))


def screen_hotspots(values, *, dx_m: float, n: int = 10, lon=None, lat=None,
                    corner_lon=None, corner_lat=None, tags=None, tag_region=None,
                    tag_sector=None, top: int = 3, weights=None, rank_by=None,
                    block_m: float = BLOCK_M, extra: dict | None = None) -> pd.DataFrame:
    """The ``n`` 3-km blocks with the largest ``rank_by`` (default: the block-mean ``values``).

    values: (ny, nx) field; dx_m: grid spacing, m; lon/lat: (ny, nx) cell centres (deg);
    corner_lon/corner_lat: (ny+1, nx+1) cell corners (estimated from lon/lat if not given);
    tags: (ntag, ny, nx) contributions with ``tag_region``/``tag_sector`` labels (ntag,);
    weights: (ny, nx) averaging weights (e.g. cell area); rank_by: (ny, nx) field to rank by
    instead of ``values`` (aggregated the same way); extra: {column: (ny, nx) field} of block
    means to report. Returns a DataFrame, one row per block, best first.
    """
    values = np.asarray(values, dtype=float)
    ny, nx = values.shape
    f = block_factor(dx_m, block_m)
    block = aggregate_blocks(values, f, weights)
    key = block if rank_by is None else aggregate_blocks(rank_by, f, weights)
    nbx = block.shape[1]
    order = np.argsort(np.where(np.isfinite(key), -key, np.inf), axis=None, kind="stable")
    order = [o for o in order if np.isfinite(key.flat[o])][:n]
    if corner_lon is None and lon is not None:
        corner_lon, corner_lat = _corners_from_centres(lon, lat)
    bc = block_corners(corner_lon, corner_lat, f) if corner_lon is not None else None
    bcen = (aggregate_blocks(lon, f), aggregate_blocks(lat, f)) if lon is not None else None
    tb = aggregate_blocks(tags, f, weights) if tags is not None else None
    ext = {k: aggregate_blocks(v, f, weights) for k, v in (extra or {}).items()}
    rows = []
    for rank, o in enumerate(order, start=1):
        bj, bi = divmod(int(o), nbx)
        row = {"rank": rank, "block_j": bj, "block_i": bi, "j0": bj * f,
               "j1": min((bj + 1) * f, ny), "i0": bi * f, "i1": min((bi + 1) * f, nx),
               "block_km": f * dx_m / 1000.0, "value": float(block[bj, bi])}
        if rank_by is not None:
            row["rank_value"] = float(key[bj, bi])
        for k, v in ext.items():
            row[k] = float(v[bj, bi])
        if bcen is not None:
            row["lon"], row["lat"] = float(bcen[0][bj, bi]), float(bcen[1][bj, bi])
        if tb is not None:
            col = tb[:, bj, bi]
            for prefix, labels in (("region", tag_region), ("sector", tag_sector)):
                if labels is None:
                    continue
                names, share = _group_shares(col, np.asarray(labels).astype(str))
                row.update(_top(share, names, top, prefix))
        if bc is not None:
            cj = {"sw": (bj, bi), "se": (bj, bi + 1), "ne": (bj + 1, bi + 1), "nw": (bj + 1, bi)}
            for c in _CORNERS:
                row[f"lon_{c}"] = float(bc[0][cj[c]])
                row[f"lat_{c}"] = float(bc[1][cj[c]])
        rows.append(row)
    return pd.DataFrame(rows)


def _dx(ds: xr.Dataset, dx_m) -> float:
    if dx_m is not None:
        return float(dx_m)
    if "x" in ds.coords and ds.sizes.get("x", 0) > 1:
        return float(abs(ds["x"].values[1] - ds["x"].values[0]))
    if "dx_m" in ds.attrs:
        return float(ds.attrs["dx_m"])
    raise ValueError("cannot tell the grid spacing: give dx_m")


def _daily(da: xr.DataArray, day, level: int, local) -> xr.DataArray:
    if "lev" in da.dims:
        da = da.isel(lev=level)
    if "time" in da.dims:
        if day is not None:
            local = LocalTime.coerce(local).to_local(da["time"].values)
            sel = np.asarray(local.normalize() == pd.Timestamp(day).normalize())
            if not sel.any():
                raise ValueError(f"no times on local day {day}")
            da = da.isel(time=np.flatnonzero(sel))
        da = da.mean("time")
    return da


def concentration_hotspots(conc: xr.Dataset, tags: xr.Dataset | None = None,
                           pollutant: str = "PM25", day=None, n: int = 10, level: int = 0,
                           grid=None, dx_m: float | None = None, top: int = 3,
                           utc_offset_hours: float = 8.0, local_time=None) -> pd.DataFrame:
    """Concentration hot spots from ``conc_<domain>.nc`` (+ ``tags_<domain>.nc``) datasets.

    The (local) daily mean of ``day`` (all times if None) of ``pollutant`` at model level
    ``level`` ("PM25" sums the components present, or uses a PM25 variable); ``grid`` (a
    :class:`~aqforecast.grid.LambertGrid`) gives exact cell corners. Local days: ``local_time``
    (a :class:`~aqforecast.config.localtime.LocalTime`, e.g. the config's
    ``cfg.time.local_time``) if given, else UTC + ``utc_offset_hours``.
    """
    utc_offset_hours = local_time if local_time is not None else utc_offset_hours
    field = conc["PM25"] if pollutant in ("PM25", "PM2.5") and "PM25" in conc else \
        pollutant_field(conc, pollutant)
    if field is None:
        raise KeyError(f"{pollutant} is not in the concentration dataset")
    mean = _daily(field, day, level, utc_offset_hours)
    lon, lat = (np.asarray(conc["lon"].values), np.asarray(conc["lat"].values)) \
        if "lon" in conc.coords else (None, None)
    corners = grid.corner_lonlat if grid is not None else (None, None)
    tag_vals = regions = sectors = None
    if tags is not None:
        tf = pollutant_field(tags, pollutant)
        if tf is None:
            log.warning("no tags of %s; hot spots without contributors", pollutant)
        else:
            tag_vals = _daily(tf, day, level, utc_offset_hours).transpose("tag", "y", "x").values
            regions, sectors = tags["tag_region"].values, tags["tag_sector"].values
    df = screen_hotspots(mean.transpose("y", "x").values, dx_m=_dx(conc, dx_m), n=n, lon=lon,
                         lat=lat, corner_lon=corners[0], corner_lat=corners[1], tags=tag_vals,
                         tag_region=regions, tag_sector=sectors, top=top)
    df.insert(1, "pollutant", pollutant)
    df.insert(2, "units", field.attrs.get("units", ""))
    return df


def emission_hotspots(density, *, dx_m: float, prior=None, mode: str = "median", n: int = 10,
                      tags=None, tag_region=None, tag_sector=None, lon=None, lat=None,
                      corner_lon=None, corner_lat=None, weights=None, top: int = 3
                      ) -> pd.DataFrame:
    """Emission-anomaly hot spots of an emission density field (ny, nx), e.g. kg m-2 s-1.

    ``mode="median"``: rank by the ratio to the domain median of positive block means
    (column ``anomaly``); ``mode="prior"``: rank by the excess over ``prior`` (same grid and
    units; columns ``prior``, ``excess``, ``anomaly`` = ratio). ``tags`` (ntag, ny, nx) are the
    tagged emissions (``EmissionModel.tagged_emissions``) for the contributors.
    """
    density = np.asarray(density, dtype=float)
    f = block_factor(dx_m)
    if mode == "median":
        block = aggregate_blocks(density, f, weights)
        pos = block[np.isfinite(block) & (block > 0)]
        med = float(np.median(pos)) if pos.size else np.nan
        df = screen_hotspots(density, dx_m=dx_m, n=n, lon=lon, lat=lat, corner_lon=corner_lon,
                             corner_lat=corner_lat, tags=tags, tag_region=tag_region,
                             tag_sector=tag_sector, top=top, weights=weights)
        if len(df):
            df.insert(df.columns.get_loc("value") + 1, "anomaly", df["value"] / med)
            df.insert(df.columns.get_loc("anomaly") + 1, "domain_median", med)
        return df
    if mode == "prior":
        if prior is None:
            raise ValueError("mode='prior' needs the prior emission density")
        prior = np.asarray(prior, dtype=float)
        df = screen_hotspots(density, dx_m=dx_m, n=n, lon=lon, lat=lat, corner_lon=corner_lon,
                             corner_lat=corner_lat, tags=tags, tag_region=tag_region,
                             tag_sector=tag_sector, top=top, weights=weights,
                             rank_by=density - prior, extra={"prior": prior})
        if len(df):
            df = df.rename(columns={"rank_value": "excess"})
            with np.errstate(divide="ignore", invalid="ignore"):
                df.insert(df.columns.get_loc("excess") + 1, "anomaly",
                          df["value"] / df["prior"])
        return df
    raise ValueError(f"mode must be 'median' or 'prior', got {mode!r}")


def write_hotspots_csv(table: pd.DataFrame, path: str | Path, float_format: str = "%.6g"
                       ) -> Path:
    """Write a hot-spot table as CSV (atomic)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format=float_format)
    return path


def write_hotspots_geojson(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the hot-spot blocks as a GeoJSON FeatureCollection of lon/lat polygons (atomic);
    every other column becomes a feature property."""
    need = [f"{a}_{c}" for c in _CORNERS for a in ("lon", "lat")]
    if not set(need) <= set(table.columns):
        raise ValueError("the table has no block corners (lon_sw, lat_sw, ...)")
    feats = []
    for rec in table.to_dict(orient="records"):
        ring = [[rec[f"lon_{c}"], rec[f"lat_{c}"]] for c in _CORNERS]
        ring.append(ring[0])
        props = {k: (None if isinstance(v, float) and not np.isfinite(v) else
                     v.item() if isinstance(v, np.generic) else v)
                 for k, v in rec.items() if k not in need}
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                      "properties": props})
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps({"type": "FeatureCollection", "features": feats},
                                        default=str), encoding="utf-8")
    return path
