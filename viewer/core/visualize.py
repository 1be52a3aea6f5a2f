"""Colour, all of it: colour parsing, named palettes (:data:`PALETTES`, a table kept in
:mod:`viewer.core.palettes`), Earth Engine ``visualize`` (stretch, gamma per band, palette ramp),
class colouring (class lookup tables), the mask ramp, RGBA assembly of display rasters, and
the picture's bytes (PNG, JPEG, WebP): everything from band values to what a user sees.

The three display operations of the graph (:data:`viewer.core.ops.DISPLAY_OPS`) are
:func:`visualize`, :func:`color_classes` and :func:`mask_ramp`: each takes a
:class:`~viewer.core.raster.Raster` and returns one with three uint8 bands (red, green,
blue) whose mask is the alpha. A display raster's mask is ``None`` where it is opaque
everywhere (an image layer: the PNG has no alpha channel); class and mask overlays always
carry one. :func:`rgba_planes` / :func:`rgba` turn a display raster into colour planes and
alpha (colour 0 where alpha is 0), and :func:`encode_planes` writes those as a PNG, JPEG or
WebP (a tile, a ``computePixels`` picture). Raw data formats (NPY, GeoTIFF) are
:mod:`viewer.core.encode`'s.
"""
from __future__ import annotations

import io
import math
import struct
import zlib
from typing import Any, Sequence

import numpy as np
from PIL import Image as PILImage
from PIL import ImageColor

from .cache import memoized
from .errors import InvalidArgument
from .graph import BandInfo
from .ops import VIS_BANDS
from .palettes import PALETTES, named_palette, unknown_palette
from .raster import Band, Raster

try:  # ISA-L deflate: same ratio as zlib level 1, many times faster
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - optional speed-up
    _deflate = zlib

__all__ = ["PALETTES", "named_palette", "parse_color", "parse_palette", "to_hex", "check_opacity", "normalize_vis",
           "palette_band_error", "palette_lut", "stretch", "visualize", "class_lut", "colorize", "color_classes",
           "mask_ramp", "rgba_planes", "rgba", "VIS_BANDS", "FORMATS", "check_format", "encode_planes",
           "encode_tile", "encode_png", "encode_png_fast", "encode_png_planes", "encode_jpeg", "media_type"]


def parse_color(color: Any) -> tuple[int, int, int]:
    """CSS name, ``#RRGGBB``, ``RRGGBB`` or ``RGB`` -> (r, g, b)."""
    if isinstance(color, (tuple, list)) and len(color) == 3 and all(isinstance(c, (int, np.integer)) for c in color):
        if all(0 <= c <= 255 for c in color):
            return tuple(int(c) for c in color)  # type: ignore[return-value]
    if isinstance(color, str) and color.strip():
        text = color.strip()
        if all(ch in "0123456789abcdefABCDEF" for ch in text) and len(text) in (3, 6):
            text = "#" + text
        try:
            return ImageColor.getrgb(text)[:3]
        except ValueError:
            pass
    raise InvalidArgument(
        f"colour {color!r} is not allowed; use a CSS colour name, '#RRGGBB', 'RRGGBB' or 'RGB'",
        value=color, allowed="CSS name or hex colour",
    )


def _is_color(text: str) -> bool:
    try:
        parse_color(text)
    except InvalidArgument:
        return False
    return True


def parse_palette(palette: Any) -> list[tuple[int, int, int]]:
    """A palette: a name (``'viridis'``, ``'Blues_r'``: :data:`PALETTES`), or a list or comma-separated
    string of colours (at least one)."""
    if isinstance(palette, str):
        named = named_palette(palette)
        if named is not None:
            palette = list(named)
        elif "," not in palette and not _is_color(palette):
            raise unknown_palette(palette)
        else:
            palette = [p for p in palette.split(",")]
    if not isinstance(palette, (list, tuple)) or len(palette) == 0:
        raise InvalidArgument(
            f"palette {palette!r} is not allowed; give a non-empty list of colours such as ['blue', 'ff0000']",
            value=palette, allowed="non-empty list of colours",
        )
    return [parse_color(c) for c in palette]


