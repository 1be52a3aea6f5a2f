"""Prediction versus truth for what is in view: confusion matrix, per-class IoU, difference overlay.

``ComparePanel`` lets the user pick a prediction and a truth (two class layers; by default a
pair that shares a class table) and shows, for the current view, the confusion matrix and
IoU / precision / recall per class, recomputed after every pan and zoom (debounced, off the
event loop). The figures are :func:`viewer.core.class_stats.compare_masks` on
:func:`comparison_grid`, the view's grid coarsened to the truth's native pixels, so
``Map.compare`` in Python and the panel give the same numbers.
"""
from __future__ import annotations

import asyncio
import functools
import html
import json
import re
from typing import Any

import panel as pn
import param

from ..core.class_stats import Comparison, compare_masks
from ..core.classes import Classes
from ..core.errors import InvalidArgument
from ..core.grid import Grid
from .difference import DIFFERENCE_PREFIX, add_difference_layer, class_layer, class_layers, difference, difference_label
from .notify import guarded, notify_error
from .split import SplitControls
from .state import EXECUTOR, LayerState, MapState, spawn
from .viewport import STATS_EXECUTOR, after_tiles
from .viewport import count_grid

__all__ = ["ComparePanel", "comparison_grid", "compare_view", "default_pair", "class_layers",
           "render_comparison", "difference", "DIFFERENCE_PREFIX", "ALL_CLASSES"]

# whole words, with "_" and "-" as separators too (W&B's "ground_truth"; "relabelled" is no label)
_TRUTH_WORDS = re.compile(r"(?<![a-z])(truth|reference|labels?|ground|gt)(?![a-z])", re.IGNORECASE)
_PRED_WORDS = re.compile(r"(?<![a-z])pred", re.IGNORECASE)
#: The class choice of the difference layer meaning "every class" (agree / disagree).
ALL_CLASSES = -1


def _table_key(classes: Classes | None) -> tuple:
    """What makes two class tables "the same": their ids and names (colours may differ)."""
    return () if classes is None else tuple((c["id"], c["name"]) for c in classes.to_list())


def default_pair(state: MapState) -> tuple[str | None, str | None]:
    """(prediction, truth): two class layers sharing a class table, else the first two.

    Within a pair, a layer whose name has the word "truth", "reference", "label(s)" or "ground" is
    the truth and one with a word starting "pred" the prediction; otherwise the upper layer is the
    prediction.
    """
    layers = class_layers(state)
    pair = None
    for i, a in enumerate(layers):
        for b in layers[i + 1:]:
            if _table_key(a.classes) and _table_key(a.classes) == _table_key(b.classes):
                pair = (b, a)
                break
        if pair:
            break
    if pair is None:
        if len(layers) < 2:
            return (layers[0].name if layers else None, None)
        pair = (layers[1], layers[0])
    pred, truth = pair

    if _TRUTH_WORDS.search(pred.name) or _PRED_WORDS.search(truth.name):
        pred, truth = truth, pred
    return pred.name, truth.name


def comparison_grid(state: MapState, truth: LayerState | str) -> Grid:
    """The grid the view's comparison is counted on: the current view, coarsened so that its
    pixels are not smaller than the truth's native pixels (:func:`~viewer.ui.viewport.count_grid`)."""
    layer = state.layer(truth) if isinstance(truth, str) else truth
    return count_grid(state.current_grid(), layer.image)


