"""Observation vector and Jacobian of ln(emission scaling factors) from a tagged prior run.

The state is ln f per (region, sector, pollutant) (:class:`StateIndex`). A station observation of
quantity q (obs.nc names: NO2, SO2, PM25, PM10, CO) in the hour [t, t + 1 h) is compared with the
prior run's surface value valid at t + 1 h (the end of the hour), sampled bilinearly in the
finest domain holding the station (:class:`aqforecast.observations.operator.
StationOperator`). Its sensitivity to ln f_k of source k = (region, sector) and pollutant p is
the tag of k in every model species that q is made of and p feeds (:data:`FEEDS`):

    dy/d ln f_(r,s,p) = sum_species conv_species x tag_species,(r,s)       (tag = f dc/df)

which is exact for a linear model (primary species under donor-cell advection: the tags are
each source's exact contribution) and the tag attribution otherwise (secondary PM: the
limiter's and chemistry's nonlinearity; quantified against finite differences in the tests and
the README). One exception: ammonium in cells where the prior run's total ammonia exceeds twice
its sulfate (moles). There the model's equilibrium gives NH4 = 2 SO4 + NO3 whatever the ammonia,
so ammonium's sensitivity is that of its acids (:data:`NH4_AMMONIA_RICH_SENSITIVITY`: the SO4
and NO3 tags of the SO2 / NOx sources times the mass ratio) and the NH4 tags (the ammonia
sources' share) count only in ammonia-limited cells. (The nitrate's own dependence on free
ammonia in the ammonia-rich regime is not represented: the NO3 tags go to the NOx sources.)
:class:`TagForwardModel` scales the tags with the factors for the Gauss-Newton iteration. O3 is
not inverted (its tags attribute, they are not sensitivities).
Units: obs units (ug m-3, CO mg m-3; gases at the GB 3095 reference state, as obs.nc).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import species as species_registry
from ..observations.operator import StationOperator, observation_error
from ..io import InputFileError

__all__ = ["StateIndex", "ObservationSystem", "build_observation_system",
           "finite_difference_jacobian", "TagForwardModel", "FEEDS"]

REFERENCE_STATE = (298.15, 101325.0)
#: observed quantity -> {model species: emitted pollutant whose sources its tags carry}
FEEDS = {
    "NO2": {"NO2": "NOx"},
    "SO2": {"SO2": "SO2"},
    "CO": {"CO": "CO"},
    "PM25": {"PPM25": "PM25", "SO4": "SO2", "NO3": "NOx", "NH4": "NH3"},
    "PM10": {"PPM25": "PM25", "PPM10": "PMC", "SO4": "SO2", "NO3": "NOx", "NH4": "NH3"},
}
#: Ammonium's sensitivity where ammonia is in excess (the model's equilibrium,
#: :func:`aqforecast.chemistry.aerosol.nh4no3_equilibrium`: total ammonia > 2 x sulfate gives
#: NH4 = 2 SO4 + NO3 in moles, independent of the ammonia): d NH4 [ug m-3] = ratio x d(acid
#: [ug m-3]) with the acid's sources. The NH4 tags there attribute ammonium to the NH3 sources
#: (a share, not a sensitivity: more NH3 makes no more ammonium sulfate), and an inversion fed
#: with them explains PM2.5 misfits by NH3 factors.
NH4_AMMONIA_RICH_SENSITIVITY = {"SO4": (2.0 * 18.039 / 96.062, "SO2"),
                                "NO3": (18.039 / 62.005, "NOx")}
#: PM2.5 components that count in the observed PM2.5 (untagged ones enter y_prior only)
PM25_PARTS = ("PPM25", "SO4", "NO3", "NH4", "SNGN", "SOA")


@dataclass(frozen=True)
class StateIndex:
    """The inverted factors: ``keys[j] = (region, sector, pollutant)``."""

    keys: tuple

    def __len__(self) -> int:
        return len(self.keys)

    def index(self, key) -> int:
        return self.keys.index(tuple(key))


@dataclass
class ObservationSystem:
    """``y`` (m,) observations, ``y_prior`` (m,) the prior run at them, ``H`` (m, n) the
    Jacobian of ln f, ``R`` (m,) error variances, ``meta`` one row per observation (station,
    time, quantity, domain, lon, lat), ``state`` the factors."""

    y: np.ndarray
    y_prior: np.ndarray
    H: np.ndarray
    R: np.ndarray
    meta: pd.DataFrame
    state: StateIndex
    notes: list = field(default_factory=list)


@dataclass
class TagForwardModel:
    """The observations as a function of ln f from a (tagged) prior run made with factors
    ``exp(x_run)``: each source's tag ``T_k`` (its contribution at the run, ``H`` of
    :func:`build_observation_system`) scales with its factor,

        F(x) = y_run + sum_k T_k (exp(x_k - x_run,k) - 1),    dF/dx_k = T_k exp(x_k - x_run,k)

    exact for species linear in their emissions (primary PM under donor-cell: the tags are the
    sources' contributions), the tag attribution scaled for the others (secondary PM, NO2). The
    linearisation ``y_run + T (x - x_run)`` underestimates an increase (a factor 1.6 is a 60 %
    change for ln 1.6 = 0.47) and overestimates a cut, so a single update about the prior is
    biased for large corrections; :func:`.kalman.gauss_newton_update` iterates with
    ``jacobian``."""

    y_run: np.ndarray
    T: np.ndarray
    x_run: np.ndarray

    def forward(self, x) -> np.ndarray:
        return self.y_run + self.T @ np.expm1(np.asarray(x, float) - self.x_run)

    def jacobian(self, x) -> np.ndarray:
        return self.T * np.exp(np.asarray(x, float) - self.x_run)[None, :]


def _conv(name: str, units: str) -> float:
    """Model file units (ppb / ug m-3) -> obs units (ug m-3 at the reference state; CO mg)."""
    if units.strip() == "ppb":
        c = float(species_registry.ppb_to_ugm3(1.0, name, *REFERENCE_STATE))
        return c / 1000.0 if name == "CO" else c
    return 1.0


def _ammonia_rich(conc, jc) -> np.ndarray | None:
    """(ny, nx) 1 where the prior run's surface total ammonia exceeds twice its sulfate
    (moles; the ammonia-rich side of the equilibrium), else 0; None without NH3/NH4/SO4."""
    if not all(s in conc for s in ("NH3", "NH4", "SO4")):
        return None

    def umol(name):
        v = conc[name].isel(time=jc, lev=0).values.astype(float)
        if conc[name].attrs.get("units", "").strip() == "ppb":   # at the reference state
            return v * species_registry.air_number_density(*REFERENCE_STATE) * 1e-3
        return v / species_registry.get(name).molar_mass

    fa = umol("NH3") + umol("NH4") - 2.0 * umol("SO4")
    return (fa > 0.0).astype(float)


def build_observation_system(run_dir, obs: pd.DataFrame, grids: dict, quantities,
                             regions, sectors, with_jacobian: bool = True,
                             co_emitted=()) -> ObservationSystem:
    """The observation system of a tagged prior run and hourly station observations.

    obs: long frame ``station, lon, lat, time`` (hour beginning, UTC) and one column per
    quantity (NaN = missing or flagged); grids: domain name -> grid (finest used first);
    quantities: observed quantities to use (keys of :data:`FEEDS`); regions, sectors: the
    configured names (``outside`` is added). Factors with no observation sensitivity are left
    out of the state (they are not observable), and said in ``notes``. ``with_jacobian=False``:
    y and y_prior only (an untagged run; H has no columns), for finite differences.
    ``co_emitted``: pollutants added to the state for every region x sector that has an
    observed factor, where they have no sensitivity of their own (none of the quantities
    feeds them, or -- NH3 where ammonia is in excess -- their tags vanish), with zero columns
    of H (the prior's correlation between a sector's pollutants is what moves them;
    ``inversion.co_emitted``)."""
    run_dir = Path(run_dir)
    order = sorted(grids, key=lambda n: grids[n].dx)
    stations = obs.drop_duplicates("station").set_index("station")[["lon", "lat"]]
    owner = pd.Series(index=stations.index, dtype=object)
    ops = {}
    for dom in order:
        lon2d, lat2d = grids[dom].lonlat
        free = owner.isna().to_numpy()
        if not free.any():
            break
        names = stations.index[free]
        op = StationOperator(lon2d, lat2d, stations.loc[names, "lon"].to_numpy(float),
                             stations.loc[names, "lat"].to_numpy(float))
        owner[names[op.inside]] = dom
        ops[dom] = (op, list(names))
    regions = list(regions) + ["outside"]
    pollutants = sorted({p for q in quantities for p in FEEDS[q].values()})
    keys = tuple((r, s, p) for r in regions for s in sectors for p in pollutants)
    rows, Hrows, yp = [], [], []
    for dom, (op, names) in ops.items():
        mine = [n for n in names if owner.get(n) == dom]
        if not mine:
            continue
        conc_path, tag_path = run_dir / f"conc_{dom}.nc", run_dir / f"tags_{dom}.nc"
        for p in (conc_path, tag_path) if with_jacobian else (conc_path,):
            if not p.exists():
                raise InputFileError(f"{p}: the inversion needs the prior run's conc and tag "
                                     f"files (a run with tags on)")
        conc = xr.load_dataset(conc_path)
        ctimes = pd.DatetimeIndex(conc["time"].values)
        if with_jacobian:
            tags = xr.load_dataset(tag_path)
            labels = list(zip(tags["tag_region"].values.astype(str),
                              tags["tag_sector"].values.astype(str)))
            ttimes = pd.DatetimeIndex(tags["time"].values)
        else:
            tags, labels, ttimes = {}, [], ctimes
        col = {n: names.index(n) for n in mine}
        for q in quantities:
            if q not in obs:
                continue
            feeds = FEEDS[q]
            parts = PM25_PARTS + (("PPM10",) if q == "PM10" else ()) if q.startswith("PM") \
                else tuple(feeds)
            sub = obs[obs["station"].isin(mine) & np.isfinite(obs[q])]
            for t, g in sub.groupby("time"):
                valid = pd.Timestamp(t) + pd.Timedelta(hours=1)
                if valid not in ctimes or valid not in ttimes:
                    continue
                jc, jt = ctimes.get_loc(valid), ttimes.get_loc(valid)
                idx = [col[s] for s in g["station"]]
                # prior value at the stations
                field_ = 0.0
                for s in parts:
                    if s in conc:
                        v = conc[s].isel(time=jc, lev=0).values
                        field_ = field_ + v * _conv(s, conc[s].attrs.get("units", ""))
                yp_all = op(np.asarray(field_, float))[idx]
                # sensitivities
                H = np.zeros((len(idx), len(keys)))
                rich = _ammonia_rich(conc, jc) if with_jacobian and "NH4" in feeds else None
                for s, pol in feeds.items():
                    if not with_jacobian or s not in tags:
                        continue
                    conv = _conv(s, tags[s].attrs.get("units", conc[s].attrs.get("units", "")
                                                      if s in conc else ""))
                    tv = tags[s].isel(time=jt, lev=0).values  # (tag, y, x)
                    if s == "NH4" and rich is not None:
                        # ammonium where the equilibrium is ammonia-limited only; where ammonia
                        # is in excess it follows its acids (NH4_AMMONIA_RICH_SENSITIVITY)
                        tv = tv * (1.0 - rich)[None]
                    for k, (r, sec) in enumerate(labels):
                        if r not in regions or sec not in sectors:
                            continue
                        h = op(tv[k])[idx] * conv
                        H[:, keys.index((r, sec, pol))] += h
                if rich is not None and rich.any():
                    for s, (ratio, pol) in NH4_AMMONIA_RICH_SENSITIVITY.items():
                        if s not in tags or pol not in pollutants:
                            continue
                        conv = _conv(s, tags[s].attrs.get("units", ""))
                        tv = tags[s].isel(time=jt, lev=0).values * (ratio * rich)[None]
                        for k, (r, sec) in enumerate(labels):
                            if r not in regions or sec not in sectors:
                                continue
                            H[:, keys.index((r, sec, pol))] += op(tv[k])[idx] * conv
                for n, (stn, val) in enumerate(zip(g["station"], g[q])):
                    rows.append({"station": stn, "time": t, "quantity": q, "domain": dom,
                                 "lon": stations.loc[stn, "lon"],
                                 "lat": stations.loc[stn, "lat"], "observed": float(val)})
                    yp.append(yp_all[n])
                Hrows.append(H)
    if not rows:
        raise InputFileError("no observation falls in the prior run's domains and period")
    H = np.vstack(Hrows)
    meta = pd.DataFrame(rows)
    y = meta["observed"].to_numpy(float)
    y_prior = np.asarray(yp, float)
    dx = {d: float(np.sqrt(np.mean(grids[d].cell_area)) / 1000.0) for d in grids}
    # errors proportional to the PRIOR's value at the observation, not to the observation:
    # weights from observed values favour the low draws and bias every factor low (measured in
    # benchmarks/inversion_osse.py: all factors pulled down by 10-30 %)
    R = np.array([observation_error(q, v, dx[d]) ** 2 for q, v, d in
                  zip(meta["quantity"], y_prior, meta["domain"])])
    if not with_jacobian:
        return ObservationSystem(y, y_prior, np.zeros((len(y), 0)), R, meta, StateIndex(()),
                                 [])
    seen = np.flatnonzero(np.abs(H).sum(axis=0) > 1e-12 * max(float(np.abs(H).max()), 1e-300))
    notes = [f"{len(keys) - seen.size} of {len(keys)} factors have no observation sensitivity "
             f"and stay at the prior"]
    observed = [keys[j] for j in seen]
    extra = [(r, s, p) for r, s in dict.fromkeys((r, s) for r, s, _ in observed)
             for p in co_emitted if (r, s, p) not in observed]
    if extra:
        notes.append(f"{len(extra)} co-emitted factors ({', '.join(sorted({k[2] for k in extra}))})"
                     f" follow the observed ones of their region x sector through the prior")
    state = StateIndex(tuple(observed + extra))
    H = np.hstack([H[:, seen], np.zeros((len(y), len(extra)))])
    return ObservationSystem(y, y_prior, H, R, meta, state, notes)


def finite_difference_jacobian(cfg, run_dir, obs: pd.DataFrame, system: ObservationSystem,
                               work_dir, delta: float = 0.1, run=None) -> np.ndarray:
    """H by one-sided finite differences of ln f: one forecast per factor with that factor
    times exp(``delta``) on top of the prior run's own scaling (same start, lead and initial
    state as the prior run), ``(y_j - y_prior) / delta`` at the same observations. ``run``:
    ``callable(scaling_table, out_dir)`` making a run (default: :func:`aqforecast.forecast.
    rerun` without tags). Costs ``len(system.state)`` forecasts (see ``cost_preview``);
    for the nonlinear species (O3, secondary PM) and the Walcek limiter's nonlinearity this is
    the reference the tag Jacobian is compared with."""
    from ..emissions.scaling import ScalingTable
    from ..forecast import rerun
    from ..grid import grids_from_config

    work = Path(work_dir)
    grids = grids_from_config(cfg)

    def default_run(table, out):
        rerun(cfg, run_dir, out, table)

    run = run or default_run
    quantities = sorted(set(system.meta["quantity"]))
    H = np.zeros((len(system.y), len(system.state)))
    for j, (r, s, p) in enumerate(system.state.keys):
        out = work / f"fd_{j:03d}"
        run(ScalingTable({(r, s, p): float(np.exp(delta))}), out)
        pert = build_observation_system(out, obs, grids, quantities,
                                        [k for k in sorted({k[0] for k in system.state.keys})
                                         if k != "outside"], sorted({k[1] for k in
                                                                     system.state.keys}),
                                        with_jacobian=False)
        key = ["station", "time", "quantity"]
        a = system.meta[key].assign(v=system.y_prior)
        b = pert.meta[key].assign(w=pert.y_prior)
        m = a.merge(b, on=key, how="left")
        H[:, j] = (m["w"].to_numpy(float) - m["v"].to_numpy(float)) / delta
    return H
