"""Meteorology on the model grid: solar zenith, vertical remapping, Kz, the MetProvider (grid
check, time interpolation, mass-consistent air-mass fluxes) and the synthetic sample met."""

from __future__ import annotations

import importlib.util
import math
from datetime import datetime, timezone

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from aqforecast.config import load_config
from aqforecast.grid import grids_from_config, nests_from_config
from aqforecast.io.wrf import WrfOutput
from aqforecast.met import (
    MetGridError,
    MetProvider,
    interp_columns,
    kz_minimum,
    kz_profile,
    remap_mass_weighted,
)
from aqforecast.chemistry.photolysis import (
    cloud_photolysis_factor,
    cos_solar_zenith,
    solar_zenith_angle,
)
from aqforecast.transport.met_inputs import photolysis_cloud_factor

HANGZHOU = (120.17, 30.25)


# ----------------------------------------------------------------------------- solar zenith
def noaa_zenith(when: datetime, lon: float, lat: float) -> float:
    """NOAA GML solar calculator spreadsheet (Meeus-based), time zone 0, no refraction."""
    jd = when.timestamp() / 86400.0 + 2440587.5
    jc = (jd - 2451545.0) / 36525.0
    L = (280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360.0
    M = 357.52911 + jc * (35999.05029 - 0.0001537 * jc)
    e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    r = math.radians
    C = (math.sin(r(M)) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
         + math.sin(r(2 * M)) * (0.019993 - 0.000101 * jc) + math.sin(r(3 * M)) * 0.000289)
    app = L + C - 0.00569 - 0.00478 * math.sin(r(125.04 - 1934.136 * jc))
    obl0 = 23 + (26 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60) / 60
    obl = obl0 + 0.00256 * math.cos(r(125.04 - 1934.136 * jc))
    dec = math.degrees(math.asin(math.sin(r(obl)) * math.sin(r(app))))
    y = math.tan(r(obl / 2)) ** 2
    eot = 4 * math.degrees(y * math.sin(2 * r(L)) - 2 * e * math.sin(r(M))
                           + 4 * e * y * math.sin(r(M)) * math.cos(2 * r(L))
                           - 0.5 * y * y * math.sin(4 * r(L)) - 1.25 * e * e * math.sin(2 * r(M)))
    minutes = when.hour * 60 + when.minute + when.second / 60
    tst = (minutes + eot + 4 * lon) % 1440
    ha = tst / 4 - 180 if tst / 4 >= 0 else tst / 4 + 180
    cz = (math.sin(r(lat)) * math.sin(r(dec))
          + math.cos(r(lat)) * math.cos(r(dec)) * math.cos(r(ha)))
    return math.degrees(math.acos(cz))


def test_zenith_equator_equinox_noon():
    # 2026 March equinox 14:46 UTC; local solar noon on the equator at lon = -39.6 deg then
    # (equation of time -7.5 min). Spencer's 1971 declination is ~0.45 deg off at this equinox.
    t = np.datetime64("2026-03-20T14:46") + np.arange(-60, 61).astype("timedelta64[m]")
    z = solar_zenith_angle(t, -39.6, 0.0)
    assert z.min() < 0.6
    assert abs(int(np.argmin(z)) - 60) <= 2    # noon within 2 min


def test_zenith_matches_noaa_for_hangzhou():
    hours = np.arange(0, 365 * 24, 7)  # every 7 h through 2026
    times = np.datetime64("2026-01-01T00:00") + hours.astype("timedelta64[h]")
    ours = solar_zenith_angle(times, *HANGZHOU)
    ref = np.array([noaa_zenith(datetime.fromisoformat(str(t)).replace(tzinfo=timezone.utc),
                                *HANGZHOU) for t in times])
    assert np.max(np.abs(ours - ref)) < 0.5
    assert np.mean(np.abs(ours - ref)) < 0.2
    # spot value: Hangzhou, 2026-06-21 04:00 UTC (noon CST): 30.25 - 23.44 = 6.8 deg
    assert solar_zenith_angle(np.datetime64("2026-06-21T04:00"), *HANGZHOU) == pytest.approx(
        6.8, abs=0.15)
    # midnight CST is night
    assert cos_solar_zenith(np.datetime64("2026-06-21T16:00"), *HANGZHOU) < -0.5


def test_cloud_photolysis_factor():
    nz, ny, nx = 10, 1, 3
    zi = np.broadcast_to(np.arange(nz + 1.0)[:, None, None] * 500.0, (nz + 1, ny, nx))
    cf = np.zeros((nz, ny, nx))
    cf[3:6, 0, 1] = 0.8   # thick cloud 1.5-3 km in column 1
    cf[3:6, 0, 2] = 0.8
    lwp = np.array([[0.0, 300.0, 300.0]])
    cosz = np.array([[0.9, 0.9, -0.2]])  # column 2 at night
    f = cloud_photolysis_factor(cosz, cf, zi, lwp)
    np.testing.assert_array_equal(f[:, 0, 0], 1.0)   # clear
    np.testing.assert_array_equal(f[:, 0, 2], 1.0)   # night
    tau = 10 ** (0.2633 + 1.7095 * np.log(np.log10(300.0)))
    tr = (5 - np.exp(-tau)) / (4 + 0.42 * tau)
    assert f[0, 0, 1] == pytest.approx(1 + 0.8 * (1.6 * tr * 0.9 - 1))   # below: dimmer
    assert f[9, 0, 1] == pytest.approx(1 + 0.8 * 1.2 * (1 - tr) * 0.9)   # above: brighter
    assert f[0, 0, 1] < f[4, 0, 1] < f[9, 0, 1]


# ----------------------------------------------------------------------------- vertical
def test_remap_identity_and_conservation():
    rng = np.random.default_rng(1)
    p_src = np.sort(rng.uniform(5000, 100000, (21, 4, 5)), axis=0)[::-1]
    p_src[0], p_src[-1] = 100000.0, 5000.0
    f = rng.normal(size=(20, 4, 5))
    np.testing.assert_allclose(remap_mass_weighted(p_src, f, p_src), f, rtol=1e-10, atol=1e-10)
    p_tgt = np.linspace(100000.0, 10000.0, 8)[:, None, None] * np.ones((1, 4, 5))
    g = remap_mass_weighted(p_src, f, p_tgt)
    inside = p_src[:-1] * 0  # integral of f over [10000, 100000] from the source
    lo, hi = np.maximum(p_src[1:], 10000.0), np.minimum(p_src[:-1], 100000.0)
    inside = np.sum(f * np.maximum(hi - lo, 0.0), axis=0)
    np.testing.assert_allclose(np.sum(g * (p_tgt[:-1] - p_tgt[1:]), axis=0), inside, rtol=1e-10)
    # linear interpolation reproduces linear functions inside the range
    y = 3.0 * p_src + 2.0
    xt = np.linspace(95000.0, 6000.0, 7)[:, None, None] * np.ones((1, 4, 5))
    np.testing.assert_allclose(interp_columns(p_src, y, xt), 3.0 * xt + 2.0, rtol=1e-12)


# ----------------------------------------------------------------------------- Kz
def test_kz_profile_stable_reference_and_floor():
    nz = 20
    zi = np.broadcast_to(np.linspace(0, 2000, nz + 1)[:, None, None], (nz + 1, 1, 2)).copy()
    h = np.array([[500.0, 500.0]])
    ust = np.array([[0.3, 0.3]])
    hfx = np.array([[-20.0, -20.0]])
    lh = np.zeros((1, 2))
    rho = np.full((1, 2), 1.2)
    th = 300.0 + 0.005 * (0.5 * (zi[1:] + zi[:-1]))
    u = np.zeros((nz, 1, 2))
    kz = kz_profile(zi, h, ust, hfx, lh, rho, th, u, u, np.array([[0.0, 1.0]]),
                    local_closure=False)
    assert kz[0].tolist() == [[0.0, 0.0]] and kz[-1].tolist() == [[0.0, 0.0]]
    # NumPy reference: K = kappa u* z (1 - z/h)^2 / phi_h(z/L), phi_h = 1 + 5 z/L (z/L <= 1)
    wtv = -20.0 / (1.2 * 1004.5)
    L = -0.3**3 * th[0, 0, 0] / (0.4 * 9.81 * wtv)
    z = zi[1:6, 0, 0]
    zeta = z / L
    phi = np.where(zeta <= 1, 1 + 5 * zeta, 5 + zeta)
    ref = np.maximum(0.4 * 0.3 * z * (1 - z / 500.0) ** 2 / phi, 0.01)
    np.testing.assert_allclose(kz[1:6, 0, 0], ref, rtol=1e-10)
    assert np.all(kz[6:-1, 0, 0] == pytest.approx(0.01))   # above the PBL: K_min (rural)
    assert np.all(kz[6:-1, 0, 1] == pytest.approx(1.0))    # urban K_min
    assert kz_minimum(0.5) == pytest.approx(0.505)


def test_kz_convective_bounded():
    nz = 30
    zi = np.broadcast_to(np.linspace(0, 3000, nz + 1)[:, None, None], (nz + 1, 1, 1)).copy()
    th = np.full((nz, 1, 1), 300.0)
    u = np.zeros((nz, 1, 1))
    kz = kz_profile(zi, np.array([[1500.0]]), np.array([[0.05]]), np.array([[300.0]]),
                    np.array([[200.0]]), np.array([[1.15]]), th, u, u, np.zeros((1, 1)))
    k = kz[:, 0, 0]
    assert k.max() < 600.0 and k.argmax() * 100 < 1500
    assert np.all(k[1:-1] > 0)
    # the surface-layer value below 0.1 h does not exceed the outer-layer profile above it
    assert k[1] < k[3]


# ----------------------------------------------------------------------------- provider on real WRF
@pytest.fixture(scope="module")
def salem(shared_data):
    path = shared_data / "met_wrf" / "salem_wrf_d01_allvars_cropped.nc"
    wo = WrfOutput(path)
    grid = wo.lambert_grid("salem", wo.vertical_grid())
    met = MetProvider(grid, path)
    yield wo, met
    met.close()
    wo.close()


def test_provider_identity_levels_reproduce_wrf(salem):
    wo, met = salem
    f = wo.fields(1)
    s = met.state(wo.times[1])
    np.testing.assert_allclose(s.p, f.p, rtol=1e-12)
    np.testing.assert_allclose(s.t, f.t, rtol=1e-10)
    np.testing.assert_allclose(s.u_face, f.u_stag, atol=1e-10)
    np.testing.assert_allclose(s.v_face, f.v_stag, atol=1e-10)
    # hydrostatic heights on the model levels vs WRF's (non-hydrostatic) geopotential
    assert np.max(np.abs(s.z_interface - f.height_stag)) < 0.5
    np.testing.assert_allclose(s.rho_dry, f.rho_dry, rtol=1e-10)
    # cell air mass = rho A dz = mu d(eta) A / g
    np.testing.assert_allclose(s.mass, s.rho_dry * s.dz * met.cell_area, rtol=1e-12)


def test_provider_time_interpolation(salem):
    wo, met = salem
    a, b = met.state(wo.times[1]), met.state(wo.times[2])
    # exact at the file times
    np.testing.assert_array_equal(a.t, met._record(1).t)
    np.testing.assert_array_equal(b.kz, met._record(2).kz)
    # linear between (3-hourly records: 1 h after record 1 is weight 1/3)
    t = wo.times[1] + np.timedelta64(3600, "s")
    m = met.state(t)
    np.testing.assert_allclose(m.t, a.t + (b.t - a.t) / 3.0, rtol=1e-13)
    np.testing.assert_allclose(met.field("flux_x", t), a.flux_x + (b.flux_x - a.flux_x) / 3.0,
                               rtol=1e-12, atol=1e-9)
    # precipitation is constant over the interval (the mean of the interval's accumulation)
    np.testing.assert_array_equal(m.rain_rate, a.rain_rate)
    np.testing.assert_allclose(a.rain_rate, wo.rain_rate(2)[met._sy, met._sx])
    assert m.time == t
    with pytest.raises(ValueError, match="outside the wrfout times"):
        met.state(wo.times[-1] + np.timedelta64(1, "s"))


def test_air_mass_fluxes_are_mass_consistent(salem):
    wo, met = salem
    dt = 900.0
    for t in (wo.times[0], wo.times[1] + np.timedelta64(2700, "s")):
        fl = met.air_mass_fluxes(t, dt)
        conv = ((fl.flux_x[..., :-1] - fl.flux_x[..., 1:]) + (fl.flux_y[:, :-1] - fl.flux_y[:, 1:])
                + (fl.flux_z[:-1] - fl.flux_z[1:]))
        after = fl.mass_start + dt * conv
        np.testing.assert_allclose(after, fl.mass_end, rtol=1e-12)
        np.testing.assert_allclose(fl.mass_end, met.field("mass", t + np.timedelta64(900, "s")),
                                   rtol=1e-14)
        assert np.all(fl.flux_z[0] == 0.0)
        fx, fy, fz = fl.step_fluxes()
        assert fx.shape == (met.vertical.nz, met.grid.ny, met.grid.nx + 1)
        assert fy.shape == (met.vertical.nz, met.grid.ny + 1, met.grid.nx)
        assert fz.shape == (met.vertical.nz + 1, met.grid.ny, met.grid.nx)


def test_grid_mismatch_is_reported(shared_data, sample_config):
    grids = grids_from_config(load_config(sample_config))
    path = shared_data / "met_wrf" / "salem_wrf_d01_allvars_cropped.nc"
    with pytest.raises(MetGridError, match=r"salem_wrf.*TRUELAT1/2 = 30.0/35.0.*DX/DY = 30000"):
        MetProvider(grids["d01"], path)
    ci = shared_data / "met_wrf" / "wrfpython_ci_test_file.nc"
    from aqforecast.io.wrf import REQUIRED_CORE
    with pytest.raises(MetGridError, match="MAP_PROJ=3"):
        MetProvider(grids["d01"], ci, required=REQUIRED_CORE)


# ----------------------------------------------------------------------------- sample met
def _generator(repo):
    spec = importlib.util.spec_from_file_location("make_sample_met",
                                                  repo / "data_sample" / "make_sample_met.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sample_met(tmp_path_factory, repo, sample_config):
    out = tmp_path_factory.mktemp("met")
    paths = _generator(repo).generate(sample_config, out, hours=26, workers=1)
    return out, paths


def test_sample_met_files_layout(sample_met):
    out, paths = sample_met
    names = sorted(p.split("/")[-1] for p in paths)
    assert names == ["wrfout_d01_2026-07-20_00:00:00", "wrfout_d01_2026-07-21_00:00:00",
                     "wrfout_d02_2026-07-20_00:00:00", "wrfout_d02_2026-07-21_00:00:00"]
    import netCDF4
    with netCDF4.Dataset(out / names[0]) as nc:
        assert nc.MAP_PROJ == 1 and nc.DX == 3000.0 and nc.TRUELAT2 == 40.0
        assert nc["U"].dimensions == ("Time", "bottom_top", "south_north", "west_east_stag")
        assert nc["Times"].dimensions == ("Time", "DateStrLen")
        assert nc["T"].dtype == np.float32 and len(nc.dimensions["Time"]) == 24
    with netCDF4.Dataset(out / names[2]) as nc:
        assert nc.DX == 1000.0 and nc.PARENT_GRID_RATIO == 3 and nc.I_PARENT_START == 4


def test_sample_met_plausible(sample_met, sample_config):
    out, _ = sample_met
    with WrfOutput(str(out / "wrfout_d01_*")) as wo:
        assert len(wo) == 26
        land = wo.static.landmask > 0.5
        assert 0.5 < land.mean() < 0.9
        pblh, t2, speed, u10, v10 = [], [], [], [], []
        for i in range(len(wo)):
            f = wo.fields(i)
            pblh.append(f.pblh[land].mean())
            t2.append((f.t2.min(), f.t2.max()))
            speed.append(np.hypot(f.u, f.v))
            u10.append(f.u10)
            v10.append(f.v10)
            assert np.all(np.diff(f.p, axis=0) < 0) and np.all(f.qv > 0)
            np.testing.assert_allclose(f.mu_dry + wo.static.p_top, f.psfc, rtol=0.03)
            assert np.all(f.rain_rate >= 0)
        pblh = np.array(pblh)
        # hours 0..25 UTC = 08 LT .. 09 LT next day
        assert pblh[[16, 18, 20]].max() < 260          # night (00-04 LT)
        assert 1200 < pblh[6] < 1900                    # 14 LT
        t2 = np.array(t2)
        assert 285 < t2.min() and t2.max() < 312
        speed = np.array(speed)
        assert 1.0 < speed[:, 0].mean() < 8.0 and speed.max() < 40.0
        # sea breeze: the 10 m wind anomaly (domain mean removed) blows onshore in the
        # afternoon (14 LT = 06 UTC) and offshore before dawn (05 LT = 21 UTC)
        lm = uniform_filter(wo.static.landmask, size=5, mode="nearest")
        gy, gx = np.gradient(lm)
        coast = (lm > 0.2) & (lm < 0.8) & (np.hypot(gx, gy) > 0.02)
        nrm = np.hypot(gx, gy) + 1e-12

        def onshore(i):
            ua = u10[i] - u10[i].mean()
            va = v10[i] - v10[i].mean()
            return float(np.mean(((ua * gx + va * gy) / nrm)[coast]))

        assert onshore(6) > 0.5
        assert onshore(21) < -0.2


def test_sample_met_through_provider(sample_met, sample_config):
    out, _ = sample_met
    cfg = load_config(sample_config)
    grids = grids_from_config(cfg)
    for dom in ("d01", "d02"):
        cfg.inputs.met.paths[dom] = str(out / f"wrfout_{dom}_*")
        met = MetProvider.from_config(cfg, dom, grids)
        assert (met.j0, met.i0) == (0, 0)
        t = np.datetime64("2026-07-20T23:30")   # across the file boundary
        s = met.state(t)
        s0 = met.state(cfg.time.start)          # timezone-aware datetime accepted
        assert s0.time == np.datetime64("2026-07-20T00:00")
        assert s.mass.shape == (15, grids[dom].ny, grids[dom].nx)
        assert np.all(s.dz > 0) and np.all(s.rho_dry > 0.05) and s.rho_dry[0].max() < 1.3
        assert 20.0 < s.dz[0].mean() < 40.0     # first model layer ~30 m
        assert np.all(s.kz[1:-1] >= 0.0099) and s.kz.max() < 1000
        fl = met.air_mass_fluxes(t, 600.0)
        conv = ((fl.flux_x[..., :-1] - fl.flux_x[..., 1:]) + (fl.flux_y[:, :-1] - fl.flux_y[:, 1:])
                + (fl.flux_z[:-1] - fl.flux_z[1:]))
        np.testing.assert_allclose(fl.mass_start + 600.0 * conv, fl.mass_end, rtol=1e-12)
        assert fl.top_flux_fraction < 0.01
        cz, _ = photolysis_cloud_factor(met.state("2026-07-20T04:00"), "2026-07-20T04:00",
                                        *grids[dom].lonlat)
        assert cz.min() > 0.9                   # near noon in late July at 30 N
        _, f = photolysis_cloud_factor(s, t, *grids[dom].lonlat)
        assert f.shape == s.cldfra.shape and np.all(f > 0)
        met.close()
    # the nest sees the same synoptic situation as its parent
    m1 = MetProvider(grids["d01"], str(out / "wrfout_d01_*"))
    m2 = MetProvider(grids["d02"], str(out / "wrfout_d02_*"))
    t = np.datetime64("2026-07-20T06:00")
    nest = nests_from_config(cfg, grids)
    agg = nest["d02"].aggregate_to_parent(m2.field("t", t)[0])
    par = m1.field("t", t)[0][nest["d02"].parent_slices]
    assert np.max(np.abs(agg - par)) < 1.5
    m1.close()
    m2.close()


def test_sample_met_deterministic(tmp_path, repo, sample_config):
    gen = _generator(repo)
    a = gen.generate(sample_config, tmp_path / "a", hours=2, domains=["d02"], workers=1)
    b = gen.generate(sample_config, tmp_path / "b", hours=2, domains=["d02"], workers=1)
    import netCDF4
    with netCDF4.Dataset(a[0]) as x, netCDF4.Dataset(b[0]) as y:
        for v in ("U", "T", "PH", "RAINNC", "PBLH"):
            np.testing.assert_array_equal(x[v][:], y[v][:])
