"""Index maps of tiles at a scene's edge: the row-run build equals the per-pixel one, and GDAL."""
from functools import partial

import mercantile
import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, reproject, transform_bounds

import viewer
from viewer.core import read, sampling
from viewer.core.evaluate import evaluate
from viewer.core.sampling import _EPS, _from_indices, _from_row_runs
from viewer.core.tiles import tile_grid


def _per_pixel(px, py, inside, width, height):
    """The general build: every pixel's column and row copied where it is on the source."""
    cols = np.zeros(inside.shape, np.intp)
    rows = np.zeros(inside.shape, np.intp)
    np.copyto(cols, px, where=inside, casting="unsafe")
    np.copyto(rows, py, where=inside, casting="unsafe")
    np.minimum(cols, width - 1, out=cols)
    np.minimum(rows, height - 1, out=rows)
    return _from_indices(cols, rows, inside)


@pytest.mark.parametrize("seed", range(4))
def test_row_runs_give_the_per_pixel_map_for_linear_rows_partly_off_the_source(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(600):
        h, w = (int(v) for v in rng.integers(1, 260, 2))
        width, height = (int(v) for v in rng.integers(1, 4000, 2))
        step = rng.choice([0.05, 1.0, 7.0])
        x0 = rng.uniform(-width, 2 * width) + np.arange(h) * rng.normal(0, step)
        y0 = rng.uniform(-height, 2 * height) + np.arange(h) * rng.normal(0, step)
        dx, dy = np.full(h, rng.normal(0, step)), np.full(h, rng.normal(0, step))
        if rng.random() < 0.3:  # rows on whole pixels: ends exactly on the far edge
            x0, dx = np.round(x0), np.round(dx)
        if rng.random() < 0.2:
            x0[rng.integers(0, h)] = np.nan  # a row the transformer could not place
        dist = np.arange(w, dtype=np.float64)
        px = x0[:, None] + dx[:, None] * dist + _EPS
        py = y0[:, None] + dy[:, None] * dist + _EPS
        with np.errstate(invalid="ignore"):
            inside = (px >= _EPS) & (py >= _EPS) & (px <= width) & (py <= height)
        if not inside.any():
            continue
        checked += 1
        runs, ref = _from_row_runs(px, py, inside, width, height), _per_pixel(px, py, inside, width, height)
        assert runs.window == ref.window
        assert runs.flat.dtype == ref.flat.dtype and np.array_equal(runs.flat, ref.flat)
        assert (runs.inside is None) == (ref.inside is None)
        if ref.inside is not None:
            assert np.array_equal(runs.inside, ref.inside)
    assert checked > 50


def test_tile_across_the_scene_edge_matches_a_bare_gdal_warp(monkeypatch):
    """A z12 tile across the Landsat scene's western edge: the rows partly off the scene take the
    row-run build, and the tile's pixels are GDAL's nearest warp of the same grid."""
    used = []
    original = sampling._from_row_runs
    monkeypatch.setattr(sampling, "_from_row_runs", lambda *a: used.append(1) or original(*a))
    monkeypatch.setattr(read, "_tile_map", partial(read._tile_map, cache=False))  # built here, not an earlier test's
    path = viewer.get_catalog().image("LANDSAT/LC08/SAMPLE").bands[3].path  # B4
    with rasterio.open(path) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    t = mercantile.tile(west + 0.02, (south + north) / 2, 12)
    grid = tile_grid(12, t.x, t.y)
    layer = evaluate(viewer.Image("LANDSAT/LC08/SAMPLE").select("B4").node, grid)[0]
    ref = np.zeros((256, 256), np.uint16)
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, 1), ref, dst_transform=grid.transform, dst_crs="EPSG:3857",
                  resampling=Resampling.nearest, src_nodata=None, dst_nodata=0)
    values = np.where(layer.mask_or_ones() > 0, layer.values, 0).astype(np.uint16)
    assert used, "the tile did not take the row-run build"
    assert 0 < (ref > 0).sum() < ref.size  # partly on the scene
    assert np.mean(values == ref) >= 0.999
