"""Optimal interpolation, ETKF and LETKF against the closed-form Kalman analysis and Lorenz-96.

Reference: the linear-Gaussian analysis xa = xb + B H^T (H B H^T + R)^-1 (y - H xb),
Pa = (I - K H) B, computed densely with NumPy (shared/data/inversion_benchmarks/README.md,
check 2), and the Sakov & Oke (2008) Lorenz-96 setting (README check 1; full-length run in
benchmarks/lorenz96.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from aqforecast.assimilation import (DistanceCovariance, etkf_analysis, gaspari_cohn,
                                     letkf_analysis, local_observations, observation_operator,
                                     optimal_interpolation)

REPO = Path(__file__).resolve().parents[1]
NX, NY, DX = 6, 5, 10.0  # 30 cells, 10 km spacing


def _grid_xy(nx=NX, ny=NY, dx=DX):
    jj, ii = np.mgrid[0:ny, 0:nx]
    return np.column_stack([ii.ravel() * dx, jj.ravel() * dx]).astype(float)


def _bilinear_H(stations, nx=NX, ny=NY, dx=DX):
    """Sparse (nobs, nx*ny) bilinear interpolation weights of stations (nobs, 2) km."""
    rows, cols, vals = [], [], []
    for s, (sx, sy) in enumerate(stations):
        i0, j0 = int(sx // dx), int(sy // dx)
        fx, fy = sx / dx - i0, sy / dx - j0
        for di, dj, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                          (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            rows.append(s)
            cols.append((j0 + dj) * nx + i0 + di)
            vals.append(w)
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(stations), nx * ny))


def _dense_B(xy, sigma, length, kind):
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    rho = gaspari_cohn(d, length) if kind == "gaspari_cohn" else np.exp(-0.5 * (d / length) ** 2)
    return sigma[:, None] * sigma[None, :] * rho


def _kalman(xb, B, H, y, R_diag):
    Hd = H.toarray() if sp.issparse(H) else np.asarray(H)
    S = Hd @ B @ Hd.T + np.diag(R_diag)
    K = B @ Hd.T @ np.linalg.inv(S)
    xa = xb + K @ (y - Hd @ xb)
    Pa = (np.eye(xb.size) - K @ Hd) @ B
    return xa, Pa


@pytest.fixture(scope="module")
def linear_case():
    """n = 30 cells, 8 bilinear stations, GC covariance with spatially varying sigma_b."""
    rng = np.random.default_rng(42)
    xy = _grid_xy()
    n = xy.shape[0]
    stations = np.column_stack([rng.uniform(0, (NX - 1) * DX - 1e-6, 8),
                                rng.uniform(0, (NY - 1) * DX - 1e-6, 8)])
    H = _bilinear_H(stations)
    sigma = 1.0 + 0.5 * rng.random(n)
    xb = 20.0 + 5.0 * rng.standard_normal(n)
    R = 0.3 + rng.random(8)
    y = H @ xb + 2.0 * rng.standard_normal(8)
    return {"xy": xy, "H": H, "sigma": sigma, "xb": xb, "y": y, "R": R, "stations": stations}


def test_gaspari_cohn_shape():
    z = np.linspace(0.0, 2.5, 2501)
    g = gaspari_cohn(z, 1.0)
    assert g[0] == 1.0 and np.all(g[z >= 2.0] == 0.0)
    assert np.all(np.diff(g[z <= 2.0]) < 0)
    # continuous at z = 1 (both branches equal 5/24... evaluated just either side)
    assert abs(gaspari_cohn(1.0 - 1e-12, 1.0) - gaspari_cohn(1.0 + 1e-12, 1.0)) < 1e-9
    assert gaspari_cohn(1.0, 1.0) == pytest.approx(5.0 / 24.0, abs=1e-14)
    assert np.all(gaspari_cohn(z, np.inf) == 1.0)
    # numba covariance columns equal the NumPy Gaspari-Cohn
    xy = _grid_xy()
    cov = DistanceCovariance(xy, 1.3, 17.0)
    np.testing.assert_allclose(cov.dense(), _dense_B(xy, np.full(30, 1.3), 17.0, "gaspari_cohn"),
                               rtol=0, atol=1e-14)


@pytest.mark.parametrize("kind,length", [("gaspari_cohn", 15.0), ("gaussian", 12.0)])
def test_oi_equals_dense_kalman(linear_case, kind, length):
    c = linear_case
    B = _dense_B(c["xy"], c["sigma"], length, kind)
    xa_ref, Pa_ref = _kalman(c["xb"], B, c["H"], c["y"], c["R"])
    cov = DistanceCovariance(c["xy"], c["sigma"], length, kind)
    xa, diag = optimal_interpolation(c["xb"], c["H"], c["y"], c["R"], cov, return_pa_diag=True)
    np.testing.assert_allclose(xa, xa_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(diag.pa_diag, np.diag(Pa_ref), rtol=0, atol=1e-10)
    Hd = c["H"].toarray()
    d = c["y"] - Hd @ c["xb"]
    S = Hd @ B @ Hd.T + np.diag(c["R"])
    np.testing.assert_allclose(diag.omb, d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(diag.oma, c["y"] - Hd @ xa_ref, rtol=0, atol=1e-10)
    assert diag.chi2 == pytest.approx(d @ np.linalg.solve(S, d) / 8, rel=1e-10)
    assert diag.nobs == 8
    # the same analysis from a dense B, a plain callable and B=None with coordinates
    xa2, d2 = optimal_interpolation(c["xb"], c["H"], c["y"], c["R"], B, return_pa_diag=True)
    xa3, _ = optimal_interpolation(c["xb"], c["H"], c["y"], c["R"], lambda cols: B[:, cols])
    xa4, _ = optimal_interpolation(c["xb"], c["H"], c["y"], c["R"], cell_xy=c["xy"],
                                   sigma_b=c["sigma"], length_km=length, kind=kind)
    for other in (xa2, xa3, xa4):
        np.testing.assert_allclose(other, xa_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(d2.pa_diag, np.diag(Pa_ref), rtol=0, atol=1e-10)


def test_oi_cell_index_observations_and_chi2_consistency():
    """Point observations given as cell indices; E[chi^2] = 1 when B and R are correct."""
    rng = np.random.default_rng(3)
    xy = _grid_xy()
    idx = np.array([0, 7, 13, 22, 29, 4])
    H = observation_operator(idx, 30)
    assert H.shape == (6, 30) and np.array_equal(H.toarray().argmax(1), idx)
    B = _dense_B(xy, np.full(30, 2.0), 20.0, "gaspari_cohn")
    Lb = np.linalg.cholesky(B + 1e-12 * np.eye(30))
    R = np.full(6, 0.5)
    xb = np.zeros(30)
    chi2 = []
    for _ in range(400):
        xt = xb + Lb @ rng.standard_normal(30)
        y = xt[idx] + np.sqrt(R) * rng.standard_normal(6)
        xa, diag = optimal_interpolation(xb, idx, y, R, cell_xy=xy, sigma_b=2.0, length_km=20.0)
        chi2.append(diag.chi2)
    assert abs(np.mean(chi2) - 1.0) < 0.1
    xa_ref, _ = _kalman(xb, B, H, y, R)
    np.testing.assert_allclose(xa, xa_ref, rtol=0, atol=1e-10)


def _ensemble_with_covariance(xb, B, k, rng):
    """Members (k, n) whose sample mean is xb and sample covariance is B exactly (k - 1 >= n)."""
    n = xb.size
    Z = rng.standard_normal((k, n))
    Z -= Z.mean(axis=0)
    Q, _ = np.linalg.qr(Z)                       # (k, n), orthonormal, columns orthogonal to 1
    Xp = np.sqrt(k - 1.0) * Q @ np.linalg.cholesky(B).T
    return xb + Xp


@pytest.mark.parametrize("inflation", [1.0, 1.1])
def test_etkf_letkf_equal_kalman_when_sample_covariance_is_B(linear_case, inflation):
    c = linear_case
    B = _dense_B(c["xy"], c["sigma"], 15.0, "gaspari_cohn")
    k = 40
    Xb = _ensemble_with_covariance(c["xb"], B, k, np.random.default_rng(1))
    np.testing.assert_allclose(Xb.mean(0), c["xb"], atol=1e-12)
    np.testing.assert_allclose(np.cov(Xb.T), B, atol=1e-12)
    Yb = (c["H"] @ Xb.T).T
    xa_ref, Pa_ref = _kalman(c["xb"], inflation * B, c["H"], c["y"], c["R"])
    results = {
        "etkf": etkf_analysis(Xb, Yb, c["y"], c["R"], inflation),
        "letkf_inf": letkf_analysis(Xb, Yb, c["y"], c["R"], c["xy"], c["stations"], np.inf,
                                    inflation),
        "letkf_huge": letkf_analysis(Xb, Yb, c["y"], c["R"], c["xy"], c["stations"], 1e9,
                                     inflation),
        "etkf_rot": etkf_analysis(Xb, Yb, c["y"], c["R"], inflation,
                                  rotation=np.random.default_rng(5)),
    }
    for name, Xa in results.items():
        np.testing.assert_allclose(Xa.mean(0), xa_ref, rtol=0, atol=1e-10, err_msg=name)
        np.testing.assert_allclose(np.cov(Xa.T), Pa_ref, rtol=0, atol=1e-10, err_msg=name)


def test_letkf_localisation_cutoff_and_gaspari_cohn_decay():
    """One observation of cell 10 on a 1-D line: cells at >= 2c keep their members bit for
    bit; inside, with a spatially uniform ensemble, the mean increment is exactly
    rho s^2 / (rho s^2 + R) d with rho = GC(dist / c) (R-localisation), decaying with dist."""
    rng = np.random.default_rng(7)
    n, k, c = 50, 10, 5.0
    xy = np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    v = rng.standard_normal(k)
    Xb = 3.0 + rng.standard_normal(n)[None, :] + v[:, None] * np.ones(n)[None, :]
    Yb = Xb[:, [10]]
    y, R = np.array([Xb[:, 10].mean() + 2.0]), np.array([0.5])
    Xa = letkf_analysis(Xb, Yb, y, R, xy, xy[[10]], c)
    dist = np.abs(np.arange(n) - 10.0)
    far = dist >= 2 * c
    assert np.array_equal(Xa[:, far], Xb[:, far])
    assert not np.any(np.isclose(Xa[:, ~far].mean(0), Xb[:, ~far].mean(0), rtol=0, atol=1e-6))
    s2 = v.var(ddof=1)
    rho = gaspari_cohn(dist, c)
    expected = rho * s2 / (rho * s2 + R[0]) * 2.0
    inc = Xa.mean(0) - Xb.mean(0)
    np.testing.assert_allclose(inc, expected, rtol=0, atol=1e-12)
    right = inc[10:20]
    assert np.all(np.diff(right) < 0) and right[0] > 0
    np.testing.assert_allclose(inc[:11][::-1], inc[10:21], atol=1e-12)  # symmetric decay


def test_local_observations_periodic_and_no_obs_inflation():
    xy = np.column_stack([np.arange(40, dtype=float), np.zeros(40)])
    loc = local_observations(xy, xy[[1]], 2.0, period=(40, 0))
    reach = {i for i in range(40) if loc.indptr[i + 1] > loc.indptr[i]}
    assert reach == {38, 39, 0, 1, 2, 3, 4}
    i = 39
    assert loc.rho[loc.indptr[i]] == pytest.approx(gaspari_cohn(2.0, 2.0))
    # a point without observations is inflated about its mean by sqrt(rho) and keeps its mean
    rng = np.random.default_rng(0)
    Xb = rng.standard_normal((6, 40))
    Xa = letkf_analysis(Xb, Xb[:, [1]], np.array([0.3]), np.array([1.0]), xy, xy[[1]], 2.0,
                        1.21, period=(40, 0))
    m = Xb[:, 20].mean()
    np.testing.assert_allclose(Xa[:, 20], m + 1.1 * (Xb[:, 20] - m), atol=1e-14)


def _lorenz96_module():
    spec = importlib.util.spec_from_file_location("bench_lorenz96",
                                                  REPO / "benchmarks" / "lorenz96.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lorenz96_letkf_and_etkf_short_run():
    """Sakov & Oke (2008) setting, shortened to 300 cycles after 100 burn-in (seed 0).
    Published 1000-cycle rmse.a: LETKF N=7 0.22, ETKF N=24 0.18 (benchmarks/lorenz96.py)."""
    l96 = _lorenz96_module()
    letkf = l96.twin_experiment("letkf", 7, 1.04, 4.0, cycles=300, burn_in=100, seed=0)
    assert letkf["rmse_a"] < 0.30
    assert 0.5 < letkf["spread_a"] / letkf["rmse_a"] < 2.0
    etkf = l96.twin_experiment("etkf", 24, 1.013, cycles=300, burn_in=100, seed=0)
    assert etkf["rmse_a"] < 0.25
