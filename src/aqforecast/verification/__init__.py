"""Forecast verification: pairing in space and time (:mod:`.pairing`), statistics
(:mod:`.metrics`), skill tables (:mod:`.tables`) and Kalman-filter station bias correction
(:mod:`.bias_correction`)."""

from .metrics import (categorical_scores, category_accuracy, continuous_scores, emery_flags,
                      fac2, ioa, mb, mfb, mfe, nmb, nme, pearson_r, rmse)
from .pairing import StationSampler, forecast_at_stations, pair_forecast_obs, sample_field
from .tables import skill_table

__all__ = ["mb", "nmb", "nme", "rmse", "pearson_r", "ioa", "mfb", "mfe", "fac2",
           "categorical_scores", "category_accuracy", "continuous_scores", "emery_flags",
           "StationSampler", "sample_field", "forecast_at_stations", "pair_forecast_obs",
           "skill_table"]
