"""Surface concentrations in the reporting units, and gridded real-time and daily AQI.

Reads the forecast contract (``conc_<domain>.nc``: species in ppb (gases) and ug m-3 (aerosols),
dims (time, lev, y, x)) and turns the lowest level (lev index 0) into the six AQI pollutants:

- gases at the China reporting reference state, 298.15 K and 1013.25 hPa (GB 3095-2012 amendment
  of 2018; SCIENCE.md 5.7): ``c [ug m-3] = x [ppb] * M / 24.465`` (via
  :func:`aqforecast.species.ppb_to_ugm3`); CO in mg m-3. 1 ppb O3 = 1.962 ug m-3.
- particles as the model writes them (ug m-3 at ambient T, p, the reporting convention for PM):
  PM2.5 = PPM25 + SO4 + NO3 + NH4 (+ SOA when present); PM10 = PM2.5 + PPM10.

Time convention: the value at valid time t is taken as the mean of the hour ending at t, so its
hour-beginning stamp (the convention of :mod:`.averaging` and of the station files) is t - 1 h,
shifted to local time (:class:`aqforecast.config.localtime.LocalTime`: the config's
``time.local_utc_offset_h``, 8 for Beijing time, or ``time.timezone``). A cycle starting at local
midnight thus fills whole natural days. With a daylight-saving zone the spring-forward day lacks
one local hour (a missing value) and the autumn day has two values for one wall-clock hour
(averaged, :func:`to_daily`).

Gridded AQI (numpy, any trailing shape) follows the rules of :mod:`.aqi` exactly
(:func:`aqforecast.products.aqi.realtime_aqi` and :func:`~aqforecast.products.aqi.daily_aqi` are
the per-station references; the tests compare them cell by cell).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import species as species_registry
from ..config.localtime import LocalTime
from . import aqi as _aqi
from . import averaging as _avg
from .windows import running_mean

log = logging.getLogger(__name__)

#: AQI pollutants, their product variable names and reporting units.
POLLUTANT_VARS = {"PM2.5": "PM25", "PM10": "PM10", "O3": "O3", "NO2": "NO2", "SO2": "SO2",
                  "CO": "CO"}
REPORT_UNITS = {"PM2.5": "ug m-3", "PM10": "ug m-3", "O3": "ug m-3", "NO2": "ug m-3",
                "SO2": "ug m-3", "CO": "mg m-3"}
PM25_COMPONENTS = ("PPM25", "SO4", "NO3", "NH4")
PM25_OPTIONAL = ("SOA",)
#: Reference state of the China gas reporting convention (K, Pa).
REFERENCE_T = 298.15
REFERENCE_P = 101325.0
#: Primary-pollutant flag codes of the gridded products (0 = none, AQI <= 50).
PRIMARY_CODES = ("none", "SO2", "NO2", "PM10", "PM2.5", "CO", "O3")
_MOLE_FRACTION = {"ppb": 1.0, "ppbv": 1.0, "ppm": 1e3, "ppmv": 1e3, "ppt": 1e-3, "pptv": 1e-3,
                  "mol mol-1": 1e9, "1e-9": 1.0}
_MASS = {"ug m-3": 1.0, "ug/m3": 1.0, "µg m-3": 1.0, "mg m-3": 1e3, "kg m-3": 1e9}


def to_reporting_units(values, species: str, units: str) -> np.ndarray:
    """Convert a field of ``species`` in ``units`` to ug m-3 (gas mole fractions at 298.15 K,
    101325 Pa). Raises ValueError on units we do not know."""
    u = (units or "").strip()
    v = np.asarray(values, dtype=float)
    if u in _MOLE_FRACTION:
        return species_registry.ppb_to_ugm3(v * _MOLE_FRACTION[u], species, REFERENCE_T,
                                            REFERENCE_P)
    if u in _MASS:
        return v * _MASS[u]
    raise ValueError(f"{species}: cannot convert units {units!r} to ug m-3 (expected a mole "
                     f"fraction {sorted(_MOLE_FRACTION)} or a mass concentration {sorted(_MASS)})")


@dataclass
class SurfaceFields:
    """Hourly surface fields of one domain in reporting units.

    ``conc[p]``: (ntime, ny, nx) float64 for each AQI pollutant p ("PM2.5", ... "CO");
    ``valid_time``: UTC valid times; ``leads``: hours after ``start``; ``lon``/``lat``: (ny, nx).
    """

    domain: str
    start: pd.Timestamp
    valid_time: pd.DatetimeIndex
    leads: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    conc: dict[str, np.ndarray]
    template: xr.Dataset            #: coordinates x, y, lon, lat, crs (no time, no lev)
    attrs: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def local_hours(self, local) -> pd.DatetimeIndex:
        """Hour-beginning local stamps of the hourly values (valid time - 1 h, in local time).

        ``local``: a :class:`~aqforecast.config.localtime.LocalTime` or hours east of UTC."""
        return LocalTime.coerce(local).to_local(self.valid_time - pd.Timedelta(hours=1))

    @property
    def dx_m(self) -> float:
        x = self.template["x"].values
        return float(abs(x[1] - x[0])) if x.size > 1 else np.inf


def read_surface(path: str | Path, domain: str | None = None) -> SurfaceFields:
    """Read ``conc_<domain>.nc`` and build the surface AQI pollutants (see the module docstring).

    Pollutants whose ingredients are missing are left out (listed in ``missing`` and logged).
    """
    path = Path(path)
    from ..io import open_dataset

    ds = open_dataset(path, required=("time", "lon", "lat"), what="forecast concentration")
    try:
        domain = domain or str(ds.attrs.get("domain", path.stem.removeprefix("conc_")))
        if "forecast_reference_time" in ds.variables:
            start = pd.Timestamp(ds["forecast_reference_time"].values)
        else:
            start = pd.Timestamp(ds["time"].values[0]) - pd.Timedelta(hours=1)
            log.warning("%s: no forecast_reference_time; assuming start %s", path, start)
        vt = pd.DatetimeIndex(ds["time"].values)
        leads = np.round((vt - start) / pd.Timedelta(hours=1)).astype(int).to_numpy()

        def surf(name):
            da = ds[name]
            if "lev" in da.dims:
                da = da.isel(lev=0)
            if "time" not in da.dims:
                raise ValueError(f"{path}: variable {name} has no time dimension")
            da = da.transpose("time", "y", "x")
            return to_reporting_units(da.values, name, da.attrs.get("units", ""))

        have = set(ds.data_vars)
        conc, missing = {}, []
        for gas in ("O3", "NO2", "SO2", "CO"):
            if gas in have:
                c = surf(gas)
                conc[gas] = c / 1000.0 if gas == "CO" else c
            else:
                missing.append(gas)
        comps = [c for c in PM25_COMPONENTS + PM25_OPTIONAL if c in have]
        lacking = [c for c in PM25_COMPONENTS if c not in have]
        if comps:
            if lacking:
                log.warning("%s: PM2.5 without %s (not in the file)", path, ", ".join(lacking))
            pm25 = sum(surf(c) for c in comps)
            conc["PM2.5"] = pm25
            if "PPM10" in have:
                conc["PM10"] = pm25 + surf("PPM10")
            else:
                missing.append("PM10")
        else:
            missing += ["PM2.5", "PM10"]
        if missing:
            log.warning("%s: no %s (ingredients missing)", path, ", ".join(missing))
        keep = [v for v in ("x", "y", "lon", "lat", "crs", "lon_bnds", "lat_bnds", "cell_area")
                if v in ds.variables]
        template = ds[keep].load()
        template = template.drop_vars([c for c in template.coords
                                       if c not in ("x", "y", "lon", "lat")])
        lon = ds["lon"].values.astype(float)
        lat = ds["lat"].values.astype(float)
        attrs = {k: ds.attrs[k] for k in ("start_type", "domain", "dx_m") if k in ds.attrs}
    finally:
        ds.close()
    conc = {p: conc[p] for p in POLLUTANT_VARS if p in conc}
    return SurfaceFields(domain, start, vt, leads, lon, lat, conc, template, attrs, missing)


def _per_row(values, stds: np.ndarray, fn) -> np.ndarray:
    """Apply ``fn(values[m], standard)`` for each standard's rows m along axis 0."""
    v = np.asarray(values, dtype=float)
    out = np.full(v.shape, np.nan)
    for s in np.unique(stds):
        m = stds == s
        out[m] = fn(v[m], s)
    return out


