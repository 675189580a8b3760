"""Lead windows: the right windows for every segment and the right aggregation in each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aqforecast.config import LeadWindow
from aqforecast.products import averaging
from aqforecast.products.windows import (DEFAULT_WINDOWS, Window, aggregate, lead_windows,
                                         max_running_mean, running_mean, window_members)


def test_default_windows_cover_15_days():
    w = lead_windows()
    assert len(w) == 24 + 8 + 8
    assert [(x.start_hours, x.end_hours) for x in w[:3]] == [(0, 3), (3, 6), (6, 9)]
    assert w[23] == Window(69, 72, "mean")
    assert [(x.start_hours, x.end_hours) for x in w[24:26]] == [(72, 84), (84, 96)]
    assert w[31] == Window(156, 168, "mean")
    assert [(x.start_hours, x.end_hours) for x in w[32:34]] == [(168, 192), (192, 216)]
    assert w[-1] == Window(336, 360, "mean")
    ends = [x.end_hours for x in w]
    starts = [x.start_hours for x in w]
    assert starts[1:] == ends[:-1]          # contiguous, no gaps or overlaps
    assert all(x.aggregation == "mean" for x in w)


def test_config_models_and_truncation():
    spec = [LeadWindow(until_hours=12, every_hours=6, aggregation="max"),
            {"until_hours": 24, "every_hours": 4, "aggregation": "instant"}, (48, 24)]
    w = lead_windows(spec)
    assert [(x.start_hours, x.end_hours, x.aggregation) for x in w] == [
        (0, 6, "max"), (6, 12, "max"), (12, 16, "instant"), (16, 20, "instant"),
        (20, 24, "instant"), (24, 48, "mean")]
    assert [x.end_hours for x in lead_windows(spec, lead_hours=20)] == [6, 12, 16, 20]
    assert lead_windows(DEFAULT_WINDOWS, 71)[-1].end_hours == 69


@pytest.mark.parametrize("bad, match", [([(12, 5)], "divide"), ([(12, 3), (12, 3)], "increase"),
                                        ([(12, 3, "median")], "aggregation")])
def test_bad_specs(bad, match):
    with pytest.raises(ValueError, match=match):
        lead_windows(bad)


def test_aggregations_hand_computed():
    leads = np.arange(1, 49)
    v = np.stack([leads * 1.0, leads * 2.0], axis=1)     # value = lead (and 2 x lead)
    w = lead_windows([(12, 3), (24, 6, "instant"), (48, 12, "max")])
    members = window_members(w, leads)
    assert members[0].tolist() == [0, 1, 2]              # leads 1, 2, 3
    assert members[4].tolist() == [17]                   # instant at lead 18
    out = aggregate(v, leads, w)
    assert out.shape == (len(w), 2)
    np.testing.assert_allclose(out[:4, 0], [2.0, 5.0, 8.0, 11.0])   # means of (a, a+3]
    np.testing.assert_allclose(out[4:6, 0], [18.0, 24.0])           # instants
    np.testing.assert_allclose(out[6:, 0], [36.0, 48.0])            # max over (24,36], (36,48]
    np.testing.assert_allclose(out[:, 1], 2 * out[:, 0])


def test_nan_handling_and_missing_hours():
    leads = np.arange(1, 7)
    v = np.array([1.0, np.nan, 3.0, np.nan, np.nan, np.nan])
    out = aggregate(v, leads, [Window(0, 3), Window(3, 6), Window(3, 6, "max"), Window(6, 9)])
    np.testing.assert_allclose(out[0], 2.0)
    assert np.isnan(out[1]) and np.isnan(out[2]) and np.isnan(out[3])


def test_running_mean_matches_pandas():
    rng = np.random.default_rng(1)
    x = rng.random(60)
    x[[3, 4, 20, 21, 22]] = np.nan
    ref = pd.Series(x).rolling(8, min_periods=6).mean().to_numpy()
    np.testing.assert_allclose(running_mean(x, 8, 6), ref, equal_nan=True)


def test_max_running_mean_is_mda8_for_day_windows():
    t = pd.date_range("2026-07-20", periods=72, freq="h")
    rng = np.random.default_rng(2)
    o3 = 80 + 60 * np.sin(np.arange(72) / 24 * 2 * np.pi) + 10 * rng.random(72)
    # leads 1..72 hold the hours of three natural days (lead h -> hour-beginning stamp h-1)
    got = max_running_mean(o3, np.arange(1, 73), lead_windows([(72, 24)]))
    ref = averaging.daily_max_8h(pd.Series(o3, index=t)).to_numpy()
    np.testing.assert_allclose(got, ref)
    w12 = lead_windows([(24, 12)])
    got12 = max_running_mean(o3, np.arange(1, 73), w12)
    np.testing.assert_allclose(got12[1], max(o3[e - 8:e].mean() for e in range(20, 25)))
    assert np.isnan(max_running_mean(o3, np.arange(1, 73), [Window(0, 6)])).all()
    with pytest.raises(ValueError, match="consecutive"):
        max_running_mean(o3[::2], np.arange(1, 73, 2), w12)
