"""Model grids: WRF's conformal map projections (pyproj), vertical levels and one-way nests.

Conventions (DESIGN.md): arrays are ``(lev, y, x)``; ``x`` runs west->east (index ``i``), ``y``
south->north (index ``j``). Projected coordinates are metres on the map plane of a sphere of radius
6 370 000 m, the sphere WRF and WPS use, so our grids line up with WRF output cell for cell.

The three WRF projections (``MAP_PROJ`` 1, 2, 3) share one grid class,
:class:`ProjectedGrid`, with a subclass each: :class:`LambertGrid`,
:class:`PolarStereographicGrid` and :class:`MercatorGrid`. All three are conformal, so the map
factor m depends on latitude only (Snyder 1987, USGS PP 1395; SCIENCE.md 1.2; the same formulas
as WRF's ``module_llxy``), with ``phi1 = truelat1``, ``phi2 = truelat2``::

    lambert   m = (cos phi1 / cos phi) [tan(pi/4 + phi1/2) / tan(pi/4 + phi/2)]**n     (15-4)
              n = ln(cos phi1 / cos phi2) / ln[tan(pi/4 + phi2/2) / tan(pi/4 + phi1/2)]  (15-3)
              (n = sin phi1 when phi1 == phi2: the tangent cone; n < 0 in the south)
    polar     m = (1 + h sin phi1) / (1 + h sin phi),  h = sign(truelat1) picks the pole  (ch. 21)
    mercator  m = cos phi1 / cos phi                                                      (ch. 7)

True horizontal cell area is ``dx*dy/m**2``. Grid north is rotated from true north by
``alpha = -n (lon - stand_lon)`` with the "cone constant" ``n`` of each projection (Lambert: n
above; polar: h = +-1; Mercator: 0, no rotation), the convention of WRF's COSALPHA/SINALPHA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np
from pyproj import CRS, Transformer

from .constants import EARTH_RADIUS

__all__ = [
    "ProjectedGrid",
    "LambertGrid",
    "PolarStereographicGrid",
    "MercatorGrid",
    "GRID_CLASSES",
    "WRF_MAP_PROJ",
    "VerticalGrid",
    "Nest",
    "grid_class",
    "projection_problem",
    "lambert_cone_constant",
    "lambert_map_factor",
    "polar_stereographic_map_factor",
    "mercator_map_factor",
]

#: WRF ``MAP_PROJ`` code -> our projection kind (``projection.kind`` in the config).
WRF_MAP_PROJ = {1: "lambert", 2: "polar", 3: "mercator"}


def lambert_cone_constant(truelat1: float, truelat2: float) -> float:
    """Cone constant n of the Lambert conformal conic projection (degrees in; n < 0 south)."""
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


def polar_stereographic_map_factor(lat, truelat1: float):
    """Map factor of the polar stereographic projection true at ``truelat1`` (deg; its sign
    picks the pole): ``m = (1 + h sin truelat1) / (1 + h sin lat)``, h = sign(truelat1)
    (Snyder 1987 ch. 21, polar aspect on the sphere with k0 = (1 + h sin truelat1) / 2; WRF
    ``module_llxy`` set_ps)."""
    h = 1.0 if truelat1 >= 0 else -1.0
    p = np.deg2rad(np.asarray(lat, dtype=float))
    return (1.0 + h * np.sin(np.deg2rad(truelat1))) / (1.0 + h * np.sin(p))


def mercator_map_factor(lat, truelat1: float):
    """Map factor of the Mercator projection true at ``truelat1`` (deg):
    ``m = cos truelat1 / cos lat`` (Snyder 1987 ch. 7 on the sphere, k0 = cos truelat1)."""
    p = np.deg2rad(np.asarray(lat, dtype=float))
    return np.cos(np.deg2rad(truelat1)) / np.cos(p)


def projection_problem(kind: str, truelat1: float, truelat2: float | None = None) -> str | None:
    """Why ``kind`` with these true latitudes (deg) is not a valid WRF projection, or None.

    Lambert: both standard parallels in the same hemisphere, off the equator and off the poles
    (a cone through the equator is a cylinder: use mercator; through a pole, use polar). Polar:
    truelat1 != 0 (its sign picks the pole). Mercator: |truelat1| < 90.
    """
    t2 = truelat1 if truelat2 is None else truelat2
    for name, t in (("truelat1", truelat1), ("truelat2", t2)):
        if not np.isfinite(t) or abs(t) > 90.0:
            return f"{name} = {t} is not a latitude (-90..90)"
    if kind == "lambert":
        if truelat1 * t2 < 0:
            return (f"lambert: truelat1 = {truelat1} and truelat2 = {t2} must lie in the same "
                    "hemisphere")
        if truelat1 == 0.0 or t2 == 0.0:
            return (f"lambert: a standard parallel on the equator (truelat1 = {truelat1}, "
                    f"truelat2 = {t2}) makes no cone; use kind: mercator")
        if abs(truelat1) >= 90.0 or abs(t2) >= 90.0:
            return (f"lambert: a standard parallel at a pole (truelat1 = {truelat1}, "
                    f"truelat2 = {t2}) makes no cone; use kind: polar")
    elif kind == "polar":
        if truelat1 == 0.0:
            return ("polar: truelat1 = 0 names no pole; give the latitude of true scale with "
                    "the pole's sign (e.g. 60 for the north pole, -71 for the south pole)")
    elif kind == "mercator":
        if abs(truelat1) >= 90.0:
            return f"mercator: truelat1 = {truelat1} must lie strictly between -90 and 90"
    else:
        return f"unknown projection kind {kind!r}; expected one of {sorted(GRID_CLASSES)}"
    return None


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
class ProjectedGrid:
    """A model grid of ``ny x nx`` square cells of side ``dx`` metres on a WRF map projection.

    The fields are WRF's projection attributes: ``truelat1``/``truelat2`` (Lambert standard
    parallels; polar and Mercator use ``truelat1``, the latitude of true scale, and store
    ``truelat2 = truelat1``), central meridian ``stand_lon`` and origin latitude ``ref_lat``
    (Lambert: only shifts the false northing; polar: the pole, +-90; Mercator: 0), on the sphere
    of radius 6 370 km. The grid is placed by its lower-left corner in projected metres (``x0``,
    ``y0``, the south-west corner of cell (0, 0)). Use a subclass (:class:`LambertGrid`,
    :class:`PolarStereographicGrid`, :class:`MercatorGrid`) or :func:`grid_class`.
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

    #: projection kind (``projection.kind`` in the config) and WRF ``MAP_PROJ`` code
    kind: ClassVar[str] = ""
    map_proj: ClassVar[int] = 0

    def __post_init__(self):
        if type(self) is ProjectedGrid:
            raise TypeError("ProjectedGrid is abstract: use LambertGrid, PolarStereographicGrid "
                            "or MercatorGrid (grid_class(kind))")
        if self.nx < 1 or self.ny < 1:
            raise ValueError(f"grid {self.name!r}: nx, ny must be >= 1, got {self.nx}, {self.ny}")
        if not self.dx > 0:
            raise ValueError(f"grid {self.name!r}: dx must be > 0, got {self.dx}")
        problem = projection_problem(self.kind, self.truelat1, self.truelat2)
        if problem:
            raise ValueError(f"grid {self.name!r}: {problem}")

    # ---------------------------------------------------------------- construction
    @classmethod
    def centred(cls, name: str, nx: int, ny: int, dx: float, centre_lon: float,
                centre_lat: float, truelat1: float, truelat2: float | None = None,
                stand_lon: float | None = None, ref_lat: float | None = None,
                vertical: VerticalGrid | None = None) -> "ProjectedGrid":
        """A grid whose centre is at (centre_lon, centre_lat), as WRF's CEN_LON/CEN_LAT.

        ``truelat2`` defaults to ``truelat1``, ``stand_lon`` to ``centre_lon`` and (Lambert)
        ``ref_lat`` to ``centre_lat``.
        """
        truelat2 = truelat1 if truelat2 is None else truelat2
        stand_lon = centre_lon if stand_lon is None else stand_lon
        ref_lat = centre_lat if ref_lat is None else ref_lat
        probe = cls(name, nx, ny, dx, truelat1, truelat2, stand_lon, ref_lat, 0.0, 0.0, vertical)
        xc, yc = probe.to_xy(centre_lon, centre_lat)
        return cls(name, nx, ny, dx, truelat1, truelat2, stand_lon, ref_lat,
                   float(xc - 0.5 * nx * dx), float(yc - 0.5 * ny * dx), vertical)

    def with_placement(self, name: str, nx: int, ny: int, dx: float, x0: float, y0: float,
                       vertical: VerticalGrid | None = None) -> "ProjectedGrid":
        """A grid on the same projection with another size, spacing and lower-left corner."""
        return type(self)(name, nx, ny, dx, self.truelat1, self.truelat2, self.stand_lon,
                          self.ref_lat, x0, y0, vertical)

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
        """Rotation constant n of grid north vs true north: alpha = -n (lon - stand_lon)."""
        raise NotImplementedError

    def map_factor_at(self, lat):
        """Map factor (1) at latitude(s) ``lat`` (deg): it depends on latitude only."""
        raise NotImplementedError

    @property
    def proj4(self) -> str:
        raise NotImplementedError

    def _cf_parameters(self) -> dict:
        raise NotImplementedError

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

    @property
    def centre_lonlat(self) -> tuple[float, float]:
        """Longitude and latitude (deg) of the grid's centre point (WRF's CEN_LON/CEN_LAT)."""
        lon, lat = self.to_lonlat(self.x0 + 0.5 * self.nx * self.dx,
                                  self.y0 + 0.5 * self.ny * self.dx)
        return float(lon), float(lat)

    # ---------------------------------------------------------------- metrics
    @cached_property
    def map_factor(self) -> np.ndarray:
        """Map factor at cell centres (ny, nx), as WRF MAPFAC_M."""
        return self.map_factor_at(self.lonlat[1])

    @cached_property
    def map_factor_u(self) -> np.ndarray:
        """Map factor at x-faces (ny, nx+1), as WRF MAPFAC_U."""
        xx, yy = np.meshgrid(self.x_edges, self.y)
        return self.map_factor_at(self.to_lonlat(xx, yy)[1])

    @cached_property
    def map_factor_v(self) -> np.ndarray:
        """Map factor at y-faces (ny+1, nx), as WRF MAPFAC_V."""
        xx, yy = np.meshgrid(self.x, self.y_edges)
        return self.map_factor_at(self.to_lonlat(xx, yy)[1])

    @cached_property
    def cell_area(self) -> np.ndarray:
        """True horizontal cell area, m2 (ny, nx): dx*dy/m**2."""
        return self.dx * self.dx / self.map_factor**2

    def rotation_at(self, lon) -> tuple[np.ndarray, np.ndarray]:
        """(cos alpha, sin alpha) at longitude(s) ``lon`` (deg), WRF's COSALPHA/SINALPHA."""
        dlon = (np.asarray(lon, dtype=float) - self.stand_lon + 180.0) % 360.0 - 180.0
        a = -np.deg2rad(self.cone_constant * dlon)
        return np.cos(a), np.sin(a)

    @cached_property
    def rotation(self) -> tuple[np.ndarray, np.ndarray]:
        """(cos alpha, sin alpha) at cell centres, in WRF's COSALPHA/SINALPHA convention.

        alpha = -n * (lon - stand_lon) (Lambert checked against the salem WRF sample to 1e-6;
        every projection against pyproj's meridian convergence). WRF's earth-relative winds are
        ``ue = u cos a - v sin a``, ``ve = v cos a + u sin a``; Mercator has alpha = 0.
        """
        return self.rotation_at(self.lonlat[0])

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
        """CF-1.10 ``grid_mapping`` attributes of the projection (on WRF's sphere)."""
        return {**self._cf_parameters(), "false_easting": 0.0, "false_northing": 0.0,
                "earth_radius": EARTH_RADIUS, "crs_wkt": self.crs.to_wkt()}

    def summary(self) -> str:
        lo0, lo1, la0, la1 = self.extent_lonlat
        nz = self.vertical.nz if self.vertical else 0
        return (f"{self.name}: {self.nx} x {self.ny} x {nz} cells of {self.dx / 1000:g} km "
                f"({self.kind}), lon {lo0:.3f}..{lo1:.3f}, lat {la0:.3f}..{la1:.3f}")


