"""Forecast output: time series of gridded fields written as parts, assembled atomically.

A long run cannot rewrite one NetCDF file every hour, and must never leave a half-written
product. :class:`FieldSeriesWriter` therefore buffers snapshots in memory, flushes them to
numbered part files (``DIR/.parts/<name>/part_<hours>.nc``, each written atomically) whenever the
run writes a restart, and assembles the final ``DIR/<name>.nc`` (atomically) at the end. A resumed
run drops the parts after its restart time and carries on, so resume == straight run.

Layout of the assembled files (the forecast contract):
``conc_<domain>.nc``: one variable per species, dims (time, lev, y, x);
``tags_<domain>.nc``: same names, dims (tag, time, lev, y, x), coordinates ``tag_region`` and
``tag_sector`` on ``tag``. Both carry the CF sigma coordinate of :mod:`.netcdf` (``lev``,
``lev_interface``, ``ptop``) and, when the snapshots give it, ``ps`` (time, y, x): the dry hydrostatic
surface pressure that turns ``lev`` into pressure.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..grid import LambertGrid
from .netcdf import (global_attrs, grid_dataset, species_attrs, surface_pressure_variable,
                     write_dataset)

log = logging.getLogger(__name__)

__all__ = ["FieldSeriesWriter"]


def _hours_tag(t: np.datetime64, start: np.datetime64) -> str:
    return f"{int((t - start) / np.timedelta64(1, 'h')):05d}"


class FieldSeriesWriter:
    """Collect snapshots of several fields on one grid; write parts; assemble at the end.

    Parameters
    ----------
    out_dir: output directory.
    name: file stem (``conc_d01``).
    grid: the domain's grid (for coordinates and the CF grid mapping).
    variables: names of the fields (species); each snapshot gives ``(nlev, ny, nx)`` arrays, or
        ``(ntag, nlev, ny, nx)`` when ``tags`` is given.
    levels: model level indices written (``lev`` coordinate is their eta).
    start: cycle start (``forecast_reference_time``).
    units: per-variable output units (default: the species registry's output units).
    tags: optional ``(regions, sectors)`` sequences labelling the tag axis.
    dtype: stored float type (float32 keeps products small).
    attrs: extra global attributes (e.g. ``start_type = "warm"``).
    """

    def __init__(self, out_dir: str | Path, name: str, grid: LambertGrid,
                 variables: Sequence[str], levels: Sequence[int], start: np.datetime64,
                 units: Mapping[str, str] | None = None,
                 tags: tuple[Sequence[str], Sequence[str]] | None = None,
                 dtype=np.float32, attrs: Mapping | None = None, compression_level: int = 4):
        self.out_dir = Path(out_dir)
        self.name = name
        self.grid = grid
        self.variables = list(variables)
        self.levels = list(levels)
        self.start = np.datetime64(start, "s")
        self.units = dict(units or {})
        self.tags = tags
        self.dtype = np.dtype(dtype)
        self.attrs = dict(attrs or {})
        self.compression_level = compression_level
        self.parts_dir = self.out_dir / ".parts" / name
        self._times: list[np.datetime64] = []
        self._data: dict[str, list[np.ndarray]] = {v: [] for v in self.variables}
        self._ps: list[np.ndarray | None] = []

    @property
    def path(self) -> Path:
        return self.out_dir / f"{self.name}.nc"

    def add(self, time: np.datetime64, fields: Mapping[str, np.ndarray],
            surface_pressure: np.ndarray | None = None) -> None:
        """Buffer one snapshot: ``fields[v]`` is (nlev, ny, nx) (or (ntag, nlev, ny, nx));
        ``surface_pressure``: (ny, nx) dry hydrostatic surface pressure, Pa (the ``ps`` of the
        sigma coordinate; files whose snapshots lack it carry the scalar reference)."""
        self._times.append(np.datetime64(time, "s"))
        for v in self.variables:
            self._data[v].append(np.asarray(fields[v], dtype=self.dtype))
        self._ps.append(None if surface_pressure is None else
                        np.asarray(surface_pressure, dtype=self.dtype))

    def _dataset(self, times, data) -> xr.Dataset:
        ds = grid_dataset(self.grid, with_metrics=False)
        if "lev" in ds.coords:
            ds = ds.isel(lev=self.levels)
        ds = ds.assign_coords(
            time=("time", np.array(times, dtype="datetime64[ns]"),
                  {"standard_name": "time", "long_name": "valid time", "axis": "T"}),
            forecast_reference_time=((), np.datetime64(self.start, "ns"),
                                     {"standard_name": "forecast_reference_time"}))
        dims = ("time", "lev", "y", "x")
        if self.tags is not None:
            regions, sectors = self.tags
            dims = ("tag",) + dims
            ds = ds.assign_coords(
                tag=("tag", np.arange(len(regions)), {"long_name": "source tag index"}),
                tag_region=("tag", np.asarray(regions, dtype=str),
                            {"long_name": "source region of the tag"}),
                tag_sector=("tag", np.asarray(sectors, dtype=str),
                            {"long_name": "emission sector of the tag"}))
        for v in self.variables:
            arr = np.stack(data[v], axis=1 if self.tags is not None else 0)
            attrs = species_attrs(v, self.units.get(v))
            if self.tags is not None:
                attrs["long_name"] = f"contribution of each source tag to {attrs['long_name']}"
                attrs.pop("standard_name", None)
            ds[v] = (dims, arr, attrs)
        ps = self._ps if len(self._ps) == len(times) else []
        if "lev" in ds.dims and ps and all(p is not None for p in ps):
            ds["ps"] = surface_pressure_variable(np.stack(ps), ("time", "y", "x"))
        ds.attrs.update(global_attrs(title=f"aqforecast {self.name}", domain=self.grid.name,
                                     **self.attrs))
        return ds

    def flush(self) -> Path | None:
        """Write the buffered snapshots to a new part file (atomic); return its path."""
        if not self._times:
            return None
        part = self.parts_dir / f"part_{_hours_tag(self._times[0], self.start)}.nc"
        write_dataset(self._dataset(self._times, self._data), part, compression_level=1)
        self._times = []
        self._data = {v: [] for v in self.variables}
        self._ps = []
        return part

    def discard_after(self, time: np.datetime64) -> None:
        """Drop buffered snapshots and part files with times after ``time`` (for --resume)."""
        time = np.datetime64(time, "s")
        keep = [i for i, t in enumerate(self._times) if t <= time]
        self._times = [self._times[i] for i in keep]
        self._data = {v: [a[i] for i in keep] for v, a in self._data.items()}
        self._ps = [self._ps[i] for i in keep]
        if not self.parts_dir.exists():
            return
        for part in sorted(self.parts_dir.glob("part_*.nc")):
            with xr.open_dataset(part) as ds:
                t0 = ds["time"].values[0]
            if t0 > np.datetime64(time, "ns"):
                part.unlink()

    def finalize(self) -> Path:
        """Assemble all parts into ``<name>.nc`` (atomic) and remove the parts."""
        self.flush()
        parts = sorted(self.parts_dir.glob("part_*.nc"))
        if not parts:
            raise RuntimeError(f"{self.name}: no output was written")
        datasets = [xr.open_dataset(p) for p in parts]
        try:
            ds = xr.concat(datasets, dim="time", data_vars="minimal", coords="minimal",
                           compat="override", join="override")
            ds = ds.load()
        finally:
            for d in datasets:
                d.close()
        times = pd.DatetimeIndex(ds["time"].values)
        if times.has_duplicates or not times.is_monotonic_increasing:
            raise RuntimeError(f"{self.name}: output parts overlap or are out of order")
        ds.attrs["history"] = global_attrs("")["history"]
        write_dataset(ds, self.path, compression_level=self.compression_level)
        shutil.rmtree(self.parts_dir)
        try:
            (self.out_dir / ".parts").rmdir()
        except OSError:
            pass
        log.info("wrote %s (%d times)", self.path, len(times))
        return self.path
