"""Legends the user adds: geemap's ``add_colorbar`` and ``add_legend``.

Each call makes a plain dictionary (an *entry*) that :class:`viewer.Map` keeps in
``Map.user_legends``; :func:`user_legend_html` draws one (all text escaped) and
:class:`UserLegends` shows them all in a page or notebook, and ``Map.to_html`` embeds them.

* colour bar: ``{"kind": "colorbar", "colors": ["#440154", ...], "min": 0.0, "max": 1.0,
  "label": "NDVI", "discrete": False, "orientation": "horizontal", "layer_name": None}``
* legend: ``{"kind": "legend", "title": "Land cover", "items": [("Trees", "#006400"), ...],
  "layer_name": None}``
"""
from __future__ import annotations

import html
import math
from typing import Any, Sequence

import panel as pn
import param

from ..core.errors import InvalidArgument
from ..core.visualize import parse_palette, to_hex

__all__ = ["BUILTIN_LEGENDS", "colorbar_entry", "legend_entry", "user_legend_html", "all_legends_html", "UserLegends"]

#: geemap's ``builtin_legend`` names (the class colours of the Earth Engine catalog's datasets).
BUILTIN_LEGENDS: dict[str, dict[str, str]] = {
    "NLCD": {
        "11 Open Water": "466b9f", "12 Perennial Ice/Snow": "d1def8", "21 Developed, Open Space": "dec5c5",
        "22 Developed, Low Intensity": "d99282", "23 Developed, Medium Intensity": "eb0000",
        "24 Developed High Intensity": "ab0000", "31 Barren Land (Rock/Sand/Clay)": "b3ac9f",
        "41 Deciduous Forest": "68ab5f", "42 Evergreen Forest": "1c5f2c", "43 Mixed Forest": "b5c58f",
        "51 Dwarf Scrub": "af963c", "52 Shrub/Scrub": "ccb879", "71 Grassland/Herbaceous": "dfdfc2",
        "72 Sedge/Herbaceous": "d1d182", "73 Lichens": "a3cc51", "74 Moss": "82ba9e", "81 Pasture/Hay": "dcd939",
        "82 Cultivated Crops": "ab6c28", "90 Woody Wetlands": "b8d9eb", "95 Emergent Herbaceous Wetlands": "6c9fb8",
    },
    "ESA_WorldCover": {
        "10 Trees": "006400", "20 Shrubland": "ffbb22", "30 Grassland": "ffff4c", "40 Cropland": "f096ff",
        "50 Built-up": "fa0000", "60 Barren / sparse vegetation": "b4b4b4", "70 Snow and ice": "f0f0f0",
        "80 Open water": "0064c8", "90 Herbaceous wetland": "0096a0", "95 Mangroves": "00cf75",
        "100 Moss and lichen": "fae6a0",
    },
    "Dynamic_World": {
        "Water": "419bdf", "Trees": "397d49", "Grass": "88b053", "Flooded vegetation": "7a87c6",
        "Crops": "e49635", "Shrub and scrub": "dfc35a", "Built": "c4281b", "Bare": "a59b8f",
        "Snow and ice": "b39fe1",
    },
}

#: geemap's layout keywords: accepted, and not needed here (the legends sit in the legend panel).
_LAYOUT_KEYWORDS = {"position", "transparent_bg", "font_size", "axis_off", "max_width", "width", "height",
                    "add_header", "widget_args", "draggable", "style", "bg_color", "opacity", "shape_type",
                    "label_color", "background_color", "font_color", "font_family"}
_ORIENTATIONS = ("horizontal", "vertical")


def _check_keywords(call: str, kwargs: dict) -> None:
    unknown = sorted(set(kwargs) - _LAYOUT_KEYWORDS)
    if unknown:
        raise InvalidArgument(f"{call} got unexpected keyword(s) {unknown}; layout keywords it accepts: "
                              f"{sorted(_LAYOUT_KEYWORDS)}", value=unknown, allowed=sorted(_LAYOUT_KEYWORDS))


def _one_number(name: str, value: Any) -> float:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise InvalidArgument(f"a colour bar shows one band: vis_params {name!r} must be one number, "
                                  f"got {list(value)!r}", value=list(value), allowed="one number")
        value = value[0]
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"vis_params {name!r} must be a finite number, got {value!r}", value=value,
                              allowed="a finite number")
    return float(value)


