"""The region panel: statistics, class areas, scores and exports of the visible layers in a region.

The region is drawn on the map (:class:`~viewer.ui.region_tool.RegionTool`: box or polygon)
or set in Python (``Map.add_region``). For each visible layer the panel shows, at a scale
in metres (chosen from the layers unless set), the per-band histogram with the layer's
min/max marked and the valid-pixel ``count``, ``mean``, ``min``, ``max`` and ``stdDev``
(:func:`viewer.core.region_stats.region_summary`: ``Image.reduceRegion``'s numbers), class
areas for class layers, and IoU/precision/recall per class for each visible pair of class
layers sharing a class table (the truth is the one named like "truth"/"label", else the
other of one named like "prediction", else the lower layer). It exports the chosen layer
within the region as GeoTIFF, NPY and the ``data.computePixels`` request JSON that
reproduces them. :func:`install` puts the draw tools and the cards into a ``MapView``.

:func:`compute_region` is the pure part (thread-safe, also ``Map.region_stats``); the panel
runs it off the event loop and reports errors as notifications.
"""
from __future__ import annotations

import asyncio
import functools
import html
import io
import json
import math
import re
from typing import Any

import panel as pn

from ..core.errors import InvalidArgument, ViewerError
from ..core.geometry import geodesic_area, to_geojson
from ..core.region_stats import region_comparison, region_export, region_request, region_summary, same_class_table
from ..core.regions import MAX_PIXELS, region_grid
from .charts import ViewHistogram, fill_histogram, histogram_figure, layer_image, layer_marks
from .notify import doc_runner, notify_error, notify_text
from .region_tool import RegionState, RegionTool, region_state, user_roi
from .state import LayerState, MapState
from .viewport import EXECUTOR, spawn

__all__ = ["compute_region", "map_region_stats", "install", "draw_tools", "auto_scale", "region_html", "export_bytes",
           "request_json", "RegionPanel", "AUTO_PIXELS", "MAX_PAIRS", "REGION_CARD", "HISTOGRAM_CARD"]

#: Pixels a region is reduced on at most when the scale is chosen automatically.
AUTO_PIXELS = 1_000_000
#: The tables' style, carried by each HTML pane (a pane's shadow root does not see the page's CSS).
TABLE_CSS = """
.viewer-legend-title { font-weight: 600; margin: 4px 0 2px 0; }
.viewer-small { font-size: 11px; color: #555; }
.viewer-hint { color: #666; font-style: italic; }
.viewer-swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #444; vertical-align: -2px; }
.viewer-table { border-collapse: collapse; font-size: 12px; width: 100%; }
.viewer-table td, .viewer-table th { padding: 1px 6px; border-bottom: 1px solid #eee; text-align: left; }
.viewer-num { font-variant-numeric: tabular-nums; text-align: right !important; }
"""
#: Titles of the side cards (and notebook tabs).
REGION_CARD, HISTOGRAM_CARD = "Region", "View histogram"
#: Prediction/truth pairs compared at most.
MAX_PAIRS = 3
_TRUTH = re.compile(r"truth|label|reference|ground|manual", re.IGNORECASE)
_PRED = re.compile(r"predict|\bpred\b|model|output", re.IGNORECASE)
_NICE = (1, 2, 2.5, 5)


def _visible(state: MapState) -> list[LayerState]:
    return [l for l in state.layers if l.visible]


def _nice_up(x: float) -> float:
    """The smallest 1, 2, 2.5, 5 x 10^k not below ``x``."""
    e = math.floor(math.log10(x))
    for m in _NICE + (10,):
        if m * 10 ** e >= x * (1 - 1e-9):
            return float(m * 10 ** e)
    return float(10 ** (e + 1))


def _native_metres(layer: LayerState) -> float | None:
    g = layer.image.native_grid()
    if g is None or g.crs is None:
        return None
    res = min(g.resolution())
    return res * 111_319.49079327357 if g.crs.is_geographic else res


def auto_scale(state: MapState, geometry: Any, max_pixels: int = AUTO_PIXELS) -> float:
    """A scale (metres) for a region: the finest native resolution of the visible layers, made
    coarser (to a round number) while the region would hold more than ``max_pixels`` pixels."""
    layers = [l for l in _visible(state) if _native_metres(l)] or [l for l in state.layers if _native_metres(l)]
    if not layers:
        raise InvalidArgument("no georeferenced layer to choose a region scale from; set the scale",
                              value=None, allowed="a scale in metres")
    layer = min(layers, key=lambda l: _native_metres(l))
    scale = float(_native_metres(layer))
    grid = region_grid(layer.image, geometry, scale, max_pixels=math.inf)
    n = grid.width * grid.height
    if n > max_pixels:
        scale = _nice_up(scale * math.sqrt(n / max_pixels))
    return scale


