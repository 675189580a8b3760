"""Emission scaling factors by region x sector x pollutant, with optional time windows.

One data format serves the forecast's ``--scaling FILE``, the Kalman-filter inversion's output and
a converted scenario (CONTRACTS.md, "Scaling table"). A :class:`ScalingTable` is a list of ROWS

    (region, sector, pollutant, factor, start, end, extra columns)

* ``region``: a configured region name, the remainder region ``outside``, or ``*`` (all regions,
  ``outside`` included);
* ``sector``: an inventory sector name or ``*``;
* ``pollutant``: an inventory pollutant of :data:`~aqforecast.emissions.inventory.POLLUTANTS`
  (SO2, NOx, CO, NMVOC, NH3, PM25, PMC) or ``*``. The usual spellings (NOx, PM2.5, VOC, ...) are
  accepted and stored canonically (:func:`~aqforecast.emissions.inventory.canonical_pollutant`);
  ``PM10`` stands for both PM25 and PMC (a PM10 cut also cuts the PM2.5 inside it) and becomes
  two rows;
* ``factor``: dimensionless multiplier of the emission mass, finite and >= 0;
* ``start``/``end``: UTC times (aware :class:`datetime.datetime` in UTC) or None. A row with
  neither holds for the whole run; otherwise it holds on ``[start, end)`` (a missing bound is
  unbounded on that side; ``end > start``);
* ``extra``: any further columns (e.g. ``sigma_ln`` of the inversion), {column: value} with the
  row's non-empty cells only, kept and written back.

Semantics: the factor of a source (region, sector, pollutant) at time t is the PRODUCT of the
factors of every row that matches it (``*`` matches everything) and is active at t; unlisted
sources keep factor 1. Two rows may have the same key (two time windows, or a scenario measure
and an inversion factor): their factors multiply. Row order does not change the result beyond
floating-point round-off (the product is formed in row order).

``resolve(regions, sectors, pollutants, time)`` gives the dense ``(nregion, nsector, npollutant)``
factors at ``time``; ``time=None`` means "the rows that hold for the whole run" (rows without a
window) only. It is cheap to call every model step: per set of names the table precomputes the
dense factors of every interval between consecutive :meth:`ScalingTable.window_edges`, and a call
is a binary search.

Files: :func:`read_scaling_table` / :func:`write_scaling_table`, CSV or NetCDF by suffix (layouts
in their docstrings). Every error on bad input is an :class:`ScalingTableError` (an
:class:`~aqforecast.io.InputFileError`, also a ``KeyError`` for unknown names) naming the file, the
row (CSV: line number) and the column.
"""

from __future__ import annotations

import bisect
import csv
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from ..io import InputFileError, atomic_path, global_attrs
from ..io.text import TextDecodeError, read_text
from .inventory import POLLUTANTS, canonical_pollutant
from .regions import OUTSIDE
from .temporal import as_utc

__all__ = ["ScalingRow", "ScalingTable", "ScalingTableError", "read_scaling_table",
           "write_scaling_table", "WILDCARD"]

#: Matches every region (``outside`` included), sector or pollutant.
WILDCARD = "*"

#: The columns every scaling table has, in file order; ``start``/``end`` are optional.
KEY_COLUMNS = ("region", "sector", "pollutant")
REQUIRED_COLUMNS = KEY_COLUMNS + ("factor",)
TIME_COLUMNS = ("start", "end")

CSV_SUFFIXES = (".csv",)
NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CF_UNITS = "seconds since 1970-01-01 00:00:00"


class ScalingTableError(InputFileError, KeyError):
    """A scaling table (file or in-memory) is malformed or names something unknown.

    An :class:`~aqforecast.io.InputFileError` (so the command line exits 2 with the message) and a
    ``KeyError`` (unknown names used to raise ``KeyError``). The message names the file, the row
    (CSV: ``line N``; NetCDF and DataFrames: ``row N``, 0-based) and the column.
    """

    __str__ = Exception.__str__       # not KeyError's repr-quoting


