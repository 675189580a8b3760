"""Turn a forecast run directory into the products: CF NetCDF, AQI tables, maps, verification.

:func:`make_products` is the one entry point (the ``aqforecast products`` stage calls it). From
``RUN/conc_<domain>.nc`` (the forecast contract, :mod:`aqforecast.io.output`) it writes to OUT:

- ``surface_hourly_<d>.nc``: hourly surface PM25, PM10, O3, NO2, SO2 (ug m-3), CO (mg m-3) on
  (time, y, x), real-time IAQI_<p>, AQI, AQI_category and primary_pollutant under the config's
  ``products.aqi_standard`` (HJ 633-2026 by default; ``hj633`` = the version in force at each
  local date; ``epa-2024`` the US EPA index, :mod:`.epa`), ``aqi_standard`` per time;
- ``leadwindow_<d>.nc``: the same concentrations aggregated over the config's lead windows
  (:mod:`.windows`; dims (lead_window, y, x), coordinates window_start, window_end, lead_hours,
  time with bounds), plus O3_max_1h, O3_max_8h (largest in-window 8-h mean, windows >= 8 h) and
  AQI_max (largest hourly AQI in the window) with its category;
- ``daily_<d>.nc``: gridded daily indicators (24-h means, MDA8, max 1-h O3) and daily AQI per
  local natural day;
- ``aqi_daily_city.csv`` and ``aqi_daily_station.csv`` (:mod:`.tables`);
- ``maps/<d>/{pm25,o3_mda8,aqi}_day<NN>_<date>.png`` per lead day (:mod:`.mapset`);
- ``verification/skill.csv`` when observations are given: one row per pollutant x station x lead
  day (:func:`aqforecast.verification.skill_table`);
- ``products_summary.json``: what was written, counts and timings, the AQI standard and the
  local time used, and the warnings (also in each file's ``aqi_standard_warning``).

Local days and hours follow the config's ``time.local_utc_offset_h`` / ``time.timezone``
(:class:`aqforecast.config.localtime.LocalTime`). Every file names the AQI standard it used
(global ``aqi_standard``, per-time ``aqi_standard`` coordinate, the tables' ``standard`` column);
applying an HJ 633 version outside its dates is a warning (:func:`.aqi.standard_warnings`).
Units and time conventions: :mod:`.surface`. Every file is written atomically.
"""

from __future__ import annotations

import json
import logging
import time as _time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..config.localtime import LocalTime
from ..io import InputFileError, atomic_path, write_dataset
from ..io.netcdf import global_attrs, species_attrs
from . import aqi as _aqi
from . import surface as _surf
from . import tables as _tables
from . import windows as _win

log = logging.getLogger(__name__)

__all__ = ["make_products", "DEFAULT_UTC_OFFSET_HOURS"]

#: Local time of the China AQI reporting day (Beijing time, UTC+8).
DEFAULT_UTC_OFFSET_HOURS = 8.0
_CATEGORY_MEANINGS = {
    "HJ": "no_data excellent good lightly_polluted moderately_polluted heavily_polluted "
          "severely_polluted",
    "EPA": "no_data good moderate unhealthy_for_sensitive_groups unhealthy very_unhealthy "
           "hazardous"}
_GAS_NOTE = "mass concentration at the reference state 298.15 K, 1013.25 hPa (GB 3095-2012 " \
            "amendment 2018), converted from the model mole fraction"
_PM_NOTE = "mass concentration at ambient conditions; PM2.5 = PPM25 + SO4 + NO3 + NH4 (+ SOA)"


# ----------------------------------------------------------------------------- attributes
def _conc_attrs(p: str) -> dict:
    var = _surf.POLLUTANT_VARS[p]
    a = species_attrs(var, _surf.REPORT_UNITS[p])
    if p == "CO":
        a["standard_name"] = "mass_concentration_of_carbon_monoxide_in_air"
    a["long_name"] = f"surface {p} mass concentration"
    a["comment"] = _PM_NOTE if p.startswith("PM") else _GAS_NOTE
    return a


def _family(standard: str | None) -> str:
    return "HJ" if standard is None else _aqi.RULES[standard].family


def _standard_name(stds) -> str:
    """Label of the standard(s) applied (one or, for ``hj633``, both HJ 633 versions)."""
    return ", ".join(_aqi.standard_label(s) for s in sorted(set(np.asarray(stds).tolist())))


