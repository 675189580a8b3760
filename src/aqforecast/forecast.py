"""The forecast stage: build the nested domain models from a config and run them.

``run_forecast(config, lead_hours, out_dir, resume=False, tags=True)`` writes, per domain,
``conc_<domain>.nc`` (species, dims (time, lev, y, x)), ``tags_<domain>.nc`` (dims (tag, time,
lev, y, x) with tag_region/tag_sector) and ``budget_<domain>.csv``, plus restart files in
``out_dir/restart/``. Warm start from ``inputs.restart_dir`` when it holds a restart valid at the
cycle start; cold start from background profiles (or the boundary-condition file) otherwise (logged and recorded in the files'
``start_type`` attribute). ``--resume`` continues a killed run from its last restart and gives
the same files as an uninterrupted run.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np

from . import species as species_registry
from .config import RunConfig, load_config, resolve_path
from .grid import grids_from_config, nests_from_config
from .io import InputFileError, atomic_path
from .io.output import FieldSeriesWriter
from .io.restart import read_restart, write_restart
from .parallel import get_comm
from .tagging import ModelTagChemistry, TagSet
from .io.boundary_file import BoundaryFile
from .transport.boundary import FileBoundary
from .transport.model import BUDGET_TERMS, DomainModel
from .transport.nesting import NestBoundary
from .transport.simulation import Callback, Simulation, TimeInterval

log = logging.getLogger(__name__)

__all__ = ["build_models", "run_forecast"]


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


def build_models(cfg: RunConfig, comm=None, tags: bool = True, end=None) -> list[DomainModel]:
    """One :class:`DomainModel` per domain (parents first), nests wired to their parents.

    end: the end of the run (datetime64) that a boundary-condition file must cover (checked
    before any model is built); None checks the cycle start only."""
    from .chemistry import ChemistryOperator
    from .chemistry.units import mixing_ratio_scale
    from .emissions import EmissionModel
    from .met import MetProvider

    comm = comm or get_comm()
    grids = grids_from_config(cfg)
    nests = nests_from_config(cfg, grids)
    start = np.datetime64(cfg.time.start, "s")
    # checked here, before any model is built
    bfile = open_boundary_file(cfg, grids, end) if cfg.inputs.boundary.kind == "file" else None
    models: dict[str, DomainModel] = {}
    for d in cfg.domains:
        grid = grids[d.name]
        met = MetProvider.from_config(cfg, d.name, grids)
        em = EmissionModel.from_config(cfg, grid) if cfg.inputs.emissions.gridded else None
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
            if comm.rank == 0 and (os.cpu_count() or 1) > 1:
                chem.compile_in_background()  # overlaps the largest compilation with set-up
        tag_spec = tag_chem = None
        if tags and cfg.tags.enabled and em is not None:
            ts = TagSet.from_config(cfg, em)
            tag_spec = ([tuple(t) for t in ts.tags], list(ts.species))
            tag_chem = ModelTagChemistry(ts) if chem is not None else None
        model = DomainModel(grid, cfg.species, met, start, emissions=em, chemistry=chem,
                            tags=tag_spec, tag_chemistry=tag_chem,
                            comm=comm, process_grid=cfg.parallel.process_grid,
                            advection_scheme=cfg.transport.advection_scheme,
                            courant_max=cfg.time.cfl)
        if bfile is not None:  # lid and cold start of every domain, lateral of the outer ones
            model.background_source = FileBoundary(bfile, model)
            if d.parent is None:
                model.boundary_source = model.background_source
        if d.parent is not None:
            model.parent = models[d.parent]
            model.boundary_source = NestBoundary(nests[d.name], models[d.parent], model)
        models[d.name] = model
    return list(models.values())


def _output_fields(model: DomainModel, levels, tags: bool = False):
    """Gathered output fields on rank 0: ppb for gases, ug m-3 for aerosols."""
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
                 stop_after_hours: float | None = None, comm=None) -> list[Path]:
    """Run the nested forecast; return the written paths (on rank 0)."""
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    comm = comm or get_comm()
    lead = int(lead_hours or cfg.time.lead_hours)
    if lead > 360 or lead < 1:
        raise ValueError(f"lead_hours must be 1..360, got {lead}")
    out = Path(out_dir)
    restart_dir = out / "restart"
    start = np.datetime64(cfg.time.start, "s")
    stop = start + np.timedelta64(lead, "h")
    models = build_models(cfg, comm, tags, end=stop)
    dt = float(cfg.time.sync_step_s)
    nz = models[0].shape[0]
    levels = cfg.outputs.levels if cfg.outputs.levels is not None else list(range(nz))
    tag_levels = cfg.outputs.tag_levels

    # ---- initial state: resume, warm start, or cold start
    start_type = "cold"
    resumed_at = None
    initial = {}
    latest = restart_dir / "latest"
    if resume and latest.exists():
        stamp = latest.read_text().strip()
        for m in models:
            t, arrays, rattrs = read_restart(restart_dir / f"restart_{m.name}_{stamp}.nc")
            m.load_state(arrays)
            m.time = t
            resumed_at = t
            start_type = str(rattrs.get("start_type", "cold"))
            initial[m.name] = np.array([float(rattrs[f"initial_{i}"]) for i in range(m.nspec)])
        log.info("resuming from restart at %s", resumed_at)
    else:
        prev = cfg.inputs.restart_dir
        for m in models:
            stamp0 = str(start).replace(":", "")
            p = resolve_path(cfg, prev) / f"restart_{m.name}_{stamp0}.nc" if prev else None
            if p is not None and p.exists():
                t, arrays, _ = read_restart(p, {"q": (m.nspec,) + m.shape})
                if t != start:
                    raise InputFileError(f"{p}: restart valid at {t}, cycle starts at {start}")
                m.load_state({"q": arrays["q"], "mass": arrays["mass"]})
                m.budget = {k: np.zeros(m.nspec) for k in BUDGET_TERMS}
                if m.ntag and m.ic_tag >= 0:
                    tc = m.tagc[m.interior]
                    tc[...] = 0.0
                    for t_, row in enumerate(m.tag_rows):
                        tc[t_ * m.ntag + m.ic_tag] = m.conc()[row]
                start_type = "warm"
            else:
                m.cold_start()
        log.info("%s start at %s (%s)", start_type, start,
                 f"from {prev}" if start_type == "warm" else
                 ("the boundary-condition file" if cfg.inputs.boundary.kind == "file"
                  else "background profiles"))
    for m in models:
        initial.setdefault(m.name, m.total_mass())

    # ---- output writers
    attrs = {"start_type": start_type, "lead_hours": lead,
             "sync_step_s": int(dt), "config_name": cfg.name}
    writers = {}
    for m in models:
        writers[("conc", m.name)] = FieldSeriesWriter(
            out, f"conc_{m.name}", m.grid, m.species, levels, start, attrs=attrs,
            compression_level=cfg.outputs.compression_level)
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
        for m in models:
            f = _output_fields(m, levels)
            if f is not None:
                writers[("conc", m.name)].add(m.time, f)

    def tag_snapshot(sim):
        for m in models:
            if m.ntag:
                f = _output_fields(m, tag_levels, tags=True)
                if f is not None:
                    writers[("tags", m.name)].add(m.time, f)

    def checkpoint(sim):
        """Flush output parts, write every domain's restart, then point ``latest`` at them
        (atomically): a run killed anywhere resumes from a consistent set."""
        stamp = str(models[0].time).replace(":", "")
        if comm.rank == 0:
            for w in writers.values():
                w.flush()
        for m in models:
            arrays = m.state_arrays()
            if comm.rank == 0:
                write_restart(restart_dir / f"restart_{m.name}_{stamp}.nc", m.time, arrays,
                              {"start_type": start_type, "domain": m.name,
                               **{f"initial_{i}": v for i, v in
                                  enumerate(initial[m.name].tolist())}})
        if comm.rank == 0:
            previous = latest.read_text().strip() if latest.exists() else None
            with atomic_path(latest) as tmp:
                tmp.write_text(stamp + "\n")
            if previous and previous != stamp and not previous.endswith("T000000"):
                # keep the 00 UTC restarts: the next cycles warm-start from them
                for old in restart_dir.glob(f"restart_*_{previous}.nc"):
                    old.unlink()
        comm.barrier()

    sim = Simulation(models, stop, dt, progress=progress, rank=comm.rank)
    def every_or_end(hours):
        interval = TimeInterval(3600 * hours)
        return lambda sim: interval(sim) or (sim.at_end and sim.stop_time >= stop)

    sim.output_writers["conc"] = Callback(snapshot, every_or_end(cfg.time.output_every_hours))
    if any(m.ntag for m in models):
        sim.output_writers["tags"] = Callback(tag_snapshot,
                                              every_or_end(cfg.outputs.tag_every_hours))
    if cfg.outputs.write_restart:
        sim.output_writers["restart"] = Callback(
            checkpoint, TimeInterval(3600 * cfg.outputs.restart_every_hours))
    if stop_after_hours is not None:  # for tests: stop early, as if killed after a restart
        sim.stop_time = min(stop, models[0].time + np.timedelta64(int(stop_after_hours * 3600),
                                                                  "s"))
    sim.run()
    if sim.stop_time < stop:
        return []
    paths = []
    for m in models:
        _write_budget_safe(out / f"budget_{m.name}.csv", m, initial[m.name])
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


def _write_budget_safe(path, model, initial):
    _write_budget(path, model, initial)
