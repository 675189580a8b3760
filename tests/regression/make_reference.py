"""Regenerate the stored end-to-end regression reference (Oceananigans-style regression data).

The sample case (``config/config.yaml``: both domains, tags on, chemistry on) is run for
:data:`HOURS` hours from its start; the surface and a mid-troposphere level of every species
(ppb / ug m-3) and the surface fields of every tag of the tagged species are stored, per domain,
in ``reference_<domain>.nc`` beside this script (float32, zlib), with the budget terms.

Tolerances (``tolerances.json``) come from the model's own round-off sensitivity, measured here
rather than guessed: the Walcek limiter branches make a relative perturbation of 1e-13 in the
initial state grow to ~1e-4 relative differences within hours. The script runs the case twice
more with the initial state multiplied by (1 + 1e-13 r), r uniform in [-1, 1], and sets each
variable's tolerance to ``SAFETY`` times the largest difference seen (floors below), so the test
separates a change of the model from a change of CPU, compiler or BLAS.

Usage (rerun after an INTENDED change of results, and say why in the commit)::

    python tests/regression/make_reference.py            # writes the files beside this script
    python tests/regression/make_reference.py --check    # compares a fresh run, prints a table
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIG = REPO / "config" / "config.yaml"
HOURS = 6
#: tolerance = SAFETY x the spread of the perturbed runs, at least the floors below
SAFETY = 20.0
#: relative to the variable's maximum |value| (a field's scale): max |diff| / max |ref|
FLOOR_MAX_REL = 1e-5
#: relative difference of the domain mean
FLOOR_MEAN_REL = 1e-6
PERTURBATION = 1e-13


def reference_path(domain: str) -> Path:
    return HERE / f"reference_{domain}.nc"


def case_config(work: Path) -> Path:
    """The sample config with its met (the first HOURS + 1 hours, made by
    ``data_sample/make_sample_met.py``, a few seconds) under ``work``; returns its path."""
    import subprocess

    import yaml

    from aqforecast.config import read_yaml

    work.mkdir(parents=True, exist_ok=True)
    data = read_yaml(CONFIG)
    data["base_dir"] = str(REPO)
    met = work / "met"
    data["inputs"]["met"]["paths"] = {d["name"]: str(met / f"wrfout_{d['name']}_*")
                                      for d in data["domains"]}
    data["time"]["start"] = str(data["time"]["start"])
    path = work / "regression.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if not (met / "done").exists():
        subprocess.run([sys.executable, str(REPO / "data_sample" / "make_sample_met.py"),
                        "--config", str(path), "--out", str(met), "--hours", str(HOURS + 1)],
                       check=True, capture_output=True)
        (met / "done").write_text("ok")
    return path


def run_case(config: Path, perturb_seed: int | None = None) -> dict[str, xr.Dataset]:
    """Run the case of ``config``; return per domain a Dataset of the stored variables."""
    from aqforecast.config import load_config
    from aqforecast.forecast import ForwardModel

    cfg = load_config(config)
    start = np.datetime64(cfg.time.start, "s")
    stop = start + np.timedelta64(HOURS, "h")
    fm = ForwardModel(cfg, end=stop)
    if perturb_seed is not None:
        rng = np.random.default_rng(perturb_seed)
        for m in fm.models:
            q = m.state_arrays()["q"]
            m.set_state(q * (1.0 + PERTURBATION * rng.uniform(-1.0, 1.0, q.shape)))
    fm.run_until(stop)
    out = {}
    for m in fm.models:
        mid = m.shape[0] // 2
        f = fm.fields(m.name, levels=[0, mid])
        t = fm.fields(m.name, levels=[0], tags=True)
        ds = xr.Dataset(attrs={"valid_time": str(stop), "hours": HOURS, "mid_level": mid})
        for name, v in f.items():
            ds[name] = (("lev", "y", "x"), v)
        for name, v in t.items():
            ds[f"tag_{name}"] = (("tag", "y", "x"), v[:, 0])
        ds.coords["tag"] = [f"{r}|{s}" for r, s in m.tag_labels] if m.ntag else []
        budget = m.total_mass()
        ds["total_mass"] = (("species",), budget)
        ds.coords["species"] = m.species
        out[m.name] = ds
    return out


def _stats(ref: np.ndarray, new: np.ndarray) -> tuple[float, float]:
    """(max |diff| / max |ref|, |mean diff| / |mean ref|)."""
    scale = float(np.max(np.abs(ref))) or 1.0
    mean = abs(float(np.mean(ref))) or 1.0
    return (float(np.max(np.abs(new - ref))) / scale,
            abs(float(np.mean(new) - np.mean(ref))) / mean)


def compare(ref: xr.Dataset, new: xr.Dataset) -> dict[str, tuple[float, float]]:
    return {name: _stats(ref[name].values.astype(float), new[name].values.astype(float))
            for name in ref.data_vars}


def write_reference(config: Path) -> None:
    base = run_case(config)
    spread: dict[str, dict[str, list[float]]] = {}
    for seed in (1, 2):
        pert = run_case(config, seed)
        for dom, ds in base.items():
            for name, (mx, mn) in compare(ds, pert[dom]).items():
                s = spread.setdefault(dom, {}).setdefault(name, [0.0, 0.0])
                s[0], s[1] = max(s[0], mx), max(s[1], mn)
    tol = {dom: {name: {"max_rel": max(SAFETY * v[0], FLOOR_MAX_REL),
                        "mean_rel": max(SAFETY * v[1], FLOOR_MEAN_REL),
                        "spread_max_rel": v[0], "spread_mean_rel": v[1]}
                 for name, v in d.items()} for dom, d in spread.items()}
    for dom, ds in base.items():
        enc = {v: {"zlib": True, "complevel": 6, "dtype": "float32"} for v in ds.data_vars
               if v != "total_mass"}
        tmp = reference_path(dom).with_suffix(".nc.tmp")
        ds.to_netcdf(tmp, encoding=enc)
        tmp.replace(reference_path(dom))
    tmp = HERE / "tolerances.json.tmp"
    tmp.write_text(json.dumps({"hours": HOURS, "safety": SAFETY, "perturbation": PERTURBATION,
                               "domains": tol}, indent=1, sort_keys=True))
    tmp.replace(HERE / "tolerances.json")
    worst = max((v["spread_max_rel"], d, n) for d, x in tol.items() for n, v in x.items())
    print(f"reference written; largest perturbed-run spread {worst[0]:.2e} ({worst[1]} "
          f"{worst[2]})")


def check(config: Path) -> list[str]:
    """Compare a fresh run with the stored reference; return the failures (printed table)."""
    tol = json.loads((HERE / "tolerances.json").read_text())["domains"]
    new = run_case(config)
    failures = []
    print(f"{'domain':6} {'variable':16} {'max_rel':>10} {'tol':>10} {'mean_rel':>10} "
          f"{'tol':>10}")
    for dom, ds in new.items():
        with xr.open_dataset(reference_path(dom)) as ref:
            ref = ref.load()
        missing = sorted(set(ref.data_vars) - set(ds.data_vars))
        if missing:
            failures.append(f"{dom}: variables missing from the run: {missing}")
        for name, (mx, mn) in compare(ref, ds).items():
            t = tol[dom][name]
            bad = mx > t["max_rel"] or mn > t["mean_rel"]
            print(f"{dom:6} {name:16} {mx:10.2e} {t['max_rel']:10.2e} {mn:10.2e} "
                  f"{t['mean_rel']:10.2e}{'  FAIL' if bad else ''}")
            if bad:
                failures.append(f"{dom} {name}: max_rel {mx:.2e} (tol {t['max_rel']:.2e}), "
                                f"mean_rel {mn:.2e} (tol {t['mean_rel']:.2e})")
    return failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare a fresh run with the files")
    ap.add_argument("--work", type=Path, default=Path("/tmp/aqforecast-regression"),
                    help="where the config copy and its met go (default %(default)s)")
    args = ap.parse_args(argv)
    config = case_config(args.work)
    if args.check:
        bad = check(config)
        print("\n".join(bad) if bad else "all within tolerance")
        return 1 if bad else 0
    write_reference(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