def _pairs(layers: list[LayerState]) -> list[tuple[LayerState, LayerState]]:
    """(prediction, truth) pairs of visible class layers sharing a class table."""
    classes = [l for l in layers if l.kind == "classes"]
    out = []
    for i, a in enumerate(classes):
        for b in classes[i + 1:]:
            if not same_class_table(a.classes, b.classes):
                continue
            if _TRUTH.search(b.name) and not _TRUTH.search(a.name) or \
                    _PRED.search(a.name) and not _PRED.search(b.name):
                truth, pred = b, a
            else:
                truth, pred = a, b
            out.append((pred, truth))
    return out[:MAX_PAIRS]


def compute_region(state: MapState, geometry: Any, scale: float | None = None,
                   max_pixels: float = MAX_PIXELS) -> dict:
    """The panel's figures for the visible layers of ``state`` within ``geometry`` (thread-safe).

    ``{"scale", "area_m2" (geodesic), "layers": [{"name", "kind", "summary", "marks"} | {"name", "kind", "error"}],
    "comparisons": [{"prediction", "truth", "per_class", "accuracy", "mean_iou", "pixel_count"}]}``;
    a layer whose figures cannot be computed (outside its CRS's area, over ``max_pixels``)
    carries the error's message instead.
    """
    if geometry is None:
        raise InvalidArgument("no region: draw a box or polygon on the map, or call Map.add_region(geometry)",
                              value=None, allowed="a region")
    scale = auto_scale(state, geometry) if scale is None else scale
    layers = _visible(state)
    out: dict[str, Any] = {"scale": scale, "area_m2": geodesic_area(to_geojson(geometry)), "layers": [],
                           "comparisons": []}
    for layer in layers:
        entry: dict[str, Any] = {"name": layer.name, "kind": layer.kind}
        try:
            image, classes = layer_image(layer)
            entry["summary"] = region_summary(image, geometry, scale, max_pixels=max_pixels, classes=classes)
            entry["marks"] = layer_marks(layer, image)
        except ViewerError as exc:
            entry["error"] = exc.message
        out["layers"].append(entry)
    for pred, truth in _pairs(layers):
        entry = {"prediction": pred.name, "truth": truth.name}
        try:
            cmp = region_comparison(layer_image(pred)[0], layer_image(truth)[0], geometry, scale,
                                    max_pixels=max_pixels, classes=truth.effective_classes())
            entry.update(per_class=cmp.per_class, accuracy=cmp.accuracy, mean_iou=cmp.mean_iou,
                         pixel_count=cmp.pixel_count)
        except ViewerError as exc:
            entry["error"] = exc.message
        out["comparisons"].append(entry)
    return out


# rendering ---------------------------------------------------------------------------------
def _num(v: Any, stat: str) -> str:
    """A table cell: the number shown rounded, its exact value in ``data-value``."""
    if v is None:
        return "<td class='viewer-num' data-value='none'>—</td>"
    text = f"{int(v):,}" if stat == "count" else f"{v:.6g}"
    return f"<td class='viewer-num' data-stat='{stat}' data-value='{float(v)!r}'>{text}</td>"


