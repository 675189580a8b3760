"""Air-quality indices: China's HJ 633 (2026 and 2012 versions) and the US EPA AQI (2024).

Owns the individual index (IAQI) of one pollutant, the AQI category, the combination of IAQIs into
an AQI with primary pollutant(s), and the daily and real-time (hourly) AQI of a station series.
Breakpoint tables are data, one CSV per standard in ``aqforecast/data/aqi_breakpoints_*.csv``; the
rules that are not a table (what to do above the last breakpoint, rounding, which averaging times
enter the daily and the real-time AQI, incomplete data) are the :data:`RULES` entries below.

China, HJ 633 (concentrations in ug m-3, CO in mg m-3; gases at the 298.15 K reference state):

- IAQI by linear interpolation between the bracketing breakpoints, eq. (1); AQI = max IAQI, eq. (2)
  (HJ 633-2012 §4.2; HJ 633-2026 eqs. (1)-(2), Table 3).
- IAQI rounded **up** to an integer (HJ 633-2026 §4.2.6 "向上进位取整"; applied to 2012 as CNEMC
  practice [L]).
- Primary pollutant: when AQI > 50, the pollutant(s) with the largest IAQI, ties all listed;
  exceeding pollutant: IAQI > 100 (HJ 633-2012 §4.3; HJ 633-2026 §4.3.1).
- HJ 633-2012 Table 1 notes: SO2 1-h above 800 ug m-3 -> SO2 IAQI from the 24-h mean; O3 8-h above
  800 ug m-3 -> O3 IAQI from the 1-h value. Daily report: 24-h means, daily max 1-h O3 and MDA8 O3
  (§5.1). Real-time report: 1-h values; particles from 24-h running means (CNEMC practice [L]).
- HJ 633-2026 (in force 2026-03-01): Table 3 changes the IAQI-100 breakpoints of 24-h PM2.5/PM10
  to 60/120 ug m-3; particles in real-time reports use the hourly mean on the 24-h breakpoints;
  an AQI <= 100 computed from incomplete data is published as NA (§5.3.1). Three independent
  transcriptions of Table 3 give its notes as "SO2 1-h > 800: IAQI 200" and "O3 8-h > 800: IAQI
  300", and the 1-h O3 limit as real-time only; we follow them **[L: the official MEE text could
  not be read here; flip the RULES entry if the text says otherwise]**.

US EPA (40 CFR 58 App. G Table 2 as revised 2024-03-06): concentrations in the EPA's units
(PM ug m-3; O3, CO ppm; SO2, NO2 ppb), truncated before lookup (O3 to 0.001 ppm, PM2.5 and CO to
0.1, PM10, SO2, NO2 to 1) and the index rounded to the nearest integer. O3 8-h above 0.200 ppm and
SO2 1-h above 304 ppb have no index (NaN: use O3 1-h / SO2 24-h); O3 1-h below 0.125 ppm has none.

Above the top of a column the index is capped at 500 ("beyond the index"), except where a rule
above says otherwise.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Mapping

import numpy as np
import pandas as pd

from . import averaging as avg

log = logging.getLogger(__name__)

STANDARDS = ("HJ633-2026", "HJ633-2012", "EPA-2024")
POLLUTANTS = ("SO2", "NO2", "PM10", "PM2.5", "CO", "O3")
PERIODS = ("1h", "8h", "24h")
#: Date from which HJ 633-2026 is in force (MEE announcement of 2026-02-25).
HJ633_2026_IN_FORCE = _dt.date(2026, 3, 1)
#: Date from which HJ 633-2012 was in force nationwide (issued 2012-02-29 "2016-01-01 实施",
#: together with GB 3095-2012; cover page of the standard). Before it China published the API.
HJ633_2012_IN_FORCE = _dt.date(2016, 1, 1)
#: Names of the standards as written in tables, file attributes and warnings.
STANDARD_LABELS = {"HJ633-2026": "HJ 633-2026 (China)", "HJ633-2012": "HJ 633-2012 (China)",
                   "EPA-2024": "US EPA AQI 2024 (40 CFR 58 App. G)"}
#: Upper AQI bounds of categories 1-5 (category 6 above the last); same numbers in HJ 633 and EPA.
CATEGORY_UPPER = (50, 100, 150, 200, 300)

#: Category names and RGB colours (HJ 633 Annex A; EPA AQI technical assistance document).
CATEGORY_NAMES = {
    "HJ": ("Excellent 优", "Good 良", "Lightly polluted 轻度污染", "Moderately polluted 中度污染",
           "Heavily polluted 重度污染", "Severely polluted 严重污染"),
    "EPA": ("Good", "Moderate", "Unhealthy for Sensitive Groups", "Unhealthy", "Very Unhealthy",
            "Hazardous"),
}
CATEGORY_COLORS = {
    "HJ": ((0, 228, 0), (255, 255, 0), (255, 126, 0), (255, 0, 0), (153, 0, 76), (126, 0, 35)),
    "EPA": ((0, 228, 0), (255, 255, 0), (255, 126, 0), (255, 0, 0), (143, 63, 151), (126, 0, 35)),
}


@dataclass(frozen=True)
class Rules:
    """The non-tabular rules of one standard (see the module docstring for sources)."""

    table: str                    #: CSV file in aqforecast/data
    family: str                   #: "HJ" or "EPA"
    rounding: str                 #: "ceil" (HJ) or "nearest" (EPA)
    truncate: Mapping[str, int] | None  #: decimals kept before lookup (EPA), per pollutant
    so2_1h_above_top: str         #: "use_24h" | "cap" | "nan"
    o3_8h_above_top: str          #: "use_1h" | "cap" | "nan"
    daily_o3_1h: bool             #: daily AQI includes the daily maximum 1-h O3
    realtime_pm: str              #: "running_24h" | "hourly" particle input to the real-time AQI
    realtime_o3_8h: bool          #: real-time AQI includes the 8-h running mean O3
    incomplete_na: bool           #: AQI <= 100 from incomplete data published as NA


RULES: dict[str, Rules] = {
    "HJ633-2012": Rules("aqi_breakpoints_hj633_2012.csv", "HJ", "ceil", None, "use_24h", "use_1h",
                        True, "running_24h", True, False),
    "HJ633-2026": Rules("aqi_breakpoints_hj633_2026.csv", "HJ", "ceil", None, "cap", "cap",
                        False, "hourly", False, True),
    "EPA-2024": Rules("aqi_breakpoints_epa_2024.csv", "EPA", "nearest",
                      {"O3": 3, "PM2.5": 1, "CO": 1, "PM10": 0, "SO2": 0, "NO2": 0},
                      "nan", "nan", False, "hourly", False, False),
}

#: Indicators (column name -> (pollutant, period)) of the China daily and real-time AQI.
DAILY_INDICATORS = {"SO2_24h": ("SO2", "24h"), "NO2_24h": ("NO2", "24h"), "CO_24h": ("CO", "24h"),
                    "PM10_24h": ("PM10", "24h"), "PM2.5_24h": ("PM2.5", "24h"),
                    "O3_8h": ("O3", "8h"), "O3_1h": ("O3", "1h")}


def _check_standard(standard: str) -> Rules:
    try:
        return RULES[standard]
    except KeyError:
        raise ValueError(f"unknown AQI standard {standard!r}; expected one of {STANDARDS}") from None


@lru_cache(maxsize=None)
def breakpoint_table(standard: str) -> pd.DataFrame:
    """The standard's breakpoint table: pollutant, period, units, c_lo, c_hi, iaqi_lo, iaqi_hi."""
    rules = _check_standard(standard)
    with resources.files("aqforecast").joinpath("data", rules.table).open("r") as fh:
        table = pd.read_csv(fh, comment="#")
    return table


