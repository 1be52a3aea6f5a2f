"""``MapView``: everything one :class:`~viewer.ui.map.Map` shows (figure, layer panel, legends,
inspector, export, add-layer and tool cards), for the served page and for notebooks.

The figure, the busy text and the basemap notice are made at once (they are in the first
document); the side panels on first use, so that a served page can send the map first and the
panels after it is drawn (:meth:`MapView.fill_panels`).
"""
from __future__ import annotations

import asyncio
import html
from typing import TYPE_CHECKING, Any, Callable

import panel as pn
from bokeh.models import CustomJS, Div

from ..core.config import settings
from .add_layer import AddLayerPanel
from .basemaps import BASEMAPS, BASEMAP_PROBE_JS
from .compare import ComparePanel
from .export import ExportPanel
from .figure import MapFigure
from .inspector import Inspector
from .layer_panel import LayerPanel, lazy_card
from .legends import Legends
from .notify import doc_runner, notify_text
from .region_panel import install as install_region_tools
from .timeseries import install as install_time_card
from .state import MapState
from .tileserver import ensure_tile_server

if TYPE_CHECKING:
    from .map import Map

__all__ = ["MapView", "ToolCard", "tile_base_url", "layer_errors_html", "CSS", "BUSY_TEXT"]

CSS = """
.viewer-legend-title { font-weight: 600; margin: 4px 0 2px 0; }
.viewer-small { font-size: 11px; color: #555; }
.viewer-hint { color: #666; font-style: italic; }
.viewer-swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #444; vertical-align: -2px; }
.viewer-table { border-collapse: collapse; font-size: 12px; width: 100%; }
.viewer-table td, .viewer-table th { padding: 1px 6px; border-bottom: 1px solid #eee; text-align: left; }
.viewer-num { font-variant-numeric: tabular-nums; text-align: right !important; }
.viewer-colorbar { height: 12px; border: 1px solid #555; margin-top: 2px; }
.viewer-colorbar-labels { display: flex; justify-content: space-between; font-size: 11px; }
.viewer-inspect-layer { margin: 6px 0; }
.viewer-coords { font-size: 12px; margin-bottom: 4px; }
"""

#: What the page says while the view statistics (class counts, live stretches) are computed.
BUSY_TEXT = "updating…"

#: BokehJS 3.9 keeps the map's aspect after a resize per tile layer: each TileRenderer view
#: rescales the shared ranges by the size change, so with n tile layers a wider frame (a side
#: panel collapsed, a window resized) widened the x range n times over and stretched the map.
#: This patch (installed once per page, on the tile renderer views' class) lets only the first
#: view rescale for a new frame size; its peers take the new size as seen. A layer shown later
#: then also keeps the current view instead of snapping it to a zoom level.
TILE_ASPECT_FIX_JS = """
const pv = Bokeh.index.find_one(plot);
if (pv == null) { return; }
const tiles = [...pv.renderer_views.values()].filter((v) => typeof v._enforce_aspect_ratio === "function");
if (tiles.length === 0) { return; }
const proto = Object.getPrototypeOf(tiles[0]);
if (proto._viewer_aspect_fix) { return; }
const original = proto._enforce_aspect_ratio;
proto._enforce_aspect_ratio = function () {
  const {width, height} = this.plot_view.frame.bbox;
  if (this._last_width !== width || this._last_height !== height) {
    for (const peer of this.plot_view.renderer_views.values()) {
      if (peer !== this && peer._last_width === width && peer._last_height === height) {
        this._last_width = width;
        this._last_height = height;
        this.extent = peer.extent;
        return;
      }
    }
  }
  original.call(this);
};
proto._viewer_aspect_fix = true;
"""

#: Widget tooltips (a button's ``description``) hide on the button's mouseleave, which never comes
#: when a click moves the button away (a layer moved up or down): the tooltip stayed over the
#: next buttons. Installed once per page: on pointer moves, a shown widget tooltip whose target
#: is not under the pointer is hidden.
STALE_TOOLTIP_JS = """
if (window._viewer_tooltips) { return; }
window._viewer_tooltips = true;
let last = 0;
document.addEventListener("pointermove", (event) => {
  const now = Date.now();
  if (now - last < 150) { return; }
  last = now;
  const path = event.composedPath();
  for (const doc of Bokeh.documents) {
    for (const m of doc._all_models.values()) {
      if (m.type !== "Tooltip" || !m.visible) { continue; }
      for (const v of Bokeh.index.find(m)) {
        if (v.target != null && !path.includes(v.target) && !path.includes(v.el)) { m.visible = false; }
      }
    }
  }
}, {capture: true, passive: true});
"""

