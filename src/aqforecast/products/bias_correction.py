"""Station bias correction: the Kalman-filter (KF) predictor of Delle Monache et al. (2006) as
used for air-quality forecasts by Kang et al. (2008).

Method (Delle Monache, Nipen, Deng, Zhou & Stull 2006, "Ozone ensemble forecasts: 2. A Kalman
filter predictor bias correction", J. Geophys. Res. 111, D05308; Kang, Mathur, Rao & Yu 2008,
"Bias adjustment techniques for improving ozone air quality forecasts", J. Geophys. Res. 113,
D23308). For one station, pollutant and lead hour, the forecast error ``y = forecast - observed``
of successive daily forecasts is the true bias ``x`` plus white noise of variance
``sigma_eps^2``; the bias itself is a random walk with increments of variance ``sigma_eta^2``.
Each time a new error ``y`` is verified (once a day per lead hour: the cycle's previous
forecasts at the same lead hour) the scalar filter updates::

    beta = (p + sigma_eta^2) / (p + sigma_eta^2 + sigma_eps^2)        Kalman gain
    x   <- x + beta (y - x)                                           the bias estimate
    p   <- (p + sigma_eta^2) (1 - beta)                               its error variance

and the corrected forecast is ``forecast - x`` (clipped at 0). Only the ratio
``r = sigma_eta^2 / sigma_eps^2`` matters when ``p`` is carried in units of ``sigma_eps^2``
(as here: column ``p`` of the state is dimensionless). Default ``r = 0.01`` [L: the value
Delle Monache et al. 2006 report as their best for ozone, quoted from memory; the texts
reachable here confirm the method and that the ratio is the key parameter, and Kang et al.'s
abstract reports that one fixed ratio for all sites scores like per-site optimal ones, not the
number]. Start values: ``x = 0``, ``p = 1`` (the first error is weighted like the noise:
gain ~1/2). With a constant ratio the gain tends to the closed form of :func:`steady_gain`
(r = 0.01: 0.095, the filter's memory ~10 days; r = 0.1: 0.27).

Units: the bias and the corrected forecast are in the products' reporting units, ug m-3 for
PM2.5, PM10, O3, NO2 and SO2, mg m-3 for CO (gases at 298.15 K, 1013.25 hPa:
:mod:`aqforecast.products.surface`); lead hours are hours after the run's start, times naive
local hour-beginning as in the verification's ``paired.csv``.

Which pairs it learns from: the hourly pairs (``paired.csv``) of earlier verifications, each
pair at most once (the state keeps the initial time of the last forecast used per key), and
only pairs whose observation was complete before the corrected run starts (valid time < the
run's start), so a hindcast never peeks at the hours it is scored on.

Withheld stations: ``verification.withheld_stations`` never enter the learning (their pairs are
dropped before the filter sees them). Their forecasts -- and those of any station without a
learned bias -- are corrected with the bias learned at the other stations: ``nearest`` (default;
the nearest station, great-circle distance, that has a learned bias for that pollutant and lead
hour) or ``mean`` (the mean over the learned stations). In the Beijing hindcast each withheld
station has an assimilated neighbour 5-20 km away.

Form (``--form``): ``additive`` (default; the method above) or ``multiplicative``: the same
filter on the logarithmic error ``y = ln((forecast + c) / (observed + c))`` and the corrected
forecast ``(forecast + c) exp(-x) - c`` (floored at 0), with an offset ``c`` (:data:`LOG_OFFSET`,
5 ug m-3, CO 0.05 mg m-3 [D]: the low end of the monitors' range, so that a near-zero
observation does not make an unbounded error). The correction then scales with the forecast:
a bias learned during an episode shrinks with the forecast when the episode ends, where the
additive form keeps subtracting (or adding) its absolute value -- the error persistence across
regime changes that Kang, Mathur & Rao (2010) describe, measured in the Beijing hindcast.
(A correction proportional to the forecast is also what a Kalman-filter adaptive regression on
the forecast gives: De Ridder, Kumar, Lauwaet, Blyth & Lefebvre 2012, "Kalman filter-based air
quality forecast adjustment", pp. 381-384 [L: Atmos. Environ. 50 from memory].)

State file (``bias_state.csv``, one row per station x pollutant x lead hour): ``station,
pollutant, lead_hours, bias, p, n_updates, last_init, units, ratio[, form]``; ``bias`` in the
reporting units (additive) or in ln units (multiplicative), ``p`` in units of
``sigma_eps^2``, ``last_init`` the naive local initial time of the last forecast whose error
was used, ``form`` the form (a file without the column is additive). Pass the previous cycle's
file to ``--state`` to cycle daily.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import InputFileError
from ..observations.sampling import EARTH_RADIUS_KM
from . import surface as _surf

__all__ = ["DEFAULT_RATIO", "FORMS", "LOG_OFFSET", "forecast_error", "corrected_forecast",
           "kf_update", "kf_series", "steady_gain", "empty_state", "learn", "learning_pairs",
           "transfer", "apply_correction", "read_state", "write_state", "bias_correct_run"]

log = logging.getLogger(__name__)

#: sigma_eta^2 / sigma_eps^2 (module docstring)
DEFAULT_RATIO = 0.01
#: initial bias (reporting units) and error variance (units of sigma_eps^2)
X0, P0 = 0.0, 1.0
STATE_COLUMNS = ["station", "pollutant", "lead_hours", "bias", "p", "n_updates", "last_init",
                 "units", "ratio", "form"]
#: the error the filter learns: fcst - obs, or ln((fcst + c) / (obs + c)) (module docstring)
FORMS = ("additive", "multiplicative")
#: c of the multiplicative form, reporting units (ug m-3; CO mg m-3)
LOG_OFFSET = {"CO": 0.05}
LOG_OFFSET_DEFAULT = 5.0


def _offset(pollutant) -> np.ndarray | float:
    if isinstance(pollutant, str):
        return LOG_OFFSET.get(pollutant, LOG_OFFSET_DEFAULT)
    return np.array([LOG_OFFSET.get(str(q), LOG_OFFSET_DEFAULT) for q in pollutant], float)


def _check_form(form: str) -> str:
    if form not in FORMS:
        raise ValueError(f"bias-correction form {form!r}: expected one of {', '.join(FORMS)}")
    return form


def forecast_error(fcst, obs, pollutant, form: str = "additive"):
    """The error the filter learns: ``fcst - obs`` (additive) or ``ln((fcst + c) / (obs +
    c))`` (multiplicative; negative values taken as 0), reporting units / ln units."""
    fcst, obs = np.asarray(fcst, float), np.asarray(obs, float)
    if _check_form(form) == "additive":
        return fcst - obs
    c = _offset(pollutant)
    return np.log((np.maximum(fcst, 0.0) + c) / (np.maximum(obs, 0.0) + c))


def corrected_forecast(fcst, bias, pollutant, form: str = "additive"):
    """The forecast corrected by the learned ``bias`` (the inverse of :func:`forecast_error`
    at the bias), floored at 0."""
    fcst, bias = np.asarray(fcst, float), np.asarray(bias, float)
    if _check_form(form) == "additive":
        return np.maximum(fcst - bias, 0.0)
    c = _offset(pollutant)
    return np.maximum((np.maximum(fcst, 0.0) + c) * np.exp(-bias) - c, 0.0)
KEY = ["station", "pollutant", "lead_hours"]


def kf_update(x, p, y, ratio: float = DEFAULT_RATIO):
    """One filter step: bias estimate ``x`` and its variance ``p`` (units of sigma_eps^2)
    updated with the newly verified error ``y = forecast - observed`` (same units as ``x``).
    Arrays broadcast; returns ``(x, p, beta)``."""
    if not ratio > 0:
        raise ValueError(f"ratio sigma_eta^2/sigma_eps^2 must be > 0, got {ratio}")
    prior = np.asarray(p, float) + ratio
    beta = prior / (prior + 1.0)
    x = np.asarray(x, float) + beta * (np.asarray(y, float) - x)
    return x, prior * (1.0 - beta), beta


def kf_series(errors, ratio: float = DEFAULT_RATIO, x0: float = X0, p0: float = P0):
    """Run the filter along a series of daily errors; element k of the result is the bias
    predicted for day k+1 (after using errors[0..k]). Returns ``(x, p, beta)`` arrays."""
    x, p = float(x0), float(p0)
    xs, ps, bs = [], [], []
    for y in np.asarray(errors, float):
        if np.isfinite(y):
            x, p, b = kf_update(x, p, y, ratio)
        else:
            b = np.nan
        xs.append(float(x)), ps.append(float(p)), bs.append(float(b))
    return np.array(xs), np.array(ps), np.array(bs)


def steady_gain(ratio: float = DEFAULT_RATIO) -> float:
    """The gain the filter tends to with a constant ratio r: the prior variance q (units of
    sigma_eps^2) solves q^2 = r q + r, so q = (r + sqrt(r^2 + 4 r)) / 2 and beta = q / (q + 1)."""
    q = 0.5 * (ratio + np.sqrt(ratio * ratio + 4.0 * ratio))
    return float(q / (q + 1.0))


def empty_state() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                         zip(STATE_COLUMNS, [str, str, int, float, float, int,
                                             "datetime64[ns]", str, float, str])})


def learning_pairs(paired: pd.DataFrame, withheld, before,
                   form: str = "additive") -> pd.DataFrame:
    """The pairs the filter may learn from: hourly pairs (columns station, time, lead_hours,
    pollutant, fcst, obs; ``paired.csv``) of stations not in ``withheld`` whose valid time is
    before ``before`` (naive local), with ``init`` (forecast start) and ``error`` (of ``form``,
    :func:`forecast_error`), one per key and initial time."""
    d = paired.copy()
    d["station"] = d["station"].astype(str)
    d = d[~d["station"].isin({str(s) for s in withheld})]
    d["time"] = pd.to_datetime(d["time"])
    d = d[d["time"] < pd.Timestamp(before)]
    d = d[np.isfinite(d["fcst"].astype(float)) & np.isfinite(d["obs"].astype(float))]
    d["lead_hours"] = np.rint(d["lead_hours"].astype(float)).astype(int)
    d["init"] = d["time"] - pd.to_timedelta(d["lead_hours"], unit="h")
    d["error"] = forecast_error(d["fcst"].astype(float), d["obs"].astype(float),
                                d["pollutant"].astype(str), form)
    d = d.drop_duplicates(KEY + ["init"], keep="last")
    return d[KEY + ["init", "error"]].reset_index(drop=True)


def learn(state: pd.DataFrame, pairs: pd.DataFrame, ratio: float = DEFAULT_RATIO,
          withheld=(), form: str = "additive") -> pd.DataFrame:
    """Update the filter state with the pairs (as :func:`learning_pairs` returns them) newer
    than each key's ``last_init``, oldest first. Withheld stations are dropped again here, so
    no caller can make them learn. Returns the new state (keys without pairs kept as they
    were). ``form``: of the errors in ``pairs``; a state of another form is refused."""
    st = state.copy() if len(state) else empty_state()
    if len(st) and not np.allclose(st["ratio"].astype(float), ratio):
        raise InputFileError(f"bias state was made with ratio {st['ratio'].iloc[0]}, "
                             f"not {ratio}: start a new state or keep the ratio")
    if len(st) and (st["form"].astype(str) != _check_form(form)).any():
        raise InputFileError(f"bias state was made with the {st['form'].iloc[0]} form, not "
                             f"{form}: start a new state or keep the form")
    pairs = pairs[~pairs["station"].astype(str).isin({str(s) for s in withheld})]
    st["station"] = st["station"].astype(str)
    st = st.set_index(KEY)
    rows = {k: r for k, r in zip(st.index, st.to_dict("records"))}
    for key, g in pairs.sort_values("init").groupby(KEY, sort=False):
        r = rows.get(key)
        if r is None:
            r = {"bias": X0, "p": P0, "n_updates": 0, "last_init": pd.NaT,
                 "units": _surf.REPORT_UNITS.get(key[1], "") if form == "additive"
                 else "ln", "ratio": ratio, "form": form}
        if pd.notna(r["last_init"]):
            g = g[g["init"] > pd.Timestamp(r["last_init"])]
        if g.empty:
            rows[key] = r
            continue
        x, p, _ = kf_series(g["error"].to_numpy(float), ratio, r["bias"], r["p"])
        r = dict(r, bias=float(x[-1]), p=float(p[-1]),
                 n_updates=int(r["n_updates"]) + len(g), last_init=g["init"].iloc[-1],
                 ratio=ratio)
        rows[key] = r
    if not rows:
        return empty_state()
    out = pd.DataFrame([dict(zip(KEY, k), **v) for k, v in rows.items()])
    out["last_init"] = pd.to_datetime(out["last_init"])
    return out[STATE_COLUMNS].sort_values(KEY).reset_index(drop=True)


def _km(lon1, lat1, lon2, lat2):
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return EARTH_RADIUS_KM * 2 * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def transfer(state: pd.DataFrame, stations: pd.DataFrame, withheld=(),
             method: str = "nearest") -> pd.DataFrame:
    """The bias to apply at each of ``stations`` (columns station, lon, lat): its own learned
    bias unless it is withheld or has none for a pollutant x lead hour, then the bias of the
    nearest learning station that has one (``nearest``) or the mean over the learning
    stations (``mean``). Returns columns station, pollutant, lead_hours, bias, source (the
    station whose bias is used, or ``mean``)."""
    if method not in ("nearest", "mean"):
        raise ValueError(f"transfer method must be 'nearest' or 'mean', got {method!r}")
    cols = ["station", "pollutant", "lead_hours", "bias", "source"]
    withheld = {str(s) for s in withheld}
    st = state[~state["station"].astype(str).isin(withheld)].copy()
    if st.empty or stations.empty:
        return pd.DataFrame(columns=cols)
    st["station"] = st["station"].astype(str)
    stations = stations.assign(station=stations["station"].astype(str))\
        .drop_duplicates("station")
    coords = stations.set_index("station")[["lon", "lat"]].astype(float)
    own = st.set_index(KEY)["bias"]
    keys = st[["pollutant", "lead_hours"]].drop_duplicates()
    mean = st.groupby(["pollutant", "lead_hours"])["bias"].mean()
    out = []
    for s in stations["station"]:
        lon, lat = coords.loc[s, "lon"], coords.loc[s, "lat"]
        learners = [t for t in st["station"].unique() if t != s and t in coords.index]
        dist = _km(lon, lat, coords.loc[learners, "lon"].to_numpy(),
                   coords.loc[learners, "lat"].to_numpy()) if learners else np.array([])
        order = [learners[i] for i in np.argsort(dist, kind="stable")]
        for p, h in keys.itertuples(index=False):
            if s not in withheld and (s, p, h) in own.index:
                out.append((s, p, h, float(own[(s, p, h)]), s))
            elif method == "mean":
                out.append((s, p, h, float(mean[(p, h)]), "mean"))
            else:
                src = next((t for t in order if (t, p, h) in own.index), None)
                if src is not None:
                    out.append((s, p, h, float(own[(src, p, h)]), src))
    return pd.DataFrame(out, columns=cols)


def apply_correction(hourly: pd.DataFrame, init_local, biases: pd.DataFrame,
                     form: str = "additive"):
    """Correct the station forecast ``hourly`` (local hour-beginning index ``time``, column
    station, one column per pollutant, reporting units) by the biases
    (:func:`corrected_forecast` of ``form``); values floored at 0.
    Returns (the corrected table in the same layout, a long table station, time, lead_hours,
    pollutant, fcst_raw, bias, fcst, source)."""
    fc = hourly.reset_index()
    fc["lead_hours"] = np.rint((fc["time"] - pd.Timestamp(init_local))
                               / pd.Timedelta(hours=1)).astype(int)
    pols = [p for p in _surf.POLLUTANT_VARS if p in fc]
    long = fc.melt(id_vars=["time", "station", "lead_hours"], value_vars=pols,
                   var_name="pollutant", value_name="fcst_raw")
    long["station"] = long["station"].astype(str)
    long = long.merge(biases, on=KEY, how="left")
    long["bias"] = long["bias"].fillna(0.0)
    long["source"] = long["source"].fillna("")
    long["fcst"] = corrected_forecast(long["fcst_raw"], long["bias"],
                                      long["pollutant"].astype(str), form)
    wide = long.pivot_table(index=["time", "station"], columns="pollutant", values="fcst",
                            dropna=False).reset_index()
    wide.columns.name = None
    corrected = wide.set_index("time")[["station", *pols]]
    return corrected, long[["station", "time", "lead_hours", "pollutant", "fcst_raw", "bias",
                            "fcst", "source"]]


def read_state(path) -> pd.DataFrame:
    """A ``bias_state.csv`` written by :func:`write_state` (exit-2 errors naming the file)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: bias-correction state file does not exist")
    try:
        st = pd.read_csv(path, dtype={"station": str, "pollutant": str, "units": str})
    except (ValueError, pd.errors.ParserError) as e:
        raise InputFileError(f"{path}: not a readable CSV ({e})") from None
    missing = [c for c in STATE_COLUMNS if c not in st and c != "form"]
    if missing:
        raise InputFileError(f"{path}: bias state lacks column(s) {', '.join(missing)}")
    for col, convert in (("last_init", pd.to_datetime), ("lead_hours", lambda c: c.astype(int)),
                         ("n_updates", lambda c: c.astype(int))):
        try:
            st[col] = convert(st[col])
        except (ValueError, TypeError) as e:
            raise InputFileError(f"{path}: column {col}: expected "
                                 f"{'ISO times' if col == 'last_init' else 'integers'} ({e})") \
                from None
    st["units"] = st["units"].fillna("")
    if "form" not in st:
        st["form"] = "additive"  # files written before the multiplicative form
    st["form"] = st["form"].fillna("additive").astype(str)
    bad = sorted(set(st["form"]) - set(FORMS))
    if bad:
        raise InputFileError(f"{path}: column form: {', '.join(bad)}; expected "
                             f"{' or '.join(FORMS)}")
    return st[STATE_COLUMNS]