@lru_cache(maxsize=None)
def _segments(standard: str, pollutant: str, period: str):
    if pollutant not in POLLUTANTS:
        raise ValueError(f"unknown pollutant {pollutant!r}; expected one of {POLLUTANTS}")
    if period not in PERIODS:
        raise ValueError(f"unknown averaging period {period!r}; expected one of {PERIODS}")
    t = breakpoint_table(standard)
    t = t[(t.pollutant == pollutant) & (t.period == period)].sort_values("c_lo")
    if t.empty:
        have = sorted({p for p in breakpoint_table(standard).query("pollutant == @pollutant").period})
        raise ValueError(f"{standard} has no {period} breakpoints for {pollutant} "
                         f"(it has: {', '.join(have) or 'none'})")
    return tuple(t[c].to_numpy(float) for c in ("c_lo", "c_hi", "iaqi_lo", "iaqi_hi")) + (
        t.units.iloc[0],)


def units(pollutant: str, period: str, standard: str = "HJ633-2026") -> str:
    """Concentration units the standard's table expects for this pollutant and period."""
    return _segments(standard, pollutant, period)[4]


def _truncate(c: np.ndarray, decimals: int) -> np.ndarray:
    scale = 10.0 ** decimals
    return np.floor(c * scale + 1e-9) / scale


