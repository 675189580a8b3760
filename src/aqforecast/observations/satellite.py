"""TROPOMI/S5P Level-2 NO2: reader, synthetic granules, column operator and superobservations.

Product layout (Product User Manual NO2, S5P-KNMI-L2-0021-MA, "PUM"; Van Geffen et al. 2022,
ATBD S5P-KNMI-L2-0005-RP) as checked against the real OFFL header of orbit 12367 (processor 1.3.2)
in ``shared/data/satellite_schema``. All main fields are ``(time=1, scanline, ground_pixel)``::

    /PRODUCT                 latitude, longitude (float32, deg), time (int32, s since 2010-01-01),
                             delta_time (int32 (time, scanline), ms since time_reference),
                             qa_value (uint8, scale_factor 0.01, _FillValue 255),
                             nitrogendioxide_tropospheric_column(_precision) (float32, mol m-2),
                             averaging_kernel (float32, ..., layer=34), air_mass_factor_troposphere,
                             air_mass_factor_total (float32, 1), tm5_tropopause_layer_index (int32),
                             tm5_constant_a (float32 (layer, vertices), Pa), tm5_constant_b (1)
    /PRODUCT/SUPPORT_DATA/GEOLOCATIONS      latitude_bounds, longitude_bounds (..., corner=4)
    /PRODUCT/SUPPORT_DATA/DETAILED_RESULTS  strat./total columns, air_mass_factor_stratosphere
    /PRODUCT/SUPPORT_DATA/INPUT_DATA        surface_pressure (float32, Pa), surface_altitude

Note: in the real product the two air-mass factors the averaging-kernel recipe needs live in
``/PRODUCT`` (PUM table of the PRODUCT group), not in DETAILED_RESULTS; the reader looks there
first and falls back to DETAILED_RESULTS.

TM5 layers: layer ``l`` (0 = surface) spans the interface pressures
``p(l, v) = tm5_constant_a(l, v) + tm5_constant_b(l, v) * surface_pressure``, v = 0 the lower
(bottom) and v = 1 the upper (top) interface. ``tm5_tropopause_layer_index`` is the 0-based index of
the highest layer in the troposphere, so layers ``0 .. index`` are tropospheric (PUM).

Units: columns mol m-2 (x 6.02214e19 -> molecules cm-2), pressures Pa, mixing ratios mol mol-1.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from ..constants import GRAVITY, M_AIR
from ..io import InputFileError, atomic_path

__all__ = [
    "FLOAT_FILL",
    "INT_FILL",
    "N_TM5_LAYERS",
    "read_tropomi_no2",
    "write_synthetic_tropomi_no2",
    "tm5_hybrid_coefficients",
    "tm5_interface_pressures",
    "partial_columns",
    "regrid_partial_columns",
    "tropospheric_column_operator",
    "superobservations",
    "superobs_weight_matrix",
    "column_sensitivity",
    "superobs_column_kernels",
]

#: netCDF default float fill used by the S5P processors (``_FillValue = 9.96921e+36f``).
FLOAT_FILL = np.float32(9.96921e36)
#: int32 fill used by the S5P processors (``-2147483647``).
INT_FILL = np.int32(-2147483647)
#: uint8 fill of qa_value.
UBYTE_FILL = np.uint8(255)
#: Number of TM5-MP layers in the NO2 product.
N_TM5_LAYERS = 34
#: mol m-2 -> molecules cm-2 (attribute multiplication_factor_to_convert_to_molecules_percm2).
MOL_M2_TO_MOLEC_CM2 = 6.02214e19

PRODUCT = "PRODUCT"
GEO = "PRODUCT/SUPPORT_DATA/GEOLOCATIONS"
DETAILED = "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"
INPUT = "PRODUCT/SUPPORT_DATA/INPUT_DATA"

_PIX = ("time", "scanline", "ground_pixel")
# (group, variable) -> expected dimensions, expected units (None: not checked)
_REQUIRED = {
    (PRODUCT, "time"): (("time",), None),
    (PRODUCT, "delta_time"): (("time", "scanline"), None),
    (PRODUCT, "latitude"): (_PIX, "degrees_north"),
    (PRODUCT, "longitude"): (_PIX, "degrees_east"),
    (PRODUCT, "qa_value"): (_PIX, "1"),
    (PRODUCT, "nitrogendioxide_tropospheric_column"): (_PIX, "mol m-2"),
    (PRODUCT, "nitrogendioxide_tropospheric_column_precision"): (_PIX, "mol m-2"),
    (PRODUCT, "averaging_kernel"): (_PIX + ("layer",), "1"),
    (PRODUCT, "air_mass_factor_troposphere"): (_PIX, "1"),
    (PRODUCT, "air_mass_factor_total"): (_PIX, "1"),
    (PRODUCT, "tm5_tropopause_layer_index"): (_PIX, None),
    (PRODUCT, "tm5_constant_a"): (("layer", "vertices"), "Pa"),
    (PRODUCT, "tm5_constant_b"): (("layer", "vertices"), "1"),
    (GEO, "latitude_bounds"): (_PIX + ("corner",), "degrees_north"),
    (GEO, "longitude_bounds"): (_PIX + ("corner",), "degrees_east"),
    (INPUT, "surface_pressure"): (_PIX, "Pa"),
}
# variables that older/other processor versions keep in DETAILED_RESULTS instead of PRODUCT
_FALLBACK_GROUP = {"air_mass_factor_troposphere": DETAILED, "air_mass_factor_total": DETAILED}


# ============================================================================ reader
def _group(ds: netCDF4.Dataset, path: str):
    g = ds
    for part in path.split("/"):
        if part not in g.groups:
            return None
        g = g.groups[part]
    return g


def _float32_decimal(v) -> float:
    """A float32 attribute as the decimal it was written as (np.float32(0.01) -> 0.01).

    ``scale_factor = 0.01f`` is 0.0099999998 in binary; multiplying by it would decode qa 75 to
    0.74999998 and drop it at ``qa_min = 0.75``. The shortest round-tripping decimal is exact.
    """
    v = np.asarray(v).ravel()[0]
    if isinstance(v, np.float32):
        return float(str(v))
    return float(v)


def _decode(var, index=Ellipsis, dtype=np.float64):
    """Read ``var[index]`` applying CF ``_FillValue`` / ``valid_min`` / ``valid_max`` (in packed
    units) and ``scale_factor`` / ``add_offset``; masked values become NaN (float result)."""
    var.set_auto_maskandscale(False)
    raw = np.asarray(var[index])
    attrs = var.ncattrs()
    bad = np.zeros(raw.shape, dtype=bool)
    if "_FillValue" in attrs:
        fill = var.getncattr("_FillValue")
        bad |= raw == fill
    if "valid_min" in attrs:
        bad |= raw < var.getncattr("valid_min")
    if "valid_max" in attrs:
        bad |= raw > var.getncattr("valid_max")
    out = raw.astype(dtype)
    if "scale_factor" in attrs:
        out = out * _float32_decimal(var.getncattr("scale_factor"))
    if "add_offset" in attrs:
        out = out + _float32_decimal(var.getncattr("add_offset"))
    if np.issubdtype(np.dtype(dtype), np.floating):
        out[bad] = np.nan
    return out, bad


_SINCE = re.compile(r"^\s*(\w+)\s+since\s+(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}:\d{2}:\d{2}))?")
_UNIT_NS = {"seconds": 1_000_000_000, "second": 1_000_000_000, "s": 1_000_000_000,
            "milliseconds": 1_000_000, "millisecond": 1_000_000, "ms": 1_000_000}


def _parse_since(units: str, path, name):
    m = _SINCE.match(units or "")
    if not m or m.group(1).lower() not in _UNIT_NS:
        raise InputFileError(f"{path}: {name} has units {units!r}; expected "
                             "'seconds|milliseconds since YYYY-MM-DD hh:mm:ss'")
    ref = np.datetime64(f"{m.group(2)}T{m.group(3) or '00:00:00'}", "ns")
    return _UNIT_NS[m.group(1).lower()], ref


def _check_layout(ds, path) -> dict:
    """Find every required (group, variable); raise one InputFileError listing what is missing or
    has the wrong dimensions/units. Returns {name: netCDF4.Variable}."""
    found, missing, wrong = {}, [], []
    for (grp, name), (dims, units) in _REQUIRED.items():
        var = None
        for g in (grp, _FALLBACK_GROUP.get(name)):
            gg = _group(ds, g) if g else None
            if gg is not None and name in gg.variables:
                var = gg.variables[name]
                break
        if var is None:
            missing.append(f"/{grp}/{name}")
            continue
        if tuple(var.dimensions) != dims:
            wrong.append(f"/{grp}/{name} has dimensions {tuple(var.dimensions)}, expected {dims}")
        elif units is not None and "units" in var.ncattrs() and var.getncattr("units") != units:
            wrong.append(f"/{grp}/{name} has units {var.getncattr('units')!r}, expected {units!r}")
        found[name] = var
    if missing:
        raise InputFileError(
            f"{path}: not a complete TROPOMI L2 NO2 file: missing variables "
            f"{', '.join(missing)} (expected per the NO2 Product User Manual, "
            "S5P-KNMI-L2-0021-MA)")
    if wrong:
        raise InputFileError(f"{path}: TROPOMI L2 NO2 layout mismatch: " + "; ".join(wrong))
    nlay = found["averaging_kernel"].shape[-1]
    if found["tm5_constant_a"].shape != (nlay, 2) or found["tm5_constant_b"].shape != (nlay, 2):
        raise InputFileError(f"{path}: /PRODUCT/tm5_constant_a/b have shapes "
                             f"{found['tm5_constant_a'].shape}/{found['tm5_constant_b'].shape}, "
                             f"expected ({nlay}, 2) (layer, vertices)")
    if found["latitude_bounds"].shape[-1] != 4:
        nc = found["latitude_bounds"].shape[-1]
        raise InputFileError(f"{path}: /{GEO}/latitude_bounds has {nc} corners, expected 4")
    return found


def read_tropomi_no2(path, qa_min: float = 0.75, bbox=None) -> xr.Dataset:
    """Valid pixels of a TROPOMI/S5P L2 NO2 granule as an ``xarray.Dataset`` on dim ``pixel``.

    Parameters
    ----------
    path : L2 NO2 file (NetCDF4, layout of PUM S5P-KNMI-L2-0021-MA).
    qa_min : keep pixels with ``qa_value >= qa_min`` (inclusive). qa_value is stored as uint8
        with ``scale_factor = 0.01``; it is decoded (CF) before the comparison. The PUM
        recommends 0.75 for the tropospheric column (cloud radiance fraction < 0.5, no snow/ice).
    bbox : ``(lon0, lon1, lat0, lat1)`` degrees; keep pixels whose centre lies inside (closed
        interval). ``lon0 > lon1`` means a box crossing the antimeridian.

    Returns
    -------
    Dataset with dims ``pixel``, ``corner`` (4), ``layer`` (34), ``vertices`` (2):
    ``latitude``/``longitude`` (deg, pixel centres), ``latitude_bounds``/``longitude_bounds``
    (pixel, corner; deg, counter-clockwise from the SW corner in the ascending orbit),
    ``time`` (datetime64[ns] UTC of the scanline: ``time`` + ``delta_time``),
    ``scanline``/``ground_pixel`` (indices into the granule),
    ``nitrogendioxide_tropospheric_column`` and ``_precision`` (mol m-2), ``qa_value`` (1),
    ``averaging_kernel`` (pixel, layer; 1, float32 as stored), ``air_mass_factor_total`` and
    ``air_mass_factor_troposphere`` (1), ``surface_pressure`` (Pa),
    ``tm5_tropopause_layer_index`` (0-based, highest tropospheric layer), ``tm5_constant_a``
    (layer, vertices; Pa) and ``tm5_constant_b`` (layer, vertices; 1).

    Pixels with a fill value in any returned field are dropped as well (they cannot be used with
    the averaging kernel). Raises :class:`aqforecast.io.InputFileError` naming the file and the
    missing/ill-shaped groups and variables.
    """
    path = Path(path)
    try:
        ds = netCDF4.Dataset(path, "r")
    except (OSError, RuntimeError) as exc:
        raise InputFileError(f"{path}: cannot open as NetCDF4 (TROPOMI L2 NO2 expected): {exc}") \
            from exc
    try:
        return _read(ds, path, float(qa_min), bbox)
    finally:
        ds.close()


def _read(ds, path, qa_min, bbox) -> xr.Dataset:
    v = _check_layout(ds, path)
    lat, _ = _decode(v["latitude"], 0)
    lon, _ = _decode(v["longitude"], 0)
    qa, _ = _decode(v["qa_value"], 0)
    keep = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(qa) & (qa >= qa_min - 1e-9)
    if bbox is not None:
        lon0, lon1, lat0, lat1 = (float(b) for b in bbox)
        inlat = (lat >= lat0) & (lat <= lat1)
        inlon = ((lon >= lon0) & (lon <= lon1)) if lon0 <= lon1 else ((lon >= lon0) | (lon <= lon1))
        keep &= inlat & inlon
    rows = np.nonzero(keep.any(axis=1))[0]
    nlay = v["averaging_kernel"].shape[-1]
    if rows.size == 0:
        s0, s1 = 0, 0
    else:
        s0, s1 = int(rows[0]), int(rows[-1]) + 1
    sl = (0, slice(s0, s1))  # read only the scanline slab holding candidate pixels
    keep = keep[s0:s1]

    fields = {}
    for name in ("nitrogendioxide_tropospheric_column",
                 "nitrogendioxide_tropospheric_column_precision",
                 "air_mass_factor_total", "air_mass_factor_troposphere"):
        fields[name] = _decode(v[name], sl)[0]
    fields["surface_pressure"] = _decode(v["surface_pressure"], sl)[0]
    trop, trop_bad = _decode(v["tm5_tropopause_layer_index"], sl, dtype=np.int64)
    ak = _decode(v["averaging_kernel"], sl, dtype=np.float32)[0]
    latb = _decode(v["latitude_bounds"], sl)[0]
    lonb = _decode(v["longitude_bounds"], sl)[0]
    for f in fields.values():
        keep &= np.isfinite(f)
    keep &= ~trop_bad & (trop >= 0) & (trop < nlay)
    keep &= np.isfinite(ak).all(axis=-1)
    keep &= np.isfinite(latb).all(axis=-1) & np.isfinite(lonb).all(axis=-1)
    js, ig = np.nonzero(keep)

    # time: reference time (``time``, s since 2010-01-01) + per-scanline delta_time (ms)
    tvar, dvar = v["time"], v["delta_time"]
    t_mult, t_ref = _parse_since(tvar.getncattr("units") if "units" in tvar.ncattrs() else "",
                                 path, "/PRODUCT/time")
    tval, tbad = _decode(tvar, 0, dtype=np.int64)
    if np.any(tbad):
        raise InputFileError(f"{path}: /PRODUCT/time is missing (fill value)")
    d_units = dvar.getncattr("units") if "units" in dvar.ncattrs() else "milliseconds"
    d_mult = _UNIT_NS.get(d_units.split()[0].lower()) if d_units else None
    if d_mult is None:
        raise InputFileError(f"{path}: /PRODUCT/delta_time has units {d_units!r}; expected "
                             "milliseconds (since time_reference)")
    dval, dbad = _decode(dvar, sl, dtype=np.int64)
    base = t_ref + np.timedelta64(int(tval) * t_mult, "ns")
    scan_time = base + (dval * d_mult).astype("timedelta64[ns]")
    scan_time = np.where(dbad, np.datetime64("NaT"), scan_time)

    a = _decode(v["tm5_constant_a"])[0]
    b = _decode(v["tm5_constant_b"])[0]
    pix = "pixel"
    col = "nitrogendioxide_tropospheric_column"
    prec = col + "_precision"
    out = xr.Dataset(
        {
            col: (pix, fields[col][js, ig], {
                "units": "mol m-2", "long_name": "tropospheric vertical column of NO2",
                "multiplication_factor_to_convert_to_molecules_percm2": MOL_M2_TO_MOLEC_CM2}),
            prec: (pix, fields[prec][js, ig], {
                "units": "mol m-2",
                "long_name": "precision of the tropospheric vertical column of NO2"}),
            "qa_value": (pix, qa[s0:s1][js, ig], {
                "units": "1", "long_name": "data quality value (decoded)"}),
            "averaging_kernel": ((pix, "layer"), ak[js, ig, :], {
                "units": "1", "long_name": "averaging kernel (total column)"}),
            "air_mass_factor_total": (pix, fields["air_mass_factor_total"][js, ig],
                                      {"units": "1"}),
            "air_mass_factor_troposphere": (pix, fields["air_mass_factor_troposphere"][js, ig],
                                            {"units": "1"}),
            "surface_pressure": (pix, fields["surface_pressure"][js, ig], {"units": "Pa"}),
            "tm5_tropopause_layer_index": (pix, trop[js, ig], {
                "units": "1", "long_name": "0-based TM5 index of the highest tropospheric layer"}),
            "tm5_constant_a": (("layer", "vertices"), a, {"units": "Pa"}),
            "tm5_constant_b": (("layer", "vertices"), b, {"units": "1"}),
            "latitude_bounds": ((pix, "corner"), latb[js, ig, :], {"units": "degrees_north"}),
            "longitude_bounds": ((pix, "corner"), lonb[js, ig, :], {"units": "degrees_east"}),
        },
        coords={
            "latitude": (pix, lat[s0:s1][js, ig], {"units": "degrees_north"}),
            "longitude": (pix, lon[s0:s1][js, ig], {"units": "degrees_east"}),
            "time": (pix, scan_time[js]),
            "scanline": (pix, js + s0),
            "ground_pixel": (pix, ig),
        },
    )
    out.attrs = {
        "source_file": str(path),
        "qa_min": qa_min,
        "reference": "TROPOMI NO2 Product User Manual S5P-KNMI-L2-0021-MA",
    }
    for k in ("id", "orbit", "processor_version", "product_version", "time_reference",
              "time_coverage_start", "time_coverage_end", "history"):
        if k in ds.ncattrs():
            val = ds.getncattr(k)
            out.attrs[k] = val.item() if isinstance(val, np.generic) else val
    return out


# ============================================================================ TM5 levels
def tm5_hybrid_coefficients(n_layers: int = N_TM5_LAYERS, p_transition: float = 10000.0,
                            p_surface_ref: float = 101325.0, top_height_m: float = 60000.0,
                            first_layer_m: float = 50.0):
    """Hybrid sigma-pressure coefficients ``a`` (Pa) and ``b`` (1), each ``(n_layers, 2)``.

    Layout as ``tm5_constant_a/b`` in the product: ``[l, 0]`` bottom and ``[l, 1]`` top interface
    of layer l (0 = surface). Reference interface heights grow geometrically from
    ``first_layer_m`` to ``top_height_m`` (fine near the ground, coarse aloft, as TM5-MP's 34-layer
    subset of the ECMWF L137 levels), reference pressure ``p_ref = p_s0 exp(-z / 7.4 km)`` with
    the top interface at 0 Pa. Then ``b = (p_ref - p_t)/(p_s0 - p_t)`` below ``p_transition`` p_t
    (terrain following) and 0 above, ``a = p_ref - b p_s0`` (pure pressure aloft), so that
    ``p = a + b ps`` is monotonic for any ``ps > p_t`` (Simmons & Burridge 1981, MWR 109, 758).
    These are synthetic TM5-like coefficients, not the operational table.
    """
    n = int(n_layers)
    # geometric growth r with first * (r**n - 1)/(r - 1) = top
    lo, hi = 1.0 + 1e-9, 3.0
    for _ in range(200):
        r = 0.5 * (lo + hi)
        s = first_layer_m * (r**n - 1.0) / (r - 1.0)
        lo, hi = (r, hi) if s < top_height_m else (lo, r)
    z = np.concatenate([[0.0], np.cumsum(first_layer_m * r ** np.arange(n))])
    p_ref = p_surface_ref * np.exp(-z / 7400.0)
    p_ref[-1] = 0.0
    bi = np.clip((p_ref - p_transition) / (p_surface_ref - p_transition), 0.0, 1.0)
    ai = p_ref - bi * p_surface_ref
    ai[0], bi[0] = 0.0, 1.0
    a = np.stack([ai[:-1], ai[1:]], axis=1)
    b = np.stack([bi[:-1], bi[1:]], axis=1)
    return a, b


def tm5_interface_pressures(a, b, psurf):
    """TM5 layer bottom/top pressures, Pa, ``(npix, nlayer, 2)``: p = a + b * psurf (PUM)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    ps = np.asarray(psurf, dtype=float).reshape(-1, 1, 1)
    return a[None] + b[None] * ps


