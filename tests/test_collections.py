"""ImageCollection reducers on the bundled dated Landsat pair, through the one evaluator
(tiles and computePixels), checked against numpy on the same arrays."""
from __future__ import annotations

import io

import numpy as np
import pytest

import viewer
from viewer.core.layers import image_layer
from viewer.core.tiles import render_tile, tile_grid
from viewer.core.evaluate import evaluate

COLLECTION = "LANDSAT/LC08/C01/T1_RT"
IDS = [f"{COLLECTION}/LC08_224077_20200518", f"{COLLECTION}/LC08_224078_20200518"]
#: A 200 x 400 grid at 60 m across the overlap of the two scenes and beyond it (EPSG:32621).
GRID = {"crsCode": "EPSG:32621", "dimensions": {"width": 200, "height": 900},
        "affineTransform": {"scaleX": 60, "shearX": 0, "translateX": 731005, "shearY": 0, "scaleY": -60,
                            "translateY": -2770005}}


def fetch(image: viewer.Image) -> np.ndarray:
    return viewer.data.computePixels({"expression": image, "grid": GRID, "fileFormat": "NUMPY_NDARRAY"})


@pytest.fixture(scope="module")
def scenes():
    """Each scene's B4 on the grid, and its validity (the files' nodata 0 is the mask)."""
    out = []
    for i in IDS:
        arr = fetch(viewer.Image(i).select(["B4"]))["B4"]
        mask = fetch(viewer.Image(i).select(["B4"]).mask())["B4"]
        out.append((arr.astype(np.float64), mask > 0))
    return out


def test_the_collection_is_dated_and_overlapping(scenes):
    col = viewer.ImageCollection(COLLECTION)
    assert col.size() == 2
    assert col.filter(viewer.Filter.date("2020-05-18", "2020-05-19")).size() == 2
    assert col.filterDate("2011-01-01", "2012-01-01").size() == 0
    (_, a), (_, b) = scenes
    assert (a & b).sum() > 10000 and (a & ~b).sum() > 1000 and (b & ~a).sum() > 1000


@pytest.mark.parametrize("name", ["median", "mean", "min", "max", "sum", "count", "mosaic"])
def test_reducers_equal_numpy_on_the_same_arrays(scenes, name):
    col = viewer.ImageCollection(COLLECTION).select(["B4"])
    got = fetch(getattr(col, name)())["B4"].astype(np.float64)
    (va, ma), (vb, mb) = scenes
    data = np.ma.masked_array(np.stack([va, vb]), ~np.stack([ma, mb]))
    if name == "mosaic":
        expected = np.where(mb, vb, np.where(ma, va, 0))  # the later image on top
    elif name == "count":
        expected = data.count(axis=0)
    else:
        fn = {"median": np.ma.median, "mean": np.ma.mean, "min": np.ma.min, "max": np.ma.max,
              "sum": np.ma.sum}[name]
        expected = np.ma.filled(fn(data, axis=0), 0)
    np.testing.assert_allclose(got, expected)


def test_percentile_and_quality_mosaic(scenes):
    col = viewer.ImageCollection(COLLECTION).map(lambda i: i.select(["B4", "B3"]))
    p = fetch(col.reduce(viewer.Reducer.percentile([25])))
    assert p.dtype.names == ("B4_p25", "B3_p25")
    (va, ma), (vb, mb) = scenes
    both = ma & mb
    np.testing.assert_allclose(p["B4_p25"][both], np.percentile(np.stack([va, vb]), 25, axis=0)[both])
    q = fetch(col.qualityMosaic("B4"))["B4"]
    np.testing.assert_array_equal(q[both], np.maximum(va, vb)[both])
    with pytest.raises(viewer.UnknownBand, match="quality band 'B9'"):
        col.qualityMosaic("B9")


def test_a_median_layer_renders_tiles_across_both_scenes():
    median = viewer.ImageCollection(COLLECTION).median()
    spec = image_layer(median, {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 11000})
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    for lon, lat in ((-54.642, -25.117), (-54.642, -25.253), (-54.638, -25.433)):  # 077 only, both, 078 only
        t = tms.tile(lon, lat, 12)
        png = render_tile(spec, t.z, t.x, t.y)
        from PIL import Image as PILImage

        rgba = np.asarray(PILImage.open(io.BytesIO(png)).convert("RGBA"))
        assert (rgba[..., 3] > 0).mean() > 0.2 and rgba[..., :3].max() > 0


def test_the_earth_engine_compute_pixels_example_runs_with_one_word_changed():
    import viewer as ee

    coords = [-54.642, -25.253]
    region = ee.Geometry.Point(coords)
    proj = ee.Projection("EPSG:4326").atScale(30).getInfo()
    scale_x = proj["transform"][0]
    scale_y = -proj["transform"][4]
    image = (ee.ImageCollection(COLLECTION)
             .filterBounds(region)
             .filterDate("2020-04-01", "2020-09-01")
             .median())
    request = {
        "expression": image,
        "fileFormat": "PNG",
        "bandIds": ["B4", "B3", "B2"],
        "grid": {
            "dimensions": {"width": 640, "height": 640},
            "affineTransform": {"scaleX": scale_x, "shearX": 0, "translateX": coords[0] - 320 * scale_x,
                                "shearY": 0, "scaleY": scale_y, "translateY": coords[1] - 320 * scale_y},
            "crsCode": proj["crs"],
        },
        "visualizationOptions": {"ranges": [{"min": 6000, "max": 11000}]},
    }
    image_png = ee.data.computePixels(request)
    from PIL import Image as PILImage

    rgba = np.asarray(PILImage.open(io.BytesIO(image_png)).convert("RGBA"))
    assert rgba.shape == (640, 640, 4) and (rgba[..., 3] > 0).mean() > 0.6 and rgba[..., :3].std() > 5


def test_collections_reject_mixed_bands_and_empty_reductions():
    col = viewer.ImageCollection([viewer.Image(IDS[0]).select(["B4"]), viewer.Image(IDS[1]).select(["B3"])])
    with pytest.raises(viewer.InvalidArgument, match="different bands"):
        col.median()
    with pytest.raises(viewer.InvalidArgument, match="empty"):
        viewer.ImageCollection(COLLECTION).filterDate("1999-01-01", "1999-02-01").mosaic()
    with pytest.raises(viewer.InvalidArgument, match="viewer.Reducer"):
        viewer.ImageCollection(COLLECTION).reduce("median")


def test_reduce_nodes_round_trip_through_json():
    from viewer.core.serialize import from_json, to_json

    img = viewer.ImageCollection(COLLECTION).reduce(viewer.Reducer.percentile([10, 90]))
    assert from_json(to_json(img)).node.key == img.node.key
    grid = tile_grid(12, 1425, 2320)
    assert len(evaluate(img.node, grid)) == 6
