"""The nested forecast end to end on a small case: budgets, tags, resume, MPI, nesting."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aqforecast.config import load_config
from aqforecast.forecast import build_models, run_forecast
from aqforecast.transport.simulation import Callback, Simulation

from forecast_case import small_config

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return small_config(tmp_path_factory.mktemp("fc"), hours=4)


@pytest.fixture(scope="module")
def straight(case, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    run_forecast(case, 4, out, progress=False)
    return out


def test_outputs_and_layout(straight):
    for d in ("d01", "d02"):
        ds = xr.open_dataset(straight / f"conc_{d}.nc")
        assert ds["O3"].dims == ("time", "lev", "y", "x")
        assert ds.sizes["time"] == 4 and ds.attrs["start_type"] == "cold"
        assert float(ds["O3"].min()) > 0 and float(ds["O3"].max()) < 300
        tg = xr.open_dataset(straight / f"tags_{d}.nc")
        assert tg["O3"].dims == ("tag", "time", "lev", "y", "x")
        assert "tag_region" in tg.coords and "tag_sector" in tg.coords
        assert {"initial", "boundary", "Hangzhou"} <= set(tg["tag_region"].values)
        # tags sum to the bulk (float32 output)
        for v in [v for v in tg.data_vars if "tag" in tg[v].dims]:
            total = tg[v].sum("tag").isel(lev=0)
            bulk = ds[v].isel(lev=0).sel(time=tg["time"])
            np.testing.assert_allclose(total, bulk, rtol=2e-5, atol=1e-6 * float(bulk.max()))
    assert not (straight / ".parts").exists()


def test_budgets_close(straight):
    for d in ("d01", "d02"):
        b = pd.read_csv(straight / f"budget_{d}.csv")
        assert (b["relative_residual"].abs() < 1e-12).all(), b
        assert b.set_index("species").loc["NO", "emitted_kg"] > 0
        assert b.set_index("species").loc["O3", "dry_deposited_kg"] > 0


@pytest.mark.parametrize("storage,limit", [("float64", 1e-10), ("float32", 1e-6)])
def test_tags_sum_to_bulk_in_model(case, storage, limit):
    """Tags (chemistry, emissions, nesting) sum to the bulk: to float64 round-off with float64
    storage, within float32 rounding with the forecasts' float32 storage."""
    cfg = load_config(case)
    cfg = cfg.model_copy(update={"tags": cfg.tags.model_copy(
        update={"storage_precision": storage})})
    models = build_models(cfg)
    for m in models:
        m.cold_start()
    sim = Simulation(models, models[0].time + np.timedelta64(2, "h"), cfg.time.sync_step_s)
    sim.run()
    for m in models:
        assert m.tagc.dtype == np.dtype(storage)
        tags = m.tag_conc().astype(np.float64)
        bulk = m.conc()[m.tag_rows]
        rel = np.abs(tags.sum(axis=1) - bulk) / np.maximum(np.abs(bulk), 1e-30)
        assert rel[bulk > 1e-20].max() < limit
        assert tags.min() >= -1e-25


def test_tag_files_follow_tags_dtype_and_sum_to_bulk(case, straight):
    """tags_<domain>.nc are stored in the configured ``tags.dtype`` (float32 in the sample
    config); summed over the tag axis they equal the bulk field of conc_<domain>.nc at the same
    levels to the float32 rounding (~1e-7)."""
    from aqforecast.config import load_config

    dtype = np.dtype(load_config(case).tags.dtype)
    for d in ("d01", "d02"):
        tags = xr.open_dataset(straight / f"tags_{d}.nc")
        conc = xr.open_dataset(straight / f"conc_{d}.nc")
        for v in ("SO2", "PPM25", "O3"):
            assert tags[v].dtype == dtype, (d, v, tags[v].dtype)
            total = tags[v].astype(np.float64).sum("tag")
            bulk = conc[v].sel(lev=tags["lev"], time=tags["time"]).astype(np.float64)
            np.testing.assert_allclose(total.values, bulk.values,
                                       rtol=2e-6 if dtype == np.float32 else 1e-9,
                                       atol=1e-6 * float(bulk.max()))


