"""App assembly: the map view (figure + side panels), the page and the demo.

Serve it with ``uv run viewer`` (tile routes included), or with Panel itself::

    panel serve viewer/ui/app.py --plugins viewer.server.plugin
"""
from __future__ import annotations

import asyncio
import functools
import html
import os
import weakref
from pathlib import Path
from typing import Any

import panel as pn

from viewer.core.catalog import get_catalog, set_catalog
from viewer.core.image import Image
from viewer.ui.figure import MapFigure
from viewer.ui.inspector import Inspector
from viewer.ui.layer_panel import LayerPanel
from viewer.ui.legends import Legends
from viewer.ui.export import ExportPanel
from viewer.ui.map import Map
from viewer.ui.notify import doc_runner, notify_error, notify_text
from viewer.ui.state import MapState

__all__ = ["MapView", "build_app", "page", "demo_map", "tile_base_url", "layer_errors_html", "CSS", "TITLE"]

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

TITLE = "viewer — images, masks and segmentation overlays"
#: Seconds after which a served page builds its side panels even if the map has not finished drawing.
PANELS_FALLBACK_S = 10.0
HEADER_COLOR = "#1f6f8b"
SIDEBAR_WIDTH = 360
_HEADER_STYLE = {"color": "white", "background": HEADER_COLOR, "font-size": "1.6em", "padding": "10px 24px",
                 "white-space": "nowrap", "overflow": "hidden"}

_ALERT_CSS = """
.viewer-alert { background: #f8d7da; color: #842029; border: 1px solid #f5c2c7; border-radius: 4px;
                padding: 8px 12px; font-size: 13px; }
"""


def tile_base_url() -> str:
    """Prefix of tile URLs: ``$VIEWER_TILE_URL`` if set; on a Panel server the path back to
    the server root (relative, so proxies with a path prefix work); in a notebook or script
    a local tile server started in the background."""
    env = os.environ.get("VIEWER_TILE_URL")
    if env is not None:
        return env if env == "" or env.endswith("/") else env + "/"
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        rel = pn.state.rel_path or ""
        return f"{rel}/" if rel else ""
    from .tileserver import ensure_tile_server

    return ensure_tile_server()


def layer_errors_html(state: MapState) -> str:
    """An alert saying which layers could not be stored for the tile server ('' when all were)."""
    failed = [l for l in state.layers if l.error]
    if not failed:
        return ""
    names = ", ".join(html.escape(l.name) for l in failed)
    return (f"<div class='viewer-alert' role='alert'><b>Layers could not be stored for the tile server; the map "
            f"may not draw them</b> ({names}). {html.escape(failed[0].error)}</div>")


class MapView(pn.viewable.Viewer):
    """Everything one :class:`~viewer.ui.map.Map` shows: figure, layers, legends, inspector, export.

    The figure is made at once; the side panels (layer cards, legends, inspector, export) on first
    use, so that a served page can send the map first and the panels after it is drawn
    (:meth:`fill_panels`).
    """

    def __init__(self, map_obj: Map, **params: Any) -> None:
        super().__init__(**params)
        self.map = map_obj
        state = map_obj.state
        self.pane: pn.pane.Bokeh | None = None
        self._runner = doc_runner(lambda: self.map_figure.fig.document, self._push)
        self._base_url = tile_base_url()
        self.map_figure = MapFigure(state, base_url=self._base_url, height=map_obj.height, in_doc=self._runner)
        self.map_figure.on_tap = self._on_tap
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
            else:  # the view statistics' busy indicator
                part = pn.indicators.LoadingSpinner(value=state.stats_loading, size=16, margin=(6, 4))
                state.param.watch(lambda e: setattr(part, "value", e.new), "stats_loading")
            self._parts[name] = part
        return part

    layer_panel = property(lambda self: self._part("layer_panel"), doc="The layer cards (:class:`LayerPanel`).")
    legends = property(lambda self: self._part("legends"), doc="Band and class legends (:class:`Legends`).")
    inspector = property(lambda self: self._part("inspector"), doc="The click inspector (:class:`Inspector`).")
    export = property(lambda self: self._part("export"), doc="Downloads of the view (:class:`ExportPanel`).")
    status = property(lambda self: self._part("status"), doc="Busy indicator of the view statistics.")

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

    def _new_figure(self) -> None:
        self.map_figure.dispose()
        self.map_figure = MapFigure(self.map.state, base_url=self._base_url, height=self.map.height,
                                    in_doc=self._runner)
        self.map_figure.on_tap = self._on_tap
        self.pane.object = self.map_figure.fig

    def _push(self) -> None:
        if self.pane is not None:
            pn.io.push_notebook(self.pane)

    def sidebar(self) -> pn.Column:
        """Layer controls (the app's left sidebar)."""
        return pn.Column(self.layer_panel, sizing_mode="stretch_width")

    def side_panels(self) -> pn.Column:
        """Legend, inspector and export (next to the map); export is made when its card opens."""
        return pn.Column(*self._side_cards(), sizing_mode="stretch_width", scroll=True)

    def _side_cards(self) -> list:
        from .layer_panel import lazy_card

        card = dict(sizing_mode="stretch_width", margin=(4, 2))
        export = pn.Card(title="Export", collapsed=True, **card)
        lazy_card(export, lambda: [self.export])
        return [pn.Card(pn.Row(self.status, pn.pane.HTML("<small>legend of the current view</small>")),
                        self.legends, title="Legend", **card),
                pn.Card(self.inspector, title="Inspector", **card),
                export]

    async def fill_panels(self, sidebar: pn.Column, side: pn.Column) -> None:
        """Put the side panels into the page's placeholders, one part at a time.

        Run as an onload callback of a served page: the map is on screen (its tiles drawn), and
        between the parts the event loop serves tiles and other sessions."""
        await asyncio.sleep(0)
        side.objects = self._side_cards()
        await asyncio.sleep(0)
        sidebar.objects = [self.layer_panel]

    def layout(self) -> pn.Row:
        """Map and tabbed side panel in one row (notebooks)."""
        tabs = pn.Tabs(("Layers", self.layer_panel), ("Legend", self.legends), ("Inspector", self.inspector),
                       ("Export", self.export), dynamic=False, sizing_mode="stretch_width")
        h = self.map.height
        self.pane.param.update(sizing_mode="stretch_width", height=h, min_height=None)
        return pn.Row(self.pane, pn.Column(self.alert, tabs, width=380, height=h, scroll=True),
                      sizing_mode="stretch_width", height=h, stylesheets=[CSS])

    def __panel__(self):
        return self.layout()


