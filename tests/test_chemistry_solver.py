"""Stiff solvers: published stiff test problems, GRS against Radau, invariants, vectorisation."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from aqforecast.chemistry import (DEFAULT_MECHANISM, box_model, compile_mechanism,
                                  parse_mechanism, run_box)

ROSENBROCK = ("ros2", "ros3", "rodas3")

# Robertson (1966) chemical kinetics problem, as in the IVP test set (Mazzia & Magherini,
# "rober"): reference solution at t = 1e11 (report rober.pdf; the same values are used in the
# test suites of ODE.jl, pyodesys and Drake).
ROBERTSON = """
#UNITS 1 s
#DEFVAR
Y1 ; Y2 ; Y3 ;
#EQUATIONS
<k1> Y1 = Y2 : 0.04 ;
<k2> Y2 + Y3 = Y1 + Y3 : 1.0E4 ;
<k3> 2 Y2 = Y2 + Y3 : 3.0E7 ;
"""
ROBERTSON_T = 1e11
ROBERTSON_REF = [0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050]

# HIRES (Schaefer 1975; Hairer & Wanner 1996, IVP test set "hires") written as reactions:
# zero-order source of Y1, first-order conversions, and Y6 + Y8 -> Y7. Reference solution at
# t = 321.8122 from the test set's hiressol (RADAU5 in quadruple precision on a Cray C90).
HIRES = """
#UNITS 1 s
#DEFVAR
Y1 ; Y2 ; Y3 ; Y4 ; Y5 ; Y6 ; Y7 ; Y8 ;
#EQUATIONS
<s0> = Y1 : 0.0007 ;
<a> Y1 = Y2 : 1.71 ;      <b> Y2 = Y1 : 0.43 ;      <c> Y2 = Y4 : 8.32 ;
<d> Y3 = Y1 : 8.32 ;      <e> Y3 = Y4 : 1.71 ;      <f> Y4 = Y3 : 0.43 ;
<g> Y4 = Y6 : 0.69 ;      <h> Y5 = Y3 : 0.035 ;     <i> Y5 = Y6 : 1.71 ;
<j> Y6 = Y5 : 0.43 ;      <k> Y7 = Y5 + Y8 : 0.43 ; <l> Y7 = Y6 + Y8 : 0.69 ;
<m> Y7 = Y8 : 0.69 ;      <n> Y6 + Y8 = Y7 : 280.0 ;
"""
HIRES_T = 321.8122
HIRES_REF = [0.7371312573325668e-3, 0.1442485726316185e-3, 0.5888729740967575e-4,
             0.1175651343283149e-2, 0.2386356198831331e-2, 0.6238968252742796e-2,
             0.2849998395185769e-2, 0.2850001604814231e-2]

GRS_INIT = {"NO": 0.02, "NO2": 0.01, "O3": 0.03, "ROC": 1.0, "SO2": 0.01, "H2O2": 0.001}
GRS_PAR = {"J_NO2": 0.45, "J_H2O2": 5e-4, "K_SO2": 2e-4}      # per minute


@pytest.fixture(scope="module")
def grs():
    return compile_mechanism(DEFAULT_MECHANISM)


def _radau(cm, y0, kc, t_end):
    def f(t, y):
        out = np.empty(cm.nvar)
        cm.module.tendency(y, kc, out)
        return out

    def jac(t, y):
        out = np.empty((cm.nvar, cm.nvar))
        cm.module.jacobian(y, kc, out)
        return out

    sol = solve_ivp(f, (0.0, t_end), y0, method="Radau", rtol=1e-12, atol=1e-22, jac=jac)
    assert sol.success
    return sol.y[:, -1]


@pytest.mark.parametrize("solver", ROSENBROCK)
def test_robertson_published_reference(solver):
    mech = parse_mechanism(ROBERTSON, "robertson.eqn")
    final, _ = box_model(mech, {"Y1": 1.0}, ROBERTSON_T, rtol=1e-7, atol=1e-20, solver=solver)
    got = [final["Y1"], final["Y2"], final["Y3"]]
    np.testing.assert_allclose(got, ROBERTSON_REF, rtol=1e-3)


@pytest.mark.parametrize("solver", ROSENBROCK)
def test_hires_published_reference(solver):
    mech = parse_mechanism(HIRES, "hires.eqn")
    final, _ = box_model(mech, {"Y1": 1.0, "Y8": 0.0057}, HIRES_T, rtol=1e-7, atol=1e-12,
                         solver=solver)
    np.testing.assert_allclose([final[f"Y{i}"] for i in range(1, 9)], HIRES_REF, rtol=1e-3)


def test_generated_rhs_and_jacobian_match_hand_written_grs(grs):
    """Generated tendencies equal an independent NumPy transcription of SCIENCE.md 5.1."""
    rng = np.random.default_rng(1)
    t = 290.0
    kc = grs.rate_constants(t, 1e5, GRS_PAR)[0]
    m = grs.mechanism
    for _ in range(5):
        y = rng.uniform(1e-4, 0.05, grs.nvar)
        c = dict(zip(m.variable, y))
        j = GRS_PAR["J_NO2"]
        k1, k2, k4 = j * 1e4 * np.exp(-4710 / t), 5482 * np.exp(242 / t), 2643 * np.exp(-1370 / t)
        r1, r2, r3 = k1 * c["ROC"], k2 * c["RP"] * c["NO"], j * c["NO2"]
        r4, r5, r6 = k4 * c["NO"] * c["O3"], 1e4 * c["RP"] ** 2, 125 * c["RP"] * c["NO2"]
        expect = {"NO": r3 - r2 - r4, "NO2": r2 + r4 - r3 - 2 * r6, "O3": r3 - r4, "ROC": 0.0,
                  "RP": r1 - r2 - r5 - 2 * r6, "HNO3": r6, "SNGN": r6,
                  "H2O2": r5 - GRS_PAR["J_H2O2"] * c["H2O2"],
                  "SO2": -GRS_PAR["K_SO2"] * c["SO2"], "SO4": GRS_PAR["K_SO2"] * c["SO2"]}
        f = np.empty(grs.nvar)
        grs.module.tendency(y, kc, f)
        np.testing.assert_allclose(f, [expect[n] for n in m.variable], rtol=1e-12, atol=1e-18)
        jac = np.empty((grs.nvar, grs.nvar))
        grs.module.jacobian(y, kc, jac)
        num = np.empty_like(jac)
        for l in range(grs.nvar):
            h = 1e-4                       # central differences are exact for quadratics
            yp, ym = y.copy(), y.copy()
            yp[l] += h
            ym[l] -= h
            fp, fm = np.empty(grs.nvar), np.empty(grs.nvar)
            grs.module.tendency(yp, kc, fp)
            grs.module.tendency(ym, kc, fm)
            num[:, l] = (fp - fm) / (2 * h)
        np.testing.assert_allclose(jac, num, rtol=1e-7, atol=1e-8)


def test_photostationary_state(grs):
    """ROC = 0: relaxation to the Leighton ratio [O3][NO]/[NO2] = j/k4 (SCIENCE.md 10.3.1)."""
    j, t = 0.535, 298.0                        # j(NO2) = 8.92e-3 s-1 in min-1
    k4 = 2643.0 * np.exp(-1370.0 / t)
    init = {"NO": 0.01, "NO2": 0.02, "O3": 0.03}
    for solver in ROSENBROCK + ("pece",):
        final, _ = box_model(grs.mechanism, init, 60.0, t, parameters={"J_NO2": j}, rtol=1e-4,
                             solver=solver)
        ratio = final["O3"] * final["NO"] / final["NO2"]
        assert ratio == pytest.approx(j / k4, rel=1e-2), solver
        nox, ox = final["NO"] + final["NO2"], final["O3"] + final["NO2"]
        assert nox == pytest.approx(0.03, rel=1e-12), solver
        # Ox = O3 + NO2 is an invariant of R3/R4 only, not of the whole mechanism: the Rosenbrock
        # methods keep it exactly, the exponential predictor-corrector to its tolerance
        assert ox == pytest.approx(0.05, rel=1e-12 if solver != "pece" else 1e-4), solver
        # analytic equilibrium: smaller root of k4 x^2 - [k4 (NOx + Ox) + j] x + k4 NOx Ox = 0
        a, b, c = k4, -(k4 * 0.08 + j), k4 * 0.03 * 0.05
        x = (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a)
        assert final["NO2"] == pytest.approx(x, rel=1e-3), solver


@pytest.mark.parametrize("solver", ROSENBROCK)
def test_grs_against_radau_reference(grs, solver):
    m = grs.mechanism
    kc = grs.rate_constants(298.0, 101325.0, GRS_PAR)
    y0 = np.zeros((1, grs.nvar))
    for k, v in GRS_INIT.items():
        y0[0, m.index(k)] = v
    ref = _radau(grs, y0[0].copy(), kc[0], 120.0)
    y = y0.copy()
    grs.integrate(y, kc, 120.0, solver=solver, rtol=1e-5)
    sig = ref > 1e-8
    np.testing.assert_allclose(y[0][sig], ref[sig], rtol=1e-3)
    # default tolerance still within 1 % for O3
    y = y0.copy()
    grs.integrate(y, kc, 120.0, solver=solver, rtol=1e-3)
    assert y[0, m.index("O3")] == pytest.approx(ref[m.index("O3")], rel=1e-2)


def test_pece_against_radau_reference(grs):
    """Predictor-corrector (QSSA RP) on the GRS box: O3 within 1 % (SCIENCE.md 10.3.2)."""
    m = grs.mechanism
    kc = grs.rate_constants(298.0, 101325.0, GRS_PAR)
    y0 = np.zeros((1, grs.nvar))
    for k, v in GRS_INIT.items():
        y0[0, m.index(k)] = v
    ref = _radau(grs, y0[0].copy(), kc[0], 120.0)
    y = y0.copy()
    grs.integrate(y, kc, 120.0, solver="pece", rtol=1e-3)
    for name in ("O3", "NO2", "SO4", "H2O2"):
        assert y[0, m.index(name)] == pytest.approx(ref[m.index(name)], rel=1e-2), name
    assert y[0, m.index("RP")] >= 0.0


def _diurnal_cells(grs, ncell, seed=0):
    rng = np.random.default_rng(seed)
    m = grs.mechanism
    y = np.zeros((ncell, grs.nvar))
    for name, hi in (("NO", 0.05), ("NO2", 0.05), ("O3", 0.08), ("ROC", 2.0), ("SO2", 0.02),
                     ("H2O2", 0.002)):
        y[:, m.index(name)] = rng.uniform(0.0, hi, ncell)
    jn = rng.uniform(0.0, 0.55, ncell)
    jn[: ncell // 4] = 0.0                                     # night cells
    temp = rng.uniform(270.0, 310.0, ncell)
    kc = grs.rate_constants(temp, 101325.0, {"J_NO2": jn, "J_H2O2": jn * 1e-3, "K_SO2": 3e-4})
    return y, kc


@pytest.mark.parametrize("solver", ROSENBROCK + ("pece",))
def test_n_and_s_atom_balance(grs, solver):
    y, kc = _diurnal_cells(grs, 40)
    m = grs.mechanism
    n_atoms, s_atoms = m.atom_vector("N"), m.atom_vector("S")
    n0, s0 = y @ n_atoms, y @ s_atoms
    for _ in range(6):                                         # six 10-minute steps
        grs.integrate(y, kc, 10.0, solver=solver)
    assert np.all(y >= 0.0)
    np.testing.assert_allclose(y @ n_atoms, n0, rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(y @ s_atoms, s0, rtol=1e-10, atol=1e-16)


@pytest.mark.parametrize("solver", ("ros3", "pece"))
def test_vectorised_equals_cell_by_cell(grs, solver):
    y, kc = _diurnal_cells(grs, 24, seed=3)
    yv = y.copy()
    rv = grs.integrate(yv, kc, 15.0, solver=solver).integrated_rates
    for c in range(y.shape[0]):
        yc = y[c:c + 1].copy()
        rc = grs.integrate(yc, kc[c:c + 1].copy(), 15.0, solver=solver).integrated_rates
        np.testing.assert_array_equal(yc[0], yv[c])
        np.testing.assert_array_equal(rc[0], rv[c])


def test_integrated_rates_close_the_budget(grs):
    y, kc = _diurnal_cells(grs, 10, seed=5)
    y0 = y.copy()
    res = grs.integrate(y, kc, 30.0, solver="rodas3")
    budget = res.integrated_rates @ grs.mechanism.stoichiometry().T
    # exact to round-off except where a concentration was clipped at zero (amounts < atol)
    np.testing.assert_allclose(y - y0, budget, rtol=1e-8, atol=1e-7)


def test_run_box_signature_and_units():
    out = run_box(DEFAULT_MECHANISM, {"NO2": 0.04, "O3": 0.0}, 30.0, temperature=298.0,
                  photolysis={"J_NO2": 0.5}, rtol=1e-4)
    assert set(out) >= {"NO", "NO2", "O3"}
    assert out["NO"] == pytest.approx(out["O3"], rel=1e-9)     # each photolysis gives NO + O3
    with pytest.raises(KeyError, match="not a parameter"):
        run_box(DEFAULT_MECHANISM, {"NO2": 0.04}, 1.0, photolysis={"J_XYZ": 1.0})
    with pytest.raises(KeyError, match="not declared"):
        run_box(DEFAULT_MECHANISM, {"BOGUS": 1.0}, 1.0)


_BACKGROUND = r"""
import sys
import numpy as np
from aqforecast.chemistry.parser import parse_mechanism
from aqforecast.chemistry.solver import CompiledMechanism
cm = CompiledMechanism(parse_mechanism(sys.stdin.read(), "robertson.eqn"))
assert cm.compile_in_background("ros3")
n = 3
kc = cm.rate_constants(np.full(n, 290.0), np.full(n, 1e5))
y = np.tile([1.0, 0.0, 0.0], (n, 1))
res = cm.integrate(y, kc, 40.0, solver="ros3", first_step=np.zeros(n))
stats = [cm._rate_constants.dispatcher.stats, cm._rosenbrock.dispatcher.stats]
print(sum(sum(s.cache_hits.values()) for s in stats),
      sum(sum(s.cache_misses.values()) for s in stats), int(res.steps.min()), y[0, 0])
"""


def test_background_compile_fills_the_cache_for_this_process(tmp_path):
    """compile_in_background: a child process compiles the integrator into numba's on-disk
    cache; this process then loads both kernels from the cache (no compilation of its own) and
    integrates correctly (Robertson at t = 40: y1 = 0.7158 in the IVP test set's table)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               AQFORECAST_CACHE_DIR=str(tmp_path / "mech"))
    out = subprocess.run([sys.executable, "-c", _BACKGROUND], input=ROBERTSON, env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    hits, misses, steps, y1 = out.stdout.split()
    assert int(misses) == 0 and int(hits) == 2
    assert int(steps) > 0
    assert float(y1) == pytest.approx(0.7158, abs=2e-3)
