"""Station bias correction (:mod:`aqforecast.products.bias_correction`): the Kalman-filter
predictor of Delle Monache et al. (2006) on synthetic error series with known answers, the
withheld stations kept out of the learning, the state file round trip and daily cycling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aqforecast.products.bias_correction import (
    LOG_OFFSET_DEFAULT,
    apply_correction,
    corrected_forecast,
    empty_state,
    forecast_error,
    kf_series,
    learn,
    learning_pairs,
    read_state,
    steady_gain,
    transfer,
    write_state,
)

REPO = Path(__file__).resolve().parents[1]


def test_constant_bias_converges_closed_form():
    b, r = 12.5, 0.01
    x, p, beta = kf_series(np.full(400, b), ratio=r)
    # x0 = 0 and every error equal to b: x_k = b (1 - prod_{i<=k} (1 - beta_i)) exactly
    np.testing.assert_allclose(x, b * (1.0 - np.cumprod(1.0 - beta)), rtol=1e-12)
    assert abs(x[-1] - b) < 1e-9 * b
    # the gain tends to the closed form q/(q+1), q = (r + sqrt(r^2 + 4r)) / 2
    assert beta[-1] == pytest.approx(steady_gain(r), rel=1e-9)
    assert steady_gain(r) == pytest.approx(0.0951249, rel=1e-5)
    # the first step with p0 = 1: gain (1 + r) / (2 + r)
    assert beta[0] == pytest.approx((1 + r) / (2 + r))


def test_constant_bias_with_noise_is_recovered():
    rng = np.random.default_rng(3)
    b, sigma = -20.0, 5.0
    x, _, _ = kf_series(b + sigma * rng.standard_normal(3000), ratio=0.01)
    # the estimate's noise in steady state: sigma sqrt(beta / (2 - beta)) ~ 0.22 sigma
    assert abs(x[1000:].mean() - b) < 0.1 * sigma
    g = steady_gain(0.01)
    assert x[1000:].std() == pytest.approx(sigma * np.sqrt(g / (2 - g)), rel=0.15)


def test_drifting_bias_is_tracked_with_the_closed_form_lag():
    s, r = 0.5, 0.1
    k = np.arange(300)
    x, _, _ = kf_series(s * k, ratio=r)
    # x_k predicts the bias s (k + 1) of the next day; its error e_k = s + (1 - beta_k) e_{k-1}
    # tends to s / beta
    lag = s * (k + 1) - x
    assert lag[-1] == pytest.approx(s / steady_gain(r), rel=1e-8)
    # the corrected forecast's error stays bounded while the raw error grows without bound
    assert np.abs(lag[50:]).max() < 1.01 * s / steady_gain(r) < 0.02 * s * k[-1]
    # a larger ratio forgets faster and tracks closer
    x2, _, _ = kf_series(s * k, ratio=1.0)
    assert s * (k[-1] + 1) - x2[-1] < lag[-1]


def _paired(errors_by_station, days=4, leads=(1, 2, 25), base=50.0,
            start="2016-12-01 00:00"):
    """paired.csv-like rows: one forecast a day from ``start``, error per station."""
    rows = []
    for d in range(days):
        init = pd.Timestamp(start) + pd.Timedelta(days=d)
        for st, err in errors_by_station.items():
            for h in leads:
                rows.append({"station": st, "time": init + pd.Timedelta(hours=h),
                             "lead_hours": float(h), "lead_day": h // 24 + 1,
                             "pollutant": "PM2.5", "fcst": base + err, "obs": base})
    return pd.DataFrame(rows)


STATIONS = pd.DataFrame({"station": ["A", "B", "W"], "lon": [116.40, 116.70, 116.41],
                         "lat": [39.90, 40.30, 39.91]})


def test_withheld_stations_never_learn_and_take_the_nearest_bias():
    before = pd.Timestamp("2016-12-10")
    paired = _paired({"A": 10.0, "B": -30.0, "W": 500.0})
    st = learn(empty_state(), learning_pairs(paired, ["W"], before), withheld=["W"])
    assert set(st["station"]) == {"A", "B"}
    # W's observations do not matter at all
    paired2 = paired.copy()
    paired2.loc[paired2["station"] == "W", "obs"] = 1e4
    st2 = learn(empty_state(), learning_pairs(paired2, ["W"], before), withheld=["W"])
    pd.testing.assert_frame_equal(st, st2)
    # learn() drops withheld stations even when handed their pairs directly
    raw = learning_pairs(paired, [], before)
    assert "W" in set(raw["station"])
    pd.testing.assert_frame_equal(learn(empty_state(), raw, withheld=["W"]), st)
    # W (1.4 km from A, 45 km from B) is corrected with A's bias; A and B with their own
    tb = transfer(st, STATIONS, withheld=["W"]).set_index(["station", "lead_hours"])
    own = st.set_index(["station", "lead_hours"])["bias"]
    for h in (1, 2, 25):
        assert tb.loc[("W", h), "source"] == "A"
        assert tb.loc[("W", h), "bias"] == own[("A", h)]
        assert tb.loc[("B", h), "bias"] == own[("B", h)]
    tm = transfer(st, STATIONS, withheld=["W"], method="mean").set_index(
        ["station", "lead_hours"])
    assert tm.loc[("W", 1), "bias"] == pytest.approx((own[("A", 1)] + own[("B", 1)]) / 2)
    # a withheld station is never its own source, even if a state somehow holds it
    bad = pd.concat([st, st[st["station"] == "A"].assign(station="W", bias=999.0)])
    assert (transfer(bad, STATIONS, withheld=["W"]).query("station == 'W'")["bias"]
            != 999.0).all()


def test_pairs_valid_after_the_run_start_are_not_used():
    paired = _paired({"A": 10.0}, days=4)
    # the run starts on day 3 at 00: lead 25 of day 2 (valid day 3 01:00) is in the future
    before = pd.Timestamp("2016-12-03 00:00")
    lp = learning_pairs(paired, [], before)
    assert (lp["init"] + pd.to_timedelta(lp["lead_hours"], unit="h") < before).all()
    assert set(lp.query("lead_hours == 25")["init"]) == {pd.Timestamp("2016-12-01")}
    assert set(lp.query("lead_hours == 1")["init"]) == {pd.Timestamp("2016-12-01"),
                                                        pd.Timestamp("2016-12-02")}


def test_state_round_trip_and_daily_cycling(tmp_path):
    rng = np.random.default_rng(0)
    errs = {"A": 10.0, "B": -4.0}
    paired = _paired(errs, days=6)
    paired["obs"] += rng.normal(0, 3, len(paired))
    # cycle by cycle, carrying the state through its file ...
    state = empty_state()
    for day in range(2, 8):
        before = pd.Timestamp("2016-12-01") + pd.Timedelta(days=day)
        state = learn(state, learning_pairs(paired, [], before))
        write_state(state, tmp_path / "bias_state.csv")
        back = read_state(tmp_path / "bias_state.csv")
        pd.testing.assert_frame_equal(back, state, check_dtype=False)
        state = back
    # ... equals learning everything at once (no pair used twice, none missed)
    once = learn(empty_state(), learning_pairs(paired, [], before))
    pd.testing.assert_frame_equal(state, once, check_dtype=False, rtol=1e-12)
    assert (state["n_updates"] == 6).all()
    # a state made with another ratio is refused
    with pytest.raises(Exception, match="ratio"):
        learn(state, learning_pairs(paired, [], before), ratio=0.5)


def test_apply_correction_subtracts_and_floors():
    t = pd.date_range("2016-12-05 01:00", periods=3, freq="h", name="time")
    hourly = pd.DataFrame({"station": "A", "PM2.5": [50.0, 5.0, 30.0], "O3": 1.0}, index=t)
    biases = pd.DataFrame({"station": ["A", "A"], "pollutant": ["PM2.5", "PM2.5"],
                           "lead_hours": [1, 2], "bias": [10.0, 8.0], "source": "A"})
    corr, long = apply_correction(hourly, pd.Timestamp("2016-12-05 00:00"), biases)
    np.testing.assert_allclose(corr["PM2.5"].to_numpy(), [40.0, 0.0, 30.0])
    np.testing.assert_allclose(corr["O3"].to_numpy(), 1.0)
    assert list(long.query("pollutant == 'PM2.5'")["bias"]) == [10.0, 8.0, 0.0]


def test_multiplicative_form_identities_and_regime_change():
    """The multiplicative form: correcting by the learned error returns the observation
    (forecast_error and corrected_forecast are inverses); a constant factor is learned like
    the additive closed form in ln units; after a regime change (the forecast falls to a third)
    the learned correction shrinks with the forecast, where the additive one keeps its size."""
    c = LOG_OFFSET_DEFAULT
    f = np.array([0.0, 3.0, 40.0, 250.0])
    o = np.array([2.0, 0.0, 25.0, 180.0])
    e = forecast_error(f, o, "PM2.5", "multiplicative")
    np.testing.assert_allclose(corrected_forecast(f, e, "PM2.5", "multiplicative"), o,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(forecast_error(f, o, "CO", "multiplicative"),
                               np.log((f + 0.05) / (o + 0.05)))
    np.testing.assert_array_equal(forecast_error(f, o, "O3"), f - o)
    with pytest.raises(ValueError, match="form"):
        forecast_error(f, o, "O3", "ratio")
    # a model 1.5 x (obs + c) - c during an episode: the filter's ln bias -> ln 1.5
    days, r = 300, 0.01
    obs = np.full(days, 150.0)
    fc = 1.5 * (obs + c) - c
    x, _, beta = kf_series(forecast_error(fc, obs, "PM2.5", "multiplicative"), ratio=r)
    assert x[-1] == pytest.approx(np.log(1.5) * (1 - np.prod(1 - beta)), rel=1e-12)
    # the episode ends: observed 40, the model still 1.5 (obs + c) - c = 62.5: the ln bias
    # corrects it at once, the additive bias (77.5 ug m-3, learned at 150) floors it at 0
    xa, _, _ = kf_series(fc - obs, ratio=r)
    after = 1.5 * (40.0 + c) - c
    mult = corrected_forecast(after, x[-1], "PM2.5", "multiplicative")
    add = corrected_forecast(after, xa[-1], "PM2.5")
    assert mult == pytest.approx(40.0, rel=1e-9)
    assert xa[-1] == pytest.approx(77.5, rel=1e-9) and add == 0.0


def test_state_form_is_kept_and_checked(tmp_path):
    paired = _paired({"A": 10.0}, days=3)
    before = pd.Timestamp("2016-12-05")
    st = learn(empty_state(), learning_pairs(paired, [], before, "multiplicative"),
               form="multiplicative")
    assert set(st["form"]) == {"multiplicative"} and set(st["units"]) == {"ln"}
    write_state(st, tmp_path / "s.csv")
    back = read_state(tmp_path / "s.csv")
    pd.testing.assert_frame_equal(back, st, check_dtype=False)
    with pytest.raises(Exception, match="form"):
        learn(back, learning_pairs(paired, [], before))        # additive on a ln state
    # a file written before the form column reads as additive
    add = learn(empty_state(), learning_pairs(paired, [], before))
    add.drop(columns="form").to_csv(tmp_path / "old.csv", index=False)
    assert set(read_state(tmp_path / "old.csv")["form"]) == {"additive"}
    (tmp_path / "bad.csv").write_text((tmp_path / "s.csv").read_text().replace(
        "multiplicative", "logarithmic"))
    with pytest.raises(Exception, match="bad.csv.*form"):
        read_state(tmp_path / "bad.csv")


def test_cli_refuses_an_unfinished_run(tmp_path, capsys):
    from aqforecast.cli import main

    (tmp_path / "run").mkdir()
    rc = main(["bias-correct", str(REPO / "config" / "hindcast_beijing" / "config.yaml"),
               "--run", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "_SUCCESS" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_state_file_with_garbage_rows_names_file_and_column(tmp_path):
    from aqforecast.io import InputFileError
    from aqforecast.products.bias_correction import STATE_COLUMNS

    row = {c: 1 for c in STATE_COLUMNS}
    row.update(station="A", pollutant="PM2.5", units="", last_init="2016-12-01T00:00:00",
               lead_hours="twelve")
    path = tmp_path / "bias_state.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    with pytest.raises(InputFileError, match=r"bias_state\.csv: column lead_hours"):
        read_state(path)
    row.update(lead_hours=12, last_init="not a time")
    pd.DataFrame([row]).to_csv(path, index=False)
    with pytest.raises(InputFileError, match=r"bias_state\.csv: column last_init"):
        read_state(path)
