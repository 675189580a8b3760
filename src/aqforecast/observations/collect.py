"""The observation stage: every configured station source for a cycle's window, QC-flagged,
as one CF file ``obs.nc``.

Sources (``inputs.observations.sources`` in the config): a glob of files and their ``format``
(``cnemc``, ``prsa``, ``shanghai`` -- the national layouts, whose times are local Beijing time
(UTC+8, ``utc_offset_hours``) -- or ``generic``, :mod:`.generic`, whose times carry their offset).
The window of cycle T is the hourly means that began in [T - ``window_hours``, T) (UTC): the hours
that have ended by T.

``obs.nc`` (CF-1.10, dims ``station`` x ``time``): one variable per species in HJ 633 units
(``PM25``, ``PM10``, ``SO2``, ``NO2``, ``O3`` in ug m-3, ``CO`` in mg m-3; gases at the 298.15 K,
1013.25 hPa reference state of the reporting standard) with CF ``standard_name``; beside each a
CF flag variable ``<name>_qc`` (``flag_masks`` / ``flag_meanings`` of
:mod:`aqforecast.observations.qc`: missing, range, spike, stuck, unit, pm25_gt_pm10), linked by
``ancillary_variables``; coordinates ``station`` (id), ``lon``, ``lat``, ``altitude`` (m, NaN
where unknown), ``time`` (UTC, hour beginning); global attributes name the cycle, the window and
every file read (provenance). Nothing is dropped: flagged values stay, with their flags.

Satellite NO2 (``inputs.observations.satellite``: ``path`` glob of TROPOMI L2 NO2 granules,
``qa_min``, ``window_hours``, ``n_sub``, ``representativeness_relative``, ``min_coverage``):
:func:`gather_satellite_no2` keeps the pixels with ``qa_value >= qa_min`` whose scanline time
lies in the cycle's window [T - window_hours, T) and whose centre lies in the outer domains'
lon/lat box, and forms pixel-area-weighted superobservations on every domain's grid
(:func:`aqforecast.observations.satellite.superobservations`). ``satellite_no2.nc`` (CF-1.10)
holds them *with the pixels they were made of*, because the column operator needs each
pixel's averaging kernel, AMFs and TM5 levels (a superobservation's kernel is only exact as
the weighted sum over its pixels, whose surface pressures differ):

- dim ``obs`` (one per domain and grid cell with pixels): ``domain``, ``cell`` (flat
  ``j * nx + i``), ``x_index``, ``y_index``, coordinates ``lon``/``lat`` (cell centre) and
  ``time`` (area-weighted mean pixel time), ``no2_tropospheric_column`` (mol m-2), its
  ``_error`` (measurement and representativeness in quadrature, mol m-2) and the two parts,
  ``n_pixels``, ``coverage``;
- dim ``pixel``: ``pixel_lon``/``pixel_lat``/``pixel_time``, ``pixel_column`` and
  ``pixel_precision`` (mol m-2), ``qa_value``, ``averaging_kernel`` (pixel, layer),
  ``air_mass_factor_total``/``_troposphere``, ``surface_pressure`` (Pa),
  ``tm5_tropopause_layer_index`` (0-based), ``granule`` (index into ``source_files``);
  ``tm5_constant_a`` (Pa) / ``tm5_constant_b`` (layer, vertices);
- dim ``entry`` (superobs x pixel overlaps): ``entry_obs``, ``entry_pixel``, ``entry_weight``
  (normalised area weight; the superobs column is ``sum entry_weight * pixel_column``).

No granule, or no valid pixel, in the window: no file (the stage logs it).
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..io import InputFileError
from . import qc
from .generic import REFERENCE_STATE, read_generic_csv
from .readers import read_cnemc, read_prsa, read_shanghai_uci, read_station_coords

__all__ = ["gather_observations", "gather_satellite_no2", "OBS_VARIABLES", "READERS",
           "observation_window", "SATELLITE_FILE"]

#: name of the satellite superobservation file written beside obs.nc
SATELLITE_FILE = "satellite_no2.nc"

log = logging.getLogger(__name__)

READERS = {"cnemc": read_cnemc, "prsa": read_prsa, "shanghai": read_shanghai_uci,
           "generic": read_generic_csv}
#: obs.nc variable name and CF standard name of each species
OBS_VARIABLES = {
    "PM2.5": ("PM25", "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"),
    "PM10": ("PM10", "mass_concentration_of_pm10_ambient_aerosol_particles_in_air"),
    "SO2": ("SO2", "mass_concentration_of_sulfur_dioxide_in_air"),
    "NO2": ("NO2", "mass_concentration_of_nitrogen_dioxide_in_air"),
    "CO": ("CO", "mass_concentration_of_carbon_monoxide_in_air"),
    "O3": ("O3", "mass_concentration_of_ozone_in_air"),
}


def observation_window(cycle, window_hours: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the hour-beginning stamps (UTC) assimilated at ``cycle``."""
    end = pd.Timestamp(cycle)
    if end.tzinfo is not None:
        end = end.tz_convert("UTC").tz_localize(None)
    return end - pd.Timedelta(hours=int(window_hours)), end


