"""``Map.to_html(path)``: one self-contained HTML file of the current map, to open offline.

The file is a Bokeh standalone document with BokehJS inline (no CDN). Each visible layer's
tiles are rendered by the core (:func:`viewer.core.tiles.render_tile`, the same pixels as the
app's tiles) for a few zoom levels around the current view and embedded as PNG data URLs in
one ``image_url`` glyph per layer and level; a small CustomJS shows, after every pan or zoom,
the level closest to the screen resolution that covers the view. Pan and zoom are bounded to
the embedded area and levels. Legends (band, class and the user's ``add_colorbar``/``add_legend``)
sit beside the map as escaped HTML; a checkbox per layer shows or hides it.

Levels, in order of priority: the current one ``z`` and ``z - 1`` over the view widened by
half its size on each side (room to pan), ``z + 1`` over the view, ``z - 2`` widened, ``z + 2``
over the view; a level is added only while the tile count of all layers stays within
``max_tiles`` (:data:`MAX_TILES`, 300 by default: some 5-15 MB). Tiles outside a layer's
footprint, or fully transparent, are left out. Online basemaps are not embedded (their tiles
are a third party's); the offline graticule is drawn.
"""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bokeh.embed import file_html
from bokeh.models import (CheckboxGroup, ColumnDataSource, CustomJS, Div, ImageURL, InlineStyleSheet, Range1d,
                          CustomJSTickFormatter)
from bokeh.layouts import column, row
from bokeh.plotting import figure
from bokeh.resources import Resources

from ..core.errors import InvalidArgument, LimitExceeded
from ..core.layers import LayerSpec
from ..core.tiles import TILE_SIZE, empty_tile, layer_grid, pixel_max_zoom, render_tile, tile_in_footprint
from .basemaps import BASEMAPS, HALF_WORLD, graticule
from .legends import band_legend_html
from .state import LayerState, MapState
from .user_legends import all_legends_html

__all__ = ["MAX_TILES", "LEVEL_OFFSETS", "export_html", "export_size", "map_html", "TileLevel"]

#: Default cap on embedded tile images (all layers and levels together).
MAX_TILES = 300
#: Zoom levels relative to the current one, in the order they are added; ``True``: over the
#: widened view (room to pan), ``False``: over the view.
LEVEL_OFFSETS: tuple[tuple[int, bool], ...] = ((0, True), (-1, True), (1, False), (-2, True), (2, False))
#: Share of the view's width/height added on each side for panning.
PAN_MARGIN = 0.5

CSS = """
:host { font-family: sans-serif; }
.viewer-legend-title { font-weight: 600; margin: 4px 0 2px 0; }
.viewer-small { font-size: 11px; color: #555; }
.viewer-swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #444; vertical-align: -2px;
                 margin-right: 6px; }
.viewer-table { border-collapse: collapse; font-size: 12px; width: 100%; }
.viewer-table td, .viewer-table th { padding: 1px 6px; border-bottom: 1px solid #eee; text-align: left; }
.viewer-num { font-variant-numeric: tabular-nums; text-align: right !important; }
.viewer-colorbar { height: 12px; border: 1px solid #555; margin-top: 2px; }
.viewer-colorbar-labels { display: flex; justify-content: space-between; font-size: 11px; }
.viewer-class-row { font-size: 12px; line-height: 18px; }
"""

_LEVEL_JS = """
const xr = plot.x_range, yr = plot.y_range;
const upp = Math.abs(xr.end - xr.start) / width;        // map units per screen pixel
const wanted = Math.log2(res0 / upp);
const x0 = Math.min(xr.start, xr.end), x1 = Math.max(xr.start, xr.end);
const y0 = Math.min(yr.start, yr.end), y1 = Math.max(yr.start, yr.end);
const eps = upp;
const covers = (b) => b[0] <= x0 + eps && b[1] <= y0 + eps && b[2] >= x1 - eps && b[3] >= y1 - eps;
// the level closest to the screen's resolution that covers the view; else the closest one
const order = levels.map((z, i) => i).sort((a, b) => Math.abs(levels[a] - wanted) - Math.abs(levels[b] - wanted)
                                                  || levels[a] - levels[b]);
let pick = order.find((i) => covers(boxes[i]));
if (pick === undefined) { pick = order[0]; }
const z = levels[pick];
for (const r of renderers) {
  const layer = r.tags[0], level = r.tags[1];  // layer: its checkbox's index
  const on = checks.active.includes(layer) && level === z;
  if (r.visible !== on) { r.visible = on; }
}
plot.tags = [z];
"""


