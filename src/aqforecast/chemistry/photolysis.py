"""Solar geometry and photolysis frequencies (SCIENCE.md 5.2).

* Solar zenith angle from the Spencer (1971, Search 2(5), 172) Fourier series for the declination
  and the equation of time (NOAA GML "General Solar Position Calculations" form), with the
  fractional year ``G = 2 pi / N (day_of_year - 1 + (hour - 12) / 24)``, N = 365 or 366; true
  solar time = UTC + 4 lon + EoT. Within 0.5 deg (mean 0.1-0.2 deg) of the NOAA spreadsheet
  (Meeus) algorithm through 2026 (tested); refraction is ignored.
* Clear-sky j(NO2) and j(H2O2): MCM v3.3.1 parameterisation ``j = l cos(chi)**m exp(-n sec chi)``
  (Saunders et al. 2003, ACP 3, 161): J4 (NO2) l = 1.165e-2, m = 0.244, n = 0.267;
  J3 (H2O2) l = 1.041e-5, m = 0.723, n = 0.279 (s-1).
* Cloud correction of Chang et al. (1987, JGR 92, 14681) as implemented in Meso-NH/PHYEX
  ``ch_jvalues_clouds``: cloud optical depth from the liquid water path (Stephens 1978), energy
  transmission ``t_r = (5 - exp(-tau)) / (4 + 0.42 tau)``, below-cloud factor
  ``1 + f_c (1.6 t_r cos chi - 1)``, above-cloud factor ``1 + f_c alpha (1 - t_r) cos chi``;
  applied only where tau > 5, with cos chi clamped to >= 0.5 as in PHYEX; inside the cloud the
  factor goes linearly in height from the below- to the above-cloud value
  (:func:`cloud_photolysis_factor`, per model layer).

This is the one solar/cloud module of the package: the transport model computes the per-layer
factor from each step's met (cloud fraction, liquid water path, layer heights) and passes it to
the chemistry.

Times are UTC ``numpy.datetime64``; longitudes/latitudes in degrees (east/north positive);
frequencies in s-1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["day_of_year_and_hour", "solar_declination_eot", "local_solar_hour",
           "cos_solar_zenith", "solar_zenith_angle", "j_no2_clear_sky", "j_h2o2_clear_sky",
           "cloud_optical_depth", "cloud_transmission", "cloud_factor",
           "cloud_photolysis_factor", "J_NO2_MAX", "LWC_PROXY_G_M3"]

#: Clear-sky j(NO2) at zenith (chi = 0), s-1.
J_NO2_MAX = 1.165e-2 * np.exp(-0.267)
#: Liquid water content assumed inside cloudy layers when no cloud water is available, g m-3 [D].
LWC_PROXY_G_M3 = 0.1
#: Layers with a cloud fraction above this count as cloudy (cloud base/top), 1.
CLOUD_MIN_FRACTION = 0.05


def day_of_year_and_hour(time):
    """(day of year 1..366, UTC hour as float) of datetime64 ``time`` (any shape)."""
    t = np.asarray(time, dtype="datetime64[s]")
    year_start = t.astype("datetime64[Y]").astype("datetime64[s]")
    day_start = t.astype("datetime64[D]").astype("datetime64[s]")
    doy = (day_start - year_start).astype("timedelta64[D]").astype(float) + 1.0
    hour = (t - day_start).astype(float) / 3600.0
    return doy, hour


def _days_in_year(time):
    year = np.asarray(time, dtype="datetime64[Y]").astype(int) + 1970
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return np.where(leap, 366.0, 365.0)


def solar_declination_eot(time):
    """Solar declination (rad) and equation of time (minutes) at UTC ``time``."""
    doy, hour = day_of_year_and_hour(time)
    g = 2.0 * np.pi / _days_in_year(time) * (doy - 1.0 + (hour - 12.0) / 24.0)
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eot = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                    - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    return decl, eot


def local_solar_hour(time, lon):
    """True solar time in hours (0..24) at longitude ``lon`` (deg) for UTC ``time``."""
    _, hour = day_of_year_and_hour(time)
    _, eot = solar_declination_eot(time)
    return np.mod(hour + (4.0 * np.asarray(lon, dtype=float) + eot) / 60.0, 24.0)


def cos_solar_zenith(time, lon, lat):
    """cos of the solar zenith angle for UTC ``time`` and lon/lat (deg), broadcast together."""
    decl, _ = solar_declination_eot(time)
    tst_h = local_solar_hour(time, lon)
    ha = np.deg2rad(15.0 * tst_h - 180.0)
    phi = np.deg2rad(np.asarray(lat, dtype=float))
    return np.clip(np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(ha),
                   -1.0, 1.0)


def solar_zenith_angle(time, lon, lat):
    """Solar zenith angle in degrees."""
    return np.rad2deg(np.arccos(np.clip(cos_solar_zenith(time, lon, lat), -1.0, 1.0)))


def _mcm_j(cos_zenith, l, m, n):
    c = np.asarray(cos_zenith, dtype=float)
    day = c > 1e-6
    cc = np.where(day, c, 1.0)
    return np.where(day, l * cc ** m * np.exp(-n / cc), 0.0)


def j_no2_clear_sky(cos_zenith):
    """Clear-sky NO2 photolysis frequency, s-1 (MCM J4); 0 when the sun is below the horizon."""
    return _mcm_j(cos_zenith, 1.165e-2, 0.244, 0.267)


def j_h2o2_clear_sky(cos_zenith):
    """Clear-sky H2O2 photolysis frequency, s-1 (MCM J3)."""
    return _mcm_j(cos_zenith, 1.041e-5, 0.723, 0.279)


def cloud_optical_depth(lwp):
    """Cloud optical depth from liquid water path LWP (g m-2): ``10**(0.2633 + 1.7095 ln(log10
    LWP))`` for LWP >= 10 g m-2, else 0 (Stephens 1978, as in PHYEX)."""
    lwp = np.asarray(lwp, dtype=float)
    safe = np.maximum(lwp, 10.0)
    tau = 10.0 ** (0.2633 + 1.7095 * np.log(np.log10(safe)))
    return np.where(lwp >= 10.0, tau, 0.0)


def cloud_transmission(tau):
    """Energy transmission coefficient ``t_r = (5 - exp(-tau)) / (4 + 0.42 tau)``."""
    tau = np.asarray(tau, dtype=float)
    return (5.0 - np.exp(-tau)) / (4.0 + 0.42 * tau)


def cloud_factor(cos_zenith, cloud_fraction, lwp, position="below", alpha=1.2):
    """Multiplicative cloud correction of a clear-sky photolysis frequency (dimensionless).

    ``position``: "below" or "above" the cloud; ``alpha`` = 1.2 for NO2 (0.7 O3->O1D, 1.1 HCHO).
    The factor is 1 where the cloud optical depth is <= 5 (PHYEX)."""
    tau = cloud_optical_depth(lwp)
    tr = cloud_transmission(tau)
    mu = np.maximum(np.asarray(cos_zenith, dtype=float), 0.5)
    fc = np.clip(np.asarray(cloud_fraction, dtype=float), 0.0, 1.0)
    if position == "below":
        f = 1.0 + fc * (1.6 * tr * mu - 1.0)
    elif position == "above":
        f = 1.0 + fc * alpha * (1.0 - tr) * mu
    else:
        raise ValueError(f"position must be 'below' or 'above', got {position!r}")
    return np.where(tau > 5.0, f, 1.0)


def cloud_photolysis_factor(cos_zenith, cloud_fraction, z_interface, liquid_water_path=None,
                            alpha=1.2):
    """Multiplicative cloud correction F of clear-sky photolysis rates per layer (1).

    Parameters
    ----------
    cos_zenith: (ny, nx) cosine of the solar zenith angle.
    cloud_fraction: (nz, ny, nx) layer cloud fraction, 1.
    z_interface: (nz+1, ny, nx) interface heights (any common datum), m.
    liquid_water_path: (ny, nx) column cloud liquid water, g m-2; None -> LWC_PROXY_G_M3 times
        the cloud-fraction-weighted cloud depth.
    alpha: above-cloud enhancement coefficient (1.2 NO2, 0.7 O3->O1D, 1.1 HCHO, 1.0 default).

    The column's cloud fraction is the largest layer fraction; below the lowest cloudy layer
    the :func:`cloud_factor` "below" value, above the highest the "above" value, linear in
    height in between. Returns F (nz, ny, nx): 1 in clear columns, at night and where tau <= 5.
    """
    cz = np.asarray(cos_zenith, dtype=float)
    cf = np.clip(np.asarray(cloud_fraction, dtype=float), 0.0, 1.0)
    zi = np.asarray(z_interface, dtype=float)
    nz = cf.shape[0]
    dz = np.diff(zi, axis=0)
    zc = 0.5 * (zi[1:] + zi[:-1])
    cloudy = cf > CLOUD_MIN_FRACTION
    any_cloud = cloudy.any(axis=0)
    fc = cf.max(axis=0)
    if liquid_water_path is None:
        lwp = LWC_PROXY_G_M3 * np.sum(np.where(cloudy, cf * dz, 0.0), axis=0)
    else:
        lwp = np.asarray(liquid_water_path, dtype=float)
    f_below = cloud_factor(cz, fc, lwp, "below", alpha)
    f_above = cloud_factor(cz, fc, lwp, "above", alpha)
    k = np.arange(nz)[:, None, None]
    kbase = np.where(any_cloud, np.argmax(cloudy, axis=0), nz)
    ktop = np.where(any_cloud, nz - 1 - np.argmax(cloudy[::-1], axis=0), -1)
    zbase = np.take_along_axis(zi, np.clip(kbase, 0, nz)[None], axis=0)[0]
    ztop = np.take_along_axis(zi, np.clip(ktop + 1, 0, nz)[None], axis=0)[0]
    frac = np.clip((zc - zbase) / np.maximum(ztop - zbase, 1e-6), 0.0, 1.0)
    f = np.where(k < kbase, f_below, np.where(k > ktop, f_above,
                                              f_below + frac * (f_above - f_below)))
    return np.where((any_cloud & (cz > 0.0))[None], f, 1.0)
