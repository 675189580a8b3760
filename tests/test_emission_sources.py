"""Emission sources from the config (inputs.emissions.gridded / .points / .areas, each optional):
points alone, areas alone, a gridded inventory alone (native or pattern layout) and any mix
build emissions whose mass over a day equals the input's (to round-off); the sectors (and tags)
are the union of the sources'; no source at all is a warning, not an error; missing files and
bad layout keys fail naming the file or key."""

from __future__ import annotations

import calendar
import logging
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from aqforecast import species as registry
from aqforecast.config import ConfigError, load_config, read_yaml
from aqforecast.emissions import POLLUTANTS, EmissionModel
from aqforecast.grid import grids_from_config
from aqforecast.io import InputFileError
from aqforecast.tagging.tagset import TagSet

REPO = Path(__file__).resolve().parents[1]
DAY = datetime(2026, 7, 14, 0)      # 24 h inside one month (any UTC offset): E_year / 12 / 31
P = {p: k for k, p in enumerate(POLLUTANTS)}

# sector names without default temporal profiles: flat in month, weekday and hour
POINTS_CSV = """id,sector,lon,lat,stack_height_m,stack_diameter_m,exit_velocity_ms,exit_temperature_k,NOx,CO,PM25,PM10
S1,energy,120.20,30.10,120,4.0,15,400,3650,7300,365,730
S2,chemicals,120.40,30.30,60,2.0,10,350,730,1460,0,0
S3,energy,120.50,30.20,30,1.0,8,320,365,0,36.5,36.5
FAR,energy,122.50,31.50,30,1.0,8,320,99999,99999,0,0
"""
AREAS_CSV = """id,sector,wkt,lon,lat,NOx,CO,PM25
A1,households,"POLYGON((120.1 30.0, 120.3 30.0, 120.3 30.2, 120.1 30.2, 120.1 30.0))",,,1000,5000,200
A2,roads,"MULTIPOLYGON(((120.35 30.25, 120.45 30.25, 120.45 30.35, 120.35 30.35, 120.35 30.25)))",,,2000,4000,0
A3,chemicals,,120.25,30.33,500,100,10
"""


def _config(tmp_path: Path, emissions: dict):
    """The sample config on a small 3 km domain (lon 119.93..120.67, lat 29.92..30.48) with
    two regions and the given inputs.emissions."""
    data = read_yaml(REPO / "config" / "config.yaml")
    data["base_dir"] = str(REPO)
    data["domains"] = [{"name": "d01", "dx_m": 3000.0, "nx": 24, "ny": 21,
                        "centre_lon": 120.3, "centre_lat": 30.2}]
    data["inputs"]["met"]["paths"] = {"d01": "data_sample/met/wrfout_d01_*"}
    data["regions"] = data["regions"][:2]
    data["inputs"]["emissions"] = emissions
    if hasattr(data["time"]["start"], "isoformat"):
        data["time"]["start"] = data["time"]["start"].isoformat()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _native_inventory(tmp_path) -> tuple[str, dict]:
    """Mg year-1 on 0.05 deg cells inside the domain: ({sector: {pollutant: Mg}})."""
    lon = np.round(np.arange(120.025, 120.5, 0.05), 4)
    lat = np.round(np.arange(30.025, 30.4, 0.05), 4)
    rng = np.random.default_rng(11)
    nox = rng.uniform(0, 100, (2, lat.size, lon.size))
    co = rng.uniform(0, 300, (2, lat.size, lon.size))
    ds = xr.Dataset({"NOx": (("sector", "lat", "lon"), nox, {"units": "Mg year-1"}),
                     "CO": (("sector", "lat", "lon"), co, {"units": "t/yr"})},
                    coords={"lon": lon, "lat": lat, "sector": ["factories", "energy"]})
    path = tmp_path / "native.nc"
    ds.to_netcdf(path)
    return str(path), {s: {"NOx": nox[i].sum(), "CO": co[i].sum()}
                       for i, s in enumerate(["factories", "energy"])}


def _day_mass(em: EmissionModel, grid) -> dict[str, float]:
    """Mg of NOx (as NO2), CO and PM2.5 emitted on the grid over the 24 h from DAY."""
    mol = {"NO": 0.0, "NO2": 0.0, "CO": 0.0, "PPM25": 0.0}
    for h in range(24):
        f = em.emissions(DAY + timedelta(hours=h)).column_total()
        for s in mol:
            mol[s] += float((f[em.species.index(s)] * grid.cell_area).sum()) * 3600.0
    return {"NOx": (mol["NO"] + mol["NO2"]) * registry.get("NO2").molar_mass * 1e-6,
            "CO": mol["CO"] * registry.get("CO").molar_mass * 1e-6,
            "PM25": mol["PPM25"] * 1e-3}


