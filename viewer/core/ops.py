"""The operation registry: every graph operation's name, arity, argument check and band count.

Written once, like the Earth Engine client's function registry (``ee/apifunction.py``):
:mod:`viewer.core.image` builds nodes with these names, :mod:`viewer.core.evaluate` has one
``op_<name>`` method per entry of :data:`OPS`, and :mod:`viewer.core.serialize` checks a
graph read from JSON against :data:`OPS` before anything is evaluated. The UI reads the
name groups (:data:`COMPARISONS`, :data:`VIS_KEYS`, ...) from here too.

Display operations (:data:`DISPLAY_OPS`) turn bands into the three 8-bit ``vis-*`` bands a
map shows, with the alpha as their mask: ``visualize`` (Earth Engine's), ``classColors``
(a class band through its class table) and ``maskRamp`` (0..1 mask values on a ramp).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .graph import Node

__all__ = ["Op", "OPS", "BINARY", "UNARY", "COMPARISONS", "INTEGER_OPS", "ARITHMETIC", "FLOAT_UNARY",
           "RESAMPLING", "REDUCERS", "MAX_IMAGES", "VIS_KEYS", "VIS_PARAMS", "VIS_BANDS", "DISPLAY_OPS", "MAX_CLASS_ID", "check_args",
           "expected_bands"]

#: Binary operations of ``Image`` (``op`` of a ``binary`` node), in Earth Engine's names.
BINARY = ("add", "subtract", "multiply", "divide", "max", "min", "pow", "gt", "gte", "lt", "lte", "eq", "neq",
          "And", "Or", "bitwiseAnd", "bitwiseOr", "leftShift", "rightShift")
#: Binary operations whose result is 0 or 1 (a uint8 class band).
COMPARISONS = frozenset({"gt", "gte", "lt", "lte", "eq", "neq", "And", "Or"})
#: Binary operations on integers (int64 results).
INTEGER_OPS = frozenset({"bitwiseAnd", "bitwiseOr", "leftShift", "rightShift"})
#: Binary operations computed in the output type (so integers do not wrap).
ARITHMETIC = frozenset({"add", "subtract", "multiply", "pow", "max", "min"})
#: Unary operations of ``Image`` (``op`` of a ``unary`` node).
UNARY = ("Not", "abs", "sqrt", "log", "exp", "toFloat", "toDouble")
#: Unary operations with a float64 result.
FLOAT_UNARY = frozenset({"sqrt", "log", "exp"})
#: Resampling modes of ``Image.resample`` and of image layers.
RESAMPLING = ("nearest", "bilinear", "bicubic")
#: Keys of Earth Engine visualization parameters (``Map.addLayer(image, vis_params)``).
VIS_KEYS = ("bands", "min", "max", "gain", "bias", "gamma", "palette", "opacity")
#: Keys of the normalized visualization parameters a ``visualize`` node holds.
VIS_PARAMS = frozenset({"min", "max", "gamma", "palette", "opacity"})
#: Largest class id a class table may hold (a class lookup table has one entry per id up to it).
MAX_CLASS_ID = 65535
#: Per-pixel reducers of an ``ImageCollection`` (``reduce`` nodes).
REDUCERS = ("mosaic", "median", "mean", "min", "max", "sum", "count", "percentile")
#: Most images one collection reduction may combine.
MAX_IMAGES = 1000
#: Band names of a display operation's output.
VIS_BANDS = ("vis-red", "vis-green", "vis-blue")
#: Operations that produce the 8-bit RGB bands (and alpha as mask) a map shows.
DISPLAY_OPS = ("visualize", "classColors", "maskRamp")


def _node(v: Any) -> bool:
    return isinstance(v, Node)


def _ints(v: Any) -> bool:
    return isinstance(v, tuple) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _opacity(v: Any) -> bool:
    return _number(v) and 0 <= v <= 1


def _same_or_one(a: Node, b: Node) -> bool:
    return len(b.bands) in (1, len(a.bands))


def _rgb(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and len(v) == 3 and all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in v)


def _class_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_CLASS_ID


def _images(v: Any) -> bool:
    """A non-empty tuple of nodes with the same band names (a collection to reduce)."""
    return (isinstance(v, tuple) and 0 < len(v) <= MAX_IMAGES and all(_node(n) for n in v)
            and len({tuple(b.name for b in n.bands) for n in v}) == 1)


def _class_table(v: Any) -> bool:
    """A ``BandInfo.classes``-style table: entries of (key, value) pairs with an ``id`` and a ``color``."""
    if not isinstance(v, tuple):
        return False
    for e in v:
        if not (isinstance(e, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in e)):
            return False
        d = dict(e)
        if not (_class_id(d.get("id")) and isinstance(d.get("color"), str)):
            return False
    return True


def _vis(v: Any, n: int) -> bool:
    """Normalized ``visualize`` parameters for ``n`` bands (what :func:`normalize_vis` returns)."""
    if not isinstance(v, dict) or set(v) != VIS_PARAMS:
        return False
    ranges = [v["min"], v["max"], v["gamma"]]
    if not all(isinstance(r, (tuple, list)) and len(r) == n and all(_number(x) for x in r) for r in ranges):
        return False
    if any(lo == hi for lo, hi in zip(v["min"], v["max"])) or any(g <= 0 for g in v["gamma"]):
        return False
    palette = v["palette"]
    if palette is not None and not (n == 1 and isinstance(palette, (tuple, list)) and palette
                                    and all(_rgb(c) for c in palette)):
        return False
    return _opacity(v["opacity"])


@dataclass(frozen=True)
class Op:
    """One graph operation: ``arity`` (``None``: any), an argument ``check`` and its output band count."""

    name: str
    arity: int | None
    check: Callable[[tuple], bool]
    bands: Callable[[tuple], int | None]


def _op(name: str, arity: int | None, check: Callable[[tuple], bool],
        bands: Callable[[tuple], int | None] = lambda a: len(a[0].bands)) -> Op:
    return Op(name, arity, check, bands)


def _none(a: tuple) -> None:
    return None


#: Every operation a graph may hold (``source`` leaves are rebuilt from the catalog, not checked here).
OPS: dict[str, Op] = {op.name: op for op in (
    _op("source", 2, lambda a: True, _none),
    _op("array", 1, lambda a: isinstance(a[0], str), _none),
    _op("constant", None, lambda a: all(_number(v) for v in a), len),
    _op("select", 2, lambda a: _node(a[0]) and _ints(a[1]) and all(0 <= i < len(a[0].bands) for i in a[1]),
        lambda a: len(a[1])),
    _op("addBands", 3, lambda a: _node(a[0]) and _node(a[1]) and _ints(a[2])
        and all(0 <= i < len(a[0].bands) + len(a[1].bands) for i in a[2]), lambda a: len(a[2])),
    _op("resample", 2, lambda a: _node(a[0]) and a[1] in RESAMPLING),
    _op("mask_get", 1, lambda a: _node(a[0])),
    _op("selfMask", 1, lambda a: _node(a[0])),
    _op("normalizedDifference", 1, lambda a: _node(a[0]) and len(a[0].bands) >= 2, lambda a: 1),
    _op("mask_set", 2, lambda a: _node(a[0]) and _node(a[1]) and _same_or_one(a[0], a[1])),
    _op("updateMask", 2, lambda a: _node(a[0]) and _node(a[1]) and _same_or_one(a[0], a[1])),
    _op("unmask", 3, lambda a: _node(a[0]) and _node(a[1]) and isinstance(a[2], bool) and _same_or_one(a[0], a[1])),
    _op("clip", 2, lambda a: _node(a[0]) and isinstance(a[1], dict)),
    _op("binary", 3, lambda a: a[0] in BINARY and _node(a[1]) and _node(a[2])
        and (len(a[1].bands) == len(a[2].bands) or 1 in (len(a[1].bands), len(a[2].bands))),
        lambda a: max(len(a[1].bands), len(a[2].bands))),
    _op("unary", 2, lambda a: a[0] in UNARY and _node(a[1]), lambda a: len(a[1].bands)),
    # collections: (reducer, images with the same band names, percentiles) | (images, quality band index)
    _op("reduce", 3, lambda a: a[0] in REDUCERS and _images(a[1]) and isinstance(a[2], tuple)
        and (a[0] == "percentile") == bool(a[2]) and all(_number(p) and 0 <= p <= 100 for p in a[2]),
        lambda a: len(a[1][0].bands) * max(1, len(a[2]))),
    _op("qualityMosaic", 2, lambda a: _images(a[0]) and _ints((a[1],)) and 0 <= a[1] < len(a[0][0].bands),
        lambda a: len(a[0][0].bands)),
    # display: (image, normalized vis params) | (class band, table, background, hidden, opacity)
    # | (mask bands, palette of (r, g, b), opacity)
    _op("visualize", 2, lambda a: _node(a[0]) and len(a[0].bands) in (1, 3) and _vis(a[1], len(a[0].bands)),
        lambda a: 3),
    _op("classColors", 5, lambda a: _node(a[0]) and len(a[0].bands) == 1 and _class_table(a[1])
        and (a[2] is None or _class_id(a[2])) and _ints(a[3]) and _opacity(a[4]), lambda a: 3),
    _op("maskRamp", 3, lambda a: _node(a[0]) and isinstance(a[1], tuple) and len(a[1]) >= 1
        and all(_rgb(c) for c in a[1]) and _opacity(a[2]), lambda a: 3),
)}


def check_args(op: str, args: Any) -> bool:
    """Do ``args`` have the shape ``op`` takes (arity and argument types)?"""
    spec = OPS.get(op)
    if spec is None or not isinstance(args, tuple) or (spec.arity is not None and len(args) != spec.arity):
        return False
    try:
        return bool(spec.check(args))
    except (TypeError, IndexError, KeyError, ValueError, AttributeError):
        return False


def expected_bands(op: str, args: tuple) -> int | None:
    """How many bands ``op`` outputs for ``args`` (``None``: not fixed by its inputs)."""
    return OPS[op].bands(args)
