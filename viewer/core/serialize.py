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

from .access import gdal_path
from .catalog import BAND_KINDS, get_catalog
from .errors import InvalidArgument, LimitExceeded, SourceChanged, ViewerError
from .graph import MAX_DEPTH, BandInfo, Node
from .grid import Grid, parse_crs
from .image import Image
from .ops import OPS, check_args, expected_bands
from .sources import asset_node, get_array

__all__ = ["to_json", "from_json", "GRAPH_VERSION"]

GRAPH_VERSION = 1
MAX_NODES = 10_000
#: Deepest nesting of lists/dicts inside one node's arguments (a GeoJSON MultiPolygon needs 5).
MAX_ARG_DEPTH = 32


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
    dtype, kind = np.dtype(d["dtype"]), d.get("kind", "continuous")
    if dtype.kind not in "uif" or kind not in BAND_KINDS or not isinstance(d["name"], str):
        raise InvalidArgument(f"band {str(d.get('name'))[:40]!r} has dtype {dtype.name!r} or kind {str(kind)[:20]!r}; "
                              f"allowed: numeric dtypes and kinds {BAND_KINDS}", value=str(d.get("name"))[:40],
                              allowed=BAND_KINDS)
    return BandInfo(d["name"], dtype.name, grid, kind, classes, d.get("units"), d.get("description"))


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


def _check_shape(key: str, op: str, args: Any, bands: tuple) -> None:
    """Refuse a node whose arguments or band count do not fit its op (:data:`viewer.core.ops.OPS`)."""
    ok = check_args(op, args)
    expected = expected_bands(op, args) if ok else None
    if not ok or (expected is not None and expected != len(bands)):
        raise InvalidArgument(f"graph node {key[:16]!r} ({op}) has malformed arguments or bands",
                              value=key, allowed="to_json() output")


def _load_node(key: str, spec: Any, load, allow_files: bool) -> Node:
    if not isinstance(spec, dict) or spec.get("op") not in OPS:
        op = spec.get("op") if isinstance(spec, dict) else None
        raise InvalidArgument(f"graph node {str(key)[:16]!r} is missing or has an unknown op {str(op)[:40]!r}; "
                              f"allowed ops: {sorted(OPS)}", value=str(key)[:64], allowed=sorted(OPS))
    op = spec["op"]
    if op == "source":
        args = spec.get("args")
        if not isinstance(args, list) or len(args) != 2:
            raise InvalidArgument(f"graph node {key[:16]!r} (source) is malformed", value=key)
        if args[0] is not None:
            return asset_node(args[0])[0]  # paths come from the catalog, not from the JSON
        if not allow_files:
            raise InvalidArgument("graph reads files by path; not allowed here (only catalog assets); "
                                  "from_json(..., allow_files=True) lets trusted code open files",
                                  value="source", allowed="catalog assets")
        sources = tuple(tuple(s) for s in args[1])
        bands = tuple(_band_from_json(b) for b in spec["bands"])
        for path, *_ in sources:
            gdal_path(path, get_catalog().remote_prefixes)
        return Node("source", (None, sources), bands)
    held = None
    if op == "array":
        digest = spec["args"][0] if isinstance(spec.get("args"), list) and spec["args"] else None
        try:
            held = get_array(digest)  # must be registered in this process
        except (KeyError, TypeError):
            raise InvalidArgument(f"graph node {key[:16]!r} (array) names an array {str(digest)[:20]!r} that is not "
                                  "registered in this process; allowed: arrays of images of this process still in use "
                                  "(Image.from_array)",
                                  value=str(digest)[:64], allowed="a registered array digest") from None
    args = _arg_from_json(spec["args"], load)
    bands = tuple(_band_from_json(b) for b in spec["bands"])
    _check_shape(key, op, args, bands)
    node = Node(op, args, bands)
    node.held = held
    return node


