"""Transport-kernel throughput against memory bandwidth, plain NumPy and PyMPDATA.

Prints one table per grid shape and thread count: million cell-updates per second (Mcell/s,
one cell-update = one species in one cell advanced by one step or sweep) for each kernel and its
plain-NumPy version, the STREAM-like triad bandwidth measured in the same run, and the fraction of
that bandwidth each kernel reaches, counting the state bytes each cell-update must move at least
once (tracer read + write, air mass, fluxes or coefficients). Then PyMPDATA (upwind, MPDATA,
MPDATA-FCT) 3-D throughput, the rotating-cone error of every scheme, and compile times (first call
with an empty numba cache, then from the cache).

    python benchmarks/transport.py --small          # quick (10, 100, 100)
    python benchmarks/transport.py                  # (20, 300, 300) and (30, 600, 600)
    python benchmarks/transport.py --shapes 20x300x300 --no-pympdata
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
from numba import njit, prange

from aqforecast.kernels import advection as kadv
from aqforecast.kernels import diffusion as kdiff
from aqforecast.kernels import tagging as ktag
from aqforecast.transport import Advection, advect

HALO = 2


@njit(parallel=True, cache=True)
def _triad(a, b, c, s):
    for i in prange(a.shape[0]):
        a[i] = b[i] + s * c[i]


def best_time(fn, repeat=5, min_time=0.3):
    """Best wall time of fn() over `repeat` batches (each batch >= min_time s / repeat)."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(min_time / repeat / one))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def triad_bandwidth(ncell):
    n = max(ncell, 20_000_000)
    a, b, c = np.zeros(n), np.ones(n), np.ones(n)
    t = best_time(lambda: _triad(a, b, c, 3.0))
    return 3 * 8 * n / t / 1e9  # GB/s (read b, c; write a)


# -- plain NumPy versions ------------------------------------------------------------------------
def upwind_numpy(q, h, mass, fx, fy, fz):
    nz, ny, nx = mass.shape
    c = q[:, h:h + nz, h:h + ny, h:h + nx]
    kk, jj, ii = slice(h, h + nz), slice(h, h + ny), slice(h, h + nx)
    Fx = np.where(fx >= 0, fx * q[:, kk, jj, h - 1:h + nx], fx * q[:, kk, jj, h:h + nx + 1])
    Fy = np.where(fy >= 0, fy * q[:, kk, h - 1:h + ny, ii], fy * q[:, kk, h:h + ny + 1, ii])
    Fz = np.where(fz >= 0, fz * q[:, h - 1:h + nz, jj, ii], fz * q[:, h:h + nz + 1, jj, ii])
    m1 = mass - np.diff(fx, axis=2) - np.diff(fy, axis=1) - np.diff(fz, axis=0)
    return (c * mass - np.diff(Fx, axis=3) - np.diff(Fy, axis=2) - np.diff(Fz, axis=1)) / m1, m1


