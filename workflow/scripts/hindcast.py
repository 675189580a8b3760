"""Daily-cycle hindcast driver: each day assimilate, invert, forecast and verify at the withheld
stations, for four experiments that add one stage at a time, then print the score table.

    .venv/bin/python workflow/scripts/hindcast.py [--config config/hindcast_beijing/config.yaml]
        [--cycles 3] [--lead-hours 72] [--out results/hindcast_beijing] [--jobs 1]
        [--start YYYY-MM-DDTHH]

``--start`` (UTC; default the config's ``time.start``) runs another window of the same case:
the spin-up starts there and the cycles follow daily; the config every step reads is then
``<out>/config.yaml``, the ``--config`` with ``time.start`` set to it (:func:`config_with_start`;
the committed config is not edited). The met and inflow must cover the hours: for the Beijing
case ``hindcast_beijing_data.py --start <same> --met-hours <24 cycles + lead + 2>`` (its own
``--out`` also writes a config pointing at its files, which ``--config`` can take instead).

Why a driver and not the Snakemake DAG: the DAG runs one experiment (every stage on) and
verifies lead day 1 only (yesterday's forecast against today's window); the comparison needs
the same cycles three times and lead days 1-3. Every step is the ``aqforecast`` command the DAG
runs (``observations``, ``assimilate``, ``invert``, ``forecast``, ``verify``), so the files are
the contract files. Layout under ``--out``::

    spinup/forecast/                   24 h from time.start, tags on, base inventory (shared)
    obs/<cycle>/obs.nc                 the day before the cycle (assimilation, inversion)
    obs_verify/<cycle>/obs.nc          the lead hours after the cycle (verification)
    <experiment>/<cycle>/{analysis,inversion,forecast,verification}/
    spinup/verification/               the spin-up run against obs/<first cycle> (bias's history)
    bias/<cycle>/bias_correction/{bias_state.csv,corrected.csv,verification/}
    summary.csv, summary.md, timings.csv

and a small copy for notebook 05 (``--publish``, default ``config/hindcast_beijing/last_run/``,
committed, < 200 kB): summary.csv, daily.csv (the station-days scored), pm25_hourly.csv (hourly
PM2.5 at the withheld stations, observed and every forecast), provenance.json.

Experiments: ``free`` -- warm start from the previous free forecast, base inventory;
``assim`` -- + the OI analysis of the previous assim forecast at the cycle time;
``inversion`` -- + the Kalman-filter inventory (prior run: the previous inversion forecast,
tagged; prior: yesterday's posterior); ``bias`` -- + the Kalman-filter station bias correction
(``aqforecast bias-correct``) of the ``inversion`` forecasts, learning from the verifications
of the earlier inversion forecasts (and, for the first cycle, of the spin-up run against the
day before it: ``spinup/verification/``) at pairs valid before the cycle, carrying its state
``bias/<cycle>/bias_correction/bias_state.csv`` from cycle to cycle; no model run of its own.
``verification.withheld_stations`` never enter ``assimilate``, ``invert`` or ``bias-correct``
(withheld stations get the bias of the nearest assimilated station); the scores are on them
only: NMB, NME, r of 24-h PM2.5 and of O3
MDA8 (the metrics of Emery et al. 2017), the daily AQI-category accuracy (HJ 633 in force
on each date: 2012 for 2016-17), and the hit rate (POD), false-alarm ratio and CSI of polluted
station-days (PM2.5 24-h mean > 75 ug m-3; daily AQI > 100), by lead day.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = ("free", "assim", "inversion", "bias")
LABELS = {"free": "free model", "assim": "+ assimilation", "inversion": "+ inversion",
          "bias": "+ bias correction"}
#: Emery et al. (2017) goal / criteria: |NMB|, NME (%) and r (SCIENCE.md 9.3; r and PM [L])
EMERY = {"PM2.5": {"goal": (10.0, 35.0, 0.70), "criteria": (30.0, 50.0, 0.40)},
         "O3": {"goal": (5.0, 15.0, 0.75), "criteria": (15.0, 25.0, 0.50)}}

#: PM2.5 24-h grade-II limit of GB 3095-2012 (HJ 633-2012: IAQI 100), ug m-3
PM25_LIMIT = 75.0
#: O3 MDA8 grade-II limit, ug m-3 (GB 3095-2012; HJ 633-2012's O3 8-h IAQI 100)
O3_8H_LIMIT = 160.0

log = logging.getLogger("hindcast")


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H")


def parse_start(text: str) -> datetime:
    """``YYYY-MM-DDTHH`` (UTC, as ``aqforecast forecast --start``) as a naive datetime."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected YYYY-MM-DDTHH (UTC)") from None