def combine_iaqi(iaqis: dict[str, np.ndarray], stds: np.ndarray):
    """AQI = max IAQI, category and primary-pollutant code from gridded IAQIs.

    ``iaqis``: name -> (nt, ...) arrays; names start with the pollutant ("O3_8h" counts as O3).
    Primary code: :data:`PRIMARY_CODES` index of the pollutant with the largest IAQI when the AQI
    exceeds 50 (ties: the first in SO2, NO2, PM10, PM2.5, CO, O3 order), 0 otherwise.
    Returns (aqi, category, primary) arrays.
    """
    names = list(iaqis)
    stack = np.stack([iaqis[n] for n in names])
    finite = np.isfinite(stack)
    top = np.where(finite.any(axis=0),
                   np.max(np.where(finite, stack, -np.inf), axis=0), np.nan)
    cat = _per_row(top, stds, lambda a, s: _aqi.category(a, s))
    primary = np.zeros(top.shape, dtype=np.int8)
    for code in range(len(PRIMARY_CODES) - 1, 0, -1):   # reverse so the first code wins ties
        p = PRIMARY_CODES[code]
        for k, n in enumerate(names):
            if n == p or n.startswith(p + "_"):
                hit = finite[k] & (stack[k] == top) & (top > 50)
                primary[hit] = code
    return top, cat, primary


