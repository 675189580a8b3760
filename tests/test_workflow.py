"""The Snakemake daily cycle: lint, plans under the local and SLURM profiles, the optional
station bias correction's rules, and a tiny two-cycle DAG that runs every stage (the bias
correction included), reruns nothing when nothing changed, and reruns exactly the stages that
depend on the inventory when it is touched."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from forecast_case import REPO, small_config

SNAKEMAKE = Path(sys.executable).parent / "snakemake"
pytestmark = pytest.mark.skipif(not SNAKEMAKE.exists() and shutil.which("snakemake") is None,
                                reason="snakemake not installed")


def _snake(*args, cwd=REPO, timeout=900):
    exe = str(SNAKEMAKE) if SNAKEMAKE.exists() else shutil.which("snakemake")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}"
                                f"{os.environ.get('PATH', '')}")
    return subprocess.run([exe, "--snakefile", str(REPO / "Snakefile"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def _jobs(stdout: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count."""
    out = {}
    block = stdout.split("Job stats:")[-1] if "Job stats:" in stdout else ""
    for line in block.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            out[m.group(1)] = int(m.group(2))
    return out


def test_lint_is_clean():
    res = _snake("--lint")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Lints for" not in res.stdout + res.stderr, res.stdout[-3000:]


def test_dry_run_plans_the_two_cycles(tmp_path):
    res = _snake("-n", "--cores", "2", "--config", f"results={tmp_path}")
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = _jobs(res.stdout)
    # config/workflow.yaml: two cycles, three scenarios, a plan; the second cycle is warm
    assert jobs["forecast"] == 2 and jobs["products"] == 2 and jobs["bulletin"] == 2, jobs
    assert jobs["scenario"] == 3 and jobs["plan"] == 1, jobs   # on the full-lead cycle
    assert jobs["assimilate"] == 1 and jobs["invert"] == 1 and jobs["verification"] == 1, jobs
    assert jobs["observations"] == 1 and jobs["observations_day"] == 1, jobs


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profiles_plan(tmp_path, profile):
    res = _snake("-n", "-p", "--profile", str(REPO / "hpc" / profile), "--config",
                 f"results={tmp_path}", "cycles=1")
    assert res.returncode == 0, res.stderr[-3000:]
    launch = "mpiexec -n 2 aqforecast forecast" if profile == "local" else \
        "srun -n 16 aqforecast forecast"
    assert launch in res.stdout, res.stdout[-3000:]


def test_bad_workflow_option_is_refused(tmp_path):
    res = _snake("-n", "--cores", "1", "--config", f"results={tmp_path}", "cycles=0")
    assert res.returncode != 0
    assert "cycles" in res.stdout + res.stderr


def _tiny_case(tmp: Path) -> tuple[Path, Path]:
    """The small test case with its own inventory copy and synthetic observations; returns
    (run config, workflow config)."""
    case = small_config(tmp / "case", hours=12, tags=True)
    data = yaml.safe_load(case.read_text())
    inv = tmp / "inventory.nc"
    shutil.copy(REPO / "data_sample" / "emissions" / "inventory_yrd2017_sample.nc", inv)
    data["inputs"]["emissions"]["gridded"] = str(inv)
    data["inputs"]["observations"]["sources"] = [
        {"path": str(tmp / "obs" / "stations_*.csv"), "format": "generic"}]
    data["inputs"]["observations"]["window_hours"] = 3
    case.write_text(yaml.safe_dump(data, sort_keys=False))
    subprocess.run([sys.executable, str(REPO / "data_sample" / "make_sample_obs.py"),
                    "--config", str(case), "--hours", "9", "--out", str(tmp / "obs")],
                   check=True, capture_output=True, timeout=600)
    scen = tmp / "hz-nox.yaml"   # the sample scenarios start on day 2: beyond these leads
    scen.write_text("name: hz-nox\nmeasures:\n  - {name: industry-nox, regions: [Hangzhou], "
                    "sectors: [industry], pollutants: [NOx], cut: 0.3, from_hour: 0, "
                    "to_hour: 3, cost_per_tonne: 12000}\n")
    wf = tmp / "workflow.yaml"
    # no plan: its limits need a complete local day (the plan has its own tests)
    wf.write_text(yaml.safe_dump({
        "aqf_config": str(case), "results": str(tmp / "results"), "cycles": 2,
        "cycle_step_hours": 6, "cycle_lead_hours": 6, "lead_hours": 3,
        "scenarios": [str(scen)], "target": None, "max_map_days": 1,
        "verification_window_hours": 6, "bias_correct": True}))
    return case, wf