@dataclass(frozen=True)
class LambertGrid(ProjectedGrid):
    """Lambert conformal conic grid (WRF MAP_PROJ = 1): standard parallels ``truelat1`` and
    ``truelat2`` (equal: tangent cone), central meridian ``stand_lon``, origin ``ref_lat``."""

    kind: ClassVar[str] = "lambert"
    map_proj: ClassVar[int] = 1

    @property
    def cone_constant(self) -> float:
        return lambert_cone_constant(self.truelat1, self.truelat2)

    def map_factor_at(self, lat):
        return lambert_map_factor(lat, self.truelat1, self.truelat2)

    @property
    def proj4(self) -> str:
        return (f"+proj=lcc +lat_1={self.truelat1!r} +lat_2={self.truelat2!r} "
                f"+lat_0={self.ref_lat!r} +lon_0={self.stand_lon!r} +x_0=0 +y_0=0 "
                f"+R={EARTH_RADIUS:.1f} +units=m +no_defs")

    def _cf_parameters(self) -> dict:
        return {"grid_mapping_name": "lambert_conformal_conic",
                "standard_parallel": [float(self.truelat1), float(self.truelat2)],
                "longitude_of_central_meridian": float(self.stand_lon),
                "latitude_of_projection_origin": float(self.ref_lat)}


