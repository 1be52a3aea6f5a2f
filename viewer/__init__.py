"""viewer: an open map viewer for raster imagery, masks and segmentation results.

Earth Engine-style images and pixel fetch (``Image``, ``ImageCollection``, ``Geometry``,
``Projection``, ``data.getPixels``), Weights & Biases-style class masks (``ImageMask``,
``Classes``) and a geemap-style map (``Map``).
"""
from . import data
from .core.catalog import get_catalog, set_catalog
from .core.collection import Date, Filter, ImageCollection
from .core.errors import (InvalidArgument, InvalidMask, LimitExceeded, ReadError, UnknownAsset, UnknownBand,
                          UnknownCRS, ViewerError)
from .core.geometry import Geometry, Projection
from .core.image import Image
from .core.reducers import Reducer

__all__ = [
    "Image", "ImageCollection", "Geometry", "Projection", "data", "Reducer", "Filter", "Date",
    "get_catalog", "set_catalog",
    "ViewerError", "InvalidArgument", "InvalidMask", "LimitExceeded", "ReadError", "UnknownAsset",
    "UnknownBand", "UnknownCRS",
]


def __getattr__(name: str):
    # Heavier parts load on first use so that the core stays importable without them.
    if name in ("ImageMask", "Classes"):
        from .core import segmentation

        return getattr(segmentation, name)
    if name == "Map":
        from .ui.map import Map

        return Map
    raise AttributeError(f"module 'viewer' has no attribute {name!r}")
