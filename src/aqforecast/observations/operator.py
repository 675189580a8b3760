"""Station observation operator: model surface fields -> the observed quantities at stations.

H(x) for a station network (SCIENCE.md 6): the model's lowest layer, bilinear between cell
centres (:class:`aqforecast.observations.sampling.StationSampler`, the sampler verification
uses), converted to the units of ``obs.nc`` (HJ 633: ug m-3, CO mg m-3):

* gases: mole fraction -> ppb -> mass concentration at the reporting reference state of
  GB 3095-2012 (298.15 K, 1013.25 hPa), the state the observations refer to;
* PM2.5: the sum of :data:`aqforecast.species.PM25_COMPONENTS` (kg kg-1) times the
  ambient dry-air density (kg m-3) x 1e9; PM10: PM2.5 + PPM10.

Observation error (standard deviation, obs units): the instrument error ``max(abs_floor,
rel x y)`` combined in quadrature with a representativeness error that grows with the grid
spacing: ``sigma_r = rel_r x y x sqrt(dx / L_r)`` with L_r = 2 km (a station sees ~2 km around
it, Elbern et al. 2007, ACP 7, 3749, table 2 uses 2-10 km by station type) [L]; on a 3 km grid
with rel_r = 0.2 that is 24 % of the value, on 1 km 14 %.
"""

from __future__ import annotations

import numpy as np

from .. import species as species_registry
from ..species import PM25_COMPONENTS
from .sampling import StationSampler

__all__ = ["model_equivalent", "StationOperator", "observation_error", "OBS_SPECIES",
           "INSTRUMENT_ERROR", "REPRESENTATIVENESS_LENGTH_KM"]

#: obs.nc variable -> how it is made from model species
OBS_SPECIES = {"PM25": "PM2.5", "PM10": "PM10", "SO2": "SO2", "NO2": "NO2", "CO": "CO",
               "O3": "O3"}
REFERENCE_STATE = (298.15, 101325.0)
#: (absolute floor in obs units, relative error) of the instruments (HJ 653/654 accept +-10 %
#: for PM and gases analysers at span; floors ~2x detection limits) [L]
INSTRUMENT_ERROR = {"PM25": (3.0, 0.10), "PM10": (5.0, 0.10), "SO2": (3.0, 0.10),
                    "NO2": (3.0, 0.10), "CO": (0.05, 0.10), "O3": (4.0, 0.10)}
REPRESENTATIVENESS_LENGTH_KM = 2.0
REPRESENTATIVENESS_REL = 0.2


def model_equivalent(name: str, surface: dict, air_density) -> np.ndarray:
    """The obs.nc quantity ``name`` (PM25, PM10, SO2, NO2, CO, O3) from model surface fields.

    surface: species -> (ny, nx) model mixing ratios (gases mol mol-1, aerosols kg kg-1);
    air_density: (ny, nx) dry-air density of the layer, kg m-3. Returns (ny, nx) in obs units.
    """
    rho = np.asarray(air_density, float)
    if name in ("PM25", "PM10"):
        parts = [c for c in PM25_COMPONENTS if c in surface]
        if not parts:
            raise KeyError(f"{name}: the model has none of the PM2.5 components "
                           f"{PM25_COMPONENTS}")
        kgkg = sum(np.asarray(surface[c], float) for c in parts)
        if name == "PM10":
            kgkg = kgkg + np.asarray(surface.get("PPM10", 0.0), float)
        return kgkg * rho * 1e9
    sp = OBS_SPECIES[name]
    if sp not in surface:
        raise KeyError(f"{name}: the model has no {sp}")
    ug = species_registry.ppb_to_ugm3(np.asarray(surface[sp], float) * 1e9, sp,
                                      *REFERENCE_STATE)
    return ug / 1000.0 if sp == "CO" else ug


def observation_error(name: str, y, dx_km: float) -> np.ndarray:
    """Observation error standard deviation (obs units) of values ``y`` on a grid of spacing
    ``dx_km``: instrument and representativeness errors in quadrature (module docstring)."""
    y = np.abs(np.asarray(y, float))
    floor, rel = INSTRUMENT_ERROR[name]
    inst = np.maximum(floor, rel * y)
    repr_ = REPRESENTATIVENESS_REL * y * np.sqrt(dx_km / REPRESENTATIVENESS_LENGTH_KM)
    return np.sqrt(inst ** 2 + repr_ ** 2)


class StationOperator:
    """The linear station operator of one grid: H (nobs, ny*nx) of bilinear weights.

    ``StationOperator(lon2d, lat2d, station_lon, station_lat)``; :attr:`inside` marks the
    stations inside the grid; ``op(field)`` samples a (ny, nx) field; :attr:`H` the sparse
    matrix (the same weights)."""

    def __init__(self, lon2d, lat2d, station_lon, station_lat):
        self.sampler = StationSampler.build(lon2d, lat2d, station_lon, station_lat, "bilinear")
        self.shape = np.shape(lon2d)
        self.H = self.sampler.matrix(self.shape)
        self.inside = self.sampler.inside

    def __call__(self, field) -> np.ndarray:
        return self.sampler(field)
