"""Column-wise vertical interpolation between WRF eta levels and the model's eta levels.

Both grids are terrain-following in dry hydrostatic pressure (WRF's eta coordinate, Laprise 1992;
Skamarock et al. 2019 sec. 2.1): at an interface ``p_d = eta mu_d + p_top`` (or, with WRF's
hybrid coordinate HYBRID_OPT = 2, ``p_d = c3f mu_d + c4f + p_top``). The model column shares
WRF's dry surface pressure ``mu_d + p_top`` and has its own ``p_top`` (>= WRF's).

* Intensive layer quantities (winds, theta, q_v, cloud fraction) are remapped **mass-weighted**
  (conservatively in dry pressure): the cumulative integral ``C(p) = int_p^{p_s} f dp'`` of the
  piecewise-constant source profile is interpolated linearly in p at the model interfaces and
  differenced. Column integrals of mass-weighted quantities (air mass flux, water) are kept
  exactly; identical levels reproduce the input to round-off.
* Point quantities (pressure at layer centres) are interpolated linearly in dry pressure, held
  constant beyond the end points.

All functions are vectorised over the trailing (column) axes; axis 0 is the level, ordered from
the surface upwards (pressure decreasing).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ColumnInterpolation", "MassWeightedRemap", "interface_dry_pressure",
           "interp_columns", "remap_mass_weighted"]


def interface_dry_pressure(eta, mu, p_top, c3=None, c4=None):
    """Dry hydrostatic pressure at levels ``eta`` (n,) over columns ``mu`` (...), Pa."""
    eta = np.asarray(eta, dtype=float).reshape((-1,) + (1,) * np.ndim(mu))
    if c3 is not None:
        c3 = np.asarray(c3, dtype=float).reshape(eta.shape)
        c4 = np.asarray(c4, dtype=float).reshape(eta.shape)
        return c3 * mu + c4 + p_top
    return eta * mu + p_top


class ColumnInterpolation:
    """Linear interpolation along axis 0 in each column from levels ``x_src`` (n, ...),
    decreasing along axis 0, to ``x_tgt`` (m, ...); the bracketing indices and weights are
    found once and applied to any number of fields on the same levels (the met's mass-point
    fields share their pressures). Targets outside the source range take the end values."""

    def __init__(self, x_src, x_tgt):
        x_src = np.asarray(x_src, dtype=float)
        x_tgt = np.asarray(x_tgt, dtype=float)
        self.n = n = x_src.shape[0]
        self.shape = x_tgt.shape
        if n == 1:
            return
        # number of source levels below (higher pressure) each target
        idx = np.sum(x_src[None] > x_tgt[:, None], axis=1)
        self.lo = np.clip(idx - 1, 0, n - 2)
        x0 = np.take_along_axis(x_src, self.lo, 0)
        x1 = np.take_along_axis(x_src, self.lo + 1, 0)
        self.w = np.clip((x_tgt - x0) / np.where(x1 != x0, x1 - x0, 1.0), 0.0, 1.0)

    def __call__(self, y_src):
        y_src = np.asarray(y_src, dtype=float)
        if self.n == 1:
            return np.broadcast_to(y_src, self.shape).copy()
        y0 = np.take_along_axis(y_src, self.lo, 0)
        y1 = np.take_along_axis(y_src, self.lo + 1, 0)
        return y0 + self.w * (y1 - y0)


def interp_columns(x_src, y_src, x_tgt):
    """Linear interpolation along axis 0 in each column; x_src decreasing along axis 0.

    x_src, y_src: (n, ...) ; x_tgt: (m, ...) ; returns (m, ...). Targets outside the source
    range take the end values (:class:`ColumnInterpolation`).
    """
    return ColumnInterpolation(x_src, x_tgt)(y_src)


class MassWeightedRemap:
    """Mass-weighted remap of layer values between two sets of interface pressures, set up
    once for any number of fields (:func:`remap_mass_weighted`)."""

    def __init__(self, p_src, p_tgt):
        p_src = np.asarray(p_src, dtype=float)
        self.dp_src = p_src[:-1] - p_src[1:]
        self.interp = ColumnInterpolation(p_src, p_tgt)
        self.dp = p_tgt[:-1] - p_tgt[1:]

    def __call__(self, field):
        f = np.asarray(field, dtype=float)
        cum = np.concatenate([np.zeros((1,) + f.shape[1:]), np.cumsum(f * self.dp_src, axis=0)])
        c_tgt = self.interp(cum)
        return (c_tgt[1:] - c_tgt[:-1]) / self.dp


def remap_mass_weighted(p_src, field, p_tgt):
    """Mass-weighted remap of layer values between two sets of interface pressures.

    p_src: (n+1, ...) source interface pressures (decreasing upwards); field: (n, ...) layer
    means; p_tgt: (m+1, ...) target interface pressures inside [p_src[-1], p_src[0]].
    Returns (m, ...) layer means.
    """
    return MassWeightedRemap(p_src, p_tgt)(field)
