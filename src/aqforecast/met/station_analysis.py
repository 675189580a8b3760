"""Meteorology analysed from surface stations, written as ``wrfout`` files: the forcing of an
*analysed-met hindcast* where no WRF run exists for the dates (README, "Hindcast").

What it owns: station hourly wind, temperature, pressure, dew point and rain -> 2-D analyses on
the model grid -> a diagnosed boundary layer -> 3-D columns -> daily wrfout files in WRF's
layout (:func:`aqforecast.io.wrf_write.write_wrfout`), read back by the normal reader
(:class:`aqforecast.io.wrf.WrfOutput`, :class:`aqforecast.met.MetProvider`).

**Objective analysis** (:func:`barnes_analysis`): per hour and variable, the network mean is the
background and the station anomalies are spread by a two-pass Barnes (1964) scheme (Koch et al.
1983, J. Clim. Appl. Meteor. 22, 1487): Gaussian weights ``w = exp(-r^2 / L^2)`` with
``L = length_km`` (default 20 km, about the spacing of the outer stations of a city network;
Koch et al. recommend L ~ 1.3-2 x the mean station spacing [L]), a second pass on the residuals
with ``gamma L^2`` (gamma = 0.3), and a background weight ``w_b`` in the normalisation so that
the analysis relaxes to the network mean far from every station. Winds are analysed as
components: the meteorological direction ``d`` (the direction the wind blows FROM, clockwise
from north) and speed ``S`` give ``u = -S sin d``, ``v = -S cos d`` (east, north;
:func:`wind_components`), rotated to grid-relative with WRF's COSALPHA/SINALPHA. Then the
column-integrated mass flux is made non-divergent (Sherman 1978, J. Appl. Meteor. 17, 312 --
the MATHEW/CALMET adjustment in its simplest form): a potential chi with zero boundary values
solves the discrete Poisson equation of the column flux divergence (DST-I, exact for the
5-point Laplacian) and ``-grad chi`` is added to every layer, so the model's diagnosed
vertical flux through its lid stays at the small pressure-tendency residual.

**Boundary layer** (:func:`boundary_layer`), the AERMET scheme of AERMOD (Cimorelli et al.
2005, J. Appl. Meteor. 44, 682; EPA-454/B-03-002), under a cloud-free assumption (cloud cover
n = 1 only where it rains):

* clear-sky insolation ``R = 990 sin(phi) - 30`` W m-2 (Kasten & Czeplak 1980) times
  ``1 - 0.75 n^3.4`` = SWDOWN; net radiation (Holtslag & van Ulden 1983)
  ``Rn = [(1 - albedo) R + c1 T^6 - sigma T^4 + c2 n] / (1 + c3)``, c1 = 5.31e-13 W m-2 K-6,
  c2 = 60 W m-2, c3 = 0.12 [L];
* optional aerosol dimming of the insolation (``AnalysisSettings.aerosol_dimming``, off by
  default; :func:`aerosol_transmission`): an aerosol optical depth from the analysed surface
  PM2.5, ``tau = E c H`` -- E the mass-extinction efficiency (default 4 m2 g-1 at 550 nm, the
  upper end of dry fine-particle efficiencies, ~3-4 m2 g-1 for sulphate/nitrate/organics in
  Hand & Malm 2007, J. Geophys. Res. 112, D16203 [L], below the hygroscopic values of humid
  haze), c the PM2.5 mass concentration, H a haze-layer depth (default 1000 m [D: an aerosol
  scale height of the order of the winter mixed layer and its residual layer]) -- so tau =
  0.8 at 200 ug m-3, the lower end of the AOD 1-3 measured in Beijing's winter haze [L]; the
  direct beam is attenuated by Beer-Lambert, ``T_dir = exp(-tau / sin(phi))``, and a fraction
  ``d`` of the extinguished beam still reaches the ground as diffuse light (default 0.5 [D:
  single scattering with albedo ~0.9 sends ~3/4 of it forward; multiple scattering and
  absorption in a thick haze send less]): SWDOWN is multiplied by ``T_dir + d (1 - T_dir)``
  (at most a halving). Stations in ``aerosol_exclude`` (the hindcast's withheld stations)
  do not enter the PM2.5 analysis. This uses observed PM2.5 of the hours being forecast, like
  the rest of the analysed met: it is a bound on what an aerosol-radiation feedback could give,
  not a forecast;
* day (Rn > 0): ``H = 0.9 Rn / (1 + 1/Bo)`` (10 % to the ground, Bowen ratio Bo), ``LH = H/Bo``;
  night: ``H = -rho c_p u* theta*`` with ``theta* = 0.09 (1 - 0.5 n^2)`` K (van Ulden &
  Holtslag 1985) and AERMET's limit ``u* theta* <= 0.05`` K m s-1 (Hanna 1986; at most ~64 W
  m-2 lost);
* u* from the neutral log law at 10 m, ``u* = kappa U10 / ln(10/z0)``, floor 0.05 m s-1 (no
  stability correction: AERMET iterates one);
* mechanical height ``z_im = 2300 u*^1.5`` (Venkatram 1980, BLM 19, 481) smoothed in time as
  AERMET does, ``z(t+1) = z(t) e^(-dt/tau) + z_im (1 - e^(-dt/tau))``, tau = z/(2 u*);
* convective height (Carson 1973, as modified by Weil & Brower 1983) from the heat put into
  the layer since sunrise against the morning stratification gamma_theta:
  ``z_ic = sqrt(2 (1 + 2A) int H/(rho c_p) dt / gamma_theta)``, A = 0.2;
* PBLH = max(z_ic, z_im) by day, z_im by night, within [50, 4000] m (AERMET's cap).

**Columns** (:func:`column_fields`): flat terrain at ``terrain_m`` (no elevation data here);
the station winds are brought to a blending height z_b = 100 m with their own roughness and
analysed there (so that the analysis does not mix urban and rural 10-m winds); each cell's wind
follows the neutral log law with its own z0 below z_b, with a reference z0 (0.1 m) from z_b to
the PBL top, and stays at the PBL-top value above (no turning with height, no free-
tropospheric jet: there is no upper-air observation); temperature is dry adiabatic in the daytime mixed layer, in the stable
layer at night theta rises by the surface-layer similarity value ``(theta*/kappa) [ln(h/2 m) +
5 h/L]`` capped at 8 K [D], and above the PBL T falls at 5 K/km (gamma_theta = 4.8 K/km) to a
215 K tropopause; water vapour is well mixed in the PBL and decays with a 2 km scale above it,
below 95 % saturation; pressure and geopotential are hydrostatic from the analysed surface
pressure. Clouds (CLDFRA 0.9, 1-5 km) only where it rains; W = 0 (the model diagnoses its own
vertical mass flux).

This is the best the stations allow and it costs realism: no terrain (the mountains west and
north of Beijing that channel and block the flow), no vertical wind shear or upper-level
transport, a boundary layer diagnosed rather than simulated, clouds only with rain, and the
analysis sees the same stations the forecast is verified at (their meteorology, not their
pollutants). It is an analysed-met hindcast, not a forecast with forecast meteorology.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.fft import dstn, idstn

from ..constants import CP_DRY, GRAVITY, KARMAN, P0, R_DRY
from ..grid import VerticalGrid
from ..io.wrf_write import wrf_base_state, wrf_global_attributes, wrfout_name, write_wrfout

__all__ = [
    "COMPASS_DEGREES",
    "AnalysisSettings",
    "StationMet",
    "aerosol_transmission",
    "barnes_analysis",
    "boundary_layer",
    "column_fields",
    "dewpoint_mixing_ratio",
    "saturation_mixing_ratio",
    "sin_solar_elevation",
    "surface_fields",
    "wind_components",
    "write_station_wrfout",
]

log = logging.getLogger(__name__)

#: 16-point compass names -> meteorological direction (deg clockwise from north, "from").
COMPASS_DEGREES = {name: 22.5 * k for k, name in enumerate(
    ["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW",
     "NW", "NNW"])}
SIGMA_SB = 5.670374419e-8   # Stefan-Boltzmann, W m-2 K-4
_EPS = 0.622
_SECONDS = 3600.0


@dataclass
class AnalysisSettings:
    """Parameters of the analysis and of the boundary-layer diagnosis (module docstring)."""

    length_km: float = 20.0          # Barnes length scale L
    wind_length_km: float = 40.0     # winds: one pass with a longer L (see docstring)
    wind_background_weight: float = 1.0  # winds relax to the network mean ~60 km out
    free_troposphere_blend_m: float = 500.0  # PBL wind -> network-mean wind over this depth
    gamma: float = 0.3               # second-pass factor on L^2
    background_weight: float = 0.05  # weight of the network mean in the normalisation
    albedo: float = 0.2              # winter/urban-cropland AERMET range 0.18-0.35 [L]
    bowen: float = 1.5               # Bowen ratio (winter, average moisture) [L]
    z0_rural_m: float = 0.1          # cropland
    z0_urban_m: float = 1.0
    gamma_theta: float = 4.8e-3      # K m-1 above the PBL (5 K/km lapse)
    entrainment_a: float = 0.2       # Carson / Weil & Brower A
    pbl_min_m: float = 50.0
    pbl_max_m: float = 4000.0
    terrain_m: float = 50.0          # flat terrain height (Beijing plain ~ 30-80 m)
    blending_height_m: float = 100.0  # winds analysed here (roughness-independent)
    z0_reference_m: float = 0.1      # roughness of the profile above the blending height
    log_layer_top_m: float = 200.0   # winds constant above (independent of the PBL height)
    wrf_nz: int = 20
    first_layer_m: float = 25.0
    urban: list[tuple[float, float, float]] = field(default_factory=list)  # (lon, lat, km)
    # aerosol dimming of the insolation from the analysed surface PM2.5 (module docstring)
    aerosol_dimming: bool = False
    aerosol_mee_m2_g: float = 4.0    # mass-extinction efficiency at 550 nm, m2 g-1 [L]
    haze_layer_m: float = 1000.0     # depth over which the surface PM2.5 extends [D]
    aerosol_diffuse_fraction: float = 0.5  # share of the extinguished beam reaching the ground
    aerosol_exclude: list[str] = field(default_factory=list)  # stations left out (withheld)


@dataclass
class StationMet:
    """Hourly station meteorology in SI units, UTC: arrays (nt, ns), NaN where missing.

    ``u10``/``v10`` earth-relative (east/north) 10 m wind, m s-1; ``t2`` K; ``psfc`` Pa;
    ``td`` dew point K; ``rain`` mm in the hour beginning at ``times``; ``pm25`` PM2.5 ug m-3
    (None when the table has none)."""

    times: np.ndarray
    names: list[str]
    lon: np.ndarray
    lat: np.ndarray
    u10: np.ndarray
    v10: np.ndarray
    t2: np.ndarray
    psfc: np.ndarray
    td: np.ndarray
    rain: np.ndarray
    pm25: np.ndarray | None = None   # ug m-3 (optional: the aerosol dimming)

    @classmethod
    def from_table(cls, df, coords, utc_offset_hours: float = 8.0,
                   max_gap_hours: int = 6) -> StationMet:
        """From a long table (columns time [local], station, TEMP degC, PRES hPa, DEWP degC,
        RAIN mm, WSPM m s-1, wd compass text, optionally PM2.5 ug m-3: the PRSA layout of
        :func:`aqforecast.observations.read_prsa`) and a station table (station, lon, lat).
        Gaps up to ``max_gap_hours`` are interpolated in time per station; rain gaps are 0."""
        import pandas as pd

        c = coords.set_index("station")
        names = [s for s in sorted(df["station"].unique()) if s in c.index]
        missing = sorted(set(df["station"].unique()) - set(names))
        if missing:
            log.warning("stations without coordinates, not analysed: %s", missing)
        t = pd.to_datetime(df["time"]) - pd.Timedelta(hours=utc_offset_hours)
        times = pd.date_range(t.min(), t.max(), freq="h")
        d = df.assign(time=t)
        direction = d["wd"].map(COMPASS_DEGREES).astype(float)
        speed = d["WSPM"].astype(float)
        u, v = wind_components(speed.to_numpy(), direction.to_numpy())
        calm = speed.to_numpy() == 0.0
        u[calm], v[calm] = 0.0, 0.0
        d = d.assign(_u=u, _v=v, _t=d["TEMP"] + 273.15, _p=d["PRES"] * 100.0,
                     _td=d["DEWP"] + 273.15, _r=d["RAIN"])
        has_pm = "PM2.5" in d

        def wide(col, fill_rain=False):
            w = d.pivot_table(index="time", columns="station", values=col, aggfunc="mean")
            w = w.reindex(index=times, columns=names)
            if fill_rain:
                return w.fillna(0.0).to_numpy(float)
            w = w.interpolate(limit=max_gap_hours, limit_area="inside")
            return w.to_numpy(float)

        return cls(times=times.to_numpy().astype("datetime64[s]"), names=names,
                   lon=c.loc[names, "lon"].to_numpy(float),
                   lat=c.loc[names, "lat"].to_numpy(float),
                   u10=wide("_u"), v10=wide("_v"), t2=wide("_t"), psfc=wide("_p"),
                   td=wide("_td"), rain=np.maximum(wide("_r", fill_rain=True), 0.0),
                   pm25=wide("PM2.5") if has_pm else None)


def wind_components(speed, direction_deg):
    """(u, v) east/north components (m s-1) of a wind of ``speed`` blowing FROM the
    meteorological direction ``direction_deg`` (clockwise from north): a north wind (0 deg)
    blows southward, u = 0, v = -speed; a west wind (270 deg) blows eastward, u = +speed."""
    d = np.deg2rad(np.asarray(direction_deg, dtype=float))
    s = np.asarray(speed, dtype=float)
    return -s * np.sin(d), -s * np.cos(d)


def _local_xy(lon, lat, lon0, lat0):
    """Equirectangular km about (lon0, lat0): accurate to < 0.1 % over ~200 km."""
    x = (np.asarray(lon) - lon0) * 111.195 * np.cos(np.deg2rad(lat0))
    y = (np.asarray(lat) - lat0) * 111.195
    return x, y


def barnes_analysis(st_lon, st_lat, values, lon, lat, length_km: float = 20.0,
                    gamma: float = 0.3, background_weight: float = 0.05) -> np.ndarray:
    """Two-pass Barnes analysis of ``values`` (nt, ns; NaN = missing) at the points ``lon``,
    ``lat`` (any shape); returns (nt,) + lon.shape. The background is the hourly network mean
    (hours with no station at all: NaN). See the module docstring."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    lon0, lat0 = float(np.mean(st_lon)), float(np.mean(st_lat))
    sx, sy = _local_xy(st_lon, st_lat, lon0, lat0)
    gx, gy = _local_xy(np.ravel(lon), np.ravel(lat), lon0, lat0)
    valid = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        bg = np.nanmean(np.where(valid, values, np.nan), axis=1)   # (nt,)
    anom = np.where(valid, values - bg[:, None], 0.0)
    ok = valid.astype(float)

    def weights(px, py, scale2):
        r2 = (px[:, None] - sx[None]) ** 2 + (py[:, None] - sy[None]) ** 2
        return np.exp(-r2 / scale2)

    def spread(w, d):
        num = d @ w.T                        # (nt, npoints)
        den = ok @ w.T + background_weight
        return num / den

    l2 = length_km ** 2
    w1g, w1s = weights(gx, gy, l2), weights(sx, sy, l2)
    a1g, a1s = spread(w1g, anom), spread(w1s, anom)
    resid = np.where(valid, anom - a1s, 0.0)
    a2g = a1g + spread(weights(gx, gy, gamma * l2), resid)
    out = bg[:, None] + a2g
    return out.reshape((values.shape[0],) + np.shape(lon))


