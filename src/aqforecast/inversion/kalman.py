"""Linear-Gaussian (Kalman filter) update of ln(emission scaling factors): pure array algebra.

State and observations
----------------------
``x`` (n,) is the vector of ln(emission scaling factors) f per (region, sector, pollutant)
(dimensionless; ``x = 0`` is the base inventory, ``sigma_ln = 0.5`` is a 1-sigma factor of
``exp(0.5) = 1.65``). Observations ``y`` (m,) (obs units, e.g. ug m-3) are linearised around the
prior run,

    y = y_b + H (x - x_b) + eps,    eps ~ N(0, R),  R = diag(R_diag)  (obs units^2)

with ``H`` (m, n) the Jacobian dy/d ln f (obs units; from the tagged prior run) and
``d = y - y_b`` (m,) the innovations (observation minus prior run, O-B).

Analytical inversion (Rodgers 2000, *Inverse Methods for Atmospheric Sounding*, ch. 2-4;
Brasseur & Jacob 2017, *Modeling of Atmospheric Chemistry*, ch. 11.5 "analytical inversion")
----------------------------------------------------------------------------------------------
The Bayesian posterior of the linear-Gaussian problem is

    x_a = x_b + (B^-1 + H^T R^-1 H)^-1 H^T R^-1 d = x_b + K d,     K = B H^T S^-1
    P_a = (B^-1 + H^T R^-1 H)^-1 = (I - K H) B,                     S = H B H^T + R

solved here without forming ``B^-1`` and in the smaller of the two spaces: for ``m >= n`` in the
prior-whitened state space (``B = L L^T`` by Cholesky, ``H~ = R^-1/2 H L``, ``M = I + H~^T H~``,
whose eigenvalues are >= 1, so ``M`` is always well conditioned; ``x_a = x_b + L M^-1 H~^T
R^-1/2 d``, ``P_a = L M^-1 L^T``), for ``m < n`` in observation space (Cholesky of ``S``).

Diagnostics (Rodgers 2000, sect. 2.4 and 3.1; Brasseur & Jacob 2017, sect. 11.5.3):

* averaging kernel ``A = dx_a/dx = I - P_a B^-1 = K H`` (n, n);
* degrees of freedom for signal ``DOFS = trace(A)``, in [0, min(n, m)]
  (``= sum_i s_i^2 / (1 + s_i^2)`` with ``s_i`` the singular values of ``H~``);
* ``chi2 = d^T S^-1 d / m``, expected 1 when B and R are consistent with the data (``d ~ N(0, S)``);
  computed as the minimum of the cost function, ``d^T S^-1 d = |R^-1/2 (d - H dx_a)|^2 +
  dx_a^T B^-1 dx_a`` (a sum of squares, no cancellation).

Kalman filter (Evensen 2009, *Data Assimilation: The Ensemble Kalman Filter*, ch. 3; filterpy
``filterpy.kalman.KalmanFilter``, https://filterpy.readthedocs.io/en/latest/kalman/)
-----------------------------------------------------------------------------------------------
The same update is also made by filterpy's :class:`~filterpy.kalman.KalmanFilter`, whose
``update`` computes ``K = P H^T S^-1`` with ``S^-1`` by ``numpy.linalg.inv`` and the Joseph form
``P = (I - K H) P (I - K H)^T + K R K^T``. For the optimal gain the Joseph form equals
``(I - K H) P`` exactly (the cross terms cancel), so both routes agree to round-off; the relative
difference is reported as :attr:`InversionResult.max_difference` (typically 1e-14 .. 1e-12).
Because ``R`` is diagonal the observations are independent, so processing them in blocks (serial
assimilation) gives the same posterior as one update; filterpy is fed blocks of at most
``filterpy_chunk`` observations to bound its dense (dim_z, dim_z) work arrays.

Nonlinear observation operator: Gauss-Newton (Rodgers 2000, sect. 5.3, eq. 5.9)
------------------------------------------------------------------------------
When ``y = F(x) + eps`` with a nonlinear ``F`` (for ln-factors even a linear model is
nonlinear: ``y = y_run + sum_k T_k (exp(x_k - x_run,k) - 1)``, so ``dy/dx_k = T_k exp(x_k -
x_run,k)``), :func:`gauss_newton_update` iterates the same linear update with the Jacobian
relinearised at the current estimate,

    x_{i+1} = x_b + K_i [y - F(x_i) + H_i (x_i - x_b)],      K_i = B H_i^T (H_i B H_i^T + R)^-1

(each step is :func:`kalman_update` with ``d_i = y - F(x_i) + H_i (x_i - x_b)``); the posterior
covariance, averaging kernel and DOFS are those of the last linearisation. For a linear ``F``
the first step is the exact posterior and the second changes nothing.

The daily cycle ("dynamic inventory") is :func:`cycle_prior` (the Kalman forecast step with
persistence toward the base inventory), then :func:`kalman_update` or :func:`two_pass_update`.
:class:`BiasMonitor` watches the innovations for a persistent bias that the inversion does not
absorb, and :func:`cost_preview` sizes a run before it is made.

Depends on numpy, scipy and filterpy only (``pandas`` is imported lazily by
:meth:`BiasMonitor.to_frame` / :meth:`BiasMonitor.from_frame`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import scipy.linalg

__all__ = ["prior_covariance", "cycle_prior", "InversionResult", "kalman_update",
           "two_pass_update", "gauss_newton_update", "BiasMonitor", "cost_preview",
           "effective_sample_size"]

log = logging.getLogger(__name__)

#: Largest observation block handed to filterpy in one ``update`` (its R, S, S^-1 are dense
#: (dim_z, dim_z): 3 x 2000^2 x 8 B = 96 MB at this size).
DEFAULT_FILTERPY_CHUNK = 2000


# --------------------------------------------------------------------------------------------
# prior
# --------------------------------------------------------------------------------------------

def prior_covariance(sigma_ln, region_xy_km, length_km: float, groups, *,
                     sectors=None, pollutant_correlation: float = 0.0,
                     min_eig_rel: float = 1e-10) -> np.ndarray:
    """Prior error covariance ``B`` (n, n) of ln(emission scaling factors).

    ``B_ij = s_i s_j exp(-d_ij / L)`` when factors i and j belong to the same group
    (``groups[i] == groups[j]``; a group is one (sector, pollutant)), and 0 across groups: the
    same sector's inventory error for the same pollutant is spatially correlated with e-folding
    distance ``L`` between region centroids, different sectors / pollutants are independent.
    The exponential correlation ``exp(-d/L)`` (Matern, nu = 1/2) is a positive definite function
    in the plane, so ``B`` is positive definite whenever no two factors of a group share a
    centroid; this is checked (per group, smallest eigenvalue of the correlation matrix
    > ``min_eig_rel``) and a ``ValueError`` names the offending group otherwise.

    With ``sectors`` (n,) and ``pollutant_correlation`` rho > 0, factors of the same sector and
    different pollutants are correlated too, ``rho exp(-d_ij / L)`` (rho for the same region):
    a separable correlation, spatial times the pollutants' compound-symmetric matrix (1 on its
    diagonal, rho off it; positive definite for 0 <= rho < 1), so each sector's block is a
    principal submatrix of a Kronecker product of positive definite matrices -- positive
    definite; checked per sector. rho is the share of the inventory's error that is activity
    data, common to a source's pollutants; for China's national inventory Zhao et al. (2011,
    Atmos. Chem. Phys. 11, 2295-2308: Monte Carlo over activity and emission-factor
    distributions) find that activity levels are *not* the main source of the uncertainty --
    the emission factors are -- which argues for a small rho.

    Parameters
    ----------
    sigma_ln : (n,) float
        Prior standard deviation of ln(factor) (dimensionless, > 0).
    region_xy_km : (n, 2) float or None
        Projected centroid coordinates of each factor's region (km). ``None`` (or
        ``length_km == 0``) gives a diagonal ``B`` (no spatial correlation) when
        ``pollutant_correlation`` is 0; with it > 0 the centroids are needed (``None`` is
        refused) and ``length_km == 0`` correlates only factors of one centroid.
    length_km : float
        E-folding distance ``L`` (km, >= 0).
    groups : (n,) int
        Group id of each factor (one per (sector, pollutant)).
    sectors : (n,) str, optional
        Sector of each factor; needed with ``pollutant_correlation`` > 0.
    pollutant_correlation : float
        rho in [0, 1): correlation of two pollutants' factors of one sector and region.

    Returns
    -------
    B : (n, n) float, symmetric positive definite (dimensionless^2).
    """
    s = np.asarray(sigma_ln, dtype=float)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"sigma_ln must be a non-empty 1-D array, got shape {s.shape}")
    n = s.size
    if not np.all(np.isfinite(s)) or np.any(s <= 0.0):
        raise ValueError("sigma_ln must be finite and > 0")
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {g.shape}")
    if not np.isfinite(length_km) or length_km < 0.0:
        raise ValueError(f"length_km must be finite and >= 0, got {length_km}")
    if (region_xy_km is None or length_km == 0.0) and not pollutant_correlation:
        return np.diag(s * s)
    if region_xy_km is None:
        raise ValueError("pollutant_correlation > 0 needs region_xy_km (the same region: "
                         "the same centroid)")
    xy = np.asarray(region_xy_km, dtype=float)
    if xy.shape != (n, 2) or not np.all(np.isfinite(xy)):
        raise ValueError(f"region_xy_km must be finite with shape ({n}, 2), got {xy.shape}")
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=-1))
    rho = float(pollutant_correlation)
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"pollutant_correlation must be in [0, 1), got {rho}")
    same = g[:, None] == g[None, :]
    blocks, names = g, None
    if rho > 0.0:
        if sectors is None or np.shape(sectors) != (n,):
            raise ValueError(f"pollutant_correlation > 0 needs sectors of shape ({n},)")
        sec = np.asarray(sectors)
        if np.any(same & (sec[:, None] != sec[None, :])):
            raise ValueError("pollutant_correlation > 0: a group spans two sectors (a group is "
                             "one (sector, pollutant))")
        # group ids of the sectors, so that the check below runs per sector block
        names, blocks = np.unique(sec, return_inverse=True)
        link = np.where(same, 1.0, rho * (sec[:, None] == sec[None, :]))
    else:
        link = same.astype(float)
    spatial = np.exp(-dist / length_km) if length_km > 0.0 else (dist == 0.0).astype(float)
    corr = spatial * link
    for gid in np.unique(blocks):
        idx = np.flatnonzero(blocks == gid)
        if idx.size < 2:
            continue
        lam = np.linalg.eigvalsh(corr[np.ix_(idx, idx)])
        if lam[0] <= min_eig_rel:
            what = f"sector {str(names[gid])!r}" if rho > 0.0 else f"group {gid.item()!r}"
            raise ValueError(
                f"prior correlation of {what} is not positive definite (smallest "
                f"eigenvalue {lam[0]:.3g}): two factors of the group share a centroid, or "
                f"length_km={length_km} is too long for the centroid spacing")
    B = corr * np.outer(s, s)
    return 0.5 * (B + B.T)


def cycle_prior(post_mean, post_cov, base_mean, relaxation: float, q_sigma_ln,
                growth_correlation=None):
    """Next day's prior from today's posterior (the Kalman forecast step of the dynamic inventory).

    The ln-factors persist as a first-order auto-regressive process relaxing toward the base
    inventory ``x_base`` (usually 0, i.e. factor 1):

        x_{k+1} - x_base = rho (x_k - x_base) + eta,    eta ~ N(0, Q),  Q = diag(q_sigma_ln^2)

    so the forecast (next prior) is exactly

        mean = x_base + rho (x_a - x_base),     cov = rho^2 P_a + Q

    ``rho = relaxation`` in [0, 1]: 1 keeps yesterday's posterior (random walk, Q alone adds
    uncertainty), 0 forgets it (prior = base mean with covariance Q). ``Q`` is the error growth
    per cycle: emissions change from day to day, so without it P would shrink without bound
    and the filter would stop learning. The stationary variance of the process is
    ``q^2 / (1 - rho^2)``; choosing ``q = sigma_base sqrt(1 - rho^2)`` keeps the long-run prior
    spread at the base inventory's ``sigma_base``.

    ``growth_correlation`` (n, n), optional: a correlation matrix for the growth,
    ``Q = (q q^T) * C`` (elementwise) instead of ``diag(q^2)`` -- with C the base prior's
    correlation (regions, a source's pollutants) and ``q = sigma_base sqrt(1 - rho^2)`` the
    process is stationary at the base prior itself, correlations included; with a diagonal Q
    they fade by ``rho^2`` a cycle.

    Parameters
    ----------
    post_mean : (n,) posterior mean of ln(factor).
    post_cov : (n, n) posterior covariance.
    base_mean : (n,) or scalar, base inventory ln(factor) (0 for the unscaled inventory).
    relaxation : float in [0, 1].
    q_sigma_ln : scalar or (n,), error growth standard deviation of ln(factor) per cycle (>= 0).

    Returns
    -------
    (mean (n,), cov (n, n)).
    """
    xa = np.asarray(post_mean, dtype=float)
    if xa.ndim != 1:
        raise ValueError(f"post_mean must be 1-D, got shape {xa.shape}")
    n = xa.size
    Pa = np.asarray(post_cov, dtype=float)
    if Pa.shape != (n, n):
        raise ValueError(f"post_cov must have shape ({n}, {n}), got {Pa.shape}")
    base = np.broadcast_to(np.asarray(base_mean, dtype=float), (n,))
    rho = float(relaxation)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"relaxation must be in [0, 1], got {relaxation}")
    q = np.broadcast_to(np.asarray(q_sigma_ln, dtype=float), (n,))
    if not np.all(np.isfinite(q)) or np.any(q < 0.0):
        raise ValueError("q_sigma_ln must be finite and >= 0")
    mean = base + rho * (xa - base)
    if growth_correlation is None:
        Q = np.diag(q * q)
    else:
        C = np.asarray(growth_correlation, dtype=float)
        if C.shape != (n, n) or not np.allclose(np.diag(C), 1.0) or not np.allclose(C, C.T):
            raise ValueError(f"growth_correlation must be a symmetric ({n}, {n}) matrix with a "
                             f"unit diagonal")
        Q = np.outer(q, q) * C
    cov = rho * rho * Pa + Q
    return mean, 0.5 * (cov + cov.T)


# --------------------------------------------------------------------------------------------
# update
# --------------------------------------------------------------------------------------------

@dataclass
class InversionResult:
    """Posterior of one inversion cycle.

    ``mean``/``cov`` are the batch analytical posterior (the reference); ``filterpy_mean``/
    ``filterpy_cov`` the same update through :class:`filterpy.kalman.KalmanFilter` (None when it
    was not run) and ``max_difference`` their largest relative difference (nan if not run):
    ``max(|x_f - x_a|_inf / scale_x, |P_f - P_a|_inf / |P_a|_inf)`` with
    ``scale_x = max(|x_a|_inf, max_i sqrt(B_ii))``.

    Attributes (n factors, m observations)
    --------------------------------------
    mean : (n,) posterior ln(factor) x_a.
    cov : (n, n) posterior covariance P_a.
    prior_mean : (n,) x_b.
    averaging_kernel : (n, n) A = I - P_a B^-1 = K H (Rodgers 2000, eq. 3.10).
    dofs : trace(A), degrees of freedom for signal.
    chi2 : d^T S^-1 d / m over the used observations (nan if none used).
    residuals : (m,) posterior residuals d - H (x_a - x_b), all observations (used or not).
    innovation_std : (m,) sqrt(diag S), S = H B H^T + R, the prior innovation standard deviation.
    used : (m,) bool, observations that entered the update.
    rejected : (k,) int, indices rejected by :func:`two_pass_update` (empty otherwise).
    n_eff : effective number of independent innovations among the used observations
        (:func:`effective_sample_size`), for :class:`BiasMonitor`.
    iterations : linear updates made (:func:`gauss_newton_update`; 1 otherwise).
    """

    mean: np.ndarray
    cov: np.ndarray
    prior_mean: np.ndarray
    averaging_kernel: np.ndarray
    dofs: float
    chi2: float
    residuals: np.ndarray
    innovation_std: np.ndarray
    used: np.ndarray
    max_difference: float = float("nan")
    filterpy_mean: np.ndarray | None = None
    filterpy_cov: np.ndarray | None = None
    rejected: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_eff: float = float("nan")
    iterations: int = 1

    @property
    def n_used(self) -> int:
        return int(np.count_nonzero(self.used))

    @property
    def std(self) -> np.ndarray:
        """(n,) posterior standard deviation of ln(factor)."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    @property
    def factors(self) -> np.ndarray:
        """(n,) posterior scaling factors exp(x_a) (the median of the log-normal posterior)."""
        return np.exp(self.mean)


def _check_problem(x_prior, B, H, d, R_diag):
    xb = np.asarray(x_prior, dtype=float)
    if xb.ndim != 1:
        raise ValueError(f"x_prior must be 1-D, got shape {xb.shape}")
    n = xb.size
    B = np.asarray(B, dtype=float)
    if B.shape != (n, n):
        raise ValueError(f"B must have shape ({n}, {n}), got {B.shape}")
    if not np.allclose(B, B.T, rtol=1e-10, atol=1e-14 * max(1.0, np.abs(B).max())):
        raise ValueError("B must be symmetric")
    H = np.asarray(H, dtype=float)
    if H.ndim != 2 or H.shape[1] != n:
        raise ValueError(f"H must have shape (m, {n}), got {H.shape}")
    m = H.shape[0]
    d = np.asarray(d, dtype=float)
    R = np.broadcast_to(np.asarray(R_diag, dtype=float), (m,))
    if d.shape != (m,):
        raise ValueError(f"d must have shape ({m},), got {d.shape}")
    for name, a in (("x_prior", xb), ("B", B), ("H", H), ("d", d), ("R_diag", R)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} has non-finite values")
    if np.any(R <= 0.0):
        raise ValueError("R_diag must be > 0")
    return xb, B, H, d, np.array(R, dtype=float)


def _cholesky_B(B):
    try:
        return scipy.linalg.cholesky(B, lower=True)
    except scipy.linalg.LinAlgError as exc:
        raise ValueError("B is not positive definite") from exc


def effective_sample_size(HL, R_diag) -> float:
    """Effective number of independent innovations ``m^2 / (1^T C 1)``.

    ``C = D^-1/2 S D^-1/2`` is the innovation correlation matrix (``S = H B H^T + R``,
    ``D = diag S``), so ``var(mean_i d_i / sqrt(S_ii)) = 1^T C 1 / m^2 = 1 / n_eff`` for
    consistent, unbiased innovations (Kish's design effect; ``n_eff = m`` for independent
    innovations, ``n_eff -> 1`` when one shared prior error dominates every observation).

    Parameters
    ----------
    HL : (m, n) ``H L`` with ``B = L L^T`` (so ``H B H^T = HL HL^T``), obs units.
    R_diag : (m,) observation error variances (obs units^2).
    """
    HL = np.asarray(HL, dtype=float)
    R = np.asarray(R_diag, dtype=float)
    m = R.size
    if m == 0:
        return 0.0
    S_diag = np.einsum("ij,ij->i", HL, HL) + R
    u = 1.0 / np.sqrt(S_diag)
    v = HL.T @ u
    quad = float(v @ v + np.sum(R * u * u))
    return m * m / quad


def _batch_posterior(xb, B, L, H, d, R):
    """Analytical posterior (x_a, P_a, A, chi2) of the used observations, smaller space."""
    n = xb.size
    m = H.shape[0]
    if m == 0:
        return xb.copy(), B.copy(), np.zeros((n, n)), float("nan")
    if m >= n:
        # prior-whitened state space: x = x_b + L w, w ~ N(0, I)
        rs = np.sqrt(R)
        Ht = (H @ L) / rs[:, None]                      # (m, n)
        dt = d / rs                                     # (m,)
        M = np.eye(n) + Ht.T @ Ht                       # eigenvalues >= 1
        cM = scipy.linalg.cho_factor(M, lower=True)
        w = scipy.linalg.cho_solve(cM, Ht.T @ dt)
        xa = xb + L @ w
        C = np.tril(cM[0])                              # M = C C^T
        X = scipy.linalg.solve_triangular(C, L.T, lower=True)   # C^-1 L^T
        Pa = X.T @ X                                    # L M^-1 L^T
        A = Pa @ (H.T @ (H / R[:, None]))               # K H = P_a H^T R^-1 H
        r = dt - Ht @ w
        chi2 = float((r @ r + w @ w) / m)               # min cost = d^T S^-1 d
    else:
        # observation space: S = H B H^T + R (m, m)
        BHt = B @ H.T                                   # (n, m)
        S = H @ BHt + np.diag(R)
        cS = scipy.linalg.cho_factor(0.5 * (S + S.T), lower=True)
        Sid = scipy.linalg.cho_solve(cS, d)
        xa = xb + BHt @ Sid
        KT = scipy.linalg.cho_solve(cS, BHt.T)          # (m, n) = K^T
        Pa = B - BHt @ KT
        Pa = 0.5 * (Pa + Pa.T)
        A = KT.T @ H
        chi2 = float(d @ Sid / m)
    return xa, Pa, A, chi2


def _filterpy_posterior(xb, B, H, d, R, chunk):
    """The same update through filterpy's KalmanFilter, in blocks of <= chunk observations."""
    from filterpy.kalman import KalmanFilter

    n = xb.size
    m = H.shape[0]
    x = xb.copy()
    P = B.copy()
    for start in range(0, m, chunk):
        sl = slice(start, min(start + chunk, m))
        Hc = H[sl]
        k = Hc.shape[0]
        kf = KalmanFilter(dim_x=n, dim_z=k)
        kf.x = x.reshape(n, 1).copy()
        kf.P = P.copy()
        kf.H = Hc.copy()
        kf.R = np.diag(R[sl])
        # filterpy forms z - H x; with z = d + H x_b that is d - H (x - x_b), the innovation
        # of the linearised operator about the prior run at the current state
        z = d[sl] + Hc @ xb
        kf.update(z.reshape(k, 1))
        x = np.asarray(kf.x, dtype=float).reshape(n)
        P = np.asarray(kf.P, dtype=float)
    return x, 0.5 * (P + P.T)


def kalman_update(x_prior, B, H, d, R_diag, *, use_filterpy: bool = True, used=None,
                  filterpy_chunk: int | None = DEFAULT_FILTERPY_CHUNK) -> InversionResult:
    """One linear-Gaussian update of ln(emission scaling factors).

    Computes the batch analytical posterior (module docstring; Brasseur & Jacob 2017, ch. 11.5)
    and, when ``use_filterpy``, the same update by :class:`filterpy.kalman.KalmanFilter`
    (``x``, ``P``, ``H``, ``R`` set, ``update(z)`` with ``z = d + H x_prior`` so that
    ``z - H x = d``), returning both and their difference.

    Parameters
    ----------
    x_prior : (n,) prior mean x_b of ln(factor) (the linearisation point of ``H``).
    B : (n, n) prior covariance (positive definite).
    H : (m, n) Jacobian dy/d ln f (obs units).
    d : (m,) innovations y - y_prior (obs units).
    R_diag : (m,) or scalar, observation error variances (obs units^2, > 0).
    use_filterpy : also run filterpy and report ``max_difference``.
    used : (m,) bool or None; observations to assimilate (default all). Residuals and
        ``innovation_std`` are returned for all m.
    filterpy_chunk : largest observation block per filterpy ``update`` (None: all in one
        update, dim_z = m). Serial blocks are exact for diagonal R.

    Returns
    -------
    :class:`InversionResult`.
    """
    xb, B, H, d, R = _check_problem(x_prior, B, H, d, R_diag)
    n = xb.size
    m = H.shape[0]
    used = np.ones(m, dtype=bool) if used is None else np.asarray(used, dtype=bool).copy()
    if used.shape != (m,):
        raise ValueError(f"used must have shape ({m},), got {used.shape}")
    L = _cholesky_B(B)
    HL = H @ L
    S_diag = np.einsum("ij,ij->i", HL, HL) + R
    Hu, du, Ru = H[used], d[used], R[used]
    xa, Pa, A, chi2 = _batch_posterior(xb, B, L, Hu, du, Ru)
    residuals = d - H @ (xa - xb)

    xf = Pf = None
    max_diff = float("nan")
    if use_filterpy and Hu.shape[0] > 0:
        chunk = Hu.shape[0] if filterpy_chunk is None else int(filterpy_chunk)
        if chunk < 1:
            raise ValueError("filterpy_chunk must be >= 1")
        xf, Pf = _filterpy_posterior(xb, B, Hu, du, Ru, chunk)
        scale_x = max(np.abs(xa).max(), np.sqrt(np.diag(B)).max())
        max_diff = float(max(np.abs(xf - xa).max() / scale_x,
                             np.abs(Pf - Pa).max() / np.abs(Pa).max()))
    elif use_filterpy:
        xf, Pf, max_diff = xb.copy(), B.copy(), 0.0

    dofs = float(np.trace(A))
    n_eff = effective_sample_size(HL[used], Ru)
    log.info("inversion: n=%d, m=%d used of %d, DOFS=%.2f, chi2=%.3f, filterpy-batch "
             "difference %.2e", n, int(used.sum()), m, dofs, chi2, max_diff)
    return InversionResult(mean=xa, cov=Pa, prior_mean=xb.copy(), averaging_kernel=A,
                           dofs=dofs, chi2=chi2, residuals=residuals,
                           innovation_std=np.sqrt(S_diag), used=used, max_difference=max_diff,
                           filterpy_mean=xf, filterpy_cov=Pf, n_eff=n_eff)


def two_pass_update(x_prior, B, H, d, R_diag, k_sigma: float = 3.0, *,
                    use_filterpy: bool = True,
                    filterpy_chunk: int | None = DEFAULT_FILTERPY_CHUNK) -> InversionResult:
    """Update with gross-error rejection in two passes.

    Pass 1 assimilates all observations. Observation i is rejected when its pass-1 posterior
    residual exceeds ``k_sigma`` prior innovation standard deviations,

        |d_i - (H (x_a - x_b))_i| > k_sigma sqrt(S_ii),    S = H B H^T + R,

    and pass 2 repeats the update on the rest. For consistent Gaussian errors the residual
    ``r = R S^-1 d`` has covariance ``R S^-1 R <= S`` (in the Loewner order), so a good
    observation is rejected with probability below the two-sided Gaussian tail at ``k_sigma``
    (0.27 % at 3); a gross error of size ``e`` leaves a residual of about ``e (1 - A_obs,ii)``,
    where the observation's own influence ``(H K)_ii`` is small when many observations
    constrain each factor. Rejected indices are logged (INFO) and returned in ``rejected``.

    Parameters as :func:`kalman_update`; ``k_sigma > 0``.
    """
    if not k_sigma > 0.0:
        raise ValueError(f"k_sigma must be > 0, got {k_sigma}")
    first = kalman_update(x_prior, B, H, d, R_diag, use_filterpy=False)
    bad = np.abs(first.residuals) > k_sigma * first.innovation_std
    rejected = np.flatnonzero(bad)
    if rejected.size:
        log.info("two-pass inversion: rejected %d of %d observations (|residual| > %g "
                 "sqrt(S_ii)): indices %s", rejected.size, bad.size, k_sigma, rejected.tolist())
    else:
        log.info("two-pass inversion: no observation rejected (k_sigma=%g)", k_sigma)
    result = kalman_update(x_prior, B, H, d, R_diag, use_filterpy=use_filterpy, used=~bad,
                           filterpy_chunk=filterpy_chunk)
    result.rejected = rejected.astype(np.int64)
    return result


def _cost(x, xb, L, y, Fx, R, used):
    """The MAP cost J = |R^-1/2 (y - F(x))|^2 + (x - x_b)^T B^-1 (x - x_b) (used obs only)."""
    r = (y - Fx)[used] / np.sqrt(R[used])
    w = scipy.linalg.solve_triangular(L, x - xb, lower=True)
    return float(r @ r + w @ w)


def gauss_newton_update(x_prior, B, y, R_diag, forward, jacobian, *, iterations: int = 10,
                        tol: float = 1e-4, k_sigma: float | None = None,
                        use_filterpy: bool = True,
                        filterpy_chunk: int | None = DEFAULT_FILTERPY_CHUNK) -> InversionResult:
    """MAP estimate of ``x`` for ``y = F(x) + eps`` by Gauss-Newton (module docstring).

    Parameters
    ----------
    x_prior : (n,) prior mean x_b (the first linearisation point).
    B : (n, n) prior covariance.
    y : (m,) observations (obs units).
    R_diag : (m,) or scalar observation error variances.
    forward : callable x (n,) -> F(x) (m,).
    jacobian : callable x (n,) -> dF/dx (m, n) at x.
    iterations : at most this many linear updates (1: the single update about the prior).
    tol : stop when the step ``max |x_{i+1} - x_i| < tol`` (ln-factor units).
    k_sigma : None, or the 2-pass gross-error rejection of :func:`two_pass_update` with the
        residuals ``y - F(x_a)`` of a first Gauss-Newton solve against the prior innovation
        standard deviation ``sqrt(diag(H_0 B H_0^T + R))``, then a second solve without them.
    use_filterpy, filterpy_chunk : as :func:`kalman_update`, for the last update.

    A step that raises the cost ``J`` is halved (up to 6 times). The result's
    ``innovation_std`` is that of the prior (``H_0`` at ``x_b``), its ``residuals`` are
    ``y - F(x_a)`` (for all m), and ``iterations`` the number of updates made.
    """
    xb = np.asarray(x_prior, dtype=float)
    y = np.asarray(y, dtype=float)
    m = y.size
    R = np.broadcast_to(np.asarray(R_diag, dtype=float), (m,)).astype(float)
    if int(iterations) < 1:
        raise ValueError("iterations must be >= 1")
    L = _cholesky_B(np.asarray(B, dtype=float))
    F0 = np.asarray(forward(xb), dtype=float)
    H0 = np.asarray(jacobian(xb), dtype=float)
    HL0 = H0 @ L
    S0 = np.sqrt(np.einsum("ij,ij->i", HL0, HL0) + R)

    def solve(used):
        """Gauss-Newton on the used observations -> (x, F(x), H and d of the last update,
        updates made)."""
        x, Fx, H = xb.copy(), F0, H0
        J = _cost(x, xb, L, y, Fx, R, used)
        for it in range(int(iterations)):
            if it:
                H = np.asarray(jacobian(x), dtype=float)
            d = y - Fx + H @ (x - xb)
            step = kalman_update(xb, B, H, d, R, used=used, use_filterpy=False).mean - x
            for _ in range(7):
                x_new = x + step
                F_new = np.asarray(forward(x_new), dtype=float)
                J_new = _cost(x_new, xb, L, y, F_new, R, used)
                if J_new <= J * (1.0 + 1e-12) + 1e-300:
                    break
                step = 0.5 * step
            moved = float(np.max(np.abs(x_new - x), initial=0.0))
            x, Fx, J = x_new, F_new, J_new
            if moved < tol:
                break
        return x, Fx, H, d, it + 1, moved

    used = np.ones(m, dtype=bool)
    x, Fx, H, d, steps, moved = solve(used)
    rejected = np.zeros(0, dtype=np.int64)
    if k_sigma is not None:
        if not k_sigma > 0.0:
            raise ValueError(f"k_sigma must be > 0, got {k_sigma}")
        bad = np.abs(y - Fx) > k_sigma * S0
        rejected = np.flatnonzero(bad).astype(np.int64)
        if rejected.size:
            log.info("two-pass inversion: rejected %d of %d observations (|residual| > %g "
                     "sqrt(S_ii)): indices %s", rejected.size, m, k_sigma, rejected.tolist())
            used = ~bad
            x, Fx, H, d, steps, moved = solve(used)
    # the last linear update again, with filterpy's check: its covariance, averaging kernel,
    # DOFS and chi^2 are the posterior's (linearised at the last-but-one iterate, within tol of
    # x_a at convergence; with iterations=1 exactly the single update about the prior)
    res = kalman_update(xb, B, H, d, R, used=used, use_filterpy=use_filterpy,
                        filterpy_chunk=filterpy_chunk)
    res.mean = x
    if steps == int(iterations) and moved >= tol and iterations > 1:
        log.warning("Gauss-Newton inversion: not converged after %d updates (last step %.2e "
                    "in ln f)", steps, moved)
    else:
        log.info("Gauss-Newton inversion: %d update(s), last step %.2e in ln f", steps, moved)
    res.residuals = y - np.asarray(forward(res.mean), dtype=float)
    res.innovation_std = S0
    res.rejected = rejected
    res.iterations = steps
    return res


# --------------------------------------------------------------------------------------------
# bias monitor
# --------------------------------------------------------------------------------------------

class BiasMonitor:
    """Per-cycle mean normalised innovation and a persistent-bias alarm.

    Each cycle records ``b = mean_i(d_i / sqrt(S_ii))`` (``S = H B H^T + R``), overall (group
    ``"all"``) and optionally per species group. For consistent, unbiased innovations
    ``d ~ N(0, S)`` each term is N(0, 1), so ``b`` has mean 0 and standard deviation
    ``1 / sqrt(n_eff)`` (``n_eff = m`` for independent innovations; pass the
    :attr:`InversionResult.n_eff` of :func:`effective_sample_size` when the prior error makes them
    correlated). A cycle *exceeds* when ``|b| > k_sigma / sqrt(n_eff)`` (default 3: a 3-sigma
    test, two-sided false-exceedance probability 0.27 %). ``alarm`` is raised for a group when
    its last ``n_cycles`` (default 3) cycles all exceed **with the same sign**: under the null
    hypothesis with independent cycles that happens with probability ``2 x 0.00135^3 ~ 5e-9`` per
    window, while a persistent bias of ``beta`` innovation standard deviations is caught with
    probability ``Phi(beta sqrt(n_eff) - k_sigma)^n_cycles`` (e.g. beta = 0.2, n_eff = 400:
    Phi(1)^3 = 0.59 per window, ~1 within a week). An alarm means the errors assumed (B, R) or
    the model are biased in a way the scaling factors do not absorb (e.g. a missing source or a
    transport/chemistry bias) and the innovations should be inspected.

    The table is a list of rows ``{cycle, group, n_obs, n_eff, mean_norm_innov, threshold,
    exceed}``; :meth:`to_frame` / :meth:`from_frame` convert to and from a pandas DataFrame
    (CSV with ``df.to_csv``/``pd.read_csv``).
    """

    COLUMNS = ("cycle", "group", "n_obs", "n_eff", "mean_norm_innov", "threshold", "exceed")

    def __init__(self, n_cycles: int = 3, k_sigma: float = 3.0):
        if int(n_cycles) < 1:
            raise ValueError("n_cycles must be >= 1")
        if not k_sigma > 0.0:
            raise ValueError("k_sigma must be > 0")
        self.n_cycles = int(n_cycles)
        self.k_sigma = float(k_sigma)
        self.rows: list[dict[str, Any]] = []

    def _row(self, cycle_label, group, z, n_eff):
        m = z.size
        neff = float(m if n_eff is None else n_eff)
        if m == 0 or neff <= 0.0:
            b, thr = float("nan"), float("nan")
        else:
            b = float(z.mean())
            thr = self.k_sigma / math.sqrt(neff)
        return {"cycle": str(cycle_label), "group": str(group), "n_obs": int(m), "n_eff": neff,
                "mean_norm_innov": b, "threshold": thr,
                "exceed": bool(np.isfinite(b) and abs(b) > thr)}

    def add(self, cycle_label, d, S_diag, *, groups=None,
            n_eff: float | Mapping[str, float] | None = None) -> list[dict[str, Any]]:
        """Record one cycle.

        Parameters
        ----------
        cycle_label : str-able (e.g. the analysis date).
        d : (m,) innovations (obs units).
        S_diag : (m,) prior innovation variances diag(H B H^T + R) (obs units^2; the square of
            :attr:`InversionResult.innovation_std`).
        groups : (m,) labels (e.g. the observed quantity) or None; adds one row per group.
        n_eff : effective sample size for group "all" (float) or {group: n_eff} (default:
            the number of observations, i.e. independent innovations).

        Returns the rows added.
        """
        d = np.asarray(d, dtype=float).ravel()
        S = np.asarray(S_diag, dtype=float).ravel()
        if d.shape != S.shape:
            raise ValueError(f"d {d.shape} and S_diag {S.shape} differ in shape")
        if np.any(S <= 0.0) or not np.all(np.isfinite(S)) or not np.all(np.isfinite(d)):
            raise ValueError("S_diag must be finite and > 0, d finite")
        z = d / np.sqrt(S)
        neff_map = dict(n_eff) if isinstance(n_eff, Mapping) else {"all": n_eff}
        new = [self._row(cycle_label, "all", z, neff_map.get("all"))]
        if groups is not None:
            g = np.asarray(groups).ravel()
            if g.shape != d.shape:
                raise ValueError(f"groups {g.shape} and d {d.shape} differ in shape")
            for label in sorted({str(v) for v in g}):
                sel = np.array([str(v) == label for v in g])
                new.append(self._row(cycle_label, label, z[sel], neff_map.get(label)))
        self.rows.extend(new)
        for row in new:
            if row["exceed"]:
                log.info("bias monitor %s/%s: mean normalised innovation %.3f beyond +-%.3f",
                         row["cycle"], row["group"], row["mean_norm_innov"], row["threshold"])
        if self.alarm:
            log.warning("bias monitor: persistent innovation bias in %s over the last %d cycles",
                        ", ".join(self.alarms()), self.n_cycles)
        return new

    def alarms(self) -> list[str]:
        """Groups whose last ``n_cycles`` recorded cycles all exceed, with the same sign."""
        out = []
        groups = list(dict.fromkeys(r["group"] for r in self.rows))
        for g in groups:
            last = [r for r in self.rows if r["group"] == g][-self.n_cycles:]
            if len(last) < self.n_cycles or not all(r["exceed"] for r in last):
                continue
            signs = {math.copysign(1.0, r["mean_norm_innov"]) for r in last}
            if len(signs) == 1:
                out.append(g)
        return out

    @property
    def alarm(self) -> bool:
        """True when any group has a persistent same-sign bias (see the class docstring)."""
        return bool(self.alarms())

    def to_frame(self):
        """The table as a pandas DataFrame with :attr:`COLUMNS`."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(self.COLUMNS))

    @classmethod
    def from_frame(cls, df, n_cycles: int = 3, k_sigma: float = 3.0) -> "BiasMonitor":
        """Rebuild a monitor from :meth:`to_frame` output (e.g. read back from CSV).

        ``threshold`` and ``exceed`` are recomputed with this monitor's ``k_sigma``.
        """
        missing = {"cycle", "group", "n_obs", "n_eff", "mean_norm_innov"} - set(df.columns)
        if missing:
            raise ValueError(f"bias-monitor table lacks columns {sorted(missing)}")
        mon = cls(n_cycles=n_cycles, k_sigma=k_sigma)
        for rec in df.to_dict("records"):
            neff = float(rec["n_eff"])
            b = float(rec["mean_norm_innov"])
            thr = mon.k_sigma / math.sqrt(neff) if neff > 0 else float("nan")
            mon.rows.append({"cycle": str(rec["cycle"]), "group": str(rec["group"]),
                             "n_obs": int(rec["n_obs"]), "n_eff": neff,
                             "mean_norm_innov": b, "threshold": thr,
                             "exceed": bool(np.isfinite(b) and abs(b) > thr)})
        return mon


# --------------------------------------------------------------------------------------------
# cost preview
# --------------------------------------------------------------------------------------------

def _fmt_bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if b < 1024.0 or unit == "TiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024.0
    return f"{b:.1f} TiB"


def cost_preview(n_state: int, n_obs: int, n_perturbed_runs: int, bytes_per_value: int = 8,
                 filterpy_chunk: int | None = DEFAULT_FILTERPY_CHUNK) -> dict[str, Any]:
    """Memory and model-run cost of one inversion cycle, before running it.

    * ``n_model_runs = 1 + n_perturbed_runs``: the prior (base) run plus one run per perturbed
      (or tagged) configuration that builds the Jacobian's columns; with tags a single tagged run
      can deliver all n columns, by finite differences n perturbed runs are needed.
    * ``jacobian_bytes = n_obs n_state`` values (H, m x n).
    * ``covariance_bytes = 3 n_state^2`` values (B, P_a and the averaging kernel A).
    * ``batch_workspace_bytes``: the analytical solve, ``2 m n`` (H L and R^-1/2 H L) plus
      ``3 n^2`` (M, its factor, L) when m >= n, else ``2 m^2 + 2 m n`` (S, its factor, B H^T, K).
    * ``filterpy_workspace_bytes``: per block of ``k = min(m, filterpy_chunk)`` observations
      filterpy holds R, S, S^-1 (k x k each), P H^T, K (n x k each) and I - K H, P (n x n).

    Returns a dict with those numbers (bytes as int), ``total_bytes`` (sum) and ``summary`` (a
    one-paragraph human-readable string).
    """
    n, m, runs = int(n_state), int(n_obs), int(n_perturbed_runs)
    if n < 1 or m < 0 or runs < 0 or bytes_per_value < 1:
        raise ValueError("need n_state >= 1, n_obs >= 0, n_perturbed_runs >= 0, "
                         "bytes_per_value >= 1")
    bpv = int(bytes_per_value)
    jac = m * n * bpv
    cov = 3 * n * n * bpv
    batch = (2 * m * n + 3 * n * n) * bpv if m >= n else (2 * m * m + 2 * m * n) * bpv
    k = m if filterpy_chunk is None else min(m, int(filterpy_chunk))
    fp = (3 * k * k + 2 * n * k + 2 * n * n) * bpv
    total = jac + cov + batch + fp
    model_runs = 1 + runs
    note = ""
    if runs < n:
        note = (f" Fewer perturbed runs ({runs}) than state factors ({n}): the Jacobian's "
                f"columns must come from tags (one tagged run), not finite differences.")
    summary = (f"Inversion of {n} ln-factors from {m} observations: {model_runs} model runs "
               f"(1 prior + {runs} perturbed/tagged); Jacobian {_fmt_bytes(jac)}, covariances "
               f"{_fmt_bytes(cov)}, batch solve {_fmt_bytes(batch)}, filterpy "
               f"{_fmt_bytes(fp)} (blocks of {k} observations); total "
               f"~{_fmt_bytes(total)}.{note}")
    return {"n_state": n, "n_obs": m, "n_model_runs": model_runs, "jacobian_bytes": jac,
            "covariance_bytes": cov, "batch_workspace_bytes": batch,
            "filterpy_workspace_bytes": fp, "filterpy_chunk": k, "total_bytes": total,
            "summary": summary}
