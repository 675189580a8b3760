"""Maps of source-tag shares and of hot spots (PNG, offline; see :mod:`.maps`).

* :func:`tag_share_maps` -- the forecast-period mean share (%) of the surface concentration of a
  pollutant that each sector (or region) contributes, one map per source. PM2.5 is the sum of
  whichever of PPM25, SO4, NO3, NH4, SNGN, SOA the tags file carries.
* :func:`hotspot_map` -- the period-mean surface field with the hot-spot blocks marked.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .maps import plot_field

log = logging.getLogger(__name__)

__all__ = ["PM25_PARTS", "tag_share_maps", "hotspot_map"]

PM25_PARTS = ("PPM25", "SO4", "NO3", "NH4", "SNGN", "SOA")


def _pollutant(ds: xr.Dataset, pollutant: str) -> xr.DataArray:
    if pollutant in ("PM25", "PM2.5"):
        parts = [ds[v] for v in PM25_PARTS if v in ds]
        if not parts:
            raise KeyError("no PM2.5 components among the tagged species")
        return sum(parts[1:], parts[0])
    return ds[pollutant]


def tag_share_maps(tags: xr.Dataset, lon2d, lat2d, out_dir: str | Path, pollutant: str = "PM25",
                   by: str = "sector", boundaries=(), natural_earth=None,
                   prefix: str = "") -> list[Path]:
    """One PNG per source (sector or region): period-mean share (%) of the surface pollutant."""
    field = _pollutant(tags, pollutant).isel(lev=0).mean("time")  # (tag, y, x)
    key = "tag_sector" if by == "sector" else "tag_region"
    labels = pd.Index(np.asarray(tags[key].values).astype(str))
    total = field.sum("tag")
    out_dir = Path(out_dir)
    paths = []
    for source in pd.unique(labels):
        share = field.isel(tag=np.flatnonzero(labels == source)).sum("tag")
        pct = np.where(total > 0, 100.0 * share / np.where(total > 0, total, 1.0), np.nan)
        p = out_dir / f"{prefix}share_{pollutant.lower()}_{by}_{source}.png"
        paths.append(plot_field(pct, lon2d, lat2d, p, title=f"{pollutant} share from {by} "
                                f"{source}, forecast mean", units="%", cmap="YlOrRd", vmin=0.0,
                                vmax=100.0, boundaries=boundaries, natural_earth=natural_earth))
    return paths


def hotspot_map(conc: xr.Dataset, table: pd.DataFrame, lon2d, lat2d, path: str | Path,
                pollutant: str = "PM25", boundaries=(), natural_earth=None) -> Path:
    """The period-mean surface pollutant with the hot-spot block centres marked and ranked."""
    field = _pollutant(conc, pollutant).isel(lev=0).mean("time").values
    stations = pd.DataFrame({"lon": table["lon"].values, "lat": table["lat"].values,
                             "name": [f"#{r}" for r in table["rank"]]})
    return plot_field(field, lon2d, lat2d, path, title=f"{pollutant} forecast mean and hot spots",
                      units=str(conc[PM25_PARTS[0]].attrs.get("units", "")) if pollutant in
                      ("PM25", "PM2.5") else str(conc[pollutant].attrs.get("units", "")),
                      cmap="magma_r", stations=stations, boundaries=boundaries,
                      natural_earth=natural_earth)
