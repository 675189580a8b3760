"""Conservative (area-overlap) regridding from a regular lon/lat grid to a Lambert model grid.

Method. Every inventory cell (a lon/lat rectangle) is projected into the model's Lambert plane as a
polygon whose edges are densified (``densify`` points per edge, shared between neighbours so the
projected cells tile the plane without gaps or overlaps). Model cells are exact squares in that
plane. With ``A_i`` the projected area of source cell i and ``A_ij`` its overlap with model cell
j (shapely 2 vectorised intersections of STRtree candidate pairs), the weights are

    W[j, i] = A_ij / A_i ,      mass_model[j] = sum_i W[j, i] mass_src[i]

so a source cell fully inside the domain has ``sum_j W[j, i] = 1`` to round-off: the total
inside the domain is conserved exactly, and ``1 - sum_j W[j, i]`` is the fraction of cell i that
falls outside (reported, not lost silently). The source mass is assumed uniform in area within
a cell; because the Lambert projection is conformal the map factor varies by < 1e-4 across a
0.1 deg cell, so plane-area and true-area fractions agree to that order.
This is first-order conservative remapping (Jones 1999, MWR 127, 2204; as in ESMF/xESMF
"conservative"). The sparse matrix (scipy.sparse CSR, shape (ny*nx, nlat*nlon)) is computed once
per (grid, source grid) and cached in memory and, optionally, on disk (``.npz``).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import shapely

log = logging.getLogger(__name__)

__all__ = ["overlap_weights", "model_cell_polygons", "lonlat_cell_polygons",
           "ConservativeRegridder", "grid_key"]

_MEMORY_CACHE: dict[str, sp.csr_matrix] = {}


def grid_key(grid) -> tuple:
    """Hashable identity of a LambertGrid's horizontal geometry."""
    return (grid.nx, grid.ny, float(grid.dx), float(grid.truelat1), float(grid.truelat2),
            float(grid.stand_lon), float(grid.ref_lat), float(grid.x0), float(grid.y0))


def model_cell_polygons(grid) -> np.ndarray:
    """Model cells as shapely boxes in the projected plane, flat C order (j*nx + i)."""
    xe, ye = grid.x_edges, grid.y_edges
    x0, y0 = np.meshgrid(xe[:-1], ye[:-1])
    x1, y1 = np.meshgrid(xe[1:], ye[1:])
    return shapely.box(x0.ravel(), y0.ravel(), x1.ravel(), y1.ravel())


def lonlat_cell_polygons(grid, lon_edges, lat_edges, densify: int = 4) -> np.ndarray:
    """Lon/lat cells projected to ``grid``'s plane, flat C order (jlat*nlon + ilon).

    Each edge carries ``densify`` segments; vertices are shared between neighbouring cells.
    """
    k = max(1, int(densify))
    lon_e = np.asarray(lon_edges, float)
    lat_e = np.asarray(lat_edges, float)
    nlon, nlat = lon_e.size - 1, lat_e.size - 1
    t = np.arange(k) / k
    lon_f = np.concatenate([(lon_e[:-1, None] + np.diff(lon_e)[:, None] * t).ravel(), lon_e[-1:]])
    lat_f = np.concatenate([(lat_e[:-1, None] + np.diff(lat_e)[:, None] * t).ravel(), lat_e[-1:]])
    lo, la = np.meshgrid(lon_f, lat_f)
    X, Y = grid.to_xy(lo, la)
    # ring of fine-mesh (row, col) offsets around one cell, counter-clockwise, closed
    r = np.arange(k + 1)
    ring_j = np.concatenate([np.zeros(k), r[:-1], np.full(k, k), r[::-1][:-1], [0]]).astype(int)
    ring_i = np.concatenate([r[:-1], np.full(k, k), r[::-1][:-1], np.zeros(k), [0]]).astype(int)
    jj = (np.arange(nlat) * k)[:, None, None] + ring_j[None, None, :]
    ii = (np.arange(nlon) * k)[None, :, None] + ring_i[None, None, :]
    jj, ii = np.broadcast_arrays(jj, ii)
    coords = np.stack([X[jj, ii], Y[jj, ii]], axis=-1).reshape(nlat * nlon, ring_j.size, 2)
    return shapely.polygons(coords)


