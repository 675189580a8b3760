"""TROPOMI L2 NO2: reader on the real product layout, synthetic granules, AK operator, superobs."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import xarray as xr

from aqforecast.constants import GRAVITY, M_AIR
from aqforecast.grid import lambert_map_factor
from aqforecast.io import InputFileError
from aqforecast.observations.satellite import (
    FLOAT_FILL,
    INT_FILL,
    partial_columns,
    read_tropomi_no2,
    regrid_partial_columns,
    superobs_weight_matrix,
    superobservations,
    tm5_hybrid_coefficients,
    tm5_interface_pressures,
    tropospheric_column_operator,
    write_synthetic_tropomi_no2,
)

HEADER_NAME = ("S5P_OFFL_L2__NO2____20200303T013547_20200303T031717_12367_01_010302_"
               "20200306T053815_METADATA_ONLY.nc")
GM = GRAVITY * M_AIR


@pytest.fixture(scope="module")
def header(shared_data):
    path = shared_data / "satellite_schema" / HEADER_NAME
    if not path.exists():
        pytest.skip(f"real TROPOMI header file not found at {path}")
    return path


def no2_profile(lon, lat, p):
    """Boundary-layer NO2 (~ppb) decaying with height plus a lon gradient, mol mol-1."""
    return 4e-9 * np.exp(-(101325.0 - p) / 6000.0) * (1.0 + 0.2 * (lon - 120.0)) + 2e-11


@pytest.fixture(scope="module")
def granule(header, tmp_path_factory):
    path = tmp_path_factory.mktemp("s5p") / "S5P_SYNTH_L2__NO2.nc"
    write_synthetic_tropomi_no2(path, header, (120.2, 121.4), (29.7, 30.9),
                                "2026-07-20T05:12:00", no2_profile, n_scanline=24,
                                n_ground_pixel=18, tilt_deg=8.0, seed=3)
    return path


@pytest.fixture(scope="module")
def d01(repo):
    from aqforecast.config import load_config
    from aqforecast.grid import grids_from_config
    return grids_from_config(load_config(repo / "config" / "config.yaml"))["d01"]


# ============================================================================ real layout
def test_real_header_layout_and_missing_product_variables(header):
    with netCDF4.Dataset(header) as ds:
        prod = ds["PRODUCT"]
        dims = {k: len(v) for k, v in prod.dimensions.items()}
        assert dims["scanline"] == 4172 and dims["ground_pixel"] == 450
        assert (dims["layer"], dims["corner"], dims["vertices"], dims["time"]) == (34, 4, 2, 1)
        assert len(prod.variables) == 0
        assert ds.getncattr("orbit") == 12367 and ds.getncattr("processor_version") == "1.3.2"
    with pytest.raises(InputFileError) as err:
        read_tropomi_no2(header)
    msg = str(err.value)
    assert HEADER_NAME in msg
    for name in ("/PRODUCT/qa_value", "/PRODUCT/nitrogendioxide_tropospheric_column",
                 "/PRODUCT/averaging_kernel", "/PRODUCT/tm5_constant_a",
                 "/PRODUCT/SUPPORT_DATA/GEOLOCATIONS/latitude_bounds",
                 "/PRODUCT/SUPPORT_DATA/INPUT_DATA/surface_pressure"):
        assert name in msg


def test_synthetic_granule_has_real_layout(header, granule):
    with netCDF4.Dataset(header) as tpl, netCDF4.Dataset(granule) as ds:
        for k in ("institution", "orbit", "processor_version", "product_version", "title",
                  "identifier_product_doi", "Conventions"):
            assert ds.getncattr(k) == tpl.getncattr(k)
        assert "SYNTHETIC" in ds.getncattr("history")
        assert ds.getncattr("time_coverage_start") == "2026-07-20T05:12:00Z"
        # whole METADATA group copied
        assert (len(ds["METADATA/ALGORITHM_SETTINGS"].ncattrs())
                == len(tpl["METADATA/ALGORITHM_SETTINGS"].ncattrs()) == 159)
        q, qt = ds["METADATA/QA_STATISTICS"], tpl["METADATA/QA_STATISTICS"]
        assert set(q.variables) == set(qt.variables)
        for name in q.variables:
            np.testing.assert_array_equal(np.asarray(q[name][:]), np.asarray(qt[name][:]))
        # PRODUCT dims: template's, with a small swath
        pd = {k: len(v) for k, v in ds["PRODUCT"].dimensions.items()}
        td = {k: len(v) for k, v in tpl["PRODUCT"].dimensions.items()}
        assert set(pd) == set(td)
        assert (pd["scanline"], pd["ground_pixel"]) == (24, 18)
        assert all(pd[k] == td[k] for k in td if k not in ("scanline", "ground_pixel"))
        p = ds["PRODUCT"]
        pix = ("time", "scanline", "ground_pixel")
        qa = p["qa_value"]
        assert qa.dtype == np.uint8 and qa.dimensions == pix
        assert qa.getncattr("_FillValue") == 255
        assert qa.getncattr("scale_factor").dtype == np.float32
        assert float(qa.getncattr("scale_factor")) == pytest.approx(0.01)
        col = p["nitrogendioxide_tropospheric_column"]
        assert col.dtype == np.float32 and col.getncattr("units") == "mol m-2"
        assert col.getncattr("_FillValue") == FLOAT_FILL
        assert p["averaging_kernel"].dimensions == pix + ("layer",)
        assert p["tm5_constant_a"].dimensions == ("layer", "vertices")
        assert p["tm5_constant_a"].getncattr("units") == "Pa"
        assert p["tm5_tropopause_layer_index"].dtype == np.int32
        assert p["tm5_tropopause_layer_index"].getncattr("_FillValue") == INT_FILL
        assert p["delta_time"].dimensions == ("time", "scanline")
        assert p["delta_time"].dtype == np.int32
        assert p["air_mass_factor_total"].dimensions == pix
        g = ds["PRODUCT/SUPPORT_DATA/GEOLOCATIONS"]
        assert g["latitude_bounds"].dimensions == pix + ("corner",)
        assert ds["PRODUCT/SUPPORT_DATA/INPUT_DATA/surface_pressure"].getncattr("units") == "Pa"
        det = ds["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"]
        assert "air_mass_factor_stratosphere" in det.variables


def test_synthetic_granule_reads_back_with_known_truth(granule):
    px = read_tropomi_no2(granule, qa_min=0.0)
    assert px.sizes == {"pixel": 24 * 18, "layer": 34, "vertices": 2, "corner": 4}
    # truth: sum of tropospheric TM5 partial columns of the profile function
    a, b = px["tm5_constant_a"].values, px["tm5_constant_b"].values
    pint = tm5_interface_pressures(a, b, px["surface_pressure"].values)
    pmid = pint.mean(axis=2)
    x = no2_profile(px["longitude"].values[:, None], px["latitude"].values[:, None], pmid) \
        * (pint[..., 0] - pint[..., 1]) / GM
    itp = px["tm5_tropopause_layer_index"].values
    truth = np.array([x[i, : itp[i] + 1].sum() for i in range(x.shape[0])])
    np.testing.assert_allclose(px["nitrogendioxide_tropospheric_column"].values, truth,
                               rtol=2e-6)  # float32 storage
    # the AK operator on the same profile reproduces the stored column
    p_model = np.vstack([pint[:, :, 0].T, pint[:, -1:, 1].T])      # (35, npix)
    vmr = no2_profile(px["longitude"].values, px["latitude"].values, pmid.T)
    y = tropospheric_column_operator(vmr, p_model, px["averaging_kernel"].values, a, b,
                                     px["surface_pressure"].values, itp,
                                     px["air_mass_factor_total"].values,
                                     px["air_mass_factor_troposphere"].values)
    np.testing.assert_allclose(y, truth, rtol=2e-5)
    # times: scanline j at 05:12:00 + 0.84 s * j, per scanline
    t = px["time"].values
    sc = px["scanline"].values
    expect = np.datetime64("2026-07-20T05:12:00", "ns") + (sc * 840).astype("timedelta64[ms]")
    np.testing.assert_array_equal(t, expect)
    assert np.all(px["qa_value"].values <= 1.0)
    assert px["latitude_bounds"].shape == (24 * 18, 4)


def test_qa_filter_scale_decoding_and_fill(header, tmp_path):
    qa_cycle = np.array([0.74, 0.75, 0.76, 1.0])

    def qa_fn(lon, lat):
        idx = np.arange(lon.size).reshape(lon.shape) % 4
        return qa_cycle[idx]

    path = tmp_path / "qa.nc"
    write_synthetic_tropomi_no2(path, header, (120.0, 121.0), (30.0, 31.0), "2026-07-21T05:00",
                                no2_profile, n_scanline=6, n_ground_pixel=8, qa_fn=qa_fn)
    with netCDF4.Dataset(path, "a") as ds:
        v = ds["PRODUCT/qa_value"]
        v.set_auto_maskandscale(False)
        raw = v[0]
        assert sorted(np.unique(raw).tolist()) == [74, 75, 76, 100]   # uint8 x 0.01
        raw[0, 1] = 255                                               # qa fill
        v[0] = raw
        c = ds["PRODUCT/nitrogendioxide_tropospheric_column"]
        c.set_auto_maskandscale(False)
        cc = c[0]
        cc[0, 2] = FLOAT_FILL                                         # column fill
        c[0] = cc
    px = read_tropomi_no2(path, qa_min=0.75)
    qa = px["qa_value"].values
    assert set(np.unique(qa).tolist()) <= {0.75, 0.76, 1.0}
    assert np.any(qa == 0.75)                       # 75 * 0.01f decodes to exactly 0.75
    n_expected = 48 - 12 - 2                        # 12 pixels at 0.74, two fill pixels
    assert px.sizes["pixel"] == n_expected
    assert not np.any((px["scanline"].values == 0) & np.isin(px["ground_pixel"].values, [1, 2]))
    everything = read_tropomi_no2(path, qa_min=0.0)
    assert everything.sizes["pixel"] == 46
    strict = read_tropomi_no2(path, qa_min=0.76)
    assert strict.sizes["pixel"] == 24 - 1          # 0.76 and 1.0 only; (0,2) is fill


def test_bbox_selects_pixel_centres(granule):
    px = read_tropomi_no2(granule, qa_min=0.0, bbox=(120.5, 121.0, 30.0, 30.5))
    lon, lat = px["longitude"].values, px["latitude"].values
    assert px.sizes["pixel"] > 0
    assert np.all((lon >= 120.5) & (lon <= 121.0) & (lat >= 30.0) & (lat <= 30.5))
    allpx = read_tropomi_no2(granule, qa_min=0.0)
    lon_a, lat_a = allpx["longitude"].values, allpx["latitude"].values
    inside = (lon_a >= 120.5) & (lon_a <= 121.0) & (lat_a >= 30.0) & (lat_a <= 30.5)
    assert px.sizes["pixel"] == int(inside.sum())


def test_reader_errors_name_file_and_variable(tmp_path):
    bad = tmp_path / "not_netcdf.nc"
    bad.write_text("hello")
    with pytest.raises(InputFileError, match="not_netcdf.nc"):
        read_tropomi_no2(bad)
    # wrong dimensions on a present variable
    f = tmp_path / "wrongdims.nc"
    with netCDF4.Dataset(f, "w") as ds:
        p = ds.createGroup("PRODUCT")
        for d, n in (("time", 1), ("scanline", 3), ("ground_pixel", 2), ("layer", 34),
                     ("vertices", 2), ("corner", 4)):
            p.createDimension(d, n)
        p.createVariable("latitude", "f4", ("scanline", "ground_pixel"))
    with pytest.raises(InputFileError) as err:
        read_tropomi_no2(f)
    assert "wrongdims.nc" in str(err.value) and "/PRODUCT/qa_value" in str(err.value)
    # only a missing support group
    with netCDF4.Dataset(f, "a") as ds:
        p = ds["PRODUCT"]
        pix = ("time", "scanline", "ground_pixel")
        for name in ("longitude", "qa_value", "nitrogendioxide_tropospheric_column",
                     "nitrogendioxide_tropospheric_column_precision",
                     "air_mass_factor_troposphere", "air_mass_factor_total",
                     "tm5_tropopause_layer_index"):
            p.createVariable(name, "f4", pix)
        p.createVariable("lat2", "f4", pix)
        p.createVariable("averaging_kernel", "f4", pix + ("layer",))
        p.createVariable("tm5_constant_a", "f4", ("layer", "vertices"))
        p.createVariable("tm5_constant_b", "f4", ("layer", "vertices"))
        p.createVariable("time", "i4", ("time",))
        p.createVariable("delta_time", "i4", ("time", "scanline"))
    with pytest.raises(InputFileError) as err:
        read_tropomi_no2(f)
    msg = str(err.value)
    assert "/PRODUCT/SUPPORT_DATA/INPUT_DATA/surface_pressure" in msg
    assert "/PRODUCT/qa_value" not in msg


# ============================================================================ column operator
def _tm5_case(npix=5, seed=0):
    rng = np.random.default_rng(seed)
    a, b = tm5_hybrid_coefficients()
    ps = 101325.0 - rng.uniform(0, 3000, npix)
    itp = rng.integers(18, 24, npix)
    amf = rng.uniform(1.0, 2.5, npix)
    amf_trop = rng.uniform(0.6, 2.0, npix)
    return a, b, ps, itp, amf, amf_trop


def _model_levels(ps, nlev=25, p_top=5000.0):
    eta = np.linspace(1.0, 0.0, nlev + 1) ** 1.6
    return eta[:, None] * (ps[None, :] - p_top) + p_top          # (nlev+1, npix)


def test_operator_with_unit_tropospheric_kernel_returns_model_column():
    a, b, ps, itp, amf, amf_trop = _tm5_case()
    npix = ps.size
    ak = np.tile((amf_trop / amf)[:, None], (1, 34))                # AK_trop = 1 below tropopause
    pm = _model_levels(ps)
    rng = np.random.default_rng(1)
    vmr = rng.uniform(1e-10, 1e-8, (pm.shape[0] - 1, npix))
    y = tropospheric_column_operator(vmr, pm, ak, a, b, ps, itp, amf, amf_trop)
    # exact model column between the surface and the top of TM5 layer itp (piecewise-constant vmr)
    p_tt = a[itp, 1] + b[itp, 1] * ps
    top = np.minimum(pm[:-1], pm[1:])
    bot = np.maximum(pm[:-1], pm[1:])
    overlap = np.clip(bot - np.maximum(top, p_tt[None]), 0, None)
    expected = np.sum(vmr * overlap, axis=0) / GM
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # reversed model level order gives the same
    y2 = tropospheric_column_operator(vmr[::-1], pm[::-1], ak, a, b, ps, itp, amf, amf_trop)
    np.testing.assert_allclose(y2, expected, rtol=1e-12)


def test_operator_profile_in_one_layer():
    a, b, ps, itp, amf, amf_trop = _tm5_case(npix=4, seed=2)
    pint = tm5_interface_pressures(a, b, ps)                        # (npix, 34, 2)
    pm = np.vstack([pint[:, :, 0].T, pint[:, -1:, 1].T])           # model levels = TM5 layers
    rng = np.random.default_rng(3)
    ak = rng.uniform(0.2, 2.0, (ps.size, 34))
    for layer in (0, 7, 15):
        vmr = np.zeros((34, ps.size))
        vmr[layer] = 3e-9
        x_l = 3e-9 * (pint[:, layer, 0] - pint[:, layer, 1]) / GM
        y = tropospheric_column_operator(vmr, pm, ak, a, b, ps, itp, amf, amf_trop)
        np.testing.assert_allclose(y, ak[:, layer] * amf / amf_trop * x_l, rtol=1e-12)
    # a layer above the tropopause does not count
    vmr = np.zeros((34, ps.size))
    vmr[30] = 3e-9
    y = tropospheric_column_operator(vmr, pm, ak, a, b, ps, itp, amf, amf_trop)
    np.testing.assert_array_equal(y, 0.0)
    # invalid tropopause index -> NaN
    bad = itp.copy()
    bad[0] = INT_FILL
    y = tropospheric_column_operator(vmr, pm, ak, a, b, ps, bad, amf, amf_trop)
    assert np.isnan(y[0]) and np.all(np.isfinite(y[1:]))


@pytest.mark.parametrize("dps", [0.0, 800.0, -800.0])
def test_layer_regridding_conserves_mass(dps):
    a, b, ps, *_ = _tm5_case(npix=6, seed=4)
    pm = _model_levels(ps + dps, nlev=31, p_top=2000.0)               # model surface differs
    rng = np.random.default_rng(5)
    x = partial_columns(rng.uniform(0, 1e-8, (31, ps.size)), pm)
    xt = regrid_partial_columns(x, pm, tm5_interface_pressures(a, b, ps))
    assert xt.shape == (ps.size, 34) and np.all(xt >= 0)
    np.testing.assert_allclose(xt.sum(axis=1), x.sum(axis=0), rtol=1e-12)
    # uniform mixing ratio: each TM5 layer inside the model range gets vmr * dp / (g M)
    if dps == 0.0:
        xu = partial_columns(np.full((31, ps.size), 2e-9), pm)
        xt = regrid_partial_columns(xu, pm, tm5_interface_pressures(a, b, ps))
        pint = tm5_interface_pressures(a, b, ps)
        lay = pint[:, :, 1] >= 2000.0
        np.testing.assert_allclose(xt[lay], (2e-9 * (pint[..., 0] - pint[..., 1]) / GM)[lay],
                                   rtol=1e-10)


# ============================================================================ superobs
def _pixels_from_xy(grid, quads_xy, values, sigmas):
    """Pixel Dataset from quads given as (npix, 4, 2) projected corners (SW, SE, NE, NW)."""
    q = np.asarray(quads_xy, dtype=float)
    lon, lat = grid.to_lonlat(q[..., 0], q[..., 1])
    clon, clat = grid.to_lonlat(q[..., 0].mean(1), q[..., 1].mean(1))
    return xr.Dataset(
        {"nitrogendioxide_tropospheric_column": ("pixel", np.asarray(values, float)),
         "nitrogendioxide_tropospheric_column_precision": ("pixel", np.asarray(sigmas, float)),
         "latitude_bounds": (("pixel", "corner"), lat),
         "longitude_bounds": (("pixel", "corner"), lon)},
        coords={"latitude": ("pixel", clat), "longitude": ("pixel", clon)})


def test_superobs_uniform_field_and_pixel_weights(d01, header, tmp_path):
    lon0, lon1, lat0, lat1 = d01.extent_lonlat
    path = tmp_path / "uniform.nc"
    write_synthetic_tropomi_no2(path, header, (lon0 + 0.3, lon1 - 0.3), (lat0 + 0.3, lat1 - 0.3),
                                "2026-07-20T05:30", lambda lon, lat, p: 3e-9 + 0 * p,
                                n_scanline=30, n_ground_pixel=25, tilt_deg=12.0,
                                tropopause_pressure=20000.0, qa_fn=lambda lon, lat: 1.0 + 0 * lon,
                                surface_pressure_fn=lambda lon, lat: 101000.0 + 0 * lon)
    px = read_tropomi_no2(path)
    col = px["nitrogendioxide_tropospheric_column"].values
    assert np.ptp(col) / col.mean() < 1e-6                       # uniform column
    so = superobservations(px, d01, n_sub=10)
    mean = so["nitrogendioxide_tropospheric_column"].values
    covered = so["n_pixels"].values > 0
    assert covered.sum() > 100
    np.testing.assert_allclose(mean[covered], col.mean(), rtol=1e-6)
    assert np.all(np.isnan(mean[~covered]))
    # fractions of each pixel over cells sum to 1 (pixels lie inside the grid)
    fsum = np.bincount(so["entry_pixel"].values, weights=so["entry_pixel_fraction"].values,
                       minlength=px.sizes["pixel"])
    np.testing.assert_allclose(fsum, 1.0, rtol=1e-12)
    # operator weights: rows sum to 1 and W @ y reproduces the superobs
    W = superobs_weight_matrix(so)
    rows = np.asarray(W.sum(axis=1)).ravel()
    np.testing.assert_allclose(rows[covered.ravel()], 1.0, rtol=1e-12)
    np.testing.assert_allclose((W @ col)[covered.ravel()], mean[covered], rtol=1e-12)
    # errors: measurement error below the pixel precision, representativeness >= 0
    err = so["nitrogendioxide_tropospheric_column_measurement_error"].values[covered]
    assert np.all(err <= px["nitrogendioxide_tropospheric_column_precision"].values.max() + 1e-18)
    rep = so["nitrogendioxide_tropospheric_column_representativeness_error"].values[covered]
    assert np.all(rep >= 0)
    full = so["coverage"].values[covered] >= 1.0
    np.testing.assert_array_equal(rep[full], 0.0)
    assert np.all(~np.isnat(so["time"].values[covered]))


def test_superobs_area_weighting_half_split(d01):
    i, j = 20, 15
    xe, ye = d01.x_edges, d01.y_edges
    dx = d01.dx
    # pixel A straddles the x-edge between cells i-1 and i, exactly half in each
    xa0, xa1 = xe[i] - 0.5 * dx, xe[i] + 0.5 * dx
    ya0, ya1 = ye[j] + 0.2 * dx, ye[j] + 0.8 * dx
    # pixel B lies wholly in cell (j, i-1), smaller
    xb0, xb1 = xe[i - 1] + 0.1 * dx, xe[i - 1] + 0.4 * dx
    yb0, yb1 = ye[j] + 0.1 * dx, ye[j] + 0.9 * dx
    quads = [[(xa0, ya0), (xa1, ya0), (xa1, ya1), (xa0, ya1)],
             [(xb0, yb0), (xb1, yb0), (xb1, yb1), (xb0, yb1)]]
    yv, sv = [4e-5, 1e-4], [1e-5, 2e-5]
    px = _pixels_from_xy(d01, quads, yv, sv)
    so = superobservations(px, d01, n_sub=10, representativeness_relative=0.0)
    cells = so["entry_cell"].values
    fr = so["entry_pixel_fraction"].values
    pa = so["entry_pixel"].values == 0
    assert sorted(cells[pa].tolist()) == [j * d01.nx + i - 1, j * d01.nx + i]
    np.testing.assert_allclose(fr[pa], 0.5, rtol=1e-9)
    # true areas: map-plane area / m^2 at the pixel centre
    m = lambert_map_factor(px["latitude"].values, d01.truelat1, d01.truelat2)
    area = np.array([(xa1 - xa0) * (ya1 - ya0), (xb1 - xb0) * (yb1 - yb0)]) / m**2
    wa, wb = 0.5 * area[0], area[1]
    mean = so["nitrogendioxide_tropospheric_column"].values
    np.testing.assert_allclose(mean[j, i - 1], (wa * yv[0] + wb * yv[1]) / (wa + wb), rtol=1e-9)
    np.testing.assert_allclose(mean[j, i], yv[0], rtol=1e-12)
    err = so["nitrogendioxide_tropospheric_column_measurement_error"].values
    np.testing.assert_allclose(err[j, i - 1],
                               np.sqrt((wa * sv[0]) ** 2 + (wb * sv[1]) ** 2) / (wa + wb),
                               rtol=1e-9)
    assert so["n_pixels"].values[j, i - 1] == 2 and so["n_pixels"].values[j, i] == 1
    cov = so["coverage"].values
    np.testing.assert_allclose(cov[j, i], wa / d01.cell_area[j, i], rtol=1e-9)
    # representativeness term: rel * |mean| * (1 - coverage)
    so2 = superobservations(px, d01, n_sub=10, representativeness_relative=0.2)
    rep = so2["nitrogendioxide_tropospheric_column_representativeness_error"].values
    np.testing.assert_allclose(rep[j, i], 0.2 * yv[0] * (1 - cov[j, i]), rtol=1e-12)
    tot = so2["nitrogendioxide_tropospheric_column_error"].values
    np.testing.assert_allclose(tot[j, i], np.hypot(err[j, i], rep[j, i]), rtol=1e-12)


def test_superobs_pixel_partly_outside_grid(d01):
    xe, ye = d01.x_edges, d01.y_edges
    dx = d01.dx
    quads = [[(xe[0] - 0.5 * dx, ye[3]), (xe[0] + 0.5 * dx, ye[3]),
              (xe[0] + 0.5 * dx, ye[4]), (xe[0] - 0.5 * dx, ye[4])]]
    so = superobservations(_pixels_from_xy(d01, quads, [1e-4], [1e-5]), d01)
    np.testing.assert_allclose(so["entry_pixel_fraction"].values.sum(), 0.5, rtol=1e-9)
    assert so["n_pixels"].values.sum() == 1
    np.testing.assert_allclose(so["nitrogendioxide_tropospheric_column"].values[3, 0], 1e-4)