def config_with_start(src: Path, dest: Path, start: datetime) -> Path:
    """Write ``dest``: the config ``src`` with ``time.start`` set to ``start`` (naive UTC) and
    ``base_dir`` made absolute (so ``dest`` may live under ``--out``). Edited as text: a YAML
    round trip would turn the species ``NO`` into ``False``. Checked by ``load_config``."""
    from aqforecast.config import load_config

    src, dest = Path(src), Path(dest)
    base = load_config(src).base_dir
    text = src.read_text()
    new = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    text, n = re.subn(r"^(time:[ \t]*\n(?:[ \t]*(?:#.*)?\n|[ \t]+(?!start:)\S.*\n)*?"
                      r"[ \t]+start:[ \t]*)\S+", lambda m: m.group(1) + new, text, count=1,
                      flags=re.MULTILINE)
    if n != 1:
        raise SystemExit(f"{src}: no time.start line to edit")
    if re.search(r"^base_dir:", text, flags=re.MULTILINE):
        text = re.sub(r"^(base_dir:[ \t]*)\S.*$", lambda m: m.group(1) + str(base), text,
                      count=1, flags=re.MULTILINE)
    else:
        text = f"base_dir: {base}\n" + text
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    got = load_config(dest).time.start.replace(tzinfo=None)
    if got != start:
        raise SystemExit(f"{dest}: time.start is {got}, expected {start}")
    return dest


class Runner:
    """Runs ``aqforecast`` commands, logs them, records wall times; skips finished steps."""

    def __init__(self, out: Path, exe: str):
        self.out, self.exe, self.rows = out, exe, []

    def __call__(self, step: str, args: list[str], done: Path, logfile: Path) -> None:
        if (done / "_SUCCESS").exists() or (done.is_file() and done.exists()):
            log.info("%-40s done already", step)
            return
        logfile.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with open(logfile, "w") as fh:
            rc = subprocess.run([self.exe, *args], stdout=fh, stderr=subprocess.STDOUT,
                                cwd=REPO, check=False).returncode
        dt = time.perf_counter() - t0
        self.rows.append({"step": step, "seconds": round(dt, 1), "rc": rc})
        log.info("%-40s %7.1f s", step, dt)
        if rc != 0:
            raise SystemExit(f"{step} failed (exit {rc}); see {logfile}")


