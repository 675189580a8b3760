"""Vertical mixing (diffusion + emissions + dry deposition) and wet scavenging operators.

:class:`VerticalMixing` is the VDIFF step of SCIENCE.md 1.4 / 3.2: implicit (backward-Euler by
default) vertical diffusion per column, emissions injected as a surface flux and per elevated
layer, dry deposition as the implicit lower-boundary sink. :class:`WetScavenging` applies
c <- c exp(-A P^B dt) (SCIENCE.md 4.3). Both return the deposited amount per species for the
budget; the numerics are in :mod:`aqforecast.kernels.diffusion` and
:mod:`aqforecast.kernels.deposition`.

Units: tracer mixing ratios q in any unit [q] (mol mol-1 or kg kg-1); air density kg m-3; layer
thickness m; Kz m2 s-1; v_d m s-1; emissions [q] kg-air m-2 s-1 (kg m-2 s-1 of species for q in
kg kg-1); cell area m2; deposited amounts [q] kg-air (kg of species for q in kg kg-1), or per
unit area ([q] kg m-2) when no cell area is given.
"""

from __future__ import annotations

import numpy as np

from ..kernels import deposition as kdep
from ..kernels import diffusion as kdiff

__all__ = ["VerticalMixing", "WetScavenging"]


def _check_shape(name, array, expected):
    if array.shape != tuple(expected):
        raise ValueError(f"{name} has shape {array.shape}, expected {tuple(expected)}")


class VerticalMixing:
    """Implicit vertical diffusion with emissions and dry deposition for a 4-D tracer stack.

    Parameters
    ----------
    shape: (nz, ny, nx) interior grid shape (level 0 at the ground).
    nspec: number of tracer rows (species x tags).
    halo: ghost width of the tracer array (ghosts are neither read nor written).
    cell_area: (ny, nx) true horizontal cell area A = dx dy / m**2, m2, or None (per-area budget).
    theta: time implicitness, 1 = backward Euler (default, positive), 0.5 = Crank-Nicolson.

    Use :meth:`set_met` whenever the meteorology changes, then call
    ``op(q, dt, deposition_velocity=None, emissions=None)`` with q (nspec, nz+2h, ny+2h, nx+2h),
    dt in s, deposition_velocity (nspec, ny, nx) m s-1 and emissions (nspec, ne, ny, nx) for the
    lowest ne layers. It returns the dry-deposited amount per species during the step, (nspec,);
    the per-column amounts ([q] kg m-2) are in :attr:`deposited`.
    """

    def __init__(self, shape, nspec, halo=0, cell_area=None, theta=1.0):
        if not 0.5 <= theta <= 1.0:
            raise ValueError(f"theta must be in [0.5, 1], got {theta}")
        self.shape = tuple(int(s) for s in shape)
        nz, ny, nx = self.shape
        self.nspec = int(nspec)
        self.halo = int(halo)
        self.theta = float(theta)
        self.cell_area = None if cell_area is None else np.asarray(cell_area, dtype=np.float64)
        if self.cell_area is not None:
            _check_shape("cell_area", self.cell_area, (ny, nx))
        self.conductance = np.zeros((nz + 1, ny, nx))
        self.rho_dz = np.ones(self.shape)
        self._rho_surface = np.ones((ny, nx))
        self.deposited = np.zeros((self.nspec, ny, nx))
        self._dep_conductance = np.zeros((self.nspec, ny, nx))
        self._no_emissions = np.zeros((self.nspec, 0, ny, nx))
        self._met_set = False

    def set_met(self, air_density, layer_thickness, kz):
        """Precompute column coefficients.

        air_density: (nz, ny, nx) kg m-3; layer_thickness: (nz, ny, nx) m;
        kz: (nz+1, ny, nx) eddy diffusivity at layer interfaces (index k = bottom of layer k),
        m2 s-1.
        """
        nz, ny, nx = self.shape
        _check_shape("air_density", air_density, self.shape)
        _check_shape("layer_thickness", layer_thickness, self.shape)
        _check_shape("kz", kz, (nz + 1, ny, nx))
        if np.any(layer_thickness <= 0) or np.any(air_density <= 0):
            raise ValueError("air_density and layer_thickness must be positive")
        np.multiply(air_density, layer_thickness, out=self.rho_dz)
        z_centre = np.cumsum(layer_thickness, axis=0) - 0.5 * layer_thickness
        kdiff.diffusion_conductance(np.ascontiguousarray(air_density, dtype=np.float64),
                                    np.ascontiguousarray(kz, dtype=np.float64), z_centre,
                                    self.conductance)
        self._rho_surface[...] = air_density[0]
        self._met_set = True

    def __call__(self, q, dt, deposition_velocity=None, emissions=None):
        if not self._met_set:
            raise RuntimeError("VerticalMixing.set_met must be called before the first step")
        nz, ny, nx = self.shape
        h = self.halo
        _check_shape("q", q, (self.nspec, nz + 2 * h, ny + 2 * h, nx + 2 * h))
        if deposition_velocity is None:
            self._dep_conductance[...] = 0.0
        else:
            _check_shape("deposition_velocity", deposition_velocity, (self.nspec, ny, nx))
            np.multiply(deposition_velocity, self._rho_surface, out=self._dep_conductance)
        if emissions is None:
            emissions = self._no_emissions
        elif emissions.ndim != 4 or emissions.shape[0] != self.nspec or \
                emissions.shape[2:] != (ny, nx) or emissions.shape[1] > nz:
            raise ValueError(f"emissions has shape {emissions.shape}, expected "
                             f"({self.nspec}, ne <= {nz}, {ny}, {nx})")
        kdiff.vertical_diffusion(q, h, self.rho_dz, self.conductance, self._dep_conductance,
                                 emissions, float(dt), self.theta, self.deposited)
        if self.cell_area is None:
            return self.deposited.sum(axis=(1, 2))
        return np.einsum("sji,ji->s", self.deposited, self.cell_area)


