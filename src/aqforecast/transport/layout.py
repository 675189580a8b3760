"""Two data layouts of a decomposed domain and the transposes between them.

*Column layout*: rank r holds all levels of its (y, x) block (2-D block decomposition,
:class:`~aqforecast.parallel.Decomposition`); vertical mixing, vertical advection, deposition,
emissions and chemistry are column-local and run here with no communication.

*Level layout*: rank r holds whole horizontal planes of a subset of levels; the x and y
advection sweeps run here. Walcek's flux adjustment is sequential along a line (an outflow flux
depends on the adjusted inflow flux, SCIENCE.md 2.2 step 4), so a halo-exchange decomposition of
the horizontal sweeps can neither reproduce the one-rank result nor conserve mass exactly at
sub-domain interfaces. Whole planes make every sweep identical to the serial one: N ranks give
bit-for-bit the one-rank answer.

Transposes move each rank's block of each level to the level's owner (``alltoall_arrays``: one
``MPI_Alltoallv`` of packed buffers); with one rank both layouts are the same array and the
transposes are no-ops.
"""

from __future__ import annotations

import time

import numpy as np

from ..parallel import Decomposition, choose_process_grid

__all__ = ["Layout"]


class Layout:
    """Column blocks + level slabs of a (nz, ny, nx) domain over ``comm``'s ranks."""

    def __init__(self, comm, nz: int, ny: int, nx: int, halo: int,
                 process_grid: tuple[int, int] | None = None):
        self.comm = comm
        self.nz, self.ny, self.nx, self.halo = nz, ny, nx, halo
        py, px = process_grid or choose_process_grid(comm.size, ny, nx)
        if py * px != comm.size:
            raise ValueError(f"process grid {py} x {px} does not match {comm.size} ranks")
        self.decomp = Decomposition(ny, nx, py, px, comm.rank, halo=0)
        self.level_sets = [np.asarray(a, dtype=np.int64)
                           for a in np.array_split(np.arange(nz), comm.size)]
        self.levels = self.level_sets[comm.rank]
        #: every rank's global (y, x) block, used by each transpose
        self.blocks = [self.decomp.block(r) for r in range(comm.size)]
        self.serial = comm.size == 1
        #: wall seconds spent in transposes (communication + packing), for benchmarks
        self.comm_seconds = 0.0

    @property
    def block(self) -> tuple[slice, slice]:
        return self.decomp.block()

    @property
    def block_shape(self) -> tuple[int, int]:
        return self.decomp.local_shape

    def column_shape(self, lead: tuple[int, ...]) -> tuple[int, ...]:
        h = self.halo
        ny, nx = self.block_shape
        return lead + (self.nz + 2 * h, ny + 2 * h, nx + 2 * h)

    def level_shape(self, lead: tuple[int, ...]) -> tuple[int, ...]:
        h = self.halo
        return lead + (len(self.levels) + 2 * h, self.ny + 2 * h, self.nx + 2 * h)

    # ---------------------------------------------------------------- transposes
    def to_levels(self, col: np.ndarray, lev: np.ndarray, padded: bool = True) -> None:
        """Copy a column-layout array's interior into a level-layout array's interior.

        ``padded``: arrays carry ``halo`` ghosts on the last three axes (else interior only).
        """
        if self.serial:
            if lev is not col:
                np.copyto(lev, col)
            return
        t0 = time.perf_counter()
        h = self.halo if padded else 0
        ny, nx = self.block_shape
        lead = col.shape[:-3]
        send = [col[..., h + ls[0]:h + ls[-1] + 1, h:h + ny, h:h + nx] if ls.size else None
                for ls in self.level_sets]
        nl = len(self.levels)
        shapes = [lead + (nl, sy.stop - sy.start, sx.stop - sx.start) if nl else None
                  for sy, sx in self.blocks]
        recv = self.comm.alltoall_arrays(send, shapes, col.dtype)
        for blk, (sy, sx) in zip(recv, self.blocks):
            if blk is None:
                continue
            lev[..., h:h + nl, h + sy.start:h + sy.stop, h + sx.start:h + sx.stop] = blk
        self.comm_seconds += time.perf_counter() - t0

    def to_columns(self, lev: np.ndarray, col: np.ndarray, padded: bool = True) -> None:
        """Inverse of :meth:`to_levels`."""
        if self.serial:
            if lev is not col:
                np.copyto(col, lev)
            return
        t0 = time.perf_counter()
        h = self.halo if padded else 0
        nl = len(self.levels)
        lead = lev.shape[:-3]
        send = [lev[..., h:h + nl, h + sy.start:h + sy.stop, h + sx.start:h + sx.stop]
                if nl else None for sy, sx in self.blocks]
        ny, nx = self.block_shape
        shapes = [lead + (ls.size, ny, nx) if ls.size else None for ls in self.level_sets]
        recv = self.comm.alltoall_arrays(send, shapes, lev.dtype)
        for r, blk in enumerate(recv):
            ls = self.level_sets[r]
            if blk is None:
                continue
            col[..., h + ls[0]:h + ls[-1] + 1, h:h + ny, h:h + nx] = blk
        self.comm_seconds += time.perf_counter() - t0

    # ---------------------------------------------------------------- helpers
    def local(self, field: np.ndarray) -> np.ndarray:
        """Column block of a global (..., ny, nx) field."""
        sy, sx = self.block
        return field[..., sy, sx]

    def gather(self, col_interior: np.ndarray, root: int = 0):
        """Global (..., ny, nx) field on ``root`` from every rank's column block."""
        if self.serial:
            return col_interior
        from ..parallel.gather import gather_field

        return gather_field(self.comm, self.decomp, col_interior, root)

    def allsum(self, x):
        return self.comm.allreduce_sum(x)
