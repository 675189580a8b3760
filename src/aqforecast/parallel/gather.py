"""Gather decomposed fields to rank 0 for output, and scatter global fields to ranks.

Rank 0 writes the NetCDF products (the netCDF4 wheels from PyPI are built without parallel
HDF5, so parallel writes are not available; gathering a 3 km / 1 km province is cheap).
"""

from __future__ import annotations

import numpy as np

from .decomposition import Decomposition

__all__ = ["gather_field", "scatter_field", "allgather_window"]


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


def _overlap(block: slice, window: slice) -> slice:
    """Global indices of ``block`` inside ``window`` (possibly empty)."""
    lo, hi = max(block.start, window.start), min(block.stop, window.stop)
    return slice(lo, max(lo, hi))


def allgather_window(comm, decomp: Decomposition, local_interior: np.ndarray,
                     sj: slice, si: slice) -> np.ndarray:
    """Every rank gets the global field's window ``[..., sj, si]`` (slices with start and
    stop), each rank sending only its block's part of it: a nest's parent window is a few per
    cent of the parent, whose whole tag field an allgather moved every step."""
    by, bx = decomp.block()
    oy, ox = _overlap(by, sj), _overlap(bx, si)
    part = np.ascontiguousarray(local_interior[..., oy.start - by.start:oy.stop - by.start,
                                               ox.start - bx.start:ox.stop - bx.start])
    pieces = comm.allgather(part)
    out = np.empty(part.shape[:-2] + (sj.stop - sj.start, si.stop - si.start), dtype=part.dtype)
    for r, piece in enumerate(pieces):
        ry, rx = decomp.block(r)
        oy, ox = _overlap(ry, sj), _overlap(rx, si)
        out[..., oy.start - sj.start:oy.stop - sj.start,
            ox.start - si.start:ox.stop - si.start] = piece
    return out


def scatter_field(comm, decomp: Decomposition, global_field: np.ndarray | None,
                  root: int = 0) -> np.ndarray:
    """Each rank's interior block of a global field held on ``root``."""
    if comm.rank == root:
        parts = [np.ascontiguousarray(global_field[..., sy, sx])
                 for sy, sx in (decomp.block(r) for r in range(decomp.size))]
    else:
        parts = None
    return comm.scatter(parts, root=root)
