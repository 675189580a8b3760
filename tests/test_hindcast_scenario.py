"""The Beijing hindcast's red-alert scenario (config/hindcast_beijing/scenarios/) is valid for
the hindcast's config under the strict scenario reader and becomes the scaling table its
comments describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from aqforecast.config import load_config
from aqforecast.scenarios import read_scenario, scenario_to_scaling

REPO = Path(__file__).resolve().parents[1]
CASE = REPO / "config" / "hindcast_beijing"
POLS = ["SO2", "NOx", "CO", "NMVOC", "NH3", "PM25", "PMC"]


def test_red_alert_scenario_validates_against_the_hindcast_config():
    cfg = load_config(CASE / "config.yaml")
    regions = [r.name for r in cfg.regions]
    sc = read_scenario(CASE / "scenarios" / "red-alert-2016-12.yaml", regions,
                       cfg.tags.sectors, cfg.time.lead_hours)
    assert sc.name == "red-alert-2016-12"
    # the alert took effect at 20:00 Beijing time on 16 Dec 2016 = 12 UTC
    t = scenario_to_scaling(sc, "2016-12-16T12:00:00Z", regions)
    f = t.resolve(regions + ["outside"], list(cfg.tags.sectors), POLS, "2016-12-17T06:00:00Z")
    f = {(r, s, p): f[i, j, k] for i, r in enumerate(regions + ["outside"])
         for j, s in enumerate(cfg.tags.sectors) for k, p in enumerate(POLS)}
    assert f[("Beijing", "transport", "CO")] == pytest.approx(0.60)
    assert f[("Beijing", "transport", "NOx")] == pytest.approx(0.70)
    assert f[("Beijing", "industry", "SO2")] == pytest.approx(0.70)
    assert f[("Beijing", "industry", "PM25")] == pytest.approx(0.70 * 0.80)
    assert f[("Beijing", "residential", "PM25")] == pytest.approx(0.95)
    assert f[("Beijing", "power", "NOx")] == 1.0
    assert all(f[("outside", s, p)] == 1.0 for s in cfg.tags.sectors for p in POLS)
    # after the 72-h window (the run's end) nothing is cut
    after = t.resolve(regions + ["outside"], list(cfg.tags.sectors), POLS,
                      "2016-12-19T12:00:00Z")
    assert (after == 1.0).all()
