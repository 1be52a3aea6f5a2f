"""App assembly: the map view (figure + side panels), the template and the demo.

Serve it with ``uv run viewer`` (tile routes included), or with Panel itself::

    panel serve viewer/ui/app.py --plugins viewer.server.plugin
"""
from __future__ import annotations

import html
import os
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

__all__ = ["MapView", "build_app", "demo_map", "tile_base_url", "layer_errors_html", "CSS"]

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
    """Everything one :class:`~viewer.ui.map.Map` shows: figure, layers, legends, inspector, export."""

    def __init__(self, map_obj: Map, **params: Any) -> None:
        super().__init__(**params)
        self.map = map_obj
        state = map_obj.state
        self.pane: pn.pane.Bokeh | None = None
        self._runner = doc_runner(lambda: self.map_figure.fig.document, self._push)
        self._base_url = tile_base_url()
        self.map_figure = MapFigure(state, base_url=self._base_url, height=map_obj.height, in_doc=self._runner)
        self.pane = pn.pane.Bokeh(self.map_figure.fig, sizing_mode="stretch_both", min_height=400)
        # a map shown before its first layer may switch between map and pixel coordinates
        state.param.watch(lambda e: self._runner(self._new_figure), "pixel_mode")
        self.layer_panel = LayerPanel(map_obj)
        self.legends = Legends(state)
        self.inspector = Inspector(state)
        self.map_figure.on_tap = self.inspector.on_click
        self.export = ExportPanel(state)
        self.status = pn.indicators.LoadingSpinner(value=False, size=16, margin=(6, 4))
        state.param.watch(lambda e: setattr(self.status, "value", e.new), "stats_loading")
        state.param.watch(lambda e: e.new and notify_text(f"view statistics: {e.new}"), "stats_error")
        self.alert = pn.pane.HTML(sizing_mode="stretch_width", stylesheets=[_ALERT_CSS], margin=(4, 5))
        state.param.watch(lambda e: self._show_layer_errors(), "revision")
        self._show_layer_errors()

    def _show_layer_errors(self) -> None:
        text = layer_errors_html(self.map.state)
        if self.alert.object != text:
            self.alert.param.update(object=text, visible=bool(text))

    def _new_figure(self) -> None:
        self.map_figure.dispose()
        self.map_figure = MapFigure(self.map.state, base_url=self._base_url, height=self.map.height,
                                    in_doc=self._runner)
        self.map_figure.on_tap = self.inspector.on_click
        self.pane.object = self.map_figure.fig

    def _push(self) -> None:
        if self.pane is not None:
            pn.io.push_notebook(self.pane)

    def sidebar(self) -> pn.Column:
        """Layer controls (the app's left sidebar)."""
        return pn.Column(self.layer_panel, sizing_mode="stretch_width")

    def side_panels(self) -> pn.Column:
        """Legend, inspector and export (next to the map)."""
        card = dict(sizing_mode="stretch_width", margin=(4, 2))
        return pn.Column(
            pn.Card(pn.Row(self.status, pn.pane.HTML("<small>legend of the current view</small>")),
                    self.legends, title="Legend", **card),
            pn.Card(self.inspector, title="Inspector", **card),
            pn.Card(self.export, title="Export", collapsed=True, **card),
            sizing_mode="stretch_width", scroll=True,
        )

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


def build_app(catalog: str | os.PathLike | None = None, map_obj: Map | None = None):
    """The served app: a template with the demo map (or ``map_obj``) and its side panels."""
    pn.extension(notifications=True, raw_css=[CSS])
    pn.config.notifications = True
    pn.config.exception_handler = lambda exc: notify_error(exc)
    catalog = catalog or os.environ.get("VIEWER_CATALOG")
    if catalog and Path(catalog).resolve() != get_catalog().path:  # once per process, not per session
        set_catalog(catalog)
    m = map_obj or demo_map()
    view = m.view
    template = pn.template.BootstrapTemplate(
        title="viewer — images, masks and segmentation overlays", sidebar=[view.sidebar()],
        main=[view.alert, pn.Row(view.pane, pn.Column(view.side_panels(), width=340, sizing_mode="stretch_height"),
                     sizing_mode="stretch_both")],
        sidebar_width=360, header_background="#1f6f8b", raw_css=[CSS])
    location = pn.state.location
    if location is not None:
        from viewer.ui.urlstate import link_url

        view.url_state = link_url(m.state, location)
    template.map = m  # for tests and scripts
    return template


if __name__.startswith("bokeh"):
    build_app().servable()
