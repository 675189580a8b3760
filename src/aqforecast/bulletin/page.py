"""The morning bulletin: one self-contained HTML page per cycle, built from the cycle's files.

``aqforecast bulletin CONFIG --forecast RUN --products DIR --out DIR [--analysis DIR]
[--inversion DIR] [--plan DIR]`` writes ``DIR/index.html`` (Jinja2 template
``templates/index.html.j2``) with its images copied beside it (``DIR/img/``): opening the file is
enough, no network, no server; printable. Sections: headline (cycle, lead, start type, emission
scaling, inputs, warnings), city table (``aqi_daily_city.csv``: AQI in the HJ 633 colours,
category, primary pollutant, PM2.5 / O3-8h / NO2; incomplete days shown without values), maps
(``maps/<domain>/*.png``), source apportionment (``receptors_city_<domain>.csv``: the top three
PM2.5 contributors per city in words), and, where given, the analysis statistics, the inversion's
factors and the optimal plan. Every number is read from a file, which each section names; nothing
is recomputed in the template.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import __version__
from ..io import InputFileError, atomic_path
from ..io.rundir import require_success, write_success
from ..products.aqi import CATEGORY_COLORS

__all__ = ["build_bulletin"]

TEMPLATES = Path(__file__).with_name("templates")
MAX_MAPS = 12


def _fmt(v, digits: int = 0) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v) if v is not None else ""
    return "" if not np.isfinite(x) else f"{x:.{digits}f}"


def _colour(category) -> str:
    try:
        c = int(float(category))
    except (TypeError, ValueError):
        return "#ffffff"
    if not 1 <= c <= 6:
        return "#ffffff"
    r, g, b = CATEGORY_COLORS["HJ"][c - 1]
    return f"rgb({r},{g},{b})"


def _city_rows(path: Path) -> tuple[list[dict], int]:
    df = pd.read_csv(path)
    rows, incomplete = [], 0
    for _, r in df.sort_values(["city", "lead_day"]).iterrows():
        ok = bool(r.get("complete", True))
        incomplete += 0 if ok else 1
        rows.append({"city": r["city"], "lead_day": int(r["lead_day"]), "date": r["date"],
                     "aqi": _fmt(r.get("AQI")) if ok else "", "colour": _colour(
                         r.get("category")) if ok else "#f8f8f8",
                     "category": (r.get("category_name") if ok and isinstance(
                         r.get("category_name"), str) else ""),
                     "primary": r.get("primary_pollutant") if ok and isinstance(
                         r.get("primary_pollutant"), str) else "",
                     "pm25": _fmt(r.get("PM2.5")) if ok else "",
                     "o3": _fmt(r.get("O3_8h_max")) if ok else "",
                     "no2": _fmt(r.get("NO2")) if ok else ""})
    return rows, incomplete


def _shares(products: Path) -> tuple[list[dict], str]:
    files = sorted(products.glob("receptors_city_*.csv"))
    out = []
    for f in files[-1:]:  # the finest domain's table (written last)
        df = pd.read_csv(f)
        df = df[(df["pollutant"].isin(["PM25", "PM2.5"])) & (df["by"] == "sector")]
        for (city, date), g in df.groupby(["receptor", "date"]):
            top = g.sort_values("share_percent", ascending=False).head(3)
            words = ", ".join(f"{s} {p:.0f} %" for s, p in zip(top["source"],
                                                             top["share_percent"]))
            out.append({"city": city, "date": date, "text": f"largest contributors: {words}"})
    return out, ", ".join(str(f) for f in files[-1:]) or "no receptor table"


def _maps(products: Path, out: Path) -> list[dict]:
    maps = []
    img = out / "img"
    for f in sorted((products / "maps").rglob("*.png"))[:MAX_MAPS]:
        rel = f.relative_to(products / "maps")
        dst = img / "_".join(rel.parts)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst)
        maps.append({"src": f"img/{dst.name}", "caption": str(rel)})
    return maps


def build_bulletin(forecast, products, out_dir, analysis=None, inversion=None,
                   plan=None) -> list[Path]:
    """Write ``out_dir/index.html`` (module docstring); return the written paths."""
    forecast, products, out = Path(forecast), Path(products), Path(out_dir)
    man = require_success(forecast, "forecast")
    require_success(products, "products")
    city_csv = products / "aqi_daily_city.csv"
    if not city_csv.exists():
        raise InputFileError(f"{city_csv}: the products have no city table")
    out.mkdir(parents=True, exist_ok=True)
    rows, incomplete = _city_rows(city_csv)
    shares, share_src = _shares(products)
    summary = products / "products_summary.json"
    warnings = []
    inputs = []
    if summary.exists():
        info = json.loads(summary.read_text())
        for d, v in info.get("domains", {}).items():
            inputs.append(f"domain {d}: {v.get('hours')} hourly fields, {v.get('days')} day(s)")
            if v.get("missing_pollutants"):
                warnings.append(f"{d}: no {', '.join(v['missing_pollutants'])}")
        if "stations" in info:
            inputs.append(f"{info['stations'].get('n')} stations in the verification table")
    ctx = {"cycle": man.get("cycle_start", "?"), "lead_hours": man.get("lead_hours", "?"),
           "start_type": "", "scaling": "", "inputs": inputs, "warnings": warnings,
           "city_rows": rows, "incomplete": incomplete, "maps": _maps(products, out),
           "shares": shares, "version": __version__,
           "built": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "sources": {"headline": f"{forecast / '_SUCCESS'}, {summary}", "city": str(city_csv),
                       "maps": str(products / "maps"), "shares": share_src}}
    conc = sorted(forecast.glob("conc_*.nc"))
    if conc:
        import xarray as xr

        with xr.open_dataset(conc[0]) as ds:
            ctx["start_type"] = str(ds.attrs.get("start_type", ""))
            ctx["scaling"] = str(ds.attrs.get("emission_scaling", ""))
    if analysis is not None:
        st = Path(analysis) / "statistics.csv"
        df = pd.read_csv(st)
        ctx["analysis"] = [{"domain": r["domain"], "quantity": r["quantity"],
                            "n_used": int(r["n_used"]), "rms_omb": _fmt(r["rms_omb"], 2),
                            "rms_oma": _fmt(r["rms_oma"], 2), "chi2": _fmt(r["chi2"], 2)}
                           for _, r in df.iterrows()]
        ctx["sources"]["analysis"] = str(st)
    if inversion is not None:
        inv = Path(inversion)
        rep = pd.read_csv(inv / "inversion_report.csv").set_index("item")["value"]
        sc = pd.read_csv(inv / "scaling.csv")
        moved = sc.reindex((np.log(sc["factor"]).abs()).sort_values(ascending=False).index)
        ctx["inversion"] = {"dofs": _fmt(rep.get("dofs"), 1), "chi2": _fmt(rep.get("chi2"), 2),
                            "used": rep.get("observations_used", ""),
                            "rows": [{"region": r["region"], "sector": r["sector"],
                                      "pollutant": r["pollutant"],
                                      "factor": _fmt(r["factor"], 2),
                                      "sigma_ln": _fmt(r.get("sigma_ln"), 2)}
                                     for _, r in moved.head(15).iterrows()]}
        ctx["sources"]["inversion"] = f"{inv / 'inversion_report.csv'}, {inv / 'scaling.csv'}"
    if plan is not None:
        pl = Path(plan)
        df = pd.read_csv(pl / "plan.csv")
        lim = pd.read_csv(pl / "limits.csv")
        ctx["plan"] = {"rows": [{"measure": r["measure"], "cut": f"{100 * r['cut']:.0f} %",
                                 "tonnes": _fmt(r["tonnes_abated"], 0),
                                 "cost": _fmt(r["cost"], 0)} for _, r in df.iterrows()],
                       "summary": f"total cost {_fmt(df['cost'].sum(), 0)}; "
                                  f"{int(lim['binding'].sum())} of {len(lim)} limits binding"}
        ctx["sources"]["plan"] = f"{pl / 'plan.csv'}, {pl / 'limits.csv'}"
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    html = env.get_template("index.html.j2").render(**ctx)
    page = out / "index.html"
    with atomic_path(page) as tmp:
        tmp.write_text(html, encoding="utf-8")
    files = [page] + sorted((out / "img").glob("*.png"))
    return [page, write_success(out, files, {"stage": "bulletin", "cycle": ctx["cycle"]})]
