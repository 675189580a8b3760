"""Strong scaling of the forecast under MPI: time per simulated hour for 1..N ranks.

For each case (the sample case's d01, and a 150 x 150 x 20 domain at 3 km) the script writes a
one-domain config and its met (data_sample/make_sample_met.py), then launches
``mpiexec -n N python benchmarks/scaling.py --worker ...`` for every N. Each worker runs one
warm-up hour (numba compilation), then times ``--hours`` hours and reports wall time, the share
spent in the layout transposes (the model's only communication besides reductions), and the
throughput in cell-steps per second (cells x species x sync steps / s). Printed against the
single-node ceiling given in issue 7 (4.4 G cell-steps/s for a plain donor-cell step on the 16
cores of the device machine, 115 GB/s triad).

    python benchmarks/scaling.py --ranks 1 2 [--hours 1] [--tags]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
CEILING = 4.4e9


def _case_config(tmp: Path, name: str, nx: int, ny: int, nz: int, hours: int, tags: bool):
    from aqforecast.config import read_yaml

    data = read_yaml(REPO / "config" / "config.yaml")
    data["base_dir"] = str(REPO)
    data["vertical"] = {"nz": nz, "p_top_pa": 10000.0, "first_layer_m": 30.0}
    data["domains"] = [{"name": "d01", "dx_m": 3000.0, "nx": nx, "ny": ny, "centre_lon": 120.75,
                        "centre_lat": 30.3}]
    data["time"]["start"] = data["time"]["start"].isoformat()
    data["time"]["lead_hours"] = hours + 1
    data["time"]["windows"] = [{"until_hours": hours + 1, "every_hours": 1}]
    met = tmp / f"met_{name}"
    data["inputs"]["met"]["paths"] = {"d01": str(met / "wrfout_d01_*")}
    data["tags"]["enabled"] = tags
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if not met.exists():
        subprocess.run([sys.executable, str(REPO / "data_sample" / "make_sample_met.py"),
                        "--config", str(path), "--out", str(met), "--hours", str(hours + 2)],
                       check=True)
    return path


def worker(config: str, hours: int, tags: bool) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    from aqforecast.config import load_config
    from aqforecast.forecast import build_models
    from aqforecast.parallel import get_comm
    from aqforecast.transport.simulation import Simulation

    comm = get_comm()
    cfg = load_config(config)
    models = build_models(cfg, comm, tags=tags)
    m = models[0]
    m.cold_start()
    Simulation(models, m.time + np.timedelta64(1, "h"), cfg.time.sync_step_s).run()
    m.layout.comm_seconds = 0.0
    comm.barrier()
    t0 = time.perf_counter()
    Simulation(models, m.time + np.timedelta64(hours, "h"), cfg.time.sync_step_s).run()
    comm.barrier()
    wall = time.perf_counter() - t0
    comm_s = comm.allreduce_max(m.layout.comm_seconds)
    if comm.rank == 0:
        nz, ny, nx = m.shape
        steps = hours * 3600 / cfg.time.sync_step_s
        rows = m.nspec + (m.tagc.shape[0] if m.ntag else 0)
        print(json.dumps({"wall": wall, "comm": comm_s, "cells": nz * ny * nx, "rows": rows,
                          "steps": steps, "hours": hours}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--hours", type=int, default=1)
    ap.add_argument("--tags", action="store_true")
    ap.add_argument("--worker", default=None)
    ap.add_argument("--cases", nargs="+", default=["sample", "150x150x20"])
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.hours, args.tags)
        return
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    sizes = {"sample": (54, 48, 15), "150x150x20": (150, 150, 20)}
    tmp = Path(os.environ.get("AQF_BENCH_DIR", tempfile.mkdtemp()))
    print(f"{'case':>12} {'ranks':>5} {'s/sim-hour':>10} {'speed-up':>8} {'effic.':>7} "
          f"{'comm %':>7} {'Gcell-steps/s':>13} {'of ceiling':>10}")
    for case in args.cases:
        nx, ny, nz = sizes[case]
        cfg = _case_config(tmp, case.replace("x", "_"), nx, ny, nz, args.hours, args.tags)
        base = None
        for n in args.ranks:
            env = dict(os.environ, NUMBA_NUM_THREADS="1")
            cmd = ([mpiexec, "-n", str(n)] if n > 1 else []) + [
                sys.executable, __file__, "--worker", str(cfg), "--hours", str(args.hours)] + (
                ["--tags"] if args.tags else [])
            res = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if res.returncode != 0:
                print(f"{case:>12} {n:>5} failed: {res.stderr[-400:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            per_hour = r["wall"] / r["hours"]
            base = base or per_hour
            speed = base / per_hour
            rate = r["cells"] * r["rows"] * r["steps"] / r["wall"] / 1e9
            print(f"{case:>12} {n:>5} {per_hour:>10.2f} {speed:>8.2f} {speed / n:>7.0%} "
                  f"{100 * r['comm'] / r['wall']:>6.1f}% {rate:>13.4f} {rate * 1e9 / CEILING:>10.2%}")


if __name__ == "__main__":
    main()
