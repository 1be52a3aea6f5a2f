"""Legends, computed from the same :class:`LayerSpec` as the tiles (so they cannot drift).

Only layers that are shown *and* overlap the current view get a legend.

* Band legend per image or mask layer: band -> channel and the range in use; a colour bar
  with min, max and units for palettes. A one-band layer is titled by its band (a layer
  named "... true colour" showing one band is not called true colour).
* Class legend per overlay: swatch, name, pixel count and area in the current view
  (updated after every pan/zoom by the debounced view statistics); classes with no pixel
  in view are left out; the count says which pixels it counts (native or screen pixels);
  clicking a class toggles it.
"""
from __future__ import annotations

import html
import re
from typing import Any

import panel as pn

from ..core.layers import LayerSpec
from ..core.visualize import to_hex
from .notify import guarded
from ..core.palettes import PALETTES
from .state import LayerState, MapState

__all__ = ["Legends", "band_legend_html", "format_area", "class_label", "legend_title", "in_view", "pixel_unit"]

#: Words in a layer name that describe a three-band composite.
_COMPOSITE_WORDS = re.compile(r"\s*\b(?:true|false|natural)[ -]colou?r\b|\s*\bRGB\b", re.IGNORECASE)

_CHANNELS = (("R", "#e0301e"), ("G", "#2e9e44"), ("B", "#2a6fdb"))

_CLASS_BUTTON_CSS = """
:host { width: calc(100% - 10px); }
.bk-btn { text-align: left; justify-content: flex-start; font-size: 12px; padding: 2px 6px;
          white-space: normal; line-height: 1.3; }
.bk-btn::before { content: ''; display: inline-block; width: 12px; height: 12px; margin-right: 6px;
                  vertical-align: -2px; border: 1px solid #444; background: var(--swatch); }
:host(.viewer-class-hidden) .bk-btn { text-decoration: line-through; opacity: 0.45; }
"""



def _num(v: float) -> str:
    return f"{v:.6g}"


def format_area(m2: float | None) -> str:
    if m2 is None:
        return ""
    if m2 < 1e4:
        return f"{m2:,.0f} m²"
    if m2 < 1e6:
        return f"{m2 / 1e4:,.1f} ha"
    return f"{m2 / 1e6:,.2f} km²"


def pixel_unit(entry: dict) -> str:
    """"native px" or "screen px": which pixels a class count entry counts ("px" when unknown)."""
    kind = entry.get("pixels")
    if kind in ("native", "screen"):
        return f"{kind} px"
    return "px"


def class_label(entry: dict) -> str:
    """``name — 12,345 native px · 1.2 km²`` for one class count entry."""
    parts = [f"{entry['count']:,} {pixel_unit(entry)}"]
    area = format_area(entry.get("area_m2"))
    if area:
        parts.append(area)
    return f"{entry['name']} — {' · '.join(parts)}"


def legend_title(layer: LayerState, spec: LayerSpec) -> str:
    """The legend's title (text): the layer name, and for a one-band image layer its band, with
    words naming a composite ("true colour", "RGB") dropped from the name."""
    bands = spec.node.bands
    if spec.kind != "image" or len(bands) != 1:
        return layer.name
    base = _COMPOSITE_WORDS.sub("", layer.name).strip(" -·:") or layer.name
    return f"{base} · {bands[0].name}"


def _palette_name(colors: list[str]) -> str:
    lowered = [c.lower() for c in colors]
    return next((k for k, v in PALETTES.items() if [c.lower() for c in v] == lowered), "")


def in_view(state: MapState, layer: LayerState) -> bool:
    """Whether the layer's extent overlaps the current view (:meth:`MapState.layer_in_view`, which
    also sees a layer across the antimeridian); True when there is no extent to compare."""
    try:
        return state.layer_in_view(layer.name)
    except Exception:  # noqa: BLE001 - no extent (e.g. a constant image) or a layer removed meanwhile
        return True


