"""Gridded inventories in their distributors' layouts: files named by a pattern.

The native layout (:func:`~aqforecast.emissions.inventory.read_gridded_inventory`) is one file in
Mg per cell per period. Real inventories come as many files, in fluxes, with their own names for
species and sectors. :func:`read_pattern_inventory` reads them all from a description
(:class:`InventoryLayout`, the config block ``inputs.emissions.gridded`` with
``layout: pattern``; worked examples in ``docs/inventory_formats.md``):

* ``path``: a file pattern with placeholders ``{species}``, ``{sector}``, ``{month}`` (1-12) and
  ``*`` wildcards, e.g. EDGAR v8.1 ``v8.1_FT2022_AP_{species}_2022_{sector}_flx.nc``, CAMS-GLOB-ANT
  ``CAMS-GLOB-ANT_v5.3_{species}_2019.nc``, MEIC ``2017_{month}__{sector}__{species}.nc`` or
  ``.asc``;
* ``variables``: data-variable name patterns with ``{species}``/``{sector}`` (EDGAR ``fluxes``,
  ``emissions`` or ``emi_{species}``; CAMS ``{sector}``); default ``{species}``;
* sectors and species may also be dimensions (``sector_dim``/``species_dim``; a dimension named
  ``sector``/``species`` is used by default) labelled by a string coordinate, by CF
  ``flag_values``/``flag_meanings``, or by index; or constants (``sector``/``species``);
* a time dimension of 12 (monthly, January first), 1 (annual), or datetimes of which those in the
  inventory year (``inputs.emissions.base_year``) are taken (12 months or 1 year);
* coordinates are found by their CF attributes (cf_xarray: ``standard_name`` latitude/longitude,
  ``units`` degrees_north/east, ``_CoordinateAxisType``); a file without them falls back to the
  names (``lat``/``latitude``/..., logged). Cells: CF ``bounds`` if given, else regular spacing;
  longitudes 0..360 are moved to -180..180; only the cells around the model domain are read;
* units: any mass per cell per period or flux (:mod:`.units`); ``units`` in the config replaces
  the file's (ESRI ASCII grids carry none);
* species and sectors pass through the mapping file (:mod:`.mapping`); unknown species and
  variables that match no pattern are listed at warning level with their file.

File formats (:mod:`.gridfiles`), found per file: NetCDF with CF coordinates; MEIC's GMT-style NetCDF (``x_range``,
``y_range``, ``spacing``, ``dimension``, ``z``: rows from the north, pixel or grid-line
registration); ESRI ASCII grids (``.asc``: ``ncols``, ``nrows``, ``xllcorner``/``xllcenter``,
``yllcorner``/``yllcenter``, ``cellsize``, ``NODATA_value``; rows from the north). Declared fill
values (``_FillValue``, ``missing_value``, ``NODATA_value``) count as no emission.
"""

from __future__ import annotations

import glob
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import species as registry
from ..io import InputFileError
from .gridfiles import cell_bounds, lonlat_names, open_grid_file, select_cells
from .inventory import POLLUTANTS, GriddedInventory, check_cell_masses, split_pm10
from .mapping import InventoryMapping
from .units import UnitsError, cell_area_lonlat, parse_emission_units, period_seconds

log = logging.getLogger(__name__)

__all__ = ["InventoryLayout", "read_pattern_inventory", "pattern_regex"]

