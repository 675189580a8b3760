"""Source tags against brute-force runs: zero-out comparison and the cost of tagging.

Runs on the small nested test case (``tests/forecast_case.py``: d01 24 x 21 cells of 3 km, d02
12 x 12 of 1 km, 8 levels, met generated on the fly), chemistry on, default Walcek advection.

``--zero-out``: one tagged run, then one untagged run per selected source (the region x sector
tag with the largest d01 surface SO4, then NH4, then O3 contribution: ``--sources`` of them)
with that source's emissions scaled to 0. Per domain, secondary species and source it prints the tag
contribution and the zero-out difference (base - zeroed), both as domain-mean surface values
(gases ppb, aerosols ug m-3), their ratio, and the correlation of the two surface fields over
cells. PPM25 (primary, no chemistry) is printed for reference: there only the advection
scheme's nonlinearity separates the two (see ``tests/test_tag_bruteforce.py``).

``--cost``: the same case with 0 tags, ~10 tags and ~50 tags (the tag regions are synthetic
west-east strips over the domain written as GeoJSON to a temp dir: N strips + ``outside``, times
5 sectors, + IC + BC), each in a fresh subprocess so the peak RSS is per run; after a warm-up
pass of the same ``--hours`` (numba's first calls, met caches), two more passes from a fresh
cold start are timed and the faster kept, in wall time and in process CPU time (all threads; the
shared test machine's CPU steal makes wall time noisy). Prints s per simulated hour, peak RSS (MiB),
and the cost per tag relative to the untagged run (= one brute-force run).

    python benchmarks/tags.py --zero-out [--hours 6] [--sources 3]
    python benchmarks/tags.py --cost [--hours 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import logging
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

SECONDARY = ("SO4", "NO3", "HNO3", "NH4", "O3")
RANK_BY = ("SO4", "NH4", "O3", "HNO3")


def _case(tmp: Path, hours: int, strips: int | None = None, tags: bool = True) -> Path:
    """The small case (chemistry on); with ``strips`` the tag regions are N lon strips."""
    from aqforecast.config import read_yaml
    from forecast_case import small_config

    path = small_config(tmp, hours=hours, chemistry=True, tags=tags)
    if strips is None:
        return path
    data = read_yaml(path)
    regions = []
    lon0, lon1, lat0, lat1 = 119.6, 121.0, 29.6, 30.8  # covers d01 with room to spare
    edges = np.linspace(lon0, lon1, strips + 1)
    for n in range(strips):
        poly = {"type": "Polygon", "coordinates": [[[edges[n], lat0], [edges[n + 1], lat0],
                                                    [edges[n + 1], lat1], [edges[n], lat1],
                                                    [edges[n], lat0]]]}
        p = tmp / f"strip{n}.geojson"
        p.write_text(json.dumps(poly))
        regions.append({"name": f"strip{n}", "geojson": str(p)})
    data["regions"] = regions
    if hasattr(data["time"]["start"], "isoformat"):
        data["time"]["start"] = data["time"]["start"].isoformat()
    out = tmp / f"strips{strips}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _run(cfg, hours, tags=True, scaling=None):
    from aqforecast.forecast import build_models
    from aqforecast.transport.simulation import Simulation

    models = build_models(cfg, tags=tags)
    for m in models:
        m.cold_start()
        m.scaling = scaling
    Simulation(models, models[0].time + np.timedelta64(hours, "h"), cfg.time.sync_step_s).run()
    return models


def _surface(model, field, name):
    """Surface field (ny, nx) in output units (gases ppb, aerosols ug m-3)."""
    from aqforecast import species as registry

    if registry.get(name).phase == "gas":
        return field[0] * 1e9
    rho = model.layout.local(model.met.state(model.time).rho_dry)[0]
    return field[0] * rho * 1e9


def zero_out(hours: int, nsources: int) -> None:
    from aqforecast.config import load_config
    from aqforecast.emissions.scaling import ScalingTable

    tmp = Path(tempfile.mkdtemp(prefix="tags_zero_out_"))
    cfg = load_config(_case(tmp, hours))
    t0 = time.perf_counter()
    base = _run(cfg, hours)
    t_tag = time.perf_counter() - t0
    d01 = base[0]
    labels = d01.tag_labels
    tags = d01.tag_conc()
    # the largest source tag (surface, d01) of each secondary species, in this order
    sources = [k for k in range(d01.ntag) if labels[k][0] not in ("initial", "boundary")]
    chosen = []
    for sp in RANK_BY:
        if sp in d01.tagged and len(chosen) < nsources:
            total = tags[d01.tagged.index(sp), :, 0].sum(axis=(1, 2))
            best = max((k for k in sources if k not in chosen), key=lambda k: total[k])
            chosen.append(best)
    print(f"small case, chemistry on, Walcek advection, {hours} h from {cfg.time.start}; "
          f"{d01.ntag} tags x {len(d01.tagged)} tagged species; tagged run {t_tag:.0f} s")
    print("sources (largest d01 surface tag of " + ", ".join(RANK_BY[:len(chosen)]) + "): "
          + ", ".join(f"{labels[k][0]}/{labels[k][1]}" for k in chosen))
    rows = []
    for k in chosen:
        region, sector = labels[k]
        sc = ScalingTable({(region, sector, "*"): 0.0})
        zeroed = _run(cfg, hours, tags=False, scaling=sc)
        for mb, mz in zip(base, zeroed):
            for sp in SECONDARY + ("PPM25",):
                if sp not in mb.tagged or not mb.conc()[mb.species.index(sp), 0].any():
                    continue  # (NO3 stays 0 in the July case: the NH4NO3 equilibrium is gas)
                i = mb.species.index(sp)
                tag = _surface(mb, mb.tag_conc()[mb.tagged.index(sp), k], sp)
                diff = _surface(mb, mb.conc()[i], sp) - _surface(mz, mz.conc()[i], sp)
                ratio = tag.mean() / diff.mean() if diff.mean() != 0 else float("nan")
                corr = (np.corrcoef(tag.ravel(), diff.ravel())[0, 1]
                        if tag.std() > 0 and diff.std() > 0 else float("nan"))
                rows.append((mb.name, sp, f"{region}/{sector}", tag.mean(), diff.mean(), ratio,
                             corr))
    print(f"{'domain':>6} {'species':>7} {'source':>22} {'tag':>11} {'zero-out':>11} "
          f"{'tag/zero':>9} {'corr':>7}   (domain-mean surface; gases ppb, aerosols ug m-3)")
    for sp in SECONDARY + ("PPM25",):
        for name, s, src, tg, df, ratio, corr in rows:
            if s == sp:
                print(f"{name:>6} {s:>7} {src:>22} {tg:>11.4g} {df:>11.4g} {ratio:>9.3f} "
                      f"{corr:>7.3f}")


def _cost_one(hours: int, strips: int | None, tags: bool, passes: int = 3) -> dict:
    """One run in this process: returns timings and peak RSS (for ``--cost``)."""
    from aqforecast.config import load_config
    from aqforecast.forecast import build_models
    from aqforecast.transport.simulation import Simulation

    tmp = Path(tempfile.mkdtemp(prefix="tags_cost_"))
    cfg = load_config(_case(tmp, hours, strips=strips, tags=tags))
    walls, cpus = [], []
    for n in range(passes):  # the first pass pays numba's compilation and the met caches
        models = build_models(cfg, tags=tags)
        for m in models:
            m.cold_start()
        t0, c0 = time.perf_counter(), time.process_time()
        Simulation(models, models[0].time + np.timedelta64(hours, "h"),
                   cfg.time.sync_step_s).run()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if n < passes - 1:
            del models
            gc.collect()
    wall, cpu = min(walls[1:]), min(cpus[1:])
    tag_bytes = sum(m.tagc.nbytes for m in models)
    return {"ntag": models[0].ntag, "ntagged": len(models[0].tagged), "wall": wall,
            "cpu_per_hour": cpu / hours,
            "per_hour": wall / hours, "rss_mib": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024.0, "tag_mib": tag_bytes / 2**20}


def cost(hours: int, threads: int = 1) -> None:
    cases = [("0 tags", None, False), ("~10 tags", 1, True), ("~50 tags", 9, True)]
    rows = []
    for label, strips, tags in cases:
        cmd = [sys.executable, __file__, "--cost-one", "--hours", str(hours)]
        if strips is not None:
            cmd += ["--strips", str(strips)]
        if not tags:
            cmd += ["--no-tags"]
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
        rows.append((label, json.loads(res.stdout.strip().splitlines()[-1])))
    base = rows[0][1]["per_hour"]
    base_cpu = rows[0][1]["cpu_per_hour"]
    print(f"small case (d01 24x21 + d02 12x12, 8 levels), chemistry on; 3 passes of {hours} h "
          f"from a cold start per run, one process per run, {threads} numba thread(s); wall and "
          f"CPU (all threads) time "
          f"= the faster of passes 2-3 (the first pays compilation)")
    print(f"{'case':>9} {'ntag':>5} {'tagged sp':>9} {'s/sim-h':>8} {'x untagged':>10} "
          f"{'peak RSS MiB':>12} {'tag arrays MiB':>14} {'per tag':>8} {'CPU s/sim-h':>11} "
          f"{'x':>6} {'per tag':>8}")
    for label, r in rows:
        rel = r["per_hour"] / base
        per_tag = (rel - 1.0) / r["ntag"] if r["ntag"] else float("nan")
        cpu_tag = ((r["cpu_per_hour"] / base_cpu - 1.0) / r["ntag"] if r["ntag"]
                   else float("nan"))
        print(f"{label:>9} {r['ntag']:>5} {r['ntagged']:>9} {r['per_hour']:>8.2f} {rel:>10.2f} "
              f"{r['rss_mib']:>12.0f} {r['tag_mib']:>14.1f} {per_tag:>8.3f} "
              f"{r['cpu_per_hour']:>11.2f} {r['cpu_per_hour'] / base_cpu:>6.2f} "
              f"{cpu_tag:>8.3f}")
    print("per tag = (tagged / untagged - 1) / ntag: the cost of one tag in units of one "
          "brute-force (untagged) run")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zero-out", action="store_true")
    ap.add_argument("--cost", action="store_true")
    ap.add_argument("--cost-one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--strips", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-tags", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--hours", type=int, default=None)
    ap.add_argument("--sources", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="numba threads of each --cost run (1: CPU time without spin-waits)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    warnings.simplefilter("ignore")
    if args.cost_one:
        print(json.dumps(_cost_one(args.hours or 2, args.strips, not args.no_tags)))
        return
    if not (args.zero_out or args.cost):
        ap.error("give --zero-out and/or --cost")
    if args.zero_out:
        zero_out(args.hours or 6, args.sources)
    if args.cost:
        cost(args.hours or 2, args.threads)


if __name__ == "__main__":
    main()
