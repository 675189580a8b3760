"""Advection kernels: flux-form transport of air mass and tracer mixing ratios (numba).

What this module owns
---------------------
* :func:`upwind_step` -- unsplit first-order donor-cell (upwind) step in 3-D; all three face fluxes
  are taken from the same field (the first pass of MPDATA).
* :func:`walcek_sweep_x`, :func:`walcek_sweep_y`, :func:`walcek_sweep_z` -- one 1-D sweep of the
  monotone, peak-preserving scheme of Walcek (2000, JGR 105(D7) 9335-9348, "minor flux adjustment
  near mixing ratio extremes"), written from the algorithm in SCIENCE.md section 2.2.
* :func:`max_courant` -- the largest outflow Courant number per direction (for sub-stepping).

Conventions (SCIENCE.md 1.2 and 2.1)
------------------------------------
* ``q`` -- tracer mixing ratios, shape ``(nspec, nz + 2h, ny + 2h, nx + 2h)``, float64, any
  mixing-ratio unit (mol mol-1, kg kg-1, ...). ``h`` (``halo``) ghost cells on each side of each
  spatial axis hold boundary values; only interior points are updated. The leading axis stacks
  species and tags, so face fluxes and Courant numbers are computed once per face for all of them.
* ``mass`` -- cell air mass ``M = rho dx dy dz / m**2`` (kg), shape ``(nz, ny, nx)`` (interior
  only).
* ``flux_x``, ``flux_y``, ``flux_z`` -- face air-mass fluxes per step (kg), shapes
  ``(nz, ny, nx + 1)``, ``(nz, ny + 1, nx)``, ``(nz + 1, ny, nx)``: ``rho u (dy/m) dz dt`` etc.,
  positive towards increasing index; boundary faces included. Each kernel multiplies them by
  ``scale`` (1/number of sub-steps) so the caller never copies them.
* ``closed`` -- bit mask per axis: bit 0 set = the low boundary face carries no flux, bit 1 set =
  the high boundary face carries no flux (closed walls); bit 2 set (value 4) = periodic axis
  (faces 0 and n are one face; the Walcek flux adjustment wraps around).
* Tracer update: ``q_new M_new = q M - (F_hi - F_lo)`` with ``F = flux * q_face`` and air mass
  ``M_new = M - (flux_hi - flux_lo)`` -- the same fluxes, so a uniform ``q`` stays uniform
  (free-stream preservation) and ``sum(q M)`` changes only by the boundary fluxes.

Walcek with halo 2 treats the outermost ghost cell as "not an extremum"; halo 3 makes every face
value depend only on data that a halo exchange supplies. The Walcek flux adjustment is sequential
along the flow (an outflow flux depends on the adjusted inflow flux): a sweep starts at the domain
(sub-domain) face with the unadjusted Walcek flux.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import OneLayout, prefetch_rows
from .threads import parallel_kernel, parallel_range

__all__ = [
    "upwind_step",
    "walcek_sweep_x",
    "walcek_sweep_y",
    "walcek_sweep_z",
    "walcek_line",
    "walcek_tile",
    "max_courant",
]

@njit(cache=True, inline="always")
def _walcek_face_value(qc, qd, qu, ext_down, ext_up, c):
    """Mean mixing ratio of the fluid leaving cell ``qc`` through its downwind face.

    qc, qd, qu: centre (upwind of the face), downwind and upwind-of-centre values; ext_down,
    ext_up: extremum flags of the downwind and upwind cells; c: Courant number in [0, 1].
    """
    alpha = 1.0
    alpha = 1.7763 - 0.5 * c if ext_down else alpha
    alpha = 1.2578 + 0.58502 * c if ext_up else alpha
    # Walcek's limit alpha <= 0.98*6/(1 - 2c) >= 5.88 only binds for full sharpening (alpha = 5
    # is not used here; the alphas above stay <= 1.78), so it is skipped. Both branches (c < 0.5
    # and c >= 0.5) are evaluated and one is selected, so that loops over faces vectorise.
    w = alpha * (1.0 / 12.0)
    ic = 1.0 / c
    small = c < 0.5
    cqc = 1.0 + 2.0 * w * (2.0 * c - 1.0) if small else 1.0 - 2.0 * w * (ic + 2.0 * c - 3.0)
    cqd = w * (4.0 - 5.0 * c) if small else w * (ic - c)
    cqu = w * (c - 2.0) if small else w * (ic + 5.0 * c - 6.0)
    qf = qc * cqc + qd * cqd + qu * cqu
    return min(max(qf, min(qc, qd)), max(qc, qd))


@njit(cache=True, inline="always")
def _positive_pass(a, h, phi, m0, m1, flux):
    """Clip cells with a single outflow face on the high side; move the excess to that face."""
    n = m0.shape[0]
    for i in range(n):
        if phi[i + 1] > 0.0 and phi[i] >= 0.0:
            p = i + h
            qc = a[p]
            qs = (qc * m0[i] + flux[i] - flux[i + 1]) * (1.0 / m1[i])
            qup = a[p - 1] if phi[i] > 0.0 else qc
            lo = min(qc, qup)
            hi = max(qc, qup)
            if qs > hi:
                flux[i + 1] = flux[i] + qc * m0[i] - hi * m1[i]
            elif qs < lo:
                flux[i + 1] = flux[i] + qc * m0[i] - lo * m1[i]


@njit(cache=True, inline="always")
def _negative_pass(a, h, phi, m0, m1, flux):
    """Mirror of :func:`_positive_pass` for cells whose single outflow face is the low one."""
    n = m0.shape[0]
    for i in range(n - 1, -1, -1):
        if phi[i] < 0.0 and phi[i + 1] <= 0.0:
            p = i + h
            qc = a[p]
            qs = (qc * m0[i] + flux[i] - flux[i + 1]) * (1.0 / m1[i])
            qup = a[p + 1] if phi[i + 1] < 0.0 else qc
            lo = min(qc, qup)
            hi = max(qc, qup)
            if qs > hi:
                flux[i] = flux[i + 1] - qc * m0[i] + hi * m1[i]
            elif qs < lo:
                flux[i] = flux[i + 1] - qc * m0[i] + lo * m1[i]


@njit(cache=True, inline="always", error_model="numpy")
def walcek_line(a, halo, phi, m0, m1, ext, flux, periodic=False):
    """Walcek (2000) update of one line, in place.

    a: (n + 2 halo,) mixing ratios incl. ghosts; interior a[halo:halo+n] is overwritten.
    phi: (n + 1,) face air-mass fluxes for this (sub)step, kg (already scaled, closed faces 0).
    m0, m1: (n,) cell air mass before / after the sweep, kg (m1 = m0 - phi[1:] + phi[:-1]).
    ext: (n + 2 halo,) int8 work; flux: (n + 1,) float64 work (tracer fluxes, q-units kg).
    periodic: faces 0 and n are the same face (phi[0] == phi[n], periodic ghosts): the flux
    adjustment then wraps around the line so both carry the same tracer flux.
    """
    n = m0.shape[0]
    npad = a.shape[0]
    h = halo
    # 1. extremum flags
    ext[0] = 0
    ext[npad - 1] = 0
    for p in range(1, npad - 1):
        qc = a[p]
        ql = a[p - 1]
        qr = a[p + 1]
        if (qc >= ql and qc >= qr) or (qc <= ql and qc <= qr):
            ext[p] = 1
        else:
            ext[p] = 0
    # 2. face values and provisional fluxes; face f lies between interior cells f-1 and f
    for f in range(n + 1):
        ph = phi[f]
        p = f - 1 + h  # padded index of the cell left of the face
        if ph == 0.0:
            flux[f] = 0.0
        elif ph > 0.0:
            iu = f - 1 if f >= 1 else (n - 1 if periodic else -1)  # upwind interior cell
            mu = m0[iu] if iu >= 0 else m0[0]
            if iu >= 0 and phi[iu] < 0.0:  # outflow-only cell: donor cell
                qf = a[p]
            else:
                qf = _walcek_face_value(a[p], a[p + 1], a[p - 1], ext[p + 1], ext[p - 1], ph / mu)
            flux[f] = ph * qf
        else:
            iu = f if f < n else (0 if periodic else -1)
            mu = m0[iu] if iu >= 0 else m0[n - 1]
            if iu >= 0 and phi[iu + 1] > 0.0:  # outflow-only cell: donor cell
                qf = a[p + 1]
            else:
                qf = _walcek_face_value(a[p + 1], a[p], a[p + 2], ext[p], ext[p + 2], -ph / mu)
            flux[f] = ph * qf
    # 3./4. clip to the upwind bounds, moving the excess to the outflow face (per flow sign);
    # on a periodic line repeat until the wrapped face carries one flux
    for _ in range(4):
        _positive_pass(a, h, phi, m0, m1, flux)
        if periodic and phi[0] > 0.0 and flux[0] != flux[n]:
            flux[0] = flux[n]
        else:
            break
    for _ in range(4):
        _negative_pass(a, h, phi, m0, m1, flux)
        if periodic and phi[0] < 0.0 and flux[0] != flux[n]:
            flux[n] = flux[0]
        else:
            break
    if periodic:  # conservation first if the wrap did not settle
        if phi[0] > 0.0:
            flux[0] = flux[n]
        else:
            flux[n] = flux[0]
    # 5. conservative update from the final fluxes
    for i in range(n):
        p = i + h
        a[p] = (a[p] * m0[i] + flux[i] - flux[i + 1]) * (1.0 / m1[i])


@njit(cache=True, inline="always")
def _line_fluxes(src, scale, closed, phi, m0, m1):
    """Scaled face fluxes of one line with closed walls zeroed; new air mass m1 from m0."""
    n = m0.shape[0]
    for f in range(n + 1):
        phi[f] = src[f] * scale
    if closed & 1:
        phi[0] = 0.0
    if closed & 2:
        phi[n] = 0.0
    for i in range(n):
        m1[i] = m0[i] - phi[i + 1] + phi[i]


@parallel_kernel(lambda q, h, mass, *_: mass.shape[0])
@njit(cache=True, nogil=True, error_model="numpy")
def _walcek_lines(start, stop, q, h, mass, flux, scale, closed):
    """Line-by-line sweep along the last axis of ``q`` (nspec, n0 + 2h, n1 + 2h, n + 2h) (a view
    whose last axis is the sweep axis); mass (n0, n1, n), flux (n0, n1, n + 1). Handles periodic
    lines (the flux adjustment wraps around a line). The reference for the tiled kernels
    (:func:`_walcek_tiles_x`, :func:`_walcek_tiles_rows`), which the sweeps use."""
    nspec = q.shape[0]
    n0, n1, n = mass.shape
    periodic = (closed & 4) != 0
    phi = np.empty(n + 1)
    m1 = np.empty(n)
    ext = np.empty(n + 2 * h, dtype=np.int8)
    work = np.empty(n + 1)
    m0 = np.empty(n)
    a = np.empty(n + 2 * h)
    for k in range(start, stop):
        for j in range(n1):
            for i in range(n):
                m0[i] = mass[k, j, i]
            _line_fluxes(flux[k, j, :], scale, closed, phi, m0, m1)
            for s in range(nspec):
                for i in range(n + 2 * h):
                    a[i] = q[s, k + h, j + h, i]
                walcek_line(a, h, phi, m0, m1, ext, work, periodic)
                for i in range(n):
                    q[s, k + h, j + h, i + h] = a[i + h]
            for i in range(n):
                mass[k, j, i] = m1[i]


# -- tiled sweeps: many lines at once, innermost loop over contiguous lines -----------------------
#: Lines per tile: the tile's work arrays ((n + 2h) x TILE) stay in the core's L1/L2 cache and the
#: innermost loops run over TILE contiguous lines (SIMD).
TILE = 32
#: Elements from one row of a tile's work arrays to the next: TILE plus a pad of 4, so that the
#: rows are not a power of two apart (256 B). Copying a line into a tile stores one element per
#: row; with 256 B rows those stores fall into 16 of L1's 64 sets and evict each other (a plain
#: line-by-line transposing copy measured 1.9 ns per element at 256 B, 0.54 at 288 B).
ROW = TILE + 4
_TU = np.uint64(ROW)
#: Offsets are masked to 40 bits: the bound lets LLVM prove that ``offset + l`` does not wrap, which
#: it needs to form the run-time alias checks of loops whose offsets it cannot bound otherwise
#: (e.g. under a descending outer loop).
_OFFSET_MASK = np.uint64((1 << 40) - 1)


@njit(cache=True, inline="always")
def _u(i):
    """Row offset ``i * ROW`` as uint64 (unsigned indices skip numba's negative-index check,
    which would otherwise turn the vector loads into gathers); i >= 0."""
    return np.uint64(i * ROW) & _OFFSET_MASK


@njit(cache=True, inline="always", error_model="numpy")
def walcek_tile(a, h, n, nl, geo, flux, out, upcoming=None, periodic=False):
    """Walcek (2000) update of ``nl <= TILE`` lines at once; the same arithmetic as
    :func:`walcek_line` (bit for bit), for non-periodic and (``periodic``) periodic lines.

    The work arrays are flat, row-major with the compile-time row stride ROW >= TILE (element
    (r, l) at ``r * ROW + l``); l = line. a: (n + 2h) rows of mixing ratios along the sweep, ghosts
    included (read only). geo: (3n + 1) rows, the scaled face air-mass fluxes (kg, closed faces 0)
    in rows 2f (f = 0..n), the cell air masses before the sweep (kg) in rows 2i + 1 and the
    reciprocals of the masses after it (kg-1, :func:`_tile_geometry`) in rows 2n + 1 + i, so that
    all are one array for LLVM's alias analysis; the mass after the sweep is formed on the fly
    as m0 - phi[i+1] + phi[i]. Divisions by it are multiplications by its reciprocal, here and in
    :func:`walcek_line` alike. flux: (n + 1) rows, receives the final tracer fluxes; out: n rows,
    receives the new interior mixing ratios.

    One forward loop computes each face's extremum flags and provisional flux and at once clips
    the cell behind it for positive flow (its outflow face is the one just computed); one
    backward loop clips cells with negative flow and updates each cell as soon as both of its
    faces are final. The innermost loops run over the lines with no branches (every candidate is
    loaded, then selected), with unsigned indices at constant offsets from each other: LLVM
    vectorises them with few run-time alias checks.

    upcoming: None, or a tuple of 2-D views (rows along the sweep, lines contiguous or not) that
    the caller copies in next (the next species' lines, the next tile's fluxes and masses); the
    forward loop prefetches a share of their rows per face (:func:`.layout.prefetch_rows`), so
    they arrive while this tile computes. Results do not depend on it.

    periodic: faces 0 and n are one face (periodic ghosts, phi[0] == phi[n]) as in
    :func:`walcek_line`: the face values of faces 0 and n take their upwind cell across the wrap
    (mass and donor-cell test of cell n - 1 resp. 0), and the clipping passes are repeated per
    line until the wrapped face carries one flux (:func:`_tile_periodic_fluxes`); the backward
    pass is then not fused with the update. Row 0 of ``out`` is work until the update.
    """
    npad = n + 2 * h
    nlu = np.uint64(nl)
    for f in range(n + 1):
        if upcoming is not None:
            for v in upcoming:
                prefetch_rows(v, f, n + 1)
        has_p = f >= 1
        has_n = f < n
        rf = _u(f)
        gf = _u(2 * f)
        # rows p-2 .. p+3 around face f (p = f - 1 + h); the outermost ghost rows 0 and
        # npad - 1 are never extrema, and rows beyond them are not read
        p = f - 1 + h
        rm = _u(p - 1)
        r0 = rm + _TU
        r1 = r0 + _TU
        r2 = r1 + _TU
        edge_m = p - 1 == 0
        edge_2 = p + 2 == npad - 1
        rmm = _u(p - 2) if not edge_m else rm
        r3 = r2 + _TU if not edge_2 else r2
        # upwind cell of positive / negative flow; across the wrap on a periodic line, else
        # (boundary faces of open lines) the first / last cell's mass and no donor-cell test
        cp = f - 1 if has_p else (n - 1 if periodic else 0)
        cn = f if has_n else (0 if periodic else n - 1)
        up_p = has_p or periodic  # the positive-flow upwind cell is an interior cell
        up_n = has_n or periodic
        gpm = _u(2 * cp + 1)  # its mass row
        gpl = _u(2 * cp)  # its low face
        gnm = _u(2 * cn + 1)
        gnh = _u(2 * cn + 2)  # its high face
        rfl = _u(f - 1 if has_p else 0)  # flux row of face f - 1 (row 0, unused, for f = 0)
        gpi = _u(2 * n + 1 + cp)  # 1 / (its mass after the sweep; unused for f = 0)
        for l in range(nlu):
            ph = geo[gf + l]
            amm = a[rmm + l]
            am = a[rm + l]
            a0 = a[r0 + l]
            a1 = a[r1 + l]
            a2 = a[r2 + l]
            a3 = a[r3 + l]
            # extremum flags, computed here (selecting stored flags made LLVM gather bytes)
            em = (((am >= amm) & (am >= a0)) | ((am <= amm) & (am <= a0))) & (not edge_m)
            e0 = ((a0 >= am) & (a0 >= a1)) | ((a0 <= am) & (a0 <= a1))
            e1 = ((a1 >= a0) & (a1 >= a2)) | ((a1 <= a0) & (a1 <= a2))
            e2 = (((a2 >= a1) & (a2 >= a3)) | ((a2 <= a1) & (a2 <= a3))) & (not edge_2)
            plo = geo[gpl + l]  # low face of the positive-flow upwind cell (phi[f-1])
            mp = geo[gpm + l]  # its mass (m0[f-1])
            mn = geo[gnm + l]
            donor_p = (plo < 0.0) & up_p
            donor_n = (geo[gnh + l] > 0.0) & up_n
            pos = ph > 0.0
            qc = a0 if pos else a1
            qd = a1 if pos else a0
            qu = am if pos else a2
            ed = e1 if pos else e0
            eu = em if pos else e2
            mu = mp if pos else mn
            donor = donor_p if pos else donor_n
            qf = _walcek_face_value(qc, qd, qu, ed, eu, abs(ph) / mu)
            qf = qc if donor else qf
            fr = ph * qf if ph != 0.0 else 0.0
            # positive-flow clipping of the cell f - 1 behind the face (its outflow face)
            fl = flux[rfl + l]
            mm1 = mp - ph + plo
            qs = (a0 * mp + fl - fr) * geo[gpi + l]
            qup = am if plo > 0.0 else a0
            lo = min(a0, qup)
            hi = max(a0, qup)
            bound = hi if qs > hi else lo
            adj = fl + a0 * mp - bound * mm1
            clip = (ph > 0.0) & (plo >= 0.0) & ((qs > hi) | (qs < lo)) & has_p
            flux[rf + l] = adj if clip else fr
    if periodic:
        _tile_periodic_fluxes(a, h, n, nl, geo, flux, out)
        _tile_update(a, h, n, nl, geo, flux, out)
        return
    # flux[n] is final: the negative pass only moves the low face of a cell
    for i in range(n - 1, -1, -1):
        ri = _u(i)
        gi = _u(2 * i)
        gii = _u(2 * n + 1 + i)
        rq = _u(i + h)
        for l in range(nlu):
            p0 = geo[gi + l]
            mm0 = geo[gi + _TU + l]
            p1 = geo[gi + _TU + _TU + l]
            mm1 = mm0 - p1 + p0
            im1 = geo[gii + l]
            qc = a[rq + l]
            qn = a[rq + _TU + l]
            fl = flux[ri + l]
            fr = flux[ri + _TU + l]
            qs = (qc * mm0 + fl - fr) * im1
            qup = qn if p1 < 0.0 else qc
            lo = min(qc, qup)
            hi = max(qc, qup)
            bound = hi if qs > hi else lo
            adj = fr - qc * mm0 + bound * mm1
            clip = (p0 < 0.0) & (p1 <= 0.0) & ((qs > hi) | (qs < lo))
            fl = adj if clip else fl
            flux[ri + l] = fl
            out[ri + l] = (qc * mm0 + fl - fr) * im1


@njit(cache=True, inline="always", error_model="numpy")
def _tile_positive_pass(a, h, n, nl, geo, flux, act):
    """:func:`_positive_pass` on the tile's lines l with ``act[l] != 0`` (arrays as
    :func:`walcek_tile`; act: TILE flags, 1.0 or 0.0)."""
    nlu = np.uint64(nl)
    for i in range(n):
        ri = _u(i)
        gi = _u(2 * i)
        gii = _u(2 * n + 1 + i)
        rq = _u(i + h)
        for l in range(nlu):
            p0 = geo[gi + l]
            mm0 = geo[gi + _TU + l]
            p1 = geo[gi + _TU + _TU + l]
            mm1 = mm0 - p1 + p0
            im1 = geo[gii + l]
            qc = a[rq + l]
            qm = a[rq - _TU + l]
            fl = flux[ri + l]
            fr = flux[ri + _TU + l]
            qs = (qc * mm0 + fl - fr) * im1
            qup = qm if p0 > 0.0 else qc
            lo = min(qc, qup)
            hi = max(qc, qup)
            bound = hi if qs > hi else lo
            adj = fl + qc * mm0 - bound * mm1
            clip = (act[l] != 0.0) & (p1 > 0.0) & (p0 >= 0.0) & ((qs > hi) | (qs < lo))
            flux[ri + _TU + l] = adj if clip else fr


@njit(cache=True, inline="always", error_model="numpy")
def _tile_negative_pass(a, h, n, nl, geo, flux, act):
    """:func:`_negative_pass` on the tile's lines l with ``act[l] != 0`` (as
    :func:`_tile_positive_pass`)."""
    nlu = np.uint64(nl)
    for i in range(n - 1, -1, -1):
        ri = _u(i)
        gi = _u(2 * i)
        gii = _u(2 * n + 1 + i)
        rq = _u(i + h)
        for l in range(nlu):
            p0 = geo[gi + l]
            mm0 = geo[gi + _TU + l]
            p1 = geo[gi + _TU + _TU + l]
            mm1 = mm0 - p1 + p0
            im1 = geo[gii + l]
            qc = a[rq + l]
            qn = a[rq + _TU + l]
            fl = flux[ri + l]
            fr = flux[ri + _TU + l]
            qs = (qc * mm0 + fl - fr) * im1
            qup = qn if p1 < 0.0 else qc
            lo = min(qc, qup)
            hi = max(qc, qup)
            bound = hi if qs > hi else lo
            adj = fr - qc * mm0 + bound * mm1
            clip = (act[l] != 0.0) & (p0 < 0.0) & (p1 <= 0.0) & ((qs > hi) | (qs < lo))
            flux[ri + l] = adj if clip else fl


@njit(cache=True, inline="always")
def _tile_wrap(n, nl, geo, flux, act, positive):
    """After a clipping pass of a periodic tile: the lines with ``act[l] != 0`` whose face 0
    flows in the pass's direction (``positive``: phi[0] > 0, else < 0) and whose faces 0 and n
    carry different fluxes take the flux just set on the downstream end (``flux[0] = flux[n]``
    for positive flow, ``flux[n] = flux[0]`` for negative) and stay active for another pass;
    the others become inactive. Returns True if some line stays active."""
    nlu = np.uint64(nl)
    rn = _u(n)
    more = False
    for l in range(nlu):
        ph = geo[l]
        f0 = flux[l]
        fn = flux[rn + l]
        c = (act[l] != 0.0) & ((ph > 0.0) if positive else (ph < 0.0)) & (f0 != fn)
        flux[l] = fn if (c & positive) else f0
        flux[rn + l] = f0 if (c & (not positive)) else fn
        act[l] = 1.0 if c else 0.0
        more |= c
    return more


@njit(cache=True, inline="always", error_model="numpy")
def _tile_periodic_fluxes(a, h, n, nl, geo, flux, act):
    """Finish the tracer fluxes of a periodic tile as :func:`walcek_line` does, line by line,
    after the first positive pass (fused into :func:`walcek_tile`'s forward loop): up to three
    more positive passes while the wrapped face's two fluxes differ (phi[0] > 0), the negative
    pass and up to three more of it (phi[0] < 0), then one flux on the wrapped face
    (``flux[0] = flux[n]`` if phi[0] > 0, else ``flux[n] = flux[0]``). act: TILE work."""
    nlu = np.uint64(nl)
    for l in range(nlu):
        act[l] = 1.0
    more = _tile_wrap(n, nl, geo, flux, act, True)
    for _ in range(3):
        if not more:
            break
        _tile_positive_pass(a, h, n, nl, geo, flux, act)
        more = _tile_wrap(n, nl, geo, flux, act, True)
    for l in range(nlu):
        act[l] = 1.0
    _tile_negative_pass(a, h, n, nl, geo, flux, act)
    more = _tile_wrap(n, nl, geo, flux, act, False)
    for _ in range(3):
        if not more:
            break
        _tile_negative_pass(a, h, n, nl, geo, flux, act)
        more = _tile_wrap(n, nl, geo, flux, act, False)
    rn = _u(n)
    for l in range(nlu):
        pos = geo[l] > 0.0
        f0 = flux[l]
        fn = flux[rn + l]
        flux[l] = fn if pos else f0
        flux[rn + l] = fn if pos else f0


@njit(cache=True, inline="always", error_model="numpy")
def _tile_update(a, h, n, nl, geo, flux, out):
    """Conservative update of a tile's cells from its final tracer fluxes (step 5 of
    :func:`walcek_line`) into ``out``."""
    nlu = np.uint64(nl)
    for i in range(n):
        ri = _u(i)
        gi = _u(2 * i)
        gii = _u(2 * n + 1 + i)
        rq = _u(i + h)
        for l in range(nlu):
            mm0 = geo[gi + _TU + l]
            out[ri + l] = (a[rq + l] * mm0 + flux[ri + l] - flux[ri + _TU + l]) * geo[gii + l]


@njit(cache=True, inline="always")
def _tile_geometry(geo, n, nl, scale, closed):
    """Scale the tile's face fluxes (rows 2f of geo), zero closed walls, and store the
    reciprocal of each cell's mass after the sweep, 1 / (m0 - phi[i+1] + phi[i]), in rows
    2n + 1 + i (shared by all species: one division per cell instead of three)."""
    nlu = np.uint64(nl)
    for f in range(n + 1):
        rf = _u(2 * f)
        for l in range(nlu):
            geo[rf + l] *= scale
    if closed & 1:
        for l in range(nlu):
            geo[l] = 0.0
    if closed & 2:
        rf = _u(2 * n)
        for l in range(nlu):
            geo[rf + l] = 0.0
    for i in range(n):
        g = _u(2 * i)
        gi = _u(2 * n + 1 + i)
        for l in range(nlu):
            geo[gi + l] = 1.0 / (geo[g + _TU + l] - geo[g + _TU + _TU + l] + geo[g + l])


@njit(cache=True, inline="always")
def _tile_work(n, h):
    """Work arrays of one tile: a, geo, flux, out (see :func:`walcek_tile`)."""
    return (np.empty((n + 2 * h) * ROW), np.empty((3 * n + 1) * ROW), np.empty((n + 1) * ROW),
            np.empty(n * ROW))


@parallel_kernel(lambda q, h, mass, *_: mass.shape[0] * -(-mass.shape[2] // TILE), exact=True)
@njit(cache=True, nogil=True, error_model="numpy")
def _walcek_tiles_rows(start, stop, q, h, mass, flux, scale, closed):
    """Sweep along axis 2 of ``q`` (nspec, nb, n + 2h, nx + 2h), lines along the contiguous last
    axis; mass (nb, n, nx) and flux (nb, n + 1, nx). Used for y (blocks = levels) and z (blocks =
    rows j, through a transposed view); periodic lines (closed & 4) included."""
    nspec = q.shape[0]
    nb, n, nx = mass.shape
    periodic = (closed & 4) != 0
    ntile = (nx + TILE - 1) // TILE
    a, geo, work, out = _tile_work(n, h)  # once per range of tiles
    for bt in range(start, stop):
        b = bt // ntile
        i0 = (bt - b * ntile) * TILE
        nl = min(TILE, nx - i0)
        nlu = np.uint64(nl)  # unsigned offsets and counters: the copies vectorise
        for f in range(n + 1):
            src = flux[b, f, i0:i0 + nl]
            rf = _u(2 * f)
            for l in range(nlu):
                geo[rf + l] = src[l]
        for i in range(n):
            src = mass[b, i, i0:i0 + nl]
            ri = _u(2 * i + 1)
            for l in range(nlu):
                geo[ri + l] = src[l]
        _tile_geometry(geo, n, nl, scale, closed)
        # what is copied in after this tile: prefetched while it computes
        bt1 = bt + 1 if bt + 1 < stop else bt
        b1 = bt1 // ntile
        i1 = (bt1 - b1 * ntile) * TILE
        nl1 = min(TILE, nx - i1)
        for s in range(nspec):
            for p in range(n + 2 * h):
                src = q[s, b, p, i0 + h:i0 + h + nl]
                rp = _u(p)
                for l in range(nlu):
                    a[rp + l] = src[l]
            if s + 1 < nspec:
                upcoming = (q[s + 1, b, :, i0 + h:i0 + h + nl], flux[b, :0, i0:i0 + nl],
                            mass[b, :0, i0:i0 + nl])
            else:
                upcoming = (q[0, b1, :, i1 + h:i1 + h + nl1], flux[b1, :, i1:i1 + nl1],
                            mass[b1, :, i1:i1 + nl1])
            walcek_tile(a, h, n, nl, geo, work, out, upcoming, periodic)
            for i in range(n):
                dst = q[s, b, i + h, i0 + h:i0 + h + nl]
                ri = _u(i)
                for l in range(nlu):
                    dst[l] = out[ri + l]
        for i in range(n):
            dst = mass[b, i, i0:i0 + nl]
            g = _u(2 * i)
            for l in range(nlu):
                dst[l] = geo[g + _TU + l] - geo[g + _TU + _TU + l] + geo[g + l]


@parallel_kernel(lambda q, h, mass, *_: mass.shape[0] * -(-mass.shape[1] // TILE), exact=True)
@njit(cache=True, nogil=True, error_model="numpy")
def _walcek_tiles_x(start, stop, q, h, mass, flux, scale, closed):
    """Sweep along x (periodic lines, closed & 4, included): tiles of TILE rows j are transposed
    into the work arrays.

    The transposing copies run along the sweep axis outermost and across the tile's lines
    innermost (strided loads, contiguous stores into the tile and the reverse on the way out):
    4x faster than copying line by line with strided stores into the tile.
    """
    nspec = q.shape[0]
    nz, ny, n = mass.shape
    periodic = (closed & 4) != 0
    ntile = (ny + TILE - 1) // TILE
    a, geo, work, out = _tile_work(n, h)  # once per range of tiles
    for kt in range(start, stop):
        k = kt // ntile
        j0 = (kt - k * ntile) * TILE
        nl = min(TILE, ny - j0)
        nlu = np.uint64(nl)
        fk = flux[k, j0:j0 + nl]
        mk = mass[k, j0:j0 + nl]
        for f in range(n + 1):
            rf = _u(2 * f)
            for l in range(nlu):
                geo[rf + l] = fk[l, f]
        for i in range(n):
            ri = _u(2 * i + 1)
            for l in range(nlu):
                geo[ri + l] = mk[l, i]
        _tile_geometry(geo, n, nl, scale, closed)
        for s in range(nspec):
            qk = q[s, k + h, j0 + h:j0 + h + nl]
            for p in range(n + 2 * h):
                rp = _u(p)
                for l in range(nlu):
                    a[rp + l] = qk[l, p]
            # no software prefetch: the rows along x are contiguous and the hardware streams
            # them (prefetching the next tile measured 0.92x at 600 x 600)
            walcek_tile(a, h, n, nl, geo, work, out, None, periodic)
            for i in range(n):
                ri = _u(i)
                for l in range(nlu):
                    qk[l, i + h] = out[ri + l]
        for i in range(n):
            g = _u(2 * i)
            for l in range(nlu):
                mk[l, i] = geo[g + _TU + l] - geo[g + _TU + _TU + l] + geo[g + l]


def walcek_sweep_x(q, halo, mass, flux_x, scale, closed):
    """One Walcek sweep along x (last axis), in place on ``q`` and ``mass``.

    q: (nspec, nz+2h, ny+2h, nx+2h) mixing ratios, x-ghosts of interior rows filled.
    mass: (nz, ny, nx) air mass, kg; replaced by the mass after the sweep.
    flux_x: (nz, ny, nx+1) air-mass flux per step, kg; used times ``scale``.
    closed: bit mask (1 = west wall, 2 = east wall, 4 = periodic).
    Tiled (:func:`_walcek_tiles_x`), periodic lines included; bit for bit :func:`_walcek_lines`.
    """
    _walcek_tiles_x(q, halo, mass, flux_x, scale, closed)


def walcek_sweep_y(q, halo, mass, flux_y, scale, closed):
    """One Walcek sweep along y, in place; arguments as :func:`walcek_sweep_x` with
    flux_y (nz, ny+1, nx) and closed bits 1 = south, 2 = north."""
    nz = mass.shape[0]
    _walcek_tiles_rows(q[:, halo:halo + nz], halo, mass, flux_y, scale, closed)


def walcek_sweep_z(q, halo, mass, flux_z, scale, closed):
    """One Walcek sweep along z, in place; arguments as :func:`walcek_sweep_x` with
    flux_z (nz+1, ny, nx) and closed bits 1 = ground, 2 = model top."""
    ny = mass.shape[1]
    _walcek_tiles_rows(q[:, :, halo:halo + ny].transpose(0, 2, 1, 3), halo,
                       mass.transpose(1, 0, 2), flux_z.transpose(1, 0, 2), scale, closed)


@njit(cache=True, inline="always")
def _x_faces(fx, i, nx, scale, west, east):
    """Scaled west and east face fluxes of cell i of a row, 0 on a closed x wall."""
    return (fx[i] * scale if (west or i > 0) else 0.0,
            fx[i + 1] * scale if (east or i < nx - 1) else 0.0)


@njit(cache=True, inline="always")
def _yz_faces(fs, fn, fb, ft, i, scale, open_s, open_n, open_b, open_t):
    """Scaled south, north, bottom and top face fluxes of cell i of a row (rows of faces on a
    closed wall give 0)."""
    return (fs[i] * scale if open_s else 0.0, fn[i] * scale if open_n else 0.0,
            fb[i] * scale if open_b else 0.0, ft[i] * scale if open_t else 0.0)


@njit(cache=True, inline="always")
def _upwind_mass(m0, x_faces, yz_faces):
    """Air mass after a donor-cell step from the scaled face fluxes (kg): x_faces (west, east),
    yz_faces (south, north, bottom, top)."""
    fw, fe = x_faces
    fs, fn, fb, ft = yz_faces
    return m0 + (fw - fe) + (fs - fn) + (fb - ft)


@njit(cache=True, inline="always")
def _upwind_cell(qc, qw, qe, qs, qn, qb, qt, m0, m1, x_faces, yz_faces):
    """Donor-cell mixing ratio of one cell from its neighbours and the scaled face fluxes (as
    :func:`_upwind_mass`): the donor value enters as ``max(F, 0) q_low + min(F, 0) q_high``
    (one term is exactly zero)."""
    fw, fe = x_faces
    fs, fn, fb, ft = yz_faces
    acc = qc * m0
    acc += max(fw, 0.0) * qw + min(fw, 0.0) * qc
    acc -= max(fe, 0.0) * qc + min(fe, 0.0) * qe
    acc += max(fs, 0.0) * qs + min(fs, 0.0) * qc
    acc -= max(fn, 0.0) * qc + min(fn, 0.0) * qn
    acc += max(fb, 0.0) * qb + min(fb, 0.0) * qc
    acc -= max(ft, 0.0) * qc + min(ft, 0.0) * qt
    return acc / m1


@parallel_kernel(lambda q, out, halo, mass, *_: mass.shape[0] * mass.shape[1], exact=True)
@njit(cache=True, nogil=True, error_model="numpy")
def upwind_step(start, stop, q, out, halo, mass, mass_out, flux_x, flux_y, flux_z, scale, closed_x,
                closed_y, closed_z):
    """Unsplit donor-cell step: all three directions from the same field.

    q: (nspec, nz+2h, ny+2h, nx+2h) input mixing ratios with the face-neighbour ghosts filled;
    out: same shape, interior overwritten with the new mixing ratios (ghosts untouched).
    mass / mass_out: (nz, ny, nx) air mass before / after, kg. Fluxes and closed masks as in
    the module docstring. Stable and positive while the total outflow per cell <= mass.
    The donor value enters as ``max(F, 0) q_upwind-low + min(F, 0) q_upwind-high`` (one term is
    exactly zero), so the innermost loop over x has no branches and vectorises.
    """
    nspec = q.shape[0]
    nz, ny, nx = mass.shape
    h = halo
    west = (closed_x & 1) == 0  # open low / high x walls
    east = (closed_x & 2) == 0
    for kj in range(start, stop):
        k = kj // ny
        j = kj - k * ny
        fxr = flux_x[k, j]
        fsr = flux_y[k, j]
        fnr = flux_y[k, j + 1]
        fbr = flux_z[k, j]
        ftr = flux_z[k + 1, j]
        m0 = mass[k, j]
        # y and z faces of this row are either all open or all on a closed wall
        open_s = not (j == 0 and (closed_y & 1) != 0)
        open_n = not (j + 1 == ny and (closed_y & 2) != 0)
        open_b = not (k == 0 and (closed_z & 1) != 0)
        open_t = not (k + 1 == nz and (closed_z & 2) != 0)
        m1 = mass_out[k, j]
        for i in range(nx):
            m1[i] = _upwind_mass(m0[i], (fxr[i] * scale, fxr[i + 1] * scale),
                                 _yz_faces(fsr, fnr, fbr, ftr, i, scale, open_s, open_n, open_b,
                                           open_t))
        # the loops scale every x face; cells on a closed x wall are done again after them
        for i in (0, nx - 1):
            if (i > 0 or west) and (i < nx - 1 or east):
                continue
            m1[i] = _upwind_mass(m0[i], _x_faces(fxr, i, nx, scale, west, east),
                                 _yz_faces(fsr, fnr, fbr, ftr, i, scale, open_s, open_n, open_b,
                                           open_t))
        kk = k + h
        jj = j + h
        for s in range(nspec):
            qc_ = q[s, kk, jj, h:h + nx]
            qw = q[s, kk, jj, h - 1:h + nx - 1]
            qe = q[s, kk, jj, h + 1:h + nx + 1]
            qs_ = q[s, kk, jj - 1, h:h + nx]
            qn = q[s, kk, jj + 1, h:h + nx]
            qb = q[s, kk - 1, jj, h:h + nx]
            qt = q[s, kk + 1, jj, h:h + nx]
            dst = out[s, kk, jj, h:h + nx]
            # one pass over the row, faces scaled in the loop (no per-row face arrays)
            for i in range(nx):
                dst[i] = _upwind_cell(qc_[i], qw[i], qe[i], qs_[i], qn[i], qb[i], qt[i], m0[i],
                                      m1[i], (fxr[i] * scale, fxr[i + 1] * scale),
                                      _yz_faces(fsr, fnr, fbr, ftr, i, scale, open_s, open_n,
                                                open_b, open_t))
            for i in (0, nx - 1):
                if (i > 0 or west) and (i < nx - 1 or east):
                    continue
                dst[i] = _upwind_cell(qc_[i], qw[i], qe[i], qs_[i], qn[i], qb[i], qt[i], m0[i],
                                      m1[i], _x_faces(fxr, i, nx, scale, west, east),
                                      _yz_faces(fsr, fnr, fbr, ftr, i, scale, open_s, open_n,
                                                open_b, open_t))


def max_courant(mass, flux_x, flux_y, flux_z, courant_max, out):
    """Courant numbers and the sub-step counts that keep every (sub)step stable and positive.

    mass: (nz, ny, nx) air mass, kg; fluxes as in the module docstring (per step, kg);
    courant_max: the limit per sweep (split) or in total (unsplit). out: (5,) float64 receives
    [0:3] the largest outflow Courant number (outflow / mass) along x, y, z; [3] the number of
    sub-steps (real, take the ceiling) for the split scheme, such that each sweep's outflow is at
    most ``courant_max`` times the smallest mass the cell can have when the sweep starts, whatever
    the sweep order: n >= (out_d / courant_max + sum_{d' != d} max(div_d', 0)) / M_lo with
    M_lo = min(M, M - div) (the mass varies linearly over the sub-steps); [4] the same for the
    unsplit scheme: n >= out_total / (courant_max M_lo). Closed walls are not masked (this
    over-estimates, never under-estimates).
    """
    nz, ny = mass.shape[:2]
    part = np.empty((nz * ny, 5))
    parallel_range(_COURANT_ROWS, nz * ny, mass, flux_x, flux_y, flux_z, float(courant_max), part)
    out[:5] = np.maximum(part.max(axis=0), 0.0)


@njit(cache=True, inline="always")
def _courant_cell(m, w, e, s, n, b, t, inv_cmax):
    """The five quantities of :func:`max_courant` for one cell (mass m, face fluxes w, e, s, n,
    b, t on its west, east, south, north, bottom and top faces)."""
    xo = max(e, 0.0) + max(-w, 0.0)
    yo = max(n, 0.0) + max(-s, 0.0)
    zo = max(t, 0.0) + max(-b, 0.0)
    dx_ = max(e - w, 0.0)
    dy_ = max(n - s, 0.0)
    dz_ = max(t - b, 0.0)
    div = e - w + n - s + t - b
    mlo = min(m, m - div)
    mlo = mlo if mlo > 0.0 else 1e-300  # inconsistent fluxes: the mass would vanish
    im = 1.0 / m
    il = 1.0 / mlo
    c3 = max((xo * inv_cmax + dy_ + dz_) * il,
             max((yo * inv_cmax + dx_ + dz_) * il, (zo * inv_cmax + dx_ + dy_) * il))
    return xo * im, yo * im, zo * im, c3, (xo + yo + zo) * inv_cmax * il


#: Independent running maxima per row in :func:`_courant_rows` (a max over a row is a reduction
#: LLVM does not vectorise; a max into _LANES accumulators, element by element, it does).
_LANES = 8


@njit(cache=True, nogil=True, inline="always")
def _lane_max(row, n, lanes, sign):
    """max(sign * row[0:n]) through ``lanes`` (:data:`_LANES` long) independent running maxima
    (a max over a row is a reduction LLVM does not vectorise; a max into a few accumulators,
    element by element, it does). ``sign`` -1 gives minus the minimum."""
    nl = _LANES
    lanes[:] = -np.inf
    nfull = n - n % nl
    for i0 in range(0, nfull, nl):
        for l in range(nl):
            lanes[l] = max(lanes[l], sign * row[i0 + l])
    for i in range(nfull, n):
        lanes[0] = max(lanes[0], sign * row[i])
    b = -np.inf
    for l in range(nl):
        b = max(b, lanes[l])
    return b


@njit(cache=True, nogil=True, error_model="numpy")
def _courant_rows(start, stop, mass, flux_x, flux_y, flux_z, courant_max, part):
    """Rows ``start .. stop-1`` (index k ny + j) of :func:`max_courant`: part (nz ny, 5)."""
    nz, ny, nx = mass.shape
    inv_cmax = 1.0 / courant_max
    acc = np.empty((5, _LANES))
    work = np.empty((5, nx))
    for kj in range(start, stop):
        k = kj // ny
        j = kj - k * ny
        m = mass[k, j]
        fw = flux_x[k, j]
        fs = flux_y[k, j]
        fn = flux_y[k, j + 1]
        fb = flux_z[k, j]
        ft = flux_z[k + 1, j]
        for i in range(nx):
            v0, v1, v2, v3, v4 = _courant_cell(m[i], fw[i], fw[i + 1], fs[i], fn[i], fb[i],
                                               ft[i], inv_cmax)
            work[0, i] = v0
            work[1, i] = v1
            work[2, i] = v2
            work[3, i] = v3
            work[4, i] = v4
        for c in range(5):
            part[kj, c] = max(0.0, _lane_max(work[c], nx, acc[c], 1.0))


_COURANT_ROWS = OneLayout(_courant_rows, exact=True)
