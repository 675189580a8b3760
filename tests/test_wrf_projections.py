"""WRF's three map projections (MAP_PROJ 1 Lambert, 2 polar stereographic, 3 Mercator): grids
rebuilt from wrfout attributes reproduce the file's XLAT/XLONG, MAPFAC_M/U/V and COSALPHA/SINALPHA;
rotation, CF grid mappings and cell areas agree with pyproj; bad projections are config errors.

Tolerances reached (float32 files, so ~1e-7 relative is the floor):
* Lambert, salem 30 km: centres within 1.8 m of XLAT/XLONG, MAPFAC_M/U/V within 1.4e-7,
  COSALPHA 5e-7, SINALPHA 5e-5 (WPS differentiates numerically);
* Mercator, wrf-python CI 10 km: centres within 1.3 m, MAPFAC_M/U/V within 2.2e-7;
* polar stereographic (made up here with WRF's formulas, north and south): centres within 0.5 m,
  MAPFAC within 4e-8, rotation within 3e-7.
"""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import yaml
from pyproj import CRS, Geod, Proj
from wrf_layout import write_polar_wrfout

from aqforecast.cli import main
from aqforecast.config import ConfigError, load_config, read_yaml
from aqforecast.config.models import ProjectionConfig
from aqforecast.grid import (
    LambertGrid,
    MercatorGrid,
    PolarStereographicGrid,
    grid_class,
    grids_from_config,
    nests_from_config,
    projection_problem,
)
from aqforecast.io import InputFileError
from aqforecast.io.wrf import WrfOutput

SALEM = "salem_wrf_d01_allvars_cropped.nc"
CI = "wrfpython_ci_test_file.nc"


def _var(ds, name):
    a = np.asarray(ds[name][:], dtype=float)
    return a[0] if a.ndim == 3 else a


def _distance_m(lon1, lat1, lon2, lat2):
    dlon = (np.asarray(lon1) - lon2 + 180.0) % 360.0 - 180.0
    return np.hypot(dlon * np.cos(np.deg2rad(lat2)), np.asarray(lat1) - lat2) * 111195.0


def _check_against_file(path, kind, dist_m, mapfac_tol):
    with WrfOutput(path, required=("Times", "XLAT", "XLONG")) as wo:
        g = wo.model_grid("t")
    assert g.kind == kind and isinstance(g, grid_class(kind))
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        lon, lat = g.lonlat
        assert _distance_m(_var(ds, "XLONG"), _var(ds, "XLAT"), lon, lat).max() < dist_m
        for name, mine in [("MAPFAC_M", g.map_factor), ("MAPFAC_U", g.map_factor_u),
                           ("MAPFAC_V", g.map_factor_v)]:
            np.testing.assert_allclose(mine, _var(ds, name), atol=mapfac_tol, err_msg=name)
        # the face positions too (u: west-east faces, v: south-north faces)
        for suffix, (xs, ys) in {"_U": (g.x_edges, g.y), "_V": (g.x, g.y_edges)}.items():
            if "XLAT" + suffix in ds.variables:
                flon, flat = g.to_lonlat(*np.meshgrid(xs, ys))
                assert _distance_m(_var(ds, "XLONG" + suffix), _var(ds, "XLAT" + suffix),
                                   flon, flat).max() < dist_m + 1.0
        rot = None
        if "COSALPHA" in ds.variables:
            rot = _var(ds, "COSALPHA"), _var(ds, "SINALPHA")
    return g, rot


def test_lambert_salem_map_factors_and_rotation(shared_data):
    g, (cosa, sina) = _check_against_file(shared_data / "met_wrf" / SALEM, "lambert", 1.9, 1.5e-7)
    assert isinstance(g, LambertGrid)
    c, s = g.rotation
    np.testing.assert_allclose(c, cosa, atol=5e-7)
    np.testing.assert_allclose(s, sina, atol=5e-5)
    # the wind rotation WRF documents: earth = (u cos a - v sin a, v cos a + u sin a)
    u, v = np.full_like(c, 3.0), np.full_like(c, -2.0)
    ue, ve = g.grid_to_earth_wind(u, v)
    np.testing.assert_allclose(ue, u * cosa - v * sina, atol=3e-4)
    np.testing.assert_allclose(ve, v * cosa + u * sina, atol=3e-4)


