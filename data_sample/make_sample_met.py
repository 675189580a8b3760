"""Generate the sample case's synthetic WRF meteorology in genuine ``wrfout`` layout.

Real WRF output for eastern China is not available to this project, so the sample case's met is
made here, deterministically, for every domain of the config (d01 3 km, d02 1 km nest; both see
the same synoptic situation because every field is a function of lon, lat and time only):

* one file per day, WRF naming ``wrfout_<dom>_YYYY-MM-DD_HH:MM:SS``, hourly records, from the
  config's start through start + lead + 1 h (or ``--hours`` records);
* WRF dimensions (Time, DateStrLen, west_east[_stag], south_north[_stag], bottom_top[_stag]),
  ``Times`` char array, WRF global attributes (MAP_PROJ = 1, TRUELAT1/2, STAND_LON, CEN_LAT/LON,
  MOAD_CEN_LAT, DX/DY, grid and land-use attributes) and the WRF variables the reader uses,
  float32, with WRF's base state (MUB/PB/PHB from T00 = 290 K, A = 50 K, P00 = 1e5 Pa);
* physics (all analytic): south-easterly summer-monsoon flow 3-8 m/s veering with height and
  slowly varying, a cold front passing on day 6-7 (northerly wind, cooling, frontal rain band,
  pressure rise), afternoon convective showers on three days, a day of light stratiform rain;
  diurnal PBL over land (~200 m at night, 1.2-1.8 km in the afternoon, local time UTC+8), a
  land-sea breeze normal to the Hangzhou Bay / East China Sea coast with a compensating return
  flow aloft; T from a moist lapse rate with a diurnal boundary-layer wave; q_v from an RH
  profile; hydrostatic pressures and geopotential consistent with MU/MUB/P/PB/PH/PHB/T/QVAPOR;
  cloud fraction and cloud water in rain/shower/fair-weather-cumulus cells; SWDOWN from the solar
  zenith angle (Spencer/NOAA) and cloud cover; surface fluxes and u* from simple bulk relations;
* coastline: Natural Earth 50 m land polygons (public domain) clipped to 119.4-122.4 E,
  29.2-31.4 N and simplified to 0.006 deg, embedded below (:data:`LAND_POLYGONS`); a domain
  reaching outside that box (e.g. the regional OSSE case of ``benchmarks/regional_case.py``)
  takes its land from Natural Earth's ``ne_50m_land`` shapefile (cartopy's layout, found as the
  maps find it), rasterised at 0.05 deg. Terrain and the urban land use are the sample region's
  (flat land elsewhere), the synoptic flow is the same everywhere.

Files are written atomically (temporary name, then rename). Run::

    python data_sample/make_sample_met.py --config config/config.yaml --out data_sample/met

This is synthetic data for exercising the system; it is not a forecast of any real weather.
"""

from __future__ import annotations

import argparse
import logging
import os
import time as _time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import shapely
from scipy.interpolate import RegularGridInterpolator
from scipy.ndimage import gaussian_filter

from aqforecast.chemistry.photolysis import cos_solar_zenith
from aqforecast.config import load_config
from aqforecast.constants import CP_DRY, GRAVITY, P0, R_DRY
from aqforecast.grid import LambertGrid, VerticalGrid, grids_from_config
from aqforecast.io.wrf_write import (
    WRF_DIMS,
    WRF_TIME_VARIABLES,
    wrf_global_attributes,
    write_wrfout,
)

log = logging.getLogger("make_sample_met")

