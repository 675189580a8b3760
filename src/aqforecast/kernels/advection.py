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
from numba import njit, prange

__all__ = [
    "upwind_step",
    "walcek_sweep_x",
    "walcek_sweep_y",
    "walcek_sweep_z",
    "walcek_line",
    "max_courant",
]

@njit(cache=True, inline="always")
def _walcek_face_value(qc, qd, qu, ext_down, ext_up, c):
    """Mean mixing ratio of the fluid leaving cell ``qc`` through its downwind face.

    qc, qd, qu: centre (upwind of the face), downwind and upwind-of-centre values; ext_down,
    ext_up: extremum flags of the downwind and upwind cells; c: Courant number in [0, 1].
    """
    alpha = 1.0
    if ext_down:
        alpha = 1.7763 - 0.5 * c
    if ext_up:
        alpha = 1.2578 + 0.58502 * c
    if c < 0.5:
        # Walcek's limit alpha <= 0.98*6/(1 - 2c) >= 5.88 only binds for full sharpening
        # (alpha = 5 is not used here; the alphas above stay <= 1.78), so it is skipped.
        qf = (
            qc * (1.0 + alpha * (2.0 * c - 1.0) / 6.0)
            + qd * alpha * (4.0 - 5.0 * c) / 12.0
            + qu * alpha * (c - 2.0) / 12.0
        )
    else:
        ic = 1.0 / c
        qf = (
            qc * (1.0 - alpha * (ic + 2.0 * c - 3.0) / 6.0)
            + qd * alpha * (ic - c) / 12.0
            + qu * alpha * (ic + 5.0 * c - 6.0) / 12.0
        )
    lo = min(qc, qd)
    hi = max(qc, qd)
    if qf < lo:
        qf = lo
    elif qf > hi:
        qf = hi
    return qf


@njit(cache=True, inline="always")
def _positive_pass(a, h, phi, m0, m1, flux):
    """Clip cells with a single outflow face on the high side; move the excess to that face."""
    n = m0.shape[0]
    for i in range(n):
        if phi[i + 1] > 0.0 and phi[i] >= 0.0:
            p = i + h
            qc = a[p]
            qs = (qc * m0[i] + flux[i] - flux[i + 1]) / m1[i]
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
            qs = (qc * m0[i] + flux[i] - flux[i + 1]) / m1[i]
            qup = a[p + 1] if phi[i + 1] < 0.0 else qc
            lo = min(qc, qup)
            hi = max(qc, qup)
            if qs > hi:
                flux[i] = flux[i + 1] - qc * m0[i] + hi * m1[i]
            elif qs < lo:
                flux[i] = flux[i + 1] - qc * m0[i] + lo * m1[i]


@njit(cache=True)
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
        a[p] = (a[p] * m0[i] + flux[i] - flux[i + 1]) / m1[i]


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


@njit(cache=True, parallel=True)
def walcek_sweep_x(q, halo, mass, flux_x, scale, closed):
    """One Walcek sweep along x (last axis), in place on ``q`` and ``mass``.

    q: (nspec, nz+2h, ny+2h, nx+2h) mixing ratios, x-ghosts of interior rows filled.
    mass: (nz, ny, nx) air mass, kg; replaced by the mass after the sweep.
    flux_x: (nz, ny, nx+1) air-mass flux per step, kg; used times ``scale``.
    closed: bit mask (1 = west wall, 2 = east wall, 4 = periodic).
    """
    nspec = q.shape[0]
    nz, ny, nx = mass.shape
    h = halo
    periodic = (closed & 4) != 0
    for k in prange(nz):
        phi = np.empty(nx + 1)
        m1 = np.empty(nx)
        ext = np.empty(nx + 2 * h, dtype=np.int8)
        flux = np.empty(nx + 1)
        m0 = np.empty(nx)
        a = np.empty(nx + 2 * h)
        for j in range(ny):
            for i in range(nx):
                m0[i] = mass[k, j, i]
            _line_fluxes(flux_x[k, j, :], scale, closed, phi, m0, m1)
            for s in range(nspec):
                for i in range(nx + 2 * h):
                    a[i] = q[s, k + h, j + h, i]
                walcek_line(a, h, phi, m0, m1, ext, flux, periodic)
                for i in range(nx):
                    q[s, k + h, j + h, i + h] = a[i + h]
            for i in range(nx):
                mass[k, j, i] = m1[i]