@dataclass(frozen=True)
class PolarStereographicGrid(ProjectedGrid):
    """Polar stereographic grid (WRF MAP_PROJ = 2): true at ``truelat1``, whose sign picks the
    pole; ``stand_lon`` is the meridian parallel to the grid's y axis. ``truelat2`` and
    ``ref_lat`` are set to ``truelat1`` and the pole (+-90)."""

    kind: ClassVar[str] = "polar"
    map_proj: ClassVar[int] = 2

    def __post_init__(self):
        object.__setattr__(self, "truelat2", self.truelat1)
        object.__setattr__(self, "ref_lat", 90.0 if self.truelat1 >= 0 else -90.0)
        super().__post_init__()

    @property
    def hemisphere(self) -> float:
        """+1 for a north-pole projection, -1 for a south-pole one."""
        return 1.0 if self.truelat1 >= 0 else -1.0

    @property
    def cone_constant(self) -> float:
        return self.hemisphere

    def map_factor_at(self, lat):
        return polar_stereographic_map_factor(lat, self.truelat1)

    @property
    def proj4(self) -> str:
        return (f"+proj=stere +lat_0={self.ref_lat!r} +lat_ts={self.truelat1!r} "
                f"+lon_0={self.stand_lon!r} +x_0=0 +y_0=0 +R={EARTH_RADIUS:.1f} +units=m "
                "+no_defs")

    def _cf_parameters(self) -> dict:
        return {"grid_mapping_name": "polar_stereographic",
                "straight_vertical_longitude_from_pole": float(self.stand_lon),
                "latitude_of_projection_origin": float(self.ref_lat),
                "standard_parallel": float(self.truelat1)}


