"""Map tiles: XYZ tile grids, rendering of layer specs through the one evaluator, fast encoding.

Web Mercator tiles follow the WebMercatorQuad tile matrix set (EPSG:3857, 256 x 256
pixels, ``x`` from the antimeridian eastwards, ``y`` from the north edge southwards).

Images without a CRS (plain pixel coordinates) use a pixel tile scheme: at zoom ``z`` a
256-pixel tile covers ``256 * 2**(zmax - z)`` image pixels, where ``zmax`` =
:func:`pixel_max_zoom` is the first zoom at which the whole image fits in a square of
``256 * 2**zmax`` pixels shown at one image pixel per screen pixel. Tile ``(0, 0)`` starts
at the image's top-left corner, ``x`` grows to the right and ``y`` downwards; zooms above
``zmax`` magnify. :func:`pixel_tile_source_options` gives the matching options of a Bokeh
``WMTSTileSource`` for a plot whose x is the image column and whose y is minus the row.
"""
from __future__ import annotations

import io
import math
from functools import lru_cache

import morecantile
import numpy as np
from affine import Affine
from PIL import Image as PILImage
from rasterio.crs import CRS

from .encode import encode_jpeg, encode_png_fast, encode_png_planes, planes_from_layers, stack_rgba
from .errors import InvalidArgument
from .evaluate import evaluate
from .grid import Grid
from .layers import LayerSpec
from .visualize import palette_lut, visualize_layers

__all__ = ["TILE_SIZE", "MAX_ZOOM", "FORMATS", "check_tile", "check_format", "tile_grid", "pixel_tile_grid",
           "pixel_max_zoom", "pixel_tile_source_options", "tile_in_footprint", "render_planes", "render_rgba",
           "render_tile", "encode_tile", "encode_png_fast", "encode_png_planes", "empty_tile", "media_type"]

TILE_SIZE = 256
MAX_ZOOM = 24
#: Tile formats (URL extension -> media type).
FORMATS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
WEB_MERCATOR = CRS.from_epsg(3857)
_TMS = morecantile.tms.get("WebMercatorQuad")


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument(f"tile {name} {value!r} must be an integer in {lo}..{hi}", value=value,
                              allowed=f"{lo}..{hi}")
    if not lo <= int(value) <= hi:
        raise InvalidArgument(f"tile {name} {int(value)} is out of range; allowed {lo}..{hi}", value=int(value),
                              allowed=f"{lo}..{hi}")
    return int(value)


def check_tile(z, x, y) -> tuple[int, int, int]:
    """``(z, x, y)`` if it names a tile (z in 0..24, x and y in 0..2**z - 1), else InvalidArgument."""
    z = _check_int("z", z, 0, MAX_ZOOM)
    n = 2 ** z - 1
    return z, _check_int("x", x, 0, n), _check_int("y", y, 0, n)


def _check_size(size) -> int:
    return _check_int("size", size, 1, 4096)


@lru_cache(maxsize=65536)
def tile_grid(z: int, x: int, y: int, size: int = TILE_SIZE) -> Grid:
    """The EPSG:3857 pixel grid of Web Mercator tile ``z/x/y`` (``size`` x ``size`` pixels)."""
    z, x, y = check_tile(z, x, y)
    size = _check_size(size)
    b = _TMS.xy_bounds(morecantile.Tile(x, y, z))
    res_x = (b.right - b.left) / size
    res_y = (b.top - b.bottom) / size
    return Grid(WEB_MERCATOR, Affine(res_x, 0.0, b.left, 0.0, -res_y, b.top), size, size)


def pixel_max_zoom(image_width: int, image_height: int, size: int = TILE_SIZE) -> int:
    """Zoom at which a pixel-space image is shown at one image pixel per screen pixel."""
    w = _check_int("image_width", image_width, 1, 2 ** 31)
    h = _check_int("image_height", image_height, 1, 2 ** 31)
    return max(0, math.ceil(math.log2(max(w, h) / _check_size(size))))


