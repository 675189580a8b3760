"""Data assimilation of surface observations into the gridded model state.

Layer 7 (DESIGN.md). The numerical cores (:mod:`.oi`, :mod:`.letkf`) use numpy / scipy / numba
and :mod:`aqforecast.kernels` only: pure array-in, array-out steps. The cycle's pieces around them:

- :mod:`aqforecast.observations.operator` (layer 3, shared with the inversion): model surface
  fields -> observed quantities at stations, bilinear H, observation errors;
- :mod:`.analysis`: the ``aqforecast assimilate`` stage (background run -> analysis directory).

- :mod:`.oi`: optimal interpolation (Lorenc 1986; Daley 1991) solved in observation space,
  ``xa = xb + B H^T (H B H^T + R)^-1 (y - H xb)``, with a distance-based background covariance
  (Gaspari & Cohn 1999 or Gaussian; never formed n x n), innovation statistics (O-B, O-A,
  chi^2) and optional analysis error variances.
- :mod:`.letkf`: global ETKF and the localized ETKF of Hunt, Kostelich & Szunyogh (2007,
  Physica D 230, 112-126) with Gaspari-Cohn R-localisation and multiplicative inflation; the
  per-point loop is a numba kernel threaded over grid points.
- :mod:`.inflation`: adaptive multiplicative inflation from the innovation statistics (Li,
  Kalnay & Miyoshi 2009; Miyoshi 2011's Gaussian prior, spatially uniform) and relaxation to
  prior spread (Whitaker & Hamill 2012).

Shapes: states (n,) on the flattened grid, ensembles member-major (k, n), observation operators
(nobs, n) scipy.sparse (a station = bilinear weights of up to 4 cells), coordinates in km.
"""

from .inflation import (InflationEstimate, adaptive_inflation, innovation_inflation,
                        relax_to_prior_spread)
from .letkf import (LocalObservations, etkf_analysis, letkf_analysis, local_observations,
                    mean_preserving_rotation)
from .oi import (DistanceCovariance, OIDiagnostics, gaspari_cohn, observation_operator,
                 optimal_interpolation)

__all__ = ["optimal_interpolation", "observation_operator", "DistanceCovariance",
           "OIDiagnostics", "gaspari_cohn", "etkf_analysis", "letkf_analysis",
           "local_observations", "LocalObservations", "mean_preserving_rotation",
           "adaptive_inflation", "innovation_inflation", "relax_to_prior_spread",
           "InflationEstimate"]
