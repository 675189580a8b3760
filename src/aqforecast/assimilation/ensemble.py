"""An ensemble of perturbed forecasts around a control run (for the LETKF analysis).

``aqforecast ensemble CONFIG --run RUN_DIR --members N [--workers W] [--seed S]
[--ic-sigma X|background] [--initial DIR] [--no-emission-perturbation]``: member m reruns the
control run of ``RUN_DIR`` (same start and lead, from its manifest) with

* **emissions** scaled per region x sector x pollutant by ``exp(N(0, sigma_ln))``
  (``inversion.sigma_ln`` per pollutant: the same prior uncertainty the inversion uses), on top
  of the control's own scaling (``assimilation.ensemble_emissions``, default on;
  ``--no-emission-perturbation`` turns it off);
* **initial state** (``assimilation.ensemble_ic_sigma`` or ``--ic-sigma``; default none): the
  control's initial state x ``exp(sigma_q w(z) f_qm(x, y))`` per analysed quantity q
  (PM25: every PM2.5 component alike; NO2: NO2 and NO, the NOx partition kept; O3; SO2, CO,
  PM10 likewise, :data:`~aqforecast.assimilation.analysis.SCALED_SPECIES`), independent fields
  per quantity and member:

  - ``f`` is a stationary Gaussian random field of unit variance with the Gaussian correlation
    ``exp(-d^2 / (2 L^2))``, ``L = ensemble_ic_length_km`` or ``sqrt(3/10) length_km`` (the
    Gaussian that the analysis' Gaspari-Cohn correlation of half-width ``length_km``
    approximates, Gaspari & Cohn 1999, QJRMS 125, eq. 4.10), drawn as a sum of ``M = 512``
    random Fourier modes (``f = M^-1/2 sum_j a_j cos(k_j.x) + b_j sin(k_j.x)``, ``k_j ~
    N(0, L^-2 I)``, ``a_j, b_j ~ N(0, 1)``: exactly Gaussian with unit variance at every
    point, covariance -> the Gaussian as M grows; Rahimi & Recht 2007, NIPS). Its
    coordinates are km on a local tangent plane at the outer domain's centre from the cells'
    lon/lat, so a nest samples *the same* field at its own cells (nest and parent agree).
  - centred: at every point the members' ``f`` minus their mean over the members, so the mean
    ln(factor) over the members is exactly 0 (the members' geometric mean is the control; their
    arithmetic mean is ~exp(sigma^2 / 2) x the control, which the LETKF removes by recentring
    the ensemble on the control, :func:`~aqforecast.assimilation.analysis.recentre`). After
    centring the sample variance (ddof 1) is 1 in expectation, so the ensemble spread of
    ln(factor) is ``sigma``.
  - ``w(z)`` are the analysis' vertical weights (:func:`~aqforecast.assimilation.analysis.
    vertical_weights`, ``analysis_depth`` of ``mixed_layer_hours`` and ``vertical_decay``):
    the factor is vertically constant through the mixed layer and the residual layer, decays
    above it, and the free troposphere is not perturbed -- the same vertical structure as the
    analysis increment, so B and the increments agree.
  - ``--ic-sigma background`` takes ``sigma_q = sqrt(ln(1 + background_error_q^2))``: the
    lognormal whose relative standard deviation is the OI's relative background error.
  - reproducible: the same seed gives the same fields (a stream separate from the emission
    factors', which are unchanged by adding initial-state perturbations).

  The control's initial state: ``--initial DIR`` if given; else ``RUN_DIR/restart/<start>/``
  when the run kept it; else, for a control that started cold (or warm from
  ``inputs.restart_dir``), the same start rebuilt. A control started from ``--initial`` that
  did not keep that state needs ``--initial`` (an error names it). The perturbed states are
  kept in ``RUN_DIR/ensemble_initial/m<NN>/initial_<domain>.nc`` (beside ``ensemble/``,
  whose every directory is a member) (with a link to the
  control's ``restart_<domain>.nc``, when there is one, for the solver state).

Members go to ``RUN_DIR/ensemble/m<NN>/`` -- the layout ``aqforecast assimilate --method
letkf`` reads -- with ``RUN_DIR/ensemble/members.csv`` (every member's emission factors) and
``_SUCCESS`` (seed, sigmas, L). Members run through dask (``--workers`` processes, one numba
thread each; 1 = in this process, one after another).

For an analysis at T the initial-state spread must survive to T: the control should be a
short forecast ending at T (its initial state a few hours before T), not a long spin-up whose
initial state has been flushed out of a limited-area domain (README, Assimilation).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..config import ConfigError, RunConfig, load_config
from ..emissions.inventory import POLLUTANTS
from ..emissions.scaling import ScalingTable
from ..io import InputFileError, atomic_path, write_dataset
from ..io.initial_state import initial_state_path
from ..io.rundir import require_success, write_success

__all__ = ["make_ensemble", "member_factors", "ic_sigmas", "ic_length_km", "random_fields",
           "lognormal_sigma", "perturb_initial_states", "FOURIER_MODES"]

log = logging.getLogger(__name__)

#: random Fourier modes per field (the correlation's sampling error ~ M^-1/2 = 4 %)
FOURIER_MODES = 512
EARTH_RADIUS_KM = 6371.0


def member_factors(cfg: RunConfig, members: int, seed: int = 0) -> pd.DataFrame:
    """Long table member, region, sector, pollutant, factor (lognormal, median 1): one factor
    per region (and "outside") x tag sector x pollutant, or per region x pollutant for every
    sector ("*") where the config names no tag sectors."""
    rng = np.random.default_rng(seed)
    regions = [r.name for r in cfg.regions] + ["outside"]
    sectors = list(cfg.tags.sectors) or ["*"]
    rows = []
    for m in range(members):
        for r in regions:
            for s in sectors:
                for p in POLLUTANTS:
                    sig = cfg.inversion.sigma_ln.get(p, 0.5)
                    rows.append({"member": f"m{m:02d}", "region": r, "sector": s,
                                 "pollutant": p, "factor": float(np.exp(rng.normal(0, sig)))})
    return pd.DataFrame(rows, columns=["member", "region", "sector", "pollutant", "factor"])


def lognormal_sigma(relative_error: float) -> float:
    """sigma of ln(factor) whose lognormal factor (median 1) has the relative standard deviation
    ``relative_error``: ``sqrt(ln(1 + relative_error^2))`` (0.5 -> 0.472, 0.3 -> 0.294)."""
    return float(np.sqrt(np.log1p(float(relative_error) ** 2)))


def ic_sigmas(cfg: RunConfig, ic_sigma=None) -> dict[str, float]:
    """sigma of ln(initial-state factor) per analysed quantity (> 0 only). ``ic_sigma``: the
    ``--ic-sigma`` option, a number (every quantity of ``assimilation.species``),
    ``"background"`` (from ``assimilation.background_error``) or None (the config's
    ``assimilation.ensemble_ic_sigma``)."""
    acfg = cfg.assimilation
    if ic_sigma is None:
        out = dict(acfg.ensemble_ic_sigma)
    elif isinstance(ic_sigma, str) and ic_sigma.strip().lower() in ("background", "b"):
        out = {q: lognormal_sigma(acfg.background_error.get(q, 0.5)) for q in acfg.species}
    else:
        try:
            x = float(ic_sigma)
        except (TypeError, ValueError):
            raise ConfigError(f"--ic-sigma {ic_sigma!r}: expected a number (sigma of "
                              f"ln(factor), e.g. 0.4) or 'background'") from None
        if not (np.isfinite(x) and 0.0 <= x <= 2.0):
            raise ConfigError(f"--ic-sigma {ic_sigma!r}: sigma of ln(factor) must be in [0, 2]")
        out = {q: x for q in acfg.species}
    return {q: float(s) for q, s in out.items() if s > 0}


def ic_length_km(cfg: RunConfig) -> float:
    """Gaussian correlation scale L (km) of the initial-state perturbation field:
    ``assimilation.ensemble_ic_length_km`` or sqrt(3/10) x ``length_km`` (module docstring)."""
    acfg = cfg.assimilation
    if acfg.ensemble_ic_length_km is not None:
        return float(acfg.ensemble_ic_length_km)
    return float(np.sqrt(0.3) * acfg.length_km)


def plane_km(lon, lat, lon0: float, lat0: float) -> np.ndarray:
    """(n, 2) km east / north of (lon0, lat0) on the local tangent plane (equirectangular;
    distortion < 0.1 % over a few hundred km)."""
    lon = np.asarray(lon, dtype=float).ravel()
    lat = np.asarray(lat, dtype=float).ravel()
    x = np.deg2rad(lon - lon0) * np.cos(np.deg2rad(lat0)) * EARTH_RADIUS_KM
    y = np.deg2rad(lat - lat0) * EARTH_RADIUS_KM
    return np.column_stack([x, y])


def random_fields(points: dict, members: int, length_km: float, rng: np.random.Generator,
                  modes: int = FOURIER_MODES, centre: bool = True) -> dict:
    """``members`` independent unit-variance Gaussian random fields with the correlation
    ``exp(-d^2 / (2 L^2))`` (random Fourier modes, module docstring) evaluated at every point set
    of ``points`` (name -> (n, 2) km on one plane: the same field at every set), centred over the
    members at each point when ``centre``. Returns name -> (members, n)."""
    if length_km <= 0:
        raise ConfigError(f"ensemble_ic_length_km {length_km}: must be > 0")
    k = rng.normal(0.0, 1.0 / length_km, (members, modes, 2))
    a = rng.normal(0.0, 1.0, (members, modes))
    b = rng.normal(0.0, 1.0, (members, modes))
    out = {}
    for name, xy in points.items():
        xy = np.asarray(xy, dtype=float)
        f = np.empty((members, xy.shape[0]))
        for m in range(members):
            phase = xy @ k[m].T  # (n, modes)
            f[m] = (np.cos(phase) @ a[m] + np.sin(phase) @ b[m]) / np.sqrt(modes)
        if centre:
            f -= f.mean(axis=0, keepdims=True)
        out[name] = f
    return out


def _ic_rng(seed: int) -> np.random.Generator:
    """The initial-state perturbations' own stream (the emission factors keep theirs)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0x1C]))


