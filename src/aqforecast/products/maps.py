"""PNG maps of 2-D fields on 2-D lon/lat grids, drawn offline with cartopy.

:func:`plot_field` draws a field with ``pcolormesh`` in a Lambert-conformal or plate-carrée
projection, with Natural Earth coastlines and country borders read from a local copy (cartopy's
``pre_existing_data_dir``; nothing is downloaded), province/city outlines from GeoJSON files,
station markers coloured by observed value on the same colour scale, and an optional AQI-category
colour scale (HJ 633 Annex A / EPA colours). cartopy is imported only when a map is drawn, and the
figure is rendered with the Agg canvas without touching pyplot's global state.

Natural Earth search order (:func:`natural_earth_dir`): the ``natural_earth_dir`` argument, the
packaged ``aqforecast/data/natural_earth``, ``$AQF_SHARED_DATA/boundaries/natural_earth_cartopy_
layout``, and ``../shared/data/boundaries/natural_earth_cartopy_layout`` above the package's
repository. A directory qualifies when it holds ``shapefiles/natural_earth/physical/
ne_<res>_coastline.shp`` (cartopy's layout).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..io import atomic_path
from . import aqi as _aqi

log = logging.getLogger(__name__)

_PKG = Path(__file__).resolve().parents[1]


def _candidate_dirs(explicit=None) -> list[Path]:
    c = []
    if explicit is not None:
        c.append(Path(explicit))
    c.append(_PKG / "data" / "natural_earth")
    if os.environ.get("AQF_SHARED_DATA"):
        c.append(Path(os.environ["AQF_SHARED_DATA"]) / "boundaries" / "natural_earth_cartopy_layout")
    for parent in _PKG.parents:
        c.append(parent / "shared" / "data" / "boundaries" / "natural_earth_cartopy_layout")
    return c


def natural_earth_dir(path=None, resolution: str = "50m") -> Path:
    """The first directory in cartopy's layout holding Natural Earth coastlines at ``resolution``.

    Raises FileNotFoundError listing the places searched.
    """
    tried = []
    for d in _candidate_dirs(path):
        shp = d / "shapefiles" / "natural_earth" / "physical" / f"ne_{resolution}_coastline.shp"
        tried.append(str(d))
        if shp.exists():
            return d
        if path is not None and d == Path(path):
            break
    raise FileNotFoundError(f"Natural Earth {resolution} coastline (cartopy layout) not found in: "
                            + "; ".join(tried))


@contextlib.contextmanager
def _offline_cartopy(ne_dir: Path):
    """Point cartopy's pre_existing_data_dir at ``ne_dir`` (restored afterwards)."""
    import cartopy

    old = cartopy.config.get("pre_existing_data_dir")
    cartopy.config["pre_existing_data_dir"] = str(ne_dir)
    try:
        yield cartopy
    finally:
        cartopy.config["pre_existing_data_dir"] = old