@dataclass(frozen=True)
class MercatorGrid(ProjectedGrid):
    """Mercator grid (WRF MAP_PROJ = 3): true at ``truelat1``; ``stand_lon`` only shifts x.
    Grid north is true north (no wind rotation). ``truelat2`` and ``ref_lat`` are set to
    ``truelat1`` and 0."""

    kind: ClassVar[str] = "mercator"
    map_proj: ClassVar[int] = 3

    def __post_init__(self):
        object.__setattr__(self, "truelat2", self.truelat1)
        object.__setattr__(self, "ref_lat", 0.0)
        super().__post_init__()

    @property
    def cone_constant(self) -> float:
        return 0.0

    def map_factor_at(self, lat):
        return mercator_map_factor(lat, self.truelat1)

    @property
    def proj4(self) -> str:
        return (f"+proj=merc +lat_ts={self.truelat1!r} +lon_0={self.stand_lon!r} +x_0=0 +y_0=0 "
                f"+R={EARTH_RADIUS:.1f} +units=m +no_defs")

    def _cf_parameters(self) -> dict:
        return {"grid_mapping_name": "mercator",
                "longitude_of_projection_origin": float(self.stand_lon),
                "standard_parallel": float(self.truelat1)}


#: projection kind -> grid class
GRID_CLASSES: dict[str, type[ProjectedGrid]] = {
    c.kind: c for c in (LambertGrid, PolarStereographicGrid, MercatorGrid)}


