"""The one registry of model species and diagnostic variables.

Every module that needs a molar mass, a unit or a CF name asks here. Inside the model gases are
carried as mole fractions (mol mol-1) and aerosols as mass mixing ratios (kg kg-1, mass per dry
air mass); ppb and ug m-3 appear only at the edges (``io``, ``products``).

Molar masses follow SCIENCE.md section 5.6 (IUPAC atomic weights). CF standard names are from the
CF standard-name table (v84); species without one carry only ``long_name``.
Unit conversions follow SCIENCE.md section 5.7:
``c [ug m-3] = x [ppb] * M [g mol-1] * p / (R T) * 1e-3``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .constants import M_AIR, R_GAS

Phase = Literal["gas", "aerosol"]


@dataclass(frozen=True)
class Species:
    """A model species.

    Attributes
    ----------
    name: model name (also the NetCDF variable name).
    molar_mass: g mol-1 (for aerosols: of the ion/compound the mass refers to).
    phase: "gas" (carried as mol mol-1) or "aerosol" (carried as kg kg-1).
    long_name: human-readable CF long_name.
    standard_name: CF standard name of the *output* quantity (mole fraction for gases,
        mass concentration for aerosols), or None when the table has none.
    output_units: units written to products ("ppb" for gases, "ug m-3" for aerosols).
    transported: False for short-lived species held in steady state (e.g. RP).
    """

    name: str
    molar_mass: float
    phase: Phase
    long_name: str
    standard_name: str | None = None
    transported: bool = True

    @property
    def internal_units(self) -> str:
        return "mol mol-1" if self.phase == "gas" else "kg kg-1"

    @property
    def output_units(self) -> str:
        return "ppb" if self.phase == "gas" else "ug m-3"


def _gas(name, mw, long_name, std=None, transported=True):
    return Species(name, mw, "gas", long_name, std, transported)


def _aer(name, mw, long_name, std=None):
    return Species(name, mw, "aerosol", long_name, std)


_REGISTRY: dict[str, Species] = {
    s.name: s
    for s in [
        _gas("NO", 30.006, "nitrogen monoxide", "mole_fraction_of_nitrogen_monoxide_in_air"),
        _gas("NO2", 46.006, "nitrogen dioxide", "mole_fraction_of_nitrogen_dioxide_in_air"),
        _gas("O3", 47.997, "ozone", "mole_fraction_of_ozone_in_air"),
        _gas("ROC", 12.011, "reactive organic carbon (GRS, ppmC basis, mass as carbon)"),
        _gas("RP", 1.0, "radical pool (GRS, steady state)", None, transported=False),
        _gas("HNO3", 63.013, "nitric acid (GRS stable gaseous nitrogen, SGN)",
             "mole_fraction_of_nitric_acid_in_air"),
        _gas("H2O2", 34.015, "hydrogen peroxide", "mole_fraction_of_hydrogen_peroxide_in_air"),
        _gas("SO2", 64.064, "sulfur dioxide", "mole_fraction_of_sulfur_dioxide_in_air"),
        _gas("NH3", 17.031, "ammonia", "mole_fraction_of_ammonia_in_air"),
        _gas("CO", 28.010, "carbon monoxide", "mole_fraction_of_carbon_monoxide_in_air"),
        _gas("ISOP", 68.117, "isoprene", "mole_fraction_of_isoprene_in_air"),
        _aer("SO4", 96.062, "sulfate aerosol",
             "mass_concentration_of_sulfate_dry_aerosol_particles_in_air"),
        _aer("NO3", 62.005, "nitrate aerosol",
             "mass_concentration_of_nitrate_dry_aerosol_particles_in_air"),
        _aer("NH4", 18.039, "ammonium aerosol",
             "mass_concentration_of_ammonium_dry_aerosol_particles_in_air"),
        _aer("SNGN", 62.005, "particulate nitrogen product of GRS (as nitrate)"),
        _aer("SOA", 150.0, "secondary organic aerosol",
             "mass_concentration_of_secondary_particulate_organic_matter_dry_aerosol_particles_in_air"),
        _aer("PPM25", 1.0, "primary PM2.5"),
        _aer("PPM10", 1.0, "primary coarse PM (PM10 minus PM2.5)"),
        _aer("PM25", 1.0, "total PM2.5 (diagnostic)",
             "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"),
        _aer("PM10", 1.0, "total PM10 (diagnostic)",
             "mass_concentration_of_pm10_ambient_aerosol_particles_in_air"),
    ]
}

#: Model species that make up PM2.5 (SCIENCE.md 5.4): primary + secondary, kg kg-1 each.
PM25_COMPONENTS = ("PPM25", "SO4", "NO3", "NH4", "SNGN", "SOA")

#: Species that are diagnosed from others and never transported.
DIAGNOSTIC = ("PM25", "PM10")


def get(name: str) -> Species:
    """Return the registered species ``name``; raises KeyError listing the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown species {name!r}; known species: {', '.join(sorted(_REGISTRY))}"
        ) from None


