"""Anywhere on Earth (issue 10): sources across the antimeridian and over the poles, on decoded tile pixels.

Small synthetic GeoTIFFs with known values: west of 180 degrees value 1 (grey 128 with
min 0, max 2), east of it value 2 (grey 255). Tiles ``x = 2**z - 1`` (just west of the
line) and ``x = 0`` (just east) must both show their half, and "fit" (the layer's
longitude/latitude and Web Mercator bounds) must frame the whole source.
"""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image as PILImage
from pyproj import Transformer
from rasterio.warp import Resampling, reproject

from viewer import Image
from viewer.core.evaluate import evaluate
from viewer.core.grid import (HALF_WORLD, MAX_LATITUDE, WEB_MERCATOR, Grid, center_long, lonlat_bounds,
                              mercator_bounds)
from viewer.core.layers import class_layer, describe, image_layer
from viewer.core.tiles import empty_tile, render_rgba, render_tile, tile_grid, tile_in_footprint

WEST, EAST = 128, 255  # value 1 and value 2 through min 0, max 2


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))


def from_origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)


def _write(path, crs, transform, values: np.ndarray) -> str:
    h, w = values.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="uint8", crs=crs,
                       transform=transform, nodata=0) as ds:
        ds.write(values, 1)
    return str(path)


@pytest.fixture
def geographic(tmp_path) -> str:
    """EPSG:4326 stored at 170..190 E, 10 S..10 N (0.1 degree pixels): 1 west of 180, 2 east."""
    v = np.ones((200, 200), np.uint8)
    v[:, 100:] = 2
    return _write(tmp_path / "geo.tif", "EPSG:4326", from_origin(170, 10, 0.1, 0.1), v)


@pytest.fixture
def utm60(tmp_path) -> str:
    """A UTM zone 60N scene (1 km pixels) from 175.5 E to 182.4 E: 1 west of 180, 2 east."""
    t = Transformer.from_crs("EPSG:32660", "EPSG:4326", always_xy=True)
    cols, rows = np.meshgrid(np.arange(500) + 0.5, np.arange(500) + 0.5)
    lon, _ = t.transform(600_000 + cols * 1000, 500_000 - rows * 1000)
    v = np.where(np.asarray(lon) > 0, 1, 2).astype(np.uint8)
    return _write(tmp_path / "utm.tif", "EPSG:32660", from_origin(600_000, 500_000, 1000, 1000), v)


@pytest.fixture
def north_pole(tmp_path) -> str:
    """EPSG:3413 (polar stereographic north) 4000 km square centred on the pole: 1 where x < 0, 2 where x > 0."""
    v = np.ones((400, 400), np.uint8)
    v[:, 200:] = 2
    return _write(tmp_path / "pole.tif", "EPSG:3413", from_origin(-2_000_000, 2_000_000, 10_000, 10_000), v)


def _tile(spec, z, x, y) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(render_tile(spec, z, x, y))).convert("RGBA"))


def _layer(path, **kw):
    return image_layer(Image.open(path), {"min": 0, "max": 2}, **kw)


# reading across the antimeridian -------------------------------------------------------------
@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_geographic_source_across_180_is_drawn_on_both_sides(geographic, resampling):
    spec = _layer(geographic, resampling=resampling)
    z, last = 4, 2 ** 4 - 1
    y = 7  # 0 .. 21.9 N
    west, east = _tile(spec, z, last, y), _tile(spec, z, 0, y)
    # source rows 0..10 N; 170..180 is the right 10/22.5 of tile 15, 180..190 the left of tile 0
    row = 200  # about 2.3 N
    assert west[row, 250, 3] == 255 and west[row, 250, 0] == WEST
    assert east[row, 5, 3] == 255 and east[row, 5, 0] == EAST
    assert west[row, 100, 3] == 0  # 163 E: outside
    assert east[row, 150, 3] == 0  # 171 W: outside
    # how much: 10 of the tile's 22.5 degrees on each side
    for tile in (west, east):
        cols = (tile[row, :, 3] > 0).sum()
        assert abs(cols - 256 * 10 / 22.5) <= 2
    assert render_tile(spec, z, 8, y) == empty_tile()  # far away: culled