# ============================================================================ column operator
def partial_columns(vmr, p_interfaces):
    """Partial columns, mol m-2, of a species with dry-air mole fraction ``vmr`` (nlev, npix).

    ``x_k = vmr_k * |p_k - p_{k+1}| / (g M_air)`` with ``p_interfaces`` (nlev+1, npix) in Pa,
    g = 9.81 m s-2, M_air = 28.9644e-3 kg mol-1 (hydrostatic air column per unit area).
    """
    vmr = np.asarray(vmr, dtype=float)
    p = np.asarray(p_interfaces, dtype=float)
    if p.shape[0] != vmr.shape[0] + 1 or p.shape[1:] != vmr.shape[1:]:
        raise ValueError(f"p_interfaces {p.shape} must be (nlev+1, ...) for vmr {vmr.shape}")
    return vmr * np.abs(np.diff(p, axis=0)) / (GRAVITY * M_AIR)


def regrid_partial_columns(x_model, p_model, p_tm5, chunk: int = 4096):
    """Mass-conserving regridding of model partial columns onto TM5 layers by pressure overlap.

    x_model (nlev, npix) mol m-2 on model layers with interfaces p_model (nlev+1, npix) Pa (either
    order); p_tm5 (npix, nlayer, 2) TM5 bottom/top interfaces. Each model layer is taken as well
    mixed in pressure, so TM5 layer l receives ``sum_k x_k * overlap(k, l) / dp_k``. The part of a
    model layer below the TM5 surface pressure (model surface lower than TM5's) is added to TM5
    layer 0 and a part above the TM5 top to the top layer, so the total column is conserved
    exactly. Returns (npix, nlayer) mol m-2.
    """
    x = np.asarray(x_model, dtype=float)
    pm = np.asarray(p_model, dtype=float)
    pt = np.asarray(p_tm5, dtype=float)
    nlev, npix = x.shape
    nlay = pt.shape[1]
    out = np.zeros((npix, nlay))
    for c0 in range(0, npix, chunk):
        c1 = min(npix, c0 + chunk)
        pmc = pm[:, c0:c1]
        mb = np.maximum(pmc[:-1], pmc[1:]).T[:, :, None]   # (n, nlev, 1) bottom (high p)
        mt = np.minimum(pmc[:-1], pmc[1:]).T[:, :, None]   # top (low p)
        tb = np.max(pt[c0:c1], axis=2)
        tt = np.min(pt[c0:c1], axis=2)
        # TM5 column bounds: extend lowest layer down and highest layer up to infinity so that
        # model mass outside the TM5 range lands in the end layers (column conservation)
        tb = tb.copy()
        tt = tt.copy()
        tb[:, 0] = np.inf
        tt[:, -1] = -np.inf
        tb, tt = tb[:, None, :], tt[:, None, :]           # (n, 1, nlay)
        ov = np.clip(np.minimum(mb, tb) - np.maximum(mt, tt), 0.0, None)
        dp = (mb - mt)
        frac = np.divide(ov, dp, out=np.zeros_like(ov), where=dp > 0)
        out[c0:c1] = np.einsum("nk,nkl->nl", x[:, c0:c1].T, frac)
    return out