#: Natural Earth 50 m land (ne_50m_land), clipped and simplified (see module docstring).
LAND_POLYGONS = [
    [(121.661, 31.32), (121.786, 31.163), (121.834, 31.062), (121.878, 30.917), (121.769, 30.87),
     (121.528, 30.841), (121.419, 30.79), (121.31, 30.7), (120.998, 30.558), (120.897, 30.393),
     (120.821, 30.355), (120.63, 30.391), (120.45, 30.388), (120.246, 30.284), (120.195, 30.241),
     (120.261, 30.263), (120.353, 30.247), (120.495, 30.303), (120.633, 30.133), (120.904, 30.161),
     (121.159, 30.302), (121.258, 30.304), (121.341, 30.282), (121.433, 30.227), (121.678, 29.979),
     (121.812, 29.952), (121.944, 29.894), (122.017, 29.888), (122.083, 29.87), (121.906, 29.78),
     (121.677, 29.584), (121.575, 29.537), (121.506, 29.485), (121.69, 29.511), (121.822, 29.605),
     (121.888, 29.628), (121.941, 29.606), (121.968, 29.491), (121.927, 29.2), (121.807, 29.2),
     (121.791, 29.226), (121.717, 29.256), (121.656, 29.236), (121.534, 29.237), (121.494, 29.2),
     (119.4, 29.2), (119.4, 31.4), (121.511, 31.4), (121.661, 31.32)],
    [(122.043, 29.736), (122.062, 29.773), (122.12, 29.782), (122.165, 29.701), (122.169, 29.66),
     (122.084, 29.725), (122.043, 29.736)],
    [(122.332, 29.935), (122.351, 29.955), (122.4, 29.95), (122.394, 29.846), (122.368, 29.853),
     (122.332, 29.935)],
    [(122.024, 30.013), (121.978, 30.064), (121.969, 30.143), (122.111, 30.14), (122.284, 30.068),
     (122.322, 30.031), (122.282, 29.944), (122.158, 30.001), (122.024, 30.013)],
]
#: Urban centres (lon, lat, radius km) -> USGS land use 1.
CITIES = [(120.16, 30.27, 9.0), (120.27, 30.17, 4.0), (120.58, 30.00, 5.0), (121.55, 29.87, 7.0),
          (120.75, 30.75, 5.0), (120.09, 30.87, 4.5), (121.34, 30.74, 3.5), (121.15, 30.04, 3.0),
          (121.25, 30.17, 3.0), (120.30, 30.42, 3.0)]
WRF_NZ = 20            # WRF layers (bottom_top)
WRF_P_TOP = 5000.0     # Pa
LOCAL_UTC_OFFSET_H = 8.0
T00, TLP, P00_BASE, TISO = 290.0, 50.0, 1.0e5, 200.0
EPS_V = 461.6 / 287.0  # R_v / R_d
#: Time-dependent fields keep 16 significant mantissa bits (netCDF-C 4.9 BitRound quantisation,
#: relative precision 1.5e-5; P and PH are perturbations, so ~0.01 Pa / 0.01 m2 s-2): smaller and
#: faster to compress.
SIGNIFICANT_BITS = 16
MU_REF = 95000.0  # Pa, reference dry column mass for the wind speed-up over terrain
_REF = (119.4, 122.4, 29.2, 31.4, 0.01)  # reference lon/lat raster for smooth land fields


# ----------------------------------------------------------------------------- geography
def _reference_land():
    lo0, lo1, la0, la1, d = _REF
    lon = np.arange(lo0, lo1 + d / 2, d)
    lat = np.arange(la0, la1 + d / 2, d)
    lo, la = np.meshgrid(lon, lat)
    land = np.zeros(lo.shape, bool)
    for poly in LAND_POLYGONS:
        land |= shapely.contains_xy(shapely.Polygon(poly), lo, la)
    return lon, lat, land.astype(float)


_GEO = {}
#: Natural Earth 50 m land (cartopy's layout, ../shared/data/boundaries/...; public domain) for
#: domains outside the embedded coastline's box: rasterised at this spacing (degrees)
NE_LAND = Path("shapefiles") / "natural_earth" / "physical" / "ne_50m_land.shp"
NE_RES = 0.05


def _inside_reference(lon, lat) -> bool:
    """Whether every point lies in the embedded coastline's box (the sample case's domains)."""
    lo0, lo1, la0, la1, _ = _REF
    return bool(np.min(lon) >= lo0 and np.max(lon) <= lo1 and np.min(lat) >= la0
                and np.max(lat) <= la1)


def natural_earth_land(lon, lat, natural_earth=None):
    """(lon, lat, land 0/1) raster of Natural Earth 50 m land covering the points plus 1 deg,
    at NE_RES. ``natural_earth``: a directory in cartopy's layout (default: the search of
    :func:`aqforecast.products.maps.natural_earth_dir`)."""
    from cartopy.io.shapereader import Reader

    from aqforecast.products.maps import natural_earth_dir

    shp = natural_earth_dir(natural_earth) / NE_LAND
    if not shp.exists():
        raise FileNotFoundError(f"{shp}: Natural Earth 50 m land polygons (ne_50m_land.shp) "
                                f"are needed for a domain outside {_REF[:4]} (lon0, lon1, lat0, "
                                f"lat1, the embedded coastline's box)")
    lo0, lo1 = np.floor(np.min(lon)) - 1.0, np.ceil(np.max(lon)) + 1.0
    la0, la1 = np.floor(np.min(lat)) - 1.0, np.ceil(np.max(lat)) + 1.0
    glon = np.arange(lo0, lo1 + NE_RES / 2, NE_RES)
    glat = np.arange(la0, la1 + NE_RES / 2, NE_RES)
    box = shapely.box(lo0, la0, lo1, la1)
    parts = [shapely.intersection(g, box) for g in Reader(str(shp)).geometries()
             if shapely.intersects(g, box)]
    lo, la = np.meshgrid(glon, glat)
    land = np.zeros(lo.shape, bool)
    for g in parts:
        shapely.prepare(g)
        land |= shapely.contains_xy(g, lo, la)
    return glon, glat, land.astype(float)