def test_mercator_ci_file_map_factors(shared_data):
    path = shared_data / "met_wrf" / CI
    with netCDF4.Dataset(path) as ds:
        assert int(ds.MAP_PROJ) == 3 and float(ds.TRUELAT1) == 0.0
    g, _ = _check_against_file(path, "mercator", 1.3, 2.5e-7)
    assert isinstance(g, MercatorGrid) and g.cone_constant == 0.0
    c, s = g.rotation
    assert np.all(c == 1.0) and np.all(s == 0.0)  # grid north is true north
    u = np.ones((g.ny, g.nx))
    assert np.array_equal(g.earth_to_grid_wind(u, 2 * u)[1], 2 * u)


@pytest.mark.parametrize("kw", [
    {},                                                              # Arctic, true at 60 N
    {"truelat1": -71.0, "stand_lon": 0.0, "centre": (30.0, -75.0)},  # Antarctic, true at 71 S
    {"centre": (10.0, 88.0), "dx": 5000.0},                          # next to the pole
], ids=["north", "south", "near-pole"])
def test_polar_stereographic_made_up_file(tmp_path, kw):
    path = write_polar_wrfout(tmp_path / "wrfout_d01_2020-01-15_00:00:00", **kw)
    g, (cosa, sina) = _check_against_file(path, "polar", 0.5, 4e-8)
    assert isinstance(g, PolarStereographicGrid)
    assert g.ref_lat == np.copysign(90.0, g.truelat1) and g.truelat2 == g.truelat1
    c, s = g.rotation
    np.testing.assert_allclose(c, cosa, atol=3e-7)
    np.testing.assert_allclose(s, sina, atol=3e-7)


def _grids():
    return [
        LambertGrid.centred("l", 30, 20, 12000.0, 120.0, 32.0, 25.0, 40.0, 115.0),
        LambertGrid.centred("ls", 30, 20, 12000.0, -60.0, -35.0, -30.0, -45.0, -55.0),
        PolarStereographicGrid.centred("pn", 30, 20, 25000.0, -40.0, 72.0, 60.0, None, -100.0),
        PolarStereographicGrid.centred("ps", 30, 20, 25000.0, 30.0, -75.0, -71.0, None, 0.0),
        MercatorGrid.centred("m", 30, 20, 10000.0, -89.0, 25.0, 0.0, None, -89.0),
        MercatorGrid.centred("m2", 30, 20, 10000.0, 10.0, 50.0, 45.0, None, 0.0),
    ]


@pytest.mark.parametrize("g", _grids(), ids=lambda g: g.name)
def test_metrics_agree_with_pyproj(g):
    lon, lat = g.lonlat
    f = Proj(g.crs).get_factors(lon, lat)
    np.testing.assert_allclose(g.map_factor, f.meridional_scale, rtol=1e-9)
    np.testing.assert_allclose(g.map_factor, f.parallel_scale, rtol=1e-9)
    # grid rotation: alpha = -(meridian convergence), for every projection and hemisphere
    c, s = g.rotation
    conv = np.deg2rad(f.meridian_convergence)
    np.testing.assert_allclose(c, np.cos(-conv), atol=1e-9)
    np.testing.assert_allclose(s, np.sin(-conv), atol=1e-9)
    # an eastward wind points along the grid direction of a small eastward step
    x0, y0 = g.to_xy(lon, lat)
    x1, y1 = g.to_xy(lon + 1e-5, lat)
    ug, vg = g.earth_to_grid_wind(np.ones_like(lon), np.zeros_like(lon))
    np.testing.assert_allclose(np.arctan2(vg, ug), np.arctan2(y1 - y0, x1 - x0), atol=1e-6)


