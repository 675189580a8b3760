"""Initial-state perturbations of the ensemble members (`aqforecast ensemble --ic-sigma`): the
random field's statistics (centring, spread, spatial correlation, positivity, nest
consistency, reproducibility) and members run from perturbed states on the small case."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from forecast_case import small_config

from aqforecast.assimilation.ensemble import (ic_length_km, ic_sigmas, lognormal_sigma,
                                              plane_km, random_fields)
from aqforecast.cli import main
from aqforecast.config import ConfigError, load_config


def _grid_points(n=40, dx=4.0):
    x, y = np.meshgrid(np.arange(n) * dx, np.arange(n) * dx)
    return np.column_stack([x.ravel(), y.ravel()]), x.shape


def test_random_field_centred_unit_variance_gaussian_correlation():
    """Over 400 members on a 40 x 40 grid of 4 km: the mean over members is 0 at every point
    (centred: exactly), the variance 1 (ddof 1), and the correlation at distance d follows
    exp(-d^2 / (2 L^2)) with L = 16.4 km (sqrt(3/10) x 30 km): ~0.61 at L, ~0.14 at 2 L,
    ~0 at 4 L."""
    L = np.sqrt(0.3) * 30.0
    pts, shape = _grid_points()
    f = random_fields({"g": pts}, 400, L, np.random.default_rng(5))["g"]
    assert f.shape == (400, pts.shape[0])
    np.testing.assert_allclose(f.mean(axis=0), 0.0, atol=1e-12)
    var = f.var(axis=0, ddof=1)
    assert abs(var.mean() - 1.0) < 0.03 and var.min() > 0.75 and var.max() < 1.3
    g = f.reshape(400, *shape)
    for lag_cells, want in ((0, 1.0), (4, None), (8, None), (16, None)):
        d = lag_cells * 4.0
        a, b = (g[:, :, :shape[1] - lag_cells], g[:, :, lag_cells:]) if lag_cells else (g, g)
        corr = np.mean(a * b) / np.sqrt(np.mean(a * a) * np.mean(b * b))
        expect = np.exp(-d * d / (2 * L * L))
        assert abs(corr - expect) < 0.06, (d, corr, expect)


def test_random_field_uncentred_mean_and_reproducible():
    """Uncentred, the members' mean is ~0 (sampling: 1/sqrt(N)); the same seed gives the same
    fields; the same field is sampled at a nest's points (a subset here) as at the parent's."""
    pts, _ = _grid_points(20)
    f = random_fields({"g": pts}, 300, 10.0, np.random.default_rng(1), centre=False)["g"]
    assert abs(f.mean()) < 0.1 and np.all(np.abs(f.mean(axis=0)) < 4 / np.sqrt(300))
    sub = pts[::7]
    a = random_fields({"g": pts, "nest": sub}, 5, 10.0, np.random.default_rng(2))
    b = random_fields({"g": pts, "nest": sub}, 5, 10.0, np.random.default_rng(2))
    np.testing.assert_array_equal(a["g"], b["g"])
    np.testing.assert_allclose(a["nest"], a["g"][:, ::7], rtol=1e-12, atol=1e-12)


def test_plane_km():
    xy = plane_km([120.0, 121.0], [30.0, 30.0], 120.0, 30.0)
    assert xy[1, 0] == pytest.approx(96.3, abs=0.2) and xy[1, 1] == 0.0


def test_sigma_options(tmp_path):
    case = small_config(tmp_path, hours=1, tags=False)
    cfg = load_config(case)
    assert ic_sigmas(cfg) == {}  # default: no initial-state perturbation
    s = ic_sigmas(cfg, "background")  # the OI's relative background error as lognormal sigma
    assert s["PM25"] == pytest.approx(np.sqrt(np.log(1.25))) == lognormal_sigma(0.5)
    assert s["O3"] == pytest.approx(0.2936, abs=1e-4)
    assert ic_sigmas(cfg, "0.3") == {q: 0.3 for q in cfg.assimilation.species}
    assert ic_sigmas(cfg, 0) == {}
    assert ic_length_km(cfg) == pytest.approx(np.sqrt(0.3) * cfg.assimilation.length_km)
    for bad in ("abc", "-1", "3"):
        with pytest.raises(ConfigError, match="--ic-sigma"):
            ic_sigmas(cfg, bad)


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ensic")
    case = small_config(tmp, hours=3, tags=False)
    run = tmp / "run"
    assert main(["forecast", str(case), "--lead-hours", "2", "--out", str(run),
                 "--no-progress", "--no-tags"]) == 0
    return case, run


def _state(path, sp):
    with xr.open_dataset(path) as ds:
        return ds[sp].values.astype(float)


def test_members_from_perturbed_initial_states(control, capsys):
    """--ic-sigma 0.4 without emission perturbations: the members' initial states are the
    control's (cold start, rebuilt) x exp(0.4 w f): positive, log-factor centred over members
    (exactly), the same field in the nest as in the parent at the nest's cells, unperturbed in
    the free troposphere; the members' states at the end differ from the control's.
    --ic-sigma 0 and --no-emission-perturbation is refused (every member would be the
    control)."""
    import shutil

    case, run = control
    end = "2026-07-20T02"
    try:
        assert main(["ensemble", str(case), "--run", str(run), "--members", "3",
                     "--ic-sigma", "0.4", "--no-emission-perturbation", "--seed", "4"]) == 0
        base = run / "ensemble_initial" / "control"
        x0 = _state(base / "initial_d01.nc", "O3")
        members = [_state(run / "ensemble_initial" / f"m{m:02d}" / "initial_d01.nc", "O3")
                   for m in range(3)]
        lnf = np.log(np.stack(members) / x0[None])
        assert np.all(np.stack(members) > 0)
        np.testing.assert_allclose(lnf.mean(axis=0), 0.0, atol=1e-10)
        assert 0.1 < lnf[:, 0].std(ddof=1) < 0.8  # surface spread ~0.4
        np.testing.assert_allclose(lnf[:, -1], 0.0, atol=1e-12)  # top layer: not perturbed
        # PM2.5 components share one factor, NO with NO2
        for a, b in (("SO4", "PPM25"), ("NO", "NO2")):
            fa = np.log(_state(run / "ensemble_initial" / "m01" / "initial_d01.nc", a)[0] /
                        _state(base / "initial_d01.nc", a)[0])
            fb = np.log(_state(run / "ensemble_initial" / "m01" / "initial_d01.nc", b)[0] /
                        _state(base / "initial_d01.nc", b)[0])
            ok = np.isfinite(fa) & np.isfinite(fb)
            np.testing.assert_allclose(fa[ok], fb[ok], atol=1e-9)
        # the nest: the parent's field at the nest's cells (with ratio 3 every middle child
        # cell has its parent cell's centre: there the log-factors agree to round-off)
        from aqforecast.grid import grids_from_config

        grids = grids_from_config(load_config(case))
        lo1, la1 = grids["d01"].lonlat
        lo2, la2 = grids["d02"].lonlat
        f1 = np.log(members[1][0] / x0[0])
        f2 = np.log(_state(run / "ensemble_initial" / "m01" / "initial_d02.nc", "O3")[0] /
                    _state(base / "initial_d02.nc", "O3")[0])
        pairs = 0
        for j, i in np.ndindex(f2.shape):
            d = (lo1 - lo2[j, i]) ** 2 + (la1 - la2[j, i]) ** 2
            k = np.unravel_index(np.argmin(d), d.shape)
            if d[k] < 1e-8:  # the same centre (< ~1 m)
                assert abs(f2[j, i] - f1[k]) < 1e-4
                pairs += 1
        assert pairs >= 9
        ends = [_state(run / "ensemble" / f"m{m:02d}" / "restart" / end / "initial_d01.nc",
                       "O3") for m in range(3)]
        ctl = _state(run / "restart" / end / "initial_d01.nc", "O3")
        assert all(float(np.max(np.abs(e - ctl))) > 0.1 for e in ends)  # ppb
    finally:
        shutil.rmtree(run / "ensemble", ignore_errors=True)
        shutil.rmtree(run / "ensemble_initial", ignore_errors=True)
    assert main(["ensemble", str(case), "--run", str(run), "--members", "3",
                 "--ic-sigma", "0", "--no-emission-perturbation"]) == 2
    assert "members would all be the control" in capsys.readouterr().err
    assert main(["ensemble", str(case), "--run", str(run), "--members", "3",
                 "--ic-sigma", "lots"]) == 2
    assert "--ic-sigma 'lots'" in capsys.readouterr().err


def test_sigma_zero_reproduces_the_control(control):
    """A member started from the control's own state (--initial its restart) through the
    perturbation path with a null factor (sigma 1e-300: exp(sigma w f) == 1.0 exactly) equals
    the control at the end bit for bit; sigma 1e-3 does not. A control started from --initial
    that did not keep that state needs --initial (the error names it); a wrong --initial names
    the missing file."""
    import shutil

    from aqforecast.assimilation.ensemble import make_ensemble

    case, run = control
    end = "2026-07-20T02"
    # a 1 h control from the 1 h restart: its initial state is a restart (solver state too)
    short = run.parent / "short"
    assert main(["forecast", str(case), "--start", "2026-07-20T01", "--lead-hours", "1",
                 "--initial", str(run.parent / "run1h" / "restart" / "2026-07-20T01")
                 if (run.parent / "run1h").exists() else str(_hour_one(case, run.parent)),
                 "--out", str(short), "--no-progress", "--no-tags"]) == 0
    src = run.parent / "run1h" / "restart" / "2026-07-20T01"
    cfg_path = case
    # the short control keeps the state it started from in restart/<start>/ (since 7 Dec
    # 2026); one that did not keep it (moved aside here) needs --initial, the error names it
    kept = short / "restart" / "2026-07-20T01"
    assert (kept / "initial_d01.nc").read_bytes() == (src / "initial_d01.nc").read_bytes()
    aside = short / "kept_aside"
    kept.rename(aside)
    try:
        with pytest.raises(ConfigError, match="--initial"):
            make_ensemble(cfg_path, short, 3, ic_sigma=0.1, emissions=False)
    finally:
        aside.rename(kept)
    with pytest.raises(Exception, match="initial_d01.nc"):
        make_ensemble(cfg_path, short, 3, ic_sigma=0.1, initial=run.parent, emissions=False)
    for sigma, same in ((1e-300, True), (1e-3, False)):
        try:
            make_ensemble(cfg_path, short, 3, ic_sigma=sigma, initial=src, emissions=False)
            ctl = xr.load_dataset(short / "restart" / end / "initial_d01.nc")
            m = xr.load_dataset(short / "ensemble" / "m00" / "restart" / end / "initial_d01.nc")
            diff = max(float(np.max(np.abs(m[v].values - ctl[v].values)))
                       for v in ("O3", "NO2", "SO4", "PPM25"))
            assert (diff == 0.0) == same, (sigma, diff)
        finally:
            shutil.rmtree(short / "ensemble", ignore_errors=True)
            shutil.rmtree(short / "ensemble_initial", ignore_errors=True)


def _hour_one(case, tmp):
    """A 1 h run keeping its restart at 01 (the state a 1 h control starts from)."""
    out = tmp / "run1h"
    assert main(["forecast", str(case), "--lead-hours", "1", "--out", str(out),
                 "--no-progress", "--no-tags"]) == 0
    return out / "restart" / "2026-07-20T01"


def test_member_factors_without_tag_sectors(tmp_path):
    """A config that names no tag sectors (tags off) perturbs every sector of each region
    ("*"), one lognormal factor per region x pollutant and member; the table is a valid
    scaling table that resolves to that factor for any sector (it was an empty frame
    without columns, and `aqforecast ensemble` failed with KeyError 'member')."""
    from aqforecast.assimilation.ensemble import member_factors
    from aqforecast.emissions.scaling import ScalingTable

    cfg = load_config(small_config(tmp_path, hours=1, tags=False))
    cfg = cfg.model_copy(update={"tags": cfg.tags.model_copy(update={"sectors": []})})
    f = member_factors(cfg, 3, seed=1)
    regions = [r.name for r in cfg.regions] + ["outside"]
    assert list(f.columns) == ["member", "region", "sector", "pollutant", "factor"]
    assert set(f.sector) == {"*"} and len(f) == 3 * len(regions) * f.pollutant.nunique()
    m0 = f[f.member == "m00"]
    table = ScalingTable.from_rows(m0[["region", "sector", "pollutant", "factor"]]
                                   .to_dict("records"))
    pols = sorted(set(m0.pollutant))
    dense = table.resolve(regions, ["industry", "power"], pols)   # (region, sector, pollutant)
    for row in m0.itertuples():
        i, k = regions.index(row.region), pols.index(row.pollutant)
        np.testing.assert_allclose(dense[i, :, k], row.factor, rtol=1e-12)
