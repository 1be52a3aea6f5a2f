"""Encoders: evaluated layers -> PNG, JPEG, NPY, GeoTIFF bytes or a structured numpy array."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage
from rasterio.io import MemoryFile

from .errors import InvalidArgument
from .grid import Grid

__all__ = ["FILE_FORMATS", "rgba_from_layers", "encode_png", "encode_jpeg", "structured_array",
           "encode_npy", "encode_geotiff", "raw_stack"]

FILE_FORMATS = ("PNG", "JPEG", "AUTO_JPEG_PNG", "NPY", "GEO_TIFF", "NUMPY_NDARRAY")


def raw_stack(layers: list, dtypes: list[str]) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Per-band values in their declared dtype with masked pixels set to 0, and the masks."""
    values, masks = [], []
    for l, dt in zip(layers, dtypes):
        v = l.values
        if l.mask is not None:
            v = np.where(l.mask > 0, v, 0)
        dtype = np.dtype(dt)
        if dtype.kind in "iu" and v.dtype.kind == "f":
            v = np.rint(v)
        values.append(np.asarray(v).astype(dtype, copy=False))
        masks.append(l.mask)
    return values, masks


def rgba_from_layers(layers: list) -> np.ndarray:
    """H x W x 4 uint8 from 1 or 3 uint8 layers; alpha = mask x 255."""
    if len(layers) not in (1, 3) or any(l.values.dtype != np.uint8 for l in layers):
        raise InvalidArgument(
            "PNG and JPEG need 1 or 3 bands of 8-bit data; got "
            f"{len(layers)} bands of {sorted({str(l.values.dtype) for l in layers})}. "
            "Add visualizationOptions (ranges, paletteColors) or use NPY, GEO_TIFF or NUMPY_NDARRAY",
            value=len(layers), allowed="1 or 3 uint8 bands, or visualizationOptions")
    chans = [l.values for l in layers] * (3 if len(layers) == 1 else 1)
    mask = None
    for l in layers:
        if l.mask is not None:
            mask = l.mask if mask is None else np.minimum(mask, l.mask)
    h, w = chans[0].shape
    rgba = np.empty((h, w, 4), np.uint8)
    for i in range(3):
        rgba[..., i] = chans[i]
    if mask is None:
        rgba[..., 3] = 255
    else:
        rgba[..., 3] = np.rint(mask * 255).astype(np.uint8)
        rgba[rgba[..., 3] == 0, :3] = 0
    return rgba


def encode_png(rgba: np.ndarray, compress_level: int = 1) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(rgba, "RGBA").save(buf, "PNG", compress_level=compress_level)
    return buf.getvalue()


def encode_jpeg(rgba: np.ndarray, quality: int = 90) -> bytes:
    rgb = rgba[..., :3].copy()
    rgb[rgba[..., 3] == 0] = 0
    buf = io.BytesIO()
    PILImage.fromarray(rgb, "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def structured_array(names: list[str], values: list[np.ndarray]) -> np.ndarray:
    """A structured array with one field per band (the Python client's NUMPY_NDARRAY)."""
    h, w = values[0].shape
    out = np.zeros((h, w), dtype=[(n, v.dtype) for n, v in zip(names, values)])
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
        from rasterio.env import Env

        with Env(GDAL_TIF_INTERNAL_MASK=True):
            with mem.open(**profile) as dst:
                for i, (n, v) in enumerate(zip(names, values), start=1):
                    dst.write(v.astype(dtype, copy=False), i)
                    dst.set_band_description(i, n)
                if valid is not None and not valid.all():
                    dst.write_mask(valid.astype(np.uint8) * 255)
        return mem.read()
