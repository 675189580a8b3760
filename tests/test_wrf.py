"""WRF reader: derived fields against wrf-python's own CI results, destaggering, precipitation
rates from accumulations across files, missing-variable errors, the salem Lambert sample."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest

from aqforecast.io import InputFileError
from aqforecast.io.wrf import (
    REQUIRED_CORE,
    WrfOutput,
    cloud_fraction_proxy,
    destagger,
    read_wrfout,
    relative_humidity,
)


@pytest.fixture(scope="module")
def ci_pair(shared_data):
    d = shared_data / "met_wrf"
    wo = WrfOutput(d / "wrfpython_ci_test_file.nc", REQUIRED_CORE)
    res = netCDF4.Dataset(d / "wrfpython_ci_result_file.nc")
    res.set_auto_mask(False)
    yield wo, res
    wo.close()
    res.close()


def _ref(res, name):
    return np.asarray(res[name][:], dtype=np.float64)


def test_times_sorted_and_parsed(ci_pair):
    wo, _ = ci_pair
    assert wo.times.dtype == np.dtype("datetime64[s]")
    assert str(wo.times[0]) == "2005-08-28T12:00:00"
    assert np.all(np.diff(wo.times) == np.timedelta64(3, "h"))


def test_pressure_height_temperature_match_wrfpython(ci_pair):
    """wrf-python's CI results (getvar at time index 0) to float32 round-off."""
    wo, res = ci_pair
    f = wo.fields(0)
    np.testing.assert_allclose(f.p, _ref(res, "p"), rtol=1e-6)                 # Pa
    np.testing.assert_allclose(f.p / 100.0, _ref(res, "pressure"), rtol=1e-6)  # hPa
    np.testing.assert_allclose(f.t, _ref(res, "tk"), rtol=1e-6)
    np.testing.assert_allclose(f.theta, _ref(res, "theta"), rtol=1e-6)
    np.testing.assert_allclose(f.z, _ref(res, "z"), rtol=1e-6, atol=1e-3)      # m
    np.testing.assert_allclose(f.z_stag, _ref(res, "zstag"), rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(f.z * 9.81, _ref(res, "geopt"), rtol=1e-6, atol=1e-2)
    np.testing.assert_allclose(wo.static.hgt, _ref(res, "ter"), atol=1e-4)
    # destaggered winds (Mercator file: no rotation, so ua/va are the grid winds)
    np.testing.assert_allclose(f.u, _ref(res, "ua"), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(f.v, _ref(res, "va"), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(f.w, _ref(res, "wa"), rtol=1e-6, atol=1e-6)
    # spot numbers: surface pressure level and the model top
    assert 90000 < f.p[0].mean() < 102000
    assert f.p[-1].max() < 0.6 * f.p[0].min()   # the CI file keeps the lowest 14 levels
    assert f.height_stag[0].max() == pytest.approx(0.0, abs=0.05)


def test_relative_humidity_matches_wrfpython(ci_pair):
    wo, res = ci_pair
    f = wo.fields(0)
    rh = np.clip(relative_humidity(f.qv, f.p, f.t), 0.0, 1.0) * 100.0
    np.testing.assert_allclose(rh, _ref(res, "rh"), atol=2e-3)


def test_destagger():
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(destagger(a, 1), [[0.5, 1.5, 2.5], [4.5, 5.5, 6.5],
                                                    [8.5, 9.5, 10.5]])
    np.testing.assert_array_equal(destagger(a, 0), [[2, 3, 4, 5], [6, 7, 8, 9]])
    assert destagger(np.zeros((5, 2, 3)), 0).shape == (4, 2, 3)


def _mini_wrfout(path, times, rainc, rainnc, extra=()):
    """A minimal wrfout-layout file with accumulated precipitation only."""
    with netCDF4.Dataset(path, "w") as nc:
        for k, n in (("Time", None), ("DateStrLen", 19), ("west_east", 2), ("south_north", 2),
                     ("bottom_top", 1)):
            nc.createDimension(k, n)
        tv = nc.createVariable("Times", "S1", ("Time", "DateStrLen"))
        tv[:] = netCDF4.stringtochar(np.array(times, dtype="S19"))
        for name, vals in (("RAINC", rainc), ("RAINNC", rainnc)) + tuple(extra):
            v = nc.createVariable(name, "f4", ("Time", "south_north", "west_east"))
            v[:] = np.asarray(vals, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2))


RAIN_VARS = ("Times", "RAINC", "RAINNC")


def test_rain_rate_across_files_and_sorting(tmp_path):
    # file B given first: the reader sorts by Times; accumulation continues across the files
    a = tmp_path / "wrfout_d01_2026-07-20_00:00:00"
    b = tmp_path / "wrfout_d01_2026-07-20_03:00:00"
    _mini_wrfout(a, ["2026-07-20_00:00:00", "2026-07-20_01:00:00", "2026-07-20_02:00:00"],
                 [0, 0.5, 1.0], [0, 0.5, 2.0])
    _mini_wrfout(b, ["2026-07-20_03:00:00", "2026-07-20_06:00:00"], [1.0, 4.0], [5.0, 8.0])
    with WrfOutput([b, a], required=RAIN_VARS) as wo:
        assert [str(t) for t in wo.times] == ["2026-07-20T00:00:00", "2026-07-20T01:00:00",
                                             "2026-07-20T02:00:00", "2026-07-20T03:00:00",
                                             "2026-07-20T06:00:00"]
        rates = [float(wo.rain_rate(i)[0, 0]) for i in range(len(wo))]
    # first record takes the next interval; 3-hourly interval divided by 3 h
    assert rates == pytest.approx([1.0, 1.0, 2.0, 3.0, 2.0])


def test_rain_rate_after_accumulation_reset(tmp_path):
    a = tmp_path / "wrfout_d01_2026-07-20_00:00:00"
    b = tmp_path / "wrfout_d01_2026-07-20_02:00:00"
    _mini_wrfout(a, ["2026-07-20_00:00:00", "2026-07-20_01:00:00"], [0, 0], [10.0, 12.0])
    _mini_wrfout(b, ["2026-07-20_02:00:00", "2026-07-20_03:00:00"], [0, 0], [0.0, 1.5])
    with WrfOutput(str(tmp_path / "wrfout_d01_*"), required=RAIN_VARS) as wo:
        rates = [float(wo.rain_rate(i)[0, 0]) for i in range(len(wo))]
    # the restarted run's first record falls back to its next interval
    assert rates == pytest.approx([2.0, 2.0, 1.5, 1.5])


def test_missing_variable_names_file_and_variables(tmp_path, shared_data):
    p = tmp_path / "wrfout_d01_2026-07-20_00:00:00"
    _mini_wrfout(p, ["2026-07-20_00:00:00"], [0], [0])
    with pytest.raises(InputFileError) as e:
        WrfOutput(p)
    msg = str(e.value)
    assert str(p) in msg
    for v in ("PBLH", "PH", "QVAPOR", "MAPFAC_U"):
        assert v in msg
    assert "RAINC" not in msg.split("variable(s)")[1]
    ci = shared_data / "met_wrf" / "wrfpython_ci_test_file.nc"
    with pytest.raises(InputFileError, match=r"wrfpython_ci_test_file\.nc.*PBLH, HFX, LH, UST"):
        WrfOutput(ci)   # the CI file has no surface physics: the CTM set is rejected
    with pytest.raises(InputFileError, match="no wrfout file matches"):
        WrfOutput(str(tmp_path / "nothing_*"))


def test_salem_sample_lambert_several_times(shared_data):
    path = shared_data / "met_wrf" / "salem_wrf_d01_allvars_cropped.nc"
    with WrfOutput(path) as wo:
        assert len(wo) == 4 and wo.projection["map_proj"] == 1
        grid = wo.lambert_grid()
        # our Lambert grid reproduces WRF's map factors, rotation and coordinates
        np.testing.assert_allclose(grid.map_factor, wo.static.mapfac_m, rtol=2e-6)
        np.testing.assert_allclose(grid.map_factor_u, wo.static.mapfac_u, rtol=2e-6)
        np.testing.assert_allclose(grid.rotation[0], wo.static.cosalpha, atol=2e-6)
        # WRF's SINALPHA comes from finite differences: agree to 1e-4
        np.testing.assert_allclose(grid.rotation[1], wo.static.sinalpha, atol=1e-4)
        np.testing.assert_allclose(grid.lonlat[1], wo.static.lat, atol=1e-4)
        for i in range(len(wo)):
            f = wo.fields(i)
            assert np.all(np.diff(f.p, axis=0) < 0)
            assert np.all(np.diff(f.z_stag, axis=0) > 0)
            assert 190 < f.t.min() and f.t.max() < 320
            assert np.all(f.rain_rate >= 0) and np.all(np.isfinite(f.rho_dry))
            # dry column mass: MU + MUB = surface pressure - p_top - water vapour (< 1 %)
            ratio = f.mu_dry / (f.psfc - wo.static.p_top)
            assert 0.99 < ratio.min() and ratio.max() < 1.0
            assert not f.cldfra_is_proxy
        # earth-relative 10 m wind has the grid wind's speed
        ue, ve = wo.earth_relative(f.u10, f.v10)
        np.testing.assert_allclose(np.hypot(ue, ve), np.hypot(f.u10, f.v10), rtol=1e-6)
    ds = read_wrfout(path)
    assert ds["t"].dims == ("time", "lev", "y", "x") and ds.sizes["time"] == 4
    assert np.issubdtype(ds["time"].dtype, np.datetime64)
    assert ds["rain_rate"].attrs["units"] == "mm h-1"
    assert ds["pblh"].attrs["standard_name"] == "atmosphere_boundary_layer_thickness"


def test_cloud_fraction_proxy():
    rh = np.array([0.5, 0.8, 0.9, 1.0, 1.2])
    np.testing.assert_allclose(cloud_fraction_proxy(rh),
                               [0.0, 0.0, 1 - np.sqrt(0.5), 1.0, 1.0])


def test_few_files_held_open_and_reopened(tmp_path, monkeypatch):
    # six files, at most two open: reading every record (forward, then back to the first
    # file) reopens closed files and gives the same values as with every file held open
    for d in range(6):
        _mini_wrfout(tmp_path / f"wrfout_d01_2026-07-2{d}_00:00:00",
                     [f"2026-07-2{d}_00:00:00", f"2026-07-2{d}_12:00:00"],
                     [0.0, d + 1.0], [0.0, 2.0 * d])
    pattern = str(tmp_path / "wrfout_d01_*")
    with WrfOutput(pattern, required=RAIN_VARS) as wo:
        assert len(wo._handles) <= wo.max_open
        every = [wo._var("RAINNC", i).copy() for i in range(len(wo))]
    monkeypatch.setattr(WrfOutput, "max_open", 2)
    with WrfOutput(pattern, required=RAIN_VARS) as wo:
        assert len(wo._handles) <= 2
        order = list(range(len(wo))) + [0, 11, 1]
        got = {}
        for i in order:
            got[i] = wo._var("RAINNC", i)
            assert len(wo._handles) <= 2
        assert all(np.array_equal(got[i], every[i]) for i in range(len(wo)))
        assert wo.has("RAINC")
