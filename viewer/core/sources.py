"""Leaf nodes: catalog assets, files on disk, in-memory arrays and constants."""
from __future__ import annotations

import hashlib
import os
import threading
import weakref

import numpy as np
import PIL.Image
from affine import Affine
from rasterio.enums import ColorInterp

from .cache import memoized
from .catalog import BandSource, get_catalog
from .errors import InvalidArgument, ReadError
from .graph import BandInfo, Node
from .grid import Grid, parse_crs
from .raster import Band, Raster
from .read import native_grid, open_dataset, source_identity

__all__ = ["asset_node", "file_node", "array_node", "picture_node", "constant_node", "get_array"]

#: In-memory band stacks by content digest (each a :class:`Raster` on the array's own grid), each
#: registered while a node holds it (``Node.held``): the arrays of an image its user dropped are freed.
_arrays: weakref.WeakValueDictionary[str, Raster] = weakref.WeakValueDictionary()
_arrays_lock = threading.Lock()


def get_array(digest: str) -> Raster:
    """The in-memory raster registered under ``digest`` (``KeyError`` if no live node of this process
    holds it)."""
    with _arrays_lock:
        return _arrays[digest]


@memoized("band metadata", 1024)
def _file_band_meta(path: str, bidx: int, identity: str) -> tuple[str, Grid]:
    ds = open_dataset(path)
    if not 1 <= bidx <= ds.count:
        raise ReadError(f"band {bidx} does not exist in {path!r} (it has {ds.count} bands)", value=bidx)
    return ds.dtypes[bidx - 1], native_grid(ds)


def asset_node(asset_id: str) -> tuple[Node, dict]:
    """The node and properties of a catalog image."""
    entry = get_catalog().image(asset_id)
    bands = []
    for b in entry.bands:
        dtype, grid = _file_band_meta(b.path, b.band, source_identity(b.path))
        bands.append(BandInfo(b.id, dtype, grid, b.kind, b.classes, b.units, b.description))
    sources = tuple(_source_args(b) for b in entry.bands)
    return Node("source", (asset_id, sources), tuple(bands)), dict(entry.properties)


def _source_args(b: BandSource) -> tuple:
    ovr = b.extra.get("overviews", "average" if b.kind == "continuous" else "unknown")
    return (b.path, b.band, ovr, source_identity(b.path))


