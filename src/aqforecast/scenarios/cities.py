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

__all__ = ["city_domains", "city_daily", "STATISTICS"]

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


def city_daily(cfg: RunConfig, run_dir: str | Path, cities=None) -> pd.DataFrame:
    """Long table ``city, domain, coverage, lead_day, date, pollutant, statistic, value,
    complete`` of a
    run directory's ``conc_<domain>.nc`` (AQI: ``pollutant = AQI``, statistics ``index`` and
    ``category``)."""
    run_dir = Path(run_dir)
    cities = cities if cities is not None else city_domains(cfg)
    off = cfg.time.local_time
    standard = normalize_standard(cfg.products.aqi_standard)
    epa = standard is not None and RULES[standard].family == "EPA"
    surfaces = {}
    rows = []
    for city, (dom, w, cov) in cities.items():
        if dom not in surfaces:
            path = run_dir / f"conc_{dom}.nc"
            if not path.exists():
                raise InputFileError(f"{path}: missing (city {city} lies in domain {dom})")
            surfaces[dom] = read_surface(path, dom)
        sf = surfaces[dom]
        series = {p: np.tensordot(x, w, axes=([1, 2], [0, 1])) for p, x in sf.conc.items()}
        local = sf.local_hours(off)
        days, daily = daily_indicators(local, series, epa=epa)
        aqi = gridded_daily_aqi(days, daily, standard)
        first = local.min().floor("D")
        lead_days = ((days - first).days + 1).to_numpy()
        for col, (pol, stat) in STATISTICS.items():
            if col not in daily:
                continue
            for k, d in enumerate(days):
                v = float(daily[col][k])
                rows.append((city, dom, cov, int(lead_days[k]), d.date(), pol, stat,
                             v, bool(np.isfinite(v))))
        for k, d in enumerate(days):
            v = float(aqi["aqi"][k])
            ok = bool(np.isfinite(v))
            rows.append((city, dom, cov, int(lead_days[k]), d.date(), "AQI", "index", v, ok))
            rows.append((city, dom, cov, int(lead_days[k]), d.date(), "AQI", "category",
                         float(aqi["category"][k]) if ok else np.nan, ok))
    return pd.DataFrame(rows, columns=["city", "domain", "coverage", "lead_day", "date",
                                       "pollutant", "statistic", "value", "complete"])
