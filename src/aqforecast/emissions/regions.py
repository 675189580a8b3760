"""Source regions: GeoJSON polygons rasterised to a model grid as exact cell-area fractions.

``fractions[r, j, i]`` is the share of model cell (j, i)'s area inside region r, from exact
polygon/cell overlaps in the model's Lambert plane (shapely 2, STRtree candidates), not a
centre-point test. The last entry is the remainder region ``outside`` (all areas in no listed
region), so fractions sum to 1 in every cell. Regions must not overlap: where two listed regions
overlap by more than ``overlap_tolerance`` of a cell the build fails; smaller slivers (digitising
noise of shared boundaries) go to the region listed first. This is the fractional region mask of
CMAQ-ISAM (CMAQ User's Guide ch. 11), used for region x sector tags (SCIENCE.md 6.1) and for
region scaling factors (7.3).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

from ..io import InputFileError
from .regrid import model_cell_polygons

log = logging.getLogger(__name__)

__all__ = ["OUTSIDE", "read_geojson", "project_geometry", "RegionMasks", "region_fractions"]

#: Name of the remainder region (no listed region).
OUTSIDE = "outside"


def read_geojson(path: str | Path):
    """A (multi)polygon in lon/lat from a GeoJSON geometry, Feature or FeatureCollection.

    A collection gives the union of its polygon features.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: region GeoJSON file does not exist")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read GeoJSON: {exc}") from None
    kind = obj.get("type") if isinstance(obj, dict) else None
    try:
        if kind == "FeatureCollection":
            geoms = [shape(f["geometry"]) for f in obj.get("features", []) if f.get("geometry")]
            geom = shapely.union_all(geoms) if geoms else None
        elif kind == "Feature":
            geom = shape(obj["geometry"])
        else:
            geom = shape(obj)
    except Exception as exc:  # malformed coordinates raise various errors inside shapely
        raise InputFileError(f"{path}: invalid GeoJSON geometry: {exc}") from None
    if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InputFileError(f"{path}: expected a Polygon or MultiPolygon (type {kind!r}), got "
                             f"{getattr(geom, 'geom_type', 'nothing')}")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return geom


def project_geometry(geom, grid):
    """Transform a lon/lat shapely geometry into ``grid``'s projected plane (m)."""
    def fwd(xy):
        x, y = grid.to_xy(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])
    g = shapely.transform(geom, fwd)
    return g if g.is_valid else shapely.make_valid(g)


@dataclass
class RegionMasks:
    """Region cell-area fractions on one grid.

    ``names``: region names with :data:`OUTSIDE` last; ``fractions``: (nregion+1, ny, nx), each
    cell sums to 1. ``polygons``: the projected region polygons (without the remainder).
    """

    names: tuple[str, ...]
    fractions: np.ndarray
    polygons: tuple = ()

    @property
    def nregion(self) -> int:
        """Number of regions including the remainder."""
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown region {name!r}; regions: {', '.join(self.names)}") from None

    def region_of_points(self, grid, lon, lat) -> np.ndarray:
        """Index of the region containing each point (lon, lat); remainder index if none."""
        x, y = grid.to_xy(np.atleast_1d(lon), np.atleast_1d(lat))
        pts = shapely.points(np.asarray(x), np.asarray(y))
        out = np.full(pts.size, len(self.names) - 1, dtype=np.int64)
        for r, poly in enumerate(self.polygons):
            inside = shapely.contains(poly, pts) | shapely.touches(poly, pts)
            out[(out == len(self.names) - 1) & inside] = r
        return out

    @classmethod
    def none(cls, grid) -> "RegionMasks":
        """Only the remainder region (everything ``outside``)."""
        return cls((OUTSIDE,), np.ones((1, grid.ny, grid.nx)))


def region_fractions(grid, regions, overlap_tolerance: float = 1e-3) -> RegionMasks:
    """Rasterise regions onto ``grid``.

    ``regions``: sequence of (name, geometry-or-GeoJSON-path) with lon/lat geometries.
    Returns :class:`RegionMasks` with fractions (nregion+1, ny, nx) summing to 1 per cell.
    """
    names, polys = [], []
    for name, g in regions:
        if name == OUTSIDE:
            raise ValueError(f"region name {OUTSIDE!r} is reserved for the remainder")
        if name in names:
            raise ValueError(f"region {name!r} listed twice")
        geom = read_geojson(g) if isinstance(g, (str, Path)) else g
        names.append(name)
        polys.append(project_geometry(geom, grid))
    cells = model_cell_polygons(grid)
    cell_area = grid.dx * grid.dx
    tree = shapely.STRtree(cells)
    frac = np.zeros((len(names) + 1, grid.ny * grid.nx))
    taken = None  # union of earlier regions, for sliver resolution
    for r, poly in enumerate(polys):
        idx = tree.query(poly, predicate="intersects")
        if idx.size:
            inter = shapely.intersection(cells[idx], poly)
            a = shapely.area(inter)
            if taken is not None:
                dup = shapely.area(shapely.intersection(inter, taken))
                worst = float(dup.max() / cell_area) if dup.size else 0.0
                if worst > overlap_tolerance:
                    raise ValueError(f"region {names[r]!r} overlaps an earlier region by "
                                     f"{worst:.2%} of a cell; regions must be disjoint")
                a = a - dup
            frac[r, idx] = a / cell_area
        taken = poly if taken is None else shapely.union(taken, poly)
    listed = frac[:-1].sum(axis=0)
    if np.any(listed > 1 + 1e-9):
        raise ValueError(f"region fractions exceed 1 by up to {listed.max() - 1:.3g}")
    frac[-1] = np.clip(1.0 - listed, 0.0, None)
    for r, n in enumerate(names):
        log.debug("region %s: %.1f km2 on grid %s", n, frac[r].sum() * cell_area / 1e6, grid.name)
    return RegionMasks(tuple(names) + (OUTSIDE,), frac.reshape(-1, grid.ny, grid.nx),
                       tuple(polys))
