"""Image.reduceRegion (Earth Engine style) against numpy on the same pixels fetched with computePixels."""
from __future__ import annotations

import numpy as np
import pytest

import viewer
from viewer.core.regions import region_grid

RECT = viewer.Geometry.Rectangle([-87.45, 30.70, -87.40, 30.75])
TRIANGLE = viewer.Geometry.Polygon([[[-87.45, 30.70], [-87.40, 30.70], [-87.45, 30.75], [-87.45, 30.70]]])


def pixels(image: viewer.Image, geometry, scale=30.0):
    """The image's values and validity inside ``geometry`` on the same grid reduceRegion uses."""
    grid = region_grid(image, geometry, scale)
    req = {"grid": grid.to_dict(), "fileFormat": "NUMPY_NDARRAY"}
    values = viewer.data.computePixels({**req, "expression": image})
    valid = viewer.data.computePixels({**req, "expression": image.clip(geometry).mask()})
    return values, valid


@pytest.mark.parametrize("geometry", [RECT, TRIANGLE], ids=["rectangle", "triangle"])
@pytest.mark.parametrize("name, fn", [("mean", np.mean), ("median", np.median), ("min", np.min), ("max", np.max),
                                      ("sum", np.sum), ("stdDev", np.std), ("count", np.size)])
def test_reduce_region_matches_numpy(geometry, name, fn):
    img = viewer.Image("LANDSAT/LC08/SAMPLE").select(["B4", "B5"])
    got = img.reduceRegion(getattr(viewer.Reducer, name)(), geometry, 30)
    values, valid = pixels(img, geometry)
    for band in ("B4", "B5"):
        v = values[band][valid[band] > 0].astype(np.float64)
        assert v.size > 1000
        assert got[band] == pytest.approx(fn(v))


def test_triangle_counts_about_half_the_rectangle():
    img = viewer.Image("LANDSAT/LC08/SAMPLE").select(["B4"])
    full = img.reduceRegion(viewer.Reducer.count(), RECT, 30)["B4"]
    half = img.reduceRegion(viewer.Reducer.count(), TRIANGLE, 30)["B4"]
    assert 0.45 < half / full < 0.55


def test_masked_pixels_are_left_out_and_class_areas():
    img = viewer.Image("LANDSAT/LC08/SAMPLE")
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3)
    clear = img.select(["B4"]).updateMask(cloud.Not())
    n_all = img.select(["B4"]).reduceRegion(viewer.Reducer.count(), RECT, 30)["B4"]
    n_clear = clear.reduceRegion(viewer.Reducer.count(), RECT, 30)["B4"]
    n_cloud = cloud.selfMask().reduceRegion(viewer.Reducer.count(), RECT, 30)
    assert n_clear + list(n_cloud.values())[0] == n_all and n_clear < n_all
    freq = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES").reduceRegion(viewer.Reducer.frequencyHistogram(), RECT, 30)
    counts = freq["classification"]
    assert sum(counts.values()) == n_all and set(counts) <= {"0", "1", "2", "3", "255"}


def test_percentiles_min_max_and_errors():
    img = viewer.Image("LANDSAT/LC08/SAMPLE").select(["B4"])
    values, valid = pixels(img, RECT)
    v = values["B4"][valid["B4"] > 0].astype(float)
    p = img.reduceRegion(viewer.Reducer.percentile([10, 90]), RECT, 30)
    assert p == pytest.approx({"B4_p10": np.percentile(v, 10), "B4_p90": np.percentile(v, 90)})
    mm = img.reduceRegion(viewer.Reducer.minMax(), RECT, 30)
    assert mm == {"B4_min": v.min(), "B4_max": v.max()}
    with pytest.raises(viewer.LimitExceeded, match="maxPixels"):
        img.reduceRegion(viewer.Reducer.mean(), RECT, 1, maxPixels=1000)
    with pytest.raises(viewer.InvalidArgument, match="scale"):
        img.reduceRegion(viewer.Reducer.mean(), RECT, -5)
    with pytest.raises(viewer.InvalidArgument, match="not allowed in reduceRegion"):
        img.reduceRegion("mean", RECT, 30)
    outside = viewer.Geometry.Rectangle([10.0, 10.0, 10.01, 10.01])
    assert img.reduceRegion(viewer.Reducer.mean(), outside, 30) == {"B4": None}
