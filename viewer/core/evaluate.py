"""The one evaluator: turn an image graph into a :class:`~viewer.core.raster.Raster` on a pixel grid.

Tiles, view statistics, pixel fetch and downloads all call :func:`evaluate`; a map layer's
display (``visualize``, ``classColors``, ``maskRamp``: :mod:`viewer.core.visualize`) is a
node of the same graph. There is one ``op_<name>`` method per operation of
:data:`viewer.core.ops.OPS`.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Sequence

import numpy as np
from pyproj import Transformer
from rasterio.errors import RasterioError
from rasterio.features import geometry_mask
from rasterio.warp import transform_geom

from .cache import memoized
from .errors import InvalidArgument, ReadError, SourceChanged, SourceUnavailable
from .graph import Node
from .grid import Grid, center_long, crs_token, same_crs, split_at_antimeridian, wrap_longitudes
from .ops import ARITHMETIC, BINARY, UNARY
from .raster import EVERYWHERE, Band, Footprint, Raster
from .read import read_bands, warp_array
from .reducers import quality_order, reduce_stack, take_by_index
from .sources import get_array
from .visualize import color_classes, mask_ramp, visualize

__all__ = ["evaluate", "BINARY_OPS", "UNARY_OPS"]

log = logging.getLogger("viewer.core")


# every tile of a clipped layer clips by the same geometry in the same CRS
@memoized("clip geometries in a CRS", 256, key=lambda node, crs: (node.key, crs_token(crs)))
def _clip_geometry(node: Node, crs) -> dict:
    """A ``clip`` node's lon/lat geometry in ``crs``, cut at the antimeridian first."""
    return transform_geom("EPSG:4326", crs, split_at_antimeridian(node.args[1]))


def _footprint_of(src: Grid, grid: Grid) -> Footprint:
    """Lazy boolean: which grid pixel centres fall inside the source grid's pixel area."""

    def compute():
        rows, cols = np.mgrid[0:grid.height, 0:grid.width]
        x, y = grid.transform @ (cols + 0.5, rows + 0.5)
        if src.crs is not None and grid.crs is not None and not same_crs(src.crs, grid.crs):
            x, y = Transformer.from_crs(grid.crs, src.crs, always_xy=True).transform(x, y)
            center = center_long(src.crs, src.transform, src.width, src.height)
            if center is not None:  # a geographic source across the antimeridian, as GDAL wraps it
                x = wrap_longitudes(x, center)
        c, r = ~src.transform @ (np.asarray(x), np.asarray(y))
        inside = (c >= 0) & (c < src.width) & (r >= 0) & (r < src.height)
        return None if inside.all() else inside

    return Footprint(compute)


def _broadcast(raster: Sequence[Band], n: int) -> Sequence[Band]:
    return tuple(raster) * n if len(raster) == 1 else raster


#: numpy implementations of :data:`viewer.core.ops.BINARY`.
BINARY_OPS: dict[str, Callable] = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply,
    "divide": lambda a, b: np.true_divide(a, b, dtype=np.float64),
    "max": np.maximum, "min": np.minimum, "pow": np.power,
    "gt": np.greater, "gte": np.greater_equal, "lt": np.less, "lte": np.less_equal,
    "eq": np.equal, "neq": np.not_equal,
    "And": lambda a, b: np.logical_and(a != 0, b != 0),
    "Or": lambda a, b: np.logical_or(a != 0, b != 0),
    "bitwiseAnd": lambda a, b: np.bitwise_and(a.astype(np.int64), b.astype(np.int64)),
    "bitwiseOr": lambda a, b: np.bitwise_or(a.astype(np.int64), b.astype(np.int64)),
    "leftShift": lambda a, b: np.left_shift(a.astype(np.int64), b.astype(np.int64)),
    "rightShift": lambda a, b: np.right_shift(a.astype(np.int64), b.astype(np.int64)),
}

#: numpy implementations of :data:`viewer.core.ops.UNARY`.
UNARY_OPS: dict[str, Callable] = {
    "Not": lambda a: a == 0,
    "abs": np.abs,
    "sqrt": np.sqrt,
    "log": np.log,
    "exp": np.exp,
    "toFloat": lambda a: a.astype(np.float32),
    "toDouble": lambda a: a.astype(np.float64),
}
assert set(BINARY_OPS) == set(BINARY) and set(UNARY_OPS) == set(UNARY), "ops registry and evaluator disagree"


def _unreadable(node: Node, members: list[int], exc: BaseException) -> SourceUnavailable:
    """A typed error naming the asset and bands (never the server path); details go to the log."""
    asset = node.args[0] or "file source"
    bands = [node.bands[i].name for i in members]
    if isinstance(exc, SourceUnavailable):
        why = "its file changed since this layer was made; reload the page or rebuild the image"
        err: SourceUnavailable = SourceChanged(f"asset {asset!r} bands {bands}: {why}", value=asset)
    else:
        log.warning("reading %s bands %s failed: %s", asset, bands, exc)
        why = "its file is missing, truncated or corrupt"
        err = SourceUnavailable(f"asset {asset!r} bands {bands} cannot be read: {why}", value=asset)
    return err