def walcek_x_numpy(q, h, mass, fx):
    """Walcek x-sweep, vectorised across all lines; sequential passes loop over x."""
    nspec, nz, ny, nx = q.shape[0], *mass.shape
    a = q[:, h:h + nz, h:h + ny, :].reshape(nspec, nz * ny, nx + 2 * h)
    phi = np.broadcast_to(fx.reshape(1, nz * ny, nx + 1), (nspec, nz * ny, nx + 1))
    m0 = mass.reshape(1, nz * ny, nx)
    m1 = m0 - phi[..., 1:] + phi[..., :-1]
    mid, lft, rgt = a[..., 1:-1], a[..., :-2], a[..., 2:]
    ext = np.zeros(a.shape, bool)
    ext[..., 1:-1] = (mid >= np.maximum(lft, rgt)) | (mid <= np.minimum(lft, rgt))
    p = np.arange(nx + 1) - 1 + h
    pos = phi > 0
    mu = np.where(pos, m0[..., np.clip(np.arange(nx + 1) - 1, 0, nx - 1)],
                  m0[..., np.clip(np.arange(nx + 1), 0, nx - 1)])
    cr = np.abs(phi) / mu
    qc = np.where(pos, a[..., p], a[..., p + 1])
    qd = np.where(pos, a[..., p + 1], a[..., p])
    qu = np.where(pos, a[..., p - 1], a[..., np.minimum(p + 2, nx + 2 * h - 1)])
    ed = np.where(pos, ext[..., p + 1], ext[..., p])
    eu = np.where(pos, ext[..., p - 1], ext[..., np.minimum(p + 2, nx + 2 * h - 1)])
    alpha = np.where(eu, 1.2578 + 0.58502 * cr, np.where(ed, 1.7763 - 0.5 * cr, 1.0))
    small = cr < 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(small, np.minimum(alpha, 0.98 * 6 / (1 - 2 * cr)), alpha)
        ic = 1 / cr
        qf = np.where(small,
                      qc * (1 + alpha * (2 * cr - 1) / 6) + qd * alpha * (4 - 5 * cr) / 12
                      + qu * alpha * (cr - 2) / 12,
                      qc * (1 - alpha * (ic + 2 * cr - 3) / 6) + qd * alpha * (ic - cr) / 12
                      + qu * alpha * (ic + 5 * cr - 6) / 12)
    qf = np.clip(qf, np.minimum(qc, qd), np.maximum(qc, qd))
    flux = np.where(phi == 0, 0.0, phi * qf)
    for i in range(nx):  # positive-flow pass (the benchmark flow is positive)
        sel = (phi[..., i + 1] > 0) & (phi[..., i] >= 0)
        q0 = a[..., i + h]
        qup = np.where(phi[..., i] > 0, a[..., i + h - 1], q0)
        qs = (q0 * m0[..., i] + flux[..., i] - flux[..., i + 1]) / m1[..., i]
        qn = np.clip(qs, np.minimum(q0, qup), np.maximum(q0, qup))
        adjusted = flux[..., i] + q0 * m0[..., i] - qn * m1[..., i]
        flux[..., i + 1] = np.where(sel & (qn != qs), adjusted, flux[..., i + 1])
    return (a[..., h:h + nx] * m0 + flux[..., :-1] - flux[..., 1:]) / m1


def diffusion_numpy(q, rho_dz, cond, dep, dt):
    """Backward-Euler columns, Thomas algorithm vectorised over columns (loop over levels)."""
    nspec, nz = q.shape[0], rho_dz.shape[0]
    inv = dt / rho_dz
    a = np.zeros_like(rho_dz)
    c = np.zeros_like(rho_dz)
    a[1:] = -inv[1:] * cond[1:nz]
    c[:-1] = -inv[:-1] * cond[1:nz]
    out = np.empty_like(q)
    for s in range(nspec):
        b = 1 - a - c
        b[0] += dt * dep[s] / rho_dz[0]
        d = q[s].copy()
        cp = np.empty_like(d)
        beta = b[0].copy()
        d[0] /= beta
        for k in range(1, nz):
            cp[k] = c[k - 1] / beta
            beta = b[k] - a[k] * cp[k]
            d[k] = (d[k] - a[k] * d[k - 1]) / beta
        for k in range(nz - 2, -1, -1):
            d[k] -= cp[k + 1] * d[k + 1]
        out[s] = d
    return out


# -- PyMPDATA ------------------------------------------------------------------------------------
def pympdata_solver(psi, courant, n_iters, fct, n_threads):
    from PyMPDATA import Options, ScalarField, Solver, Stepper, VectorField
    from PyMPDATA.boundary_conditions import Periodic

    opts = Options(n_iters=n_iters, nonoscillatory=fct)
    bcs = tuple(Periodic() for _ in psi.shape)
    stepper = Stepper(options=opts, grid=psi.shape, n_threads=n_threads)
    adv = ScalarField(psi, halo=opts.n_halo, boundary_conditions=bcs)
    vec = VectorField(courant, halo=opts.n_halo, boundary_conditions=bcs)
    return Solver(stepper=stepper, advectee=adv, advector=vec)


PYMPDATA_SCHEMES = (("upwind", 1, False), ("MPDATA", 2, False), ("MPDATA-FCT", 2, True))


def rotating_cone():
    n, dt, omega = 101, 0.1, 0.1
    idx = np.arange(n, dtype=np.float64)
    x, y = np.meshgrid(idx, idx, indexing="xy")
    psi0 = 1.0 + np.maximum(0.0, 4.0 - np.sqrt(((x - 50) ** 2 + (y - 75) ** 2) / (15 / 4) ** 2))
    cx = np.broadcast_to((omega * (idx - 50) * dt)[:, None], (n, n + 1)).copy()
    cy = np.broadcast_to((-omega * (idx - 50) * dt)[None, :], (n + 1, n)).copy()
    return psi0, cx, cy


