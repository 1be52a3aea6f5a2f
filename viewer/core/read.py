"""Reading: source bands onto a grid, the one entry point :func:`read_bands`, top to bottom.

1. What the file is now (:func:`source_identity`: size and mtime of a local file, one stat; the
   ETag of a remote one through :func:`viewer.core.access.remote_identity`), checked against what
   it was when the graph was built (else :class:`~viewer.core.errors.SourceChanged`);
2. the open dataset from a per-thread cache keyed by that identity (opened through the access
   rules of :mod:`viewer.core.access`), with its metadata read once (:class:`_Meta`);
3. an exact window of the file's own grid is read as is; otherwise the overview level (GDAL's
   AUTO rule, remembered per dataset and grid) and then
4. the nearest sampler for tile-sized grids: an index map (:mod:`viewer.core.sampling` computes
   it, the process-wide ``index maps`` cache here keeps it) applied to one window read per file;
   or the exact sampler, or one GDAL warp: of an all-valid source without an alpha band (the pixels
   it wrote reproduced by :mod:`viewer.core.approx`, only when a mask is asked for); of bands masked
   by one nodata value, nearest, without one either (valid where the value is not nodata); else with
   an alpha band. The source's own grid shifted partly off it is read as a window, no warp.

In-memory arrays take :func:`warp_array` (the sampler or one warp as well).
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio._path import _parse_path
from rasterio.env import env_ctx_if_needed
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.warp import reproject

from affine import Affine

from .access import REMOTE_PREFIXES, configure_gdal, gdal_path, is_remote, raster_drivers, remote_identity
from .approx import chunks_mask, likely_reproduced, source_bounds, warp_chunks
from .cache import named_cache
from .catalog import get_catalog
from .errors import InvalidArgument, ReadError, SourceChanged
from .grid import PIXEL_CRS, Grid, crs_token, grid_key, same_crs
from .raster import Written
from .sampling import IndexMap, exact_map, tile_map

__all__ = ["source_identity", "open_dataset", "open_raster", "read_bands", "warp_array", "sample_dataset",
           "sample_array", "RESAMPLING", "native_grid", "TILE_SAMPLER_PIXELS", "SAMPLER_MAX_PIXELS",
           "MAP_CACHE_ITEMS", "MAP_CACHE_BYTES"]

RESAMPLING = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "bicubic": Resampling.cubic,
    "cubic": Resampling.cubic,
    "average": Resampling.average,
    "mode": Resampling.mode,
}

#: Nearest grids up to this many pixels (map tiles) take the tile sampler of :mod:`viewer.core.sampling`
#: (its long-standing behaviour: the grid as one piece, see there).
TILE_SAMPLER_PIXELS = 1 << 17
#: Larger nearest grids up to this many pixels, of sources without masks, take the exact sampler
#: (pixel-identical to the GDAL warp it replaces) from the second request of the same grid on
#: (building its map costs about 3 warps, using it about a quarter of one: README "Performance");
#: the first request, larger grids and every other case take one GDAL warp.
SAMPLER_MAX_PIXELS = 1 << 20
#: Resamplings whose written pixels :func:`viewer.core.approx.valid_mask` reproduces (kernel radius).
_RADIUS = {Resampling.nearest: 0, Resampling.bilinear: 1, Resampling.cubic: 2}

_local = threading.local()
_MAX_OPEN = 64


def source_identity(path: str) -> str:
    """What a source is now: size and modification time of a local file, the ETag of a
    remote ``http(s)`` COG (checked at most once a minute, :func:`viewer.core.access.remote_identity`).

    It goes into every source node's content key, so a replaced file makes new layer
    tokens and ETags, and the open-dataset cache reopens it.
    """
    if path.lower().startswith(REMOTE_PREFIXES):
        return remote_identity(path)
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}-{st.st_mtime_ns}"


def open_raster(path: str, overview_level: int | None = None):
    """Open one raster (uncached) through the access rules of :mod:`viewer.core.access`."""
    configure_gdal()
    vrt_paths: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    if is_remote(path) or path.lower().endswith(".vrt"):  # only these need the catalog's word
        catalog = get_catalog()
        vrt_paths, prefixes = catalog.vrt_paths, catalog.remote_prefixes
    checked = gdal_path(path, prefixes)
    kwargs = {} if overview_level is None else {"overview_level": overview_level}
    try:  # rasterio.open takes one driver name; its reader takes GDAL's list of allowed drivers
        with env_ctx_if_needed():
            return DatasetReader(_parse_path(checked), driver=list(raster_drivers(checked, vrt_paths)), **kwargs)
    except RasterioIOError as exc:
        raise ReadError(f"cannot open raster {path!r}: {exc}", value=path) from None


def open_dataset(path: str, overview_level: int | None = None, identity: str | None = None):
    """A per-thread cached read handle (rasterio datasets are not thread-safe).

    A local file is reopened when its size or modification time changes; ``identity`` is the
    file's current :func:`source_identity` when the caller has it already.
    """
    cache: OrderedDict = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    key = (path, overview_level)
    if identity is None:
        identity = source_identity(path)
    hit = cache.get(key)
    if hit is not None and hit[1] == identity:
        cache.move_to_end(key)
        return hit[0]
    if hit is not None:
        del cache[key]
        hit[0].close()
    ds = open_raster(path, overview_level)
    cache[key] = (ds, identity)
    while len(cache) > _MAX_OPEN:
        cache.popitem(last=False)[1][0].close()
    return ds


def native_grid(ds) -> Grid:
    return Grid(ds.crs if ds.crs else None, ds.transform, ds.width, ds.height)


class _Meta:
    """What every read asks of a dataset, asked once per open dataset (rasterio builds these anew on
    every access: mask flags and colour interpretations as enums, transforms, overview lists)."""

    def __init__(self, ds) -> None:
        self.dtypes = tuple(ds.dtypes)
        self.flags = tuple(tuple(f) for f in ds.mask_flag_enums)
        #: 1-based index of the alpha band, 0 if there is none
        self.alpha = next((i for i, ci in enumerate(ds.colorinterp, start=1) if ci == ColorInterp.alpha), 0)
        self.transform, self.crs = ds.transform, (ds.crs if ds.crs else None)
        self.nodata = tuple(ds.nodatavals)
        self.levels: dict = {}  # (band, grid) -> overview level


def _meta(ds) -> _Meta:
    meta = getattr(ds, "_viewer_meta", None)
    if meta is None:
        meta = ds._viewer_meta = _Meta(ds)
    return meta


def _overview_level(ds, bidx: int, grid: Grid, src_crs) -> int | None:
    """The overview level (:func:`_pick_overview`, GDAL's AUTO rule), remembered per dataset and grid (a
    tile's grid comes back for every band and layer)."""
    levels = _meta(ds).levels
    key = (bidx,) + grid.key
    hit = levels.get(key)
    if hit is None:
        if len(levels) > 4096:
            levels.clear()
        hit = levels[key] = (_pick_overview(ds, bidx, grid, src_crs),)
    return hit[0]


def _pick_overview(ds, bidx: int, grid: Grid, src_crs) -> int | None:
    """Index of the coarsest overview still at least as fine as the grid (GDAL's AUTO rule), from the grid's
    bounds in the source CRS (:func:`viewer.core.approx.source_bounds`; GDAL's where PROJ gives none)."""
    factors = ds.overviews(bidx)
    if not factors:
        return None
    bounds = source_bounds(grid, src_crs) if src_crs is not None else grid.bounds
    left, bottom, right, top = bounds if bounds is not None else grid.bounds_in(src_crs)
    dst_res = min((right - left) / grid.width, (top - bottom) / grid.height)
    src_res = min(abs(ds.transform.a) or 1.0, abs(ds.transform.e) or 1.0)
    ratio = dst_res / src_res
    level = None
    for i, f in enumerate(factors):
        if f <= ratio * 1.0001:
            level = i
    return level


def _bounds_in(grid: Grid, src_crs) -> tuple[float, float, float, float] | None:
    """The grid's bounds in the source CRS (densified edges), ``None`` where PROJ cannot give them."""
    try:
        return grid.bounds_in(src_crs)
    except Exception:  # noqa: BLE001 - rasterio/PROJ errors: outside the CRS's domain
        return None


def _inside(ds, bounds: tuple[float, float, float, float] | None) -> bool:
    """Is the whole grid (its ``bounds`` in the source CRS) within the source's pixel area (so nothing
    outside is sampled)?"""
    if bounds is None:
        return False
    left, bottom, right, top = bounds
    b = ds.bounds
    eps = 1e-9 * max(abs(b.right - b.left), 1.0)
    return left >= b.left - eps and right <= b.right + eps and bottom >= b.bottom - eps and top <= b.top + eps


def _grid_offset(ds, grid: Grid) -> tuple[int, int] | None:
    """If the grid is the source's own grid shifted by whole pixels, that shift ``(col, row)`` (it may lie
    partly or wholly off the source), else None."""
    meta = _meta(ds)
    t, s = grid.transform, meta.transform
    if not all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) for a, b in
               ((t.a, s.a), (t.b, s.b), (t.d, s.d), (t.e, s.e))):
        return None
    if not same_crs(meta.crs, grid.crs):
        return None
    col, row = ~s @ (t.c, t.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return int(round(col)), int(round(row))


def _exact_window(ds, grid: Grid):
    """If the grid is an integer window of the source's own grid, that window, else None."""
    offset = _grid_offset(ds, grid)
    if offset is None:
        return None
    col, row = offset
    if col < 0 or row < 0 or col + grid.width > ds.width or row + grid.height > ds.height:
        return None
    return rasterio.windows.Window(col, row, grid.width, grid.height)


def _read_shifted(ds, bidxs: tuple[int, ...], grid: Grid, offset: tuple[int, int],
                  work: np.dtype) -> list[tuple[np.ndarray, Written]]:
    """Bands of an all-valid source on its own grid shifted by ``offset`` and partly off it: the overlap
    read as is, zeros elsewhere (what a GDAL warp of such a grid writes, without the warp)."""
    col, row = offset
    c0, r0 = max(col, 0), max(row, 0)
    c1, r1 = min(col + grid.width, ds.width), min(row + grid.height, ds.height)
    out = np.zeros((len(bidxs), grid.height, grid.width), work)
    if c1 <= c0 or r1 <= r0:
        return [(out[i], Written(np.zeros(grid.shape, np.float32))) for i in range(len(bidxs))]
    rows, cols = slice(r0 - row, r1 - row), slice(c0 - col, c1 - col)
    out[:, rows, cols] = ds.read(list(bidxs), window=rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0))

    def written() -> np.ndarray:
        mask = np.zeros(grid.shape, np.float32)
        mask[rows, cols] = 1.0
        return mask
    mask = Written(compute=written)
    return [(out[i], mask) for i in range(len(bidxs))]


