"""Per-pixel reducers over a stack of images, Earth Engine style (masked pixels left out).

``reduce_stack(name, values, masks, arg)`` takes one band of N images on the same grid
(values as arrays, masks in Earth Engine polarity: float32 in [0, 1] or ``None`` = valid)
and returns the reduced values and mask. A pixel masked in every image is 0 and masked
in the output, as in Earth Engine.

* ``mosaic``: the last image on top (later images cover earlier ones where they are valid);
* ``median``, ``mean``, ``min``, ``max``, ``sum``, ``count``: of the valid values
  (``median`` of an even count is the mean of the two middle values);
* ``percentile``: linear interpolation between closest ranks (numpy's default);
* ``qualityMosaic``: per pixel, the image whose quality band is highest (ties: the later
  image, as in ``mosaic``); every band of that image is taken.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import InvalidArgument
from .ops import REDUCERS

__all__ = ["Reducer", "REDUCERS", "reduce_stack", "reduced_dtype", "quality_order", "take_by_index"]



@dataclass(frozen=True)
class Reducer:
    """An Earth Engine-style reducer: ``Reducer.median()``, ``Reducer.percentile([90])``."""

    name: str
    percentiles: tuple[float, ...] = ()

    @classmethod
    def median(cls) -> "Reducer":
        return cls("median")

    @classmethod
    def mean(cls) -> "Reducer":
        return cls("mean")

    @classmethod
    def min(cls) -> "Reducer":  # noqa: A003 - Earth Engine's name
        return cls("min")

    @classmethod
    def max(cls) -> "Reducer":  # noqa: A003
        return cls("max")

    @classmethod
    def sum(cls) -> "Reducer":  # noqa: A003
        return cls("sum")

    @classmethod
    def count(cls) -> "Reducer":
        return cls("count")

    @classmethod
    def stdDev(cls) -> "Reducer":  # noqa: N802 - Earth Engine's name
        return cls("stdDev")

    @classmethod
    def minMax(cls) -> "Reducer":  # noqa: N802
        return cls("minMax")

    @classmethod
    def histogram(cls) -> "Reducer":
        return cls("histogram")

    @classmethod
    def frequencyHistogram(cls) -> "Reducer":  # noqa: N802
        return cls("frequencyHistogram")

    @classmethod
    def percentile(cls, percentiles: Sequence[float]) -> "Reducer":
        ps = list(percentiles) if isinstance(percentiles, (list, tuple)) else [percentiles]
        if not ps or not all(isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 100 for p in ps):
            raise InvalidArgument(f"percentiles {percentiles!r} must be numbers in [0, 100]", value=percentiles,
                                  allowed="numbers in [0, 100]")
        return cls("percentile", tuple(float(p) for p in ps))

    def output_names(self, band: str) -> list[str]:
        """Earth Engine's output band names: ``B4`` for most, ``B4_p90`` for percentiles."""
        if self.name != "percentile":
            return [band]
        return [f"{band}_p{p:g}" for p in self.percentiles]


def reduced_dtype(name: str, dtype: str) -> str:
    """The output type of a reducer for an input band type."""
    dt = np.dtype(dtype)
    if name in ("mean", "median", "percentile"):
        return "float64"
    if name == "count":
        return "int32"
    if name == "sum":
        return "float64" if dt.kind == "f" else "int64"
    return dt.name  # mosaic, min, max, qualityMosaic keep the type


def _valid(values: Sequence[np.ndarray], masks: Sequence[np.ndarray | None]) -> np.ndarray:
    return np.stack([np.ones(v.shape, bool) if m is None else m > 0 for v, m in zip(values, masks)])


def _mask_out(count: np.ndarray) -> np.ndarray | None:
    return None if count.min(initial=1) > 0 else (count > 0).astype(np.float32)


def reduce_stack(name: str, values: Sequence[np.ndarray], masks: Sequence[np.ndarray | None],
                 percentile: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One band of N images reduced per pixel; see the module docstring for each reducer."""
    if name not in REDUCERS:
        raise InvalidArgument(f"reducer {name!r} is not allowed; allowed: {list(REDUCERS)}", value=name,
                              allowed=list(REDUCERS))
    if not values:
        raise InvalidArgument("cannot reduce an empty collection", value=0, allowed=">= 1 image")
    if name == "mosaic":
        out = np.zeros(values[0].shape, values[0].dtype)
        mask = np.zeros(values[0].shape, np.float32)
        for v, m in zip(values, masks):
            top = np.ones(v.shape, bool) if m is None else m > 0
            out[top] = v[top]
            mask[top] = 1.0 if m is None else m[top]
        return out, (None if mask.min(initial=1) >= 1 else mask)
    valid = _valid(values, masks)
    count = valid.sum(axis=0)
    if name == "count":
        return count.astype(np.int32), None
    if name in ("min", "max", "sum"):
        dtype = np.dtype(reduced_dtype(name, values[0].dtype.name))
        stack = np.stack([v.astype(dtype, copy=False) for v in values])
        if name == "sum":
            out = np.where(valid, stack, 0).sum(axis=0, dtype=dtype)
        else:
            fill = np.iinfo(dtype).max if dtype.kind in "iu" else np.inf
            fill = fill if name == "min" else (np.iinfo(dtype).min if dtype.kind in "iu" else -np.inf)
            out = getattr(np.where(valid, stack, fill), name)(axis=0)
        return np.where(count > 0, out, 0).astype(dtype, copy=False), _mask_out(count)
    # medians of 8/16-bit integers are exact in float32 (halves of sums below 2**24), and faster
    exact32 = name == "median" and values[0].dtype.kind in "iu" and values[0].dtype.itemsize <= 2
    work = np.float32 if exact32 else np.float64
    stack = np.stack([v.astype(work, copy=False) for v in values])
    stack[~valid] = np.nan
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-masked pixels are handled below
        if name == "mean":
            out = np.nanmean(stack, axis=0)
        elif name == "median":
            out = np.nanmedian(stack, axis=0)
        else:
            out = np.nanpercentile(stack, percentile, axis=0)
    return np.where(count > 0, out, 0.0).astype(np.float64, copy=False), _mask_out(count)


def quality_order(quality: Sequence[np.ndarray], masks: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the index of the image with the highest valid quality (ties: the later image)
    and whether any image is valid there."""
    valid = _valid(quality, masks)
    stack = np.where(valid, np.stack([q.astype(np.float64, copy=False) for q in quality]), -np.inf)
    reversed_best = np.argmax(stack[::-1], axis=0)  # argmax takes the first: reversed, the last
    return len(quality) - 1 - reversed_best, valid.any(axis=0)


def take_by_index(values: Sequence[np.ndarray], masks: Sequence[np.ndarray | None], index: np.ndarray,
                  any_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """One band of N images, taking per pixel the image ``index`` says (qualityMosaic)."""
    stack = np.stack(values)
    out = np.take_along_axis(stack, index[None], axis=0)[0]
    mstack = np.stack([np.ones(v.shape, np.float32) if m is None else m for v, m in zip(values, masks)])
    mask = np.where(any_valid, np.take_along_axis(mstack, index[None], axis=0)[0], 0).astype(np.float32)
    out = np.where(any_valid, out, 0).astype(values[0].dtype, copy=False)
    return out, (None if mask.min(initial=1) >= 1 else mask)
