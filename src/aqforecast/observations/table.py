"""Observations as a long table for the analysis and the inversion: an ``obs.nc`` of the
observation stage or a generic CSV, QC-flagged values as NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..io import InputFileError

__all__ = ["read_observation_table", "read_observations_at"]


def read_observation_table(path: str | Path) -> pd.DataFrame:
    """Every observation of an ``obs.nc`` (or a generic CSV) as a long frame: station, lon, lat,
    time (hour beginning, UTC) and one column per quantity (obs.nc names, obs units); values
    with a non-zero QC flag are NaN."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".txt"):
        from .collect import OBS_VARIABLES
        from .generic import read_generic_csv
        from .qc import qc_flags

        df = read_generic_csv(path)
        species = [s for s in OBS_VARIABLES if s in df]
        flags = qc_flags(df, species)
        for s in species:
            df.loc[flags[s] != 0, s] = np.nan
        if "lon" not in df:
            raise InputFileError(f"{path}: the generic CSV needs lon and lat columns here")
        return df.rename(columns={s: OBS_VARIABLES[s][0] for s in species})
    try:
        ds = xr.open_dataset(path)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read observations: {exc}") from None
    with ds:
        if "time" not in ds.dims or "station" not in ds.dims:
            raise InputFileError(f"{path}: expected an obs.nc with dims station, time")
        names = [v for v in ds.data_vars if not v.endswith("_qc") and f"{v}_qc" in ds]
        st = ds["station"].values.astype(str)
        times = pd.DatetimeIndex(ds["time"].values)
        out = pd.DataFrame({"station": np.repeat(st, len(times)),
                            "lon": np.repeat(ds["lon"].values, len(times)),
                            "lat": np.repeat(ds["lat"].values, len(times)),
                            "time": np.tile(times.values, len(st))})
        for v in names:
            val = ds[v].transpose("station", "time").values.astype(float)
            ok = ds[f"{v}_qc"].transpose("station", "time").values == 0
            out[v] = np.where(ok, val, np.nan).ravel()
    return out


def read_observations_at(path: str | Path, time) -> pd.DataFrame:
    """Observations of the hour that ended at ``time`` (UTC): station, lon, lat and one column
    per quantity (:func:`read_observation_table`)."""
    table = read_observation_table(path)
    hour = pd.Timestamp(np.datetime64(time, "s")) - pd.Timedelta(hours=1)
    times = pd.DatetimeIndex(table["time"].unique())
    if hour not in times:
        span = f"{times.min()} .. {times.max()}" if len(times) else "nothing"
        raise InputFileError(f"{path}: no observations for the hour that ended at "
                             f"{hour + pd.Timedelta(hours=1)} UTC (the file covers {span}, "
                             f"hour-beginning stamps)")
    return table[table["time"] == hour].drop(columns="time").reset_index(drop=True)
