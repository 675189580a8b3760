"""Per-station Kalman-filter bias correction of forecasts (post-processing).

The filter of Delle Monache et al. (2006, "Ozone ensemble forecasts: 2. A Kalman filter predictor
bias correction", J. Geophys. Res., 111, D05308; also Delle Monache et al. 2008, Tellus 60B,
238-249) runs in predictor mode on the forecast error y_t = F_t - O_t of one station and one
forecast hour (successive values are one day, Δt, apart):

    β_t            = (p_t|t-Δt + σ²_η) / (p_t|t-Δt + σ²_η + σ²_ε)           Kalman gain
    x_t+Δt|t       = x_t|t-Δt + β_t (y_t - x_t|t-Δt)                           bias forecast
    p_t+Δt|t       = (p_t|t-Δt + σ²_η)(1 - β_t)                                error variance
    F*_t+Δt        = F_t+Δt - x_t+Δt|t                                          corrected forecast

Only the ratio r = σ²_η/σ²_ε matters (σ²_ε = 1 here). The papers tune r by sensitivity tests;
the default 0.06 is the value used for hourly ozone there **[L: re-check in the paper]** and
:func:`tune_ratio` picks r on a training period. A missing error leaves x unchanged and grows p
by σ²_η. The filter starts from x = 0, p = 1.
"""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np
import pandas as pd

from . import metrics

log = logging.getLogger(__name__)

DEFAULT_RATIO = 0.06


def kalman_bias(errors, ratio: float = DEFAULT_RATIO, p0: float = 1.0, x0: float = 0.0):
    """Bias forecasts for a sequence of forecast errors y_t (F - O), one per Δt.

    Returns ``bias`` where ``bias[k]`` is the estimate for step k made from errors ``0..k-1``
    (so it can correct forecast k before observation k exists).
    """
    if ratio <= 0:
        raise ValueError(f"ratio sigma_eta^2/sigma_eps^2 must be > 0, got {ratio}")
    y = np.asarray(errors, float)
    bias = np.empty_like(y)
    x, p = float(x0), float(p0)
    s_eta = ratio
    for k in range(y.size):
        bias[k] = x
        if np.isfinite(y[k]):
            beta = (p + s_eta) / (p + s_eta + 1.0)
            x = x + beta * (y[k] - x)
            p = (p + s_eta) * (1.0 - beta)
        else:
            p = p + s_eta
    return bias


def correct(forecast, obs, ratio: float = DEFAULT_RATIO):
    """Bias-corrected forecasts of one station and forecast hour (arrays in time order, Δt apart).

    Returns (corrected forecast, bias estimate used for each step).
    """
    f = np.asarray(forecast, float)
    b = kalman_bias(f - np.asarray(obs, float), ratio)
    return f - b, b


def correct_table(paired: pd.DataFrame, ratio: float = DEFAULT_RATIO,
                  by: Iterable[str] = ("station", "lead_hours"), time: str = "valid_time",
                  fcst: str = "fcst", obs: str = "obs") -> pd.DataFrame:
    """Add ``fcst_kf`` and ``kf_bias`` columns to a paired table, filtering each ``by`` group
    (default one filter per station and forecast lead hour) in ``time`` order.

    Each group should be a daily sequence (one forecast per day for that lead); gaps are treated
    as missing steps only if present as rows with NaN, otherwise consecutive rows are consecutive
    steps.
    """
    out = paired.sort_values(list(by) + [time]).copy()
    out["fcst_kf"] = np.nan
    out["kf_bias"] = np.nan
    for _, g in out.groupby(list(by), sort=False):
        fc, b = correct(g[fcst].to_numpy(), g[obs].to_numpy(), ratio)
        out.loc[g.index, "fcst_kf"] = fc
        out.loc[g.index, "kf_bias"] = b
    return out.sort_index()


def tune_ratio(paired: pd.DataFrame, ratios=(0.005, 0.01, 0.03, 0.06, 0.1, 0.3, 1.0),
               **kwargs) -> tuple[float, dict]:
    """The ratio with the smallest RMSE of the corrected forecast on ``paired`` (training data).

    Returns (best ratio, {ratio: rmse}).
    """
    scores = {}
    for r in ratios:
        t = correct_table(paired, r, **kwargs)
        scores[r] = metrics.rmse(t["fcst_kf"], t["obs"])
    best = min(scores, key=scores.get)
    log.info("Kalman bias-correction ratio %.3g (RMSE by ratio: %s)", best, scores)
    return best, scores


def persistence_forecast(obs: pd.DataFrame, variable: str, lag_hours: int = 24) -> pd.DataFrame:
    """A persistence forecast from an hourly long observation table (station, time, variable).

    The forecast for t is the observation at t - ``lag_hours``, issued at t - ``lag_hours``
    (lead = lag). Returns a paired table: station, init_time, valid_time, lead_hours, lead_day,
    fcst, obs.
    """
    o = obs[["station", "time", variable]]
    lagged = o.assign(time=o["time"] + pd.Timedelta(hours=lag_hours)).rename(
        columns={variable: "fcst"})
    out = o.rename(columns={variable: "obs"}).merge(lagged, on=["station", "time"], how="inner")
    out = out.rename(columns={"time": "valid_time"})
    out["init_time"] = out["valid_time"] - pd.Timedelta(hours=lag_hours)
    out["lead_hours"] = float(lag_hours)
    out["lead_day"] = int(lag_hours // 24) + 1
    return out[["station", "init_time", "valid_time", "lead_hours", "lead_day", "fcst", "obs"]]


def climatology_forecast(obs: pd.DataFrame, variable: str, train_end) -> pd.DataFrame:
    """A climatology forecast: the mean of ``variable`` by station and hour of day over the
    observations before ``train_end``, issued for every later hour (lead 24 h nominal).

    Returns a paired table like :func:`persistence_forecast` covering times >= ``train_end``.
    """
    train_end = pd.Timestamp(train_end)
    o = obs[["station", "time", variable]].copy()
    o["hour"] = o["time"].dt.hour
    train = o[o["time"] < train_end]
    if train.empty:
        raise ValueError(f"no observations before train_end={train_end}")
    clim = train.groupby(["station", "hour"])[variable].mean().rename("fcst").reset_index()
    test = o[o["time"] >= train_end].merge(clim, on=["station", "hour"], how="left")
    out = test.rename(columns={"time": "valid_time", variable: "obs"})
    out["init_time"] = out["valid_time"] - pd.Timedelta(hours=24)
    out["lead_hours"] = 24.0
    out["lead_day"] = 2
    return out[["station", "init_time", "valid_time", "lead_hours", "lead_day", "fcst", "obs"]]
