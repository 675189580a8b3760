"""Meteorology on the model grid: WRF fields regridded in space and interpolated in time, air
mass and air-mass fluxes for transport, Kz profiles and photolysis inputs (DESIGN.md layer 3).

* :class:`MetProvider` -- one per domain; ``state(t)``, ``air_mass_fluxes(t, dt)``,
  ``cos_zenith(t)``, ``photolysis_cloud_factor(t)`` (:mod:`.provider`);
* :func:`kz_profile` -- HB93 K-profile + local closure + K_min (:mod:`.boundary_layer`);
* :func:`cos_solar_zenith`, :func:`cloud_photolysis_factor` (:mod:`.solar`);
* :func:`remap_mass_weighted`, :func:`interp_columns` (:mod:`.vertical`).
"""

from .boundary_layer import (  # noqa: F401
    KZ_MAX,
    convective_velocity,
    kz_minimum,
    kz_profile,
    obukhov_length,
)
from .provider import AirMassFluxes, MetGridError, MetProvider, MetState, grid_window  # noqa: F401
from .solar import cloud_photolysis_factor, cos_solar_zenith, solar_zenith_angle  # noqa: F401
from .vertical import interface_dry_pressure, interp_columns, remap_mass_weighted  # noqa: F401

__all__ = [
    "MetProvider", "MetState", "AirMassFluxes", "MetGridError", "grid_window",
    "kz_profile", "kz_minimum", "obukhov_length", "convective_velocity", "KZ_MAX",
    "cos_solar_zenith", "solar_zenith_angle", "cloud_photolysis_factor",
    "interface_dry_pressure", "interp_columns", "remap_mass_weighted",
]
