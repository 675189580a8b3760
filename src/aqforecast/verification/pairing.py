"""Pair gridded forecasts with station observations in space and time.

Space: :class:`aqforecast.observations.sampling.StationSampler` (nearest cell or bilinear in the
containing quad of cell centres; NaN outside the grid), re-exported here.

Time: :func:`pair_forecast_obs` inner-joins a long forecast table (station, init_time,
valid_time, value) with a long observation table (station, time, value) and adds the lead in
hours and the lead day: day 1 = leads 0-23 h after the initial time, day 2 = 24-47 h, ...
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..observations.sampling import EARTH_RADIUS_KM, StationSampler, sample_field  # noqa: F401


def forecast_at_stations(field, valid_times, init_time, lon2d, lat2d, stations: pd.DataFrame,
                         method: str = "bilinear", variable: str = "value") -> pd.DataFrame:
    """Long forecast table from a (time, ny, nx) field.

    ``stations`` needs columns station, lon, lat. Returns columns station, init_time, valid_time,
    ``variable``.
    """
    vals = sample_field(field, lon2d, lat2d, stations["lon"].to_numpy(),
                        stations["lat"].to_numpy(), method)
    vt = pd.DatetimeIndex(valid_times)
    if vals.shape[0] != len(vt):
        raise ValueError(f"field has {vals.shape[0]} times but {len(vt)} valid_times were given")
    return pd.DataFrame({
        "station": np.tile(stations["station"].to_numpy(), len(vt)),
        "init_time": pd.Timestamp(init_time),
        "valid_time": np.repeat(vt.to_numpy(), len(stations)),
        variable: vals.reshape(-1)})


def pair_forecast_obs(forecast: pd.DataFrame, obs: pd.DataFrame, variable: str,
                      obs_variable: str | None = None) -> pd.DataFrame:
    """Inner join of forecasts and observations on station and valid time.

    ``forecast``: columns station, init_time, valid_time, ``variable``.
    ``obs``: columns station, time, ``obs_variable`` (default ``variable``).
    Returns columns station, init_time, valid_time, lead_hours, lead_day, fcst, obs (rows where
    either value is missing are kept, with NaN; the metrics skip them).
    """
    obs_variable = obs_variable or variable
    for name, df, cols in (("forecast", forecast, ("station", "init_time", "valid_time", variable)),
                           ("obs", obs, ("station", "time", obs_variable))):
        missing = [c for c in cols if c not in df]
        if missing:
            raise ValueError(f"{name} table lacks column(s) {missing}; has {list(df.columns)}")
    o = obs[["station", "time", obs_variable]].rename(
        columns={"time": "valid_time", obs_variable: "obs"})
    f = forecast[["station", "init_time", "valid_time", variable]].rename(
        columns={variable: "fcst"})
    out = f.merge(o, on=["station", "valid_time"], how="inner")
    lead = (out["valid_time"] - out["init_time"]) / pd.Timedelta(hours=1)
    out["lead_hours"] = lead.to_numpy(float)
    out["lead_day"] = (np.floor(out["lead_hours"] / 24.0) + 1).astype(int)
    return out[["station", "init_time", "valid_time", "lead_hours", "lead_day", "fcst", "obs"]]
