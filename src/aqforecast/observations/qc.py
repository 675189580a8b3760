"""Quality control of hourly station series: flags, never silent deletion.

:func:`qc_flags` returns, for each value of each checked species, an integer bit mask (0 = passed):

- ``MISSING`` (1): no value;
- ``RANGE`` (2): outside the plausible range of :data:`PLAUSIBLE_RANGES` (negative values, or
  above the top of the HJ 633 tables by a margin);
- ``SPIKE`` (4): an isolated jump — the value differs from *both* neighbours by more than
  ``max(spike_min_jump, spike_k * robust sigma of the station's hourly differences)`` in the same
  direction [D];
- ``STUCK`` (8): part of a run of at least ``stuck_hours`` identical values above
  ``stuck_floor`` (instrument hang; flat runs at low values near the detection limit are common
  and not flagged) [D];
- ``UNIT`` (16): the station's median is implausible for the declared unit (e.g. CO whose median
  exceeds 20 "mg m-3" is almost certainly in ug m-3) — the whole station series is flagged;
- ``INCONSISTENT`` (32): PM2.5 greater than PM10 by more than 10 % + 5 ug m-3 at the same hour.

:func:`check_units` raises on a units declaration that is not the expected one.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

MISSING, RANGE, SPIKE, STUCK, UNIT, INCONSISTENT = 1, 2, 4, 8, 16, 32
FLAG_NAMES = {MISSING: "missing", RANGE: "range", SPIKE: "spike", STUCK: "stuck", UNIT: "unit",
              INCONSISTENT: "pm25_gt_pm10"}

#: Plausible hourly ranges in HJ 633 units (ug m-3; CO mg m-3) [D: top of the HJ 633 1-h/24-h
#: tables x ~2.5, generous enough for dust storms (PM10 up to ~2000 in Beijing)].
PLAUSIBLE_RANGES = {"PM2.5": (0.0, 1500.0), "PM10": (0.0, 3000.0), "SO2": (0.0, 2620.0),
                    "NO2": (0.0, 1500.0), "CO": (0.0, 60.0), "O3": (0.0, 1200.0)}
#: Median above which the unit is suspect (median of an hourly station series) [D].
UNIT_MEDIAN_MAX = {"CO": 20.0, "PM2.5": 600.0, "PM10": 1000.0, "SO2": 800.0, "NO2": 600.0,
                   "O3": 600.0}
EXPECTED_UNITS = {"PM2.5": "ug m-3", "PM10": "ug m-3", "SO2": "ug m-3", "NO2": "ug m-3",
                  "O3": "ug m-3", "CO": "mg m-3"}
#: Floors under which a stuck run is not flagged (a few detection-limit steps) [D].
STUCK_FLOOR = {"PM2.5": 10.0, "PM10": 20.0, "SO2": 10.0, "NO2": 10.0, "CO": 1.5, "O3": 10.0}
SPIKE_MIN_JUMP = {"PM2.5": 100.0, "PM10": 200.0, "SO2": 100.0, "NO2": 100.0, "CO": 3.0,
                  "O3": 100.0}


def check_units(units: dict, species=None) -> None:
    """Raise ValueError if ``units`` (column -> unit) declares a species in an unexpected unit."""
    for sp in species or EXPECTED_UNITS:
        if sp in units and units[sp] != EXPECTED_UNITS[sp]:
            raise ValueError(f"{sp} is declared in {units[sp]!r}; QC and AQI expect "
                             f"{EXPECTED_UNITS[sp]!r} (convert before use)")


def _runs(values: np.ndarray) -> np.ndarray:
    """Length of the run of equal consecutive finite values each element belongs to."""
    n = values.size
    out = np.ones(n, dtype=int)
    if n == 0:
        return out
    same = np.r_[False, (values[1:] == values[:-1]) & np.isfinite(values[1:])]
    start = np.flatnonzero(~same)
    lengths = np.diff(np.r_[start, n])
    return np.repeat(lengths, lengths)


def flag_series(x: np.ndarray, species: str, *, spike_k: float = 6.0,
                stuck_hours: int = 8) -> np.ndarray:
    """Flags (bit mask) of one station's hourly series of ``species`` (time ordered, gap-free)."""
    x = np.asarray(x, dtype=float)
    flags = np.zeros(x.shape, dtype=np.int64)
    miss = ~np.isfinite(x)
    flags[miss] |= MISSING
    lo, hi = PLAUSIBLE_RANGES[species]
    with np.errstate(invalid="ignore"):
        flags[(x < lo) | (x > hi)] |= RANGE
    # spikes: both neighbours differ strongly in the same direction
    if x.size >= 3:
        d = np.diff(x)
        dd = d[np.isfinite(d)]
        sigma = 1.4826 * np.median(np.abs(dd - np.median(dd))) if dd.size else np.nan
        thr = max(SPIKE_MIN_JUMP[species], spike_k * sigma if np.isfinite(sigma) else 0.0)
        up = np.r_[np.nan, d]          # x[t] - x[t-1]
        down = np.r_[-d, np.nan]       # x[t] - x[t+1]
        with np.errstate(invalid="ignore"):
            spike = ((up > thr) & (down > thr)) | ((up < -thr) & (down < -thr))
        flags[spike] |= SPIKE
    runs = _runs(x)
    with np.errstate(invalid="ignore"):
        stuck = (runs >= stuck_hours) & (x > STUCK_FLOOR[species])
    flags[stuck] |= STUCK
    med = np.nanmedian(x) if np.isfinite(x).any() else np.nan
    if np.isfinite(med) and med > UNIT_MEDIAN_MAX[species]:
        log.warning("%s median %.3g exceeds %.3g: unit suspect", species, med,
                    UNIT_MEDIAN_MAX[species])
        flags[~miss] |= UNIT
    return flags


