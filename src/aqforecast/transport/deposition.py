"""Per-species deposition parameters and the dry-deposition-velocity operator for the model.

Gas parameters (D_H2O/D_x, H* in M atm-1, f0) are Wesely (1989) Table 2 with the Walmsley &
Wesely (1996) revisions for NO and NH3 (SCIENCE.md 4.1); GRS species are mapped as SCIENCE.md
4.1 says (HNO3 as HNO3; ROC non-depositing; aerosols use the particle form of 4.2).
Wet scavenging (SCIENCE.md 4.3): FLEXPART below-cloud (A, B) for nitrogen gases, H2O2 and NH3;
CALPUFF liquid-precipitation lambda (B = 1) for SO2 and aerosols; O3, CO, ROC are not scavenged.
Land use: WRF USGS-24 or MODIS-20 categories mapped to Wesely's 11 classes; roughness lengths
are the USGS summer values of WRF's LANDUSE.TBL (m).
"""

from __future__ import annotations

import numpy as np

from ..kernels import deposition as kdep
from .. import species as species_registry

__all__ = ["GAS_DEPOSITION", "WET_SCAVENGING", "DryDeposition", "wet_coefficients", "season"]

#: name -> (D_H2O/D_x, H* [M atm-1], f0, special handling)
GAS_DEPOSITION = {
    "SO2": (1.9, 1e5, 0.0, kdep.SPECIAL_SO2),
    "O3": (1.6, 0.01, 1.0, kdep.SPECIAL_O3),
    "NO2": (1.6, 0.01, 0.1, kdep.SPECIAL_NONE),
    "NO": (1.3, 3e-3, 0.0, kdep.SPECIAL_NONE),
    "HNO3": (1.9, 1e14, 0.0, kdep.SPECIAL_NONE),
    "H2O2": (1.4, 1e5, 1.0, kdep.SPECIAL_NONE),
    "NH3": (0.97, 2e4, 0.0, kdep.SPECIAL_NONE),
}
#: name -> (A [s-1], B) with Lambda = A * P**B, P in mm h-1
WET_SCAVENGING = {
    "NO": (8.0e-6, 0.62), "NO2": (1.0e-5, 0.62), "HNO3": (5.0e-5, 0.62),
    "H2O2": (1.0e-4, 0.62), "NH3": (9.9e-5, 0.62), "SO2": (3.0e-5, 1.0),
    "SO4": (1.0e-4, 1.0), "NO3": (1.0e-4, 1.0), "NH4": (1.0e-4, 1.0), "SNGN": (1.0e-4, 1.0),
    "SOA": (1.0e-4, 1.0), "PPM25": (1.0e-4, 1.0), "PPM10": (1.0e-4, 1.0),
}
#: settling velocity of coarse primary PM (m s-1; ~5 um particle, Stokes) [D]
SETTLING = {"PPM10": 2.0e-3}

_USGS_TO_WESELY = np.array([1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 10, 4, 4, 6, 5, 6, 7, 9, 6, 8, 11, 11,
                            11, 11, 8])  # index = USGS category (0 unused)
_MODIS_TO_WESELY = np.array([1, 5, 6, 5, 4, 6, 11, 11, 10, 10, 3, 9, 2, 1, 10, 8, 8, 7, 11, 11,
                             11])
#: roughness length per Wesely class (m)
_Z0 = np.array([0.1, 0.8, 0.15, 0.1, 1.0, 1.0, 0.8, 1e-4, 0.05, 0.2, 0.15, 0.1])


def season(month: int, lat: float) -> int:
    """Wesely season (1 midsummer .. 5 spring) from month and hemisphere [D: subtropical China
    has no snow season: winter maps to late autumn (3)]."""
    m = month if lat >= 0 else (month + 5) % 12 + 1
    return {12: 3, 1: 3, 2: 3, 3: 5, 4: 5, 5: 5, 6: 1, 7: 1, 8: 1, 9: 2, 10: 2, 11: 3}[m]


def wet_coefficients(species: list[str]) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([WET_SCAVENGING.get(s, (0.0, 1.0))[0] for s in species])
    b = np.array([WET_SCAVENGING.get(s, (0.0, 1.0))[1] for s in species])
    return a, b


class DryDeposition:
    """Dry-deposition velocities (nspec, ny, nx), m s-1, for the model species from met.

    ``landuse``: WRF LU_INDEX (y, x); ``scheme``: "USGS" or "MODIS" (WRF's MMINLU).
    """

    def __init__(self, species: list[str], landuse: np.ndarray, scheme: str = "USGS"):
        self.species = list(species)
        table = _MODIS_TO_WESELY if "MODIS" in scheme.upper() else _USGS_TO_WESELY
        lu = np.clip(np.asarray(landuse, dtype=np.int64), 0, len(table) - 1)
        self.wesely_class = np.ascontiguousarray(table[lu], dtype=np.int64)
        self.z0 = _Z0[self.wesely_class]
        gas = [s for s in self.species if s in GAS_DEPOSITION]
        self._gas_rows = np.array([self.species.index(s) for s in gas], dtype=np.int64)
        p = np.array([GAS_DEPOSITION[s] for s in gas]).reshape(-1, 4)
        self._dratio = np.ascontiguousarray(p[:, 0])
        self._hstar = np.ascontiguousarray(p[:, 1])
        self._f0 = np.ascontiguousarray(p[:, 2])
        self._special = np.ascontiguousarray(p[:, 3].astype(np.int64))
        aer = [s for s in self.species if species_registry.get(s).phase == "aerosol"]
        self._aer_rows = np.array([self.species.index(s) for s in aer], dtype=np.int64)
        self._settling = np.array([SETTLING.get(s, 0.0) for s in aer])
        ny, nx = self.wesely_class.shape
        self._rc = np.zeros((len(gas), ny, nx))
        self._vg = np.zeros((len(gas), ny, nx))
        self._va = np.zeros((len(aer), ny, nx))

    def __call__(self, month: int, lat0: float, swdown, t2, rain_rate, z_ref, ustar,
                 obukhov_length) -> np.ndarray:
        """v_d for every species (0 for non-depositing ones), (nspec, ny, nx) m s-1."""
        ny, nx = self.wesely_class.shape
        out = np.zeros((len(self.species), ny, nx))
        el = np.ascontiguousarray(np.where(np.isfinite(obukhov_length), obukhov_length, 1e6))
        us = np.ascontiguousarray(ustar, dtype=np.float64)
        if self._gas_rows.size:
            wet = np.ascontiguousarray((np.asarray(rain_rate) > 0.1).astype(np.int64) * 2)
            kdep.surface_resistance(self.wesely_class, season(month, lat0),
                                    np.ascontiguousarray(swdown, dtype=np.float64),
                                    np.ascontiguousarray(np.asarray(t2) - 273.15),
                                    wet, self._dratio, self._hstar, self._f0, self._special,
                                    self._rc)
            kdep.dry_deposition_velocity_gas(self._rc, np.ascontiguousarray(z_ref), self.z0, us,
                                             el, self._dratio, self._vg)
            out[self._gas_rows] = self._vg
        if self._aer_rows.size:
            kdep.dry_deposition_velocity_particle(us, el, self._settling, self._va)
            out[self._aer_rows] = self._va
        return out