def compare_view(state: MapState, prediction: str, truth: str, grid: Grid | None = None) -> Comparison:
    """:func:`compare_masks` of two class layers on ``grid`` (default: :func:`comparison_grid`),
    with the truth's class table (colour edits included)."""
    pred, ref = class_layer(state, prediction, "prediction"), class_layer(state, truth, "truth")
    grid = comparison_grid(state, ref) if grid is None else grid
    return compare_masks(pred.display_image().select([0]), ref.display_image().select([0]), grid,
                         ref.effective_classes())


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def render_comparison(cmp: Comparison, prediction: str, truth: str) -> str:
    """The comparison as escaped HTML: summary, per-class scores, confusion matrix."""
    e = html.escape
    g = cmp.grid
    parts = [f"<div class='viewer-small viewer-cmp-summary' data-grid='{e(json.dumps(g.to_dict()))}'>"
             f"{e(prediction)} (prediction) vs {e(truth)} (truth), "
             f"in view: <span class='viewer-cmp-pixels'>{cmp.pixel_count:,}</span> px compared on a "
             f"{g.width}&times;{g.height} grid"
             + (f", {cmp.excluded_count:,} px with ids outside the table" if cmp.excluded_count else "")
             + "</div>",
             f"<div>accuracy <b class='viewer-cmp-accuracy'>{_num(cmp.accuracy)}</b> · mean IoU "
             f"<b class='viewer-cmp-miou'>{_num(cmp.mean_iou)}</b></div>",
             "<table class='viewer-table viewer-cmp-scores'><tr><th>class</th><th>IoU</th><th>precision</th>"
             "<th>recall</th></tr>"]
    for c in cmp.per_class:
        swatch = f"<span class='viewer-swatch' style='background:{e(c['color'])}'></span>"
        parts.append(f"<tr data-class-id='{int(c['id'])}'><td>{swatch} {int(c['id'])}: {e(c['name'])}</td>"
                     f"<td class='viewer-num viewer-cmp-iou'>{_num(c['iou'])}</td>"
                     f"<td class='viewer-num viewer-cmp-precision'>{_num(c['precision'])}</td>"
                     f"<td class='viewer-num viewer-cmp-recall'>{_num(c['recall'])}</td></tr>")
    parts.append("</table>")
    ids = list(cmp.ids)
    head = "".join(f"<th class='viewer-num' title='{e(cmp.classes.name(i))}'>{int(i)}</th>" for i in ids)
    parts.append("<div class='viewer-small'>confusion matrix (pixels; rows truth, columns prediction)</div>"
                 f"<table class='viewer-table viewer-cmp-confusion'><tr><th></th>{head}</tr>")
    for r, tid in enumerate(ids):
        cells = "".join(f"<td class='viewer-num'>{int(v):,}</td>" for v in cmp.confusion[r])
        parts.append(f"<tr><th title='{e(cmp.classes.name(tid))}'>{int(tid)}</th>{cells}</tr>")
    parts.append("</table>")
    return "".join(parts)