def band_legend_html(layer: LayerState, spec: LayerSpec) -> str:
    """HTML for an image or mask layer's legend, read from its spec."""
    e = html.escape
    style = spec.style
    bands = spec.node.bands
    title = f"<div class='viewer-legend-title'>{e(legend_title(layer, spec))}</div>"
    if spec.kind == "mask":
        pal = [to_hex(c) for c in style["palette"]]
        if len(pal) == 1 or len(set(pal)) == 1:
            body = (f"<div><span class='viewer-swatch' style='background:{pal[0]}'></span> mask &gt; 0 "
                    f"({e(', '.join(b.name for b in bands[:4]))}{'…' if len(bands) > 4 else ''}); 0 transparent</div>")
        else:
            body = _colorbar(pal, 0.0, 1.0, "mask (0 transparent)")
        return title + body
    vis = style["vis"]
    if vis["palette"]:
        b = bands[0]
        units = f" {e(b.units)}" if b.units else ""
        colors = [to_hex(c) for c in vis["palette"]]
        name = _palette_name(colors)
        label = f"{e(b.name)}{units}" + (f" · {e(name)}" if name else "")
        return title + _colorbar(colors, vis["min"][0], vis["max"][0], label, vis["gamma"][0])
    rows = []
    if len(bands) == 3:
        for (ch, color), b, lo, hi in zip(_CHANNELS, bands, vis["min"], vis["max"]):
            units = f" {e(b.units)}" if b.units else ""
            rows.append(f"<tr><td><b style='color:{color}'>{ch}</b></td><td>{e(b.name)}</td>"
                        f"<td class='viewer-num'>{_num(lo)} – {_num(hi)}{units}</td></tr>")
    else:
        b = bands[0]
        units = f" {e(b.units)}" if b.units else ""
        rows.append(f"<tr><td><b>gray</b></td><td>{e(b.name)}</td>"
                    f"<td class='viewer-num'>{_num(vis['min'][0])} – {_num(vis['max'][0])}{units}</td></tr>")
    gamma = vis["gamma"]
    extra = f"<div class='viewer-small'>gamma {', '.join(_num(g) for g in sorted(set(gamma)))}</div>" \
        if any(g != 1 for g in gamma) else ""
    stretch = f"<div class='viewer-small'>stretch: {e(layer.stretch)}{' (frozen)' if layer.freeze else ''}</div>" \
        if layer.stretch != "custom" else ""
    return title + "<table class='viewer-table'>" + "".join(rows) + "</table>" + extra + stretch


def _colorbar(colors: list[str], vmin: float, vmax: float, label: str, gamma: float = 1.0) -> str:
    stops = ", ".join(colors) if len(colors) > 1 else f"{colors[0]}, {colors[0]}"
    g = f" · gamma {_num(gamma)}" if gamma != 1 else ""
    return (f"<div class='viewer-colorbar' style='background: linear-gradient(to right, {stops})'></div>"
            f"<div class='viewer-colorbar-labels'><span>{_num(vmin)}</span><span>{label}{g}</span>"
            f"<span>{_num(vmax)}</span></div>")


