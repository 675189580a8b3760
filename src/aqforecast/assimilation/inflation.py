"""Adaptive multiplicative inflation and relaxation to prior spread for the (L)ETKF.

**Adaptive multiplicative inflation** (Li, Kalnay & Miyoshi 2009, QJRMS 135, 523-533; the
Gaussian approach of Miyoshi 2011, MWR 139, 1519-1535, in its spatially uniform form): with
innovations ``d = y - H xb`` of ``p`` observations, their errors ``R`` (diagonal) and the
ensemble's observation-space perturbations ``Yb'`` (``H P^b H^T = Yb'^T Yb' / (k - 1)``), the
innovation statistics (Desroziers et al. 2005, QJRMS 131, 3385) give
``E[d^T d] = rho tr(H P^b H^T) + tr(R)`` when the true background error covariance is
``rho H P^b H^T``. Each observation is normalised by its error (``d~ = R^-1/2 d``, ``Y~ =
R^-1/2 Yb'``: every observation weighs alike whatever its concentration, as in Miyoshi's
LETKF code), so the observation estimate of the inflation is

    rho_o = (d~^T d~ - p) / tr(Y~ Y~^T / (k - 1))

(= ``(d^T d - tr R) / tr(H P^b H^T)`` when all R are equal, Li et al. 2009 eq. 5 form). The
optimal interpolation's static ``B`` takes the same estimate with ``C~ = R^-1/2 H B H^T R^-1/2``
(:func:`covariance_inflation`): a multiplicative factor of B's variances. Its
sampling variance for Gaussian innovations with covariance ``S~ = rho_b C~ + I`` is
``v_o = 2 tr(S~^2) / tr(C~)^2`` (``C~`` the normalised, optionally localised ensemble
covariance); for independent observations with equal variances this is Miyoshi's (2011)
``v_o = (2/p) ((rho_b sigma_b^2 + sigma_o^2) / sigma_b^2)^2``, and correlated background errors
at clustered stations (fewer independent innovations) make it larger. The Gaussian prior
``N(rho_b, v_b)`` (``rho_b``: the previous cycle's analysed inflation, or the fixed
``inflation`` on a first cycle; ``v_b = inflation_prior_sd^2`` fixed, not updated, as Miyoshi
2011 keeps it) is combined with it as a scalar Kalman update

    rho_a = rho_b + v_b / (v_b + v_o) (rho_o - rho_b)

and bounded to ``[rho_min, rho_max]`` (``[1, inflation_max]``: never deflate). Here ``rho_a``
is estimated from the innovations of the *current* analysis and applied in it (the state
update follows the inflation update with the same observations, as Anderson 2009, Tellus 61A,
72-83) and kept for the next cycle's prior.

**Relaxation to prior spread** (RTPS, Whitaker & Hamill 2012, MWR 140, 3078-3089): the
analysis perturbations are rescaled at every point so that the analysis spread relaxes a
fraction ``alpha`` back to the background spread,

    Xa'_i <- Xa'_i (alpha (sigma_b,i - sigma_a,i) / sigma_a,i + 1),

i.e. ``sigma_a,i <- (1 - alpha) sigma_a,i + alpha sigma_b,i`` (sample standard deviations over
the members, ``sigma_b`` of the background ensemble as given, before any multiplicative
inflation). The analysis mean is unchanged; points with no spread are left alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["InflationEstimate", "innovation_inflation", "covariance_inflation",
           "adaptive_inflation", "relax_to_prior_spread"]


@dataclass(frozen=True)
class InflationEstimate:
    """One adaptive inflation estimate (module docstring).

    rho: the inflation applied (posterior, bounded); rho_obs: the observation estimate
    ``rho_o`` (unbounded, may be < 1 or negative); var_obs: its variance ``v_o``; rho_prior,
    sd_prior: the Gaussian prior; n: number of observations; dtd: ``d~^T d~``; trace: ``tr(C~)``
    (normalised background variance summed over the observations)."""

    rho: float
    rho_obs: float
    var_obs: float
    rho_prior: float
    sd_prior: float
    n: int
    dtd: float
    trace: float

    def as_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                for k, v in asdict(self).items()}


def _normalised(d, Yb, R_diag):
    d = np.asarray(d, dtype=np.float64)
    Yb = np.asarray(Yb, dtype=np.float64)
    R_diag = np.asarray(R_diag, dtype=np.float64)
    k = Yb.shape[0]
    if Yb.ndim != 2 or Yb.shape[1] != d.shape[0] or R_diag.shape != d.shape:
        raise ValueError("shapes: d (p,), Yb (k, p), R_diag (p,)")
    if k < 2:
        raise ValueError("need at least 2 members")
    if np.any(R_diag <= 0):
        raise ValueError("R_diag must be positive")
    s = 1.0 / np.sqrt(R_diag)
    Yp = (Yb - Yb.mean(axis=0)) * s / np.sqrt(k - 1.0)   # C~ = Yp^T Yp
    return d * s, Yp


def innovation_inflation(d, Yb, R_diag, rho_ref: float = 1.0, loc=None
                         ) -> tuple[float, float, float, float]:
    """The observation estimate of the multiplicative inflation and its variance.

    d: (p,) innovations ``y - H xb`` (xb: the ensemble mean, or the control the ensemble is
    centred on); Yb: (k, p) observed members ``H(x_m)``; R_diag: (p,) observation error
    variances; rho_ref: the inflation at which the variance is evaluated (the prior's mean,
    Miyoshi 2011); loc: optional (p, p) localisation of the observation-observation covariance
    in the variance (e.g. Gaspari-Cohn of the station distances: correlated innovations count
    as fewer; None: the diagonal only, independent observations, Miyoshi's formula -- the raw
    sample covariance of a few members would add p^2 / (k - 1) of spurious correlation).
    Returns ``(rho_o, v_o, d~^T d~, tr C~)`` (module docstring)."""
    dn, Yp = _normalised(d, Yb, R_diag)
    p = dn.size
    if p == 0:
        return float("nan"), float("inf"), 0.0, 0.0
    dtd = float(dn @ dn)
    trace = float(np.sum(Yp * Yp))
    if not trace > 0.0:
        return float("nan"), float("inf"), dtd, trace
    rho_o = (dtd - p) / trace
    if loc is None:
        S2 = float(np.sum((rho_ref * np.sum(Yp * Yp, axis=0) + 1.0) ** 2))
    else:
        S = rho_ref * (Yp.T @ Yp) * np.asarray(loc, dtype=np.float64)
        S[np.diag_indices(p)] += 1.0
        S2 = float(np.sum(S * S))                       # tr(S^2) for symmetric S
    v_o = 2.0 * S2 / trace ** 2
    return float(rho_o), v_o, dtd, trace


def covariance_inflation(d, HBHt, R_diag, rho_ref: float = 1.0
                         ) -> tuple[float, float, float, float]:
    """:func:`innovation_inflation` with the background error covariance in observation space
    given, ``H B H^T`` (p, p) (the optimal interpolation's static B), instead of an ensemble:
    ``C~ = R^-1/2 H B H^T R^-1/2``, ``rho_o = (d~^T d~ - p) / tr C~`` and ``v_o = 2 tr(S~^2) /
    tr(C~)^2`` with ``S~ = rho_ref C~ + I`` (correlated background errors at clustered
    stations count as fewer innovations). Returns ``(rho_o, v_o, d~^T d~, tr C~)``."""
    d = np.asarray(d, dtype=np.float64)
    R_diag = np.asarray(R_diag, dtype=np.float64)
    C = np.asarray(HBHt, dtype=np.float64)
    p = d.size
    if C.shape != (p, p) or R_diag.shape != (p,):
        raise ValueError("shapes: d (p,), HBHt (p, p), R_diag (p,)")
    if np.any(R_diag <= 0):
        raise ValueError("R_diag must be positive")
    if p == 0:
        return float("nan"), float("inf"), 0.0, 0.0
    s = 1.0 / np.sqrt(R_diag)
    dn = d * s
    C = C * s[:, None] * s[None, :]
    dtd, trace = float(dn @ dn), float(np.trace(C))
    if not trace > 0.0:
        return float("nan"), float("inf"), dtd, trace
    S = rho_ref * C
    S[np.diag_indices(p)] += 1.0
    return float((dtd - p) / trace), 2.0 * float(np.sum(S * S)) / trace ** 2, dtd, trace


def adaptive_inflation(d, Yb, R_diag, prior: float = 1.0, prior_sd: float | None = 0.5,
                       bounds: tuple[float, float] = (1.0, 3.0), loc=None, hbht=None
                       ) -> InflationEstimate:
    """Adaptive multiplicative inflation (module docstring): the Gaussian prior
    ``N(prior, prior_sd^2)`` updated by the innovation estimate (:func:`innovation_inflation`;
    with ``hbht``, the OI's ``H B H^T`` (p, p), :func:`covariance_inflation` and ``Yb`` unused),
    clipped to ``bounds``. ``prior_sd=None`` (or inf): the observation estimate alone (clipped);
    ``prior_sd=0``: the prior (clipped). Without observations or ensemble spread at them the
    prior is returned."""
    lo, hi = (float(b) for b in bounds)
    if not 0.0 < lo <= hi:
        raise ValueError(f"inflation bounds {bounds}: need 0 < low <= high")
    prior = float(prior)
    if hbht is not None:
        rho_o, v_o, dtd, trace = covariance_inflation(d, hbht, R_diag, rho_ref=prior)
    else:
        rho_o, v_o, dtd, trace = innovation_inflation(d, Yb, R_diag, rho_ref=prior, loc=loc)
    n = int(np.asarray(d).size)
    if prior_sd is None or not np.isfinite(prior_sd):
        rho = rho_o if np.isfinite(rho_o) else prior
        sd = float("inf")
    else:
        sd = float(prior_sd)
        if sd < 0:
            raise ValueError("prior_sd must be >= 0")
        vb = sd * sd
        if np.isfinite(rho_o) and np.isfinite(v_o) and vb > 0:
            rho = prior + vb / (vb + v_o) * (rho_o - prior)
        else:
            rho = prior
    return InflationEstimate(rho=float(np.clip(rho, lo, hi)), rho_obs=float(rho_o),
                             var_obs=float(v_o), rho_prior=prior, sd_prior=sd, n=n,
                             dtd=dtd, trace=trace)


def relax_to_prior_spread(Xa, Xb, alpha: float) -> np.ndarray:
    """RTPS (Whitaker & Hamill 2012, module docstring): ``Xa`` (k, n) with its perturbations
    about its mean rescaled so that the spread is ``(1 - alpha) sigma_a + alpha sigma_b``
    at every point (``sigma`` the sample standard deviation over the k members; ``Xb`` the
    background members). ``alpha = 0``: ``Xa`` unchanged (the same array)."""
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"RTPS alpha {alpha}: must be in [0, 1]")
    if alpha == 0.0:
        return Xa
    Xa = np.asarray(Xa, dtype=np.float64)
    Xb = np.asarray(Xb, dtype=np.float64)
    if Xa.shape != Xb.shape:
        raise ValueError("Xa and Xb: the same (k, n) shape")
    mean = Xa.mean(axis=0)
    Xp = Xa - mean
    sa = np.std(Xa, axis=0, ddof=1)
    sb = np.std(Xb, axis=0, ddof=1)
    factor = np.where(sa > 0, alpha * (sb - sa) / np.where(sa > 0, sa, 1.0) + 1.0, 1.0)
    return mean + Xp * factor
