"""Mechanism reader: syntax subset, error messages, rate expressions, units (no compilation)."""

import math

import numpy as np
import pytest

from aqforecast.chemistry import DEFAULT_MECHANISM, MechanismSyntaxError, parse_mechanism
from aqforecast.chemistry import read_mechanism
from aqforecast.chemistry.units import (air_number_density_cm3, default_atol,
                                        model_to_mechanism_factors)
from aqforecast.constants import M_AIR

GOOD = """
{ a test mechanism
  spanning lines }
#UNITS molec/cm3 s
#DEFVAR
HO2 = H + 2O ;
H2O2 = 2H + 2O ;  // comment
X ;
#DEFFIX
M = IGNORE ;
#PARAMETERS
K_X = 1.0D-3 ;
#EQUATIONS
<R1> 2 HO2 = H2O2 : ARR2(2.2e-13, -600.0) ;
<R2> HO2 + HO2 + M = H2O2 + M : 1.9D-33*EXP(980.0/TEMP) ;
<R3> H2O2 + hv = 0.5 X
     + 2HO2x_dummy_never : J_H2O2 ;
"""


def _err(text):
    with pytest.raises(MechanismSyntaxError) as exc:
        parse_mechanism(text, "mech.eqn")
    return str(exc.value)


def test_default_mechanism_parses():
    m = read_mechanism(DEFAULT_MECHANISM)
    assert m.conc_unit == "ppm" and m.time_unit == "min"
    assert m.labels == ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "H1", "S1"]
    assert m.qssa == ("RP",)
    assert set(m.parameters) == {"J_NO2", "J_H2O2", "K_SO2"}
    s = m.stoichiometry()
    assert np.all(s[m.index("ROC")] == 0.0)          # catalytic
    assert s[m.index("RP"), m.reaction_index("R5")] == -1.0
    # N and S atoms are conserved by every reaction
    for el in ("N", "S"):
        assert np.allclose(m.atom_vector(el) @ s, 0.0)


def test_syntax_subset_and_rates():
    text = GOOD.replace("\n     + 2HO2x_dummy_never", "")
    m = parse_mechanism(text, "mech.eqn")
    assert m.variable == ("HO2", "H2O2", "X") and m.fixed == ("M",)
    assert m.atoms["H2O2"] == {"H": 2.0, "O": 2.0}
    r1, r2, r3 = m.reactions
    assert r1.reactants == (("HO2", 2.0),) and r1.products == (("H2O2", 1.0),)
    assert r2.reactants == (("HO2", 2.0), ("M", 1.0))
    assert r3.products == (("X", 0.5),) and r3.reactants == (("H2O2", 1.0),)   # hv dropped
    assert list(m.parameters) == ["K_X", "J_H2O2"] and m.parameters["K_X"] == 1e-3
    temp = 280.0
    env = {"math": math, "temp": temp, "par": [1e-3, 2e-5],
           "_arr2": lambda t, a, b: a * math.exp(-b / t)}
    assert eval(r1.rate_py, env) == pytest.approx(2.2e-13 * math.exp(600.0 / temp))
    assert eval(r2.rate_py, env) == pytest.approx(1.9e-33 * math.exp(980.0 / temp))
    assert eval(r3.rate_py, env) == 2e-5


def test_rate_law_translation():
    text = ("#UNITS molec/cm3 s\n#DEFVAR\nA;\nB;\n#EQUATIONS\n"
            "<a> A = B : ARR(1e-12, 100.0, 2.0) ;\n<b> A = B : TROE(1e-30, 3.0, 1e-11, 0.0) ;\n"
            "<c> A = B : TROE(1e-30, 3.0, 1e-11, 0.0, TEMP, CAIR) ;\n")
    m = parse_mechanism(text)
    assert m.reactions[0].rate_py.startswith("_arr3(temp,")
    assert m.reactions[1].rate_py.startswith("_troe(temp, cair,")
    assert m.reactions[2].rate_py.startswith("_troe6")


@pytest.mark.parametrize("text, line, expect", [
    ("#DEFVAR\nA;\n#EQUATIONS\nA = : 1.0;\n", 1, "missing '#UNITS"),
    ("#UNITS ppm fortnights\n", 1, "expected '#UNITS <conc> <time>'"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n#EQUATIONS\n<R1> A = B : 1.0 ;\n", 5, "undeclared species 'B'"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n#EQUATIONS\n\n<R1> A = A : FOO * 2 ;\n", 6,
     "unknown name 'FOO'"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n#EQUATIONS\n<R1> A = A : 1.0\n", 5, "expected ';'"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n#EQUATIONS\n<R1> A -> A : 1.0 ;\n", 5,
     "expected '<label> reactants = products : rate ;'"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n#EQUATIONS\n<R1> 0.5 A = A : 1.0 ;\n", 5,
     "expected a positive whole number"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n#EQUATIONS\n<R1> 2 A = A : ARR(1.0) ;\n", 5, "ARR takes 2 or 3"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n#EQUATIONS\n<R1> A = A : 1.0 * ;\n", 5,
     "malformed rate expression"),
    ("#UNITS ppm min\n#INLINE F90_RCONST\n", 2, "unsupported directive #INLINE"),
    ("#UNITS ppm min\n#DEFVAR\nA = 2q;\n", 3, "bad atomic composition"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n{ never closed\n#EQUATIONS\n", 4, "unterminated comment"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n#EQUATIONS\n<R1> A = A : 1 ;\n<R1> A = A : 2 ;\n", 6,
     "duplicate reaction label"),
    ("#UNITS ppm min\n#DEFVAR\nA;\n#QSSA B\n#EQUATIONS\n<R1> A = A : 1 ;\n", 4, "#QSSA species"),
])
def test_parse_errors_name_file_line_and_expectation(text, line, expect):
    msg = _err(text)
    assert msg.startswith(f"mech.eqn:{line}:"), msg
    assert expect in msg, msg


def test_unit_factors():
    t, p = 298.15, 101325.0
    nair = air_number_density_cm3(t, p)
    assert nair == pytest.approx(2.4615e19, rel=1e-4)        # SCIENCE.md 5.7
    f = model_to_mechanism_factors("ppm", ["O3", "SO4", "RP"], t, p)
    assert f[0] == 1e6 and f[2] == 1e6
    assert f[1] == pytest.approx(1e6 * M_AIR * 1e3 / 96.062)  # kg/kg -> mol/mol -> ppm
    g = model_to_mechanism_factors("molec/cm3", ["O3"], np.array([280.0, 300.0]), p)
    assert g.shape == (1, 2) and g[0, 0] > g[0, 1]
    assert default_atol("ppm") == pytest.approx(1e-7)
    assert default_atol("ppb") == pytest.approx(1e-4)