def grid_class(kind: str | int) -> type[ProjectedGrid]:
    """The grid class of a projection kind ('lambert', 'polar', 'mercator') or WRF MAP_PROJ."""
    key = WRF_MAP_PROJ.get(kind, kind) if isinstance(kind, (int, np.integer)) else kind
    if key not in GRID_CLASSES:
        raise ValueError(f"unsupported projection {kind!r}: expected one of "
                         f"{sorted(GRID_CLASSES)} or WRF MAP_PROJ {sorted(WRF_MAP_PROJ)}")
    return GRID_CLASSES[key]


class Nest:
    """A one-way nest: a child grid (the parent's projection) tiling a block of parent cells.

    Child cell (j, i) lies in parent cell ``(j_start + j // ratio, i_start + i // ratio)``. The
    child's lateral boundary values come from the parent (see :meth:`boundary_parent_index`).
    """

    def __init__(self, parent: ProjectedGrid, name: str, i_start: int, j_start: int, nx: int,
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
        self.grid = parent.with_placement(
            name, nx, ny, parent.dx / ratio, parent.x0 + i_start * parent.dx,
            parent.y0 + j_start * parent.dx, vertical)

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


def grids_from_config(cfg) -> dict[str, ProjectedGrid]:
    """Build every domain's grid from a validated run configuration (``projection.kind``
    picks :class:`LambertGrid`, :class:`PolarStereographicGrid` or :class:`MercatorGrid`).

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
    cls = grid_class(pj.kind)
    grids: dict[str, ProjectedGrid] = {}
    for d in cfg.domains:
        if d.parent is None:
            grids[d.name] = cls.centred(
                d.name, d.nx, d.ny, d.dx_m, d.centre_lon, d.centre_lat, pj.truelat1, pj.truelat2,
                pj.stand_lon, pj.ref_lat, vertical)
        else:
            grids[d.name] = grids[d.parent].nest(
                d.name, d.i_parent_start, d.j_parent_start, d.nx, d.ny, d.ratio, vertical).grid
    return grids


def nests_from_config(cfg, grids: dict[str, ProjectedGrid] | None = None) -> dict[str, Nest]:
    """``{nest name: Nest}`` for every domain that has a parent."""
    grids = grids if grids is not None else grids_from_config(cfg)
    return {d.name: grids[d.parent].nest(d.name, d.i_parent_start, d.j_parent_start, d.nx, d.ny,
                                         d.ratio, grids[d.parent].vertical)
            for d in cfg.domains if d.parent is not None}
