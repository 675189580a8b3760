"""Chemistry operator (model units), photolysis, sulfate and NH4NO3 equilibrium."""

import numpy as np
import pytest

from aqforecast.chemistry import ChemistryOperator, pm25_mass_mixing_ratio
from aqforecast.chemistry import aerosol, photolysis
from aqforecast.constants import M_AIR
from aqforecast.species import get

SPECIES = ["NO", "NO2", "O3", "ROC", "HNO3", "SNGN", "H2O2", "SO2", "SO4", "NH3", "NH4", "NO3",
           "PPM25"]
SHAPE = (2, 3, 4)


def _state(seed=0):
    rng = np.random.default_rng(seed)
    c = np.zeros((len(SPECIES),) + SHAPE)
    ppb = 1e-9
    for name, hi in (("NO", 30), ("NO2", 40), ("O3", 60), ("ROC", 800), ("HNO3", 5), ("H2O2", 2),
                     ("SO2", 20), ("NH3", 20)):
        c[SPECIES.index(name)] = rng.uniform(0.0, hi, SHAPE) * ppb
    for name, ugkg in (("SO4", 10.0), ("NH4", 3.0), ("NO3", 5.0), ("SNGN", 1.0), ("PPM25", 20.0)):
        c[SPECIES.index(name)] = rng.uniform(0.0, ugkg, SHAPE) * 1e-9     # kg kg-1
    return c


def _molar(c, name):
    sp = get(name)
    x = c[SPECIES.index(name)]
    return x * (M_AIR * 1e3 / sp.molar_mass) if sp.phase == "aerosol" else x


def _n_atoms(c):
    return sum(_molar(c, n) for n in ("NO", "NO2", "HNO3", "SNGN", "NH3", "NH4", "NO3"))


def _s_atoms(c):
    return _molar(c, "SO2") + _molar(c, "SO4")


@pytest.fixture(scope="module")
def op():
    return ChemistryOperator(None, SPECIES, solver="ros3")


def test_units_round_trip_without_chemistry(op):
    c = _state()
    c0 = c.copy()
    quiet = ChemistryOperator(None, SPECIES, equilibrium=False)
    quiet(c, 290.0, 9e4, 0.0)
    np.testing.assert_allclose(c, c0, rtol=1e-14, atol=0.0)


def test_operator_conserves_atoms_and_closes_budgets(op):
    c = _state(1)
    n0, s0 = _n_atoms(c), _s_atoms(c)
    temp = np.full(SHAPE, 295.0)
    cz = np.linspace(0.0, 1.0, np.prod(SHAPE)).reshape(SHAPE)
    so4_0 = _molar(c, "SO4").copy()
    diag = op(c, temp, 95000.0, 600.0, cos_zenith=cz, relative_humidity=50.0,
              cloud_fraction=0.5, cloud_water=np.where(cz > 0.5, 0.2, 0.0))
    assert np.all(c >= 0.0)
    np.testing.assert_allclose(_n_atoms(c), n0, rtol=1e-10)
    np.testing.assert_allclose(_s_atoms(c), s0, rtol=1e-10)
    np.testing.assert_allclose(_molar(c, "SO4") - so4_0, diag.sulfate_produced, rtol=1e-9,
                               atol=1e-22)
    assert np.all(diag.sulfate_aqueous[cz <= 0.5] == 0.0)
    assert np.any(diag.sulfate_aqueous > 0.0)
    np.testing.assert_allclose(diag.production("O3") - diag.loss("O3"), diag.o3_net_production,
                               rtol=1e-8, atol=1e-16)
    assert diag.integrated_rates.shape == (9,) + SHAPE
    assert diag.p_h2o2.shape == SHAPE and diag.p_hno3.shape == SHAPE
    ind = diag.regime_indicator
    assert np.all(ind[diag.p_hno3 > 0] >= 0.0)
    # the radical pool is kept inside the operator between calls
    assert op._internal.shape == (1, np.prod(SHAPE)) and np.any(op._internal > 0.0)