def run_cycles(cfg_path: Path, cfg, out: Path, cycles: int, lead: int,
               experiments: list[str], exe: str, bias_form: str = "additive") -> Runner:
    t0 = cfg.time.start.replace(tzinfo=None)
    run = Runner(out, exe)
    cfgs = str(cfg_path)
    spin = out / "spinup" / "forecast"
    run("spinup forecast", ["forecast", cfgs, "--start", stamp(t0), "--lead-hours", "24",
                            "--out", str(spin), "--overwrite", "--no-progress"],
        spin, out / "spinup" / "forecast.log")
    names = [stamp(t0 + timedelta(days=c)) for c in range(1, cycles + 1)]
    for c, cyc in enumerate(names, start=1):
        tc = t0 + timedelta(days=c)
        obs = out / "obs" / cyc
        run(f"{cyc} observations", ["observations", cfgs, "--cycle", cyc, "--out", str(obs)],
            obs, obs / "observations.log")
        vobs = out / "obs_verify" / cyc
        run(f"{cyc} observations (verification)",
            ["observations", cfgs, "--cycle", stamp(tc + timedelta(hours=lead)), "--window-hours",
             str(lead), "--out", str(vobs)], vobs, vobs / "observations.log")
        for e in experiments:
            d = out / e / cyc
            if e == "bias":
                _bias_correct(run, cfgs, out, names, c, vobs, bias_form)
                continue
            prev = spin if c == 1 else out / e / names[c - 2] / "forecast"
            fc = ["forecast", cfgs, "--start", cyc, "--lead-hours", str(lead), "--out",
                  str(d / "forecast"), "--overwrite", "--no-progress"]
            if e == "free":
                fc += ["--initial", str(prev / "restart" / cyc)]
            else:
                run(f"{cyc} {e} assimilate",
                    ["assimilate", cfgs, "--background", str(prev), "--obs", str(obs / "obs.nc"),
                     "--out", str(d / "analysis"), "--time", cyc], d / "analysis",
                    d / "logs" / "assimilate.log")
                fc += ["--initial", str(d / "analysis")]
            if e == "inversion":
                inv = ["invert", cfgs, "--run", str(prev), "--obs", str(obs / "obs.nc"),
                       "--out", str(d / "inversion")]
                if c > 1:
                    inv += ["--prior-scaling",
                            str(out / e / names[c - 2] / "inversion" / "scaling.csv")]
                run(f"{cyc} {e} invert", inv, d / "inversion", d / "logs" / "invert.log")
                fc += ["--scaling", str(d / "inversion" / "scaling.csv")]
            if not (e == "inversion" and c < cycles):
                fc.append("--no-tags")   # only the inversion's next prior run needs tags
            run(f"{cyc} {e} forecast", fc, d / "forecast", d / "logs" / "forecast.log")
            run(f"{cyc} {e} verify",
                ["verify", cfgs, "--run", str(d / "forecast"), "--obs", str(vobs / "obs.nc"),
                 "--out", str(d / "verification")], d / "verification",
                d / "logs" / "verify.log")
    return run


def _bias_correct(run: Runner, cfgs: str, out: Path, names: list[str], c: int,
                  vobs: Path, form: str = "additive") -> None:
    """Cycle ``c`` (1-based) of the ``bias`` experiment: correct the inversion forecast."""
    cyc, d = names[c - 1], out / "bias" / names[c - 1]
    spin = out / "spinup"
    if c == 1:
        run("spinup verify", ["verify", cfgs, "--run", str(spin / "forecast"), "--obs",
                              str(out / "obs" / cyc / "obs.nc"), "--out",
                              str(spin / "verification")],
            spin / "verification", spin / "verify.log")
    history = [str(spin / "verification")] + [
        str(out / "inversion" / n / "verification") for n in names[:c - 1]]
    args = ["bias-correct", cfgs, "--run", str(out / "inversion" / cyc / "forecast"),
            "--history", *history, "--obs", str(vobs / "obs.nc"),
            "--out", str(d / "bias_correction"), "--form", form]
    if c > 1:
        args += ["--state", str(out / "bias" / names[c - 2] / "bias_correction" /
                                "bias_state.csv")]
    run(f"{cyc} bias correct", args, d / "bias_correction", d / "logs" / "bias_correct.log")


def _paired_path(out: Path, e: str, cyc: str) -> Path:
    if e == "bias":
        return out / e / cyc / "bias_correction" / "verification" / "paired.csv"
    return out / e / cyc / "verification" / "paired.csv"


def _daily(paired: pd.DataFrame, which: str) -> pd.DataFrame:
    """Daily indicators and AQI per station and local date from the hourly pairs."""
    from aqforecast.products.aqi import daily_aqi

    wide = paired.pivot_table(index=["station", "time"], columns="pollutant", values=which)
    wide = wide.reset_index().set_index("time")
    wide.index = pd.DatetimeIndex(wide.index)
    return daily_aqi(wide, None)


