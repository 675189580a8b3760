"""OSSE of the daily emission inversion: do three cycles of `aqforecast invert` find the truth?

The small case (72 km, 3 km + 1 km nest, met generated on the fly). Truth: several factors
perturbed at once (``TRUTH``). Each day d = 0, 1, 2 (24 h windows):

1. the prior run: a tagged forecast of day d with the prior inventory (the base on day 0, then
   the previous day's posterior `scaling.csv` -- the dynamic inventory);
2. the truth run of day d (the truth scaling table), sampled hourly at a station lattice with
   Gaussian noise of the observation error (its own operator, NO2 / SO2 / PM2.5);
3. `aqforecast invert` with `--prior-scaling` the previous posterior.

Every third station of the lattice is WITHHELD (``verification.withheld_stations`` of the case:
its observations are in the observation file but `invert` drops them), so the next-day gain is
measured where the inversion never looked.

Then day 4 is forecast with the base inventory and with the last posterior, and both are
compared with the truth run at the withheld and at the inverted stations (RMSE of NO2, SO2,
PM2.5 hourly values; the gain 1 - RMSE_posterior / RMSE_base; target >= 15 % for NO2 and PM2.5
at the withheld stations).

The noise is Gaussian with the inversion's own observation error model (instrument and
representativeness error for the grid spacing of the domain that samples the station).

Reported per day and for the observable factors (averaging-kernel diagonal > 0.1 on day 0):
the prior and posterior error of ln(factor) against the truth (RMS over factors), the error
reduction 1 - posterior/prior, the same RMS over the perturbed factors only
(``perturbed_prior`` / ``perturbed_posterior``), and the coverage of the truth by +-2 sigma;
DOFS and chi^2. A factor without sensitivity on a later day counts at its prior.
Targets (issue 20): >= 60 % error reduction after 3 cycles, >= 80 % coverage.

Per factor and day the truth, prior, posterior and sigma go to ``WORK/factors.csv``, the
next-day scores to ``WORK/next_day.csv``, the `invert` stage's own wall time per day to the
table (``invert_s``).

Usage: ``python benchmarks/inversion_osse.py [--days 3] [--work DIR] [--set KEY=VALUE ...]``
(``--set`` overrides ``inversion:`` config keys, e.g. ``--set iterations=1``; ~1.5-3 min per
day).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

TRUTH = {("Hangzhou", "industry", "NOx"): 1.6, ("Hangzhou", "transport", "NOx"): 0.7,
         ("Hangzhou", "residential", "PM25"): 1.5, ("Hangzhou", "power", "SO2"): 0.6,
         ("Shaoxing", "industry", "NOx"): 1.3}


WITHHELD_EVERY = 3  # stations S2, S5, S8, ... never reach the inversion


def _stations(case, step: int = 3):
    """Names, lon, lat of the station lattice of d01."""
    from aqforecast.config import load_config
    from aqforecast.grid import grids_from_config

    g = grids_from_config(load_config(case))["d01"]
    lon2d, lat2d = g.lonlat
    js, is_ = np.meshgrid(np.arange(1, g.ny - 1, step), np.arange(1, g.nx - 1, step))
    lon = lon2d[js.ravel(), is_.ravel()] + 0.002
    lat = lat2d[js.ravel(), is_.ravel()] - 0.002
    return [f"S{k}" for k in range(lon.size)], lon, lat


def write_station_obs(cfg, run, names, lon, lat, start, hours: int, path, rng,
                      noise: bool = True) -> int:
    """Hourly NO2 / SO2 / PM2.5 of ``run`` at the stations (``names``, ``lon``, ``lat``) for
    ``hours`` hours from ``start`` (hour beginning, UTC), by the inversion's own operator, plus
    Gaussian noise of the observation error (the inversion's error model: the grid spacing of
    the domain that samples the station), floored at 0 -> a generic CSV at ``path``; returns
    the number of observations written."""
    from aqforecast.grid import grids_from_config
    from aqforecast.inversion.jacobian import build_observation_system
    from aqforecast.observations.operator import observation_error

    grids = grids_from_config(cfg)
    times = pd.date_range(pd.Timestamp(start), periods=hours, freq="h")
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    frame = pd.DataFrame({"station": np.tile(np.asarray(names), len(times)),
                          "lon": np.tile(lon, len(times)), "lat": np.tile(lat, len(times)),
                          "time": np.repeat(times, lon.size)})
    for q in ("NO2", "SO2", "PM25"):
        frame[q] = 1.0
    sysm = build_observation_system(run, frame, grids, ["NO2", "SO2", "PM25"],
                                    [r.name for r in cfg.regions], list(cfg.tags.sectors),
                                    with_jacobian=False)
    dx = {d: float(np.sqrt(np.mean(grids[d].cell_area)) / 1000.0) for d in grids}
    sig = np.array([observation_error(q, v, dx[d]) for q, v, d in
                    zip(sysm.meta["quantity"], sysm.y_prior, sysm.meta["domain"])])
    value = np.maximum(sysm.y_prior + rng.normal(0.0, sig), 0.0) if noise else sysm.y_prior
    pd.DataFrame({"station": sysm.meta["station"],
                  "time": pd.to_datetime(sysm.meta["time"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "species": sysm.meta["quantity"].replace({"PM25": "PM2.5"}),
                  "value": value, "units": "ug m-3", "lon": sysm.meta["lon"],
                  "lat": sysm.meta["lat"]}).to_csv(path, index=False)
    return len(value)


def _obs(case, run, start, path, rng, step: int = 3, noise: bool = True):
    """:func:`write_station_obs` of 24 hours at a station lattice of d01."""
    from aqforecast.config import load_config

    names, lon, lat = _stations(case, step)
    write_station_obs(load_config(case), run, names, lon, lat, start, 24, path, rng, noise)


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def run(days: int = 3, work: Path | None = None, seed: int = 5, log=print,
        overrides: dict | None = None) -> pd.DataFrame:
    import xarray as xr
    import yaml
    from forecast_case import small_config

    from aqforecast.cli import main
    from aqforecast.config import read_yaml
    from aqforecast.emissions.scaling import read_scaling_table

    work = Path(work or "/tmp/aqforecast-inversion-osse")
    if work.exists():
        shutil.rmtree(work)
    case = small_config(work, hours=24 * (days + 1) + 1, tags=True)
    names, _, _ = _stations(case)
    withheld = [n for k, n in enumerate(names) if k % WITHHELD_EVERY == WITHHELD_EVERY - 1]
    data = read_yaml(case)
    data["time"]["start"] = str(data["time"]["start"])
    data["verification"] = {**(data.get("verification") or {}), "withheld_stations": withheld}
    if overrides:
        data["inversion"] = {**(data.get("inversion") or {}), **overrides}
    case.write_text(yaml.safe_dump(data, sort_keys=False))
    truth_csv = work / "truth.csv"
    truth_csv.write_text("region,sector,pollutant,factor\n" + "".join(
        f"{r},{s},{p},{f}\n" for (r, s, p), f in TRUTH.items()))
    rng = np.random.default_rng(seed)
    prior, rows, observable, per_factor = None, [], None, []
    clock = time.perf_counter()
    for d in range(days):
        start = f"2026-07-{20 + d:02d}T00"
        common = ["--start", start, "--lead-hours", "24", "--no-progress"]
        prun, trun = work / f"prior_{d}", work / f"truth_{d}"
        assert main(["forecast", str(case), *common, "--out", str(prun),
                     *(["--scaling", str(prior)] if prior else [])]) == 0
        assert main(["forecast", str(case), *common, "--out", str(trun), "--no-tags",
                     "--scaling", str(truth_csv)]) == 0
        obs = work / f"obs_{d}.csv"
        _obs(case, trun, start, obs, rng)
        out = work / f"inv_{d}"
        t0 = time.perf_counter()
        assert main(["invert", str(case), "--run", str(prun), "--obs", str(obs), "--out",
                     str(out), *(["--prior-scaling", str(prior)] if prior else [])]) == 0
        invert_s = time.perf_counter() - t0
        post = {(r.region, r.sector, r.pollutant): (r.factor, r.extra["sigma_ln"])
                for r in read_scaling_table(out / "scaling.csv").rows}
        nc = xr.load_dataset(out / "scaling.nc")
        keys = list(zip(nc["region"].values, nc["sector"].values, nc["pollutant"].values))
        ak = np.diag(nc["averaging_kernel"].values)
        if observable is None:
            observable = [k for k, a in zip(keys, ak) if a > 0.1]
        rep = pd.read_csv(out / "inversion_report.csv").set_index("item")["value"]
        used = set(str(rep["stations_used"]).split())
        assert not used & set(withheld), "a withheld station reached the inversion"
        err_prior, err_post, cover = [], [], []
        for k in observable:
            truth = np.log(TRUTH.get(k, 1.0))
            if k not in keys:  # no sensitivity today: not in the state, keeps its prior
                err_prior.append(np.log(post.get(k, (1.0,))[0]) - truth)
                err_post.append(err_prior[-1])
                continue
            j = keys.index(k)
            err_prior.append(float(nc["prior_ln_factor"].values[j]) - truth)
            err_post.append(np.log(post[k][0]) - truth)
            cover.append(abs(np.log(post[k][0]) - truth) <= 2 * post[k][1])
        for j, k in enumerate(keys):
            per_factor.append({"day": d + 1, "region": k[0], "sector": k[1], "pollutant": k[2],
                               "observable": k in observable, "truth": TRUTH.get(k, 1.0),
                               "prior": float(np.exp(nc["prior_ln_factor"].values[j])),
                               "prior_sigma_ln": float(nc["prior_sigma_ln"].values[j]),
                               "posterior": post[k][0], "sigma_ln": post[k][1],
                               "ak": float(ak[j])})
        pert = [observable.index(k) for k in TRUTH if k in observable]
        rows.append({"day": d + 1, "observable": len(observable),
                     "rms_err_prior": float(np.sqrt(np.mean(np.square(err_prior)))),
                     "rms_err_posterior": float(np.sqrt(np.mean(np.square(err_post)))),
                     "perturbed_prior": float(np.sqrt(np.mean(np.square(
                         np.take(err_prior, pert))))),
                     "perturbed_posterior": float(np.sqrt(np.mean(np.square(
                         np.take(err_post, pert))))),
                     "coverage_2sigma": float(np.mean(cover)),
                     "dofs": float(rep["dofs"]), "chi2": float(rep["chi2"]),
                     "invert_s": invert_s})
        prior = out / "scaling.csv"
    pd.DataFrame(per_factor).to_csv(work / "factors.csv", index=False)
    table = pd.DataFrame(rows)
    # error reduction against the base inventory's error (day 1 prior)
    table["reduction_vs_base"] = 1.0 - table["rms_err_posterior"] / table["rms_err_prior"].iloc[0]
    # the next day forecast with the base inventory and with the posterior, against the truth
    start = f"2026-07-{20 + days:02d}T00"
    common = ["--start", start, "--lead-hours", "24", "--no-progress", "--no-tags"]
    runs = {"truth": ["--scaling", str(truth_csv)], "base": [], "posterior": ["--scaling",
                                                                            str(prior)]}
    vals = {}
    for name, extra in runs.items():
        out = work / f"next_{name}"
        assert main(["forecast", str(case), *common, "--out", str(out), *extra]) == 0
        o = work / f"next_{name}.csv"
        _obs(case, out, start, o, np.random.default_rng(0), noise=False)
        vals[name] = pd.read_csv(o)
    scores = []
    for where, sel in (("withheld", True), ("inverted", False)):
        for q in ("NO2", "SO2", "PM2.5"):
            v = {n: f[(f["species"] == q) & (f["station"].isin(withheld) == sel)]
                 for n, f in vals.items()}
            t = v["truth"]["value"].to_numpy()
            rb = _rmse(v["base"]["value"], t)
            rp = _rmse(v["posterior"]["value"], t)
            scores.append({"stations": where, "n_stations": v["truth"]["station"].nunique(),
                           "quantity": q, "mean_truth": float(np.mean(t)),
                           "rmse_prior_inventory": rb, "rmse_posterior": rp,
                           "gain": 1.0 - rp / rb})
    scores = pd.DataFrame(scores)
    scores.to_csv(work / "next_day.csv", index=False)
    with pd.option_context("display.float_format", "{:.3f}".format):
        log("next-day (day %d) forecast RMSE against the truth run, ug m-3:\n%s"
            % (days + 1, scores.to_string(index=False)))
    log(f"inversion OSSE on the small case: {days} day(s), {len(observable)} observable "
        f"factors, {len(withheld)} of {len(names)} stations withheld, wall "
        f"{time.perf_counter() - clock:.0f} s; truth {TRUTH}; overrides {overrides or {}}")
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override an inversion: config key (YAML value)")
    args = ap.parse_args(argv)
    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.set)}
    table = run(args.days, args.work, overrides=overrides)
    with pd.option_context("display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
