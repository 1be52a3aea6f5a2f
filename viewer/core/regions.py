"""Statistics of an image within a region: ``Image.reduceRegion``, Earth Engine style.

The image is evaluated by the one evaluator on a grid covering the region's bounding box
at ``scale`` metres in ``crs`` (default: the image's native CRS and resolution), pixel
centres inside the geometry count (the ``clip`` op), masked pixels are left out, and the
reducer runs over the valid pixels of every band. A region bigger than ``maxPixels``
is refused, as in Earth Engine.

Reducers: ``mean``, ``median``, ``min``, ``max``, ``sum``, ``count``, ``stdDev``,
``percentile`` (``B4_p90``), ``minMax`` (``B4_min``, ``B4_max``),
``histogram`` (``{"bucketMeans", "histogram", "bucketMin", "bucketWidth"}``) and
``frequencyHistogram`` (``{value: count}``, for class bands). Results are keyed by band
name as Earth Engine returns them; a band with no valid pixel gives ``None``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from affine import Affine

from .errors import InvalidArgument, LimitExceeded
from .evaluate import evaluate
from .geometry import geojson_bounds, to_geojson
from .grid import Grid, parse_crs
from .reducers import Reducer

__all__ = ["reduce_region", "region_grid", "region_raster", "valid_values", "reduce_values", "histogram",
           "REGION_REDUCERS", "MAX_PIXELS", "HISTOGRAM_BUCKETS"]

MAX_PIXELS = 10_000_000
#: Buckets of the ``histogram`` reducer.
HISTOGRAM_BUCKETS = 32
REGION_REDUCERS = ("mean", "median", "min", "max", "sum", "count", "stdDev", "percentile", "minMax", "histogram",
                   "frequencyHistogram")


def region_grid(image: Any, geometry: Any, scale: float | None = None, crs: Any = None,
                max_pixels: float = MAX_PIXELS) -> Grid:
    """The pixel grid covering ``geometry``'s bounding box at ``scale`` in ``crs``."""
    native = image.native_grid()
    out_crs = parse_crs(crs) if crs is not None else (native.crs if native is not None else None)
    if out_crs is None:
        raise InvalidArgument("reduceRegion needs a georeferenced image or crs=", value=None,
                              allowed="an image with a CRS, or crs='EPSG:...'")
    if scale is None:
        if native is None or crs is not None:
            raise InvalidArgument("reduceRegion needs scale= (metres) here", value=None, allowed="a positive number")
        res = min(native.resolution())
    else:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise InvalidArgument(f"scale {scale!r} must be a positive number of metres", value=scale,
                                  allowed="a finite number > 0")
        res = scale / 111_319.49079327357 if out_crs.is_geographic else float(scale)
    x0, y0, x1, y1 = geojson_bounds(to_geojson(geometry), out_crs)
    width, height = max(1, math.ceil((x1 - x0) / res)), max(1, math.ceil((y1 - y0) / res))
    if width * height > max_pixels:
        raise LimitExceeded(f"region of {width}x{height} pixels at scale {scale} is over maxPixels {max_pixels:g}; "
                            "use a larger scale or pass maxPixels", value=width * height, allowed=max_pixels)
    return Grid(out_crs, Affine(res, 0.0, x0, 0.0, -res, y1), width, height)


def histogram(v: np.ndarray, buckets: int = HISTOGRAM_BUCKETS) -> dict:
    """Earth Engine's ``histogram`` reducer output for values ``v`` (``buckets`` equal buckets from
    the minimum to the maximum; one bucket of width 1 when all values are equal)."""
    lo, hi = float(v.min()), float(v.max())
    width = (hi - lo) / buckets if hi > lo else 1.0
    counts, edges = np.histogram(v, bins=buckets, range=(lo, lo + width * buckets))
    return {"bucketMin": lo, "bucketWidth": width, "histogram": counts.tolist(),
            "bucketMeans": ((edges[:-1] + edges[1:]) / 2).tolist()}


def reduce_values(name: str, v: np.ndarray) -> Any:
    """One reducer (not ``percentile``/``minMax``) over the valid values ``v`` (float64); None if empty."""
    if v.size == 0:
        return None
    if name == "count":
        return int(v.size)
    if name == "frequencyHistogram":
        values, counts = np.unique(v, return_counts=True)
        return {f"{x:g}": int(c) for x, c in zip(values.tolist(), counts.tolist())}
    if name == "histogram":
        return histogram(v)
    if name == "stdDev":
        return float(v.std())  # population standard deviation, as Earth Engine's stdDev
    fn = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max, "sum": np.sum}[name]
    return float(fn(v))


def region_raster(image: Any, geometry: Any, scale: float | None = None, crs: Any = None,
                  max_pixels: float = MAX_PIXELS):
    """(grid, raster): the image clipped to ``geometry`` evaluated on :func:`region_grid`."""
    grid = region_grid(image, geometry, scale, crs, max_pixels)
    return grid, evaluate(image.clip(geometry).node, grid)


def valid_values(band: Any) -> np.ndarray:
    """The values of one evaluated band where its mask is > 0, as float64."""
    valid = np.ones(band.values.shape, bool) if band.mask is None else band.mask > 0
    return band.values[valid].astype(np.float64)


def reduce_region(image: Any, reducer: Reducer, geometry: Any, scale: float | None = None, crs: Any = None,
                  maxPixels: float = MAX_PIXELS) -> dict:
    """``{band: value}`` (or ``{band_stat: value}``) of the reducer over the region's valid pixels."""
    if not isinstance(reducer, Reducer) or reducer.name not in REGION_REDUCERS:
        shown = reducer.name if isinstance(reducer, Reducer) else type(reducer).__name__
        raise InvalidArgument(f"reducer {shown!r} is not allowed in reduceRegion; allowed: {list(REGION_REDUCERS)}",
                              value=shown, allowed=list(REGION_REDUCERS))
    _, raster = region_raster(image, geometry, scale, crs, maxPixels)
    out: dict[str, Any] = {}
    for band, info in zip(raster, image.bands):
        v = valid_values(band)
        name = info.name
        if reducer.name == "percentile":
            for p in reducer.percentiles:
                out[f"{name}_p{p:g}"] = float(np.percentile(v, p)) if v.size else None
        elif reducer.name == "minMax":
            out[f"{name}_min"], out[f"{name}_max"] = reduce_values("min", v), reduce_values("max", v)
        else:
            out[name] = reduce_values(reducer.name, v)
    return out