#: Molar masses (g mol-1) that turn amounts (mol, molecules) into inventory masses.
_MOLAR_SPECIES = {"NOx": "NO2", "SO2": "SO2", "CO": "CO", "NH3": "NH3"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
#: Inventories read, by layout, window and the files' sizes and times: the domains of a run
#: read the outermost domain's window once (GriddedInventory parts are not modified later).
_CACHE: dict[tuple, tuple] = {}


@dataclass(frozen=True)
class InventoryLayout:
    """Where a pattern-layout inventory's numbers are (module docstring). ``path`` is absolute
    (or relative to the working directory)."""

    path: str
    variables: tuple[str, ...] = ("{species}",)
    sector_dim: str | None = None
    species_dim: str | None = None
    sector: str | None = None
    species: str | None = None
    units: str | None = None
    mapping: InventoryMapping = field(default_factory=InventoryMapping)


def pattern_regex(pattern: str, allowed: tuple[str, ...], sep: str = "/") -> re.Pattern:
    """Regex of a name pattern: ``{name}`` placeholders become named groups (a repeated one
    must repeat its value), ``*`` any run of characters except ``sep``. Raises ValueError for
    a placeholder not in ``allowed``."""
    out, seen, pos = [], set(), 0
    not_sep = f"[^{re.escape(sep)}]" if sep else "."
    for m in _PLACEHOLDER.finditer(pattern):
        out.append(_literal(pattern[pos:m.start()], not_sep))
        name = m.group(1)
        if name not in allowed:
            raise ValueError(f"unknown placeholder {{{name}}} in {pattern!r}; expected "
                             + ", ".join(f"{{{a}}}" for a in allowed))
        if name in seen:
            out.append(f"(?P={name})")
        else:
            out.append(r"(?P<month>\d{1,2})" if name == "month" else f"(?P<{name}>{not_sep}+?)")
            seen.add(name)
        pos = m.end()
    out.append(_literal(pattern[pos:], not_sep))
    return re.compile("".join(out) + r"\Z")


def _literal(text: str, not_sep: str) -> str:
    return "".join(f"{not_sep}*" if c == "*" else f"{not_sep}" if c == "?" else re.escape(c)
                   for c in text)


# ------------------------------------------------------------------------------- files
def _files(layout: InventoryLayout) -> list[tuple[Path, dict]]:
    """(file, {placeholder: value}) of every file the path pattern matches."""
    pattern = str(layout.path)
    rx = pattern_regex(Path(pattern).as_posix(), ("species", "sector", "month"))
    found = []
    for f in sorted(glob.glob(_PLACEHOLDER.sub("*", pattern))):
        m = rx.match(Path(f).as_posix())
        if m is None:
            log.debug("%s: matches the glob but not the pattern %s", f, pattern)
            continue
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        if "month" in groups:
            month = int(groups["month"])
            if not 1 <= month <= 12:
                raise InputFileError(f"{f}: month {groups['month']!r} from the pattern {pattern}"
                                     " is not 1..12")
            groups["month"] = month
        found.append((Path(f), groups))
    if not found:
        raise InputFileError(f"{pattern}: no file matches this gridded-inventory pattern "
                             "(inputs.emissions.gridded.path; placeholders {species}, "
                             "{sector}, {month} and * match parts of one path component)")
    return found


# ------------------------------------------------------------------------------- reading
@dataclass
class _Group:
    """Accumulated Mg per cell per period on one source grid and period."""

    lon_edges: np.ndarray
    lat_edges: np.ndarray
    period: str
    values: dict = field(default_factory=dict)     # (sector, pollutant) -> (nper, nlat, nlon)
    months: dict = field(default_factory=dict)     # (sector, pollutant) -> set of months


class _Reader:
    def __init__(self, layout: InventoryLayout, base_year: int, window):
        self.layout = layout
        self.base_year = int(base_year)
        self.window = window     # (lon0, lon1, lat0, lat1) or None
        self.groups: dict[tuple, _Group] = {}
        self.unknown: dict[str, list[str]] = {}
        self.dropped: set[str] = set()
        #: model sectors of every file read, near the domain or not (so that a nest and its
        #: parent, reading different windows, get the same sectors and tags)
        self.sectors: dict[str, None] = {}
        self.far_cell = None    # (lon edges, lat edges) of a cell, when nothing is near
        self.var_rx = [pattern_regex(v, ("species", "sector"), sep="") for v in layout.variables]

    # one file --------------------------------------------------------------------------
    def read_file(self, path: Path, fgroups: dict) -> None:
        ds, single = open_grid_file(path)
        try:
            self._check_year(ds, path)
            lon, lat = lonlat_names(ds, path)
            lon_lo, lon_hi = cell_bounds(ds, lon, path)
            win = self.window
            ilon, lon_e = select_cells(lon_lo, lon_hi, None if win is None else win[:2], path, lon,
                                  True)
            lat_lo, lat_hi = cell_bounds(ds, lat, path)
            ilat, lat_e = select_cells(lat_lo, lat_hi, None if win is None else win[2:], path, lat,
                                  False)
            near = lon_e is not None and lat_e is not None
            if not near:
                log.info("%s: no cell near the model domain", path)
                if self.far_cell is None:
                    self.far_cell = (np.array([lon_lo[0], lon_hi[0]]),
                                     np.array([lat_lo[0], lat_hi[0]]))
            measures = {m for v in ds.data_vars for m in re.findall(
                r"\w+:\s*(\S+)", ds[v].attrs.get("cell_measures", ""))}
            for name in ds.data_vars:
                var = ds[name]
                if lon not in var.dims or lat not in var.dims or name in measures or \
                        var.attrs.get("standard_name") == "cell_area":
                    continue
                if single:
                    vgroups = {}
                else:
                    m = next((rx.match(str(name)) for rx in self.var_rx if rx.match(str(name))),
                             None)
                    if m is None:
                        self.unknown.setdefault(str(path), []).append(
                            f"{name} (matches no variable pattern "
                            f"{', '.join(self.layout.variables)})")
                        continue
                    vgroups = {k: v for k, v in m.groupdict().items() if v is not None}
                self._read_variable(path, ds, str(name), var, lon, lat, ilon, ilat, lon_e, lat_e,
                                    fgroups, vgroups, near)
        finally:
            ds.close()

    def _check_year(self, ds, path: Path) -> None:
        for where, attrs in (("attribute", ds.attrs),) + tuple(
                (f"variable {n!r} attribute", ds[n].attrs) for n in ds.data_vars):
            for key in ("base_year", "year"):
                if key in attrs:
                    try:
                        year = int(np.asarray(attrs[key]).ravel()[0])
                    except (TypeError, ValueError):
                        continue
                    if year != self.base_year:
                        raise InputFileError(
                            f"{path}: {where} {key} = {year}, but inputs.emissions.base_year is "
                            f"{self.base_year}: the configuration does not describe this "
                            "inventory")

    def _labels(self, ds, var, dim: str | None, path: Path) -> list[str] | None:
        if dim is None or dim not in var.dims:
            return None
        n = var.sizes[dim]
        if dim not in ds.variables:
            return [str(k) for k in range(n)]
        c = ds[dim]
        vals = np.atleast_1d(c.values)
        if "flag_values" in c.attrs and "flag_meanings" in c.attrs:
            meaning = dict(zip(np.atleast_1d(c.attrs["flag_values"]).tolist(),
                               str(c.attrs["flag_meanings"]).split()))
            return [meaning.get(v, str(v)) for v in vals.tolist()]
        out = []
        for v in vals:
            v = v.decode() if isinstance(v, bytes) else v
            out.append(str(int(v)) if isinstance(v, (int, np.integer)) or (
                isinstance(v, (float, np.floating)) and float(v).is_integer()) else str(v).strip())
        return out

    def _label(self, what: str, path: Path, name: str, fgroups, vgroups, dim_labels):
        cands = [g[what] for g in (fgroups, vgroups) if what in g]
        if len(cands) == 2 and cands[0].lower() != cands[1].lower():
            raise InputFileError(f"{path}: variable {name!r}: the file name says {what} "
                                 f"{cands[0]!r}, the variable name {cands[1]!r}")
        if cands and dim_labels is not None:
            raise InputFileError(f"{path}: variable {name!r} has a {what} dimension and a "
                                 f"{what} in its name; give one")
        if dim_labels is not None:
            return dim_labels
        if cands:
            return [cands[0]]
        default = getattr(self.layout, what)
        if default is None:
            raise InputFileError(
                f"{path}: variable {name!r}: no {what} (give {{{what}}} in the path or variable "
                f"pattern, a {what} dimension ({what}_dim), or a constant "
                f"inputs.emissions.gridded.{what})")
        return [default]

    def _time(self, ds, var, tdim: str | None, path: Path, name: str, month: int | None):
        """(file indices along ``tdim`` or None, monthly?)."""
        if tdim is None:
            return None, month is not None
        n = var.sizes[tdim]
        years = months = None
        if tdim in ds.coords:
            try:
                years = np.asarray(ds[tdim].dt.year.values)
                months = np.asarray(ds[tdim].dt.month.values)
            except (AttributeError, TypeError):
                years = None
        if years is not None:
            idx = np.flatnonzero(years == self.base_year)
            if idx.size == 12 and np.array_equal(months[idx], np.arange(1, 13)):
                monthly = True
            elif idx.size == 1:
                monthly = False
            else:
                raise InputFileError(
                    f"{path}: variable {name!r}: {tdim!r} has {idx.size} time(s) in "
                    f"inputs.emissions.base_year {self.base_year} (years in the file: "
                    f"{sorted(set(years.tolist()))}); expected its 12 months or 1 year")
        elif n in (1, 12):
            idx, monthly = np.arange(n), n == 12
        else:
            raise InputFileError(f"{path}: variable {name!r}: dimension {tdim!r} has {n} "
                                 "entries; expected 1 (annual), 12 (monthly, January first) "
                                 "or datetimes covering the inventory year")
        if monthly and month is not None:
            raise InputFileError(f"{path}: variable {name!r} is monthly and the file name "
                                 "gives a month too")
        return idx, monthly or month is not None

    def _read_variable(self, path, ds, name, var, lon, lat, ilon, ilat, lon_e, lat_e,
                       fgroups, vgroups, near: bool = True) -> None:
        lay = self.layout
        sdim = lay.sector_dim or ("sector" if "sector" in var.dims else None)
        pdim = lay.species_dim or ("species" if "species" in var.dims else None)
        sdim = sdim if sdim in var.dims else None
        pdim = pdim if pdim in var.dims else None
        sectors = self._label("sector", path, name, fgroups, vgroups,
                              self._labels(ds, var, sdim, path))
        species = self._label("species", path, name, fgroups, vgroups,
                              self._labels(ds, var, pdim, path))
        extra = [d for d in var.dims if d not in (lon, lat, sdim, pdim)]
        if len(extra) > 1:
            raise InputFileError(f"{path}: variable {name!r} has dims {var.dims}; expected "
                                 f"lat, lon, at most one time dim and the sector/species dims")
        tdim = extra[0] if extra else None
        tidx, monthly = self._time(ds, var, tdim, path, name, fgroups.get("month"))
        units_text = lay.units or var.attrs.get("units")
        try:
            units = parse_emission_units(units_text)
        except UnitsError as exc:
            raise InputFileError(
                f"{path}: variable {name!r} has units {units_text!r}: {exc}; expected a mass per "
                "cell per period (e.g. 'Mg year-1', 't/month', 'Tonnes') or a flux (e.g. "
                "'kg m-2 s-1'); inputs.emissions.gridded.units replaces the file's") from None
        period = "month" if monthly else "year"
        if units.period is not None and units.period != period:
            raise InputFileError(f"{path}: variable {name!r} has units {units_text!r} (per "
                                 f"{units.period}) but holds {'monthly' if monthly else 'annual'}"
                                 " values")
        plan = []                     # (species index, sector index, sector, pollutant, factor)
        for k, sp_label in enumerate(species):
            known, targets = lay.mapping.species_targets(sp_label)
            if not known:
                self.unknown.setdefault(str(path), []).append(
                    f"{name} (species {sp_label!r} unknown: map it in the mapping file, or to "
                    "null)")
                continue
            if not targets:
                self.dropped.add(sp_label)
                continue
            for j, sec_label in enumerate(sectors):
                to = lay.mapping.sector_targets(sec_label)
                if not to:
                    self.dropped.add(f"sector {sec_label}")
                plan += [(k, j, sector, pol, factor * frac) for sector, frac in to.items()
                         for pol, factor in targets.items()]
        self.sectors.update(dict.fromkeys(sector for _, _, sector, _, _ in plan))
        if not near or not plan:
            return
        sel = {lat: slice(ilat.min(), ilat.max() + 1), lon: slice(ilon.min(), ilon.max() + 1)}
        if tdim is not None:
            sel[tdim] = tidx
        dims = [d for d in (tdim, sdim, pdim) if d is not None] + [lat, lon]
        a = np.asarray(var.isel(sel).transpose(*dims).values, dtype=float)
        a = a[..., ilat - ilat.min(), :][..., ilon - ilon.min()]
        if "_FillValue" in var.encoding or "missing_value" in var.encoding:
            nfill = int(np.isnan(a).sum())
            if nfill:
                log.debug("%s: variable %r: %d fill value(s) taken as no emission", path, name,
                          nfill)
                a = np.nan_to_num(a, nan=0.0)
        if tdim is None:
            a = a[None]
        if sdim is None:
            a = a[:, None]
        if pdim is None:
            a = a[:, :, None]
        area = self._area(ds, var, lat, lon, ilat, ilon, lat_e, lon_e, path, name) \
            if units.per_area else None
        for k, j, sector, pol, factor in plan:
            self._add(path, name, a[:, j, k], units, area, monthly, fgroups.get("month"), sector,
                      pol, factor, lon_e, lat_e)

    def _area(self, ds, var, lat, lon, ilat, ilon, lat_e, lon_e, path, name):
        """Source cell areas (m2): the CF cell measure when the variable names one, else on the
        sphere (:func:`cell_area_lonlat`)."""
        import cf_units

        m = re.search(r"area:\s*(\S+)", var.attrs.get("cell_measures", ""))
        if m and m.group(1) in ds.variables:
            av = ds[m.group(1)]
            u = av.attrs.get("units", "m2")
            try:
                to_m2 = float(cf_units.Unit(u).convert(1.0, "m2"))
            except ValueError:
                raise InputFileError(f"{path}: cell measure {m.group(1)!r} of {name!r} has "
                                     f"units {u!r}; expected an area (m2)") from None
            a = np.asarray(av.transpose(lat, lon).values, dtype=float)[np.ix_(ilat, ilon)]
            return a * to_m2
        return cell_area_lonlat(lon_e, lat_e)

    def _add(self, path, name, a, units, area, monthly, month, sector, pol, factor,
             lon_e, lat_e) -> None:
        """Add data ``a`` (nt, nlat, nlon) converted to Mg per cell per period."""
        molar = None
        if units.molar:
            base = _MOLAR_SPECIES.get(pol)
            molar = registry.get(base).molar_mass if base else None
        try:
            if monthly:
                months = [month] if month is not None else list(range(1, 13))
                mass = np.stack([a[t] * units.mg_factor(area, period_seconds(self.base_year, m),
                                                        molar) for t, m in enumerate(months)])
            else:
                months = []
                mass = a * units.mg_factor(area, period_seconds(self.base_year), molar)
        except UnitsError as exc:
            raise InputFileError(f"{path}: variable {name!r} ({pol}): {exc}") from None
        mass = mass * factor
        check_cell_masses(mass, path, name, 12.0 if monthly else 1.0)
        period = "month" if monthly else "year"
        key = (period, lon_e.tobytes(), lat_e.tobytes())
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Group(lon_e, lat_e, period)
        nper = 12 if monthly else 1
        acc = g.values.get((sector, pol))
        if acc is None:
            acc = g.values[(sector, pol)] = np.zeros((nper,) + mass.shape[-2:])
        if monthly:
            idx = np.array(months) - 1
            acc[idx] += mass
            g.months.setdefault((sector, pol), set()).update(months)
        else:
            acc += mass

    # result ------------------------------------------------------------------------------
    def inventories(self, source: str) -> list[GriddedInventory]:
        out = []
        sectors = list(self.sectors)
        for g in self.groups.values():
            nper = 12 if g.period == "month" else 1
            mass = np.zeros((nper, len(sectors), len(POLLUTANTS), g.lat_edges.size - 1,
                             g.lon_edges.size - 1))
            for i, s in enumerate(sectors):
                vals = {p: v for (s2, p), v in g.values.items() if s2 == s}
                vals = split_pm10(vals, f"{source}, sector {s}")
                for p, v in vals.items():
                    mass[:, i, POLLUTANTS.index(p)] = v
            if g.period == "month":
                gaps = {k: sorted(set(range(1, 13)) - m) for k, m in g.months.items()
                        if len(m) < 12}
                if gaps:
                    log.warning("%s: monthly inventory lacks months (taken as no emission): %s",
                                source, "; ".join(f"{s} {p}: {m}" for (s, p), m in gaps.items()))
            out.append(GriddedInventory(g.lon_edges, g.lat_edges, tuple(sectors), mass,
                                        g.period, source))
        if not out and sectors and self.far_cell is not None:
            # nothing near this domain: one empty cell keeps the sectors (and tags) the same
            # as in the domains the inventory covers
            out.append(GriddedInventory(*self.far_cell, tuple(sectors),
                                        np.zeros((1, len(sectors), len(POLLUTANTS), 1, 1)),
                                        "year", source))
        return out


def read_pattern_inventory(layout: InventoryLayout, base_year: int,
                           window: tuple[float, float, float, float] | None = None
                           ) -> list[GriddedInventory]:
    """Read every file of a pattern-layout inventory (module docstring).

    ``window``: (lon0, lon1, lat0, lat1) in degrees, the model domain: only the source cells
    within two cells of it are read (None: all). Returns one :class:`GriddedInventory` per
    source grid and period (annual / monthly), in Mg per cell per period, pollutants in
    :data:`POLLUTANTS` order (PM10 becomes PMC = PM10 - PM25). Raises InputFileError naming the
    file and variable on bad units, dims or values.
    """
    files = _files(layout)
    key = (layout.path, layout.variables, layout.sector_dim, layout.species_dim, layout.sector,
           layout.species, layout.units, layout.mapping.source, repr(layout.mapping.species),
           repr(layout.mapping.sectors), int(base_year),
           None if window is None else tuple(float(w) for w in window),
           tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f, _ in files))
    if key in _CACHE:
        log.debug("%s: read before for this window", layout.path)
        return list(_CACHE[key])
    reader = _Reader(layout, base_year, window)
    for path, groups in files:
        reader.read_file(path, groups)
    if reader.unknown:
        log.warning("%s: not read (unknown): %s", layout.path, "; ".join(
            f"{f}: {', '.join(v)}" for f, v in reader.unknown.items()))
    if reader.dropped:
        log.info("%s: dropped by the mapping %s: %s", layout.path, layout.mapping.source,
                 ", ".join(sorted(reader.dropped)))
    invs = reader.inventories(layout.path)
    while len(_CACHE) >= 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = tuple(invs)
    log.info("%s: %d file(s), %s", layout.path, len(files), "; ".join(
        f"{inv.period}ly on {inv.lat_edges.size - 1} x {inv.lon_edges.size - 1} cells, sectors "
        f"{', '.join(inv.sectors)}" for inv in invs) or "nothing near the domain")
    return invs
