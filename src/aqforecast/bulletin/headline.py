"""The headline of the page: the cycle, the inputs it used and the warnings of the day.

- cycle and lead: the forecast's ``_SUCCESS``; start type and emission scaling (the posterior
  the forecast ran with): the global attributes of ``conc_<domain>.nc``;
- met and inventory: the config (``inputs.met``, ``inputs.emissions``), where given;
- stations assimilated: the analysis' ``innovations.csv`` (distinct stations with a used
  observation; else the sum of ``n_used`` of ``statistics.csv``); satellite pixels: rows of
  ``innovations.csv`` whose quantity is a column (none otherwise);
- warnings: the products' ``products_summary.json`` (warnings, missing pollutants), the
  analysis' rejected observations by reason (``innovations.csv``), the QC flags of the
  observation file the analysis read (``obs.nc``: ``<name>_qc`` flag masks, counted per flag),
  the inversion (:func:`.factors.inversion_warnings`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .factors import inversion_warnings

__all__ = ["headline"]


def _conc_attrs(forecast: Path) -> dict:
    import xarray as xr

    conc = sorted(forecast.glob("conc_*.nc"))
    if not conc:
        return {}
    with xr.open_dataset(conc[0]) as ds:
        return dict(ds.attrs)


def _inventory_version(cfg, gridded) -> str:
    """`` (version: ...)`` from a native inventory file's global attributes, else ""."""
    import xarray as xr

    from ..config import resolve_path

    if getattr(gridded, "layout", "native") != "native":
        return ""
    path = resolve_path(cfg, getattr(gridded, "path", gridded))
    if not path.is_file():
        return ""
    try:
        with xr.open_dataset(path, decode_times=False) as ds:
            attrs = ds.attrs
    except (OSError, ValueError):
        return ""
    text = next((str(attrs[k]) for k in ("version", "inventory_version", "title", "source")
                 if attrs.get(k)), "")
    return f" (version: {text})" if text else ""


def _config_inputs(cfg) -> list[str]:
    out = []
    met = cfg.inputs.met
    out.append("气象 Met: " + f"{met.format}, " +
               ", ".join(f"{d}: {p}" for d, p in met.paths.items()))
    em = cfg.inputs.emissions
    parts = []
    if em.gridded is not None:
        g = em.gridded
        parts.append(f"gridded {getattr(g, 'path', g)}" + _inventory_version(cfg, g))
    for what in ("points", "areas"):
        if getattr(em, what, None) is not None:
            parts.append(f"{what} {getattr(em, what)}")
    out.append("排放清单 Inventory: " + ("; ".join(parts) or "none") +
               f" (base year {em.base_year})")
    return out


def _qc_counts(obs_path: Path) -> dict[str, int]:
    """Count of observations carrying each QC flag in an ``obs.nc``."""
    import xarray as xr

    counts: dict[str, int] = {}
    with xr.open_dataset(obs_path) as ds:
        for name in ds.data_vars:
            if not str(name).endswith("_qc"):
                continue
            da = ds[name]
            masks = np.atleast_1d(da.attrs.get("flag_masks", []))
            meanings = str(da.attrs.get("flag_meanings", "")).split()
            v = np.asarray(da.values).astype(np.int64)
            for m, word in zip(masks, meanings):
                n = int(np.count_nonzero(v & int(m)))
                if n:
                    counts[word] = counts.get(word, 0) + n
    return counts


