"""The geemap and W&B calls tutorials use (issue 10, core): named palettes, per-band gamma,
``Image(data_or_path, mode=, caption=, masks=)``, and legend counts in native pixels."""
from __future__ import annotations

import pathlib

import numpy as np
import PIL.Image
import pytest
from affine import Affine

import viewer
from viewer import Image, InvalidArgument
from viewer.core.class_stats import class_counts, view_class_counts
from viewer.core.evaluate import evaluate
from viewer.core.grid import WEB_MERCATOR, Grid, mercator_bounds
from viewer.core.layers import image_layer, mask_layer
from viewer.core.palettes import PALETTES, named_palette
from viewer.core.pixels import computePixels
from viewer.core.segmentation import overlays
from viewer.core.tiles import render_rgba
from viewer.core.visualize import parse_palette


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))


def ramp() -> Image:
    """One band, 0..255 along x (256 x 4 pixels, pixel coordinates)."""
    return Image.from_array(np.tile(np.arange(256, dtype=np.uint8), (4, 1)))


def shown(spec) -> np.ndarray:
    return render_rgba(spec, spec.node.native_grid())


# named palettes ------------------------------------------------------------------------------
def test_viridis_by_name_draws_matplotlibs_viridis():
    rgba = shown(image_layer(ramp(), {"palette": "viridis", "min": 0, "max": 255}))
    assert tuple(rgba[0, 0, :3]) == (0x44, 0x01, 0x54)  # matplotlib viridis(0.0)
    assert tuple(rgba[0, 255, :3]) == (0xfd, 0xe7, 0x25)  # viridis(1.0)
    assert tuple(rgba[0, 128, :3]) == (0x21, 0x91, 0x8c)  # viridis(128 / 255): the 256 entries are kept
    assert len(PALETTES["viridis"]) == 256


@pytest.mark.parametrize("name", ["greys", "viridis", "magma", "turbo", "ndvi", "red-yellow-green", "blues",
                                  "spectral", "inferno", "plasma", "cividis", "rdbu", "greens", "reds"])
def test_menu_and_matplotlib_names(name):
    colours = parse_palette(name)
    assert len(colours) >= 9
    assert parse_palette(name.upper()) == colours  # case-insensitive, as geemap's matplotlib names vary
    assert parse_palette(name + "_r") == colours[::-1]


def test_palette_orientation_follows_matplotlib():
    assert named_palette("Blues")[0] == "#f7fbff" and named_palette("Blues")[-1] == "#08306b"  # light -> dark
    assert named_palette("RdYlGn")[0] == "#a50026" and named_palette("RdYlGn")[-1] == "#006837"  # red -> green
    assert named_palette("ndvi") == tuple("#" + c for c in (
        "ffffff", "ce7e45", "df923d", "f1b555", "fcd163", "99b718", "74a901", "66a000", "529400", "3e8601",
        "207401", "056201", "004c00", "023b01", "012e01", "011d01", "011301"))


def test_css_colours_stay_colours_and_unknown_names_say_what_is_allowed():
    assert parse_palette("red") == [(255, 0, 0)]
    assert parse_palette("gray") == [(128, 128, 128)]
    assert parse_palette("black,white") == [(0, 0, 0), (255, 255, 255)]
    with pytest.raises(InvalidArgument, match=r"palette 'viridiss' is not a palette name.*viridis, magma"):
        parse_palette("viridiss")


def test_named_palettes_everywhere_a_palette_goes():
    img = ramp()
    vis = img.visualize(palette="magma", min=0, max=255)
    out = evaluate(vis.node, img.native_grid())
    assert (out[0].values[0, 0], out[1].values[0, 0], out[2].values[0, 0]) == (0, 0, 4)  # magma(0) = #000004
    spec = mask_layer(Image.from_array(np.linspace(0, 1, 256, dtype=np.float32)[None].repeat(4, 0)), "viridis")
    assert tuple(shown(spec)[0, 255, :3]) == (0xfd, 0xe7, 0x25)