def cone_errors(run_pympdata, nt=628 * 6):
    psi0, cx, cy = rotating_cone()
    norm = nt * 0.1
    rows = []
    for scheme in ("walcek", "donor_cell", "donor_cell_unsplit"):
        t0 = time.perf_counter()
        out = advect(psi0[None], (cx[None], cy[None], np.zeros((2,) + psi0.shape)), nt,
                     scheme=scheme)[0]
        rows.append((f"aqforecast {scheme}", out.min(), out.max(),
                     math.sqrt(np.mean((out - psi0) ** 2)) / norm, time.perf_counter() - t0))
    if run_pympdata:
        for name, iters, fct in PYMPDATA_SCHEMES:
            t0 = time.perf_counter()
            # PyMPDATA orders the components by array axis: (y, x) here
            sol = pympdata_solver(psi0.copy(), (cy, cx), iters, fct, numba.get_num_threads())
            sol.advance(n_steps=nt)
            out = sol.advectee.get()
            rows.append((f"PyMPDATA {name}", out.min(), out.max(),
                         math.sqrt(np.mean((out - psi0) ** 2)) / norm, time.perf_counter() - t0))
    return rows


# -- compute floor of the Walcek sweep -----------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _tile_in_cache(a, h, n, geo, work, out, reps):
    for _ in range(reps):
        kadv.walcek_tile(a, h, n, kadv.TILE, geo, work, out)


@njit(cache=True, error_model="numpy")
def _face_values(am2, am, a0, a1, a2, a3, ph, mp, mn, out, reps):
    """Walcek face flux of contiguous faces (flags, candidates, face value): no clipping."""
    for _ in range(reps):
        for i in range(out.shape[0]):
            x = ph[i]
            pos = x > 0.0
            em = ((am[i] >= am2[i]) & (am[i] >= a0[i])) | ((am[i] <= am2[i]) & (am[i] <= a0[i]))
            e0 = ((a0[i] >= am[i]) & (a0[i] >= a1[i])) | ((a0[i] <= am[i]) & (a0[i] <= a1[i]))
            e1 = ((a1[i] >= a0[i]) & (a1[i] >= a2[i])) | ((a1[i] <= a0[i]) & (a1[i] <= a2[i]))
            e2 = ((a2[i] >= a1[i]) & (a2[i] >= a3[i])) | ((a2[i] <= a1[i]) & (a2[i] <= a3[i]))
            qc = a0[i] if pos else a1[i]
            qd = a1[i] if pos else a0[i]
            qu = am[i] if pos else a2[i]
            mu = mp[i] if pos else mn[i]
            qf = kadv._walcek_face_value(qc, qd, qu, e1 if pos else e0, em if pos else e2,
                                         abs(x) / mu)
            out[i] = x * qf


def walcek_floor(n=300, reps=100):
    """ns per cell of the Walcek arithmetic with its data in cache, one thread.

    Returns (tile, face): ``walcek_tile`` (all of a sweep's arithmetic: face values, both clipping
    passes, update) on one L2-resident tile of TILE lines of n cells, called repeatedly; and the
    face flux alone (no clipping) over 4096 contiguous L1-resident faces, vectorised.
    """
    rng = np.random.default_rng(1)
    row, tile, h = kadv.ROW, kadv.TILE, HALO
    a = rng.uniform(0.5, 1.5, (n + 2 * h) * row)
    geo = np.zeros((3 * n + 1) * row)
    g = geo.reshape(3 * n + 1, row)
    g[0:2 * n + 1:2, :tile] = rng.uniform(-0.4, 0.4, (n + 1, tile))  # face air-mass fluxes
    g[1:2 * n:2, :tile] = rng.uniform(1.0, 1.1, (n, tile))  # masses before the sweep
    g[2 * n + 1:, :tile] = 1.0 / (g[1:2 * n:2, :tile] - g[2:2 * n + 1:2, :tile]
                                  + g[0:2 * n - 1:2, :tile])
    work, out = np.empty((n + 1) * row), np.empty(n * row)
    t_tile = best_time(lambda: _tile_in_cache(a, h, n, geo, work, out, reps)) / (reps * n * tile)
    m = 4096
    arrs = [rng.uniform(0.5, 1.5, m) for _ in range(6)]
    ph, mp, mn, o = rng.uniform(-0.4, 0.4, m), rng.uniform(1, 1.1, m), rng.uniform(1, 1.1, m), \
        np.empty(m)
    t_face = best_time(lambda: _face_values(*arrs, ph, mp, mn, o, reps * 10)) / (reps * 10 * m)
    return t_tile * 1e9, t_face * 1e9


