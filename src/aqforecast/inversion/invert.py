"""The daily emission inversion: ``aqforecast invert CONFIG --run PRIOR_RUN --obs OBS
[--prior-scaling FILE] --out DIR``.

1. prior: ln f = 0 with ``inversion.sigma_ln`` per pollutant (the base inventory), or, with
   ``--prior-scaling`` (yesterday's ``DIR/scaling.csv``/``.nc``: factor, sigma_ln), yesterday's
   posterior relaxed toward the base with error growth (:func:`.kalman.cycle_prior`: the
   "dynamic inventory"); correlated between regions by centroid distance within one (sector,
   pollutant); a cycled prior takes yesterday's full posterior covariance from the
   ``scaling.nc`` next to the table (the correlations the observations made), the base
   correlations where it has none. The prior run may have been made with other factors
   (yesterday's unrelaxed posterior): its tags are rescaled to the prior mean;
2. observations: every hour of OBS (obs.nc or generic CSV, QC flag 0) inside the prior run,
   ``inversion.quantities``; y, y_prior, H and R from :func:`.jacobian.build_observation_system`;
3. update: :func:`.kalman.gauss_newton_update` (at most ``inversion.iterations`` linear
   updates, each filterpy's KalmanFilter behind our interface with the batch analytical
   posterior as a check, the tags relinearised at the current factors by
   :class:`.jacobian.TagForwardModel`; 2-pass outlier rejection);
4. ``DIR/scaling.csv`` (``region,sector,pollutant,factor,sigma_ln``: the forecast's ``--scaling``
   table; unobservable factors keep their prior: factors of yesterday's table without
   sensitivity today are carried with their cycled prior), ``DIR/scaling.nc`` (the same with
   the posterior covariance of ln f), ``DIR/inversion_report.csv`` (DOFS, chi^2, observations
   used/rejected, Gauss-Newton updates, per factor prior -> posterior),
   ``DIR/hotspots_emission.csv`` (the cells whose emissions move most),
   ``DIR/inversion_history.csv`` (the bias monitor over cycles), ``_SUCCESS``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..observations.table import read_observation_table
from ..config import ConfigError, RunConfig, resolve_path
from ..emissions.inventory import POLLUTANTS
from ..emissions.regions import region_fractions
from ..emissions.scaling import ScalingTable, read_scaling_table, write_scaling_table
from ..grid import grids_from_config
from ..io import InputFileError, atomic_path, write_dataset
from ..io.rundir import require_success, write_success
from ..forecast import run_scaling_table
from ..tagging.tagset import BACKGROUND, BOUNDARY, INITIAL
from .jacobian import TagForwardModel, build_observation_system, finite_difference_jacobian
from .kalman import (BiasMonitor, cost_preview, cycle_prior, gauss_newton_update,
                     prior_covariance)

__all__ = ["invert"]

log = logging.getLogger(__name__)
FAR_KM = 1e9


def _region_xy(cfg: RunConfig, grid, regions) -> dict:
    masks = region_fractions(grid, [(r.name, resolve_path(cfg, r.geojson)) for r in cfg.regions])
    xy = {name: (poly.centroid.x / 1000.0, poly.centroid.y / 1000.0)
          for name, poly in zip(masks.names, masks.polygons)}
    xy["outside"] = (FAR_KM, FAR_KM)
    return {r: xy.get(r, (FAR_KM, FAR_KM)) for r in regions}


def growth_sigma(inv, sigma_ln) -> np.ndarray:
    """Error growth per cycle of each factor: ``inversion.q_sigma_ln`` when set, else
    ``sigma_ln sqrt(1 - relaxation^2)`` -- the AR(1) process of :func:`.kalman.cycle_prior`
    then has the base inventory's ``sigma_ln`` as its stationary spread, the same error the
    first cycle assumes (with a smaller growth the filter would believe, after a few cycles,
    that the inventory can be off by much less than ``sigma_ln``)."""
    sig = np.asarray(sigma_ln, float)
    if inv.q_sigma_ln is not None:
        return np.full(sig.shape, float(inv.q_sigma_ln))
    return sig * np.sqrt(1.0 - inv.relaxation ** 2)


def _prior(cfg, keys, prior_path):
    """(mean ln f, covariance) of the state keys."""
    inv = cfg.inversion
    sig = np.array([inv.sigma_ln.get(p, 0.5) for _, _, p in keys])
    grid = grids_from_config(cfg)[cfg.domains[0].name]
    xy = _region_xy(cfg, grid, sorted({r for r, _, _ in keys}))
    groups = {}
    gid = np.array([groups.setdefault((s, p), len(groups)) for _, s, p in keys])
    cxy = np.array([xy[r] for r, _, _ in keys])
    # far-away points for `outside` factors, one per sector: uncorrelated with every region,
    # and its pollutants share the point (pollutant_correlation)
    far = cxy[:, 0] >= FAR_KM
    sector_id = {s: k for k, s in enumerate(dict.fromkeys(s for _, s, _ in keys))}
    cxy[far] = cxy[far] + np.array([sector_id[s] for _, s, _ in keys])[far, None] * 10 * FAR_KM
    base = np.zeros(len(keys))
    B = prior_covariance(sig, cxy, inv.length_km, gid, sectors=[s for _, s, _ in keys],
                         pollutant_correlation=inv.pollutant_correlation)
    if prior_path is None:
        return base, B, "base inventory"
    table = read_scaling_table(prior_path)
    if "sigma_ln" not in table.extra_columns:
        raise InputFileError(f"{prior_path}: a prior scaling table needs a sigma_ln column "
                             f"(yesterday's posterior, DIR/scaling.csv of aqforecast invert)")
    post = np.zeros(len(keys))
    post_sig = sig.copy()
    for row in table.rows:
        key = (row.region, row.sector, row.pollutant)
        if key in keys:
            j = keys.index(key)
            post[j] = np.log(row.factor)
            post_sig[j] = float(row.extra.get("sigma_ln", sig[j]))
    corr = B / np.outer(sig, sig)
    post_cov = corr * np.outer(post_sig, post_sig)
    full = _posterior_covariance(Path(prior_path), keys, post_sig)
    if full is not None:
        # yesterday's full posterior covariance (scaling.nc next to the table): the
        # correlations the observations made (e.g. two sectors of one region whose sum is known
        # better than their split) carry over; factors it lacks keep the base prior block
        have, cov_have = full
        miss = ~have
        post_cov = np.zeros_like(B)
        post_cov[np.ix_(have, have)] = cov_have
        post_cov[np.ix_(miss, miss)] = (corr * np.outer(post_sig, post_sig))[np.ix_(miss, miss)]
    q = growth_sigma(inv, sig)
    mean, cov = cycle_prior(post, post_cov, base, inv.relaxation, q,
                            corr if inv.growth_correlated else None)
    return mean, cov, (f"{prior_path} (relaxed x{inv.relaxation:g}, growth "
                       f"{', '.join(f'{v:.3g}' for v in sorted(set(np.round(q, 4))))})")


def _carried(cfg, keys, prior_path) -> list[dict]:
    """Rows of yesterday's table for factors outside today's state (no sensitivity today): they
    keep their cycled prior (relaxed mean, grown sigma), so a factor the dynamic inventory has
    learnt does not fall back to 1 in the next forecast on a day without observations of it."""
    if prior_path is None:
        return []
    inv = cfg.inversion
    rows = []
    for row in read_scaling_table(prior_path).rows:
        key = (row.region, row.sector, row.pollutant)
        if key in keys or row.start is not None or row.end is not None:
            continue
        sig0 = np.array([inv.sigma_ln.get(row.pollutant, 0.5)])
        s_post = float(row.extra.get("sigma_ln", sig0[0]))
        mean, cov = cycle_prior(np.array([np.log(row.factor)]), np.array([[s_post ** 2]]), 0.0,
                                inv.relaxation, growth_sigma(inv, sig0))
        rows.append({"region": row.region, "sector": row.sector, "pollutant": row.pollutant,
                     "factor": float(np.exp(mean[0])), "sigma_ln": float(np.sqrt(cov[0, 0]))})
    return rows


def _posterior_covariance(table_path: Path, keys, sigma):
    """Yesterday's posterior covariance of ln f for ``keys`` from the ``scaling.nc`` written
    next to the ``scaling.csv`` given as prior: (mask of the keys it holds, their covariance),
    or None when there is none or it does not match the table's ``sigma_ln`` (a stale file)."""
    nc_path = table_path.with_suffix(".nc")
    if table_path.suffix.lower() != ".csv" or not nc_path.exists():
        return None
    try:
        nc = xr.load_dataset(nc_path)
        cov = nc["covariance_ln"].values
        nkeys = list(zip(nc["region"].values.astype(str), nc["sector"].values.astype(str),
                         nc["pollutant"].values.astype(str)))
    except (KeyError, OSError, ValueError):
        log.warning("%s: no posterior covariance read; the prior uses sigma_ln only", nc_path)
        return None
    pos = {k: i for i, k in enumerate(nkeys)}
    have = np.array([tuple(k) in pos for k in keys])
    idx = np.array([pos[tuple(k)] for k in keys if tuple(k) in pos], dtype=int)
    sub = cov[np.ix_(idx, idx)]
    if idx.size == 0 or not np.allclose(np.sqrt(np.diag(sub)), sigma[have], rtol=1e-6,
                                        atol=1e-9):
        log.warning("%s does not match %s (sigma_ln differs): the prior uses sigma_ln only",
                    nc_path, table_path)
        return None
    return have, 0.5 * (sub + sub.T)