def perturb_initial_states(cfg: RunConfig, source: Path, out: Path, members: int, seed: int,
                           sigmas: dict[str, float], time) -> list[Path]:
    """Write ``out/m<NN>/initial_<domain>.nc``: ``source``'s initial states (valid at ``time``)
    times ``exp(sigma_q w f_qm)`` (module docstring); ``restart_<domain>.nc`` of ``source``
    linked beside them. Returns the member directories."""
    from ..grid import grids_from_config
    from ..met import MetProvider
    from .analysis import SCALED_SPECIES, analysis_depth, vertical_weights

    acfg = cfg.assimilation
    grids = grids_from_config(cfg)
    names = list(grids)
    lon0, lat0 = (float(np.mean(v)) for v in grids[names[0]].lonlat)
    points = {n: plane_km(*grids[n].lonlat, lon0, lat0) for n in names}
    L = ic_length_km(cfg)
    rng = _ic_rng(seed)
    # one field per quantity and member, the same at every domain's cells
    fields = {q: random_fields(points, members, L, rng) for q in sorted(sigmas)}
    t = np.datetime64(time, "s")
    dirs = [out / f"m{m:02d}" for m in range(members)]
    for name, grid in grids.items():
        src = initial_state_path(source, name)
        if not src.exists():
            raise InputFileError(f"{src}: the control's initial state of domain {name} missing")
        met = MetProvider.from_config(cfg, name, grids)
        try:
            w = vertical_weights(met.state(t).z_centre,
                                 analysis_depth(met, t, acfg.mixed_layer_hours),
                                 acfg.vertical_decay)
        finally:
            met.close()
        with xr.open_dataset(src) as ds:
            base = ds.load()
        shape = (grid.ny, grid.nx)
        for m, d in enumerate(dirs):
            mds = base.copy(deep=True)
            done = set()
            for q in sorted(sigmas):
                lnf = sigmas[q] * w * fields[q][name][m].reshape(shape)[None]
                factor = np.exp(lnf)
                for sp in SCALED_SPECIES[q]:
                    if sp in mds and sp not in done:
                        mds[sp].values = mds[sp].values * factor
                        done.add(sp)
            mds.attrs.update({"ensemble_member": d.name, "ensemble_seed": int(seed),
                              "ensemble_ic_sigma": " ".join(f"{q}={s:.4g}" for q, s in
                                                            sorted(sigmas.items())),
                              "ensemble_ic_length_km": L,
                              "ensemble_ic_source": str(src)})
            write_dataset(mds, initial_state_path(d, name), 1)
            restart = source / f"restart_{name}.nc"
            link = d / f"restart_{name}.nc"
            if restart.exists() and not link.exists():
                os.symlink(restart.resolve(), link)
    log.info("ensemble: initial states of %d members perturbed (%s; L %.1f km) in %s", members,
             ", ".join(f"{q} {s:.3g}" for q, s in sorted(sigmas.items())), L, out)
    return dirs


