"""Map layers as immutable, content-addressed specs that any server process can resolve.

A :class:`LayerSpec` is an image graph plus a canonical style. Three kinds:

* ``image``: bands shown through Earth Engine visualization parameters
  (``min``/``max``/``gain``/``bias``/``gamma``/``palette``/``opacity``);
* ``mask``: a 0..1 mask (``image.mask()`` or any derived mask) shown as a colour ramp,
  transparent where the mask is 0;
* ``classes``: a one-band class image coloured by a :class:`~viewer.core.classes.Classes`
  table, with hidden classes and an opacity.

``register(spec)`` returns the spec's token: the sha256 (64 hex characters) of its kind,
the graph's content key and the canonical style, so the same layer gets the same token in
every session and process. The spec is stored as JSON, ``{"version": 2, "kind", "style",
"graph": serialize.to_json(node)}``, in the state directory (``$VIEWER_STATE_DIR``, see
:mod:`viewer.core.layer_store`, which also keeps the in-memory arrays of ``array`` nodes as
``.npz`` and bounds the folder's size), so any process pointing at the same directory can
``resolve(token)``. No pickle is written or read.

``resolve`` validates a token's form before it builds a path, rebuilds the graph with
:func:`~viewer.core.serialize.from_json` (every node's content key checked, catalog sources
taken from the catalog) and refuses a document whose rebuilt spec has another token. It
passes ``allow_files=True``: layers of ``Image.open(path)`` in a notebook must resolve, and
the state directory is written only by the server's own processes (it is trusted like the
catalog; a request never names a file through it). Resolved and registered specs are kept
in memory in an LRU of ``$VIEWER_LAYER_CACHE`` specs (default 2048); evicted ones are read
back from disk, whose mtime ``resolve`` renews (at most once a minute for a layer served
from memory) so layers in use survive the folder's pruning.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
from rasterio.crs import CRS

from . import layer_store
from .classes import Classes
from .config import settings
from .errors import InvalidArgument, ReadError, SourceUnavailable, ViewerError
from .graph import BandInfo, Node, canonical
from .grid import Grid, crs_code
from .image import Image
from .layer_store import DOC_VERSION, state_dir
from .ops import RESAMPLING, VIS_BANDS, VIS_KEYS
from .serialize import from_json, to_json
from .visualize import check_opacity, normalize_vis, palette_band_error, parse_palette

__all__ = ["LayerSpec", "UnknownLayer", "image_layer", "mask_layer", "class_layer", "register", "resolve",
           "describe", "state_dir", "resolve_cached", "KINDS", "TOKEN_LENGTH", "DEFAULT_MASK_PALETTE"]

KINDS = ("image", "mask", "classes")
TOKEN_LENGTH = 64
_TOKEN = re.compile(r"[0-9a-f]{64}")
_TOKEN_VERSION = 1  # in the token hash; unchanged so tokens (and tile URLs) stay stable
DEFAULT_MASK_PALETTE = ("000000", "ffffff")


class UnknownLayer(ViewerError, KeyError):
    """A layer token that no process has registered in this state directory."""


@dataclass(frozen=True, eq=False)
class LayerSpec:
    """An immutable layer: ``kind``, the image graph ``node`` and a canonical JSON ``style_json``.

    Derived once, at construction, so that rendering a tile only reads attributes: ``token``,
    ``pixel_space`` (the image has no CRS) and ``display_node`` (:meth:`display`).
    """

    kind: str
    node: Node
    style_json: str
    token: str = field(init=False)
    pixel_space: bool = field(init=False)
    display_node: Node = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidArgument(f"layer kind {self.kind!r} is not allowed; allowed: {list(KINDS)}",
                                  value=self.kind, allowed=list(KINDS))
        object.__setattr__(self, "token", _token(self.kind, self.node, self.style_json))
        grids = [b.grid for b in self.node.bands if b.grid is not None]
        object.__setattr__(self, "pixel_space", bool(grids) and all(g.crs is None for g in grids))
        object.__setattr__(self, "display_node", _display_node(self))

    @property
    def style(self) -> dict:
        """A fresh copy of the style (``vis``/``resampling``, mask ``palette``/``opacity``, or classes)."""
        return json.loads(self.style_json)

    @property
    def image(self) -> Image:
        """The layer's bands as an :class:`Image` (before visualization)."""
        return Image(_node=self.node)

    @property
    def band_names(self) -> list[str]:
        return [b.name for b in self.node.bands]

    def classes(self) -> Classes | None:
        """The class table of a ``classes`` layer."""
        if self.kind != "classes":
            return None
        s = self.style
        return Classes(s["classes"], background=s["background"])

    def display(self) -> Node:
        """The layer as the map shows it: a display node (three uint8 ``vis-*`` bands, alpha as mask)
        over :attr:`node`. Tiles, exports and ``computePixels`` all evaluate this one expression.

        * ``image``: ``visualize(vis)`` (under ``resample(mode)`` unless nearest);
        * ``mask``: ``maskRamp(palette, opacity)``: the bands' minimum on a ramp, 0 transparent;
        * ``classes``: ``classColors(table, background, hidden, opacity)``.

        Built once per spec, with it (:attr:`display_node`).
        """
        return self.display_node

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LayerSpec) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)

    def __repr__(self) -> str:
        return f"LayerSpec({self.kind}, bands={self.band_names}, token={self.token[:12]}…)"


