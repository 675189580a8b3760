"""Local time and the AQI standard from the config (issue 18): ``time.local_utc_offset_h`` /
``time.timezone`` move the local days of the products and the hours of the emission profiles;
``products.aqi_standard`` picks HJ 633-2026 (default), HJ 633-2012 or the US EPA index, named in
every product, with warnings for dates outside a standard's time in force."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aqforecast.config import ConfigError, RegionConfig, RunConfig, load_config
from aqforecast.config.localtime import LocalTime
from aqforecast.emissions.temporal import SectorProfile, TemporalProfiles
from aqforecast.grid import grids_from_config
from aqforecast.io.output import FieldSeriesWriter
from aqforecast.products import aqi, epa, surface
from aqforecast.products.pipeline import make_products

SPECIES = ["NO2", "O3", "SO2", "CO", "SO4", "NO3", "NH4", "PPM25", "PPM10"]
GASES = {"NO2", "O3", "SO2", "CO"}


# ----------------------------------------------------------------------------- AQI standards
@pytest.mark.parametrize("standard, pm25, expect", [
    # HJ 633-2012 Table 1: 35-75 ug m-3 -> 50-100, 75-115 -> 100-150; IAQI rounded up
    ("HJ633-2012", [50.0, 75.0, 35.0], [69, 100, 50]),     # 50 + 15*50/40 = 68.75 -> 69
    # HJ 633-2026 Table 3: 35-60 -> 50-100, 60-115 -> 100-150
    ("HJ633-2026", [50.0, 75.0, 35.0], [80, 114, 50]),     # 100 + 15*50/55 = 113.6 -> 114
    # EPA 2024: 35.5-55.4 -> 101-150, 55.5-125.4 -> 151-200, 9.1-35.4 -> 51-100; rounded
    ("EPA-2024", [50.0, 75.0, 35.0], [137, 165, 99]),      # 101 + 49/19.9*14.5 = 136.7
])
def test_same_concentration_known_index_under_each_standard(standard, pm25, expect):
    got = aqi.iaqi("PM2.5", np.array(pm25), "24h", standard)
    np.testing.assert_array_equal(got, expect)


def test_epa_units_and_ozone_index():
    """Products hold O3 in ug m-3 at 298.15 K, 1013.25 hPa (the EPA reference state too):
    160 ug m-3 = 81.56 ppb -> truncated 0.081 ppm -> 101 + 49/0.014*0.010 = 136 (EPA), while
    HJ 633 gives 100 for the same MDA8."""
    assert epa.to_epa_units("O3", 160.0) == pytest.approx(0.08156, rel=1e-4)
    assert epa.iaqis({"O3_8h": np.array([160.0])})["iaqi_O3_8h"][0] == 136
    assert aqi.iaqi("O3", 160.0, "8h", "HJ633-2026") == 100
    # 1 ppm CO = 1.145 mg m-3 at the reference state
    assert epa.to_epa_units("CO", 1.145) == pytest.approx(1.0, rel=1e-3)


def test_standard_names_and_warnings():
    assert aqi.normalize_standard("hj633-2012") == "HJ633-2012"
    assert aqi.normalize_standard("HJ 633\u20142026") == "HJ633-2026"
    assert aqi.normalize_standard("epa-2024") == "EPA-2024"
    assert aqi.normalize_standard("hj633") is None
    with pytest.raises(ValueError, match="unknown AQI standard"):
        aqi.normalize_standard("aqhi")
    # the salem WRF case: 2005, before any HJ 633 was in force (HJ 633-2012: 2016-01-01)
    w = aqi.standard_warnings("HJ633-2012", pd.date_range("2005-03-01", periods=2))
    assert len(w) == 1 and "before any HJ 633 was in force" in w[0] and "2016-01-01" in w[0]
    w = aqi.standard_warnings("HJ633-2026", ["2025-12-01"])
    assert len(w) == 1 and "in force only from 2026-03-01" in w[0]
    assert aqi.standard_warnings("HJ633-2026", ["2026-07-20"]) == []
    assert aqi.standard_warnings("HJ633-2012", ["2020-07-20"]) == []
    assert aqi.standard_warnings(None, ["2025-12-01", "2026-07-20"]) == []
    assert aqi.standard_warnings("EPA-2024", ["2005-03-01"]) == []


# ----------------------------------------------------------------------------- config
def _config(tmp_path, start: str, hours: int, **time_extra) -> RunConfig:
    products = time_extra.pop("products", {})
    return RunConfig.model_validate({
        "name": "localtime", "base_dir": str(tmp_path),
        "projection": {"truelat1": 25.0, "truelat2": 40.0, "stand_lon": 120.5, "ref_lat": 30.3},
        "vertical": {"nz": 2},
        "domains": [{"name": "d01", "dx_m": 3000.0, "nx": 6, "ny": 5, "centre_lon": 120.5,
                     "centre_lat": 30.3}],
        "time": {"start": start, "lead_hours": hours, "sync_step_s": 300,
                 "windows": [{"until_hours": hours, "every_hours": 1}], **time_extra},
        "species": SPECIES, "products": products,
        "inputs": {"met": {"paths": {"d01": "x"}}},
        "outputs": {"compression_level": 1}})


def test_config_keys_validated(tmp_path):
    cfg = _config(tmp_path, "2026-07-20T00:00:00Z", 24)
    assert cfg.time.local_utc_offset_h == 8.0 and cfg.time.timezone is None
    assert cfg.time.local_time == LocalTime(8.0)
    assert cfg.products.aqi_standard == "hj633-2026" and cfg.products.standard == "HJ633-2026"
    cfg = _config(tmp_path, "2026-07-20T00:00:00Z", 24, timezone="Europe/Paris",
                  products={"aqi_standard": "epa-2024"})
    assert cfg.time.local_time.label == "Europe/Paris" and cfg.products.standard == "EPA-2024"
    for bad, key in (({"local_utc_offset_h": 15.0}, "local_utc_offset_h"),
                     ({"timezone": "Mars/Olympus"}, "timezone"),
                     ({"products": {"aqi_standard": "aqhi"}}, "aqi_standard")):
        with pytest.raises(ValueError, match=key):
            _config(tmp_path, "2026-07-20T00:00:00Z", 24, **bad)
    p = tmp_path / "c.yaml"
    p.write_text(_yaml_of("Mars/Olympus"))
    with pytest.raises(ConfigError, match=r"time\.timezone.*unknown time zone 'Mars/Olympus'"):
        load_config(p)


def _yaml_of(zone: str) -> str:
    return f"""