@dataclass(frozen=True)
class ScalingRow:
    """One row of a scaling table (module docstring); ``start``/``end`` aware UTC or None.

    ``source`` (the file) and ``origin`` (``"line 4"``, ``"row 2"``, ...) locate the row for
    error messages, also after tables are combined; they take no part in comparisons.
    """

    region: str
    sector: str
    pollutant: str
    factor: float
    start: datetime | None = None
    end: datetime | None = None
    extra: dict = field(default_factory=dict)
    origin: str | None = field(default=None, compare=False)
    source: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.region, self.sector, self.pollutant)

    @property
    def windowed(self) -> bool:
        """True if the row has a start or an end (it does not hold for the whole run)."""
        return self.start is not None or self.end is not None

    def active(self, time) -> bool:
        """True if the row holds at ``time`` (UTC; None = the whole run: rows without window)."""
        if time is None:
            return not self.windowed
        t = to_utc(time)
        return (self.start is None or self.start <= t) and (self.end is None or t < self.end)


def to_utc(value) -> datetime:
    """An aware UTC datetime from a datetime, np.datetime64, pandas Timestamp or ISO 8601 string.

    Naive values are UTC; values with a ``Z`` or an offset are converted to UTC.
    """
    if isinstance(value, str):
        s = value.strip()
        if not s:
            raise ValueError("empty time")
        return as_utc(datetime.fromisoformat(s))
    return as_utc(value)


