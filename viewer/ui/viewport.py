"""Viewport helpers: the pixel grid of a map view, zoom levels, counting grids, async spawning."""
from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor

import param
from affine import Affine

from ..core.errors import InvalidArgument
from ..core.grid import HALF_WORLD, Grid, parse_crs
from ..core.image import Image
from ..server.activity import tile_activity

__all__ = ["EXECUTOR", "STATS_EXECUTOR", "MERCATOR", "WORLD_RES", "MAX_VIEW_SIDE", "spawn", "after_tiles", "zoom_for",
           "view_grid", "count_grid"]

#: Thread pool for inspector reads, region figures, charts and exports (off the event loop).
EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="viewer-ui")
#: One thread for the view statistics of every session (class counts, live stretches): they wait
#: for the view's tiles (:func:`after_tiles`) and then take at most one core from the tiles.
STATS_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="viewer-stats")
#: Tile quiet period (s) before background work starts, and the longest wait for it (a busy
#: server with many users never goes quiet).
TILES_QUIET_S = 0.15
TILES_WAIT_CAP_S = 1.5

MERCATOR = parse_crs("EPSG:3857")
WORLD_RES = 2 * HALF_WORLD / 256  # metres per screen pixel at zoom 0
MAX_VIEW_SIDE = 1024

def spawn(coro_fn) -> bool:
    """Run ``coro_fn()`` on the running event loop (through Panel's executor when set, which
    keeps the session's document current). Without a running loop nothing runs: scripts
    and tests call the synchronous variants instead. Returns whether it was scheduled."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    executor = param.parameterized.async_executor
    if executor is not None:
        executor(coro_fn)
    else:
        asyncio.get_running_loop().create_task(coro_fn())
    return True


async def after_tiles(quiet: float | None = None, cap: float | None = None) -> float:
    """Wait until this process has served the tiles being asked for (no tile request in flight and
    none for ``quiet`` s, default :data:`TILES_QUIET_S`), at most ``cap`` s (:data:`TILES_WAIT_CAP_S`);
    returns the seconds waited. Work started after a pan or zoom calls it first, so that it does
    not compete with the new view's tiles."""
    return await tile_activity.wait_quiet(TILES_QUIET_S if quiet is None else quiet,
                                          TILES_WAIT_CAP_S if cap is None else cap)


def zoom_for(x0: float, x1: float, width_px: int) -> float:
    """The (fractional) XYZ zoom level of a Web Mercator x-range shown on ``width_px`` pixels."""
    span = max(abs(x1 - x0), 1e-9)
    return math.log2(WORLD_RES * max(width_px, 1) / span)


def view_grid(view: tuple[float, float, float, float], size: tuple[int, int], pixel_mode: bool = False,
              cap: int = MAX_VIEW_SIDE) -> Grid:
    """The pixel grid of a viewport: ``view`` = (x0, y0, x1, y1) in map coordinates,
    ``size`` = (width, height) in screen pixels, capped at ``cap`` pixels per side.

    Map coordinates are EPSG:3857 metres, or in pixel mode image pixels with y = -row. A view
    across the antimeridian keeps its x range (x beyond ``HALF_WORLD`` is the next turn of
    the world, which the core reads continuously); one wider than the world is cut to one
    world around its centre; y stops at the map's edge.
    """
    x0, y0, x1, y1 = view
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    if not pixel_mode:
        if x1 - x0 > 2 * HALF_WORLD:
            cx = (x0 + x1) / 2
            x0, x1 = cx - HALF_WORLD, cx + HALF_WORLD
        y0, y1 = max(y0, -HALF_WORLD), min(y1, HALF_WORLD)
    if x1 <= x0 or y1 <= y0:
        raise InvalidArgument(f"view {view!r} is empty", value=view)
    w, h = max(int(size[0]), 1), max(int(size[1]), 1)
    scale = min(1.0, cap / max(w, h))
    w, h = max(1, round(w * scale)), max(1, round(h * scale))
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    if pixel_mode:
        return Grid(None, Affine(sx, 0, x0, 0, sy, -y1), w, h)
    return Grid(MERCATOR, Affine(sx, 0, x0, 0, -sy, y1), w, h)


def count_grid(grid: Grid, image: Image) -> Grid:
    """``grid``, coarsened so that its pixels are not smaller than ``image``'s native pixels.

    Zoomed in, class counts then count native pixels (not screen pixels); zoomed out they
    count the view's pixels. Areas do not depend on it.
    """
    g = image.native_grid()
    if g is None:
        return grid
    if grid.crs is None or g.crs is None:
        native = (abs(g.transform.a) or 1.0, abs(g.transform.e) or 1.0)
    else:
        try:
            b = g.bounds_in(grid.crs)
        except Exception:  # noqa: BLE001 - outside the view CRS's domain
            return grid
        native = ((b[2] - b[0]) / g.width, (b[3] - b[1]) / g.height)
    sx, sy = grid.resolution()
    fx, fy = max(1.0, native[0] / sx), max(1.0, native[1] / sy)
    if fx <= 1.0 and fy <= 1.0:
        return grid
    return grid.scaled(max(1, round(grid.width / fx)), max(1, round(grid.height / fy)))