def _stats(m: np.ndarray, o: np.ndarray) -> dict:
    ok = np.isfinite(m) & np.isfinite(o)
    m, o = m[ok], o[ok]
    if len(o) < 2 or o.sum() <= 0:
        return {"n": len(o), "NMB": np.nan, "NME": np.nan, "r": np.nan}
    r = float(np.corrcoef(m, o)[0, 1]) if np.std(m) > 0 and np.std(o) > 0 else np.nan
    return {"n": len(o), "NMB": 100.0 * float((m - o).sum() / o.sum()),
            "NME": 100.0 * float(np.abs(m - o).sum() / o.sum()), "r": r}


def _flag(p: str, s: dict) -> str:
    for level in ("goal", "criteria"):
        nmb, nme, r = EMERY[p][level]
        if abs(s["NMB"]) < nmb and s["NME"] < nme and s["r"] > r:
            return level
    return "-"


def daily_table(out: Path, experiments: list[str], cycles: list[str], withheld: list[str],
                utc_offset_h: float = 8.0) -> pd.DataFrame:
    """Station-days at the withheld stations: the HJ 633 daily indicators, AQI and category of
    the forecast (``_f``) and of the observation (``_o``) per experiment, cycle, station and
    local date, with the lead day (local date - the cycle's local start date + 1)."""
    daily = []
    for e in experiments:
        for cyc in cycles:
            p = _paired_path(out, e, cyc)
            paired = pd.read_csv(p, parse_dates=["time"])
            paired = paired[paired["station"].isin(withheld)]
            if paired.empty:
                continue
            f, o = _daily(paired, "fcst"), _daily(paired, "obs")
            both = f.merge(o, left_index=True, right_index=True,
                           suffixes=("_f", "_o")).reset_index()
            init = (pd.Timestamp(cyc) + pd.Timedelta(hours=utc_offset_h)).normalize()
            both["lead_day"] = (pd.to_datetime(both["date"]) - init).dt.days + 1
            both.insert(0, "cycle", cyc)
            both.insert(0, "experiment", e)
            daily.append(both)
    return pd.concat(daily, ignore_index=True) if daily else pd.DataFrame()


def score_daily(daily: pd.DataFrame) -> pd.DataFrame:
    """The table by experiment x lead day of :func:`daily_table`'s station-days (module
    docstring); polluted days: the hit rate (POD), false-alarm ratio (FAR) and critical
    success index (CSI), in %, of station-days with PM2.5 24-h mean > 75 ug m-3 (the grade-II
    limit of GB 3095-2012, HJ 633-2012's IAQI 100), with O3 MDA8 > 160 ug m-3 (the same for
    O3, the summer's polluted days) and with daily AQI > 100 (category >= 3), forecast against
    observed (NaN where undefined: no event forecast or observed)."""
    from aqforecast.verification.metrics import categorical_scores

    rows = []
    if daily.empty:
        return pd.DataFrame()
    for e in [x for x in EXPERIMENTS if x in set(daily["experiment"])]:
        d = daily[daily["experiment"] == e]
        for lead_day, g in d.groupby("lead_day"):
            row = {"experiment": e, "lead_day": int(lead_day)}
            for p, col in (("PM2.5", "PM2.5_24h"), ("O3", "O3_8h")):
                s = _stats(g[f"{col}_f"].to_numpy(float), g[f"{col}_o"].to_numpy(float))
                row.update({f"{p} n": s["n"], f"{p} NMB %": s["NMB"], f"{p} NME %": s["NME"],
                            f"{p} r": s["r"], f"{p} Emery": _flag(p, s)})
            cat = g[["category_f", "category_o"]].dropna()
            row["AQI days"] = len(cat)
            row["AQI category acc %"] = 100.0 * float((cat["category_f"] == cat["category_o"])
                                                      .mean()) if len(cat) else np.nan
            row["obs AQI>100 days"] = int((g["aqi_o"] > 100).sum())
            for name, col, limit in (("PM2.5>75", "PM2.5_24h", PM25_LIMIT),
                                     ("O3>160", "O3_8h", O3_8H_LIMIT),
                                     ("AQI>100", "aqi", 100.0)):
                ev = categorical_scores(g[f"{col}_f"].to_numpy(float),
                                        g[f"{col}_o"].to_numpy(float), limit)
                row.update({f"{name} obs days": ev["hits"] + ev["misses"],
                            f"{name} hits": ev["hits"], f"{name} false alarms":
                            ev["false_alarms"], f"{name} POD %": 100.0 * ev["pod"],
                            f"{name} FAR %": 100.0 * ev["far"],
                            f"{name} CSI %": 100.0 * ev["csi"]})
            rows.append(row)
    return pd.DataFrame(rows)