class ScalingTable:
    """Rows of (region, sector, pollutant, factor, start, end, extra); module docstring.

    ``ScalingTable({(region, sector, pollutant): factor, ...})`` builds a table of whole-run rows
    (the older dict form); :meth:`from_rows`, :meth:`from_dataframe` and
    :func:`read_scaling_table` build general tables. A table is immutable; ``source`` is the file
    it was read from (None if built in memory) and appears in every error message.
    """

    def __init__(self, factors: Mapping[tuple[str, str, str], float] | None = None, *,
                 rows: Iterable[ScalingRow | Mapping] = (), source: str | None = None):
        self.source = None if source is None else str(source)
        out: list[ScalingRow] = []
        for key, v in (factors or {}).items():
            if not (isinstance(key, tuple) and len(key) == 3):
                raise ScalingTableError(f"{_where(self.source, None)}: key {key!r} must be "
                                        f"(region, sector, pollutant)")
            rec = dict(zip(KEY_COLUMNS, key), factor=v)
            out += _parse_record(rec, self.source, f"key {key!r}")
        for n, row in enumerate(rows):
            if isinstance(row, ScalingRow):
                rec = {"region": row.region, "sector": row.sector, "pollutant": row.pollutant,
                       "factor": row.factor, "start": row.start, "end": row.end, **row.extra}
                out += _parse_record(rec, row.source or self.source, row.origin or f"row {n}")
            else:
                out += _parse_record(dict(row), self.source, f"row {n}")
        self.rows: tuple[ScalingRow, ...] = tuple(out)
        self._cache: dict = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_rows(cls, rows: Iterable[ScalingRow | Mapping],
                  source: str | None = None) -> "ScalingTable":
        """From :class:`ScalingRow` objects or mappings with the column names as keys
        (``region, sector, pollutant, factor`` and optionally ``start, end`` and extras)."""
        return cls(rows=rows, source=source)

    @classmethod
    def from_dataframe(cls, df, source: str | None = None) -> "ScalingTable":
        """From a DataFrame with columns region, sector, pollutant (or species), factor and
        optionally start, end (datetimes or ISO strings; NaT/NaN/empty = unbounded) and extra
        columns. Errors name the 0-based row position and the column."""
        cols = [str(c) for c in df.columns]
        pcol = "species" if "species" in cols and "pollutant" not in cols else "pollutant"
        need = ["region", "sector", pcol, "factor"]
        missing = [c for c in need if c not in cols]
        if missing:
            raise ScalingTableError(f"{source or 'scaling DataFrame'}: missing column(s) "
                                    f"{', '.join(missing)}; has {', '.join(cols)}")
        records = []
        for rec in df.to_dict("records"):
            rec = {str(k): v for k, v in rec.items()}
            if pcol == "species":
                rec["pollutant"] = rec.pop("species")
            records.append(rec)
        return cls(rows=records, source=source)

    @classmethod
    def coerce(cls, obj) -> "ScalingTable":
        """Accept None (no scaling), a ScalingTable, a {key: factor} dict or a DataFrame."""
        if obj is None:
            return _EMPTY
        if isinstance(obj, ScalingTable):
            return obj
        if hasattr(obj, "columns"):
            return cls.from_dataframe(obj)
        return cls(obj)

    @classmethod
    def concat(cls, tables: Iterable["ScalingTable"], source: str | None = None
               ) -> "ScalingTable":
        """All rows of ``tables`` in one table: the factors multiply (e.g. a scenario applied on
        top of the inversion's posterior)."""
        return cls(rows=[r for t in tables for r in cls.coerce(t).rows], source=source)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __repr__(self) -> str:
        src = f", source={self.source!r}" if self.source else ""
        return f"ScalingTable({len(self.rows)} rows{src})"

    @property
    def extra_columns(self) -> tuple[str, ...]:
        """Names of the extra columns, in order of first appearance."""
        names: list[str] = []
        for r in self.rows:
            names += [k for k in r.extra if k not in names]
        return tuple(names)

    def window_edges(self) -> tuple[datetime, ...]:
        """Sorted distinct times (aware UTC) at which some row starts or ends: the only times at
        which resolved factors can change. Empty if no row has a window."""
        edges = {t for r in self.rows for t in (r.start, r.end) if t is not None}
        return tuple(sorted(edges))

    def check(self, regions: Iterable[str], sectors: Iterable[str],
              pollutants: Iterable[str] = POLLUTANTS) -> "ScalingTable":
        """Raise :class:`ScalingTableError` naming the file, row and column of the first row
        whose region, sector or pollutant is not among the given names (``*`` and ``outside``
        are always accepted). Returns the table, so a forecast can refuse a bad table before any
        work starts: ``table = read_scaling_table(p).check(regions, sectors)``."""
        regions, sectors, pollutants = tuple(regions), tuple(sectors), tuple(pollutants)
        for r in self.rows:
            for col, name, known in (("region", r.region, regions + (OUTSIDE,)),
                                     ("sector", r.sector, sectors),
                                     ("pollutant", r.pollutant, pollutants)):
                if name != WILDCARD and name not in known:
                    listed = ", ".join(dict.fromkeys(known))
                    where = _where(r.source or self.source, r.origin)
                    raise ScalingTableError(f"{where}, column {col!r}: unknown {col} {name!r}; "
                                            f"known: {listed} (or '*')")
        return self

    def resolve(self, regions: Iterable[str], sectors: Iterable[str],
                pollutants: Iterable[str] = POLLUTANTS, time=None) -> np.ndarray:
        """Dense factors ``(nregion, nsector, npollutant)`` (dimensionless) at ``time``.

        Each entry is the product of the factors of the rows that match it and are active at
        ``time`` (UTC datetime/np.datetime64/Timestamp/ISO string; naive = UTC): a row with a
        window is active on ``[start, end)``. ``time=None``: only the rows without a window (the
        factors valid for the whole run). Unknown names raise as :meth:`check`; a row for
        ``outside`` matches nothing if ``outside`` is not among ``regions``. The returned array
        is shared and read-only (copy it to modify).
        """
        key = (tuple(regions), tuple(sectors), tuple(pollutants))
        plan = self._cache.get(key)
        if plan is None:
            plan = self._cache[key] = self._plan(*key)
        edges, dense, whole = plan
        if time is None:
            return whole
        return dense[bisect.bisect_right(edges, to_utc(time))]

    def _plan(self, regions, sectors, pollutants):
        """(edges, dense factors per interval (nedge+1, ...), whole-run factors)."""
        self.check(regions, sectors, pollutants)
        edges = list(self.window_edges())
        shape = (len(regions), len(sectors), len(pollutants))
        dense = np.ones((len(edges) + 1,) + shape)
        whole = np.ones(shape)
        for r in self.rows:
            if r.region == OUTSIDE and OUTSIDE not in regions:
                continue
            sel = tuple(slice(None) if name == WILDCARD else known.index(name)
                        for name, known in ((r.region, regions), (r.sector, sectors),
                                            (r.pollutant, pollutants)))
            # interval n covers [edges[n-1], edges[n]); a row is active on intervals [i0, i1)
            i0 = 0 if r.start is None else edges.index(r.start) + 1
            i1 = len(edges) + 1 if r.end is None else edges.index(r.end) + 1
            dense[(slice(i0, i1),) + sel] *= r.factor
            if not r.windowed:
                whole[sel] *= r.factor
        dense.setflags(write=False)
        whole.setflags(write=False)
        return edges, dense, whole

    def to_dataframe(self):
        """A pandas DataFrame: region, sector, pollutant, factor, start, end (tz-aware UTC
        Timestamps, NaT = unbounded), then the extra columns (missing cells NaN)."""
        import pandas as pd

        extras = self.extra_columns
        data = {c: [getattr(r, c) for r in self.rows] for c in REQUIRED_COLUMNS}
        for c in TIME_COLUMNS:
            data[c] = pd.to_datetime([getattr(r, c) for r in self.rows], utc=True)
        for c in extras:
            data[c] = [r.extra.get(c, np.nan) for r in self.rows]
        df = pd.DataFrame(data, columns=list(REQUIRED_COLUMNS + TIME_COLUMNS + extras))
        df["factor"] = df["factor"].astype(float)
        return df


