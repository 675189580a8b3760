"""Flux-fraction advection of source tags along one axis (SCIENCE.md 6.2).

Tags are carried as *fractions* f_k of the bulk tracer (sum_k f_k = 1). After the bulk sweep has
fixed its tracer-mass fluxes F, each tag moves with the fraction of the material crossing each
face: the *outflow fraction* g of the donor cell. A cell whose resident tracer mass R covers its
outflow (R >= F_out; always the case for donor cell with Courant number <= 1, and nearly always
for Walcek) sends out its own pre-sweep fractions, g = f. A Walcek face value can exceed the
donor's mixing ratio next to a steeper neighbour, so a cell's outflow can exceed its resident
mass; the excess is material that flowed in during the same sweep, so such a "deficit" cell
sends out all of R with f and the excess with the fractions of its inflow::

    g_i = f_i (1 - s) + g_in s,   s = (F_out - R_i) / F_out,   g_in = sum_in F g_donor / F_in

and what stays in it is inflow material. The new fractions are then::

    f_k,i <- (f_k,i max(R_i - F_out,i, 0) + sum_in g_k,donor F_in) / (max(R_i - F_out, 0) + F_in)

Every tag's mass follows the bulk's flux-form update exactly (per-tag conservation to
round-off), the fractions stay convex, and only chains of deficit cells are sequential (they are
settled after their donors: a left-to-right pass for cells not fed from the right, then a
right-to-left pass). For a linear scheme (``walcek_lines_tagged(..., upwind=True)``, first-order
donor cell by :func:`upwind_line`) there are no deficit cells and each tag equals the run with
only its source switched on, to round-off. With Walcek the tags differ from single-source runs
only through the limiter's nonlinearity (``tests/test_tag_bruteforce.py`` gives the numbers).
An earlier rule that mixed inflow into every cell before computing its outflow ("post-mixing",
as in NAQPMS's ``adv_hori_mark``) let a fraction cross a whole line within one sweep and made
tags 0.12-0.37 (L1) off the single-source runs on the small test case.

Kernels are numba ``njit`` functions; lines run on threads (:mod:`.threads`). Arrays:
``bulk_mass`` (n0, n1, n) resident tracer mass per cell before the sweep, ``flux`` (n0, n1, n+1)
signed tracer-mass flux through faces (positive towards increasing index; face 0 is the low
boundary), ``frac`` (ntag, n0, n1, n) fractions (updated in place), ``bc_low``/``bc_high``
(ntag, n0, n1) fractions of inflow through the low/high boundary faces.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .advection import ROW, TILE, _line_fluxes, _tile_geometry, _tile_work, _u, _TU, walcek_tile
from .advection import walcek_line as _walcek_line
from .background import BackgroundCompile, in_numba_cache
from .layout import OneLayout, contiguous_column, contiguous_row
from .threads import parallel_kernel, parallel_range

__all__ = ["tag_fraction_line", "tag_fraction_line_work", "tag_fraction_sweep",
           "walcek_lines_tagged", "walcek_tiles_tagged", "walcek_sweep_tagged", "upwind_line",
           "fractions_from_tags", "fractions_from_tag_cells", "tags_from_fraction_cells",
           "tags_from_fraction_cells_normalised", "compile_sweep_in_background"]


@nb.njit(cache=True, error_model="numpy")
def tag_fraction_line(mass, flux, frac, f_low, f_high, out):
    """Update tag fractions along one line (see :func:`tag_fraction_line_work`)."""
    g = np.empty(frac.shape)
    w = np.empty((3, frac.shape[1]))
    tag_fraction_line_work(mass, flux, frac, f_low, f_high, out, g, w)


@nb.njit(cache=True, inline="always", error_model="numpy")
def outflow_fractions(mass, flux, frac, f_low, f_high, g):
    """Fractions ``g`` (ntag, n) of each cell's outflow in a sweep (see
    :func:`tag_fraction_line_work`): the pre-sweep fractions, except in deficit cells (outflow
    > resident mass), which pass on inflow material for the excess."""
    ntag, n = frac.shape
    for k in range(ntag):
        for i in range(n):
            g[k, i] = frac[k, i]
    # deficit cells: left-to-right for cells not fed from the right, then right-to-left
    for sweep in range(2):
        for j in range(n):
            i = j if sweep == 0 else n - 1 - j
            fl = flux[i]
            fr = flux[i + 1]
            if (sweep == 0 and fr < 0.0) or (sweep == 1 and fl > 0.0):
                continue
            fout = (fr if fr > 0.0 else 0.0) + (-fl if fl < 0.0 else 0.0)
            fin_l = fl if fl > 0.0 else 0.0
            fin_r = -fr if fr < 0.0 else 0.0
            fin = fin_l + fin_r
            deficit = fout - mass[i]
            if deficit <= 0.0 or fin <= 0.0:
                continue
            share = deficit / fout if deficit < fout else 1.0
            for k in range(ntag):
                dl = f_low[k] if i == 0 else g[k, i - 1]
                dr = f_high[k] if i == n - 1 else g[k, i + 1]
                gin = (dl * fin_l + dr * fin_r) / fin
                g[k, i] = frac[k, i] * (1.0 - share) + gin * share


@nb.njit(cache=True, inline="always", error_model="numpy")
def tag_fraction_line_work(mass, flux, frac, f_low, f_high, out, g, w):
    """Tag fractions after one sweep of a line, given the sweep's final tracer fluxes; in place
    allowed (``out`` may be ``frac``).

    mass: (n,) resident tracer mass of each cell before the sweep ([q] kg); flux: (n + 1,) the
    sweep's tracer fluxes (positive towards increasing index); frac: (ntag, n) fractions before
    the sweep; f_low/f_high: (ntag,) fractions of inflow through the low/high boundary face;
    out: (ntag, n) receives the fractions after the sweep; g: (ntag, n) work, the fractions of
    each cell's outflow; w: (3, n) work, each cell's weights of its own, left and right donors'
    fractions.

    A cell whose resident mass covers its outflow (R >= F_out, always so for donor cell with
    Courant <= 1) sends out its own pre-sweep fractions. A cell whose outflow exceeds its
    resident mass (Walcek's face values can exceed the donor's mixing ratio next to a
    steeper neighbour) sends out all of its resident mass and, for the rest, the material it
    receives in the same sweep: g = (f R + g_in (F_out - R)) / F_out, and what stays in it is
    inflow material (fraction g_in). Each tag's mass then follows the bulk's flux-form update
    exactly, the fractions stay convex, and for a linear scheme the tags are the single-source
    runs. Only chains of such deficit cells are sequential (settled after their donors).
    """
    ntag, n = frac.shape
    # per-cell weights of (own, left donor, right donor) once, then per tag
    wk = w[0]
    wl = w[1]
    wr = w[2]
    deficit = False
    for i in range(n):
        fl = flux[i]
        fr = flux[i + 1]
        fin_l = fl if fl > 0.0 else 0.0
        fin_r = -fr if fr < 0.0 else 0.0
        fout = (fr if fr > 0.0 else 0.0) + (-fl if fl < 0.0 else 0.0)
        keep = mass[i] - fout
        deficit |= (keep < 0.0) & (fin_l + fin_r > 0.0)
        if keep < 0.0:
            keep = 0.0  # a deficit cell keeps only inflow material
        denom = keep + fin_l + fin_r
        if denom > 0.0:
            # divisions, not a reciprocal: 1/denom overflows for a denormal denom (tracer
            # fluxes of ~1e-316 occur) and 0 * inf would give NaN fractions
            wk[i] = keep / denom
            wl[i] = fin_l / denom
            wr[i] = fin_r / denom
        else:
            wk[i] = 1.0
            wl[i] = 0.0
            wr[i] = 0.0
    if not deficit:
        # every cell sends out its own fractions (g = frac): update straight from frac, keeping
        # the pre-sweep values in a work row first (out may be frac: updating in place with a
        # carried left value kept the loop scalar; from the copy it vectorises, same bits)
        for k in range(ntag):
            fk = frac[k]
            ok = out[k]
            buf = g[0]
            for i in range(n):
                buf[i] = fk[i]
            if n == 1:
                ok[0] = buf[0] * wk[0] + f_low[k] * wl[0] + f_high[k] * wr[0]
                continue
            ok[0] = buf[0] * wk[0] + f_low[k] * wl[0] + buf[1] * wr[0]
            for i in range(1, n - 1):
                ok[i] = buf[i] * wk[i] + buf[i - 1] * wl[i] + buf[i + 1] * wr[i]
            ok[n - 1] = buf[n - 1] * wk[n - 1] + buf[n - 2] * wl[n - 1] + f_high[k] * wr[n - 1]
        return
    outflow_fractions(mass, flux, frac, f_low, f_high, g)
    for k in range(ntag):
        fk = frac[k]
        gk = g[k]
        ok = out[k]
        right = f_high[k] if n == 1 else gk[1]
        first = fk[0] * wk[0] + f_low[k] * wl[0] + right * wr[0]
        if n > 1:
            last = fk[n - 1] * wk[n - 1] + gk[n - 2] * wl[n - 1] + f_high[k] * wr[n - 1]
            for i in range(1, n - 1):
                ok[i] = fk[i] * wk[i] + gk[i - 1] * wl[i] + gk[i + 1] * wr[i]
            ok[n - 1] = last
        ok[0] = first


@parallel_kernel(lambda bulk_mass, *_: bulk_mass.shape[0])
@nb.njit(nogil=True, cache=True, error_model="numpy")
def tag_fraction_sweep(start, stop, bulk_mass, flux, frac, bc_low, bc_high):
    """Apply :func:`tag_fraction_line` to every line of a (n0, n1, n) block, in place."""
    ntag = frac.shape[0]
    n0, n1, n = bulk_mass.shape
    for a in range(start, stop):
        line = np.empty((ntag, n))
        out = np.empty((ntag, n))
        fl = np.empty(ntag)
        fh = np.empty(ntag)
        for b in range(n1):
            for k in range(ntag):
                fl[k] = bc_low[k, a, b]
                fh[k] = bc_high[k, a, b]
                for i in range(n):
                    line[k, i] = frac[k, a, b, i]
            tag_fraction_line(bulk_mass[a, b], flux[a, b], line, fl, fh, out)
            for k in range(ntag):
                for i in range(n):
                    frac[k, a, b, i] = out[k, i]


@nb.njit(cache=True, inline="always", error_model="numpy")
def upwind_line(a, halo, phi, m0, m1, flux):
    """First-order donor-cell (upwind) update of one line, in place; linear in ``a``.

    a: (n + 2 halo,) mixing ratios incl. ghosts (any mixing-ratio unit); interior overwritten.
    phi: (n + 1,) face air-mass fluxes of the (sub)step, kg; m0, m1: (n,) cell air mass before
    / after, kg. flux: (n + 1,) work, returns the tracer fluxes ([a] kg): ``phi`` times the
    mixing ratio of the face's upwind cell (a ghost at an inflow boundary face).
    Update ``a m1 = a m0 + flux_low - flux_high`` as in Walcek's step 5.
    """
    n = m0.shape[0]
    h = halo
    for f in range(n + 1):
        ph = phi[f]
        if ph > 0.0:
            flux[f] = ph * a[f - 1 + h]
        elif ph < 0.0:
            flux[f] = ph * a[f + h]
        else:
            flux[f] = 0.0
    for i in range(n):
        p = i + h
        a[p] = (a[p] * m0[i] + flux[i] - flux[i + 1]) / m1[i]


@nb.njit(cache=True, inline="always")
def _tag_work(n, ntag):
    """Work arrays of the per-line tag update: resident tracer mass (n,), the boundary inflow
    fractions (ntag,) x 2, and the ``g`` (ntag, n) and ``w`` (3, n) of
    :func:`tag_fraction_line_work`."""
    return np.empty(n), np.empty(ntag), np.empty(ntag), np.empty((ntag, n)), np.empty((3, n))


@parallel_kernel(lambda q, halo, mass, *_: mass.shape[0])
@nb.njit(nogil=True, cache=True, error_model="numpy")
def walcek_lines_tagged(start, stop, q, halo, mass, flux_air, scale, closed, tag_rows, frac, bc_low,
                        bc_high, upwind=False):
    """One Walcek (or donor-cell) sweep along the last axis of line views, with flux-fraction
    tags.

    q: (nspec, n0, n1, n + 2h) mixing ratios (a strided view whose last axis is the sweep axis,
    ghosts filled); mass: (n0, n1, n) air mass, kg, replaced by the post-sweep mass;
    flux_air: (n0, n1, n + 1) air-mass flux per step, kg, times ``scale``; closed: bit mask as in
    :mod:`aqforecast.kernels.advection`; tag_rows: (ntagged,) int64 rows of ``q`` that carry
    tags; frac: (ntagged, ntag, n0, n1, n) tag fractions, updated in place; bc_low/bc_high:
    (ntagged, ntag, n0, n1) fractions of inflow through the low/high boundary face.
    The bulk update is exactly :func:`aqforecast.kernels.advection.walcek_line`; tags use the
    sweep's final tracer fluxes (:func:`tag_fraction_line`).

    upwind: True = first-order donor cell instead (:func:`upwind_line`: face value = the
    upwind cell's mixing ratio, no flux adjustment); every face then carries its donor's
    pre-sweep fractions, the bulk and each tag's mass follow the same linear update, and a tag
    equals a run with only its source switched on to round-off. Same air-mass update,
    sub-stepping and boundary handling as Walcek.
    """
    nspec = q.shape[0]
    n0, n1, n = mass.shape
    h = halo
    ntagged = tag_rows.shape[0]
    ntag = frac.shape[1]
    periodic = (closed & 4) != 0
    phi = np.empty(n + 1)
    m0 = np.empty(n)
    m1 = np.empty(n)
    ext = np.empty(n + 2 * h, dtype=np.int8)
    flux = np.empty(n + 1)
    line = np.empty(n + 2 * h)
    resident, fl, fh, g, w = _tag_work(n, ntag)
    for a in range(start, stop):
        for b in range(n1):
            for i in range(n):
                m0[i] = mass[a, b, i]
            _line_fluxes(flux_air[a, b], scale, closed, phi, m0, m1)
            for s in range(nspec):
                for i in range(n + 2 * h):
                    line[i] = q[s, a, b, i]
                for i in range(n):
                    resident[i] = line[i + h] * m0[i]
                if upwind:
                    upwind_line(line, h, phi, m0, m1, flux)
                else:
                    _walcek_line(line, h, phi, m0, m1, ext, flux, periodic)
                for i in range(n):
                    q[s, a, b, i + h] = line[i + h]
                for t in range(ntagged):
                    if tag_rows[t] != s:
                        continue
                    for k in range(ntag):
                        fl[k] = bc_low[t, k, a, b]
                        fh[k] = bc_high[t, k, a, b]
                    fv = frac[t, :, a, b, :]
                    tag_fraction_line_work(resident, flux, fv, fl, fh, fv, g, w)
            for i in range(n):
                mass[a, b, i] = m1[i]


@nb.njit(cache=True, inline="always")
def _tile_lines(t, n0, n1, la, lb):
    """Lines of tile ``t`` into la, lb; returns their number. A tile is TILE consecutive lines
    of one row a of the (n0, n1) line grid, or, when n1 == 1, TILE consecutive rows."""
    if n1 == 1:
        first = t * TILE
        nl = min(TILE, n0 - first)
        for l in range(nl):
            la[l] = first + l
            lb[l] = 0
    else:
        per_row = (n1 + TILE - 1) // TILE
        a = t // per_row
        b0 = (t - a * per_row) * TILE
        nl = min(TILE, n1 - b0)
        for l in range(nl):
            la[l] = a
            lb[l] = b0 + l
    return nl


@nb.njit(cache=True, inline="always", error_model="numpy")
def _tile_tag_weights(a, h, n, nl, geo, flux, tw):
    """Per-cell weights of a tile's tag update (the ``w`` of :func:`tag_fraction_line_work`, for
    all lines at once); returns True if some cell of the tile is a deficit cell.

    a, geo, flux: the tile's pre-sweep mixing ratios, geometry and final tracer fluxes
    (:func:`aqforecast.kernels.advection.walcek_tile`); tw: (4n) rows of ROW: the resident
    tracer mass R in rows i, then the weights of the cell's own, left and right donors'
    fractions in rows n + i, 2n + i, 3n + i. Same arithmetic as the line kernel.
    """
    nlu = np.uint64(nl)
    deficit = False
    for i in range(n):
        ra = _u(i + h)
        rm = _u(2 * i + 1)
        rf = _u(i)
        rk = _u(n + i)
        rl = _u(2 * n + i)
        rw = _u(3 * n + i)
        for l in range(nlu):
            res = a[ra + l] * geo[rm + l]
            fl = flux[rf + l]
            fr = flux[rf + _TU + l]
            fin_l = fl if fl > 0.0 else 0.0
            fin_r = -fr if fr < 0.0 else 0.0
            fout = (fr if fr > 0.0 else 0.0) + (-fl if fl < 0.0 else 0.0)
            keep = res - fout
            deficit |= (keep < 0.0) & (fin_l + fin_r > 0.0)
            keep = keep if keep >= 0.0 else 0.0
            denom = keep + fin_l + fin_r
            pos = denom > 0.0
            tw[rf + l] = res
            # divisions, as in the line kernel (a denormal denom overflows 1/denom)
            tw[rk + l] = keep / denom if pos else 1.0
            tw[rl + l] = fin_l / denom if pos else 0.0
            tw[rw + l] = fin_r / denom if pos else 0.0
    return deficit


@nb.njit(cache=True, inline="always", error_model="numpy")
def _tile_deficit_pass(n, nl, flux, tw, f, g, flo, fhi, forward):
    """One pass of :func:`outflow_fractions` over a tile (all lines at once): deficit cells not
    fed from the right (forward) or from the left (backward) pass on inflow material for the
    excess of their outflow over their resident mass. f, g: tile rows of the pre-sweep and the
    outflow fractions of one tag; flo, fhi: (TILE,) the boundary inflow fractions."""
    nlu = np.uint64(nl)
    for j in range(n):
        i = j if forward else n - 1 - j
        rf = _u(i)
        rm = _u(i - 1) if i > 0 else rf
        rp = _u(i + 1) if i < n - 1 else rf
        for l in range(nlu):
            fl = flux[rf + l]
            fr = flux[rf + _TU + l]
            fout = (fr if fr > 0.0 else 0.0) + (-fl if fl < 0.0 else 0.0)
            fin_l = fl if fl > 0.0 else 0.0
            fin_r = -fr if fr < 0.0 else 0.0
            fin = fin_l + fin_r
            deficit = fout - tw[rf + l]
            share = deficit / fout if deficit < fout else 1.0
            dl = flo[l] if i == 0 else g[rm + l]
            dr = fhi[l] if i == n - 1 else g[rp + l]
            gin = (dl * fin_l + dr * fin_r) / fin
            skip = (fr < 0.0) if forward else (fl > 0.0)
            act = (not skip) & (deficit > 0.0) & (fin > 0.0)
            g[rf + l] = f[rf + l] * (1.0 - share) + gin * share if act else g[rf + l]


@nb.njit(cache=True, inline="always", error_model="numpy")
def _tile_tag_update(v, n, nl, flux, tw, deficit, f, g, flo, fhi):
    """New fractions of one tag for a tile's lines, in place on ``v`` (nl, n): a view of the
    tag's fractions whose lines are adjacent in memory (``v.strides[0] == v.itemsize``: the model's y
    and z sweeps). Same arithmetic as :func:`tag_fraction_line_work`, vectorised across the
    lines. (For x, whose lines are each contiguous, copying them in and out transposed measured
    slower than the line-by-line update.)"""
    nlu = np.uint64(nl)
    for i in range(n):
        col = contiguous_column(v, i)
        ri = _u(i)
        for l in range(nlu):
            f[ri + l] = col[l]
    if deficit:
        for i in range(n):
            ri = _u(i)
            for l in range(nlu):
                g[ri + l] = f[ri + l]
        _tile_deficit_pass(n, nl, flux, tw, f, g, flo, fhi, True)
        _tile_deficit_pass(n, nl, flux, tw, f, g, flo, fhi, False)
    else:
        g = f
    for i in range(n):
        col = contiguous_column(v, i)
        ri = _u(i)
        rm = _u(i - 1) if i > 0 else ri
        rp = _u(i + 1) if i < n - 1 else ri
        rk = _u(n + i)
        rl = _u(2 * n + i)
        rw = _u(3 * n + i)
        for l in range(nlu):
            left = flo[l] if i == 0 else g[rm + l]
            right = fhi[l] if i == n - 1 else g[rp + l]
            col[l] = f[ri + l] * tw[rk + l] + left * tw[rl + l] + right * tw[rw + l]


@nb.njit(cache=True, inline="always")
def _tile_q(q, s, la, lb, nl, n1):
    """Species s of the tile's lines (:func:`_tile_lines`) as a (nl, n + 2h) view of q."""
    return q[s, la[0]:la[0] + nl, 0, :] if n1 == 1 else q[s, la[0], lb[0]:lb[0] + nl, :]


