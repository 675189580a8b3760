"""Implicit vertical turbulent diffusion with emissions and dry deposition (numba).

SCIENCE.md 3.2: per column, mixing-ratio form, theta-scheme in time (theta = 1 backward Euler,
the operational default; 0.5 Crank-Nicolson):

    rho_k dz_k (q_k^{n+1} - q_k^n)/dt = theta D_k(q^{n+1}) + (1 - theta) D_k(q^n) + S_k
    D_k(q) = G_{k+1/2}(q_{k+1} - q_k) - G_{k-1/2}(q_k - q_{k-1}),   G_{1/2} = G_{N+1/2} = 0
    S_1 = E_1 - rho_1 v_d q_1^{n+1}  (implicit deposition),  S_k = E_k (elevated sources)

with G_{k+1/2} = rho_{k+1/2} K_{k+1/2} / (z_{k+1} - z_k) (kg m-2 s-1). Solved with the Thomas
algorithm, one column per loop iteration, for the increment q^{n+1} - q^n (so a uniform column
without sources stays exactly uniform). Backward Euler gives an M-matrix: positive, stable for
any dt, and the column mass sum(rho dz q) changes only by dt (sum E - rho_1 v_d q_1^{n+1}).

Units: q any mixing-ratio unit [q]; rho_dz = rho dz (kg m-2); emissions in [q] kg m-2 s-1 (for
q in kg kg-1: kg of species per m2 per s); deposition conductance rho_1 v_d in kg m-2 s-1; the
deposited amount returned per column is in [q] kg m-2 (kg m-2 of species for q in kg kg-1).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

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


@njit(cache=True, parallel=True)
def diffusion_conductance(rho, kz, z_centre, out):
    """Interface conductances G_{k+1/2} = rho_{k+1/2} K_{k+1/2} / (z_{k+1} - z_k), kg m-2 s-1.

    rho: (nz, ny, nx) air density at layer centres, kg m-3 (interface value = mean of the two
    neighbours); kz: (nz+1, ny, nx) eddy diffusivity at interfaces, m2 s-1 (interface k is the
    bottom of layer k; entries 0 and nz are ignored); z_centre: (nz, ny, nx) centre heights, m.
    out: (nz+1, ny, nx); out[0] = out[nz] = 0 (no flux through ground or model top).
    """
    nz, ny, nx = rho.shape
    for j in prange(ny):
        for i in range(nx):
            out[0, j, i] = 0.0
            out[nz, j, i] = 0.0
            for k in range(1, nz):
                rhof = 0.5 * (rho[k - 1, j, i] + rho[k, j, i])
                out[k, j, i] = rhof * kz[k, j, i] / (z_centre[k, j, i] - z_centre[k - 1, j, i])


@njit(cache=True, parallel=True)
def vertical_diffusion(q, halo, rho_dz, conductance, deposition, emissions, dt, theta,
                       deposited):
    """One implicit step of vertical diffusion + emissions + dry deposition, in place on ``q``.

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
    ne = emissions.shape[1]
    h = halo
    for j in prange(ny):
        a = np.empty(nz)
        b = np.empty(nz)
        c = np.empty(nz)
        d = np.empty(nz)
        x = np.empty(nz)
        work = np.empty(nz)
        glo = np.empty(nz)
        ghi = np.empty(nz)
        for i in range(nx):
            for k in range(nz):
                inv = dt / rho_dz[k, j, i]
                glo[k] = inv * conductance[k, j, i] if k > 0 else 0.0
                ghi[k] = inv * conductance[k + 1, j, i] if k < nz - 1 else 0.0
                a[k] = -theta * glo[k]
                c[k] = -theta * ghi[k]
            for s in range(nspec):
                # solve for the increment x = q^{n+1} - q^n: a uniform column stays exactly uniform
                for k in range(nz):
                    b[k] = 1.0 - a[k] - c[k]
                    qk = q[s, k + h, j + h, i + h]
                    rhs = 0.0
                    if k > 0:
                        rhs -= glo[k] * (qk - q[s, k + h - 1, j + h, i + h])
                    if k < nz - 1:
                        rhs += ghi[k] * (q[s, k + h + 1, j + h, i + h] - qk)
                    if k < ne:
                        rhs += dt * emissions[s, k, j, i] / rho_dz[k, j, i]
                    d[k] = rhs
                vd = deposition[s, j, i]
                dep_coef = dt * vd / rho_dz[0, j, i]
                q0 = q[s, h, j + h, i + h]
                b[0] += dep_coef
                d[0] -= dep_coef * q0
                thomas_solve(a, b, c, d, x, work)
                for k in range(nz):
                    q[s, k + h, j + h, i + h] += x[k]
                deposited[s, j, i] = dt * vd * (q0 + x[0])