# ---------------------------------------------------------------------------- row parsing
def _where(source: str | None, origin: str | None) -> str:
    head = source or "scaling table"
    return f"{head}: {origin}" if origin else head


def _missing(v) -> bool:
    """An empty cell: None, '', whitespace, NaN, NaT."""
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _parse_record(rec: Mapping, source: str | None, origin: str) -> list[ScalingRow]:
    """Validate one record {column: value}; returns 1 row (2 for PM10)."""
    where = _where(source, origin)

    def bad(col, msg):
        return ScalingTableError(f"{where}, column {col!r}: {msg}")

    names = {}
    for col in KEY_COLUMNS:
        v = rec.get(col)
        if _missing(v):
            raise bad(col, f"empty {col}")
        if isinstance(v, bytes):
            v = v.decode()
        names[col] = str(v).strip()
    pol = names["pollutant"]
    if pol != WILDCARD:
        c = canonical_pollutant(pol)
        if c is None:
            raise bad("pollutant", f"unknown pollutant {pol!r}; known: {', '.join(POLLUTANTS)}, "
                                   f"PM10 (or '*')")
        pol = c
    v = rec.get("factor")
    if _missing(v):
        raise bad("factor", "empty factor")
    try:
        factor = float(v.strip() if isinstance(v, str) else v)
    except (TypeError, ValueError):
        raise bad("factor", f"{v!r} is not a number") from None
    if not math.isfinite(factor) or factor < 0:
        raise bad("factor", f"{factor} is not a finite value >= 0")
    times = {}
    for col in TIME_COLUMNS:
        v = rec.get(col)
        if _missing(v):
            times[col] = None
            continue
        try:
            times[col] = to_utc(v)
        except (TypeError, ValueError, OverflowError) as exc:
            raise bad(col, f"{v!r} is not an ISO 8601 time ({exc})") from None
    if times["start"] is not None and times["end"] is not None and times["end"] <= times["start"]:
        raise bad("end", f"end {_iso(times['end'])} is not after start {_iso(times['start'])}")
    extra = {str(k): v for k, v in rec.items()         # an empty cell = not given
             if k not in REQUIRED_COLUMNS + TIME_COLUMNS and k is not None and not _missing(v)}
    pols = ("PM25", "PMC") if pol == "PM10" else (pol,)
    return [ScalingRow(names["region"], names["sector"], p, factor, times["start"],
                       times["end"], dict(extra), origin, source) for p in pols]


