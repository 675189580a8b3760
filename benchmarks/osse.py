"""OSSE harness for the analysis: does assimilating stations improve the forecast where no
station was assimilated?

1. spin-up: a run from the cold start to T0 (its restart at T0 is the background state);
2. truth: from the spin-up state at T0 with PM2.5 components and O3 multiplied by a smooth
   perturbation (a Gaussian blob, +60 % at its centre, plus +20 % everywhere) and the industry
   and residential emissions scaled by 1.3 (a scaling table), run for the horizon;
3. observations: a lattice of stations inside the outer domain samples the truth's surface
   every hour (bilinear, the assimilation's own operator) with Gaussian noise of the
   observation error; every third station is withheld;
4. free forecast: from the unperturbed spin-up state, the prior emissions;
5. analysis at T0 (`aqforecast assimilate`, OI) from the assimilated stations' observations of
   the hour ending at T0, then a forecast from it with the prior emissions;
6. RMSE at the withheld stations against the truth, per lead day, free vs analysis, and the
   gain 1 - RMSE_analysis / RMSE_free (CNEMC's operational OI: 23 / 8.2 / 4.8 % on days 1/2/3
   for PM2.5, published).

Usage: ``python benchmarks/osse.py [--days 2] [--spinup 6] [--work DIR]`` on the small test case
(24 x 21 x 8 at 3 km with a 1 km nest; met generated on the fly). Prints a table.

``python benchmarks/osse.py --case sample [--days 3] [--spinup 24] [--method oi|letkf]
[--members 8] [--ic-sigma X|background [--window 1] [--ensemble-seed S]
[--no-emission-perturbation]] [--withheld-offset 0|1|2] [--assim KEY=VALUE] [--label L]
[--reuse] [--work DIR]``: the same design on the real sample case
(config/config.yaml: 54 x 48 x 15 at 3 km + the 1 km Hangzhou nest, untagged runs):

* spin-up of ``--spinup`` hours from the cold start (truth and background both start from its
  state at T0, so the initial state is not the background profile);
* truth: PM2.5 components and O3 of every layer and both domains times the fixed smooth field
  ``TRUTH_FACTOR(lon, lat)`` in [1.2, 1.8] (wavelengths ~0.9 deg lon x 0.8 deg lat), and the
  scaling table ``TRUTH_SCALING`` (industry and residential x1.3), run ``--days`` x 24 h;
* stations: the CNEMC stations of ``inputs.observations.station_coords`` inside d01, each read
  (bilinear, the assimilation's operator) in the finest domain containing it; every third
  (in code order; ``--withheld-offset k``: index % 3 == k) withheld; the observations of the
  hour ending at T0 are the truth's state at T0 plus Gaussian noise of the observation error
  of that domain's grid spacing;
* free forecast from the unperturbed spin-up state; analysis (``aqforecast assimilate``, OI, or
  LETKF with ``aqforecast ensemble`` members of the spin-up) at T0 from the other stations'
  PM2.5, O3 and NO2; the forecast from it;
* a forecast from the truth's own initial state with the prior emissions (``perfect_init``):
  ``gain_bound``, the most any analysis of the initial state can gain while the emission error
  remains;
* ``--ic-sigma X|background [--window W]`` (LETKF): the ensemble has initial-state
  perturbations (``aqforecast ensemble --ic-sigma``), and so that their spread survives to T0
  the ensemble is made around a *W-hour control* ending at T0 (default 1 h) instead of the
  spin-up: a cold run of ``spinup - W`` hours (``pre_<spinup - W>h``, its restart at T0 - W),
  then ``window_letkf<label>`` from that restart to T0, whose T0 state is the spin-up's (the
  restart resume is exact; the harness prints the largest difference), the members of its
  ensemble W-hour forecasts from perturbed states at T0 - W (and perturbed emissions unless
  ``--no-emission-perturbation``). The LETKF analyses that control's T0 state -- the OI's
  background -- with that ensemble;
* a 5-95 % bootstrap interval of each gain over the withheld stations (``gain_p05``,
  ``gain_p95``; per-station MSE by lead day in ``WORK/mse_by_station_<method><label>.csv``, for
  paired comparisons of two methods);
* RMSE at the withheld stations by lead day (and by output hour,
  ``WORK/rmse_by_hour_<method><label>.csv``), the lead-0 row being the analysis itself;
* the LETKF's inflation per domain and quantity (applied, its innovation estimate, chi^2;
  ``statistics.csv``) is logged; ``--assim inflation_adaptive=true`` (adaptive inflation),
  ``--assim rtps_alpha=0.5`` (RTPS) compare the inflation options.

``--inversion-hours H`` (sample and regional cases) adds the daily emission inversion, the
cycle's other learning stage: the truth's emission error (x1.3) acting on the background's air
over the H hours before T0 is observed hourly (NO2, SO2, PM2.5) at the assimilated stations and
``aqforecast invert`` estimates the factors from a tagged prior run of the same hours; the
72 h forecasts with that posterior from the background (``gain_inversion``) and from the
analysis (``gain_analysis_inversion``: the whole cycle, assimilation + inversion), beside a
forecast from the background with the truth's own emissions (``gain_bound_emissions``: the
most an inversion can gain while the initial-state error remains).

``--reuse`` keeps the runs already complete in WORK (spin-up, truth, free) and reruns only the
analysis and its forecast.

``python benchmarks/osse.py --case regional [the sample case's options]``: the same design on
the regional case of ``benchmarks/regional_case.py`` (eastern China at 36 km, 64 x 60 cells,
the national CNEMC stations in it; built once in ``WORK-case``, default
``/tmp/aqforecast-osse-regional-case``), a 48 h spin-up, and the truth's initial-state factor
at wavelengths of 6 x 5 deg (:data:`REGIONAL_WAVELENGTHS`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _surface(conc: xr.Dataset, t) -> dict:
    """Surface fields in model units (mol mol-1; aerosols ug m-3 x 1e-9 with density 1) of a
    conc/initial-state dataset at time t (or its only time)."""
    sel = conc.sel(time=t) if "time" in conc.dims else conc
    lev = sel["lev"].values[0] if "lev" in sel.dims else None
    out = {}
    for name in sel.data_vars:
        v = sel[name]
        if "lev" not in v.dims or v.ndim != 3:
            continue
        out[name] = v.sel(lev=lev).values.astype(float) * 1e-9
    return out


def run(days: int = 2, spinup: int = 6, work: Path | None = None, seed: int = 3,
        quantities=("PM25", "O3"), log=print) -> pd.DataFrame:
    from forecast_case import small_config

    from aqforecast.observations.operator import (StationOperator, model_equivalent,
                                                          observation_error)
    from aqforecast.cli import main
    from aqforecast.config import load_config
    from aqforecast.grid import grids_from_config

    work = Path(work or "/tmp/aqforecast-osse")
    if work.exists():
        shutil.rmtree(work)
    hours = spinup + 24 * days
    case = small_config(work, hours=hours, tags=False)
    cfg = load_config(case)
    t0 = np.datetime64(cfg.time.start, "s") + np.timedelta64(spinup, "h")
    stamp = str(np.datetime64(t0, "h"))
    lead = 24 * days
    common = ["--no-progress", "--no-tags"]
    clock = time.perf_counter()
    assert main(["forecast", str(case), "--lead-hours", str(spinup), "--out",
                 str(work / "spinup"), *common]) == 0
    bg = work / "spinup" / "restart" / stamp
    # truth: perturbed state and emissions
    grids = grids_from_config(cfg)
    tinit = work / "truth_init"
    tinit.mkdir()
    for name, grid in grids.items():
        ds = xr.load_dataset(bg / f"initial_{name}.nc")
        lon, lat = grid.lonlat
        c_lon, c_lat = np.mean(lon), np.mean(lat)
        blob = 1.2 + 0.6 * np.exp(-(((lon - c_lon) / 0.25) ** 2 + ((lat - c_lat) / 0.2) ** 2))
        for sp in ("PPM25", "SO4", "NO3", "NH4", "SNGN", "SOA", "O3"):
            if sp in ds:
                ds[sp].values = ds[sp].values * blob[None]
        ds.to_netcdf(tinit / f"initial_{name}.nc")
    scaling = work / "truth_scaling.csv"
    scaling.write_text("region,sector,pollutant,factor\n*,industry,*,1.3\n"
                       "*,residential,*,1.3\n")
    start = ["--start", stamp, "--lead-hours", str(lead)]
    assert main(["forecast", str(case), *start, "--initial", str(tinit), "--scaling",
                 str(scaling), "--out", str(work / "truth"), *common]) == 0
    assert main(["forecast", str(case), *start, "--initial", str(bg), "--out",
                 str(work / "free"), *common]) == 0
    # stations: a lattice in d01, every third withheld
    d01 = grids["d01"]
    lon2d, lat2d = d01.lonlat
    js, is_ = np.meshgrid(np.arange(2, d01.ny - 2, 3), np.arange(2, d01.nx - 2, 3))
    slon = lon2d[js.ravel(), is_.ravel()] + 0.004
    slat = lat2d[js.ravel(), is_.ravel()] - 0.003
    withheld = np.arange(slon.size) % 3 == 0
    op = StationOperator(lon2d, lat2d, slon, slat)
    dx_km = float(np.sqrt(np.mean(d01.cell_area)) / 1000.0)
    rng = np.random.default_rng(seed)
    # observations of the hour ending at T0: the truth's initial state (its T0 surface)
    truth0 = _surface(xr.load_dataset(tinit / "initial_d01.nc"), None)
    rows = []
    for q in quantities:
        y = op(model_equivalent(q, truth0, np.ones(lon2d.shape)))
        y = np.maximum(y + rng.normal(0.0, observation_error(q, y, dx_km)), 0.0)
        sp = {"PM25": "PM2.5"}.get(q, q)
        for k in np.flatnonzero(~withheld):
            rows.append({"station": f"S{k}", "time": str(np.datetime64(t0, "h") -
                                                          np.timedelta64(1, "h")) + ":00:00Z",
                         "species": sp, "value": y[k], "units": "ug m-3", "lon": slon[k],
                         "lat": slat[k]})
    obs = work / "obs.csv"
    pd.DataFrame(rows).to_csv(obs, index=False)
    assert main(["assimilate", str(case), "--background", str(work / "spinup"), "--obs",
                 str(obs), "--out", str(work / "analysis"), "--time", stamp]) == 0
    assert main(["forecast", str(case), *start, "--initial", str(work / "analysis"), "--out",
                 str(work / "analysed"), *common]) == 0
    # RMSE at the withheld stations by lead day
    files = {k: xr.load_dataset(work / k / "conc_d01.nc") for k in ("truth", "free", "analysed")}
    times = files["truth"]["time"].values
    out = []
    for q in quantities:
        for day in range(days):
            sel = [t for t in times if 0 < (t - t0) / np.timedelta64(1, "h") <= 24 * (day + 1)
                   and (t - t0) / np.timedelta64(1, "h") > 24 * day]
            err = {"free": [], "analysed": []}
            for t in sel:
                truth = op(model_equivalent(q, _surface(files["truth"], t),
                                            np.ones(lon2d.shape)))[withheld]
                for k in err:
                    f = op(model_equivalent(q, _surface(files[k], t),
                                            np.ones(lon2d.shape)))[withheld]
                    err[k].append(f - truth)
            rf = float(np.sqrt(np.mean(np.square(err["free"]))))
            ra = float(np.sqrt(np.mean(np.square(err["analysed"]))))
            out.append({"quantity": q, "day": day + 1, "stations": int(withheld.sum()),
                        "rmse_free": rf, "rmse_analysis": ra, "gain": 1.0 - ra / rf})
    table = pd.DataFrame(out)
    log(f"OSSE on the small case: {slon.size} stations ({withheld.sum()} withheld), spin-up "
        f"{spinup} h, {days} day(s), wall {time.perf_counter() - clock:.0f} s")
    return table


#: the truth's initial-state factor of PM2.5 components and O3 (all layers, both domains):
#: smooth, 1.2 .. 1.8, wavelengths ~0.9 deg lon x 0.8 deg lat (~86 x 89 km) over the sample
#: domain; fixed before any result was seen
def TRUTH_FACTOR(lon, lat, wavelengths=(0.9, 0.8)):
    return 1.2 + 0.6 * 0.25 * (1.0 + np.sin(2 * np.pi * (lon - 120.0) / wavelengths[0])) \
        * (1.0 + np.cos(2 * np.pi * (lat - 30.0) / wavelengths[1]))


#: the regional case's truth factor: the same form at wavelengths of 6 deg lon x 5 deg lat
#: (~560 km, the scale of a regional haze episode) over its ~2300 km grid; fixed before any
#: result was seen
REGIONAL_WAVELENGTHS = (6.0, 5.0)


TRUTH_SCALING = "region,sector,pollutant,factor\n*,industry,*,1.3\n*,residential,*,1.3\n"
PERTURBED = ("PPM25", "SO4", "NO3", "NH4", "SNGN", "SOA", "O3")
SAMPLE_QUANTITIES = ("PM25", "O3", "NO2")
#: the scored runs' column names (rmse_<name>, se_<name>) and their gains against the free run
RUN_COLUMNS = {"free": "free", "analysed": "analysis", "bound": "bound",
               "inversion": "inversion", "both": "analysis_inversion",
               "bound_emissions": "bound_emissions"}
GAIN_COLUMNS = {"analysis": "gain", "bound": "gain_bound", "inversion": "gain_inversion",
                "analysis_inversion": "gain_analysis_inversion",
                "bound_emissions": "gain_bound_emissions"}


def bootstrap_gain(mse_free, mse_analysis, draws: int = 2000, seed: int = 0) -> np.ndarray:
    """Gains ``1 - sqrt(mean mse_analysis / mean mse_free)`` over ``draws`` resamplings (with
    replacement) of the withheld stations (their per-station MSE over a lead day): how much
    the table's gain owes to which few stations were withheld."""
    a, b = np.asarray(mse_free, float), np.asarray(mse_analysis, float)
    idx = np.random.default_rng(seed).integers(0, a.size, (draws, a.size))
    den = a[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, 1.0 - np.sqrt(b[idx].mean(axis=1) / den), np.nan)