@pytest.mark.parametrize("g", _grids(), ids=lambda g: g.name)
def test_cell_area_matches_geodesic_polygons(g):
    geod = Geod(a=6370000.0, b=6370000.0)
    clon, clat = g.corner_lonlat
    for j, i in [(0, 0), (10, 15), (g.ny - 1, g.nx - 1)]:
        lons = [clon[j, i], clon[j, i + 1], clon[j + 1, i + 1], clon[j + 1, i]]
        lats = [clat[j, i], clat[j, i + 1], clat[j + 1, i + 1], clat[j + 1, i]]
        area, _ = geod.polygon_area_perimeter(lons, lats)
        assert abs(area) == pytest.approx(g.cell_area[j, i], rel=1e-6)


@pytest.mark.parametrize("g", _grids(), ids=lambda g: g.name)
def test_cf_grid_mapping_reconstructs_the_projection(g):
    cf = g.cf_grid_mapping()
    expected = {"lambert": "lambert_conformal_conic", "polar": "polar_stereographic",
                "mercator": "mercator"}[g.kind]
    assert cf["grid_mapping_name"] == expected and cf["earth_radius"] == 6370000.0
    crs = CRS.from_cf({k: v for k, v in cf.items() if k != "crs_wkt"})
    lon, lat = g.lonlat
    x, y = Proj(crs)(lon, lat)
    xx, yy = np.meshgrid(g.x, g.y)
    np.testing.assert_allclose(x, xx, atol=1e-3)
    np.testing.assert_allclose(y, yy, atol=1e-3)


def test_nest_keeps_the_projection():
    for g in _grids():
        n = g.nest("n", 2, 2, 9, 6, 3)
        assert type(n.grid) is type(g) and n.grid.dx == g.dx / 3
        np.testing.assert_allclose(n.grid.corner_lonlat[0][0, 0], g.corner_lonlat[0][2, 2],
                                   atol=1e-9)


# --------------------------------------------------------------------------- config errors
def _base(sample_config):
    data = read_yaml(sample_config)
    data["base_dir"] = str(sample_config.parent.parent)
    return data


