"""The advection operator (the one the forecast runs) and the public :func:`advect` helper.

:class:`Advection` advances a stack of tracers (species on the leading axis), optionally their
source tags, together with the cell air mass, given face air-mass fluxes for the step
(SCIENCE.md 1.2, 2.1). Schemes (:data:`SCHEMES`):

* ``"walcek"`` (default) -- the monotone scheme of Walcek (2000), dimensionally split;
* ``"donor_cell"`` -- first-order donor cell with the same splitting (the linear option whose tag
  response is exactly additive);
* ``"donor_cell_unsplit"`` -- the classic unsplit donor-cell step (all three fluxes from the same
  field; the first pass of MPDATA), a reference scheme for tests and benchmarks.

``"upwind"`` is the old, ambiguous name: it is accepted with a DeprecationWarning and means
``"donor_cell_unsplit"`` here and in :func:`advect` (as it always did there) but ``"donor_cell"``
in the model's ``advection_scheme`` (as it always did there).

The split schemes run the plan of :func:`plan_substeps` (SCIENCE.md 1.4, 1.5): the step is cut
into outer steps whose horizontal (x/y sweeps) and vertical (z sweeps) phases alternate H, Z /
Z, H; within an outer step each level takes its own number of x/y sub-steps (CMAQ's layer-
dependent ASTEP) with the x/y order alternating, and the z sweeps their own. The x/y sweeps run
in the level layout of :class:`~aqforecast.transport.layout.Layout` (whole planes per rank, so N
ranks give the one-rank answer bit for bit), the z sweeps in the column layout. The numerics live
in :mod:`aqforecast.kernels.advection` and :mod:`aqforecast.kernels.tagging`.

Boundary types per axis, or per face as a (low, high) pair: ``"open"`` (zero-gradient ghosts;
the boundary-face fluxes are used as given), ``"periodic"`` (faces 0 and n are the same face: the
caller supplies equal fluxes there), ``"closed"`` (no flux through the face) and ``"inflow"``
(ghosts take prescribed values where the face flux points into the domain and are zero-gradient
where it points out, SCIENCE.md 1.6).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..kernels import advection as kadv
from ..kernels import ghosts as kghost
from ..kernels import substeps as ksub
from ..kernels import tagging as ktag
from .layout import Layout

__all__ = ["Advection", "TagRows", "advect", "plan_substeps", "SCHEMES", "BOUNDARIES"]

log = logging.getLogger(__name__)

SCHEMES = ("walcek", "donor_cell", "donor_cell_unsplit")
BOUNDARIES = ("open", "periodic", "closed", "inflow")
#: Largest outflow Courant number per sweep allowed for the split schemes (SCIENCE.md 1.5).
WALCEK_COURANT_MAX = 0.75
#: Largest total outflow Courant number of the unsplit donor-cell scheme (positivity limit).
UPWIND_COURANT_MAX = 1.0
#: Largest fraction of a cell's air one outer step's horizontal or vertical divergence removes.
OUTER_DIVERGENCE_MAX = 0.5
_FACES = (("west", "east"), ("south", "north"), ("bottom", "top"))
_NO_ROWS = np.zeros(0, np.int64)


class TagRows(NamedTuple):
    """The source tags carried with the tracers: ``rows`` the tracer rows (species) that are
    tagged, ``ntag`` tags per tagged species, ``ic``/``bc`` the initial-condition and boundary
    tags (-1: none), ``dtype`` the float type of the tag fractions the sweeps carry (float64,
    or float32: half the memory traffic, ~1e-7 relative error in the shares, the tags still
    summing to the bulk to float64 round-off). Tag array row ``t * ntag + k`` is tag k of
    tagged species t."""

    rows: np.ndarray
    ntag: int
    ic: int = -1
    bc: int = -1
    dtype: type = np.float64


def resolve_scheme(scheme: str, upwind_means: str = "donor_cell_unsplit") -> str:
    """The scheme name, with the deprecated ``"upwind"`` mapped to ``upwind_means``."""
    if scheme == "upwind":
        warnings.warn(f"advection scheme 'upwind' is deprecated; it means {upwind_means!r} here",
                      DeprecationWarning, stacklevel=3)
        return upwind_means
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return scheme


def _normalise_boundary(boundary):
    """((low, high) for x, y, z) from a type, a 3-tuple of types or of (low, high) pairs."""
    if isinstance(boundary, str):
        boundary = (boundary, boundary, boundary)
    if len(boundary) != 3:
        raise ValueError(f"boundary must be a string or a 3-tuple (x, y, z), got {boundary!r}")
    out = []
    for b in boundary:
        pair = (b, b) if isinstance(b, str) else tuple(b)
        if len(pair) != 2 or any(t not in BOUNDARIES for t in pair):
            raise ValueError(f"boundary type {b!r}: each must be one of {BOUNDARIES} or a "
                             f"(low, high) pair of them")
        if ("periodic" in pair) and pair[0] != pair[1]:
            raise ValueError(f"a periodic axis is periodic at both faces, got {pair!r}")
        out.append(pair)
    return tuple(out)


def _closed_bits(pair) -> int:
    """Kernel boundary mask of one axis (kernels.advection: 1 low wall, 2 high wall, 4 periodic)."""
    if pair[0] == "periodic":
        return 4
    return (1 if pair[0] == "closed" else 0) | (2 if pair[1] == "closed" else 0)


def _runs(mask):
    """(start, stop) of each run of adjacent True entries of a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


