"""Flux-fraction advection of source tags along one axis (SCIENCE.md 6.2).

Tags are carried as *fractions* f_k of the bulk tracer. During a bulk advection sweep each cell
first mixes in what flows into it (in proportion to the resident and inflowing bulk masses),
and what flows out through a face carries the donor cell's post-mixing fractions::

    f_k,i <- (f_k,i M_i + sum_in f_k,donor F_in) / (M_i + sum_in F_in)

M_i is the resident bulk tracer mass before the sweep and F the bulk tracer-mass fluxes of the
sweep (from the monotone scheme). Cells are processed so every donor is updated before its
receivers: a cell whose downstream face points right (+) only receives from the left, so a
left-to-right pass settles those; a right-to-left pass settles cells that only receive from the
right; cells receiving from both sides (convergence) come last. The result is a convex
combination (sum_k f_k = 1, f_k >= 0 exactly), and every tag's mass is conserved exactly,
because the mass leaving a donor with fraction f arrives at its receiver with the same f. The
principle is NAQPMS's online source-tagging module (`adv_hori_mark`), written here from the
description in SCIENCE.md.

The post-mixing rule is needed with Walcek's scheme, whose face values are not the donor's
pre-sweep mixing ratio (pre-sweep donor fractions could drive a tag negative). It makes tags a
nonlinear function of the sources, and more diffusive than the bulk: a fraction can cross a
whole line of cells within one sweep. On the small nested test case after 3 h a primary tag
differs from the run with only its source on by 0.12-0.37 (L1, relative) and 0.17-0.84 of the
plume's peak (``tests/test_tag_bruteforce.py``; Walcek vs donor-cell single-source runs differ
by 0.07-0.10 L1). The linear alternative, ``walcek_lines_tagged(...,
upwind=True)``, advects the bulk by first-order donor cell (:func:`upwind_line`) and the tags
by pre-sweep donor fractions (:func:`upwind_fraction_line`): every tag's mass then obeys the
bulk's linear update, and a tag equals the single-source run to round-off.

Kernels are numba ``njit`` functions; ``prange`` runs over lines. Arrays:
``bulk_mass`` (n0, n1, n) resident tracer mass per cell before the sweep, ``flux`` (n0, n1, n+1)
signed tracer-mass flux through faces (positive towards increasing index; face 0 is the low
boundary), ``frac`` (ntag, n0, n1, n) fractions (updated in place), ``bc_low``/``bc_high``
(ntag, n0, n1) fractions of inflow through the low/high boundary faces.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .advection import _line_fluxes
from .advection import walcek_line as _walcek_line

__all__ = ["tag_fraction_line", "tag_fraction_sweep", "walcek_lines_tagged", "upwind_line",
           "upwind_fraction_line"]


@nb.njit(cache=True)
def tag_fraction_line(mass, flux, frac, f_low, f_high, out):
    """Update tag fractions along one line (see :func:`tag_fraction_line_work`)."""
    done = np.zeros(frac.shape[1], dtype=np.bool_)
    tag_fraction_line_work(mass, flux, frac, f_low, f_high, out, done)


@nb.njit(cache=True)
def tag_fraction_line_work(mass, flux, frac, f_low, f_high, out, done):
    """:func:`tag_fraction_line` with a caller-supplied (n,) bool work array ``done``."""
    ntag, n = frac.shape
    for i in range(n):
        done[i] = False
    # pass 1: left to right, cells without inflow from the right (flux[i+1] >= 0)
    for i in range(n):
        if flux[i + 1] < 0.0:
            continue
        fin = flux[i] if flux[i] > 0.0 else 0.0
        denom = mass[i] + fin
        for k in range(ntag):
            donor = f_low[k] if i == 0 else out[k, i - 1]
            num = frac[k, i] * mass[i] + (donor * fin if fin > 0.0 else 0.0)
            out[k, i] = num / denom if denom > 0.0 else frac[k, i]
        done[i] = True
    # pass 2: right to left, cells without inflow from the left (flux[i] <= 0)
    for i in range(n - 1, -1, -1):
        if done[i] or flux[i] > 0.0:
            continue
        fin = -flux[i + 1] if flux[i + 1] < 0.0 else 0.0
        denom = mass[i] + fin
        for k in range(ntag):
            donor = f_high[k] if i == n - 1 else out[k, i + 1]
            num = frac[k, i] * mass[i] + (donor * fin if fin > 0.0 else 0.0)
            out[k, i] = num / denom if denom > 0.0 else frac[k, i]
        done[i] = True
    # pass 3: convergent cells receive from both (already settled) neighbours
    for i in range(n):
        if done[i]:
            continue
        fl = flux[i]
        fr = -flux[i + 1]
        denom = mass[i] + fl + fr
        for k in range(ntag):
            dl = f_low[k] if i == 0 else out[k, i - 1]
            dr = f_high[k] if i == n - 1 else out[k, i + 1]
            num = frac[k, i] * mass[i] + dl * fl + dr * fr
            out[k, i] = num / denom if denom > 0.0 else frac[k, i]


@nb.njit(parallel=True, cache=True)
def tag_fraction_sweep(bulk_mass, flux, frac, bc_low, bc_high):
    """Apply :func:`tag_fraction_line` to every line of a (n0, n1, n) block, in place."""
    ntag = frac.shape[0]
    n0, n1, n = bulk_mass.shape
    for a in nb.prange(n0):
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


@nb.njit(cache=True)
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


@nb.njit(cache=True)
def upwind_fraction_line(mass, flux, frac, f_low, f_high, old):
    """Tag fractions after a donor-cell sweep of one line, in place.

    mass: (n,) resident tracer mass before the sweep ([q] kg); flux: (n + 1,) the sweep's
    tracer fluxes; frac: (ntag, n) fractions, updated; f_low/f_high: (ntag,) fractions of the
    inflow through the low/high boundary face; old: (ntag, n) work. Every face carries its
    donor's *pre-sweep* fractions (the donor-cell face value is the pre-sweep mixing ratio), so
    each tag's mass follows the bulk's linear update::

        f_k,i <- (f_k,i (M_i - F_out,i) + sum_in f_k,donor F_in) / (M_i - F_out,i + sum_in F_in)

    Convex (sum_k f_k = 1, f_k >= 0) while the outflow Courant number is <= 1.
    """
    ntag, n = frac.shape
    for k in range(ntag):
        for i in range(n):
            old[k, i] = frac[k, i]
    for i in range(n):
        fl = flux[i]
        fr = flux[i + 1]
        fin_l = fl if fl > 0.0 else 0.0
        fin_r = -fr if fr < 0.0 else 0.0
        fout = (fr if fr > 0.0 else 0.0) + (-fl if fl < 0.0 else 0.0)
        keep = mass[i] - fout
        denom = keep + fin_l + fin_r
        if denom <= 0.0:
            continue
        for k in range(ntag):
            dl = f_low[k] if i == 0 else old[k, i - 1]
            dr = f_high[k] if i == n - 1 else old[k, i + 1]
            frac[k, i] = (old[k, i] * keep + dl * fin_l + dr * fin_r) / denom


@nb.njit(parallel=True, cache=True)
def walcek_lines_tagged(q, halo, mass, flux_air, scale, closed, tag_rows, frac, bc_low,
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
    upwind cell's mixing ratio, no flux adjustment), with tags by :func:`upwind_fraction_line`
    (every face carries its donor's pre-sweep fractions). Both the bulk and each tag's mass
    then follow the same linear update, so a tag equals a run with only its source switched on
    to round-off. Same air-mass update, sub-stepping and boundary handling as Walcek.
    """
    nspec = q.shape[0]
    n0, n1, n = mass.shape
    h = halo
    ntagged = tag_rows.shape[0]
    ntag = frac.shape[1]
    periodic = (closed & 4) != 0
    for a in nb.prange(n0):
        phi = np.empty(n + 1)
        m0 = np.empty(n)
        m1 = np.empty(n)
        ext = np.empty(n + 2 * h, dtype=np.int8)
        flux = np.empty(n + 1)
        line = np.empty(n + 2 * h)
        resident = np.empty(n)
        fl = np.empty(ntag)
        fh = np.empty(ntag)
        done = np.empty(n, dtype=np.bool_)
        old = np.empty((ntag, n))
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
                    if upwind:
                        upwind_fraction_line(resident, flux, fv, fl, fh, old)
                    else:
                        # in place: every cell is settled once, after its donors
                        tag_fraction_line_work(resident, flux, fv, fl, fh, fv, done)
            for i in range(n):
                mass[a, b, i] = m1[i]


@nb.njit(parallel=True, cache=True)
def fractions_from_tags(bulk, tagc, fallback, out):
    """Tag fractions f = c_k / c (bulk > 0) else the ``fallback`` tag gets 1.

    bulk: (nt, m) bulk mixing ratios of the tagged species; tagc: (nt, ntag, m) tag
    concentrations; out: (nt, ntag, m). Arrays are flattened over cells (m).
    """
    nt, ntag, m = tagc.shape
    for tk in nb.prange(nt * ntag):
        t = tk // ntag
        k = tk - t * ntag
        for c in range(m):
            b = bulk[t, c]
            if b > 0.0:
                out[t, k, c] = tagc[t, k, c] / b
            else:
                out[t, k, c] = 1.0 if k == fallback else 0.0


@nb.njit(parallel=True, cache=True)
def tags_from_fractions(bulk, frac, out):
    """c_k = f_k * c: bulk (nt, m), frac (nt, ntag, m), out (nt, ntag, m)."""
    nt, ntag, m = frac.shape
    for tk in nb.prange(nt * ntag):
        t = tk // ntag
        k = tk - t * ntag
        for c in range(m):
            out[t, k, c] = frac[t, k, c] * bulk[t, c]
