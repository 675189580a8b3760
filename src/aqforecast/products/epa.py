"""The US EPA AQI (40 CFR 58 App. G, as revised 2024-03-06) on the products' series and grids.

The breakpoints and the per-pollutant index are :func:`aqforecast.products.aqi.iaqi` with
``standard="EPA-2024"`` (EPA units: PM ug m-3, O3 and CO ppm, SO2 and NO2 ppb; truncation and
rounding as the rule says). This module owns what the table does not say: which averages enter
the daily and the hourly index, and the conversion from the products' reporting units.

Units: the products hold gases in ug m-3 (CO mg m-3) at 298.15 K and 1013.25 hPa, which is also
the EPA's reference state (25 degC, 760 mm Hg; 40 CFR 50.3), so ``ppb = c * 24.465 / M`` exactly
inverts the products' conversion (:mod:`.surface`).

Daily index (AirNow / AQS daily AQI): PM2.5 and PM10 24-h means; O3 daily maximum 8-h mean
(MDA8, the products' windows inside the local day) and, where the daily maximum 1-h O3 reaches
0.125 ppm, the 1-h index too (the larger counts, "more precautionary"); CO daily maximum 8-h mean
(same windows as MDA8 [L: AQS counts 8-h windows ending in the day]); SO2 and NO2 daily maximum
1-h. SO2 1-h above 304 ppb has no 1-h index: the 24-h mean SO2 gives it on the 24-h rows
(>= 305 ppb), and a 24-h mean below them counts 200, the top of the 1-h rows [L]. Days need the
products' validity rules (:mod:`.averaging`: 20 valid hours, 14 valid 8-h windows).

Hourly ("real-time") index: the EPA publishes no hourly AQI other than the NowCast, which is not
implemented here. The hourly products use PM2.5/PM10 hourly values on the 24-h rows (as HJ
633-2026 does for its real-time particles), O3 and CO 8-h running means (>= 6 valid hours) plus
O3 1-h at >= 0.125 ppm, SO2 and NO2 1-h values: an indicative hourly index, named as such in the
files.
"""

from __future__ import annotations

import numpy as np

from .. import species as species_registry
from . import aqi as _aqi
from . import averaging as _avg
from .windows import running_mean

STANDARD = "EPA-2024"
#: daily indicator (column) -> (pollutant, EPA period) of the EPA daily index
DAILY_INDICATORS = {"PM2.5_24h": ("PM2.5", "24h"), "PM10_24h": ("PM10", "24h"),
                    "O3_8h": ("O3", "8h"), "O3_1h": ("O3", "1h"), "CO_8h": ("CO", "8h"),
                    "SO2_1h": ("SO2", "1h"), "NO2_1h": ("NO2", "1h")}
#: the 1-h SO2 above which the EPA index comes from the 24-h mean, ppb
SO2_1H_TOP_PPB = 304.0
_REF_T, _REF_P = 298.15, 101325.0


def to_epa_units(pollutant: str, values) -> np.ndarray:
    """Products' reporting units (ug m-3; CO mg m-3) -> the EPA table's units (PM ug m-3,
    O3/CO ppm, SO2/NO2 ppb)."""
    v = np.asarray(values, dtype=float)
    if pollutant in ("PM2.5", "PM10"):
        return v
    per_ppb = float(species_registry.ppb_to_ugm3(1.0, pollutant, _REF_T, _REF_P))  # ug m-3
    if pollutant == "CO":
        return v * 1000.0 / per_ppb / 1000.0      # mg m-3 -> ug m-3 -> ppb -> ppm
    ppb = v / per_ppb
    return ppb / 1000.0 if pollutant == "O3" else ppb


def iaqis(indicators: dict, so2_24h=None) -> dict:
    """EPA IAQIs of indicator arrays in reporting units.

    ``indicators``: column (keys of :data:`DAILY_INDICATORS`, or the hourly ones ``PM2.5``,
    ``PM10``, ``O3_8h``, ``O3``, ``CO_8h``, ``SO2``, ``NO2``) -> array; ``so2_24h``: the 24-h SO2
    mean (reporting units) used where 1-h SO2 exceeds 304 ppb. Returns ``iaqi_<column>`` arrays.
    """
    out = {}
    for col, x in indicators.items():
        p, period = _pollutant_period(col)
        c = to_epa_units(p, x)
        v = np.asarray(_aqi.iaqi(p, c, period, STANDARD), dtype=float)
        if p == "SO2" and period == "1h":
            above = np.isfinite(c) & (c > SO2_1H_TOP_PPB)
            if np.any(above):
                sub = np.full(np.shape(c), 200.0)
                if so2_24h is not None:
                    c24 = to_epa_units("SO2", so2_24h)
                    v24 = np.asarray(_aqi.iaqi("SO2", c24, "24h", STANDARD), dtype=float)
                    sub = np.where(np.isfinite(v24), v24, 200.0)
                v = np.where(above, sub, v)
        out[f"iaqi_{col}"] = v
    return out


def _pollutant_period(col: str) -> tuple[str, str]:
    if col in DAILY_INDICATORS:
        return DAILY_INDICATORS[col]
    hourly = {"PM2.5": ("PM2.5", "24h"), "PM10": ("PM10", "24h"), "O3": ("O3", "1h"),
              "SO2": ("SO2", "1h"), "NO2": ("NO2", "1h")}
    if col in hourly:
        return hourly[col]
    raise ValueError(f"no EPA indicator {col!r}; expected one of "
                     f"{sorted(DAILY_INDICATORS) + sorted(hourly)}")


def hourly_indicators(conc: dict) -> dict:
    """Hourly EPA indicators from consecutive hourly series (nt, ...) in reporting units:
    PM2.5, PM10, O3 (1-h), SO2, NO2 as given; ``O3_8h`` and ``CO_8h`` trailing 8-h running
    means (>= 6 valid hours)."""
    out = {}
    for p, x in conc.items():
        if p in ("CO", "O3"):
            out[f"{p}_8h"] = running_mean(x, 8, _avg.MIN_HOURS_8H)
        if p != "CO":
            out[p] = np.asarray(x, dtype=float)
    return out


def realtime(conc: dict) -> dict:
    """Indicative hourly EPA IAQIs (module docstring) from (nt, ...) hourly series."""
    ind = hourly_indicators(conc)
    so2_24 = running_mean(conc["SO2"], 24, _avg.MIN_HOURS_24H) if "SO2" in conc else None
    return iaqis(ind, so2_24h=so2_24)


def daily(indicators: dict) -> dict:
    """Daily EPA IAQIs from daily indicators (:data:`DAILY_INDICATORS` columns plus, when
    present, ``SO2_24h`` for the SO2 rule)."""
    use = {k: v for k, v in indicators.items() if k in DAILY_INDICATORS}
    return iaqis(use, so2_24h=indicators.get("SO2_24h"))
