"""Forecast-verification statistics on paired model (M) and observation (O) values.

Continuous statistics (SCIENCE.md §9.3; Emery et al. 2017, JAWMA 67, 582-598, Table 1; Boylan &
Russell 2006 for MFB/MFE; Willmott 1981 for IOA), with N the number of pairs where both are finite:

    MB   = mean(M - O)                        RMSE = sqrt(mean((M - O)^2))
    NMB  = sum(M - O) / sum(O) * 100 %        NME  = sum|M - O| / sum(O) * 100 %
    MFB  = mean(2 (M - O)/(M + O)) * 100 %    MFE  = mean(2 |M - O|/(M + O)) * 100 %
    r    = Pearson correlation                IOA  = 1 - sum((M-O)^2) / sum((|M-Ō| + |O-Ō|)^2)
    FAC2 = fraction of pairs with 0.5 <= M/O <= 2 (pairs with O = 0 count only if M = 0)

Categorical statistics for an exceedance threshold T (event: value > T): hits a, false alarms b,
misses c, correct negatives d; POD (hit rate) = a/(a+c), FAR = b/(a+b), CSI = a/(a+b+c), frequency
bias = (a+b)/(a+c), ETS = (a - a_r)/(a + b + c - a_r) with a_r = (a+b)(a+c)/N.

AQI-category accuracy: fraction of pairs whose forecast category equals the observed one (exact)
and within one category (±1).

Emery et al. (2017) benchmarks (:data:`EMERY_2017`): "goal" is met by about the best third of
past applications, "criteria" by about two thirds. O3 (1-h and MDA8, with an observed-value
cut-off, 40 ppb by default): NMB < ±5 % / < ±15 %, NME < 15 % / < 25 %, r > 0.75 / > 0.50.
PM2.5 24-h: NMB < ±10 % / < ±30 %, NME < 35 % / < 50 %, r > 0.70 / > 0.40. Speciated values as in
SCIENCE.md §9.3 **[V: NMB/NME for O3 against the paper (SCIENCE.md); the r and PM2.5 values and the
40 ppb cut-off from the paper as widely quoted, L]**. Boylan & Russell (2006) PM goal / criteria:
|MFB| <= 30 % / 60 %, MFE <= 50 % / 75 %.
"""

from __future__ import annotations

import numpy as np

__all__ = ["paired", "mb", "nmb", "nme", "rmse", "pearson_r", "ioa", "mfb", "mfe", "fac2",
           "contingency", "categorical_scores", "category_accuracy", "continuous_scores",
           "emery_flags", "EMERY_2017", "BOYLAN_RUSSELL_2006"]


def paired(model, obs):
    """Flattened float arrays of the pairs where both ``model`` and ``obs`` are finite."""
    m = np.asarray(model, dtype=float).ravel()
    o = np.asarray(obs, dtype=float).ravel()
    if m.shape != o.shape:
        raise ValueError(f"model and obs differ in size: {m.size} vs {o.size}")
    ok = np.isfinite(m) & np.isfinite(o)
    return m[ok], o[ok]


def _guard(m) -> bool:
    return m.size > 0


def mb(model, obs) -> float:
    """Mean bias, units of the input."""
    m, o = paired(model, obs)
    return float(np.mean(m - o)) if _guard(m) else np.nan


def nmb(model, obs) -> float:
    """Normalised mean bias, %."""
    m, o = paired(model, obs)
    return float(np.sum(m - o) / np.sum(o) * 100.0) if _guard(m) and np.sum(o) != 0 else np.nan


def nme(model, obs) -> float:
    """Normalised mean error, %."""
    m, o = paired(model, obs)
    return float(np.sum(np.abs(m - o)) / np.sum(o) * 100.0) if _guard(m) and np.sum(o) != 0 \
        else np.nan


def rmse(model, obs) -> float:
    """Root-mean-square error, units of the input."""
    m, o = paired(model, obs)
    return float(np.sqrt(np.mean((m - o) ** 2))) if _guard(m) else np.nan


def pearson_r(model, obs) -> float:
    """Pearson correlation coefficient (NaN with < 2 pairs or a constant series)."""
    m, o = paired(model, obs)
    if m.size < 2:
        return np.nan
    dm, do = m - m.mean(), o - o.mean()
    den = np.sqrt(np.sum(dm * dm) * np.sum(do * do))
    return float(np.sum(dm * do) / den) if den > 0 else np.nan


def ioa(model, obs) -> float:
    """Willmott (1981) index of agreement d (0-1)."""
    m, o = paired(model, obs)
    if not _guard(m):
        return np.nan
    ob = o.mean()
    den = np.sum((np.abs(m - ob) + np.abs(o - ob)) ** 2)
    return float(1.0 - np.sum((m - o) ** 2) / den) if den > 0 else np.nan


def mfb(model, obs) -> float:
    """Mean fractional bias, % (pairs with M + O = 0 are skipped)."""
    m, o = paired(model, obs)
    s = m + o
    k = s != 0
    return float(np.mean(2.0 * (m[k] - o[k]) / s[k]) * 100.0) if np.any(k) else np.nan


def mfe(model, obs) -> float:
    """Mean fractional error, % (pairs with M + O = 0 are skipped)."""
    m, o = paired(model, obs)
    s = m + o
    k = s != 0
    return float(np.mean(2.0 * np.abs(m[k] - o[k]) / s[k]) * 100.0) if np.any(k) else np.nan


