"""Segmentation mask data (the Weights & Biases ``ImageMask`` contract, without ``Image``).

Validation of a mask dict (``mask_data`` or ``path``, ``class_labels``), reading mask files,
alignment to an image's grid, class tables, and attaching masks to an image as overlays.
:mod:`viewer.core.image` attaches masks through this module (``Image.from_array(..., masks=...)``);
:class:`viewer.core.segmentation.ImageMask` is :class:`MaskData` plus ``image()``, so neither
module imports the other's importer.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Mapping

import numpy as np
from affine import Affine
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from .classes import Classes
from .errors import InvalidArgument, InvalidMask, LimitExceeded, ViewerError
from .grid import Grid
from .read import open_raster

__all__ = ["MaskData", "attach_masks", "overlays", "grid_of", "MAX_MASK_ID", "MAX_MASK_PIXELS", "MAX_MASK_SIDE"]

#: W&B stores masks as 8-bit PNGs: ids must be in 0..255.
MAX_MASK_ID = 255
#: Largest mask accepted (like the pixel-fetch limits): 100 Mpx, 32768 per side.
MAX_MASK_PIXELS = 100_000_000
MAX_MASK_SIDE = 32768
_KEYS = ("mask_data", "path", "class_labels")


def _check_labels(labels: Any) -> dict[int, str]:
    if not isinstance(labels, Mapping):
        raise InvalidMask(f"class_labels {labels!r} must be a dict of int -> str, e.g. {{0: 'person'}}",
                          value=labels, allowed="dict[int, str]")
    out: dict[int, str] = {}
    for k, v in labels.items():
        if isinstance(k, (float, np.floating)) and float(k).is_integer():
            k = int(k)  # W&B takes {1.0: "tree"}
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise InvalidMask(f"class_labels key {k!r} ({type(k).__name__}) must be an integer class id",
                              value=k, allowed="int keys")
        if not 0 <= int(k) <= MAX_MASK_ID:
            raise InvalidMask(f"class_labels key {k} is out of range; allowed 0..{MAX_MASK_ID}", value=k,
                              allowed=f"0..{MAX_MASK_ID}")
        if not isinstance(v, str) or not v:
            raise InvalidMask(f"class_labels[{k}] = {v!r} must be a non-empty string name", value=v,
                              allowed="str")
        out[int(k)] = v
    return out


def _check_mask_size(width: int, height: int, what: str) -> None:
    if width > MAX_MASK_SIDE or height > MAX_MASK_SIDE or width * height > MAX_MASK_PIXELS:
        raise LimitExceeded(f"{what} of {width}x{height} pixels is over the limit of {MAX_MASK_PIXELS:,} pixels "
                            f"and {MAX_MASK_SIDE} per side", value=(width, height),
                            allowed=f"<= {MAX_MASK_PIXELS} pixels, <= {MAX_MASK_SIDE} per side")


def _check_array(data: Any, what: str) -> np.ndarray:
    if not isinstance(data, np.ndarray):
        raise InvalidMask(f"{what} must be a 2-D numpy integer array, got {type(data).__name__}",
                          value=type(data).__name__, allowed="numpy.ndarray")
    if data.ndim != 2:
        raise InvalidMask(f"{what} must be 2-D (H x W), got shape {data.shape}", value=data.shape,
                          allowed="2-D array")
    if data.dtype.kind not in "uifb":
        raise InvalidMask(f"{what} dtype {data.dtype} is not allowed; class ids need an integer dtype "
                          "(uint8, uint16, int32, ...), or floats or bools holding whole numbers",
                          value=str(data.dtype), allowed="integer, float or bool dtypes")
    if data.size == 0:
        raise InvalidMask(f"{what} of shape {data.shape} is empty", value=data.shape)
    _check_mask_size(data.shape[1], data.shape[0], what)  # before any conversion or scan of the values
    if data.dtype.kind == "b":  # a binary mask (pred > 0.5): ids 0 and 1, as W&B reads it
        data = data.astype(np.uint8)
    if data.dtype.kind == "f":  # W&B takes floats (np.zeros); only whole numbers are class ids
        whole = np.isfinite(data) & (np.floor(data) == data)
        if not whole.all():
            bad = float(data[~whole][0])
            raise InvalidMask(f"{what} holds {bad!r}, not a whole number; class ids must be whole numbers in "
                              f"0..{MAX_MASK_ID}", value=bad, allowed=f"whole numbers 0..{MAX_MASK_ID}")
    lo, hi = int(data.min()), int(data.max())
    if lo < 0:
        raise InvalidMask(f"{what} holds negative class id {lo}; class ids must be in 0..{MAX_MASK_ID}",
                          value=lo, allowed=f"0..{MAX_MASK_ID}")
    if hi > MAX_MASK_ID:
        raise InvalidMask(f"{what} holds class id {hi}; class ids must be in 0..{MAX_MASK_ID}", value=hi,
                          allowed=f"0..{MAX_MASK_ID}")
    return data.astype(np.uint8) if data.dtype.kind == "f" else data


def _read_path(path: Any) -> tuple[np.ndarray, np.ndarray | None, Grid | None]:
    """Values, validity (bool or None) and grid (None for plain pixel images) of a mask file."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InvalidMask(f"path {path!r} must be a non-empty string or os.PathLike", value=path,
                          allowed="path to a PNG or GeoTIFF")
    path = os.fspath(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with open_raster(path) as ds:
                _check_mask_size(ds.width, ds.height, f"mask file {path!r}")
                if ds.count != 1:
                    raise InvalidMask(f"mask file {path!r} has {ds.count} bands; a mask must have exactly one "
                                      "band of class ids (not RGB)", value=ds.count, allowed=1)
                data = ds.read(1)
                _check_array(data, f"mask file {path!r}")
                valid = None
                if ds.mask_flag_enums[0] != [MaskFlags.all_valid]:
                    m = ds.read_masks(1) > 0
                    valid = None if m.all() else m
                grid = Grid(ds.crs, ds.transform, ds.width, ds.height) if ds.crs else None
    except (LimitExceeded, InvalidMask):
        raise
    except (ViewerError, RasterioIOError, OSError) as exc:
        raise InvalidMask(f"cannot read mask file {path!r}: {exc}", value=path,
                          allowed="a readable PNG or GeoTIFF") from None
    return data, valid, grid


def _load(val: Any) -> tuple[np.ndarray, np.ndarray | None, Grid | None, dict[int, str] | None, str | None]:
    if not isinstance(val, Mapping):
        raise InvalidMask(f"mask value {val!r} must be a dict with 'mask_data' or 'path'", value=val,
                          allowed=list(_KEYS))
    unknown = sorted(str(k) for k in val if k not in _KEYS)
    if unknown:
        raise InvalidMask(f"unknown mask keys {unknown}; allowed: {list(_KEYS)}", value=unknown,
                          allowed=list(_KEYS))
    has_data, has_path = "mask_data" in val, "path" in val
    if has_data == has_path:
        what = "both" if has_data else "neither"
        raise InvalidMask(f"a mask needs exactly one of 'mask_data' or 'path', got {what}",
                          value=sorted(val), allowed="one of mask_data, path")
    labels = _check_labels(val["class_labels"]) if "class_labels" in val else None
    if has_data:
        data = _check_array(val["mask_data"], "mask_data")
        data = np.array(data, copy=True)
        return data, None, None, labels, None
    data, valid, grid = _read_path(val["path"])
    return data, valid, grid, labels, os.fspath(val["path"])


def _present_ids(data: np.ndarray) -> list[int]:
    return np.flatnonzero(np.bincount(data.ravel().astype(np.intp, copy=False), minlength=1)).tolist()


class MaskData:
    """A validated class-id mask: ids, validity, grid, key, path and class table (no ``Image``).

    :class:`viewer.core.segmentation.ImageMask` is this plus ``image()``."""

    def __init__(self, val: dict, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise InvalidMask(f"mask key {key!r} must be a non-empty string such as 'predictions'", value=key,
                              allowed="non-empty str")
        data, valid, grid, labels, path = _load(val)
        data.setflags(write=False)
        if valid is not None:
            valid.setflags(write=False)
        self._key = key
        self._data = data
        self._valid = valid
        self._path = path
        self._labels = labels
        self._georef = grid is not None
        self._grid = grid or Grid(None, Affine.identity(), int(data.shape[1]), int(data.shape[0]))
        self._ids = _present_ids(data if valid is None else data[valid])
        base = Classes.from_labels(labels) if labels is not None else Classes()
        self._classes = base.with_ids(self._ids)

    # W&B surface ------------------------------------------------------------------------
    @classmethod
    def type_name(cls) -> str:
        return "mask"

    @classmethod
    def validate(cls, val: dict) -> bool:
        """``True`` for a valid mask dict; otherwise raise :class:`InvalidMask` saying why."""
        _load(val)
        return True

    # data -------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        return self._key

    @property
    def mask_data(self) -> np.ndarray:
        """The class ids (read-only H x W integer array)."""
        return self._data

    @property
    def valid(self) -> np.ndarray | None:
        """Validity from the file's nodata/mask (bool H x W), or ``None`` when all valid."""
        return self._valid

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def class_labels(self) -> dict[int, str]:
        """``{id: name}``: the given labels, plus ``class_<id>`` for unlabelled ids present."""
        return self._classes.names

    @property
    def classes(self) -> Classes:
        return self._classes

    @property
    def ids(self) -> list[int]:
        """Class ids present in the mask (valid pixels only), ascending."""
        return list(self._ids)

    @property
    def shape(self) -> tuple[int, int]:
        return self._data.shape  # type: ignore[return-value]

    @property
    def grid(self) -> Grid:
        """Pixel coordinates, the GeoTIFF's georeferencing, or the grid it was aligned to."""
        return self._grid

    def _copy(self, **changes: Any) -> "MaskData":
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update({"_" + k: v for k, v in changes.items()})
        return new

    def aligned(self, grid: Grid) -> "MaskData":
        """The same mask placed on ``grid`` (same H x W required)."""
        if not isinstance(grid, Grid):
            raise InvalidMask(f"grid {grid!r} must be a viewer Grid", value=grid)
        if grid.shape != self.shape:
            raise InvalidMask(f"mask {self._key!r} is {self.shape[0]}x{self.shape[1]} (H x W) but the image grid "
                              f"is {grid.height}x{grid.width}; a mask must have the image's height and width",
                              value=self.shape, allowed=grid.shape)
        if self._georef and grid.crs is not None and not _same_place(self._grid, grid):
            raise InvalidMask(f"mask {self._key!r} is georeferenced ({self._grid.to_dict()['crsCode']}, "
                              f"{tuple(self._grid.transform)[:6]}) differently from the image "
                              f"({grid.to_dict()['crsCode']}, {tuple(grid.transform)[:6]})",
                              value=self._grid.to_dict(), allowed=grid.to_dict())
        return self._copy(grid=grid, georef=grid.crs is not None)

    def with_classes(self, classes: Classes | list | None) -> "MaskData":
        """This mask with a class set: the set, overridden by the mask's labels, plus ids present."""
        if classes is None:
            return self
        cset = _as_classes(classes)
        labels = self._labels or {}
        # the labels rename classes of the set (keeping the set's colours) and add new ones
        named = Classes([{"id": k, "name": v, "color": cset.color(k)} for k, v in labels.items()])
        return self._copy(classes=cset.merged(named).with_ids(self._ids))

    def __repr__(self) -> str:
        src = f"path={self._path!r}" if self._path else "mask_data"
        return (f"ImageMask({self._key!r}, {src}, shape={self.shape}, dtype={self._data.dtype}, "
                f"classes={self._classes.names})")


def _same_place(a: Grid, b: Grid) -> bool:
    if a.crs != b.crs:
        return False
    ta, tb = tuple(a.transform)[:6], tuple(b.transform)[:6]
    scale = max(abs(a.transform.a), abs(a.transform.e), 1e-12)
    return all(abs(x - y) <= 1e-6 * scale + 1e-9 * max(abs(x), abs(y)) for x, y in zip(ta, tb))


def _as_classes(classes: Any) -> Classes:
    try:
        return Classes.coerce(classes)
    except InvalidArgument as exc:
        raise InvalidMask(f"classes: {exc.message}", value=exc.value, allowed=exc.allowed) from None


def grid_of(image: Any) -> Grid:
    if not hasattr(image, "native_grid"):
        raise InvalidMask(f"like={image!r} must be a viewer.Image", value=image, allowed="viewer.Image")
    grid = image.native_grid()
    if grid is not None:
        return grid
    raise InvalidMask(f"image {image!r} has no pixel grid (a constant); a mask needs an image with pixels",
                      value=repr(image))


def attach_masks(image, masks: Mapping[str, Any] | None, classes: Any = None):
    """``image`` with W&B-style masks attached as overlays (a new Image; the input is unchanged).

    ``masks`` maps a key (``"predictions"``) to a mask dict or an ``ImageMask``;
    each must have the image's H x W and is placed on the image's grid.
    """
    if masks is None:
        masks = {}
    if not isinstance(masks, Mapping):
        raise InvalidMask(f"masks {masks!r} must be a dict of key -> mask dict", value=masks,
                          allowed="dict[str, dict]")
    cset = None if classes is None else _as_classes(classes)
    grid = grid_of(image) if masks else None
    out: dict[str, MaskData] = dict(overlays(image))
    for key, val in masks.items():
        m = val if isinstance(val, MaskData) else MaskData(val, key)
        if isinstance(val, MaskData) and m.key != key:
            m = m._copy(key=key)
        out[key] = m.aligned(grid).with_classes(cset)
    img = image._derive(image.node, keep_id=True)
    img._overlays = out
    return img


def overlays(image) -> dict[str, MaskData]:
    """The mask data attached to an image (``{}`` when none); :func:`viewer.core.segmentation.overlays`
    gives them as ``ImageMask``."""
    return dict(getattr(image, "_overlays", None) or {})
