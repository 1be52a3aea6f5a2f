"""The one evaluator: turn an image graph into band values and masks on a pixel grid.

Tiles, view statistics, pixel fetch and downloads all call :func:`evaluate`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from pyproj import Transformer
from rasterio.errors import RasterioError
from rasterio.features import geometry_mask
from rasterio.warp import transform_geom

from .errors import InvalidArgument, ReadError, SourceChanged, SourceUnavailable
from .graph import Node
from .grid import Grid
from .read import read_bands, warp_array
from .sources import get_array

__all__ = ["Layer", "evaluate", "BINARY_OPS", "UNARY_OPS"]

log = logging.getLogger("viewer.core")


@dataclass
class Layer:
    """One evaluated band: values, mask (float32 in [0, 1]; None = valid) and lazy footprint."""

    values: np.ndarray
    mask: np.ndarray | None
    footprint: Callable[[], np.ndarray | None]

    def mask_or_ones(self) -> np.ndarray:
        return np.ones(self.values.shape, np.float32) if self.mask is None else self.mask


def _everywhere() -> None:
    return None


def _memo(fn: Callable[[], np.ndarray | None]) -> Callable[[], np.ndarray | None]:
    cache: list = []

    def wrapped():
        if not cache:
            cache.append(fn())
        return cache[0]

    return wrapped


def _footprint_of(src: Grid, grid: Grid) -> Callable[[], np.ndarray | None]:
    """Lazy boolean: which grid pixel centres fall inside the source grid's pixel area."""

    def compute():
        rows, cols = np.mgrid[0:grid.height, 0:grid.width]
        x, y = grid.transform @ (cols + 0.5, rows + 0.5)
        if src.crs is not None and grid.crs is not None and src.crs != grid.crs:
            x, y = Transformer.from_crs(grid.crs, src.crs, always_xy=True).transform(x, y)
        c, r = ~src.transform @ (np.asarray(x), np.asarray(y))
        inside = (c >= 0) & (c < src.width) & (r >= 0) & (r < src.height)
        return None if inside.all() else inside

    return _memo(compute)


def _and_footprints(a, b):
    def compute():
        fa, fb = a(), b()
        if fa is None:
            return fb
        return fa if fb is None else fa & fb
    return _memo(compute)


def _or_footprints(a, b):
    def compute():
        fa, fb = a(), b()
        if fa is None or fb is None:
            return None
        return fa | fb
    return _memo(compute)


