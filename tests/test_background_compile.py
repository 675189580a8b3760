"""The tagged sweep compiled in a child process (kernels.background): the child compiles the
very specialisation the model calls, fills numba's cache, and a failing child costs nothing."""

from __future__ import annotations

import logging
import numpy as np
import pytest

from aqforecast.config import load_config
from aqforecast.forecast import build_models
from aqforecast.kernels import tagging
from aqforecast.kernels.background import BackgroundCompile, in_numba_cache
from aqforecast.kernels.tag_update32 import _TAGGED_TILES32
from aqforecast.transport.simulation import Simulation

from forecast_case import small_config


@pytest.mark.parametrize("tags,precision", [(True, "float32"), (False, "float64")])
def test_background_child_prepares_the_models_own_sweep(tmp_path, monkeypatch, tags, precision):
    """The signature :func:`_prepare_sweep` compiles is the only one the model's sweeps call
    (tagged with float32 fractions, the forecast default; untagged: the float64 kernel):
    otherwise the child's work would be lost and this process would compile again."""
    kernel = _TAGGED_TILES32 if precision == "float32" else tagging._TAGGED_TILES
    seen = []
    real = kernel.prepare
    monkeypatch.setattr(kernel, "prepare", lambda *a: (seen.append(kernel.signature(*a)),
                                                        real(*a))[1])
    tagging._prepare_sweep(precision)
    prepared = seen.pop()
    assert tagging._sweep_cached(precision)  # in numba's cache now: a child would have left it
    cfg = load_config(small_config(tmp_path, hours=1))
    models = build_models(cfg, tags=tags)
    for m in models:
        m.cold_start()
    Simulation(models, models[0].time + np.timedelta64(cfg.time.sync_step_s, "s"),
               cfg.time.sync_step_s).run()
    assert seen and set(seen) == {prepared}


def test_failing_or_cached_child(caplog):
    """A child that fails is reported and waited for without an error (the call then compiles
    here); one whose code is cached already, or started twice, does not start."""
    bad = BackgroundCompile("nothing", "raise SystemExit('no such kernel')")
    assert bad.start() is True
    assert bad.start() is False
    with caplog.at_level(logging.WARNING, logger="aqforecast.kernels.background"):
        bad.wait()
        bad.wait()
    assert [r.message for r in caplog.records].count(
        "background compilation of nothing failed (compiling here instead): no such kernel") == 1
    assert BackgroundCompile("cached", "raise SystemExit(1)", cached=lambda: True).start() \
        is False
    assert in_numba_cache(object()) is False  # not a dispatcher: "no", never an error
