"""Lateral/top boundary and cold-start initial conditions from background profiles.

When no boundary file (or parent domain) provides values, the outer domain's inflow boundaries
and a cold start use vertical profiles of regional background air in eastern China (summer).
The surface values are round numbers typical of regional background stations in the Yangtze
River Delta (e.g. Lin'an regional GAW station: O3 ~ 35-45 ppb, CO ~ 200-300 ppb, SO2 ~ 2-5 ppb,
NO2 ~ 5 ppb, PM2.5 ~ 25-35 ug m-3 in summer; Xu et al. 2008, ACP 8:2595, and CNEMC rural
sites) [D: values rounded; change them in one place, here]. Gases fall off (or for O3 rise)
with height with the scale heights below; aerosols decay with a 1.5 km scale height above the
boundary layer.

Values are returned in model units: gases mol mol-1, aerosols kg kg-1 (via the dry-air density
at standard conditions of the layer, so the profile is consistent in ug m-3 near the surface).

With a boundary-condition file (``inputs.boundary.kind: file``, :mod:`aqforecast.io.boundary_file`)
:class:`FileBoundary` gives the outer domain's lateral inflow, every domain's lid inflow and the
cold-start fields from the file instead; species the file lacks keep the profiles.
"""

from __future__ import annotations

import numpy as np

from .. import species as species_registry

__all__ = ["BACKGROUND", "background_profile", "FileBoundary"]

#: species -> (surface value, value aloft (at 8 km), e-folding height of the transition, m)
#: gases in ppb, aerosols in ug m-3 at the surface; aloft values in the same units.
BACKGROUND: dict[str, tuple[float, float, float]] = {
    "O3": (40.0, 65.0, 3000.0),
    "NO": (0.3, 0.02, 1000.0),
    "NO2": (3.0, 0.05, 1000.0),
    "CO": (200.0, 90.0, 2500.0),
    "SO2": (2.0, 0.1, 1500.0),
    "NH3": (3.0, 0.05, 1000.0),
    "HNO3": (0.5, 0.1, 2000.0),
    "H2O2": (1.0, 0.5, 3000.0),
    "ROC": (20.0, 2.0, 1500.0),
    "ISOP": (0.1, 0.0, 500.0),
    "SO4": (6.0, 0.3, 1500.0),
    "NO3": (3.0, 0.1, 1500.0),
    "NH4": (3.0, 0.1, 1500.0),
    "SNGN": (0.0, 0.0, 1500.0),
    "SOA": (2.0, 0.2, 1500.0),
    "PPM25": (12.0, 0.5, 1500.0),
    "PPM10": (15.0, 0.5, 1500.0),
}


def background_profile(name: str, z: np.ndarray, air_density: np.ndarray) -> np.ndarray:
    """Background mixing ratio of ``name`` at heights ``z`` (m above ground), model units.

    ``air_density`` (kg m-3) converts aerosol ug m-3 to kg kg-1. Unknown species are zero.
    """
    z = np.asarray(z, dtype=float)
    if name not in BACKGROUND:
        return np.zeros_like(z)
    surface, aloft, h = BACKGROUND[name]
    w = np.exp(-np.maximum(z, 0.0) / h)
    value = aloft + (surface - aloft) * w
    sp = species_registry.get(name)
    if sp.phase == "gas":
        return value * 1e-9
    # aerosol: ug m-3 referenced to the surface density, mass mixing ratio conserved aloft
    rho0 = 1.2
    return value * 1e-9 / rho0 * np.ones_like(np.asarray(air_density, dtype=float))