def tile_count(mass):
    """Number of tiles (:func:`_tile_lines`) of the (n0, n1, n) line grid of ``mass``."""
    n0, n1 = mass.shape[:2]
    return (n0 + TILE - 1) // TILE if n1 == 1 else n0 * ((n1 + TILE - 1) // TILE)


@nb.njit(cache=True)
def tile_geometry(t, n0, n1, la, lb, flux_air, mass, scale, closed, geo):
    """Lines of tile ``t`` into la, lb (:func:`_tile_lines`) and their air-mass fluxes and
    masses into the tile geometry ``geo`` (:func:`aqforecast.kernels.advection._tile_geometry`);
    returns the number of lines."""
    n = mass.shape[2]
    nl = _tile_lines(t, n0, n1, la, lb)
    for l in range(nl):
        lu = np.uint64(l)
        src = flux_air[la[l], lb[l]]
        for f in range(n + 1):
            geo[_u(2 * f) + lu] = src[f]
        src = mass[la[l], lb[l]]
        for i in range(n):
            geo[_u(2 * i + 1) + lu] = src[i]
    _tile_geometry(geo, n, nl, scale, closed)
    return nl


@nb.njit(cache=True, error_model="numpy")
def tile_bulk(q, s, h, la, lb, nl, n1, a, geo, work, out, periodic):
    """Walcek sweep of species ``s`` on a tile's lines: gathered into ``a``, swept
    (:func:`aqforecast.kernels.advection.walcek_tile`, final tracer fluxes in ``work``), and the
    result scattered back into q; ``a`` keeps the pre-sweep mixing ratios."""
    nspec = q.shape[0]
    n = q.shape[3] - 2 * h
    nlu = np.uint64(nl)
    # the tile's lines of q; adjacent in memory for the model's y and z sweeps
    qt = _tile_q(q, s, la, lb, nl, n1)
    adjacent = nl > 1 and qt.strides[0] == 8
    if adjacent:
        for p in range(n + 2 * h):
            col = contiguous_column(qt, p)
            rp = _u(p)
            for l in range(nlu):
                a[rp + l] = col[l]
    else:
        for l in range(nl):
            src = q[s, la[l], lb[l]]
            lu = np.uint64(l)
            for p in range(n + 2 * h):
                a[_u(p) + lu] = src[p]
    # the next species' lines (adjacent lines: strided rows along the sweep, which the
    # hardware does not prefetch) arrive while this one computes; none along x
    s1 = s + 1 if s + 1 < nspec else s
    nxt = _tile_q(q, s1, la, lb, nl, n1).T
    walcek_tile(a, h, n, nl, geo, work, out, (nxt if adjacent and s1 > s else nxt[:0],),
                periodic)
    if adjacent:
        for i in range(n):
            col = contiguous_column(qt, i + h)
            ri = _u(i)
            for l in range(nlu):
                col[l] = out[ri + l]
    else:
        for l in range(nl):
            dst = q[s, la[l], lb[l]]
            lu = np.uint64(l)
            for i in range(n):
                dst[i + h] = out[_u(i) + lu]


