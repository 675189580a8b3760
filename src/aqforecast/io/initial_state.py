"""Initial-state files: the model state at one time as CF NetCDF (the ``--initial`` contract).

``DIR/initial_<domain>.nc`` holds one variable per model species with dims ``(lev, y, x)`` on the
domain's grid (the coordinates and ``crs`` of :func:`~aqforecast.io.netcdf.grid_dataset`), and a
scalar ``time`` (CF, the valid time). Units as in the products: gases ``ppb`` (mole fraction),
aerosols ``ug m-3``; the reader also accepts the units of
:data:`~aqforecast.io.boundary_file.GAS_UNITS` / ``AEROSOL_UNITS``. Assimilation writes these
files; every restart directory holds them, so any restart is a valid initial state.

The forecast writes them in float64, so reading one back reproduces the model's mixing ratios to
round-off (a product of two conversion factors, ~1e-16 relative).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .. import species as species_registry
from .boundary_file import AEROSOL_UNITS, GAS_UNITS
from .netcdf import (InputFileError, global_attrs, grid_dataset, species_attrs,
                     surface_pressure_variable, write_dataset)

__all__ = ["InitialState", "read_initial_state", "write_initial_state", "initial_state_path"]

_DIMS = ("lev", "y", "x")


def initial_state_path(directory: str | Path, domain: str) -> Path:
    """``directory/initial_<domain>.nc``."""
    return Path(directory) / f"initial_{domain}.nc"


def write_initial_state(path: str | Path, grid, time, fields: Mapping[str, np.ndarray],
                        attrs: Mapping | None = None, dtype=np.float64,
                        surface_pressure: np.ndarray | None = None) -> Path:
    """Write ``fields`` (name -> (nz, ny, nx) in ppb for gases, ug m-3 for aerosols) valid at
    ``time`` (datetime64) to ``path`` atomically; return the path. ``surface_pressure``: (ny,
    nx) dry hydrostatic surface pressure, Pa, the ``ps`` of the sigma coordinate ``lev``."""
    ds = grid_dataset(grid, with_metrics=False)
    if surface_pressure is not None and "lev" in ds.dims:
        ds["ps"] = surface_pressure_variable(np.asarray(surface_pressure, dtype=float),
                                             ("y", "x"))
    ds = ds.assign_coords(time=((), np.datetime64(time, "ns"),
                                {"standard_name": "time", "long_name": "valid time",
                                 "axis": "T"}))
    for name, values in fields.items():
        a = np.asarray(values, dtype=dtype)
        if a.shape != (ds.sizes["lev"], grid.ny, grid.nx):
            raise ValueError(f"{path}: {name} has shape {a.shape}, the grid needs "
                             f"{(ds.sizes['lev'], grid.ny, grid.nx)}")
        at = species_attrs(name)
        at.update({"grid_mapping": "crs"})
        ds[name] = (_DIMS, a, at)
    ds.attrs.update(global_attrs(title=f"aqforecast initial state {grid.name}",
                                 domain=grid.name, **dict(attrs or {})))
    return write_dataset(ds, path, compression_level=1)


@dataclass
class InitialState:
    """An initial-state file read back: ``time`` (datetime64[s]); ``values`` name -> (nz, ny,
    nx) in mol mol-1 (gases), kg kg-1 or kg m-3 (aerosols, see ``per_volume``)."""

    path: Path
    time: np.datetime64
    values: dict
    per_volume: set

    def mixing_ratios(self, species: Sequence[str], air_density) -> np.ndarray:
        """Model-unit state (nspec, nz, ny, nx): gases mol mol-1, aerosols kg kg-1 (per-volume
        values divided by ``air_density``, kg m-3, (nz, ny, nx))."""
        out = np.empty((len(species),) + next(iter(self.values.values())).shape)
        for i, name in enumerate(species):
            v = self.values[name]
            out[i] = v / air_density if name in self.per_volume else v
        return out


def read_initial_state(path: str | Path, species: Sequence[str],
                       shape: tuple[int, int, int]) -> InitialState:
    """Read and check an initial-state file for the model ``species`` on a grid of ``shape``
    (nz, ny, nx). Raises :class:`InputFileError` naming the file and the variable for a missing
    file, a missing species, wrong dims or shape, unknown units, negative or non-finite values,
    or a missing scalar ``time``."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: initial-state file does not exist")
    try:
        ds = xr.open_dataset(path, decode_times=True)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read initial-state file: {exc}") from None
    with ds:
        if "time" not in ds.variables or ds["time"].ndim != 0:
            raise InputFileError(f"{path}: needs a scalar 'time' (the valid time)")
        try:
            time = np.datetime64(ds["time"].values, "s")
        except (TypeError, ValueError):
            raise InputFileError(f"{path}: 'time' is not a CF time") from None
        missing = [n for n in species if n not in ds.data_vars]
        if missing:
            raise InputFileError(f"{path}: initial state lacks the model species "
                                 f"{', '.join(missing)} (every transported species is needed)")
        values, per_volume = {}, set()
        for name in species:
            var = ds[name]
            if tuple(var.dims) != _DIMS or tuple(var.shape) != tuple(shape):
                raise InputFileError(f"{path}: variable {name!r} has dims {tuple(var.dims)} "
                                     f"shape {tuple(var.shape)}, expected {_DIMS} {tuple(shape)}")
            unit = str(var.attrs.get("units", "")).strip()
            if species_registry.get(name).phase == "gas":
                if unit not in GAS_UNITS:
                    raise InputFileError(f"{path}: variable {name!r} (a gas) has units {unit!r}, "
                                         f"expected one of {sorted(GAS_UNITS)}")
                factor = GAS_UNITS[unit]
            else:
                if unit not in AEROSOL_UNITS:
                    raise InputFileError(f"{path}: variable {name!r} (an aerosol) has units "
                                         f"{unit!r}, expected one of {sorted(AEROSOL_UNITS)}")
                factor, pv = AEROSOL_UNITS[unit]
                if pv:
                    per_volume.add(name)
            v = np.asarray(var.values, dtype=np.float64)
            # a model state may hold round-off negatives (~1e-20 of the field); not more
            bad = ~np.isfinite(v) | (v < -1e-9 * np.nanmax(np.abs(v), initial=0.0))
            if bad.any():
                k, j, i = np.argwhere(bad)[0]
                raise InputFileError(f"{path}: variable {name!r} has {int(bad.sum())} negative "
                                     f"(beyond round-off) or non-finite values (first at "
                                     f"lev={k}, y={j}, x={i}: {v[k, j, i]})")
            scale = 1e9 if (species_registry.get(name).phase == "gas" or name in per_volume) \
                else 1.3e9  # output units (kg kg-1 aerosols at <= 1.3 kg m-3 of air)
            msg = species_registry.implausible(name, np.maximum(v, 0.0) * factor * scale,
                                               str(path))
            if msg:
                raise InputFileError(msg)
            values[name] = v * factor
    return InitialState(path, time, values, per_volume)
