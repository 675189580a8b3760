"""Compiled mechanisms, the stiff solvers over many cells, and the box model.

Solvers (``solver=`` argument):

* ``"ros2"``, ``"ros3"``, ``"rodas3"`` -- Rosenbrock methods with embedded error estimate and
  adaptive step (KPP's ``Rosenbrock`` integrator: Sandu et al. 1997, Atmos. Environ. 31, 3459;
  step control ``h_new = h min(6, max(0.2, 0.9 err**(-1/elo)))``, a second consecutive rejection
  shrinks h by 10). Each cell has its own step sequence; ranges of cells run on threads
  (:func:`aqforecast.kernels.threads.parallel_range`).
  The analytical Jacobian is generated from the mechanism, as sparse code (only its nonzeros),
  and the linear systems ``(I/(gamma h) - J) K = F`` are solved KPP style (Sandu et al. 1997;
  Damian et al. 2002, Comput. Chem. Eng. 26, 1567): a sparse LU factorisation *without pivoting*
  in a Markowitz elimination order fixed when the mechanism is compiled, written out as
  straight-line code with the fill-in precomputed (for GRS: 27 stored entries instead of 100, no
  fill-in). No pivoting is needed because ``I/(gamma h) - J`` is diagonally dominant for the step
  sizes taken; as a guard, a step with a pivot that is not finite or not above ``1e-10/(gamma h)``
  uses the dense partial-pivoting LU instead (and h is halved if that is singular too).
  ``compile_mechanism(..., lu="dense")`` (or ``AQFORECAST_CHEMISTRY_LU=dense``) uses the dense LU
  on every step, the reference of the sparse one. Per-reaction integrated rates are
  integrated *with* the concentrations as extra (non-stiff, non-feedback) components of the same
  Rosenbrock scheme, so ``c(t) - c(0) = S . integral(r dt)`` holds to round-off as long as no
  clipping occurs.
  **Positivity:** after every accepted step negative concentrations are set to 0 (as CMAQ's
  ``rbsolver``); the error control keeps the clipped amounts below the tolerances. Clipping would
  break the linear invariants (atom balances), so a step that clipped anything is followed by the
  concentration-weighted projection onto the invariants of the stoichiometric matrix (the mass
  fixer below); the ``S . integral(r)`` identity is then off by the clipped amounts.
* ``"pece"`` -- the cheap HYSPLIT-GRS exponential predictor-corrector (Cope/Hess; SCIENCE.md 5.5)
  with species listed in ``#QSSA`` held in steady state (analytic quadratic root each
  evaluation). The step limits the relative change of every significant species to ``rtol``
  (HYSPLIT's lambda = 1e-3). The exponential update is positive by construction; since it does
  not conserve linear invariants (e.g. total N) each step is followed by a concentration-weighted
  projection onto the invariants of the stoichiometric matrix (mass fixer). Integrated rates are
  trapezoidal (approximate).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..kernels.background import BackgroundCompile
from ..kernels.chemistry import ROSENBROCK_METHODS, rosenbrock_tableau
from ..kernels.layout import OneLayout
from ..kernels.threads import parallel_range
from .codegen import conservation_matrix, load_module
from .parser import Mechanism, read_mechanism
from .units import air_number_density_cm3, default_atol, mixing_ratio_scale

__all__ = ["CompiledMechanism", "compile_mechanism", "IntegrationResult", "box_model", "run_box",
           "SOLVERS", "DEFAULT_MECHANISM"]

log = logging.getLogger(__name__)
SOLVERS = ROSENBROCK_METHODS + ("pece",)
#: Linear algebra of the Rosenbrock solvers (``compile_mechanism(..., lu=...)``).
LU_OPTIONS = ("sparse", "dense")
#: The default mechanism shipped with the package (GRS + sulfate + H2O2; see the file header).
DEFAULT_MECHANISM = Path(__file__).with_name("mechanisms") / "grs.eqn"
_COMPILED: dict[tuple, "CompiledMechanism"] = {}


@dataclass
class IntegrationResult:
    """Per-cell results of one integration: ``integrated_rates`` (ncell, nreact) in file
    concentration units, ``steps`` (ncell,) (negative where the step limit was hit) and
    ``last_step`` (ncell,) in file time units (reuse it as the next call's first step)."""

    integrated_rates: np.ndarray
    steps: np.ndarray
    last_step: np.ndarray


class CompiledMechanism:
    """A mechanism compiled to numba functions; build with :func:`compile_mechanism`."""

    def __init__(self, mechanism: Mechanism, lu: str | None = None):
        self.mechanism = mechanism
        self.lu = _lu_option(lu)
        self.module = load_module(mechanism)
        self._rate_constants = OneLayout(self.module.compute_rate_constants, exact=True)
        self._rosenbrock = OneLayout(self.module.integrate_rosenbrock if self.lu == "sparse"
                                     else self.module.integrate_rosenbrock_dense, exact=True)
        self._pece = OneLayout(self.module.integrate_pece, exact=True)
        self.invariants = conservation_matrix(mechanism)
        self._tableaux = {m: rosenbrock_tableau(m) for m in ROSENBROCK_METHODS}
        self._background = None  # a BackgroundCompile once compile_in_background is called

    def compile_in_background(self, solver: str = "ros3") -> bool:
        """Compile this mechanism's kernels for ``solver`` in a child process, so that the
        compilation (the largest part of the model's first-call JIT time) overlaps with
        building the rest of the model on another core
        (:class:`~aqforecast.kernels.background.BackgroundCompile`).

        The child makes the same calls as :meth:`integrate` on two cells and fills numba's
        on-disk cache (``NUMBA_CACHE_DIR``, inherited); the first :meth:`rate_constants` or
        :meth:`integrate` of this process waits for it and then loads the compiled code from the
        cache. If the child fails, this process compiles as usual. Started once per process;
        returns whether a child was started."""
        if self._background is None:
            payload = json.dumps({"text": self.mechanism.text, "path": self.mechanism.path,
                                  "solver": solver, "lu": self.lu})
            self._background = BackgroundCompile(self.mechanism.path, _CHILD,
                                                 stdin=payload.encode())
        return self._background.start()

    def _wait_background(self) -> None:
        if self._background is not None:  # two domains may make their first call on two threads
            self._background.wait()

    @property
    def nvar(self) -> int:
        return len(self.mechanism.variable)

    @property
    def nreact(self) -> int:
        return len(self.mechanism.reactions)

    def parameter_array(self, ncell: int, values: dict | None) -> np.ndarray:
        """(ncell, npar) array from the file's defaults overridden by ``values`` (scalars or
        (ncell,) arrays, in file units)."""
        names = list(self.mechanism.parameters)
        par = np.empty((ncell, len(names)))
        par[:] = np.array(list(self.mechanism.parameters.values()), dtype=float)
        for key, v in (values or {}).items():
            if key not in names:
                raise KeyError(f"{key!r} is not a parameter of {self.mechanism.path}; "
                               f"known: {', '.join(names) or '(none)'}")
            par[:, names.index(key)] = np.broadcast_to(np.asarray(v, dtype=float), (ncell,))
        return par

    def fixed_array(self, ncell, temperature, pressure, values: dict | None) -> np.ndarray:
        """(ncell, nfix) fixed-species concentrations in file units. ``M``/``AIR`` default to
        the air density, ``O2`` to 0.2095 and ``N2`` to 0.7808 of it; others must be given."""
        mech = self.mechanism
        fix = np.empty((ncell, len(mech.fixed)))
        air = np.broadcast_to(mixing_ratio_scale(mech.conc_unit, temperature, pressure), (ncell,))
        frac = {"M": 1.0, "AIR": 1.0, "O2": 0.2095, "N2": 0.7808}
        values = values or {}
        for i, name in enumerate(mech.fixed):
            if name in values:
                fix[:, i] = np.broadcast_to(np.asarray(values[name], dtype=float), (ncell,))
            elif name in frac:
                fix[:, i] = frac[name] * air
            else:
                raise KeyError(f"no concentration given for fixed species {name!r} of {mech.path}")
        return fix

    def rate_constants(self, temperature, pressure, params=None, fixed=None) -> np.ndarray:
        """Rate constants (ncell, nreact) in file units, fixed-species factors included."""
        self._wait_background()
        temp = np.atleast_1d(np.asarray(temperature, dtype=float)).ravel()
        press = np.broadcast_to(np.asarray(pressure, dtype=float), temp.shape).ravel().copy()
        n = temp.size
        par = self.parameter_array(n, params)
        fix = self.fixed_array(n, temp, press, fixed)
        kc = np.empty((n, self.nreact))
        parallel_range(self._rate_constants, n, temp, press,
                       air_number_density_cm3(temp, press), par, fix, kc)
        return kc

    def default_atol(self, temperature=298.15, pressure=101325.0) -> np.ndarray:
        return np.full(self.nvar, default_atol(self.mechanism.conc_unit, temperature, pressure))

    def integrate(self, conc, kc, duration, solver="ros3", rtol=1e-3, atol=None, first_step=None,
                  max_steps=200_000) -> IntegrationResult:
        """Advance ``conc`` (ncell, nvar; file units; modified in place) by ``duration`` (file
        time units) with rate constants ``kc`` from :meth:`rate_constants`."""
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
        if conc.dtype != np.float64 or not conc.flags.c_contiguous:
            raise ValueError("conc must be a C-contiguous float64 array (ncell, nvar)")
        self._wait_background()
        n = conc.shape[0]
        atol = self.default_atol() if atol is None else np.broadcast_to(
            np.asarray(atol, dtype=float), (self.nvar,)).copy()
        rint = np.zeros((n, self.nreact))
        steps = np.zeros(n, dtype=np.int64)
        h = np.zeros(n) if first_step is None else np.broadcast_to(
            np.asarray(first_step, float), (n,)).copy()
        if duration <= 0.0 or n == 0:
            return IntegrationResult(rint, steps, h)
        if solver == "pece":
            parallel_range(self._pece, n, conc, kc, float(duration), float(rtol), atol,
                           self.invariants, max_steps, rint, steps)
        else:
            a, c, m, e, newf, gam, elo = self._tableaux[solver]
            hmin = 1e-14 * duration
            parallel_range(self._rosenbrock, n, conc, kc, float(duration), float(rtol), atol,
                           a, c, m, e, newf, gam, elo, h, hmin, max_steps, rint, steps,
                           self.invariants)
        bad = int(np.count_nonzero(steps < 0))
        if bad:
            log.warning("%s: %d of %d cells hit the step limit (%d) with solver %s",
                        self.mechanism.path, bad, n, max_steps, solver)
        return IntegrationResult(rint, steps, h)


_CHILD = ("import json, sys\n"
          "from aqforecast.chemistry.solver import _compile_for_cache\n"
          "_compile_for_cache(**json.load(sys.stdin))\n")


def _compile_for_cache(text: str, path: str, solver: str, lu: str = "sparse") -> None:
    """Body of the :meth:`CompiledMechanism.compile_in_background` child: the argument types of
    :meth:`CompiledMechanism.integrate` as the model makes them, on two cells."""
    from . import aerosol
    from .parser import parse_mechanism

    cm = CompiledMechanism(parse_mechanism(text, path), lu=lu)
    n = 2
    kc = cm.rate_constants(np.full(n, 290.0), np.full(n, 9.0e4))
    y = np.full((n, cm.nvar), 1e-6)
    cm.integrate(y, kc, 1e-3, solver=solver, rtol=1e-3, first_step=np.zeros(n), max_steps=10)
    rows = [np.full(n, 1e-9) for _ in range(6)]
    aerosol.nh4no3_equilibrium(*rows)


def _lu_option(lu: str | None) -> str:
    lu = (os.environ.get("AQFORECAST_CHEMISTRY_LU") or "sparse") if lu is None else lu
    if lu not in LU_OPTIONS:
        raise ValueError(f"unknown lu={lu!r}; expected one of {LU_OPTIONS}")
    return lu


def compile_mechanism(mechanism: Mechanism | str | Path | None = None,
                      lu: str | None = None) -> CompiledMechanism:
    """Compile (once per mechanism text) the mechanism object or file; ``None`` = default.

    ``lu``: linear algebra of the Rosenbrock solvers, ``"sparse"`` (KPP-style sparse LU without
    pivoting, dense fallback per step; the default) or ``"dense"`` (dense LU with partial
    pivoting on every step); ``None`` reads ``AQFORECAST_CHEMISTRY_LU`` (default sparse)."""
    mech = mechanism if isinstance(mechanism, Mechanism) else read_mechanism(
        DEFAULT_MECHANISM if mechanism is None else mechanism)
    lu = _lu_option(lu)
    key = (mech.source_hash, lu)
    if key not in _COMPILED:
        _COMPILED[key] = CompiledMechanism(mech, lu=lu)
    return _COMPILED[key]


def box_model(mechanism, initial: dict, duration: float, temperature=298.0, pressure=101325.0,
              parameters: dict | None = None, rtol=1e-3, atol=None, solver="rodas3"):
    """Box integration of one cell; returns ``(final, integrated_rates)`` as dicts in file units
    (species -> concentration, reaction label -> integral of its rate over ``duration``)."""
    cm = compile_mechanism(mechanism)
    mech = cm.mechanism
    unknown = [k for k in initial if k not in mech.variable and k not in mech.fixed]
    if unknown:
        raise KeyError(f"species {unknown} are not declared in {mech.path}; known: "
                       f"{', '.join(mech.variable + mech.fixed)}")
    y = np.zeros((1, cm.nvar))
    for k, v in initial.items():
        if k in mech.variable:
            y[0, mech.index(k)] = float(v)
    fixed = {k: v for k, v in initial.items() if k in mech.fixed}
    kc = cm.rate_constants(temperature, pressure, parameters, fixed)
    res = cm.integrate(y, kc, duration, solver=solver, rtol=rtol, atol=atol, max_steps=10_000_000)
    final = {name: float(y[0, i]) for i, name in enumerate(mech.variable)}
    final.update({k: float(v) for k, v in fixed.items()})
    rates = {r.label: float(res.integrated_rates[0, j]) for j, r in enumerate(mech.reactions)}
    return final, rates


def run_box(mechanism_path, initial: dict[str, float], duration: float, temperature=298.0,
            pressure=101325.0, photolysis: dict | None = None, rtol=1e-3) -> dict[str, float]:
    """Integrate the mechanism file alone in one box (RODAS3 Rosenbrock).

    ``initial``: species -> concentration in the file's ``#UNITS`` concentration unit (missing
    #DEFVAR species start at 0; #DEFFIX species may be given here); ``duration`` in the file's
    time unit; ``temperature`` K, ``pressure`` Pa; ``photolysis``: values for ``J_*`` rates (per
    file time unit) and any other ``#PARAMETERS``. Returns the final concentrations, file units.
    """
    final, _ = box_model(mechanism_path, initial, duration, temperature, pressure, photolysis,
                         rtol=rtol)
    return final
