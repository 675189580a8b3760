"""Lambert grids: projection round trips, map factors (analytic, pyproj, WRF), areas, nests."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
from pyproj import Geod, Proj

from aqforecast.config import load_config
from aqforecast.grid import (
    LambertGrid,
    VerticalGrid,
    grids_from_config,
    lambert_cone_constant,
    lambert_map_factor,
    nests_from_config,
)


@pytest.fixture(scope="module")
def grid():
    return LambertGrid.centred("t", 54, 48, 3000.0, 120.75, 30.3, 25.0, 40.0, 120.5, 30.3)


def test_round_trip_lonlat_xy(grid):
    rng = np.random.default_rng(1)
    lon = rng.uniform(115, 125, 1000)
    lat = rng.uniform(25, 35, 1000)
    x, y = grid.to_xy(lon, lat)
    lon2, lat2 = grid.to_lonlat(x, y)
    assert np.max(np.abs(lon2 - lon)) < 1e-9
    assert np.max(np.abs(lat2 - lat)) < 1e-9


def test_centre_is_where_asked(grid):
    x, y = grid.to_xy(120.75, 30.3)
    assert abs(x - (grid.x0 + grid.nx * grid.dx / 2)) < 1e-6
    assert abs(y - (grid.y0 + grid.ny * grid.dx / 2)) < 1e-6


def test_cone_constant_tangent_and_secant():
    assert lambert_cone_constant(30.0, 30.0) == pytest.approx(np.sin(np.deg2rad(30.0)))
    # Snyder (1987) p. 296 example: phi1=33, phi2=45 -> n = 0.6304777
    assert lambert_cone_constant(33.0, 45.0) == pytest.approx(0.6304777, abs=1e-7)


def test_map_factor_is_one_on_standard_parallels():
    assert lambert_map_factor(25.0, 25.0, 40.0) == pytest.approx(1.0, abs=1e-13)
    assert lambert_map_factor(40.0, 25.0, 40.0) == pytest.approx(1.0, abs=1e-13)
    assert lambert_map_factor(32.0, 25.0, 40.0) < 1.0  # between the parallels the map shrinks


def test_map_factor_matches_pyproj(grid):
    lon, lat = grid.lonlat
    f = Proj(grid.proj4).get_factors(lon, lat)
    np.testing.assert_allclose(grid.map_factor, f.meridional_scale, rtol=1e-9)
    np.testing.assert_allclose(grid.map_factor, f.parallel_scale, rtol=1e-9)


def test_cell_area_matches_geodesic_polygons(grid):
    geod = Geod(a=6370000.0, b=6370000.0)
    clon, clat = grid.corner_lonlat
    for j, i in [(0, 0), (10, 20), (47, 53)]:
        lons = [clon[j, i], clon[j, i + 1], clon[j + 1, i + 1], clon[j + 1, i]]
        lats = [clat[j, i], clat[j, i + 1], clat[j + 1, i + 1], clat[j + 1, i]]
        area, _ = geod.polygon_area_perimeter(lons, lats)
        assert abs(area) == pytest.approx(grid.cell_area[j, i], rel=1e-5)


def _salem_grid(shared_data):
    """Rebuild the salem sample's WRF grid from its attributes and its lower-left cell."""
    ds = netCDF4.Dataset(shared_data / "met_wrf" / "salem_wrf_d01_allvars_cropped.nc")
    ds.set_auto_mask(False)
    lat, lon = ds["XLAT"][:].astype(float), ds["XLONG"][:].astype(float)
    a = {k: float(ds.getncattr(k)) for k in ("TRUELAT1", "TRUELAT2", "STAND_LON", "DX")}
    probe = LambertGrid("p", 1, 1, a["DX"], a["TRUELAT1"], a["TRUELAT2"], a["STAND_LON"],
                        a["TRUELAT1"], 0.0, 0.0)
    x, y = probe.to_xy(lon, lat)
    ny, nx = lat.shape
    x0 = float(np.mean(x - a["DX"] * (np.arange(nx) + 0.5)))
    y0 = float(np.mean(y - a["DX"] * (np.arange(ny)[:, None] + 0.5)))
    g = LambertGrid("salem", nx, ny, a["DX"], a["TRUELAT1"], a["TRUELAT2"], a["STAND_LON"],
                    a["TRUELAT1"], x0, y0)
    return g, ds, lon, lat


