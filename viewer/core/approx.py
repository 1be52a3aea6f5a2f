"""Where GDAL's warper samples: its approximate transformer and its chunking, reproduced exactly.

``rasterio.warp.reproject`` runs GDAL's ``GDALWarpOperation::ChunkAndWarpImage``. This module
reproduces, for a destination grid and a source raster, which source pixel coordinate GDAL
uses for every destination pixel and which destination pixels it writes, without warping:

* the destination is split into chunks as ``CollectChunkListInternal`` does: a chunk whose
  buffers exceed the warp memory limit (64 MiB) or whose source window is less than half
  filled (``ComputeSourceWindow``'s fill ratio, 21 points per edge) is halved along its longer
  side, recursively; each chunk has its own source window;
* within a chunk, each row goes through the approximate transformer (error threshold 0.125
  source pixels): the first, middle and last points are transformed exactly and the row is
  interpolated between the first and the last, or split in halves where the middle point is
  off by more than the threshold (halves of at most 5 points are transformed exactly);
* a pixel is written when its source coordinate lies in the chunk's source window
  (``GWKCheckAndComputeSrcOffsets``); where the interpolated coordinate is just outside,
  GDAL transforms that pixel exactly once more and uses the exact coordinate.

:func:`row_plan` gives the approximated coordinates of a grid as linear pieces of rows plus
exactly transformed points (cheap: a few exact transforms per row); :func:`warp_chunks` the
chunk list; :func:`valid_mask` which pixels a warp of an all-valid source writes, computed
from the pieces as intervals (so a warp needs no alpha band to tell written pixels apart);
:func:`chunk_pixels` the source coordinates GDAL samples with nearest resampling. Where this
emulation cannot vouch for GDAL's result (transform failures, a pole inside the grid), the
functions return ``None`` and callers keep GDAL's own answer.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import Transformer
from pyproj.exceptions import ProjError

from .cache import memoized
from .grid import Grid, center_long, crs_token, same_crs, wrap_longitudes

__all__ = ["APPROX_ERROR", "WARP_MEMORY_LIMIT", "Plan", "Chunk", "transformer_for", "source_bounds", "source_pixels",
           "row_plan",
           "warp_chunks", "likely_reproduced", "valid_mask", "chunks_mask", "chunk_pixels"]

#: GDAL's default error threshold of the approximate transformer (source pixels).
APPROX_ERROR = 0.125
#: GDAL's default warp memory limit (bytes), which decides how a warp is chunked.
WARP_MEMORY_LIMIT = 64 * 1024 * 1024
#: GDAL's slack when it truncates a source coordinate to a pixel index.
EPS = 1e-10
_local = threading.local()


# transforms ------------------------------------------------------------------------------------
class _LonWrap:
    """A transformer whose longitudes are wrapped around a geographic source's centre, as GDAL's
    warper does (``CENTER_LONG``, :func:`viewer.core.grid.center_long`): a source stored at
    170..190 degrees is found from map pixels at 179 degrees west."""

    def __init__(self, transformer: Transformer, center: float) -> None:
        self.transformer, self.center = transformer, center

    def transform(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self.transformer.transform(x, y)
        return wrap_longitudes(lon, self.center), lat


def _pyproj(src_crs, dst_crs) -> Transformer:
    cache = getattr(_local, "transformers", None)
    if cache is None:
        cache = _local.transformers = {}
    key = (crs_token(src_crs), crs_token(dst_crs))  # WKTs: hashing a rasterio CRS exports its WKT each time
    t = cache.get(key)
    if t is None:
        t = cache[key] = Transformer.from_crs(key[1], key[0], always_xy=True)
    return t


def transformer_for(src_crs, dst_crs, src_transform: Affine, src_width: int, src_height: int):
    """Destination -> source CRS transformer (per thread; ``None`` when both CRSs are the same),
    longitudes wrapped as GDAL does for a geographic source across 180 degrees."""
    if same_crs(src_crs, dst_crs):
        return None
    t = _pyproj(src_crs, dst_crs)
    center = center_long(src_crs, src_transform, src_width, src_height)
    return t if center is None else _LonWrap(t, center)


def source_bounds(grid: Grid, src_crs) -> tuple[float, float, float, float] | None:
    """The grid's bounds in the source CRS through the thread's transformer of :func:`transformer_for`
    (PROJ's ``proj_trans_bounds``, 21 points per edge: GDAL's ``OCTTransformBounds`` algorithm, without
    building a GDAL transformation per call); ``None`` where PROJ gives no finite box. A geographic box
    across the antimeridian has ``right`` above 180, as :meth:`Grid.bounds_in`."""
    if grid.crs is None or src_crs is None or same_crs(src_crs, grid.crs):
        return grid.bounds
    return _transformed_bounds(grid, src_crs)


# the bands of a layer in several files share a tile's bounds
@memoized("grid bounds in a source CRS", 4096, key=lambda grid, src_crs: (grid.key, crs_token(src_crs)))
def _transformed_bounds(grid: Grid, src_crs) -> tuple[float, float, float, float] | None:
    try:
        left, bottom, right, top = _pyproj(src_crs, grid.crs).transform_bounds(*grid.bounds, densify_pts=21)
    except ProjError:
        return None
    if not all(math.isfinite(v) for v in (left, bottom, right, top)):
        return None
    if src_crs.is_geographic and left > right:  # PROJ's form of a box across the antimeridian
        right += 360.0
    return left, bottom, right, top


def _inverse(t: Affine) -> tuple[float, float, float, float, float, float]:
    """GDAL's ``GDALInvGeoTransform`` as (c0, cx, cy, r0, rx, ry): col = c0 + X*cx + Y*cy."""
    if t.b == 0.0 and t.d == 0.0 and t.a != 0.0 and t.e != 0.0:
        return (-t.c / t.a, 1.0 / t.a, 0.0, -t.f / t.e, 0.0, 1.0 / t.e)
    inv = ~t
    return (inv.c, inv.a, inv.b, inv.f, inv.d, inv.e)


