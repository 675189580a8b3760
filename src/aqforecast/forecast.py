"""The forward model: build the nested domain models from a config, start them, run them.

:class:`ForwardModel` is the door for everything that runs the model with something changed
(assimilation, the inversion, scenarios, notebooks)::

    fm = ForwardModel("config/config.yaml", scaling="scaling.csv", initial="analysis/")
    fm.run_until(fm.time + np.timedelta64(6, "h"))
    values = fm.sample(lon, lat, ["NO2", "O3"])       # ppb / ug m-3 at the points, lowest layer

``build_models(cfg, ...)`` gives the bare list of :class:`DomainModel` (parents first).

``run_forecast(config, lead_hours, out_dir, ...)`` is the forecast stage. It writes, per domain,
``conc_<domain>.nc`` (species, dims (time, lev, y, x), stored as ``outputs.dtype``),
``tags_<domain>.nc`` (dims (tag, time, lev, y, x) with tag_region/tag_sector) and
``budget_<domain>.csv``, plus restart directories ``out_dir/restart/<YYYY-MM-DDTHH>/`` holding
``initial_<domain>.nc`` (the state as data, :mod:`aqforecast.io.initial_state`: any restart is a
valid ``--initial``) and ``restart_<domain>.nc`` (what an exact resume needs beyond it: the
float64 state, tags, the chemistry solver's step sizes, budgets, the sweep order).

The initial state, in order of precedence: ``initial=DIR`` (``DIR/initial_<domain>.nc``, valid at
the start; with ``DIR/restart_<domain>.nc`` beside it the tags, solver step sizes and sweep order
continue too); a restart of the previous cycle in ``inputs.restart_dir`` valid at the start
("warm": its state, every tag reset to the initial-condition tag); else "cold" from the
background profiles or the boundary-condition file. The kind is recorded in the files'
``start_type`` attribute. ``--resume`` continues a killed run from its last restart and gives
the same files as an uninterrupted run.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np

from . import species as species_registry
from .config import MAX_LEAD_HOURS, ConfigError, RunConfig, load_config, resolve_path
from .emissions.scaling import ScalingTable, read_scaling_table
from .grid import grids_from_config, nests_from_config
from .io import InputFileError, atomic_path
from .io.boundary_file import BoundaryFile
from .io.initial_state import (initial_state_path, read_initial_state,
                               write_initial_state)
from .io.output import FieldSeriesWriter
from .io.restart import read_restart, write_restart
from .io.rundir import (SUCCESS_NAME, claim_run_dir, existing_outputs, release_run_dir,
                        write_success)
from .kernels.tagging import compile_sweep_in_background
from .observations.sampling import StationSampler
from .parallel import get_comm
from .tagging import ModelTagChemistry, TagSet
from .transport.boundary import FileBoundary
from .transport.model import BUDGET_TERMS, DomainModel
from .transport.nesting import NestBoundary
from .transport.simulation import Callback, Simulation, TimeInterval

log = logging.getLogger(__name__)

__all__ = ["ForwardModel", "build_models", "run_forecast", "with_start", "load_scaling",
           "restart_stamp", "output_fields"]


def restart_stamp(time) -> str:
    """Name of a restart directory: ``YYYY-MM-DDTHH`` of ``time`` (UTC)."""
    return str(np.datetime64(time, "h"))


def with_start(cfg: RunConfig, start) -> RunConfig:
    """``cfg`` with ``time.start`` replaced (``YYYY-MM-DDTHH`` string, datetime or datetime64),
    validated again."""
    from pydantic import ValidationError

    if isinstance(start, str):
        try:
            start = datetime.strptime(start, "%Y-%m-%dT%H")
        except ValueError:
            raise ConfigError(f"--start {start!r}: expected YYYY-MM-DDTHH (UTC), e.g. "
                              f"2026-07-20T00") from None
    start = np.datetime64(start, "s").astype(datetime)
    data = cfg.model_dump()
    data["time"]["start"] = start
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"--start {start:%Y-%m-%dT%H}: {exc}") from None


def load_scaling(cfg: RunConfig, scaling=None) -> ScalingTable | None:
    """The emission scaling of a run: ``scaling`` (a table, a dict, a DataFrame or a CSV/NetCDF
    path) or else ``inputs.emissions.scaling``; None when neither is given. Names are checked
    against the configured regions and the inventory's sectors when the models are built,
    before any step."""
    if scaling is None and cfg.inputs.emissions.scaling is not None:
        scaling = resolve_path(cfg, cfg.inputs.emissions.scaling)
    if scaling is None:
        return None
    if isinstance(scaling, (str, os.PathLike)):
        table = read_scaling_table(Path(scaling))
    else:
        table = ScalingTable.coerce(scaling)
    return table


def open_boundary_file(cfg: RunConfig, grids, end=None) -> BoundaryFile:
    """The configured boundary-condition file, checked against the outer domains and the
    period from the cycle start to ``end`` (datetime64; None: the start only)."""
    bfile = BoundaryFile(resolve_path(cfg, cfg.inputs.boundary.path), cfg.species)
    start = np.datetime64(cfg.time.start, "s")
    try:
        for d in cfg.domains:
            if d.parent is None:
                bfile.check_covers(*grids[d.name].corner_lonlat, start, end)
    except InputFileError:
        bfile.close()
        raise
    return bfile


def domain_inputs(cfg: RunConfig, name: str, grids, end=None):
    """(met, emissions) of one domain, opened and checked as a run needs them: the wrfout files
    (readable, variables present, the model grid's window, times covering the cycle start to
    ``end`` with no gap longer than their interval), and the inventory gridded (None when the
    config has no emission source: gridded, points or areas). ``aqforecast validate`` calls this
    too."""
    from .emissions import EmissionModel
    from .met import MetProvider

    met = MetProvider.from_config(cfg, name, grids)
    try:
        met.check_period(np.datetime64(cfg.time.start, "s"), end)
        if cfg.inputs.emissions.has_sources:
            em = EmissionModel.from_config(cfg, grids[name])
        else:
            em = None
            log.warning("no emissions configured (inputs.emissions.gridded, .points and .areas "
                        "are all absent): domain %s runs without emissions or source tags",
                        name)
    except Exception:
        met.close()
        raise
    return met, em


def _set_threads(cfg: RunConfig) -> None:
    """``parallel.threads`` kernel threads (0: all that numba was started with)."""
    import numba

    avail = numba.config.NUMBA_NUM_THREADS
    n = cfg.parallel.threads or avail
    if n > avail:
        log.warning("parallel.threads = %d, but only %d threads are available (NUMBA_NUM_THREADS);"
                    " using %d", n, avail, avail)
        n = avail
    numba.set_num_threads(n)


def _build(cfg: RunConfig, comm, tags: bool, end, scaling) -> list[DomainModel]:
    from .chemistry import ChemistryOperator
    from .chemistry.units import mixing_ratio_scale

    _set_threads(cfg)
    grids = grids_from_config(cfg)
    nests = nests_from_config(cfg, grids)
    start = np.datetime64(cfg.time.start, "s")
    # checked here, before any model is built
    bfile = open_boundary_file(cfg, grids, end) if cfg.inputs.boundary.kind == "file" else None
    models: dict[str, DomainModel] = {}
    background = comm.rank == 0 and (os.cpu_count() or 1) > 1
    if background and cfg.transport.advection_scheme == "walcek":
        # the largest kernel of a cold first call, compiled on another core meanwhile
        compile_sweep_in_background(cfg.tags.transport_precision if tags and cfg.tags.enabled
                                    else "float64")
    for d in cfg.domains:
        grid = grids[d.name]
        met, em = domain_inputs(cfg, d.name, grids, end)
        if em is not None and scaling is not None:
            scaling.check([r.name for r in cfg.regions], em.sectors)
        chem = None
        if cfg.chemistry.enabled:
            mech = None if cfg.chemistry.mechanism == "grs" else resolve_path(
                cfg, cfg.chemistry.mechanism)
            solver = {"rosenbrock": "ros3", "grs_qssa": "pece"}[cfg.chemistry.solver]
            chem = ChemistryOperator(mech, cfg.species, solver=solver, rtol=cfg.chemistry.rtol)
            # chemistry.atol_ppb in the mechanism's units (the smallest over the cells for
            # number densities, as the solver's default)
            chem.atol = float(np.min(cfg.chemistry.atol_ppb * 1e-9 * mixing_ratio_scale(
                chem.mechanism.conc_unit)))
            if background:
                chem.compile_in_background()  # overlaps the largest compilation with set-up
        tag_spec = tag_chem = None
        if tags and cfg.tags.enabled and em is not None:
            ts = TagSet.from_config(cfg, em)
            tag_spec = ([tuple(t) for t in ts.tags], list(ts.species))
            tag_chem = ModelTagChemistry(ts) if chem is not None else None
        parent = models[d.parent] if d.parent is not None else None
        model = DomainModel(grid, cfg.species, met, start, emissions=em, chemistry=chem,
                            tags=tag_spec, tag_chemistry=tag_chem, scaling=scaling,
                            comm=comm, process_grid=cfg.parallel.process_grid,
                            advection_scheme=cfg.transport.advection_scheme,
                            courant_max=cfg.time.cfl, parent=parent,
                            tag_precision=cfg.tags.transport_precision,
                            tag_storage=cfg.tags.storage_precision)
        # lid and cold start of every domain from the file, lateral of the outer ones
        background = FileBoundary(bfile, model) if bfile is not None else None
        if parent is not None:
            lateral = NestBoundary(nests[d.name], parent, model)
        else:
            lateral = background
        model.set_boundaries(lateral=lateral, background=background)
        models[d.name] = model
    return list(models.values())


def _model_state(model: DomainModel, init) -> np.ndarray:
    """Model-unit state (nspec, nz, ny, nx) from an :class:`InitialState` (aerosols per volume
    converted with the met's dry-air density at the state's time)."""
    rho = model.met.state(init.time).rho_dry
    return init.mixing_ratios(model.species, rho)


def _restart_extras(path: Path, model: DomainModel, q: np.ndarray, start) -> dict | None:
    """From ``restart_<domain>.nc`` beside an initial state: the solver state and sweep order;
    and, when the restart's state equals ``q`` to round-off (the file's units conversion), its
    exact float64 state and tags (an edited initial state keeps only the solver state; its tags
    restart from the IC tag). The exact state matters: the Walcek limiter's branches make a
    one-step result move by ~1e-4 for a 1e-15 relative change of the state."""
    if not path.exists():
        return None
    t, arrays, _ = read_restart(path, {"q": (model.nspec,) + model.shape})
    if t != start:
        raise InputFileError(f"{path}: restart valid at {t}, the initial state beside it at "
                             f"{start}")
    extras = {k: v for k, v in arrays.items() if k.startswith("chem_") or k == "forward"}
    scale = np.maximum(np.abs(arrays["q"]).max(axis=(1, 2, 3), keepdims=True), 1e-300)
    if np.max(np.abs(arrays["q"] - q) / scale) <= 1e-12:
        extras["q"] = arrays["q"]
        if "tags" in arrays and arrays["tags"].shape[0] == model.tagc.shape[0]:
            extras["tags"] = arrays["tags"]
    else:
        log.info("%s: the initial state differs from the restart beside it; tags restart "
                 "from the initial-condition tag", path)
    return extras


class ForwardModel:
    """Every domain of a config as one forward operator (parents before their nests).

    Parameters
    ----------
    config: a :class:`RunConfig` or a config path.
    scaling: emission scaling (table, dict, DataFrame, or a CSV/NetCDF path); None: the
        config's ``inputs.emissions.scaling`` (or none).
    initial: a directory holding ``initial_<domain>.nc`` valid at ``time.start`` (e.g. an
        analysis, or a forecast's ``restart/<YYYY-MM-DDTHH>/``); None: warm start from
        ``inputs.restart_dir`` when it holds the start, else cold start.
    tags: run the source tags (when the config enables them).
    end: the end of the run (datetime64) that a boundary file must cover.
    comm: communicator (MPI-aware; serial by default).

    Attributes: ``models`` (list of :class:`DomainModel`), ``domains`` (name -> model),
    ``start_type`` ("cold", "warm" or "initial"), ``scaling`` (the :class:`ScalingTable` or None).
    """

    def __init__(self, config, *, scaling=None, initial=None, tags: bool = True, end=None,
                 comm=None):
        self.cfg = config if isinstance(config, RunConfig) else load_config(config)
        self.comm = comm or get_comm()
        self.scaling = load_scaling(self.cfg, scaling)
        self.models = _build(self.cfg, self.comm, tags, end, self.scaling)
        self.domains = {m.name: m for m in self.models}
        self.start_type = self._start(initial)

    @property
    def time(self) -> np.datetime64:
        return self.models[0].time

    # ------------------------------------------------------------------ state
    def _start(self, initial) -> str:
        cfg = self.cfg
        start = np.datetime64(cfg.time.start, "s")
        if initial is not None:
            for m in self.models:
                self.set_state(m.name, initial_state_path(initial, m.name))
            log.info("initial state at %s from %s", start, initial)
            return "initial"
        prev = resolve_path(cfg, cfg.inputs.restart_dir) if cfg.inputs.restart_dir else None
        found = prev is not None and all(
            _find_restart(prev, start, m.name) is not None for m in self.models)
        if found:
            for m in self.models:
                self.set_state(m.name, _find_restart(prev, start, m.name), carry_tags=False)
            log.info("warm start at %s from %s", start, prev)
            return "warm"
        for m in self.models:
            m.cold_start()
        log.info("cold start at %s from %s", start,
                 "the boundary-condition file" if cfg.inputs.boundary.kind == "file"
                 else "background profiles")
        return "cold"

    def set_state(self, domain: str, state, tags=None, carry_tags: bool = True) -> None:
        """Set one domain's state at the model time.

        state: a path to an initial-state file (its time must be the model time; a
            ``restart_<domain>.nc`` beside it also restores the tags (``carry_tags``), the
            chemistry solver's step sizes and the sweep order), or an array (nspec, nz, ny, nx)
            of model-unit mixing ratios (gases mol mol-1, aerosols kg kg-1).
        tags: the tag rows (nrow, nz, ny, nx) for an array state; None: all in the IC tag.
        """
        m = self.domains[domain]
        if not isinstance(state, (str, os.PathLike)):
            m.set_state(np.asarray(state, dtype=float), tags)
            return
        path = Path(state)
        init = read_initial_state(path, m.species, m.shape)
        if init.time != m.time:
            raise InputFileError(f"{path}: initial state valid at {init.time}, the run starts "
                                 f"at {m.time} (give --start {restart_stamp(init.time)} or "
                                 f"another state)")
        q = _model_state(m, init)
        extras = _restart_extras(path.parent / f"restart_{domain}.nc", m, q, m.time) or {}
        if not carry_tags:
            extras.pop("tags", None)
        q = extras.pop("q", q)
        m.set_state(q, extras.pop("tags", None))
        if extras:  # solver step sizes, sweep order
            m.load_state({"q": q, "mass": m.met.state(m.time).mass, **extras})

    def fields(self, domain: str, levels=None, tags: bool = False):
        """Gathered fields of one domain on rank 0 (None elsewhere): name -> (nlev, ny, nx) in
        ppb (gases) / ug m-3 (aerosols); ``tags``: name -> (ntag, nlev, ny, nx)."""
        m = self.domains[domain]
        return output_fields(m, list(range(m.shape[0])) if levels is None else list(levels),
                             tags=tags)

    def write_initial_states(self, directory, attrs=None) -> list[Path]:
        """``directory/initial_<domain>.nc`` of the current state (float64; rank 0 writes)."""
        paths = []
        for m in self.models:
            p = write_state_file(m, initial_state_path(directory, m.name), attrs)
            if p is not None:
                paths.append(p)
        return paths

    # ------------------------------------------------------------------ running
    def run_until(self, stop, callbacks: dict | None = None, progress: bool = False,
                  output_writers: dict | None = None) -> Simulation:
        """Advance every domain to ``stop`` (datetime64, a whole number of sync steps ahead),
        calling ``callbacks`` (name -> :class:`Callback`) on their schedules; returns the
        :class:`Simulation`."""
        sim = Simulation(self.models, np.datetime64(stop, "s"), float(self.cfg.time.sync_step_s),
                         callbacks=dict(callbacks or {}), output_writers=dict(output_writers or {}),
                         progress=progress, rank=self.comm.rank,
                         concurrent=self.cfg.parallel.nests_beside_parents)
        sim.run()
        return sim

    def sample(self, lon, lat, species=None, level: int = 0) -> dict | None:
        """Values at points (lon, lat in degrees) from the finest domain containing each point,
        bilinear between cell centres (:class:`StationSampler`), model level ``level``: name ->
        (npts,) in ppb / ug m-3; NaN outside every domain. Rank 0 (None elsewhere)."""
        lon = np.atleast_1d(np.asarray(lon, dtype=float))
        lat = np.atleast_1d(np.asarray(lat, dtype=float))
        names = list(species) if species is not None else list(self.models[0].species)
        out = {n: np.full(lon.shape, np.nan) for n in names}
        for m in self.models:  # parents first: finer domains overwrite
            f = output_fields(m, [level])
            if f is None:
                continue
            samp = StationSampler.build(*m.grid.lonlat, lon, lat)
            for n in names:
                v = samp(f[n][0])
                out[n] = np.where(samp.inside, v, out[n])
        return out if self.comm.rank == 0 else None


def _find_restart(prev: Path, start, domain: str) -> Path | None:
    """The initial state of ``domain`` valid at ``start`` in a previous cycle's restarts:
    ``prev/<stamp>/initial_<domain>.nc`` or ``prev/restart/<stamp>/initial_<domain>.nc``."""
    stamp = restart_stamp(start)
    for base in (prev, prev / "restart"):
        p = initial_state_path(base / stamp, domain)
        if p.exists():
            return p
    return None


def build_models(cfg: RunConfig, comm=None, tags: bool = True, end=None, scaling=None,
                 initial=None) -> list[DomainModel]:
    """One started :class:`DomainModel` per domain (parents first), nests wired to their parents
    (see :class:`ForwardModel` for ``scaling`` and ``initial``).

    end: the end of the run (datetime64) that a boundary-condition file must cover (checked
    before any model is built); None checks the cycle start only."""
    return ForwardModel(cfg, scaling=scaling, initial=initial, tags=tags, end=end,
                        comm=comm).models


def output_fields(model: DomainModel, levels, tags: bool = False):
    """Gathered output fields on rank 0 (None elsewhere): ppb for gases, ug m-3 for aerosols."""
    lay = model.layout
    s = model.met.state(model.time)
    rho = lay.local(s.rho_dry)[levels]
    if tags:
        tc = model.tag_conc()[:, :, levels]
        out = {}
        for t, name in enumerate(model.tagged):
            f = 1e9 if species_registry.get(name).phase == "gas" else 1e9 * rho
            g = lay.gather(np.ascontiguousarray(tc[t] * f))
            out[name] = g
        return out if model.comm.rank == 0 else None
    c = model.conc()[:, levels]
    out = {}
    for i, name in enumerate(model.species):
        f = 1e9 if species_registry.get(name).phase == "gas" else 1e9 * rho
        out[name] = lay.gather(np.ascontiguousarray(c[i] * f))
    return out if model.comm.rank == 0 else None


def dry_surface_pressure(model: DomainModel) -> np.ndarray:
    """(ny, nx) dry hydrostatic surface pressure, Pa, at the model time (the met's dry column
    mass + the model top): the ``ps`` that turns the files' sigma coordinate ``lev`` into
    pressure, p = ptop + lev (ps - ptop) (:mod:`aqforecast.io.netcdf`)."""
    met = model.met
    mu = met.field("mu_dry", model.time) if hasattr(met, "field") else \
        met.state(model.time).mu_dry
    return np.asarray(mu, dtype=float) + float(model.grid.vertical.p_top)


def write_state_file(model: DomainModel, path: Path, attrs=None) -> Path | None:
    """The model's state as an initial-state file (float64; gathered, rank 0 writes)."""
    f = output_fields(model, list(range(model.shape[0])))
    if f is None:
        return None
    return write_initial_state(path, model.grid, model.time, f, attrs,
                               surface_pressure=dry_surface_pressure(model))


def _keep_initial(src: Path, dest: Path, domains) -> None:
    """Copy the initial state a run started from (``initial_<domain>.nc`` and the
    ``restart_<domain>.nc`` beside it, if any) to ``dest`` = ``<run>/restart/<start>/``, where
    :func:`rerun` (scenarios, plans, Jacobians, ensemble members) takes a base run's initial
    state: without it a rerun of a run started from an analysis would start from the config's
    cold or warm start instead, and every difference to the base would hold the analysis
    increment."""
    if dest.exists() and dest.resolve() == src.resolve():
        return
    dest.mkdir(parents=True, exist_ok=True)
    for name in domains:
        for path in (initial_state_path(src, name), src / f"restart_{name}.nc"):
            if path.is_file():
                with atomic_path(dest / path.name) as tmp:
                    shutil.copyfile(path, tmp)


def _write_budget(path: Path, model: DomainModel, initial: np.ndarray) -> None:
    final = model.total_mass()
    budget = {k: model.layout.allsum(v) for k, v in model.budget.items()}
    if model.comm.rank != 0:
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["species", "initial_kg", "final_kg", *[f"{k}_kg" for k in BUDGET_TERMS],
                    "residual_kg", "relative_residual"])
        for i, name in enumerate(model.species):
            change = (budget["emitted"][i] - budget["dry_deposited"][i]
                      - budget["wet_deposited"][i] + budget["chemistry"][i]
                      + budget["boundary"][i])
            resid = final[i] - initial[i] - change
            scale = max(abs(initial[i]), abs(final[i]), 1e-30)
            w.writerow([name, f"{initial[i]:.9e}", f"{final[i]:.9e}",
                        *[f"{budget[k][i]:.9e}" for k in BUDGET_TERMS], f"{resid:.3e}",
                        f"{resid / scale:.3e}"])


def run_forecast(config, lead_hours: int | None = None, out_dir: str | Path = "results/forecast",
                 resume: bool = False, tags: bool = True, progress: bool = True,
                 stop_after_hours: float | None = None, comm=None, start=None, initial=None,
                 scaling=None, overwrite: bool = False) -> list[Path]:
    """Run the nested forecast; return the written paths (on rank 0).

    start: ``YYYY-MM-DDTHH`` (or datetime) overriding ``time.start``; initial: a directory with
    ``initial_<domain>.nc`` valid at the start; scaling: an emission scaling table or its path
    (overrides ``inputs.emissions.scaling``). The output directory is claimed first
    (:func:`aqforecast.io.rundir.claim_run_dir`: writable, locked, and holding no other run
    unless ``resume`` or ``overwrite``); ``_SUCCESS`` with a manifest is written last."""
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    if start is not None:
        cfg = with_start(cfg, start)
    comm = comm or get_comm()
    lead = int(cfg.time.lead_hours if lead_hours is None else lead_hours)
    if not 1 <= lead <= MAX_LEAD_HOURS:
        raise ConfigError(f"--lead-hours / time.lead_hours must be 1..{MAX_LEAD_HOURS} hours "
                          f"(15 days), got {lead}")
    if resume and overwrite:
        raise ConfigError("forecast: --resume continues the run in --out, --overwrite replaces "
                          "it; give one of them")
    out = Path(out_dir)
    claim = _claim_on_rank0(comm, out, resume, overwrite)
    try:
        paths = _run_forecast(cfg, comm, lead, out, resume, tags, progress, stop_after_hours,
                              initial, scaling)
        if paths and comm.rank == 0:
            paths.append(write_success(out, paths, {"stage": "forecast",
                                                    "cycle_start": str(cfg.time.start),
                                                    "lead_hours": lead}))
        comm.barrier()
        return paths
    finally:
        release_run_dir(claim)


def _claim_on_rank0(comm, out: Path, resume: bool, overwrite: bool):
    """Claim the run directory on rank 0; every rank raises the same error if that fails."""
    claim, error = None, None
    if comm.rank == 0:
        try:
            claim = claim_run_dir(out, resume=resume, overwrite=overwrite, what="forecast")
        except InputFileError as exc:
            error = str(exc)
    error = comm.bcast(error)
    if error is not None:
        raise InputFileError(error)
    return claim


def _check_resume(path: Path, attrs: dict, model: DomainModel, start) -> None:
    """A restart fits the run being resumed: same cycle start, grid, species and tags."""
    want = {"cycle_start": str(start), "grid_shape": " ".join(map(str, model.shape)),
            "species": " ".join(model.species),
            "tags": " ".join(f"{r}|{s}" for r, s in model.tag_labels) + "/" +
                    " ".join(model.tagged)}
    for key, value in want.items():
        have = attrs.get(key)
        if have is None:
            log.warning("%s: no %s recorded (an older restart); not checked", path, key)
        elif str(have) != value:
            raise InputFileError(
                f"{path}: cannot --resume: the restart's {key} is {str(have)[:120]!r}, the "
                f"config gives {value[:120]!r} (the config changed since that run; use "
                f"--overwrite to start it again)")


def _run_forecast(cfg, comm, lead, out, resume, tags, progress, stop_after_hours, initial,
                  scaling) -> list[Path]:
    restart_dir = out / "restart"
    start = np.datetime64(cfg.time.start, "s")
    stop = start + np.timedelta64(lead, "h")
    fm = ForwardModel(cfg, scaling=scaling, initial=None if resume else initial, tags=tags,
                      end=stop, comm=comm)
    models = fm.models
    start_type = fm.start_type
    if initial is not None and not resume and comm.rank == 0:
        _keep_initial(Path(initial), restart_dir / restart_stamp(start), [m.name for m in models])
    dt = float(cfg.time.sync_step_s)
    nz = models[0].shape[0]
    levels = cfg.outputs.levels if cfg.outputs.levels is not None else list(range(nz))
    tag_levels = cfg.outputs.tag_levels

    # ---- resume a killed run from its last restart
    resumed_at = None
    initial_mass = {}
    latest = restart_dir / "latest"
    if resume and not latest.exists():
        log.info("--resume: %s holds no restart; starting the run from its beginning", out)
        if comm.rank == 0:
            for p in existing_outputs(out):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        comm.barrier()
    if resume and latest.exists():
        stamp = latest.read_text().strip()
        for m in models:
            rpath = restart_dir / stamp / f"restart_{m.name}.nc"
            t, arrays, rattrs = read_restart(rpath)
            _check_resume(rpath, rattrs, m, start)
            m.load_state(arrays)
            m.time = t
            resumed_at = t
            start_type = str(rattrs.get("start_type", "cold"))
            initial_mass[m.name] = np.array([float(rattrs[f"initial_{i}"])
                                             for i in range(m.nspec)])
        log.info("resuming from restart at %s", resumed_at)
    for m in models:
        initial_mass.setdefault(m.name, m.total_mass())
    if comm.rank == 0:  # a resumed run is complete again only at its end
        (out / SUCCESS_NAME).unlink(missing_ok=True)

    # ---- output writers
    attrs = {"start_type": start_type, "lead_hours": lead,
             "sync_step_s": int(dt), "config_name": cfg.name}
    if fm.scaling is not None:
        attrs["emission_scaling"] = str(fm.scaling.source or "in memory")
    writers = {}
    for m in models:
        writers[("conc", m.name)] = FieldSeriesWriter(
            out, f"conc_{m.name}", m.grid, m.species, levels, start, attrs=attrs,
            dtype=cfg.outputs.dtype, compression_level=cfg.outputs.compression_level)
        if m.ntag:
            regions, sectors = zip(*m.tag_labels)
            writers[("tags", m.name)] = FieldSeriesWriter(
                out, f"tags_{m.name}", m.grid, m.tagged, tag_levels, start,
                tags=(regions, sectors), attrs=attrs, dtype=cfg.tags.dtype,
                compression_level=cfg.outputs.compression_level)
    if resumed_at is not None:
        for w in writers.values():
            w.discard_after(resumed_at)

    def snapshot(sim):
        for m in models:  # never write a broken state: stop the run instead
            m.check_state()
        for m in models:
            f = output_fields(m, levels)
            if f is not None:
                writers[("conc", m.name)].add(m.time, f, dry_surface_pressure(m))

    def tag_snapshot(sim):
        for m in models:
            if m.ntag:
                f = output_fields(m, tag_levels, tags=True)
                if f is not None:
                    writers[("tags", m.name)].add(m.time, f, dry_surface_pressure(m))

    def checkpoint(sim):
        """Flush output parts, write every domain's restart directory, then point ``latest``
        at it (atomically): a run killed anywhere resumes from a consistent set."""
        stamp = restart_stamp(models[0].time)
        here = restart_dir / stamp
        for m in models:  # a restart is never written from a broken state
            m.check_state()
        if comm.rank == 0:
            for w in writers.values():
                w.flush()
        for m in models:
            write_state_file(m, initial_state_path(here, m.name),
                             {"start_type": start_type, "cycle_start": str(start)})
            arrays = m.state_arrays()
            if comm.rank == 0:
                write_restart(here / f"restart_{m.name}.nc", m.time, arrays,
                              {"start_type": start_type, "domain": m.name,
                               "cycle_start": str(start),
                               "grid_shape": " ".join(map(str, m.shape)),
                               "species": " ".join(m.species),
                               "tags": " ".join(f"{r}|{s}" for r, s in m.tag_labels) + "/" +
                                       " ".join(m.tagged),
                               **{f"initial_{i}": v for i, v in
                                  enumerate(initial_mass[m.name].tolist())}})
        if comm.rank == 0:
            previous = latest.read_text().strip() if latest.exists() else None
            with atomic_path(latest) as tmp:
                tmp.write_text(stamp + "\n")
            keep = {start + np.timedelta64(int(h), "h") for h in cfg.outputs.restart_keep_hours}
            if previous and previous != stamp and np.datetime64(previous, "s") not in keep:
                # keep the restarts the next cycles warm-start from (outputs.restart_keep_hours)
                old = restart_dir / previous
                for f in old.glob("*.nc"):
                    f.unlink()
                try:
                    old.rmdir()
                except OSError:
                    pass
        comm.barrier()

    def every_or_end(hours):
        interval = TimeInterval(3600 * hours)

        def due(sim):
            return interval(sim) or (sim.at_end and sim.stop_time >= stop)

        due.pure = True  # time and end only: nests may step beside their parents (Simulation)
        return due

    writers_cb = {"conc": Callback(snapshot, every_or_end(cfg.time.output_every_hours))}
    if any(m.ntag for m in models):
        writers_cb["tags"] = Callback(tag_snapshot, every_or_end(cfg.outputs.tag_every_hours))
    if cfg.outputs.write_restart:
        # every restart_every_hours and at the end: the last output time is always a restart
        # (the next cycle's background, assimilate's default time)
        writers_cb["restart"] = Callback(checkpoint,
                                         every_or_end(cfg.outputs.restart_every_hours))
    run_to = stop
    if stop_after_hours is not None:  # for tests: stop early, as if killed after a restart
        run_to = min(stop, models[0].time + np.timedelta64(int(stop_after_hours * 3600), "s"))
    # schedules count from the cycle start, also after a resume
    sim = Simulation(models, run_to, dt, output_writers=writers_cb, progress=progress,
                     rank=comm.rank,
                     concurrent=cfg.parallel.nests_beside_parents)
    sim.start_time = start
    sim.run()
    if sim.stop_time < stop:
        return []
    paths = []
    for m in models:
        _write_budget(out / f"budget_{m.name}.csv", m, initial_mass[m.name])
    if comm.rank == 0:
        for w in writers.values():
            paths.append(w.finalize())
        for m in models:
            paths.append(out / f"budget_{m.name}.csv")
        days = lead / 24.0
        log.info("forecast done: %.1f s wall, %.1f s per simulated day", sim.wall_seconds,
                 sim.wall_seconds / days)
    comm.barrier()
    return paths


def run_scaling_table(run_dir, cfg):
    """The scaling table a run was made with (its conc files' ``emission_scaling``), or None."""
    import xarray as xr

    conc = Path(run_dir) / f"conc_{cfg.domains[0].name}.nc"
    if not conc.exists():
        return None
    with xr.open_dataset(conc) as ds:
        src = ds.attrs.get("emission_scaling")
    if not src or not Path(str(src)).is_file():
        return None
    return read_scaling_table(Path(str(src)))


def rerun(cfg: RunConfig, base_run, out_dir, scaling=None, tags: bool = False) -> list[Path]:
    """The forecast of ``base_run`` again with more emission scaling: the same start, lead and
    initial state (its ``_SUCCESS`` manifest and ``restart/<start>/``) and the base's own
    scaling table multiplied by ``scaling`` (a table or None), into ``out_dir`` (replaced).
    Scenarios, the plan's check, response runs, finite-difference Jacobians and ensemble
    members are all such reruns."""
    from .io.rundir import require_success

    base = Path(base_run)
    man = require_success(base, "forecast")
    stamp = restart_stamp(np.datetime64(str(man["cycle_start"]), "s"))
    initial = base / "restart" / stamp
    tables = [t for t in (run_scaling_table(base, cfg), scaling) if t is not None]
    table = ScalingTable.concat([ScalingTable.coerce(t) for t in tables]) if tables else None
    return run_forecast(cfg, int(man["lead_hours"]), out_dir, tags=tags, progress=False,
                        start=stamp, initial=initial if initial.is_dir() else None,
                        scaling=table, overwrite=True)
