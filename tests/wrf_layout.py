"""Made-up wrfout files in WRF's layout for projections the shared data lacks (polar
stereographic), with XLAT/XLONG and MAPFAC computed by WRF's own formulas -- independent of pyproj.

WRF ``module_llxy`` (set_ps / llij_ps / ijll_ps) on the sphere R = 6 370 km, hemisphere h =
sign(TRUELAT1), grid units of dx, ``reflon = STAND_LON + 90``::

    rm   = (R/dx) cos(lat) (1 + h sin TRUELAT1) / (1 + h sin lat)       distance from the pole
    i    = pole_i + rm cos(lon - reflon),   j = pole_j + h rm sin(lon - reflon)
    lat  = h asin((g2 - r2) / (g2 + r2)),  g2 = ((R/dx)(1 + h sin TRUELAT1))**2, r2 = |(i, j) - pole|**2
    MAPFAC = (1 + h sin TRUELAT1) / (1 + h sin lat)
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np

R_WRF = 6370000.0


def polar_lonlat(X, Y, pole_i, pole_j, dx, truelat1, stand_lon):
    """(lon, lat) in degrees of grid-unit coordinates (X, Y) (WRF ijll_ps on the sphere)."""
    h = 1.0 if truelat1 >= 0 else -1.0
    g = R_WRF / dx * (1.0 + h * np.sin(np.deg2rad(truelat1)))
    xx = np.asarray(X, float) - pole_i
    yy = (np.asarray(Y, float) - pole_j) * h
    r2 = xx**2 + yy**2
    lat = h * np.rad2deg(np.arcsin((g**2 - r2) / (g**2 + r2)))
    lon = stand_lon + 90.0 + np.rad2deg(np.arctan2(yy, xx))
    return (lon + 180.0) % 360.0 - 180.0, lat


def polar_pole(lon_c, lat_c, X_c, Y_c, dx, truelat1, stand_lon):
    """Grid-unit pole position that puts (lon_c, lat_c) at (X_c, Y_c) (WRF set_ps)."""
    h = 1.0 if truelat1 >= 0 else -1.0
    a = np.deg2rad(lat_c)
    rm = R_WRF / dx * np.cos(a) * (1.0 + h * np.sin(np.deg2rad(truelat1))) / (1.0 + h * np.sin(a))
    d = np.deg2rad(lon_c - (stand_lon + 90.0))
    return X_c - rm * np.cos(d), Y_c - h * rm * np.sin(d)


def polar_ij(lon, lat, pole_i, pole_j, dx, truelat1, stand_lon):
    """Grid-unit coordinates (X, Y) of (lon, lat) in degrees (WRF llij_ps on the sphere)."""
    h = 1.0 if truelat1 >= 0 else -1.0
    a = np.deg2rad(np.asarray(lat, float))
    rm = R_WRF / dx * np.cos(a) * (1.0 + h * np.sin(np.deg2rad(truelat1))) / (1.0 + h * np.sin(a))
    d = np.deg2rad(np.asarray(lon, float) - (stand_lon + 90.0))
    return pole_i + rm * np.cos(d), pole_j + h * rm * np.sin(d)


def polar_mapfac(lat, truelat1):
    h = 1.0 if truelat1 >= 0 else -1.0
    return (1.0 + h * np.sin(np.deg2rad(truelat1))) / (1.0 + h * np.sin(np.deg2rad(lat)))


def write_polar_wrfout(path: Path, *, truelat1=60.0, stand_lon=-100.0, centre=(-40.0, 75.0),
                       nx=40, ny=30, dx=20000.0, nz=10,
                       times=("2020-01-15_00:00:00", "2020-01-15_03:00:00")) -> Path:
    """A wrfout file (MAP_PROJ = 2) with WRF's polar-stereographic XLAT/XLONG (mass, u and v
    points), MAPFAC_M/U/V, COSALPHA/SINALPHA (true north found numerically, as WPS does), ZNW, P_TOP and Times; float32 as WRF writes.
    The domain centre ``centre`` = (lon, lat) is the middle of the grid."""
    pi, pj = polar_pole(centre[0], centre[1], nx / 2.0, ny / 2.0, dx, truelat1, stand_lon)
    # grid units: cell i spans [i, i+1); mass points at i + 0.5, u points at i, v points at j
    Xm, Ym = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5)
    Xu, Yu = np.meshgrid(np.arange(nx + 1.0), np.arange(ny) + 0.5)
    Xv, Yv = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny + 1.0))
    pts = {"": (Xm, Ym), "_U": (Xu, Yu), "_V": (Xv, Yv)}
    nt = len(times)
    with netCDF4.Dataset(path, "w") as ds:
        for name, n in [("Time", None), ("DateStrLen", 19), ("west_east", nx),
                        ("south_north", ny), ("west_east_stag", nx + 1),
                        ("south_north_stag", ny + 1), ("bottom_top", nz),
                        ("bottom_top_stag", nz + 1)]:
            ds.createDimension(name, n)
        t = ds.createVariable("Times", "S1", ("Time", "DateStrLen"))
        t[:] = np.array([list(s) for s in times], dtype="S1")
        dims = {"": ("south_north", "west_east"), "_U": ("south_north", "west_east_stag"),
                "_V": ("south_north_stag", "west_east")}
        for suffix, (X, Y) in pts.items():
            lon, lat = polar_lonlat(X, Y, pi, pj, dx, truelat1, stand_lon)
            for name, val in [("XLAT", lat), ("XLONG", lon),
                              ("MAPFAC_" + (suffix[1:] or "M"), polar_mapfac(lat, truelat1))]:
                v = ds.createVariable(name + (suffix if name.startswith("X") else ""), "f4",
                                      ("Time",) + dims[suffix])
                v[:] = np.broadcast_to(val, (nt,) + val.shape).astype(np.float32)
        # rotation as WPS finds it, numerically: the direction of true north in grid units
        lon, lat = polar_lonlat(Xm, Ym, pi, pj, dx, truelat1, stand_lon)
        step = 1e-4 * np.where(lat > 89.0, -1.0, 1.0)  # (north of the pole point: look back)
        Xn, Yn = polar_ij(lon, lat + step, pi, pj, dx, truelat1, stand_lon)
        a = np.arctan2((Xn - Xm) * np.sign(step), (Yn - Ym) * np.sign(step))
        for name, val in [("COSALPHA", np.cos(a)), ("SINALPHA", np.sin(a))]:
            v = ds.createVariable(name, "f4", ("Time", "south_north", "west_east"))
            v[:] = np.broadcast_to(val, (nt,) + val.shape).astype(np.float32)
        znw = ds.createVariable("ZNW", "f4", ("Time", "bottom_top_stag"))
        znw[:] = np.broadcast_to(np.linspace(1.0, 0.0, nz + 1), (nt, nz + 1))
        ptop = ds.createVariable("P_TOP", "f4", ("Time",))
        ptop[:] = 5000.0
        ds.setncatts({
            "TITLE": " OUTPUT FROM WRF V4.5 MODEL (made-up polar stereographic test file)",
            "MAP_PROJ": np.int32(2), "MAP_PROJ_CHAR": "Polar Stereographic",
            "TRUELAT1": np.float32(truelat1), "TRUELAT2": np.float32(truelat1),
            "STAND_LON": np.float32(stand_lon), "MOAD_CEN_LAT": np.float32(centre[1]),
            "CEN_LAT": np.float32(centre[1]), "CEN_LON": np.float32(centre[0]),
            "POLE_LAT": np.float32(90.0), "POLE_LON": np.float32(0.0),
            "DX": np.float32(dx), "DY": np.float32(dx),
            "WEST-EAST_GRID_DIMENSION": np.int32(nx + 1),
            "SOUTH-NORTH_GRID_DIMENSION": np.int32(ny + 1),
            "BOTTOM-TOP_GRID_DIMENSION": np.int32(nz + 1),
            "GRID_ID": np.int32(1), "PARENT_ID": np.int32(0), "I_PARENT_START": np.int32(1),
            "J_PARENT_START": np.int32(1), "PARENT_GRID_RATIO": np.int32(1)})
    return path
