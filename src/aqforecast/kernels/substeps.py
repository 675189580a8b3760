"""Sub-step planning of the split advection in one pass per quantity (numba).

The kernels behind :func:`aqforecast.transport.advection.plan_substeps`: the per-level maxima of
the flux divergence relative to the smallest air mass of the step, and the per-level sub-step
counts of :func:`aqforecast.kernels.advection.max_courant` for the fluxes of one outer step
(:func:`plan_levels`, both in one pass; :func:`level_courant` again when a step needs several
outer steps), computed cell by cell without the dozen full-size NumPy temporaries (divergences, scaled fluxes,
reduced masses) the array form needed. Same arithmetic as the array form (tested equal).
Work items: levels k (threads, :mod:`.threads`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .advection import _LANES, _courant_cell, _lane_max
from .threads import parallel_kernel

__all__ = ["plan_levels", "level_courant"]


@parallel_kernel(lambda mass, *_: mass.shape[0], exact=True)
@nb.njit(nogil=True, cache=True, error_model="numpy")
def level_courant(start, stop, mass, mass_end, flux_x, flux_y, flux_z, n_outer, courant_max,
                  out):
    """Per level k, for one outer step (fluxes / n_outer): out[k, 0] the split-scheme sub-step
    number of the horizontal phase after a vertical one (mass m0 - max(div_z, 0) / n_outer,
    no vertical faces), out[k, 1] that of the vertical phase after a horizontal one (mass m0 -
    max(div_h, 0) / n_outer, no horizontal faces), as :func:`max_courant`'s entry 3."""
    nz, ny, nx = mass.shape
    given = mass_end.shape[0] == nz
    inv_cmax = 1.0 / courant_max
    n = float(n_outer)
    for k in range(start, stop):
        ch = 0.0
        cz = 0.0
        for j in range(ny):
            for i in range(nx):
                w = flux_x[k, j, i]
                e = flux_x[k, j, i + 1]
                s = flux_y[k, j, i]
                nn = flux_y[k, j + 1, i]
                b = flux_z[k, j, i]
                t = flux_z[k + 1, j, i]
                dh = (e - w) + (nn - s)
                dz = t - b
                m = mass[k, j, i]
                me = mass_end[k, j, i] if given else m - dh - dz
                m0 = min(m, me)
                if n_outer > 1:  # (x / 1.0 == x: one outer step, the common case, skips them)
                    w, e, s, nn, b, t = w / n, e / n, s / n, nn / n, b / n, t / n
                    m_h = m0 - max(dz, 0.0) / n
                    m_z = m0 - max(dh, 0.0) / n
                else:
                    m_h = m0 - max(dz, 0.0)
                    m_z = m0 - max(dh, 0.0)
                c_h = _courant_cell(m_h, w, e, s, nn, 0.0, 0.0, inv_cmax)[3]
                c_z = _courant_cell(m_z, 0.0, 0.0, 0.0, 0.0, b, t, inv_cmax)[3]
                ch = max(ch, c_h)
                cz = max(cz, c_z)
        out[k, 0] = ch
        out[k, 1] = cz


@parallel_kernel(lambda mass, *_: mass.shape[0], exact=True)
@nb.njit(nogil=True, cache=True, error_model="numpy")
def plan_levels(start, stop, mass, mass_end, flux_x, flux_y, flux_z, courant_max, out):
    """Per level k, in one pass over the fluxes: out[k, 0:3] = (max div_h / m0, max div_z /
    m0, min m0) with div_h, div_z the horizontal and vertical flux divergence (kg per step) and
    m0 = min(mass, mass_end) (the end mass given, or, where ``mass_end`` has no levels, mass -
    div_h - div_z); out[k, 3:5] as :func:`level_courant` with ``n_outer`` = 1 (the same
    arithmetic per cell, so the same maxima bit for bit). When the ratios ask for more outer
    steps the caller runs :func:`level_courant` with their number. Each row's cell values go
    through a work row and lane-wise maxima (vectorised)."""
    nz, ny, nx = mass.shape
    given = mass_end.shape[0] == nz
    inv_cmax = 1.0 / courant_max
    work = np.empty((5, nx))
    lanes = np.empty(_LANES)
    for k in range(start, stop):
        acc = np.full(5, -np.inf)
        for j in range(ny):
            fw = flux_x[k, j]
            fs = flux_y[k, j]
            fn = flux_y[k, j + 1]
            fb = flux_z[k, j]
            ft = flux_z[k + 1, j]
            m_row = mass[k, j]
            for i in range(nx):
                w = fw[i]
                e = fw[i + 1]
                s = fs[i]
                nn = fn[i]
                b = fb[i]
                t = ft[i]
                dh = (e - w) + (nn - s)
                dz = t - b
                m = m_row[i]
                me = mass_end[k, j, i] if given else m - dh - dz
                m0 = min(m, me)
                work[0, i] = dh / m0
                work[1, i] = dz / m0
                work[2, i] = m0
                work[3, i] = _courant_cell(m0 - max(dz, 0.0), w, e, s, nn, 0.0, 0.0,
                                           inv_cmax)[3]
                work[4, i] = _courant_cell(m0 - max(dh, 0.0), 0.0, 0.0, 0.0, 0.0, b, t,
                                           inv_cmax)[3]
            for c in range(5):
                acc[c] = max(acc[c], _lane_max(work[c], nx, lanes, -1.0 if c == 2 else 1.0))
        out[k, 0] = acc[0]
        out[k, 1] = acc[1]
        out[k, 2] = -acc[2]
        out[k, 3] = max(acc[3], 0.0)
        out[k, 4] = max(acc[4], 0.0)
