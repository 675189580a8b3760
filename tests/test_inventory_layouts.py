"""Gridded inventories in their distributors' layouts give the same gridded totals on the model
grid as the native layout (to 1e-10): EDGAR v8.1 (global 0.1 deg fluxes and annual masses, one
file per substance and sector), CAMS-GLOB-ANT (global 0.1 deg, one file per species, one variable
per sector, monthly over several years), MEIC (per month/sector/species ESRI ASCII grids and
GMT-style NetCDF) and a sector dimension labelled by CF flags. Each test writes the same
emissions (a native GriddedInventory) in the layout, reads it back through the config's
layout description and compares the regridded fields; plus units, unknown variables and errors.

Layouts as distributed (checked with the search tool):
* EDGAR v8.1 air pollutants: ``v8.1_FT2022_AP_{substance}_{year}_{sector}_flx.nc`` holds
  ``fluxes`` (kg m-2 s-1) and ``..._emi.nc`` holds ``emissions`` ("Tonnes" per cell per year,
  attributes substance/long_name/year) on lat -89.95..89.95, lon -179.95..179.95 at 0.1 deg
  (atmoschem/EmissV docs, ``read(version = "EDGARv8")`` reads ``fluxes`` from
  v8.1_FT2022_AP_NOx_2022_TOTALS_flx.nc; C2SM-RCM/emiproc
  emiproc/inventories/edgar/edgarv8.py asserts units "Tonnes" on ``emissions``).
* CAMS-GLOB-ANT (ECCAD): ``CAMS-GLOB-ANT_v5.3_{species}_{year}.nc`` with species
  ``nitrogen-oxides``, ``sulphur-dioxide``, ``carbon-monoxide``..., one variable per sector
  (``ene ind res tro tnr ags agl swd slv fef shp`` and ``sum``, their total) with dims
  (time, lat, lon), monthly, ``kg m-2 s-1`` (meteoinfo/EMIPS CAMS reader; a WRF-Chem CAMS v5.3
  preprocessor that checks dims ("time", "lat", "lon") and units "kg m-2 s-1").
* MEIC: per month, sector, species files ``{yyyy}_{mm}__{sector}__{species}.nc`` (zxdawn/pyXZ
  XZ_model/MEIC/README.md) in GMT NetCDF (``x_range``, ``y_range``, ``spacing``, ``dimension``,
  ``z`` flattened from the north; its mozcart.py) or ESRI ASCII grids; sectors agriculture,
  industry, power, residential, transportation; t per grid cell per month.
"""

from __future__ import annotations

import logging
from datetime import datetime

import netCDF4
import numpy as np
import pytest
import xarray as xr

from aqforecast.emissions import (POLLUTANTS, EmissionModel, GriddedInventory, InventoryLayout,
                                  cell_area_lonlat, parse_emission_units,
                                  read_gridded_inventory, read_mapping, read_pattern_inventory)
from aqforecast.emissions.units import UnitsError
from aqforecast.grid import LambertGrid, VerticalGrid
from aqforecast.io import InputFileError

R_EARTH = 6_370_000.0  # the model's sphere (aqforecast.constants.EARTH_RADIUS, WRF's)
P = {p: k for k, p in enumerate(POLLUTANTS)}


@pytest.fixture(scope="module")
def grid():
    return LambertGrid.centred("g", 30, 24, 3000.0, 120.3, 30.3, 25.0, 40.0, 120.5, 30.3,
                               VerticalGrid.stretched(8))


def _area(lon_e, lat_e):
    """Cell areas on the sphere, written out here independently of the package."""
    return (R_EARTH ** 2 * np.diff(np.sin(np.radians(lat_e)))[:, None]
            * np.diff(np.radians(lon_e))[None, :])


def _seconds(year, month=None):
    if month is None:
        return (datetime(year + 1, 1, 1) - datetime(year, 1, 1)).total_seconds()
    nxt = datetime(year + (month == 12), month % 12 + 1, 1)
    return (nxt - datetime(year, month, 1)).total_seconds()


def _reference(lon_e, lat_e, sectors, pols, nper, seed, mask=None):
    """A native inventory with random Mg per cell per period in ``pols`` (PMC included)."""
    rng = np.random.default_rng(seed)
    mass = np.zeros((nper, len(sectors), len(POLLUTANTS), lat_e.size - 1, lon_e.size - 1))
    for p in pols:
        mass[:, :, P[p]] = rng.uniform(0.0, 50.0, mass[:, :, P[p]].shape)
    if mask is not None:
        mass[..., mask] = 0.0
    return GriddedInventory(lon_e, lat_e, sectors, mass, "month" if nper == 12 else "year")


