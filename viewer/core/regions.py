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

__all__ = ["reduce_region", "region_grid", "REGION_REDUCERS", "MAX_PIXELS"]

MAX_PIXELS = 10_000_000
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


def _histogram(v: np.ndarray, buckets: int = 32) -> dict:
    lo, hi = float(v.min()), float(v.max())
    width = (hi - lo) / buckets if hi > lo else 1.0
    counts, edges = np.histogram(v, bins=buckets, range=(lo, lo + width * buckets))
    return {"bucketMin": lo, "bucketWidth": width, "histogram": counts.tolist(),
            "bucketMeans": ((edges[:-1] + edges[1:]) / 2).tolist()}


def _reduce(name: str, v: np.ndarray, percentiles: tuple[float, ...]) -> Any:
    if v.size == 0:
        return None
    if name == "count":
        return int(v.size)
    if name == "frequencyHistogram":
        values, counts = np.unique(v, return_counts=True)
        return {f"{x:g}": int(c) for x, c in zip(values.tolist(), counts.tolist())}
    if name == "histogram":
        return _histogram(v)
    if name == "stdDev":
        return float(v.std())  # population standard deviation, as Earth Engine's stdDev
    fn = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max, "sum": np.sum}[name]
    return float(fn(v))


def reduce_region(image: Any, reducer: Reducer, geometry: Any, scale: float | None = None, crs: Any = None,
                  maxPixels: float = MAX_PIXELS) -> dict:
    """``{band: value}`` (or ``{band_stat: value}``) of the reducer over the region's valid pixels."""
    if not isinstance(reducer, Reducer) or reducer.name not in REGION_REDUCERS:
        shown = reducer.name if isinstance(reducer, Reducer) else type(reducer).__name__
        raise InvalidArgument(f"reducer {shown!r} is not allowed in reduceRegion; allowed: {list(REGION_REDUCERS)}",
                              value=shown, allowed=list(REGION_REDUCERS))
    grid = region_grid(image, geometry, scale, crs, maxPixels)
    raster = evaluate(image.clip(geometry).node, grid)
    out: dict[str, Any] = {}
    for band, info in zip(raster, image.bands):
        valid = np.ones(grid.shape, bool) if band.mask is None else band.mask > 0
        v = band.values[valid].astype(np.float64)
        name = info.name
        if reducer.name == "percentile":
            for p in reducer.percentiles:
                out[f"{name}_p{p:g}"] = float(np.percentile(v, p)) if v.size else None
        elif reducer.name == "minMax":
            out[f"{name}_min"], out[f"{name}_max"] = _reduce("min", v, ()), _reduce("max", v, ())
        else:
            out[name] = _reduce(reducer.name, v, reducer.percentiles)
    return out