class FileBoundary:
    """Boundary and initial values of one :class:`~aqforecast.transport.model.DomainModel` from a
    :class:`~aqforecast.io.boundary_file.BoundaryFile`.

    ``lateral(model, s)`` -> (dict face -> (nspec, nl, n_across, halo-strip) inflow values in the
    level layout, None): the ghost cells beyond the four lateral faces (the same strips as
    :class:`~aqforecast.transport.nesting.NestBoundary`), at the file's values for the model's
    time and the heights of the nearest interior column (layer centres, from the met state
    ``s``); ``lid(model, s)`` -> (nspec, 1, nyl, nxl) above the model top of the local columns;
    ``initial(model, s)`` -> (nspec, nz, nyl, nxl) at every local cell. Construction checks that
    the file covers the domain with its ghost cells.
    """

    def __init__(self, bfile, model):
        self.file = bfile
        grid = model.grid
        h = model.halo
        ny, nx = grid.ny, grid.nx
        self.halo = h
        inner_j, inner_i = np.arange(ny), np.arange(nx)
        lo, hi_x, hi_y = np.arange(-h, 0), np.arange(nx, nx + h), np.arange(ny, ny + h)
        # face -> (rows j, columns i) of its ghost strip
        self.strips = {"west": (inner_j, lo), "east": (inner_j, hi_x),
                       "south": (lo, inner_i), "north": (hi_y, inner_i)}
        self._lateral_w = {}
        self._nearest = {}  # face -> (rows, columns) of each ghost cell's nearest interior column
        for face, (jj, ii) in self.strips.items():
            y = grid.y0 + (jj + 0.5) * grid.dx
            x = grid.x0 + (ii + 0.5) * grid.dx
            lon, lat = grid.to_lonlat(*np.meshgrid(x, y))
            self._lateral_w[face] = bfile.weights(lon, lat)
            self._nearest[face] = (np.clip(jj, 0, ny - 1)[:, None],
                                   np.clip(ii, 0, nx - 1)[None, :])
        lon, lat = (model.layout.local(v) for v in grid.lonlat)
        self._local_w = bfile.weights(lon, lat)
        self._local_shape = lon.shape
        self._names = [n for n in model.species if n in bfile.variables]
        self._rows = np.array([model.species.index(n) for n in self._names], dtype=np.int64)

    def _fill(self, out, values):
        for r, n in zip(self._rows, self._names):
            out[r] = values[n]

    def lateral(self, model, s):
        levels = model.layout.levels
        prof = model.background_profiles(s)[:, levels]  # (nspec, nl) where the file has no species
        vals = {}
        for face, (jj, ii) in self.strips.items():
            # heights and density of the nearest interior column of each ghost cell
            cj, ci = self._nearest[face]
            z = s.z_centre[:, cj, ci][levels].reshape(len(levels), -1)
            rho = s.rho_dry[:, cj, ci][levels].reshape(len(levels), -1)
            shape = (len(levels), jj.size, ii.size)
            out = np.broadcast_to(prof[:, :, None, None], (model.nspec,) + shape).copy()
            got = self.file.sample(model.time, self._lateral_w[face], z, rho, key=(id(self), face))
            self._fill(out, {n: v.reshape(shape) for n, v in got.items()})
            vals[face] = out
        return vals, None

    def __call__(self, model, s):
        return self.lateral(model, s)

    def _local(self, model, s, levels, key):
        loc = model.layout.local
        z = loc(s.z_centre)[levels].reshape(len(levels), -1)
        rho = loc(s.rho_dry)[levels].reshape(len(levels), -1)
        got = self.file.sample(model.time, self._local_w, z, rho, key=(id(self), key))
        return {n: v.reshape((len(levels),) + self._local_shape) for n, v in got.items()}

    def lid(self, model, s):
        nz = model.shape[0]
        out = np.broadcast_to(model.background_profiles(s)[:, -1][:, None, None, None],
                              (model.nspec, 1) + self._local_shape).copy()
        self._fill(out, self._local(model, s, [nz - 1], "lid"))
        return out

    def initial(self, model, s):
        loc = model.layout.local
        nz = model.shape[0]
        out = np.empty((model.nspec, nz) + self._local_shape)
        z, rho = loc(s.z_centre), loc(s.rho_dry)
        for i, name in enumerate(model.species):
            out[i] = background_profile(name, z, rho)
        self._fill(out, self._local(model, s, list(range(nz)), "initial"))
        return out
