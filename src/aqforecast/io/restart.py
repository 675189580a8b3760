"""Restart files: the complete model state at one time, bit-for-bit, written atomically.

A restart holds every array a domain needs to continue (mixing ratios, air mass, tags, budget
accumulators, the advection order flag...) as NetCDF variables with generic dims, plus the valid
time and the cycle's metadata as attributes. Reading one back and continuing gives the same
result as never having stopped (tested by killing a forecast subprocess).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .netcdf import InputFileError, atomic_path, global_attrs

__all__ = ["write_restart", "read_restart"]


def write_restart(path: str | Path, time: np.datetime64, arrays: Mapping[str, np.ndarray],
                  attrs: Mapping | None = None) -> Path:
    """Write ``arrays`` (exact dtype and shape) and ``time`` to ``path`` atomically."""
    path = Path(path)
    ds = xr.Dataset()
    for name, a in arrays.items():
        a = np.asarray(a)
        ds[name] = ([f"{name}_d{i}" for i in range(a.ndim)], a,
                    {"long_name": f"model state array {name} (restart, model units)"})
    ds.attrs.update(global_attrs("aqforecast restart"))
    ds.attrs["valid_time"] = str(np.datetime64(time, "s"))
    for k, v in (attrs or {}).items():
        ds.attrs[k] = v if not isinstance(v, bool) else int(v)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
    return path


def read_restart(path: str | Path, expected: Mapping[str, tuple] | None = None
                 ) -> tuple[np.datetime64, dict[str, np.ndarray], dict]:
    """Read a restart: (valid time, arrays, attributes). ``expected`` maps names to shapes
    that must match (a restart from another configuration is rejected with a clear error)."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: restart file does not exist")
    with xr.open_dataset(path) as ds:
        arrays = {k: ds[k].values.copy() for k in ds.data_vars}
        attrs = dict(ds.attrs)
    for name, shape in (expected or {}).items():
        if name not in arrays:
            raise InputFileError(f"{path}: restart lacks variable {name!r}")
        if tuple(arrays[name].shape) != tuple(shape):
            raise InputFileError(f"{path}: restart variable {name!r} has shape "
                                 f"{arrays[name].shape}, this run needs {tuple(shape)}")
    return np.datetime64(attrs["valid_time"], "s"), arrays, attrs