def iaqi(pollutant: str, concentration, period: str, standard: str = "HJ633-2026"):
    """Individual air-quality index of one pollutant.

    Parameters
    ----------
    pollutant: "SO2", "NO2", "PM10", "PM2.5", "CO" or "O3".
    concentration: scalar or array. HJ 633: ug m-3 (CO mg m-3). EPA-2024: PM ug m-3, O3 and CO ppm,
        SO2 and NO2 ppb. NaN or negative -> NaN.
    period: "1h", "8h" or "24h" averaging time of the concentration.
    standard: "HJ633-2026" (default), "HJ633-2012" or "EPA-2024".

    Returns
    -------
    float array of the input's shape (a numpy scalar for scalar input): the integer-valued IAQI,
    or NaN where the standard defines none (see the module docstring for the >800 rules).
    """
    rules = _check_standard(standard)
    c_lo, c_hi, i_lo, i_hi, _ = _segments(standard, pollutant, period)
    c = np.array(concentration, dtype=float)
    out = np.full(c.shape, np.nan)
    valid = np.isfinite(c) & (c >= 0)
    cv = np.where(valid, c, 0.0)
    if rules.truncate is not None:
        cv = _truncate(cv, rules.truncate[pollutant])
    k = np.clip(np.searchsorted(c_hi, cv, side="left"), 0, len(c_hi) - 1)
    inside = valid & (cv <= c_hi[-1]) & (cv >= c_lo[k])
    raw = (i_hi[k] - i_lo[k]) / (c_hi[k] - c_lo[k]) * (cv - c_lo[k]) + i_lo[k]
    if rules.rounding == "ceil":
        rounded = np.ceil(raw - 1e-9) + 0.0  # +0.0: no -0; exact breakpoints stay integers despite round-off
    else:
        rounded = np.floor(raw + 0.5)
    out[inside] = rounded[inside]
    above = valid & (cv > c_hi[-1])
    if np.any(above):
        rule = "cap500"
        if pollutant == "SO2" and period == "1h":
            rule = rules.so2_1h_above_top
        elif pollutant == "O3" and period == "8h":
            rule = rules.o3_8h_above_top
        if rule == "cap":
            out[above] = i_hi[-1]
        elif rule == "cap500":
            out[above] = 500.0
        # "use_24h"/"use_1h"/"nan": no index from this column (the caller substitutes)
    return out[()] if out.ndim == 0 else out


def category(aqi_value, standard: str = "HJ633-2026"):
    """AQI category level 1-6 (HJ 633: 优 ... 严重污染; EPA: Good ... Hazardous).

    Level boundaries 0-50, 51-100, 101-150, 151-200, 201-300, >300 (HJ 633-2012 Table 2,
    HJ 633-2026; EPA Table 2); the input is the reported integer AQI. NaN -> NaN. Float array
    (numpy scalar for scalar input).
    """
    _check_standard(standard)
    a = np.array(aqi_value, dtype=float)
    level = 1.0 + sum((a > u).astype(float) for u in CATEGORY_UPPER)
    level = np.where(np.isfinite(a), level, np.nan)
    return level[()] if level.ndim == 0 else level