class WetScavenging:
    """First-order below/in-cloud scavenging, Lambda = A P^B, applied as exp(-Lambda dt).

    Parameters
    ----------
    shape: (nz, ny, nx); coef_a: (nspec,) A in s-1 (0 = not scavenged); coef_b: (nspec,) B;
    halo: ghost width of the tracer array; cell_area: (ny, nx) m2 or None.

    ``op(q, dt, precip, air_mass_per_area)`` with precip (nz, ny, nx) in mm h-1 (rate through each
    layer, 0 above cloud top) and air_mass_per_area = rho dz (nz, ny, nx) kg m-2 updates q in place
    and returns the wet-deposited amount per species, (nspec,); per column in :attr:`deposited`.
    """

    def __init__(self, shape, coef_a, coef_b, halo=0, cell_area=None):
        self.shape = tuple(int(s) for s in shape)
        nz, ny, nx = self.shape
        self.coef_a = np.ascontiguousarray(coef_a, dtype=np.float64)
        self.coef_b = np.ascontiguousarray(coef_b, dtype=np.float64)
        if self.coef_a.ndim != 1 or self.coef_a.shape != self.coef_b.shape:
            raise ValueError("coef_a and coef_b must be 1-D arrays of the same length (nspec)")
        if np.any(self.coef_a < 0):
            raise ValueError("coef_a must be >= 0")
        self.nspec = self.coef_a.shape[0]
        self.halo = int(halo)
        self.cell_area = None if cell_area is None else np.asarray(cell_area, dtype=np.float64)
        self.deposited = np.zeros((self.nspec, ny, nx))

    def __call__(self, q, dt, precip, air_mass_per_area):
        nz, ny, nx = self.shape
        h = self.halo
        _check_shape("q", q, (self.nspec, nz + 2 * h, ny + 2 * h, nx + 2 * h))
        _check_shape("precip", precip, self.shape)
        _check_shape("air_mass_per_area", air_mass_per_area, self.shape)
        kdep.wet_scavenging(q, h, precip, self.coef_a, self.coef_b, float(dt),
                            air_mass_per_area, self.deposited)
        if self.cell_area is None:
            return self.deposited.sum(axis=(1, 2))
        return np.einsum("sji,ji->s", self.deposited, self.cell_area)
