"""The bulletin's city tables: one row per city and lead window, and one per city and day.

Lead windows (``leadwindow_<domain>.nc`` of the products, the config's ``time.windows``: 3-hourly
to 72 h, 12-hourly to 168 h, daily to 360 h by default) are banded as days 1–3, 4–7 and 8–15 by
the lead hour at their end. A city's window value is the area mean over the city's cells (the
cells whose centres lie in the configured city outline, in the finest domain containing it:
:func:`aqforecast.products.tables.locate_cities`, the cells of ``aqi_daily_city.csv``) of the
window fields AQI_max (the largest hourly AQI in the window), PM25 and NO2 (window means),
O3_max_8h and O3_max_1h; the category is that of the rounded area-mean AQI; the primary pollutant
is the most frequent ``primary_pollutant`` over the city's cells and the window's hours in
``surface_hourly_<domain>.nc`` (none when the AQI is 50 or less, HJ 633 §4.3).

The daily rows are ``aqi_daily_city.csv`` as written (HJ 633 daily AQI). Observed values come
from a verification directory (``paired.csv`` of ``aqforecast verify``): the hourly
observations of each city's stations (the stations' cities from ``aqi_daily_station.csv``)
averaged per hour, then per window or local day (PM2.5 and NO2 means, O3 1-h maximum and 8-h
maximum running mean of at least 6 hours; a day is valid with 20 or more hours, fewer are shown
as the mean of the hours there are). Days before the forecast's first day are the past days,
one row per city and day with the observed values and the AQI of the observed pollutants.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import InputFileError
from ..products import aqi as aqi_rules
from ..products.surface import PRIMARY_CODES, SurfaceFields
from ..products.tables import locate_cities
from .labels import BANDS, band_of, city_key, city_label

__all__ = ["CityTables", "city_tables", "colour", "fmt", "lead_window_grid", "observed_hourly"]

log = logging.getLogger(__name__)

MIN_DAY_HOURS = 20  # hours of a valid daily mean (GB 3095-2012, averaging.MIN_HOURS_24H)
WINDOW_FIELDS = {"aqi": "AQI_max", "pm25": "PM25", "o3_8h": "O3_max_8h", "o3_1h": "O3_max_1h",
                 "no2": "NO2"}


def fmt(v, digits: int = 0) -> str:
    """A number as text ("" for missing)."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v) if v is not None else ""
    return "" if not np.isfinite(x) else f"{x:.{digits}f}"


def colour(category, family: str = "HJ") -> str:
    """CSS colour of an AQI category 1-6 (HJ 633 Annex A or EPA), white otherwise."""
    try:
        c = int(float(category))
    except (TypeError, ValueError):
        return "#ffffff"
    if not 1 <= c <= 6:
        return "#ffffff"
    r, g, b = aqi_rules.CATEGORY_COLORS.get(family, aqi_rules.CATEGORY_COLORS["HJ"])[c - 1]
    return f"rgb({r},{g},{b})"


def _ink(category) -> str:
    try:
        return "#fff" if int(float(category)) >= 4 else "#000"
    except (TypeError, ValueError):
        return "#000"


def _family(standard) -> str:
    s = str(standard or "")
    if s in aqi_rules.RULES:
        return aqi_rules.RULES[s].family
    return "EPA" if "EPA" in s else "HJ"


def _aqi_cells(aqi, family: str) -> dict:
    """AQI value, category name, background and ink of one AQI."""
    try:
        a = float(aqi)
    except (TypeError, ValueError):
        a = np.nan
    if not np.isfinite(a):
        return {"aqi": "", "category": "", "colour": "#f8f8f8", "ink": "#000"}
    a = float(np.round(a))
    std = "EPA-2024" if family == "EPA" else "HJ633-2026"
    cat = aqi_rules.category(a, std)
    return {"aqi": f"{a:.0f}", "category": aqi_rules.category_name(int(cat), std),
            "colour": colour(cat, family), "ink": _ink(cat), "level": int(cat)}


