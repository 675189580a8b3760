"""Emissions: regridding conservation, temporal/vertical profiles, speciation, scaling, tags, I/O."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import shapely
import xarray as xr

from aqforecast.emissions import (POLLUTANTS, ConservativeRegridder, EmissionModel,
                                  GriddedInventory, PlumeMet, PointSources, ScalingTable,
                                  Speciation, SpeciationFactors, TemporalProfiles,
                                  briggs_plume_rise, buoyancy_flux, layer_fractions,
                                  overlap_weights, read_area_sources, read_gridded_inventory,
                                  read_point_sources, region_fractions, stack_layer_fractions)
from aqforecast.grid import LambertGrid, VerticalGrid
from aqforecast.io import InputFileError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data_sample"


@pytest.fixture(scope="module")
def grid():
    return LambertGrid.centred("g", 30, 24, 3000.0, 120.3, 30.3, 25.0, 40.0, 120.5, 30.3,
                               VerticalGrid.stretched(8))


def _inventory(lon0, lon1, lat0, lat1, res=0.05, sectors=("industry", "power"), seed=0):
    lon_e = np.round(np.arange(lon0, lon1 + 1e-9, res), 6)
    lat_e = np.round(np.arange(lat0, lat1 + 1e-9, res), 6)
    rng = np.random.default_rng(seed)
    mass = rng.random((1, len(sectors), len(POLLUTANTS), lat_e.size - 1, lon_e.size - 1)) * 100
    return GriddedInventory(lon_e, lat_e, sectors, mass)


# ------------------------------------------------------------------------------- regridding
def test_overlap_weights_hand_case():
    # one 2x2 source square over four unit target squares, shifted by (0.5, 0.5)
    src = np.array([shapely.box(0.5, 0.5, 2.5, 2.5)])
    dst = np.array([shapely.box(i, j, i + 1, j + 1) for j in range(3) for i in range(3)])
    w = overlap_weights(src, dst).toarray()[:, 0].reshape(3, 3)
    # corner cells get 0.25 of 4 area units, edge cells 0.5, centre 1 -> / 4
    np.testing.assert_allclose(w, np.array([[0.25, 0.5, 0.25], [0.5, 1, 0.5],
                                            [0.25, 0.5, 0.25]]) / 4, atol=1e-15)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)


def test_regrid_conserves_total_inside(grid):
    lo0, lo1, la0, la1 = grid.extent_lonlat
    inv = _inventory(120.2, 120.5, 30.2, 30.45)       # fully inside the grid
    rg = ConservativeRegridder(grid, inv.lon_edges, inv.lat_edges)
    out = rg(inv.mass)
    assert out.shape == inv.mass.shape[:3] + (grid.ny, grid.nx)
    np.testing.assert_allclose(out.sum(axis=(-2, -1)), inv.mass.sum(axis=(-2, -1)), rtol=1e-10)
    assert abs(out.sum() - inv.mass.sum()) <= 1e-10 * inv.mass.sum()
    assert rg.outside_fraction(inv.mass) == pytest.approx(0.0, abs=1e-12)
    # partly outside: the inside part is conserved and the outside fraction is reported
    inv2 = _inventory(lo0 - 0.3, lo1 + 0.3, la0 - 0.2, la1 + 0.2, res=0.1)
    rg2 = ConservativeRegridder(grid, inv2.lon_edges, inv2.lat_edges)
    out2 = rg2(inv2.mass)
    inside = (inv2.mass * rg2.fraction_inside).sum()
    assert abs(out2.sum() - inside) <= 1e-10 * inside
    f_out = rg2.outside_fraction(inv2.mass)
    assert 0.2 < f_out < 0.8
    assert out2.sum() == pytest.approx(inv2.mass.sum() * (1 - f_out), rel=1e-12)
    assert rg2.fraction_inside.max() == pytest.approx(1.0, abs=1e-12)


def test_regrid_uniform_density_gives_area_proportional_mass(grid):
    # uniform emission per unit area in the lon/lat plane -> model cells get mass ~ cell area
    inv = _inventory(120.0, 120.6, 30.0, 30.6, res=0.1)
    lat_c = 0.5 * (inv.lat_edges[1:] + inv.lat_edges[:-1])
    area = np.cos(np.deg2rad(lat_c))[:, None] * np.ones((lat_c.size, 6))
    out = ConservativeRegridder(grid, inv.lon_edges, inv.lat_edges)(area)
    clon, clat = grid.corner_lonlat
    ok = (clon > 120.0) & (clon < 120.6) & (clat > 30.0) & (clat < 30.6)
    interior = ok[:-1, :-1] & ok[1:, :-1] & ok[:-1, 1:] & ok[1:, 1:]
    assert interior.sum() > 100
    d = (out / grid.cell_area)[interior]
    assert d.std() / d.mean() < 2e-3


# ------------------------------------------------------------------------------- temporal
def test_temporal_profiles_preserve_annual_and_monthly_totals():
    tp = TemporalProfiles()
    start = datetime(2017, 1, 1) - timedelta(hours=8)      # local midnight 1 Jan, in UTC
    hours = [start + timedelta(hours=h) for h in range(365 * 24)]
    for sector in ("power", "industry", "residential", "transport", "agriculture", "other"):
        total = sum(tp.fraction_of_year(sector, t) for t in hours)
        assert total == pytest.approx(1.0, abs=1e-12), sector
    # a local calendar month sums to 1 of a monthly inventory total
    feb = [datetime(2017, 2, 1) - timedelta(hours=8) + timedelta(hours=h)
           for h in range(calendar.monthrange(2017, 2)[1] * 24)]
    assert sum(tp.fraction_of_month("transport", t) for t in feb) == pytest.approx(1.0,
                                                                                    abs=1e-12)


def test_hour_of_day_is_local_china_time():
    tp = TemporalProfiles()
    p = tp.profile("transport")
    # 2017-07-19 (Wednesday) 00 UTC is 08 local: the morning rush-hour factor
    t = datetime(2017, 7, 19, 0)
    day_hour = tp.fraction_of_month("transport", t)
    expect_day = p.weekday[2] / sum(p.weekday[(calendar.weekday(2017, 7, 1) + d) % 7]
                                    for d in range(31))
    assert day_hour == pytest.approx(expect_day * p.hour[8] / p.hour.sum(), rel=1e-14)
    assert tp.local_time(datetime(2017, 12, 31, 20)) == datetime(2018, 1, 1, 4)


def test_temporal_profile_csv(tmp_path):
    p = tmp_path / "prof.csv"
    p.write_text("sector,kind,index,factor\npower,hour,0,5.0\nnew,month,7,3\n")
    tp = TemporalProfiles.from_csv(p)
    assert tp.profile("power").hour[0] == 5.0
    assert tp.profile("new").month[6] == 3.0
    p.write_text("sector,kind,index,factor\npower,hour,24,1.0\n")
    with pytest.raises(InputFileError, match=r"line 2, column 'index'"):
        TemporalProfiles.from_csv(p)


# ------------------------------------------------------------------------------- vertical
def test_briggs_plume_rise_spot_values():
    # stack 240 m, d 7.5 m, v 20 m/s, Ts 323 K, Ta 293 K, u 5 m/s, u* 0.3 m/s
    F = 0.25 * 9.81 * 20 * 7.5**2 * (323 - 293) / 323
    assert buoyancy_flux(7.5, 20, 323, 293) == pytest.approx(F, rel=1e-12)
    assert F == pytest.approx(256.2597, rel=1e-6)
    args = (240.0, 7.5, 20.0, 323.0, 293.0, 5.0)
    # neutral: 1.2 (F/(u u*^2))^0.6 (hs + 1.3 F/(u u*^2))^0.4
    b = F / (5 * 0.09)
    neutral = min(2400.0, 1.2 * b**0.6 * (240 + 1.3 * b) ** 0.4)
    assert briggs_plume_rise(*args, ustar=0.3) == pytest.approx(neutral, rel=1e-12)
    assert neutral == pytest.approx(849.19, rel=1e-4)
    # convective below the mixing height: min(neutral, 30 (F/u)^0.6) vs momentum 3 d v / u
    unstable = 30 * (F / 5) ** 0.6
    got = briggs_plume_rise(*args, ustar=0.3, heat_flux_kin=0.1, mixing_height=1500.0)
    assert got == pytest.approx(max(min(neutral, unstable), 90.0), rel=1e-12)
    assert got == pytest.approx(318.38, rel=1e-4)
    # stable: 2.6 (F / (u s))^(1/3), s = g/T dtheta/dz
    s = 9.81 * 0.01 / 293
    got = briggs_plume_rise(*args, ustar=0.3, dthetadz=0.01)
    assert got == pytest.approx(2.6 * (F / (5 * s)) ** (1 / 3), rel=1e-12)
    assert got == pytest.approx(139.08, rel=1e-4)
    # cold plume: momentum rise only, at least 2 m
    assert briggs_plume_rise(50, 1.0, 5.0, 280.0, 293.0, 5.0) == pytest.approx(3.0)


def test_layer_fractions_and_stack_allocation():
    z = np.array([0, 50, 100, 200, 400, 800.0])
    np.testing.assert_allclose(layer_fractions(z, 75, 175), [0, 0.25, 0.75, 0, 0])
    np.testing.assert_allclose(layer_fractions(z, 120, 120), [0, 0, 1, 0, 0])
    np.testing.assert_allclose(layer_fractions(z, 900, 1000), [0, 0, 0, 0, 1])
    pts = PointSources(("a",), np.array([120.0]), np.array([30.0]), np.array([150.0]),
                       np.array([7.5]), np.array([20.0]), np.array([323.0]), ("power",),
                       np.ones((1, len(POLLUTANTS))))
    cells = (np.array([0]), np.array([0]))
    # without plume meteorology: the stack-top layer
    np.testing.assert_allclose(stack_layer_fractions(pts, cells, PlumeMet(z))[0],
                               [0, 0, 1, 0, 0])
    met = PlumeMet(z, temperature=np.full(5, 293.0)[:, None, None],
                   wind_speed=np.full(5, 5.0)[:, None, None], ustar=np.array([[0.3]]),
                   dthetadz=np.full(5, 0.01)[:, None, None])
    dh = briggs_plume_rise(150, 7.5, 20, 323, 293, 5, 0.3, 0.0, 1000.0, 0.01)
    fr = stack_layer_fractions(pts, cells, met)[0]
    np.testing.assert_allclose(fr, layer_fractions(z, 150 + 0.5 * dh, 150 + 1.5 * dh))
    assert fr.sum() == pytest.approx(1.0) and fr[:2].sum() == 0


# ------------------------------------------------------------------------------- speciation
def test_speciation_conserves_n_s_c():
    sp = Speciation(("NO", "NO2", "ROC", "SO2", "SO4", "CO", "NH3", "PPM25", "PPM10", "NO3"),
                    per_sector={"x": SpeciationFactors(pm25_sulfate_fraction=0.1,
                                                       pm25_nitrate_fraction=0.05)})
    m = dict(zip(POLLUTANTS, np.array([3.0, 5.0, 7.0, 11.0, 13.0, 17.0, 19.0])))  # Mg
    for sector in ("industry", "x"):
        out = dict(zip(sp.species, sp.matrix(sector) @ np.array(list(m.values()))))
        f = sp.factors(sector)
        # N: mol NO + NO2 = mol NOx (as NO2); NO/NO2 molar 90/10
        assert out["NO"] + out["NO2"] == pytest.approx(5.0e6 / 46.006, rel=1e-14)
        assert out["NO"] / out["NO2"] == pytest.approx(9.0)
        # S: mol SO2 + mol SO4 from SOx = mol SOx; (PM2.5 sulfate comes on top, by mass)
        so4_from_pm = f.pm25_sulfate_fraction * 17.0e3
        assert out["SO2"] + (out["SO4"] - so4_from_pm) * 1e3 / 96.062 == pytest.approx(
            3.0e6 / 64.064, rel=1e-14)
        # C: ROC (mol C) = NMVOC mass x carbon fraction / 12.011
        assert out["ROC"] == pytest.approx(11.0e6 * 0.80 / 12.011, rel=1e-14)
        assert out["CO"] == pytest.approx(7.0e6 / 28.010, rel=1e-14)
        assert out["NH3"] == pytest.approx(13.0e6 / 17.031, rel=1e-14)
        # PM mass: fine + primary SO4/NO3 from PM2.5 = PM2.5 mass; coarse = PMC
        assert out["PPM25"] + so4_from_pm + out["NO3"] == pytest.approx(17.0e3, rel=1e-14)
        assert out["PPM10"] == pytest.approx(19.0e3)


# ------------------------------------------------------------------------------- scaling
def test_scaling_table_resolution():
    """Matching rows multiply (the issue #16 contract; before, the most specific key won)."""
    regions, sectors = ("A", "B", "outside"), ("industry", "power")
    t = ScalingTable({("A", "industry", "NOx"): 0.7, ("*", "power", "*"): 0.5,
                      ("B", "*", "PM10"): 2.0, ("B", "power", "PM2.5"): 3.0})
    f = t.resolve(regions, sectors)
    P = {p: k for k, p in enumerate(POLLUTANTS)}
    assert f[0, 0, P["NOx"]] == 0.7 and f[0, 0, P["SO2"]] == 1.0 and f[1, 0, P["NOx"]] == 1.0
    assert np.all(f[:, 1, P["SO2"]] == 0.5)
    assert f[1, 0, P["PM25"]] == 2.0 and f[1, 0, P["PMC"]] == 2.0
    assert f[1, 1, P["PM25"]] == 2.0 * 3.0 * 0.5     # every matching row multiplies
    assert f[1, 1, P["PMC"]] == 2.0 * 0.5
    g = ScalingTable({("A", "*", "NOx"): 0.5, ("*", "industry", "NOx"): 0.7}).resolve(
        regions, sectors)
    assert g[0, 0, P["NOx"]] == 0.5 * 0.7 and g[1, 0, P["NOx"]] == 0.7
    with pytest.raises(KeyError, match="unknown region 'Hangzou'"):
        ScalingTable({("Hangzou", "power", "NOx"): 0.5}).resolve(regions, sectors)
    with pytest.raises(KeyError, match="unknown pollutant"):
        ScalingTable({("A", "power", "O3"): 0.5})


# ------------------------------------------------------------------------------- model
@pytest.fixture(scope="module")
def model(grid):
    inv = _inventory(120.0, 120.6, 30.0, 30.6, res=0.1, sectors=("industry", "power"))
    regions = region_fractions(grid, [("A", shapely.box(119.9, 30.0, 120.3, 30.6)),
                                      ("B", shapely.box(120.3, 30.0, 120.7, 30.6))])
    pts = PointSources(("s1", "s2", "far"), np.array([120.1, 120.45, 125.0]),
                       np.array([30.2, 30.4, 30.0]), np.array([100.0, 30.0, 50.0]),
                       np.full(3, 4.0), np.full(3, 15.0), np.full(3, 400.0),
                       ("power", "industry", "power"), np.full((3, len(POLLUTANTS)), 1000.0))
    return EmissionModel(grid, inv, pts, regions=regions,
                         species=("NO", "NO2", "ROC", "SO2", "SO4", "CO", "NH3", "PPM25",
                                  "PPM10"))


def test_point_source_cells(model, grid):
    j, i = grid.locate([120.1, 120.45], [30.2, 30.4])
    assert [tuple(c) for c in model.columns] == sorted(zip(j.tolist(), i.tolist()))
    assert model.report["points_outside"] == ["far"]
    f = model.emissions(datetime(2017, 7, 19, 6))
    dense = f.to_dense()
    # the 100 m stack puts its power-sector NOx above layer 1 in its own cell only
    k = f.index("NO")
    jj, ii = int(j[0]), int(i[0])
    assert dense[k, 1:, jj, ii].sum() > 0
    above = dense[k, 1:].sum(axis=0)
    assert np.count_nonzero(above) <= 2


def test_dense_fields_of_the_emitting_layers_only(model):
    """to_dense(emitting_layers()) is the full field without its empty upper layers."""
    t = datetime(2017, 7, 19, 6)
    for f in (model.emissions(t), model.tagged_emissions(t)):
        full = f.to_dense()
        ne = f.emitting_layers()
        assert 1 < ne < full.shape[-3]  # the 100 m stack reaches above layer 1
        assert np.array_equal(f.to_dense(ne), full[..., :ne, :, :])
        assert not full[..., ne:, :, :].any() and full[..., ne - 1, :, :].any()
    with pytest.raises(ValueError, match="nlayers"):
        f.to_dense(0)


def test_tag_split_sums_to_total_exactly(model):
    t = datetime(2017, 7, 19, 6)
    tagged = model.tagged_emissions(t)
    bulk = model.emissions(t)
    assert len(model.tags) == tagged.surface.shape[0] == 3 * 2
    assert np.array_equal(tagged.surface.sum(axis=0), bulk.surface)
    assert np.array_equal(tagged.elevated.sum(axis=0), bulk.elevated)
    np.testing.assert_allclose(tagged.to_dense().sum(axis=0), bulk.to_dense(), rtol=1e-14)


def test_total_flux_matches_inventory_and_profiles(model, grid):
    t = datetime(2017, 7, 19, 6)
    f = model.emissions(t)
    tp = model.temporal
    # domain-integrated CO (mol/s) = sum_sector annual Mg x hourly fraction / 3600 x 1e6/28.01
    ann = model.annual_mass()
    expect = sum(ann[s, POLLUTANTS.index("CO")] * tp.fraction_of_year(sec, t) / 3600.0
                 for s, sec in enumerate(model.sectors)) * 1e6 / 28.010
    got = (f.column_total()[f.index("CO")] * grid.cell_area).sum()
    assert got == pytest.approx(expect, rel=1e-12)


def test_scaling_applies_to_region_and_sector_only(model, grid):
    t = datetime(2017, 7, 19, 6)
    base = model.tagged_emissions(t)
    cut = model.tagged_emissions(t, scaling={("A", "industry", "NOx"): 0.5})
    k_no, k_so2 = base.species.index("NO"), base.species.index("SO2")
    for n, (r, s) in enumerate(model.tags):
        b, c = base.to_dense()[n], cut.to_dense()[n]
        if (r, s) == ("A", "industry"):
            np.testing.assert_allclose(c[k_no], 0.5 * b[k_no], rtol=1e-14)
            assert b[k_no].sum() > 0
        else:
            np.testing.assert_array_equal(c[k_no], b[k_no])
        np.testing.assert_array_equal(c[k_so2], b[k_so2])


# ------------------------------------------------------------------------------- input errors
def _write_points(path, rows):
    head = ("id,sector,lon,lat,stack_height_m,stack_diameter_m,exit_velocity_ms,"
            "exit_temperature_k,NOx,SO2,PM2.5,PM10\n")
    path.write_text(head + "".join(r + "\n" for r in rows))
    return path


def test_point_csv_reads_and_reports_bad_rows(tmp_path):
    p = _write_points(tmp_path / "p.csv", ["a,power,120.1,30.2,100,4,15,400,10,5,2,3"])
    pts = read_point_sources(p)
    assert pts.rates[0, POLLUTANTS.index("PMC")] == pytest.approx(1.0)
    assert pts.rates[0, POLLUTANTS.index("NOx")] == 10.0
    cases = [
        ("a,power,120.1,30.2,100,4,15,400,ten,5,2,3", r"line 3, column 'NOx': 'ten' is not"),
        ("a,power,120.1,30.2,100,0,15,400,1,5,2,3", r"line 3, column 'stack_diameter_m'"),
        ("a,power,120.1,30.2,100,4,15,400,1,-5,2,3", r"line 3, column 'SO2'.*>= 0"),
        ("a,power,120.1,30.2,100,4,15,400,1,5,2", r"line 3: 11 fields, expected 12"),
        ("a,power,120.1,30.2,100,4,15,400,1,5,4,3", r"line 3: PM10 < PM2.5"),
    ]
    for row, msg in cases:
        p = _write_points(tmp_path / "bad.csv", ["# comment line", row])
        with pytest.raises(InputFileError, match=msg) as e:
            read_point_sources(p)
        assert "bad.csv" in str(e.value)
    p.write_text("id,sector,lon,lat\nx,power,1,2\n")
    with pytest.raises(InputFileError, match="missing column"):
        read_point_sources(p)


def test_area_csv(tmp_path, grid):
    p = tmp_path / "a.csv"
    p.write_text('id,sector,wkt,lon,lat,NOx\n'
                 'poly,industry,"POLYGON ((120.1 30.1, 120.3 30.1, 120.3 30.3, 120.1 30.1))",,,10\n'
                 'cell,transport,,120.2,30.2,5\n')
    a = read_area_sources(p)
    assert [g.geom_type for g in a.geometry] == ["Polygon", "Point"]
    em = EmissionModel(grid, area=a)
    np.testing.assert_allclose(em.annual_mass()[:, POLLUTANTS.index("NOx")], [10.0, 5.0],
                               rtol=1e-12)
    p.write_text('id,sector,wkt,NOx\nbad,industry,"POLYGON ((1 2",1\n')
    with pytest.raises(InputFileError, match=r"line 2, column 'wkt'"):
        read_area_sources(p)


def test_gridded_netcdf_validation(tmp_path):
    lon = np.array([120.05, 120.15, 120.25])
    lat = np.array([30.15, 30.05])                       # decreasing: flipped on read
    data = np.arange(12.0).reshape(2, 2, 3)
    ds = xr.Dataset({"NOx": (("sector", "lat", "lon"), data, {"units": "Mg year-1"}),
                     "PM25": (("sector", "lat", "lon"), data, {"units": "t/yr"}),
                     "PM10": (("sector", "lat", "lon"), 2 * data, {"units": "Mg year-1"})},
                    coords={"lon": lon, "lat": lat, "sector": ["industry", "power"]})
    ds.to_netcdf(tmp_path / "ok.nc")
    inv = read_gridded_inventory(tmp_path / "ok.nc")
    np.testing.assert_allclose(inv.lat_edges, [30.0, 30.1, 30.2])
    np.testing.assert_allclose(inv.mass[0, :, POLLUTANTS.index("NOx")], data[:, ::-1])
    np.testing.assert_allclose(inv.mass[0, :, POLLUTANTS.index("PMC")], data[:, ::-1])
    ds.drop_vars("lon").to_netcdf(tmp_path / "nolon.nc")
    with pytest.raises(InputFileError, match=r"nolon.nc: .*coordinate variable 'lon'"):
        read_gridded_inventory(tmp_path / "nolon.nc")
    ds[["lat", "lon"]].assign_coords(sector=["a"]).to_netcdf(tmp_path / "novar.nc")
    with pytest.raises(InputFileError, match=r"novar.nc: no emission variables"):
        read_gridded_inventory(tmp_path / "novar.nc")
    bad = ds.copy()
    bad["NOx"].attrs["units"] = "kg m-2 s-1"
    bad.to_netcdf(tmp_path / "units.nc")
    with pytest.raises(InputFileError, match=r"variable 'NOx' has units 'kg m-2 s-1'"):
        read_gridded_inventory(tmp_path / "units.nc")
    ds.assign(NOx=(("lat", "lon", "sector"), data.transpose(1, 2, 0),
                   {"units": "Mg year-1"})).to_netcdf(tmp_path / "dims.nc")
    with pytest.raises(InputFileError, match=r"variable 'NOx' has dims \('lat', 'lon', 'sector'\)"):
        read_gridded_inventory(tmp_path / "dims.nc")
    neg = ds.copy()
    neg["NOx"] = neg["NOx"] - 5
    neg.to_netcdf(tmp_path / "neg.nc")
    with pytest.raises(InputFileError, match=r"'NOx' has 5 negative"):
        read_gridded_inventory(tmp_path / "neg.nc")


def test_monthly_layout_a(tmp_path, grid):
    lon = np.round(np.arange(120.05, 120.5, 0.1), 6)
    lat = np.round(np.arange(30.05, 30.5, 0.1), 6)
    data = np.ones((12, 1, 2, lat.size, lon.size))
    data[6] *= 2.0
    ds = xr.Dataset({"emissions": (("month", "sector", "species", "lat", "lon"), data,
                                   {"units": "Mg month-1"})},
                    coords={"lon": lon, "lat": lat, "sector": ["industry"],
                            "species": ["NOx", "CO"]})
    ds.to_netcdf(tmp_path / "m.nc")
    inv = read_gridded_inventory(tmp_path / "m.nc")
    assert inv.period == "month" and inv.mass.shape == (12, 1, 7, lat.size, lon.size)
    em = EmissionModel(grid, inv)
    # hours of local July sum to the July total of the inventory (all inside the grid)
    start = datetime(2017, 7, 1) - timedelta(hours=8)
    tot = sum((em.emissions(start + timedelta(hours=h)).column_total()[em.species.index("CO")]
               * grid.cell_area).sum() * 3600 for h in range(31 * 24))
    assert tot == pytest.approx(2.0 * lat.size * lon.size * 1e6 / 28.010, rel=1e-10)


# ------------------------------------------------------------------------------- sample case
def test_sample_case_builds(sample_config):
    from aqforecast.config import load_config
    from aqforecast.grid import grids_from_config

    cfg = load_config(sample_config)
    grids = grids_from_config(cfg)
    inv = read_gridded_inventory(SAMPLE / "emissions" / "inventory_yrd2017_sample.nc")
    assert inv.sectors == ("industry", "power", "residential", "transport", "agriculture")
    em = EmissionModel.from_config(cfg, grids["d01"])
    assert em.regions.names[:5] == ("Hangzhou", "Jiaxing", "Huzhou", "Shaoxing", "Ningbo")
    f = em.emissions(datetime(2026, 7, 20, 0))
    assert np.all(f.surface >= 0) and f.surface[f.index("NO")].max() > 0
    assert 0.3 < em.report["gridded_outside_fraction"]["NOx"] < 0.8
    assert "P01" not in em.report["points_outside"]


def test_inventory_base_year_must_match_the_config(sample_config, tmp_path):
    """inputs.emissions.base_year describes the inventory: a file that says otherwise (its
    base_year attribute) is refused, naming the file and both years."""
    import yaml

    from aqforecast.config import load_config, read_yaml
    from aqforecast.grid import grids_from_config
    from aqforecast.io import InputFileError

    data = read_yaml(sample_config)
    data["base_dir"] = str(sample_config.parent.parent)
    data["inputs"]["emissions"]["base_year"] = 2020
    if hasattr(data["time"]["start"], "isoformat"):
        data["time"]["start"] = data["time"]["start"].isoformat()
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    cfg = load_config(path)
    with pytest.raises(InputFileError, match=r"inventory_yrd2017_sample.nc: inventory attribute "
                                             r"base_year = 2017, but inputs.emissions.base_year "
                                             r"is 2020"):
        EmissionModel.from_config(cfg, grids_from_config(cfg)["d01"])
