"""Scoring an emission scenario against a base forecast run.

``aqforecast scenario CONFIG --run BASE_RUN --scenario FILE --out DIR [--method tags|brute]``
writes ``DIR/scores.csv`` (long form: one row per city x lead day x pollutant statistic with
``base``, ``scenario``, ``change``, ``complete``, ``coverage``; :mod:`.cities`),
``DIR/measures.csv`` (tonnes abated and cost per measure over the run) and ``DIR/scaling.csv``
(the scenario as the forecast's ``--scaling`` table), then ``_SUCCESS``.

Methods:

* ``brute``: the forecast rerun with the scenario's scaling table (``DIR/run/``), same start,
  lead and initial state as the base (the base's ``restart/<start>/`` when it has one, else its
  start type); exact by construction.
* ``response``: secondary PM and O3 from cached perturbed runs per region x precursor and a
  quadratic response surface (:mod:`.response`);
* ``tags``: linear from the base run's source tags, no rerun: for every tagged species s and
  source tag k = (region, sector), ``c_s' = c_s + (f_k(p_s, t) - 1) tag_{s,k}`` with ``p_s`` the
  emitted pollutant s comes from (PPM25 <- PM25, SO2 and SO4 <- SO2, NO2, NO, NO3 and O3 <- NOx,
  NH4 <- NH3) and f the scenario factor at the valid time t. Exact for primary species under
  donor-cell advection and measures constant over the run (tags are then each source's exact
  share); for secondary species and O3 the tags are attributions, not sensitivities (README:
  3-11 % for sulfate on the small case), and a windowed measure is applied without its transport
  lag -- the ``response`` and ``brute`` methods exist for those.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..config import ConfigError, RunConfig
from ..emissions.inventory import POLLUTANTS
from ..io import InputFileError, atomic_path, write_dataset
from ..io.rundir import require_success, write_success
from ..emissions.scaling import write_scaling_table
from .cities import city_daily, city_domains
from .schema import Scenario, scenario_to_scaling

__all__ = ["score_scenario", "SOURCE_POLLUTANT", "METHODS"]

log = logging.getLogger(__name__)

METHODS = ("tags", "response", "brute")
#: model species -> the emitted pollutant whose scaling moves it (tags method)
SOURCE_POLLUTANT = {"PPM25": "PM25", "PPM10": "PMC", "SO2": "SO2", "SO4": "SO2", "NO2": "NOx",
                    "NO": "NOx", "NO3": "NOx", "HNO3": "NOx", "O3": "NOx", "NH4": "NH3",
                    "NH3": "NH3", "CO": "CO", "ROC": "NMVOC"}


def _run_start(base: Path) -> tuple[np.datetime64, int]:
    man = require_success(base, "forecast")
    return np.datetime64(str(man["cycle_start"]), "s"), int(man["lead_hours"])


def _tags_estimate(base: Path, out: Path, table, domains) -> Path:
    """Scenario concentration files from the base's conc and tag files (module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    for dom in domains:
        conc_path, tag_path = base / f"conc_{dom}.nc", base / f"tags_{dom}.nc"
        if not tag_path.exists():
            raise InputFileError(f"{tag_path}: the tags method needs the base run's tag files "
                                 f"(a run with tags on); use --method brute")
        conc = xr.load_dataset(conc_path)
        with xr.open_dataset(tag_path) as tags:
            regions = [str(r) for r in tags["tag_region"].values]
            sectors = [str(s) for s in tags["tag_sector"].values]
            times = pd.DatetimeIndex(tags["time"].values)
            names = sorted(set(regions) - {"initial", "boundary", "other"})
            secs = sorted(set(sectors) - {"initial", "boundary", "other", ""})
            for s in tags.data_vars:
                pol = SOURCE_POLLUTANT.get(str(s))
                if pol is None or s not in conc:
                    continue
                p = POLLUTANTS.index(pol)
                lev0 = tags[s]["lev"].values[0]
                k0 = list(conc["lev"].values).index(lev0)
                tv = tags[s].sel(lev=lev0).transpose("tag", "time", "y", "x").values
                cv = conc[s].values  # (time, lev, y, x)
                ctimes = pd.DatetimeIndex(conc["time"].values)
                for it, t in enumerate(times):
                    jt = ctimes.get_loc(t)
                    f = table.resolve(names, secs, POLLUTANTS, t)
                    delta = np.zeros(tv.shape[2:])
                    for k, (r, sec) in enumerate(zip(regions, sectors)):
                        if r in names and sec in secs:
                            fac = f[names.index(r), secs.index(sec), p]
                            if fac != 1.0:
                                delta += (fac - 1.0) * tv[k, it]
                    cv[jt, k0] = np.maximum(cv[jt, k0] + delta, 0.0)
                conc[s].values = cv
        write_dataset(conc, out / f"conc_{dom}.nc", 1)   # CF-1.10, atomic
    return out