#: ``mass_end`` not given (the kernels then use the mass the fluxes leave)
_NO_END = np.empty((0, 1, 1))


def plan_substeps(mass, flux_x, flux_y, flux_z, courant_max, mass_end=None):
    """(n_outer, per-level horizontal sub-steps (nz,), vertical sub-steps per outer step).

    The step is cut into ``n_outer`` outer steps so that neither the horizontal nor the vertical
    flux divergence alone removes more than half of a cell's air within one outer step (the
    phase order alternates H, Z / Z, H, and a diagnosed vertical flux undoes the horizontal
    convergence, so either phase may run first on the unbalanced mass); within an outer step
    level k takes ``per_level[k]`` x/y sub-steps and the z sweeps ``n_z``, each keeping every
    sweep's outflow Courant number (relative to the smallest mass its phase can start from,
    :func:`kernels.advection.max_courant`) <= ``courant_max``. All arrays are global, so every
    rank gets the same plan. ``mass_end`` defaults to the mass the fluxes leave.
    """
    c = np.ascontiguousarray
    mass, flux_x, flux_y, flux_z = (c(a, dtype=np.float64) for a in (mass, flux_x, flux_y,
                                                                     flux_z))
    end = _NO_END if mass_end is None else c(mass_end, dtype=np.float64)
    nz = mass.shape[0]
    # per level: max div_h / m0, max div_z / m0, min m0, and the sub-step counts of one outer
    # step, in one pass (kernels/substeps.py)
    ratios = np.empty((nz, 5))
    ksub.plan_levels(mass, end, flux_x, flux_y, flux_z, float(courant_max), ratios)
    if not ratios[:, 2].min() > 0.0:
        raise ValueError("air-mass fluxes empty a cell within the step (inconsistent fluxes)")
    worst = max(float(ratios[:, 0].max()), float(ratios[:, 1].max()))
    if not math.isfinite(worst) or worst > 1e6:
        raise ValueError("air-mass fluxes empty a cell within the step (inconsistent fluxes)")
    n_outer = max(1, math.ceil(worst / OUTER_DIVERGENCE_MAX - 1e-12))
    # per level: the horizontal phase after a z phase, the vertical phase after a horizontal
    # one (max_courant's split-scheme count for the fluxes of one outer step)
    if n_outer == 1:
        counts = ratios[:, 3:]
    else:
        counts = np.empty((nz, 2))
        ksub.level_courant(mass, end, flux_x, flux_y, flux_z, n_outer, float(courant_max),
                           counts)
    per_level = np.maximum(1, np.ceil(counts[:, 0] - 1e-12)).astype(np.int64)
    n_z = max(1, math.ceil(float(counts[:, 1].max()) - 1e-12))
    return n_outer, per_level, n_z