def geography(lon=None, lat=None):
    """Interpolators of land (0/1), smooth land fraction and onshore vector: on the embedded
    reference raster (the sample case) when the points lie in its box (or none are given),
    else on a Natural Earth 50 m raster covering them."""
    key = "reference" if lon is None or _inside_reference(lon, lat) else \
        tuple(np.round([np.min(lon), np.max(lon), np.min(lat), np.max(lat)], 3))
    if key not in _GEO:
        if key == "reference":
            glon, glat, land = _reference_land()
            cell_km = _REF[4] * 111.2
        else:
            glon, glat, land = natural_earth_land(lon, lat)
            cell_km = NE_RES * 111.2
        sb = gaussian_filter(land, sigma=9.0 / cell_km, mode="nearest")    # ~9 km coastal scale
        ls = gaussian_filter(land, sigma=2.5 / cell_km, mode="nearest")
        gy, gx = np.gradient(sb)
        gx = gx / np.cos(np.deg2rad(glat))[:, None]
        mag = np.hypot(gx, gy)
        scale = np.percentile(mag[mag > 0], 99.5)
        kw = dict(bounds_error=False, fill_value=None)
        _GEO[key] = dict(
            land=RegularGridInterpolator((glat, glon), land, method="nearest", **kw),
            land_smooth=RegularGridInterpolator((glat, glon), ls, **kw),
            onshore_e=RegularGridInterpolator((glat, glon), np.clip(gx / scale, -1, 1), **kw),
            onshore_n=RegularGridInterpolator((glat, glon), np.clip(gy / scale, -1, 1), **kw))
    return _GEO[key]


def _at(name, lon, lat, geo=None):
    pts = np.stack([np.ravel(lat), np.ravel(lon)], axis=-1)
    return (geo or geography())[name](pts).reshape(np.shape(lon))


