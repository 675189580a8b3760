"""Rank-aware logging set-up for the command line and the workflow.

Library modules log through ``logging.getLogger(__name__)`` and never print; the CLI calls
:func:`setup_logging` once. Under MPI only rank 0 logs INFO; other ranks log WARNING and above,
prefixed with their rank.
"""

from __future__ import annotations

import logging
import os
import sys


def mpi_rank_from_env() -> int:
    """This process's MPI rank from the launcher's environment (0 when not under MPI)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                pass
    return 0


def setup_logging(verbosity: int = 0, rank: int | None = None) -> None:
    rank = mpi_rank_from_env() if rank is None else rank
    level = logging.DEBUG if verbosity > 0 else logging.INFO
    if rank != 0:
        level = logging.WARNING
    prefix = f"[rank {rank}] " if rank else ""
    logging.basicConfig(
        level=level, stream=sys.stderr, force=True,
        format=f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
