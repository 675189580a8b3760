"""Response-surface scoring: secondary PM and O3 from a few perturbed runs per region x
precursor (the ``response`` method of ``aqforecast scenario`` and ``aqforecast plan --model
response``).

For every (region, precursor) a scenario touches -- precursors NOx, SO2, NH3, NMVOC, PM25, PMC
-- the base run is rerun with that precursor cut by ``LEVELS`` (50 % and 100 %, all sectors,
the whole run) in the region: 2 runs per (region, precursor), cached under
``BASE_RUN/response/`` and reused by every later scenario and plan on that base (made in
parallel through dask with ``workers`` > 1). A city statistic's change is modelled per (region,
precursor) k as a quadratic in the effective cut x_k through the origin and the two levels,
``dS_k(x) = a_k x + b_k x^2``, and the scenario's change is ``sum_k dS_k(x_k)`` (no interaction
terms: CAMS-like source-receptor practice). The effective cut x_k is the emission-weighted
fraction of precursor k that the scenario removes over the run (sectors and time windows by the
emission model's hourly rates on top of the base run's own scaling, :meth:`EmissionModel.
abated_mass`); the surface therefore carries no timing: a cut on day 3 moves day 1 as much as
the same tonnes cut on day 1 would (the method's error besides the missing interactions, checked
against ``brute`` in the tests).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..emissions.inventory import POLLUTANTS
from ..emissions.scaling import ScalingTable
from .cities import COLUMNS, city_daily
from .schema import ALL, Measure, Scenario, scenario_to_scaling

__all__ = ["response_scores", "response_coefficients", "response_runs", "cut_weights",
           "touched_pairs", "LEVELS", "PRECURSORS"]

log = logging.getLogger(__name__)

LEVELS = (0.5, 1.0)
PRECURSORS = ("NOx", "SO2", "NH3", "NMVOC", "PM25", "PMC")
KEYS = COLUMNS[:-2]   # the row key of city_daily (all but value, complete)


def touched_pairs(measures, regions) -> list[tuple[str, str]]:
    """(region, precursor) pairs the measures (with a cut or a bound) act on."""
    out = []
    for m in measures:
        if m.factor == 1.0 and not m.max_cut:
            continue
        regs = list(regions) if m.regions == ALL else m.regions
        pols = PRECURSORS if m.pollutants == ALL else [
            q for p in m.pollutants for q in (("PM25", "PMC") if p == "PM10" else (p,))]
        out += [(r, p) for r in regs for p in pols if p in PRECURSORS]
    return list(dict.fromkeys(out))


def _emission_model(cfg):
    from ..emissions import EmissionModel
    from ..grid import grids_from_config

    return EmissionModel.from_config(cfg, grids_from_config(cfg)[cfg.domains[0].name])


def _fractions(em, tables, start, lead, pairs, prior) -> np.ndarray:
    """(len(tables), len(pairs)): fraction of each pair's emissions (on top of ``prior``)
    that each table removes over the run."""
    prior = prior if prior is not None and len(prior) else None
    base = em.abated_mass(prior, start, lead) if prior is not None else 0.0
    total = em.abated_mass(ScalingTable.concat([prior, ScalingTable({("*", "*", "*"): 0.0})]),
                           start, lead) - base
    out = np.zeros((len(tables), len(pairs)))
    for t, table in enumerate(tables):
        both = ScalingTable.concat([prior, table]) if prior is not None else table
        removed = em.abated_mass(both, start, lead) - base
        for k, (r, p) in enumerate(pairs):
            if r not in em.regions.names:
                continue
            i, j = em.regions.names.index(r), POLLUTANTS.index(p)
            tot = float(total[i, :, j].sum())
            out[t, k] = float(removed[i, :, j].sum()) / tot if tot > 0 else 0.0
    return out


def cut_weights(cfg: RunConfig, measures: list[Measure], start, lead, pairs, prior=None
                ) -> np.ndarray:
    """W (measure x pair): the effective cut of each pair when measure j alone is at cut 1;
    the plan's effective cuts are ``x = W.T @ cuts`` (exact where candidate measures do not
    overlap in region, sector, pollutant and hour; overlapping ones multiply, which the sum
    overstates by their product term)."""
    regions = [r.name for r in cfg.regions]
    tables = [scenario_to_scaling(Scenario(name=m.name, measures=[m]), start, regions,
                                  cuts={m.name: 1.0}) for m in measures]
    return _fractions(_emission_model(cfg), tables, start, lead, pairs, prior)


def _response_task(cfg: RunConfig, base: str, region: str, precursor: str, level: float,
                   out: str) -> str:
    import numba

    from ..forecast import rerun

    if numba.config.NUMBA_NUM_THREADS > 1:
        numba.set_num_threads(1)
    rerun(cfg, base, out, ScalingTable({(region, "*", precursor): 1.0 - level}))
    return out


def _run_dir(base: Path, r: str, p: str, level: float) -> Path:
    return base / "response" / f"{r}_{p}_{int(round(level * 100)):03d}"


def response_runs(cfg: RunConfig, base: Path, pairs, workers: int = 1,
                  cluster: str | None = None) -> int:
    """Make the perturbed runs of ``pairs`` not yet cached; return how many were made."""
    import dask

    from ..parallel.tasks import compute

    todo = [(r, p, lv) for r, p in pairs for lv in LEVELS
            if not (_run_dir(base, r, p, lv) / "_SUCCESS").exists()]
    if not todo:
        return 0
    log.info("response: %d perturbed run(s) to make (%d worker(s))", len(todo), workers)
    if workers <= 1 and cluster in (None, "", "local"):
        for r, p, lv in todo:
            _response_task(cfg, str(base), r, p, lv, str(_run_dir(base, r, p, lv)))
    else:
        compute([dask.delayed(_response_task)(cfg, str(base), r, p, lv,
                                              str(_run_dir(base, r, p, lv)))
                 for r, p, lv in todo], workers, cluster)
    return len(todo)


def response_coefficients(cfg: RunConfig, base: Path, pairs, cities, stations=None,
                          workers: int = 1, cluster: str | None = None, timer=None
                          ) -> tuple[pd.Series, dict]:
    """The base values (Series on the city_daily key) and per pair the quadratic's (a, b)
    Series: ``dS_k(x) = a_k x + b_k x^2`` through (0, 0) and the ``LEVELS`` runs."""
    import time

    base = Path(base)
    t0 = time.perf_counter()
    made = response_runs(cfg, base, pairs, workers, cluster)
    if timer is not None and made:
        timer.add("response_runs", time.perf_counter() - t0)
    b = city_daily(cfg, base, cities, stations).set_index(KEYS)["value"]
    coef = {}
    for r, p in pairs:
        d = [city_daily(cfg, _run_dir(base, r, p, lv), cities, stations).set_index(KEYS)[
            "value"] - b for lv in LEVELS]
        (l1, l2), (d1, d2) = LEVELS, d
        bq = (d2 / l2 - d1 / l1) / (l2 - l1)
        coef[(r, p)] = (d1 / l1 - bq * l1, bq)
    return b, coef


def response_scores(cfg: RunConfig, base: Path, scenario: Scenario, cities, start, lead,
                    stations=None, workers: int = 1, cluster: str | None = None, timer=None
                    ) -> pd.DataFrame:
    """City (and station) statistics of the scenario by the response surface (the ``value``
    column of :func:`.cities.city_daily`), with the perturbed runs made or reused."""
    from ..forecast import run_scaling_table

    regions = [r.name for r in cfg.regions]
    pairs = touched_pairs(scenario.measures, regions)
    table = scenario_to_scaling(scenario, start, regions)
    x = _fractions(_emission_model(cfg), [table], start, lead, pairs,
                   run_scaling_table(base, cfg))[0]
    active = [(k, xk) for k, xk in zip(pairs, x) if xk > 0]
    b, coef = response_coefficients(cfg, base, [k for k, _ in active], cities, stations,
                                    workers, cluster, timer)
    total = pd.Series(0.0, index=b.index)
    for k, xk in active:
        a, bq = coef[k]
        total = total + a * xk + bq * xk * xk
    out = (b + total).rename("value").reset_index()
    out["complete"] = np.isfinite(out["value"])
    return out