class _InlineOnly(Resources):
    """BokehJS inline, without the external files other libraries register on Bokeh's models (with
    Panel imported: an ES-module shim under a server path that a file cannot reach)."""

    @property
    def js_files(self) -> list[str]:
        return []

    @property
    def css_files(self) -> list[str]:
        return []

    def clone(self, *, components: list | None = None) -> "_InlineOnly":
        return _InlineOnly(mode="inline", components=components if components is not None else list(self.components))


@dataclass(frozen=True)
class TileLevel:
    """One zoom level to embed: the level and the box (x0, y0, x1, y1, map units) its tiles cover."""

    z: int
    box: tuple[float, float, float, float]


class _Scheme:
    """Tile arithmetic of the map: Web Mercator (XYZ) or the pixel scheme of non-georeferenced images."""

    def __init__(self, state: MapState) -> None:
        self.pixel = state.pixel_mode
        if self.pixel:
            g = next(l.image.native_grid() for l in state.layers)
            self.width, self.height = g.width, g.height
            self.zmax = pixel_max_zoom(g.width, g.height)
            self.res0 = float(2 ** self.zmax)  # image pixels per tile pixel at level 0
        else:
            self.res0 = 2 * HALF_WORLD / TILE_SIZE

    def span(self, z: int) -> float:
        return self.res0 * TILE_SIZE / 2 ** z

    def limits(self, z: int) -> tuple[int, int]:
        """Number of tile columns and rows at level ``z``."""
        if self.pixel:
            s = self.span(z)
            return max(1, math.ceil(self.width / s)), max(1, math.ceil(self.height / s))
        return 2 ** z, 2 ** z

    def tile_box(self, z: int, x: int, y: int) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of tile z/x/y in figure coordinates (pixel mode: y = -row)."""
        s = self.span(z)
        if self.pixel:
            return (x * s, -(y + 1) * s, (x + 1) * s, -y * s)
        return (-HALF_WORLD + x * s, HALF_WORLD - (y + 1) * s, -HALF_WORLD + (x + 1) * s, HALF_WORLD - y * s)

    def tiles(self, z: int, box: Sequence[float]) -> list[tuple[int, int]]:
        s = self.span(z)
        nx, ny = self.limits(z)
        x0, y0, x1, y1 = box
        if self.pixel:
            cols = range(max(0, math.floor(x0 / s)), min(nx - 1, math.ceil(x1 / s) - 1) + 1)
            rows = range(max(0, math.floor(-y1 / s)), min(ny - 1, math.ceil(-y0 / s) - 1) + 1)
        else:
            # columns continue across the antimeridian (column nx is column 0 one world east), at most one world
            first = math.floor((x0 + HALF_WORLD) / s)
            cols = range(first, min(first + nx, math.ceil((x1 + HALF_WORLD) / s)))
            rows = range(max(0, math.floor((HALF_WORLD - y1) / s)),
                         min(ny - 1, math.ceil((HALF_WORLD - y0) / s) - 1) + 1)
        return [(x, y) for y in rows for x in cols]

    def zoom_of(self, view: Sequence[float], width_px: int) -> float:
        upp = abs(view[2] - view[0]) / max(width_px, 1)
        return math.log2(self.res0 / upp)

    def wrap(self, z: int, x: int) -> int:
        """The tile column to render for column ``x`` (which may lie a world east or west)."""
        return x % self.limits(z)[0]

    def clamp(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """The box within the map's latitudes (x is left as is: a view may cross the antimeridian)."""
        if self.pixel:
            return tuple(box)  # type: ignore[return-value]
        return (box[0], max(box[1], -HALF_WORLD), box[2], min(box[3], HALF_WORLD))