def tropospheric_column_operator(model_no2_vmr, model_p_interfaces, ak, a, b, psurf,
                                 tropopause_index, amf_total, amf_trop):
    """Model-equivalent TROPOMI tropospheric NO2 column, mol m-2, per pixel ``(npix,)``.

    Parameters: ``model_no2_vmr`` (nlev, npix) dry-air mole fraction mol mol-1 of the model
    column at each pixel; ``model_p_interfaces`` (nlev+1, npix) Pa; ``ak`` (npix, 34) total-column
    averaging kernel; ``a`` (34, 2) Pa and ``b`` (34, 2) the TM5 hybrid coefficients; ``psurf``
    (npix,) TM5 surface pressure, Pa; ``tropopause_index`` (npix,) 0-based highest tropospheric
    TM5 layer; ``amf_total``, ``amf_trop`` (npix,) air-mass factors.

    Formula (Eskes & Boersma 2003, ACP 3, 1285, eqs. 6-8; TROPOMI NO2 PUM S5P-KNMI-L2-0021-MA,
    section on the use of the averaging kernel):

    1. model partial columns ``x_k = vmr_k dp_k / (g M_air)`` (mol m-2);
    2. mass-conserving regridding onto TM5 layers ``p(l, v) = a(l, v) + b(l, v) psurf`` by pressure
       overlap -> ``x_l`` (:func:`regrid_partial_columns`);
    3. tropospheric kernel ``A_trop,l = A_l * M / M_trop`` for ``l <= tropopause_index``, 0 above;
    4. ``y = sum_l A_trop,l x_l``.

    Pixels with a negative/invalid tropopause index or non-finite inputs give NaN.
    """
    vmr = np.asarray(model_no2_vmr, dtype=float)
    if vmr.ndim == 1:
        vmr = vmr[:, None]
    pm = np.asarray(model_p_interfaces, dtype=float)
    if pm.ndim == 1:
        pm = pm[:, None]
    ak = np.atleast_2d(np.asarray(ak, dtype=float))
    npix = vmr.shape[1]
    nlay = ak.shape[1]
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != (nlay, 2) or b.shape != (nlay, 2):
        raise ValueError(f"a, b must be ({nlay}, 2), got {a.shape}, {b.shape}")
    if ak.shape[0] != npix:
        raise ValueError(f"ak has {ak.shape[0]} pixels, model profiles {npix}")
    psurf = np.broadcast_to(np.asarray(psurf, dtype=float), (npix,))
    itp = np.broadcast_to(np.asarray(tropopause_index), (npix,)).astype(np.int64)
    m = np.broadcast_to(np.asarray(amf_total, dtype=float), (npix,))
    mt = np.broadcast_to(np.asarray(amf_trop, dtype=float), (npix,))

    x = partial_columns(vmr, pm)
    x_tm5 = regrid_partial_columns(x, pm, tm5_interface_pressures(a, b, psurf))
    ratio = np.divide(m, mt, out=np.full(npix, np.nan), where=mt != 0)
    in_trop = np.arange(nlay)[None, :] <= itp[:, None]
    ak_trop = np.where(in_trop, ak * ratio[:, None], 0.0)
    y = np.sum(ak_trop * x_tm5, axis=1)
    bad = (itp < 0) | (itp >= nlay) | ~np.isfinite(y)
    return np.where(bad, np.nan, y)


