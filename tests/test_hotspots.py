"""Hot-spot screening: 3-km block aggregation, known maxima, top contributors, writers."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aqforecast.grid import LambertGrid
from aqforecast.products.hotspots import (aggregate_blocks, block_corners, block_factor,
                                          concentration_hotspots, emission_hotspots,
                                          screen_hotspots, write_hotspots_csv,
                                          write_hotspots_geojson)


def test_block_factor_and_aggregation_conserves_block_means():
    assert block_factor(1000.0) == 3 and block_factor(3000.0) == 1 and block_factor(500.0) == 6
    assert block_factor(9000.0) == 1
    rng = np.random.default_rng(0)
    field = rng.uniform(size=(2, 7, 8))                  # ragged: 3 x 3 blocks of 3 x 3 cells
    blocks = aggregate_blocks(field, 3)
    assert blocks.shape == (2, 3, 3)
    np.testing.assert_allclose(blocks[1, 0, 1], field[1, 0:3, 3:6].mean(), rtol=1e-14)
    np.testing.assert_allclose(blocks[0, 2, 2], field[0, 6:7, 6:8].mean(), rtol=1e-14)
    w = rng.uniform(1, 2, size=(7, 8))
    bw = aggregate_blocks(field, 3, w)
    np.testing.assert_allclose(bw[0, 1, 1], (field[0, 3:6, 3:6] * w[3:6, 3:6]).sum()
                               / w[3:6, 3:6].sum(), rtol=1e-14)
    # exact multiple: block sums x cells conserve the domain total
    f6 = rng.uniform(size=(6, 9))
    np.testing.assert_allclose(aggregate_blocks(f6, 3).sum() * 9, f6.sum(), rtol=1e-13)
    nan = f6.copy()
    nan[0, 0] = np.nan
    np.testing.assert_allclose(aggregate_blocks(nan, 3)[0, 0], np.nanmean(nan[:3, :3]))


def _grid():
    return LambertGrid.centred("t", nx=12, ny=9, dx=1000.0, centre_lon=120.2, centre_lat=30.3,
                               truelat1=25.0, truelat2=40.0)


def test_known_maxima_and_top_contributors(tmp_path):
    g = _grid()
    field = np.ones((9, 12))
    field[3:6, 6:9] = 10.0                      # block (1, 2): mean 10
    field[0, 0] = 30.0                          # block (0, 0): mean (30 + 8)/9
    tags = np.zeros((4, 9, 12))
    regions = np.array(["Hangzhou", "Hangzhou", "Ningbo", "boundary"])
    sectors = np.array(["industry", "traffic", "industry", "bc"])
    tags[3] = 1.0                                # background everywhere from boundary
    tags[3, 3:6, 6:9] = 1.0
    tags[0, 3:6, 6:9] = 6.0                      # hot block: 60 % Hangzhou industry
    tags[2, 3:6, 6:9] = 3.0                      # 30 % Ningbo industry
    tags[3, 0, 0] = 30.0
    lon, lat = g.lonlat
    clon, clat = g.corner_lonlat
    df = screen_hotspots(field, dx_m=g.dx, n=3, lon=lon, lat=lat, corner_lon=clon,
                         corner_lat=clat, tags=tags, tag_region=regions, tag_sector=sectors,
                         top=2)
    assert list(df["rank"]) == [1, 2, 3]
    assert (df.block_j[0], df.block_i[0]) == (1, 2) and df.value[0] == pytest.approx(10.0)
    assert (df.block_j[1], df.block_i[1]) == (0, 0)
    assert df.value[1] == pytest.approx(38.0 / 9.0)
    assert (df.j0[0], df.j1[0], df.i0[0], df.i1[0]) == (3, 6, 6, 9)
    assert df.region_1[0] == "Hangzhou" and df.region_1_pct[0] == pytest.approx(60.0)
    assert df.region_2[0] == "Ningbo" and df.region_2_pct[0] == pytest.approx(30.0)
    assert df.sector_1[0] == "industry" and df.sector_1_pct[0] == pytest.approx(90.0)
    assert df.region_1[1] == "boundary" and df.region_1_pct[1] == pytest.approx(100.0)
    assert df.lon[0] == pytest.approx(lon[3:6, 6:9].mean())
    bl, bt = block_corners(clon, clat, 3)
    assert df.lon_sw[0] == bl[1, 2] and df.lat_ne[0] == bt[2, 3]
    csv = write_hotspots_csv(df, tmp_path / "hot.csv")
    assert len(pd.read_csv(csv)) == 3
    gj = json.loads(write_hotspots_geojson(df, tmp_path / "hot.geojson").read_text())
    ring = gj["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1]
    assert gj["features"][0]["properties"]["region_1"] == "Hangzhou"
    assert ring[0] == [pytest.approx(clon[3, 6]), pytest.approx(clat[3, 6])]


def test_concentration_hotspots_from_datasets_daily_mean():
    g = _grid()
    lon, lat = g.lonlat
    time = pd.date_range("2024-06-01T16:00", periods=48, freq="h")     # two Beijing days
    pm = np.ones((48, 1, 9, 12))
    pm[24:, 0, 6:9, 0:3] = 50.0                                          # day 2 only
    conc = xr.Dataset({"SO4": (("time", "lev", "y", "x"), pm * 0.5, {"units": "ug m-3"}),
                       "PPM25": (("time", "lev", "y", "x"), pm * 0.5, {"units": "ug m-3"})},
                      coords={"time": time, "x": g.x, "y": g.y, "lon": (("y", "x"), lon),
                              "lat": (("y", "x"), lat)})
    tag = np.stack([pm * 0.5, pm * 0.5])                                 # 2 tags
    tags = xr.Dataset({"SO4": (("tag", "time", "lev", "y", "x"), tag * [[[[[1.0]]]], [[[[0.0]]]]],
                               {"units": "ug m-3"}),
                       "PPM25": (("tag", "time", "lev", "y", "x"), tag * [[[[[0.0]]]], [[[[1.0]]]]],
                                 {"units": "ug m-3"})},
                      coords={"tag": [0, 1], "tag_region": ("tag", ["A", "B"]),
                              "tag_sector": ("tag", ["power", "dust"]), "time": time})
    d2 = concentration_hotspots(conc, tags, day="2024-06-03", n=1, grid=g)
    assert (d2.block_j[0], d2.block_i[0]) == (2, 0) and d2.value[0] == pytest.approx(50.0)
    assert d2.units[0] == "ug m-3" and d2.region_1_pct[0] == pytest.approx(50.0)
    d1 = concentration_hotspots(conc, None, day="2024-06-02", n=2)
    assert d1.value.tolist() == pytest.approx([1.0, 1.0])
    allt = concentration_hotspots(conc, n=1)
    assert allt.value[0] == pytest.approx(25.5)


def test_emission_anomaly_vs_median_and_prior():
    rng = np.random.default_rng(1)
    dens = rng.uniform(0.9, 1.1, size=(9, 9))
    dens[0:3, 3:6] = 5.0                       # high everywhere, also in the prior
    dens[6:9, 6:9] = 3.0                       # not in the prior: a missing source
    prior = dens.copy()
    prior[6:9, 6:9] = 1.0
    med = emission_hotspots(dens, dx_m=1000.0, n=2)
    assert (med.block_j[0], med.block_i[0]) == (0, 1)
    assert med.anomaly[0] == pytest.approx(5.0 / med.domain_median[0])
    assert 0.9 < med.domain_median[0] < 1.1
    pri = emission_hotspots(dens, dx_m=1000.0, prior=prior, mode="prior", n=1)
    assert (pri.block_j[0], pri.block_i[0]) == (2, 2)
    assert pri.excess[0] == pytest.approx(2.0) and pri.anomaly[0] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="prior"):
        emission_hotspots(dens, dx_m=1000.0, mode="prior")
