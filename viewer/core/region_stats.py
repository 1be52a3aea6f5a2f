"""What a region panel shows, computed by ``reduceRegion``'s own code.

Public API::

    region_summary(image, geometry, scale) -> {"grid", "bands": [{"band", "count", "mean", "min", "max",
                                               "stdDev", "histogram"}], "classes": [...] | None}
    region_comparison(pred, truth, geometry, scale) -> class_stats.Comparison
    region_request(image, geometry, scale, fmt) -> a JSON-able ``data.computePixels`` request
    region_export(image, geometry, scale, fmt) -> bytes (that request, run)
    same_class_table(a, b) -> whether two class tables name the same ids alike

Every figure comes from one evaluation of the image clipped to the region on
:func:`viewer.core.regions.region_grid` (the grid ``Image.reduceRegion`` uses for the same
geometry, scale and CRS), reduced with the reducers' own functions, so the panel's numbers
are ``reduceRegion``'s: ``count`` = ``Reducer.count()``, ``stdDev`` = ``Reducer.stdDev()``,
``histogram`` = ``Reducer.histogram()``, a class layer's counts = ``Reducer.frequencyHistogram()``.
Class areas are ground areas (:func:`viewer.core.class_stats.pixel_area`).
"""
from __future__ import annotations

from typing import Any

from .class_stats import Comparison, class_counts_array, compare_masks, pixel_area
from .classes import Classes
from .errors import InvalidArgument
from .image import Image
from .pixels import computePixels
from .regions import MAX_PIXELS, histogram, region_grid, region_raster, reduce_values, valid_values
from .serialize import to_json

__all__ = ["region_summary", "region_comparison", "region_request", "region_export", "same_class_table",
           "BAND_STATS", "EXPORT_FORMATS"]

#: The per-band figures of :func:`region_summary` (reduceRegion reducer names).
BAND_STATS = ("count", "mean", "min", "max", "stdDev")
#: Formats of a region export.
EXPORT_FORMATS = ("GEO_TIFF", "NPY")


def _image(image: Any, what: str = "image") -> Image:
    if not isinstance(image, Image):
        raise InvalidArgument(f"{what} must be a viewer.Image, got {type(image).__name__}",
                              value=type(image).__name__, allowed="viewer.Image")
    return image


def _class_table(image: Image, classes: Any) -> Classes | None:
    """The class table of a one-band class image (``classes`` if given), else None (also for
    ``classes=False``)."""
    if len(image.bands) != 1 or classes is False:
        return None
    if classes is not None:
        return Classes.coerce(classes)
    band = image.bands[0]
    return Classes.from_band(band) if band.kind == "class" else None


def region_summary(image: Image, geometry: Any, scale: float | None = None, crs: Any = None,
                   max_pixels: float = MAX_PIXELS, classes: Any = None) -> dict:
    """Per band the region's valid-pixel ``count``, ``mean``, ``min``, ``max``, ``stdDev`` and
    ``histogram`` (each equal to ``image.reduceRegion`` with that reducer; None without valid
    pixels), and for a one-band class image (or with ``classes``; not with ``classes=False``)
    its class ``count``, ``area_m2`` and ``percent`` per class. ``grid`` is the grid the region was evaluated on."""
    image = _image(image)
    grid, raster = region_raster(image, geometry, scale, crs, max_pixels)
    bands = []
    for band, info in zip(raster, image.bands):
        v = valid_values(band)
        entry: dict[str, Any] = {"band": info.name}
        entry.update({name: reduce_values(name, v) for name in BAND_STATS})
        entry["histogram"] = histogram(v) if v.size else None
        bands.append(entry)
    table = _class_table(image, classes)
    counts = None
    if table is not None:
        counts = class_counts_array(raster[0].values, raster[0].mask, table, pixel_area(grid))
    return {"grid": grid, "bands": bands, "classes": counts}


def region_comparison(pred: Image, truth: Image, geometry: Any, scale: float | None = None, crs: Any = None,
                      max_pixels: float = MAX_PIXELS, classes: Any = None) -> Comparison:
    """Prediction vs truth inside ``geometry``, on the truth's region grid (pixels valid in both)."""
    pred, truth = _image(pred, "pred"), _image(truth, "truth")
    grid = region_grid(truth, geometry, scale, crs, max_pixels)
    return compare_masks(pred.clip(geometry), truth.clip(geometry), grid, classes)


def region_request(image: Image, geometry: Any, scale: float | None = None, fmt: str = "GEO_TIFF",
                   crs: Any = None, max_pixels: float = MAX_PIXELS) -> dict:
    """The JSON-able ``data.computePixels`` request of ``image`` clipped to ``geometry`` on its
    region grid (pixels outside the geometry masked: zeros, and nodata/mask where the format
    carries one)."""
    image = _image(image)
    if fmt not in EXPORT_FORMATS:
        raise InvalidArgument(f"region export format {fmt!r} is not allowed; allowed: {list(EXPORT_FORMATS)}",
                              value=fmt, allowed=list(EXPORT_FORMATS))
    grid = region_grid(image, geometry, scale, crs, max_pixels)
    return {"expression": to_json(image.clip(geometry).node), "fileFormat": fmt, "grid": grid.to_dict()}


def region_export(image: Image, geometry: Any, scale: float | None = None, fmt: str = "GEO_TIFF",
                  crs: Any = None, max_pixels: float = MAX_PIXELS) -> bytes:
    """The bytes of :func:`region_request` run through ``data.computePixels``."""
    return computePixels(region_request(image, geometry, scale, fmt, crs, max_pixels))


def same_class_table(a: Classes | None, b: Classes | None) -> bool:
    """Whether two class tables list the same ids with the same names (colours may differ)."""
    if a is None or b is None or not len(a) or not len(b):
        return False
    return [(i, a.name(i)) for i in a.ids] == [(i, b.name(i)) for i in b.ids]