def _same(grid, ref, invs, times=()):
    """The regridded fields of ``invs`` equal those of the native ``ref`` to 1e-10."""
    a_em, b_em = EmissionModel(grid, ref), EmissionModel(grid, invs)
    assert set(a_em.sectors) == set(b_em.sectors)
    a, b = a_em.annual_cell_mass(), b_em.annual_cell_mass()
    assert a.sum() > 0
    for s in a_em.sectors:
        np.testing.assert_allclose(b[b_em.sectors.index(s)], a[a_em.sectors.index(s)],
                                   rtol=1e-10, atol=1e-10 * np.abs(a).max())
    assert abs(b.sum() - a.sum()) <= 1e-10 * a.sum()
    for t in times:
        fa, fb = a_em.emissions(t).surface, b_em.emissions(t).surface
        np.testing.assert_allclose(fb, fa, rtol=1e-10, atol=1e-10 * np.abs(fa).max())
    return a_em, b_em


def _mapping(tmp_path, text):
    p = tmp_path / "mapping.yaml"
    p.write_text(text)
    return read_mapping(p)


# --------------------------------------------------------------------------- global 0.1 deg
GLAT = np.round(-89.95 + 0.1 * np.arange(1800), 2)
GLON = np.round(-179.95 + 0.1 * np.arange(3600), 2)
WIN_LAT = slice(1196, 1210)   # 29.6 .. 31.0 N
WIN_LON = slice(2995, 3012)   # 119.5 .. 121.2 E


def _window_edges():
    lat, lon = GLAT[WIN_LAT], GLON[WIN_LON]
    return (np.concatenate([lon - 0.05, lon[-1:] + 0.05]),
            np.concatenate([lat - 0.05, lat[-1:] + 0.05]))


def _global_file(path, variables, times=None):
    """A global 0.1 deg file written the distributors' way (CF lat/lon, compressed chunks);
    ``variables``: {name: (attrs, window values (nt?, nlat, nlon))}. Cells outside the window
    are left unwritten (the declared fill value: no emission) so the test stays fast."""
    with netCDF4.Dataset(path, "w") as nc:
        dims = ("lat", "lon")
        if times is not None:
            nc.createDimension("time", len(times))
            t = nc.createVariable("time", "f8", ("time",))
            t.units, t.calendar, t.standard_name = "days since 2000-01-01", "standard", "time"
            t[:] = netCDF4.date2num(times, t.units, t.calendar)
            dims = ("time",) + dims
        nc.createDimension("lat", GLAT.size)
        nc.createDimension("lon", GLON.size)
        for name, vals, att in (("lat", GLAT, {"standard_name": "latitude",
                                               "units": "degrees_north", "long_name": "latitude"}),
                                ("lon", GLON, {"standard_name": "longitude",
                                               "units": "degrees_east", "long_name": "longitude"})):
            v = nc.createVariable(name, "f8", (name,))
            v.setncatts(att)
            v[:] = vals
        for name, (attrs, data) in variables.items():
            v = nc.createVariable(name, "f8", dims, zlib=True, complevel=1, fill_value=0.0,
                                  chunksizes=(1,) * (len(dims) - 2) + (180, 360))
            v.setncatts(attrs)
            v[..., WIN_LAT, WIN_LON] = data


EDGAR_SECTORS = {"ENE": "power", "IND": "industry", "TRO": "transport"}
EDGAR_SPECIES = {"NOx": "NOx", "SO2": "SO2", "PM2.5": "PM25", "PM10": None, "BC": None}