def test_sampler_matches_gdal_across_180(geographic):
    """The nearest sampler wraps longitudes like GDAL's warper (CENTER_LONG): same pixels as a bare warp."""
    grid = tile_grid(4, 0, 7)
    ours = evaluate(Image.open(geographic).node, grid)[0]
    dst = np.zeros((2, 256, 256), np.uint8)
    with rasterio.open(geographic) as ds:
        reproject(rasterio.band(ds, 1), dst, dst_transform=grid.transform, dst_crs=grid.crs,
                  resampling=Resampling.nearest, dst_alpha=2, num_threads=1)
    valid = ours.mask > 0
    assert valid.sum() > 10_000
    np.testing.assert_array_equal(valid, dst[1] > 0)
    np.testing.assert_array_equal(ours.values[valid], dst[0][valid])
    assert set(np.unique(ours.values[valid])) == {2}


def test_utm_scene_across_180_is_drawn_and_framed(utm60):
    spec = _layer(utm60)
    z, y = 5, 15  # 0 .. 11.2 N
    west, east = _tile(spec, z, 2 ** z - 1, y), _tile(spec, z, 0, y)
    assert set(np.unique(west[..., 0][west[..., 3] > 0])) == {WEST}
    assert set(np.unique(east[..., 0][east[..., 3] > 0])) == {EAST}
    assert west[250, 250, 3] == 255 and east[250, 5, 3] == 255
    assert render_tile(spec, z, 16, y) == empty_tile()
    w, s, e, n = describe(spec)["bounds_wgs84"]
    assert 175 < w < 180 < e < 185 and e - w < 10  # not the whole world
    left, bottom, right, top = mercator_bounds(spec.node.native_grid())
    assert left < HALF_WORLD < right and right - left < 1_000_000


def test_fit_frames_a_geographic_source_across_180(geographic):
    grid = Image.open(geographic).native_grid()
    assert lonlat_bounds(grid) == (170.0, -10.0, 190.0, 10.0)
    assert describe(_layer(geographic))["bounds_wgs84"] == [170.0, -10.0, 190.0, 10.0]
    left, bottom, right, top = grid.bounds_in(WEB_MERCATOR)
    assert left == pytest.approx(HALF_WORLD * 170 / 180) and right == pytest.approx(HALF_WORLD * 190 / 180)
    assert bottom == pytest.approx(-top)
    assert center_long(grid.crs, grid.transform, grid.width, grid.height) == pytest.approx(180.0)


def test_a_view_across_the_line_sees_both_halves(geographic):
    """A map view centred on 180 degrees (x beyond the world's edge, as a wrapping map sends it)."""
    spec = class_layer(Image.open(geographic), classes=[{"id": 1, "name": "west", "color": "red"},
                                                        {"id": 2, "name": "east", "color": "blue"}])
    res = 2 * HALF_WORLD / 2 ** 12
    x0 = HALF_WORLD - 100 * res
    grid = Grid(WEB_MERCATOR, Affine(res, 0, x0, 0, -res, 100 * res), 200, 200)
    out = render_rgba(spec, grid)
    assert tuple(out[150, 50]) == (255, 0, 0, 255)  # 179.1 E
    assert tuple(out[150, 150]) == (0, 0, 255, 255)  # 180.9 E (= 179.1 W)


def test_unmask_keeps_the_footprint_across_180(geographic):
    """The footprint (``unmask(sameFootprint=True)``) wraps longitudes like the read."""
    img = Image.open(geographic).unmask(7)
    band = evaluate(img.node, tile_grid(4, 0, 7))[0]
    assert band.values[200, 5] == 2 and band.mask[200, 5] == 1  # data east of 180 stays data
    assert band.mask[200, 200] == 0  # outside the source stays outside


# poles ---------------------------------------------------------------------------------------
def test_polar_source_reaches_the_map_edge(north_pole):
    spec = _layer(north_pole)
    left, bottom, right, top = mercator_bounds(spec.node.native_grid())
    assert (left, right) == (pytest.approx(-HALF_WORLD), pytest.approx(HALF_WORLD))
    assert top == pytest.approx(HALF_WORLD)  # up to Mercator's limit, not infinite
    assert 60 < lonlat_bounds(spec.node.native_grid())[1] < 66  # the square's corners reach 64.3 N
    z = 3
    seen = set()
    for x in range(2 ** z):  # every tile of the top row, 66.5 .. 85.05 N, is covered
        tile = _tile(spec, z, x, 0)
        assert tile[0, :, 3].min() == 255 and tile[255, :, 3].min() == 255
        seen |= set(np.unique(tile[..., 0]))
    assert seen == {WEST, EAST}
    assert render_tile(spec, z, 0, 3) == empty_tile()  # the tropics: culled


