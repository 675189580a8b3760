"""2-D block decomposition of a (y, x) grid over a process grid (py x px).

Rank r sits at process coordinates (pj, pi) = divmod(r, px). Rows are split as evenly as
possible: the first ``ny % py`` blocks get one extra row (likewise columns), so any process grid
works, including uneven splits. Each rank holds its interior block plus ``halo`` ghost cells on
every side; physical-boundary ghosts are filled by boundary conditions, interior ghosts by
:class:`~aqforecast.parallel.halo.HaloExchange`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Decomposition", "choose_process_grid", "split_sizes"]


def split_sizes(n: int, p: int) -> np.ndarray:
    """Block sizes of ``n`` cells over ``p`` blocks (first ``n % p`` one larger)."""
    if p < 1 or p > n:
        raise ValueError(f"cannot split {n} cells into {p} blocks")
    sizes = np.full(p, n // p, dtype=np.int64)
    sizes[: n % p] += 1
    return sizes


def choose_process_grid(size: int, ny: int, nx: int) -> tuple[int, int]:
    """(py, px) with py*px == size minimising the halo perimeter of a block."""
    best = None
    for py in range(1, size + 1):
        if size % py:
            continue
        px = size // py
        if py > ny or px > nx:
            continue
        perimeter = ny / py + nx / px
        if best is None or perimeter < best[0] - 1e-12:
            best = (perimeter, py, px)
    if best is None:
        raise ValueError(f"{size} ranks cannot decompose a {ny} x {nx} grid")
    return best[1], best[2]


@dataclass(frozen=True)
class Decomposition:
    """Where rank ``rank`` of ``py*px`` sits in the global ``ny x nx`` grid."""

    ny: int
    nx: int
    py: int
    px: int
    rank: int
    halo: int = 2

    def __post_init__(self):
        if not 0 <= self.rank < self.py * self.px:
            raise ValueError(f"rank {self.rank} outside process grid {self.py} x {self.px}")
        split_sizes(self.ny, self.py)
        split_sizes(self.nx, self.px)
        ylen = split_sizes(self.ny, self.py).min()
        xlen = split_sizes(self.nx, self.px).min()
        if self.halo > min(ylen, xlen):
            raise ValueError(f"halo {self.halo} wider than the smallest block "
                             f"({ylen} x {xlen} cells); use fewer ranks")

    @classmethod
    def for_comm(cls, comm, ny: int, nx: int, halo: int = 2,
                 process_grid: tuple[int, int] | None = None) -> "Decomposition":
        py, px = process_grid if process_grid else choose_process_grid(comm.size, ny, nx)
        if py * px != comm.size:
            raise ValueError(f"process grid {py} x {px} does not match {comm.size} ranks")
        return cls(ny, nx, py, px, comm.rank, halo)

    @property
    def size(self) -> int:
        return self.py * self.px

    @property
    def coords(self) -> tuple[int, int]:
        return divmod(self.rank, self.px)

    def block(self, rank: int | None = None) -> tuple[slice, slice]:
        """Global (y, x) slices of a rank's interior block."""
        pj, pi = divmod(self.rank if rank is None else rank, self.px)
        ys = np.concatenate([[0], np.cumsum(split_sizes(self.ny, self.py))])
        xs = np.concatenate([[0], np.cumsum(split_sizes(self.nx, self.px))])
        return slice(int(ys[pj]), int(ys[pj + 1])), slice(int(xs[pi]), int(xs[pi + 1]))

    @property
    def local_shape(self) -> tuple[int, int]:
        """Interior (ny, nx) of this rank."""
        sy, sx = self.block()
        return sy.stop - sy.start, sx.stop - sx.start

    @property
    def padded_shape(self) -> tuple[int, int]:
        ny, nx = self.local_shape
        return ny + 2 * self.halo, nx + 2 * self.halo

    def neighbour(self, dj: int, di: int) -> int | None:
        """Rank of the neighbour at offset (dj, di), or None at a physical boundary."""
        pj, pi = self.coords
        qj, qi = pj + dj, pi + di
        if 0 <= qj < self.py and 0 <= qi < self.px:
            return qj * self.px + qi
        return None

    @property
    def at_boundary(self) -> dict[str, bool]:
        """Which sides of this block are physical domain boundaries."""
        pj, pi = self.coords
        return {"south": pj == 0, "north": pj == self.py - 1, "west": pi == 0,
                "east": pi == self.px - 1}

    def interior(self) -> tuple[slice, slice]:
        """(y, x) slices of the interior inside a padded local array."""
        ny, nx = self.local_shape
        h = self.halo
        return slice(h, h + ny), slice(h, h + nx)

    def padded_global_slices(self) -> tuple[slice, slice]:
        """Global index range covered by the padded local array (may extend outside)."""
        sy, sx = self.block()
        h = self.halo
        return slice(sy.start - h, sy.stop + h), slice(sx.start - h, sx.stop + h)

    def scatter_global(self, global_field: np.ndarray) -> np.ndarray:
        """This rank's padded block of a global (..., ny, nx) field (ghosts from the global
        field where they exist, edge-replicated beyond the physical boundary)."""
        h = self.halo
        pad = [(0, 0)] * (global_field.ndim - 2) + [(h, h), (h, h)]
        padded = np.pad(global_field, pad, mode="edge")
        sy, sx = self.block()
        return np.ascontiguousarray(padded[..., sy.start:sy.stop + 2 * h,
                                           sx.start:sx.stop + 2 * h])

    def local_view(self, global_field: np.ndarray) -> np.ndarray:
        """This rank's interior block of a global (..., ny, nx) field (a view)."""
        sy, sx = self.block()
        return global_field[..., sy, sx]
