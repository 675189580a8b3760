"""The regional OSSE case: eastern China at 36 km, where an initial state lives for days.

The sample case's 144 km domain is flushed in ~7 h (README, "OSSE"), so no analysis of its
initial state can matter after day 1. Operational analyses (CNEMC's OI: 23 / 8.2 / 4.8 % on
PM2.5 forecast days 1-3) run on national domains; this case gives the OSSE such a domain with
what this workplace holds -- all of it synthetic except the station locations:

* domain: one 36 km Lambert grid, 64 x 60 cells (~2300 x 2160 km, ~104-129 E, 24-43 N: the
  North China Plain, the Yangtze River Delta, the Yellow and East China Seas), the sample's 15
  layers and chemistry (:data:`DOMAIN`);
* meteorology: ``data_sample/make_sample_met.py`` over that grid (its analytic July weather:
  south-easterly monsoon flow 3.5-7.5 m/s, diurnal boundary layer, land-sea breeze, showers),
  land from Natural Earth 50 m; the synoptic flow is the same everywhere, so the air over the
  North China Plain came off the sea 1-3 days earlier;
* stations: the 1 448 national stations of the CNEMC snapshot
  (``obs_cnemc_national_snapshot_2017-04``, real coordinates) inside the grid, written as a
  CNEMC station list;
* emissions: a synthetic gridded inventory (0.1 deg, the sample inventory's layout and sectors):
  per national station the YRD 2017 emission per person (An et al. 2021 totals over the four
  provinces' people) times the people a station stands for on average (China's 2017
  population / the snapshot's stations, ~0.96 million), times the stations in the inventory's
  box, each sector split and spread by the sample's shares and proxies (residential
  e^(-d/8 km), transport
  e^(-d/5 km), an industrial ring, power e^(-d/15 km), agriculture the rural complement) around
  every station, land only. Stations stand where people live, so their density is a
  population proxy; the magnitudes are plausible, not an inventory of anyone's emissions.

``build_case(work)`` writes ``config.yaml``, ``stations.csv``, ``inventory.nc`` and ``met/``
under ``work`` (~30 s, ~0.3 GB) and returns the config's path; ``benchmarks/osse.py --case
regional`` runs the OSSE on it.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path("obs_cnemc_national_snapshot_2017-04") / "20170411_daily_city_obs.txt"
#: the grid (fixed before any OSSE run on it)
DOMAIN = dict(dx_m=36000.0, nx=64, ny=60, centre_lon=116.5, centre_lat=33.5)
START = "2026-07-20T00:00:00Z"
#: the OI's correlation half-width for a 36 km grid: 120 km, inside the 100-200 km range of
#: regional PM2.5 / O3 analyses at 30-50 km [L]; fixed before any run
LENGTH_KM = 120.0
RES = 0.1  # inventory cell, degrees
#: China's resident population at the end of 2017 (NBS statistical communique: 1 390.08
#: million [L])
CHINA_POPULATION_2017 = 1390.08e6


def shared_data() -> Path:
    """The first of ``$AQF_SHARED_DATA``, ``../shared/data`` beside the repository and the
    copy vendored in ``tests/data/shared`` that holds the CNEMC national snapshot."""
    for c in (os.environ.get("AQF_SHARED_DATA"), REPO.parent / "shared" / "data",
              REPO / "tests" / "data" / "shared"):
        if c and (Path(c) / SNAPSHOT).exists():
            return Path(c)
    return REPO.parent / "shared" / "data"


def _module(path: Path, name: str):
    """A data_sample script as a module (importable by name, so its process pool can pickle
    its tasks)."""
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    return importlib.import_module(name)


def national_stations(shared: Path | None = None) -> pd.DataFrame:
    """code, lon, lat of the CNEMC national snapshot's stations (one row each, valid lon/lat)."""
    path = (shared or shared_data()) / SNAPSHOT
    df = pd.read_csv(path, sep=r"\s+", header=None, usecols=[0, 4, 5],
                     names=["code", "lon", "lat"], dtype={"code": str})
    df = df[(df.lon > 70) & (df.lon < 140) & (df.lat > 15) & (df.lat < 55)]
    return df.drop_duplicates("code").reset_index(drop=True)


