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

Polluted days (:func:`daily_event_scores`, columns added to every ``summary.csv`` row of a
city x lead day, the same on each pollutant's row): the hit rate (POD), false-alarm ratio (FAR)
and critical success index (CSI) with their station-day counts for two daily events, forecast
and observed alike -- PM2.5 24-h mean above the grade-II limit (``pm25_day_*``; the IAQI-100
breakpoint of the standard in force, 75 ug m-3 in HJ 633-2012 / GB 3095-2012) and daily AQI
above 100 (``aqi_day_*``, HJ 633 category >= 3, "lightly polluted" or worse). Days are the
lead-day blocks of 24 h after the run's start (lead day 1 = hours 0-23), 24-h means need 20
valid hours (:mod:`.averaging`), and the forecast's daily values use only the hours that have
an observation (the pairs).

Bias-corrected forecasts (``aqforecast verify --corrected DIR``, :func:`read_corrected`): the
station series of an ``aqforecast bias-correct`` directory (its ``corrected.csv``, column
``fcst``) are scored in place of the raw run's, with the same tables; the DAG's
``verification_corrected`` rule scores each cycle's corrected forecast the next day.
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

__all__ = ["verify_run", "read_obs", "station_forecast", "write_scores", "read_corrected",
           "daily_event_scores", "EVENT_COLUMNS"]

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


#: event -> (daily column of :func:`aqforecast.products.aqi.daily_aqi`, what); thresholds in
#: :func:`daily_event_scores`
EVENTS = {"pm25_day": ("PM2.5_24h", "PM2.5 24-h mean above the grade-II limit"),
          "aqi_day": ("aqi", "daily AQI above 100 (category >= 3)")}
#: the columns :func:`daily_event_scores` adds per event prefix
EVENT_COLUMNS = ["limit", "days", "obs_events", "hits", "misses", "false_alarms", "pod", "far",
                 "csi"]


def _daily_blocks(paired: pd.DataFrame, which: str, init_local, standard: str) -> pd.DataFrame:
    """Daily indicators and AQI per station and lead-day block (24 h from ``init_local``) of
    the ``which`` column (fcst or obs) of hourly pairs: columns station, lead_day, PM2.5_24h,
    aqi (NaN where the validity rules are not met)."""
    init = pd.Timestamp(init_local)
    shift = init - init.normalize()   # lead-day blocks become calendar days for daily_aqi
    wide = paired.pivot_table(index=["station", "time"], columns="pollutant", values=which,
                              dropna=False).reset_index()
    wide.columns.name = None
    wide["time"] = pd.to_datetime(wide["time"]) - shift
    cols = [c for c in _surf.POLLUTANT_VARS if c in wide]
    if not cols:
        return pd.DataFrame(columns=["station", "lead_day", "PM2.5_24h", "aqi"])
    parts = []
    for st, g in wide.groupby("station", sort=True):
        d = _aqi.daily_aqi(g.set_index("time")[cols].sort_index(), standard).reset_index()
        d.insert(0, "station", st)
        parts.append(d)
    d = pd.concat(parts, ignore_index=True)
    d["lead_day"] = (pd.to_datetime(d["date"]) - init.normalize()).dt.days + 1
    for c in ("PM2.5_24h", "aqi"):
        if c not in d:
            d[c] = np.nan
    return d[["station", "lead_day", "PM2.5_24h", "aqi"]]


def daily_event_scores(paired: pd.DataFrame, init_local, standard: str,
                       by=("lead_day",)) -> pd.DataFrame:
    """Hit rate (POD), false-alarm ratio (FAR) and critical success index (CSI) of polluted
    days from hourly pairs (``paired.csv``: station, time -- naive local hour-beginning --,
    pollutant, fcst, obs in reporting units, ug m-3 and CO mg m-3; other columns of ``by``
    constant per station, e.g. city).

    Each station x lead-day block (24 h from ``init_local``, lead day 1 = hours 0-23) gets the
    HJ 633 daily indicators of the forecast and of the observation (:func:`aqforecast.products.
    aqi.daily_aqi` under ``standard``, on the paired hours only; a 24-h mean needs 20 valid
    hours); the events are ``pm25_day``: PM2.5 24-h mean > the IAQI-100 breakpoint of
    ``standard`` (the grade-II limit, 75 ug m-3 in HJ 633-2012), and ``aqi_day``: daily AQI >
    100 (category >= 3). Per group of ``by`` and event prefix, the columns of
    :data:`EVENT_COLUMNS`: ``limit`` (ug m-3 or AQI), ``days`` (station-days with both values),
    ``obs_events``, the contingency counts, ``pod = hits / (hits + misses)``, ``far =
    false_alarms / (hits + false_alarms)``, ``csi = hits / (hits + misses + false_alarms)``
    (NaN where undefined; Wilks 2011, Statistical Methods in the Atmospheric Sciences, ch. 8).
    """
    from ..verification.metrics import categorical_scores

    by = list(by)
    need = ["station", "time", "pollutant", "fcst", "obs"]
    missing = [c for c in need + [b for b in by if b != "lead_day"] if c not in paired]
    if missing:
        raise ValueError(f"daily_event_scores: paired table lacks column(s) {missing}")
    limits = {"pm25_day": float(_aqi.concentration_breaks("PM2.5", "24h", standard)[1]),
              "aqi_day": 100.0}
    cols = [f"{e}_{c}" for e in EVENTS for c in EVENT_COLUMNS]
    if paired.empty:
        return pd.DataFrame(columns=by + cols)
    f = _daily_blocks(paired, "fcst", init_local, standard)
    o = _daily_blocks(paired, "obs", init_local, standard)
    d = f.merge(o, on=["station", "lead_day"], suffixes=("_f", "_o"))
    extra = [b for b in by if b != "lead_day"]
    if extra:
        d = d.merge(paired[["station", *extra]].drop_duplicates("station"), on="station")
    rows = []
    for key, g in d.groupby(by, sort=True):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        for e, (col, _) in EVENTS.items():
            m, ob = g[f"{col}_f"].to_numpy(float), g[f"{col}_o"].to_numpy(float)
            sc = categorical_scores(m, ob, limits[e])
            ok = np.isfinite(m) & np.isfinite(ob)
            row.update({f"{e}_limit": limits[e], f"{e}_days": int(ok.sum()),
                        f"{e}_obs_events": int((ob[ok] > limits[e]).sum()),
                        **{f"{e}_{k}": sc[k] for k in ("hits", "misses", "false_alarms", "pod",
                                                      "far", "csi")}})
        rows.append(row)
    return pd.DataFrame(rows, columns=by + cols)


def _summary(paired: pd.DataFrame, cities: pd.Series, standard: str,
             init_local=None) -> pd.DataFrame:
    """Statistics per pollutant x lead day over all stations ("all") and per city, with the
    polluted-day scores of :func:`daily_event_scores` (when ``init_local`` is given)."""
    from ..verification import skill_table

    out = []
    p2 = paired.assign(city=paired["station"].map(cities).fillna(""))
    groups = [("all", p2)] + [(c, g) for c, g in p2.groupby("city") if c]
    events = {}
    if init_local is not None:
        for name, g in groups:
            ev = daily_event_scores(g, init_local, standard)
            events[name] = ev.set_index("lead_day")
    for p, gp in p2.groupby("pollutant"):
        period = "24h" if p.startswith("PM") else "1h"

        def cat(c, p=p, period=period):
            return _aqi.category(_aqi.iaqi(p, c, period, standard), standard)
        for name, g in groups:
            g = g[g["pollutant"] == p]
            if g.empty:
                continue
            t = skill_table(g, by=("lead_day",), category=cat).reset_index()
            if name in events:
                t = t.join(events[name], on="lead_day")
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
    summary = _summary(paired, cities, standard, init_local) if len(paired) else \
        pd.DataFrame()
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


def read_corrected(bias_dir, run_dir=None):
    """The bias-corrected station forecast of an ``aqforecast bias-correct`` directory
    ``bias_dir`` (its ``corrected.csv``: station, time, lead_hours, pollutant, fcst_raw, bias,
    fcst, source; naive local hour-beginning times, reporting units -- ug m-3, CO mg m-3) as
    :func:`station_forecast` returns a raw one: (hourly table with index ``time``, column
    station and one column per pollutant; the run's start as naive local time = ``time -
    lead_hours``). ``run_dir``: when given, the directory must be the correction of that run
    (its completion manifest's ``run``), else an input error naming both."""
    bias_dir = Path(bias_dir)
    man = require_success(bias_dir, "bias correction")
    if man.get("stage") not in (None, "bias-correct"):
        raise InputFileError(f"{bias_dir}: not an `aqforecast bias-correct` directory "
                             f"(its _SUCCESS says stage {man.get('stage')!r})")
    if run_dir is not None and man.get("run") is not None and \
            Path(man["run"]).resolve() != Path(run_dir).resolve():
        raise InputFileError(f"{bias_dir}: corrects {man['run']}, not --run {run_dir}")
    f = bias_dir / "corrected.csv"
    if not f.is_file():
        raise InputFileError(f"{f}: does not exist (not an `aqforecast bias-correct` directory)")
    long = pd.read_csv(f, dtype={"station": str})
    need = ["station", "time", "lead_hours", "pollutant", "fcst"]
    missing = [c for c in need if c not in long]
    if missing:
        raise InputFileError(f"{f}: lacks column(s) {', '.join(missing)}")
    if long.empty:
        raise InputFileError(f"{f}: no rows (the run had no station inside the domains)")
    try:
        long["time"] = pd.to_datetime(long["time"])
        lead = pd.to_timedelta(long["lead_hours"].astype(float), unit="h")
    except (ValueError, TypeError) as e:
        raise InputFileError(f"{f}: columns time / lead_hours: {e}") from None
    inits = (long["time"] - lead).unique()
    if len(inits) != 1:
        raise InputFileError(f"{f}: time - lead_hours gives {len(inits)} different run starts")
    wide = long.pivot_table(index=["time", "station"], columns="pollutant", values="fcst",
                            dropna=False).reset_index()
    wide.columns.name = None
    pols = [p for p in _surf.POLLUTANT_VARS if p in wide]
    return wide.set_index("time")[["station", *pols]], pd.Timestamp(inits[0])


def verify_run(cfg, run_dir, obs_path, out_dir, local=None, domains=None,
               corrected=None) -> list[Path]:
    """Score the forecast in ``run_dir`` against the observations in ``obs_path``; write
    ``skill.csv``, ``summary.csv``, ``paired.csv`` and ``_SUCCESS`` in ``out_dir`` (module
    docstring). ``local``: the local clock (a :class:`~aqforecast.config.localtime.LocalTime`,
    hours east of UTC or a zone name; default the config's ``time`` settings). ``corrected``:
    an ``aqforecast bias-correct`` directory of ``run_dir``: score its corrected station series
    (:func:`read_corrected`) instead of the raw forecast. No overlap in time or space is not an
    error: the tables are written empty with their header and the reason is logged (a cycle
    whose previous forecast ended early)."""
    run_dir, out_dir, obs_path = Path(run_dir), Path(out_dir), Path(obs_path)
    require_success(run_dir, "forecast")
    if not obs_path.is_file():
        raise InputFileError(f"{obs_path}: observation file does not exist")
    local = cfg.time.local_time if local is None else LocalTime.coerce(local)
    obs = read_obs(cfg, obs_path, local)
    info = {"stage": "verify", "run": str(run_dir), "obs": str(obs_path)}
    if corrected is not None:
        hourly, init_local = read_corrected(corrected, run_dir)
        info["bias_correction"] = str(corrected)
        what = f"{run_dir} (bias-corrected: {corrected}) against {obs_path}"
    else:
        stations = obs.groupby("station", as_index=False)[["lon", "lat"]].first()
        hourly, init_local = station_forecast(cfg, run_dir, stations, local, domains)
        what = f"{run_dir} against {obs_path}"
    return write_scores(hourly, obs, init_local, station_cities(cfg), out_dir, info, what=what)