@pytest.mark.slow   # ~2-3 min; .ci/run runs it after the default suite
def test_tiny_two_cycle_dag_runs_and_reruns_only_what_changed(tmp_path):
    case, wf = _tiny_case(tmp_path)
    res = _snake("--cores", "2", "--configfile", str(wf), timeout=1500)
    assert res.returncode == 0, res.stderr[-6000:]
    root = tmp_path / "results"
    c1, c2 = "2026072000", "2026072006"
    for c in (c1, c2):
        assert (root / c / "bulletin" / "index.html").is_file()
        assert (root / c / "products" / "_SUCCESS").is_file()
    # scenarios on the full-lead (last) cycle only
    assert not (root / c1 / "scenarios").exists()
    scores = pd.read_csv(root / c2 / "scenarios" / "hz-nox" / "scores.csv")
    assert {"city", "lead_day", "pollutant", "base", "scenario", "change"} <= set(scores)
    # the warm cycle: analysis at its start, posterior inventory, verification of cycle 1
    assert (root / c2 / "analysis" / "initial_d01.nc").is_file()
    rep = pd.read_csv(root / c2 / "inversion" / "scaling.csv")
    assert {"region", "sector", "pollutant", "factor", "sigma_ln"} <= set(rep)
    assert (rep["factor"] > 0).all()
    skill = pd.read_csv(root / c2 / "verification" / "skill.csv")
    assert len(skill) > 0 and (skill["n"] > 0).all()
    # the warm cycle's station bias correction, learned from its verification of cycle 1
    corr = pd.read_csv(root / c2 / "bias_correction" / "corrected.csv")
    assert {"station", "time", "lead_hours", "pollutant", "fcst_raw", "bias", "fcst"} <= set(corr)
    assert (corr["fcst"] >= 0).all() and (corr["bias"] != 0).any()
    state = pd.read_csv(root / c2 / "bias_correction" / "bias_state.csv")
    assert len(state) > 0 and (state["n_updates"] > 0).all()
    assert not (root / c1 / "bias_correction").exists()
    totals = pd.read_csv(root / c2 / "emissions" / "emission_totals.csv")
    changed = totals[(totals["factor"] - 1.0).abs() > 1e-9]
    assert len(changed) > 0, "the posterior inventory did not reach the warm cycle"
    # nothing changed: nothing to do
    res = _snake("-n", "--cores", "2", "--configfile", str(wf))
    assert res.returncode == 0, res.stderr[-3000:]
    assert _jobs(res.stdout) == {}, res.stdout[-3000:]
    # the inventory changed (Snakemake >= 8 compares checksums: a bare touch is no change):
    # exactly its dependants rerun, not the grid or the observations
    import xarray as xr

    inv = xr.load_dataset(tmp_path / "inventory.nc")
    inv.attrs["history"] = "revised"
    inv.to_netcdf(tmp_path / "inventory.nc")
    res = _snake("-n", "--cores", "2", "--configfile", str(wf))
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = _jobs(res.stdout)
    assert jobs.get("forecast") == 2 and jobs.get("emissions") == 2, jobs
    assert jobs.get("met_check") == 2 and jobs.get("bulletin") == 2, jobs
    assert {"assimilate", "invert", "verification", "products", "scenario",
            "bias_correct"} <= set(jobs)
    assert not {"grid", "observations", "observations_day"} & set(jobs), jobs


def test_bias_correction_rules_only_when_enabled(tmp_path):
    """bias_correct: false (the default) plans no bias rule; true corrects every warm cycle
    from the verifications so far and the previous state, and verifies each corrected forecast
    the next cycle."""
    off = _snake("-n", "--cores", "2", "--config", f"results={tmp_path}", "cycles=3")
    assert off.returncode == 0, off.stderr[-3000:]
    jobs = _jobs(off.stdout)
    assert "bias_correct" not in jobs and "verification_corrected" not in jobs, jobs
    on = _snake("-n", "-p", "--cores", "2", "--config", f"results={tmp_path}", "cycles=3",
                "bias_correct=True")
    assert on.returncode == 0, on.stderr[-3000:]
    jobs = _jobs(on.stdout)
    # cycles 2 and 3 are warm: corrected; cycle 3 verifies cycle 2's corrected forecast
    assert jobs["bias_correct"] == 2 and jobs["verification_corrected"] == 1, jobs
    assert jobs["verification"] == 2 and jobs["forecast"] == 3, jobs
    cmds = [ln for ln in on.stdout.splitlines() if "aqforecast bias-correct" in ln]
    c2, c3 = "2026072100", "2026072200"
    first = next(c for c in cmds if f"{c2}/bias_correction " in c)
    second = next(c for c in cmds if f"{c3}/bias_correction " in c)
    assert "--state" not in first and f"--history {tmp_path}/{c2}/verification " in first
    assert (f"--history {tmp_path}/{c2}/verification {tmp_path}/{c3}/verification" in second
            and f"--state {tmp_path}/{c2}/bias_correction/bias_state.csv" in second), second
    ver = [ln for ln in on.stdout.splitlines() if "--corrected" in ln]
    assert len(ver) == 1 and f"--corrected {tmp_path}/{c2}/bias_correction " in ver[0], ver
    assert f"--obs {tmp_path}/{c3}/verification/obs/obs.nc" in ver[0], ver