def emission_per_station(n_national: int) -> dict[str, float]:
    """Mg year-1 per national station and pollutant: the YRD 2017 emission per person (An et
    al. 2021 totals over the four provinces' population, ``make_sample_emissions``) times the
    people a national station stands for on average (China's 2017 population over the
    ``n_national`` stations of the snapshot)."""
    mse = _module(REPO / "data_sample" / "make_sample_emissions.py", "make_sample_emissions")
    people = CHINA_POPULATION_2017 / n_national
    return {p: mse.YRD_TOTALS_GG[p] * 1e3 * people / (mse.YRD_POPULATION * 1e4)
            for p in mse.POLS}


def write_inventory(path: Path, stations: pd.DataFrame, box, per_station: dict,
                    natural_earth_land) -> dict:
    """The synthetic regional inventory (module docstring) on RES cells over ``box`` (lon0,
    lon1, lat0, lat1); returns the totals written (Mg year-1 per pollutant)."""
    from aqforecast.io.netcdf import global_attrs, write_dataset

    mse = _module(REPO / "data_sample" / "make_sample_emissions.py", "make_sample_emissions")
    lon = np.round(np.arange(box[0] + RES / 2, box[1], RES), 6)
    lat = np.round(np.arange(box[2] + RES / 2, box[3], RES), 6)
    lon2, lat2 = np.meshgrid(lon, lat)
    glon, glat, land = natural_earth_land
    jj = np.clip(np.searchsorted(glat, lat2) - 1, 0, glat.size - 1)
    ii = np.clip(np.searchsorted(glon, lon2) - 1, 0, glon.size - 1)
    on_land = land[jj, ii] > 0.5
    # the sample's proxies around every station (weight 1 each)
    prox = mse.sector_proxies(lon2, lat2, list(zip(stations.lon, stations.lat,
                                                   np.ones(len(stations)))))
    n = len(stations)
    cell = (RES * 111.32 * np.cos(np.deg2rad(lat2))) * (RES * 110.57)
    mass = {}
    for p in mse.POLS:
        arr = np.zeros((len(mse.SECTORS),) + lon2.shape)
        for k, sec in enumerate(mse.SECTORS):
            w = prox[sec] * cell * on_land
            arr[k] = per_station[p] * n * mse.SHARES[p][k] * w / w.sum()
        mass[p] = arr
    ds = xr.Dataset(coords={
        "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east",
                             "axis": "X"}),
        "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north",
                             "axis": "Y"}),
        "sector": ("sector", np.array(mse.SECTORS, dtype=object),
                   {"long_name": "emission sector (MEIC)"})},
        attrs=global_attrs("Synthetic regional inventory for the regional OSSE case (eastern "
                           "China), base year 2017",
                           source="benchmarks/regional_case.py (synthetic; national station "
                                  "density as the proxy)",
                           references="An, J. et al. (2021), ACP 21, 2003-2025 (YRD 2017 "
                                      "totals, via data_sample/make_sample_emissions.py)",
                           base_year=2017))
    for p in mse.POLS:
        ds[p] = (("sector", "lat", "lon"), mass[p],
                 {"units": "Mg year-1", "cell_methods": "area: sum time: sum"})
    write_dataset(ds, path)
    return {p: float(mass[p].sum()) for p in mse.POLS}


