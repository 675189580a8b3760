"""Species registry and unit conversions against SCIENCE.md 5.7 reference values."""

import numpy as np
import pytest

from aqforecast import species


@pytest.mark.parametrize("name, at298, at273", [
    ("O3", 1.962, 2.142), ("NO2", 1.881, 2.053), ("NO", 1.227, 1.339), ("SO2", 2.619, 2.859),
    ("CO", 1.145, 1.250), ("NH3", 0.696, 0.760), ("HNO3", 2.576, 2.811),
])
def test_ppb_to_ugm3_reference_factors(name, at298, at273):
    assert species.ppb_to_ugm3(1.0, name, 298.15, 101325.0) == pytest.approx(at298, abs=6e-4)
    assert species.ppb_to_ugm3(1.0, name, 273.15, 101325.0) == pytest.approx(at273, abs=1.2e-3)  # table rounded (x*M/22.414)


def test_round_trips():
    x = np.array([0.0, 1.0, 123.4])
    np.testing.assert_allclose(species.ugm3_to_ppb(species.ppb_to_ugm3(x, "O3", 290, 95000),
                                                   "O3", 290, 95000), x, rtol=1e-14)
    rho = 1.2
    for name in ("NO2", "SO4"):
        q = np.array([1e-9, 3e-8])
        c = species.mixing_ratio_to_ugm3(q, name, rho)
        np.testing.assert_allclose(species.ugm3_to_mixing_ratio(c, name, rho), q, rtol=1e-14)


def test_internal_units_consistent_with_ppb():
    # 1 ppb of O3 as a mole fraction, at rho = p/(R_d T), equals the ppb conversion
    T, p = 298.15, 101325.0
    rho = p / (287.05 * T)
    c1 = species.mixing_ratio_to_ugm3(1e-9, "O3", rho)
    c2 = species.ppb_to_ugm3(1.0, "O3", T, p)
    assert c1 == pytest.approx(c2, rel=2e-3)


def test_registry():
    assert species.get("SO4").phase == "aerosol"
    assert species.get("NO2").internal_units == "mol mol-1"
    assert not species.get("RP").transported
    with pytest.raises(KeyError, match="unknown species 'XX'"):
        species.get("XX")
