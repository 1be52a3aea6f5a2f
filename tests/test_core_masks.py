"""Mask semantics on tiny arrays with hand-computed expectations (Earth Engine rules)."""
import numpy as np
import pytest
from affine import Affine

import viewer
from viewer.core.evaluate import evaluate
from viewer.core.grid import Grid


def run(img):
    """Evaluate on the image's own grid: (values, masks) stacked per band."""
    grid = img.bands[0].grid
    layers = evaluate(img.node, grid)
    vals = np.stack([l.values for l in layers]).astype(float)
    masks = np.stack([l.mask_or_ones() for l in layers])
    return vals, masks


A = np.array([[1, 2], [0, 4]], dtype=np.int16)
B = np.array([[10, 20], [30, 40]], dtype=np.int16)
HALF = np.array([[1.0, 0.5], [0.0, 1.0]], dtype=np.float32)


def two_band(mask=None):
    return viewer.Image.from_array(np.stack([A, B]), band_names=["a", "b"], mask=mask)


def test_mask_get_is_ones_when_unmasked_and_keeps_band_names():
    img = two_band()
    m = img.mask()
    assert m.bandNames().getInfo() == ["a", "b"]
    vals, masks = run(m)
    assert vals.tolist() == np.ones((2, 2, 2)).tolist()
    assert masks.min() == 1


def test_mask_get_returns_partial_values_per_band():
    per_band = np.stack([HALF, np.ones((2, 2), np.float32)])
    vals, _ = run(two_band(per_band).mask())
    assert vals[0].tolist() == [[1.0, 0.5], [0.0, 1.0]]
    assert vals[1].tolist() == [[1, 1], [1, 1]]


def test_mask_set_single_band_applies_to_all_bands():
    m = viewer.Image.from_array(np.array([[1, 0], [1, 0]], np.uint8))
    vals, masks = run(two_band().mask(m))
    assert masks[0].tolist() == [[1, 0], [1, 0]]
    assert masks[1].tolist() == [[1, 0], [1, 0]]


def test_mask_set_replaces_and_fills_newly_unmasked_with_zero():
    start = np.array([[0.0, 1.0], [1.0, 1.0]], np.float32)
    img = viewer.Image.from_array(A, mask=start)
    vals, masks = run(img.mask(viewer.Image.from_array(np.ones((2, 2), np.uint8))))
    assert masks[0].tolist() == [[1, 1], [1, 1]]
    assert vals[0].tolist() == [[0, 2], [0, 4]]  # A[0,0]=1 was masked -> becomes 0


def test_mask_set_band_count_must_match():
    three = viewer.Image.from_array(np.ones((3, 2, 2), np.uint8))
    with pytest.raises(viewer.InvalidArgument, match="3 bands; allowed: 1 or 2"):
        two_band().mask(three)


def test_update_mask_only_narrows_and_multiplies():
    img = viewer.Image.from_array(A, mask=HALF)
    upd = viewer.Image.from_array(np.array([[0.5, 1.0], [1.0, 0.0]], np.float32))
    vals, masks = run(img.updateMask(upd))
    assert masks[0].tolist() == [[0.5, 0.5], [0.0, 0.0]]
    # updateMask cannot re-validate: a mask of 1 over an invalid pixel stays invalid
    vals, masks = run(img.updateMask(viewer.Image.from_array(np.ones((2, 2), np.uint8))))
    assert masks[0].tolist() == HALF.tolist()


def test_update_mask_with_comparison_and_per_band_mask():
    img = two_band()
    vals, masks = run(img.updateMask(img.gt(2)))
    assert masks[0].tolist() == [[0, 0], [0, 1]]
    assert masks[1].tolist() == [[1, 1], [1, 1]]


def test_update_mask_treats_masked_mask_pixels_as_zero():
    m = viewer.Image.from_array(np.ones((2, 2), np.uint8), mask=np.array([[1, 1], [0, 1]], np.float32))
    _, masks = run(viewer.Image.from_array(A).updateMask(m))
    assert masks[0].tolist() == [[1, 1], [0, 1]]


def test_self_mask_masks_zeros():
    _, masks = run(viewer.Image.from_array(A).selfMask())
    assert masks[0].tolist() == [[1, 1], [0, 1]]


def test_unmask_default_fills_zero_and_validates():
    img = viewer.Image.from_array(B, mask=np.array([[1, 0], [0, 1]], np.float32))
    vals, masks = run(img.unmask())
    assert vals[0].tolist() == [[10, 0], [0, 40]]
    assert masks.min() == 1


def test_unmask_keeps_partial_mask_and_takes_value_and_its_mask():
    img = viewer.Image.from_array(B, mask=HALF)  # (1,1) is 0 -> filled; (0,1) is 0.5 -> kept
    fill = viewer.Image.from_array(np.full((2, 2), 7, np.int16), mask=np.full((2, 2), 0.25, np.float32))
    vals, masks = run(img.unmask(fill))
    assert vals[0].tolist() == [[10, 20], [7, 40]]
    assert masks[0].tolist() == [[1.0, 0.5], [0.25, 1.0]]


