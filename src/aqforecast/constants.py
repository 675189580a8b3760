"""Physical constants (SI), with sources.

CODATA 2018 exact/recommended values (R, k_B, N_A); WGS84/spherical Earth radius as used by WRF
(WRF uses a sphere of radius 6 370 000 m, `module_model_constants.F`: EARTH_RADIUS_M? = 6370000).
"""

#: Universal gas constant, J mol-1 K-1 (CODATA 2018, exact).
R_GAS = 8.314462618
#: Boltzmann constant, J K-1 (CODATA 2018, exact).
K_BOLTZMANN = 1.380649e-23
#: Avogadro constant, mol-1 (CODATA 2018, exact).
N_AVOGADRO = 6.02214076e23
#: Molar mass of dry air, kg mol-1 (US Standard Atmosphere 1976: 28.9644 g mol-1).
M_AIR = 28.9644e-3
#: Specific gas constant of dry air, J kg-1 K-1 (WRF uses 287.0).
R_DRY = 287.0
#: Specific heat of dry air at constant pressure, J kg-1 K-1 (WRF: 7/2 R_d = 1004.5).
CP_DRY = 1004.5
#: R_d / c_p (WRF's rcp = 2/7).
KAPPA = R_DRY / CP_DRY
#: Reference pressure for potential temperature, Pa (WRF P1000MB).
P0 = 100000.0
#: WRF perturbation potential temperature offset, K (T00 in wrfout files is 300 K).
THETA_BASE = 300.0
#: Gravitational acceleration, m s-2 (WRF g = 9.81).
GRAVITY = 9.81
#: Earth radius used by WRF's map projections, m (module_llxy / WPS: 6 370 000 m).
EARTH_RADIUS = 6370000.0
#: von Karman constant (Holtslag & Boville 1993 use 0.4).
KARMAN = 0.4
#: Reference state for Chinese reporting of gases (GB 3095-2012 amendment, 2018): 298.15 K, 101325 Pa.
T_REF_CN = 298.15
P_REF_CN = 101325.0
#: Standard temperature and pressure, K and Pa.
T_STP = 273.15
P_STP = 101325.0
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
