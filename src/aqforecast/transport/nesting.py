"""One-way nesting: a nest's lateral inflow values from its parent domain.

Before each nest step the parent's (already advanced) mixing ratios are interpolated bilinearly
in the parent's index space to the nest's ghost cells (same eta levels in both domains), and the
parent's tag fractions likewise, so nest tags keep their sources across the interface. With a
decomposed parent the parent field is all-gathered once per step (the province-scale parent is a
few MB).
"""

from __future__ import annotations

import numpy as np

from ..grid import Nest

__all__ = ["NestBoundary", "bilinear_weights"]


def bilinear_weights(fj: np.ndarray, fi: np.ndarray, ny: int, nx: int):
    """Indices and weights to interpolate cell-centred fields at continuous cell coordinates.

    fj, fi: 1-D coordinates in parent index space (cell centres at integer + 0.5).
    Returns (j0, j1, wj, i0, i1, wi) for separable interpolation, clamped at the edges.
    """
    def axis(f, n):
        c = np.clip(f - 0.5, 0.0, n - 1.0)
        i0 = np.floor(c).astype(np.int64)
        i0 = np.minimum(i0, n - 2) if n > 1 else np.zeros_like(i0)
        w = c - i0
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, w

    j0, j1, wj = axis(fj, ny)
    i0, i1, wi = axis(fi, nx)
    return j0, j1, wj, i0, i1, wi


def _interp(field, w):
    """field (..., ny, nx) at the separable positions -> (..., len(fj), len(fi))."""
    j0, j1, wj, i0, i1, wi = w
    a = field[..., j0, :] * (1 - wj)[:, None] + field[..., j1, :] * wj[:, None]
    return a[..., i0] * (1 - wi) + a[..., i1] * wi


class NestBoundary:
    """Callable boundary source for a nest :class:`DomainModel` (see ``boundary_values``)."""

    def __init__(self, nest: Nest, parent, child):
        self.nest = nest
        self.parent = parent
        self.child = child
        if parent.ntag and child.ntag and parent.tag_labels != child.tag_labels:
            raise ValueError(f"nest {child.name!r} and parent {parent.name!r} have different tags")
        h = child.halo
        fj, fi = nest.parent_fractional_index(halo=h)
        self.weights = bilinear_weights(fj, fi, parent.grid.ny, parent.grid.nx)
        self._cache_time = None
        self._cache = None

    def _parent_fields(self):
        p = self.parent
        lay = p.layout
        from ..parallel.gather import allgather_field

        conc = np.ascontiguousarray(p.conc())
        full = conc if lay.serial else allgather_field(p.comm, lay.decomp, conc)
        frac = None
        if p.ntag and self.child.ntag:
            tc = np.ascontiguousarray(p.tagc[p.interior])
            tfull = tc if lay.serial else allgather_field(p.comm, lay.decomp, tc)
            frac = p._fractions(full, tfull, None)
        return full, frac

    def __call__(self, child):
        if self._cache_time != self.parent.time:
            full, frac = self._parent_fields()
            levels = child.layout.levels
            padded = _interp(full[:, levels], self.weights)  # (nspec, nl, ny+2h, nx+2h)
            fpad = None if frac is None else _interp(frac[:, :, levels], self.weights)
            self._cache = (padded, fpad)
            self._cache_time = self.parent.time
        padded, fpad = self._cache
        h = child.halo
        ny, nx = child.shape[1:]
        vals = {"west": padded[..., h:h + ny, :h], "east": padded[..., h:h + ny, nx + h:],
                "south": padded[..., :h, h:h + nx], "north": padded[..., ny + h:, h:h + nx]}
        tags = None
        if fpad is not None:
            # fractions of the inflow through each face: the ghost cell next to the face
            tags = {"west": fpad[..., h:h + ny, h - 1], "east": fpad[..., h:h + ny, nx + h],
                    "south": fpad[..., h - 1, h:h + nx], "north": fpad[..., ny + h, h:h + nx]}
        return vals, tags
