"""Scenario YAML (issue 21, first part): schema, checks against the run with file/key/line
errors, and the scaling table a scenario becomes (composition, windows, PM10, all)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aqforecast.config import ConfigError, load_config
from aqforecast.emissions.scaling import read_scaling_table, write_scaling_table
from aqforecast.scenarios import read_scenario, scenario_to_scaling

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "config" / "scenarios").glob("*.yaml"))
REGIONS = ["Hangzhou", "Jiaxing", "Huzhou", "Shaoxing", "Ningbo"]
SECTORS = ["industry", "power", "residential", "transport", "agriculture"]
POLS = ["SO2", "NOx", "CO", "NMVOC", "NH3", "PM25", "PMC"]
T0 = "2026-07-20T00:00:00Z"


def _at(table, hour):
    return table.resolve(REGIONS + ["outside"], SECTORS, POLS,
                         f"2026-07-{20 + hour // 24:02d}T{hour % 24:02d}:00:00Z")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_are_valid_against_the_sample_config(path):
    cfg = load_config(REPO / "config" / "config.yaml")
    sc = read_scenario(path, [r.name for r in cfg.regions], cfg.tags.sectors,
                       cfg.time.lead_hours)
    table = scenario_to_scaling(sc, cfg.time.start, [r.name for r in cfg.regions])
    assert len(table) >= 1
    assert "measure" in table.extra_columns


def test_single_measure_window_edges():
    sc = read_scenario(REPO / "config" / "scenarios" / "hangzhou-industry-nox.yaml", REGIONS,
                       SECTORS, 360)
    t = scenario_to_scaling(sc, T0, REGIONS)
    r, s, p = REGIONS.index("Hangzhou"), SECTORS.index("industry"), POLS.index("NOx")
    assert _at(t, 23)[r, s, p] == 1.0            # before from_hour
    assert _at(t, 24)[r, s, p] == pytest.approx(0.7)  # [from, to)
    assert _at(t, 95)[r, s, p] == pytest.approx(0.7)
    assert _at(t, 96)[r, s, p] == 1.0            # to_hour is excluded
    f = _at(t, 30).copy()
    f[r, s, p] = 1.0
    assert (f == 1.0).all()                       # nothing else touched


def test_composition_all_regions_and_pm10(tmp_path):
    p = tmp_path / "mix.yaml"
    p.write_text("""name: mix
measures:
  - {name: a, regions: all, sectors: [residential], pollutants: [PM10], cut: 0.5}
  - {name: b, regions: [Hangzhou, outside], sectors: all, pollutants: all, scale: 0.8,
     from_hour: 12, to_hour: 36}