class ComparePanel(pn.viewable.Viewer):
    """Choose a prediction and a truth; see their agreement in view, live; add their difference."""

    prediction = param.Selector(default=None, objects=[], allow_None=True)
    truth = param.Selector(default=None, objects=[], allow_None=True)
    active = param.Boolean(default=True, doc="Recompute on pan and zoom (off while the card is collapsed).")
    result = param.Parameter(default=None, doc="The last Comparison shown (None before the first).")
    error = param.String(default="")

    def __init__(self, map_obj: Any, **params: Any) -> None:
        super().__init__(**params)
        self.map = map_obj
        self.state: MapState = map_obj.state
        self._generation = 0
        self._difference: str | None = None
        self._split: SplitControls | None = None
        self.html = pn.pane.HTML("", sizing_mode="stretch_width", margin=(2, 4))
        self.pred_select = pn.widgets.Select.from_param(self.param.prediction, label="prediction",
                                                        sizing_mode="stretch_width", min_width=60)
        self.truth_select = pn.widgets.Select.from_param(self.param.truth, label="truth", sizing_mode="stretch_width",
                                                         min_width=60)
        self.class_id = pn.widgets.Select(label="difference of", options={"all classes (disagree)": ALL_CLASSES},
                                          value=ALL_CLASSES, sizing_mode="stretch_width", min_width=60)
        self.button = pn.widgets.Button(label="Show difference", color="primary", width=125)
        self.button.on_click(guarded("difference")(lambda e: self._on_difference()))
        self._options()
        self.state.param.watch(lambda e: self._options(), "layers")
        self.state.param.watch(lambda e: self.schedule(), ["view", "viewport"])
        self.param.watch(lambda e: self._changed(), ["prediction", "truth", "active"])
        self._watched: dict[int, Any] = {}
        self._watch_layers()
        self._changed()

    # choices ------------------------------------------------------------------------------
    def _options(self) -> None:
        names = [l.name for l in class_layers(self.state)]
        pred, truth = default_pair(self.state)
        with param.parameterized.discard_events(self):
            self.param.prediction.objects = names
            self.param.truth.objects = names
            if self.prediction not in names:
                self.prediction = pred
            if self.truth not in names:
                self.truth = truth
        self.pred_select.options = names
        self.truth_select.options = names
        self.pred_select.value, self.truth_select.value = self.prediction, self.truth
        self._watch_layers()
        self._changed()

    def _watch_layers(self) -> None:
        """Recompute when a compared layer's pixels change (new token)."""
        if not hasattr(self, "_watched"):
            return
        for layer in class_layers(self.state):
            if id(layer) not in self._watched:
                self._watched[id(layer)] = layer.param.watch(lambda e: self._layer_token(e.obj), "token")

    def _layer_token(self, layer: LayerState) -> None:
        if layer.name in (self.prediction, self.truth):
            self.schedule()

    def _changed(self) -> None:
        opts: dict[str, Any] = {"all classes (disagree)": ALL_CLASSES}
        if self.truth:
            try:
                classes = self.state.layer(self.truth).effective_classes()
            except InvalidArgument:
                classes = None
            if classes is not None:
                opts.update({f"{c['id']}: {c['name']} (FP/FN)": c["id"] for c in classes.to_list()})
        self.class_id.options = opts
        self.button.disabled = not self.ready
        self.schedule()

    @property
    def ready(self) -> bool:
        return bool(self.prediction and self.truth and self.prediction != self.truth)

    # live figures -------------------------------------------------------------------------
    def compute(self) -> Comparison:
        """The comparison of the current choice in the current view (synchronously)."""
        if not self.ready:
            raise InvalidArgument(f"choose two different class layers (prediction {self.prediction!r}, truth "
                                  f"{self.truth!r})", value=(self.prediction, self.truth),
                                  allowed=[l.name for l in class_layers(self.state)])
        return compare_view(self.state, self.prediction, self.truth)

    def refresh(self) -> Comparison | None:
        """Compute and show now (scripts, tests)."""
        if not self.ready:
            self._show(None)
            return None
        cmp = self.compute()
        self._show(cmp)
        return cmp

    def schedule(self) -> None:
        """Recompute after the state's debounce, off the event loop (nothing without a loop)."""
        self._generation += 1
        if not self.ready:
            self._show(None)
            return
        if self.active and self.state.view:
            spawn(functools.partial(self._debounced, self._generation))

    async def _debounced(self, gen: int) -> None:
        await asyncio.sleep(self.state.debounce)
        await after_tiles()  # the view's tiles first
        if gen != self._generation:
            return
        pred, truth = self.prediction, self.truth
        try:
            cmp = await asyncio.get_running_loop().run_in_executor(
                STATS_EXECUTOR, functools.partial(compare_view, self.state, pred, truth))
        except Exception as exc:  # noqa: BLE001 - shown in the panel, not raised into the event loop
            if gen == self._generation:
                self.error = str(exc) or type(exc).__name__
                self.html.object = f"<div class='viewer-alert'>{html.escape(self.error)}</div>"
            return
        if gen == self._generation:
            self._show(cmp)

    def _show(self, cmp: Comparison | None) -> None:
        self.error = ""
        self.result = cmp
        if cmp is None:
            self.html.object = ("<p class='viewer-hint'>Add two class layers (a prediction and a truth) to compare "
                                "them in view.</p>")
        else:
            self.html.object = render_comparison(cmp, self.prediction, self.truth)

    # difference overlay -------------------------------------------------------------------
    def _difference_args(self) -> tuple[str, str, int | None, str]:
        cid = None if self.class_id.value in (None, ALL_CLASSES) else self.class_id.value
        return self.prediction, self.truth, cid, difference_label(self.prediction, self.truth, cid)

    def show_difference(self) -> LayerState:
        """Add the difference of the chosen pair as a layer (replacing the one added before), now."""
        pred, truth, cid, label = self._difference_args()
        return self._add_difference(label, difference(self.state, pred, truth, cid), pred, truth, cid)

    def _on_difference(self) -> None:
        """The button: the difference is computed off the event loop (a whole native grid), then added."""
        args = self._difference_args()
        if not spawn(functools.partial(self._difference_later, *args)):
            self.show_difference()

    async def _difference_later(self, pred: str, truth: str, cid: int | None, label: str) -> None:
        self.button.disabled = True
        try:
            cmp = await asyncio.get_running_loop().run_in_executor(
                EXECUTOR, functools.partial(difference, self.state, pred, truth, cid))
            self._add_difference(label, cmp, pred, truth, cid)
        except Exception as exc:  # noqa: BLE001 - a notification, not a traceback in the event loop
            notify_error(exc, "difference")
        finally:
            self.button.disabled = not self.ready

    def _add_difference(self, label: str, made: tuple, pred: str, truth: str, cid: int | None) -> LayerState:
        if self._difference is not None:
            try:
                self.state.remove(self._difference)
            except InvalidArgument:
                pass  # removed by the user
        layer = add_difference_layer(self.state, made, pred, truth, cid, label)
        self._difference = layer.name
        return layer

    @property
    def split(self) -> SplitControls:
        """The split-view controls (made on first use): truth left, prediction right by default."""
        if self._split is None:
            self._split = SplitControls(self.map, left=self.truth, right=self.prediction)
        return self._split

    def __panel__(self):
        # one select per row: layer names ("Prediction: k-means as rule classes") were cut to "Prediction: k-m"
        return pn.Column(self.pred_select, self.truth_select, self.class_id, self.button,
                         self.html, pn.pane.HTML("<b>Split view</b>: two layers either side of a divider",
                                                 margin=(8, 4, 0, 4)),
                         self.split, sizing_mode="stretch_width")
