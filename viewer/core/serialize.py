"""Image graphs as JSON: ``to_json(image)`` and ``from_json(doc)`` (content keys preserved).

The JSON is a deduplicated DAG: ``{"viewerGraph": 1, "result": key, "nodes": {key: node}}``
with each node ``{"op", "args", "bands"}`` and references ``{"$node": key}``. Loading checks
every node's content key, rebuilds catalog sources from the catalog (never from paths in
the JSON) and opens files only when ``allow_files=True``; so a request that carries a
graph (``computePixels({"expression": doc})``) cannot make the viewer read other files.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from affine import Affine

from .errors import InvalidArgument
from .graph import BandInfo, Node
from .grid import Grid, parse_crs
from .image import Image
from .sources import asset_node, get_array

__all__ = ["to_json", "from_json", "GRAPH_VERSION"]

GRAPH_VERSION = 1
_OPS = {"source", "array", "constant", "select", "addBands", "resample", "mask_get", "mask_set", "updateMask",
        "selfMask", "unmask", "clip", "binary", "unary", "normalizedDifference", "visualize"}


def _band_json(b: BandInfo) -> dict:
    return {"name": b.name, "dtype": b.dtype, "grid": b.grid.to_dict() if b.grid is not None else None,
            "kind": b.kind, "classes": [dict(c) for c in b.classes], "units": b.units,
            "description": b.description}


def _band_from_json(d: dict) -> BandInfo:
    grid = None
    if d.get("grid") is not None:
        g = d["grid"]
        t = g["affineTransform"]
        grid = Grid(parse_crs(g.get("crsCode")), Affine(t["scaleX"], t["shearX"], t["translateX"], t["shearY"],
                                                         t["scaleY"], t["translateY"]),
                    int(g["dimensions"]["width"]), int(g["dimensions"]["height"]))
    classes = tuple(tuple(sorted(c.items())) for c in d.get("classes") or [])
    return BandInfo(d["name"], np.dtype(d["dtype"]).name, grid, d.get("kind", "continuous"), classes,
                    d.get("units"), d.get("description"))


def _arg_json(value: Any, nodes: dict) -> Any:
    if isinstance(value, Node):
        _add(value, nodes)
        return {"$node": value.key}
    if isinstance(value, (list, tuple)):
        return [_arg_json(v, nodes) for v in value]
    if isinstance(value, dict):
        return {str(k): _arg_json(v, nodes) for k, v in value.items()}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _add(node: Node, nodes: dict) -> None:
    if node.key in nodes:
        return
    nodes[node.key] = None  # reserve (keeps children after parents stable enough for reading)
    nodes[node.key] = {"op": node.op, "args": _arg_json(node.args, nodes),
                       "bands": [_band_json(b) for b in node.bands]}


def to_json(image: Image | Node) -> dict:
    """A JSON-able document of the image graph."""
    node = image.node if isinstance(image, Image) else image
    nodes: dict = {}
    _add(node, nodes)
    return {"viewerGraph": GRAPH_VERSION, "result": node.key, "nodes": nodes}


def _arg_from_json(value: Any, load) -> Any:
    if isinstance(value, dict) and set(value) == {"$node"}:
        return load(value["$node"])
    if isinstance(value, list):
        return tuple(_arg_from_json(v, load) for v in value)
    if isinstance(value, dict):
        return {k: _arg_from_json(v, load) for k, v in value.items()}
    return value


def from_json(doc: Any, *, allow_files: bool = True) -> Image:
    """Rebuild an :class:`Image` from :func:`to_json` output, checking every content key."""
    if not isinstance(doc, dict) or doc.get("viewerGraph") != GRAPH_VERSION or not isinstance(doc.get("nodes"), dict):
        raise InvalidArgument(f"expression is not a viewer graph (expected {{'viewerGraph': {GRAPH_VERSION}, "
                              "'result': key, 'nodes': {...}}})", value=str(doc)[:80], allowed="to_json() output")
    raw: dict = doc["nodes"]
    built: dict[str, Node] = {}

    def load(key: str) -> Node:
        if key in built:
            return built[key]
        spec = raw.get(key)
        if not isinstance(spec, dict) or spec.get("op") not in _OPS:
            raise InvalidArgument(f"graph node {str(key)[:16]!r} is missing or has an unknown op "
                                  f"{spec.get('op') if isinstance(spec, dict) else None!r}; allowed ops: {sorted(_OPS)}",
                                  value=key, allowed=sorted(_OPS))
        op = spec["op"]
        try:
            if op == "source" and spec["args"][0] is not None:
                node = asset_node(spec["args"][0])[0]  # paths come from the catalog, not from the JSON
            elif op == "source" and not allow_files:
                raise InvalidArgument("graph reads files by path; not allowed here (only catalog assets)",
                                      value=[s[0] for s in spec["args"][1]], allowed="catalog assets")
            else:
                if op == "array":
                    get_array(spec["args"][0])  # must be registered in this process
                args = _arg_from_json(spec["args"], load)
                node = Node(op, args, tuple(_band_from_json(b) for b in spec["bands"]))
        except KeyError as exc:
            raise InvalidArgument(f"graph node {key[:16]!r} ({op}) cannot be rebuilt: {exc}", value=key) from None
        if node.key != key:
            raise InvalidArgument(f"graph node {key[:16]!r} ({op}) does not match its content (stale catalog or "
                                  "edited graph)", value=key, allowed="unmodified to_json() output")
        built[key] = node
        return node

    return Image(_node=load(doc["result"]))
