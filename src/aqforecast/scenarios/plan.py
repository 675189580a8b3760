"""The least-cost emission-reduction plan that meets a concentration target.

``aqforecast plan CONFIG --run BASE_RUN --target FILE --out DIR [--model linear|response]
[--no-verify] [--workers N] [--cluster KIND]``:

1. the model of every limited city statistic i as a function of the candidate measures' cuts
   (``--model``):

   * ``linear`` (default): the change at each measure's full bound ``max_cut_j`` from the base
     run's tags (:mod:`.score`, the ``tags`` method), ``s_ij = change_ij / max_cut_j`` (exact
     for daily means of primary species under donor-cell; for MDA8 / AQI and secondary species
     a linearisation at the bound, checked by the rerun below);
   * ``response``: the response surface of :mod:`.response` -- per unit (region x sector x
     pollutant group x window) the candidates act on, a quadratic in the effective cut from 2 cached
     perturbed runs (``BASE_RUN/response/``, made here if missing, through dask with
     ``--workers``), the effective cuts linear in the measures' cuts
     (:func:`.response.unit_weights`);

2. the optimisation (:mod:`.optimise`): minimise ``sum_j c_j x_j`` with ``c_j`` the cost of a
   full cut (tonnes abated at cut 1 on top of the base run's own scaling x ``cost_per_tonne``; a
   measure without a cost costs its tonnes, so the plan then abates the least mass),
   ``0 <= x_j <= max_cut_j``, and per limit ``base_i + change_i(x) <= bound_i`` (``max``, or
   ``(1 + max_change) base_i``): scipy ``linprog`` (HiGHS) on the linear model, SLSQP on the
   response surface;
3. an infeasible target is reported as such (exit 2), naming the limit, city, lead day and bound
   that blocks it and the best value reachable (a limit out of reach alone, or the one left
   furthest above its bound when the limits cannot all be met together);
4. ``DIR/optimal_plan.yaml`` (a valid scenario with the chosen cuts), ``DIR/plan.csv``
   (measures, cuts, bounds, tonnes, cost), ``DIR/limits.csv`` (per limit: model, base,
   predicted, bound, binding), and unless ``--no-verify`` a brute-force rerun with the plan
   (``DIR/verify/run``) and ``DIR/verify.csv``: predicted vs achieved change per limit (city x
   day), their relative difference and whether the achieved value meets the bound;
   ``DIR/timings.csv`` and the ``timing`` of ``_SUCCESS``: seconds per phase, ``plan_s`` the
   plan itself (all but the perturbed runs and the verifying rerun); the ``runs`` column (and
   ``runs`` in ``_SUCCESS``) counts the model runs: ``response_runs`` made,
   ``response_runs_cached`` reused, ``verify`` 1.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..config import ConfigError, RunConfig
from ..io import InputFileError, atomic_path
from ..io.rundir import write_success
from .cities import city_daily, city_domains
from .optimise import Infeasible, LinearModel, ResponseModel, solve
from .schema import ALL, Scenario, Target, scenario_to_scaling
from .score import _measures_table, _run_start, _tags_estimate
from .timing import PhaseTimer

__all__ = ["plan", "PlanInfeasible", "MODELS"]

log = logging.getLogger(__name__)
MODELS = ("linear", "response")


class PlanInfeasible(InputFileError):
    """No combination of the candidate measures within their bounds meets the target."""


def _limit_rows(target: Target, scores: pd.DataFrame, cities) -> list[dict]:
    """Expand the limits to (limit index, city, day, pollutant, statistic, base, bound)."""
    rows = []
    for li, lim in enumerate(target.limits):
        names = list(cities) if lim.cities == ALL else lim.cities
        for city in names:
            for day in lim.days:
                sel = scores[(scores.city == city) & (scores.lead_day == day)
                             & (scores.pollutant == lim.pollutant)
                             & (scores.statistic == lim.statistic)]
                if sel.empty or not bool(sel["complete"].iloc[0]):
                    raise InputFileError(f"limit {li + 1} ({lim.pollutant} {lim.statistic}): "
                                         f"{city} has no complete value on lead day {day} in "
                                         f"the base run")
                base = float(sel["value"].iloc[0])
                bound = lim.max if lim.max is not None else (1.0 + lim.max_change) * base
                rows.append({"limit": li + 1, "city": city, "lead_day": day,
                             "pollutant": lim.pollutant, "statistic": lim.statistic,
                             "base": base, "bound": bound})
    return rows


def _lookup(df: pd.DataFrame, r: dict) -> float:
    sel = df[(df.city == r["city"]) & (df.lead_day == r["lead_day"])
             & (df.pollutant == r["pollutant"]) & (df.statistic == r["statistic"])]
    return float(sel["value"].iloc[0])


def _linear_model(cfg, base, out, target, limits, cities, start, regions) -> LinearModel:
    """S from one tags estimate per measure at its bound."""
    domains = sorted({d for d, _, _ in cities.values()})
    S = np.zeros((len(limits), len(target.measures)))
    for j, m in enumerate(target.measures):
        if m.max_cut <= 0:
            continue
        one = Scenario(name=m.name, measures=[m])
        table = scenario_to_scaling(one, start, regions, cuts={m.name: m.max_cut})
        est = _tags_estimate(base, out / "sensitivity" / m.name, table, domains)
        sc = city_daily(cfg, est, cities)
        for i, r in enumerate(limits):
            S[i, j] = (_lookup(sc, r) - r["base"]) / m.max_cut
    shutil.rmtree(out / "sensitivity", ignore_errors=True)
    return LinearModel(S)


def _response_model(cfg, base, target, limits, cities, start, lead, regions, prior, workers,
                    cluster, timer) -> ResponseModel:
    """W, A, B of the response surface at the limits (module docstring); the units the
    candidates act on that no candidate can cut (zero weight) get no runs."""
    from .response import response_coefficients, touched_units, unit_weights

    units = touched_units(target.measures, regions, lead)
    W = unit_weights(cfg, list(target.measures), start, lead, units, prior)
    keep = [k for k in range(len(units)) if np.any(W[:, k] > 0)]
    units, W = [units[k] for k in keep], W[:, keep]
    _, coef = response_coefficients(cfg, base, units, cities, {}, workers, cluster, timer)
    A = np.zeros((len(limits), len(units)))
    B = np.zeros_like(A)
    for k, unit in enumerate(units):
        a, b = (s.rename("value").reset_index() for s in coef[unit])
        for i, r in enumerate(limits):
            A[i, k], B[i, k] = _lookup(a, r), _lookup(b, r)
    return ResponseModel(W, np.nan_to_num(A), np.nan_to_num(B))


def _infeasible_message(target: Target, model: str, limits: list[dict], e: Infeasible) -> str:
    r = limits[e.limit]
    where = (f"limit {r['limit']} ({r['pollutant']} {r['statistic']} <= {r['bound']:.4g}) in "
             f"{r['city']} on lead day {r['lead_day']}")
    if not e.joint:
        return (f"target {target.name!r} is infeasible ({model} model): {where}: the base is "
                f"{r['base']:.4g} and all candidate measures at their max_cut reach "
                f"{e.reached:.4g} at best ({e.out_of_reach} limit(s) out of reach)")
    return (f"target {target.name!r} is infeasible ({model} model): every limit is reachable "
            f"alone but not all together; the closest plan leaves {where} at {e.reached:.4g} "
            f"(base {r['base']:.4g}; {e.out_of_reach} limit(s) unmet)")


def _plan_yaml(target: Target, chosen, cost: float, model: str) -> dict:
    doc = {"name": f"{target.name}-optimal"[:80],
           "description": f"least-cost plan for target {target.name} ({model} model, cost "
                          f"{cost:.6g})",
           "measures": [{k: v for k, v in m.model_dump().items() if v is not None and
                         not (k in ("regions", "sectors", "pollutants") and v == ALL) and
                         not (k == "from_hour" and v == 0.0)} for m in chosen]}
    if not chosen:
        doc["measures"] = [{"name": "none", "scale": 1.0}]
    return doc


def _write_csv(df, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return path


def plan(cfg: RunConfig, base_run, target: Target, out_dir, verify: bool = True,
         model: str = "linear", workers: int = 1, cluster: str | None = None) -> list[Path]:
    """Solve and write the least-cost plan (module docstring); return the written paths."""
    from ..forecast import rerun, run_scaling_table

    if model not in MODELS:
        raise ConfigError(f"--model {model!r}: expected one of {', '.join(MODELS)}")
    timer = PhaseTimer()
    base, out = Path(base_run), Path(out_dir)
    with timer.phase("setup"):
        start, lead = _run_start(base)
        regions = [r.name for r in cfg.regions]
        out.mkdir(parents=True, exist_ok=True)
        (out / "_SUCCESS").unlink(missing_ok=True)
        cities = city_domains(cfg)
        limits = _limit_rows(target, city_daily(cfg, base, cities), cities)
        prior = run_scaling_table(base, cfg)
    with timer.phase("costs"):
        costs = _measures_table(Scenario(name=target.name, measures=[
            m.model_copy(update={"cut": 1.0, "max_cut": None}) for m in target.measures]), cfg,
            start, lead, prior)
    tonnes = costs["tonnes_abated"].to_numpy(float)
    per_t = np.array([m.cost_per_tonne if m.cost_per_tonne is not None else 1.0
                      for m in target.measures])
    c = np.nan_to_num(tonnes) * per_t
    base_v = np.array([r["base"] for r in limits])
    bound = np.array([r["bound"] for r in limits])
    ub = np.array([m.max_cut for m in target.measures])
    with timer.phase("model"):
        if model == "linear":
            mdl = _linear_model(cfg, base, out, target, limits, cities, start, regions)
        else:
            mdl = _response_model(cfg, base, target, limits, cities, start, lead, regions,
                                  prior, workers, cluster, timer)
    with timer.phase("solve"):
        try:
            sol = solve(mdl, c, base_v, bound, ub)
        except Infeasible as e:
            raise PlanInfeasible(_infeasible_message(target, model, limits, e)) from None
    x = sol.x
    # outputs
    with timer.phase("write"):
        chosen = [m.model_copy(update={"cut": float(round(xj, 6)), "scale": None})
                  for m, xj in zip(target.measures, x) if xj > 1e-6]
        doc = _plan_yaml(target, chosen, sol.cost, model)
        plan_yaml = out / "optimal_plan.yaml"
        with atomic_path(plan_yaml) as tmp:
            tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
        pt = pd.DataFrame({"measure": [m.name for m in target.measures], "cut": x,
                           "max_cut": ub, "tonnes_at_full_cut": tonnes,
                           "tonnes_abated": tonnes * x, "cost_per_tonne": per_t,
                           "cost": c * x})
        lt = pd.DataFrame(limits).assign(model=model, predicted=sol.predicted,
                                          binding=sol.binding)
        lt["predicted_change"] = lt["predicted"] - lt["base"]
        paths = [plan_yaml, _write_csv(pt, out / "plan.csv"), _write_csv(lt, out / "limits.csv")]
    log.info("plan %s (%s model): cost %.4g, %d measure(s), %d binding limit(s)", target.name,
             model, sol.cost, len(chosen), int(sol.binding.sum()))
    if verify:
        with timer.phase("verify"):
            scenario = Scenario(name=doc["name"], measures=chosen) if chosen else None
            run = out / "verify" / "run"
            table = scenario_to_scaling(scenario, start, regions) if scenario else None
            rerun(cfg, base, run, table)
            timer.count("verify", 1)
            achieved = city_daily(cfg, run, cities)
            vt = lt.assign(achieved=[_lookup(achieved, r) for r in limits])
            vt["achieved_change"] = vt["achieved"] - vt["base"]
            vt["change_error"] = (vt["achieved_change"] - vt["predicted_change"]) / \
                vt["predicted_change"].abs().where(vt["predicted_change"] != 0)
            vt["met"] = vt["achieved"] <= vt["bound"] * (1 + 1e-9)
            paths.append(_write_csv(vt, out / "verify.csv"))
    timing = timer.as_dict()
    timing["plan_s"] = round(timing["total"] - timing.get("verify", 0.0)
                             - timing.get("response_runs", 0.0), 3)
    paths.append(_write_csv(timer.frame(timing), out / "timings.csv"))
    extra = {"runs": dict(timer.runs)} if timer.runs else {}
    paths.append(write_success(out, paths, {"stage": "plan", "target": target.name,
                                            "model": model, "cost": sol.cost,
                                            "timing": timing, **extra}))
    log.info("plan %s: %.1f s (plan %.1f s)%s", target.name, timing["total"], timing["plan_s"],
             "".join(f", {k} {v}" for k, v in timer.runs.items()))
    return paths
