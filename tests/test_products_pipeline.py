"""Products pipeline on synthetic forecast output: CF files, lead windows, AQI tables, maps,
unit conversion, verification (make_products end to end on 2 small nested domains, 3 days)."""

from __future__ import annotations

import json
import socket
import urllib.request

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aqforecast.config import RunConfig
from aqforecast.grid import grids_from_config
from aqforecast.io.output import FieldSeriesWriter
from aqforecast.products import aqi, surface
from aqforecast.products.pipeline import make_products

START = pd.Timestamp("2026-07-19T16:00")     # 00:00 Beijing time on 2026-07-20
LEAD = 72
SPECIES = ["NO", "NO2", "O3", "SO2", "CO", "SO4", "NO3", "NH4", "PPM25", "PPM10"]
GASES = {"NO", "NO2", "O3", "SO2", "CO"}
WINDOWS = [{"until_hours": 12, "every_hours": 3},
           {"until_hours": 24, "every_hours": 6, "aggregation": "instant"},
           {"until_hours": 48, "every_hours": 12, "aggregation": "max"},
           {"until_hours": 72, "every_hours": 24}]


def _config(tmp_path) -> RunConfig:
    return RunConfig.model_validate({
        "name": "synthetic", "base_dir": str(tmp_path),
        "projection": {"truelat1": 25.0, "truelat2": 40.0, "stand_lon": 120.5, "ref_lat": 30.3},
        "vertical": {"nz": 3},
        "domains": [{"name": "d01", "dx_m": 3000.0, "nx": 12, "ny": 12, "centre_lon": 120.5,
                     "centre_lat": 30.3},
                    {"name": "d02", "parent": "d01", "dx_m": 1000.0, "nx": 9, "ny": 9,
                     "i_parent_start": 4, "j_parent_start": 4}],
        "time": {"start": START.isoformat() + "Z", "lead_hours": LEAD, "sync_step_s": 300,
                 "windows": WINDOWS},
        "species": SPECIES,
        "regions": [{"name": "Inner", "geojson": "inner.geojson"},
                    {"name": "Outer", "geojson": "outer.geojson"}],
        "inputs": {"met": {"paths": {"d01": "x", "d02": "x"}},
                   "observations": {"station_coords": "stations.csv"}},
        "outputs": {"compression_level": 1}})


def _value(name, h, jj, ii):
    """Synthetic surface value (ppb gases, ug m-3 aerosols) at lead h, cell (jj, ii)."""
    diurnal = np.sin(2 * np.pi * (h % 24) / 24.0)
    base = {"NO": 5.0, "NO2": 20.0, "O3": 50.0, "SO2": 4.0, "CO": 400.0, "SO4": 10.0,
            "NO3": 8.0, "NH4": 5.0, "PPM25": 15.0, "PPM10": 20.0}[name]
    amp = {"O3": 30.0}.get(name, 0.2 * base)
    return base + amp * diurnal + 0.5 * jj + 0.3 * ii + 0.02 * h


def _write_run(cfg, run_dir):
    grids = grids_from_config(cfg)
    for d, g in grids.items():
        w = FieldSeriesWriter(run_dir, f"conc_{d}", g, SPECIES, [0, 1], np.datetime64(START),
                              units={s: ("ppb" if s in GASES else "ug m-3") for s in SPECIES},
                              attrs={"start_type": "cold"})
        jj, ii = np.meshgrid(np.arange(g.ny), np.arange(g.nx), indexing="ij")
        for h in range(1, LEAD + 1):
            fields = {}
            for s in SPECIES:
                sfc = _value(s, h, jj, ii)
                fields[s] = np.stack([sfc, 0.5 * sfc])
            w.add(np.datetime64(START + pd.Timedelta(hours=h)), fields)
            if h % 24 == 0:
                w.flush()
        w.finalize()
    return grids