def _area(m2: float | None) -> str:
    if m2 is None:
        return "—"
    if m2 >= 1e6:
        return f"{m2 / 1e6:.3g} km²"
    if m2 >= 1e4:
        return f"{m2 / 1e4:.3g} ha"
    return f"{m2:,.0f} m²"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def _layer_html(entry: dict) -> str:
    name = html.escape(entry["name"])
    head = f"<div class='viewer-region-layer' data-layer='{name}'><div class='viewer-legend-title'>{name}</div>"
    if "error" in entry:
        return head + f"<div class='viewer-small' role='alert'>{html.escape(entry['error'])}</div></div>"
    bands = entry["summary"]["bands"]
    if not any(b["count"] for b in bands):
        return head + "<div class='viewer-small viewer-region-empty'>no valid pixels in the region</div></div>"
    classes = entry["summary"].get("classes")
    if classes:  # a class band: its classes, not the mean of its ids
        n = bands[0]["count"]
        parts = [head, f"<div class='viewer-small'>valid pixels: <span data-stat='count' data-value='{float(n)!r}'>"
                       f"{n:,}</span></div>"]
    else:
        rows = []
        for b in bands:
            cells = "".join(_num(b[s], s) for s in ("count", "mean", "min", "max", "stdDev"))
            rows.append(f"<tr data-band='{html.escape(b['band'])}'><td>{html.escape(b['band'])}</td>{cells}</tr>")
        parts = [head, "<table class='viewer-table viewer-region-stats'><tr><th>band</th><th>valid px</th>"
                 "<th>mean</th><th>min</th><th>max</th><th>std</th></tr>", *rows, "</table>"]
    if classes:
        parts.append("<table class='viewer-table viewer-region-classes'><tr><th>class</th><th>pixels</th>"
                     "<th>area</th><th>%</th></tr>")
        for c in classes:
            swatch = f"<span class='viewer-swatch' style='background:{html.escape(c['color'])}'></span>"
            parts.append(f"<tr data-class='{int(c['id'])}'><td>{swatch} {html.escape(c['name'])}</td>"
                         f"{_num(c['count'], 'count')}<td class='viewer-num' data-value='{c['area_m2']!r}'>"
                         f"{_area(c['area_m2'])}</td><td class='viewer-num'>{c['percent']:.1f}</td></tr>")
        parts.append("</table>")
    parts.append("</div>")
    return "".join(parts)


def _comparison_html(entry: dict) -> str:
    title = f"{html.escape(entry['prediction'])} vs truth {html.escape(entry['truth'])}"
    head = f"<div class='viewer-legend-title viewer-region-pair'>{title}</div>"
    if "error" in entry:
        return head + f"<div class='viewer-small' role='alert'>{html.escape(entry['error'])}</div>"
    rows = [f"<tr data-class='{int(c['id'])}'><td>{html.escape(c['name'])}</td><td class='viewer-num'>"
            f"{_pct(c['iou'])}</td><td class='viewer-num'>{_pct(c['precision'])}</td><td class='viewer-num'>"
            f"{_pct(c['recall'])}</td></tr>" for c in entry["per_class"]]
    foot = (f"<div class='viewer-small'>accuracy {_pct(entry['accuracy'])}, mean IoU {_pct(entry['mean_iou'])} "
            f"over {entry['pixel_count']:,} pixels</div>")
    return "".join([head, "<table class='viewer-table viewer-region-scores'><tr><th>class</th><th>IoU</th>"
                    "<th>precision</th><th>recall</th></tr>", *rows, "</table>", foot])


def _scale_html(result: dict) -> str:
    area = f"region of {_area(result['area_m2'])}, " if result.get("area_m2") else ""
    text = (f"<div class='viewer-small viewer-region-scale' data-scale='{result['scale']!r}'>"
            f"{area}at {result['scale']:g} m per pixel</div>")
    return text + ("" if result["layers"] else "<div class='viewer-hint'>no visible layer</div>")


def _charted(entry: dict) -> bool:
    """Whether a layer's figures get a histogram (image and mask layers with valid pixels)."""
    return "error" not in entry and entry["kind"] != "classes" and any(b["count"] for b in entry["summary"]["bands"])


def region_html(result: dict) -> str:
    """The panel's tables in one piece (every name escaped)."""
    parts = [_scale_html(result)]
    parts += [_layer_html(e) for e in result["layers"]]
    parts += [_comparison_html(e) for e in result["comparisons"]]
    return "".join(parts)


# exports -----------------------------------------------------------------------------------
def export_bytes(layer: LayerState, geometry: Any, scale: float, fmt: str) -> bytes:
    """The layer (as the panel reduces it) within the region: ``GEO_TIFF`` or ``NPY`` bytes."""
    return region_export(layer_image(layer)[0], geometry, scale, fmt)


def request_json(layer: LayerState, geometry: Any, scale: float, fmt: str = "GEO_TIFF") -> dict:
    """The ``data.computePixels`` request reproducing :func:`export_bytes` (JSON-able)."""
    return {"method": "data.computePixels", "layer": layer.name,
            "request": region_request(layer_image(layer)[0], geometry, scale, fmt),
            "note": "pass 'request' to viewer.data.computePixels; fileFormat NPY gives the NPY export"}


def _filename(name: str, ext: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "layer") + f"_region.{ext}"


