"""The Earth Engine-style API: the seed examples, collections, geometry, projection, getInfo."""
import io

import numpy as np
import pytest
from PIL import Image as PILImage

import viewer
from viewer.core.evaluate import evaluate


def test_seed_get_pixels_example_runs_with_viewer_for_ee():
    """../shared/seeds/001: `ee` -> `viewer`; collection id, region changed to the sample's.

    The sample carries no acquisition date (none can be derived honestly), and like Earth
    Engine, filterDate drops undated images; so the `.filterDate(...)` line is left out.
    """
    ee = viewer  # the one-word change
    # Region of interest.
    coords = [
        -75.64,
        37.70,
    ]
    region = ee.Geometry.Point(coords)

    # Get a Sentinel-2 image.
    image = (ee.ImageCollection('COPERNICUS/S2')
             .filterBounds(region)
             .sort('CLOUD_COVERAGE_ASSESSMENT')
             .first())
    image_id = image.getInfo()['id']

    # Make a projection to discover the scale in degrees.
    proj = ee.Projection('EPSG:4326').atScale(10).getInfo()

    # Get scales out of the transform.
    scale_x = proj['transform'][0]
    scale_y = -proj['transform'][4]

    # Make a request object.
    request = {
        'assetId': image_id,
        'fileFormat': 'PNG',
        'bandIds': ['B4', 'B3', 'B2'],
        'grid': {
            'dimensions': {
                'width': 640,
                'height': 640
            },
            'affineTransform': {
                'scaleX': scale_x,
                'shearX': 0,
                'translateX': coords[0],
                'shearY': 0,
                'scaleY': scale_y,
                'translateY': coords[1]
            },
            'crsCode': proj['crs'],
        },
        'visualizationOptions': {'ranges': [{'min': 0, 'max': 3000}]},
    }

    image_png = ee.data.getPixels(request)
    # Do something with the image...
    assert image_id == "COPERNICUS/S2/SAMPLE"
    assert scale_x == pytest.approx(8.983152841195214e-05)
    png = PILImage.open(io.BytesIO(image_png))
    assert png.mode == "RGB"  # inside the scene everywhere: opaque, so no alpha channel is written
    rgba = np.asarray(png.convert("RGBA"))
    assert rgba.shape == (640, 640, 4)
    assert (rgba[..., 3] == 255).all()
    assert 20 < rgba[..., :3].mean() < 200 and rgba[..., :3].std() > 5  # real imagery, not flat


def test_seed_mask_example_images():
    """../shared/seeds/000 (the non-Map parts; the Map lines are in the UI tests)."""
    img = viewer.Image('COPERNICUS/S2/SAMPLE')
    multi_band_mask_img = img.mask()
    single_band_mask_img = img.select('B1').mask()
    assert multi_band_mask_img.bandNames().getInfo() == img.bandNames().getInfo()
    assert single_band_mask_img.bandNames().getInfo() == ["B1"]
    layer = evaluate(single_band_mask_img.node, img.select("B1").bands[0].grid)[0]
    assert layer.values.min() == 1.0  # valid everywhere inside the scene


def test_get_info_lists_bands_with_native_grids_and_properties():
    info = viewer.Image("COPERNICUS/S2/SAMPLE").getInfo()
    assert info["id"] == "COPERNICUS/S2/SAMPLE"
    bands = {b["id"]: b for b in info["bands"]}
    assert set(bands) == {f"B{i}" for i in range(1, 13)} | {"B8A"}
    assert bands["B2"]["crs"] == "EPSG:32618" and bands["B2"]["crs_transform"][0] == 10.0
    assert bands["B5"]["crs_transform"][0] == 20.0 and bands["B1"]["crs_transform"][0] == 60.0
    assert bands["B2"]["dimensions"] == [bands["B5"]["dimensions"][0] * 2, bands["B5"]["dimensions"][1] * 2]
    assert bands["B2"]["data_type"]["precision"] == "int" and bands["B2"]["data_type"]["max"] == 65535
    assert info["properties"]["system:footprint"]["type"] == "Polygon"
    assert not any("date" in k.lower() or "time" in k.lower() for k in info["properties"])


def test_mixed_resolution_bands_share_one_output_grid():
    img = viewer.Image("COPERNICUS/S2/SAMPLE").select(["B2", "B5", "B1"])
    arr = viewer.data.computePixels({"expression": img, "fileFormat": "NUMPY_NDARRAY"})
    assert arr.shape == tuple(reversed(img.getInfo()["bands"][0]["dimensions"]))  # native grid of first band
    # the 20 m band on the 10 m grid repeats each source pixel 2x2 (nearest)
    b5 = arr["B5"]
    assert np.array_equal(b5[0:2, 0:2], np.full((2, 2), b5[0, 0]))


def test_select_regex_rename_add_bands_and_constants():
    img = viewer.Image("LANDSAT/LC08/SAMPLE")
    assert img.select("B[2-4]").bandNames().getInfo() == ["B2", "B3", "B4"]
    assert img.select(["B4", "B3"], ["red", "green"]).bandNames().getInfo() == ["red", "green"]
    assert img.select(0, 1).bandNames().getInfo() == ["B1", "B2"]
    nd = img.normalizedDifference(["B5", "B4"]).rename("ndvi")
    both = img.select("B4").addBands(nd)
    assert both.bandNames().getInfo() == ["B4", "ndvi"]
    over = both.addBands(viewer.Image(7).rename("B4"), overwrite=True)
    assert over.bandNames().getInfo() == ["B4", "ndvi"]
    grid = img.bands[0].grid.window(10, 10, 4, 4)
    layers = evaluate(over.node, grid)
    assert (layers[0].values == 7).all()
    assert -1 <= layers[1].values.min() and layers[1].values.max() <= 1