def _union_footprint(bands: Sequence[Band]) -> Footprint:
    footprint = bands[0].footprint
    for b in bands[1:]:
        footprint = footprint | b.footprint
    return footprint


class _Evaluator:
    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.memo: dict[tuple[str, str], Raster] = {}

    def run(self, node: Node, resampling: str) -> Raster:
        key = (node.key, resampling)
        if key not in self.memo:
            with np.errstate(all="ignore"):
                bands = getattr(self, "op_" + node.op)(node, resampling)
            self.memo[key] = Raster(tuple(bands), self.grid, node.bands)
        return self.memo[key]

    # leaves -----------------------------------------------------------------------------
    def op_source(self, node: Node, resampling: str) -> list[Band]:
        return self._read(node, range(len(node.bands)), resampling)

    def _read(self, node: Node, wanted: Iterable[int], resampling: str) -> list[Band]:
        """The ``wanted`` bands of a source node; bands of one file that share resampling in one warp."""
        wanted = list(wanted)
        groups: dict[tuple, list[int]] = {}
        for i in wanted:
            path, _bidx, overviews, identity = node.args[1][i]
            continuous = node.bands[i].kind == "continuous"
            method = resampling if continuous else "nearest"
            use_ovr = continuous or overviews in ("nearest", "mode")
            groups.setdefault((path, identity, method, use_ovr), []).append(i)
        bands: dict[int, Band] = {}
        for (path, identity, method, use_ovr), members in groups.items():
            bidxs = tuple(node.args[1][i][1] for i in members)
            try:
                read = read_bands(path, bidxs, self.grid, method, use_ovr, identity)
            except (ReadError, RasterioError, OSError) as exc:
                raise _unreadable(node, members, exc) from None
            for i, (values, mask) in zip(members, read):
                bands[i] = Band(values, mask, _footprint_of(node.bands[i].grid, self.grid))
        return [bands[i] for i in wanted]

    def op_array(self, node: Node, resampling: str) -> list[Band]:
        data = get_array(node.args[0])
        out = []
        for info, band in zip(node.bands, data):
            method = resampling if info.kind == "continuous" else "nearest"
            values, mask = warp_array(band.values, band.mask, data.grid, self.grid, method)
            if mask is not None and mask.min(initial=1) >= 1:
                mask = None
            out.append(Band(values, mask, _footprint_of(data.grid, self.grid)))
        return out

    def op_constant(self, node: Node, resampling: str) -> list[Band]:
        return [Band(np.full(self.grid.shape, v, dtype=np.dtype(b.dtype)), None, EVERYWHERE)
                for v, b in zip(node.args, node.bands)]

    # band bookkeeping -------------------------------------------------------------------
    def op_select(self, node: Node, resampling: str) -> list[Band]:
        if node.args[0].op == "source":  # read only the selected bands
            return self._read(node.args[0], node.args[1], resampling)
        raster = self.run(node.args[0], resampling)
        return [raster[i] for i in node.args[1]]

    def op_addBands(self, node: Node, resampling: str) -> list[Band]:
        both = self.run(node.args[0], resampling).bands + self.run(node.args[1], resampling).bands
        return [both[i] for i in node.args[2]]

    def op_resample(self, node: Node, resampling: str) -> Raster:
        return self.run(node.args[0], node.args[1])

    # masks ------------------------------------------------------------------------------
    def op_mask_get(self, node: Node, resampling: str) -> list[Band]:
        return [Band(b.mask_or_ones(), None, b.footprint) for b in self.run(node.args[0], resampling)]

    def op_mask_set(self, node: Node, resampling: str) -> list[Band]:
        raster = self.run(node.args[0], resampling)
        masks = _broadcast(self.run(node.args[1], resampling), len(raster))
        out = []
        for b, m in zip(raster, masks):
            values = b.values
            if b.mask is not None:  # pixels that were masked and are now unmasked become 0
                values = np.where(b.mask > 0, values, 0).astype(values.dtype, copy=False)
            mask = m.as_mask()
            fp = b.footprint()  # Earth Engine: the output keeps the input's footprint
            if fp is not None and not fp.all():
                mask = np.where(fp, 1 if mask is None else mask, 0).astype(np.float32, copy=False)
            out.append(Band(values, mask, b.footprint))
        return out

    def op_updateMask(self, node: Node, resampling: str) -> list[Band]:
        raster = self.run(node.args[0], resampling)
        masks = _broadcast(self.run(node.args[1], resampling), len(raster))
        return [b.narrowed(m.as_mask()) for b, m in zip(raster, masks)]

    def op_selfMask(self, node: Node, resampling: str) -> list[Band]:
        return [b.narrowed(Band(b.values, None, b.footprint).as_mask()) for b in self.run(node.args[0], resampling)]

    def op_unmask(self, node: Node, resampling: str) -> list[Band]:
        raster = self.run(node.args[0], resampling)
        fills = _broadcast(self.run(node.args[1], resampling), len(raster))
        same_footprint = node.args[2]
        out = []
        for b, f, info in zip(raster, fills, node.bands):
            if b.mask is None:
                out.append(b.with_values(b.values.astype(np.dtype(info.dtype), copy=False)))
                continue
            hole = b.mask <= 0
            values = np.where(hole, f.values, b.values).astype(np.dtype(info.dtype), copy=False)
            mask = np.where(hole, f.mask_or_ones(), b.mask).astype(np.float32, copy=False)
            if same_footprint:
                fp = b.footprint()
                if fp is not None:
                    mask = np.where(fp, mask, 0).astype(np.float32, copy=False)
                footprint = b.footprint
            else:
                footprint = b.footprint | f.footprint
            out.append(Band(values, None if mask.min(initial=1) >= 1 else mask, footprint))
        return out

    def op_clip(self, node: Node, resampling: str) -> list[Band]:
        raster = self.run(node.args[0], resampling)
        g = self.grid
        geometry = node.args[1] if g.crs is None else _clip_geometry(node, g.crs)
        inside = geometry_mask([geometry], out_shape=g.shape, transform=g.transform, invert=True)
        inside_f = inside.astype(np.float32)
        fp = Footprint(lambda: inside)
        return [Band(b.values, b.narrowed(inside_f).mask, b.footprint & fp) for b in raster]

    # arithmetic -------------------------------------------------------------------------
    def op_binary(self, node: Node, resampling: str) -> list[Band]:
        name = node.args[0]
        a, b = self.run(node.args[1], resampling), self.run(node.args[2], resampling)
        n = max(len(a), len(b))
        a, b = _broadcast(a, n), _broadcast(b, n)
        fn = BINARY_OPS[name]
        out = []
        for la, lb, info in zip(a, b, node.bands):
            x, y = la.values, lb.values
            if name in ARITHMETIC:  # compute in the output type so integers do not wrap
                x, y = x.astype(info.dtype, copy=False), y.astype(info.dtype, copy=False)
            v = fn(x, y)
            band = Band(v, la.min_mask(lb), la.footprint & lb.footprint)
            if name == "divide":
                bad = (lb.values == 0) | ~np.isfinite(v)
                if bad.any():
                    v = np.where(bad, 0, v)
                    band = band.narrowed((~bad).astype(np.float32))
            out.append(band.with_values(v.astype(np.dtype(info.dtype), copy=False)))
        return out

    def op_unary(self, node: Node, resampling: str) -> list[Band]:
        fn = UNARY_OPS[node.args[0]]
        return [b.with_values(fn(b.values).astype(np.dtype(info.dtype), copy=False))
                for b, info in zip(self.run(node.args[1], resampling), node.bands)]

    def op_normalizedDifference(self, node: Node, resampling: str) -> list[Band]:
        raster = self.run(node.args[0], resampling)
        a, b = raster[0], raster[1]
        av, bv = a.values.astype(np.float32), b.values.astype(np.float32)
        den = av + bv
        nd = np.where(den != 0, (av - bv) / np.where(den == 0, 1, den), 0).astype(np.float32)
        band = Band(nd, a.min_mask(b), a.footprint & b.footprint)
        if (den == 0).any():
            band = band.narrowed((den != 0).astype(np.float32))
        return [band]

    # collections ------------------------------------------------------------------------
    def op_reduce(self, node: Node, resampling: str) -> list[Band]:
        name, images, percentiles = node.args
        stacks = [self.run(n, resampling) for n in images]
        out = []
        for i in range(len(stacks[0])):
            bands = [s[i] for s in stacks]
            footprint = _union_footprint(bands)
            for p in percentiles or (None,):
                values, mask = reduce_stack(name, [b.values for b in bands], [b.mask for b in bands], p)
                out.append(Band(values.astype(np.dtype(node.bands[len(out)].dtype), copy=False), mask, footprint))
        return out

    def op_qualityMosaic(self, node: Node, resampling: str) -> list[Band]:
        images, quality = node.args
        stacks = [self.run(n, resampling) for n in images]
        index, any_valid = quality_order([s[quality].values for s in stacks], [s[quality].mask for s in stacks])
        out = []
        for i in range(len(stacks[0])):
            bands = [s[i] for s in stacks]
            footprint = _union_footprint(bands)
            values, mask = take_by_index([b.values for b in bands], [b.mask for b in bands], index, any_valid)
            out.append(Band(values, mask, footprint))
        return out

    # display ----------------------------------------------------------------------------
    def op_visualize(self, node: Node, resampling: str) -> Raster:
        return visualize(self.run(node.args[0], resampling), node.args[1])

    def op_classColors(self, node: Node, resampling: str) -> Raster:
        return color_classes(self.run(node.args[0], resampling), *node.args[1:])

    def op_maskRamp(self, node: Node, resampling: str) -> Raster:
        return mask_ramp(self.run(node.args[0], resampling), *node.args[1:])


def evaluate(node: Node, grid: Grid, resampling: str = "nearest") -> Raster:
    """Evaluate every band of ``node`` on ``grid`` (``raster[i]`` is band ``i``)."""
    if not isinstance(grid, Grid):
        raise InvalidArgument(f"grid {grid!r} must be a Grid", value=grid)
    return _Evaluator(grid).run(node, resampling)
