"""Pre/post evaluation: a scenario (or a plan's ``optimal_plan.yaml``) scored with the forecast
inventory (before) and with the inventory a later cycle's inversion found (after).

``aqforecast scenario CONFIG --run BASE_RUN --scenario FILE --out DIR --posterior SCALING``
answers "what would the measures have achieved had the inventory been the one the inversion
found": the same forecast (start, lead, met, initial state) with the emissions scaled by the
posterior table ``P1`` instead of the base run's own table ``P0``, without and with the scenario.
Reruns keep the base's scaling and multiply more on top (:func:`aqforecast.forecast.rerun`), so
the "after" runs are reruns of the base with ``P1 / P0`` -- the posterior rows and the base
table's rows with inverted factors (rows multiply; a zero factor in ``P0`` cannot be undone and
is an error) -- and, for the scenario, the scenario's rows on top:

* ``DIR/posterior/base/``: the base with the posterior inventory (tags on for ``--method
  tags``, whose scenario estimate then comes from these tags; ``brute`` reruns it with the
  scenario into ``DIR/posterior/run/``); ``--method response`` is not offered here (its cached
  perturbed runs belong to the base inventory);
* ``DIR/posterior/scores.csv``, ``exceedances.csv``, ``measures.csv`` (tonnes abated from the
  posterior emissions), ``_SUCCESS``;
* ``DIR/pre_post.csv``: per city / station x lead day x statistic ``base_before``,
  ``scenario_before``, ``change_before`` (the scores of DIR) and ``base_after``,
  ``scenario_after``, ``change_after``, ``complete``.

The scores of ``DIR`` itself are the "before" and keep their layout.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd

from ..config import RunConfig
from ..emissions.scaling import ScalingTable, read_scaling_table
from ..io import InputFileError
from ..io.rundir import write_success
from .cities import city_daily
from .schema import Scenario

__all__ = ["posterior_extra", "posterior_base_run", "score_posterior"]

log = logging.getLogger(__name__)


def _table(obj) -> ScalingTable:
    if isinstance(obj, (str, Path)):
        return read_scaling_table(Path(obj))
    if isinstance(obj, list):
        return ScalingTable.from_rows(obj, source="posterior inventory")
    return ScalingTable.coerce(obj)


def posterior_extra(posterior, base_table: ScalingTable | None, cfg: RunConfig | None = None
                    ) -> ScalingTable:
    """The table a rerun of the base multiplies in to get the posterior inventory: the rows of
    ``posterior`` (a path or table, factors relative to the raw inventory as the inversion
    writes them) and the rows of ``base_table`` (the base run's own, :func:`aqforecast.
    forecast.run_scaling_table`) with factors 1/f."""
    post = _table(posterior)
    if cfg is not None and cfg.tags.sectors:
        post.check([r.name for r in cfg.regions], list(cfg.tags.sectors))
    rows = [{"region": r.region, "sector": r.sector, "pollutant": r.pollutant,
             "factor": r.factor, "start": r.start, "end": r.end} for r in post.rows]
    for r in (base_table.rows if base_table is not None else ()):
        if r.factor == 0.0:
            raise InputFileError(f"{base_table.source or 'the base run scaling'}: "
                                 f"{r.origin or 'a row'} ({r.region}, {r.sector}, {r.pollutant})"
                                 f" has factor 0: the base inventory cannot be swapped for the "
                                 f"posterior there")
        rows.append({"region": r.region, "sector": r.sector, "pollutant": r.pollutant,
                     "factor": 1.0 / r.factor, "start": r.start, "end": r.end})
    return ScalingTable.from_rows(rows, source=f"posterior {post.source or 'table'} / base")


def posterior_base_run(cfg: RunConfig, base: Path, extra, out: Path, tags: bool) -> Path:
    """The base run with the posterior inventory (``extra`` from :func:`posterior_extra`)."""
    from ..forecast import rerun

    rerun(cfg, base, out, _table(extra), tags=tags)
    return Path(out)


def score_posterior(cfg: RunConfig, base: Path, scenario: Scenario, table: ScalingTable,
                    before: pd.DataFrame, out: Path, method: str, posterior, cities, stations,
                    run_done: bool = False, posterior_base=None) -> list[Path]:
    """The "after" scores in ``out/posterior/`` and ``out/pre_post.csv`` (module docstring);
    ``before``: the scores table of ``out``. Return the written paths."""
    from ..forecast import rerun, run_scaling_table
    from .score import (
        SCORE_KEYS,
        _measures_table,
        _run_start,
        _tags_estimate,
        _write_csv,
        scores_table,
        write_scores,
    )

    start, lead = _run_start(base)
    extra = posterior_extra(posterior, run_scaling_table(base, cfg), cfg)
    pdir = out / "posterior"
    pdir.mkdir(parents=True, exist_ok=True)
    pbase = Path(posterior_base) if posterior_base is not None else pdir / "base"
    if not (pbase / "_SUCCESS").exists():
        posterior_base_run(cfg, base, extra, pbase, tags=method == "tags")
    if method == "brute":
        run = pdir / "run"
        if not (run_done and (run / "_SUCCESS").exists()):
            rerun(cfg, base, run, ScalingTable.concat([extra, table]))
    elif method == "tags":
        domains = sorted({d for d, _, _ in cities.values()} | {d for d, _, _ in
                                                               stations.values()})
        run = _tags_estimate(pbase, pdir / "tags_estimate", table, domains)
    else:
        raise InputFileError(f"--posterior: --method {method} is not offered (use tags or "
                             f"brute)")
    after = scores_table(city_daily(cfg, pbase, cities, stations),
                         city_daily(cfg, run, cities, stations), method)
    paths = write_scores(cfg, after, pdir)
    paths.append(_write_csv(_measures_table(scenario, cfg, start, lead, _table(posterior)),
                            pdir / "measures.csv"))
    if method == "tags":
        shutil.rmtree(pdir / "tags_estimate", ignore_errors=True)
    paths.append(write_success(pdir, paths, {
        "stage": "scenario", "scenario": scenario.name, "method": method,
        "inventory": "posterior", "posterior": str(getattr(_table(posterior), "source", "")),
        "posterior_base": str(pbase)}))
    vals = ["base", "scenario", "change"]
    pp = before[SCORE_KEYS + vals + ["complete"]].merge(
        after[SCORE_KEYS + vals + ["complete"]], on=SCORE_KEYS, how="outer",
        suffixes=("_before", "_after"))
    pp["complete"] = pp.pop("complete_before").fillna(False).astype(bool) & \
        pp.pop("complete_after").fillna(False).astype(bool)
    paths.append(_write_csv(pp, out / "pre_post.csv"))
    log.info("pre/post: %s scored with the posterior inventory in %s", scenario.name, pdir)
    return paths
