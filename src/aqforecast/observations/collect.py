"""The observation stage: every configured station source for a cycle's window, QC-flagged,
as one CF file ``obs.nc``.

Sources (``inputs.observations.sources`` in the config): a glob of files and their ``format``
(``cnemc``, ``prsa``, ``shanghai`` -- the national layouts, whose times are local Beijing time
(UTC+8, ``utc_offset_hours``) -- or ``generic``, :mod:`.generic`, whose times carry their offset).
The window of cycle T is the hourly means that began in [T - ``window_hours``, T) (UTC): the hours
that have ended by T.

``obs.nc`` (CF-1.10, dims ``station`` x ``time``): one variable per species in HJ 633 units
(``PM25``, ``PM10``, ``SO2``, ``NO2``, ``O3`` in ug m-3, ``CO`` in mg m-3; gases at the 298.15 K,
1013.25 hPa reference state of the reporting standard) with CF ``standard_name``; beside each a
CF flag variable ``<name>_qc`` (``flag_masks`` / ``flag_meanings`` of
:mod:`aqforecast.observations.qc`: missing, range, spike, stuck, unit, pm25_gt_pm10), linked by
``ancillary_variables``; coordinates ``station`` (id), ``lon``, ``lat``, ``altitude`` (m, NaN
where unknown), ``time`` (UTC, hour beginning); global attributes name the cycle, the window and
every file read (provenance). Nothing is dropped: flagged values stay, with their flags.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..io import InputFileError
from . import qc
from .generic import REFERENCE_STATE, read_generic_csv
from .readers import read_cnemc, read_prsa, read_shanghai_uci, read_station_coords

__all__ = ["gather_observations", "OBS_VARIABLES", "READERS", "observation_window"]

log = logging.getLogger(__name__)

READERS = {"cnemc": read_cnemc, "prsa": read_prsa, "shanghai": read_shanghai_uci,
           "generic": read_generic_csv}
#: obs.nc variable name and CF standard name of each species
OBS_VARIABLES = {
    "PM2.5": ("PM25", "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"),
    "PM10": ("PM10", "mass_concentration_of_pm10_ambient_aerosol_particles_in_air"),
    "SO2": ("SO2", "mass_concentration_of_sulfur_dioxide_in_air"),
    "NO2": ("NO2", "mass_concentration_of_nitrogen_dioxide_in_air"),
    "CO": ("CO", "mass_concentration_of_carbon_monoxide_in_air"),
    "O3": ("O3", "mass_concentration_of_ozone_in_air"),
}


def observation_window(cycle, window_hours: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the hour-beginning stamps (UTC) assimilated at ``cycle``."""
    end = pd.Timestamp(cycle)
    if end.tzinfo is not None:
        end = end.tz_convert("UTC").tz_localize(None)
    return end - pd.Timedelta(hours=int(window_hours)), end


def _read_source(src, base: Path, encoding) -> list[tuple[Path, pd.DataFrame]]:
    pattern = str(src.path if Path(src.path).is_absolute() else base / src.path)
    paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise InputFileError(f"{pattern}: no observation files match (format {src.format})")
    out = []
    for p in paths:
        enc = src.encoding or encoding
        if src.format == "cnemc":
            df = read_cnemc(p, species=src.species, encoding=enc)
        elif src.format == "generic":
            df = read_generic_csv(p, encoding=enc)
        else:
            df = READERS[src.format](p)
        if src.format != "generic":  # local time -> UTC
            df["time"] = df["time"] - pd.Timedelta(hours=src.utc_offset_hours)
        df["station"] = df["station"].astype(str)
        out.append((p, df))
    return out