def sin_solar_elevation(times, lon, lat) -> np.ndarray:
    """sin of the solar elevation for UTC ``times`` (nt,) at lon/lat (deg) -> (nt,) + shape;
    declination and equation of time of Spencer (1971), as NOAA's solar calculator."""
    t = np.asarray(times, dtype="datetime64[s]")
    doy = (t.astype("datetime64[D]") - t.astype("datetime64[Y]")).astype(float)
    hour = (t - t.astype("datetime64[D]")).astype(float) / 3600.0
    g = 2.0 * np.pi / 365.0 * (doy + (hour - 12.0) / 24.0)
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eot = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                    - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    ex = (slice(None),) + (None,) * np.ndim(lon)
    tst = hour[ex] + (4.0 * np.asarray(lon) + eot[ex]) / 60.0
    ha = np.deg2rad(15.0 * tst - 180.0)
    phi = np.deg2rad(np.asarray(lat))
    d = decl[ex]
    return np.sin(phi) * np.sin(d) + np.cos(phi) * np.cos(d) * np.cos(ha)


def saturation_mixing_ratio(t, p):
    """Saturation mixing ratio over water (kg kg-1) at T (K), p (Pa) (Bolton 1980 e_s)."""
    es = 611.2 * np.exp(17.67 * (t - 273.15) / (t - 29.65))
    return _EPS * es / np.maximum(p - es, 1.0)


