"""clip() by a polygon across the antimeridian: Earth Engine reads [[179, ..], [-179, ..], ..] as
2° wide, not as the 358° between; the pixels on both sides of 180° are inside, the rest outside."""
from __future__ import annotations

import numpy as np
import pytest

import viewer
from viewer import Image
from viewer.core.grid import split_at_antimeridian

ACROSS = {"type": "Polygon", "coordinates": [[[179, -1], [-179, -1], [-179, 1], [179, 1], [179, -1]]]}


def _valid_columns(image: Image, geometry: dict, row: int = 10) -> np.ndarray:
    out = viewer.data.computePixels({"expression": image.clip(geometry), "fileFormat": "NUMPY_NDARRAY"})
    return np.nonzero(out[out.dtype.names[0]][row])[0]


def _lonlat_image(west: float) -> Image:
    """100 x 20 pixels of 0.1°, from ``west`` eastwards, latitudes 1..-1, all 1."""
    return Image.from_array(np.ones((20, 100), np.uint8), crs="EPSG:4326", transform=[0.1, 0, west, 0, -0.1, 1.0])


@pytest.mark.parametrize("west, inside", [(170.0, range(90, 100)), (-180.0, range(0, 10))])
def test_a_polygon_across_180_clips_both_sides_of_it(west, inside):
    assert list(_valid_columns(_lonlat_image(west), ACROSS)) == list(inside)


@pytest.mark.parametrize("side, inside", [("east", range(40, 50)), ("west", range(0, 10))])
def test_in_web_mercator_too(side, inside):
    edge = 20037508.342789244  # 180° in EPSG:3857
    px = 2 * edge / 360 / 10  # 0.1°
    west = edge - 50 * px if side == "east" else -edge  # 175°..180° or -180°..-175°
    image = Image.from_array(np.ones((20, 50), np.uint8), crs="EPSG:3857", transform=[px, 0, west, 0, -px, 10 * px])
    assert list(_valid_columns(image, ACROSS)) == list(inside)


def test_parts_holes_and_polygons_that_do_not_cross():
    other = [[[10, 0], [11, 0], [11, 1], [10, 1], [10, 0]]]
    holed = [[[178, -2], [-178, -2], [-178, 2], [178, 2], [178, -2]],
             [[179.5, -0.5], [-179.5, -0.5], [-179.5, 0.5], [179.5, 0.5], [179.5, -0.5]]]
    split = split_at_antimeridian({"type": "MultiPolygon", "coordinates": [other, holed]})
    assert split["type"] == "MultiPolygon" and split["coordinates"][0] == other
    east = [p for p in split["coordinates"][1:] if p[0][0][0] > 0]
    west = [p for p in split["coordinates"][1:] if p[0][0][0] < 0]
    assert len(east) == len(west) == 1 and len(east[0]) == len(west[0]) == 2  # each half keeps its half-hole
    assert max(x for x, _ in east[0][0]) == 180.0 and min(x for x, _ in west[0][0]) == -180.0
    assert split_at_antimeridian({"type": "Polygon", "coordinates": other}) == {"type": "Polygon", "coordinates": other}
    cols = _valid_columns(_lonlat_image(170.0), {"type": "Polygon", "coordinates": holed}, row=10)
    assert list(cols) == list(range(80, 95))  # 178°..179.5°: the hole's 179.5°..180° is outside
