"""Receptor tables: daily source shares of PM2.5, O3 and NO2 at cities and stations.

Input is a tags dataset in the forecast layout (``tags_<domain>.nc``,
:mod:`aqforecast.io.output`): one variable per tagged species with dims
``(tag, time, lev, y, x)``, coordinates ``tag_region``/``tag_sector`` on ``tag`` and 2-D
``lon``/``lat``. A receptor is a station (the model cell containing it, nearest cell centre) or
a region mask (weighted mean over cells, weights e.g. the region area fractions of
:class:`aqforecast.emissions.regions.RegionMasks`).

For each receptor, local day and pollutant the daily mean contribution of every tag is summed
by region and by sector, and the share is the ratio of daily means (not the mean of hourly
shares): ``share_g = 100 * mean_day(sum_{k in g} c_k) / mean_day(sum_k c_k)``, so the shares of
one grouping sum to 100 % per receptor and day. PM2.5 is the sum of the PM2.5 component tags
present (PPM25, SO4, NO3, NH4, SNGN as nitrate; SCIENCE.md 5.4), which must share one unit.
The initial-condition and boundary tags appear as their own region/sector ("initial"/"ic",
"boundary"/"bc").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..config.localtime import LocalTime
from ..io import atomic_path

log = logging.getLogger(__name__)

__all__ = ["PM25_COMPONENTS", "pollutant_field", "locate_stations", "receptor_series",
           "receptor_shares", "write_receptor_table"]

#: Tagged species summed into PM2.5 (whichever are present).
PM25_COMPONENTS = ("PPM25", "SO4", "NO3", "NH4", "SNGN")

COLUMNS = ["receptor", "date", "pollutant", "by", "source", "contribution", "total",
           "share_percent", "n_hours", "units"]


def pollutant_field(ds: xr.Dataset, pollutant: str) -> xr.DataArray | None:
    """The tag field of ``pollutant`` ("PM25" = sum of present components), or None."""
    if pollutant in ("PM25", "PM2.5"):
        parts = [c for c in PM25_COMPONENTS if c in ds.data_vars]
        if not parts:
            return None
        units = {ds[c].attrs.get("units") for c in parts}
        if len(units) > 1:
            raise ValueError(f"PM2.5 components {parts} have different units {units}")
        out = sum((ds[c] for c in parts[1:]), ds[parts[0]]).rename("PM25")
        out.attrs = {"units": units.pop(), "components": " ".join(parts)}
        return out
    if pollutant not in ds.data_vars:
        return None
    return ds[pollutant]


def _lonlat(ds) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.asarray(ds["lon"].values, float), np.asarray(ds["lat"].values, float)
    if lon.ndim == 1:
        lon, lat = np.meshgrid(lon, lat)
    return lon, lat


def locate_stations(ds: xr.Dataset, stations: pd.DataFrame, name_column: str | None = None,
                    group_column: str | None = None) -> pd.DataFrame:
    """Grid cell (j, i) of each station (nearest cell centre; local flat-earth distance).

    ``stations`` needs ``lon``, ``lat`` and a name column (``name_column`` or the first of
    ``receptor``/``code``/``station``/``name``/``id``; station names are not unique, codes
    are). Stations without coordinates, or farther than one cell diagonal from every cell
    centre (outside the grid), are dropped (logged). ``group_column`` (e.g. ``city``) is kept
    as column ``group``.
    """
    col = name_column or next((c for c in ("receptor", "code", "station", "name", "id")
                               if c in stations.columns), None)
    if col is None or not {"lon", "lat"} <= set(stations.columns):
        raise ValueError("stations need lon, lat and a name column "
                         f"(receptor/code/station/name/id); got {list(stations.columns)}")
    lon, lat = _lonlat(ds)
    ny, nx = lon.shape
    coslat = np.cos(np.deg2rad(np.nanmean(lat)))
    step = np.hypot(np.nanmedian(np.abs(np.diff(lon, axis=1))) * coslat if nx > 1 else 0.0,
                    np.nanmedian(np.abs(np.diff(lat, axis=0))) if ny > 1 else 0.0)
    groups = stations[group_column] if group_column else [None] * len(stations)
    rows = []
    for name, slon, slat, grp in zip(stations[col], stations["lon"], stations["lat"], groups):
        if not (np.isfinite(slon) and np.isfinite(slat)):
            log.warning("station %s has no coordinates; skipped", name)
            continue
        d = np.hypot((lon - slon) * coslat, lat - slat)
        flat = int(np.nanargmin(d))
        if step > 0 and d.flat[flat] > 1.5 * step:
            log.warning("station %s (%.3f, %.3f) is outside the grid; skipped", name, slon, slat)
            continue
        j, i = divmod(flat, nx)
        rows.append((str(name), float(slon), float(slat), j, i, grp))
    out = pd.DataFrame(rows, columns=["receptor", "lon", "lat", "j", "i", "group"])
    return out if group_column else out.drop(columns="group")


def receptor_series(field: xr.DataArray, cells: pd.DataFrame | None = None,
                    masks: Mapping[str, np.ndarray] | None = None, level: int = 0
                    ) -> xr.DataArray:
    """Tag series at receptors, (tag, time, receptor): station cells (averaged per ``group``
    when ``cells`` has that column, e.g. all stations of a city) and/or mask means."""
    if "lev" in field.dims:
        field = field.isel(lev=level)
    keep = ("tag", "time", "tag_region", "tag_sector")
    field = field.drop_vars([c for c in field.coords if c not in keep])
    parts = []
    if cells is not None and len(cells):
        sel = field.isel(y=xr.DataArray(cells["j"].to_numpy(), dims="receptor"),
                         x=xr.DataArray(cells["i"].to_numpy(), dims="receptor"))
        if "group" in cells.columns:
            sel = sel.assign_coords(receptor=cells["group"].astype(str).to_numpy())
            sel = sel.groupby("receptor").mean()
        else:
            sel = sel.assign_coords(receptor=cells["receptor"].to_numpy())
        parts.append(sel)
    for name, w in (masks or {}).items():
        w = xr.DataArray(np.asarray(w, float), dims=("y", "x"))
        if float(w.sum()) <= 0.0:
            log.warning("receptor mask %s is empty; skipped", name)
            continue
        mean = (field * w).sum(("y", "x")) / w.sum()
        parts.append(mean.expand_dims(receptor=[name]))
    if not parts:
        raise ValueError("no receptors: give stations inside the grid or non-empty masks")
    out = xr.concat(parts, dim="receptor", coords="minimal", compat="override")
    return out.transpose("tag", "time", "receptor")


def _group_sum(values: np.ndarray, labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    names = list(dict.fromkeys(labels.tolist()))
    out = np.stack([values[labels == n].sum(axis=0) for n in names])
    return names, out


def receptor_shares(ds: xr.Dataset, stations: pd.DataFrame | None = None,
                    masks: Mapping[str, np.ndarray] | None = None,
                    pollutants: Sequence[str] = ("PM25", "O3", "NO2"), level: int = 0,
                    utc_offset_hours: float = 8.0, group_column: str | None = None,
                    local_time=None) -> pd.DataFrame:
    """Daily source shares per receptor, pollutant, region and sector (module docstring).

    ds: tags dataset (``tags_<domain>.nc`` layout); stations: DataFrame with lon/lat/name
    (e.g. :func:`aqforecast.observations.readers.read_station_coords`); group_column: average
    the stations' cells per value of this column (e.g. ``"city"``) into one receptor each;
    masks: {receptor name: (ny, nx) weights}; level: model level index (0 = surface);
    utc_offset_hours: days are local days (UTC+8, Beijing, by default); ``local_time`` (a
    :class:`~aqforecast.config.localtime.LocalTime`, e.g. ``cfg.time.local_time``) wins if given.

    Returns a tidy DataFrame with columns ``receptor, date, pollutant, by ("region" or
    "sector"), source, contribution (daily mean, units of the pollutant), total, share_percent,
    n_hours, units``.
    """
    if "tag_region" not in ds.coords or "tag_sector" not in ds.coords:
        raise ValueError("tags dataset needs tag_region and tag_sector coordinates")
    regions = np.asarray(ds["tag_region"].values).astype(str)
    sectors = np.asarray(ds["tag_sector"].values).astype(str)
    cells = (locate_stations(ds, stations, group_column=group_column) if stations is not None
             else None)
    local = LocalTime.coerce(local_time if local_time is not None else utc_offset_hours
                             ).to_local(ds["time"].values)
    days = local.normalize()
    frames = []
    for pol in pollutants:
        field = pollutant_field(ds, pol)
        if field is None:
            log.info("receptor tables: no tags of %s in the dataset; skipped", pol)
            continue
        series = receptor_series(field, cells, masks, level)
        vals = np.asarray(series.values, dtype=float)            # (tag, time, receptor)
        names = series["receptor"].values.astype(str)
        units = field.attrs.get("units", "")
        for day in days.unique():
            sel = np.asarray(days == day)
            valid = np.all(np.isfinite(vals[:, sel]), axis=0)    # (time, receptor)
            nh = valid.sum(axis=0)
            with np.errstate(invalid="ignore"):
                daily = np.nanmean(np.where(valid[None], vals[:, sel], np.nan), axis=1)
            total = daily.sum(axis=0)                            # (receptor,)
            for by, labels in (("region", regions), ("sector", sectors)):
                groups, sums = _group_sum(daily, labels)          # (ngroup, receptor)
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = np.where(total > 0, 100.0 * sums / np.where(total > 0, total, 1),
                                     np.nan)
                g, r = np.meshgrid(np.arange(len(groups)), np.arange(len(names)),
                                   indexing="ij")
                frames.append(pd.DataFrame({
                    "receptor": names[r.ravel()], "date": day.date(), "pollutant": pol,
                    "by": by, "source": np.asarray(groups)[g.ravel()],
                    "contribution": sums.ravel(), "total": total[r.ravel()],
                    "share_percent": share.ravel(), "n_hours": nh[r.ravel()],
                    "units": units}))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["receptor", "date", "pollutant", "by", "share_percent"],
                           ascending=[True, True, True, True, False],
                           kind="stable").reset_index(drop=True)[COLUMNS]


def write_receptor_table(table: pd.DataFrame, path: str | Path, float_format: str = "%.6g"
                         ) -> Path:
    """Write a receptor table as CSV, atomically (temporary file renamed on success)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format=float_format)
    log.info("wrote %s (%d rows)", path, len(table))
    return path