@pytest.mark.parametrize("proj, message", [
    ({"kind": "lambert", "truelat1": 0.0, "truelat2": 0.0}, "use kind: mercator"),
    ({"kind": "lambert", "truelat1": 30.0, "truelat2": -30.0}, "same hemisphere"),
    ({"kind": "lambert", "truelat1": 90.0, "truelat2": 60.0}, "use kind: polar"),
    ({"kind": "lambert", "truelat1": 95.0, "truelat2": 60.0}, "less than or equal to 90"),
    ({"kind": "lambert", "truelat1": -91.0, "truelat2": 60.0}, "greater than or equal to -90"),
    ({"kind": "polar", "truelat1": 0.0}, "names no pole"),
    ({"kind": "polar", "truelat1": 60.0, "truelat2": 30.0}, "truelat2 apply to kind: lambert"),
    ({"kind": "mercator", "truelat1": 10.0, "ref_lat": 30.0}, "ref_lat apply to kind: lambert"),
    ({"kind": "mercator", "truelat1": -90.0}, "strictly between -90 and 90"),
    ({"kind": "conic", "truelat1": 30.0}, "'lambert', 'polar' or 'mercator'"),
])
def test_bad_projection_is_a_config_error(tmp_path, sample_config, capsys, proj, message):
    data = _base(sample_config)
    data["projection"] = {"stand_lon": 120.5, **proj}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert "bad.yaml" in str(ei.value) and "projection" in str(ei.value)
    assert message in str(ei.value), str(ei.value)
    assert main(["validate", str(path), "--config-only"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "Traceback" not in err and "CRSError" not in err


def test_polar_pole_must_match_the_domain_hemisphere(tmp_path, sample_config):
    data = _base(sample_config)
    data["projection"] = {"kind": "polar", "truelat1": -60.0, "stand_lon": 120.0}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="other hemisphere than the polar projection's pole"):
        load_config(path)


@pytest.mark.parametrize("kind", ["polar", "mercator", "lambert"])
def test_other_projections_build_every_domain(tmp_path, sample_config, kind):
    data = _base(sample_config)
    data["projection"] = {"kind": kind, "truelat1": 30.0, "stand_lon": 120.5}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    grids = grids_from_config(cfg)
    nests = nests_from_config(cfg, grids)
    assert {g.kind for g in grids.values()} == {kind}
    assert type(nests["d02"].grid) is type(grids["d01"])
    lon, lat = grids["d01"].centre_lonlat
    assert lon == pytest.approx(120.75, abs=1e-9) and lat == pytest.approx(30.3, abs=1e-9)


def test_config_and_grid_agree_on_valid_projections():
    """The config validator and aqforecast.grid.projection_problem accept the same projections,
    and pyproj builds every one they accept (no pyproj error ever reaches a user)."""
    lats = [-90.0, -89.0, -60.0, -30.0, -0.5, 0.0, 0.5, 30.0, 45.0, 89.0, 90.0]
    for kind in ("lambert", "polar", "mercator"):
        for t1 in lats:
            for t2 in (lats if kind == "lambert" else [None]):
                kw = {"kind": kind, "truelat1": t1, "stand_lon": 10.0}
                if t2 is not None:
                    kw["truelat2"] = t2
                try:
                    ProjectionConfig(**kw)
                    ok = True
                except ValueError:
                    ok = False
                assert ok == (projection_problem(kind, t1, t2) is None), kw
                if ok:
                    cls = grid_class(kind)
                    g = cls(kind, 2, 2, 1000.0, t1, t1 if t2 is None else t2, 10.0,
                            t1 if kind == "lambert" else 0.0, 0.0, 0.0)
                    assert g.crs is not None
                else:
                    with pytest.raises(ValueError):
                        grid_class(kind)("g", 2, 2, 1000.0, t1, t1 if t2 is None else t2, 10.0,
                                         0.0, 0.0, 0.0)


# --------------------------------------------------------------------------- the WRF reader
def test_reader_checks_the_projection_against_the_config(shared_data, tmp_path):
    path = shared_data / "met_wrf" / CI
    with WrfOutput(path, required=("Times", "XLAT", "XLONG")) as wo:
        good = wo.model_grid("d02")
        wo.check_projection(good)  # the file's own grid passes
        lam = LambertGrid.centred("d02", 10, 10, 10000.0, -89.0, 25.0, 30.0, 60.0, -89.0)
        with pytest.raises(InputFileError, match=r"wrfpython_ci_test_file\.nc: MAP_PROJ=3 "
                                                 r"\(mercator\).*lambert.*projection\.kind: "
                                                 "mercator"):
            wo.check_projection(lam)
        other = MercatorGrid.centred("d02", 10, 10, 12000.0, -89.0, 25.0, 5.0, None, -89.0)
        with pytest.raises(InputFileError, match=r"wrfpython_ci_test_file\.nc.*TRUELAT1 = 0\.0 "
                                                 r"vs model truelat1 5\.0.*DX/DY = 10000"):
            wo.check_projection(other)
    polar = write_polar_wrfout(tmp_path / "polar.nc")
    with WrfOutput(polar, required=("Times", "XLAT", "XLONG")) as wo:
        g = wo.model_grid("d01")
        wo.check_projection(g)
        shifted = PolarStereographicGrid(g.name, g.nx, g.ny, g.dx, g.truelat1, None, -90.0,
                                         None, g.x0, g.y0)
        with pytest.raises(InputFileError, match="polar.nc.*STAND_LON = -100.0 vs model -90.0"):
            wo.check_projection(shifted)


def test_reader_refuses_lat_lon_and_missing_attributes(shared_data, tmp_path):
    path = write_polar_wrfout(tmp_path / "latlon.nc")
    with netCDF4.Dataset(path, "a") as ds:
        ds.MAP_PROJ = np.int32(6)
    with WrfOutput(path, required=("Times", "XLAT", "XLONG")) as wo, \
            pytest.raises(InputFileError, match=r"latlon\.nc: MAP_PROJ=6 \(rotated\) "
                                                "latitude-longitude is not supported"):
        wo.model_grid()
    with netCDF4.Dataset(path, "a") as ds:
        ds.delncattr("MAP_PROJ")
    with WrfOutput(path, required=("Times", "XLAT", "XLONG")) as wo, \
            pytest.raises(InputFileError, match="latlon.nc: wrfout file lacks the global "
                                                "attribute MAP_PROJ"):
        wo.model_grid()
