"""Advection operator and the public :func:`advect` helper.

:class:`Advection` advances a stack of tracers (species and tags on the leading axis) together with
the cell air mass, given face air-mass fluxes for the step (SCIENCE.md 1.2, 2.1): the default is
the Walcek (2000) monotone scheme with dimensional splitting, the sweep order alternating
x, y, z / z, y, x from one (sub)step to the next, and CFL-limited sub-stepping (outflow Courant
number <= 0.75 per sweep); "upwind" is the unsplit first-order donor-cell reference scheme.
The numerics live in :mod:`aqforecast.kernels.advection`; this module fills ghost cells according
to the boundary type and sequences the kernels.

Boundary types per axis: ``"open"`` (zero-gradient ghosts; fluxes through the boundary faces are
used as given), ``"periodic"`` (the faces at 0 and n are the same face: the caller supplies equal
fluxes there), ``"closed"`` (no flux through the boundary faces) and ``"inflow"`` (ghosts take
prescribed boundary values where the boundary face flux points into the domain and are zero-
gradient where it points out, SCIENCE.md 1.6).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from ..kernels import advection as kadv

__all__ = ["Advection", "advect", "SCHEMES", "BOUNDARIES"]

log = logging.getLogger(__name__)

SCHEMES = ("walcek", "upwind")
BOUNDARIES = ("open", "periodic", "closed", "inflow")
#: Largest outflow Courant number per sweep allowed for the split monotone scheme (SCIENCE.md 1.5).
WALCEK_COURANT_MAX = 0.75
#: Largest total outflow Courant number of the unsplit donor-cell scheme (positivity limit).
UPWIND_COURANT_MAX = 1.0
_AXES = ("x", "y", "z")
_FACES = {"x": ("west", "east"), "y": ("south", "north"), "z": ("bottom", "top")}


def _normalise_boundary(boundary):
    if isinstance(boundary, str):
        boundary = (boundary, boundary, boundary)
    if len(boundary) != 3:
        raise ValueError(f"boundary must be a string or a 3-tuple (x, y, z), got {boundary!r}")
    for b in boundary:
        if b not in BOUNDARIES:
            raise ValueError(f"boundary type {b!r} is not one of {BOUNDARIES}")
    return tuple(boundary)


class Advection:
    """Flux-form advection of air mass and a 4-D tracer stack.

    Parameters
    ----------
    shape: (nz, ny, nx) interior grid shape.
    scheme: "walcek" (default, split, monotone) or "upwind" (unsplit donor cell).
    boundary: one type for all axes or a tuple (x, y, z) of types from :data:`BOUNDARIES`.
    halo: ghost width of the tracer array (>= 2 for walcek, >= 1 for upwind; 3 makes walcek face
        values independent of what lies beyond the halo, as needed for domain decomposition).
    courant_max: sub-stepping limit; default 0.75 per sweep (walcek), 1.0 in total (upwind).
    nspec: number of tracer rows (species x tags); only needed for the upwind work buffer.

    Call ``op(q, mass, flux_x, flux_y, flux_z, boundary_values=None)`` with
    q (nspec, nz+2h, ny+2h, nx+2h) mixing ratios (updated in place, interior only),
    mass (nz, ny, nx) cell air mass in kg (updated in place to the end-of-step mass) and face
    air-mass fluxes for the whole step in kg, shapes (nz, ny, nx+1), (nz, ny+1, nx), (nz+1, ny, nx)
    (rho u dy/m dz dt etc., boundary faces included). ``boundary_values`` maps face names
    ("west", "east", "south", "north", "bottom", "top") to arrays broadcastable to that face's
    ghost slab (nspec, nz, ny, halo) / (nspec, nz, halo, nx) / (nspec, halo, ny, nx) for the faces
    whose type is "inflow". Returns the number of sub-steps taken.
    """

    def __init__(self, shape, scheme="walcek", boundary="open", halo=None, courant_max=None,
                 nspec=1):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape must be (nz, ny, nx) with positive sizes, got {shape!r}")
        self.shape = tuple(int(s) for s in shape)
        self.scheme = scheme
        self.boundary = _normalise_boundary(boundary)
        min_halo = 2 if scheme == "walcek" else 1
        self.halo = min_halo if halo is None else int(halo)
        if self.halo < min_halo:
            raise ValueError(f"halo must be >= {min_halo} for scheme {scheme!r}, got {halo}")
        default_cmax = WALCEK_COURANT_MAX if scheme == "walcek" else UPWIND_COURANT_MAX
        self.courant_max = default_cmax if courant_max is None else float(courant_max)
        self._closed = tuple({"closed": 3, "periodic": 4}.get(b, 0) for b in self.boundary)
        self._courant = np.zeros(5)
        self._forward = True
        self.nspec = int(nspec)
        h = self.halo
        nz, ny, nx = self.shape
        self._padded = (nz + 2 * h, ny + 2 * h, nx + 2 * h)
        if scheme == "upwind":
            self._work = np.zeros((self.nspec,) + self._padded)
            self._mass_work = np.empty(self.shape)
        self.last_courant = np.zeros(5)

    # -- helpers ---------------------------------------------------------------------------
    def padded_shape(self, nspec):
        """Shape of a tracer array with ``nspec`` rows and this operator's halo."""
        return (nspec,) + self._padded

    def _check(self, q, mass, fluxes):
        nz, ny, nx = self.shape
        if q.ndim != 4 or q.shape[1:] != self._padded:
            raise ValueError(f"q has shape {q.shape}, expected (nspec,) + {self._padded}")
        if mass.shape != self.shape:
            raise ValueError(f"mass has shape {mass.shape}, expected {self.shape}")
        expected = ((nz, ny, nx + 1), (nz, ny + 1, nx), (nz + 1, ny, nx))
        for name, f, e in zip(("flux_x", "flux_y", "flux_z"), fluxes, expected):
            if f.shape != e:
                raise ValueError(f"{name} has shape {f.shape}, expected {e}")

    def substeps(self, mass, flux_x, flux_y, flux_z):
        """Number of sub-steps that keeps each sweep's outflow Courant number <= courant_max,
        relative to the smallest mass the cell can reach (:func:`kernels.advection.max_courant`);
        :attr:`last_courant` holds the largest x, y, z Courant numbers of the step."""
        kadv.max_courant(mass, flux_x, flux_y, flux_z, self.courant_max, self._courant)
        self.last_courant[:] = self._courant
        need = self._courant[4] if self.scheme == "upwind" else self._courant[3]
        if not np.isfinite(need) or need > 1e6:
            raise ValueError("air-mass fluxes empty a cell within the step (inconsistent fluxes)")
        return max(1, math.ceil(need - 1e-12))

    def fill_ghosts(self, q, axis, fluxes, boundary_values=None):
        """Fill the ghost cells of ``axis`` (0 = x, 1 = y, 2 = z) on interior rows."""
        h = self.halo
        nz, ny, nx = self.shape
        btype = self.boundary[axis]
        n = (nx, ny, nz)[axis]
        qax = 3 - axis  # array axis of q
        inner = [slice(None), slice(h, h + nz), slice(h, h + ny), slice(h, h + nx)]

        def sl(start, stop):
            idx = list(inner)
            idx[qax] = slice(start, stop)
            return tuple(idx)

        if btype == "periodic":
            q[sl(0, h)] = q[sl(n, n + h)]
            q[sl(n + h, n + 2 * h)] = q[sl(h, 2 * h)]
            return
        q[sl(0, h)] = q[sl(h, h + 1)]
        q[sl(n + h, n + 2 * h)] = q[sl(n + h - 1, n + h)]
        if btype != "inflow" or not boundary_values:
            return
        flux = fluxes[axis]
        lo_name, hi_name = _FACES[_AXES[axis]]
        for name, ghost, face, sign in ((lo_name, sl(0, h), 0, 1.0),
                                        (hi_name, sl(n + h, n + 2 * h), n, -1.0)):
            values = boundary_values.get(name)
            if values is None:
                continue
            fidx = [slice(None)] * 3
            fidx[2 - axis] = slice(face, face + 1)
            face_flux = flux[tuple(fidx)]  # shape of the face, keepdims
            inflow = face_flux > 0.0 if sign > 0 else face_flux < 0.0
            np.copyto(q[ghost], values, where=inflow[None])

    # -- the step --------------------------------------------------------------------------
    def __call__(self, q, mass, flux_x, flux_y, flux_z, boundary_values=None):
        fluxes = (flux_x, flux_y, flux_z)
        self._check(q, mass, fluxes)
        nsub = self.substeps(mass, flux_x, flux_y, flux_z)
        if nsub > 1:
            log.debug("advection: %d sub-steps (max Courant x %.3f, y %.3f, z %.3f)", nsub,
                      *self.last_courant[:3])
        scale = 1.0 / nsub
        h = self.halo
        if self.scheme == "upwind":
            if self._work.shape[0] != q.shape[0]:
                self._work = np.zeros(q.shape)
            for _ in range(nsub):
                for axis in range(3):
                    self.fill_ghosts(q, axis, fluxes, boundary_values)
                kadv.upwind_step(q, self._work, h, mass, self._mass_work, flux_x, flux_y, flux_z,
                                 scale, *self._closed)
                nz, ny, nx = self.shape
                q[:, h:h + nz, h:h + ny, h:h + nx] = self._work[:, h:h + nz, h:h + ny, h:h + nx]
                mass[...] = self._mass_work
            return nsub
        sweeps = (kadv.walcek_sweep_x, kadv.walcek_sweep_y, kadv.walcek_sweep_z)
        for _ in range(nsub):
            order = (0, 1, 2) if self._forward else (2, 1, 0)
            self._forward = not self._forward
            for axis in order:
                if self._courant[axis] == 0.0:  # no flux through any face: the sweep is identity
                    continue
                self.fill_ghosts(q, axis, fluxes, boundary_values)
                sweeps[axis](q, h, mass, fluxes[axis], scale, self._closed[axis])
        return nsub