@nb.njit(cache=True)
def tile_mass(mass, la, lb, nl, geo):
    """The tile's post-sweep air mass from its geometry, back into ``mass``."""
    n = mass.shape[2]
    for l in range(nl):
        dst = mass[la[l], lb[l]]
        lu = np.uint64(l)
        for i in range(n):
            j = _u(2 * i) + lu
            dst[i] = geo[j + _TU] - geo[j + _TU + _TU] + geo[j]


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _tagged_tiles(t0, t1, q, h, mass, flux_air, scale, closed, tag_rows, frac, bc_low, bc_high):
    """Tiles ``t0 .. t1-1`` of :func:`walcek_tiles_tagged` (run on threads by
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
    resident, fl, fh, g, w = _tag_work(n, ntag)
    fin = np.empty((ntag, n))
    fnew = np.empty((ntag, n))
    lflux = np.empty(n + 1)
    tw = np.empty(4 * n * ROW)
    ft = np.empty(n * ROW)
    gt = np.empty(n * ROW)
    flo = np.empty(TILE)
    fhi = np.empty(TILE)
    for t in range(t0, t1):
        nl = tile_geometry(t, n0, n1, la, lb, flux_air, mass, scale, closed, geo)
        nlu = np.uint64(nl)
        for s in range(nspec):
            tile_bulk(q, s, h, la, lb, nl, n1, a, geo, work, out, periodic)
            weighted = False
            deficit = False
            for ti in range(ntagged):
                if tag_rows[ti] != s:
                    continue
                # lines adjacent in memory (y, z): the tile update, SIMD across lines
                if n1 == 1:
                    v = frac[ti, :, la[0]:la[0] + nl, 0, :]
                else:
                    v = frac[ti, :, la[0], lb[0]:lb[0] + nl, :]
                if nl > 1 and v.strides[1] == v.itemsize:
                    if not weighted:
                        deficit = _tile_tag_weights(a, h, n, nl, geo, work, tw)
                        weighted = True
                    for k in range(ntag):
                        for l in range(nl):
                            flo[l] = bc_low[ti, k, la[l], lb[l]]
                            fhi[l] = bc_high[ti, k, la[l], lb[l]]
                        _tile_tag_update(v[k], n, nl, work, tw, deficit, ft, gt, flo, fhi)
                    continue
                for l in range(nl):
                    for i in range(n):
                        resident[i] = a[(i + h) * ROW + l] * geo[(2 * i + 1) * ROW + l]
                    for f in range(n + 1):
                        lflux[f] = work[f * ROW + l]
                    for k in range(ntag):
                        fl[k] = bc_low[ti, k, la[l], lb[l]]
                        fh[k] = bc_high[ti, k, la[l], lb[l]]
                    # the line's fractions through C-contiguous float64 work rows: the update
                    # then vectorises (on the strided view it ran scalar); same bits
                    fv = frac[ti, :, la[l], lb[l], :]
                    unit = fv.strides[1] == fv.itemsize
                    for k in range(ntag):
                        if unit:
                            src = contiguous_row(fv[k])
                            for i in range(n):
                                fin[k, i] = src[i]
                        else:
                            for i in range(n):
                                fin[k, i] = fv[k, i]
                    tag_fraction_line_work(resident, lflux, fin, fl, fh, fnew, g, w)
                    for k in range(ntag):
                        if unit:
                            dst = contiguous_row(fv[k])
                            for i in range(n):
                                dst[i] = fnew[k, i]
                        else:
                            for i in range(n):
                                fv[k, i] = fnew[k, i]
        tile_mass(mass, la, lb, nl, geo)


def walcek_tiles_tagged(q, halo, mass, flux_air, scale, closed, tag_rows, frac, bc_low,
                        bc_high):
    """:func:`walcek_lines_tagged` (Walcek; periodic lines, closed & 4, included) computed TILE
    lines at a time with the vectorised :func:`aqforecast.kernels.advection.walcek_tile`; bit
    for bit the same result.

    A tile is TILE consecutive lines (a, b0 + l) of one row a of the (n0, n1) line grid (or,
    when n1 == 1, TILE consecutive rows a); its lines are gathered into the tile's work arrays
    (sweep position major, line minor), swept together, and scattered back. The tags of tagged
    rows are then updated from the tile's final tracer fluxes: all lines at once (SIMD across
    lines, :func:`_tile_tag_update`) when the tile's lines lie next to each other in ``frac``
    (the model's y and z sweeps), else line by line (:func:`tag_fraction_line_work`); both give
    the same bits. Arguments as :func:`walcek_lines_tagged`.
    """
    if q.dtype != np.float64 or frac.dtype not in (np.float64, np.float32):
        raise TypeError(f"mixing ratios must be float64 and tag fractions float64 or float32, "
                        f"got {q.dtype} and {frac.dtype}")
    _BACKGROUND[np.dtype(frac.dtype).name].wait()
    if frac.dtype == np.float32:
        # the float32 stencil (its own kernel: each run compiles only the one it uses)
        from .tag_update32 import walcek_tiles_tagged32

        walcek_tiles_tagged32(q, halo, mass, flux_air, scale, closed, tag_rows, frac, bc_low,
                              bc_high)
        return
    parallel_range(_TAGGED_TILES, tile_count(mass), q, halo, mass, flux_air, scale, closed,
                   tag_rows, frac, bc_low, bc_high)


# exact layouts: with every array typed 'A' the gathers of contiguous mass and flux rows ran the
# whole tagged forecast 15-25 % slower (benchmarks/forecast.py); the model passes contiguous mass
# and fluxes for all three directions. The fractions arrive contiguous (x sweeps of all levels)
# or strided (y, z, runs of levels) and their hot loops go through contiguous_column/_row
# views, so they are typed 'A' always: one specialisation, not two (the kernel took 42 s of
# the whole model's 47 s first-call compilation with two); so are the inflow fractions (the
# cached boundary-tag array or views of the nest's, read one row per tile)
_TAGGED_TILES = OneLayout(_tagged_tiles, exact=True, loose=("frac", "bc_low", "bc_high"))


def _prepare_sweep(precision: str) -> None:
    """Compile (or load) the tiled tagged sweep for the argument types the model passes
    (:class:`~aqforecast.transport.advection.Advection`: mixing ratios a strided 4-D view,
    contiguous air mass, fluxes and tag rows, fractions of ``precision``); nothing is run."""
    q = np.zeros((4, 1, 1, 8))[::2]  # strided: typed layout A, as the model passes it
    mass = np.ones((1, 1, 2))
    rows = np.zeros(1, dtype=np.int64)
    frac = np.zeros((1, 1, 1, 1, 2), dtype=precision)
    bc = np.zeros((1, 1, 1, 1))
    if precision == "float32":
        from .tag_update32 import _TAGGED_TILES32 as kernel
    else:
        kernel = _TAGGED_TILES
    kernel.prepare(0, 1, q, 3, mass, np.zeros((1, 1, 3)), 1.0, 0, rows, frac, bc, bc)


def _sweep_cached(precision: str) -> bool:
    """Whether numba's cache holds the tiled tagged sweep for fractions of ``precision``."""
    if precision == "float32":
        from .tag_update32 import _tagged_tiles32 as kernel
    else:
        kernel = _tagged_tiles
    return in_numba_cache(kernel)


#: the tagged sweep compiled in a child process (:func:`compile_sweep_in_background`)
_BACKGROUND = {p: BackgroundCompile(
    f"the tagged Walcek sweep ({p})",
    f"from aqforecast.kernels.tagging import _prepare_sweep; _prepare_sweep({p!r})",
    cached=lambda p=p: _sweep_cached(p)) for p in ("float32", "float64")}


def compile_sweep_in_background(precision: str = "float32") -> bool:
    """Compile the tiled tagged Walcek sweep for fractions of ``precision`` (the untagged
    model's sweep is the float64 one) in a child process while the caller builds and compiles
    the rest (:mod:`aqforecast.kernels.background`); the first sweep waits for it. The kernel
    is about half of the whole model's cold first-call compilation."""
    return _BACKGROUND[precision].start()


def walcek_sweep_tagged(q, halo, mass, flux_air, scale, closed, tag_rows, frac, bc_low,
                        bc_high, upwind=False):
    """One tagged sweep along the last axis of line views: the tiled, vectorised kernel
    (:func:`walcek_tiles_tagged`) for Walcek (open, closed or periodic lines), the line kernel
    (:func:`walcek_lines_tagged`) for donor cell. Same arguments and result."""
    if upwind:
        walcek_lines_tagged(q, halo, mass, flux_air, scale, closed, tag_rows, frac, bc_low,
                            bc_high, upwind)
    else:
        walcek_tiles_tagged(q, halo, mass, flux_air, scale, closed, tag_rows, frac, bc_low,
                            bc_high)


@parallel_kernel(lambda bulk, tagc, *_: tagc.shape[0] * tagc.shape[1])
@nb.njit(nogil=True, cache=True)
def fractions_from_tags(start, stop, bulk, tagc, fallback, out):
    """Tag fractions f = c_k / c (bulk > 0) else the ``fallback`` tag gets 1.

    bulk: (nt, m) bulk mixing ratios of the tagged species; tagc: (nt, ntag, m) tag
    concentrations; out: (nt, ntag, m). Arrays are flattened over cells (m).
    """
    nt, ntag, m = tagc.shape
    for tk in range(start, stop):
        t = tk // ntag
        k = tk - t * ntag
        for c in range(m):
            b = bulk[t, c]
            if b > 0.0:
                out[t, k, c] = tagc[t, k, c] / b
            else:
                out[t, k, c] = 1.0 if k == fallback else 0.0


@nb.njit(cache=True, inline="always")
def _tag_row_level(rk, nz, ntag):
    """Work item rk = (tag row r, level k) -> (r, k, tagged species t, tag kt of t)."""
    r = rk // nz
    t = r // ntag
    return r, rk - r * nz, t, r - t * ntag


#: Bulk values at or below this count as empty in the float32 fractions (all to the fallback
#: tag): the reciprocal 1/b overflows to inf below 2^-1024 ~ 5.6e-309, and 0 * inf is NaN (NO
#: titrated at night reached 1.5e-323 in the sample case after 10 h, and NaN fractions spread
#: along the sweep's lines). The amounts concerned are below 1e-300 of a mixing ratio.
MIN_RECIPROCAL_BULK = 1e-300


@parallel_kernel(lambda q, rows, tagc, ntag, fallback, out: out.shape[0] * out.shape[2])
@nb.njit(nogil=True, cache=True, error_model="numpy")
def fractions_from_tag_cells(start, stop, q, rows, tagc, ntag, fallback, out):
    """:func:`fractions_from_tags` on the model's arrays in place (no gathering copies).

    q: (nspec, nz, ny, nx) bulk mixing ratios (any strides, e.g. the interior of a halo-padded
    array); rows: (nt,) rows of q of the tagged species; tagc: (nt * ntag, nz, ny, nx) tag
    concentrations (any strides); out: (nt, ntag, nz, ny, nx) receives the fractions. Work
    items: (tagged species t, level k), all of t's tags. Into float64 ``out`` the arithmetic of
    :func:`fractions_from_tags` (c_k / c); into float32 ``out`` c_k times 1/c, the reciprocal
    once per cell for the species' tags (the quotient rounded to float32 either way: the same
    value or one float32 ulp apart), cells with c <= :data:`MIN_RECIPROCAL_BULK` counting as
    empty (1/c would overflow). (Fractions below 1.2e-38 become float32 subnormals; the
    float32 sweeps set everything below TINY to 0 as they update, and flushing here too cost
    0.24 s of a 5.5 s tagged hour: the select kept the loop scalar.)
    """
    nz, ny, nx = tagc.shape[1:]
    inv = np.empty((ny, nx))
    single = out.itemsize == 4
    for tk in range(start, stop):
        t = tk // nz
        k = tk - t * nz
        b2 = q[rows[t], k]
        if single:
            for j in range(ny):
                for i in range(nx):
                    b = b2[j, i]
                    inv[j, i] = 1.0 / b if b > MIN_RECIPROCAL_BULK else 0.0
        for kt in range(ntag):
            c2 = tagc[t * ntag + kt, k]
            o2 = out[t, kt, k]
            empty = 1.0 if kt == fallback else 0.0
            if single:
                for j in range(ny):
                    for i in range(nx):
                        o2[j, i] = c2[j, i] * inv[j, i] if b2[j, i] > MIN_RECIPROCAL_BULK \
                            else empty
            else:
                for j in range(ny):
                    for i in range(nx):
                        b = b2[j, i]
                        o2[j, i] = c2[j, i] / b if b > 0.0 else empty


@parallel_kernel(lambda q, rows, frac, ntag, scale, out: out.shape[0] * out.shape[1])
@nb.njit(nogil=True, cache=True, error_model="numpy")
def tags_from_fraction_cells(start, stop, q, rows, frac, ntag, scale, out):
    """Tag concentrations from fractions, into the model's tag array in place, times a per-cell
    factor: c_k = (f_k * c) * scale with q, rows as :func:`fractions_from_tag_cells`, frac (nt, ntag,
    nz, ny, nx), scale (nz, ny, nx) (e.g. the ratio that moves the mixing ratios onto the met's
    air mass; ones for none), out (nt * ntag, nz, ny, nx) (any strides)."""
    nz, ny, nx = out.shape[1:]
    for rk in range(start, stop):
        r, k, t, kt = _tag_row_level(rk, nz, ntag)
        b2 = q[rows[t], k]
        f2 = frac[t, kt, k]
        s2 = scale[k]
        o2 = out[r, k]
        for j in range(ny):
            for i in range(nx):
                o2[j, i] = (f2[j, i] * b2[j, i]) * s2[j, i]


@parallel_kernel(lambda q, rows, frac, ntag, scale, out: frac.shape[0] * frac.shape[2])
@nb.njit(nogil=True, cache=True, error_model="numpy")
def tags_from_fraction_cells_normalised(start, stop, q, rows, frac, ntag, scale, out):
    """:func:`tags_from_fraction_cells` with each cell's fractions divided by their sum (float64
    arithmetic), so the tags add up to the bulk to float64 round-off even when ``frac`` is
    float32 (whose shares each carry ~6e-8 relative rounding). A cell whose fractions sum to 0
    (cannot happen for fractions built by :func:`fractions_from_tag_cells`) keeps them as
    they are. Work items: (tagged species t, level k)."""
    nz, ny, nx = frac.shape[2:]
    total = np.empty((ny, nx))
    for tk in range(start, stop):
        t = tk // nz
        k = tk - t * nz
        b2 = q[rows[t], k]
        s2 = scale[k]
        total[:, :] = 0.0
        for kt in range(ntag):
            f2 = frac[t, kt, k]
            for j in range(ny):
                for i in range(nx):
                    total[j, i] += f2[j, i]
        for j in range(ny):
            for i in range(nx):
                sm = total[j, i]
                total[j, i] = b2[j, i] * s2[j, i] / sm if sm > 0.0 else b2[j, i] * s2[j, i]
        for kt in range(ntag):
            f2 = frac[t, kt, k]
            o2 = out[t * ntag + kt, k]
            for j in range(ny):
                for i in range(nx):
                    o2[j, i] = f2[j, i] * total[j, i]