#: The page's scripts in one callback (one model of the document instead of three), each in its
#: own function so that its early ``return``s end only itself: the basemap check, the aspect fix
#: (both idempotent) and the tooltip fix (installed once).
_PAGE_JS = "\n".join(f"(() => {{\n{code}\n}})();" for code in (BASEMAP_PROBE_JS, TILE_ASPECT_FIX_JS, STALE_TOOLTIP_JS))

_ALERT_CSS = """
.viewer-alert { background: #f8d7da; color: #842029; border: 1px solid #f5c2c7; border-radius: 4px;
                padding: 8px 12px; font-size: 13px; }
"""
_NOTICE_STYLE = {"background": "#fff3cd", "color": "#664d03", "border": "1px solid #ffecb5",
                 "border-radius": "4px", "padding": "4px 10px", "font-size": "13px"}
_BUSY_STYLE = {"color": "#1f6f8b", "font-size": "12px", "font-style": "italic"}


def tile_base_url() -> str:
    """Prefix of tile URLs: ``$VIEWER_TILE_URL`` if set; on a Panel server the path back to
    the server root (relative, so proxies with a path prefix work); in a notebook or script
    a local tile server started in the background."""
    env = settings().tile_url
    if env is not None:
        return env if env == "" or env.endswith("/") else env + "/"
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        rel = pn.state.rel_path or ""
        return f"{rel}/" if rel else ""
    return ensure_tile_server()


def layer_errors_html(state: MapState) -> str:
    """An alert saying which layers could not be stored for the tile server ('' when all were)."""
    failed = [l for l in state.layers if l.error]
    if not failed:
        return ""
    names = ", ".join(html.escape(l.name) for l in failed)
    return (f"<div class='viewer-alert' role='alert'><b>Layers could not be stored for the tile server; the map "
            f"may not draw them</b> ({names}). {html.escape(failed[0].error)}</div>")


class ToolCard:
    """A card another part of the app puts in the right-hand panel (see :meth:`MapView.add_card`)."""

    def __init__(self, title: str, build: Callable[[], list], collapsed: bool = True) -> None:
        self.title, self.build, self.collapsed = title, build, collapsed

    def card(self) -> pn.Card:
        """A new card whose contents are built when it is first opened."""
        card = pn.Card(title=html.escape(self.title), collapsed=self.collapsed, sizing_mode="stretch_width",
                       margin=(4, 2))
        lazy_card(card, self.build)
        return card


