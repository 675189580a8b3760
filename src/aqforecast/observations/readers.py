"""Readers for the real station-observation files the project uses.

Each reader checks the file's layout and every value it converts; a bad file fails with
:class:`ObservationFormatError` naming the file, the 1-based line, the column, the offending value
and what was expected. Missing values (empty field, ``NA``, ``-9999``) become NaN; anything else
that is not a finite number (text, inf), an impossible time (hour 24, month 13, Feb 30, a year
outside 1900-2100) or coordinate is an error, never silently dropped. Numbers that parse but are
implausible (negative, absurdly large) are kept for :func:`aqforecast.observations.qc_flags`, which
flags them (``RANGE``): one bad value must not stop a network's ingest, and is never used
silently either. Files are decoded by :func:`aqforecast.io.text.read_text` (declared encoding,
byte-order mark, UTF-8, GB18030).

All readers return a tidy ("long") pandas DataFrame with one row per (station, time) and one
column per variable; ``df.attrs["units"]`` maps columns to units and ``df.attrs["source"]`` names
the file. Times are naive local Beijing time (UTC+8), hour-beginning stamps as in the sources.
:func:`to_dataset` turns such a frame into an xarray Dataset (time, station) with units attrs.

Formats
-------
- Beijing PRSA (UCI #501, Zhang et al. 2017): ``No,year,month,day,hour,PM2.5,PM10,SO2,NO2,CO,O3,
  TEMP,PRES,DEWP,RAIN,wd,WSPM,station``; pollutants in ug m-3 **including CO**, which the reader
  converts to mg m-3 (the HJ 633 unit); gases at the reporting reference state as published.
- Shanghai UCI five-city (#394, Liang et al. 2016): ``No,year,month,day,hour,season,PM_Jingan,
  PM_US Post,PM_Xuhui,DEWP,HUMI,PRES,TEMP,cbwd,Iws,precipitation,Iprec``; PM2.5 ug m-3 per site.
- CNEMC text (readme_format.txt): whitespace columns ``siteID year month day [hour] lon lat``
  then values; 13 columns = hourly all species (SO2 NO2 CO O3 PM10 PM2.5), 12 = daily all species,
  8 = hourly single species (named by ``species=`` or the file name). CO mg m-3, others ug m-3,
  ``-9999`` missing.
- Station coordinates: the CNEMC station list (Chinese header 监测点编码, 监测点名称, 城市, 经度,
  纬度, 对照点) or the PRSA / Shanghai station tables shipped beside the series.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import InputFileError
from ..io.text import TextDecodeError
from ..io.text import read_text as _read_text

log = logging.getLogger(__name__)

MISSING_TOKENS = {"", "NA", "NaN", "nan", "-9999", "-9999.0", "-9999.000"}
SPECIES_UNITS = {"PM2.5": "ug m-3", "PM10": "ug m-3", "SO2": "ug m-3", "NO2": "ug m-3",
                 "O3": "ug m-3", "CO": "mg m-3"}


class ObservationFormatError(InputFileError):
    """A station file does not have the expected layout or contains an invalid value."""

    def __init__(self, path, line: int | None, column: str | None, value, expected: str):
        self.path, self.line, self.column, self.value, self.expected = (
            str(path), line, column, value, expected)
        where = f"{path}"
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        got = "" if value is None else f": got {value!r}"
        super().__init__(f"{where}{got}; expected {expected}")


def read_text(path, encoding: str | None = None) -> str:
    """The text of a station file (:func:`aqforecast.io.text.read_text`: declared encoding,
    byte-order mark, UTF-8, GB18030); problems are :class:`ObservationFormatError`."""
    try:
        return _read_text(path, encoding, what="observation")
    except TextDecodeError as exc:
        raise ObservationFormatError(path, None, None, None, exc.expected) from None


def _read_text_table(path: Path, sep: str, expected_header: list[str] | None,
                     encoding: str | None = None) -> pd.DataFrame:
    """Read a delimited file as strings, checking the header exactly."""
    import io

    text = read_text(path, encoding)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ObservationFormatError(path, 1, None, None, "a header line") from None
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        line = int(m.group(1)) if m else None
        raise ObservationFormatError(path, line, None, None,
                                     f"{len(expected_header or [])} delimited fields per row "
                                     f"({exc})") from None
    if expected_header is not None and list(df.columns) != expected_header:
        raise ObservationFormatError(path, 1, None, ",".join(df.columns),
                                     f"header {','.join(expected_header)}")
    return df


def _to_float(df: pd.DataFrame, col: str, path: Path, line0: int = 2,
              missing=MISSING_TOKENS) -> np.ndarray:
    """Column of strings -> float array; missing tokens -> NaN; anything else -> error."""
    s = df[col].str.strip()
    miss = s.isin(missing)
    num = pd.to_numeric(s.where(~miss), errors="coerce")
    bad = (num.isna() | ~np.isfinite(num.fillna(0.0))) & ~miss
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ObservationFormatError(path, line0 + i, col, s.iloc[i],
                                     "a finite number (or an empty/NA field for missing)")
    return num.to_numpy(float)


#: accepted ranges of the time fields (pandas would roll hour 24 into the next day and accept
#: the year 99999)
_TIME_FIELD_RANGE = {"year": (1900, 2100), "month": (1, 12), "day": (1, 31), "hour": (0, 23)}


def _times(df: pd.DataFrame, path: Path, cols=("year", "month", "day", "hour"),
           line0: int = 2) -> pd.DatetimeIndex:
    parts = {}
    for c in cols:
        v = _to_float(df, c, path, line0, missing=set())
        if np.any(v != np.round(v)):
            i = int(np.flatnonzero(v != np.round(v))[0])
            raise ObservationFormatError(path, line0 + i, c, df[c].iloc[i], "an integer")
        lo, hi = _TIME_FIELD_RANGE[c]
        out = (v < lo) | (v > hi)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise ObservationFormatError(path, line0 + i, c, df[c].iloc[i],
                                         f"a valid calendar date ({c} in {lo}..{hi})")
        parts[c] = v.astype(int)
    t = pd.to_datetime(pd.DataFrame(parts), errors="coerce")
    if t.isna().any():
        i = int(np.flatnonzero(t.isna().to_numpy())[0])
        stamp = "-".join(str(parts[c][i]) for c in cols)
        raise ObservationFormatError(path, line0 + i, "/".join(cols), stamp,
                                     "a valid calendar date (hour 0-23)")
    return pd.DatetimeIndex(t)


def _check_duplicates(out: pd.DataFrame, path: Path, keys=("station", "time"), line0: int = 2):
    dup = out.duplicated(list(keys), keep=False)
    if not dup.any():
        return out
    values = [c for c in out.columns if c not in keys]
    exact = out.duplicated(list(keys) + values, keep="first")
    conflicting = dup & ~out.duplicated(list(keys) + values, keep=False)
    if conflicting.any():
        i = int(np.flatnonzero(conflicting.to_numpy())[0])
        raise ObservationFormatError(path, line0 + i, "/".join(keys),
                                     tuple(out.iloc[i][list(keys)]),
                                     "one row per station and time (conflicting duplicate)")
    log.warning("%s: dropped %d exact duplicate rows", path, int(exact.sum()))
    return out[~exact].reset_index(drop=True)


PRSA_HEADER = ["No", "year", "month", "day", "hour", "PM2.5", "PM10", "SO2", "NO2", "CO", "O3",
               "TEMP", "PRES", "DEWP", "RAIN", "wd", "WSPM", "station"]
PRSA_MET_UNITS = {"TEMP": "degC", "PRES": "hPa", "DEWP": "degC", "RAIN": "mm", "WSPM": "m s-1",
                  "wd": "1"}


def read_prsa(path) -> pd.DataFrame:
    """Read a Beijing PRSA multi-site hourly CSV.

    Returns columns time, station, PM2.5, PM10, SO2, NO2 (ug m-3), CO (mg m-3, converted from the
    file's ug m-3), O3 (ug m-3), TEMP, PRES, DEWP, RAIN, WSPM, wd (wind direction, text).
    """
    path = Path(path)
    df = _read_text_table(path, ",", PRSA_HEADER)
    out = pd.DataFrame({"time": _times(df, path), "station": df["station"].str.strip()})
    empty = out["station"] == ""
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise ObservationFormatError(path, 2 + i, "station", "", "a station name")
    for c in ("PM2.5", "PM10", "SO2", "NO2", "CO", "O3", "TEMP", "PRES", "DEWP", "RAIN", "WSPM"):
        out[c] = _to_float(df, c, path)
    out["CO"] = out["CO"] / 1000.0
    out["wd"] = df["wd"].str.strip().replace({"NA": ""})
    out = _check_duplicates(out, path)
    out.attrs["units"] = {**SPECIES_UNITS, **PRSA_MET_UNITS}
    out.attrs["source"] = str(path)
    out.attrs["notes"] = "CO converted from ug m-3 (file) to mg m-3; hour-beginning local time"
    return out


SHANGHAI_HEADER = ["No", "year", "month", "day", "hour", "season", "PM_Jingan", "PM_US Post",
                   "PM_Xuhui", "DEWP", "HUMI", "PRES", "TEMP", "cbwd", "Iws", "precipitation",
                   "Iprec"]
SHANGHAI_MET_UNITS = {"DEWP": "degC", "HUMI": "%", "PRES": "hPa", "TEMP": "degC",
                      "Iws": "m s-1 (cumulated)", "precipitation": "mm h-1",
                      "Iprec": "mm (cumulated)", "cbwd": "1"}


def read_shanghai_uci(path) -> pd.DataFrame:
    """Read the UCI five-city Shanghai hourly CSV into long form.

    Returns columns time, station (``Jingan``, ``US Post``, ``Xuhui``), PM2.5 (ug m-3) and the
    site-independent meteorology (DEWP, HUMI, PRES, TEMP, cbwd, Iws, precipitation, Iprec)
    repeated for each station.
    """
    path = Path(path)
    df = _read_text_table(path, ",", SHANGHAI_HEADER)
    t = _times(df, path)
    met = {c: _to_float(df, c, path) for c in
           ("DEWP", "HUMI", "PRES", "TEMP", "Iws", "precipitation", "Iprec")}
    parts = []
    for col in ("PM_Jingan", "PM_US Post", "PM_Xuhui"):
        part = pd.DataFrame({"time": t, "station": col.removeprefix("PM_"),
                             "PM2.5": _to_float(df, col, path)})
        for k, v in met.items():
            part[k] = v
        part["cbwd"] = df["cbwd"].str.strip().to_numpy()
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out = _check_duplicates(out, path)
    out.attrs["units"] = {"PM2.5": "ug m-3", **SHANGHAI_MET_UNITS}
    out.attrs["source"] = str(path)
    return out


CNEMC_SPECIES = ["SO2", "NO2", "CO", "O3", "PM10", "PM2.5"]


def read_cnemc(path, species: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """Read a CNEMC whitespace text file (hourly all-species, daily all-species, or hourly single).

    Returns columns station (site ID as text), time (hour-beginning, or the day at 00:00 for daily
    files), lon, lat and the species columns; ``attrs["kind"]`` is "hourly" or "daily".
    """
    path = Path(path)
    rows = []
    for n, line in enumerate(read_text(path, encoding).splitlines(), start=1):
        if line.strip():
            rows.append((n, line.split()))
    if not rows:
        raise ObservationFormatError(path, None, None, None, "at least one data row")
    nf = len(rows[0][1])
    layouts = {13: ("hourly", ["station", "year", "month", "day", "hour", "lon", "lat"],
                    CNEMC_SPECIES),
               12: ("daily", ["station", "year", "month", "day", "lon", "lat"], CNEMC_SPECIES)}
    if nf == 8:
        sp = species or next((s for s in CNEMC_SPECIES if f"_{s}_" in path.name), None)
        if sp is None:
            raise ObservationFormatError(path, rows[0][0], None, None,
                                         "species= for a single-species file (name has none)")
        layouts[8] = ("hourly", ["station", "year", "month", "day", "hour", "lon", "lat"], [sp])
    if nf not in layouts:
        raise ObservationFormatError(path, rows[0][0], None, " ".join(rows[0][1]),
                                     "8, 12 or 13 whitespace-separated fields")
    kind, keys, values = layouts[nf]
    cols = keys + values
    for n, fields in rows:
        if len(fields) != nf:
            raise ObservationFormatError(path, n, None, " ".join(fields),
                                         f"{nf} fields like the first row ({' '.join(cols)})")
    df = pd.DataFrame([f for _, f in rows], columns=cols)
    lines = np.array([n for n, _ in rows])

    def col_float(c):
        s = df[c]
        miss = s.isin(MISSING_TOKENS)
        num = pd.to_numeric(s.where(~miss), errors="coerce")
        bad = (num.isna() | ~np.isfinite(num.fillna(0.0))) & ~miss
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ObservationFormatError(path, int(lines[i]), c, s.iloc[i],
                                         "a finite number or -9999")
        return num.to_numpy(float)

    tcols = ("year", "month", "day", "hour") if kind == "hourly" else ("year", "month", "day")
    # _times reports 1-based positions; map them back to file lines on error
    try:
        t = _times(df, path, tcols, line0=0)
    except ObservationFormatError as exc:
        raise ObservationFormatError(path, int(lines[exc.line]), exc.column, exc.value,
                                     exc.expected) from None
    out = pd.DataFrame({"station": df["station"], "time": t})
    for c in ("lon", "lat"):
        out[c] = col_float(c)
    for c, lo, hi in (("lon", -180, 180), ("lat", -90, 90)):
        badc = ~((out[c] >= lo) & (out[c] <= hi))
        if badc.any():
            i = int(np.flatnonzero(badc.to_numpy())[0])
            raise ObservationFormatError(path, int(lines[i]), c, df[c].iloc[i],
                                         f"a {c} in [{lo}, {hi}] degrees")
    for c in values:
        out[c] = col_float(c)
    out = _check_duplicates(out, path, line0=int(lines[0]))
    out.attrs["units"] = {"lon": "degrees_east", "lat": "degrees_north",
                          **{c: SPECIES_UNITS[c] for c in values}}
    out.attrs["source"] = str(path)
    out.attrs["kind"] = kind
    return out


COORD_LAYOUTS = {
    "cnemc": {"监测点编码": "code", "监测点名称": "name", "城市": "city", "经度": "lon",
              "纬度": "lat", "对照点": "reference"},
    "prsa": {"cnemc_code": "code", "cnemc_name_zh": "name", "city": "city", "lon": "lon",
             "lat": "lat", "is_reference_site": "reference", "station_prsa": "station"},
    "shanghai": {"cnemc_code": "code", "site": "name", "lon": "lon", "lat": "lat",
                 "column": "station", "coord_source": "coord_source"},
}


def read_station_coords(path, encoding: str | None = None) -> pd.DataFrame:
    """Read a station-coordinate table (CNEMC list, PRSA table or Shanghai table).

    Returns columns code, name, city, lon (degrees_east), lat (degrees_north), reference (bool or
    NA) and, where the file has them, station (the series' own site name) and coord_source.
    Stations without coordinates keep NaN lon/lat (logged); out-of-range coordinates are errors.
    """
    path = Path(path)
    df = _read_text_table(path, ",", None, encoding)
    header = set(df.columns)
    layout = next((k for k, m in COORD_LAYOUTS.items() if set(m) == header), None)
    if layout is None:
        raise ObservationFormatError(path, 1, None, ",".join(df.columns),
                                     "a CNEMC station list header (监测点编码,监测点名称,城市,经度,"
                                     "纬度,对照点) or the PRSA/Shanghai station-table header")
    m = COORD_LAYOUTS[layout]
    out = pd.DataFrame({new: df[old].str.strip() for old, new in m.items()})
    for c, lo, hi, unit in (("lon", -180, 180, "degrees_east"), ("lat", -90, 90, "degrees_north")):
        v = _to_float(out, c, path)
        bad = np.isfinite(v) & ((v < lo) | (v > hi))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ObservationFormatError(path, 2 + i, c, out[c].iloc[i],
                                         f"{unit} in [{lo}, {hi}]")
        out[c] = v
    if "reference" in out:
        ok = out["reference"].isin(["Y", "N", ""])
        if not ok.all():
            i = int(np.flatnonzero(~ok.to_numpy())[0])
            raise ObservationFormatError(path, 2 + i, "reference", out["reference"].iloc[i],
                                         "Y or N")
        out["reference"] = out["reference"].map({"Y": True, "N": False, "": pd.NA})
    nocoord = out["lon"].isna() | out["lat"].isna()
    if nocoord.any():
        log.warning("%s: %d station(s) without coordinates: %s", path, int(nocoord.sum()),
                    ", ".join(out.loc[nocoord, "code"].astype(str)))
    for c in ("city", "name", "code"):
        if c not in out:
            out[c] = ""
    out.attrs["units"] = {"lon": "degrees_east", "lat": "degrees_north"}
    out.attrs["source"] = str(path)
    return out


def to_dataset(df: pd.DataFrame, coords: pd.DataFrame | None = None, key: str = "station"):
    """Long station frame -> xarray Dataset with dims (time, station), units in variable attrs.

    ``coords`` (from :func:`read_station_coords`) adds lon/lat station coordinates matched on
    ``key`` (its ``station`` column if it has one, else ``code``).
    """
    import xarray as xr

    numeric = [c for c in df.columns if c not in ("time", "station")
               and pd.api.types.is_numeric_dtype(df[c])]
    ds = xr.Dataset.from_dataframe(df.set_index(["time", "station"])[numeric].sort_index())
    units = df.attrs.get("units", {})
    for v in ds.data_vars:
        if v in units:
            ds[v].attrs["units"] = units[v]
    if coords is not None:
        col = key if key in coords else "code"
        c = coords.set_index(col)
        for name, std in (("lon", "longitude"), ("lat", "latitude")):
            vals = c[name].reindex(ds["station"].to_numpy()).to_numpy(float)
            ds = ds.assign_coords({name: ("station", vals)})
            ds[name].attrs.update(standard_name=std, units=units.get(
                name, "degrees_east" if name == "lon" else "degrees_north"))
    ds.attrs["source"] = df.attrs.get("source", "")
    return ds
