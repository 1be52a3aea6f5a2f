"""The Bokeh map figure: Web Mercator (or pixel) axes, one tile renderer per layer, basemaps.

``MapFigure`` owns a Bokeh ``figure`` and keeps its renderers in step with a
:class:`~viewer.ui.state.MapState`: one ``TileRenderer`` per layer that is or has been
shown (a layer never shown has none, so it asks for no tiles), keyed by the layer's
``uid``, whose ``WMTSTileSource`` points at ``tiles/<token>/{Z}/{X}/{Y}.png`` (relative to
the server root, so it works behind a path-prefix proxy; wrapping around the antimeridian
for georeferenced layers); a new token swaps in a new tile source. The figure subscribes to
what it shows: the layer list, basemap, view, and each layer's token, visibility, opacity
and name.

A figure that starts from a centre and zoom (a shared link, ``set_center``) sizes its
ranges from them at the real frame size on its first paint (:data:`_TARGET_JS`), so a link
shows the same centre and zoom in any window (no drift on reload). Range changes reach
Python through a small CustomJS that debounces them (250 ms) and writes the view and the
frame size into a ColumnDataSource.
"""
from __future__ import annotations

import math
from typing import Callable

from bokeh.events import Tap
from bokeh.models import (ColumnDataSource, CustomJS, CustomJSTicker, CustomJSTickFormatter, Glyph, GlyphRenderer, Grid,
                          MultiLine, Range1d, Scatter, Text, TileRenderer, WMTSTileSource)
from bokeh.plotting import figure

from ..core.errors import InvalidArgument
from ..core.tiles import pixel_tile_source_options
from .basemaps import BASEMAPS, graticule
from .state import LayerState, MapState

__all__ = ["MapFigure", "glyph_renderer", "DEBOUNCE_MS", "FIT_PADDING"]

DEBOUNCE_MS = 250
#: Margin around a fitted layer, as a share of its extent on each side.
FIT_PADDING = 0.03

#: Once, when the frame has its size (the first tile renderer's first paint sets the ranges, or
#: the first range report): centre ``target = [x, y, resolution]`` with the frame's own size.
_TARGET_JS = """
const plot = plot_ref;
if (plot._viewer_target_done || target == null || target.length != 3) { return; }
const w = plot.inner_width || 0, h = plot.inner_height || 0;
if (!(w > 0 && h > 0)) { return; }
plot._viewer_target_done = true;
const [cx, cy, res] = target;
const x0 = cx - res * w / 2, x1 = cx + res * w / 2, y0 = cy - res * h / 2, y1 = cy + res * h / 2;
plot.x_range.setv({start: x0, end: x1, reset_start: x0, reset_end: x1});
plot.y_range.setv({start: y0, end: y1, reset_start: y0, reset_end: y1});
"""
#: The same, for a figure without a shown tile layer (no first paint moves its ranges): run at
#: the first range report, which the target's own range change then repeats.
_TARGET_FIRST_JS = """
  if (!plot._viewer_target_done && target != null && target.length == 3
      && (plot.inner_width || 0) > 0 && (plot.inner_height || 0) > 0) {
    plot._viewer_target_done = true;
    const fw = plot.inner_width, fh = plot.inner_height, [cx, cy, res] = target;
    plot.x_range.setv({start: cx - res * fw / 2, end: cx + res * fw / 2});
    plot.y_range.setv({start: cy - res * fh / 2, end: cy + res * fh / 2});
    return;
  }"""

#: Longitude ticks of the x axis on and beyond the antimeridian (Bokeh's Mercator ticker stops at
#: +-180 degrees): Bokeh's AdaptiveTicker (mantissas 1, 2, 5; 6 ticks) in degrees, unclamped.
_LON_TICKS_JS = """
const k = 180 / (Math.PI * 6378137.0);
const a = Math.min(cb_data.start, cb_data.end) * k, b = Math.max(cb_data.start, cb_data.end) * k;
const span = b - a, n = 6;
if (!(span > 0) || !isFinite(span)) { return []; }
const ideal = span / n, mag = Math.pow(10, Math.floor(Math.log10(ideal)));
let best = 1, err = Infinity;
for (const m of [0.5, 1, 2, 5, 10]) {
  const e = Math.abs(n - span / (m * mag));
  if (e < err) { err = e; best = m; }
}
const step = best * mag / PARTS, out = [];
for (let t = Math.ceil(a / step) * step; t <= b + step * 1e-9; t += step) { out.push(t / k); }
return out;
"""
#: A tick's longitude, wrapped into [-180, 180] (x beyond the world is the next turn of it).
_LON_LABEL_JS = """
const lon = tick * 180 / (Math.PI * 6378137.0);
let w = ((lon + 180) % 360 + 360) % 360 - 180;
if (w === -180 && lon > 0) { w = 180; }
return String(Number(w.toFixed(6)));
"""