@pytest.mark.parametrize("kind", ["flx", "emi"])
def test_edgar_v8_global_files_match_native(tmp_path, grid, kind):
    lon_e, lat_e = _window_edges()
    ref = _reference(lon_e, lat_e, tuple(EDGAR_SECTORS.values()), ["NOx", "SO2", "PM25", "PMC"],
                     1, seed=1)
    area, secs = _area(lon_e, lat_e), _seconds(2022)
    rng = np.random.default_rng(7)
    for sec, model_sec in EDGAR_SECTORS.items():
        k = ref.sectors.index(model_sec)
        for sp, pol in EDGAR_SPECIES.items():
            m = ref.mass[0, k]
            mg = {"NOx": m[P["NOx"]], "SO2": m[P["SO2"]], "PM2.5": m[P["PM25"]],
                  "PM10": m[P["PM25"]] + m[P["PMC"]],
                  "BC": rng.uniform(0, 1, m[0].shape)}[sp]
            if kind == "flx":
                name, data, units = "fluxes", mg * 1e3 / (area * secs), "kg m-2 s-1"
            else:
                name, data, units = "emissions", mg, "Tonnes"
            _global_file(tmp_path / f"v8.1_FT2022_AP_{sp}_2022_{sec}_{kind}.nc",
                         {name: ({"units": units, "substance": sp, "year": 2022,
                                  "long_name": f"{sec} emissions"}, data)})
    mapping = _mapping(tmp_path, "species: {BC: null}\n"
                                 "sectors: {ENE: power, IND: industry, TRO: transport}\n")
    layout = InventoryLayout(str(tmp_path / f"v8.1_FT2022_AP_{{species}}_2022_{{sector}}_{kind}"
                                            ".nc"), ("fluxes", "emissions"), mapping=mapping)
    invs = read_pattern_inventory(layout, 2022, window=grid.extent_lonlat)
    assert len(invs) == 1 and invs[0].period == "year"
    assert invs[0].lon_edges.size < 40 and invs[0].lat_edges.size < 40   # read around the domain
    _same(grid, ref, invs, [datetime(2022, 7, 20, 3)])


def test_cams_glob_ant_monthly_files_match_native(tmp_path, grid):
    lon_e, lat_e = _window_edges()
    sectors = {"ene": "power", "ind": "industry", "tro": "transport"}
    ref = _reference(lon_e, lat_e, tuple(sectors.values()), ["NOx", "SO2", "CO"], 12, seed=2)
    area = _area(lon_e, lat_e)
    times = [datetime(y, m, 1) for y in (2018, 2019) for m in range(1, 13)]
    secs = np.array([_seconds(2019, m) for m in range(1, 13)])[:, None, None]
    for species, pol in (("nitrogen-oxides", "NOx"), ("sulphur-dioxide", "SO2"),
                         ("carbon-monoxide", "CO")):
        variables, total = {}, 0.0
        for var, model_sec in sectors.items():
            flux = ref.mass[:, ref.sectors.index(model_sec), P[pol]] * 1e3 / (area * secs)
            data = np.concatenate([3.0 * flux, flux])    # 2018 differs: 2019 must be chosen
            variables[var] = ({"units": "kg m-2 s-1", "long_name": var}, data)
            total = total + data
        variables["sum"] = ({"units": "kg m-2 s-1", "long_name": "Sum Sectors"}, total)
        _global_file(tmp_path / f"CAMS-GLOB-ANT_v5.3_{species}_2018-2019.nc", variables, times)
    mapping = _mapping(tmp_path, "sectors:\n  ene: power\n  ind: industry\n  tro: transport\n"
                                 "  sum: null    # the total of the others\n")
    layout = InventoryLayout(str(tmp_path / "CAMS-GLOB-ANT_v5.3_{species}_2018-2019.nc"),
                             ("{sector}",), mapping=mapping)
    invs = read_pattern_inventory(layout, 2019, window=grid.extent_lonlat)
    assert [inv.period for inv in invs] == ["month"]
    _same(grid, ref, invs, [datetime(2019, 1, 15, 4), datetime(2019, 7, 10, 10)])
    with pytest.raises(InputFileError, match=r"_v5.3_[a-z-]+_2018-2019.nc: variable 'ene': "
                                             r"'time' has 0 time\(s\) in inputs.emissions."
                                             r"base_year 2017"):
        read_pattern_inventory(layout, 2017, window=grid.extent_lonlat)


# --------------------------------------------------------------------------- MEIC
MEIC_LON = 119.0 + 0.25 * np.arange(12)      # edges: 11 cells of 0.25 deg
MEIC_LAT = 29.25 + 0.25 * np.arange(10)      # edges: 9 cells
MEIC_SECTORS = {"industry": "industry", "transportation": "transport"}


