"""The image graph as data: immutable nodes with eagerly known band metadata."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .errors import LimitExceeded
from .grid import Grid, crs_code

__all__ = ["BandInfo", "Node", "canonical", "MAX_DEPTH"]

#: Longest chain of operations a graph may have (evaluation recurses along it).
MAX_DEPTH = 200


@dataclass(frozen=True)
class BandInfo:
    """What is known about one band without reading pixels."""

    name: str
    dtype: str
    grid: Grid | None  # native grid; None for constants (valid everywhere)
    kind: str = "continuous"  # continuous | class | bitmask | mask
    classes: tuple = ()  # ((("color", ..), ("id", ..), ("name", ..)), ...) for class bands
    units: str | None = None
    description: str | None = None

    def renamed(self, name: str) -> "BandInfo":
        return replace(self, name=name)

    def info(self) -> dict:
        """The band's entry in ``getInfo()['bands']``, Earth Engine style."""
        dt = np.dtype(self.dtype)
        if dt.kind in "ui":
            ii = np.iinfo(dt)
            data_type = {"type": "PixelType", "precision": "int", "min": int(ii.min), "max": int(ii.max)}
        else:
            data_type = {"type": "PixelType", "precision": "double" if dt.itemsize == 8 else "float"}
        data_type["dtype"] = dt.name
        out: dict[str, Any] = {"id": self.name, "data_type": data_type, "kind": self.kind}
        if self.grid is not None:
            out["crs"] = crs_code(self.grid.crs)
            out["crs_transform"] = list(self.grid.transform)[:6]
            out["dimensions"] = [self.grid.width, self.grid.height]
        else:
            out["crs"] = "EPSG:4326"
            out["crs_transform"] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        if self.classes:
            out["classes"] = [dict(c) for c in self.classes]
        if self.units:
            out["units"] = self.units
        if self.description:
            out["description"] = self.description
        return out


def canonical(value: Any) -> Any:
    """A JSON-able, order-stable form of a node argument (for content addressing)."""
    if isinstance(value, Node):
        return {"node": value.key}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, Grid):
        return {"grid": value.to_dict()}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, float) and value != value:
        return "NaN"
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


class Node:
    """One operation of the graph. ``args`` may hold other nodes; ``bands`` is its output.

    ``held`` is data the node keeps alive (an in-memory array's bands): not part of its key, not
    pickled.
    """

    __slots__ = ("op", "args", "bands", "key", "depth", "held")

    def __init__(self, op: str, args: tuple, bands: tuple[BandInfo, ...]) -> None:
        self.held = None
        self.op = op
        self.args = args
        self.bands = tuple(bands)
        self.depth = 1 + max((n.depth for n in _child_nodes(args)), default=0)
        if self.depth > MAX_DEPTH:
            raise LimitExceeded(f"{op}: the graph would be {self.depth} operations deep, over the limit of "
                                f"{MAX_DEPTH}; evaluate intermediate results (computePixels) or simplify",
                                value=self.depth, allowed=MAX_DEPTH)
        text = json.dumps([op, canonical(args), [canonical(b.__dict__) for b in self.bands]],
                          sort_keys=True, separators=(",", ":"))
        self.key = hashlib.sha256(text.encode()).hexdigest()

    def native_grid(self) -> Grid | None:
        """The native grid of the first band that has one (``None`` for constants)."""
        return next((b.grid for b in self.bands if b.grid is not None), None)

    def __repr__(self) -> str:
        return f"Node({self.op}, bands={[b.name for b in self.bands]})"

    def __getstate__(self):
        return (self.op, self.args, self.bands, self.key, self.depth)

    def __setstate__(self, state):
        self.op, self.args, self.bands, self.key, self.depth = state
        self.held = None


def _child_nodes(value: Any) -> list[Node]:
    if isinstance(value, Node):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _child_nodes(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _child_nodes(v)]
    return []
