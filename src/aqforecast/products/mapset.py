"""Series of PNG maps on one grid, drawn fast by reusing one figure per colour scale.

:func:`aqforecast.products.maps.plot_field` builds a fresh cartopy figure per map (~0.35 s, most of
it projecting coastlines and city outlines). A daily product set draws the same background tens
of times, so :class:`MapSeries` builds each figure once (projection, coastlines, borders, city
outlines, station markers, colour bar) and per map only swaps the mesh data and the title before
saving (atomically). Same offline rules as :mod:`.maps`: Natural Earth from a local directory in
cartopy's layout, never a download.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import maps as _maps

log = logging.getLogger(__name__)


class MapSeries:
    """Reusable map figures for fields on one lon/lat grid.

    Parameters
    ----------
    lon2d, lat2d: (ny, nx) cell-centre coordinates, degrees.
    boundaries: GeoJSON files of city/province outlines.
    stations: (lon, lat) arrays of station markers, or None.
    natural_earth, resolution: as :func:`aqforecast.products.maps.plot_field`.
    """

    def __init__(self, lon2d, lat2d, boundaries: Iterable = (), stations=None,
                 natural_earth=None, resolution: str = "50m", dpi: int = 100,
                 figsize=(7.0, 6.0)):
        self.lon = np.asarray(lon2d, float)
        self.lat = np.asarray(lat2d, float)
        self.boundaries = list(boundaries)
        self.stations = stations
        self.ne_dir = _maps.natural_earth_dir(natural_earth, resolution)
        self.resolution = resolution
        self.dpi = dpi
        self.figsize = figsize
        self._figs: dict = {}
        self._geoms = None

    def _geometries(self):
        if self._geoms is None:
            self._geoms = [g for gj in self.boundaries for g in _maps._geojson_geometries(gj)]
        return self._geoms

    def _figure(self, key, units: str, aqi_scale, aqi_bounds, cmap, vmin, vmax):
        if key in self._figs:
            return self._figs[key]
        import cartopy.crs as ccrs
        import cartopy.feature as cfeature
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        extent = (np.nanmin(self.lon), np.nanmax(self.lon), np.nanmin(self.lat),
                  np.nanmax(self.lat))
        proj = ccrs.LambertConformal(central_longitude=float(np.mean(extent[:2])),
                                     central_latitude=float(np.mean(extent[2:])),
                                     standard_parallels=(30.0, 60.0))
        norm = None
        if aqi_scale is not None:
            cmap, norm, _ = _maps.aqi_colormap(aqi_scale, aqi_bounds)
            vmin = vmax = None
        with _maps._offline_cartopy(self.ne_dir):
            fig = Figure(figsize=self.figsize, dpi=self.dpi)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot(1, 1, 1, projection=proj)
            ax.set_extent(extent, crs=ccrs.PlateCarree())
            mesh = ax.pcolormesh(self.lon, self.lat, np.ma.masked_invalid(np.zeros_like(self.lon)),
                                 cmap=cmap, norm=norm, vmin=vmin, vmax=vmax, shading="nearest",
                                 transform=ccrs.PlateCarree())
            ax.add_feature(cfeature.NaturalEarthFeature("physical", "coastline", self.resolution),
                           facecolor="none", edgecolor="black", linewidth=0.6)
            borders = self.ne_dir / "shapefiles" / "natural_earth" / "cultural" / \
                f"ne_{self.resolution}_admin_0_boundary_lines_land.shp"
            if borders.exists():
                ax.add_feature(cfeature.NaturalEarthFeature(
                    "cultural", "admin_0_boundary_lines_land", self.resolution),
                    facecolor="none", edgecolor="black", linewidth=0.5)
            if self.boundaries:
                ax.add_geometries(self._geometries(), crs=ccrs.PlateCarree(), facecolor="none",
                                  edgecolor="0.25", linewidth=0.6)
            if self.stations is not None:
                slon, slat = (np.asarray(a, float) for a in self.stations)
                ax.scatter(slon, slat, s=14, facecolor="white", edgecolor="black",
                           linewidth=0.5, transform=ccrs.PlateCarree(), zorder=5)
            _maps.add_colorbar(fig, ax, mesh, units, aqi_scale)
            # draw once so the background (coastlines, outlines) is projected and cached
            fig.canvas.draw()
        self._figs[key] = (fig, ax, mesh)
        return self._figs[key]

    def draw(self, field, path, *, title: str = "", units: str = "", key=None,
             aqi_scale: str | None = None, aqi_bounds: Sequence[float] | None = None,
             cmap="viridis", vmin=None, vmax=None) -> Path:
        """Draw ``field`` (ny, nx) and save a PNG atomically; returns the path.

        Maps with the same ``key`` (default: the colour-scale arguments) share one figure, so
        their colour scale is the one of the first map drawn with that key.
        """
        from ..io import atomic_path

        field = np.asarray(field, float)
        if field.shape != self.lon.shape:
            raise ValueError(f"field {field.shape} does not match the grid {self.lon.shape}")
        if key is None:
            key = (units, aqi_scale, tuple(aqi_bounds) if aqi_bounds is not None else None,
                   str(cmap), vmin, vmax)
        fig, ax, mesh = self._figure(key, units, aqi_scale, aqi_bounds, cmap, vmin, vmax)
        mesh.set_array(np.ma.masked_invalid(field))
        ax.set_title(title)
        path = Path(path)
        with _maps._offline_cartopy(self.ne_dir), atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=self.dpi, format="png")
        log.debug("map written: %s", path)
        return path

    def close(self) -> None:
        """Forget the cached figures."""
        self._figs.clear()