def _read_source(src, base: Path, encoding) -> list[tuple[Path, pd.DataFrame]]:
    pattern = str(src.path if Path(src.path).is_absolute() else base / src.path)
    paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise InputFileError(f"{pattern}: no observation files match (format {src.format})")
    out = []
    for p in paths:
        enc = src.encoding or encoding
        if src.format == "cnemc":
            df = read_cnemc(p, species=src.species, encoding=enc)
        elif src.format == "generic":
            df = read_generic_csv(p, encoding=enc)
        else:
            df = READERS[src.format](p)
        if src.format != "generic":  # local time -> UTC
            df["time"] = df["time"] - pd.Timedelta(hours=src.utc_offset_hours)
        df["station"] = df["station"].astype(str)
        out.append((p, df))
    return out


def gather_observations(sources, cycle, window_hours: int = 6, station_coords=None,
                        base_dir: str | Path = ".", encoding: str | None = None) -> xr.Dataset:
    """Read, window, merge and QC every source; return the ``obs.nc`` Dataset (module doc).

    sources: items with ``path`` (glob), ``format``, ``species`` (CNEMC single-species files),
    ``encoding`` and ``utc_offset_hours``; station_coords: a station table path (or None);
    base_dir: where relative paths start."""
    start, end = observation_window(cycle, window_hours)
    frames, files = [], []
    for src in sources:
        for p, df in _read_source(src, Path(base_dir), encoding):
            files.append(str(p))
            frames.append(df[(df["time"] >= start) & (df["time"] < end)])
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    species = [s for s in OBS_VARIABLES if s in frame.columns]
    if frame.empty or not species:
        raise InputFileError(f"no observations in the window {start} .. {end} UTC in "
                             f"{len(files)} file(s): {', '.join(files[:5])}")
    dup = frame.duplicated(["station", "time"], keep=False)
    if dup.any():  # the same station and hour from two files: keep one row per value
        frame = frame.groupby(["station", "time"], as_index=False).first()
    frame.attrs["units"] = {s: qc.EXPECTED_UNITS[s] for s in species}
    flags = qc.qc_flags(frame, species)
    stations = sorted(frame["station"].unique())
    times = pd.date_range(start, end - pd.Timedelta(hours=1), freq="h")
    idx = pd.MultiIndex.from_product([stations, times], names=["station", "time"])
    wide = frame.set_index(["station", "time"])
    fl = flags.set_index(pd.MultiIndex.from_frame(frame[["station", "time"]]))
    ds = xr.Dataset(coords={"station": ("station", np.array(stations, dtype=object),
                                        {"long_name": "station code",
                                         "cf_role": "timeseries_id"}),
                            "time": ("time", times.values)})
    meanings = " ".join(qc.FLAG_NAMES[m] for m in sorted(qc.FLAG_NAMES))
    for sp in species:
        name, std = OBS_VARIABLES[sp]
        v = wide[sp].reindex(idx).to_numpy(float).reshape(len(stations), len(times))
        f = fl[sp].reindex(idx).to_numpy()
        # hours without a row are missing values, flagged as such
        f = np.where(np.isnan(f.astype(float)), qc.MISSING, f).astype(np.int16)
        f = f.reshape(len(stations), len(times))
        ds[name] = (("station", "time"), v, {
            "units": qc.EXPECTED_UNITS[sp], "standard_name": std,
            "long_name": f"observed hourly mean {sp}",
            "ancillary_variables": f"{name}_qc",
            **({"reference_state": f"{REFERENCE_STATE[0]} K, {REFERENCE_STATE[1]:g} Pa"}
               if sp not in ("PM2.5", "PM10") else {})})
        ds[f"{name}_qc"] = (("station", "time"), f, {
            "long_name": f"quality flags of {name}", "standard_name": "status_flag",
            "flag_masks": np.array(sorted(qc.FLAG_NAMES), dtype=np.int16),
            "flag_meanings": meanings})
    lon, lat = _coordinates(frame, stations, station_coords)
    ds = ds.assign_coords(
        lon=("station", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        lat=("station", lat, {"standard_name": "latitude", "units": "degrees_north"}),
        altitude=("station", np.full(len(stations), np.nan),
                  {"standard_name": "altitude", "units": "m", "positive": "up"}))
    ds["time"].attrs.update(standard_name="time", long_name="start of the hourly mean (UTC)")
    ds.attrs.update({
        "title": "aqforecast station observations", "featureType": "timeSeries",
        "cycle": str(end), "window": f"{start} .. {end} UTC (hour-beginning stamps, [start, "
        f"end))", "source_files": "\n".join(files),
        "qc": "flags only: nothing is removed (aqforecast.observations.qc)"})
    nocoord = int(np.sum(~np.isfinite(lon)))
    if nocoord:
        log.warning("%d station(s) without coordinates in obs.nc (lon/lat NaN)", nocoord)
    return ds


def _coordinates(frame: pd.DataFrame, stations, station_coords):
    """lon, lat per station: from the files (CNEMC, generic) else the station table."""
    lon = pd.Series(np.nan, index=stations)
    lat = pd.Series(np.nan, index=stations)
    for c, s in (("lon", lon), ("lat", lat)):
        if c in frame:
            got = frame.groupby("station")[c].first()
            s.update(got)
    if station_coords is not None:
        table = station_coords if isinstance(station_coords, pd.DataFrame) else \
            read_station_coords(station_coords)
        for key in ("station", "code", "name"):
            if key in table:
                t = table.dropna(subset=["lon", "lat"]).drop_duplicates(key).set_index(key)
                miss = lon.isna()
                lon[miss] = t["lon"].reindex(lon.index[miss]).to_numpy()
                lat[miss] = t["lat"].reindex(lat.index[miss]).to_numpy()
    return lon.to_numpy(float), lat.to_numpy(float)


def _domain_box(grids, margin_deg: float = 0.1):
    """(lon0, lon1, lat0, lat1) around every grid's cell centres, with a margin, degrees."""
    lons, lats = [], []
    for g in grids.values():
        lo, la = g.lonlat
        lons += [np.nanmin(lo), np.nanmax(lo)]
        lats += [np.nanmin(la), np.nanmax(la)]
    return (min(lons) - margin_deg, max(lons) + margin_deg, min(lats) - margin_deg,
            max(lats) + margin_deg)


_PIXEL_FIELDS = {  # satellite_no2.nc name <- read_tropomi_no2 name
    "pixel_column": "nitrogendioxide_tropospheric_column",
    "pixel_precision": "nitrogendioxide_tropospheric_column_precision",
    "qa_value": "qa_value", "averaging_kernel": "averaging_kernel",
    "air_mass_factor_total": "air_mass_factor_total",
    "air_mass_factor_troposphere": "air_mass_factor_troposphere",
    "surface_pressure": "surface_pressure",
    "tm5_tropopause_layer_index": "tm5_tropopause_layer_index",
}


def gather_satellite_no2(pattern, grids: dict, cycle, window_hours: int, qa_min: float = 0.75,
                         n_sub: int = 10, representativeness_relative: float = 0.15,
                         min_coverage: float = 0.0, base_dir: str | Path = "."
                         ) -> tuple[xr.Dataset | None, list[str]]:
    """Superobservations of the TROPOMI NO2 granules matching ``pattern`` (module doc).

    grids: domain name -> grid (:func:`aqforecast.grid.grids_from_config`); cycle: the analysis
    time T (UTC); pixels with scanline time in [T - window_hours, T) are used. Returns
    ``(dataset or None, files read)``; None when no valid pixel falls in the window.
    """
    from .satellite import read_tropomi_no2, superobservations

    pattern = str(pattern if Path(pattern).is_absolute() else Path(base_dir) / pattern)
    paths = sorted(Path(p) for p in glob.glob(pattern))
    start, end = observation_window(cycle, window_hours)
    if not paths:
        log.warning("%s: no TROPOMI NO2 granules match; no satellite observations", pattern)
        return None, []
    box = _domain_box(grids)
    parts, used, a_b = [], [], None
    for p in paths:
        pix = read_tropomi_no2(p, qa_min=qa_min, bbox=box)
        t = pix["time"].values
        inwin = ~np.isnat(t) & (t >= np.datetime64(start)) & (t < np.datetime64(end))
        log.info("%s: %d QC-passed pixels over the domains, %d in the window %s .. %s", p,
                 pix.sizes["pixel"], int(inwin.sum()), start, end)
        if not inwin.any():
            continue
        pix = pix.isel(pixel=np.flatnonzero(inwin))
        ab = (pix["tm5_constant_a"].values, pix["tm5_constant_b"].values)
        if a_b is None:
            a_b = ab
        elif not (np.allclose(ab[0], a_b[0]) and np.allclose(ab[1], a_b[1])):
            raise InputFileError(f"{p}: tm5_constant_a/b differ from {used[0]}'s; granules of "
                                 f"one product version expected")
        pix = pix.assign(granule=("pixel", np.full(pix.sizes["pixel"], len(used), np.int32)))
        used.append(str(p))
        parts.append(pix.drop_vars(["tm5_constant_a", "tm5_constant_b"]))
    if not parts:
        return None, [str(p) for p in paths]
    pixels = xr.concat(parts, dim="pixel") if len(parts) > 1 else parts[0]
    pixels = pixels.reset_coords()
    obs_parts, ent_parts, nobs = [], [], 0
    col = "nitrogendioxide_tropospheric_column"
    for name, grid in grids.items():
        so = superobservations(pixels, grid, n_sub=n_sub,
                               representativeness_relative=representativeness_relative,
                               min_coverage=min_coverage)
        val = so[col].values.ravel()
        cells = np.flatnonzero(np.isfinite(val))
        if cells.size == 0:
            continue
        flat = lambda v: so[v].values.ravel()[cells]  # noqa: E731
        # a pixel spread over m cells gives m superobs with one error: inflate its variance
        # by m (error inflation for correlated observations), so the m count as one pixel
        e_cell, e_pix = so["entry_cell"].values, so["entry_pixel"].values
        e_w = so["entry_weight"].values
        m = np.bincount(e_pix, minlength=pixels.sizes["pixel"])[e_pix]
        prec = pixels["nitrogendioxide_tropospheric_column_precision"].values[e_pix]
        meas = np.sqrt(np.bincount(e_cell, weights=(e_w * prec) ** 2 * m,
                                   minlength=grid.nx * grid.ny))[cells]
        rep = flat(f"{col}_representativeness_error")
        obs_parts.append({
            "domain": np.full(cells.size, name, dtype=object), "cell": cells.astype(np.int32),
            "x_index": (cells % grid.nx).astype(np.int32),
            "y_index": (cells // grid.nx).astype(np.int32),
            "lon": flat("lon"), "lat": flat("lat"), "time": flat("time"),
            "col": flat(col), "err": np.sqrt(meas ** 2 + rep ** 2), "meas": meas, "rep": rep,
            "n_pixels": flat("n_pixels").astype(np.int32), "coverage": flat("coverage")})
        pos = np.full(grid.nx * grid.ny, -1, dtype=np.int64)
        pos[cells] = np.arange(cells.size) + nobs
        ent_parts.append((pos[e_cell], e_pix, e_w))
        nobs += cells.size
    if nobs == 0:
        return None, used
    cat = {k: np.concatenate([o[k] for o in obs_parts]) for k in obs_parts[0]}
    e_obs, e_pix, e_w = (np.concatenate([e[i] for e in ent_parts]) for i in range(3))
    mol = {"units": "mol m-2"}
    std = "troposphere_mole_content_of_nitrogen_dioxide"
    data = {
        "domain": ("obs", cat["domain"], {"long_name": "model domain of the superobservation"}),
        "cell": ("obs", cat["cell"], {"long_name": "flat grid cell index j * nx + i"}),
        "x_index": ("obs", cat["x_index"], {"long_name": "grid column i (0-based)"}),
        "y_index": ("obs", cat["y_index"], {"long_name": "grid row j (0-based)"}),
        "no2_tropospheric_column": ("obs", cat["col"], {
            **mol, "standard_name": std,
            "long_name": "pixel-area-weighted mean TROPOMI tropospheric NO2 column",
            "ancillary_variables": "no2_tropospheric_column_error n_pixels coverage"}),
        "no2_tropospheric_column_error": ("obs", cat["err"], {
            **mol, "standard_name": f"{std} standard_error",
            "long_name": "superobservation error: measurement and representativeness in "
                         "quadrature"}),
        "no2_tropospheric_column_measurement_error": ("obs", cat["meas"], {
            **mol, "long_name": "sqrt(sum_i w_i^2 m_i precision_i^2), w_i normalised "
                                "weights, m_i the number of cells pixel i is spread over"}),
        "no2_tropospheric_column_representativeness_error": ("obs", cat["rep"], {
            **mol, "long_name": "representativeness_relative * |column| * (1 - coverage)"}),
        "n_pixels": ("obs", cat["n_pixels"], {"units": "1",
                                              "long_name": "number of pixels in the cell"}),
        "coverage": ("obs", cat["coverage"], {"units": "1",
                                              "long_name": "pixel area / cell area, capped"}),
        "pixel_lon": ("pixel", pixels["longitude"].values, {
            "standard_name": "longitude", "units": "degrees_east"}),
        "pixel_lat": ("pixel", pixels["latitude"].values, {
            "standard_name": "latitude", "units": "degrees_north"}),
        "pixel_time": ("pixel", pixels["time"].values, {"long_name": "scanline time (UTC)"}),
        "granule": ("pixel", pixels["granule"].values, {
            "long_name": "index of the source granule in the global attribute source_files"}),
        "tm5_constant_a": (("layer", "vertices"), a_b[0], {
            "units": "Pa", "long_name": "TM5 hybrid A, [layer, 0] bottom / [layer, 1] top"}),
        "tm5_constant_b": (("layer", "vertices"), a_b[1], {
            "units": "1", "long_name": "TM5 hybrid B, [layer, 0] bottom / [layer, 1] top"}),
        "entry_obs": ("entry", e_obs.astype(np.int32), {"long_name": "index along obs"}),
        "entry_pixel": ("entry", e_pix.astype(np.int32), {"long_name": "index along pixel"}),
        "entry_weight": ("entry", e_w, {"units": "1", "long_name":
                                        "normalised area weight of the pixel in the superobs"}),
    }
    for new, old in _PIXEL_FIELDS.items():
        v = pixels[old]
        data[new] = (tuple("pixel" if d == "pixel" else d for d in v.dims), v.values,
                     dict(v.attrs))
    ds = xr.Dataset(data, coords={
        "lon": ("obs", cat["lon"], {"standard_name": "longitude", "units": "degrees_east"}),
        "lat": ("obs", cat["lat"], {"standard_name": "latitude", "units": "degrees_north"}),
        "time": ("obs", cat["time"], {"standard_name": "time",
                                      "long_name": "area-weighted mean pixel time (UTC)"})})
    ds.attrs.update({
        "title": "aqforecast TROPOMI NO2 superobservations", "featureType": "point",
        "cycle": str(end), "window": f"{start} .. {end} UTC", "window_hours": int(window_hours),
        "qa_min": float(qa_min), "n_sub": int(n_sub),
        "representativeness_relative": float(representativeness_relative),
        "source_files": "\n".join(used),
        "reference": "TROPOMI NO2 PUM S5P-KNMI-L2-0021-MA; operator aqforecast.observations."
                     "satellite.superobs_column_kernels"})
    return ds, used
