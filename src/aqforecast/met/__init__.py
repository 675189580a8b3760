"""Meteorology on the model grid: WRF fields regridded in space and interpolated in time, air
mass and air-mass fluxes for transport and Kz profiles (DESIGN.md layer 3). Solar geometry and
the cloud correction of photolysis live in :mod:`aqforecast.chemistry.photolysis`.

* :class:`MetProvider` -- one per domain; ``state(t)``, ``air_mass_fluxes(t, dt)``
  (:mod:`.provider`);
* :func:`kz_profile` -- HB93 K-profile + local closure + K_min (:mod:`.boundary_layer`);
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
from .vertical import interface_dry_pressure, interp_columns, remap_mass_weighted  # noqa: F401

__all__ = [
    "MetProvider", "MetState", "AirMassFluxes", "MetGridError", "grid_window",
    "kz_profile", "kz_minimum", "obukhov_length", "convective_velocity", "KZ_MAX",
    "interface_dry_pressure", "interp_columns", "remap_mass_weighted",
]
