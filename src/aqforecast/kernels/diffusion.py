"""Implicit vertical turbulent diffusion with emissions and dry deposition (numba).

SCIENCE.md 3.2: per column, mixing-ratio form, theta-scheme in time (theta = 1 backward Euler,
the operational default; 0.5 Crank-Nicolson):

    rho_k dz_k (q_k^{n+1} - q_k^n)/dt = theta D_k(q^{n+1}) + (1 - theta) D_k(q^n) + S_k
    D_k(q) = G_{k+1/2}(q_{k+1} - q_k) - G_{k-1/2}(q_k - q_{k-1}),   G_{1/2} = G_{N+1/2} = 0
    S_1 = E_1 - rho_1 v_d q_1^{n+1}  (implicit deposition),  S_k = E_k (elevated sources)

with G_{k+1/2} = rho_{k+1/2} K_{k+1/2} / (z_{k+1} - z_k) (kg m-2 s-1). Solved with the Thomas
algorithm (all columns of a grid row at once, level by level, SIMD along x; per column the
operations of :func:`thomas_solve`, with one reciprocal per pivot) for the increment
q^{n+1} - q^n (so a uniform column without sources stays exactly uniform). Backward Euler gives
an M-matrix: positive, stable for any dt, and the column mass sum(rho dz q) changes only by
dt (sum E - rho_1 v_d q_1^{n+1}).

Units: q any mixing-ratio unit [q]; rho_dz = rho dz (kg m-2); emissions in [q] kg m-2 s-1 (for
q in kg kg-1: kg of species per m2 per s); deposition conductance rho_1 v_d in kg m-2 s-1; the
deposited amount returned per column is in [q] kg m-2 (kg m-2 of species for q in kg kg-1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import prefetch_rows_call as prefetch_rows
from .threads import parallel_kernel

__all__ = ["thomas_solve", "diffusion_conductance", "vertical_diffusion"]

@njit(cache=True)
def thomas_solve(a, b, c, d, x, work):
    """Solve a tridiagonal system a_k x_{k-1} + b_k x_k + c_k x_{k+1} = d_k (Thomas algorithm).

    a, b, c, d, x, work: 1-D float64 arrays of length n (a[0] and c[n-1] are ignored); x receives
    the solution (may alias d); work is scratch. No pivoting: meant for diagonally dominant
    matrices such as backward-Euler diffusion.
    """
    n = b.shape[0]
    beta = b[0]
    x[0] = d[0] / beta
    for k in range(1, n):
        work[k] = c[k - 1] / beta
        beta = b[k] - a[k] * work[k]
        x[k] = (d[k] - a[k] * x[k - 1]) / beta
    for k in range(n - 2, -1, -1):
        x[k] -= work[k + 1] * x[k + 1]


@parallel_kernel(lambda rho, *_: rho.shape[1])
@njit(cache=True, nogil=True)
def diffusion_conductance(start, stop, rho, kz, z_centre, out):
    """Interface conductances G_{k+1/2} = rho_{k+1/2} K_{k+1/2} / (z_{k+1} - z_k), kg m-2 s-1.

    rho: (nz, ny, nx) air density at layer centres, kg m-3 (interface value = mean of the two
    neighbours); kz: (nz+1, ny, nx) eddy diffusivity at interfaces, m2 s-1 (interface k is the
    bottom of layer k; entries 0 and nz are ignored); z_centre: (nz, ny, nx) centre heights, m.
    out: (nz+1, ny, nx); out[0] = out[nz] = 0 (no flux through ground or model top).
    """
    nz, ny, nx = rho.shape
    for j in range(start, stop):
        for i in range(nx):
            out[0, j, i] = 0.0
            out[nz, j, i] = 0.0
            for k in range(1, nz):
                rhof = 0.5 * (rho[k - 1, j, i] + rho[k, j, i])
                out[k, j, i] = rhof * kz[k, j, i] / (z_centre[k, j, i] - z_centre[k - 1, j, i])


# The row kernels below loop over the contiguous x axis innermost on 1-D row views and are split
# so that each loop writes at most two arrays: numba gives LLVM no aliasing information, and the
# loop vectoriser gives up when a loop needs more than 8 run-time overlap checks. They use
# error_model="numpy" because the Python model's per-division ZeroDivisionError check also
# blocks vectorisation (divisors are rho dz > 0 and Thomas pivots >= 1 for valid input).


@njit(cache=True, inline="always", error_model="numpy")
def _column_coefficients(j, rho_dz, conductance, dt, theta, glo, ghi, bb):
    """Coefficient rows of the columns of row j (shared by all species).

    glo, ghi, bb: (nz, nx) work arrays receiving dt G_{k-1/2} / (rho dz)_k,
    dt G_{k+1/2} / (rho dz)_k (glo = 0 at the ground, ghi = 0 at the top) and the diagonal
    without deposition 1 - a - c, with the sub- and super-diagonals a = -theta glo,
    c = -theta ghi.
    """
    nz, ny, nx = rho_dz.shape
    for k in range(nz):
        rho_row = rho_dz[k, j]
        lo = glo[k]
        hi = ghi[k]
        b_row = bb[k]
        for i in range(nx):
            b_row[i] = dt / rho_row[i]  # dt / (rho dz), until b is formed below
        if k > 0 and k < nz - 1:
            g_lo = conductance[k, j]
            g_hi = conductance[k + 1, j]
            for i in range(nx):
                inv = b_row[i]
                gl = inv * g_lo[i]
                gh = inv * g_hi[i]
                lo[i] = gl
                hi[i] = gh
                b_row[i] = 1.0 - -theta * gl - -theta * gh
        elif k > 0:
            g_lo = conductance[k, j]
            for i in range(nx):
                gl = b_row[i] * g_lo[i]
                lo[i] = gl
                hi[i] = 0.0
                b_row[i] = 1.0 - -theta * gl - -theta * 0.0
        elif k < nz - 1:
            g_hi = conductance[k + 1, j]
            for i in range(nx):
                gh = b_row[i] * g_hi[i]
                lo[i] = 0.0
                hi[i] = gh
                b_row[i] = 1.0 - -theta * 0.0 - -theta * gh
        else:
            for i in range(nx):
                lo[i] = 0.0
                hi[i] = 0.0
                b_row[i] = 1.0 - -theta * 0.0 - -theta * 0.0


@njit(cache=True, inline="always", error_model="numpy")
def _solve_row(q, s, j, h, rho_dz, deposition, emissions, dt, theta, deposited,
               glo, ghi, bb, w, x, beta, x_last, down, upcoming):
    """Thomas solve of every column of row j for species s, vectorised along x.

    Per column the arithmetic is that of building b, d and calling :func:`thomas_solve`, except
    that each pivot is inverted once (one division per level instead of two: the elimination
    factor and the solution multiply by 1/beta), so results agree with a column-by-column solve
    to a few ulp (tested to 1e-13). glo, ghi, bb from :func:`_column_coefficients`
    (a = -theta glo, c = -theta ghi); w, x: (nz, nx) scratch (elimination factors, right-hand
    sides then increments);
    beta, x_last: (nx,) scratch (reciprocal pivots; last increment row, kept apart so that
    LLVM's hoisted overlap checks do not see x[k] vs x[k-1]);
    down: np.arange(nz - 1, 0, -1).
    """
    nz, ny, nx = rho_dz.shape
    ne = emissions.shape[1]
    jh = j + h
    # forward sweep: right-hand side d_k into x[k], then elimination
    for k in range(nz):
        prefetch_rows(upcoming, k, nz)
        kh = k + h
        qk = q[s, kh, jh, h:h + nx]
        xk = x[k]
        if k > 0:
            qm = q[s, kh - 1, jh, h:h + nx]
            lo = glo[k]
            if k < nz - 1:
                qp = q[s, kh + 1, jh, h:h + nx]
                hi = ghi[k]
                for i in range(nx):
                    qi = qk[i]
                    rhs = 0.0
                    rhs -= lo[i] * (qi - qm[i])
                    rhs += hi[i] * (qp[i] - qi)
                    xk[i] = rhs
            else:
                for i in range(nx):
                    qi = qk[i]
                    rhs = 0.0
                    rhs -= lo[i] * (qi - qm[i])
                    xk[i] = rhs
        elif nz > 1:
            qp = q[s, kh + 1, jh, h:h + nx]
            hi = ghi[k]
            for i in range(nx):
                rhs = 0.0
                rhs += hi[i] * (qp[i] - qk[i])
                xk[i] = rhs
        else:
            xk[:] = 0.0
        if k < ne:
            e_row = emissions[s, k, j]
            rho_row = rho_dz[k, j]
            for i in range(nx):
                xk[i] += dt * e_row[i] / rho_row[i]
        b_row = bb[k]
        if k == 0:
            # implicit deposition at the ground: b_1 += dt v_d rho_1 / (rho dz)_1 (beta = scratch)
            dep_row = deposition[s, j]
            rho_row = rho_dz[0, j]
            for i in range(nx):
                beta[i] = dt * dep_row[i] / rho_row[i]
            for i in range(nx):
                dep_coef = beta[i]
                b0 = b_row[i] + dep_coef
                d0 = xk[i] - dep_coef * qk[i]
                inv = 1.0 / b0
                beta[i] = inv
                xi = d0 * inv
                xk[i] = xi
                x_last[i] = xi
        else:
            lo = glo[k]
            hi_prev = ghi[k - 1]
            wk = w[k]
            for i in range(nx):
                wi = -theta * hi_prev[i] * beta[i]
                wk[i] = wi
                beta[i] = 1.0 / (b_row[i] - -theta * lo[i] * wi)
            for i in range(nx):
                xi = (xk[i] - -theta * lo[i] * x_last[i]) * beta[i]
                xk[i] = xi
                x_last[i] = xi
    # back substitution from the top (x_last holds x_nz), adding the increments to q level by
    # level; x_last carries x_{k+1} down. The levels come from the array `down` (nz-1, ..., 1)
    # rather than a descending range: LLVM hoists the overlap checks of a loop whose rows are
    # affine in a descending k out of the k loop and then always fails them (negative stride).
    for k in down:
        qk = q[s, k + h, jh, h:h + nx]
        if k < nz - 1:
            xk = x[k]
            w_next = w[k + 1]
            for i in range(nx):
                xi = xk[i] - w_next[i] * x_last[i]
                x_last[i] = xi
                qk[i] += xi
        else:
            for i in range(nx):
                qk[i] += x_last[i]
    # ground level; deposited = dt v_d q_1^{n+1} with q_1^{n+1} = q_1^n + x_1
    q0 = q[s, h, jh, h:h + nx]
    x0 = x[0]
    dep_row = deposition[s, j]
    dep_out = deposited[s, j]
    if nz > 1:
        w_next = w[1]
        for i in range(nx):
            x0[i] -= w_next[i] * x_last[i]
    for i in range(nx):
        qi = q0[i]
        xi = x0[i]
        q0[i] = qi + xi
        dep_out[i] = dt * dep_row[i] * (qi + xi)


@parallel_kernel(lambda q, halo, rho_dz, *_: rho_dz.shape[1], exact=True)
@njit(cache=True, nogil=True, error_model="numpy")
def vertical_diffusion(start, stop, q, halo, rho_dz, conductance, deposition, emissions, dt, theta,
                       deposited):
    """One implicit step of vertical diffusion + emissions + dry deposition, in place on ``q``.

    Called as ``vertical_diffusion(q, halo, ...)``: rows ``start .. stop-1`` run on threads
    (:func:`.threads.parallel_kernel`).
    q: (nspec, nz+2h, ny+2h, nx+2h) mixing ratios (interior updated; ghosts not read).
    rho_dz: (nz, ny, nx) air mass per area rho dz, kg m-2.
    conductance: (nz+1, ny, nx) G from :func:`diffusion_conductance` (G[0], G[nz] ignored).
    deposition: (nspec, ny, nx) rho_1 v_d, kg m-2 s-1 (0 = no deposition).
    emissions: (nspec, ne, ny, nx) sources of the lowest ne layers, [q] kg m-2 s-1 (ne may be 0).
    dt: step, s. theta: implicitness in [0.5, 1].
    deposited: (nspec, ny, nx) receives dt rho_1 v_d q_1^{n+1}, [q] kg m-2.
    """
    nspec = q.shape[0]
    nz, ny, nx = rho_dz.shape
    # scratch allocated once per chunk of rows; each row's coefficient rows are built once and
    # shared by all species, then every column of the row is solved at once with the contiguous
    # x axis innermost (SIMD), level by level
    glo = np.empty((nz, nx))
    ghi = np.empty((nz, nx))
    bb = np.empty((nz, nx))
    w = np.empty((nz, nx))
    x = np.empty((nz, nx))
    beta = np.empty(nx)
    x_last = np.empty(nx)
    down = np.arange(nz - 1, 0, -1)
    for j in range(start, stop):
        _column_coefficients(j, rho_dz, conductance, dt, theta, glo, ghi, bb)
        for s in range(nspec):
            # the next species' row of every level is a jump of a whole species plane, which
            # the hardware prefetchers cannot foresee: ask for it while this one is solved
            nxt = s + 1 if s + 1 < nspec else 0
            jn = j if s + 1 < nspec else min(j + 1, stop - 1)
            prefetch_rows(emissions[nxt, :, jn], 0, 1)
            prefetch_rows(deposition[nxt, jn:jn + 1], 0, 1)
            prefetch_rows(deposited[nxt, jn:jn + 1], 0, 1)
            _solve_row(q, s, j, halo, rho_dz, deposition, emissions, dt, theta, deposited,
                       glo, ghi, bb, w, x, beta, x_last, down,
                       q[nxt, halo:halo + nz, jn + halo, halo:halo + nx])
