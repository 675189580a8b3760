"""Response-surface scoring: secondary PM and O3 from a few perturbed runs per region x sector
x precursor group (the ``response`` method of ``aqforecast scenario`` and ``aqforecast plan
--model response``).

A measure acts on *units* (:class:`Unit`): one per region it names (``all``: the configured
regions), per sector it names (``all`` sectors: one unit ``*``, every sector together), its
pollutant set as one group (PM10 = PM25 + PMC; ``all`` = every inventory pollutant) and its
window ``[from_hour, to_hour)`` (none, or one to the run's end: the whole run). For each unit a
scenario or plan touches, the base run is rerun with the unit's sources cut by ``LEVELS`` (50 %
and 100 %) in the unit's window: 2 runs per unit, cached under ``BASE_RUN/response/`` (one
directory per unit and level, :func:`run_dir`, with its key in ``response_key.json``) and
reused by every later scenario and plan on that base (made in parallel through dask with
``workers`` > 1). A whole-run unit cutting one pollutant in every sector keeps the directory
name of the earlier per (region, precursor) runs, ``<region>_<pollutant>_<level>``, so those
caches stay valid.

A city statistic's change is modelled per unit k as a quadratic in its effective cut x_k
through the origin and the two levels, ``dS_k(x) = a_k x + b_k x^2``, and the scenario's change
is ``sum_k dS_k(x_k)`` (no interaction terms between units: CAMS-like source-receptor practice;
within a unit the group's pollutants are cut together, so e.g. a NOx + NMVOC measure keeps its
O3 interaction). The effective cut x_k is the emission-weighted fraction of the unit's
emissions in its window that the measures acting on it remove (the emission model's hourly
rates on top of the base run's own scaling, :meth:`EmissionModel.abated_mass`; point sources
not counted): the measure's cut itself for one measure, the product rule for two on one unit.
Since the window is part of the key, the timing of a measure is the perturbed runs' own; what
the surface leaves out is the interaction between units (and between overlapping measures of
different units) and the curvature beyond a quadratic (measured against ``brute`` by
``benchmarks/scenarios.py``).

Why per sector: sectors differ in vertical profile (power and industry stacks emit aloft,
residential and transport at the surface) and in diurnal timing, so one tonne of a sector moves
a city's statistics differently from one tonne of the region's mix; runs that cut every sector
of a region made a one-sector plan miss its rerun by 7-15 % on the small case.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..emissions.inventory import POLLUTANTS
from ..emissions.scaling import ScalingTable
from .cities import COLUMNS, city_daily
from .schema import ALL, PM10, Measure, Scenario, scenario_to_scaling

__all__ = ["Unit", "measure_units", "touched_units", "touched_pairs", "unit_weights",
           "cut_weights", "scenario_cuts", "run_dir", "response_runs", "response_coefficients",
           "response_scores", "LEVELS", "PRECURSORS", "KEY_FILE"]

log = logging.getLogger(__name__)

LEVELS = (0.5, 1.0)
PRECURSORS = ("NOx", "SO2", "NH3", "NMVOC", "PM25", "PMC")
KEYS = COLUMNS[:-2]   # the row key of city_daily (all but value, complete)
KEY_FILE = "response_key.json"


@dataclass(frozen=True, order=True)
class Unit:
    """The sources one response run cuts: a region, a sector (``*``: every sector), a
    pollutant group (inventory names in inventory order; all of them = ``all``) and the
    measure's window in lead hours ``[from_hour, to_hour)`` (0, None: the whole run)."""

    region: str
    sector: str
    pollutants: tuple[str, ...]
    from_hour: float = 0.0
    to_hour: float | None = None

    @property
    def windowed(self) -> bool:
        return bool(self.from_hour) or self.to_hour is not None

    @property
    def label(self) -> str:
        pols = "all" if self.pollutants == tuple(POLLUTANTS) else "+".join(self.pollutants)
        out = f"{self.region}/{'all' if self.sector == '*' else self.sector}/{pols}"
        return out + (f"/h{_window(self)}" if self.windowed else "")

    def table(self, level: float, cycle_start=None) -> ScalingTable:
        """The scaling table of the unit's run at cut ``level`` (its window from
        ``cycle_start``, UTC, which a windowed unit needs)."""
        start = end = None
        if self.windowed:
            if cycle_start is None:
                raise ValueError(f"unit {self.label}: a windowed unit needs the cycle start")
            t0 = np.datetime64(cycle_start, "s")
            start = t0 + np.timedelta64(int(round(self.from_hour * 3600)), "s") \
                if self.from_hour else None
            end = t0 + np.timedelta64(int(round(self.to_hour * 3600)), "s") \
                if self.to_hour is not None else None
        return ScalingTable.from_rows([
            {"region": self.region, "sector": self.sector, "pollutant": p,
             "factor": 1.0 - level, "start": start, "end": end} for p in self.pollutants],
            source=f"response run {self.label}")


