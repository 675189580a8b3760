"""Analysed lateral boundaries from a surface station network: a boundary-condition file
(the layout of :mod:`aqforecast.io.boundary_file`, ``inputs.boundary.kind: file``) whose
time-varying inflow is the regional background seen by the network's stations.

Method (two steps, each a function):

1. :func:`station_background` -- per hour, a percentile across the stations of each pollutant
   of an observation table (long form: ``time``, ``station`` and pollutant columns in the
   observation units of :mod:`aqforecast.observations`: PM2.5, PM10, SO2, NO2, O3 in ug m-3,
   CO in mg m-3, gases at the China reporting state 298.15 K, 1013.25 hPa). Stations listed in
   ``exclude`` (a hindcast's withheld stations) are dropped before anything is computed, so
   their values can change nothing. Primary pollutants take the ``percentile``-th (a low one:
   the cleanest stations of the network, the least local emission, are the closest thing to the
   regional background); O3, which local NO titrates, takes the ``100 - percentile``-th (the
   least titrated stations). Hours with fewer than ``min_stations`` valid values are gaps,
   filled by linear interpolation in time (nearest value beyond the ends). Returns ug m-3 for
   PM2.5 and coarse PM (``PMC`` = PM10 - PM2.5 per station, floored at 0) and ppb for the gases
   (converted at 298.15 K, 1013.25 hPa, :func:`aqforecast.species.ugm3_to_ppb`, the state of the
   observations, as the model's observation operator does).

2. :func:`boundary_dataset` -- the background as a boundary file: one value per hour and
   height, uniform in (lon, lat) over a box that covers the domain and its ghost cells (a
   network of one city says nothing about the direction the inflow comes from). Vertically the
   surface value holds through a mixed layer of depth ``h`` (per hour; e.g. the highest
   boundary layer of the last 24 h of the met, the residual layer) and blends into the
   background profile of :mod:`aqforecast.transport.boundary` above it:
   ``c(z) = f c_s + (1 - f) c_bg(z)``, ``f = 1`` for ``z <= h`` and ``exp(-(z - h) /
   (decay h))`` above (``decay`` 0.3: the assimilation's ``vertical_decay``, an
   entrainment-zone scale). PM2.5 is split into the model's components (``PPM25``, ``SO4``,
   ``NO3``, ``NH4``, ``SOA``, ... those of ``species``) by the fractions ``composition`` (default
   :func:`profile_composition`: the background profile's own surface ratios); coarse PM goes to
   ``PPM10``; O3, NO2, CO, SO2 are the observed gases. Gases are written in ppb, aerosols in
   ug m-3 (the model divides by its air density: the surface value is the observed mass
   concentration); aloft the profile's aerosol values keep its mass mixing ratio (scaled by
   ``exp(-z / 8 km)``, the density scale height). Species the table does not observe are not
   written: they keep the background profiles (the file reader's rule).

The result uses the observations of the hours it drives: in a hindcast it is *analysed* inflow,
as station-analysed meteorology is analysed weather, not a forecast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .. import species as species_registry

__all__ = ["station_background", "boundary_dataset", "profile_composition",
           "rolling_max_depth", "OBSERVED", "REFERENCE_STATE"]

#: observation column -> (background name, kind): "pm" ug m-3, "gas" converted to ppb
OBSERVED = {"PM2.5": ("PM25", "pm"), "PM10": ("PMC", "pm"), "O3": ("O3", "gas"),
            "NO2": ("NO2", "gas"), "SO2": ("SO2", "gas"), "CO": ("CO", "gas")}
#: the state gas mass concentrations refer to (GB 3095-2012 amendment 1): K, Pa
REFERENCE_STATE = (298.15, 101325.0)
#: pollutants whose regional background is the *high* percentile (titrated locally)
TITRATED = ("O3",)
#: density scale height, m (aerosol mass mixing ratio kept aloft, as the background profile)
DENSITY_SCALE_M = 8000.0


def station_background(table: pd.DataFrame, percentile: float = 25.0,
                       exclude: Iterable[str] = (), pollutants: Sequence[str] | None = None,
                       min_stations: int = 3, times=None) -> pd.DataFrame:
    """Hourly regional background of a station network (module docstring, step 1).

    table: long form, columns ``time`` (hour-beginning, any one time zone: the result keeps
    it), ``station`` and the pollutant columns (PM2.5, PM10, O3, NO2, SO2 ug m-3; CO mg m-3);
    percentile: in [0, 100], the low one (O3 takes 100 - percentile); exclude: stations never
    used (every name must be in the table); pollutants: columns required (default: those of
    :data:`OBSERVED` present; PM10 is used only with PM2.5); min_stations: fewer valid values
    in an hour make a gap; times: the hours wanted (default every hour of the table).

    Returns a frame indexed by time with columns ``PM25``, ``PMC`` (ug m-3), ``O3``, ``NO2``,
    ``SO2``, ``CO`` (ppb) as observed; ``attrs["stations"]`` the stations used. Raises
    ValueError when a station in ``exclude`` is unknown, no station is left, a required column
    is missing, or a pollutant has no hour with ``min_stations`` valid values.
    """
    if not 0.0 <= float(percentile) <= 100.0:
        raise ValueError(f"percentile {percentile}: expected a value in [0, 100]")
    for c in ("time", "station"):
        if c not in table:
            raise ValueError(f"station table lacks column {c!r}")
    exclude = set(exclude)
    known = set(table["station"].unique())
    unknown = sorted(exclude - known)
    if unknown:
        raise ValueError(f"excluded station(s) {unknown} not in the table (stations: "
                         f"{sorted(known)})")
    d = table[~table["station"].isin(exclude)]
    used = sorted(d["station"].unique())
    if not used:
        raise ValueError(f"no station left for the background: all of {sorted(known)} are "
                         f"excluded")
    if pollutants is None:
        pollutants = [c for c in OBSERVED if c in d]
        if not pollutants:
            raise ValueError(f"station table has none of the pollutants {list(OBSERVED)}")
    missing = [c for c in pollutants if c not in d]
    if missing or any(c not in OBSERVED for c in pollutants):
        bad = missing or [c for c in pollutants if c not in OBSERVED]
        raise ValueError(f"pollutant(s) {bad} missing from the station table (columns: "
                         f"{list(table.columns)}; known pollutants {list(OBSERVED)})")
    if "PM10" in pollutants and "PM2.5" not in pollutants:
        raise ValueError("PM10 needs PM2.5 (the coarse part PM10 - PM2.5 is used)")
    if min_stations < 1:
        raise ValueError(f"min_stations {min_stations}: expected >= 1")
    t = pd.DatetimeIndex(pd.to_datetime(d["time"]))
    index = (pd.DatetimeIndex(pd.to_datetime(times)) if times is not None else
             pd.date_range(t.min(), t.max(), freq="h"))
    d = d.assign(time=t)
    if "PM10" in pollutants:
        d = d.assign(PM10=(d["PM10"] - d["PM2.5"]).clip(lower=0.0))
    out = {}
    for col in pollutants:
        name, kind = OBSERVED[col]
        w = d.pivot_table(index="time", columns="station", values=col, aggfunc="mean")
        w = w.reindex(index=index)
        a = w.to_numpy(float)
        q = 100.0 - percentile if name in TITRATED else percentile
        n = np.isfinite(a).sum(axis=1)
        v = np.full(len(index), np.nan)
        ok = n >= min_stations
        if not ok.any():
            raise ValueError(f"{col}: no hour with {min_stations} or more valid values at the "
                             f"stations {used} (missing species?)")
        v[ok] = np.nanpercentile(a[ok], q, axis=1)
        s = pd.Series(v, index=index).interpolate(limit_area="inside").ffill().bfill()
        if kind == "gas":
            ug = s.to_numpy() * (1000.0 if col == "CO" else 1.0)   # CO mg m-3 -> ug m-3
            s = pd.Series(species_registry.ugm3_to_ppb(ug, name, *REFERENCE_STATE), index=index)
        out[name] = s
    res = pd.DataFrame(out, index=index)
    res.index.name = "time"
    res.attrs["stations"] = used
    res.attrs["percentile"] = float(percentile)
    return res


def profile_composition(species: Sequence[str]) -> dict[str, float]:
    """Fractions of PM2.5 per model PM2.5 component in ``species``: the surface values of the
    background profile (:data:`aqforecast.transport.boundary.BACKGROUND`), normalised."""
    from .boundary import BACKGROUND

    comps = [n for n in species_registry.PM25_COMPONENTS if n in species and n in BACKGROUND
             and BACKGROUND[n][0] > 0]
    if not comps:
        raise ValueError(f"no PM2.5 component among the species {list(species)}")
    total = sum(BACKGROUND[n][0] for n in comps)
    return {n: BACKGROUND[n][0] / total for n in comps}


def rolling_max_depth(times, depth_m, hours: float = 24.0, floor_m: float = 100.0,
                      fill_m: float = 1000.0, at=None) -> np.ndarray:
    """The mixed layer for :func:`boundary_dataset`: at each time of ``at`` (default
    ``times``) the highest ``depth_m`` (m, a boundary-layer series at ``times``) of the last
    ``hours`` up to it (the previous afternoon's residual layer), at least ``floor_m``; up to
    ``hours`` after the series ends its last such value; ``fill_m`` before the series starts,
    after that, and where it has no finite value in the window (outside the met's period)."""
    s = pd.Series(np.asarray(depth_m, float), index=pd.DatetimeIndex(pd.to_datetime(times)))
    s = s.sort_index()
    r = s.rolling(f"{int(round(hours * 3600))}s", min_periods=1).max() if hours > 0 else s
    at = s.index if at is None else pd.DatetimeIndex(pd.to_datetime(at))
    first, last = s.index.min(), s.index.max() + pd.Timedelta(hours=hours)
    out = np.full(len(at), float(fill_m))
    inside = (at >= first) & (at <= last)
    if inside.any():
        pos = np.searchsorted(r.index.values, at[inside].values, side="right") - 1
        out[inside] = r.to_numpy()[pos]
    out = np.where(np.isfinite(out), out, fill_m)
    return np.maximum(out, floor_m)


def _profile_ppb_or_ugm3(name: str, z: np.ndarray) -> np.ndarray:
    """Background profile of ``name`` at heights z in ppb (gases) or ug m-3 (aerosols, the
    mass mixing ratio of the profile kept aloft)."""
    from .boundary import BACKGROUND

    if name not in BACKGROUND:
        return np.zeros_like(z)
    s, a, h = BACKGROUND[name]
    v = a + (s - a) * np.exp(-np.maximum(z, 0.0) / h)
    if species_registry.get(name).phase != "gas":
        v = v * np.exp(-np.maximum(z, 0.0) / DENSITY_SCALE_M)
    return v


def boundary_dataset(background: pd.DataFrame, species: Sequence[str], mixed_layer_m,
                     heights: Sequence[float] | None = None,
                     lon: Sequence[float] = (0.0, 360.0), lat: Sequence[float] = (-90.0, 90.0),
                     composition: Mapping[str, float] | None = None, decay: float = 0.3,
                     attrs: Mapping[str, str] | None = None) -> xr.Dataset:
    """The boundary-condition dataset (module docstring, step 2).

    background: :func:`station_background`'s frame (index UTC times: the file's times);
    species: the model's species (only those written are kept); mixed_layer_m: scalar or one
    depth per time, m; heights: levels above ground, m (default 0-3000 m every 50 m, then to
    20 km); lon, lat: the box's corners (uniform values); composition: PM2.5 fractions per
    component (default :func:`profile_composition`; they must sum to 1); decay: the blend's
    e-folding depth above the mixed layer, in units of its depth.
    Returns dims (time, height, lat, lon): gases ppb, aerosols ug m-3.
    """
    if heights is None:
        heights = np.concatenate([np.arange(0.0, 3000.0, 50.0),
                                  [3000.0, 4000.0, 6000.0, 8000.0, 12000.0, 16000.0, 20000.0]])
    z = np.asarray(heights, dtype=float)
    times = pd.DatetimeIndex(background.index)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    nt = len(times)
    h = np.broadcast_to(np.asarray(mixed_layer_m, dtype=float), (nt,)).copy()
    if not np.all(np.isfinite(h) & (h > 0)):
        raise ValueError("mixed_layer_m: expected positive finite depths")
    if decay > 0:
        f = np.exp(-np.maximum(z[None, :] - h[:, None], 0.0) / (decay * h[:, None]))
    else:
        f = (z[None, :] <= h[:, None]).astype(float)
    surface: dict[str, np.ndarray] = {}
    if "PM25" in background:
        comp = dict(composition) if composition is not None else profile_composition(species)
        tot = sum(comp.values())
        if abs(tot - 1.0) > 1e-6:
            raise ValueError(f"composition fractions sum to {tot:g}, expected 1")
        for n, frac in comp.items():
            if n in species:
                surface[n] = frac * background["PM25"].to_numpy(float)
    if "PMC" in background and "PPM10" in species:
        surface["PPM10"] = background["PMC"].to_numpy(float)
    for n in ("O3", "NO2", "SO2", "CO"):
        if n in background and n in species:
            surface[n] = background[n].to_numpy(float)
    if not surface:
        raise ValueError(f"none of the background's columns {list(background.columns)} maps "
                         f"to a model species of {list(species)}")
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    data = {}
    for n, cs in surface.items():
        if not np.all(np.isfinite(cs)):
            raise ValueError(f"{n}: background has gaps; fill them first")
        prof = f * cs[:, None] + (1.0 - f) * _profile_ppb_or_ugm3(n, z)[None, :]
        v = np.broadcast_to(prof[:, :, None, None], (nt, z.size, lat.size, lon.size))
        unit = "ppb" if species_registry.get(n).phase == "gas" else "ug m-3"
        data[n] = (("time", "height", "lat", "lon"), v.astype(np.float32),
                   {"units": unit, "long_name": f"{n} lateral inflow (station background)"})
    ds = xr.Dataset(data, coords={
        "time": ("time", times.values.astype("datetime64[ns]")),
        "height": ("height", z, {"units": "m", "long_name": "height above ground"}),
        "lat": ("lat", lat, {"units": "degrees_north"}),
        "lon": ("lon", lon, {"units": "degrees_east"})})
    ds["mixed_layer_depth"] = ("time", h.astype(np.float32),
                               {"units": "m", "long_name": "depth the surface value holds"})
    ds.attrs.update(dict(attrs or {}))
    return ds