def _to_source(x: np.ndarray, y: np.ndarray, grid: Grid, src_transform: Affine,
               transformer) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel coordinates of destination pixel coordinates ``(x, y)`` (exact transform)."""
    t = grid.transform
    gx = t.c + x * t.a + y * t.b
    gy = t.f + x * t.d + y * t.e
    if transformer is not None and gx.size:
        gx, gy = transformer.transform(gx, gy)
        gx, gy = np.asarray(gx, np.float64), np.asarray(gy, np.float64)
    c0, cx, cy, r0, rx, ry = _inverse(src_transform)
    return c0 + gx * cx + gy * cy, r0 + gx * rx + gy * ry


def source_pixels(cols: np.ndarray, rows: np.ndarray, grid: Grid, src_transform: Affine,
                  transformer) -> tuple[np.ndarray, np.ndarray]:
    """Exact source pixel coordinates of destination pixel centres ``(cols + 0.5, rows + 0.5)``."""
    return _to_source(cols + 0.5, rows + 0.5, grid, src_transform, transformer)


# the approximate transformer, row by row --------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """GDAL's approximated source coordinates of every pixel centre of a grid.

    Linear piece ``i`` covers row ``rows[i]``, columns ``starts[i] .. starts[i] + lens[i] - 1``;
    its ``k``-th pixel is at source pixel ``(x0[i] + dx[i] * k, y0[i] + dy[i] * k)`` (GDAL's
    interpolation, bit for bit). The pixels of no piece are transformed exactly: ``exact`` holds
    their rows, columns and source coordinates. Pieces and exact pixels partition the grid.
    """

    shape: tuple[int, int]
    rows: np.ndarray
    starts: np.ndarray
    lens: np.ndarray
    x0: np.ndarray
    dx: np.ndarray
    y0: np.ndarray
    dy: np.ndarray
    exact: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

    @property
    def linear(self) -> bool:
        """Is every row one linear piece?"""
        return len(self.exact[0]) == 0 and len(self.rows) == self.shape[0] and bool(
            (self.lens == self.shape[1]).all())

    def finite(self) -> bool:
        return bool(np.isfinite(self.x0).all() and np.isfinite(self.dx).all() and np.isfinite(self.y0).all()
                    and np.isfinite(self.dy).all() and np.isfinite(self.exact[2]).all()
                    and np.isfinite(self.exact[3]).all())

    def fill(self) -> tuple[np.ndarray, np.ndarray]:
        """The coordinates as two H x W float64 arrays (column, row in source pixels)."""
        h, w = self.shape
        px, py = np.empty((h, w)), np.empty((h, w))
        keys = self.starts * (w + 1) + self.lens
        full = self.lens == w
        if full.all():
            groups = [full] if len(keys) else []
        else:
            groups = [keys == k for k in np.unique(keys)]
        for sel in groups:
            start, length = int(self.starts[sel][0]), int(self.lens[sel][0])
            off = np.arange(length, dtype=np.float64)
            rr = self.rows[sel]
            px[rr, start:start + length] = self.x0[sel, None] + self.dx[sel, None] * off
            py[rr, start:start + length] = self.y0[sel, None] + self.dy[sel, None] * off
        er, ec, ex, ey = self.exact
        px[er, ec], py[er, ec] = ex, ey
        return px, py


def _expand(rows: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel of the ranges ``starts .. starts + lens - 1`` of ``rows`` as (rows, cols)."""
    keep = lens > 0
    rows, starts, lens = rows[keep], starts[keep], lens[keep]
    seg = np.repeat(np.arange(len(lens)), lens)
    off = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    return rows[seg], starts[seg] + off