def _run_factors(run: Path, cfg, keys) -> np.ndarray:
    """ln of the whole-run factors the prior run used (its conc files' ``emission_scaling``)."""
    table = run_scaling_table(run, cfg)
    if table is None:
        return np.zeros(len(keys))
    regions = sorted({k[0] for k in keys})
    sectors = sorted({k[1] for k in keys})
    f = table.resolve(regions, sectors, POLLUTANTS)
    return np.array([np.log(f[regions.index(r), sectors.index(s), POLLUTANTS.index(p)])
                     for r, s, p in keys])


def _hotspots(cfg, keys, x_prior, x_post, n: int = 20) -> pd.DataFrame:
    """Cells of the outer domain whose annual emissions change most (Mg/yr, all pollutants
    separately), with the factor that moves them most."""
    from ..emissions import EmissionModel

    grid = grids_from_config(cfg)[cfg.domains[0].name]
    if not cfg.inputs.emissions.has_sources:
        return pd.DataFrame()
    em = EmissionModel.from_config(cfg, grid)
    rate = em.annual_cell_mass()  # (sector, pollutant, cell), Mg/yr
    frac = em.regions.fractions.reshape(len(em.regions.names), -1)
    lon, lat = grid.lonlat
    rows = []
    for j, (r, s, p) in enumerate(keys):
        if r not in em.regions.names or s not in em.sectors:
            continue
        e = rate[em.sectors.index(s), POLLUTANTS.index(p)] * frac[em.regions.names.index(r)]
        delta = e * (np.exp(x_post[j]) - np.exp(x_prior[j]))
        for c in np.argsort(-np.abs(delta))[:n]:
            if delta[c] != 0:
                rows.append({"lon": float(lon.ravel()[c]), "lat": float(lat.ravel()[c]),
                             "pollutant": p, "region": r, "sector": s,
                             "prior_Mg_per_year": float(e[c] * np.exp(x_prior[j])),
                             "change_Mg_per_year": float(delta[c])})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = df.groupby(["lon", "lat", "pollutant"], as_index=False).agg(
        prior_Mg_per_year=("prior_Mg_per_year", "sum"),
        change_Mg_per_year=("change_Mg_per_year", "sum"),
        region=("region", "first"), sector=("sector", "first"))
    return df.reindex(df["change_Mg_per_year"].abs().sort_values(ascending=False).index).head(n)


