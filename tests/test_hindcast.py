"""The Beijing hindcast's pieces: station-analysed meteorology in wrfout layout
(:mod:`aqforecast.met.station_analysis`, ``aqforecast met-from-stations``), its conventions and
boundary layer, the case's config, and the withheld stations kept out of the analysis and the
inversion."""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from aqforecast.cli import main
from aqforecast.config import load_config, read_yaml
from aqforecast.grid import grids_from_config
from aqforecast.io.wrf import WrfOutput
from aqforecast.met import MetProvider
from aqforecast.met.station_analysis import (
    AnalysisSettings,
    aerosol_transmission,
    StationMet,
    barnes_analysis,
    boundary_layer,
    wind_components,
)
from aqforecast.observations.readers import read_prsa, read_station_coords
from hindcast_case import data_script

REPO = Path(__file__).resolve().parents[1]
CASE = REPO / "config" / "hindcast_beijing" / "config.yaml"
WINTER = "PRSA_12sites_2016-12-01_2017-02-28_hourly.csv"
COORDS = "stations_beijing_prsa_cnemc.csv"


def _data_script():
    return data_script()


@pytest.fixture(scope="module")
def prsa(shared_data):
    d = shared_data / "obs_beijing_prsa"
    return read_prsa(d / WINTER), read_station_coords(d / COORDS)