def _flag_attrs(kind: str, family: str) -> dict:
    if kind == "category":
        what = "HJ 633 level I-VI" if family == "HJ" else "US EPA category 1-6"
        return {"long_name": f"AQI category ({what}; 0 = no data)",
                "flag_values": np.arange(7, dtype=np.int8),
                "flag_meanings": _CATEGORY_MEANINGS[family], "units": "1"}
    return {"long_name": "primary pollutant (largest IAQI when AQI > 50; ties: first listed)",
            "flag_values": np.arange(len(_surf.PRIMARY_CODES), dtype=np.int8),
            "flag_meanings": " ".join(_surf.PRIMARY_CODES), "units": "1"}


def _iaqi_name(key: str) -> str:
    p, _, period = key.partition("_")
    var = _surf.POLLUTANT_VARS.get(p, p)
    return f"IAQI_{var}" + (f"_{period}" if period else "")


def _add_aqi_vars(ds: xr.Dataset, dims: tuple, res: dict, what: str, family: str = "HJ",
                  label: str = "HJ 633"):
    for k, v in res.items():
        if k.startswith("iaqi_"):
            key = k.removeprefix("iaqi_")
            ds[_iaqi_name(key)] = (dims, v.astype(np.float32), {
                "long_name": f"{what} individual air quality index of {key} ({label})",
                "units": "1"})
    ds["AQI"] = (dims, res["aqi"].astype(np.float32),
                 {"long_name": f"{what} air quality index ({label})", "units": "1"})
    ds["AQI_category"] = (dims, np.nan_to_num(res["category"], nan=0).astype(np.int8),
                          _flag_attrs("category", family))
    ds["primary_pollutant"] = (dims, res["primary"].astype(np.int8), _flag_attrs("primary",
                                                                                  family))


def _base(sf: _surf.SurfaceFields, title: str, **extra) -> xr.Dataset:
    ds = sf.template.copy()
    ds = ds.assign_coords(forecast_reference_time=((), np.datetime64(sf.start, "ns"),
                                                   {"standard_name": "forecast_reference_time"}))
    ds.attrs = global_attrs(title, domain=sf.domain, start_type=sf.attrs.get("start_type"),
                            **extra)
    return ds


# ----------------------------------------------------------------------------- products
def hourly_dataset(sf: _surf.SurfaceFields, stds: np.ndarray, res: dict,
                   **global_attrs_extra) -> xr.Dataset:
    """The hourly surface product of one domain (see the module docstring); ``attrs``: extra
    global attributes."""
    label = _standard_name(stds)
    family = _family(stds[0]) if len(stds) else "HJ"
    conv = ("US EPA indicative hourly AQI (no NowCast; aqforecast.products.epa)"
            if family == "EPA" else "HJ 633 real-time (hourly) AQI")
    ds = _base(sf, f"aqforecast hourly surface air quality {sf.domain}",
               aqi_convention=conv, aqi_standard=label, **global_attrs_extra)
    ds = ds.assign_coords(
        time=("time", sf.valid_time.values.astype("datetime64[ns]"),
              {"standard_name": "time", "long_name": "valid time (end of the hour)",
               "axis": "T"}),
        forecast_period=("time", sf.leads.astype(np.int32),
                         {"standard_name": "forecast_period", "units": "hours"}),
        aqi_standard=("time", stds.astype(str), {"long_name": "AQI standard applied"}))
    dims = ("time", "y", "x")
    for p, x in sf.conc.items():
        ds[_surf.POLLUTANT_VARS[p]] = (dims, x.astype(np.float32), _conc_attrs(p))
    _add_aqi_vars(ds, dims, res, "real-time (hourly)", family, label)
    return ds


