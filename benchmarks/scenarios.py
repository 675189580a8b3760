"""Scenario methods and the response plan against brute-force reruns on the small case.

The case of the slow scenario/plan tests (``tests/test_scenario_scoring.py``:
``tests/forecast_case.small_config``, d01 24 x 21 x 3 km + d02 12 x 12 x 1 km, 8 layers, the
regions Hangzhou and Shaoxing, chemistry and tags on, donor-cell advection, float64 output; base
run 24 h from 2026-07-20 16 UTC = local midnight, so lead day 1 is a whole local day).

1. Three scenarios with the kinds of measures of ``config/scenarios/`` (one-sector NOx cut in a
   window, residential PM10 everywhere, a mixed emergency plan with windows, all-pollutant and
   two-pollutant measures and agricultural NH3), each scored with ``--method tags``,
   ``--method response`` and ``--method brute``: the city changes of PM2.5 daily mean and O3
   MDA8 (and NO2 daily mean, for reference) on lead day 1, and the relative error of tags and
   response against brute, ``|change - brute| / |brute|`` (rows whose brute change is below
   1e-4 of the base are shown but not in the mean / max).
2. ``aqforecast plan --model response`` with the slow test's target (PM2.5 -3 % in both cities
   on day 1; residential PM, industrial PM and power SO2 as candidates) and its verifying rerun:
   predicted vs achieved change per city and limit (``verify.csv``).

Prints the tables, the wall seconds of each command (this machine, whatever else runs on it)
and the number of perturbed runs each used. The work directory is kept: a second call reuses the
base run and the cached perturbed runs (``BASE/response/``; the brute runs are redone).

    NUMBA_NUM_THREADS=1 python benchmarks/scenarios.py [--work DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

SCENARIOS = {
    "industry-nox": """name: industry-nox
description: hangzhou-industry-nox on the small case -- industrial NOx in Hangzhou -30 % in a window
measures:
  - {name: industry-nox, regions: [Hangzhou], sectors: [industry], pollutants: [NOx], cut: 0.30,
     from_hour: 6, to_hour: 24, cost_per_tonne: 12000}
""",
    "residential-pm": """name: residential-pm
description: residential-pm-everywhere on the small case -- residential PM10 halved in both cities
measures:
  - {name: residential-pm, regions: all, sectors: [residential], pollutants: [PM10], cut: 0.5,
     cost_per_tonne: 30000}
""",
    "emergency": """name: emergency
description: emergency-plan on the small case (industry, power, traffic, agricultural NH3)
measures:
  - {name: industry-all, regions: [Hangzhou], sectors: [industry], pollutants: all, cut: 0.30,
     to_hour: 18, cost_per_tonne: 9000}
  - {name: power-so2-nox, regions: [Hangzhou], sectors: [power], pollutants: [SO2, NOx],
     cut: 0.20, cost_per_tonne: 15000}
  - {name: traffic, regions: all, sectors: [transport], pollutants: all, cut: 0.25,
     from_hour: 8, cost_per_tonne: 20000}
  - {name: nh3, regions: [Shaoxing], sectors: [agriculture], pollutants: [NH3], cut: 0.20,
     cost_per_tonne: 5000}
""",
}

#: the target of tests/test_scenario_scoring.py (test_plan_meets_the_target...)
TARGET = """name: pm-cut
limits:
  - {pollutant: PM2.5, statistic: daily_mean, max_change: -0.03, cities: all, days: [1]}
measures:
  - {name: res-pm, sectors: [residential], pollutants: [PM25], max_cut: 0.8,
     cost_per_tonne: 1000}
  - {name: ind-pm, sectors: [industry], pollutants: [PM25], max_cut: 0.8,
     cost_per_tonne: 3000}
  - {name: pow-so2, sectors: [power], pollutants: [SO2], max_cut: 0.5, cost_per_tonne: 500}
"""

STATS = (("PM2.5", "daily_mean"), ("O3", "mda8"), ("NO2", "daily_mean"))
SCORED = STATS[:2]        # the statistics of the targets (mean / max error)
METHODS = ("tags", "response", "brute")


def base_case(work: Path) -> tuple[Path, Path]:
    """The slow tests' case and its 24 h base run (reused when done)."""
    from forecast_case import exact_small_config

    from aqforecast.cli import main

    case = exact_small_config(work, hours=41)
    run = work / "base"
    if not (run / "_SUCCESS").exists():
        t = time.perf_counter()
        assert main(["forecast", str(case), "--start", "2026-07-20T16", "--lead-hours", "24",
                     "--out", str(run), "--no-progress", "--overwrite"]) == 0
        print(f"base run (24 h, tags on): {time.perf_counter() - t:.1f} s wall", flush=True)
    return case, run


def _runs(out: Path) -> dict:
    man = json.loads((out / "_SUCCESS").read_text())
    return man.get("runs", {})


