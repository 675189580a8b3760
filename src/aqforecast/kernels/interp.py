"""Separable bilinear interpolation at a few points of many stacked fields (numba).

The nest boundary (:mod:`aqforecast.transport.nesting`) interpolates the parent's mixing ratios
and its tag concentrations (hundreds of rows) to the nest's thin ghost strips: four parent points
per output point. NumPy's fancy indexing built four gathered copies and four products of every
row per face; this kernel reads the four points and writes the result once, with the same
arithmetic in the same order, so the two agree bit for bit.
"""

from __future__ import annotations

import numba as nb

from .threads import parallel_kernel

__all__ = ["bilinear_rows"]


@parallel_kernel(lambda field, *_: field.shape[0] * field.shape[1])
@nb.njit(nogil=True, cache=True, error_model="numpy")
def bilinear_rows(start, stop, field, j0, j1, wj, i0, i1, wi, out):
    """Work items ``start .. stop-1`` (index r n1 + k) of field (n0, n1, ny, nx) (any strides,
    e.g. a window of the model's padded tag array) at the separable points:
    out[r, k, a, b] = (f[j0a, i0b] (1 - wj_a) + f[j1a, i0b] wj_a) (1 - wi_b)
    + (f[j0a, i1b] (1 - wj_a) + f[j1a, i1b] wj_a) wi_b, out (n0, n1, len(j0), len(i0)).
    Indices are those of :func:`aqforecast.transport.nesting.bilinear_weights`; weights are
    dimensionless."""
    n1 = field.shape[1]
    na = j0.shape[0]
    nb_ = i0.shape[0]
    for rk in range(start, stop):
        r = rk // n1
        k = rk - r * n1
        f = field[r, k]
        o = out[r, k]
        for a in range(na):
            cj = 1 - wj[a]
            dj = wj[a]
            ra = f[j0[a]]
            rb = f[j1[a]]
            for b in range(nb_):
                a0 = ra[i0[b]] * cj + rb[i0[b]] * dj
                a1 = ra[i1[b]] * cj + rb[i1[b]] * dj
                o[a, b] = a0 * (1 - wi[b]) + a1 * wi[b]
