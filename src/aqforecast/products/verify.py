"""Verification of a finished forecast run against station observations (the cycle's
``verification`` stage: yesterday's forecast against today's observations).

The forecast is read at each observing station (nearest cell of the finest domain containing it,
the cell the products' station tables use) as hourly surface values in reporting units
(:mod:`.surface`: ug m-3, CO mg m-3); the observations come from an ``obs.nc`` of the observation
stage or a generic station CSV (:func:`aqforecast.observations.table.read_observation_table`,
QC-flagged values dropped). Both are put on local hour-beginning time with the run's UTC offset,
paired on station and hour, and scored with :func:`aqforecast.products.pipeline.verify`: one row
per pollutant x station x lead day (NMB, NME, RMSE, r, ..., exceedance scores at the grade-II
limit, AQI-category accuracy, Emery et al. 2017 flags for PM2.5 and O3), plus a summary per
pollutant x lead day over all stations (and per city where the station list names cities).

Outputs in ``out_dir``: ``skill.csv`` (per station), ``summary.csv`` (per pollutant x lead day,
all stations; per city), ``paired.csv`` (the hourly pairs, for plots), ``_SUCCESS``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.localtime import LocalTime
from ..io import InputFileError
from ..io.rundir import require_success, write_success
from . import aqi as _aqi
from . import surface as _surf
from . import tables as _tables
from .pipeline import _write_csv, verify

__all__ = ["verify_run", "read_obs", "station_forecast", "write_scores"]

log = logging.getLogger(__name__)


def _paired(station_hourly: pd.DataFrame, obs: pd.DataFrame, init_local) -> pd.DataFrame:
    """Hourly pairs (station, time, lead_hours, lead_day, pollutant, fcst, obs) for plots."""
    fc = station_hourly.reset_index()
    rows = []
    for p in _surf.POLLUTANT_VARS:
        if p not in fc or p not in obs:
            continue
        m = fc[["station", "time", p]].merge(obs[["station", "time", p]],
                                               on=["station", "time"], suffixes=("_f", "_o"))
        m = m[np.isfinite(m[f"{p}_o"])]
        if m.empty:
            continue
        lead = (m["time"] - init_local) / pd.Timedelta(hours=1)
        rows.append(pd.DataFrame({"station": m["station"], "time": m["time"],
                                  "lead_hours": lead, "lead_day": np.floor(lead / 24) + 1,
                                  "pollutant": p, "fcst": m[f"{p}_f"], "obs": m[f"{p}_o"]}))
    if not rows:
        return pd.DataFrame(columns=["station", "time", "lead_hours", "lead_day", "pollutant",
                                     "fcst", "obs"])
    out = pd.concat(rows, ignore_index=True)
    out["lead_day"] = out["lead_day"].astype(int)
    return out


def _summary(paired: pd.DataFrame, cities: pd.Series, standard: str) -> pd.DataFrame:
    """Statistics per pollutant x lead day over all stations ("all") and per city."""
    from ..verification import skill_table

    out = []
    p2 = paired.assign(city=paired["station"].map(cities).fillna(""))
    groups = [("all", p2)] + [(c, g) for c, g in p2.groupby("city") if c]
    for p, gp in p2.groupby("pollutant"):
        period = "24h" if p.startswith("PM") else "1h"

        def cat(c, p=p, period=period):
            return _aqi.category(_aqi.iaqi(p, c, period, standard), standard)
        for name, g in groups:
            g = g[g["pollutant"] == p]
            if g.empty:
                continue
            t = skill_table(g, by=("lead_day",), category=cat).reset_index()
            t.insert(0, "city", name)
            t.insert(0, "pollutant", p)
            out.append(t)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def read_obs(cfg, obs_path, local) -> pd.DataFrame:
    """Station observations of ``obs_path`` (obs.nc or a generic CSV, QC-flagged values dropped)
    as a long table: station, time (naive local hour-beginning), lon, lat, one column per
    pollutant in reporting units."""
    from ..observations.table import read_observation_table

    obs_path = Path(obs_path)
    if not obs_path.is_file():
        raise InputFileError(f"{obs_path}: observation file does not exist")
    obs = read_observation_table(obs_path)
    obs = obs.rename(columns={v: k for k, v in _surf.POLLUTANT_VARS.items() if v in obs})
    obs["station"] = obs["station"].astype(str)
    obs["time"] = local.to_local(pd.to_datetime(obs["time"]))
    return obs


def station_cities(cfg) -> pd.Series:
    """City of each station of ``inputs.observations.station_coords`` (empty if none)."""
    coords = cfg.inputs.observations.station_coords
    if coords is None:
        return pd.Series(dtype=str)
    from ..config import resolve_path

    known = _tables.station_table(resolve_path(cfg, coords))
    return known.set_index("station")["city"]


def station_forecast(cfg, run_dir, stations: pd.DataFrame, local, domains=None):
    """Hourly surface forecast of the finished run in ``run_dir`` at ``stations`` (columns
    station, lon, lat): (long table with local hour-beginning index ``time``, station and one
    column per pollutant in reporting units -- ug m-3, CO mg m-3; the run's start as naive
    local time)."""
    run_dir = Path(run_dir)
    require_success(run_dir, "forecast")
    names = domains or [d.name for d in cfg.domains if (run_dir / f"conc_{d.name}.nc").is_file()]
    if not names:
        raise InputFileError(f"{run_dir}: no conc_<domain>.nc of the configured domains")
    surfaces = {d: _surf.read_surface(run_dir / f"conc_{d}.nc", d) for d in names}
    loc = _tables.locate_stations(stations, surfaces)
    hourly = _tables.hourly_at(loc, surfaces, local)
    init_local = local.to_local(next(iter(surfaces.values())).start)[0]
    return hourly, init_local


def write_scores(hourly: pd.DataFrame, obs: pd.DataFrame, init_local, cities: pd.Series,
                 out_dir, info: dict, what: str = "") -> list[Path]:
    """Score the station forecast ``hourly`` (as :func:`station_forecast` returns it) against
    ``obs`` (as :func:`read_obs`) and write ``skill.csv``, ``summary.csv``, ``paired.csv`` and
    ``_SUCCESS`` in ``out_dir`` (module docstring)."""
    out_dir = Path(out_dir)
    standard = _aqi.standard_for_date(init_local)
    skill = verify(hourly, obs, init_local, standard) if len(hourly) else pd.DataFrame()
    paired = _paired(hourly, obs, init_local) if len(hourly) else _paired(
        pd.DataFrame(columns=["station"]).set_index(pd.DatetimeIndex([], name="time")), obs,
        init_local)
    summary = _summary(paired, cities, standard) if len(paired) else pd.DataFrame()
    if skill.empty:
        log.warning("verification: the observations overlap the forecast %s at no station "
                    "and hour: empty tables", what)
        skill = pd.DataFrame(columns=["pollutant", "station", "lead_day", "threshold", "n"])
        summary = pd.DataFrame(columns=["pollutant", "city", "lead_day", "n"])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [_write_csv(skill, out_dir / "skill.csv"), _write_csv(summary, out_dir / "summary.csv"),
             _write_csv(paired, out_dir / "paired.csv")]
    log.info("verification of %s: %d stations, %d hourly pairs, standard %s", what,
             hourly["station"].nunique() if len(hourly) else 0, len(paired), standard)
    paths.append(write_success(out_dir, paths, info))
    return paths


def verify_run(cfg, run_dir, obs_path, out_dir, local=None, domains=None) -> list[Path]:
    """Score the forecast in ``run_dir`` against the observations in ``obs_path``; write
    ``skill.csv``, ``summary.csv``, ``paired.csv`` and ``_SUCCESS`` in ``out_dir`` (module
    docstring). ``local``: the local clock (a :class:`~aqforecast.config.localtime.LocalTime`,
    hours east of UTC or a zone name; default the config's ``time`` settings). No overlap in
    time or space is not an error: the tables are written empty with their header and the
    reason is logged (a cycle whose previous forecast ended early)."""
    run_dir, out_dir, obs_path = Path(run_dir), Path(out_dir), Path(obs_path)
    require_success(run_dir, "forecast")
    if not obs_path.is_file():
        raise InputFileError(f"{obs_path}: observation file does not exist")
    local = cfg.time.local_time if local is None else LocalTime.coerce(local)
    obs = read_obs(cfg, obs_path, local)
    stations = obs.groupby("station", as_index=False)[["lon", "lat"]].first()
    hourly, init_local = station_forecast(cfg, run_dir, stations, local, domains)
    return write_scores(hourly, obs, init_local, station_cities(cfg), out_dir,
                        {"stage": "verify", "run": str(run_dir), "obs": str(obs_path)},
                        what=f"{run_dir} against {obs_path}")
