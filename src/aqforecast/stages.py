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
    sources: list[str] = []
    for name in grids:
        met, em = domain_inputs(cfg, name, grids, end)
        try:
            step = met.interval / np.timedelta64(1, "m")
            lines.append(f"  met {name}: {len(met.times)} times {met.times[0]} .. "
                         f"{met.times[-1]} every {step:g} min, cover the run to {end}")
            if em is not None:
                sectors.update(em.sectors)
                sources = sources or em.report.get("sources", [])   # the outer domain's
        finally:
            met.close()
    if cfg.inputs.emissions.has_sources:
        lines += [f"  emissions: {s}" for s in sources]
        lines.append(f"  emission sectors (tags): {', '.join(sorted(sectors)) or 'none'}")
    else:
        lines.append("  emissions: none configured (inputs.emissions.gridded, .points, .areas):"
                     " the run has no emissions (warning)")
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
                table = receptor_shares(tags, stations=inside, group_column="city",
                                        local_time=cfg.time.local_time)
                paths.append(write_receptor_table(
                    table, out_dir / f"receptors_city_{name}.csv"))
            hs = concentration_hotspots(conc, tags, pollutant="PM25", grid=grid, n=10,
                                        local_time=cfg.time.local_time)
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


def observations(config_path: str | Path, cycle: str, out_dir: str | Path,
                 window_hours: int | None = None) -> list[Path]:
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
    if window_hours is not None and not 1 <= window_hours <= 240:
        raise ConfigError(f"--window-hours {window_hours}: expected 1 .. 240 hours")
    ds = gather_observations(obs.sources, when, window_hours or obs.window_hours, coords,
                             cfg.base_dir, obs.encoding)
    sat, sat_files = None, []
    if obs.satellite is not None:  # TROPOMI NO2 superobservations (collect module doc)
        from .grid import grids_from_config
        from .observations.collect import SATELLITE_FILE, gather_satellite_no2

        s = obs.satellite
        sat, sat_files = gather_satellite_no2(
            s.path, grids_from_config(cfg), when,
            window_hours or s.window_hours or obs.window_hours, s.qa_min, s.n_sub,
            s.representativeness_relative, s.min_coverage, cfg.base_dir)
    out_dir = Path(out_dir)
    path = write_dataset(ds, out_dir / "obs.nc", cfg.outputs.compression_level)
    nflag = {v: int((ds[v].values & ~1).astype(bool).sum()) for v in ds.data_vars
             if v.endswith("_qc")}
    log.info("wrote %s: %d stations x %d hours; flagged (besides missing): %s", path,
             ds.sizes["station"], ds.sizes["time"], nflag)
    files = [path]
    meta = {"stage": "observations", "cycle": cycle}
    if obs.satellite is not None:
        meta["satellite_granules"] = len(sat_files)
        stale = out_dir / SATELLITE_FILE
        if sat is not None:
            files.append(write_dataset(sat, stale, cfg.outputs.compression_level))
            log.info("wrote %s: %d superobservations from %d pixels", files[-1],
                     sat.sizes["obs"], sat.sizes["pixel"])
        else:
            stale.unlink(missing_ok=True)  # never leave an older cycle's file beside obs.nc
            log.info("no TROPOMI NO2 pixel in the window of %s: no %s", cycle, SATELLITE_FILE)
    return files + [write_success(out_dir, files, meta)]


