"""AQI: hand-computed IAQIs at and around every breakpoint, category edges, averaging rules,
daily / real-time AQI rules of HJ 633-2012 / HJ 633-2026, and the EPA 2024 index."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aqforecast.products import aqi, averaging

I = [0, 50, 100, 150, 200, 300, 400, 500]
# Written out here independently of the package's CSV tables (SCIENCE.md 9.1; HJ 633-2026 Table 3).
HJ_COMMON = {
    ("SO2", "24h"): [0, 50, 150, 475, 800, 1600, 2100, 2620],
    ("SO2", "1h"): [0, 150, 500, 650, 800],
    ("NO2", "24h"): [0, 40, 80, 180, 280, 565, 750, 940],
    ("NO2", "1h"): [0, 100, 200, 700, 1200, 2340, 3090, 3840],
    ("CO", "24h"): [0, 2, 4, 14, 24, 36, 48, 60],
    ("CO", "1h"): [0, 5, 10, 35, 60, 90, 120, 150],
    ("O3", "1h"): [0, 160, 200, 300, 400, 800, 1000, 1200],
    ("O3", "8h"): [0, 100, 160, 215, 265, 800],
}
HJ_PM = {
    "HJ633-2012": {("PM10", "24h"): [0, 50, 150, 250, 350, 420, 500, 600],
                   ("PM2.5", "24h"): [0, 35, 75, 115, 150, 250, 350, 500]},
    "HJ633-2026": {("PM10", "24h"): [0, 50, 120, 250, 350, 420, 500, 600],
                   ("PM2.5", "24h"): [0, 35, 60, 115, 150, 250, 350, 500]},
}


def hj_cases():
    for std, pm in HJ_PM.items():
        for (p, per), bps in {**HJ_COMMON, **pm}.items():
            yield std, p, per, bps


@pytest.mark.parametrize("std,pollutant,period,bps", list(hj_cases()))
def test_hj_iaqi_at_and_around_every_breakpoint(std, pollutant, period, bps):
    # at each breakpoint: the table's IAQI exactly
    np.testing.assert_array_equal(aqi.iaqi(pollutant, bps, period, std), I[:len(bps)])
    for k in range(len(bps) - 1):
        lo, hi = bps[k], bps[k + 1]
        for c in (lo + 0.01 * (hi - lo), 0.5 * (lo + hi), hi - 0.01 * (hi - lo)):
            expected = math.ceil((I[k + 1] - I[k]) / (hi - lo) * (c - lo) + I[k] - 1e-9)
            assert aqi.iaqi(pollutant, c, period, std) == expected, (c, expected)


def test_hj_hand_computed_cases():
    # 2026: 100 + (75-60)/(115-60)*50 = 113.64 -> 114; 2012: exactly 100
    assert aqi.iaqi("PM2.5", 75, "24h", "HJ633-2026") == 114
    assert aqi.iaqi("PM2.5", 75, "24h", "HJ633-2012") == 100
    # 100 + (150-120)/(250-120)*50 = 111.54 -> 112
    assert aqi.iaqi("PM10", 150, "24h", "HJ633-2026") == 112
    assert aqi.iaqi("PM10", 150, "24h", "HJ633-2012") == 100
    # rounding is up, not to nearest: raw 100.1 -> 101
    assert aqi.iaqi("PM2.5", 60.11, "24h") == 101
    # NO2 1-h 350: (150-100)/(700-200)*(350-200)+100 = 115 exactly
    assert aqi.iaqi("NO2", 350, "1h") == 115
    # CO 1-h 7.5 mg m-3: 50 + 2.5/5*50 = 75
    assert aqi.iaqi("CO", 7.5, "1h") == 75
    # above the top of a column: 500
    assert aqi.iaqi("PM2.5", 800, "24h") == 500


def test_hj_above_800_rules():
    # HJ 633-2012: no IAQI from these columns above 800 (substituted by daily/realtime AQI)
    assert np.isnan(aqi.iaqi("SO2", 801, "1h", "HJ633-2012"))
    assert np.isnan(aqi.iaqi("O3", 801, "8h", "HJ633-2012"))
    assert aqi.iaqi("SO2", 800, "1h", "HJ633-2012") == 200
    # HJ 633-2026 transcriptions: capped at the column's top
    assert aqi.iaqi("SO2", 2000, "1h", "HJ633-2026") == 200
    assert aqi.iaqi("O3", 1200, "8h", "HJ633-2026") == 300


EPA_CASES = [  # (pollutant, period, concentration in EPA units, AQI), hand-computed
    ("PM2.5", "24h", 9.0, 50), ("PM2.5", "24h", 9.05, 50), ("PM2.5", "24h", 9.1, 51),
    ("PM2.5", "24h", 12.0, 56),  # 49/26.3*2.9 + 51 = 56.40
    ("PM2.5", "24h", 35.4, 100), ("PM2.5", "24h", 35.49, 100), ("PM2.5", "24h", 35.5, 101),
    ("PM2.5", "24h", 55.4, 150), ("PM2.5", "24h", 55.5, 151), ("PM2.5", "24h", 125.4, 200),
    ("PM2.5", "24h", 125.5, 201), ("PM2.5", "24h", 225.4, 300), ("PM2.5", "24h", 225.5, 301),
    ("PM2.5", "24h", 325.4, 500), ("PM2.5", "24h", 600.0, 500),
    ("PM10", "24h", 54.9, 50), ("PM10", "24h", 55, 51), ("PM10", "24h", 154, 100),
    ("PM10", "24h", 155, 101), ("PM10", "24h", 604, 500),
    ("O3", "8h", 0.054, 50), ("O3", "8h", 0.0549, 50), ("O3", "8h", 0.055, 51),
    ("O3", "8h", 0.070, 100), ("O3", "8h", 0.071, 101), ("O3", "8h", 0.2009, 300),
    ("O3", "1h", 0.125, 101), ("O3", "1h", 0.604, 500),
    ("CO", "8h", 4.45, 50), ("CO", "8h", 4.5, 51), ("CO", "8h", 9.4, 100),
    ("SO2", "1h", 35, 50), ("SO2", "1h", 36, 51), ("SO2", "1h", 304, 200),
    ("SO2", "24h", 305, 201), ("SO2", "24h", 1004, 500),
    ("NO2", "1h", 100.9, 100), ("NO2", "1h", 101, 101), ("NO2", "1h", 2049, 500),
]


@pytest.mark.parametrize("pollutant,period,conc,expected", EPA_CASES)
def test_epa_2024(pollutant, period, conc, expected):
    assert aqi.iaqi(pollutant, conc, period, "EPA-2024") == expected


def test_epa_undefined_ranges_are_nan():
    assert np.isnan(aqi.iaqi("O3", 0.201, "8h", "EPA-2024"))   # use the 1-h O3 index
    assert np.isnan(aqi.iaqi("O3", 0.100, "1h", "EPA-2024"))   # 1-h O3 starts at 0.125
    assert np.isnan(aqi.iaqi("SO2", 305, "1h", "EPA-2024"))    # use the 24-h SO2 index
    assert np.isnan(aqi.iaqi("SO2", 200, "24h", "EPA-2024"))
    assert aqi.units("O3", "8h", "EPA-2024") == "ppm"
    assert aqi.units("CO", "24h", "HJ633-2026") == "mg m-3"


def test_category_edges():
    vals = [0, 50, 51, 100, 101, 150, 151, 200, 201, 300, 301, 500, np.nan]
    exp = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, np.nan]
    for std in aqi.STANDARDS:
        np.testing.assert_array_equal(aqi.category(vals, std), exp)
    assert aqi.category(75) == 2
    assert aqi.category_name(6, "EPA-2024") == "Hazardous"


def test_shapes_nan_and_errors():
    c = np.array([[35.0, np.nan], [-1.0, 60.0]])
    out = aqi.iaqi("PM2.5", c, "24h")
    assert out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[50, np.nan], [np.nan, 100]])
    assert np.ndim(aqi.iaqi("PM2.5", 35.0, "24h")) == 0
    with pytest.raises(ValueError, match="no 1h breakpoints for PM2.5"):
        aqi.iaqi("PM2.5", 10, "1h")
    with pytest.raises(ValueError, match="unknown pollutant"):
        aqi.iaqi("VOC", 10, "1h")
    with pytest.raises(ValueError, match="unknown AQI standard"):
        aqi.iaqi("PM2.5", 10, "24h", "GB-2030")


def test_aqi_primary_pollutants():
    r = aqi.aqi({"PM2.5": [100, 40, 130, np.nan], "PM10": [100, 30, 120, np.nan],
                 "O3_8h": [20, 45, 101, np.nan]})
    np.testing.assert_array_equal(r.aqi, [100, 45, 130, np.nan])
    assert list(r.primary) == ["PM2.5,PM10", "", "PM2.5", ""]
    assert list(r.exceeding) == ["", "", "PM2.5,PM10,O3_8h", ""]
    np.testing.assert_array_equal(r.category, [2, 1, 3, np.nan])


def test_standard_for_date():
    assert aqi.standard_for_date("2026-02-28") == "HJ633-2012"
    assert aqi.standard_for_date(pd.Timestamp("2026-03-01 00:00")) == "HJ633-2026"
    assert aqi.standard_for_date("2017-01-15") == "HJ633-2012"


def _day(start, **cols):
    idx = pd.date_range(start, periods=24, freq="h")
    return pd.DataFrame({k: np.broadcast_to(np.asarray(v, float), 24) for k, v in cols.items()},
                        index=idx)


def test_averaging_validity_rules():
    s = pd.Series(10.0, index=pd.date_range("2017-01-01", periods=48, freq="h"))
    s.iloc[:4] = np.nan           # day 1: 20 valid hours -> valid
    s.iloc[24:29] = np.nan        # day 2: 19 valid hours -> NaN
    dm = averaging.daily_mean(s)
    assert dm.iloc[0] == 10.0 and np.isnan(dm.iloc[1])
    r = pd.Series(np.arange(16.0), index=pd.date_range("2017-01-01", periods=16, freq="h"))
    r.iloc[[0, 1]] = np.nan
    r8 = averaging.running_mean_8h(r)
    assert r8.iloc[7] == pytest.approx(np.mean(np.arange(2, 8)))   # 6 valid of 8
    r.iloc[2] = np.nan
    assert np.isnan(averaging.running_mean_8h(r).iloc[7])           # 5 valid of 8


def test_mda8_hand_computed():
    o3 = pd.Series(np.arange(48.0) % 24, index=pd.date_range("2017-06-01", periods=48, freq="h"))
    # windows inside day: start 0..16, means s+3.5; max 19.5 (window 16-23), not touching day 2
    assert averaging.daily_max_8h(o3).tolist() == [19.5, 19.5]
    o3.iloc[24 + 7: 24 + 11] = np.nan   # removes 4 hours -> several 8-h windows invalid
    v = averaging.daily_max_8h(o3)
    assert np.isnan(v.iloc[1])          # fewer than 14 valid 8-h means (GB 3095 / HJ 663)


def test_daily_aqi_versions_by_date():
    h = pd.concat([_day("2026-02-28", **{"PM2.5": 75, "PM10": 40, "SO2": 5, "NO2": 20, "CO": 0.5,
                                         "O3": 60}),
                   _day("2026-03-01", **{"PM2.5": 75, "PM10": 40, "SO2": 5, "NO2": 20, "CO": 0.5,
                                         "O3": 60})])
    d = aqi.daily_aqi(h)
    assert d["standard"].tolist() == ["HJ633-2012", "HJ633-2026"]
    assert d["aqi"].tolist() == [100, 114]
    assert d["primary"].tolist() == ["PM2.5", "PM2.5"]
    assert d["complete"].all()
    assert d["O3_8h"].tolist() == [60, 60]


def test_daily_aqi_incomplete_publication_rule_2026():
    d = aqi.daily_aqi(_day("2026-04-01", **{"PM2.5": 40}))
    assert d["aqi"].iloc[0] == 60            # 50 + 5/25*50 = 60 (2026: 35-60 -> 50-100)
    assert np.isnan(d["aqi_published"].iloc[0])
    d = aqi.daily_aqi(_day("2026-04-01", **{"PM2.5": 80}))
    assert d["aqi_published"].iloc[0] == 119  # ceil(100 + 20/55*50) = 119 > 100: published
    d = aqi.daily_aqi(_day("2017-04-01", **{"PM2.5": 40}))
    assert d["aqi_published"].iloc[0] == 57   # 2012: ceil(50 + 5/40*50) = 57; no NA rule


def test_daily_o3_above_800():
    h = _day("2017-07-01", O3=900)
    d = aqi.daily_aqi(h)                     # 2012: O3 8-h > 800 -> 1-h IAQI: 300 + 100/200*100
    assert d["iaqi_O3_8h"].iloc[0] == 350 and d["aqi"].iloc[0] == 350
    d = aqi.daily_aqi(_day("2026-07-01", O3=900))
    assert d["iaqi_O3_8h"].iloc[0] == 300 and np.isnan(d["iaqi_O3_1h"].iloc[0])


def test_realtime_particles_by_version():
    pm = np.zeros(24)
    pm[-1] = 240.0
    h12 = pd.DataFrame({"PM2.5": pm}, index=pd.date_range("2017-01-01", periods=24, freq="h"))
    r = aqi.realtime_aqi(h12)
    # 2012: 24-h running mean 10 -> ceil(10/35*50) = 15
    assert r["iaqi_PM2.5"].iloc[-1] == 15
    h26 = h12.set_axis(pd.date_range("2026-05-01", periods=24, freq="h"))
    # 2026: hourly 240 on the 24-h breakpoints -> ceil(200 + 90/100*100) = 290
    assert aqi.realtime_aqi(h26)["iaqi_PM2.5"].iloc[-1] == 290


def test_realtime_so2_above_800():
    so2 = np.full(24, 100.0)
    so2[-1] = 900.0
    h = pd.DataFrame({"SO2": so2}, index=pd.date_range("2017-01-01", periods=24, freq="h"))
    r = aqi.realtime_aqi(h)
    # 2012: use the 24-h running mean (100*23+900)/24 = 133.33 -> ceil(50 + 83.33/100*50) = 92
    assert r["iaqi_SO2"].iloc[-1] == 92
    r = aqi.realtime_aqi(h.set_axis(pd.date_range("2026-05-01", periods=24, freq="h")))
    assert r["iaqi_SO2"].iloc[-1] == 200


def test_daily_aqi_on_real_prsa(shared_data):
    from aqforecast.observations import read_prsa

    obs = read_prsa(shared_data / "obs_beijing_prsa" /
                    "PRSA_12sites_2016-12-01_2017-02-28_hourly.csv")
    one = obs[obs.station == "Dongsi"].set_index("time")
    d = aqi.daily_aqi(one.drop(columns=["station", "wd"]))
    assert len(d) == 90 and set(d["standard"]) == {"HJ633-2012"}
    day = one.loc["2016-12-20", "PM2.5"]
    assert day.notna().sum() >= 20
    c = day.mean()   # independent recomputation of that day's PM2.5 IAQI
    bps = HJ_PM["HJ633-2012"][("PM2.5", "24h")]
    k = max(i for i in range(len(bps) - 1) if bps[i] <= c) if c < bps[-1] else None
    exp = 500 if k is None else math.ceil((I[k + 1] - I[k]) / (bps[k + 1] - bps[k]) *
                                          (c - bps[k]) + I[k] - 1e-9)
    assert d.loc["2016-12-20", "iaqi_PM2.5_24h"] == exp
    assert d["aqi"].max() >= 300             # the December 2016 Beijing haze episode
