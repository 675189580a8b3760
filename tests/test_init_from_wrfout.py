"""`aqforecast init --from-wrfout`: a valid config on the WRF grid(s), from the real salem
(Lambert 30 km) and wrf-python CI (Mercator 10 km) files and made-up nests; windows; errors that
name the file and attribute; the salem case then runs its 9 h with closed budgets."""

from __future__ import annotations

import shutil

import netCDF4
import numpy as np
import pandas as pd
import pytest
from wrf_layout import write_polar_wrfout

from aqforecast.cli import main
from aqforecast.config import load_config, read_yaml
from aqforecast.grid import grids_from_config
from aqforecast.io.wrf import WrfOutput
from aqforecast.io.wrf_init import DEFAULT_SPECIES, choose_sync_step

SALEM = "salem_wrf_d01_allvars_cropped.nc"
CI = "wrfpython_ci_test_file.nc"


def _var(ds, name):
    a = np.asarray(ds[name][:], dtype=float)
    return a[0] if a.ndim == 3 else a


def _max_distance_m(grid, path, j0=0, i0=0):
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        flon = _var(ds, "XLONG")[j0:j0 + grid.ny, i0:i0 + grid.nx]
        flat = _var(ds, "XLAT")[j0:j0 + grid.ny, i0:i0 + grid.nx]
    lon, lat = grid.lonlat
    d = np.hypot(((flon - lon + 180) % 360 - 180) * np.cos(np.deg2rad(lat)), flat - lat)
    return float(d.max() * 111195.0)


