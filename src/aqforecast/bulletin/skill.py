"""Verification of yesterday's forecast on the page: scores per city and a time-series chart.

Reads the directory of ``aqforecast verify`` (:mod:`aqforecast.products.verify`):
``summary.csv`` (pollutant x city ("all" or a city) x lead day: n, mean_model, mean_obs, nmb and
nme in %, rmse, r, cat_exact and cat_within1 as fractions) gives the table as written;
``paired.csv`` (station, time (local, hour beginning), lead_hours, lead_day, pollutant, fcst, obs)
gives the chart: the mean over the stations (all, or one city's, the stations' cities from the
products' ``aqi_daily_station.csv``) of forecast and observation per hour.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.rundir import require_success
from .citytable import fmt
from .labels import city_en, city_key, city_label

__all__ = ["draw_time_series", "verification_section"]

POLLUTANTS = ("PM2.5", "O3", "NO2")
UNITS = {"CO": "mg m-3"}


def draw_time_series(paired: pd.DataFrame, title: str, path: Path, width: float = 8.0
                     ) -> Path:
    """Forecast (line) and observation (dots) per hour, one panel per pollutant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    pols = [p for p in POLLUTANTS if p in set(paired["pollutant"])] or \
        sorted(set(paired["pollutant"]))[:3]
    fig, axes = plt.subplots(len(pols), 1, figsize=(width, width / 4.2 * len(pols) + 0.6),
                             dpi=90, sharex=True, squeeze=False)
    for ax, p in zip(axes[:, 0], pols):
        g = paired[paired["pollutant"] == p].groupby("time")[["fcst", "obs"]].mean()
        ax.plot(g.index, g["fcst"], "-", color="#1f77b4", label="forecast")
        ax.plot(g.index, g["obs"], "o", color="#d62728", ms=3, label="observed")
        ax.set_ylabel(f"{p} ({UNITS.get(p, 'ug m-3')})", fontsize=8)
        ax.grid(alpha=0.3)
        ax.margins(x=0.05, y=0.15)
        ax.tick_params(labelsize=7)
    loc = mdates.AutoDateLocator()
    axes[-1, 0].xaxis.set_major_locator(loc)
    axes[-1, 0].xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    axes[0, 0].legend(fontsize=7, loc="best")
    axes[0, 0].set_title(title, fontsize=10)
    axes[-1, 0].set_xlabel("local time (hour beginning)", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def _pct(v) -> str:
    s = fmt(100.0 * float(v), 0) if v is not None and np.isfinite(float(v)) else ""
    return f"{s} %" if s else ""


def verification_section(verification: Path, products: Path, out: Path) -> dict:
    """Context of the verification section; charts written under ``out/img``."""
    verification = Path(verification)
    man = require_success(verification, "verification")
    summary = pd.read_csv(verification / "summary.csv")
    paired = pd.read_csv(verification / "paired.csv", dtype={"station": str})
    rows = []
    if len(summary):
        summary["order"] = (summary["city"] != "all").astype(int)
        for _, r in summary.sort_values(["order", "city", "pollutant", "lead_day"]).iterrows():
            rows.append({"city": "全部站点 all stations" if r["city"] == "all" else
                         city_label(r["city"]), "pollutant": r["pollutant"],
                         "lead_day": int(r["lead_day"]), "n": int(r["n"]),
                         "mean_model": fmt(r.get("mean_model"), 1),
                         "mean_obs": fmt(r.get("mean_obs"), 1), "nmb": fmt(r.get("nmb"), 0),
                         "rmse": fmt(r.get("rmse"), 1), "r": fmt(r.get("r"), 2),
                         "cat_exact": _pct(r.get("cat_exact")),
                         "cat_within1": _pct(r.get("cat_within1"))})
    charts = []
    if len(paired):
        paired["time"] = pd.to_datetime(paired["time"])
        charts.append({"src": "img/verify_all.png", "caption": "all stations",
                       "small": False})
        draw_time_series(paired, "all stations: forecast vs observed (station mean)",
                         out / "img" / "verify_all.png")
        st = products / "aqi_daily_station.csv"
        if st.exists():
            cities = pd.read_csv(st, usecols=lambda c: c in ("station", "city"), dtype=str)
            if "city" in cities:
                m = cities.dropna().drop_duplicates("station").set_index("station")["city"]
                paired["city"] = paired["station"].map(m).map(
                    lambda c: city_key(c) if isinstance(c, str) else "")
                for i, (c, g) in enumerate(paired[paired["city"] != ""].groupby("city")):
                    slug = re.sub(r"[^A-Za-z0-9]+", "_", city_en(c)).strip("_").lower()
                    name = f"verify_{i:02d}_{slug}.png"
                    draw_time_series(g, f"{city_en(c)}: forecast vs observed "
                                        f"({g['station'].nunique()} stations)",
                                     out / "img" / name, width=5.5)
                    charts.append({"src": f"img/{name}", "caption": city_label(c),
                                   "small": True})
    note = "" if len(summary) else ("the verification tables are empty: yesterday's forecast "
                                    "and the observations do not overlap")
    return {"rows": rows, "charts": charts, "note": note,
            "run": man.get("run", ""), "obs": man.get("obs", ""),
            "n_pairs": len(paired), "n_stations": int(paired["station"].nunique())
            if len(paired) else 0}
