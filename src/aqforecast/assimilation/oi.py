"""Optimal interpolation (OI) of a gridded state, solved in observation space.

Scheme (Lorenc 1986, QJRMS 112, 1177-1194; Daley 1991, *Atmospheric Data Analysis*, ch. 4-5):
the best linear unbiased estimate for a background ``xb`` with error covariance ``B`` and
observations ``y = H x + eps``, ``eps ~ N(0, R)`` with diagonal ``R``, is

    d  = y - H xb                                   (innovation, O-B)
    S  = H B H^T + R                                (innovation covariance, nobs x nobs)
    xa = xb + B H^T S^-1 d
    Pa = (I - K H) B,   K = B H^T S^-1,   diag(Pa)_i = B_ii - sum_j (B H^T)_ij (S^-1 H B)_ji

``S`` is factorised once by Cholesky (:func:`scipy.linalg.cho_factor`). The n x n matrix ``B``
is never formed for a distance-based covariance: only the columns of ``B`` at the (at most four
per station, bilinear) cells that ``H`` touches are evaluated from the cell coordinates, giving
``B H^T`` (n x nobs) and ``H B H^T = H (B H^T)`` exactly.

Background covariance model (:class:`DistanceCovariance`):
``B_ij = sigma_i sigma_j rho(|x_i - x_j| / L)`` with ``rho`` the Gaspari & Cohn (1999, QJRMS
125, 723-757, eq. 4.10) fifth-order compactly supported correlation (``rho = 0`` beyond
distance ``2 L``; ``L`` is the half-width) or the Gaussian ``exp(-d^2 / (2 L^2))``. Coordinates
and lengths are in km; ``sigma`` in the state's units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from numba import njit

from aqforecast.kernels.threads import parallel_kernel

__all__ = ["gaspari_cohn", "DistanceCovariance", "OIDiagnostics", "observation_operator",
           "observed_covariance", "optimal_interpolation"]

#: Correlation function codes of :class:`DistanceCovariance` (numba kernels take the integer).
KINDS = {"gaspari_cohn": 0, "gaussian": 1}


@njit(cache=True, inline="always")
def _gc_scalar(z):
    """Gaspari-Cohn (1999, eq. 4.10) correlation at the scaled distance ``z = d / c >= 0``."""
    if z >= 2.0:
        return 0.0
    if z <= 1.0:
        z2 = z * z
        return (((-0.25 * z + 0.5) * z + 0.625) * z - 5.0 / 3.0) * z2 + 1.0
    return ((((z / 12.0 - 0.5) * z + 0.625) * z + 5.0 / 3.0) * z - 5.0) * z + 4.0 - 2.0 / (3.0 * z)


@njit(cache=True, inline="always")
def _corr(d, length, kind):
    """Correlation at distance ``d`` (km) for half-width / e-folding ``length`` (km)."""
    if kind == 0:
        return _gc_scalar(d / length)
    return np.exp(-0.5 * (d / length) ** 2)


def gaspari_cohn(dist, c):
    """Gaspari & Cohn (1999, QJRMS 125, 723, eq. 4.10) fifth-order piecewise-rational
    correlation, elementwise.

    dist: array of distances >= 0 (any unit); c: half-width in the same unit (the function is
    exactly 0 for ``dist >= 2 c``; ``c = inf`` gives 1 everywhere). Returns float64 array of
    dist's shape, in [0, 1], equal to 1 at 0.
    """
    z = np.abs(np.asarray(dist, dtype=np.float64)) / float(c)
    out = np.zeros_like(z)
    m1 = z <= 1.0
    m2 = (z > 1.0) & (z < 2.0)
    a = z[m1]
    out[m1] = (((-0.25 * a + 0.5) * a + 0.625) * a - 5.0 / 3.0) * a * a + 1.0
    b = z[m2]
    out[m2] = ((((b / 12.0 - 0.5) * b + 0.625) * b + 5.0 / 3.0) * b - 5.0) * b + 4.0 \
        - 2.0 / (3.0 * b)
    return out


@parallel_kernel(lambda out, *_: out.shape[0])
@njit(cache=True, nogil=True)
def _covariance_columns(start, stop, out, xy, sigma, cols, length, kind):
    """Rows ``start .. stop-1`` of ``out[i, m] = sigma_i sigma_c rho(|xy_i - xy_c| / L)`` with
    ``c = cols[m]``: out (n, ncols), xy (n, 2) km, sigma (n,), cols (ncols,) int64."""
    for i in range(start, stop):
        xi = xy[i, 0]
        yi = xy[i, 1]
        si = sigma[i]
        for m in range(cols.shape[0]):
            c = cols[m]
            d = np.sqrt((xi - xy[c, 0]) ** 2 + (yi - xy[c, 1]) ** 2)
            out[i, m] = si * sigma[c] * _corr(d, length, kind)


@dataclass(frozen=True)
class DistanceCovariance:
    """Homogeneous-correlation background error covariance on grid cells (never stored n x n).

    ``B_ij = sigma_i sigma_j rho(d_ij / length_km)``. xy: (n, 2) cell-centre coordinates, km
    (a projected plane: d is the Euclidean distance); sigma: scalar or (n,) background error
    standard deviation, state units; length_km: Gaspari-Cohn half-width ``c`` (support
    ``2 c``) or Gaussian length scale; kind: ``"gaspari_cohn"`` or ``"gaussian"``.
    Calling it with an index array ``cols`` returns the columns ``B[:, cols]`` (n, len(cols)).
    """

    xy: np.ndarray
    sigma: np.ndarray | float
    length_km: float
    kind: str = "gaspari_cohn"

    @property
    def n(self) -> int:
        return int(np.shape(self.xy)[0])

    def _sigma(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.sigma, dtype=np.float64), (self.n,)).copy()

    def diag(self) -> np.ndarray:
        """Background error variances ``B_ii = sigma_i^2`` (n,)."""
        return self._sigma() ** 2

    def __call__(self, cols) -> np.ndarray:
        cols = np.ascontiguousarray(cols, dtype=np.int64)
        xy = np.ascontiguousarray(self.xy, dtype=np.float64)
        out = np.empty((self.n, cols.shape[0]))
        _covariance_columns(out, xy, self._sigma(), cols, float(self.length_km),
                            KINDS[self.kind])
        return out

    def dense(self) -> np.ndarray:
        """The full n x n matrix (for tests and small grids only)."""
        return self(np.arange(self.n))


@dataclass(frozen=True)
class OIDiagnostics:
    """Innovation statistics of one analysis (Desroziers-style consistency checks).

    omb: (nobs,) O-B = y - H xb; oma: (nobs,) O-A = y - H xa; chi2: ``d^T S^-1 d / nobs``
    (expected 1 when B and R are correct); pa_diag: (n,) analysis error variance diag(Pa), state
    units squared, or None when not requested.
    """

    omb: np.ndarray
    oma: np.ndarray
    chi2: float
    nobs: int
    pa_diag: np.ndarray | None = None


def observation_operator(obs_index_or_H, n: int) -> sp.csr_matrix:
    """The linear observation operator as a CSR matrix (nobs, n).

    Accepts an integer array of cell indices (observation = value of that cell), a scipy sparse
    matrix (e.g. bilinear weights of up to 4 cells per station, rows summing to 1) or a dense
    (nobs, n) array.
    """
    if sp.issparse(obs_index_or_H):
        H = sp.csr_matrix(obs_index_or_H, dtype=np.float64)
    else:
        a = np.asarray(obs_index_or_H)
        if a.ndim == 1 and np.issubdtype(a.dtype, np.integer):
            H = sp.csr_matrix((np.ones(a.size), (np.arange(a.size), a)), shape=(a.size, n))
        elif a.ndim == 2:
            H = sp.csr_matrix(a.astype(np.float64))
        else:
            raise TypeError("obs_index_or_H: integer index array, sparse or dense (nobs, n)")
    if H.shape[1] != n:
        raise ValueError(f"H has {H.shape[1]} columns for a state of {n} cells")
    return H


def _bht(B, H: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``B H^T`` (n, nobs) and ``diag(B)`` (n,) from B as a dense array, a
    :class:`DistanceCovariance` or a callable ``cols -> B[:, cols]``. Only the columns of B at
    the cells H touches are evaluated."""
    cols = np.unique(H.indices).astype(np.int64)
    Hc = H[:, cols]  # (nobs, ncols)
    if isinstance(B, np.ndarray):
        return np.asarray(Hc @ B[:, cols].T).T, np.diag(B).copy()
    if callable(B):
        bcols = np.asarray(B(cols), dtype=np.float64)
        bdiag = B.diag() if hasattr(B, "diag") else None
        return np.asarray(Hc @ bcols.T).T, bdiag
    raise TypeError("B: ndarray (n, n), DistanceCovariance or callable cols -> B[:, cols]")