def _init(capsys, *args):
    rc = main(["init", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def salem(shared_data):
    return shared_data / "met_wrf" / SALEM


def test_salem_init_validate(salem, tmp_path, capsys):
    cfg_path = tmp_path / "salem.yaml"
    rc, out, _ = _init(capsys, "--from-wrfout", salem, "--out", cfg_path)
    assert rc == 0 and out.strip() == str(cfg_path)
    assert [p.name for p in tmp_path.iterdir()] == ["salem.yaml"]  # no temporary left
    cfg = load_config(cfg_path)
    pj = cfg.projection
    assert (pj.kind, pj.truelat1, pj.truelat2, pj.stand_lon, pj.ref_lat) == \
        ("lambert", 30.0, 35.0, 87.0, 30.0)
    d = cfg.domains[0]
    assert (d.name, d.dx_m, d.nx, d.ny) == ("d01", 30000.0, 10, 8)
    assert cfg.time.start.isoformat() == "2005-09-21T00:00:00" and cfg.time.lead_hours == 9
    assert cfg.vertical.p_top_pa == 5000.0 and len(cfg.vertical.eta_interfaces) == 28
    with netCDF4.Dataset(salem) as ds:
        # the float32 levels, written as their shortest decimals
        assert np.array_equal(np.float32(cfg.vertical.eta_interfaces), ds["ZNW"][0])
    assert cfg.species == DEFAULT_SPECIES and not cfg.regions and not cfg.tags.enabled
    assert cfg.inputs.emissions.gridded is None and cfg.inputs.emissions.points is None
    assert cfg.inputs.met.paths == {"d01": str(salem.resolve())}
    grid = grids_from_config(cfg)["d01"]
    assert _max_distance_m(grid, salem) < 1.9  # the config's grid is WRF's to 1.8 m
    assert main(["validate", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert "d01: 10 x 8 x 27 cells of 30 km (lambert)" in out
    assert "met d01: 4 times 2005-09-21T00:00:00 .. 2005-09-21T09:00:00" in out


def test_default_species_are_the_sample_case(sample_config):
    assert DEFAULT_SPECIES == read_yaml(sample_config)["species"]


def test_sync_step_satisfies_the_cfl_check():
    assert choose_sync_step(30000.0) == 900
    assert choose_sync_step(1000.0) == 360
    assert choose_sync_step(333.0) == 120
    assert choose_sync_step(100.0) == 36


def test_met_path_relative_when_below_the_config(salem, tmp_path, capsys, monkeypatch):
    (tmp_path / "met").mkdir()
    local = tmp_path / "met" / "wrfout_d01_2005-09-21_00:00:00"
    shutil.copy(salem, local)
    monkeypatch.chdir(tmp_path)
    rc, _, _ = _init(capsys, "--from-wrfout", local, "--out", tmp_path / "cfg" / ".." / "c.yaml")
    assert rc == 0
    assert read_yaml(tmp_path / "c.yaml")["inputs"]["met"]["paths"] == {
        "d01": "met/wrfout_d01_2005-09-21_00:00:00"}
    monkeypatch.chdir("/")
    assert main(["validate", str(tmp_path / "c.yaml")]) == 0


def test_mercator_ci_file(shared_data, tmp_path, capsys):
    path = shared_data / "met_wrf" / CI
    cfg_path = tmp_path / "ci.yaml"
    rc, _, _ = _init(capsys, "--from-wrfout", path, "--out", cfg_path)
    assert rc == 0
    cfg = load_config(cfg_path)
    assert cfg.projection.kind == "mercator" and cfg.projection.truelat1 == 0.0
    assert cfg.projection.truelat2 is None and cfg.projection.ref_lat is None
    d = cfg.domains[0]
    assert (d.name, d.dx_m, d.nx, d.ny) == ("d02", 10000.0, 48, 48)  # GRID_ID 2: a WRF nest
    assert cfg.time.lead_hours == 9 and cfg.vertical.nz == 14  # no ZNW: WRF's layer count
    assert _max_distance_m(grids_from_config(cfg)["d02"], path) < 1.3
    assert main(["validate", str(cfg_path), "--config-only"]) == 0
    capsys.readouterr()
    # the CI file has no surface physics: the full check names what the forecast lacks
    assert main(["validate", str(cfg_path)]) == 2
    assert "wrfpython_ci_test_file.nc: wrfout file lacks required variable(s) PBLH" in \
        capsys.readouterr().err


def test_polar_file(tmp_path, capsys):
    path = write_polar_wrfout(tmp_path / "wrfout_d01_2020-01-15_00:00:00")
    rc, _, _ = _init(capsys, "--from-wrfout", path, "--out", tmp_path / "polar.yaml")
    assert rc == 0
    cfg = load_config(tmp_path / "polar.yaml")
    assert (cfg.projection.kind, cfg.projection.truelat1, cfg.projection.stand_lon) == \
        ("polar", 60.0, -100.0)
    assert cfg.time.lead_hours == 3 and len(cfg.vertical.eta_interfaces) == 11
    assert _max_distance_m(grids_from_config(cfg)["d01"], path) < 0.5
    assert main(["validate", str(tmp_path / "polar.yaml"), "--config-only"]) == 0


def test_window(salem, tmp_path, capsys):
    cfg_path = tmp_path / "w.yaml"
    rc, _, _ = _init(capsys, "--from-wrfout", salem, "--window", 2, 1, 6, 5, "--out", cfg_path)
    assert rc == 0
    cfg = load_config(cfg_path)
    assert (cfg.domains[0].nx, cfg.domains[0].ny) == (6, 5)
    grid = grids_from_config(cfg)["d01"]
    assert _max_distance_m(grid, salem, j0=1, i0=2) < 1.9
    assert main(["validate", str(cfg_path)]) == 0
    from aqforecast.met.provider import grid_window
    with WrfOutput(salem) as wo:
        assert grid_window(grid, wo) == (1, 2)
    # a window outside the file
    rc, _, err = _init(capsys, "--from-wrfout", salem, "--window", 6, 0, 6, 5, "--out",
                       tmp_path / "bad.yaml")
    assert rc == 2 and SALEM in err and "--window 6 0 6 5" in err and "10 x 8 cells" in err
    assert not (tmp_path / "bad.yaml").exists()


def _nest_file(parent_path, path, i_start=3, j_start=3, nx=9, ny=6, ratio=3, grid_id=2):
    """A WRF nest file of the salem grid: the nest's south-west corner is the parent's corner
    point I_PARENT_START, J_PARENT_START (1-based, WRF's convention)."""
    with WrfOutput(parent_path) as wo:
        parent = wo.model_grid()
        times = netCDF4.chartostring(netCDF4.Dataset(parent_path)["Times"][:])
    dxn = parent.dx / ratio
    xs = parent.x0 + (i_start - 1) * parent.dx + (np.arange(nx) + 0.5) * dxn
    ys = parent.y0 + (j_start - 1) * parent.dx + (np.arange(ny) + 0.5) * dxn
    lon, lat = parent.to_lonlat(*np.meshgrid(xs, ys))
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("Time", None)
        ds.createDimension("DateStrLen", 19)
        ds.createDimension("south_north", ny)
        ds.createDimension("west_east", nx)
        ds.createDimension("bottom_top", 27)
        t = ds.createVariable("Times", "S1", ("Time", "DateStrLen"))
        t[:] = np.array([list(str(s)) for s in times], dtype="S1")
        for name, val in (("XLAT", lat), ("XLONG", lon)):
            v = ds.createVariable(name, "f4", ("Time", "south_north", "west_east"))
            v[:] = np.broadcast_to(val, (len(times),) + val.shape)
        with netCDF4.Dataset(parent_path) as src:
            for k in ("MAP_PROJ", "TRUELAT1", "TRUELAT2", "STAND_LON", "MOAD_CEN_LAT"):
                ds.setncattr(k, src.getncattr(k))
        ds.setncatts({"DX": np.float32(dxn), "DY": np.float32(dxn), "GRID_ID": np.int32(grid_id),
                      "PARENT_ID": np.int32(1), "I_PARENT_START": np.int32(i_start),
                      "J_PARENT_START": np.int32(j_start),
                      "PARENT_GRID_RATIO": np.int32(ratio)})
    return path


def test_nest(salem, tmp_path, capsys):
    nest = _nest_file(salem, tmp_path / "wrfout_d02_2005-09-21_00:00:00")
    cfg_path = tmp_path / "nest.yaml"
    rc, _, _ = _init(capsys, "--from-wrfout", salem, "--nest", nest, "--out", cfg_path)
    assert rc == 0
    cfg = load_config(cfg_path)
    d2 = cfg.domain("d02")
    assert (d2.parent, d2.ratio, d2.dx_m, d2.nx, d2.ny) == ("d01", 3, 10000.0, 9, 6)
    assert (d2.i_parent_start, d2.j_parent_start) == (2, 2)  # WRF 1-based 3 -> ours 0-based 2
    assert cfg.inputs.met.paths["d02"] == "wrfout_d02_2005-09-21_00:00:00"
    grids = grids_from_config(cfg)
    assert _max_distance_m(grids["d02"], nest) < 1.0
    assert main(["validate", str(cfg_path), "--config-only"]) == 0
    # the nest inside a window of the parent: its start moves with the window
    rc, _, _ = _init(capsys, "--from-wrfout", salem, "--nest", nest, "--window", 1, 1, 8, 6,
                     "--out", tmp_path / "nw.yaml")
    assert rc == 0
    cfg = load_config(tmp_path / "nw.yaml")
    assert (cfg.domain("d02").i_parent_start, cfg.domain("d02").j_parent_start) == (1, 1)
    assert _max_distance_m(grids_from_config(cfg)["d02"], nest) < 1.0


def test_nest_outside_parent(salem, tmp_path, capsys):
    nest = _nest_file(salem, tmp_path / "wrfout_d02", i_start=8)
    rc, _, err = _init(capsys, "--from-wrfout", salem, "--nest", nest, "--out",
                       tmp_path / "n.yaml")
    assert rc == 2 and "wrfout_d02" in err and "I_PARENT_START/J_PARENT_START = 8/3" in err
    assert "must lie inside its parent" in err and not (tmp_path / "n.yaml").exists()
    nest = _nest_file(salem, tmp_path / "wrfout_d03", grid_id=3, ratio=2, nx=8, ny=6)
    with netCDF4.Dataset(nest, "a") as ds:
        ds.PARENT_GRID_RATIO = np.int32(3)
    rc, _, err = _init(capsys, "--from-wrfout", salem, "--nest", nest, "--out",
                       tmp_path / "n.yaml")
    assert rc == 2 and "wrfout_d03" in err and "PARENT_GRID_RATIO = 3" in err


def test_errors_name_file_and_attribute(salem, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not a wrfout")
    rc, _, err = _init(capsys, "--from-wrfout", text, "--out", tmp_path / "x.yaml")
    assert rc == 2 and "notes.txt: cannot read wrfout file as NetCDF" in err
    plain = tmp_path / "plain.nc"
    with netCDF4.Dataset(plain, "w") as ds:
        ds.createDimension("x", 2)
        ds.createVariable("a", "f4", ("x",))
    rc, _, err = _init(capsys, "--from-wrfout", plain, "--out", tmp_path / "x.yaml")
    assert rc == 2 and "plain.nc: wrfout file lacks required variable(s) Times, XLAT, XLONG" in err
    latlon = write_polar_wrfout(tmp_path / "latlon.nc")
    with netCDF4.Dataset(latlon, "a") as ds:
        ds.MAP_PROJ = np.int32(6)
    rc, _, err = _init(capsys, "--from-wrfout", latlon, "--out", tmp_path / "x.yaml")
    assert rc == 2 and "latlon.nc: MAP_PROJ=6" in err and "not supported" in err
    les = write_polar_wrfout(tmp_path / "les.nc", dx=50.0)
    rc, _, err = _init(capsys, "--from-wrfout", les, "--out", tmp_path / "x.yaml")
    assert rc == 2 and "les.nc: DX = 50 m lies outside the model's range 100 m" in err
    nodx = write_polar_wrfout(tmp_path / "nodx.nc")
    with netCDF4.Dataset(nodx, "a") as ds:
        ds.delncattr("DX")
    rc, _, err = _init(capsys, "--from-wrfout", nodx, "--out", tmp_path / "x.yaml")
    assert rc == 2 and "nodx.nc: wrfout file lacks the global attribute DX" in err
    assert not (tmp_path / "x.yaml").exists() and "Traceback" not in err


def test_salem_forecast_budget_closes(salem, tmp_path, capsys):
    """The init config runs the salem file's 9 h (no emissions, no tags): every species'
    budget closes and ozone stays in the background range."""
    cfg_path = tmp_path / "salem.yaml"
    assert _init(capsys, "--from-wrfout", salem, "--out", cfg_path)[0] == 0
    out = tmp_path / "run"
    assert main(["forecast", str(cfg_path), "--out", str(out), "--no-tags",
                 "--no-progress"]) == 0
    b = pd.read_csv(out / "budget_d01.csv").set_index("species")
    assert set(DEFAULT_SPECIES) <= set(b.index)
    assert (b["relative_residual"].abs() < 1e-12).all(), b
    assert (b["emitted_kg"].abs() < 1e-9 * b["initial_kg"]).all()
    import xarray as xr
    with xr.open_dataset(out / "conc_d01.nc") as ds:
        assert ds.sizes["time"] >= 9
        o3 = ds["O3"].isel(lev=0)
        assert 10.0 < float(o3.min()) and float(o3.max()) < 80.0, o3.attrs.get("units")


def _relabelled_salem(salem, path, kind, truelat1):
    """The salem file's real met on another projection: XLAT/XLONG, MAPFAC_M/U/V and
    COSALPHA/SINALPHA rewritten for a ``kind`` grid of the same size and centre (the fields no
    longer match the geography, which the budget does not care about)."""
    from aqforecast.grid import grid_class

    shutil.copy(salem, path)
    g = grid_class(kind).centred("d01", 10, 8, 30000.0, 87.0, 30.0, truelat1, None, 87.0)
    with netCDF4.Dataset(path, "a") as ds:
        lon, lat = g.lonlat
        for name, val in [("XLONG", lon), ("XLAT", lat), ("MAPFAC_M", g.map_factor),
                          ("MAPFAC_U", g.map_factor_u), ("MAPFAC_V", g.map_factor_v),
                          ("COSALPHA", g.rotation[0]), ("SINALPHA", g.rotation[1])]:
            ds[name][:] = np.broadcast_to(val, ds[name].shape)
        ds.MAP_PROJ = np.int32(g.map_proj)
        ds.TRUELAT1 = ds.TRUELAT2 = np.float32(truelat1)
    return path


@pytest.mark.parametrize("kind, truelat1", [("polar", 60.0), ("mercator", 10.0)])
def test_other_projections_run_end_to_end(salem, tmp_path, capsys, kind, truelat1):
    met = _relabelled_salem(salem, tmp_path / f"wrfout_{kind}.nc", kind, truelat1)
    cfg_path = tmp_path / f"{kind}.yaml"
    assert _init(capsys, "--from-wrfout", met, "--out", cfg_path)[0] == 0
    assert load_config(cfg_path).projection.kind == kind
    assert main(["validate", str(cfg_path)]) == 0
    out = tmp_path / "run"
    assert main(["forecast", str(cfg_path), "--out", str(out), "--no-tags", "--no-progress",
                 "--lead-hours", "3"]) == 0
    b = pd.read_csv(out / "budget_d01.csv")
    assert (b["relative_residual"].abs() < 1e-12).all(), b
    import xarray as xr
    with xr.open_dataset(out / "conc_d01.nc") as ds:
        assert ds["crs"].attrs["grid_mapping_name"] == {
            "polar": "polar_stereographic", "mercator": "mercator"}[kind]


def test_salem_end_to_end_points_only(salem, tmp_path, capsys):
    """The issue's new-user path: init -> validate -> forecast (9 h, point sources only) ->
    products, from the command line; budgets closed with the stacks' mass emitted; the 2005
    dates get the 'no HJ 633 in force' warning."""
    import yaml

    cfg_path = tmp_path / "salem.yaml"
    assert _init(capsys, "--from-wrfout", salem, "--out", cfg_path)[0] == 0
    pts = tmp_path / "stacks.csv"
    pts.write_text("id,name,sector,lon,lat,stack_height_m,stack_diameter_m,exit_velocity_ms,"
                   "exit_temperature_k,SO2,NOx,CO,NMVOC,NH3,PM25,PM10\n"
                   "S1,plant one,power,87.0,30.0,150,5.0,18,330,4000,5000,2000,100,0,800,1500\n"
                   "S2,works two,industry,87.6,30.4,60,2.0,10,400,1000,800,9000,900,10,300,700\n")
    data = yaml.safe_load(cfg_path.read_text())
    data.setdefault("inputs", {}).setdefault("emissions", {})["points"] = str(pts)
    data["inputs"]["emissions"]["base_year"] = 2005
    cfg_path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(cfg_path)]) == 0
    out = tmp_path / "run"
    assert main(["forecast", str(cfg_path), "--out", str(out), "--no-progress"]) == 0
    b = pd.read_csv(out / "budget_d01.csv").set_index("species")
    assert (b["relative_residual"].abs() < 1e-12).all(), b
    assert b.loc["SO2", "emitted_kg"] > 0 and b.loc["CO", "emitted_kg"] > 0
    # SO2 emitted over the run: both stacks' annual mass x hours / hours of 2005 (flat
    # profiles are not assumed: within the range of the temporal profiles' day/night swing)
    hours = 9.0
    expect = (4000 + 1000) * 1000.0 * hours / 8760.0
    assert 0.2 * expect < b.loc["SO2", "emitted_kg"] < 3.0 * expect
    capsys.readouterr()
    assert main(["products", str(cfg_path), "--run", str(out), "--out",
                 str(tmp_path / "products"), "--no-maps"]) == 0
    err = capsys.readouterr().err
    assert "before any HJ 633 was in force" in err, err[-2000:]
    assert any((tmp_path / "products").glob("daily_*.nc"))
