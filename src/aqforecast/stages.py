"""One function per workflow stage. The CLI and the Snakemake rules call these.

Each stage validates its inputs before doing any work and writes its outputs atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .config import RunConfig, config_schema_json, load_config, resolve_path
from .grid import grids_from_config, nests_from_config
from .io import InputFileError, atomic_path, grid_dataset, write_dataset
from .io.rundir import SUCCESS_NAME, require_success, write_success

log = logging.getLogger(__name__)


def validate(config_path: str | Path, inputs: bool = True) -> tuple[RunConfig, str]:
    """Validate a config file and (``inputs``) the input files it names, with the functions
    the forecast calls at start-up (:func:`aqforecast.forecast.domain_inputs`, the boundary
    file and scaling-table checks); return the config and a human-readable summary."""
    cfg = load_config(config_path)
    grids = grids_from_config(cfg)
    nests = nests_from_config(cfg, grids)
    lines = [f"config {config_path}: OK ({cfg.name})",
             f"  cycle start {cfg.time.start:%Y-%m-%d %H:%M} UTC, lead {cfg.time.lead_hours} h "
             f"({cfg.time.lead_hours / 24:g} days), sync step {cfg.time.sync_step_s} s"]
    for name, g in grids.items():
        extra = ""
        if name in nests:
            n = nests[name]
            extra = (f", nest of {n.parent.name} (ratio {n.ratio}) from parent cell "
                     f"({n.i_start}, {n.j_start})")
        lines.append(f"  domain {g.summary()}{extra}")
    v = next(iter(grids.values())).vertical
    z = v.standard_heights()
    lines.append(f"  {v.nz} layers to {v.p_top / 100:g} hPa; lowest layer ~{z[1]:.0f} m, "
                 f"top ~{z[-1] / 1000:.1f} km (standard atmosphere)")
    lines.append(f"  species ({len(cfg.species)}): {', '.join(cfg.species)}")
    lines.append(f"  chemistry: {cfg.chemistry.mechanism} with {cfg.chemistry.solver}"
                 + ("" if cfg.chemistry.enabled else " (disabled)"))
    if cfg.tags.enabled:
        ntag = len(cfg.regions) * max(1, len(cfg.tags.sectors))
        lines.append(f"  tags: {len(cfg.regions)} regions x {len(cfg.tags.sectors)} "
                     f"sectors = {ntag} (+ IC/BC/other) on {', '.join(cfg.tags.species)}")
    lines.append("  boundary: " + _boundary_summary(cfg, grids))
    windows = ", ".join(f"every {w.every_hours} h to {w.until_hours} h" for w in cfg.time.windows)
    lines.append(f"  products: {windows}")
    if inputs:
        lines += _input_summary(cfg, grids)
    else:
        lines.append("  inputs: not checked (--config-only)")
    return cfg, "\n".join(lines)


def _input_summary(cfg: RunConfig, grids) -> list[str]:
    """Open and check every input of the run (met coverage, inventory, scaling table)."""
    from .forecast import domain_inputs, load_scaling

    start = np.datetime64(cfg.time.start, "s")
    end = start + np.timedelta64(int(cfg.time.lead_hours), "h")
    lines = []
    sectors: set[str] = set()
    for name in grids:
        met, em = domain_inputs(cfg, name, grids, end)
        try:
            step = met.interval / np.timedelta64(1, "m")
            lines.append(f"  met {name}: {len(met.times)} times {met.times[0]} .. "
                         f"{met.times[-1]} every {step:g} min, cover the run to {end}")
            if em is not None:
                sectors.update(em.sectors)
        finally:
            met.close()
    if sectors:
        lines.append(f"  emissions: inventory read, sectors {', '.join(sorted(sectors))}")
    scaling = load_scaling(cfg, None)
    if scaling is not None:
        scaling.check([r.name for r in cfg.regions], sorted(sectors))
        lines.append(f"  emission scaling: {scaling.source} ({len(scaling)} rows)")
    return lines


def _boundary_summary(cfg: RunConfig, grids) -> str:
    """Check a boundary-condition file against the outer domains and the forecast period."""
    if cfg.inputs.boundary.kind != "file":
        return "background profiles (lateral inflow, lid, cold start)"
    from .forecast import open_boundary_file

    start = np.datetime64(cfg.time.start, "s")
    bf = open_boundary_file(cfg, grids, start + np.timedelta64(int(cfg.time.lead_hours), "h"))
    try:
        kept = f"; profiles for {', '.join(bf.missing)}" if bf.missing else ""
        return (f"file {bf.path}: {len(bf.variables)} species, {bf.times[0]} ... {bf.times[-1]}"
                f"{kept}")
    finally:
        bf.close()


def write_grids(config_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write a CF grid file ``grid_<domain>.nc`` for every domain; return the paths."""
    cfg = load_config(config_path)
    out_dir = Path(out_dir)
    paths = []
    for name, grid in grids_from_config(cfg).items():
        ds = grid_dataset(grid)
        p = write_dataset(ds, out_dir / f"grid_{name}.nc", cfg.outputs.compression_level)
        log.info("wrote %s (%s)", p, grid.summary())
        paths.append(p)
    paths.append(write_success(out_dir, paths, {"stage": "grid"}))
    return paths