def dewpoint_mixing_ratio(td, p):
    """Water-vapour mixing ratio (kg kg-1) of air with dew point ``td`` (K) at ``p`` (Pa)."""
    return saturation_mixing_ratio(td, p)


def aerosol_transmission(pm25, sin_elevation, mee_m2_g: float = 4.0,
                         haze_layer_m: float = 1000.0, diffuse_fraction: float = 0.5):
    """Aerosol dimming of the surface insolation (module docstring): returns ``(tau, t_direct,
    t_global)``, arrays of the broadcast shape of the inputs.

    ``pm25``: PM2.5 mass concentration, ug m-3 (>= 0; NaN = unknown, no dimming);
    ``sin_elevation``: sin of the solar elevation (<= 0: night, transmissions 1);
    ``mee_m2_g``: mass-extinction efficiency at 550 nm, m2 g-1 (> 0); ``haze_layer_m``: the
    depth of the layer holding the surface concentration, m (> 0); ``diffuse_fraction``: the
    share of the extinguished direct beam that still reaches the ground as diffuse light, in
    [0, 1]. ``tau = mee * pm25 * 1e-6 * haze_layer_m`` (g m-3 x m = g m-2, times m2 g-1:
    dimensionless), ``t_direct = exp(-tau / sin_elevation)`` (Beer-Lambert along the slant
    path, air mass 1/sin), ``t_global = t_direct + diffuse_fraction (1 - t_direct)``."""
    if not (mee_m2_g > 0 and haze_layer_m > 0):
        raise ValueError(f"aerosol dimming: mass-extinction efficiency ({mee_m2_g} m2 g-1) and "
                         f"haze-layer depth ({haze_layer_m} m) must be > 0")
    if not 0.0 <= diffuse_fraction <= 1.0:
        raise ValueError(f"aerosol dimming: diffuse fraction {diffuse_fraction} not in [0, 1]")
    c = np.asarray(pm25, dtype=float)
    if np.any(c < 0):
        raise ValueError(f"aerosol dimming: negative PM2.5 ({np.nanmin(c)} ug m-3)")
    tau = mee_m2_g * np.nan_to_num(c, nan=0.0) * 1e-6 * haze_layer_m
    mu = np.asarray(sin_elevation, dtype=float)
    with np.errstate(divide="ignore", over="ignore"):
        t_dir = np.where(mu > 0, np.exp(-tau / np.where(mu > 0, mu, 1.0)), 1.0)
    return tau, t_dir, t_dir + diffuse_fraction * (1.0 - t_dir)


