"""Split maps: two layer stacks over one shared view, swiped or side by side.

``SplitMap`` holds two :class:`~viewer.ui.state.MapState`\\ s (left and right stacks; the
layers themselves are the main map's :class:`LayerState` objects, so an edit in the layer
panel shows on both) and two :class:`~viewer.ui.figure.MapFigure`\\ s that share one pair
of Bokeh ``Range1d`` objects, so a pan or zoom on either moves both in the browser without
a round trip. Its :attr:`~SplitMap.layout` is one Bokeh model, so it can also take the main
map's place in the page (``MapView.pane``). Two modes:

- ``"swipe"``: both figures in one CSS grid cell, the left one on top, clipped to the part left
  of the divider (``clip-path``, which also clips pointer events, so each side pans its own
  figure); drag the divider line itself, or the handle of the slider above the map.
- ``"side by side"``: a linked second map beside the first, same view.
"""
from __future__ import annotations

import html
from typing import Any, Callable, Iterable

import panel as pn
import param
from bokeh.models import CustomJS, Div, GridBox, Slider

from ..core.classes import Classes
from ..core.errors import InvalidArgument
from ..core.image import Image
from .figure import MapFigure
from .notify import doc_runner, guarded
from .state import LayerState, MapState, make_layer

__all__ = ["SplitMap", "SplitControls", "SideState", "MODES", "stack_layers", "clip_style", "divider_style"]

MODES = ("swipe", "side by side")

_SWIPE_JS = """
const v = slider.value;
left.styles = Object.assign({}, left.styles, {"clip-path": `inset(0 ${100 - v}% 0 0)`});
line.styles = Object.assign({}, line.styles, {"margin-left": `calc(${v}% - 8px)`});
"""

#: The divider's own grip: a mousedown on the line drags it (it sets the slider's value, which moves the
#: clip and the line through _SWIPE_JS, and value_throttled on release, which Python hears).
_DRAG_JS = """(function (e) {
  e.preventDefault(); e.stopPropagation();
  const host = e.currentTarget.getRootNode().host;
  const parent = host.parentNode;
  const grid = parent.host || parent;
  let slider = null;
  for (const d of Bokeh.documents) { slider = d.get_model_by_id('SLIDER_ID'); if (slider) { break; } }
  if (slider == null) { return; }
  const move = (ev) => {
    const r = grid.getBoundingClientRect();
    const v = Math.max(0, Math.min(100, Math.round((ev.clientX - r.left) / r.width * 100)));
    if (v !== slider.value) { slider.value = v; }
  };
  const up = () => {
    document.removeEventListener('mousemove', move);
    document.removeEventListener('mouseup', up);
    slider.value_throttled = slider.value;
  };
  document.addEventListener('mousemove', move);
  document.addEventListener('mouseup', up);
})(event)"""


_TAG_CSS = {"background": "rgba(255,255,255,0.88)", "padding": "2px 8px", "border-radius": "3px",
            "font-size": "13px", "font-weight": "600", "pointer-events": "none", "z-index": "3"}


def clip_style(value: float) -> dict[str, str]:
    """The left figure's style in swipe mode: only the part left of ``value`` % is drawn (and clickable)."""
    return {"clip-path": f"inset(0 {100 - value:g}% 0 0)", "z-index": "1"}


def divider_style(value: float) -> dict[str, str]:
    """The divider at ``value`` % of the width: a 16 px grip (drawn as a 4 px white line) that drags it."""
    return {"margin-left": f"calc({value:g}% - 8px)", "width": "16px", "height": "100%", "cursor": "ew-resize",
            "background": "linear-gradient(to right, transparent 5px, rgba(0,0,0,0.45) 5px, #ffffff 6px, "
                          "#ffffff 10px, rgba(0,0,0,0.45) 11px, transparent 11px)", "z-index": "2"}


def _grip_html(slider_id: str) -> str:
    """The divider's contents: an element filling it whose mousedown starts a drag (``_DRAG_JS``)."""
    js = html.escape(_DRAG_JS.replace("SLIDER_ID", slider_id).replace("\n", " "), quote=True)
    return (f"<div class='viewer-swipe-grip' style='position:absolute;left:0;top:0;width:16px;height:100%;"
            f"cursor:ew-resize' onmousedown=\"{js}\"></div>")



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
            band = item.bands[0] if len(item.bands) == 1 else None
            if band is not None and band.kind == "class" and band.classes:  # class colours, as Map.add_layer
                out.append(make_layer(item, None, f"{side} layer", True, 1.0, kind="classes",
                                      classes=Classes.from_band(band)))
            else:
                out.append(make_layer(item, None, f"{side} layer", True, 1.0))
        else:
            raise InvalidArgument(f"{side}_layer {item!r} is not allowed; allowed: a layer name, LayerState, "
                                  "Image or a list of them", value=repr(item)[:80],
                                  allowed="layer name, LayerState, Image")
    return out


class SideState(MapState):
    """One side of a split map: its layers and view, without view statistics of its own (the map's state
    computes class counts and live stretches for the same view and the same, shared, layers)."""

    def schedule_stats(self) -> None:
        return None


