"""Maps render to PNG offline (networking blocked), from local Natural Earth and GeoJSON files."""

from __future__ import annotations

import socket
import urllib.request

from pathlib import Path

import numpy as np
import pytest

from aqforecast.products import aqi, maps

pytest.importorskip("cartopy")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("network access attempted during an offline map test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_map_renders_offline(tmp_path, shared_data, no_network):
    ne = Path(maps.__file__).resolve().parents[1] / "data" / "natural_earth"  # packaged copy
    lon, lat = np.meshgrid(np.linspace(118.0, 123.0, 40), np.linspace(27.0, 31.5, 36))
    field = 30 + 90 * np.exp(-((lon - 120.2) ** 2 + (lat - 30.2) ** 2) / 0.5)
    field[0, 0] = np.nan
    geo = sorted((shared_data / "boundaries" / "cnmaps_amap_geojson").glob("3*.geojson"))
    out = maps.plot_field(
        field, lon, lat, tmp_path / "pm25_day1.png", title="PM2.5 day 1", units="ug m-3",
        aqi_scale="HJ633-2026", aqi_bounds=[0, *aqi.concentration_breaks("PM2.5", "24h")],
        stations=(np.array([120.2, 121.4, 119.0]), np.array([30.2, 31.2, 29.0])),
        station_values=[75.0, np.nan, 20.0], boundaries=geo[:3], natural_earth=ne)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    out2 = maps.plot_field(field, lon, lat, tmp_path / "plain.png", projection="platecarree",
                           cmap="magma", natural_earth=ne)
    assert out2.stat().st_size > 5_000


def test_natural_earth_search_and_errors(tmp_path, shared_data):
    assert maps.natural_earth_dir(Path(maps.__file__).resolve().parents[1] / "data" /
                                  "natural_earth").is_dir()
    with pytest.raises(FileNotFoundError, match="coastline"):
        maps.natural_earth_dir(tmp_path)
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "Topology"}')
    with pytest.raises(ValueError, match="not a GeoJSON"):
        maps._geojson_geometries(bad)


def test_aqi_colormap():
    cmap, norm, b = maps.aqi_colormap("HJ633-2012")
    assert b == [0, 50, 100, 150, 200, 300, 500] and cmap.N == 6
    assert norm(75) == 1 and norm(301) == 5
    _, _, b = maps.aqi_colormap("EPA-2024", [0, 9.0, 35.4, 55.4, 125.4, 225.4])
    assert b[-1] == pytest.approx(450.8)
