"""Ghost cells of one axis of a halo-padded tracer array in one call (numba).

The advection operator fills the ghosts of the axis it sweeps before every sweep (SCIENCE.md
1.6): zero-gradient copies of the edge cell, or the periodic images, and prescribed inflow
values where the face's air-mass flux points into the domain. Done with NumPy slices this took
five to eight small array operations per sweep (~0.1 ms each on the sample case, ~700 sweeps per
simulated hour, serial Python between the threaded kernels); this kernel does it in one pass
over the ghost cells. Copies only: the result is the NumPy form's bit for bit (test).
"""

from __future__ import annotations

import numba as nb

__all__ = ["fill_axis_ghosts"]


@nb.njit(nogil=True, cache=True)
def fill_axis_ghosts(q, h, n, periodic, flux_lo, flux_hi, vals_lo, vals_hi, inflow_lo,
                     inflow_hi):
    """Fill the ghosts of the last axis of ``q`` (nrow, A, B, n + 2h) (any strides: the padded
    array's interior in the other two axes, the swept axis moved last).

    periodic: ghosts take the images (``q[..., :h] = q[..., n:n+h]``, ``q[..., n+h:] =
    q[..., h:2h]``); otherwise zero-gradient (every ghost = its edge cell), then, where
    ``inflow_lo`` and ``flux_lo[a, b] > 0`` (inwards through the low face), the low ghosts take
    ``vals_lo[r, a, b, :]`` (nrow, A, B, h), and where ``inflow_hi`` and ``flux_hi[a, b] < 0`` the
    high ghosts take ``vals_hi``. flux_lo/flux_hi: (A, B) face air-mass fluxes (only their sign
    is read). The loops follow the memory: line by line where the swept axis is the contiguous
    one (x), ghost layer by ghost layer with B innermost otherwise (y, z)."""
    nrow, na, nb_ = q.shape[0], q.shape[1], q.shape[2]
    by_line = q.strides[3] == q.itemsize
    for r in range(nrow):
        for a in range(na):
            if by_line:
                for b in range(nb_):
                    _fill_line(q[r, a, b], h, n, periodic,
                               inflow_lo and flux_lo[a, b] > 0.0,
                               inflow_hi and flux_hi[a, b] < 0.0, vals_lo, vals_hi, r, a, b)
                continue
            plane = q[r, a]  # (B, n + 2h)
            for g in range(h):
                lo = plane[:, g]
                hi = plane[:, n + h + g]
                if periodic:
                    src_lo = plane[:, n + g]
                    src_hi = plane[:, h + g]
                    for b in range(nb_):
                        lo[b] = src_lo[b]
                        hi[b] = src_hi[b]
                    continue
                edge_lo = plane[:, h]
                edge_hi = plane[:, n + h - 1]
                for b in range(nb_):
                    if inflow_lo and flux_lo[a, b] > 0.0:
                        lo[b] = vals_lo[r, a, b, g]
                    else:
                        lo[b] = edge_lo[b]
                    if inflow_hi and flux_hi[a, b] < 0.0:
                        hi[b] = vals_hi[r, a, b, g]
                    else:
                        hi[b] = edge_hi[b]


@nb.njit(nogil=True, cache=True, inline="always")
def _fill_line(line, h, n, periodic, take_lo, take_hi, vals_lo, vals_hi, r, a, b):
    """The ghosts of one line (:func:`fill_axis_ghosts`)."""
    if periodic:
        for g in range(h):
            line[g] = line[n + g]
            line[n + h + g] = line[h + g]
        return
    if take_lo:
        for g in range(h):
            line[g] = vals_lo[r, a, b, g]
    else:
        edge = line[h]
        for g in range(h):
            line[g] = edge
    if take_hi:
        for g in range(h):
            line[n + h + g] = vals_hi[r, a, b, g]
    else:
        edge = line[n + h - 1]
        for g in range(h):
            line[n + h + g] = edge