def print_floor(fct_rate):
    """The bounds the in-cache arithmetic puts on a split Walcek step, per thread; fct_rate:
    PyMPDATA MPDATA-FCT Mcell/s on 1 thread measured in this run (None: not run)."""
    numba.set_num_threads(1)
    bandwidth = triad_bandwidth(0)
    tile, face = walcek_floor()
    need = 40 / (0.7 * bandwidth)  # ns per cell-sweep for 70 % of the 1-thread triad at 40 B
    print(f"\nWalcek arithmetic with its data in cache, 1 thread: {tile:.2f} ns per cell-sweep "
          f"(walcek_tile: face values, clipping, update), {face:.2f} ns per face (face value "
          f"alone)")
    print(f"  a sweep at 70 % of the 1-thread triad ({bandwidth:.1f} GB/s, 40 B/cell) must take "
          f"<= {need:.2f} ns per cell: arithmetic alone allows "
          f"<= {100 * 40 / tile / bandwidth:.0f} % (face values alone {100 * 40 / face / bandwidth:.0f} %)")
    up = 1e3 / (3 * tile)
    upf = 1e3 / (3 * face)
    line = (f"  a split 3-D step (3 sweeps) can reach at most {up:.0f} Mcell/s per thread "
            f"({upf:.0f} from the face values alone)")
    if fct_rate:
        line += (f" = {up / fct_rate:.1f}x ({upf / fct_rate:.1f}x) PyMPDATA MPDATA-FCT's "
                 f"{fct_rate:.1f} Mcell/s on 1 thread in this run (target 10x)")
    print(line)


# -- compile time --------------------------------------------------------------------------------
_WARM = r"""
import time; t0 = time.perf_counter()
import numpy as np
from aqforecast.transport import Advection, VerticalMixing, WetScavenging, advect
from aqforecast.kernels import deposition as kd
sh = (3, 4, 5)
for scheme in ("walcek", "donor_cell", "donor_cell_unsplit"):
    advect(np.ones(sh), (np.zeros((3, 4, 6)), np.zeros((3, 5, 5)), np.zeros((4, 4, 5))), 1,
           scheme=scheme, boundary="periodic")
vm = VerticalMixing(sh, 2, halo=2); vm.set_met(np.ones(sh), np.ones(sh), np.ones((4, 4, 5)))
vm(np.ones((2, 7, 8, 9)), 1.0, np.zeros((2, 4, 5)), np.zeros((2, 1, 4, 5)))
ws = WetScavenging(sh, np.ones(2), np.ones(2), halo=2)
ws(np.ones((2, 7, 8, 9)), 1.0, np.ones(sh), np.ones(sh))
o = np.empty((2, 4, 5)); one = np.ones((4, 5))
kd.surface_resistance(np.ones((4, 5), np.int64), 1, one, one, np.zeros((4, 5), np.int64),
                      np.ones(2), np.ones(2), np.ones(2), np.zeros(2, np.int64), o)
kd.dry_deposition_velocity_gas(o, one * 10, one * 0.1, one, one, np.ones(2), o.copy())
kd.dry_deposition_velocity_particle(one, one, np.ones(2), o)
kd.holtslag_boville_kz(np.ones((4, 4, 5)), one, one, one, one, one, np.empty((4, 4, 5)))
print(time.perf_counter() - t0)
"""


def compile_times():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        def run():
            res = subprocess.run([sys.executable, "-c", _WARM], env=env, check=True,
                                 capture_output=True, text=True)
            return float(res.stdout.split()[-1])

        return run(), run()


