"""The response surface's perturbed runs (issue 21): one per region x sector x pollutant group
(x window) a scenario or plan acts on and cut level, cached under BASE_RUN/response/ by that key and reused;
the effective cuts of a unit from the emission model. No model run: the runs are faked (the
rerun itself is the forecast's, tested elsewhere)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from forecast_case import small_config

from aqforecast.config import load_config
from aqforecast.emissions.inventory import POLLUTANTS
from aqforecast.scenarios import response as rs
from aqforecast.scenarios.schema import Measure, Scenario
from aqforecast.scenarios.timing import PhaseTimer

REGIONS = ["Hangzhou", "Shaoxing"]


def test_units_are_region_sector_pollutant_group():
    ms = [Measure(name="ind", regions=["Hangzhou"], sectors=["industry", "power"],
                  pollutants=["NOx", "SO2"], cut=0.3),
          Measure(name="res", regions="all", sectors=["residential"], pollutants=["PM10"],
                  cut=0.5),
          Measure(name="nox", regions=["Hangzhou"], pollutants=["NOx"], cut=0.2),
          Measure(name="all", regions=["Shaoxing"], sectors=["transport"], cut=0.1),
          Measure(name="off", regions=["Shaoxing"], cut=0.0),            # changes nothing
          Measure(name="cand", regions=["Shaoxing"], sectors=["power"], pollutants=["SO2"],
                  max_cut=0.4)]                                          # a plan's candidate
    units = rs.touched_units(ms, REGIONS)
    U = rs.Unit
    assert rs.touched_units([Measure(name="w", regions=["Hangzhou"], pollutants=["NOx"],
                                     cut=0.3, from_hour=6, to_hour=24)], REGIONS, lead=24) \
        == [U("Hangzhou", "*", ("NOx",), 6.0, None)]   # a window to the run's end
    assert rs.run_dir("B", U("Hangzhou", "industry", ("NOx",), 24.0, 72.0), 0.5).name == \
        "Hangzhou_industry_NOx_h24-72_050"
    assert rs.run_dir("B", U("Hangzhou", "*", ("NOx",), 6.0, None), 1.0).name == \
        "Hangzhou_all_NOx_h6-end_100"
    assert units == [U("Hangzhou", "industry", ("SO2", "NOx")),
                     U("Hangzhou", "power", ("SO2", "NOx")),
                     U("Hangzhou", "residential", ("PM25", "PMC")),
                     U("Shaoxing", "residential", ("PM25", "PMC")),
                     U("Hangzhou", "*", ("NOx",)),
                     U("Shaoxing", "transport", tuple(POLLUTANTS)),
                     U("Shaoxing", "power", ("SO2",))]
    # the run directories: keyed by region, sector, pollutant set and level; a one-pollutant
    # all-sector unit keeps the earlier per (region, precursor) name
    names = [rs.run_dir("B", u, lv).name for u in units[:1] + units[4:6] for lv in rs.LEVELS]
    assert names == ["Hangzhou_industry_SO2+NOx_050", "Hangzhou_industry_SO2+NOx_100",
                     "Hangzhou_NOx_050", "Hangzhou_NOx_100",
                     "Shaoxing_transport_all_050", "Shaoxing_transport_all_100"]
    assert rs.run_dir("B", ("Hangzhou", "NOx"), 0.5).name == "Hangzhou_NOx_050"
    # names that needed cleaning get a hash of the key: no two keys share a directory
    odd = [rs.Unit("杭州 a", "industry", ("NOx",)), rs.Unit("杭州_a", "industry", ("NOx",))]
    assert len({rs.run_dir("B", u, 0.5) for u in odd}) == 2
    # the unit's run cuts exactly its sources
    t = units[0].table(0.5)
    f = t.resolve(REGIONS, ["industry", "power"], POLLUTANTS)
    assert f[0, 0, POLLUTANTS.index("NOx")] == 0.5 and f[0, 0, POLLUTANTS.index("SO2")] == 0.5
    assert f[0, 1].min() == 1.0 and f[1].min() == 1.0 and f[0, 0, POLLUTANTS.index("CO")] == 1


@pytest.fixture
def fake_runs(monkeypatch):
    """Replace the perturbed rerun by writing its _SUCCESS (and key file); record the calls."""
    made = []

    def task(cfg, base, unit, level, out, cycle_start=None):
        from pathlib import Path

        made.append((unit, level))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "_SUCCESS").write_text("{}")
        (Path(out) / rs.KEY_FILE).write_text(json.dumps(rs._key(unit, level)))
        return out
    monkeypatch.setattr(rs, "_response_task", task)
    return made


def test_runs_are_cached_by_key_and_reused(tmp_path, fake_runs):
    base = tmp_path / "base"
    U = rs.Unit
    a, b = U("Hangzhou", "industry", ("NOx",)), U("Hangzhou", "residential", ("PM25", "PMC"))
    assert rs.response_runs(None, base, [a, b, a]) == 4          # 2 levels x 2 units
    assert sorted(p.name for p in (base / "response").iterdir()) == [
        "Hangzhou_industry_NOx_050", "Hangzhou_industry_NOx_100",
        "Hangzhou_residential_PM25+PMC_050", "Hangzhou_residential_PM25+PMC_100"]
    assert json.loads((rs.run_dir(base, a, 1.0) / rs.KEY_FILE).read_text()) == {
        "region": "Hangzhou", "sector": "industry", "pollutants": ["NOx"], "level": 1.0}
    # a second scenario or plan on the same base reuses them; a new sector or pollutant set
    # of the same region is a new unit
    c, d = U("Hangzhou", "power", ("NOx",)), U("Hangzhou", "industry", ("NOx", "NMVOC"))
    assert rs.response_runs(None, base, [a, b]) == 0
    assert rs.response_runs(None, base, [a, c, d]) == 4
    assert fake_runs[-4:] == [(c, 0.5), (c, 1.0), (d, 0.5), (d, 1.0)]
    # a run made before the key file (the per (region, precursor) layout) is reused ...
    old = rs.run_dir(base, ("Shaoxing", "SO2"), 0.5)
    for lv in rs.LEVELS:
        rs.run_dir(base, ("Shaoxing", "SO2"), lv).mkdir(parents=True)
        (rs.run_dir(base, ("Shaoxing", "SO2"), lv) / "_SUCCESS").write_text("{}")
    assert old.name == "Shaoxing_SO2_050"
    assert rs.response_runs(None, base, [U("Shaoxing", "*", ("SO2",))]) == 0
    # ... but not an unfinished run, nor one whose key file names another key
    (rs.run_dir(base, b, 0.5) / "_SUCCESS").unlink()
    (rs.run_dir(base, a, 0.5) / rs.KEY_FILE).write_text(json.dumps(rs._key(c, 0.5)))
    assert rs.response_runs(None, base, [a, b]) == 2
    assert fake_runs[-2:] == [(a, 0.5), (b, 0.5)]


def test_coefficients_count_the_runs_made_and_reused(tmp_path, fake_runs, monkeypatch):
    """The quadratic through the cached runs, and the run counts in timings.csv."""
    key = pd.MultiIndex.from_tuples([("Hangzhou", 1)], names=["city", "lead_day"])
    # base 10; cut 50 % -> 9, cut 100 % -> 7.5: dS = -2.5 x + 0.5 x^2 ... solve it back
    values = {"base": 10.0, "050": 9.0, "100": 7.5}
    monkeypatch.setattr(rs, "KEYS", ["city", "lead_day"])
    monkeypatch.setattr(rs, "city_daily", lambda cfg, run, cities, stations=None: pd.DataFrame(
        {"value": [values["base" if run.name == "base" else run.name[-3:]]]},
        index=key).reset_index())
    base = tmp_path / "base"
    unit = rs.Unit("Hangzhou", "industry", ("NOx",))
    timer = PhaseTimer()
    b, coef = rs.response_coefficients(None, base, [unit], {}, timer=timer)
    a, bq = (float(s.iloc[0]) for s in coef[unit])
    assert a * 0.5 + bq * 0.25 == pytest.approx(-1.0) and a + bq == pytest.approx(-2.5)
    assert timer.runs == {"response_runs": 2, "response_runs_cached": 0}
    timer2 = PhaseTimer()
    rs.response_coefficients(None, base, [unit], {}, timer=timer2)
    assert timer2.runs == {"response_runs": 0, "response_runs_cached": 2}
    timer2.write(tmp_path / "timings.csv")
    t = pd.read_csv(tmp_path / "timings.csv").set_index("phase")
    assert list(t.columns) == ["seconds", "runs"]
    assert t.loc["response_runs_cached", "runs"] == 2 and t.loc["response_runs", "runs"] == 0
    assert np.isnan(t.loc["total", "runs"])


def test_effective_cuts_per_unit(tmp_path):
    """W and a scenario's effective cuts from the emission model: a whole-run measure cuts its
    own units by its cut and no other; a window a fraction of it; two measures on one unit
    multiply."""
    cfg = load_config(small_config(tmp_path, hours=2))
    start, lead = np.datetime64("2026-07-20T16:00:00"), 6
    res = Measure(name="res", sectors=["residential"], pollutants=["PM25"], max_cut=0.8)
    win = Measure(name="win", regions=["Hangzhou"], sectors=["industry"], pollutants=["NOx"],
                  max_cut=0.5, from_hour=2, to_hour=4)
    units = rs.touched_units([res, win], REGIONS)
    assert len(units) == 3
    assert units[2] == rs.Unit("Hangzhou", "industry", ("NOx",), 2.0, 4.0)
    W = rs.unit_weights(cfg, [res, win], start, lead, units)
    # the effective cut of a windowed unit is relative to its window's emissions
    np.testing.assert_allclose(W, [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], atol=1e-12)
    # the same cut over a longer window of that unit: a fraction of it (2 of 6 hours)
    longer = rs.Unit("Hangzhou", "industry", ("NOx",), 0.0, 6.0)
    w = rs.unit_weights(cfg, [win], start, 12, [longer, units[2]])
    assert w[0, 0] == 0.0 and w[0, 1] == pytest.approx(1.0)   # not the measure's own unit
    x = rs._fractions(rs._emission_model(cfg), [units[2].table(1.0, start)], start, 12,
                      [longer], None)
    assert 0.1 < x[0, 0] < 0.6
    twice = Scenario(name="t", measures=[
        Measure(name="a", regions=["Hangzhou"], sectors=["residential"], pollutants=["PM25"],
                cut=0.5),
        Measure(name="b", regions=["Hangzhou"], sectors=["residential"], pollutants=["PM25"],
                cut=0.5)])
    u, x = rs.scenario_cuts(cfg, twice, start, lead)
    assert u == [rs.Unit("Hangzhou", "residential", ("PM25",))]
    np.testing.assert_allclose(x, [0.75], rtol=1e-12)