def boundary_layer(times, lon, lat, u10, v10, t2, psfc, rain, z0,
                   s: AnalysisSettings, pm25=None) -> dict:
    """AERMET-style surface energy balance and mixing height (module docstring) for hourly
    fields (nt, ny, nx) at consecutive hours ``times``; returns SWDOWN, HFX, LH, UST, PBLH,
    THETA_STAR (K), the cloud cover n used and the aerosol optical depth AOD (0 without
    dimming), each (nt, ny, nx). ``pm25`` (ug m-3, (nt, ny, nx)): the analysed surface PM2.5,
    required with ``s.aerosol_dimming``."""
    sin_el = sin_solar_elevation(times, lon, lat)
    n = (rain > 0.1).astype(float)
    swdown = np.maximum(990.0 * sin_el - 30.0, 0.0) * (1.0 - 0.75 * n ** 3.4)
    aod = np.zeros_like(swdown)
    if s.aerosol_dimming:
        if pm25 is None:
            raise ValueError("aerosol_dimming needs the surface PM2.5 (a PM2.5 column in the "
                             "station table)")
        aod, _, t_glob = aerosol_transmission(pm25, sin_el, s.aerosol_mee_m2_g, s.haze_layer_m,
                                              s.aerosol_diffuse_fraction)
        aod = np.broadcast_to(aod, swdown.shape).copy()
        swdown = swdown * t_glob
    rn = ((1.0 - s.albedo) * swdown + 5.31e-13 * t2 ** 6 - SIGMA_SB * t2 ** 4 + 60.0 * n) \
        / 1.12
    rho = psfc / (R_DRY * t2)
    speed = np.hypot(u10, v10)
    ust = np.maximum(KARMAN * speed / np.log(10.0 / z0), 0.05)
    day = rn > 0.0
    hfx_day = 0.9 * rn / (1.0 + 1.0 / s.bowen)
    theta_star = np.minimum(0.09 * (1.0 - 0.5 * n ** 2), 0.05 / ust)
    hfx = np.where(day, hfx_day, -rho * CP_DRY * ust * theta_star)
    lh = np.where(day, hfx_day / s.bowen, 0.0)
    z_im = 2300.0 * ust ** 1.5
    nt = len(times)
    pblh = np.empty_like(z_im)
    z_mech = z_im[0].copy()
    heat = np.zeros_like(z_im[0])   # int H/(rho cp) dt since sunrise, K m
    for k in range(nt):
        if k:
            tau = np.maximum(z_mech, 1.0) / (2.0 * ust[k])
            f = np.exp(-_SECONDS / tau)
            z_mech = z_mech * f + z_im[k] * (1.0 - f)
        heat = np.where(day[k], heat + np.maximum(hfx[k], 0.0) / (rho[k] * CP_DRY) * _SECONDS,
                        0.0)
        z_ic = np.sqrt(2.0 * (1.0 + 2.0 * s.entrainment_a) * heat / s.gamma_theta)
        pblh[k] = np.where(day[k], np.maximum(z_ic, z_mech), z_mech)
    pblh = np.clip(pblh, s.pbl_min_m, s.pbl_max_m)
    ts = np.where(day, -hfx / (rho * CP_DRY * ust), theta_star)
    return {"SWDOWN": swdown, "HFX": hfx, "LH": lh, "UST": ust, "PBLH": pblh,
            "THETA_STAR": ts, "CLOUD": n, "AOD": aod}


