"""Lateral/top boundary and cold-start initial conditions from background profiles.

When no boundary file (or parent domain) provides values, the outer domain's inflow boundaries
and a cold start use vertical profiles of regional background air in eastern China (summer).
The surface values are round numbers typical of regional background stations in the Yangtze
River Delta (e.g. Lin'an regional GAW station: O3 ~ 35-45 ppb, CO ~ 200-300 ppb, SO2 ~ 2-5 ppb,
NO2 ~ 5 ppb, PM2.5 ~ 25-35 ug m-3 in summer; Xu et al. 2008, ACP 8:2595, and CNEMC rural
sites) [D: values rounded; change them in one place, here]. Gases fall off (or for O3 rise)
with height with the scale heights below; aerosols decay with a 1.5 km scale height above the
boundary layer.

Values are returned in model units: gases mol mol-1, aerosols kg kg-1 (via the dry-air density
at standard conditions of the layer, so the profile is consistent in ug m-3 near the surface).
"""

from __future__ import annotations

import numpy as np

from .. import species as species_registry

__all__ = ["BACKGROUND", "background_profile"]

#: species -> (surface value, value aloft (at 8 km), e-folding height of the transition, m)
#: gases in ppb, aerosols in ug m-3 at the surface; aloft values in the same units.
BACKGROUND: dict[str, tuple[float, float, float]] = {
    "O3": (40.0, 65.0, 3000.0),
    "NO": (0.3, 0.02, 1000.0),
    "NO2": (3.0, 0.05, 1000.0),
    "CO": (200.0, 90.0, 2500.0),
    "SO2": (2.0, 0.1, 1500.0),
    "NH3": (3.0, 0.05, 1000.0),
    "HNO3": (0.5, 0.1, 2000.0),
    "H2O2": (1.0, 0.5, 3000.0),
    "ROC": (20.0, 2.0, 1500.0),
    "ISOP": (0.1, 0.0, 500.0),
    "SO4": (6.0, 0.3, 1500.0),
    "NO3": (3.0, 0.1, 1500.0),
    "NH4": (3.0, 0.1, 1500.0),
    "SNGN": (0.0, 0.0, 1500.0),
    "SOA": (2.0, 0.2, 1500.0),
    "PPM25": (12.0, 0.5, 1500.0),
    "PPM10": (15.0, 0.5, 1500.0),
}


def background_profile(name: str, z: np.ndarray, air_density: np.ndarray) -> np.ndarray:
    """Background mixing ratio of ``name`` at heights ``z`` (m above ground), model units.

    ``air_density`` (kg m-3) converts aerosol ug m-3 to kg kg-1. Unknown species are zero.
    """
    z = np.asarray(z, dtype=float)
    if name not in BACKGROUND:
        return np.zeros_like(z)
    surface, aloft, h = BACKGROUND[name]
    w = np.exp(-np.maximum(z, 0.0) / h)
    value = aloft + (surface - aloft) * w
    sp = species_registry.get(name)
    if sp.phase == "gas":
        return value * 1e-9
    # aerosol: ug m-3 referenced to the surface density, mass mixing ratio conserved aloft
    rho0 = 1.2
    return value * 1e-9 / rho0 * np.ones_like(np.asarray(air_density, dtype=float))
