"""Receptor tables: daily region/sector shares from a tags dataset (synthetic known cases)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aqforecast.products.receptors import (locate_stations, pollutant_field, receptor_shares,
                                           write_receptor_table)

REGIONS = ["Hangzhou", "Hangzhou", "Ningbo", "Ningbo", "initial", "boundary"]
SECTORS = ["industry", "traffic", "industry", "traffic", "ic", "bc"]


def _dataset(ntime=48, start="2024-06-01T16:00"):
    """6 tags, 4 x 5 cells, 1 level; lon 120..124, lat 29..30.5 (0.375 deg rows)."""
    ny, nx = 4, 5
    lon, lat = np.meshgrid(120.0 + np.arange(nx), 29.0 + 0.5 * np.arange(ny))
    time = pd.date_range(start, periods=ntime, freq="h")
    coords = {"tag": np.arange(6), "tag_region": ("tag", REGIONS),
              "tag_sector": ("tag", SECTORS), "time": time, "lev": [0.99],
              "lon": (("y", "x"), lon), "lat": (("y", "x"), lat)}
    dims = ("tag", "time", "lev", "y", "x")
    base = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])[:, None, None, None, None]
    shape = (6, ntime, 1, ny, nx)
    ds = xr.Dataset(coords=coords)
    ds["O3"] = (dims, np.broadcast_to(base, shape).copy(), {"units": "ppb"})
    so4 = np.zeros(shape)
    so4[0] = 5.0                                        # all sulfate from Hangzhou industry
    ds["SO4"] = (dims, so4, {"units": "ug m-3"})
    ppm = np.zeros(shape)
    ppm[3] = 5.0                                        # all primary PM from Ningbo traffic
    ds["PPM25"] = (dims, ppm, {"units": "ug m-3"})
    return ds


def test_shares_known_case_and_sum_to_100(tmp_path):
    ds = _dataset()
    stations = pd.DataFrame({"name": ["A", "far"], "lon": [121.1, 150.0], "lat": [29.6, 10.0]})
    masks = {"north": np.r_[np.zeros((2, 5)), np.ones((2, 5))]}
    df = receptor_shares(ds, stations, masks)
    assert set(df["receptor"]) == {"A", "north"}            # "far" is outside the grid
    assert set(df["pollutant"]) == {"O3", "PM25"}           # no NO2 tags
    # start 16:00 UTC = 00:00 Beijing: 48 h are exactly two local days
    assert sorted(df["date"].astype(str).unique()) == ["2024-06-02", "2024-06-03"]
    assert set(df["n_hours"]) == {24}
    tot = df.groupby(["receptor", "date", "pollutant", "by"])["share_percent"].sum()
    np.testing.assert_allclose(tot.to_numpy(), 100.0, rtol=1e-12)
    o3 = df[(df.receptor == "A") & (df.pollutant == "O3")].set_index(["by", "source"])
    np.testing.assert_allclose(o3.loc[("region", "Hangzhou"), "share_percent"], 15.0)
    np.testing.assert_allclose(o3.loc[("region", "Ningbo"), "share_percent"], 35.0)
    np.testing.assert_allclose(o3.loc[("region", "boundary"), "share_percent"], 50.0)
    np.testing.assert_allclose(o3.loc[("sector", "traffic"), "share_percent"], 30.0)
    np.testing.assert_allclose(o3.loc[("sector", "industry"), "contribution"], 1.0 + 3.0)
    pm = df[(df.receptor == "north") & (df.pollutant == "PM25") & (df.by == "sector")]
    pm = pm[pm.date.astype(str) == "2024-06-03"].set_index("source")["share_percent"]
    np.testing.assert_allclose(pm[["industry", "traffic", "bc"]], [50.0, 50.0, 0.0])
    path = write_receptor_table(df, tmp_path / "receptors.csv")
    back = pd.read_csv(path)
    assert len(back) == len(df) and list(back.columns) == list(df.columns)


def test_share_is_ratio_of_daily_means():
    ds = _dataset(ntime=24)
    o3 = np.zeros_like(ds["O3"].values)
    o3[0, :12] = 3.0                                    # 12 h: only tag 0
    o3[1, 12:] = 1.0                                    # 12 h: only tag 1
    ds["O3"][...] = o3
    df = receptor_shares(ds.drop_vars(["SO4", "PPM25"]),
                         pd.DataFrame({"id": ["s"], "lon": [120.0], "lat": [29.0]}))
    sec = df[df.by == "sector"].set_index("source")["share_percent"]
    np.testing.assert_allclose(sec[["industry", "traffic"]], [75.0, 25.0])


def test_station_location_and_pm_units():
    ds = _dataset(ntime=2)
    cells = locate_stations(ds, pd.DataFrame({"code": ["x"], "lon": [122.9], "lat": [30.1]}))
    assert (cells.j[0], cells.i[0]) == (2, 3)
    assert pollutant_field(ds, "PM25").attrs["components"] == "PPM25 SO4"
    ds["NH4"] = ds["SO4"].copy()
    ds["NH4"].attrs["units"] = "kg kg-1"
    with pytest.raises(ValueError, match="different units"):
        pollutant_field(ds, "PM25")


def test_city_receptors_average_their_stations():
    ds = _dataset(ntime=24)
    o3 = ds["O3"].values
    o3[...] = 0.0
    o3[0, :, 0, 0, 0] = 4.0                              # station s1 cell: Hangzhou industry
    o3[2, :, 0, 0, 1] = 4.0                              # station s2 cell: Ningbo industry
    ds["O3"][...] = o3
    st = pd.DataFrame({"code": ["s1", "s2", "nan"], "name": ["x", "x", "y"],
                       "city": ["C", "C", "C"], "lon": [120.0, 121.0, np.nan],
                       "lat": [29.0, 29.0, np.nan]})
    df = receptor_shares(ds, st, pollutants=["O3"], group_column="city")
    reg = df[df.by == "region"].set_index("source")
    assert set(df.receptor) == {"C"}
    np.testing.assert_allclose(reg.loc[["Hangzhou", "Ningbo"], "share_percent"], [50.0, 50.0])
    np.testing.assert_allclose(reg.loc["Hangzhou", "total"], 4.0)
