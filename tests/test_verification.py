"""Verification: metrics on known arrays against formulas and scipy, real-series cross-checks,
space/time pairing, skill tables (one row per station x lead day), Kalman bias correction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aqforecast.products import aqi
from aqforecast.verification import bias_correction as bc
from aqforecast.verification import metrics as M
from aqforecast.verification import pairing, tables

MOD = np.array([2.0, 4.0, 6.0, 8.0])
OBS = np.array([1.0, 3.0, 5.0, 11.0])


def test_metrics_known_arrays():
    assert M.mb(MOD, OBS) == pytest.approx(0.0)
    assert M.rmse(MOD, OBS) == pytest.approx(np.sqrt(3.0))        # (1+1+1+9)/4
    assert M.nmb(MOD, OBS) == pytest.approx(0.0)
    assert M.nme(MOD, OBS) == pytest.approx(30.0)                  # 6/20
    assert M.mfb(MOD, OBS) == pytest.approx(50.0 * (1 / 3 + 1 / 7 + 1 / 11 - 3 / 19))
    assert M.mfe(MOD, OBS) == pytest.approx(50.0 * (1 / 3 + 1 / 7 + 1 / 11 + 3 / 19))
    assert M.ioa(MOD, OBS) == pytest.approx(1 - 12 / 140)           # Ō = 5: 7,3,1,9 -> 140
    assert M.pearson_r(MOD, OBS) == pytest.approx(stats.pearsonr(MOD, OBS)[0])
    assert M.fac2(MOD, OBS) == 1.0
    assert M.fac2([1.0, 5.0, 0.0, 3.0], [3.0, 2.0, 0.0, 0.0]) == 0.25   # 1/3, 2.5, 0/0 ok, 3/0
    # NaN pairs are skipped
    assert M.rmse(np.r_[MOD, np.nan], np.r_[OBS, 4.0]) == pytest.approx(np.sqrt(3.0))
    assert np.isnan(M.rmse([np.nan], [1.0]))


def test_categorical_scores():
    m = np.array([80, 90, 50, 20, 120, 30])
    o = np.array([90, 60, 100, 10, 130, 20])
    s = M.categorical_scores(m, o, 75)
    assert (s["hits"], s["false_alarms"], s["misses"], s["correct_negatives"]) == (2, 1, 1, 2)
    assert s["pod"] == pytest.approx(2 / 3) and s["far"] == pytest.approx(1 / 3)
    assert s["csi"] == pytest.approx(0.5) and s["freq_bias"] == pytest.approx(1.0)
    a_r = 3 * 3 / 6
    assert s["ets"] == pytest.approx((2 - a_r) / (4 - a_r))
    acc = M.category_accuracy([1, 2, 3, 5], [1, 3, 5, 5])
    assert acc == {"exact": 0.5, "within1": 0.75, "n": 4}


def test_emery_flags():
    f = M.emery_flags({"nmb": -4.0, "nme": 20.0, "r": 0.4}, "O3")
    assert f == {"nmb": "goal", "nme": "criteria", "r": "none"}
    f = M.emery_flags({"nmb": 25.0, "nme": 30.0, "r": 0.8, "mfb": 40.0, "mfe": 80.0}, "PM2.5")
    assert f == {"nmb": "criteria", "nme": "goal", "r": "goal", "mfb": "criteria", "mfe": "none"}
    with pytest.raises(ValueError, match="no Emery"):
        M.emery_flags({}, "CO")


def test_metrics_against_reference_on_real_series(shared_data):
    """Our formulas vs scipy/pandas/numpy written independently, on real station series."""
    from aqforecast.observations import read_prsa, read_shanghai_uci

    w = read_prsa(shared_data / "obs_beijing_prsa" /
                  "PRSA_12sites_2016-12-01_2017-02-28_hourly.csv")
    p = bc.persistence_forecast(w, "PM2.5", 24)
    sh = read_shanghai_uci(shared_data / "obs_shanghai_uci5city" /
                           "ShanghaiPM_2013-01-29_2015-12-31_hourly.csv")
    wide = sh.pivot(index="time", columns="station", values="PM2.5")
    for m, o in ((p["fcst"].to_numpy(), p["obs"].to_numpy()),
                 (wide["Jingan"].to_numpy(), wide["Xuhui"].to_numpy())):
        ok = np.isfinite(m) & np.isfinite(o)
        mm, oo = m[ok], o[ok]
        s = M.continuous_scores(m, o)
        assert s["n"] == ok.sum()
        assert s["r"] == pytest.approx(stats.pearsonr(mm, oo)[0], rel=1e-10)
        assert s["r"] == pytest.approx(pd.Series(m).corr(pd.Series(o)), rel=1e-10)
        assert s["rmse"] == pytest.approx(np.sqrt(np.mean(np.square(mm - oo))), rel=1e-12)
        assert s["mb"] == pytest.approx(np.mean(mm) - np.mean(oo), abs=1e-9)
        assert s["nmb"] == pytest.approx(100 * (mm.sum() / oo.sum() - 1), rel=1e-9)
        assert s["nme"] == pytest.approx(100 * np.abs(mm - oo).sum() / oo.sum(), rel=1e-12)
        pos = (mm + oo) > 0
        frac = 2 * (mm[pos] - oo[pos]) / (mm[pos] + oo[pos])
        assert s["mfb"] == pytest.approx(100 * frac.mean(), rel=1e-12)
        assert s["mfe"] == pytest.approx(100 * np.abs(frac).mean(), rel=1e-12)
        # Willmott d as 1 - n*MSE / PE (potential error), written another way
        ob = oo.mean()
        pe = np.sum((np.abs(mm - ob) + np.abs(oo - ob)) ** 2)
        assert s["ioa"] == pytest.approx(1 - len(mm) * np.mean((mm - oo) ** 2) / pe, rel=1e-12)
        r = np.divide(mm, oo, out=np.full_like(mm, np.inf), where=oo > 0)
        r[(oo == 0) & (mm == 0)] = 1.0
        assert s["fac2"] == pytest.approx(np.mean((r >= 0.5) & (r <= 2)), rel=1e-12)
    # the two Shanghai CNEMC sites 6 km apart are well correlated
    assert 0.8 < M.pearson_r(wide["Jingan"], wide["Xuhui"]) < 1.0


def _curvilinear(ny=12, nx=15):
    j, i = np.mgrid[0:ny, 0:nx]
    lon = 118.0 + 0.1 * i + 0.02 * j
    lat = 28.0 + 0.1 * j - 0.015 * i
    return lon, lat


def test_sampling_bilinear_and_nearest():
    lon, lat = _curvilinear()
    field = 3.0 * lon - 2.0 * lat          # linear in index space -> bilinear is exact
    rng = np.random.default_rng(0)
    fi, fj = rng.uniform(0.5, 13.5, 20), rng.uniform(0.5, 10.5, 20)
    plon = 118.0 + 0.1 * fi + 0.02 * fj
    plat = 28.0 + 0.1 * fj - 0.015 * fi
    got = pairing.sample_field(field, lon, lat, plon, plat, "bilinear")
    np.testing.assert_allclose(got, 3 * plon - 2 * plat, rtol=0, atol=1e-9)
    s = pairing.StationSampler.build(lon, lat, [lon[3, 4], 100.0], [lat[3, 4], 10.0], "nearest")
    assert (s.j[0], s.i[0]) == (3, 4) and s.dist_km[0] == pytest.approx(0.0, abs=1e-6)
    out = s(np.stack([field, 2 * field]))          # (time, ny, nx) -> (time, n)
    assert out.shape == (2, 2) and out[1, 0] == pytest.approx(2 * field[3, 4])
    assert np.isnan(out[:, 1]).all()               # outside the grid


def _forecasts(stations, inits, leads):
    rows = []
    rng = np.random.default_rng(3)
    for st in stations:
        for t0 in inits:
            for h in leads:
                rows.append((st, t0, t0 + pd.Timedelta(hours=h), rng.uniform(10, 100)))
    return pd.DataFrame(rows, columns=["station", "init_time", "valid_time", "PM2.5"])


def test_pairing_and_skill_table_rows():
    inits = pd.date_range("2017-01-01", periods=3, freq="D")
    f = _forecasts(["A", "B", "C"], inits, range(0, 72))   # hour-beginning stamps
    times = pd.date_range("2016-12-31", "2017-01-08", freq="h")
    obs = pd.DataFrame([(s, t, 50.0 + (t.hour % 5)) for s in "ABCD" for t in times],
                       columns=["station", "time", "PM2.5"])
    p = pairing.pair_forecast_obs(f, obs, "PM2.5")
    assert len(p) == 3 * 3 * 72
    assert set(p["lead_day"]) == {1, 2, 3}
    assert (p.loc[p.lead_hours == 24, "lead_day"] == 2).all()
    assert (p.loc[p.lead_hours == 23, "lead_day"] == 1).all()
    assert (p.loc[p.lead_hours == 0, "lead_day"] == 1).all()
    cat = lambda c: aqi.category(aqi.iaqi("PM2.5", c, "24h", "HJ633-2012"), "HJ633-2012")
    t = tables.skill_table(p, threshold=75.0, category=cat, emery_species="PM2.5")
    assert len(t) == 3 * 3 and t.index.names == ["station", "lead_day"]
    assert t.index.is_unique
    assert {"rmse", "nmb", "ioa", "pod", "csi", "cat_exact", "cat_within1", "emery_nmb"} <= \
        set(t.columns)
    g = p[(p.station == "B") & (p.lead_day == 2)]
    assert t.loc[("B", 2), "rmse"] == pytest.approx(np.sqrt(np.mean((g.fcst - g.obs) ** 2)))
    assert t.loc[("B", 2), "n"] == 72


def test_forecast_at_stations():
    lon, lat = _curvilinear()
    field = np.stack([3.0 * lon - 2.0 * lat, 3.0 * lon - 2.0 * lat + 1])
    st = pd.DataFrame({"station": ["A", "B"], "lon": [lon[2, 2], lon[5, 7]],
                       "lat": [lat[2, 2], lat[5, 7]]})
    vt = pd.date_range("2017-01-01 01:00", periods=2, freq="h")
    f = pairing.forecast_at_stations(field, vt, "2017-01-01", lon, lat, st, variable="PM2.5")
    assert len(f) == 4
    assert f["PM2.5"].to_numpy() == pytest.approx(
        [field[0, 2, 2], field[0, 5, 7], field[1, 2, 2], field[1, 5, 7]])


def test_kalman_constant_bias_and_first_step():
    obs = np.linspace(20, 80, 60)
    fc = obs + 5.0
    corrected, bias = bc.correct(fc, obs, ratio=0.06)
    assert bias[0] == 0.0
    beta0 = (1 + 0.06) / (1 + 0.06 + 1)            # p0 = 1, sigma_eps^2 = 1
    assert bias[1] == pytest.approx(beta0 * 5.0)
    assert abs(bias[-1] - 5.0) < 0.05 and np.abs(corrected[-5:] - obs[-5:]).max() < 0.05
    # a missing observation leaves the estimate unchanged
    y = np.array([5.0, np.nan, 5.0])
    b = bc.kalman_bias(y)
    assert b[2] == b[1]


def test_kalman_on_beijing_climatology_forecast(shared_data):
    """Real-data evaluation (numbers in the report): winter 2016-17 Beijing PM2.5, a station x
    hour-of-day climatology from December as the raw forecast for January-February."""
    from aqforecast.observations import read_prsa

    w = read_prsa(shared_data / "obs_beijing_prsa" /
                  "PRSA_12sites_2016-12-01_2017-02-28_hourly.csv")
    p = bc.climatology_forecast(w, "PM2.5", "2017-01-01")
    p["hour"] = p["valid_time"].dt.hour
    t = bc.correct_table(p, 0.06, by=("station", "hour"))
    ok = t.obs.notna() & t.fcst.notna()
    raw, kf = M.rmse(t.fcst[ok], t.obs[ok]), M.rmse(t.fcst_kf[ok], t.obs[ok])
    assert raw == pytest.approx(119.10, abs=0.01) and kf == pytest.approx(109.82, abs=0.01)
    cat = lambda c: aqi.category(aqi.iaqi("PM2.5", c, "24h", "HJ633-2012"), "HJ633-2012")
    a_raw = M.category_accuracy(cat(t.fcst[ok]), cat(t.obs[ok]))
    a_kf = M.category_accuracy(cat(t.fcst_kf[ok]), cat(t.obs[ok]))
    assert a_kf["exact"] > a_raw["exact"] and a_kf["within1"] > a_raw["within1"]


def _event_pairs():
    """Hourly pairs, 5 stations x 2 lead-day blocks from an 08:00 local start (so the blocks
    are not calendar days), constant within each block: PM2.5 (fcst, obs) and O3 per station."""
    init = pd.Timestamp("2016-12-01 08:00")
    pm = {  # station: [(fcst, obs) on lead day 1, (fcst, obs) on lead day 2]
        "A": [(90.0, 100.0), (150.0, 200.0)],   # hit, hit
        "B": [(50.0, 100.0), (76.0, 80.0)],     # miss, hit
        "C": [(100.0, 50.0), (20.0, 30.0)],     # false alarm, correct negative
        "D": [(50.0, 50.0), (60.0, 120.0)],     # correct negative (AQI: hit by O3), miss
        "E": [(200.0, 200.0), (200.0, 200.0)],  # 10 valid hours a day only: not scored
    }
    rows = []
    for st, days in pm.items():
        for k, (f, o) in enumerate(days):
            for h in range(24 if st != "E" else 10):
                t = init + pd.Timedelta(hours=24 * k + h)
                rows.append((st, t, 24 * k + h, k + 1, "PM2.5", f, o))
                o3 = 250.0 if (st == "D" and k == 0) else 20.0   # MDA8 250: IAQI > 100
                rows.append((st, t, 24 * k + h, k + 1, "O3", o3, o3))
    cols = ["station", "time", "lead_hours", "lead_day", "pollutant", "fcst", "obs"]
    return pd.DataFrame(rows, columns=cols), init


def test_polluted_day_hit_rates_on_a_crafted_series():
    from aqforecast.products.verify import daily_event_scores

    paired, init = _event_pairs()
    ev = daily_event_scores(paired, init, "HJ633-2012").set_index("lead_day")
    d1, d2 = ev.loc[1], ev.loc[2]
    assert d1["pm25_day_limit"] == 75.0 and d1["aqi_day_limit"] == 100.0
    # PM2.5 > 75: day 1 A hit, B miss, C false alarm, D correct negative (E incomplete)
    assert (d1["pm25_day_days"], d1["pm25_day_obs_events"]) == (4, 2)
    assert (d1["pm25_day_hits"], d1["pm25_day_misses"], d1["pm25_day_false_alarms"]) == (1, 1, 1)
    assert d1["pm25_day_pod"] == pytest.approx(0.5) and d1["pm25_day_far"] == pytest.approx(0.5)
    assert d1["pm25_day_csi"] == pytest.approx(1 / 3)
    # day 2: A, B hits, D miss, C correct negative
    assert (d2["pm25_day_hits"], d2["pm25_day_misses"], d2["pm25_day_false_alarms"]) == (2, 1, 0)
    assert d2["pm25_day_pod"] == pytest.approx(2 / 3) and d2["pm25_day_far"] == 0.0
    assert d2["pm25_day_csi"] == pytest.approx(2 / 3)
    # AQI > 100: day 1 D is polluted by its O3 MDA8 in both -> a hit
    assert (d1["aqi_day_hits"], d1["aqi_day_misses"], d1["aqi_day_false_alarms"]) == (2, 1, 1)
    assert d1["aqi_day_pod"] == pytest.approx(2 / 3) and d1["aqi_day_far"] == pytest.approx(1 / 3)
    assert d1["aqi_day_csi"] == pytest.approx(0.5)
    # nothing forecast and nothing observed: POD and FAR undefined, not 0
    calm = paired.assign(fcst=10.0, obs=10.0)
    ev = daily_event_scores(calm, init, "HJ633-2012")
    assert ev["pm25_day_pod"].isna().all() and ev["pm25_day_far"].isna().all()
    with pytest.raises(ValueError, match="station"):
        daily_event_scores(paired.drop(columns="station"), init, "HJ633-2012")


def test_summary_has_the_polluted_day_columns_and_keeps_the_others(tmp_path):
    from aqforecast.products.verify import EVENT_COLUMNS, write_scores

    paired, init = _event_pairs()
    hourly = paired.pivot_table(index=["time", "station"], columns="pollutant",
                                values="fcst").reset_index().set_index("time")
    obs = paired.pivot_table(index=["time", "station"], columns="pollutant",
                             values="obs").reset_index()
    cities = pd.Series({"A": "X", "B": "X", "C": "Y", "D": "Y", "E": "Y"})
    write_scores(hourly, obs, init, cities, tmp_path, {"stage": "verify"})
    s = pd.read_csv(tmp_path / "summary.csv")
    assert {"pollutant", "city", "lead_day", "n", "nmb", "nme", "r", "cat_exact"} <= set(s)
    assert {f"{e}_{c}" for e in ("pm25_day", "aqi_day") for c in EVENT_COLUMNS} <= set(s)
    row = s.query("pollutant == 'PM2.5' and city == 'all' and lead_day == 1").iloc[0]
    assert row["pm25_day_pod"] == pytest.approx(0.5)
    # the same station-day scores on every pollutant's row; per city its own stations
    o3 = s.query("pollutant == 'O3' and city == 'all' and lead_day == 1").iloc[0]
    assert o3["pm25_day_csi"] == pytest.approx(row["pm25_day_csi"])
    x = s.query("pollutant == 'PM2.5' and city == 'X' and lead_day == 1").iloc[0]
    assert (x["pm25_day_hits"], x["pm25_day_misses"], x["pm25_day_false_alarms"]) == (1, 1, 0)


def test_verify_scores_a_bias_corrected_series(tmp_path, capsys):
    from aqforecast.cli import main
    from aqforecast.io.rundir import write_success

    REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
    paired, init = _event_pairs()
    # varying observations (the QC flags a value stuck for hours)
    paired["obs"] *= 1.0 + 0.2 * np.sin(paired["lead_hours"].to_numpy(float))
    run, bias = tmp_path / "run", tmp_path / "bias"
    run.mkdir(), bias.mkdir()
    write_success(run, [], {"stage": "forecast"})
    corr = paired.rename(columns={"fcst": "fcst_raw"}).drop(columns=["obs", "lead_day"])
    corr["bias"] = 5.0
    corr["fcst"] = (corr["fcst_raw"] - 5.0).clip(lower=0)
    corr["source"] = corr["station"]
    corr.to_csv(bias / "corrected.csv", index=False)
    write_success(bias, [bias / "corrected.csv"], {"stage": "bias-correct", "run": str(run)})
    # generic station CSV (UTC times; the Beijing case's clock is UTC+8)
    o = paired[["station", "time", "pollutant", "obs"]].rename(
        columns={"pollutant": "species", "obs": "value"})
    o["time"] = (o["time"] - pd.Timedelta(hours=8)).dt.strftime("%Y-%m-%dT%H:00:00+00:00")
    o["units"] = "ug m-3"
    o["lon"], o["lat"] = 116.4, 39.9
    o.to_csv(tmp_path / "obs.csv", index=False)
    cfg = str(REPO / "config" / "hindcast_beijing" / "config.yaml")
    rc = main(["verify", cfg, "--run", str(run), "--corrected", str(bias), "--obs",
               str(tmp_path / "obs.csv"), "--out", str(tmp_path / "v")])
    assert rc == 0, capsys.readouterr().err
    p = pd.read_csv(tmp_path / "v" / "paired.csv", parse_dates=["time"])
    m = p.merge(corr, on=["station", "time", "pollutant"])
    assert len(m) > 0.9 * len(paired) and np.allclose(m["fcst_x"], m["fcst_y"])
    assert np.allclose(m["fcst_x"], (m["fcst_raw"] - 5.0).clip(lower=0))
    # another run's correction is refused, naming both
    other = tmp_path / "other"
    other.mkdir()
    write_success(other, [], {"stage": "forecast"})
    rc = main(["verify", cfg, "--run", str(other), "--corrected", str(bias), "--obs",
               str(tmp_path / "obs.csv"), "--out", str(tmp_path / "v2")])
    assert rc == 2 and "not --run" in capsys.readouterr().err