def _land_use(lon, lat, s: AnalysisSettings):
    """USGS land use: 1 (urban) in the ``urban`` discs, else 2 (dryland cropland)."""
    lu = np.full(np.shape(lon), 2)
    for clon, clat, r in s.urban:
        x, y = _local_xy(lon, lat, clon, clat)
        lu = np.where(np.hypot(x, y) <= r, 1, lu)
    z0 = np.where(lu == 1, s.z0_urban_m, s.z0_rural_m)
    return lu, z0


def _pm25_analysis(obs: StationMet, idx, lon, lat, s: AnalysisSettings) -> np.ndarray:
    """Surface PM2.5 (ug m-3) analysed like temperature (two-pass Barnes) from the stations
    not in ``s.aerosol_exclude``, at the records ``idx`` of ``obs``; hours without a station
    are interpolated in time (0 where no hour has one: no dimming)."""
    if obs.pm25 is None:
        raise ValueError("aerosol_dimming needs PM2.5 in the station table (the PRSA layout's "
                         "PM2.5 column)")
    unknown = sorted(set(s.aerosol_exclude) - set(obs.names))
    if unknown:
        raise ValueError(f"aerosol_exclude: unknown station(s) {unknown}; known: {obs.names}")
    keep = np.array([n not in set(s.aerosol_exclude) for n in obs.names])
    if not keep.any():
        raise ValueError("aerosol_exclude leaves no station for the PM2.5 analysis")
    vals = np.maximum(obs.pm25[idx][:, keep], 0.0)
    a = barnes_analysis(obs.lon[keep], obs.lat[keep], vals, lon, lat, s.length_km, s.gamma,
                        s.background_weight)
    bad = ~np.isfinite(a).all(axis=(1, 2))
    if bad.all():
        log.warning("aerosol dimming: no PM2.5 in the period: no dimming")
        return np.zeros_like(a)
    if bad.any():
        k = np.arange(a.shape[0])
        flat = a.reshape(a.shape[0], -1)
        for j in range(flat.shape[1]):
            flat[bad, j] = np.interp(k[bad], k[~bad], flat[~bad, j])
        a = flat.reshape(a.shape)
    return np.maximum(a, 0.0)


