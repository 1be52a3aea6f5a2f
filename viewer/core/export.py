"""Exports: a ``getPixels`` request or a layer (as the map shows it, or its raw bands) -> bytes.

A layer exported as PNG or JPEG is ``computePixels`` of its display expression
(:meth:`viewer.core.layers.LayerSpec.display`), the expression its tiles evaluate, so an
export cannot drift from the map. :func:`layer_request` writes that request as JSON-able
data: passed to ``data.computePixels`` it runs anywhere the catalog is available.
"""
from __future__ import annotations

from typing import Any

from .errors import InvalidArgument
from .grid import Grid
from .image import Image
from .layers import LayerSpec, check_token, resolve
from .pixels import check_limits, computePixels, file_format, getPixels, resolve_grid
from .serialize import to_json

__all__ = ["EXPORT_TYPES", "LAYER_KEYS", "export", "export_layer", "layer_request"]

#: Formats an export answers with: file format -> (media type, file extension).
EXPORT_TYPES = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "GEO_TIFF": ("image/tiff", "tif"),
                "NPY": ("application/octet-stream", "npy")}
#: Keys of a layer export request.
LAYER_KEYS = ("layer", "grid", "region", "fileFormat", "bandIds")


def _format(fmt: Any) -> str:
    try:
        key = file_format(fmt)
    except InvalidArgument:
        key = None  # answered below with the formats an export can give
    if key == "AUTO_JPEG_PNG":
        key = "PNG"
    if key not in EXPORT_TYPES:
        raise InvalidArgument(f"fileFormat {fmt!r} is not available over HTTP; allowed: {sorted(EXPORT_TYPES)}",
                              value=fmt, allowed=sorted(EXPORT_TYPES))
    return key


def export_layer(spec: LayerSpec, params: dict, fmt: str) -> bytes:
    """A layer on the grid of ``params`` (``grid``, ``region``; ``bandIds`` for raw bands): PNG/JPEG as
    its tiles draw it, GEO_TIFF/NPY its raw bands (mask applied)."""
    if fmt in ("GEO_TIFF", "NPY"):
        request = {"expression": spec.image, "fileFormat": fmt}
        request.update({k: params[k] for k in ("grid", "region", "bandIds") if k in params})
        return computePixels(request)
    if "bandIds" in params:
        raise InvalidArgument(f"bandIds pick raw bands: only with GEO_TIFF or NPY, not {fmt} (a {fmt} export draws "
                              "the layer as its tiles do)", value=fmt, allowed=["GEO_TIFF", "NPY"])
    grid = resolve_grid(params.get("grid"), params.get("region"), spec.node.native_grid())
    check_limits(grid, 4, 4)  # RGBA, one byte each
    request = {"expression": Image(_node=spec.display()), "fileFormat": fmt}
    request.update({k: params[k] for k in ("grid", "region") if k in params})
    return computePixels(request)


def export(body: dict) -> tuple[bytes, str, str]:
    """Run a ``getPixels`` request (``assetId``) or a layer export (``layer`` token) ->
    (bytes, media type, file extension). Formats: PNG, JPEG, GEO_TIFF, NPY."""
    key = _format(body.get("fileFormat", "PNG"))
    mime, ext = EXPORT_TYPES[key]
    if "expression" in body:
        raise InvalidArgument("POST /pixels takes an assetId (a getPixels request) or a layer token; image "
                              "expressions are not accepted over HTTP (requests read catalog assets only)",
                              value="expression", allowed=["assetId", "layer"])
    if "layer" not in body:
        return getPixels({**body, "fileFormat": key}), mime, ext
    extra = set(body) - set(LAYER_KEYS)
    if extra:
        raise InvalidArgument(f"layer export has unknown keys {sorted(extra)}; allowed: {', '.join(LAYER_KEYS)}",
                              value=sorted(extra), allowed=list(LAYER_KEYS))
    return export_layer(resolve(check_token(body["layer"])), body, key), mime, ext


def layer_request(spec: LayerSpec, grid: Grid, fmt: str = "PNG") -> dict:
    """The JSON-able ``data.computePixels`` request of the layer as the map shows it on ``grid``
    (its display expression: visualize, class colours or mask ramp)."""
    return {"expression": to_json(spec.display()), "fileFormat": fmt, "grid": grid.to_dict()}