def test_unmask_constant_value():
    img = viewer.Image.from_array(B, mask=np.array([[1, 0], [1, 1]], np.float32))
    vals, _ = run(img.unmask(-1))
    assert vals[0].tolist() == [[10, -1], [30, 40]]


def test_unmask_same_footprint_true_keeps_outside_masked_false_takes_union():
    # Image covers the left 2 columns of a 4-column grid; value image covers everything.
    t = Affine.identity()
    img = viewer.Image.from_array(np.array([[5, 6], [7, 8]], np.uint8), transform=t)
    grid = Grid(None, t, 4, 2)
    same = evaluate(img.unmask(9).node, grid)[0]
    assert same.values.tolist() == [[5, 6, 9, 9], [7, 8, 9, 9]] or same.values[:, :2].tolist() == [[5, 6], [7, 8]]
    assert same.mask_or_ones().tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
    union = evaluate(img.unmask(9, sameFootprint=False).node, grid)[0]
    assert union.mask_or_ones().tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]
    assert union.values.tolist() == [[5, 6, 9, 9], [7, 8, 9, 9]]


@pytest.mark.parametrize("dtype, value, out", [(np.uint16, -9999, "int32"), (np.uint16, 70000, "uint32"),
                                                (np.uint8, -1, "int16"), (np.uint16, 7, "uint16"),
                                                (np.uint8, 0.5, "float64")])
def test_unmask_takes_a_type_that_holds_the_value(dtype, value, out):
    """Earth Engine's type union: uint16 unmasked with -9999 holds -9999, it does not wrap to 55537."""
    img = viewer.Image.from_array(B.astype(dtype), mask=np.array([[1, 0], [1, 1]], np.float32))
    filled = img.unmask(value)
    assert filled.bands[0].dtype == out
    band = evaluate(filled.node, img.bands[0].grid)[0]
    assert band.values.dtype == np.dtype(out) and band.values.tolist() == [[10, value], [30, 40]]
    assert band.mask is None


def test_unmask_same_footprint_must_be_a_bool():
    with pytest.raises(viewer.InvalidArgument, match="unmask sameFootprint 'false' must be True or False"):
        two_band().unmask(0, "false")


def test_mask_set_keeps_the_input_footprint():
    """Earth Engine: "The output image retains the metadata and footprint of the input image";
    mask(1) does not make the pixels beyond the image valid."""
    t = Affine.identity()
    img = viewer.Image.from_array(np.array([[5, 6], [7, 8]], np.uint8), transform=t)
    grid = Grid(None, t, 4, 2)
    for image in (img.mask(1), img.mask(viewer.Image(1))):
        band = evaluate(image.node, grid)[0]
        assert band.mask_or_ones().tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
    assert evaluate(img.mask(1).unmask(9, False).node, grid)[0].values.tolist() == [[5, 6, 9, 9], [7, 8, 9, 9]]


def test_mask_ops_are_immutable_and_lazy():
    img = two_band()
    before = img.node.key
    out = img.updateMask(img.gt(1)).unmask(3).selfMask()
    assert img.node.key == before
    assert out.node.key != before
    assert out.node.op == "selfMask"


def test_binary_op_mask_is_minimum_and_divide_by_zero_masks():
    a = viewer.Image.from_array(np.array([[4.0, 2.0]], np.float32), mask=np.array([[1.0, 0.5]], np.float32))
    b = viewer.Image.from_array(np.array([[2.0, 0.0]], np.float32), mask=np.array([[0.25, 1.0]], np.float32))
    vals, masks = run(a.divide(b))
    assert vals[0, 0, 0] == 2.0
    assert masks[0].tolist() == [[0.25, 0.0]]


def test_normalized_difference_hand_computed():
    img = viewer.Image.from_array(np.stack([np.array([[3, 0]], np.uint16), np.array([[1, 0]], np.uint16)]))
    nd = img.normalizedDifference(["b1", "b2"])
    assert nd.bandNames().getInfo() == ["nd"]
    vals, masks = run(nd)
    assert vals[0, 0, 0] == pytest.approx(0.5)
    assert masks[0].tolist() == [[1, 0]]


def test_landsat_cloud_mask_the_earth_engine_way():
    img = viewer.Image("LANDSAT/LC08/SAMPLE")
    # the expression from the issue (Collection-1 bit 4) is accepted as written
    masked = img.updateMask(img.select("BQA").bitwiseAnd(1 << 4).eq(0))
    assert masked.bandNames().getInfo() == img.bandNames().getInfo()
    # this sample's BQA is pre-Collection: cloud confidence lives in bits 14-15
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3)
    clear = img.updateMask(cloud.Not())
    out = viewer.data.computePixels({"expression": clear.select("B4"), "fileFormat": "NUMPY_NDARRAY"})
    with __import__("rasterio").open(viewer.get_catalog().image("LANDSAT/LC08/SAMPLE").bands[-1].path) as s:
        bqa = s.read(1)
    expected_cloud = ((bqa >> 14) & 3) == 3
    assert (out["B4"][expected_cloud] == 0).all()
    assert (out["B4"][~expected_cloud] > 0).all()
    fraction = expected_cloud.mean() * 100
    assert fraction == pytest.approx(img.get("CLOUD_COVER"), abs=0.01)