def test_arithmetic_and_comparisons_hand_checked():
    a = viewer.Image.from_array(np.array([[1, 2], [3, 4]], np.uint16))
    grid = a.bands[0].grid
    v = lambda img: evaluate(img.node, grid)[0].values.tolist()  # noqa: E731
    assert v(a.add(1)) == [[2, 3], [4, 5]]
    assert v(a.subtract(5)) == [[-4, -3], [-2, -1]]
    assert v(a.multiply(2)) == [[2, 4], [6, 8]]
    assert v(a.divide(2)) == [[0.5, 1.0], [1.5, 2.0]]
    assert v(a.gt(2)) == [[0, 0], [1, 1]] and v(a.lte(2)) == [[1, 1], [0, 0]]
    assert v(a.eq(3).Or(a.eq(1))) == [[1, 0], [1, 0]] and v(a.gt(1).And(a.lt(4))) == [[0, 1], [1, 0]]
    assert v(a.neq(2).Not()) == [[0, 1], [0, 0]]
    assert v(a.bitwiseAnd(1)) == [[1, 0], [1, 0]] and v(a.rightShift(1)) == [[0, 1], [1, 2]]
    assert v(a.gte(3)) == v(a.lt(3).Not())


def test_image_collection_filters_sort_first_size_tolist():
    col = viewer.ImageCollection("LANDSAT/LC08")
    assert col.size().getInfo() == 1
    inside = viewer.Geometry.Point([-87.45, 30.70])
    outside = viewer.Geometry.Point([10, 10])
    assert col.filterBounds(inside).size() == 1 and col.filterBounds(outside).size() == 0
    assert col.filterMetadata("CLOUD_COVER", "less_than", 50).size() == 1
    assert col.filterMetadata("CLOUD_COVER", "greater_than", 50).size() == 0
    assert col.filterDate("2000-01-01", "2030-01-01").size() == 0  # undated images drop, as in EE
    merged = viewer.ImageCollection([viewer.Image("COPERNICUS/S2/SAMPLE"), viewer.Image("LANDSAT/LC08/SAMPLE")])
    ids = [i.getInfo()["id"] for i in merged.sort("CLOUD_COVER").toList(5)]
    assert ids == ["LANDSAT/LC08/SAMPLE", "COPERNICUS/S2/SAMPLE"]  # images without the property go last
    classes = viewer.ImageCollection("VIEWER/SAMPLE_CLASSES")
    assert classes.size() == 2


def test_geometry_and_projection_get_info():
    p = viewer.Geometry.Point([1.5, 2.5]).getInfo()
    assert p == {"type": "Point", "coordinates": [1.5, 2.5]}
    r = viewer.Geometry.Rectangle([0, 0, 2, 1]).getInfo()
    assert r["type"] == "Polygon" and r["coordinates"][0][0] == r["coordinates"][0][-1]
    poly = viewer.Geometry.Polygon([[0, 0], [1, 0], [1, 1]]).getInfo()
    assert poly["coordinates"][0][-1] == [0, 0]
    proj = viewer.Projection("EPSG:32616").atScale(30).getInfo()
    assert proj == {"type": "Projection", "crs": "EPSG:32616", "transform": [30.0, 0.0, 0.0, 0.0, 30.0, 0.0]}


def test_clip_masks_outside_the_geometry():
    img = viewer.Image("LANDSAT/LC08/SAMPLE").select("B4")
    small = viewer.Geometry.Rectangle([-87.46, 30.69, -87.44, 30.71])
    arr = viewer.data.computePixels({"expression": img.clip(small), "fileFormat": "NUMPY_NDARRAY"})
    valid = arr["B4"] > 0
    assert 0 < valid.sum() < 0.05 * valid.size
    rows, cols = np.nonzero(valid)
    assert rows.max() - rows.min() < 120 and cols.max() - cols.min() < 120


def test_open_any_geotiff_and_pixel_coordinate_arrays(tmp_path):
    import rasterio
    from affine import Affine

    data = np.arange(20, dtype=np.float32).reshape(4, 5)
    with rasterio.open(tmp_path / "x.tif", "w", driver="GTiff", width=5, height=4, count=1, dtype="float32",
                       crs="EPSG:3857", transform=Affine(100, 0, 0, 0, -100, 400)) as dst:
        dst.write(data, 1)
        dst.set_band_description(1, "elev")
    img = viewer.Image.open(tmp_path / "x.tif")
    assert img.bandNames().getInfo() == ["elev"]
    arr = viewer.data.computePixels({"expression": img.multiply(2), "fileFormat": "NUMPY_NDARRAY"})
    assert np.array_equal(arr["elev"], data * 2)
    plain = viewer.Image.from_array(np.zeros((3, 30, 40), np.uint8))
    info = plain.getInfo()
    assert info["bands"][0]["crs"] is None and info["bands"][0]["dimensions"] == [40, 30]