def category_name(level: int, standard: str = "HJ633-2026") -> str:
    """Name of category ``level`` (1-6)."""
    return CATEGORY_NAMES[_check_standard(standard).family][int(level) - 1]


def standard_for_date(date) -> str:
    """China's AQI standard in force on ``date``: HJ633-2026 from 2026-03-01, HJ633-2012 before."""
    d = pd.Timestamp(date).date()
    return "HJ633-2026" if d >= HJ633_2026_IN_FORCE else "HJ633-2012"


def normalize_standard(name: str | None) -> str | None:
    """Internal name (:data:`STANDARDS`) of a standard written as in the config
    (``hj633-2026``, ``hj633-2012``, ``epa-2024``), with spaces or dashes (``HJ 633—2012``), or
    already internal; ``None``, ``"hj633"`` and ``"auto"`` mean the HJ 633 version in force on
    each date (returned as None)."""
    if name is None:
        return None
    key = str(name).strip().upper().replace(" ", "")
    for dash in ("\u2014", "\u2013", "_"):
        key = key.replace(dash, "-")
    if key in ("HJ633", "AUTO"):
        return None
    if key == "EPA2024":
        key = "EPA-2024"
    if key in STANDARDS:
        return key
    raise ValueError(f"unknown AQI standard {name!r}; expected hj633-2026, hj633-2012, epa-2024 "
                     f"or hj633 (the version in force on each date)")


def standard_label(standard: str) -> str:
    """Human-readable name of a standard (tables, attributes, maps)."""
    _check_standard(standard)
    return STANDARD_LABELS[standard]


def standard_warnings(standard: str | None, dates) -> list[str]:
    """Warnings for applying ``standard`` (internal name; None = the HJ 633 version in force)
    to the local ``dates``: HJ 633 before 2016-01-01 (no HJ 633 was in force), HJ 633-2026
    before 2026-03-01 and HJ 633-2012 from 2026-03-01 (not the version in force then)."""
    d = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(dates))))
    if d.empty:
        return []
    first, last = d.min().date(), d.max().date()
    out = []
    if standard is not None and _check_standard(standard).family == "EPA":
        return out
    if first < HJ633_2012_IN_FORCE:
        used = standard or "HJ633-2012"
        out.append(f"the forecast dates ({first} .. {last}) fall before any HJ 633 was in force "
                   f"(HJ 633-2012 took effect on {HJ633_2012_IN_FORCE}; China then published "
                   f"the API): the AQI is computed with {STANDARD_LABELS[used]} all the same")
    if standard == "HJ633-2026" and first < HJ633_2026_IN_FORCE:
        out.append(f"HJ 633-2026 applied to dates from {first}: it is in force only from "
                   f"{HJ633_2026_IN_FORCE} (HJ 633-2012 before; products.aqi_standard: "
                   f"hj633-2012 or hj633 to follow it)")
    if standard == "HJ633-2012" and last >= HJ633_2026_IN_FORCE:
        out.append(f"HJ 633-2012 applied to dates up to {last}: HJ 633-2026 replaced it on "
                   f"{HJ633_2026_IN_FORCE}")
    return out


@dataclass
class AQIResult:
    """AQI from a set of IAQIs (arrays share one shape)."""

    aqi: np.ndarray                #: max IAQI, NaN where no IAQI is available
    primary: np.ndarray            #: object array: "PM2.5" or "PM2.5,PM10" (ties), "" if AQI <= 50
    exceeding: np.ndarray          #: object array of pollutants with IAQI > 100, comma-separated
    category: np.ndarray           #: level 1-6 (NaN where AQI is NaN)


