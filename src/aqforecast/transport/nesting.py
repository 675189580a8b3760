"""One-way nesting: a nest's lateral inflow values from its parent domain.

Before each nest step the parent's (already advanced) mixing ratios are interpolated bilinearly
in the parent's index space to the nest's ghost cells (same eta levels in both domains), and the
parent's tag concentrations likewise; the inflow tag fractions are the interpolated tag
concentrations over the interpolated bulk, so nest tags keep their sources across the interface
and the nest boundary is linear in the parent's tags (a tag equals a single-source run, with the
linear advection scheme, in the nest too). With a
decomposed parent the parent field is all-gathered once per step (the province-scale parent is a
few MB).
"""

from __future__ import annotations

import numpy as np

from ..grid import Nest
from ..kernels import interp as kinterp

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
    """field (..., ny, nx) at the separable positions -> (..., len(fj), len(fi)).

    Only the four parent points around each output point are read (the boundary strips are
    thin: interpolating whole parent rows first cost ~20x more for the tags); rows first, then
    columns, (f00 (1 - wj) + f10 wj) (1 - wi) + (f01 (1 - wj) + f11 wj) wi
    (:func:`aqforecast.kernels.interp.bilinear_rows`, float64 arithmetic).
    """
    j0, j1, wj, i0, i1, wi = w
    lead = field.shape[:-2]
    if len(lead) != 2:  # (rows, levels) as the model has them; others through a copy
        field = np.reshape(field, (-1, 1) + field.shape[-2:])
    out = np.empty(field.shape[:2] + (len(j0), len(i0)))
    c = np.ascontiguousarray
    kinterp.bilinear_rows(field, c(j0, dtype=np.int64), c(j1, dtype=np.int64),
                          c(wj, dtype=np.float64), c(i0, dtype=np.int64), c(i1, dtype=np.int64),
                          c(wi, dtype=np.float64), out)
    return out.reshape(lead + out.shape[2:])


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
        j0, j1, wj, i0, i1, wi = bilinear_weights(fj, fi, parent.grid.ny, parent.grid.nx)
        # only the parent window around the nest is needed
        self.window = (slice(int(j0.min()), int(j1.max()) + 1),
                       slice(int(i0.min()), int(i1.max()) + 1))
        self.weights = (j0 - j0.min(), j1 - j0.min(), wj, i0 - i0.min(), i1 - i0.min(), wi)
        self._cache_time = None
        self._cache = None
        self._pinned = None

    def pin(self) -> None:
        """Compute the boundary from the parent's state now and return it until :meth:`unpin`,
        whatever the parent does meanwhile (a nest's step stepped beside its parent's next one,
        :class:`~aqforecast.transport.simulation.Simulation`)."""
        self._pinned = None
        self._pinned = self(self.child)

    def unpin(self) -> None:
        self._pinned = None

    def _parent_fields(self):
        p = self.parent
        lay = p.layout
        from ..parallel.gather import allgather_window

        sj, si = self.window
        want_tags = p.ntag and self.child.ntag
        if lay.serial:  # views of the window only (no copy of the parent's tags)
            tags = p.tagc[p.interior][..., sj, si] if want_tags else None
            return p.conc()[..., sj, si], tags
        full = allgather_window(p.comm, lay.decomp, p.conc(), sj, si)
        tags = None
        if want_tags:
            tags = allgather_window(p.comm, lay.decomp, p.tagc[p.interior], sj, si)
        return full, tags

    def __call__(self, child, s=None):
        if self._pinned is not None:
            return self._pinned
        if self._cache_time != self.parent.time:
            self._cache = self._compute(child)
            self._cache_time = self.parent.time
        return self._cache

    def _compute(self, child):
        full, tagc = self._parent_fields()
        levels = child.layout.levels
        h = child.halo
        ny, nx = child.shape[1:]
        j0, j1, wj, i0, i1, wi = self.weights
        strips = {"west": (slice(h, h + ny), slice(0, h)),
                  "east": (slice(h, h + ny), slice(nx + h, nx + 2 * h)),
                  "south": (slice(0, h), slice(h, h + nx)),
                  "north": (slice(ny + h, ny + 2 * h), slice(h, h + nx))}
        # the ghost cell next to each face gives the tag fractions of the inflow
        inner = {"west": h - 1, "east": 0, "south": h - 1, "north": 0}
        if np.array_equal(levels, np.arange(full.shape[1])):  # all levels: no copy
            f_lev, t_lev = full, tagc
        else:
            f_lev = full[:, levels]
            t_lev = None if tagc is None else tagc[:, levels]
        vals, tags = {}, ({} if t_lev is not None else None)
        for face, (sj, si) in strips.items():
            w = (j0[sj], j1[sj], wj[sj], i0[si], i1[si], wi[si])
            vals[face] = _interp(f_lev, w)
            if t_lev is not None:
                k = inner[face]
                if face in ("west", "east"):
                    sel = (Ellipsis, k)
                    wt = w[:3] + tuple(v[k:k + 1] for v in w[3:])
                else:
                    sel = (Ellipsis, k, slice(None))
                    wt = tuple(v[k:k + 1] for v in w[:3]) + w[3:]
                bulk = np.ascontiguousarray(vals[face][sel])
                # the tags only at that ghost line
                tline = _interp(t_lev, wt)[(Ellipsis, 0) if face in ("west", "east")
                                           else (Ellipsis, 0, slice(None))]
                tags[face] = self.parent.tag_fractions(bulk, np.ascontiguousarray(tline))
        return vals, tags
