"""Several scenarios at once (issue 21): brute-force reruns in parallel through dask with 2
worker processes, DIR/<name>/ per scenario and DIR/summary.csv, city and station rows, days over
the standard, timings; and the pre/post evaluation: the same scenarios on a later cycle's
inverted inventory (--posterior), whose base equals a forecast made with that inventory.
Short lead (3 h, no chemistry, no tags) to keep it to seconds per run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from forecast_case import small_config

from aqforecast.cli import main
from aqforecast.config import read_yaml

HOURS = 3
REQUIRED = {"city", "lead_day", "date", "pollutant", "statistic", "base", "scenario", "change",
            "complete", "kind", "station"}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    cfg = small_config(tmp, hours=HOURS, tags=False, chemistry=False)
    data = read_yaml(cfg)
    data["time"]["start"] = str(data["time"]["start"])
    data["outputs"]["dtype"] = "float64"        # compare runs to round-off ...
    # ... which needs donor-cell: Walcek's limiter switches on strict comparisons, so a 1-ulp
    # change of one emission factor moves PPM25 by ~0.2 % of its maximum in 3 h (measured)
    data["transport"] = {"advection_scheme": "donor_cell"}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    p0 = tmp / "p0.csv"      # the base run's own scaling (yesterday's posterior, say)
    p0.write_text("region,sector,pollutant,factor\n*,*,NOx,0.8\nHangzhou,industry,PM25,1.5\n")
    base = tmp / "base"
    assert main(["forecast", str(cfg), "--lead-hours", str(HOURS), "--scaling", str(p0),
                 "--no-tags", "--out", str(base), "--no-progress"]) == 0
    return tmp, cfg, base


def _scenarios(tmp):
    a, b = tmp / "a.yaml", tmp / "b.yaml"
    a.write_text("name: pm cut\nmeasures:\n  - {name: pm, regions: all, sectors: all, "
                 "pollutants: [PM25], cut: 0.5, cost_per_tonne: 100}\n")
    b.write_text("name: so2-cut\nmeasures:\n  - {name: so2, regions: [Hangzhou], sectors: all, "
                 "pollutants: [SO2], cut: 0.4, to_hour: 2}\n")
    return a, b


def _pm(run):
    with xr.open_dataset(run / "conc_d01.nc") as ds:
        return ds["PPM25"].values


def test_several_brute_scenarios_through_dask_with_posterior(case):
    tmp, cfg, base = case
    a, b = _scenarios(tmp)
    post = tmp / "posterior.csv"   # a later cycle's inverted inventory
    post.write_text("region,sector,pollutant,factor,sigma_ln\nHangzhou,*,PM25,0.6,0.2\n"
                    "*,power,SO2,1.3,0.3\n")
    out = tmp / "out"
    assert main(["scenario", str(cfg), "--run", str(base), "--scenario", str(a), "--scenario",
                 str(b), "--out", str(out), "--method", "brute", "--workers", "2",
                 "--posterior", str(post)]) == 0
    man = json.loads((out / "_SUCCESS").read_text())
    meta = man.get("meta", man)
    assert "brute_runs" in json.dumps(meta) and '"workers": 2' in json.dumps(meta)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["scenario_name"]) == {"pm cut", "so2-cut"}
    for d in ("pm_cut", "so2-cut"):
        sd = out / d
        for f in ("scores.csv", "exceedances.csv", "measures.csv", "scaling.csv",
                  "timings.csv", "_SUCCESS", "run/_SUCCESS", "posterior/scores.csv",
                  "posterior/exceedances.csv", "posterior/measures.csv", "pre_post.csv"):
            assert (sd / f).exists(), sd / f
        sc = pd.read_csv(sd / "scores.csv")
        assert REQUIRED <= set(sc.columns)
        assert {"city", "station"} == set(sc["kind"])
        assert sc.loc[sc.kind == "station", "station"].notna().all()
        assert "rerun" not in pd.read_csv(sd / "timings.csv")["phase"].tolist()  # run by dask
        pp = pd.read_csv(sd / "pre_post.csv")
        assert {"base_before", "change_before", "base_after", "change_after"} <= set(pp)
    # the scenario runs: the PM cut lowers primary PM in every cell (donor-cell is linear and
    # positive) and in total
    pm_base, pm_a = _pm(base), _pm(out / "pm_cut" / "run")
    assert (pm_a <= pm_base + 1e-12 * pm_base.max()).all() and pm_a.sum() < 0.97 * pm_base.sum()
    # the posterior base is the forecast made with the posterior inventory (not on top of P0)
    direct = tmp / "direct"
    assert main(["forecast", str(cfg), "--lead-hours", str(HOURS), "--scaling", str(post),
                 "--no-tags", "--out", str(direct), "--no-progress"]) == 0
    # (P0 x 1/P0 = 1 to round-off)
    np.testing.assert_allclose(_pm(out / "posterior_base"), _pm(direct), rtol=1e-10,
                               atol=1e-12 * _pm(direct).max())
    assert not np.allclose(_pm(direct), pm_base, rtol=1e-3)      # and differs from the base
    # and the scenario on top of it lowers it again, by half of primary PM
    pm_post_a = _pm(out / "pm_cut" / "posterior" / "run")
    assert (pm_post_a <= _pm(direct) + 1e-12 * pm_base.max()).all()
    assert pm_post_a.sum() < 0.97 * _pm(direct).sum()
    m0 = pd.read_csv(out / "pm_cut" / "measures.csv")["tonnes_abated"].iloc[0]
    m1 = pd.read_csv(out / "pm_cut" / "posterior" / "measures.csv")["tonnes_abated"].iloc[0]
    assert m0 > 0 and m1 > 0 and m1 != pytest.approx(m0)   # tonnes of the other inventory


def test_batch_errors(case, capsys):
    tmp, cfg, base = case
    a, _ = _scenarios(tmp)
    assert main(["scenario", str(cfg), "--run", str(base), "--scenario", str(a), "--scenario",
                 str(a), "--out", str(tmp / "dup")]) == 2
    assert "pm_cut given more than once" in capsys.readouterr().err
    assert main(["scenario", str(cfg), "--run", str(base), "--scenario", str(a), "--out",
                 str(tmp / "r"), "--method", "response", "--posterior", str(a)]) == 2
    assert "--posterior" in capsys.readouterr().err
    bad = tmp / "bad_posterior.csv"
    bad.write_text("region,sector,pollutant,factor\nNowhere,*,PM25,0.5\n")
    assert main(["scenario", str(cfg), "--run", str(base), "--scenario", str(a), "--out",
                 str(tmp / "r"), "--posterior", str(bad)]) == 2
    assert "Nowhere" in capsys.readouterr().err
    assert not (tmp / "r").exists() and not (tmp / "dup").exists()