def emissions(config_path: str | Path, out_dir: str | Path, scaling: str | Path | None = None,
              start: str | None = None, lead_hours: int | None = None) -> list[Path]:
    """The emission stage: read and check the cycle's inventory (the forecast's own readers),
    and write ``out_dir/emission_totals.csv``: Mg emitted per region x sector x pollutant over
    the cycle [start, start + lead) in the outer domain, base inventory and with the scaling
    table (the forecast's ``--scaling``, e.g. the inversion's posterior) and their ratio; gridded
    and area sources (points are listed by the forecast's log), then ``_SUCCESS``."""
    from datetime import datetime

    import pandas as pd

    from .config import ConfigError
    from .emissions import EmissionModel
    from .emissions.inventory import POLLUTANTS
    from .emissions.scaling import ScalingTable
    from .forecast import load_scaling
    from .grid import grids_from_config
    from .io import atomic_path

    cfg = load_config(config_path)
    t0 = np.datetime64(cfg.time.start.replace(tzinfo=None), "s")
    if start is not None:
        try:
            t0 = np.datetime64(datetime.strptime(start, "%Y-%m-%dT%H"), "s")
        except ValueError:
            raise ConfigError(f"--start {start!r}: expected YYYY-MM-DDTHH (UTC)") from None
    hours = int(lead_hours or cfg.time.lead_hours)
    outer = cfg.domains[0].name
    grid = grids_from_config(cfg)[outer]
    em = EmissionModel.from_config(cfg, grid)
    table = load_scaling(cfg, scaling)
    if table is not None:
        table.check([r.name for r in cfg.regions], list(em.sectors))
    zero = ScalingTable.from_rows([{"region": "*", "sector": "*", "pollutant": "*",
                                    "factor": 0.0}], source="zero emissions")
    base = em.abated_mass(zero, t0, hours)
    scaled = base - em.abated_mass(table, t0, hours) if table is not None else base
    rows = []
    for r, region in enumerate(em.regions.names):
        for k, sector in enumerate(em.sectors):
            for q, pol in enumerate(POLLUTANTS):
                if base[r, k, q] == 0.0 and scaled[r, k, q] == 0.0:
                    continue
                rows.append({"region": region, "sector": sector, "pollutant": pol,
                             "base_Mg": base[r, k, q], "scaled_Mg": scaled[r, k, q],
                             "factor": scaled[r, k, q] / base[r, k, q] if base[r, k, q] else
                             np.nan})
    df = pd.DataFrame(rows, columns=["region", "sector", "pollutant", "base_Mg", "scaled_Mg",
                                     "factor"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "emission_totals.csv"
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    log.info("emissions %s .. +%d h in %s: %.1f Mg base, %.1f Mg with scaling (%s)", t0, hours,
             outer, base.sum(), scaled.sum(), table.source if table is not None else "none")
    return [path, write_success(out_dir, [path], {"stage": "emissions", "start": str(t0),
                                                  "hours": hours})]


def verify(config_path: str | Path, run: str | Path, obs: str | Path,
           out_dir: str | Path, corrected: str | Path | None = None) -> list[Path]:
    """The verification stage (:func:`aqforecast.products.verify.verify_run`): a finished
    forecast against station observations, ``skill.csv``, ``summary.csv``, ``paired.csv``;
    ``corrected``: an ``aqforecast bias-correct`` directory of ``run`` whose corrected station
    series are scored instead."""
    from .products.verify import verify_run

    return verify_run(load_config(config_path), run, obs, out_dir, corrected=corrected)


def bias_correct(config_path: str | Path, run: str | Path, history, out_dir: str | Path,
                 state: str | Path | None = None, obs: str | Path | None = None,
                 ratio: float | None = None, transfer: str = "nearest",
                 form: str = "additive") -> list[Path]:
    """The station bias correction (:func:`aqforecast.products.bias_correction.
    bias_correct_run`): Kalman-filter bias per station x pollutant x lead hour learned from
    earlier verifications, withheld stations never learning; ``bias_state.csv``,
    ``corrected.csv`` (+ ``verification/`` with ``obs``); ``form``: additive or
    multiplicative."""
    from .products.bias_correction import DEFAULT_RATIO, FORMS, bias_correct_run

    if ratio is not None and not ratio > 0:
        raise InputFileError(f"--ratio {ratio}: sigma_eta^2/sigma_eps^2 must be > 0")
    if form not in FORMS:
        raise InputFileError(f"--form {form!r}: expected {' or '.join(FORMS)}")
    return bias_correct_run(load_config(config_path), run, list(history), out_dir, state, obs,
                            DEFAULT_RATIO if ratio is None else ratio, transfer, form)


def assimilate(config_path: str | Path, background: str | Path, obs: str | Path,
               out_dir: str | Path, time: str | None = None, method: str | None = None,
               satellite: str | Path | None = None,
               inflation_prior: str | Path | None = None) -> list[Path]:
    """The analysis stage (:func:`aqforecast.assimilation.analysis.assimilate`): ``out_dir``
    receives ``initial_<domain>.nc`` at T (the forecast's ``--initial`` layout), increments,
    innovations, statistics and ``inflation.json``, then ``_SUCCESS``. TROPOMI NO2
    superobservations: ``satellite`` or the ``satellite_no2.nc`` beside ``obs``;
    ``inflation_prior``: a previous analysis (adaptive inflation's prior)."""
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
    return _assimilate(cfg, background, obs, out_dir, when, method, satellite,
                       inflation_prior)


def scenario(config_path: str | Path, run: str | Path, scenario_path, out_dir: str | Path,
             method: str = "tags", workers: int = 1, cluster: str | None = None,
             posterior: str | Path | None = None) -> list[Path]:
    """Score emission scenarios against a base run (:mod:`aqforecast.scenarios.score`):
    ``out_dir/scores.csv``, ``exceedances.csv``, ``measures.csv``, ``scaling.csv``,
    ``timings.csv``, then ``_SUCCESS``; several scenario files (a list): ``out_dir/<name>/``
    each and ``out_dir/summary.csv``. ``posterior``: a later cycle's scaling table to score
    them on as well (:mod:`aqforecast.scenarios.prepost`)."""
    from .config import ConfigError
    from .io.rundir import require_success
    from .scenarios import read_scenario
    from .scenarios.prepost import posterior_extra
    from .scenarios.score import score_scenarios

    cfg = load_config(config_path)
    man = require_success(run, "forecast")
    sectors = cfg.tags.sectors or None
    paths = [scenario_path] if isinstance(scenario_path, (str, Path)) else list(scenario_path)
    scs = [read_scenario(p, [r.name for r in cfg.regions], sectors,
                         int(man.get("lead_hours", cfg.time.lead_hours))) for p in paths]
    if posterior is not None:
        if method == "response":
            raise ConfigError("--posterior: scores with --method tags or brute (the response "
                              "method's cached runs belong to the base inventory)")
        from .forecast import run_scaling_table

        posterior_extra(posterior, run_scaling_table(run, cfg), cfg)   # checked before work
    return score_scenarios(cfg, run, scs, out_dir, method, workers, cluster, posterior)


def plan(config_path: str | Path, run: str | Path, target_path: str | Path,
         out_dir: str | Path, verify: bool = True, model: str = "linear", workers: int = 1,
         cluster: str | None = None) -> list[Path]:
    """The least-cost plan meeting a target (:mod:`aqforecast.scenarios.plan`)."""
    from .io.rundir import require_success
    from .scenarios.plan import plan as _plan
    from .scenarios.schema import read_target

    cfg = load_config(config_path)
    man = require_success(run, "forecast")
    target = read_target(target_path, [r.name for r in cfg.regions], cfg.tags.sectors or None,
                         int(man.get("lead_hours", cfg.time.lead_hours)))
    return _plan(cfg, run, target, out_dir, verify, model, workers, cluster)


def invert(config_path: str | Path, run: str | Path, obs: str | Path, out_dir: str | Path,
           prior_scaling: str | Path | None = None, jacobian: str = "tags") -> list[Path]:
    """One cycle of the emission inversion (:mod:`aqforecast.inversion.invert`)."""
    from .inversion.invert import invert as _invert

    return _invert(load_config(config_path), run, obs, out_dir, prior_scaling, jacobian)


def met_from_stations(config_path: str | Path, stations: list[str | Path], out_dir: str | Path,
                      coords: str | Path | None = None, start: str | None = None,
                      hours: int | None = None, urban: list[tuple[float, float, float]] | None
                      = None, length_km: float | None = None, bowen: float | None = None,
                      utc_offset_hours: float = 8.0, aerosol_dimming: bool = False,
                      aerosol_exclude: list[str] | None = None) -> list[Path]:
    """Analysed-met forcing from station files (:mod:`aqforecast.met.station_analysis`): daily
    wrfout files of every domain in ``out_dir``, hourly from ``start`` (default the config's
    start) for ``hours`` records (default lead + 2). ``stations``: PRSA-layout hourly files
    (TEMP, PRES, DEWP, RAIN, wd, WSPM, local time UTC+``utc_offset_hours``); ``coords``: the
    station table (default ``inputs.observations.station_coords``). ``aerosol_dimming``: dim
    the insolation with the stations' PM2.5 (their PM2.5 column), leaving out
    ``aerosol_exclude`` (default ``verification.withheld_stations``)."""
    from datetime import datetime

    import pandas as pd

    from .config import ConfigError
    from .met.station_analysis import AnalysisSettings, StationMet, write_station_wrfout
    from .observations.readers import read_prsa, read_station_coords

    cfg = load_config(config_path)
    coords = coords or (resolve_path(cfg, cfg.inputs.observations.station_coords)
                        if cfg.inputs.observations.station_coords else None)
    if coords is None:
        raise ConfigError(f"{config_path}: no station coordinates: give --coords or set "
                          "inputs.observations.station_coords")
    t0 = cfg.time.start.replace(tzinfo=None)
    if start is not None:
        try:
            t0 = datetime.strptime(start, "%Y-%m-%dT%H")
        except ValueError:
            raise ConfigError(f"--start {start!r}: expected YYYY-MM-DDTHH (UTC)") from None
    n = int(hours or cfg.time.lead_hours + 2)
    if not 1 <= n <= 24 * 400:
        raise ConfigError(f"--hours {n}: expected 1 .. 9600")
    table = pd.concat([read_prsa(p) for p in stations], ignore_index=True)
    obs = StationMet.from_table(table, read_station_coords(coords), utc_offset_hours)
    settings = AnalysisSettings(urban=list(urban or []))
    if length_km is not None:
        settings.length_km = float(length_km)
    if bowen is not None:
        settings.bowen = float(bowen)
    if aerosol_dimming:
        settings.aerosol_dimming = True
        settings.aerosol_exclude = list(cfg.verification.withheld_stations or []) \
            if aerosol_exclude is None else list(aerosol_exclude)
    try:
        return write_station_wrfout(cfg, obs, out_dir, t0, n, settings)
    except ValueError as exc:
        raise InputFileError(f"{', '.join(map(str, stations))}: {exc}") from None


def ensemble(config_path: str | Path, run: str | Path, members: int, workers: int = 1,
             seed: int = 0, cluster: str | None = None, ic_sigma=None, initial=None,
             emissions: bool | None = None) -> list[Path]:
    """Perturbed-emission and initial-state members around a control run
    (:mod:`aqforecast.assimilation.ensemble`; ``ic_sigma``: ``--ic-sigma``, ``initial``:
    ``--initial``, ``emissions``: False for ``--no-emission-perturbation``), in
    ``run/ensemble/`` for ``assimilate --method letkf``."""
    from .assimilation.ensemble import make_ensemble

    return make_ensemble(config_path, run, members, workers, seed, cluster,
                         ic_sigma=ic_sigma, initial=initial, emissions=emissions)


def bulletin(forecast: str | Path, products_dir: str | Path, out_dir: str | Path,
             analysis=None, inversion=None, plan=None, config=None, verification=None,
             previous_inversion=None, scenarios=()) -> list[Path]:
    """The morning bulletin (:mod:`aqforecast.bulletin.page`): ``out_dir/index.html``."""
    from .bulletin import build_bulletin

    return build_bulletin(forecast, products_dir, out_dir, analysis, inversion, plan,
                          config=config, verification=verification,
                          previous_inversion=previous_inversion, scenarios=scenarios or ())