def gather_observations(sources, cycle, window_hours: int = 6, station_coords=None,
                        base_dir: str | Path = ".", encoding: str | None = None) -> xr.Dataset:
    """Read, window, merge and QC every source; return the ``obs.nc`` Dataset (module doc).

    sources: items with ``path`` (glob), ``format``, ``species`` (CNEMC single-species files),
    ``encoding`` and ``utc_offset_hours``; station_coords: a station table path (or None);
    base_dir: where relative paths start."""
    start, end = observation_window(cycle, window_hours)
    frames, files = [], []
    for src in sources:
        for p, df in _read_source(src, Path(base_dir), encoding):
            files.append(str(p))
            frames.append(df[(df["time"] >= start) & (df["time"] < end)])
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    species = [s for s in OBS_VARIABLES if s in frame.columns]
    if frame.empty or not species:
        raise InputFileError(f"no observations in the window {start} .. {end} UTC in "
                             f"{len(files)} file(s): {', '.join(files[:5])}")
    dup = frame.duplicated(["station", "time"], keep=False)
    if dup.any():  # the same station and hour from two files: keep one row per value
        frame = frame.groupby(["station", "time"], as_index=False).first()
    frame.attrs["units"] = {s: qc.EXPECTED_UNITS[s] for s in species}
    flags = qc.qc_flags(frame, species)
    stations = sorted(frame["station"].unique())
    times = pd.date_range(start, end - pd.Timedelta(hours=1), freq="h")
    idx = pd.MultiIndex.from_product([stations, times], names=["station", "time"])
    wide = frame.set_index(["station", "time"])
    fl = flags.set_index(pd.MultiIndex.from_frame(frame[["station", "time"]]))
    ds = xr.Dataset(coords={"station": ("station", np.array(stations, dtype=object),
                                        {"long_name": "station code",
                                         "cf_role": "timeseries_id"}),
                            "time": ("time", times.values)})
    meanings = " ".join(qc.FLAG_NAMES[m] for m in sorted(qc.FLAG_NAMES))
    for sp in species:
        name, std = OBS_VARIABLES[sp]
        v = wide[sp].reindex(idx).to_numpy(float).reshape(len(stations), len(times))
        f = fl[sp].reindex(idx).to_numpy()
        # hours without a row are missing values, flagged as such
        f = np.where(np.isnan(f.astype(float)), qc.MISSING, f).astype(np.int16)
        f = f.reshape(len(stations), len(times))
        ds[name] = (("station", "time"), v, {
            "units": qc.EXPECTED_UNITS[sp], "standard_name": std,
            "long_name": f"observed hourly mean {sp}",
            "ancillary_variables": f"{name}_qc",
            **({"reference_state": f"{REFERENCE_STATE[0]} K, {REFERENCE_STATE[1]:g} Pa"}
               if sp not in ("PM2.5", "PM10") else {})})
        ds[f"{name}_qc"] = (("station", "time"), f, {
            "long_name": f"quality flags of {name}", "standard_name": "status_flag",
            "flag_masks": np.array(sorted(qc.FLAG_NAMES), dtype=np.int16),
            "flag_meanings": meanings})
    lon, lat = _coordinates(frame, stations, station_coords)
    ds = ds.assign_coords(
        lon=("station", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        lat=("station", lat, {"standard_name": "latitude", "units": "degrees_north"}),
        altitude=("station", np.full(len(stations), np.nan),
                  {"standard_name": "altitude", "units": "m", "positive": "up"}))
    ds["time"].attrs.update(standard_name="time", long_name="start of the hourly mean (UTC)")
    ds.attrs.update({
        "title": "aqforecast station observations", "featureType": "timeSeries",
        "cycle": str(end), "window": f"{start} .. {end} UTC (hour-beginning stamps, [start, "
        f"end))", "source_files": "\n".join(files),
        "qc": "flags only: nothing is removed (aqforecast.observations.qc)"})
    nocoord = int(np.sum(~np.isfinite(lon)))
    if nocoord:
        log.warning("%d station(s) without coordinates in obs.nc (lon/lat NaN)", nocoord)
    return ds


def _coordinates(frame: pd.DataFrame, stations, station_coords):
    """lon, lat per station: from the files (CNEMC, generic) else the station table."""
    lon = pd.Series(np.nan, index=stations)
    lat = pd.Series(np.nan, index=stations)
    for c, s in (("lon", lon), ("lat", lat)):
        if c in frame:
            got = frame.groupby("station")[c].first()
            s.update(got)
    if station_coords is not None:
        table = station_coords if isinstance(station_coords, pd.DataFrame) else \
            read_station_coords(station_coords)
        for key in ("station", "code", "name"):
            if key in table:
                t = table.dropna(subset=["lon", "lat"]).drop_duplicates(key).set_index(key)
                miss = lon.isna()
                lon[miss] = t["lon"].reindex(lon.index[miss]).to_numpy()
                lat[miss] = t["lat"].reindex(lat.index[miss]).to_numpy()
    return lon.to_numpy(float), lat.to_numpy(float)