def aqi(iaqis: Mapping[str, object], standard: str = "HJ633-2026") -> AQIResult:
    """Combine IAQIs (name -> scalar/array, NaN = not available) into AQI and primary pollutant(s).

    AQI = max over the available IAQIs (HJ 633 eq. (2)); primary pollutant(s) when AQI > 50 are
    all names whose IAQI equals the AQI (HJ 633-2012 §4.3, HJ 633-2026 §4.3.1).
    """
    if not iaqis:
        raise ValueError("aqi() needs at least one IAQI")
    names = list(iaqis)
    stack = np.stack([np.asarray(iaqis[n], dtype=float) for n in names])
    with np.errstate(invalid="ignore"):
        anyvalid = np.isfinite(stack).any(axis=0)
        top = np.where(anyvalid, np.nanmax(np.where(np.isfinite(stack), stack, -np.inf), axis=0),
                       np.nan)
    flat_stack = stack.reshape(len(names), -1)
    flat_top = np.atleast_1d(top).ravel()
    primary = np.empty(flat_top.size, dtype=object)
    exceeding = np.empty(flat_top.size, dtype=object)
    for j in range(flat_top.size):
        col = flat_stack[:, j]
        t = flat_top[j]
        primary[j] = (",".join(n for n, v in zip(names, col) if v == t)
                      if np.isfinite(t) and t > 50 else "")
        exceeding[j] = ",".join(n for n, v in zip(names, col) if np.isfinite(v) and v > 100)
    shape = np.shape(top)
    return AQIResult(aqi=top, primary=primary.reshape(shape), exceeding=exceeding.reshape(shape),
                     category=category(top, standard))


def _standard_per_row(index: pd.Index, standard: str | None) -> np.ndarray:
    if standard is not None:
        _check_standard(standard)
        return np.full(len(index), standard, dtype=object)
    return np.array([standard_for_date(t) for t in index], dtype=object)


def _pollutant_label(col: str, family: str) -> str:
    """Primary-pollutant name of an IAQI column: HJ drops ``_24h``; EPA keeps only O3's
    averaging period (``O3_8h``/``O3_1h``), as HJ does."""
    name = col.removeprefix("iaqi_")
    if family == "EPA":
        p, _, per = name.partition("_")
        return name if p == "O3" and per else p
    return name.removesuffix("_24h")


def _finish(table: pd.DataFrame, iaqi_cols: list[str], stds: np.ndarray,
            complete: np.ndarray) -> pd.DataFrame:
    table["standard"] = stds
    family = RULES[stds[0]].family if len(stds) else "HJ"
    res = aqi({_pollutant_label(c, family): table[c].to_numpy() for c in iaqi_cols})
    table["aqi"] = res.aqi
    table["category"] = res.category
    table["primary"] = res.primary
    table["exceeding"] = res.exceeding
    table["complete"] = complete
    na_rule = np.array([RULES[s].incomplete_na for s in stds], dtype=bool)
    table["aqi_published"] = np.where(na_rule & ~complete & (res.aqi <= 100), np.nan, res.aqi)
    return table