def score(out: Path, experiments: list[str], cycles: list[str], withheld: list[str],
          utc_offset_h: float = 8.0) -> pd.DataFrame:
    """:func:`score_daily` of :func:`daily_table`."""
    return score_daily(daily_table(out, experiments, cycles, withheld, utc_offset_h))


def hourly_pm25(out: Path, experiments: list[str], cycles: list[str],
                withheld: list[str]) -> pd.DataFrame:
    """Hourly PM2.5 (ug m-3, naive local hour-beginning) at the withheld stations, wide: station,
    time, obs, then one column ``<experiment> <cycle>`` per forecast (empty outside its 72 h)."""
    parts, obs = [], []
    for e in experiments:
        for cyc in cycles:
            p = pd.read_csv(_paired_path(out, e, cyc), parse_dates=["time"])
            p = p[p["station"].isin(withheld) & (p["pollutant"] == "PM2.5")]
            if p.empty:
                continue
            parts.append(p.set_index(["station", "time"])["fcst"].rename(f"{e} {cyc}"))
            obs.append(p.set_index(["station", "time"])["obs"])
    if not parts:
        return pd.DataFrame()
    o = pd.concat(obs)
    o = o[~o.index.duplicated()].rename("obs")
    return pd.concat([o, *parts], axis=1).sort_index().reset_index()


def _rel(p: Path) -> str:
    """``p`` relative to the repository when inside it."""
    try:
        return str(Path(p).resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def publish(dest: Path, table: pd.DataFrame, daily: pd.DataFrame, hourly: pd.DataFrame,
            info: dict) -> list[Path]:
    """The small committed copy of the result for notebook 05 (``config/hindcast_beijing/
    last_run/``, < 200 kB): summary.csv, daily.csv (station-days), pm25_hourly.csv and
    provenance.json (when, from which commit, with which options)."""
    import json
    import subprocess as sp

    dest.mkdir(parents=True, exist_ok=True)
    table.to_csv(dest / "summary.csv", index=False, float_format="%.4g")
    keep = ["experiment", "cycle", "station", "date", "lead_day", "PM2.5_24h_f", "PM2.5_24h_o",
            "O3_8h_f", "O3_8h_o", "aqi_f", "aqi_o", "category_f", "category_o"]
    daily[[c for c in keep if c in daily]].to_csv(dest / "daily.csv", index=False,
                                                   float_format="%.4g")
    hourly.to_csv(dest / "pm25_hourly.csv", index=False, float_format="%.1f",
                  date_format="%Y-%m-%dT%H:%M")
    try:
        commit = sp.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                        text=True, check=False).stdout.strip() or None
    except OSError:
        commit = None
    timings = REPO / info.get("results", "") / "timings.csv"
    ran = (datetime.fromtimestamp(timings.stat().st_mtime, timezone.utc)
           .strftime("%Y-%m-%dT%H:%M:%SZ") if timings.is_file() else None)
    info = {"scored": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "runs_finished": ran, "commit_when_scored": commit, **info}
    (dest / "provenance.json").write_text(json.dumps(info, indent=1, default=str) + "\n")
    return [dest / n for n in ("summary.csv", "daily.csv", "pm25_hourly.csv",
                               "provenance.json")]