def overlap_weights(src: np.ndarray, dst: np.ndarray, normalise_by: str = "src") -> sp.csr_matrix:
    """Sparse ``W[j, i] = area(src_i & dst_j) / area(src_i)`` (or ``/ area(dst_j)``).

    ``src`` and ``dst`` are arrays of shapely polygons in the same plane. Shape (ndst, nsrc).
    """
    src = np.asarray(src, dtype=object)
    dst = np.asarray(dst, dtype=object)
    tree = shapely.STRtree(dst)
    isrc, jdst = tree.query(src, predicate="intersects")
    if isrc.size:
        a = shapely.area(shapely.intersection(src[isrc], dst[jdst]))
    else:
        a = np.zeros(0)
    keep = a > 0
    isrc, jdst, a = isrc[keep], jdst[keep], a[keep]
    denom = shapely.area(src)[isrc] if normalise_by == "src" else shapely.area(dst)[jdst]
    return sp.csr_matrix((a / denom, (jdst, isrc)), shape=(dst.size, src.size))


class ConservativeRegridder:
    """Area-conservative regridding of lon/lat cell masses onto a Lambert model grid.

    Parameters
    ----------
    grid: :class:`aqforecast.grid.LambertGrid` (target).
    lon_edges, lat_edges: source cell edges, degrees, increasing.
    densify: points per source-cell edge in the projected polygons.
    cache_dir: optional folder for the weights (``regrid_<hash>.npz``).

    ``weights`` is CSR (ny*nx, nlat*nlon). :meth:`__call__` maps masses ``(..., nlat, nlon)`` to
    ``(..., ny, nx)`` (same units: mass per cell).
    """

    def __init__(self, grid, lon_edges, lat_edges, densify: int = 4,
                 cache_dir: str | Path | None = None):
        self.grid = grid
        self.lon_edges = np.asarray(lon_edges, float)
        self.lat_edges = np.asarray(lat_edges, float)
        self.shape_src = (self.lat_edges.size - 1, self.lon_edges.size - 1)
        h = hashlib.sha1(repr((grid_key(grid), densify)).encode())
        h.update(self.lon_edges.tobytes())
        h.update(self.lat_edges.tobytes())
        key = h.hexdigest()[:20]
        w = _MEMORY_CACHE.get(key)
        path = Path(cache_dir) / f"regrid_{key}.npz" if cache_dir else None
        if w is None and path is not None and path.exists():
            w = sp.load_npz(path).tocsr()
            log.debug("regrid weights loaded from %s", path)
        if w is None:
            w = self._compute(densify)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                sp.save_npz(path, w)
        _MEMORY_CACHE[key] = w
        self.weights = w
        #: fraction of each source cell's area inside the model domain, (nlat, nlon)
        self.fraction_inside = np.asarray(w.sum(axis=0)).reshape(self.shape_src)

    def _compute(self, densify: int) -> sp.csr_matrix:
        g = self.grid
        # only source cells whose lon/lat box can touch the domain (with a generous margin)
        lo0, lo1, la0, la1 = g.extent_lonlat
        m = 2.0 * max(np.diff(self.lon_edges).max(), np.diff(self.lat_edges).max())
        il = np.flatnonzero((self.lon_edges[1:] > lo0 - m) & (self.lon_edges[:-1] < lo1 + m))
        jl = np.flatnonzero((self.lat_edges[1:] > la0 - m) & (self.lat_edges[:-1] < la1 + m))
        nsrc = self.shape_src[0] * self.shape_src[1]
        if il.size == 0 or jl.size == 0:
            return sp.csr_matrix((g.nx * g.ny, nsrc))
        sub = lonlat_cell_polygons(g, self.lon_edges[il[0]:il[-1] + 2],
                                   self.lat_edges[jl[0]:jl[-1] + 2], densify)
        w_sub = overlap_weights(sub, model_cell_polygons(g)).tocoo()
        # map sub-block column index back to the full source grid
        sj, si = np.divmod(w_sub.col, il.size)
        col = (sj + jl[0]) * self.shape_src[1] + (si + il[0])
        return sp.csr_matrix((w_sub.data, (w_sub.row, col)), shape=(g.nx * g.ny, nsrc))

    def __call__(self, mass: np.ndarray) -> np.ndarray:
        """Regrid masses ``(..., nlat, nlon)`` -> ``(..., ny, nx)`` (mass per cell)."""
        a = np.asarray(mass, dtype=float)
        if a.shape[-2:] != self.shape_src:
            raise ValueError(f"source field has shape {a.shape}, expected (..., "
                             f"{self.shape_src[0]}, {self.shape_src[1]})")
        lead = a.shape[:-2]
        flat = a.reshape(-1, self.shape_src[0] * self.shape_src[1])
        out = (self.weights @ flat.T).T
        return np.ascontiguousarray(out).reshape(lead + (self.grid.ny, self.grid.nx))

    def outside_fraction(self, mass: np.ndarray) -> float:
        """Fraction of the total of ``mass`` (..., nlat, nlon) that falls outside the domain."""
        a = np.asarray(mass, dtype=float)
        tot = a.sum()
        if tot == 0:
            return 0.0
        return float(1.0 - (a * self.fraction_inside).sum() / tot)
