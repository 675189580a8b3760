"""Local time of a run: the one conversion from UTC to the local clock.

Every local calendar day and local hour the system computes (the products' daily AQI and
``lead_day``, the emission temporal profiles, the scenario city days, the bulletin) goes through
:class:`LocalTime`, built from the config's ``time.local_utc_offset_h`` (a fixed offset, default
+8 h: China Standard Time) or ``time.timezone`` (an IANA name such as ``Europe/Paris``, which wins
and follows daylight-saving time through :mod:`zoneinfo`).

Times inside the model are UTC and naive (``datetime64``); local times are naive wall-clock
times. With a daylight-saving zone the local hours are not evenly spaced: the spring-forward day
has 23 hours and the autumn day repeats one wall-clock hour (25 hours); the products treat that
explicitly (:func:`aqforecast.products.surface.to_daily`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_UTC_OFFSET_H", "LocalTime", "check_timezone"]

#: China Standard Time (Beijing), the default local time of the products and emission profiles.
DEFAULT_UTC_OFFSET_H = 8.0


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def check_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA time zone, else raise ValueError saying so."""
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}: expected an IANA name such as "
                         f"'Asia/Shanghai', 'Europe/Paris' or 'UTC' (or leave it out and give "
                         f"local_utc_offset_h)") from None
    return name


@dataclass(frozen=True)
class LocalTime:
    """A local clock: ``timezone`` (IANA name, with DST) if given, else UTC + ``utc_offset_h``."""

    utc_offset_h: float = DEFAULT_UTC_OFFSET_H
    timezone: str | None = None

    def __post_init__(self):
        if self.timezone is not None:
            check_timezone(self.timezone)
        # the config allows -12 .. 14 h; products' 24-h lead blocks use any shift of the day
        if not -24.0 < float(self.utc_offset_h) < 24.0:
            raise ValueError(f"utc_offset_h = {self.utc_offset_h}: expected -24 .. 24 hours")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg) -> LocalTime:
        """The local time of a :class:`~aqforecast.config.RunConfig` (its ``time`` section)."""
        t = cfg.time
        return cls(float(t.local_utc_offset_h), t.timezone)

    @classmethod
    def coerce(cls, value) -> LocalTime:
        """A LocalTime from a LocalTime, a number of hours east of UTC, or a zone name."""
        if isinstance(value, LocalTime):
            return value
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls(timezone=value)
        return cls(float(value))

    # ------------------------------------------------------------------ description
    @property
    def is_fixed(self) -> bool:
        """True for a fixed offset (no DST): local days always have 24 hours."""
        return self.timezone is None

    @property
    def label(self) -> str:
        """``UTC+8`` / ``UTC-3.5`` for a fixed offset, the zone name otherwise."""
        if self.timezone is not None:
            return self.timezone
        return f"UTC{self.utc_offset_h:+g}"

    # ------------------------------------------------------------------ conversion
    def to_local(self, utc) -> pd.DatetimeIndex:
        """Naive local wall-clock times of naive UTC times (array-like or scalar -> index)."""
        t = pd.DatetimeIndex(np.atleast_1d(np.asarray(utc, dtype="datetime64[ns]")))
        if self.timezone is None:
            return t + pd.Timedelta(hours=self.utc_offset_h)
        return t.tz_localize("UTC").tz_convert(self.timezone).tz_localize(None)

    def to_utc(self, local) -> pd.DatetimeIndex:
        """Naive UTC times of naive local wall-clock times (a repeated autumn hour is taken as
        its first occurrence, a skipped spring hour shifts forward to the first valid time)."""
        t = pd.DatetimeIndex(np.atleast_1d(np.asarray(local, dtype="datetime64[ns]")))
        if self.timezone is None:
            return t - pd.Timedelta(hours=self.utc_offset_h)
        loc = t.tz_localize(self.timezone, ambiguous=np.ones(len(t), dtype=bool),
                            nonexistent="shift_forward")
        return loc.tz_convert("UTC").tz_localize(None)

    def offset_hours(self, utc) -> np.ndarray:
        """Local - UTC in hours at each of the UTC times."""
        t = pd.DatetimeIndex(np.atleast_1d(np.asarray(utc, dtype="datetime64[ns]")))
        return ((self.to_local(t) - t) / pd.Timedelta(hours=1)).to_numpy(float)

    def local_datetime(self, t) -> datetime:
        """Naive local :class:`datetime` of one UTC time (naive inputs are UTC; aware inputs are
        converted)."""
        if isinstance(t, np.datetime64):
            t = pd.Timestamp(t).to_pydatetime()
        elif isinstance(t, pd.Timestamp):
            t = t.to_pydatetime()
        if not isinstance(t, datetime):
            raise TypeError(f"time must be a datetime/np.datetime64/pandas Timestamp, "
                            f"got {type(t)}")
        t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        if self.timezone is None:
            return (t + timedelta(hours=self.utc_offset_h)).replace(tzinfo=None)
        return t.astimezone(_zone(self.timezone)).replace(tzinfo=None)

    def day_start_utc(self, days) -> pd.DatetimeIndex:
        """UTC instants of local midnight of the given local dates."""
        return self.to_utc(pd.DatetimeIndex(np.atleast_1d(
            np.asarray(days, dtype="datetime64[ns]"))).floor("D"))
