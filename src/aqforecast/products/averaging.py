"""Averaging-time statistics with minimum-valid-data rules, for AQI and verification.

Hourly series are pandas Series/DataFrames on a regular hourly DatetimeIndex in local (Beijing)
time, each stamp labelling the hour that *begins* at it (the PRSA/UCI files' convention; an
hour-ending series should be shifted by -1 h first).

Validity rules (GB 3095-2012 §7, Table 4 "data validity", as amended 2018; HJ 663-2013 for the
daily maximum 8-h ozone) **[L: from the standards as commonly transcribed; not re-read here]**:

- 24-h mean (SO2, NO2, CO, PM10, PM2.5): at least 20 valid hourly values in the natural day;
- 8-h running mean (O3): at least 6 valid hourly values in the 8 h;
- daily maximum 8-h mean (MDA8): the largest of the 17 running means whose window lies inside
  the day (windows 00-08 ... 16-24, i.e. ending 08:00 ... 24:00), with at least 14 of them valid;
- daily maximum 1-h value: at least 20 valid hours in the day [D: same rule as the daily mean].

Everything returns NaN where a rule is not met.
"""

from __future__ import annotations

import pandas as pd

#: Minimum valid hours for a 24-h mean (GB 3095-2012 Table 4, 2018 amendment).
MIN_HOURS_24H = 20
#: Minimum valid hours in an 8-h running mean (GB 3095-2012 Table 4).
MIN_HOURS_8H = 6
#: Minimum valid 8-h means (of 17) for the daily maximum 8-h mean (HJ 663-2013).
MIN_WINDOWS_MDA8 = 14


def regular_hourly(obj: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Reindex onto a gap-free hourly axis covering whole days (missing hours become NaN).

    Raises ValueError on a non-datetime or duplicated index.
    """
    if not isinstance(obj.index, pd.DatetimeIndex):
        raise ValueError("hourly series need a DatetimeIndex (local time, hour-beginning)")
    if obj.index.has_duplicates:
        dup = obj.index[obj.index.duplicated()][0]
        raise ValueError(f"hourly series has duplicated time stamps, e.g. {dup}")
    if len(obj) == 0:
        return obj
    start = obj.index.min().floor("D")
    end = obj.index.max().floor("D") + pd.Timedelta(hours=23)
    return obj.reindex(pd.date_range(start, end, freq="h", name=obj.index.name))


def daily_mean(hourly: pd.Series | pd.DataFrame, min_hours: int = MIN_HOURS_24H):
    """Natural-day (00-24 h local) mean; NaN for days with fewer than ``min_hours`` valid hours."""
    h = regular_hourly(hourly)
    grp = h.groupby(h.index.floor("D"))
    return grp.mean().where(grp.count() >= min_hours)


def daily_max(hourly: pd.Series | pd.DataFrame, min_hours: int = MIN_HOURS_24H):
    """Daily maximum of hourly values; NaN for days with fewer than ``min_hours`` valid hours."""
    h = regular_hourly(hourly)
    grp = h.groupby(h.index.floor("D"))
    return grp.max().where(grp.count() >= min_hours)


def running_mean(hourly: pd.Series | pd.DataFrame, hours: int, min_hours: int):
    """Trailing running mean over ``hours`` hours, labelled by the window's *last* hour.

    The value at stamp t averages hours t-(hours-1) ... t; NaN with fewer than ``min_hours``
    valid values in the window.
    """
    h = regular_hourly(hourly)
    return h.rolling(hours, min_periods=min_hours).mean()


def running_mean_8h(hourly, min_hours: int = MIN_HOURS_8H):
    """8-h running mean (O3), labelled by the last hour of the window (GB 3095-2012)."""
    return running_mean(hourly, 8, min_hours)


def running_mean_24h(hourly, min_hours: int = MIN_HOURS_24H):
    """24-h running mean (the CNEMC real-time particle convention under HJ 633-2012)."""
    return running_mean(hourly, 24, min_hours)


def daily_max_8h(hourly: pd.Series | pd.DataFrame, min_windows: int = MIN_WINDOWS_MDA8,
                 min_hours: int = MIN_HOURS_8H):
    """Daily maximum 8-h running mean (MDA8) over windows lying inside the natural day.

    Windows start at 00, 01, ..., 16 h (17 windows, ending 08:00 ... 24:00); the window starting
    at hour s is the running mean labelled s+7. NaN when fewer than ``min_windows`` are valid.
    """
    r8 = running_mean_8h(hourly, min_hours)
    inside = r8.index.hour >= 7  # label s+7 with s in 0..16 -> hours 7..23, all inside the day
    r8 = r8[inside]
    grp = r8.groupby(r8.index.floor("D"))
    return grp.max().where(grp.count() >= min_windows)


def valid_fraction(hourly: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Fraction of valid hours per natural day (for reports)."""
    h = regular_hourly(hourly)
    grp = h.groupby(h.index.floor("D"))
    return grp.count() / 24.0
