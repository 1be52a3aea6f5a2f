"""Collection reducers against numpy on the same arrays (masked pixels left out, all-masked -> masked 0)."""
from __future__ import annotations

import numpy as np
import pytest

from viewer.core.reducers import Reducer, quality_order, reduce_stack, take_by_index


@pytest.fixture
def stack():
    rng = np.random.default_rng(7)
    values = [rng.integers(0, 1000, (6, 5)).astype(np.uint16) for _ in range(4)]
    masks = [None] + [(rng.random((6, 5)) > 0.4).astype(np.float32) for _ in range(3)]
    masks[0] = None
    return values, masks


def _masked(values, masks):
    valid = np.stack([np.ones(v.shape, bool) if m is None else m > 0 for v, m in zip(values, masks)])
    return np.ma.masked_array(np.stack(values).astype(np.float64), ~valid)


@pytest.mark.parametrize("name", ["mean", "median", "min", "max", "sum", "count"])
def test_reducers_match_numpy_masked_arrays(stack, name):
    values, masks = stack
    masks = [np.zeros((6, 5), np.float32)] + masks[1:]  # image 0 masked everywhere: left out
    ma = _masked(values, masks)
    out, mask = reduce_stack(name, values, masks)
    expected = {"mean": ma.mean(axis=0), "median": np.ma.median(ma, axis=0), "min": ma.min(axis=0),
                "max": ma.max(axis=0), "sum": ma.sum(axis=0), "count": ma.count(axis=0)}[name]
    if name == "count":
        np.testing.assert_array_equal(out, expected)
        assert mask is None
        return
    valid = ~np.ma.getmaskarray(expected)
    np.testing.assert_allclose(out[valid], expected.data[valid])
    assert (out[~valid] == 0).all()
    np.testing.assert_array_equal(mask is None or (mask > 0), valid if mask is not None else True)


def test_all_masked_pixels_are_masked_zero():
    values = [np.full((2, 2), 5, np.uint8), np.full((2, 2), 7, np.uint8)]
    masks = [np.array([[0, 1], [1, 1]], np.float32), np.array([[0, 0], [1, 1]], np.float32)]
    for name in ("mean", "median", "min", "max", "sum", "mosaic"):
        out, mask = reduce_stack(name, values, masks)
        assert out[0, 0] == 0 and mask[0, 0] == 0, name
    assert reduce_stack("mosaic", values, masks)[0].tolist() == [[0, 5], [7, 7]]  # last on top
    assert reduce_stack("median", values, masks)[0].tolist() == [[0, 5], [6, 6]]  # even count: mean of the middle


def test_percentile_and_names(stack):
    values, masks = stack
    out, _ = reduce_stack("percentile", values, masks, 90)
    expected = np.nanpercentile(np.where(_masked(values, masks).mask, np.nan, np.stack(values).astype(float)), 90,
                                axis=0)
    np.testing.assert_allclose(out, expected)
    assert Reducer.percentile([10, 90]).output_names("B4") == ["B4_p10", "B4_p90"]
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        Reducer.percentile([120])


def test_quality_mosaic_takes_the_best_image_and_the_later_one_on_ties():
    q = [np.array([[1, 5]], float), np.array([[3, 5]], float), np.array([[2, 9]], float)]
    masks = [None, None, np.array([[1, 0]], np.float32)]
    index, any_valid = quality_order(q, masks)
    assert index.tolist() == [[1, 1]] and any_valid.all()  # image 2 is masked at (0, 1): tie 0/1 -> 1
    vals = [np.array([[10, 11]]), np.array([[20, 21]]), np.array([[30, 31]])]
    out, mask = take_by_index(vals, masks, index, any_valid)
    assert out.tolist() == [[20, 21]] and mask is None