projection: {{truelat1: 25.0, truelat2: 40.0, stand_lon: 120.5, ref_lat: 30.3}}
vertical: {{nz: 2}}
domains: [{{name: d01, dx_m: 3000.0, nx: 6, ny: 5, centre_lon: 120.5, centre_lat: 30.3}}]
time: {{start: 2026-07-20T00:00:00Z, lead_hours: 24, timezone: {zone},
        windows: [{{until_hours: 24, every_hours: 1}}]}}
species: [O3]
inputs: {{met: {{paths: {{d01: x}}}}}}
"""


# ----------------------------------------------------------------------------- products
def _write_run(cfg, run_dir, start: pd.Timestamp, hours: int, value):
    """conc_d01.nc with hourly values ``value(name, k)`` (k = 1..hours, the valid hour)."""
    grid = grids_from_config(cfg)["d01"]
    w = FieldSeriesWriter(run_dir, "conc_d01", grid, SPECIES, [0, 1], np.datetime64(start),
                          units={s: ("ppb" if s in GASES else "ug m-3") for s in SPECIES})
    for k in range(1, hours + 1):
        w.add(np.datetime64(start + pd.Timedelta(hours=k)),
              {s: np.full((2, grid.ny, grid.nx), value(s, k)) for s in SPECIES})
    w.finalize()


def _ramp(name, k):
    """PPM25 = hours since the start of the hour (k - 1), the other PM parts 0: the daily mean
    PM2.5 tells which UTC hours a local day holds."""
    if name == "PPM25":
        return float(k - 1)
    return {"NO2": 20.0, "O3": 40.0, "SO2": 5.0, "CO": 400.0, "PPM10": 10.0}.get(name, 0.0)


@pytest.mark.parametrize("offset", [0.0, 8.0])
def test_daily_day_boundaries_follow_the_offset(tmp_path, offset):
    start = pd.Timestamp("2026-07-20T00:00")
    cfg = _config(tmp_path, start.isoformat() + "Z", 72, local_utc_offset_h=offset)
    _write_run(cfg, tmp_path / "run", start, 72, _ramp)
    make_products(cfg, tmp_path / "run", tmp_path / "out", maps=False, stations=False)
    ds = xr.open_dataset(tmp_path / "out" / "daily_d01.nc")
    pm = ds["PM25_24h"].isel(y=0, x=0).to_series()
    by_date = dict(zip(ds["date"].values, pm.values))
    # local day 2026-07-21 holds the hour-beginning UTC hours 24-off ... 47-off
    first = 24 - offset
    assert by_date["2026-07-21"] == pytest.approx(first + 11.5, abs=1e-4)
    # the day's UTC start moves by the offset, and the file says which local time it used
    day = list(ds["date"].values).index("2026-07-21")
    assert pd.Timestamp(ds["time"].values[day]) == pd.Timestamp("2026-07-21") - \
        pd.Timedelta(hours=offset)
    assert ds.attrs["local_time"] == f"UTC{offset:+g}"
    assert ds["lead_day"].values[0] == 1
    if offset == 8.0:   # 08-23 local on the first day: 16 hours, too few for a daily mean
        assert np.isnan(by_date["2026-07-20"])
    else:
        assert by_date["2026-07-20"] == pytest.approx(11.5, abs=1e-4)


def test_daylight_saving_zone_days(tmp_path):
    """Europe/Paris leaves summer time on 2026-10-25 03:00 CEST: that local day has 25 hours;
    the repeated wall-clock hour 02:00 holds the mean of its two values."""
    lt = LocalTime(timezone="Europe/Paris")
    utc = pd.date_range("2026-10-24T22:00", "2026-10-25T22:00", freq="h")   # 25 hours
    local = lt.to_local(utc)
    assert local[0] == pd.Timestamp("2026-10-25T00:00") and local[-1] == pd.Timestamp(
        "2026-10-25T23:00")
    assert local.has_duplicates
    days, d = surface.to_daily(local, np.arange(25.0))
    assert list(days) == [pd.Timestamp("2026-10-25")]
    assert d[0, 2] == pytest.approx((2 + 3) / 2)          # 02:00 CEST and 02:00 CET
    assert np.isfinite(d[0]).all() and d[0, 23] == 24.0
    assert lt.day_start_utc(["2026-10-25", "2026-10-26"]).tolist() == [
        pd.Timestamp("2026-10-24T22:00"), pd.Timestamp("2026-10-25T23:00")]


def _cycle(tmp_path, start, standard, hours=48):
    cfg = _config(tmp_path, start.isoformat() + "Z", hours,
                  products={"aqi_standard": standard})
    _write_run(cfg, tmp_path / "run", start, hours, _ramp)
    return cfg


@pytest.mark.parametrize("standard, internal, family", [
    ("hj633-2026", "HJ633-2026", "HJ"), ("hj633-2012", "HJ633-2012", "HJ"),
    ("epa-2024", "EPA-2024", "EPA")])
def test_config_standard_reaches_every_product(tmp_path, standard, internal, family):
    start = pd.Timestamp("2026-07-19T16:00")          # local midnight (UTC+8)
    cfg = _cycle(tmp_path, start, standard)
    make_products(cfg, tmp_path / "run", tmp_path / "out", maps=False, stations=False)
    label = aqi.standard_label(internal)
    for stem in ("surface_hourly", "leadwindow", "daily"):
        ds = xr.open_dataset(tmp_path / "out" / f"{stem}_d01.nc")
        assert ds.attrs["aqi_standard"] == label, stem
        cat = ds["AQI_category" if stem != "leadwindow" else "AQI_max_category"]
        first = cat.attrs["flag_meanings"].split()[1]         # the name of category 1
        assert first == ("good" if family == "EPA" else "excellent"), stem
    daily = xr.open_dataset(tmp_path / "out" / "daily_d01.nc")
    assert set(daily["aqi_standard"].values) == {internal}
    pm = float(daily["PM25_24h"].isel(day=0, y=0, x=0))
    assert pm == pytest.approx(11.5, abs=1e-4)
    iaqi_pm = float(daily["IAQI_PM25_24h"].isel(day=0, y=0, x=0))
    assert iaqi_pm == aqi.iaqi("PM2.5", pm, "24h", internal)
    if family == "EPA":   # the EPA daily indicators: daily max 1-h NO2/SO2, max 8-h CO
        assert {"NO2_max_1h", "SO2_max_1h", "CO_max_8h"} <= set(daily.data_vars)
        no2 = float(daily["NO2_max_1h"].isel(day=0, y=0, x=0))       # 20 ppb in ug m-3
        assert epa.to_epa_units("NO2", no2) == pytest.approx(20.0, rel=1e-6)
        # 0-53 ppb -> 0-50: 20 * 50 / 53 = 18.9 -> 19
        assert float(daily["IAQI_NO2_1h"].isel(day=0, y=0, x=0)) == 19
    summary = json.loads((tmp_path / "out" / "products_summary.json").read_text())
    assert summary["aqi_standard"] == label and summary["local_time"] == "UTC+8"
    # 2026-07: HJ 633-2012 is no longer in force -> a warning; the others none
    assert bool(summary["warnings"]) == (internal == "HJ633-2012")


def test_city_table_names_the_standard(tmp_path):
    start = pd.Timestamp("2026-07-19T16:00")
    cfg = _cycle(tmp_path, start, "epa-2024")
    grid = grids_from_config(cfg)["d01"]
    lon, lat = grid.lonlat
    ring = [[float(lon.min()) - 0.1, float(lat.min()) - 0.1],
            [float(lon.max()) + 0.1, float(lat.min()) - 0.1],
            [float(lon.max()) + 0.1, float(lat.max()) + 0.1],
            [float(lon.min()) - 0.1, float(lat.max()) + 0.1]]
    (tmp_path / "city.geojson").write_text(json.dumps(
        {"type": "Polygon", "coordinates": [ring + ring[:1]]}))
    cfg = cfg.model_copy(update={"regions": [RegionConfig(name="City",
                                                           geojson="city.geojson")]})
    make_products(cfg, tmp_path / "run", tmp_path / "out", maps=False, stations=False)
    tab = pd.read_csv(tmp_path / "out" / "aqi_daily_city.csv")
    assert set(tab["standard"]) == {"EPA-2024"}
    assert {"NO2_1h_max", "SO2_1h_max", "CO_8h_max", "IAQI_NO2"} <= set(tab.columns)
    day1 = tab.iloc[0]
    assert day1["IAQI_PM2.5"] == aqi.iaqi("PM2.5", day1["PM2.5"], "24h", "EPA-2024")
    assert day1["category_name"] in aqi.CATEGORY_NAMES["EPA"]


def test_warnings_before_any_hj633(tmp_path, caplog):
    """The salem WRF sample's dates (2005): any HJ 633 choice warns, in the log, the summary
    and the files' attributes."""
    start = pd.Timestamp("2005-08-28T16:00")
    cfg = _cycle(tmp_path, start, "hj633-2026", hours=30)
    with caplog.at_level(logging.WARNING, logger="aqforecast.products.pipeline"):
        make_products(cfg, tmp_path / "run", tmp_path / "out", maps=False, stations=False)
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("before any HJ 633 was in force" in m for m in msgs), msgs
    assert any("in force only from 2026-03-01" in m for m in msgs), msgs
    summary = json.loads((tmp_path / "out" / "products_summary.json").read_text())
    assert len(summary["warnings"]) == 2
    ds = xr.open_dataset(tmp_path / "out" / "daily_d01.nc")
    assert "before any HJ 633 was in force" in ds.attrs["aqi_standard_warning"]