def fill_ghosts(q, halo, shape, axis, boundary, fluxes, boundary_values=None):
    """Fill the ghost cells of ``axis`` (0 = x, 1 = y, 2 = z) of interior rows of ``q``
    (nrow, nz+2h, ny+2h, nx+2h) with interior ``shape`` (nz, ny, nx); ``boundary`` is the axis's
    (low, high) pair; ``boundary_values`` maps face names to values broadcastable to the face's
    ghost slab (used where the face is "inflow" and its flux points inwards). One pass of
    :func:`aqforecast.kernels.ghosts.fill_axis_ghosts` over the axis's ghosts."""
    h = halo
    nz, ny, nx = shape
    n = (nx, ny, nz)[axis]
    qax = 3 - axis  # array axis of q
    inner = [slice(None), slice(h, h + nz), slice(h, h + ny), slice(h, h + nx)]
    inner[qax] = slice(None)
    lines = q[tuple(inner)]
    view = np.moveaxis(lines, qax, 3)  # (nrow, A, B, n + 2h), the axis last
    faces = [_NO_FACE, _NO_FACE]
    vals = [_NO_VALUES, _NO_VALUES]
    use = [False, False]
    periodic = boundary[0] == "periodic"
    if boundary_values and not periodic:
        slab = list(lines.shape)  # the shape of one face's ghost slab
        slab[qax] = h
        for side, (btype, name) in enumerate(zip(boundary, _FACES[axis])):
            values = boundary_values.get(name)
            if btype != "inflow" or values is None:
                continue
            fidx = [slice(None)] * 3
            fidx[2 - axis] = 0 if side == 0 else n
            # the face's fluxes, (A, B) in the view's order
            faces[side] = np.ascontiguousarray(fluxes[axis][tuple(fidx)], dtype=np.float64)
            vals[side] = np.moveaxis(np.broadcast_to(np.asarray(values, dtype=np.float64),
                                                     tuple(slab)), qax, 3)
            use[side] = True
    kghost.fill_axis_ghosts(view, h, n, periodic, faces[0], faces[1], vals[0], vals[1],
                            use[0], use[1])


#: placeholders of fill_ghosts' inflow arguments where a face has none (read-only like the
#: broadcast values, so one compiled specialisation serves every call)
_NO_FACE = np.zeros((1, 1))
_NO_VALUES = np.broadcast_to(np.zeros((1, 1, 1, 1)), (1, 1, 1, 1))


def _level_run(values, a, b):
    """Levels a:b of a face's inflow values given for the operator's levels (axis 1), or the
    values themselves where they broadcast over levels (axis 1 of length 1)."""
    return values if values.shape[1] == 1 else values[:, a:b]