def write_state(state: pd.DataFrame, path) -> Path:
    from ..io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        state[STATE_COLUMNS].to_csv(tmp, index=False, float_format="%.10g",
                                    date_format="%Y-%m-%dT%H:%M:%S")
    return path


def bias_correct_run(cfg, run_dir, history, out_dir, state_path=None, obs_path=None,
                     ratio: float = DEFAULT_RATIO, method: str = "nearest",
                     form: str = "additive") -> list[Path]:
    """The ``aqforecast bias-correct`` stage: learn the station biases from the verification
    directories ``history`` (``paired.csv`` of earlier cycles' ``aqforecast verify``; pairs
    valid before the run's start only, withheld stations never), starting from the state file
    ``state_path`` (the previous cycle's ``bias_state.csv``) if given, and correct the station
    forecast of ``run_dir`` (``form``: additive or multiplicative, module docstring; the
    ``bias`` column of ``corrected.csv`` is then in the state's units: reporting units or ln).
    Writes in ``out_dir``: ``bias_state.csv``, ``corrected.csv``
    (station, time, lead_hours, pollutant, fcst_raw, bias, fcst, source) and ``_SUCCESS``;
    with ``obs_path`` also ``verification/`` (as ``aqforecast verify`` writes it, for the
    corrected forecast)."""
    from ..config import resolve_path
    from ..io.rundir import require_success, write_success
    from . import tables as _tables
    from .verify import read_obs, station_cities, station_forecast, write_scores

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    _check_form(form)
    local = cfg.time.local_time
    withheld = list(cfg.verification.withheld_stations or [])
    obs = read_obs(cfg, obs_path, local) if obs_path is not None else None
    coords = cfg.inputs.observations.station_coords
    if coords is not None:
        stations = _tables.station_table(resolve_path(cfg, coords))[["station", "lon", "lat"]]
    elif obs is not None:
        stations = obs.groupby("station", as_index=False)[["lon", "lat"]].first()
    else:
        raise InputFileError("bias-correct: no station list: set inputs.observations."
                             "station_coords in the config or give --obs")
    hourly, init_local = station_forecast(cfg, run_dir, stations, local)
    state = read_state(state_path) if state_path is not None else empty_state()
    parts = []
    for h in history:
        h = Path(h)
        require_success(h, "verification")
        f = h / "paired.csv"
        if not f.is_file():
            raise InputFileError(f"{h}: no paired.csv (not an `aqforecast verify` directory)")
        p = pd.read_csv(f, dtype={"station": str})
        if len(p):
            parts.append(p)
    pairs = (learning_pairs(pd.concat(parts, ignore_index=True), withheld, init_local, form)
             if parts else pd.DataFrame(columns=KEY + ["init", "error"]))
    state = learn(state, pairs, ratio, withheld, form)
    biases = transfer(state, stations, withheld, method)
    corrected, long = apply_correction(hourly, init_local, biases, form)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_state(state, out_dir / "bias_state.csv")]
    from ..io import atomic_path

    with atomic_path(out_dir / "corrected.csv") as tmp:
        long.to_csv(tmp, index=False, float_format="%.6g")
    paths.append(out_dir / "corrected.csv")
    log.info("bias correction of %s: %d pairs learned from %d verification(s), state %d keys "
             "(%d stations, withheld %s), ratio %g, transfer %s, %s", run_dir, len(pairs),
             len(history), len(state), state["station"].nunique() if len(state) else 0,
             ", ".join(withheld) or "none", ratio, method, form)
    if obs is not None:
        write_scores(corrected, obs, init_local, station_cities(cfg), out_dir / "verification",
                     {"stage": "verify", "run": str(run_dir), "obs": str(obs_path),
                      "bias_correction": str(out_dir)},
                     what=f"{run_dir} (bias-corrected) against {obs_path}")
        paths.append(out_dir / "verification" / "_SUCCESS")
    paths.append(write_success(out_dir, paths, {
        "stage": "bias-correct", "run": str(run_dir), "history": [str(h) for h in history],
        "state": None if state_path is None else str(state_path), "ratio": ratio,
        "transfer": method, "form": form, "withheld": withheld, "pairs_learned": int(len(pairs))}))
    return paths
