"""The regional OSSE case (benchmarks/regional_case.py) and the sample met generator's land
for domains outside its embedded coastline."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rc():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        mod = importlib.import_module("regional_case")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    if not (mod.shared_data() / mod.SNAPSHOT).exists():
        pytest.skip("shared data (CNEMC national snapshot) not found")
    return mod


@pytest.fixture(scope="module")
def met(rc):
    return rc._module(REPO / "data_sample" / "make_sample_met.py", "make_sample_met")


def test_land_outside_the_sample_box_from_natural_earth(met):
    lon = np.array([116.40, 123.0, 121.47, 126.98, 110.0, 118.5])
    lat = np.array([39.90, 35.0, 31.23, 37.57, 30.0, 38.5])
    # Beijing, Yellow Sea, Shanghai (on the coast), Seoul, Hubei, Bohai
    geo = met.geography(lon, lat)
    land = met._at("land", lon, lat, geo)
    assert land.tolist() == [1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    assert geo is not met.geography()                   # not the embedded sample raster


def test_sample_domains_keep_the_embedded_coastline(met):
    lon, lat = np.array([120.0, 121.5]), np.array([29.7, 30.9])   # inside the sample's box
    assert met._inside_reference(lon, lat)
    assert met.geography(lon, lat) is met.geography()


def test_national_stations(rc):
    st = rc.national_stations()
    assert 1400 <= len(st) <= 1448 and st.code.is_unique
    assert st.lon.between(73, 136).all() and st.lat.between(18, 54).all()


def test_emission_per_station_is_yrd_per_person(rc):
    mse = rc._module(REPO / "data_sample" / "make_sample_emissions.py", "make_sample_emissions")
    per = rc.emission_per_station(1448)
    # YRD 2017 NOx 3235 Gg over ~224 million people, ~0.96 million people per station
    people = 1390.08e6 / 1448
    assert per["NOx"] == pytest.approx(3235e3 * people / (mse.YRD_POPULATION * 1e4), rel=1e-12)
    assert 13000 < per["NOx"] < 15000                                 # Mg / yr
    assert set(per) == set(mse.POLS)


def test_inventory_conserves_the_stations_totals_on_land(rc, met, tmp_path):
    import pandas as pd
    import xarray as xr

    from aqforecast.emissions import read_gridded_inventory

    box = (115.0, 121.0, 37.0, 41.0)
    st = pd.DataFrame({"lon": [116.4, 117.2, 118.1], "lat": [39.9, 39.1, 39.6]})
    per = rc.emission_per_station(1448)
    ne = met.natural_earth_land(np.array(box[:2]), np.array(box[2:]))
    totals = rc.write_inventory(tmp_path / "inv.nc", st, box, per, ne)
    for p, v in totals.items():
        assert v == pytest.approx(3 * per[p], rel=1e-12)
    ds = xr.load_dataset(tmp_path / "inv.nc")
    assert ds["NOx"].sum() == pytest.approx(3 * per["NOx"], rel=1e-9)   # as written
    assert read_gridded_inventory(tmp_path / "inv.nc").sectors      # the reader takes it
    nox = ds["NOx"].sum("sector")
    assert float(nox.sel(lon=119.55, lat=38.85, method="nearest")) == 0.0   # the Bohai
    assert float(nox.sel(lon=116.45, lat=39.95, method="nearest")) > 0.0    # Beijing
    # residential peaks at a station (e^(-d / 8 km) around each)
    res = ds["NOx"].sel(sector="residential").values
    j, i = np.unravel_index(np.argmax(res), res.shape)
    assert min(np.hypot(ds.lon.values[i] - st.lon, ds.lat.values[j] - st.lat)) < 0.1
