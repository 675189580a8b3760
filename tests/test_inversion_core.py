"""Core algebra of the emission inversion (aqforecast.inversion.kalman): fast, synthetic."""

from __future__ import annotations

import numpy as np
import pytest

from aqforecast.inversion.jacobian import TagForwardModel
from aqforecast.inversion.kalman import (BiasMonitor, cost_preview, cycle_prior,
                                         effective_sample_size, gauss_newton_update,
                                         kalman_update, prior_covariance, two_pass_update)


def _problem(n=12, m=40, seed=0, sigma_o=1.0):
    """A random linear problem: B from prior_covariance (3 groups), dense H, diagonal R."""
    rng = np.random.default_rng(seed)
    groups = np.arange(n) % 3
    xy = rng.uniform(0.0, 200.0, size=(n, 2))
    sigma = rng.uniform(0.3, 0.7, size=n)
    B = prior_covariance(sigma, xy, 60.0, groups)
    H = rng.normal(0.0, 2.0, size=(m, n))
    R = sigma_o ** 2 * rng.uniform(0.5, 2.0, size=m)
    xb = rng.normal(0.0, 0.2, size=n)
    return rng, xb, B, H, R


def _dense_posterior(xb, B, H, d, R):
    """Textbook closed form, computed naively with explicit inverses."""
    Binv = np.linalg.inv(B)
    Pa = np.linalg.inv(Binv + H.T @ np.diag(1.0 / R) @ H)
    xa = xb + Pa @ H.T @ np.diag(1.0 / R) @ d
    return xa, Pa, Binv


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("n,m", [(12, 40), (30, 10)])   # state-space and obs-space solves
def test_one_cycle_equals_closed_form(n, m):
    rng, xb, B, H, R = _problem(n, m, seed=n)
    d = rng.normal(0.0, 3.0, size=m)
    res = kalman_update(xb, B, H, d, R)
    xa, Pa, Binv = _dense_posterior(xb, B, H, d, R)
    assert _rel(res.mean - xb, xa - xb) < 1e-10
    assert _rel(res.cov, Pa) < 1e-10
    # filterpy (Joseph form) and batch agree
    assert res.max_difference < 1e-10
    assert _rel(res.filterpy_cov, Pa) < 1e-10
    assert _rel(res.filterpy_mean - xb, xa - xb) < 1e-10
    # averaging kernel A = I - P_a B^-1, residuals, chi2
    A = np.eye(n) - Pa @ Binv
    assert np.abs(res.averaging_kernel - A).max() < 1e-9
    assert res.dofs == pytest.approx(np.trace(A), rel=1e-9)
    assert np.allclose(res.residuals, d - H @ (xa - xb), rtol=1e-10, atol=1e-10)
    S = H @ B @ H.T + np.diag(R)
    assert res.chi2 == pytest.approx(d @ np.linalg.solve(S, d) / m, rel=1e-10)
    assert np.allclose(res.innovation_std ** 2, np.diag(S), rtol=1e-12)
    assert res.used.all() and res.rejected.size == 0
    np.testing.assert_allclose(res.cov, res.cov.T, atol=0)


def test_filterpy_serial_blocks_equal_single_update():
    rng, xb, B, H, R = _problem(10, 57, seed=3)
    d = rng.normal(0.0, 2.0, size=57)
    one = kalman_update(xb, B, H, d, R, filterpy_chunk=None)
    blocks = kalman_update(xb, B, H, d, R, filterpy_chunk=7)
    assert one.max_difference < 1e-10 and blocks.max_difference < 1e-10
    assert _rel(blocks.filterpy_cov, one.filterpy_cov) < 1e-10
    off = kalman_update(xb, B, H, d, R, use_filterpy=False)
    assert off.filterpy_mean is None and np.isnan(off.max_difference)
    np.testing.assert_array_equal(off.mean, one.mean)


def test_dofs_identity_operator_closed_form():
    n, sb, so = 25, 0.5, 0.3
    B = np.eye(n) * sb ** 2
    d = np.random.default_rng(1).normal(size=n)
    res = kalman_update(np.zeros(n), B, np.eye(n), d, np.full(n, so ** 2))
    frac = sb ** 2 / (sb ** 2 + so ** 2)
    assert 0.0 <= res.dofs <= n
    assert res.dofs == pytest.approx(n * frac, rel=1e-12)
    np.testing.assert_allclose(res.averaging_kernel, frac * np.eye(n), atol=1e-14)
    np.testing.assert_allclose(res.mean, frac * d, rtol=1e-12)
    np.testing.assert_allclose(res.cov, (1 - frac) * sb ** 2 * np.eye(n), atol=1e-15)
    # DOFS bounded for a general problem too
    _, xb, B2, H2, R2 = _problem(12, 8, seed=5)
    r2 = kalman_update(xb, B2, H2, np.ones(8), R2)
    assert 0.0 <= r2.dofs <= 8 + 1e-9