# ----------------------------------------------------------------------------- conventions
def test_wind_direction_convention():
    # meteorological "from" directions: N blows south, E blows west, S north, W east
    u, v = wind_components([2.0, 2.0, 2.0, 2.0, np.sqrt(2.0)], [0.0, 90.0, 180.0, 270.0, 45.0])
    np.testing.assert_allclose(u, [0.0, -2.0, 0.0, 2.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(v, [-2.0, 0.0, 2.0, 0.0, -1.0], atol=1e-12)


def test_station_table_to_si_and_utc():
    df = pd.DataFrame({"time": pd.to_datetime(["2016-12-01 08:00", "2016-12-01 09:00"] * 2),
                       "station": ["A", "A", "B", "B"], "TEMP": [0.0, 1.0, 2.0, 3.0],
                       "PRES": [1020.0] * 4, "DEWP": [-10.0] * 4, "RAIN": [0.0, 0.5, 0.0, 0.0],
                       "WSPM": [3.0, 0.0, 1.0, 2.0], "wd": ["W", "", "NNE", "S"]})
    coords = pd.DataFrame({"station": ["A", "B"], "lon": [116.3, 116.5], "lat": [40.0, 40.1]})
    obs = StationMet.from_table(df, coords, utc_offset_hours=8.0)
    assert obs.names == ["A", "B"]
    assert obs.times[0] == np.datetime64("2016-12-01T00:00:00")       # 08 LT = 00 UTC
    np.testing.assert_allclose(obs.u10[:, 0], [3.0, 0.0], atol=1e-12)  # west wind; calm
    np.testing.assert_allclose(obs.v10[0, 1], -np.cos(np.deg2rad(22.5)), rtol=1e-12)
    assert obs.v10[1, 1] == pytest.approx(2.0)                         # south wind blows north
    assert obs.t2[0, 0] == pytest.approx(273.15) and obs.psfc[0, 0] == 102000.0
    assert obs.rain[1, 0] == 0.5


# ----------------------------------------------------------------------------- analysis
def test_barnes_reproduces_station_values(prsa):
    df, coords = prsa
    obs = StationMet.from_table(df[df["time"] < "2016-12-03"], coords)
    lon, lat = obs.lon, obs.lat
    # a constant field is reproduced everywhere
    const = np.full((3, len(lon)), 7.5)
    np.testing.assert_allclose(barnes_analysis(lon, lat, const, lon + 0.3, lat), 7.5)
    # a short length scale reproduces the station values at the stations
    t = obs.t2[:24]
    sharp = barnes_analysis(lon, lat, t, lon, lat, length_km=0.5, background_weight=1e-9)
    np.testing.assert_allclose(sharp, t, atol=1e-6)
    # the default (20 km, two passes) smooths: residuals well below the station spread
    smooth = barnes_analysis(lon, lat, t, lon, lat)
    resid = np.sqrt(np.nanmean((smooth - t) ** 2))
    spread = np.sqrt(np.nanmean((t - np.nanmean(t, axis=1, keepdims=True)) ** 2))
    assert resid < 0.5 * spread and spread > 0.3
    # missing stations are skipped; far from every station the analysis is the network mean
    t2 = t.copy()
    t2[:, 0] = np.nan
    far = barnes_analysis(lon, lat, t2, [lon.mean() + 5.0], [lat.mean()])
    np.testing.assert_allclose(far[:, 0], np.nanmean(t2, axis=1), atol=1e-6)


def test_boundary_layer_day_and_night():
    # Beijing, 2016-12-01 00 UTC (08 LT) .. 2016-12-02 00 UTC: clear sky, 2 m/s, 275 K
    times = np.datetime64("2016-12-01T00", "s") + np.arange(25) * np.timedelta64(1, "h")
    shape = (25, 1, 2)
    lon, lat = np.full((1, 2), 116.4), np.full((1, 2), 40.0)
    ones = np.ones(shape)
    z0 = np.array([[0.1, 1.0]])
    bl = boundary_layer(times, lon, lat, 2.0 * ones, 0.0 * ones, 275.0 * ones, 1.02e5 * ones,
                        0.0 * ones, z0, AnalysisSettings())
    lt = (np.arange(25) + 8) % 24
    noon, night = lt == 13, lt == 2
    assert np.all(bl["SWDOWN"][night] == 0.0) and np.all(bl["SWDOWN"][noon] > 250.0)
    assert np.all(bl["HFX"][noon] > 50.0) and np.all(bl["HFX"][night] < 0.0)
    assert np.all(bl["HFX"] > -64.5)                       # AERMET's limit u* theta* <= 0.05
    # afternoon mixed layer well above the night's mechanical layer
    h13, h02 = bl["PBLH"][noon][0], bl["PBLH"][night][0]
    assert np.all(h13 > 400.0) and np.all(h13 > h02) and h13[0, 0] > 3.0 * h02[0, 0]
    # at night the height relaxes to Venkatram's 2300 u*^1.5 (constant u* here)
    np.testing.assert_allclose(h02, np.maximum(2300.0 * bl["UST"][night][0] ** 1.5, 50.0),
                               rtol=0.05)
    # rougher (urban) cells: larger u*, deeper mechanical layer at night
    assert bl["UST"][0, 0, 1] > bl["UST"][0, 0, 0] and h02[0, 1] > h02[0, 0]
    # a windier night mixes deeper
    windy = boundary_layer(times, lon, lat, 6.0 * ones, 0.0 * ones, 275.0 * ones,
                           1.02e5 * ones, 0.0 * ones, z0, AnalysisSettings())
    assert np.all(windy["PBLH"][night][0] > 2.0 * h02)


def test_aerosol_transmission_beer_lambert():
    """tau = E c H; direct beam exp(-tau / sin(elevation)); global = direct + d (1 - direct)."""
    # 200 ug m-3 over 1000 m = 0.2 g m-2; at 4 m2 g-1 tau = 0.8
    tau, t_dir, t_glob = aerosol_transmission(200.0, 0.5, 4.0, 1000.0, 0.5)
    assert float(tau) == pytest.approx(0.8)
    assert float(t_dir) == pytest.approx(np.exp(-1.6))           # air mass 2
    assert float(t_glob) == pytest.approx(np.exp(-1.6) + 0.5 * (1 - np.exp(-1.6)))
    # clean air, night and unknown PM2.5: no dimming; a thick haze at most halves (d = 0.5)
    _, t0, g0 = aerosol_transmission(np.array([0.0, 300.0, np.nan]), np.array([0.4, -0.2, 0.4]))
    np.testing.assert_allclose(t0, 1.0) and np.testing.assert_allclose(g0, 1.0)
    _, td, tg = aerosol_transmission(5000.0, 0.3)
    assert td < 1e-20 and tg == pytest.approx(0.5)
    # d = 1: everything scattered reaches the ground; d = 0: the direct beam alone
    assert float(aerosol_transmission(300.0, 0.4, diffuse_fraction=1.0)[2]) == 1.0
    assert float(aerosol_transmission(300.0, 0.4, diffuse_fraction=0.0)[2]) == \
        pytest.approx(np.exp(-4e-6 * 300.0 * 1000.0 / 0.4))
    # monotonic in the concentration and in the sun's height
    g = aerosol_transmission(np.array([50.0, 150.0, 400.0]), 0.4)[2]
    assert np.all(np.diff(g) < 0)
    assert aerosol_transmission(150.0, 0.6)[2] > aerosol_transmission(150.0, 0.3)[2]
    for bad in ({"mee_m2_g": 0.0}, {"haze_layer_m": -1.0}, {"diffuse_fraction": 1.5}):
        with pytest.raises(ValueError, match="aerosol dimming"):
            aerosol_transmission(100.0, 0.5, **bad)
    with pytest.raises(ValueError, match="negative PM2.5"):
        aerosol_transmission(-1.0, 0.5)


def test_aerosol_dimming_lowers_the_daytime_boundary_layer():
    times = np.datetime64("2016-12-01T00", "s") + np.arange(12) * np.timedelta64(1, "h")
    shape = (12, 1, 1)
    lon, lat, z0 = np.full((1, 1), 116.4), np.full((1, 1), 40.0), np.array([[0.5]])
    ones = np.ones(shape)
    args = (times, lon, lat, 2.0 * ones, 0.0 * ones, 275.0 * ones, 1.02e5 * ones,
            0.0 * ones, z0)
    clear = boundary_layer(*args, AnalysisSettings())
    s = AnalysisSettings(aerosol_dimming=True)
    clean = boundary_layer(*args, s, pm25=0.0 * ones)
    haze = boundary_layer(*args, s, pm25=250.0 * ones)
    np.testing.assert_allclose(clean["SWDOWN"], clear["SWDOWN"])
    np.testing.assert_allclose(clean["PBLH"], clear["PBLH"])
    day = clear["SWDOWN"] > 0
    assert np.all(haze["SWDOWN"][day] < 0.8 * clear["SWDOWN"][day])
    assert np.all(haze["SWDOWN"][day] >= 0.5 * clear["SWDOWN"][day] - 1e-9)
    assert haze["AOD"].max() == pytest.approx(1.0)                # 4 * 250e-6 * 1000
    noon = (np.arange(12) + 8) % 24 == 14
    assert haze["PBLH"][noon].max() < 0.9 * clear["PBLH"][noon].max()
    with pytest.raises(ValueError, match="PM2.5"):
        boundary_layer(*args, s)


# ----------------------------------------------------------------------------- wrfout files
def _small_case(tmp: Path, nx=20, hours=5, emissions=True) -> Path:
    data = read_yaml(CASE)
    data["base_dir"] = str(REPO)
    data["time"]["start"] = "2016-12-01T00:00:00Z"
    data["time"]["lead_hours"] = hours - 2
    data["time"]["windows"] = [{"until_hours": hours - 2, "every_hours": 1}]
    data["vertical"] = {"nz": 8, "p_top_pa": 10000.0, "first_layer_m": 40.0}
    data["domains"] = [{"name": "d01", "dx_m": 3000.0, "nx": nx, "ny": nx,
                        "centre_lon": 116.42, "centre_lat": 40.08}]
    data["inputs"]["met"]["paths"] = {"d01": str(tmp / "met" / "wrfout_d01_*")}
    data["inputs"]["observations"]["window_hours"] = 2
    # the case's analysed inflow file is generated (git-ignored); the small case uses the
    # background profiles (tests/test_hindcast_boundary.py covers the analysed inflow)
    data["inputs"]["boundary"] = {"kind": "profile"}
    if emissions:
        mod = _data_script()
        ds, _ = mod.build_inventory()
        from aqforecast.io import write_dataset

        write_dataset(ds, tmp / "inventory.nc", 1)
        data["inputs"]["emissions"]["gridded"] = str(tmp / "inventory.nc")
    else:
        data["inputs"]["emissions"] = {}
    data["chemistry"]["enabled"] = False
    data["outputs"] = {"dir": str(tmp / "results"), "levels": [0, 3], "tag_levels": [0],
                       "tag_every_hours": 1, "restart_every_hours": 1, "compression_level": 1}
    path = tmp / "hindcast_small.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def station_met(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("hindcast_met")
    case = _small_case(tmp, emissions=False)
    d = shared_data / "obs_beijing_prsa"
    assert main(["met-from-stations", str(case), "--stations", str(d / WINTER), "--coords",
                 str(d / COORDS), "--out", str(tmp / "met"), "--hours", "5",
                 "--urban", "116.40,39.92,14"]) == 0
    return case, tmp


def test_station_wrfout_passes_the_reader_and_validate(station_met, shared_data, capsys):
    case, tmp = station_met
    names = sorted(p.name for p in (tmp / "met").iterdir())
    assert names == ["wrfout_d01_2016-12-01_00:00:00"]
    capsys.readouterr()
    assert main(["validate", str(case)]) == 0
    assert "met d01: 5 times 2016-12-01T00:00:00" in capsys.readouterr().out
    cfg = load_config(case)
    grid = grids_from_config(cfg)["d01"]
    with WrfOutput(str(tmp / "met" / "wrfout_d01_*")) as wo:
        assert len(wo) == 5 and wo.attribute("MAP_PROJ", int) == 1
        f = wo.fields(2)
        assert np.all(np.diff(f.p, axis=0) < 0) and np.all(f.qv > 0)
        np.testing.assert_allclose(f.mu_dry + wo.static.p_top, f.psfc, rtol=0.02)
        assert np.all((f.pblh >= 50.0) & (f.pblh <= 4000.0))
        # the analysed surface values at the stations are the stations' (within smoothing)
        df = read_prsa(shared_data / "obs_beijing_prsa" / WINTER)
        coords = read_station_coords(shared_data / "obs_beijing_prsa" / COORDS)
        obs = df[df["time"] == pd.Timestamp("2016-12-01 10:00")].merge(coords, on="station")
        j, i = grid.locate(obs["lon"].to_numpy(), obs["lat"].to_numpy())
        np.testing.assert_allclose(f.psfc[j, i] / 100.0, obs["PRES"], atol=1.5)
        assert np.sqrt(np.mean((f.t2[j, i] - 273.15 - obs["TEMP"]) ** 2)) < 2.0
        # the network-mean wind direction is kept (earth-relative 10 m wind)
        ue, ve = wo.earth_relative(f.u10, f.v10)
        from aqforecast.met.station_analysis import COMPASS_DEGREES
        uo, vo = wind_components(obs["WSPM"], obs["wd"].map(COMPASS_DEGREES))
        mean_obs = np.array([np.nanmean(uo), np.nanmean(vo)])
        mean_ana = np.array([ue[j, i].mean(), ve[j, i].mean()])
        cos = mean_obs @ mean_ana / np.linalg.norm(mean_obs) / np.linalg.norm(mean_ana)
        assert cos > 0.9
    # the model reads it; the column mass flux is non-divergent: the lid carries only the
    # pressure tendency
    met = MetProvider.from_config(cfg, "d01")
    try:
        fl = met.air_mass_fluxes(np.datetime64("2016-12-01T02:00"), 900.0)
        assert fl.top_flux_fraction < 2e-4
    finally:
        met.close()


def test_met_from_stations_refuses_a_period_without_data(station_met, shared_data, capsys):
    case, tmp = station_met
    d = shared_data / "obs_beijing_prsa"
    rc = main(["met-from-stations", str(case), "--stations", str(d / WINTER), "--coords",
               str(d / COORDS), "--out", str(tmp / "met2"), "--start", "2016-06-01T00"])
    assert rc == 2
    assert "station data cover" in capsys.readouterr().err


def test_met_from_stations_aerosol_dimming(station_met, shared_data, capsys):
    """--aerosol-dimming: daytime SWDOWN and PBLH no larger than the clear-sky files' (1 Dec
    2016 00-04 UTC = 08-12 Beijing time), and an unknown excluded station is an input error."""
    import xarray as xr

    case, tmp = station_met
    d = shared_data / "obs_beijing_prsa"
    args = ["met-from-stations", str(case), "--stations", str(d / WINTER), "--coords",
            str(d / COORDS), "--hours", "5", "--urban", "116.40,39.92,14", "--aerosol-dimming"]
    assert main(args + ["--out", str(tmp / "met_dim")]) == 0
    name = sorted(p.name for p in (tmp / "met").iterdir())[0]
    with xr.open_dataset(tmp / "met" / name) as a, xr.open_dataset(tmp / "met_dim" / name) as b:
        sw0, sw1 = a["SWDOWN"].values, b["SWDOWN"].values
        assert np.all(sw1 <= sw0 + 1e-3) and np.any(sw1 < sw0 - 1.0)
        assert np.all(b["PBLH"].values <= a["PBLH"].values + 1e-3)
    rc = main(args + ["--out", str(tmp / "met_bad"), "--aerosol-exclude", "Nowhere"])
    assert rc == 2 and "Nowhere" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the case
def test_hindcast_config_and_region():
    mod = _data_script()
    cfg = load_config(CASE)
    assert cfg.verification.withheld_stations == ["Dongsi", "Wanliu", "Changping", "Shunyi"]
    assert cfg.products.standard is None               # HJ 633 by date: 2012 for 2016-17
    assert (REPO / cfg.regions[0].geojson).is_file()
    poly = mod.beijing_polygon()
    assert mod._area_km2(poly) == pytest.approx(16410.0, rel=1e-6)
    import shapely

    coords = read_station_coords(REPO / "tests" / "data" / "shared" / "obs_beijing_prsa" /
                                 COORDS)
    assert all(poly.contains(shapely.Point(x, y)) for x, y in zip(coords.lon, coords.lat))
    from aqforecast.products.aqi import standard_for_date

    assert standard_for_date(datetime(2016, 12, 1)) == "HJ633-2012"


def test_inventory_totals_and_pm10():
    ds, totals = _data_script().build_inventory()
    for p in ("SO2", "NOx", "PM25", "PM10", "NMVOC", "NH3", "CO"):
        assert float(ds[p].sum()) == pytest.approx(sum(totals[p]), rel=1e-6)
    assert bool((ds["PM10"] >= ds["PM25"] - 1e-9).all())


# ----------------------------------------------------------------------------- withheld
def test_withheld_stations_never_reach_assimilation_or_inversion(tmp_path, shared_data):
    case = _small_case(tmp_path, nx=20, hours=5)
    d = shared_data / "obs_beijing_prsa"
    assert main(["met-from-stations", str(case), "--stations", str(d / WINTER), "--coords",
                 str(d / COORDS), "--out", str(tmp_path / "met"), "--hours", "5"]) == 0
    run = tmp_path / "run"
    assert main(["forecast", str(case), "--lead-hours", "3", "--out", str(run),
                 "--no-progress"]) == 0
    obs = tmp_path / "obs"
    assert main(["observations", str(case), "--cycle", "2016-12-01T03", "--out",
                 str(obs)]) == 0
    withheld = set(load_config(case).verification.withheld_stations)
    ana = tmp_path / "analysis"
    assert main(["assimilate", str(case), "--background", str(run), "--obs",
                 str(obs / "obs.nc"), "--out", str(ana), "--time", "2016-12-01T03"]) == 0
    inn = pd.read_csv(ana / "innovations.csv")
    assert not set(inn["station"]) & withheld
    assert len(set(inn["station"])) >= 5 and inn["used"].any()
    inv = tmp_path / "inversion"
    assert main(["invert", str(case), "--run", str(run), "--obs", str(obs / "obs.nc"),
                 "--out", str(inv)]) == 0
    rep = pd.read_csv(inv / "inversion_report.csv").set_index("item")["value"]
    used = set(str(rep["stations_used"]).split())
    assert used and not used & withheld
    assert set(str(rep["stations_withheld"]).split()) == withheld
    # and without the list they would have been used
    data = read_yaml(case)
    data["verification"]["withheld_stations"] = []
    open_case = tmp_path / "open.yaml"
    open_case.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["assimilate", str(open_case), "--background", str(run), "--obs",
                 str(obs / "obs.nc"), "--out", str(tmp_path / "ana_open"), "--time",
                 "2016-12-01T03"]) == 0
    inn = pd.read_csv(tmp_path / "ana_open" / "innovations.csv")
    assert set(inn["station"]) & withheld


def _driver_script():
    path = REPO / "workflow" / "scripts" / "hindcast.py"
    spec = importlib.util.spec_from_file_location("hindcast_driver", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hindcast_table_has_polluted_day_hit_rates():
    """score_daily on crafted station-days: PM2.5 > 75, O3 MDA8 > 160 and AQI > 100 hit rates
    by lead day."""
    drv = _driver_script()
    # lead day 1: hit, miss, false alarm, correct negative; lead day 2: two hits
    f = [90.0, 50.0, 100.0, 50.0, 150.0, 80.0]
    o = [100.0, 100.0, 50.0, 50.0, 200.0, 76.0]
    aqi_f, aqi_o = [120, 70, 130, 70, 200, 105], [130, 130, 70, 70, 250, 101]
    d = pd.DataFrame({"experiment": "free", "cycle": "c", "station": list("ABCDAB"),
                      "lead_day": [1, 1, 1, 1, 2, 2], "PM2.5_24h_f": f, "PM2.5_24h_o": o,
                      "O3_8h_f": [170.0, 150.0, 50.0, 50.0, 200.0, 100.0],
                      "O3_8h_o": [165.0, 180.0, 190.0, 60.0, 161.0, 170.0],
                      "aqi_f": aqi_f, "aqi_o": aqi_o,
                      "category_f": [3, 2, 3, 2, 5, 3], "category_o": [3, 3, 2, 2, 5, 3]})
    t = drv.score_daily(d).set_index("lead_day")
    assert t.loc[1, "PM2.5>75 obs days"] == 2 and t.loc[1, "PM2.5>75 POD %"] == 50.0
    assert t.loc[1, "PM2.5>75 FAR %"] == 50.0
    assert t.loc[1, "PM2.5>75 CSI %"] == pytest.approx(100 / 3)
    assert t.loc[2, "PM2.5>75 POD %"] == 100.0 and t.loc[2, "PM2.5>75 FAR %"] == 0.0
    assert t.loc[1, "AQI>100 POD %"] == 50.0 and t.loc[1, "AQI category acc %"] == 50.0
    # O3: day 1 one hit of three events, no false alarm; day 2 one hit, one miss
    assert t.loc[1, "O3>160 obs days"] == 3 and t.loc[1, "O3>160 hits"] == 1
    assert t.loc[1, "O3>160 POD %"] == pytest.approx(100 / 3) and t.loc[1, "O3>160 FAR %"] == 0
    assert t.loc[2, "O3>160 POD %"] == 50.0 and t.loc[2, "O3>160 CSI %"] == 50.0
    md = drv.markdown(t.reset_index())
    assert "PM2.5>75 POD %" in md and "AQI>100 CSI %" in md


def test_committed_last_run_is_small_and_consistent():
    """config/hindcast_beijing/last_run/ (notebook 05's input): under 200 kB, and its
    summary.csv is what score_daily makes of its daily.csv."""
    drv = _driver_script()
    d = REPO / "config" / "hindcast_beijing" / "last_run"
    files = {p.name for p in d.iterdir()}
    assert {"summary.csv", "daily.csv", "pm25_hourly.csv", "provenance.json"} <= files
    assert sum(p.stat().st_size for p in d.iterdir()) < 200_000
    summary = pd.read_csv(d / "summary.csv")
    again = drv.score_daily(pd.read_csv(d / "daily.csv"))
    # daily.csv holds 4 significant digits: r near 0 moves in the third decimal
    pd.testing.assert_frame_equal(summary, again, check_dtype=False, rtol=1e-2, atol=1e-2)


# ----------------------------------------------------------------------------- other windows
def test_config_with_start_keeps_the_rest(tmp_path):
    """hindcast.py --start: the derived config differs from the committed one in time.start
    (and an absolute base_dir) only; species NO survives; the committed file is not touched."""
    drv = _driver_script()
    before = CASE.read_text()
    dest = drv.config_with_start(CASE, tmp_path / "deep" / "config.yaml",
                                 datetime(2016, 12, 14, 16))
    assert CASE.read_text() == before
    new, old = load_config(dest), load_config(CASE)
    assert new.time.start.replace(tzinfo=None) == datetime(2016, 12, 14, 16)
    assert new.base_dir == old.base_dir
    assert new.species == old.species and "NO" in new.species
    assert new.inputs.met.paths == old.inputs.met.paths
    changed = [(a, b) for a, b in zip(before.splitlines(), dest.read_text().splitlines())
               if a != b]
    assert len(changed) == 2 and changed[1][1].strip() == "start: 2016-12-14T16:00:00Z"
    with pytest.raises(Exception, match="YYYY-MM-DDTHH"):
        drv.parse_start("2016-12-14")


@pytest.mark.parametrize("start", [None, "2016-12-20T00"])
def test_driver_start_moves_the_spinup_and_the_cycles(tmp_path, monkeypatch, start):
    """hindcast.py [--start]: every step reads OUT/config.yaml (time.start moved) and the spin-up
    and the cycles start from it; without --start nothing changes (the config's start, no
    derived config). Steps run as ``echo`` (their arguments land in their logs)."""
    drv = _driver_script()
    case = _small_case(tmp_path, emissions=False)
    real = drv.run_cycles
    monkeypatch.setattr(drv, "run_cycles", lambda *a, **k: real(*a[:-1], "echo", **k))
    seen = {}

    def fake_daily(out, experiments, cycles, withheld, utc_offset_h=8.0):
        seen["cycles"] = cycles
        return pd.DataFrame({"experiment": "free", "cycle": cycles[0], "station": "Dongsi",
                             "lead_day": [1], "PM2.5_24h_f": [50.0], "PM2.5_24h_o": [60.0],
                             "O3_8h_f": 50.0, "O3_8h_o": 60.0, "aqi_f": [70], "aqi_o": [80],
                             "category_f": [2], "category_o": [2]})

    monkeypatch.setattr(drv, "daily_table", fake_daily)
    out = tmp_path / "out"
    argv = ["--config", str(case), "--cycles", "2", "--lead-hours", "3", "--out", str(out),
            "--experiments", "free", "--no-publish"]
    assert drv.main(argv + (["--start", start] if start else [])) == 0
    t0 = datetime(2016, 12, 20) if start else datetime(2016, 12, 1)
    names = [(t0 + pd.Timedelta(days=d)).strftime("%Y-%m-%dT%H") for d in (1, 2)]
    assert seen["cycles"] == names
    spin = (out / "spinup" / "forecast.log").read_text().split()
    assert spin[spin.index("--start") + 1] == t0.strftime("%Y-%m-%dT%H")
    cfg_used = spin[1]
    if start:
        assert cfg_used == str(out / "config.yaml")
        assert load_config(cfg_used).time.start.replace(tzinfo=None) == t0
    else:
        assert cfg_used == str(case) and not (out / "config.yaml").exists()
    fc = (out / "free" / names[1] / "logs" / "forecast.log").read_text().split()
    assert fc[1] == cfg_used and fc[fc.index("--start") + 1] == names[1]
    assert fc[fc.index("--initial") + 1].endswith(f"{names[0]}/forecast/restart/{names[1]}")


def test_data_script_start_writes_that_window_and_a_config(tmp_path):
    """hindcast_beijing_data.py --start: met records from that hour, and OUT/config.yaml with
    that time.start and the met, inventory and inflow paths in OUT (the committed config's
    inputs otherwise); the default start stays the config's."""
    mod = _data_script()
    files = mod.write_met(3, tmp_path / "met", start="2016-12-20T05")
    assert [f.name for f in files] == ["wrfout_d01_2016-12-20_05:00:00"]
    with WrfOutput(str(tmp_path / "met" / "wrfout_d01_*")) as wo:
        t = wo.times
    assert [str(x)[:13] for x in t] == ["2016-12-20T05", "2016-12-20T06", "2016-12-20T07"]
    before = mod.CONFIG.read_text()
    cfgp = mod.derive_config(mod.CONFIG, tmp_path / "config.yaml",
                             mod.parse_start("2016-12-14T16"), tmp_path)
    assert mod.CONFIG.read_text() == before
    new, old = load_config(cfgp), load_config(mod.CONFIG)
    assert new.time.start.replace(tzinfo=None) == datetime(2016, 12, 14, 16)
    assert new.inputs.met.paths["d01"] == str(tmp_path.resolve() / "met" / "wrfout_d01_*")
    assert Path(new.inputs.boundary.path) == tmp_path.resolve() / mod.BOUNDARY_FILE
    assert Path(new.inputs.emissions.gridded).parent == tmp_path.resolve() / "emissions"
    assert new.species == old.species and new.domains == old.domains
    assert old.time.start.replace(tzinfo=None) == datetime(2016, 11, 30, 16)


def test_data_script_summer_start_reads_the_summer_file(tmp_path):
    """hindcast_beijing_data.py --start in June-August 2016 (issue 25, the O3 season): the met,
    the analysed inflow and OUT/config.yaml's observations come from the summer PRSA file, not
    the winter one (which holds no summer hour); a start no vendored file holds is refused."""
    import xarray as xr

    mod = _data_script()
    summer = "PRSA_12sites_2016-06-01_2016-08-31_hourly.csv"
    assert mod.prsa_file(None) == WINTER
    assert mod.prsa_file("2016-12-14T16") == WINTER
    assert mod.prsa_file(datetime(2016, 6, 30, 16)) == summer
    assert mod.prsa_file("2016-05-31T16") == summer        # 2016-06-01 00 local
    with pytest.raises(SystemExit, match="no PRSA file"):
        mod.prsa_file("2016-10-01T00")
    files = mod.write_met(3, tmp_path / "met", start="2016-07-05T04")
    assert [f.name for f in files] == ["wrfout_d01_2016-07-05_04:00:00"]
    with xr.open_dataset(files[0]) as ds:
        assert float(ds["T2"].min()) > 290.0               # a July noon in Beijing, not January
    bc = mod.write_boundary(tmp_path / "bc.nc", met_dir=None, start="2016-06-30T16")
    with xr.open_dataset(bc) as ds:
        t = ds["time"].values
    assert str(t.min())[:13] == "2016-05-31T16" and str(t.max())[:13] == "2016-08-31T15"
    cfgp = mod.derive_config(mod.CONFIG, tmp_path / "config.yaml",
                             mod.parse_start("2016-06-30T16"), tmp_path)
    src = load_config(cfgp).inputs.observations.sources
    assert [Path(s.path).name for s in src] == [summer]
    winter = mod.derive_config(mod.CONFIG, tmp_path / "w" / "config.yaml",
                               mod.parse_start("2016-12-14T16"), tmp_path)
    assert [Path(s.path).name for s in load_config(winter).inputs.observations.sources] \
        == [WINTER]
