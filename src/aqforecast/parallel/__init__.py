"""Parallel execution: communicators, 2-D domain decomposition, halo exchange, gather/scatter.

The only package that imports mpi4py (lazily, in :class:`MPIComm`). The serial communicator runs
the same code path, so one rank and N ranks share every line of the model.
"""

from .comm import MPIComm, SerialComm, abort_all, get_comm, launched_under_mpi  # noqa: F401
from .decomposition import Decomposition, choose_process_grid, split_sizes  # noqa: F401
from .gather import gather_field, scatter_field  # noqa: F401
from .halo import HaloExchange  # noqa: F401