def fac2(model, obs) -> float:
    """Fraction of pairs with 0.5 <= M/O <= 2 (0-1)."""
    m, o = paired(model, obs)
    if not _guard(m):
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(o != 0, m / np.where(o != 0, o, 1.0), np.where(m == 0, 1.0, np.inf))
    return float(np.mean((ratio >= 0.5) & (ratio <= 2.0)))


def contingency(model, obs, threshold: float) -> dict[str, int]:
    """2x2 contingency counts for the event value > ``threshold``: hits, false_alarms, misses,
    correct_negatives."""
    m, o = paired(model, obs)
    fe, oe = m > threshold, o > threshold
    return {"hits": int(np.sum(fe & oe)), "false_alarms": int(np.sum(fe & ~oe)),
            "misses": int(np.sum(~fe & oe)), "correct_negatives": int(np.sum(~fe & ~oe))}


def categorical_scores(model, obs, threshold: float) -> dict[str, float]:
    """POD (= hit rate), FAR, CSI, frequency bias and ETS for the event value > ``threshold``,
    plus the contingency counts. Undefined ratios are NaN."""
    c = contingency(model, obs, threshold)
    a, b, cc, d = c["hits"], c["false_alarms"], c["misses"], c["correct_negatives"]
    n = a + b + cc + d

    def ratio(x, y):
        return x / y if y > 0 else np.nan

    a_r = (a + b) * (a + cc) / n if n else np.nan
    return {**c, "pod": ratio(a, a + cc), "far": ratio(b, a + b), "csi": ratio(a, a + b + cc),
            "freq_bias": ratio(a + b, a + cc),
            "ets": ratio(a - a_r, a + b + cc - a_r) if n else np.nan}


def category_accuracy(model_category, obs_category) -> dict[str, float]:
    """Fraction of pairs with equal categories (``exact``) and within one category (``within1``),
    and the number of pairs ``n``."""
    m, o = paired(model_category, obs_category)
    if not _guard(m):
        return {"exact": np.nan, "within1": np.nan, "n": 0}
    return {"exact": float(np.mean(m == o)), "within1": float(np.mean(np.abs(m - o) <= 1)),
            "n": int(m.size)}


def continuous_scores(model, obs) -> dict[str, float]:
    """All continuous statistics of the module docstring, plus n, mean_model and mean_obs."""
    m, o = paired(model, obs)
    return {"n": int(m.size), "mean_model": float(m.mean()) if m.size else np.nan,
            "mean_obs": float(o.mean()) if o.size else np.nan,
            "mb": mb(m, o), "nmb": nmb(m, o), "nme": nme(m, o), "rmse": rmse(m, o),
            "r": pearson_r(m, o), "ioa": ioa(m, o), "mfb": mfb(m, o), "mfe": mfe(m, o),
            "fac2": fac2(m, o)}


#: Emery et al. (2017) goals and criteria: metric -> (goal, criterion); NMB/MFB on |value|,
#: NME/MFE "<", r ">".
EMERY_2017 = {
    "O3": {"nmb": (5.0, 15.0), "nme": (15.0, 25.0), "r": (0.75, 0.50)},
    "PM2.5": {"nmb": (10.0, 30.0), "nme": (35.0, 50.0), "r": (0.70, 0.40)},
    "SO4": {"nmb": (10.0, 30.0), "nme": (35.0, 50.0)},
    "NH4": {"nmb": (10.0, 30.0), "nme": (35.0, 50.0)},
    "NO3": {"nmb": (15.0, 65.0), "nme": (35.0, 115.0)},
    "OC": {"nmb": (15.0, 50.0), "nme": (45.0, 65.0)},
    "EC": {"nmb": (20.0, 40.0), "nme": (50.0, 75.0)},
}
#: Boylan & Russell (2006) PM goals / criteria: metric -> (goal, criterion).
BOYLAN_RUSSELL_2006 = {"mfb": (30.0, 60.0), "mfe": (50.0, 75.0)}


def _grade(metric: str, value: float, goal: float, crit: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    if metric == "r":
        return "goal" if value > goal else ("criteria" if value > crit else "none")
    v = abs(value)
    return "goal" if v < goal else ("criteria" if v < crit else "none")


def emery_flags(scores: dict, species: str) -> dict[str, str]:
    """Grade ``scores`` (from :func:`continuous_scores`) against Emery et al. (2017) for
    ``species`` ("O3", "PM2.5", "SO4", ...) and, for particles, Boylan & Russell (2006) MFB/MFE.

    Returns metric -> "goal" | "criteria" | "none" | "n/a". For O3 pass scores computed on pairs
    whose observation is at or above the cut-off (e.g. 40 ppb = 78.5 ug m-3 at 298 K).
    """
    if species not in EMERY_2017:
        raise ValueError(f"no Emery et al. (2017) benchmarks for {species!r}; "
                         f"known: {', '.join(EMERY_2017)}")
    out = {k: _grade(k, scores.get(k, np.nan), g, c) for k, (g, c) in EMERY_2017[species].items()}
    if species != "O3":
        out.update({k: _grade(k, scores.get(k, np.nan), g, c)
                    for k, (g, c) in BOYLAN_RUSSELL_2006.items()})
    return out