# the panel ---------------------------------------------------------------------------------
class RegionPanel(pn.viewable.Viewer):
    """Region statistics of a :class:`~viewer.ui.mapview.MapView` (a side card), and its draw tools."""

    def __init__(self, view: Any, tool: RegionTool | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.view = view
        self.state: MapState = view.map.state
        self.region: RegionState = region_state(self.state)
        self._in_doc = doc_runner(lambda: view.map_figure.fig.document)
        self.tool = tool or draw_tools(view)
        self.scale = pn.widgets.FloatInput(label="scale (m per pixel; empty: automatic)", value=self.region.scale,
                                           start=0.01, placeholder="automatic", sizing_mode="stretch_width",
                                           css_classes=["viewer-region-scale-input"])
        self.scale.param.watch(self._on_scale, "value")
        self.region.param.watch(lambda e: setattr(self.scale, "value", e.new), "scale")  # set in Python
        self.clear_button = pn.widgets.Button(label="Clear region", sizing_mode="stretch_width")
        self.clear_button.on_click(lambda e: self.tool.clear())
        self.status = pn.widgets.StaticText(value="", sizing_mode="stretch_width", margin=(2, 6),
                                            styles={"font-size": "11px", "color": "#555"})
        self.tables = pn.pane.HTML("", sizing_mode="stretch_width", disable_math=True, margin=(0, 4),
                                   stylesheets=[TABLE_CSS])
        self.charts = pn.Column(sizing_mode="stretch_width", margin=0)
        self.export_layer = pn.widgets.Select(label="layer to export", options=[], sizing_mode="stretch_width",
                                              css_classes=["viewer-region-export"])
        self.tif = pn.widgets.FileDownload(callback=functools.partial(self._download, "GEO_TIFF"),
                                           filename="region.tif", label="GeoTIFF of the region",
                                           sizing_mode="stretch_width")
        self.npy = pn.widgets.FileDownload(callback=functools.partial(self._download, "NPY"), filename="region.npy",
                                           label="NPY of the region", sizing_mode="stretch_width")
        self.json = pn.widgets.FileDownload(callback=self._download_json, filename="region_request.json",
                                            label="computePixels request JSON", sizing_mode="stretch_width")
        self.result: dict | None = None
        self._generation = 0
        self.region.param.watch(lambda e: self.schedule(), ["geometry", "scale"])
        self.state.watch_layers(self._on_layers, ["token", "visible", "name"])
        self._visible_key = self._key()
        self._export_options()
        self.schedule()

    # inputs -----------------------------------------------------------------------------
    def _on_scale(self, event) -> None:
        value = event.new
        self.region.scale = float(value) if value else None

    def _key(self) -> tuple:
        return tuple((l.name, l.token) for l in _visible(self.state))

    def _on_layers(self, *_: Any) -> None:
        self._export_options()
        key = self._key()
        if key != self._visible_key:  # shown/hidden, added or restyled layers change the figures
            self._visible_key = key
            self.schedule()

    def _export_options(self) -> None:
        names = [l.name for l in _visible(self.state)]
        value = self.export_layer.value
        self.export_layer.options = names
        if value not in names:
            self.export_layer.value = self.state.selected if self.state.selected in names else (names or [None])[0]

    # computation ------------------------------------------------------------------------
    def schedule(self) -> None:
        """Recompute the figures off the event loop (scripts and tests: :meth:`refresh`)."""
        self._generation += 1
        if self.region.geometry is None:
            self._show(None)
            return
        self.status.value = "computing…"
        if not spawn(functools.partial(self._run, self._generation)):
            self.refresh()  # no event loop (a script, a saved page): now

    async def _run(self, gen: int) -> None:
        await asyncio.sleep(0)
        geometry, scale = self.region.geometry, self.region.scale
        try:
            result = await asyncio.get_running_loop().run_in_executor(EXECUTOR, compute_region, self.state,
                                                                      geometry, scale)
        except Exception as exc:  # noqa: BLE001 - shown as a notification
            if gen == self._generation:
                self.status.value = ""
                notify_error(exc, "region")
            return
        if gen == self._generation:
            self._in_doc(functools.partial(self._show, result))

    def refresh(self) -> dict | None:
        """Compute and show the figures now (synchronously)."""
        if self.region.geometry is None:
            self._show(None)
            return None
        result = compute_region(self.state, self.region.geometry, self.region.scale)
        self._show(result)
        return result

    def _show(self, result: dict | None) -> None:
        self.result = result
        for download in (self.tif, self.npy, self.json):  # nothing to download before a region is drawn
            download.disabled = self.region.geometry is None
        if result is None:
            self.status.value = ""
            self.tables.object = ("<div class='viewer-hint'>Draw a region: pick the box tool in the map's toolbar, "
                                  "then shift+drag on the map; or pick the polygon tool, press and hold for the "
                                  "first vertex, click the next ones, press and hold for the last. (In a notebook: "
                                  "Map.add_region(geometry).)</div>")
            self.charts.objects = []
            return
        self.status.value = ""
        self.tables.object = _scale_html(result)
        parts: list = []
        html_pane = functools.partial(pn.pane.HTML, sizing_mode="stretch_width", disable_math=True, margin=(0, 4),
                                      stylesheets=[TABLE_CSS])
        for entry in result["layers"]:  # each layer's tables, then its histogram
            if "error" in entry:
                notify_text(f"region, layer {entry['name']}: {entry['error']}")
            parts.append(html_pane(_layer_html(entry)))
            if _charted(entry):
                fig, bars, marks = histogram_figure(entry["name"], height=130)
                fill_histogram(bars, marks, [(b["band"], b["histogram"]) for b in entry["summary"]["bands"]],
                               entry["marks"])
                parts.append(pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=130))
        parts += [html_pane(_comparison_html(e)) for e in result["comparisons"]]
        self.charts.objects = parts

    # exports ----------------------------------------------------------------------------
    def _export_target(self) -> tuple[LayerState, Any, float]:
        geometry = self.region.geometry
        if geometry is None:
            raise InvalidArgument("no region to export: draw one first", value=None, allowed="a region")
        name = self.export_layer.value
        if not name:
            raise InvalidArgument("no visible layer to export", value=None, allowed="a visible layer")
        layer = self.state.layer(name)
        scale = self.region.scale if self.region.scale else auto_scale(self.state, geometry)
        return layer, geometry, scale

    async def _download(self, fmt: str) -> io.BytesIO:
        """The export's bytes, computed off the event loop (Panel awaits an async download callback)."""
        widget = self.tif if fmt == "GEO_TIFF" else self.npy
        try:
            layer, geometry, scale = self._export_target()
            widget.filename = _filename(layer.name, "tif" if fmt == "GEO_TIFF" else "npy")
            data = await asyncio.get_running_loop().run_in_executor(EXECUTOR, export_bytes, layer, geometry, scale,
                                                                    fmt)
            return io.BytesIO(data)
        except Exception as exc:  # noqa: BLE001 - reported as a notification
            notify_error(exc, "region export")
            return io.BytesIO(b"")

    def _download_json(self) -> io.BytesIO:
        try:
            layer, geometry, scale = self._export_target()
            self.json.filename = _filename(layer.name, "json")
            return io.BytesIO(json.dumps(request_json(layer, geometry, scale), indent=2).encode())
        except Exception as exc:  # noqa: BLE001 - reported as a notification
            notify_error(exc, "region export")
            return io.BytesIO(b"")

    def __panel__(self):
        return pn.Column(self.status, self.scale, self.tables, self.charts, self.export_layer, self.tif, self.npy,
                         self.json, self.clear_button, sizing_mode="stretch_width")