def test_resume_equals_straight_run(case, straight, tmp_path):
    """Kill a forecast subprocess after its first restart, resume, compare with a straight run."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "aqforecast.cli", "forecast", str(case), "--lead-hours", "4",
           "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    restart = out / "restart" / "latest"
    deadline = time.time() + 240
    while not restart.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "conc_d01.nc").exists()
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    for name in ("conc_d01", "conc_d02", "tags_d01", "tags_d02"):
        a = xr.open_dataset(straight / f"{name}.nc")
        b = xr.open_dataset(out / f"{name}.nc")
        assert np.array_equal(a["time"].values, b["time"].values)
        for v in a.data_vars:
            np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=f"{name} {v}")
    pa = pd.read_csv(straight / "budget_d01.csv")
    pb = pd.read_csv(out / "budget_d01.csv")
    np.testing.assert_allclose(pa["final_kg"], pb["final_kg"], rtol=1e-13)


def _mpiexec():
    exe = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return exe


@pytest.mark.mpi
@pytest.mark.parametrize("grid", ["1 2", "2 1"])
def test_two_ranks_equal_one_rank(case, straight, tmp_path, grid):
    exe = _mpiexec()
    if exe is None:
        pytest.skip("mpiexec/mpi4py not available")
    import yaml

    from aqforecast.config import read_yaml

    data = read_yaml(case)
    data["parallel"]["process_grid"] = [int(g) for g in grid.split()]
    if hasattr(data["time"]["start"], "isoformat"):
        data["time"]["start"] = data["time"]["start"].isoformat()
    cfg = tmp_path / "mpi.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "mpi"
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    res = subprocess.run([exe, "-n", "2", sys.executable, "-m", "aqforecast.cli", "forecast",
                          str(cfg), "--lead-hours", "4", "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("conc_d01", "conc_d02", "tags_d01", "tags_d02"):
        a = xr.open_dataset(straight / f"{name}.nc")
        b = xr.open_dataset(out / f"{name}.nc")
        for v in a.data_vars:  # bit for bit: every operator is the serial one
            np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=f"{name} {v}")


def test_uniform_field_stays_uniform_in_parent_and_nest(tmp_path):
    """Free-stream preservation through the nested system: a uniform mixing ratio inside and on
    the inflow boundaries stays uniform in both domains (nest == parent), and the budget terms
    other than the boundary stay at round-off (the field is uniform to ~1e-16, not bit-exactly:
    vertical mixing of that round-off moves ~1e-17 of the column mass)."""
    case = small_config(tmp_path, hours=3, tags=False, chemistry=False, emissions=False)
    cfg = load_config(case)
    models = build_models(cfg)
    for m in models:
        m.conc()[...] = 40e-9
        m.mass[...] = m.layout.local(m.met.state(m.time).mass)
        m.drydep = lambda *a, _m=m: np.zeros((_m.nspec,) + _m.layout.block_shape)
        m.wet.coef_a[:] = 0.0
        m.background_profiles = lambda s, _m=m: np.full((_m.nspec, _m.shape[0]), 40e-9)
    sim = Simulation(models, models[0].time + np.timedelta64(3, "h"), cfg.time.sync_step_s)
    sim.run()
    for m in models:
        np.testing.assert_allclose(m.conc(), 40e-9, rtol=1e-12)
        budget = sum(abs(v).sum() for k, v in m.budget.items() if k != "boundary")
        total = np.abs(m.total_local()).sum()
        assert budget <= 1e-14 * total, {k: abs(v).sum() / total for k, v in m.budget.items()}


def test_tracer_mass_conserved_by_transport_in_divergent_flow(tmp_path):
    """A compact tracer blob far from the lateral boundaries (nothing flows in or out) keeps
    its mass sum(q M) through a 15-minute step of the real, divergent met to round-off: the x and y
    sweeps must each see the air mass the previous sweep left (an x sweep whose mass was
    advanced twice broke this at ~1e-4)."""
    case = small_config(tmp_path, hours=2, tags=False, chemistry=False, emissions=False)
    cfg = load_config(case)
    models = build_models(cfg)
    parent = models[0]
    for m in models:
        m.cold_start()
        m.conc()[...] = 0.0
        m.drydep = lambda *a, _m=m: np.zeros((_m.nspec,) + _m.layout.block_shape)
        m.wet.coef_a[:] = 0.0
        m.background_profiles = lambda s, _m=m: np.zeros((_m.nspec, _m.shape[0]))
    nz, ny, nx = parent.shape
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    r = np.hypot(jj - ny / 2, ii - nx / 2)
    blob = np.where(r < 4.0, np.cos(np.pi * r / 8.0) ** 2, 0.0) * 50e-9
    parent.conc()[0, : nz // 2] = blob
    parent.mass[...] = parent.layout.local(parent.met.state(parent.time).mass)
    before = parent.total_local()[0]
    sim = Simulation(models, parent.time + np.timedelta64(cfg.time.sync_step_s, "s"),
                     cfg.time.sync_step_s)
    sim.run()
    after = parent.total_local()[0]
    assert not np.allclose(parent.conc()[0, : nz // 2], blob)  # it moved
    budget = {k: float(v[0]) for k, v in parent.budget.items()}
    # advection (booked as "boundary") conserves to round-off; every change is booked
    assert abs(budget["boundary"]) <= 1e-12 * before, budget
    assert abs(after - before - sum(budget.values())) <= 1e-12 * before
    # vertical mixing weighs the columns with the model's air mass M, so it conserves sum(q M)
    # too (with the met's mid-step rho dz, 3e-9 of the mass was booked as "emitted")
    assert abs(budget["emitted"]) <= 1e-12 * before, budget
    assert abs(after - before) <= 1e-12 * before, (after - before) / before


def test_products_stage_on_forecast(case, straight, tmp_path):
    from aqforecast.cli import main

    out = tmp_path / "products"
    assert main(["products", str(case), "--run", str(straight), "--out", str(out),
                 "--max-map-days", "1"]) == 0
    names = {p.name for p in out.iterdir()}
    for d in ("d01", "d02"):
        assert {f"surface_hourly_{d}.nc", f"leadwindow_{d}.nc", f"hotspots_pm25_{d}.csv",
                f"receptors_city_{d}.csv"} <= names
    maps = out / "maps" / "d01"
    assert (maps / "hotspots_pm25.png").stat().st_size > 10_000
    assert len(list(maps.glob("share_pm25_sector_*.png"))) >= 5
    rec = pd.read_csv(out / "receptors_city_d01.csv")
    sums = rec.groupby(["receptor", "date", "pollutant", "by"])["share_percent"].sum()
    # the table is written with 6 significant digits ("%.6g"): each share is off by at most
    # 5e-6 of itself, so non-negative shares sum to 100 within 5e-6 relative
    np.testing.assert_allclose(sums.values, 100.0, rtol=5e-6)
    ds = xr.open_dataset(out / "surface_hourly_d01.nc")
    assert ds["PM25"].attrs["units"] in ("ug m-3", "µg m-3", "ug/m3")


def test_nest_boundary_air_mass_flux_matches_parent(case):
    """The nest's met fluxes through its boundary faces add up to the parent's (3 child faces
    per parent face): each face's total to 2e-3 and every parent face to 1e-2 of the largest.
    (Near the ground the 1 km met resolves the coastline better; that is where they differ.)"""
    from aqforecast.grid import grids_from_config, nests_from_config
    from aqforecast.met import MetProvider

    cfg = load_config(case)
    grids = grids_from_config(cfg)
    nest = nests_from_config(cfg, grids)["d02"]
    parent = MetProvider.from_config(cfg, "d01", grids)
    child = MetProvider.from_config(cfg, "d02", grids)
    r = nest.ratio
    sj, si = nest.parent_slices
    for hour in (0, 2):
        t = np.datetime64(cfg.time.start) + np.timedelta64(hour, "h")
        fp = parent.air_mass_fluxes(t, 900.0)
        fc = child.air_mass_fluxes(t, 900.0)
        nz = fc.flux_x.shape[0]
        pairs = [(fc.flux_x[:, :, 0], fp.flux_x[:, sj, si.start]),
                 (fc.flux_x[:, :, -1], fp.flux_x[:, sj, si.stop]),
                 (fc.flux_y[:, 0, :], fp.flux_y[:, sj.start, si]),
                 (fc.flux_y[:, -1, :], fp.flux_y[:, sj.stop, si])]
        for c, p in pairs:
            summed = c.reshape(nz, -1, r).sum(axis=-1)
            assert np.abs(summed - p).max() <= 1e-2 * np.abs(p).max()
            assert abs(summed.sum() - p.sum()) <= 2e-3 * np.abs(p).sum()


def test_no_edge_artefacts_at_nest_interface(straight):
    """Near its boundary the nest stays as smooth as inside: the largest cell-to-cell jump in
    the two outer rings is at most that of the interior (plus 10 %), for every species."""
    ds = xr.open_dataset(straight / "conc_d02.nc").isel(time=-1, lev=0)
    for v in ("O3", "NO2", "SO2", "PPM25", "CO"):
        f = ds[v].values.astype(float)
        jump_x = np.abs(np.diff(f, axis=1))
        jump_y = np.abs(np.diff(f, axis=0))
        ring = max(jump_x[:, :2].max(), jump_x[:, -2:].max(), jump_y[:2].max(), jump_y[-2:].max())
        inner = max(jump_x[2:-2, 2:-2].max(), jump_y[2:-2, 2:-2].max())
        assert ring <= 1.1 * inner, (v, ring, inner)


def test_budget_closes_with_rain(case):
    """Wet scavenging in every layer (2 mm/h forced) keeps the budget closed to round-off."""
    cfg = load_config(case)
    models = build_models(cfg, tags=False)
    for m in models:
        m.cold_start()
        m._precip_profile = lambda s, _m=m: np.full(
            (_m.shape[0],) + _m.layout.block_shape, 2.0)
    initial = [m.total_mass() for m in models]
    Simulation(models, models[0].time + np.timedelta64(2, "h"), cfg.time.sync_step_s).run()
    for m, m0 in zip(models, initial):
        b = m.budget
        change = b["emitted"] - b["dry_deposited"] - b["wet_deposited"] + b["chemistry"] + \
            b["boundary"]
        resid = np.abs(m.total_mass() - m0 - change) / np.maximum(np.abs(m0), 1e-30)
        assert resid.max() < 1e-12, resid
        assert b["wet_deposited"][m.species.index("SO4")] > 0


def test_config_cfl_and_chemistry_atol_reach_the_model(tmp_path):
    """time.cfl is the sub-stepping limit of every sweep (halving it doubles the sub-steps, up to
    the ceiling); chemistry.atol_ppb is the solver's absolute tolerance in mechanism units."""
    import yaml

    from aqforecast.chemistry.units import default_atol

    case = small_config(tmp_path, hours=1, tags=False)
    plans = {}
    for cfl, atol in ((0.75, 1e-4), (0.375, 2e-4)):
        data = yaml.safe_load(case.read_text())
        data["time"]["cfl"] = cfl
        data["time"]["max_wind_ms"] = 10.0  # (the sanity check of sync_step_s vs the CFL)
        data["chemistry"]["atol_ppb"] = atol
        case.write_text(yaml.safe_dump(data, sort_keys=False))
        m = build_models(load_config(case))[0]
        assert m.courant_max == cfl
        # the default 1e-4 ppb is the solver's default (1e-7 ppm)
        assert m.chemistry.atol == pytest.approx(atol / 1e-4 * default_atol(
            m.chemistry.mechanism.conc_unit), rel=1e-12)
        fl = m.met.air_mass_fluxes(m.time, 3600.0)
        plans[cfl] = m.advection.plan(fl.mass_start, *fl.step_fluxes(), mass_end=fl.mass_end)
    (o1, h1, z1), (o2, h2, z2) = plans[0.75], plans[0.375]
    assert o1 == o2  # outer steps depend on the divergence, not on the CFL limit
    assert np.all((h2 >= 2 * h1 - 1) & (h2 <= 2 * h1)) and h2.max() > h1.max(), (h1, h2)
    assert 2 * z1 - 1 <= z2 <= 2 * z1