def to_hex(color: Any, prefix: str = "#") -> str:
    """A colour (anything :func:`parse_color` takes) as ``#rrggbb`` (or ``prefix`` + ``rrggbb``)."""
    r, g, b = parse_color(color)
    return f"{prefix}{r:02x}{g:02x}{b:02x}"


def _per_band(name: str, value: Any, n: int, default: float | None) -> list[float] | None:
    if value is None:
        return None if default is None else [default] * n
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    vals = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        nums = [float(v) for v in vals]
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgument(f"{name} {value!r} must be a number or a list of numbers", value=value) from None
    if not all(math.isfinite(v) for v in nums):
        raise InvalidArgument(f"{name} {value!r} must be finite numbers", value=value)
    if len(nums) == 1:
        nums = nums * n
    if len(nums) != n:
        raise InvalidArgument(f"{name} {value!r} has {len(nums)} values; allowed: 1 or {n} (one per band)",
                              value=value, allowed=[1, n])
    return nums


def check_opacity(opacity: Any) -> float:
    """``opacity`` as a float if it is a number in [0, 1], else InvalidArgument."""
    if isinstance(opacity, bool) or not isinstance(opacity, (int, float)) or not 0 <= opacity <= 1:
        raise InvalidArgument(f"opacity {opacity!r} must be a number in [0, 1]", value=opacity, allowed="[0, 1]")
    return float(opacity)