class Advection:
    """Flux-form advection of air mass, a tracer stack and its source tags, set up once.

    Parameters
    ----------
    shape: (nz, ny, nx) interior grid shape (global when ``layout`` is decomposed).
    scheme: one of :data:`SCHEMES` ("upwind": deprecated, "donor_cell_unsplit").
    boundary: one type for all axes, or a tuple (x, y, z) of types or (low, high) pairs.
    halo: ghost width of the tracer array (>= 2 for walcek, >= 1 for donor cell; 3 makes Walcek
        face values independent of what lies beyond the halo, as domain decomposition needs).
    courant_max: sub-stepping limit; default 0.75 per sweep (split), 1.0 in total (unsplit).
    nspec: number of tracer rows (work buffers are sized on first use anyway).
    layout: a :class:`~aqforecast.transport.layout.Layout` (column blocks + level slabs over the
        ranks); default: serial.
    tags: :class:`TagRows` to carry source tags (split schemes only), or None.

    Call ``op(q, mass, flux_x, flux_y, flux_z, boundary_values=None, tagc=None,
    tag_inflow=None, mass_end=None)`` with q (nrow, nz+2h, nyl+2h, nxl+2h) this rank's column
    block of mixing ratios (updated in place, interior only); mass (nz, ny, nx) the GLOBAL cell
    air mass in kg, the same on every rank (updated in place to the end-of-step mass); face
    air-mass fluxes for the whole step in kg, global, shapes (nz, ny, nx+1), (nz, ny+1, nx),
    (nz+1, ny, nx) (rho u dy/m dz dt etc., boundary faces included). ``boundary_values`` maps
    face names to inflow values broadcastable to the ghost slab: lateral faces for this rank's
    levels (``layout.levels``), (nrow, nl, ny, h) west/east, (nrow, nl, h, nx) south/north;
    bottom/top for its column block, (nrow, h, nyl, nxl). ``tagc`` (ntagged*ntag, same padded
    shape as q) the tag concentrations (updated in place); ``tag_inflow`` per lateral face the
    inflowing tag fractions (ntagged, ntag, nl, n) (None: all from the boundary tag).
    ``mass_end``: the air mass the met prescribes at the end of the step; the result is moved
    onto it keeping the tracer mass (drops the flux round-off). Returns the number of sub-steps
    of the most sub-stepped sweep; :attr:`last_substeps` holds (horizontal, vertical) counts.
    """

    def __init__(self, shape, scheme="walcek", boundary="open", halo=None, courant_max=None,
                 nspec=1, layout=None, tags: TagRows | None = None):
        scheme = resolve_scheme(scheme)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape must be (nz, ny, nx) with positive sizes, got {shape!r}")
        self.shape = tuple(int(s) for s in shape)
        self.scheme = scheme
        self.boundary = _normalise_boundary(boundary)
        min_halo = 2 if scheme == "walcek" else 1
        self.halo = min_halo if halo is None else int(halo)
        if self.halo < min_halo:
            raise ValueError(f"halo must be >= {min_halo} for scheme {scheme!r}, got {halo}")
        default_cmax = UPWIND_COURANT_MAX if scheme == "donor_cell_unsplit" else \
            WALCEK_COURANT_MAX
        self.courant_max = default_cmax if courant_max is None else float(courant_max)
        if not 0.0 < self.courant_max <= 1.0:
            raise ValueError(f"courant_max must be in (0, 1], got {courant_max}")
        if tags is not None and scheme == "donor_cell_unsplit":
            raise ValueError("source tags need a split scheme ('walcek' or 'donor_cell')")
        self._closed = tuple(_closed_bits(p) for p in self.boundary)
        nz, ny, nx = self.shape
        if layout is None:
            from ..parallel import SerialComm

            layout = Layout(SerialComm(), nz, ny, nx, self.halo)
        elif (layout.nz, layout.ny, layout.nx, layout.halo) != self.shape + (self.halo,):
            raise ValueError(f"layout is for {(layout.nz, layout.ny, layout.nx)} with halo "
                             f"{layout.halo}, the operator for {self.shape} with {self.halo}")
        self.layout = layout
        self.tags = tags
        self.nspec = int(nspec)
        #: x/y/z order of the next step (alternates; part of an exact restart)
        self.forward = True
        self.last_substeps = (0, 0)
        self._q_lev = None  # level-layout work arrays (MPI only)
        self._frac_lev = None
        levels = np.asarray(self.layout.levels)
        # this rank's levels consecutive: level runs are slices (views) of the global arrays
        self._consecutive = len(levels) == 0 or bool(np.all(np.diff(levels) == 1))
        self._bc_tag_inflow = {}  # shape -> inflow fractions all from the boundary tag
        self._work = {}  # (name, shape) -> work buffer of the sweeps' copies (_copy)
        self._courant = np.zeros(5)

    # -- helpers ---------------------------------------------------------------------------
    def padded_shape(self, nspec):
        """Shape of a (serial) tracer array with ``nspec`` rows and this operator's halo."""
        h = self.halo
        nz, ny, nx = self.shape
        return (nspec, nz + 2 * h, ny + 2 * h, nx + 2 * h)

    def _check(self, q, mass, fluxes):
        nz, ny, nx = self.shape
        padded = self.layout.column_shape(())
        if q.ndim != 4 or q.shape[1:] != padded:
            raise ValueError(f"q has shape {q.shape}, expected (nspec,) + {padded}")
        if mass.shape != self.shape:
            raise ValueError(f"mass has shape {mass.shape}, expected {self.shape}")
        expected = ((nz, ny, nx + 1), (nz, ny + 1, nx), (nz + 1, ny, nx))
        for name, f, e in zip(("flux_x", "flux_y", "flux_z"), fluxes, expected):
            if f.shape != e:
                raise ValueError(f"{name} has shape {f.shape}, expected {e}")

    def _effective(self, fluxes):
        """The fluxes with closed boundary faces zeroed (for planning and the mass update)."""
        out = []
        for axis, f in enumerate(fluxes):
            bits = self._closed[axis]
            if bits & 3:
                f = f.copy()
                face = np.moveaxis(f, 2 - axis, 0)
                if bits & 1:
                    face[0] = 0.0
                if bits & 2:
                    face[-1] = 0.0
            out.append(f)
        return out

    def plan(self, mass, flux_x, flux_y, flux_z, mass_end=None):
        """The sub-step plan of a step (:func:`plan_substeps`), closed faces excluded."""
        fx, fy, fz = self._effective((flux_x, flux_y, flux_z))
        return plan_substeps(mass, fx, fy, fz, self.courant_max, mass_end)

    def substeps(self, mass, flux_x, flux_y, flux_z):
        """Sub-steps of the most sub-stepped sweep of a step: n_outer x max(per-level x/y,
        z) for the split schemes; for the unsplit one the count that keeps the total outflow
        Courant number <= courant_max."""
        if self.scheme == "donor_cell_unsplit":
            kadv.max_courant(mass, flux_x, flux_y, flux_z, self.courant_max, self._courant)
            need = self._courant[4]
            if not np.isfinite(need) or need > 1e6:
                raise ValueError("air-mass fluxes empty a cell within the step (inconsistent "
                                 "fluxes)")
            return max(1, math.ceil(need - 1e-12))
        n_outer, per_level, n_z = self.plan(mass, flux_x, flux_y, flux_z)
        return n_outer * max(int(per_level.max()), n_z)

    def fill_ghosts(self, q, axis, fluxes, boundary_values=None):
        """Fill the ghost cells of ``axis`` (0 = x, 1 = y, 2 = z) on interior rows (serial)."""
        fill_ghosts(q, self.halo, self.shape, axis, self.boundary[axis], fluxes, boundary_values)

    # -- the step --------------------------------------------------------------------------
    def __call__(self, q, mass, flux_x, flux_y, flux_z, boundary_values=None, tagc=None,
                 tag_inflow=None, mass_end=None):
        fluxes = (flux_x, flux_y, flux_z)
        self._check(q, mass, fluxes)
        if self.scheme == "donor_cell_unsplit":
            return self._unsplit(q, mass, fluxes, boundary_values)
        if (tagc is None) != (self.tags is None):
            raise ValueError("tagc is given exactly when the operator was built with tags")
        n_outer, per_level, n_z = self.plan(mass, *fluxes, mass_end=mass_end)
        lay = self.layout
        fr = self._fractions(q, tagc)
        fzl = np.ascontiguousarray(lay.local(fluxes[2]))
        bvals = boundary_values or {}
        forward = self.forward
        self.forward = not self.forward
        for _ in range(n_outer):
            for phase in (("h", "z") if forward else ("z", "h")):
                if phase == "h":
                    self._horizontal(q, mass, fluxes, n_outer, per_level, fr, bvals,
                                     tag_inflow, forward)
                else:
                    scale = 1.0 / (n_outer * n_z)
                    for _ in range(n_z):
                        self._zsweep(q, lay.local(mass), fzl, scale, bvals, fr)
                        self._zmass(mass, fluxes[2], scale)
        self.last_substeps = (n_outer * int(per_level.max()), n_outer * n_z)
        ratio = None
        if mass_end is not None:  # keep the tracer mass on the prescribed air mass
            ratio = lay.local(mass) / lay.local(mass_end)
            mass[...] = mass_end
        self._finish(q, tagc, fr, ratio)
        return max(self.last_substeps)

    def _zmass(self, mass, fz, scale):
        """The z sweep's air-mass update in place: mass - top + bottom face flux times
        ``scale`` (0 on a closed wall), the same operations in the same order as the kernels',
        into a work buffer instead of four full-size temporaries."""
        closed = self._closed[2]
        if scale != 1.0 or closed & 3:
            faces = np.multiply(fz, scale, out=self._buffer("zfaces", fz.shape))
            if closed & 1:
                faces[0] = 0.0
            if closed & 2:
                faces[-1] = 0.0
        else:  # (x * 1.0 == x: the fluxes as they are)
            faces = fz
        np.subtract(mass, faces[1:], out=mass)
        np.add(mass, faces[:-1], out=mass)

    def _interior(self, a):
        h = self.halo
        nz = self.shape[0]
        nyl, nxl = self.layout.block_shape
        return a[:, h:h + nz, h:h + nyl, h:h + nxl]

    def _fractions(self, q, tagc):
        """Tag fractions (nt, ntag, nz, nyl, nxl) of the tagged rows, read in place from the
        padded arrays (cells without tracer: all to the IC tag); None without tags."""
        if self.tags is None:
            return None
        t = self.tags
        frac = np.empty((len(t.rows), t.ntag) + self._interior(q).shape[1:], dtype=t.dtype)
        ktag.fractions_from_tag_cells(self._interior(q), t.rows, self._interior(tagc), t.ntag,
                                      t.ic, frac)
        return frac

    def _finish(self, q, tagc, frac, ratio):
        """Tags back from their fractions (times ``ratio``) and the tracers times ``ratio``."""
        conc = self._interior(q)
        if self.tags is not None:
            scale = ratio if ratio is not None else np.ones(conc.shape[1:])
            if frac.dtype == np.float64:
                ktag.tags_from_fraction_cells(conc, self.tags.rows, frac, self.tags.ntag, scale,
                                              self._interior(tagc))
            else:  # single-precision shares: renormalised so the tags sum to the bulk
                ktag.tags_from_fraction_cells_normalised(conc, self.tags.rows, frac,
                                                         self.tags.ntag, scale,
                                                         self._interior(tagc))
        if ratio is not None:
            conc[...] *= ratio[None]

    def _level_buffers(self, q, frac):
        lay = self.layout
        if lay.serial:
            return q, frac
        if self._q_lev is None or self._q_lev.shape[0] != q.shape[0]:
            self._q_lev = np.zeros(lay.level_shape((q.shape[0],)))
        fl = None
        if frac is not None:
            shape = frac.shape[:2] + (len(lay.levels), self.shape[1], self.shape[2])
            if self._frac_lev is None or self._frac_lev.shape != shape \
                    or self._frac_lev.dtype != frac.dtype:
                self._frac_lev = np.zeros(shape, dtype=frac.dtype)
            fl = self._frac_lev
        return self._q_lev, fl

    def _horizontal(self, q, mass, fluxes, n_outer, per_level, frac_col, bvals, tag_inflow,
                    forward):
        """x/y sweeps of every level (level layout) for one outer step; updates ``mass``.

        Level k takes ``per_level[k]`` sub-steps with the x/y order alternating. The levels are
        independent here, so sub-step r of every level that has one runs together: one ghost
        fill and one kernel call per run of adjacent such levels and direction, with the fluxes
        scaled per level beforehand (the same products as scaling them in the kernel), instead
        of one call per level (bit for bit the level-by-level result).
        """
        lay = self.layout
        h = self.halo
        levels = np.asarray(lay.levels)
        q_lev, frac_lev = self._level_buffers(q, frac_col)
        lay.to_levels(q, q_lev)
        if frac_col is not None and not lay.serial:
            lay.to_levels(frac_col, frac_lev, padded=False)
        n_lev = per_level[levels]
        scale = (1.0 / (n_outer * per_level))[:, None, None]
        fx, fy, _ = self._effective(fluxes)
        # every level: every rank moves the global mass alike (products into work buffers: two
        # fresh full-size arrays per outer step cost their page faults)
        if np.all(scale == 1.0):  # (x * 1.0 == x)
            fs = (fx, fy)
        else:
            fs = (np.multiply(fx, scale, out=self._buffer("fs_x", fx.shape)),
                  np.multiply(fy, scale, out=self._buffer("fs_y", fy.shape)))
        lateral = {f: v for f, v in bvals.items() if f not in ("bottom", "top")}
        for r in range(int(per_level.max(initial=0))):
            active = per_level > r
            runs = _runs(n_lev > r)  # of this rank's levels
            for axis in ((0, 1) if (forward ^ (r % 2 == 1)) else (1, 0)):
                for a, b in runs:
                    qk = q_lev[:, a:b + 2 * h]  # the run's levels with their z ghosts
                    # this rank's levels a..b-1: a slice where they are consecutive (views,
                    # not the copies an index array makes)
                    ks = slice(levels[a], levels[a] + b - a) if self._consecutive \
                        else levels[a:b]
                    fk = (fs[0][ks], fs[1][ks], None)
                    shape = (b - a,) + self.shape[1:]
                    fill_ghosts(qk, h, shape, axis, self.boundary[axis], fk,
                                {f: _level_run(v, a, b) for f, v in lateral.items()})
                    inflow = None if tag_inflow is None else \
                        {f: v[:, :, a:b] for f, v in tag_inflow.items()}
                    self._hsweep(qk, mass[ks], fk[axis], axis,
                                 None if frac_lev is None else frac_lev[:, :, a:b], inflow)
                # the same update as the kernels', level run by level run on views (boolean
                # indexing copied the whole active block three times)
                for a, b in _runs(active):
                    m = mass[a:b]
                    f = fs[axis][a:b]
                    if axis == 0:
                        np.subtract(m, f[:, :, 1:], out=m)
                        np.add(m, f[:, :, :-1], out=m)
                    else:
                        np.subtract(m, f[:, 1:, :], out=m)
                        np.add(m, f[:, :-1, :], out=m)
        lay.to_columns(q_lev, q)
        if frac_col is not None and not lay.serial:
            lay.to_columns(frac_lev, frac_col, padded=False)

    def _tag_args(self, nlead, frac, inflow, lo, hi):
        """(tag rows, fractions, low-face and high-face inflow fractions) for a tagged sweep."""
        t = self.tags
        if t is None:
            return _NO_ROWS, np.zeros((0, 0) + nlead), np.zeros((0, 0) + nlead[:-1]), \
                np.zeros((0, 0) + nlead[:-1])
        nt = len(t.rows)
        shape = (nt, t.ntag) + nlead[:-1]
        if inflow is not None:  # the kernels only read them, any strides
            return t.rows, frac, self._inflow_view("inflow_low", inflow[lo], shape), \
                self._inflow_view("inflow_high", inflow[hi], shape)
        # everything from the boundary tag: built once per shape (the kernels only read it;
        # left writeable: a read-only array is another numba type, another compilation)
        bc = self._bc_tag_inflow.get(shape)
        if bc is None:
            bc = np.zeros(shape)
            if t.bc >= 0:
                bc[:, t.bc] = 1.0
            self._bc_tag_inflow[shape] = bc
        return t.rows, frac, bc, bc

    def _buffer(self, name, shape):
        """A float64 work buffer kept per name and shape (a fresh array per sweep cost its
        allocation and page faults, as much as filling it on large grids); overwritten by the
        next user of the same name and shape."""
        key = (name, tuple(shape))
        buf = self._work.get(key)
        if buf is None:
            buf = self._work[key] = np.empty(shape)
        return buf

    def _inflow_view(self, name, a, shape):
        """``a`` itself when it has the full ``shape`` (a view of the nest's inflow fractions),
        else broadcast into the work buffer ``name``."""
        if a.shape == shape and a.dtype == np.float64:
            return a
        buf = self._buffer(name, shape)
        np.copyto(buf, a)
        return buf

    def _copy(self, name, a):
        """A C-contiguous float64 copy of ``a`` in the work buffer ``name`` (:meth:`_buffer`)."""
        buf = self._buffer(name, a.shape)
        np.copyto(buf, a)
        return buf

    def _hsweep(self, q, mass, flux, axis, frac, inflow):
        """One Walcek (or donor-cell) sweep of m adjacent levels along x (axis 0) or y (1).

        q: (nrow, m + 2h, ny+2h, nx+2h) the levels with their (unused) z ghosts; mass (m, ny,
        nx), not changed (the kernel gets a copy); flux: (m, ny, nx+1) or (m, ny+1, nx), already
        scaled to the sub-step; frac: (nt, ntag, m, ny, nx) or None; inflow: per face (nt, ntag,
        m, n) inflow fractions. The kernel's lines are (level, row) for x and (level, column)
        for y.
        """
        h = self.halo
        m = mass.shape[0]
        ny, nx = self.shape[1:]
        if axis == 0:
            qv = q[:, h:h + m, h:h + ny, :]
            mv = self._copy("mass", mass)
            fv = flux if flux.flags.c_contiguous else self._copy("flux", flux)
            fr = frac
            lead = (m, ny, nx)
        else:
            qv = q[:, h:h + m, :, h:h + nx].transpose(0, 1, 3, 2)
            mv = self._copy("mass", mass.transpose(0, 2, 1))
            fv = self._copy("flux", flux.transpose(0, 2, 1))
            fr = None if frac is None else frac.transpose(0, 1, 2, 4, 3)
            lead = (m, nx, ny)
        lo, hi = _FACES[axis]
        rows, fr, bl, bh = self._tag_args(lead, fr, inflow, lo, hi)
        ktag.walcek_sweep_tagged(qv, h, mv, fv, 1.0, self._closed[axis], rows, fr, bl, bh,
                                 self.scheme == "donor_cell")

    def _zsweep(self, q, mass, fzl, scale, bvals, frac):
        """One sweep along z in the column layout (mass: this rank's block, not changed)."""
        h = self.halo
        nz = self.shape[0]
        nyl, nxl = self.layout.block_shape
        # only the z fluxes are read (the x/y entries are placeholders)
        fill_ghosts(q, h, (nz, nyl, nxl), 2, self.boundary[2], (None, None, fzl),
                    {f: v for f, v in bvals.items() if f in ("bottom", "top")})
        qv = q[:, :, h:h + nyl, h:h + nxl].transpose(0, 2, 3, 1)
        m = self._copy("mass", mass.transpose(1, 2, 0))  # a copy: the kernel updates it
        fr = None if frac is None else frac.transpose(0, 1, 3, 4, 2)
        rows, fr, bl, bh = self._tag_args((nyl, nxl, nz), fr, None, "bottom", "top")
        ktag.walcek_sweep_tagged(qv, h, m, self._copy("flux", fzl.transpose(1, 2, 0)), scale,
                                 self._closed[2], rows, fr, bl, bh, self.scheme == "donor_cell")

    def _unsplit(self, q, mass, fluxes, boundary_values):
        """The unsplit donor-cell reference step (serial), sub-stepped uniformly."""
        if not self.layout.serial:
            raise ValueError("the unsplit donor-cell scheme runs on one rank only")
        nsub = self.substeps(mass, *fluxes)
        h = self.halo
        nz, ny, nx = self.shape
        work = np.zeros(q.shape)
        mass_work = np.empty(self.shape)
        for _ in range(nsub):
            for axis in range(3):
                self.fill_ghosts(q, axis, fluxes, boundary_values)
            kadv.upwind_step(q, work, h, mass, mass_work, *fluxes, 1.0 / nsub, *self._closed)
            q[:, h:h + nz, h:h + ny, h:h + nx] = work[:, h:h + nz, h:h + ny, h:h + nx]
            mass[...] = mass_work
        self.last_substeps = (nsub, nsub)
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

    Runs the model's operator (:class:`Advection`).

    Parameters
    ----------
    q: float64 array (nz, ny, nx), the advected mixing ratio (any unit).
    courant: tuple (cx, cy, cz) of signed face Courant numbers (u dt / dx, dimensionless), shapes
        (nz, ny, nx+1), (nz, ny+1, nx), (nz+1, ny, nx), boundary faces included.
    nsteps: number of time steps (int >= 0).
    scheme: "walcek" (monotone, dimensionally split, order alternating each step),
        "donor_cell" (first order, split the same way) or "donor_cell_unsplit" (classic unsplit
        donor cell, all three fluxes from the same field; "upwind" is its deprecated name).
    boundary: "open" (zero-gradient ghosts, boundary-face fluxes used as given), "periodic" (the
        faces at 0 and n are the same face: the values at index 0 are used) or "closed" (no flux
        through boundary faces).

    The field is carried by air of unit cell mass; the air-mass flux through a face equals its
    Courant number, so the tracer flux is Courant x face value (upwind value for donor cell) and
    the air mass is advected with the same fluxes. For non-divergent Courant fields this is the
    usual conservative advection of ``q``; for divergent fields ``q`` is a mixing ratio. Steps
    whose Courant numbers exceed the scheme's limit (0.75 per sweep for the split schemes, total
    outflow 1 for the unsplit one) are sub-stepped.
    """
    scheme = resolve_scheme(scheme)
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
    op = Advection(q.shape, scheme=scheme, boundary=boundary,
                   halo=3 if scheme == "walcek" else 1)
    h = op.halo
    nz, ny, nx = q.shape
    state = np.zeros(op.padded_shape(1))
    state[0, h:h + nz, h:h + ny, h:h + nx] = q
    mass = np.ones(q.shape)
    for _ in range(int(nsteps)):
        op(state, mass, cx, cy, cz)
    return state[0, h:h + nz, h:h + ny, h:h + nx].copy()