def _geojson(path, lon0, lon1, lat0, lat1):
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    path.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("products")
    cfg = _config(tmp)
    run = tmp / "run"
    grids = _write_run(cfg, run)
    lon2, lat2 = grids["d02"].lonlat
    c_lon, c_lat = float(lon2.mean()), float(lat2.mean())
    _geojson(tmp / "inner.geojson", c_lon - 0.02, c_lon + 0.02, c_lat - 0.02, c_lat + 0.02)
    lon1, lat1 = grids["d01"].lonlat
    _geojson(tmp / "outer.geojson", float(lon1.min()) - 0.1, float(lon1.min()) + 0.06,
             float(lat1.min()) + 0.02, float(lat1.min()) + 0.1)
    (tmp / "stations.csv").write_text(
        "监测点编码,监测点名称,城市,经度,纬度,对照点\n"
        f"S1,inner,X,{c_lon:.5f},{c_lat:.5f},N\n"
        f"S2,parent only,X,{float(lon1[1, 1]):.5f},{float(lat1[1, 1]):.5f},N\n"
        "S3,far away,X,100.0,20.0,N\n", encoding="utf-8")
    # observations at S1: the forecast plus 5 ug m-3 of PM2.5 and -10 of O3, local time
    sfc = surface.read_surface(run / "conc_d02.nc")
    j, i = np.unravel_index(np.argmin((sfc.lon - c_lon) ** 2 + (sfc.lat - c_lat) ** 2),
                            sfc.lon.shape)
    obs = pd.DataFrame({"station": "S1", "time": sfc.local_hours(8.0),
                        "PM2.5": sfc.conc["PM2.5"][:, j, i] + 5.0,
                        "O3": sfc.conc["O3"][:, j, i] - 10.0})
    out = tmp / "out"
    paths = make_products(cfg, run, out, observations=obs)
    return {"cfg": cfg, "run": run, "out": out, "paths": paths, "grids": grids,
            "cell_s1": (j, i), "obs": obs}


def test_files_and_summary(products):
    out = products["out"]
    names = {p.relative_to(out).as_posix() for p in products["paths"]}
    for d in ("d01", "d02"):
        for stem in ("surface_hourly", "leadwindow", "daily"):
            assert f"{stem}_{d}.nc" in names
    for f in ("aqi_daily_city.csv", "aqi_daily_station.csv", "verification/skill.csv",
              "products_summary.json"):
        assert f in names
    assert all(p.exists() for p in products["paths"])
    assert not list(out.rglob(".*.tmp"))
    summary = json.loads((out / "products_summary.json").read_text())
    assert summary["domains"]["d01"]["hours"] == LEAD
    assert summary["counts"]["png"] == 3 * 3 * 2   # 3 days x 3 maps x 2 domains
    assert summary["stations"]["n"] == 2 and summary["cities"]["n"] == 2


def test_cf_attributes(products):
    import cf_xarray  # noqa: F401

    ds = xr.load_dataset(products["out"] / "surface_hourly_d01.nc")
    assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["start_type"] == "cold"
    assert ds.cf.axes["T"] == ["time"] and ds.cf.axes["X"] == ["x"]
    assert ds.cf.grid_mapping_names == {"lambert_conformal_conic": ["crs"]}
    assert ds["O3"].attrs["units"] == "ug m-3"
    assert ds["O3"].attrs["standard_name"] == "mass_concentration_of_ozone_in_air"
    assert ds["CO"].attrs["units"] == "mg m-3"
    assert ds["PM25"].attrs["standard_name"].startswith("mass_concentration_of_pm2p5")
    assert ds["O3"].attrs["grid_mapping"] == "crs"
    assert set(ds["O3"].encoding["coordinates"].split()) >= {"lon", "lat"}
    assert ds["O3"].dims == ("time", "y", "x") and ds.sizes["time"] == LEAD
    cat = ds["AQI_category"]
    assert list(cat.attrs["flag_values"]) == list(range(7))
    assert len(cat.attrs["flag_meanings"].split()) == 7
    assert ds["forecast_reference_time"].values == np.datetime64(START)
    lw = xr.load_dataset(products["out"] / "leadwindow_d02.nc")
    assert lw["time"].attrs["bounds"] == "time_bnds"
    assert lw["time_bnds"].dims == ("lead_window", "nv")
    assert lw["O3_max_8h"].attrs["cell_methods"].endswith("time: maximum")


