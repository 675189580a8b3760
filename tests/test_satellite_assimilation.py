"""TROPOMI NO2 in the cycle: the observation stage's satellite_no2.nc, the column operator as a
linear observation of the surface NO2 field, and the analysis (closed form, OSSE-like case)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sparse
import xarray as xr
import yaml
from forecast_case import small_config

from aqforecast.assimilation.oi import DistanceCovariance, optimal_interpolation
from aqforecast.assimilation.satellite import column_observation_operator, innovation_chi2
from aqforecast.cli import main
from aqforecast.config import load_config
from aqforecast.grid import grids_from_config
from aqforecast.observations.satellite import (column_sensitivity,
                                               tm5_hybrid_coefficients,
                                               tropospheric_column_operator,
                                               write_synthetic_tropomi_no2)

HEADER_NAME = ("S5P_OFFL_L2__NO2____20200303T013547_20200303T031717_12367_01_010302_"
               "20200306T053815_METADATA_ONLY.nc")


# ---------------------------------------------------------------- operator and closed form
def test_column_sensitivity_is_the_operator_jacobian():
    rng = np.random.default_rng(0)
    nlev, npix = 6, 5
    a, b = tm5_hybrid_coefficients()
    ps = rng.uniform(98000, 102000, npix)
    pm = np.linspace(1.0, 0.0, nlev + 1)[:, None] * (ps - 10000.0)[None] + 10000.0
    ak = rng.uniform(0.3, 1.5, (npix, 34))
    args = (ak, a, b, ps, np.full(npix, 20), rng.uniform(1, 2, npix), rng.uniform(0.8, 1.5, npix))
    vmr = rng.uniform(0, 5e-9, (nlev, npix))
    G = column_sensitivity(pm, *args)
    np.testing.assert_allclose(np.sum(G * vmr.T, axis=1),
                               tropospheric_column_operator(vmr, pm, *args), rtol=1e-12)


def _small_problem(seed=1, nz=5, ny=6, nx=7, nsta=4, ncol=9):
    rng = np.random.default_rng(seed)
    n = ny * nx
    xx, yy = np.meshgrid(np.arange(nx) * 3.0, np.arange(ny) * 3.0)
    cell_xy = np.column_stack([xx.ravel(), yy.ravel()])
    vmr_b = rng.uniform(1e-9, 8e-9, (nz, n)) * np.exp(-np.arange(nz))[:, None]
    in_pbl = np.arange(nz)[:, None] < rng.integers(1, nz, n)[None]  # layer 0 always in
    s_b = 1880.0 * vmr_b[0] * 1e3  # ug m-3 of 1 ppb NO2 ~ 1.88: a linear map of layer 0
    cell = rng.choice(n, ncol, replace=False)
    K = rng.uniform(0.5, 1.5, (ncol, nz)) * 4.0e3  # mol m-2 per mol mol-1 (~ dp / g M)
    # stations: bilinear-like rows of up to 4 cells summing to 1
    rows, cols, vals = [], [], []
    for o in range(nsta):
        c = rng.choice(n, 4, replace=False)
        w = rng.uniform(0.1, 1, 4)
        rows += [o] * 4
        cols += list(c)
        vals += list(w / w.sum())
    Hst = sparse.csr_matrix((vals, (rows, cols)), shape=(nsta, n))
    return rng, n, cell_xy, vmr_b, in_pbl, s_b, cell, K, Hst


def test_column_operator_is_exact_for_the_ratio_structure():
    """H s + offset is the AK column of the state whose boundary layer is the background's
    times s / s_b (the analysis' vertical structure), for any s."""
    rng, n, _, vmr_b, in_pbl, s_b, cell, K, _ = _small_problem()
    H, offset, hb = column_observation_operator(K, cell, vmr_b, in_pbl, s_b)
    np.testing.assert_allclose(H @ s_b + offset, hb, rtol=1e-13)
    s = s_b * rng.uniform(0.3, 3.0, n)
    vmr = np.where(in_pbl, vmr_b * (s / s_b)[None], vmr_b)
    want = np.sum(K * vmr[:, cell].T, axis=1)
    np.testing.assert_allclose(H @ s + offset, want, rtol=1e-12)


def test_joint_update_equals_closed_form_kalman_analysis():
    """Stations and columns in one OI = the closed-form Kalman analysis of the 3-D NO2 field
    with the covariance the ratio structure implies (B3 = L B L^T), to 1e-10."""
    rng, n, cell_xy, vmr_b, in_pbl, s_b, cell, K, Hst = _small_problem()
    nz = vmr_b.shape[0]
    B = DistanceCovariance(cell_xy, 0.5 * s_b, 6.0)
    Bd = B.dense()
    Hc, offset, hb = column_observation_operator(K, cell, vmr_b, in_pbl, s_b)
    y_st = Hst @ s_b * rng.uniform(1.1, 1.4, Hst.shape[0])
    y_col = hb * rng.uniform(1.2, 1.6, hb.size)
    r_st = (0.1 * y_st) ** 2
    r_col = (0.15 * y_col) ** 2
    H = sparse.vstack([Hst, Hc]).tocsr()
    s_a, diag = optimal_interpolation(s_b, H, np.concatenate([y_st, y_col - offset]),
                                      np.concatenate([r_st, r_col]), B)
    x3_a = np.where(in_pbl, vmr_b * (s_a / s_b)[None], vmr_b).ravel()   # (nz*n,) lev-major
    # closed form in the 3-D state: x3 = x3_b + L (s - s_b), L = in_pbl * vmr_b / s_b
    L = np.zeros((nz * n, n))
    for k in range(nz):
        L[k * n:(k + 1) * n] = np.diag(np.where(in_pbl[k], vmr_b[k] / s_b, 0.0))
    B3 = L @ Bd @ L.T
    x3_b = vmr_b.ravel()
    H3 = np.zeros((Hst.shape[0] + cell.size, nz * n))
    H3[:Hst.shape[0], :n] = Hst.toarray() * (s_b / vmr_b[0])[None]      # surface: s = c vmr_0
    for o, c in enumerate(cell):
        H3[Hst.shape[0] + o, np.arange(nz) * n + c] = K[o]
    R = np.diag(np.concatenate([r_st, r_col]))
    y = np.concatenate([y_st, y_col])
    S = H3 @ B3 @ H3.T + R
    d = y - H3 @ x3_b
    want = x3_b + B3 @ H3.T @ np.linalg.solve(S, d)
    scale = np.abs(want).max()
    assert np.max(np.abs(x3_a - want)) < 1e-10 * scale
    assert diag.chi2 == pytest.approx(float(d @ np.linalg.solve(S, d)) / d.size, rel=1e-10)
    # the columns' own chi^2 block
    dc = y_col - hb
    Sc = Hc.toarray() @ Bd @ Hc.toarray().T + np.diag(r_col)
    assert innovation_chi2(Hc, dc, r_col, B) == pytest.approx(
        float(dc @ np.linalg.solve(Sc, dc)) / dc.size, rel=1e-10)


# ---------------------------------------------------------------- stage and OSSE-like case
@pytest.fixture(scope="module")
def case(tmp_path_factory, shared_data):
    """A 2-hour background run (T = 2026-07-20T02), a config with a station CSV and a TROPOMI
    glob, and granules made from truth = 1.5 x the background NO2."""
    header = shared_data / "satellite_schema" / HEADER_NAME
    if not header.exists():
        pytest.skip(f"real TROPOMI header file not found at {header}")
    tmp = tmp_path_factory.mktemp("satassim")
    path = small_config(tmp, hours=3, tags=False)
    run = tmp / "run"
    assert main(["forecast", str(path), "--lead-hours", "2", "--out", str(run),
                 "--no-progress"]) == 0
    cfg = load_config(path)
    grid = grids_from_config(cfg)["d01"]
    bg = xr.load_dataset(run / "restart" / "2026-07-20T02" / "initial_d01.nc")
    from aqforecast.met import MetProvider

    met = MetProvider.from_config(cfg, "d01")
    try:
        state = met.state(np.datetime64("2026-07-20T02:00"))
    finally:
        met.close()
    p_mid = state.p
    p_sfc = state.mu_dry + grid.vertical.p_top  # the model's surface: TM5's in the granule
    no2 = bg["NO2"].values * 1e-9  # mol mol-1 (nz, ny, nx)

    def cell_of(lon, lat):
        x, y = grid.to_xy(lon, lat)
        i = np.clip(np.searchsorted(grid.x_edges, x) - 1, 0, grid.nx - 1)
        j = np.clip(np.searchsorted(grid.y_edges, y) - 1, 0, grid.ny - 1)
        return j, i

    def surface_pressure(lon, lat):
        return p_sfc[cell_of(lon, lat)]

    def truth(lon, lat, p):
        """1.5 x the background NO2 profile of the d01 cell under each pixel, log-p linear."""
        j, i = cell_of(np.broadcast_to(lon, p.shape[:2] + (1,))[..., 0],
                       np.broadcast_to(lat, p.shape[:2] + (1,))[..., 0])
        out = np.zeros(p.shape)
        for a in range(p.shape[0]):
            for b in range(p.shape[1]):
                pm, v = p_mid[:, j[a, b], i[a, b]], no2[:, j[a, b], i[a, b]]
                out[a, b] = np.interp(-np.log(p[a, b]), -np.log(pm), v, right=0.0)
        return 1.5 * out

    sat = tmp / "s5p"
    sat.mkdir()
    kw = dict(n_scanline=16, n_ground_pixel=28, seed=5, surface_pressure_fn=surface_pressure)
    write_synthetic_tropomi_no2(sat / "S5P_OFFL_L2__NO2____20260720T0120_in.nc", header,
                                (119.85, 120.75), (29.85, 30.55), "2026-07-20T01:20:00",
                                truth, **kw)
    write_synthetic_tropomi_no2(sat / "S5P_OFFL_L2__NO2____20260720T0512_out.nc", header,
                                (119.85, 120.75), (29.85, 30.55), "2026-07-20T05:12:00",
                                truth, **kw)
    # stations: O3 at the background (no O3 increment), hours of two cycles' windows
    lon2d, lat2d = grid.lonlat
    rows = []
    for k, (j, i) in enumerate([(5, 5), (10, 12), (15, 18)]):
        for t in ("2026-07-19T10:00:00Z", "2026-07-20T01:00:00Z"):
            rows.append({"station": f"S{k}", "time": t, "species": "O3",
                         "value": float(bg["O3"].values[0, j, i]), "units": "ppb",
                         "lon": lon2d[j, i], "lat": lat2d[j, i]})
    pd.DataFrame(rows).to_csv(tmp / "stations.csv", index=False)
    data = yaml.safe_load(path.read_text())
    data["inputs"]["observations"] = {
        "sources": [{"path": str(tmp / "stations.csv"), "format": "generic"}],
        "window_hours": 6, "satellite": {"path": str(sat / "S5P_*.nc"), "qa_min": 0.75}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_config(path)
    return path, run, tmp


def test_observation_stage_writes_superobs_of_the_window_only(case, tmp_path):
    path, _, _ = case
    out = tmp_path / "obs"
    assert main(["observations", str(path), "--cycle", "2026-07-20T02", "--out",
                 str(out)]) == 0
    ds = xr.open_dataset(out / "satellite_no2.nc")
    assert set(np.unique(ds["domain"].values.astype(str))) == {"d01", "d02"}
    assert ds.attrs["source_files"].endswith("_in.nc")  # the 05:12 granule is outside
    assert np.all(ds["qa_value"].values >= 0.75)
    assert (ds["time"].values >= np.datetime64("2026-07-20T01:20")).all()
    assert ds["no2_tropospheric_column"].attrs["units"] == "mol m-2"
    assert (ds["no2_tropospheric_column_error"] > 0).all() and (ds["n_pixels"] >= 1).all()
    assert ds["averaging_kernel"].dims == ("pixel", "layer")
    # the superobs = its weighted pixel columns
    w = np.zeros((ds.sizes["obs"], ds.sizes["pixel"]))
    np.add.at(w, (ds["entry_obs"].values, ds["entry_pixel"].values), ds["entry_weight"].values)
    np.testing.assert_allclose(w @ ds["pixel_column"].values,
                               ds["no2_tropospheric_column"].values, rtol=1e-6)
    listed = [f["path"] for f in json.loads((out / "_SUCCESS").read_text())["files"]]
    assert "satellite_no2.nc" in listed and "obs.nc" in listed
    # a cycle whose window holds no overpass: obs.nc only
    out2 = tmp_path / "obs2"
    assert main(["observations", str(path), "--cycle", "2026-07-19T12", "--out",
                 str(out2)]) == 0
    assert (out2 / "obs.nc").exists() and not (out2 / "satellite_no2.nc").exists()
    listed = [f["path"] for f in json.loads((out2 / "_SUCCESS").read_text())["files"]]
    assert listed == ["obs.nc"]


def test_analysis_of_columns_moves_no2_towards_the_truth(case, tmp_path):
    path, run, _ = case
    obs = tmp_path / "obs"
    assert main(["observations", str(path), "--cycle", "2026-07-20T02", "--out",
                 str(obs)]) == 0
    out = tmp_path / "analysis"
    assert main(["assimilate", str(path), "--background", str(run), "--obs",
                 str(obs / "obs.nc"), "--out", str(out)]) == 0
    stats = pd.read_csv(out / "statistics.csv").set_index(["domain", "quantity"])
    for dom in ("d01", "d02"):
        s = stats.loc[(dom, "NO2_column")]
        assert s["n_used"] > 5, s
        assert s["mean_omb"] > 0  # truth is 1.5 x the background
        assert s["rms_oma"] < 0.7 * s["rms_omb"], s
        assert np.isfinite(s["chi2"]) and s["chi2"] > 0
    assert ("d01", "O3") in stats.index  # the stations beside the columns
    inn = pd.read_csv(out / "innovations.csv")
    col = inn[(inn.quantity == "NO2_column") & inn.used]
    assert (np.abs(col.observed - col.analysis) <= np.abs(col.observed - col.background)
            + 1e-12).mean() > 0.9
    a = xr.open_dataset(out / "initial_d01.nc")
    b = xr.open_dataset(run / "restart" / "2026-07-20T02" / "initial_d01.nc")
    a0, b0 = a["NO2"].isel(lev=0).values, b["NO2"].isel(lev=0).values
    truth0 = 1.5 * b0
    assert np.mean(np.abs(a0 - truth0)) < 0.7 * np.mean(np.abs(b0 - truth0))
    assert (a0 >= b0 * (1 - 1e-9)).all()  # every increment towards the (higher) truth
    # NO scaled by the same ratio (the NOx partition kept)
    r_no2 = a0 / b0
    r_no = a["NO"].isel(lev=0).values / b["NO"].isel(lev=0).values
    ok = b["NO"].isel(lev=0).values > 0
    np.testing.assert_allclose(r_no[ok], r_no2[ok], rtol=1e-8)
    # no NO2 station here: the column ratio scales every layer (the profile shape is kept)
    top = a.sizes["lev"] - 1
    np.testing.assert_allclose(a["NO2"].isel(lev=top).values / b["NO2"].isel(lev=top).values,
                               r_no2, rtol=1e-8)
    assert "satellite_no2.nc" in a.attrs["analysis_observations"]


def test_letkf_analyses_the_columns_too(case, tmp_path):
    """--method letkf with an ensemble (lognormal factors of the background), the satellite
    file given explicitly (stages.assimilate(satellite=...))."""
    import shutil

    from aqforecast import stages

    path, run, _ = case
    obs = tmp_path / "obs"
    assert main(["observations", str(path), "--cycle", "2026-07-20T02", "--out",
                 str(obs)]) == 0
    moved = tmp_path / "elsewhere.nc"
    shutil.move(obs / "satellite_no2.nc", moved)
    rng = np.random.default_rng(2)
    src = run / "restart" / "2026-07-20T02"
    try:
        for m in range(8):
            dst = run / "ensemble" / f"m{m:02d}" / "restart" / "2026-07-20T02"
            dst.mkdir(parents=True)
            for f in src.glob("initial_*.nc"):
                ds = xr.load_dataset(f)
                yy, xx = np.meshgrid(np.linspace(0, 1, ds.sizes["y"]),
                                     np.linspace(0, 1, ds.sizes["x"]), indexing="ij")
                a, b, c = rng.normal(0, 0.3, 3)
                factor = np.exp(a + b * np.sin(np.pi * xx) + c * np.cos(np.pi * yy))
                for v in ds.data_vars:
                    if ds[v].dims == ("lev", "y", "x"):
                        ds[v].values = ds[v].values * factor[None]
                ds.to_netcdf(dst / f.name)
        stages.assimilate(path, run, obs / "obs.nc", tmp_path / "a", method="letkf",
                          satellite=moved)
    finally:
        shutil.rmtree(run / "ensemble", ignore_errors=True)
    s = pd.read_csv(tmp_path / "a" / "statistics.csv").set_index(["domain", "quantity"])
    s = s.loc[("d01", "NO2_column")]
    assert s["n_used"] > 5 and s["rms_oma"] < 0.7 * s["rms_omb"], s
    assert (tmp_path / "a" / "ensemble" / "m00" / "initial_d01.nc").exists()
