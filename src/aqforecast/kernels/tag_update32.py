"""Single-precision tag update of a tile of lines (the fast path of the tagged sweep).

The flux-fraction tag update (:mod:`.tagging`, SCIENCE.md 6.2) of a cell without deficit cells
on its line is a three-point stencil with per-cell weights shared by every tag of the species::

    f_i <- f_i w_keep,i + f_(i-1) w_left,i + f_(i+1) w_right,i

(``f_(-1)`` and ``f_n`` are the boundary inflow fractions). With the fractions stored in float32
(``tags.transport_precision``), the weights are rounded to float32 once per tile and species
and the stencil runs in float32 straight on the fractions, in place, for every tag: twice the
SIMD width of float64 and no copies through float64 work rows. Two memory orders:

* lines adjacent in memory (the model's y and z sweeps): a column of TILE lines per position,
  vectorised across the lines (:func:`tile_update_columns`);
* each line contiguous and the tile's lines one after another (x sweeps of the level layout):
  the tile's block of ``nl x n`` values as one flat run, the stencil vectorised along it and the
  two end cells of every line fixed afterwards (:func:`tile_update_block`).

Rounding: the weights and the update are float32 (relative error ~6e-8 per sweep, the fractions'
own precision); the fractions still sum to 1 within float32 round-off and the model renormalises
them against the bulk in float64 at the end of each step. The lines of a tile that hold deficit cells
are updated exactly in float64 (:func:`line_update_exact`) from their pre-sweep fractions and
written over the stencil's result.

Subnormal numbers: fractions of a tag far from its source decay geometrically and reached the
float32 subnormal range (< 1.2e-38) in 3-4 % of the sample case's tag cells after 2 h; x86
arithmetic on subnormals takes a microcode assist of ~100 cycles, and the tagged sweeps ran at
2.4 ns per tag-cell instead of ~1. Fractions and weights below :data:`TINY` (1e-15) are
therefore set to 0 (every product of two numbers >= TINY is a normal float32): a tag loses at
most 1e-15 of the bulk per cell and sweep, eight orders below float32's own rounding (6e-8). Weight layout: ``w`` rows of ROW elements as
:func:`aqforecast.kernels.tagging._tile_tag_weights` (keep, left, right in rows n + i, 2n + i,
3n + i) for columns; line-major ``(3, TILE * n)`` for blocks.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .advection import ROW, TILE, _tile_work, _u
from .layout import (OneLayout, _element_pointer, contiguous_column, prefetch_rows,
                     prefetch_rows_call)
from .tagging import _tile_tag_weights, tile_bulk, tile_count, tile_geometry, tile_mass
from .threads import parallel_range

#: Fractions and weights below this are set to 0 in the float32 path (no subnormal arithmetic)
TINY = np.float32(1e-15)
_ZERO = np.float32(0.0)

__all__ = ["TINY", "walcek_tiles_tagged32", "weights_to_columns32", "weights_to_block32",
           "tile_update_columns", "tile_update_block", "deficit_cells", "deficit_outflow",
           "deficit_correct"]


@nb.njit(cache=True)
def weights_to_columns32(tw, n, nl, w32):
    """float32 copy of the keep/left/right weight rows of ``tw`` (rows n .. 4n-1) into w32
    (rows 0 .. 3n-1, same ROW spacing)."""
    nlu = np.uint64(nl)
    for r in range(3 * n):
        src = _u(n + r)
        dst = _u(r)
        for l in range(nlu):
            w = np.float32(tw[src + l])
            w32[dst + l] = _ZERO if w < TINY else w


@nb.njit(cache=True)
def weights_to_block32(tw, n, nl, wb):
    """The keep/left/right weights of ``tw`` transposed to line-major float32 rows:
    ``wb[c, l * n + i]`` for c = keep, left, right."""
    for c in range(3):
        row = wb[c]
        for i in range(n):
            src = (n * (c + 1) + i) * ROW
            for l in range(nl):
                w = np.float32(tw[src + l])
                row[l * n + i] = _ZERO if w < TINY else w


@nb.njit(cache=True, error_model="numpy")
def tile_update_columns(v, n, nl, w32, flo, fhi, prev, upcoming):
    """Update one tag's fractions of a tile in place; ``v`` (nl, n) with lines adjacent in
    memory (``v.strides[0] == v.itemsize``), float32. flo/fhi: (TILE,) float32 inflow
    fractions at the low/high boundary faces; prev: (TILE,) float32 work (the pre-sweep value
    of the previous position); upcoming: (n, nl) the next tag's tile, prefetched a column at a
    time while this one is updated (its rows: another tag plane, a jump the hardware
    prefetchers do not follow)."""
    nlu = np.uint64(nl)
    for l in range(nlu):
        prev[l] = flo[l]
    for i in range(n - 1):
        prefetch_rows(upcoming, i, n)
        col = contiguous_column(v, i)
        nxt = contiguous_column(v, i + 1)
        rk = _u(i)
        rl = _u(n + i)
        rw = _u(2 * n + i)
        for l in range(nlu):
            c = col[l]
            x = c * w32[rk + l] + prev[l] * w32[rl + l] + nxt[l] * w32[rw + l]
            col[l] = _ZERO if x < TINY else x
            prev[l] = c
    col = contiguous_column(v, n - 1)
    rk = _u(n - 1)
    rl = _u(2 * n - 1)
    rw = _u(3 * n - 1)
    for l in range(nlu):
        x = col[l] * w32[rk + l] + prev[l] * w32[rl + l] + fhi[l] * w32[rw + l]
        col[l] = _ZERO if x < TINY else x


@nb.njit(cache=True, error_model="numpy")
def tile_update_block(v, n, nl, wb, flo, fhi, buf):
    """Update one tag's fractions of a tile in place; ``v`` (nl, n) float32 whose lines are
    contiguous and follow each other (``v.strides == (n * 4, 4)``). wb: (3, TILE * n) float32
    line-major weights (:func:`weights_to_block32`); flo/fhi: (TILE,) float32 inflow fractions;
    buf: (TILE * n,) float32 work (the pre-sweep values)."""
    m = nl * n
    blk = nb.carray(_element_pointer(v, v.ctypes.data), m)  # the block, typed C-contiguous
    wk = wb[0]
    wl = wb[1]
    wr = wb[2]
    for j in range(m):
        buf[j] = blk[j]
    for j in range(1, m - 1):
        x = buf[j] * wk[j] + buf[j - 1] * wl[j] + buf[j + 1] * wr[j]
        blk[j] = _ZERO if x < TINY else x
    for l in range(nl):
        j0 = l * n
        j1 = j0 + n - 1
        if n == 1:
            x = buf[j0] * wk[j0] + flo[l] * wl[j0] + fhi[l] * wr[j0]
            blk[j0] = _ZERO if x < TINY else x
            continue
        x = buf[j0] * wk[j0] + flo[l] * wl[j0] + buf[j0 + 1] * wr[j0]
        blk[j0] = _ZERO if x < TINY else x
        x = buf[j1] * wk[j1] + buf[j1 - 1] * wl[j1] + fhi[l] * wr[j1]
        blk[j1] = _ZERO if x < TINY else x




@nb.njit(cache=True, error_model="numpy")
def deficit_cells(n, nl, flux, tw, cells, share):
    """The tile's acting deficit cells, in the order the exact update settles them, into
    ``cells`` (3, TILE * n) int64 rows (line, position, direction) and ``share`` (TILE * n,);
    returns their number.

    A deficit cell (outflow > resident mass) that is fed from the left only (low face inflow,
    high face outflow or still) passes on its left donor's outflow fractions for the share
    ``(F_out - R) / F_out`` (capped at 1) of its outflow; these are settled left to right
    (direction +1). One fed from the right only takes its right donor's, settled right to left
    (-1) after the first pass. Cells fed from both sides send out their own fractions (the
    rule of :func:`aqforecast.kernels.tagging.outflow_fractions`, whose two passes skip them).
    flux, tw: the tile's final tracer fluxes and weights (rows of ROW; resident mass in rows
    0 .. n-1).
    """
    count = 0
    for l in range(nl):
        for i in range(n):
            fl = flux[i * ROW + l]
            fr = flux[(i + 1) * ROW + l]
            if fl > 0.0 and fr >= 0.0:
                deficit = fr - tw[i * ROW + l]
                if deficit > 0.0:
                    cells[0, count] = l
                    cells[1, count] = i
                    cells[2, count] = 1
                    share[count] = deficit / fr if deficit < fr else 1.0
                    count += 1
        for j in range(n):
            i = n - 1 - j
            fl = flux[i * ROW + l]
            fr = flux[(i + 1) * ROW + l]
            if fl <= 0.0 and fr < 0.0:
                fout = -fl
                deficit = fout - tw[i * ROW + l]
                if deficit > 0.0:
                    cells[0, count] = l
                    cells[1, count] = i
                    cells[2, count] = -1
                    share[count] = deficit / fout if deficit < fout else 1.0
                    count += 1
    return count


@nb.njit(cache=True, error_model="numpy")
def deficit_outflow(v, n, ncell, cells, share, flo, fhi, gval, stamp, epoch, delta):
    """Outflow fractions of one tag at the tile's acting deficit cells (:func:`deficit_cells`),
    from its pre-sweep fractions ``v`` (nl, n): ``delta[c] = g - f`` of cell c, in float64.
    gval, stamp: (TILE * n,) work (a cell's settled g is gval where stamp == epoch)."""
    for c in range(ncell):
        l = cells[0, c]
        i = cells[1, c]
        j = i - cells[2, c]  # the donor position
        if j < 0:
            gin = np.float64(flo[l])
        elif j >= n:
            gin = np.float64(fhi[l])
        elif stamp[l * n + j] == epoch:
            gin = gval[l * n + j]
        else:
            gin = np.float64(v[l, j])
        f = np.float64(v[l, i])
        g = f * (1.0 - share[c]) + gin * share[c]
        gval[l * n + i] = g
        stamp[l * n + i] = epoch
        delta[c] = g - f


@nb.njit(cache=True, error_model="numpy")
def deficit_correct(v, n, ncell, cells, delta, tw):
    """Correct the stencil's result ``v`` (nl, n) next to the acting deficit cells: their
    neighbours took the cell's pre-sweep fraction f where the update takes its outflow
    fraction g (:func:`deficit_outflow`): + (g - f) w_left on the right neighbour, + (g - f)
    w_right on the left one (weights from ``tw``, rows of ROW)."""
    for c in range(ncell):
        l = cells[0, c]
        i = cells[1, c]
        d = delta[c]
        if i + 1 < n:
            x = v[l, i + 1] + d * tw[(2 * n + i + 1) * ROW + l]
            v[l, i + 1] = 0.0 if x < TINY else x
        if i > 0:
            x = v[l, i - 1] + d * tw[(3 * n + i - 1) * ROW + l]
            v[l, i - 1] = 0.0 if x < TINY else x


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _tagged_tiles32(t0, t1, q, h, mass, flux_air, scale, closed, tag_rows, frac, bc_low,
                    bc_high):
    """Tiles ``t0 .. t1-1`` of :func:`walcek_tiles_tagged32` (run on threads by
    :func:`aqforecast.kernels.threads.parallel_range`)."""
    nspec = q.shape[0]
    n0, n1, n = mass.shape
    ntagged = tag_rows.shape[0]
    ntag = frac.shape[1]
    periodic = (closed & 4) != 0
    # work arrays once per range of tiles
    la = np.empty(TILE, dtype=np.int64)
    lb = np.empty(TILE, dtype=np.int64)
    a, geo, work, out = _tile_work(n, h)
    tw = np.empty(4 * n * ROW)
    w32 = np.empty(3 * n * ROW, dtype=np.float32)
    wb32 = np.empty((3, TILE * n), dtype=np.float32)
    flo = np.empty(TILE, dtype=np.float32)
    fhi = np.empty(TILE, dtype=np.float32)
    prev = np.empty(TILE, dtype=np.float32)
    buf = np.empty(TILE * n, dtype=np.float32)
    copy = np.empty((TILE, n), dtype=np.float32)
    cells = np.empty((3, TILE * n), dtype=np.int64)
    share = np.empty(TILE * n)
    delta = np.empty(TILE * n)
    gval = np.empty(TILE * n)
    stamp = np.zeros(TILE * n, dtype=np.int64)
    epoch = 0
    for t in range(t0, t1):
        nl = tile_geometry(t, n0, n1, la, lb, flux_air, mass, scale, closed, geo)
        for s in range(nspec):
            tile_bulk(q, s, h, la, lb, nl, n1, a, geo, work, out, periodic)
            prepared = False
            ndef = 0
            columns = False
            block = False
            for ti in range(ntagged):
                if tag_rows[ti] != s:
                    continue
                if n1 == 1:
                    v = frac[ti, :, la[0]:la[0] + nl, 0, :]
                else:
                    v = frac[ti, :, la[0], lb[0]:lb[0] + nl, :]
                if not prepared:
                    # the same for every tagged row of the species: weights, deficit cells,
                    # memory order (lines adjacent: columns, SIMD across lines; else blocks,
                    # SIMD along the lines, copied when they do not follow each other)
                    deficit = _tile_tag_weights(a, h, n, nl, geo, work, tw)
                    ndef = deficit_cells(n, nl, work, tw, cells, share) if deficit else 0
                    columns = nl == 1 or v.strides[1] == v.itemsize
                    block = v.strides[2] == v.itemsize and v.strides[1] == n * v.itemsize
                    if columns:
                        weights_to_columns32(tw, n, nl, w32)
                    else:
                        weights_to_block32(tw, n, nl, wb32)
                    prepared = True
                for k in range(ntag):
                    vk = v[k]
                    # the next tag's part of the tile (another tag plane: a jump the hardware
                    # prefetchers do not follow) is requested while this one is updated
                    if k + 1 < ntag and not columns:
                        prefetch_rows_call(v[k + 1], 0, 1)
                    if n1 == 1:
                        for l in range(nl):
                            flo[l] = bc_low[ti, k, la[l], 0]
                            fhi[l] = bc_high[ti, k, la[l], 0]
                    else:  # the tile's lines are lb[0] .. lb[0] + nl - 1 of row la[0]
                        lo_row = bc_low[ti, k, la[0]]
                        hi_row = bc_high[ti, k, la[0]]
                        for l in range(nl):
                            flo[l] = lo_row[lb[0] + l]
                            fhi[l] = hi_row[lb[0] + l]
                    if ndef:
                        epoch += 1
                        deficit_outflow(vk, n, ndef, cells, share, flo, fhi, gval, stamp, epoch,
                                        delta)
                    if columns:
                        tile_update_columns(vk, n, nl, w32, flo, fhi, prev,
                                            v[k + 1 if k + 1 < ntag else k].T)
                    elif block:
                        tile_update_block(vk, n, nl, wb32, flo, fhi, buf)
                    else:
                        # element loops, not ``cv[...] = vk``: an array-to-array slice
                        # assignment makes numba compile its shape-mismatch message (string
                        # formatting, ~4 s of a cold first call)
                        cv = copy[:nl]
                        for l in range(nl):
                            for i in range(n):
                                cv[l, i] = vk[l, i]
                        tile_update_block(cv, n, nl, wb32, flo, fhi, buf)
                        for l in range(nl):
                            for i in range(n):
                                vk[l, i] = cv[l, i]
                    if ndef:
                        deficit_correct(vk, n, ndef, cells, delta, tw)
        tile_mass(mass, la, lb, nl, geo)


_TAGGED_TILES32 = OneLayout(_tagged_tiles32, exact=True, loose=("frac", "bc_low", "bc_high"))


def walcek_tiles_tagged32(q, halo, mass, flux_air, scale, closed, tag_rows, frac, bc_low,
                          bc_high):
    """:func:`aqforecast.kernels.tagging.walcek_tiles_tagged` for float32 fractions: the same
    bulk and air mass bit for bit, the tags by the float32 stencil of this module (within
    float32 round-off of the float64 update; fractions below :data:`TINY` set to 0)."""
    parallel_range(_TAGGED_TILES32, tile_count(mass), q, halo, mass, flux_air, scale, closed,
                   tag_rows, frac, bc_low, bc_high)
