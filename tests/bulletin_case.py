"""A small cycle for the bulletin tests, built once per test session and shared by
``test_bulletin.py`` and ``test_bulletin_browser.py``.

The real commands make the forecast (3 h, tags), its products and the verification
(``aqforecast verify`` against a synthetic station CSV over the forecast hours, so observations
meet forecast rows). The rest is written here in the exact formats of the stages (the inversion's
``scaling.csv`` and ``inversion_report.csv`` today and yesterday, the analysis' ``statistics.csv``
and ``innovations.csv``, the plan's ``plan.csv`` and ``limits.csv``), plus two variants:

- ``products_long``: the products with ``leadwindow_<domain>.nc`` replaced by the default
  15-day windows (3-hourly to 72 h, 12-hourly to 168 h, daily to 360 h) on the same grids, so
  the city table has all three lead bands;
- ``verification_past``: the verification with the day before the cycle added to ``paired.csv``
  (one past day per city in the daily table).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from forecast_case import small_config

from aqforecast.cli import main

#: (until_hours, every_hours) of the default lead windows (config time.windows)
LONG_WINDOWS = ((72, 3), (168, 12), (360, 24))
CITIES = ("Hangzhou", "Shaoxing")


def _windows():
    out, a = [], 0
    for until, every in LONG_WINDOWS:
        while a < until:
            out.append((a, a + every))
            a += every
    return out


def _long_leadwindows(src: Path, dst: Path) -> None:
    """``dst``: a copy of the products ``src`` with 15-day lead-window files."""
    shutil.copytree(src, dst)
    rng = np.random.default_rng(7)
    win = _windows()
    a = np.array([w[0] for w in win], dtype=np.int32)
    b = np.array([w[1] for w in win], dtype=np.int32)
    for f in sorted(dst.glob("leadwindow_*.nc")):
        with xr.open_dataset(f) as ds:
            ds = ds.load()
        start = np.datetime64(pd.Timestamp(ds["forecast_reference_time"].values), "ns")
        ny, nx = ds.sizes["y"], ds.sizes["x"]
        keep = [v for v in ("crs", "lon_bnds", "lat_bnds", "cell_area") if v in ds]
        out = ds[keep].drop_vars([c for c in ds[keep].coords
                                  if c not in ("x", "y", "lon", "lat")])
        ws = start + a.astype("timedelta64[h]")
        we = start + b.astype("timedelta64[h]")
        out = out.assign_coords(
            lead_window=("lead_window", np.arange(len(win), dtype=np.int32)),
            window_start=("lead_window", ws), window_end=("lead_window", we),
            lead_hours=("lead_window", b), lead_hours_start=("lead_window", a),
            aggregation=("lead_window", np.array(["mean"] * len(win))),
            time=("lead_window", we),
            forecast_reference_time=((), start))
        shape = (len(win), ny, nx)
        base = 1.0 + 0.8 * np.sin(np.arange(len(win)) / 3.0)[:, None, None]
        fields = {"PM25": 35.0 * base, "NO2": 25.0 * base, "O3": 90.0 * base,
                  "O3_max_1h": 120.0 * base, "O3_max_8h": 100.0 * base,
                  "AQI_max": 70.0 * base}
        for name, v in fields.items():
            v = v * rng.uniform(0.9, 1.1, shape)
            if name == "O3_max_8h":
                v[(b - a) < 8] = np.nan
            out[name] = (("lead_window", "y", "x"), v.astype(np.float32))
        out.attrs = dict(ds.attrs)
        f.unlink()
        out.to_netcdf(f)


def _obs_csv(products: Path, path: Path) -> None:
    st = pd.read_csv(products / "aqi_daily_station.csv", dtype={"station": str})
    st = st.drop_duplicates("station")
    rng = np.random.default_rng(1)
    rows = []
    for t in pd.date_range("2026-07-20T01:00Z", periods=3, freq="h"):
        for s in st.itertuples():
            for sp, v in (("PM25", 30.0), ("O3", 80.0), ("NO2", 20.0)):
                rows.append({"station": s.station, "time": t.isoformat(), "species": sp,
                             "value": v * rng.uniform(0.5, 1.5), "units": "ug m-3",
                             "lon": s.lon, "lat": s.lat})
    pd.DataFrame(rows).to_csv(path, index=False)


def _past_day(verification: Path, dst: Path) -> None:
    """``dst``: the verification with the day before added to ``paired.csv`` (24 hours)."""
    shutil.copytree(verification, dst)
    p = pd.read_csv(dst / "paired.csv", dtype={"station": str})
    p["time"] = pd.to_datetime(p["time"])
    first = p.drop_duplicates(["station", "pollutant"])
    extra = []
    for h in range(24):
        e = first.copy()
        e["time"] = pd.Timestamp("2026-07-19") + pd.Timedelta(hours=h)
        e["lead_hours"] = h - 32
        e["obs"] = e["obs"] * (1 + 0.01 * h)
        extra.append(e)
    pd.concat(extra + [p]).to_csv(dst / "paired.csv", index=False)


def _inversion(d: Path, factor_shift: float, sigma: float) -> None:
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for reg in CITIES:
        for sec in ("industry", "power", "transport"):
            for pol in ("NOx", "PM25"):
                rows.append({"region": reg, "sector": sec, "pollutant": pol,
                             "factor": factor_shift * (1.2 if sec == "industry" else 0.85),
                             "sigma_ln": sigma})
    if factor_shift == 1.0:  # a factor yesterday did not have
        rows.append({"region": "outside", "sector": "power", "pollutant": "SO2",
                     "factor": 0.7, "sigma_ln": 0.4})
    pd.DataFrame(rows).to_csv(d / "scaling.csv", index=False)
    pd.DataFrame({"item": ["observations", "observations_used", "observations_rejected",
                           "factors", "dofs", "chi2", "prior"],
                  "value": [40, 37, 3, len(rows), 4.2, 2.7, "yesterday's posterior"]}
                 ).to_csv(d / "inversion_report.csv", index=False)


def _analysis(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"domain": ["d01", "d01"], "quantity": ["PM25", "O3"], "n_used": [3, 2],
                  "n_rejected": [1, 0], "mean_omb": [1.0, 2.0], "rms_omb": [5.0, 6.0],
                  "mean_oma": [0.5, 0.4], "rms_oma": [3.0, 4.0], "chi2": [1.1, 0.9]}
                 ).to_csv(d / "statistics.csv", index=False)
    pd.DataFrame({"domain": ["d01"] * 6, "quantity": ["PM25"] * 4 + ["O3"] * 2,
                  "station": ["1223A", "1224A", "1226A", "9999A", "1223A", "1227A"],
                  "lon": [120.2] * 6, "lat": [30.2] * 6, "observed": [1.0] * 6,
                  "background": [1.0] * 6, "analysis": [1.0] * 6, "sigma_o": [1.0] * 6,
                  "used": [True, True, True, False, True, True],
                  "reason": ["", "", "", "gross error (|O-B| > 5 sigma)", "", ""]}
                 ).to_csv(d / "innovations.csv", index=False)


def _plan(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"measure": ["industry NOx Hangzhou"], "cut": [0.3],
                  "tonnes_abated": [12.0], "cost": [1200.0]}).to_csv(d / "plan.csv",
                                                                    index=False)
    pd.DataFrame({"limit": [1], "city": ["Hangzhou"], "lead_day": [1],
                  "pollutant": ["PM2.5"], "statistic": ["daily_mean"], "base": [81.0],
                  "bound": [75.0], "predicted": [74.9], "binding": [True]}
                 ).to_csv(d / "limits.csv", index=False)


def _scenario(d: Path) -> None:
    """A scenario output in the layout of `aqforecast scenario` (scores.csv, measures.csv)."""
    d.mkdir(parents=True, exist_ok=True)
    rows = [("Hangzhou", 1, "PM2.5", "daily_mean", 40.0, 37.5, True),
            ("Hangzhou", 2, "PM2.5", "daily_mean", 50.0, 44.0, True),
            ("Shaoxing", 2, "O3", "mda8", 150.0, 152.0, True),
            ("Shaoxing", 3, "PM2.5", "daily_mean", None, None, False)]
    pd.DataFrame([{"city": c, "domain": "d01", "coverage": 1.0, "lead_day": k,
                   "date": f"2026-07-{19 + k}", "pollutant": p, "statistic": s, "base": b,
                   "scenario": x, "change": None if b is None else x - b, "complete": ok,
                   "method": "tags"} for c, k, p, s, b, x, ok in rows]
                 ).to_csv(d / "scores.csv", index=False)
    pd.DataFrame({"measure": ["industry-nox"], "factor": [0.7], "from_hour": [24],
                  "to_hour": [96], "tonnes_abated": [321.5], "cost_per_tonne": [12000],
                  "cost": [3858000.0]}).to_csv(d / "measures.csv", index=False)


def sample_cycle(base: Path) -> dict[str, Path]:
    """Build (once: a marker file says it is complete) the cycle under ``base``; return its
    directories by name."""
    base = Path(base)
    d = {k: base / k for k in ("run", "products", "verification", "inversion",
                               "inversion_prev", "analysis", "plan", "products_long",
                               "hz-industry-nox",
                               "verification_past")}
    d["config"] = base / "small.yaml"
    if (base / "complete").exists():
        return d
    case = small_config(base, hours=3, tags=True)
    assert case == d["config"]
    assert main(["forecast", str(case), "--lead-hours", "3", "--out", str(d["run"]),
                 "--no-progress"]) == 0
    assert main(["products", str(case), "--run", str(d["run"]), "--out",
                 str(d["products"])]) == 0
    _obs_csv(d["products"], base / "obs.csv")
    assert main(["verify", str(case), "--run", str(d["run"]), "--obs", str(base / "obs.csv"),
                 "--out", str(d["verification"])]) == 0
    _inversion(d["inversion"], 1.0, 0.2)
    _inversion(d["inversion_prev"], 0.9, 0.3)
    _analysis(d["analysis"])
    _plan(d["plan"])
    _scenario(d["hz-industry-nox"])
    _long_leadwindows(d["products"], d["products_long"])
    _past_day(d["verification"], d["verification_past"])
    (base / "complete").write_text("ok")
    return d


def full_page_args(c: dict, out: Path, products: str = "products_long",
                   verification: str = "verification_past") -> list[str]:
    """The ``aqforecast bulletin`` arguments with every option."""
    return ["bulletin", "--forecast", str(c["run"]), "--products", str(c[products]),
            "--out", str(out), "--config", str(c["config"]),
            "--verification", str(c[verification]), "--analysis", str(c["analysis"]),
            "--inversion", str(c["inversion"]), "--previous-inversion",
            str(c["inversion_prev"]), "--plan", str(c["plan"]),
            "--scenarios", str(c["hz-industry-nox"])]


def n_windows(products: Path) -> int:
    """Lead windows in the products' first lead-window file."""
    f = min(Path(products).glob("leadwindow_*.nc"))
    with xr.open_dataset(f) as ds:
        return int(ds.sizes["lead_window"])
