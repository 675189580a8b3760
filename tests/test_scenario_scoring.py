"""Scenario scoring (issue 21): `aqforecast scenario` on the small case. Under donor-cell
advection the tags method equals the brute-force rerun for a primary-PM measure (round-off),
for cities and stations; scores.csv has the contract columns, station rows as the products'
station table, exceedances.csv and timings; measures.csv the tonnes abated and cost; the plan
on the linear model and on the response surface, verified by a rerun; the pre/post evaluation
on a posterior inventory."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr
import pytest
from forecast_case import exact_small_config

from aqforecast.cli import main


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scen")
    case = exact_small_config(tmp, hours=41)
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
    tt, bb = sel(t[t.kind == "city"]), sel(b[b.kind == "city"])
    assert tt["complete"].all() and len(tt) >= 1
    assert (bb["change"] < 0).all()  # the cut lowers PM2.5
    np.testing.assert_allclose(tt["change"], bb["change"], rtol=1e-6,
                               atol=1e-9 * float(bb["base"].abs().max()))
    # the stations too (nearest cell): primary PM, tags = brute to round-off
    st = lambda df: df[(df.kind == "station") & (df.pollutant == "PM2.5") & df.complete  # noqa
                       ].set_index(["station", "lead_day"])["change"].sort_index()
    assert len(st(t)) >= 1 and (st(b) < 0).all()
    np.testing.assert_allclose(st(t), st(b), rtol=1e-6, atol=1e-9 * float(bb["base"].max()))
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
    """A NOx + NH3 cut in one city: the response surface (2 cached runs per region x sector x
    pollutant group, no interactions) against the brute-force rerun for PM2.5 and NO2 city
    statistics."""
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
                            & (df.kind == "city")].set_index(["city", "lead_day"])["change"]
        r, b = sel(res["response"]), sel(res["brute"])
        assert len(b) >= 1 and (b.abs() > 0).all()
        err = (r - b).abs().max() / max(b.abs().max(), 1e-12)
        assert err < 0.25, (pol, r.to_dict(), b.to_dict())


def test_scores_have_stations_exceedances_and_timings(base, tmp_path):
    """Tags method (seconds): station rows equal the products' station table (the same
    sampler), days over the standard, timings in timings.csv and _SUCCESS."""
    from aqforecast.products.pipeline import make_products

    case, run = base
    sc = tmp_path / "res.yaml"
    sc.write_text("name: res\nmeasures:\n  - {name: res-pm, regions: all, sectors: all, "
                  "pollutants: [PM25, PMC], cut: 0.9}\n")
    out = tmp_path / "tags"
    assert main(["scenario", str(case), "--run", str(run), "--scenario", str(sc), "--out",
                 str(out)]) == 0
    scores = pd.read_csv(out / "scores.csv", dtype={"station": str})
    assert {"city", "station"} == set(scores["kind"])
    assert {"index", "category"} <= set(scores.loc[scores.pollutant == "AQI", "statistic"])
    make_products(case, run, tmp_path / "products", maps=False)
    prod = pd.read_csv(tmp_path / "products" / "aqi_daily_station.csv", dtype={"station": str})
    mine = scores[(scores.kind == "station") & (scores.pollutant == "PM2.5")
                  & scores.complete].set_index(["station", "lead_day"])["base"]
    theirs = prod.set_index(["station", "lead_day"])["PM2.5"]
    both = pd.concat([mine, theirs], axis=1, join="inner")
    assert len(both) == len(mine) >= 1
    np.testing.assert_allclose(both.iloc[:, 0], both.iloc[:, 1], rtol=1e-5)   # 6 digits
    exc = pd.read_csv(out / "exceedances.csv", dtype={"station": str})
    assert {"days_avoided", "base_days_over", "scenario_days_over", "limit"} <= set(exc)
    pm = exc[(exc.kind == "city") & (exc.pollutant == "PM2.5")]
    assert (pm["limit"] == 60).all() and (pm["complete_days"] == 1).all()   # HJ 633-2026
    over = scores[(scores.kind == "city") & (scores.pollutant == "PM2.5") & scores.complete]
    assert pm["base_days_over"].sum() == int((over["base"] > 60).sum())
    timing = pd.read_csv(out / "timings.csv").set_index("phase")["seconds"]
    assert {"tags_estimate", "statistics", "total"} <= set(timing.index)
    man = json.loads((out / "_SUCCESS").read_text())
    assert "tags_estimate" in json.dumps(man)


def test_plan_linear_timing_and_model_columns(base, tmp_path):
    """The linear plan without its rerun (seconds): the model in limits.csv and the YAML, the
    timings (plan_s) in timings.csv and _SUCCESS."""
    case, run = base
    tgt = tmp_path / "target.yaml"
    tgt.write_text(TARGET % "-0.03")
    out = tmp_path / "plan"
    assert main(["plan", str(case), "--run", str(run), "--target", str(tgt), "--out", str(out),
                 "--no-verify", "--model", "linear"]) == 0
    lim = pd.read_csv(out / "limits.csv")
    assert (lim["model"] == "linear").all() and "predicted_change" in lim
    assert "linear model" in (out / "optimal_plan.yaml").read_text()
    timing = pd.read_csv(out / "timings.csv").set_index("phase")["seconds"]
    assert {"model", "solve", "plan_s", "total"} <= set(timing.index)
    assert timing["plan_s"] < 60
    assert '"model": "linear"' in (out / "_SUCCESS").read_text()


@pytest.mark.slow
def test_plan_on_the_response_surface_is_verified(base, tmp_path):
    """--model response: SLSQP on the surface of 2 perturbed runs per (region, sector,
    pollutant group) -- here whole-region measures --, bounds respected, the target met on the
    surface, and the rerun within 10 % of the predicted change."""
    case, run = base
    tgt = tmp_path / "target.yaml"
    tgt.write_text("""name: pm-cut-response
