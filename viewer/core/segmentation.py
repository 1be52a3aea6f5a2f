"""Segmentation overlays with the Weights & Biases ``ImageMask`` contract.

Public API::

    m = ImageMask({"mask_data": ids_2d, "class_labels": {0: "person", 1: "tree"}}, "predictions")
    m = ImageMask({"path": "mask.tif"}, "ground_truth")   # PNG, or GeoTIFF (keeps CRS/transform)
    ImageMask.type_name() -> "mask";  ImageMask.validate(val) -> True (or raises InvalidMask)
    m.mask_data, m.class_labels, m.classes (Classes), m.grid (Grid), m.key
    m.image(like=None) -> one-band class Image (band ``key``) for maps, statistics, getPixels
    Image.from_array(rgb, masks={"predictions": {...}, "ground_truth": {...}}, classes=Classes([...]))
    overlays(image) -> {key: ImageMask} aligned to the image's grid

``val`` holds exactly one of ``mask_data`` (2-D integer numpy array of class ids 0..255)
or ``path``, plus optional ``class_labels`` (int -> str; default names ``class_<id>`` for
the ids present). Float arrays of whole numbers and bool arrays are class ids as in W&B
(converted without loss); fractions, negative ids, non-integer label keys, unknown keys and
unreadable files raise :class:`~viewer.core.errors.InvalidMask`.
With a ``Classes`` set, a mask's table is the set merged with its ``class_labels`` (labels
name the classes, the set gives colours and the classes the mask does not mention).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .classes import Classes
from .image import Image
from .mask_data import (MAX_MASK_ID, MAX_MASK_PIXELS, MAX_MASK_SIDE, MaskData, attach_masks, grid_of)
from .mask_data import overlays as _attached
from .sources import array_node

__all__ = ["ImageMask", "Classes", "attach_masks", "overlays", "MAX_MASK_ID", "MAX_MASK_PIXELS", "MAX_MASK_SIDE"]


class ImageMask(MaskData):
    """A class-id mask (segmentation overlay), as ``wandb.ImageMask(val, key)``."""

    @classmethod
    def of(cls, data: MaskData) -> "ImageMask":
        """``data`` as an :class:`ImageMask` (itself when it is one)."""
        if isinstance(data, ImageMask):
            return data
        mask = object.__new__(cls)
        mask.__dict__.update(data.__dict__)
        return mask

    def image(self, like: Any = None) -> Image:
        """A one-band class :class:`~viewer.core.image.Image` (band name = key).

        Default grid: :attr:`grid`. ``like=image`` aligns it to that image's grid instead.
        """
        grid = self._grid if like is None else self.aligned(grid_of(like)).grid
        mask = None if self._valid is None else self._valid.astype(np.float32)
        node = array_node(self._data, grid.crs, grid.transform, [self._key], mask, kind="class",
                          classes=self._classes.to_band_classes())
        return Image(_node=node)


def overlays(image) -> dict[str, ImageMask]:
    """The segmentation overlays attached to an image (``{}`` when none)."""
    return {k: ImageMask.of(m) for k, m in _attached(image).items()}