def leadwindow_dataset(sf: _surf.SurfaceFields, windows: Sequence[_win.Window],
                       hourly_aqi: np.ndarray, stds: np.ndarray | None = None,
                       **global_attrs_extra) -> xr.Dataset:
    """Lead-window aggregates of one domain (see the module docstring); ``stds``: the hourly
    AQI's standard per hour; ``attrs``: extra global attributes."""
    stds = np.array(["HJ633-2026"], dtype=object) if stds is None or not len(stds) else stds
    family = _family(stds[0])
    cf_method = {"mean": "mean", "max": "maximum", "instant": "point"}
    start = np.datetime64(sf.start, "ns")
    a = np.array([w.start_hours for w in windows], dtype=np.int32)
    b = np.array([w.end_hours for w in windows], dtype=np.int32)
    ws = start + a.astype("timedelta64[h]")
    we = start + b.astype("timedelta64[h]")
    ds = _base(sf, f"aqforecast lead-window surface air quality {sf.domain}",
               aqi_standard=_standard_name(stds), **global_attrs_extra)
    ds = ds.assign_coords(
        lead_window=("lead_window", np.arange(len(windows), dtype=np.int32),
                     {"long_name": "lead window index"}),
        window_start=("lead_window", ws, {"long_name": "start of the lead window (exclusive)"}),
        window_end=("lead_window", we, {"long_name": "end of the lead window (inclusive)"}),
        lead_hours=("lead_window", b, {"standard_name": "forecast_period", "units": "hours",
                                       "long_name": "lead time at the end of the window"}),
        lead_hours_start=("lead_window", a, {"units": "hours",
                                             "long_name": "lead time at the window start"}),
        aggregation=("lead_window", np.array([w.aggregation for w in windows], dtype=str),
                     {"long_name": "aggregation of the hourly values over the window"}),
        time=("lead_window", we, {"standard_name": "time", "axis": "T", "bounds": "time_bnds",
                                  "long_name": "valid time at the end of the window"}))
    ds["time_bnds"] = (("lead_window", "nv"), np.stack([ws, we], axis=1))
    aggs = {w.aggregation for w in windows}
    method = f"time: {cf_method[aggs.pop()]}" if len(aggs) == 1 else None
    dims = ("lead_window", "y", "x")
    for p, x in sf.conc.items():
        attrs = _conc_attrs(p)
        if method:
            attrs["cell_methods"] = method
        ds[_surf.POLLUTANT_VARS[p]] = (dims, _win.aggregate(x, sf.leads, windows)
                                       .astype(np.float32), attrs)
    maxw = [_win.Window(w.start_hours, w.end_hours, "max") for w in windows]
    if "O3" in sf.conc:
        o3 = sf.conc["O3"]
        ds["O3_max_1h"] = (dims, _win.aggregate(o3, sf.leads, maxw).astype(np.float32),
                           {**_conc_attrs("O3"), "long_name": "maximum 1-h surface O3 in the "
                            "window", "cell_methods": "time: maximum"})
        ds["O3_max_8h"] = (dims, _win.max_running_mean(o3, sf.leads, windows).astype(np.float32),
                           {**_conc_attrs("O3"), "long_name": "maximum 8-h running mean surface "
                            "O3 lying inside the window (NaN for windows under 8 h)",
                            "cell_methods": "time: mean (interval: 8 hours) time: maximum"})
    amax = _win.aggregate(hourly_aqi, sf.leads, maxw)
    ds["AQI_max"] = (dims, amax.astype(np.float32),
                     {"long_name": f"maximum hourly (real-time) AQI in the window "
                                   f"({_standard_name(stds)})", "units": "1",
                      "cell_methods": "time: maximum"})
    ds["AQI_max_category"] = (dims, np.nan_to_num(_aqi.category(amax), nan=0).astype(np.int8),
                              {**_flag_attrs("category", family),
                               "long_name": "AQI category of AQI_max (0 = no data)"})
    return ds


