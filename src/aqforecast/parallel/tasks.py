"""Run independent tasks (ensemble members, perturbed runs, brute-force scenarios) through dask:
in this process, on local worker processes, or on a cluster.

``cluster``:
* ``None`` / ``"local"``: ``workers`` local processes (1: one task after another, here);
* ``"slurm"``, ``"pbs"``, ``"sge"``, ``"lsf"``: a dask-jobqueue cluster of ``workers`` jobs whose
  queue, account, cores, memory and walltime come from dask's configuration
  (``jobqueue.<kind>``; the site file is ``hpc/dask/jobqueue.yaml``, found through
  ``DASK_CONFIG`` or ``~/.config/dask/``);
* ``"tcp://host:port"`` or a scheduler file path: an existing dask.distributed scheduler.

Each task should keep to one numba thread (the members are the parallelism).
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["compute", "JOBQUEUE_KINDS"]

log = logging.getLogger(__name__)
JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
                  "lsf": "LSFCluster"}


def _client(cluster: str, workers: int):
    from dask.distributed import Client

    if cluster in JOBQUEUE_KINDS:
        try:
            import dask_jobqueue
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(f"cluster {cluster!r} needs dask-jobqueue (pip install "
                               f"'aqforecast[hpc]')") from exc
        jq = getattr(dask_jobqueue, JOBQUEUE_KINDS[cluster])()
        jq.scale(jobs=int(workers))
        log.info("dask-jobqueue %s: %d job(s), dashboard %s", cluster, workers,
                 jq.dashboard_link)
        return Client(jq), jq
    if cluster.startswith(("tcp://", "tls://", "ucx://")):
        return Client(cluster), None
    if Path(cluster).is_file():
        return Client(scheduler_file=cluster), None
    raise ValueError(f"cluster {cluster!r}: expected local, {', '.join(JOBQUEUE_KINDS)}, a "
                     f"scheduler address tcp://host:port or a scheduler file")


def compute(tasks, workers: int = 1, cluster: str | None = None) -> list:
    """Compute dask ``tasks`` (delayed objects) and return their results in order."""
    import dask

    if cluster in (None, "", "local"):
        if workers > 1 and len(tasks) > 1:
            return list(dask.compute(*tasks, scheduler="processes", num_workers=int(workers)))
        return list(dask.compute(*tasks, scheduler="synchronous"))
    client, jq = _client(cluster, workers)
    try:
        return list(client.gather(client.compute(list(tasks))))
    finally:
        client.close()
        if jq is not None:
            jq.close()
