"""Boundary and initial conditions from a NetCDF file (``inputs.boundary.kind: file``)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml

from aqforecast.config import load_config
from aqforecast.forecast import build_models
from aqforecast.io import InputFileError
from aqforecast.io.boundary_file import BoundaryFile
from aqforecast.transport.simulation import Simulation

from forecast_case import small_config

T0 = np.datetime64("2026-07-20T00:00:00", "s")
LON = np.arange(118.8, 121.81, 0.2)
LAT = np.arange(31.6, 28.79, -0.2)  # descending, as many global files are
HEIGHT = np.array([0.0, 50.0, 200.0, 600.0, 1500.0, 4000.0, 9000.0, 20000.0])
HOURS = np.arange(0, 13, 3)


def linear_field(hours, height, lat, lon, slope_t=0.5):
    """A field linear in each coordinate: interpolation must reproduce it exactly."""
    return (30.0 + slope_t * hours + 2e-3 * height + 4.0 * (lat - 30.0) - 3.0 * (lon - 120.0))


def write_file(path, variables, hours=HOURS, height=HEIGHT, lat=LAT, lon=LON, height_units="m"):
    """variables: name -> (units, callable(hours, height, lat, lon) -> values)."""
    h4, z4, y4, x4 = np.meshgrid(hours, height, lat, lon, indexing="ij")
    ds = xr.Dataset(
        {n: (("time", "height", "lat", "lon"), f(h4, z4, y4, x4), {"units": u})
         for n, (u, f) in variables.items()},
        coords={"time": T0 + hours.astype("timedelta64[h]"),
                "height": ("height", height, {"units": height_units}),
                "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})})
    ds.to_netcdf(path)
    return path


def test_sampling_reproduces_a_linear_field_in_model_units(tmp_path):
    """Bilinear in lon/lat, linear in height and time: exact for a linear field. ppb -> mol
    mol-1 (x 1e-9); ug m-3 -> kg kg-1 (x 1e-9 / rho)."""
    path = write_file(tmp_path / "bc.nc", {"O3": ("ppb", linear_field),
                                           "SO4": ("ug m-3", linear_field)})
    bf = BoundaryFile(path, ["NO", "O3", "SO4"])
    assert bf.missing == ["NO"] and set(bf.variables) == {"O3", "SO4"}
    rng = np.random.default_rng(3)
    lon = rng.uniform(119.0, 121.6, 50)
    lat = rng.uniform(29.0, 31.4, 50)
    z = rng.uniform(0.0, 20000.0, (6, 50))
    rho = rng.uniform(0.1, 1.2, (6, 50))
    w = bf.weights(lon, lat)
    t = T0 + np.timedelta64(4 * 3600 + 1234, "s")
    got = bf.sample(t, w, z, rho)
    hours = (t - T0) / np.timedelta64(1, "h")
    want = linear_field(hours, z, lat[None], lon[None]) * 1e-9
    np.testing.assert_allclose(got["O3"], want, rtol=1e-12)
    np.testing.assert_allclose(got["SO4"], want / rho, rtol=1e-12)
    # above the top level and below the lowest the values stay constant
    top = bf.sample(t, w, np.full((1, 50), 3e4), np.ones((1, 50)))["O3"]
    np.testing.assert_allclose(top, linear_field(hours, 2e4, lat, lon)[None] * 1e-9,
                               rtol=1e-12)


@pytest.mark.parametrize("case, message", [
    ("height_units", "'height' has units 'hPa', expected 'm'"),
    ("gas_units", "'O3' (a gas) has units 'ug m-3'"),
    ("dims", "'O3' has dims ('time', 'lat', 'lon', 'height')"),
    ("none", "holds none of the model species"),
    ("missing", "lacks required variable(s) height"),
])
def test_bad_files_are_refused_naming_file_and_field(tmp_path, case, message):
    path = tmp_path / f"{case}.nc"
    if case == "height_units":
        write_file(path, {"O3": ("ppb", linear_field)}, height_units="hPa")
    elif case == "gas_units":
        write_file(path, {"O3": ("ug m-3", linear_field)})
    elif case == "none":
        write_file(path, {"XYZ": ("ppb", linear_field)})
    else:
        write_file(path, {"O3": ("ppb", linear_field)})
        ds = xr.load_dataset(path)
        ds = ds.transpose("time", "lat", "lon", "height") if case == "dims" else \
            ds.rename({"height": "lev"})
        path.unlink()
        ds.to_netcdf(path)
    with pytest.raises(InputFileError) as err:
        BoundaryFile(path, ["NO", "O3", "SO4"])
    assert str(path) in str(err.value) and message in str(err.value), str(err.value)


def test_coverage_in_space_and_time_is_checked(tmp_path):
    path = write_file(tmp_path / "bc.nc", {"O3": ("ppb", linear_field)})
    bf = BoundaryFile(path, ["O3"])
    bf.check_covers([119.5, 121.0], [29.5, 31.0], T0, T0 + np.timedelta64(12, "h"))
    with pytest.raises(InputFileError, match="does not cover the model domain"):
        bf.check_covers([122.5], [30.0])
    with pytest.raises(InputFileError, match="do not cover 2026-07-20T13:00:00"):
        bf.check_covers([], [], T0, T0 + np.timedelta64(13, "h"))


def _file_config(tmp_path, variables, hours=2):
    case = small_config(tmp_path, hours=hours, tags=False, chemistry=False, emissions=False)
    data = yaml.safe_load(case.read_text())
    bc = write_file(tmp_path / "bc.nc", variables)
    data["inputs"]["boundary"] = {"kind": "file", "path": str(bc)}
    case.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(case)


def test_model_takes_initial_lateral_and_lid_values_from_the_file(tmp_path):
    """Cold start, lateral ghost strips of the outer domain and the lid inflow equal the
    file's (linear) field at the cells' positions and heights; species the file lacks keep the
    background profiles."""
    cfg = _file_config(tmp_path, {"O3": ("ppb", linear_field), "SO4": ("ug m-3", linear_field)})
    models = build_models(cfg)
    d01 = models[0]
    d01.cold_start()
    s = d01.met.state(d01.time)
    lon, lat = d01.grid.lonlat
    o3, so4, no = (d01.species.index(n) for n in ("O3", "SO4", "NO"))
    want = linear_field(0.0, s.z_centre, lat[None], lon[None]) * 1e-9
    np.testing.assert_allclose(d01.conc()[o3], want, rtol=1e-12)
    np.testing.assert_allclose(d01.conc()[so4], want / s.rho_dry, rtol=1e-12)
    from aqforecast.transport.boundary import background_profile
    np.testing.assert_array_equal(d01.conc()[no], background_profile("NO", s.z_centre,
                                                                      s.rho_dry))
    vals, tags = d01.boundary_values(s)
    assert tags is None
    g = d01.grid
    h = d01.halo
    west = vals["west"][o3]  # (nz, ny, h): columns i = -h..-1 at the heights of column 0
    x = g.x0 + (np.arange(-h, 0) + 0.5) * g.dx
    wl, wa = g.to_lonlat(*np.meshgrid(x, g.y))
    np.testing.assert_allclose(west, linear_field(0.0, s.z_centre[:, :, :1], wa[None], wl[None])
                               * 1e-9, rtol=1e-12)
    lid = d01._lid_values(s)[o3, 0]
    np.testing.assert_allclose(lid, linear_field(0.0, s.z_centre[-1], lat, lon) * 1e-9,
                               rtol=1e-12)
    # the nest takes its lateral values from its parent, its lid and cold start from the file
    d02 = models[1]
    assert d02.boundary_source is not d02.background_source
    d02.cold_start()
    s2 = d02.met.state(d02.time)
    lon2, lat2 = d02.grid.lonlat
    np.testing.assert_allclose(d02.conc()[o3], linear_field(0.0, s2.z_centre, lat2[None],
                                                            lon2[None]) * 1e-9, rtol=1e-12)


def test_uniform_file_keeps_a_uniform_field_uniform(tmp_path):
    """A file with 50 ppb O3 everywhere: after 2 h of transport (no sources or sinks) both
    domains hold 50 ppb to round-off. Any of initial, lateral or lid values taken from the
    background profiles (40-65 ppb over height) would break it."""
    cfg = _file_config(tmp_path, {"O3": ("ppb", lambda h, z, y, x: np.full(h.shape, 50.0))})
    models = build_models(cfg)
    o3 = models[0].species.index("O3")
    for m in models:
        m.cold_start()
        m.drydep = lambda *a, _m=m: np.zeros((_m.nspec,) + _m.layout.block_shape)
        m.wet.coef_a[:] = 0.0
    sim = Simulation(models, models[0].time + np.timedelta64(2, "h"), cfg.time.sync_step_s)
    sim.run()
    for m in models:
        np.testing.assert_allclose(m.conc()[o3], 50e-9, rtol=1e-12)


def test_forecast_refuses_a_file_that_ends_before_the_run(tmp_path):
    from aqforecast.forecast import run_forecast

    cfg = _file_config(tmp_path, {"O3": ("ppb", linear_field)}, hours=2)
    with pytest.raises(InputFileError, match="do not cover 2026-07-20T13:00:00"):
        run_forecast(cfg, lead_hours=13, out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "conc_d01.nc").exists()


def test_validate_reports_and_checks_the_file(tmp_path):
    from aqforecast.stages import validate

    _file_config(tmp_path, {"O3": ("ppb", linear_field)})
    case = tmp_path / "small.yaml"
    _, summary = validate(case)
    assert "boundary: file " in summary and "1 species" in summary, summary
    data = yaml.safe_load(case.read_text())
    data["time"]["lead_hours"] = 24  # the file ends at 12 h
    data["time"]["windows"] = [{"until_hours": 24, "every_hours": 1}]
    case.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(InputFileError, match="do not cover 2026-07-21T00:00:00"):
        validate(case)


@pytest.mark.mpi
def test_two_ranks_equal_one_rank_with_a_boundary_file(tmp_path):
    """Initial, lateral and lid values from the file do not depend on the decomposition: a
    2-rank run (2 x 1 blocks) writes the serial run's files bit for bit."""
    import os
    import subprocess
    import sys

    from aqforecast.forecast import run_forecast

    from test_forecast import _mpiexec

    exe = _mpiexec()
    if exe is None:
        pytest.skip("mpiexec/mpi4py not available")
    _file_config(tmp_path, {"O3": ("ppb", linear_field), "SO4": ("ug m-3", linear_field)})
    case = tmp_path / "small.yaml"
    run_forecast(case, 2, tmp_path / "serial", tags=False, progress=False)
    data = yaml.safe_load(case.read_text())
    data["parallel"]["process_grid"] = [2, 1]
    mpi_case = tmp_path / "mpi.yaml"
    mpi_case.write_text(yaml.safe_dump(data, sort_keys=False))
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    res = subprocess.run([exe, "-n", "2", sys.executable, "-m", "aqforecast.cli", "forecast",
                          str(mpi_case), "--lead-hours", "2", "--out", str(tmp_path / "mpi"),
                          "--no-progress", "--no-tags"],
                         capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("conc_d01", "conc_d02"):
        a = xr.open_dataset(tmp_path / "serial" / f"{name}.nc")
        b = xr.open_dataset(tmp_path / "mpi" / f"{name}.nc")
        assert a.attrs["start_type"] == "cold"
        for v in a.data_vars:
            np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=f"{name} {v}")


def test_a_single_record_is_used_at_all_times_and_only_a_window_is_read(tmp_path):
    """One time record (a climatology) applies at any time; sampling reads only the lon/lat
    window around the points (same values as from the whole grid)."""
    path = write_file(tmp_path / "clim.nc", {"O3": ("ppb", linear_field)}, hours=np.array([0]))
    bf = BoundaryFile(path, ["O3"])
    bf.check_covers([120.0], [30.0], T0 - np.timedelta64(30, "D"), T0 + np.timedelta64(30, "D"))
    lon, lat = np.array([119.9, 120.45]), np.array([29.7, 30.85])
    z = np.array([[10.0, 300.0], [2500.0, 100.0]])
    got = bf.sample(T0 + np.timedelta64(400, "h"), bf.weights(lon, lat), z, np.ones_like(z))
    np.testing.assert_allclose(got["O3"], linear_field(0.0, z, lat, lon) * 1e-9, rtol=1e-12)
