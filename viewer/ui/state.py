"""UI state as plain ``param.Parameterized`` classes (no Panel, no Bokeh here).

``Channel`` is one shown band of an image layer (band, min, max, gamma); widgets bind to it
with ``from_param``. ``LayerState`` is one map layer (an image, a mask or a segmentation
overlay) with a stable ``uid`` and its visualization; every change that alters pixels
makes a new content-addressed spec, stored off the event loop, and then a new ``token``
(a new tile URL). ``MapState`` holds the ordered layers, the view (Web Mercator, or plain
pixel coordinates for non-georeferenced images) and the view-level figures computed by a
debounced range callback.

Views subscribe to what they show: ``MapState.param.layers`` (the list and its order),
``basemap``, ``view``, and each layer's ``token``/``visible``/``opacity``/``name``/``error``
(:meth:`MapState.watch_layers` keeps such a subscription on every layer, present and future).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import param

from ..core.class_stats import view_class_counts
from ..core.classes import Classes
from ..core.errors import InvalidArgument, ReadError
from ..core.grid import HALF_WORLD, Grid
from ..core.image import Image
from ..core.layers import LayerSpec, register
from ..core.palettes import PALETTES as NAMED_PALETTES, named_palette
from ..core.stats import PRESETS
from ..core.tiles import pixel_max_zoom
from ..core.visualize import check_opacity
from .basemaps import BASEMAPS, OFFLINE, lonlat_to_mercator, mercator_to_lonlat
from .specs import class_spec, default_vis, image_spec, mask_spec, stretch_for_view
from .viewport import EXECUTOR, MERCATOR, STATS_EXECUTOR, WORLD_RES, after_tiles, spawn, view_grid, zoom_for

__all__ = ["Channel", "LayerState", "MapState", "LayerWatch", "STRETCHES", "MODES", "CUSTOM_PALETTE",
           "make_layer", "class_table", "layer_uid", "palette_name",
           # re-exported from .viewport for convenience
           "view_grid", "zoom_for", "EXECUTOR", "spawn"]

STRETCHES = ("custom",) + tuple(PRESETS)
#: Image layer modes: three bands as red, green, blue, or one band (grey or a palette).
MODES = ("RGB", "1 band")
#: ``LayerState.palette_name`` of a palette given as colours that match no named palette.
CUSTOM_PALETTE = "custom"
#: Parameters of a layer that change its pixels (its spec and token).
_SPEC_PARAMS = ("mode", "palette_name", "custom_palette", "mask_applied", "mask_invert", "mask_image",
                "hidden_classes", "class_colors", "classes", "mask_color", "image")

log = logging.getLogger("viewer.ui")


def layer_uid(order: int, name: str) -> str:
    """A short URL-safe id of the ``order``-th layer added to a map under ``name`` (6 hex digits).

    The same map built the same way gives the same ids in every session and process."""
    return hashlib.blake2s(f"{order}\x00{name}".encode(), digest_size=3).hexdigest()


def palette_name(colours: Iterable[str] | None) -> str:
    """The name of the core's named palette with exactly these colours, ``""`` for none,
    :data:`CUSTOM_PALETTE` for any other list."""
    if not colours:
        return ""
    key = tuple(str(c).lower() for c in colours)
    return next((n for n, cs in NAMED_PALETTES.items() if cs == key), CUSTOM_PALETTE)


class Channel(param.Parameterized):
    """One shown band of an image layer: which band, its range and its gamma."""

    # (no docs: Panel would put a tooltip icon next to every widget made from them)
    band = param.Selector(default=None, objects=[], allow_None=True)  # a band name of the image
    min = param.Number(default=0.0)  # the value drawn as 0
    max = param.Number(default=1.0)  # the value drawn as 255
    gamma = param.Number(default=1.0, bounds=(0.05, 10.0), step=0.05)


class LayerState(param.Parameterized):
    """One layer: what to draw (``image``), how (visualization) and whether (visibility).

    An image layer always holds three :class:`Channel` objects (red, green, blue); in
    ``"1 band"`` mode only the first is shown. ``bands``, ``vmin``, ``vmax`` and ``gamma``
    are lists over the shown channels (read and write).
    """

    uid = param.String(default="", doc="Stable id within the map (URL, figure, cards key on it).")
    asset = param.String(default="", doc="The catalog asset id when the layer was added from the catalog "
                                         "(a shared link adds it again); '' otherwise.")
    name = param.String(default="layer")
    kind = param.Selector(default="image", objects=["image", "mask", "classes"])
    image = param.ClassSelector(class_=Image, doc="The image as added (all bands).")
    visible = param.Boolean(default=True)
    opacity = param.Number(default=1.0, bounds=(0.0, 1.0), step=0.05)

    # image and mask visualization
    mode = param.Selector(default="RGB", objects=list(MODES))
    channels = param.List(default=[], item_type=Channel, doc="Image: R, G, B; mask: one per band; classes: one.")
    palette_name = param.Selector(default="", objects=[""] + list(NAMED_PALETTES) + [CUSTOM_PALETTE],
                                  doc="Palette of a one-band layer: a core palette name, '' none, 'custom'.")
    custom_palette = param.List(default=[], item_type=str, doc="Colours when palette_name is 'custom'.")
    stretch = param.Selector(default="custom", objects=list(STRETCHES),
                             doc="Preset computed over the current view; 'custom' keeps min/max as set.")
    freeze = param.Boolean(default=False, doc="Keep the stretch range fixed while panning.")
    mask_color = param.Color(default=None, allow_None=True,
                             doc="Mask layers: draw mask = 1 in this colour, 0 transparent (else grayscale).")

    # one-click mask on an image layer
    mask_image = param.ClassSelector(class_=Image, default=None, allow_None=True)
    mask_label = param.String(default="")
    mask_invert = param.Boolean(default=True, doc="Hide where the mask is 1 (e.g. clouds).")
    mask_applied = param.Boolean(default=False)

    # segmentation overlays
    classes = param.ClassSelector(class_=Classes, default=None, allow_None=True)
    hidden_classes = param.List(default=[], item_type=int)
    class_colors = param.Dict(default={}, doc="Colour overrides: class id -> colour.")
    group = param.String(default="", doc="Overlays of one image share a group (their image's name).")

    token = param.String(default="", doc="Content address of the current, stored layer spec.")
    error = param.String(default="", doc="Why the layer could not be stored for the tile server ('' when fine).")

    def __init__(self, bands: list[str] | None = None, vmin: list[float] | None = None,
                 vmax: list[float] | None = None, gamma: Any = 1.0, palette: list[str] | None = None,
                 **params: Any) -> None:
        super().__init__(**params)
        self._spec: LayerSpec | None = None
        self._hold = 0
        self._dirty = False
        self._stretching = False
        self._restoring = False
        self._generation = 0
        self._live: Callable[[], bool] = lambda: False  # set by the map the layer is added to
        #: (lon, lat, zoom) rounded, of the view the live stretch was last computed for
        self.stretch_view: tuple | None = None
        self._make_channels(bands or [], vmin or [0.0], vmax or [1.0], gamma)
        if palette:
            self.palette = palette
        self.param.watch(self._spec_changed, list(_SPEC_PARAMS))
        self.refresh_token()

    # channels ---------------------------------------------------------------------------
    def _make_channels(self, bands: list[str], vmin: list[float], vmax: list[float], gamma: Any) -> None:
        names = list(self.image.bandNames()) if self.image is not None else list(bands)
        if self.kind == "image":
            shown = list(bands) or names[:3 if len(names) >= 3 else 1]
            mode = "RGB" if len(shown) == 3 else "1 band"
            padded = shown + [shown[-1] if shown else None] * (3 - len(shown)) if len(shown) < 3 else shown[:3]
        elif self.kind == "mask":
            mode, padded = "1 band", list(bands) or names
        else:
            mode, padded = "1 band", (list(bands) or names)[:1]
        n = 3 if mode == "RGB" else 1
        lo, hi, g = _per(vmin, n, 0.0), _per(vmax, n, 1.0), _per(_as_list(gamma), n, 1.0)
        channels = []
        for i, band in enumerate(padded):
            j = min(i, n - 1)
            ch = Channel(name="RGB"[i] if self.kind == "image" else f"band {i}", min=lo[j], max=hi[j], gamma=g[j])
            ch.param.band.objects = names
            ch.band = band
            ch.param.watch(self._channel_changed, ["band", "min", "max", "gamma"])
            channels.append(ch)
        with param.parameterized.discard_events(self):
            self.param.update(mode=mode, channels=channels)

    def shown_channels(self) -> list[Channel]:
        """The channels drawn: R, G, B in RGB mode, the first in one-band mode (masks: all)."""
        if self.kind == "image":
            return self.channels[:3] if self.mode == "RGB" else self.channels[:1]
        return list(self.channels)

    @property
    def bands(self) -> list[str]:
        return [c.band for c in self.shown_channels() if c.band is not None]

    @bands.setter
    def bands(self, bands: list[str]) -> None:
        bands = list(bands)
        with self.batch():
            if self.kind == "image" and len(bands) in (1, 3):
                self.mode = "RGB" if len(bands) == 3 else "1 band"
            for c, b in zip(self.shown_channels(), bands):
                c.band = b

    @property
    def vmin(self) -> list[float]:
        return [float(c.min) for c in self.shown_channels()] if self.kind != "mask" else [0.0]

    @vmin.setter
    def vmin(self, values: list[float]) -> None:
        self.set_range(values, None)

    @property
    def vmax(self) -> list[float]:
        return [float(c.max) for c in self.shown_channels()] if self.kind != "mask" else [1.0]

    @vmax.setter
    def vmax(self, values: list[float]) -> None:
        self.set_range(None, values)

    @property
    def gamma(self) -> list[float]:
        """Gamma per shown band."""
        return [float(c.gamma) for c in self.shown_channels()]

    @gamma.setter
    def gamma(self, value: float | list[float]) -> None:
        shown = self.shown_channels()
        with self.batch():
            for c, g in zip(shown, _per(_as_list(value), len(shown), 1.0)):
                c.gamma = g

    @property
    def palette(self) -> list[str] | None:
        """Colours of a one-band layer's palette (``None``: grey)."""
        if self.palette_name == CUSTOM_PALETTE:
            return list(self.custom_palette) or None
        return list(named_palette(self.palette_name)) if self.palette_name else None

    @palette.setter
    def palette(self, colours: list[str] | str | None) -> None:
        if isinstance(colours, str):
            named = named_palette(colours)
            if named is None:
                raise InvalidArgument(f"palette {colours!r} is not a palette name; allowed: {list(NAMED_PALETTES)}",
                                      value=colours, allowed=list(NAMED_PALETTES))
            colours = list(named)
        name = palette_name(colours)
        self.param.update(palette_name=name, custom_palette=list(colours) if name == CUSTOM_PALETTE else [])

    def set_range(self, vmin: list[float] | None, vmax: list[float] | None, *, stretch: bool = False) -> None:
        """Set min and/or max of the shown channels at once (one new spec). A range set by hand
        makes the stretch ``custom``; ``stretch=True`` marks one computed by a preset."""
        shown = self.shown_channels()
        with self.batch():
            self._stretching = stretch
            try:
                for attr, values in (("min", vmin), ("max", vmax)):
                    if values is not None:
                        for c, v in zip(shown, _per(values, len(shown), 0.0)):
                            setattr(c, attr, v)
            finally:
                self._stretching = False

    @contextlib.contextmanager
    def restoring(self) -> Iterator["LayerState"]:
        """Settings applied from a shared link: one new spec, and a stretch preset set here keeps
        the range given with it (it is not recomputed until the view changes)."""
        self._restoring = True
        try:
            with self.batch():
                self._stretching = True
                try:
                    yield self
                finally:
                    self._stretching = False
        finally:
            self._restoring = False

    def _channel_changed(self, event) -> None:
        if event.name in ("min", "max") and not self._stretching and self.stretch != "custom":
            self.stretch = "custom"
        self._spec_changed()

    # derived images ---------------------------------------------------------------------
    def effective_classes(self) -> Classes | None:
        if self.classes is None:
            return None
        if not self.class_colors:
            return self.classes
        entries = [dict(e, color=self.class_colors.get(e["id"], e["color"])) for e in self.classes.to_list()]
        return Classes(entries, background=self.classes.background)

    def display_image(self) -> Image:
        """The image whose pixels the layer shows (mask switch applied), all bands."""
        img = self.image
        if self.kind == "image" and self.mask_applied and self.mask_image is not None:
            m = self.mask_image
            if self.mask_invert:
                m = m.Not() if np.dtype(m.bands[0].dtype).kind in "uib" else Image.constant(1).subtract(m)
            img = img.updateMask(m)
        return img

    def vis_image(self) -> Image:
        """The bands being visualized (``bands`` selected from :meth:`display_image`)."""
        img = self.display_image()
        return img.select(list(self.bands)) if self.bands else img

    def make_spec(self) -> LayerSpec:
        """The :class:`LayerSpec` of the current settings (not stored)."""
        img = self.display_image()
        if self.kind == "classes":
            return class_spec(img, self.effective_classes(), self.hidden_classes)
        if self.kind == "mask":
            return mask_spec(img, self.bands, self.mask_color)
        return image_spec(img, self.bands, self.vmin, self.vmax, self.gamma, self.palette)

    # registration -----------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator["LayerState"]:
        """Group several setting changes into one new spec (one token, one tile URL)."""
        self._hold += 1
        try:
            yield self
        finally:
            self._hold -= 1
            if self._hold == 0 and self._dirty:
                self._dirty = False
                self.refresh_token()

    def _spec_changed(self, *events) -> None:
        if self._hold:
            self._dirty = True
        else:
            self.refresh_token()

    def refresh_token(self) -> None:
        """Make the spec of the current settings and store it; the new ``token`` follows the store.

        The spec (and its token) is computed at once; writing it to the state directory runs
        on :data:`EXECUTOR` when the layer's map is shown in a live page (``MapState.live``; the
        token is set once it is stored, so a tile URL never names a spec the tile server cannot
        resolve), else here. A state folder
        that cannot be written (``ReadError``) does not stop the app: the message goes to
        :attr:`error` (an alert in the page) and the token is the spec's own.
        """
        if self.image is None:
            return
        spec = self.make_spec()
        self._spec = spec
        self._generation += 1
        if spec.token == self.token and not self.error:
            return
        if not (self._live() and spawn(functools.partial(self._store_async, spec, self._generation))):
            self._stored(spec, *_store(spec, self.name))

    async def _store_async(self, spec: LayerSpec, generation: int) -> None:
        token, error = await asyncio.get_running_loop().run_in_executor(EXECUTOR, _store, spec, self.name)
        if generation == self._generation:
            self._stored(spec, token, error)

    def _stored(self, spec: LayerSpec, token: str, error: str) -> None:
        self.param.update(token=token, error=error)

    def spec(self) -> LayerSpec:
        """The :class:`LayerSpec` of the current settings (tiles, legends, exports)."""
        return self._spec

    def tile_path(self, ext: str = "png") -> str:
        """``tiles/<token>/{Z}/{X}/{Y}.png`` (relative: prefix it with the server root)."""
        return f"tiles/{self.token}/{{Z}}/{{X}}/{{Y}}.{ext}"

    def apply_stretch(self, grid: Grid, preset: str | None = None) -> None:
        """Set min/max from a preset computed over ``grid`` (the current view)."""
        preset = preset or self.stretch
        if preset == "custom" or self.kind != "image":
            return
        lo, hi = stretch_for_view(self.vis_image(), grid, preset)
        self.set_range(lo, hi, stretch=True)

    @property
    def pixel_mode(self) -> bool:
        g = self.image.native_grid() if self.image is not None else None
        return g is not None and g.crs is None


