"""Chemistry apportionment of source tags: PSAT/OSAT bookkeeping with the GRS mapping.

Called once per chemistry step with the bulk before and after the step and the step's
:class:`~aqforecast.chemistry.ChemistryDiagnostics` (SCIENCE.md 6.3-6.4; CAMx ``psatsa.f``,
``osatsa.f``, ``o3prdsa.f``). Rules, per cell, for every tagged species (amounts in the species'
model units; family sums in molar mixing ratios):

* kinetic stage (:func:`aqforecast.kernels.apportion.apportion_production_loss`): production
  P is added by precursor-tag shares, the loss is taken from all tags of the species in
  proportion to their shares, ``c_k <- (c_k + P w_k) after/(before + P)``:

  - SO4: P = gas-phase + in-cloud sulfate (``diagnostics.sulfate_produced``), w = SO2 shares;
  - HNO3 (GRS SGN) and SNGN: P = their production by R6/R7, w = NOx (NO + NO2) shares;
  - O3: P = max(dO3, 0) (GRS has no explicit O3 destruction, R4 titration is an exchange),
    w = NOx shares where the regime indicator P(H2O2)/P(HNO3) > 0.35 (NOx-limited), ROC shares
    where <= 0.35 (VOC-limited); ``o3_regime="smooth"`` blends them with
    w_N = clip((I - 0.2)/(0.5 - 0.2), 0, 1) (SCIENCE.md 6.4); a negative dO3 is removed from all
    O3 tags by share;
  - H2O2: P = production by R5, w = ROC shares [D: the GRS radical pool comes from ROC, R1];
  - any other species with chemistry (SO2: loss only): P from the mechanism, own shares.

  The precursor shares are those at the start of the step: SO2, NOx and ROC tags only lose by
  share (or not at all), so their shares do not change during the step.
* NOx family (NO, NO2): NOx_k <- NOx_k + dNOx x NOx share, then NO_k = NO x NOx_k/NOx and
  NO2_k = NO2 x NOx_k/NOx (OSAT carries one NOx tracer per tag; NO/NO2 interconversion is the
  fast photostationary exchange).
* NH4NO3 equilibrium, in cells where it moved mass: every tag keeps its total nitrate
  TN_k = HNO3_k + NO3_k and its total ammonia TA_k = NH3_k + NH4_k;
  NO3_k = NO3 x TN_k/sum(TN), HNO3_k = HNO3 x TN_k/sum(TN), and the same for NH4/NH3 with TA.
  (The resulting NH3-source "contribution" to nitrate is not a sensitivity, SCIENCE.md 6.5.)
* tagged species without chemistry (ROC, CO, PPM25, ...) are untouched.

Every update renormalises the cell so the tags sum to the bulk; the largest relative correction
per species is returned and logged (it is the tag-sum error the step started with, ~1e-16 with
float64 storage, ~1e-7 with float32).

float32 storage, measured (GRS on 2 x 3 x 4 cells, day/night/cloudy, 32 tags, 11 tagged
species, random initial shares; float32 vs float64 tags driven by identical bulk chemistry;
``tests/test_tagging.py::test_float32_error`` checks the 6-step numbers with 8 tags):

==========  ===================  =======================================  ==================
steps       max |sum - bulk|/bulk  tag relative error, median / max         max share error
==========  ===================  =======================================  ==================
1 (10 min)  1.8e-8               2.3e-8 / 1.3e-7                          1.5e-8
6 (1 h)     1.6e-8               3.3e-8 / 3.5e-7                          4.8e-8
36 (6 h)    2.9e-8               5.6e-8 / 1.7e-6                          2.8e-7
==========  ===================  =======================================  ==================

(relative errors over tags > 1e-6 of their cell's largest tag and > 1e-30; shares are absolute.)
The sum error does not grow (every step renormalises to the float64 bulk); individual tag
errors grow slowly, like a random walk of 2^-24 roundings, mostly for small tags. float32 also
flushes tags of bulk values below ~1e-38 (e.g. NO titrated to 1e-93 at night) to zero; such
cells fall back to the family (NOx) or equal shares when the species reappears.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from ..chemistry.units import model_to_mechanism_factors
from ..kernels.apportion import apportion_production_loss, repartition_family
from .tagset import TagSet, TagState

log = logging.getLogger(__name__)

__all__ = ["apportion_chemistry", "o3_nox_weight", "ModelTagChemistry", "REGIME_THRESHOLD"]

#: P(H2O2)/P(HNO3) above which O3 production is NOx-limited (Sillman 1995; CMAQ-ISAM
#: VOC_NOX_TRANS default, SCIENCE.md 6.4).
REGIME_THRESHOLD = 0.35
#: Indicator range of the smooth transition (SCIENCE.md 6.4 [D]).
REGIME_SMOOTH = (0.2, 0.5)

_NOX = ("NO", "NO2")
#: (precursor set A, precursor set B or None) for production; A weighted by the O3 regime.
_PRODUCTION_WEIGHTS = {
    "O3": (_NOX, ("ROC",)),
    "HNO3": (_NOX, None),
    "SNGN": (_NOX, None),
    "SO4": (("SO2",), None),
    "H2O2": (("ROC",), None),
}
#: Processing order: products before the precursors they read (any other species after).
_ORDER = ("O3", "HNO3", "SNGN", "SO4", "H2O2")


def molar_factor(name: str) -> float:
    """mol mol-1 per model unit of ``name`` (1 for gases, M_air/M for aerosols in kg kg-1)."""
    return float(np.ravel(model_to_mechanism_factors("mol/mol", [name], 298.15, 101325.0))[0])


def o3_nox_weight(indicator, regime: str = "threshold", threshold: float = REGIME_THRESHOLD,
                  smooth=REGIME_SMOOTH) -> np.ndarray:
    """Weight of the NOx tags in O3 production from I = P(H2O2)/P(HNO3) (inf where P(HNO3)=0).

    ``threshold``: 1 where I > threshold, else 0; ``smooth``: clip((I - I1)/(I2 - I1), 0, 1).
    """
    ind = np.asarray(indicator, dtype=float)
    ind = np.where(np.isnan(ind), np.inf, ind)
    if regime == "threshold":
        return (ind > threshold).astype(float)
    if regime == "smooth":
        i1, i2 = smooth
        return np.clip((ind - i1) / (i2 - i1), 0.0, 1.0)
    raise ValueError(f"o3_regime must be 'threshold' or 'smooth', got {regime!r}")


def _as_tags(tags, tagset: TagSet) -> Mapping:
    if isinstance(tags, Mapping):
        return tags
    return TagState(tagset, data=tags)


def _field(conc, name, tagset, shape) -> np.ndarray:
    arr = tagset.bulk(conc, name)
    return np.ascontiguousarray(np.broadcast_to(np.asarray(arr, dtype=np.float64), shape))


def apportion_chemistry(tags, before, after, diagnostics, tagset: TagSet, *,
                        o3_regime: str = "threshold", threshold: float = REGIME_THRESHOLD
                        ) -> dict[str, float]:
    """Update tag concentrations in place after one chemistry step (module docstring).

    Parameters
    ----------
    tags: mapping species -> (ntag, nz, ny, nx) tag array (a :class:`TagState`), or the
        (ntagged, ntag, nz, ny, nx) array in ``tagset.species`` order; model units, float64 or
        float32; strided views are fine.
    before, after: bulk before/after the chemistry step, model units; mappings species ->
        (nz, ny, nx) or stacks (nspec, nz, ny, nx) in ``tagset.model_species`` order.
    diagnostics: the step's :class:`~aqforecast.chemistry.ChemistryDiagnostics` (mol mol-1).
    o3_regime: "threshold" (indicator > ``threshold`` -> NOx tags) or "smooth".

    Returns the largest relative renormalisation per updated species.
    """
    T = _as_tags(tags, tagset)
    tagged = [s for s in tagset.species if s in T]
    if not tagged:
        return {}
    shape = tuple(T[tagged[0]].shape[1:])
    d = diagnostics
    mech = list(d.variable)
    stoich = np.asarray(d.stoichiometry)
    involved = {v for i, v in enumerate(mech) if np.any(stoich[i] != 0.0)}
    if np.any(np.asarray(d.sulfate_aqueous) != 0.0):
        involved |= {"SO2", "H2O2", "SO4"}
    fac = {s: molar_factor(s) for s in tagged}
    bef = {s: _field(before, s, tagset, shape) for s in tagged}
    aft = {s: _field(after, s, tagset, shape) for s in tagged}
    zero = np.zeros(shape)
    corr = np.zeros(shape)
    report: dict[str, float] = {}

    # changes made by the NH4NO3 equilibrium (model units), to separate the kinetic stage
    dno3 = np.broadcast_to(np.asarray(d.nitrate_partitioned, float), shape)
    dnh4 = np.broadcast_to(np.asarray(d.ammonium_partitioned, float), shape)
    eq = {}
    for name, delta, sign in (("HNO3", dno3, -1.0), ("NO3", dno3, 1.0), ("NH3", dnh4, -1.0),
                              ("NH4", dnh4, 1.0)):
        if name in fac and np.any(delta != 0.0):
            eq[name] = sign * delta / fac[name]
    kin_after = {s: (aft[s] - eq[s] if s in eq else aft[s]) for s in tagged}

    nox = [s for s in _NOX if s in T]
    nox_family = len(nox) == 2 and bool(involved & set(nox))
    w_nox = None
    if "O3" in T and "O3" in involved:
        ind = d.regime_indicator
        w_nox = (np.ones(shape) if ind is None else
                 np.broadcast_to(o3_nox_weight(ind, o3_regime, threshold), shape).copy())

    kinetic = [s for s in tagged if s in involved and not (nox_family and s in _NOX)]
    kinetic.sort(key=lambda s: _ORDER.index(s) if s in _ORDER else len(_ORDER))
    for s in kinetic:
        if s == "SO4":
            prod = np.asarray(d.sulfate_produced, float) / fac[s]
        elif s == "O3":
            prod = zero                       # net change only (SCIENCE.md 6.4, GRS mapping)
        elif s in mech:
            prod = np.asarray(d.production(s), float) / fac[s]
        else:
            prod = zero
        prod = np.ascontiguousarray(np.broadcast_to(prod, shape))
        a1 = a2 = b1 = T[s]
        ca2, use, weight = 0.0, False, np.ones(shape)
        rule = _PRODUCTION_WEIGHTS.get(s)
        if rule is not None:
            set_a = [p for p in rule[0] if p in T]
            set_b = [p for p in (rule[1] or ()) if p in T]
            if not set_a and set_b:
                set_a, set_b = set_b, []
            if set_a:
                use = True
                a1 = a2 = b1 = T[set_a[0]]
                if len(set_a) > 1:
                    a2, ca2 = T[set_a[1]], fac[set_a[1]] / fac[set_a[0]]
                if set_b:
                    b1 = T[set_b[0]]
                    weight = w_nox if (s == "O3" and w_nox is not None) else weight
        apportion_production_loss(T[s], a1, a2, ca2, b1, weight, use, prod, bef[s], kin_after[s],
                                  corr)
        report[s] = float(corr.max())

    if nox_family:
        no, no2 = T["NO"], T["NO2"]
        ref = fac["NO"] * bef["NO"] + fac["NO2"] * bef["NO2"]
        repartition_family(no, no2, fac["NO"], fac["NO2"], aft["NO"], aft["NO2"], ref,
                           np.ones(shape, dtype=np.bool_), corr)
        report["NO"] = report["NO2"] = float(corr.max())

    done = set()
    for a, b, delta in (("HNO3", "NO3", dno3), ("NH3", "NH4", dnh4)):
        if a in T and b in T and (a in eq or b in eq):
            active = np.ascontiguousarray(delta != 0.0)
            ref = fac[a] * aft[a] + fac[b] * aft[b]       # TN, TA: conserved by the equilibrium
            repartition_family(T[a], T[b], fac[a], fac[b], aft[a], aft[b], ref, active, corr)
            report[a] = _worse(report.get(a, 0.0), corr)
            report[b] = _worse(report.get(b, 0.0), corr)
            done |= {a, b}
    for s in eq:                          # an incomplete family: own shares
        if s not in done:
            apportion_production_loss(T[s], T[s], T[s], 0.0, T[s], np.ones(shape), False, zero,
                                      kin_after[s], aft[s], corr)
            report[s] = _worse(report.get(s, 0.0), corr)

    if report:
        # a NaN correction (non-finite tags) is the worst of all and is reported
        worst = max(report, key=lambda k: (math.isnan(report[k]), report[k]))
        limit = 1e-5 if np.dtype(T[tagged[0]].dtype) == np.float32 else 1e-8
        level = logging.WARNING if not report[worst] <= limit else logging.DEBUG
        log.log(level, "chemistry apportionment: max relative tag-sum correction %.3g (%s)",
                report[worst], worst)
    return report


def _worse(previous: float, corr: np.ndarray) -> float:
    """The larger of a species' reported correction and this array's largest, NaN if either
    holds a NaN (Python's max and NumPy's comparisons would drop it: non-finite tags must not
    pass unreported)."""
    new = float(np.max(corr)) if corr.size else 0.0
    if math.isnan(previous) or math.isnan(new):
        return math.nan
    return max(previous, new)


class ModelTagChemistry:
    """The ``tag_chemistry`` callable of :class:`aqforecast.transport.model.DomainModel`.

    ``model.tagc`` holds one row per (tagged species, tag) with halos; ``model.tagged`` must be
    ``tagset.species`` and ``model.tag_labels`` ``tagset.tags``. The last report is kept in
    ``self.last``.
    """

    def __init__(self, tagset: TagSet, o3_regime: str = "threshold",
                 threshold: float = REGIME_THRESHOLD):
        self.tagset, self.o3_regime, self.threshold = tagset, o3_regime, threshold
        self.last: dict[str, float] = {}

    def __call__(self, model, before, diagnostics) -> None:
        ts = self.tagset
        if list(model.tagged) != ts.species or [tuple(t) for t in model.tag_labels] != \
                list(ts.tags):
            raise ValueError("the model's tagged species/labels differ from the TagSet")
        view = model.tagc[model.interior]
        data = view.reshape((ts.ntagged, ts.ntag) + view.shape[1:])
        if not np.shares_memory(data, model.tagc):
            raise RuntimeError("tag array reshape copied; cannot update in place")
        names = list(model.species)
        self.last = apportion_chemistry(
            TagState(ts, data=data), dict(zip(names, before)), dict(zip(names, model.conc())),
            diagnostics, ts, o3_regime=self.o3_regime, threshold=self.threshold)
