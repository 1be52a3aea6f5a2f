"""Split maps: two layer stacks over one shared view, swiped or side by side.

``SplitMap`` holds two :class:`~viewer.ui.state.MapState`\\ s (left and right stacks; the
layers themselves are the main map's :class:`LayerState` objects, so an edit in the layer
panel shows on both) and two :class:`~viewer.ui.figure.MapFigure`\\ s that share one pair
of Bokeh ``Range1d`` objects, so a pan or zoom on either moves both in the browser without
a round trip. Two modes:

- ``"swipe"``: the figures lie on top of each other in Panel's :class:`~panel.layout.Swipe`;
  a draggable divider clips the left figure to the left of it and the right figure to the
  right (CSS ``clip-path``, which also clips pointer events, so each side pans its own figure).
- ``"side by side"``: a linked second map beside the first, same view.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import panel as pn
import param

from ..core.errors import InvalidArgument
from ..core.image import Image
from .figure import MapFigure
from .notify import doc_runner
from .state import LayerState, MapState, make_layer

__all__ = ["SplitMap", "MODES", "stack_layers"]

MODES = ("swipe", "side by side")

_LABEL_CSS = {"background": "rgba(255,255,255,0.85)", "padding": "2px 8px", "border-radius": "3px",
              "font-size": "13px", "font-weight": "600"}


def stack_layers(map_state: MapState, spec: Any, side: str) -> list[LayerState]:
    """The layers of one side: a layer name of the map, a :class:`LayerState`, an :class:`Image`
    (added with Earth Engine default visualization), or a list of those (bottom first)."""
    items = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    if not items:
        raise InvalidArgument(f"the {side} side needs at least one layer", value=spec,
                              allowed="layer name, LayerState, Image or a list of them")
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(map_state.layer(item))
        elif isinstance(item, LayerState):
            out.append(item)
        elif isinstance(item, Image):
            out.append(make_layer(item, None, f"{side} layer", True, 1.0))
        else:
            raise InvalidArgument(f"{side}_layer {item!r} is not allowed; allowed: a layer name, LayerState, "
                                  "Image or a list of them", value=repr(item)[:80],
                                  allowed="layer name, LayerState, Image")
    return out


def _side_state(map_state: MapState, layers: Iterable[LayerState]) -> MapState:
    state = MapState(basemap=map_state.basemap, viewport=map_state.viewport, center=map_state.center,
                     zoom=map_state.zoom, view=map_state.view)
    for layer in layers:
        state.layers = state.layers + [layer]  # shared objects: no renaming, no second set of watchers
        state.pixel_mode = layer.pixel_mode
    state.view = map_state.view or state.view_for(*map_state.center, map_state.zoom)
    return state


class SplitMap(pn.viewable.Viewer):
    """Two layer stacks of one map, left and right of a divider (or side by side), one view."""

    mode = param.Selector(default="swipe", objects=list(MODES))
    value = param.Integer(default=50, bounds=(0, 100), doc="Divider position, % of the width from the left.")

    def __init__(self, map_obj: Any, left_layer: Any, right_layer: Any, left_label: str | None = None,
                 right_label: str | None = None, base_url: str = "", height: int = 600, **params: Any) -> None:
        super().__init__(**params)
        self.map = map_obj
        main: MapState = map_obj.state
        self.left_layers = stack_layers(main, left_layer, "left")
        self.right_layers = stack_layers(main, right_layer, "right")
        self.left_label = left_label if left_label is not None else " + ".join(l.name for l in self.left_layers)
        self.right_label = right_label if right_label is not None else " + ".join(l.name for l in self.right_layers)
        self.left_state = _side_state(main, self.left_layers)
        self.right_state = _side_state(main, self.right_layers)
        self.height = height
        self.left_figure = self._figure(self.left_state, base_url)
        self.right_figure = self._figure(self.right_state, base_url)
        # one view: the right figure draws on the left figure's ranges
        self.right_figure.fig.x_range = self.left_figure.fig.x_range
        self.right_figure.fig.y_range = self.left_figure.fig.y_range
        self._syncing = False
        self.left_state.param.watch(lambda e: self._follow(self.right_state, e.new), "view")
        self.right_state.param.watch(lambda e: self._follow(self.left_state, e.new), "view")
        self.left_pane = pn.pane.Bokeh(self.left_figure.fig, sizing_mode="stretch_width", height=height)
        self.right_pane = pn.pane.Bokeh(self.right_figure.fig, sizing_mode="stretch_width", height=height)
        self.swipe = pn.Swipe(self.left_pane, self.right_pane, value=self.value, slider_width=6,
                              slider_color="#1f6f8b", sizing_mode="stretch_width", height=height)
        self.swipe.link(self, value="value", bidirectional=True)
        self.labels = pn.Row(pn.pane.Str(self.left_label, styles=_LABEL_CSS, margin=(2, 4)), pn.Spacer(),
                             pn.pane.Str(self.right_label, styles=_LABEL_CSS, margin=(2, 4)),
                             sizing_mode="stretch_width", margin=0)
        self.mode_select = pn.widgets.RadioButtonGroup.from_param(self.param.mode, color="light")
        self.body = pn.Column(sizing_mode="stretch_width", margin=0)
        self.param.watch(lambda e: self._layout(), "mode")
        self._layout()

    def _figure(self, state: MapState, base_url: str) -> MapFigure:
        holder: list[MapFigure] = []
        runner: Callable = doc_runner(lambda: holder[0].fig.document if holder else None)
        fig = MapFigure(state, base_url=base_url, height=self.height, in_doc=runner)
        holder.append(fig)
        return fig

    def _follow(self, other: MapState, view) -> None:
        """Keep both states' views equal (the browser already moves both figures)."""
        if self._syncing or not view or other.view == tuple(view):
            return
        self._syncing = True
        try:
            other.set_view(*view)
        finally:
            self._syncing = False

    def _layout(self) -> None:
        if self.mode == "swipe":
            self.body.objects = [self.swipe]
        else:
            self.body.objects = [pn.Row(self.left_pane, self.right_pane, sizing_mode="stretch_width",
                                        height=self.height)]

    @property
    def figures(self) -> tuple[MapFigure, MapFigure]:
        return self.left_figure, self.right_figure

    def __panel__(self):
        return pn.Column(pn.Row(self.mode_select, sizing_mode="stretch_width"), self.labels, self.body,
                         sizing_mode="stretch_width")