def test_map_factors_match_wrf_mapfac(shared_data):
    g, ds, lon, lat = _salem_grid(shared_data)
    # positions agree with WRF's XLAT/XLONG to float32 precision
    assert np.abs(g.lonlat[0] - lon).max() < 5e-5
    assert np.abs(g.lonlat[1] - lat).max() < 5e-5
    np.testing.assert_allclose(g.map_factor, ds["MAPFAC_M"][:], atol=5e-7)
    np.testing.assert_allclose(g.map_factor_u, ds["MAPFAC_U"][:], atol=5e-7)
    np.testing.assert_allclose(g.map_factor_v, ds["MAPFAC_V"][:], atol=5e-7)
    # analytic formula on WRF's own latitudes
    np.testing.assert_allclose(lambert_map_factor(lat, 30.0, 35.0), ds["MAPFAC_M"][:], atol=5e-7)


def test_rotation_matches_wrf_alpha(shared_data):
    g, ds, _, _ = _salem_grid(shared_data)
    c, s = g.rotation
    # WPS computes alpha numerically; it agrees with the analytic n*(lon - lon0) to 5e-5 rad
    np.testing.assert_allclose(c, ds["COSALPHA"][:], atol=2e-6)
    np.testing.assert_allclose(s, ds["SINALPHA"][:], atol=5e-5)
    assert np.all(np.sign(s) == np.sign(ds["SINALPHA"][:]))


def test_wind_rotation_round_trip(grid):
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, grid.ny, grid.nx))
    ue, ve = grid.grid_to_earth_wind(u, v)
    u2, v2 = grid.earth_to_grid_wind(ue, ve)
    np.testing.assert_allclose(u2, u, atol=1e-14)
    np.testing.assert_allclose(v2, v, atol=1e-14)
    np.testing.assert_allclose(np.hypot(ue, ve), np.hypot(u, v), rtol=1e-14)


def test_locate_cell_centres_and_outside(grid):
    lon, lat = grid.lonlat
    j, i = grid.locate(lon, lat)
    jj, ii = np.meshgrid(np.arange(grid.ny), np.arange(grid.nx), indexing="ij")
    assert np.array_equal(j, jj) and np.array_equal(i, ii)
    j, i = grid.locate([100.0, 120.75], [30.0, 30.3])
    assert (j[0], i[0]) == (-1, -1)
    assert (j[1], i[1]) == (grid.ny // 2, grid.nx // 2)


def test_nest_mapping(sample_config):
    cfg = load_config(sample_config)
    grids = grids_from_config(cfg)
    nest = nests_from_config(cfg, grids)["d02"]
    parent, child = grids["d01"], grids["d02"]
    assert child.dx == pytest.approx(parent.dx / 3)
    # corners of the nest coincide with parent corners
    assert child.x0 == pytest.approx(parent.x_edges[nest.i_start])
    assert child.y_edges[-1] == pytest.approx(parent.y_edges[nest.j_start + child.ny // 3])
    # every child centre lies in the parent cell the mapping names
    pj, pi = nest.parent_index()
    lj, li = parent.locate(*child.lonlat)
    assert np.array_equal(pj, lj) and np.array_equal(pi, li)
    # the 3x3 children of a parent cell tile it: areas add up (map factors vary slightly)
    area = nest.aggregate_to_parent(child.cell_area) * 9
    np.testing.assert_allclose(area, parent.cell_area[nest.parent_slices], rtol=1e-6)
    # fractional index of a child centre in parent index space
    fj, fi = nest.parent_fractional_index(halo=1)
    assert fi[1] == pytest.approx(nest.i_start + 0.5 / 3)
    assert fj[0] == pytest.approx(nest.j_start - 0.5 / 3)


def test_nest_rejects_bad_placement(grid):
    with pytest.raises(ValueError, match="multiples of ratio 3"):
        grid.nest("n", 5, 5, 10, 9)
    with pytest.raises(ValueError, match="must end inside parent"):
        grid.nest("n", 50, 5, 12, 12)
    with pytest.raises(ValueError, match="at least one parent cell"):
        grid.nest("n", 0, 5, 12, 12)


def test_vertical_stretched_levels():
    v = VerticalGrid.stretched(15, p_top=10000.0, first_layer_m=30.0)
    z = v.standard_heights()
    assert v.nz == 15
    assert z[1] == pytest.approx(30.0, rel=1e-6)
    assert np.all(np.diff(np.diff(z)) > 0)  # thickness grows with height
    assert v.pressure_interfaces()[-1] == pytest.approx(10000.0)
    with pytest.raises(ValueError, match="decrease strictly"):
        VerticalGrid((1.0, 0.5, 0.6, 0.0))