def surface_fields(obs: StationMet, grid, times, s: AnalysisSettings) -> dict:
    """Analysed surface fields (nt, ny, nx) on ``grid`` at the hourly UTC ``times``: earth-
    relative U10E/V10E (and UBE/VBE at the blending height), T2, PSFC, Q2, RAIN (mm in the hour ending at each time), accumulated
    RAINNC from the first time, and the boundary layer of :func:`boundary_layer`."""
    times = np.asarray(times, dtype="datetime64[s]")
    idx = np.searchsorted(obs.times, times)
    if times[0] < obs.times[0] or times[-1] > obs.times[-1] or \
            np.any(obs.times[np.minimum(idx, len(obs.times) - 1)] != times):
        raise ValueError(f"station data cover {obs.times[0]} .. {obs.times[-1]}, not the "
                         f"hours {times[0]} .. {times[-1]}")
    lon, lat = grid.lonlat
    lu, z0 = _land_use(lon, lat, s)
    _, z0_st = _land_use(obs.lon, obs.lat, s)
    # winds are analysed at the blending height, where they no longer feel the local roughness
    to_blend = np.log(s.blending_height_m / z0_st) / np.log(10.0 / z0_st)
    ana = {}
    for name in ("u10", "v10", "t2", "psfc", "td"):
        vals = getattr(obs, name)[idx]
        if name in ("u10", "v10"):
            vals = vals * to_blend[None]
        wind = name in ("u10", "v10")
        a = barnes_analysis(obs.lon, obs.lat, vals, lon, lat,
                            s.wind_length_km if wind else s.length_km,
                            1.0 if wind else s.gamma,
                            s.wind_background_weight if wind else s.background_weight)
        if wind:  # the network mean, the free-tropospheric wind of every column
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(vals, axis=1)
            k = np.arange(len(mean))
            good = np.isfinite(mean)
            ana[name + "_mean"] = np.interp(k, k[good], mean[good])
        # hours without any station: interpolate the analysis in time
        bad = ~np.isfinite(a).all(axis=(1, 2))
        if bad.all():
            raise ValueError(f"no station reports {name} in {times[0]} .. {times[-1]}")
        if bad.any():
            k = np.arange(len(times))
            flat = a.reshape(len(times), -1)
            for j in range(flat.shape[1]):
                flat[bad, j] = np.interp(k[bad], k[~bad], flat[~bad, j])
            a = flat.reshape(a.shape)
        ana[name] = a
    # rain in the hour ENDING at t: the station hour beginning at t - 1 h
    prev = np.searchsorted(obs.times, times - np.timedelta64(1, "h"))
    have = (prev < len(obs.times)) & (obs.times[np.minimum(prev, len(obs.times) - 1)]
                                      == times - np.timedelta64(1, "h"))
    rain_st = np.where(have[:, None], obs.rain[np.minimum(prev, len(obs.times) - 1)], 0.0)
    rain = np.maximum(barnes_analysis(obs.lon, obs.lat, rain_st, lon, lat, s.length_km,
                                      s.gamma, s.background_weight), 0.0)
    rain = np.nan_to_num(rain)
    rain[0] = 0.0
    t2 = ana["t2"]
    psfc = ana["psfc"]
    td = np.minimum(ana["td"], t2)
    from_blend = np.log(10.0 / z0) / np.log(s.blending_height_m / z0)
    u10, v10 = ana["u10"] * from_blend, ana["v10"] * from_blend
    pm = _pm25_analysis(obs, idx, lon, lat, s) if s.aerosol_dimming else None
    bl = boundary_layer(times, lon, lat, u10, v10, t2, psfc, rain, z0, s, pm)
    return {"U10E": u10, "V10E": v10, "UBE": ana["u10"], "VBE": ana["v10"],
            "UBE_MEAN": np.broadcast_to(ana["u10_mean"][:, None, None], t2.shape),
            "VBE_MEAN": np.broadcast_to(ana["v10_mean"][:, None, None], t2.shape), "T2": t2,
            "PSFC": psfc,
            "Q2": dewpoint_mixing_ratio(td, psfc), "RAIN": rain,
            "RAINNC": np.cumsum(rain, axis=0), "LU": lu, "Z0": z0, **bl}


def _poisson_dirichlet(rhs: np.ndarray) -> np.ndarray:
    """chi with the 5-point Laplacian (unit spacing) L chi = rhs and chi = 0 outside."""
    ny, nx = rhs.shape
    ly = 2.0 * np.cos(np.pi * np.arange(1, ny + 1) / (ny + 1)) - 2.0
    lx = 2.0 * np.cos(np.pi * np.arange(1, nx + 1) / (nx + 1)) - 2.0
    return idstn(dstn(rhs, type=1) / (ly[:, None] + lx[None, :]), type=1)


def _faces(a: np.ndarray, axis: int) -> np.ndarray:
    """Mass-point array -> faces along ``axis`` (interior: mean, edges: the edge cell)."""
    lo = np.take(a, [0], axis=axis)
    hi = np.take(a, [-1], axis=axis)
    p = np.concatenate([lo, a, hi], axis=axis)
    n = p.shape[axis]
    return 0.5 * (np.take(p, np.arange(1, n), axis=axis) + np.take(p, np.arange(n - 1), axis=axis))


