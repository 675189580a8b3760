"""Secondary inorganic aerosol: sulfate rates, in-cloud sulfate, NH4NO3 equilibrium, PM2.5.

* SO2 -> SO4 gas-phase pseudo-first-order rate: the CALPUFF / MESOPUFF-II default diurnal table
  (CALPUFF User's Guide, sample CHEM.DAT; SCIENCE.md 5.3) in % h-1 by local hour, or the
  radiation-linked option ``2 % h-1 * j/j_max + 0.2 % h-1`` [D].
* In-cloud SO2 + H2O2 -> SO4 titration (SCIENCE.md 5.3 [D]): where cloud water exceeds
  0.01 g m-3, ``delta = f_c min(SO2, H2O2)`` (molar mixing ratios) per step, removing both.
* NH4NO3 equilibrium after full (NH4)2SO4 neutralisation (Seinfeld & Pandis 2006, section 10.4):
  ``K_p [ppb2] = exp(84.6 - 24220/T - 6.1 ln(T/298))`` (S&P Eq. 10.91),
  ``DRH [%] = exp(723.7/T + 1.6954)`` (Eq. 10.88); above the DRH the Mozurkewich (1993, Atmos.
  Environ. 27A, 261) aqueous correction ``K* = [P1 - P2 (1-a_w) + P3 (1-a_w)**2] (1-a_w)**1.75 K_p``
  with ``ln P1 = -135.94 + 8763/T + 19.12 ln T``, ``ln P2 = -122.65 + 9969/T + 16.22 ln T``,
  ``ln P3 = -182.61 + 13875/T + 24.46 ln T``. These Mozurkewich coefficients are SCIENCE.md [L]
  values that could not be checked against the paper here; at the DRH they give K*/K_p within
  a few per cent of 1 for 270-310 K (tested), which supports the transcription.
* PM2.5 = primary + secondary (SCIENCE.md 5.4): PPM25 + SO4 + NO3 + NH4 + SNGN (+ SOA), kg kg-1.

Equilibrium and titration work on molar mixing ratios (any unit, consistently with ``K``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..kernels.threads import parallel_kernel
from ..species import PM25_COMPONENTS

__all__ = ["SO2_DIURNAL_PERCENT_PER_HOUR", "so2_rate_diurnal", "so2_rate_radiation",
           "nh4no3_kp_ppb2", "nh4no3_drh", "nh4no3_kp_wet_ppb2", "nh4no3_k_ppb2",
           "nh4no3_equilibrium", "aqueous_sulfate", "PM25_COMPONENTS", "pm25_mass_mixing_ratio"]

#: CALPUFF/MESOPUFF-II default SO2 -> SO4 rate, % h-1 by local hour 0..23 (SCIENCE.md 5.3 [V]).
SO2_DIURNAL_PERCENT_PER_HOUR = np.array(
    [0.2] * 7 + [0.4, 0.8, 1.2, 1.6, 2.0, 2.0, 2.0, 1.6, 1.2, 0.8, 0.4] + [0.2] * 6)
#: Cloud-water threshold for the in-cloud sulfate step, g m-3.
CLOUD_WATER_THRESHOLD = 0.01
#: Aerosol species summed into PM2.5 (kg kg-1) when present: :data:`aqforecast.species.
#: PM25_COMPONENTS` (imported above; the one definition).


def so2_rate_diurnal(local_hour):
    """SO2 -> SO4 first-order rate (s-1) from the CALPUFF diurnal table at local hour 0..24."""
    hour = np.floor(np.mod(np.asarray(local_hour, dtype=float), 24.0)).astype(int)
    return SO2_DIURNAL_PERCENT_PER_HOUR[hour] / 100.0 / 3600.0


def so2_rate_radiation(j_no2, j_no2_max=8.92e-3):
    """Radiation-linked option [D]: (2 % h-1 * j/j_max + 0.2 % h-1) in s-1."""
    ratio = np.clip(np.asarray(j_no2, dtype=float) / j_no2_max, 0.0, 1.0)
    return (2.0 * ratio + 0.2) / 100.0 / 3600.0


def nh4no3_kp_ppb2(temperature):
    """Dissociation constant of solid NH4NO3, ppb**2 (S&P 2006 Eq. 10.91)."""
    t = np.asarray(temperature, dtype=float)
    return np.exp(84.6 - 24220.0 / t - 6.1 * np.log(t / 298.0))


def nh4no3_drh(temperature):
    """Deliquescence RH of NH4NO3, % (S&P 2006 Eq. 10.88)."""
    return np.exp(723.7 / np.asarray(temperature, dtype=float) + 1.6954)


def nh4no3_kp_wet_ppb2(temperature, relative_humidity):
    """Mozurkewich (1993) K* above the DRH, ppb**2 (RH in %)."""
    t = np.asarray(temperature, dtype=float)
    x = 1.0 - np.asarray(relative_humidity, dtype=float) / 100.0
    p1 = np.exp(-135.94 + 8763.0 / t + 19.12 * np.log(t))
    p2 = np.exp(-122.65 + 9969.0 / t + 16.22 * np.log(t))
    p3 = np.exp(-182.61 + 13875.0 / t + 24.46 * np.log(t))
    return (p1 - p2 * x + p3 * x * x) * np.maximum(x, 0.0) ** 1.75 * nh4no3_kp_ppb2(t)


def nh4no3_k_ppb2(temperature, relative_humidity=None):
    """K_p below the DRH (or when RH is None), Mozurkewich K* at or above it; ppb**2."""
    kp = nh4no3_kp_ppb2(temperature)
    if relative_humidity is None:
        return kp
    rh = np.asarray(relative_humidity, dtype=float)
    wet = rh >= nh4no3_drh(temperature)
    return np.where(wet, nh4no3_kp_wet_ppb2(temperature, np.minimum(rh, 99.9)), kp)


@parallel_kernel(lambda nh3, *_: nh3.shape[0])
@njit(nogil=True, cache=True)
def nh4no3_equilibrium(start, stop, nh3, nh4, hno3, no3, so4, k):
    """Partition NH3/HNO3 with NH4+/NO3- in place (1-D arrays, molar mixing ratios; ``k`` in the
    same unit squared). Sulfate is neutralised first (ammonia-poor: all NH_x as NH4+, no
    nitrate); then ``x = [(FA+TN) - sqrt((FA+TN)**2 - 4 (FA TN - K))]/2`` (SCIENCE.md 5.4).
    Totals TA = NH3 + NH4 and TN = HNO3 + NO3 are conserved exactly."""
    for i in range(start, stop):
        ta = nh3[i] + nh4[i]
        tn = hno3[i] + no3[i]
        s2 = 2.0 * so4[i]
        if ta <= s2:
            nh4[i] = ta
            nh3[i] = 0.0
            no3[i] = 0.0
            hno3[i] = tn
            continue
        fa = ta - s2
        x = 0.0
        if fa * tn > k[i]:
            b = fa + tn
            disc = b * b - 4.0 * (fa * tn - k[i])
            # cancellation-free smaller root of x**2 - b x + (FA TN - K) = 0
            x = 2.0 * (fa * tn - k[i]) / (b + math.sqrt(max(disc, 0.0)))
            x = min(max(x, 0.0), min(fa, tn))
        no3[i] = x
        hno3[i] = tn - x
        nh4[i] = s2 + x
        nh3[i] = fa - x


def aqueous_sulfate(so2, h2o2, so4, cloud_fraction, cloud_water):
    """In-cloud titration in place on molar mixing ratios; returns the sulfate formed.

    ``cloud_water`` in g m-3; cells above :data:`CLOUD_WATER_THRESHOLD` convert
    ``f_c min(SO2, H2O2)``."""
    fc = np.clip(np.asarray(cloud_fraction, dtype=float), 0.0, 1.0)
    wet = np.asarray(cloud_water, dtype=float) > CLOUD_WATER_THRESHOLD
    delta = np.where(wet, fc * np.minimum(so2, h2o2), 0.0)
    so2 -= delta
    h2o2 -= delta
    so4 += delta
    return delta


def pm25_mass_mixing_ratio(conc, species_names):
    """PM2.5 (kg kg-1) = sum of the :data:`PM25_COMPONENTS` present in ``conc`` (nspec, ...)."""
    names = list(species_names)
    out = np.zeros(np.shape(conc)[1:])
    for name in PM25_COMPONENTS:
        if name in names:
            out += conc[names.index(name)]
    return out
