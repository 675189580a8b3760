"""Speciation of inventory pollutants into model species (GRS mechanism + primary aerosol).

A linear map per sector, ``S[species, pollutant]``, turning Mg of each inventory pollutant into
mol (gases) or kg (aerosols) of each model species:

==========  ==================================================================================
pollutant   model species (defaults; all factors overridable per sector)
==========  ==================================================================================
NOx         as NO2 mass: n = m / 46.006 g mol-1; NO = 0.90 n, NO2 = 0.10 n (molar; the usual
            90/10 primary split of combustion NOx; N conserved)
NMVOC       ROC in the GRS ppmC basis: mol C = m * f_C / 12.011 g mol-1, with f_C = 0.80 the
            carbon mass fraction of the NMVOC mix [D: alkanes 0.83-0.84, alkenes 0.86,
            aromatics 0.90-0.92, oxygenates 0.4-0.6; 0.80 for an industrial/solvent-rich mix].
            ROC is carried as moles of carbon (species registry: ROC molar mass 12.011 per C)
SO2         as SO2 mass: n = m / 64.064; SO2 = (1 - f_S) n, primary sulfate SO4 = f_S n
            (kg = f_S n * 96.062 g mol-1 / 1000), f_S = 0.02 [D: primary sulfate is 1-5 % of SOx
            from coal combustion; S conserved]
CO          CO = m / 28.010 g mol-1
NH3         NH3 = m / 17.031 g mol-1
PM25        PPM25 kg = (1 - f_SO4 - f_NO3) m, optional primary SO4/NO3 mass fractions (default 0,
            since primary sulfate already comes from SOx)
PMC         PPM10 kg = m  (coarse part PM10 - PM2.5)
==========  ==================================================================================

Mass factors use the species registry's molar masses (SCIENCE.md 5.6).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import species as registry
from .inventory import POLLUTANTS

__all__ = ["SpeciationFactors", "Speciation", "EMITTED_SPECIES"]

#: Model species that receive emissions (subset of the run's species is taken at build time).
EMITTED_SPECIES = ("NO", "NO2", "ROC", "SO2", "SO4", "CO", "NH3", "NO3", "PPM25", "PPM10")

_MG_TO_G = 1.0e6
_MG_TO_KG = 1.0e3


@dataclass(frozen=True)
class SpeciationFactors:
    """Per-sector split factors (module docstring)."""

    no_fraction: float = 0.90          # mol NO / mol NOx
    voc_carbon_fraction: float = 0.80  # g C / g NMVOC
    sox_sulfate_fraction: float = 0.02  # mol S as SO4 / mol S in SOx
    pm25_sulfate_fraction: float = 0.0  # g SO4 / g PM2.5
    pm25_nitrate_fraction: float = 0.0  # g NO3 / g PM2.5

    def __post_init__(self):
        for k in ("no_fraction", "voc_carbon_fraction", "sox_sulfate_fraction",
                  "pm25_sulfate_fraction", "pm25_nitrate_fraction"):
            v = getattr(self, k)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"speciation factor {k} = {v} must lie in [0, 1]")
        if self.pm25_sulfate_fraction + self.pm25_nitrate_fraction > 1.0:
            raise ValueError("pm25_sulfate_fraction + pm25_nitrate_fraction must be <= 1")


@dataclass
class Speciation:
    """Pollutant -> model-species matrices for a list of model species and sectors.

    ``species``: model species to produce (those not emitted get zero rows);
    ``per_sector``: {sector: SpeciationFactors} overriding ``default``.
    """

    species: tuple[str, ...]
    default: SpeciationFactors = field(default_factory=SpeciationFactors)
    per_sector: dict[str, SpeciationFactors] = field(default_factory=dict)

    def __post_init__(self):
        self.species = tuple(self.species)
        for s in self.species:
            registry.get(s)

    def factors(self, sector: str) -> SpeciationFactors:
        return self.per_sector.get(sector, self.default)

    def matrix(self, sector: str) -> np.ndarray:
        """``S[species, pollutant]``: Mg of pollutant -> mol (gas) or kg (aerosol) of species."""
        f = self.factors(sector)
        mw = {s: registry.get(s).molar_mass for s in ("NO2", "SO2", "CO", "NH3", "SO4", "NO3",
                                                       "ROC")}
        p = {name: k for k, name in enumerate(POLLUTANTS)}
        rows: dict[str, np.ndarray] = {s: np.zeros(len(POLLUTANTS)) for s in self.species}

        def put(s, pol, val):
            if s in rows:
                rows[s][p[pol]] += val

        nox_mol = _MG_TO_G / mw["NO2"]
        put("NO", "NOx", f.no_fraction * nox_mol)
        put("NO2", "NOx", (1.0 - f.no_fraction) * nox_mol)
        put("ROC", "NMVOC", f.voc_carbon_fraction * _MG_TO_G / mw["ROC"])
        sox_mol = _MG_TO_G / mw["SO2"]
        put("SO2", "SO2", (1.0 - f.sox_sulfate_fraction) * sox_mol)
        put("SO4", "SO2", f.sox_sulfate_fraction * sox_mol * mw["SO4"] * 1e-3)
        put("CO", "CO", _MG_TO_G / mw["CO"])
        put("NH3", "NH3", _MG_TO_G / mw["NH3"])
        put("PPM25", "PM25", (1.0 - f.pm25_sulfate_fraction - f.pm25_nitrate_fraction)
            * _MG_TO_KG)
        put("SO4", "PM25", f.pm25_sulfate_fraction * _MG_TO_KG)
        put("NO3", "PM25", f.pm25_nitrate_fraction * _MG_TO_KG)
        put("PPM10", "PMC", _MG_TO_KG)
        return np.array([rows[s] for s in self.species]).reshape(len(self.species),
                                                                 len(POLLUTANTS))

    def units(self) -> dict[str, str]:
        """Amount unit each species' emission is expressed in ('mol' or 'kg')."""
        return {s: "mol" if registry.get(s).phase == "gas" else "kg" for s in self.species}