def write_schema(out: str | Path) -> Path:
    """Write the JSON Schema of the run configuration."""
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_text(config_schema_json())
    return out


def products(config_path: str | Path, run_dir: str | Path, out_dir: str | Path,
             max_map_days: int | None = None, maps: bool = True) -> list[Path]:
    """Products from a forecast directory: CF surface/lead-window NetCDF, AQI tables, maps
    (:func:`aqforecast.products.pipeline.make_products`), plus source-receptor tables and hot
    spots from the tag files (:mod:`aqforecast.products.receptors`, ``.hotspots``)."""
    import xarray as xr

    from .config import resolve_path
    from .grid import grids_from_config
    from .observations.readers import read_station_coords
    from .products.hotspots import (concentration_hotspots, write_hotspots_csv,
                                    write_hotspots_geojson)
    from .products.pipeline import make_products
    from .products.receptors import receptor_shares, write_receptor_table
    from .products.tagmaps import hotspot_map, tag_share_maps

    cfg = load_config(config_path)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    grids = grids_from_config(cfg)
    # before any work: the forecast finished, and every domain's file is there
    require_success(run_dir, "forecast")
    missing = [str(run_dir / f"conc_{name}.nc") for name in grids
               if not (run_dir / f"conc_{name}.nc").is_file()]
    if missing:
        raise InputFileError(f"{', '.join(missing)}: missing from the forecast run (the config "
                             f"has domains {', '.join(grids)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUCCESS_NAME).unlink(missing_ok=True)
    paths = make_products(cfg, run_dir, out_dir, max_map_days=max_map_days, maps=maps)
    stations = None
    if cfg.inputs.observations.station_coords:
        stations = read_station_coords(resolve_path(cfg, cfg.inputs.observations.station_coords),
                                       cfg.inputs.observations.encoding)
        stations = stations.dropna(subset=["lon", "lat"])
    for name, grid in grids.items():
        tpath = run_dir / f"tags_{name}.nc"
        if not tpath.exists():
            log.info("no %s: no receptor tables or tag shares for %s", tpath.name, name)
            continue
        with xr.open_dataset(tpath) as tags, xr.open_dataset(run_dir / f"conc_{name}.nc") as conc:
            inside = stations[grid.contains(stations["lon"].values, stations["lat"].values)] \
                if stations is not None else None
            if inside is not None and len(inside):
                table = receptor_shares(tags, stations=inside, group_column="city")
                paths.append(write_receptor_table(
                    table, out_dir / f"receptors_city_{name}.csv"))
            hs = concentration_hotspots(conc, tags, pollutant="PM25", grid=grid, n=10)
            paths.append(write_hotspots_csv(hs, out_dir / f"hotspots_pm25_{name}.csv"))
            paths.append(write_hotspots_geojson(hs, out_dir / f"hotspots_pm25_{name}.geojson"))
            if maps:
                lon, lat = grid.lonlat
                regions = [resolve_path(cfg, r.geojson) for r in cfg.regions]
                mdir = out_dir / "maps" / name
                paths.append(hotspot_map(conc, hs, lon, lat, mdir / "hotspots_pm25.png",
                                         boundaries=regions))
                for by in ("sector", "region"):
                    paths += tag_share_maps(tags, lon, lat, mdir, "PM25", by, regions)
    files = [Path(p) for p in paths if Path(p).is_file()]
    paths.append(write_success(out_dir, files, {"stage": "products", "run": str(run_dir)}))
    return paths


def observations(config_path: str | Path, cycle: str, out_dir: str | Path) -> list[Path]:
    """The observation stage: ``out_dir/obs.nc`` of every configured source for the window of
    ``cycle`` (``YYYY-MM-DDTHH`` UTC), QC-flagged (:mod:`aqforecast.observations.collect`),
    then ``_SUCCESS``."""
    from datetime import datetime

    from .config import ConfigError
    from .observations.collect import gather_observations

    cfg = load_config(config_path)
    try:
        when = datetime.strptime(cycle, "%Y-%m-%dT%H")
    except ValueError:
        raise ConfigError(f"--cycle {cycle!r}: expected YYYY-MM-DDTHH (UTC), e.g. "
                          f"2026-07-20T00") from None
    obs = cfg.inputs.observations
    if not obs.sources:
        raise ConfigError(f"{config_path}: inputs.observations.sources is empty; list the "
                          f"station files (path, format) to gather")
    coords = resolve_path(cfg, obs.station_coords) if obs.station_coords else None
    ds = gather_observations(obs.sources, when, obs.window_hours, coords, cfg.base_dir,
                             obs.encoding)
    out_dir = Path(out_dir)
    path = write_dataset(ds, out_dir / "obs.nc", cfg.outputs.compression_level)
    nflag = {v: int((ds[v].values & ~1).astype(bool).sum()) for v in ds.data_vars
             if v.endswith("_qc")}
    log.info("wrote %s: %d stations x %d hours; flagged (besides missing): %s", path,
             ds.sizes["station"], ds.sizes["time"], nflag)
    return [path, write_success(out_dir, [path], {"stage": "observations", "cycle": cycle})]


def assimilate(config_path: str | Path, background: str | Path, obs: str | Path,
               out_dir: str | Path, time: str | None = None, method: str | None = None
               ) -> list[Path]:
    """The analysis stage (:func:`aqforecast.assimilation.analysis.assimilate`): ``out_dir``
    receives ``initial_<domain>.nc`` at T (the forecast's ``--initial`` layout), increments,
    innovations and statistics, then ``_SUCCESS``."""
    from datetime import datetime

    from .assimilation.analysis import assimilate as _assimilate
    from .config import ConfigError

    cfg = load_config(config_path)
    when = None
    if time is not None:
        try:
            when = np.datetime64(datetime.strptime(time, "%Y-%m-%dT%H"), "s")
        except ValueError:
            raise ConfigError(f"--time {time!r}: expected YYYY-MM-DDTHH (UTC)") from None
    return _assimilate(cfg, background, obs, out_dir, when, method)


def scenario(config_path: str | Path, run: str | Path, scenario_path: str | Path,
             out_dir: str | Path, method: str = "tags") -> list[Path]:
    """Score an emission scenario against a base run (:mod:`aqforecast.scenarios.score`):
    ``out_dir/scores.csv``, ``measures.csv``, ``scaling.csv``, then ``_SUCCESS``."""
    from .io.rundir import require_success
    from .scenarios import read_scenario
    from .scenarios.score import score_scenario

    cfg = load_config(config_path)
    man = require_success(run, "forecast")
    sectors = cfg.tags.sectors or None
    sc = read_scenario(scenario_path, [r.name for r in cfg.regions], sectors,
                       int(man.get("lead_hours", cfg.time.lead_hours)))
    return score_scenario(cfg, run, sc, out_dir, method)


def plan(config_path: str | Path, run: str | Path, target_path: str | Path,
         out_dir: str | Path, verify: bool = True) -> list[Path]:
    """The least-cost plan meeting a target (:mod:`aqforecast.scenarios.plan`)."""
    from .io.rundir import require_success
    from .scenarios.plan import plan as _plan
    from .scenarios.schema import read_target

    cfg = load_config(config_path)
    man = require_success(run, "forecast")
    target = read_target(target_path, [r.name for r in cfg.regions], cfg.tags.sectors or None,
                         int(man.get("lead_hours", cfg.time.lead_hours)))
    return _plan(cfg, run, target, out_dir, verify)


def invert(config_path: str | Path, run: str | Path, obs: str | Path, out_dir: str | Path,
           prior_scaling: str | Path | None = None, jacobian: str = "tags") -> list[Path]:
    """One cycle of the emission inversion (:mod:`aqforecast.inversion.invert`)."""
    from .inversion.invert import invert as _invert

    return _invert(load_config(config_path), run, obs, out_dir, prior_scaling, jacobian)


def ensemble(config_path: str | Path, run: str | Path, members: int, workers: int = 1,
             seed: int = 0) -> list[Path]:
    """Perturbed-emission members around a control run (:mod:`aqforecast.assimilation.
    ensemble`), in ``run/ensemble/`` for ``assimilate --method letkf``."""
    from .assimilation.ensemble import make_ensemble

    return make_ensemble(config_path, run, members, workers, seed)


def bulletin(forecast: str | Path, products_dir: str | Path, out_dir: str | Path,
             analysis=None, inversion=None, plan=None) -> list[Path]:
    """The morning bulletin (:mod:`aqforecast.bulletin.page`): ``out_dir/index.html``."""
    from .bulletin import build_bulletin

    return build_bulletin(forecast, products_dir, out_dir, analysis, inversion, plan)
