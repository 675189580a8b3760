"""Model grids: Lambert-conformal horizontal grids (pyproj), vertical levels and one-way nests.

Conventions (DESIGN.md): arrays are ``(lev, y, x)``; ``x`` runs west->east (index ``i``), ``y``
south->north (index ``j``). Projected coordinates are metres on the map plane of a sphere of radius
6 370 000 m, the sphere WRF and WPS use, so our grids line up with WRF output cell for cell.

Map factor (Snyder 1987, USGS PP 1395, eqs. 15-1..15-4; SCIENCE.md 1.2), standard parallels
phi1, phi2 and cone constant n::

    n    = ln(cos phi1 / cos phi2) / ln[tan(pi/4 + phi2/2) / tan(pi/4 + phi1/2)]
    m(p) = (cos phi1 / cos p) * [tan(pi/4 + phi1/2) / tan(pi/4 + p/2)]**n

(with phi1 == phi2 the tangent cone n = sin phi1). True horizontal cell area is ``dx*dy/m**2``.
Grid north is rotated from true north by ``n * (lon - lon0)``; winds are rotated with it
(WRF's COSALPHA/SINALPHA).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from pyproj import CRS, Transformer

from .constants import EARTH_RADIUS

__all__ = [
    "LambertGrid",
    "VerticalGrid",
    "Nest",
    "lambert_cone_constant",
    "lambert_map_factor",
]


def lambert_cone_constant(truelat1: float, truelat2: float) -> float:
    """Cone constant n of the Lambert conformal conic projection (degrees in)."""
    p1, p2 = np.deg2rad(truelat1), np.deg2rad(truelat2)
    if abs(truelat1 - truelat2) < 1e-10:
        return float(np.sin(p1))
    return float(
        np.log(np.cos(p1) / np.cos(p2))
        / np.log(np.tan(np.pi / 4 + p2 / 2) / np.tan(np.pi / 4 + p1 / 2))
    )


def lambert_map_factor(lat, truelat1: float, truelat2: float):
    """Map factor m (dimensionless) of the Lambert conformal projection at latitude ``lat`` (deg).

    Snyder (1987) eq. 15-4 on the sphere; m = 1 on the standard parallels.
    """
    n = lambert_cone_constant(truelat1, truelat2)
    p1 = np.deg2rad(truelat1)
    p = np.deg2rad(np.asarray(lat, dtype=float))
    return (np.cos(p1) / np.cos(p)) * (
        np.tan(np.pi / 4 + p1 / 2) / np.tan(np.pi / 4 + p / 2)
    ) ** n


@dataclass(frozen=True)
class VerticalGrid:
    """Terrain-following dry-hydrostatic-pressure (WRF eta) levels.

    ``eta_interfaces`` run from 1 (surface) down to 0 (model top at ``p_top`` Pa), length nz+1.
    Pressure at an interface: ``p = eta * (p_surface - p_top) + p_top``. Layer heights come from the
    meteorology; :meth:`standard_heights` gives a standard-atmosphere estimate for set-up checks.
    """

    eta_interfaces: tuple[float, ...]
    p_top: float = 10000.0

    def __post_init__(self):
        eta = np.asarray(self.eta_interfaces, dtype=float)
        if eta.ndim != 1 or eta.size < 2:
            raise ValueError("eta_interfaces needs at least 2 values (nz >= 1)")
        if abs(eta[0] - 1.0) > 1e-12 or abs(eta[-1]) > 1e-12:
            raise ValueError(f"eta_interfaces must run from 1.0 to 0.0, got {eta[0]} .. {eta[-1]}")
        if np.any(np.diff(eta) >= 0):
            raise ValueError("eta_interfaces must decrease strictly from surface to top")

    @property
    def nz(self) -> int:
        return len(self.eta_interfaces) - 1

    @property
    def eta_centres(self) -> np.ndarray:
        e = np.asarray(self.eta_interfaces)
        return 0.5 * (e[:-1] + e[1:])

    def pressure_interfaces(self, p_surface: float = 101325.0) -> np.ndarray:
        """Interface pressures, Pa, for a given surface pressure (Pa)."""
        return np.asarray(self.eta_interfaces) * (p_surface - self.p_top) + self.p_top

    def standard_heights(self, p_surface: float = 101325.0) -> np.ndarray:
        """Interface heights above ground, m, in the US standard atmosphere (troposphere)."""
        p = self.pressure_interfaces(p_surface)
        # US Standard Atmosphere 1976 troposphere: T0 = 288.15 K, lapse 6.5 K/km.
        return 288.15 / 0.0065 * (1.0 - (p / p_surface) ** (0.0065 * 287.05 / 9.80665))

    @classmethod
    def stretched(cls, nz: int, p_top: float = 10000.0, first_layer_m: float = 30.0,
                  top_m: float | None = None) -> "VerticalGrid":
        """Levels whose thickness grows geometrically from ``first_layer_m`` at the surface.

        The growth factor is found so that the standard-atmosphere top lies at ``p_top``.
        """
        ztop = top_m if top_m is not None else 288.15 / 0.0065 * (
            1.0 - (p_top / 101325.0) ** (0.0065 * 287.05 / 9.80665))
        if nz * first_layer_m >= ztop:
            raise ValueError(f"{nz} layers of {first_layer_m} m already exceed the top {ztop:.0f} m")
        # solve first * (r**nz - 1)/(r - 1) = ztop for r > 1 by bisection
        lo, hi = 1.0 + 1e-9, 3.0
        for _ in range(200):
            r = 0.5 * (lo + hi)
            s = first_layer_m * (r**nz - 1.0) / (r - 1.0)
            lo, hi = (r, hi) if s < ztop else (lo, r)
        z = np.concatenate([[0.0], np.cumsum(first_layer_m * r ** np.arange(nz))])
        z[-1] = ztop
        p = 101325.0 * (1.0 - 0.0065 * z / 288.15) ** (9.80665 / (0.0065 * 287.05))
        eta = (p - p_top) / (101325.0 - p_top)
        eta[0], eta[-1] = 1.0, 0.0
        return cls(tuple(float(e) for e in eta), p_top)


@dataclass(frozen=True)
class LambertGrid:
    """A Lambert-conformal model grid of ``ny x nx`` square cells of side ``dx`` metres.

    The projection is WRF's (MAP_PROJ = 1): standard parallels ``truelat1``/``truelat2``,
    central meridian ``stand_lon``, origin latitude ``ref_lat`` (only shifts the false northing),
    sphere of radius 6 370 km. The grid is placed by its lower-left corner in projected metres
    (``x0``, ``y0``, the south-west corner of cell (0, 0)).
    """

    name: str
    nx: int
    ny: int
    dx: float
    truelat1: float
    truelat2: float
    stand_lon: float
    ref_lat: float
    x0: float
    y0: float
    vertical: VerticalGrid | None = None
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self):
        if self.nx < 1 or self.ny < 1:
            raise ValueError(f"grid {self.name!r}: nx, ny must be >= 1, got {self.nx}, {self.ny}")
        if not self.dx > 0:
            raise ValueError(f"grid {self.name!r}: dx must be > 0, got {self.dx}")

    # ---------------------------------------------------------------- construction
    @classmethod
    def centred(cls, name: str, nx: int, ny: int, dx: float, centre_lon: float,
                centre_lat: float, truelat1: float, truelat2: float,
                stand_lon: float | None = None, ref_lat: float | None = None,
                vertical: VerticalGrid | None = None) -> "LambertGrid":
        """A grid whose centre is at (centre_lon, centre_lat), as WRF's CEN_LON/CEN_LAT."""
        stand_lon = centre_lon if stand_lon is None else stand_lon
        ref_lat = centre_lat if ref_lat is None else ref_lat
        probe = cls(name, nx, ny, dx, truelat1, truelat2, stand_lon, ref_lat, 0.0, 0.0, vertical)
        xc, yc = probe.to_xy(centre_lon, centre_lat)
        return cls(name, nx, ny, dx, truelat1, truelat2, stand_lon, ref_lat,
                   float(xc - 0.5 * nx * dx), float(yc - 0.5 * ny * dx), vertical)

    def nest(self, name: str, i_parent_start: int, j_parent_start: int, nx: int, ny: int,
             ratio: int = 3, vertical: VerticalGrid | None = None) -> "Nest":
        """A one-way nest of ``nx x ny`` cells starting at parent cell (j, i) (0-based).

        The nest covers parent cells ``i_parent_start .. i_parent_start + nx/ratio - 1``; nx and
        ny must be multiples of ``ratio`` so nest cells tile parent cells exactly.
        """
        return Nest(self, name, i_parent_start, j_parent_start, nx, ny, ratio,
                    vertical if vertical is not None else self.vertical)

    # ---------------------------------------------------------------- projection
    @property
    def cone_constant(self) -> float:
        return lambert_cone_constant(self.truelat1, self.truelat2)

    @property
    def proj4(self) -> str:
        return (f"+proj=lcc +lat_1={self.truelat1!r} +lat_2={self.truelat2!r} "
                f"+lat_0={self.ref_lat!r} +lon_0={self.stand_lon!r} +x_0=0 +y_0=0 "
                f"+R={EARTH_RADIUS:.1f} +units=m +no_defs")

    @property
    def crs(self) -> CRS:
        if "crs" not in self._cache:
            self._cache["crs"] = CRS.from_proj4(self.proj4)
        return self._cache["crs"]

    def _transformers(self):
        if "tr" not in self._cache:
            geo = CRS.from_proj4(f"+proj=longlat +R={EARTH_RADIUS:.1f} +no_defs")
            self._cache["tr"] = (
                Transformer.from_crs(geo, self.crs, always_xy=True),
                Transformer.from_crs(self.crs, geo, always_xy=True),
            )
        return self._cache["tr"]

    def to_xy(self, lon, lat):
        """Longitude/latitude (deg) -> projected x, y (m)."""
        fwd, _ = self._transformers()
        return fwd.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))

    def to_lonlat(self, x, y):
        """Projected x, y (m) -> longitude, latitude (deg)."""
        _, inv = self._transformers()
        return inv.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))

    # ---------------------------------------------------------------- coordinates
    @property
    def x(self) -> np.ndarray:
        """Cell-centre projected x, m (nx,)."""
        return self.x0 + (np.arange(self.nx) + 0.5) * self.dx

    @property
    def y(self) -> np.ndarray:
        """Cell-centre projected y, m (ny,)."""
        return self.y0 + (np.arange(self.ny) + 0.5) * self.dx

    @property
    def x_edges(self) -> np.ndarray:
        return self.x0 + np.arange(self.nx + 1) * self.dx

    @property
    def y_edges(self) -> np.ndarray:
        return self.y0 + np.arange(self.ny + 1) * self.dx

    @cached_property
    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre longitude and latitude, deg, each (ny, nx)."""
        xx, yy = np.meshgrid(self.x, self.y)
        return self.to_lonlat(xx, yy)

    @cached_property
    def corner_lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-corner longitude and latitude, deg, each (ny+1, nx+1)."""
        xx, yy = np.meshgrid(self.x_edges, self.y_edges)
        return self.to_lonlat(xx, yy)

    @property
    def extent_lonlat(self) -> tuple[float, float, float, float]:
        lon, lat = self.corner_lonlat
        return float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())

    # ---------------------------------------------------------------- metrics
    @cached_property
    def map_factor(self) -> np.ndarray:
        """Map factor at cell centres (ny, nx), as WRF MAPFAC_M."""
        return lambert_map_factor(self.lonlat[1], self.truelat1, self.truelat2)

    @cached_property
    def map_factor_u(self) -> np.ndarray:
        """Map factor at x-faces (ny, nx+1), as WRF MAPFAC_U."""
        xx, yy = np.meshgrid(self.x_edges, self.y)
        return lambert_map_factor(self.to_lonlat(xx, yy)[1], self.truelat1, self.truelat2)

    @cached_property
    def map_factor_v(self) -> np.ndarray:
        """Map factor at y-faces (ny+1, nx), as WRF MAPFAC_V."""
        xx, yy = np.meshgrid(self.x, self.y_edges)
        return lambert_map_factor(self.to_lonlat(xx, yy)[1], self.truelat1, self.truelat2)

    @cached_property
    def cell_area(self) -> np.ndarray:
        """True horizontal cell area, m2 (ny, nx): dx*dy/m**2."""
        return self.dx * self.dx / self.map_factor**2

    @cached_property
    def rotation(self) -> tuple[np.ndarray, np.ndarray]:
        """(cos alpha, sin alpha) at cell centres, in WRF's COSALPHA/SINALPHA convention.

        alpha = -n * (lon - stand_lon) (checked against the salem WRF sample to 1e-6). WRF's
        earth-relative winds are ``ue = u cos a - v sin a``, ``ve = v cos a + u sin a``.
        """
        lon = self.lonlat[0]
        dlon = (lon - self.stand_lon + 180.0) % 360.0 - 180.0
        a = -np.deg2rad(self.cone_constant * dlon)
        return np.cos(a), np.sin(a)

    def earth_to_grid_wind(self, u_earth, v_earth):
        """Rotate earth-relative (east, north) winds to grid-relative (x, y) winds at centres."""
        c, s = self.rotation
        return u_earth * c + v_earth * s, v_earth * c - u_earth * s

    def grid_to_earth_wind(self, u_grid, v_grid):
        """Inverse of :meth:`earth_to_grid_wind` (WRF: ue = u cos a - v sin a, ve = v cos a + u sin a)."""
        c, s = self.rotation
        return u_grid * c - v_grid * s, v_grid * c + u_grid * s

    # ---------------------------------------------------------------- lookup
    def fractional_index(self, lon, lat):
        """Continuous cell indices (i, j) of points: cell (j, i) spans [i, i+1) x [j, j+1)."""
        x, y = self.to_xy(lon, lat)
        return (np.asarray(x) - self.x0) / self.dx, (np.asarray(y) - self.y0) / self.dx

    def locate(self, lon, lat):
        """Cell indices (j, i) containing each point; -1 for points outside the grid."""
        fi, fj = self.fractional_index(lon, lat)
        i = np.floor(fi).astype(np.int64)
        j = np.floor(fj).astype(np.int64)
        outside = (i < 0) | (i >= self.nx) | (j < 0) | (j >= self.ny)
        i = np.where(outside, -1, i)
        j = np.where(outside, -1, j)
        return j, i

    def contains(self, lon, lat) -> np.ndarray:
        j, _ = self.locate(lon, lat)
        return np.asarray(j) >= 0

    # ---------------------------------------------------------------- CF
    def cf_grid_mapping(self) -> dict:
        """CF-1.10 ``grid_mapping`` attributes (Lambert conformal conic on a sphere)."""
        return {
            "grid_mapping_name": "lambert_conformal_conic",
            "standard_parallel": [float(self.truelat1), float(self.truelat2)],
            "longitude_of_central_meridian": float(self.stand_lon),
            "latitude_of_projection_origin": float(self.ref_lat),
            "false_easting": 0.0,
            "false_northing": 0.0,
            "earth_radius": EARTH_RADIUS,
            "crs_wkt": self.crs.to_wkt(),
        }

    def summary(self) -> str:
        lo0, lo1, la0, la1 = self.extent_lonlat
        nz = self.vertical.nz if self.vertical else 0
        return (f"{self.name}: {self.nx} x {self.ny} x {nz} cells of {self.dx / 1000:g} km, "
                f"lon {lo0:.3f}..{lo1:.3f}, lat {la0:.3f}..{la1:.3f}")