def _validate_courant(q, courant):
    if not isinstance(courant, Sequence) or len(courant) != 3:
        raise ValueError("courant must be a tuple (cx, cy, cz) of three arrays")
    nz, ny, nx = q.shape
    expected = {"cx": (nz, ny, nx + 1), "cy": (nz, ny + 1, nx), "cz": (nz + 1, ny, nx)}
    out = []
    for (name, shape), c in zip(expected.items(), courant):
        c = np.asarray(c, dtype=np.float64)
        if c.shape != shape:
            raise ValueError(f"courant array {name} has shape {c.shape}, expected {shape} "
                             f"for q of shape {q.shape}")
        if not np.all(np.isfinite(c)):
            raise ValueError(f"courant array {name} contains non-finite values")
        out.append(c.copy())
    return out


def advect(q, courant, nsteps, scheme="walcek", boundary="open"):
    """Advect a 3-D field with face Courant numbers; return the field after ``nsteps`` steps.

    Parameters
    ----------
    q: float64 array (nz, ny, nx), the advected mixing ratio (any unit).
    courant: tuple (cx, cy, cz) of signed face Courant numbers (u dt / dx, dimensionless), shapes
        (nz, ny, nx+1), (nz, ny+1, nx), (nz+1, ny, nx), boundary faces included.
    nsteps: number of time steps (int >= 0).
    scheme: "walcek" (monotone, dimensionally split, order alternating each step) or "upwind"
        (classic unsplit donor cell, all three fluxes from the same field).
    boundary: "open" (zero-gradient ghosts, boundary-face fluxes used as given), "periodic" (the
        faces at 0 and n are the same face: the values at index 0 are used) or "closed" (no flux
        through boundary faces).

    The field is carried by air of unit cell mass; the air-mass flux through a face equals its
    Courant number, so the tracer flux is Courant x face value (upwind value for "upwind") and the
    air mass is advected with the same fluxes. For non-divergent Courant fields this is the usual
    conservative advection of ``q``; for divergent fields ``q`` is a mixing ratio. Steps whose
    Courant numbers exceed the scheme's limit (0.75 per sweep for walcek, total outflow 1 for
    upwind) are sub-stepped.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if boundary not in ("open", "periodic", "closed"):
        raise ValueError(f"boundary must be one of ('open', 'periodic', 'closed'), "
                         f"got {boundary!r}")
    q = np.asarray(q)
    if q.dtype != np.float64:
        raise ValueError(f"q must be float64, got {q.dtype}")
    if q.ndim != 3 or min(q.shape) < 1:
        raise ValueError(f"q must be a non-empty 3-D array (nz, ny, nx), got shape {q.shape}")
    if int(nsteps) != nsteps or nsteps < 0:
        raise ValueError(f"nsteps must be a non-negative integer, got {nsteps!r}")
    cx, cy, cz = _validate_courant(q, courant)
    if boundary == "periodic":
        cx[..., -1] = cx[..., 0]
        cy[:, -1, :] = cy[:, 0, :]
        cz[-1] = cz[0]
    op = Advection(q.shape, scheme=scheme, boundary=boundary, halo=3 if scheme == "walcek" else 1)
    h = op.halo
    nz, ny, nx = q.shape
    state = np.zeros(op.padded_shape(1))
    state[0, h:h + nz, h:h + ny, h:h + nx] = q
    mass = np.ones(q.shape)
    for _ in range(int(nsteps)):
        op(state, mass, cx, cy, cz)
    return state[0, h:h + nz, h:h + ny, h:h + nx].copy()