# ----------------------------------------------------------------------------- emissions
@pytest.mark.parametrize("offset", [0.0, 8.0, -5.0])
def test_emission_diurnal_peak_moves_with_the_offset(offset):
    hour = np.full(24, 0.5)
    hour[13] = 5.0                                    # one peak at 13-14 local time
    prof = TemporalProfiles({"agriculture": SectorProfile(hour=hour)},
                            local_time=LocalTime(offset))
    utc = pd.date_range("2026-07-20", periods=24, freq="h")
    f = [prof.fraction_of_year("agriculture", t) for t in utc]
    assert int(np.argmax(f)) == int((13 - offset) % 24)


def test_emission_profiles_take_the_config_local_time(repo):
    """EmissionModel.from_config builds its temporal profiles on cfg.time's local clock."""
    from aqforecast.emissions import EmissionModel

    cfg = load_config(repo / "config" / "config.yaml")
    cfg = cfg.model_copy(update={"time": cfg.time.model_copy(
        update={"local_utc_offset_h": -3.0})})
    grid = grids_from_config(cfg)[cfg.domains[-1].name]
    em = EmissionModel.from_config(cfg, grid)
    assert em.temporal.local_time(np.datetime64("2026-07-20T02:00")) == \
        pd.Timestamp("2026-07-19T23:00").to_pydatetime()
    agri = [em.temporal.fraction_of_year("agriculture", t)
            for t in pd.date_range("2026-07-20", periods=24, freq="h")]
    default = TemporalProfiles()                       # UTC+8
    agri8 = [default.fraction_of_year("agriculture", t)
             for t in pd.date_range("2026-07-20", periods=24, freq="h")]
    assert (int(np.argmax(agri)) - int(np.argmax(agri8))) % 24 == 11   # 8 - (-3) hours later
