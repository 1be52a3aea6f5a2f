"""Histograms (Bokeh): of a region's bands, and of the current view for the selected layer.

``histogram_figure`` draws ``histogram`` reducer outputs (one coloured series per band) with
the layer's min/max marked as vertical lines. ``ViewHistogram`` keeps one such chart of
what is in view: after each pan or zoom (debounced) and each change of the selected layer
or its visualization it evaluates the layer on the view's grid off the event loop
(:data:`~viewer.ui.viewport.STATS_EXECUTOR`, once the view's tiles are served) and updates
the chart's data sources.
"""
from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Sequence

import panel as pn
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

from ..core.errors import InvalidArgument
from ..core.grid import Grid
from ..core.image import Image
from ..core.stats import band_histograms
from .notify import doc_runner, notify_error
from .state import LayerState, MapState
from .viewport import STATS_EXECUTOR, after_tiles, spawn

__all__ = ["histogram_figure", "histogram_columns", "mark_columns", "band_colors", "layer_image", "layer_marks",
           "view_histogram", "ViewHistogram", "VIEW_BUCKETS", "VIEW_CHART"]

VIEW_BUCKETS = 64
#: Name of the view histogram's figure (its sources: ``-bars``, ``-marks``).
VIEW_CHART = "viewer-view-histogram"
_RGB = ("#d62728", "#2ca02c", "#1f77b4")
_ONE = "#4a6fa5"
_EMPTY_BARS = {"left": [], "right": [], "top": [], "color": [], "band": []}
_EMPTY_MARKS = {"x": [], "y0": [], "y1": [], "color": [], "label": []}


def band_colors(n: int) -> list[str]:
    """Series colours: red, green, blue for three bands, one blue otherwise."""
    return list(_RGB) if n == 3 else [_ONE] * n


def histogram_columns(series: Sequence[tuple[str, dict | None]]) -> dict:
    """Quad columns of ``(band, histogram reducer output)`` series (None: no bars)."""
    cols: dict[str, list] = {k: [] for k in _EMPTY_BARS}
    for (band, hist), color in zip(series, band_colors(len(series))):
        if not hist:
            continue
        lo, w = hist["bucketMin"], hist["bucketWidth"]
        for i, n in enumerate(hist["histogram"]):
            cols["left"].append(lo + i * w)
            cols["right"].append(lo + (i + 1) * w)
            cols["top"].append(int(n))
            cols["color"].append(color)
            cols["band"].append(band)
    return cols


def mark_columns(marks: Sequence[tuple[str, float, float]], top: float, n_bands: int) -> dict:
    """Vertical-line columns marking each band's visualization min and max: ``(band, min, max)``."""
    cols: dict[str, list] = {k: [] for k in _EMPTY_MARKS}
    for (band, lo, hi), color in zip(marks, band_colors(n_bands)):
        for x, what in ((lo, "min"), (hi, "max")):
            cols["x"].append(float(x))
            cols["y0"].append(0.0)
            cols["y1"].append(float(top))
            cols["color"].append(color)
            cols["label"].append(f"{band} {what} {x:g}")
    return cols


def histogram_figure(title: str = "", height: int = 150, name: str | None = None
                     ) -> tuple[Any, ColumnDataSource, ColumnDataSource]:
    """(figure, bar source, mark source): an empty histogram chart (titles are drawn as text).
    With ``name`` the sources are named ``<name>-bars`` and ``<name>-marks`` (for page scripts)."""
    fig = figure(height=height, sizing_mode="stretch_width", tools="pan,wheel_zoom,reset,save",
                 toolbar_location=None, title=title, output_backend="canvas", name=name)
    fig.toolbar.logo = None
    bars = ColumnDataSource(dict(_EMPTY_BARS), name=f"{name}-bars" if name else None)
    marks = ColumnDataSource(dict(_EMPTY_MARKS), name=f"{name}-marks" if name else None)
    quads = fig.quad(left="left", right="right", top="top", bottom=0, source=bars, fill_color="color",
                     line_color="color", fill_alpha=0.45, line_alpha=0.8)
    fig.segment(x0="x", y0="y0", x1="x", y1="y1", source=marks, line_color="color", line_width=2,
                line_dash="dashed")
    fig.add_tools(HoverTool(renderers=[quads], tooltips=[("band", "@band"), ("from", "@left{0.[000]}"),
                                                          ("to", "@right{0.[000]}"), ("pixels", "@top")]))
    fig.y_range.start = 0
    fig.yaxis.axis_label = "pixels"
    fig.title.text_font_size = "11px"
    fig.axis.major_label_text_font_size = "9px"
    fig.yaxis.axis_label_text_font_size = "9px"
    return fig, bars, marks