def pixel_tile_grid(z: int, x: int, y: int, image_width: int, image_height: int,
                    size: int = TILE_SIZE) -> Grid:
    """The pixel-coordinate grid (``crs=None``) of tile ``z/x/y`` of a non-georeferenced image."""
    z, x, y = check_tile(z, x, y)
    scale = 2.0 ** (pixel_max_zoom(image_width, image_height, size) - z)
    span = size * scale
    return Grid(None, Affine(scale, 0.0, x * span, 0.0, scale, y * span), _check_size(size), size)


def pixel_tile_source_options(image_width: int, image_height: int, size: int = TILE_SIZE) -> dict:
    """Options of a Bokeh ``WMTSTileSource`` for the pixel tile scheme.

    The plot's x is the image column and its y is minus the image row (the image's top
    edge at y = 0, its bottom at y = -height).
    """
    zmax = pixel_max_zoom(image_width, image_height, size)
    world = size * 2 ** zmax
    return {"initial_resolution": float(2 ** zmax), "x_origin_offset": 0.0, "y_origin_offset": float(world),
            "tile_size": size, "min_zoom": 0, "max_zoom": min(MAX_ZOOM, zmax + 4), "wrap_around": False}


# footprint ---------------------------------------------------------------------------------
@lru_cache(maxsize=1024)
def _layer_bounds(spec: LayerSpec) -> tuple[float, float, float, float] | None:
    """The layer's native bounds in EPSG:3857 (or pixel coordinates); ``None`` = unbounded."""
    boxes = []
    for band in spec.node.bands:
        g = band.grid
        if g is None:
            return None
        if g.crs is None:
            boxes.append(g.bounds)
            continue
        try:
            boxes.append(g.bounds_in(WEB_MERCATOR))
        except Exception:  # noqa: BLE001 - e.g. polar data outside Web Mercator: do not cull
            return None
    if not boxes:
        return None
    b = np.asarray(boxes, np.float64)
    if not np.isfinite(b).all():
        return None
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))


def tile_in_footprint(spec: LayerSpec, grid: Grid) -> bool:
    """Cheap test: can the layer have pixels in ``grid`` (bounding boxes intersect)?"""
    lb = _layer_bounds(spec)
    if lb is None:
        return True
    left, bottom, right, top = grid.bounds
    return left < lb[2] and right > lb[0] and bottom < lb[3] and top > lb[1]


# rendering ---------------------------------------------------------------------------------
Planes = tuple[list[np.ndarray], "np.ndarray | None"]


def _planes_image(spec: LayerSpec, grid: Grid) -> Planes:
    style = spec.style
    return planes_from_layers(visualize_layers(evaluate(spec.node, grid, style.get("resampling", "nearest")),
                                               style["vis"]))


def _rgba_mask(spec: LayerSpec, grid: Grid) -> np.ndarray:
    style = spec.style
    level = None
    for layer in evaluate(spec.node, grid, "nearest"):
        v = np.clip(np.nan_to_num(layer.values.astype(np.float32, copy=False), nan=0.0), 0.0, 1.0)
        if layer.mask is not None:
            v = np.where(layer.mask > 0, v, np.float32(0))
        level = v if level is None else np.minimum(level, v)
    idx = np.rint(level * 255).astype(np.uint8)
    rgba = np.empty(level.shape + (4,), np.uint8)
    rgba[..., :3] = palette_lut(style["palette"])[idx]
    rgba[..., 3] = np.where(idx > 0, np.uint8(int(round(style["opacity"] * 255))), np.uint8(0))
    rgba[rgba[..., 3] == 0, :3] = 0
    return rgba


@lru_cache(maxsize=256)
def _classes_of(spec: LayerSpec):
    return spec.classes()


def _rgba_classes(spec: LayerSpec, grid: Grid) -> np.ndarray:
    from .classes import colorize_classes

    style = spec.style
    (layer,) = evaluate(spec.node, grid, "nearest")
    rgba = colorize_classes(layer.values, layer.mask, _classes_of(spec), style["hidden"], style["opacity"])
    rgba[rgba[..., 3] == 0, :3] = 0
    return rgba


