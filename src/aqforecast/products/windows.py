"""Lead-time windows of the forecast products and aggregation of hourly fields over them.

The forecast writes hourly fields at leads 1, 2, ..., H hours after the cycle start (the
instantaneous state at each valid time). Products are issued by lead window (DESIGN.md, issue 6):
by default every 3 h to 72 h, every 12 h to 168 h and every 24 h to 360 h. A segment
``(until_hours, every_hours, aggregation)`` that follows the previous segment's end ``u0`` cuts
``(u0, until_hours]`` into consecutive windows ``(a, a + every_hours]``.

A window ``(a, b]`` holds the hourly values at leads ``a+1 ... b`` (b - a values); its product is

- ``mean``: the mean of those values (NaN-skipping; NaN when none is valid);
- ``max``: their maximum;
- ``instant``: the value at lead ``b``.

:func:`max_running_mean` gives the largest trailing running mean (e.g. the 8-h ozone mean) whose
averaging period lies wholly inside each window: 8-h means ending at leads ``a+8 ... b``, each
over ``e-7 ... e``; windows shorter than the period get NaN. For a 24-h window that is the 17
windows of the MDA8 rule (:mod:`.averaging`); at least ``min_hours`` valid hours per running mean
(GB 3095-2012: 6 of 8), and at least one valid running mean per window.

Everything here is numpy on arrays whose first axis is the lead (hours), any trailing shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["Window", "DEFAULT_WINDOWS", "AGGREGATIONS", "lead_windows", "window_members",
           "aggregate", "running_mean", "max_running_mean"]

AGGREGATIONS = ("mean", "max", "instant")
#: Default product windows: (until_hours, every_hours, aggregation).
DEFAULT_WINDOWS = ((72, 3, "mean"), (168, 12, "mean"), (360, 24, "mean"))


@dataclass(frozen=True)
class Window:
    """One lead window ``(start_hours, end_hours]`` and how its hours are aggregated."""

    start_hours: int
    end_hours: int
    aggregation: str = "mean"

    @property
    def length_hours(self) -> int:
        return self.end_hours - self.start_hours

    @property
    def leads(self) -> np.ndarray:
        """Leads (h) of the hourly values in the window: start+1 ... end."""
        return np.arange(self.start_hours + 1, self.end_hours + 1)


def _segment(spec) -> tuple[int, int, str]:
    if isinstance(spec, Mapping):
        return (int(spec["until_hours"]), int(spec["every_hours"]),
                str(spec.get("aggregation", "mean")))
    if hasattr(spec, "until_hours"):
        return int(spec.until_hours), int(spec.every_hours), str(getattr(spec, "aggregation",
                                                                         "mean"))
    until, every, *rest = spec
    return int(until), int(every), str(rest[0]) if rest else "mean"


def lead_windows(spec: Iterable | None = None, lead_hours: int | None = None) -> list[Window]:
    """The lead windows of a product specification.

    Parameters
    ----------
    spec: segments in lead order, each a config ``LeadWindow``, a mapping with ``until_hours``,
        ``every_hours`` and optional ``aggregation``, or a tuple ``(until, every[, aggregation])``;
        None for :data:`DEFAULT_WINDOWS`.
    lead_hours: forecast length (h); windows ending after it are dropped (the output does not
        reach them). None keeps every window.

    Returns windows in lead order. Raises ValueError when a segment's step does not divide it,
    segments do not increase, or an aggregation is unknown.
    """
    out: list[Window] = []
    last = 0
    for seg in (DEFAULT_WINDOWS if spec is None else spec):
        until, every, how = _segment(seg)
        if how not in AGGREGATIONS:
            raise ValueError(f"unknown window aggregation {how!r}; expected one of {AGGREGATIONS}")
        if until <= last:
            raise ValueError(f"window segments must increase: until_hours={until} after {last}")
        if every < 1 or (until - last) % every:
            raise ValueError(f"every_hours={every} does not divide the segment {last}..{until} h")
        for a in range(last, until, every):
            if lead_hours is not None and a + every > lead_hours:
                break
            out.append(Window(a, a + every, how))
        last = until
    return out


def window_members(windows: Sequence[Window], leads) -> list[np.ndarray]:
    """For each window, the positions in ``leads`` (h, any order) of its hourly values."""
    leads = np.asarray(leads)
    members = []
    for w in windows:
        if w.aggregation == "instant":
            members.append(np.flatnonzero(leads == w.end_hours))
        else:
            members.append(np.flatnonzero((leads > w.start_hours) & (leads <= w.end_hours)))
    return members


def aggregate(values, leads, windows: Sequence[Window]) -> np.ndarray:
    """Aggregate ``values`` (nlead, ...) over each window -> (nwindow, ...) float64.

    NaN values are skipped; a window with no valid value gives NaN.
    """
    v = np.asarray(values, dtype=float)
    if v.shape[0] != len(leads):
        raise ValueError(f"values have {v.shape[0]} leads, leads has {len(leads)}")
    out = np.full((len(windows),) + v.shape[1:], np.nan)
    for k, (w, idx) in enumerate(zip(windows, window_members(windows, leads))):
        if idx.size == 0:
            continue
        sub = v[idx]
        valid = np.isfinite(sub).any(axis=0)
        if w.aggregation == "mean":
            red = np.nansum(sub, axis=0) / np.maximum(np.isfinite(sub).sum(axis=0), 1)
        elif w.aggregation == "max":
            red = np.max(np.where(np.isfinite(sub), sub, -np.inf), axis=0)
        else:
            red = sub[0]
        out[k] = np.where(valid, red, np.nan)
    return out


def running_mean(values, hours: int, min_hours: int) -> np.ndarray:
    """Trailing running mean along axis 0 of an hourly series: out[t] averages t-hours+1 ... t.

    NaN where fewer than ``min_hours`` values of the window are valid (positions before the
    series start count as missing, like pandas ``rolling(hours, min_periods=min_hours)``).
    """
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    csum = np.cumsum(np.where(ok, v, 0.0), axis=0)
    ccnt = np.cumsum(ok, axis=0)
    pad = np.zeros((1,) + v.shape[1:])
    csum = np.concatenate([pad, csum])
    ccnt = np.concatenate([pad, ccnt])
    n = v.shape[0]
    lo = np.maximum(np.arange(n) + 1 - hours, 0)
    hi = np.arange(n) + 1
    s = csum[hi] - csum[lo]
    c = ccnt[hi] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c >= min_hours, s / np.maximum(c, 1), np.nan)


def max_running_mean(values, leads, windows: Sequence[Window], hours: int = 8,
                     min_hours: int = 6) -> np.ndarray:
    """Largest ``hours``-h running mean lying wholly inside each window -> (nwindow, ...).

    ``leads`` must be consecutive hours (the running mean needs an hourly series). Windows
    shorter than ``hours`` (and ``instant`` windows) give NaN.
    """
    leads = np.asarray(leads)
    if leads.size > 1 and np.any(np.diff(leads) != 1):
        raise ValueError("running means need consecutive hourly leads")
    v = np.asarray(values, dtype=float)
    r = running_mean(v, hours, min_hours)
    out = np.full((len(windows),) + v.shape[1:], np.nan)
    for k, w in enumerate(windows):
        if w.aggregation == "instant" or w.length_hours < hours:
            continue
        idx = np.flatnonzero((leads >= w.start_hours + hours) & (leads <= w.end_hours))
        if idx.size == 0:
            continue
        sub = r[idx]
        valid = np.isfinite(sub).any(axis=0)
        out[k] = np.where(valid, np.max(np.where(np.isfinite(sub), sub, -np.inf), axis=0),
                          np.nan)
    return out
