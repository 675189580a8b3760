"""One domain of the chemistry-transport model: state and the operator-split step.

Per synchronisation step [t, t + dt] (SCIENCE.md 1.4, CMAQ order):

1. VDIFF: implicit vertical diffusion with emissions (surface + elevated) and dry deposition
   (column layout);
2. HADV: Walcek x/y sweeps (or, with ``advection_scheme="upwind"``, linear donor-cell ones),
   order alternating each sub-step, CFL sub-stepping, inflow boundary
   values from the background profile or the parent domain (level layout, see
   :mod:`aqforecast.transport.layout`);
3. ZADV: Walcek z sweeps with the diagnosed ("yamo") vertical mass flux, so the air mass ends
   equal to the met's air mass at t + dt;
4. wet scavenging; 5. chemistry (+ NH4NO3 equilibrium), tags apportioned after it.

State inside: mixing ratios ``q`` (gases mol mol-1, aerosols kg kg-1), ``(nspec, nz, ny, nx)``
padded by ``halo`` ghosts, and tag concentrations in the same units, one row per (tagged
species, tag). Budgets (kg of each species) accumulate per process and close to round-off:
``final - initial = emitted - dry - wet + chemistry + boundary``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .. import species as species_registry
from ..constants import M_AIR
from ..kernels import advection as kadv
from ..kernels import tagging as ktag
from ..kernels.tagging import walcek_sweep_tagged
from ..met.boundary_layer import obukhov_length
from .advection import Advection
from .boundary import background_profile
from .deposition import DryDeposition, wet_coefficients
from .layout import Layout
from .met_inputs import photolysis_cloud_factor, plume_met, relative_humidity_percent
from .vertical import VerticalMixing, WetScavenging

log = logging.getLogger(__name__)

__all__ = ["DomainModel", "BUDGET_TERMS"]

BUDGET_TERMS = ("emitted", "dry_deposited", "wet_deposited", "chemistry", "boundary")
_FACES = ("west", "east", "south", "north")


def _runs(mask):
    """(start, stop) of each run of adjacent True entries of a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