def daily_dataset(sf: _surf.SurfaceFields, days: pd.DatetimeIndex, daily: dict, res: dict,
                  local, **global_attrs_extra) -> xr.Dataset:
    """Gridded daily indicators and daily AQI per local natural day (``local``: the
    :class:`~aqforecast.config.localtime.LocalTime` of the days, or hours east of UTC)."""
    lt = LocalTime.coerce(local)
    t0 = lt.day_start_utc(days).values.astype("datetime64[ns]")
    t1 = lt.day_start_utc(days + pd.Timedelta(days=1)).values.astype("datetime64[ns]")
    first = sf.local_hours(lt).min().floor("D")
    stds = res["standard"]
    family = _family(stds[0]) if len(stds) else "HJ"
    label = _standard_name(stds) if len(stds) else ""
    extra = {"utc_offset_hours": float(lt.utc_offset_h)} if lt.is_fixed else {}
    ds = _base(sf, f"aqforecast daily air quality {sf.domain}",
               aqi_convention="US EPA daily AQI" if family == "EPA" else "HJ 633 daily AQI",
               aqi_standard=label, local_time=lt.label, **extra, **global_attrs_extra)
    ds = ds.assign_coords(
        day=("day", np.arange(len(days), dtype=np.int32), {"long_name": "day index"}),
        date=("day", days.strftime("%Y-%m-%d").to_numpy(dtype=str),
              {"long_name": f"local date ({lt.label})"}),
        lead_day=("day", ((days - first).days + 1).to_numpy(np.int32),
                  {"long_name": "lead day (1 = day of the first forecast hour)"}),
        time=("day", t0, {"standard_name": "time", "axis": "T", "bounds": "time_bnds",
                          "long_name": "start of the local day (UTC)"}),
        aqi_standard=("day", res["standard"].astype(str), {"long_name": "AQI standard"}))
    ds["time_bnds"] = (("day", "nv"), np.stack([t0, t1], axis=1))
    dims = ("day", "y", "x")
    for key, x in daily.items():
        p, _, per = key.partition("_")
        attrs = _conc_attrs(p)
        if key == "O3_8h":
            name, attrs["long_name"] = "O3_MDA8", "daily maximum 8-h mean surface O3 (MDA8)"
            attrs["cell_methods"] = "time: mean (interval: 8 hours) time: maximum"
        elif key == "O3_1h":
            name, attrs["long_name"] = "O3_max_1h", "daily maximum 1-h surface O3"
            attrs["cell_methods"] = "time: maximum"
        elif key == "CO_8h":
            name, attrs["long_name"] = "CO_max_8h", "daily maximum 8-h mean surface CO"
            attrs["cell_methods"] = "time: mean (interval: 8 hours) time: maximum"
        elif per == "1h":
            name = f"{_surf.POLLUTANT_VARS[p]}_max_1h"
            attrs["long_name"] = f"daily maximum 1-h surface {p}"
            attrs["cell_methods"] = "time: maximum"
        else:
            name = f"{_surf.POLLUTANT_VARS[p]}_24h"
            attrs["long_name"] = f"24-h mean surface {p}"
            attrs["cell_methods"] = "time: mean"
        ds[name] = (dims, x.astype(np.float32), attrs)
    _add_aqi_vars(ds, dims, {k: v for k, v in res.items() if k != "standard"}, "daily",
                  family, label)
    return ds


# ----------------------------------------------------------------------------- helpers
def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g", encoding="utf-8")
    return path


def _load_cfg(config_path_or_cfg):
    from ..config import RunConfig, load_config

    if isinstance(config_path_or_cfg, RunConfig):
        return config_path_or_cfg
    return load_config(config_path_or_cfg)


def _domains(cfg, run_dir: Path, domains) -> list[str]:
    if domains is not None:
        missing = [d for d in domains if not (run_dir / f"conc_{d}.nc").exists()]
        if missing:
            raise InputFileError(f"{run_dir}: no conc file for domain(s) {', '.join(missing)} "
                                 f"(expected conc_<domain>.nc)")
        return list(domains)
    have = [d for d in cfg.domain_names if (run_dir / f"conc_{d}.nc").exists()]
    for d in cfg.domain_names:
        if d not in have:
            log.warning("%s: conc_%s.nc not found; domain %s skipped", run_dir, d, d)
    if not have:
        raise InputFileError(f"{run_dir}: no forecast output conc_<domain>.nc for domains "
                             f"{', '.join(cfg.domain_names)}")
    return have


def _observation_frame(observations) -> pd.DataFrame:
    if isinstance(observations, (xr.Dataset, xr.DataArray)):
        obs = observations.to_dataframe().reset_index()
    else:
        obs = pd.DataFrame(observations).copy()
    if "station" not in obs and "code" in obs:
        obs["station"] = obs["code"]
    missing = [c for c in ("station", "time") if c not in obs]
    if missing:
        raise ValueError(f"observations need columns station and time (local hour-beginning);"
                         f" missing {missing}")
    obs["station"] = obs["station"].astype(str)
    obs["time"] = pd.to_datetime(obs["time"])
    return obs