def test_mechanism_units_do_not_change_the_answer(tmp_path):
    """The same NO-NO2-O3 chemistry written in ppm/min and in molec/cm3/s gives one answer."""
    ppm_min = tmp_path / "pss_ppm.eqn"
    ppm_min.write_text("#UNITS ppm min\n#DEFVAR\nNO = N + O;\nNO2 = N + 2O;\nO3 = 3O;\n"
                       "#EQUATIONS\n<R3> NO2 + hv = NO + O3 : J_NO2 ;\n"
                       "<R4> NO + O3 = NO2 : 3.0E-12*EXP(-1500.0/TEMP) * CAIR * 1.0E-6 * 60.0 ;\n")
    molec = tmp_path / "pss_molec.eqn"
    molec.write_text("#UNITS molec/cm3 s\n#DEFVAR\nNO;\nNO2;\nO3;\n"
                     "#EQUATIONS\n<R3> NO2 + hv = NO + O3 : J_NO2 ;\n"
                     "<R4> NO + O3 = NO2 : ARR2(3.0E-12, 1500.0) ;\n")
    names = ["NO", "NO2", "O3"]
    c0 = np.zeros((3, 1, 2, 2))
    c0[0], c0[1], c0[2] = 10e-9, 20e-9, np.array([[30e-9, 60e-9], [5e-9, 0.0]])
    temp = np.array([[[280.0, 300.0], [290.0, 310.0]]])
    out = []
    for path in (ppm_min, molec):
        c = c0.copy()
        ChemistryOperator(path, names, rtol=1e-6)(c, temp, 90000.0, 300.0,
                                                  photolysis={"J_NO2": 8e-3})
        out.append(c)
    np.testing.assert_allclose(out[0], out[1], rtol=1e-4)
    # and the Leighton ratio holds in both
    k4 = 3.0e-12 * np.exp(-1500.0 / temp[0]) * 90000.0 / (1.380649e-23 * temp[0]) * 1e-6
    ratio = out[1][2, 0] * out[1][0, 0] / out[1][1, 0]
    np.testing.assert_allclose(ratio, 8e-3 / k4, rtol=1e-2)


def test_sulfate_constant_rate_analytic():
    """SCIENCE.md 10.3.4: SO4(t) = SO2_0 (1 - exp(-k t)) 96.06/64.07 in mass units."""
    names = ["SO2", "SO4"]
    c = np.zeros((2, 1, 1, 3))
    c[0] = 10e-9
    k, dt = 2e-5, 3600.0
    op = ChemistryOperator(None, names, rtol=1e-6)
    op(c, 298.0, 101325.0, dt, photolysis={"J_NO2": 0.0}, k_so2=k)
    so2_mass0 = 10e-9 * get("SO2").molar_mass / (M_AIR * 1e3)        # kg kg-1
    expect = so2_mass0 * (1 - np.exp(-k * dt)) * get("SO4").molar_mass / get("SO2").molar_mass
    np.testing.assert_allclose(c[1], expect, rtol=1e-5)


def test_nh4no3_equilibrium_properties():
    rng = np.random.default_rng(7)
    n = 500
    ta, tn, s = rng.uniform(0, 30, n), rng.uniform(0, 30, n), rng.uniform(0, 10, n)
    temp, rh = rng.uniform(265, 310, n), rng.uniform(10, 95, n)
    k = aerosol.nh4no3_k_ppb2(temp, rh)
    frac = rng.uniform(0, 1, n)
    nh3, nh4 = ta * frac, ta * (1 - frac)
    hno3, no3 = tn * frac[::-1], tn * (1 - frac[::-1])
    aerosol.nh4no3_equilibrium(nh3, nh4, hno3, no3, s.copy(), k)
    np.testing.assert_allclose(nh3 + nh4, ta, rtol=1e-13)
    np.testing.assert_allclose(hno3 + no3, tn, rtol=1e-13)
    assert np.all(np.array([nh3, nh4, hno3, no3]) >= 0.0)
    poor = ta <= 2 * s
    assert np.all(no3[poor] == 0.0) and np.all(nh3[poor] == 0.0)
    fa = ta - 2 * s
    rich = ~poor
    form = rich & (fa * tn > k)
    np.testing.assert_allclose((fa[form] - no3[form]) * (tn[form] - no3[form]), k[form],
                               rtol=1e-8)
    assert np.all(no3[rich & ~form] == 0.0)


