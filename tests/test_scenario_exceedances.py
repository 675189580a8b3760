"""Days over the standard avoided (issue 21) on a crafted scores table, and the posterior
inventory a pre/post evaluation reruns the base with (table algebra, no runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aqforecast.emissions.scaling import ScalingTable
from aqforecast.io import InputFileError
from aqforecast.scenarios.exceedances import daily_limit, days_over_standard
from aqforecast.scenarios.prepost import posterior_extra


def _row(city, day, pol, stat, base, scen, complete=True, date="2026-07-2{}", kind="city",
         station=""):
    return {"city": city, "kind": kind, "station": station, "lead_day": day,
            "date": date.format(day), "pollutant": pol, "statistic": stat, "base": base,
            "scenario": scen, "change": scen - base, "complete": complete}


def test_days_over_standard_avoided_and_added():
    rows = [
        # PM2.5 (limit 60 under HJ 633-2026, in force from 2026-03-01)
        _row("Hangzhou", 1, "PM2.5", "daily_mean", 70.0, 58.0),   # avoided
        _row("Hangzhou", 2, "PM2.5", "daily_mean", 90.0, 65.0),   # still over
        _row("Hangzhou", 3, "PM2.5", "daily_mean", 60.0, 59.0),   # at the limit: not over
        _row("Hangzhou", 4, "PM2.5", "daily_mean", 99.0, np.nan, complete=False),  # not counted
        # O3 MDA8 (limit 160): a NOx cut raises O3 on day 2 (a day added)
        _row("Hangzhou", 1, "O3", "mda8", 170.0, 150.0),
        _row("Hangzhou", 2, "O3", "mda8", 155.0, 165.0),
        # AQI above 100 is a day over the standard
        _row("Hangzhou", 1, "AQI", "index", 101.0, 99.0),
        _row("Hangzhou", 1, "AQI", "category", 3.0, 2.0),          # no limit: left out
        _row("Hangzhou", 1, "O3", "daily_max", 250.0, 100.0),      # no daily limit: left out
        # a station, the 2012 limits (75) before 2026-03-01
        _row("杭州", 1, "PM2.5", "daily_mean", 80.0, 74.0, date="2025-12-0{}", kind="station",
             station="1223A"),
        _row("杭州", 2, "PM2.5", "daily_mean", 70.0, 69.0, date="2025-12-0{}", kind="station",
             station="1223A"),
    ]
    t = days_over_standard(pd.DataFrame(rows)).set_index(["kind", "station", "pollutant",
                                                          "statistic"])
    pm = t.loc[("city", "", "PM2.5", "daily_mean")]
    assert pm["limit"] == 60 and pm["standard"] == "HJ633-2026"
    assert (pm["complete_days"], pm["base_days_over"], pm["scenario_days_over"],
            pm["days_avoided"], pm["days_added"]) == (3, 2, 1, 1, 0)
    assert pm["avoided_lead_days"] == "1"
    o3 = t.loc[("city", "", "O3", "mda8")]
    assert (o3["limit"], o3["days_avoided"], o3["days_added"]) == (160, 1, 1)
    aqi = t.loc[("city", "", "AQI", "index")]
    assert (aqi["limit"], aqi["days_avoided"]) == (100, 1)
    st = t.loc[("station", "1223A", "PM2.5", "daily_mean")]
    assert (st["limit"], st["standard"], st["days_avoided"], st["base_days_over"]) == \
        (75, "HJ633-2012", 1, 1)
    assert len(t) == 4                     # category and daily max have no daily limit
    # a configured standard wins over the date; EPA still counts China's grade-II days
    assert daily_limit("PM2.5", "daily_mean", "2026-07-21", "HJ633-2012") == 75
    assert daily_limit("PM2.5", "daily_mean", "2026-07-21", "EPA-2024") == 60
    assert np.isnan(daily_limit("AQI", "category", "2026-07-21"))


def test_posterior_inventory_replaces_the_base_scaling():
    """Rerunning the base (made with P0) with posterior_extra(P1, P0) multiplies P0 by it:
    the product is P1 at every hour, windows included."""
    regions, sectors = ["Hangzhou", "Ningbo"], ["industry", "power"]
    pols = ["SO2", "NOx", "PM25"]
    p0 = ScalingTable.from_rows([
        {"region": "*", "sector": "*", "pollutant": "NOx", "factor": 0.8},
        {"region": "Hangzhou", "sector": "industry", "pollutant": "PM25", "factor": 1.5,
         "start": "2026-07-20T18:00Z", "end": "2026-07-21T06:00Z"}], source="p0.csv")
    p1 = ScalingTable.from_rows([
        {"region": "Hangzhou", "sector": "*", "pollutant": "PM25", "factor": 0.6,
         "sigma_ln": 0.2},
        {"region": "*", "sector": "power", "pollutant": "SO2", "factor": 1.3}],
        source="posterior.csv")
    extra = posterior_extra(p1, p0)
    after = ScalingTable.concat([p0, extra])
    for t in ("2026-07-20T16:30Z", "2026-07-20T20:30Z", "2026-07-21T07:30Z"):
        np.testing.assert_allclose(after.resolve(regions, sectors, pols, t),
                                   p1.resolve(regions, sectors, pols, t), rtol=1e-14)
    assert len(posterior_extra(p1, None)) == len(p1)        # a base without scaling
    zero = ScalingTable({("Ningbo", "*", "SO2"): 0.0}, source="p0.csv")
    with pytest.raises(InputFileError, match="factor 0"):
        posterior_extra(p1, zero)
