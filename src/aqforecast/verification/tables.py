"""Skill tables: verification statistics per group (station x lead day, city, ...).

:func:`skill_table` turns paired forecasts (from :func:`.pairing.pair_forecast_obs`) into one row
per group with the continuous statistics, optional exceedance scores, optional AQI-category
accuracy and optional Emery et al. (2017) flags.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from . import metrics


def skill_table(paired: pd.DataFrame, by: Sequence[str] = ("station", "lead_day"),
                threshold: float | None = None, category=None, emery_species: str | None = None,
                fcst: str = "fcst", obs: str = "obs") -> pd.DataFrame:
    """Verification statistics per group.

    Parameters
    ----------
    paired: DataFrame with the ``by`` columns and ``fcst``/``obs`` values.
    by: grouping columns (default one row per station x lead day).
    threshold: exceedance threshold for POD/FAR/CSI/ETS (same units as the values), or None.
    category: callable value -> AQI category level (e.g. ``lambda c: aqi.category(aqi.iaqi(
        "PM2.5", c, "24h", s), s)``) for exact / ±1 category accuracy, or None.
    emery_species: species for Emery et al. (2017) goal/criteria flags ("O3", "PM2.5"), or None.

    Returns
    -------
    DataFrame indexed by ``by`` with columns n, mean_model, mean_obs, mb, nmb, nme, rmse, r, ioa,
    mfb, mfe, fac2 [, hits, false_alarms, misses, correct_negatives, pod, far, csi, freq_bias,
    ets] [, cat_exact, cat_within1] [, emery_nmb, emery_nme, emery_r, ...].
    """
    by = list(by)
    missing = [c for c in by + [fcst, obs] if c not in paired]
    if missing:
        raise ValueError(f"paired table lacks column(s) {missing}")
    rows = {}
    for key, g in paired.groupby(by, sort=True):
        m = g[fcst].to_numpy(float)
        o = g[obs].to_numpy(float)
        row = metrics.continuous_scores(m, o)
        if threshold is not None:
            row.update(metrics.categorical_scores(m, o, threshold))
        if category is not None:
            acc = metrics.category_accuracy(category(m), category(o))
            row.update(cat_exact=acc["exact"], cat_within1=acc["within1"])
        if emery_species is not None:
            row.update({f"emery_{k}": v for k, v in metrics.emery_flags(row, emery_species).items()})
        rows[key if isinstance(key, tuple) else (key,)] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(out.index, names=by) if len(by) > 1 else \
        pd.Index([k[0] for k in out.index], name=by[0])
    return out


def overall(paired: pd.DataFrame, **kwargs) -> pd.Series:
    """The statistics of :func:`skill_table` over all pairs (one row)."""
    p = paired.assign(_all="all")
    return skill_table(p, by=["_all"], **kwargs).iloc[0]


def lead_day_summary(paired: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Statistics per lead day over all stations."""
    return skill_table(paired, by=["lead_day"], **kwargs)