def daily_aqi(hourly: pd.DataFrame, standard: str | None = None) -> pd.DataFrame:
    """Daily AQI of one station from hourly concentrations (HJ 633 daily report).

    Parameters
    ----------
    hourly: DataFrame on an hourly DatetimeIndex (local time, hour-beginning) with any of the
        columns SO2, NO2, CO, O3, PM10, PM2.5 in ug m-3 (CO mg m-3). A ``station`` column, if
        present, is grouped on (the result then has a (station, date) MultiIndex).
    standard: "HJ633-2012"/"HJ633-2026", or None for the version in force on each day.

    Returns
    -------
    DataFrame indexed by day: the indicator concentrations (SO2_24h ... PM2.5_24h, O3_8h = MDA8,
    O3_1h = daily max 1-h), their IAQIs (iaqi_*), aqi, category, primary, exceeding, complete
    (all six pollutants valid), aqi_published (NaN where HJ 633-2026 §5.3.1 withholds it) and
    standard. Validity rules: :mod:`aqforecast.products.averaging`.
    """
    if "station" in hourly.columns:
        parts = {st: daily_aqi(g.drop(columns="station"), standard)
                 for st, g in hourly.groupby("station", sort=True)}
        return pd.concat(parts, names=["station", "date"])
    if standard is not None and _check_standard(standard).family == "EPA":
        return _daily_aqi_epa(hourly, standard)
    conc = _daily_indicators(hourly)
    if conc.empty:
        raise ValueError("daily_aqi needs at least one of SO2, NO2, CO, O3, PM10, PM2.5 columns")
    conc.index.name = "date"
    stds = _standard_per_row(conc.index, standard)
    iaqi_cols = []
    for col, (p, per) in DAILY_INDICATORS.items():
        if col not in conc:
            continue
        vals = np.full(len(conc), np.nan)
        for s in np.unique(stds):
            m = stds == s
            vals[m] = iaqi(p, conc[col].to_numpy()[m], per, s)
            if col == "O3_8h" and RULES[s].o3_8h_above_top == "use_1h":
                sub = m & (conc[col].to_numpy() > 800)
                vals[sub] = iaqi("O3", conc["O3_1h"].to_numpy()[sub], "1h", s)
            if col == "O3_1h" and not RULES[s].daily_o3_1h:
                vals[m] = np.nan
        conc[f"iaqi_{col}"] = vals
        iaqi_cols.append(f"iaqi_{col}")
    six = [c for c in ("SO2_24h", "NO2_24h", "CO_24h", "PM10_24h", "PM2.5_24h", "O3_8h")]
    complete = np.ones(len(conc), dtype=bool)
    for c in six:
        complete &= conc[c].notna().to_numpy() if c in conc else False
    return _finish(conc, iaqi_cols, stds, complete)


def realtime_aqi(hourly: pd.DataFrame, standard: str | None = None) -> pd.DataFrame:
    """Hourly (real-time) AQI of one station (HJ 633 real-time report).

    SO2, NO2, CO, O3 enter as 1-h values. Particles: HJ 633-2012 -> 24-h running mean (>= 20
    valid hours, CNEMC practice [L]); HJ 633-2026 -> the 1-h value on the 24-h breakpoints.
    HJ 633-2012 also includes the 8-h running mean O3. SO2 1-h above 800 ug m-3: HJ 633-2012 uses
    the 24-h running-mean SO2 IAQI; HJ 633-2026 counts 200. Input and ``standard`` as in
    :func:`daily_aqi`; output indexed by hour with columns ``<pollutant>``, ``iaqi_*``, aqi, ...
    """
    if "station" in hourly.columns:
        parts = {st: realtime_aqi(g.drop(columns="station"), standard)
                 for st, g in hourly.groupby("station", sort=True)}
        return pd.concat(parts, names=["station", "time"])
    h = avg.regular_hourly(hourly[[c for c in POLLUTANTS if c in hourly]].astype(float))
    if h.shape[1] == 0:
        raise ValueError("realtime_aqi needs at least one of SO2, NO2, CO, O3, PM10, PM2.5 columns")
    stds = _standard_per_row(h.index, standard)
    if standard is not None and RULES[standard].family == "EPA":
        from . import epa

        ind = epa.hourly_indicators({p: h[p].to_numpy() for p in h.columns})
        out = pd.DataFrame(ind, index=h.index)
        so2_24 = avg.running_mean_24h(h["SO2"]).to_numpy() if "SO2" in h else None
        vals = epa.iaqis(ind, so2_24h=so2_24)
        for k, v in vals.items():
            out[k] = v
        complete = np.ones(len(h), dtype=bool)
        for c in ("PM2.5", "PM10", "O3_8h", "CO_8h", "SO2", "NO2"):
            complete &= out[c].notna().to_numpy() if c in out else False
        out.index.name = "time"
        return _finish(out, list(vals), stds, complete)
    out = pd.DataFrame(index=h.index)
    iaqi_cols = []
    for p in h.columns:
        x1 = h[p].to_numpy()
        vals = np.full(len(h), np.nan)
        used = np.full(len(h), np.nan)
        for s in np.unique(stds):
            m = stds == s
            r = RULES[s]
            if p in ("PM10", "PM2.5"):
                x = avg.running_mean_24h(h[p]).to_numpy() if r.realtime_pm == "running_24h" else x1
                vals[m] = iaqi(p, x[m], "24h", s)
            else:
                x = x1
                vals[m] = iaqi(p, x[m], "1h", s)
                if p == "SO2" and r.so2_1h_above_top == "use_24h":
                    sub = m & (x1 > 800)
                    vals[sub] = iaqi("SO2", avg.running_mean_24h(h[p]).to_numpy()[sub], "24h", s)
            used[m] = x[m]
        out[p] = used
        out[f"iaqi_{p}"] = vals
        iaqi_cols.append(f"iaqi_{p}")
    if "O3" in h and any(RULES[s].realtime_o3_8h for s in np.unique(stds)):
        o8 = avg.running_mean_8h(h["O3"]).to_numpy()
        vals = np.full(len(h), np.nan)
        for s in np.unique(stds):
            m = stds == s
            if RULES[s].realtime_o3_8h:
                vals[m] = iaqi("O3", o8[m], "8h", s)
                if RULES[s].o3_8h_above_top == "use_1h":
                    sub = m & (o8 > 800)
                    vals[sub] = iaqi("O3", h["O3"].to_numpy()[sub], "1h", s)
        out["O3_8h"] = o8
        out["iaqi_O3_8h"] = vals
        iaqi_cols.append("iaqi_O3_8h")
    complete = np.ones(len(h), dtype=bool)
    for p in POLLUTANTS:
        complete &= out[p].notna().to_numpy() if p in out else False
    out.index.name = "time"
    return _finish(out, iaqi_cols, stds, complete)


