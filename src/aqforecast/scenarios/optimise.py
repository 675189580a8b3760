"""The least-cost cuts that keep every limited city statistic within its bound, on a linear or
a response-surface model of the statistics (numpy/scipy only; :mod:`.plan` builds the models
from the runs).

Problem: minimise ``cost @ x`` over the measures' cuts ``0 <= x_j <= ub_j`` subject to
``base_i + change_i(x) <= bound_i`` for every limit i, where

* :class:`LinearModel`: ``change(x) = S x`` -- a linear programme, solved with scipy
  ``linprog`` (HiGHS);
* :class:`ResponseModel`: ``change_i(x) = sum_k A_ik y_k + B_ik y_k^2`` with the effective cuts
  ``y = W^T x`` of the (region, precursor) pairs (:mod:`.response`) -- a quadratically
  constrained problem, solved with SLSQP (``scipy.optimize.minimize``: bounds, the limits as
  inequality constraints, analytic Jacobians), started from the linear programme on the
  surface's secants (each measure's change at its bound over the bound) and from all measures at
  their bounds; the cheapest start that ends feasible wins.

Infeasibility (:class:`Infeasible`) is found in two steps: first each limit alone -- the best
value it can reach within the bounds (linear: all helpful measures at their bounds; response:
the minimum over the box from several starts) -- and the first limit that cannot reach its
bound is named; then the limits together: where each is reachable alone but not all at once,
the elastic problem (least total violation) names the limit left furthest above its bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, minimize

__all__ = ["LinearModel", "ResponseModel", "Infeasible", "Solution", "solve", "best_reachable"]


@dataclass
class LinearModel:
    """``change(x) = S @ x``; S (limit x measure)."""

    S: np.ndarray
    name = "linear"

    def change(self, x) -> np.ndarray:
        return self.S @ np.asarray(x, float)

    def jacobian(self, x) -> np.ndarray:
        return self.S


@dataclass
class ResponseModel:
    """``change_i(x) = sum_k A_ik y_k + B_ik y_k^2``, ``y = W^T x``; W (measure x pair),
    A and B (limit x pair)."""

    W: np.ndarray
    A: np.ndarray
    B: np.ndarray
    name = "response"

    def change(self, x) -> np.ndarray:
        y = self.W.T @ np.asarray(x, float)
        return self.A @ y + self.B @ (y * y)

    def jacobian(self, x) -> np.ndarray:
        y = self.W.T @ np.asarray(x, float)
        return (self.A + 2.0 * self.B * y[None, :]) @ self.W.T

    def secants(self, ub) -> np.ndarray:
        """S (limit x measure): each measure's change at its bound over the bound."""
        S = np.zeros((self.A.shape[0], self.W.shape[0]))
        for j, u in enumerate(ub):
            if u > 0:
                e = np.zeros(len(ub))
                e[j] = u
                S[:, j] = self.change(e) / u
        return S


class Infeasible(Exception):
    """No cuts within the bounds meet the limits: ``limit`` (index) is the one named,
    ``reached`` the value it gets to, ``joint``: reachable alone but not with the others."""

    def __init__(self, limit: int, reached: float, joint: bool, out_of_reach: int = 1):
        super().__init__(f"limit {limit} cannot be met (reaches {reached:.6g})")
        self.limit, self.reached, self.joint, self.out_of_reach = limit, reached, joint, \
            out_of_reach


@dataclass
class Solution:
    x: np.ndarray
    predicted: np.ndarray      #: base + change(x)
    binding: np.ndarray        #: limits at their bound
    cost: float
    model: str


def _tol(bound) -> np.ndarray:
    return 1e-6 * np.maximum(np.abs(bound), 1.0)


def best_reachable(model, base, ub) -> np.ndarray:
    """Per limit, the lowest value reachable within ``0 <= x <= ub`` (that limit alone)."""
    base, ub = np.asarray(base, float), np.asarray(ub, float)
    if isinstance(model, LinearModel):
        return base + np.minimum(model.S, 0.0) @ ub
    out = np.empty(len(base))
    bounds = list(zip(np.zeros(len(ub)), ub))
    for i in range(len(base)):
        best = np.inf
        for x0 in (np.zeros_like(ub), ub, 0.5 * ub):
            r = minimize(lambda x, i=i: model.change(x)[i], x0,
                         jac=lambda x, i=i: model.jacobian(x)[i], bounds=bounds,
                         method="L-BFGS-B")
            best = min(best, float(model.change(np.clip(r.x, 0.0, ub))[i]),
                       float(model.change(x0)[i]))
        out[i] = base[i] + best
    return out