def qc_flags(df: pd.DataFrame, species=None, **kwargs) -> pd.DataFrame:
    """QC flags of a long station frame (columns time, station, species...; see readers).

    Returns a DataFrame aligned with ``df`` (same index) holding one int flag column per checked
    species. Each station is checked on its own, in time order (gaps break stuck runs only where
    a value is missing). ``kwargs`` go to :func:`flag_series`.
    """
    if "units" in df.attrs:
        check_units(df.attrs["units"], [s for s in (species or EXPECTED_UNITS) if s in df])
    species = [s for s in (species or PLAUSIBLE_RANGES) if s in df.columns]
    if not species:
        raise ValueError(f"no species to check; columns are {list(df.columns)}")
    flags = pd.DataFrame(0, index=df.index, columns=species, dtype=np.int64)
    groups = df.groupby("station", sort=False) if "station" in df else [(None, df)]
    for _, g in groups:
        g = g.sort_values("time") if "time" in g else g
        for sp in species:
            flags.loc[g.index, sp] = flag_series(g[sp].to_numpy(float), sp, **kwargs)
    if "PM2.5" in df and "PM10" in df:
        with np.errstate(invalid="ignore"):
            bad = (df["PM2.5"] > 1.1 * df["PM10"] + 5.0).to_numpy()
        for sp in ("PM2.5", "PM10"):
            if sp in flags:
                flags.loc[bad, sp] |= INCONSISTENT
    return flags


def mask_flagged(df: pd.DataFrame, flags: pd.DataFrame,
                 reject: int = RANGE | SPIKE | STUCK | UNIT) -> pd.DataFrame:
    """Copy of ``df`` with values whose flag has any bit of ``reject`` set to NaN."""
    out = df.copy()
    for sp in flags.columns:
        out.loc[(flags[sp].to_numpy() & reject) != 0, sp] = np.nan
    return out


def summarize_flags(flags: pd.DataFrame) -> pd.DataFrame:
    """Count of values per species carrying each flag bit (rows: flag name)."""
    return pd.DataFrame({sp: {name: int(((flags[sp] & bit) != 0).sum())
                              for bit, name in FLAG_NAMES.items()} for sp in flags.columns})
