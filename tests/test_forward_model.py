"""The model as a forward operator: emission scaling as data, the initial state as data,
``--start``, the restart layout, the Python API (ForwardModel) and the config keys it uses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import yaml

from aqforecast.config import ConfigError, load_config, read_yaml
from aqforecast.forecast import ForwardModel, run_forecast, with_start
from aqforecast.io import InputFileError
from aqforecast.io.initial_state import read_initial_state

from forecast_case import small_config

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _edit(path, out, **changes):
    """A copy of the config at ``path`` with top-level sections updated (nested dicts merged)."""
    data = read_yaml(path)
    for key, val in changes.items():
        if isinstance(val, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **val}
        else:
            data[key] = val
    data["time"]["start"] = str(data["time"]["start"]).replace(" ", "T")
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return small_config(tmp_path_factory.mktemp("fwd"), hours=4)


@pytest.fixture(scope="module")
def exact_case(case):
    """Donor-cell transport (linear), float64 tag fractions in the sweeps and float64 files, so
    identities hold to round-off on the files."""
    data = read_yaml(case)
    return _edit(case, case.parent / "exact.yaml", transport={"advection_scheme": "donor_cell"},
                 outputs={**data["outputs"], "dtype": "float64"},
                 tags={**data["tags"], "dtype": "float64", "transport_precision": "float64",
                                     "storage_precision": "float64"})


@pytest.fixture(scope="module")
def straight(case, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    run_forecast(case, 4, out, progress=False)
    return out


def test_scaling_a_source_to_zero_removes_exactly_its_tag(exact_case, tmp_path):
    """With linear (donor-cell) transport, zeroing one (region, sector, pollutant) by a scaling
    table changes a primary species by exactly that source's tag of the baseline tagged run."""
    base, cut = tmp_path / "base", tmp_path / "cut"
    run_forecast(exact_case, 3, base, progress=False)
    table = tmp_path / "scaling.csv"
    table.write_text("region,sector,pollutant,factor,sigma_ln\nHangzhou,industry,PM25,0,0.3\n")
    res = subprocess.run([sys.executable, "-m", "aqforecast.cli", "forecast", str(exact_case),
                          "--lead-hours", "3", "--out", str(cut), "--no-progress", "--scaling",
                          str(table)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    for d in ("d01", "d02"):
        b = xr.open_dataset(base / f"conc_{d}.nc")
        c = xr.open_dataset(cut / f"conc_{d}.nc")
        t = xr.open_dataset(base / f"tags_{d}.nc")
        assert b["PPM25"].dtype == np.float64
        assert c.attrs["emission_scaling"] == str(table)
        sel = dict(lev=t["lev"], time=t["time"])
        tag = t["PPM25"].where((t.tag_region == "Hangzhou") & (t.tag_sector == "industry"),
                               drop=True).squeeze("tag", drop=True)
        expected = b["PPM25"].sel(sel) - tag
        got = c["PPM25"].sel(sel)
        scale = float(b["PPM25"].max())
        assert float(tag.max()) > 1e-3 * scale  # the source matters here
        np.testing.assert_allclose(got.values, expected.values, rtol=0, atol=1e-10 * scale)
        # another primary species of that sector and region is untouched (PMC, not PM25)
        np.testing.assert_array_equal(c["PPM10"].values, b["PPM10"].values)


def test_bad_scaling_table_is_refused_before_any_output(case, tmp_path):
    table = tmp_path / "scaling.csv"
    table.write_text("region,sector,pollutant,factor\nHangzhuo,industry,NOx,0.5\n")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "aqforecast.cli", "forecast", str(case),
                          "--lead-hours", "1", "--out", str(out), "--no-progress", "--scaling",
                          str(table)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "scaling.csv" in res.stderr and "Hangzhuo" in res.stderr
    assert not (out / "conc_d01.nc").exists()


def test_initial_from_a_restart_equals_the_straight_run(case, straight, tmp_path):
    """A run stopped after 2 h leaves restart/<YYYY-MM-DDTHH>/ with initial_<domain>.nc; a new
    run from it with --initial and --start equals the straight run bit for bit (the restart
    beside the initial state carries the exact state, tags and solver step sizes)."""
    part = tmp_path / "part"
    run_forecast(case, 4, part, progress=False, stop_after_hours=2)
    rdir = part / "restart" / "2026-07-20T02"
    assert (part / "restart" / "latest").read_text().strip() == "2026-07-20T02"
    for d in ("d01", "d02"):
        init = read_initial_state(rdir / f"initial_{d}.nc", load_config(case).species,
                                  (8,) + ((21, 24) if d == "d01" else (12, 12)))
        assert init.time == np.datetime64("2026-07-20T02:00:00")
    cont = tmp_path / "cont"
    res = subprocess.run([sys.executable, "-m", "aqforecast.cli", "forecast", str(case),
                          "--lead-hours", "2", "--start", "2026-07-20T02", "--initial", str(rdir),
                          "--out", str(cont), "--no-progress"], capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("conc_d01", "conc_d02", "tags_d01", "tags_d02"):
        a = xr.open_dataset(straight / f"{name}.nc")
        b = xr.open_dataset(cont / f"{name}.nc")
        assert b.attrs["start_type"] == "initial"
        a = a.sel(time=b["time"])
        for v in b.data_vars:
            np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=f"{name} {v}")


def test_rerun_of_a_run_started_from_an_initial_state_starts_from_it(case, tmp_path):
    """A run started with --initial keeps that state in restart/<start>/ (initial_<domain>.nc
    and the restart beside it), so a rerun without scaling (what scenarios, plans, Jacobians
    and ensemble members make) reproduces it bit for bit instead of starting from the
    config's cold start."""
    from aqforecast.forecast import rerun

    part = tmp_path / "part"
    run_forecast(case, 4, part, progress=False, stop_after_hours=1, tags=False)
    rdir = part / "restart" / "2026-07-20T01"
    base = tmp_path / "base"
    run_forecast(case, 2, base, progress=False, start="2026-07-20T01", initial=rdir, tags=False)
    kept = base / "restart" / "2026-07-20T01"
    for d in ("d01", "d02"):
        for name in (f"initial_{d}.nc", f"restart_{d}.nc"):
            assert (kept / name).read_bytes() == (rdir / name).read_bytes()
    again = tmp_path / "again"
    rerun(load_config(case), base, again)
    for d in ("d01", "d02"):
        a = xr.open_dataset(base / f"conc_{d}.nc")
        b = xr.open_dataset(again / f"conc_{d}.nc")
        assert b.attrs["start_type"] == "initial"
        for v in a.data_vars:
            np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=f"{d} {v}")


def test_initial_state_converted_from_its_units(case, straight, tmp_path):
    """An initial state without a restart beside it (as assimilation writes it), in other CF
    units (ppm, kg m-3), starts the model at those values to round-off; tags all in IC."""
    cfg = load_config(case)
    src = straight / "restart" / "2026-07-20T00"
    assert not src.exists()  # the only restart kept of a 4-h run is its last
    part = tmp_path / "part"
    run_forecast(case, 4, part, progress=False, stop_after_hours=1)
    rdir = part / "restart" / "2026-07-20T01"
    new = tmp_path / "analysis"
    new.mkdir()
    for d in ("d01", "d02"):
        with xr.open_dataset(rdir / f"initial_{d}.nc") as ds:
            ds = ds.load()
        ds["O3"] = ds["O3"] * 1e-3
        ds["O3"].attrs["units"] = "ppm"
        ds["SO4"] = ds["SO4"] * 1e-9
        ds["SO4"].attrs["units"] = "kg m-3"
        ds.to_netcdf(new / f"initial_{d}.nc")
    fm = ForwardModel(with_start(cfg, "2026-07-20T01"), initial=new)
    assert fm.start_type == "initial"
    ref = ForwardModel(with_start(cfg, "2026-07-20T01"), initial=rdir)
    for a, b in zip(fm.models, ref.models):
        np.testing.assert_allclose(a.conc(), b.conc(), rtol=1e-13, atol=0)
        tags = a.tag_conc()
        ic = [i for i, (r, _) in enumerate(a.tag_labels) if r == "initial"][0]
        # the bulk rounded to the tags' storage type (float32 by default)
        np.testing.assert_array_equal(tags[:, ic], a.conc()[a.tag_rows].astype(a.tagc.dtype))
        assert np.all(np.delete(tags, ic, axis=1) == 0)


def test_initial_state_errors_name_the_file(case, straight, tmp_path):
    cfg = load_config(case)
    rdir = straight / "restart" / "2026-07-20T04"
    with pytest.raises(InputFileError, match="initial_d01.nc.*2026-07-20T04.*2026-07-20T00"):
        ForwardModel(cfg, initial=rdir)  # valid at 04, the run starts at 00
    bad = tmp_path / "bad"
    bad.mkdir()
    with xr.open_dataset(rdir / "initial_d01.nc") as ds:
        ds.drop_vars("NO2").to_netcdf(bad / "initial_d01.nc")
    with pytest.raises(InputFileError, match="initial_d01.nc.*NO2"):
        read_initial_state(bad / "initial_d01.nc", cfg.species, (8, 21, 24))
    with xr.open_dataset(rdir / "initial_d01.nc") as ds:
        ds = ds.load()
    ds["O3"].attrs["units"] = "furlongs"
    ds.to_netcdf(bad / "initial_d01.nc")
    with pytest.raises(InputFileError, match="'O3'.*furlongs"):
        read_initial_state(bad / "initial_d01.nc", cfg.species, (8, 21, 24))
    with pytest.raises(InputFileError, match="does not exist"):
        ForwardModel(with_start(cfg, "2026-07-20T04"), initial=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="YYYY-MM-DDTHH"):
        with_start(cfg, "2026-02-30T00")


def test_warm_start_from_restart_dir(case, straight, tmp_path):
    """inputs.restart_dir pointing at a previous run's directory warm-starts from its restart
    valid at the start (state carried, every tag reset to the initial-condition tag)."""
    warm = _edit(case, tmp_path / "warm.yaml",
                 time={**read_yaml(case)["time"], "start": "2026-07-20T04:00:00"},
                 inputs={**read_yaml(case)["inputs"], "restart_dir": str(straight)})
    cfg = load_config(warm)
    prev = read_initial_state(straight / "restart" / "2026-07-20T04" / "initial_d01.nc",
                              cfg.species, (8, 21, 24))
    # the met of the small case covers 00..05 UTC: build only, do not run
    fm = ForwardModel(cfg)
    assert fm.start_type == "warm"
    m = fm.domains["d01"]
    assert m.time == np.datetime64("2026-07-20T04:00:00")
    o3 = cfg.species.index("O3")
    np.testing.assert_allclose(m.conc()[o3], prev.values["O3"], rtol=1e-14)


def test_forward_model_samples_the_finest_domain(case, straight):
    cfg = load_config(case)
    fm = ForwardModel(cfg)
    fm.run_until(fm.time + np.timedelta64(1, "h"))
    d01, d02 = fm.domains["d01"], fm.domains["d02"]
    lon2, lat2 = d02.grid.lonlat
    lon1, lat1 = d01.grid.lonlat
    pts_lon = [lon2[5, 6], lon1[1, 1], 200.0]
    pts_lat = [lat2[5, 6], lat1[1, 1], 0.0]
    got = fm.sample(pts_lon, pts_lat, ["NO2", "PPM25"])
    f2, f1 = fm.fields("d02", [0]), fm.fields("d01", [0])
    np.testing.assert_allclose(got["NO2"][0], f2["NO2"][0, 5, 6], rtol=1e-9)  # nest wins
    np.testing.assert_allclose(got["PPM25"][1], f1["PPM25"][0, 1, 1], rtol=1e-9)
    assert np.isnan(got["NO2"][2])


def test_set_state_resets_budget_and_tags(case):
    fm = ForwardModel(load_config(case))
    m = fm.domains["d01"]
    q = np.full((m.nspec,) + m.shape, 1e-9)
    fm.set_state("d01", q)
    assert np.all(m.conc() == 1e-9)
    assert all(np.all(v == 0) for v in m.budget.values())
    with pytest.raises(ValueError, match="shape"):
        fm.set_state("d01", q[:, :2])
    with pytest.raises(ValueError, match="non-finite"):
        fm.set_state("d01", q * np.nan)


def test_config_keys_reach_the_model(case, tmp_path):
    """parallel.threads sets the kernel threads; advection_scheme 'upwind' is the old name of
    'donor_cell'; regions under tags (the old layout) move to the top level."""
    import numba

    data = read_yaml(case)
    threads = _edit(case, tmp_path / "t.yaml", parallel={"threads": 1},
                    transport={"advection_scheme": "upwind"})
    try:
        fm = ForwardModel(load_config(threads))
        assert numba.get_num_threads() == 1
        assert load_config(threads).transport.advection_scheme == "donor_cell"
        assert all(m.advection_scheme == "donor_cell" for m in fm.models)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    old = dict(data)
    old["tags"] = {**data["tags"], "regions": data["regions"]}
    del old["regions"]
    p = tmp_path / "old.yaml"
    p.write_text(yaml.safe_dump(old, sort_keys=False, default_flow_style=None))
    cfg = load_config(p)
    assert [r.name for r in cfg.regions] == [r["name"] for r in data["regions"]]
    old["regions"] = data["regions"]
    p.write_text(yaml.safe_dump(old, sort_keys=False))
    with pytest.raises(ConfigError, match="regions are given twice"):
        load_config(p)
    for gone in ({"inversion": {"enabled": False}},
                 {"inputs": {**data["inputs"], "observations": {"satellite_glob": "x*"}}}):
        q = tmp_path / "gone.yaml"
        q.write_text(yaml.safe_dump({**data, **gone}, sort_keys=False))
        with pytest.raises(ConfigError, match="unknown key"):
            load_config(q)
