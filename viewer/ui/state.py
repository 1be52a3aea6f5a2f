"""UI state as plain ``param.Parameterized`` classes (no Panel, no Bokeh here).

``LayerState`` is one map layer (an image, a mask or a segmentation overlay) with its
visualization; every change that alters pixels re-registers the layer and yields a new
content-addressed token (so a new tile URL). ``MapState`` holds the ordered layers, the
view (Web Mercator, or plain pixel coordinates for non-georeferenced images) and the
view-level figures computed by a debounced range callback.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import math
from typing import Any

import numpy as np
import param

from ..core.classes import Classes
from ..core.errors import InvalidArgument, ReadError
from ..core.grid import Grid
from ..core.image import Image
from .basemaps import BASEMAPS, HALF_WORLD, OFFLINE, lonlat_to_mercator, mercator_to_lonlat
from ..core.layers import register
from ..core.visualize import check_opacity
from .specs import default_vis, layer_spec, stretch_for_view
from .viewport import EXECUTOR, MERCATOR, WORLD_RES, count_grid, spawn, view_grid, zoom_for

__all__ = ["LayerState", "MapState", "PALETTES", "STRETCHES", "make_layer",
           # re-exported from .viewport for convenience
           "view_grid", "zoom_for", "EXECUTOR", "spawn"]

STRETCHES = ("custom", "1sigma", "2sigma", "3sigma", "90%", "98%", "100%")

log = logging.getLogger("viewer.ui")

PALETTES: dict[str, list[str]] = {
    "greys": ["#000000", "#ffffff"],
    "viridis": ["#440154", "#3b518a", "#208f8c", "#5bc862", "#fde724"],
    "magma": ["#000003", "#4f117b", "#b53679", "#fb8660", "#fbfcbf"],
    "turbo": ["#30123b", "#466be3", "#28bbeb", "#32f197", "#a4fc3b", "#edcf39", "#fa7d20", "#d02f04"],
    "ndvi": ["#ffffff", "#ce7e45", "#df923d", "#f1b555", "#fcd163", "#99b718", "#74a901", "#66a000",
             "#529400", "#3e8601", "#207401", "#056201", "#004c00", "#023b01", "#012e01", "#011d01"],
    "red-yellow-green": ["#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a",
                         "#66bd63", "#1a9850"],
    "blues": ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"],
    "spectral": ["#d53e4f", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#e6f598", "#abdda4", "#66c2a5",
                 "#3288bd"],
}


class LayerState(param.Parameterized):
    """One layer: what to draw (``image``), how (visualization) and whether (visibility)."""

    name = param.String(default="layer")
    kind = param.Selector(default="image", objects=["image", "mask", "classes"])
    image = param.ClassSelector(class_=Image, doc="The image as added (all bands).")
    visible = param.Boolean(default=True)
    opacity = param.Number(default=1.0, bounds=(0.0, 1.0), step=0.05)

    # image and mask visualization
    bands = param.List(default=[], item_type=str, doc="1 band (gray or palette) or 3 bands (RGB).")
    vmin = param.List(default=[0.0])
    vmax = param.List(default=[1.0])
    gamma = param.Number(default=1.0, bounds=(0.05, 10.0), step=0.05)
    palette = param.List(default=None, allow_None=True, doc="Colours for a one-band layer.")
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

    token = param.String(default="", doc="Content address of the current layer spec.")
    error = param.String(default="", doc="Why the layer could not be stored for the tile server ('' when fine).")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.refresh_token()

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

    # registration -----------------------------------------------------------------------
    @param.depends("bands", "vmin", "vmax", "gamma", "palette", "mask_applied", "mask_invert", "mask_image",
                   "hidden_classes", "class_colors", "classes", "mask_color", "image", watch=True)
    def refresh_token(self) -> None:
        """Re-register the layer spec; a new token names the new pixels (new tile URL).

        A state folder that cannot be written (``ReadError``) does not stop the app: the
        message goes to :attr:`error` (an alert in the page) and the token is the spec's
        own; whether tiles can still be drawn is up to the tile server's registry.
        """
        if self.image is None:
            return
        spec = layer_spec(self)
        try:
            token = register(spec)
            error = ""
        except ReadError as exc:
            log.warning("layer %r: %s", self.name, exc.message)
            token, error = spec.token, exc.message
        self._spec = spec
        self.param.update(token=token, error=error)

    def spec(self):
        """The registered :class:`LayerSpec` behind :attr:`token` (tiles, legends, exports)."""
        return self._spec

    def tile_path(self, ext: str = "png") -> str:
        """``tiles/<token>/{Z}/{X}/{Y}.png`` (relative: prefix it with the server root)."""
        return f"tiles/{self.token}/{{Z}}/{{X}}/{{Y}}.{ext}"

    def apply_stretch(self, grid: Grid, preset: str | None = None) -> None:
        """Set min/max from a preset computed over ``grid`` (the current view)."""
        preset = preset or self.stretch
        if preset == "custom" or self.kind == "classes":
            return
        lo, hi = stretch_for_view(self.vis_image(), grid, preset)
        self.param.update(vmin=lo, vmax=hi)

    @property
    def pixel_mode(self) -> bool:
        g = self.image.native_grid() if self.image is not None else None
        return g is not None and g.crs is None


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
    class_stats = param.Dict(default={}, doc="layer name -> class counts in the current view")
    stats_loading = param.Boolean(default=False)
    stats_error = param.String(default="", doc="Last error of the view statistics ('' when fine).")
    debounce = param.Number(default=0.25, bounds=(0, None), doc="seconds between the last pan/zoom and stats")
    revision = param.Integer(default=0, doc="Bumped on every layer list / order / token change.")
    fit_target = param.String(default=None, allow_None=True,
                              doc="Layer to fit again once the browser reports the real map size.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._generation = 0

    # layers -----------------------------------------------------------------------------
    def layer(self, name: str) -> LayerState:
        for l in self.layers:
            if l.name == name:
                return l
        raise InvalidArgument(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}",
                              value=name, allowed=[l.name for l in self.layers])

    def unique_name(self, name: str) -> str:
        names = {l.name for l in self.layers}
        if name not in names:
            return name
        i = 2
        while f"{name} ({i})" in names:
            i += 1
        return f"{name} ({i})"

    def add(self, layer: LayerState) -> LayerState:
        if self.layers and layer.pixel_mode != self.pixel_mode:
            have = "pixel coordinates" if self.pixel_mode else "georeferenced"
            raise InvalidArgument(
                f"layer {layer.name!r} is {'in pixel coordinates' if layer.pixel_mode else 'georeferenced'} but "
                f"this map shows {have} layers; use another Map for it", value=layer.name)
        if not self.layers:
            self.pixel_mode = layer.pixel_mode
        layer.name = self.unique_name(layer.name)
        layer.param.watch(self._layer_changed, ["token", "visible", "opacity", "hidden_classes", "error"])
        self.layers = self.layers + [layer]
        if self.selected is None:
            self.selected = layer.name
        self._bump()
        self.schedule_stats()
        return layer

    def remove(self, name: str) -> None:
        layer = self.layer(name)
        self.layers = [l for l in self.layers if l is not layer]
        if self.selected == name:
            self.selected = self.layers[-1].name if self.layers else None
        self._bump()
        self.schedule_stats()

    def move(self, name: str, step: int) -> None:
        """Move a layer ``step`` places up (+1: drawn later, on top) or down (-1)."""
        layers = list(self.layers)
        i = layers.index(self.layer(name))
        j = max(0, min(len(layers) - 1, i + step))
        layers.insert(j, layers.pop(i))
        self.layers = layers
        self._bump()

    def _layer_changed(self, *events) -> None:
        self._bump()
        # class counts change with visibility and with an overlay's pixels; an image's new token
        # (e.g. a live stretch just applied) changes no figure of this view
        if any(e.name in ("visible", "hidden_classes") or (e.name == "token" and e.obj.kind == "classes")
               for e in events):
            self.schedule_stats()

    def _bump(self) -> None:
        self.revision += 1

    # view -------------------------------------------------------------------------------
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

    def view_for(self, lon: float, lat: float, zoom: float) -> tuple[float, float, float, float]:
        """The map-coordinate box of a centre and zoom on the current viewport."""
        w, h = self.viewport
        if self.pixel_mode:
            res = 2.0 ** (self.native_zoom() - zoom)
            cx, cy = lon, -lat
        else:
            res = WORLD_RES / 2.0 ** zoom
            cx, cy = lonlat_to_mercator(lon, lat)
        return (cx - res * w / 2, cy - res * h / 2, cx + res * w / 2, cy + res * h / 2)

    def native_zoom(self) -> int:
        """Pixel mode: the zoom at which one screen pixel is one image pixel."""
        from ..core.tiles import pixel_max_zoom

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
            center = mercator_to_lonlat(cx, cy)
            zoom = zoom_for(x0, x1, w)
        self.param.update(view=(x0, y0, x1, y1), center=(round(center[0], 6), round(center[1], 6)),
                          zoom=round(zoom, 2))

    def current_grid(self) -> Grid:
        view = self.view or self.view_for(*self.center, self.zoom)
        return view_grid(view, self.viewport, self.pixel_mode)

    def layer_extent(self, name: str) -> tuple[float, float, float, float] | None:
        """A layer's extent in map coordinates (x0, y0, x1, y1; EPSG:3857 metres, or in pixel mode
        image pixels with y = -row), None for layers without a pixel grid."""
        g = self.layer(name).image.native_grid()
        if g is None:
            return None
        if self.pixel_mode:
            return (0.0, -float(g.height), float(g.width), 0.0)
        x0, y0, x1, y1 = g.bounds_in(MERCATOR)
        return (max(x0, -HALF_WORLD), max(y0, -HALF_WORLD), min(x1, HALF_WORLD), min(y1, HALF_WORLD))

    def fit_layer(self, name: str) -> None:
        """Centre and zoom on a layer's extent."""
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
        x0, y0, x1, y1 = g.bounds_in(MERCATOR)
        lon, lat = mercator_to_lonlat((x0 + x1) / 2, (y0 + y1) / 2)
        zoom = min(zoom_for(x0, x1, w), zoom_for(y0, y1, h))
        self.set_center(lon, lat, max(0.0, min(22.0, math.floor(zoom * 4) / 4)))
        self.fit_target = name

    # view-level figures (debounced, off the event loop) ---------------------------------
    @param.depends("view", "viewport", watch=True)
    def schedule_stats(self) -> None:
        """Ask for class counts (and live stretches) of the current view after ``debounce`` s."""
        self._generation += 1
        if self.view:
            spawn(functools.partial(self._debounced, self._generation))

    async def _debounced(self, gen: int) -> None:
        await asyncio.sleep(self.debounce)
        if gen != self._generation:
            return
        self.stats_loading = True
        try:
            grid = self.current_grid()
            result = await asyncio.get_running_loop().run_in_executor(EXECUTOR, self.compute_stats, grid)
            if gen == self._generation:
                self.apply_stats(result)
                self.stats_error = ""
        except Exception as exc:  # noqa: BLE001 - reported through stats_error (a notification in the app)
            self.stats_error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        finally:
            if gen == self._generation:
                self.stats_loading = False

    def compute_stats(self, grid: Grid) -> dict:
        """Class counts of visible overlays and live stretches, on ``grid`` (thread-safe, pure)."""
        from ..core.class_stats import class_counts

        counts, stretches = {}, {}
        for l in list(self.layers):
            if not l.visible:
                continue
            if l.kind == "classes":
                counts[l.name] = class_counts(l.display_image().select([0]), count_grid(grid, l.image),
                                              l.effective_classes())
            elif l.stretch != "custom" and not l.freeze:
                try:
                    stretches[l.name] = stretch_for_view(l.vis_image(), grid, l.stretch)
                except InvalidArgument:
                    pass  # no valid pixels in this view: keep the current range
        return {"counts": counts, "stretches": stretches, "grid": grid}

    def apply_stats(self, result: dict) -> None:
        for name, (lo, hi) in result["stretches"].items():
            try:
                self.layer(name).param.update(vmin=lo, vmax=hi)
            except InvalidArgument:
                pass  # removed meanwhile
        self.class_stats = result["counts"]

    def refresh_stats(self) -> dict:
        """Compute and apply the view figures now (synchronously)."""
        result = self.compute_stats(self.current_grid())
        self.apply_stats(result)
        return result


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
