"""ImageMask / Classes / colorize_classes: the W&B seed examples, every invalid input, colours."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image as PILImage

import viewer
from viewer.core.classes import DEFAULT_PALETTE, Classes, colorize_classes, default_color
from viewer.core.errors import InvalidArgument, InvalidMask, ViewerError
from viewer.core.evaluate import evaluate
from viewer.core.grid import parse_crs
from viewer.core.segmentation import ImageMask, attach_masks, overlays

UTM = "EPSG:32616"
UTM_T = Affine(30.0, 0.0, 452475.0, 0.0, -30.0, 3408645.0)


def seed_masks():
    """The arrays of the W&B ImageMask reference examples, verbatim."""
    image = np.random.default_rng(0).integers(0, 256, size=(100, 100, 3), dtype=np.uint8)
    predicted_mask = np.empty((100, 100), dtype=np.uint8)
    ground_truth_mask = np.empty((100, 100), dtype=np.uint8)
    predicted_mask[:50, :50] = 0
    predicted_mask[50:, :50] = 1
    predicted_mask[:50, 50:] = 2
    predicted_mask[50:, 50:] = 3
    ground_truth_mask[:25, :25] = 0
    ground_truth_mask[25:, :25] = 1
    ground_truth_mask[:25, 25:] = 2
    ground_truth_mask[25:, 25:] = 3
    return image, predicted_mask, ground_truth_mask


CLASS_LABELS = {0: "person", 1: "tree", 2: "car", 3: "road"}


def evaluated_ids(img, grid=None):
    grid = grid or img.bands[0].grid
    layer = evaluate(img.node, grid)[0]
    return layer.values, layer.mask


# the two seed examples (wandb -> viewer) ------------------------------------------------------
def test_seed_example_single_masked_image():
    image, predicted_mask, ground_truth_mask = seed_masks()
    class_labels = {0: "person", 1: "tree", 2: "car", 3: "road"}
    masked_image = viewer.Image(
        image,
        masks={
            "predictions": {"mask_data": predicted_mask, "class_labels": class_labels},
            "ground_truth": {"mask_data": ground_truth_mask, "class_labels": class_labels},
        },
    )
    assert masked_image.bandNames().getInfo() == ["b1", "b2", "b3"]
    ov = overlays(masked_image)
    assert list(ov) == ["predictions", "ground_truth"]
    pred, truth = ov["predictions"], ov["ground_truth"]
    assert isinstance(pred, viewer.ImageMask) and pred.key == "predictions"
    np.testing.assert_array_equal(pred.mask_data, predicted_mask)
    np.testing.assert_array_equal(truth.mask_data, ground_truth_mask)
    assert pred.class_labels == class_labels == truth.class_labels
    assert pred.classes.colors == {0: "#1f77b4", 1: "#ff7f0e", 2: "#2ca02c", 3: "#d62728"}
    assert pred.grid == masked_image.bands[0].grid
    # as an Image: stored ids come back exactly; counts are the quadrants of the example
    values, mask = evaluated_ids(truth.image())
    np.testing.assert_array_equal(values, ground_truth_mask)
    assert mask is None
    assert np.bincount(values.ravel()).tolist() == [625, 1875, 1875, 5625]


def test_seed_example_with_class_set():
    image, predicted_mask, ground_truth_mask = seed_masks()
    class_labels = {0: "person", 1: "tree", 2: "car", 3: "road"}
    class_set = viewer.Classes([
        {"name": "person", "id": 0},
        {"name": "tree", "id": 1},
        {"name": "car", "id": 2},
        {"name": "road", "id": 3},
    ])
    masked_image = viewer.Image(
        image,
        masks={
            "predictions": {"mask_data": predicted_mask, "class_labels": class_labels},
            "ground_truth": {"mask_data": ground_truth_mask, "class_labels": class_labels},
        },
        classes=class_set,
    )
    ov = overlays(masked_image)
    assert ov["predictions"].classes == class_set
    assert ov["ground_truth"].classes.to_list() == [
        {"id": 0, "name": "person", "color": "#1f77b4"}, {"id": 1, "name": "tree", "color": "#ff7f0e"},
        {"id": 2, "name": "car", "color": "#2ca02c"}, {"id": 3, "name": "road", "color": "#d62728"}]
    info = ov["predictions"].image().getInfo()["bands"][0]
    assert info["id"] == "predictions" and info["kind"] == "class" and info["crs"] is None
    assert [c["name"] for c in info["classes"]] == ["person", "tree", "car", "road"]
    values, _ = evaluated_ids(ov["predictions"].image())
    assert values[0, 0] == 0 and values[99, 0] == 1 and values[0, 99] == 2 and values[99, 99] == 3
    # Image.from_array is the same thing
    same = viewer.Image.from_array(image, masks={"predictions": {"mask_data": predicted_mask}}, classes=class_set)
    assert overlays(same)["predictions"].class_labels == class_labels


def test_class_set_colours_and_labels_merge():
    _, pred, _ = seed_masks()
    class_set = Classes([{"name": "person", "id": 0, "color": "black"}, {"name": "sky", "id": 7}])
    img = viewer.Image.from_array(np.zeros((100, 100), np.uint8),
                                  masks={"p": {"mask_data": pred, "class_labels": {0: "human", 2: "car"}}},
                                  classes=class_set)
    m = overlays(img)["p"]
    # labels rename classes of the set (keeping its colours); the set adds 7; ids present without
    # a label or set entry get class_<id>
    assert m.class_labels == {0: "human", 1: "class_1", 2: "car", 3: "class_3", 7: "sky"}
    assert m.classes.color(0) == "#000000" and m.classes.color(7) == DEFAULT_PALETTE[7]


def test_type_name_validate_and_default_labels():
    assert ImageMask.type_name() == "mask"
    data = np.array([[0, 2], [2, 5]], np.uint16)
    assert ImageMask.validate({"mask_data": data}) is True
    m = ImageMask({"mask_data": data}, "predictions")
    assert m.class_labels == {0: "class_0", 2: "class_2", 5: "class_5"}
    assert m.ids == [0, 2, 5]
    partial = ImageMask({"mask_data": data, "class_labels": {2: "car", 9: "boat"}}, "p")
    assert partial.class_labels == {0: "class_0", 2: "car", 5: "class_5", 9: "boat"}


def test_mask_is_a_read_only_copy():
    data = np.array([[1, 2], [3, 4]], np.uint8)
    m = ImageMask({"mask_data": data}, "k")
    data[0, 0] = 9
    assert m.mask_data[0, 0] == 1
    with pytest.raises(ValueError):
        m.mask_data[0, 0] = 7


# invalid inputs -------------------------------------------------------------------------------
GOOD = np.array([[0, 1], [2, 3]], np.uint8)
BAD_VALUES = [
    ("not a dict", "must be a dict with 'mask_data' or 'path'"),
    ({"mask_data": np.zeros((2, 2, 1), np.uint8)}, "must be 2-D (H x W), got shape (2, 2, 1)"),
    ({"mask_data": np.zeros(4, np.uint8)}, "must be 2-D (H x W), got shape (4,)"),
    ({"mask_data": np.array([[0.0, 1.5], [2.0, 3.0]])}, "holds 1.5, not a whole number"),
    ({"mask_data": np.array([[0.0, np.nan]], np.float32)}, "holds nan, not a whole number"),
    ({"mask_data": np.array([[0.0, 256.0]])}, "holds class id 256; class ids must be in 0..255"),
    ({"mask_data": np.array([[0.0, -1.0]])}, "negative class id -1"),
    ({"mask_data": np.ones((2, 2), complex)}, "dtype complex128 is not allowed"),
    ({"mask_data": np.array([[0, -1], [2, 3]], np.int16)}, "negative class id -1"),
    ({"mask_data": np.array([[0, 256]], np.int32)}, "holds class id 256; class ids must be in 0..255"),
    ({"mask_data": [[0, 1], [2, 3]]}, "must be a 2-D numpy integer array, got list"),
    ({"mask_data": np.zeros((0, 3), np.uint8)}, "is empty"),
    ({"mask_data": GOOD, "class_labels": {"0": "person"}}, "key '0' (str) must be an integer class id"),
    ({"mask_data": GOOD, "class_labels": {1.5: "tree"}}, "key 1.5 (float) must be an integer class id"),
    ({"mask_data": GOOD, "class_labels": {True: "tree"}}, "key True (bool) must be an integer class id"),
    ({"mask_data": GOOD, "class_labels": {0: 5}}, "class_labels[0] = 5 must be a non-empty string"),
    ({"mask_data": GOOD, "class_labels": {0: ""}}, "must be a non-empty string"),
    ({"mask_data": GOOD, "class_labels": {-1: "x"}}, "key -1 is out of range"),
    ({"mask_data": GOOD, "class_labels": ["person"]}, "class_labels ['person'] must be a dict"),
    ({"mask_data": GOOD, "path": "x.png"}, "exactly one of 'mask_data' or 'path', got both"),
    ({"class_labels": {0: "a"}}, "exactly one of 'mask_data' or 'path', got neither"),
    ({}, "got neither"),
    ({"mask_data": GOOD, "labels": {0: "a"}}, "unknown mask keys ['labels']"),
    ({"mask_data": GOOD, "boxes": [], "caption": "x"}, "unknown mask keys ['boxes', 'caption']"),
    ({"path": "/nonexistent/mask.png"}, "cannot read mask file '/nonexistent/mask.png'"),
    ({"path": 42}, "path 42 must be a non-empty string"),
    ({"path": ""}, "path '' must be a non-empty string"),
]


@pytest.mark.parametrize("val,fragment", BAD_VALUES, ids=[f[1][:40] for f in BAD_VALUES])
def test_invalid_mask_values(val, fragment):
    for call in (lambda: ImageMask.validate(val), lambda: ImageMask(val, "predictions")):
        with pytest.raises(InvalidMask) as exc:
            call()
        assert fragment in str(exc.value)
        assert isinstance(exc.value, ValueError) and isinstance(exc.value, ViewerError)


def test_float_and_bool_masks_are_class_ids_as_in_wandb():
    """W&B takes np.zeros (float64) masks and bool masks; their whole numbers are the class ids."""
    as_float = np.zeros((4, 5))
    as_float[2:, :] = 1.0
    as_float[0, 0] = 3.0
    for data in (as_float, as_float.astype(np.float32), as_float > 0.5):
        m = ImageMask({"mask_data": data, "class_labels": {1.0: "cloud"}}, "p")
        values, mask = evaluated_ids(m.image())
        np.testing.assert_array_equal(values, data.astype(np.uint8))
        assert mask is None and m.class_labels[1] == "cloud"
        assert values.dtype == np.uint8


def test_invalid_mask_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    rgb = tmp_path / "rgb.png"
    PILImage.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb)
    flt = tmp_path / "float.tif"
    with rasterio.open(flt, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32", crs=UTM,
                       transform=UTM_T) as ds:
        ds.write(np.full((1, 4, 4), 0.5, np.float32))
    cases = [
        (text, "cannot read mask file"),
        (tmp_path, "cannot read mask file"),
        (rgb, "has 3 bands; a mask must have exactly one band"),
        (flt, "holds 0.5, not a whole number"),
    ]
    for path, fragment in cases:
        with pytest.raises(InvalidMask) as exc:
            ImageMask({"path": str(path)}, "k")
        assert fragment in str(exc.value), (path, str(exc.value))


@pytest.mark.parametrize("key", [None, 3, ""])
def test_invalid_key(key):
    with pytest.raises(InvalidMask, match="mask key"):
        ImageMask({"mask_data": GOOD}, key)


def test_masks_must_match_image_size_and_be_a_dict():
    img = viewer.Image.from_array(np.zeros((3, 5), np.uint8))
    with pytest.raises(InvalidMask, match=r"is 2x2 \(H x W\) but the image grid is 3x5"):
        attach_masks(img, {"p": {"mask_data": GOOD}})
    with pytest.raises(InvalidMask, match="must be a dict of key -> mask dict"):
        attach_masks(img, [GOOD])
    with pytest.raises(InvalidMask, match="must be a dict with 'mask_data' or 'path'"):
        viewer.Image.from_array(np.zeros((3, 5), np.uint8), masks={"p": GOOD})
    with pytest.raises(InvalidMask, match="class id 'a' must be an integer"):
        viewer.Image.from_array(np.zeros((2, 2), np.uint8), masks={"p": {"mask_data": GOOD}},
                                classes=[{"id": "a", "name": "x"}])
    # and the transposed shape is refused too (no silent transpose)
    with pytest.raises(InvalidMask, match="is 5x3"):
        attach_masks(img, {"p": {"mask_data": np.zeros((5, 3), np.uint8)}})


# image(), alignment, overlays on derived images ------------------------------------------------
def test_image_like_aligns_to_a_georeferenced_image():
    geo = viewer.Image.from_array(np.zeros((2, 2), np.uint16), crs=UTM, transform=UTM_T)
    m = ImageMask({"mask_data": GOOD, "class_labels": {3: "road"}}, "ground_truth")
    assert m.image().bands[0].grid.crs is None  # pixel coordinates by default
    on_geo = m.image(like=geo)
    band = on_geo.bands[0]
    assert band.name == "ground_truth" and band.kind == "class"
    assert band.grid == geo.bands[0].grid
    values, _ = evaluated_ids(on_geo)  # same ids on two grids are two distinct array leaves
    np.testing.assert_array_equal(values, GOOD)
    with pytest.raises(InvalidArgument, match="masks/classes need an image array"):
        viewer.Image(5, masks={"p": {"mask_data": GOOD}})
    with pytest.raises(InvalidMask, match="must have the image's height and width"):
        m.image(like=viewer.Image.from_array(np.zeros((3, 3), np.uint8)))
    with pytest.raises(InvalidMask, match="has no pixel grid"):
        m.image(like=viewer.Image(5))


def test_overlays_survive_derived_images_and_are_not_shared():
    base = viewer.Image.from_array(np.zeros((2, 2), np.uint8))
    img = attach_masks(base, {"p": {"mask_data": GOOD}})
    assert overlays(base) == {}
    assert list(overlays(img.select("b1").updateMask(1))) == ["p"]
    more = attach_masks(img, {"q": ImageMask({"mask_data": GOOD}, "other")})
    assert list(overlays(more)) == ["p", "q"] and overlays(more)["q"].key == "q"
    assert list(overlays(img)) == ["p"]


def test_geotiff_path_round_trip_keeps_georeferencing(tmp_path):
    ids = np.array([[1, 1, 2, 2], [1, 3, 3, 2], [0, 0, 3, 255]], np.uint8)
    path = tmp_path / "truth.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=3, count=1, dtype="uint8",
                       crs=UTM, transform=UTM_T, nodata=255) as ds:
        ds.write(ids[None])
    m = ImageMask({"path": str(path), "class_labels": {1: "water", 2: "forest", 3: "urban"}}, "ground_truth")
    assert m.path == str(path)
    assert m.grid.crs == parse_crs(UTM) and m.grid.transform == UTM_T and m.grid.shape == (3, 4)
    assert m.valid is not None and m.valid.sum() == 11 and not m.valid[2, 3]
    assert m.ids == [0, 1, 2, 3]  # 255 is nodata, not a class
    img = m.image()
    info = img.getInfo()["bands"][0]
    assert info["crs"] == UTM and info["crs_transform"] == list(UTM_T)[:6] and info["dimensions"] == [4, 3]
    values, mask = evaluated_ids(img)
    np.testing.assert_array_equal(values[m.valid], ids[m.valid])
    assert mask[2, 3] == 0 and mask[0, 0] == 1
    # attaches to an image on the same grid; a different georeferencing is refused
    same = viewer.Image.from_array(np.zeros((3, 4), np.uint16), crs=UTM, transform=UTM_T)
    assert overlays(attach_masks(same, {"gt": {"path": str(path)}}))["gt"].grid.transform == UTM_T
    shifted = viewer.Image.from_array(np.zeros((3, 4), np.uint16), crs=UTM,
                                      transform=UTM_T @ Affine.translation(1, 0))
    with pytest.raises(InvalidMask, match="is georeferenced .* differently from the image"):
        attach_masks(shifted, {"gt": {"path": str(path)}})


def test_png_path_is_in_pixel_coordinates(tmp_path):
    ids = (np.arange(12, dtype=np.uint8) % 4).reshape(3, 4)
    path = tmp_path / "pred.png"
    PILImage.fromarray(ids, mode="L").save(path)
    m = ImageMask({"path": path}, "predictions")  # os.PathLike works too
    np.testing.assert_array_equal(m.mask_data, ids)
    assert m.grid.crs is None and m.grid.transform == Affine.identity()
    assert m.class_labels == {0: "class_0", 1: "class_1", 2: "class_2", 3: "class_3"}
    # a palette PNG gives its indices (the class ids), not colours
    pal = tmp_path / "pal.png"
    p = PILImage.fromarray(ids, mode="P")
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9] + [0] * 756)
    p.save(pal)
    np.testing.assert_array_equal(ImageMask({"path": str(pal)}, "p").mask_data, ids)


# Classes --------------------------------------------------------------------------------------
def test_default_palette_exact_values():
    assert [default_color(i) for i in range(4)] == ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    assert Classes.from_labels({0: "a", 1: "b", 2: "c", 3: "d"}).colors == {
        0: "#1f77b4", 1: "#ff7f0e", 2: "#2ca02c", 3: "#d62728"}
    colours = [default_color(i) for i in range(64)]
    assert len(set(colours)) == 64  # distinct for the first 64 ids


def test_default_colours_stable_across_runs():
    code = ("from viewer.core.classes import default_color;"
            "print(','.join(default_color(i) for i in (0, 3, 10, 19, 20, 77, 255, 4000)))")
    outs = set()
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout.strip())
    assert len(outs) == 1
    assert outs.pop().split(",")[:4] == ["#1f77b4", "#d62728", "#aec7e8", "#9edae5"]


def test_user_colours_and_background():
    c = Classes([{"name": "bg", "id": 0}, {"name": "car", "id": 2, "color": "red"},
                 {"name": "road", "id": 3, "color": "0f0"}, {"name": "sea", "id": 4, "color": "#123456"}],
                background=0)
    assert c.colors == {0: "#1f77b4", 2: "#ff0000", 3: "#00ff00", 4: "#123456"}
    assert c.name(2) == "car" and c.name(9) == "class_9" and 2 in c and 9 not in c
    assert len(c) == 4 and c.ids == (0, 2, 3, 4)
    assert Classes.from_band(c.to_band_classes()) == c  # the background survives a BandInfo round trip
    rules = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES").bands[0]
    assert Classes.from_band(rules).names == {0: "other", 1: "water", 2: "vegetation", 3: "cloud"}
    assert Classes.from_band(rules).color(1) == "#1f78b4"


BAD_CLASSES = [
    ("person", "must be a list of dicts"),
    ({"name": "x", "id": 0}, "must be a list of dicts"),
    ([["x", 0]], "class_set[0] ['x', 0] must be a dict"),
    ([{"name": "x"}], "needs both 'id' and 'name'"),
    ([{"id": 0}], "needs both 'id' and 'name'"),
    ([{"name": "x", "id": "0"}], "class id '0' must be an integer"),
    ([{"name": "x", "id": 1.5}], "class id 1.5 must be an integer"),
    ([{"name": "x", "id": True}], "class id True must be an integer"),
    ([{"name": "x", "id": -1}], "class id -1 is out of range"),
    ([{"name": "x", "id": 70000}], "class id 70000 is out of range"),
    ([{"name": 3, "id": 0}], "class name 3 must be a non-empty string"),
    ([{"name": "a", "id": 1}, {"name": "b", "id": 1}], "class_set[1]: class id 1 appears twice"),
    ([{"name": "x", "id": 0, "color": "notacolour"}], "colour 'notacolour' is not allowed"),
    ([{"name": "x", "id": 0, "colour": "red"}], "unknown keys ['colour']"),
]


@pytest.mark.parametrize("class_set,fragment", BAD_CLASSES, ids=[b[1][:30] for b in BAD_CLASSES])
def test_invalid_classes(class_set, fragment):
    with pytest.raises(InvalidArgument) as exc:
        Classes(class_set)
    assert fragment in str(exc.value)


def test_invalid_labels_and_background():
    with pytest.raises(InvalidArgument, match="must be a dict of int -> str"):
        Classes.from_labels([(0, "a")])
    with pytest.raises(InvalidArgument, match="background: class id 'x' must be an integer"):
        Classes([], background="x")


# lookup tables and colouring -------------------------------------------------------------------
def test_lut_hidden_background_unknown_and_opacity():
    c = Classes([{"name": "bg", "id": 0}, {"name": "car", "id": 2, "color": "red"},
                 {"name": "road", "id": 3, "color": "#0000ff"}], background=0)
    lut = c.lut(hidden=[3], opacity=0.5)
    assert lut.shape == (256, 4) and lut.dtype == np.uint8
    assert lut[2].tolist() == [255, 0, 0, 128]
    assert lut[3].tolist() == [0, 0, 255, 0]  # hidden: transparent, colour kept (never black)
    assert lut[0].tolist() == [0x1f, 0x77, 0xb4, 0]  # background
    assert lut[1, 3] == 0 and lut[255, 3] == 0  # ids without an entry
    with pytest.raises(InvalidArgument, match="opacity 2 must be a number in"):
        c.lut(opacity=2)


def test_colorize_classes_one_lookup_and_masks():
    c = Classes([{"name": "a", "id": 1, "color": "#ff0000"}, {"name": "b", "id": 2, "color": "#00ff00"}])
    ids = np.array([[1, 2, 0], [2, 1, 7]], np.uint8)
    mask = np.array([[1, 0.5, 1], [0, 1, 1]], np.float32)
    rgba = colorize_classes(ids, mask, c)
    assert rgba.shape == (2, 3, 4) and rgba.dtype == np.uint8
    assert rgba[0, 0].tolist() == [255, 0, 0, 255]
    assert rgba[0, 1].tolist() == [0, 255, 0, 128]  # partial mask scales alpha
    assert rgba[0, 2, 3] == 0 and rgba[1, 2, 3] == 0  # unknown ids
    assert rgba[1, 0, 3] == 0  # masked
    hidden = colorize_classes(ids, None, c, hidden=[2], opacity=0.4)
    assert hidden[0, 0].tolist() == [255, 0, 0, 102] and hidden[0, 1, 3] == 0 and hidden[1, 0, 3] == 0
    # bool masks, float ids from a warp (NaN -> transparent), int ids above 255 with a table that has them
    fl = colorize_classes(np.array([[1.0, np.nan]]), np.array([[True, True]]), c)
    assert fl[0, 0].tolist() == [255, 0, 0, 255] and fl[0, 1, 3] == 0
    big = Classes([{"name": "x", "id": 300, "color": "#010203"}])
    out = colorize_classes(np.array([[300, 299, -5, 70000]], np.int32), None, big)
    assert out[0, 0].tolist() == [1, 2, 3, 255] and out[0, 1:, 3].tolist() == [0, 0, 0]
    with pytest.raises(InvalidArgument, match="must be 2-D"):
        colorize_classes(np.zeros((2, 2, 2), np.uint8), None, c)
    with pytest.raises(InvalidArgument, match="does not match values"):
        colorize_classes(ids, np.ones((3, 3)), c)


def test_an_rgba_array_is_colours_and_a_mask_as_in_wandb():
    """wandb.Image(H x W x 4 uint8) is an RGBA picture: three bands, the alpha as the mask (as a PIL RGBA image)."""
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 100, 50
    rgba[..., 3] = 255
    rgba[:5, :, 3] = 0
    rgba[5, :, 3] = 128
    for picture in (viewer.Image(rgba), viewer.Image(PILImage.fromarray(rgba, "RGBA"))):
        assert picture.bandNames().getInfo() == ["b1", "b2", "b3"]
        layers = evaluate(picture.node, picture.bands[0].grid)
        assert [int(l.values[9, 0]) for l in layers] == [200, 100, 50]
        mask = layers[0].mask
        assert mask[:5].max() == 0 and mask[6:].min() == 1 and np.allclose(mask[5], 128 / 255)
    png = viewer.data.computePixels({"expression": viewer.Image(rgba), "fileFormat": "PNG",
                                     "visualizationOptions": {"ranges": [{"min": 0, "max": 255}]}})
    assert PILImage.open(io.BytesIO(png)).convert("RGBA").getpixel((0, 9)) == (200, 100, 50, 255)
    # four bands of data: named, or channels first
    assert viewer.Image.from_array(rgba, band_names=list("rgbn")).bandNames().getInfo() == ["r", "g", "b", "n"]
    assert len(viewer.Image.from_array(np.moveaxis(rgba, -1, 0)).bandNames().getInfo()) == 4