def _expected_day(annual: dict[str, float]) -> dict[str, float]:
    days = calendar.monthrange(DAY.year, DAY.month)[1]
    return {p: v / 12.0 / days for p, v in annual.items()}


def _check(em, grid, annual):
    got, want = _day_mass(em, grid), _expected_day(annual)
    for p in want:
        assert got[p] == pytest.approx(want[p], rel=1e-12, abs=1e-12), (p, got, want)


POINT_ANNUAL = {"NOx": 3650 + 730 + 365, "CO": 7300 + 1460, "PM25": 365 + 36.5}
AREA_ANNUAL = {"NOx": 3500.0, "CO": 9100.0, "PM25": 210.0}


def test_points_alone(tmp_path, caplog):
    cfg = _config(tmp_path, {"points": _write(tmp_path, "points.csv", POINTS_CSV)})
    grid = grids_from_config(cfg)["d01"]
    with caplog.at_level(logging.WARNING, logger="aqforecast.emissions"):
        em = EmissionModel.from_config(cfg, grid)
    assert "FAR" in caplog.text and em.report["points_outside"] == ["FAR"]
    assert em.sectors == ("energy", "chemicals") and em.has_point_sources
    assert len(em.tags) == 3 * 2                     # (2 regions + outside) x 2 sectors
    ts = TagSet.from_config(cfg, em)
    assert ("Hangzhou", "energy") in ts.source_tags
    assert em.report["sources"][0].endswith("4 stack(s), 3 inside d01")
    _check(em, grid, POINT_ANNUAL)


def test_areas_alone(tmp_path):
    cfg = _config(tmp_path, {"areas": _write(tmp_path, "areas.csv", AREAS_CSV)})
    grid = grids_from_config(cfg)["d01"]
    em = EmissionModel.from_config(cfg, grid)
    assert em.sectors == ("households", "roads", "chemicals") and not em.has_point_sources
    assert em.report["area_sources_partly_outside"] == 0
    assert em.report["sources"] == [f"areas {tmp_path / 'areas.csv'}: 3 source(s)"]
    _check(em, grid, AREA_ANNUAL)


def test_gridded_alone_native(tmp_path):
    path, mass = _native_inventory(tmp_path)
    cfg = _config(tmp_path, {"gridded": path})
    grid = grids_from_config(cfg)["d01"]
    em = EmissionModel.from_config(cfg, grid)
    assert em.sectors == ("factories", "energy")
    annual = {p: sum(m[p] for m in mass.values()) for p in ("NOx", "CO")}
    assert em.report["gridded_outside_fraction"]["NOx"] == pytest.approx(0.0, abs=1e-12)
    _check(em, grid, {**annual, "PM25": 0.0})
    # a mapping file renames (and merges) the native file's sectors
    mapping = _write(tmp_path, "m.yaml", "sectors: {factories: plants, energy: plants}\n")
    cfg = _config(tmp_path, {"gridded": {"path": path, "mapping": mapping}})
    em2 = EmissionModel.from_config(cfg, grid)
    assert em2.sectors == ("plants",)
    np.testing.assert_allclose(em2.annual_cell_mass()[0], em.annual_cell_mass().sum(axis=0),
                               rtol=1e-13)


def test_mixed_sources_with_a_pattern_layout_inventory(tmp_path):
    """EDGAR-style flux files + points + areas: the union of sectors (energy shared by the
    inventory's mapped ENE and the stacks), the total of all three."""
    _, mass = _native_inventory(tmp_path)
    lon = np.round(np.arange(120.025, 120.5, 0.05), 4)
    lat = np.round(np.arange(30.025, 30.4, 0.05), 4)
    area = (6_370_000.0 ** 2 * np.radians(0.05)
            * np.diff(np.sin(np.radians(np.concatenate([lat - 0.025, lat[-1:] + 0.025]))))[:, None]
            * np.ones(lon.size))
    seconds = 365 * 86400.0            # base_year 2017
    rng = np.random.default_rng(3)
    annual = dict.fromkeys(("NOx", "CO", "PM25"), 0.0)
    for sector in ("ENE", "IND"):
        for sp in ("NOx", "CO"):
            mg = rng.uniform(0, 50, area.shape)
            annual[sp] += mg.sum()
            xr.Dataset({"fluxes": (("lat", "lon"), mg * 1e3 / (area * seconds),
                                   {"units": "kg m-2 s-1"})},
                       coords={"lat": ("lat", lat, {"standard_name": "latitude",
                                                    "units": "degrees_north"}),
                               "lon": ("lon", lon, {"standard_name": "longitude",
                                                    "units": "degrees_east"})}).to_netcdf(
                tmp_path / f"v8.1_FT2022_AP_{sp}_2017_{sector}_flx.nc")
    mapping = _write(tmp_path, "edgar.yaml", "sectors: {ENE: energy, IND: factories}\n")
    cfg = _config(tmp_path, {
        "gridded": {"path": str(tmp_path / "v8.1_FT2022_AP_{species}_2017_{sector}_flx.nc"),
                    "layout": "pattern", "variable": "fluxes", "mapping": mapping},
        "points": _write(tmp_path, "points.csv", POINTS_CSV),
        "areas": _write(tmp_path, "areas.csv", AREAS_CSV)})
    grid = grids_from_config(cfg)["d01"]
    em = EmissionModel.from_config(cfg, grid)
    assert set(em.sectors) == {"energy", "factories", "chemicals", "households", "roads"}
    assert len(em.sectors) == 5 and len(em.tags) == 15
    assert em.report["sources"][0].startswith("gridded inventory read: ")
    total = {p: annual[p] + POINT_ANNUAL[p] + AREA_ANNUAL[p] for p in annual}
    _check(em, grid, total)


