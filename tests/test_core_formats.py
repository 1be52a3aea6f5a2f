"""Every file format round-trips: decode the bytes and compare pixels, georeferencing and mask."""
import io

import numpy as np
import rasterio
from affine import Affine
from PIL import Image as PILImage

import viewer
from viewer.core.evaluate import evaluate
from viewer.core.grid import Grid, parse_crs

T = Affine(30.0, 0, 452475.0, 0, -30.0, 3408645.0 - 30 * 192)  # a window that is ~37 % cloud
GRID = {"dimensions": {"width": 64, "height": 48}, "crsCode": "EPSG:32616",
        "affineTransform": {"scaleX": 30.0, "shearX": 0, "translateX": T.c, "shearY": 0, "scaleY": -30.0,
                            "translateY": T.f}}


def cloud_masked():
    img = viewer.Image("LANDSAT/LC08/SAMPLE")
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3)
    return img.updateMask(cloud.Not()).select(["B4", "B3", "B2"])


def expected():
    layers = evaluate(cloud_masked().node, Grid(parse_crs("EPSG:32616"), T, 64, 48))
    vals = [np.where(l.mask_or_ones() > 0, l.values, 0).astype(np.uint16) for l in layers]
    return vals, layers[0].mask_or_ones() > 0


def fetch(fmt, **extra):
    return viewer.data.computePixels({"expression": cloud_masked(), "grid": GRID, "fileFormat": fmt, **extra})


def test_window_has_masked_and_valid_pixels():
    _, valid = expected()
    assert 0.05 < valid.mean() < 0.95


def test_numpy_ndarray_structured_fields_per_band():
    arr = fetch("NUMPY_NDARRAY")
    vals, valid = expected()
    assert arr.dtype.names == ("B4", "B3", "B2")
    assert arr.shape == (48, 64)
    for name, v in zip(arr.dtype.names, vals):
        assert arr[name].dtype == np.uint16
        assert np.array_equal(arr[name], v)
        assert (arr[name][~valid] == 0).all()  # masked pixels are zeros in raw outputs


def test_npy_bytes_load_to_the_same_structured_array():
    arr = np.load(io.BytesIO(fetch("NPY")))
    assert np.array_equal(arr, fetch("NUMPY_NDARRAY"))


def test_geotiff_keeps_values_georeferencing_and_mask():
    data = fetch("GEO_TIFF")
    vals, valid = expected()
    with rasterio.MemoryFile(data) as mem, mem.open() as ds:
        assert ds.crs.to_epsg() == 32616
        assert ds.transform.almost_equals(T)
        assert ds.count == 3 and ds.dtypes[0] == "uint16"
        assert list(ds.descriptions) == ["B4", "B3", "B2"]
        for i, v in enumerate(vals, start=1):
            assert np.array_equal(ds.read(i), v)
        assert np.array_equal(ds.dataset_mask() > 0, valid)


def test_png_rgba_is_transparent_where_masked_and_stretched_where_valid():
    vis = {"ranges": [{"min": 7000, "max": 14000}]}
    png = fetch("PNG", visualizationOptions=vis)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert PILImage.open(io.BytesIO(png)).mode == "RGBA"
    rgba = np.asarray(PILImage.open(io.BytesIO(png)))
    vals, valid = expected()
    assert rgba.shape == (48, 64, 4)
    assert np.array_equal(rgba[..., 3] > 0, valid)
    red = np.clip((vals[0].astype(np.float64) - 7000) / 7000, 0, 1) * 255
    assert np.abs(rgba[..., 0][valid].astype(int) - np.floor(red[valid] + 0.5)).max() <= 1


def test_jpeg_decodes_to_rgb_close_to_png():
    vis = {"ranges": [{"min": 7000, "max": 14000}]}
    jpg = fetch("JPEG", visualizationOptions=vis)
    assert jpg[:2] == b"\xff\xd8"
    rgb = np.asarray(PILImage.open(io.BytesIO(jpg))).astype(int)
    rgba = np.asarray(PILImage.open(io.BytesIO(fetch("PNG", visualizationOptions=vis))).convert("RGBA")).astype(int)
    assert rgb.shape == (48, 64, 3)
    diff = np.abs(rgb - rgba[..., :3])
    assert np.median(diff) <= 4 and diff.mean() < 10  # lossy, with sharp cloud-mask edges


def test_auto_jpeg_png_picks_png_with_transparency_and_jpeg_without():
    vis = {"ranges": [{"min": 7000, "max": 14000}]}
    assert fetch("AUTO_JPEG_PNG", visualizationOptions=vis)[:4] == b"\x89PNG"
    opaque = viewer.data.getPixels({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "grid": GRID,
                                    "fileFormat": "AUTO_JPEG_PNG", "visualizationOptions": vis})
    assert opaque[:2] == b"\xff\xd8"


def test_palette_and_gamma_visualization():
    vis = {"ranges": [{"min": 0, "max": 1}], "paletteColors": ["000000", "ff0000"], "gamma": 1.0}
    ndvi = viewer.Image("LANDSAT/LC08/SAMPLE").normalizedDifference(["B5", "B4"])
    png = viewer.data.computePixels({"expression": ndvi, "grid": GRID, "visualizationOptions": vis})
    rgba = np.asarray(PILImage.open(io.BytesIO(png)))
    nd = evaluate(ndvi.node, Grid(parse_crs("EPSG:32616"), T, 64, 48))[0].values
    assert (rgba[..., 1] == 0).all() and (rgba[..., 2] == 0).all()
    assert np.abs(rgba[..., 0].astype(int) - np.round(np.clip(nd, 0, 1) * 255)).max() <= 1


