"""The least-cost emission-reduction plan that meets a concentration target.

``aqforecast plan CONFIG --run BASE_RUN --target FILE --out DIR [--no-verify]``:

1. sensitivities: for every candidate measure j, the change of every limited city statistic i
   at the measure's full bound ``max_cut_j``, from the base run's tags (:mod:`.score`, the
   ``tags`` method); the linear model ``s_ij = change_ij / max_cut_j`` (exact for daily means of
   primary species under donor-cell; for MDA8 / AQI and secondary species a linearisation at the
   bound, checked by the rerun below);
2. the linear programme (scipy ``linprog``, HiGHS): minimise ``sum_j c_j x_j`` with ``c_j`` the
   cost of a full cut (tonnes abated at cut 1 x ``cost_per_tonne``; a measure without a cost
   costs its tonnes, so the plan then abates the least mass), ``0 <= x_j <= max_cut_j``, and per
   limit i ``base_i + sum_j s_ij x_j <= bound_i`` (``max``, or ``(1 + max_change) base_i``);
3. an infeasible target is reported as such: for every limit the best achievable value (all
   helpful measures at their bounds) is compared with its bound, and the first that cannot be met
   is named with its city, day and bound (exit 2);
4. ``DIR/optimal_plan.yaml`` (a valid scenario with the chosen cuts), ``DIR/plan.csv`` (measures,
   cuts, bounds, tonnes, cost), ``DIR/limits.csv`` (per limit: base, predicted, bound, binding),
   and unless ``--no-verify`` a brute-force rerun with the plan (``DIR/verify/run``) and
   ``DIR/verify.csv``: predicted vs achieved change per limit.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import linprog

from ..config import RunConfig
from ..io import InputFileError, atomic_path
from ..io.rundir import write_success
from .cities import city_daily, city_domains
from .schema import ALL, Scenario, Target, scenario_to_scaling
from .score import _measures_table, _run_start, _tags_estimate

__all__ = ["plan", "PlanInfeasible"]

log = logging.getLogger(__name__)


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


def plan(cfg: RunConfig, base_run, target: Target, out_dir, verify: bool = True) -> list[Path]:
    """Solve and write the least-cost plan (module docstring); return the written paths."""
    from ..forecast import rerun

    base, out = Path(base_run), Path(out_dir)
    start, lead = _run_start(base)
    regions = [r.name for r in cfg.regions]
    out.mkdir(parents=True, exist_ok=True)
    cities = city_domains(cfg)
    domains = sorted({d for d, _, _ in cities.values()})
    base_scores = city_daily(cfg, base, cities)
    limits = _limit_rows(target, base_scores, cities)
    nlim, nmeas = len(limits), len(target.measures)
    # 1. sensitivities at each measure's bound (tags method)
    S = np.zeros((nlim, nmeas))
    for j, m in enumerate(target.measures):
        one = Scenario(name=m.name, measures=[m])
        table = scenario_to_scaling(one, start, regions, cuts={m.name: m.max_cut})
        est = _tags_estimate(base, out / "sensitivity" / m.name, table, domains)
        sc = city_daily(cfg, est, cities)
        for i, r in enumerate(limits):
            S[i, j] = (_lookup(sc, r) - r["base"]) / m.max_cut if m.max_cut > 0 else 0.0
    import shutil

    shutil.rmtree(out / "sensitivity", ignore_errors=True)
    # 2. costs of full cuts
    costs = _measures_table(Scenario(name=target.name, measures=[
        m.model_copy(update={"cut": 1.0, "max_cut": None}) for m in target.measures]), cfg,
        start, lead)
    tonnes = costs["tonnes_abated"].to_numpy(float)
    per_t = np.array([m.cost_per_tonne if m.cost_per_tonne is not None else 1.0
                      for m in target.measures])
    c = np.nan_to_num(tonnes) * per_t
    base_v = np.array([r["base"] for r in limits])
    bound = np.array([r["bound"] for r in limits])
    ub = np.array([m.max_cut for m in target.measures])
    # 3. infeasibility: the best each limit can reach
    best = base_v + np.minimum(S, 0.0) @ ub
    bad = np.flatnonzero(best > bound + 1e-9 * np.maximum(np.abs(bound), 1.0))
    if bad.size:
        r = limits[bad[0]]
        raise PlanInfeasible(
            f"target {target.name!r} is infeasible: limit {r['limit']} ({r['pollutant']} "
            f"{r['statistic']} <= {r['bound']:.4g}) in {r['city']} on lead day "
            f"{r['lead_day']}: the base is {r['base']:.4g} and all candidate measures at their "
            f"max_cut reach {best[bad[0]]:.4g} at best ({bad.size} limit(s) out of reach)")
    res = linprog(c, A_ub=S, b_ub=bound - base_v, bounds=list(zip(np.zeros(nmeas), ub)),
                  method="highs")
    if not res.success:
        raise PlanInfeasible(f"target {target.name!r}: the linear programme failed: "
                             f"{res.message}")
    x = np.clip(res.x, 0.0, ub)
    predicted = base_v + S @ x
    binding = np.abs(predicted - bound) <= 1e-6 * np.maximum(np.abs(bound), 1.0)
    # 4. outputs
    chosen = [m.model_copy(update={"cut": float(round(xj, 6)), "scale": None})
              for m, xj in zip(target.measures, x) if xj > 1e-6]
    paths = []
    plan_yaml = out / "optimal_plan.yaml"
    doc = {"name": f"{target.name}-optimal"[:80],
           "description": f"least-cost plan for target {target.name} (cost {float(c @ x):.6g})",
           "measures": [{k: v for k, v in m.model_dump().items() if v is not None and
                         not (k in ("regions", "sectors", "pollutants") and v == ALL) and
                         not (k == "from_hour" and v == 0.0)} for m in chosen]}
    if not chosen:
        doc["measures"] = [{"name": "none", "scale": 1.0}]
    with atomic_path(plan_yaml) as tmp:
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    paths.append(plan_yaml)
    pt = pd.DataFrame({"measure": [m.name for m in target.measures], "cut": x, "max_cut": ub,
                       "tonnes_at_full_cut": tonnes, "tonnes_abated": tonnes * x,
                       "cost_per_tonne": per_t, "cost": c * x})
    lt = pd.DataFrame(limits).assign(predicted=predicted, binding=binding)
    for name, df in (("plan.csv", pt), ("limits.csv", lt)):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
        paths.append(out / name)
    log.info("plan %s: cost %.4g, %d measure(s), %d binding limit(s)", target.name,
             float(c @ x), len(chosen), int(binding.sum()))
    if verify:
        scenario = Scenario(name=doc["name"], measures=chosen) if chosen else None
        run = out / "verify" / "run"
        table = scenario_to_scaling(scenario, start, regions) if scenario else None
        rerun(cfg, base, run, table)
        achieved = city_daily(cfg, run, cities)
        vt = lt.assign(achieved=[_lookup(achieved, r) for r in limits])
        vt["predicted_change"] = vt["predicted"] - vt["base"]
        vt["achieved_change"] = vt["achieved"] - vt["base"]
        vt["met"] = vt["achieved"] <= vt["bound"] * (1 + 1e-9)
        with atomic_path(out / "verify.csv") as tmp:
            vt.to_csv(tmp, index=False, float_format="%.6g")
        paths.append(out / "verify.csv")
    paths.append(write_success(out, paths, {"stage": "plan", "target": target.name,
                                            "cost": float(c @ x)}))
    return paths