# ----------------------------------------------------------------------------- observations
def observed_hourly(verification: Path | None, products: Path) -> pd.DataFrame:
    """City-mean hourly forecast and observation of ``verification/paired.csv``: columns city
    (:func:`~.labels.city_key`), time (local, hour beginning), pollutant, fcst, obs, n_stations.
    Empty without a verification or without the stations' cities."""
    cols = ["city", "time", "pollutant", "fcst", "obs", "n_stations"]
    if verification is None:
        return pd.DataFrame(columns=cols)
    paired = pd.read_csv(Path(verification) / "paired.csv", dtype={"station": str})
    st_csv = Path(products) / "aqi_daily_station.csv"
    if paired.empty or not st_csv.exists():
        return pd.DataFrame(columns=cols)
    st = pd.read_csv(st_csv, usecols=lambda c: c in ("station", "city"), dtype=str)
    if "city" not in st:
        return pd.DataFrame(columns=cols)
    city = st.dropna().drop_duplicates("station").set_index("station")["city"]
    paired["city"] = paired["station"].map(city)
    paired = paired.dropna(subset=["city"])
    paired["city"] = paired["city"].map(city_key)
    paired["time"] = pd.to_datetime(paired["time"])
    g = paired.groupby(["city", "time", "pollutant"])
    out = g[["fcst", "obs"]].mean().join(g["station"].nunique().rename("n_stations"))
    return out.reset_index()[cols]


def _stats(h: pd.DataFrame) -> dict:
    """PM2.5 / NO2 means, O3 1-h max and 8-h max running mean of one city's hourly obs."""
    out = {"n": int(h["time"].nunique()) if len(h) else 0}
    for p, key in (("PM2.5", "pm25"), ("NO2", "no2")):
        v = h.loc[h["pollutant"] == p, "obs"]
        out[key] = float(v.mean()) if len(v) else np.nan
    o3 = h[h["pollutant"] == "O3"].set_index("time")["obs"].sort_index()
    out["o3_1h"] = float(o3.max()) if len(o3) else np.nan
    if len(o3):
        o3 = o3.asfreq("h")
        m8 = o3.rolling(8, min_periods=6).mean()
        out["o3_8h"] = float(m8.max()) if m8.notna().any() else np.nan
    else:
        out["o3_8h"] = np.nan
    return out


def _observed_aqi(h: pd.DataFrame, standard) -> dict:
    """Daily AQI (HJ 633 rules, :func:`aqforecast.products.aqi.daily_aqi`) of the observed
    pollutants of one city and day; NaN where the day is incomplete."""
    wide = h.pivot_table(index="time", columns="pollutant", values="obs")
    wide = wide[[c for c in wide.columns if c in aqi_rules.POLLUTANTS]]
    if wide.empty:
        return {}
    std = standard if standard in aqi_rules.RULES else None
    try:
        res = aqi_rules.daily_aqi(wide.asfreq("h"), std)
    except ValueError:
        return {}
    if res.empty or not np.isfinite(res["aqi"].iloc[0]):
        return {}
    r = res.iloc[0]
    prim = r.get("primary")
    return {"aqi": float(r["aqi"]), "primary": prim if isinstance(prim, str) else ""}


# ----------------------------------------------------------------------------- lead windows
def lead_window_grid(domain: str, ds) -> SurfaceFields:
    """The grid of a lead-window file as the :class:`SurfaceFields` city location needs."""
    lon = np.asarray(ds["lon"].values, float)
    lat = np.asarray(ds["lat"].values, float)
    template = ds[["lon", "lat"]].drop_vars([c for c in ds[["lon", "lat"]].coords
                                             if c not in ("x", "y", "lon", "lat")])
    start = pd.Timestamp(ds["forecast_reference_time"].values) \
        if "forecast_reference_time" in ds.variables else pd.Timestamp(ds["time"].values[0])
    vt = pd.DatetimeIndex(ds["time"].values)
    return SurfaceFields(domain=domain, start=start, valid_time=vt,
                         leads=np.asarray(ds["lead_hours"].values, int), lon=lon, lat=lat,
                         conc={}, template=template)


def _area_mean(values, idx) -> np.ndarray:
    """Mean over the cells ``idx`` (flat) per lead window; NaN where none is valid."""
    a = np.asarray(values, float)
    a = a.reshape(a.shape[0], -1)[:, idx]
    n = np.isfinite(a).sum(axis=1)
    return np.where(n > 0, np.nansum(a, axis=1) / np.maximum(n, 1), np.nan)


def _period(ws, we) -> str:
    if we.normalize() == ws.normalize() + pd.Timedelta(days=1) and we == we.normalize():
        return f"{ws:%m-%d %H:%M}–24:00"
    if we.normalize() == ws.normalize():
        return f"{ws:%m-%d %H:%M}–{we:%H:%M}"
    return f"{ws:%m-%d %H:%M} – {we:%m-%d %H:%M}"


