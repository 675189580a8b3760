"""Analysed lateral boundaries from a station network (:mod:`aqforecast.transport.boundary_stations`)
and the Beijing hindcast's boundary file (``hindcast_beijing_data.py --boundary observed``):
percentiles of the stations that are not withheld, the withheld ones never used, the file
read back by the model's boundary reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aqforecast import species as species_registry
from aqforecast.io import write_dataset
from aqforecast.io.boundary_file import BoundaryFile
from aqforecast.transport.boundary_stations import (
    boundary_dataset,
    profile_composition,
    rolling_max_depth,
    station_background,
)
from aqforecast.transport.boundary import BACKGROUND
from hindcast_case import data_script

REPO = Path(__file__).resolve().parents[1]
KEPT = ["A", "B", "C", "D", "E"]
WITHHELD = ["W1", "W2"]
SPECIES = ["NO", "NO2", "O3", "SO2", "CO", "SO4", "NO3", "NH4", "PPM25", "PPM10"]
T0 = pd.Timestamp("2016-12-01T00")
NT = 6


def crafted(withheld_value: float = 1.0, seed: int = 1) -> pd.DataFrame:
    """Long table: stations x hours, random values (ug m-3, CO mg m-3); the withheld stations
    all at ``withheld_value`` (x 1000 for PM: far outside the others)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in KEPT + WITHHELD:
        for k in range(NT):
            w = s in WITHHELD
            pm25 = 1000.0 * withheld_value if w else rng.uniform(10, 300)
            rows.append({"time": T0 + pd.Timedelta(hours=k), "station": s, "PM2.5": pm25,
                         "PM10": pm25 + (5.0 * withheld_value if w else rng.uniform(0, 80)),
                         "O3": withheld_value if w else rng.uniform(2, 90),
                         "NO2": withheld_value if w else rng.uniform(10, 120),
                         "SO2": withheld_value if w else rng.uniform(2, 30),
                         "CO": withheld_value if w else rng.uniform(0.3, 4.0)})
    return pd.DataFrame(rows)


def wide(table, col):
    return table.pivot_table(index="time", columns="station", values=col)[KEPT].to_numpy()


def test_values_are_the_percentiles_of_the_kept_stations_in_ppb_and_ug():
    t = crafted()
    bg = station_background(t, 25.0, exclude=WITHHELD, min_stations=3)
    assert bg.attrs["stations"] == KEPT and len(bg) == NT
    np.testing.assert_allclose(bg["PM25"], np.percentile(wide(t, "PM2.5"), 25, axis=1))
    coarse = np.maximum(wide(t, "PM10") - wide(t, "PM2.5"), 0.0)
    np.testing.assert_allclose(bg["PMC"], np.percentile(coarse, 25, axis=1))
    # O3, titrated locally: the high percentile; gases in ppb at 298.15 K, 1013.25 hPa
    np.testing.assert_allclose(bg["O3"], np.percentile(wide(t, "O3"), 75, axis=1) / 1.9622,
                               rtol=2e-4)   # 1 ppb O3 = 1.962 ug m-3 at 25 C
    np.testing.assert_allclose(
        bg["NO2"], species_registry.ugm3_to_ppb(np.percentile(wide(t, "NO2"), 25, axis=1),
                                                "NO2"))
    np.testing.assert_allclose(   # CO mg m-3: 1 mg m-3 = 873 ppb at 25 C (M 28.01)
        bg["CO"], np.percentile(wide(t, "CO"), 25, axis=1) * 1000.0 / 1.1449, rtol=2e-4)
    # a crafted hour: 5 stations 10..50, 25th percentile = 20, the minimum at 0
    one = pd.DataFrame({"time": T0, "station": KEPT, "PM2.5": [50.0, 10.0, 40.0, 20.0, 30.0]})
    assert station_background(one, 25.0, pollutants=["PM2.5"])["PM25"].iloc[0] == 20.0
    assert station_background(one, 0.0, pollutants=["PM2.5"])["PM25"].iloc[0] == 10.0


def test_withheld_stations_change_nothing():
    a = station_background(crafted(1.0), 25.0, exclude=WITHHELD)
    b = station_background(crafted(7.0), 25.0, exclude=WITHHELD)
    pd.testing.assert_frame_equal(a, b)
    c = station_background(crafted(7.0), 25.0)   # not excluded: they move the percentile
    assert not np.allclose(a["PM25"], c["PM25"])


def test_gaps_are_filled_in_time_and_short_hours_ignored():
    t = crafted()
    hour2 = t["time"] == T0 + pd.Timedelta(hours=2)
    t.loc[hour2 & t["station"].isin(KEPT[:3]), "PM2.5"] = np.nan   # 2 stations left: a gap
    bg = station_background(t, 25.0, exclude=WITHHELD, min_stations=3)
    p = np.percentile(wide(crafted(), "PM2.5"), 25, axis=1)
    assert bg["PM25"].iloc[2] == pytest.approx(0.5 * (p[1] + p[3]))


@pytest.mark.parametrize("kwargs, message", [
    ({"exclude": KEPT + WITHHELD}, "no station left"),
    ({"exclude": ["Nowhere"]}, "not in the table"),
    ({"pollutants": ["PM2.5", "NH3"]}, "missing from the station table"),
    ({"percentile": 120.0}, "expected a value in [0, 100]"),
])
def test_bad_input_raises_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        station_background(crafted(), **kwargs)