def test_palette_on_a_12_band_image_names_the_bands_to_pick_from():
    landsat = Image("LANDSAT/LC08/SAMPLE")
    with pytest.raises(InvalidArgument) as err:
        image_layer(landsat, {"palette": "viridis"})
    msg = str(err.value)
    assert "a palette needs exactly one band" in msg and "12 bands" in msg
    assert "'B1'" in msg and "'BQA'" in msg and "got 3" not in msg
    with pytest.raises(InvalidArgument, match=r"exactly one band; 'bands' names 3 bands \('B4', 'B3', 'B2'\)"):
        image_layer(landsat, {"bands": ["B4", "B3", "B2"], "palette": "viridis"})
    with pytest.raises(InvalidArgument, match="exactly one band; the image has 12 bands"):
        landsat.visualize(palette="viridis")
    assert image_layer(landsat, {"bands": ["B5"], "palette": "viridis", "min": 0, "max": 30000}).kind == "image"


# gamma per band ------------------------------------------------------------------------------
def test_gamma_list_applies_per_band():
    half = Image.from_array(np.full((3, 4, 4), 0.25, np.float32))
    expect = [round(0.25 ** (1 / g) * 255) for g in (2.0, 1.0, 0.5)]  # 128, 64, 16
    spec = image_layer(half, {"min": 0, "max": 1, "gamma": [2.0, 1.0, 0.5]})
    assert spec.style["vis"]["gamma"] == [2.0, 1.0, 0.5]
    assert list(shown(spec)[0, 0, :3]) == expect
    vis = half.visualize(min=0, max=1, gamma=[2.0, 1.0, 0.5])
    assert [int(b.values[0, 0]) for b in evaluate(vis.node, half.native_grid())] == expect
    arr = computePixels({"expression": half, "fileFormat": "NPY",
                         "visualizationOptions": {"ranges": [{"min": 0, "max": 1}], "gamma": {"value": [2, 1, 0.5]}}})
    got = np.load(__import__("io").BytesIO(arr))
    assert [int(v) for v in got[0, 0]] == expect or [int(v) for v in got[:, 0, 0]] == expect
    with pytest.raises(InvalidArgument, match=r"gamma .* has 2 values; allowed: 1 or 3"):
        image_layer(half, {"min": 0, "max": 1, "gamma": [2.0, 1.0]})


# W&B pictures ----------------------------------------------------------------------------------
SEED = np.random.default_rng(0).integers(0, 256, size=(100, 100, 3), dtype=np.uint8)


def test_pil_image_path_and_caption(tmp_path):
    png = tmp_path / "photo.png"
    PIL.Image.fromarray(SEED).save(png)
    for data in (PIL.Image.open(png), pathlib.Path(png)):
        img = Image(data, caption="a photo")
        assert img.caption == "a photo" and img.bandNames().getInfo() == ["b1", "b2", "b3"]
        out = evaluate(img.node, img.native_grid())
        np.testing.assert_array_equal(np.dstack([b.values for b in out]), SEED)
    grey = Image(str(png), mode="L", caption="grey")  # a string with W&B keywords is a path, as in wandb.Image
    assert grey.bandNames().getInfo() == ["b1"] and grey.caption == "grey"
    assert Image.from_array(str(png)).caption is None
    assert Image(SEED, caption="array").get("caption") == "array"


def test_rgba_alpha_becomes_the_mask(tmp_path):
    rgba = np.dstack([SEED, np.full((100, 100), 255, np.uint8)])
    rgba[:10, :, 3] = 0
    img = Image(PIL.Image.fromarray(rgba))
    assert len(img.bands) == 3
    band = evaluate(img.node, img.native_grid())[0]
    assert band.mask[:10].max() == 0 and band.mask[10:].min() == 1


def test_seed_example_with_a_path_and_caption(tmp_path):
    png = tmp_path / "image.png"
    PIL.Image.fromarray(SEED).save(png)
    predicted_mask = np.empty((100, 100), dtype=np.uint8)
    predicted_mask[:50, :50] = 0
    predicted_mask[50:, :50] = 1
    predicted_mask[:50, 50:] = 2
    predicted_mask[50:, 50:] = 3
    class_labels = {0: "person", 1: "tree", 2: "car", 3: "road"}
    masked_image = viewer.Image(str(png), caption="predictions",
                                masks={"predictions": {"mask_data": predicted_mask, "class_labels": class_labels}})
    assert masked_image.caption == "predictions"
    assert overlays(masked_image)["predictions"].class_labels == class_labels