def aqi_colormap(standard: str = "HJ633-2026", bounds: Sequence[float] | None = None):
    """(cmap, norm, boundaries) for the six AQI category colours.

    Default boundaries are AQI values (0, 50, 100, 150, 200, 300, 500); pass concentration
    boundaries (e.g. from :func:`aqforecast.products.aqi.concentration_breaks`) to colour a
    concentration field by category.
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    fam = _aqi.RULES[standard].family
    colors = [tuple(c / 255.0 for c in rgb) for rgb in _aqi.CATEGORY_COLORS[fam]]
    b = list(bounds) if bounds is not None else [0, 50, 100, 150, 200, 300, 500]
    if len(b) == 6:  # five category limits plus zero: add an open top
        b = b + [b[-1] * 2]
    if len(b) != 7:
        raise ValueError(f"AQI colour scale needs 7 boundaries (6 categories), got {len(b)}")
    cmap = ListedColormap(colors, name=f"aqi_{fam}").with_extremes(over=colors[-1],
                                                                  under=colors[0])
    return cmap, BoundaryNorm(b, cmap.N), b


def _geojson_geometries(path):
    """Shapely geometries of a GeoJSON file (FeatureCollection, Feature or bare Geometry)."""
    from shapely.geometry import shape

    with open(path, encoding="utf-8") as fh:
        obj = json.load(fh)
    kind = obj.get("type")
    if kind == "FeatureCollection":
        return [shape(f["geometry"]) for f in obj["features"] if f.get("geometry")]
    if kind == "Feature":
        return [shape(obj["geometry"])]
    if kind in ("Polygon", "MultiPolygon", "LineString", "MultiLineString"):
        return [shape(obj)]
    raise ValueError(f"{path}: not a GeoJSON geometry, Feature or FeatureCollection "
                     f"(type={kind!r})")


def add_colorbar(fig, ax, mesh, units: str, aqi_scale: str | None = None):
    """Horizontal colour bar with units; AQI category names above it for AQI scales."""
    cb = fig.colorbar(mesh, ax=ax, orientation="horizontal", pad=0.05, shrink=0.8,
                      extend="neither" if aqi_scale else "both")
    cb.set_label(units)
    if aqi_scale is not None:
        fam = _aqi.RULES[aqi_scale].family
        cb.ax.set_title(" | ".join(n.split(" ")[0] for n in _aqi.CATEGORY_NAMES[fam]),
                        fontsize=6)
    return cb


def plot_field(field, lon2d, lat2d, path, *, title: str = "", units: str = "",
               projection: str = "lambert", cmap="viridis", vmin=None, vmax=None,
               aqi_scale: str | None = None, aqi_bounds: Sequence[float] | None = None,
               stations=None, station_values=None, boundaries: Iterable = (),
               natural_earth=None, resolution: str = "50m", extent=None,
               dpi: int = 100, figsize=(7.0, 6.0)) -> Path:
    """Draw ``field`` (ny, nx) on ``lon2d``/``lat2d`` (degrees, cell centres) and save a PNG.

    Parameters
    ----------
    projection: "lambert" (LambertConformal centred on the grid, standard parallels 30/60 N) or
        "platecarree".
    aqi_scale: an AQI standard name to colour by AQI category (the field is an AQI, or a
        concentration when ``aqi_bounds`` gives the concentration limits); else ``cmap``.
    stations: (lon, lat) arrays or a DataFrame with lon/lat columns; ``station_values`` colours
        the markers on the field's scale (NaN values drawn hollow).
    boundaries: GeoJSON files of province/city outlines.
    natural_earth: directory in cartopy's layout (see :func:`natural_earth_dir`).
    extent: (lon_min, lon_max, lat_min, lat_max); default the grid's bounds.

    Returns the path written. Never downloads: coastlines and borders come from local files.
    """
    import cartopy.crs as ccrs
    import cartopy.feature as cfeature
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    field = np.asarray(field, float)
    lon2d = np.asarray(lon2d, float)
    lat2d = np.asarray(lat2d, float)
    if field.shape != lon2d.shape or lon2d.shape != lat2d.shape:
        raise ValueError(f"field {field.shape}, lon {lon2d.shape} and lat {lat2d.shape} must "
                         "have one 2-D shape")
    ne_dir = natural_earth_dir(natural_earth, resolution)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if extent is None:
        extent = (np.nanmin(lon2d), np.nanmax(lon2d), np.nanmin(lat2d), np.nanmax(lat2d))
    if projection == "lambert":
        proj = ccrs.LambertConformal(central_longitude=float(np.mean(extent[:2])),
                                     central_latitude=float(np.mean(extent[2:])),
                                     standard_parallels=(30.0, 60.0))
    elif projection == "platecarree":
        proj = ccrs.PlateCarree()
    else:
        raise ValueError(f"projection must be 'lambert' or 'platecarree', got {projection!r}")
    norm = None
    if aqi_scale is not None:
        cmap, norm, _ = aqi_colormap(aqi_scale, aqi_bounds)
        vmin = vmax = None

    with _offline_cartopy(ne_dir):
        fig = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1, projection=proj)
        ax.set_extent(extent, crs=ccrs.PlateCarree())
        mesh = ax.pcolormesh(lon2d, lat2d, np.ma.masked_invalid(field), cmap=cmap, norm=norm,
                             vmin=vmin, vmax=vmax, shading="nearest",
                             transform=ccrs.PlateCarree())
        ax.add_feature(cfeature.NaturalEarthFeature("physical", "coastline", resolution),
                       facecolor="none", edgecolor="black", linewidth=0.6)
        borders = ne_dir / "shapefiles" / "natural_earth" / "cultural" / \
            f"ne_{resolution}_admin_0_boundary_lines_land.shp"
        if borders.exists():
            ax.add_feature(cfeature.NaturalEarthFeature(
                "cultural", "admin_0_boundary_lines_land", resolution),
                facecolor="none", edgecolor="black", linewidth=0.5)
        for gj in boundaries:
            ax.add_geometries(_geojson_geometries(gj), crs=ccrs.PlateCarree(),
                              facecolor="none", edgecolor="0.25", linewidth=0.5)
        if stations is not None:
            if hasattr(stations, "columns"):
                slon, slat = stations["lon"].to_numpy(float), stations["lat"].to_numpy(float)
            else:
                slon, slat = (np.asarray(a, float) for a in stations)
            if station_values is None:
                ax.scatter(slon, slat, s=18, facecolor="white", edgecolor="black",
                           linewidth=0.6, transform=ccrs.PlateCarree(), zorder=5)
            else:
                sv = np.asarray(station_values, float)
                ok = np.isfinite(sv)
                ax.scatter(slon[ok], slat[ok], c=sv[ok], cmap=mesh.cmap, norm=mesh.norm, s=28,
                           edgecolor="black", linewidth=0.6, transform=ccrs.PlateCarree(),
                           zorder=5)
                ax.scatter(slon[~ok], slat[~ok], s=28, facecolor="none", edgecolor="black",
                           linewidth=0.6, transform=ccrs.PlateCarree(), zorder=5)
        add_colorbar(fig, ax, mesh, units, aqi_scale)
        ax.set_title(title)
        with atomic_path(path) as tmp:  # a killed run leaves no partial PNG under its name
            fig.savefig(tmp, dpi=dpi, format="png")
    log.info("map written: %s", path)
    return path