def _done(run: Path) -> bool:
    return (run / "_SUCCESS").exists()


def _config_copy(config: Path, dest: Path, **sections) -> Path:
    """A copy of the config at ``dest`` with its ``base_dir`` made absolute and each of
    ``sections`` (name -> dict) merged into that section; returns ``dest``."""
    import yaml

    from aqforecast.config import read_yaml

    raw = read_yaml(config)
    raw["base_dir"] = str((config.parent / raw.get("base_dir", ".")).resolve())
    for name, values in sections.items():
        raw[name] = {**(raw.get(name) or {}), **values}
    dest.write_text(yaml.safe_dump(raw, sort_keys=False))
    return dest


def _inversion_runs(config: Path, work: Path, stamp: str, hours: int, st, slon, slat,
                    withheld, seed: int, reuse: bool, walls: dict, label: str = "",
                    overrides: dict | None = None, log=print) -> Path:
    """The daily emission inversion of the OSSE over the ``hours`` before T0 (``stamp``);
    returns the posterior ``scaling.csv``.

    From the spin-up's restart at T0 - hours (``restart_every_hours`` must divide it): the
    prior run (``inv_prior``: the prior inventory, tags on -- a copy of the config with
    ``tags.enabled``, its regions and sectors) and the window's truth (``inv_truth``: the truth's
    emissions, ``TRUTH_SCALING``, acting on the background's air; the truth's initial-state
    error starts only at T0), hourly NO2, SO2 and PM2.5 of the window's truth at the
    *assimilated* stations (the inversion's own operator, ``build_observation_system``) with
    Gaussian noise of the observation error, and ``aqforecast invert`` (the config's
    ``inversion`` section with ``overrides``, the base inventory as prior) into
    ``WORK/inversion<label>``."""
    from inversion_osse import write_station_obs

    from aqforecast.cli import main
    from aqforecast.config import load_config

    out = work / f"inversion{label}"
    if reuse and not overrides and (out / "scaling.csv").exists():
        return out / "scaling.csv"
    t_w = str(np.datetime64(stamp, "h") - np.timedelta64(hours, "h"))
    init_w = work / "spinup" / "restart" / t_w
    if not init_w.is_dir():
        raise ValueError(f"--inversion-hours {hours}: no spin-up restart at {t_w} "
                         f"({init_w}); make it a multiple of outputs.restart_every_hours")
    tagged = _config_copy(config, work / f"config_tags{label if overrides else ''}.yaml",
                          tags={"enabled": True}, inversion=overrides or {})
    truth_csv = work / "truth_scaling.csv"
    common = ["--start", t_w, "--lead-hours", str(hours), "--initial", str(init_w),
              "--no-progress", "--overwrite"]
    for name, cfg_path, extra in (("inv_prior", tagged, []),
                                  ("inv_truth", config, ["--no-tags", "--scaling",
                                                         str(truth_csv)])):
        if reuse and _done(work / name):
            continue
        tic = time.perf_counter()
        assert main(["forecast", str(cfg_path), *common, *extra, "--out",
                     str(work / name)]) == 0
        walls[name] = time.perf_counter() - tic
    keep = ~np.asarray(withheld)
    obs = work / "obs_window.csv"
    n_obs = write_station_obs(load_config(tagged), work / "inv_truth",
                              st["station"].to_numpy()[keep], slon[keep], slat[keep], t_w,
                              hours, obs, np.random.default_rng(seed + 1))
    if out.exists():
        shutil.rmtree(out)
    tic = time.perf_counter()
    assert main(["invert", str(tagged), "--run", str(work / "inv_prior"), "--obs", str(obs),
                 "--out", str(out)]) == 0
    walls["invert"] = time.perf_counter() - tic
    factors = pd.read_csv(out / "scaling.csv")
    log(f"inversion over {t_w} .. {stamp} ({int(keep.sum())} stations x {hours} h, {n_obs} "
        f"observations):\n{factors.to_string(index=False)}")
    return out / "scaling.csv"