class Nest:
    """A one-way nest: a child :class:`LambertGrid` tiling a block of parent cells.

    Child cell (j, i) lies in parent cell ``(j_start + j // ratio, i_start + i // ratio)``. The
    child's lateral boundary values come from the parent (see :meth:`boundary_parent_index`).
    """

    def __init__(self, parent: LambertGrid, name: str, i_start: int, j_start: int, nx: int,
                 ny: int, ratio: int = 3, vertical: VerticalGrid | None = None):
        if ratio < 1:
            raise ValueError(f"nest {name!r}: ratio must be >= 1, got {ratio}")
        if nx % ratio or ny % ratio:
            raise ValueError(f"nest {name!r}: nx={nx}, ny={ny} must be multiples of ratio {ratio}")
        if i_start < 1 or j_start < 1:
            raise ValueError(
                f"nest {name!r}: start ({i_start}, {j_start}) must leave at least one parent cell "
                "on the west/south side for boundary values")
        if i_start + nx // ratio > parent.nx - 1 or j_start + ny // ratio > parent.ny - 1:
            raise ValueError(
                f"nest {name!r}: {nx}x{ny} cells at ratio {ratio} from parent cell "
                f"({i_start}, {j_start}) reach parent cell ({i_start + nx // ratio}, "
                f"{j_start + ny // ratio}); must end inside parent {parent.nx}x{parent.ny} with "
                "one cell to spare")
        self.parent = parent
        self.ratio = ratio
        self.i_start = i_start
        self.j_start = j_start
        self.grid = LambertGrid(
            name, nx, ny, parent.dx / ratio, parent.truelat1, parent.truelat2, parent.stand_lon,
            parent.ref_lat, parent.x0 + i_start * parent.dx, parent.y0 + j_start * parent.dx,
            vertical)

    @property
    def parent_slices(self) -> tuple[slice, slice]:
        """(y, x) slices of the parent cells the nest covers."""
        r = self.ratio
        return (slice(self.j_start, self.j_start + self.grid.ny // r),
                slice(self.i_start, self.i_start + self.grid.nx // r))

    def parent_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Parent (j, i) index of every child cell, each (ny, nx)."""
        j = self.j_start + np.arange(self.grid.ny) // self.ratio
        i = self.i_start + np.arange(self.grid.nx) // self.ratio
        return np.broadcast_to(j[:, None], (self.grid.ny, self.grid.nx)), np.broadcast_to(
            i[None, :], (self.grid.ny, self.grid.nx))

    def parent_fractional_index(self, halo: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Parent-grid continuous centre coordinates (fj, fi) of child cells incl. a halo.

        Parent cell centres sit at integer + 0.5; use this for bilinear interpolation of parent
        fields to child ghost cells. Shapes (ny + 2 halo,) and (nx + 2 halo,).
        """
        r = self.ratio
        jj = np.arange(-halo, self.grid.ny + halo)
        ii = np.arange(-halo, self.grid.nx + halo)
        return self.j_start + (jj + 0.5) / r, self.i_start + (ii + 0.5) / r

    def aggregate_to_parent(self, child_field: np.ndarray) -> np.ndarray:
        """Mean of child cells over each covered parent cell: (..., ny, nx) -> (..., ny/r, nx/r)."""
        r = self.ratio
        a = np.asarray(child_field)
        sh = a.shape[:-2] + (self.grid.ny // r, r, self.grid.nx // r, r)
        return a.reshape(sh).mean(axis=(-3, -1))


def grids_from_config(cfg) -> dict[str, LambertGrid]:
    """Build every domain's :class:`LambertGrid` from a validated run configuration.

    ``cfg`` is an :class:`aqforecast.config.RunConfig` (duck-typed here so this layer does not
    import the config package). Returns ``{name: grid}`` in config order; nests are built from
    their parents.
    """
    vcfg = cfg.vertical
    if vcfg.eta_interfaces is not None:
        vertical = VerticalGrid(tuple(vcfg.eta_interfaces), vcfg.p_top_pa)
    else:
        vertical = VerticalGrid.stretched(vcfg.nz, vcfg.p_top_pa, vcfg.first_layer_m)
    pj = cfg.projection
    grids: dict[str, LambertGrid] = {}
    for d in cfg.domains:
        if d.parent is None:
            grids[d.name] = LambertGrid.centred(
                d.name, d.nx, d.ny, d.dx_m, d.centre_lon, d.centre_lat, pj.truelat1, pj.truelat2,
                pj.stand_lon, pj.ref_lat, vertical)
        else:
            grids[d.name] = grids[d.parent].nest(
                d.name, d.i_parent_start, d.j_parent_start, d.nx, d.ny, d.ratio, vertical).grid
    return grids


def nests_from_config(cfg, grids: dict[str, LambertGrid] | None = None) -> dict[str, Nest]:
    """``{nest name: Nest}`` for every domain that has a parent."""
    grids = grids if grids is not None else grids_from_config(cfg)
    return {d.name: grids[d.parent].nest(d.name, d.i_parent_start, d.j_parent_start, d.nx, d.ny,
                                         d.ratio, grids[d.parent].vertical)
            for d in cfg.domains if d.parent is not None}