def _meic_reference(seed):
    mask = np.zeros((MEIC_LAT.size - 1, MEIC_LON.size - 1), bool)
    mask[0, 0] = mask[-1, -1] = True         # NODATA cells (outside the inventory): no emission
    return _reference(MEIC_LON, MEIC_LAT, tuple(MEIC_SECTORS.values()), ["NOx", "PM25", "PMC"],
                      12, seed=seed, mask=mask), mask


def _meic_values(ref, model_sec, species, month):
    m = ref.mass[month - 1, ref.sectors.index(model_sec)]
    return {"NOx": m[P["NOx"]], "PM2.5": m[P["PM25"]], "PMcoarse": m[P["PMC"]],
            "BC": 0.1 * m[P["PM25"]]}[species]


def test_meic_ascii_grids_match_native(tmp_path, grid):
    ref, mask = _meic_reference(3)
    nx, ny = MEIC_LON.size - 1, MEIC_LAT.size - 1
    for month in range(1, 13):
        for sec, model_sec in MEIC_SECTORS.items():
            for sp in ("NOx", "PM2.5", "PMcoarse", "BC"):
                z = np.where(mask, -9999.0, _meic_values(ref, model_sec, sp, month))
                rows = "\n".join(" ".join(repr(float(v)) for v in row) for row in z[::-1])
                (tmp_path / f"2017_{month:02d}__{sec}__{sp}.asc").write_text(
                    f"ncols {nx}\nnrows {ny}\nxllcorner 119.0\nyllcorner 29.25\n"
                    f"cellsize 0.25\nNODATA_value -9999\n{rows}\n")
    mapping = _mapping(tmp_path, "species: {BC: null}\nsectors: {transportation: transport}\n")
    layout = InventoryLayout(str(tmp_path / "2017_{month}__{sector}__{species}.asc"),
                             units="t/(grid month)", mapping=mapping)
    invs = read_pattern_inventory(layout, 2017, window=grid.extent_lonlat)
    assert [inv.period for inv in invs] == ["month"]
    _same(grid, ref, invs, [datetime(2017, 2, 3, 1), datetime(2017, 8, 9, 12)])


def test_meic_gmt_netcdf_matches_native(tmp_path, grid):
    ref, mask = _meic_reference(4)
    nx, ny = MEIC_LON.size - 1, MEIC_LAT.size - 1
    for month in range(1, 13):
        for sec, model_sec in MEIC_SECTORS.items():
            for sp in ("NOx", "PM2.5"):
                z = np.where(mask, -9999.0, _meic_values(ref, model_sec, sp, month))
                ds = xr.Dataset({
                    "x_range": ("side", [119.0, 121.75], {"units": "degrees_east"}),
                    "y_range": ("side", [29.25, 31.5], {"units": "degrees_north"}),
                    "z_range": ("side", [float(z.min()), float(z.max())]),
                    "spacing": ("side", [0.25, 0.25]),
                    "dimension": ("side", np.array([nx, ny], dtype="i4")),
                    "z": ("xysize", z[::-1].ravel(), {"nodata_value": -9999.0,
                                                      "units": "t/(grid month)"})},
                    attrs={"title": "MEIC", "source": "synthetic"})
                ds.to_netcdf(tmp_path / f"2017_{month:02d}__{sec}__{sp}.nc")
    mapping = _mapping(tmp_path, "sectors: {transportation: transport}\n")
    layout = InventoryLayout(str(tmp_path / "2017_{month}__{sector}__{species}.nc"),
                             mapping=mapping)
    ref.mass[:, :, P["PMC"]] = 0.0
    _same(grid, ref, read_pattern_inventory(layout, 2017, window=grid.extent_lonlat),
          [datetime(2017, 12, 24, 20)])


def test_sector_dimension_with_cf_flags_and_monthly_mass(tmp_path, grid):
    """Sectors as a dimension (integer labels named by flag_meanings), species as variables,
    monthly Mg per cell per month, lat decreasing (north first), coordinates named x/y and
    found by their units only."""
    lon_e = np.round(119.6 + 0.2 * np.arange(8), 6)
    lat_e = np.round(29.8 + 0.2 * np.arange(6), 6)
    ref = _reference(lon_e, lat_e, ("power", "residential"), ["NOx", "NH3"], 12, seed=5)
    lat = 0.5 * (lat_e[1:] + lat_e[:-1])
    lon = 0.5 * (lon_e[1:] + lon_e[:-1])
    ds = xr.Dataset(
        {p.lower(): (("month", "sector", "y", "x"), ref.mass[:, :, P[p], ::-1, :],
                     {"units": "Mg month-1"}) for p in ("NOx", "NH3")},
        coords={"y": ("y", lat[::-1], {"units": "degrees_north"}),
                "x": ("x", lon, {"units": "degrees_east"}),
                "sector": ("sector", np.array([1, 4], dtype="i4"),
                           {"flag_values": np.array([1, 4], dtype="i4"),
                            "flag_meanings": "power residential"})})
    ds.to_netcdf(tmp_path / "inventory.nc")
    invs = read_pattern_inventory(InventoryLayout(str(tmp_path / "inventory.nc")), 2017,
                                  window=grid.extent_lonlat)
    _same(grid, ref, invs, [datetime(2017, 3, 1, 6)])


