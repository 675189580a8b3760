"""The inversion on the page: posterior scaling factors by city and sector, with uncertainty,
and what changed since yesterday's posterior.

Reads ``aqforecast invert``'s directory: ``scaling.csv`` (region, sector, pollutant, factor,
sigma_ln; the forecast's ``--scaling`` table), ``inversion_report.csv`` (item, value: DOFS,
chi2, observations used / rejected, prior) and, where there, ``inversion_history.csv`` (the bias
monitor, :class:`aqforecast.inversion.kalman.BiasMonitor`). A factor f with posterior
standard deviation s of ln f is shown as ``f ×/÷ exp(s)``: the one-sigma range
[f / exp(s), f · exp(s)]. With yesterday's directory the change is f_today / f_yesterday - 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import InputFileError
from .citytable import fmt
from .labels import SECTOR_ZH, region_label

__all__ = ["CHANGED_PERCENT", "CHI2_RANGE", "inversion_section", "inversion_warnings"]

#: chi^2 per observation outside this range: the assumed errors (B, R) do not fit the innovations
CHI2_RANGE = (0.5, 2.0)
#: a factor whose change since yesterday exceeds this (%) is counted as changed
CHANGED_PERCENT = 5.0
MAX_CHANGES = 20


def _read_scaling(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputFileError(f"{path}: no scaling table (expected aqforecast invert's output)")
    df = pd.read_csv(path, comment="#")
    need = {"region", "sector", "pollutant", "factor"}
    if not need <= set(df.columns):
        raise InputFileError(f"{path}: columns {sorted(need - set(df.columns))} missing "
                             f"(expected region,sector,pollutant,factor[,sigma_ln])")
    if "sigma_ln" not in df:
        df["sigma_ln"] = np.nan
    return df


def _tint(factor: float) -> str:
    """Background of a factor cell: blue below 1, red above (stronger with |ln f|)."""
    if not np.isfinite(factor) or factor <= 0:
        return "#ffffff"
    a = min(abs(np.log(factor)) / np.log(2.0), 1.0)
    if factor >= 1:
        return f"rgb(255,{int(255 - 110 * a)},{int(255 - 110 * a)})"
    return f"rgb({int(255 - 110 * a)},{int(255 - 70 * a)},255)"


def _cell(f, s) -> dict:
    f, s = float(f), float(s) if s is not None else np.nan
    spread = np.exp(s) if np.isfinite(s) else np.nan
    rng = f"{f / spread:.2f}–{f * spread:.2f}" if np.isfinite(spread) else ""
    return {"factor": fmt(f, 2), "times": fmt(spread, 2), "range": rng, "tint": _tint(f)}


def _report(inv: Path) -> pd.Series:
    f = inv / "inversion_report.csv"
    if not f.exists():
        return pd.Series(dtype=object)
    rep = pd.read_csv(f)
    return rep.drop_duplicates("item").set_index("item")["value"] if "item" in rep else \
        pd.Series(dtype=object)


def inversion_warnings(inversion: Path) -> list[str]:
    """Warnings of the inversion: chi^2 outside :data:`CHI2_RANGE`, rejected observations
    (outliers), a persistent innovation bias (the monitor's alarm)."""
    inv = Path(inversion)
    rep = _report(inv)
    out = []
    try:
        chi2 = float(rep.get("chi2"))
    except (TypeError, ValueError):
        chi2 = np.nan
    if np.isfinite(chi2) and not CHI2_RANGE[0] <= chi2 <= CHI2_RANGE[1]:
        out.append(f"inversion: chi² per observation {chi2:.2f} outside {CHI2_RANGE[0]}–"
                   f"{CHI2_RANGE[1]}: the assumed prior/observation errors do not fit "
                   f"({inv / 'inversion_report.csv'})")
    try:
        rejected = int(float(rep.get("observations_rejected")))
    except (TypeError, ValueError):
        rejected = 0
    if rejected:
        out.append(f"inversion: {rejected} of {rep.get('observations', '?')} observations "
                   f"rejected as outliers ({inv / 'inversion_report.csv'})")
    hist = inv / "inversion_history.csv"
    if hist.exists():
        from ..inversion.kalman import BiasMonitor

        try:
            alarms = BiasMonitor.from_frame(pd.read_csv(hist)).alarms()
        except (KeyError, ValueError):
            alarms = []
        if alarms:
            out.append(f"inversion: persistent innovation bias in {', '.join(alarms)} over the "
                       f"last cycles ({hist})")
    return out


def _listing(rows: pd.DataFrame, most: int = 10) -> list[str]:
    """``region sector pollutant`` of at most ``most`` rows, then how many more."""
    out = [f"{region_label(r.region)} {r.sector} {r.pollutant}"
           for r in rows.head(most).itertuples()]
    return out + ([f"… {len(rows) - most} more"] if len(rows) > most else [])


def inversion_section(inversion: Path, previous: Path | None = None) -> dict:
    """Context of the inversion section: factor matrices per pollutant (regions × sectors),
    the report's numbers and, with ``previous``, the changes since yesterday."""
    inv = Path(inversion)
    sc = _read_scaling(inv / "scaling.csv")
    rep = _report(inv)
    blocks = []
    for pol, g in sc.groupby("pollutant", sort=True):
        sectors = list(dict.fromkeys(g["sector"].astype(str)))
        regions = list(dict.fromkeys(g["region"].astype(str)))
        cells = {(str(r.region), str(r.sector)): _cell(r.factor, r.sigma_ln)
                 for r in g.itertuples()}
        blocks.append({"pollutant": pol,
                       "sectors": [f"{SECTOR_ZH.get(s, '')} {s}".strip() for s in sectors],
                       "rows": [{"region": region_label(reg),
                                 "cells": [cells.get((reg, s)) for s in sectors]}
                                for reg in regions]})
    ctx = {"blocks": blocks, "n_factors": len(sc),
           "dofs": fmt(rep.get("dofs"), 1), "chi2": fmt(rep.get("chi2"), 2),
           "used": rep.get("observations_used", ""),
           "rejected": rep.get("observations_rejected", ""),
           "prior": rep.get("prior", ""), "changes": None,
           "sources": [str(inv / "scaling.csv"), str(inv / "inversion_report.csv")]}
    if previous is not None:
        prev = _read_scaling(Path(previous) / "scaling.csv")
        key = ["region", "sector", "pollutant"]
        m = sc.merge(prev, on=key, how="outer", suffixes=("", "_prev"), indicator=True)
        both = m[m["_merge"] == "both"].copy()
        both["ln_change"] = np.log(both["factor"] / both["factor_prev"])
        both = both.reindex(both["ln_change"].abs().sort_values(ascending=False).index)
        changed = both[np.abs(np.expm1(both["ln_change"])) * 100 > CHANGED_PERCENT]
        ctx["changes"] = {
            "n_compared": len(both), "n_changed": len(changed),
            "threshold": f"{CHANGED_PERCENT:g} %",
            "new": _listing(m[m["_merge"] == "left_only"]),
            "dropped": _listing(m[m["_merge"] == "right_only"]),
            "rows": [{"region": region_label(r.region), "sector": r.sector,
                      "pollutant": r.pollutant, "prev": _cell(r.factor_prev, r.sigma_ln_prev),
                      "now": _cell(r.factor, r.sigma_ln),
                      "change": f"{100 * np.expm1(r.ln_change):+.0f} %",
                      "sigma_change": fmt(r.sigma_ln - r.sigma_ln_prev, 2)
                      if np.isfinite(r.sigma_ln - r.sigma_ln_prev) else ""}
                     for r in changed.head(MAX_CHANGES).itertuples()]}
        ctx["sources"].append(str(Path(previous) / "scaling.csv"))
    return ctx