def _measures_table(scenario: Scenario, cfg: RunConfig, start, lead: int) -> pd.DataFrame:
    """Tonnes abated and cost per measure over the run inside the outer domain (the emission
    model's hourly gridded/area rates; point sources not counted)."""
    from ..emissions import EmissionModel
    from ..grid import grids_from_config

    grid = grids_from_config(cfg)[cfg.domains[0].name]  # the outer domain
    em = EmissionModel.from_config(cfg, grid) if cfg.inputs.emissions.has_sources else None
    regions = [r.name for r in cfg.regions]
    rows = []
    for m in scenario.measures:
        tonnes = np.nan
        if em is not None:
            one = Scenario(name=m.name, measures=[m])
            tonnes = float(em.abated_mass(scenario_to_scaling(one, start, regions), start,
                                          lead).sum())
        cost = tonnes * m.cost_per_tonne if m.cost_per_tonne is not None else np.nan
        rows.append({"measure": m.name, "factor": m.factor, "from_hour": m.from_hour,
                     "to_hour": m.to_hour if m.to_hour is not None else lead,
                     "tonnes_abated": tonnes, "cost_per_tonne": m.cost_per_tonne,
                     "cost": cost})
    return pd.DataFrame(rows)


def score_scenario(cfg: RunConfig, base_run, scenario: Scenario, out_dir,
                   method: str = "tags") -> list[Path]:
    """Score ``scenario`` against ``base_run`` (module docstring); return the written paths."""
    from ..forecast import rerun

    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    base, out = Path(base_run), Path(out_dir)
    start, lead = _run_start(base)
    regions = [r.name for r in cfg.regions]
    table = scenario_to_scaling(scenario, start, regions)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_scaling_table(table, out / "scaling.csv")]
    cities = city_domains(cfg)
    domains = sorted({d for d, _, _ in cities.values()})
    if method == "brute":
        scen_dir = out / "run"
        rerun(cfg, base, scen_dir, table)
    elif method == "tags":
        scen_dir = _tags_estimate(base, out / "tags_estimate", table, domains)
    b = city_daily(cfg, base, cities)
    if method == "response":
        from .response import response_scores

        s = response_scores(cfg, base, scenario, cities, start, lead)
    else:
        s = city_daily(cfg, scen_dir, cities)
    keys = ["city", "domain", "coverage", "lead_day", "date", "pollutant", "statistic"]
    scores = b.rename(columns={"value": "base", "complete": "complete_base"}).merge(
        s[keys + ["value"]].rename(columns={"value": "scenario"}), on=keys, how="left")
    scores["change"] = scores["scenario"] - scores["base"]
    scores["complete"] = scores.pop("complete_base")
    scores["method"] = method
    scores = scores[keys + ["base", "scenario", "change", "complete", "method"]]
    path = out / "scores.csv"
    with atomic_path(path) as tmp:
        scores.to_csv(tmp, index=False, float_format="%.6g")
    paths.append(path)
    path = out / "measures.csv"
    with atomic_path(path) as tmp:
        _measures_table(scenario, cfg, start, lead).to_csv(tmp, index=False,
                                                           float_format="%.6g")
    paths.append(path)
    if method == "tags":
        shutil.rmtree(out / "tags_estimate", ignore_errors=True)
    paths.append(write_success(out, paths, {"stage": "scenario", "scenario": scenario.name,
                                            "method": method}))
    return paths