def from_json(doc: Any, *, allow_files: bool = False) -> Image:
    """Rebuild an :class:`Image` from :func:`to_json` output, checking every content key.

    Catalog sources are rebuilt from the catalog. Nodes that read files by path are
    refused unless trusted code passes ``allow_files=True``.
    """
    if not isinstance(doc, dict) or doc.get("viewerGraph") != GRAPH_VERSION or not isinstance(doc.get("nodes"), dict):
        raise InvalidArgument(f"expression is not a viewer graph (expected {{'viewerGraph': {GRAPH_VERSION}, "
                              "'result': key, 'nodes': {...}}})", value=str(doc)[:80], allowed="to_json() output")
    raw: dict = doc["nodes"]
    if len(raw) > MAX_NODES:
        raise LimitExceeded(f"graph of {len(raw)} nodes is over the limit of {MAX_NODES}", value=len(raw),
                            allowed=MAX_NODES)
    built: dict[str, Node] = {}

    def build(key: str) -> Node:  # every node it refers to is built already
        try:
            node = _load_node(key, raw.get(key), built.__getitem__, allow_files)
        except ViewerError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            raise InvalidArgument(f"graph node {key[:16]!r} cannot be rebuilt: {type(exc).__name__}: "
                                  f"{str(exc)[:120]}", value=key, allowed="to_json() output") from None
        if node.key != key and node.op == "source" and node.args[0] is not None:
            raise SourceChanged(f"asset {node.args[0]!r} changed since this graph was made (a replaced file or an "
                                "edited catalog); rebuild the image", value=node.args[0])
        if node.key != key:
            raise InvalidArgument(f"graph node {key[:16]!r} ({node.op}) does not match its content (stale catalog, "
                                  "changed file or edited graph)", value=key, allowed="unmodified to_json() output")
        return node

    # Depth-first without recursion (a chain as deep as the graph allows must load, and a
    # deeper or cyclic one must fail with a typed error, not a RecursionError): children are
    # built before their parents, ``path`` holds the nodes being loaded.
    path: list[tuple[str, Any]] = []
    on_path: set[str] = set()

    def enter(key: Any) -> None:
        if not isinstance(key, str):
            raise InvalidArgument(f"graph reference {str(key)[:40]!r} is not a node key", value=str(key)[:40],
                                  allowed="a key of 'nodes'")
        if key in built:
            return
        if key in on_path:
            raise InvalidArgument(f"graph node {key[:16]!r} refers to itself (a cycle)", value=key,
                                  allowed="an acyclic graph")
        if len(path) >= MAX_DEPTH:
            raise LimitExceeded(f"graph is deeper than {MAX_DEPTH} nodes", value=len(path) + 1, allowed=MAX_DEPTH)
        path.append((key, iter(_references(key, raw.get(key)))))
        on_path.add(key)

    try:
        enter(doc.get("result"))
        while path:
            key, children = path[-1]
            child = next(children, None)
            if child is not None:
                enter(child[0])
                continue
            path.pop()
            on_path.discard(key)
            built[key] = build(key)
    except RecursionError:  # a structure nested deeper than the checks above foresee
        raise LimitExceeded(f"graph is nested too deeply (more than {MAX_ARG_DEPTH} levels)", value="graph",
                            allowed=MAX_ARG_DEPTH) from None
    return Image(_node=built[doc["result"]])


def _references(key: str, spec: Any) -> list[tuple[Any]]:
    """The node keys a node's arguments refer to (each in a 1-tuple), checking how deeply they nest."""
    if not isinstance(spec, dict) or spec.get("op") == "source":
        return []  # malformed nodes fail in _load_node; sources refer to no nodes
    out: list[tuple[Any]] = []
    todo: list[tuple[Any, int]] = [(spec.get("args"), 0)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_ARG_DEPTH:
            raise LimitExceeded(f"graph node {key[:16]!r} has arguments nested deeper than {MAX_ARG_DEPTH} levels",
                                value=key, allowed=MAX_ARG_DEPTH)
        if isinstance(value, dict) and set(value) == {"$node"}:
            out.append((value["$node"],))
        elif isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)
    out.reverse()
    return out
