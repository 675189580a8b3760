"""Inventory units: any emission unit string to Mg per source cell per inventory period.

Gridded inventories come either as a *mass per cell per period* (MEIC ``t/(grid month)``, EDGAR
``_emi`` files ``Tonnes`` per cell per year, the native ``Mg year-1``, ``kg/h`` per cell...) or as
a *flux* (EDGAR ``_flx``, CAMS-GLOB-ANT, HTAP: ``kg m-2 s-1``; also ``g m-2 s-1``,
``molecules cm-2 s-1``, ``mol km-2 h-1``). :func:`parse_emission_units` reads the string with
cf-units (UDUNITS-2, the library CF names for ``units``) after taking out what UDUNITS cannot
know about emission inventories:

* a *calendar period*: ``year``/``yr``/``a``/``annum`` or ``month``/``mon`` to the power -1 means
  "per inventory year / per calendar month", NOT UDUNITS' 365.2422-day year and 30.44-day month:
  the mass is taken as given for that period;
* *per cell*: ``cell``, ``grid``, ``gridcell``, ``box`` to the power -1 are dropped (mass per
  source cell is what a gridded file holds);
* ``molecules``/``molec``: converted to mol with the Avogadro constant; amounts (mol) become
  mass with the pollutant's molar mass (NOx as NO2, SOx as SO2; NMVOC and PM have none, an error);
* ``ton``/``tons``: refused as ambiguous (UDUNITS reads them as the US short ton, 907.18 kg;
  inventories mean the metric tonne): write ``t``/``tonne``/``Mg`` or ``short_ton``; ``kt``
  likewise (UDUNITS: the knot): write ``Gg``.

What remains must convert (cf-units) to one of ``kg``, ``kg s-1``, ``kg m-2`` or ``kg m-2 s-1``
(or the same with ``mol``). A rate (anything per time other than the calendar period) is
integrated over the inventory period's own calendar: the inventory year (365 or 366 days,
``inputs.emissions.base_year``) for annual data, each calendar month of that year for monthly
data. A per-area quantity is multiplied by the source cell's area on the sphere,

    A = R^2 * (lambda_2 - lambda_1) * (sin phi_2 - sin phi_1)        (lambda in radians)

the exact area of a lon/lat cell on a sphere of radius R (e.g. Snyder 1987, "Map Projections -
A Working Manual", USGS PP 1395, eq. for the area of a quadrangle on the sphere), with R the
model's Earth radius :data:`aqforecast.constants.EARTH_RADIUS` = 6 370 000 m (WRF's sphere, the
one the model grid uses), unless the file names its own cell areas through CF ``cell_measures``.
The IUGG mean radius 6 371 008.8 m would give areas 3.2e-4 larger: inventories computed with
another radius convert to mass with that relative difference.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

import numpy as np

from ..constants import EARTH_RADIUS, N_AVOGADRO

__all__ = ["EmissionUnits", "UnitsError", "parse_emission_units", "cell_area_lonlat",
           "period_seconds"]

_YEAR = {"year", "years", "yr", "yrs", "a", "annum", "y"}
_MONTH = {"month", "months", "mon", "mo", "mth"}
_CELL = {"cell", "cells", "grid", "gridcell", "gridcells", "gridbox", "box"}
_MOLECULE = {"molecules", "molecule", "molec"}
_AMBIGUOUS = {"ton": "UDUNITS reads the US short ton, 907.18 kg; write 't', 'tonne' or 'Mg' "
                     "for the metric tonne, or 'short_ton'",
              "kt": "UDUNITS reads the knot (a speed); write 'Gg' for the kilotonne"}
_AMBIGUOUS["tons"] = _AMBIGUOUS["ton"]
_TOKEN = re.compile(r"\(|\)|/|[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?(?![^\s/()*\u00b7])"
                    r"|[^\s/().*\u00b7]+")
_TERM = re.compile(r"^([^\W\d]+)(?:\^|\*\*)?([-+]?\d+)?$")
_REFERENCES = (("kg", False, False), ("kg s-1", False, True), ("kg m-2", True, False),
               ("kg m-2 s-1", True, True))


class UnitsError(ValueError):
    """A unit string that is not an emission amount; the message says why."""


@dataclass(frozen=True)
class EmissionUnits:
    """A parsed emission unit.

    ``to_si``: factor to kg (or mol when ``molar``) per [m-2] [s-1]; ``per_area``: multiply by
    the cell area (m2); ``per_second``: multiply by the seconds of the period; ``period``:
    ``"year"``/``"month"`` when the unit names a calendar period, else None (a bare mass is per
    the data's own period).
    """

    text: str
    to_si: float
    per_area: bool
    per_second: bool
    period: str | None
    molar: bool

    def mg_factor(self, area_m2=None, seconds: float | None = None,
                  molar_mass_g: float | None = None):
        """Factor (scalar or array shaped like ``area_m2``) from the unit to Mg per cell per
        period."""
        f = self.to_si * 1e-3
        if self.molar:
            if molar_mass_g is None:
                raise UnitsError(f"{self.text!r} is an amount of substance, and this pollutant "
                                 "has no molar mass (NMVOC and PM need mass units)")
            f = f * molar_mass_g * 1e-3
        if self.per_second:
            f = f * float(seconds)
        if self.per_area:
            f = f * np.asarray(area_m2, dtype=float)
        return f


def _terms(text: str) -> list[tuple[str, int]]:
    """(name, exponent) factors of a unit string; '/' divides the next factor or group."""
    out: list[tuple[str, int]] = []
    stack = [1]            # sign of the enclosing groups
    pending = 1            # sign for the next factor or group ('/' seen)
    for tok in _TOKEN.findall(text.replace("**", "^").replace("per ", "/ ")
                              .replace("grid-cell", "cell")
                              .replace("grid cell", "cell").replace("grid_cell", "cell")):
        if tok == "/":
            pending = -1
            continue
        if tok == "(":
            stack.append(stack[-1] * pending)
            pending = 1
            continue
        if tok == ")":
            if len(stack) == 1:
                raise UnitsError("unbalanced ')'")
            stack.pop()
            pending = 1
            continue
        sign = stack[-1] * pending
        pending = 1
        try:
            out.append((repr(float(tok)), sign))      # a number: a scale factor
            continue
        except ValueError:
            pass
        m = _TERM.match(tok)
        if not m:
            raise UnitsError(f"cannot read the factor {tok!r}")
        out.append((m.group(1), sign * int(m.group(2) or 1)))
    if len(stack) != 1:
        raise UnitsError("unbalanced '('")
    return out


def parse_emission_units(text: str | None) -> EmissionUnits:
    """Parse an emission unit (module docstring); raises :class:`UnitsError` saying why not."""
    import cf_units

    if text is None or not str(text).strip():
        raise UnitsError("no units given")
    text = str(text).strip()
    period = None
    scale = 1.0
    molar = False
    kept: list[str] = []
    for name, exp in _terms(text):
        low = name.lower()
        if low in _YEAR and exp == -1 or low in _MONTH and exp == -1:
            new = "year" if low in _YEAR else "month"
            if period not in (None, new):
                raise UnitsError("names both a year and a month")
            period = new
        elif low in _CELL and exp == -1:
            continue
        elif low in _MOLECULE and exp == 1:
            scale /= N_AVOGADRO
            molar = True
            kept.append("mol")
        elif low in _AMBIGUOUS:
            raise UnitsError(f"{name!r} is ambiguous ({_AMBIGUOUS[low]})")
        elif is_number(name):
            scale *= float(name) ** exp
        else:
            kept.append(name if exp == 1 else f"{name}{exp}")
    if not kept:
        raise UnitsError("no mass or amount in it")
    try:
        unit = cf_units.Unit(" ".join(kept))
    except ValueError as exc:
        raise UnitsError(f"UDUNITS cannot parse {' '.join(kept)!r} ({exc})") from None
    for mass in ("kg", "mol"):
        for ref, per_area, per_second in _REFERENCES:
            ref = ref.replace("kg", mass)
            if unit.is_convertible(ref):
                if per_second and period is not None:
                    raise UnitsError(f"is a rate per time and per {period} at once")
                return EmissionUnits(text, scale * float(unit.convert(1.0, ref)), per_area,
                                     per_second, period, molar or mass == "mol")
    raise UnitsError("is not a mass (or amount) per cell per period nor a flux per area and "
                     "time")


def is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def period_seconds(year: int, month: int | None = None) -> float:
    """Seconds in calendar ``year`` (365 or 366 days) or in ``month`` (1-12) of it."""
    days = calendar.monthrange(year, month)[1] if month else (366 if calendar.isleap(year)
                                                              else 365)
    return days * 86400.0


def cell_area_lonlat(lon_edges, lat_edges, radius: float = EARTH_RADIUS) -> np.ndarray:
    """Area (m2) of the lon/lat cells between the given edges (deg), (nlat, nlon), on a sphere
    of ``radius``: R^2 * dlambda * (sin phi2 - sin phi1) (module docstring)."""
    lon = np.deg2rad(np.asarray(lon_edges, dtype=float))
    lat = np.deg2rad(np.asarray(lat_edges, dtype=float))
    return radius ** 2 * np.abs(np.diff(np.sin(lat)))[:, None] * np.abs(np.diff(lon))[None, :]
