"""The cheap paths of a cold tile give what the expensive ones gave: CRS keys and comparisons, grid
hashing, a tile's bounds in the source CRS, palette colours and alpha clearing."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from viewer.core.approx import source_bounds
from viewer.core.grid import WEB_MERCATOR, WGS84, Grid, same_crs
from viewer.core.raster import Band, Raster
from viewer.core.tiles import tile_grid
from viewer.core.visualize import encode_png_planes, normalize_vis, palette_lut, rgba_planes, stretch, visualize

UTM16 = CRS.from_epsg(32616)


def test_same_crs_answers_as_rasterio() -> None:
    crss = [WEB_MERCATOR, WGS84, UTM16, CRS.from_epsg(32616), CRS.from_wkt(UTM16.to_wkt()), CRS.from_epsg(3413)]
    for a in crss:
        for b in crss:
            assert same_crs(a, b) == (a == b), (a, b)
    assert same_crs(None, None) and not same_crs(None, WGS84) and not same_crs(WGS84, None)


def test_equal_grids_hash_alike_and_survive_pickling() -> None:
    t = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 3400000.0)
    a, b = Grid(CRS.from_epsg(32616), t, 256, 256), Grid(CRS.from_epsg(32616), t, 256, 256)
    assert a is not b and a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert a.key == b.key == (tuple(t)[:6], UTM16.to_wkt(), 256, 256)
    c = pickle.loads(pickle.dumps(a))
    assert c == a and hash(c) == hash(a) and c.bounds == a.bounds == (500000.0, 3392320.0, 507680.0, 3400000.0)
    assert Grid(UTM16, t, 256, 255) != a


@pytest.mark.parametrize("z", [10, 13, 17])
def test_tile_bounds_in_a_source_crs_are_gdals(z: int) -> None:
    """The overview level is chosen from PROJ's transform_bounds on the thread's transformer; for a map
    tile over a UTM source it gives GDAL's box (to the last bits: the same algorithm and pipeline)."""
    x, y = 2 ** z * (180 - 87.4) // 360, None
    for dy in range(3):
        y = int(2 ** z * 0.4235) + dy
        g = tile_grid(z, int(x), y)
        ours = source_bounds(g, UTM16)
        gdal = transform_bounds(g.crs, UTM16, *g.bounds, densify_pts=21)
        assert ours == pytest.approx(gdal, rel=1e-12, abs=1e-6)
        assert source_bounds(g, WEB_MERCATOR) == g.bounds


def _raster(values: np.ndarray, mask: np.ndarray | None = None) -> Raster:
    g = Grid(UTM16, Affine(30.0, 0.0, 0.0, 0.0, -30.0, 0.0), values.shape[1], values.shape[0])
    return Raster((Band(values, mask),), g)


@pytest.mark.parametrize("dtype", ["uint16", "uint8", "float32"])
def test_palette_colours_are_the_ramp_of_the_stretched_values(dtype: str) -> None:
    rng = np.random.default_rng(1)
    hi = 255 if dtype == "uint8" else 20000
    values = rng.integers(0, hi, (160, 160)).astype(dtype)  # > 16384 pixels: the table path for integers
    vis = normalize_vis({"min": 10, "max": hi - 40, "gamma": 1.3, "palette": ["a52a2a", "ffff00", "006400"]}, 1)
    out = visualize(_raster(values), vis)
    expected = palette_lut(vis["palette"])[stretch(values, 10, hi - 40, 1.3)]
    for c in range(3):
        assert np.array_equal(out[c].values, expected[..., c])


def test_alpha_clears_colour_once_for_a_grey_layer() -> None:
    values = np.arange(200 * 200, dtype=np.uint16).reshape(200, 200) % 5000
    mask = np.ones(values.shape, np.float32)
    mask[:, :50] = 0.0
    mask[:10] = 0.5
    vis = normalize_vis({"min": 0, "max": 5000}, 1)
    planes, alpha = rgba_planes(visualize(_raster(values, mask), vis))
    grey = stretch(values, 0, 5000, 1.0)
    assert planes[0] is planes[1] is planes[2]
    assert np.array_equal(alpha, np.rint(mask * 255).astype(np.uint8))
    assert np.array_equal(planes[0], np.where(alpha == 0, 0, grey))
    assert encode_png_planes(planes, alpha) == encode_png_planes([planes[0].copy()] * 3, alpha)