def _control_start(cfg: RunConfig, run: Path):
    """(start stamp, lead hours, start type) of the control run (manifest, conc attrs)."""
    from ..forecast import restart_stamp

    man = require_success(run, "forecast")
    stamp = restart_stamp(np.datetime64(str(man["cycle_start"]).replace(" ", "T"), "s"))
    start_type = None
    conc = run / f"conc_{cfg.domains[0].name}.nc"
    if conc.exists():
        with xr.open_dataset(conc) as ds:
            start_type = ds.attrs.get("start_type")
    return stamp, int(man["lead_hours"]), start_type


def control_initial(cfg: RunConfig, run: Path, initial=None, out: Path | None = None,
                    need_state: bool = False) -> Path | None:
    """The directory of the control's initial state (module docstring), or None when the
    members can redo the control's own cold/warm start and no state file is needed. With
    ``need_state`` a cold/warm start is rebuilt into ``out`` (for perturbing it)."""
    from ..forecast import ForwardModel, with_start

    stamp, _, start_type = _control_start(cfg, run)
    names = [d.name for d in cfg.domains]
    if initial is not None:
        d = Path(initial)
        missing = [n for n in names if not initial_state_path(d, n).exists()]
        if missing:
            raise InputFileError(f"--initial {d}: no initial_{missing[0]}.nc (the control's "
                                 f"initial state at {stamp})")
        return d
    kept = run / "restart" / stamp
    if kept.is_dir() and all(initial_state_path(kept, n).exists() for n in names):
        return kept
    if start_type == "initial":
        msg = (f"{run}: the control started from an initial state that it did not keep "
               f"({kept} missing); give that state with --initial DIR")
        if need_state:
            raise ConfigError(f"--ic-sigma: {msg}")
        log.warning("%s; the members start as the config would (cold/warm)", msg)
        return None
    if not need_state:
        return None
    fm = ForwardModel(with_start(cfg, stamp), tags=False)
    fm.write_initial_states(out, {"start_type": fm.start_type})
    log.info("ensemble: the control's %s start at %s rebuilt in %s", fm.start_type, stamp, out)
    return out


