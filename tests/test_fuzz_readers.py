"""Property-based fuzz tests of every reader (hypothesis): whatever the file holds, a reader
returns a result or raises our own error (:class:`aqforecast.io.InputFileError` and its
subclasses, :class:`aqforecast.config.ConfigError`), never another exception. Inputs are real
files mutated (lines replaced by random text, bytes inserted, truncation, random values in a
valid NetCDF structure) and random bytes. The example budget is fixed so CI stays fast."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from aqforecast.config import ConfigError, load_config  # noqa: E402
from aqforecast.io import InputFileError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
from conftest import SHARED_DATA as SHARED  # noqa: E402  (shared/data or the vendored copy)
OURS = (InputFileError, ConfigError)
BUDGET = settings(max_examples=40, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])

#: a mutation of a text file: (kind, line index, payload, cut fraction)
mutations = st.tuples(st.sampled_from(["replace", "insert_bytes", "truncate", "field"]),
                      st.integers(0, 40), st.text(max_size=40), st.floats(0.0, 1.0),
                      st.binary(max_size=16))


def _mutate(raw: bytes, m) -> bytes:
    kind, idx, text, cut, junk = m
    lines = raw.split(b"\n")
    i = idx % max(len(lines), 1)
    if kind == "replace":
        lines[i] = text.encode("utf-8", "surrogatepass")
    elif kind == "insert_bytes":
        lines[i] = lines[i][: len(lines[i]) // 2] + junk + lines[i][len(lines[i]) // 2:]
    elif kind == "field":
        sep = b"," if b"," in lines[i] else b" "
        fields = lines[i].split(sep)
        fields[idx % max(len(fields), 1)] = text.encode("utf-8", "surrogatepass")
        lines[i] = sep.join(fields)
    else:
        return raw[: int(len(raw) * cut)]
    return b"\n".join(lines)


def _head(path: Path, nlines: int) -> bytes:
    return b"\n".join(path.read_bytes().split(b"\n")[:nlines]) + b"\n"


def _check(reader, path):
    try:
        reader(path)
    except OURS:
        pass


TEXT_READERS = {
    "config": (lambda: (REPO / "config" / "config.yaml").read_bytes(), load_config),
    "prsa": (lambda: _head(SHARED / "obs_beijing_prsa" /
                           "PRSA_12sites_2016-12-01_2017-02-28_hourly.csv", 30),
             "aqforecast.observations:read_prsa"),
    "shanghai": (lambda: _head(SHARED / "obs_shanghai_uci5city" /
                               "ShanghaiPM_2013-01-29_2015-12-31_hourly.csv", 30),
                 "aqforecast.observations:read_shanghai_uci"),
    "cnemc": (lambda: _head(SHARED / "obs_cnemc_national_snapshot_2017-04" /
                            "20170411_daily_city_obs.txt", 30),
              "aqforecast.observations:read_cnemc"),
    "station_coords": (lambda: _head(SHARED / "obs_cnemc_station_coords" /
                                     "cnemc_stations_zhejiang_shanghai.csv", 20),
                       "aqforecast.observations:read_station_coords"),
    "point_sources": (lambda: (REPO / "data_sample" / "emissions" /
                               "point_sources.csv").read_bytes(),
                      "aqforecast.emissions.inventory:read_point_sources"),
    "area_sources": (lambda: b'id,sector,wkt,lon,lat,NOx\n'
                             b'poly,industry,"POLYGON ((120.1 30.1, 120.3 30.1, 120.3 30.3, '
                             b'120.1 30.1))",,,10\ncell,transport,,120.2,30.2,5\n',
                     "aqforecast.emissions.inventory:read_area_sources"),
    "generic_csv": (lambda: b"station,time,species,value,units,lon,lat\n"
                            b"S1,2026-07-20T08:00:00+08:00,NO2,10,ppb,120.1,30.2\n"
                            b"S1,2026-07-20T00:00:00Z,CO,1,ppm,120.1,30.2\n"
                            b"S2,2026-07-20T09:00:00+08:00,O3,0.1,mg/m3,,\n",
                    "aqforecast.observations.generic:read_generic_csv"),
    "scaling": (lambda: b"region,sector,pollutant,factor,start,end\n"
                        b"Hangzhou,industry,NOx,0.8,,\n*,power,SO2,0.5,2026-07-20T00,"
                        b"2026-07-21T00\n",
                "aqforecast.emissions.scaling:read_scaling_table"),
}


def _resolve(reader):
    if callable(reader):
        return reader
    import importlib

    mod, name = reader.split(":")
    return getattr(importlib.import_module(mod), name)


@pytest.mark.parametrize("name", sorted(TEXT_READERS))
def test_text_readers_never_raise_foreign_errors(name, tmp_path_factory):
    source, reader = TEXT_READERS[name]
    try:
        raw = source()
    except FileNotFoundError as exc:
        pytest.skip(f"real file not available: {exc.filename}")
    read = _resolve(reader)
    work = tmp_path_factory.mktemp(f"fuzz_{name}")
    suffix = {"config": ".yaml", "cnemc": ".txt"}.get(name, ".csv")

    @BUDGET
    @given(m=mutations, random_file=st.booleans(), noise=st.binary(max_size=200))
    def run(m, random_file, noise):
        path = work / f"in{suffix}"
        path.write_bytes(noise if random_file else _mutate(raw, m))
        _check(read, path)

    run()


def _netcdf_cases(path: Path, var: str):
    """Strategy of mutated copies of a NetCDF file: truncated, random bytes, or one variable's
    values replaced by random floats (NaN, inf, huge, negative included)."""
    size = path.stat().st_size
    values = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([1e30, -1.0, 0.0, np.nan]))
    return st.one_of(
        st.tuples(st.just("truncate"), st.integers(0, size - 1)),
        st.tuples(st.just("bytes"), st.binary(max_size=512)),
        st.tuples(st.just("value"), values),
    )


def _apply_netcdf(case, src: Path, dst: Path, var: str, index):
    kind, arg = case
    if kind == "truncate":
        dst.write_bytes(src.read_bytes()[:arg])
    elif kind == "bytes":
        dst.write_bytes(arg)
    else:
        with xr.open_dataset(src, decode_times=False) as ds:
            ds = ds.load()
        v = ds[var].values.astype(float)
        v[index] = arg
        ds[var] = (ds[var].dims, v, ds[var].attrs)
        ds.to_netcdf(dst)


def test_inventory_reader(tmp_path_factory):
    from aqforecast.emissions.inventory import read_gridded_inventory

    work = tmp_path_factory.mktemp("fuzz_inv")
    src = work / "src.nc"
    data = np.ones((2, 3, 4))
    xr.Dataset({"NOx": (("sector", "lat", "lon"), data, {"units": "Mg year-1"}),
                "SO2": (("sector", "lat", "lon"), data, {"units": "Mg year-1"})},
               coords={"lon": [120.05, 120.15, 120.25, 120.35], "lat": [30.05, 30.15, 30.25],
                       "sector": ["industry", "power"]}).to_netcdf(src)

    @BUDGET
    @given(case=_netcdf_cases(src, "NOx"))
    def run(case):
        dst = work / "in.nc"
        _apply_netcdf(case, src, dst, "NOx", (1, 2, 3))
        _check(read_gridded_inventory, dst)

    run()


def test_boundary_reader(tmp_path_factory):
    from test_boundary_file import HOURS, T0, linear_field, write_file

    from aqforecast.io.boundary_file import BoundaryFile

    work = tmp_path_factory.mktemp("fuzz_bc")
    src = write_file(work / "src.nc", {"O3": ("ppb", linear_field), "CO": ("ppm", lambda *a:
                                                                           0 * a[0] + 0.1)})

    def read(path):
        bf = BoundaryFile(path, ["O3", "CO", "SO4"])
        try:
            bf.check_covers([120.0], [30.0], T0, T0 + np.timedelta64(int(HOURS[-1]), "h"))
            w = bf.weights(np.array([120.0, 120.5]), np.array([30.0, 30.2]))
            bf.sample(T0 + np.timedelta64(3, "h"), w, np.full((3, 2), 100.0), np.ones((3, 2)))
        finally:
            bf.close()

    @BUDGET
    @given(case=_netcdf_cases(src, "O3"))
    def run(case):
        dst = work / "in.nc"
        _apply_netcdf(case, src, dst, "O3", (1, 2, 5, 5))
        _check(read, dst)

    run()


def test_wrfout_reader(tmp_path_factory):
    from aqforecast.io.wrf import REQUIRED_CORE, WrfOutput

    src_orig = SHARED / "met_wrf" / "wrfpython_ci_test_file.nc"
    if not src_orig.exists():
        pytest.skip(f"real file not available: {src_orig}")
    work = tmp_path_factory.mktemp("fuzz_wrf")
    src = work / "src.nc"
    shutil.copy(src_orig, src)

    def read(path):
        with WrfOutput(str(path), required=REQUIRED_CORE) as w:
            w.fields(0)

    @BUDGET
    @given(case=st.one_of(st.tuples(st.just("truncate"),
                                    st.integers(0, src.stat().st_size - 1)),
                          st.tuples(st.just("bytes"), st.binary(max_size=512)),
                          st.tuples(st.just("netcdf4"),
                                    st.sampled_from(["U", "T", "QVAPOR", "PH", "PSFC"]),
                                    st.sampled_from([np.nan, np.inf, 1e30, -1e30, 0.0]))))
    def run(case):
        dst = work / "in.nc"
        if case[0] == "netcdf4":
            import netCDF4

            shutil.copy(src, dst)
            with netCDF4.Dataset(dst, "a") as ds:
                v = ds[case[1]]
                idx = tuple(min(1, n - 1) for n in v.shape)
                v[idx] = case[2]
        else:
            _apply_netcdf(case, src, dst, "U", None)
        _check(read, dst)

    run()