def test_bad_pictures_are_typed_errors(tmp_path):
    with pytest.raises(viewer.ReadError, match="does not exist"):
        Image(str(tmp_path / "missing.png"), caption="x")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(viewer.ReadError, match="cannot read image file"):
        Image(pathlib.Path(tmp_path / "junk.png"))
    with pytest.raises(InvalidArgument, match="caption 3 must be a string"):
        Image(SEED, caption=3)
    with pytest.raises(InvalidArgument, match="cannot be converted to 'XYZ'"):
        Image(SEED, mode="XYZ")
    with pytest.raises(InvalidArgument, match="not an asset id"):  # a plain string stays an asset id
        Image("photo.png")


# legend counts in native pixels ------------------------------------------------------------------
def _wb_classes() -> Image:
    predicted_mask = np.empty((100, 100), dtype=np.uint8)
    predicted_mask[:50, :50] = 0
    predicted_mask[50:, :50] = 1
    predicted_mask[:50, 50:] = 2
    predicted_mask[50:, 50:] = 3
    img = viewer.Image(SEED, masks={"predictions": {"mask_data": predicted_mask,
                                                    "class_labels": {0: "person", 1: "tree", 2: "car", 3: "road"}}})
    return overlays(img)["predictions"].image()


def _pixel_view(x0, y0, x1, y1, w=900, h=600) -> Grid:
    """A pixel-mode map view as the app builds it (x = column, y = -row), w x h screen pixels."""
    return Grid(None, Affine((x1 - x0) / w, 0, x0, 0, (y1 - y0) / h, -y1), w, h)


@pytest.mark.parametrize("view", [(-23.3, -101.2, 117.9, 3.7), (-10.37, -104.1, 110.2, 2.3),
                                  (-5.5, -100.6, 104.4, 0.45), (-2000, -2000, 2000, 2000), (-5, -105, 105, 5)])
def test_wb_toy_counts_are_exact_at_any_zoom_and_pan(view):
    counts = view_class_counts(_wb_classes(), _pixel_view(*view))
    assert [(e["name"], e["count"], e["sample_step"]) for e in counts] == [
        ("person", 2500, 1), ("tree", 2500, 1), ("car", 2500, 1), ("road", 2500, 1)]
    assert [e["percent"] for e in counts] == [25.0] * 4


def test_screen_grids_were_the_cause():
    """On a view grid coarsened to about one native pixel, nearest sampling repeats a column: 2,550."""
    view = _pixel_view(-10.37, -104.1, 110.2, 2.3)
    coarse = view.scaled(121, 106)
    assert [e["count"] for e in class_counts(_wb_classes(), coarse)] != [2500] * 4


def test_partial_view_counts_whole_native_pixels():
    counts = view_class_counts(_wb_classes(), _pixel_view(10.5, -60.2, 60.7, -20.1))
    # columns 10..60, rows 20..60: person 40 x 30, tree 40 x 11, car 11 x 30, road 11 x 11
    assert [e["count"] for e in counts] == [1200, 440, 330, 121]
    assert [e["count"] for e in view_class_counts(_wb_classes(), _pixel_view(200, -100, 300, 0))] == [0, 0, 0, 0]


def test_map_view_counts_native_pixels_of_a_catalog_class_layer():
    img = Image("VIEWER/SAMPLE_CLASSES/LC08_KMEANS")
    native = img.native_grid()
    left, bottom, right, top = mercator_bounds(native)
    res = (right - left) / 1500
    view = Grid(WEB_MERCATOR, Affine(res, 0, left - 100 * res, 0, -res, top + 50 * res), 1920, 1700)
    assert native.covering(view) == native  # the view holds the whole scene
    counts = view_class_counts(img, view)
    direct = class_counts(img, native)  # the whole scene on its own grid
    assert [e["count"] for e in counts] == [e["count"] for e in direct]
    screen = class_counts(img, view)
    for a, b in zip(counts, screen):  # same ground areas as counting screen pixels, within 2 %
        assert a["area_m2"] == pytest.approx(b["area_m2"], rel=0.02)
    sampled = view_class_counts(img, view, max_pixels=10_000)
    assert {e["sample_step"] for e in sampled} == {7}
    for a, b in zip(sampled, counts):
        assert a["count"] == pytest.approx(b["count"], rel=0.05)