def colorbar_entry(vis_params: dict | None = None, cmap: str = "gray", discrete: bool = False,
                   label: str | None = None, orientation: str = "horizontal", layer_name: str | None = None,
                   **kwargs: Any) -> dict:
    """A colour bar entry: ``vis_params`` gives ``min``, ``max`` and ``palette`` (a list of colours
    or a palette name); without a palette, ``cmap`` (a palette name) colours it."""
    _check_keywords("add_colorbar", kwargs)
    vis = {} if vis_params is None else vis_params
    if not isinstance(vis, dict):
        raise InvalidArgument(f"vis_params must be a dict with 'min', 'max' and 'palette', got "
                              f"{type(vis_params).__name__}", value=type(vis_params).__name__, allowed="dict")
    vmin = _one_number("min", vis.get("min", 0))
    vmax = _one_number("max", vis.get("max", 1))
    if not vmin < vmax:
        raise InvalidArgument(f"vis_params min {vmin:g} must be below max {vmax:g}", value=(vmin, vmax),
                              allowed="min < max")
    palette = vis.get("palette", cmap)
    if palette is None:
        raise InvalidArgument("add_colorbar needs a palette in vis_params or a cmap name", value=None,
                              allowed="a palette name or a list of colours")
    colors = [to_hex(c) for c in parse_palette(palette)]
    if orientation not in _ORIENTATIONS:
        raise InvalidArgument(f"orientation {orientation!r} is not allowed; allowed: {list(_ORIENTATIONS)}",
                              value=orientation, allowed=list(_ORIENTATIONS))
    if label is not None and not isinstance(label, str):
        raise InvalidArgument(f"label {label!r} must be a string", value=repr(label)[:80], allowed="str")
    return {"kind": "colorbar", "colors": colors, "min": vmin, "max": vmax, "label": label or "",
            "discrete": bool(discrete), "orientation": orientation, "layer_name": layer_name}


def _items(legend_dict: Any, keys: Any, colors: Any) -> list[tuple[str, str]]:
    if legend_dict is not None:
        if not isinstance(legend_dict, dict):
            raise InvalidArgument(f"legend_dict must be a dict of label -> colour, got "
                                  f"{type(legend_dict).__name__}", value=type(legend_dict).__name__,
                                  allowed="dict")
        pairs = list(legend_dict.items())
    else:
        if keys is None or colors is None:
            raise InvalidArgument("add_legend needs legend_dict, keys (labels) and colors together, or "
                                  f"builtin_legend (one of {sorted(BUILTIN_LEGENDS)})", value=None,
                                  allowed=["legend_dict", "keys + colors", "builtin_legend"])
        if isinstance(keys, str) or isinstance(colors, str) or not isinstance(keys, Sequence) \
                or not isinstance(colors, Sequence):
            raise InvalidArgument("keys (labels) and colors must be lists", value=(repr(keys)[:60], repr(colors)[:60]),
                                  allowed="lists of equal length")
        if len(keys) != len(colors):
            raise InvalidArgument(f"keys (labels) and colors must have the same length; got {len(keys)} labels "
                                  f"and {len(colors)} colours", value=(len(keys), len(colors)),
                                  allowed="equal lengths")
        pairs = list(zip(keys, colors))
    if not pairs:
        raise InvalidArgument("a legend needs at least one label", value=0, allowed="one or more labels")
    return [(str(label), to_hex(color)) for label, color in pairs]


def legend_entry(title: str = "Legend", legend_dict: dict | None = None, keys: Sequence | None = None,
                 colors: Sequence | None = None, builtin_legend: str | None = None,
                 layer_name: str | None = None, **kwargs: Any) -> dict:
    """A legend entry from ``legend_dict`` (label -> colour), ``keys`` + ``colors`` or a
    ``builtin_legend`` name (:data:`BUILTIN_LEGENDS`)."""
    _check_keywords("add_legend", kwargs)
    if builtin_legend is not None:
        by_lower = {k.lower(): k for k in BUILTIN_LEGENDS}
        name = by_lower.get(str(builtin_legend).lower())
        if name is None:
            raise InvalidArgument(f"builtin_legend {str(builtin_legend)[:60]!r} is not allowed; allowed: "
                                  f"{sorted(BUILTIN_LEGENDS)}", value=str(builtin_legend)[:60],
                                  allowed=sorted(BUILTIN_LEGENDS))
        legend_dict = BUILTIN_LEGENDS[name]
    if not isinstance(title, str):
        raise InvalidArgument(f"title {title!r} must be a string", value=repr(title)[:80], allowed="str")
    return {"kind": "legend", "title": title, "items": _items(legend_dict, keys, colors), "layer_name": layer_name}