@njit(cache=True, parallel=True)
def walcek_sweep_y(q, halo, mass, flux_y, scale, closed):
    """One Walcek sweep along y, in place; arguments as :func:`walcek_sweep_x` with
    flux_y (nz, ny+1, nx) and closed bits 1 = south, 2 = north."""
    nspec = q.shape[0]
    nz, ny, nx = mass.shape
    h = halo
    periodic = (closed & 4) != 0
    for k in prange(nz):
        phi = np.empty(ny + 1)
        src = np.empty(ny + 1)
        m0 = np.empty(ny)
        m1 = np.empty(ny)
        ext = np.empty(ny + 2 * h, dtype=np.int8)
        flux = np.empty(ny + 1)
        a = np.empty(ny + 2 * h)
        for i in range(nx):
            for j in range(ny + 1):
                src[j] = flux_y[k, j, i]
            for j in range(ny):
                m0[j] = mass[k, j, i]
            _line_fluxes(src, scale, closed, phi, m0, m1)
            for s in range(nspec):
                for j in range(ny + 2 * h):
                    a[j] = q[s, k + h, j, i + h]
                walcek_line(a, h, phi, m0, m1, ext, flux, periodic)
                for j in range(ny):
                    q[s, k + h, j + h, i + h] = a[j + h]
            for j in range(ny):
                mass[k, j, i] = m1[j]


@njit(cache=True, parallel=True)
def walcek_sweep_z(q, halo, mass, flux_z, scale, closed):
    """One Walcek sweep along z, in place; arguments as :func:`walcek_sweep_x` with
    flux_z (nz+1, ny, nx) and closed bits 1 = ground, 2 = model top."""
    nspec = q.shape[0]
    nz, ny, nx = mass.shape
    h = halo
    periodic = (closed & 4) != 0
    for j in prange(ny):
        phi = np.empty(nz + 1)
        src = np.empty(nz + 1)
        m0 = np.empty(nz)
        m1 = np.empty(nz)
        ext = np.empty(nz + 2 * h, dtype=np.int8)
        flux = np.empty(nz + 1)
        a = np.empty(nz + 2 * h)
        for i in range(nx):
            for k in range(nz + 1):
                src[k] = flux_z[k, j, i]
            for k in range(nz):
                m0[k] = mass[k, j, i]
            _line_fluxes(src, scale, closed, phi, m0, m1)
            for s in range(nspec):
                for k in range(nz + 2 * h):
                    a[k] = q[s, k, j + h, i + h]
                walcek_line(a, h, phi, m0, m1, ext, flux, periodic)
                for k in range(nz):
                    q[s, k + h, j + h, i + h] = a[k + h]
            for k in range(nz):
                mass[k, j, i] = m1[k]


@njit(cache=True, inline="always")
def _face(flux, f, n, scale, closed):
    """Scaled flux at face index f of n+1 faces, zero on closed walls."""
    if (f == 0 and closed & 1) or (f == n and closed & 2):
        return 0.0
    return flux * scale