def _window(u: Unit) -> str:
    return f"{u.from_hour:g}-{'end' if u.to_hour is None else format(u.to_hour, 'g')}"


def _group(pollutants) -> tuple[str, ...]:
    if pollutants == ALL:
        return tuple(POLLUTANTS)
    want = {q for p in pollutants for q in (("PM25", "PMC") if p == PM10 else (p,))}
    return tuple(p for p in POLLUTANTS if p in want)


def measure_units(m: Measure, regions, lead: float | None = None) -> list[Unit]:
    """The units a measure acts on (module docstring); none for a measure that changes
    nothing and has no bound. ``lead``: the run's length (a window to its end is the same
    unit as one without an end)."""
    if m.factor == 1.0 and not m.max_cut:
        return []
    regs = list(regions) if m.regions == ALL else list(m.regions)
    secs = ["*"] if m.sectors == ALL else list(dict.fromkeys(m.sectors))
    pols = _group(m.pollutants)
    to = m.to_hour if m.to_hour is None or lead is None or m.to_hour < lead else None
    return [Unit(r, s, pols, float(m.from_hour), None if to is None else float(to))
            for r in regs for s in secs] if pols else []


def touched_units(measures, regions, lead: float | None = None) -> list[Unit]:
    """The units the measures (with a cut or a bound) act on, in order, once each."""
    return list(dict.fromkeys(u for m in measures for u in measure_units(m, regions, lead)))


def touched_pairs(measures, regions) -> list[tuple[str, str]]:
    """(region, precursor) pairs the measures (with a cut or a bound) act on (the units'
    regions and precursors, sectors aside)."""
    return list(dict.fromkeys((u.region, p) for u in touched_units(measures, regions)
                              for p in u.pollutants if p in PRECURSORS))


def _emission_model(cfg):
    from ..emissions import EmissionModel
    from ..grid import grids_from_config

    return EmissionModel.from_config(cfg, grids_from_config(cfg)[cfg.domains[0].name])


def _unit_index(em, u: Unit):
    """(region index, sector indices, pollutant indices) of a unit in abated_mass, or None
    when the emission model does not know its region or sector (nothing to cut)."""
    if u.region not in em.regions.names:
        return None
    if u.sector != "*" and u.sector not in em.sectors:
        return None
    secs = list(range(len(em.sectors))) if u.sector == "*" else [list(em.sectors).index(
        u.sector)]
    return (em.regions.names.index(u.region), secs, [POLLUTANTS.index(p) for p in
                                                     u.pollutants])


def _fractions(em, tables, start, lead, units, prior) -> np.ndarray:
    """(len(tables), len(units)): the fraction of each unit's emissions (on top of ``prior``,
    within the unit's window) that each table removes over the run."""
    prior = prior if prior is not None and len(prior) else None
    base = em.abated_mass(prior, start, lead) if prior is not None else 0.0
    totals = {}
    for u in units:   # all emissions of the unit's window
        w = (u.from_hour, u.to_hour)
        if w not in totals:
            zero = Unit("*", "*", ("*",), *w).table(1.0, start)
            totals[w] = em.abated_mass(ScalingTable.concat([prior, zero]), start, lead) - base
    idx = [_unit_index(em, u) for u in units]
    out = np.zeros((len(tables), len(units)))
    for t, table in enumerate(tables):
        both = ScalingTable.concat([prior, table]) if prior is not None else table
        removed = em.abated_mass(both, start, lead) - base
        for k, (u, ix) in enumerate(zip(units, idx)):
            if ix is None:
                continue
            i, secs, pols = ix
            tot = float(totals[(u.from_hour, u.to_hour)][i][np.ix_(secs, pols)].sum())
            out[t, k] = float(removed[i][np.ix_(secs, pols)].sum()) / tot if tot > 0 else 0.0
    return out


def _tables(measures, start, regions, cuts=None) -> list[ScalingTable]:
    return [scenario_to_scaling(Scenario(name=m.name, measures=[m]), start, regions,
                                cuts=cuts) for m in measures]


