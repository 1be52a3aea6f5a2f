"""Layer specs (tokens, persistence, cross-process resolution) and tile rendering, on decoded pixels."""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image as PILImage
from rasterio.crs import CRS
from rasterio.warp import reproject

import viewer as viewer_package
from viewer import Image, InvalidArgument
from viewer.core.classes import Classes, colorize_classes
from viewer.core.visualize import encode_png_fast, encode_tile
from viewer.core.evaluate import evaluate
from viewer.core.grid import Grid
from viewer.core.layers import (LayerSpec, UnknownLayer, class_layer, describe, image_layer, mask_layer, register,
                                resolve)
from viewer.core.pixels import computePixels
from viewer.core.tiles import (empty_tile, pixel_max_zoom, pixel_tile_grid, pixel_tile_source_options, render_rgba,
                               render_tile, tile_grid)

TMS = morecantile.tms.get("WebMercatorQuad")
TRUE_COLOUR = {"bands": ["B4", "B3", "B2"], "min": 7000, "max": 14000}
LANDSAT_CENTRE = (-87.398, 30.728)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def decode(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGBA"))


def landsat_tile(z: int, dx: int = 0, dy: int = 0) -> tuple[int, int, int]:
    t = TMS.tile(*LANDSAT_CENTRE, z)
    return z, t.x + dx, t.y + dy


# tile grids -------------------------------------------------------------------------------
def test_tile_grid_matches_web_mercator_quad():
    half = math.pi * 6378137
    g0 = tile_grid(0, 0, 0)
    assert g0.crs == CRS.from_epsg(3857) and g0.shape == (256, 256)
    np.testing.assert_allclose(g0.bounds, (-half, -half, half, half), rtol=1e-12)
    for z, x, y in ((1, 1, 0), (12, 1052, 1680), (18, 67342, 107555), (24, 2**24 - 1, 0)):
        b = TMS.xy_bounds(morecantile.Tile(x, y, z))
        g = tile_grid(z, x, y)
        np.testing.assert_allclose(g.bounds, (b.left, b.bottom, b.right, b.top), rtol=0, atol=1e-6)
        assert g.transform.a == pytest.approx(2 * half / 256 / 2 ** z)
        assert g.transform.e == pytest.approx(-2 * half / 256 / 2 ** z)
    assert tile_grid(3, 1, 2, size=512).shape == (512, 512)


@pytest.mark.parametrize("z, x, y, message", [
    (25, 0, 0, "tile z 25 is out of range; allowed 0..24"),
    (-1, 0, 0, "tile z -1 is out of range; allowed 0..24"),
    (3, 8, 0, "tile x 8 is out of range; allowed 0..7"),
    (3, 0, 8, "tile y 8 is out of range; allowed 0..7"),
    (0, 0, 1, "tile y 1 is out of range; allowed 0..0"),
    (1.5, 0, 0, "tile z 1.5 must be an integer in 0..24"),
    (True, 0, 0, "tile z True must be an integer in 0..24"),
])
def test_tile_grid_rejects_bad_indices(z, x, y, message):
    with pytest.raises(InvalidArgument) as err:
        tile_grid(z, x, y)
    assert str(err.value) == message


def test_pixel_tile_scheme():
    assert pixel_max_zoom(256, 100) == 0
    assert pixel_max_zoom(1000, 600) == 2
    g = pixel_tile_grid(2, 1, 0, 1000, 600)  # one image pixel per tile pixel at zmax
    assert g.crs is None and g.transform == Affine(1, 0, 256, 0, 1, 0)
    g0 = pixel_tile_grid(0, 0, 0, 1000, 600)  # the whole image in one tile
    assert g0.transform == Affine(4, 0, 0, 0, 4, 0)
    assert pixel_tile_grid(3, 0, 0, 1000, 600).transform.a == 0.5
    opts = pixel_tile_source_options(1000, 600)
    assert opts["initial_resolution"] == 4.0 and opts["y_origin_offset"] == 1024.0 and opts["x_origin_offset"] == 0


# tokens and persistence -------------------------------------------------------------------
def test_tokens_are_content_addressed():
    a = image_layer(Image("LANDSAT/LC08/SAMPLE"), TRUE_COLOUR)
    b = image_layer(Image("LANDSAT/LC08/SAMPLE"), dict(TRUE_COLOUR, bands="B4,B3,B2"))
    c = image_layer(Image("LANDSAT/LC08/SAMPLE"), dict(TRUE_COLOUR, max=14001))
    d = image_layer(Image("LANDSAT/LC08/SAMPLE"), dict(TRUE_COLOUR, bands=["B5", "B4", "B3"]))
    assert a.token == b.token and a == b and len({a, b}) == 1
    assert len({a.token, c.token, d.token}) == 3
    assert len(a.token) == 64 and all(ch in "0123456789abcdef" for ch in a.token)
    cls = class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"))
    assert class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"), hidden=[3]).token != cls.token
    assert class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"), opacity=0.5).token != cls.token
    assert register(a) == a.token and resolve(a.token) is a


def test_token_is_the_same_in_another_process():
    code = ("from viewer import Image; from viewer.core.layers import image_layer; "
            f"print(image_layer(Image('LANDSAT/LC08/SAMPLE'), {TRUE_COLOUR!r}).token)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == image_layer(Image("LANDSAT/LC08/SAMPLE"), TRUE_COLOUR).token


def test_another_process_resolves_and_renders_registered_layers(state_dir):
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 255, (3, 300, 400), dtype=np.uint8)
    in_memory = Image.from_array(arr, crs="EPSG:32616", transform=Affine(30, 0, 452475, 0, -30, 3408645))
    specs = [image_layer(Image("LANDSAT/LC08/SAMPLE"), TRUE_COLOUR),
             image_layer(in_memory, {"min": 0, "max": 255}),
             class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_KMEANS"), hidden=[0])]
    tile = landsat_tile(12)
    tokens = [register(s) for s in specs]
    here = [render_tile(s, *tile) for s in specs]
    assert (state_dir / f"{specs[1].token}.json").exists() and list((state_dir / "arrays").glob("*.npz"))
    code = (
        "import sys, json, hashlib\n"
        "from viewer.core.layers import resolve\n"
        "from viewer.core.tiles import render_tile\n"
        "z, x, y = json.loads(sys.argv[1])\n"
        "for t in sys.argv[2:]:\n"
        "    print(hashlib.sha256(render_tile(resolve(t), z, x, y)).hexdigest())\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(tile)] + tokens,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == [hashlib.sha256(b).hexdigest() for b in here]
    assert decode(here[1])[..., 3].max() == 255  # the in-memory array covers this tile


@pytest.mark.parametrize("token, error, message", [
    ("0" * 64, UnknownLayer, "unknown layer token '" + "0" * 64 + "': no layer with this token is registered"),
    ("../../etc/passwd", InvalidArgument, "layer token '../../etc/passwd' is malformed; allowed: 64 lowercase hex"),
    ("A" * 64, InvalidArgument, "is malformed"),
    (123, InvalidArgument, "layer token 123 is malformed"),
])
def test_resolve_rejects_unknown_and_malformed_tokens(token, error, message):
    with pytest.raises(error) as err:
        resolve(token)
    assert message in str(err.value)


def test_describe_names_bands_style_and_classes():
    spec = class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"), hidden=[1])
    doc = json.loads(json.dumps(describe(spec)))
    assert doc["kind"] == "classes" and doc["band_names"] == ["classification"]
    assert [c["name"] for c in doc["classes"]] == ["other", "water", "vegetation", "cloud"]
    assert doc["style"]["hidden"] == [1] and doc["crs"] == "EPSG:32616"
    lon0, lat0, lon1, lat1 = doc["bounds_wgs84"]
    assert lon0 < LANDSAT_CENTRE[0] < lon1 and lat0 < LANDSAT_CENTRE[1] < lat1
    img = describe(image_layer(Image("LANDSAT/LC08/SAMPLE"), TRUE_COLOUR))
    assert img["band_names"] == ["B4", "B3", "B2"] and img["style"]["vis"]["max"] == [14000.0] * 3


@pytest.mark.parametrize("call, message", [
    (lambda: image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4", "B3", "B2"], "colour": "red"}),
     "visualization parameters ['colour'] are not allowed"),
    (lambda: image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4", "B3"]}), "visualization needs 1 or 3 bands"),
    (lambda: image_layer("LANDSAT/LC08/SAMPLE"), "image_layer needs a viewer.Image, got str"),
    (lambda: class_layer(Image("LANDSAT/LC08/SAMPLE").select("B4")), "band 'B4' has no class table"),
    (lambda: class_layer(Image("LANDSAT/LC08/SAMPLE")), "class_layer needs a one-band image"),
    (lambda: mask_layer(Image("LANDSAT/LC08/SAMPLE").mask(), opacity=2), "opacity 2 must be a number in [0, 1]"),
])
def test_layer_constructors_reject_bad_input(call, message):
    with pytest.raises(InvalidArgument) as err:
        call()
    assert message in str(err.value)


# rendering --------------------------------------------------------------------------------
def test_image_tile_equals_compute_pixels_of_the_same_grid():
    spec = image_layer(Image("LANDSAT/LC08/SAMPLE"), TRUE_COLOUR)
    for tile in (landsat_tile(13), landsat_tile(11, 1, 0), landsat_tile(14, 3, -2)):
        grid = tile_grid(*tile)
        rgba = decode(render_tile(spec, *tile))
        ref = decode(computePixels({
            "expression": Image("LANDSAT/LC08/SAMPLE").select(["B4", "B3", "B2"]), "grid": grid.to_dict(),
            "fileFormat": "PNG", "visualizationOptions": {"ranges": [{"min": 7000, "max": 14000}] * 3}}))
        np.testing.assert_array_equal(rgba, ref)
        assert (rgba[..., 3] > 0).mean() > 0.2 and rgba[..., :3][rgba[..., 3] > 0].mean() > 20


def test_tile_outside_footprint_is_the_cached_transparent_png():
    spec = image_layer(Image("LANDSAT/LC08/SAMPLE"), TRUE_COLOUR)
    far = render_tile(spec, 12, 0, 0)
    assert far is empty_tile() and len(far) < 1000
    assert decode(far).shape == (256, 256, 4) and decode(far)[..., 3].max() == 0
    assert render_tile(spec, 12, 0, 0, "jpg") is empty_tile()


def test_class_tile_colours_hidden_classes_and_opacity():
    image = Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")
    table = Classes.from_band(image.bands[0])
    tile = landsat_tile(13)
    layers = evaluate(image.node, tile_grid(*tile))
    expected = colorize_classes(layers[0].values, layers[0].mask, table, hidden=[2], opacity=0.6)
    expected[expected[..., 3] == 0, :3] = 0
    got = decode(render_tile(class_layer(image, hidden=[2], opacity=0.6), *tile))
    np.testing.assert_array_equal(got, expected)
    veg = layers[0].values == 2
    assert veg.any() and (got[veg, 3] == 0).all()
    assert set(np.unique(got[got[..., 3] > 0, 3])) == {153}
    colours = {tuple(int(v) for v in c) for c in got[got[..., 3] > 0, :3]}
    assert colours <= {(0xbd, 0xbd, 0xbd), (0x1f, 0x78, 0xb4), (0xf0, 0xf0, 0xf0)}


def test_mask_layer_shows_a_derived_cloud_mask():
    bqa = Image("LANDSAT/LC08/SAMPLE").select("BQA")
    cloud = bqa.rightShift(14).eq(3)
    tile = landsat_tile(13)
    values = evaluate(cloud.node, tile_grid(*tile))[0].values
    got = decode(render_tile(mask_layer(cloud, palette=["ff0000"], opacity=0.5), *tile))
    assert values.any() and not values.all()
    np.testing.assert_array_equal(got[..., 3] > 0, values == 1)
    assert (got[values == 1] == (255, 0, 0, 128)).all() and (got[values == 0] == 0).all()
    ramp = decode(render_tile(mask_layer(Image("LANDSAT/LC08/SAMPLE").select("B4").mask()), *landsat_tile(9)))
    assert set(np.unique(ramp[..., 3])) == {0, 255} and (ramp[ramp[..., 3] == 255, :3] == 255).all()


def test_pixel_space_tiles_show_the_array_at_native_zoom():
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (300, 500), dtype=np.uint8)
    spec = image_layer(Image.from_array(arr), {"min": 0, "max": 255})
    assert spec.pixel_space
    z = pixel_max_zoom(500, 300)
    tile = decode(render_tile(spec, z, 1, 1))  # columns 256..511, rows 256..511
    np.testing.assert_array_equal(tile[:44, :244, 0], arr[256:300, 256:500])
    assert (tile[:44, :244, 3] == 255).all() and (tile[44:, :, 3] == 0).all() and (tile[:, 244:, 3] == 0).all()
    whole = decode(render_tile(spec, 0, 0, 0))  # 2 image pixels per tile pixel
    np.testing.assert_array_equal(whole[:150, :250, 0], arr[1::2, 1::2])  # centres at 2i + 1
    assert render_tile(spec, z + 1, 3, 3) is empty_tile()  # rows 384..511: below the image


def test_multiband_file_edge_tiles_read_every_band(tmp_path):
    """Band 3 of a 3-band file on a tile that leaves the image (GDAL's own path needs an alpha band)."""
    rng = np.random.default_rng(11)
    data = rng.integers(1, 60000, (3, 200, 300), dtype=np.uint16)
    path = tmp_path / "rgb.tif"
    transform = Affine(30, 0, 452475, 0, -30, 3408645)
    with rasterio.open(path, "w", driver="GTiff", width=300, height=200, count=3, dtype="uint16",
                       crs="EPSG:32616", transform=transform) as dst:
        dst.write(data)
    lon, lat = rasterio.warp.transform("EPSG:32616", "EPSG:4326", [452475], [3408645])
    corner = TMS.tile(lon[0], lat[0], 14)  # the tile holding the image's top-left corner
    grid = tile_grid(14, corner.x, corner.y)
    layers = evaluate(Image.open(path).node, grid)
    for i, layer in enumerate(layers):
        ref = np.zeros((2, 256, 256), np.uint16)
        reproject(data[i], ref, src_transform=transform, src_crs="EPSG:32616", dst_transform=grid.transform,
                  dst_crs=grid.crs, dst_alpha=2, init_dest_nodata=False)
        valid = ref[1] > 0
        assert 0 < valid.mean() < 1
        np.testing.assert_array_equal(layer.mask > 0, valid)
        np.testing.assert_array_equal(layer.values[valid], ref[0][valid])


def test_png_encoder_round_trips_exactly():
    rng = np.random.default_rng(5)
    for shape in ((256, 256, 4), (5, 7, 4), (1, 1, 3), (300, 200, 3)):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        img = PILImage.open(io.BytesIO(encode_png_fast(a)))
        np.testing.assert_array_equal(np.asarray(img), a)
    opaque = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    opaque[..., 3] = 255
    assert PILImage.open(io.BytesIO(encode_png_fast(opaque))).mode == "RGB"
    assert PILImage.open(io.BytesIO(encode_tile(opaque, "jpg"))).format == "JPEG"
    webp = PILImage.open(io.BytesIO(encode_tile(opaque, "webp")))
    assert webp.format == "WEBP" and webp.size == (64, 64)
    with pytest.raises(InvalidArgument, match="tile format 'gif' is not allowed"):
        encode_tile(opaque, "gif")


def test_render_rgba_refuses_a_grid_of_the_other_kind():
    spec = image_layer(Image("LANDSAT/LC08/SAMPLE"), TRUE_COLOUR)
    with pytest.raises(InvalidArgument, match="is in map coordinates; the grid is in pixel coordinates"):
        render_rgba(spec, Grid(None, Affine.identity(), 10, 10))
    assert isinstance(resolve(register(spec)), LayerSpec)


def test_a_damaged_state_file_is_a_read_error(state_dir):
    from viewer import ReadError

    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / ("1" * 64 + ".json")).write_bytes(b"not json")
    with pytest.raises(ReadError, match="stored layer 1{64} .* cannot be read"):
        resolve("1" * 64)


# the path of a tile (docs/ARCHITECTURE.md) -------------------------------------------------------
def _modules_called(fn) -> set[str]:
    """Modules of viewer/ whose Python functions ``fn`` calls (``sys.setprofile``)."""
    root = str(Path(viewer_package.__file__).parent) + os.sep
    seen: set[str] = set()

    def profile(frame, event, _arg):
        if event == "call" and frame.f_code.co_filename.startswith(root):
            seen.add(frame.f_code.co_filename[len(root):].removesuffix(".py").replace(os.sep, "."))

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return seen


@pytest.mark.parametrize("kind", ["image", "mask", "class"])
def test_a_warm_tile_reads_top_to_bottom_in_four_modules(kind):
    ls = Image("LANDSAT/LC08/SAMPLE")
    spec = {"image": image_layer(ls, {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 12000}),
            "mask": mask_layer(ls.select("BQA").rightShift(14).bitwiseAnd(3).eq(3), ["ff0000"], 0.7),
            "class": class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"))}[kind]
    t = TMS.tile(*LANDSAT_CENTRE, 12)
    first = render_tile(spec, t.z, t.x, t.y)
    assert PILImage.open(io.BytesIO(first)).convert("RGBA").getextrema()[3][1] > 0  # pixels, not the empty tile
    called = _modules_called(lambda: render_tile(spec, t.z, t.x, t.y))
    work = {m for m in called if m.rsplit(".", 1)[-1] not in ("grid", "graph", "raster", "cache")}
    assert work == {"core.tiles", "core.evaluate", "core.read", "core.visualize"}
