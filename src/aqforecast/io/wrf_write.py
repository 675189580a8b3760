"""Writer of ``wrfout`` files in WRF-ARW's own layout, for meteorology made outside WRF.

What it owns: the file layout -- WRF dimensions (``Time``, ``DateStrLen``, ``west_east[_stag]``,
``south_north[_stag]``, ``bottom_top[_stag]``), the ``Times`` character array, WRF's global
attributes, variable attributes (``FieldType``, ``MemoryOrder``, ``description``, ``units``,
``stagger``), the static grid fields computed from the model grid (XLAT/XLONG and their u/v
staggers, MAPFAC_M/U/V, COSALPHA/SINALPHA, F) and WRF's dry base state (real.exe: ``MUB``,
``PB``, ``PHB`` from T00 = 290 K, TLP = 50 K, P00 = 1e5 Pa, TISO = 200 K). The physics of the
fields is the caller's: ``data_sample/make_sample_met.py`` (synthetic sample weather) and
:mod:`aqforecast.met.station_analysis` (objective analysis of station observations) both write
through :func:`write_wrfout`, and :class:`aqforecast.io.wrf.WrfOutput` reads what it writes.

Storage: float32, zlib with shuffle, one record per chunk; time-dependent fields quantised to
``significant_bits`` mantissa bits (netCDF-C BitRound). Files are written atomically.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import netCDF4
import numpy as np

from ..constants import GRAVITY, R_DRY
from .netcdf import atomic_path

__all__ = [
    "BASE_STATE",
    "WRF_DIMS",
    "WRF_TIME_VARIABLES",
    "wrf_base_state",
    "wrf_global_attributes",
    "wrfout_name",
    "write_wrfout",
]

#: Time-dependent variables written from the caller's ``fields``: name -> (dims kind, units,
#: description, stagger). ``CLDFRA``, ``QCLOUD``, ``Q2``, ``U10``, ``V10`` are optional.
WRF_TIME_VARIABLES = {
    "U": ("3u", "m s-1", "x-wind component", "X"),
    "V": ("3v", "m s-1", "y-wind component", "Y"),
    "W": ("3w", "m s-1", "z-wind component", "Z"),
    "PH": ("3w", "m2 s-2", "perturbation geopotential", "Z"),
    "PHB": ("3w", "m2 s-2", "base-state geopotential", "Z"),
    "T": ("3", "K", "perturbation potential temperature (theta-t0)", ""),
    "P": ("3", "Pa", "perturbation pressure", ""),
    "PB": ("3", "Pa", "BASE STATE PRESSURE", ""),
    "QVAPOR": ("3", "kg kg-1", "Water vapor mixing ratio", ""),
    "QCLOUD": ("3", "kg kg-1", "Cloud water mixing ratio", ""),
    "CLDFRA": ("3", "", "CLOUD FRACTION", ""),
    "MU": ("2", "Pa", "perturbation dry air mass in column", ""),
    "MUB": ("2", "Pa", "base state dry air mass in column", ""),
    "PSFC": ("2", "Pa", "SFC PRESSURE", ""),
    "T2": ("2", "K", "TEMP at 2 M", ""),
    "Q2": ("2", "kg kg-1", "QV at 2 M", ""),
    "U10": ("2", "m s-1", "U at 10 M", ""),
    "V10": ("2", "m s-1", "V at 10 M", ""),
    "PBLH": ("2", "m", "PBL HEIGHT", ""),
    "HFX": ("2", "W m-2", "UPWARD HEAT FLUX AT THE SURFACE", ""),
    "LH": ("2", "W m-2", "LATENT HEAT FLUX AT THE SURFACE", ""),
    "UST": ("2", "m s-1", "U* IN SIMILARITY THEORY", ""),
    "SWDOWN": ("2", "W m-2", "DOWNWARD SHORT WAVE FLUX AT GROUND SURFACE", ""),
    "RAINC": ("2", "mm", "ACCUMULATED TOTAL CUMULUS PRECIPITATION", ""),
    "RAINNC": ("2", "mm", "ACCUMULATED TOTAL GRID SCALE PRECIPITATION", ""),
}
_OPTIONAL = ("CLDFRA", "QCLOUD", "Q2", "U10", "V10")
WRF_DIMS = {
    "3": ("Time", "bottom_top", "south_north", "west_east"),
    "3u": ("Time", "bottom_top", "south_north", "west_east_stag"),
    "3v": ("Time", "bottom_top", "south_north_stag", "west_east"),
    "3w": ("Time", "bottom_top_stag", "south_north", "west_east"),
    "2": ("Time", "south_north", "west_east"),
    "2u": ("Time", "south_north", "west_east_stag"),
    "2v": ("Time", "south_north_stag", "west_east"),
}
#: WRF real.exe base-state constants (Skamarock et al. 2019, WRF-ARW Tech. Note v4, 5.2.2).
BASE_STATE = {"P00": 1.0e5, "T00": 290.0, "TLP": 50.0, "TISO": 200.0}
OMEGA_EARTH = 7.2921e-5  # s-1


def wrfout_name(domain: str, day_start: datetime) -> str:
    """WRF's file name of a history file starting at ``day_start``."""
    return f"wrfout_{domain}_{day_start:%Y-%m-%d_%H:%M:%S}"


