"""The December 2016 Beijing red alert scored as a scenario, before and after the inversion.

    .venv/bin/python workflow/scripts/hindcast_redalert.py [--out results/hindcast_beijing/redalert]
        [--posterior results/hindcast_beijing/inversion/2016-12-03T16/inversion/scaling.csv]

The red alert was in force from 20:00 Beijing time on 16 December 2016 (12 UTC) to the end of
21 December; ``config/hindcast_beijing/scenarios/red-alert-2016-12.yaml`` holds its measures as
published (and the assumptions that turn them into cuts). Steps, each an ``aqforecast``
command, in ``--out``::

    config.yaml          the hindcast config with time.start 2016-12-15T12 and met from met/
    met/                 station-analysed met, 2016-12-15T12 + 98 h (met-from-stations)
    spinup/              24 h from 2016-12-15T12 (base inventory, no tags)
    base/                72 h from 2016-12-16T12, tags on, warm start from the spin-up: the
                         "no measures" forecast (the model knows nothing of the alert)
    scenario/            aqforecast scenario --method tags [--posterior SCALING]:
                         scores.csv (before), posterior/ (after), pre_post.csv
    obs/obs.nc           what the stations saw over the 72 h (the measures were in force)
    redalert.csv         per station (withheld and assimilated) x local day: observed PM2.5
                         24-h mean, base, scenario, change, before and after the inversion

"After the inversion" uses the inversion's last posterior of the 3-cycle hindcast (2016-12-03):
the only inversion output there is, two weeks before the alert; say so when quoting it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
CASE = REPO / "config" / "hindcast_beijing"
SCENARIO = CASE / "scenarios" / "red-alert-2016-12.yaml"
STATIONS = REPO / "tests" / "data" / "shared" / "obs_beijing_prsa"
WINTER = STATIONS / "PRSA_12sites_2016-12-01_2017-02-28_hourly.csv"
URBAN = ["116.40,39.92,14.0", "116.66,39.91,4.0", "116.65,40.13,4.0", "116.23,40.22,4.0",
         "116.34,39.73,4.0", "116.14,39.74,3.0"]   # as hindcast_beijing_data.URBAN
SPIN, START = "2016-12-15T12", "2016-12-16T12"


def _run(exe: str, args: list[str], done: Path, log: Path, timings: list) -> None:
    if (done / "_SUCCESS").exists():
        print(f"{args[0]:<20} done already ({done})")
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run([exe, *args], stdout=fh, stderr=subprocess.STDOUT, cwd=REPO,
                            check=False).returncode
    dt = time.perf_counter() - t0
    timings.append({"step": f"{args[0]} {done.name}", "seconds": round(dt, 1), "rc": rc})
    print(f"{args[0]:<20} {dt:7.1f} s  {done}")
    if rc != 0:
        raise SystemExit(f"{args[0]} failed (exit {rc}); see {log}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "results" / "hindcast_beijing" /
                    "redalert")
    ap.add_argument("--posterior", type=Path, default=REPO / "results" / "hindcast_beijing" /
                    "inversion" / "2016-12-03T16" / "inversion" / "scaling.csv")
    a = ap.parse_args(argv)
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    exe = str(Path(sys.executable).with_name("aqforecast"))
    # edited as text: a YAML round trip would turn the species NO into False
    text = (CASE / "config.yaml").read_text()
    for old, new in (("base_dir: ../..", f"base_dir: {REPO}"),
                     ("start: 2016-11-30T16:00:00Z", f"start: {SPIN}:00:00Z"),
                     ("d01: config/hindcast_beijing/data/met/wrfout_d01_*",
                      f"d01: {out / 'met' / 'wrfout_d01_*'}")):
        if old not in text:
            raise SystemExit(f"{CASE / 'config.yaml'}: expected {old!r} to edit")
        text = text.replace(old, new)
    cfgp = out / "config.yaml"
    cfgp.write_text(text)
    cfg = {"verification": {"withheld_stations": yaml.safe_load(
        text.split("withheld_stations:")[1].splitlines()[0])}}
    c, t = str(cfgp), []
    met = out / "met"
    if not any(met.glob("wrfout_d01_*")):
        args = ["met-from-stations", c, "--stations", str(WINTER), "--out", str(met),
                "--start", SPIN, "--hours", "98"]
        for u in URBAN:
            args += ["--urban", u]
        _run(exe, args, met, out / "logs" / "met.log", t)
    _run(exe, ["forecast", c, "--start", SPIN, "--lead-hours", "24", "--out",
               str(out / "spinup"), "--overwrite", "--no-progress", "--no-tags"],
         out / "spinup", out / "logs" / "spinup.log", t)
    _run(exe, ["forecast", c, "--start", START, "--lead-hours", "72", "--out",
               str(out / "base"), "--overwrite", "--no-progress", "--initial",
               str(out / "spinup" / "restart" / START)], out / "base", out / "logs" / "base.log", t)
    sc = ["scenario", c, "--run", str(out / "base"), "--scenario", str(SCENARIO), "--out",
          str(out / "scenario"), "--method", "tags"]
    if a.posterior.is_file():
        sc += ["--posterior", str(a.posterior)]
    _run(exe, sc, out / "scenario", out / "logs" / "scenario.log", t)
    _run(exe, ["observations", c, "--cycle", "2016-12-19T12", "--window-hours", "72", "--out",
               str(out / "obs")], out / "obs", out / "logs" / "obs.log", t)
    _run(exe, ["verify", c, "--run", str(out / "base"), "--obs", str(out / "obs" / "obs.nc"),
               "--out", str(out / "verification")], out / "verification",
         out / "logs" / "verify.log", t)
    rows, old = pd.DataFrame(t), out / "timings.csv"
    if old.exists():   # a resumed run: keep the steps timed before
        rows = pd.concat([pd.read_csv(old), rows], ignore_index=True)
    rows.to_csv(old, index=False)
    table = summarise(out, cfg)
    table.to_csv(out / "redalert.csv", index=False, float_format="%.4g")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    return 0


def summarise(out: Path, cfg: dict) -> pd.DataFrame:
    """Per station x local day: observed PM2.5 24-h mean (all hours observed) against the
    scenario's station rows (base, scenario, change), before and after the inversion."""
    paired = pd.read_csv(out / "verification" / "paired.csv", parse_dates=["time"])
    pm = paired[paired["pollutant"] == "PM2.5"].copy()
    pm["date"] = pm["time"].dt.date.astype(str)
    obs = pm.groupby(["station", "date"]).agg(obs=("obs", "mean"), hours=("obs", "size"))\
        .reset_index()
    pp = out / "scenario" / "pre_post.csv"
    sc = pd.read_csv(pp if pp.is_file() else out / "scenario" / "scores.csv")
    sc = sc[(sc["kind"] == "station") & (sc["pollutant"] == "PM2.5")
            & (sc["statistic"] == "daily_mean")].copy()
    sc["date"] = sc["date"].astype(str)
    keep = [k for k in ("station", "lead_day", "date", "complete", "base", "scenario", "change",
                        "base_before", "scenario_before", "change_before", "base_after",
                        "scenario_after", "change_after") if k in sc]
    t = sc[keep].merge(obs, on=["station", "date"], how="left")
    withheld = set(cfg.get("verification", {}).get("withheld_stations", []))
    t.insert(1, "withheld", t["station"].isin(withheld))
    return t.sort_values(["withheld", "station", "lead_day"], ascending=[False, True, True])


if __name__ == "__main__":
    sys.exit(main())
