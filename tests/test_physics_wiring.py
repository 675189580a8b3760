"""The met reaches the physics each step (issue #16): the cloud correction of photolysis, the
relative humidity of the NH4NO3 equilibrium and the plume-rise meteorology of point sources.

Each test records what the transport model hands to the chemistry or the emission model during
a real step of the small nested case and checks it against the documented formulas; before the
wiring the model passed none of it (clear sky, dry constant, standard-atmosphere stack layers).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from aqforecast.chemistry import aerosol
from aqforecast.chemistry.photolysis import (
    cloud_optical_depth,
    cloud_transmission,
    cos_solar_zenith,
    j_no2_clear_sky,
)
from aqforecast.config import load_config
from aqforecast.emissions.inventory import PointSources
from aqforecast.emissions.vertical import PlumeMet, stack_layer_fractions
from aqforecast.forecast import ForwardModel
from aqforecast.transport.met_inputs import plume_met, relative_humidity_percent

from forecast_case import small_config


@pytest.fixture(scope="module")
def fm(tmp_path_factory):
    path = small_config(tmp_path_factory.mktemp("wiring"), hours=2, tags=False)
    cfg = load_config(path)
    return ForwardModel(cfg)


class _Recorder:
    """Wraps a callable, keeps the keyword arguments of its last call."""

    def __init__(self, fn):
        self.fn, self.kwargs, self.args = fn, None, None

    def __call__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        return self.fn(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.fn, name)


def _one_step(model, dt=300.0):
    """One model step, then the state and time put back (the module's tests share a model)."""
    state, t0 = model.state_arrays(), model.time
    try:
        model.step(dt)
    finally:
        model.load_state(state)
        model.time = t0


def test_cloudy_column_has_lower_surface_j_by_the_documented_factor(fm, monkeypatch):
    """A column under a thick cloud gets j(NO2) = clear-sky j times the Chang et al. (1987)
    below-cloud factor 1 + f_c (1.6 t_r cos(chi) - 1) at the ground; a clear column the
    clear-sky value."""
    model = fm.domains["d01"]
    t0 = model.time
    t_mid = t0 + np.timedelta64(150, "s")
    real = model.met.state(t_mid)
    s = SimpleNamespace(**{k: getattr(real, k) for k in real.__dataclass_fields__})
    s.cldfra = np.zeros_like(real.cldfra)
    s.lwp = np.zeros_like(real.lwp)
    # column (3, 4) under a cloud in layers 3-5 (f_c 0.8, LWP 300 g m-2); all else clear
    s.cldfra[3:6, 3, 4] = 0.8
    s.lwp[3, 4] = 300.0
    orig = model.met.state
    monkeypatch.setattr(model.met, "state", lambda t: s if t == t_mid else orig(t))
    rec = _Recorder(model.chemistry)
    monkeypatch.setattr(model, "chemistry", rec)
    _one_step(model)
    kw = rec.kwargs
    cosz = cos_solar_zenith(t_mid, *model.grid.lonlat)
    np.testing.assert_allclose(kw["cos_zenith"], cosz, rtol=1e-12)
    j = j_no2_clear_sky(kw["cos_zenith"]) * kw["cloud_factor"]
    clear = j_no2_clear_sky(cosz)
    tr = cloud_transmission(cloud_optical_depth(300.0))
    mu = max(float(cosz[3, 4]), 0.5)
    assert cosz[3, 4] > 0.3  # daytime: the test means something
    expected = 1.0 + 0.8 * (1.6 * tr * mu - 1.0)
    assert expected < 0.9
    assert j[0, 3, 4] == pytest.approx(clear[3, 4] * expected, rel=1e-12)
    assert j[0, 3, 5] == pytest.approx(clear[3, 5], rel=1e-12)   # the clear neighbour
    assert j[-1, 3, 4] > clear[3, 4]                              # above the cloud: brighter


def test_relative_humidity_reaches_the_nh4no3_equilibrium(fm, monkeypatch):
    model = fm.domains["d01"]
    t_mid = model.time + np.timedelta64(150, "s")
    rec = _Recorder(model.chemistry)
    monkeypatch.setattr(model, "chemistry", rec)
    _one_step(model)
    rh = rec.kwargs["relative_humidity"]
    np.testing.assert_allclose(rh, relative_humidity_percent(model.met.state(t_mid)))
    assert rh.shape == model.mass.shape and 0.0 <= rh.min() and rh.max() <= 100.0
    # the wet constant (Mozurkewich 1993 with the RH term) is what is used above the DRH
    t = np.full(3, 298.0)
    r = np.array([30.0, 70.0, 90.0])
    k = aerosol.nh4no3_k_ppb2(t, r)
    drh = aerosol.nh4no3_drh(298.0)
    assert 50.0 < drh < 70.0
    assert k[0] == aerosol.nh4no3_kp_ppb2(298.0)
    np.testing.assert_allclose(k[1:], aerosol.nh4no3_kp_wet_ppb2(t[1:], r[1:]))
    assert k[2] < k[1] < k[0]   # wetter air holds more particulate nitrate


def _column_met(nz=20, wind=3.0, dthdz=0.0, ustar=0.3, hfx=0.0, pblh=1000.0):
    zi = np.linspace(0.0, 4000.0, nz + 1)[:, None, None]
    zc = 0.5 * (zi[1:] + zi[:-1])
    theta = 300.0 + dthdz * zc
    return SimpleNamespace(z_interface=zi, z_centre=zc, theta=theta, t=theta - 0.0098 * zc,
                           u=np.full_like(zc, wind), v=np.zeros_like(zc),
                           ust=np.full((1, 1), ustar), hfx=np.full((1, 1), hfx),
                           rho_dry=np.full_like(zc, 1.15), pblh=np.full((1, 1), pblh))


def _effective_height(frac, zi):
    zc = 0.5 * (zi[1:] + zi[:-1]).ravel()
    return float(frac @ zc)


def test_stack_effective_height_follows_wind_and_stability():
    pts = PointSources(("S1",), np.array([120.0]), np.array([30.0]), np.array([80.0]),
                       np.array([5.0]), np.array([18.0]), np.array([420.0]), ("power",),
                       np.zeros((1, 7)), "test")
    cells = (np.array([0]), np.array([0]))

    def h_eff(**kw):
        s = _column_met(**kw)
        return _effective_height(stack_layer_fractions(pts, cells, plume_met(s))[0],
                                 s.z_interface)

    calm, windy = h_eff(wind=2.0), h_eff(wind=10.0)
    neutral, stable = h_eff(wind=4.0), h_eff(wind=4.0, dthdz=0.02)
    assert windy < calm           # momentum/buoyancy bent over: rise ~ 1/u
    assert stable < neutral       # stable layers cap the rise
    assert windy > 80.0           # still above the stack
    # without plume met the stack-top layer (the standard default) is used
    s = _column_met()
    top = stack_layer_fractions(pts, cells, PlumeMet(s.z_interface))[0]
    assert _effective_height(top, s.z_interface) < neutral


def test_model_passes_the_hours_plume_met_to_the_emissions(fm, monkeypatch):
    model = fm.domains["d01"]
    em = model.emission_model
    if not em.has_point_sources:
        pytest.skip("no stacks inside the small grid")
    rec = _Recorder(em.tagged_emissions)
    monkeypatch.setattr(em, "tagged_emissions", rec)
    hour = model.time.astype("datetime64[h]")
    _one_step(model)
    met = rec.args[2]
    assert isinstance(met, PlumeMet) and met.has_plume_met
    s = model.met.state(hour)
    np.testing.assert_allclose(met.wind_speed, np.hypot(s.u, s.v))
    np.testing.assert_allclose(met.pblh, s.pblh)