def score_all(case: Path, run: Path, work: Path, workers: int) -> tuple[pd.DataFrame, dict]:
    from aqforecast.cli import main

    files = []
    for name, text in SCENARIOS.items():
        f = work / "scenarios" / f"{name}.yaml"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        files += ["--scenario", str(f)]
    rows, info = [], {}
    for method in METHODS:
        out = work / "scores" / method
        t = time.perf_counter()
        assert main(["scenario", str(case), "--run", str(run), *files, "--out", str(out),
                     "--method", method, "--workers", str(workers)]) == 0
        info[method] = {"wall_s": time.perf_counter() - t, "runs": _runs(out)}
        for name in SCENARIOS:
            sc = pd.read_csv(out / name / "scores.csv")
            sc = sc[(sc.kind == "city") & sc.complete.astype(bool) & (sc.lead_day == 1)]
            for pol, stat in STATS:
                for _, r in sc[(sc.pollutant == pol) & (sc.statistic == stat)].iterrows():
                    rows.append({"scenario": name, "city": r.city, "pollutant": pol,
                                 "statistic": stat, "method": method, "base": r.base,
                                 "change": r.change})
    df = pd.DataFrame(rows).pivot_table(index=["scenario", "city", "pollutant", "statistic"],
                                        columns="method", values=["base", "change"])
    tab = pd.DataFrame({"base": df[("base", "brute")], "brute": df[("change", "brute")],
                        "tags": df[("change", "tags")], "response": df[("change", "response")]})
    for m in ("tags", "response"):
        tab[f"{m}_err"] = (tab[m] - tab["brute"]).abs() / tab["brute"].abs()
    tab["scored"] = tab["brute"].abs() >= 1e-4 * tab["base"].abs()
    return tab.reset_index(), info


def plan_response(case: Path, run: Path, work: Path, workers: int) -> tuple[pd.DataFrame, dict]:
    from aqforecast.cli import main

    tgt = work / "target.yaml"
    tgt.write_text(TARGET)
    out = work / "plan_response"
    t = time.perf_counter()
    assert main(["plan", str(case), "--run", str(run), "--target", str(tgt), "--out", str(out),
                 "--model", "response", "--workers", str(workers)]) == 0
    wall = time.perf_counter() - t
    ver = pd.read_csv(out / "verify.csv")
    plan = pd.read_csv(out / "plan.csv")
    timing = pd.read_csv(out / "timings.csv").set_index("phase")
    return ver, {"wall_s": wall, "runs": _runs(out), "plan": plan,
                 "plan_s": float(timing.loc["plan_s", "seconds"]),
                 "response_runs_s": float(timing.loc["response_runs", "seconds"]),
                 "verify_s": float(timing.loc["verify", "seconds"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/aqforecast_bench_scenarios"),
                    help="work directory, kept (default %(default)s)")
    ap.add_argument("--workers", type=int, default=1,
                    help="dask processes for the perturbed and brute runs")
    ap.add_argument("--skip-plan", action="store_true")
    ap.add_argument("--skip-scenarios", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    args.work.mkdir(parents=True, exist_ok=True)
    case, run = base_case(args.work)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    if not args.skip_scenarios:
        tab, info = score_all(case, run, args.work, args.workers)
        print("\nCity changes on lead day 1 (gases and PM ug m-3), tags / response vs brute:")
        print(tab.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print("\nRelative error of the change vs brute (rows with scored = True):")
        summ = []
        for pol, stat in SCORED:
            sel = tab[(tab.pollutant == pol) & (tab.statistic == stat) & tab.scored]
            for m in ("tags", "response"):
                summ.append({"statistic": f"{pol} {stat}", "method": m, "n": len(sel),
                             "mean_err": sel[f"{m}_err"].mean(),
                             "max_err": sel[f"{m}_err"].max()})
        print(pd.DataFrame(summ).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print("\nwall s (this machine) and runs per method (3 scenarios):")
        for m, d in info.items():
            print(f"  {m:9s} {d['wall_s']:8.1f} s  runs {d['runs']}")
    if not args.skip_plan:
        ver, pinfo = plan_response(case, run, args.work, args.workers)
        print("\nplan --model response (PM2.5 daily mean -3 % in both cities, day 1):")
        print(pinfo["plan"][["measure", "cut", "max_cut", "tonnes_abated", "cost"]].to_string(
            index=False, float_format=lambda v: f"{v:.4g}"))
        print(ver[["city", "lead_day", "base", "bound", "predicted_change", "achieved_change",
                   "change_error", "met"]].to_string(index=False,
                                                     float_format=lambda v: f"{v:.4g}"))
        print(f"max |change_error| {ver['change_error'].abs().max():.4f}; wall "
              f"{pinfo['wall_s']:.1f} s (response runs {pinfo['response_runs_s']:.1f} s, "
              f"plan_s {pinfo['plan_s']:.1f} s, verifying rerun {pinfo['verify_s']:.1f} s); "
              f"runs {pinfo['runs']}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