def hourly_standards(local_hours: pd.DatetimeIndex, standard: str | None) -> np.ndarray:
    """AQI standard per hour: ``standard`` or the HJ 633 version in force on the local date."""
    if standard is not None:
        _aqi._check_standard(standard)
        return np.full(len(local_hours), standard, dtype=object)
    return np.array([_aqi.standard_for_date(t) for t in local_hours], dtype=object)


def gridded_realtime_aqi(conc: dict[str, np.ndarray], stds: np.ndarray) -> dict[str, np.ndarray]:
    """Hourly (real-time) IAQIs, AQI, category and primary code on a grid.

    ``conc``: pollutant -> (nt, ...) hourly series in ug m-3 (CO mg m-3), consecutive hours;
    ``stds``: HJ 633 standard per hour. Rules as :func:`aqforecast.products.aqi.realtime_aqi`:
    SO2, NO2, CO, O3 on the 1-h tables; particles on the 24-h table from the 24-h running mean
    (>= 20 h; HJ 633-2012) or the hourly value (HJ 633-2026); HJ 633-2012 adds the 8-h running
    mean O3 (>= 6 h). Returns ``iaqi_<p>`` arrays and ``aqi``, ``category``, ``primary``.
    """
    families = {_aqi.RULES[s].family for s in np.unique(stds)}
    if "EPA" in families:
        if families != {"EPA"}:
            raise ValueError("gridded AQI: EPA and HJ 633 standards cannot be mixed in one series")
        from . import epa

        out = epa.realtime(conc)
        top, cat, prim = combine_iaqi({k.removeprefix("iaqi_"): v for k, v in out.items()},
                                      stds)
        out.update(aqi=top, category=cat, primary=prim)
        return out
    out: dict[str, np.ndarray] = {}
    for p, x in conc.items():
        if p in ("PM10", "PM2.5"):
            running = any(_aqi.RULES[s].realtime_pm == "running_24h" for s in np.unique(stds))
            r24 = running_mean(x, 24, _avg.MIN_HOURS_24H) if running else x
            v = np.full(x.shape, np.nan)
            for s in np.unique(stds):
                m = stds == s
                src = r24 if _aqi.RULES[s].realtime_pm == "running_24h" else x
                v[m] = _aqi.iaqi(p, src[m], "24h", s)
            out[f"iaqi_{p}"] = v
        else:
            v = _per_row(x, stds, lambda xm, s, p=p: _aqi.iaqi(p, xm, "1h", s))
            if p == "SO2":
                sub = np.isin(stds, [s for s in np.unique(stds)
                                     if _aqi.RULES[s].so2_1h_above_top == "use_24h"])
                if sub.any():
                    r24 = running_mean(x, 24, _avg.MIN_HOURS_24H)
                    big = sub.reshape((-1,) + (1,) * (x.ndim - 1)) & (x > 800)
                    v = np.where(big, _per_row(r24, stds, lambda xm, s: _aqi.iaqi(
                        "SO2", xm, "24h", s)), v)
            out[f"iaqi_{p}"] = v
    o8_std = [s for s in np.unique(stds) if _aqi.RULES[s].realtime_o3_8h]
    if "O3" in conc and o8_std:
        x1 = conc["O3"]
        o8 = running_mean(x1, 8, _avg.MIN_HOURS_8H)
        v = np.full(x1.shape, np.nan)
        for s in o8_std:
            m = stds == s
            v[m] = _aqi.iaqi("O3", o8[m], "8h", s)
            if _aqi.RULES[s].o3_8h_above_top == "use_1h":
                big = (o8[m] > 800)
                v[m] = np.where(big, _aqi.iaqi("O3", x1[m], "1h", s), v[m])
        out["iaqi_O3_8h"] = v
    top, cat, prim = combine_iaqi({k.removeprefix("iaqi_"): v for k, v in out.items()}, stds)
    out.update(aqi=top, category=cat, primary=prim)
    return out