def verify(station_hourly: pd.DataFrame, observations, init_local: pd.Timestamp,
           standard: str) -> pd.DataFrame:
    """Skill per pollutant x station x lead day of the station forecasts against observations.

    ``station_hourly``: long forecast table (local hour-beginning index ``time``, station, one
    column per pollutant); ``observations``: long table (station, time, pollutant columns in the
    same units and time convention). Lead day 1 = the first 24 h after ``init_local``.
    Returns an empty frame when nothing overlaps.
    """
    from ..verification import pair_forecast_obs, skill_table

    obs = _observation_frame(observations)
    fc = station_hourly.reset_index()
    rows = []
    for p in _surf.POLLUTANT_VARS:
        if p not in fc or p not in obs:
            continue
        f = pd.DataFrame({"station": fc["station"], "init_time": init_local,
                          "valid_time": fc["time"], p: fc[p]})
        paired = pair_forecast_obs(f, obs, p)
        paired = paired[np.isfinite(paired["obs"])]
        if paired.empty:
            continue
        period = "24h" if p.startswith("PM") else "1h"
        limit = float(_aqi.concentration_breaks(p, period, standard)[1])

        def cat(c, p=p, period=period):
            return _aqi.category(_aqi.iaqi(p, c, period, standard), standard)
        t = skill_table(paired, by=("station", "lead_day"), threshold=limit, category=cat,
                        emery_species=p if p in ("O3", "PM2.5") else None).reset_index()
        t.insert(0, "pollutant", p)
        t.insert(3, "threshold", limit)
        rows.append(t)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


