"""From UI layer state to the core's content-addressed layer specs (one place).

The tiles, the legends and the exports all read the same :class:`LayerSpec`, so what a
legend says is what the tiles show.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import InvalidArgument
from ..core.grid import Grid
from ..core.image import Image
from ..core.layers import LayerSpec, class_layer, image_layer, mask_layer
from ..core.ops import COMPARISONS, VIS_KEYS
from ..core.visualize import to_hex

if TYPE_CHECKING:
    from .state import LayerState

__all__ = ["default_vis", "layer_spec", "stretch_for_view", "percentile_range",
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
    """Per-band (min, max) lists of a stretch preset over ``grid`` (1σ/2σ/3σ, 90/98/100 %)."""
    from ..core.stats import stretch_range

    pairs = stretch_range(image, grid, preset)
    return [float(lo) for lo, _ in pairs], [float(hi) for _, hi in pairs]


def percentile_range(image: Image, grid: Grid, low: float = 2, high: float = 98) -> tuple[list[float], list[float]]:
    """Per-band (``low``, ``high``) percentiles over ``grid`` (the default stretch of wide integer types)."""
    from ..core.stats import band_stats

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
    """LayerState settings for ``image``: Earth Engine defaults where ``vis_params`` is silent.

    Images: ``bands`` default to the first band, or the first three as RGB; without a range,
    8-bit types use 0..255, floats and masks 0..1, and wider integer types (uint16 DNs) the
    2nd-98th percentiles over the image's native extent (computed by ``stats.band_stats``
    on the native grid subsampled to at most 512 pixels per side).
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
    out = {"kind": "image", "bands": bands, "vmin": vis["min"], "vmax": vis["max"], "gamma": float(vis["gamma"][0]),
           "palette": [to_hex(c) for c in vis["palette"]] if vis["palette"] else None}
    out.update(extra)
    return out


def layer_spec(layer: "LayerState") -> LayerSpec:
    """The :class:`LayerSpec` the layer's tiles, legend and export use."""
    img = layer.display_image()
    if layer.kind == "classes":
        classes = layer.effective_classes()
        return class_layer(img.select([0]), classes if classes is not None else None, layer.hidden_classes, 1.0)
    if layer.kind == "mask":
        src = img.select(list(layer.bands)) if layer.bands else img
        return mask_layer(src, [layer.mask_color] if layer.mask_color else None, 1.0)
    n = len(layer.bands) or 1
    vis: dict[str, Any] = {"bands": list(layer.bands), "min": _per(layer.vmin, n), "max": _per(layer.vmax, n),
                           "gamma": layer.gamma}
    if layer.palette and n == 1:
        vis["palette"] = list(layer.palette)
    return image_layer(img, vis)


def _per(values: list, n: int) -> list[float]:
    vals = [float(v) for v in values] or [0.0]
    return vals if len(vals) == n else [vals[0]] * n

