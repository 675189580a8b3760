"""Scenario scoring (issue 21): `aqforecast scenario` on the small case. Under donor-cell
advection the tags method equals the brute-force rerun for a primary-PM measure (round-off);
scores.csv has the contract columns; measures.csv the tonnes abated and cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from forecast_case import small_config

from aqforecast.cli import main
from aqforecast.config import read_yaml


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scen")
    case = small_config(tmp, hours=41, tags=True)
    data = read_yaml(case)
    data["time"]["start"] = str(data["time"]["start"])
    data["transport"] = {"advection_scheme": "donor_cell"}
    data["outputs"]["dtype"] = "float64"
    data["tags"]["dtype"] = "float64"
    case.write_text(yaml.safe_dump(data, sort_keys=False))
    run = tmp / "base"
    # from local midnight (16 UTC): lead day 1 is a whole local day
    assert main(["forecast", str(case), "--start", "2026-07-20T16", "--lead-hours", "24",
                 "--out", str(run), "--no-progress"]) == 0
    return case, run


@pytest.mark.slow
def test_tags_equal_brute_for_primary_pm_under_donor_cell(base, tmp_path):
    case, run = base
    sc = tmp_path / "res.yaml"
    sc.write_text("name: res\nmeasures:\n  - {name: res-pm, regions: all, sectors: "
                  "[residential, industry], pollutants: [PM25], cut: 0.5, "
                  "cost_per_tonne: 1000}\n")
    out = {}
    for method in ("tags", "brute"):
        out[method] = tmp_path / method
        assert main(["scenario", str(case), "--run", str(run), "--scenario", str(sc),
                     "--out", str(out[method]), "--method", method]) == 0
    cols = {"city", "lead_day", "date", "pollutant", "statistic", "base", "scenario",
            "change", "complete", "coverage"}
    t = pd.read_csv(out["tags"] / "scores.csv")
    b = pd.read_csv(out["brute"] / "scores.csv")
    assert cols <= set(t.columns)
    sel = lambda df: df[(df.pollutant == "PM2.5") & (df.lead_day == 1)].set_index("city")  # noqa
    tt, bb = sel(t), sel(b)
    assert tt["complete"].all() and len(tt) >= 1
    assert (bb["change"] < 0).all()  # the cut lowers PM2.5
    np.testing.assert_allclose(tt["change"], bb["change"], rtol=1e-6,
                               atol=1e-9 * float(bb["base"].abs().max()))
    m = pd.read_csv(out["tags"] / "measures.csv").iloc[0]
    assert m["tonnes_abated"] > 0 and m["cost"] == pytest.approx(1000 * m["tonnes_abated"])
    assert (out["brute"] / "run" / "conc_d01.nc").exists()
    assert (out["tags"] / "_SUCCESS").exists()


def test_scenario_errors(base, tmp_path, capsys):
    case, run = base
    sc = tmp_path / "bad.yaml"
    sc.write_text("name: bad\nmeasures:\n  - {name: a, regions: [Nowhere], cut: 0.1}\n")
    assert main(["scenario", str(case), "--run", str(run), "--scenario", str(sc), "--out",
                 str(tmp_path / "o")]) == 2
    assert "unknown region 'Nowhere'" in capsys.readouterr().err
    sc.write_text("name: bad\nmeasures:\n  - {name: a, cut: 0.1, to_hour: 48}\n")
    assert main(["scenario", str(case), "--run", str(run), "--scenario", str(sc), "--out",
                 str(tmp_path / "o")]) == 2
    assert "beyond the forecast's 24 h" in capsys.readouterr().err


TARGET = """name: pm-cut
limits:
  - {pollutant: PM2.5, statistic: daily_mean, max_change: %s, cities: all, days: [1]}
measures:
  - {name: res-pm, sectors: [residential], pollutants: [PM25], max_cut: 0.8,
     cost_per_tonne: 1000}
  - {name: ind-pm, sectors: [industry], pollutants: [PM25], max_cut: 0.8,
     cost_per_tonne: 3000}
  - {name: pow-so2, sectors: [power], pollutants: [SO2], max_cut: 0.5, cost_per_tonne: 500}
"""


@pytest.mark.slow
def test_plan_meets_the_target_at_least_cost_and_is_verified(base, tmp_path, capsys):
    case, run = base
    tgt = tmp_path / "target.yaml"
    tgt.write_text(TARGET % "-0.03")
    out = tmp_path / "plan"
    assert main(["plan", str(case), "--run", str(run), "--target", str(tgt), "--out",
                 str(out)]) == 0
    plan = pd.read_csv(out / "plan.csv").set_index("measure")
    lim = pd.read_csv(out / "limits.csv")
    assert (plan["cut"] <= plan["max_cut"] + 1e-9).all() and (plan["cut"] >= 0).all()
    assert (lim["predicted"] <= lim["bound"] * (1 + 1e-6)).all()  # met on its own model
    assert lim["binding"].any()  # a least-cost plan sits on a constraint
    # the verification rerun achieves what the linear model predicted (primary PM, donor-cell)
    ver = pd.read_csv(out / "verify.csv")
    np.testing.assert_allclose(ver["achieved_change"], ver["predicted_change"], rtol=1e-4,
                               atol=1e-6)
    assert ver["met"].all()
    # the plan is a valid scenario that the scorer reads
    sc_out = tmp_path / "score"
    assert main(["scenario", str(case), "--run", str(run), "--scenario",
                 str(out / "optimal_plan.yaml"), "--out", str(sc_out)]) == 0
    # an infeasible target names the city, the day and the bound
    tgt.write_text(TARGET % "-0.95")
    assert main(["plan", str(case), "--run", str(run), "--target", str(tgt), "--out",
                 str(tmp_path / "no"), "--no-verify"]) == 2
    err = capsys.readouterr().err
    assert "infeasible" in err and "lead day 1" in err and "PM2.5 daily_mean" in err, err


@pytest.mark.slow
def test_response_method_tracks_brute_for_secondary_pm_and_o3(base, tmp_path):
    """A NOx + NH3 cut in one city: the response surface (2 cached runs per region x precursor,
    no interactions) against the brute-force rerun for PM2.5 and O3 city statistics."""
    case, run = base
    sc = tmp_path / "sec.yaml"
    sc.write_text("name: sec\nmeasures:\n  - {name: nox, regions: [Hangzhou], sectors: all, "
                  "pollutants: [NOx], cut: 0.3}\n  - {name: nh3, regions: [Hangzhou], sectors: "
                  "[agriculture], pollutants: [NH3], cut: 0.4}\n")
    res = {}
    for method in ("response", "brute"):
        out = tmp_path / method
        assert main(["scenario", str(case), "--run", str(run), "--scenario", str(sc),
                     "--out", str(out), "--method", method]) == 0
        res[method] = pd.read_csv(out / "scores.csv")
    assert (run / "response").is_dir()  # cached for the next scenario
    for pol, stat in (("PM2.5", "daily_mean"), ("NO2", "daily_mean")):
        sel = lambda df: df[(df.pollutant == pol) & (df.statistic == stat) & df.complete  # noqa
                            ].set_index(["city", "lead_day"])["change"]
        r, b = sel(res["response"]), sel(res["brute"])
        assert len(b) >= 1 and (b.abs() > 0).all()
        err = (r - b).abs().max() / max(b.abs().max(), 1e-12)
        assert err < 0.25, (pol, r.to_dict(), b.to_dict())
