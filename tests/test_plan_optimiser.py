"""The plan's optimiser (issue 21) on synthetic models, in milliseconds: bounds respected, the
target met on the optimiser's own model (linear: linprog; response surface: SLSQP), the least
cost against a grid search, and an infeasible target named by its limit -- alone or jointly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from aqforecast.scenarios.optimise import (
    Infeasible,
    LinearModel,
    ResponseModel,
    best_reachable,
    solve,
)
from aqforecast.scenarios.plan import _infeasible_message
from aqforecast.scenarios.schema import Limit, Measure, Target


def _grid_best(model, cost, base, bound, ub, n=201):
    """Cheapest feasible point of a fine grid (2 measures)."""
    best = None
    for x in itertools.product(*(np.linspace(0, u, n) for u in ub)):
        x = np.array(x)
        if np.all(base + model.change(x) <= bound + 1e-9) and \
                (best is None or cost @ x < cost @ best):
            best = x
    return best


def test_linear_plan_respects_bounds_meets_target_at_least_cost():
    S = np.array([[-10.0, -4.0, 0.0], [-2.0, -6.0, -1.0]])   # ug m-3 per unit cut
    base, bound = np.array([80.0, 70.0]), np.array([75.0, 66.0])
    cost, ub = np.array([5.0, 1.0, 0.1]), np.array([0.8, 0.5, 1.0])
    sol = solve(LinearModel(S), cost, base, bound, ub)
    assert np.all(sol.x >= -1e-12) and np.all(sol.x <= ub + 1e-12)
    assert np.all(sol.predicted <= bound + 1e-6)
    assert sol.binding.any() and sol.model == "linear"
    # measure 2 (cheapest per ug) at its bound, measure 1 for the rest of limit 1 and the
    # cheap measure 3 for the rest of limit 2
    np.testing.assert_allclose(sol.x, [0.3, 0.5, 0.4], atol=1e-9)
    assert sol.cost == pytest.approx(2.04)


def test_response_plan_respects_bounds_meets_target_on_its_surface():
    # 2 measures over 2 (region, precursor) pairs; curvature: the second pair saturates
    W = np.array([[0.9, 0.0], [0.3, 0.7]])
    A = np.array([[-12.0, -8.0], [-3.0, -9.0]])
    B = np.array([[2.0, 4.0], [0.5, 3.0]])
    model = ResponseModel(W, A, B)
    base, bound = np.array([80.0, 70.0]), np.array([74.0, 66.5])
    cost, ub = np.array([3.0, 1.0]), np.array([0.9, 0.8])
    sol = solve(model, cost, base, bound, ub)
    assert sol.model == "response"
    assert np.all(sol.x >= 0) and np.all(sol.x <= ub)
    pred = base + model.change(sol.x)
    np.testing.assert_allclose(sol.predicted, pred)
    assert np.all(pred <= bound + 1e-6 * np.abs(bound))
    grid = _grid_best(model, cost, base, bound, ub)
    assert cost @ sol.x <= cost @ grid * (1 + 1e-3)   # as cheap as the best grid point
    assert sol.binding.any()
    # the Jacobian is the derivative of the surface
    x, h = np.array([0.4, 0.3]), 1e-6
    fd = np.stack([(model.change(x + h * e) - model.change(x - h * e)) / (2 * h)
                   for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(model.jacobian(x), fd, rtol=1e-6)


def test_response_best_reachable_finds_an_interior_minimum():
    # dS = -4 y + 4 y^2: the lowest value at y = 0.5, not at the bound
    model = ResponseModel(np.array([[1.0]]), np.array([[-4.0]]), np.array([[4.0]]))
    best = best_reachable(model, np.array([10.0]), np.array([1.0]))
    assert best[0] == pytest.approx(9.0, abs=1e-6)
    sol = solve(model, np.array([1.0]), np.array([10.0]), np.array([9.5]), np.array([1.0]))
    assert sol.x[0] == pytest.approx(0.5 - np.sqrt(0.5) / 2, abs=1e-5)   # the cheaper root


@pytest.mark.parametrize("kind", ["linear", "response"])
def test_infeasible_alone_names_the_limit(kind):
    S = np.array([[-1.0, -1.0], [-10.0, 0.0]])
    model = LinearModel(S) if kind == "linear" else ResponseModel(
        np.eye(2), S, np.zeros_like(S))
    base, bound, ub = np.array([50.0, 50.0]), np.array([49.0, 30.0]), np.array([0.5, 0.5])
    with pytest.raises(Infeasible) as info:
        solve(model, np.ones(2), base, bound, ub)
    e = info.value
    assert e.limit == 1 and not e.joint and e.reached == pytest.approx(45.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["linear", "response"])
def test_infeasible_together_names_the_furthest_limit(kind):
    # each limit alone is reachable; measure 1 helps limit 1 and hurts limit 2, measure 2 the
    # other way round, so no cut meets both
    S = np.array([[-10.0, 10.0], [10.0, -10.0]])
    model = LinearModel(S) if kind == "linear" else ResponseModel(
        np.eye(2), S, np.zeros_like(S))
    base, bound, ub = np.array([50.0, 50.0]), np.array([45.0, 46.0]), np.array([1.0, 1.0])
    with pytest.raises(Infeasible) as info:
        solve(model, np.ones(2), base, bound, ub)
    assert info.value.joint
    limits = [{"limit": 1, "city": "Hangzhou", "lead_day": 2, "pollutant": "PM2.5",
               "statistic": "daily_mean", "base": 50.0, "bound": 45.0},
              {"limit": 1, "city": "Hangzhou", "lead_day": 3, "pollutant": "PM2.5",
               "statistic": "daily_mean", "base": 50.0, "bound": 46.0}]
    target = Target(name="t", limits=[Limit(pollutant="PM2.5", max=45, days=[2, 3])],
                    measures=[Measure(name="a", max_cut=1.0), Measure(name="b", max_cut=1.0)])
    msg = _infeasible_message(target, kind, limits, info.value)
    assert "infeasible" in msg and f"({kind} model)" in msg and "not all together" in msg
    assert "Hangzhou on lead day" in msg and "PM2.5 daily_mean <= 4" in msg, msg