def unit_weights(cfg: RunConfig, measures: list[Measure], start, lead, units, prior=None,
                 em=None) -> np.ndarray:
    """W (measure x unit): the effective cut of each unit when measure j alone is at cut 1,
    zero for the units measure j does not act on; the plan's effective cuts are
    ``x = W.T @ cuts`` (exact where the candidates acting on one unit do not overlap in
    hours; two measures on overlapping units -- e.g. one sector and all sectors -- are summed,
    which overstates their product term)."""
    regions = [r.name for r in cfg.regions]
    em = em if em is not None else _emission_model(cfg)
    W = _fractions(em, _tables(measures, start, regions, {m.name: 1.0 for m in measures}),
                   start, lead, units, prior)
    for j, m in enumerate(measures):
        own = set(measure_units(m.model_copy(update={"max_cut": 1.0}), regions, lead))
        W[j] = [w if u in own else 0.0 for w, u in zip(W[j], units)]
    return W


def cut_weights(cfg: RunConfig, measures: list[Measure], start, lead, pairs, prior=None
                ) -> np.ndarray:
    """:func:`unit_weights` (``pairs``: units, or (region, precursor) pairs as before: the
    all-sector unit of that one precursor)."""
    units = [p if isinstance(p, Unit) else Unit(p[0], "*", (p[1],)) for p in pairs]
    return unit_weights(cfg, measures, start, lead, units, prior)


def scenario_cuts(cfg: RunConfig, scenario: Scenario, start, lead, prior=None
                  ) -> tuple[list[Unit], np.ndarray]:
    """The scenario's units and their effective cuts: per unit, the fraction of its emissions
    that the measures acting on it (together, so the same unit cut twice multiplies) remove."""
    regions = [r.name for r in cfg.regions]
    units = touched_units(scenario.measures, regions, lead)
    groups: dict[tuple[str, ...], list[int]] = {}
    for k, u in enumerate(units):
        names = tuple(m.name for m in scenario.measures if u in measure_units(m, regions,
                                                                              lead))
        groups.setdefault(names, []).append(k)
    x = np.zeros(len(units))
    if units:
        em = _emission_model(cfg)
        by_name = {m.name: m for m in scenario.measures}
        keys = list(groups)
        tables = [scenario_to_scaling(Scenario(name=scenario.name, measures=[
            by_name[n] for n in names]), start, regions) for names in keys]
        frac = _fractions(em, tables, start, lead, units, prior)
        for t, names in enumerate(keys):
            x[groups[names]] = frac[t, groups[names]]
    return units, x


def _safe(name: str) -> str:
    return re.sub(r"(?:[^\w.-]|_)+", "-", name).strip(".-") or "x"


def run_dir(base, unit, level: float) -> Path:
    """``BASE_RUN/response/<name>``: ``<region>_<pollutant>_<level %>`` for a one-pollutant
    all-sector whole-run unit (the layout of the earlier per (region, precursor) runs), else
    ``<region>_<sector or all>_<pollutants joined by +, or all>[_h<from>-<to or end>]_<level
    %>``, e.g. ``Hangzhou_industry_NOx_h24-72_050``; region and sector made path-safe, with a
    hash of the key when that changed them. ``unit``: a :class:`Unit` or a (region, precursor)
    pair."""
    u = unit if isinstance(unit, Unit) else Unit(unit[0], "*", (unit[1],))
    lv = f"{int(round(level * 100)):03d}"
    pols = "all" if u.pollutants == tuple(POLLUTANTS) else "+".join(u.pollutants)
    head = [u.region] if u.sector == "*" and len(u.pollutants) == 1 and not u.windowed else \
        [u.region, "all" if u.sector == "*" else u.sector]
    safe = [_safe(h) for h in head]
    name = "_".join(safe + [pols] + ([f"h{_window(u)}"] if u.windowed else []))
    if safe != head:
        name += "_" + hashlib.sha1(json.dumps(_key(u, level)).encode()).hexdigest()[:8]
    return Path(base) / "response" / f"{name}_{lv}"


# the earlier per (region, precursor) name
_run_dir = run_dir


def _key(u: Unit, level: float) -> dict:
    key = {"region": u.region, "sector": u.sector, "pollutants": list(u.pollutants),
           "level": float(level)}
    if u.windowed:
        key.update(from_hour=u.from_hour, to_hour=u.to_hour)
    return key


def _cached(base, u: Unit, level: float) -> bool:
    d = run_dir(base, u, level)
    if not (d / "_SUCCESS").exists():
        return False
    key = d / KEY_FILE
    if not key.exists():   # made before the key file: its name is its key
        return True
    try:
        return json.loads(key.read_text()) == _key(u, level)
    except (OSError, ValueError):
        return False