def _iso(t: datetime) -> str:
    """ISO 8601 UTC with ``Z``; microseconds only when non-zero."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if t.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return t.astimezone(timezone.utc).strftime(fmt)


def _numeric_columns(records: list[dict], columns: Iterable[str]) -> None:
    """Turn each extra column whose non-empty cells all parse as numbers into floats (empty =
    NaN), in place; other columns stay strings."""
    for c in columns:
        vals = [r.get(c) for r in records]
        try:
            nums = [np.nan if _missing(v) else float(v) for v in vals]
        except (TypeError, ValueError):
            continue
        for r, x in zip(records, nums):
            r[c] = x


# ---------------------------------------------------------------------------- files
def _kind(path: Path) -> str:
    suf = path.suffix.lower()
    if suf in CSV_SUFFIXES:
        return "csv"
    if suf in NETCDF_SUFFIXES:
        return "netcdf"
    return ""


def read_scaling_table(path: str | os.PathLike) -> ScalingTable:
    """Read a scaling table from CSV (``.csv``) or NetCDF (``.nc``, ``.nc4``, ``.cdf``).

    CSV: a header line is required, with columns ``region,sector,pollutant,factor`` and optionally
    ``start,end`` and any extra columns (in any order; names are stripped of spaces, case
    matters). One row per line; blank lines are skipped. ``start``/``end`` are ISO 8601 times
    (``2024-01-05T06:00:00Z``, ``2024-01-05 14:00+08:00``, ``2024-01-05``); a ``Z`` or an offset is
    converted to UTC, a naive time is UTC, an empty cell is unbounded. Extra columns whose
    non-empty cells are all numbers become floats (empty = NaN), others stay strings.

    NetCDF: a 1-D dimension ``row``; string variables ``region``, ``sector``, ``pollutant``
    (NetCDF-4 strings or char arrays), float ``factor`` (units ``1``); optional ``start``/``end``
    either CF times (numeric with ``units = "<seconds|minutes|hours|days> since <ISO time>"``,
    standard/gregorian/proleptic_gregorian calendar, NaN/fill = unbounded) or ISO 8601 strings
    ('' = unbounded); every other variable on (``row``,) is an extra column.

    Raises :class:`ScalingTableError` (an :class:`~aqforecast.io.InputFileError`) naming the file,
    the line (CSV) or 0-based row (NetCDF) and the column. Region and sector names are checked
    later against the configured ones (:meth:`ScalingTable.check`/``resolve``).
    """
    path = Path(path)
    if not path.exists():
        raise ScalingTableError(f"{path}: scaling table file does not exist")
    kind = _kind(path)
    if kind == "csv":
        return _read_csv(path)
    if kind == "netcdf":
        return _read_netcdf(path)
    raise ScalingTableError(f"{path}: unknown scaling table format {path.suffix!r}; expected "
                            f"{', '.join(CSV_SUFFIXES + NETCDF_SUFFIXES)}")


def _read_csv(path: Path) -> ScalingTable:
    import io

    try:
        f = io.StringIO(read_text(path, what="scaling table"), newline="")
    except (OSError, TextDecodeError) as exc:
        raise ScalingTableError(f"{path}: cannot read scaling table: "
                                f"{str(exc).split(': ', 1)[-1]}") from None
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            while header is not None and not any(c.strip() for c in header):
                header = next(reader, None)
            if header is None:
                raise ScalingTableError(f"{path}: empty file; expected a header line "
                                        f"{','.join(REQUIRED_COLUMNS)}[,start,end][,...]")
            hline = reader.line_num
            cols = [c.strip() for c in header]
            dup = sorted({c for c in cols if cols.count(c) > 1})
            if dup or "" in cols:
                raise ScalingTableError(f"{path}: line {hline}: header has "
                                        + (f"duplicate column(s) {', '.join(dup)}" if dup
                                           else "an empty column name"))
            missing = [c for c in REQUIRED_COLUMNS if c not in cols]
            if missing:
                raise ScalingTableError(
                    f"{path}: line {hline}: header lacks column(s) {', '.join(missing)}; "
                    f"expected {','.join(REQUIRED_COLUMNS)}[,start,end][,extra...], got "
                    f"{','.join(cols)}")
            records, origins = [], []
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(cols):
                    raise ScalingTableError(f"{path}: line {reader.line_num}: {len(cells)} "
                                            f"fields, but the header has {len(cols)}")
                records.append(dict(zip(cols, cells)))
                origins.append(f"line {reader.line_num}")
        except csv.Error as exc:
            raise ScalingTableError(f"{path}: line {reader.line_num}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ScalingTableError(f"{path}: not UTF-8 text: {exc}") from None
    extras = [c for c in cols if c not in REQUIRED_COLUMNS + TIME_COLUMNS]
    _numeric_columns(records, extras)
    rows = []
    for rec, origin in zip(records, origins):
        rows += _parse_record(rec, str(path), origin)
    return ScalingTable(rows=rows, source=str(path))


_CF_TIME_RE = re.compile(r"^\s*(seconds?|minutes?|hours?|days?)\s+since\s+(.+?)\s*$",
                         re.IGNORECASE)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _decode_times(path: Path, name: str, var) -> list:
    """Values of a NetCDF start/end variable as aware UTC datetimes, strings or None."""
    vals = np.asarray(var.values)
    if vals.dtype.kind in "OSU":
        return [None if _missing(v) else (v.decode() if isinstance(v, bytes) else str(v))
                for v in vals.ravel()]
    if vals.dtype.kind == "M":
        return [None if np.isnat(v) else v for v in vals.ravel()]
    if vals.dtype.kind not in "fiu":
        raise ScalingTableError(f"{path}: variable {name!r}: dtype {vals.dtype} is neither CF "
                                f"time nor ISO 8601 strings")
    units = str(var.attrs.get("units", ""))
    m = _CF_TIME_RE.match(units)
    cal = str(var.attrs.get("calendar", "standard")).lower()
    if not m or cal not in ("standard", "gregorian", "proleptic_gregorian"):
        raise ScalingTableError(f"{path}: variable {name!r}: numeric times need units "
                                f"'<seconds|minutes|hours|days> since <ISO time>' and a standard "
                                f"calendar; got units {units!r}, calendar {cal!r}")
    try:
        ref = to_utc(m.group(2).replace(" UTC", "").replace(" utc", ""))
    except ValueError:
        raise ScalingTableError(f"{path}: variable {name!r}: cannot read the reference time in "
                                f"units {units!r}") from None
    step = _UNIT_SECONDS[m.group(1).lower().rstrip("s")]
    out = []
    for n, v in enumerate(vals.ravel().astype(float)):
        if not math.isfinite(v):
            out.append(None)
            continue
        try:
            us = round(v * step * 1e6)
            out.append(ref + timedelta(microseconds=us))
        except OverflowError:
            raise ScalingTableError(f"{path}: row {n}, column {name!r}: time {v} {units} is out "
                                    f"of range") from None
    return out


def _read_netcdf(path: Path) -> ScalingTable:
    import xarray as xr

    try:
        ds = xr.open_dataset(path, decode_times=False)
    except Exception as exc:  # netCDF4 raises OSError/RuntimeError/ValueError variously
        raise ScalingTableError(f"{path}: cannot read scaling table as NetCDF: {exc}") from None
    with ds:
        missing = [c for c in REQUIRED_COLUMNS if c not in ds.variables]
        if missing:
            raise ScalingTableError(f"{path}: scaling table lacks variable(s) "
                                    f"{', '.join(missing)} (on dimension 'row')")
        for c in ds.variables:
            if c in REQUIRED_COLUMNS + TIME_COLUMNS and ds[c].dims != ("row",):
                raise ScalingTableError(f"{path}: variable {c!r} has dims {ds[c].dims}, "
                                        f"expected ('row',)")
        n = ds.sizes["row"]
        columns: dict[str, list] = {}
        for c in ds.variables:
            var = ds[c]
            if var.dims != ("row",):
                continue
            if c in TIME_COLUMNS:
                columns[c] = _decode_times(path, c, var)
            else:
                vals = np.asarray(var.values)
                columns[c] = [v.decode() if isinstance(v, bytes) else
                              (v.item() if isinstance(v, np.generic) else v) for v in vals]
    extras = [c for c in columns if c not in REQUIRED_COLUMNS + TIME_COLUMNS]
    records = [{c: columns[c][i] for c in columns} for i in range(n)]
    _numeric_columns(records, [c for c in extras
                               if all(isinstance(r[c], str) for r in records)])
    rows = []
    for i, rec in enumerate(records):
        rows += _parse_record(rec, str(path), f"row {i}")
    return ScalingTable(rows=rows, source=str(path))


def write_scaling_table(table, path: str | os.PathLike) -> Path:
    """Write ``table`` (anything :meth:`ScalingTable.coerce` accepts) to ``path`` atomically
    (a temporary name, then a rename), as CSV or NetCDF by suffix; layouts as
    :func:`read_scaling_table` reads them. ``start``/``end`` are written only if some row has a
    window (CSV: ISO 8601 UTC with ``Z``, empty = unbounded; NetCDF: float64 ``seconds since
    1970-01-01 00:00:00`` UTC, NaN = unbounded). Factors are written with full precision, so a
    round trip gives the same floats. Returns the path."""
    table = ScalingTable.coerce(table)
    path = Path(path)
    kind = _kind(path)
    if not kind:
        raise ValueError(f"{path}: unknown scaling table format {path.suffix!r}; expected "
                         f"{', '.join(CSV_SUFFIXES + NETCDF_SUFFIXES)}")
    timed = any(r.windowed for r in table.rows)
    cols = list(REQUIRED_COLUMNS + (TIME_COLUMNS if timed else ())) + list(table.extra_columns)
    if kind == "csv":
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(cols)
                for r in table.rows:
                    cells = [r.region, r.sector, r.pollutant, repr(float(r.factor))]
                    if timed:
                        cells += ["" if t is None else _iso(t) for t in (r.start, r.end)]
                    cells += [_csv_cell(r.extra.get(c)) for c in table.extra_columns]
                    w.writerow(cells)
        return path
    import xarray as xr

    ds = xr.Dataset()
    for c in KEY_COLUMNS:
        ds[c] = ("row", np.array([getattr(r, c) for r in table.rows], dtype=object),
                 {"long_name": f"{c} ('*' = all)"})
    ds["factor"] = ("row", np.array([r.factor for r in table.rows], dtype=np.float64),
                    {"long_name": "emission scaling factor", "units": "1"})
    if timed:
        for c in TIME_COLUMNS:
            secs = [np.nan if getattr(r, c) is None
                    else (getattr(r, c) - _EPOCH) / timedelta(seconds=1) for r in table.rows]
            ds[c] = ("row", np.array(secs, dtype=np.float64),
                     {"long_name": f"{c} of the validity window [start, end) (NaN = unbounded)",
                      "standard_name": "time", "units": _CF_UNITS, "calendar": "standard"})
    for c in table.extra_columns:
        vals = [r.extra.get(c) for r in table.rows]
        if all(_missing(v) or isinstance(v, (int, float, np.number)) for v in vals):
            ds[c] = ("row", np.array([np.nan if _missing(v) else float(v) for v in vals]),
                     {"long_name": c})
        else:
            ds[c] = ("row", np.array([_csv_cell(v) for v in vals], dtype=object),
                     {"long_name": c})
    ds.attrs.update(global_attrs(title="aqforecast emission scaling table",
                                 comment="rows multiply; unlisted sources keep factor 1"))
    enc = {c: {"_FillValue": None} for c in ds.variables if ds[c].dtype.kind == "O"}
    enc.update({c: {"_FillValue": np.nan} for c in ds.variables if ds[c].dtype.kind == "f"})
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=enc)
    return path


def _csv_cell(v) -> str:
    if _missing(v):
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v)


_EMPTY = ScalingTable()