def _check_alone(model, base, bound, ub) -> None:
    best = best_reachable(model, base, ub)
    bad = np.flatnonzero(best > bound + _tol(bound))
    if bad.size:
        raise Infeasible(int(bad[0]), float(best[bad[0]]), joint=False, out_of_reach=bad.size)


def _linprog(S, cost, rhs, ub):
    return linprog(cost, A_ub=S, b_ub=rhs, bounds=list(zip(np.zeros(len(ub)), ub)),
                   method="highs")


def _elastic_linear(S, rhs, ub) -> np.ndarray:
    """min sum(s): S x - s <= rhs, 0 <= x <= ub, s >= 0; returns x."""
    n, m = S.shape[1], S.shape[0]
    A = np.hstack([S, -np.eye(m)])
    c = np.concatenate([np.zeros(n), np.ones(m) / np.maximum(np.abs(rhs), 1e-12)])
    r = linprog(c, A_ub=A, b_ub=rhs, bounds=[(0, u) for u in ub] + [(0, None)] * m,
                method="highs")
    return np.clip(r.x[:n], 0.0, ub) if r.success else np.asarray(ub, float)


def _elastic_response(model, base, bound, ub, scale) -> np.ndarray:
    """min t: (base + change(x) - bound) / scale <= t, 0 <= x <= ub; returns x."""
    n = len(ub)

    def cons(z):
        return z[n] - (base + model.change(z[:n]) - bound) / scale

    def jac(z):
        return np.hstack([-model.jacobian(z[:n]) / scale[:, None], np.ones((len(base), 1))])
    z0 = np.concatenate([ub, [np.max((base + model.change(ub) - bound) / scale)]])
    r = minimize(lambda z: z[n], z0, jac=lambda z: np.eye(n + 1)[n], method="SLSQP",
                 bounds=[(0, u) for u in ub] + [(None, None)],
                 constraints=[{"type": "ineq", "fun": cons, "jac": jac}],
                 options={"maxiter": 500, "ftol": 1e-12})
    return np.clip(r.x[:n], 0.0, ub)


def _joint_infeasible(model, base, bound, x) -> Infeasible:
    pred = base + model.change(x)
    viol = (pred - bound) / np.maximum(np.abs(bound), 1e-12)
    i = int(np.argmax(viol))
    return Infeasible(i, float(pred[i]), joint=True, out_of_reach=int((viol > 1e-6).sum()))


def _finish(model, x, cost, base, bound, ub) -> Solution:
    x = np.clip(np.asarray(x, float), 0.0, ub)
    pred = base + model.change(x)
    binding = np.abs(pred - bound) <= 1e-5 * np.maximum(np.abs(bound), 1.0)
    return Solution(x, pred, binding, float(cost @ x), model.name)


def solve(model, cost, base, bound, ub) -> Solution:
    """The least-cost cuts (module docstring); raises :class:`Infeasible`."""
    cost, base, bound, ub = (np.asarray(a, float) for a in (cost, base, bound, ub))
    _check_alone(model, base, bound, ub)
    tol = _tol(bound)
    if isinstance(model, LinearModel):
        r = _linprog(model.S, cost, bound - base, ub)
        if not r.success:
            raise _joint_infeasible(model, base, bound, _elastic_linear(model.S, bound - base,
                                                                        ub))
        return _finish(model, r.x, cost, base, bound, ub)
    scale = np.maximum(np.abs(bound - base), 1e-9 * np.maximum(np.abs(base), 1.0))
    cscale = max(float(np.max(np.abs(cost))), 1e-300)
    starts = [ub.copy()]
    lin = _linprog(model.secants(ub), cost, bound - base, ub)
    if lin.success:
        starts.insert(0, np.clip(lin.x, 0.0, ub))
    best = None
    for x0 in starts:
        r = minimize(lambda x: cost @ x / cscale, x0, jac=lambda x: cost / cscale,
                     method="SLSQP", bounds=list(zip(np.zeros(len(ub)), ub)),
                     constraints=[{"type": "ineq",
                                   "fun": lambda x: (bound - base - model.change(x)) / scale,
                                   "jac": lambda x: -model.jacobian(x) / scale[:, None]}],
                     options={"maxiter": 500, "ftol": 1e-12})
        xr = np.clip(r.x, 0.0, ub)   # nudged towards the bounds if just outside a limit
        for x in [xr + t * (ub - xr) for t in (0.0, 1e-6, 1e-4, 1e-2)] + [x0]:
            if np.all(base + model.change(x) <= bound + tol) and \
                    (best is None or cost @ x < cost @ best - 1e-12 * abs(cost @ best)):
                best = x
    if best is None:
        raise _joint_infeasible(model, base, bound,
                                _elastic_response(model, base, bound, ub, scale))
    return _finish(model, best, cost, base, bound, ub)