def _side_state(map_state: MapState, layers: Iterable[LayerState]) -> MapState:
    state = SideState(basemap=map_state.basemap, viewport=map_state.viewport, center=map_state.center,
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
        # the chosen layers are drawn (as geemap's split_map does); dispose() gives back their visibility
        self._visibility = {id(l): (l, l.visible) for l in self.left_layers + self.right_layers}
        for layer in self.left_layers + self.right_layers:
            layer.visible = True
        self.left_state = _side_state(main, self.left_layers)
        self.right_state = _side_state(main, self.right_layers)
        self.height = height
        self.left_figure = self._figure(self.left_state, base_url)
        self.right_figure = self._figure(self.right_state, base_url)
        for fig in (self.left_figure.fig, self.right_figure.fig):
            fig.min_border_top = 34  # room for the divider's slider above the map
        # one view: the right figure draws on the left figure's ranges
        self.right_figure.fig.x_range = self.left_figure.fig.x_range
        self.right_figure.fig.y_range = self.left_figure.fig.y_range
        # ... and leaves the first-view sizing and the view reports to the left one (which hears every change
        # of the shared ranges): with the right figure's range-update callbacks in the page, BokehJS panned
        # neither figure (found in Chromium; two plain figures sharing ranges pan fine)
        self.right_figure.fig.js_event_callbacks = {}
        self._syncing = False
        self.left_state.param.watch(lambda e: self._follow(self.right_state, e.new), "view")
        self.right_state.param.watch(lambda e: self._follow(self.left_state, e.new), "view")
        self.slider = Slider(start=0, end=100, value=self.value, step=1, show_value=False, title=None,
                             sizing_mode="stretch_width", height=24, margin=(6, 0, 0, 0), align="start",
                             styles={"z-index": "3"}, css_classes=["viewer-swipe-slider"])
        self.divider = Div(text=_grip_html(self.slider.id), styles=divider_style(self.value),
                           sizing_mode="stretch_height", width=16, css_classes=["viewer-swipe-divider"],
                           disable_math=True)
        self.slider.js_on_change("value", CustomJS(args={"slider": self.slider, "left": self.left_figure.fig,
                                                         "line": self.divider}, code=_SWIPE_JS))
        self.slider.on_change("value_throttled", lambda attr, old, new: setattr(self, "value", int(new)))
        self._runner = doc_runner(lambda: self.left_figure.fig.document, self._push)
        self.param.watch(lambda e: self._runner(self._push_value), "value")
        self.layout = GridBox(children=[], sizing_mode="stretch_both", min_height=300, height=height)
        self.pane = pn.pane.Bokeh(self.layout, sizing_mode="stretch_width", height=height)
        # the sides' names, over the top corners of the map (clicks go through to the map)
        self.left_tag = Div(text=html.escape(self.left_label), align="start", margin=(36, 0, 0, 80),
                            styles=_TAG_CSS, css_classes=["viewer-swipe-left"], disable_math=True)
        self.right_tag = Div(text=html.escape(self.right_label), align=("end", "start"), margin=(36, 50, 0, 0),
                             styles=_TAG_CSS, css_classes=["viewer-swipe-right"], disable_math=True)
        self.mode_select = pn.widgets.RadioButtonGroup.from_param(self.param.mode, color="light")
        self.param.watch(lambda e: self._runner(self._layout), "mode")
        self._layout()

    def _figure(self, state: MapState, base_url: str) -> MapFigure:
        holder: list[MapFigure] = []
        runner: Callable = doc_runner(lambda: holder[0].fig.document if holder else None, self._push)
        fig = MapFigure(state, base_url=base_url, height=self.height, in_doc=runner)
        holder.append(fig)
        return fig

    def _push(self) -> None:
        """In a notebook, send model changes to the displayed split (Panel does it on a server)."""
        pane = getattr(self, "pane", None)
        if pane is not None:
            pn.io.push_notebook(pane)

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
        """Arrange the figures for :attr:`mode` (in place: the page keeps the same Bokeh model)."""
        left, right = self.left_figure.fig, self.right_figure.fig
        if self.mode == "swipe":
            left.styles = clip_style(self.value)
            children = [(right, 0, 0), (left, 0, 0), (self.divider, 0, 0), (self.slider, 0, 0),
                        (self.left_tag, 0, 0), (self.right_tag, 0, 0)]
            self.layout.cols = ["minmax(0, 1fr)"]  # never wider than the page gives (no min-content width)
        else:
            left.styles = {"clip-path": "none"}  # BokehJS keeps a style left out of the dict: say none
            children = [(left, 0, 0), (right, 0, 1), (self.left_tag, 0, 0), (self.right_tag, 0, 1)]
            self.layout.cols = ["minmax(0, 1fr)", "minmax(0, 1fr)"]
        self.layout.children = children

    def _push_value(self) -> None:
        if self.slider.value != self.value:
            self.slider.value = self.value
        if self.mode == "swipe":
            self.left_figure.fig.styles = clip_style(self.value)
            self.divider.styles = divider_style(self.value)

    @property
    def figures(self) -> tuple[MapFigure, MapFigure]:
        return self.left_figure, self.right_figure

    def dispose(self) -> None:
        """Stop following the map's layers and views (the split view is closed); the layers get back the
        visibility they had before the split."""
        for fig in self.figures:
            fig.dispose()
        for layer, visible in self._visibility.values():
            layer.visible = visible

    def __panel__(self):
        return pn.Column(pn.Row(self.mode_select, sizing_mode="stretch_width"), self.pane,
                         sizing_mode="stretch_width")


class SplitControls(pn.viewable.Viewer):
    """Open a split view of two layers in the place of a map view's figure (and close it again)."""

    def __init__(self, map_obj: Any, left: str | None = None, right: str | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.map = map_obj
        self.state: MapState = map_obj.state
        self.split: SplitMap | None = None
        names = [l.name for l in reversed(self.state.layers)]
        shown = [l.name for l in reversed(self.state.layers) if l.visible] or names
        left = left if left in names else (shown[1] if len(shown) > 1 else (shown[0] if shown else None))
        right = right if right in names else (shown[0] if shown else None)
        self.left = pn.widgets.Select(label="left", options=names, value=left, sizing_mode="stretch_width",
                                      min_width=100)
        self.right = pn.widgets.Select(label="right", options=names, value=right, sizing_mode="stretch_width",
                                       min_width=100)
        self.mode = pn.widgets.RadioButtonGroup(options=list(MODES), value="swipe", color="light")
        self.button = pn.widgets.Button(label="Open split view", color="primary", width=130,
                                        css_classes=["viewer-split-toggle"])
        self.button.on_click(guarded("split view")(lambda e: self.toggle()))
        self.mode.param.watch(guarded("split view")(self._mode), "value")
        self.state.param.watch(lambda e: self._names(), "layers")

    def _shown(self) -> tuple | None:
        """:attr:`MapState.split` for what is shown now."""
        split = self.split
        if split is None:
            return None
        left, right = split.left_layers[0], split.right_layers[0]  # the controls open one layer a side
        if left not in self.state.layers or right not in self.state.layers:
            return None  # (a layer of the split view was removed: the link names none)
        return (left.uid, right.uid, split.mode, int(split.value))

    def _publish(self, *_: Any) -> None:
        self.state.split = self._shown()

    def follow(self, value: tuple | None) -> None:
        """Show the split view ``value`` names (:attr:`MapState.split`, e.g. a shared link's), or none."""
        if value == self._shown():
            return
        if value is None:
            self.close()
            return
        left, right, mode, divider = value
        names = {l.uid: l.name for l in self.state.layers}
        if left not in names or right not in names or left == right or mode not in MODES:
            raise InvalidArgument(f"split view {value!r} does not name two of the map's layers and a mode",
                                  value=repr(value), allowed=f"two of {sorted(names)}, a mode of {list(MODES)}")
        if self.split is not None:
            self.close()
        self.left.value, self.right.value, self.mode.value = names[left], names[right], mode
        self.open().value = int(divider)

    def _names(self) -> None:
        names = [l.name for l in reversed(self.state.layers)]
        self.left.options, self.right.options = names, names

    def _mode(self, event) -> None:
        if self.split is not None:
            self.split.mode = event.new

    @property
    def is_open(self) -> bool:
        return self.split is not None

    def toggle(self) -> SplitMap | None:
        return self.close() if self.is_open else self.open()

    def open(self) -> SplitMap:
        """Show the chosen layers left and right of a divider where the map was (same view)."""
        view = self.map.view
        if self.left.value == self.right.value:
            raise InvalidArgument(f"choose two different layers for the split view (both are {self.left.value!r})",
                                  value=self.left.value, allowed=[l.name for l in self.state.layers])
        self.split = SplitMap(self.map, self.left.value, self.right.value, mode=self.mode.value,
                              base_url=view.map_figure.base_url, height=self.map.height)
        # the map's view follows the split's, so legends, statistics and comparisons are of what is seen
        # (with the split's frame size: its zoom, and a link's, is the zoom the split view shows)
        self.split.left_state.param.watch(self._follow_view, "view")
        self.split.param.watch(self._publish, ["mode", "value"])
        view.pane.object = self.split.layout
        self.button.label = "Close split view"
        self._publish()
        return self.split

    def _follow_view(self, event) -> None:
        if event.new and self.split is not None:
            self.state.param.update(viewport=self.split.left_state.viewport)
            self.state.set_view(*event.new)

    def close(self) -> None:
        """Back to the map, at the split view's view."""
        split, self.split = self.split, None
        if split is None:
            return
        view = self.map.view
        where = split.left_state.view
        split.dispose()
        view.pane.object = view.map_figure.fig
        if where:
            self.state.set_view(*where)
        self.button.label = "Open split view"
        self._publish()

    def __panel__(self):
        return pn.Column(self.left, self.right, self.mode, self.button,
                         sizing_mode="stretch_width")  # one per row: layer names fit a narrow panel