class MapView(pn.viewable.Viewer):
    """Everything one :class:`~viewer.ui.map.Map` shows: figure, layers, legends, inspector, export.

    The figure is made at once; the side panels (layer cards, legends, inspector, export) on first
    use, so that a served page can send the map first and the panels after it is drawn
    (:meth:`fill_panels`). Other parts of the app add cards to the right-hand panel with
    :meth:`add_card` (before the panels are filled).
    """

    def __init__(self, map_obj: "Map", **params: Any) -> None:
        super().__init__(**params)
        self.map = map_obj
        state = map_obj.state
        self.pane: pn.pane.Bokeh | None = None
        self.tools: list[ToolCard] = []
        self._runner = doc_runner(lambda: self.map_figure.fig.document, self._push)
        self._base_url = tile_base_url()
        # Plain text (Bokeh Divs) in the first document: no HTML pane there (it would load MathJax).
        self.status = pn.widgets.StaticText(value=BUSY_TEXT, visible=state.stats_loading, margin=(4, 10),
                                            styles=_BUSY_STYLE, css_classes=["viewer-busy"])
        state.param.watch(lambda e: setattr(self.status, "visible", e.new), "stats_loading")
        # a Bokeh Div (not a Panel widget): the page's basemap check (JavaScript) shows and fills it
        self.basemap_notice = Div(text="", visible=False, disable_math=True, sizing_mode="stretch_width",
                                  margin=(4, 5), styles=_NOTICE_STYLE, css_classes=["viewer-basemap-notice"])
        self.notice_pane = pn.pane.Bokeh(self.basemap_notice, sizing_mode="stretch_width", margin=0)
        self.map_figure = self._make_figure()
        self.pane = pn.pane.Bokeh(self.map_figure.fig, sizing_mode="stretch_both", min_height=400)
        # a map shown before its first layer may switch between map and pixel coordinates
        state.param.watch(lambda e: self._runner(self._new_figure), "pixel_mode")
        state.param.watch(lambda e: e.new and notify_text(f"view statistics: {e.new}"), "stats_error")
        # The alert holds an HTML pane only while there is something to say: Panel loads MathJax
        # (1.8 MB of JavaScript) into any page whose first document has an HTML pane.
        self.alert = pn.Column(sizing_mode="stretch_width", margin=0, visible=False)
        state.watch_layers(lambda *_: self._show_layer_errors(), ["error"])
        self._show_layer_errors()
        self._parts: dict[str, Any] = {}
        install_region_tools(self)  # region draw tools on the map; region and view-histogram cards
        install_time_card(self)  # time sliders and click time series, for maps with a collection layer
        state.param.watch(lambda e: self.show_split(), "split")

    def show_split(self) -> None:
        """Show the split view the map's state names (a shared link's) in the map's place, with the
        compare card's controls (made on first use); call once the view exists. A split view that
        other controls opened (``ComparePanel(map).split`` in a notebook) is left to them."""
        wanted = self.map.state.split
        if wanted is None and "compare" not in self._parts:
            return
        controls = self.compare.split
        if controls.split is None and wanted is not None and self.pane.object is not self.map_figure.fig:
            return
        controls.follow(wanted)

    # side panels, made on first use ---------------------------------------------------------
    def _part(self, name: str):
        part = self._parts.get(name)
        if part is None:
            state = self.map.state
            if name == "layer_panel":
                part = LayerPanel(self.map)
            elif name == "legends":
                part = Legends(state)
            elif name == "inspector":
                part = Inspector(state)
            elif name == "export":
                part = ExportPanel(state)
            elif name == "compare":
                part = ComparePanel(self.map)
            else:
                part = AddLayerPanel(self.map)
            self._parts[name] = part
        return part

    layer_panel = property(lambda self: self._part("layer_panel"), doc="The layer cards (:class:`LayerPanel`).")
    legends = property(lambda self: self._part("legends"), doc="Band and class legends (:class:`Legends`).")
    inspector = property(lambda self: self._part("inspector"), doc="The click inspector (:class:`Inspector`).")
    export = property(lambda self: self._part("export"), doc="Downloads of the view (:class:`ExportPanel`).")
    compare = property(lambda self: self._part("compare"),
                       doc="Prediction vs truth in view: IoU per class (:class:`~viewer.ui.compare.ComparePanel`).")
    add_layer = property(lambda self: self._part("add_layer"),
                         doc="Add a catalog asset as a layer (:class:`~viewer.ui.add_layer.AddLayerPanel`).")

    def add_card(self, title: str, build: Callable[[], list], collapsed: bool = True) -> ToolCard:
        """Put a card titled ``title`` (text) under the legend, inspector and export cards.

        ``build()`` returns the card's contents and is called when the card is first opened
        (at once if ``collapsed`` is False). Add cards before the page's panels are filled."""
        tool = ToolCard(title, build, collapsed)
        self.tools.append(tool)
        return tool

    def _on_tap(self, x: float, y: float) -> None:
        self.inspector.on_click(x, y)

    def _show_layer_errors(self) -> None:
        text = layer_errors_html(self.map.state)
        panes = self.alert.objects
        if (panes[0].object if panes else "") == text:
            return
        if panes:
            panes[0].object = text
        elif text:
            self.alert.objects = [pn.pane.HTML(text, sizing_mode="stretch_width", stylesheets=[_ALERT_CSS],
                                               margin=(4, 5))]
        self.alert.visible = bool(text)

    def _make_figure(self) -> MapFigure:
        mf = MapFigure(self.map.state, base_url=self._base_url, height=self.map.height, in_doc=self._runner)
        mf.on_tap = self._on_tap
        self._watch_basemap(mf.fig)
        return mf

    def _watch_basemap(self, fig) -> None:
        """A browser-side check that the online basemap answers; else show :attr:`basemap_notice`.

        BokehJS reports no tile errors, so the page loads the basemap's zoom-0 tile as an image
        when the basemap changes (and again on a pan after a failure)."""
        online = {b.url: b.name for b in BASEMAPS.values() if b.url}
        cb = CustomJS(args={"plot": fig, "notice": self.basemap_notice, "online": online}, code=_PAGE_JS)
        fig.js_on_change("renderers", cb)
        fig.js_on_change("inner_width", cb)  # the frame's first layout (the page is drawn)
        fig.js_on_event("rangesupdate", cb)  # pans and zooms

    def _new_figure(self) -> None:
        self.map_figure.dispose()
        self.map_figure = self._make_figure()
        self.pane.object = self.map_figure.fig

    def _push(self) -> None:
        if self.pane is not None:
            pn.io.push_notebook(self.pane)

    def sidebar(self) -> pn.Column:
        """Layer controls and the add-layer card (the app's left panel)."""
        return pn.Column(*self._left_cards(), sizing_mode="stretch_width")

    def side_panels(self) -> pn.Column:
        """Inspector, legend, export and tool cards (the app's right panel)."""
        return pn.Column(*self._side_cards(), sizing_mode="stretch_width")

    def _left_cards(self) -> list:
        add = pn.Card(title="Add a layer from the catalog", collapsed=True, sizing_mode="stretch_width",
                      margin=(8, 0, 3, 0), css_classes=["viewer-add-layer"])
        lazy_card(add, lambda: [self.add_layer])
        return [self.layer_panel, add]

    def _side_cards(self) -> list:
        card = dict(sizing_mode="stretch_width", margin=(4, 2))
        export = pn.Card(title="Export", collapsed=True, **card)
        lazy_card(export, lambda: [self.export])
        return [pn.Card(self.legends, self.map.user_legend_panel(), title="Legend of the current view", **card),
                pn.Card(self.inspector, title="Inspector", **card),
                self._compare_card(card), export] + [t.card() for t in self.tools]

    def _compare_card(self, options: dict) -> pn.Card:
        """Prediction vs truth (IoU in view), computed while the card is open."""
        compare = pn.Card(title="Prediction vs truth (IoU in view)", collapsed=True, css_classes=["viewer-compare"],
                          **options)

        def build() -> list:
            panel = self.compare
            panel.active = not compare.collapsed
            compare.param.watch(lambda e: setattr(panel, "active", not e.new), "collapsed")
            return [panel]

        lazy_card(compare, build)
        return compare

    async def fill_panels(self, sidebar: pn.Column, side: pn.Column) -> None:
        """Put the side panels into the page's placeholders, one part at a time.

        Run as an onload callback of a served page: the map is on screen (its tiles drawn), and
        between the parts the event loop serves tiles and other sessions."""
        await asyncio.sleep(0)
        side.objects = self._side_cards()
        await asyncio.sleep(0)
        sidebar.objects = self._left_cards()

    def layout(self) -> pn.Row:
        """Map and a side column of folding sections in one row (notebooks): layers and legend open,
        the rest folded (an accordion rather than tabs: eight tab titles do not fit its width)."""
        if CSS not in pn.config.raw_css:  # the legends' styles (the served page sets them in build_app)
            pn.config.raw_css = [*pn.config.raw_css, CSS]
        legend = pn.Column(self.legends, self.map.user_legend_panel(), sizing_mode="stretch_width")
        tabs = pn.Accordion(("Layers", self.layer_panel), ("Legend", legend), ("Inspector", self.inspector),
                            ("Compare", self.compare), ("Export", self.export), ("Add layer", self.add_layer),
                            *[(t.title, pn.Column(*t.build(), sizing_mode="stretch_width")) for t in self.tools],
                            active=[0, 1], sizing_mode="stretch_width")
        h = self.map.height
        self.pane.param.update(sizing_mode="stretch_width", height=h, min_height=None)
        return pn.Row(pn.Column(self.status, self.notice_pane, self.pane, sizing_mode="stretch_width"),
                      pn.Column(self.alert, tabs, width=380, height=h, scroll=True),
                      sizing_mode="stretch_width", height=h, stylesheets=[CSS])

    def __panel__(self):
        return self.layout()