def _window_rows(products: Path, cfg, local, obs: pd.DataFrame) -> tuple[list[dict], list[str]]:
    import xarray as xr

    from ..config import resolve_path

    files = {d.name: products / f"leadwindow_{d.name}.nc" for d in cfg.domains}
    files = {d: f for d, f in files.items() if f.exists()}
    if not files:
        raise InputFileError(f"{products}: no leadwindow_<domain>.nc of the configured domains "
                             f"({', '.join(d.name for d in cfg.domains)})")
    sets = {d: xr.open_dataset(f).load() for d, f in files.items()}
    hourly = {}
    for d in sets:
        h = products / f"surface_hourly_{d}.nc"
        if h.exists():
            with xr.open_dataset(h) as hs:
                if "primary_pollutant" in hs:
                    hourly[d] = (pd.DatetimeIndex(hs["time"].values),
                                 np.asarray(hs["primary_pollutant"].values))
    surfaces = {d: lead_window_grid(d, ds) for d, ds in sets.items()}
    regions = [(r.name, resolve_path(cfg, r.geojson)) for r in cfg.regions]
    loc = locate_cities(regions, surfaces)
    rows = []
    for name, dom, idx in zip(loc.names, loc.domain, loc.cells):
        ds = sets[dom]
        family = _family(ds.attrs.get("aqi_standard"))
        vals = {key: _area_mean(ds[var].values, idx) if var in ds else
                np.full(ds.sizes["lead_window"], np.nan) for key, var in WINDOW_FIELDS.items()}
        ws_utc = pd.DatetimeIndex(ds["window_start"].values)
        we_utc = pd.DatetimeIndex(ds["window_end"].values)
        ws_loc, we_loc = local.to_local(ws_utc), local.to_local(we_utc)
        a_h = np.asarray(ds["lead_hours_start"].values, int)
        b_h = np.asarray(ds["lead_hours"].values, int)
        cobs = obs[obs["city"] == city_key(name)] if len(obs) else obs
        for w in range(ds.sizes["lead_window"]):
            cells = _aqi_cells(vals["aqi"][w], family)
            prim = ""
            t, codes = hourly.get(dom, (pd.DatetimeIndex([]), None))
            sel = (t > ws_utc[w]) & (t <= we_utc[w])
            if sel.any() and cells.get("level", 0) > 1:
                c = codes[sel].reshape(int(sel.sum()), -1)[:, idx].ravel()
                c = c[(c > 0) & (c < len(PRIMARY_CODES))]
                if c.size:
                    prim = PRIMARY_CODES[int(np.bincount(c).argmax())]
            o = _stats(cobs[(cobs["time"] >= ws_loc[w]) & (cobs["time"] < we_loc[w])]) \
                if len(cobs) else {"n": 0}
            band = band_of(int(b_h[w]))
            rows.append({"city": city_label(name), "key": city_key(name), "domain": dom,
                         "band": band, "lead": f"{a_h[w]}–{b_h[w]} h",
                         "hours": int(b_h[w] - a_h[w]),
                         "period": _period(ws_loc[w], we_loc[w]), **cells, "primary": prim,
                         "pm25": fmt(vals["pm25"][w]), "o3_8h": fmt(vals["o3_8h"][w]),
                         "o3_1h": fmt(vals["o3_1h"][w]), "no2": fmt(vals["no2"][w]),
                         "obs_pm25": fmt(o.get("pm25")), "obs_o3": fmt(o.get("o3_1h")),
                         "obs_no2": fmt(o.get("no2")), "obs_n": o["n"] or ""})
    for ds in sets.values():
        ds.close()
    return rows, [str(f) for f in files.values()] + [
        str(products / f"surface_hourly_{d}.nc") for d in hourly]


def _bands(rows: list[dict]) -> list[dict]:
    """The lead bands present, each with its rows (band, then city, then lead) and a label
    naming the window lengths found in the file."""
    out = []
    for b, (_, zh, en) in enumerate(BANDS):
        sel = [r for r in rows if r["band"] == b]
        if not sel:
            continue
        hours = sorted({r["hours"] for r in sel})
        every = ", ".join(f"{h}-hourly" if h != 24 else "daily" for h in hours)
        out.append({"label": f"{zh} {en} ({every})", "rows": sel})
    return out