def test_longitudes_0_360_mixed_periods_and_cell_measures(tmp_path, grid, caplog):
    """A global 1 deg file with longitudes 0.5..359.5 is moved to -180..180; an annual part and
    a monthly part (lacking months: a warning) are kept apart; a CF cell measure (km2) replaces
    the spherical cell area."""
    lon, lat = np.arange(0.5, 360), np.arange(-89.5, 90)
    flux = np.zeros((lat.size, lon.size))
    flux[119, 120] = 1e-9                     # the cell 120..121 E, 29..30 N
    coords = {"lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
              "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"})}
    xr.Dataset({"NOx": (("lat", "lon"), flux, {"units": "kg m-2 s-1"})},
               coords=coords).to_netcdf(tmp_path / "yearly_ships.nc")
    xr.Dataset({"NOx": (("month", "lat", "lon"), np.stack([2 * flux] * 12),
                        {"units": "kg m-2 s-1"})}, coords=coords).to_netcdf(
        tmp_path / "monthly_roads.nc")
    for month in (1, 2):
        xr.Dataset({"NOx": (("lat", "lon"), 2 * flux, {"units": "kg m-2 s-1"})},
                   coords=coords).to_netcdf(tmp_path / f"month_{month}.nc")
    annual = read_pattern_inventory(InventoryLayout(str(tmp_path / "yearly_{sector}.nc")),
                                    2017)
    assert annual[0].lon_edges[0] == -180.0 and annual[0].lon_edges[-1] == 180.0
    a_cell = cell_area_lonlat([120.0, 121.0], [29.0, 30.0])[0, 0]
    mass = annual[0].mass[0, 0, P["NOx"]]
    assert np.flatnonzero(mass.ravel()).tolist() == [119 * 360 + 300]
    assert mass[119, 300] == pytest.approx(1e-9 * a_cell * 365 * 86400 / 1e3, rel=1e-12)
    invs = read_pattern_inventory(InventoryLayout(str(tmp_path / "*ly_{sector}.nc")), 2017,
                                  window=grid.extent_lonlat)
    # every part carries every sector (zero where it has none), so that domains reading other
    # windows (a nest, a parent) get the same sectors and tags
    assert sorted((inv.period, inv.sectors) for inv in invs) == [
        ("month", ("roads", "ships")), ("year", ("roads", "ships"))]
    _small_flux_file(tmp_path / "regional_NOx.nc")          # around 120 E, 30 N
    far = read_pattern_inventory(InventoryLayout(str(tmp_path / "regional_{species}.nc"),
                                                 ("fluxes",), sector="roads"), 2017,
                                 window=(-10.0, -9.0, 50.0, 51.0))
    assert len(far) == 1 and far[0].sectors == ("roads",) and far[0].mass.sum() == 0
    em = EmissionModel(grid, invs)
    assert set(em.sectors) == {"roads", "ships"}
    assert em.annual_cell_mass().sum() > 0
    with caplog.at_level(logging.WARNING, logger="aqforecast.emissions"):
        monthly, = read_pattern_inventory(InventoryLayout(str(tmp_path / "month_{month}.nc"),
                                                          sector="roads"), 2017)
    assert "lacks months" in caplog.text and "roads NOx: [3, 4, 5" in caplog.text
    assert monthly.mass[2:].sum() == 0 and monthly.mass[1].sum() == pytest.approx(
        2e-9 * a_cell * 28 * 86400 / 1e3, rel=1e-12)
    # the file's own cell areas (km2, twice the sphere's) through CF cell_measures
    xr.Dataset({"NOx": (("lat", "lon"), flux, {"units": "kg m-2 s-1",
                                               "cell_measures": "area: cell_area"}),
                "cell_area": (("lat", "lon"), 2e-6 * cell_area_lonlat(
                    np.arange(0.0, 361), np.arange(-90.0, 91)), {"units": "km2",
                                                                 "standard_name": "cell_area"})},
               coords=coords).to_netcdf(tmp_path / "measured.nc")
    inv = read_pattern_inventory(InventoryLayout(str(tmp_path / "measured.nc"), sector="a"),
                                 2017)[0]
    assert inv.mass[0, 0, P["NOx"]].sum() == pytest.approx(2 * mass.sum(), rel=1e-12)