def _daily_indicators(hourly: pd.DataFrame) -> pd.DataFrame:
    """The HJ 633 daily indicators of an hourly table (24-h means, O3 MDA8 and daily max 1-h)
    with the validity rules of :mod:`aqforecast.products.averaging`."""
    conc = pd.DataFrame()
    for p in ("SO2", "NO2", "CO", "PM10", "PM2.5"):
        if p in hourly:
            conc[f"{p}_24h"] = avg.daily_mean(hourly[p])
    if "O3" in hourly:
        conc["O3_8h"] = avg.daily_max_8h(hourly["O3"])
        conc["O3_1h"] = avg.daily_max(hourly["O3"])
    return conc


def _daily_aqi_epa(hourly: pd.DataFrame, standard: str) -> pd.DataFrame:
    """:func:`daily_aqi` under the US EPA index (indicators: :mod:`.epa`)."""
    from . import epa

    conc = _daily_indicators(hourly)
    if "CO" in hourly:
        conc["CO_8h"] = avg.daily_max_8h(hourly["CO"])
    for p in ("SO2", "NO2"):
        if p in hourly:
            conc[f"{p}_1h"] = avg.daily_max(hourly[p])
    if conc.empty:
        raise ValueError("daily_aqi needs at least one of SO2, NO2, CO, O3, PM10, PM2.5 columns")
    conc.index.name = "date"
    vals = epa.daily({c: conc[c].to_numpy() for c in conc.columns})
    for k, v in vals.items():
        conc[k] = v
    complete = np.ones(len(conc), dtype=bool)
    for c in ("PM2.5_24h", "PM10_24h", "O3_8h", "CO_8h", "SO2_1h", "NO2_1h"):
        complete &= conc[c].notna().to_numpy() if c in conc else False
    return _finish(conc, list(vals), np.full(len(conc), standard, dtype=object), complete)


def concentration_breaks(pollutant: str, period: str, standard: str = "HJ633-2026") -> np.ndarray:
    """Concentrations at the category limits (IAQI 50, 100, 150, 200, 300) for colour scales."""
    c_lo, c_hi, i_lo, i_hi, _ = _segments(standard, pollutant, period)
    return np.array([c_hi[np.flatnonzero(i_hi == u)[0]] for u in CATEGORY_UPPER
                     if np.any(i_hi == u)])