def test_chi2_consistent_and_underestimated_R():
    rng, xb, B, H, R = _problem(10, 100, seed=7, sigma_o=1.0)
    H = H * 0.3                                     # prior and obs errors of similar size
    LB = np.linalg.cholesky(B)
    chi_ok, chi_bad = [], []
    for _ in range(40):
        x_true = xb + LB @ rng.normal(size=10)
        d = H @ (x_true - xb) + rng.normal(size=100) * np.sqrt(R)
        chi_ok.append(kalman_update(xb, B, H, d, R, use_filterpy=False).chi2)
        chi_bad.append(kalman_update(xb, B, H, d, R / 4.0, use_filterpy=False).chi2)
    assert abs(np.mean(chi_ok) - 1.0) < 0.15
    assert np.mean(chi_bad) > 2.0


def test_two_pass_rejects_planted_outliers():
    rng = np.random.default_rng(11)
    n, m = 8, 200
    B = prior_covariance(np.full(n, 0.5), None, 0.0, np.zeros(n, int))
    H = rng.normal(0.0, 1.0, size=(m, n))
    R = np.full(m, 0.25)
    xb = np.zeros(n)
    x_true = rng.normal(0.0, 0.5, size=n)
    d_clean = H @ x_true + rng.normal(size=m) * np.sqrt(R)
    planted = np.array([17, 88, 150])
    d = d_clean.copy()
    d[planted] += np.array([20.0, -20.0, 20.0]) * np.sqrt(R[planted])
    res = two_pass_update(xb, B, H, d, R, k_sigma=3.0)
    np.testing.assert_array_equal(res.rejected, planted)
    assert res.n_used == m - 3 and not res.used[planted].any()
    assert res.max_difference < 1e-10
    # identical to an update without those observations, close to the outlier-free posterior
    keep = np.ones(m, bool)
    keep[planted] = False
    ref = kalman_update(xb, B, H[keep], d[keep], R[keep], use_filterpy=False)
    np.testing.assert_allclose(res.mean, ref.mean, rtol=1e-12, atol=1e-14)
    clean = kalman_update(xb, B, H, d_clean, R, use_filterpy=False)
    assert np.abs(res.mean - clean.mean).max() < 0.5 * clean.std.min()   # 3 of 200 obs fewer
    # a single pass is dragged by the outliers
    naive = kalman_update(xb, B, H, d, R, use_filterpy=False)
    assert np.abs(naive.mean - clean.mean).max() > 3 * np.abs(res.mean - clean.mean).max()


