"""Days over the standard, and the days a scenario avoids (``DIR/exceedances.csv``).

A day is *over the standard* for a city (or station) and pollutant when its complete daily
statistic exceeds the grade-II daily limit: the concentration at IAQI 100 of the 24-h indicator
(PM2.5, PM10, NO2, SO2, CO daily means; GB 3095 grade II, as HJ 633 tabulates it) or of the 8-h
indicator for O3 MDA8, and for the AQI an index above 100 -- the "超标天" of China's reporting.
The limits are those of the HJ 633 version configured (``products.aqi_standard``), else of the
version in force on the day (HJ 633-2026 from 2026-03-01: PM2.5 60, PM10 120 ug m-3; before: 75,
150), the same limits the products' verification scores exceedances with. Incomplete days are
not counted.

Per (kind, city, station, pollutant, statistic): ``limit`` (of the first day), ``complete_days``,
``base_days_over``, ``scenario_days_over``, ``days_avoided`` (base over and scenario not),
``days_added`` (scenario over and base not: an O3 disbenefit, say) and ``avoided_lead_days``
(``;``-separated lead days).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..products import aqi as _aqi

__all__ = ["daily_limit", "days_over_standard", "LIMITED"]

#: (pollutant, statistic) -> the indicator period whose IAQI-100 concentration is the limit
LIMITED = {("PM2.5", "daily_mean"): "24h", ("PM10", "daily_mean"): "24h",
           ("NO2", "daily_mean"): "24h", ("SO2", "daily_mean"): "24h",
           ("CO", "daily_mean"): "24h", ("O3", "mda8"): "8h", ("AQI", "index"): None}
KEYS = ["kind", "city", "station", "pollutant", "statistic"]
COLUMNS = KEYS + ["limit", "standard", "complete_days", "base_days_over", "scenario_days_over",
                  "days_avoided", "days_added", "avoided_lead_days"]


def _standard(configured: str | None, date) -> str:
    """The HJ 633 version the limits come from: the configured one, else the one in force on
    ``date`` (an EPA configuration still counts China's grade-II days)."""
    if configured is not None and _aqi.RULES[configured].family == "HJ":
        return configured
    return _aqi.standard_for_date(date)


def daily_limit(pollutant: str, statistic: str, date, standard: str | None = None) -> float:
    """The grade-II daily limit (ug m-3, CO mg m-3; AQI: 100) of a city statistic on ``date``
    (module docstring); NaN for statistics without one."""
    if (pollutant, statistic) not in LIMITED:
        return float("nan")
    if pollutant == "AQI":
        return 100.0
    std = _standard(standard, date)
    return float(_aqi.concentration_breaks(pollutant, LIMITED[(pollutant, statistic)], std)[1])


def days_over_standard(scores: pd.DataFrame, standard: str | None = None) -> pd.DataFrame:
    """The exceedance table (module docstring) of a scores table (columns kind, city, station,
    lead_day, date, pollutant, statistic, base, scenario, complete; ``kind``/``station``
    optional). ``standard``: the configured AQI standard (internal name, None = in force)."""
    df = scores.copy()
    if "kind" not in df:
        df["kind"] = "city"
    if "station" not in df:
        df["station"] = ""
    df["station"] = df["station"].fillna("").astype(str)
    pairs = list(zip(df["pollutant"], df["statistic"]))
    df = df[[p in LIMITED for p in pairs]]
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    df = df.assign(limit=[daily_limit(p, s, d, standard) for p, s, d in
                          zip(df["pollutant"], df["statistic"], df["date"])],
                   standard=[("index" if p == "AQI" else _standard(standard, d))
                             for p, d in zip(df["pollutant"], df["date"])])
    ok = df["complete"].astype(bool) & np.isfinite(df["base"].astype(float))
    df = df.assign(ok=ok,
                   b_over=ok & (df["base"].astype(float) > df["limit"]),
                   s_over=ok & (df["scenario"].astype(float) > df["limit"]))
    df["avoided"] = df["b_over"] & ~df["s_over"]
    df["added"] = df["s_over"] & ~df["b_over"]
    rows = []
    for key, g in df.groupby(KEYS, sort=False):
        g = g.sort_values("lead_day")
        rows.append(dict(zip(KEYS, key), limit=float(g["limit"].iloc[0]),
                         standard=str(g["standard"].iloc[0]),
                         complete_days=int(g["ok"].sum()),
                         base_days_over=int(g["b_over"].sum()),
                         scenario_days_over=int(g["s_over"].sum()),
                         days_avoided=int(g["avoided"].sum()), days_added=int(g["added"].sum()),
                         avoided_lead_days=";".join(str(int(d)) for d in
                                                    g.loc[g["avoided"], "lead_day"])))
    return pd.DataFrame(rows, columns=COLUMNS)