def nondivergent_columns(U, V, mu, grid, weights, shape=None):
    """Add ``-grad chi`` to the face winds U (nt, nz, ny, nx+1), V (nt, nz, ny+1, nx) so that
    the column dry-mass flux sum_k w_k mu_face U_k / m_face has zero discrete divergence
    (``weights`` w = -DNW, summing to 1; ``mu`` (nt, ny, nx) dry column mass). ``shape`` (nt,
    nz, ny, nx, >= 0) distributes the correction in height (default uniform); it is averaged to
    the faces and normalised there. Returns the corrected U, V and the largest correction,
    m s-1."""
    nt, nz = U.shape[:2]
    if shape is None:
        shape = np.ones((nt, nz) + mu.shape[1:])
    w = weights[None, :, None, None]

    def norm(sh):
        return sh / np.maximum(np.sum(sh * w, axis=1, keepdims=True), 1e-12)

    su, sv = norm(_faces(shape, 3)), norm(_faces(shape, 2))
    mu_u, mu_v = _faces(mu, 2), _faces(mu, 1)
    mf_u, mf_v = grid.map_factor_u, grid.map_factor_v
    fu = np.sum(U * w, axis=1) * mu_u / mf_u
    fv = np.sum(V * w, axis=1) * mu_v / mf_v
    div = (fu[..., 1:] - fu[..., :-1]) + (fv[:, 1:] - fv[:, :-1])
    chi = np.stack([_poisson_dirichlet(d) for d in div])
    pad = np.pad(chi, ((0, 0), (1, 1), (1, 1)))
    gu = pad[:, 1:-1, 1:] - pad[:, 1:-1, :-1]      # (nt, ny, nx+1)
    gv = pad[:, 1:, 1:-1] - pad[:, :-1, 1:-1]      # (nt, ny+1, nx)
    cu = (-gu * mf_u / mu_u)[:, None] * su
    cv = (-gv * mf_v / mu_v)[:, None] * sv
    big = float(max(np.abs(cu).max(), np.abs(cv).max()))
    return U + cu, V + cv, big


def column_fields(sfc: dict, k: slice, grid, s: AnalysisSettings, p_top: float):
    """The WRF variables (arrays with a leading Time) of the records ``sfc[...][k]``, plus the
    static terrain; see the module docstring for the vertical structure."""
    vg = VerticalGrid.stretched(s.wrf_nz, p_top, first_layer_m=s.first_layer_m)
    znw = np.asarray(vg.eta_interfaces)
    znu = 0.5 * (znw[1:] + znw[:-1])
    dnw = np.diff(znw)
    hgt = np.full((grid.ny, grid.nx), s.terrain_m)
    mub, pb, phb = wrf_base_state(hgt, znw, p_top)
    f = {key: np.asarray(v[k]) for key, v in sfc.items() if key not in ("LU", "Z0")}
    z0 = sfc["Z0"]
    nt = f["T2"].shape[0]
    t2, psfc, h = f["T2"], f["PSFC"], f["PBLH"]
    psfc / (R_DRY * t2)
    theta_s = t2 * (P0 / psfc) ** (R_DRY / CP_DRY)
    # stable-layer temperature rise (surface-layer similarity to the PBL top, capped)
    ust, ts = f["UST"], f["THETA_STAR"]
    night = f["HFX"] < 0.0
    obukhov = np.where(night, ust ** 2 * theta_s / (KARMAN * GRAVITY * np.maximum(ts, 1e-6)),
                       np.inf)
    dtheta = np.where(night, np.minimum(ts / KARMAN * (np.log(h / 2.0) + 5.0 * h / obukhov),
                                        8.0), 0.0)
    # first guess of layer heights from the standard atmosphere, then hydrostatic
    z_nom = vg.standard_heights(101325.0)
    zc = np.broadcast_to((0.5 * (z_nom[1:] + z_nom[:-1]))[None, :, None, None],
                         (nt, s.wrf_nz) + hgt.shape)
    w_eta = -dnw
    for _ in range(2):
        hz = h[:, None]
        gd = GRAVITY / CP_DRY
        t_pbl = t2[:, None] - gd * np.minimum(zc, hz) + dtheta[:, None] * np.minimum(zc / hz, 1.0)
        tk = t_pbl - 5.0e-3 * np.maximum(zc - hz, 0.0)
        tk = np.maximum(tk, 215.0)
        # moisture: well mixed in the PBL, 2 km decay above, below 95 % saturation
        mu = (psfc - p_top) * 0.99
        for _ in range(2):
            pd_c = znu[None, :, None, None] * mu[:, None] + p_top
            qv = f["Q2"][:, None] * np.exp(-np.maximum(zc - hz, 0.0) / 2000.0)
            cld = np.where((f["RAIN"][:, None] > 0.1) & (zc > 1000.0) & (zc < 5000.0), 0.9, 0.0)
            qs = saturation_mixing_ratio(tk, pd_c)
            qv = np.clip(np.maximum(qv, 0.95 * qs * (cld > 0)), 1e-7, 0.95 * qs)
            qcol = np.sum(qv * w_eta[None, :, None, None], axis=1)
            mu = (psfc - p_top) / (1.0 + qcol)
        dp = w_eta[None, :, None, None] * mu[:, None] * (1.0 + qv)
        pw = p_top + np.concatenate([np.cumsum(dp[:, ::-1], axis=1)[:, ::-1],
                                     np.zeros((nt, 1) + hgt.shape)], axis=1)
        p = 0.5 * (pw[:, 1:] + pw[:, :-1])
        alpha = R_DRY * tk * (1.0 + 1.608 * qv) / p
        phi0 = np.broadcast_to((GRAVITY * hgt)[None, None], (nt, 1) + hgt.shape)
        phi = np.concatenate([phi0, phi0 + np.cumsum(alpha * mu[:, None] * w_eta[None, :, None,
                                                                                   None],
                                                      axis=1)], axis=1)
        zc = (phi[:, :-1] + phi[:, 1:]) / (2.0 * GRAVITY) - hgt
    theta = tk * (P0 / p) ** (R_DRY / CP_DRY)
    # winds: neutral log profile with the local z0 below the blending height z_b, with the
    # reference z0 from z_b to the PBL top, constant above; earth -> grid relative
    zb, zr = s.blending_height_m, s.z0_reference_m
    zz = np.maximum(zc, z0 * 1.5)
    low = np.log(np.minimum(zz, zb) / z0) / np.log(zb / z0)
    high = np.log(np.clip(zz, zb, max(s.log_layer_top_m, zb)) / zr) / np.log(zb / zr)
    ratio = np.where(zz < zb, low, high)
    # above the PBL the analysed anomaly fades into the network mean (surface stations say
    # nothing of the flow aloft): weight 1 up to h, 0 from h + free_troposphere_blend_m
    fade = np.clip(1.0 - (zc - h[:, None]) / s.free_troposphere_blend_m, 0.0, 1.0)
    ue = ratio * (f["UBE_MEAN"][:, None] + fade * (f["UBE"] - f["UBE_MEAN"])[:, None])
    ve = ratio * (f["VBE_MEAN"][:, None] + fade * (f["VBE"] - f["VBE_MEAN"])[:, None])
    cosa, sina = grid.rotation
    ug = ue * cosa + ve * sina
    vgr = ve * cosa - ue * sina
    U, V = _faces(ug, 3), _faces(vgr, 2)
    free = (fade <= 0.0).astype(float)   # the correction goes where the flow is uniform
    free[:, -1] = 1.0
    U, V, corr = nondivergent_columns(U, V, mu, grid, w_eta, free)
    u10 = f["U10E"] * cosa + f["V10E"] * sina
    v10 = f["V10E"] * cosa - f["U10E"] * sina
    fields = {
        "U": U, "V": V, "W": np.zeros((nt, s.wrf_nz + 1) + hgt.shape),
        "PH": phi - phb, "PHB": np.broadcast_to(phb, phi.shape), "T": theta - 300.0,
        "P": p - pb, "PB": np.broadcast_to(pb, p.shape), "QVAPOR": qv,
        "QCLOUD": 3.0e-4 * cld, "CLDFRA": cld,
        "MU": mu - mub, "MUB": np.broadcast_to(mub, mu.shape), "PSFC": psfc, "T2": t2,
        "Q2": f["Q2"], "U10": u10, "V10": v10, "PBLH": h, "HFX": f["HFX"], "LH": f["LH"],
        "UST": ust, "SWDOWN": f["SWDOWN"], "RAINC": np.zeros_like(t2), "RAINNC": f["RAINNC"],
    }
    return fields, {"hgt": hgt, "znw": znw, "max_correction_ms": corr}