def test_unit_conversion_reference_state():
    # SCIENCE.md 5.7: ug m-3 per ppb at 298.15 K, 1013.25 hPa
    for sp, factor in (("O3", 1.962), ("NO2", 1.881), ("SO2", 2.619), ("CO", 1.145)):
        assert surface.to_reporting_units(1.0, sp, "ppb") == pytest.approx(factor, abs=6e-4)
    assert surface.to_reporting_units(1.0, "O3", "ppm") == pytest.approx(1962.0, abs=0.6)
    assert surface.to_reporting_units(3.0, "SO4", "ug m-3") == 3.0
    with pytest.raises(ValueError, match="units"):
        surface.to_reporting_units(1.0, "O3", "furlongs")


def test_surface_values(products):
    ds = xr.load_dataset(products["out"] / "surface_hourly_d01.nc")
    h, j, i = 5, 2, 3
    t = ds.isel(time=h - 1, y=j, x=i)
    assert float(t["O3"]) == pytest.approx(_value("O3", h, j, i) * 47.997 / 24.4654, rel=1e-4)
    assert float(t["CO"]) == pytest.approx(_value("CO", h, j, i) * 1.1449e-3, rel=1e-3)
    pm25 = sum(_value(s, h, j, i) for s in ("PPM25", "SO4", "NO3", "NH4"))
    assert float(t["PM25"]) == pytest.approx(pm25, rel=1e-5)
    assert float(t["PM10"]) == pytest.approx(pm25 + _value("PPM10", h, j, i), rel=1e-5)
    # real-time IAQI of 2026: PM2.5 hourly on the 24-h table; AQI = max IAQI
    assert float(t["IAQI_PM25"]) == aqi.iaqi("PM2.5", float(t["PM25"]), "24h", "HJ633-2026")
    assert float(t["IAQI_O3"]) == aqi.iaqi("O3", float(t["O3"]), "1h", "HJ633-2026")
    iaqis = [float(t[v]) for v in t.data_vars if v.startswith("IAQI_")]
    assert float(t["AQI"]) == max(iaqis)
    assert str(t["aqi_standard"].values) == "HJ633-2026"


def test_lead_windows_hand_computed(products):
    lw = xr.load_dataset(products["out"] / "leadwindow_d01.nc")
    hr = xr.load_dataset(products["out"] / "surface_hourly_d01.nc")
    a = lw["lead_hours_start"].values.tolist()
    b = lw["lead_hours"].values.tolist()
    assert a == [0, 3, 6, 9, 12, 18, 24, 36, 48]
    assert b == [3, 6, 9, 12, 18, 24, 36, 48, 72]
    assert list(lw["aggregation"].values) == ["mean"] * 4 + ["instant"] * 2 + ["max"] * 2 + \
        ["mean"]
    assert lw["window_end"].values[0] == np.datetime64(START + pd.Timedelta(hours=3))
    o3 = hr["O3"].values.astype(float)[:, 4, 5]        # leads 1..72 at one cell
    got = lw["O3"].values[:, 4, 5]
    np.testing.assert_allclose(got[0], o3[0:3].mean(), rtol=1e-6)        # (0, 3]
    np.testing.assert_allclose(got[3], o3[9:12].mean(), rtol=1e-6)       # (9, 12]
    np.testing.assert_allclose(got[4], o3[17], rtol=1e-6)                # instant at 18
    np.testing.assert_allclose(got[6], o3[24:36].max(), rtol=1e-6)       # max over (24, 36]
    np.testing.assert_allclose(got[8], o3[48:72].mean(), rtol=1e-6)      # (48, 72]
    # 8-h max inside (48, 72]: running means ending at leads 56..72
    r8 = [o3[e - 8:e].mean() for e in range(56, 73)]
    np.testing.assert_allclose(lw["O3_max_8h"].values[8, 4, 5], max(r8), rtol=1e-6)
    assert np.isnan(lw["O3_max_8h"].values[0]).all()                     # 3-h window
    np.testing.assert_allclose(lw["AQI_max"].values[8, 4, 5],
                               hr["AQI"].values[48:72, 4, 5].max())