def names() -> list[str]:
    """All registered species names, in registry order."""
    return list(_REGISTRY)


def is_known(name: str) -> bool:
    return name in _REGISTRY


def air_number_density(temperature, pressure):
    """Air molar density n/V = p/(R T), mol m-3 (T in K, p in Pa)."""
    return np.asarray(pressure, dtype=float) / (R_GAS * np.asarray(temperature, dtype=float))


def ppb_to_ugm3(x_ppb, species: str | Species, temperature=298.15, pressure=101325.0):
    """Convert a gas mole fraction in ppb to a mass concentration in ug m-3.

    ``c = x * M * p / (R T) * 1e-3`` (SCIENCE.md 5.7); T in K, p in Pa, M in g mol-1.
    """
    sp = species if isinstance(species, Species) else get(species)
    return np.asarray(x_ppb, dtype=float) * sp.molar_mass * air_number_density(
        temperature, pressure
    ) * 1e-3


def ugm3_to_ppb(c_ugm3, species: str | Species, temperature=298.15, pressure=101325.0):
    """Inverse of :func:`ppb_to_ugm3`."""
    sp = species if isinstance(species, Species) else get(species)
    return np.asarray(c_ugm3, dtype=float) / (
        sp.molar_mass * air_number_density(temperature, pressure) * 1e-3
    )


def mixing_ratio_to_ugm3(q, species: str | Species, air_density):
    """Model-internal mixing ratio -> ug m-3 given dry-air density (kg m-3).

    Gases: q in mol mol-1, ``c = q * (rho / M_air) * M * 1e6`` (M in g mol-1 -> ug).
    Aerosols: q in kg kg-1, ``c = q * rho * 1e9``.
    """
    sp = species if isinstance(species, Species) else get(species)
    q = np.asarray(q, dtype=float)
    rho = np.asarray(air_density, dtype=float)
    if sp.phase == "gas":
        return q * rho / M_AIR * sp.molar_mass * 1e6
    return q * rho * 1e9


def ugm3_to_mixing_ratio(c, species: str | Species, air_density):
    """Inverse of :func:`mixing_ratio_to_ugm3`."""
    sp = species if isinstance(species, Species) else get(species)
    c = np.asarray(c, dtype=float)
    rho = np.asarray(air_density, dtype=float)
    if sp.phase == "gas":
        return c / (rho / M_AIR * sp.molar_mass * 1e6)
    return c / (rho * 1e9)


#: Largest plausible ambient value of each species anywhere in the model domain (troposphere
#: to 100 hPa), in output units (ppb for gases, ug m-3 for aerosols) -- about ten times the
#: highest observed hourly values near sources (NO2 ~200 ppb, SO2 ~1000 ppb near smelters, CO
#: ~10 ppm in fires, PM10 ~ 3000 ug m-3 in dust storms) and the lower-stratosphere O3 at 100 hPa
#: (~1 ppm). An input above is a unit or file error (e.g. 1e30 fill values).
PLAUSIBLE_MAX: dict[str, float] = {
    "NO": 5000.0, "NO2": 2000.0, "O3": 3000.0, "ROC": 100000.0, "RP": 1000.0,
    "HNO3": 500.0, "H2O2": 500.0, "SO2": 10000.0, "NH3": 5000.0, "CO": 100000.0,
    "ISOP": 200.0, "SO4": 2000.0, "NO3": 2000.0, "NH4": 1000.0, "SNGN": 2000.0, "SOA": 2000.0,
    "PPM25": 10000.0, "PPM10": 50000.0, "PM25": 10000.0, "PM10": 50000.0,
}
#: Lowest plausible *largest* value of a species over a whole field (output units): O3 and CO
#: are everywhere in the troposphere (background ~20-40 ppb O3, ~50-100 ppb CO), so a field
#: whose maximum is below these is in the wrong unit (e.g. ppm labelled ppb).
PLAUSIBLE_FIELD_MAX_FLOOR: dict[str, float] = {"O3": 5.0, "CO": 20.0}


def implausible(name: str, values, where: str) -> str | None:
    """None when ``values`` (output units: ppb / ug m-3) of species ``name`` are plausible;
    else a message naming ``where``, the first offending index and the expected range."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    hi = PLAUSIBLE_MAX.get(name, np.inf)
    unit = get(name).output_units if is_known(name) else ""
    bad = ~np.isfinite(v) | (v < 0.0) | (v > hi)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return (f"{where}: {name} has {float(v[idx]):.6g} {unit} at index {idx}; expected finite "
                f"values in [0, {hi:g}] {unit} ({int(bad.sum())} value(s) affected)")
    floor = PLAUSIBLE_FIELD_MAX_FLOOR.get(name)
    if floor is not None and v.size and float(v.max()) < floor:
        return (f"{where}: {name} is at most {float(v.max()):.3g} {unit}, below the lowest "
                f"plausible maximum {floor:g} {unit} of an ambient field (values in another "
                f"unit, e.g. ppm labelled ppb?)")
    return None
