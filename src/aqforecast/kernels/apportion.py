"""Chemistry apportionment kernels for source tags (SCIENCE.md 6.3-6.4), numba.

Tag arrays are ``(ntag, nz, ny, nx)`` (float64 or float32; strided views, e.g. interiors of
halo-padded arrays, are accepted and updated in place); per-cell fields are ``(nz, ny, nx)``
float64. Each kernel runs (level, row) lines on threads (:func:`.threads.parallel_kernel`: the
public functions take the arguments after ``start, stop``); :func:`apportion_production_loss`
loops over tags with the row's cells innermost (SIMD), :func:`repartition_family` over tags
inside a cell; arithmetic is float64 whatever the storage type.

:func:`apportion_production_loss` -- one species whose bulk goes from ``before`` to ``after``
with gross production ``P`` (units of the species) over the step::

    P_eff = max(P, after - before, 0)
    c_k  <- (c_k + P_eff w_k) * after / (before + P_eff)

i.e. production is added by the precursor weights ``w_k`` and the loss
``before + P_eff - after`` is removed from every tag in proportion to its share of the pool
(PSAT/OSAT, CAMx ``psatsa.f``/``osatsa.f``). With no production this is loss by current shares;
with no loss it is ``c_k + P w_k``. The weights are ``w_k = a A_k/sum(A) + (1 - a) B_k/sum(B)``
with ``A_k = a1_k + ca2 a2_k`` and ``B_k = b1_k`` (precursor tag amounts, any common unit), ``a``
the per-cell weight of A (the ozone regime); where one precursor sum is zero the other is used,
where both are zero the species' own shares, where those are zero too equal shares. Finally the
cell is renormalised so the tags sum to ``after`` and ``|sum - after|/after`` goes to
``correction``.

:func:`repartition_family` -- a two-member family (NOx = NO + NO2; total nitrate TN = HNO3 + NO3;
total ammonia TA = NH3 + NH4) in cells where ``active``: each tag keeps its family total
``T_k = fa a_k + fb b_k`` (molar) and both members take the family shares,
``a_k = after_a T_k/sum(T)``, ``b_k = after_b T_k/sum(T)``; ``correction`` gets
``|sum(T) - reference|/reference``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .layout import prefetch_rows_call as prefetch_rows
from .threads import parallel_kernel

__all__ = ["apportion_production_loss", "repartition_family"]


#: floor of the reference in the reported relative corrections: mismatches below 1e-15 (mol
#: mol-1 or kg kg-1, ~1e-6 ppb) are round-off on vanishing bulk values, not apportionment errors
_TINY = 1e-15


@nb.njit(cache=True, inline="always")
def _row_updated_tags(t, k, j, tags, a1, a2, ca2, b1, use_precursors, ca, cb, cs, ce, p, f, out):
    """Tag t of row (k, j) after production shared by the per-cell weights
    w = ca (a1 + ca2 a2) + cb b1 + cs tag + ce, scaled by f, floored at 0: out (nx,)."""
    row = tags[t, k, j]
    nx = row.shape[0]
    if use_precursors:
        r1 = a1[t, k, j]
        r2 = a2[t, k, j]
        rb = b1[t, k, j]
        for i in range(nx):
            c = float(row[i])
            # a precursor set without weight is not read (selected, not multiplied by 0: its
            # tags may be non-finite where its bulk sum is, as the weight rule excluded it)
            wa_part = ca[i] * (r1[i] + ca2 * r2[i]) if ca[i] != 0.0 else 0.0
            wb_part = cb[i] * rb[i] if cb[i] != 0.0 else 0.0
            w = wa_part + wb_part + cs[i] * c + ce[i]
            v = (c + p[i] * w) * f[i]
            out[i] = 0.0 if v < 0.0 else v
    else:
        for i in range(nx):
            c = float(row[i])
            v = (c + p[i] * (cs[i] * c + ce[i])) * f[i]
            out[i] = 0.0 if v < 0.0 else v


@parallel_kernel(lambda tags, *_: tags.shape[1] * tags.shape[2])
@nb.njit(nogil=True, cache=True, error_model="numpy")
def apportion_production_loss(start, stop, tags, a1, a2, ca2, b1, weight_a, use_precursors,
                              production, before, after, correction):
    """Production by precursor weights, loss by shares, renormalised (module docstring).

    tags, a1, a2, b1: (ntag, nz, ny, nx); weight_a, production, before, after, correction:
    (nz, ny, nx). ``use_precursors`` False gives production by the species' own shares
    (precursor arrays are then not read). ``tags`` may be the same array as a precursor.

    Each (level, row) line is done tag by tag with the row's cells innermost (contiguous rows,
    SIMD): the per-cell sums, then per cell the weight coefficients w_k = ca A_k + cb B_k +
    cs c_k + ce (ca = a/sum(A), cb = (1 - a)/sum(B) for precursor weights; cs = 1/sum(c) for own
    shares; ce = 1/ntag for equal shares; the others 0), then the tags in two passes (sum, then
    write).
    """
    ntag, nz, ny, nx = tags.shape
    s0 = np.empty(nx)
    sa = np.empty(nx)
    sb = np.empty(nx)
    s1 = np.empty(nx)
    ca = np.empty(nx)
    cb = np.empty(nx)
    cs = np.empty(nx)
    ce = np.empty(nx)
    p_row = np.empty(nx)
    f_row = np.empty(nx)
    scale = np.empty(nx)
    v = np.empty((ntag, nx))
    for line in range(start, stop):
        k = line // ny
        j = line - k * ny
        # the next line's rows of every tag (one per tag plane: more streams than the hardware
        # prefetchers follow) are requested while this line is computed
        nxt = line + 1 if line + 1 < stop else line
        k1 = nxt // ny
        j1 = nxt - k1 * ny
        prefetch_rows(tags[:, k1, j1], 0, 1)
        if use_precursors:
            prefetch_rows(a1[:, k1, j1], 0, 1)
            prefetch_rows(a2[:, k1, j1], 0, 1)
            prefetch_rows(b1[:, k1, j1], 0, 1)
        s0[:] = 0.0
        for t in range(ntag):
            row = tags[t, k, j]
            for i in range(nx):
                s0[i] += row[i]
        sa[:] = 0.0
        sb[:] = 0.0
        if use_precursors:
            for t in range(ntag):
                r1 = a1[t, k, j]
                r2 = a2[t, k, j]
                rb = b1[t, k, j]
                for i in range(nx):
                    sa[i] += r1[i] + ca2 * r2[i]
                    sb[i] += rb[i]
        for i in range(nx):
            wa = weight_a[k, j, i]
            ca[i] = 0.0
            cb[i] = 0.0
            cs[i] = 0.0
            ce[i] = 0.0
            if use_precursors and (sa[i] > 0.0 or sb[i] > 0.0):
                if not sa[i] > 0.0:
                    wa = 0.0
                elif not sb[i] > 0.0:
                    wa = 1.0
                if wa > 0.0:
                    ca[i] = wa / sa[i]
                if wa < 1.0:
                    cb[i] = (1.0 - wa) / sb[i]
            elif s0[i] > 0.0:
                cs[i] = 1.0 / s0[i]
            else:
                ce[i] = 1.0 / ntag
            aft = after[k, j, i]
            bef = before[k, j, i]
            p = production[k, j, i]
            if aft - bef > p:
                p = aft - bef
            if p < 0.0:
                p = 0.0
            denom = bef + p
            p_row[i] = p
            f_row[i] = aft / denom if denom > 0.0 else 0.0
        # pass 1: the updated tags (kept for pass 2) and their sum
        s1[:] = 0.0
        for t in range(ntag):
            vt = v[t]
            _row_updated_tags(t, k, j, tags, a1, a2, ca2, b1, use_precursors, ca, cb, cs, ce,
                              p_row, f_row, vt)
            for i in range(nx):
                s1[i] += vt[i]
        for i in range(nx):
            aft = after[k, j, i]
            if aft > 0.0 and s1[i] > 0.0:
                scale[i] = aft / s1[i]
                correction[k, j, i] = abs(s1[i] - aft) / max(aft, _TINY)
            elif s1[i] > 0.0:
                scale[i] = 0.0
                correction[k, j, i] = 0.0
            else:  # no tag left: equal shares of the bulk
                scale[i] = 0.0
                correction[k, j, i] = 1.0 if aft > 0.0 else 0.0
        # pass 2: write (everything was read in pass 1, so tags may alias a precursor)
        for t in range(ntag):
            vt = v[t]
            row = tags[t, k, j]
            for i in range(nx):
                row[i] = vt[i] * scale[i] if s1[i] > 0.0 else after[k, j, i] / ntag


@parallel_kernel(lambda a, *_: a.shape[1] * a.shape[2])
@nb.njit(nogil=True, cache=True)
def repartition_family(start, stop, a, b, fa, fb, after_a, after_b, reference, active, correction):
    """Both members of a family take the per-tag family shares in active cells (docstring).

    a, b: (ntag, nz, ny, nx) tags of the two members (model units; ``fa``/``fb`` convert them to
    a common molar unit); after_a, after_b, reference: (nz, ny, nx) bulk after the step and the
    bulk family total the tag totals are compared with; active: (nz, ny, nx) bool.
    """
    ntag, nz, ny, nx = a.shape
    tot = np.empty(nx)
    for line in range(start, stop):
        k = line // ny
        j = line - k * ny
        nxt = line + 1 if line + 1 < stop else line
        prefetch_rows(a[:, nxt // ny, nxt % ny], 0, 1)
        prefetch_rows(b[:, nxt // ny, nxt % ny], 0, 1)
        # row by row (each tag's row contiguous, SIMD along it); per cell the arithmetic and
        # the order of the sum over tags of the cell-by-cell form
        act = active[k, j]
        tot[:] = 0.0
        for t in range(ntag):
            ra = a[t, k, j]
            rb = b[t, k, j]
            for i in range(nx):
                tot[i] += fa * ra[i] + fb * rb[i]
        for i in range(nx):
            ref = reference[k, j, i]
            correction[k, j, i] = (abs(tot[i] - ref) / max(ref, _TINY) if ref > 0.0 else 0.0) \
                if act[i] else 0.0
        xa_row = after_a[k, j]
        xb_row = after_b[k, j]
        for t in range(ntag):
            ra = a[t, k, j]
            rb = b[t, k, j]
            for i in range(nx):
                if not act[i]:
                    continue
                xa = xa_row[i]
                xb = xb_row[i]
                if tot[i] > 0.0:
                    share = (fa * ra[i] + fb * rb[i]) / tot[i]
                    if share < 0.0:
                        share = 0.0
                    ra[i] = xa * share
                    rb[i] = xb * share
                else:
                    ra[i] = xa / ntag
                    rb[i] = xb / ntag