#: Once per figure, at its first range report: keep the centre and the scale (map units per pixel, on
#: each axis) when the frame changes size (side panels folded, the window resized, split views side by
#: side), as web maps do; Bokeh keeps the ranges instead, so the zoom changed, and a frame that changed
#: its aspect stretched the map (side by side: 2.4x narrower pixels than tall). The scale is recorded at
#: every range change at the recorded size (a pan or zoom, see :data:`_VIEW_JS`); the size is looked at
#: every 200 ms.
_KEEP_SCALE_JS = """
if (plot._viewer_keep == null) {
  const keep = plot._viewer_keep = {w: 0, h: 0, rx: 0, ry: 0};
  keep.record = (w, h) => {
    keep.w = w; keep.h = h;
    keep.rx = (plot.x_range.end - plot.x_range.start) / w; keep.ry = (plot.y_range.end - plot.y_range.start) / h;
  };
  // a fitted first view stays fitted (the extent re-fitted in the new frame) until the user moves the map
  plot._viewer_fit = fit;
  const timer = setInterval(() => {
    if (plot.document == null) { clearInterval(timer); return; }  // the figure left the page for good
    const w = plot.inner_width || 0, h = plot.inner_height || 0, xr = plot.x_range, yr = plot.y_range;
    if (!(w > 0 && h > 0) || !isFinite(xr.start) || !isFinite(xr.end) || !isFinite(yr.start) || !isFinite(yr.end)) {
      return;
    }
    if (keep.w == 0) { keep.record(w, h); return; }
    if (w == keep.w && h == keep.h) { return; }
    const f = plot._viewer_fit;
    let cx = (xr.start + xr.end) / 2, cy = (yr.start + yr.end) / 2;
    if (f != null && f.length == 4) {
      const r = Math.max((f[2] - f[0]) / w, (f[3] - f[1]) / h);
      keep.rx = Math.sign(xr.end - xr.start) * r; keep.ry = Math.sign(yr.end - yr.start) * r;
      cx = (f[0] + f[2]) / 2; cy = (f[1] + f[3]) / 2;
    }
    keep.w = w; keep.h = h;
    xr.setv({start: cx - keep.rx * w / 2, end: cx + keep.rx * w / 2});
    yr.setv({start: cy - keep.ry * h / 2, end: cy + keep.ry * h / 2});
  }, 200);
}"""

#: Browser events of a user moving the map (they end a fitted first view, see :data:`_KEEP_SCALE_JS`).
_USER_MOVES = ("panstart", "wheel", "pinchstart", "doubletap")

_VIEW_JS = """
const plot = plot_ref;
/* KEEP SCALE */
if (cb_obj != null && USER_MOVES.includes(cb_obj.event_name)) { plot._viewer_fit = null; }
{ // a range change at the recorded size (a pan or zoom) is the scale to keep: recorded now, not at the next
  // tick (a wheel zoom whose longer tick labels narrowed the frame by 6 px in the same tick was undone)
  const keep = plot._viewer_keep;
  if (keep.w > 0 && plot.inner_width == keep.w && plot.inner_height == keep.h) {
    keep.record(keep.w, keep.h);
  }
}
if (plot._viewer_timer != null) { clearTimeout(plot._viewer_timer); }
plot._viewer_timer = setTimeout(() => {
  plot._viewer_timer = null;
  /* TARGET */
  const xr = plot.x_range, yr = plot.y_range;
  if (!isFinite(xr.start) || !isFinite(xr.end) || !isFinite(yr.start) || !isFinite(yr.end)) { return; }
  const w = plot.inner_width || 0, h = plot.inner_height || 0;
  const d = src.data;
  if (d.x0 && d.x0[0] === xr.start && d.x1[0] === xr.end && d.y0[0] === yr.start && d.y1[0] === yr.end
      && d.w[0] === w && d.h[0] === h) { return; }
  src.data = {x0: [xr.start], x1: [xr.end], y0: [yr.start], y1: [yr.end], w: [w], h: [h]};
}, delay);
"""