def _work_dtype(dtype: np.dtype) -> np.dtype:
    """dtype to warp into: the native one where a 0-255 alpha band fits (GDAL rounds
    interpolated integers, as a bare warp does), else float."""
    if dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        return dtype
    if dtype in (np.int32, np.uint32, np.int64, np.uint64):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _groupable(ds, bidxs: tuple[int, ...], method: Resampling) -> bool:
    """Can these bands be read in one GDAL call (same dtype; one shared mask, or, nearest, one nodata value
    each band is masked by)?"""
    meta = _meta(ds)
    if len(bidxs) < 2 or len({meta.dtypes[i - 1] for i in bidxs}) != 1:
        return False
    flags = {meta.flags[i - 1] for i in bidxs}
    if flags == {(MaskFlags.all_valid,)} or all(MaskFlags.per_dataset in f for f in flags):
        return True
    return method == Resampling.nearest and _nodata_of(ds, bidxs) is not None


def _nodata_of(ds, bidxs: tuple[int, ...]) -> float | None:
    """The nodata value that alone masks each of these bands (the same for all, finite and exact in the
    dtype they are warped in), else None."""
    meta = _meta(ds)
    if any(meta.flags[b - 1] != (MaskFlags.nodata,) for b in bidxs):
        return None
    values = {meta.nodata[b - 1] for b in bidxs}
    if len(values) != 1:
        return None
    (value,) = values
    work = _work_dtype(np.dtype(meta.dtypes[bidxs[0] - 1]))
    if value is None or not math.isfinite(value) or float(np.array(value).astype(work)) != value:
        return None
    return value