def _smooth_noise(lon, lat, seed, n=6, kmin=4.0, kmax=14.0):
    """Deterministic smooth pseudo-random field of lon/lat in [-1, 1] (sum of plane waves)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(np.shape(lon))
    for _ in range(n):
        k = rng.uniform(kmin, kmax)
        a = rng.uniform(0, 2 * np.pi)
        ph = rng.uniform(0, 2 * np.pi)
        out += np.cos(k * (np.cos(a) * lon + np.sin(a) * lat) * 2 * np.pi / 3.0 + ph)
    return out / np.sqrt(n / 2.0) / 2.0


def terrain(lon, lat, land):
    h = (650 * np.exp(-((lon - 119.85) / 0.35) ** 2 - ((lat - 30.05) / 0.45) ** 2)
         + 420 * np.exp(-((lon - 120.65) / 0.22) ** 2 - ((lat - 29.75) / 0.18) ** 2)
         + 380 * np.exp(-((lon - 121.25) / 0.25) ** 2 - ((lat - 29.65) / 0.15) ** 2)
         + 120 * np.exp(-((lon - 119.95) / 0.25) ** 2 - ((lat - 30.75) / 0.2) ** 2))
    h = h * (1 + 0.25 * _smooth_noise(lon, lat, 7, kmin=10, kmax=25))
    return np.maximum(h, 0.0) * land


def land_use(lon, lat, land, hgt):
    """USGS 24-class land use: 16 water, 1 urban, 3 irrigated crop (paddy), 15 mixed forest."""
    lu = np.where(land > 0.5, 3, 16)
    lu = np.where((land > 0.5) & (hgt > 120.0), 15, lu)
    for clon, clat, r in CITIES:
        d = np.hypot((lon - clon) * 111.2 * np.cos(np.deg2rad(clat)), (lat - clat) * 111.2)
        lu = np.where((d < r) & (land > 0.5), 1, lu)
    return lu


# ----------------------------------------------------------------------------- weather
FRONT_T = 150.0   # hour of the cold front passage at the reference point (since start)


def synoptic(th):
    """Surface-layer synoptic wind speed, direction (from, deg), MSLP (Pa), T offset (K)."""
    speed = 5.5 + 2.0 * np.sin(2 * np.pi * th / (24 * 3.7) + 1.0)
    dirf = 135.0 + 20.0 * np.sin(2 * np.pi * th / (24 * 5.3))
    front = np.exp(-((th - FRONT_T - 12) / 20.0) ** 2)          # post-frontal northerlies
    dirf = dirf * (1 - front) + 30.0 * front
    speed = speed * (1 - front) + 8.0 * front
    mslp = (100650.0 + 200.0 * np.sin(2 * np.pi * th / (24 * 4.1))
            - 350.0 * np.exp(-((th - FRONT_T + 6) / 14.0) ** 2)
            + 500.0 * np.exp(-((th - FRONT_T - 30) / 30.0) ** 2))
    dT = (1.5 * np.sin(2 * np.pi * th / (24 * 6.3))
          - 4.0 * np.exp(-((th - FRONT_T - 24) / 30.0) ** 2))
    return speed, dirf, mslp, dT


def frontal_rain(lon, lat, th):
    """Frontal rain band moving south-east (mm/h, RAINNC) and a day of light stratiform rain."""
    d = ((lon - 120.75) * np.cos(np.deg2rad(30.3)) * 111.2 * 0.7071
         - (lat - 30.3) * 111.2 * 0.7071)    # km across a SW-NE front, + to the south-east
    pos = 25.0 * (th - FRONT_T)               # 25 km/h
    band = np.exp(-((d - pos) / 35.0) ** 2)
    noise = 0.6 + 0.4 * _smooth_noise(lon, lat, 11)
    strat = 1.0 * np.exp(-((th - 272.0) / 6.0) ** 2) * (0.7 + 0.3 * _smooth_noise(lon, lat, 13))
    return np.maximum(4.0 * band * noise + strat, 0.0), band


def convective_rain(lon, lat, th, land):
    """Afternoon showers over land on three days (mm/h, RAINC)."""
    out = np.zeros(np.broadcast_shapes(np.shape(lon), np.shape(th)))
    lt = (th + LOCAL_UTC_OFFSET_H) % 24.0
    day = np.floor((th + LOCAL_UTC_OFFSET_H) / 24.0)
    for d, seed in ((3, 21), (9, 22), (13, 23)):
        act = np.where(day == d, np.exp(-((lt - 16.0) / 1.5) ** 2), 0.0)
        cells = np.maximum(_smooth_noise(lon, lat, seed, n=8, kmin=12, kmax=30) - 0.45, 0.0)
        out = out + 40.0 * act * cells * land
    return out


def pbl_height(lt, land_s, cloud, day_index):
    """PBL height (m): land ~200 m at night, 1.2-1.8 km in the afternoon; sea ~400-500 m."""
    peak = 1500.0 + 300.0 * np.sin(1.3 * day_index + 0.5)
    f = np.clip(np.sin(np.pi * (lt - 7.0) / 12.5), 0.0, 1.0) ** 0.8
    f = np.where((lt > 7.0) & (lt < 19.5), f, 0.0)
    hland = 200.0 + (peak - 200.0) * f * (1.0 - 0.5 * cloud)
    hsea = 450.0 + 50.0 * np.sin(2 * np.pi * lt / 24.0)
    return land_s * hland + (1 - land_s) * hsea


def sea_breeze_amplitude(lt):
    """Onshore wind amplitude (m/s) by local time: +3.5 at 14:30, about -1.8 before dawn."""
    x = 2 * np.pi * (lt - 14.5) / 24.0
    return 2.6 * np.cos(x) + 0.9 * np.cos(2 * x)


# ----------------------------------------------------------------------------- one domain
class Domain:
    """Static fields of one domain (mass and staggered points)."""

    def __init__(self, name: str, grid: LambertGrid, parent: LambertGrid | None, cfg_dom):
        self.name, self.grid, self.cfg = name, grid, cfg_dom
        g = grid
        self.lon, self.lat = g.lonlat
        xu, yu = np.meshgrid(g.x_edges, g.y)
        self.lon_u, self.lat_u = g.to_lonlat(xu, yu)
        xv, yv = np.meshgrid(g.x, g.y_edges)
        self.lon_v, self.lat_v = g.to_lonlat(xv, yv)
        # one raster for the domain and its staggered points (the embedded sample coastline
        # when the domain lies in its box, else Natural Earth 50 m land)
        geo = geography(np.concatenate([self.lon_u.ravel(), self.lon_v.ravel()]),
                        np.concatenate([self.lat_u.ravel(), self.lat_v.ravel()]))
        self.land = _at("land", self.lon, self.lat, geo)
        self.land_s = np.clip(_at("land_smooth", self.lon, self.lat, geo), 0, 1)
        self.hgt = terrain(self.lon, self.lat, self.land_s)
        self.lu = land_use(self.lon, self.lat, self.land, self.hgt)
        self.z0 = np.select([self.lu == 16, self.lu == 1, self.lu == 15], [0.0002, 1.0, 0.8], 0.1)
        self.onshore = (_at("onshore_e", self.lon, self.lat, geo),
                        _at("onshore_n", self.lon, self.lat, geo))
        self.cosa, self.sina = g.rotation
        self.parent = parent
        vg = VerticalGrid.stretched(WRF_NZ, WRF_P_TOP, first_layer_m=25.0)
        self.znw = np.asarray(vg.eta_interfaces)
        self.znu = 0.5 * (self.znw[1:] + self.znw[:-1])
        self.dnw = np.diff(self.znw)                   # negative, WRF's DNW
        self.z_nom = vg.standard_heights(100500.0)     # nominal w-level heights AGL, m
        self.zc_nom = 0.5 * (self.z_nom[1:] + self.z_nom[:-1])
        # base state (WRF real.exe: dry base state from T00, TLP, P00; TISO floor)
        psb = P00_BASE * np.exp(-T00 / TLP + np.sqrt((T00 / TLP) ** 2
                                                     - 2.0 * GRAVITY * self.hgt / (TLP * R_DRY)))
        self.mub = psb - WRF_P_TOP
        self.pb = self.znu[:, None, None] * self.mub + WRF_P_TOP
        tb = np.maximum(TISO, T00 + TLP * np.log(self.pb / P00_BASE))
        alb = R_DRY * tb / self.pb
        dphb = -np.cumsum(alb * self.mub * self.dnw[:, None, None], axis=0)
        self.phb = np.concatenate([(GRAVITY * self.hgt)[None], GRAVITY * self.hgt + dphb])
        # sea-breeze vertical shape: onshore below ~600 m, return flow around 1.4 km, zero
        # mass-weighted column mean on the nominal levels
        low = np.exp(-self.zc_nom / 350.0)
        ret = np.exp(-((self.zc_nom - 1400.0) / 500.0) ** 2)
        w = -self.dnw
        self.sb_shape = low - ret * np.sum(low * w) / np.sum(ret * w)
        fix = ((self.zc_nom > 1000.0) & (self.zc_nom < 3000.0)).astype(float)
        self.fix_shape = fix / np.sum(fix * w)


def _wind_profile(speed, dirf, z, z0):
    """Earth-relative wind (ue, ve) of the synoptic flow at heights z (m AGL): log layer below
    800 m, veering 50 deg through the lowest ~3 km, westerlies strengthening aloft."""
    r = np.clip(np.log(np.maximum(z, 0.5) / z0) / np.log(800.0 / z0), 0.25, 1.0)
    veer = dirf + 50.0 * (1.0 - np.exp(-z / 1500.0))
    up = np.clip((z - 3000.0) / 7000.0, 0.0, 1.0)
    d = np.deg2rad(veer * (1 - up) + 255.0 * up)
    s = speed * r * (1 - up) + (speed + 14.0) * up
    return -s * np.sin(d), -s * np.cos(d)


def _qsat(t, p):
    es = 611.2 * np.exp(17.67 * (t - 273.15) / (t - 29.65))
    return 0.622 * es / np.maximum(p - es, 1.0)


def day_fields(dom: Domain, start: datetime, hours: np.ndarray, rain_acc: dict) -> dict:
    """All variables of the records at ``hours`` since ``start`` (arrays with a leading Time)."""
    nt = len(hours)
    th = hours.astype(float)[:, None, None]
    lon, lat = dom.lon, dom.lat
    lt = (th + LOCAL_UTC_OFFSET_H) % 24.0
    day_index = np.floor((th + LOCAL_UTC_OFFSET_H) / 24.0)
    speed, dirf, mslp, dT = synoptic(th)
    frain, band = frontal_rain(lon, lat, th)
    crain = convective_rain(lon, lat, th, dom.land_s)
    # clouds (column maximum) and 3-D cloud fraction
    fair_cu = 0.25 * dom.land_s * np.clip(np.sin(np.pi * (lt - 11.0) / 7.0), 0.0, 1.0) \
        * (0.6 + 0.4 * _smooth_noise(lon, lat, 31))
    c_front = np.clip(1.6 * np.exp(-((band - 1.0) / 0.9) ** 2) * (band > 0.05) + frain / 4.0,
                      0, 0.95)
    c_conv = np.clip(crain / 10.0, 0.0, 0.9)
    cmax = np.clip(np.maximum.reduce([fair_cu, c_front, c_conv]), 0.0, 0.95)
    zc = dom.zc_nom[None, :, None, None]
    lay_cu = ((zc > 1200) & (zc < 2600)) * fair_cu[:, None]
    lay_fr = ((zc > 900) & (zc < 7000)) * c_front[:, None]
    lay_cv = ((zc > 1100) & (zc < 9000)) * c_conv[:, None]
    cldfra = np.clip(np.maximum.reduce([lay_cu, lay_fr, lay_cv]), 0.0, 1.0)
    qcloud = 3.0e-4 * cldfra * (zc < 6000)
    # radiation and boundary layer
    times = np.datetime64(start, "s") + (hours * 3600).astype("timedelta64[s]")
    cosz = np.stack([cos_solar_zenith(t, lon, lat) for t in times])
    swdown = np.maximum(1361.0 * cosz * 0.75 * (1.0 - 0.7 * cmax), 0.0)
    pblh = pbl_height(lt, dom.land_s, cmax, day_index)
    # temperature: moist lapse rate, diurnal boundary-layer wave, front, terrain
    tmean = 302.0 - 1.5 * (1 - dom.land_s) + dT - 0.0065 * dom.hgt
    diurnal = (4.0 * dom.land_s + 0.7 * (1 - dom.land_s)) * np.cos(2 * np.pi * (lt - 15.0) / 24.0) \
        * (1.0 - 0.6 * cmax)
    hd = np.maximum(pblh, 300.0)[:, None]
    z3 = dom.zc_nom[None, :, None, None]
    tfree = tmean[:, None] - 0.0060 * z3
    tfree = np.maximum(tfree, 197.0 + 0.001 * np.maximum(z3 - 16000.0, 0.0))
    tk = tfree + diurnal[:, None] * np.clip(1.0 - z3 / hd, 0.0, 1.0)
    # relative humidity profile
    rh_sfc = ((0.72 - 0.12 * np.cos(2 * np.pi * (lt - 3.0) / 24.0)) * dom.land_s
              + 0.85 * (1 - dom.land_s))
    rh_sfc = np.clip(rh_sfc + 0.2 * np.clip(frain + crain, 0, 1), 0, 0.97)
    rh = rh_sfc[:, None] * np.exp(-np.maximum(z3 - hd, 0.0) / 5000.0)
    rh = np.maximum(rh, 0.95 * (cldfra > 0.05))
    # surface pressure target and dry column mass
    t_sfc = tk[:, 0] + 0.0065 * dom.zc_nom[0]
    psfc_t = (mslp + 100.0 * np.cos(4 * np.pi * (lt - 10.0) / 24.0)) \
        * np.exp(-GRAVITY * dom.hgt / (R_DRY * (t_sfc + 0.00325 * dom.hgt)))
    mu = (psfc_t - WRF_P_TOP) * 0.985  # first guess (qv ~ 1.5 % column mean)
    dnw = dom.dnw[None, :, None, None]
    for _ in range(2):
        pd_c = dom.znu[None, :, None, None] * mu[:, None] + WRF_P_TOP
        qv = rh * _qsat(tk, pd_c)
        qcol = np.sum(qv * -dnw, axis=1)
        mu = (psfc_t - WRF_P_TOP) / (1.0 + qcol)
    # hydrostatic full pressure (moist) at w levels, top down, then at mass levels
    dp = -dnw * mu[:, None] * (1.0 + qv)
    pw = WRF_P_TOP + np.concatenate([np.cumsum(dp[:, ::-1], axis=1)[:, ::-1],
                                     np.zeros((nt, 1) + mu.shape[1:])], axis=1)
    p = 0.5 * (pw[:, 1:] + pw[:, :-1])
    theta = tk * (P0 / p) ** (R_DRY / CP_DRY)
    alpha = R_DRY * tk * (1.0 + EPS_V * qv) / p
    phi0 = (GRAVITY * dom.hgt)[None, None]
    phi = np.concatenate([np.broadcast_to(phi0, (nt, 1) + dom.hgt.shape),
                          phi0 + np.cumsum(alpha * mu[:, None] * -dnw, axis=1)], axis=1)
    z_agl = (phi[:, :-1] + phi[:, 1:]) / (2 * GRAVITY) - dom.hgt
    # winds: synoptic profile + sea breeze, earth -> grid relative, at mass points then faces
    ue, ve = _wind_profile(speed[:, None], dirf[:, None], z_agl, dom.z0)
    # keep the column-mean wind equal to that of a uniform-roughness column (z0 = 5 cm), by a
    # correction in the 1-3 km layer: the surface drag then does not make the column mass flux
    # divergent at coasts and towns
    w_eta = -dom.dnw[None, :, None, None]
    ae, an = _wind_profile(speed[:, None], dirf[:, None], dom.zc_nom[None, :, None, None], 0.05)
    de = np.sum((ae - ue) * w_eta, axis=1, keepdims=True)
    dn = np.sum((an - ve) * w_eta, axis=1, keepdims=True)
    ue = ue + de * dom.fix_shape[None, :, None, None]
    ve = ve + dn * dom.fix_shape[None, :, None, None]
    sb = (sea_breeze_amplitude(lt) / (1.0 + (speed / 8.0) ** 2) * (1.0 - 0.7 * cmax))
    sbz = sb[:, None] * dom.sb_shape[None, :, None, None]
    ue = ue + sbz * dom.onshore[0]
    ve = ve + sbz * dom.onshore[1]
    # air speeds up where the column is thinner (over hills), so that the column mass flux
    # mu V stays nearly non-divergent as WRF's continuity equation would make it
    thin = (MU_REF / mu)[:, None]
    ug = (ue * dom.cosa + ve * dom.sina) * thin
    vg = (ve * dom.cosa - ue * dom.sina) * thin
    up = np.concatenate([ug[..., :1], ug, ug[..., -1:]], axis=-1)
    U = 0.5 * (up[..., 1:] + up[..., :-1])
    vp = np.concatenate([vg[..., :1, :], vg, vg[..., -1:, :]], axis=-2)
    V = 0.5 * (vp[..., 1:, :] + vp[..., :-1, :])
    # W from the anelastic continuity equation, integrated from w = 0 at the ground
    dx = dom.grid.dx
    m = dom.grid.map_factor
    div = m * ((U[..., 1:] - U[..., :-1]) + (V[..., 1:, :] - V[..., :-1, :])) / dx
    dzl = np.diff(phi, axis=1) / GRAVITY
    W = np.concatenate([np.zeros((nt, 1) + m.shape), -np.cumsum(div * dzl, axis=1)], axis=1)
    W *= np.exp(-np.arange(W.shape[1]) / 12.0)[None, :, None, None]
    # surface layer
    ue10, ve10 = _wind_profile(speed, dirf, np.full_like(speed, 10.0), dom.z0)
    sb10 = sb * dom.sb_shape[0]
    ue10, ve10 = ue10 + sb10 * dom.onshore[0], ve10 + sb10 * dom.onshore[1]
    u10 = ue10 * dom.cosa + ve10 * dom.sina
    v10 = ve10 * dom.cosa - ue10 * dom.sina
    ust = np.maximum(0.4 * np.hypot(u10, v10) / np.log(10.0 / dom.z0), 0.03)
    ls = dom.land_s
    hfx = ls * (0.30 * swdown * (1 - 0.3 * cmax) - 20.0 * (cosz <= 0)) + (1 - ls) * 8.0
    lh = ls * (0.45 * swdown + 10.0) + (1 - ls) * (80.0 + 30.0 * (speed / 8.0))
    lmask = dom.land > 0.5
    t2 = tk[:, 0] + diurnal * 0.15
    i_hours = hours.astype(int)
    return {
        "U": U, "V": V, "W": W, "PH": phi - dom.phb, "PHB": np.broadcast_to(dom.phb, phi.shape),
        "T": theta - 300.0, "P": p - dom.pb, "PB": np.broadcast_to(dom.pb, p.shape),
        "QVAPOR": qv, "QCLOUD": qcloud, "CLDFRA": cldfra,
        "MU": mu - dom.mub, "MUB": np.broadcast_to(dom.mub, mu.shape), "PSFC": pw[:, 0],
        "T2": t2, "Q2": qv[:, 0], "U10": u10, "V10": v10, "PBLH": pblh, "HFX": hfx, "LH": lh,
        "UST": ust, "SWDOWN": swdown,
        "RAINC": rain_acc["c"][i_hours], "RAINNC": rain_acc["nc"][i_hours],
        "_frain": frain, "_crain": crain, "_lmask": lmask,
    }


def rain_accumulations(dom: Domain, nhours: int) -> dict:
    """Accumulated RAINC/RAINNC (mm) at hours 0..nhours-1 since the start (hour-ending rates)."""
    th = np.arange(nhours, dtype=float)[:, None, None]
    mid = th - 0.5
    fr, _ = frontal_rain(dom.lon, dom.lat, mid)
    cr = convective_rain(dom.lon, dom.lat, mid, dom.land_s)
    fr[0] = 0.0
    cr[0] = 0.0
    return {"nc": np.cumsum(fr, axis=0), "c": np.cumsum(cr, axis=0)}


# ----------------------------------------------------------------------------- writing
# The file layout (dimensions, attributes, static grid fields, base-state constants) is the
# package's wrfout writer, shared with aqforecast.met.station_analysis.
_VARS = WRF_TIME_VARIABLES
_DIMS = WRF_DIMS


def _global_attrs(dom: Domain, start: datetime, grid_id: int, parent_id: int) -> dict:
    c = dom.cfg
    return wrf_global_attributes(
        dom.grid, start, WRF_NZ, title="synthetic: aqforecast data_sample/make_sample_met.py",
        grid_id=grid_id, parent_id=parent_id, i_parent_start=(c.i_parent_start or 0) + 1,
        j_parent_start=(c.j_parent_start or 0) + 1, parent_grid_ratio=c.ratio or 1)


def write_day(dom: Domain, start: datetime, hours: np.ndarray, rain_acc: dict, path: Path,
              grid_id: int, parent_id: int, complevel: int = 1) -> Path:
    """Write the records at ``hours`` (since start) of one domain to ``path`` atomically."""
    f = day_fields(dom, start, hours, rain_acc)
    return write_wrfout(path, dom.grid, start, hours, f, hgt=dom.hgt, lu_index=dom.lu,
                        landmask=dom.land, znw=dom.znw, p_top=WRF_P_TOP,
                        attrs=_global_attrs(dom, start, grid_id, parent_id),
                        complevel=complevel, significant_bits=SIGNIFICANT_BITS)


def _task(args):
    cfg_path, name, hours, out, complevel = args
    dom, start, grid_id, parent_id, nhours = _setup(cfg_path, name)
    key = (str(cfg_path), name, "rain")
    if key not in _SETUP_CACHE or len(_SETUP_CACHE[key]["c"]) <= int(hours.max()):
        _SETUP_CACHE[key] = rain_accumulations(dom, max(int(hours.max()) + 1, nhours))
    acc = _SETUP_CACHE[key]
    day0 = start + timedelta(hours=int(hours[0]))
    path = Path(out) / f"wrfout_{name}_{day0:%Y-%m-%d_%H:%M:%S}"
    write_day(dom, start, hours, acc, path, grid_id, parent_id, complevel)
    return str(path)


_SETUP_CACHE = {}


def _setup(cfg_path, name):
    key = (str(cfg_path), name)
    if key not in _SETUP_CACHE:
        cfg = load_config(cfg_path)
        grids = grids_from_config(cfg)
        names = [d.name for d in cfg.domains]
        dcfg = cfg.domain(name)
        parent = grids[dcfg.parent] if dcfg.parent else None
        start = cfg.time.start.replace(tzinfo=None)
        dom = Domain(name, grids[name], parent, dcfg)
        grid_id = names.index(name) + 1
        parent_id = names.index(dcfg.parent) + 1 if dcfg.parent else 0
        _SETUP_CACHE[key] = (dom, start, grid_id, parent_id, cfg.time.lead_hours + 2)
    return _SETUP_CACHE[key]


def generate(config: str | os.PathLike, out: str | os.PathLike, hours: int | None = None,
             domains: list[str] | None = None, workers: int = 2, complevel: int = 1) -> list[str]:
    """Write the sample wrfout files; returns their paths. ``hours`` = number of hourly records
    (default lead + 2: start .. start + lead + 1 h)."""
    cfg = load_config(config)
    names = domains or [d.name for d in cfg.domains]
    nrec = hours if hours is not None else cfg.time.lead_hours + 2
    start = cfg.time.start.replace(tzinfo=None)
    tasks = []
    for name in names:
        all_h = np.arange(nrec)
        day = np.floor((all_h + start.hour) / 24.0).astype(int)   # file per calendar day
        for d in np.unique(day):
            tasks.append((str(config), name, all_h[day == d], str(out), complevel))
    Path(out).mkdir(parents=True, exist_ok=True)
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(_task, tasks))
    return [_task(t) for t in tasks]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--out", default="data_sample/met")
    ap.add_argument("--hours", type=int, default=None,
                    help="number of hourly records (default: lead_hours + 2)")
    ap.add_argument("--domains", nargs="*", default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--complevel", type=int, default=1, help="zlib level (0 = none)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = _time.perf_counter()
    paths = generate(a.config, a.out, a.hours, a.domains, a.workers, a.complevel)
    size = sum(os.path.getsize(p) for p in paths)
    log.info("wrote %d wrfout files (%.1f MB) to %s in %.1f s", len(paths), size / 1e6, a.out,
             _time.perf_counter() - t0)


if __name__ == "__main__":
    main()