def file_node(path: str) -> Node:
    """Every band of a GeoTIFF/COG (alpha bands become the mask, not a band)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgument(f"path {path!r} must be a string or os.PathLike", value=path)
    path = str(path)
    if not path or "\x00" in path:
        raise InvalidArgument(f"path {path[:80]!r} is empty or has a NUL byte; allowed: a raster file path",
                              value=path[:80], allowed="a raster file path")
    ds = open_dataset(path)
    identity = source_identity(path)
    bands, sources = [], []
    for i in range(1, ds.count + 1):
        if ds.colorinterp[i - 1] == ColorInterp.alpha:
            continue
        desc = ds.descriptions[i - 1]
        name = desc if desc else f"b{i}"
        dtype, grid = _file_band_meta(path, i, identity)
        bands.append(BandInfo(name, dtype, grid))
        sources.append((path, i, "unknown", identity))
    return Node("source", (None, tuple(sources)), tuple(bands))


def _as_chw(data: np.ndarray) -> np.ndarray:
    if data.ndim == 2:
        return data[None]
    if data.ndim == 3:
        # H x W x C for PIL / W&B style images (a last axis of 1-4 channels), else C x H x W
        hwc = data.shape[-1] <= 4 < data.shape[0]
        return np.moveaxis(data, -1, 0) if hwc else data
    raise InvalidArgument(f"array of shape {data.shape} is not allowed; allowed: H x W, H x W x C or C x H x W",
                          value=data.shape, allowed="2-D or 3-D array")


def array_node(
    data: np.ndarray,
    crs=None,
    transform=None,
    band_names=None,
    mask=None,
    kind: str = "continuous",
    classes: tuple = (),
) -> Node:
    """Register an in-memory array and return its leaf node."""
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "uif":
        raise InvalidArgument(f"array dtype {arr.dtype} is not allowed; allowed: integer or float",
                              value=str(arr.dtype), allowed="integer or float dtypes")
    chw = np.ascontiguousarray(_as_chw(arr))
    if chw.shape[1] == 0 or chw.shape[2] == 0:
        raise InvalidArgument(f"array of shape {arr.shape} is empty", value=arr.shape)
    crs_obj = parse_crs(crs)
    if transform is None:
        transform = Affine.identity()
    elif not isinstance(transform, Affine):
        coeffs = list(transform) if isinstance(transform, (list, tuple, np.ndarray)) else []
        if len(coeffs) < 6 or not all(_is_float(c) for c in coeffs[:6]):
            raise InvalidArgument(f"transform {transform!r:.80} must be an Affine or 6 numbers (a, b, c, d, e, f)",
                                  value=str(transform)[:80], allowed="Affine or 6 numbers")
        transform = Affine(*[float(c) for c in coeffs[:6]])
    grid = Grid(crs_obj, transform, int(chw.shape[2]), int(chw.shape[1]))
    m = None
    if mask is not None:
        m = np.asarray(mask, dtype=np.float32)
        m = _as_chw(m) if m.ndim == 3 else m[None]
        if m.shape[1:] != chw.shape[1:] or m.shape[0] not in (1, chw.shape[0]):
            raise InvalidArgument(f"mask of shape {np.shape(mask)} does not match the array {arr.shape}",
                                  value=np.shape(mask))
        m = np.ascontiguousarray(np.clip(np.broadcast_to(m, chw.shape), 0, 1))
    names = list(band_names) if band_names is not None else (
        ["b1"] if chw.shape[0] == 1 and kind != "class" else [f"b{i + 1}" for i in range(chw.shape[0])])
    if kind == "class" and band_names is None and chw.shape[0] == 1:
        names = ["class"]
    if len(names) != chw.shape[0] or len(set(names)) != len(names) or not all(isinstance(n, str) and n
                                                                               for n in names):
        raise InvalidArgument(f"band_names {names!r:.120} must be {chw.shape[0]} distinct non-empty strings",
                              value=names, allowed=f"{chw.shape[0]} distinct names")
    h = hashlib.sha256()
    h.update(str((chw.dtype.str, chw.shape)).encode())
    h.update(repr((grid.crs.to_wkt() if grid.crs is not None else None, tuple(grid.transform)[:6])).encode())
    h.update(chw.tobytes())
    if m is not None:
        h.update(m.tobytes())
    digest = h.hexdigest()
    with _arrays_lock:
        data = _arrays.get(digest)
        if data is None:
            info = tuple(BandInfo(f"b{i + 1}", chw.dtype.name, grid) for i in range(chw.shape[0]))
            data = Raster(tuple(Band(chw[i], None if m is None else m[i]) for i in range(chw.shape[0])), grid, info)
            _arrays[digest] = data
    node = Node("array", (digest,), tuple(BandInfo(n, chw.dtype.name, grid, kind, classes) for n in names))
    node.held = data
    return node


#: File suffixes read as (possibly georeferenced) rasters through GDAL; other pictures go through Pillow.
_RASTER_SUFFIXES = (".tif", ".tiff")


def _picture_array(img: PIL.Image.Image, mode: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """A Pillow image as an array (H x W or H x W x 3) and its alpha as a 0..1 mask (``None`` if opaque)."""
    try:
        if mode is not None:
            img = img.convert(mode)
        elif img.mode in ("P", "PA"):  # palette indices: show the colours, as W&B does
            img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
        elif img.mode == "1":
            img = img.convert("L")
        arr = np.asarray(img)
    except (ValueError, OSError) as exc:
        raise InvalidArgument(f"image of mode {img.mode!r} cannot be converted{' to ' + repr(mode) if mode else ''}: "
                              f"{exc}", value=mode or img.mode, allowed="a Pillow mode such as 'L', 'RGB', 'RGBA'") \
            from None
    alpha = None
    if img.mode in ("RGBA", "LA"):
        alpha = arr[..., -1].astype(np.float32) / 255.0
        arr = arr[..., :-1] if img.mode == "RGBA" else arr[..., 0]
        if alpha.min() >= 1:
            alpha = None
    return np.ascontiguousarray(arr), alpha


def _open_picture(path: str) -> PIL.Image.Image:
    if not os.path.isfile(path):
        raise ReadError(f"image file {path!r} does not exist or is not a regular file", value=path,
                        allowed="a PNG, JPEG, GIF, BMP, WebP or TIFF file")
    try:
        with PIL.Image.open(path) as img:
            img.load()
            return img
    except (PIL.UnidentifiedImageError, OSError, ValueError) as exc:
        raise ReadError(f"cannot read image file {path!r}: {exc}", value=path,
                        allowed="a PNG, JPEG, GIF, BMP, WebP or TIFF file") from None


def picture_node(data, mode: str | None = None, crs=None, transform=None, band_names=None, mask=None) -> Node:
    """The leaf of a Weights & Biases style picture: a numpy array, a Pillow image or a file path.

    As ``wandb.Image(data_or_path, mode=...)``: a Pillow image (or a file Pillow reads: PNG,
    JPEG, GIF, BMP, WebP) becomes an in-memory array, converted to ``mode`` when given
    (``'L'``, ``'RGB'``); its alpha channel becomes the mask, palette images show their
    colours. A ``.tif``/``.tiff`` path is opened as a raster (:func:`file_node`: lazy,
    georeferenced when the file is). Arrays go to :func:`array_node` (``mode`` converts them
    through Pillow first); an H x W x 4 uint8 array is RGBA, as Pillow and W&B read it: three
    bands and the alpha as the mask (four bands when ``band_names`` or ``mask`` are given, or as
    C x H x W).
    """
    if mode is not None and not isinstance(mode, str):
        raise InvalidArgument(f"mode {mode!r} must be a Pillow mode string such as 'L', 'RGB' or 'RGBA'", value=mode,
                              allowed="a Pillow mode string")
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not isinstance(path, str) or not path or "\x00" in path:
            raise InvalidArgument(f"path {str(path)[:80]!r} is empty or has a NUL byte", value=str(path)[:80])
        if path.lower().endswith(_RASTER_SUFFIXES) and mode is None:
            if crs is not None or transform is not None or band_names is not None or mask is not None:
                raise InvalidArgument("crs, transform, band_names and mask apply to arrays, not to a raster file "
                                      "(it brings its own)", value=path)
            return file_node(path)
        data = _open_picture(path)
    if isinstance(data, PIL.Image.Image):
        arr, alpha = _picture_array(data, mode)
        return array_node(arr, crs, transform, band_names, alpha if mask is None else mask)
    if mode is not None:
        arr = np.asarray(data)
        try:
            img = PIL.Image.fromarray(arr)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"an array of dtype {arr.dtype} and shape {arr.shape} cannot take mode {mode!r} "
                                  f"({exc}); leave mode out", value=mode) from None
        arr, alpha = _picture_array(img, mode)
        return array_node(arr, crs, transform, band_names, alpha if mask is None else mask)
    arr = np.asarray(data)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 4 and arr.shape[0] > 4 and band_names is None \
            and mask is None:
        # H x W x 4 bytes are RGBA to W&B (Pillow reads them so): the colours, and the alpha as the mask
        arr, alpha = _picture_array(PIL.Image.fromarray(arr, "RGBA"), None)
        return array_node(arr, crs, transform, None, alpha)
    return array_node(data, crs, transform, band_names, mask)


def _is_float(value) -> bool:
    """A real number that converts to a float (not a bool; NaN and infinities included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        float(value)
    except OverflowError:  # an integer beyond the float range
        return False
    return True


def constant_node(values) -> Node:
    vals = list(values) if isinstance(values, (list, tuple)) else [values]
    if not vals or not all(_is_float(v) for v in vals):
        shown = repr(values) if len(repr(values)) <= 80 else repr(values)[:77] + "..."
        raise InvalidArgument(f"constant {shown} must be a number or a list of numbers (within the float range)",
                              value=values, allowed="numbers")
    bands = []
    for i, v in enumerate(vals):
        dtype = "int64" if isinstance(v, (int, np.integer)) else "float64"
        if dtype == "int64" and 0 <= v <= 255:
            dtype = "uint8"
        bands.append(BandInfo("constant" if len(vals) == 1 else f"constant_{i}", dtype, None))
    return Node("constant", tuple(float(v) for v in vals), tuple(bands))