def test_nh4no3_constants():
    # S&P Eq. 10.91 evaluated here; SCIENCE.md 5.4's "computed" values (0.029, 0.53, 28.9,
    # 330) are ~4 % higher than the formula it quotes, hence the 5 % tolerance
    np.testing.assert_allclose(aerosol.nh4no3_kp_ppb2([273.0, 283.0, 298.0, 308.0]),
                               [0.02778, 0.5127, 27.79, 318.1], rtol=1e-3)
    np.testing.assert_allclose(aerosol.nh4no3_kp_ppb2([273.0, 283.0, 298.0, 308.0]),
                               [0.029, 0.53, 28.9, 330.0], rtol=0.05)
    np.testing.assert_allclose(aerosol.nh4no3_drh([273.0, 283.0, 298.0, 308.0]),
                               [77.1, 70.2, 61.7, 57.1], rtol=2e-3)
    # Mozurkewich K* is (nearly) continuous with K_p at the DRH
    t = np.linspace(270.0, 310.0, 9)
    ratio = aerosol.nh4no3_kp_wet_ppb2(t, aerosol.nh4no3_drh(t)) / aerosol.nh4no3_kp_ppb2(t)
    assert np.all(np.abs(ratio - 1.0) < 0.15)


def test_photolysis_values_and_zenith():
    chi = np.deg2rad([0.0, 30.0, 45.0, 60.0, 75.0, 85.0])
    np.testing.assert_allclose(photolysis.j_no2_clear_sky(np.cos(chi)),
                               [8.92e-3, 8.26e-3, 7.34e-3, 5.77e-3, 2.99e-3, 3.0e-4], rtol=0.02)
    assert photolysis.j_no2_clear_sky(-0.2) == 0.0
    # equinox, local noon on the equator: sun nearly overhead; midnight: below the horizon
    noon = np.datetime64("2024-03-20T12:00")
    assert photolysis.solar_zenith_angle(noon, 0.0, 0.0) < 3.0
    assert photolysis.cos_solar_zenith(np.datetime64("2024-03-20T00:00"), 0.0, 0.0) < -0.9
    # 15 June, 35 N, 120 E at 04 UTC (local noon): chi ~ 35 - 23.3 = 11.7 deg
    lon = np.array([120.0, 120.0])
    lat = np.array([35.0, -35.0])
    z = photolysis.solar_zenith_angle(np.datetime64("2024-06-15T04:00"), lon, lat)
    assert z[0] == pytest.approx(11.7, abs=1.5) and z[1] == pytest.approx(58.3, abs=1.5)
    # cloud factor: thin cloud no effect, thick cloud dims below and brightens above
    assert photolysis.cloud_factor(0.8, 1.0, 5.0) == 1.0
    assert photolysis.cloud_factor(0.8, 1.0, 500.0, "below") < 1.0
    assert photolysis.cloud_factor(0.8, 1.0, 500.0, "above") > 1.0
    # SO2 diurnal table: 0.2 %/h at night, 2 %/h around noon
    assert aerosol.so2_rate_diurnal(2.5) == pytest.approx(0.002 / 3600)
    assert aerosol.so2_rate_diurnal(12.0) == pytest.approx(0.02 / 3600)


def test_operator_from_time_and_position(op):
    c = _state(3)
    lon = np.broadcast_to(np.linspace(100.0, 130.0, 4), SHAPE)
    lat = np.broadcast_to(np.linspace(20.0, 40.0, 3)[:, None], SHAPE)
    noon = op(c.copy(), 300.0, 1e5, 300.0, time=np.datetime64("2024-06-15T04:00"), lon=lon,
              lat=lat)
    night = op(c.copy(), 300.0, 1e5, 300.0, time=np.datetime64("2024-06-15T16:00"), lon=lon,
               lat=lat)
    assert np.all(noon.rate("R3") > 0.0) and np.all(night.rate("R3") == 0.0)
    # CALPUFF table: 2 %/h at local noon, 0.2 %/h at night
    ratio = noon.rate("S1") / night.rate("S1")
    assert np.all((ratio > 5.0) & (ratio < 11.0))


def test_pm25_is_primary_plus_secondary():
    c = _state(2)
    pm = pm25_mass_mixing_ratio(c, SPECIES)
    expect = sum(c[SPECIES.index(n)] for n in ("PPM25", "SO4", "NO3", "NH4", "SNGN"))
    np.testing.assert_allclose(pm, expect)


def test_operator_errors():
    with pytest.raises(ValueError, match="unknown solver"):
        ChemistryOperator(None, SPECIES, solver="euler")
    op = ChemistryOperator(None, ["NO", "NO2", "O3"])
    with pytest.raises(ValueError, match="shape"):
        op(np.zeros((2, 1, 1, 1)), 298.0, 1e5, 60.0)