def _analysis(analysis: Path, inputs: list, warnings: list, files: list) -> None:
    inn = analysis / "innovations.csv"
    st = analysis / "statistics.csv"
    n_st, n_sat, n_out = None, 0, 0
    if inn.exists():
        df = pd.read_csv(inn, dtype={"station": str})
        files.append(str(inn))
        used = df["used"].astype(str).str.lower().isin(("true", "1")) if "used" in df else \
            pd.Series(True, index=df.index)
        q = df.get("quantity", pd.Series("", index=df.index)).astype(str)
        sat = q.str.contains("column", case=False)
        n_sat = int((used & sat).sum())
        n_st = int(df.loc[used & ~sat, "station"].nunique()) if "station" in df else None
        reasons = df.loc[~used, "reason"].fillna("").astype(str) if "reason" in df else \
            pd.Series(dtype=str)
        outside = reasons == "outside the domain"  # stations beyond the grids: no warning
        n_out = int(outside.sum())
        for why, n in reasons[(reasons != "") & ~outside].value_counts().items():
            warnings.append(f"analysis: {n} observation(s) not used: {why} ({inn})")
    if n_st is None and st.exists():
        n_st = int(pd.read_csv(st)["n_used"].sum())
        files.append(str(st))
    per_q = ""
    if st.exists():
        s = pd.read_csv(st)
        per_q = ", ".join(f"{r.quantity} {int(r.n_used)}" for r in
                          s.groupby("quantity", as_index=False)["n_used"].sum().itertuples())
    inputs.append(f"同化 Assimilated: {n_st if n_st is not None else '?'} stations"
                  + (f" (observations used: {per_q})" if per_q else "")
                  + f"; satellite pixels: {n_sat if n_sat else 'none'}"
                  + (f"; {n_out} observation(s) outside the domains" if n_out else ""))
    init = sorted(analysis.glob("initial_*.nc"))
    if init:
        import xarray as xr

        with xr.open_dataset(init[0]) as ds:
            obs = ds.attrs.get("analysis_observations")
            method = ds.attrs.get("analysis_method")
        if method:
            inputs[-1] += f"; method: {method}"
        if obs and Path(obs).suffix == ".nc" and Path(obs).exists():
            try:
                counts = _qc_counts(Path(obs))
            except (OSError, ValueError):
                counts = {}
            if counts:
                warnings.append("observation QC flags: " + ", ".join(
                    f"{w} {n}" for w, n in sorted(counts.items())) + f" ({obs})")
                files.append(str(obs))


def headline(forecast: Path, products: Path, manifest: dict, cfg=None, analysis=None,
             inversion=None) -> dict:
    """Context of the headline: cycle, lead, start, scaling, inputs, warnings, source files."""
    attrs = _conc_attrs(forecast)
    inputs, warnings = [], []
    files = [str(forecast / "_SUCCESS")]
    if cfg is not None:
        inputs += _config_inputs(cfg)
    scaling = str(attrs.get("emission_scaling", "")) or "none (the base inventory)"
    inputs.append(f"排放因子 Emission scaling (posterior): {scaling}")
    summary = products / "products_summary.json"
    local_label, offset = "UTC+8", 8.0
    if summary.exists():
        files.append(str(summary))
        info = json.loads(summary.read_text())
        for d, v in info.get("domains", {}).items():
            inputs.append(f"域 Domain {d}: {v.get('hours')} hourly fields, "
                          f"{v.get('lead_windows', '?')} lead windows, {v.get('days')} day(s)")
            if v.get("missing_pollutants"):
                warnings.append(f"{d}: no {', '.join(v['missing_pollutants'])} ({summary})")
        warnings += [f"products: {w}" for w in info.get("warnings", [])]
        local_label = str(info.get("local_time") or local_label)
        try:
            offset = float(info.get("utc_offset_hours", offset))
        except (TypeError, ValueError):
            pass
    if analysis is not None:
        _analysis(Path(analysis), inputs, warnings, files)
    else:
        inputs.append("同化 Assimilated: no analysis given (cold start or not run)")
    if inversion is not None:
        warnings += inversion_warnings(Path(inversion))
        files.append(str(Path(inversion) / "inversion_report.csv"))
    return {"cycle": manifest.get("cycle_start", "?"), "lead_hours":
            manifest.get("lead_hours", "?"), "start_type": str(attrs.get("start_type", "")),
            "config_name": str(attrs.get("config_name", "")), "inputs": inputs,
            "warnings": warnings, "files": files, "local_label": local_label,
            "utc_offset_hours": offset}
