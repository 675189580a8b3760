"""GRS chemistry throughput: cells per second for each solver, 1 and 2 threads, vs scipy BDF.

Every cell is one GRS box (default mechanism, ppm/min) advanced by one sync step (default
300 s = 5 min) from random daytime/night-time urban-to-rural states (NO, NO2, O3, ROC, SO2,
H2O2, temperature, j(NO2)); the same cells are solved with ``scipy.integrate.solve_ivp(method="BDF",
rtol=1e-3, atol=1e-7 ppm)`` with the generated analytical Jacobian, one cell at a time, on a
subset. Also reported: the maximum relative O3 difference against a tight Radau reference on
that subset (relative to max(O3, 1 ppb)), and the compile/load time of the mechanism.

Then the Rosenbrock solvers with the default sparse LU (KPP style, no pivoting) against the dense
partial-pivoting LU (``compile_mechanism(lu="dense")``) on 1 thread: the two are called alternately
in this process, timed in CPU time (``time.process_time``), best of ``--repeat``; printed are the
cells/s of each, their ratio, and the largest relative difference of the concentrations
(entries > 1e-9 ppm) and of the integrated rates.

    python benchmarks/chemistry.py               # 20 000 cells
    python benchmarks/chemistry.py --cells 2000 --scipy-cells 100
    python benchmarks/chemistry.py --lu-only      # only the sparse vs dense LU comparison
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np
from scipy.integrate import solve_ivp

from aqforecast.chemistry import compile_mechanism


def make_cells(cm, n, seed=0):
    rng = np.random.default_rng(seed)
    m = cm.mechanism
    y = np.zeros((n, cm.nvar))
    for name, lo, hi in (("NO", 1e-4, 0.05), ("NO2", 1e-3, 0.05), ("O3", 0.0, 0.08),
                         ("ROC", 0.05, 2.0), ("SO2", 0.0, 0.02), ("H2O2", 0.0, 0.003)):
        y[:, m.index(name)] = rng.uniform(lo, hi, n)
    jn = rng.uniform(0.0, 0.55, n)
    jn[rng.uniform(size=n) < 0.3] = 0.0
    temp = rng.uniform(270.0, 310.0, n)
    kc = cm.rate_constants(temp, 101325.0, {"J_NO2": jn, "J_H2O2": jn * 1e-3, "K_SO2": 3e-4})
    return y, kc


def scipy_solve(cm, y0, kc, tend, method, rtol, atol):
    f_out = np.empty(cm.nvar)
    j_out = np.empty((cm.nvar, cm.nvar))

    def f(t, y):
        cm.module.tendency(y, kc, f_out)
        return f_out.copy()

    def jac(t, y):
        cm.module.jacobian(y, kc, j_out)
        return j_out.copy()

    return solve_ivp(f, (0.0, tend), y0, method=method, rtol=rtol, atol=atol, jac=jac).y[:, -1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=20000)
    ap.add_argument("--scipy-cells", type=int, default=200)
    ap.add_argument("--dt", type=float, default=300.0, help="sync step, s")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lu-only", action="store_true", help="only the sparse vs dense LU table")
    args = ap.parse_args(argv)
    if args.lu_only:
        compare_lu(args)
        return

    t0 = time.perf_counter()
    cm = compile_mechanism(None)
    y_warm, kc_warm = make_cells(cm, 8)
    for solver in ("ros2", "ros3", "rodas3", "pece"):
        cm.integrate(y_warm.copy(), kc_warm, 1.0, solver=solver)
    t_compile = time.perf_counter() - t0
    tend = args.dt / 60.0
    y0, kc = make_cells(cm, args.cells)
    o3 = cm.mechanism.index("O3")
    atol = cm.default_atol()

    nsub = min(args.scipy_cells, args.cells)
    ref = np.array([scipy_solve(cm, y0[c], kc[c], tend, "Radau", 1e-10, 1e-14)
                    for c in range(nsub)])
    t = time.perf_counter()
    bdf = np.array([scipy_solve(cm, y0[c], kc[c], tend, "BDF", 1e-3, atol)
                    for c in range(nsub)])
    bdf_rate = nsub / (time.perf_counter() - t)

    def o3_err(y):
        return float(np.max(np.abs(y[:nsub, o3] - ref[:, o3]) / np.maximum(ref[:, o3], 1e-3)))

    print(f"numba {numba.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs; "
          f"GRS ({cm.nvar} species, {cm.nreact} reactions), {args.cells} cells, dt = {args.dt:g} s,"
          f" rtol 1e-3; mechanism compile/load {t_compile:.1f} s")
    print(f"{'solver':<10}{'threads':>8}{'cells/s':>12}{'x BDF':>9}{'steps/cell':>12}"
          f"{'max O3 err':>12}")
    for solver in ("ros2", "ros3", "rodas3", "pece"):
        for nth in (1, 2):
            if nth > numba.config.NUMBA_NUM_THREADS:
                continue
            numba.set_num_threads(nth)
            best, steps, y = np.inf, None, None
            for _ in range(args.repeat):
                y = y0.copy()
                t = time.perf_counter()
                res = cm.integrate(y, kc, tend, solver=solver, rtol=1e-3)
                best = min(best, time.perf_counter() - t)
                steps = res.steps
            rate = args.cells / best
            print(f"{solver:<10}{nth:>8}{rate:>12.0f}{rate / bdf_rate:>9.1f}"
                  f"{np.mean(np.abs(steps)):>12.1f}{o3_err(y):>12.2e}")
    print(f"{'scipy BDF':<10}{1:>8}{bdf_rate:>12.0f}{1.0:>9.1f}{'':>12}{o3_err(bdf):>12.2e}")
    compare_lu(args)


def _max_rel(a, b, floor):
    sel = np.abs(b) > floor
    return float(np.max(np.abs(a[sel] - b[sel]) / np.abs(b[sel]))) if np.any(sel) else 0.0


def compare_lu(args):
    """Sparse (default) vs dense LU, interleaved in this process, CPU time, 1 thread."""
    sparse, dense = compile_mechanism(None, lu="sparse"), compile_mechanism(None, lu="dense")
    tend = args.dt / 60.0
    y0, kc = make_cells(sparse, args.cells)
    numba.set_num_threads(1)
    print(f"\nsparse vs dense LU, 1 thread, CPU time, best of {args.repeat} interleaved runs")
    print(f"{'solver':<10}{'sparse c/s':>12}{'dense c/s':>12}{'ratio':>8}{'max rel dy':>12}"
          f"{'max rel dr':>12}")
    for solver in ("ros2", "ros3", "rodas3"):
        for cm in (sparse, dense):                             # compile / load outside the timing
            cm.integrate(y0[:2].copy(), kc[:2], 1.0, solver=solver)
        best = {"sparse": np.inf, "dense": np.inf}
        out = {}
        for _ in range(args.repeat):
            for name, cm in (("sparse", sparse), ("dense", dense)):
                y = y0.copy()
                t = time.process_time()
                res = cm.integrate(y, kc, tend, solver=solver, rtol=1e-3)
                best[name] = min(best[name], time.process_time() - t)
                out[name] = (y, res.integrated_rates)
        (ys, rs), (yd, rd) = out["sparse"], out["dense"]
        print(f"{solver:<10}{args.cells / best['sparse']:>12.0f}{args.cells / best['dense']:>12.0f}"
              f"{best['dense'] / best['sparse']:>8.2f}{_max_rel(ys, yd, 1e-9):>12.2e}"
              f"{_max_rel(rs, rd, 1e-12):>12.2e}")


if __name__ == "__main__":
    main()
