"""Temporal profiles: month-of-year, day-of-week and hour-of-day factors per sector.

Allocation of an annual total ``E_year`` (Mg) to the hour starting at local time t (SMOKE-style
month/week/diurnal factors, made exactly conservative):

    E(t) = E_year * M[m] / sum(M)                        month m of t (local)
                  * W[dow(t)] / sum_{d in month m} W[dow(d)]    day share within that month
                  * H[h(t)] / sum(H)                     hour share within the day

so the hours of every local calendar month sum to its month total, and a local calendar year to
``E_year`` exactly (tested). A monthly inventory supplies ``E_month`` directly and only the day
and hour factors apply. Rates are constant within each hour. Hour-of-day, day-of-week and month
are taken in LOCAL time: China Standard Time UTC+8 by default (``utc_offset_hours``), or the
run's local clock (``local_time``: the config's ``time.local_utc_offset_h`` / ``time.timezone``,
:class:`aqforecast.config.localtime.LocalTime`; with a daylight-saving zone the profile hours are
wall-clock hours).
Public holidays (Spring Festival) are not treated.

Default profiles (:func:`default_profiles`), sector -> TNO/MACC category of Denier van der Gon
et al. (2011), "Description of current temporal emission patterns and sensitivity of predicted AQ
for temporal emission patterns", EU FP7 MACC report D-EMIS 1.3 (the profiles CAMS-TEMPO replaced
and many regional CTMs still use):

* power -> SNAP 1 (power plants); industry -> SNAP 3/4 (industrial combustion/processes; month
  and week of the industrial-combustion row, flat diurnal of the process row blended 50/50 with the
  industrial-combustion diurnal); transport -> SNAP 7 (road transport, two rush-hour peaks);
  residential -> SNAP 2 (small combustion) diurnal and weekly;
* residential month: the SNAP 2 heating cycle (Jan 1.7 ... Jul 0.2) with its amplitude halved
  [design decision: the sample region lies south of China's district-heating line, so winter
  residential emissions rise less than in central Europe];
* agriculture: diurnal of the TNO NH3-manure row (peak 13-14 LT), flat week, and a month cycle
  peaking in summer [design decision, following the qualitative finding that Chinese agricultural
  NH3 peaks in June-August with fertiliser application and temperature (Kang et al. 2016, ACP 16,
  2043) -- not a transcribed table].

These are literature defaults; override them per sector with a profile CSV (:meth:`from_csv`):
columns ``sector, kind, index, factor`` with kind ``month`` (index 1-12), ``weekday`` (1 = Monday
.. 7 = Sunday) or ``hour`` (0-23 local); factors are relative (normalised here).
"""

from __future__ import annotations

import calendar
import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from ..config.localtime import LocalTime
from ..io import InputFileError

__all__ = ["SectorProfile", "TemporalProfiles", "default_profiles", "CHINA_UTC_OFFSET_HOURS",
           "as_utc"]

CHINA_UTC_OFFSET_HOURS = 8.0