def _num(v: float) -> str:
    return f"{v:.6g}"


def _colorbar_html(entry: dict) -> str:
    e = html.escape
    colors = entry["colors"]
    vertical = entry["orientation"] == "vertical"
    if entry["discrete"] and len(colors) > 1:
        step = 100 / len(colors)
        stops = ", ".join(f"{c} {i * step:.4g}% {(i + 1) * step:.4g}%" for i, c in enumerate(colors))
    else:
        stops = ", ".join(colors) if len(colors) > 1 else f"{colors[0]}, {colors[0]}"
    label = f"<div class='viewer-legend-title' style='font-weight:600'>{e(entry['label'])}</div>" \
        if entry["label"] else ""
    if vertical:
        return (f"<div class='viewer-user-colorbar'>{label}<div style='display:flex;gap:6px;height:120px'>"
                f"<div class='viewer-colorbar' style='width:14px;border:1px solid #555;"
                f"background:linear-gradient(to top, {stops})'></div>"
                f"<div style='display:flex;flex-direction:column;justify-content:space-between;font-size:11px'>"
                f"<span>{_num(entry['max'])}</span><span>{_num(entry['min'])}</span></div></div></div>")
    return (f"<div class='viewer-user-colorbar'>{label}"
            f"<div class='viewer-colorbar' style='height:12px;border:1px solid #555;"
            f"background:linear-gradient(to right, {stops})'></div>"
            f"<div style='display:flex;justify-content:space-between;font-size:11px'>"
            f"<span>{_num(entry['min'])}</span><span>{_num(entry['max'])}</span></div></div>")


def _legend_html(entry: dict) -> str:
    e = html.escape
    rows = "".join(f"<div class='viewer-user-legend-row' style='font-size:12px;line-height:18px'>"
                   f"<span class='viewer-swatch' style='display:inline-block;width:12px;height:12px;"
                   f"border:1px solid #444;vertical-align:-2px;margin-right:6px;background:{color}'></span>"
                   f"{e(label)}</div>" for label, color in entry["items"])
    return (f"<div class='viewer-user-legend'><div class='viewer-legend-title' style='font-weight:600'>"
            f"{e(entry['title'])}</div>{rows}</div>")


def user_legend_html(entry: dict) -> str:
    """One entry as HTML (labels and titles escaped; colours are ``#rrggbb`` from the entry)."""
    if entry.get("kind") == "colorbar":
        return _colorbar_html(entry)
    if entry.get("kind") == "legend":
        return _legend_html(entry)
    raise InvalidArgument(f"legend entry kind {entry.get('kind')!r} is not allowed; allowed: colorbar, legend",
                          value=entry.get("kind"), allowed=["colorbar", "legend"])


def all_legends_html(entries: Sequence[dict]) -> str:
    """All entries, one after the other ('' for none)."""
    return "".join(f"<div style='margin:4px 0 8px 0'>{user_legend_html(e)}</div>" for e in entries)


class UserLegends(pn.viewable.Viewer):
    """The colour bars and legends added with ``add_colorbar``/``add_legend`` (hidden when none)."""

    source = param.Parameter(doc="An object with a ``user_legends`` list parameter (a viewer.Map).")

    def __init__(self, source: param.Parameterized, **params: Any) -> None:
        super().__init__(source=source, **params)
        # The column holds an HTML pane only while there is a legend: Panel loads MathJax into any
        # page whose first document has an HTML pane.
        self.column = pn.Column(sizing_mode="stretch_width", margin=0)
        self._pane: pn.pane.HTML | None = None
        source.param.watch(lambda event: self.sync(), ["user_legends"])
        self.sync()

    def sync(self) -> None:
        entries = self.source.user_legends
        if not entries:
            self.column.objects = []
            return
        text = all_legends_html(entries)
        if self._pane is None:
            self._pane = pn.pane.HTML(text, sizing_mode="stretch_width", margin=(4, 5))
        elif self._pane.object != text:
            self._pane.object = text
        if not self.column.objects:
            self.column.objects = [self._pane]

    def __panel__(self):
        return self.column