def _local_stylesheets(doc) -> None:
    """Components take their stylesheets from this server, also in a session built after its page
    was sent (``viewer serve`` answers page requests with a page built earlier: Panel's
    ``reuse_sessions``). Panel points stylesheets at its CDN unless the document names the local
    dist folder, which it only does while rendering a page; without this such a session would ask
    a CDN (unreachable offline) for its CSS."""
    from panel.io.resources import LOCAL_DIST

    if "dist_url" not in doc.template_variables:
        rel = pn.state.rel_path
        doc.template_variables["dist_url"] = f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST


def _forget_views_when_closed(doc) -> None:
    """When the session ends, drop what Panel still registers for its document.

    Panel 1.9 removes a closed session's page from ``pn.state._views`` but not its notification
    area (a root of the document too), which keeps the destroyed document and the area's models
    alive for the life of the process: a leak of every session (found with ``gc.get_referrers``
    after closing pages; ``benchmarks/bench_page.py --sessions`` shows the memory)."""
    ref = weakref.ref(doc)

    def forget(session_context) -> None:
        from panel.io.state import state

        views = getattr(state, "_views", None)
        closed = ref()
        if closed is None or not isinstance(views, dict):
            return
        for key, view in list(views.items()):
            if isinstance(view, tuple) and len(view) > 2 and view[2] is closed:
                views.pop(key, None)

    doc.on_session_destroyed(forget)


def _load_anyway(doc) -> None:
    """Run the page's onload callbacks (the side panels) if BokehJS has not reported the document
    idle within :data:`PANELS_FALLBACK_S`: it never does while a shown tile layer has no tile in
    view (a pixel-coordinate view beside the image) or an online basemap never answers."""
    from panel.io.state import set_curdoc

    session = getattr(doc.session_context, "session", None)
    if session is None or getattr(session, "connection_count", 0) == 0:
        return  # no browser on this session (yet): nothing to show the panels to
    with set_curdoc(doc):
        if pn.state.loaded:
            return
    schedule = getattr(pn.state, "_schedule_on_load", None)  # what Panel runs on document_ready
    if schedule is not None:
        schedule(doc, None)


def _placeholder(text: str) -> pn.widgets.StaticText:
    """Plain text (a Bokeh Div): no HTML pane in the first document, so no MathJax (see ``MapView.alert``)."""
    return pn.widgets.StaticText(value=text, sizing_mode="stretch_width", margin=(8, 10),
                                 styles={"color": "#666", "font-style": "italic"})