def test_a_species_never_observed_is_an_error():
    t = crafted()
    t["SO2"] = np.nan
    with pytest.raises(ValueError, match="SO2: no hour with 3 or more valid values"):
        station_background(t, 25.0, exclude=WITHHELD)
    with pytest.raises(ValueError, match="missing from the station table"):
        station_background(t.drop(columns="O3"), 25.0, pollutants=["O3"])


def test_rolling_mixed_layer():
    times = pd.date_range(T0, periods=48, freq="h")
    depth = np.where(times.hour == 6, 900.0, 50.0)
    h = rolling_max_depth(times, depth, hours=24.0, floor_m=100.0, fill_m=1000.0,
                          at=list(times[:8]) + [T0 - pd.Timedelta(hours=3),
                                                T0 + pd.Timedelta(days=5)])
    np.testing.assert_allclose(h, [100.0] * 6 + [900.0, 900.0, 1000.0, 1000.0])


def test_file_round_trips_through_the_model_reader(tmp_path):
    """Written in the layout of :mod:`aqforecast.io.boundary_file`: the reader gives back the
    surface value in the mixed layer (gases ppb -> mol mol-1, aerosols ug m-3 / air density),
    PM2.5 split by the profile's ratios, and the background profile well above it."""
    bg = station_background(crafted(), 25.0, exclude=WITHHELD)
    bg.index = bg.index - pd.Timedelta(hours=8)   # local -> UTC
    ds = boundary_dataset(bg, SPECIES, 600.0, lon=(115.0, 118.0), lat=(39.0, 41.0))
    path = write_dataset(ds, tmp_path / "bc.nc")
    bf = BoundaryFile(path, SPECIES)
    assert bf.missing == ["NO"]
    assert sorted(bf.variables) == sorted(set(SPECIES) - {"NO"})
    w = bf.weights(np.array([116.4, 115.2]), np.array([40.0, 40.9]))
    z = np.array([[10.0, 10.0], [500.0, 500.0], [12000.0, 12000.0]])
    rho = np.full((3, 2), 1.25)
    k = 3
    got = bf.sample(bg.index[k].to_datetime64(), w, z, rho)
    comp = profile_composition(SPECIES)
    assert set(comp) == {"SO4", "NO3", "NH4", "PPM25"}
    assert comp["PPM25"] == pytest.approx(12.0 / 24.0)
    pm = sum(got[n][:2] for n in comp) * rho[:2] * 1e9          # ug m-3
    np.testing.assert_allclose(pm, bg["PM25"].iloc[k], rtol=1e-6)
    np.testing.assert_allclose(got["PPM10"][:2] * rho[:2] * 1e9, bg["PMC"].iloc[k], rtol=1e-6)
    for n in ("O3", "NO2", "SO2", "CO"):
        np.testing.assert_allclose(got[n][:2] * 1e9, bg[n].iloc[k], rtol=1e-6)
    # 12 km: 19 mixed-layer depths above, the background profile (ppb)
    s, a, h = BACKGROUND["O3"]
    assert got["O3"][2] * 1e9 == pytest.approx(a + (s - a) * np.exp(-12000.0 / h), rel=1e-4)
    # halfway between two hours: linear in time
    mid = (bg.index[k] + pd.Timedelta(minutes=30)).to_datetime64()
    o3 = bf.sample(mid, w, z, rho)["O3"][0, 0] * 1e9
    assert o3 == pytest.approx(0.5 * (bg["O3"].iloc[k] + bg["O3"].iloc[k + 1]), rel=1e-6)
    bf.close()


def test_composition_must_sum_to_one():
    bg = station_background(crafted(), 25.0, exclude=WITHHELD)
    with pytest.raises(ValueError, match="sum to 1.1"):
        boundary_dataset(bg, SPECIES, 600.0, composition={"SO4": 0.6, "PPM25": 0.5})


def _data_script():
    return data_script()


def test_hindcast_boundary_file_leaves_the_withheld_stations_out(tmp_path):
    """The case's file (no met: 1000 m mixed layer): the 25th percentile of the 8 assimilated
    PRSA stations at a haze hour, the config's withheld stations absent."""
    from aqforecast.config import load_config
    from aqforecast.observations.readers import read_prsa

    m = _data_script()
    cfg = load_config(m.CONFIG)
    withheld = list(cfg.verification.withheld_stations)
    path = m.write_boundary(tmp_path / "bc.nc", met_dir=None)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["stations_excluded"].split() == withheld
        used = ds.attrs["stations_used"].split()
        assert float(ds["mixed_layer_depth"].min()) == 1000.0    # no met: 1000 m throughout
    bf = BoundaryFile(path, cfg.species)
    assert len(used) == 8 and not set(used) & set(withheld)
    t = read_prsa(m.STATIONS / m.WINTER)
    local = pd.Timestamp("2016-12-03T20")
    obs = t[(t["time"] == local) & t["station"].isin(used)]["PM2.5"].to_numpy()
    w = bf.weights(np.array([116.4]), np.array([40.05]))
    got = bf.sample((local - pd.Timedelta(hours=8)).to_datetime64(), w, np.array([[20.0]]),
                    np.array([[1.2]]))
    pm = sum(got[n] for n in ("SO4", "NO3", "NH4", "PPM25")) * 1.2e9
    assert pm.item() == pytest.approx(np.percentile(obs, 25), rel=1e-5)
    bf.close()