def _check_grid(spec: LayerSpec, grid: Grid) -> None:
    if not isinstance(spec, LayerSpec):
        raise InvalidArgument(f"render needs a LayerSpec, got {type(spec).__name__}", value=type(spec).__name__)
    if spec.pixel_space != (grid.crs is None):
        raise InvalidArgument(f"layer {spec.token[:12]} is in {'pixel' if spec.pixel_space else 'map'} "
                              f"coordinates; the grid is in {'pixel' if grid.crs is None else 'map'} coordinates",
                              value=str(grid.crs), allowed="a grid of the same kind of coordinates")


def render_planes(spec: LayerSpec, grid: Grid) -> Planes:
    """The layer on ``grid`` as ([red, green, blue] uint8 planes, alpha plane or None = opaque)."""
    _check_grid(spec, grid)
    if spec.kind == "image":
        return _planes_image(spec, grid)
    rgba = _rgba_mask(spec, grid) if spec.kind == "mask" else _rgba_classes(spec, grid)
    return [rgba[..., 0], rgba[..., 1], rgba[..., 2]], rgba[..., 3]


def render_rgba(spec: LayerSpec, grid: Grid) -> np.ndarray:
    """The layer on ``grid`` as H x W x 4 uint8 RGBA (what a tile or an exported view shows)."""
    return stack_rgba(*render_planes(spec, grid))


# encoding ----------------------------------------------------------------------------------
def encode_tile(rgba: np.ndarray, fmt: str = "png") -> bytes:
    """Encode RGBA as ``png`` (fast path), ``jpg``/``jpeg`` (no alpha: black) or ``webp``."""
    fmt = check_format(fmt)
    if fmt == "png":
        return encode_png_fast(rgba)
    if fmt in ("jpg", "jpeg"):
        return encode_jpeg(rgba, quality=85)
    buf = io.BytesIO()
    PILImage.fromarray(rgba, "RGBA").save(buf, "WEBP", quality=85, method=2)
    return buf.getvalue()


def check_format(fmt) -> str:
    """The lower-case tile format, if allowed (png, jpg, jpeg, webp)."""
    key = fmt.lower() if isinstance(fmt, str) else fmt
    if key not in FORMATS:
        raise InvalidArgument(f"tile format {fmt!r} is not allowed; allowed: {sorted(set(FORMATS))}", value=fmt,
                              allowed=sorted(FORMATS))
    return key


def empty_tile(size: int = TILE_SIZE) -> bytes:
    """A fully transparent PNG tile (the answer outside a layer's footprint, whatever the format)."""
    return _empty(_check_size(size))


@lru_cache(maxsize=16)
def _empty(size: int) -> bytes:
    zero = np.zeros((size, size), np.uint8)
    return encode_png_planes([zero, zero, zero], zero, level=9)


def media_type(data: bytes) -> str:
    """The media type of encoded tile bytes (from their signature)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def render_tile(spec: LayerSpec, z: int, x: int, y: int, fmt: str = "png", size: int = TILE_SIZE) -> bytes:
    """Encoded tile ``z/x/y`` of a layer; a transparent PNG outside the layer's footprint.

    Pixel-space layers use :func:`pixel_tile_grid`, georeferenced ones :func:`tile_grid`.
    """
    fmt = check_format(fmt)
    if not isinstance(spec, LayerSpec):
        raise InvalidArgument(f"render_tile needs a LayerSpec (resolve(token) gives one), got "
                              f"{type(spec).__name__}", value=type(spec).__name__, allowed="LayerSpec")
    if spec.pixel_space:
        g = spec.node.native_grid()
        grid = pixel_tile_grid(z, x, y, g.width, g.height, size)
    else:
        grid = tile_grid(z, x, y, size)
    if not tile_in_footprint(spec, grid):
        return empty_tile(grid.width)
    planes, alpha = render_planes(spec, grid)
    if alpha is not None and alpha.max() == 0:
        return empty_tile(grid.width)
    if fmt == "png":
        return encode_png_planes(planes, alpha)
    return encode_tile(stack_rgba(planes, alpha), fmt)
