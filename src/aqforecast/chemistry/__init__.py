"""Chemistry: KPP-syntax mechanism files, stiff solvers, GRS + secondary PM, photolysis.

Layer 3 (DESIGN.md). Modules:

* :mod:`.parser` -- reader for the KPP equation-file subset (with ``#UNITS``, ``#PARAMETERS``,
  ``#QSSA`` extensions), :class:`Mechanism`;
* :mod:`.codegen` -- generated numba source for rates, Jacobian and integrators, cached on disk;
* :mod:`.solver` -- :class:`CompiledMechanism` (Rosenbrock ROS2/ROS3/RODAS3 and the GRS
  predictor-corrector over many cells), :func:`run_box`, :func:`box_model`;
* :mod:`.units` -- the one place model <-> mechanism units are converted;
* :mod:`.photolysis` -- solar zenith angle, clear-sky j values, cloud factor;
* :mod:`.aerosol` -- SO2 rates, in-cloud sulfate, NH4NO3 equilibrium, PM2.5;
* :mod:`.operator` -- :class:`ChemistryOperator` for the transport model.

The default mechanism (``mechanisms/grs.eqn``) is the Generic Reaction Set in ppm and minutes.
"""

from .aerosol import nh4no3_equilibrium, pm25_mass_mixing_ratio
from .operator import ChemistryDiagnostics, ChemistryOperator
from .parser import Mechanism, MechanismSyntaxError, parse_mechanism, read_mechanism
from .photolysis import cos_solar_zenith, j_no2_clear_sky, solar_zenith_angle
from .solver import (DEFAULT_MECHANISM, SOLVERS, CompiledMechanism, box_model, compile_mechanism,
                     run_box)

__all__ = [
    "ChemistryDiagnostics", "ChemistryOperator", "CompiledMechanism", "DEFAULT_MECHANISM",
    "Mechanism", "MechanismSyntaxError", "SOLVERS", "box_model", "compile_mechanism",
    "cos_solar_zenith", "j_no2_clear_sky", "nh4no3_equilibrium", "parse_mechanism",
    "pm25_mass_mixing_ratio", "read_mechanism", "run_box", "solar_zenith_angle",
]
