"""Gather decomposed fields to rank 0 for output, and scatter global fields to ranks.

Rank 0 writes the NetCDF products (the netCDF4 wheels from PyPI are built without parallel
HDF5, so parallel writes are not available; gathering a 3 km / 1 km province is cheap).
"""

from __future__ import annotations

import numpy as np

from .decomposition import Decomposition

__all__ = ["gather_field", "scatter_field"]


def gather_field(comm, decomp: Decomposition, local_interior: np.ndarray,
                 root: int = 0) -> np.ndarray | None:
    """Assemble the global (..., ny, nx) field from every rank's interior block.

    Returns the global array on ``root`` and None elsewhere (serial: the array itself).
    """
    blocks = comm.gather(np.ascontiguousarray(local_interior), root=root)
    if comm.rank != root:
        return None
    return _assemble(decomp, blocks)


def _assemble(decomp: Decomposition, blocks) -> np.ndarray:
    """The global field from every rank's interior block (in rank order)."""
    lead = blocks[0].shape[:-2]
    out = np.empty(lead + (decomp.ny, decomp.nx), dtype=blocks[0].dtype)
    for r, blk in enumerate(blocks):
        sy, sx = decomp.block(r)
        out[..., sy, sx] = blk
    return out


def allgather_field(comm, decomp: Decomposition, local_interior: np.ndarray) -> np.ndarray:
    """Like :func:`gather_field` but every rank gets the global field."""
    return _assemble(decomp, comm.allgather(np.ascontiguousarray(local_interior)))


def scatter_field(comm, decomp: Decomposition, global_field: np.ndarray | None,
                  root: int = 0) -> np.ndarray:
    """Each rank's interior block of a global field held on ``root``."""
    if comm.rank == root:
        parts = [np.ascontiguousarray(global_field[..., sy, sx])
                 for sy, sx in (decomp.block(r) for r in range(decomp.size))]
    else:
        parts = None
    return comm.scatter(parts, root=root)