@njit(cache=True, parallel=True)
def upwind_step(q, out, halo, mass, mass_out, flux_x, flux_y, flux_z, scale, closed_x,
                closed_y, closed_z):
    """Unsplit donor-cell step: all three directions from the same field.

    q: (nspec, nz+2h, ny+2h, nx+2h) input mixing ratios with the face-neighbour ghosts filled;
    out: same shape, interior overwritten with the new mixing ratios (ghosts untouched).
    mass / mass_out: (nz, ny, nx) air mass before / after, kg. Fluxes and closed masks as in
    the module docstring. Stable and positive while the total outflow per cell <= mass.
    """
    nspec = q.shape[0]
    nz, ny, nx = mass.shape
    h = halo
    for k in prange(nz):
        for j in range(ny):
            for i in range(nx):
                fw = _face(flux_x[k, j, i], i, nx, scale, closed_x)
                fe = _face(flux_x[k, j, i + 1], i + 1, nx, scale, closed_x)
                fs = _face(flux_y[k, j, i], j, ny, scale, closed_y)
                fn = _face(flux_y[k, j + 1, i], j + 1, ny, scale, closed_y)
                fb = _face(flux_z[k, j, i], k, nz, scale, closed_z)
                ft = _face(flux_z[k + 1, j, i], k + 1, nz, scale, closed_z)
                m0 = mass[k, j, i]
                m1 = m0 + (fw - fe) + (fs - fn) + (fb - ft)
                mass_out[k, j, i] = m1
                kk = k + h
                jj = j + h
                ii = i + h
                for s in range(nspec):
                    qc = q[s, kk, jj, ii]
                    acc = qc * m0
                    acc += fw * (q[s, kk, jj, ii - 1] if fw >= 0.0 else qc)
                    acc -= fe * (qc if fe >= 0.0 else q[s, kk, jj, ii + 1])
                    acc += fs * (q[s, kk, jj - 1, ii] if fs >= 0.0 else qc)
                    acc -= fn * (qc if fn >= 0.0 else q[s, kk, jj + 1, ii])
                    acc += fb * (q[s, kk - 1, jj, ii] if fb >= 0.0 else qc)
                    acc -= ft * (qc if ft >= 0.0 else q[s, kk + 1, jj, ii])
                    out[s, kk, jj, ii] = acc / m1


@njit(cache=True, parallel=True)
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
    nz, ny, nx = mass.shape
    part = np.zeros((nz, 5))
    for k in prange(nz):
        for j in range(ny):
            for i in range(nx):
                m = mass[k, j, i]
                xo = max(flux_x[k, j, i + 1], 0.0) + max(-flux_x[k, j, i], 0.0)
                yo = max(flux_y[k, j + 1, i], 0.0) + max(-flux_y[k, j, i], 0.0)
                zo = max(flux_z[k + 1, j, i], 0.0) + max(-flux_z[k, j, i], 0.0)
                dx_ = max(flux_x[k, j, i + 1] - flux_x[k, j, i], 0.0)
                dy_ = max(flux_y[k, j + 1, i] - flux_y[k, j, i], 0.0)
                dz_ = max(flux_z[k + 1, j, i] - flux_z[k, j, i], 0.0)
                div = (flux_x[k, j, i + 1] - flux_x[k, j, i] + flux_y[k, j + 1, i]
                       - flux_y[k, j, i] + flux_z[k + 1, j, i] - flux_z[k, j, i])
                mlo = min(m, m - div)
                if mlo <= 0.0:
                    mlo = 1e-300  # inconsistent fluxes: the mass would vanish
                part[k, 0] = max(part[k, 0], xo / m)
                part[k, 1] = max(part[k, 1], yo / m)
                part[k, 2] = max(part[k, 2], zo / m)
                nx_ = (xo / courant_max + dy_ + dz_) / mlo
                ny_ = (yo / courant_max + dx_ + dz_) / mlo
                nz_ = (zo / courant_max + dx_ + dy_) / mlo
                part[k, 3] = max(part[k, 3], max(nx_, max(ny_, nz_)))
                part[k, 4] = max(part[k, 4], (xo + yo + zo) / (courant_max * mlo))
    for c in range(5):
        out[c] = 0.0
        for k in range(nz):
            if part[k, c] > out[c]:
                out[c] = part[k, c]