# Denier van der Gon et al. (2011) TNO/MACC factors (mean 1). Months Jan..Dec, week Mon..Sun,
# hours 0..23 local time.
_TNO_MONTH = {
    "snap1": [1.2, 1.15, 1.05, 1.0, 0.9, 0.85, 0.8, 0.875, 0.95, 1.0, 1.075, 1.15],
    "snap34": [1.1, 1.075, 1.05, 1.0, 0.95, 0.9, 0.93, 0.95, 0.97, 1.0, 1.025, 1.05],
    "snap2": [1.7, 1.5, 1.3, 1.0, 0.7, 0.4, 0.2, 0.4, 0.7, 1.05, 1.4, 1.65],
    "snap7": [0.88, 0.92, 0.98, 1.03, 1.05, 1.06, 1.01, 1.02, 1.06, 1.05, 1.01, 0.93],
}
_TNO_WEEK = {
    "snap1": [1.06, 1.06, 1.06, 1.06, 1.06, 0.85, 0.85],
    "snap34": [1.08, 1.08, 1.08, 1.08, 1.08, 0.80, 0.80],
    "snap2": [1.08, 1.08, 1.08, 1.08, 1.08, 0.80, 0.80],
    "snap7": [1.02, 1.06, 1.08, 1.10, 1.14, 0.81, 0.79],
}
_TNO_HOUR = {
    "snap1": [0.79, 0.72, 0.72, 0.71, 0.74, 0.80, 0.92, 1.08, 1.19, 1.22, 1.21, 1.21,
              1.17, 1.15, 1.14, 1.13, 1.10, 1.07, 1.04, 1.02, 1.02, 1.01, 0.96, 0.88],
    "snap34": [0.75, 0.75, 0.78, 0.82, 0.88, 0.95, 1.02, 1.09, 1.16, 1.22, 1.28, 1.30,
               1.22, 1.24, 1.25, 1.16, 1.08, 1.01, 0.95, 0.90, 0.85, 0.81, 0.78, 0.75],
    "snap2": [0.38, 0.36, 0.36, 0.36, 0.37, 0.50, 1.19, 1.53, 1.57, 1.56, 1.35, 1.16,
              1.07, 1.06, 1.00, 0.98, 0.99, 1.12, 1.41, 1.52, 1.39, 1.35, 1.00, 0.42],
    "snap7": [0.19, 0.09, 0.06, 0.05, 0.09, 0.22, 0.86, 1.84, 1.86, 1.41, 1.24, 1.20,
              1.32, 1.44, 1.45, 1.59, 2.03, 2.08, 1.51, 1.06, 0.74, 0.62, 0.61, 0.44],
    "nh3": [0.60, 0.60, 0.60, 0.60, 0.60, 0.65, 0.75, 0.90, 1.10, 1.25, 1.45, 1.60,
            1.80, 1.75, 1.70, 1.55, 1.35, 1.10, 0.90, 0.75, 0.65, 0.60, 0.60, 0.60],
}
# [D] summer-peaking agricultural NH3 month cycle (see module docstring).
_AGRI_MONTH = [0.55, 0.60, 0.85, 1.00, 1.10, 1.35, 1.45, 1.40, 1.15, 0.90, 0.90, 0.75]


@dataclass
class SectorProfile:
    """Month (12), weekday (7, Monday first) and hour (24, local) factors; any positive scale."""

    month: np.ndarray = field(default_factory=lambda: np.ones(12))
    weekday: np.ndarray = field(default_factory=lambda: np.ones(7))
    hour: np.ndarray = field(default_factory=lambda: np.ones(24))

    def __post_init__(self):
        for name, n in (("month", 12), ("weekday", 7), ("hour", 24)):
            a = np.asarray(getattr(self, name), dtype=float)
            if a.shape != (n,) or not np.all(np.isfinite(a)) or np.any(a < 0) or a.sum() <= 0:
                raise ValueError(f"{name} profile needs {n} finite factors >= 0 with a positive "
                                 f"sum, got {a!r}")
            setattr(self, name, a)


def default_profiles() -> dict[str, SectorProfile]:
    """Literature default profiles for the five MEIC sectors (module docstring)."""
    half = 0.5 * (np.asarray(_TNO_HOUR["snap34"]) + 1.0)   # 50/50 with the flat process row
    res_month = 1.0 + 0.5 * (np.asarray(_TNO_MONTH["snap2"]) - 1.0)
    return {
        "power": SectorProfile(_TNO_MONTH["snap1"], _TNO_WEEK["snap1"], _TNO_HOUR["snap1"]),
        "industry": SectorProfile(_TNO_MONTH["snap34"], _TNO_WEEK["snap34"], half),
        "residential": SectorProfile(res_month, _TNO_WEEK["snap2"], _TNO_HOUR["snap2"]),
        "transport": SectorProfile(_TNO_MONTH["snap7"], _TNO_WEEK["snap7"], _TNO_HOUR["snap7"]),
        "agriculture": SectorProfile(_AGRI_MONTH, np.ones(7), _TNO_HOUR["nh3"]),
    }


def as_utc(t) -> datetime:
    """An aware UTC datetime from a datetime (naive = UTC), np.datetime64 or pandas Timestamp."""
    if isinstance(t, np.datetime64):
        t = datetime.fromtimestamp(t.astype("datetime64[s]").astype(np.int64), tz=timezone.utc)
    elif hasattr(t, "to_pydatetime"):
        t = t.to_pydatetime()
    if not isinstance(t, datetime):
        raise TypeError(f"time must be a datetime/np.datetime64/pandas Timestamp, got {type(t)}")
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


