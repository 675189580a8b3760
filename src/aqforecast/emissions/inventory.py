"""Emission-inventory input formats: gridded NetCDF on a lon/lat grid, point and area source CSVs.

Inventory pollutants
--------------------
Inventories carry the pollutants of MEIC/MIX-style inventories (Li et al. 2017, ACP 17, 935),
in Mg (= metric tonnes) per cell (or per source) per year or per month:

==========  =======================================================================
name        meaning (accepted spellings, case-insensitive)
==========  =======================================================================
``SO2``     sulfur oxides as SO2 mass (``SO2``, ``SOx``)
``NOx``     nitrogen oxides as NO2 mass (``NOx``)
``CO``      carbon monoxide (``CO``)
``NMVOC``   non-methane VOC, total mass (``NMVOC``, ``NMVOCs``, ``VOC``)
``NH3``     ammonia (``NH3``)
``PM25``    primary PM2.5 (``PM25``, ``PM2.5``, ``PM2_5``)
``PM10``    primary PM10 incl. PM2.5 (``PM10``); or give the coarse part as ``PMC``
==========  =======================================================================

Internally PM10 is replaced by its coarse part ``PMC = PM10 - PM25`` (so every internal pollutant
is disjoint and scaling PM2.5 never changes the coarse mass); :data:`POLLUTANTS` is that list.

Gridded NetCDF layout (accepted exactly as written here)
--------------------------------------------------------
* 1-D coordinate variables ``lon`` (degrees_east, cell centres, increasing, regular spacing) and
  ``lat`` (degrees_north, cell centres, regular spacing, increasing or decreasing). Cell edges
  are the mid-points (half a spacing beyond the ends); optional ``lon_bnds(lon, 2)`` and
  ``lat_bnds(lat, 2)`` override them and must be contiguous.
* a 1-D string coordinate ``sector`` (sector names, e.g. ``industry``).
* the data, either
  (A) one variable ``emissions`` with dims ``(sector, species, lat, lon)`` plus a string
  coordinate ``species`` holding pollutant names, or
  (B) one variable per pollutant named as in the table above, dims ``(sector, lat, lon)``;
  in both a leading ``month`` dim of length 12 (January first) makes the file monthly.
* every data variable has ``units``: mass per cell per period, ``Mg year-1`` (annual) or
  ``Mg month-1`` (monthly); ``t``/``tonnes`` for Mg, ``yr``/``a`` for year, ``mon`` for month,
  ``/`` or ``-1`` notation and an optional ``cell-1`` are accepted. Values are finite and >= 0.

Point sources CSV (one row per stack)
-------------------------------------
Columns ``id, lon, lat, stack_height_m, stack_diameter_m, exit_velocity_ms, exit_temperature_k,
sector`` plus one column per pollutant (names as above) in Mg year-1; a missing pollutant column
means 0. Optional ``name`` column. Lines starting with ``#`` are comments.

Area sources CSV (one row per source)
-------------------------------------
Columns ``id, sector`` and either ``wkt`` (a WKT ``POLYGON``/``MULTIPOLYGON`` in lon/lat degrees;
the mass is spread uniformly over the polygon's area) or ``lon, lat`` (the mass goes to the model
cell containing that point), plus pollutant columns in Mg year-1.

Every reader raises :class:`aqforecast.io.InputFileError` naming the file, the variable/dim or the
CSV line and column, and what was expected.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import InputFileError, open_dataset
from ..io.text import read_text

log = logging.getLogger(__name__)

__all__ = [
    "POLLUTANTS",
    "canonical_pollutant",
    "GriddedInventory",
    "PointSources",
    "AreaSources",
    "read_gridded_inventory",
    "read_point_sources",
    "read_area_sources",
    "check_cell_masses",
    "split_pm10",
]

#: Internal inventory pollutants (PMC = PM10 - PM2.5), in this order everywhere.
POLLUTANTS: tuple[str, ...] = ("SO2", "NOx", "CO", "NMVOC", "NH3", "PM25", "PMC")

_ALIASES = {
    "so2": "SO2", "sox": "SO2",
    "nox": "NOx",
    "co": "CO",
    "nmvoc": "NMVOC", "nmvocs": "NMVOC", "voc": "NMVOC",
    "nh3": "NH3",
    "pm25": "PM25", "pm2.5": "PM25", "pm2_5": "PM25", "pm2p5": "PM25",
    "pm10": "PM10",
    "pmc": "PMC", "pmcoarse": "PMC", "pm_coarse": "PMC",
}

_UNITS_RE = re.compile(
    r"^\s*(mg|t|tonne|tonnes|ton)\s*(?:(?:/|\s)\s*cell(?:-1)?\s*)?(?:/|\s)\s*"
    r"(year|yr|a|month|mon)(?:-1)?\s*(?:(?:/|\s)\s*cell(?:-1)?)?\s*$", re.IGNORECASE)


def canonical_pollutant(name: str) -> str | None:
    """Canonical inventory pollutant name for ``name`` (PM10 stays PM10), or None."""
    return _ALIASES.get(str(name).strip().lower())


def _period_of_units(units: str | None) -> str | None:
    """'year' or 'month' for an accepted mass-per-period unit string, else None."""
    if not units:
        return None
    m = _UNITS_RE.match(units)
    if not m:
        return None
    return "year" if m.group(2).lower() in ("year", "yr", "a") else "month"


def split_pm10(values: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """Replace PM10 by PMC = PM10 - PM25 in a {pollutant: array} dict (in place, returned)."""
    if "PM10" in values:
        if "PMC" in values:
            raise InputFileError(f"{where}: give either PM10 or PMC, not both")
        pm10 = values.pop("PM10")
        pm25 = values.get("PM25", np.zeros_like(pm10))
        pmc = pm10 - pm25
        tol = 1e-9 * np.maximum(np.abs(pm10), 1e-30)
        bad = pmc < -tol
        if np.any(bad):
            raise InputFileError(
                f"{where}: PM10 < PM2.5 in {int(bad.sum())} value(s) (first at flat index "
                f"{int(np.flatnonzero(bad)[0])}); PM10 must include PM2.5")
        values["PMC"] = np.maximum(pmc, 0.0)
    return values


# --------------------------------------------------------------------------- gridded NetCDF
@dataclass
class GriddedInventory:
    """A gridded inventory on a regular lon/lat grid.

    Attributes
    ----------
    lon_edges, lat_edges: cell edges, degrees, increasing, (nlon+1,) and (nlat+1,).
    sectors: sector names (nsector,).
    mass: Mg per cell per period, ``(nperiod, nsector, npollutant, nlat, nlon)`` with pollutants
        in :data:`POLLUTANTS` order; nperiod = 1 (annual, Mg year-1) or 12 (monthly, Mg month-1).
    period: ``"year"`` or ``"month"``.
    source: file name or description (for messages).
    """

    lon_edges: np.ndarray
    lat_edges: np.ndarray
    sectors: tuple[str, ...]
    mass: np.ndarray
    period: str = "year"
    source: str = "<memory>"
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.lon_edges = np.asarray(self.lon_edges, dtype=float)
        self.lat_edges = np.asarray(self.lat_edges, dtype=float)
        self.mass = np.asarray(self.mass, dtype=float)
        self.sectors = tuple(self.sectors)
        nper = 1 if self.period == "year" else 12
        expect = (nper, len(self.sectors), len(POLLUTANTS), self.lat_edges.size - 1,
                  self.lon_edges.size - 1)
        if self.period not in ("year", "month"):
            raise ValueError(f"{self.source}: period must be 'year' or 'month', got {self.period!r}")
        if self.mass.shape != expect:
            raise ValueError(f"{self.source}: mass has shape {self.mass.shape}, expected {expect} "
                             "(period, sector, pollutant, lat, lon)")
        if np.any(np.diff(self.lon_edges) <= 0) or np.any(np.diff(self.lat_edges) <= 0):
            raise ValueError(f"{self.source}: lon/lat edges must increase strictly")

    @property
    def annual_mass(self) -> np.ndarray:
        """Mg per cell per year, ``(nsector, npollutant, nlat, nlon)``."""
        return self.mass.sum(axis=0)

    def totals(self) -> dict[tuple[str, str], float]:
        """Annual totals in Mg per (sector, pollutant)."""
        a = self.annual_mass.sum(axis=(-2, -1))
        return {(s, p): float(a[i, k]) for i, s in enumerate(self.sectors)
                for k, p in enumerate(POLLUTANTS)}


def _edges(ds, name: str, path: Path) -> tuple[np.ndarray, bool]:
    """Cell edges (increasing) of coordinate ``name`` and whether the data must be flipped."""
    if name not in ds.variables:
        raise InputFileError(f"{path}: gridded inventory lacks coordinate variable {name!r} "
                             f"(1-D cell centres in degrees)")
    c = np.asarray(ds[name].values, dtype=float)
    if c.ndim != 1 or c.size < 1 or ds[name].dims != (name,):
        raise InputFileError(f"{path}: coordinate {name!r} must be 1-D with dim ({name!r},), got "
                             f"dims {ds[name].dims}")
    if not np.all(np.isfinite(c)):
        raise InputFileError(f"{path}: coordinate {name!r} has non-finite values")
    flip = c.size > 1 and c[1] < c[0]
    if name == "lon" and flip:
        raise InputFileError(f"{path}: coordinate 'lon' must increase (west to east)")
    if flip:
        c = c[::-1]
    bname = f"{name}_bnds"
    if bname in ds.variables:
        b = np.asarray(ds[bname].values, dtype=float)
        if b.shape != (c.size, 2):
            raise InputFileError(f"{path}: {bname!r} has shape {b.shape}, expected ({c.size}, 2)")
        b = np.sort(b[::-1] if flip else b, axis=1)
        if np.any(np.abs(b[1:, 0] - b[:-1, 1]) > 1e-9 * max(1.0, np.abs(b).max())):
            raise InputFileError(f"{path}: {bname!r} cells are not contiguous")
        return np.concatenate([b[:, 0], b[-1:, 1]]), flip
    if c.size < 2:
        raise InputFileError(f"{path}: coordinate {name!r} has one value; add {bname!r}")
    d = np.diff(c)
    if np.any(d <= 0) or np.max(np.abs(d - d.mean())) > 1e-6 * abs(d.mean()):
        raise InputFileError(f"{path}: coordinate {name!r} must be strictly monotonic with regular "
                             f"spacing (or give {bname!r}); spacing ranges {d.min():g}..{d.max():g}")
    return np.concatenate([c - 0.5 * d.mean(), c[-1:] + 0.5 * d.mean()]), flip


_BOUNDS = ("lon_bnds", "lat_bnds")


def _string_coord(ds, name: str, path: Path) -> list[str]:
    if name not in ds.variables:
        raise InputFileError(f"{path}: gridded inventory lacks string coordinate {name!r}")
    vals = [str(v.decode() if isinstance(v, bytes) else v).strip()
            for v in np.atleast_1d(ds[name].values)]
    if len(set(vals)) != len(vals):
        raise InputFileError(f"{path}: coordinate {name!r} has duplicate entries {vals}")
    return vals


#: Largest plausible emission of one pollutant from one sector in one inventory cell,
#: Mg year-1: ten times the largest single sources (a 5 GW coal plant emitted ~1e5 Mg SO2 a
#: year before desulphurisation; a megacity's whole CO ~1e6 Mg). Above is a unit or fill-value
#: error (1e30).
MAX_CELL_MG_PER_YEAR = 1e7


def check_cell_masses(a: np.ndarray, path: Path, var: str, per_year: float = 1.0) -> None:
    """Finite, >= 0 and <= :data:`MAX_CELL_MG_PER_YEAR` (``per_year``: periods per year)."""
    big = a * per_year > MAX_CELL_MG_PER_YEAR
    if np.any(big):
        idx = tuple(int(i) for i in np.argwhere(big)[0])
        raise InputFileError(f"{path}: variable {var!r} has {float(a[idx]):g} at index {idx}; "
                             f"expected at most {MAX_CELL_MG_PER_YEAR:g} Mg year-1 per cell "
                             f"and sector ({int(big.sum())} value(s) affected)")
    if not np.all(np.isfinite(a)):
        raise InputFileError(f"{path}: variable {var!r} has {int((~np.isfinite(a)).sum())} "
                             "non-finite value(s); expected finite masses >= 0")
    if np.any(a < 0):
        raise InputFileError(f"{path}: variable {var!r} has {int((a < 0).sum())} negative "
                             f"value(s) (min {a.min():g}); expected masses >= 0")


def read_gridded_inventory(path: str | Path) -> GriddedInventory:
    """Read and validate a gridded inventory NetCDF (layout in the module docstring)."""
    path = Path(path)
    ds = open_dataset(path, what="gridded emission inventory")
    try:
        lon_e, _ = _edges(ds, "lon", path)
        lat_e, flip = _edges(ds, "lat", path)
        sectors = _string_coord(ds, "sector", path)
        values: dict[str, np.ndarray] = {}
        period = None
        if "emissions" in ds.data_vars:
            layouts = [("sector", "species", "lat", "lon"),
                       ("month", "sector", "species", "lat", "lon")]
            var = ds["emissions"]
            if var.dims not in layouts:
                raise InputFileError(f"{path}: variable 'emissions' has dims {var.dims}, expected "
                                     f"{layouts[0]} or {layouts[1]}")
            species = _string_coord(ds, "species", path)
            items = []
            for k, s in enumerate(species):
                p = canonical_pollutant(s)
                if p is None:
                    raise InputFileError(f"{path}: coordinate 'species' entry {s!r} is not an "
                                         f"inventory pollutant; expected one of "
                                         f"{', '.join(POLLUTANTS[:-1])}, PM10 or PMC")
                items.append(("emissions", p, var.isel(species=k)))
        else:
            items = []
            for name in ds.data_vars:
                p = canonical_pollutant(name)
                if p is not None:
                    items.append((name, p, ds[name]))
            if not items:
                raise InputFileError(
                    f"{path}: no emission variables: expected a variable 'emissions(sector, "
                    f"species, lat, lon)' or one variable per pollutant named SO2, NOx, CO, "
                    f"NMVOC, NH3, PM25, PM10 with dims (sector, lat, lon); found "
                    f"{', '.join(map(str, ds.data_vars)) or 'none'}")
        read = {"emissions"} if "emissions" in ds.data_vars else {n for n, _, _ in items}
        unknown = [str(v) for v in ds.data_vars if v not in read and v not in _BOUNDS]
        for name, p, var in items:
            dims = tuple(d for d in var.dims)
            allowed = [("sector", "lat", "lon"), ("month", "sector", "lat", "lon")]
            if dims not in allowed:
                raise InputFileError(f"{path}: variable {name!r} has dims {var.dims}, expected "
                                     f"{allowed[0]} or {allowed[1]}")
            if "month" in dims and var.sizes["month"] != 12:
                raise InputFileError(f"{path}: variable {name!r}: dim 'month' has length "
                                     f"{var.sizes['month']}, expected 12")
            per = _period_of_units(var.attrs.get("units", ds[name].attrs.get("units")))
            if per is None:
                raise InputFileError(
                    f"{path}: variable {name!r} has units {var.attrs.get('units')!r}; expected "
                    "mass per cell per period: 'Mg year-1' (annual) or 'Mg month-1' (monthly)")
            want = "month" if "month" in dims else "year"
            if per != want:
                raise InputFileError(f"{path}: variable {name!r} has units per {per} but "
                                     f"{'a' if want == 'month' else 'no'} 'month' dim; expected "
                                     f"'Mg {want}-1'")
            if period not in (None, per):
                raise InputFileError(f"{path}: variable {name!r} is per {per}, others per "
                                     f"{period}; all must share one period")
            period = per
            if p in values:
                raise InputFileError(f"{path}: pollutant {p} given twice (variable {name!r})")
            a = np.asarray(var.values, dtype=float)
            if a.ndim == 3:
                a = a[None]
            if flip:
                a = a[..., ::-1, :]
            check_cell_masses(a, path, name, 12.0 if per == "month" else 1.0)
            values[p] = a
        nper = 12 if period == "month" else 1
        shape = (nper, len(sectors), lat_e.size - 1, lon_e.size - 1)
        values = split_pm10(values, f"{path}")
        mass = np.zeros((nper, len(sectors), len(POLLUTANTS), shape[2], shape[3]))
        for k, p in enumerate(POLLUTANTS):
            if p in values:
                mass[:, :, k] = values[p]
        attrs = dict(ds.attrs)
    finally:
        ds.close()
    if unknown:
        log.warning("%s: variable(s) %s not read: not inventory pollutants (the native layout "
                    "reads SO2, NOx, CO, NMVOC, NH3, PM25, PM10 or PMC; to map other names give "
                    "inputs.emissions.gridded as {path, layout: pattern, mapping}, see "
                    "docs/inventory_formats.md)", path, ", ".join(unknown))
    missing = [p for p in POLLUTANTS if p not in values]
    if missing:
        log.info("%s: pollutants %s absent, taken as 0", path, ", ".join(missing))
    return GriddedInventory(lon_e, lat_e, tuple(sectors), mass, period, str(path), attrs)


# --------------------------------------------------------------------------- CSV readers
def _read_csv_rows(path: Path, what: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """(header, [(line number, row dict)]) skipping '#' comment and blank lines."""
    if not path.exists():
        raise InputFileError(f"{path}: {what} file does not exist")
    rows = []
    text = read_text(path, what=what)
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputFileError(f"{path}: {what} file is empty")
    reader = csv.reader([ln for _, ln in lines])
    header = [h.strip() for h in next(reader)]
    for (lineno, _), rec in zip(lines[1:], reader):
        if len(rec) != len(header):
            raise InputFileError(f"{path}, line {lineno}: {len(rec)} fields, expected "
                                 f"{len(header)} ({', '.join(header)})")
        rows.append((lineno, {h: v.strip() for h, v in zip(header, rec)}))
    return header, rows


def _num(path: Path, lineno: int, col: str, text: str, lo: float | None = None,
         hi: float | None = None, lo_open: bool = False, what: str = "a number") -> float:
    try:
        v = float(text)
    except ValueError:
        raise InputFileError(f"{path}, line {lineno}, column {col!r}: {text!r} is not a number; "
                             f"expected {what}") from None
    if not np.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or (
            hi is not None and v > hi):
        raise InputFileError(f"{path}, line {lineno}, column {col!r}: {v:g} is out of range; "
                             f"expected {what}")
    return v


def _pollutant_columns(header: list[str], path: Path, fixed: set[str]) -> dict[str, str]:
    cols = {}
    for h in header:
        if h in fixed:
            continue
        p = canonical_pollutant(h)
        if p is None:
            raise InputFileError(f"{path}: unknown column {h!r}; expected {', '.join(sorted(fixed))}"
                                 f" and pollutant columns SO2, NOx, CO, NMVOC, NH3, PM25, PM10")
        if p in cols.values():
            raise InputFileError(f"{path}: pollutant {p} appears in two columns")
        cols[h] = p
    if not cols:
        raise InputFileError(f"{path}: no pollutant columns (SO2, NOx, CO, NMVOC, NH3, PM25, PM10)")
    return cols


def _rates(path, lineno, row, pcols) -> np.ndarray:
    vals = {p: np.array(_num(path, lineno, h, row[h], lo=0.0, what="an emission rate >= 0 in "
                             "Mg year-1")) for h, p in pcols.items()}
    vals = split_pm10(vals, f"{path}, line {lineno}")
    return np.array([float(vals.get(p, 0.0)) for p in POLLUTANTS])


@dataclass
class PointSources:
    """Stacks: arrays of length npoint; ``rates`` Mg year-1 ``(npoint, npollutant)``."""

    ids: tuple[str, ...]
    lon: np.ndarray
    lat: np.ndarray
    stack_height: np.ndarray       # m
    stack_diameter: np.ndarray     # m
    exit_velocity: np.ndarray      # m s-1
    exit_temperature: np.ndarray   # K
    sectors: tuple[str, ...]
    rates: np.ndarray
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> "PointSources":
        z = np.zeros(0)
        return cls((), z, z, z, z, z, z, (), np.zeros((0, len(POLLUTANTS))))


_POINT_COLS = {
    "lon": (-180.0, 360.0, "longitude in degrees east"),
    "lat": (-90.0, 90.0, "latitude in degrees north"),
    "stack_height_m": (0.0, 700.0, "stack height 0..700 m"),
    "stack_diameter_m": (0.0, 50.0, "stack diameter > 0 and <= 50 m"),
    "exit_velocity_ms": (0.0, 100.0, "exit velocity 0..100 m s-1"),
    "exit_temperature_k": (150.0, 2000.0, "exit temperature 150..2000 K"),
}


def read_point_sources(path: str | Path) -> PointSources:
    """Read and validate a point-source CSV (columns in the module docstring)."""
    path = Path(path)
    header, rows = _read_csv_rows(path, "point-source")
    fixed = {"id", "name", "sector", *_POINT_COLS}
    need = ["id", "sector", *_POINT_COLS]
    miss = [c for c in need if c not in header]
    if miss:
        raise InputFileError(f"{path}: missing column(s) {', '.join(miss)}; expected "
                             f"{', '.join(need)} and pollutant columns in Mg year-1")
    pcols = _pollutant_columns(header, path, fixed)
    out = {c: [] for c in _POINT_COLS}
    ids, sectors, rates = [], [], []
    for lineno, row in rows:
        if not row["id"]:
            raise InputFileError(f"{path}, line {lineno}, column 'id': empty; expected an id")
        if row["id"] in ids:
            raise InputFileError(f"{path}, line {lineno}, column 'id': {row['id']!r} repeats")
        if not row["sector"]:
            raise InputFileError(f"{path}, line {lineno}, column 'sector': empty; expected a "
                                 "sector name")
        for c, (lo, hi, what) in _POINT_COLS.items():
            out[c].append(_num(path, lineno, c, row[c], lo, hi, lo_open=c == "stack_diameter_m",
                               what=what))
        ids.append(row["id"])
        sectors.append(row["sector"])
        rates.append(_rates(path, lineno, row, pcols))
    return PointSources(tuple(ids), *(np.asarray(out[c]) for c in _POINT_COLS), tuple(sectors),
                        np.asarray(rates).reshape(len(ids), len(POLLUTANTS)), str(path))


@dataclass
class AreaSources:
    """Area sources: ``geometry`` is a shapely geometry in lon/lat (polygon) or a Point."""

    ids: tuple[str, ...]
    sectors: tuple[str, ...]
    geometry: tuple
    rates: np.ndarray   # Mg year-1 (nsource, npollutant)
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.ids)


def read_area_sources(path: str | Path) -> AreaSources:
    """Read and validate an area-source CSV (columns in the module docstring)."""
    import shapely
    from shapely import wkt as shapely_wkt

    path = Path(path)
    header, rows = _read_csv_rows(path, "area-source")
    if "id" not in header or "sector" not in header:
        raise InputFileError(f"{path}: missing column(s) 'id'/'sector'")
    has_wkt = "wkt" in header
    if not has_wkt and not {"lon", "lat"} <= set(header):
        raise InputFileError(f"{path}: needs a 'wkt' column (lon/lat polygon) or 'lon' and 'lat'")
    pcols = _pollutant_columns(header, path, {"id", "name", "sector", "wkt", "lon", "lat"})
    ids, sectors, geoms, rates = [], [], [], []
    for lineno, row in rows:
        if has_wkt and row.get("wkt"):
            try:
                g = shapely_wkt.loads(row["wkt"])
            except Exception as exc:  # shapely raises GEOSException/WKTReadingError
                raise InputFileError(f"{path}, line {lineno}, column 'wkt': cannot parse "
                                     f"({exc}); expected WKT POLYGON or MULTIPOLYGON in lon/lat"
                                     ) from None
            if g.geom_type not in ("Polygon", "MultiPolygon") or g.is_empty or g.area <= 0:
                raise InputFileError(f"{path}, line {lineno}, column 'wkt': got {g.geom_type}; "
                                     "expected a non-empty POLYGON or MULTIPOLYGON")
        else:
            lon = _num(path, lineno, "lon", row.get("lon", ""), -180, 360, what="longitude")
            lat = _num(path, lineno, "lat", row.get("lat", ""), -90, 90, what="latitude")
            g = shapely.Point(lon, lat)
        ids.append(row["id"])
        sectors.append(row["sector"])
        geoms.append(g)
        rates.append(_rates(path, lineno, row, pcols))
    return AreaSources(tuple(ids), tuple(sectors), tuple(geoms),
                       np.asarray(rates).reshape(len(ids), len(POLLUTANTS)), str(path))
