"""Encoders: arrays -> PNG, JPEG, WebP, NPY or GeoTIFF bytes (or a structured numpy array), nothing else.

Colour planes and alpha come from :func:`viewer.core.visualize.rgba_planes`; raw band
values from :meth:`viewer.core.raster.Raster.raw`.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image as PILImage
from rasterio.env import Env
from rasterio.io import MemoryFile

from .errors import InvalidArgument
from .grid import Grid

try:  # ISA-L deflate: same ratio as zlib level 1, many times faster
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - optional speed-up
    _deflate = zlib

__all__ = ["FILE_FORMATS", "FORMATS", "check_format", "encode_planes", "encode_tile", "encode_png", "encode_png_fast", "encode_png_planes",
           "encode_jpeg", "structured_array", "encode_npy", "encode_geotiff", "media_type"]

FILE_FORMATS = ("PNG", "JPEG", "AUTO_JPEG_PNG", "NPY", "GEO_TIFF", "NUMPY_NDARRAY")
#: Image formats of tiles (URL extension -> media type).
FORMATS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


def check_format(fmt) -> str:
    """The lower-case tile format, if allowed (png, jpg, jpeg, webp)."""
    key = fmt.lower() if isinstance(fmt, str) else fmt
    if key not in FORMATS:
        raise InvalidArgument(f"tile format {fmt!r} is not allowed; allowed: {sorted(set(FORMATS))}", value=fmt,
                              allowed=sorted(FORMATS))
    return key


def encode_planes(planes: list[np.ndarray], alpha: np.ndarray | None, fmt: str = "png") -> bytes:
    """Bytes of colour planes (1 or 3 uint8) and an alpha plane (``None``: opaque) as ``png`` (RGBA
    when there is an alpha plane, else RGB; grey + alpha or grey when the colour is one grey plane),
    ``jpg``/``jpeg`` (quality 85, no alpha) or ``webp``."""
    if fmt == "png":
        return encode_png_planes(planes, alpha)
    rgb = list(planes) * 3 if len(planes) == 1 else list(planes)
    if fmt in ("jpg", "jpeg"):
        return _jpeg(np.dstack(rgb) if alpha is None else np.dstack([np.where(alpha == 0, 0, p) for p in rgb]), 85)
    full = np.full(rgb[0].shape, 255, np.uint8) if alpha is None else alpha
    return encode_tile(np.dstack(rgb + [full]), fmt)


def encode_tile(rgba: np.ndarray, fmt: str = "png") -> bytes:
    """Encode H x W x 4 RGBA as ``png`` (fast path), ``jpg``/``jpeg`` (no alpha: black) or ``webp``."""
    fmt = check_format(fmt)
    if fmt == "png":
        return encode_png_fast(rgba)
    if fmt in ("jpg", "jpeg"):
        return encode_jpeg(rgba, quality=85)
    buf = io.BytesIO()
    PILImage.fromarray(rgba, "RGBA").save(buf, "WEBP", quality=85, method=2)
    return buf.getvalue()


def media_type(data: bytes) -> str:
    """The media type of encoded image bytes (from their signature)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


#: 256 zeros a numpy add runs over after each ISA-L call (see :func:`_deflated`).
_ZEROS = np.zeros(256)


def _deflated(raw: np.ndarray, level: int, isal: bool) -> bytes:
    """``raw`` deflated (zlib stream) at ``level``: ISA-L for levels 1-3 when installed, else zlib.

    ISA-L's AVX2/AVX-512 code returns without ``vzeroupper`` (intel/isa-l#24), which leaves the
    thread's upper vector state dirty: every later legacy-SSE instruction of the thread (PROJ, GDAL,
    CPython's float arithmetic) then pays a false dependency, about 6x slower in PROJ's transforms
    on the serving machine's Xeon. numpy's vectorised add (AVX2/AVX-512 loops compiled with
    ``vzeroupper`` at their exits) over 256 zeros, about 1 us, clears it; adding zeros to zeros,
    it is harmless when threads share the array.
    """
    if not (isal and level <= 3) or _deflate is zlib:
        return zlib.compress(raw, level)
    data = _deflate.compress(raw, level)
    np.add(_ZEROS, _ZEROS, out=_ZEROS)
    return data


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def _same_planes(planes: list[np.ndarray]) -> bool:
    """Are the colour planes one grey plane (one plane, or three equal ones)?"""
    if len(planes) == 1:
        return True
    a, b, c = planes
    if a is b and b is c:
        return True
    if not (np.array_equal(a[0], b[0]) and np.array_equal(a[0], c[0])):  # cheap early no
        return False
    return bool(np.array_equal(a, b) and np.array_equal(a, c))