# --------------------------------------------------------------------------- warnings, errors
def _small_flux_file(path, var="fluxes", units="kg m-2 s-1", extra=None):
    lat = np.array([30.05, 30.15, 30.25])
    lon = np.array([120.05, 120.15, 120.25, 120.35])
    data = {var: (("lat", "lon"), np.full((3, 4), 1e-9), {"units": units} if units else {})}
    data.update(extra or {})
    xr.Dataset(data, coords={"lat": ("lat", lat, {"standard_name": "latitude",
                                                   "units": "degrees_north"}),
                             "lon": ("lon", lon, {"standard_name": "longitude",
                                                   "units": "degrees_east"})}).to_netcdf(path)


def test_unknown_species_and_variables_are_listed_at_warning_level(tmp_path, grid, caplog):
    _small_flux_file(tmp_path / "v8.1_FT2022_AP_BC_2022_ENE_flx.nc")
    _small_flux_file(tmp_path / "v8.1_FT2022_AP_NOx_2022_ENE_flx.nc",
                     extra={"quality_flag": (("lat", "lon"), np.zeros((3, 4)))})
    layout = InventoryLayout(str(tmp_path / "v8.1_FT2022_AP_{species}_2022_{sector}_flx.nc"),
                             ("fluxes",))
    with caplog.at_level(logging.WARNING, logger="aqforecast.emissions"):
        invs = read_pattern_inventory(layout, 2022)
    text = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "v8.1_FT2022_AP_BC_2022_ENE_flx.nc: fluxes (species 'BC' unknown" in text, text
    assert "v8.1_FT2022_AP_NOx_2022_ENE_flx.nc: quality_flag (matches no variable pattern" \
        in text, text
    assert invs[0].sectors == ("ENE",) and invs[0].mass[0, 0, P["NOx"]].sum() > 0
    # mapped to null: dropped without a warning
    caplog.clear()
    layout = InventoryLayout(layout.path, ("fluxes",),
                             mapping=_mapping(tmp_path, "species: {BC: null}\n"))
    with caplog.at_level(logging.WARNING, logger="aqforecast.emissions"):
        read_pattern_inventory(layout, 2022)
    assert not [r for r in caplog.records if "BC" in r.getMessage()]


def test_native_layout_warns_about_unknown_variables(tmp_path, caplog):
    lat, lon = np.array([30.05, 30.15]), np.array([120.05, 120.15, 120.25])
    data = np.ones((1, 2, 3))
    xr.Dataset({"NOx": (("sector", "lat", "lon"), data, {"units": "Mg year-1"}),
                "bc": (("sector", "lat", "lon"), data, {"units": "Mg year-1"})},
               coords={"lon": lon, "lat": lat, "sector": ["industry"]}).to_netcdf(
        tmp_path / "native.nc")
    with caplog.at_level(logging.WARNING, logger="aqforecast.emissions"):
        inv = read_gridded_inventory(tmp_path / "native.nc")
    assert inv.mass[0, 0, P["NOx"]].sum() == 6.0
    msg = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("native.nc: variable(s) bc not read" in m for m in msg), msg


@pytest.mark.parametrize("units, why", [
    ("kg m-3", "is not a mass"), ("ton/yr", "'ton' is ambiguous"), (None, "no units given"),
    ("Mg year-1 blorgs", "cannot parse")])
def test_bad_units_name_the_file_and_the_variable(tmp_path, units, why):
    _small_flux_file(tmp_path / "bad_NOx.nc", units=units)
    layout = InventoryLayout(str(tmp_path / "bad_{species}.nc"), ("fluxes",), sector="all")
    with pytest.raises(InputFileError, match=rf"bad_NOx.nc: variable 'fluxes' has units "
                                             rf"{units!r}: .*{why}"):
        read_pattern_inventory(layout, 2017)