def to_daily(local_hours: pd.DatetimeIndex, values) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Place an hourly series (nt, ...) on whole local days -> (days, (nday, 24, ...)) with NaN
    for hours the forecast does not cover. Hours must be on the hour; a wall-clock hour given
    twice (the autumn daylight-saving change) holds the mean of its values."""
    v = np.asarray(values, dtype=float)
    day0 = local_hours.min().floor("D")
    pos = np.round((local_hours - day0) / pd.Timedelta(hours=1)).astype(int).to_numpy()
    nday = int(pos.max()) // 24 + 1
    full = np.full((nday * 24,) + v.shape[1:], np.nan)
    if len(np.unique(pos)) == len(pos):
        full[pos] = v
    else:
        ok = np.isfinite(v)
        total = np.zeros_like(full)
        count = np.zeros(full.shape)
        np.add.at(total, pos, np.where(ok, v, 0.0))
        np.add.at(count, pos, ok)
        with np.errstate(invalid="ignore"):
            full = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    days = pd.date_range(day0, periods=nday, freq="D")
    return days, full.reshape((nday, 24) + v.shape[1:])


def _mda8(d: np.ndarray) -> np.ndarray:
    """Daily maximum of the 17 in-day 8-h means (>= 6 h each, >= 14 valid) of (nday, 24, ...)."""
    flat = d.reshape((-1,) + d.shape[2:])
    r8 = running_mean(flat, 8, _avg.MIN_HOURS_8H).reshape(d.shape)[:, 7:]
    r8ok = np.isfinite(r8)
    mx8 = np.max(np.where(r8ok, r8, -np.inf), axis=1)
    return np.where(r8ok.sum(axis=1) >= _avg.MIN_WINDOWS_MDA8, mx8, np.nan)


def _daily_max(d: np.ndarray) -> np.ndarray:
    """Daily maximum 1-h value (>= 20 valid hours) of (nday, 24, ...)."""
    ok = np.isfinite(d)
    mx = np.max(np.where(ok, d, -np.inf), axis=1)
    return np.where(ok.sum(axis=1) >= _avg.MIN_HOURS_24H, mx, np.nan)


def daily_indicators(local_hours: pd.DatetimeIndex, conc: dict[str, np.ndarray],
                     epa: bool = False):
    """Daily indicators on a grid, with the validity rules of :mod:`.averaging`.

    Returns (days, dict) with ``<p>_24h`` natural-day means (>= 20 valid hours) for SO2, NO2,
    CO, PM10, PM2.5, ``O3_8h`` (MDA8: max of the 17 in-day 8-h means of >= 6 h, >= 14 valid) and
    ``O3_1h`` (daily max 1-h, >= 20 h), each (nday, ...); ``epa=True`` adds the US EPA daily
    indicators ``CO_8h`` (daily max 8-h, as MDA8), ``SO2_1h`` and ``NO2_1h`` (daily max 1-h).
    """
    out = {}
    days = None
    for p, x in conc.items():
        days, d = to_daily(local_hours, x)
        ok = np.isfinite(d)
        cnt = ok.sum(axis=1)
        if epa and p == "CO":
            out["CO_8h"] = _mda8(d)
        if epa and p in ("SO2", "NO2"):
            out[f"{p}_1h"] = _daily_max(d)
        if p == "O3":
            out["O3_8h"] = _mda8(d)
            out["O3_1h"] = _daily_max(d)
        else:
            mean = np.where(ok, d, 0.0).sum(axis=1) / np.maximum(cnt, 1)
            out[f"{p}_24h"] = np.where(cnt >= _avg.MIN_HOURS_24H, mean, np.nan)
    return days, out


def gridded_daily_aqi(days: pd.DatetimeIndex, daily: dict[str, np.ndarray],
                      standard: str | None = None) -> dict[str, np.ndarray]:
    """Daily IAQIs, AQI, category and primary code from :func:`daily_indicators` output.

    Rules as :func:`aqforecast.products.aqi.daily_aqi` (HJ 633-2012 includes the daily max 1-h
    O3 and takes the 1-h O3 IAQI where MDA8 > 800 ug m-3).
    """
    stds = hourly_standards(days, standard)
    if standard is not None and _aqi.RULES[standard].family == "EPA":
        from . import epa

        out = epa.daily(daily)
        top, cat, prim = combine_iaqi({k.removeprefix("iaqi_"): v for k, v in out.items()},
                                      stds)
        out.update(aqi=top, category=cat, primary=prim)
        out["standard"] = stds
        return out
    out: dict[str, np.ndarray] = {}
    for col, (p, per) in _aqi.DAILY_INDICATORS.items():
        if col not in daily:
            continue
        x = daily[col]

        def fn(xm, s, col=col, p=p, per=per):
            m = stds == s
            v = _aqi.iaqi(p, xm, per, s)
            r = _aqi.RULES[s]
            if col == "O3_8h" and r.o3_8h_above_top == "use_1h" and "O3_1h" in daily:
                v = np.where(xm > 800, _aqi.iaqi("O3", daily["O3_1h"][m], "1h", s), v)
            if col == "O3_1h" and not r.daily_o3_1h:
                v = np.full(np.shape(xm), np.nan)
            return v
        out[f"iaqi_{col}"] = _per_row(x, stds, fn)
    names = {k.removeprefix("iaqi_"): v for k, v in out.items()}
    top, cat, prim = combine_iaqi(names, stds)
    out.update(aqi=top, category=cat, primary=prim)
    out["standard"] = stds
    return out