def _run_member(config_path: str, base: str, table_rows, out: str,
                initial: str | None = None) -> str:
    """One member (runs in a dask worker process): the control rerun with its emission
    factors (``table_rows``; empty: none) from ``initial`` (a directory of initial states; None:
    the control's own start, :func:`aqforecast.forecast.rerun`)."""
    import numba

    from ..forecast import rerun, run_forecast, run_scaling_table

    if numba.config.NUMBA_NUM_THREADS > 1:
        numba.set_num_threads(1)
    cfg = load_config(config_path)
    table = ScalingTable.from_rows(table_rows, source=f"ensemble member {Path(out).name}") \
        if table_rows else None
    if initial is None:
        rerun(cfg, base, out, table)
        return out
    stamp, lead, _ = _control_start(cfg, Path(base))
    tables = [t for t in (run_scaling_table(base, cfg), table) if t is not None]
    scaling = ScalingTable.concat([ScalingTable.coerce(t) for t in tables]) if tables else None
    run_forecast(cfg, lead, out, tags=False, progress=False, start=stamp, initial=initial,
                 scaling=scaling, overwrite=True)
    return out


def make_ensemble(config_path, run_dir, members: int, workers: int = 1, seed: int = 0,
                  cluster: str | None = None, ic_sigma=None, initial=None,
                  emissions: bool | None = None) -> list[Path]:
    """Run the members (module docstring); return the written paths. ``cluster``: where the
    members run (:func:`aqforecast.parallel.tasks.compute`: local processes, a dask-jobqueue
    cluster such as ``slurm``, or a scheduler address). ``ic_sigma``: ``--ic-sigma`` (a number
    or ``"background"``; None: ``assimilation.ensemble_ic_sigma``); ``initial``: the
    control's initial state (``--initial``); ``emissions``: perturb the emissions (None:
    ``assimilation.ensemble_emissions``)."""
    import dask

    from ..parallel.tasks import compute

    if members < 3:
        raise ConfigError(f"--members {members}: an ensemble needs at least 3 members")
    cfg = load_config(config_path)
    run = Path(run_dir)
    require_success(run, "forecast")
    sigmas = ic_sigmas(cfg, ic_sigma)
    if emissions is None:
        emissions = cfg.assimilation.ensemble_emissions
    if not emissions and not sigmas:
        raise ConfigError("--no-emission-perturbation without --ic-sigma (or "
                          "assimilation.ensemble_ic_sigma): the members would all be the control")
    out = run / "ensemble"
    factors = member_factors(cfg, members, seed) if emissions else \
        pd.DataFrame(columns=["member", "region", "sector", "pollutant", "factor"])
    names = [f"m{m:02d}" for m in range(members)]
    init_root = run / "ensemble_initial"
    if init_root.exists():
        shutil.rmtree(init_root)
    source = control_initial(cfg, run, initial, init_root / "control", need_state=bool(sigmas))
    if sigmas:
        stamp, _, _ = _control_start(cfg, run)
        starts = [str(d) for d in perturb_initial_states(cfg, source, init_root, members, seed,
                                                         sigmas, np.datetime64(stamp, "s"))]
    else:
        starts = [None if source is None else str(source)] * members
    tasks = []
    for name, start in zip(names, starts):
        g = factors[factors["member"] == name]
        rows = g[["region", "sector", "pollutant", "factor"]].to_dict("records")
        tasks.append(dask.delayed(_run_member)(str(config_path), str(run), rows,
                                               str(out / name), start))
    done = compute(tasks, workers, cluster)
    log.info("ensemble: %d members in %s", len(done), out)
    path = out / "members.csv"
    with atomic_path(path) as tmp:
        factors.to_csv(tmp, index=False, float_format="%.6g")
    meta = {"stage": "ensemble", "members": members, "seed": seed, "emissions": bool(emissions),
            "ic_sigma": {q: round(s, 6) for q, s in sorted(sigmas.items())}}
    if sigmas:
        meta["ic_length_km"] = round(ic_length_km(cfg), 6)
        meta["ic_source"] = str(source)
    return [path, write_success(out, [path], meta)]