class _Rows:
    """GDAL's approximate transformer applied to every row of a grid at once.

    Segments of rows are processed level by level (GDAL recurses per row): a segment whose
    middle point is within ``APPROX_ERROR`` of the line through its exactly transformed end
    points becomes a linear piece; otherwise it is split in two halves (halves of at most 5
    points, rows with a point that cannot be transformed and segments whose new middle points
    cannot be transformed are transformed exactly).
    """

    def __init__(self, grid: Grid, src_transform: Affine, transformer, window: tuple[int, int, int, int]) -> None:
        self.grid, self.src, self.tr = grid, src_transform, transformer
        self.col, self.row, self.width, self.height = window
        self.pieces: list[tuple[np.ndarray, ...]] = []
        self.exacts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def exact(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact transform of window pixels (GDAL transforms the whole destination's pixel coordinates)."""
        return source_pixels((cols + self.col).astype(np.float64), (rows + self.row).astype(np.float64), self.grid,
                             self.src, self.tr)

    def piece(self, rows, starts, lens, x0, dx, y0, dy) -> None:
        if len(rows):
            self.pieces.append((rows, starts, lens, x0, dx, y0, dy))

    def run(self) -> Plan:
        h, w = self.height, self.width
        all_rows = np.arange(h)
        zeros, widths = np.zeros(h, np.intp), np.full(h, w, np.intp)
        if w <= 5:
            self.exacts.append((all_rows, zeros, widths))
            return self.finish()
        mid = (w - 1) // 2
        sx, sy = self.exact(np.repeat(all_rows, 3), np.tile(np.array([0, mid, w - 1]), h))
        sx, sy = sx.reshape(h, 3), sy.reshape(h, 3)
        good = np.isfinite(sx).all(1) & np.isfinite(sy).all(1)
        self.exacts.append((all_rows[~good], zeros[~good], widths[~good]))
        rows, starts, lens, sx, sy = all_rows[good], zeros[good], widths[good], sx[good], sy[good]
        # the first level in bulk: most rows are interpolated from their exact first and last points
        dx = (sx[:, 2] - sx[:, 0]) / (w - 1)
        dy = (sy[:, 2] - sy[:, 0]) / (w - 1)
        err = np.abs(sx[:, 0] + dx * mid - sx[:, 1]) + np.abs(sy[:, 0] + dy * mid - sy[:, 1])
        ok = ~(err > APPROX_ERROR)
        self.piece(rows[ok], starts[ok], lens[ok], sx[ok, 0], dx[ok], sy[ok, 0], dy[ok])
        rows, starts, lens, sx, sy = rows[~ok], starts[~ok], lens[~ok], sx[~ok], sy[~ok]
        while len(rows):
            rows, starts, lens, sx, sy = self._level(rows, starts, lens, sx, sy)
        return self.finish()

    def _level(self, rows, starts, lens, sx, sy):
        n_mid = (lens - 1) // 2
        span = (lens - 1).astype(np.float64)
        dx = (sx[:, 2] - sx[:, 0]) / span
        dy = (sy[:, 2] - sy[:, 0]) / span
        err = np.abs(sx[:, 0] + dx * n_mid - sx[:, 1]) + np.abs(sy[:, 0] + dy * n_mid - sy[:, 1])
        ok = ~(err > APPROX_ERROR)
        self.piece(rows[ok], starts[ok], lens[ok], sx[ok, 0], dx[ok], sy[ok, 0], dy[ok])
        split = ~ok
        if not split.any():
            return (rows[:0],) * 3 + (sx[:0], sy[:0])
        rows, starts, lens, sx, sy, n_mid = rows[split], starts[split], lens[split], sx[split], sy[split], n_mid[split]
        mids = starts + n_mid
        left_len, right_len = n_mid, lens - n_mid
        left_mid, left_end = starts + (n_mid - 1) // 2, starts + left_len - 1
        right_mid = mids + (right_len - 1) // 2
        base_l, base_r = left_len <= 5, right_len <= 5
        # new middle points of the halves that recurse
        lx, ly = self.exact(np.concatenate([rows, rows]), np.concatenate([left_mid, left_end]))
        rx, ry = self.exact(rows, right_mid)
        n = len(rows)
        lmx, lex, lmy, ley = lx[:n], lx[n:], ly[:n], ly[n:]
        fail = ~(np.isfinite(lmx) & np.isfinite(lex) & np.isfinite(rx) & np.isfinite(lmy) & np.isfinite(ley)
                 & np.isfinite(ry))
        # exact pixels: small halves, and whole segments whose new middle points cannot be transformed
        self.exacts.append((rows[fail], starts[fail], lens[fail]))
        sel_l, sel_r = base_l & ~fail, base_r & ~fail
        self.exacts.append((rows[sel_l], starts[sel_l], left_len[sel_l]))
        self.exacts.append((rows[sel_r], mids[sel_r], right_len[sel_r]))
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

    def finish(self) -> Plan:
        h, w = self.height, self.width
        if self.pieces:
            rows, starts, lens, x0, dx, y0, dy = (np.concatenate(p) for p in zip(*self.pieces))
        else:
            rows = starts = lens = np.zeros(0, np.intp)
            x0 = dx = y0 = dy = np.zeros(0)
        er, ec = _expand(*(np.concatenate(e) for e in zip(*self.exacts))) if self.exacts else (
            np.zeros(0, np.intp), np.zeros(0, np.intp))
        ex, ey = self.exact(er, ec) if len(er) else (np.zeros(0), np.zeros(0))
        return Plan((h, w), rows, starts, lens, x0, dx, y0, dy, (er, ec, ex, ey))


def row_plan(grid: Grid, src_transform: Affine, transformer,
             window: tuple[int, int, int, int] | None = None) -> Plan:
    """GDAL's approximated source coordinates of the pixel centres of ``grid``, or of its ``window``
    ``(col, row, width, height)`` (one warp chunk; the plan's rows and columns are the window's)."""
    return _Rows(grid, src_transform, transformer, window or (0, 0, grid.width, grid.height)).run()


# chunks ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chunk:
    """One chunk of a warp: destination pixels ``(col, row, width, height)`` and its source window."""

    col: int
    row: int
    width: int
    height: int
    src_col: int
    src_row: int
    src_width: int
    src_height: int


def _ratios() -> np.ndarray:
    out, r = [], 0.0
    while r <= 1.0 + 0.05 * 0.5:  # GDAL accumulates the step (21 points per edge)
        out.append(r)
        r += 1.0 / 20
    return np.array(out)


_RATIOS = _ratios()


def _round_if_close(v: float) -> float:
    r = float(round(v))
    return r if abs(r - v) < 1e-6 else v


def _source_windows(grid: Grid, src_transform: Affine, transformer, src_width: int, src_height: int,
                    boxes: list[tuple[int, int, int, int]], radius: int) -> list | None:
    """GDAL's ``ComputeSourceWindow`` (21 points per edge) for several destination boxes at once:
    per box (col, row, width, height, fill ratio), or ``None`` where GDAL would take another road."""
    r = _RATIOS
    b = np.asarray(boxes, np.float64)
    col, row, width, height = (b[:, i:i + 1] for i in range(4))
    along_x, along_y = r * width + col, r * height + row  # (boxes, 21): GDAL's points along each edge
    ones = np.ones_like(along_x)
    xs = np.concatenate([along_x, along_x, ones * col, ones * (col + width)], axis=1)
    ys = np.concatenate([ones * row, ones * (row + height), along_y, along_y], axis=1)
    px, py = _to_source(xs.ravel(), ys.ravel(), grid, src_transform, transformer)
    px, py = px.reshape(xs.shape), py.reshape(xs.shape)
    if not (np.isfinite(px).all() and np.isfinite(py).all()):
        return None  # GDAL would sample a grid of points instead: not reproduced
    out = []
    extents = zip(px.min(1).tolist(), px.max(1).tolist(), py.min(1).tolist(), py.max(1).tolist())
    for (_, _, width, height), (x0, x1, y0, y1) in zip(boxes, extents):
        out.append(_window(x0, x1, y0, y1, width, height, src_width, src_height, radius))
        if out[-1] is None:
            return None
    return out


def _window(min_x: float, max_x: float, min_y: float, max_y: float, width: int, height: int, src_width: int,
            src_height: int, radius: int):
    """The rest of ``ComputeSourceWindow`` from the transformed edge points' extent."""
    if min_x < -1e6 or min_y < -1e6 or max_x > src_width + 1e6 or max_y > src_height + 1e6:
        return None  # GDAL retries with CHECK_WITH_INVERT_PROJ: not reproduced
    if min_x > src_width or max_x < 0 or min_y > src_height or max_y < 0:
        return (0, 0, 0, 0, 0.0)
    min_x, min_y, max_x, max_y = map(_round_if_close, (min_x, min_y, max_x, max_y))
    x_scale = max(1e-3, width / (max_x - min_x)) if max_x > min_x else math.inf
    y_scale = max(1e-3, height / (max_y - min_y)) if max_y > min_y else math.inf
    x_radius = math.ceil(radius / x_scale) if x_scale < 0.95 else radius
    y_radius = math.ceil(radius / y_scale) if y_scale < 0.95 else radius
    min_xc, min_yc = int(max(0.0, min_x)), int(max(0.0, min_y))
    max_xc, max_yc = int(min(math.ceil(max_x), src_width)), int(min(math.ceil(max_y), src_height))
    if max_xc - min_xc > 0.9 * src_width:
        sx, sw = 0, src_width
    else:
        sx = max(0, min(min_xc - x_radius, src_width))
        sw = max(0, min(src_width - sx, max_xc - sx + x_radius))
    if max_yc - min_yc > 0.9 * src_height:
        sy, sh = 0, src_height
    else:
        sy = max(0, min(min_yc - y_radius, src_height))
        sh = max(0, min(src_height - sy, max_yc - sy + y_radius))
    fill = sw * sh / max(1.0, (max_x - min_x + 2 * x_radius) * (max_y - min_y + 2 * y_radius))
    return sx, sy, sw, sh, fill


@memoized("CRS poles", 64)
def _poles(src_crs, dst_crs) -> tuple[tuple[float, float], ...]:
    """The poles of a geographic source CRS in a projected destination CRS (where finite)."""
    try:
        t = Transformer.from_crs(src_crs.to_wkt(), dst_crs.to_wkt(), always_xy=True)
        xs, ys = t.transform([0.0, 0.0], [90.0, -90.0])
    except Exception:  # noqa: BLE001 - PROJ cannot express the pole here: no special point
        return ()
    return tuple((x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y))


def _pole_inside(src_crs, grid: Grid) -> bool:
    """Does a pole of a geographic source fall on the grid? (GDAL then samples a grid of points.)"""
    if src_crs is None or not getattr(src_crs, "is_geographic", False) or grid.crs is None:
        return False
    if grid.crs.is_geographic:
        left, bottom, right, top = grid.bounds
        return top >= 89.0 or bottom <= -89.0
    inv = ~grid.transform
    for x, y in _poles(src_crs, grid.crs):
        c, r = inv @ (x, y)
        if -1 <= c <= grid.width + 1 and -1 <= r <= grid.height + 1:
            return True
    return False


def likely_reproduced(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid,
                      bounds: tuple[float, float, float, float]) -> bool:
    """A cheap first test of :func:`warp_chunks`, from the grid's ``bounds`` in the source CRS (densified
    edges, :meth:`Grid.bounds_in`): no pole on the grid, finite bounds within GDAL's limits around the
    source. ``False`` where :func:`warp_chunks` (almost) certainly returns ``None``. Callers that defer
    :func:`warp_chunks` until a mask is asked for (most outputs never ask) warp without an alpha band
    when this holds, and take the mask from a warp with one in the rare cases it then fails."""
    if not all(math.isfinite(v) for v in bounds) or _pole_inside(src_crs, grid):
        return False
    left, bottom, right, top = bounds
    c0, cx, cy, r0, rx, ry = _inverse(src_transform)
    cols = [c0 + x * cx + y * cy for x in (left, right) for y in (bottom, top)]
    rows = [r0 + x * rx + y * ry for x in (left, right) for y in (bottom, top)]
    return (min(cols) >= -1e6 and min(rows) >= -1e6 and max(cols) <= src_width + 1e6
            and max(rows) <= src_height + 1e6)


def warp_chunks(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid, radius: int,
                src_bits: int, dst_bits: int, memory_limit: int = WARP_MEMORY_LIMIT) -> list[Chunk] | None:
    """The chunks GDAL warps ``grid`` in (``CollectChunkListInternal``), or ``None`` where not reproduced.

    ``radius`` is the resampling kernel's (0 nearest, 1 bilinear, 2 cubic); ``src_bits`` and
    ``dst_bits`` what GDAL counts per source and destination pixel (working type bits x bands,
    plus its masks: 32 for an alpha band).
    """
    if _pole_inside(src_crs, grid):
        return None
    tr = transformer_for(src_crs, grid.gdal_crs, src_transform, src_width, src_height)
    out: list[Chunk] = []
    todo = [(0, 0, grid.width, grid.height)]
    while todo:  # level by level (the order of GDAL's recursion does not change the chunks)
        windows = _source_windows(grid, src_transform, tr, src_width, src_height, todo, radius)
        if windows is None:
            return None
        split = []
        for (col, row, w, h), (sx, sy, sw, sh, fill) in zip(todo, windows):
            memory = (src_bits * sw * sh + dst_bits * w * h) / 8.0
            if (memory > memory_limit and (w > 2 or h > 2)) or (0 < fill < 0.5 and (w > 100 or h > 100)):
                if w > h:
                    c = w // 2
                    split += [(col, row, c, h), (col + c, row, w - c, h)]
                else:
                    c = h // 2
                    split += [(col, row, w, c), (col, row + c, w, h - c)]
            else:
                out.append(Chunk(col, row, w, h, sx, sy, sw, sh))
        todo = split
    return out


# which pixels a warp writes ----------------------------------------------------------------------
def _inside(x: np.ndarray, y: np.ndarray, c: Chunk) -> np.ndarray:
    """GDAL's test of a source coordinate against a chunk's source window."""
    with np.errstate(invalid="ignore"):
        return ((x >= c.src_col) & (y >= c.src_row) & (x + EPS <= c.src_col + c.src_width)
                & (y + EPS <= c.src_row + c.src_height))


def _first(pred, a: np.ndarray, d: np.ndarray, lens: np.ndarray, target: bool) -> np.ndarray:
    """Per piece, the first k in [0, len] where the monotone ``pred(a + d * k)`` equals ``target``
    (``len`` if none), by bisection on GDAL's own expression (so boundaries are bit-exact)."""
    lo = np.zeros(len(a), np.int64)
    hi = lens.astype(np.int64)
    while True:
        todo = lo < hi
        if not todo.any():
            return lo
        mid = (lo + hi) // 2
        hit = np.zeros(len(a), bool)
        hit[todo] = pred(a[todo] + d[todo] * mid[todo].astype(np.float64)) == target
        hi = np.where(todo & hit, mid, hi)
        lo = np.where(todo & ~hit, mid + 1, lo)


def _axis_range(a, d, lens, lo_bound: float, hi_bound: float) -> tuple[np.ndarray, np.ndarray]:
    """Per piece, [k0, k1): the k where ``a + d*k >= lo_bound`` and ``a + d*k + EPS <= hi_bound``."""
    lo = np.zeros(len(a), np.int64)
    hi = lens.astype(np.int64)
    ge = lambda v: v >= lo_bound  # noqa: E731
    le = lambda v: v + EPS <= hi_bound  # noqa: E731
    up, down, flat = d > 0, d < 0, d == 0
    if up.any():  # ge turns true, le turns false
        lo[up] = _first(ge, a[up], d[up], lens[up], True)
        hi[up] = _first(le, a[up], d[up], lens[up], False)
    if down.any():  # le turns true, ge turns false
        lo[down] = _first(le, a[down], d[down], lens[down], True)
        hi[down] = _first(ge, a[down], d[down], lens[down], False)
    if flat.any():
        ok = ge(a[flat]) & le(a[flat])
        hi[flat] = np.where(ok, lens[flat], 0)
    return lo, np.maximum(hi, lo)


def _chunk_validity(plan: Plan, chunk: Chunk, grid: Grid, src_transform: Affine, transformer):
    """Written pixels of one chunk of ``grid``: intervals (rows, first col, end col) and single pixels
    (rows, cols), in the chunk's coordinates."""
    a_x, a_y = plan.x0, plan.y0
    lens = plan.lens
    xl, xh = _axis_range(a_x, plan.dx, lens, chunk.src_col, chunk.src_col + chunk.src_width)
    yl, yh = _axis_range(a_y, plan.dy, lens, chunk.src_row, chunk.src_row + chunk.src_height)
    lo, hi = np.maximum(xl, yl), np.minimum(xh, yh)
    hi = np.maximum(hi, lo)
    # pixels just outside (< 1 source pixel): GDAL transforms them exactly once more
    cxl, cxh = _axis_range(a_x, plan.dx, lens, chunk.src_col - 1, chunk.src_col + chunk.src_width + 1)
    cyl, cyh = _axis_range(a_y, plan.dy, lens, chunk.src_row - 1, chunk.src_row + chunk.src_height + 1)
    clo, chi = np.maximum(cxl, cyl), np.minimum(cxh, cyh)
    chi = np.maximum(chi, clo)
    empty = hi <= lo
    left_end = np.where(empty, chi, np.minimum(lo, chi))
    right_start = np.where(empty, chi, np.maximum(hi, clo))
    cand_r, cand_c = [np.zeros(0, np.intp)], [np.zeros(0, np.intp)]
    for r, s, e in ((plan.rows, plan.starts + clo, plan.starts + left_end),
                    (plan.rows, plan.starts + right_start, plan.starts + chi)):
        rr, cc = _expand(r, s, np.maximum(e - s, 0))
        cand_r.append(rr)
        cand_c.append(cc)
    er, ec, ex, ey = plan.exact
    pr, pc = np.concatenate(cand_r), np.concatenate(cand_c)
    if len(pr):
        qx, qy = source_pixels((pc + chunk.col).astype(np.float64), (pr + chunk.row).astype(np.float64), grid,
                               src_transform, transformer)
        keep = _inside(qx, qy, chunk)
        pr, pc = pr[keep], pc[keep]
    keep = _inside(ex, ey, chunk)
    rows = np.concatenate([pr, er[keep]])
    cols = np.concatenate([pc, ec[keep]])
    good = hi > lo
    return (plan.rows[good], plan.starts[good] + lo[good], plan.starts[good] + hi[good]), (rows, cols)


def valid_mask(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid, radius: int,
               src_bits: int, dst_bits: int) -> tuple[bool, np.ndarray | None]:
    """Which pixels of ``grid`` a warp of an all-valid source writes, as GDAL decides it.

    Returns ``(True, mask)`` with a float32 mask (1 written, 0 not; ``None`` when every pixel
    is written), or ``(False, None)`` where the emulation does not apply (use a warp's alpha).
    ``src_crs`` is the GDAL CRS of the source; the other arguments as :func:`warp_chunks`.
    """
    chunks = warp_chunks(src_transform, src_crs, src_width, src_height, grid, radius, src_bits, dst_bits)
    if chunks is None:
        return False, None
    return True, chunks_mask(chunks, src_transform, src_crs, src_width, src_height, grid)


def chunks_mask(chunks: list[Chunk], src_transform: Affine, src_crs, src_width: int, src_height: int,
                grid: Grid) -> np.ndarray | None:
    """The written pixels of a warp in ``chunks`` (from :func:`warp_chunks`) as a float32 mask
    (``None``: every pixel). Pixels whose transform fails are not written, as in GDAL."""
    tr = transformer_for(src_crs, grid.gdal_crs, src_transform, src_width, src_height)
    spans, points = [], []
    count = 0
    for c in chunks:
        if c.src_width == 0 or c.src_height == 0:
            continue
        plan = row_plan(grid, src_transform, tr, (c.col, c.row, c.width, c.height))
        (rr, c0, c1), (pr, pc) = _chunk_validity(plan, c, grid, src_transform, tr)
        count += int((c1 - c0).sum()) + len(pr)
        spans.append(_merge(rr + c.row, c0 + c.col, c1 + c.col))
        points.append((pr + c.row, pc + c.col))
    if count == grid.width * grid.height:
        return None
    mask = np.zeros(grid.shape, np.float32)
    flat = mask.reshape(-1)
    w = grid.width
    for rr, c0, c1 in spans:
        full_rows = bool((c0 == 0).all() and (c1 == w).all())
        if len(rr) and full_rows and np.array_equal(rr, np.arange(rr[0], rr[0] + len(rr))):
            mask[rr[0]:rr[0] + len(rr)] = 1.0  # whole consecutive rows
            continue
        for a, b in zip((rr * w + c0).tolist(), (rr * w + c1).tolist()):
            flat[a:b] = 1.0
    for pr, pc in points:
        mask[pr, pc] = 1.0
    return mask


def _merge(rows: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spans sorted by row and start, touching spans of a row (or of consecutive full rows) merged."""
    if len(rows) < 2:
        return rows, c0, c1
    order = np.lexsort((c0, rows))
    rows, c0, c1 = rows[order], c0[order], c1[order]
    joins = (rows[1:] == rows[:-1]) & (c0[1:] == c1[:-1])
    if not joins.any():
        return rows, c0, c1
    starts = np.concatenate([[True], ~joins])
    ends = np.concatenate([~joins, [True]])
    return rows[starts], c0[starts], c1[ends]


def chunk_pixels(plan: Plan, chunk: Chunk, grid: Grid, src_transform: Affine,
                 transformer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest resampling of one chunk of ``grid`` (``plan`` is the chunk's): source column, row
    (absolute pixel indices, 0 where not written) and the written pixels, as GDAL's kernel picks them."""
    px, py = plan.fill()
    ok = _inside(px, py, chunk)
    with np.errstate(invalid="ignore"):
        near = ~ok & (px > chunk.src_col - 1) & (py > chunk.src_row - 1) & (
            px + EPS < chunk.src_col + chunk.src_width + 1) & (py + EPS < chunk.src_row + chunk.src_height + 1)
    rr, cc = np.nonzero(near)
    if len(rr):  # GDAL retries these with the exact transformer
        qx, qy = source_pixels((cc + chunk.col).astype(np.float64), (rr + chunk.row).astype(np.float64), grid,
                               src_transform, transformer)
        keep = _inside(qx, qy, chunk)
        rr, cc = rr[keep], cc[keep]
        px[rr, cc], py[rr, cc] = qx[keep], qy[keep]
        ok[rr, cc] = True
    cols = np.zeros(px.shape, np.intp)
    rows = np.zeros(px.shape, np.intp)
    np.copyto(cols, px + EPS, where=ok, casting="unsafe")
    np.copyto(rows, py + EPS, where=ok, casting="unsafe")
    np.minimum(cols, chunk.src_col + chunk.src_width - 1, out=cols)
    np.minimum(rows, chunk.src_row + chunk.src_height - 1, out=rows)
    return cols, rows, ok
