"""Daily AQI tables per city and per station from gridded surface forecasts.

- Stations: each station (lon, lat) takes the nearest cell of the finest domain whose grid
  contains it, else of the next coarser one (:class:`aqforecast.verification.StationSampler`,
  great-circle nearest centre; "contains" = inside the quads of cell centres).
- Cities: the cells whose centres lie in the city polygon (GeoJSON, lon/lat), of the finest
  domain whose outline contains the whole polygon, else of the coarsest domain; a polygon with no
  cell centre inside takes the cell nearest to its representative point. The city's hourly
  concentration is the mean over its cells (an area mean standing in for CNEMC's mean over the
  city's stations).

The hourly series (local time, hour-beginning, see :mod:`.surface`) go through
:func:`aqforecast.products.aqi.daily_aqi`, so the 24-h/8-h validity rules and the HJ 633 rules are
the ones of :mod:`.averaging` and :mod:`.aqi`. ``lead_day`` counts local natural days from the day
of the first forecast hour (= 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import aqi as _aqi
from .surface import SurfaceFields

log = logging.getLogger(__name__)

#: Output columns of the daily tables after the entity key (daily_aqi column -> table column).
TABLE_COLUMNS = {"PM2.5_24h": "PM2.5", "PM10_24h": "PM10", "O3_8h": "O3_8h_max",
                 "O3_1h": "O3_1h_max", "NO2_24h": "NO2", "SO2_24h": "SO2", "CO_24h": "CO",
                 "iaqi_PM2.5_24h": "IAQI_PM2.5", "iaqi_PM10_24h": "IAQI_PM10",
                 "iaqi_O3_8h": "IAQI_O3_8h", "iaqi_O3_1h": "IAQI_O3_1h",
                 "iaqi_NO2_24h": "IAQI_NO2", "iaqi_SO2_24h": "IAQI_SO2",
                 "iaqi_CO_24h": "IAQI_CO", "aqi": "AQI", "category": "category",
                 "primary": "primary_pollutant", "complete": "complete",
                 "standard": "standard"}
#: Extra columns of the US EPA daily index (:mod:`.epa`): its indicators and their IAQIs (the
#: IAQI columns keep the HJ names: IAQI_CO is the CO index whatever its averaging time).
EPA_TABLE_COLUMNS = {"CO_8h": "CO_8h_max", "SO2_1h": "SO2_1h_max", "NO2_1h": "NO2_1h_max",
                     "iaqi_CO_8h": "IAQI_CO", "iaqi_SO2_1h": "IAQI_SO2",
                     "iaqi_NO2_1h": "IAQI_NO2"}
UNITS_NOTE = ("concentrations ug m-3 (CO mg m-3); gases at 298.15 K, 1013.25 hPa; PM at ambient "
              "conditions; dates are local natural days")


def station_table(stations) -> pd.DataFrame:
    """Normalise a station list to columns station, name, city, lon, lat.

    Accepts the frame of :func:`aqforecast.observations.read_station_coords` (``code`` is the
    station id), any frame with station/lon/lat columns, or a path to a coordinates CSV.
    """
    if isinstance(stations, (str, Path)):
        from ..observations import read_station_coords

        stations = read_station_coords(stations)
    df = pd.DataFrame(stations).copy()
    if "station" not in df:
        if "code" not in df:
            raise ValueError(f"station list needs a 'station' or 'code' column; has {list(df)}")
        df["station"] = df["code"]
    for c in ("lon", "lat"):
        if c not in df:
            raise ValueError(f"station list needs a {c!r} column; has {list(df)}")
    for c in ("name", "city"):
        if c not in df:
            df[c] = ""
    df["station"] = df["station"].astype(str)
    df = df[np.isfinite(df["lon"].astype(float)) & np.isfinite(df["lat"].astype(float))]
    return df[["station", "name", "city", "lon", "lat"]].drop_duplicates("station")\
        .reset_index(drop=True)


@dataclass
class Locations:
    """Where each entity (station or city) is read: domain and flat cell indices."""

    key: str                        #: "station" or "city"
    names: list[str]
    domain: list[str]
    cells: list[np.ndarray]         #: flat indices into (ny*nx) of the domain
    extra: pd.DataFrame             #: per-entity columns kept in the table (name, lon, lat, ...)


def _finest_first(surfaces: Mapping[str, SurfaceFields]) -> list[str]:
    return sorted(surfaces, key=lambda d: surfaces[d].dx_m)


def locate_stations(stations: pd.DataFrame, surfaces: Mapping[str, SurfaceFields]) -> Locations:
    """Nearest cell of the finest domain containing each station; stations outside every domain
    are dropped (logged)."""
    from ..verification import StationSampler

    st = station_table(stations)
    dom = np.full(len(st), "", dtype=object)
    flat = np.full(len(st), -1)
    dist = np.full(len(st), np.nan)
    for d in _finest_first(surfaces):
        sf = surfaces[d]
        samp = StationSampler.build(sf.lon, sf.lat, st["lon"].to_numpy(float),
                                    st["lat"].to_numpy(float), method="nearest")
        take = samp.inside & (dom == "")
        dom[take] = d
        flat[take] = np.ravel_multi_index((samp.j[take], samp.i[take]), sf.lon.shape)
        dist[take] = samp.dist_km[take]
    out = dom == ""
    if out.any():
        log.info("%d station(s) outside every domain, not tabulated: %s", int(out.sum()),
                 ", ".join(st.loc[out, "station"].astype(str)[:10]))
    keep = ~out
    extra = st[keep].reset_index(drop=True).assign(distance_km=dist[keep])
    return Locations("station", list(st.loc[keep, "station"]), list(dom[keep]),
                     [np.array([f]) for f in flat[keep]], extra.drop(columns="station"))


def _outline(sf: SurfaceFields):
    from shapely.geometry import Polygon

    lon, lat = sf.lon, sf.lat
    ring = np.concatenate([
        np.stack([lon[0, :], lat[0, :]], -1), np.stack([lon[1:, -1], lat[1:, -1]], -1),
        np.stack([lon[-1, -2::-1], lat[-1, -2::-1]], -1),
        np.stack([lon[-2:0:-1, 0], lat[-2:0:-1, 0]], -1)])
    return Polygon(ring)


def locate_cities(regions: Sequence[tuple[str, object]],
                  surfaces: Mapping[str, SurfaceFields]) -> Locations:
    """Cells of each city polygon (see the module docstring).

    ``regions``: (name, GeoJSON path or shapely lon/lat geometry) pairs, e.g. the config's
    ``regions``. Cities covering no domain are dropped (logged).
    """
    import shapely

    from ..emissions.regions import read_geojson

    order = _finest_first(surfaces)
    outlines = {d: _outline(surfaces[d]) for d in order}
    names, doms, cells, rows = [], [], [], []
    for name, g in regions:
        geom = read_geojson(g) if isinstance(g, (str, Path)) else g
        pick = next((d for d in order if outlines[d].contains(geom)), None)
        if pick is None:
            pick = next((d for d in reversed(order) if outlines[d].intersects(geom)), None)
        if pick is None:
            log.warning("city %s lies outside every domain; not tabulated", name)
            continue
        sf = surfaces[pick]
        inside = shapely.contains_xy(geom, sf.lon.ravel(), sf.lat.ravel())
        idx = np.flatnonzero(inside)
        if idx.size == 0:
            p = geom.representative_point()
            d2 = (sf.lon.ravel() - p.x) ** 2 * np.cos(np.deg2rad(p.y)) ** 2 + \
                (sf.lat.ravel() - p.y) ** 2
            idx = np.array([int(np.argmin(d2))])
        names.append(str(name))
        doms.append(pick)
        cells.append(idx)
        c = geom.centroid
        rows.append({"n_cells": idx.size, "lon": c.x, "lat": c.y,
                     "whole_city_in_domain": bool(outlines[pick].contains(geom))})
    return Locations("city", names, doms, cells, pd.DataFrame(rows))


def hourly_at(loc: Locations, surfaces: Mapping[str, SurfaceFields], local) -> pd.DataFrame:
    """Long hourly table (local hour-beginning index) with the entity key and pollutant columns
    (cell means over each entity's cells). ``local``: a
    :class:`~aqforecast.config.localtime.LocalTime` or hours east of UTC; a wall-clock hour met
    twice (autumn daylight-saving change) holds the mean of its values."""
    parts = []
    for name, d, idx in zip(loc.names, loc.domain, loc.cells):
        sf = surfaces[d]
        cols = {p: x.reshape(x.shape[0], -1)[:, idx].mean(axis=1) for p, x in sf.conc.items()}
        df = pd.DataFrame(cols, index=sf.local_hours(local))
        if df.index.has_duplicates:
            df = df.groupby(level=0).mean()
        df.index.name = "time"
        df[loc.key] = name
        parts.append(df)
    if not parts:
        return pd.DataFrame(columns=[loc.key])
    return pd.concat(parts)


def daily_table(loc: Locations, surfaces: Mapping[str, SurfaceFields], local,
                standard: str | None = None, hourly: pd.DataFrame | None = None) -> pd.DataFrame:
    """Daily AQI table: date, lead_day, key, domain, extra columns, concentrations, IAQIs, AQI,
    category, category_name, primary_pollutant, n_hours, complete, standard (the standard's
    name, e.g. ``HJ633-2026``; the EPA index adds CO_8h_max, SO2_1h_max, NO2_1h_max).
    ``local``: :class:`~aqforecast.config.localtime.LocalTime` or hours east of UTC."""
    key = loc.key
    if hourly is None:
        hourly = hourly_at(loc, surfaces, local)
    if hourly.empty:
        return pd.DataFrame(columns=["date", "lead_day", key, "domain"] +
                            list(TABLE_COLUMNS.values()))
    res = _aqi.daily_aqi(hourly.rename(columns={key: "station"}), standard)
    res = res.reset_index()
    res = res.rename(columns={"station": key})
    n_hours = hourly.groupby([key, hourly.index.floor("D")])[
        [c for c in hourly.columns if c != key][0]].count()
    first_day = min(surfaces[d].local_hours(local).min().floor("D")
                    for d in set(loc.domain))
    out = pd.DataFrame({"date": pd.to_datetime(res["date"]).dt.strftime("%Y-%m-%d"),
                        "lead_day": ((pd.to_datetime(res["date"]) - first_day).dt.days + 1),
                        key: res[key]})
    info = pd.DataFrame({key: loc.names, "domain": loc.domain}).join(loc.extra)
    out = out.merge(info, on=key, how="left")
    columns = dict(TABLE_COLUMNS)
    if standard is not None and _aqi.RULES[standard].family == "EPA":
        columns = {k: v for k, v in columns.items() if v not in EPA_TABLE_COLUMNS.values()}
        columns.update(EPA_TABLE_COLUMNS)
    for src, dst in columns.items():
        out[dst] = res[src].to_numpy() if src in res else np.nan
    out["category_name"] = [(_aqi.category_name(c, s) if np.isfinite(c) else "")
                            for c, s in zip(out["category"], out["standard"])]
    nh = n_hours.reindex(list(zip(res[key], pd.to_datetime(res["date"])))).to_numpy()
    out["n_hours"] = np.nan_to_num(nh).astype(int)
    lead = ["date", "lead_day", key, "domain"]
    rest = [c for c in out.columns if c not in lead]
    return out[lead + rest].sort_values([key, "date"]).reset_index(drop=True)