class DomainModel:
    """The CTM on one grid.

    Parameters
    ----------
    grid: :class:`~aqforecast.grid.LambertGrid` with a vertical grid.
    species: transported species (model names).
    met: a :class:`~aqforecast.met.MetProvider` for this grid.
    start: initial time (datetime64).
    emissions: an :class:`~aqforecast.emissions.EmissionModel` or None.
    chemistry: a :class:`~aqforecast.chemistry.ChemistryOperator` or None.
    tags: None or ``(tag_labels, tagged_species)`` with ``tag_labels`` a list of
        (region, sector) whose first entries are the emission model's tags, then
        ("initial", "ic") and ("boundary", "bc").
    tag_chemistry: callable ``(model, before, diagnostics)`` apportioning chemistry to tags.
    comm: communicator (serial by default); process_grid: (py, px) or None.
    scaling: emission scaling (a :class:`~aqforecast.emissions.ScalingTable`, dict or
        DataFrame) passed to the emission model every step (inversion/scenarios).
    parent: the parent domain's model (nests), whose state the nest's boundary reads.
    boundary_source, background_source: see :meth:`set_boundaries`.
    advection_scheme: "walcek" (monotone, the default) or "upwind" (first-order donor cell,
        linear: each source tag then equals a run with only that source to round-off; more
        diffusive). Both use the same sweeps, sub-steps and air-mass update.
    courant_max: largest outflow Courant number of one sweep (``time.cfl``; SCIENCE.md 1.5):
        the horizontal and vertical sub-steps are planned so that no sweep exceeds it.
    """

    halo = 3

    def __init__(self, grid, species, met, start, *, emissions=None, chemistry=None, tags=None,
                 tag_chemistry=None, comm=None, process_grid=None, scaling=None,
                 boundary_source=None, name=None, advection_scheme="walcek",
                 courant_max=0.75, parent=None, background_source=None):
        from ..parallel import SerialComm

        self.grid = grid
        self.name = name or grid.name
        self.species = list(species)
        self.nspec = len(self.species)
        self.met = met
        self.emission_model = emissions
        self.chemistry = chemistry
        self.tag_chemistry = tag_chemistry
        self.scaling = scaling
        self.comm = comm or SerialComm()
        self.parent = parent
        self.boundary_source = None
        self.background_source = None
        self.set_boundaries(lateral=boundary_source, background=background_source)
        self.time = np.datetime64(start, "s")
        advection_scheme = {"upwind": "donor_cell"}.get(advection_scheme, advection_scheme)
        if advection_scheme not in ("walcek", "donor_cell"):
            raise ValueError(f"advection_scheme must be 'walcek' or 'donor_cell', got "
                             f"{advection_scheme!r}")
        self.advection_scheme = advection_scheme
        if not 0.0 < courant_max <= 1.0:
            raise ValueError(f"courant_max must be in (0, 1], got {courant_max}")
        self.courant_max = float(courant_max)
        nz, ny, nx = grid.vertical.nz, grid.ny, grid.nx
        self.shape = (nz, ny, nx)
        h = self.halo
        self.layout = Layout(self.comm, nz, ny, nx, h, process_grid)
        lay = self.layout
        nyl, nxl = lay.block_shape
        self.q = np.zeros(lay.column_shape((self.nspec,)))
        self._q_lev = self.q if lay.serial else np.zeros(lay.level_shape((self.nspec,)))
        self.mass = np.zeros((nz, nyl, nxl))
        self._phase = {"gas": [], "aerosol": []}
        for i, s in enumerate(self.species):
            self._phase[species_registry.get(s).phase].append(i)
        self.molar_mass = np.array([species_registry.get(s).molar_mass for s in self.species])
        # kg of species per ([q] kg of air)
        self.kg_per_q = np.array([m / (M_AIR * 1e3) if species_registry.get(s).phase == "gas"
                                  else 1.0 for s, m in zip(self.species, self.molar_mass)])
        # tags
        self.tag_labels, self.tagged = ([], []) if tags is None else (list(tags[0]),
                                                                     list(tags[1]))
        self.ntag = len(self.tag_labels)
        self.tag_rows = np.array([self.species.index(s) for s in self.tagged], dtype=np.int64)
        nrow = len(self.tagged) * self.ntag
        self.tagc = np.zeros(lay.column_shape((nrow,)))
        self._tag_lev = self.tagc if lay.serial else np.zeros(lay.level_shape((nrow,)))
        self.ic_tag = self._label_index("initial")
        self.bc_tag = self._label_index("boundary")
        # operators (column layout: halo-padded interior blocks)
        area = lay.local(grid.cell_area)
        self.vmix = VerticalMixing((nz, nyl, nxl), self.nspec, h, area)
        self.vmix_tags = VerticalMixing((nz, nyl, nxl), nrow, h, area) if nrow else None
        a, b = wet_coefficients(self.species)
        self.wet = WetScavenging((nz, nyl, nxl), a, b, h, area)
        self.wet_tags = (WetScavenging((nz, nyl, nxl), np.repeat(a[self.tag_rows], self.ntag),
                                       np.repeat(b[self.tag_rows], self.ntag), h, area)
                         if nrow else None)
        scheme = str(met.wrf.attrs.get("MMINLU", "USGS")) if hasattr(met, "wrf") else "USGS"
        self.drydep = DryDeposition(self.species, lay.local(met.lu_index), scheme)
        self._hfills = {}  # ghost fillers of runs of adjacent levels, by length
        self.zadv = Advection((nz, nyl, nxl), "walcek", ("closed", "closed", "inflow"), h)
        self._forward = True
        self.budget = {k: np.zeros(self.nspec) for k in BUDGET_TERMS}
        self.last_substeps = (0, 0)
        self.lon, self.lat = (lay.local(a) for a in grid.lonlat)
        self._plume_hour = None

    def set_boundaries(self, lateral=None, background=None) -> None:
        """Connect the boundary conditions (the sources need the model, so they are connected
        after it is built).

        lateral: callable ``(model, s) -> (bulk, tags)`` giving the inflow ghost values per face
            (:meth:`boundary_values`), e.g. a :class:`~aqforecast.transport.nesting.NestBoundary`
            or a :class:`~aqforecast.transport.boundary.FileBoundary`; None: the background
            profiles.
        background: object with ``lid(model, s)`` and ``initial(model, s)`` for the lid inflow
            and the cold start (e.g. a FileBoundary); None: the background profiles.
        """
        self.boundary_source = lateral
        self.background_source = background

    def _label_index(self, region):
        for i, (r, _) in enumerate(self.tag_labels):
            if r == region:
                return i
        return -1

    # ------------------------------------------------------------------ state
    @property
    def interior(self):
        h = self.halo
        nyl, nxl = self.layout.block_shape
        return (slice(None), slice(h, h + self.shape[0]), slice(h, h + nyl), slice(h, h + nxl))

    def conc(self) -> np.ndarray:
        """Interior mixing ratios of this rank's block, (nspec, nz, nyl, nxl) (a view)."""
        return self.q[self.interior]

    def tag_conc(self) -> np.ndarray:
        """Tag concentrations (ntagged, ntag, nz, nyl, nxl), model units (a copy)."""
        t = self.tagc[self.interior]
        return t.reshape((len(self.tagged), self.ntag) + t.shape[1:])

    def cold_start(self) -> None:
        """Initial state from the background profiles (SCIENCE.md 1.6), or from the
        boundary-condition file (:attr:`background_source`); IC tag = bulk."""
        s = self.met.state(self.time)
        loc = self.layout.local
        z, rho = loc(s.z_centre), loc(s.rho_dry)
        c = self.conc()
        if self.background_source is not None:
            c[...] = self.background_source.initial(self, s)
        else:
            for i, name in enumerate(self.species):
                c[i] = background_profile(name, z, rho)
        self.mass[...] = loc(s.mass)
        if self.ntag and self.ic_tag >= 0:
            tc = self.tagc[self.interior]
            tc[...] = 0.0
            for t, row in enumerate(self.tag_rows):
                tc[t * self.ntag + self.ic_tag] = c[row]

    def total_mass(self) -> np.ndarray:
        """Global tracer mass per species, kg of species (all ranks get it)."""
        local = np.einsum("skji,kji->s", self.conc(), self.mass) * self.kg_per_q
        return self.layout.allsum(local)

    def set_state(self, conc: np.ndarray, tags: np.ndarray | None = None,
                  time=None) -> None:
        """Start from a given state (assimilation, ``--initial``): ``conc`` the GLOBAL interior
        mixing ratios (nspec, nz, ny, nx) in model units (gases mol mol-1, aerosols kg kg-1) on
        every rank; the air mass is the met's at the model time; budgets start at zero. Tags:
        the global tag array (nrow, nz, ny, nx) in the layout of :meth:`state_arrays`, or None
        to give everything to the initial-condition tag. ``time`` (datetime64) moves the model
        clock first."""
        conc = np.asarray(conc, dtype=float)
        if conc.shape != (self.nspec,) + self.shape:
            raise ValueError(f"{self.name}: state has shape {conc.shape}, the model needs "
                             f"{(self.nspec,) + self.shape}")
        if not np.all(np.isfinite(conc)):
            raise ValueError(f"{self.name}: state has non-finite values")
        floor = -1e-9 * np.abs(conc).max(axis=(1, 2, 3))  # round-off of a model state
        low = conc.min(axis=(1, 2, 3)) < floor
        if low.any():
            raise ValueError(f"{self.name}: state has negative values for "
                             f"{[n for n, b in zip(self.species, low) if b]}")
        if time is not None:
            self.time = np.datetime64(time, "s")
        loc = self.layout.local
        self.conc()[...] = loc(conc)
        self.mass[...] = loc(self.met.state(self.time).mass)
        self.budget = {k: np.zeros(self.nspec) for k in BUDGET_TERMS}
        if not self.ntag:
            return
        tc = self.tagc[self.interior]
        if tags is not None:
            tc[...] = loc(np.asarray(tags, dtype=float))
        elif self.ic_tag >= 0:
            tc[...] = 0.0
            c = self.conc()
            for t, row in enumerate(self.tag_rows):
                tc[t * self.ntag + self.ic_tag] = c[row]

    def state_arrays(self) -> dict:
        """Everything needed to continue exactly (gathered on rank 0; None elsewhere)."""
        lay = self.layout
        q = lay.gather(np.ascontiguousarray(self.conc()))
        m = lay.gather(self.mass)
        out = {"q": q, "mass": m}
        if self.ntag:
            out["tags"] = lay.gather(np.ascontiguousarray(self.tagc[self.interior]))
        solver = self.chemistry.solver_state() if self.chemistry is not None else None
        if solver is not None:
            cells = self.shape[:1] + lay.block_shape
            internal = solver["internal"].reshape((-1,) + cells)
            out["chem_internal"] = lay.gather(np.ascontiguousarray(internal))
            out["chem_last_step"] = lay.gather(
                np.ascontiguousarray(solver["last_step"].reshape(cells)))
        budgets = {k: self.layout.allsum(v) for k, v in self.budget.items()}
        if self.comm.rank != 0:
            return None
        for k, v in budgets.items():
            out[f"budget_{k}"] = v
        out["forward"] = np.array([int(self._forward)])
        return out

    def load_state(self, arrays: dict) -> None:
        """Inverse of :meth:`state_arrays` (every rank passes the global arrays)."""
        loc = self.layout.local
        self.conc()[...] = loc(arrays["q"])
        self.mass[...] = loc(arrays["mass"])
        if self.ntag and "tags" in arrays:
            self.tagc[self.interior] = loc(arrays["tags"])
        if self.chemistry is not None and "chem_internal" in arrays:
            ci = loc(arrays["chem_internal"])
            self.chemistry.set_solver_state(ci.reshape(ci.shape[0], -1),
                                            loc(arrays["chem_last_step"]).ravel())
        for k in BUDGET_TERMS:
            if f"budget_{k}" in arrays:
                # budgets are global sums; keep them on rank 0 only so allsum stays right
                self.budget[k][...] = arrays[f"budget_{k}"] if self.comm.rank == 0 else 0.0
        self._forward = bool(int(np.asarray(arrays.get("forward", [1]))[0]))

    # ------------------------------------------------------------------ boundaries
    def background_profiles(self, s):
        """Background profile values (nspec, nz) at the domain-mean column."""
        z = s.z_centre.mean(axis=(1, 2))
        rho = s.rho_dry.mean(axis=(1, 2))
        return np.stack([background_profile(n, z, rho) for n in self.species])

    def _lid_values(self, s):
        """Inflow values above the model top, broadcastable to (nspec, halo, nyl, nxl)."""
        if self.background_source is not None:
            return self.background_source.lid(self, s)
        return self.background_profiles(s)[:, -1][:, None, None, None]

    def boundary_values(self, s) -> tuple[dict, dict]:
        """Inflow ghost values for the bulk and the tag fractions, per face, level layout.

        Bulk: dict face -> (nspec, nl, ...) arrays broadcastable to the ghost slab; tags: dict
        face -> (ntagged, ntag, nl, n) fractions on the face's lines.
        """
        if self.boundary_source is not None:
            return self.boundary_source(self, s)
        prof = self.background_profiles(s)[:, self.layout.levels]  # (nspec, nl)
        vals = {f: prof[:, :, None, None] for f in _FACES}
        return vals, None

    def set_boundary_from_parent(self) -> None:
        """Nests read their parent lazily through ``boundary_source`` (nothing to do here)."""

    # ------------------------------------------------------------------ the step
    def step(self, dt: float) -> None:
        t0 = self.time
        t_mid = t0 + np.timedelta64(int(round(dt / 2)), "s")
        lay = self.layout
        s = self.met.state(t_mid)
        fl = self.met.air_mass_fluxes(t0, dt)
        fx, fy, fz = fl.step_fluxes()
        loc = lay.local
        # 0. air mass at the start of the step from the met (the previous step ended on it)
        self.mass[...] = loc(fl.mass_start)
        # 1. VDIFF + emissions + dry deposition
        self._vertical_mixing(s, dt)
        # 2.-3. advection: x/y sweeps (level layout) and z sweeps (column layout)
        self._advection(s, fl, fx, fy, fz)
        # 4. wet scavenging
        rho_dz = loc(s.rho_dry * s.dz)
        precip = self._precip_profile(s)
        before = self.total_local()
        self.wet(self.q, dt, precip, rho_dz)
        # measured on the model's own air mass, so the budget closes exactly
        self.budget["wet_deposited"] += before - self.total_local()
        if self.wet_tags is not None:
            self.wet_tags(self.tagc, dt, precip, rho_dz)
        # 5. chemistry
        if self.chemistry is not None:
            self._chemistry(s, t_mid, dt)
        self.time = t0 + np.timedelta64(int(round(dt)), "s")

    def _vertical_mixing(self, s, dt):
        loc = self.layout.local
        dz, kz = loc(s.dz), loc(s.kz)
        # the model's own air mass (kg) as the column weights: rho dz = M / area, so that the
        # mixing conserves sum(q M) exactly (the met's rho dz at mid-step differs from the
        # step-start M by the step's mass tendency, ~3e-9 of the tracer mass per step)
        rho = self.mass / (self.vmix.cell_area * dz)
        self.vmix.set_met(np.ascontiguousarray(rho), np.ascontiguousarray(dz),
                          np.ascontiguousarray(kz))
        el = obukhov_length(s.ust, s.hfx, s.lh, s.rho_dry[0], s.theta[0] * (1 + 0.61 * s.qv[0]))
        vd = self.drydep(int(str(self.time)[5:7]), float(self.grid.lonlat[1].mean()),
                         loc(s.swdown), loc(s.t2), loc(s.rain_rate), loc(s.z_centre[0]),
                         loc(s.ust), loc(el))
        emis, emis_tags = self._emissions(s)
        mass0 = self.total_local()
        dep = self.vmix(self.q, dt, vd, emis)
        self.budget["dry_deposited"] += dep * self.kg_per_q
        emitted = self.total_local() - mass0 + dep * self.kg_per_q
        self.budget["emitted"] += emitted
        if self.vmix_tags is not None:
            self.vmix_tags.set_met(np.ascontiguousarray(rho), np.ascontiguousarray(dz),
                                   np.ascontiguousarray(kz))
            vdt = np.repeat(vd[self.tag_rows], self.ntag, axis=0)
            self.vmix_tags(self.tagc, dt, vdt, emis_tags)

    def total_local(self) -> np.ndarray:
        return np.einsum("skji,kji->s", self.conc(), self.mass) * self.kg_per_q

    def _emissions(self, s):
        """Emission source terms in [q] kg-air m-2 s-1 for the bulk (nspec, ne, nyl, nxl) and
        the tag rows (nrow, ne, nyl, nxl)."""
        em = self.emission_model
        if em is None:
            return None, None
        loc = self.layout.local
        tagged = em.tagged_emissions(self.time, self.scaling, self._plume_met())
        ne = tagged.emitting_layers()
        dense = loc(tagged.to_dense(ne))  # (ntag_em, nspec_em, ne, nyl, nxl), SI per area
        nyl, nxl = self.layout.block_shape
        bulk = np.zeros((self.nspec, ne, nyl, nxl))
        tag_rows = np.zeros((len(self.tagged) * self.ntag, ne, nyl, nxl)) if self.ntag else None
        for e, name in enumerate(tagged.species):
            if name not in self.species:
                continue
            i = self.species.index(name)
            # gases: mol m-2 s-1 -> (mol/mol) kg-air m-2 s-1 ; aerosols already kg m-2 s-1
            f = M_AIR if species_registry.get(name).phase == "gas" else 1.0
            src = dense[:, e] * f  # (ntag_em, ne, nyl, nxl)
            bulk[i] = src.sum(axis=0)
            if tag_rows is not None and name in self.tagged:
                t = self.tagged.index(name)
                tag_rows[t * self.ntag:t * self.ntag + src.shape[0]] = src
        return bulk, tag_rows

    def _plume_met(self):
        """Plume-rise met of the hour that holds the step start (the emission profiles are
        hourly too), built once per hour from the met at the top of the hour, so a run resumed
        mid-hour sees the same plumes as the straight run."""
        if self.emission_model is None or not self.emission_model.has_point_sources:
            return None
        hour = self.time.astype("datetime64[h]")
        if self._plume_hour is None or self._plume_hour[0] != hour:
            self._plume_hour = (hour, plume_met(self.met.state(hour)))
        return self._plume_hour[1]

    def _precip_profile(self, s):
        """Rain rate through each layer (mm h-1): surface rate below the cloud top."""
        loc = self.layout.local
        cloudy = s.cldfra > 0.1
        ztop = np.where(cloudy.any(axis=0),
                        np.max(np.where(cloudy, s.z_interface[1:], 0.0), axis=0), 3000.0)
        prof = np.where(s.z_centre <= ztop[None], s.rain_rate[None], 0.0)
        return np.ascontiguousarray(loc(prof))

    def tag_fractions(self, bulk, tagc):
        """Tag fractions (ntagged, ntag, ...) from the bulk (nspec, ...) and the tag rows
        (nrow, ...); cells without tracer give all to the IC tag."""
        nt = len(self.tagged)
        cells = tagc.shape[1:]
        m = int(np.prod(cells))
        b = np.ascontiguousarray(bulk[self.tag_rows]).reshape(nt, m)
        tc = np.ascontiguousarray(tagc).reshape(nt, self.ntag, m)
        frac = np.empty((nt, self.ntag, m))
        ktag.fractions_from_tags(b, tc, self.ic_tag, frac)
        return frac.reshape((nt, self.ntag) + cells)

    def _substep_plan(self, fl, fx, fy, fz):
        """(n_outer, per-level horizontal sub-steps, vertical sub-steps per outer step).

        The step is cut into ``n_outer`` outer steps so that neither the horizontal nor the
        vertical flux divergence alone removes more than half of a cell's air within one outer
        step (the phase order alternates H, Z / Z, H, and the yamo vertical flux undoes the
        horizontal convergence, so either phase may run first on the unbalanced mass); within an
        outer step each level takes its own number of x/y sub-steps (CMAQ's layer-dependent
        ASTEP, SCIENCE.md 1.5) and the z sweeps their own, each planned from the smallest mass
        its phase can start from. All counts come from the global met arrays, so every rank
        gets the same plan.
        """
        m0 = np.minimum(fl.mass_start, fl.mass_end)
        div_h = (fx[:, :, 1:] - fx[:, :, :-1]) + (fy[:, 1:, :] - fy[:, :-1, :])
        div_z = fz[1:] - fz[:-1]
        worst = max(float(np.max(div_h / m0)), float(np.max(div_z / m0)))
        n_outer = max(1, math.ceil(worst / 0.5 - 1e-12))
        nz = self.shape[0]
        out = np.zeros(5)
        per_level = np.ones(nz, dtype=np.int64)
        m_h = m0 - np.maximum(div_z, 0.0) / n_outer  # the horizontal phase after a z phase
        zero = np.zeros((2,) + m0.shape[1:])
        for k in range(nz):
            kadv.max_courant(m_h[k:k + 1], fx[k:k + 1] / n_outer, fy[k:k + 1] / n_outer, zero,
                             self.courant_max, out)
            per_level[k] = max(1, math.ceil(out[3] - 1e-12))
        zx = np.zeros(m0.shape[:2] + (m0.shape[2] + 1,))
        zy = np.zeros((m0.shape[0], m0.shape[1] + 1, m0.shape[2]))
        # the vertical phase after a horizontal one
        kadv.max_courant(m0 - np.maximum(div_h, 0.0) / n_outer, zx, zy, fz / n_outer,
                         self.courant_max, out)
        n_z = max(1, math.ceil(out[3] - 1e-12))
        return n_outer, per_level, n_z

    def _advection(self, s, fl, fx, fy, fz):
        """Walcek advection: x/y sweeps in the level layout (per-level sub-steps, x/y order
        alternating) and z sweeps in the column layout, inside ``n_outer`` outer steps whose
        order alternates H, Z / Z, H (SCIENCE.md 1.4, 2.2)."""
        lay = self.layout
        nz, ny, nx = self.shape
        nyl, nxl = lay.block_shape
        levels = lay.levels
        nl = len(levels)
        n_outer, per_level, n_z = self._substep_plan(fl, fx, fy, fz)
        mass = np.array(fl.mass_start)  # global air mass, updated exactly as the kernels do
        nt = len(self.tagged)
        frac_col = frac_lev = None
        if nt:
            # read in place from the halo-padded arrays (no copies of the tag array)
            frac_col = np.empty((nt, self.ntag) + self.conc().shape[1:])
            ktag.fractions_from_tag_cells(self.conc(), self.tag_rows, self.tagc[self.interior],
                                          self.ntag, self.ic_tag, frac_col)
            frac_lev = frac_col if lay.serial else np.zeros((nt, self.ntag, nl, ny, nx))
        bvals, btags = self.boundary_values(s)
        top = self._lid_values(s)
        fzl = np.ascontiguousarray(lay.local(fz))
        zx = np.zeros((nz, nyl, nxl + 1))
        zy = np.zeros((nz, nyl + 1, nxl))
        before = self.total_local()
        forward = self._forward
        self._forward = not self._forward
        for _ in range(n_outer):
            for phase in (("h", "z") if forward else ("z", "h")):
                if phase == "h":
                    mass = self._horizontal(mass, fx, fy, n_outer, per_level, frac_col,
                                            frac_lev, bvals, btags, forward)
                else:
                    for _ in range(n_z):
                        scale = 1.0 / (n_outer * n_z)
                        m = np.ascontiguousarray(lay.local(mass))
                        self._zsweep(m, fzl, zx, zy, scale, top, frac_col)
                        mass = mass - fz[1:] * scale + fz[:-1] * scale
        self.mass[...] = lay.local(mass)
        self.budget["boundary"] += self.total_local() - before
        # the diagnosed vertical flux makes the mass equal the met's at t + dt; adopt the met's
        # to drop round-off, keeping the tracer mass (the tags in the same pass that rebuilds
        # them from their fractions)
        end = lay.local(fl.mass_end)
        ratio = self.mass / end
        if nt:
            ktag.tags_from_fraction_cells(self.conc(), self.tag_rows, frac_col, self.ntag, ratio,
                                          self.tagc[self.interior])
        self.conc()[...] *= ratio[None]
        self.mass[...] = end
        self.last_substeps = (n_outer * int(per_level.max()), n_outer * n_z)

    def _horizontal(self, mass, fx, fy, n_outer, per_level, frac_col, frac_lev, bvals, btags,
                    forward):
        """x/y sweeps of every level (level layout) for one outer step; returns the new mass.

        Level k takes ``per_level[k]`` sub-steps with the x/y order alternating. The levels are
        independent here, so sub-step r of every level that has one runs together: one ghost
        fill and one kernel call per run of adjacent such levels and direction, with the fluxes
        scaled per level beforehand (the same products as scaling them in the kernel), instead
        of one call per level (bit for bit the level-by-level result).
        """
        lay = self.layout
        h = self.halo
        levels = np.asarray(lay.levels)
        nt = len(self.tagged)
        lay.to_levels(self.q, self._q_lev)
        if nt and not lay.serial:
            lay.to_levels(frac_col, frac_lev, padded=False)
        n_all = np.asarray(per_level, dtype=np.int64)
        n_lev = n_all[levels]
        scale = (1.0 / (n_outer * n_all))[:, None, None]
        fs = (fx * scale, fy * scale)  # every level: every rank moves the global mass alike
        for r in range(int(n_all.max(initial=0))):
            active = n_all > r
            runs = _runs(n_lev > r)  # of this rank's levels
            for axis in ((0, 1) if (forward ^ (r % 2 == 1)) else (1, 0)):
                for a, b in runs:
                    qk = self._q_lev[:, a:b + 2 * h]  # the run's levels with their z ghosts
                    ks = levels[a:b]
                    fk = (fs[0][ks], fs[1][ks], None)
                    self._hfill_levels(b - a).fill_ghosts(
                        qk, axis, fk, {f: v[:, a:b] for f, v in bvals.items()})
                    self._sweep(qk, mass[ks], fk[axis], axis,
                                frac_lev[:, :, a:b] if nt else None,
                                None if btags is None else
                                {f: v[:, :, a:b] for f, v in btags.items()})
                f = fs[axis][active]
                if axis == 0:
                    mass[active] = mass[active] - f[:, :, 1:] + f[:, :, :-1]
                else:
                    mass[active] = mass[active] - f[:, 1:, :] + f[:, :-1, :]
        lay.to_columns(self._q_lev, self.q)
        if nt and not lay.serial:
            lay.to_columns(frac_lev, frac_col, padded=False)
        return mass

    def _hfill_levels(self, m):
        """Ghost filler of ``m`` adjacent levels (inflow x/y boundaries), made once per m."""
        op = self._hfills.get(m)
        if op is None:
            ny, nx = self.shape[1:]
            op = Advection((m, ny, nx), "walcek", ("inflow", "inflow", "closed"), self.halo)
            self._hfills[m] = op
        return op

    def _sweep(self, q, mass, flux, axis, frac, btags):
        """One tagged Walcek (or upwind, see ``advection_scheme``) sweep of m adjacent levels
        along x (axis 0) or y (1).

        q: (nspec, m + 2h, ny+2h, nx+2h) the levels with their (unused) z ghosts; mass (m, ny,
        nx), not changed (the kernel gets a copy); flux: (m, ny, nx+1) or (m, ny+1, nx), already
        scaled to the sub-step; frac: (nt, ntag, m, ny, nx) or None; btags: per face (nt, ntag,
        m, n) inflow fractions. The kernel's lines are (level, row) for x and (level, column)
        for y.
        """
        h = self.halo
        m = mass.shape[0]
        ny, nx = self.shape[1:]
        nt = len(self.tagged)
        if axis == 0:
            qv = q[:, h:h + m, h:h + ny, :]
            mv = np.array(mass, order="C")
            fv = np.ascontiguousarray(flux)
            fr = frac if nt else np.zeros((0, 0, m, ny, nx))
            nlines = ny
            lo, hi = "west", "east"
        else:
            qv = q[:, h:h + m, :, h:h + nx].transpose(0, 1, 3, 2)
            mv = np.array(mass.transpose(0, 2, 1), order="C")
            fv = np.ascontiguousarray(flux.transpose(0, 2, 1))
            fr = frac.transpose(0, 1, 2, 4, 3) if nt else np.zeros((0, 0, m, nx, ny))
            nlines = nx
            lo, hi = "south", "north"
        bl = np.zeros((nt, self.ntag, m, nlines))
        bh = np.zeros((nt, self.ntag, m, nlines))
        if nt:
            if btags is not None:
                bl[...], bh[...] = btags[lo], btags[hi]
            elif self.bc_tag >= 0:
                bl[:, self.bc_tag] = 1.0
                bh[:, self.bc_tag] = 1.0
        walcek_sweep_tagged(qv, h, mv, fv, 1.0, 0,
                            self.tag_rows if nt else np.zeros(0, np.int64), fr, bl, bh,
                            self.advection_scheme == "donor_cell")

    def _zsweep(self, mass, fzl, zx, zy, scale, top, frac):
        """One Walcek (or upwind) sweep along z in the column layout (ground closed, inflow at
        the lid)."""
        h = self.halo
        nz = self.shape[0]
        nyl, nxl = self.layout.block_shape
        nt = len(self.tagged)
        self.zadv.fill_ghosts(self.q, 2, (zx, zy, fzl), {"top": top})
        qv = self.q[:, :, h:h + nyl, h:h + nxl].transpose(0, 2, 3, 1)
        m = np.array(mass.transpose(1, 2, 0), order="C")  # a copy: the kernel updates it
        fr = frac.transpose(0, 1, 3, 4, 2) if nt else np.zeros((0, 0, nyl, nxl, nz))
        bl = np.zeros((nt, self.ntag, nyl, nxl))
        bh = np.zeros((nt, self.ntag, nyl, nxl))
        if nt and self.bc_tag >= 0:
            bh[:, self.bc_tag] = 1.0
            bl[:, self.bc_tag] = 1.0  # the ground face carries no flux
        walcek_sweep_tagged(qv, h, m, np.ascontiguousarray(fzl.transpose(1, 2, 0)), scale, 1,
                            self.tag_rows if nt else np.zeros(0, np.int64), fr, bl, bh,
                            self.advection_scheme == "donor_cell")

    def _chemistry(self, s, t_mid, dt):
        loc = self.layout.local
        work = np.ascontiguousarray(self.conc())
        before = work.copy() if self.tag_chemistry is not None else None
        m0 = self.total_local()
        cosz, cloud = photolysis_cloud_factor(s, t_mid, self.lon, self.lat, loc)
        diag = self.chemistry(work, loc(s.t), loc(s.p), dt, time=t_mid, lon=self.lon,
                              lat=self.lat, cos_zenith=cosz, cloud_factor=cloud,
                              relative_humidity=relative_humidity_percent(s, loc),
                              cloud_fraction=loc(s.cldfra),
                              cloud_water=loc(s.qc * s.rho_dry * 1e3))
        self.conc()[...] = work
        self.budget["chemistry"] += self.total_local() - m0
        if self.tag_chemistry is not None:
            self.tag_chemistry(self, before, diag)
