"""Generic numba kernels for stiff chemistry: dense LU, Rosenbrock tableaux, error norms.

Mechanism-specific functions (rates, Jacobian, the per-cell integrators) are generated and compiled
by :mod:`aqforecast.chemistry.codegen`; they call the small building blocks defined here. Numpy
arrays in, numpy arrays out; no Python objects inside the kernels (DESIGN.md layer 1).

The Rosenbrock integrators solve their linear systems with a sparse LU without pivoting that is
generated per mechanism (KPP style, see :mod:`aqforecast.chemistry.codegen`); the dense
partial-pivoting :func:`lu_factor` / :func:`lu_solve` here are its fallback for a step with a
bad pivot, the ``lu="dense"`` reference, and the small solve of the mass fixer.

Rosenbrock coefficients are those of KPP's ``Rosenbrock`` integrator (Sandu et al. 1997,
Atmos. Environ. 31, 3459; Hairer & Wanner 1996, *Solving ODEs II*), in KPP's storage convention:
the strictly lower triangular A and C are stored row-wise, ``A(i,j) = a[(i-1)(i-2)/2 + j]``
(1-based), and every stage solves ``(1/(h gamma_1) I - J) K_i = F_i + sum_j C_ij/h K_j``.
ROS3 and RODAS3 coefficients were checked against KPP-generated code in WRF-Chem
(``*_Integrator.f90``: ``Ros3``, ``Rodas3``); ROS2 is Verwer et al. (1999, SIAM J. Sci. Comput. 20,
1456) in KPP form with gamma = 1 + 1/sqrt(2).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "rosenbrock_tableau", "ROSENBROCK_METHODS", "lu_factor", "lu_solve", "error_norm",
    "qssa_quadratic_root",
]

ROSENBROCK_METHODS = ("ros2", "ros3", "rodas3")


def rosenbrock_tableau(name: str):
    """Return ``(a, c, m, e, newf, gamma1, elo)`` arrays of the Rosenbrock method ``name``.

    ``a``, ``c``: packed strictly-lower-triangular stage coefficients (length s(s-1)/2);
    ``m``: solution weights; ``e``: error-estimate weights; ``newf``: 1 where the stage needs a new
    function evaluation; ``gamma1``: diagonal coefficient; ``elo``: order used in step control.
    """
    name = name.lower()
    if name == "ros2":
        g = 1.0 + 1.0 / math.sqrt(2.0)
        a = [1.0 / g]
        c = [-2.0 / g]
        m = [3.0 / (2.0 * g), 1.0 / (2.0 * g)]
        e = [1.0 / (2.0 * g), 1.0 / (2.0 * g)]
        newf = [1, 1]
        gamma1, elo = g, 2.0
    elif name == "ros3":
        a = [1.0, 1.0, 0.0]
        c = [-0.10156171083877702091975600115545e01, 0.40759956452537699824805835358067e01,
             0.92076794298330791242156818474003e01]
        m = [1.0, 0.61697947043828245592553615689730e01, -0.42772256543218573326238373806514]
        e = [0.5, -0.29079558716805469821718236208017e01, 0.22354069897811569627360909276199]
        newf = [1, 1, 0]
        gamma1, elo = 0.43586652150845899941601945119356, 3.0
    elif name == "rodas3":
        a = [0.0, 2.0, 0.0, 2.0, 0.0, 1.0]
        c = [4.0, 1.0, -1.0, 1.0, -1.0, -8.0 / 3.0]
        m = [2.0, 0.0, 1.0, 1.0]
        e = [0.0, 0.0, 0.0, 1.0]
        newf = [1, 0, 1, 1]
        gamma1, elo = 0.5, 3.0
    else:
        raise ValueError(f"unknown Rosenbrock method {name!r}; "
                         f"expected one of {ROSENBROCK_METHODS}")
    f = np.asarray
    return (f(a, dtype=np.float64), f(c, dtype=np.float64), f(m, dtype=np.float64),
            f(e, dtype=np.float64), f(newf, dtype=np.int64), float(gamma1), float(elo))


@njit(cache=True)
def lu_factor(a, piv):
    """In-place LU factorisation with partial pivoting of the square matrix ``a``.

    Returns False when a pivot is exactly zero (singular matrix)."""
    n = a.shape[0]
    for k in range(n):
        p = k
        big = abs(a[k, k])
        for i in range(k + 1, n):
            v = abs(a[i, k])
            if v > big:
                big = v
                p = i
        piv[k] = p
        if big == 0.0:
            return False
        if p != k:
            for j in range(n):
                t = a[k, j]
                a[k, j] = a[p, j]
                a[p, j] = t
        inv = 1.0 / a[k, k]
        for i in range(k + 1, n):
            if a[i, k] != 0.0:
                f = a[i, k] * inv
                a[i, k] = f
                for j in range(k + 1, n):
                    a[i, j] -= f * a[k, j]
    return True


@njit(cache=True)
def lu_solve(a, piv, b):
    """Solve ``A x = b`` in place in ``b`` from the factors of :func:`lu_factor`."""
    n = a.shape[0]
    for k in range(n):
        p = piv[k]
        if p != k:
            t = b[k]
            b[k] = b[p]
            b[p] = t
    for i in range(n):
        s = b[i]
        for j in range(i):
            s -= a[i, j] * b[j]
        b[i] = s
    for i in range(n - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, n):
            s -= a[i, j] * b[j]
        b[i] = s / a[i, i]


@njit(cache=True)
def error_norm(err, y0, y1, atol, rtol):
    """KPP's scaled RMS error norm ``sqrt(mean((err / (atol + rtol max(|y0|,|y1|)))**2))``."""
    n = err.shape[0]
    s = 0.0
    for i in range(n):
        sc = atol[i] + rtol * max(abs(y0[i]), abs(y1[i]))
        q = err[i] / sc
        s += q * q
    return math.sqrt(s / max(n, 1))


@njit(cache=True)
def qssa_quadratic_root(a0, a1, a2):
    """Non-negative root of ``a0 + a1 c + a2 c**2 = 0`` for a steady-state species.

    With production ``a0 >= 0`` and losses ``a1, a2 <= 0`` this is the unique non-negative root,
    written in the cancellation-free form ``c = 2 a0 / (-a1 + sqrt(a1**2 - 4 a0 a2))``
    (HYSPLIT-GRS radical pool, SCIENCE.md 5.1)."""
    if a0 <= 0.0:
        return 0.0
    disc = a1 * a1 - 4.0 * a0 * a2
    if disc < 0.0:
        disc = 0.0
    den = -a1 + math.sqrt(disc)
    if den <= 0.0:
        return 0.0
    return 2.0 * a0 / den