def write_station_wrfout(cfg, obs: StationMet, out_dir, start: datetime, hours: int,
                         settings: AnalysisSettings | None = None,
                         domains: list[str] | None = None, complevel: int = 1) -> list[Path]:
    """Analyse ``obs`` onto every domain of ``cfg`` (or ``domains``) and write daily wrfout
    files (WRF names, hourly records ``start`` .. ``start + hours - 1`` h) to ``out_dir``.
    Returns the paths."""
    from ..grid import grids_from_config

    s = settings or AnalysisSettings()
    grids = grids_from_config(cfg)
    names = [d.name for d in cfg.domains]
    start = start.replace(tzinfo=None, minute=0, second=0, microsecond=0)
    times = np.datetime64(start, "s") + np.arange(hours) * np.timedelta64(1, "h")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    p_top = float(cfg.vertical.p_top_pa)
    for name in domains or names:
        grid = grids[name]
        dcfg = cfg.domain(name)
        sfc = surface_fields(obs, grid, times, s)
        lu = sfc["LU"]
        attrs = wrf_global_attributes(
            grid, start, s.wrf_nz, title="analysed from surface stations: aqforecast "
            "met-from-stations", grid_id=names.index(name) + 1,
            parent_id=names.index(dcfg.parent) + 1 if dcfg.parent else 0,
            i_parent_start=(dcfg.i_parent_start or 0) + 1,
            j_parent_start=(dcfg.j_parent_start or 0) + 1,
            parent_grid_ratio=dcfg.ratio if dcfg.parent else 1)
        hour_of_day = (start.hour + np.arange(hours)) // 24
        for day in np.unique(hour_of_day):
            sel = np.flatnonzero(hour_of_day == day)
            k = slice(int(sel[0]), int(sel[-1]) + 1)
            fields, static = column_fields(sfc, k, grid, s, p_top)
            day0 = start + timedelta(hours=int(sel[0]))
            path = out_dir / wrfout_name(name, day0)
            write_wrfout(path, grid, start, sel, fields, hgt=static["hgt"], lu_index=lu,
                         landmask=np.ones_like(static["hgt"]), znw=static["znw"],
                         p_top=p_top, attrs=attrs, complevel=complevel)
            log.info("%s: %d records, PBLH %.0f-%.0f m, max divergence correction %.2f m/s",
                     path.name, len(sel), fields["PBLH"].min(), fields["PBLH"].max(),
                     static["max_correction_ms"])
            paths.append(path)
    return paths