limits:
  - {pollutant: PM2.5, statistic: daily_mean, max_change: -0.02, cities: [Hangzhou], days: [1]}
measures:
  - {name: hz-pm, regions: [Hangzhou], sectors: all, pollutants: [PM25], max_cut: 0.8,
     cost_per_tonne: 1000}
  - {name: sx-pm, regions: [Shaoxing], sectors: all, pollutants: [PM25], max_cut: 0.8,
     cost_per_tonne: 500}
""")
    out = tmp_path / "plan"
    assert main(["plan", str(case), "--run", str(run), "--target", str(tgt), "--out",
                 str(out), "--model", "response"]) == 0
    plan = pd.read_csv(out / "plan.csv")
    assert ((plan["cut"] >= 0) & (plan["cut"] <= plan["max_cut"] + 1e-9)).all()
    ver = pd.read_csv(out / "verify.csv")
    assert (ver["model"] == "response").all()
    assert (ver["predicted"] <= ver["bound"] * (1 + 1e-6)).all()    # met on its own model
    assert (ver["change_error"].abs() <= 0.10).all(), ver.to_dict("records")
    timing = pd.read_csv(out / "timings.csv").set_index("phase")["seconds"]
    assert timing["plan_s"] < 60, timing.to_dict()


@pytest.mark.slow
def test_response_plan_with_one_sector_measures_is_verified(base, tmp_path):
    """The issue's check: one-sector candidates (residential PM, industrial PM, power SO2 in
    both cities; PM2.5 -3 % in both on day 1) on the response surface of per (region, sector,
    pollutant group) runs; the brute-force rerun achieves the predicted change within 10 % (the
    all-sector runs missed it by 7 and 15 %). The runs are counted, and a response scenario of
    the plan reuses them."""
    case, run = base
    tgt = tmp_path / "target.yaml"
    tgt.write_text(TARGET % "-0.03")
    out = tmp_path / "plan"
    assert main(["plan", str(case), "--run", str(run), "--target", str(tgt), "--out",
                 str(out), "--model", "response"]) == 0
    ver = pd.read_csv(out / "verify.csv")
    assert len(ver) == 2 and (ver["predicted"] <= ver["bound"] * (1 + 1e-6)).all()
    assert ver["met"].all()
    assert (ver["change_error"].abs() <= 0.10).all(), ver.to_dict("records")
    # 2 runs per (region, sector, pollutant set): 2 cities x 3 candidates
    for sector, pols in (("residential", "PM25"), ("industry", "PM25"), ("power", "SO2")):
        for lv in ("050", "100"):
            assert (run / "response" / f"Hangzhou_{sector}_{pols}_{lv}" / "_SUCCESS").exists()
    t = pd.read_csv(out / "timings.csv").set_index("phase")
    assert t.loc["response_runs", "runs"] + t.loc["response_runs_cached", "runs"] == 12
    assert t.loc["verify", "runs"] == 1
    man = json.loads((out / "_SUCCESS").read_text())
    assert sum(man["runs"][k] for k in ("response_runs", "response_runs_cached")) == 12
    # the plan scored as a scenario by the response method: its runs are reused, none made
    sc_out = tmp_path / "score"
    assert main(["scenario", str(case), "--run", str(run), "--scenario",
                 str(out / "optimal_plan.yaml"), "--out", str(sc_out), "--method",
                 "response"]) == 0
    t = pd.read_csv(sc_out / "timings.csv").set_index("phase")
    assert t.loc["response_runs", "runs"] == 0 and t.loc["response_runs_cached", "runs"] >= 2
    sc = pd.read_csv(sc_out / "scores.csv")
    sc = sc[(sc.kind == "city") & (sc.pollutant == "PM2.5") & (sc.lead_day == 1)
            & (sc.statistic == "daily_mean")].set_index("city")["change"]
    lim = pd.read_csv(out / "limits.csv").set_index("city")["predicted_change"]
    np.testing.assert_allclose(sc[lim.index], lim, rtol=1e-3)   # the same surface


@pytest.mark.slow
def test_pre_post_on_a_posterior_inventory(base, tmp_path):
    """--posterior with the tags method: the posterior doubles primary PM2.5 emissions, so
    under donor-cell a primary-PM cut changes PM2.5 twice as much after as before."""
    case, run = base
    sc = tmp_path / "res.yaml"
    sc.write_text("name: res\nmeasures:\n  - {name: res-pm, regions: all, sectors: "
                  "[residential, industry], pollutants: [PM25], cut: 0.5}\n")
    post = tmp_path / "posterior.csv"
    post.write_text("region,sector,pollutant,factor\n*,*,PM25,2.0\n")
    out = tmp_path / "prepost"
    assert main(["scenario", str(case), "--run", str(run), "--scenario", str(sc), "--out",
                 str(out), "--posterior", str(post)]) == 0
    pp = pd.read_csv(out / "pre_post.csv")
    pm = pp[(pp.pollutant == "PM2.5") & (pp.statistic == "daily_mean") & pp.complete]
    assert len(pm) >= 1 and (pm["change_before"] < 0).all()
    np.testing.assert_allclose(pm["change_after"], 2 * pm["change_before"], rtol=1e-4)
    assert (pm["base_after"] > pm["base_before"]).all()
    m0 = pd.read_csv(out / "measures.csv")["tonnes_abated"].iloc[0]
    m1 = pd.read_csv(out / "posterior" / "measures.csv")["tonnes_abated"].iloc[0]
    assert m1 == pytest.approx(2 * m0, rel=1e-9)


def test_tags_estimate_between_tag_times(tmp_path):
    """Tags written every 3 h, concentrations every hour: every hour's concentration moves by
    its interpolated tag shares (earlier, only the tag hours moved, so daily-mean changes were
    1/3 of the rerun's on the sample case's 3-hourly tags)."""
    from aqforecast.emissions.scaling import ScalingTable
    from aqforecast.scenarios.score import _share_weights, _tags_estimate

    hours = pd.date_range("2026-07-20T00", periods=7, freq="h")
    tag_hours = hours[::3]
    ny, nx = 2, 3
    rng = np.random.default_rng(1)
    c = rng.uniform(10.0, 20.0, (len(hours), 1, ny, nx))
    share_hz = np.linspace(0.2, 0.5, len(tag_hours))  # Hangzhou industry's share, 00/03/06
    tags = np.zeros((2, len(tag_hours), 1, ny, nx))
    at = hours.get_indexer(tag_hours)
    tags[0] = share_hz[:, None, None, None] * c[at]
    tags[1] = c[at] - tags[0]
    xr.Dataset({"PPM25": (("time", "lev", "y", "x"), c)},
               coords={"time": hours, "lev": [0.99]}).to_netcdf(tmp_path / "conc_d01.nc")
    xr.Dataset({"PPM25": (("tag", "time", "lev", "y", "x"), tags)},
               coords={"time": tag_hours, "lev": [0.99],
                       "tag_region": ("tag", ["Hangzhou", "outside"]),
                       "tag_sector": ("tag", ["industry", "industry"])}
               ).to_netcdf(tmp_path / "tags_d01.nc")
    table = ScalingTable({("Hangzhou", "industry", "PM25"): 0.0})
    out = _tags_estimate(tmp_path, tmp_path / "est", table, ["d01"])
    got = xr.open_dataset(out / "conc_d01.nc")["PPM25"].values
    # the share interpolated linearly in time between 00, 03 and 06
    share = np.interp(np.arange(len(hours)), [0, 3, 6], share_hz)
    np.testing.assert_allclose(got, c * (1.0 - share)[:, None, None, None], rtol=1e-12)
    lo, hi, w = _share_weights(tag_hours, hours)
    assert list(lo) == [0, 0, 0, 1, 1, 1, 2] and list(hi) == [0, 1, 1, 1, 2, 2, 2]
    np.testing.assert_allclose(w, [1, 1 / 3, 2 / 3, 1, 1 / 3, 2 / 3, 1])
