"""The analysis step of a cycle: a background run's state at T corrected by station observations.

``aqforecast assimilate CONFIG --background RUN --obs OBS --out DIR [--time T] [--method oi]``:

1. background: ``RUN/restart/<T>/initial_<domain>.nc`` (the forecast's ``--initial`` layout;
   T defaults to the run's last output time, its cycle start + lead in ``RUN/_SUCCESS``: the
   forecast always writes a restart at its end);
2. observations: an ``obs.nc`` of the observation stage or a generic CSV
   (:mod:`aqforecast.observations.generic`); the hourly means that ended at T (hour beginning
   T - 1 h), QC flag 0 only;
3. per domain and analysed quantity (``assimilation.species``: PM25, O3, NO2, ...): the surface
   model equivalent (:mod:`aqforecast.observations.operator`), optimal interpolation (:func:`.oi.
   optimal_interpolation`) with ``B_ij = s_i s_j GC(d_ij; length_km)``, ``s = rel x xb``, and
   ``R`` from :func:`aqforecast.observations.operator.observation_error`; observations failing the gross-error
   check ``|O-B| > k sqrt(HBH^T + R(Hxb))`` are rejected (listed); the innovations' estimate
   of a factor of B's variances (:func:`.inflation.covariance_inflation`, Desroziers et al.
   2005 / Li et al. 2009) is reported and, with ``inflation_adaptive``, applied (its prior the
   previous analysis' factor, ``inflation_prior``, else 1). ``--method letkf``: the
   background error comes from an ensemble of background runs,
   ``RUN/ensemble/<member>/restart/<T>/initial_<domain>.nc`` (>= 3 members; e.g. forecasts with
   perturbed emissions and initial states): :func:`.letkf.letkf_analysis` (Hunt et al. 2007;
   Gaspari-Cohn R-localisation with half-width ``length_km``; multiplicative inflation: the
   fixed ``inflation``, or with ``inflation_adaptive`` the estimate from this analysis'
   innovations per domain and quantity (:mod:`.inflation`: Li et al. 2009 with Miyoshi 2011's
   Gaussian prior -- the previous analysis' value, ``inflation_prior``, else ``inflation`` --
   bounded to [1, ``inflation_max``]); ``rtps_alpha``: relaxation to prior spread) analyses
   every member of the ensemble recentred (multiplicatively, :func:`recentre`) on the control,
   so that the control's analysis is the members' mean analysis from the control's own
   innovations; each member's analysis is written to
   ``DIR/ensemble/<member>/initial_<domain>.nc`` for the next ensemble cycle;
4. the surface analysis becomes a ratio ``r = xa / xb`` (clipped to [1/max_ratio, max_ratio])
   applied to the analysed species as ``x_k r^w_k`` (:func:`vertical_weights`): ``w = 1`` in
   every layer whose centre lies below the analysis depth ``h``, the highest boundary layer of
   the ``mixed_layer_hours`` (24) up to T -- at night and in the morning the residual layer of
   the previous afternoon's mixed layer, not only the shallow stable layer at T: the surface
   air was part of that mixed layer hours before, its error is shared with it, and the
   residual layer mixes down again when the boundary layer grows (Stull 1988, *An
   Introduction to Boundary Layer Meteorology*, 1.5 and 11); a correction confined to a
   200 m nocturnal layer is diluted ~8-fold by midday. Above ``h`` the log-ratio decays as
   ``exp(-(z - h) / (vertical_decay h))`` (0.3 h: the order of the entrainment zone, Stull
   1988 11.1; weights below 1 % cut to 0), and the free troposphere keeps the background.
   ``mixed_layer_hours: 0, vertical_decay: 0`` is the PBL at T with a sharp cut. PM25
   scales every PM2.5 component alike, NO2 scales NO too (the NOx partition of the
   background is kept), O3 / SO2 / CO themselves;
   TROPOMI NO2 columns (``satellite_no2.nc`` beside OBS, or ``satellite=``; written by the
   observation stage, :mod:`aqforecast.observations.collect`): analysed *before* the NO2
   stations, in sequence. The model equivalent of a superobservation is the averaging-kernel
   column of the background NO2 (:func:`aqforecast.observations.satellite.
   superobs_column_kernels`: each pixel's AK_trop = AK AMF / AMF_trop on the TM5 layers applied
   to the profile of the cell it is averaged into, pixel-area weighted). The column increment
   is one ratio field of the surface NO2, ``r = s_a / s_b``, applied to NO2 and NO in *every*
   model layer (the background profile shape and NOx partition kept; a column says little
   about where in the vertical the error is), which makes the column exactly linear in
   ``s`` (:mod:`.satellite`); the same OI (B from ``length_km`` and the NO2
   ``background_error``) or LETKF solves it, with the superobs errors of the file, the
   analysis window [T - window_hours, T] of the file and the gross-error check. The station
   NO2 analysis then corrects the boundary layer of that state as above. The columns' O-A is
   the operator on the final state; their statistics are the ``NO2_column`` rows (mol m-2);
5. ``DIR/initial_<domain>.nc`` (valid at T, the ``--initial`` layout), ``DIR/increments_
   <domain>.nc`` (surface increments in obs units), ``DIR/innovations.csv`` (one row per
   observation: O, B, A, sigma_o, used or why not), ``DIR/statistics.csv`` (per domain and
   quantity: n used/rejected, mean and RMS of O-B and O-A, chi^2; ``NO2_column`` rows for the
   satellite columns, chi^2 of their own block d^T (H B H^T + R)^-1 d / n; the station
   quantities' inflation applied -- the LETKF's, or the OI's factor of B -- its innovation
   estimate and sd, the prior), ``DIR/inflation.json`` (the same per domain and quantity, the
   next cycle's ``inflation_prior``), then
   ``_SUCCESS``.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import species as species_registry
from ..species import PM25_COMPONENTS
from ..config import ConfigError, RunConfig, resolve_path
from ..grid import grids_from_config
from ..io import InputFileError, atomic_path, write_dataset
from ..io.initial_state import initial_state_path
from ..io.rundir import require_success, write_success
from ..observations.operator import StationOperator, model_equivalent, observation_error
from ..observations.table import read_observations_at
from ..observations.satellite import superobs_column_kernels
from .inflation import adaptive_inflation
from .letkf import letkf_analysis
from .oi import (DistanceCovariance, gaspari_cohn, observed_covariance,
                 optimal_interpolation)
from .satellite import (column_observation_operator, innovation_chi2, read_superobservations,
                        satellite_file_for)

__all__ = ["assimilate", "SCALED_SPECIES", "analysis_depth", "vertical_weights", "recentre",
           "read_inflation", "INFLATION_FILE"]

log = logging.getLogger(__name__)

#: the analysed LETKF inflation per domain and quantity, beside statistics.csv
INFLATION_FILE = "inflation.json"

#: model species scaled by the analysis ratio of each observed quantity
SCALED_SPECIES = {"PM25": PM25_COMPONENTS, "PM10": PM25_COMPONENTS + ("PPM10",),
                  "O3": ("O3",), "NO2": ("NO2", "NO"), "SO2": ("SO2",), "CO": ("CO",)}


def analysis_depth(met, t, hours: float) -> np.ndarray:
    """The depth (m above ground, (ny, nx)) through which the surface ratio applies in full:
    the highest boundary-layer height of the met records in [t - hours, t] and at t itself
    (records before the met's first time are skipped; ``hours = 0``: the PBL at t)."""
    t = np.datetime64(t, "s")
    depth = np.asarray(met.field("pblh", t), dtype=float)
    if hours > 0:
        times = np.asarray(met.times).astype("datetime64[s]")
        lo = t - np.timedelta64(int(round(hours * 3600)), "s")
        for tt in times[(times >= lo) & (times < t)]:
            depth = np.maximum(depth, met.field("pblh", tt))
    return depth


def vertical_weights(z_centre, depth, decay: float, cut: float = 0.01) -> np.ndarray:
    """Exponent ``w`` (nz, ny, nx) in [0, 1] of the analysis ratio per layer: 1 where the layer
    centre ``z_centre`` (nz, ny, nx, m) lies at or below ``depth`` (ny, nx, m; at least the
    lowest layer), ``exp(-(z - h) / (decay h))`` above (``decay = 0``: 0), 0 below ``cut``."""
    z = np.asarray(z_centre, dtype=float)
    h = np.maximum(np.asarray(depth, dtype=float), z[0])[None]
    if decay > 0:
        w = np.exp(-np.maximum(z - h, 0.0) / (decay * h))
    else:
        w = (z <= h).astype(float)
    w[z <= h] = 1.0
    w[w < cut] = 0.0
    return w


def _apply_ratio(v: np.ndarray, ratio: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``v r^w`` layer by layer (``w = 0``: v unchanged, bit for bit)."""
    return np.where(w > 0, v * np.power(ratio[None], w), v)


def _background_dir(run: Path, time) -> tuple[Path, np.datetime64]:
    restart = run / "restart"
    if not restart.is_dir():
        raise InputFileError(f"{run}: no restart/ directory (not a forecast run directory)")
    stamps = sorted(p.name for p in restart.iterdir() if p.is_dir())
    if time is None:  # the run's last output time (its manifest: cycle start + lead)
        done = require_success(run, "forecast")
        try:
            end = np.datetime64(str(done["cycle_start"]).replace(" ", "T"), "s") + \
                np.timedelta64(int(done["lead_hours"]), "h")
        except (KeyError, ValueError):
            raise InputFileError(f"{run}/_SUCCESS: no cycle_start/lead_hours to find the "
                                 f"run's last output time; give --time") from None
        stamp = str(np.datetime64(end, "h"))
    else:
        stamp = str(np.datetime64(time, "h"))
    if stamp not in stamps:
        raise InputFileError(f"{restart}: no background state at {stamp}; the run has "
                             f"{', '.join(stamps) or 'none'}")
    return restart / stamp, np.datetime64(stamp, "s")


def _ensemble_dirs(run: Path, t) -> list[Path]:
    """``RUN/ensemble/<member>/restart/<T>/`` of every member (>= 3 needed for LETKF)."""
    stamp = str(np.datetime64(t, "h"))
    root = run / "ensemble"
    dirs = sorted(p / "restart" / stamp for p in root.iterdir() if p.is_dir()) \
        if root.is_dir() else []
    missing = [d for d in dirs if not d.is_dir()]
    if missing:
        raise InputFileError(f"{missing[0]}: ensemble member without a state at {stamp}")
    if len(dirs) < 3:
        raise InputFileError(
            f"{root}: --method letkf needs an ensemble of background runs, "
            f"{root}/<member>/restart/{stamp}/initial_<domain>.nc for at least 3 members "
            f"(found {len(dirs)}); make them with perturbed forecasts or use --method oi")
    return dirs


def _surface_fields(ds: xr.Dataset) -> tuple[dict, np.ndarray]:
    """Model surface fields in model units from an initial-state dataset in file units (ppb,
    ug m-3): gases mol mol-1, aerosols as ug m-3 / 1e9 with density 1 (so that
    :func:`model_equivalent`'s kg kg-1 x rho x 1e9 gives back ug m-3)."""
    surface = {}
    for name in ds.data_vars:
        if "lev" not in ds[name].dims or not species_registry.is_known(str(name)):
            continue  # (ps and other CF coordinate variables)
        v = ds[name].isel(lev=0).values.astype(float)
        unit = str(ds[name].attrs.get("units", ""))
        surface[name] = v * 1e-9 if unit in ("ppb", "ug m-3") else v
    return surface, np.ones(next(iter(surface.values())).shape)


def assimilate(cfg: RunConfig, background: str | Path, obs: str | Path, out_dir: str | Path,
               time=None, method: str | None = None, satellite: str | Path | None = None,
               inflation_prior: str | Path | None = None) -> list[Path]:
    """Run the analysis (module docstring); return the written paths. ``satellite``: a
    ``satellite_no2.nc`` (default: the one beside ``obs``, if any); ``inflation_prior``: a
    previous analysis directory or its ``inflation.json`` whose LETKF inflation per domain and
    quantity is this analysis' prior (adaptive inflation; default ``assimilation.inflation``)."""
    from ..met import MetProvider

    method = method or cfg.assimilation.method
    if method not in ("oi", "letkf"):
        raise ConfigError(f"--method {method!r}: expected oi or letkf")
    acfg = cfg.assimilation
    priors = read_inflation(inflation_prior) if inflation_prior is not None else {}
    bdir, t = _background_dir(Path(background), time)
    members = _ensemble_dirs(Path(background), t) if method == "letkf" else []
    table = read_observations_at(obs, t)
    withheld = set(cfg.verification.withheld_stations)
    if withheld:  # independent verification stations never enter the analysis
        table = table[~table["station"].astype(str).isin(withheld)].reset_index(drop=True)
        log.info("assimilate: %d withheld station(s) excluded: %s", len(withheld),
                 ", ".join(sorted(withheld)))
    sat_path = satellite_file_for(obs, satellite)
    sat = read_superobservations(sat_path) if sat_path is not None else None
    sat_window = np.timedelta64(int(
        sat.attrs.get("window_hours", cfg.inputs.observations.window_hours)
        if sat is not None else 0), "h")
    if sat is not None:
        log.info("assimilate: %d TROPOMI NO2 superobservations from %s", sat.sizes["obs"],
                 sat_path)
    quantities = [q for q in acfg.species
                  if q in table or (q == "NO2" and sat is not None and sat.sizes["obs"])]
    if not quantities:
        raise InputFileError(f"{obs}: none of the analysed quantities {acfg.species} at {t}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grids = grids_from_config(cfg)
    rows, stats, paths = [], [], []
    inflation: dict[str, dict] = {}
    for name, grid in grids.items():
        src = initial_state_path(bdir, name)
        if not src.exists():
            raise InputFileError(f"{src}: background state of domain {name} missing")
        with xr.open_dataset(src) as ds:
            ds = ds.load()
        surface, rho = _surface_fields(ds)
        ens = []
        for mdir in members:
            with xr.open_dataset(initial_state_path(mdir, name)) as mds:
                ens.append(mds.load())
        ens_surface = [_surface_fields(m)[0] for m in ens]
        lon2d, lat2d = grid.lonlat
        ok = np.isfinite(table["lon"].to_numpy(float)) & np.isfinite(table["lat"].to_numpy(float))
        op = StationOperator(lon2d, lat2d, table["lon"].to_numpy(float)[ok],
                             table["lat"].to_numpy(float)[ok])
        sub = table[ok].reset_index(drop=True)
        xx, yy = np.meshgrid(grid.x / 1000.0, grid.y / 1000.0)
        cell_xy = np.column_stack([xx.ravel(), yy.ravel()])
        dx_km = float(np.sqrt(np.mean(grid.cell_area)) / 1000.0)
        met = MetProvider.from_config(cfg, name, grids)
        try:
            s = met.state(t)
            # the layers the surface ratio reaches (module docstring, 4)
            w_vert = vertical_weights(s.z_centre, analysis_depth(met, t, acfg.mixed_layer_hours),
                                      acfg.vertical_decay)
            # model interface pressures (eta levels of the dry hydrostatic pressure), Pa
            p_int = np.asarray(grid.vertical.eta_interfaces)[:, None, None] * s.mu_dry[None] \
                + grid.vertical.p_top
        finally:
            met.close()
        increments = xr.Dataset(coords={"y": ds["y"], "x": ds["x"]} if "x" in ds.coords
                                else None)
        for q in quantities:
            col = None
            if q == "NO2" and sat is not None:
                # first the columns (whole-column ratio), then the stations on that (PBL ratio)
                col = _column_analysis(sat, sat_window, t, name, ds, ens, p_int, cell_xy,
                                       acfg, method, _prior(priors, name, "NO2_column", acfg))
                if col is not None and col.inflation is not None:
                    inflation.setdefault(name, {})["NO2_column"] = col.inflation
                if col is not None:
                    surface, rho = _surface_fields(ds)
                    ens_surface = [_surface_fields(m)[0] for m in ens]
            xb = model_equivalent(q, surface, rho)
            y_all = sub[q].to_numpy(float) if q in sub else np.full(len(sub), np.nan)
            use = op.inside & np.isfinite(y_all)
            # errors proportional to the background equivalent, not to the observed value
            # (weights from observed values favour low draws and bias the analysis low)
            hb_all = op.H @ xb.ravel()  # the background at every station (0 outside)
            sig_o = observation_error(q, hb_all, dx_km)
            rel = acfg.background_error.get(q, 0.5)
            sigma_b = np.maximum(rel * xb.ravel(), 1e-6 * max(float(xb.max()), 1e-30))
            H = op.H[np.flatnonzero(use)]
            y = y_all[use]
            hxb = hb_all[use]
            # gross-error check against the innovation's expected spread (H sigma_b: the
            # bilinear mean of the background error, a close bound of sqrt(H B H^T); the
            # observation error here from the background equivalent, so that an absurd value
            # does not widen its own acceptance)
            rho_b = _prior(priors, name, q, acfg)
            if ens:  # the ensemble's own spread at the stations (inflated by the prior)
                Xb_own = np.stack([model_equivalent(q, f, rho).ravel() for f in ens_surface])
                Xb = recentre(Xb_own, xb.ravel())
                b_spread = np.std(np.asarray(H @ Xb.T), axis=1, ddof=1) * np.sqrt(rho_b)
            else:
                b_spread = H @ sigma_b
            spread = np.sqrt(b_spread ** 2 + sig_o[use] ** 2)
            gross = np.abs(y - hxb) > acfg.gross_error_sigmas * spread
            keep = ~gross
            reason = np.full(len(sub), "", dtype=object)
            reason[~op.inside] = "outside the domain"
            reason[op.inside & ~np.isfinite(y_all)] = "missing or QC-flagged"
            idx_use = np.flatnonzero(use)
            reason[idx_use[gross]] = f"gross error (|O-B| > {acfg.gross_error_sigmas:g} sigma)"
            xa = xb.ravel().copy()
            diag_chi2 = float("nan")
            member_ratio = None
            infl = None
            if keep.any() and not ens:
                Hk = H[np.flatnonzero(keep)]
                r2 = sig_o[use][keep] ** 2
                infl = _oi_inflation(acfg, _prior(priors, name, q, acfg, default=1.0),
                                     y[keep] - Hk @ xb.ravel(), Hk, r2, cell_xy, sigma_b)
                inflation.setdefault(name, {})[q] = infl
                xa, diag = optimal_interpolation(
                    xb.ravel(), Hk, y[keep], r2, cell_xy=cell_xy,
                    sigma_b=sigma_b * np.sqrt(infl["applied"]), length_km=acfg.length_km)
                xa = np.maximum(xa, 0.0)
                diag_chi2 = diag.chi2
            elif keep.any():
                Hk = H[np.flatnonzero(keep)]
                Yb = np.asarray(Hk @ Xb.T).T
                r2 = sig_o[use][keep] ** 2
                sx, sy = grid.to_xy(sub["lon"].to_numpy(float)[use][keep],
                                    sub["lat"].to_numpy(float)[use][keep])
                obs_xy = np.column_stack([sx, sy]) / 1000.0
                d = y[keep] - Hk @ xb.ravel()
                infl = _letkf_inflation(acfg, rho_b, d, Yb, r2, obs_xy)
                inflation.setdefault(name, {})[q] = infl
                Xa = letkf_analysis(Xb, Yb, y[keep], r2, cell_xy, obs_xy, acfg.length_km,
                                    infl["applied"], rtps_alpha=acfg.rtps_alpha)
                Xa = np.maximum(Xa, 0.0)
                # the ensemble is centred on the control: its mean analysis is the control's
                xa = np.maximum(xb.ravel() + Xa.mean(axis=0) - Xb.mean(axis=0), 0.0)
                # each member's analysis relative to its own background state
                member_ratio = np.where(Xb_own > 0, Xa / np.where(Xb_own > 0, Xb_own, 1.0), 1.0)
                member_ratio = np.clip(member_ratio, 1.0 / acfg.max_ratio, acfg.max_ratio)
                diag_chi2 = _ensemble_chi2(Yb, d, r2, infl["applied"])
            xa = xa.reshape(xb.shape)
            ratio = np.where(xb > 0, xa / np.where(xb > 0, xb, 1.0), 1.0)
            ratio = np.clip(ratio, 1.0 / acfg.max_ratio, acfg.max_ratio)
            for sp in SCALED_SPECIES[q]:
                if sp in ds:
                    ds[sp].values = _apply_ratio(ds[sp].values, ratio, w_vert)
                for m, mds in enumerate(ens):
                    if sp in mds and member_ratio is not None:
                        r = member_ratio[m].reshape(xb.shape)
                        mds[sp].values = _apply_ratio(mds[sp].values, r, w_vert)
            hxa = op.H @ (ratio * xb).ravel()
            increments[f"{q}_increment"] = (("y", "x"), ratio * xb - xb,
                                            {"units": "mg m-3" if q == "CO" else "ug m-3",
                                             "long_name": f"surface analysis increment of {q}"})
            for k in range(len(sub)):
                rows.append({"domain": name, "quantity": q, "station": sub["station"].iloc[k],
                             "lon": sub["lon"].iloc[k], "lat": sub["lat"].iloc[k],
                             "observed": y_all[k],
                             "background": hb_all[k] if op.inside[k] else np.nan,
                             "analysis": hxa[k] if op.inside[k] else np.nan,
                             "sigma_o": sig_o[k], "used": reason[k] == "",
                             "reason": reason[k]})
            used = np.array([r == "" for r in reason])
            omb = y_all[used] - hb_all[used]
            oma = y_all[used] - hxa[used]
            stats.append({"domain": name, "quantity": q, "n_used": int(used.sum()),
                          "n_rejected": int(sum(str(r).startswith("gross") for r in reason)),
                          "mean_omb": _m(omb), "rms_omb": _rms(omb), "mean_oma": _m(oma),
                          "rms_oma": _rms(oma), "chi2": diag_chi2, **_inflation_columns(infl)})
            log.info("%s %s: %d obs used, RMS O-B %.3g -> O-A %.3g, chi2 %.2f%s", name, q,
                     used.sum(), _rms(omb), _rms(oma), diag_chi2, _inflation_log(infl))
            if col is not None:  # O-A of the columns on the final analysis
                _column_rows(col, name, ds["NO2"].values.reshape(col.K.shape[1], -1) * 1e-9,
                             rows, stats)
        for mdir, mds in zip(members, ens):
            mds.attrs.update({"analysis_method": "LETKF member", "analysis_background":
                              str(initial_state_path(mdir, name))})
            paths.append(write_dataset(mds, initial_state_path(
                out_dir / "ensemble" / mdir.parent.parent.name, name), 1))
        ds.attrs.update({"analysis_method": "optimal interpolation" if not ens else
                         f"LETKF ({len(ens)} members recentred on the control)",
                         "analysis_background": str(src), "analysis_observations":
                         str(obs) + (f" {sat_path}" if sat is not None else ""),
                         "analysis_quantities": " ".join(quantities)})
        paths.append(write_dataset(ds, initial_state_path(out_dir, name), 1))
        paths.append(write_dataset(increments, out_dir / f"increments_{name}.nc", 1))
    paths.append(_write_csv(out_dir / "innovations.csv", rows))
    paths.append(_write_csv(out_dir / "statistics.csv", stats))
    paths.append(_write_inflation(out_dir / INFLATION_FILE, acfg, t, inflation,
                                  inflation_prior))
    paths.append(write_success(out_dir, paths, {"stage": "assimilate", "time": str(t),
                                                "method": method}))
    return paths


@dataclass
class _Columns:
    """The satellite superobservations of one domain in one analysis (O, B, operator)."""

    index: np.ndarray     # positions along the file's obs dim
    cell: np.ndarray      # flat cell index
    lon: np.ndarray
    lat: np.ndarray
    y: np.ndarray         # observed column, mol m-2
    sigma: np.ndarray     # superobs error, mol m-2
    K: np.ndarray         # (nobs, nz) column kernels on the model layers, mol m-2 / mol mol-1
    hb: np.ndarray        # background column, mol m-2
    keep: np.ndarray      # used in the analysis
    reason: np.ndarray    # why not
    chi2: float = float("nan")
    inflation: dict | None = None  # the LETKF's inflation estimate (_letkf_inflation)


def _column_analysis(sat, window, t, domain, ds, ens, p_int, cell_xy, acfg, method,
                     rho_b: float | None = None):
    """Analyse the domain's NO2 columns (:mod:`.satellite`): one ratio of the surface NO2 field
    applied to NO2 and NO in every model layer (the background profile shape kept), OI or
    LETKF as the stations; ``ds`` and the members ``ens`` are updated in place. ``rho_b``: the
    LETKF's prior inflation (default ``acfg.inflation``). Returns the columns with their
    background and use, or None when the domain has none."""
    rho_b = float(acfg.inflation if rho_b is None else rho_b)
    if "NO2" not in ds:
        return None
    index, cell, K = superobs_column_kernels(sat, domain, p_int)
    if index.size == 0:
        return None
    if str(ds["NO2"].attrs.get("units", "ppb")) != "ppb":
        raise InputFileError(f"NO2 of the background in {ds['NO2'].attrs.get('units')!r}; "
                             f"ppb expected")
    nz = p_int.shape[0] - 1
    surface, rho = _surface_fields(ds)
    xb = model_equivalent("NO2", surface, rho).ravel()
    vmr = ds["NO2"].values.reshape(nz, -1) * 1e-9
    layers = np.ones(vmr.shape, dtype=bool)  # the whole column is scaled
    H, offset, hb = column_observation_operator(K, cell, vmr, layers, xb)
    y = sat["no2_tropospheric_column"].values[index].astype(float)
    sig = sat["no2_tropospheric_column_error"].values[index].astype(float)
    tt = sat["time"].values[index].astype("datetime64[ns]")
    reason = np.full(index.size, "", dtype=object)
    intime = ~np.isnat(tt) & (tt >= t - window) & (tt <= t)
    reason[~intime] = f"outside the analysis window [T - {window}, T]"
    ok = intime & np.isfinite(y) & np.isfinite(sig) & (sig > 0) & np.isfinite(hb)
    reason[intime & ~ok] = "invalid column, error or operator"
    rel = acfg.background_error.get("NO2", 0.5)
    sigma_b = np.maximum(rel * xb, 1e-6 * max(float(xb.max()), 1e-30))
    Xb_own = np.stack([model_equivalent("NO2", *_surface_fields(m)).ravel() for m in ens]) \
        if ens else None
    Xb = recentre(Xb_own, xb) if ens else None
    if Xb is not None:
        b_spread = np.std(np.asarray(H @ Xb.T), axis=1, ddof=1) * np.sqrt(rho_b)
    else:
        b_spread = H @ sigma_b
    spread = np.sqrt(b_spread ** 2 + np.where(ok, sig, 0.0) ** 2)
    gross = ok & (np.abs(np.where(ok, y - hb, 0.0)) > acfg.gross_error_sigmas * spread)
    reason[gross] = f"gross error (|O-B| > {acfg.gross_error_sigmas:g} sigma)"
    keep = ok & ~gross
    col = _Columns(index, cell, sat["lon"].values[index], sat["lat"].values[index], y, sig, K,
                   hb, keep, reason)
    if not keep.any():
        return col
    k = np.flatnonzero(keep)
    Hk, yk, r2 = H[k], y[k] - offset[k], sig[k] ** 2
    member_ratio = None
    if Xb is None:
        B = DistanceCovariance(cell_xy, sigma_b, acfg.length_km)
        xa, _ = optimal_interpolation(xb, Hk, yk, r2, B)
        col.chi2 = innovation_chi2(Hk, (y - hb)[k], r2, B)
    else:
        Yb = np.asarray(Hk @ Xb.T).T
        col.inflation = _letkf_inflation(acfg, rho_b, (y - hb)[k], Yb, r2, cell_xy[cell[k]])
        Xa = np.maximum(letkf_analysis(Xb, Yb, yk, r2, cell_xy, cell_xy[cell[k]],
                                       acfg.length_km, col.inflation["applied"],
                                       rtps_alpha=acfg.rtps_alpha), 0.0)
        xa = xb + Xa.mean(axis=0) - Xb.mean(axis=0)
        member_ratio = np.clip(np.where(Xb_own > 0, Xa / np.where(Xb_own > 0, Xb_own, 1.0), 1.0),
                               1.0 / acfg.max_ratio, acfg.max_ratio)
        col.chi2 = _ensemble_chi2(Yb, (y - hb)[k], r2, col.inflation["applied"])
    xa = np.maximum(xa, 0.0)
    ratio = np.clip(np.where(xb > 0, xa / np.where(xb > 0, xb, 1.0), 1.0),
                    1.0 / acfg.max_ratio, acfg.max_ratio).reshape(ds["NO2"].shape[1:])
    for sp in SCALED_SPECIES["NO2"]:
        if sp in ds:
            ds[sp].values = ds[sp].values * ratio[None]
        for m, mds in enumerate(ens):
            if sp in mds and member_ratio is not None:
                mds[sp].values = mds[sp].values * member_ratio[m].reshape(ratio.shape)[None]
    log.info("%s NO2 columns (%s): %d of %d superobservations used, column ratio %.3g .. %.3g",
             domain, method, keep.sum(), keep.size, ratio.min(), ratio.max())
    return col


def recentre(Xb: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """The ensemble ``Xb`` (k, n) recentred multiplicatively on the control ``xb`` (n,):
    ``Xb x xb / mean(Xb)`` per cell (cells with a zero ensemble mean: unchanged). The relative
    spread (what B is) is kept, the members stay >= 0, and the mean becomes the control, so the
    LETKF's mean analysis is the control's own analysis from the control's innovations
    ``y - H xb``. Without it the control took the increment computed for the ensemble mean,
    whose innovations differ from its own wherever the members are not centred on it (members
    with lognormal emission factors of median 1 have a mean above the control)."""
    mean = Xb.mean(axis=0)
    factor = np.where(mean > 0, xb / np.where(mean > 0, mean, 1.0), 1.0)
    return Xb * factor[None]


def _ensemble_chi2(Yb, d, r2, inflation) -> float:
    """``d^T S^-1 d / n`` with ``S`` the inflated ensemble covariance of Yb (k, n) + R."""
    if len(d) == 0:
        return float("nan")
    S = np.cov(Yb.T, ddof=1).reshape(len(d), len(d)) * inflation + np.diag(r2)
    return float(d @ np.linalg.solve(S, d)) / len(d)


def _column_rows(col: _Columns, domain, vmr_a, rows, stats):
    """innovations.csv rows (quantity ``NO2_column``, mol m-2; station ``TROPOMI:<cell>``) and
    the statistics.csv row of the satellite columns; O-A from the final NO2 ``vmr_a`` (nz,
    ncell), mol mol-1."""
    hxa = np.sum(col.K * np.asarray(vmr_a)[:, col.cell].T, axis=1)
    for k in range(col.index.size):
        rows.append({"domain": domain, "quantity": "NO2_column",
                     "station": f"TROPOMI:{int(col.cell[k])}", "lon": float(col.lon[k]),
                     "lat": float(col.lat[k]), "observed": float(col.y[k]),
                     "background": float(col.hb[k]), "analysis": float(hxa[k]),
                     "sigma_o": float(col.sigma[k]), "used": bool(col.keep[k]),
                     "reason": col.reason[k]})
    omb = (col.y - col.hb)[col.keep]
    oma = (col.y - hxa)[col.keep]
    stats.append({"domain": domain, "quantity": "NO2_column", "n_used": int(col.keep.sum()),
                  "n_rejected": int(sum(str(r).startswith("gross") for r in col.reason)),
                  "mean_omb": _m(omb), "rms_omb": _rms(omb), "mean_oma": _m(oma),
                  "rms_oma": _rms(oma), "chi2": col.chi2, **_inflation_columns(col.inflation)})
    log.info("%s NO2 columns: %d used, RMS O-B %.3g -> O-A %.3g mol m-2, chi2 %.2f", domain,
             col.keep.sum(), _rms(omb), _rms(oma), col.chi2)


def _prior(priors: dict, domain: str, quantity: str, acfg, default: float | None = None
           ) -> float:
    """The prior inflation of ``quantity`` in ``domain``: the previous analysis' (``priors``,
    :func:`read_inflation`) when adaptive and given, else ``default`` (``acfg.inflation``,
    the LETKF's; the OI's B takes 1)."""
    if acfg.inflation_adaptive:
        v = priors.get(domain, {}).get(quantity)
        if v is not None and np.isfinite(v):
            return float(np.clip(v, 1.0, acfg.inflation_max))
    return float(acfg.inflation if default is None else default)


def _letkf_inflation(acfg, rho_b: float, d, Yb, r2, obs_xy) -> dict:
    """The innovation estimate of the multiplicative inflation (:func:`.inflation.
    adaptive_inflation`; its variance with the observation-observation covariance localised
    by the analysis' Gaspari-Cohn function) and the inflation applied: the estimate when
    ``inflation_adaptive``, else the fixed ``inflation`` (the estimate is then a diagnostic)."""
    xy = np.asarray(obs_xy, dtype=float)
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    est = adaptive_inflation(d, Yb, r2, prior=rho_b, prior_sd=acfg.inflation_prior_sd,
                             bounds=(1.0, acfg.inflation_max),
                             loc=gaspari_cohn(dist, acfg.length_km))
    out = est.as_dict()
    out["applied"] = float(est.rho if acfg.inflation_adaptive else acfg.inflation)
    out["adaptive"] = bool(acfg.inflation_adaptive)
    return out


def _oi_inflation(acfg, rho_b: float, d, Hk, r2, cell_xy, sigma_b) -> dict:
    """The OI's factor of B's variances (:func:`.inflation.adaptive_inflation` with the static
    ``H B H^T``, Desroziers et al. 2005 / Li et al. 2009): its innovation estimate, and the
    factor applied -- the estimate (prior ``rho_b``: the previous analysis' factor, else 1: B
    as configured; bounded to [1, ``inflation_max``]) when ``inflation_adaptive``, else 1 (the
    estimate is a diagnostic; ``inflation`` is the LETKF's)."""
    B = DistanceCovariance(np.asarray(cell_xy, dtype=np.float64), sigma_b, acfg.length_km)
    hbht, _, _ = observed_covariance(B, Hk)
    est = adaptive_inflation(d, None, r2, prior=rho_b, prior_sd=acfg.inflation_prior_sd,
                             bounds=(1.0, acfg.inflation_max), hbht=hbht)
    out = est.as_dict()
    out["applied"] = float(est.rho if acfg.inflation_adaptive else 1.0)
    out["adaptive"] = bool(acfg.inflation_adaptive)
    return out


def _inflation_columns(infl: dict | None) -> dict:
    """statistics.csv columns of the inflation (the LETKF's, or the OI's factor of B; NaN for
    the satellite columns of an OI): applied, the innovation estimate rho_o and its standard
    deviation, the prior."""
    if infl is None:
        nan = float("nan")
        return {"inflation": nan, "inflation_obs": nan, "inflation_obs_sd": nan,
                "inflation_prior": nan}
    return {"inflation": infl["applied"], "inflation_obs": infl["rho_obs"],
            "inflation_obs_sd": float(np.sqrt(infl["var_obs"])),
            "inflation_prior": infl["rho_prior"]}


def _inflation_log(infl: dict | None) -> str:
    if infl is None:
        return ""
    return (f", inflation {infl['applied']:.3g} ({'adaptive' if infl['adaptive'] else 'fixed'};"
            f" innovation estimate {infl['rho_obs']:.3g} +- {np.sqrt(infl['var_obs']):.2g}, "
            f"prior {infl['rho_prior']:.3g})")


def read_inflation(path: str | Path) -> dict[str, dict[str, float]]:
    """The inflation applied per domain and quantity by a previous analysis: ``path`` is its
    directory or its ``inflation.json`` (:data:`INFLATION_FILE`). Returns {domain: {quantity:
    rho}}."""
    import json

    p = Path(path)
    if p.is_dir():
        p = p / INFLATION_FILE
    if not p.exists():
        raise InputFileError(f"{p}: no inflation file of a previous LETKF analysis "
                             f"(--inflation-prior takes an analysis directory or its "
                             f"{INFLATION_FILE})")
    try:
        data = json.loads(p.read_text())
        return {dom: {q: float(v["applied"]) for q, v in qs.items()}
                for dom, qs in data["inflation"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputFileError(f"{p}: not an inflation file of aqforecast assimilate "
                             f"({exc})") from None


def _write_inflation(path: Path, acfg, t, inflation: dict, prior_source) -> Path:
    """``inflation.json``: per domain and quantity the inflation applied, its innovation
    estimate (rho_obs, var_obs, d~^T d~, tr C~, n) and prior; the next cycle's prior
    (``--inflation-prior``)."""
    import json

    meta = {"time": str(t), "adaptive": bool(acfg.inflation_adaptive),
            "inflation": float(acfg.inflation), "inflation_max": float(acfg.inflation_max),
            "inflation_prior_sd": float(acfg.inflation_prior_sd),
            "rtps_alpha": float(acfg.rtps_alpha),
            "prior_from": None if prior_source is None else str(prior_source)}
    body = {"meta": meta, "inflation": {
        dom: {q: {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                  for k, v in est.items()} for q, est in qs.items()}
        for dom, qs in inflation.items()}}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(body, indent=1))
    return path


def _m(a) -> float:
    return float(np.mean(a)) if len(a) else float("nan")


def _rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a)))) if len(a) else float("nan")


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        if rows:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                            for k, v in r.items()})
    return path
