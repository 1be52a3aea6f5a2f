"""The layer panel: visibility, opacity, order, removal and visualization editing.

Widgets are made with ``Widget.from_param`` on the layer's parameters and on each of its
band channels (:class:`~viewer.ui.state.Channel`: band, min, max, gamma), so a widget and
the state cannot disagree and nothing needs echo guards. Every edit that changes pixels
makes a new layer spec (new token, new tile URL). Cards are keyed by the layer's ``uid``.
"""
from __future__ import annotations

import html
from typing import Any

import panel as pn

from ..core.image import Image
from ..core.palettes import palette_names
from .notify import guarded
from .state import CUSTOM_PALETTE, LayerState, MapState

__all__ = ["LayerPanel", "LayerCard"]

_NO_PALETTE = "(none)"
_NO_MASK = "(no mask)"


def lazy_card(card: pn.Card, build) -> None:
    """Fill ``card`` with ``build()`` (a list of objects) when it is first expanded (at once if it
    is open): a collapsed card costs its header only, in the page and on the server."""
    done = []

    def fill(*_) -> None:
        if done or card.collapsed:
            return
        done.append(True)
        card.param.unwatch(watcher)
        card.objects = build()

    watcher = card.param.watch(guarded("card")(fill), "collapsed")
    fill()


class LayerCard(pn.viewable.Viewer):
    """Controls of one layer; the widgets are made when the card is first expanded.

    Every widget is bound to a parameter of the layer or of one of its channels with
    ``from_param`` (both directions, no echo guards); the card itself only shows or hides
    rows and relabels them when the layer's mode changes.
    """

    def __init__(self, layer: LayerState, state: MapState, **params: Any) -> None:
        super().__init__(**params)
        self.layer, self.state = layer, state
        self._watchers: list = []
        self.built = False
        # a Card title is HTML: the name is escaped so that it shows as typed
        self.card = pn.Card(title=html.escape(f"{layer.name} · {layer.kind}"), sizing_mode="stretch_width",
                            collapsed=state.selected != layer.name, margin=(3, 0))
        lazy_card(self.card, self._controls)

    def build(self) -> "LayerCard":
        """Make the widgets now (opens the card)."""
        self.card.collapsed = False
        return self

    def _controls(self) -> list:
        self.built = True
        L, state = self.layer, self.state
        self.visible = pn.widgets.Checkbox.from_param(L.param.visible, label="visible", width=70)
        self.opacity = pn.widgets.FloatSlider.from_param(L.param.opacity, label="opacity", sizing_mode="stretch_width")
        self.up = pn.widgets.Button(label="▲", width=36, description="draw above the next layer")
        self.down = pn.widgets.Button(label="▼", width=36, description="draw below the previous layer")
        self.remove = pn.widgets.Button(label="✕", width=36, color="danger", variant="outline",
                                        description="remove the layer")
        self.zoom_to = pn.widgets.Button(label="fit", width=44, description="zoom to the layer")
        self.up.on_click(guarded("move layer")(lambda e: state.move(L.name, +1)))
        self.down.on_click(guarded("move layer")(lambda e: state.move(L.name, -1)))
        self.remove.on_click(guarded("remove layer")(lambda e: state.remove(L.name)))
        self.zoom_to.on_click(guarded("zoom to layer")(lambda e: state.fit_layer(L.name)))
        rows: list = [pn.Row(self.visible, self.opacity, sizing_mode="stretch_width"),
                      pn.Row(self.up, self.down, self.zoom_to, self.remove)]
        if L.kind == "image":
            rows += self._image_controls()
        elif L.kind == "mask":
            self.mask_color = pn.widgets.ColorPicker.from_param(L.param.mask_color, label="colour (mask > 0)")
            rows.append(self.mask_color)
        else:
            rows += self._class_controls()
        return rows

    # image layers -----------------------------------------------------------------------
    def _image_controls(self) -> list:
        L = self.layer
        self.mode = pn.widgets.RadioButtonGroup.from_param(L.param.mode, color="light")
        self.channels = [pn.widgets.Select.from_param(ch.param.band, label=ch.name, width=80)
                         for ch in L.channels]
        self.band = self.channels[0]
        self.palette = pn.widgets.Select.from_param(L.param.palette_name, label="palette", options=_palette_options(L),
                                                    width=130)
        self.mins = [pn.widgets.FloatInput.from_param(ch.param.min, width=88) for ch in L.channels]
        self.maxs = [pn.widgets.FloatInput.from_param(ch.param.max, width=88) for ch in L.channels]
        self.gammas = [pn.widgets.FloatInput.from_param(ch.param.gamma, width=72, step=0.05) for ch in L.channels]
        self.gamma = self.gammas[0]
        self.stretch = pn.widgets.Select.from_param(L.param.stretch, label="stretch (current view)", width=150)
        self.freeze = pn.widgets.Checkbox.from_param(L.param.freeze, label="freeze stretch")
        self.band_row = pn.Row(*self.channels, self.palette)
        self.range_rows = [pn.Row(lo, hi, g) for lo, hi, g in zip(self.mins, self.maxs, self.gammas)]
        self._watchers.append(L.param.watch(lambda e: self._show_mode(), "mode"))
        self._watchers.append(L.param.watch(lambda e: setattr(self.palette, "options", _palette_options(L)),
                                            "palette_name"))  # a layer given colours: "(custom)"
        self._show_mode()
        out = [self.mode, self.band_row, pn.Column(*self.range_rows, margin=0), pn.Row(self.stretch, self.freeze)]
        out += self._mask_controls()
        return out

    def _show_mode(self) -> None:
        """RGB: three band pickers and ranges labelled R/G/B; one band: band, palette, "min"/"max"."""
        rgb = self.layer.mode == "RGB"
        self.palette.visible = not rgb
        for i, (row, lo, hi, g, band) in enumerate(zip(self.range_rows, self.mins, self.maxs, self.gammas,
                                                      self.channels)):
            row.visible = band.visible = rgb or i == 0
            prefix = f"{'RGB'[i]} " if rgb else ""
            lo.name, hi.name, g.name = f"{prefix}min", f"{prefix}max", f"{prefix}gamma"
            band.name = "RGB"[i] if rgb else "band"

    def _mask_sources(self) -> dict[str, Image]:
        L = self.layer
        out = {}
        if L.mask_image is not None:
            out[L.mask_label or "mask"] = L.mask_image
        for other in self.state.layers:
            if other.kind == "mask" and other is not L:
                out.setdefault(other.name, other.display_image().select([0]))
        return out

    def _mask_controls(self) -> list:
        L = self.layer
        sources = self._mask_sources()
        if not sources:
            return []
        current = L.mask_label if L.mask_label in sources else next(iter(sources))
        self.mask_source = pn.widgets.Select(label="mask", options=list(sources), value=current, width=150)
        self.mask_invert = pn.widgets.Checkbox.from_param(L.param.mask_invert, label="hide where mask = 1")
        self.mask_switch = pn.widgets.Switch.from_param(L.param.mask_applied, label="apply mask")

        def choose(event=None):
            L.param.update(mask_image=sources[self.mask_source.value], mask_label=self.mask_source.value)

        self.mask_source.param.watch(guarded("mask")(choose), "value")
        if L.mask_image is None:
            choose()
        return [pn.Row(self.mask_source, self.mask_switch), self.mask_invert]

    # class overlays ---------------------------------------------------------------------
    def _class_controls(self) -> list:
        L = self.layer
        classes = L.effective_classes()
        if classes is None:
            return []
        pickers = []
        for c in classes.to_list():
            if c["id"] == classes.background:
                continue
            cp = pn.widgets.ColorPicker(label=f"{c['id']}: {c['name']}", value=c["color"], width=120)

            def recolor(event, cid=c["id"]):
                colors = dict(L.class_colors)
                colors[cid] = event.new
                L.class_colors = colors

            cp.param.watch(guarded("class colour")(recolor), "value")
            pickers.append(cp)
        return [pn.Card(pn.GridBox(*pickers, ncols=2), title="class colours", collapsed=True,
                        sizing_mode="stretch_width")]

    def dispose(self) -> None:
        """Stop following the layer (the card is gone)."""
        for w in self._watchers:
            self.layer.param.unwatch(w)
        self._watchers = []

    def __panel__(self):
        return self.card


