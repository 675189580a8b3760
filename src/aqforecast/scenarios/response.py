"""Response-surface scoring: secondary PM and O3 from a few perturbed runs per region x
precursor (the ``response`` method of ``aqforecast scenario``).

For every (region, precursor) a scenario touches -- precursors NOx, SO2, NH3, NMVOC, PM25, PMC
-- the base run is rerun with that precursor cut by ``LEVELS`` (50 % and 100 %, all sectors,
the whole run) in the region; the runs are cached under ``BASE_RUN/response/`` and reused by
every later scenario on that base. A city statistic's change is modelled per (region,
precursor) k as a quadratic in the effective cut x_k through the origin and the two levels,
``dS_k(x) = a_k x + b_k x^2``, and the scenario's change is ``sum_k dS_k(x_k)`` (no interaction
terms: CAMS-like source-receptor practice). The effective cut x_k is the emission-weighted
fraction of precursor k that the scenario removes over the run (sectors and time windows by the
emission model's hourly rates, :meth:`EmissionModel.abated_mass`). Cost: 2 runs per (region,
precursor) the scenario touches; the quadratic captures the curvature of the nitrate/ammonium
and O3 responses, the missing interactions between precursors are the method's error (checked
against ``brute`` in the tests).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..emissions.inventory import POLLUTANTS
from ..emissions.scaling import ScalingTable
from .cities import city_daily
from .schema import ALL, Scenario, scenario_to_scaling

__all__ = ["response_scores", "LEVELS", "PRECURSORS"]

log = logging.getLogger(__name__)

LEVELS = (0.5, 1.0)
PRECURSORS = ("NOx", "SO2", "NH3", "NMVOC", "PM25", "PMC")
KEYS = ["city", "domain", "coverage", "lead_day", "date", "pollutant", "statistic"]


def _touched(scenario: Scenario, regions) -> list[tuple[str, str]]:
    out = []
    for m in scenario.measures:
        if m.factor == 1.0:
            continue
        regs = list(regions) if m.regions == ALL else m.regions
        pols = PRECURSORS if m.pollutants == ALL else [
            q for p in m.pollutants for q in (("PM25", "PMC") if p == "PM10" else (p,))]
        out += [(r, p) for r in regs for p in pols if p in PRECURSORS]
    return list(dict.fromkeys(out))


def _effective_cuts(cfg, table, start, lead, touched) -> dict:
    """(region, precursor) -> emission-weighted fraction removed over the run."""
    from ..emissions import EmissionModel
    from ..grid import grids_from_config

    grid = grids_from_config(cfg)[cfg.domains[0].name]
    em = EmissionModel.from_config(cfg, grid)
    removed = em.abated_mass(table, start, lead)           # (region, sector, pollutant) Mg
    total = em.abated_mass(ScalingTable({("*", "*", "*"): 0.0}), start, lead)
    out = {}
    for r, p in touched:
        if r not in em.regions.names:
            continue
        i, j = em.regions.names.index(r), POLLUTANTS.index(p)
        tot = float(total[i, :, j].sum())
        out[(r, p)] = float(removed[i, :, j].sum()) / tot if tot > 0 else 0.0
    return out


def response_scores(cfg: RunConfig, base: Path, scenario: Scenario, cities, start, lead
                    ) -> pd.DataFrame:
    """City statistics of the scenario by the response surface (the ``value`` column of
    :func:`.cities.city_daily`), with the perturbed runs made or reused."""
    regions = [r.name for r in cfg.regions]
    touched = _touched(scenario, regions)
    table = scenario_to_scaling(scenario, start, regions)
    cuts = _effective_cuts(cfg, table, start, lead, touched)
    b = city_daily(cfg, base, cities).set_index(KEYS)["value"]
    total = pd.Series(0.0, index=b.index)
    from ..forecast import rerun

    for (r, p), x in cuts.items():
        if x <= 0:
            continue
        d = []
        for level in LEVELS:
            run = base / "response" / f"{r}_{p}_{int(round(level * 100)):03d}"
            if not (run / "_SUCCESS").exists():
                log.info("response run %s (cut %g of %s in %s)", run.name, level, p, r)
                rerun(cfg, base, run, ScalingTable({(r, "*", p): 1.0 - level}))
            d.append(city_daily(cfg, run, cities).set_index(KEYS)["value"] - b)
        # dS(x) = a x + b x^2 through (0, 0), (l1, d1), (l2, d2)
        (l1, l2), (d1, d2) = LEVELS, d
        bq = (d2 / l2 - d1 / l1) / (l2 - l1)
        aq = d1 / l1 - bq * l1
        total = total + aq * x + bq * x * x
    out = (b + total).rename("value").reset_index()
    out["complete"] = np.isfinite(out["value"])
    return out
