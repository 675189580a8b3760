"""The generic station CSV: the layout any network can be exported to.

Columns (header required, any order, extra columns ignored)::

    station,time,species,value,units[,lon,lat]

* ``station`` -- an identifier (text);
* ``time`` -- ISO 8601 with a UTC offset or ``Z`` (``2026-07-20T08:00:00+08:00``), the
  hour-beginning stamp of the hourly mean as in the national networks; a time without an offset
  is an error (local or UTC cannot be guessed);
* ``species`` -- ``PM2.5`` (or ``PM25``), ``PM10``, ``SO2``, ``NO2``, ``CO``, ``O3``;
* ``value`` -- a finite number; an empty field, ``NA`` or ``-9999`` is missing;
* ``units`` -- ``ug m-3`` (also ``µg/m3``, ``ug/m3``), ``mg m-3`` (``mg/m3``), or for the gases
  ``ppb`` / ``ppm``. Values are converted to the HJ 633 units (``ug m-3``; CO ``mg m-3``);
  mole fractions with the reporting reference state of China's ambient standard for gases
  (GB 3095-2012 amendment 1 (2018): 298.15 K, 1013.25 hPa) -- the state CNEMC concentrations refer
  to, so every source in one ``obs.nc`` is on the same footing;
* ``lon``, ``lat`` -- degrees; optional (else from the station list), constant per station.

Returns the wide long-form frame of the other readers (``time`` naive **UTC**, ``station``, one
column per species, ``lon``/``lat`` when given); errors name the file, line and column
(:class:`~aqforecast.observations.readers.ObservationFormatError`); negative or absurd values are
kept for QC (RANGE flags).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from .. import species as species_registry
from .readers import (MISSING_TOKENS, SPECIES_UNITS, ObservationFormatError, _check_duplicates,
                      read_text)

__all__ = ["read_generic_csv", "GENERIC_COLUMNS", "REFERENCE_STATE"]

GENERIC_COLUMNS = ("station", "time", "species", "value", "units")
#: Reference state of reported gas concentrations (GB 3095-2012 amendment 2018): K, Pa.
REFERENCE_STATE = (298.15, 101325.0)
_SPECIES = {"PM2.5": "PM2.5", "PM25": "PM2.5", "PM2_5": "PM2.5", "PM10": "PM10", "SO2": "SO2",
            "NO2": "NO2", "CO": "CO", "O3": "O3"}
_MASS_UNITS = {"ug m-3": 1.0, "ug/m3": 1.0, "µg/m3": 1.0, "µg m-3": 1.0, "ug m**-3": 1.0,
               "mg m-3": 1000.0, "mg/m3": 1000.0}  # -> ug m-3
_MOLE_UNITS = {"ppb": 1.0, "ppbv": 1.0, "ppm": 1000.0, "ppmv": 1000.0}  # -> ppb


def _convert(value: float, sp: str, unit: str) -> float | None:
    """``value`` in ``unit`` -> the HJ 633 unit of ``sp``; None for an unknown unit."""
    u = unit.strip()
    if u in _MASS_UNITS:
        ug = value * _MASS_UNITS[u]
    elif u.lower() in _MOLE_UNITS and sp not in ("PM2.5", "PM10"):
        ug = float(species_registry.ppb_to_ugm3(value * _MOLE_UNITS[u.lower()], sp,
                                                *REFERENCE_STATE))
    else:
        return None
    return ug / 1000.0 if SPECIES_UNITS[sp] == "mg m-3" else ug


def read_generic_csv(path, encoding: str | None = None) -> pd.DataFrame:
    """Read a generic station CSV (module docstring); times in UTC."""
    path = Path(path)
    text = read_text(path, encoding)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                         skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ObservationFormatError(path, 1, None, None, "a header line") from None
    except pd.errors.ParserError as exc:
        raise ObservationFormatError(path, None, None, None,
                                     f"comma-separated fields ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in GENERIC_COLUMNS if c not in df.columns]
    if missing:
        raise ObservationFormatError(path, 1, None, ",".join(df.columns),
                                     f"a header with {','.join(GENERIC_COLUMNS)}[,lon,lat] "
                                     f"(missing {', '.join(missing)})")
    rows = []
    for i, rec in enumerate(df.itertuples(index=False)):
        line = i + 2
        r = dict(zip(df.columns, rec))
        st = str(r["station"]).strip()
        if not st:
            raise ObservationFormatError(path, line, "station", "", "a station identifier")
        sp = _SPECIES.get(str(r["species"]).strip().upper().replace(" ", ""))
        if sp is None:
            raise ObservationFormatError(path, line, "species", r["species"],
                                         f"one of {', '.join(sorted(set(_SPECIES.values())))}")
        t = _utc(path, line, str(r["time"]).strip())
        raw = str(r["value"]).strip()
        if raw in MISSING_TOKENS:
            value = np.nan
        else:
            try:
                value = float(raw)
            except ValueError:
                value = np.nan
            if not np.isfinite(value):
                raise ObservationFormatError(path, line, "value", raw,
                                             "a finite number (or empty/NA/-9999 for missing)")
            conv = _convert(value, sp, str(r["units"]))
            if conv is None:
                raise ObservationFormatError(
                    path, line, "units", r["units"],
                    "ug m-3 or mg m-3" + ("" if sp in ("PM2.5", "PM10") else ", ppb or ppm"))
            value = conv
        row = {"time": t, "station": st, "species": sp, "value": value}
        for c, lo, hi in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
            if c in df.columns and str(r[c]).strip() not in MISSING_TOKENS:
                try:
                    v = float(str(r[c]))
                except ValueError:
                    v = np.nan
                if not (np.isfinite(v) and lo <= v <= hi):
                    raise ObservationFormatError(path, line, c, r[c],
                                                 f"degrees in [{lo:g}, {hi:g}]")
                row[c] = v
        rows.append(row)
    if not rows:
        raise ObservationFormatError(path, None, None, None, "at least one data row")
    long = pd.DataFrame(rows)
    dup = long.duplicated(["station", "time", "species"], keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ObservationFormatError(path, i + 2, "station/time/species",
                                     tuple(long.iloc[i][["station", "time", "species"]]),
                                     "one value per station, time and species")
    wide = long.pivot(index=["time", "station"], columns="species", values="value")
    wide = wide.reset_index()
    wide.columns.name = None
    for c in ("lon", "lat"):
        if c in long:
            per = long.groupby("station")[c].agg(lambda s: s.dropna().unique())
            for st, vals in per.items():
                if len(vals) > 1:
                    raise ObservationFormatError(path, None, c, list(vals),
                                                 f"one {c} per station ({st!r} has several)")
            wide[c] = wide["station"].map(lambda s, p=per: p[s][0] if len(p[s]) else np.nan)
    wide = _check_duplicates(wide, path)
    wide.attrs["units"] = {sp: SPECIES_UNITS[sp] for sp in wide.columns if sp in SPECIES_UNITS}
    wide.attrs["source"] = str(path)
    wide.attrs["time_zone"] = "UTC"
    return wide


def _utc(path: Path, line: int, text: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(text)
    except (ValueError, OverflowError):
        raise ObservationFormatError(path, line, "time", text,
                                     "an ISO 8601 time with a UTC offset, e.g. "
                                     "2026-07-20T08:00:00+08:00") from None
    if t.tzinfo is None:
        raise ObservationFormatError(path, line, "time", text,
                                     "a UTC offset or Z (local or UTC cannot be guessed)")
    t = t.tz_convert("UTC").tz_localize(None)
    if not 1900 <= t.year <= 2100:
        raise ObservationFormatError(path, line, "time", text, "a year in 1900..2100")
    return t