def _mul_masks(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a * b


def _min_masks(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return np.minimum(a, b)


def _as_mask(layer: Layer) -> np.ndarray | None:
    """A layer's values used as a mask: clipped to [0, 1], zero where the layer is masked."""
    v = layer.values
    if v.dtype == np.uint8 and layer.mask is None and v.max(initial=0) <= 1:
        m = v.astype(np.float32)
    else:
        m = np.clip(v, 0, 1).astype(np.float32, copy=False)
        m = np.where(np.isnan(m), 0, m).astype(np.float32, copy=False)
    if layer.mask is not None:
        m = m * layer.mask
    return None if m.min(initial=1) >= 1 else m


def _broadcast(layers: list[Layer], n: int) -> list[Layer]:
    return layers * n if len(layers) == 1 else layers


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

_ARITHMETIC = {"add", "subtract", "multiply", "pow", "max", "min"}

UNARY_OPS: dict[str, Callable] = {
    "Not": lambda a: a == 0,
    "abs": np.abs,
    "sqrt": np.sqrt,
    "log": np.log,
    "exp": np.exp,
    "toFloat": lambda a: a.astype(np.float32),
    "toDouble": lambda a: a.astype(np.float64),
}


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


class _Evaluator:
    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.memo: dict[tuple[str, str], list[Layer]] = {}

    def run(self, node: Node, resampling: str) -> list[Layer]:
        key = (node.key, resampling)
        if key not in self.memo:
            with np.errstate(all="ignore"):
                self.memo[key] = getattr(self, "op_" + node.op)(node, resampling)
        return self.memo[key]

    # leaves -----------------------------------------------------------------------------
    def op_source(self, node: Node, resampling: str) -> list[Layer]:
        return self._read(node, range(len(node.bands)), resampling)

    def _read(self, node: Node, wanted: Iterable[int], resampling: str) -> list[Layer]:
        """The ``wanted`` bands of a source node; bands of one file that share resampling in one warp."""
        wanted = list(wanted)
        groups: dict[tuple, list[int]] = {}
        for i in wanted:
            path, _bidx, overviews, identity = node.args[1][i]
            continuous = node.bands[i].kind == "continuous"
            method = resampling if continuous else "nearest"
            use_ovr = continuous or overviews in ("nearest", "mode")
            groups.setdefault((path, identity, method, use_ovr), []).append(i)
        layers: dict[int, Layer] = {}
        for (path, identity, method, use_ovr), members in groups.items():
            bidxs = tuple(node.args[1][i][1] for i in members)
            try:
                read = read_bands(path, bidxs, self.grid, method, use_ovr, identity)
            except (ReadError, RasterioError, OSError) as exc:
                raise _unreadable(node, members, exc) from None
            for i, (values, mask) in zip(members, read):
                layers[i] = Layer(values, mask, _footprint_of(node.bands[i].grid, self.grid))
        return [layers[i] for i in wanted]

    def op_array(self, node: Node, resampling: str) -> list[Layer]:
        data = get_array(node.args[0])
        out = []
        for i, info in enumerate(node.bands):
            method = resampling if info.kind == "continuous" else "nearest"
            m = None if data.mask is None else data.mask[i]
            values, mask = warp_array(data.values[i], m, data.grid, self.grid, method)
            if mask is not None and mask.min(initial=1) >= 1:
                mask = None
            out.append(Layer(values, mask, _footprint_of(data.grid, self.grid)))
        return out

    def op_constant(self, node: Node, resampling: str) -> list[Layer]:
        return [Layer(np.full(self.grid.shape, v, dtype=np.dtype(b.dtype)), None, _everywhere)
                for v, b in zip(node.args, node.bands)]

    # band bookkeeping -------------------------------------------------------------------
    def op_select(self, node: Node, resampling: str) -> list[Layer]:
        if node.args[0].op == "source":  # read only the selected bands
            return self._read(node.args[0], node.args[1], resampling)
        layers = self.run(node.args[0], resampling)
        return [layers[i] for i in node.args[1]]

    def op_addBands(self, node: Node, resampling: str) -> list[Layer]:
        a, b = self.run(node.args[0], resampling), self.run(node.args[1], resampling)
        both = a + b
        return [both[i] for i in node.args[2]]

    def op_resample(self, node: Node, resampling: str) -> list[Layer]:
        return self.run(node.args[0], node.args[1])

    # masks ------------------------------------------------------------------------------
    def op_mask_get(self, node: Node, resampling: str) -> list[Layer]:
        return [Layer(l.mask_or_ones(), None, l.footprint) for l in self.run(node.args[0], resampling)]

    def op_mask_set(self, node: Node, resampling: str) -> list[Layer]:
        layers = self.run(node.args[0], resampling)
        masks = _broadcast(self.run(node.args[1], resampling), len(layers))
        out = []
        for l, m in zip(layers, masks):
            new = _as_mask(m)
            values = l.values
            if l.mask is not None:  # pixels that were masked and are now unmasked become 0
                values = np.where(l.mask > 0, values, 0).astype(values.dtype, copy=False)
            out.append(Layer(values, new, l.footprint))
        return out

    def op_updateMask(self, node: Node, resampling: str) -> list[Layer]:
        layers = self.run(node.args[0], resampling)
        masks = _broadcast(self.run(node.args[1], resampling), len(layers))
        return [Layer(l.values, _mul_masks(l.mask, _as_mask(m)), l.footprint) for l, m in zip(layers, masks)]

    def op_selfMask(self, node: Node, resampling: str) -> list[Layer]:
        return [Layer(l.values, _mul_masks(l.mask, _as_mask(Layer(l.values, None, l.footprint))), l.footprint)
                for l in self.run(node.args[0], resampling)]

    def op_unmask(self, node: Node, resampling: str) -> list[Layer]:
        layers = self.run(node.args[0], resampling)
        fills = _broadcast(self.run(node.args[1], resampling), len(layers))
        same_footprint = node.args[2]
        out = []
        for l, f, info in zip(layers, fills, node.bands):
            if l.mask is None:
                out.append(l)
                continue
            hole = l.mask <= 0
            values = np.where(hole, f.values, l.values).astype(np.dtype(info.dtype), copy=False)
            mask = np.where(hole, f.mask_or_ones(), l.mask).astype(np.float32, copy=False)
            if same_footprint:
                fp = l.footprint()
                if fp is not None:
                    mask = np.where(fp, mask, 0).astype(np.float32, copy=False)
                footprint = l.footprint
            else:
                footprint = _or_footprints(l.footprint, f.footprint)
            out.append(Layer(values, None if mask.min(initial=1) >= 1 else mask, footprint))
        return out

    def op_clip(self, node: Node, resampling: str) -> list[Layer]:
        layers = self.run(node.args[0], resampling)
        geometry = node.args[1]
        g = self.grid
        if g.crs is not None:
            geometry = transform_geom("EPSG:4326", g.crs, geometry)
        inside = geometry_mask([geometry], out_shape=g.shape, transform=g.transform, invert=True)
        inside_f = inside.astype(np.float32)
        fp = lambda: inside  # noqa: E731
        return [Layer(l.values, _mul_masks(l.mask, inside_f), _and_footprints(l.footprint, fp)) for l in layers]

    # arithmetic -------------------------------------------------------------------------
    def op_binary(self, node: Node, resampling: str) -> list[Layer]:
        name = node.args[0]
        a, b = self.run(node.args[1], resampling), self.run(node.args[2], resampling)
        n = max(len(a), len(b))
        a, b = _broadcast(a, n), _broadcast(b, n)
        fn = BINARY_OPS[name]
        out = []
        for la, lb, info in zip(a, b, node.bands):
            x, y = la.values, lb.values
            if name in _ARITHMETIC:  # compute in the output type so integers do not wrap
                x, y = x.astype(info.dtype, copy=False), y.astype(info.dtype, copy=False)
            v = fn(x, y)
            mask = _min_masks(la.mask, lb.mask)
            if name == "divide":
                bad = (lb.values == 0) | ~np.isfinite(v)
                if bad.any():
                    v = np.where(bad, 0, v)
                    mask = _mul_masks(mask, (~bad).astype(np.float32))
            out.append(Layer(v.astype(np.dtype(info.dtype), copy=False), mask,
                             _and_footprints(la.footprint, lb.footprint)))
        return out

    def op_unary(self, node: Node, resampling: str) -> list[Layer]:
        fn = UNARY_OPS[node.args[0]]
        return [Layer(fn(l.values).astype(np.dtype(info.dtype), copy=False), l.mask, l.footprint)
                for l, info in zip(self.run(node.args[1], resampling), node.bands)]

    def op_normalizedDifference(self, node: Node, resampling: str) -> list[Layer]:
        layers = self.run(node.args[0], resampling)
        a, b = layers[0], layers[1]
        av, bv = a.values.astype(np.float32), b.values.astype(np.float32)
        den = av + bv
        nd = np.where(den != 0, (av - bv) / np.where(den == 0, 1, den), 0).astype(np.float32)
        mask = _min_masks(a.mask, b.mask)
        if (den == 0).any():
            mask = _mul_masks(mask, (den != 0).astype(np.float32))
        return [Layer(nd, mask, _and_footprints(a.footprint, b.footprint))]

    def op_visualize(self, node: Node, resampling: str) -> list[Layer]:
        from .visualize import visualize_layers

        return visualize_layers(self.run(node.args[0], resampling), node.args[1])


def evaluate(node: Node, grid: Grid, resampling: str = "nearest") -> list[Layer]:
    """Evaluate every band of ``node`` on ``grid`` (one :class:`Layer` per band)."""
    if not isinstance(grid, Grid):
        raise InvalidArgument(f"grid {grid!r} must be a Grid", value=grid)
    return _Evaluator(grid).run(node, resampling)
