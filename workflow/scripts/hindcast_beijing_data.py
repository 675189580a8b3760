"""Make the inputs of the Beijing hindcast (config/hindcast_beijing/): region polygon, emission
inventory and the analysed-met wrfout files. Deterministic; run from the repository root::

    .venv/bin/python workflow/scripts/hindcast_beijing_data.py [--met-hours N] [--no-met]
        [--aerosol-dimming] [--boundary {profile,observed}] [--boundary-percentile P]
        [--start YYYY-MM-DDTHH] [--out DIR]

Writes ``config/hindcast_beijing/regions/beijing.geojson`` (committed, 2 kB),
``config/hindcast_beijing/data/emissions/inventory_beijing2016.nc`` and
``config/hindcast_beijing/data/met/wrfout_d01_*`` (both git-ignored; regenerate them with this
script). What is real and what is not: config/hindcast_beijing/README.md.

``--boundary observed`` (the default; ``--boundary profile`` skips it) also writes
``config/hindcast_beijing/data/boundary/boundary_stations.nc`` (git-ignored), the *analysed*
lateral inflow that ``config.yaml`` reads (``inputs.boundary.kind: file``;
:func:`write_boundary`, :mod:`aqforecast.transport.boundary_stations`): per hour of the whole PRSA
file of the window (:func:`prsa_file`: the winter file by default), the
``--boundary-percentile``-th percentile (default 25; O3 the 75th) of the PM2.5,
PM10 - PM2.5, O3, NO2, CO and SO2 observed at the stations that are not
``verification.withheld_stations`` (the withheld ones are dropped before any number is made),
uniform over the domain, held through the highest boundary layer of the last 24 h of the met
files (1000 m outside them) and blended into the background profile above. It uses the
observations of the hours it drives, like the analysed met.

``--start YYYY-MM-DDTHH`` (UTC; default ``time.start`` of ``config.yaml``) makes the met of
another window (``--met-hours`` records from it) and also writes ``<out>/config.yaml``: the
committed config with ``time.start`` set to it and the met, inventory and boundary paths set to
``<out>`` (:func:`derive_config`), so ``hindcast.py --config <out>/config.yaml`` runs that
window without editing the committed config. The met, the inflow and the derived config's
observations all read the PRSA file whose local dates hold that start (:func:`prsa_file`: the
winter file 2016-12-01 .. 2017-02-28 or the summer file 2016-06-01 .. 2016-08-31). Give it
its own ``--out`` (e.g. ``config/hindcast_beijing/data/<name>``, git-ignored) so the default
window's files are kept.

Inventory (SYNTHETIC, scaled to published magnitudes; the sample's machinery,
data_sample/make_sample_emissions.py: population-like kernels around real towns, clipped to the
region polygon, per sector):

* Beijing 2016 totals :data:`BEIJING_2016_MG` [L]: the Beijing bottom-up inventory of Cheng et
  al. (2019, ACP 19, 6125, doi:10.5194/acp-19-6125-2019) for 2013 reduced by the 2013-2016 part
  of the 2013-2017 reductions it reports (SO2 -83 %, NOx -43 %, VOC -42 %, primary PM2.5 -55 %
  by 2017; the abstract was read, the absolute 2013 table was not available here) -- every
  number below is a from-memory estimate to be checked against that paper's Table 1;
* outside Beijing (Hebei / Tianjin cells of the domain): the Beijing-Tianjin-Hebei mean emission
  density. BTH 2014 totals from Zheng H. et al. (2019, ACP 19, 3447,
  doi:10.5194/acp-19-3447-2019, abstract verified: industrial SO2 869, NOx 1164, PM10 910,
  PM2.5 622, NMVOC 1390 kt = 61, 55, 62, 56, 36 % of the totals), brought to 2016 with half of
  the MEIC 2013-2017 national changes (Zheng B. et al. 2018, ACP 18, 14095, verified: SO2 -59,
  NOx -21, CO -23, PM10 -36, PM2.5 -33 %; NMVOC and NH3 ~ unchanged), Beijing subtracted, over
  the BTH land area 218 000 km2 minus Beijing's 16 410 km2 [L]; CO and NH3 of BTH [L].
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
CASE = REPO / "config" / "hindcast_beijing"
CONFIG = CASE / "config.yaml"
STATIONS = REPO / "tests" / "data" / "shared" / "obs_beijing_prsa"
WINTER = "PRSA_12sites_2016-12-01_2017-02-28_hourly.csv"
#: the vendored PRSA files: ``PRSA_12sites_<first local day>_<last local day>_hourly.csv``
PRSA_PATTERN = r"PRSA_12sites_(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})_hourly\.csv"

#: Beijing municipality outline, hand-digitised from memory of the administrative map [L]:
#: about +-10 km, ~20 000 km2, shrunk to 16 410 km2 by :func:`beijing_polygon`. Not the legal
#: boundary: no Beijing polygon is available here (the cnmaps copy holds Zhejiang/Shanghai).
BEIJING_OUTLINE = [
    (115.42, 39.95), (115.55, 39.62), (115.75, 39.52), (116.05, 39.55), (116.25, 39.47),
    (116.43, 39.44), (116.70, 39.60), (116.92, 39.70), (116.95, 39.90), (117.05, 40.05),
    (117.35, 40.05), (117.50, 40.20), (117.40, 40.45), (117.20, 40.70), (116.90, 40.82),
    (116.65, 41.06), (116.45, 40.95), (116.20, 40.80), (115.95, 40.70), (115.75, 40.62),
    (115.45, 40.55), (115.55, 40.25), (115.42, 39.95)]
#: District seats (lon, lat, weight) [L: coordinates from memory, +-5 km; weights design]
BEIJING_CENTRES = [
    (116.40, 39.91, 1.0), (116.30, 39.96, 0.5), (116.48, 39.95, 0.5), (116.29, 39.86, 0.4),
    (116.22, 39.91, 0.2), (116.66, 39.91, 0.3), (116.65, 40.13, 0.25), (116.23, 40.22, 0.25),
    (116.34, 39.73, 0.25), (116.14, 39.74, 0.2), (116.10, 39.94, 0.1), (116.63, 40.32, 0.1),
    (117.12, 40.14, 0.1), (116.84, 40.38, 0.1), (115.97, 40.46, 0.08)]
#: Towns of Hebei / Tianjin around Beijing (lon, lat, weight) [L]
OUTSIDE_CENTRES = [
    (116.70, 39.52, 0.6), (115.97, 39.49, 0.4), (117.08, 39.98, 0.4), (116.30, 39.44, 0.3),
    (117.00, 39.76, 0.3), (117.05, 39.38, 0.5), (115.52, 40.41, 0.2), (117.33, 40.94, 0.1),
    (115.50, 39.38, 0.4), (117.40, 39.70, 0.3)]
#: urban land use (lon, lat, km) for the met analysis: the central city and district towns
URBAN = [(116.40, 39.92, 14.0), (116.66, 39.91, 4.0), (116.65, 40.13, 4.0),
         (116.23, 40.22, 4.0), (116.34, 39.73, 4.0), (116.14, 39.74, 3.0)]

SECTORS = ("industry", "power", "residential", "transport", "agriculture")
POLS = ("SO2", "NOx", "CO", "NMVOC", "NH3", "PM25", "PM10")
#: Beijing 2016, Mg year-1 [L] (module docstring)
BEIJING_2016_MG = {"SO2": 30_000.0, "NOx": 160_000.0, "CO": 900_000.0, "NMVOC": 200_000.0,
                   "NH3": 40_000.0, "PM25": 45_000.0, "PM10": 80_000.0}
#: BTH 2014 totals, kt (Zheng H. et al. 2019: industrial / share) and [L] CO, NH3
BTH_2014_KT = {"SO2": 869 / 0.61, "NOx": 1164 / 0.55, "PM10": 910 / 0.62, "PM25": 622 / 0.56,
               "NMVOC": 1390 / 0.36, "CO": 20_000.0, "NH3": 800.0}
#: 2014 -> 2016: half of the MEIC 2013-2017 change, as a ratio (square root of the 4-year one)
TO_2016 = {"SO2": (1 - 0.59) ** 0.5, "NOx": (1 - 0.21) ** 0.5, "CO": (1 - 0.23) ** 0.5,
           "PM10": (1 - 0.36) ** 0.5, "PM25": (1 - 0.33) ** 0.5, "NMVOC": 1.0, "NH3": 1.0}
BTH_KM2, BEIJING_KM2 = 218_000.0, 16_410.0
#: sector shares [design; Beijing 2016: coal power mostly replaced by gas, residential coal
#: still burnt in the villages in winter, traffic the largest NOx source]
SHARES_BEIJING = {
    #          industry power  resid  transp agri
    "SO2":   (0.45, 0.15, 0.35, 0.05, 0.00),
    "NOx":   (0.25, 0.10, 0.07, 0.58, 0.00),
    "CO":    (0.30, 0.05, 0.40, 0.25, 0.00),
    "NMVOC": (0.55, 0.01, 0.09, 0.32, 0.03),
    "PM25":  (0.40, 0.02, 0.33, 0.20, 0.05),
    "PMC":   (0.60, 0.02, 0.03, 0.30, 0.05),     # PM10 - PM2.5: construction and road dust
    "NH3":   (0.03, 0.00, 0.10, 0.05, 0.82),
}
#: Hebei / Tianjin: heavy industry (steel, cement, coking) and coal [design]
SHARES_OUTSIDE = {
    "SO2":   (0.60, 0.20, 0.17, 0.03, 0.00),
    "NOx":   (0.45, 0.20, 0.05, 0.30, 0.00),
    "CO":    (0.65, 0.03, 0.25, 0.07, 0.00),
    "NMVOC": (0.60, 0.01, 0.14, 0.20, 0.05),
    "PM25":  (0.55, 0.04, 0.26, 0.08, 0.07),
    "PMC":   (0.65, 0.04, 0.03, 0.18, 0.10),
    "NH3":   (0.02, 0.00, 0.06, 0.02, 0.90),
}
BOX = {"lon0": 115.0, "lon1": 118.0, "lat0": 39.0, "lat1": 41.2}
RES = 0.05
#: the boundary file's box (uniform values): the domain 115.35-117.45 E, 39.25-40.85 N and its
#: ghost cells with a wide margin
BOUNDARY_BOX = {"lon": (114.0, 119.0), "lat": (38.0, 42.0)}
#: default percentile of the analysed inflow: with the 8 assimilated stations the 25th lies
#: between the 2nd and 3rd cleanest, the level of the network's background/suburban sites
#: (Dingling, the network's reference site, and Huairou), robust to one station's gap or dip
BOUNDARY_PERCENTILE = 25.0
BOUNDARY_FILE = "boundary/boundary_stations.nc"

log = logging.getLogger("hindcast_beijing_data")


def _sample_machinery():
    """data_sample/make_sample_emissions.py (kernels, cell fractions), loaded as a module."""
    path = REPO / "data_sample" / "make_sample_emissions.py"
    spec = importlib.util.spec_from_file_location("make_sample_emissions", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def beijing_polygon() -> shapely.Polygon:
    """:data:`BEIJING_OUTLINE` shrunk about its centroid so that it encloses the municipality's
    16 410 km2 (the hand outline encloses ~20 000 km2: its concave parts are missing)."""
    raw = shapely.Polygon(BEIJING_OUTLINE)
    f = float(np.sqrt(BEIJING_KM2 / _area_km2(raw)))
    return shapely.affinity.scale(raw, xfact=f, yfact=f, origin=raw.centroid)


def write_region(path: Path) -> Path:
    geom = beijing_polygon()
    ring = [[round(x, 4), round(y, 4)] for x, y in geom.exterior.coords]
    obj = {"type": "Polygon", "coordinates": [ring],
           "properties": {"name": "Beijing", "adcode": "110000",
                          "note": "hand-digitised outline of Beijing municipality, about "
                                  "+-10 km; not the administrative boundary (see "
                                  "config/hindcast_beijing/README.md)",
                          "area_km2_approx": round(_area_km2(geom))}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")
    return path


def _area_km2(geom) -> float:
    lat0 = geom.centroid.y
    coords = np.asarray(geom.exterior.coords)
    x = coords[:, 0] * 111.32 * np.cos(np.deg2rad(lat0))
    y = coords[:, 1] * 110.57
    return float(abs(shapely.Polygon(np.column_stack([x, y])).area))


def build_inventory() -> tuple[xr.Dataset, dict]:
    from aqforecast.io import global_attrs

    m = _sample_machinery()
    lon_e = BOX["lon0"] + RES * np.arange(round((BOX["lon1"] - BOX["lon0"]) / RES) + 1)
    lat_e = BOX["lat0"] + RES * np.arange(round((BOX["lat1"] - BOX["lat0"]) / RES) + 1)
    lon_c, lat_c = np.meshgrid(0.5 * (lon_e[1:] + lon_e[:-1]), 0.5 * (lat_e[1:] + lat_e[:-1]))
    cell_km2 = (RES * 111.32 * np.cos(np.deg2rad(lat_c))) * (RES * 110.57)
    inside = m._city_fraction(beijing_polygon(), lon_e, lat_e)
    land_bj = inside * cell_km2
    land_out = (1.0 - inside) * cell_km2
    prox_bj = m.sector_proxies(lon_c, lat_c, BEIJING_CENTRES)
    prox_out = m.sector_proxies(lon_c, lat_c, OUTSIDE_CENTRES)
    comps = [p for p in POLS if p != "PM10"] + ["PMC"]
    mass = {p: np.zeros((len(SECTORS),) + lon_c.shape) for p in comps}
    totals = {}
    for p in POLS:
        bth_2016 = BTH_2014_KT[p] * 1e3 * TO_2016[p]
        density = max(bth_2016 - BEIJING_2016_MG[p], 0.0) / (BTH_KM2 - BEIJING_KM2)
        totals[p] = (BEIJING_2016_MG[p], density * land_out.sum())
    # PM10 = PM2.5 + coarse (PMC, its own sector shares), so that PM10 >= PM2.5 in every cell
    totals["PMC"] = tuple(a - b for a, b in zip(totals["PM10"], totals["PM25"]))
    for p in comps:
        bj_total, out_total = totals[p]
        for k, sec in enumerate(SECTORS):
            w = prox_bj[sec] * land_bj
            mass[p][k] += bj_total * SHARES_BEIJING[p][k] * w / w.sum()
            w = prox_out[sec] * land_out
            mass[p][k] += out_total * SHARES_OUTSIDE[p][k] * w / w.sum()
    mass["PM10"] = mass["PM25"] + mass.pop("PMC")
    totals.pop("PMC")
    attrs = global_attrs(
        "Synthetic emission inventory for Beijing and surroundings, base year 2016",
        source="workflow/scripts/hindcast_beijing_data.py (synthetic; see "
               "config/hindcast_beijing/README.md)",
        references="Cheng J. et al. (2019), ACP 19, 6125 (Beijing); Zheng H. et al. (2019), "
                   "ACP 19, 3447 (BTH industrial 2014); Zheng B. et al. (2018), ACP 18, 14095 "
                   "(MEIC trends)", base_year=2016)
    ds = xr.Dataset(coords={
        "lon": ("lon", np.round(lon_c[0], 6), {"standard_name": "longitude",
                                               "units": "degrees_east", "axis": "X"}),
        "lat": ("lat", np.round(lat_c[:, 0], 6), {"standard_name": "latitude",
                                                  "units": "degrees_north", "axis": "Y"}),
        "sector": ("sector", np.array(SECTORS, dtype=object),
                   {"long_name": "emission sector (MEIC)"}),
    }, attrs=attrs)
    for p in POLS:
        ds[p] = (("sector", "lat", "lon"), np.round(mass[p], 6),
                 {"long_name": f"annual emission of {p} per grid cell", "units": "Mg year-1",
                  "cell_methods": "area: sum time: sum"})
    return ds, totals


def prsa_file(start: datetime | str | None = None, utc_offset_h: float = 8.0) -> str:
    """The name of the PRSA file in :data:`STATIONS` whose local days (from its name,
    :data:`PRSA_PATTERN`) hold ``start`` (naive UTC, or ``YYYY-MM-DDTHH``); ``None``: the winter
    file, the committed config's. SystemExit when no file holds it."""
    import re
    from datetime import timedelta

    if start is None:
        return WINTER
    if isinstance(start, str):
        start = parse_start(start)
    day = (start + timedelta(hours=utc_offset_h)).date()
    held = []
    for f in sorted(STATIONS.glob("PRSA_12sites_*_hourly.csv")):
        m = re.fullmatch(PRSA_PATTERN, f.name)
        if m:
            first, last = (datetime.strptime(x, "%Y-%m-%d").date() for x in m.groups())
            held.append(f"{first} .. {last}")
            if first <= day <= last:
                return f.name
    raise SystemExit(f"--start {start:%Y-%m-%dT%H} (local day {day}): no PRSA file in {STATIONS} "
                     f"holds it (files: {'; '.join(held) or 'none'})")