def _warp_nodata(src, bidxs: tuple[int, ...], src_crs, grid: Grid, work: np.dtype,
                 nodata: float) -> list[tuple[np.ndarray, np.ndarray | Written | None]]:
    """Nearest warp of bands masked by one ``nodata`` value: one GDAL call without an alpha band, as a bare
    warp of them is. A pixel is valid where its value is not ``nodata`` (nearest copies valid values,
    which never equal it; the destination starts at ``nodata``); invalid values are then set to 0."""
    n = len(bidxs)
    fill = np.array(nodata).astype(work)
    dst = np.zeros((n, grid.height, grid.width), work) if fill == 0 else np.full((n, grid.height, grid.width), fill)
    reproject(source=rasterio.band(src, list(bidxs) if n > 1 else bidxs[0]), destination=dst if n > 1 else dst[0],
              src_crs=src_crs, dst_transform=grid.transform, dst_crs=grid.gdal_crs, resampling=Resampling.nearest,
              src_nodata=nodata, dst_nodata=nodata, init_dest_nodata=False, num_threads=1, SKIP_NOSOURCE="YES")
    out: list[tuple[np.ndarray, np.ndarray | Written | None]] = []
    for i in range(n):
        values = dst[i]
        valid = values != fill
        if valid.all():
            out.append((values, None))
            continue
        if fill != 0:
            values[~valid] = 0
        out.append((values, Written(compute=lambda valid=valid: valid.astype(np.float32))))
    return out