def _store(spec: LayerSpec, name: str) -> tuple[str, str]:
    """Register ``spec``; (token, '') or (the spec's token, why it could not be stored)."""
    try:
        return register(spec), ""
    except ReadError as exc:
        log.warning("layer %r: %s", name, exc.message)
        return spec.token, exc.message


def _as_list(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _per(values: list, n: int, default: float) -> list[float]:
    """``n`` floats from ``values`` (one value stands for all; a short list repeats its last)."""
    vals = [float(v) for v in values] or [default]
    if len(vals) == 1:
        return vals * n
    return (vals + [vals[-1]] * n)[:n]


class LayerWatch:
    """A subscription to the layer list and to some parameters of every layer in it."""

    def __init__(self, state: "MapState", fn: Callable[..., None], names: list[str]) -> None:
        self.state, self.fn, self.names = state, fn, list(names)
        self._layers: dict[str, tuple[LayerState, Any]] = {}
        self._list = state.param.watch(self._list_changed, "layers")
        self._follow()

    def _follow(self) -> None:
        alive = {l.uid: l for l in self.state.layers}
        for key in [k for k in self._layers if k not in alive]:
            layer, w = self._layers.pop(key)
            layer.param.unwatch(w)
        for key, layer in alive.items():
            if key not in self._layers and self.names:
                self._layers[key] = (layer, layer.param.watch(self.fn, self.names))

    def _list_changed(self, *events) -> None:
        self._follow()
        self.fn(*events)

    def unwatch(self) -> None:
        self.state.param.unwatch(self._list)
        for layer, w in self._layers.values():
            layer.param.unwatch(w)
        self._layers = {}


def _view_key(center: tuple[float, float], zoom: float) -> tuple:
    return (round(center[0], 5), round(center[1], 5), round(zoom, 2))


def _wrap_lon(lon: float) -> float:
    """A longitude brought into [-180, 180] (a view centred across the antimeridian)."""
    return ((lon + 180.0) % 360.0) - 180.0 if not -180.0 <= lon <= 180.0 else lon


class MapState(param.Parameterized):
    """The map: ordered layers (first drawn first), basemap, view and view-level figures."""

    layers = param.List(default=[], item_type=LayerState)
    basemap = param.Selector(default=OFFLINE, objects=list(BASEMAPS))
    pixel_mode = param.Boolean(default=False, doc="Plain pixel coordinates (non-georeferenced images).")
    center = param.NumericTuple(default=(0.0, 20.0), length=2, doc="lon, lat (pixel mode: col, row).")
    zoom = param.Number(default=2.0)
    view = param.NumericTuple(default=None, allow_None=True, length=4, doc="x0, y0, x1, y1 in map coordinates")
    viewport = param.NumericTuple(default=(900, 600), length=2, doc="map width, height in screen pixels")
    selected = param.String(default=None, allow_None=True, doc="Layer chosen for editing and export.")
    class_stats = param.Dict(default={}, doc="layer name -> class counts in the current view; each entry has "
                                             "'pixels': 'native' (the image's own pixels) or 'screen'")
    stats_loading = param.Boolean(default=False)
    stats_error = param.String(default="", doc="Last error of the view statistics ('' when fine).")
    debounce = param.Number(default=0.25, bounds=(0, None), doc="seconds between the last pan/zoom and stats")
    live = param.Boolean(default=False, doc="Shown in a live page (set by the figure on the browser's first "
                                            "report): spec writes and stretches run off the event loop.")
    fit_target = param.String(default=None, allow_None=True,
                              doc="Layer whose extent the figure starts from (cleared once the browser shows it).")
    split = param.Tuple(default=None, allow_None=True, length=4,
                        doc="The split view shown in the map's place, as (left layer uid, right layer uid, mode, "
                            "divider %); None when there is none (the shared link carries it).")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._generation = 0
        self._added = 0

    # layers -----------------------------------------------------------------------------
    def layer(self, name: str) -> LayerState:
        for l in self.layers:
            if l.name == name:
                return l
        raise InvalidArgument(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}",
                              value=name, allowed=[l.name for l in self.layers])

    def layer_by_uid(self, uid: str) -> LayerState | None:
        return next((l for l in self.layers if l.uid == uid), None)

    def unique_name(self, name: str) -> str:
        names = {l.name for l in self.layers}
        if name not in names:
            return name
        i = 2
        while f"{name} ({i})" in names:
            i += 1
        return f"{name} ({i})"

    def watch_layers(self, fn: Callable[..., None], names: Iterable[str] = ()) -> LayerWatch:
        """Call ``fn(*events)`` when the layer list changes (add, remove, order) and when one of
        the parameters ``names`` of any layer in it changes; ``.unwatch()`` ends it."""
        return LayerWatch(self, fn, list(names))

    def add(self, layer: LayerState, uid: str | None = None) -> LayerState:
        """Append ``layer`` (on top) under a unique name and a new uid (``uid`` when given and free:
        a shared link re-adding a layer keeps the link's id)."""
        if self.layers and layer.pixel_mode != self.pixel_mode:
            have = "pixel coordinates" if self.pixel_mode else "georeferenced"
            raise InvalidArgument(
                f"layer {layer.name!r} is {'in pixel coordinates' if layer.pixel_mode else 'georeferenced'} but "
                f"this map shows {have} layers; use another Map for it", value=layer.name)
        if not self.layers:
            self.pixel_mode = layer.pixel_mode
        with param.edit_constant(layer):  # param makes ``name`` constant after construction
            layer.name = self.unique_name(layer.name)
        uids = {l.uid for l in self.layers}
        if uid is None or uid in uids:
            uid = layer_uid(self._added, layer.name)
        while uid in uids:
            self._added += 1
            uid = layer_uid(self._added, layer.name)
        self._added += 1
        layer.uid = uid
        layer._live = lambda: self.live
        layer.param.watch(self._layer_changed, ["token", "visible", "hidden_classes"])
        layer.param.watch(self._stretch_changed, ["stretch", "freeze"])
        self.layers = self.layers + [layer]
        if self.selected is None:
            self.selected = layer.name
        self.schedule_stats()
        return layer

    def remove(self, name: str) -> None:
        layer = self.layer(name)
        self.layers = [l for l in self.layers if l is not layer]
        if self.selected == name:
            self.selected = self.layers[-1].name if self.layers else None
        self.schedule_stats()

    def move(self, name: str, step: int) -> None:
        """Move a layer ``step`` places up (+1: drawn later, on top) or down (-1)."""
        layers = list(self.layers)
        i = layers.index(self.layer(name))
        j = max(0, min(len(layers) - 1, i + step))
        layers.insert(j, layers.pop(i))
        self.layers = layers

    def _layer_changed(self, *events) -> None:
        # class counts change with visibility and with an overlay's pixels; an image's new token
        # (e.g. a live stretch just applied) changes no figure of this view
        if any(e.name in ("visible", "hidden_classes") or (e.name == "token" and e.obj.kind == "classes")
               for e in events):
            self.schedule_stats()

    def _stretch_changed(self, *events) -> None:
        """A preset applies at once, and unticking "freeze" recomputes at once (not at the next pan)."""
        layer = events[0].obj
        if layer.stretch == "custom" or layer.kind != "image" or not self.layers:
            return
        if all(e.name == "freeze" for e in events) and layer.freeze:
            return
        if layer._restoring:
            return
        grid, key = self.current_grid(), self.view_key()
        if not (self.live and spawn(functools.partial(self._stretch_async, layer, grid, key))):
            layer.apply_stretch(grid)
            layer.stretch_view = key

    async def _stretch_async(self, layer: LayerState, grid: Grid, key: tuple) -> None:
        preset = layer.stretch
        try:
            lo, hi = await asyncio.get_running_loop().run_in_executor(
                EXECUTOR, stretch_for_view, layer.vis_image(), grid, preset)
        except InvalidArgument as exc:  # no valid pixels in this view: keep the range, say why
            self.stats_error = exc.message if hasattr(exc, "message") else str(exc)
            return
        if layer.stretch == preset and layer in self.layers:
            layer.set_range(lo, hi, stretch=True)
            layer.stretch_view = key

    # view -------------------------------------------------------------------------------
    def view_key(self) -> tuple:
        """The current centre and zoom, rounded (~1 m, 0.01 zoom): a live stretch is computed once per key."""
        return _view_key(self.center, self.zoom)

    def set_center(self, lon: float, lat: float, zoom: float | None = None) -> None:
        """Centre the map (lon/lat degrees; in pixel mode column/row) at an XYZ zoom level."""
        for name, v in (("lon", lon), ("lat", lat)) + ((("zoom", zoom),) if zoom is not None else ()):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise InvalidArgument(f"{name} {v!r} must be a finite number", value=v)
        if not self.pixel_mode and not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InvalidArgument(f"centre ({lon}, {lat}) is outside lon -180..180, lat -90..90",
                                  value=(lon, lat), allowed="lon -180..180, lat -90..90")
        zoom = self.zoom if zoom is None else float(zoom)
        if not 0 <= zoom <= 24:
            raise InvalidArgument(f"zoom {zoom} is not allowed; allowed 0..24", value=zoom, allowed="0..24")
        self.param.update(center=(float(lon), float(lat)), zoom=zoom, view=self.view_for(lon, lat, zoom),
                          fit_target=None)

    def view_target(self, lon: float | None = None, lat: float | None = None,
                    zoom: float | None = None) -> tuple[float, float, float]:
        """(x, y, resolution): the map coordinates of a centre and the map units per screen pixel
        of a zoom (default: the state's). The figure sizes its ranges from it at its real size."""
        lon = self.center[0] if lon is None else lon
        lat = self.center[1] if lat is None else lat
        zoom = self.zoom if zoom is None else zoom
        if self.pixel_mode:
            return (float(lon), -float(lat), 2.0 ** (self.native_zoom() - zoom))
        x, y = lonlat_to_mercator(lon, lat)
        return (x, y, WORLD_RES / 2.0 ** zoom)

    def view_for(self, lon: float, lat: float, zoom: float) -> tuple[float, float, float, float]:
        """The map-coordinate box of a centre and zoom on the current viewport."""
        w, h = self.viewport
        cx, cy, res = self.view_target(lon, lat, zoom)
        return (cx - res * w / 2, cy - res * h / 2, cx + res * w / 2, cy + res * h / 2)

    def native_zoom(self) -> int:
        """Pixel mode: the zoom at which one screen pixel is one image pixel."""
        g = next((l.image.native_grid() for l in self.layers), None)
        return pixel_max_zoom(g.width, g.height) if g is not None else 0

    def set_view(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Record the map's range (from the browser) and derive centre and zoom."""
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        w = self.viewport[0]
        if self.pixel_mode:
            center = (cx, -cy)
            zoom = self.native_zoom() + math.log2(max(w, 1) / max(abs(x1 - x0), 1e-9))
        else:
            lon, lat = mercator_to_lonlat(cx, cy)
            center = (_wrap_lon(lon), lat)
            zoom = zoom_for(x0, x1, w)
        self.param.update(view=(x0, y0, x1, y1), center=(round(center[0], 7), round(center[1], 7)),
                          zoom=round(zoom, 4))

    def current_grid(self) -> Grid:
        view = self.view or self.view_for(*self.center, self.zoom)
        return view_grid(view, self.viewport, self.pixel_mode)

    def layer_extent(self, name: str) -> tuple[float, float, float, float] | None:
        """A layer's extent in map coordinates (x0, y0, x1, y1; EPSG:3857 metres, or in pixel mode
        image pixels with y = -row), None for layers without a pixel grid.

        Across the antimeridian ``x1`` exceeds ``HALF_WORLD`` (the extent stays whole: the map
        wraps around); latitudes stop at Web Mercator's limit."""
        g = self.layer(name).image.native_grid()
        if g is None:
            return None
        if self.pixel_mode:
            return (0.0, -float(g.height), float(g.width), 0.0)
        x0, y0, x1, y1 = g.bounds_in(MERCATOR)
        if x1 - x0 > 2 * HALF_WORLD:  # wider than the world: the world
            x0, x1 = -HALF_WORLD, HALF_WORLD
        return (x0, max(y0, -HALF_WORLD), x1, min(y1, HALF_WORLD))

    def layer_in_view(self, name: str) -> bool:
        """Whether a layer's extent overlaps the current view (True when either is unknown). On a
        map, x is compared one world-turn to the view: a view across the antimeridian sees a
        layer stored on the other side of it."""
        extent = self.layer_extent(name)
        if not self.view or extent is None:
            return True
        x0, y0, x1, y1 = extent
        v0, w0 = min(self.view[0], self.view[2]), min(self.view[1], self.view[3])
        v1, w1 = max(self.view[0], self.view[2]), max(self.view[1], self.view[3])
        if not self.pixel_mode:
            world = 2 * HALF_WORLD
            shift = world * round(((v0 + v1) - (x0 + x1)) / (2 * world))
            x0, x1 = x0 + shift, x1 + shift
        return x0 < v1 and x1 > v0 and y0 < w1 and y1 > w0

    def fit_layer(self, name: str) -> None:
        """Centre and zoom on a layer's whole extent (also across the antimeridian)."""
        layer = self.layer(name)
        g = layer.image.native_grid()
        if g is None:
            return
        w, h = self.viewport
        if self.pixel_mode:
            zoom = self.native_zoom() + math.log2(min(w / g.width, h / g.height))
            self.set_center(g.width / 2, g.height / 2, max(0.0, min(24.0, zoom)))
            self.fit_target = name
            return
        x0, y0, x1, y1 = self.layer_extent(name)
        lon, lat = mercator_to_lonlat((x0 + x1) / 2, (y0 + y1) / 2)
        zoom = min(zoom_for(x0, x1, w), zoom_for(y0, y1, h))
        self.set_center(_wrap_lon(lon), max(-90.0, min(90.0, lat)), max(0.0, min(22.0, math.floor(zoom * 4) / 4)))
        self.fit_target = name

    # view-level figures (debounced, off the event loop) ---------------------------------
    @param.depends("view", "viewport", watch=True)
    def schedule_stats(self) -> None:
        """Ask for class counts (and live stretches) of the current view after ``debounce`` s."""
        self._generation += 1
        if self.view:
            spawn(functools.partial(self._debounced, self._generation))

    async def _debounced(self, gen: int) -> None:
        """After ``debounce`` s without a view change, and once the view's tiles have been served
        (:func:`after_tiles`, bounded), compute the figures on :data:`STATS_EXECUTOR` (one
        thread for all sessions, so they never take more than one core from the tiles)."""
        await asyncio.sleep(self.debounce)
        if gen != self._generation:
            return
        await after_tiles()
        if gen != self._generation:
            return
        self.stats_loading = True
        try:
            grid = self.current_grid()
            result = await asyncio.get_running_loop().run_in_executor(STATS_EXECUTOR, self.compute_stats, grid)
            if gen == self._generation:
                self.apply_stats(result)
                self.stats_error = ""
        except Exception as exc:  # noqa: BLE001 - reported through stats_error (a notification in the app)
            self.stats_error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        finally:
            if gen == self._generation:
                self.stats_loading = False

    def compute_stats(self, grid: Grid) -> dict:
        """Class counts of visible overlays and live stretches, on ``grid`` (thread-safe, pure).

        Class counts are the overlay's *native* pixels inside the view
        (:func:`~viewer.core.class_stats.view_class_counts`: exact unless the window is very
        large, then sampled; see each entry's ``sample_step``); an image without a pixel grid
        is counted on the view's screen pixels. Each entry says which in ``"pixels"``
        (``"native"`` or ``"screen"``). A live stretch is computed for a layer unless it was
        already computed for this view (a shared link keeps its range)."""
        counts, stretches = {}, {}
        key = self.view_key()
        for l in list(self.layers):
            if not l.visible:
                continue
            if l.kind == "classes":
                entries = view_class_counts(l.display_image().select([0]), grid, l.effective_classes())
                unit = "native" if l.image.native_grid() is not None else "screen"
                counts[l.name] = [dict(e, pixels=unit) for e in entries]
            elif l.kind == "image" and l.stretch != "custom" and not l.freeze and l.stretch_view != key:
                try:
                    stretches[l.name] = stretch_for_view(l.vis_image(), grid, l.stretch) + (key,)
                except InvalidArgument:
                    pass  # no valid pixels in this view: keep the current range
        return {"counts": counts, "stretches": stretches, "grid": grid}

    def apply_stats(self, result: dict) -> None:
        for name, (lo, hi, *key) in result["stretches"].items():
            try:
                layer = self.layer(name)
            except InvalidArgument:
                continue  # removed meanwhile
            layer.set_range(lo, hi, stretch=True)
            layer.stretch_view = key[0] if key else None
        self.class_stats = result["counts"]

    def refresh_stats(self) -> dict:
        """Compute and apply the view figures now (synchronously)."""
        result = self.compute_stats(self.current_grid())
        self.apply_stats(result)
        return result


def class_table(image: Image) -> Classes | None:
    """The class table of ``image``'s first band when it is a class band that has one, else None."""
    band = image.bands[0]
    return Classes.from_band(band) if band.kind == "class" and band.classes else None


def make_layer(image: Image, vis_params: dict | None, name: str, shown: bool, opacity: float,
               kind: str | None = None, **extra: Any) -> LayerState:
    """A :class:`LayerState` with Earth Engine default visualization where none is given."""
    if not isinstance(image, Image):
        raise InvalidArgument(f"{image!r} is not a viewer.Image", value=image, allowed="viewer.Image")
    check_opacity(opacity)
    settings = default_vis(image, vis_params, kind)
    vis_opacity = settings.pop("vis_opacity", None)
    if vis_opacity is not None:  # Earth Engine's vis "opacity" multiplies the layer opacity
        opacity = float(opacity) * float(vis_opacity)
    settings.update(extra)
    return LayerState(name=name, visible=bool(shown), opacity=float(opacity), image=image, **settings)