def _palette_options(layer: LayerState) -> dict[str, str]:
    """The palette menu: none, the core's named palettes, and "(custom)" for a layer given colours."""
    options = {_NO_PALETTE: ""}
    options.update({name: name for name in palette_names()})
    if layer.palette_name == CUSTOM_PALETTE:
        options["(custom)"] = CUSTOM_PALETTE
    return options


class LayerPanel(pn.viewable.Viewer):
    """All layer cards (top layer first) plus the basemap switcher."""

    def __init__(self, map_obj: Any, **params: Any) -> None:
        super().__init__(**params)
        self.map = map_obj
        self.state: MapState = map_obj.state
        self.basemap = pn.widgets.Select.from_param(self.state.param.basemap, label="basemap",
                                                    sizing_mode="stretch_width")
        self.cards: dict[tuple, LayerCard] = {}
        self.column = pn.Column(sizing_mode="stretch_width")
        self.state.param.watch(lambda *_: self.rebuild(), ["layers"])
        self.rebuild()

    def rebuild(self) -> None:
        cards = []
        alive = {}
        masks = tuple(l.name for l in self.state.layers if l.kind == "mask")
        for layer in reversed(self.state.layers):
            key = (layer.uid, masks if layer.kind == "image" else ())
            card = self.cards.get(key)
            if card is None:
                card = LayerCard(layer, self.state)
            alive[key] = card
            cards.append(card.card)
        for key, card in self.cards.items():
            if key not in alive:
                card.dispose()
        self.cards = alive
        self.column.objects = cards  # prediction vs truth: viewer/ui/compare.py (a card of the map view)

    def card(self, name: str) -> LayerCard:
        """The card of layer ``name``, with its widgets made (the card opens)."""
        layer = self.state.layer(name)
        return next(c for (k, _), c in self.cards.items() if k == layer.uid).build()

    def __panel__(self):
        return pn.Column(self.basemap, self.column, sizing_mode="stretch_width")