def _daily_means(products, station_cell, dom="d02"):
    hr = xr.load_dataset(products["out"] / f"surface_hourly_{dom}.nc")
    j, i = station_cell
    return {v: hr[v].values.astype(float)[:, j, i].reshape(3, 24) for v in
            ("PM25", "PM10", "O3", "NO2", "SO2", "CO")}


def test_station_table_matches_iaqi(products):
    tab = pd.read_csv(products["out"] / "aqi_daily_station.csv", dtype={"station": str})
    assert set(tab["station"]) == {"S1", "S2"}
    assert tab.groupby("station")["domain"].first().to_dict() == {"S1": "d02", "S2": "d01"}
    s1 = tab[tab.station == "S1"].sort_values("date")
    assert s1["lead_day"].tolist() == [1, 2, 3]
    assert s1["date"].tolist() == ["2026-07-20", "2026-07-21", "2026-07-22"]
    m = _daily_means(products, products["cell_s1"])
    for k, (_, row) in enumerate(s1.iterrows()):
        pm25 = m["PM25"][k].mean()
        assert row["PM2.5"] == pytest.approx(pm25, rel=1e-5)
        o3 = m["O3"][k]
        mda8 = max(o3[s:s + 8].mean() for s in range(17))
        assert row.O3_8h_max == pytest.approx(mda8, rel=1e-5)
        exp = {"PM2.5": aqi.iaqi("PM2.5", pm25, "24h", "HJ633-2026"),
               "PM10": aqi.iaqi("PM10", m["PM10"][k].mean(), "24h", "HJ633-2026"),
               "O3_8h": aqi.iaqi("O3", mda8, "8h", "HJ633-2026"),
               "NO2": aqi.iaqi("NO2", m["NO2"][k].mean(), "24h", "HJ633-2026"),
               "SO2": aqi.iaqi("SO2", m["SO2"][k].mean(), "24h", "HJ633-2026"),
               "CO": aqi.iaqi("CO", m["CO"][k].mean(), "24h", "HJ633-2026")}
        for p, v in exp.items():
            assert row[f"IAQI_{p}"] == v
        assert row.AQI == max(exp.values())
        assert row.category == aqi.category(row.AQI)
        assert row.standard == "HJ633-2026" and row.n_hours == 24


def test_city_table_and_gridded_daily_consistency(products):
    tab = pd.read_csv(products["out"] / "aqi_daily_city.csv")
    assert set(tab["city"]) == {"Inner", "Outer"}
    assert tab.groupby("city")["domain"].first().to_dict() == {"Inner": "d02", "Outer": "d01"}
    daily = xr.load_dataset(products["out"] / "daily_d01.nc")
    assert daily.sizes["day"] == 3 and daily["lead_day"].values.tolist() == [1, 2, 3]
    # gridded daily AQI == aqi.daily_aqi on the same cell's hourly series
    hr = xr.load_dataset(products["out"] / "surface_hourly_d01.nc")
    j, i = 7, 2
    loc = pd.DatetimeIndex(hr["time"].values) - pd.Timedelta(hours=1) + pd.Timedelta(hours=8)
    frame = pd.DataFrame({p: hr[v].values.astype(float)[:, j, i] for p, v in
                          surface.POLLUTANT_VARS.items()}, index=loc)
    ref = aqi.daily_aqi(frame)
    np.testing.assert_array_equal(daily["AQI"].values[:, j, i], ref["aqi"].to_numpy())
    np.testing.assert_allclose(daily["O3_MDA8"].values[:, j, i], ref["O3_8h"], rtol=1e-5)