def _token(kind: str, node: Node, style_json: str) -> str:
    """The content address of a layer: SHA-256 of kind, graph key and style."""
    text = json.dumps([_TOKEN_VERSION, kind, node.key, json.loads(style_json)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _display_node(spec: LayerSpec) -> Node:
    style, node = spec.style, spec.node
    out = tuple(BandInfo(n, "uint8", node.native_grid()) for n in VIS_BANDS)
    if spec.kind == "image":
        mode = style.get("resampling", "nearest")
        src = node if mode == "nearest" else Node("resample", (node, mode), node.bands)
        return Node("visualize", (src, style["vis"]), out)
    if spec.kind == "mask":
        return Node("maskRamp", (node, tuple(tuple(c) for c in style["palette"]), style["opacity"]), out)
    table = Classes(style["classes"], background=style["background"])
    return Node("classColors", (node, table.to_band_classes(), table.background, tuple(style["hidden"]),
                                style["opacity"]), out)


def _style(obj: dict) -> str:
    return json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"))


def _as_image(image: Any, what: str) -> Image:
    if not isinstance(image, Image):
        raise InvalidArgument(f"{what} needs a viewer.Image, got {type(image).__name__}", value=type(image).__name__,
                              allowed="viewer.Image")
    if not image.bands:
        raise InvalidArgument(f"{what}: the image has no bands", value=[])
    return image


def _default_range(dtype: str) -> tuple[float, float]:
    dt = np.dtype(dtype)
    if dt.kind in "ui" and dt.itemsize <= 2:
        ii = np.iinfo(dt)
        return float(ii.min), float(ii.max)
    return 0.0, 1.0


def image_layer(image: Image, vis_params: Mapping[str, Any] | None = None, *,
                resampling: str = "nearest") -> LayerSpec:
    """An image layer, as ``Map.addLayer(image, vis_params)`` in the Earth Engine Code Editor.

    ``vis_params`` takes ``bands`` (list or comma-separated), ``min``/``max`` or
    ``gain``/``bias``, ``gamma``, ``palette`` and ``opacity``. Without ``bands`` the first
    three bands are shown as RGB (the first band alone if there are fewer than three).
    Without a range, integer bands of 8/16 bits use their type's range and others 0..1.
    """
    image = _as_image(image, "image_layer")
    params = dict(vis_params or {})
    unknown = set(params) - set(VIS_KEYS)
    if unknown:
        raise InvalidArgument(f"visualization parameters {sorted(unknown)} are not allowed; allowed: "
                              f"{', '.join(VIS_KEYS)}", value=sorted(unknown), allowed=list(VIS_KEYS))
    if resampling not in RESAMPLING:
        raise InvalidArgument(f"resampling {resampling!r} is not allowed; allowed: {list(RESAMPLING)}",
                              value=resampling, allowed=list(RESAMPLING))
    bands = params.pop("bands", None)
    if isinstance(bands, str):
        bands = [b.strip() for b in bands.split(",") if b.strip()]
    if bands is not None:
        src = image.select(list(bands))
    else:
        n = len(image.bands)
        src = image.select(list(range(3)) if n >= 3 else [0])
    if params.get("palette") is not None and len(src.bands) != 1:
        chosen = bands is not None
        raise palette_band_error([b.name for b in (src if chosen else image).bands], chosen)
    if all(params.get(k) is None for k in ("min", "max", "gain", "bias")):
        lo, hi = _default_range(src.bands[0].dtype)
        params["min"], params["max"] = lo, hi
    vis = normalize_vis(params, len(src.bands))
    return LayerSpec("image", src.node, _style({"vis": vis, "resampling": resampling}))


def mask_layer(image: Image, palette: Any = None, opacity: float = 1.0) -> LayerSpec:
    """A mask layer: 0..1 values (``image.mask()`` or a derived mask) on a colour ramp.

    Several bands are combined with their minimum (a pixel shows where every band is
    valid). Values are clipped to [0, 1]; 0 and masked pixels are transparent. The
    default ramp is black (0) to white (1); a single colour paints every non-zero pixel.
    """
    image = _as_image(image, "mask_layer")
    colours = parse_palette(list(DEFAULT_MASK_PALETTE) if palette is None else palette)
    style = {"palette": [list(c) for c in colours], "opacity": check_opacity(opacity)}
    return LayerSpec("mask", image.node, _style(style))


def _as_classes(classes: Any, image: Image) -> Classes:
    if classes is None:
        table = Classes.from_band(image.bands[0])
        if not len(table):
            raise InvalidArgument(f"band {image.bands[0].name!r} has no class table; pass classes=[{{'id': .., "
                                  "'name': ..}}] or a viewer.Classes", value=image.bands[0].name,
                                  allowed="a band with classes, or classes=")
        return table
    return Classes.coerce(classes)


def class_layer(image: Image, classes: Any = None, hidden: Iterable[int] = (), opacity: float = 1.0) -> LayerSpec:
    """A class overlay of a one-band class image (default table: the band's own classes).

    ``classes`` takes a :class:`Classes`, a list of ``{"id", "name", "color"}`` dicts or a
    W&B ``{id: name}`` dict. ``hidden`` ids are drawn transparent.
    """
    image = _as_image(image, "class_layer")
    if len(image.bands) != 1:
        raise InvalidArgument(f"class_layer needs a one-band image, got bands {list(image.bandNames())}; "
                              "select the class band first", value=list(image.bandNames()), allowed=1)
    table = _as_classes(classes, image)
    hidden_ids = []
    for h in hidden:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)):
            raise InvalidArgument(f"hidden class id {h!r} must be an integer", value=h, allowed="integer class ids")
        hidden_ids.append(int(h))
    style = {"classes": table.to_list(), "background": table.background, "hidden": sorted(set(hidden_ids)),
             "opacity": check_opacity(opacity)}
    return LayerSpec("classes", image.node, _style(style))