def test_runs_of_adjacent_levels():
    """The batched horizontal sweeps group the levels with a sub-step left into runs."""
    from aqforecast.transport.advection import _runs

    assert _runs(np.array([True, True, False, True, False, False, True])) == [(0, 2), (3, 4),
                                                                             (6, 7)]
    assert _runs(np.zeros(4, bool)) == [] and _runs(np.ones(3, bool)) == [(0, 3)]


def test_nests_stepped_beside_parents_bit_for_bit(case, monkeypatch):
    """Nests one step behind their parents on another thread (Simulation ``concurrent``) give
    bit for bit the step-by-step run -- bulk, tags, budgets and the states the callbacks see
    (a pure schedule every 3 steps and at the end, so segments are drained mid-run); a schedule
    that is not pure keeps the step-by-step order."""
    import threading

    from aqforecast.transport.simulation import IterationInterval

    cfg = load_config(case)
    runs = {}
    for concurrent in (False, True):
        models = build_models(cfg)
        for m in models:
            m.cold_start()
        seen = []

        def record(sim):
            seen.append((sim.iteration, str(sim.time)) + tuple(
                (str(m.time), float(m.conc().sum()), float(m.tag_conc().sum()))
                for m in sim.models))

        calls = []  # (model, thread) of every step
        sim = Simulation(models, models[0].time + np.timedelta64(2, "h"), cfg.time.sync_step_s,
                         callbacks={"every3": Callback(record, IterationInterval(3))},
                         concurrent=concurrent)
        for m in models:
            orig = m.step
            monkeypatch.setattr(m, "step", lambda dt, m=m, orig=orig: (calls.append(
                (m.name, threading.current_thread().name)), orig(dt))[1])
        assert sim._use_concurrent() is concurrent
        sim.run()
        runs[concurrent] = (seen, [(m.conc().copy(), m.tag_conc().copy(),
                                    {k: v.copy() for k, v in m.budget.items()})
                                   for m in models], calls)
    (seen0, state0, calls0), (seen1, state1, calls1) = runs[False], runs[True]
    assert seen0 == seen1 and len(seen0) == 2  # 8 steps: after 3 and 6
    for (c0, t0, b0), (c1, t1, b1) in zip(state0, state1):
        assert np.array_equal(c0, c1) and np.array_equal(t0, t1)
        assert all(np.array_equal(b0[k], b1[k]) for k in b0)
    assert sorted(n for n, _ in calls0) == sorted(n for n, _ in calls1)  # 8 steps each
    assert {t for n, t in calls1 if n == "d02"} != {threading.main_thread().name}
    assert {t for _, t in calls0} == {threading.main_thread().name}
    models = build_models(cfg)
    impure = Simulation(models, models[0].time + np.timedelta64(1, "h"), cfg.time.sync_step_s,
                        callbacks={"x": Callback(lambda s: None, lambda s: False)},
                        concurrent=True)
    assert not impure._use_concurrent()
    default = Simulation(models, models[0].time + np.timedelta64(1, "h"), cfg.time.sync_step_s)
    assert not default._use_concurrent()  # off unless asked for


def test_error_in_a_nest_stepped_beside_its_parent_propagates(case, monkeypatch):
    """An exception raised by the nest on its thread ends the run with that exception after the
    parent's concurrent step has finished (no hang, no half-finished step left running)."""
    cfg = load_config(case)
    models = build_models(cfg)
    for m in models:
        m.cold_start()
    parent, nest = models
    start = parent.time
    calls = {"n": 0}
    orig = nest.step

    def failing(dt):
        calls["n"] += 1
        if calls["n"] == 2:
            raise FloatingPointError("nest blew up")
        orig(dt)

    monkeypatch.setattr(nest, "step", failing)
    sim = Simulation(models, models[0].time + np.timedelta64(2, "h"), cfg.time.sync_step_s,
                     concurrent=True)
    with pytest.raises(FloatingPointError, match="nest blew up"):
        sim.run()
    # the parent finished the step it made beside the failing one, and went no further
    assert parent.time == start + np.timedelta64(3 * cfg.time.sync_step_s, "s")
