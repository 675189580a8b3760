"""Scoring emission scenarios against a base forecast run.

``aqforecast scenario CONFIG --run BASE_RUN --scenario FILE [--scenario FILE ...] --out DIR
[--method tags|response|brute] [--workers N] [--cluster KIND] [--posterior SCALING]``.

One scenario writes into ``DIR``:

* ``scores.csv``: long form, one row per city and per station (``kind`` city|station, stations
  of ``inputs.observations.station_coords`` inside the domains) x lead day x statistic: PM2.5,
  PM10, NO2, SO2, CO daily means, O3 MDA8 and daily max, AQI index and category, with ``base``,
  ``scenario``, ``change``, ``complete``, ``coverage``, ``method`` (:mod:`.cities`);
* ``exceedances.csv``: days over the grade-II daily limit, base and scenario, and the days the
  scenario avoids, per city / station and pollutant (:mod:`.exceedances`);
* ``measures.csv``: tonnes abated and cost per measure over the run, on top of the base run's
  own scaling (the emission model's hourly rates in the outer domain; point sources not counted);
* ``scaling.csv``: the scenario as the forecast's ``--scaling`` table;
* ``timings.csv`` (seconds per phase), then ``_SUCCESS`` (its ``timing`` entry the same).

Several scenarios (``--scenario`` repeated) go to ``DIR/<scenario name>/`` each with the files
above, plus ``DIR/summary.csv`` (per scenario x city x statistic: mean base / scenario /
change over the complete days, days avoided, tonnes and cost) and ``DIR/_SUCCESS``; their
``brute`` reruns run in parallel through dask (:func:`aqforecast.parallel.tasks.compute`,
``--workers`` processes or a ``--cluster``, as ``aqforecast ensemble``).

``--posterior SCALING`` also scores the scenario on the inventory a later cycle's inversion
found (:mod:`.prepost`): ``DIR/posterior/`` and ``DIR/pre_post.csv``.

Methods:

* ``brute``: the forecast rerun with the scenario's scaling table (``DIR/run/``), same start,
  lead and initial state as the base (:func:`aqforecast.forecast.rerun`); exact by construction.
* ``response``: secondary PM and O3 from cached perturbed runs per region x sector x pollutant
  group (x window) the measures act on and a quadratic response surface (:mod:`.response`); ``timings.csv``
  counts the perturbed runs made (``response_runs``) and reused (``response_runs_cached``) in
  its ``runs`` column;
* ``tags``: linear from the base run's source tags, no rerun: for every tagged species s and
  source tag k = (region, sector), ``c_s' = c_s + (f_k(p_s, t) - 1) tag_{s,k}`` with ``p_s`` the
  emitted pollutant s comes from (PPM25 <- PM25, SO2 and SO4 <- SO2, NO2, NO, NO3 and O3 <- NOx,
  NH4 <- NH3) and f the scenario factor at the valid time t. Exact for primary species under
  donor-cell advection and measures constant over the run (tags are then each source's exact
  share); for secondary species and O3 the tags are attributions, not sensitivities (README:
  3-11 % for sulfate on the small case), and a windowed measure is applied without its transport
  lag -- the ``response`` and ``brute`` methods exist for those.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..config import ConfigError, RunConfig
from ..emissions.inventory import POLLUTANTS
from ..emissions.scaling import ScalingTable, read_scaling_table, write_scaling_table
from ..io import InputFileError, atomic_path, write_dataset
from ..io.rundir import require_success, write_success
from ..products.aqi import normalize_standard
from .cities import city_daily, city_domains, station_cells
from .exceedances import days_over_standard
from .schema import Scenario, scenario_to_scaling
from .timing import PhaseTimer

__all__ = ["score_scenario", "score_scenarios", "SOURCE_POLLUTANT", "METHODS", "SCORE_KEYS"]

log = logging.getLogger(__name__)

METHODS = ("tags", "response", "brute")
#: model species -> the emitted pollutant whose scaling moves it (tags method)
SOURCE_POLLUTANT = {"PPM25": "PM25", "PPM10": "PMC", "SO2": "SO2", "SO4": "SO2", "NO2": "NOx",
                    "NO": "NOx", "NO3": "NOx", "HNO3": "NOx", "O3": "NOx", "NH4": "NH3",
                    "NH3": "NH3", "CO": "CO", "ROC": "NMVOC"}
#: the row key of scores.csv
SCORE_KEYS = ["city", "kind", "station", "domain", "coverage", "lead_day", "date", "pollutant",
              "statistic"]


def _run_start(base: Path) -> tuple[np.datetime64, int]:
    man = require_success(base, "forecast")
    return np.datetime64(str(man["cycle_start"]), "s"), int(man["lead_hours"])


def _share_weights(tag_times: pd.DatetimeIndex, conc_times: pd.DatetimeIndex):
    """For each output time, the two tag times around it and the weight of the later one
    (linear in time; before the first / after the last tag time: that one, weight 0/1)."""
    tt = tag_times.values.astype("datetime64[s]").astype(np.int64).astype(float)
    ct = conc_times.values.astype("datetime64[s]").astype(np.int64).astype(float)
    hi = np.clip(np.searchsorted(tt, ct, side="left"), 0, len(tt) - 1)
    lo = np.clip(hi - 1, 0, len(tt) - 1)
    exact = tt[hi] == ct
    lo[exact] = hi[exact]
    span = tt[hi] - tt[lo]
    w = np.where(span > 0, (ct - tt[lo]) / np.where(span > 0, span, 1.0), 1.0)
    return lo, hi, np.clip(w, 0.0, 1.0)


def _tags_estimate(base: Path, out: Path, table, domains) -> Path:
    """Scenario concentration files from the base's conc and tag files (module docstring).

    The tags are written every ``outputs.tag_every_hours`` and the concentrations every output
    hour: each tag's share of its species (tag / bulk at the tag times) is interpolated linearly
    in time to every output time and applied to that time's concentration,
    ``c' = c (1 + sum_k (f_k(t) - 1) share_k(t))``, with the factor at the output time t. At the
    tag times this is the formula of the module docstring exactly; in between, the shares (not
    the tags) are interpolated, so a change never exceeds the concentration of its hour. (With
    tags every 3 h, the earlier code changed only the tag hours: daily-mean changes 1/3 of the
    rerun's.)"""
    out.mkdir(parents=True, exist_ok=True)
    for dom in domains:
        conc_path, tag_path = base / f"conc_{dom}.nc", base / f"tags_{dom}.nc"
        if not tag_path.exists():
            raise InputFileError(f"{tag_path}: the tags method needs the base run's tag files "
                                 f"(a run with tags on); use --method brute")
        conc = xr.load_dataset(conc_path)
        with xr.open_dataset(tag_path) as tags:
            regions = [str(r) for r in tags["tag_region"].values]
            sectors = [str(s) for s in tags["tag_sector"].values]
            times = pd.DatetimeIndex(tags["time"].values)
            names = sorted(set(regions) - {"initial", "boundary", "other"})
            secs = sorted(set(sectors) - {"initial", "boundary", "other", ""})
            ctimes = pd.DatetimeIndex(conc["time"].values)
            lo, hi, w = _share_weights(times, ctimes)
            factors = [table.resolve(names, secs, POLLUTANTS, t) for t in ctimes]
            # the source tags (those with a scaling factor): tag index, region and sector index
            sources = [(k, names.index(r), secs.index(sec))
                       for k, (r, sec) in enumerate(zip(regions, sectors))
                       if r in names and sec in secs]
            for s in tags.data_vars:
                pol = SOURCE_POLLUTANT.get(str(s))
                if pol is None or s not in conc:
                    continue
                p = POLLUTANTS.index(pol)
                lev0 = tags[s]["lev"].values[0]
                k0 = list(conc["lev"].values).index(lev0)
                tv = tags[s].sel(lev=lev0).transpose("tag", "time", "y", "x").values
                cv = conc[s].values  # (time, lev, y, x)
                # shares at the tag times: tag / the base concentration at those times
                at = ctimes.get_indexer(times)
                if (at < 0).any():
                    raise InputFileError(f"{tag_path}: tag times {list(times[at < 0])} are not "
                                         f"output times of {conc_path}")
                bulk = cv[at, k0].astype(float)
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = np.where(bulk[None] > 0, tv / bulk[None], 0.0)
                for jt in range(len(ctimes)):
                    f = factors[jt]
                    rel = np.zeros(tv.shape[2:])
                    for k, ri, si in sources:
                        fac = f[ri, si, p]
                        if fac != 1.0:
                            sk = (1.0 - w[jt]) * share[k, lo[jt]] + w[jt] * share[k, hi[jt]]
                            rel += (fac - 1.0) * sk
                    cv[jt, k0] = np.maximum(cv[jt, k0] * (1.0 + rel), 0.0)
                conc[s].values = cv
        write_dataset(conc, out / f"conc_{dom}.nc", 1)   # CF-1.10, atomic
    return out


def _measures_table(scenario: Scenario, cfg: RunConfig, start, lead: int,
                    prior: ScalingTable | None = None) -> pd.DataFrame:
    """Tonnes abated and cost per measure over the run inside the outer domain (the emission
    model's hourly gridded/area rates; point sources not counted), from the emissions scaled by
    ``prior`` (the base run's own scaling table, or a posterior inventory) when given."""
    from ..emissions import EmissionModel
    from ..grid import grids_from_config

    grid = grids_from_config(cfg)[cfg.domains[0].name]  # the outer domain
    em = EmissionModel.from_config(cfg, grid) if cfg.inputs.emissions.has_sources else None
    regions = [r.name for r in cfg.regions]
    prior = prior if prior is not None and len(prior) else None
    before = float(em.abated_mass(prior, start, lead).sum()) if em is not None and prior \
        else 0.0
    rows = []
    for m in scenario.measures:
        tonnes = np.nan
        if em is not None:
            one = scenario_to_scaling(Scenario(name=m.name, measures=[m]), start, regions)
            both = ScalingTable.concat([prior, one]) if prior is not None else one
            tonnes = float(em.abated_mass(both, start, lead).sum()) - before
        cost = tonnes * m.cost_per_tonne if m.cost_per_tonne is not None else np.nan
        rows.append({"measure": m.name, "factor": m.factor, "from_hour": m.from_hour,
                     "to_hour": m.to_hour if m.to_hour is not None else lead,
                     "tonnes_abated": tonnes, "cost_per_tonne": m.cost_per_tonne,
                     "cost": cost})
    return pd.DataFrame(rows)


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return path


def scores_table(base: pd.DataFrame, scen: pd.DataFrame, method: str) -> pd.DataFrame:
    """scores.csv from the base's and the scenario's :func:`.cities.city_daily` tables."""
    scores = base.rename(columns={"value": "base", "complete": "complete_base"}).merge(
        scen[SCORE_KEYS + ["value"]].rename(columns={"value": "scenario"}), on=SCORE_KEYS,
        how="left")
    scores["change"] = scores["scenario"] - scores["base"]
    scores["complete"] = scores.pop("complete_base")
    scores["method"] = method
    return scores[SCORE_KEYS + ["base", "scenario", "change", "complete", "method"]]


def write_scores(cfg: RunConfig, scores: pd.DataFrame, out: Path) -> list[Path]:
    """``out/scores.csv`` and ``out/exceedances.csv``."""
    exc = days_over_standard(scores, normalize_standard(cfg.products.aqi_standard))
    return [_write_csv(scores, out / "scores.csv"), _write_csv(exc, out / "exceedances.csv")]


def score_scenario(cfg: RunConfig, base_run, scenario: Scenario, out_dir,
                   method: str = "tags", posterior=None, stations=None,
                   run_done: bool = False, posterior_base=None) -> list[Path]:
    """Score ``scenario`` against ``base_run`` into ``out_dir`` (module docstring); return the
    written paths. ``posterior``: a later cycle's scaling table (path or table) to score it on
    as well (:mod:`.prepost`); ``stations``: :func:`.cities.station_cells` (None: from the
    config; {}: cities only); ``run_done``: the brute-force run ``out_dir/run`` (and the
    posterior one) exist already (made in parallel by :func:`score_scenarios`);
    ``posterior_base``: an existing posterior base run to reuse."""
    from ..forecast import rerun, run_scaling_table

    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    timer = PhaseTimer()
    base, out = Path(base_run), Path(out_dir)
    with timer.phase("setup"):
        start, lead = _run_start(base)
        regions = [r.name for r in cfg.regions]
        table = scenario_to_scaling(scenario, start, regions)
        out.mkdir(parents=True, exist_ok=True)
        (out / "_SUCCESS").unlink(missing_ok=True)
        paths = [write_scaling_table(table, out / "scaling.csv")]
        cities = city_domains(cfg)
        stations = station_cells(cfg) if stations is None else stations
        domains = sorted({d for d, _, _ in cities.values()} | {d for d, _, _ in
                                                               stations.values()})
    if method == "brute":
        scen_dir = out / "run"
        if not (run_done and (scen_dir / "_SUCCESS").exists()):
            with timer.phase("rerun"):
                rerun(cfg, base, scen_dir, table)
            timer.count("rerun", 1)
    elif method == "tags":
        with timer.phase("tags_estimate"):
            scen_dir = _tags_estimate(base, out / "tags_estimate", table, domains)
    with timer.phase("statistics"):
        b = city_daily(cfg, base, cities, stations)
    if method == "response":
        from .response import response_scores

        with timer.phase("response"):
            s = response_scores(cfg, base, scenario, cities, start, lead, stations, timer=timer)
    else:
        with timer.phase("statistics"):
            s = city_daily(cfg, scen_dir, cities, stations)
    with timer.phase("scores"):
        scores = scores_table(b, s, method)
        paths += write_scores(cfg, scores, out)
    with timer.phase("measures"):
        prior = run_scaling_table(base, cfg)
        paths.append(_write_csv(_measures_table(scenario, cfg, start, lead, prior),
                                out / "measures.csv"))
    if method == "tags":
        shutil.rmtree(out / "tags_estimate", ignore_errors=True)
    if posterior is not None:
        from .prepost import score_posterior

        with timer.phase("posterior"):
            paths += score_posterior(cfg, base, scenario, table, scores, out, method,
                                     posterior, cities, stations, run_done=run_done,
                                     posterior_base=posterior_base)
    paths.append(timer.write(out / "timings.csv"))
    extra = {"runs": dict(timer.runs)} if timer.runs else {}
    paths.append(write_success(out, paths, {"stage": "scenario", "scenario": scenario.name,
                                            "method": method, "timing": timer.as_dict(),
                                            **extra}))
    log.info("scenario %s (%s): %.1f s", scenario.name, method, timer.as_dict()["total"])
    return paths


def scenario_dir_name(name: str) -> str:
    """A scenario's directory under DIR when several are scored (its name, path-safe)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "scenario"


def _brute_task(cfg: RunConfig, base: str, scaling_csv: str | None, rows, out: str) -> str:
    """One brute-force rerun (in a dask worker; one numba thread): the base with the table in
    ``scaling_csv`` (and ``rows``, more rows multiplied in) into ``out``."""
    import numba

    from ..forecast import rerun

    if numba.config.NUMBA_NUM_THREADS > 1:
        numba.set_num_threads(1)
    tables = [read_scaling_table(scaling_csv)] if scaling_csv else []
    if rows:
        tables.append(ScalingTable.from_rows(rows, source="posterior inventory"))
    rerun(cfg, base, out, ScalingTable.concat(tables) if tables else None)
    return out


def _summary(name: str, out: Path) -> pd.DataFrame:
    """Per city x statistic of one scenario: means over the complete days, days avoided,
    tonnes and cost (summary.csv)."""
    keys = ["city", "pollutant", "statistic"]
    sc = pd.read_csv(out / "scores.csv")
    sc = sc[sc["kind"] == "city"]
    ok = sc["complete"].astype(bool)
    exc = pd.read_csv(out / "exceedances.csv")
    exc = exc[exc["kind"] == "city"][keys + ["base_days_over", "days_avoided", "days_added"]]
    meas = pd.read_csv(out / "measures.csv")
    g = sc.assign(ok=ok).groupby(keys, sort=False).agg(complete_days=("ok", "sum"))
    g = g.join(sc[ok].groupby(keys, sort=False).agg(
        base=("base", "mean"), scenario=("scenario", "mean"), mean_change=("change", "mean"),
        min_change=("change", "min"), max_change=("change", "max"))).reset_index()
    g = g.merge(exc, on=["city", "pollutant", "statistic"], how="left")
    g.insert(0, "scenario_name", name)
    g["tonnes_abated"] = float(meas["tonnes_abated"].sum())
    g["cost"] = float(meas["cost"].sum(min_count=1))
    return g


def score_scenarios(cfg: RunConfig, base_run, scenarios: list[Scenario], out_dir,
                    method: str = "tags", workers: int = 1, cluster: str | None = None,
                    posterior=None) -> list[Path]:
    """Score one scenario (into ``out_dir``, :func:`score_scenario`) or several (each into
    ``out_dir/<name>/``, brute-force reruns in parallel through dask, then
    ``out_dir/summary.csv`` and ``_SUCCESS``); return the written paths."""
    import dask

    from ..forecast import run_scaling_table
    from ..parallel.tasks import compute

    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected 1 or more")
    if len(scenarios) == 1:
        return score_scenario(cfg, base_run, scenarios[0], out_dir, method, posterior)
    dirs = [scenario_dir_name(s.name) for s in scenarios]
    dup = sorted({d for d in dirs if dirs.count(d) > 1})
    if dup:
        raise ConfigError(f"--scenario: scenario names must differ (their directories under "
                          f"{out_dir}); {', '.join(dup)} given more than once")
    timer = PhaseTimer()
    base, out = Path(base_run), Path(out_dir)
    start, _ = _run_start(base)
    regions = [r.name for r in cfg.regions]
    out.mkdir(parents=True, exist_ok=True)
    (out / "_SUCCESS").unlink(missing_ok=True)
    post_rows, post_base = None, None
    if posterior is not None:
        from .prepost import posterior_extra

        extra = posterior_extra(posterior, run_scaling_table(base, cfg), cfg)
        post_rows = [{"region": r.region, "sector": r.sector, "pollutant": r.pollutant,
                      "factor": r.factor, "start": r.start, "end": r.end} for r in extra.rows]
        post_base = out / "posterior_base"
    tasks, stations = [], station_cells(cfg)
    if method == "brute":
        for sc, d in zip(scenarios, dirs):
            (out / d).mkdir(parents=True, exist_ok=True)
            csv = write_scaling_table(scenario_to_scaling(sc, start, regions),
                                      out / d / "scaling.csv")
            tasks.append(dask.delayed(_brute_task)(cfg, str(base), str(csv), None,
                                                   str(out / d / "run")))
            if post_rows is not None:
                tasks.append(dask.delayed(_brute_task)(cfg, str(base), str(csv), post_rows,
                                                       str(out / d / "posterior" / "run")))
    if post_rows is not None:
        from .prepost import posterior_base_run

        if method == "brute":
            tasks.append(dask.delayed(_brute_task)(cfg, str(base), None, post_rows,
                                                   str(post_base)))
        else:
            with timer.phase("posterior_base"):
                posterior_base_run(cfg, base, post_rows, post_base, tags=method == "tags")
    if method == "response":   # every scenario's missing perturbed runs in one batch
        from .response import response_runs, scenario_cuts

        prior, lead = run_scaling_table(base, cfg), _run_start(base)[1]
        units = [u for sc in scenarios for u, x in zip(*scenario_cuts(cfg, sc, start, lead,
                                                                        prior)) if x > 0]
        with timer.phase("response_runs"):
            timer.count("response_runs", response_runs(cfg, base, units, workers, cluster))
    if tasks:
        with timer.phase("brute_runs"):
            compute(tasks, workers, cluster)
        timer.count("brute_runs", len(tasks))
        log.info("%d brute-force run(s) in %.1f s (%d worker(s), cluster %s)", len(tasks),
                 timer.seconds["brute_runs"], workers, cluster or "local")
    paths, summaries = [], []
    with timer.phase("scoring"):
        for sc, d in zip(scenarios, dirs):
            paths += score_scenario(cfg, base, sc, out / d, method, posterior, stations,
                                    run_done=True, posterior_base=post_base)
            summaries.append(_summary(sc.name, out / d))
    paths.append(_write_csv(pd.concat(summaries, ignore_index=True), out / "summary.csv"))
    paths.append(timer.write(out / "timings.csv"))
    files = [p for p in paths if Path(p).parent == out]
    paths.append(write_success(out, files, {
        "stage": "scenario", "scenarios": [s.name for s in scenarios], "method": method,
        "directories": dirs, "workers": workers, "cluster": cluster or "local",
        "timing": timer.as_dict(), **({"runs": dict(timer.runs)} if timer.runs else {})}))
    return paths
