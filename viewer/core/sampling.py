"""Nearest-neighbour placement of raster pixels on a grid, without one GDAL warp per call.

This is the hot path of map tiles. It reproduces what GDAL's warper does for nearest
resampling (as called by ``rasterio.warp.reproject``), so results match it pixel for pixel:

* destination pixel centres ``(col + 0.5, row + 0.5)`` go through the destination
  geotransform, the CRS transformation and the inverse source geotransform;
* GDAL's approximate transformer (error threshold 0.125 source pixels) is used per
  destination row: the first, middle and last points are transformed exactly and the
  row is interpolated linearly between the first and the last; where the middle point
  is off by more than the threshold the row is split in halves, recursively, as GDAL does;
* the kernel picks source pixel ``int(x + 1e-10)`` and drops points outside the source.

One difference remains: GDAL splits a destination into chunks when less than half of it
falls on the source (its "source fill ratio" heuristic), and interpolates over the chunk's
rows; at a source's edge this moves a few pixels by one (under 0.1 % of such a tile). The
read layer uses this module for grids up to ``SAMPLER_MAX_PIXELS`` (map tiles); above, a
single GDAL warp is faster per pixel.

What makes it fast: the CRS transformer is built once per thread and CRS pair, the
index map is computed once per (source grid, destination grid) and shared by every band
that asks, and the source window is read once per file for all its bands (from GDAL's
block cache when warm) and gathered with ``numpy.take``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import Transformer
from rasterio.windows import Window

from .grid import PIXEL_CRS, Grid, center_long, wrap_longitudes

__all__ = ["IndexMap", "index_map", "sample_dataset", "sample_array", "APPROX_ERROR"]

#: GDAL's default error threshold of the approximate transformer (source pixels).
APPROX_ERROR = 0.125
_EPS = 1e-10
_local = threading.local()
_MAX_MAPS = 32
#: Grids larger than this many pixels are sampled in row strips (bounded memory, no caching).
_STRIP_PIXELS = 1 << 20


@dataclass(frozen=True)
class IndexMap:
    """Where each destination pixel reads the source: flat indices into a source window.

    ``flat`` indexes the window ``(row_off, col_off, height, width)`` read from the source;
    ``inside`` is ``None`` when every destination pixel hits the source. ``window`` is
    ``None`` when no destination pixel does.
    """

    flat: np.ndarray | None
    inside: np.ndarray | None
    window: Window | None
    shape: tuple[int, int]


def _transformer(src_crs, dst_crs) -> Transformer:
    cache = getattr(_local, "transformers", None)
    if cache is None:
        cache = _local.transformers = {}
    key = (src_crs, dst_crs)
    t = cache.get(key)
    if t is None:
        t = cache[key] = Transformer.from_crs(dst_crs.to_wkt(), src_crs.to_wkt(), always_xy=True)
    return t


class _LonWrap:
    """A transformer whose longitudes are wrapped around a geographic source's centre, as GDAL's
    warper does (``CENTER_LONG``, :func:`viewer.core.grid.center_long`): a source stored at
    170..190 degrees is found from map pixels at 179 degrees west."""

    def __init__(self, transformer: Transformer, center: float) -> None:
        self.transformer, self.center = transformer, center

    def transform(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self.transformer.transform(x, y)
        return wrap_longitudes(lon, self.center), lat


def _inverse(t: Affine) -> tuple[float, float, float, float, float, float]:
    """GDAL's ``GDALInvGeoTransform`` as (c0, cx, cy, r0, rx, ry): col = c0 + X*cx + Y*cy."""
    if t.b == 0.0 and t.d == 0.0 and t.a != 0.0 and t.e != 0.0:
        return (-t.c / t.a, 1.0 / t.a, 0.0, -t.f / t.e, 0.0, 1.0 / t.e)
    inv = ~t
    return (inv.c, inv.a, inv.b, inv.f, inv.d, inv.e)


