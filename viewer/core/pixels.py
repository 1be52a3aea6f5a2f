"""``data.getPixels`` / ``data.computePixels``: fetch an image onto a requested grid."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from affine import Affine
from rasterio.warp import transform_bounds

from .encode import FILE_FORMATS, encode_geotiff, encode_npy, structured_array
from .errors import InvalidArgument, LimitExceeded
from .evaluate import evaluate
from .geometry import geojson_bounds, to_geojson
from .grid import Grid, crs_token, parse_crs
from .image import Image
from .serialize import from_json
from .visualize import encode_jpeg, encode_png_planes, rgba, rgba_planes

__all__ = ["getPixels", "computePixels", "resolve_grid", "check_reachable", "prepare", "file_format", "check_limits",
           "MAX_BYTES", "MAX_SIDE", "MAX_BANDS"]

#: Deflate of PNG outputs (README "Performance"): ISA-L (``PNG_ISAL``) or zlib at ``PNG_LEVEL``.
PNG_LEVEL = 1
PNG_ISAL = True
MAX_BYTES = 48 * 1024 * 1024
MAX_SIDE = 32768
MAX_BANDS = 1024
_KEYS = {"assetId", "expression", "fileFormat", "grid", "region", "bandIds", "visualizationOptions",
         "workloadTag"}
_TRANSFORM_KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")


def _finite(value: Any) -> bool:
    """Is ``value`` a finite real number (not a bool; integers too large for a float are not)?"""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the float range (JSON allows any number of digits)
        return False


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(name: str, value: Any) -> float:
    if not _finite(value):
        raise InvalidArgument(f"{name} {_shown(value)} must be a finite number", value=value,
                              allowed="finite number")
    return float(value)


def _dimensions(dims: Any) -> tuple[int, int]:
    if isinstance(dims, dict):
        w, h = dims.get("width"), dims.get("height")
    elif isinstance(dims, (list, tuple)) and len(dims) == 2:
        w, h = dims
    else:
        raise InvalidArgument(f"grid.dimensions {dims!r} must be {{'width': w, 'height': h}}", value=dims)
    out = []
    for name, v in (("width", w), ("height", h)):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise InvalidArgument(f"grid.dimensions.{name} {_shown(v)} is not allowed; allowed: a positive integer",
                                  value=v, allowed="integer >= 1")
        out.append(int(v))
    return out[0], out[1]


def _affine(spec: Any) -> Affine:
    if isinstance(spec, (list, tuple)) and len(spec) == 6:
        vals = [_number("affineTransform", v) for v in spec]
        return Affine(*vals)
    if not isinstance(spec, dict):
        raise InvalidArgument(f"grid.affineTransform {spec!r} must be a dict with {list(_TRANSFORM_KEYS)}",
                              value=spec, allowed=list(_TRANSFORM_KEYS))
    unknown = set(spec) - set(_TRANSFORM_KEYS)
    if unknown:
        raise InvalidArgument(f"grid.affineTransform has unknown keys {sorted(unknown)}; allowed: "
                              f"{list(_TRANSFORM_KEYS)}", value=sorted(unknown), allowed=list(_TRANSFORM_KEYS))
    vals = [_number(f"affineTransform.{k}", spec.get(k, 1.0 if k in ("scaleX", "scaleY") else 0.0))
            for k in _TRANSFORM_KEYS]
    return Affine(*vals)


def resolve_grid(grid_spec: dict | None, region: Any, native: Grid | None) -> Grid:
    """The output grid from ``grid`` and ``region`` (defaults: the first band's native grid)."""
    grid = _resolve_grid(grid_spec, region, native)
    check_reachable(grid, [native.crs] if native is not None else [])
    return grid


def check_reachable(grid: Grid, crss: Any) -> None:
    """Refuse a grid in a CRS that PROJ cannot transform to a source CRS (e.g. another planet's)."""
    if grid.crs is None:
        return
    seen = {None, crs_token(grid.crs)}  # CRSs by WKT, each once (rasterio hashes and compares CRSs slowly)
    for src in crss:
        token = crs_token(src)
        if token in seen:
            continue
        seen.add(token)
        try:
            grid.bounds_in(src)
        except Exception as exc:  # noqa: BLE001 - rasterio/PROJ: no coordinate operation between the CRSs
            why = " ".join(str(exc).split())[:120]
            code, other = _crs_name(grid.crs), _crs_name(src)
            raise InvalidArgument(f"grid CRS {code!r} cannot be transformed to the image's CRS {other!r} ({why}); "
                                  "allowed: a CRS PROJ can transform to the image's", value=code,
                                  allowed=f"a CRS transformable to {other}") from None


#: Earth Engine's PixelGrid fields.
GRID_KEYS = ("dimensions", "affineTransform", "crsCode", "crsWkt")


def _resolve_grid(grid_spec: dict | None, region: Any, native: Grid | None) -> Grid:
    spec = grid_spec or {}
    if not isinstance(spec, dict):
        raise InvalidArgument(f"grid {spec!r} must be a dict", value=spec)
    unknown = sorted(str(k)[:40] for k in spec if k not in GRID_KEYS)
    if unknown:
        raise InvalidArgument(f"unknown grid key(s) {unknown}; allowed: {list(GRID_KEYS)}", value=unknown,
                              allowed=list(GRID_KEYS))
    if "crsCode" in spec and "crsWkt" in spec:
        raise InvalidArgument("give grid.crsCode or grid.crsWkt, not both", value=spec)
    crs_text = spec.get("crsCode", spec.get("crsWkt"))
    crs = parse_crs(crs_text) if crs_text is not None else (native.crs if native else None)
    dims = _dimensions(spec["dimensions"]) if "dimensions" in spec else None
    if "affineTransform" in spec:
        transform = _affine(spec["affineTransform"])
        Grid(crs, transform, 1, 1)  # refuses a singular transform before it is inverted below
    elif native is not None and (crs == native.crs):
        transform = native.transform
    elif native is not None:
        left, bottom, right, top = _native_bounds_in(native, crs)
        res = math.sqrt((right - left) * (top - bottom) / (native.width * native.height))
        transform = Affine(res, 0, left, 0, -res, top)
    else:
        transform = Affine.identity()
    if region is not None:
        geo = to_geojson(region)
        if crs is None:
            raise InvalidArgument("region needs a grid with a CRS; this image is in pixel coordinates",
                                  value=region)
        x0, y0, x1, y1 = geojson_bounds(geo, crs)
        if dims is not None:
            if x1 <= x0 or y1 <= y0:
                raise InvalidArgument(f"region {geo!r} has an empty bounding box; it cannot be resampled to "
                                      f"{dims[0]}x{dims[1]}", value=geo)
            sx = (x1 - x0) / dims[0]
            sy = (y1 - y0) / dims[1]
            return Grid(crs, Affine(sx, 0, x0, 0, -sy, y1), *dims)
        Grid(crs, transform, 1, 1)  # validates the transform
        inv = ~transform
        cols, rows = zip(*[inv @ (x, y) for x, y in ((x0, y0), (x0, y1), (x1, y0), (x1, y1))])
        c0, r0 = math.floor(min(cols) + 1e-9), math.floor(min(rows) + 1e-9)
        c1, r1 = math.ceil(max(cols) - 1e-9), math.ceil(max(rows) - 1e-9)
        w, h = max(c1 - c0, 1), max(r1 - r0, 1)
        _check_side(w, h)
        return Grid(crs, transform @ Affine.translation(c0, r0), w, h)
    if dims is None:
        if native is None:
            raise InvalidArgument("grid.dimensions are required for an image without a native grid "
                                  "(e.g. a constant)", value=spec)
        if "affineTransform" in spec or crs != native.crs:
            left, bottom, right, top = _native_bounds_in(native, crs) if crs != native.crs \
                else native.bounds
            inv = ~transform
            cols, rows = zip(*[inv @ (x, y) for x, y in ((left, bottom), (left, top), (right, bottom), (right, top))])
            c0, r0 = math.floor(min(cols)), math.floor(min(rows))
            w, h = math.ceil(max(cols)) - c0, math.ceil(max(rows)) - r0
            _check_side(w, h)
            return Grid(crs, transform @ Affine.translation(c0, r0), max(w, 1), max(h, 1))
        dims = (native.width, native.height)
    return Grid(crs, transform, *dims)


def _native_bounds_in(native: Grid, crs: Any) -> tuple[float, float, float, float]:
    """The image's bounds in the requested CRS (edges densified: curved there, and rasterio needs it
    for a geographic CRS), or InvalidArgument when PROJ cannot express them there."""
    try:
        bounds = transform_bounds(native.crs, crs, *native.bounds, densify_pts=21)
    except Exception as exc:  # noqa: BLE001 - rasterio/PROJ errors (no operation between the CRSs, domain)
        why = " ".join(str(exc).split())[:120]
    else:
        if all(math.isfinite(v) for v in bounds):
            return bounds
        why = "non-finite bounds"
    shown = _crs_name(crs)
    raise InvalidArgument(f"the image's bounds cannot be expressed in CRS {shown!r} ({why}); allowed: a CRS whose "
                          "area of use covers the image, or give grid.dimensions and grid.affineTransform",
                          value=shown, allowed="a CRS covering the image")


def _crs_name(crs: Any) -> str | None:
    """A short name of a CRS for messages: its authority code, else the start of its WKT."""
    if crs is None:
        return None
    text = crs.to_string()
    return text if len(text) <= 60 else text[:57] + "..."


def _check_side(w: int, h: int) -> None:
    if w > MAX_SIDE or h > MAX_SIDE:
        raise LimitExceeded(f"requested {_shown(w)}x{_shown(h)} pixels; the limit is {MAX_SIDE} pixels per side",
                            value=(w, h), allowed=MAX_SIDE)


def check_limits(grid: Grid, n_bands: int, bytes_per_pixel: int) -> None:
    """Earth Engine's request limits: pixels per side, bands, and uncompressed bytes."""
    _check_side(grid.width, grid.height)
    n = n_bands
    if n > MAX_BANDS:
        raise LimitExceeded(f"requested {n} bands; the limit is {MAX_BANDS} bands", value=n, allowed=MAX_BANDS)
    size = grid.width * grid.height * bytes_per_pixel
    if size > MAX_BYTES:
        raise LimitExceeded(
            f"requested {grid.width}x{grid.height} pixels x {n} bands = {size} bytes ({size / 2**20:.1f} MiB) "
            f"uncompressed; the limit is {MAX_BYTES} bytes (48 MiB)", value=size, allowed=MAX_BYTES)


def file_format(fmt: Any) -> str:
    """The canonical ``fileFormat`` name (case-insensitive; ``GEOTIFF`` = ``GEO_TIFF``)."""
    key = fmt.upper() if isinstance(fmt, str) else fmt
    key = "GEO_TIFF" if key == "GEOTIFF" else key
    if key not in FILE_FORMATS:
        raise InvalidArgument(f"fileFormat {fmt!r} is not allowed; allowed: {list(FILE_FORMATS)}",
                              value=fmt, allowed=list(FILE_FORMATS))
    return key


def _no_huge_integers(name: str, value: Any) -> None:
    """Refuse integers beyond the float range anywhere in ``value`` (JSON numbers have no size limit)."""
    todo = [(name, value)]
    while todo:
        where, v = todo.pop()
        if isinstance(v, int) and not isinstance(v, bool) and not _finite(v):
            raise InvalidArgument(f"{where} {_shown(v)} is beyond the float range; allowed: finite numbers",
                                  value=_shown(v), allowed="finite numbers")
        if isinstance(v, dict):
            todo.extend((f"{where}.{k}", x) for k, x in v.items())
        elif isinstance(v, (list, tuple)):
            todo.extend((where, x) for x in v)


def _vis_from_options(options: Any, n_bands: int) -> dict:
    if not isinstance(options, dict):
        raise InvalidArgument(f"visualizationOptions {options!r} must be a dict", value=options)
    _no_huge_integers("visualizationOptions", options)
    allowed = {"ranges", "paletteColors", "gamma", "opacity"}
    unknown = set(options) - allowed
    if unknown:
        raise InvalidArgument(f"visualizationOptions has unknown keys {sorted(unknown)}; allowed: "
                              f"{sorted(allowed)}", value=sorted(unknown), allowed=sorted(allowed))
    vis: dict[str, Any] = {}
    ranges = options.get("ranges")
    if ranges is not None:
        if not isinstance(ranges, (list, tuple)) or not ranges or not all(isinstance(r, dict) for r in ranges):
            raise InvalidArgument(f"ranges {ranges!r} must be a non-empty list of {{'min': .., 'max': ..}}",
                                  value=ranges)
        vis["min"] = [r.get("min", 0) for r in ranges]
        vis["max"] = [r.get("max", 1) for r in ranges]
    if "paletteColors" in options:
        vis["palette"] = options["paletteColors"]
        if vis["palette"] is None or (isinstance(vis["palette"], (list, tuple, str)) and len(vis["palette"]) == 0):
            vis["palette"] = []  # let parse_palette reject it
    gamma = options.get("gamma")
    if isinstance(gamma, dict):
        gamma = gamma.get("value")
    if gamma is not None:
        vis["gamma"] = gamma
    if "opacity" in options:
        vis["opacity"] = options["opacity"]
    return vis


def prepare(params: dict, *, compute: bool) -> tuple[Image, Grid, str]:
    """Validate a request: the image to evaluate, the output grid and the file format."""
    if not isinstance(params, dict):
        raise InvalidArgument(f"params {params!r} must be a dict", value=params)
    unknown = set(params) - _KEYS
    if unknown:
        raise InvalidArgument(f"unknown request keys {sorted(unknown)}; allowed: {sorted(_KEYS)}",
                              value=sorted(unknown), allowed=sorted(_KEYS))
    if compute:
        image = params.get("expression")
        if isinstance(image, dict) and "viewerGraph" in image:
            image = from_json(image)
        if not isinstance(image, Image):
            raise InvalidArgument(f"expression {image!r} must be a viewer.Image", value=image, allowed="Image")
    else:
        if "expression" in params:
            raise InvalidArgument("getPixels takes assetId; use computePixels for an expression",
                                  value="expression", allowed="assetId")
        asset_id = params.get("assetId")
        if not isinstance(asset_id, str):
            raise InvalidArgument(f"assetId {_shown(asset_id)} must be an asset id string such as "
                                  "'LANDSAT/LC08/SAMPLE'" + ("" if "assetId" in params else " (it is missing)"),
                                  value=_shown(asset_id), allowed="an asset id string")
        image = Image(asset_id)
    fmt_key = file_format(params.get("fileFormat", "PNG"))
    band_ids = params.get("bandIds")
    if band_ids is not None:
        if isinstance(band_ids, str) or not isinstance(band_ids, (list, tuple)) or not band_ids:
            raise InvalidArgument(f"bandIds {band_ids!r} must be a non-empty list of band names", value=band_ids)
        if len(set(map(repr, band_ids))) != len(band_ids):
            raise InvalidArgument(f"bandIds {band_ids!r} name a band twice; allowed: distinct band names",
                                  value=band_ids, allowed="distinct band names")
        image = image.select(list(band_ids))
    if len(image.bands) == 0:
        raise InvalidArgument("the image has no bands", value=[])
    native = image.bands[0].grid
    grid = _resolve_grid(params.get("grid"), params.get("region"), native)
    check_reachable(grid, [b.grid.crs for b in image.bands if b.grid is not None])  # native's among them
    if "visualizationOptions" in params and params["visualizationOptions"] is not None:
        if len(image.bands) not in (1, 3):
            raise InvalidArgument(f"visualizationOptions need 1 or 3 bands, got {len(image.bands)} "
                                  f"({list(image.bandNames())[:8]}); choose them with bandIds", value=len(image.bands),
                                  allowed=[1, 3])
        vis = _vis_from_options(params["visualizationOptions"], len(image.bands))
        image = image.visualize(**vis)
    check_limits(grid, len(image.bands), sum(np.dtype(b.dtype).itemsize for b in image.bands))
    return image, grid, fmt_key


def _fetch(params: dict, compute: bool):
    image, grid, fmt = prepare(params, compute=compute)
    raster = evaluate(image.node, grid)
    if fmt in ("PNG", "JPEG", "AUTO_JPEG_PNG"):
        planes, alpha = rgba_planes(raster)
        if alpha is not None and alpha.min() == 255:
            alpha = None
        if fmt == "AUTO_JPEG_PNG":
            fmt = "PNG" if alpha is not None else "JPEG"
        if fmt == "PNG":  # grey, grey + alpha, RGB or RGBA: whichever decodes to the same RGBA
            return encode_png_planes(planes, alpha, PNG_LEVEL, isal=PNG_ISAL)
        return encode_jpeg(rgba(raster))
    names, values = raster.names, raster.raw()
    if fmt == "NUMPY_NDARRAY":
        return _numpy_array(names, values)
    if fmt == "NPY":
        return encode_npy(names, values)
    return encode_geotiff(names, values, raster.masks, grid)


def _interleaved_block(values: list[np.ndarray]) -> np.ndarray | None:
    """The fresh (writeable) C-contiguous H x W x N array whose planes ``values`` are, in order, if they are
    (a warp written pixel-interleaved, :mod:`viewer.core.read`), else None."""
    base = values[0].base
    n = len(values)
    if not isinstance(base, np.ndarray) or base.ndim != 3 or base.shape[2] != n or base.dtype.fields is not None:
        return None
    if not (base.flags.c_contiguous and base.flags.writeable) or base.shape[:2] != values[0].shape:
        return None
    start, step = base.__array_interface__["data"][0], base.itemsize
    for i, v in enumerate(values):
        if (v.base is not base or v.dtype != base.dtype or v.strides != base.strides[:2]
                or v.__array_interface__["data"][0] != start + i * step):
            return None
    return base


def _numpy_array(names: list[str], values: list[np.ndarray]) -> np.ndarray:
    """:func:`viewer.core.encode.structured_array`, as a view where the bands already lie pixel-interleaved
    in one fresh array (no copy)."""
    if len(values) > 1:
        block = _interleaved_block(values)
        if block is not None:
            h, w = values[0].shape
            return block.view(np.dtype([(n, block.dtype) for n in names])).reshape(h, w)
    return structured_array(names, values)


def getPixels(params: dict):
    """Pixels of a catalog image (``assetId``) on a grid, as bytes or a structured array."""
    return _fetch(params, compute=False)


def computePixels(params: dict):
    """Pixels of an :class:`Image` expression (``expression``) on a grid."""
    return _fetch(params, compute=True)