# ----------------------------------------------------------------------------- entry point
def make_products(config_path_or_cfg, run_dir, out_dir, domains=None, stations=None,
                  observations=None, *, standard: str | None = "config",
                  utc_offset_hours: float | None = None, local_time=None,
                  day_boundary: str = "local", max_map_days: int | None = None, maps: bool = True,
                  natural_earth=None) -> list[Path]:
    """Write every product of one forecast run; return the paths written.

    Parameters
    ----------
    config_path_or_cfg: config file or :class:`aqforecast.config.RunConfig` (lead windows from
        ``time.windows``, cities from ``regions``, stations from
        ``inputs.observations.station_coords``, compression from ``outputs``).
    run_dir: the forecast directory holding ``conc_<domain>.nc``.
    out_dir: where the products go (created).
    domains: domain names (default: the config's domains that have output; a listed domain
        without output is an error).
    stations: station list (DataFrame with station/code, lon, lat, or a CSV path) overriding the
        config's; False for no station table.
    observations: long station observations (DataFrame or Dataset: station, time as local
        hour-beginning, pollutant columns PM2.5 ... CO in ug m-3 / mg m-3) for verification;
        None skips it.
    standard: AQI standard: "config" (default) = the config's ``products.aqi_standard``;
        "HJ633-2026", "HJ633-2012", "EPA-2024" (or the config spellings ``hj633-2026`` ...);
        None = the HJ 633 version in force on each local date.
    utc_offset_hours, local_time: local time of the AQI day (hours east of UTC, or a
        :class:`~aqforecast.config.localtime.LocalTime` / zone name); default the config's
        ``time.local_utc_offset_h`` / ``time.timezone`` (8 = Beijing).
    day_boundary: "local" (default): days are local natural days (HJ 633 / GB 3095 daily
        values), so a cycle not starting at local midnight has incomplete first and last days
        (fewer than 20 hours: NaN daily values, no maps); "lead": days are 24-h lead blocks
        (leads 1-24 = lead day 1, ...), dated start date + lead day - 1, which is the local
        natural day only when the cycle starts at local midnight.
    max_map_days: draw maps for at most this many lead days (None = all); ``maps=False`` none.
    natural_earth: Natural Earth directory for the maps (default search of :mod:`.maps`).
    """
    t_all = _time.perf_counter()
    cfg = _load_cfg(config_path_or_cfg)
    from ..config import resolve_path

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    names = _domains(cfg, run_dir, domains)
    if local_time is not None:
        obs_local = LocalTime.coerce(local_time)
    elif utc_offset_hours is not None:
        obs_local = LocalTime(float(utc_offset_hours))
    else:
        obs_local = cfg.time.local_time
    local = obs_local                      # observations stay in (true) local time
    if day_boundary == "lead":
        st = pd.Timestamp(cfg.time.start)
        local = LocalTime(-(st - st.floor("D")) / pd.Timedelta(hours=1))
    elif day_boundary != "local":
        raise ValueError(f"day_boundary must be 'local' or 'lead', got {day_boundary!r}")
    standard = _aqi.normalize_standard(cfg.products.aqi_standard if standard == "config"
                                       else standard)
    regions = [(r.name, resolve_path(cfg, r.geojson)) for r in cfg.regions]
    for _, g in regions:
        if not Path(g).exists():
            raise InputFileError(f"regions: city polygon file {g} does not exist")
    if stations is None and cfg.inputs.observations.station_coords is not None:
        stations = resolve_path(cfg, cfg.inputs.observations.station_coords)
    st_table = _tables.station_table(stations) if stations is not None and stations is not False \
        else None
    if st_table is not None and observations is not None:
        obs = _observation_frame(observations)
        if {"lon", "lat"} <= set(obs.columns):   # stations only the observations locate
            extra = _tables.station_table(obs.groupby("station", as_index=False)[["lon", "lat"]]
                                          .first())
            extra = extra[~extra["station"].isin(st_table["station"])]
            st_table = pd.concat([st_table, extra], ignore_index=True)
    if maps:
        from . import maps as _maps
        _maps.natural_earth_dir(natural_earth)     # fail before any work if absent
    written: list[Path] = []
    comp = cfg.outputs.compression_level
    epa = standard is not None and _aqi.RULES[standard].family == "EPA"

    surfaces = {d: _surf.read_surface(run_dir / f"conc_{d}.nc", d) for d in names}
    local_days = pd.DatetimeIndex(np.unique(np.concatenate(
        [sf.local_hours(local).floor("D").values for sf in surfaces.values()])))
    warns = _aqi.standard_warnings(standard, local_days)
    for w in warns:
        log.warning("products: %s", w)
    extra = {"local_time": local.label,
             "aqi_standard_warning": " | ".join(warns) if warns else None}
    summary: dict = {"run_dir": str(run_dir), "local_time": local.label,
                     "utc_offset_hours": local.utc_offset_h if local.is_fixed else None,
                     "day_boundary": day_boundary,
                     "aqi_standard": (_aqi.standard_label(standard) if standard else
                                      "HJ 633 in force on each local date"),
                     "warnings": warns, "domains": {}}

    daily_sets = {}
    for d, sf in surfaces.items():
        t0 = _time.perf_counter()
        if sf.leads.size > 1 and np.any(np.diff(sf.leads) != 1):
            raise InputFileError(f"{run_dir / f'conc_{d}.nc'}: products need hourly output "
                                 f"(leads {sf.leads[:4].tolist()} ...)")
        hours = sf.local_hours(local)
        stds = _surf.hourly_standards(hours, standard)
        res = _surf.gridded_realtime_aqi(sf.conc, stds)
        written.append(write_dataset(hourly_dataset(sf, stds, res, **extra),
                                     out_dir / f"surface_hourly_{d}.nc", comp))
        wins = _win.lead_windows(cfg.time.windows, int(sf.leads.max()))
        written.append(write_dataset(leadwindow_dataset(sf, wins, res["aqi"], stds, **extra),
                                     out_dir / f"leadwindow_{d}.nc", comp))
        days, daily = _surf.daily_indicators(hours, sf.conc, epa=epa)
        dres = _surf.gridded_daily_aqi(days, daily, standard)
        written.append(write_dataset(
            daily_dataset(sf, days, daily, dres, local,
                          aqi_standard_warning=extra["aqi_standard_warning"]),
            out_dir / f"daily_{d}.nc", comp))
        daily_sets[d] = (days, daily, dres)
        summary["domains"][d] = {"hours": int(sf.leads.size), "lead_windows": len(wins),
                                 "days": len(days), "missing_pollutants": sf.missing,
                                 "aqi_standards": sorted(set(stds)),
                                 "seconds_gridded": round(_time.perf_counter() - t0, 3)}
        log.info("domain %s: %d hours, %d lead windows, %d days", d, sf.leads.size, len(wins),
                 len(days))

    # tables
    station_hourly = None
    if st_table is not None:
        loc = _tables.locate_stations(st_table, surfaces)
        station_hourly = _tables.hourly_at(loc, surfaces, local)
        tab = _tables.daily_table(loc, surfaces, local, standard, station_hourly)
        written.append(_write_csv(tab, out_dir / "aqi_daily_station.csv"))
        summary["stations"] = {"n": len(loc.names), "rows": len(tab)}
    else:
        log.info("no station list (inputs.observations.station_coords): station table skipped")
    if regions:
        cloc = _tables.locate_cities(regions, surfaces)
        ctab = _tables.daily_table(cloc, surfaces, local, standard)
        written.append(_write_csv(ctab, out_dir / "aqi_daily_city.csv"))
        summary["cities"] = {"n": len(cloc.names), "rows": len(ctab)}
    else:
        log.info("no city polygons (regions): city table skipped")

    if maps:
        t0 = _time.perf_counter()
        paths = _draw_maps(surfaces, daily_sets, out_dir / "maps", [g for _, g in regions],
                           st_table, max_map_days, natural_earth)
        dt = _time.perf_counter() - t0
        written += paths
        summary["maps"] = {"n": len(paths), "seconds": round(dt, 2),
                           "seconds_per_map": round(dt / max(len(paths), 1), 3)}

    if observations is not None and station_hourly is not None:
        first = next(iter(surfaces.values()))
        init_local = obs_local.to_local(first.start)[0]
        # verification thresholds and categories: the HJ 633 standard chosen, else the one in
        # force (an EPA choice verifies on China's grade-II limits: concentrations in ug m-3)
        std0 = standard if standard is not None and not epa else \
            _aqi.standard_for_date(init_local)
        fc = station_hourly if local is obs_local else \
            _tables.hourly_at(loc, surfaces, obs_local)
        skill = verify(fc, observations, init_local, std0)
        if skill.empty:
            log.info("observations do not overlap the forecast at any station: no verification")
            summary["verification"] = {"rows": 0, "skipped": "no overlap"}
        else:
            written.append(_write_csv(skill, out_dir / "verification" / "skill.csv"))
            summary["verification"] = {"rows": len(skill)}
    else:
        why = "no observations given" if observations is None else "no station list"
        log.info("verification skipped: %s", why)
        summary["verification"] = {"rows": 0, "skipped": why}

    summary["seconds"] = round(_time.perf_counter() - t_all, 2)
    summary["files"] = [str(p.relative_to(out_dir)) for p in written]
    summary["counts"] = {"netcdf": sum(p.suffix == ".nc" for p in written),
                         "csv": sum(p.suffix == ".csv" for p in written),
                         "png": sum(p.suffix == ".png" for p in written)}
    spath = out_dir / "products_summary.json"
    with atomic_path(spath) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    written.append(spath)
    log.info("products: %d files in %s (%.1f s)", len(written), out_dir, summary["seconds"])
    return written