def wrf_base_state(hgt: np.ndarray, znw: np.ndarray, p_top: float):
    """WRF's dry hydrostatic base state over terrain ``hgt`` (m): ``(MUB, PB, PHB)`` in Pa, Pa
    (mass levels) and m2 s-2 (w levels), as real.exe makes them (T00, TLP, P00, TISO of
    :data:`BASE_STATE`)."""
    b = BASE_STATE
    znw = np.asarray(znw, dtype=float)
    znu = 0.5 * (znw[1:] + znw[:-1])
    dnw = np.diff(znw)
    t00, tlp, p00 = b["T00"], b["TLP"], b["P00"]
    psb = p00 * np.exp(-t00 / tlp + np.sqrt((t00 / tlp) ** 2
                                            - 2.0 * GRAVITY * hgt / (tlp * R_DRY)))
    mub = psb - p_top
    pb = znu[:, None, None] * mub + p_top
    tb = np.maximum(b["TISO"], t00 + tlp * np.log(pb / p00))
    alb = R_DRY * tb / pb
    dphb = -np.cumsum(alb * mub * dnw[:, None, None], axis=0)
    phb = np.concatenate([(GRAVITY * hgt)[None], GRAVITY * hgt + dphb])
    return mub, pb, phb


def wrf_global_attributes(grid, start: datetime, nz: int, *, title: str, grid_id: int = 1,
                          parent_id: int = 0, i_parent_start: int = 1, j_parent_start: int = 1,
                          parent_grid_ratio: int = 1, landuse: str = "USGS") -> dict:
    """WRF global attributes of a history file on ``grid`` (an
    :class:`aqforecast.grid.ProjectedGrid`) with ``nz`` mass levels; ``i/j_parent_start`` are
    WRF's 1-based parent indices."""
    g = grid
    cen_lon, cen_lat = g.to_lonlat(g.x0 + 0.5 * g.nx * g.dx, g.y0 + 0.5 * g.ny * g.dx)
    proj_char = {1: "Lambert Conformal", 2: "Polar Stereographic", 3: "Mercator"}
    return {
        "TITLE": f" OUTPUT FROM WRF V4.4 MODEL ({title})",
        "START_DATE": start.strftime("%Y-%m-%d_%H:%M:%S"),
        "SIMULATION_START_DATE": start.strftime("%Y-%m-%d_%H:%M:%S"),
        "WEST-EAST_GRID_DIMENSION": np.int32(g.nx + 1),
        "SOUTH-NORTH_GRID_DIMENSION": np.int32(g.ny + 1),
        "BOTTOM-TOP_GRID_DIMENSION": np.int32(nz + 1),
        "DX": np.float32(g.dx), "DY": np.float32(g.dx), "GRIDTYPE": "C",
        "DT": np.float32(18.0 * g.dx / 1000.0), "HYBRID_OPT": np.int32(0),
        "BL_PBL_PHYSICS": np.int32(1), "SF_SFCLAY_PHYSICS": np.int32(1),
        "GRID_ID": np.int32(grid_id), "PARENT_ID": np.int32(parent_id),
        "I_PARENT_START": np.int32(i_parent_start), "J_PARENT_START": np.int32(j_parent_start),
        "PARENT_GRID_RATIO": np.int32(parent_grid_ratio),
        "CEN_LAT": np.float32(cen_lat), "CEN_LON": np.float32(cen_lon),
        "TRUELAT1": np.float32(g.truelat1), "TRUELAT2": np.float32(g.truelat2),
        "MOAD_CEN_LAT": np.float32(g.ref_lat), "STAND_LON": np.float32(g.stand_lon),
        "POLE_LAT": np.float32(90.0), "POLE_LON": np.float32(0.0),
        "MAP_PROJ": np.int32(g.map_proj), "MAP_PROJ_CHAR": proj_char.get(g.map_proj, ""),
        "MMINLU": landuse, "NUM_LAND_CAT": np.int32(24), "ISWATER": np.int32(16),
        "ISLAKE": np.int32(-1), "ISICE": np.int32(24), "ISURBAN": np.int32(1),
        "ISOILWATER": np.int32(14), "BUCKET_MM": np.float32(-1.0),
    }