def glyph_renderer(glyph: Glyph, source: ColumnDataSource, **kwargs) -> GlyphRenderer:
    """A renderer of ``glyph`` over ``source`` without the glyph copies ``figure.<glyph>()`` makes.

    Bokeh's plotting methods add a "nonselection" and a "muted" copy of every glyph to the
    document (three models per renderer); left "auto", BokehJS derives them in the browser, so
    each session's document has two models fewer per renderer to build, send and decode. The map's
    own glyphs are never muted; tapped, the other items keep their lines (not dimmed to 0.1)."""
    return GlyphRenderer(data_source=source, glyph=glyph, **kwargs)


class MapFigure:
    """A Bokeh figure mirroring a :class:`MapState`."""

    def __init__(self, state: MapState, base_url: str = "", height: int = 600,
                 in_doc: Callable[[Callable[[], None]], None] | None = None) -> None:
        self.state = state
        state.debounce = 0.05  # the browser already debounces range changes (DEBOUNCE_MS)
        self.base_url = base_url
        self._in_doc = in_doc or (lambda fn: fn())
        self._renderers: dict[str, TileRenderer] = {}
        self._tokens: dict[str, str] = {}
        self._echo = False
        self._seen_view = False
        self.on_tap: Callable[[float, float], None] | None = None
        # A layer to fit: start from its extent. BokehJS fits that extent to the real frame on the
        # first paint (the tile source keeps the extent and widens one axis to the frame's aspect),
        # so the tiles asked for first are the ones that stay. Else start from the centre and zoom:
        # _TARGET_JS sizes the ranges from them at the real frame size before the first tiles.
        extent = self._fit_extent()
        target = None if extent is not None else list(state.view_target())
        x0, y0, x1, y1 = extent or state.view_for(*state.center, state.zoom)
        pixel = state.pixel_mode
        kwargs = {} if pixel else {"x_axis_type": "mercator", "y_axis_type": "mercator"}
        fig = figure(x_range=Range1d(x0, x1), y_range=Range1d(y0, y1), match_aspect=True,
                     sizing_mode="stretch_both", min_height=300, height=height,
                     tools="pan,wheel_zoom,box_zoom,reset,tap", active_scroll="wheel_zoom",
                     output_backend="canvas", title=None, **kwargs)  # no (empty) title model
        fig.toolbar.logo = None
        fig.center = [c for c in fig.center if not isinstance(c, Grid)]  # no grid lines: not in the document at all
        fig.background_fill_color = "#eef1f4"
        fig.border_fill_color = "#ffffff"
        fig.xaxis.axis_label = "column" if pixel else "longitude"
        fig.yaxis.axis_label = "row (down)" if pixel else "latitude"
        if pixel:
            fig.yaxis.formatter = CustomJSTickFormatter(code="return (-tick).toString()")
        else:
            fig.xaxis.ticker = CustomJSTicker(major_code=_LON_TICKS_JS.replace("PARTS", "1"),
                                              minor_code=_LON_TICKS_JS.replace("PARTS", "5"))
            fig.xaxis.formatter = CustomJSTickFormatter(code=_LON_LABEL_JS)
        self.fig = fig
        self.grat_source = ColumnDataSource({"xs": [], "ys": [], "lx": [], "ly": [], "text": []})
        self._grat_lines = glyph_renderer(MultiLine(xs="xs", ys="ys", line_color="#8f9ba8", line_alpha=0.55,
                                                    line_width=1), self.grat_source, level="image")
        self._grat_text = glyph_renderer(Text(x="lx", y="ly", text="text", text_font_size="9px", text_color="#46505a",
                                              x_offset=3, y_offset=-3, background_fill_color="#ffffff",
                                              background_fill_alpha=0.6), self.grat_source, level="glyph")
        self.tap_source = ColumnDataSource({"x": [], "y": []})
        self._tap_marker: GlyphRenderer | None = None  # made on the first tap: not in the first document
        self._basemap_renderer: TileRenderer | None = None
        self.view_source = ColumnDataSource({"x0": [], "x1": [], "y0": [], "y1": [], "w": [], "h": []})
        self.target_callback = CustomJS(args={"plot_ref": fig, "target": target}, code=_TARGET_JS)
        fig.y_range.js_on_change("end", self.target_callback)  # the last range end a first paint sets
        cb = CustomJS(args={"plot_ref": fig, "src": self.view_source, "delay": DEBOUNCE_MS, "target": target,
                            "fit": list(extent) if extent is not None else None},
                      code=_VIEW_JS.replace("/* TARGET */", _TARGET_FIRST_JS).replace("/* KEEP SCALE */", _KEEP_SCALE_JS)
                      .replace("USER_MOVES", repr(list(_USER_MOVES))))
        self._view_callback = cb
        for r in (fig.x_range, fig.y_range):
            r.js_on_change("start", cb)
            r.js_on_change("end", cb)
        fig.js_on_event("rangesupdate", self.target_callback, cb)
        for event in _USER_MOVES:  # the same callback ends a kept fit: the user's own view from then on
            fig.js_on_event(event, cb)
        self.view_source.on_change("data", self._on_view_data)
        fig.on_event(Tap, self._on_tap_event)
        self._layer_watch = state.watch_layers(lambda *e: self._in_doc(lambda: self._on_layers(*e)),
                                               ["token", "visible", "opacity", "name"])
        self._watchers = [
            state.param.watch(lambda *_: self._in_doc(self.sync), ["basemap"]),
            state.param.watch(lambda *_: self._in_doc(self._push_view), ["view"]),
        ]
        self.sync()
        self.update_graticule(x0, y0, x1, y1)

    def _fit_extent(self) -> tuple[float, float, float, float] | None:
        target = self.state.fit_target
        if not target:
            return None
        try:
            extent = self.state.layer_extent(target)
        except InvalidArgument:  # removed meanwhile
            return None
        if extent is None:
            return None
        x0, y0, x1, y1 = extent
        px, py = (x1 - x0) * FIT_PADDING, (y1 - y0) * FIT_PADDING
        return (x0 - px, y0 - py, x1 + px, y1 + py)

    def dispose(self) -> None:
        """Stop following the state (the figure is being replaced)."""
        for w in self._watchers:
            self.state.param.unwatch(w)
        self._watchers = []
        self._layer_watch.unwatch()

    # browser -> state -------------------------------------------------------------------
    def _on_view_data(self, attr, old, new) -> None:
        if not new.get("x0"):
            return
        x0, x1, y0, y1 = new["x0"][0], new["x1"][0], new["y0"][0], new["y1"][0]
        w, h = new["w"][0], new["h"][0]
        if not all(math.isfinite(v) for v in (x0, x1, y0, y1)):
            return
        first = not self._seen_view and bool(w and h)
        self._seen_view = self._seen_view or bool(w and h)
        self._echo = True
        try:
            if w and h:
                self.state.param.update(viewport=(int(w), int(h)), live=True)
            self.state.set_view(x0, y0, x1, y1)
            if first and self.state.fit_target:
                self.state.fit_target = None  # BokehJS fitted the extent the figure started with
        finally:
            self._echo = False
        self.update_graticule(x0, y0, x1, y1)

    def _on_tap_event(self, event) -> None:
        self.tap_source.data = {"x": [event.x], "y": [event.y]}
        if self._tap_marker is None:
            # Appended, the other renderers untouched: a tap can be a click of a draw tool (a polygon's
            # vertex), whose drawing BokehJS would drop if the renderers it draws into were replaced.
            self._tap_marker = glyph_renderer(Scatter(x="x", y="y", marker="circle_cross", size=14, fill_alpha=0.0,
                                                      line_color="#e6007e", line_width=2), self.tap_source)
            self.fig.renderers = [*self.fig.renderers, self._tap_marker]
        if self.on_tap is not None:
            self.on_tap(event.x, event.y)

    # state -> browser -------------------------------------------------------------------
    def _push_view(self) -> None:
        if self._echo or not self.state.view:
            return
        if not self._seen_view and not self.state.fit_target:
            # No frame size from the browser yet (a session built ahead, then given a shared link's view):
            # the view's box assumes a viewport; the centre and zoom go as the target, which the browser
            # sizes at its real frame (else a link made at 577 px wide reopened 0.64 zoom levels out).
            target = list(self.state.view_target())
            self.target_callback.args = {**self.target_callback.args, "target": target}
            self._view_callback.args = {**self._view_callback.args, "target": target, "fit": None}
        x0, y0, x1, y1 = self.state.view
        self.fig.x_range.update(start=x0, end=x1)
        self.fig.y_range.update(start=y0, end=y1)
        self.update_graticule(x0, y0, x1, y1)

    def update_graticule(self, x0: float, y0: float, x1: float, y1: float) -> None:
        offline = BASEMAPS[self.state.basemap].url is None
        if self.state.pixel_mode or not offline:
            data = {"xs": [], "ys": [], "lx": [], "ly": [], "text": []}
        else:
            data = graticule(x0, y0, x1, y1)
        if data != dict(self.grat_source.data):
            self.grat_source.data = data

    def tile_source(self, layer: LayerState) -> WMTSTileSource:
        """The tile source of a layer's current token (wrapping around the antimeridian on a map)."""
        url = self.base_url + layer.tile_path()
        if self.state.pixel_mode:
            g = layer.image.native_grid()
            return WMTSTileSource(url=url, **pixel_tile_source_options(g.width, g.height))
        return WMTSTileSource(url=url, wrap_around=True, max_zoom=24)

    def _basemap(self) -> TileRenderer | None:
        bm = BASEMAPS[self.state.basemap]
        if bm.url is None or self.state.pixel_mode:
            return None
        r = self._basemap_renderer
        if r is None or r.tile_source.url != bm.url:
            r = TileRenderer(tile_source=WMTSTileSource(url=bm.url, attribution=bm.attribution,
                                                        max_zoom=bm.max_zoom))
            self._basemap_renderer = r
        return r

    def _on_layers(self, *events) -> None:
        """A layer's token, visibility, opacity or name changed: update its renderer; the list
        changed (added, removed, reordered): sync all."""
        if any(e.obj is self.state for e in events):
            self.sync()
            return
        for layer in {id(e.obj): e.obj for e in events}.values():
            r = self._renderers.get(layer.uid)
            if r is None:
                if layer.visible:
                    self.sync()  # first shown: it gets its renderer
                continue
            self._update_renderer(layer, r)

    def _update_renderer(self, layer: LayerState, r: TileRenderer) -> None:
        if self._tokens[layer.uid] != layer.token:
            r.tile_source = self.tile_source(layer)
            self._tokens[layer.uid] = layer.token
        if r.alpha != layer.opacity:
            r.alpha = layer.opacity
        if r.visible != layer.visible:
            r.visible = layer.visible
        if r.name != layer.name:
            r.name = layer.name

    def sync(self) -> None:
        """Bring the figure's renderers in line with the state's layers (order, token, alpha)."""
        wanted = [self._grat_lines, self._grat_text]
        basemap = self._basemap()
        if basemap is not None:
            wanted.append(basemap)
        alive = set()
        for layer in self.state.layers:
            key = layer.uid
            alive.add(key)
            r = self._renderers.get(key)
            if r is None and not layer.visible:
                # No renderer until the layer is shown: a hidden layer asks for no tiles, and the
                # document becomes idle (Panel's onload) once the shown layers' tiles are drawn
                # (BokehJS never counts a hidden TileRenderer as finished).
                continue
            if r is None:
                r = TileRenderer(tile_source=self.tile_source(layer), alpha=layer.opacity, visible=layer.visible,
                                 name=layer.name)
                self._renderers[key] = r
                self._tokens[key] = layer.token
            else:
                self._update_renderer(layer, r)
            wanted.append(r)
        for key in list(self._renderers):
            if key not in alive:
                del self._renderers[key]
                del self._tokens[key]
        if self._tap_marker is not None:
            wanted.append(self._tap_marker)
        if list(self.fig.renderers) != wanted:
            self.fig.renderers = wanted
        if self.state.view:
            self.update_graticule(*self.state.view)

    def renderer(self, layer: LayerState) -> TileRenderer | None:
        """The tile renderer of a layer (None while it was never shown)."""
        return self._renderers.get(layer.uid)

    def layer_renderers(self) -> list[TileRenderer]:
        """The layers' tile renderers, bottom to top."""
        return [self._renderers[l.uid] for l in self.state.layers if l.uid in self._renderers]