# -- main ----------------------------------------------------------------------------------------
def bench_shape(shape, threads, nspec, run_pympdata, bandwidth):
    numba.set_num_threads(threads)
    nz, ny, nx = shape
    ncell = nz * ny * nx
    rng = np.random.default_rng(0)
    h = HALO
    q = rng.uniform(0.5, 1.5, (nspec, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    out = np.empty_like(q)
    mass = rng.uniform(1.0, 1.1, shape)
    m_out = np.empty_like(mass)
    fx = np.full((nz, ny, nx + 1), 0.3)
    fy = np.full((nz, ny + 1, nx), 0.2)
    fz = np.full((nz + 1, ny, nx), 0.1)
    rows = []

    def add(name, t_numba, t_numpy, nbytes):
        upd = ncell * nspec
        mc = upd / t_numba / 1e6
        frac = nbytes * upd / t_numba / 1e9 / bandwidth
        mnp = upd / t_numpy / 1e6 if t_numpy else float("nan")
        rows.append((name, mc, mnp, nbytes, frac))

    # per cell-update bytes: tracer read+write 16; per-cell fields shared by the species are
    # divided by nspec (mass read+write 16, fluxes 8 per direction, coefficients)
    per = lambda shared: 16 + shared / nspec  # noqa: E731
    t = best_time(lambda: kadv.upwind_step(q, out, h, mass, m_out, fx, fy, fz, 1.0, 0, 0, 0))
    tn = best_time(lambda: upwind_numpy(q, h, mass, fx, fy, fz), repeat=2)
    add("upwind 3-D step", t, tn, per(16 + 24))
    for name, fn, f in (("walcek x-sweep", kadv.walcek_sweep_x, fx),
                        ("walcek y-sweep", kadv.walcek_sweep_y, fy),
                        ("walcek z-sweep", kadv.walcek_sweep_z, fz)):
        m = mass.copy()
        t = best_time(lambda: fn(q, h, m, f, 1e-9, 0))  # tiny scale: the mass stays ~constant
        tn = best_time(lambda: walcek_x_numpy(q, h, mass, fx), repeat=2) if "x-" in name else None
        add(name, t, tn, per(16 + 8))
    # periodic lines (closed = 4; the uniform fluxes have face n == face 0): the flux adjustment
    # wraps around each line
    for name, fn, f in (("walcek x-sweep periodic", kadv.walcek_sweep_x, fx),
                        ("walcek y-sweep periodic", kadv.walcek_sweep_y, fy)):
        m = mass.copy()
        t = best_time(lambda: fn(q, h, m, f, 1e-9, 4))
        add(name, t, None, per(16 + 8))
    # the model's tagged y-sweep (walcek_sweep_tagged on (level, column) line views, every row
    # tagged with 4 tags), periodic
    ntag = 4
    qv = q[:, h:h + nz, :, h:h + nx].transpose(0, 1, 3, 2)
    mv = np.ascontiguousarray(mass.transpose(0, 2, 1))
    fv = np.ascontiguousarray(fy.transpose(0, 2, 1))
    fbase = np.full((nspec, ntag, nz, ny, nx), 1.0 / ntag)
    fr = fbase.transpose(0, 1, 2, 4, 3)
    bl = np.full((nspec, ntag, nz, nx), 1.0 / ntag)
    rows_t = np.arange(nspec, dtype=np.int64)
    t = best_time(lambda: ktag.walcek_sweep_tagged(qv, h, mv, fv, 1e-9, 4, rows_t, fr, bl, bl))
    add("tagged y-sweep periodic", t, None, per(16 + 8) + 16 * ntag)
    op = Advection(shape, scheme="walcek", halo=h)
    m = mass.copy()
    fxs, fys, fzs = fx * 1e-9, fy * 1e-9, fz * 1e-9
    walcek_op = lambda: op(q, m, fxs, fys, fzs)  # noqa: E731
    t = best_time(walcek_op)
    add("walcek 3-D step (op)", t, None, 3 * per(16 + 8))
    rho_dz = rng.uniform(20, 200, shape)
    cond = rng.uniform(0, 2, (nz + 1, ny, nx))
    dep = np.full((nspec, ny, nx), 0.01)
    emis = np.zeros((nspec, 1, ny, nx))
    deposited = np.empty((nspec, ny, nx))
    t = best_time(lambda: kdiff.vertical_diffusion(q, h, rho_dz, cond, dep, emis, 60.0, 1.0,
                                                    deposited))
    qi = np.ascontiguousarray(q[:, h:h + nz, h:h + ny, h:h + nx])
    tn = best_time(lambda: diffusion_numpy(qi, rho_dz, cond, dep, 60.0), repeat=2)
    add("vertical diffusion", t, tn, per(16))
    pym, head, solvers = [], [], {}
    if run_pympdata:
        psi = rng.uniform(0.5, 1.5, shape)
        cour = (np.full((nz + 1, ny, nx), 0.1), np.full((nz, ny + 1, nx), 0.2),
                np.full((nz, ny, nx + 1), 0.3))
        for name, iters, fct in PYMPDATA_SCHEMES:
            t0 = time.perf_counter()
            sol = pympdata_solver(psi.copy(), cour, iters, fct, threads)
            sol.advance(n_steps=1)
            tc = time.perf_counter() - t0
            ts = best_time(lambda: sol.advance(n_steps=1), repeat=3)
            pym.append((name, ncell / ts / 1e6, tc))
            solvers[name] = sol
        # head to head, interleaved call by call so that both see the same machine state (on a
        # shared machine the throughput of runs minutes apart differs by up to 1.6x)
        upw = lambda: kadv.upwind_step(q, out, h, mass, m_out, fx, fy, fz, 1.0, 0, 0, 0)  # noqa
        for ours, fn, theirs in (("upwind 3-D step", upw, "upwind"),
                                 ("walcek 3-D step (op)", walcek_op, "MPDATA-FCT")):
            ta, tb = interleaved(fn, lambda: solvers[theirs].advance(n_steps=1))
            head.append((ours, theirs, ncell / ta / 1e6, ncell / tb / 1e6))
    return rows, pym, head


def interleaved(fa, fb, rounds=7):
    """Best wall times of fa() and fb() over `rounds` alternating calls."""
    fa()
    fb()
    ta = tb = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fa()
        ta = min(ta, time.perf_counter() - t0)
        t0 = time.perf_counter()
        fb()
        tb = min(tb, time.perf_counter() - t0)
    return ta, tb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="one quick (10, 100, 100) case")
    ap.add_argument("--shapes", default=None, help="e.g. 20x300x300,30x600x600")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--nspec", type=int, default=1, help="tracer rows advected together")
    ap.add_argument("--no-pympdata", action="store_true")
    ap.add_argument("--no-cone", action="store_true")
    args = ap.parse_args(argv)
    if args.shapes:
        shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    else:
        shapes = [(10, 100, 100)] if args.small else [(20, 300, 300), (30, 600, 600)]
    threads = [min(int(t), numba.config.NUMBA_NUM_THREADS) for t in args.threads.split(",")]
    run_pym = not args.no_pympdata
    if run_pym:
        try:
            import PyMPDATA  # noqa: F401
        except ImportError:
            print("PyMPDATA not installed: skipping its columns")
            run_pym = False
    print(f"numba {numba.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"nspec = {args.nspec}, float64")
    results = {}
    for shape in shapes:
        for nth in threads:
            numba.set_num_threads(nth)
            bw = triad_bandwidth(int(np.prod(shape)) * 3)
            rows, pym, head = bench_shape(shape, nth, args.nspec, run_pym, bw)
            results[shape, nth] = rows, pym, head
            print(f"\nshape {shape}, {nth} thread(s), triad bandwidth {bw:.1f} GB/s")
            print(f"{'kernel':<24}{'Mcell/s':>10}{'NumPy':>10}{'x NumPy':>9}{'B/cell':>8}"
                  f"{'% BW':>7}")
            for name, mc, mnp, nb, frac in rows:
                ratio = mc / mnp if mnp == mnp else float("nan")
                print(f"{name:<24}{mc:>10.1f}{mnp:>10.1f}{ratio:>9.1f}{nb:>8.0f}"
                      f"{100 * frac:>6.0f}%")
            for name, mc, tc in pym:
                print(f"{'PyMPDATA ' + name:<24}{mc:>10.1f}{'':>10}{'':>9}{'':>8}{'':>7}"
                      f"  (first call {tc:.1f} s)")
            for ours, theirs, a, b in head:
                print(f"head to head (interleaved, best of 7): {ours} {a:.1f} vs PyMPDATA "
                      f"{theirs} {b:.1f} Mcell/s = {a / b:.2f}x")
    fct1 = [r for (shape, nth), (_, pym, _) in results.items() if nth == 1
            for r in pym if r[0] == "MPDATA-FCT"]
    print_floor(min((r[1] for r in fct1), default=None))
    if not args.no_cone:
        print("\nrotating cone, 101 x 101, 6 revolutions (libmpdata++ MPDATA-FCT: "
              "min 1.0, max 3.525, rms 3.6731e-4)")
        print(f"{'scheme':<24}{'min':>10}{'max':>10}{'rms err':>12}{'wall s':>9}")
        for name, lo, hi, rms, wall in cone_errors(run_pym):
            print(f"{name:<24}{lo:>10.4f}{hi:>10.4f}{rms:>12.4e}{wall:>9.2f}")
    first, cached = compile_times()
    print(f"\ncompile (all transport kernels, first call, empty cache): {first:.1f} s; "
          f"from numba's cache: {cached:.1f} s")


if __name__ == "__main__":
    main()