CONFIG = """# Regional OSSE case (benchmarks/regional_case.py): eastern China at 36 km, synthetic.
name: regional_osse
base_dir: .
projection: {{kind: lambert, truelat1: 25.0, truelat2: 40.0, stand_lon: {centre_lon},
             ref_lat: {centre_lat}}}
vertical: {{nz: 15, p_top_pa: 10000.0, first_layer_m: 30.0}}
domains:
  - {{name: d01, dx_m: {dx_m}, nx: {nx}, ny: {ny}, centre_lon: {centre_lon},
     centre_lat: {centre_lat}}}
time:
  start: {start}
  lead_hours: {lead}
  sync_step_s: 900
  cfl: 0.75
  max_wind_ms: 30.0
  output_every_hours: 1
species: [NO, NO2, O3, ROC, HNO3, H2O2, SO2, NH3, CO, SO4, NO3, NH4, PPM25, PPM10]
chemistry: {{mechanism: grs, solver: rosenbrock, rtol: 1.0e-3}}
regions: []
tags: {{enabled: false}}
inputs:
  met: {{format: wrfout, paths: {{d01: met/wrfout_d01_*}}}}
  emissions: {{gridded: inventory.nc, base_year: 2017}}
  observations: {{sources: [], station_coords: stations.csv}}
  boundary: {{kind: profile}}
assimilation: {{length_km: {length_km}}}
outputs: {{dir: results, levels: [0, 2, 5, 8], tag_levels: [0], restart_every_hours: 6}}
"""


def build_case(work: Path, lead_hours: int = 120, workers: int = 2, log=print) -> Path:
    """Write the regional case under ``work`` (config.yaml, stations.csv, inventory.nc, met/)
    and return the config's path; a complete case already there is kept."""
    from aqforecast.config import load_config
    from aqforecast.grid import grids_from_config

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    cfg_path = work / "config.yaml"
    done = work / "met" / ".complete"
    if done.exists() and cfg_path.exists():
        return cfg_path
    cfg_path.write_text(CONFIG.format(start=START, lead=lead_hours, length_km=LENGTH_KM,
                                      **DOMAIN))
    cfg = load_config(cfg_path)   # the files it names are read later, by the runs
    grid = grids_from_config(cfg)["d01"]
    lon2d, lat2d = grid.lonlat
    box = (np.floor(lon2d.min()) - 1, np.ceil(lon2d.max()) + 1, np.floor(lat2d.min()) - 1,
           np.ceil(lat2d.max()) + 1)
    st = national_stations()
    per = emission_per_station(len(st))
    st = st[(st.lon > box[0]) & (st.lon < box[1]) & (st.lat > box[2]) & (st.lat < box[3])]
    met_mod = _module(REPO / "data_sample" / "make_sample_met.py", "make_sample_met")
    ne = met_mod.natural_earth_land(np.array(box[:2]), np.array(box[2:]))
    # every station of the box emits (the inventory covers the box); the list holds those in
    # the grid
    from aqforecast.observations.operator import StationOperator

    inside = StationOperator(lon2d, lat2d, st.lon.to_numpy(), st.lat.to_numpy()).inside
    lines = [f"{c},{c},,{x:.4f},{y:.4f},N" for c, x, y in
             zip(st.code[inside], st.lon[inside], st.lat[inside])]
    header = "监测点编码,监测点名称,城市,经度,纬度,对照点\n"   # the CNEMC station list's
    (work / "stations.csv").write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    tmp = work / "inventory.nc.tmp"
    totals = write_inventory(tmp, st, box, per, ne)
    tmp.replace(work / "inventory.nc")
    log(f"regional case: {int(inside.sum())} national stations in the grid ({len(st)} in the "
        f"inventory box), per station {per['NOx']:.0f} Mg/yr NOx, {per['PM25']:.0f} PM2.5 "
        f"(YRD 2017 per person x 1/{len(national_stations())} of China's people); box "
        f"totals "
        + ", ".join(f"{p} {v / 1e3:.0f} Gg" for p, v in totals.items()))
    met_mod.generate(cfg_path, work / "met", workers=workers)
    done.touch()
    return cfg_path


if __name__ == "__main__":
    print(build_case(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/aqforecast-regional")))
