"""Satellite NO2 columns in the analysis: superobservations as linear observations of the
surface NO2 field that the analysis corrects.

Vertical structure: the NO2 increment is a ratio ``r = s_a / s_b`` of the surface NO2 (``s``,
ug m-3 at the reference state, the station quantity) applied to NO2 (and NO) in a set of
model layers ``M`` -- the background's profile shape within ``M`` is kept. With that
structure the averaging-kernel column of superobservation o in cell c is *exactly linear* in
the surface field::

    y_o(s) = sum_k K_ok vmr_k(c) = (P_o / s_b(c)) s(c) + F_o,
    P_o = sum_{k in M} K_ok vmr_b,k(c),   F_o = sum_{k not in M} K_ok vmr_b,k(c)

with ``K`` the column operator on the model layers
(:func:`aqforecast.observations.satellite.superobs_column_kernels`: TM5 layers, AK_trop =
AK · AMF / AMF_trop, pixel-area weights). An optimal interpolation of ``s`` with the stations'
covariance (``B_ij = s_i s_j GC(d_ij; L)``, ``s = rel x s_b``) then spreads a column increment
horizontally by the OI correlation and vertically by the background profile.
:mod:`.analysis` uses ``M`` = every model layer for the columns, then the stations' own
boundary-layer ratio on top (in sequence); :func:`column_observation_operator` takes any
``M``, so a joint analysis with the stations' boundary-layer structure is the same call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import xarray as xr

from ..io import InputFileError

__all__ = ["SATELLITE_FILE", "satellite_file_for", "read_superobservations",
           "column_observation_operator", "innovation_chi2"]

#: the observation stage's superobservation file, beside obs.nc
SATELLITE_FILE = "satellite_no2.nc"


def satellite_file_for(obs, satellite=None) -> Path | None:
    """The superobservation file of an analysis: ``satellite`` if given (must exist), else
    ``satellite_no2.nc`` beside ``obs`` when there is one, else None."""
    if satellite is not None:
        p = Path(satellite)
        if not p.is_file():
            raise InputFileError(f"{p}: satellite superobservation file not found")
        return p
    p = Path(obs).parent / SATELLITE_FILE
    return p if p.is_file() else None


_NEEDED = ("domain", "cell", "no2_tropospheric_column", "no2_tropospheric_column_error",
           "entry_obs", "entry_pixel", "entry_weight", "averaging_kernel", "tm5_constant_a",
           "tm5_constant_b", "surface_pressure", "tm5_tropopause_layer_index",
           "air_mass_factor_total", "air_mass_factor_troposphere")


def read_superobservations(path) -> xr.Dataset:
    """A ``satellite_no2.nc`` of the observation stage, loaded; InputFileError naming the file
    and the missing variables otherwise."""
    path = Path(path)
    try:
        with xr.open_dataset(path) as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read as NetCDF: {exc}") from exc
    missing = [v for v in _NEEDED if v not in ds.variables]
    if missing:
        raise InputFileError(f"{path}: not a satellite_no2.nc of `aqforecast observations`: "
                             f"missing {', '.join(missing)}")
    return ds


def column_observation_operator(K, cell, vmr_b, scaled, s_b):
    """The columns as linear observations of the surface field (module docstring).

    K (nobs, nz) mol m-2 per mol mol-1; cell (nobs,) flat cell index; vmr_b (nz, ncell)
    background NO2 mole fraction; scaled (nz, ncell) bool, the layers ``M`` the analysis ratio
    scales; s_b (ncell,) background surface NO2 in the analysed units (ug m-3).
    Returns ``(H, offset, hb)``: H (nobs, ncell) CSR, mol m-2 per ug m-3; offset (nobs,) and
    hb (nobs,) mol m-2, with ``H @ s + offset`` the column of the state whose layers ``M`` are
    the background's times ``s / s_b`` and ``H @ s_b + offset == hb``.
    """
    K = np.asarray(K, dtype=float)
    cell = np.asarray(cell, dtype=np.int64)
    v = np.asarray(vmr_b, dtype=float)[:, cell].T            # (nobs, nz)
    m = np.asarray(scaled, dtype=bool)[:, cell].T
    pbl = np.sum(np.where(m, K * v, 0.0), axis=1)
    hb = np.sum(K * v, axis=1)
    sb = np.asarray(s_b, dtype=float)[cell]
    coef = np.where(sb > 0, pbl / np.where(sb > 0, sb, 1.0), 0.0)
    offset = hb - coef * sb
    n = np.asarray(s_b).size
    H = sp.csr_matrix((coef, (np.arange(cell.size), cell)), shape=(cell.size, n))
    return H, offset, hb


def innovation_chi2(H, d, r2, B) -> float:
    """``d^T S^-1 d / nobs`` with ``S = H B H^T + R`` for one group of observations.

    H (nobs, n) sparse; d (nobs,) innovations; r2 (nobs,) error variances; B: a callable
    ``cols -> B[:, cols]`` (:class:`.oi.DistanceCovariance`). Expected 1 when B and R are
    right; NaN for no observation.
    """
    H = sp.csr_matrix(H)
    d = np.asarray(d, dtype=float)
    if d.size == 0:
        return float("nan")
    cols = np.unique(H.indices).astype(np.int64)
    Hc = H[:, cols]
    Bcc = np.asarray(B(cols))[cols]
    S = np.asarray(Hc @ (Hc @ Bcc).T)
    S = 0.5 * (S + S.T) + np.diag(np.asarray(r2, dtype=float))
    cf = scipy.linalg.cho_factor(S, lower=True, check_finite=False)
    return float(d @ scipy.linalg.cho_solve(cf, d, check_finite=False)) / d.size
