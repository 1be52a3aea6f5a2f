"""Data formats: band values -> NPY or GeoTIFF bytes (or a structured numpy array), nothing else.

Raw band values come from :meth:`viewer.core.raster.Raster.raw`. Pictures (PNG, JPEG, WebP
of a display raster) are written by :mod:`viewer.core.visualize`, which makes their colours.
"""
from __future__ import annotations

import io

import numpy as np
from rasterio.env import Env
from rasterio.io import MemoryFile

from .grid import Grid

__all__ = ["FILE_FORMATS", "structured_array", "encode_npy", "encode_geotiff"]

FILE_FORMATS = ("PNG", "JPEG", "AUTO_JPEG_PNG", "NPY", "GEO_TIFF", "NUMPY_NDARRAY")


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