def read_bands(
    path: str,
    bidxs: tuple[int, ...],
    grid: Grid,
    resampling: str = "nearest",
    use_overviews: bool = True,
    identity: str | None = None,
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Values and masks of bands of one file on ``grid``; one GDAL warp where they share a mask.

    ``identity`` (from :func:`source_identity`) is what the file was when
    the graph was built; a file changed since raises :class:`SourceChanged`.
    """
    if resampling not in RESAMPLING:
        raise InvalidArgument(f"resampling {resampling!r} is not allowed; allowed: {sorted(RESAMPLING)}",
                              value=resampling, allowed=sorted(RESAMPLING))
    method = RESAMPLING[resampling]
    current = source_identity(path)  # the read's one identity check; it also keys the dataset cache
    if identity is not None and current != identity:
        raise SourceChanged(f"{path!r} changed since the graph was built", value=path)
    ds = open_dataset(path, None, current)
    for bidx in bidxs:
        if not 1 <= bidx <= ds.count:
            raise ReadError(f"band {bidx} does not exist in {path!r} (it has {ds.count})", value=bidx)
    if len(bidxs) > 1 and not _groupable(ds, bidxs, method):
        return [_read_open(ds, path, current, (b,), grid, method, use_overviews)[0] for b in bidxs]
    return _read_open(ds, path, current, bidxs, grid, method, use_overviews)


def _read_open(ds, path: str, current: str, bidxs: tuple[int, ...], grid: Grid, method: Resampling,
               use_overviews: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """:func:`read_bands` on the open dataset ``ds`` of ``path`` (``current``: its identity, checked)."""
    all_valid = all(_meta(ds).flags[b - 1] == (MaskFlags.all_valid,) for b in bidxs)

    window = _exact_window(ds, grid)
    if window is not None:
        out = []
        for bidx in bidxs:
            values = ds.read(bidx, window=window)
            mask = None
            if not all_valid:
                m = ds.read_masks(bidx, window=window)
                mask = None if m.min() == 255 else (m.astype(np.float32) / 255.0)
            out.append((values, mask))
        return out

    src_crs = _meta(ds).crs
    if (src_crs is None) != (grid.crs is None):
        raise InvalidArgument(
            f"cannot place {path!r} ({'pixel coordinates' if src_crs is None else src_crs}) on a grid in "
            f"{'pixel coordinates' if grid.crs is None else grid.crs}", value=str(grid.crs),
            allowed="a grid in the same kind of coordinates as the image",
        )
    level = _overview_level(ds, bidxs[0], grid, src_crs) if use_overviews else None
    src = ds if level is None else open_dataset(path, level, current)
    n = len(bidxs)
    work = _work_dtype(np.dtype(_meta(ds).dtypes[bidxs[0] - 1]))
    bits = work.itemsize * 8 * n  # what GDAL counts per pixel when it chunks this warp (no masks)
    pixels = grid.width * grid.height
    if method == Resampling.nearest and pixels <= TILE_SAMPLER_PIXELS:
        return sample_dataset(src, bidxs, grid, all_valid)  # GDAL's nearest warp, without a warp per call
    if method == Resampling.nearest and all_valid and pixels <= SAMPLER_MAX_PIXELS:
        # a grid asked for again: the exact sampler (its map costs a few warps once, then a quarter of one)
        exact = sample_dataset(src, bidxs, grid, True, exact_bits=(bits, bits), build=False)
        if exact is not None:
            return exact
    src_gdal_crs = src.crs if src_crs is not None else PIXEL_CRS
    if not all_valid and method == Resampling.nearest:
        nodata = _nodata_of(ds, bidxs)
        if nodata is not None:
            return _warp_nodata(src, bidxs, src_gdal_crs, grid, work, nodata)
    mask = None
    bounds = _bounds_in(grid, src_crs)  # GDAL's (cached per grid): what its warp of the grid will cover
    need_alpha = not (all_valid and _inside(ds, bounds))
    if need_alpha and all_valid and method in _RADIUS:
        offset = _grid_offset(src, grid)
        if offset is not None:  # the source's own grid, partly off it: no warp
            return _read_shifted(src, bidxs, grid, offset, work)
        # which pixels the warp writes, without an alpha band: GDAL's chunks and edge rules reproduced
        # (approx.warp_chunks), only when a mask is asked for (a raw output never asks: the values are 0 there)
        geo = (src.transform, src.crs if src_crs is not None else PIXEL_CRS, src.width, src.height)
        if bounds is not None and likely_reproduced(*geo, grid, bounds):
            need_alpha = False
            mask = Written(compute=lambda: _written_mask(path, level, current, bidxs, geo, grid, method, work))
    if need_alpha:
        return _warp_with_alpha(src, bidxs, src_gdal_crs, grid, method, work, _meta(ds).alpha)
    if n > 1 and mask is not None:
        # across the source's edge GDAL writes only the chunks on it: written pixel-interleaved there (the
        # layout of a NUMPY_NDARRAY, which then needs no interleaving copy of the whole grid)
        dst = np.zeros((grid.height, grid.width, n), dtype=work).transpose(2, 0, 1)
    else:
        dst = np.zeros((n, grid.height, grid.width), dtype=work)
    reproject(
        source=rasterio.band(src, list(bidxs) if n > 1 else bidxs[0]),
        destination=dst if n > 1 else dst[0],
        src_crs=src_gdal_crs,
        dst_transform=grid.transform,
        dst_crs=grid.gdal_crs,
        resampling=method,
        src_alpha=_meta(ds).alpha,
        init_dest_nodata=False,
        num_threads=1,
        SKIP_NOSOURCE="YES",  # chunks off the source: not read and written back unchanged (zeros either way)
    )
    return [(dst[i], mask) for i in range(n)]


def _warp_with_alpha(src, bidxs: tuple[int, ...], src_crs, grid: Grid, method: Resampling, work: np.dtype,
                     src_alpha: int = 0) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """One GDAL warp of bands ``bidxs`` with an alpha band: values, and the alpha as a float mask.

    ``rasterio.warp.reproject`` puts source band ``b`` into destination band ``b`` unless the
    destination has exactly one band per source band, which a destination with an alpha band has not:
    so the destination holds bands ``1 .. max(bidxs)`` (the ones not read are never written, zero pages
    that cost no memory) and the alpha after them.
    """
    n = len(bidxs)
    in_order = bidxs == tuple(range(1, n + 1))
    count = n if in_order else max(bidxs)
    dst = np.zeros((count + 1, grid.height, grid.width), dtype=work)
    reproject(source=rasterio.band(src, list(bidxs) if n > 1 else bidxs[0]), destination=dst, src_crs=src_crs,
              dst_transform=grid.transform, dst_crs=grid.gdal_crs, resampling=method, src_alpha=src_alpha,
              dst_alpha=count + 1, init_dest_nodata=False, num_threads=1, SKIP_NOSOURCE="YES")
    mask = np.divide(dst[count], 255.0, dtype=np.float32)
    np.clip(mask, 0.0, 1.0, out=mask)
    out_mask = None if mask.min() >= 1 else mask
    return [(dst[b - 1], out_mask) for b in bidxs]


def _written_mask(path: str, level: int | None, current: str, bidxs: tuple[int, ...], geo: tuple, grid: Grid,
                 method: Resampling, work: np.dtype) -> np.ndarray | None:
    """Which pixels a warp without an alpha band wrote (float32, ``None`` = all): GDAL's chunks reproduced,
    or, for the rare grid :func:`viewer.core.approx.warp_chunks` does not reproduce, the alpha band of
    the same warp with one (the dataset reopened: this may run later, in another thread)."""
    n = len(bidxs)
    bits = work.itemsize * 8 * n
    chunks = warp_chunks(*geo, grid, _RADIUS[method], bits, bits)
    if chunks is not None:
        return chunks_mask(chunks, *geo, grid)
    src = open_dataset(path, level, current)
    return _warp_with_alpha(src, bidxs, geo[1], grid, method, work)[0][1]


# the nearest sampler: index maps (viewer.core.sampling) cached and applied -------------------
#: Index maps kept (process-wide, LRU): the tiles of several views (a 1920 x 1080 view with its
#: border ring asks for about 60 tiles per source grid; a 256 x 256 map takes 256 KiB), bounded in bytes.
MAP_CACHE_ITEMS = 1024
MAP_CACHE_BYTES = 128 * 1024 * 1024
#: Grids larger than this many pixels are sampled in row strips (bounded memory, no caching).
_STRIP_PIXELS = 1 << 20
_maps = named_cache("index maps", MAP_CACHE_ITEMS, MAP_CACHE_BYTES, sizeof=lambda m: m.nbytes)
#: Grids asked for once (the exact map is built when the same grid comes again).
_asked = named_cache("index map requests", 4096)


def _map_key(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid) -> tuple:
    return (tuple(src_transform)[:6], crs_token(src_crs), src_width, src_height) + grid_key(grid)


def _tile_map(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid,
              cache: bool = True) -> IndexMap:
    """:func:`viewer.core.sampling.tile_map`, kept in the ``index maps`` cache."""
    if not cache:
        return tile_map(src_transform, src_crs, src_width, src_height, grid)
    key = ("tile",) + _map_key(src_transform, src_crs, src_width, src_height, grid)
    m = _maps.get(key)
    if m is None:
        m = tile_map(src_transform, src_crs, src_width, src_height, grid)
        _maps.put(key, m)
    return m


def _exact_map(src_transform: Affine, src_crs, src_width: int, src_height: int, grid: Grid, src_bits: int,
               dst_bits: int, build: bool = True) -> IndexMap | None:
    """:func:`viewer.core.sampling.exact_map`, cached. With ``build=False`` a map is only built for a
    grid asked for before (``None`` the first time): building one costs a few GDAL warps of the
    grid, using it a quarter of one."""
    key = ("gdal", src_bits, dst_bits) + _map_key(src_transform, src_crs, src_width, src_height, grid)
    m = _maps.get(key)
    if m is None:
        if not build and _asked.get(key) is None:
            _asked.put(key, True)
            return None
        m = exact_map(src_transform, src_crs, src_width, src_height, grid, src_bits, dst_bits)
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
    see :func:`_exact_map`).
    """
    meta = _meta(ds)  # transform and CRS as read once (rasterio builds them anew on every access)
    src = (meta.transform, meta.crs if meta.crs is not None else PIXEL_CRS, ds.width, ds.height)
    if exact_bits is not None:
        m = _exact_map(*src, grid, *exact_bits, build=build)
        return None if m is None else _gather_dataset(ds, bidxs, m, all_valid)
    strips = _strips(grid)
    if strips is not None:
        per_strip = [_gather_dataset(ds, bidxs, _tile_map(*src, g, False), all_valid) for g in strips]
        return [_stack([p[i] for p in per_strip]) for i in range(len(bidxs))]
    return _gather_dataset(ds, bidxs, _tile_map(*src, grid), all_valid)


def _gather_dataset(ds, bidxs: tuple[int, ...], m: IndexMap,
                    all_valid: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    dtypes = _meta(ds).dtypes
    if m.window is None:
        return [(np.zeros(m.shape, dtypes[b - 1]), np.zeros(m.shape, np.float32)) for b in bidxs]
    if len(bidxs) == 1:
        arrays = [ds.read(bidxs[0], window=m.window)]
    elif all(dtypes[b - 1] == dtypes[bidxs[0] - 1] for b in bidxs):
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
    m = _tile_map(src.transform, src.gdal_crs, src.width, src.height, grid, cache)
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


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.setflags(write=False)
    return view


def warp_array(
    data: np.ndarray,
    mask: np.ndarray | None,
    src: Grid,
    grid: Grid,
    resampling: str = "nearest",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Values and mask of an in-memory 2-D band placed on ``grid``."""
    if (src.crs is None) != (grid.crs is None):
        raise InvalidArgument(
            f"cannot place an image in {'pixel coordinates' if src.crs is None else src.crs} on a grid in "
            f"{'pixel coordinates' if grid.crs is None else grid.crs}", value=str(grid.crs),
            allowed="a grid in the same kind of coordinates as the image",
        )
    if src == grid:  # the source's own arrays, read-only so that no output aliases them writeably
        return _read_only(data), None if mask is None else _read_only(mask)
    method = RESAMPLING[resampling]
    if method == Resampling.nearest and grid.width * grid.height <= TILE_SAMPLER_PIXELS:
        return sample_array(data, mask, src, grid)
    work = _work_dtype(data.dtype)
    alpha_src = np.full(data.shape, 255.0, np.float32) if mask is None else (mask * 255.0).astype(np.float32)
    src_stack = np.stack([data.astype(work, copy=False), alpha_src.astype(work)])
    dst = np.zeros((2, grid.height, grid.width), dtype=work)
    reproject(
        source=src_stack, destination=dst,
        src_transform=src.transform, src_crs=src.gdal_crs,
        dst_transform=grid.transform, dst_crs=grid.gdal_crs,
        resampling=method, src_alpha=2, dst_alpha=2, init_dest_nodata=False, num_threads=1,
    )
    m = np.clip(dst[1].astype(np.float32) / 255.0, 0.0, 1.0)
    return dst[0], m