""")
    t = scenario_to_scaling(read_scenario(p, REGIONS, SECTORS, 48), T0, REGIONS)
    res, pm, pmc = SECTORS.index("residential"), POLS.index("PM25"), POLS.index("PMC")
    hz, out = REGIONS.index("Hangzhou"), len(REGIONS)
    f = _at(t, 20)
    assert f[hz, res, pm] == pytest.approx(0.4) and f[hz, res, pmc] == pytest.approx(0.4)
    assert f[REGIONS.index("Ningbo"), res, pm] == pytest.approx(0.5)
    assert f[out, res, pm] == pytest.approx(0.8)  # "all" regions exclude outside ...
    assert _at(t, 40)[out, res, pm] == 1.0        # ... and b is over at 36 h
    assert f[hz, SECTORS.index("power"), POLS.index("SO2")] == pytest.approx(0.8)
    # the table round-trips through the forecast's --scaling file
    path = write_scaling_table(t, tmp_path / "s.csv")
    back = read_scaling_table(path)
    assert (back.resolve(REGIONS, SECTORS, POLS, "2026-07-20T20:00Z") ==
            t.resolve(REGIONS, SECTORS, POLS, "2026-07-20T20:00Z")).all()


def test_plan_cuts_override_the_amounts():
    sc = read_scenario(REPO / "config" / "scenarios" / "emergency-plan.yaml", REGIONS,
                       SECTORS, 360)
    t = scenario_to_scaling(sc, T0, REGIONS, cuts={"nh3": 0.5, "traffic": 0.0})
    f = _at(t, 30)
    assert f[REGIONS.index("Jiaxing"), SECTORS.index("agriculture"), POLS.index("NH3")] == \
        pytest.approx(0.5)
    assert f[REGIONS.index("Shaoxing"), SECTORS.index("transport"), POLS.index("NOx")] == 1.0


@pytest.mark.parametrize("measure, expect", [
    ("{name: a, regions: [Hangzhuo], cut: 0.1}", "measures[0].regions[0] (line 3): unknown "
                                                 "region 'Hangzhuo'"),
    ("{name: a, cut: 1.5}", "measures[0].cut (line 3): Input should be less than or equal to 1"),
    ("{name: a, cut: 0.1, to_hour: 400}", "measures[0].to_hour (line 3): 400 lies beyond"),
    ("{name: a, cut: 0.1, cutt: 0.2}", "measures[0].cutt (line 3): unknown key"),
    ("{name: a, cut: 0.1, scale: 0.2}", "give cut or scale, not both"),
    ("{name: a, cut: 0.1, from_hour: 30, to_hour: 20}", "to_hour (20) must be after"),
    ("{name: a, sectors: [steel], cut: 0.1}", "unknown sector 'steel'"),
    ("{name: a, pollutants: [NOX], cut: 0.1}", "unknown pollutant 'NOX'"),
    ("{name: a}", "measures[0] (line 3): measure 'a' needs cut"),
])
def test_malformed_scenarios_name_file_key_and_line(tmp_path, measure, expect):
    p = tmp_path / "bad.yaml"
    p.write_text(f"name: bad\nmeasures:\n  - {measure}\n")
    with pytest.raises(ConfigError) as info:
        read_scenario(p, REGIONS, SECTORS, 360)
    assert str(p) in str(info.value) and expect in str(info.value), str(info.value)


def test_duplicate_measure_names_and_keys(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("name: d\nmeasures:\n  - {name: a, cut: 0.1}\n  - {name: a, cut: 0.2}\n")
    with pytest.raises(ConfigError, match="measure names must be unique: a"):
        read_scenario(p, REGIONS, SECTORS, 360)
    p.write_text("name: d\nname: e\nmeasures:\n  - {name: a, cut: 0.1}\n")
    with pytest.raises(ConfigError, match="duplicate key 'name'"):
        read_scenario(p, REGIONS, SECTORS, 360)


@pytest.mark.parametrize("body, expect", [
    ("limits:\n  - {pollutant: PM2.5, max: 75, cities: [Hangzhoo], days: [1]}\n"
     "measures:\n  - {name: a, max_cut: 0.5}\n", "limits[0].cities[0] (line 3): unknown city"),
    ("limits:\n  - {pollutant: PM2.5, max: 75, max_change: -0.1, days: [1]}\n"
     "measures:\n  - {name: a, max_cut: 0.5}\n", "give max or max_change"),
    ("limits:\n  - {pollutant: PM2.5, max: 75, days: [1]}\n"
     "measures:\n  - {name: a, cut: 0.5}\n", "needs max_cut"),
    ("limits:\n  - {pollutant: O3, max: 160, days: [1]}\n"
     "measures:\n  - {name: a, max_cut: 0.5}\n", "O3 limits use mda8"),
    ("limits:\n  - {pollutant: PM2.5, max: 75, days: [0]}\n"
     "measures:\n  - {name: a, max_cut: 0.5}\n", "lead days start at 1"),
])
def test_malformed_targets(tmp_path, body, expect):
    from aqforecast.scenarios import read_target

    p = tmp_path / "t.yaml"
    p.write_text("name: t\n" + body)
    with pytest.raises(ConfigError) as info:
        read_target(p, REGIONS, SECTORS, 360)
    assert str(p) in str(info.value) and expect in str(info.value), str(info.value)


def test_example_target_is_valid():
    from aqforecast.scenarios import read_target

    t = read_target(REPO / "config" / "targets" / "hangzhou-pm-episode.yaml", REGIONS, SECTORS,
                    360)
    assert t.limits[0].days == [2, 3] and len(t.measures) == 4
