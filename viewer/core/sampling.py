"""Nearest-neighbour placement of raster pixels on a grid, without one GDAL warp per call.

This is the hot path of map tiles. It reproduces what GDAL's warper does for nearest
resampling (as called by ``rasterio.warp.reproject``), so results match it pixel for pixel:

* destination pixel centres ``(col + 0.5, row + 0.5)`` go through the destination
  geotransform, the CRS transformation and the inverse source geotransform;
* GDAL's approximate transformer (error threshold 0.125 source pixels) is used per
  destination row (:mod:`viewer.core.approx`): the first, middle and last points are
  transformed exactly and the row is interpolated linearly between the first and the last;
  where the middle point is off by more than the threshold the row is split in halves,
  recursively, as GDAL does;
* the kernel picks source pixel ``int(x + 1e-10)`` and drops points outside the source.

Two maps exist. The tile map (:func:`index_map`, grids up to ``read.TILE_SAMPLER_PIXELS``)
treats the grid as one piece: where GDAL splits a destination into chunks (less than half of
it on the source, its "source fill ratio" heuristic) or retries an edge pixel with the exact
transformer, a few pixels at a source's edge differ by one from a bare warp (under 0.1 % of
such a tile); tiles keep this long-standing behaviour. The exact map (:func:`gdal_index_map`)
follows GDAL's chunks and edge retries too (:func:`viewer.core.approx.warp_chunks`), so larger
grids are pixel-identical to the GDAL warp they replace.

What makes it fast: the CRS transformer is built once per thread and CRS pair, index maps
are kept in one bounded process-wide cache (``named_cache("index maps")``, sized for the tiles
of several views) and shared by every band and layer that asks, and the source window is read
once per file for all its bands (from GDAL's block cache when warm) and gathered with
``numpy.take``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from rasterio.windows import Window

from .approx import APPROX_ERROR, chunk_pixels, row_plan, transformer_for, warp_chunks
from .cache import named_cache
from .grid import PIXEL_CRS, Grid
from .raster import Written

__all__ = ["IndexMap", "index_map", "gdal_index_map", "sample_dataset", "sample_array", "grid_key", "APPROX_ERROR",
           "MAP_CACHE_ITEMS", "MAP_CACHE_BYTES"]

_EPS = 1e-10
#: Index maps kept (process-wide, LRU): the tiles of several views (a 1920 x 1080 view with its
#: border ring asks for about 60 tiles per source grid; a 256 x 256 map takes 256 KiB), bounded in bytes.
MAP_CACHE_ITEMS = 1024
MAP_CACHE_BYTES = 128 * 1024 * 1024
#: Grids larger than this many pixels are sampled in row strips (bounded memory, no caching).
_STRIP_PIXELS = 1 << 20


@dataclass(frozen=True, eq=False)
class IndexMap:
    """Where each destination pixel reads the source: flat indices into a source window.

    ``flat`` indexes the window ``(row_off, col_off, height, width)`` read from the source;
    ``inside`` is ``None`` when every destination pixel hits the source. ``window`` is
    ``None`` when no destination pixel does. ``outside`` (flat indices of the pixels off the
    source) and ``mask`` (``inside`` as a read-only float32 mask) are derived once per map.
    """

    flat: np.ndarray | None
    inside: np.ndarray | None
    window: Window | None
    shape: tuple[int, int]
    outside: np.ndarray | None = field(init=False, repr=False)
    mask: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for a in (self.flat, self.inside):  # shared by every caller of the cache: never written
            if a is not None:
                a.setflags(write=False)
        if self.inside is not None:
            outside = np.flatnonzero(~self.inside).astype(np.int32)
            mask = self.inside.astype(np.float32)
            mask.setflags(write=False)
            outside.setflags(write=False)
        else:
            outside, mask = None, None
        object.__setattr__(self, "outside", outside)
        object.__setattr__(self, "mask", mask)

    @property
    def nbytes(self) -> int:
        arrays = (self.flat, self.inside, self.outside, self.mask)
        return sum(a.nbytes for a in arrays if a is not None) + 200


_maps = named_cache("index maps", MAP_CACHE_ITEMS, MAP_CACHE_BYTES, sizeof=lambda m: m.nbytes)
#: Grids asked for once (the exact map is built when the same grid comes again).
_asked = named_cache("index map requests", 4096)


def _linear_map(sx0: np.ndarray, dx: np.ndarray, sy0: np.ndarray, dy: np.ndarray, w: int, src_width: int,
                src_height: int) -> IndexMap | None:
    """Index map when every row is linear and every pixel falls inside the source, else None.

    Along a linear row the extremes are at its ends, so coverage and the window follow
    from the first and last pixel of each row without testing every pixel.
    """
    xa, xb = sx0 + _EPS, sx0 + dx * (w - 1) + _EPS
    ya, yb = sy0 + _EPS, sy0 + dy * (w - 1) + _EPS
    lo_x, hi_x = np.minimum(xa, xb), np.maximum(xa, xb)
    lo_y, hi_y = np.minimum(ya, yb), np.maximum(ya, yb)
    if not (lo_x.min() >= _EPS and lo_y.min() >= _EPS and hi_x.max() < src_width and hi_y.max() < src_height):
        return None
    c0, c1 = int(lo_x.min()), int(hi_x.max())
    r0, r1 = int(lo_y.min()), int(hi_y.max())
    ww = c1 - c0 + 1
    dist = np.arange(w, dtype=np.float64)
    h = len(sx0)
    buf = np.empty((h, w))
    np.multiply(dist, dy[:, None], out=buf)
    buf += (sy0 + _EPS)[:, None]
    flat = buf.astype(np.intp)
    flat -= r0
    flat *= ww
    np.multiply(dist, dx[:, None], out=buf)
    buf += (sx0 + _EPS)[:, None]
    cols = buf.astype(np.intp)
    flat += cols
    flat -= c0
    if ww * (r1 - r0 + 1) < 2 ** 31:
        flat = flat.astype(np.int32)
    return IndexMap(flat, None, Window(c0, r0, ww, r1 - r0 + 1), (h, w))


def _compute(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid) -> IndexMap:
    """The tile map: the grid as one piece, pixels whose centre falls on the source."""
    h, w = grid.height, grid.width
    transformer = transformer_for(src_crs, grid.gdal_crs, src_transform, src_width, src_height)
    plan = row_plan(grid, src_transform, transformer)
    if plan.linear:
        fast = _linear_map(plan.x0, plan.dx, plan.y0, plan.dy, w, src_width, src_height)
        if fast is not None:
            return fast
        dist = np.arange(w, dtype=np.float64)
        px = plan.x0[:, None] + plan.dx[:, None] * dist
        py = plan.y0[:, None] + plan.dy[:, None] * dist
    else:
        px, py = plan.fill()
    px += _EPS
    py += _EPS
    with np.errstate(invalid="ignore"):
        inside = (px >= _EPS) & (py >= _EPS) & (px <= src_width) & (py <= src_height)
    if not inside.any():
        return IndexMap(None, inside, None, (h, w))
    cols = np.zeros((h, w), np.intp)
    rows = np.zeros((h, w), np.intp)
    np.copyto(cols, px, where=inside, casting="unsafe")
    np.copyto(rows, py, where=inside, casting="unsafe")
    np.minimum(cols, src_width - 1, out=cols)
    np.minimum(rows, src_height - 1, out=rows)
    return _from_indices(cols, rows, inside)


def _from_indices(cols: np.ndarray, rows: np.ndarray, inside: np.ndarray) -> IndexMap:
    """An index map from absolute source columns and rows of the pixels ``inside`` (the others get
    flat index 0, the window's first pixel)."""
    h, w = inside.shape
    all_inside = bool(inside.all())
    where = True if all_inside else inside
    big = np.iinfo(np.intp).max
    c0, c1 = int(cols.min(where=where, initial=big)), int(cols.max(where=where, initial=-1))
    r0, r1 = int(rows.min(where=where, initial=big)), int(rows.max(where=where, initial=-1))
    ww = c1 - c0 + 1
    flat = rows - r0
    flat *= ww
    flat += cols
    flat -= c0
    if not all_inside:
        np.copyto(flat, 0, where=~inside)
    if ww * (r1 - r0 + 1) < 2 ** 31:  # half the memory in the cache; take() converts (about 10 us a tile)
        flat = flat.astype(np.int32)
    return IndexMap(flat, None if all_inside else inside, Window(c0, r0, ww, r1 - r0 + 1), (h, w))


def _compute_gdal(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid, src_bits: int,
                  dst_bits: int) -> IndexMap | None:
    """The exact map: GDAL's chunks, windows and edge retries (``None`` where not reproduced)."""
    chunks = warp_chunks(src_transform, src_crs, src_width, src_height, grid, 0, src_bits, dst_bits)
    if chunks is None:
        return None
    transformer = transformer_for(src_crs, grid.gdal_crs, src_transform, src_width, src_height)
    h, w = grid.height, grid.width
    cols = np.zeros((h, w), np.intp)
    rows = np.zeros((h, w), np.intp)
    inside = np.zeros((h, w), bool)
    for c in chunks:
        if c.src_width == 0 or c.src_height == 0:
            continue
        plan = row_plan(grid, src_transform, transformer, (c.col, c.row, c.width, c.height))
        if not plan.finite():
            return None
        cc, rr, ok = chunk_pixels(plan, c, grid, src_transform, transformer)
        cols[c.row:c.row + c.height, c.col:c.col + c.width] = cc
        rows[c.row:c.row + c.height, c.col:c.col + c.width] = rr
        inside[c.row:c.row + c.height, c.col:c.col + c.width] = ok
    if not inside.any():
        return IndexMap(None, inside, None, (h, w))
    return _from_indices(cols, rows, inside)


_crs_tokens: dict[int, tuple] = {}


def _crs_token(crs) -> str | None:
    """A CRS as its WKT, computed once per CRS object (hashing a rasterio CRS exports its WKT each
    time); the object is kept with it, so its id cannot be reused while cached."""
    if crs is None:
        return None
    hit = _crs_tokens.get(id(crs))
    if hit is None or hit[0] is not crs:
        if len(_crs_tokens) > 1024:
            _crs_tokens.clear()
        hit = _crs_tokens[id(crs)] = (crs, crs.to_wkt())
    return hit[1]


def grid_key(grid: Grid) -> tuple:
    """A cheap hashable key of a grid (equal grids give equal keys)."""
    return (tuple(grid.transform)[:6], _crs_token(grid.crs), grid.width, grid.height)


def _key(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid) -> tuple:
    return (tuple(src_transform)[:6], _crs_token(src_crs), src_width, src_height) + grid_key(grid)


def index_map(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid,
              cache: bool = True) -> IndexMap:
    """The tile index map from a source grid to ``grid`` (kept in the ``index maps`` cache).

    ``src_crs`` is the GDAL CRS of the source (``PIXEL_CRS`` for pixel coordinates).
    """
    if not cache:
        return _compute(src_transform, src_crs, src_width, src_height, grid)
    key = ("tile",) + _key(src_transform, src_crs, src_width, src_height, grid)
    m = _maps.get(key)
    if m is None:
        m = _compute(src_transform, src_crs, src_width, src_height, grid)
        _maps.put(key, m)
    return m


def gdal_index_map(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid, src_bits: int,
                   dst_bits: int, build: bool = True) -> IndexMap | None:
    """The exact index map of a GDAL nearest warp onto ``grid`` (cached), or ``None`` where GDAL's
    result is not reproduced. ``src_bits``/``dst_bits`` as :func:`viewer.core.approx.warp_chunks`.

    With ``build=False`` a map is only built for a grid asked for before (and ``None`` returned
    the first time): building one costs a few GDAL warps of the grid, using it a quarter of one.
    """
    key = ("gdal", src_bits, dst_bits) + _key(src_transform, src_crs, src_width, src_height, grid)
    m = _maps.get(key)
    if m is None:
        if not build and _asked.get(key) is None:
            _asked.put(key, True)
            return None
        m = _compute_gdal(src_transform, src_crs, src_width, src_height, grid, src_bits, dst_bits)
        if m is None:
            return None
        _maps.put(key, m)
    return m


def _strips(grid: Grid) -> list[Grid] | None:
    """Row strips of a large grid (rows are independent, so strips give identical results)."""
    step = max(1, _STRIP_PIXELS // grid.width)
    if grid.height <= step:
        return None
    return [grid.window(0, r, grid.width, min(step, grid.height - r)) for r in range(0, grid.height, step)]


def _stack(parts: list[tuple[np.ndarray, np.ndarray | Written | None]]) -> tuple[np.ndarray, np.ndarray | None]:
    parts = [(v, m() if isinstance(m, Written) else m) for v, m in parts]
    values = np.concatenate([v for v, _ in parts])
    if all(m is None for _, m in parts):
        return values, None
    return values, np.concatenate([np.ones(v.shape, np.float32) if m is None else m for v, m in parts])


def sample_dataset(ds, bidxs: tuple[int, ...], grid: Grid, all_valid: bool,
                   exact_bits: tuple[int, int] | None = None,
                   build: bool = True) -> list[tuple[np.ndarray, np.ndarray | None]] | None:
    """Bands of an open dataset (or overview) on ``grid``: values and float masks (None = valid).

    With ``exact_bits`` (GDAL's source and destination bits per pixel, see
    :func:`viewer.core.approx.warp_chunks`) the exact map is used, and ``None`` returned where it
    does not reproduce GDAL's warp (or, with ``build=False``, where it is not worth building yet:
    see :func:`gdal_index_map`).
    """
    src_crs = ds.crs if ds.crs else PIXEL_CRS
    if exact_bits is not None:
        m = gdal_index_map(ds.transform, src_crs, ds.width, ds.height, grid, *exact_bits, build=build)
        return None if m is None else _gather_dataset(ds, bidxs, m, all_valid)
    strips = _strips(grid)
    if strips is not None:
        per_strip = [_gather_dataset(ds, bidxs, index_map(ds.transform, src_crs, ds.width, ds.height, g, False),
                                     all_valid) for g in strips]
        return [_stack([p[i] for p in per_strip]) for i in range(len(bidxs))]
    return _gather_dataset(ds, bidxs, index_map(ds.transform, src_crs, ds.width, ds.height, grid), all_valid)


def _gather_dataset(ds, bidxs: tuple[int, ...], m: IndexMap,
                    all_valid: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    if m.window is None:
        return [(np.zeros(m.shape, ds.dtypes[b - 1]), np.zeros(m.shape, np.float32)) for b in bidxs]
    if len(bidxs) == 1:
        arrays = [ds.read(bidxs[0], window=m.window)]
    elif all(ds.dtypes[b - 1] == ds.dtypes[bidxs[0] - 1] for b in bidxs):
        block = ds.read(list(bidxs), window=m.window)
        arrays = [block[i] for i in range(len(bidxs))]
    else:
        arrays = [ds.read(b, window=m.window) for b in bidxs]
    outside = m.outside
    out = []
    for i, arr in enumerate(arrays):
        values = arr.reshape(-1).take(m.flat)
        mask = None
        if outside is not None:
            values.reshape(-1)[outside] = 0
            mask = Written(m.mask)  # values are 0 where it is 0
        if not all_valid:
            mm = ds.read_masks(bidxs[i], window=m.window).reshape(-1).take(m.flat)
            if outside is not None:
                mm.reshape(-1)[outside] = 0
            if mm.min() < 255:
                mask = np.multiply(mm, np.float32(1 / 255.0), dtype=np.float32)
        out.append((values, mask))
    return out


def sample_array(data: np.ndarray, mask: np.ndarray | None, src: Grid,
                 grid: Grid) -> tuple[np.ndarray, np.ndarray | None]:
    """An in-memory 2-D band (and its float mask) on ``grid``."""
    strips = _strips(grid)
    if strips is not None:
        return _stack([_sample_array(data, mask, src, g, False) for g in strips])
    return _sample_array(data, mask, src, grid, True)


def _sample_array(data: np.ndarray, mask: np.ndarray | None, src: Grid, grid: Grid,
                  cache: bool) -> tuple[np.ndarray, np.ndarray | None]:
    m = index_map(src.transform, src.gdal_crs, src.width, src.height, grid, cache)
    if m.window is None:
        return np.zeros(m.shape, data.dtype), np.zeros(m.shape, np.float32)
    win = m.window
    r0, c0 = int(win.row_off), int(win.col_off)
    rows, cols = slice(r0, r0 + int(win.height)), slice(c0, c0 + int(win.width))
    values = np.ascontiguousarray(data[rows, cols]).reshape(-1).take(m.flat)
    out_mask = None
    if m.inside is not None:
        values.reshape(-1)[m.outside] = 0
        out_mask = m.mask
    if mask is not None:
        mm = np.ascontiguousarray(mask[rows, cols]).reshape(-1).take(m.flat)
        out_mask = mm if out_mask is None else mm * out_mask
    return values, out_mask