def test_layout_errors_name_what_is_missing(tmp_path):
    with pytest.raises(InputFileError, match=r"nothing_\{species\}.nc: no file matches"):
        read_pattern_inventory(InventoryLayout(str(tmp_path / "nothing_{species}.nc")), 2017)
    _small_flux_file(tmp_path / "NOx.nc")
    with pytest.raises(InputFileError, match=r"NOx.nc: variable 'fluxes': no sector"):
        read_pattern_inventory(InventoryLayout(str(tmp_path / "{species}.nc"), ("fluxes",)),
                               2017)
    _small_flux_file(tmp_path / "m_7.nc", units="Mg year-1")
    with pytest.raises(InputFileError, match=r"m_7.nc: variable 'fluxes' has units 'Mg year-1' "
                                             r"\(per year\) but holds monthly values"):
        read_pattern_inventory(InventoryLayout(str(tmp_path / "m_{month}.nc"), ("fluxes",),
                                               sector="a", species="NOx"), 2017)


def test_mapping_file_is_checked(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("species: {NOx: NOy}\n")
    with pytest.raises(InputFileError, match=r"m.yaml: species.NOx: 'NOy' is not a model "
                                             r"pollutant"):
        read_mapping(bad)
    bad.write_text("sectors: {ENE: 'power plants'}\n")
    with pytest.raises(InputFileError, match=r"m.yaml: sectors.ENE: sector name 'power plants'"):
        read_mapping(bad)
    bad.write_text("sector: {ENE: power}\n")
    with pytest.raises(InputFileError, match=r"m.yaml: unknown key\(s\) sector"):
        read_mapping(bad)
    m = _mapping(tmp_path, "species: {NO: {NOx: 1.5332}, bc: null}\n"
                           "sectors: {TNR_Other: {transport: 0.7, industry: 0.3}, '*': other}\n")
    assert m.species_targets("no") == (True, {"NOx": 1.5332})
    assert m.species_targets("BC") == (True, None)
    assert m.species_targets("PM2.5") == (True, {"PM25": 1.0})
    assert m.species_targets("CH4") == (False, None)
    assert m.sector_targets("TNR_Other") == {"transport": 0.7, "industry": 0.3}
    assert m.sector_targets("ENE") == {"other": 1.0}


# --------------------------------------------------------------------------- units
@pytest.mark.parametrize("text, si, area, rate, period", [
    ("kg m-2 s-1", 1.0, True, True, None),
    ("g m-2 s-1", 1e-3, True, True, None),
    ("kg/m2/s", 1.0, True, True, None),
    ("Mg year-1", 1e3, False, False, "year"),
    ("Tonnes", 1e3, False, False, None),
    ("t/(grid month)", 1e3, False, False, "month"),
    ("Mg year-1 cell-1", 1e3, False, False, "year"),
    ("Gg/yr", 1e6, False, False, "year"),
    ("kg/h", 1 / 3600, False, True, None),
    ("mol km-2 h-1", 1e-6 / 3600, True, True, None),
])
def test_units_parse(text, si, area, rate, period):
    u = parse_emission_units(text)
    assert u.to_si == pytest.approx(si, rel=1e-12)
    assert (u.per_area, u.per_second, u.period) == (area, rate, period)


def test_unit_conversions_and_cell_areas():
    # the whole sphere
    a = cell_area_lonlat(np.linspace(-180, 180, 361), np.linspace(-90, 90, 181))
    assert a.sum() == pytest.approx(4 * np.pi * R_EARTH ** 2, rel=1e-12)
    # 1 kg m-2 s-1 over a 1 m2 cell for the year 2024 (leap) = 366 x 86400 kg = 31622.4 Mg
    u = parse_emission_units("kg m-2 s-1")
    assert u.mg_factor(1.0, 366 * 86400.0) == pytest.approx(31622.4, rel=1e-14)
    # molecules: 1e15 molecules cm-2 s-1 of NO2 (46.0055 g/mol) over 1 m2 and one second
    u = parse_emission_units("molecules cm-2 s-1")
    assert u.mg_factor(1.0, 1.0, 46.0055) * 1e15 == pytest.approx(
        1e15 * 1e4 / 6.02214076e23 * 46.0055e-6, rel=1e-12)
    with pytest.raises(UnitsError, match="no molar mass"):
        u.mg_factor(1.0, 1.0, None)
