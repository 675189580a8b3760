"""The analysis stage: station operator, `aqforecast assimilate` on a small run with synthetic
observations, and a forecast from the analysis (the --initial contract)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from forecast_case import small_config

from aqforecast.observations.operator import (StationOperator, model_equivalent,
                                                      observation_error)
from aqforecast.cli import main
from aqforecast.config import load_config
from aqforecast.grid import grids_from_config


def test_station_operator_matrix_equals_the_sampler():
    lon, lat = np.meshgrid(np.linspace(120, 121, 7), np.linspace(30, 30.6, 5))
    op = StationOperator(lon, lat, [120.13, 120.9, 125.0], [30.21, 30.55, 30.0])
    f = np.random.default_rng(1).uniform(0, 1, lon.shape)
    got = op.H @ f.ravel()
    want = op(f)
    assert list(op.inside) == [True, True, False]
    np.testing.assert_allclose(got[:2], want[:2], rtol=1e-14)
    assert got[2] == 0.0 and np.isnan(want[2])
    np.testing.assert_allclose(np.asarray(op.H.sum(axis=1)).ravel()[:2], 1.0, rtol=1e-14)


def test_model_equivalents_and_errors():
    one = np.ones((2, 2))
    surface = {"O3": 40e-9 * one, "NO2": 10e-9 * one, "CO": 200e-9 * one, "SO4": 5e-9 * one,
               "PPM25": 10e-9 * one, "NH4": 2e-9 * one, "PPM10": 7e-9 * one}
    rho = 1.2 * one
    # 40 ppb O3 at 298.15 K, 1013.25 hPa: 40 * 47.997 * 40.874e-3 = 78.47 ug m-3
    assert model_equivalent("O3", surface, rho)[0, 0] == pytest.approx(78.47, abs=0.01)
    assert model_equivalent("CO", surface, rho)[0, 0] == pytest.approx(0.229, abs=1e-3)
    assert model_equivalent("PM25", surface, rho)[0, 0] == pytest.approx(17e-9 * 1.2 * 1e9)
    assert model_equivalent("PM10", surface, rho)[0, 0] == pytest.approx(24e-9 * 1.2 * 1e9)
    # representativeness error grows with the grid spacing
    assert observation_error("PM25", 100.0, 3.0) > observation_error("PM25", 100.0, 1.0) > 10.0
    assert observation_error("O3", 0.0, 3.0) == 4.0  # the instrument floor


@pytest.fixture(scope="module")
def background(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("assim")
    case = small_config(tmp, hours=3, tags=False)  # met to 03: a forecast from the analysis
    run = tmp / "run"
    assert main(["forecast", str(case), "--lead-hours", "2", "--out", str(run),
                 "--no-progress"]) == 0
    return case, run


def _synthetic_obs(case, run, factor, path):
    """Stations on a lattice inside d01 observing factor x the background surface O3 and
    PM2.5 of the hour that ends at the background time (a generic CSV)."""
    cfg = load_config(case)
    grid = grids_from_config(cfg)["d01"]
    lon2d, lat2d = grid.lonlat
    js, is_ = np.meshgrid(np.arange(3, grid.ny - 3, 4), np.arange(3, grid.nx - 3, 4))
    lon = lon2d[js.ravel(), is_.ravel()] + 0.003
    lat = lat2d[js.ravel(), is_.ravel()] + 0.002
    ds = xr.open_dataset(run / "restart" / "2026-07-20T02" / "initial_d01.nc")
    from aqforecast.assimilation.analysis import _surface_fields

    surface, rho = _surface_fields(ds.load())
    op = StationOperator(lon2d, lat2d, lon, lat)
    rows = []
    for q, sp in (("O3", "O3"), ("PM25", "PM2.5")):
        b = op(model_equivalent(q, surface, rho))
        for k in range(len(lon)):
            rows.append({"station": f"S{k}", "time": "2026-07-20T01:00:00Z", "species": sp,
                         "value": factor * b[k], "units": "ug m-3", "lon": lon[k],
                         "lat": lat[k]})
    pd.DataFrame(rows).to_csv(path, index=False)
    return len(lon)


def test_assimilate_moves_the_state_towards_the_observations(background, tmp_path):
    case, run = background
    obs = tmp_path / "obs.csv"
    nsta = _synthetic_obs(case, run, 1.3, obs)
    out = tmp_path / "analysis"
    assert main(["assimilate", str(case), "--background", str(run), "--obs", str(obs),
                 "--out", str(out)]) == 0
    stats = pd.read_csv(out / "statistics.csv").set_index(["domain", "quantity"])
    for q in ("O3", "PM25"):
        s = stats.loc[("d01", q)]
        assert s["n_used"] == nsta
        assert s["rms_oma"] < 0.5 * s["rms_omb"], s  # the analysis fits the observations
        assert s["mean_omb"] > 0  # observations 30 % above the background
    a = xr.open_dataset(out / "initial_d01.nc")
    b = xr.open_dataset(run / "restart" / "2026-07-20T02" / "initial_d01.nc")
    assert str(a["time"].values)[:13] == "2026-07-20T02"
    ratio = (a["O3"].isel(lev=0) / b["O3"].isel(lev=0)).values
    assert 1.0 <= ratio.min() and 1.15 < ratio.max() < 1.35  # towards the +30 % observations
    # above the boundary layer the background is kept
    top = a.sizes["lev"] - 1
    np.testing.assert_array_equal(a["O3"].isel(lev=top).values, b["O3"].isel(lev=top).values)
    # PM2.5 components scaled alike: the composition is kept
    r_so4 = (a["SO4"].isel(lev=0) / b["SO4"].isel(lev=0)).values
    r_ppm = (a["PPM25"].isel(lev=0) / b["PPM25"].isel(lev=0)).values
    np.testing.assert_allclose(r_so4, r_ppm, rtol=1e-10)
    inn = pd.read_csv(out / "innovations.csv")
    assert set(inn.columns) >= {"station", "observed", "background", "analysis", "used",
                                "reason"}
    assert (out / "_SUCCESS").exists() and (out / "increments_d01.nc").exists()
    # the analysis is a valid --initial for the next forecast
    nxt = tmp_path / "next"
    assert main(["forecast", str(case), "--start", "2026-07-20T02", "--lead-hours", "1",
                 "--initial", str(out), "--out", str(nxt), "--no-progress", "--no-tags"]) == 0


def test_assimilate_rejects_gross_errors_and_bad_requests(background, tmp_path, capsys):
    case, run = background
    obs = tmp_path / "obs.csv"
    _synthetic_obs(case, run, 1.0, obs)
    df = pd.read_csv(obs)
    df.loc[0, "value"] = df.loc[0, "value"] * 6  # one absurd innovation (QC would pass it)
    df.to_csv(obs, index=False)
    out = tmp_path / "analysis"
    assert main(["assimilate", str(case), "--background", str(run), "--obs", str(obs),
                 "--out", str(out)]) == 0
    inn = pd.read_csv(out / "innovations.csv")
    row = inn[(inn.station == "S0") & (inn.quantity == "O3") & (inn.domain == "d01")].iloc[0]
    assert not row["used"] and "gross error" in row["reason"]
    assert main(["assimilate", str(case), "--background", str(run), "--obs", str(obs),
                 "--out", str(out), "--time", "2026-07-20T05"]) == 2
    assert "no background state at 2026-07-20T05" in capsys.readouterr().err


def _make_ensemble(run, members=10, seed=0):
    """Members = the background state times smooth lognormal factors (a stand-in for perturbed
    runs: what the analysis needs is their spread)."""
    rng = np.random.default_rng(seed)
    src = run / "restart" / "2026-07-20T02"
    for m in range(members):
        dst = run / "ensemble" / f"m{m:02d}" / "restart" / "2026-07-20T02"
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.glob("initial_*.nc"):
            ds = xr.load_dataset(f)
            ny, nx = ds.sizes["y"], ds.sizes["x"]
            yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
            a, b, c = rng.normal(0, 0.25, 3)
            factor = np.exp(a + b * np.sin(np.pi * xx) + c * np.cos(np.pi * yy))
            for v in ds.data_vars:
                if "lev" in ds[v].dims and ds[v].ndim == 3:
                    ds[v].values = ds[v].values * factor[None]
            ds.to_netcdf(dst / f.name)


def test_letkf_analysis_with_an_ensemble(background, tmp_path, capsys):
    case, run = background
    obs = tmp_path / "obs.csv"
    nsta = _synthetic_obs(case, run, 1.3, obs)
    out = tmp_path / "letkf"
    args = ["assimilate", str(case), "--background", str(run), "--obs", str(obs), "--out",
            str(out), "--method", "letkf"]
    if (run / "ensemble").exists():
        import shutil

        shutil.rmtree(run / "ensemble")
    assert main(args) == 2
    assert "needs an ensemble of background runs" in capsys.readouterr().err
    _make_ensemble(run)
    try:
        assert main(args) == 0
    finally:
        import shutil

        shutil.rmtree(run / "ensemble")
    stats = pd.read_csv(out / "statistics.csv").set_index(["domain", "quantity"])
    for q in ("O3", "PM25"):
        s = stats.loc[("d01", q)]
        assert s["n_used"] == nsta and s["rms_oma"] < 0.6 * s["rms_omb"], s
    members = sorted(p.name for p in (out / "ensemble").iterdir())
    assert len(members) == 10 and (out / "ensemble" / "m00" / "initial_d02.nc").exists()
    a = xr.open_dataset(out / "initial_d01.nc")
    assert "LETKF (10 members" in a.attrs["analysis_method"]


def test_ensemble_command_then_letkf(background, tmp_path, capsys):
    """`aqforecast ensemble` makes perturbed-emission members around the control run (two dask
    worker processes) in the layout `assimilate --method letkf` reads."""
    import shutil

    case, run = background
    if (run / "ensemble").exists():
        shutil.rmtree(run / "ensemble")
    try:
        assert main(["ensemble", str(case), "--run", str(run), "--members", "4",
                     "--workers", "2"]) == 0
        members = sorted(p.name for p in (run / "ensemble").iterdir() if p.is_dir())
        assert members == ["m00", "m01", "m02", "m03"]
        f = pd.read_csv(run / "ensemble" / "members.csv")
        assert f["member"].nunique() == 4 and (f["factor"] > 0).all()
        a = xr.open_dataset(run / "ensemble" / "m00" / "restart" / "2026-07-20T02" /
                            "initial_d01.nc")
        b = xr.open_dataset(run / "ensemble" / "m01" / "restart" / "2026-07-20T02" /
                            "initial_d01.nc")
        assert float(abs(a["PPM25"] - b["PPM25"]).max()) > 0  # the members differ
        obs = tmp_path / "obs.csv"
        _synthetic_obs(case, run, 1.2, obs)
        assert main(["assimilate", str(case), "--background", str(run), "--obs", str(obs),
                     "--out", str(tmp_path / "a"), "--method", "letkf"]) == 0
    finally:
        shutil.rmtree(run / "ensemble", ignore_errors=True)
    assert main(["ensemble", str(case), "--run", str(run), "--members", "2"]) == 2
    assert "at least 3 members" in capsys.readouterr().err


def test_vertical_weights_and_analysis_depth():
    """The surface ratio's reach: full weight up to the analysis depth, an exponential decay of
    the log-ratio above (scale = vertical_decay x depth), cut below 1 %; the depth is the
    highest boundary layer of the look-back window (the residual layer), not only the PBL at T."""
    from aqforecast.assimilation.analysis import _apply_ratio, analysis_depth, vertical_weights

    z = np.array([20.0, 100.0, 300.0, 700.0, 1100.0, 1500.0, 3000.0, 8000.0])[:, None, None] \
        * np.ones((1, 2, 3))
    depth = np.array([[200.0, 700.0, 1000.0], [5.0, 1500.0, 1000.0]])
    w = vertical_weights(z, depth, 0.3)
    # exp(-500 / 60) = 2.4e-4 < 1 %: cut
    np.testing.assert_array_equal(w[:, 0, 0], [1, 1, np.exp(-100 / 60), 0, 0, 0, 0, 0])
    assert w[0, 1, 0] == 1.0 and w[1, 1, 0] == 0.0  # the lowest layer always, even h < z0
    np.testing.assert_allclose(w[4, 0, 2], np.exp(-100.0 / 300.0))
    assert (w[-1] == 0).all() and ((w >= 0) & (w <= 1)).all()
    # decay 0: the old sharp cut at the depth
    np.testing.assert_array_equal(vertical_weights(z, depth, 0.0), (z <= np.maximum(
        depth, z[0])[None]).astype(float))
    # r^w: w = 0 keeps the background bit for bit, w = 1 the full ratio
    v = np.full(z.shape, 7.0)
    r = np.full((2, 3), 1.5)
    out = _apply_ratio(v, r, w)
    assert out[0, 0, 0] == 10.5 and out[-1, 0, 0] == 7.0
    assert 7.0 < out[2, 0, 0] < 10.5

    class Met:  # three hourly records; the PBL collapses from 1500 m to 200 m
        times = np.array(["2026-07-20T00", "2026-07-20T01", "2026-07-20T02"],
                         dtype="datetime64[s]")
        pbl = {0: 1500.0, 1: 800.0, 2: 200.0}

        def field(self, name, t):
            assert name == "pblh"
            k = int((np.datetime64(t, "s") - self.times[0]) / np.timedelta64(1, "h"))
            return np.full((2, 3), self.pbl[k])

    t = "2026-07-20T02"
    assert analysis_depth(Met(), t, 0.0)[0, 0] == 200.0
    assert analysis_depth(Met(), t, 1.0)[0, 0] == 800.0
    assert analysis_depth(Met(), t, 24.0)[0, 0] == 1500.0  # earlier records than the met: none


def test_assimilate_reaches_the_residual_layer(background, tmp_path):
    """Default: the ratio reaches above the PBL at T (the look-back's highest boundary layer,
    then a decay); mixed_layer_hours 0 and vertical_decay 0: only the layers below the PBL at
    T change, as before."""
    import yaml

    from aqforecast.met import MetProvider

    case, run = background
    obs = tmp_path / "obs.csv"
    _synthetic_obs(case, run, 1.3, obs)
    old = tmp_path / "old.yaml"
    from aqforecast.config import read_yaml

    raw = read_yaml(case)
    raw.setdefault("assimilation", {}).update({"mixed_layer_hours": 0, "vertical_decay": 0})
    old.write_text(yaml.safe_dump(raw, sort_keys=False))
    for cfg, out in ((case, tmp_path / "new"), (old, tmp_path / "old")):
        assert main(["assimilate", str(cfg), "--background", str(run), "--obs", str(obs),
                     "--out", str(out)]) == 0
    b = xr.open_dataset(run / "restart" / "2026-07-20T02" / "initial_d01.nc")["O3"].values
    new = xr.open_dataset(tmp_path / "new" / "initial_d01.nc")["O3"].values
    old_a = xr.open_dataset(tmp_path / "old" / "initial_d01.nc")["O3"].values
    cfg = load_config(case)
    grids = grids_from_config(cfg)
    met = MetProvider.from_config(cfg, "d01", grids)
    try:
        s = met.state(np.datetime64("2026-07-20T02"))
        in_pbl = s.z_centre <= np.maximum(s.pblh, s.z_centre[0])[None]
        from aqforecast.assimilation.analysis import analysis_depth

        depth = analysis_depth(met, np.datetime64("2026-07-20T02"), 24.0)
    finally:
        met.close()
    changed_old = np.abs(old_a - b) > 1e-6 * np.abs(b)
    assert not changed_old[~in_pbl].any()  # the old rule: nothing above the PBL at T
    np.testing.assert_allclose(new[in_pbl], old_a[in_pbl], rtol=1e-5)  # same surface ratio
    changed_new = np.abs(new - b) > 1e-6 * np.abs(b)
    assert changed_new.sum() > changed_old.sum()  # the residual layer / decay zone too
    assert (depth >= s.pblh - 1e-6).all()
    top = b.shape[0] - 1
    np.testing.assert_array_equal(new[top], b[top])  # the free troposphere is kept


def test_letkf_control_analysed_from_its_own_innovations():
    """recentre: the members' mean becomes the control, their relative spread is kept; the
    LETKF mean analysis of the recentred ensemble is then the control's own analysis, which
    fits the observations better than its background even when the raw ensemble mean is far
    from the control (before, the control took the ensemble-mean increment: here a step away
    from the observations)."""
    from aqforecast.assimilation import letkf_analysis
    from aqforecast.assimilation.analysis import recentre

    rng = np.random.default_rng(4)
    n, k = 40, 12
    xy = np.column_stack([np.arange(n) * 3.0, np.zeros(n)])
    xb = 20.0 + 5.0 * np.sin(np.arange(n) / 6.0)
    Xb_own = 1.6 * xb[None] * np.exp(rng.normal(0.0, 0.3, (k, 1)) +
                                     0.1 * rng.normal(0.0, 1.0, (k, n)))  # mean ~1.7 x control
    Xb = recentre(Xb_own, xb)
    np.testing.assert_allclose(Xb.mean(axis=0), xb, rtol=1e-12)
    np.testing.assert_allclose(Xb / Xb.mean(axis=0), Xb_own / Xb_own.mean(axis=0), rtol=1e-12)
    assert (Xb >= 0).all()
    obs = np.arange(2, n, 5)
    truth = 1.2 * xb
    y = truth[obs]
    r2 = np.full(obs.size, 1.0)
    H = np.zeros((obs.size, n))
    H[np.arange(obs.size), obs] = 1.0

    def analysis(E):
        Xa = letkf_analysis(E, E @ H.T, y, r2, xy, xy[obs], 30.0, 1.0)
        return xb + Xa.mean(axis=0) - E.mean(axis=0)

    xa_new, xa_old = analysis(Xb), analysis(Xb_own)
    rms = lambda x: float(np.sqrt(np.mean((y - H @ x) ** 2)))  # noqa: E731
    assert rms(xa_new) < 0.5 * rms(xb)
    assert rms(xa_old) > rms(xb)  # the ensemble-mean increment, applied to the control