def _source_pixels(cols: np.ndarray, rows: np.ndarray, grid: Grid, src_transform: Affine,
                   transformer: Transformer | None) -> tuple[np.ndarray, np.ndarray]:
    """Exact source pixel coordinates of destination pixel centres ``(cols + 0.5, rows + 0.5)``."""
    t = grid.transform
    x, y = cols + 0.5, rows + 0.5
    gx = t.c + x * t.a + y * t.b
    gy = t.f + x * t.d + y * t.e
    if transformer is not None and gx.size:
        gx, gy = transformer.transform(gx, gy)
        gx, gy = np.asarray(gx, np.float64), np.asarray(gy, np.float64)
    c0, cx, cy, r0, rx, ry = _inverse(src_transform)
    return c0 + gx * cx + gy * cy, r0 + gx * rx + gy * ry


class _Rows:
    """GDAL's approximate transformer applied to every destination row at once.

    Segments of rows are processed level by level (GDAL recurses per row): a segment
    whose middle point is within ``APPROX_ERROR`` of the line through its exactly
    transformed end points is interpolated; otherwise it is split in two halves
    (halves of at most 5 points are transformed exactly).
    """

    def __init__(self, grid: Grid, src_transform: Affine, transformer: Transformer | None) -> None:
        self.grid, self.src, self.tr = grid, src_transform, transformer
        self.linear: tuple[np.ndarray, ...] | None = None  # set when every row is one linear segment
        self.px = np.empty((grid.height, grid.width))
        self.py = np.empty((grid.height, grid.width))
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []

    def exact(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _source_pixels(cols.astype(np.float64), rows.astype(np.float64), self.grid, self.src, self.tr)

    def defer_exact(self, rows: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> None:
        """Transform points ``starts .. starts + lens - 1`` of ``rows`` exactly (later, batched)."""
        keep = lens > 0
        if keep.any():
            rows, starts, lens = rows[keep], starts[keep], lens[keep]
            seg = np.repeat(np.arange(len(lens)), lens)
            off = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
            self.pending.append((rows[seg], starts[seg] + off))

    def flush(self) -> None:
        if self.pending:
            rows = np.concatenate([r for r, _ in self.pending])
            cols = np.concatenate([c for _, c in self.pending])
            self.pending = []
            self.px[rows, cols], self.py[rows, cols] = self.exact(rows, cols)

    def run(self) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.grid.height, self.grid.width
        all_rows = np.arange(h)
        if w <= 5:
            self.defer_exact(all_rows, np.zeros(h, np.intp), np.full(h, w))
            self.flush()
            return self.px, self.py
        mid = (w - 1) // 2
        sx, sy = self.exact(np.repeat(all_rows, 3), np.tile(np.array([0, mid, w - 1]), h))
        sx, sy = sx.reshape(h, 3), sy.reshape(h, 3)
        good = np.isfinite(sx).all(1) & np.isfinite(sy).all(1)
        self.defer_exact(all_rows[~good], np.zeros((~good).sum(), np.intp), np.full((~good).sum(), w))
        rows, starts, lens = all_rows[good], np.zeros(good.sum(), np.intp), np.full(good.sum(), w)
        sx, sy = sx[good], sy[good]
        # first level in bulk: most rows are interpolated from their exact first and last points
        dx = (sx[:, 2] - sx[:, 0]) / (w - 1)
        dy = (sy[:, 2] - sy[:, 0]) / (w - 1)
        err = np.abs(sx[:, 0] + dx * mid - sx[:, 1]) + np.abs(sy[:, 0] + dy * mid - sy[:, 1])
        ok = ~(err > APPROX_ERROR)
        if ok.all() and good.all():
            self.linear = (sx[:, 0], dx, sy[:, 0], dy)
            return self.px, self.py
        dist = np.arange(w, dtype=np.float64)
        self.px[rows[ok]] = sx[ok, :1] + dx[ok, None] * dist
        self.py[rows[ok]] = sy[ok, :1] + dy[ok, None] * dist
        rows, starts, lens, sx, sy = rows[~ok], starts[~ok], lens[~ok], sx[~ok], sy[~ok]
        while len(rows):
            rows, starts, lens, sx, sy = self._level(rows, starts, lens, sx, sy)
        self.flush()
        return self.px, self.py

    def _level(self, rows, starts, lens, sx, sy):
        n_mid = (lens - 1) // 2
        span = (lens - 1).astype(np.float64)
        dx = (sx[:, 2] - sx[:, 0]) / span
        dy = (sy[:, 2] - sy[:, 0]) / span
        err = np.abs(sx[:, 0] + dx * n_mid - sx[:, 1]) + np.abs(sy[:, 0] + dy * n_mid - sy[:, 1])
        ok = ~(err > APPROX_ERROR)
        if ok.any():  # linear interpolation from the segment start; rows split alike share a fill
            r, s, ln, x0, y0, ddx, ddy = rows[ok], starts[ok], lens[ok], sx[ok, 0], sy[ok, 0], dx[ok], dy[ok]
            keys = s * (self.grid.width + 1) + ln
            for key in np.unique(keys):
                sel = keys == key
                start, length = int(s[sel][0]), int(ln[sel][0])
                off = np.arange(length, dtype=np.float64)
                rr = r[sel]
                self.px[rr, start:start + length] = x0[sel, None] + ddx[sel, None] * off
                self.py[rr, start:start + length] = y0[sel, None] + ddy[sel, None] * off
        split = ~ok
        if not split.any():
            return (rows[:0],) * 3 + (sx[:0], sy[:0])
        rows, starts, lens, sx, sy, n_mid = rows[split], starts[split], lens[split], sx[split], sy[split], n_mid[split]
        mids, ends = starts + n_mid, starts + lens - 1
        left_len, right_len = n_mid, lens - n_mid
        left_mid, left_end = starts + (n_mid - 1) // 2, starts + left_len - 1
        right_mid = mids + (right_len - 1) // 2
        base_l, base_r = left_len <= 5, right_len <= 5
        # points that are known exactly already: segment start, middle and end
        self.px[rows, starts], self.py[rows, starts] = sx[:, 0], sy[:, 0]
        self.px[rows, mids], self.py[rows, mids] = sx[:, 1], sy[:, 1]
        self.px[rows, ends], self.py[rows, ends] = sx[:, 2], sy[:, 2]
        # small halves: exact interior (left: start+1 .. start+left_len-1; right: mid+1 .. end-1)
        self.defer_exact(rows[base_l], starts[base_l] + 1, left_len[base_l] - 1)
        self.defer_exact(rows[base_r], mids[base_r] + 1, right_len[base_r] - 2)
        # new middle points of the halves that recurse
        lx, ly = self.exact(np.concatenate([rows, rows]), np.concatenate([left_mid, left_end]))
        rx, ry = self.exact(rows, right_mid)
        n = len(rows)
        lmx, lex, lmy, ley = lx[:n], lx[n:], ly[:n], ly[n:]
        fail = ~(np.isfinite(lmx) & np.isfinite(lex) & np.isfinite(rx) & np.isfinite(lmy) & np.isfinite(ley)
                 & np.isfinite(ry))
        if fail.any():  # GDAL: exact interiors where a middle point cannot be transformed
            self.defer_exact(rows[fail], starts[fail] + 1, lens[fail] - 2)
        go_l = ~base_l & ~fail
        go_r = ~base_r & ~fail
        new_rows = np.concatenate([rows[go_l], rows[go_r]])
        new_starts = np.concatenate([starts[go_l], mids[go_r]])
        new_lens = np.concatenate([left_len[go_l], right_len[go_r]])
        new_sx = np.concatenate([np.stack([sx[go_l, 0], lmx[go_l], lex[go_l]], 1),
                                 np.stack([sx[go_r, 1], rx[go_r], sx[go_r, 2]], 1)])
        new_sy = np.concatenate([np.stack([sy[go_l, 0], lmy[go_l], ley[go_l]], 1),
                                 np.stack([sy[go_r, 1], ry[go_r], sy[go_r, 2]], 1)])
        return new_rows, new_starts, new_lens, new_sx, new_sy


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
    return IndexMap(flat, None, Window(c0, r0, ww, r1 - r0 + 1), (h, w))


def _compute(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid) -> IndexMap:
    h, w = grid.height, grid.width
    dst_crs = grid.gdal_crs
    transformer = None if src_crs == dst_crs else _transformer(src_crs, dst_crs)
    center = None if transformer is None else center_long(src_crs, src_transform, src_width, src_height)
    if center is not None:
        transformer = _LonWrap(transformer, center)
    approx = _Rows(grid, src_transform, transformer)
    px, py = approx.run()
    if approx.linear is not None:
        fast = _linear_map(*approx.linear, w, src_width, src_height)
        if fast is not None:
            return fast
        dist = np.arange(w, dtype=np.float64)
        sx0, dx, sy0, dy = approx.linear
        px = sx0[:, None] + dx[:, None] * dist
        py = sy0[:, None] + dy[:, None] * dist
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
    all_inside = bool(inside.all())
    if all_inside:
        c0, c1 = int(cols.min()), int(cols.max())
        r0, r1 = int(rows.min()), int(rows.max())
    else:
        c0, c1 = int(cols[inside].min()), int(cols[inside].max())
        r0, r1 = int(rows[inside].min()), int(rows[inside].max())
        cols[~inside] = c0
        rows[~inside] = r0
    ww = c1 - c0 + 1
    flat = (rows - r0) * ww + (cols - c0)
    return IndexMap(flat, None if all_inside else inside, Window(c0, r0, ww, r1 - r0 + 1), (h, w))


def index_map(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid,
              cache: bool = True) -> IndexMap:
    """The nearest-neighbour index map from a source grid to ``grid`` (cached per thread).

    ``src_crs`` is the GDAL CRS of the source (``PIXEL_CRS`` for pixel coordinates).
    """
    if not cache:
        return _compute(src_transform, src_crs, src_width, src_height, grid)
    maps: OrderedDict | None = getattr(_local, "maps", None)
    if maps is None:
        maps = _local.maps = OrderedDict()
    key = (tuple(src_transform)[:6], src_crs, src_width, src_height, grid)
    m = maps.get(key)
    if m is None:
        m = _compute(src_transform, src_crs, src_width, src_height, grid)
        maps[key] = m
        while len(maps) > _MAX_MAPS:
            maps.popitem(last=False)
    else:
        maps.move_to_end(key)
    return m


def _strips(grid: Grid) -> list[Grid] | None:
    """Row strips of a large grid (rows are independent, so strips give identical results)."""
    step = max(1, _STRIP_PIXELS // grid.width)
    if grid.height <= step:
        return None
    return [grid.window(0, r, grid.width, min(step, grid.height - r)) for r in range(0, grid.height, step)]


def _stack(parts: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple[np.ndarray, np.ndarray | None]:
    values = np.concatenate([v for v, _ in parts])
    if all(m is None for _, m in parts):
        return values, None
    return values, np.concatenate([np.ones(v.shape, np.float32) if m is None else m for v, m in parts])


def sample_dataset(ds, bidxs: tuple[int, ...], grid: Grid,
                   all_valid: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Bands of an open dataset (or overview) on ``grid``: values and float masks (None = valid)."""
    strips = _strips(grid)
    if strips is not None:
        per_strip = [_sample_dataset(ds, bidxs, g, all_valid, False) for g in strips]
        return [_stack([p[i] for p in per_strip]) for i in range(len(bidxs))]
    return _sample_dataset(ds, bidxs, grid, all_valid, True)


def _sample_dataset(ds, bidxs: tuple[int, ...], grid: Grid, all_valid: bool,
                    cache: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    src_crs = ds.crs if ds.crs else PIXEL_CRS
    m = index_map(ds.transform, src_crs, ds.width, ds.height, grid, cache)
    if m.window is None:
        return [(np.zeros(m.shape, ds.dtypes[b - 1]), np.zeros(m.shape, np.float32)) for b in bidxs]
    if all(ds.dtypes[b - 1] == ds.dtypes[bidxs[0] - 1] for b in bidxs):
        block = ds.read(list(bidxs), window=m.window)
        arrays = [block[i] for i in range(len(bidxs))]
    else:
        arrays = [ds.read(b, window=m.window) for b in bidxs]
    out = []
    for i, arr in enumerate(arrays):
        values = arr.reshape(-1).take(m.flat)
        mask = None
        if m.inside is not None:
            values[~m.inside] = 0
            mask = m.inside.astype(np.float32)
        if not all_valid:
            mm = ds.read_masks(bidxs[i], window=m.window).reshape(-1).take(m.flat)
            if m.inside is not None:
                mm[~m.inside] = 0
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
        values[~m.inside] = 0
        out_mask = m.inside.astype(np.float32)
    if mask is not None:
        mm = np.ascontiguousarray(mask[rows, cols]).reshape(-1).take(m.flat)
        out_mask = mm if out_mask is None else mm * out_mask
    return values, out_mask
