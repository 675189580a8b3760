"""Ensemble transform Kalman filters: global ETKF and localized LETKF.

Scheme: Hunt, Kostelich & Szunyogh (2007), "Efficient data assimilation for spatiotemporal
chaos: a local ensemble transform Kalman filter", Physica D 230, 112-126 (their steps 1-9).
With k members, background perturbations ``Xb'`` (mean removed) and observation-space
perturbations ``Yb' = H(x_m) - mean_m H(x_m)``, each analysis point solves in ensemble space

    A     = (k - 1) / rho I + Yb' R^-1 Yb'^T          (k x k, rows of Yb' = members)
    A     = Q diag(lam) Q^T                           (symmetric eigendecomposition)
    wbar  = Q diag(1/lam) Q^T Yb' R^-1 (y - ybar)     (mean weights, Hunt eq. 24)
    W     = sqrt(k - 1) Q diag(lam^-1/2) Q^T          (symmetric square root, Hunt eq. 25)
    xa_m  = xbar + sum_a Xb'_a (W_am + wbar_a)

``rho`` >= 1 is multiplicative covariance inflation (Hunt sec. 2.3: the background covariance
is rho Xb'^T Xb' / (k - 1)); :mod:`.inflation` estimates it from the innovations (adaptive,
Li et al. 2009 / Miyoshi 2011) and relaxes the analysis spread to the prior's (RTPS). The
symmetric square root keeps the analysis perturbations mean-free and closest to the background
ones.

Localisation (LETKF) is R-localisation (Hunt sec. 2.3, eq. 26 alternative): at grid point i the
observations within ``2 c`` are used, each with inverse error variance ``rho_ij / R_j`` where
``rho_ij`` is the Gaspari & Cohn (1999, QJRMS 125, 723, eq. 4.10) correlation of the distance
with half-width ``c = radius_km`` (exactly 0 from ``2 c`` on). Observations are found with a
:class:`scipy.spatial.cKDTree` (optionally periodic). A point with no observation in reach keeps
its background members (inflated by ``sqrt(rho)`` about the mean when ``rho != 1``).

Shapes: ensembles are member-major, ``Xb (k, n)``, ``Yb (k, nobs)``; coordinates in km.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.spatial import cKDTree

from aqforecast.kernels.threads import parallel_kernel

from .oi import gaspari_cohn

__all__ = ["LocalObservations", "local_observations", "mean_preserving_rotation",
           "etkf_analysis", "letkf_analysis"]


@njit(cache=True, nogil=True)
def _ensemble_transform(A, b, k, inflation, W, wbar):
    """Hunt et al. (2007) ensemble-space solve. A: (k, k) ``Yb' R^-1 Yb'^T`` (overwritten),
    b: (k,) ``Yb' R^-1 (y - ybar)``. Writes W (k, k) = sqrt(k-1) A~^-1/2 and wbar (k,) =
    A~^-1 b with ``A~ = A + (k-1)/inflation I``."""
    for a in range(k):
        A[a, a] += (k - 1) / inflation
    lam, Q = np.linalg.eigh(A)
    s = np.sqrt(k - 1.0)
    for a in range(k):
        # wbar = Q diag(1/lam) Q^T b
        wbar[a] = 0.0
    for c in range(k):
        qb = 0.0
        for a in range(k):
            qb += Q[a, c] * b[a]
        qb /= lam[c]
        for a in range(k):
            wbar[a] += Q[a, c] * qb
    for a in range(k):
        for m in range(k):
            acc = 0.0
            for c in range(k):
                acc += Q[a, c] * Q[m, c] / np.sqrt(lam[c])
            W[a, m] = s * acc


@parallel_kernel(lambda Xa, *_: Xa.shape[1])
@njit(cache=True, nogil=True)
def _letkf_points(start, stop, Xa, Xb, xmean, Xp, YpT, d, rinv, indptr, idx, rho, inflation,
                  omega):
    """LETKF analysis of grid points ``start .. stop-1`` (Hunt et al. 2007, steps 3-8).

    Xa, Xb, Xp: (k, n) analysis / background members / background perturbations; xmean (n,);
    YpT: (nobs, k) observation-space perturbations (transposed for contiguous rows); d (nobs,)
    = y - ybar; rinv (nobs,) = 1 / R; indptr (n+1,), idx, rho (nnz,): CSR lists of the
    observations in reach of each point and their localisation weights; omega (k, k): the
    mean-preserving rotation applied to W (identity for none).
    """
    k = Xb.shape[0]
    A = np.empty((k, k))
    b = np.empty(k)
    W = np.empty((k, k))
    WR = np.empty((k, k))
    wbar = np.empty(k)
    sinf = np.sqrt(inflation)
    for i in range(start, stop):
        p0 = indptr[i]
        p1 = indptr[i + 1]
        if p0 == p1:
            if inflation == 1.0:
                for m in range(k):
                    Xa[m, i] = Xb[m, i]
            else:
                for m in range(k):
                    Xa[m, i] = xmean[i] + sinf * Xp[m, i]
            continue
        A[:, :] = 0.0
        b[:] = 0.0
        for q in range(p0, p1):
            j = idx[q]
            w = rinv[j] * rho[q]
            for a in range(k):
                ya = YpT[j, a] * w
                b[a] += ya * d[j]
                for c in range(k):
                    A[a, c] += ya * YpT[j, c]
        _ensemble_transform(A, b, k, inflation, W, wbar)
        for a in range(k):
            for m in range(k):
                acc = 0.0
                for c in range(k):
                    acc += W[a, c] * omega[c, m]
                WR[a, m] = acc + wbar[a]
        for m in range(k):
            acc = xmean[i]
            for a in range(k):
                acc += Xp[a, i] * WR[a, m]
            Xa[m, i] = acc


@dataclass(frozen=True)
class LocalObservations:
    """Observations in reach of each grid point, CSR layout.

    indptr: (n+1,) int64; idx: (nnz,) int64 observation indices; rho: (nnz,) Gaspari-Cohn
    weights in (0, 1]; the observations of point i are ``idx[indptr[i]:indptr[i+1]]``.
    """

    indptr: np.ndarray
    idx: np.ndarray
    rho: np.ndarray

    @property
    def n(self) -> int:
        return self.indptr.shape[0] - 1


def _separation(a, b, period):
    """Coordinate differences a - b (m, 2), wrapped to the nearest image where period > 0."""
    dx = a - b
    if period is not None:
        p = np.asarray(period, dtype=np.float64)
        for k in range(dx.shape[1]):
            if p[k] > 0:
                dx[:, k] -= p[k] * np.round(dx[:, k] / p[k])
    return dx


def local_observations(cell_xy, obs_xy, radius_km, period=None) -> LocalObservations:
    """Observations within the Gaspari-Cohn cutoff ``2 radius_km`` of each cell and their
    weights ``rho = GC(dist / radius_km)`` (Gaspari & Cohn 1999, eq. 4.10).

    cell_xy: (n, 2) km; obs_xy: (nobs, 2) km; radius_km: half-width c (``inf``: every
    observation with weight 1); period: optional (Px, Py) km for a periodic domain (0 = not
    periodic in that direction). Observations with weight 0 (at distance >= 2 c) are dropped.
    """
    cell_xy = np.asarray(cell_xy, dtype=np.float64).reshape(-1, 2)
    obs_xy = np.asarray(obs_xy, dtype=np.float64).reshape(-1, 2)
    n, nobs = cell_xy.shape[0], obs_xy.shape[0]
    if not np.isfinite(radius_km):
        indptr = np.arange(n + 1, dtype=np.int64) * nobs
        return LocalObservations(indptr, np.tile(np.arange(nobs, dtype=np.int64), n),
                                 np.ones(n * nobs))
    if radius_km <= 0:
        raise ValueError("radius_km must be positive")
    if nobs == 0:
        return LocalObservations(np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if period is not None:
        p = np.asarray(period, dtype=np.float64)
        wrap = lambda xy: np.where(p > 0, np.mod(xy, np.where(p > 0, p, 1.0)), xy)  # noqa: E731
        tree = cKDTree(wrap(obs_xy), boxsize=p)
        lists = tree.query_ball_point(wrap(cell_xy), r=2.0 * radius_km)
    else:
        tree = cKDTree(obs_xy)
        lists = tree.query_ball_point(cell_xy, r=2.0 * radius_km)
    counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=n)
    idx = np.fromiter((j for x in lists for j in sorted(x)), dtype=np.int64,
                      count=int(counts.sum()))
    rows = np.repeat(np.arange(n), counts)
    dist = np.hypot(*_separation(cell_xy[rows], obs_xy[idx], period).T)
    rho = gaspari_cohn(dist, radius_km)
    keep = rho > 0.0
    counts = np.bincount(rows[keep], minlength=n)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return LocalObservations(indptr, idx[keep], rho[keep])


def mean_preserving_rotation(k: int, rng: np.random.Generator) -> np.ndarray:
    """Random orthogonal (k, k) matrix Omega with ``Omega 1 = 1`` (Haar on the complement of the
    ones vector; Sakov & Oke 2008 "random rotation"). Right-multiplying the transform W by it
    keeps the analysis mean and covariance and randomises the perturbations."""
    basis, _ = np.linalg.qr(np.column_stack([np.ones(k), rng.standard_normal((k, k - 1))]))
    V = basis[:, 1:]
    q, r = np.linalg.qr(rng.standard_normal((k - 1, k - 1)))
    q = q * np.sign(np.diag(r))
    return np.full((k, k), 1.0 / k) + V @ q @ V.T


def _prepare(Xb, Yb, y, R_diag):
    Xb = np.ascontiguousarray(Xb, dtype=np.float64)
    Yb = np.ascontiguousarray(Yb, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    R_diag = np.asarray(R_diag, dtype=np.float64)
    k = Xb.shape[0]
    if Yb.shape[0] != k or Yb.shape[1] != y.shape[0] or R_diag.shape != y.shape:
        raise ValueError("shapes: Xb (k, n), Yb (k, nobs), y (nobs,), R_diag (nobs,)")
    if k < 2:
        raise ValueError("need at least 2 members")
    if np.any(R_diag <= 0):
        raise ValueError("R_diag must be positive")
    xmean = Xb.mean(axis=0)
    ymean = Yb.mean(axis=0)
    return Xb, xmean, Xb - xmean, Yb - ymean, y - ymean, 1.0 / R_diag


def etkf_analysis(Xb, Yb, y, R_diag, inflation: float = 1.0, rotation=None) -> np.ndarray:
    """Global ensemble transform Kalman filter analysis (Hunt et al. 2007 without localisation;
    Bishop et al. 2001 / Wang et al. 2004 symmetric-square-root form).

    Xb: (k, n) background members; Yb: (k, nobs) observed members ``H(x_m)``; y: (nobs,)
    observations; R_diag: (nobs,) observation error variances (y units squared); inflation:
    multiplicative covariance inflation rho >= 1; rotation: None, or a numpy Generator to apply
    a random mean-preserving rotation to the transform (Sakov & Oke 2008). Returns Xa (k, n).
    """
    Xb, xmean, Xp, Yp, d, rinv = _prepare(Xb, Yb, y, R_diag)
    k = Xb.shape[0]
    C = Yp * rinv                       # (k, nobs) = Yb' R^-1
    A = np.ascontiguousarray(C @ Yp.T)
    b = C @ d
    W = np.empty((k, k))
    wbar = np.empty(k)
    _ensemble_transform(A, b, k, float(inflation), W, wbar)
    if rotation is not None:
        W = W @ mean_preserving_rotation(k, rotation)
    return xmean + (W + wbar[:, None]).T @ Xp


def letkf_analysis(Xb, Yb, y, R_diag, cell_xy, obs_xy, radius_km, inflation: float = 1.0, *,
                   period=None, local: LocalObservations | None = None,
                   rotation=None, rtps_alpha: float = 0.0) -> np.ndarray:
    """Local ensemble transform Kalman filter analysis (Hunt, Kostelich & Szunyogh 2007).

    Xb: (k, n) background members on n grid points; Yb: (k, nobs) observed members ``H(x_m)``;
    y: (nobs,) observations; R_diag: (nobs,) observation error variances; cell_xy: (n, 2) and
    obs_xy: (nobs, 2) coordinates, km; radius_km: Gaspari-Cohn half-width c (observations beyond
    2 c are ignored; ``inf`` = global ETKF at every point); inflation: multiplicative rho >= 1;
    period: optional (Px, Py) km of a periodic domain (0 = not periodic); local: precomputed
    :func:`local_observations` (then cell_xy, obs_xy, radius_km, period are not used; reuse it
    when the network is fixed); rotation: None or a numpy Generator for one random
    mean-preserving rotation shared by all points; rtps_alpha: relaxation of the analysis
    spread to the background's (Whitaker & Hamill 2012, :func:`.inflation.
    relax_to_prior_spread`; 0 = off). Each point is solved independently (numba, threaded
    over points). Returns Xa (k, n).
    """
    Xb, xmean, Xp, Yp, d, rinv = _prepare(Xb, Yb, y, R_diag)
    k, n = Xb.shape
    if local is None:
        local = local_observations(cell_xy, obs_xy, radius_km, period)
    if local.n != n:
        raise ValueError(f"local observation lists for {local.n} points, state has {n}")
    omega = np.eye(k) if rotation is None else mean_preserving_rotation(k, rotation)
    Xa = np.empty_like(Xb)
    _letkf_points(Xa, Xb, xmean, np.ascontiguousarray(Xp), np.ascontiguousarray(Yp.T), d, rinv,
                  local.indptr, local.idx, np.ascontiguousarray(local.rho, dtype=np.float64),
                  float(inflation), omega)
    if rtps_alpha:
        from .inflation import relax_to_prior_spread

        Xa = relax_to_prior_spread(Xa, Xb, rtps_alpha)
    return Xa
