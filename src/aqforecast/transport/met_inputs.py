"""The hour's meteorology as the inputs of the physics the transport model sequences.

The met layer gives a :class:`~aqforecast.met.MetState` per time; chemistry and emissions take
plain arrays. This module is the wiring between them (DESIGN.md: layer 4 composes layer 3):

* :func:`photolysis_cloud_factor` -- per-layer cloud correction of the clear-sky j values
  (Chang et al. 1987, :func:`aqforecast.chemistry.photolysis.cloud_photolysis_factor`) from the
  layer cloud fraction, the column liquid water path and the layer heights;
* :func:`relative_humidity_percent` -- RH over water (Bolton 1980, as wrf-python) for the
  NH4NO3 equilibrium constant above the deliquescence RH (Mozurkewich 1993);
* :func:`plume_met` -- :class:`~aqforecast.emissions.vertical.PlumeMet` for Briggs plume rise:
  layer temperature, wind speed and potential-temperature gradient, surface friction velocity,
  sensible heat flux, air density and PBL height.

All take global (nz, ny, nx) / (ny, nx) met arrays and a ``local`` function that cuts a rank's
column block out of them (identity in serial runs).
"""

from __future__ import annotations

import numpy as np

from ..chemistry.photolysis import cloud_photolysis_factor, cos_solar_zenith
from ..emissions.vertical import PlumeMet
from ..io.wrf import relative_humidity

__all__ = ["photolysis_cloud_factor", "relative_humidity_percent", "plume_met"]


def _identity(a):
    return a


def photolysis_cloud_factor(s, time, lon, lat, local=_identity) -> tuple[np.ndarray, np.ndarray]:
    """(cos of the solar zenith angle (ny, nx), cloud factor F (nz, ny, nx)) at ``time`` (UTC)
    on the cells at ``lon``/``lat`` (deg; already local) from the met state ``s``.

    Uses the column liquid water path ``s.lwp`` (g m-2) where the met carries cloud water; a
    met without any (``lwp`` zero everywhere, e.g. no QCLOUD) falls back to the LWC proxy of
    the cloudy layers. The choice is made on the global field, so every rank makes the same.
    """
    cosz = cos_solar_zenith(time, lon, lat)
    lwp = local(s.lwp) if np.any(s.lwp > 0.0) else None
    return cosz, cloud_photolysis_factor(cosz, local(s.cldfra), local(s.z_interface), lwp)


def relative_humidity_percent(s, local=_identity) -> np.ndarray:
    """Relative humidity over water, % (nz, ny, nx), clipped to [0, 100]."""
    rh = relative_humidity(local(s.qv), local(s.p), local(s.t)) * 100.0
    return np.clip(rh, 0.0, 100.0)


def plume_met(s) -> PlumeMet:
    """Plume-rise meteorology of the whole grid from the met state ``s`` (global arrays).

    dtheta/dz at layer centres is the centred difference of theta over the layer-centre
    heights (one-sided at the ground and the lid), K m-1; the air density is the dry density of
    the ground layer, kg m-3.
    """
    theta, zc = s.theta, s.z_centre
    dth = np.empty_like(theta)
    if theta.shape[0] > 1:
        dth[1:-1] = (theta[2:] - theta[:-2]) / (zc[2:] - zc[:-2])
        dth[0] = (theta[1] - theta[0]) / (zc[1] - zc[0])
        dth[-1] = (theta[-1] - theta[-2]) / (zc[-1] - zc[-2])
    else:
        dth[...] = 0.0
    return PlumeMet(z_interfaces=s.z_interface, temperature=s.t,
                    wind_speed=np.hypot(s.u, s.v), dthetadz=dth, ustar=s.ust,
                    heat_flux=s.hfx, air_density=s.rho_dry[0], pblh=s.pblh)
