"""Adaptive multiplicative inflation (Li et al. 2009 / Miyoshi 2011) and relaxation to prior
spread (Whitaker & Hamill 2012) of the LETKF (:mod:`aqforecast.assimilation.inflation`), and
their use by `aqforecast assimilate --method letkf`.

Synthetic ensembles whose spread is wrong by a known factor: with many observations the
innovation estimate recovers the variance factor (4 for a spread half the true error), gives 1
for a correctly specified ensemble, respects its bounds, and its stated variance is the
estimate's actual sampling variance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aqforecast.assimilation import (adaptive_inflation, etkf_analysis, innovation_inflation,
                                     letkf_analysis, relax_to_prior_spread)


def _case(rng, p=2000, k=20, spread_factor=0.5):
    """p observations of p independent background errors of standard deviation s_i (0.5 .. 3,
    heterogeneous like concentrations), observation errors of standard deviation r_i (0.3 ..
    2); a k-member ensemble whose spread is ``spread_factor`` x s_i. Returns d, Yb, R."""
    s = rng.uniform(0.5, 3.0, p)
    r = rng.uniform(0.3, 2.0, p)
    d = rng.normal(0.0, 1.0, p) * s + rng.normal(0.0, 1.0, p) * r  # y - H xb
    Yb = 10.0 + rng.normal(0.0, 1.0, (k, p)) * (spread_factor * s)
    return d, Yb, r ** 2


def test_recovers_a_known_underdispersion():
    """Background spread = true error / 2: the variance factor is 4; 2000 observations, 20
    members. The estimate's sampling sd is ~0.27 here (v_o = 2 sum (rho c_i + 1)^2 / (sum
    c_i)^2 with the normalised variances c_i spread over two orders of magnitude): within 0.5
    for this seed (3.61) and within 3 stated sd; over 5 seeds the mean is within 0.15."""
    d, Yb, R = _case(np.random.default_rng(1))
    rho_o, v_o, dtd, trace = innovation_inflation(d, Yb, R, rho_ref=4.0)
    assert rho_o == pytest.approx(4.0, abs=0.5)
    assert abs(rho_o - 4.0) < 3.0 * np.sqrt(v_o) and 0.2 < np.sqrt(v_o) < 0.35
    mean5 = np.mean([innovation_inflation(*_case(np.random.default_rng(s)), rho_ref=4.0)[0]
                     for s in range(2, 7)])
    assert mean5 == pytest.approx(4.0, abs=0.15)
    # no prior weight (prior_sd None) and wide bounds: the estimate itself
    est = adaptive_inflation(d, Yb, R, prior=1.0, prior_sd=None, bounds=(1.0, 10.0))
    assert est.rho == pytest.approx(rho_o) and est.n == 2000
    # the definition: normalised d^T d minus p over the normalised ensemble variance
    dn = d / np.sqrt(R)
    Yn = (Yb - Yb.mean(axis=0)) / np.sqrt(R) / np.sqrt(Yb.shape[0] - 1)
    assert dtd == pytest.approx(dn @ dn) and trace == pytest.approx(np.sum(Yn ** 2))
    assert rho_o == pytest.approx((dn @ dn - d.size) / np.sum(Yn ** 2), rel=1e-12)


def test_correctly_specified_ensemble_gives_one():
    d, Yb, R = _case(np.random.default_rng(2), spread_factor=1.0)
    rho_o, v_o, _, _ = innovation_inflation(d, Yb, R, rho_ref=1.0)
    assert rho_o == pytest.approx(1.0, abs=0.2) and np.sqrt(v_o) < 0.1  # sd ~0.07
    est = adaptive_inflation(d, Yb, R, prior=1.05, prior_sd=0.5, bounds=(1.0, 3.0))
    assert 1.0 <= est.rho <= 1.2


def test_stated_variance_is_the_sampling_variance():
    """Over 300 independent replicates the estimates' mean is the true factor (unbiased) and
    their spread is the v_o the function states (within 15 %)."""
    rng = np.random.default_rng(3)
    for factor in (0.5, 1.0):
        est, var = [], []
        for _ in range(300):
            d, Yb, R = _case(rng, p=400, k=20, spread_factor=factor)
            rho_o, v_o, _, _ = innovation_inflation(d, Yb, R, rho_ref=factor ** -2)
            est.append(rho_o)
            var.append(v_o)
        est = np.array(est)
        assert est.mean() == pytest.approx(factor ** -2, rel=0.03)
        assert est.std(ddof=1) == pytest.approx(np.sqrt(np.mean(var)), rel=0.15)


def test_bounds_prior_and_gaussian_update():
    d, Yb, R = _case(np.random.default_rng(4))
    # the upper bound caps the factor 4
    assert adaptive_inflation(d, Yb, R, prior_sd=None, bounds=(1.0, 2.5)).rho == 2.5
    # an over-dispersive ensemble (spread x2: factor 1/4) is not deflated below 1
    d2, Yb2, R2 = _case(np.random.default_rng(5), spread_factor=2.0)
    est = adaptive_inflation(d2, Yb2, R2, prior_sd=None, bounds=(1.0, 3.0))
    assert est.rho == 1.0 and est.rho_obs == pytest.approx(0.25, abs=0.1)
    # prior_sd 0: the prior, bounded
    assert adaptive_inflation(d, Yb, R, prior=1.3, prior_sd=0.0).rho == 1.3
    # the Gaussian update: rho_b + v_b / (v_b + v_o) (rho_o - rho_b) (Miyoshi 2011)
    est = adaptive_inflation(d, Yb, R, prior=1.2, prior_sd=0.1, bounds=(1.0, 10.0))
    rho_o, v_o, _, _ = innovation_inflation(d, Yb, R, rho_ref=1.2)
    expect = 1.2 + 0.01 / (0.01 + v_o) * (rho_o - 1.2)
    assert est.rho == pytest.approx(expect, rel=1e-12) and est.rho_prior == 1.2
    assert 1.2 < est.rho < rho_o
    # few observations move a tight prior little; many move it most of the way
    few = adaptive_inflation(d[:14], Yb[:, :14], R[:14], prior=1.05, prior_sd=0.04)
    assert abs(few.rho - 1.05) < 0.02
    many = adaptive_inflation(d, Yb, R, prior=1.05, prior_sd=1.0, bounds=(1.0, 10.0))
    assert many.rho == pytest.approx(est.rho_obs, abs=0.15)
    with pytest.raises(ValueError):
        adaptive_inflation(d, Yb, R, bounds=(2.0, 1.0))


def test_localised_variance_counts_correlated_innovations_as_fewer():
    d, Yb, R = _case(np.random.default_rng(6), p=200)
    _, v_diag, _, _ = innovation_inflation(d, Yb, R)
    _, v_eye, _, _ = innovation_inflation(d, Yb, R, loc=np.eye(200))
    assert v_eye == pytest.approx(v_diag, rel=1e-12)
    # perfectly correlated background errors (one common error): v_o much larger
    Ycommon = 10.0 + np.random.default_rng(7).normal(0, 1, (20, 1)) * np.ones((1, 200))
    _, v_corr, _, _ = innovation_inflation(d, Ycommon, np.ones(200), loc=np.ones((200, 200)))
    _, v_ind, _, _ = innovation_inflation(d, Ycommon, np.ones(200))
    # one effective observation: v_o = 2 ((c p)^2 + 2 c p + p) / (c p)^2 ~ 2, not ~2 / p
    c, p = float(np.var(Ycommon[:, 0], ddof=1)), 200
    assert v_corr == pytest.approx(2 * ((c * p) ** 2 + 2 * c * p + p) / (c * p) ** 2, rel=1e-9)
    assert v_corr > 20 * v_ind


def test_inflation_factor_is_the_variance_factor_of_the_analysis():
    """The estimate is a factor of the background *covariance*: an ensemble with half the
    spread analysed with rho = 4 gives the mean analysis of the ensemble with the full spread
    and rho = 1 (Hunt et al. 2007's A = (k-1)/rho I + ...)."""
    rng = np.random.default_rng(8)
    k, n, p = 12, 30, 10
    Xfull = rng.normal(0, 1, (k, n))
    Xfull -= Xfull.mean(axis=0)
    Xhalf = 5.0 + 0.5 * Xfull
    Xfull = 5.0 + Xfull
    H = np.zeros((p, n))
    H[np.arange(p), np.arange(0, n, 3)] = 1.0
    y = 5.0 + rng.normal(0, 1, p)
    R = np.full(p, 0.5)
    a_full = etkf_analysis(Xfull, Xfull @ H.T, y, R, 1.0)
    a_half = etkf_analysis(Xhalf, Xhalf @ H.T, y, R, 4.0)
    np.testing.assert_allclose(a_half.mean(axis=0), a_full.mean(axis=0), rtol=0, atol=1e-12)


def test_rtps_restores_the_stated_fraction_of_the_prior_spread():
    rng = np.random.default_rng(9)
    Xb = 3.0 + rng.normal(0, 1, (8, 50)) * rng.uniform(0.5, 2, 50)
    Xa = Xb.mean(axis=0) + 0.3 * (Xb - Xb.mean(axis=0)) + rng.normal(0, 0.05, (8, 50))
    sb, sa = Xb.std(axis=0, ddof=1), Xa.std(axis=0, ddof=1)
    for alpha in (0.0, 0.3, 0.75, 1.0):
        out = relax_to_prior_spread(Xa, Xb, alpha)
        np.testing.assert_allclose(out.std(axis=0, ddof=1), (1 - alpha) * sa + alpha * sb,
                                   rtol=1e-12)
        np.testing.assert_allclose(out.mean(axis=0), Xa.mean(axis=0), rtol=0, atol=1e-12)
        # the members' pattern is kept: a positive rescaling of each point's perturbations
        f = (out - out.mean(axis=0)) / (Xa - Xa.mean(axis=0))
        np.testing.assert_allclose(f, np.broadcast_to(f[0], f.shape), rtol=1e-9)
    assert relax_to_prior_spread(Xa, Xb, 0.0) is Xa
    # a point without analysis spread is left alone
    Xa0 = Xa.copy()
    Xa0[:, 0] = 1.0
    np.testing.assert_array_equal(relax_to_prior_spread(Xa0, Xb, 0.5)[:, 0], 1.0)
    with pytest.raises(ValueError):
        relax_to_prior_spread(Xa, Xb, 1.5)


def test_letkf_rtps_option_is_rtps_after_the_analysis():
    rng = np.random.default_rng(10)
    k, n, p = 8, 40, 12
    cell = np.column_stack([np.arange(n) * 5.0, np.zeros(n)])
    obs = cell[rng.choice(n, p, replace=False)]
    Xb = 2.0 + rng.normal(0, 1, (k, n))
    H = np.zeros((p, n))
    for j, xy in enumerate(obs):
        H[j, int(np.argmin(np.hypot(*(cell - xy).T)))] = 1.0
    y = 2.0 + rng.normal(0, 1, p)
    R = np.full(p, 0.4)
    plain = letkf_analysis(Xb, Xb @ H.T, y, R, cell, obs, 20.0, 1.1)
    relaxed = letkf_analysis(Xb, Xb @ H.T, y, R, cell, obs, 20.0, 1.1, rtps_alpha=0.6)
    np.testing.assert_allclose(relaxed, relax_to_prior_spread(plain, Xb, 0.6), rtol=1e-13)
    np.testing.assert_allclose(relaxed.mean(axis=0), plain.mean(axis=0), atol=1e-12)


# --- the analysis stage ----------------------------------------------------------------------

from test_assimilation_stage import _make_ensemble, _synthetic_obs, background  # noqa: E402,F401


def test_assimilate_reports_and_applies_adaptive_inflation(background, tmp_path):  # noqa: F811
    """`assimilate --method letkf`: statistics.csv and inflation.json carry the innovation
    estimate; with inflation_adaptive the estimate is applied, bounded, and the next analysis
    takes it as its prior (--inflation-prior)."""
    import shutil

    import yaml

    from aqforecast.cli import main
    from aqforecast.config import read_yaml

    case, run = background
    obs = tmp_path / "obs.csv"
    _synthetic_obs(case, run, 1.6, obs)  # +60 %: far beyond the members' ~25-45 % spread
    raw = read_yaml(case)
    raw["base_dir"] = str((case.parent / raw.get("base_dir", ".")).resolve())
    raw.setdefault("assimilation", {}).update({"inflation_adaptive": True, "inflation_max": 2.5,
                                               "inflation_prior_sd": 1.0})
    adaptive = tmp_path / "adaptive.yaml"
    adaptive.write_text(yaml.safe_dump(raw, sort_keys=False))
    if (run / "ensemble").exists():
        shutil.rmtree(run / "ensemble")
    _make_ensemble(run)
    try:
        base = ["--background", str(run), "--obs", str(obs), "--method", "letkf"]
        assert main(["assimilate", str(case), *base, "--out", str(tmp_path / "fixed")]) == 0
        assert main(["assimilate", str(adaptive), *base, "--out", str(tmp_path / "a1")]) == 0
        assert main(["assimilate", str(adaptive), *base, "--out", str(tmp_path / "a2"),
                     "--inflation-prior", str(tmp_path / "a1")]) == 0
    finally:
        shutil.rmtree(run / "ensemble", ignore_errors=True)
    st = {k: pd.read_csv(tmp_path / k / "statistics.csv").set_index(["domain", "quantity"])
          for k in ("fixed", "a1", "a2")}
    for q in ("O3", "PM25"):
        f, a1, a2 = (st[k].loc[("d01", q)] for k in ("fixed", "a1", "a2"))
        assert f["inflation"] == 1.05 and f["inflation_prior"] == 1.05  # fixed: reported only
        assert f["inflation_obs"] > 1.5  # the under-dispersion is visible in the diagnostics
        assert a1["inflation_obs"] == pytest.approx(f["inflation_obs"], rel=1e-9)
        assert 1.05 < a1["inflation"] <= 2.5  # applied, bounded
        assert a2["inflation_prior"] == pytest.approx(a1["inflation"], rel=1e-5)  # persisted
        # more inflation: the analysis draws closer to the observations
        assert a1["rms_oma"] < f["rms_oma"]
        # chi^2 with the applied inflation
        assert a1["chi2"] < f["chi2"]
    js = json.loads((tmp_path / "a1" / "inflation.json").read_text())
    assert js["meta"]["adaptive"] is True
    assert js["inflation"]["d01"]["O3"]["applied"] == pytest.approx(
        st["a1"].loc[("d01", "O3"), "inflation"], rel=1e-5)
    # the OI reports the estimate for its static B (applied 1: B as configured) ...
    base = ["--background", str(run), "--obs", str(obs)]
    assert main(["assimilate", str(case), *base, "--out", str(tmp_path / "oi")]) == 0
    # ... and with inflation_adaptive multiplies B's variances by it, the next analysis
    # taking it as its prior
    assert main(["assimilate", str(adaptive), *base, "--out", str(tmp_path / "oi1")]) == 0
    assert main(["assimilate", str(adaptive), *base, "--out", str(tmp_path / "oi2"),
                 "--inflation-prior", str(tmp_path / "oi1")]) == 0
    oi = {k: pd.read_csv(tmp_path / k / "statistics.csv").set_index(["domain", "quantity"])
          for k in ("oi", "oi1", "oi2")}
    for q in ("O3", "PM25"):
        f, a1, a2 = (oi[k].loc[("d01", q)] for k in ("oi", "oi1", "oi2"))
        assert f["inflation"] == 1.0 and f["inflation_prior"] == 1.0
        # +60 % against B's 30 % (O3): visible; against 50 % (PM2.5) barely
        assert f["inflation_obs"] > (1.5 if q == "O3" else 1.0)
        assert a1["inflation_obs"] == pytest.approx(f["inflation_obs"], rel=1e-9)
        assert 1.0 < a1["inflation"] <= 2.5
        assert a2["inflation_prior"] == pytest.approx(a1["inflation"], rel=1e-5)
        assert a1["rms_oma"] < f["rms_oma"] and a1["chi2"] < f["chi2"]
    assert json.loads((tmp_path / "oi" / "inflation.json").read_text())["meta"]["adaptive"] \
        is False


def test_covariance_estimate_is_the_ensemble_estimate_with_its_covariance():
    """covariance_inflation (the OI's H B H^T) equals innovation_inflation when H B H^T is the
    ensemble's own sample covariance (unlocalised variance: loc = 1 everywhere)."""
    from aqforecast.assimilation.inflation import covariance_inflation

    rng = np.random.default_rng(4)
    d, Yb, R = _case(rng, p=60, k=12)
    Yp = Yb - Yb.mean(axis=0)
    hbht = Yp.T @ Yp / (Yb.shape[0] - 1)
    a = covariance_inflation(d, hbht, R, rho_ref=2.0)
    b = innovation_inflation(d, Yb, R, rho_ref=2.0, loc=np.ones((60, 60)))
    np.testing.assert_allclose(a, b, rtol=1e-12)
    est = adaptive_inflation(d, None, R, prior=1.0, prior_sd=None, bounds=(1.0, 10.0),
                             hbht=hbht)
    assert est.rho_obs == pytest.approx(a[0], rel=1e-12)


def test_covariance_estimate_recovers_a_known_factor_of_b():
    """Innovations drawn from N(0, 3 H B H^T + R) with a correlated B (Gaspari-Cohn, 1500
    stations on a 600 km square, half-width 60 km, heterogeneous variances): the estimate is 3
    within 3 stated sd (the correlations make its variance larger than for independent
    errors); a correctly specified B gives 1."""
    from aqforecast.assimilation.inflation import covariance_inflation
    from aqforecast.assimilation.oi import gaspari_cohn

    rng = np.random.default_rng(7)
    p = 1500
    xy = rng.uniform(0.0, 600.0, (p, 2))
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    s = rng.uniform(0.5, 3.0, p)
    hbht = s[:, None] * s[None, :] * gaspari_cohn(dist, 60.0)
    r2 = rng.uniform(0.3, 2.0, p) ** 2
    for factor in (3.0, 1.0):
        L = np.linalg.cholesky(factor * hbht + np.diag(r2))
        d = L @ rng.normal(0.0, 1.0, p)
        rho_o, v_o, _, _ = covariance_inflation(d, hbht, r2, rho_ref=factor)
        assert abs(rho_o - factor) < 3.0 * np.sqrt(v_o), (factor, rho_o, np.sqrt(v_o))
        assert np.sqrt(v_o) < 0.2 * factor