def run_sample(days: int = 3, spinup: int = 24, work: Path | None = None, seed: int = 3,
               method: str = "oi", members: int = 8, reuse: bool = False,
               config: Path | None = None, assim: dict | None = None, label: str = "",
               ic_sigma=None, window: int = 1, ensemble_emissions: bool = True,
               withheld_offset: int = 0, ensemble_seed: int | None = None,
               wavelengths=(0.9, 0.8), inversion_hours: int = 0,
               inversion_overrides: dict | None = None,
               log=print) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The OSSE on the sample case (module docstring). Returns (table by lead day, RMSE by
    output hour). ``assim``: overrides of the config's ``assimilation`` section for the
    analysis (e.g. ``{"mixed_layer_hours": 0, "vertical_decay": 0}``, the PBL at T only);
    ``label``: suffix of the analysis' directories and tables in WORK; ``ic_sigma``: the
    LETKF ensemble's ``--ic-sigma`` (a number or "background"; None: emission perturbations
    of the spin-up, the former design), ``window``: hours of its control before T0;
    ``ensemble_emissions``: also perturb the members' emissions; ``withheld_offset``: the
    stations withheld are those with index % 3 == this (0, 1 or 2: three disjoint sets);
    ``ensemble_seed``: the initial-state ensemble's seed (default ``seed``, the observation
    noise's); ``wavelengths``: of the truth's initial-state factor (deg lon, deg lat);
    ``inversion_hours``: > 0 adds the daily emission inversion over that many hours before T0
    (:func:`_inversion_runs`, ``inversion_overrides``: of the config's ``inversion``
    section) and the forecasts with its posterior inventory."""
    from aqforecast.cli import main
    from aqforecast.config import load_config, resolve_path
    from aqforecast.grid import grids_from_config
    from aqforecast.observations.operator import (StationOperator, model_equivalent,
                                                  observation_error)
    from aqforecast.products.tables import station_table

    config = Path(config or REPO / "config" / "config.yaml")
    work = Path(work or "/tmp/aqforecast-osse-sample")
    if work.exists() and not reuse:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = load_config(config)
    grids = grids_from_config(cfg)
    t0 = np.datetime64(cfg.time.start, "s") + np.timedelta64(spinup, "h")
    stamp = str(np.datetime64(t0, "h"))
    lead = 24 * days
    common = ["--no-progress", "--no-tags", "--overwrite"]
    clock = time.perf_counter()
    walls = {}

    def forecast(out: str, *extra):
        if reuse and _done(work / out):
            return
        tic = time.perf_counter()
        assert main(["forecast", str(config), *extra, "--out", str(work / out), *common]) == 0
        walls[out] = time.perf_counter() - tic

    forecast("spinup", "--lead-hours", str(spinup))
    bg = work / "spinup" / "restart" / stamp
    tinit = work / "truth_init"
    if not (reuse and tinit.is_dir()):
        tinit.mkdir(exist_ok=True)
        for name, grid in grids.items():
            ds = xr.load_dataset(bg / f"initial_{name}.nc")
            lon, lat = grid.lonlat
            f = TRUTH_FACTOR(lon, lat, wavelengths)
            for sp in PERTURBED:
                if sp in ds:
                    ds[sp].values = ds[sp].values * f[None]
            ds.to_netcdf(tinit / f"initial_{name}.nc")
    scaling = work / "truth_scaling.csv"
    scaling.write_text(TRUTH_SCALING)
    start = ["--start", stamp, "--lead-hours", str(lead)]
    forecast("truth", *start, "--initial", str(tinit), "--scaling", str(scaling))
    forecast("free", *start, "--initial", str(bg))
    # the bound: the truth's own initial state with the prior emissions (a perfect analysis);
    # what no initial-state analysis can beat while the emission error remains
    forecast("perfect_init", *start, "--initial", str(tinit))

    # stations: CNEMC sites inside d01, read in the finest domain containing them
    st = station_table(resolve_path(cfg, cfg.inputs.observations.station_coords))
    st = st.sort_values("station").reset_index(drop=True)
    slon, slat = st["lon"].to_numpy(float), st["lat"].to_numpy(float)
    order = sorted(grids, key=lambda n: float(np.mean(grids[n].cell_area)))  # finest first
    ops = {n: StationOperator(*grids[n].lonlat, slon, slat) for n in order}
    where = np.full(len(st), "", dtype=object)
    for n in order:
        where[(where == "") & ops[n].inside] = n
    inside = where != ""
    st, slon, slat, where = st[inside].reset_index(drop=True), slon[inside], slat[inside], \
        where[inside]
    ops = {n: StationOperator(*grids[n].lonlat, slon, slat) for n in order}
    if withheld_offset not in (0, 1, 2):
        raise ValueError(f"--withheld-offset {withheld_offset}: 0, 1 or 2")
    withheld = np.arange(len(st)) % 3 == withheld_offset
    dx_km = {n: float(np.sqrt(np.mean(grids[n].cell_area)) / 1000.0) for n in order}

    def at_stations(q, fields: dict) -> np.ndarray:
        """q at every station from {domain: surface fields}, each in its finest domain."""
        out = np.full(len(st), np.nan)
        for n in order:
            m = where == n
            v = ops[n](model_equivalent(q, fields[n], np.ones(grids[n].lonlat[0].shape)))
            out[m] = v[m]
        return out

    truth0 = {n: _surface(xr.load_dataset(tinit / f"initial_{n}.nc"), None) for n in order}
    rng = np.random.default_rng(seed)
    rows = []
    hour = str(np.datetime64(t0, "h") - np.timedelta64(1, "h")) + ":00:00Z"
    for q in SAMPLE_QUANTITIES:
        y = at_stations(q, truth0)
        sig = np.array([observation_error(q, y[k:k + 1], dx_km[where[k]])[0]
                        for k in range(len(st))])
        y = np.maximum(y + rng.normal(0.0, 1.0, y.size) * sig, 0.0)
        sp = {"PM25": "PM2.5"}.get(q, q)
        for k in np.flatnonzero(~withheld):
            rows.append({"station": st["station"].iloc[k], "time": hour, "species": sp,
                         "value": y[k], "units": "ug m-3", "lon": slon[k], "lat": slat[k]})
    obs = work / "obs.csv"
    pd.DataFrame(rows).to_csv(obs, index=False)

    acfg_path = config
    if assim:  # a copy of the config with assimilation options changed
        acfg_path = _config_copy(config, work / f"config_{method}{label}.yaml",
                                 assimilation=assim)
    background = work / "spinup"
    if method == "letkf" and ic_sigma is not None:
        if not 1 <= window < spinup:
            raise ValueError(f"--window {window}: 1 .. spinup - 1 hours")
        t_w = t0 - np.timedelta64(window, "h")
        stamp_w = str(np.datetime64(t_w, "h"))
        pre = f"pre_{spinup - window}h"
        forecast(pre, "--lead-hours", str(spinup - window))
        init_w = work / pre / "restart" / stamp_w
        wname = f"window_{method}{label}"
        if (work / wname).exists():
            shutil.rmtree(work / wname)
        forecast(wname, "--start", stamp_w, "--lead-hours", str(window), "--initial",
                 str(init_w))
        background = work / wname
        for n in order:  # the window control's T0 state is the spin-up's (exact resume)
            a = xr.load_dataset(bg / f"initial_{n}.nc")
            b = xr.load_dataset(background / "restart" / stamp / f"initial_{n}.nc")
            diff = max(float(np.max(np.abs(a[v].values - b[v].values)) /
                             max(float(np.max(np.abs(a[v].values))), 1e-30))
                       for v in PERTURBED + ("NO2", "NO") if v in a and v in b)
            log(f"window control vs spin-up at T0, {n}: max relative difference {diff:.2e}")
        tic = time.perf_counter()
        assert main(["ensemble", str(acfg_path), "--run", str(background), "--members",
                     str(members), "--workers", "1", "--seed",
                     str(seed if ensemble_seed is None else ensemble_seed), "--ic-sigma",
                     str(ic_sigma), "--initial", str(init_w),
                     *([] if ensemble_emissions else ["--no-emission-perturbation"])]) == 0
        walls["ensemble"] = time.perf_counter() - tic
    elif method == "letkf" and not (reuse and _done(work / "spinup" / "ensemble")):
        tic = time.perf_counter()
        assert main(["ensemble", str(config), "--run", str(work / "spinup"), "--members",
                     str(members), "--workers", "1", "--seed", str(seed)]) == 0
        walls["ensemble"] = time.perf_counter() - tic
    ana, fc = f"analysis_{method}{label}", f"analysed_{method}{label}"
    for d in (ana, fc):
        if (work / d).exists():
            shutil.rmtree(work / d)
    tic = time.perf_counter()
    assert main(["assimilate", str(acfg_path), "--background", str(background), "--obs",
                 str(obs), "--out", str(work / ana), "--time", stamp, "--method", method]) == 0
    walls["assimilate"] = time.perf_counter() - tic
    stats_a = pd.read_csv(work / ana / "statistics.csv")
    if "inflation" in stats_a and stats_a["inflation"].notna().any():
        # the LETKF's inflation per domain and quantity (applied; innovation estimate)
        log("inflation: " + "; ".join(
            f"{r.domain} {r.quantity} {r.inflation:.3g} (estimate {r.inflation_obs:.3g} +- "
            f"{r.inflation_obs_sd:.2g}, chi2 {r.chi2:.2f})"
            for r in stats_a.itertuples() if np.isfinite(r.inflation)))
    forecast(fc, *start, "--initial", str(work / ana))

    runs = {"truth": work / "truth", "free": work / "free", "analysed": work / fc,
            "bound": work / "perfect_init"}
    inits = {"truth": tinit, "free": bg, "analysed": work / ana, "bound": tinit}
    if inversion_hours:
        posterior = _inversion_runs(config, work, stamp, inversion_hours, st, slon, slat,
                                    withheld, seed, reuse, walls, label, inversion_overrides,
                                    log)
        forecast("perfect_emissions", *start, "--initial", str(bg), "--scaling", str(scaling))
        inv_fc = f"inverted{label}"
        if (work / inv_fc).exists():
            shutil.rmtree(work / inv_fc)
        forecast(inv_fc, *start, "--initial", str(bg), "--scaling", str(posterior))
        fci = f"{fc}_inverted"
        if (work / fci).exists():
            shutil.rmtree(work / fci)
        forecast(fci, *start, "--initial", str(work / ana), "--scaling", str(posterior))
        runs.update(inversion=work / inv_fc, both=work / fci,
                    bound_emissions=work / "perfect_emissions")
        inits.update(inversion=bg, both=work / ana, bound_emissions=bg)
    files = {k: {n: xr.load_dataset(r / f"conc_{n}.nc") for n in order}
             for k, r in runs.items()}
    times = [t for t in files["truth"][order[0]]["time"].values
             if 0 < (t - t0) / np.timedelta64(1, "h") <= lead]
    per_hour, per_station = [], []
    names = st["station"].to_numpy()[withheld]
    for q in SAMPLE_QUANTITIES:
        rec = [(0.0, {k: at_stations(q, {n: _surface(xr.load_dataset(inits[k] /
                                                                         f"initial_{n}.nc"), None)
                                          for n in order}) for k in inits})]
        for t in times:
            h = float((t - t0) / np.timedelta64(1, "h"))
            rec.append((h, {k: at_stations(q, {n: _surface(files[k][n], t) for n in order})
                            for k in files}))
        for h, v in rec:
            err = {k: (v[k] - v["truth"])[withheld] for k in runs if k != "truth"}
            per_station += [{"quantity": q, "hour": h, "day": int(np.ceil(h / 24.0)),
                             "station": s_, **{f"se_{RUN_COLUMNS[k]}": e[i] ** 2
                                               for k, e in err.items()}}
                            for i, s_ in enumerate(names)]
            per_hour.append({"quantity": q, "hour": h, "day": int(np.ceil(h / 24.0)),
                             **{f"mse_{RUN_COLUMNS[k]}": float(np.mean(e ** 2))
                                for k, e in err.items()},
                             "truth_mean": float(np.mean(v["truth"][withheld]))})
    cols = [RUN_COLUMNS[k] for k in runs if k != "truth"]
    mse = [f"mse_{c}" for c in cols]
    ph = pd.DataFrame(per_hour)
    g = ph.groupby(["quantity", "day"], sort=False)[mse].mean()
    table = pd.DataFrame({"stations": int(withheld.sum()),
                          **{f"rmse_{c}": np.sqrt(g[f"mse_{c}"]) for c in cols}}).reset_index()
    for frame, src in ((ph, ph[mse]), (table, g[mse].reset_index(drop=True))):
        rmse = np.sqrt(src)
        free = rmse["mse_free"].where(rmse["mse_free"] > 0)  # no free error (NO2 at T0)
        for c in cols:
            if c != "free":
                frame[GAIN_COLUMNS[c]] = (1.0 - rmse[f"mse_{c}"] / free).to_numpy()
    for c in cols:
        ph[f"rmse_{c}"] = np.sqrt(ph[f"mse_{c}"])
    # how much the gain depends on which stations were withheld: a bootstrap over them
    se = [f"se_{c}" for c in cols]
    ps = pd.DataFrame(per_station).groupby(["quantity", "day", "station"], sort=False)[
        se].mean().reset_index()
    ps.to_csv(work / f"mse_by_station_{method}{label}.csv", index=False)
    for c in ("analysis", "analysis_inversion"):
        if c not in cols:
            continue
        lo, hi = [], []
        for (q, d), grp in ps.groupby(["quantity", "day"], sort=False):
            gains = bootstrap_gain(grp["se_free"].to_numpy(), grp[f"se_{c}"].to_numpy())
            lo.append(np.nanpercentile(gains, 5) if np.isfinite(gains).any() else np.nan)
            hi.append(np.nanpercentile(gains, 95) if np.isfinite(gains).any() else np.nan)
        table[f"{GAIN_COLUMNS[c]}_p05"], table[f"{GAIN_COLUMNS[c]}_p95"] = lo, hi
    drop = mse
    ph.drop(columns=drop).to_csv(work / f"rmse_by_hour_{method}{label}.csv", index=False)
    table.to_csv(work / f"osse_{method}{label}.csv", index=False)
    (work / f"walls_{method}{label}.json").write_text(json.dumps(walls, indent=1))
    log(f"OSSE on {config} ({method}{label}, {assim or 'config defaults'}): {len(st)} CNEMC "
        f"stations in d01 ({int(withheld.sum())} withheld; {int(np.sum(where != order[-1]))} "
        f"read in the nest), T0 {stamp} after a {spinup} h spin-up, {days} day(s); wall "
        f"{time.perf_counter() - clock:.0f} s "
        f"this call ({', '.join(f'{k} {v:.0f} s' for k, v in walls.items())})")
    return table, ph.drop(columns=drop)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=("small", "sample", "regional"), default="small",
                    help="regional: benchmarks/regional_case.py (eastern China at 36 km, "
                         "built in WORK-case), the sample case's design on it")
    ap.add_argument("--days", type=int, default=None, help="small: 2, sample: 3")
    ap.add_argument("--spinup", type=int, default=None, help="hours; small: 6, sample: 24")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--method", choices=("oi", "letkf"), default="oi", help="sample case")
    ap.add_argument("--members", type=int, default=8, help="sample case, letkf")
    ap.add_argument("--reuse", action="store_true", help="sample case: keep complete runs")
    ap.add_argument("--hourly", action="store_true", help="also print RMSE by output hour")
    ap.add_argument("--assim", action="append", default=[], metavar="KEY=VALUE",
                    help="sample case: override assimilation.KEY for the analysis (YAML value)")
    ap.add_argument("--label", default="", help="sample case: suffix of the analysis runs")
    ap.add_argument("--ic-sigma", default=None, metavar="X|background",
                    help="sample case, letkf: members with initial-state perturbations "
                         "(aqforecast ensemble --ic-sigma) around a --window control")
    ap.add_argument("--window", type=int, default=1,
                    help="sample case, letkf with --ic-sigma: hours of the ensemble's control "
                         "before T0 (1)")
    ap.add_argument("--ensemble-seed", type=int, default=None,
                    help="sample case, letkf with --ic-sigma: the ensemble's seed (default 3, "
                         "the observation noise's)")
    ap.add_argument("--withheld-offset", type=int, default=0,
                    help="sample case: withhold the stations with index %% 3 == this (0)")
    ap.add_argument("--no-emission-perturbation", dest="ensemble_emissions",
                    action="store_false", help="sample case, letkf with --ic-sigma: "
                                               "initial-state perturbations only")
    ap.add_argument("--inversion-hours", type=int, default=0, metavar="H",
                    help="sample / regional case: also invert the emissions from the "
                         "assimilated stations' hourly NO2, SO2, PM2.5 over the H hours "
                         "before T0 and forecast with the posterior, with and without the "
                         "analysis (0: off)")
    ap.add_argument("--inversion-set", action="append", default=[], metavar="KEY=VALUE",
                    help="with --inversion-hours: override inversion.KEY (YAML value), e.g. "
                         "pollutant_correlation=0.5")
    args = ap.parse_args(argv)
    if args.inversion_hours < 0 or (args.inversion_hours and args.case == "small"):
        ap.error(f"--inversion-hours {args.inversion_hours}: expected > 0 hours, sample or "
                 f"regional case")
    if args.inversion_set and not args.inversion_hours:
        ap.error("--inversion-set needs --inversion-hours")
    if any("=" not in a for a in args.inversion_set):
        ap.error(f"--inversion-set {args.inversion_set}: expected KEY=VALUE")
    if args.case == "small":
        table = run(args.days or 2, args.spinup or 6, args.work)
        hourly = None
    else:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        for noisy in ("aqforecast.emissions", "aqforecast.met", "aqforecast.forecast"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        import yaml

        assim = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.assim)}
        extra = {}
        if args.case == "regional":
            from regional_case import build_case

            work = Path(args.work or "/tmp/aqforecast-osse-regional")
            extra = dict(config=build_case(work.with_name(work.name + "-case")),
                         wavelengths=REGIONAL_WAVELENGTHS)
            args.work = work
            args.spinup = args.spinup or 48
        table, hourly = run_sample(args.days or 3, args.spinup or 24, args.work, **extra,
                                   method=args.method, members=args.members, reuse=args.reuse,
                                   assim=assim or None, label=args.label,
                                   ic_sigma=args.ic_sigma, window=args.window,
                                   ensemble_emissions=args.ensemble_emissions,
                                   withheld_offset=args.withheld_offset,
                                   ensemble_seed=args.ensemble_seed,
                                   inversion_hours=args.inversion_hours,
                                   inversion_overrides={
                                       k: yaml.safe_load(v) for k, v in
                                       (a.split("=", 1) for a in args.inversion_set)} or None)
    with pd.option_context("display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
        if args.hourly and hourly is not None:
            print(hourly.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