def write_met(hours: int, out: Path, aerosol_dimming: bool = False,
              start: str | None = None) -> list[Path]:
    """The analysed met, ``hours`` records from ``start`` (``YYYY-MM-DDTHH`` UTC; default the
    config's ``time.start``) from the PRSA file that holds it (:func:`prsa_file`);
    ``aerosol_dimming``: insolation dimmed by the PM2.5 of the stations that are not withheld
    (:func:`aqforecast.met.station_analysis.aerosol_transmission`)."""
    from aqforecast.stages import met_from_stations

    return met_from_stations(CONFIG, [STATIONS / prsa_file(start)], out, start=start,
                             hours=hours, urban=URBAN, aerosol_dimming=aerosol_dimming)


def parse_start(text: str) -> datetime:
    """``YYYY-MM-DDTHH`` (UTC, as ``aqforecast forecast --start``) as a naive datetime."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected YYYY-MM-DDTHH (UTC)") from None


def derive_config(src: Path, dest: Path, start: datetime | None = None,
                  data: Path | None = None) -> Path:
    """Write ``dest``: the config ``src`` with ``time.start`` set to ``start`` (naive UTC) and,
    with ``data``, the met (``<data>/met/wrfout_d01_*``), inventory
    (``<data>/emissions/...``) and boundary-file (``<data>/boundary/...``) paths moved there;
    with ``start``, the observations' PRSA source is the file that holds it (:func:`prsa_file`);
    ``base_dir`` made absolute so ``dest`` may live anywhere. Edited as text (a YAML round trip
    would turn the species ``NO`` into ``False``); an expected key that is missing is an error.
    The result is checked by :func:`aqforecast.config.load_config`."""
    import re

    from aqforecast.config import load_config

    src = Path(src)
    base = load_config(src).base_dir
    text = src.read_text()

    def sub(pattern: str, repl: str) -> None:
        nonlocal text
        text, n = re.subn(pattern, lambda m: m.group(1) + repl, text, count=1,
                          flags=re.MULTILINE)
        if n != 1:
            raise SystemExit(f"{src}: expected a line matching {pattern!r} to edit")

    sub(r"^(base_dir:[ \t]*)\S.*$", str(base))
    if start is not None:
        sub(r"^(time:\s*\n(?:[ \t]*#.*\n|[ \t]*\n)*(?:[ \t]+(?!start:)\S.*\n)*?[ \t]+"
            r"start:\s*)\S+", start.strftime("%Y-%m-%dT%H:%M:%SZ"))
        sub(r"^([ \t]+-[ \t]*\{[ \t]*path:[ \t]*\S*/)PRSA_12sites_\S+_hourly\.csv",
            prsa_file(start))
    if data is not None:
        data = Path(data).resolve()
        sub(r"^([ \t]+d01:[ \t]*)\S*wrfout_d01_\*[ \t]*$", str(data / "met" / "wrfout_d01_*"))
        sub(r"^([ \t]+gridded:[ \t]*)\S+[ \t]*$",
            str(data / "emissions" / "inventory_beijing2016.nc"))
        sub(r"^([ \t]+path:[ \t]*)\S*boundary\S*\.nc[ \t]*$", str(data / BOUNDARY_FILE))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    load_config(dest)
    return dest


def _met_mixed_layer(met_dir: Path):
    """(times UTC, PBLH m) of the met files: the mean over the domain's outermost ring of cells
    (the columns next to the inflow faces); None when there are no met files."""
    files = sorted(met_dir.glob("wrfout_d01_*"))
    if not files:
        return None
    times, depth = [], []
    for f in files:
        with xr.open_dataset(f) as ds:
            p = np.asarray(ds["PBLH"].values, dtype=float)
            ring = np.ones(p.shape[1:], bool)
            ring[1:-1, 1:-1] = False
            depth.append(p[:, ring].mean(axis=1))
            times.append([np.datetime64(t.decode().replace("_", "T")) for t in
                          ds["Times"].values])
    return np.concatenate(times), np.concatenate(depth)


def write_boundary(out: Path, met_dir: Path | None = None,
                   percentile: float = BOUNDARY_PERCENTILE,
                   start: datetime | str | None = None) -> Path:
    """The analysed lateral inflow (module docstring) as a boundary-condition file: the
    regional background of the stations that are not withheld
    (:func:`aqforecast.transport.boundary_stations.station_background`), times in UTC over the whole
    PRSA file that holds ``start`` (:func:`prsa_file`; default the winter file), the mixed layer
    from ``met_dir``'s wrfout files where they exist
    (:func:`aqforecast.transport.boundary_stations.rolling_max_depth`, 24 h, as
    ``assimilation.mixed_layer_hours``)."""
    import pandas as pd

    from aqforecast.config import load_config
    from aqforecast.io import global_attrs, write_dataset
    from aqforecast.transport.boundary_stations import (
        boundary_dataset,
        rolling_max_depth,
        station_background,
    )
    from aqforecast.observations.readers import read_prsa

    cfg = load_config(CONFIG)
    withheld = list(cfg.verification.withheld_stations or [])
    table = read_prsa(STATIONS / prsa_file(start))
    # PRSA hours are Beijing time (UTC+8): the file's times are UTC
    table = table.assign(time=table["time"] - pd.Timedelta(hours=cfg.time.local_utc_offset_h))
    bg = station_background(table, percentile, exclude=withheld)
    met = _met_mixed_layer(met_dir) if met_dir is not None else None
    if met is None:
        log.warning("no met files in %s: the inflow's mixed layer is 1000 m throughout",
                    met_dir)
        depth = np.full(len(bg), 1000.0)
    else:
        depth = rolling_max_depth(met[0], met[1], hours=cfg.assimilation.mixed_layer_hours,
                                  at=bg.index)
    attrs = global_attrs(
        "Analysed lateral inflow for the Beijing hindcast: the regional background of the "
        "assimilated PRSA stations", source="workflow/scripts/hindcast_beijing_data.py "
        "--boundary observed (aqforecast.transport.boundary_stations)",
        stations_used=" ".join(bg.attrs["stations"]), stations_excluded=" ".join(withheld),
        percentile=f"{percentile:g} (O3 {100 - percentile:g})",
        note="uses the observations of the hours it drives (analysed inflow, not a forecast)")
    ds = boundary_dataset(bg, cfg.species, depth, lon=BOUNDARY_BOX["lon"],
                          lat=BOUNDARY_BOX["lat"], decay=cfg.assimilation.vertical_decay,
                          attrs=attrs)
    path = write_dataset(ds, out, compression_level=4, time_chunk=24)
    log.info("boundary: %d hours, stations %s (withheld %s left out), percentile %g; "
             "PM2.5 %.0f-%.0f ug m-3, O3 %.0f-%.0f ppb, mixed layer %.0f-%.0f m",
             len(bg), ", ".join(bg.attrs["stations"]), ", ".join(withheld), percentile,
             bg["PM25"].min(), bg["PM25"].max(), bg["O3"].min(), bg["O3"].max(),
             depth.min(), depth.max())
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--met-hours", type=int, default=6 * 24 + 2,
                    help="hourly met records from time.start or --start (default 146: a 24 h "
                         "spin-up and three 72-h cycles; N cycles need 24 N + 74)")
    ap.add_argument("--start", type=parse_start, default=None, metavar="YYYY-MM-DDTHH",
                    help="first met hour, UTC (default time.start of config.yaml); also writes "
                         "OUT/config.yaml, the config with this start and its inputs in OUT")
    ap.add_argument("--no-met", action="store_true", help="regions and inventory only")
    ap.add_argument("--aerosol-dimming", action="store_true",
                    help="dim the met's insolation by the aerosol optical depth of the observed "
                         "PM2.5 (withheld stations left out; README, Hindcast)")
    ap.add_argument("--boundary", choices=("profile", "observed"), default="observed",
                    help="observed (default, what config.yaml reads): also write the analysed "
                         f"lateral inflow data/{BOUNDARY_FILE} from the assimilated stations "
                         "(README, Hindcast); profile: no file (for a config with "
                         "inputs.boundary.kind: profile, the fixed background profiles)")
    ap.add_argument("--boundary-percentile", type=float, default=BOUNDARY_PERCENTILE,
                    help="percentile across the assimilated stations per hour (O3: 100 - it; "
                         "default %(default)s)")
    ap.add_argument("--out", type=Path, default=CASE / "data")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.perf_counter()
    write_region(CASE / "regions" / "beijing.geojson")
    from aqforecast.io import write_dataset

    ds, totals = build_inventory()
    write_dataset(ds, a.out / "emissions" / "inventory_beijing2016.nc", compression_level=9)
    for p, (bj, out) in totals.items():
        log.info("%-6s Beijing %10.0f Mg/yr, outside cells of the box %10.0f Mg/yr", p, bj, out)
    if not a.no_met:
        paths = write_met(a.met_hours, a.out / "met", a.aerosol_dimming,
                          None if a.start is None else a.start.strftime("%Y-%m-%dT%H"))
        log.info("wrote %d wrfout files to %s", len(paths), a.out / "met")
    if a.boundary == "observed":
        path = write_boundary(a.out / BOUNDARY_FILE, a.out / "met", a.boundary_percentile,
                              a.start)
        log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    if a.start is not None:
        cfg = derive_config(CONFIG, a.out / "config.yaml", a.start, a.out)
        log.info("wrote %s (time.start %s, inputs in %s)", cfg, a.start.isoformat(), a.out)
    log.info("done in %.1f s", time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
