"""Big exports, engine-agnostic: plan an output grid in chunks, render one chunk, assemble a COG.

An export larger than the interactive limit of ``computePixels`` (48 MiB) is split into
windows of the output grid (:func:`plan`): GDAL's own chunks of the whole grid across CRSs
(:func:`gdal_windows`), else regular ones (:func:`plan_chunks`); each window is evaluated by the
one evaluator on its sub-grid (:func:`render_chunk`), so a chunk holds exactly the pixels the
whole grid computed in one piece has there; :class:`CogWriter` writes the chunks into a tiled
GeoTIFF with an internal mask, then copies it as a Cloud Optimized GeoTIFF (with overviews)
to the final name in one rename, so a cancelled or failed export leaves nothing under it.

The request a chunk needs (:func:`prepare_big`) is plain JSON data: the graph
(:func:`viewer.core.serialize.to_json`), the output grid and the path of the catalog of the
process that prepared it (never a path from a request), so any process that can import the
viewer renders any chunk: :func:`export_chunks` runs them one after another here, and
:mod:`viewer.jobs.big_export` on a Dask cluster.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from .approx import warp_chunks
from .catalog import get_catalog, set_catalog
from .errors import InvalidArgument, LimitExceeded
from .evaluate import evaluate
from .graph import Node
from .grid import Grid, grid_key
from .image import Image
from .pixels import check_reachable, file_format, resolve_grid
from .serialize import from_json, to_json
from .sources import array_node, get_array

__all__ = ["BigRequest", "prepare_big", "plan_chunks", "plan", "gdal_windows", "render_chunk", "CogWriter",
           "check_output", "export_chunks", "DEFAULT_CHUNK", "MAX_BIG_SIDE", "MAX_BIG_BYTES", "COG_OPTIONS"]

#: Side of a chunk (output pixels); a multiple of the COG's 512-pixel tiles.
DEFAULT_CHUNK = 2048
#: Limits of one big export: pixels per side and uncompressed bytes (about 1 TiB).
MAX_BIG_SIDE = 1_000_000
MAX_BIG_BYTES = 2 ** 40
#: The COG's creation options: DEFLATE at level 1 with the TIFF predictor (2 for integers, 3 for
#: floats): on a 6000² uint16 Landsat grid twice as fast as level 6 without a predictor and half the size.
COG_OPTIONS = {"driver": "COG", "compress": "DEFLATE", "level": 1, "predictor": "YES", "blocksize": 512,
               "num_threads": "ALL_CPUS", "bigtiff": "IF_SAFER"}
_KEYS = {"expression", "grid", "region", "bandIds", "fileFormat", "workloadTag"}
_SUFFIXES = (".tif", ".tiff")
_NEAREST_KINDS = ("class", "bitmask", "mask")


@dataclass(frozen=True)
class BigRequest:
    """A validated big export: what every chunk needs, as JSON-able data (:meth:`to_dict`)."""

    graph: dict
    grid: Grid
    names: tuple[str, ...]
    dtype: str
    overview_resampling: str
    catalog: str
    arrays: dict[str, tuple]
    gdal_windows: tuple[Window, ...] | None = None

    @property
    def nbytes(self) -> int:
        return self.grid.width * self.grid.height * len(self.names) * np.dtype(self.dtype).itemsize

    def to_dict(self) -> dict:
        """The JSON-able form :func:`render_chunk` takes (graph, grid, catalog path and a digest); the
        in-memory arrays the graph names (``Image.from_array``) travel apart, as :attr:`arrays`
        (digest -> values, masks, CRS WKT, transform: plain data a worker registers again)."""
        doc = {"graph": self.graph, "grid": self.grid.to_dict(), "catalog": self.catalog}
        doc["key"] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
        return doc


def prepare_big(params: dict) -> BigRequest:
    """Validate a ``computePixels``-style request for a file export (``expression``, ``grid``,
    ``region``, ``bandIds``; ``fileFormat`` GEO_TIFF). Like ``computePixels`` but without the
    interactive 48 MiB limit: up to :data:`MAX_BIG_SIDE` pixels per side and
    :data:`MAX_BIG_BYTES` bytes."""
    if not isinstance(params, dict):
        raise InvalidArgument(f"params {params!r} must be a dict", value=params)
    unknown = set(params) - _KEYS
    if unknown:
        raise InvalidArgument(f"unknown request keys {sorted(unknown)} for a file export; allowed: {sorted(_KEYS)}",
                              value=sorted(unknown), allowed=sorted(_KEYS))
    fmt = file_format(params.get("fileFormat", "GEO_TIFF"))
    if fmt != "GEO_TIFF":
        raise InvalidArgument(f"fileFormat {params.get('fileFormat')!r} cannot be written as a file export; "
                              "allowed: 'GEO_TIFF' (written as a Cloud Optimized GeoTIFF)",
                              value=params.get("fileFormat"), allowed=["GEO_TIFF"])
    image = params.get("expression")
    if isinstance(image, dict) and "viewerGraph" in image:
        image = from_json(image)
    if not isinstance(image, Image):
        raise InvalidArgument(f"expression {str(image)[:60]!r} must be a viewer.Image", value=str(image)[:60],
                              allowed="Image")
    band_ids = params.get("bandIds")
    if band_ids is not None:
        if isinstance(band_ids, str) or not isinstance(band_ids, (list, tuple)) or not band_ids:
            raise InvalidArgument(f"bandIds {band_ids!r} must be a non-empty list of band names", value=band_ids)
        image = image.select(list(band_ids))
    if len(image.bands) == 0:
        raise InvalidArgument("the image has no bands", value=[])
    grid = resolve_grid(params.get("grid"), params.get("region"), image.bands[0].grid)
    check_reachable(grid, [b.grid.crs for b in image.bands if b.grid is not None])
    dtype = np.result_type(*[np.dtype(b.dtype) for b in image.bands])
    graph = to_json(image)
    arrays = {n["args"][0]: _array_data(n["args"][0]) for n in graph["nodes"].values() if n["op"] == "array"}
    request = BigRequest(graph, grid, tuple(image.bandNames()), dtype.name,
                         "NEAREST" if any(b.kind in _NEAREST_KINDS for b in image.bands) else "AVERAGE",
                         str(get_catalog().path), arrays, gdal_windows(image.node, grid))
    if grid.width > MAX_BIG_SIDE or grid.height > MAX_BIG_SIDE or request.nbytes > MAX_BIG_BYTES:
        raise LimitExceeded(f"requested {grid.width}x{grid.height} pixels x {len(request.names)} bands = "
                            f"{request.nbytes} bytes; a file export allows {MAX_BIG_SIDE} pixels per side and "
                            f"{MAX_BIG_BYTES} bytes", value=(grid.width, grid.height), allowed=MAX_BIG_SIDE)
    return request


# GDAL's own chunks ------------------------------------------------------------------------------
_RADIUS = {"nearest": 0, "bilinear": 1, "bicubic": 2, "cubic": 2}


def _warp_bits(dtype: np.dtype) -> int:
    """Bits GDAL counts per pixel of one band warped in the working type the reader uses
    (:func:`viewer.core.read.read_bands`: the native type where GDAL rounds as a bare warp, else float)."""
    if dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        return dtype.itemsize * 8
    return 64 if dtype.kind in "iu" else 32


def _nodes_in(value: Any) -> list[Node]:
    if isinstance(value, Node):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _nodes_in(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _nodes_in(v)]
    return []


def _reads(node: Node, mode: str, wanted: tuple[int, ...] | None, out: dict) -> bool:
    """Collect what every source band the evaluation reads warps: path -> {(grid, dtype, method, band)};
    ``False`` where it cannot tell (in-memory arrays)."""
    if node.op == "array":
        return False
    if node.op == "source":
        for i in (wanted if wanted is not None else range(len(node.bands))):
            b = node.bands[i]
            if b.grid is None or b.grid.crs is None:
                return False
            method = mode if b.kind == "continuous" else "nearest"
            out.setdefault(node.args[1][i][0], set()).add((b.grid, np.dtype(b.dtype), method, i))
        return True
    if node.op == "select":
        index = tuple(node.args[1])
        return _reads(node.args[0], mode, index if wanted is None else tuple(index[i] for i in wanted), out)
    if node.op == "resample":
        return _reads(node.args[0], node.args[1], wanted, out)
    return all(_reads(child, mode, None, out) for child in _nodes_in(node.args))


def gdal_windows(node: Node, grid: Grid) -> tuple[Window, ...] | None:
    """The chunks GDAL itself warps ``grid`` in (:func:`viewer.core.approx.warp_chunks`), when every
    band the image reads is warped alike: another CRS than the output's, one source grid, one working
    type, one resampling, one band per file, and no overview (output pixels no coarser than the
    source's). A chunk warped alone then equals the same pixels of one warp of the whole grid, which
    arbitrary chunks across CRSs do not (GDAL's transformer and source window follow its chunk).
    ``None`` otherwise (then :func:`plan_chunks` cuts regular chunks)."""
    reads: dict = {}
    if not _reads(node, "nearest", None, reads) or not reads or any(len(v) != 1 for v in reads.values()):
        return None
    kinds = {(grid_key(g), dtype.name, method) for [(g, dtype, method, _)] in reads.values()}
    if len(kinds) != 1:
        return None
    [(src, dtype, method, _)] = next(iter(reads.values()))
    if grid.crs is None or src.crs == grid.crs or method not in _RADIUS:
        return None
    try:
        left, bottom, right, top = grid.bounds_in(src.crs)
    except Exception:  # noqa: BLE001 - PROJ cannot tell: regular chunks
        return None
    if max((right - left) / grid.width, (top - bottom) / grid.height) > min(abs(src.transform.a),
                                                                            abs(src.transform.e)):
        return None  # the reader may pick an overview: its chunks are not these
    bits = _warp_bits(dtype)
    chunks = warp_chunks(src.transform, src.crs, src.width, src.height, grid, _RADIUS[method], bits, bits)
    if chunks is None:
        return None
    return tuple(Window(c.col, c.row, c.width, c.height) for c in sorted(chunks, key=lambda c: (c.row, c.col)))


def plan(request: BigRequest, chunk: int = DEFAULT_CHUNK) -> list[Window]:
    """The windows an export renders: GDAL's own chunks across CRSs where :func:`gdal_windows` tells
    them, else ``chunk``-sized windows (:func:`plan_chunks`)."""
    _check_chunk(chunk)
    return list(request.gdal_windows) if request.gdal_windows else plan_chunks(request.grid, chunk)


def _array_data(digest: str) -> tuple:
    data = get_array(digest)
    masks = np.stack(data.masks) if any(m is not None for m in data.masks) else None  # as the layer store
    crs = data.grid.crs.to_wkt() if data.grid.crs is not None else None
    return np.stack(data.values), masks, crs, tuple(data.grid.transform)[:6]


def _register(digest: str, values: np.ndarray, masks: np.ndarray | None, crs: str | None,
              transform: tuple) -> Node:
    """Register an array shipped by :func:`_array_data` (as the layer store does); its digest is checked.
    It stays registered while the returned node (or a graph's node) holds it."""
    node = array_node(values, crs=crs, transform=list(transform), mask=masks)
    if node.args[0] != digest:
        raise InvalidArgument(f"array {digest[:16]!r} arrived with other content", value=digest[:16])
    return node


def _check_chunk(chunk: Any) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 256 or chunk % 256:
        raise InvalidArgument(f"chunk {chunk!r} is not allowed; allowed: a multiple of 256 pixels (>= 256)",
                              value=chunk, allowed="a multiple of 256")
    return int(chunk)


def plan_chunks(grid: Grid, chunk: int = DEFAULT_CHUNK) -> list[Window]:
    """The windows of ``grid`` in chunks of ``chunk`` x ``chunk`` pixels, row by row (edges smaller)."""
    chunk = _check_chunk(chunk)
    return [Window(c, r, min(chunk, grid.width - c), min(chunk, grid.height - r))
            for r in range(0, grid.height, chunk) for c in range(0, grid.width, chunk)]


_images: dict[str, Image] = {}
_images_lock = threading.Lock()


def _image(request: dict, arrays: dict[str, tuple] | None) -> Image:
    """The request's image, loaded once per process (its catalog made the process's catalog, its
    in-memory arrays registered)."""
    key = request["key"]
    with _images_lock:
        hit = _images.get(key)
        if hit is None:
            # registered while held: until the graph's nodes hold them
            held = [_register(digest, *data) for digest, data in (arrays or {}).items()]
            if str(get_catalog().path) != request["catalog"]:
                set_catalog(request["catalog"])
            # the graph was written by to_json of an image built in a trusted process (prepare_big),
            # not by a request, so its file sources may be opened
            hit = from_json(request["graph"], allow_files=True)
            del held
            if len(_images) >= 16:
                _images.clear()
            _images[key] = hit
        return hit


def _window_tuple(window: Window | tuple) -> tuple[int, int, int, int]:
    if isinstance(window, Window):
        return int(window.col_off), int(window.row_off), int(window.width), int(window.height)
    return tuple(int(v) for v in window)  # type: ignore[return-value]


def render_chunk(request: dict, window: Window | tuple,
                 arrays: dict[str, tuple] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One window of the output grid (``request`` from :meth:`BigRequest.to_dict`, ``arrays`` its
    :attr:`BigRequest.arrays`): (bands x rows x cols values in the export's dtype, masked pixels 0;
    uint8 validity, 255 where any band is valid, or ``None`` when every pixel is)."""
    col, row, width, height = _window_tuple(window)
    grid = resolve_grid(request["grid"], None, None).window(col, row, width, height)
    raster = evaluate(_image(request, arrays).node, grid)
    values = raster.raw()
    dtype = np.result_type(*[v.dtype for v in values])
    valid = None
    for m in raster.masks:
        if m is None:
            valid = None
            break
        valid = (m > 0) if valid is None else valid | (m > 0)
    else:
        valid = None if valid is None or valid.all() else valid.astype(np.uint8) * 255
    return np.stack([v.astype(dtype, copy=False) for v in values]), valid


def check_output(path: Any) -> Path:
    """The output path of a file export: a ``.tif``/``.tiff`` file in an existing, writable folder."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InvalidArgument(f"output path {path!r} must be a file path", value=path, allowed="a .tif file path")
    out = Path(path).expanduser()
    if out.suffix.lower() not in _SUFFIXES:
        raise InvalidArgument(f"output path {str(out)!r} must end in .tif or .tiff (a Cloud Optimized GeoTIFF)",
                              value=str(out), allowed=list(_SUFFIXES))
    if out.is_dir():
        raise InvalidArgument(f"output path {str(out)!r} is a folder; allowed: a file path", value=str(out),
                              allowed="a file path")
    folder = out.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InvalidArgument(f"output folder {str(folder)!r} of {str(out)!r} does not exist or is not writable",
                              value=str(out), allowed="a path in an existing, writable folder")
    return out.resolve()


class CogWriter:
    """Chunks -> a tiled GeoTIFF with an internal mask (a hidden temporary file next to ``path``)
    -> :meth:`finish`: a COG with overviews renamed to ``path``; :meth:`abort` removes the temporaries."""

    def __init__(self, request: BigRequest, path: str | os.PathLike, chunk: int = DEFAULT_CHUNK) -> None:
        self.path = check_output(path)
        self.request = request
        tag = uuid.uuid4().hex[:12]
        self._tmp = self.path.with_name(f".{self.path.name}.{tag}.chunks.tif")
        self._cog = self.path.with_name(f".{self.path.name}.{tag}.cog.tif")
        grid = request.grid
        block = 512 if chunk % 512 == 0 else 256
        profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": len(request.names),
                   "dtype": request.dtype, "transform": grid.transform, "tiled": True, "blockxsize": block,
                   "blockysize": block, "compress": "ZSTD", "zstd_level": 1, "bigtiff": "IF_SAFER"}
        if grid.crs is not None:
            profile["crs"] = grid.crs
        with rasterio.Env(GDAL_TIF_INTERNAL_MASK=True):
            self._dst = rasterio.open(self._tmp, "w", **profile)
        for i, name in enumerate(request.names, start=1):
            self._dst.set_band_description(i, name)
        self._unmasked: list[Window] = []  # windows written before the first masked pixel
        self._masked = False

    def write(self, window: Window | tuple, values: np.ndarray, valid: np.ndarray | None) -> None:
        """Write one chunk (from :func:`render_chunk`) at its window."""
        window = Window(*_window_tuple(window))
        self._dst.write(values, window=window)
        if valid is None and not self._masked:
            self._unmasked.append(window)
            return
        if not self._masked:  # the first masked chunk: the mask band appears; mark earlier chunks valid
            self._masked = True
            for w in self._unmasked:
                self._write_mask(w, None)
            self._unmasked = []
        self._write_mask(window, valid)

    def _write_mask(self, window: Window, valid: np.ndarray | None) -> None:
        mask = np.full((int(window.height), int(window.width)), 255, np.uint8) if valid is None else valid
        with rasterio.Env(GDAL_TIF_INTERNAL_MASK=True):
            self._dst.write_mask(mask, window=window)

    def finish(self) -> Path:
        """Close the chunks' file, copy it as a COG with overviews and rename that to the output path."""
        self._dst.close()
        try:
            rasterio.shutil.copy(self._tmp, self._cog, **COG_OPTIONS,
                                 overview_resampling=self.request.overview_resampling)
            os.replace(self._cog, self.path)
        except BaseException:
            self.abort()
            raise
        self._cleanup()
        return self.path

    def abort(self) -> None:
        """Stop: remove the temporary files (nothing is left under the output name)."""
        if not self._dst.closed:
            self._dst.close()
        self._cleanup()
        self._cog.unlink(missing_ok=True)

    def _cleanup(self) -> None:
        self._tmp.unlink(missing_ok=True)
        Path(f"{self._tmp}.aux.xml").unlink(missing_ok=True)


def export_chunks(request: BigRequest, path: str | os.PathLike, chunk: int = DEFAULT_CHUNK,
                  on_chunk: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None) -> Path | None:
    """The export in this process, one chunk after another (no Dask): the COG's path, or ``None``
    when ``cancelled()`` turned true (then no file is left). ``on_chunk(done, total)`` reports progress."""
    windows = plan(request, chunk)
    writer = CogWriter(request, path, chunk)
    doc = request.to_dict()
    try:
        for i, window in enumerate(windows, start=1):
            if cancelled is not None and cancelled():
                writer.abort()
                return None
            writer.write(window, *render_chunk(doc, window, request.arrays))
            if on_chunk is not None:
                on_chunk(i, len(windows))
    except BaseException:
        writer.abort()
        raise
    return writer.finish()