def run_tag_sectors(run: Path, grids) -> list[str]:
    """The emission sectors of a tagged run's tags (``tags_<domain>.nc`` of the first domain
    that has one; the initial- and boundary-condition or background tags left out), in their
    order: the inversion's sectors when the config's ``tags.sectors`` lists none (the model
    then tags every sector of the inventory)."""
    for dom in grids:
        path = Path(run) / f"tags_{dom}.nc"
        if path.exists():
            with xr.open_dataset(path) as tags:
                pairs = zip(tags["tag_region"].values.astype(str),
                            tags["tag_sector"].values.astype(str))
                special = (INITIAL, BOUNDARY, BACKGROUND)
                return list(dict.fromkeys(s for r, s in pairs if (r, s) not in special))
    return []


def invert(cfg: RunConfig, run_dir, obs_path, out_dir, prior_scaling=None,
           jacobian: str = "tags") -> list[Path]:
    """Run one inversion cycle (module docstring); return the written paths. ``jacobian``:
    ``tags`` (the prior run's tags) or ``fd`` (one perturbed forecast per factor,
    :func:`.jacobian.finite_difference_jacobian`; the report then gives how far the tag
    Jacobian is from it)."""
    inv = cfg.inversion
    run = Path(run_dir)
    man = require_success(run, "forecast")
    start = np.datetime64(str(man["cycle_start"]), "s")
    end = start + np.timedelta64(int(man["lead_hours"]), "h")
    table = read_observation_table(obs_path)
    t = pd.to_datetime(table["time"])
    table = table[(t >= pd.Timestamp(start)) & (t < pd.Timestamp(end))]
    withheld = sorted(cfg.verification.withheld_stations)
    if withheld:  # independent verification stations never reach the inversion
        table = table[~table["station"].astype(str).isin(withheld)]
    grids = grids_from_config(cfg)
    sectors = list(cfg.tags.sectors) or run_tag_sectors(run, grids)
    if not sectors:
        raise InputFileError(f"{run}: its tag files name no emission sector and the config's "
                             f"tags.sectors is empty: nothing to invert (a run with tags on "
                             f"and an inventory with sectors is needed)")
    system = build_observation_system(run, table, grids, list(inv.quantities),
                                      [r.name for r in cfg.regions], sectors,
                                      co_emitted=inv.co_emitted)
    keys = list(system.state.keys)
    if jacobian not in ("tags", "fd"):
        raise ConfigError(f"--jacobian {jacobian!r}: expected tags or fd")
    preview = cost_preview(len(keys), len(system.y), len(keys) if jacobian == "fd" else 0)
    jac_notes = [{"item": "jacobian", "value": jacobian}]
    if jacobian == "fd":
        H_tag = system.H
        H_fd = finite_difference_jacobian(cfg, run, table, system, Path(out_dir) / "fd_runs")
        for q in sorted(set(system.meta["quantity"])):
            rows_q = (system.meta["quantity"] == q).to_numpy()
            num = np.linalg.norm(H_fd[rows_q] - H_tag[rows_q])
            den = max(np.linalg.norm(H_fd[rows_q]), 1e-300)
            jac_notes.append({"item": f"jacobian tags vs fd, {q}",
                              "value": f"relative Frobenius difference {num / den:.3g}"})
        system.H = H_fd
        import shutil

        shutil.rmtree(Path(out_dir) / "fd_runs", ignore_errors=True)
    log.info("inversion: %d factors, %d observations; %s", len(keys), len(system.y),
             preview.get("summary", ""))
    x_b, B, prior_desc = _prior(cfg, keys, prior_scaling)
    # the prior run was made with its own factors x_run (its --scaling: yesterday's posterior,
    # while the prior mean is that posterior relaxed toward the base); its tags scale with the
    # factors (TagForwardModel), so the model at the prior mean and the Jacobian at every
    # Gauss-Newton iterate follow from the one run without a linear extrapolation
    x_run = _run_factors(run, cfg, keys)
    if np.max(np.abs(x_b - x_run), initial=0.0) > 1e-6:
        log.info("the prior run was made with other factors than the prior mean (max |ln f| "
                 "difference %.3g): its tags are rescaled to the prior mean",
                 float(np.max(np.abs(x_b - x_run))))
    model = TagForwardModel(system.y_prior, system.H, x_run)
    d = system.y - model.forward(x_b)
    res = gauss_newton_update(x_b, B, system.y, system.R, model.forward, model.jacobian,
                              iterations=inv.iterations, k_sigma=inv.outlier_sigmas)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sig_post = np.sqrt(np.diag(res.cov))
    rows = [{"region": r, "sector": s, "pollutant": p, "factor": float(np.exp(res.mean[j])),
             "sigma_ln": float(sig_post[j])} for j, (r, s, p) in enumerate(keys)]
    carried = _carried(cfg, keys, prior_scaling)
    rows += carried
    paths = [write_scaling_table(ScalingTable.from_rows(rows, source="inversion"),
                                 out / "scaling.csv")]
    one = {"units": "1"}
    nc = xr.Dataset(
        {"factor": ("factor_index", np.exp(res.mean),
                    {"long_name": "posterior emission scaling factor", **one}),
         "ln_factor": ("factor_index", res.mean,
                       {"long_name": "posterior mean of ln(factor)", **one}),
         "sigma_ln": ("factor_index", sig_post,
                      {"long_name": "posterior standard deviation of ln(factor)", **one}),
         "covariance_ln": (("factor_index", "factor_index2"), res.cov,
                           {"long_name": "posterior covariance of ln(factor)", **one}),
         "averaging_kernel": (("factor_index", "factor_index2"), res.averaging_kernel,
                              {"long_name": "averaging kernel d(posterior)/d(truth) of "
                                            "ln(factor)", **one}),
         "prior_ln_factor": ("factor_index", x_b, {"long_name": "prior mean of ln(factor)",
                                                   **one}),
         "prior_sigma_ln": ("factor_index", np.sqrt(np.diag(B)),
                            {"long_name": "prior standard deviation of ln(factor)", **one})},
        coords={"region": ("factor_index", [k[0] for k in keys],
                           {"long_name": "source region"}),
                "sector": ("factor_index", [k[1] for k in keys],
                           {"long_name": "emission sector"}),
                "pollutant": ("factor_index", [k[2] for k in keys],
                              {"long_name": "inventory pollutant"})},
        attrs={"title": "aqforecast emission inversion (posterior)", "prior": prior_desc,
               "dofs": float(res.dofs), "chi2": float(res.chi2)})
    paths.append(write_dataset(nc, out / "scaling.nc", 1))
    used = int(np.sum(res.used))
    report = [{"item": "stations_used", "value": " ".join(sorted(
                  {str(x) for x in table["station"]}))},
              {"item": "stations_withheld", "value": " ".join(withheld)},
              {"item": "observations", "value": len(system.y)},
              {"item": "observations_used", "value": used},
              {"item": "observations_rejected", "value": len(system.y) - used},
              {"item": "factors", "value": len(keys)},
              {"item": "dofs", "value": float(res.dofs)},
              {"item": "chi2", "value": float(res.chi2)},
              {"item": "gauss_newton_updates", "value": int(res.iterations)},
              {"item": "factors_carried_without_sensitivity", "value": len(carried)},
              {"item": "filterpy_vs_batch_max_difference", "value": float(res.max_difference)},
              {"item": "prior", "value": prior_desc},
              {"item": "cost", "value": preview.get("summary", "")}] + jac_notes + \
        [{"item": f"factor {r}|{s}|{p}", "value":
          f"{np.exp(x_b[j]):.4g} +- {np.sqrt(B[j, j]):.3g} -> {np.exp(res.mean[j]):.4g} +- "
          f"{sig_post[j]:.3g} (AK {res.averaging_kernel[j, j]:.2f})"}
         for j, (r, s, p) in enumerate(keys)] + \
        [{"item": "note", "value": n} for n in system.notes]
    for name, df in (("inversion_report.csv", pd.DataFrame(report)),
                     ("hotspots_emission.csv", _hotspots(cfg, keys, x_b, res.mean)),
                     ("observations.csv", system.meta.assign(
                         prior=model.forward(x_b), posterior=model.forward(res.mean),
                         used=res.used))):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False)
        paths.append(out / name)
    monitor = BiasMonitor()
    hist = Path(prior_scaling).parent / "inversion_history.csv" if prior_scaling else None
    if hist is not None and hist.exists():
        monitor = BiasMonitor.from_frame(pd.read_csv(hist))
    monitor.add(str(start), d[res.used], res.innovation_std[res.used] ** 2, n_eff=res.n_eff)
    with atomic_path(out / "inversion_history.csv") as tmp:
        monitor.to_frame().to_csv(tmp, index=False)
    paths.append(out / "inversion_history.csv")
    if monitor.alarm:
        log.warning("inversion bias alarm: the mean normalised innovation kept one sign over "
                    "the last cycles (see %s)", out / "inversion_history.csv")
    paths.append(write_success(out, paths, {"stage": "invert", "cycle_start": str(start),
                                            "dofs": float(res.dofs)}))
    return paths