def fill_histogram(bars: ColumnDataSource, marks: ColumnDataSource, series: Sequence[tuple[str, dict | None]],
                   vis: Sequence[tuple[str, float, float]]) -> None:
    """Put ``series`` and the min/max marks ``vis`` into a chart's sources."""
    cols = histogram_columns(series)
    top = max(cols["top"], default=1) or 1
    bars.data = cols
    marks.data = mark_columns(vis, top, len(series))


def layer_image(layer: LayerState) -> tuple[Image, Any]:
    """(image, class table, None or False): what statistics of a layer are taken of.

    Image layers: the visualized bands with the layer's mask switch applied; class layers: the
    class band with the layer's class table; mask layers: the mask image (not as classes:
    ``False``, its mean is the share of the mask)."""
    if layer.kind == "classes":
        return layer.display_image().select([0]), layer.effective_classes()
    if layer.kind == "image":
        return layer.vis_image(), None
    return layer.display_image(), False


def layer_marks(layer: LayerState, image: Image) -> list[tuple[str, float, float]]:
    """``(band, min, max)`` of an image layer's visualization (none for class and mask layers)."""
    if layer.kind != "image":
        return []
    n = len(image.bands)
    lo = list(layer.vmin) * n if len(layer.vmin) == 1 else list(layer.vmin)
    hi = list(layer.vmax) * n if len(layer.vmax) == 1 else list(layer.vmax)
    return [(b.name, float(a), float(z)) for b, a, z in zip(image.bands, lo, hi)]


def view_histogram(layer: LayerState, grid: Grid, buckets: int = VIEW_BUCKETS) -> dict:
    """The selected layer's histogram on ``grid`` (thread-safe): ``{"layer", "series", "marks", "count"}``."""
    image, _ = layer_image(layer)
    hists = band_histograms(image, grid, buckets)
    return {"layer": layer.name, "series": [(h["band"], h["histogram"]) for h in hists],
            "marks": layer_marks(layer, image), "count": max((h["count"] for h in hists), default=0),
            "grid": hists[0]["grid"] if hists else None}


class ViewHistogram(pn.viewable.Viewer):
    """A histogram of the current view for the selected layer, updated on pan and zoom."""

    def __init__(self, state: MapState, in_doc: Callable[[Callable[[], None]], None] | None = None,
                 debounce: float = 0.3, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self.debounce = debounce
        self.fig, self.bars, self.marks = histogram_figure("", height=170, name=VIEW_CHART)
        self._in_doc = in_doc or doc_runner(lambda: self.fig.document)
        self.caption = pn.widgets.StaticText(value="", sizing_mode="stretch_width", margin=(0, 6),
                                             styles={"font-size": "11px", "color": "#555"})
        self.pane = pn.pane.Bokeh(self.fig, sizing_mode="stretch_width", height=170)
        self.result: dict | None = None
        self._generation = 0
        state.param.watch(self.schedule, ["view", "viewport", "selected"])
        state.watch_layers(self.schedule, ["token", "visible"])  # was MapState "revision" (removed)
        self.schedule()

    def _layer(self) -> LayerState | None:
        name = self.state.selected
        if not name:
            return None
        try:
            return self.state.layer(name)
        except InvalidArgument:
            return None

    def schedule(self, *_: Any) -> None:
        """Ask for the histogram of the current view after :attr:`debounce` seconds."""
        self._generation += 1
        spawn(functools.partial(self._run, self._generation))

    async def _run(self, gen: int) -> None:
        await asyncio.sleep(self.debounce)
        await after_tiles()  # the view's tiles first: a chart may wait, the map should not
        layer = self._layer()
        if gen != self._generation or layer is None:
            return
        try:
            grid = self.state.current_grid()
            result = await asyncio.get_running_loop().run_in_executor(STATS_EXECUTOR, view_histogram, layer, grid)
        except Exception as exc:  # noqa: BLE001 - shown as a notification
            if gen == self._generation:
                notify_error(exc, "view histogram")
            return
        if gen == self._generation:
            self._in_doc(functools.partial(self._apply, result))

    def refresh(self) -> dict | None:
        """Compute and show the histogram now (synchronously; scripts and tests)."""
        layer = self._layer()
        if layer is None:
            return None
        result = view_histogram(layer, self.state.current_grid())
        self._apply(result)
        return result

    def _apply(self, result: dict) -> None:
        self.result = result
        fill_histogram(self.bars, self.marks, result["series"], result["marks"])
        self.fig.title.text = result["layer"]
        g = result["grid"] or {"width": 0, "height": 0}
        self.caption.value = (f"{result['count']:,} valid pixels of the view ({g['width']}×{g['height']} grid); "
                              "dashed: the layer's min and max")

    def __panel__(self):
        return pn.Column(self.pane, self.caption, sizing_mode="stretch_width")