def markdown(table: pd.DataFrame) -> str:
    cols = ["experiment", "lead_day", "PM2.5 NMB %", "PM2.5 NME %", "PM2.5 r", "PM2.5 Emery",
            "O3 NMB %", "O3 NME %", "O3 r", "O3 Emery", "AQI category acc %", "AQI days",
            "PM2.5>75 obs days", "PM2.5>75 POD %", "PM2.5>75 FAR %", "PM2.5>75 CSI %",
            "AQI>100 obs days", "AQI>100 POD %", "AQI>100 FAR %", "AQI>100 CSI %"]
    t = table.copy()
    t["experiment"] = t["experiment"].map(LABELS)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in t[cols].iterrows():
        vals = ["-" if isinstance(v, float) and not np.isfinite(v) else
                f"{v:.2f}" if isinstance(v, float) and c.endswith(" r") else
                f"{v:.0f}" if isinstance(v, float) else str(v) for c, v in r.items()]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "config" / "hindcast_beijing" /
                    "config.yaml")
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--start", type=parse_start, default=None, metavar="YYYY-MM-DDTHH",
                    help="the spin-up's start, UTC (default the config's time.start); the "
                         "cycles follow daily from a day later; writes OUT/config.yaml")
    ap.add_argument("--lead-hours", type=int, default=72)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "hindcast_beijing")
    ap.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                    choices=EXPERIMENTS)
    ap.add_argument("--score-only", action="store_true", help="only recompute the table")
    ap.add_argument("--bias-form", choices=("additive", "multiplicative"), default="additive",
                    help="the bias experiment's `aqforecast bias-correct --form`")
    ap.add_argument("--publish", type=Path, default=REPO / "config" / "hindcast_beijing" /
                    "last_run", help="where the small committed copy of the result goes "
                    "(notebook 05 reads it; default %(default)s)")
    ap.add_argument("--no-publish", dest="publish", action="store_const", const=None,
                    help="do not write the committed copy")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from aqforecast.config import load_config

    a.out.mkdir(parents=True, exist_ok=True)
    if a.start is not None:
        a.config = config_with_start(a.config, a.out / "config.yaml", a.start)
        log.info("config %s: time.start %s", a.config, a.start.isoformat())
    cfg = load_config(a.config)
    withheld = list(cfg.verification.withheld_stations)
    if not withheld:
        raise SystemExit(f"{a.config}: verification.withheld_stations is empty")
    exe = str(Path(sys.executable).with_name("aqforecast"))
    # in the order of EXPERIMENTS; the bias correction post-processes the inversion's runs
    steps = set(a.experiments) | ({"inversion"} if "bias" in a.experiments else set())
    run_experiments = [e for e in EXPERIMENTS if e in steps]
    a.experiments = [e for e in EXPERIMENTS if e in a.experiments]
    t0 = time.perf_counter()
    if not a.score_only:
        runner = run_cycles(a.config, cfg, a.out, a.cycles, a.lead_hours, run_experiments, exe,
                            bias_form=a.bias_form)
        rows = pd.DataFrame(runner.rows)
        old = a.out / "timings.csv"
        if old.exists():   # a resumed run: keep the steps timed before
            rows = pd.concat([pd.read_csv(old), rows], ignore_index=True)
        rows.to_csv(old, index=False)
    start = cfg.time.start.replace(tzinfo=None)
    cycles = [stamp(start + timedelta(days=c)) for c in range(1, a.cycles + 1)]
    daily = daily_table(a.out, a.experiments, cycles, withheld, cfg.time.local_utc_offset_h)
    table = score_daily(daily)
    table.to_csv(a.out / "summary.csv", index=False, float_format="%.4g")
    if a.publish is not None:
        files = publish(a.publish, table, daily,
                        hourly_pm25(a.out, a.experiments, cycles, withheld),
                        {"config": _rel(a.config), "start": stamp(start), "cycles": cycles,
                         "lead_hours": a.lead_hours, "experiments": a.experiments,
                         "withheld": withheld, "results": _rel(a.out),
                         "command": "python workflow/scripts/hindcast.py " +
                         " ".join(sys.argv[1:] if argv is None else argv)})
        log.info("published %s (%.0f kB)", a.publish,
                 sum(f.stat().st_size for f in files) / 1e3)
    md = markdown(table)
    (a.out / "summary.md").write_text(md + "\n")
    print(f"\nscores at the withheld stations {', '.join(withheld)} ({a.cycles} cycles, "
          f"PM2.5 24-h means, O3 MDA8, daily AQI categories by lead day):\n")
    print(md)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