def palette_band_error(names: Sequence[str], chosen: bool) -> InvalidArgument:
    """The error for a palette on several bands, naming the bands to pick one from (``chosen``: the
    bands were named in ``bands``, else they are the image's)."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
    which = f"'bands' names {len(names)} bands" if chosen else f"the image has {len(names)} bands"
    return InvalidArgument(f"a palette needs exactly one band; {which} ({shown}): pick one, e.g. "
                           f"'bands': [{names[0]!r}]", value=names, allowed="one band")


def normalize_vis(params: dict, n_bands: int) -> dict:
    """Validate visualization parameters for ``n_bands`` bands into a canonical dict."""
    if n_bands not in (1, 3):
        raise InvalidArgument(
            f"visualization needs 1 or 3 bands, got {n_bands}; select bands with 'bands'",
            value=n_bands, allowed=[1, 3],
        )
    palette = params.get("palette")
    if palette is not None:
        palette = parse_palette(palette)
        if n_bands != 1:
            raise InvalidArgument(f"a palette needs exactly one band, got {n_bands}; pick one band with 'bands'",
                                  value=n_bands, allowed=1)
    gain = _per_band("gain", params.get("gain"), n_bands, None)
    bias = _per_band("bias", params.get("bias"), n_bands, None)
    if (gain is not None or bias is not None) and (params.get("min") is not None or params.get("max") is not None):
        raise InvalidArgument("give either min/max or gain/bias, not both", value=params)
    vmin = _per_band("min", params.get("min"), n_bands, 0.0)
    vmax = _per_band("max", params.get("max"), n_bands, 1.0)
    if gain is not None or bias is not None:
        g = gain or [1.0] * n_bands
        b = bias or [0.0] * n_bands
        if any(x == 0 for x in g):
            raise InvalidArgument(f"gain {g} must be non-zero", value=g)
        vmin = [(-bb) / gg for gg, bb in zip(g, b)]
        vmax = [(255 - bb) / gg for gg, bb in zip(g, b)]
    for lo, hi in zip(vmin, vmax):
        if lo == hi:
            raise InvalidArgument(f"range min {lo} == max {hi} is not allowed; min and max must differ",
                                  value=(lo, hi), allowed="min != max")
    gamma = _per_band("gamma", params.get("gamma"), n_bands, 1.0)
    if any(g <= 0 for g in gamma):
        raise InvalidArgument(f"gamma {gamma} must be > 0", value=gamma)
    opacity = params.get("opacity")
    return {"min": vmin, "max": vmax, "gamma": gamma,
            "palette": [list(c) for c in palette] if palette else None,
            "opacity": 1.0 if opacity is None else check_opacity(opacity)}


def palette_lut(palette: Sequence[Sequence[int]]) -> np.ndarray:
    """A 256 x 3 uint8 lookup table interpolating the palette linearly (Earth Engine's ramp)."""
    colors = np.asarray(palette, dtype=np.float64)
    if len(colors) == 1:
        return np.repeat(colors.astype(np.uint8), 256, axis=0)
    pos = np.linspace(0, 1, len(colors))
    x = np.linspace(0, 1, 256)
    lut = np.stack([np.interp(x, pos, colors[:, c]) for c in range(3)], axis=1)
    return np.round(lut).astype(np.uint8)


def stretch(values: np.ndarray, vmin: float, vmax: float, gamma: float) -> np.ndarray:
    """Values -> uint8 0..255 with a linear stretch and gamma."""
    if values.dtype in (np.uint8, np.uint16) and values.size > 16384:  # one lookup (same formula)
        return _lookup(_stretch_lut(values.dtype.str, float(vmin), float(vmax), float(gamma)), values)
    return _stretch(values, vmin, vmax, gamma)


def _lookup(lut: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``lut[index]``: ``take()`` for a contiguous index (a third of the time of fancy indexing on a
    tile), fancy indexing otherwise (take copies a strided index first: a band of a pixel-interleaved
    warp took 15 ms instead of 9 for 2048 x 2048)."""
    return lut.take(index) if index.flags.c_contiguous else lut[index]


def _palette_rgbx(values: np.ndarray, vmin: float, vmax: float, gamma: float, palette) -> np.ndarray:
    """:func:`stretch` then :func:`palette_lut` as H x W x 4 uint8 (red, green, blue, unused): one
    ``take()`` of packed 32-bit colours, through a table from source values straight to colours for
    8- and 16-bit sources (fancy indexing of the 256 x 3 table costs several times more)."""
    colors = tuple(tuple(int(v) for v in c) for c in palette)
    if values.dtype in (np.uint8, np.uint16) and values.size > 16384:
        lut = _value_colors(values.dtype.str, float(vmin), float(vmax), float(gamma), colors)
        packed = _lookup(lut, values)
    else:
        packed = _lookup(_palette_colors(colors), stretch(values, vmin, vmax, gamma))
    return packed.view(np.uint8).reshape(values.shape + (4,))


@memoized("palette colours", 64)
def _palette_colors(colors: tuple) -> np.ndarray:
    """:func:`palette_lut` packed as 256 uint32 (one RGBX colour each)."""
    rgbx = np.zeros((256, 4), np.uint8)
    rgbx[:, :3] = palette_lut(colors)
    lut = rgbx.view(np.uint32).ravel()
    lut.setflags(write=False)
    return lut


@memoized("value colour LUTs", 16)
def _value_colors(dtype: str, vmin: float, vmax: float, gamma: float, colors: tuple) -> np.ndarray:
    """The packed colour of every value of an 8- or 16-bit dtype (256 KiB for 16 bits)."""
    lut = _palette_colors(colors).take(_stretch_lut(dtype, vmin, vmax, gamma))
    lut.setflags(write=False)
    return lut


@memoized("stretch LUTs", 64)
def _stretch_lut(dtype: str, vmin: float, vmax: float, gamma: float) -> np.ndarray:
    dt = np.dtype(dtype)
    lut = _stretch(np.arange(np.iinfo(dt).max + 1, dtype=dt), vmin, vmax, gamma)
    lut.setflags(write=False)
    return lut


def _stretch(values: np.ndarray, vmin: float, vmax: float, gamma: float) -> np.ndarray:
    v = (values.astype(np.float32, copy=False) - np.float32(vmin)) * np.float32(1.0 / (vmax - vmin))
    np.clip(v, 0, 1, out=v)
    np.nan_to_num(v, copy=False)
    if gamma != 1.0:
        np.power(v, np.float32(1.0 / gamma), out=v)
    v *= 255.0
    v += 0.5
    return v.astype(np.uint8)


# display operations -------------------------------------------------------------------------
#: The bands of a display raster (their grid is the raster's own).
_VIS_INFO = tuple(BandInfo(n, "uint8", None) for n in VIS_BANDS)


def _display(raster: Raster, channels: Sequence[np.ndarray], mask: np.ndarray | None) -> Raster:
    """Three uint8 bands sharing ``mask`` (the alpha), on the raster's grid and footprint."""
    fp = raster.footprint()
    return Raster(tuple(Band(c, mask, fp) for c in channels), raster.grid, _VIS_INFO)


def _opaque(mask: np.ndarray) -> bool:
    """Does ``mask`` round to alpha 255 everywhere (the rounding of :func:`rgba_planes`)?"""
    return bool(np.rint(mask.min() * np.float32(255)) >= 255)


def visualize(raster: Raster, vis: dict) -> Raster:
    """Earth Engine ``visualize`` with :func:`normalize_vis` parameters: red, green, blue uint8 bands
    whose mask is the bands' common mask times ``opacity`` (``None`` where that is opaque)."""
    mask = raster.mask()
    if vis["opacity"] < 1:
        mask = (np.ones(raster.shape, np.float32) if mask is None else mask) * vis["opacity"]
    if mask is not None and _opaque(mask):
        mask = None
    if vis["palette"] is not None:
        rgb = _palette_rgbx(raster[0].values, vis["min"][0], vis["max"][0], vis["gamma"][0], vis["palette"])
        channels = [rgb[..., 0], rgb[..., 1], rgb[..., 2]]
    else:
        channels = [stretch(b.values, lo, hi, g) for b, lo, hi, g in
                    zip(raster, vis["min"], vis["max"], vis["gamma"])]
        if len(channels) == 1:
            channels = channels * 3
    return _display(raster, channels, mask)


def class_lut(table: Sequence[tuple], background: int | None = None, hidden: Sequence[int] = (),
              opacity: float = 1.0, size: int = 256) -> np.ndarray:
    """A ``size`` x 4 uint8 RGBA table indexed by class id, from a ``BandInfo.classes``-style table.

    Ids without an entry, the ``background`` class and ``hidden`` classes have alpha 0
    (their colour channels keep the class colour, so nothing turns black).
    """
    alpha = int(round(check_opacity(opacity) * 255))
    hidden_ids = set(hidden)
    lut = np.zeros((size, 4), np.uint8)
    for entry in table:
        e = dict(entry)
        cid = e["id"]
        if cid >= size:
            continue
        lut[cid, :3] = parse_color(e["color"])
        lut[cid, 3] = 0 if (cid in hidden_ids or cid == background or e.get("transparent")) else alpha
    return lut


@memoized("class LUTs", 256)
def _lut32(table: tuple, background: int | None, hidden: tuple, opacity: float, size: int) -> np.ndarray:
    """The class LUT as one uint32 per id plus a final transparent slot (for out-of-table ids)."""
    rgba_lut = np.zeros((size + 1, 4), np.uint8)
    rgba_lut[:size] = class_lut(table, background, hidden, opacity, size)
    lut = rgba_lut.view(np.uint32).ravel()
    lut.setflags(write=False)
    return lut


def _lut_size(table: Sequence[tuple]) -> int:
    return max(256, max((dict(e)["id"] + 1 for e in table), default=0))


def colorize(values: np.ndarray, mask: np.ndarray | None, table: tuple, background: int | None = None,
             hidden: tuple = (), opacity: float = 1.0) -> np.ndarray:
    """Class ids (H x W) -> H x W x 4 uint8 RGBA through one lookup table.

    ``mask`` (float in [0, 1] or bool; ``None`` = all valid) scales alpha. Ids without an
    entry, negative ids, NaN, hidden classes and the background class are transparent.
    """
    size = _lut_size(table)
    lut = _lut32(table, background, hidden, float(opacity), size)
    if values.dtype == np.uint8:
        idx = values
    else:
        if values.dtype.kind == "f":
            v = np.where(np.isfinite(values), np.rint(values), -1)
        elif values.dtype.kind in "iub":
            v = values
        else:
            raise InvalidArgument(f"class values of dtype {values.dtype} are not allowed; allowed: numbers",
                                  value=str(values.dtype))
        idx = np.where((v >= 0) & (v < size), v, size).astype(np.intp)
    out = lut[idx].view(np.uint8).reshape(values.shape + (4,))
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != values.shape:
            raise InvalidArgument(f"mask of shape {m.shape} does not match values {values.shape}", value=m.shape)
        if m.dtype == np.bool_:
            out[..., 3] *= m
        elif m.min(initial=1) < 1:
            out[..., 3] = np.rint(out[..., 3] * np.clip(m, 0, 1)).astype(np.uint8)
    return out


_INV255 = np.float32(1 / 255)


def color_classes(raster: Raster, table: tuple, background: int | None, hidden: tuple,
                  opacity: float) -> Raster:
    """A one-band class raster through its class table: RGB bands, alpha (as the mask) from the
    table (hidden, background and unknown ids transparent), ``opacity`` and the band's mask."""
    band = raster[0]
    out = colorize(band.values, band.mask, table, background, hidden, opacity)
    return _display(raster, [out[..., 0], out[..., 1], out[..., 2]], out[..., 3] * _INV255)


def mask_ramp(raster: Raster, palette: Sequence[Sequence[int]], opacity: float) -> Raster:
    """Mask values (several bands: their minimum) clipped to [0, 1] on a colour ramp; 0 and masked
    pixels are transparent, the others have alpha ``opacity``."""
    level = None
    for band in raster:
        v = np.clip(np.nan_to_num(band.values.astype(np.float32, copy=False), nan=0.0), 0.0, 1.0)
        if band.mask is not None:
            v = np.where(band.mask > 0, v, np.float32(0))
        level = v if level is None else np.minimum(level, v)
    idx = np.rint(level * 255).astype(np.uint8)
    rgb = palette_lut(palette)[idx]
    alpha = np.float32(int(round(opacity * 255)) / 255)
    return _display(raster, [rgb[..., 0], rgb[..., 1], rgb[..., 2]], (idx > 0) * alpha)


# RGBA assembly ---------------------------------------------------------------------------------
def rgba_planes(raster: Raster) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Colour planes (1 or 3 uint8 bands) and alpha = mask x 255 (``None`` when the raster has no
    mask: opaque); colour is 0 where alpha is 0."""
    if len(raster) not in (1, 3) or any(b.values.dtype != np.uint8 for b in raster):
        raise InvalidArgument(
            "PNG and JPEG need 1 or 3 bands of 8-bit data; got "
            f"{len(raster)} bands of {sorted({str(b.values.dtype) for b in raster})}. "
            "Add visualizationOptions (ranges, paletteColors) or use NPY, GEO_TIFF or NUMPY_NDARRAY",
            value=len(raster), allowed="1 or 3 uint8 bands, or visualizationOptions")
    planes = raster.values
    mask = raster.mask()
    if mask is None:
        return planes, None
    alpha = np.rint(mask * 255).astype(np.uint8)
    keep = (alpha != 0).view(np.uint8)  # colour x 1 or x 0: np.where's branches cost 20-100x more
    cleared: dict[int, np.ndarray] = {}  # a grey layer's three planes are one array: cleared once
    out = []
    for p in planes:
        if id(p) not in cleared:
            cleared[id(p)] = np.multiply(p, keep)
        out.append(cleared[id(p)])
    return out, alpha


def rgba(raster: Raster) -> np.ndarray:
    """H x W x 4 uint8 RGBA of a 1- or 3-band uint8 raster (alpha 255 where it has no mask)."""
    planes, alpha = rgba_planes(raster)
    out = np.empty(planes[0].shape + (4,), np.uint8)
    for i in range(3):
        out[..., i] = planes[i if len(planes) == 3 else 0]
    out[..., 3] = 255 if alpha is None else alpha
    return out


# The picture's bytes: PNG, JPEG, WebP ------------------------------------------------------------
#: Image formats of tiles (URL extension -> media type).
FORMATS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


def check_format(fmt) -> str:
    """The lower-case tile format, if allowed (png, jpg, jpeg, webp); ``jpeg`` is ``jpg`` (one cache entry and
    one ETag for both spellings of the same bytes)."""
    key = fmt.lower() if isinstance(fmt, str) else fmt
    if key not in FORMATS:
        raise InvalidArgument(f"tile format {fmt!r} is not allowed; allowed: {sorted(set(FORMATS))}", value=fmt,
                              allowed=sorted(FORMATS))
    return "jpg" if key == "jpeg" else key


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
