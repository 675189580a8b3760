"""Region masks: exact polygon/cell overlap fractions on a Lambert grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from aqforecast.emissions.regions import (OUTSIDE, project_geometry, read_geojson,
                                          region_fractions)
from aqforecast.grid import LambertGrid, VerticalGrid
from aqforecast.io import InputFileError

REGIONS = Path(__file__).resolve().parents[1] / "data_sample" / "regions"


@pytest.fixture(scope="module")
def grid():
    return LambertGrid.centred("g", 30, 24, 3000.0, 120.3, 30.3, 25.0, 40.0, 120.5, 30.3,
                               VerticalGrid.stretched(5))


def _domain_box(grid):
    return shapely.box(grid.x_edges[0], grid.y_edges[0], grid.x_edges[-1], grid.y_edges[-1])


def test_fractions_sum_to_one_and_match_polygon_areas(grid):
    a = shapely.Polygon([(120.1, 30.1), (120.4, 30.15), (120.35, 30.45), (120.05, 30.35)])
    b = shapely.Polygon([(120.4, 30.15), (120.8, 30.1), (120.9, 30.6), (120.35, 30.45)])
    m = region_fractions(grid, [("A", a), ("B", b)])
    assert m.names == ("A", "B", OUTSIDE)
    assert m.fractions.shape == (3, grid.ny, grid.nx)
    np.testing.assert_allclose(m.fractions.sum(axis=0), 1.0, atol=1e-12)
    assert m.fractions.min() >= 0.0
    box = _domain_box(grid)
    for k, g in enumerate((a, b)):
        expect = project_geometry(g, grid).intersection(box).area
        got = m.fractions[k].sum() * grid.dx**2
        assert got == pytest.approx(expect, rel=1e-6)
    # a partial cell is a fraction, not 0/1 from a centre-point test
    assert np.any((m.fractions[0] > 0.01) & (m.fractions[0] < 0.99))


def test_real_city_polygons(grid):
    regions = [("Hangzhou", REGIONS / "330100.geojson"), ("Shaoxing", REGIONS / "330600.geojson"),
               ("Jiaxing", REGIONS / "330400.geojson")]
    m = region_fractions(grid, regions)
    np.testing.assert_allclose(m.fractions.sum(axis=0), 1.0, atol=1e-12)
    box = _domain_box(grid)
    for k, (_, path) in enumerate(regions):
        expect = project_geometry(read_geojson(path), grid).intersection(box).area
        assert m.fractions[k].sum() * grid.dx**2 == pytest.approx(expect, rel=1e-6)
    # West Lake / Hangzhou city centre (120.16E, 30.27N) is in Hangzhou; Shaoxing centre too
    idx = m.region_of_points(grid, [120.16, 120.58, 122.5], [30.27, 30.00, 30.3])
    assert [m.names[i] for i in idx] == ["Hangzhou", "Shaoxing", OUTSIDE]


def test_overlapping_regions_rejected(grid):
    a = shapely.box(120.1, 30.1, 120.5, 30.5)
    with pytest.raises(ValueError, match="overlaps"):
        region_fractions(grid, [("A", a), ("B", shapely.box(120.3, 30.2, 120.6, 30.4))])
    with pytest.raises(ValueError, match="reserved"):
        region_fractions(grid, [(OUTSIDE, a)])


def test_geojson_reader_forms_and_errors(tmp_path):
    poly = {"type": "Polygon", "coordinates": [[[120, 30], [121, 30], [121, 31], [120, 30]]]}
    for obj in (poly, {"type": "Feature", "geometry": poly, "properties": {}},
                {"type": "FeatureCollection",
                 "features": [{"type": "Feature", "geometry": poly, "properties": {}}]}):
        p = tmp_path / "r.geojson"
        p.write_text(json.dumps(obj))
        assert read_geojson(p).area == pytest.approx(0.5)
    p.write_text(json.dumps({"type": "Point", "coordinates": [120, 30]}))
    with pytest.raises(InputFileError, match="Polygon"):
        read_geojson(p)
    with pytest.raises(InputFileError, match="does not exist"):
        read_geojson(tmp_path / "missing.geojson")
