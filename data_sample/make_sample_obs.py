"""Synthetic station observations for the sample case (an OSSE "truth"; no real observations
exist for the sample's dates).

A "truth" forecast runs from the configured start with a perturbed inventory (the scaling table
TRUTH_SCALING below: the errors the daily inversion should find), untagged; it is read at every
station of ``inputs.observations.station_coords`` inside the outer domain (the products' station
reading: nearest cell of the finest domain, surface values in reporting units, gases at the
298.15 K / 1013.25 hPa reference state), Gaussian noise of the observation error of
:func:`aqforecast.observations.operator.observation_error` is added (seeded), and the hourly
values are written as generic station CSV files, one per UTC day:
``OUT/stations_YYYYMMDD.csv`` with columns ``station,time,species,value,units,lon,lat`` (time
ISO 8601 with offset, hour beginning). ``OUT/truth_scaling.csv`` keeps the perturbation.

Usage: ``python data_sample/make_sample_obs.py --config config/config.yaml --hours 48
--out data_sample/observations`` (the truth run lands in ``OUT/truth/``, about a minute per
simulated day on 2 cores).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time as _time
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("make_sample_obs")

#: the "true" inventory error: factors the truth applies to the base inventory
TRUTH_SCALING = """region,sector,pollutant,factor
*,industry,NOx,1.4
*,residential,PM25,0.7
*,transport,NOx,1.25
*,power,SO2,0.8
*,agriculture,NH3,1.3
"""
SPECIES_UNITS = {"PM2.5": "ug m-3", "PM10": "ug m-3", "O3": "ug m-3", "NO2": "ug m-3",
                 "SO2": "ug m-3", "CO": "mg m-3"}
OBS_NAME = {"PM2.5": "PM25", "PM10": "PM10", "O3": "O3", "NO2": "NO2", "SO2": "SO2", "CO": "CO"}


def truth_run(config: Path, hours: int, work: Path) -> Path:
    """The perturbed-inventory forecast; returns its run directory."""
    from aqforecast.cli import main

    work.mkdir(parents=True, exist_ok=True)
    scaling = work / "truth_scaling.csv"
    scaling.write_text(TRUTH_SCALING)
    run = work / "truth"
    rc = main(["forecast", str(config), "--lead-hours", str(hours), "--out", str(run),
               "--scaling", str(scaling), "--no-tags", "--no-progress", "--overwrite"])
    if rc != 0:
        raise SystemExit(f"truth forecast failed (exit {rc})")
    return run


def sample_stations(config: Path, run: Path, seed: int = 7) -> pd.DataFrame:
    """Long table station, time (UTC hour beginning), species, value, units, lon, lat."""
    from aqforecast.config import load_config, resolve_path
    from aqforecast.observations.operator import observation_error
    from aqforecast.products import surface as surf
    from aqforecast.products import tables

    cfg = load_config(config)
    coords = cfg.inputs.observations.station_coords
    if coords is None:
        raise SystemExit(f"{config}: inputs.observations.station_coords is needed")
    surfaces = {d.name: surf.read_surface(run / f"conc_{d.name}.nc", d.name)
                for d in cfg.domains}
    st = tables.station_table(resolve_path(cfg, coords))
    loc = tables.locate_stations(st, surfaces)
    hourly = tables.hourly_at(loc, surfaces, 0.0).reset_index()
    where = st.set_index("station")
    rng = np.random.default_rng(seed)
    # grid spacing (km) of the domain each station is read in: the representativeness error
    dx_km = {name: surfaces[d].dx_m / 1000.0 for name, d in zip(loc.names, loc.domain)}
    dx = hourly["station"].map(dx_km).to_numpy(float)
    rows = []
    for sp, units in SPECIES_UNITS.items():
        if sp not in hourly:
            continue
        y = hourly[sp].to_numpy(float)
        err = observation_error(OBS_NAME[sp], y, dx)
        val = np.maximum(y + rng.normal(0.0, 1.0, y.size) * err, 0.0)
        rows.append(pd.DataFrame({
            "station": hourly["station"],
            "time": pd.to_datetime(hourly["time"]).dt.strftime("%Y-%m-%dT%H:00:00+00:00"),
            "species": sp, "value": np.round(val, 3 if sp == "CO" else 1), "units": units,
            "lon": hourly["station"].map(where["lon"]),
            "lat": hourly["station"].map(where["lat"])}))
    return pd.concat(rows, ignore_index=True)


def write_daily(table: pd.DataFrame, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    day = table["time"].str.slice(0, 10).str.replace("-", "")
    paths = []
    for d, g in table.groupby(day):
        p = out / f"stations_{d}.csv"
        tmp = p.with_suffix(".csv.tmp")
        g.to_csv(tmp, index=False)
        tmp.replace(p)
        paths.append(p)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--hours", type=int, default=48, help="length of the truth run, h")
    ap.add_argument("--out", type=Path, default=Path("data_sample/observations"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep-truth", action="store_true", help="keep OUT/truth/ (the run)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = _time.perf_counter()
    run = truth_run(a.config, a.hours, a.out)
    table = sample_stations(a.config, run, a.seed)
    paths = write_daily(table, a.out)
    if not a.keep_truth:
        shutil.rmtree(run)
    log.info("wrote %d station files (%d values, %d stations) to %s in %.0f s", len(paths),
             len(table), table["station"].nunique(), a.out, _time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
