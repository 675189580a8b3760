"""City daily statistics of a forecast run: the values scenarios are scored and planned on.

A city's value is the area mean over its cells (fraction-weighted, :func:`aqforecast.emissions.
regions.region_fractions`) in the finest domain that contains the whole city (>= 99 % of its
polygon area); the hourly city series then gives the daily statistics of HJ 633 with the
products' validity rules (:func:`aqforecast.products.surface.daily_indicators`): PM2.5, PM10,
NO2, SO2, CO daily means (``daily_mean``), O3 MDA8 (``mda8``), the daily AQI and category.
Days are local calendar days (the config's ``time.local_utc_offset_h`` / ``time.timezone``, UTC+8
by default, as the products), numbered as the ``lead_day`` of the products' AQI tables (the first,
partial day is 1); a day without enough valid hours is reported with ``complete = False`` and no
value. The daily AQI uses the config's ``products.aqi_standard``.

Stations (``inputs.observations.station_coords``) inside the domains are scored too, at the
nearest cell of the finest domain holding them (the products' station tables): rows with
``kind = station``, the station code in ``station`` and the station list's city in ``city``
(city rows have ``kind = city`` and no station).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RunConfig, resolve_path
from ..emissions.regions import region_fractions
from ..grid import grids_from_config
from ..io import InputFileError
from ..products.aqi import RULES, normalize_standard
from ..products.surface import daily_indicators, gridded_daily_aqi, read_surface

__all__ = ["city_domains", "station_cells", "city_daily", "STATISTICS", "COLUMNS"]

log = logging.getLogger(__name__)

#: daily indicator column -> (pollutant, statistic) in the scores
STATISTICS = {"PM2.5_24h": ("PM2.5", "daily_mean"), "PM10_24h": ("PM10", "daily_mean"),
              "NO2_24h": ("NO2", "daily_mean"), "SO2_24h": ("SO2", "daily_mean"),
              "CO_24h": ("CO", "daily_mean"), "O3_8h": ("O3", "mda8"),
              "O3_1h": ("O3", "daily_max")}
COVERAGE_MIN = 0.99


def city_domains(cfg: RunConfig) -> dict[str, tuple[str, np.ndarray, float]]:
    """City -> (domain, cell weights (ny, nx) summing to 1, coverage): the finest domain holding
    the whole city (coverage >= 99 % of its polygon area); where no domain holds it whole, the
    domain covering most of it (coverage < 1, logged and reported in the scores); cities outside
    every domain are left out."""
    grids = grids_from_config(cfg)
    regions = [(r.name, resolve_path(cfg, r.geojson)) for r in cfg.regions]
    order = sorted(grids, key=lambda n: grids[n].dx)  # finest first
    out = {}
    masks = {n: region_fractions(grids[n], regions) for n in order}
    for r, (name, _) in enumerate(regions):
        best = None
        for dom in order:
            m = masks[dom]
            area = float(m.polygons[r].area) if m.polygons else 0.0
            covered = float(m.fractions[r].sum()) * grids[dom].dx * grids[dom].dx
            cov = covered / area if area > 0 else 0.0
            if cov > 0 and (best is None or cov > best[2] + 1e-9):
                best = (dom, m.fractions[r] / m.fractions[r].sum(), min(cov, 1.0))
            if cov >= COVERAGE_MIN:
                best = (dom, m.fractions[r] / m.fractions[r].sum(), min(cov, 1.0))
                break
        if best is None:
            log.warning("city %s lies outside every domain; left out of the scores", name)
            continue
        if best[2] < COVERAGE_MIN:
            log.warning("city %s: no domain holds it whole; %s covers %.0f %% of it", name,
                        best[0], 100 * best[2])
        out[name] = best
    return out


def station_cells(cfg: RunConfig) -> dict[str, tuple[str, int, str]]:
    """Station -> (domain, flat cell index, the station list's city) for every station of
    ``inputs.observations.station_coords`` inside a domain: the nearest cell of the finest domain
    containing it (the products' station tables, :func:`aqforecast.products.tables.
    locate_stations`, with the same sampler); {} without a station list."""
    from ..observations.readers import read_station_coords
    from ..observations.sampling import StationSampler
    from ..products.tables import station_table

    obs = cfg.inputs.observations
    if not obs.station_coords:
        return {}
    st = station_table(read_station_coords(resolve_path(cfg, obs.station_coords),
                                           obs.encoding))
    grids = grids_from_config(cfg)
    out: dict[str, tuple[str, int, str]] = {}
    for dom in sorted(grids, key=lambda n: grids[n].dx):  # finest first
        lon, lat = grids[dom].lonlat
        samp = StationSampler.build(lon, lat, st["lon"].to_numpy(float),
                                    st["lat"].to_numpy(float), method="nearest")
        for k in np.flatnonzero(samp.inside):
            name = str(st["station"].iloc[k])
            if name not in out:
                out[name] = (dom, int(np.ravel_multi_index((samp.j[k], samp.i[k]), lon.shape)),
                             str(st["city"].iloc[k]))
    log.info("%d of %d station(s) inside the domains", len(out), len(st))
    return out


COLUMNS = ["kind", "city", "station", "domain", "coverage", "lead_day", "date", "pollutant",
           "statistic", "value", "complete"]


def city_daily(cfg: RunConfig, run_dir: str | Path, cities=None, stations=None
               ) -> pd.DataFrame:
    """Long table ``kind, city, station, domain, coverage, lead_day, date, pollutant,
    statistic, value, complete`` of a run directory's ``conc_<domain>.nc``: one row per city
    (``kind = city``, ``station`` empty; :func:`city_domains`) and, where ``stations`` is given
    (:func:`station_cells`), per station (``kind = station``, ``city`` = the station list's city,
    ``coverage`` 1) x lead day x statistic (AQI: ``pollutant = AQI``, statistics ``index`` and
    ``category``)."""
    run_dir = Path(run_dir)
    cities = cities if cities is not None else city_domains(cfg)
    stations = stations or {}
    off = cfg.time.local_time
    standard = normalize_standard(cfg.products.aqi_standard)
    epa = standard is not None and RULES[standard].family == "EPA"
    parts = []
    for dom in dict.fromkeys([d for d, _, _ in cities.values()]
                             + [d for d, _, _ in stations.values()]):
        path = run_dir / f"conc_{dom}.nc"
        if not path.exists():
            raise InputFileError(f"{path}: missing (a city or station lies in domain {dom})")
        sf = read_surface(path, dom)
        ents = [("city", c, "", cov) for c, (d, _, cov) in cities.items() if d == dom] + \
               [("station", city, s, 1.0) for s, (d, _, city) in stations.items() if d == dom]
        w = [cities[c][1].ravel() for c, (d, _, _) in cities.items() if d == dom]
        idx = [i for d, i, _ in stations.values() if d == dom]
        series = {}
        for p, x in sf.conc.items():
            flat = x.reshape(x.shape[0], -1)
            cols = [flat @ np.stack(w, axis=1)] if w else []
            cols += [flat[:, idx]] if idx else []
            series[p] = np.concatenate(cols, axis=1)             # (time, entity)
        local = sf.local_hours(off)
        days, daily = daily_indicators(local, series, epa=epa)
        aqi = gridded_daily_aqi(days, daily, standard)
        lead_days = ((days - local.min().floor("D")).days + 1).to_numpy()
        values = {STATISTICS[c]: daily[c] for c in STATISTICS if c in daily}
        values[("AQI", "index")] = aqi["aqi"]
        values[("AQI", "category")] = np.where(np.isfinite(aqi["aqi"]),
                                               np.asarray(aqi["category"], float), np.nan)
        for (pol, stat), v in values.items():
            v = np.asarray(v, float)                               # (day, entity)
            for k, d in enumerate(days):
                for e, (kind, city, st, cov) in enumerate(ents):
                    parts.append((kind, city, st, dom, cov, int(lead_days[k]), d.date(), pol,
                                  stat, float(v[k, e]), bool(np.isfinite(v[k, e]))))
    df = pd.DataFrame(parts, columns=COLUMNS)
    order = {"city": 0, "station": 1}
    return df.sort_values(["kind", "city", "station", "lead_day"], key=lambda s: s.map(order)
                          if s.name == "kind" else s, kind="stable").reset_index(drop=True)
