"""One domain of the chemistry-transport model: state and the operator-split step.

Per synchronisation step [t, t + dt] (SCIENCE.md 1.4, CMAQ order):

1. VDIFF: implicit vertical diffusion with emissions (surface + elevated) and dry deposition
   (column layout);
2. HADV: Walcek x/y sweeps (or, with ``advection_scheme="donor_cell"``, linear donor-cell ones),
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

import numpy as np

from .. import species as species_registry
from ..constants import M_AIR
from ..kernels import tagging as ktag
from ..met.boundary_layer import obukhov_length
from .advection import Advection, TagRows, resolve_scheme
from .boundary import background_profile
from .deposition import DryDeposition, wet_coefficients
from .layout import Layout
from .met_inputs import photolysis_cloud_factor, plume_met, relative_humidity_percent
from .vertical import VerticalMixing, WetScavenging

log = logging.getLogger(__name__)

__all__ = ["DomainModel", "BUDGET_TERMS", "ModelStateError", "ABSURD_FACTOR"]

BUDGET_TERMS = ("emitted", "dry_deposited", "wet_deposited", "chemistry", "boundary")
_FACES = ("west", "east", "south", "north")
#: a state value above this many times the species' largest plausible input
#: (:data:`aqforecast.species.PLAUSIBLE_MAX`, ppb / ug m-3) is a numerical failure
ABSURD_FACTOR = 1000.0


class ModelStateError(RuntimeError):
    """The model state became non-finite or absurd during a run: a numerical failure (or a
    bug), not an input error. The message names the domain, time, species or tag, the first
    (level, row, column) and the value."""


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
    advection_scheme: "walcek" (monotone, the default) or "donor_cell" (split first-order
        donor cell, linear: each source tag then equals a run with only that source to
        round-off; more diffusive; "upwind" is its deprecated name here). Both run the one
        operator (:class:`~aqforecast.transport.advection.Advection`): the same sweeps,
        sub-steps and air-mass update.
    tag_precision: "float64" or "float32", the float type of the tag fractions the advection
        sweeps carry (``tags.transport_precision``; :class:`~aqforecast.transport.advection.TagRows`).
    tag_storage: "float64" or "float32", the float type of the tag concentrations held
        between the operators, :attr:`tagc` (``tags.storage_precision``): float32 halves the
        largest array of a tagged run and the memory traffic of the tags' vertical mixing,
        fraction conversions and chemistry apportionment; the tags then sum to the bulk within
        float32 rounding (~2e-7 relative) instead of float64 round-off.
    courant_max: largest outflow Courant number of one sweep (``time.cfl``; SCIENCE.md 1.5):
        the horizontal and vertical sub-steps are planned so that no sweep exceeds it.
    """

    halo = 3

    def __init__(self, grid, species, met, start, *, emissions=None, chemistry=None, tags=None,
                 tag_chemistry=None, comm=None, process_grid=None, scaling=None,
                 boundary_source=None, name=None, advection_scheme="walcek",
                 courant_max=0.75, parent=None, background_source=None,
                 tag_precision="float64", tag_storage="float64"):
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
        if advection_scheme == "upwind":
            advection_scheme = resolve_scheme(advection_scheme, upwind_means="donor_cell")
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
        if tag_storage not in ("float64", "float32"):
            raise ValueError(f"tag_storage must be 'float64' or 'float32', got {tag_storage!r}")
        self.tagc = np.zeros(lay.column_shape((nrow,)), dtype=tag_storage)
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
        #: the advection operator: lateral faces inflow/outflow, ground closed, lid inflow
        self.advection = Advection(
            self.shape, advection_scheme, ("inflow", "inflow", ("closed", "inflow")), h,
            self.courant_max, self.nspec, lay,
            TagRows(self.tag_rows, self.ntag, self.ic_tag, self.bc_tag,
                    np.dtype(tag_precision).type) if nrow else None)
        self.budget = {k: np.zeros(self.nspec) for k in BUDGET_TERMS}
        self.last_substeps = (0, 0)
        self.lon, self.lat = (lay.local(a) for a in grid.lonlat)
        self._plume_hour = None
        self._emission_rows = None  # (fields, bulk, tag rows) of the last step's emissions

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

    def check_state(self, collective: bool = True, tags: bool = True) -> None:
        """Raise :class:`ModelStateError` if the bulk state holds a non-finite value or one
        above ``ABSURD_FACTOR`` x the species' plausible maximum (gases x 1e9 ppb, aerosols
        x 1.3e9 ug m-3 per kg kg-1: an upper bound of the air density), or (``tags``) the tags
        a non-finite value; the first (species, level, row, column) in global indices.
        ``collective``: every rank raises (else this rank only, which ends an MPI job through
        the command line's abort). Cost: one pass over the state (~1 ms per million values)."""
        c = self.conc()
        problem = None
        for i, name in enumerate(self.species):
            v = c[i]
            hi = species_registry.PLAUSIBLE_MAX.get(name, np.inf) * ABSURD_FACTOR
            if np.isfinite(hi) and species_registry.is_known(name):
                to_obs = 1e9 if species_registry.get(name).phase == "gas" else 1.3e9
                bad = ~(v * to_obs <= hi)     # NaN compares false: caught as well
            else:
                bad = ~np.isfinite(v)
            if bad.any():
                first = np.argwhere(bad)[0]
                problem = (name, first, float(v[tuple(first)]), int(bad.sum()))
                break
        if problem is None and tags and self.ntag:
            tc = self.tag_conc()
            bad = ~np.isfinite(tc)
            if bad.any():
                s, t, *idx = np.argwhere(bad)[0]
                region, sector = self.tag_labels[t]
                problem = (f"tag {region}|{sector} of {self.tagged[s]}", np.array(idx),
                           float(tc[(s, t, *idx)]), int(bad.sum()))
        if problem is not None:
            what, (k, j, i), value, count = problem
            ys, xs = self.layout.block
            problem = (what, int(k), int(j) + ys.start, int(i) + xs.start, value, count)
        found = [p for p in (self.comm.allgather(problem) if collective else [problem])
                 if p is not None]
        if found:
            what, k, j, i, value, _ = found[0]
            count = sum(p[5] for p in found)
            raise ModelStateError(
                f"{self.name}: the model state became non-finite or absurd at "
                f"{np.datetime_as_string(self.time, unit='m')}: {what} is {value:.6g} (model "
                f"units) at level {k}, row {j}, column {i} ({count} value(s) in all) -- a "
                f"numerical failure, not an input error; nothing was written for this time "
                f"and the last restart written before it is good (--resume continues from it "
                f"once the cause is fixed)")

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
        out["forward"] = np.array([int(self.advection.forward)])
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
        self.advection.forward = bool(int(np.asarray(arrays.get("forward", [1]))[0]))

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
        """Take the lateral boundary from the parent's present state and keep it until
        :meth:`release_boundary` (a nest's ``boundary_source`` with ``pin``; others read
        lazily, nothing to do here)."""
        pin = getattr(self.boundary_source, "pin", None)
        if pin is not None:
            pin()

    def release_boundary(self) -> None:
        """Read the parent lazily again (after :meth:`set_boundary_from_parent`)."""
        unpin = getattr(self.boundary_source, "unpin", None)
        if unpin is not None:
            unpin()

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
        tagged = em.tagged_emissions(self.time, self.scaling, self._plume_met())
        if self._emission_rows is not None and self._emission_rows[0] is tagged:
            # the emission model's per-hour cache returned the same fields: same rows (the
            # consumers only read them)
            return self._emission_rows[1:]
        ne = tagged.emitting_layers()
        # the surface fluxes and this block's elevated columns, added straight into the rows
        # (EmissionFields.to_dense, zeros for every tag, species and layer and then the
        # columns, cost ~21 ms an hour and domain on the sample case)
        sy, sx = self.layout.block
        surface = tagged.surface[..., sy, sx]  # (ntag_em, nspec_em, nyl, nxl)
        j, i = tagged.columns[:, 0], tagged.columns[:, 1]
        inside = (j >= sy.start) & (j < sy.stop) & (i >= sx.start) & (i < sx.stop)
        jl, il = j[inside] - sy.start, i[inside] - sx.start
        elevated = tagged.elevated[..., :ne, :][..., inside]  # (ntag_em, nspec_em, ne, ncol)
        nyl, nxl = self.layout.block_shape
        bulk = np.zeros((self.nspec, ne, nyl, nxl))
        tag_rows = None
        if self.ntag:
            # the previous hour's buffer when it has the same shape (a fresh 70 MB array for the
            # sample case's d01 cost its page faults every hour); nothing holds the old rows
            shape = (len(self.tagged) * self.ntag, ne, nyl, nxl)
            old = self._emission_rows[2] if self._emission_rows is not None else None
            tag_rows = old if old is not None and old.shape == shape else np.empty(shape)
            tag_rows[...] = 0.0
        for e, name in enumerate(tagged.species):
            if name not in self.species:
                continue
            k = self.species.index(name)
            # gases: mol m-2 s-1 -> (mol/mol) kg-air m-2 s-1 ; aerosols already kg m-2 s-1
            f = M_AIR if species_registry.get(name).phase == "gas" else 1.0
            src = surface[:, e] * f        # (ntag_em, nyl, nxl)
            col = elevated[:, e] * f       # (ntag_em, ne, ncol); the columns are unique
            bulk[k, 0] = src.sum(axis=0)
            bulk[k][:, jl, il] += col.sum(axis=0)
            if tag_rows is not None and name in self.tagged:
                t = self.tagged.index(name)
                rows = slice(t * self.ntag, t * self.ntag + src.shape[0])
                tag_rows[rows, 0] = src
                tag_rows[rows, :, jl, il] += col
        self._emission_rows = (tagged, bulk, tag_rows)
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

    def _advection(self, s, fl, fx, fy, fz):
        """Advection by :attr:`advection` (x/y sweeps in the level layout, z sweeps in the
        column layout, SCIENCE.md 1.4, 2.2); the end-of-step air mass is the met's."""
        mass = np.array(fl.mass_start)  # global air mass, updated exactly as the kernels do
        bvals, btags = self.boundary_values(s)
        before = self.total_local()
        self.advection(self.q, mass, fx, fy, fz, boundary_values={**bvals,
                                                                  "top": self._lid_values(s)},
                       tagc=self.tagc if self.advection.tags is not None else None,
                       tag_inflow=btags, mass_end=fl.mass_end)
        self.mass[...] = self.layout.local(mass)
        self.budget["boundary"] += self.total_local() - before
        self.last_substeps = self.advection.last_substeps

    def _chemistry(self, s, t_mid, dt):
        loc = self.layout.local
        work = np.ascontiguousarray(self.conc())
        if not np.isfinite(work).all():  # the solver would take its step limit in every cell
            self.check_state(collective=False, tags=False)
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