# ============================================================================ synthetic granule
def _copy_group(src, dst):
    """Copy dims, attributes, variables and subgroups of a netCDF4 group recursively."""
    for name, dim in src.dimensions.items():
        if name not in dst.dimensions:
            dst.createDimension(name, None if dim.isunlimited() else len(dim))
    dst.setncatts({k: src.getncattr(k) for k in src.ncattrs()})
    for name, var in src.variables.items():
        fill = var.getncattr("_FillValue") if "_FillValue" in var.ncattrs() else None
        nv = dst.createVariable(name, var.datatype, var.dimensions, fill_value=fill)
        nv.setncatts({k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"})
        var.set_auto_maskandscale(False)
        nv.set_auto_maskandscale(False)
        if var.size:
            nv[...] = var[...]
    for name, g in src.groups.items():
        _copy_group(g, dst.createGroup(name))


def _var(group, name, dtype, dims, data, attrs, fill=None):
    fv = {"f4": FLOAT_FILL, "i4": INT_FILL, "u1": UBYTE_FILL}.get(dtype) if fill is None else fill
    v = group.createVariable(name, dtype, dims, fill_value=fv if dtype != str else None,
                             zlib=dtype != str, complevel=3 if dtype != str else None)
    v.setncatts(attrs)
    v.set_auto_maskandscale(False)
    if data is not None:
        if dtype == str:
            for idx, s in np.ndenumerate(np.asarray(data, dtype=object)):
                v[idx] = s
        else:
            v[...] = data
    return v


def _iso(t: np.datetime64) -> str:
    return str(np.datetime64(t, "ms")) + "Z"


def write_synthetic_tropomi_no2(path, template, lon_range, lat_range, time, field_fn, *,
                                n_scanline: int = 40, n_ground_pixel: int = 30,
                                tilt_deg: float = 0.0, surface_pressure_fn=None,
                                tropopause_pressure: float = 20000.0, qa_fn=None,
                                precision: float = 1.5e-6, noise: bool = False, seed: int = 0,
                                scanline_interval_ms: int = 840) -> Path:
    """Write a synthetic TROPOMI L2 NO2 granule in the real product layout; returns the path.

    Layout: global attributes and the whole ``/METADATA`` group are copied from ``template`` (a
    real L2 NO2 file such as the header in ``shared/data/satellite_schema``), then the time and
    geospatial attributes are set for this granule and ``history`` notes that it is synthetic.
    ``/PRODUCT`` has the template's dimensions with scanline x ground_pixel = ``n_scanline x
    n_ground_pixel`` and the product's variable names, dtypes, units, scale factors and fill
    values (PUM S5P-KNMI-L2-0021-MA), plus SUPPORT_DATA/{GEOLOCATIONS, DETAILED_RESULTS,
    INPUT_DATA}.

    Geometry: a swath covering ``lon_range`` x ``lat_range`` (deg), scanlines running south to
    north (ascending orbit), ground pixels west to east, optionally rotated by ``tilt_deg``
    about the box centre; corners counter-clockwise from SW (PUM). First scanline at ``time``
    (UTC, anything ``np.datetime64`` accepts), then every ``scanline_interval_ms``.

    Truth: ``field_fn(lon, lat, p)`` gives the NO2 dry-air mole fraction (mol mol-1) at pixel
    centres ``lon``, ``lat`` (nscan, npix, 1) and TM5 layer mid pressures ``p`` (nscan, npix, 34),
    Pa. TM5 layers use :func:`tm5_hybrid_coefficients` with surface pressure
    ``surface_pressure_fn(lon, lat)`` (Pa; default 101325 - 150 Pa of gentle relief); the
    tropopause index is the highest layer whose top pressure is >= ``tropopause_pressure``.
    Partial columns ``x_l = vmr dp/(g M_air)`` (mol m-2). Box AMFs ``m_l`` increase with height
    as a clear-sky NO2 scattering profile (0.6 at the ground to ~1.6 near the tropopause, times
    the geometric factor of the viewing geometry); ``M = sum m_l x_l / sum x_l`` over all
    layers, ``M_trop`` over tropospheric ones, ``averaging_kernel = m_l / M`` (Eskes & Boersma
    2003). The stored tropospheric column is the true ``sum_{l<=itp} x_l`` (plus Gaussian noise of
    sd ``precision`` if ``noise``), so applying :func:`tropospheric_column_operator` to the
    field itself reproduces it. ``qa_fn(lon, lat)`` -> qa in [0, 1] (stored as uint8 x 0.01);
    default: 1.0 with 20 % of pixels (seeded) set to 0.5.
    """
    path = Path(path)
    template = Path(template)
    try:
        tpl = netCDF4.Dataset(template, "r")
    except (OSError, RuntimeError) as exc:
        raise InputFileError(
            f"{template}: cannot open template TROPOMI L2 NO2 file: {exc}") from exc
    try:
        tpl_product = _group(tpl, PRODUCT)
        if tpl_product is None or "METADATA" not in tpl.groups:
            raise InputFileError(f"{template}: template lacks the /PRODUCT or /METADATA group")
        for d in ("layer", "vertices", "corner", "time"):
            if d not in tpl_product.dimensions:
                raise InputFileError(f"{template}: /PRODUCT lacks dimension {d!r}")
        nlay = len(tpl_product.dimensions["layer"])
        with atomic_path(path) as tmp:
            with netCDF4.Dataset(tmp, "w", format="NETCDF4") as out:
                _write_granule(out, tpl, tpl_product, nlay, lon_range, lat_range, time, field_fn,
                               n_scanline, n_ground_pixel, tilt_deg, surface_pressure_fn,
                               tropopause_pressure, qa_fn, precision, noise, seed,
                               scanline_interval_ms)
    finally:
        tpl.close()
    return path


def _write_granule(out, tpl, tpl_product, nlay, lon_range, lat_range, time, field_fn, ns, ng,
                   tilt_deg, surface_pressure_fn, tropopause_pressure, qa_fn, precision, noise,
                   seed, scanline_interval_ms):
    rng = np.random.default_rng(seed)
    lon0, lon1 = (float(v) for v in lon_range)
    lat0, lat1 = (float(v) for v in lat_range)
    # ---- geometry: parametric swath (u across-track, v along-track), edges then centres
    ue = np.linspace(0.0, 1.0, ng + 1)
    ve = np.linspace(0.0, 1.0, ns + 1)
    clon, clat = 0.5 * (lon0 + lon1), 0.5 * (lat0 + lat1)
    th = np.deg2rad(tilt_deg)

    def place(u, v):
        dx = (u - 0.5) * (lon1 - lon0)
        dy = (v - 0.5) * (lat1 - lat0)
        return (clon + dx * np.cos(th) - dy * np.sin(th), clat + dx * np.sin(th) + dy * np.cos(th))

    uc = 0.5 * (ue[:-1] + ue[1:])
    vc = 0.5 * (ve[:-1] + ve[1:])
    U, V = np.meshgrid(uc, vc)                     # (ns, ng)
    lon, lat = place(U, V)
    # corners: 0 SW, 1 SE, 2 NE, 3 NW (counter-clockwise from SW, ascending orbit)
    Ue0, Ve0 = np.meshgrid(ue[:-1], ve[:-1])
    Ue1, Ve1 = np.meshgrid(ue[1:], ve[1:])
    corner_u = np.stack([Ue0, Ue1, Ue1, Ue0], axis=-1)
    corner_v = np.stack([Ve0, Ve0, Ve1, Ve1], axis=-1)
    lonb, latb = place(corner_u, corner_v)

    # ---- vertical and truth
    a, b = tm5_hybrid_coefficients(nlay)
    if surface_pressure_fn is None:
        relief = np.sin(np.deg2rad(lon) * 40.0) * np.cos(np.deg2rad(lat) * 40.0) + 1.0
        ps = 101325.0 - 150.0 * relief
    else:
        ps = np.broadcast_to(np.asarray(surface_pressure_fn(lon, lat), dtype=float), lon.shape)
    pint = a[None, None] + b[None, None] * ps[..., None, None]     # (ns, ng, nlay, 2)
    pmid = 0.5 * (pint[..., 0] + pint[..., 1])
    dp = pint[..., 0] - pint[..., 1]
    vmr = np.broadcast_to(np.asarray(field_fn(lon[..., None], lat[..., None], pmid), dtype=float),
                          pmid.shape)
    x = vmr * dp / (GRAVITY * M_AIR)                               # mol m-2 per layer
    itp = np.sum(pint[..., 1] >= tropopause_pressure, axis=-1) - 1
    itp = np.clip(itp, 0, nlay - 1).astype(np.int32)
    trop = np.arange(nlay)[None, None, :] <= itp[..., None]
    # geometry: SZA from latitude, VZA growing across track (TROPOMI swath to ~70 deg)
    sza = np.clip(np.abs(lat - 10.0) + 15.0, 0, 85)
    vza = np.abs((U - 0.5) * 2.0) * 66.0
    geo = 1.0 / np.cos(np.deg2rad(sza)) + 1.0 / np.cos(np.deg2rad(vza))
    sigma = np.clip(pmid / ps[..., None], 0.0, 1.0)
    m_box = geo[..., None] * (0.3 + 0.5 * (1.0 - sigma) ** 0.5)    # box AMFs, grow with height
    xs = np.where(x > 0, x, 0.0) + 1e-30
    amf = np.sum(m_box * xs, axis=-1) / np.sum(xs, axis=-1)
    amf_trop = np.sum(np.where(trop, m_box * xs, 0), -1) / np.sum(np.where(trop, xs, 0), -1)
    amf_strat = (np.sum(np.where(trop, 0, m_box * xs), -1)
                 / np.maximum(np.sum(np.where(trop, 0, xs), -1), 1e-30))
    ak = m_box / amf[..., None]
    col_trop = np.sum(np.where(trop, x, 0.0), axis=-1)
    col_strat = np.sum(np.where(trop, 0.0, x), axis=-1)
    if noise:
        col_trop = col_trop + rng.normal(0.0, precision, col_trop.shape)
    if qa_fn is None:
        qa = np.where(rng.random(lon.shape) < 0.2, 0.5, 1.0)
    else:
        qa = np.broadcast_to(np.asarray(qa_fn(lon, lat), dtype=float), lon.shape)
    qa_raw = np.clip(np.round(qa * 100.0), 0, 100).astype(np.uint8)

    # ---- time
    t0 = np.datetime64(time, "ms")
    day = t0.astype("datetime64[D]")
    epoch2010 = np.datetime64("2010-01-01T00:00:00", "s")
    tref_s = int((day.astype("datetime64[s]") - epoch2010) / np.timedelta64(1, "s"))
    delta = ((t0 - day.astype("datetime64[ms]")) / np.timedelta64(1, "ms")
             + np.arange(ns) * scanline_interval_ms).astype(np.int64)
    scan_t = day.astype("datetime64[ms]") + delta.astype("timedelta64[ms]")
    day_str = str(day)

    # ---- global attributes (template, then this granule's time/space)
    gatts = {k: tpl.getncattr(k) for k in tpl.ncattrs()}
    d1950 = int((day - np.datetime64("1950-01-01", "D")) / np.timedelta64(1, "D"))
    s1970 = int((day.astype("datetime64[s]") - np.datetime64("1970-01-01T00:00:00", "s"))
                / np.timedelta64(1, "s"))
    dur_s = (ns - 1) * scanline_interval_ms / 1000.0
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    gatts.update({
        "time_reference": f"{day_str}T00:00:00Z",
        "time_reference_days_since_1950": np.int32(d1950),
        "time_reference_julian_day": np.float64(2433282.5 + d1950),
        "time_reference_seconds_since_1970": np.int64(s1970),
        "time_coverage_start": _iso(scan_t[0]).split(".")[0] + "Z",
        "time_coverage_end": _iso(scan_t[-1]).split(".")[0] + "Z",
        "time_coverage_duration": f"PT{dur_s:.3f}S",
        "time_coverage_resolution": f"PT{scanline_interval_ms / 1000.0:.3f}S",
        "geospatial_lat_min": np.float32(np.min(latb)),
        "geospatial_lat_max": np.float32(np.max(latb)),
        "geospatial_lon_min": np.float32(np.min(lonb)),
        "geospatial_lon_max": np.float32(np.max(lonb)),
        "date_created": now,
        "history": (str(gatts.get("history", "")) + f"; {now} aqforecast "
                    "write_synthetic_tropomi_no2: SYNTHETIC granule (known truth), layout from "
                    "template").lstrip("; "),
    })
    out.setncatts(gatts)

    # ---- /PRODUCT dims and coordinate variables
    P = out.createGroup(PRODUCT)
    for name, dim in tpl_product.dimensions.items():
        size = {"scanline": ns, "ground_pixel": ng}.get(name, len(dim))
        P.createDimension(name, size)
    P.setncatts({k: tpl_product.getncattr(k) for k in tpl_product.ncattrs()})
    dims = {n: len(d) for n, d in P.dimensions.items()}
    _var(P, "scanline", "i4", ("scanline",), np.arange(ns), {
        "units": "1", "axis": "Y", "long_name": "along-track dimension index",
        "comment": "This coordinate variable defines the indices along track; index starts at 0"})
    _var(P, "ground_pixel", "i4", ("ground_pixel",), np.arange(ng), {
        "units": "1", "axis": "X", "long_name": "across-track dimension index",
        "comment": "This coordinate variable defines the indices across track, from west to east; "
                   "index starts at 0"})
    _var(P, "time", "i4", ("time",), np.array([tref_s]), {
        "units": "seconds since 2010-01-01 00:00:00", "standard_name": "time", "axis": "T",
        "long_name": "reference time for the measurements",
        "comment": "The time in this variable corresponds to the time in the time_reference "
                   "global attribute"})
    _var(P, "corner", "i4", ("corner",), np.arange(dims["corner"]), {
        "units": "1", "long_name": "pixel corner index",
        "comment": "This coordinate variable defines the indices for the pixel corners; index "
                   "starts at 0 (counter-clockwise, starting from south-western corner of the "
                   "pixel in ascending part of the orbit)"})
    for extra in ("polynomial_exponents", "intensity_offset_polynomial_exponents"):
        if extra in dims:
            _var(P, extra, "i4", (extra,), np.arange(dims[extra]), {
                "units": "1", "long_name": extra.replace("_", " ")})
    _var(P, "layer", "i4", ("layer",), np.arange(nlay), {
        "units": "1", "long_name": "TM5 layer index", "axis": "Z",
        "comment": "TM5 layer index, 0 at the surface"})
    _var(P, "vertices", "i4", ("vertices",), np.arange(dims["vertices"]), {
        "units": "1", "long_name": "TM5 interface index (0 lower, 1 upper)"})

    pix = _PIX
    ll = "longitude latitude"
    _var(P, "latitude", "f4", pix, lat[None], {
        "long_name": "pixel center latitude", "units": "degrees_north", "standard_name": "latitude",
        "valid_min": np.float32(-90), "valid_max": np.float32(90),
        "bounds": f"/{GEO}/latitude_bounds"})
    _var(P, "longitude", "f4", pix, lon[None], {
        "long_name": "pixel center longitude", "units": "degrees_east",
        "standard_name": "longitude", "valid_min": np.float32(-180), "valid_max": np.float32(180),
        "bounds": f"/{GEO}/longitude_bounds"})
    _var(P, "delta_time", "i4", ("time", "scanline"), delta[None], {
        "long_name": "offset of start time of measurement relative to time_reference",
        "units": f"milliseconds since {day_str} 00:00:00"})
    _var(P, "time_utc", str, ("time", "scanline"),
         np.array([[_iso(t) for t in scan_t]], dtype=object),
         {"long_name": "Time of observation as ISO 8601 date-time string"})
    _var(P, "qa_value", "u1", pix, qa_raw[None], {
        "units": "1", "scale_factor": np.float32(0.01), "add_offset": np.float32(0.0),
        "valid_min": np.uint8(0), "valid_max": np.uint8(100), "long_name": "data quality value",
        "comment": "A continuous quality descriptor, varying between 0 (no data) and 1 (full "
                   "quality data). Recommend to ignore data with qa_value < 0.5",
        "coordinates": ll})
    col_attrs = {"units": "mol m-2", "coordinates": ll,
                 "multiplication_factor_to_convert_to_molecules_percm2":
                     np.float32(MOL_M2_TO_MOLEC_CM2)}
    se_name = "troposphere_mole_content_of_nitrogen_dioxide standard_error"
    _var(P, "nitrogendioxide_tropospheric_column", "f4", pix, col_trop[None], {
        **col_attrs, "standard_name": "troposphere_mole_content_of_nitrogen_dioxide",
        "long_name": "Tropospheric vertical column of nitrogen dioxide",
        "ancillary_variables": "nitrogendioxide_tropospheric_column_precision "
                               "air_mass_factor_troposphere air_mass_factor_total "
                               "averaging_kernel"})
    _var(P, "nitrogendioxide_tropospheric_column_precision", "f4", pix,
         np.full(lon.shape, precision)[None], {
             **col_attrs, "standard_name": se_name,
             "long_name": "Precision of the tropospheric vertical column of nitrogen dioxide"})
    _var(P, "nitrogendioxide_tropospheric_column_precision_kernel", "f4", pix,
         np.full(lon.shape, 0.8 * precision)[None], {
             **col_attrs, "standard_name": se_name,
             "long_name": "Precision of the tropospheric vertical column of nitrogen dioxide when "
                          "applying the averaging kernel"})
    _var(P, "averaging_kernel", "f4", pix + ("layer",), ak[None], {
        "units": "1", "long_name": "averaging kernel", "coordinates": ll,
        "standard_name": "averaging_kernel"})
    _var(P, "air_mass_factor_troposphere", "f4", pix, amf_trop[None], {
        "units": "1", "long_name": "Tropospheric air mass factor", "coordinates": ll,
        "standard_name": "troposphere_mole_content_of_nitrogen_dioxide amf"})
    _var(P, "air_mass_factor_total", "f4", pix, amf[None], {
        "units": "1", "long_name": "Total air mass factor", "coordinates": ll,
        "standard_name": "atmosphere_mole_content_of_nitrogen_dioxide amf"})
    _var(P, "tm5_tropopause_layer_index", "i4", pix, itp[None], {
        "units": "1", "long_name": "TM5 layer index of the highest layer in the tropopause",
        "valid_min": np.int32(0), "valid_max": np.int32(nlay - 1), "coordinates": ll})
    _var(P, "tm5_constant_a", "f4", ("layer", "vertices"), a, {
        "units": "Pa", "long_name": "TM5 hybrid A coefficient at upper and lower interface levels"})
    _var(P, "tm5_constant_b", "f4", ("layer", "vertices"), b, {
        "units": "1", "long_name": "TM5 hybrid B coefficient at upper and lower interface levels"})

    S = P.createGroup("SUPPORT_DATA")
    G = S.createGroup("GEOLOCATIONS")
    _var(G, "latitude_bounds", "f4", pix + ("corner",), latb[None], {"units": "degrees_north"})
    _var(G, "longitude_bounds", "f4", pix + ("corner",), lonb[None], {"units": "degrees_east"})
    ang = {"units": "degree", "valid_min": np.float32(0), "valid_max": np.float32(180)}
    _var(G, "solar_zenith_angle", "f4", pix, sza[None], {
        **ang, "standard_name": "solar_zenith_angle", "long_name": "solar zenith angle"})
    _var(G, "viewing_zenith_angle", "f4", pix, vza[None], {
        **ang, "standard_name": "sensor_zenith_angle", "long_name": "viewing zenith angle"})
    D = S.createGroup("DETAILED_RESULTS")
    _var(D, "nitrogendioxide_stratospheric_column", "f4", pix, col_strat[None], {
        **col_attrs, "standard_name": "stratosphere_mole_content_of_nitrogen_dioxide",
        "long_name": "Stratospheric vertical column of nitrogen dioxide, derived from the TM5-MP "
                     "vertical profiles"})
    _var(D, "nitrogendioxide_total_column", "f4", pix, (col_trop + col_strat)[None], {
        **col_attrs, "standard_name": "atmosphere_mole_content_of_nitrogen_dioxide",
        "long_name": "Total vertical column of nitrogen dioxide derived from the total slant "
                     "column and TM5 profile in stratosphere and troposphere"})
    _var(D, "air_mass_factor_stratosphere", "f4", pix, amf_strat[None], {
        "units": "1", "long_name": "Stratospheric air mass factor", "coordinates": ll})
    inp = S.createGroup("INPUT_DATA")
    _var(inp, "surface_pressure", "f4", pix, ps[None], {
        "units": "Pa", "standard_name": "surface_air_pressure", "long_name": "surface_air_pressure",
        "coordinates": ll})
    _var(inp, "surface_altitude", "f4", pix, (-8434.5 * np.log(ps / 101325.0))[None], {
        "units": "m", "standard_name": "surface_altitude",
        "long_name": "Surface altitude (barometric estimate, synthetic)", "coordinates": ll})

    _copy_group(tpl.groups["METADATA"], out.createGroup("METADATA"))


# ============================================================================ superobservations
def _subsample(xc, yc, n):
    """Bilinear sub-sampling of pixel quads. xc, yc (npix, 4) corners (counter-clockwise from
    corner 0). Returns points (npix, n*n) and Jacobian weights |J| (npix, n*n) in m2 per unit
    (u, v) area, the exact midpoint rule for the bilinear patch (exact for parallelograms)."""
    s = (np.arange(n) + 0.5) / n
    u, v = np.meshgrid(s, s)
    u = u.ravel()[None]
    v = v.ravel()[None]
    p0, p1, p2, p3 = (np.stack([xc[:, k], yc[:, k]], -1)[:, None, :] for k in range(4))
    uu, vv = u[..., None], v[..., None]
    pts = (1 - uu) * (1 - vv) * p0 + uu * (1 - vv) * p1 + uu * vv * p2 + (1 - uu) * vv * p3
    du = (1 - vv) * (p1 - p0) + vv * (p2 - p3)
    dv = (1 - uu) * (p3 - p0) + uu * (p2 - p1)
    jac = np.abs(du[..., 0] * dv[..., 1] - du[..., 1] * dv[..., 0])
    return pts[..., 0], pts[..., 1], jac


def superobservations(pixels: xr.Dataset, grid, n_sub: int = 10,
                      representativeness_relative: float = 0.15,
                      column: str = "nitrogendioxide_tropospheric_column",
                      precision: str = "nitrogendioxide_tropospheric_column_precision",
                      min_coverage: float = 0.0) -> xr.Dataset:
    """Area-weighted superobservations of pixel columns on a model grid (``y``, ``x``).

    ``pixels``: Dataset from :func:`read_tropomi_no2` (``latitude_bounds``/``longitude_bounds``
    (pixel, corner), ``column`` and ``precision`` in mol m-2). ``grid``: an
    :class:`aqforecast.grid.LambertGrid` (``to_xy``, ``x_edges``, ``y_edges`` in m, ``cell_area``).

    Footprints: each pixel quad is projected to the grid plane and sub-sampled with ``n_sub x
    n_sub`` points of its bilinear parametrisation, each point weighted by the Jacobian (midpoint
    rule; exact for parallelogram pixels, error O(1/n_sub) in the cell split). The fraction of
    pixel i in cell c is ``f_ci`` (sums to 1 over cells for a pixel inside the grid; the part
    outside the grid is dropped). Pixel true area ``A_i`` = map-plane area / m^2 (Lambert map
    factor at the pixel centre). Overlap weight ``w_ci = f_ci A_i`` (m2). Per cell:

    - mean column ``y_c = sum_i w_ci y_i / sum_i w_ci`` (mol m-2),
    - measurement error ``s_c = sqrt(sum_i w_ci^2 s_i^2) / sum_i w_ci`` (pixel errors taken as
      uncorrelated; as Miyazaki et al. 2012 ACP 12, 9545),
    - representativeness error ``r_c = representativeness_relative * |y_c| * (1 - coverage_c)``
      with ``coverage_c = min(1, sum_i w_ci / cell area)``: zero for a fully covered cell,
      growing with the unsampled fraction (Boersma et al. 2016, GMD 9, 875),
    - total error ``sqrt(s_c^2 + r_c^2)``, number of contributing pixels, coverage, mean time.

    The operator weights are returned as a sparse (COO) list on dim ``entry``: ``entry_cell``
    (flat index ``j * nx + i``), ``entry_pixel`` (index along ``pixel``), ``entry_weight``
    (``w_ci / sum_i w_ci``; the model-equivalent superobservation is ``sum_i entry_weight *
    H_i`` with H_i from :func:`tropospheric_column_operator`) and ``entry_pixel_fraction``
    (``f_ci``). :func:`superobs_weight_matrix` builds the cells x pixels CSR matrix.
    Cells with no pixel, or coverage < ``min_coverage``, are NaN.
    """
    latb = np.asarray(pixels["latitude_bounds"].values, dtype=float)
    lonb = np.asarray(pixels["longitude_bounds"].values, dtype=float)
    yv = np.asarray(pixels[column].values, dtype=float)
    sv = np.asarray(pixels[precision].values, dtype=float)
    npix = yv.size
    nx, ny = int(grid.nx), int(grid.ny)
    ncell = nx * ny
    xe = np.asarray(grid.x_edges, dtype=float)
    ye = np.asarray(grid.y_edges, dtype=float)

    if npix:
        xc, yc = grid.to_xy(lonb, latb)
        xc, yc = np.asarray(xc, dtype=float), np.asarray(yc, dtype=float)
        px, py, jac = _subsample(xc, yc, int(n_sub))
        plane_area = jac.mean(axis=1)                                   # m2 on the map plane
        mfac = grid.map_factor_at(np.asarray(pixels["latitude"].values, dtype=float))
        area = plane_area / mfac**2                                     # true area, m2
        ii = np.searchsorted(xe, px, side="right") - 1
        jj = np.searchsorted(ye, py, side="right") - 1
        inside = (ii >= 0) & (ii < nx) & (jj >= 0) & (jj < ny)
        cell = np.where(inside, jj * nx + ii, -1)
        pidx = np.broadcast_to(np.arange(npix)[:, None], cell.shape)
        jsum = jac.sum(axis=1)
        ok = inside & (jsum[:, None] > 0)
        key = pidx[ok].astype(np.int64) * ncell + cell[ok]
        wpt = (jac / np.where(jsum > 0, jsum, 1.0)[:, None])[ok]
        ukey, inv = np.unique(key, return_inverse=True)
        frac = np.bincount(inv, weights=wpt)
        e_pix = (ukey // ncell).astype(np.int64)
        e_cell = (ukey % ncell).astype(np.int64)
    else:
        e_pix = e_cell = np.zeros(0, dtype=np.int64)
        frac = np.zeros(0)
        area = np.zeros(0)
    good = np.isfinite(yv[e_pix]) & np.isfinite(sv[e_pix])
    e_pix, e_cell, frac = e_pix[good], e_cell[good], frac[good]
    w = frac * area[e_pix]
    wsum = np.bincount(e_cell, weights=w, minlength=ncell)
    ysum = np.bincount(e_cell, weights=w * yv[e_pix], minlength=ncell)
    s2 = np.bincount(e_cell, weights=(w * sv[e_pix]) ** 2, minlength=ncell)
    npx = np.bincount(e_cell, minlength=ncell)
    has = wsum > 0
    mean = np.where(has, ysum / np.where(has, wsum, 1.0), np.nan)
    meas = np.where(has, np.sqrt(s2) / np.where(has, wsum, 1.0), np.nan)
    cell_area = np.asarray(grid.cell_area, dtype=float).ravel()
    coverage = np.minimum(1.0, wsum / cell_area)
    rep = representativeness_relative * np.abs(mean) * (1.0 - coverage)
    total = np.sqrt(meas**2 + rep**2)
    drop = ~has | (coverage < min_coverage)
    for arr in (mean, meas, rep, total):
        arr[drop] = np.nan
    keep_e = ~drop[e_cell]
    e_pix, e_cell, frac, w = e_pix[keep_e], e_cell[keep_e], frac[keep_e], w[keep_e]
    weight = w / wsum[e_cell] if w.size else w
    # area-weighted mean observation time per cell
    tmean = np.full(ncell, np.datetime64("NaT", "ns"))
    if "time" in pixels and w.size:
        t = pixels["time"].values.astype("datetime64[ns]")
        t0 = np.nanmin(t) if np.any(~np.isnat(t)) else None
        if t0 is not None:
            dt = (t - t0) / np.timedelta64(1, "s")
            okt = np.isfinite(dt[e_pix])
            tw = np.bincount(e_cell[okt], weights=weight[okt] * dt[e_pix][okt], minlength=ncell)
            ws = np.bincount(e_cell[okt], weights=weight[okt], minlength=ncell)
            sel = ws > 0
            tmean[sel] = t0 + (tw[sel] / ws[sel] * 1e9).astype("timedelta64[ns]")

    shp = (ny, nx)
    lon2, lat2 = grid.lonlat
    unit = {"units": "mol m-2"}
    ds = xr.Dataset(
        {
            column: (("y", "x"), mean.reshape(shp), {
                **unit, "long_name": "pixel-area-weighted mean tropospheric NO2 column"}),
            f"{column}_measurement_error": (("y", "x"), meas.reshape(shp), {
                **unit, "long_name": "sqrt(sum w^2 sigma^2)/sum w (uncorrelated pixels)"}),
            f"{column}_representativeness_error": (("y", "x"), rep.reshape(shp), {
                **unit, "long_name": "representativeness error, rel * |mean| * (1 - coverage)",
                "representativeness_relative": float(representativeness_relative)}),
            f"{column}_error": (("y", "x"), total.reshape(shp), {
                **unit, "long_name": "total superobservation error (quadrature sum)"}),
            "n_pixels": (("y", "x"), npx.reshape(shp).astype(np.int32), {
                "units": "1", "long_name": "number of pixels overlapping the cell"}),
            "coverage": (("y", "x"), coverage.reshape(shp), {
                "units": "1", "long_name": "sum of pixel overlap areas / cell area, capped at 1"}),
            "weight_sum": (("y", "x"), wsum.reshape(shp), {
                "units": "m2", "long_name": "sum of pixel overlap areas"}),
            "time": (("y", "x"), tmean.reshape(shp), {"long_name": "weighted mean pixel time"}),
            "entry_cell": ("entry", e_cell, {"long_name": "flat cell index j*nx+i"}),
            "entry_pixel": ("entry", e_pix, {"long_name": "index along the input pixel dim"}),
            "entry_weight": ("entry", weight, {
                "units": "1", "long_name": "normalised superobs weight w_ci / sum_i w_ci"}),
            "entry_pixel_fraction": ("entry", frac, {
                "units": "1", "long_name": "fraction of the pixel footprint in the cell"}),
        },
        coords={"lon": (("y", "x"), lon2), "lat": (("y", "x"), lat2)},
    )
    ds.attrs = {"grid": getattr(grid, "name", ""), "nx": nx, "ny": ny, "n_input_pixels": npix,
                "n_sub": int(n_sub),
                "method": "pixel footprints sub-sampled n_sub x n_sub (bilinear, Jacobian "
                          "weighted), area-weighted cell means"}
    return ds


def superobs_weight_matrix(superobs: xr.Dataset):
    """Cells x pixels CSR matrix W (``ny*nx`` x ``n_input_pixels``) of a superobservation set.

    ``W @ y_pixels`` reproduces the superobserved column; ``W @ H(model)`` is the model
    equivalent, with H the per-pixel :func:`tropospheric_column_operator`.
    """
    from scipy.sparse import csr_matrix

    ncell = int(superobs.attrs["nx"]) * int(superobs.attrs["ny"])
    return csr_matrix((superobs["entry_weight"].values,
                       (superobs["entry_cell"].values, superobs["entry_pixel"].values)),
                      shape=(ncell, int(superobs.attrs["n_input_pixels"])))


# ============================================================================ model-layer kernels
def column_sensitivity(model_p_interfaces, ak, a, b, psurf, tropopause_index, amf_total,
                       amf_trop):
    """Jacobian of :func:`tropospheric_column_operator` w.r.t. the model NO2 mole fractions.

    The operator is linear in the model profile, so ``y = sum_k G_k vmr_k`` exactly, with
    ``G_k`` the operator applied to a unit profile in layer k alone. ``model_p_interfaces``
    (nlev+1, npix) Pa; the other arguments as :func:`tropospheric_column_operator`. Returns
    ``G`` (npix, nlev), mol m-2 per (mol mol-1); NaN rows for pixels the operator rejects.
    """
    pm = np.asarray(model_p_interfaces, dtype=float)
    if pm.ndim == 1:
        pm = pm[:, None]
    nlev, npix = pm.shape[0] - 1, pm.shape[1]
    out = np.empty((npix, nlev))
    for k in range(nlev):
        unit = np.zeros((nlev, npix))
        unit[k] = 1.0
        out[:, k] = tropospheric_column_operator(unit, pm, ak, a, b, psurf, tropopause_index,
                                                 amf_total, amf_trop)
    return out


def superobs_column_kernels(sat: xr.Dataset, domain: str, p_interfaces) -> tuple:
    """Model-layer kernels of a domain's superobservations in a ``satellite_no2.nc`` dataset.

    ``sat``: the observation stage's file (:func:`aqforecast.observations.collect.
    gather_satellite_no2`): superobservations on dim ``obs`` (``domain``, ``cell``), pixels on
    dim ``pixel`` (averaging kernel, AMFs, TM5 surface pressure and tropopause index) and the
    superobs weights on dim ``entry`` (``entry_obs``, ``entry_pixel``, ``entry_weight``).
    ``p_interfaces``: (nlev+1, ny, nx) model interface pressures, Pa, of that domain.

    Each pixel's averaging kernel is applied to the model profile of the cell it is averaged
    into (the part of a pixel in cell c uses cell c's column), and the superobservation's model
    equivalent is the weighted sum over its pixels, as the observed superobs is over the
    pixels' columns. Returns ``(index, cell, K)``: ``index`` (nobs,) positions along ``obs`` of
    the domain's superobservations, ``cell`` (nobs,) flat cell index ``j * nx + i``, and ``K``
    (nobs, nlev), mol m-2 per mol mol-1, so that the model-equivalent column is
    ``sum_k K[o, k] * vmr[k, cell[o]]``.
    """
    p = np.asarray(p_interfaces, dtype=float)
    nlev = p.shape[0] - 1
    dom = np.asarray(sat["domain"].values).astype(str)
    index = np.flatnonzero(dom == str(domain))
    cell = np.asarray(sat["cell"].values, dtype=np.int64)[index]
    K = np.zeros((index.size, nlev))
    if index.size == 0:
        return index, cell, K
    pos = np.full(sat.sizes["obs"], -1, dtype=np.int64)
    pos[index] = np.arange(index.size)
    e_obs = np.asarray(sat["entry_obs"].values, dtype=np.int64)
    sel = pos[e_obs] >= 0
    e_row = pos[e_obs[sel]]
    e_pix = np.asarray(sat["entry_pixel"].values, dtype=np.int64)[sel]
    w = np.asarray(sat["entry_weight"].values, dtype=float)[sel]
    pflat = p.reshape(nlev + 1, -1)[:, cell[e_row]]                       # (nlev+1, nentry)
    G = column_sensitivity(
        pflat, sat["averaging_kernel"].values[e_pix], sat["tm5_constant_a"].values,
        sat["tm5_constant_b"].values, sat["surface_pressure"].values[e_pix],
        sat["tm5_tropopause_layer_index"].values[e_pix],
        sat["air_mass_factor_total"].values[e_pix],
        sat["air_mass_factor_troposphere"].values[e_pix])
    np.add.at(K, e_row, w[:, None] * G)
    return index, cell, K