def test_no_emissions_is_a_warning(tmp_path, caplog, monkeypatch):
    from aqforecast import forecast
    from aqforecast.met import MetProvider

    cfg = _config(tmp_path, {})
    grids = grids_from_config(cfg)
    with caplog.at_level(logging.WARNING):
        em = EmissionModel.from_config(cfg, grids["d01"])
    assert "no emissions configured" in caplog.text
    assert em.sectors == () and em.tags == ()
    assert not np.any(em.emissions(DAY).to_dense())

    class FakeMet:
        times = np.array(["2026-07-20T00", "2026-07-20T06"], dtype="datetime64[s]")
        interval = np.timedelta64(6, "h")

        def check_period(self, start, end):
            pass

        def close(self):
            pass

    monkeypatch.setattr(MetProvider, "from_config", classmethod(lambda cls, *a, **k: FakeMet()))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        met, em = forecast.domain_inputs(cfg, "d01", grids)
    assert em is None
    assert any(r.levelno == logging.WARNING and "no emissions configured" in r.getMessage()
               for r in caplog.records)


def test_validate_lists_every_source(tmp_path, monkeypatch):
    from aqforecast import stages
    from aqforecast.met import MetProvider

    class FakeMet:
        times = np.array(["2026-07-20T00", "2026-07-21T00"], dtype="datetime64[s]")
        interval = np.timedelta64(60, "m")

        def check_period(self, start, end):
            pass

        def close(self):
            pass

    monkeypatch.setattr(MetProvider, "from_config", classmethod(lambda cls, *a, **k: FakeMet()))
    path, _ = _native_inventory(tmp_path)
    cfg = _config(tmp_path, {"gridded": path,
                             "points": _write(tmp_path, "points.csv", POINTS_CSV),
                             "areas": _write(tmp_path, "areas.csv", AREAS_CSV)})
    lines = "\n".join(stages._input_summary(cfg, grids_from_config(cfg)))
    assert "emissions: gridded inventory read: " in lines and "native.nc" in lines
    assert "emissions: points " in lines and "3 inside d01" in lines
    assert "emissions: areas " in lines
    assert "emission sectors (tags): chemicals, energy, factories, households, roads" in lines
    cfg = _config(tmp_path, {})
    lines = "\n".join(stages._input_summary(cfg, grids_from_config(cfg)))
    assert "emissions: none configured" in lines


def test_missing_files_and_bad_keys_fail_before_any_work(tmp_path):
    cfg = _config(tmp_path, {"areas": str(tmp_path / "nowhere.csv")})
    with pytest.raises(InputFileError, match=r"nowhere.csv: area-source file does not exist"):
        EmissionModel.from_config(cfg, grids_from_config(cfg)["d01"])
    cfg = _config(tmp_path, {"gridded": {"path": str(tmp_path / "none_{species}_{sector}.nc"),
                                         "layout": "pattern"}})
    with pytest.raises(InputFileError, match=r"none_\{species\}_\{sector\}.nc: no file matches"):
        EmissionModel.from_config(cfg, grids_from_config(cfg)["d01"])
    with pytest.raises(ConfigError, match=r"unknown placeholder\(s\) \{pollutant\}"):
        _config(tmp_path, {"gridded": {"path": "x_{pollutant}.nc", "layout": "pattern"}})
    with pytest.raises(ConfigError, match=r"variable apply to layout: pattern only"):
        _config(tmp_path, {"gridded": {"path": "x.nc", "variable": "fluxes"}})
    with pytest.raises(ConfigError, match=r"inputs.emissions.area .*unknown key"):
        _config(tmp_path, {"area": "x.csv"})
