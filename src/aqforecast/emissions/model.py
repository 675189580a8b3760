"""The emission model: gridded, speciated, time-resolved, scaled and tagged emissions.

:class:`EmissionModel` is built once per grid (regridding weights, region fractions, point-source
cells) and then called for a model time:

    em = EmissionModel.from_config(cfg, grid)
    f = em.emissions(t, scaling={("Hangzhou", "industry", "NOx"): 0.7}, met=plume_met)
    f.surface      # (nspec, ny, nx)       flux into layer 1
    f.elevated     # (nspec, nz, ncol)     flux into layer k of column c = f.columns[c] = (j, i)
    f.to_dense()   # (nspec, nz, ny, nx)   everything per layer (surface added to layer 0)

Units: gases mol m-2 s-1, aerosols kg m-2 s-1, per unit TRUE horizontal cell area
(``grid.cell_area``); a layer's injection rate in the column is flux x cell_area. These are the
``E_k`` of the vertical-mixing solve (SCIENCE.md 3.2). Rates are constant within each hour of
local time (temporal profiles, :mod:`.temporal`). :meth:`EmissionModel.tagged_emissions` returns
the same fields with a leading tag axis, tags = (region, sector) for every region (plus the
remainder ``outside``) x sector; the bulk fields are DEFINED as the sum over that axis, so
``tagged.surface.sum(0) == bulk.surface`` bit for bit (SCIENCE.md 6.1).

Per model cell and hour, for region r, sector s, pollutant p, species q:
    E[r,s,q] = sum_p S_s[q,p] * beta[r,s,p] * T_s(t) * frac_r * M[s,p] / A
with M the regridded inventory mass (Mg per period), T_s the temporal factor (s-1 per period),
beta the scaling factor, S_s the speciation matrix and A the cell area. Stacks go to their own
cell and region, and to layers by Briggs plume rise (:mod:`.vertical`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import species as registry
from ..io import InputFileError
from .inventory import (POLLUTANTS, AreaSources, GriddedInventory, PointSources,
                        read_area_sources, read_gridded_inventory, read_point_sources)
from .layouts import InventoryLayout, read_pattern_inventory
from .mapping import InventoryMapping, read_mapping
from .regions import RegionMasks, project_geometry, region_fractions
from .regrid import ConservativeRegridder, model_cell_polygons, overlap_weights
from .scaling import ScalingTable
from .speciation import EMITTED_SPECIES, Speciation
from .temporal import TemporalProfiles, as_utc
from .vertical import PlumeMet, area_layer_fractions, stack_layer_fractions

log = logging.getLogger(__name__)

__all__ = ["EmissionFields", "EmissionModel"]


@dataclass
class EmissionFields:
    """Emission fluxes at one time (module docstring for units).

    ``surface``: (..., nspec, ny, nx); ``elevated``: (..., nspec, nz, ncol) with ``columns``
    (ncol, 2) the (j, i) of each column, each column once; leading ``...`` is the tag axis for
    tagged fields.
    """

    time: object
    species: tuple[str, ...]
    surface: np.ndarray
    elevated: np.ndarray
    columns: np.ndarray
    shape: tuple[int, int, int]                 # (nz, ny, nx)
    tags: tuple[tuple[str, str], ...] | None = None

    def units(self, name: str) -> str:
        return "mol m-2 s-1" if registry.get(name).phase == "gas" else "kg m-2 s-1"

    def to_dense(self, nlayers: int | None = None) -> np.ndarray:
        """All emissions per layer, (..., nspec, nz, ny, nx); only the lowest ``nlayers``
        layers if given (e.g. :meth:`emitting_layers`, so that a step does not build and
        scan the empty upper layers)."""
        nz, ny, nx = self.shape
        nl = nz if nlayers is None else int(nlayers)
        if not 1 <= nl <= nz:
            raise ValueError(f"nlayers must be in 1..{nz}, got {nlayers}")
        lead = self.surface.shape[:-2]
        out = np.zeros(lead + (nl, ny, nx))
        out[..., 0, :, :] = self.surface
        if self.columns.size:
            j, i = self.columns[:, 0], self.columns[:, 1]
            # the columns are unique (np.unique in the emission model), so a fancy-indexed +=
            # adds each once (np.add.at, for repeated indices, cost ~40 ms an hour here)
            out[..., j, i] += self.elevated[..., :nl, :]
        return out

    def emitting_layers(self) -> int:
        """Number of layers from the ground up to the highest one with a non-zero source."""
        if not self.columns.size:
            return 1
        nonzero = np.nonzero(np.any(self.elevated != 0, axis=tuple(range(self.elevated.ndim - 2))
                                    + (self.elevated.ndim - 1,)))[0]
        return int(nonzero.max(initial=0)) + 1

    def column_total(self) -> np.ndarray:
        """Vertically integrated flux (..., nspec, ny, nx)."""
        nz, ny, nx = self.shape
        out = self.surface.copy()
        if self.columns.size:
            j, i = self.columns[:, 0], self.columns[:, 1]
            out[..., j, i] += self.elevated.sum(axis=-2)  # unique columns
        return out

    def index(self, name: str) -> int:
        return self.species.index(name)


class EmissionModel:
    """Gridded emissions for one model grid; see the module docstring.

    Parameters
    ----------
    grid: target :class:`aqforecast.grid.LambertGrid` (with ``vertical`` for stack layers).
    inventory: a :class:`GriddedInventory`, a sequence of them (e.g. an annual and a monthly
    part, or parts on different source grids) or None; points: :class:`PointSources` or None;
    area: :class:`AreaSources` or None. Any of them may be absent: the sectors (and so the
    tags) are the union of the sectors of those present; with none the fields are zero.
    regions: :class:`RegionMasks` for this grid (default: only ``outside``).
    species: model species to produce (default: all emitted species).
    temporal: :class:`TemporalProfiles` (default literature profiles, UTC+8).
    speciation: :class:`Speciation` (default factors).
    area_layers: {sector: layer fractions} for area sources above layer 1 (default all layer 1).
    cache_dir: folder for the regridding weights.
    """

    def __init__(self, grid,
                 inventory: GriddedInventory | Sequence[GriddedInventory] | None = None,
                 points: PointSources | None = None, area: AreaSources | None = None,
                 regions: RegionMasks | None = None, species=None,
                 temporal: TemporalProfiles | None = None, speciation: Speciation | None = None,
                 area_layers: dict | None = None, cache_dir: str | Path | None = None):
        if grid.vertical is None:
            raise ValueError(f"grid {grid.name!r} needs a vertical grid for emission layers")
        self.grid = grid
        self._cache_dir = cache_dir
        self.nz = grid.vertical.nz
        self.species = tuple(species if species is not None else EMITTED_SPECIES)
        self.regions = regions if regions is not None else RegionMasks.none(grid)
        if self.regions.fractions.shape[1:] != (grid.ny, grid.nx):
            raise ValueError("region masks were built for another grid")
        self.temporal = temporal or TemporalProfiles()
        self.speciation = speciation or Speciation(self.species)
        points = points if points is not None else PointSources.empty()
        inventories = ([] if inventory is None else [inventory]
                       if isinstance(inventory, GriddedInventory) else list(inventory))
        sectors: list[str] = []
        for src in [inv.sectors for inv in inventories] + [
                points.sectors, area.sectors if area is not None else ()]:
            sectors += [s for s in dict.fromkeys(src) if s not in sectors]
        self.sectors = tuple(sectors)
        self.tags = tuple((r, s) for r in self.regions.names for s in self.sectors)
        ncell = grid.ny * grid.nx
        self.cell_area = grid.cell_area.ravel()
        self.report: dict = {}
        self._terms: list[tuple[str, np.ndarray]] = []   # (period, Mg/period (nper,nsec,npol,ncell))
        self._gridded_in = np.zeros(len(POLLUTANTS))
        self._gridded_kept = np.zeros(len(POLLUTANTS))
        for inv in inventories:
            self._add_inventory(inv)
        if area is not None and len(area):
            self._add_area(area)
        self._add_points(points)
        self._smat = np.stack([self.speciation.matrix(s) for s in self.sectors]) if sectors \
            else np.zeros((0, len(self.species), len(POLLUTANTS)))
        layers = area_layers or {}
        unknown = set(layers) - set(self.sectors)
        if unknown:
            raise KeyError(f"area_layers names unknown sector(s) {sorted(unknown)}")
        self._area_prof = np.stack([area_layer_fractions(layers.get(s), self.nz)
                                    for s in self.sectors]) if sectors else np.zeros((0, self.nz))
        self._area_elev = np.flatnonzero(self._area_prof[:, 1:].sum(axis=1) > 0)
        cols = [np.column_stack(self._pt_cells)] if len(self._pt_idx) else []
        if self._area_elev.size:
            jj, ii = np.divmod(np.arange(ncell), grid.nx)
            cols.append(np.column_stack([jj, ii]))
        self.columns = (np.unique(np.concatenate(cols), axis=0) if cols
                        else np.zeros((0, 2), dtype=np.int64)).astype(np.int64)
        colid = {tuple(c): n for n, c in enumerate(self.columns)}
        self._pt_col = np.array([colid[(j, i)] for j, i in zip(*self._pt_cells)], dtype=np.int64)
        self._default_stack_layers = stack_layer_fractions(
            self._points_sub(), self._pt_cells, PlumeMet(grid.vertical.standard_heights()))
        self._cache_key = None
        self._cache_val = None

    # ----------------------------------------------------------------------------- build
    def _sector_index(self, names) -> np.ndarray:
        return np.array([self.sectors.index(s) for s in names], dtype=np.int64)

    def _add_inventory(self, inv: GriddedInventory) -> None:
        rg = ConservativeRegridder(self.grid, inv.lon_edges, inv.lat_edges,
                                   cache_dir=self._cache_dir)
        m = rg(inv.mass)                              # (nper, nsec, npol, ny, nx)
        full = np.zeros((m.shape[0], len(self.sectors), len(POLLUTANTS), m.shape[-2] * m.shape[-1]))
        full[:, self._sector_index(inv.sectors)] = m.reshape(m.shape[:3] + (-1,))
        self._terms.append((inv.period, full))
        self._gridded_in += inv.mass.sum(axis=(0, 1, 3, 4))
        self._gridded_kept += full.sum(axis=(0, 1, 3))
        tot_in, kept = self._gridded_in, self._gridded_kept
        frac_out = np.where(tot_in > 0, 1.0 - kept / np.where(tot_in > 0, tot_in, 1.0), 0.0)
        self.report["gridded_outside_fraction"] = dict(zip(POLLUTANTS, map(float, frac_out)))
        self.report["gridded_inside_Mg"] = dict(zip(POLLUTANTS, map(float, kept)))
        log.info("%s on %s: fraction outside the domain %s", inv.source, self.grid.name,
                 {p: round(float(f), 4) for p, f in zip(POLLUTANTS, frac_out)})

    def _add_area(self, area: AreaSources) -> None:
        g = self.grid
        ncell = g.ny * g.nx
        full = np.zeros((1, len(self.sectors), len(POLLUTANTS), ncell))
        cells = model_cell_polygons(g)
        sidx = self._sector_index(area.sectors)
        lost = 0
        for n, geom in enumerate(area.geometry):
            if geom.geom_type == "Point":
                j, i = g.locate(geom.x, geom.y)
                if int(j) < 0:
                    lost += 1
                    continue
                full[0, sidx[n], :, int(j) * g.nx + int(i)] += area.rates[n]
            else:
                w = overlap_weights(np.array([project_geometry(geom, g)]), cells).toarray()[:, 0]
                if w.sum() < 1 - 1e-9:
                    lost += 1
                full[0, sidx[n]] += area.rates[n][:, None] * w[None, :]
        self._terms.append(("year", full))
        self.report["area_sources_partly_outside"] = lost

    def _add_points(self, pts: PointSources) -> None:
        j, i = self.grid.locate(pts.lon, pts.lat) if len(pts) else (np.zeros(0, int),) * 2
        inside = np.asarray(j) >= 0
        if len(pts) and not inside.all():
            out = [pts.ids[n] for n in np.flatnonzero(~inside)]
            log.warning("%d point source(s) outside grid %s dropped: %s", len(out),
                        self.grid.name, ", ".join(out))
        self.report["points_outside"] = [pts.ids[n] for n in np.flatnonzero(~inside)]
        self._points = pts
        self._pt_idx = np.flatnonzero(inside)
        self._pt_cells = (np.asarray(j)[inside].astype(np.int64),
                          np.asarray(i)[inside].astype(np.int64))
        sub = self._points_sub()
        self._pt_sector = self._sector_index(sub.sectors)
        self._pt_region = (self.regions.region_of_points(self.grid, sub.lon, sub.lat)
                           if len(sub) else np.zeros(0, dtype=np.int64))

    def _points_sub(self) -> PointSources:
        p, k = self._points, self._pt_idx
        return PointSources(tuple(p.ids[n] for n in k), p.lon[k], p.lat[k], p.stack_height[k],
                            p.stack_diameter[k], p.exit_velocity[k], p.exit_temperature[k],
                            tuple(p.sectors[n] for n in k), p.rates[k], p.source)

    # ----------------------------------------------------------------------------- run time
    @property
    def has_point_sources(self) -> bool:
        """Whether stacks inside the grid emit (their plume rise needs the hour's met)."""
        return bool(self._pt_idx.size)

    def scaling_array(self, scaling=None, t=None) -> np.ndarray:
        """Resolved factors (nregion, nsector, npollutant) for a scaling table/dict/DataFrame at
        time ``t`` (UTC; None: the rows without a time window only), see
        :meth:`ScalingTable.resolve`. Read-only."""
        return ScalingTable.coerce(scaling).resolve(self.regions.names, self.sectors, time=t)

    def _mass_rate(self, t) -> np.ndarray:
        """Area-source mass rates, Mg s-1, (nsec, npol, ncell) at time t (hour of t)."""
        ncell = self.grid.ny * self.grid.nx
        rate = np.zeros((len(self.sectors), len(POLLUTANTS), ncell))
        for period, m in self._terms:
            fac = self.temporal.factors(self.sectors, t, period)
            if period == "month":
                m = m[self.temporal.local_time(t).month - 1]
            else:
                m = m[0]
            rate += m * fac[:, None, None]
        return rate

    def tagged_emissions(self, t, scaling=None, met: PlumeMet | None = None) -> EmissionFields:
        """Emission fluxes per tag (region x sector) at time ``t`` (UTC), leading axis ntag.

        Tag n is ``self.tags[n] = (region, sector)``; regions include ``outside``.

        ``scaling`` (a :class:`ScalingTable`, a {key: factor} dict or a DataFrame) is resolved at
        ``t`` exactly as given: a row with a window ``[start, end)`` applies iff start <= t < end.
        The temporal profiles are constant within each hour, but the factors are not rounded to
        the hour: when a window edge falls inside an hour, model steps starting before the edge
        get the old factors and steps starting at or after it the new ones (the transport model
        passes the start time of each step). The per-hour cache is keyed on the resolved factors
        too, so such a step never reuses the fields of the other side of the edge.
        """
        beta = self.scaling_array(scaling, t)
        key = (_hour_key(t), beta.tobytes(), id(met))
        if self._cache_key == key:
            return self._cache_val
        g = self.grid
        nreg, nsec, nspec = self.regions.nregion, len(self.sectors), len(self.species)
        ncell = g.ny * g.nx
        frac = self.regions.fractions.reshape(nreg, ncell)
        rate = self._mass_rate(t)                                   # Mg s-1 (nsec, npol, ncell)
        # speciate per region & sector: (nreg, nsec, nspec, ncell), per unit area
        sb = np.einsum("sqp,rsp->rsqp", self._smat, beta)           # (nreg, nsec, nspec, npol)
        spec = np.einsum("rsqp,spc->rsqc", sb, rate) * (frac[:, None, None, :] / self.cell_area)
        prof = self._area_prof
        surface = spec * prof[None, :, 0, None, None]
        ncol = self.columns.shape[0]
        elevated = np.zeros((nreg, nsec, nspec, self.nz, ncol))
        if self._area_elev.size:
            # columns hold every cell (in C order) when any area sector is lifted
            s = self._area_elev
            elevated[:, s, :, 1:, :] = (spec[:, s, :, None, :] * prof[None, s, None, 1:, None])
        if self._pt_idx.size:
            self._add_point_emissions(t, beta, met, elevated)
        surface = surface.reshape(nreg * nsec, nspec, g.ny, g.nx)
        elevated = elevated.reshape(nreg * nsec, nspec, self.nz, ncol)
        out = EmissionFields(t, self.species, surface, elevated, self.columns,
                             (self.nz, g.ny, g.nx), self.tags)
        self._cache_key, self._cache_val = key, out
        return out

    def _add_point_emissions(self, t, beta, met, elevated) -> None:
        sub = self._points_sub()
        if met is None:
            layers = self._default_stack_layers
        else:
            layers = stack_layer_fractions(sub, self._pt_cells, met)
        fac = self.temporal.factors(self.sectors, t, "year")         # s-1 per sector
        ci = self._pt_cells[0] * self.grid.nx + self._pt_cells[1]
        for n in range(len(sub)):
            r, s = self._pt_region[n], self._pt_sector[n]
            mass_rate = sub.rates[n] * fac[s] * beta[r, s]            # Mg s-1 (npol,)
            flux = self._smat[s] @ mass_rate / self.cell_area[ci[n]]  # (nspec,)
            elevated[r, s, :, :, self._pt_col[n]] += flux[:, None] * layers[n][None, :]

    def emissions(self, t, scaling=None, met: PlumeMet | None = None) -> EmissionFields:
        """Bulk emission fluxes at time ``t``: the exact sum over tags."""
        tagged = self.tagged_emissions(t, scaling, met)
        return EmissionFields(t, self.species, tagged.surface.sum(axis=0),
                              tagged.elevated.sum(axis=0), tagged.columns, tagged.shape, None)

    # ----------------------------------------------------------------------------- diagnostics
    def abated_mass(self, scaling, start, hours: int) -> np.ndarray:
        """Mg removed per (region, sector, pollutant) over the ``hours`` hours from ``start``
        (UTC) by a scaling table: the hourly gridded/area mass rates (temporal profiles
        included) split by the region fractions, times ``1 - factor`` of the hour (negative
        where a factor exceeds 1). Point sources are not counted."""
        table = ScalingTable.coerce(scaling)
        frac = self.regions.fractions.reshape(len(self.regions.names), -1)
        out = np.zeros((len(self.regions.names), len(self.sectors), len(POLLUTANTS)))
        t0 = np.datetime64(start, "s")
        for h in range(int(hours)):
            t = t0 + np.timedelta64(h * 3600 + 1800, "s")  # the hour's middle
            f = table.resolve(self.regions.names, self.sectors, time=t)
            if np.all(f == 1.0):
                continue
            rate = np.einsum("spc,rc->rsp", self._mass_rate(t), frac)  # Mg s-1
            out += rate * (1.0 - f) * 3600.0
        return out

    def annual_cell_mass(self) -> np.ndarray:
        """Mg per year per (sector, pollutant, cell) of the gridded and area sources (cells
        C-ordered over (ny, nx); monthly inventories summed over the months)."""
        out = np.zeros((len(self.sectors), len(POLLUTANTS), self.grid.ny * self.grid.nx))
        for _, m in self._terms:
            out += m.sum(axis=0)
        return out

    def annual_mass(self) -> np.ndarray:
        """Mg per year per (sector, pollutant) on the grid (area + gridded + in-domain points)."""
        out = np.zeros((len(self.sectors), len(POLLUTANTS)))
        for _, m in self._terms:
            out += m.sum(axis=(0, 3))
        sub = self._points_sub()
        for n in range(len(sub)):
            out[self._pt_sector[n]] += sub.rates[n]
        return out

    @classmethod
    def from_config(cls, cfg, grid, cache_dir: str | Path | None = None,
                    **kwargs) -> "EmissionModel":
        """Build from a :class:`aqforecast.config.RunConfig` for one of its grids.

        Reads ``inputs.emissions.gridded`` (native path or layout block), ``.points`` and
        ``.areas``, each optional; with none of them the model is empty (zero fields, no tags)
        and a warning says so. ``report["sources"]`` describes what was read.
        """
        from ..config import resolve_path

        e = cfg.inputs.emissions
        invs = _gridded_from_config(cfg, grid)
        pts = read_point_sources(resolve_path(cfg, e.points)) if e.points else None
        area = read_area_sources(resolve_path(cfg, e.areas)) if e.areas else None
        if e.gridded is None and pts is None and area is None:
            log.warning("no emissions configured (inputs.emissions.gridded, .points and .areas "
                        "are all absent): grid %s gets no emissions and no source tags",
                        grid.name)
        elif e.gridded is not None and not invs:
            log.warning("%s: the gridded inventory has no cell over grid %s", e.gridded,
                        grid.name)
        clock = cfg.time.local_time  # local hours, days and months of the profiles
        temporal = (TemporalProfiles.from_csv(resolve_path(cfg, e.profiles), local_time=clock)
                    if e.profiles else TemporalProfiles(local_time=clock))
        regions = region_fractions(grid, [(r.name, resolve_path(cfg, r.geojson))
                                          for r in cfg.regions])
        species = tuple(s for s in cfg.species if s in EMITTED_SPECIES)
        em = cls(grid, invs, pts, area, regions=regions, species=species, temporal=temporal,
                 cache_dir=cache_dir, **kwargs)
        sources = [f"gridded inventory read: {inv.source} ({inv.period}ly, "
                   f"{inv.lat_edges.size - 1} x {inv.lon_edges.size - 1} cells, sectors "
                   f"{', '.join(inv.sectors)})" for inv in invs]
        if pts is not None:
            sources.append(f"points {pts.source}: {len(pts)} stack(s), "
                           f"{len(pts) - len(em.report['points_outside'])} inside {grid.name}")
        if area is not None:
            sources.append(f"areas {area.source}: {len(area)} source(s)")
        em.report["sources"] = sources
        return em


def _gridded_from_config(cfg, grid) -> list[GriddedInventory]:
    """The configured gridded inventory (``inputs.emissions.gridded``) as GriddedInventory
    parts: a path or ``layout: native`` is one file in the native layout; ``layout: pattern``
    is read by :func:`~aqforecast.emissions.layouts.read_pattern_inventory` around ``grid``."""
    from ..config import resolve_path

    e = cfg.inputs.emissions
    g = e.gridded
    if g is None:
        return []
    if isinstance(g, (str, os.PathLike)):
        path, layout, mapping_path = g, "native", None
    else:
        path, layout, mapping_path = g.path, g.layout, g.mapping
    mapping = read_mapping(resolve_path(cfg, mapping_path)) if mapping_path else \
        InventoryMapping()
    if layout == "native":
        inv = read_gridded_inventory(resolve_path(cfg, path))
        if "base_year" in inv.attrs:
            year = int(np.asarray(inv.attrs["base_year"]).ravel()[0])
            if year != e.base_year:
                raise InputFileError(f"{inv.source}: inventory attribute base_year = {year}, but "
                                     f"inputs.emissions.base_year is {e.base_year}: the "
                                     f"configuration does not describe this inventory")
        return [mapping.apply_sectors(inv)] if mapping_path else [inv]
    variables = (g.variable,) if isinstance(g.variable, str) else tuple(g.variable)
    lay = InventoryLayout(str(resolve_path(cfg, path)), variables, g.sector_dim, g.species_dim,
                          g.sector, g.species, g.units, mapping)
    return read_pattern_inventory(lay, e.base_year, window=_outer_window(cfg, grid))


def _outer_window(cfg, grid) -> tuple[float, float, float, float]:
    """lon/lat extent of ``grid`` and of the outermost domain it nests in (so a nest reuses
    what its parent read)."""
    parents = {d.name: d.parent for d in cfg.domains}
    root = grid.name
    while parents.get(root):
        root = parents[root]
    w = np.array(grid.extent_lonlat)
    if root != grid.name and root in parents:
        from ..grid import grids_from_config

        r = np.array(grids_from_config(cfg)[root].extent_lonlat)
        w = np.array([min(w[0], r[0]), max(w[1], r[1]), min(w[2], r[2]), max(w[3], r[3])])
    return tuple(float(x) for x in w)


def _hour_key(t) -> int:
    return int(as_utc(t).timestamp() // 3600)