# ----------------------------------------------------------------------------- daily rows
def _daily_rows(city_csv: Path, obs: pd.DataFrame) -> tuple[list[dict], list[dict], int]:
    df = pd.read_csv(city_csv)
    fam = {s: _family(s) for s in df.get("standard", pd.Series(dtype=str)).dropna().unique()}
    obs_day = obs.assign(date=obs["time"].dt.strftime("%Y-%m-%d")) if len(obs) else obs
    first = str(df["date"].min()) if len(df) else "9999-12-31"
    rows, incomplete = [], 0
    for _, r in df.sort_values(["city", "lead_day"]).iterrows():
        ok = bool(r.get("complete", True))
        incomplete += 0 if ok else 1
        family = fam.get(r.get("standard"), "HJ")
        cells = _aqi_cells(r.get("AQI") if ok else np.nan, family)
        if ok and isinstance(r.get("category_name"), str):
            cells["category"] = r["category_name"]
        key = city_key(r["city"])
        o = _stats(obs_day[(obs_day["city"] == key) & (obs_day["date"] == str(r["date"]))]) \
            if len(obs_day) else {"n": 0}
        rows.append({"city": city_label(r["city"]), "lead_day": int(r["lead_day"]),
                     "date": r["date"], **cells,
                     "primary": r.get("primary_pollutant") if ok and isinstance(
                         r.get("primary_pollutant"), str) else "",
                     "pm25": fmt(r.get("PM2.5")) if ok else "",
                     "o3_8h": fmt(r.get("O3_8h_max")) if ok else "",
                     "no2": fmt(r.get("NO2")) if ok else "", **_obs_cells(o)})
    past = []
    if len(obs_day):
        std = str(df["standard"].dropna().iloc[0]) if "standard" in df and \
            df["standard"].notna().any() else None
        for (key, date), h in obs_day[obs_day["date"] < first].groupby(["city", "date"]):
            o = _stats(h)
            a = _observed_aqi(h, std)
            cells = _aqi_cells(a.get("aqi"), _family(std))
            fc = h.groupby("pollutant")["fcst"].mean()
            past.append({"city": city_label(key), "date": date, **cells,
                         "primary": a.get("primary", ""), **_obs_cells(o),
                         "fc_pm25": fmt(fc.get("PM2.5")), "fc_no2": fmt(fc.get("NO2"))})
    return rows, past, incomplete


def _obs_cells(o: dict) -> dict:
    n = int(o.get("n", 0))
    partial = 0 < n < MIN_DAY_HOURS
    return {"obs_pm25": fmt(o.get("pm25")), "obs_o3": fmt(o.get("o3_8h"))
            if np.isfinite(o.get("o3_8h", np.nan)) else fmt(o.get("o3_1h")),
            "obs_o3_kind": "8h" if np.isfinite(o.get("o3_8h", np.nan)) else "1h",
            "obs_no2": fmt(o.get("no2")), "obs_n": n or "", "obs_partial": partial}


@dataclass
class CityTables:
    """What the city section shows (see the module docstring)."""

    bands: list[dict] = field(default_factory=list)   #: lead bands with their window rows
    n_window_rows: int = 0
    window_obs: bool = False                           #: some window row has observations
    daily: list[dict] = field(default_factory=list)   #: aqi_daily_city.csv rows
    past: list[dict] = field(default_factory=list)    #: observed past days
    days: list[dict] = field(default_factory=list)    #: both, by city and date ("kind")
    incomplete: int = 0
    note: str = ""
    sources: list[str] = field(default_factory=list)


def city_tables(products: Path, cfg=None, local=None, verification: Path | None = None
                ) -> CityTables:
    """Build the city tables from the products directory (and a verification directory)."""
    products = Path(products)
    city_csv = products / "aqi_daily_city.csv"
    if not city_csv.exists():
        raise InputFileError(f"{city_csv}: the products have no city table")
    obs = observed_hourly(verification, products)
    out = CityTables(sources=[str(city_csv)])
    out.daily, out.past, out.incomplete = _daily_rows(city_csv, obs)
    out.days = sorted([{**r, "kind": "day-row"} for r in out.daily] +
                      [{**r, "kind": "past-row"} for r in out.past],
                      key=lambda r: (r["city"], str(r["date"])))
    if cfg is not None and cfg.regions:
        rows, files = _window_rows(products, cfg, local, obs)
        out.bands, out.n_window_rows = _bands(rows), len(rows)
        out.window_obs = any(r["obs_n"] for r in rows)
        out.sources = files + out.sources
    else:
        out.note = ("lead-window rows need the config's city outlines: run the bulletin with "
                    "--config CONFIG")
    if verification is not None:
        out.sources += [str(Path(verification) / "paired.csv"),
                        str(products / "aqi_daily_station.csv")]
    return out