class _ClassLegend:
    """Clickable class rows for one overlay; labels updated in place after every view change."""

    def __init__(self, layer: LayerState) -> None:
        self.layer = layer
        self.title = pn.pane.HTML(sizing_mode="stretch_width", margin=(4, 5, 0, 5))
        self.buttons: dict[int, pn.widgets.Button] = {}
        self.names: dict[int, str] = {}
        self.none = pn.pane.HTML("<span class='viewer-hint'>no pixel of this layer in view</span>", visible=False,
                                 margin=(0, 5))
        self.column = pn.Column(self.title, sizing_mode="stretch_width", margin=0)
        self._signature = None
        self.sync()

    def sync(self) -> None:
        classes = self.layer.effective_classes()
        entries = classes.to_list() if classes is not None else []
        background = classes.background if classes is not None else None
        entries = [c for c in entries if c["id"] != background]
        signature = tuple((c["id"], c["name"], c["color"]) for c in entries)
        if signature != self._signature:
            self._signature = signature
            self.buttons = {}
            self.names = {c["id"]: c["name"] for c in entries}
            for c in entries:
                btn = pn.widgets.Button(label=c["name"], color="light", sizing_mode="stretch_width",
                                        margin=(1, 5), stylesheets=[_CLASS_BUTTON_CSS],
                                        styles={"--swatch": c["color"]})
                btn.on_click(guarded("class toggle")(lambda event, cid=c["id"]: self.toggle(cid)))
                self.buttons[c["id"]] = btn
            self.column.objects = [self.title] + list(self.buttons.values()) + [self.none]
        for cid, btn in self.buttons.items():
            hidden = cid in self.layer.hidden_classes
            btn.css_classes = ["viewer-class-hidden"] if hidden else []
        self.title.object = (f"<div class='viewer-legend-title'>{html.escape(self.layer.name)}"
                             f"<span class='viewer-small'> · click a class to hide/show it</span></div>")

    def toggle(self, cid: int) -> None:
        hidden = set(self.layer.hidden_classes)
        hidden ^= {cid}
        self.layer.hidden_classes = sorted(hidden)

    def set_counts(self, counts: list[dict] | None) -> None:
        """Label each class with its count in view; a class with no pixel in view is left out
        (all are listed, without counts, until the first counts arrive)."""
        by_id = {c["id"]: c for c in counts or []}
        for cid, btn in self.buttons.items():
            entry = by_id.get(cid)
            btn.label = class_label(entry) if entry else self.names[cid]
            btn.visible = counts is None or (entry is not None and entry["count"] > 0)
        self.none.visible = counts is not None and not any(b.visible for b in self.buttons.values())


class Legends(pn.viewable.Viewer):
    """Band and class legends of the visible layers, top layer first."""

    def __init__(self, state: MapState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._band_panes: dict[int, pn.pane.HTML] = {}
        self._class_legends: dict[int, _ClassLegend] = {}
        self._empty = pn.pane.HTML("<p class='viewer-hint'>No shown layer in view.</p>", sizing_mode="stretch_width")
        self.column = pn.Column(sizing_mode="stretch_width")
        state.watch_layers(lambda *_: self.sync(), ["token", "visible", "name", "stretch", "freeze"])  # was "revision"
        state.param.watch(lambda *_: self.sync(), ["view"])  # layers out of view have no legend
        state.param.watch(lambda *_: self.update_counts(), ["class_stats"])
        self.sync()

    def sync(self) -> None:
        objects = []
        alive = set()
        for layer in reversed(self.state.layers):
            if not layer.visible or not in_view(self.state, layer):
                continue
            key = id(layer)
            alive.add(key)
            if layer.kind == "classes":
                legend = self._class_legends.get(key)
                if legend is None:
                    legend = self._class_legends[key] = _ClassLegend(layer)
                else:
                    legend.sync()
                objects.append(legend.column)
            else:
                pane = self._band_panes.get(key)
                if pane is None:
                    pane = self._band_panes[key] = pn.pane.HTML(sizing_mode="stretch_width", margin=(4, 5))
                text = band_legend_html(layer, layer.spec())
                if pane.object != text:
                    pane.object = text
                objects.append(pane)
        for d in (self._band_panes, self._class_legends):
            for key in [k for k in d if k not in alive]:
                del d[key]
        objects = objects or [self._empty]
        if [id(o) for o in self.column.objects] != [id(o) for o in objects]:
            self.column.objects = objects
        self.update_counts()

    def update_counts(self) -> None:
        stats = self.state.class_stats
        for layer in self.state.layers:
            legend = self._class_legends.get(id(layer))
            if legend is not None:
                legend.set_counts(stats.get(layer.name) if stats else None)

    def class_legend(self, name: str) -> _ClassLegend:
        return self._class_legends[id(self.state.layer(name))]

    def __panel__(self):
        return self.column