def observed_covariance(B, H: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``H B H^T`` (nobs, nobs, symmetrised), ``B H^T`` (n, nobs) and ``diag(B)`` (or None) for
    B as :func:`optimal_interpolation` takes it; only B's columns at the cells H reads are
    evaluated."""
    bht, bdiag = _bht(B, H)
    S = np.asarray(H @ bht)
    return 0.5 * (S + S.T), bht, bdiag


def optimal_interpolation(xb, obs_index_or_H, y, R_diag, B=None, *, cell_xy=None, sigma_b=None,
                          length_km=None, kind: str = "gaspari_cohn", return_pa_diag=False,
                          B_diag=None) -> tuple[np.ndarray, OIDiagnostics]:
    """Optimal interpolation analysis ``xa = xb + B H^T (H B H^T + R)^-1 (y - H xb)``.

    Lorenc (1986) / Daley (1991) BLUE, solved in observation space with a Cholesky factor of
    ``S = H B H^T + R`` (nobs x nobs); cost O(n nnz(H) + nobs^3), memory O(n nobs).

    xb: (n,) background state (any units, e.g. ug m-3) on the flattened grid.
    obs_index_or_H: (nobs,) integer cell indices, or (nobs, n) scipy.sparse / dense operator
        (station = bilinear weights of up to 4 cells).
    y: (nobs,) observations, state units. R_diag: (nobs,) observation error variances (> 0).
    B: background error covariance: dense (n, n) array, :class:`DistanceCovariance`, or a
        callable ``cols -> B[:, cols]`` (n, len(cols)); with ``None`` a DistanceCovariance is
        built from ``cell_xy`` (n, 2) km, ``sigma_b`` (scalar or (n,)), ``length_km`` and
        ``kind``.
    return_pa_diag: also compute diag(Pa) (n,) (O(n nobs^2) extra); needs diag(B), taken from
        the array / DistanceCovariance or given as ``B_diag`` (n,) for a plain callable.

    Returns ``(xa (n,), OIDiagnostics)``.
    """
    xb = np.asarray(xb, dtype=np.float64)
    n = xb.shape[0]
    y = np.asarray(y, dtype=np.float64)
    R_diag = np.asarray(R_diag, dtype=np.float64)
    if B is None:
        if cell_xy is None or sigma_b is None or length_km is None:
            raise ValueError("B=None needs cell_xy, sigma_b and length_km")
        B = DistanceCovariance(np.asarray(cell_xy, dtype=np.float64), sigma_b, length_km, kind)
    H = observation_operator(obs_index_or_H, n)
    nobs = H.shape[0]
    if y.shape != (nobs,) or R_diag.shape != (nobs,):
        raise ValueError(f"y and R_diag must have shape ({nobs},)")
    if np.any(R_diag <= 0):
        raise ValueError("R_diag must be positive")
    S, bht, bdiag = observed_covariance(B, H)    # H B H^T (nobs, nobs), B H^T (n, nobs)
    S[np.diag_indices(nobs)] += R_diag
    cf = scipy.linalg.cho_factor(S, lower=True, check_finite=False)
    d = y - H @ xb
    w = scipy.linalg.cho_solve(cf, d, check_finite=False)
    xa = xb + bht @ w
    chi2 = float(d @ w) / nobs if nobs else float("nan")
    pa_diag = None
    if return_pa_diag:
        if bdiag is None:
            bdiag = B_diag
        if bdiag is None:
            raise ValueError("return_pa_diag needs diag(B): pass B_diag for a callable B")
        # diag(B H^T S^-1 H B) = column sums of (L^-1 H B)^2 with S = L L^T
        v = scipy.linalg.solve_triangular(cf[0], bht.T, lower=True, check_finite=False)
        pa_diag = np.asarray(bdiag, dtype=np.float64) - np.einsum("ji,ji->i", v, v)
    diag = OIDiagnostics(omb=d, oma=y - H @ xa, chi2=chi2, nobs=nobs, pa_diag=pa_diag)
    return xa, diag