def draw_tools(view: Any) -> RegionTool:
    """The region draw tools on a MapView's map figure, again on each new figure (pixel-mode switch);
    none on a map in pixel coordinates."""
    tool = RegionTool(region_state(view.map.state), in_doc=doc_runner(lambda: view.map_figure.fig.document),
                      state=view.map.state)

    def attach() -> None:
        if not view.map.state.pixel_mode:
            tool.attach(view.map_figure.fig)

    attach()
    view.pane.param.watch(lambda e: attach(), "object")
    return tool


def install(view: Any) -> RegionTool:
    """Put the region draw tools on ``view``'s map and the "Region" and "View histogram" cards
    in its side panel (``MapView.add_card``; each card's contents are built when first opened).
    A second call for the same view does nothing. The tool is kept on the view (a module-level
    weak-key dict leaked every session's view: the tool refers back to it)."""
    tool = getattr(view, "_region_tool", None)
    if tool is not None:  # once per view
        return tool
    tool = view._region_tool = draw_tools(view)
    view.add_card(REGION_CARD, lambda: [RegionPanel(view, tool)], collapsed=True)
    view.add_card(HISTOGRAM_CARD, lambda: [ViewHistogram(view.map.state)], collapsed=True)
    return tool


def map_region_stats(state: MapState, scale: float | None = None) -> dict:
    """``Map.region_stats``: :func:`compute_region` of the map's region."""
    roi = user_roi(state)
    return compute_region(state, None if roi is None else roi.getInfo(), scale)