def _widen(box: Sequence[float], margin: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def _wanted_tiles(scheme: _Scheme, specs: list[LayerSpec], z: int, box: Sequence[float]) -> list[tuple[int, int, int]]:
    """(layer index, x, y) of the tiles of level ``z`` over ``box`` that can have pixels."""
    out = []
    for i, spec in enumerate(specs):
        for x, y in scheme.tiles(z, box):
            if tile_in_footprint(spec, layer_grid(spec, z, scheme.wrap(z, x), y)):
                out.append((i, x, y))
    return out


def plan_levels(scheme: _Scheme, specs: list[LayerSpec], view: Sequence[float], width_px: int,
                max_tiles: int = MAX_TILES, max_zoom: int = 24) -> list[tuple[TileLevel, list]]:
    """The levels to embed (with their tiles), within ``max_tiles``; the current level first."""
    z0 = round(scheme.zoom_of(view, width_px))
    z0 = max(0, min(max_zoom, z0))
    chosen = []
    total = 0
    for offset, widened in LEVEL_OFFSETS:
        z = z0 + offset
        if not 0 <= z <= max_zoom:
            continue
        box = scheme.clamp(_widen(view, PAN_MARGIN) if widened else view)
        tiles = _wanted_tiles(scheme, specs, z, box)
        if offset == 0 and total + len(tiles) > max_tiles:  # the current level, at least over the view
            box = scheme.clamp(view)
            tiles = _wanted_tiles(scheme, specs, z, box)
            if len(tiles) > max_tiles:
                raise LimitExceeded(f"the current view needs {len(tiles)} tiles at zoom {z}; the HTML export "
                                    f"embeds at most max_tiles={max_tiles}", value=len(tiles), allowed=max_tiles)
        if total + len(tiles) > max_tiles:
            continue
        # the box the level really covers: the union of its tiles (all layers' tiles are on one grid)
        cover = _cover(scheme, z, box)
        chosen.append((TileLevel(z, cover), tiles))
        total += len(tiles)
    return chosen


def _cover(scheme: _Scheme, z: int, box: Sequence[float]) -> tuple[float, float, float, float]:
    tiles = scheme.tiles(z, box)
    boxes = [scheme.tile_box(z, x, y) for x, y in tiles] or [tuple(box)]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _class_legend_html(layer: LayerState) -> str:
    e = html.escape
    classes = layer.effective_classes()
    entries = classes.to_list() if classes is not None else []
    background = classes.background if classes is not None else None
    hidden = set(layer.hidden_classes)
    rows = "".join(f"<div class='viewer-class-row'><span class='viewer-swatch' style='background:{e(c['color'])}'>"
                   f"</span>{e(c['name'])}</div>" for c in entries if c["id"] != background and c["id"] not in hidden)
    return f"<div class='viewer-legend-title'>{e(layer.name)}</div>{rows}"


def legends_html(layers: list[LayerState], user_legends: Sequence[dict]) -> str:
    """Legends of the exported layers (top first) and the user's colour bars and legends."""
    parts = []
    for layer in reversed(layers):
        parts.append(_class_legend_html(layer) if layer.kind == "classes" else band_legend_html(layer, layer.spec()))
    return "".join(f"<div style='margin-bottom:8px'>{p}</div>" for p in parts) + all_legends_html(user_legends)


def _export_view(state: MapState, width: int, height: int) -> tuple[float, float, float, float]:
    """The map's current view, resized to ``width`` x ``height`` pixels around its centre at its resolution."""
    view = state.view or state.view_for(*state.center, state.zoom)
    mx, my = (view[0] + view[2]) / 2, (view[1] + view[3]) / 2
    upp = (view[2] - view[0]) / state.viewport[0]
    return (mx - upp * width / 2, my - upp * height / 2, mx + upp * width / 2, my + upp * height / 2)


def _figure(scheme: _Scheme, view: Sequence[float], levels: list[TileLevel], width: int, height: int,
            graticule_lines: bool):
    """The figure: the view, pan and zoom bounded to the embedded boxes and levels."""
    outer = (min(l.box[0] for l in levels), min(l.box[1] for l in levels),
             max(l.box[2] for l in levels), max(l.box[3] for l in levels))
    # from half a level finer than the finest to half a level coarser than the coarsest
    span_min = scheme.span(max(l.z for l in levels)) / TILE_SIZE * width / 2 ** 0.5
    span_max = min(scheme.span(min(l.z for l in levels)) / TILE_SIZE * width * 2 ** 0.5, outer[2] - outer[0])
    aspect = height / width
    xr = Range1d(view[0], view[2], bounds=(outer[0], outer[2]), min_interval=span_min, max_interval=span_max)
    yr = Range1d(view[1], view[3], bounds=(outer[1], outer[3]), min_interval=span_min * aspect,
                 max_interval=min(span_max * aspect, outer[3] - outer[1]))
    axes: dict[str, Any] = {} if scheme.pixel else {"x_axis_type": "mercator", "y_axis_type": "mercator"}
    fig = figure(x_range=xr, y_range=yr, frame_width=width, frame_height=height, match_aspect=True,
                 tools="pan,wheel_zoom,reset", active_scroll="wheel_zoom", output_backend="canvas",
                 name="viewer-map", **axes)
    fig.toolbar.logo = None
    fig.grid.visible = False
    fig.background_fill_color = "#eef1f4"
    fig.xaxis.axis_label = "column" if scheme.pixel else "longitude"
    fig.yaxis.axis_label = "row (down)" if scheme.pixel else "latitude"
    if scheme.pixel:
        fig.yaxis.formatter = CustomJSTickFormatter(code="return (-tick).toString()")
    elif graticule_lines:
        g = graticule(*scheme.clamp(outer))
        fig.multi_line(g["xs"], g["ys"], line_color="#8f9ba8", line_alpha=0.55, line_width=1, level="image")
    return fig


def _tile_renderers(fig, scheme: _Scheme, layers: list[LayerState], specs: list[LayerSpec],
                    plan: list[tuple[TileLevel, list]]) -> tuple[list, int]:
    """One ``image_url`` renderer per layer and level (the current level visible); the tile count.

    A renderer's tags are its layer's index in the layer switch (top layer first) and its level."""
    empty = empty_tile()
    current = plan[0][0].z
    embedded = 0
    renderers = []
    for li, (layer, spec) in enumerate(zip(layers, specs)):
        for level, tiles in plan:
            data: dict[str, list] = {"url": [], "x": [], "y": [], "w": [], "h": []}
            for i, x, y in tiles:
                if i != li:
                    continue
                png = render_tile(spec, level.z, scheme.wrap(level.z, x), y, "png")
                if png == empty:
                    continue
                left, bottom, right, top = scheme.tile_box(level.z, x, y)
                embedded += 1
                for key, value in (("url", _data_url(png)), ("x", left), ("y", top), ("w", right - left),
                                   ("h", top - bottom)):
                    data[key].append(value)
            glyph = ImageURL(url="url", x="x", y="y", w="w", h="h", anchor="top_left", global_alpha=layer.opacity,
                             retry_attempts=0)
            renderers.append(fig.add_glyph(ColumnDataSource(data), glyph, visible=level.z == current, level="image",
                                           name=f"{layer.name} z{level.z}", tags=[len(layers) - 1 - li, level.z]))
    return renderers, embedded


def map_html(state: MapState, user_legends: Sequence[dict] = (), title: str = "viewer map",
             size: tuple[int, int] | None = None, max_tiles: int = MAX_TILES) -> str:
    """The self-contained HTML text of the map ``state`` (see the module's description)."""
    if isinstance(max_tiles, bool) or not isinstance(max_tiles, int) or max_tiles < 1:
        raise InvalidArgument(f"max_tiles {max_tiles!r} must be a positive integer", value=max_tiles,
                              allowed="an integer >= 1")
    width, height = size or state.viewport
    if not (isinstance(width, int) and isinstance(height, int) and 100 <= width <= 4096 and 100 <= height <= 4096):
        raise InvalidArgument(f"size {size!r} must be (width, height) in pixels, each 100..4096", value=size,
                              allowed="100..4096")
    layers = [l for l in state.layers if l.visible]
    if not layers:
        raise InvalidArgument("the map has no visible layer to export", value=[l.name for l in state.layers],
                              allowed="at least one visible layer")
    scheme = _Scheme(state)
    view = _export_view(state, width, height)
    specs = [l.spec() for l in layers]
    plan = plan_levels(scheme, specs, view, width, max_tiles)
    levels = [level for level, _ in plan]
    fig = _figure(scheme, view, levels, width, height, BASEMAPS[state.basemap].url is None)
    renderers, embedded = _tile_renderers(fig, scheme, layers, specs, plan)

    checks = CheckboxGroup(labels=[l.name for l in reversed(layers)], active=list(range(len(layers))),
                           name="viewer-layers")
    cb = CustomJS(args={"plot": fig, "renderers": renderers, "checks": checks, "width": width, "res0": scheme.res0,
                        "levels": [l.z for l in levels], "boxes": [list(l.box) for l in levels]}, code=_LEVEL_JS)
    for r in (fig.x_range, fig.y_range):
        r.js_on_change("start", cb)
        r.js_on_change("end", cb)
    checks.js_on_change("active", cb)
    fig.tags = [levels[0].z]

    zs = sorted(l.z for l in levels)
    note = (f"<div class='viewer-small'>Offline copy: zoom levels {zs[0]}–{zs[-1]} embedded "
            f"({embedded} tiles, at most {max_tiles}); pan and zoom stay within them."
            + ("" if BASEMAPS[state.basemap].url is None else
               f" The basemap ({html.escape(state.basemap)}) is online tiles and is not included.")
            + "</div>")
    sheet = InlineStyleSheet(css=CSS)
    heading = Div(text="<div class='viewer-legend-title'>Layers</div>", stylesheets=[sheet], width=260)
    legends = Div(text=legends_html(layers, user_legends) + note, stylesheets=[sheet], width=260,
                  name="viewer-legends")
    return file_html(row(fig, column(heading, checks, legends)), _InlineOnly(mode="inline"), title=title)


def _css_pixels(name: str, value: int | str | None) -> int | None:
    """``880`` or ``"880px"`` -> 880; ``None`` or a percentage (geemap's ``"100%"``) -> None."""
    if value is None or (isinstance(value, str) and value.strip().endswith("%")):
        return None
    text = value.strip()[:-2] if isinstance(value, str) and value.strip().endswith("px") else value
    try:
        number = int(text) if not isinstance(text, bool) else -1
    except (TypeError, ValueError):
        number = -1
    if not 100 <= number <= 4096:
        raise InvalidArgument(f"{name} {value!r} is not allowed; allowed: pixels 100..4096 (880 or '880px'), "
                              f"or a percentage for the current view's", value=value, allowed="100..4096")
    return number


def export_size(width: int | str | None, height: int | str | None,
                viewport: tuple[int, int]) -> tuple[int, int] | None:
    """The map's size in the file: ``None`` (the current view's) unless ``width`` or ``height`` is given."""
    w, h = _css_pixels("width", width), _css_pixels("height", height)
    if w is None and h is None:
        return None
    return (w or int(viewport[0]), h or int(viewport[1]))


def export_html(state: MapState, path: str | Path, user_legends: Sequence[dict] = (), title: str | None = None,
                size: tuple[int, int] | None = None, max_tiles: int = MAX_TILES) -> Path:
    """Write :func:`map_html` to ``path`` (UTF-8) and return the path."""
    out = Path(path)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InvalidArgument(f"to_html writes an .html file; got {str(path)[:120]!r}", value=str(path)[:120],
                              allowed=".html or .htm")
    text = map_html(state, user_legends, title or "viewer map", size, max_tiles)
    out.write_text(text, encoding="utf-8")
    return out

