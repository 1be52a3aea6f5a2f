"""View statistics and stretch presets against numpy on the same evaluated arrays."""
from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from viewer import Image, InvalidArgument
from viewer.core.evaluate import evaluate
from viewer.core.grid import Grid
from viewer.core.stats import PRESETS, band_stats, stats_grid, stretch_range

MERCATOR = CRS.from_epsg(3857)
#: A 1280 x 800 map view in Web Mercator over the Landsat sample (20 m pixels).
VIEW = Grid(MERCATOR, Affine(20, 0, -9737000, 0, -20, 3599000), 1280, 800)
TRUE_COLOUR = Image("LANDSAT/LC08/SAMPLE").select(["B4", "B3", "B2"])


def valid_values(image: Image, grid: Grid) -> list[np.ndarray]:
    out = []
    for layer in evaluate(image.node, stats_grid(grid)):
        valid = np.ones(layer.values.shape, bool) if layer.mask is None else layer.mask > 0
        out.append(layer.values[valid].astype(np.float64))
    return out


def test_stats_grid_subsamples_large_views_only():
    small = stats_grid(VIEW)
    assert (small.width, small.height) == (512, 320)
    np.testing.assert_allclose(small.bounds, VIEW.bounds)
    g = Grid(MERCATOR, Affine(20, 0, -9737000, 0, -20, 3599000), 400, 300)
    assert stats_grid(g) is g


def test_band_stats_match_numpy_on_the_evaluated_pixels():
    stats = band_stats(TRUE_COLOUR, VIEW)
    assert [s["band"] for s in stats] == ["B4", "B3", "B2"]
    for s, x in zip(stats, valid_values(TRUE_COLOUR, VIEW)):
        assert s["grid"] == {"width": 512, "height": 320}
        assert 0 < s["count"] == x.size < 512 * 320  # the view is wider than the scene
        assert s["min"] == x.min() and s["max"] == x.max()
        assert s["mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert s["std"] == pytest.approx(x.std(), rel=1e-12)
        for p in (1, 2, 5, 95, 98, 99):
            assert s["percentiles"][f"p{p}"] == pytest.approx(np.percentile(x, p), rel=1e-12)
    assert 6000 < stats[0]["percentiles"]["p2"] < stats[0]["percentiles"]["p98"] < 15000


def test_band_stats_count_only_unmasked_pixels():
    b4 = Image("LANDSAT/LC08/SAMPLE").select("B4")
    masked = b4.updateMask(b4.gt(9000))
    (s,) = band_stats(masked, VIEW, percentiles=(50,))
    (x,) = valid_values(b4, VIEW)
    assert s["count"] == int((x > 9000).sum()) and s["min"] > 9000
    assert s["percentiles"] == {"p50": pytest.approx(np.percentile(x[x > 9000], 50))}


@pytest.mark.parametrize("preset", PRESETS)
def test_stretch_presets(preset):
    ranges = stretch_range(TRUE_COLOUR, VIEW, preset)
    for (lo, hi), x in zip(ranges, valid_values(TRUE_COLOUR, VIEW)):
        if preset.endswith("sigma"):
            n = int(preset[0])
            want = (max(x.mean() - n * x.std(), x.min()), min(x.mean() + n * x.std(), x.max()))
        else:
            p = float(preset[:-1])
            want = (np.percentile(x, (100 - p) / 2), np.percentile(x, 100 - (100 - p) / 2))
        assert (lo, hi) == pytest.approx(want, rel=1e-12)
        assert lo < hi
    if preset == "100%":
        assert ranges[0] == (valid_values(TRUE_COLOUR, VIEW)[0].min(), valid_values(TRUE_COLOUR, VIEW)[0].max())


def test_stretch_widens_a_constant_band_and_refuses_empty_views():
    flat = Image.from_array(np.full((50, 60), 7, np.uint8))
    assert stretch_range(flat, Grid(None, Affine.identity(), 60, 50), "98%") == [(7.0, 8.0)]
    nowhere = Grid(MERCATOR, Affine(20, 0, 0, 0, -20, 0), 100, 100)
    (s,) = band_stats(Image("LANDSAT/LC08/SAMPLE").select("B4"), nowhere)
    assert s["count"] == 0 and s["mean"] is None and s["percentiles"]["p99"] is None
    with pytest.raises(InvalidArgument, match="band 'B4' has no valid pixels in this view"):
        stretch_range(Image("LANDSAT/LC08/SAMPLE").select("B4"), nowhere, "2sigma")


@pytest.mark.parametrize("call, message", [
    (lambda: stretch_range(TRUE_COLOUR, VIEW, "95%"), "stretch preset '95%' is not allowed; allowed: ['1sigma'"),
    (lambda: band_stats(TRUE_COLOUR, VIEW, percentiles=(50, 101)), "percentiles [101.0] are out of range"),
    (lambda: band_stats("B4", VIEW), "band_stats needs a viewer.Image, got str"),
    (lambda: band_stats(TRUE_COLOUR, (0, 0, 1, 1)), "must be a viewer Grid"),
])
def test_bad_arguments(call, message):
    with pytest.raises(InvalidArgument) as err:
        call()
    assert message in str(err.value)