def _to_standard_units(standard: str):
    """pollutant -> factor from reporting units to the standard's table units (1 for HJ)."""
    if _aqi.RULES[standard].family == "EPA":
        from .epa import to_epa_units
        return lambda p: float(to_epa_units(p, 1.0))
    return lambda p: 1.0


def _draw_maps(surfaces, daily_sets, map_dir: Path, boundaries, st_table, max_map_days,
               natural_earth) -> list[Path]:
    from ..verification import StationSampler
    from .mapset import MapSeries

    out = []
    for d, sf in surfaces.items():
        days, daily, res = daily_sets[d]
        stations = None
        if st_table is not None and len(st_table):
            samp = StationSampler.build(sf.lon, sf.lat, st_table["lon"], st_table["lat"],
                                        "nearest")
            stations = (st_table["lon"].to_numpy()[samp.inside],
                        st_table["lat"].to_numpy()[samp.inside])
        ms = MapSeries(sf.lon, sf.lat, boundaries, stations, natural_earth)
        n = 0
        for k, day in enumerate(days):
            if max_map_days is not None and n >= max_map_days:
                break
            s = res["standard"][k]
            tag = f"day{k + 1:02d}_{day:%Y-%m-%d}"
            to_std = _to_standard_units(s)
            items = [("pm25", daily.get("PM2.5_24h"), "PM2.5 24-h mean", "ug m-3",
                      ("PM2.5", "24h")),
                     ("o3_mda8", daily.get("O3_8h"), "O3 MDA8", "ug m-3", ("O3", "8h")),
                     ("aqi", res["aqi"], "daily AQI", "AQI", None)]
            drew = False
            for name, field, label, units, bp in items:
                if field is None or not np.isfinite(field[k]).any():
                    continue
                bounds = None if bp is None else \
                    [0, *(_aqi.concentration_breaks(*bp, s) / to_std(bp[0]))]
                out.append(ms.draw(field[k], map_dir / d / f"{name}_{tag}.png",
                                   title=f"{d} {label}, {day:%Y-%m-%d} (lead day {k + 1}, {s})",
                                   units=units, aqi_scale=s, aqi_bounds=bounds,
                                   key=(name, s)))
                drew = True
            if drew:
                n += 1
            else:
                log.info("%s %s: incomplete day, no maps", d, day.date())
        ms.close()
    return out