def test_gridded_realtime_matches_station_reference():
    rng = np.random.default_rng(3)
    t = pd.date_range("2026-02-27", periods=96, freq="h")    # straddles the 2026 switch
    conc = {"PM2.5": rng.uniform(5, 300, (96, 2)), "PM10": rng.uniform(10, 500, (96, 2)),
            "O3": rng.uniform(0, 900, (96, 2)), "NO2": rng.uniform(0, 300, (96, 2)),
            "SO2": rng.uniform(0, 1200, (96, 2)), "CO": rng.uniform(0, 20, (96, 2))}
    conc["PM2.5"][10:14, 0] = np.nan
    stds = surface.hourly_standards(t, None)
    res = surface.gridded_realtime_aqi(conc, stds)
    for c in range(2):
        ref = aqi.realtime_aqi(pd.DataFrame({p: x[:, c] for p, x in conc.items()}, index=t))
        np.testing.assert_array_equal(res["aqi"][:, c], ref["aqi"].to_numpy())
        np.testing.assert_array_equal(res["iaqi_SO2"][:, c], ref["iaqi_SO2"].to_numpy())
        np.testing.assert_array_equal(np.nan_to_num(res["category"][:, c]),
                                      np.nan_to_num(ref["category"].to_numpy()))
    days, daily = surface.daily_indicators(t, conc)
    dres = surface.gridded_daily_aqi(days, daily)
    for c in range(2):
        ref = aqi.daily_aqi(pd.DataFrame({p: x[:, c] for p, x in conc.items()}, index=t))
        np.testing.assert_array_equal(dres["aqi"][:, c], ref["aqi"].to_numpy())
        assert list(dres["standard"]) == list(ref["standard"])


def test_verification_table(products):
    sk = pd.read_csv(products["out"] / "verification" / "skill.csv", dtype={"station": str})
    assert set(sk["pollutant"]) == {"PM2.5", "O3"}
    assert set(sk["station"]) == {"S1"}
    assert sorted(sk.loc[sk.pollutant == "PM2.5", "lead_day"]) == [1, 2, 3]
    assert sk.loc[sk.pollutant == "PM2.5", "mb"].to_numpy() == pytest.approx(-5.0, abs=1e-3)
    assert sk.loc[sk.pollutant == "O3", "mb"].to_numpy() == pytest.approx(10.0, abs=1e-3)
    assert (sk["n"] == 24).all()


def test_maps_render_offline_and_fast(tmp_path, monkeypatch):
    pytest.importorskip("cartopy")

    def refuse(*args, **kwargs):
        raise RuntimeError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    cfg = _config(tmp_path)
    run = tmp_path / "run"
    _write_run(cfg, run)
    for n in ("inner", "outer"):
        _geojson(tmp_path / f"{n}.geojson", 120.4, 120.5, 30.25, 30.35)
    (tmp_path / "stations.csv").write_text("监测点编码,监测点名称,城市,经度,纬度,对照点\n"
                                           "S1,a,X,120.5,30.3,N\n", encoding="utf-8")
    paths = make_products(cfg, run, tmp_path / "out", domains=["d01"], max_map_days=2)
    pngs = [p for p in paths if p.suffix == ".png"]
    assert len(pngs) == 6
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000
    summary = json.loads((tmp_path / "out" / "products_summary.json").read_text())
    assert summary["verification"]["skipped"] == "no observations given"
    assert not (tmp_path / "out" / "verification").exists()


def test_missing_domain_output_is_an_error(tmp_path):
    from aqforecast.io import InputFileError

    cfg = _config(tmp_path)
    with pytest.raises(InputFileError, match="conc file"):
        make_products(cfg, tmp_path, tmp_path / "out", domains=["d01"], maps=False)


def test_lead_day_blocks(products, tmp_path):
    """day_boundary="lead": days are 24-h lead blocks; here the start is 16 UTC, so the
    blocks are the Beijing natural days shifted by 0 h and the values equal the local ones."""
    out = tmp_path / "lead"
    make_products(products["cfg"], products["run"], out, domains=["d01"], maps=False,
                  day_boundary="lead")
    lead = pd.read_csv(out / "aqi_daily_city.csv")
    lead = lead[lead.city == "Outer"].reset_index(drop=True)
    local = pd.read_csv(products["out"] / "aqi_daily_city.csv")
    local = local[local.city == "Outer"].reset_index(drop=True)
    assert lead["lead_day"].tolist() == [1, 2, 3]
    assert lead["date"].tolist() == ["2026-07-19", "2026-07-20", "2026-07-21"]
    np.testing.assert_allclose(lead["PM2.5"], local["PM2.5"], rtol=1e-6)
    with pytest.raises(ValueError, match="day_boundary"):
        make_products(products["cfg"], products["run"], out, maps=False, day_boundary="utc")
