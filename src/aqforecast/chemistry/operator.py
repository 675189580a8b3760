"""The chemistry operator of the transport model (CHEM + AERO of the splitting, SCIENCE.md 1.4).

One call advances a stack of species in model units (gases mol mol-1, aerosols kg kg-1, shape
``(nspec, nz, ny, nx)``, float64) by ``dt`` seconds:

1. model units -> molar mixing ratios -> mechanism units (:mod:`.units`, the one conversion place);
2. in-cloud SO2 + H2O2 titration (if the mechanism has SO2, H2O2, SO4 and cloud water is given);
3. the kinetic solve of the mechanism over all cells (Rosenbrock or predictor-corrector);
4. NH4NO3 equilibrium after (NH4)2SO4 neutralisation (if NH3, NH4, HNO3, NO3, SO4 are carried);
5. back to model units.

Mechanism species that the model does not carry (the GRS radical pool RP) are kept inside the
operator between calls. The returned :class:`ChemistryDiagnostics` holds per-cell integrated
reaction rates and the step's process terms in mol mol-1 (molar) for source apportionment
(SCIENCE.md 6.3-6.4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import aerosol
from .photolysis import cos_solar_zenith, j_h2o2_clear_sky, j_no2_clear_sky, local_solar_hour
from .solver import SOLVERS, CompiledMechanism, compile_mechanism
from .units import air_number_density_cm3, mixing_ratio_scale, model_to_mechanism_factors

__all__ = ["ChemistryOperator", "ChemistryDiagnostics"]

log = logging.getLogger(__name__)


@dataclass
class ChemistryDiagnostics:
    """Per-cell diagnostics of one chemistry step; amounts in mol mol-1 (molar) over the step.

    ``integrated_rates[j]`` is the integral of reaction ``reaction_labels[j]``'s rate (nreact,
    nz, ny, nx); ``stoichiometry`` (nvar, nreact) and ``variable`` name the mechanism species.
    """

    reaction_labels: list
    variable: list
    stoichiometry: np.ndarray
    integrated_rates: np.ndarray
    o3_net_production: np.ndarray
    sulfate_aqueous: np.ndarray
    nitrate_partitioned: np.ndarray
    ammonium_partitioned: np.ndarray
    steps: np.ndarray

    def production(self, name: str) -> np.ndarray:
        """Gross chemical production of mechanism species ``name`` over the step."""
        s = np.maximum(self.stoichiometry[self.variable.index(name)], 0.0)
        return np.tensordot(s, self.integrated_rates, axes=1)

    def loss(self, name: str) -> np.ndarray:
        """Gross chemical loss of ``name`` over the step (positive)."""
        s = np.maximum(-self.stoichiometry[self.variable.index(name)], 0.0)
        return np.tensordot(s, self.integrated_rates, axes=1)

    def rate(self, label: str) -> np.ndarray:
        return self.integrated_rates[self.reaction_labels.index(label)]

    @property
    def p_h2o2(self):
        return self.production("H2O2") if "H2O2" in self.variable else None

    @property
    def p_hno3(self):
        return self.production("HNO3") if "HNO3" in self.variable else None

    @property
    def sulfate_gas(self):
        if "SO4" not in self.variable:
            return np.zeros_like(self.steps, dtype=float)
        return self.production("SO4")

    @property
    def sulfate_produced(self):
        """Gas-phase plus in-cloud sulfate formed (mol SO4 per mol air)."""
        return self.sulfate_gas + self.sulfate_aqueous

    @property
    def regime_indicator(self):
        """P(H2O2)/P(HNO3) (Sillman 1995; SCIENCE.md 6.4); inf where P(HNO3) = 0."""
        ph, pn = self.p_h2o2, self.p_hno3
        if ph is None or pn is None:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(pn > 0.0, ph / np.where(pn > 0.0, pn, 1.0), np.inf)


class ChemistryOperator:
    """Gas chemistry + secondary inorganic aerosol over a 3-D block of cells.

    Parameters
    ----------
    mechanism: mechanism file path, parsed/compiled mechanism, or None for the default GRS file.
    species_names: model species in the order of the first axis of ``conc``.
    solver: one of ``ros2 ros3 rodas3 pece``.
    rtol, atol: solver tolerances (atol in file units; default 1e-7 ppm equivalent).
    equilibrium: run the NH4NO3 equilibrium step when its species are carried.
    """

    def __init__(self, mechanism=None, species_names=(), solver="ros3", rtol=1e-3, atol=None,
                 equilibrium=True, max_steps=100_000):
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
        self.compiled: CompiledMechanism = (mechanism if isinstance(mechanism, CompiledMechanism)
                                            else compile_mechanism(mechanism))
        mech = self.mechanism = self.compiled.mechanism
        if mech.conc_unit == "1":
            raise ValueError(f"{mech.path}: a dimensionless mechanism cannot be used by the model")
        self.species_names = list(species_names)
        dup = {n for n in self.species_names if self.species_names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate species names {sorted(dup)}")
        self.solver, self.rtol, self.atol, self.max_steps = solver, rtol, atol, max_steps
        self.equilibrium = equilibrium
        #: (mechanism index, model index) of species carried by the model.
        self._carried = [(i, self.species_names.index(n)) for i, n in enumerate(mech.variable)
                         if n in self.species_names]
        self._internal_idx = [i for i, n in enumerate(mech.variable)
                              if n not in self.species_names]
        self._internal = None
        self._last_step = None
        self._has = lambda *names: all(n in self.species_names for n in names)
        self.sec_per_unit = mech.time_unit_seconds
        if not self._carried:
            log.warning("none of the model species %s is in mechanism %s", self.species_names,
                        mech.path)

    def solver_state(self) -> dict | None:
        """What an exact restart of the solver needs, or None before the first call:
        ``internal`` (n_internal, ncell) the mechanism's species the model does not carry
        (molar mixing ratios) and ``last_step`` (ncell,) each cell's last accepted step size
        (mechanism time units), with which the next call starts."""
        if self._internal is None:
            return None
        return {"internal": self._internal, "last_step": self._last_step}

    def set_solver_state(self, internal, last_step) -> None:
        """Restore :meth:`solver_state` (arrays as it returned them, for the same cells)."""
        internal = np.ascontiguousarray(internal, dtype=float)
        last_step = np.ascontiguousarray(last_step, dtype=float).ravel()
        if internal.ndim != 2 or internal.shape[0] != len(self._internal_idx) \
                or internal.shape[1] != last_step.size:
            raise ValueError(f"solver state: internal {internal.shape} and last_step "
                             f"{last_step.shape} do not fit {len(self._internal_idx)} internal "
                             f"species")
        self._internal, self._last_step = internal, last_step

    def compile_in_background(self) -> bool:
        """Compile the mechanism for this operator's solver in a child process while the caller
        goes on (:meth:`CompiledMechanism.compile_in_background`)."""
        return self.compiled.compile_in_background(self.solver)

    def _parameters(self, shape, photolysis, cos_zenith, cloud_factor, time, lon, lat, k_so2):
        """Per-cell parameter values in file units (first-order rates converted from s-1)."""
        names = list(self.mechanism.parameters)
        vals: dict[str, np.ndarray] = {}
        if photolysis is None and cos_zenith is None and time is not None and lon is not None \
                and lat is not None:
            cos_zenith = cos_solar_zenith(time, lon, lat)
        for key, v in (photolysis or {}).items():
            vals[key] = np.broadcast_to(np.asarray(v, float), shape)
        if cos_zenith is not None:
            cz = np.broadcast_to(np.asarray(cos_zenith, float), shape)
            cf = np.broadcast_to(np.asarray(cloud_factor, float), shape)
            vals.setdefault("J_NO2", j_no2_clear_sky(cz) * cf)
            vals.setdefault("J_H2O2", j_h2o2_clear_sky(cz) * cf)
        if "K_SO2" in names and "K_SO2" not in vals:
            if k_so2 is not None:
                vals["K_SO2"] = np.broadcast_to(np.asarray(k_so2, float), shape)
            elif time is not None and lon is not None:
                vals["K_SO2"] = np.broadcast_to(
                    aerosol.so2_rate_diurnal(local_solar_hour(time, lon)), shape)
            elif "J_NO2" in vals:
                vals["K_SO2"] = aerosol.so2_rate_radiation(vals["J_NO2"])
        out = {}
        for key, v in vals.items():
            if key not in names:
                continue
            rate = key.startswith(("J_", "K_"))
            out[key] = (np.asarray(v, float) * (self.sec_per_unit if rate else 1.0)).ravel()
        return out

    def __call__(self, conc, temperature, pressure, dt, *, photolysis=None, cos_zenith=None,
                 cloud_factor=1.0, time=None, lon=None, lat=None, k_so2=None,
                 relative_humidity=None, cloud_fraction=None, cloud_water=None,
                 fixed=None) -> ChemistryDiagnostics:
        """Advance ``conc`` (nspec, nz, ny, nx; model units; updated in place) by ``dt`` s.

        temperature (K), pressure (Pa): arrays of the grid shape (or broadcastable).
        photolysis: ``{"J_NO2": s-1, ...}`` per cell, or give ``cos_zenith`` (and optionally a
        multiplicative ``cloud_factor``) to use the MCM clear-sky j values, or give ``time`` (UTC
        datetime64), ``lon`` and ``lat`` (deg, grid-broadcastable) for both. ``k_so2`` (s-1), or
        ``time`` (UTC datetime64) with ``lon`` (deg) for the CALPUFF diurnal SO2 rate; else the
        radiation-linked rate. ``relative_humidity`` (%) selects the wet NH4NO3 constant above
        the DRH. ``cloud_fraction`` (0-1) with ``cloud_water`` (g m-3) enable in-cloud sulfate.
        """
        if not (isinstance(conc, np.ndarray) and conc.dtype == np.float64
                and conc.flags.c_contiguous):
            raise ValueError("conc must be a C-contiguous float64 numpy array (updated in place)")
        if conc.ndim != 4 or conc.shape[0] != len(self.species_names):
            raise ValueError(f"conc must have shape (nspec={len(self.species_names)}, nz, ny, nx);"
                             f" got {conc.shape}")
        shape = conc.shape[1:]
        ncell = int(np.prod(shape))
        mech, cm = self.mechanism, self.compiled
        temp = np.broadcast_to(np.asarray(temperature, float), shape).ravel()
        press = np.broadcast_to(np.asarray(pressure, float), shape).ravel()
        flat = conc.reshape(len(self.species_names), ncell)
        # 1. model units -> molar mixing ratio (mol mol-1) for every model species
        molar = model_to_mechanism_factors("mol/mol", self.species_names, 298.15, 101325.0)
        x = flat * molar.reshape(-1, 1)
        ix = {n: i for i, n in enumerate(self.species_names)}
        # 2. in-cloud sulfate
        aq = np.zeros(ncell)
        if cloud_fraction is not None and cloud_water is not None and self._has("SO2", "H2O2",
                                                                                "SO4"):
            aq = aerosol.aqueous_sulfate(
                x[ix["SO2"]], x[ix["H2O2"]], x[ix["SO4"]],
                np.broadcast_to(np.asarray(cloud_fraction, float), shape).ravel(),
                np.broadcast_to(np.asarray(cloud_water, float), shape).ravel())
        # 3. kinetic solve in mechanism units
        scale = np.broadcast_to(mixing_ratio_scale(mech.conc_unit, temp, press), (ncell,))
        if self._internal is None or self._internal.shape[1] != ncell:
            self._internal = np.zeros((len(self._internal_idx), ncell))
            self._last_step = np.zeros(ncell)
        y = np.empty((ncell, cm.nvar))
        for i, m in self._carried:
            y[:, i] = x[m] * scale
        for q, i in enumerate(self._internal_idx):
            y[:, i] = self._internal[q] * scale
        o3_before = y[:, mech.index("O3")].copy() if "O3" in mech.variable else None
        params = self._parameters(shape, photolysis, cos_zenith, cloud_factor, time, lon, lat,
                                  k_so2)
        kc = cm.rate_constants(temp, press, params, fixed)
        res = cm.integrate(y, kc, dt / self.sec_per_unit, solver=self.solver, rtol=self.rtol,
                           atol=self.atol, first_step=self._last_step, max_steps=self.max_steps)
        self._last_step = res.last_step
        for i, m in self._carried:
            x[m] = y[:, i] / scale
        for q, i in enumerate(self._internal_idx):
            self._internal[q] = y[:, i] / scale
        o3_net = ((y[:, mech.index("O3")] - o3_before) / scale if o3_before is not None
                  else np.zeros(ncell))
        # 4. NH4NO3 equilibrium (molar mixing ratios; K from ppb2 to (mol/mol)2)
        dno3 = np.zeros(ncell)
        dnh4 = np.zeros(ncell)
        if self.equilibrium and self._has("NH3", "NH4", "HNO3", "NO3", "SO4"):
            k = aerosol.nh4no3_k_ppb2(temp, None if relative_humidity is None else
                                      np.broadcast_to(np.asarray(relative_humidity, float),
                                                      shape).ravel()) * 1e-18
            no3_0, nh4_0 = x[ix["NO3"]].copy(), x[ix["NH4"]].copy()
            rows = [np.ascontiguousarray(x[ix[n]]) for n in ("NH3", "NH4", "HNO3", "NO3", "SO4")]
            aerosol.nh4no3_equilibrium(*rows, np.ascontiguousarray(np.broadcast_to(k, (ncell,))))
            for n, r in zip(("NH3", "NH4", "HNO3", "NO3", "SO4"), rows):
                x[ix[n]] = r
            dno3, dnh4 = x[ix["NO3"]] - no3_0, x[ix["NH4"]] - nh4_0
        # 5. back to model units
        flat[:] = x / molar.reshape(-1, 1)
        rint = (res.integrated_rates / scale[:, None]).T.reshape((cm.nreact,) + shape)
        return ChemistryDiagnostics(
            reaction_labels=mech.labels, variable=list(mech.variable),
            stoichiometry=mech.stoichiometry(), integrated_rates=rint,
            o3_net_production=o3_net.reshape(shape), sulfate_aqueous=aq.reshape(shape),
            nitrate_partitioned=dno3.reshape(shape), ammonium_partitioned=dnh4.reshape(shape),
            steps=res.steps.reshape(shape))