def test_south_polar_and_global_sources_have_finite_map_bounds(tmp_path):
    south = _write(tmp_path / "south.tif", "EPSG:3031", from_origin(-3_300_000, 3_300_000, 10_000, 10_000),
                   np.ones((660, 660), np.uint8))
    b = mercator_bounds(Image.open(south).native_grid())
    assert b[1] == pytest.approx(-HALF_WORLD) and b[3] < -6_000_000
    world = _write(tmp_path / "world.tif", "EPSG:4326", from_origin(-180, 90, 1, 1), np.ones((180, 360), np.uint8))
    grid = Image.open(world).native_grid()
    assert grid.bounds_in(WEB_MERCATOR) == pytest.approx((-HALF_WORLD, -HALF_WORLD, HALF_WORLD, HALF_WORLD))
    assert lonlat_bounds(grid) == (-180.0, -90.0, 180.0, 90.0)
    assert MAX_LATITUDE == pytest.approx(85.0511287798)
    spec = _layer(south)
    tile = _tile(spec, 2, 1, 3)  # 66.5 .. 85.05 S
    assert tile[..., 3].min() == 255


def test_greenland_in_polar_stereographic(tmp_path):
    path = _write(tmp_path / "gl.tif", "EPSG:3413", from_origin(-700_000, -600_000, 10_000, 10_000),
                  np.ones((280, 160), np.uint8))
    spec = _layer(path)
    w, s, e, n = lonlat_bounds(spec.node.native_grid())
    assert -100 < w < -90 and 10 < e < 15 and 55 < s < 60 and 84 < n < 85
    # Nuuk (51.7 W, 64.2 N) is inside, at zoom 6
    z = 6
    x = math.floor((-51.7 + 180) / 360 * 2 ** z)
    lat = math.radians(64.2)
    y = math.floor((1 - math.log(math.tan(lat) + 1 / math.cos(lat)) / math.pi) / 2 * 2 ** z)
    assert tile_in_footprint(spec, tile_grid(z, x, y))
    assert (_tile(spec, z, x, y)[..., 3] == 255).any()


def test_legend_counts_native_pixels_across_180(geographic):
    """A view centred on 180 degrees counts the source's own pixels on both sides of the line."""
    from viewer.core.class_stats import view_class_counts

    img = Image.open(geographic)
    res = 2 * HALF_WORLD / 2 ** 12
    view = Grid(WEB_MERCATOR, Affine(res, 0, HALF_WORLD - 100 * res, 0, -res, 100 * res), 200, 200)
    counts = {e["id"]: e["count"] for e in view_class_counts(img, view, classes={1: "west", 2: "east"})}
    assert counts[1] == counts[2] > 0  # symmetric about the line
    west_only = Grid(WEB_MERCATOR, Affine(res, 0, -HALF_WORLD, 0, -res, 100 * res), 100, 100)  # 180 .. 171.2 W
    counts = {e["id"]: e["count"] for e in view_class_counts(img, west_only, classes={1: "west", 2: "east"})}
    assert counts[1] == 0 and counts[2] > 0


@pytest.mark.parametrize("fixture, zooms", [("utm60", (5, 6, 7, 8)), ("north_pole", (3, 4, 5)),
                                           ("turned", (8, 9, 10))])
def test_tiles_culled_off_a_projected_scene_would_have_been_empty(request, fixture, zooms):
    """A projected scene's box in map coordinates is larger than the scene (its edges turn); tiles in
    the box but off the scene are answered empty without being drawn. None that is culled has a pixel,
    and some are culled where the edges turn."""
    import morecantile

    spec = _layer(request.getfixturevalue(fixture))
    w, s, e, n = describe(spec)["bounds_wgs84"]
    tms = morecantile.tms.get("WebMercatorQuad")
    culled = drawn = 0
    for z in zooms:
        for t in tms.tiles(max(w, -180), max(s, -85), min(e, 180), min(n, 85), [z]):
            grid = tile_grid(t.z, t.x, t.y)
            if tile_in_footprint(spec, grid):
                drawn += 1
                continue
            culled += 1
            assert render_rgba(spec, grid)[..., 3].max() == 0, (t.z, t.x, t.y)  # what drawing it gives
            assert render_tile(spec, t.z, t.x, t.y) == empty_tile()
    assert drawn and (culled or fixture != "turned")


@pytest.fixture
def turned(tmp_path) -> str:
    """A UTM zone 33N scene at 60-64 N, 3 degrees east of its central meridian: its edges turn by about
    3 degrees in Web Mercator, so the corners of its box there are off the scene."""
    return _write(tmp_path / "turned.tif", "EPSG:32633", from_origin(620_000, 7_100_000, 2000, 2000),
                  np.ones((200, 200), np.uint8))