def _staggered_lonlat(grid):
    xu, yu = np.meshgrid(grid.x_edges, grid.y)
    xv, yv = np.meshgrid(grid.x, grid.y_edges)
    return grid.to_lonlat(xu, yu), grid.to_lonlat(xv, yv)


def write_wrfout(path, grid, start: datetime, hours, fields: dict, *, hgt, lu_index, landmask,
                 znw, p_top: float, attrs: dict, complevel: int = 1,
                 significant_bits: int | None = 16) -> Path:
    """Write the records at ``hours`` (int hours since ``start``) of one domain to ``path``.

    ``fields``: every name of :data:`WRF_TIME_VARIABLES` (optional ones may be absent) as an
    array ``(len(hours), ...)`` in the file's units and WRF's staggering, grid-relative winds;
    ``hgt``, ``lu_index``, ``landmask`` (ny, nx) static fields; ``znw`` (nz+1) eta at w levels,
    ``p_top`` Pa; ``attrs`` the global attributes (:func:`wrf_global_attributes`). Returns the
    path; the file appears complete or not at all."""
    hours = np.asarray(hours)
    nt = len(hours)
    g = grid
    znw = np.asarray(znw, dtype=float)
    nz = len(znw) - 1
    comp = {"zlib": complevel > 0, "complevel": max(complevel, 1), "shuffle": True}
    (lon_u, lat_u), (lon_v, lat_v) = _staggered_lonlat(g)
    lon, lat = g.lonlat
    cosa, sina = g.rotation
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o644)
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            for k, n in (("Time", None), ("DateStrLen", 19), ("west_east", g.nx),
                         ("south_north", g.ny), ("bottom_top", nz),
                         ("bottom_top_stag", nz + 1), ("west_east_stag", g.nx + 1),
                         ("south_north_stag", g.ny + 1)):
                nc.createDimension(k, n)
            nc.setncatts(attrs)
            times = [(start + timedelta(hours=int(h))).strftime("%Y-%m-%d_%H:%M:%S")
                     for h in hours]
            tv = nc.createVariable("Times", "S1", ("Time", "DateStrLen"))
            tv[:] = netCDF4.stringtochar(np.array(times, dtype="S19"))

            def put(name, dims, data, units="", desc="", stagger="", quantize=False):
                ch = tuple(1 if d == "Time" else len(nc.dimensions[d]) for d in dims)
                q = {"significant_digits": significant_bits, "quantize_mode": "BitRound"} \
                    if quantize and comp["zlib"] and significant_bits else {}
                v = nc.createVariable(name, "f4", dims, chunksizes=ch, **comp, **q)
                sp = [d for d in dims if d != "Time"]
                order = ("XYZ" if len(sp) == 3 else "XY " if len(sp) == 2 else
                         "Z  " if sp else "0  ")
                v.setncatts({"FieldType": np.int32(104), "MemoryOrder": order,
                             "description": desc, "units": units, "stagger": stagger})
                if len(dims) >= 3 and dims[-1].startswith("west_east"):
                    v.setncattr("coordinates", "XLONG XLAT XTIME")
                v[:] = np.asarray(data, dtype=np.float32)

            for name, (kind, units, desc, stag) in WRF_TIME_VARIABLES.items():
                if name not in fields:
                    if name in _OPTIONAL:
                        continue
                    raise KeyError(f"write_wrfout: field {name} missing")
                put(name, WRF_DIMS[kind], fields[name], units, desc, stag, quantize=True)

            def rep(a):
                return np.broadcast_to(a, (nt,) + np.shape(a))

            static = {
                "XLAT": ("2", lat, "degree_north", "LATITUDE, SOUTH IS NEGATIVE", ""),
                "XLONG": ("2", lon, "degree_east", "LONGITUDE, WEST IS NEGATIVE", ""),
                "XLAT_U": ("2u", lat_u, "degree_north", "LATITUDE, SOUTH IS NEGATIVE", "X"),
                "XLONG_U": ("2u", lon_u, "degree_east", "LONGITUDE, WEST IS NEGATIVE", "X"),
                "XLAT_V": ("2v", lat_v, "degree_north", "LATITUDE, SOUTH IS NEGATIVE", "Y"),
                "XLONG_V": ("2v", lon_v, "degree_east", "LONGITUDE, WEST IS NEGATIVE", "Y"),
                "HGT": ("2", hgt, "m", "Terrain Height", ""),
                "LU_INDEX": ("2", np.asarray(lu_index, float), "", "LAND USE CATEGORY", ""),
                "LANDMASK": ("2", landmask, "", "LAND MASK (1 FOR LAND, 0 FOR WATER)", ""),
                "XLAND": ("2", 2.0 - np.asarray(landmask, float), "",
                          "LAND MASK (1 FOR LAND, 2 FOR WATER)", ""),
                "MAPFAC_M": ("2", g.map_factor, "", "Map scale factor on mass grid", ""),
                "MAPFAC_MX": ("2", g.map_factor, "", "Map scale factor on mass grid, x dir.", ""),
                "MAPFAC_MY": ("2", g.map_factor, "", "Map scale factor on mass grid, y dir.", ""),
                "MAPFAC_U": ("2u", g.map_factor_u, "", "Map scale factor on u-grid", "X"),
                "MAPFAC_V": ("2v", g.map_factor_v, "", "Map scale factor on v-grid", "Y"),
                "COSALPHA": ("2", cosa, "", "Local cosine of map rotation", ""),
                "SINALPHA": ("2", sina, "", "Local sine of map rotation", ""),
                "F": ("2", 2 * OMEGA_EARTH * np.sin(np.deg2rad(lat)), "s-1",
                      "Coriolis sine latitude term", ""),
            }
            for name, (kind, data, units, desc, stag) in static.items():
                put(name, WRF_DIMS[kind], rep(data), units, desc, stag)
            znu = 0.5 * (znw[1:] + znw[:-1])
            put("ZNU", ("Time", "bottom_top"), rep(znu), "", "eta values on half (mass) levels")
            put("ZNW", ("Time", "bottom_top_stag"), rep(znw), "",
                "eta values on full (w) levels")
            put("DNW", ("Time", "bottom_top"), rep(np.diff(znw)), "",
                "d(eta) values between full (w) levels")
            b = BASE_STATE
            for name, val, units, desc in (("P_TOP", p_top, "Pa", "PRESSURE TOP OF THE MODEL"),
                                           ("P00", b["P00"], "Pa", "BASE STATE PRESURE"),
                                           ("T00", b["T00"], "K", "BASE STATE TEMPERATURE"),
                                           ("TLP", b["TLP"], "", "BASE STATE LAPSE RATE"),
                                           ("TISO", b["TISO"], "K",
                                            "TEMP AT WHICH THE BASE T TURNS CONST")):
                put(name, ("Time",), np.full(nt, val), units, desc)
            xt = nc.createVariable("XTIME", "f4", ("Time",))
            xt.setncatts({"units": f"minutes since {start:%Y-%m-%d %H:%M:%S}",
                          "description": f"minutes since {start:%Y-%m-%d %H:%M:%S}",
                          "FieldType": np.int32(104), "MemoryOrder": "0  ", "stagger": ""})
            xt[:] = (hours * 60.0).astype(np.float32)
    return Path(path)
