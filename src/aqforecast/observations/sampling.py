"""The one station sampler: gridded fields at station points (observation operators use it,
verification pairs forecasts with observations through it, the forward model samples with it).

Fields on 2-D (ny, nx) longitude/latitude arrays of cell centres (any curvilinear grid; plain
numpy, no dependency on the grid module) are sampled at points either at the nearest cell centre
(great-circle distance, via a k-d tree on unit vectors) or by bilinear interpolation in the cell
quad that contains the point (the quad's bilinear map inverted by Newton iteration on a local
tangent plane). Points outside the grid get NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["StationSampler", "sample_field", "EARTH_RADIUS_KM"]

EARTH_RADIUS_KM = 6371.0


def _xyz(lon, lat):
    lo, la = np.deg2rad(lon), np.deg2rad(lat)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


@dataclass
class StationSampler:
    """Precomputed sampling of (..., ny, nx) fields at station points.

    Build once with :meth:`build`, then call :meth:`__call__` on any number of fields.
    ``j, i``: nearest cell; ``dist_km``: distance to it; ``inside``: point within the grid;
    ``j0, i0, fy, fx``: lower-left corner of the containing quad and fractional position in it.
    """

    method: str
    j: np.ndarray
    i: np.ndarray
    dist_km: np.ndarray
    inside: np.ndarray
    j0: np.ndarray
    i0: np.ndarray
    fy: np.ndarray
    fx: np.ndarray

    @classmethod
    def build(cls, lon2d, lat2d, lon_pts, lat_pts, method: str = "bilinear") -> "StationSampler":
        """Locate station points on a grid of cell-centre coordinates (degrees)."""
        if method not in ("nearest", "bilinear"):
            raise ValueError(f"method must be 'nearest' or 'bilinear', got {method!r}")
        lon2d = np.asarray(lon2d, float)
        lat2d = np.asarray(lat2d, float)
        if lon2d.ndim != 2 or lon2d.shape != lat2d.shape:
            raise ValueError(f"lon2d/lat2d must be 2-D of one shape, got {lon2d.shape}, "
                             f"{lat2d.shape}")
        ny, nx = lon2d.shape
        if ny < 2 or nx < 2:
            raise ValueError("the grid needs at least 2 x 2 cells")
        lon_pts = np.atleast_1d(np.asarray(lon_pts, float))
        lat_pts = np.atleast_1d(np.asarray(lat_pts, float))
        tree = cKDTree(_xyz(lon2d, lat2d).reshape(-1, 3))
        chord, flat = tree.query(_xyz(lon_pts, lat_pts))
        j, i = np.unravel_index(flat, (ny, nx))
        dist = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0, 1))
        n = lon_pts.size
        j0 = np.zeros(n, int)
        i0 = np.zeros(n, int)
        fy = np.full(n, np.nan)
        fx = np.full(n, np.nan)
        inside = np.zeros(n, bool)
        for k in range(n):
            for dj in (-1, 0):
                for di in (-1, 0):
                    jj, ii = j[k] + dj, i[k] + di
                    if not (0 <= jj < ny - 1 and 0 <= ii < nx - 1):
                        continue
                    u, v = _invert_quad(lon2d[jj:jj + 2, ii:ii + 2], lat2d[jj:jj + 2, ii:ii + 2],
                                        lon_pts[k], lat_pts[k])
                    if -1e-9 <= u <= 1 + 1e-9 and -1e-9 <= v <= 1 + 1e-9:
                        j0[k], i0[k], fx[k], fy[k] = jj, ii, min(max(u, 0), 1), min(max(v, 0), 1)
                        inside[k] = True
                        break
                if inside[k]:
                    break
        return cls(method, j, i, dist, inside, j0, i0, fy, fx)

    def __call__(self, field) -> np.ndarray:
        """Sample ``field`` (..., ny, nx) at the stations -> (..., n_stations); NaN outside."""
        f = np.asarray(field, float)
        if self.method == "nearest":
            out = f[..., self.j, self.i]
        else:
            j0, i0, fx, fy = self.j0, self.i0, np.nan_to_num(self.fx), np.nan_to_num(self.fy)
            out = ((1 - fx) * (1 - fy) * f[..., j0, i0] + fx * (1 - fy) * f[..., j0, i0 + 1]
                   + (1 - fx) * fy * f[..., j0 + 1, i0] + fx * fy * f[..., j0 + 1, i0 + 1])
        return np.where(self.inside, out, np.nan)


    def matrix(self, shape):
        """The sampling as a sparse matrix H (n_stations, ny*nx) on C-ordered fields of
        ``shape`` (ny, nx): ``H @ field.ravel()`` equals ``self(field)`` where the station is
        inside the grid; rows of stations outside are empty (the linear observation operator of
        the assimilation, the same weights as the sampler)."""
        from scipy import sparse

        ny, nx = shape
        n = self.j.size
        rows, cols, vals = [], [], []
        for k in np.flatnonzero(self.inside):
            if self.method == "nearest":
                rows.append(k)
                cols.append(self.j[k] * nx + self.i[k])
                vals.append(1.0)
                continue
            j0, i0, fx, fy = self.j0[k], self.i0[k], self.fx[k], self.fy[k]
            for dj, di, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                              (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
                rows.append(k)
                cols.append((j0 + dj) * nx + i0 + di)
                vals.append(w)
        return sparse.csr_matrix((vals, (rows, cols)), shape=(n, ny * nx))


def _invert_quad(qlon, qlat, plon, plat, iters: int = 20):
    """Fractional (u along x, v along y) position of a point in a 2 x 2 quad of centres."""
    lat0 = np.deg2rad(qlat.mean())
    x = (qlon - qlon.mean()) * np.cos(lat0)
    y = qlat - qlat.mean()
    px, py = (plon - qlon.mean()) * np.cos(lat0), plat - qlat.mean()
    u = v = 0.5
    for _ in range(iters):
        fx = (1 - u) * (1 - v) * x[0, 0] + u * (1 - v) * x[0, 1] + (1 - u) * v * x[1, 0] \
            + u * v * x[1, 1] - px
        fy = (1 - u) * (1 - v) * y[0, 0] + u * (1 - v) * y[0, 1] + (1 - u) * v * y[1, 0] \
            + u * v * y[1, 1] - py
        dxu = (1 - v) * (x[0, 1] - x[0, 0]) + v * (x[1, 1] - x[1, 0])
        dxv = (1 - u) * (x[1, 0] - x[0, 0]) + u * (x[1, 1] - x[0, 1])
        dyu = (1 - v) * (y[0, 1] - y[0, 0]) + v * (y[1, 1] - y[1, 0])
        dyv = (1 - u) * (y[1, 0] - y[0, 0]) + u * (y[1, 1] - y[0, 1])
        det = dxu * dyv - dxv * dyu
        if det == 0:
            return np.nan, np.nan
        du = (fx * dyv - fy * dxv) / det
        dv = (fy * dxu - fx * dyu) / det
        u, v = u - du, v - dv
        if abs(du) + abs(dv) < 1e-12:
            break
    return u, v


def sample_field(field, lon2d, lat2d, lon_pts, lat_pts, method: str = "bilinear") -> np.ndarray:
    """One-shot :class:`StationSampler`: sample (..., ny, nx) ``field`` at points -> (..., n)."""
    return StationSampler.build(lon2d, lat2d, lon_pts, lat_pts, method)(field)