# registry ---------------------------------------------------------------------------------
_specs: OrderedDict[str, tuple[LayerSpec, float]] = OrderedDict()  # LRU: token -> (spec, last touch)
_lock = threading.Lock()
_TOUCH_EVERY = 60.0  # seconds between disk mtime renewals of a layer served from memory


def _array_digests(graph: dict) -> list[str]:
    """The digests of the in-memory arrays a :func:`to_json` document refers to."""
    return sorted({n["args"][0] for n in graph["nodes"].values() if n["op"] == "array"})


def _persist(spec: LayerSpec) -> None:
    graph = to_json(spec.node)
    doc = {"version": DOC_VERSION, "kind": spec.kind, "style": spec.style, "graph": graph}
    layer_store.save(spec.token, doc, _array_digests(graph))


def _remember(spec: LayerSpec) -> None:
    limit = settings().layer_cache
    with _lock:
        _specs[spec.token] = (spec, time.monotonic())
        _specs.move_to_end(spec.token)
        while len(_specs) > max(1, limit):
            _specs.popitem(last=False)


def register(spec: LayerSpec) -> str:
    """Make ``spec`` resolvable by its token in this and every process sharing the state directory."""
    if not isinstance(spec, LayerSpec):
        raise InvalidArgument(f"register needs a LayerSpec, got {type(spec).__name__}", value=type(spec).__name__)
    _remember(spec)  # this process serves the layer even when the state folder is unusable
    _persist(spec)
    return spec.token


