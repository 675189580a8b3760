"""An ensemble of perturbed forecasts around a control run (for the LETKF analysis).

``aqforecast ensemble CONFIG --run RUN_DIR --members N [--workers W] [--seed S]``: member m
reruns the control run of ``RUN_DIR`` (same start, lead and initial state, from its manifest and
``restart/<start>/``) with its emissions scaled per region x sector x pollutant by
``exp(N(0, sigma_ln))`` (``inversion.sigma_ln`` per pollutant: the same prior uncertainty the
inversion uses), on top of the control's own scaling. Members go to
``RUN_DIR/ensemble/m<NN>/`` -- the layout ``aqforecast assimilate --method letkf`` reads -- with
``RUN_DIR/ensemble/members.csv`` (every member's factors) and ``_SUCCESS``. Members run through
dask (``--workers`` processes, one numba thread each; 1 = in this process, one after another).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ConfigError, RunConfig, load_config
from ..emissions.inventory import POLLUTANTS
from ..emissions.scaling import ScalingTable
from ..io import atomic_path
from ..io.rundir import require_success, write_success

__all__ = ["make_ensemble", "member_factors"]

log = logging.getLogger(__name__)


def member_factors(cfg: RunConfig, members: int, seed: int = 0) -> pd.DataFrame:
    """Long table member, region, sector, pollutant, factor (lognormal, median 1)."""
    rng = np.random.default_rng(seed)
    regions = [r.name for r in cfg.regions] + ["outside"]
    sectors = list(cfg.tags.sectors)
    rows = []
    for m in range(members):
        for r in regions:
            for s in sectors:
                for p in POLLUTANTS:
                    sig = cfg.inversion.sigma_ln.get(p, 0.5)
                    rows.append({"member": f"m{m:02d}", "region": r, "sector": s,
                                 "pollutant": p, "factor": float(np.exp(rng.normal(0, sig)))})
    return pd.DataFrame(rows)


def _run_member(config_path: str, base: str, table_rows, out: str) -> str:
    """One member (runs in a dask worker process): the control rerun with its factors."""
    import numba

    from ..forecast import rerun

    if numba.config.NUMBA_NUM_THREADS > 1:
        numba.set_num_threads(1)
    table = ScalingTable.from_rows(table_rows, source=f"ensemble member {Path(out).name}")
    rerun(load_config(config_path), base, out, table)
    return out


def make_ensemble(config_path, run_dir, members: int, workers: int = 1, seed: int = 0,
                  cluster: str | None = None) -> list[Path]:
    """Run the members (module docstring); return the written paths. ``cluster``: where the
    members run (:func:`aqforecast.parallel.tasks.compute`: local processes, a dask-jobqueue
    cluster such as ``slurm``, or a scheduler address)."""
    import dask

    from ..parallel.tasks import compute

    if members < 3:
        raise ConfigError(f"--members {members}: an ensemble needs at least 3 members")
    cfg = load_config(config_path)
    run = Path(run_dir)
    require_success(run, "forecast")
    factors = member_factors(cfg, members, seed)
    out = run / "ensemble"
    tasks = []
    for name, g in factors.groupby("member"):
        rows = g[["region", "sector", "pollutant", "factor"]].to_dict("records")
        tasks.append(dask.delayed(_run_member)(str(config_path), str(run), rows,
                                               str(out / name)))
    done = compute(tasks, workers, cluster)
    log.info("ensemble: %d members in %s", len(done), out)
    path = out / "members.csv"
    with atomic_path(path) as tmp:
        factors.to_csv(tmp, index=False, float_format="%.6g")
    return [path, write_success(out, [path], {"stage": "ensemble", "members": members,
                                              "seed": seed})]
