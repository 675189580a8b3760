"""CF NetCDF writing: attributes decodable by cf-xarray, atomic writes, input checks."""

from __future__ import annotations

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aqforecast.grid import LambertGrid, VerticalGrid
from aqforecast.io import InputFileError, atomic_path, grid_dataset, open_dataset, species_attrs
from aqforecast.io import write_dataset


@pytest.fixture(scope="module")
def grid():
    return LambertGrid.centred("d01", 12, 10, 3000.0, 120.5, 30.2, 25.0, 40.0, 120.5, 30.2,
                               VerticalGrid.stretched(5))


def _fields(grid):
    ds = grid_dataset(grid, with_metrics=False)
    t = pd.date_range("2026-07-20", periods=3, freq="h")
    data = np.random.default_rng(0).random((3, 5, grid.ny, grid.nx))
    ds["O3"] = (("time", "lev", "y", "x"), data, species_attrs("O3"))
    ds["SO4"] = (("time", "lev", "y", "x"), data * 10, species_attrs("SO4"))
    return ds.assign_coords(time=("time", t, {"standard_name": "time", "axis": "T"}))


def test_cf_axes_and_grid_mapping(tmp_path, grid):
    path = write_dataset(_fields(grid), tmp_path / "conc.nc")
    ds = xr.open_dataset(path)
    assert ds.attrs["Conventions"] == "CF-1.10"
    assert ds.cf.axes["X"] == ["x"] and ds.cf.axes["Y"] == ["y"]
    assert ds.cf.axes["Z"] == ["lev"] and ds.cf.axes["T"] == ["time"]
    assert set(ds.cf.coordinates["longitude"]) == {"lon"}
    assert ds.cf.grid_mapping_names == {"lambert_conformal_conic": ["crs"]}
    assert ds["O3"].attrs["grid_mapping"] == "crs"
    assert ds["O3"].attrs["standard_name"] == "mole_fraction_of_ozone_in_air"
    assert ds["O3"].attrs["units"] == "ppb"
    assert ds["SO4"].attrs["units"] == "ug m-3"
    assert ds["crs"].attrs["standard_parallel"].tolist() == [25.0, 40.0]
    assert ds.cf["O3"].cf["longitude"].shape == (grid.ny, grid.nx)
    # compression and chunking recorded in the encoding
    enc = ds["O3"].encoding
    assert enc["zlib"] and enc["chunksizes"] == (3, 5, grid.ny, grid.nx)
    np.testing.assert_array_equal(ds["O3"].values, _fields(grid)["O3"].values)


def test_grid_file_metrics(tmp_path, grid):
    path = write_dataset(grid_dataset(grid), tmp_path / "grid.nc")
    ds = xr.open_dataset(path)
    np.testing.assert_allclose(ds["cell_area"].values, grid.cell_area)
    assert ds["cell_area"].attrs["standard_name"] == "cell_area"
    assert ds["lon_corner"].shape == (grid.ny + 1, grid.nx + 1)
    # the grid mapping reconstructs the projection
    from pyproj import CRS

    crs = CRS.from_cf(ds["crs"].attrs)
    assert crs.to_dict()["proj"] == "lcc"


def test_atomic_write_leaves_nothing_on_error(tmp_path, grid, monkeypatch):
    target = tmp_path / "out.nc"
    ds = _fields(grid)

    def boom(self, path, *a, **k):
        with open(path, "wb") as fh:  # a partial file at the temporary name
            fh.write(b"CDF\x01 partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_dataset(ds, target)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_previous_version(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half")
            raise ValueError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_open_dataset_checks(tmp_path, grid):
    path = write_dataset(_fields(grid), tmp_path / "c.nc")
    with pytest.raises(InputFileError, match=r"c.nc: .* lacks required variable\(s\) NO2, CO"):
        open_dataset(path, required=["O3", "NO2", "CO"])
    with pytest.raises(InputFileError, match="does not exist"):
        open_dataset(tmp_path / "missing.nc")
    bad = tmp_path / "garbage.nc"
    bad.write_text("not netcdf")
    with pytest.raises(InputFileError, match="cannot read"):
        open_dataset(bad)
    with pytest.raises(InputFileError, match="has dims"):
        open_dataset(path, required_dims={"O3": ("time", "y", "x")})