def encode_png_planes(planes: list[np.ndarray], alpha: np.ndarray | None = None, level: int = 1,
                      isal: bool = True) -> bytes:
    """PNG bytes from 3 (or 1) H x W uint8 colour planes and an optional alpha plane.

    One plane, or three equal ones (a one-band layer without a palette), is written as a grey
    (or grey + alpha) PNG: a third (or half) of the bytes to filter and deflate, and it decodes
    to exactly the same RGBA pixels. Each row gets the "Up" filter (byte minus the byte above,
    mod 256) and the stream is deflated at ``level`` (1-3 with ``isal``: ISA-L when installed,
    about 3x faster than zlib level 1, with larger output; otherwise zlib). Decodes to exactly
    the input pixels.
    """
    grey = _same_planes(list(planes))
    chans = ([planes[0]] if grey else list(planes)) + ([] if alpha is None else [alpha])
    h, w = chans[0].shape
    c = len(chans)
    raw = np.empty((h, w * c + 1), np.uint8)
    raw[:, 0] = 2
    up = raw[:, 1:].reshape(h, w, c)
    for i, ch in enumerate(chans):  # 2-D strided writes: fast (a 3-D subtract over 3|4 is not)
        up[0, :, i] = ch[0]
        np.subtract(ch[1:], ch[:-1], out=up[1:, :, i])
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]  # grey, grey + alpha, RGB, RGBA
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr),
                     _chunk(b"IDAT", _deflated(raw, level, isal)),
                     _chunk(b"IEND", b"")))


def _check_rgba(rgba: np.ndarray) -> np.ndarray:
    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
        raise InvalidArgument(f"PNG input must be H x W x 3|4 uint8, got {a.shape} {a.dtype}", value=a.shape)
    return a


def encode_png(rgba: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of an H x W x 4 uint8 image, always with its alpha channel (RGBA, or grey + alpha
    when the three colour channels are equal: the same decoded RGBA)."""
    a = _check_rgba(rgba)
    alpha = a[..., 3] if a.shape[2] == 4 else np.full(a.shape[:2], 255, np.uint8)
    return encode_png_planes([a[..., 0], a[..., 1], a[..., 2]], alpha, compress_level)


def encode_png_fast(rgba: np.ndarray) -> bytes:
    """PNG bytes of an H x W x 4 (or x 3) uint8 image; a fully opaque image is written as RGB."""
    a = _check_rgba(rgba)
    alpha = a[..., 3] if a.shape[2] == 4 else None
    if alpha is not None and alpha.min() == 255:
        alpha = None
    return encode_png_planes([a[..., 0], a[..., 1], a[..., 2]], alpha)


def encode_jpeg(rgba: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of H x W x 4 RGBA (transparent pixels black)."""
    rgb = rgba[..., :3].copy()
    rgb[rgba[..., 3] == 0] = 0
    return _jpeg(rgb, quality)


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(rgb, "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def structured_array(names: list[str], values: list[np.ndarray]) -> np.ndarray:
    """A structured array with one field per band (the Python client's NUMPY_NDARRAY).

    One C-contiguous, writeable band becomes a view of itself (no copy): arrays the evaluator
    shares with sources or caches are read-only, so a view is only taken of a fresh array.
    """
    if len(values) == 1:
        v = values[0]
        if v.ndim == 2 and v.flags.c_contiguous and v.flags.writeable and v.dtype.fields is None:
            return v.view(np.dtype([(names[0], v.dtype)]))
    h, w = values[0].shape
    dtype = np.dtype([(n, v.dtype) for n, v in zip(names, values)])
    if len({v.dtype for v in values}) == 1:  # one interleaving copy (field by field is slower)
        return np.stack(values, axis=-1).view(dtype).reshape(h, w)
    out = np.empty((h, w), dtype=dtype)
    for n, v in zip(names, values):
        out[n] = v
    return out


def encode_npy(names: list[str], values: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, structured_array(names, values), allow_pickle=False)
    return buf.getvalue()


def encode_geotiff(names: list[str], values: list[np.ndarray], masks: list[np.ndarray | None],
                   grid: Grid) -> bytes:
    """A georeferenced GeoTIFF; a pixel is valid in the internal mask where any band is valid."""
    dtype = np.result_type(*[v.dtype for v in values])
    valid = None
    for m in masks:
        if m is None:
            valid = np.ones(values[0].shape, bool)
            break
        valid = (m > 0) if valid is None else valid | (m > 0)
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": len(values),
               "dtype": dtype, "transform": grid.transform, "compress": "deflate"}
    if grid.crs is not None:
        profile["crs"] = grid.crs
    if grid.width >= 256 and grid.height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with MemoryFile() as mem:
        with Env(GDAL_TIF_INTERNAL_MASK=True):
            with mem.open(**profile) as dst:
                for i, (n, v) in enumerate(zip(names, values), start=1):
                    dst.write(v.astype(dtype, copy=False), i)
                    dst.set_band_description(i, n)
                if valid is not None and not valid.all():
                    dst.write_mask(valid.astype(np.uint8) * 255)
        return mem.read()
