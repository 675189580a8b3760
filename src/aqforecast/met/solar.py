"""Photolysis inputs: solar zenith angle and the cloud correction factor of photolysis rates.

Solar position: the Fourier series of Spencer (1971, "Fourier series representation of the
position of the sun", Search 2(5), 172) for the declination and the equation of time, in the form
of NOAA GML's "General Solar Position Calculations" (fractional year including the hour),
SCIENCE.md 5.2:

    g   = 2 pi / 365 (doy - 1 + (hour - 12) / 24)                                     (rad)
    dec = 0.006918 - 0.399912 cos g + 0.070257 sin g - 0.006758 cos 2g + 0.000907 sin 2g
          - 0.002697 cos 3g + 0.00148 sin 3g                                            (rad)
    EoT = 229.18 (0.000075 + 0.001868 cos g - 0.032077 sin g - 0.014615 cos 2g
          - 0.040849 sin 2g)                                                            (min)
    true solar time = UTC minutes + 4 lon + EoT;  hour angle H = TST / 4 - 180          (deg)
    cos(chi) = sin(lat) sin(dec) + cos(lat) cos(dec) cos(H)

Accuracy: within 0.5 deg (mean 0.1-0.2 deg) of the NOAA spreadsheet (Meeus) algorithm through
2026 (tested; the 1971 fit's declination drifts by up to ~0.45 deg near the equinoxes), which is
immaterial for photolysis rates; refraction is ignored.

Cloud correction of photolysis rates (Chang et al. 1987, JGR 92, 14681, as in Meso-NH/PHYEX
``ch_jvalues_clouds``; SCIENCE.md 5.2): with cloud optical depth from the liquid water path
(Stephens 1978) ``tau = 10**(0.2633 + 1.7095 ln(log10 LWP))`` (LWP >= 10 g m-2, else 0), energy
transmission ``t_r = (5 - exp(-tau)) / (4 + 0.42 tau)``, cloud fraction ``f_c``:
below cloud ``F = 1 + f_c (1.6 t_r cos chi - 1)``, above cloud
``F = 1 + f_c alpha (1 - t_r) cos chi``
(alpha = 1.2 for NO2), in cloud linear in height between the two. As in PHYEX the correction
applies only where tau > 5, with cos chi clamped to >= 0.5.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cos_solar_zenith",
    "solar_zenith_angle",
    "cloud_photolysis_factor",
    "LWC_PROXY_G_M3",
]

#: Liquid water content assumed inside cloudy layers when no cloud water is available, g m-3 [D].
LWC_PROXY_G_M3 = 0.1
_CLOUD_MIN_FRACTION = 0.05


def _time_parts(time):
    """day of year (1-based) and UTC hour (fractional) of datetime64 values."""
    t = np.asarray(time, dtype="datetime64[s]")
    year_start = t.astype("datetime64[Y]").astype("datetime64[s]")
    day_start = t.astype("datetime64[D]").astype("datetime64[s]")
    doy = (day_start - year_start) / np.timedelta64(1, "D") + 1.0
    hour = (t - day_start) / np.timedelta64(1, "h")
    is_leap = (t.astype("datetime64[Y]").astype(int) + 1970) % 4 == 0
    return doy, hour, np.where(is_leap, 366.0, 365.0)


def cos_solar_zenith(time, lon, lat):
    """Cosine of the solar zenith angle (1) at ``time`` (UTC datetime64 or ISO string) and
    longitude/latitude (deg), broadcast together. Negative at night."""
    doy, hour, ndays = _time_parts(time)
    g = 2.0 * np.pi / ndays * (doy - 1.0 + (hour - 12.0) / 24.0)
    dec = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
           + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eot = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                    - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    tst = hour * 60.0 + 4.0 * np.asarray(lon, dtype=float) + eot
    ha = np.deg2rad(tst / 4.0 - 180.0)
    phi = np.deg2rad(np.asarray(lat, dtype=float))
    return np.clip(np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(ha), -1.0, 1.0)


def solar_zenith_angle(time, lon, lat):
    """Solar zenith angle, degrees (0 overhead, > 90 below the horizon)."""
    return np.rad2deg(np.arccos(cos_solar_zenith(time, lon, lat)))


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

    Returns F (nz, ny, nx): 1 in clear columns, at night and where tau <= 5.
    """
    cz = np.asarray(cos_zenith, dtype=float)
    cf = np.clip(np.asarray(cloud_fraction, dtype=float), 0.0, 1.0)
    zi = np.asarray(z_interface, dtype=float)
    nz = cf.shape[0]
    dz = np.diff(zi, axis=0)
    zc = 0.5 * (zi[1:] + zi[:-1])
    cloudy = cf > _CLOUD_MIN_FRACTION
    any_cloud = cloudy.any(axis=0)
    fc = cf.max(axis=0)
    if liquid_water_path is None:
        lwp = LWC_PROXY_G_M3 * np.sum(np.where(cloudy, cf * dz, 0.0), axis=0)
    else:
        lwp = np.asarray(liquid_water_path, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(lwp >= 10.0,
                       10.0 ** (0.2633 + 1.7095 * np.log(np.log10(np.maximum(lwp, 10.0)))), 0.0)
    tr = (5.0 - np.exp(-tau)) / (4.0 + 0.42 * tau)
    czc = np.maximum(cz, 0.5)
    f_below = 1.0 + fc * (1.6 * tr * czc - 1.0)
    f_above = 1.0 + fc * alpha * (1.0 - tr) * czc
    k = np.arange(nz)[:, None, None]
    kbase = np.where(any_cloud, np.argmax(cloudy, axis=0), nz)
    ktop = np.where(any_cloud, nz - 1 - np.argmax(cloudy[::-1], axis=0), -1)
    zbase = np.take_along_axis(zi, np.clip(kbase, 0, nz)[None], axis=0)[0]
    ztop = np.take_along_axis(zi, np.clip(ktop + 1, 0, nz)[None], axis=0)[0]
    frac = np.clip((zc - zbase) / np.maximum(ztop - zbase, 1e-6), 0.0, 1.0)
    f = np.where(k < kbase, f_below, np.where(k > ktop, f_above,
                                              f_below + frac * (f_above - f_below)))
    active = any_cloud & (tau > 5.0) & (cz > 0.0)
    return np.where(active[None], f, 1.0)