@pytest.mark.parametrize("n,m", [(12, 40), (30, 10)])
def test_gauss_newton_on_a_linear_problem_is_the_closed_form(n, m):
    rng, xb, B, H, R = _problem(n, m, seed=n + 1)
    d = rng.normal(0.0, 3.0, size=m)
    y0 = rng.normal(10.0, 1.0, size=m)
    y = y0 + d
    res = gauss_newton_update(xb, B, y, R, lambda x: y0 + H @ (x - xb), lambda x: H,
                              iterations=10)
    xa, Pa, Binv = _dense_posterior(xb, B, H, d, R)
    assert res.iterations <= 2          # the first update is exact, the second moves nothing
    assert _rel(res.mean - xb, xa - xb) < 1e-10
    assert _rel(res.cov, Pa) < 1e-10
    assert res.max_difference < 1e-10
    np.testing.assert_allclose(res.residuals, d - H @ (xa - xb), rtol=1e-9, atol=1e-9)
    one = gauss_newton_update(xb, B, y, R, lambda x: y0 + H @ (x - xb), lambda x: H,
                              iterations=1)
    ref = kalman_update(xb, B, H, d, R)
    np.testing.assert_allclose(one.mean, ref.mean, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(one.cov, ref.cov, rtol=1e-13, atol=1e-15)
    assert one.chi2 == pytest.approx(ref.chi2, rel=1e-12)


def _tag_toy(seed=3, n=6, m=300, x_run=None):
    """y = y_other + sum_i tag_i f_i (a model linear in the factors, tags >= 0 at f_run)."""
    rng = np.random.default_rng(seed)
    T = rng.gamma(2.0, 1.0, size=(m, n)) * rng.uniform(0.2, 2.0, size=n)   # tags at f_run
    x_run = np.zeros(n) if x_run is None else np.asarray(x_run, float)
    y_other = rng.uniform(1.0, 3.0, size=m)
    return TagForwardModel(y_other + T.sum(axis=1), T, x_run), rng


def test_tag_forward_model_jacobian_is_tag_times_factor():
    model, rng = _tag_toy(x_run=np.full(6, 0.3))
    x = rng.normal(0.0, 0.4, size=6)
    np.testing.assert_allclose(model.forward(model.x_run), model.y_run)
    h = 1e-6
    fd = np.stack([(model.forward(x + h * e) - model.forward(x - h * e)) / (2 * h)
                   for e in np.eye(6)], axis=1)
    np.testing.assert_allclose(model.jacobian(x), fd, rtol=1e-7)
    # at the run the Jacobian is the tags themselves (dy/d ln f = tag)
    np.testing.assert_allclose(model.jacobian(model.x_run), model.T)


def test_gauss_newton_converges_to_the_exact_factors_of_a_tag_model():
    """Noise-free y = sum_i tag_i f_i with factors 0.6 .. 1.6 and a weak prior: Gauss-Newton
    finds the factors; the single update about the prior is biased (ln 1.6 = 0.47 is a 60 %
    change, the linearisation says 47 %)."""
    model, rng = _tag_toy()
    x_true = np.log([1.6, 0.7, 1.5, 0.6, 1.3, 1.0])
    y = model.forward(x_true)
    B = np.diag(np.full(6, 2.0 ** 2))
    R = (0.01 * y) ** 2
    res = gauss_newton_update(np.zeros(6), B, y, R, model.forward, model.jacobian,
                              iterations=20, tol=1e-10)
    assert 2 < res.iterations < 20
    np.testing.assert_allclose(res.mean, x_true, atol=1e-6 * 2.0 ** 2 * 10)
    assert np.abs(res.residuals).max() < 1e-4 * y.max()
    one = gauss_newton_update(np.zeros(6), B, y, R, model.forward, model.jacobian,
                              iterations=1)
    assert np.abs(one.mean - x_true).max() > 0.05
    # a prior run made with other factors (yesterday's posterior) is rescaled, not extrapolated
    moved = TagForwardModel(model.forward(np.log(np.full(6, 1.2))),
                            model.T * 1.2, np.log(np.full(6, 1.2)))
    np.testing.assert_allclose(moved.forward(x_true), y, rtol=1e-12)
    res2 = gauss_newton_update(np.zeros(6), B, y, R, moved.forward, moved.jacobian,
                               iterations=20, tol=1e-10)
    np.testing.assert_allclose(res2.mean, res.mean, atol=1e-8)


def test_gauss_newton_with_two_pass_rejection():
    model, rng = _tag_toy(seed=8)
    x_true = np.log([1.4, 0.8, 1.2, 1.0, 0.9, 1.1])
    sig = 0.02 * model.y_run
    y_clean = model.forward(x_true) + rng.normal(size=sig.size) * sig
    planted = np.array([5, 77, 201])
    B = np.diag(np.full(6, 0.5 ** 2))
    H0 = model.jacobian(np.zeros(6))
    S0 = np.sqrt(np.einsum("ij,jk,ik->i", H0, B, H0) + sig ** 2)   # prior innovation std
    y = y_clean.copy()
    y[planted] += 8 * S0[planted]
    res = gauss_newton_update(np.zeros(6), B, y, sig ** 2, model.forward, model.jacobian,
                              k_sigma=3.0)
    assert set(planted) <= set(res.rejected.tolist()) and res.rejected.size <= 5
    np.testing.assert_allclose(res.innovation_std, S0, rtol=1e-12)
    assert not res.used[planted].any()
    clean = gauss_newton_update(np.zeros(6), B, y_clean, sig ** 2, model.forward,
                                model.jacobian)
    assert np.abs(res.mean - clean.mean).max() < 0.5 * clean.std.min()
    assert np.abs(res.mean - x_true).max() < 3 * res.std.max()


def test_cycle_prior_algebra():
    rng = np.random.default_rng(2)
    n = 6
    xa = rng.normal(size=n)
    A = rng.normal(size=(n, n))
    Pa = A @ A.T + np.eye(n)
    base = rng.normal(size=n)
    mean, cov = cycle_prior(xa, Pa, base, 0.7, 0.1)
    np.testing.assert_allclose(mean, base + 0.7 * (xa - base))
    np.testing.assert_allclose(cov, 0.49 * Pa + 0.01 * np.eye(n))
    # the Kalman forecast step x' = F x + G u (F = rho I, G = (1 - rho) I, u = base), P' = FPF' + Q
    from filterpy.kalman import KalmanFilter
    kf = KalmanFilter(dim_x=n, dim_z=1)
    kf.x, kf.P = xa.reshape(n, 1), Pa.copy()
    kf.F, kf.B, kf.Q = 0.7 * np.eye(n), 0.3 * np.eye(n), 0.01 * np.eye(n)
    kf.predict(u=base.reshape(n, 1))
    np.testing.assert_allclose(mean, kf.x.ravel(), rtol=1e-13)
    np.testing.assert_allclose(cov, kf.P, rtol=1e-13)
    m1, c1 = cycle_prior(xa, Pa, 0.0, 1.0, np.zeros(n))      # persistence
    np.testing.assert_array_equal(m1, xa)
    np.testing.assert_allclose(c1, Pa)
    m0, c0 = cycle_prior(xa, Pa, base, 0.0, np.full(n, 0.5))  # forget
    np.testing.assert_array_equal(m0, base)
    np.testing.assert_allclose(c0, 0.25 * np.eye(n))
    with pytest.raises(ValueError):
        cycle_prior(xa, Pa, base, 1.2, 0.1)
    with pytest.raises(ValueError):
        cycle_prior(xa, Pa, base, 0.5, -0.1)


def test_prior_covariance_structure():
    rng = np.random.default_rng(4)
    n = 30
    groups = np.repeat([0, 1, 2], 10)
    xy = np.tile(rng.uniform(0, 300, size=(10, 2)), (3, 1))   # same regions in every group
    sigma = rng.uniform(0.2, 0.8, size=n)
    B = prior_covariance(sigma, xy, 50.0, groups)
    np.testing.assert_array_equal(B, B.T)
    assert np.linalg.eigvalsh(B).min() > 0.0
    np.testing.assert_allclose(np.diag(B), sigma ** 2)
    assert np.all(B[groups[:, None] != groups[None, :]] == 0.0)
    dist = np.hypot(*(xy[0] - xy[1]))
    assert B[0, 1] == pytest.approx(sigma[0] * sigma[1] * np.exp(-dist / 50.0), rel=1e-12)
    np.testing.assert_array_equal(prior_covariance(sigma, None, 50.0, groups), np.diag(sigma**2))
    xy_dup = xy.copy()
    xy_dup[1] = xy_dup[0]                                       # two factors of group 0 coincide
    with pytest.raises(ValueError, match="group 0"):
        prior_covariance(sigma, xy_dup, 50.0, groups)
    with pytest.raises(ValueError):
        prior_covariance(-sigma, xy, 50.0, groups)


def test_prior_covariance_pollutant_correlation():
    """Same sector, other pollutant: rho exp(-d/L); other sector: 0; rho = 0 is the plain B;
    positive definite (a Kronecker product's principal submatrix)."""
    rng = np.random.default_rng(5)
    regions = rng.uniform(0, 300, size=(6, 2))
    pollutants = ["NOx", "PM25", "SO2", "NMVOC"]
    keys = [(r, s, p) for s in ("industry", "residential") for p in pollutants
            for r in range(6)][:-3]                 # a sector with some factors missing
    n = len(keys)
    xy = regions[[r for r, _, _ in keys]]
    sec = [s for _, s, _ in keys]
    gid = np.unique([f"{s}|{p}" for _, s, p in keys], return_inverse=True)[1]
    sigma = rng.uniform(0.2, 0.8, size=n)
    rho, L = 0.6, 80.0
    B = prior_covariance(sigma, xy, L, gid, sectors=sec, pollutant_correlation=rho)
    assert np.linalg.eigvalsh(B).min() > 0.0
    np.testing.assert_array_equal(B, B.T)
    for i in range(n):
        for j in range(n):
            d = np.hypot(*(xy[i] - xy[j]))
            link = 1.0 if gid[i] == gid[j] else (rho if sec[i] == sec[j] else 0.0)
            assert B[i, j] == pytest.approx(link * np.exp(-d / L) * sigma[i] * sigma[j],
                                            rel=1e-12, abs=1e-300)
    np.testing.assert_array_equal(
        prior_covariance(sigma, xy, L, gid, sectors=sec, pollutant_correlation=0.0),
        prior_covariance(sigma, xy, L, gid))
    # L = 0: only the same region correlates (rho between its pollutants)
    B0 = prior_covariance(sigma, xy, 0.0, gid, sectors=sec, pollutant_correlation=rho)
    assert B0[0, 6] == pytest.approx(rho * sigma[0] * sigma[6])   # region 0, NOx vs PM25
    assert B0[0, 1] == 0.0
    with pytest.raises(ValueError, match="sectors"):
        prior_covariance(sigma, xy, L, gid, pollutant_correlation=rho)
    with pytest.raises(ValueError, match="pollutant_correlation"):
        prior_covariance(sigma, xy, L, gid, sectors=sec, pollutant_correlation=1.0)
    with pytest.raises(ValueError, match="spans two sectors"):   # groups must nest in sectors
        prior_covariance(sigma[:2], xy[:2], L, [0, 0], sectors=["industry", "power"],
                         pollutant_correlation=rho)
    with pytest.raises(ValueError, match="sector 'industry'"):   # two NOx at one centroid
        prior_covariance(sigma[:3], np.zeros((3, 2)), L, [0, 0, 1], sectors=["industry"] * 3,
                         pollutant_correlation=rho)


def test_unobserved_co_emitted_factor_follows_by_the_prior_regression():
    """A factor with a zero column of H (NMVOC, seen by no observation) correlated rho with an
    observed one (NOx of the same source): the linear Gaussian analysis moves it by exactly
    B_vn / B_nn times the observed factor's increment, and its variance shrinks by the same
    regression: the closed form of the Kalman update with a zero column."""
    sig_n, sig_v, rho = 0.4, 0.6, 0.7
    B = prior_covariance(np.array([sig_n, sig_v]), np.zeros((2, 2)), 50.0, np.array([0, 1]),
                         sectors=["industry", "industry"], pollutant_correlation=rho)
    rng = np.random.default_rng(2)
    m = 25
    H = np.zeros((m, 2))
    H[:, 0] = rng.uniform(0.5, 2.0, m)
    R = rng.uniform(0.05, 0.2, m)
    xb = np.zeros(2)
    y0 = rng.uniform(5.0, 10.0, m)
    y = y0 + H[:, 0] * 0.3 + rng.normal(0.0, np.sqrt(R))
    res = gauss_newton_update(xb, B, y, R, lambda x: y0 + H @ (x - xb), lambda x: H,
                              iterations=5)
    xa, Pa, _ = _dense_posterior(xb, B, H, y - y0, R)
    np.testing.assert_allclose(res.mean, xa, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.cov, Pa, rtol=1e-10, atol=1e-14)
    beta = rho * sig_v / sig_n
    assert res.mean[1] == pytest.approx(beta * res.mean[0], rel=1e-10)
    # Var(v | y) = sig_v^2 (1 - rho^2) + beta^2 Var(n | y)
    assert res.cov[1, 1] == pytest.approx(sig_v ** 2 * (1 - rho ** 2) + beta ** 2 * res.cov[0, 0],
                                          rel=1e-10)
    assert res.averaging_kernel[1, 1] == pytest.approx(0.0, abs=1e-12)


def test_correlated_growth_keeps_the_base_prior_stationary():
    """cycle_prior with the base prior's correlation as the growth's and q = sigma sqrt(1 -
    rho^2): B is a fixed point (correlations included); with the diagonal growth the
    correlations fade by rho^2 a cycle; a malformed correlation is refused."""
    rng = np.random.default_rng(7)
    n = 8
    xy = np.repeat(rng.uniform(0, 200, size=(4, 2)), 2, axis=0)
    sec = ["industry", "residential"] * 4
    gid = np.arange(n) % 2            # one pollutant per sector here: groups = sectors
    sigma = rng.uniform(0.3, 0.6, size=n)
    B = prior_covariance(sigma, xy, 80.0, gid, sectors=sec)
    C = B / np.outer(sigma, sigma)
    rho = 0.7
    q = sigma * np.sqrt(1 - rho ** 2)
    _, cov = cycle_prior(np.zeros(n), B, 0.0, rho, q, growth_correlation=C)
    np.testing.assert_allclose(cov, B, rtol=1e-12, atol=1e-15)
    _, cov_d = cycle_prior(np.zeros(n), B, 0.0, rho, q)
    off = ~np.eye(n, dtype=bool)
    np.testing.assert_allclose(cov_d[off], rho ** 2 * B[off], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.diag(cov_d), np.diag(B), rtol=1e-12)
    with pytest.raises(ValueError, match="growth_correlation"):
        cycle_prior(np.zeros(n), B, 0.0, rho, q, growth_correlation=2 * C)


def test_bias_monitor_alarm_and_roundtrip(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(21)
    m = 400
    S = rng.uniform(1.0, 4.0, size=m)
    groups = np.where(np.arange(m) < 200, "NO2", "PM25")
    quiet = BiasMonitor()
    for k in range(60):
        quiet.add(f"day{k}", rng.normal(size=m) * np.sqrt(S), S, groups=groups)
        assert not quiet.alarm
    biased = BiasMonitor()
    for k in range(3):
        d = rng.normal(size=m) * np.sqrt(S)
        d[groups == "PM25"] += 0.5 * np.sqrt(S[groups == "PM25"])   # persistent model bias
        biased.add(f"day{k}", d, S, groups=groups)
        assert biased.alarm == (k == 2)
    assert "PM25" in biased.alarms() and "NO2" not in biased.alarms()
    # alternating sign does not alarm
    flip = BiasMonitor()
    for k in range(4):
        flip.add(k, (rng.normal(size=m) + (0.5 if k % 2 else -0.5)) * np.sqrt(S), S)
    assert not flip.alarm and all(r["exceed"] for r in flip.rows)
    # CSV round trip
    path = tmp_path / "bias.csv"
    biased.to_frame().to_csv(path, index=False)
    back = BiasMonitor.from_frame(pd.read_csv(path))
    assert back.alarms() == biased.alarms()
    pd.testing.assert_frame_equal(back.to_frame(), biased.to_frame())
    frame = biased.to_frame()
    assert list(frame.columns) == list(BiasMonitor.COLUMNS) and len(frame) == 9
    assert frame["threshold"].iloc[0] == pytest.approx(3.0 / np.sqrt(m))


def test_effective_sample_size():
    m = 50
    R = np.ones(m)
    assert effective_sample_size(np.zeros((m, 3)), R) == pytest.approx(m)
    # one shared prior error dominating all observations -> n_eff -> 1
    HL = np.full((m, 1), 100.0)
    assert effective_sample_size(HL, R) == pytest.approx(1.0, rel=0.01)
    _, xb, B, H, R2 = _problem(10, 30, seed=9)
    res = kalman_update(xb, B, H, np.zeros(30), R2, use_filterpy=False)
    S = H @ B @ H.T + np.diag(R2)
    u = 1.0 / np.sqrt(np.diag(S))
    assert res.n_eff == pytest.approx(30 ** 2 / (u @ S @ u), rel=1e-10)


def test_cost_preview_numbers():
    c = cost_preview(200, 3000, 200)
    assert c["n_model_runs"] == 201
    assert c["jacobian_bytes"] == 3000 * 200 * 8
    assert c["covariance_bytes"] == 3 * 200 * 200 * 8
    assert c["filterpy_chunk"] == 2000
    assert c["filterpy_workspace_bytes"] == (3 * 2000**2 + 2 * 200 * 2000 + 2 * 200**2) * 8
    assert c["batch_workspace_bytes"] == (2 * 3000 * 200 + 3 * 200**2) * 8
    assert c["total_bytes"] == sum(c[k] for k in ("jacobian_bytes", "covariance_bytes",
                                                  "batch_workspace_bytes",
                                                  "filterpy_workspace_bytes"))
    assert "201 model runs" in c["summary"] and "4.6 MiB" in c["summary"]
    c4 = cost_preview(10, 5, 1, bytes_per_value=4, filterpy_chunk=None)
    assert c4["jacobian_bytes"] == 200 and c4["filterpy_chunk"] == 5
    assert "tags" in c4["summary"]
    with pytest.raises(ValueError):
        cost_preview(0, 10, 1)


def test_input_validation():
    _, xb, B, H, R = _problem(5, 8, seed=1)
    with pytest.raises(ValueError):
        kalman_update(xb, B, H, np.ones(7), R)
    with pytest.raises(ValueError):
        kalman_update(xb, B, H, np.ones(8), -R)
    with pytest.raises(ValueError, match="positive definite"):
        kalman_update(xb, -B, H, np.ones(8), R)
    # nothing used -> the prior back
    res = kalman_update(xb, B, H, np.ones(8), R, used=np.zeros(8, bool))
    np.testing.assert_array_equal(res.mean, xb)
    assert res.dofs == 0.0 and np.isnan(res.chi2)
