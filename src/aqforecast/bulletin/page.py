"""The morning bulletin: one self-contained HTML page per cycle, built from the cycle's files.

``aqforecast bulletin --forecast RUN --products DIR --out DIR [--config CONFIG] [--analysis DIR]
[--inversion DIR] [--previous-inversion DIR] [--verification DIR] [--plan DIR]`` writes
``DIR/index.html`` (Jinja2 template ``templates/index.html.j2``) with its images beside it
(``DIR/img/``: the products' maps copied, the charts drawn here): opening the file is enough,
no network, no server, no script; printable to PDF (print CSS). Sections, each naming its files:

- headline (:mod:`.headline`): cycle, inputs (met, inventory, posterior, stations and satellite
  pixels assimilated), warnings (products, QC, inversion);
- city tables (:mod:`.citytable`): one row per city and lead window, banded days 1–3 / 4–7 /
  8–15, AQI in the HJ 633 colours, category, primary pollutant, PM2.5 / O3-8h / NO2, observed
  values where the verification has them; the daily AQI rows and the observed past days;
- maps (the products' ``maps/<domain>/*.png``);
- source apportionment (:mod:`.tagshares`): region × sector charts per city, top three in words;
- the inversion (:mod:`.factors`), the optimal plan (``plan.csv``, ``limits.csv``), the
  verification of yesterday's forecast (:mod:`.skill`), the analysis statistics.

Every number is read from a file or computed from files in these modules (never in the
template); each section says which.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .. import __version__
from ..config.localtime import LocalTime
from ..io import InputFileError, atomic_path
from ..io.rundir import require_success, write_success
from ..products.aqi import STANDARD_LABELS
from .citytable import city_tables, fmt
from .factors import inversion_section
from .headline import headline
from .skill import verification_section
from .tagshares import share_section

__all__ = ["build_bulletin"]

TEMPLATES = Path(__file__).with_name("templates")
MAX_MAPS = 24


def _maps(products: Path, out: Path) -> list[dict]:
    maps = []
    img = out / "img"
    # concentration / AQI maps per lead day and the hot spots first, the share maps after
    found = sorted((products / "maps").rglob("*.png"),
                   key=lambda f: (f.name.startswith("share_"), not f.name.startswith("hotspot"),
                                  f.name, str(f.parent)))
    for f in found[:MAX_MAPS]:
        rel = f.relative_to(products / "maps")
        dst = img / ("map_" + "_".join(rel.parts))
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst)
        maps.append({"src": f"img/{dst.name}", "caption": str(rel)})
    return maps


def _local_time(cfg, head: dict) -> LocalTime:
    if cfg is not None:
        return cfg.time.local_time
    label = head["local_label"]
    if label.startswith("UTC"):
        return LocalTime(float(head["utc_offset_hours"]))
    try:
        return LocalTime(timezone=label)
    except (ValueError, KeyError):
        return LocalTime(float(head["utc_offset_hours"]))


def _plan(plan: Path) -> dict:
    df = pd.read_csv(plan / "plan.csv")
    lim = pd.read_csv(plan / "limits.csv")
    return {"rows": [{"measure": r["measure"], "cut": f"{100 * r['cut']:.0f} %",
                      "tonnes": fmt(r["tonnes_abated"], 0), "cost": fmt(r["cost"], 0)}
                     for _, r in df.iterrows()],
            "summary": f"total cost {fmt(df['cost'].sum(), 0)}; "
                       f"{int(lim['binding'].sum())} of {len(lim)} limits binding"}


def _plan_effects(plan: Path) -> list[dict]:
    """Per limit of ``limits.csv``: the city day, base value, bound and the plan's predicted
    value (and the achieved one of ``verify.csv`` where the plan was verified by a rerun)."""
    lim = pd.read_csv(plan / "limits.csv")
    achieved = {}
    if (plan / "verify.csv").exists():
        v = pd.read_csv(plan / "verify.csv")
        if {"city", "lead_day", "pollutant", "achieved"} <= set(v.columns):
            achieved = {(r["city"], int(r["lead_day"]), r["pollutant"]): r["achieved"]
                        for _, r in v.iterrows()}
    rows = []
    for _, r in lim.iterrows():
        key = (r.get("city"), int(r["lead_day"]) if pd.notna(r.get("lead_day")) else None,
               r.get("pollutant"))
        rows.append({"city": r.get("city", ""), "day": key[1] if key[1] is not None else "",
                     "what": f"{r.get('pollutant', '')} {r.get('statistic', '')}",
                     "base": fmt(r.get("base"), 1), "bound": fmt(r.get("bound"), 1),
                     "predicted": fmt(r.get("predicted"), 1),
                     "achieved": fmt(achieved[key], 1) if key in achieved else "",
                     "binding": "yes" if bool(r.get("binding", False)) else ""})
    return rows


def _scenario_section(scenario_dirs) -> list[dict]:
    """Per ``aqforecast scenario`` output: its measures (tonnes, cost) and the largest city
    daily change of PM2.5, O3 MDA8 and AQI over the complete days, from its own files."""
    out = []
    for d in scenario_dirs:
        d = Path(d)
        scores = pd.read_csv(d / "scores.csv")
        if "kind" in scores:
            scores = scores[scores["kind"] == "city"]
        if "complete" in scores:
            scores = scores[scores["complete"].astype(str).str.lower() == "true"]
        measures = pd.read_csv(d / "measures.csv")
        effects = []
        for pol, stat, label in (("PM2.5", "daily_mean", "PM2.5"), ("O3", "mda8", "O3-8h"),
                                 ("AQI", None, "AQI")):
            sel = scores[scores["pollutant"] == pol]
            if stat is not None:
                sel = sel[sel["statistic"] == stat]
            sel = sel[pd.to_numeric(sel["change"], errors="coerce").notna()]
            if sel.empty:
                continue
            k = sel["change"].astype(float).abs().idxmax()
            r = sel.loc[k]
            effects.append(f"{label} {float(r['change']):+.1f} ({r['city']}, day "
                           f"{int(r['lead_day'])})")
        out.append({"name": d.name,
                    "measures": [{"measure": m["measure"], "factor": fmt(m.get("factor"), 2),
                                  "hours": f"{m.get('from_hour', '')}-{m.get('to_hour', '')}",
                                  "tonnes": fmt(m.get("tonnes_abated"), 1),
                                  "cost": fmt(m.get("cost"), 0)} for _, m in measures.iterrows()],
                    "effects": "; ".join(effects) or "no complete day in the forecast",
                    "source": f"{d / 'scores.csv'}, {d / 'measures.csv'}"})
    return out


def _analysis_rows(analysis: Path) -> list[dict]:
    st = analysis / "statistics.csv"
    if not st.exists():
        return []
    df = pd.read_csv(st)
    return [{"domain": r["domain"], "quantity": r["quantity"], "n_used": int(r["n_used"]),
             "n_rejected": int(r.get("n_rejected", 0)) if pd.notna(r.get("n_rejected", 0))
             else "", "rms_omb": fmt(r["rms_omb"], 2), "rms_oma": fmt(r["rms_oma"], 2),
             "chi2": fmt(r["chi2"], 2)} for _, r in df.iterrows()]


def _check_inputs(forecast: Path, products: Path, analysis, inversion, previous_inversion,
                  verification, plan) -> dict:
    """Everything the page reads is there before anything is written (exit 2 otherwise)."""
    man = require_success(forecast, "forecast")
    require_success(products, "products")
    if not (products / "aqi_daily_city.csv").exists():
        raise InputFileError(f"{products / 'aqi_daily_city.csv'}: the products have no city "
                             f"table")
    need = []
    if analysis is not None:
        need.append(Path(analysis) / "statistics.csv")
    if inversion is not None:
        need.append(Path(inversion) / "scaling.csv")
    if previous_inversion is not None:
        need.append(Path(previous_inversion) / "scaling.csv")
    if verification is not None:
        require_success(verification, "verification")
        need += [Path(verification) / "summary.csv", Path(verification) / "paired.csv"]
    if plan is not None:
        need += [Path(plan) / "plan.csv", Path(plan) / "limits.csv"]
    for f in need:
        if not f.exists():
            raise InputFileError(f"{f}: missing (named by the bulletin's options)")
    return man


def build_bulletin(forecast, products, out_dir, analysis=None, inversion=None, plan=None, *,
                   config=None, verification=None, previous_inversion=None,
                   scenarios=()) -> list[Path]:
    """Write ``out_dir/index.html`` (module docstring); return the written paths.

    ``config``: a config path or :class:`~aqforecast.config.RunConfig` (city outlines for the
    lead-window rows, met and inventory for the headline, local time)."""
    forecast, products, out = Path(forecast), Path(products), Path(out_dir)
    man = _check_inputs(forecast, products, analysis, inversion, previous_inversion,
                        verification, plan)
    for d in scenarios or ():
        for f in ("scores.csv", "measures.csv"):
            if not (Path(d) / f).exists():
                raise InputFileError(f"{Path(d) / f}: missing (named by --scenarios)")
    cfg = config
    if isinstance(config, (str, Path)):
        from ..config import load_config

        cfg = load_config(config)
    head = headline(forecast, products, man, cfg, analysis, inversion)
    local = _local_time(cfg, head)
    tables = city_tables(products, cfg, local, verification)
    city_csv = products / "aqi_daily_city.csv"
    daily = pd.read_csv(city_csv)
    used = sorted({str(s) for s in daily.get("standard", pd.Series(dtype=str)).dropna()})
    aqi_standard = ", ".join(STANDARD_LABELS.get(s, s) for s in used) or "HJ 633"
    lead_days = {str(d): int(n) for d, n in zip(daily["date"], daily["lead_day"])}
    if tables.incomplete:
        head["warnings"].append(f"{tables.incomplete} city day(s) incomplete in {city_csv} "
                                f"(shown without values)")
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "img", ignore_errors=True)  # this page's images only, written anew
    shares, share_files = share_section(forecast, products, out, local, lead_days)
    ctx = {"head": head, "tables": tables, "aqi_standard": aqi_standard,
           "local_label": local.label, "maps": _maps(products, out), "shares": shares,
           "version": __version__, "built": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "inversion": None, "plan": None, "verification": None, "analysis": None,
           "scenarios": _scenario_section(scenarios or ()),
           "sources": {"headline": ", ".join(head["files"]),
                       "city": ", ".join(tables.sources), "daily": str(city_csv),
                       "maps": str(products / "maps"), "shares": ", ".join(share_files)}}
    if inversion is not None:
        ctx["inversion"] = inversion_section(Path(inversion), previous_inversion)
        ctx["sources"]["inversion"] = ", ".join(ctx["inversion"]["sources"])
    if verification is not None:
        ctx["verification"] = verification_section(Path(verification), products, out)
        ctx["sources"]["verification"] = ", ".join(
            str(Path(verification) / f) for f in ("summary.csv", "paired.csv"))
        if ctx["verification"]["note"]:
            head["warnings"].append(f"verification: {ctx['verification']['note']}")
    if plan is not None:
        ctx["plan"] = _plan(Path(plan))
        ctx["plan"]["effects"] = _plan_effects(Path(plan))
        ctx["sources"]["plan"] = f"{Path(plan) / 'plan.csv'}, {Path(plan) / 'limits.csv'}"
    if analysis is not None:
        ctx["analysis"] = _analysis_rows(Path(analysis))
        ctx["sources"]["analysis"] = str(Path(analysis) / "statistics.csv")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    html = env.get_template("index.html.j2").render(**ctx)
    page = out / "index.html"
    with atomic_path(page) as tmp:
        tmp.write_text(html, encoding="utf-8")
    files = [page] + sorted((out / "img").glob("*.png"))
    return [page, write_success(out, files, {"stage": "bulletin", "cycle": head["cycle"]})]
