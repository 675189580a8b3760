"""The one place where model units are converted into and out of mechanism units.

Model side (DESIGN.md, :mod:`aqforecast.species`): gases in mol mol-1, aerosols in kg kg-1 (mass
per dry-air mass), time in s. Mechanism side: the ``#UNITS <conc> <time>`` of the file
(:mod:`.parser`). Aerosol species are carried inside the mechanism as molar mixing ratios of the
ion/compound the registry's molar mass refers to (e.g. SO4 as mol SO4 per mol air, then scaled to
ppm like a gas), so that stoichiometry stays molar:

``x [mol mol-1] = q [kg kg-1] * M_air / M_species``  (M_air = 28.9644 g mol-1)

and then ``x`` is scaled to the file unit (SCIENCE.md 5.7):

* ppm, ppb, ppt: x 1e6, 1e9, 1e12;  mol/mol: x 1;
* molec/cm3: x N_air with ``N_air = p / (k_B T) * 1e-6`` (cm-3; 2.4615e19 at 298.15 K, 1 atm).

Species unknown to the registry (e.g. the GRS radical pool RP) are treated as gases.
First-order rates handed to the operator (photolysis ``J_*`` and ``K_*`` parameters) are in s-1
and are multiplied by the seconds per file time unit.
"""

from __future__ import annotations

import numpy as np

from .. import species as species_registry
from ..constants import K_BOLTZMANN, M_AIR
from .parser import TIME_UNITS

__all__ = ["air_number_density_cm3", "mixing_ratio_scale", "model_to_mechanism_factors",
           "seconds_per_time_unit", "default_atol"]

_SCALE = {"ppm": 1e6, "ppb": 1e9, "ppt": 1e12, "mol/mol": 1.0, "1": 1.0}
#: Absolute tolerance of the solvers, mol mol-1 (1e-7 ppm: CMAQ Rosenbrock ATOL, SCIENCE.md 5.5).
ATOL_MIXING_RATIO = 1e-13


def air_number_density_cm3(temperature, pressure):
    """Air number density N_air = p / (k_B T) in molec cm-3 (T in K, p in Pa)."""
    return np.asarray(pressure, dtype=float) / (K_BOLTZMANN * np.asarray(temperature, float)) * 1e-6


def mixing_ratio_scale(conc_unit: str, temperature=298.15, pressure=101325.0):
    """Factor from mol mol-1 to ``conc_unit`` (array-valued for molec/cm3)."""
    if conc_unit == "molec/cm3":
        return air_number_density_cm3(temperature, pressure)
    try:
        return np.asarray(_SCALE[conc_unit], dtype=float)
    except KeyError:
        raise ValueError(f"unknown concentration unit {conc_unit!r}") from None


def model_to_mechanism_factors(conc_unit: str, names, temperature, pressure) -> np.ndarray:
    """Factors ``f[s, ...]`` with ``c_mechanism = f * c_model`` for model species ``names``.

    ``temperature`` and ``pressure`` broadcast to the cell shape; the result has shape
    ``(len(names),) + cell shape``."""
    if conc_unit == "1":
        raise ValueError("a dimensionless (#UNITS 1 ...) mechanism cannot be coupled to the model")
    scale = mixing_ratio_scale(conc_unit, temperature, pressure)
    shape = np.broadcast(np.asarray(temperature), np.asarray(pressure)).shape
    out = np.empty((len(names),) + shape)
    for s, name in enumerate(names):
        f = 1.0
        if species_registry.is_known(name):
            sp = species_registry.get(name)
            if sp.phase == "aerosol":
                f = (M_AIR * 1e3) / sp.molar_mass
        out[s] = f * scale
    return out


def seconds_per_time_unit(time_unit: str) -> float:
    return TIME_UNITS[time_unit]


def default_atol(conc_unit: str, temperature=298.15, pressure=101325.0) -> float:
    """Default absolute tolerance in ``conc_unit`` (1e-7 ppm equivalent; 1e-12 if dimensionless)."""
    if conc_unit == "1":
        return 1e-12
    return float(np.min(ATOL_MIXING_RATIO * mixing_ratio_scale(conc_unit, temperature, pressure)))