def _response_task(cfg: RunConfig, base: str, unit: Unit, level: float, out: str,
                   cycle_start=None) -> str:
    import numba

    from ..forecast import rerun
    from ..io import atomic_path

    if numba.config.NUMBA_NUM_THREADS > 1:
        numba.set_num_threads(1)
    (Path(out) / KEY_FILE).unlink(missing_ok=True)
    rerun(cfg, base, out, unit.table(level, cycle_start))
    with atomic_path(Path(out) / KEY_FILE) as tmp:
        tmp.write_text(json.dumps(_key(unit, level)))
    return out


def response_runs(cfg: RunConfig, base: Path, units, workers: int = 1,
                  cluster: str | None = None) -> int:
    """Make the perturbed runs of ``units`` (or (region, precursor) pairs) not yet cached;
    return how many were made."""
    import dask

    from ..parallel.tasks import compute

    units = [u if isinstance(u, Unit) else Unit(u[0], "*", (u[1],)) for u in units]
    todo = [(u, lv) for u in dict.fromkeys(units) for lv in LEVELS if not _cached(base, u, lv)]
    if not todo:
        return 0
    t0 = None
    if any(u.windowed for u, _ in todo):
        from .score import _run_start

        t0 = str(_run_start(Path(base))[0])
    log.info("response: %d perturbed run(s) to make for %d unit(s) (%d worker(s))", len(todo),
             len({u for u, _ in todo}), workers)
    if workers <= 1 and cluster in (None, "", "local"):
        for u, lv in todo:
            _response_task(cfg, str(base), u, lv, str(run_dir(base, u, lv)), t0)
    else:
        compute([dask.delayed(_response_task)(cfg, str(base), u, lv, str(run_dir(base, u, lv)),
                                              t0) for u, lv in todo], workers, cluster)
    return len(todo)


def response_coefficients(cfg: RunConfig, base: Path, units, cities, stations=None,
                          workers: int = 1, cluster: str | None = None, timer=None
                          ) -> tuple[pd.Series, dict]:
    """The base values (Series on the city_daily key) and per unit the quadratic's (a, b)
    Series: ``dS_k(x) = a_k x + b_k x^2`` through (0, 0) and the ``LEVELS`` runs. ``units``:
    :class:`Unit` s (or (region, precursor) pairs: all-sector units); the result is keyed as
    given. With a ``timer``: phase ``response_runs`` (seconds making the missing runs, and
    their number in ``runs``) and ``response_runs_cached`` (the runs reused)."""
    base = Path(base)
    keys = list(dict.fromkeys(units))
    as_unit = {k: k if isinstance(k, Unit) else Unit(k[0], "*", (k[1],)) for k in keys}
    t0 = time.perf_counter()
    made = response_runs(cfg, base, list(as_unit.values()), workers, cluster)
    if timer is not None:
        timer.add("response_runs", time.perf_counter() - t0 if made else 0.0)
        timer.count("response_runs", made)
        timer.count("response_runs_cached", len(set(as_unit.values())) * len(LEVELS) - made)
    b = city_daily(cfg, base, cities, stations).set_index(KEYS)["value"]
    coef = {}
    for k in keys:
        d = [city_daily(cfg, run_dir(base, as_unit[k], lv), cities, stations).set_index(KEYS)[
            "value"] - b for lv in LEVELS]
        (l1, l2), (d1, d2) = LEVELS, d
        bq = (d2 / l2 - d1 / l1) / (l2 - l1)
        coef[k] = (d1 / l1 - bq * l1, bq)
    return b, coef


def response_scores(cfg: RunConfig, base: Path, scenario: Scenario, cities, start, lead,
                    stations=None, workers: int = 1, cluster: str | None = None, timer=None
                    ) -> pd.DataFrame:
    """City (and station) statistics of the scenario by the response surface (the ``value``
    column of :func:`.cities.city_daily`), with the perturbed runs made or reused."""
    from ..forecast import run_scaling_table

    units, x = scenario_cuts(cfg, scenario, start, lead, run_scaling_table(base, cfg))
    active = [(u, xk) for u, xk in zip(units, x) if xk > 0]
    b, coef = response_coefficients(cfg, base, [u for u, _ in active], cities, stations,
                                    workers, cluster, timer)
    total = pd.Series(0.0, index=b.index)
    for u, xk in active:
        a, bq = coef[u]
        total = total + a * xk + bq * xk * xk
    out = (b + total).rename("value").reset_index()
    out["complete"] = np.isfinite(out["value"])
    return out