def demo_map() -> Map:
    """The bundled demo: Landsat true colour, its cloud mask, the cloud-masked composite,
    two class overlays and the Sentinel-2 scene, centred on the Landsat scene."""
    m = Map()
    img = Image("LANDSAT/LC08/SAMPLE")
    # Pre-Collection BQA: cloud confidence is bits 14-15 (11 = high).
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3).rename("cloud")
    true_colour = {"bands": ["B4", "B3", "B2"], "min": [6000, 6800, 7700], "max": [10500, 10500, 11000],
                   "gamma": 1.3}
    s2 = Image("COPERNICUS/S2/SAMPLE")
    m.add_layer(s2, {"bands": ["B4", "B3", "B2"], "min": 300, "max": 1800, "gamma": 1.2}, "Sentinel-2 true colour")
    tc = m.add_layer(img, true_colour, "Landsat 8 true colour")
    tc.param.update(mask_image=cloud, mask_label="cloud mask", mask_invert=True)
    m.add_layer(img.updateMask(cloud.Not()), true_colour, "Cloud-masked composite", shown=False)
    m.add_overlay(Image("VIEWER/SAMPLE_CLASSES/LC08_KMEANS"), "k-means clusters", shown=False, opacity=0.6)
    m.add_overlay(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"), "Rule-based classes", opacity=0.45)
    m.add_mask_layer(cloud, "Cloud mask (BQA high confidence)", color="#ff00ff", opacity=0.7)
    m.state.selected = "Landsat 8 true colour"
    m.center_object("Landsat 8 true colour")
    return m


def _header() -> pn.pane.Bokeh:
    """The page's title bar (a Bokeh Div: plain HTML, no MathJax)."""
    from bokeh.models import Div

    return pn.pane.Bokeh(Div(text=html.escape(TITLE), disable_math=True, sizing_mode="stretch_width", margin=0,
                             styles=_HEADER_STYLE), sizing_mode="stretch_width", margin=0)


def page(view: MapView, sidebar: pn.viewable.Viewable, side: pn.viewable.Viewable) -> pn.Column:
    """Title bar; layer controls on the left; the map with the legend, inspector and export on its right.

    A plain layout rather than one of Panel's templates: a template puts 9 roots, Bootstrap's CSS
    and JavaScript and (through its HTML panes) MathJax into the page, which made building each
    session about twice as slow and the page's first paint later.
    """
    left = pn.Column(sidebar, width=SIDEBAR_WIDTH, scroll=True, sizing_mode="stretch_height",
                     styles={"border-right": "1px solid #dee2e6"}, margin=0)
    right = pn.Column(side, width=340, sizing_mode="stretch_height")
    main = pn.Column(view.alert, pn.Row(view.pane, right, sizing_mode="stretch_both"), sizing_mode="stretch_both",
                     margin=(0, 5))
    return pn.Column(_header(), pn.Row(left, main, sizing_mode="stretch_both", margin=0),
                     sizing_mode="stretch_both", margin=0)


def build_app(catalog: str | os.PathLike | None = None, map_obj: Map | None = None) -> pn.Column:
    """The served app: the demo map (or ``map_obj``) and its side panels (see :func:`page`).

    What the first screen needs is built now: the page, the map figure with its shown layers,
    and placeholders. The layer cards, legends, inspector and export are built once the page has
    drawn the map (``pn.state.onload``: Bokeh's document-ready, which waits for the map's tiles),
    so neither the page's first byte nor the map's tiles wait for them. The returned layout has
    the :class:`Map` as ``.map`` (for tests and scripts).
    """
    pn.extension(notifications=True, raw_css=[CSS])
    pn.config.notifications = True
    pn.config.exception_handler = lambda exc: notify_error(exc)
    catalog = catalog or os.environ.get("VIEWER_CATALOG")
    if catalog and Path(catalog).resolve() != get_catalog().path:  # once per process, not per session
        set_catalog(catalog)
    m = map_obj or demo_map()
    location = pn.state.location
    url_state = None
    if location is not None:
        from viewer.ui.urlstate import link_url

        url_state = link_url(m.state, location)  # before the figure: it starts at the linked view
    view = m.view
    if url_state is not None:
        view.url_state = url_state
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:  # served: the panels after the map
        _local_stylesheets(doc)
        _forget_views_when_closed(doc)
        sidebar = pn.Column(_placeholder("Loading the layer controls…"), sizing_mode="stretch_width")
        side = pn.Column(_placeholder("Loading the legend…"), sizing_mode="stretch_width", scroll=True)
        pn.state.onload(functools.partial(view.fill_panels, sidebar, side))
        doc.add_timeout_callback(functools.partial(_load_anyway, doc), int(PANELS_FALLBACK_S * 1000))
    else:
        sidebar, side = view.sidebar(), view.side_panels()
    layout = page(view, sidebar, side)
    layout.map = m
    return layout


if __name__.startswith("bokeh"):
    build_app().servable(title=TITLE)