class TemporalProfiles:
    """Sector temporal profiles; gives the fraction of an annual/monthly total in a given hour.

    ``profiles``: {sector: SectorProfile}; sectors not listed use ``fallback`` (flat unless
    given). ``utc_offset_hours``: local time = UTC + offset (China: +8); ``local_time`` (a
    :class:`~aqforecast.config.localtime.LocalTime`, e.g. ``cfg.time.local_time``) wins if given.
    """

    def __init__(self, profiles: dict[str, SectorProfile] | None = None,
                 utc_offset_hours: float = CHINA_UTC_OFFSET_HOURS,
                 fallback: SectorProfile | None = None, local_time: LocalTime | None = None):
        self.profiles = dict(default_profiles() if profiles is None else profiles)
        self.clock = local_time if local_time is not None else LocalTime(utc_offset_hours)
        self.utc_offset = timedelta(hours=self.clock.utc_offset_h)
        self.fallback = fallback or SectorProfile()

    def profile(self, sector: str) -> SectorProfile:
        return self.profiles.get(sector, self.fallback)

    def local_time(self, t) -> datetime:
        """Naive local datetime of a UTC time (naive inputs are taken as UTC)."""
        return self.clock.local_datetime(as_utc(t))

    def _day_hour_fraction(self, p: SectorProfile, lt: datetime) -> float:
        ndays = calendar.monthrange(lt.year, lt.month)[1]
        first_dow = calendar.weekday(lt.year, lt.month, 1)
        dows = (first_dow + np.arange(ndays)) % 7
        day = p.weekday[lt.weekday()] / p.weekday[dows].sum()
        return float(day * p.hour[lt.hour] / p.hour.sum())

    def fraction_of_month(self, sector: str, t) -> float:
        """Share of the local calendar month's total emitted in the hour containing ``t``."""
        return self._day_hour_fraction(self.profile(sector), self.local_time(t))

    def fraction_of_year(self, sector: str, t) -> float:
        """Share of the annual total emitted in the hour containing ``t`` (local calendar)."""
        p = self.profile(sector)
        lt = self.local_time(t)
        return float(p.month[lt.month - 1] / p.month.sum()) * self._day_hour_fraction(p, lt)

    def factors(self, sectors, t, period: str = "year") -> np.ndarray:
        """Hourly rate factors, s-1, per sector: total (Mg per period) x factor = Mg s-1.

        ``period`` is the inventory period ("year" or "month").
        """
        f = self.fraction_of_year if period == "year" else self.fraction_of_month
        return np.array([f(s, t) for s in sectors]) / 3600.0

    @classmethod
    def from_csv(cls, path: str | Path, utc_offset_hours: float = CHINA_UTC_OFFSET_HOURS,
                 base: dict[str, SectorProfile] | None = None,
                 local_time: LocalTime | None = None) -> "TemporalProfiles":
        """Profiles from a CSV (``sector, kind, index, factor``), over the defaults (or ``base``)."""
        path = Path(path)
        if not path.exists():
            raise InputFileError(f"{path}: temporal-profile file does not exist")
        profs = {k: SectorProfile(v.month.copy(), v.weekday.copy(), v.hour.copy())
                 for k, v in (base if base is not None else default_profiles()).items()}
        sizes = {"month": (12, 1), "weekday": (7, 1), "hour": (24, 0)}
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(n, r) for n, r in enumerate(csv.reader(f), start=1)
                    if r and not r[0].lstrip().startswith("#")]
        if not rows or [c.strip() for c in rows[0][1]] != ["sector", "kind", "index", "factor"]:
            raise InputFileError(f"{path}, line 1: header must be 'sector,kind,index,factor'")
        for n, r in rows[1:]:
            if len(r) != 4:
                raise InputFileError(f"{path}, line {n}: {len(r)} fields, expected 4 "
                                     "(sector, kind, index, factor)")
            sector, kind, idx, fac = (c.strip() for c in r)
            if kind not in sizes:
                raise InputFileError(f"{path}, line {n}, column 'kind': {kind!r}; expected "
                                     "month, weekday or hour")
            size, first = sizes[kind]
            try:
                i, v = int(idx) - first, float(fac)
            except ValueError:
                raise InputFileError(f"{path}, line {n}: index {idx!r} / factor {fac!r} are not "
                                     "numbers") from None
            if not 0 <= i < size:
                raise InputFileError(f"{path}, line {n}, column 'index': {idx}; expected "
                                     f"{first}..{size - 1 + first} for kind {kind}")
            if not (np.isfinite(v) and v >= 0):
                raise InputFileError(f"{path}, line {n}, column 'factor': {fac}; expected >= 0")
            p = profs.setdefault(sector, SectorProfile())
            getattr(p, kind)[i] = v
        for s, p in profs.items():
            SectorProfile(p.month, p.weekday, p.hour)  # re-validate sums
        return cls(profs, utc_offset_hours, local_time=local_time)
