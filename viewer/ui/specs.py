"""From UI layer settings to the core's content-addressed layer specs (one place).

The tiles, the legends and the exports all read the same :class:`LayerSpec`, so what a
legend says is what the tiles show. This module knows nothing of the state classes: it
takes plain values (images, band lists, ranges), so ``state`` imports it and not the
other way round.
"""
from __future__ import annotations

import math

from typing import Any, Sequence

import numpy as np

from ..core.classes import Classes
from ..core.errors import InvalidArgument
from ..core.grid import Grid
from ..core.image import Image
from ..core.layers import LayerSpec, class_layer, image_layer, mask_layer
from ..core.ops import COMPARISONS, VIS_KEYS
from ..core.stats import band_stats, stretch_range
from ..core.visualize import to_hex

__all__ = ["default_vis", "image_spec", "mask_spec", "class_spec", "stretch_for_view", "percentile_range",
           "DEFAULT_PERCENTILES"]

#: Percentiles used when an image with a wide integer type (e.g. uint16 DNs) is added without a range.
DEFAULT_PERCENTILES = (2, 98)


def _is_boolean(node) -> bool:
    """Does the node only hold 0/1 values (comparisons, ``And``/``Or``, ``Not``)?"""
    while node.op == "select":
        node = node.args[0]
    if node.op == "binary":
        return node.args[0] in COMPARISONS
    return node.op == "unary" and node.args[0] == "Not"


def _needs_stretch(dtype: str) -> bool:
    dt = np.dtype(dtype)
    return dt.kind in "ui" and dt.itemsize > 1


def stretch_for_view(image: Image, grid: Grid, preset: str) -> tuple[list[float], list[float]]:
    """Per-band (min, max) lists of a stretch preset over ``grid`` (1σ/2σ/3σ, 90/98/100 %), each to about
    four significant digits of its span, as people write ranges (10424, not 10423.979373839265: the
    min/max fields showed "10423.97" cut off)."""
    pairs = [(_tidy(lo, hi - lo), _tidy(hi, hi - lo)) for lo, hi in stretch_range(image, grid, preset)]
    return [lo for lo, _ in pairs], [hi if hi > lo else lo + 1.0 for lo, hi in pairs]


def _tidy(value: float, span: float) -> float:
    """``value`` rounded to the decimals that give ``span`` four significant digits (none for spans >= 1000)."""
    decimals = max(0, 3 - math.floor(math.log10(span))) if span > 0 else 0
    return float(round(value, decimals))


def percentile_range(image: Image, grid: Grid, low: float = 2, high: float = 98) -> tuple[list[float], list[float]]:
    """Per-band (``low``, ``high``) percentiles over ``grid`` (the default stretch of wide integer types)."""
    lo, hi = [], []
    for s in band_stats(image, grid, (low, high)):
        if not s["count"]:
            raise InvalidArgument(f"band {s['band']!r} has no valid pixels; give min and max", value=s["band"])
        a, b = s["percentiles"][f"p{low:g}"], s["percentiles"][f"p{high:g}"]
        lo.append(float(a))
        hi.append(float(b) if b > a else float(a) + 1.0)
    return lo, hi


def _bands_for(image: Image, bands: Any) -> list[str]:
    if isinstance(bands, str):
        bands = [b.strip() for b in bands.split(",") if b.strip()]
    if bands is None:
        n = len(image.bands)
        return [b.name for b in image.bands[: 3 if n >= 3 else 1]]
    return list(image.select(list(bands)).bandNames())


def default_vis(image: Image, vis_params: dict | None, kind: str | None = None) -> dict:
    """Layer settings for ``image``: Earth Engine defaults where ``vis_params`` is silent.

    Images: ``bands`` default to the first band, or the first three as RGB; without a range,
    8-bit types use 0..255, floats and masks 0..1, and wider integer types (uint16 DNs) the
    2nd-98th percentiles over the image's native extent (computed by ``stats.band_stats``
    on the native grid subsampled to at most 512 pixels per side). ``gamma`` is a list, one
    value per shown band.
    """
    if vis_params is not None and not isinstance(vis_params, dict):
        raise InvalidArgument(f"vis_params {vis_params!r} must be a dict or None", value=vis_params)
    params = dict(vis_params or {})
    unknown = set(params) - set(VIS_KEYS)
    if unknown:
        raise InvalidArgument(f"visualization parameters {sorted(unknown)} are not allowed; allowed: "
                              f"{sorted(VIS_KEYS)}", value=sorted(unknown), allowed=sorted(VIS_KEYS))
    if kind is None:
        kind = "mask" if all(b.kind == "mask" for b in image.bands) and not params else "image"
    if kind == "classes":
        return {"kind": "classes", "bands": [image.bands[0].name]}
    if kind == "mask":
        return {"kind": "mask", "bands": [b.name for b in image.bands], "vmin": [0.0], "vmax": [1.0]}
    bands = _bands_for(image, params.pop("bands", None))
    src = image.select(bands)
    extra: dict[str, Any] = {}
    opacity = params.pop("opacity", None)
    if opacity is not None:
        extra["vis_opacity"] = opacity
    has_range = any(params.get(k) is not None for k in ("min", "max", "gain", "bias"))
    if not has_range and _is_boolean(src.node):  # comparisons and Not(): 0/1 images, shown 0 black .. 1 white
        params["min"], params["max"] = 0, 1
    elif not has_range and _needs_stretch(src.bands[0].dtype) and src.native_grid() is not None:
        params["min"], params["max"] = percentile_range(src, src.native_grid(), *DEFAULT_PERCENTILES)
    spec = image_layer(src, params)
    vis = spec.style["vis"]
    out = {"kind": "image", "bands": bands, "vmin": vis["min"], "vmax": vis["max"],
           "gamma": [float(g) for g in vis["gamma"]],
           "palette": [to_hex(c) for c in vis["palette"]] if vis["palette"] else None}
    out.update(extra)
    return out


def _per(values: Sequence[float], n: int) -> list[float]:
    vals = [float(v) for v in values] or [0.0]
    return vals if len(vals) == n else [vals[0]] * n


def image_spec(image: Image, bands: Sequence[str], vmin: Sequence[float], vmax: Sequence[float],
               gamma: Sequence[float], palette: Sequence[str] | None) -> LayerSpec:
    """The spec of an image layer: ``bands`` (1 or 3) of ``image`` with their ranges, gammas and palette."""
    n = len(bands) or 1
    vis: dict[str, Any] = {"bands": list(bands), "min": _per(vmin, n), "max": _per(vmax, n),
                           "gamma": _per(gamma or [1.0], n)}
    if palette and n == 1:
        vis["palette"] = list(palette)
    return image_layer(image, vis)


def mask_spec(image: Image, bands: Sequence[str], color: str | None) -> LayerSpec:
    """The spec of a mask layer: ``bands`` of ``image`` (all when empty) in ``color`` (else grey)."""
    src = image.select(list(bands)) if bands else image
    return mask_layer(src, [color] if color else None, 1.0)


def class_spec(image: Image, classes: Classes | None, hidden: Sequence[int]) -> LayerSpec:
    """The spec of a class overlay: the first band of ``image`` coloured by ``classes``, ``hidden`` ids transparent."""
    return class_layer(image.select([0]), classes, list(hidden), 1.0)