def test_png_of_plain_array_in_pixel_coordinates():
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[2:4, 3:5, 1] = 100
    img = viewer.Image.from_array(rgb)
    png = viewer.data.computePixels({"expression": img, "fileFormat": "PNG"})
    assert PILImage.open(io.BytesIO(png)).mode == "RGB"  # opaque: no alpha channel to write
    out = np.asarray(PILImage.open(io.BytesIO(png)).convert("RGBA"))
    assert out.shape == (10, 12, 4)
    assert np.array_equal(out[..., :3], rgb) and (out[..., 3] == 255).all()


def test_region_bounding_box_with_and_without_dimensions():
    lon, lat = -87.5, 30.6
    box = viewer.Geometry.Rectangle([lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01])
    a = viewer.data.getPixels({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "region": box.getInfo(),
                               "fileFormat": "NUMPY_NDARRAY"})
    # native 30 m UTM grid snapped around the box: ~2.2 km / 30 m ≈ 65-75 px
    assert 60 <= a.shape[0] <= 80 and 60 <= a.shape[1] <= 80
    b = viewer.data.getPixels({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "region": box.getInfo(),
                               "grid": {"dimensions": {"width": 20, "height": 10}}, "fileFormat": "NUMPY_NDARRAY"})
    assert b.shape == (10, 20)
    far = viewer.Geometry.Rectangle([10, 10, 10.01, 10.01])
    c = viewer.data.getPixels({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "region": far.getInfo(),
                               "grid": {"dimensions": {"width": 8, "height": 8}, "crsCode": "EPSG:4326"},
                               "fileFormat": "NUMPY_NDARRAY"})
    assert c.shape == (8, 8) and (c["B4"] == 0).all()  # non-overlap: all masked, not an error


# issue 9: the PNG variants (grey, grey + alpha, RGB, RGBA) decode to the same RGBA ---------------------
def test_png_variants_decode_to_the_same_rgba():
    from viewer.core.visualize import encode_png_planes

    rng = np.random.default_rng(11)
    for h, w in ((256, 256), (5, 7), (1, 1)):
        grey = rng.integers(0, 256, (h, w), dtype=np.uint8)
        rgb = [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(3)]
        rgb[1][0, 0] = rgb[0][0, 0] ^ 1  # never three equal planes
        alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
        alpha.flat[0] = 0
        cases = [([grey], None, "L"), ([grey] * 3, None, "L"), ([grey, grey.copy(), grey.copy()], alpha, "LA"),
                 ([grey], alpha, "LA"), (rgb, None, "RGB"), (rgb, alpha, "RGBA")]
        for planes, a, mode in cases:
            full = planes * 3 if len(planes) == 1 else planes
            expected = np.dstack(full + [np.full((h, w), 255, np.uint8) if a is None else a])
            for level, isal in ((1, True), (1, False), (6, False)):
                png = encode_png_planes(planes, a, level, isal=isal)
                img = PILImage.open(io.BytesIO(png))
                assert img.mode == mode, (mode, h, w)
                np.testing.assert_array_equal(np.asarray(img.convert("RGBA")), expected)


def test_one_band_tiles_are_grey_pngs_with_the_pixels_of_render_rgba():
    import morecantile

    from viewer.core.layers import image_layer
    from viewer.core.tiles import render_rgba, render_tile, tile_grid

    ls = viewer.Image("LANDSAT/LC08/SAMPLE")
    grey = image_layer(ls, {"bands": ["B4"], "min": 6000, "max": 12000})
    palette = image_layer(ls, {"bands": ["B4"], "min": 6000, "max": 12000, "palette": ["blue", "yellow"]})
    rgb = image_layer(ls, {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 12000})
    tms = morecantile.tms.get("WebMercatorQuad")
    modes = set()
    for z in (10, 13):  # the whole scene with its edges (transparent around it), then inside it
        x, y = tms.tile(-87.45, 30.7, z)[:2]
        grid = tile_grid(z, x, y)
        for spec, allowed in ((grey, {"L", "LA"}), (palette, {"RGB", "RGBA"}), (rgb, {"RGB", "RGBA"})):
            img = PILImage.open(io.BytesIO(render_tile(spec, z, x, y)))
            assert img.mode in allowed
            modes.add(img.mode)
            np.testing.assert_array_equal(np.asarray(img.convert("RGBA")), render_rgba(spec, grid))
    assert {"L", "LA"} <= modes


def test_computepixels_png_is_grey_or_rgb_when_opaque_with_the_same_rgba():
    from viewer.core.visualize import rgba

    vis = {"ranges": [{"min": 7000, "max": 14000}]}
    for bands, mode in ((["B4"], "L"), (["B4", "B3", "B2"], "RGB")):
        params = {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": bands, "grid": GRID, "visualizationOptions": vis}
        png = viewer.data.getPixels(dict(params, fileFormat="PNG"))
        img = PILImage.open(io.BytesIO(png))
        assert img.mode == mode
        image = viewer.Image("LANDSAT/LC08/SAMPLE").select(bands).visualize(min=7000, max=14000)
        grid = Grid(parse_crs("EPSG:32616"), T, 64, 48)
        np.testing.assert_array_equal(np.asarray(img.convert("RGBA")), rgba(evaluate(image.node, grid)))
