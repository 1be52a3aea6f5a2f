"""Click a collection layer: its band values at that point over the collection's dates (Bokeh chart).

:func:`point_series` reads, for every image of a collection, each band's stored value at the
pixel of the band's own native grid under the point (a 1 x 1 grid through the core evaluator:
no resampling), with its mask; masked or uncovered pixels are ``None``. ``TimeSeriesPanel``
follows the map's clicks (the figure's tap marker) and charts the top visible collection layer.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import html
import math
from typing import Any

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, DatetimeTickFormatter, HoverTool, Legend, LegendItem
from bokeh.plotting import figure
from pyproj import Transformer

from ..core.collection import ImageCollection
from ..core.evaluate import evaluate
from ..core.grid import Grid
from ..core.image import Image
from .basemaps import mercator_to_lonlat
from .collection_layer import CollectionLayer, TimeSlider, time_of
from .notify import doc_runner
from .state import EXECUTOR, MapState, spawn

__all__ = ["point_series", "point_values", "series_table", "TimePanel", "install", "TimeSeriesPanel",
           "collection_layers", "COLORS", "MAX_SERIES_BANDS"]

COLORS = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
MAX_SERIES_BANDS = len(COLORS)


def point_values(image: Image, x: float, y: float, crs: Any = "EPSG:3857") -> dict[str, float | None]:
    """Each band's native value at map point (x, y) in ``crs`` (``None``: masked or not covered).

    ``crs=None`` means (x, y) are pixel coordinates (column, row) of an image without a CRS.
    """
    out: dict[str, float | None] = {}
    groups: dict[Grid | None, list[int]] = {}
    for i, b in enumerate(image.bands):
        groups.setdefault(b.grid, []).append(i)
    for grid, idx in groups.items():
        if grid is None or (grid.crs is None) != (crs is None):
            for i in idx:
                out[image.bands[i].name] = None
            continue
        px, py = (x, y) if crs is None else Transformer.from_crs(crs, grid.crs, always_xy=True).transform(x, y)
        col, row = ~grid.transform @ (px, py)
        if not (math.isfinite(col) and math.isfinite(row) and 0 <= col < grid.width and 0 <= row < grid.height):
            for i in idx:
                out[image.bands[i].name] = None
            continue
        one = grid.window(int(math.floor(col)), int(math.floor(row)), 1, 1)
        for i, band in zip(idx, evaluate(image.select(idx).node, one)):
            valid = band.mask is None or float(np.asarray(band.mask).reshape(-1)[0]) > 0
            v = np.asarray(band.values).reshape(-1)[0]
            out[image.bands[i].name] = float(v) if valid else None
    return out


def point_series(collection: ImageCollection, x: float, y: float, crs: Any = "EPSG:3857",
                 bands: list[str] | None = None) -> dict:
    """The collection's band values at (x, y), image by image in acquisition order.

    Returns ``{"ids", "times" (ms or None), "dates" (datetime or None), "bands": {name: [value or None]}}``.
    """
    images = sorted((i for i in collection if time_of(i) is not None), key=time_of)
    images += [i for i in collection if time_of(i) is None]
    names = list(bands) if bands is not None else [b.name for b in images[0].bands][:MAX_SERIES_BANDS] \
        if images else []
    out: dict[str, Any] = {"ids": [], "times": [], "dates": [], "bands": {n: [] for n in names}}
    for img in images:
        t = time_of(img)
        out["ids"].append(img.getInfo().get("id"))
        out["times"].append(t)
        out["dates"].append(None if t is None else dt.datetime.fromtimestamp(t / 1000, dt.timezone.utc))
        values = point_values(img.select(names), x, y, crs)
        for n in names:
            out["bands"][n].append(values.get(n))
    return out


def _value(v: float | None) -> str:
    if v is None:
        return "—"
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


def series_table(series: dict, point: tuple[float, float] | None = None) -> str:
    """The series as an escaped HTML table: one row per image (date, image, band values)."""
    e = html.escape
    bands = list(series["bands"])
    attrs = "" if point is None else f" data-x='{point[0]!r}' data-y='{point[1]!r}'"
    head = "".join(f"<th class='viewer-num'>{e(b)}</th>" for b in bands)
    rows = []
    for i, image_id in enumerate(series["ids"]):
        d = series["dates"][i]
        cells = "".join(f"<td class='viewer-num'>{_value(series['bands'][b][i])}</td>" for b in bands)
        rows.append(f"<tr><td>{e(d.strftime('%Y-%m-%d') if d else 'undated')}</td>"
                    f"<td>{e(str(image_id or '').rsplit('/', 1)[-1])}</td>{cells}</tr>")
    return (f"<table class='viewer-table viewer-series'{attrs}><tr><th>date</th><th>image</th>{head}</tr>"
            + "".join(rows) + "</table>")


def collection_layers(state: MapState) -> list[CollectionLayer]:
    """The collection layers of a map, top first, visible ones only."""
    return [l.time for l in reversed(state.layers) if isinstance(getattr(l, "time", None), CollectionLayer)
            and l.visible]


class TimeSeriesPanel(pn.viewable.Viewer):
    """A chart of the top visible collection layer's band values at the last clicked point."""

    def __init__(self, state: MapState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self.series: dict | None = None
        self.point: tuple[float, float] | None = None
        self._generation = 0
        self.fig = figure(height=220, sizing_mode="stretch_width", x_axis_type="datetime", tools="pan,wheel_zoom,reset",
                          toolbar_location=None)
        self.fig.x_range.default_span = 30 * 86_400_000  # one date: a month around it (ms)
        self.fig.xaxis.formatter = DatetimeTickFormatter(days="%Y-%m-%d", months="%Y-%m", hours="%Y-%m-%d %H:%M")
        self.fig.xaxis.axis_label = "acquisition date"
        self.fig.xaxis.ticker.desired_num_ticks = 3  # dates of a few days ran into each other in a side panel
        # one legend from the start, its items replaced per point (a legend made by the first plot call raised
        # "cannot find a view for Legend" in the browser on later points)
        self.legend = Legend(items=[], location="top_left", click_policy="hide")
        self.fig.add_layout(self.legend)
        self.fig.yaxis.axis_label = "band value"
        self.fig.add_tools(HoverTool(tooltips=[("band", "@band"), ("date", "@date_text"), ("value", "@value"),
                                               ("image", "@image")]))
        self.note = pn.widgets.StaticText(value="Click a collection layer on the map for its time series.",
                                          sizing_mode="stretch_width")
        self.fig.visible = False  # no empty chart box before there is a series
        self.pane = pn.pane.Bokeh(self.fig, sizing_mode="stretch_width")
        self._in_doc = doc_runner(lambda: self.fig.document)  # Bokeh models change under the document lock
        self.table = pn.pane.HTML("", sizing_mode="stretch_width", margin=(2, 4))

    def on_click(self, x: float, y: float) -> None:
        """Chart the point (map coordinates) now in a script, or off the event loop in the app."""
        self._generation += 1
        self.point = (x, y)
        if not spawn(functools.partial(self._later, self._generation, x, y)):
            self.show(self.compute(x, y))

    async def _later(self, gen: int, x: float, y: float) -> None:
        result = await asyncio.get_running_loop().run_in_executor(EXECUTOR, self.compute, x, y)
        if gen == self._generation:
            self._in_doc(functools.partial(self.draw, result))  # Bokeh models: under the document lock
            self.describe(result)  # Panel objects: Panel takes care of the lock

    def compute(self, x: float, y: float) -> tuple[str, dict] | None:
        layers = collection_layers(self.state)
        if not layers:
            return None
        time = layers[0]
        crs = None if self.state.pixel_mode else "EPSG:3857"
        return time.layer.name, point_series(time.collection, x, -y if crs is None else y, crs)

    def show(self, result: tuple[str, dict] | None) -> None:
        """Chart and describe a :meth:`compute` result."""
        self.draw(result)
        self.describe(result)

    def describe(self, result: tuple[str, dict] | None) -> None:
        """The text and the table of values."""
        if result is None:
            self.series = None
            self.note.value = ("No visible collection layer: show one (a layer with a time slider), then click the "
                               "map. (In a notebook: Map.add_layer(collection, ...).)")
            self.table.object = ""
            return
        name, series = result
        self.series = series
        n = sum(v is not None for vals in series["bands"].values() for v in vals)
        self.note.value = html.escape(f"{name} at {self._where()}: {len(series['ids'])} images, {n} valid values")
        self.table.object = f"<div style='overflow-x: auto'>{series_table(series, self.point)}</div>"

    def _where(self) -> str:
        x, y = self.point if self.point else (0.0, 0.0)
        if self.state.pixel_mode:
            return f"column {x:.1f}, row {-y:.1f}"
        return "lon/lat {:.5f}, {:.5f}".format(*mercator_to_lonlat(x, y))

    def draw(self, result: tuple[str, dict] | None) -> None:
        """The chart (Bokeh models)."""
        self.fig.visible = result is not None
        if result is None:
            self.fig.renderers = []
            self.legend.items = []
            return
        series = result[1]
        renderers, items = [], []
        for k, (band, values) in enumerate(series["bands"].items()):
            keep = [i for i, (t, v) in enumerate(zip(series["dates"], values)) if t is not None and v is not None]
            src = ColumnDataSource({
                "date": [series["dates"][i] for i in keep], "value": [values[i] for i in keep],
                "band": [band] * len(keep), "date_text": [series["dates"][i].strftime("%Y-%m-%d") for i in keep],
                "image": [str(series["ids"][i]) for i in keep]})
            color = COLORS[k % len(COLORS)]
            pair = [self.fig.line("date", "value", source=src, color=color),
                    self.fig.scatter("date", "value", source=src, color=color, size=7)]
            renderers += pair
            items.append(LegendItem(label=band, renderers=pair))
        self.fig.renderers = renderers
        self.legend.items = items  # (the layer and the point are in the note above the chart)

    def follow(self, map_figure: Any) -> None:
        """Chart every click on ``map_figure`` (a :class:`~viewer.ui.figure.MapFigure`: its tap marker)."""
        def tapped(attr, old, new) -> None:
            if new.get("x"):
                self.on_click(float(new["x"][0]), float(new["y"][0]))

        map_figure.tap_source.on_change("data", tapped)

    def __panel__(self):
        return pn.Column(self.note, self.pane, self.table, sizing_mode="stretch_width")


class TimePanel(pn.viewable.Viewer):
    """A map view's time card: a time slider per collection layer and the click time series."""

    def __init__(self, view: Any, **params: Any) -> None:
        super().__init__(**params)
        self.view = view
        self.state: MapState = view.map.state
        self.series = TimeSeriesPanel(self.state)
        self.series.follow(view.map_figure)
        self._followed = view.map_figure
        view.pane.param.watch(lambda e: self._refollow(), "object")  # a new figure (pixel mode) or a split view
        self.sliders = pn.Column(sizing_mode="stretch_width", margin=0)
        self._made: dict[int, TimeSlider] = {}
        self.state.param.watch(lambda e: self._rebuild(), "layers")
        self._rebuild()

    def _refollow(self) -> None:
        if self.view.map_figure is not self._followed:
            self.series.follow(self.view.map_figure)
            self._followed = self.view.map_figure

    def _rebuild(self) -> None:
        made = {}
        for layer in reversed(self.state.layers):
            time = getattr(layer, "time", None)
            if isinstance(time, CollectionLayer):
                made[id(layer)] = self._made.get(id(layer)) or TimeSlider(time)
        self._made = made
        self.sliders.objects = list(made.values()) or [pn.widgets.StaticText(
            value="No collection layer: Map.add_layer(viewer.ImageCollection(...), vis, name) adds one.")]

    def __panel__(self):
        return pn.Column(self.sliders, self.series, sizing_mode="stretch_width")


def install(view: Any) -> bool:
    """Put the "Time series" card (time sliders and the click chart) in ``view``'s side panel when its map
    has a collection layer (``Map.add_layer(ImageCollection(...))`` before the map is shown); returns
    whether it did."""
    if not any(isinstance(getattr(l, "time", None), CollectionLayer) for l in view.map.state.layers):
        return False
    view.add_card("Time series (collections)", lambda: [TimePanel(view)], collapsed=False)
    return True