def check_token(token: Any) -> str:
    """``token`` if it has the form of a layer token (64 lowercase hex characters)."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        shown = token if not isinstance(token, str) or len(token) <= 80 else token[:77] + "..."
        raise InvalidArgument(f"layer token {shown!r} is malformed; allowed: {TOKEN_LENGTH} lowercase hex "
                              "characters", value=shown, allowed=f"{TOKEN_LENGTH} hex characters")
    return token


def _from_memory(token: str) -> LayerSpec | None:
    with _lock:
        hit = _specs.get(token)
        if hit is not None:
            _specs.move_to_end(token)
    if hit is None:
        return None
    spec, touched = hit
    if time.monotonic() - touched > _TOUCH_EVERY:
        try:  # keep a layer in use on disk for other processes (re-stored if it was pruned)
            _persist(spec)
        except ReadError:
            pass  # best effort: this process has the layer in memory and serves it
        _remember(spec)
    return spec


def _from_disk(token: str) -> LayerSpec:
    root = state_dir()
    try:
        doc = layer_store.read_doc(token)
    except FileNotFoundError:
        raise UnknownLayer(f"unknown layer token {token!r}: no layer with this token is registered",
                           value=token, allowed="a token returned by register()") from None
    except OSError as exc:
        raise ReadError(f"cannot read the state directory {str(root)!r} ({exc}); set VIEWER_STATE_DIR to a "
                        "usable directory", value=str(root)) from None
    except ValueError as exc:  # not UTF-8 or not JSON
        raise ReadError(f"stored layer {token} in {str(root)!r} cannot be read ({type(exc).__name__}: {exc})",
                        value=token) from None
    try:
        if doc.get("version") != DOC_VERSION:
            raise ValueError(f"format version {doc.get('version')!r}, expected {DOC_VERSION}")
        digests = _array_digests(doc["graph"])
        held = layer_store.load_arrays(digests)  # registered while held: until the graph's nodes hold them
        # allow_files: layers of Image.open(path) must resolve; the server's own process writes this folder
        node = from_json(doc["graph"], allow_files=True).node
        del held
        kind, style = doc["kind"], _style(doc["style"])
        same = _token(kind, node, style) == token  # before building the spec: an edited kind may not build
        spec = LayerSpec(kind, node, style) if same else None
    except SourceUnavailable:
        raise  # a catalog raster missing now: the same error (and status) as when rendering it
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign state file
        raise ReadError(f"stored layer {token} in {str(root)!r} cannot be read ({type(exc).__name__}: {exc})",
                        value=token) from None
    if spec is None:
        raise ReadError(f"stored layer {token} in {str(root)!r} does not match its token (edited or damaged)",
                        value=token, allowed="an unmodified state file")
    try:
        layer_store.touch(token, digests)
    except OSError:
        pass  # best effort (e.g. a read-only state directory): the layer is read, only its mtime is old
    return spec


def resolve_cached(token: str) -> LayerSpec | None:
    """The spec under ``token`` if this process holds it in memory (no disk access), else None."""
    with _lock:
        hit = _specs.get(check_token(token))
    return None if hit is None else hit[0]


def resolve(token: str) -> LayerSpec:
    """The spec registered under ``token`` (from memory, else from the state directory)."""
    check_token(token)
    spec = _from_memory(token)
    if spec is None:
        spec = _from_disk(token)
        _remember(spec)
    return spec


def _bounds_wgs84(grid: Grid) -> list[float] | None:
    if grid.crs is None:
        return None
    try:
        return [float(v) for v in grid.bounds_in(CRS.from_epsg(4326))]
    except Exception:  # noqa: BLE001 - outside the CRS's area of use
        return None


def describe(spec: LayerSpec) -> dict:
    """A JSON-able description: kind, token, bands, style, class table, native grid and bounds.

    ``bounds_wgs84`` is ``[west, south, east, north]`` in degrees with ``west < east``: for a
    source across the antimeridian ``east`` exceeds 180 (GeoJSON would write ``west > east``),
    so the centre ``(west + east) / 2`` and the span frame the whole source (see
    :func:`viewer.core.grid.lonlat_bounds`).
    """
    bands = [b.info() for b in spec.node.bands]
    grid = spec.node.native_grid()
    out: dict[str, Any] = {
        "token": spec.token,
        "kind": spec.kind,
        "band_names": spec.band_names,
        "bands": bands,
        "style": spec.style,
        "pixel_space": spec.pixel_space,
        "tile_url": f"/tiles/{spec.token}/{{z}}/{{x}}/{{y}}.png",
    }
    if grid is not None:
        out["native_grid"] = grid.to_dict()
        out["crs"] = crs_code(grid.crs)
        out["bounds"] = list(grid.bounds)
        out["bounds_wgs84"] = _bounds_wgs84(grid)
    if spec.kind == "classes":
        out["classes"] = spec.style["classes"]
    return out
