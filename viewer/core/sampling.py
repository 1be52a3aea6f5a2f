"""Index maps: where each pixel of a grid reads a source, for nearest placement without a GDAL warp.

Map tiles are placed this way. A map reproduces what GDAL's warper does for nearest
resampling (as called by ``rasterio.warp.reproject``), so results match it pixel for pixel:

* destination pixel centres ``(col + 0.5, row + 0.5)`` go through the destination
  geotransform, the CRS transformation and the inverse source geotransform;
* GDAL's approximate transformer (error threshold 0.125 source pixels) is used per
  destination row (:mod:`viewer.core.approx`): the first, middle and last points are
  transformed exactly and the row is interpolated linearly between the first and the last;
  where the middle point is off by more than the threshold the row is split in halves,
  recursively, as GDAL does;
* the kernel picks source pixel ``int(x + 1e-10)`` and drops points outside the source.

Two maps exist. The tile map (:func:`tile_map`, grids up to ``read.TILE_SAMPLER_PIXELS``)
treats the grid as one piece: where GDAL splits a destination into chunks (less than half of
it on the source, its "source fill ratio" heuristic) or retries an edge pixel with the exact
transformer, a few pixels at a source's edge differ by one from a bare warp (under 0.1 % of
such a tile); tiles keep this long-standing behaviour. The exact map (:func:`exact_map`)
follows GDAL's chunks and edge retries too (:func:`viewer.core.approx.warp_chunks`), so larger
grids are pixel-identical to the GDAL warp they replace.

This module only computes maps (pure geometry: a source grid and a destination grid in, an
:class:`IndexMap` out; the CRS transformer is built once per thread and CRS pair).
:mod:`viewer.core.read` keeps them in one bounded process-wide cache (``named_cache("index
maps")``), shared by every band and layer that asks, and applies them: the source window is
read once per file for all its bands (from GDAL's block cache when warm) and gathered with
``numpy.take``. A warm tile therefore never calls into this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from rasterio.windows import Window

from .approx import APPROX_ERROR, chunk_pixels, row_plan, transformer_for, warp_chunks
from .grid import Grid

__all__ = ["IndexMap", "tile_map", "exact_map", "APPROX_ERROR"]

_EPS = 1e-10


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
    ww, hh = c1 - c0 + 1, r1 - r0 + 1
    # int32 from the start where the window's flat indices and the source's rows and columns fit (every
    # tile): half the memory traffic, and no conversion at the end; (row - r0) * ww + (col - c0) < ww * hh
    index = np.int32 if ww * hh < 2 ** 31 and max(src_width, src_height) < 2 ** 31 else np.intp
    dist = np.arange(w, dtype=np.float64)
    h = len(sx0)
    buf = np.empty((h, w))
    np.multiply(dist, dy[:, None], out=buf)
    buf += (sy0 + _EPS)[:, None]
    flat = buf.astype(index)  # truncation: the coordinates are >= _EPS > 0 here
    flat -= r0
    flat *= ww
    np.multiply(dist, dx[:, None], out=buf)
    buf += (sx0 + _EPS)[:, None]
    cols = buf.astype(index)
    cols -= c0
    flat += cols
    return IndexMap(flat, None, Window(c0, r0, ww, hh), (h, w))


def tile_map(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid) -> IndexMap:
    """The tile map: the grid as one piece, pixels whose centre falls on the source.

    ``src_crs`` is the GDAL CRS of the source (``PIXEL_CRS`` for pixel coordinates).
    """
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
    if plan.linear:
        runs = _from_row_runs(px, py, inside, src_width, src_height)
        if runs is not None:
            return runs
    cols = np.zeros((h, w), np.intp)
    rows = np.zeros((h, w), np.intp)
    np.copyto(cols, px, where=inside, casting="unsafe")
    np.copyto(rows, py, where=inside, casting="unsafe")
    np.minimum(cols, src_width - 1, out=cols)
    np.minimum(rows, src_height - 1, out=rows)
    return _from_indices(cols, rows, inside)


def _from_row_runs(px: np.ndarray, py: np.ndarray, inside: np.ndarray, src_width: int,
                   src_height: int) -> IndexMap | None:
    """The index map of linear rows partly off the source: the map :func:`_from_indices` makes of
    them, without its per-pixel masked copies and reductions (a tile at a scene's edge). Along a
    linear row the coordinates are monotonic, so the pixels on the source are one run and the
    window's extremes are at the runs' ends. ``None`` where int32 indices do not fit."""
    h, w = inside.shape
    rows_on = np.flatnonzero(inside.any(axis=1))
    first = inside[rows_on].argmax(axis=1)
    last = w - 1 - inside[rows_on, ::-1].argmax(axis=1)
    ends_x = np.concatenate([px[rows_on, first], px[rows_on, last]])
    ends_y = np.concatenate([py[rows_on, first], py[rows_on, last]])
    c0, c1 = (min(int(v), src_width - 1) for v in (ends_x.min(), ends_x.max()))  # as the clipped columns
    r0, r1 = (min(int(v), src_height - 1) for v in (ends_y.min(), ends_y.max()))
    ww, hh = c1 - c0 + 1, r1 - r0 + 1
    if ww * hh >= 2 ** 31 or max(src_width, src_height) >= 2 ** 31:
        return None
    with np.errstate(invalid="ignore"):  # off the source: any value (NaN, too large), zeroed below
        cols = px.astype(np.int32)
        flat = py.astype(np.int32)
    np.minimum(cols, src_width - 1, out=cols)
    np.minimum(flat, src_height - 1, out=flat)
    flat -= r0
    flat *= ww
    flat += cols
    flat -= c0
    all_inside = bool(inside.all())  # the fast path refuses a row ending exactly on the far edge
    if not all_inside:
        np.copyto(flat, 0, where=~inside)
    return IndexMap(flat, None if all_inside else inside, Window(c0, r0, ww, hh), (h, w))


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


def exact_map(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid, src_bits: int,
              dst_bits: int) -> IndexMap | None:
    """The exact map of a GDAL nearest warp onto ``grid``: GDAL's chunks, windows and edge retries
    (``None`` where its result is not reproduced). ``src_bits``/``dst_bits`` as
    :func:`viewer.core.approx.warp_chunks`; building one costs a few GDAL warps of the grid."""
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
