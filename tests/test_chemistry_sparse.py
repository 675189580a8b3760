"""Sparse Jacobian and KPP-style sparse LU of the generated Rosenbrock integrators."""

import numpy as np
import pytest

from aqforecast.chemistry import DEFAULT_MECHANISM, compile_mechanism, parse_mechanism
from aqforecast.chemistry.codegen import jacobian_pattern, sparse_lu_structure

from test_chemistry_solver import HIRES, ROBERTSON, _diurnal_cells

MECHANISMS = {"grs": None, "robertson": ROBERTSON, "hires": HIRES}


def _compiled(name, lu="sparse"):
    text = MECHANISMS[name]
    mech = DEFAULT_MECHANISM if text is None else parse_mechanism(text, f"{name}.eqn")
    return compile_mechanism(mech, lu=lu)


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_sparse_lu_solve_equals_numpy_solve(name):
    """Random diagonally dominant matrices with the mechanism's Jacobian pattern: the generated
    no-pivoting sparse LU solves them as numpy.linalg.solve does."""
    cm = _compiled(name)
    mod = cm.module
    n = cm.nvar
    pattern = jacobian_pattern(cm.mechanism)
    rng = np.random.default_rng(7)
    for _ in range(20):
        dense = np.zeros((n, n))
        for i, j in pattern:
            dense[i, j] = rng.uniform(-1.0, 1.0) * 10.0 ** rng.uniform(-3, 3)
        for i in range(n):
            dense[i, i] = np.abs(dense[i]).sum() + np.abs(dense[:, i]).sum() + rng.uniform(0.1, 1)
        a = dense[mod.LU_IROW, mod.LU_ICOL].copy()          # fill-in entries start as 0
        dinv = np.empty(n)
        assert mod.lu_factor_sp(a, dinv, 0.0)
        b = rng.normal(size=n)
        x = b.copy()
        mod.lu_solve_sp(a, dinv, x)
        ref = np.linalg.solve(dense, b)
        np.testing.assert_allclose(x, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_sparse_jacobian_equals_dense(name):
    cm = _compiled(name)
    mod = cm.module
    n, nr = cm.nvar, cm.nreact
    kc = cm.rate_constants(290.0, 1e5)[0]
    rng = np.random.default_rng(3)
    for _ in range(5):
        y = rng.uniform(1e-4, 1.0, n)
        jac, drdy = np.empty((n, n)), np.empty((nr, n))
        mod.jacobian(y, kc, jac)
        mod.rate_jacobian(y, kc, drdy)
        dr, jv = np.empty(mod.DR_NNZ), np.empty(mod.LU_NNZ)
        mod.rate_jacobian_sp(y, kc, dr)
        mod.jacobian_sp(dr, jv)
        sparse_dr = np.zeros((nr, n))
        sparse_dr[mod.DR_REACT, mod.DR_VAR] = dr
        sparse_jac = np.zeros((n, n))
        sparse_jac[mod.LU_IROW, mod.LU_ICOL] = jv
        np.testing.assert_allclose(sparse_dr, drdy, rtol=1e-15, atol=0.0)
        np.testing.assert_allclose(sparse_jac, jac, rtol=1e-14, atol=0.0)
        x = rng.normal(size=n)
        out = np.zeros(nr)
        mod.rate_jvp(dr, x, out)
        np.testing.assert_allclose(out, drdy @ x, rtol=1e-13, atol=1e-300)
        r, f, f2 = np.empty(nr), np.empty(n), np.empty(n)
        mod.rates_tendency(y, kc, r, f)
        mod.tendency(y, kc, f2)
        np.testing.assert_array_equal(f, f2)


def test_markowitz_ordering_avoids_fill_in():
    """Arrowhead matrix (dense first row and column): index order fills the whole matrix,
    the Markowitz order eliminates the first row/column last (with the last of the others: a tie)
    and has no fill-in; GRS has none."""
    n = 6
    arrow = [(0, j) for j in range(n)] + [(i, 0) for i in range(n)]
    order, fill = sparse_lu_structure(arrow, n, ordering="original")
    assert order == list(range(n)) and len(fill) == n * n
    order, fill = sparse_lu_structure(arrow, n)
    assert order.index(0) >= n - 2 and fill == set(arrow) | {(i, i) for i in range(n)}
    cm = _compiled("grs")
    pattern = set(jacobian_pattern(cm.mechanism)) | {(i, i) for i in range(cm.nvar)}
    assert cm.module.LU_NNZ == len(pattern)
    assert sparse_lu_structure(pattern, cm.nvar) == sparse_lu_structure(pattern, cm.nvar)


def test_sparse_lu_refuses_bad_pivots():
    """A zero or non-finite pivot makes lu_factor_sp return False (the integrator then uses the
    dense partial-pivoting LU for that step)."""
    mod = _compiled("grs").module
    jv = np.zeros(mod.LU_NNZ)
    a, dinv = np.empty(mod.LU_NNZ), np.empty(10)
    mod.lu_matrix(jv, 0.0, a)                       # ROC's row of J is empty: zero pivot
    assert not mod.lu_factor_sp(a, dinv, 0.0)
    mod.lu_matrix(jv, 1.0, a)
    assert mod.lu_factor_sp(a, dinv, 0.0)
    mod.lu_matrix(jv, 1.0, a)
    a[mod.LU_DIAG[4]] = np.nan
    assert not mod.lu_factor_sp(a, dinv, 0.0)
    mod.lu_matrix(jv, 1.0, a)
    assert not mod.lu_factor_sp(a, dinv, 2.0)      # every pivot below the threshold


@pytest.mark.parametrize("solver", ("ros2", "ros3", "rodas3"))
def test_sparse_and_dense_integration_agree(solver):
    sparse, dense = _compiled("grs"), _compiled("grs", lu="dense")
    assert sparse.lu == "sparse" and dense.lu == "dense"
    y, kc = _diurnal_cells(sparse, 60, seed=11)
    ys, yd = y.copy(), y.copy()
    same = np.ones(len(y), dtype=bool)
    for _ in range(3):                                   # three 15-minute steps
        rs = sparse.integrate(ys, kc, 15.0, solver=solver)
        rd = dense.integrate(yd, kc, 15.0, solver=solver)
        # identical step sequences here (measured); a round-off difference may flip an
        # accept/reject decision sitting exactly on the threshold on another CPU: such a cell
        # then follows another (equally valid) step sequence and is left out
        same &= rs.steps == rd.steps
        sel = (np.abs(rd.integrated_rates) > 1e-12) & same[:, None]
        np.testing.assert_allclose(rs.integrated_rates[sel], rd.integrated_rates[sel], rtol=1e-10)
    assert same.mean() >= 0.95
    sel = (yd > 1e-9) & same[:, None]
    np.testing.assert_allclose(ys[sel], yd[sel], rtol=1e-10)
    np.testing.assert_allclose(ys[same], yd[same], rtol=0.0, atol=1e-15)


def test_lu_option(monkeypatch):
    with pytest.raises(ValueError, match="lu="):
        compile_mechanism(None, lu="banded")
    monkeypatch.setenv("AQFORECAST_CHEMISTRY_LU", "dense")
    assert compile_mechanism(None).lu == "dense"
    monkeypatch.delenv("AQFORECAST_CHEMISTRY_LU")
    assert compile_mechanism(None).lu == "sparse"
