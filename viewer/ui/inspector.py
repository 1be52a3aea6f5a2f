"""The inspector: click the map, read every visible layer at native resolution.

For each band the click is placed on the band's own native grid and a 1 x 1 grid at
that pixel is evaluated with the core evaluator, so values are the stored values (no
resampling), masks are the evaluated masks and class ids are named from the layer's
class table. Layers (or bands) that do not cover the point say so.
"""
from __future__ import annotations

import asyncio
import functools
import html
import math
from typing import Any

import numpy as np
import panel as pn
import param
from affine import Affine
from pyproj import Transformer

from ..core.evaluate import evaluate
from ..core.grid import Grid, crs_code
from .basemaps import mercator_to_lonlat
from .notify import notify_error
from .state import EXECUTOR, LayerState, MapState, spawn

__all__ = ["inspect_point", "Inspector", "MAX_BANDS_SHOWN"]

MAX_BANDS_SHOWN = 16


def _to_crs(x: float, y: float, grid: Grid) -> tuple[float, float]:
    if grid.crs is None:
        return x, y
    t = Transformer.from_crs("EPSG:3857", grid.crs, always_xy=True)
    return t.transform(x, y)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    return str(v)


def inspect_layer(layer: LayerState, x: float, y: float, pixel_mode: bool) -> dict:
    """Band values, masks and class names of one layer under map point (x, y)."""
    img = layer.display_image()
    bands = list(img.bands)[:MAX_BANDS_SHOWN]
    out: dict[str, Any] = {"name": layer.name, "kind": layer.kind, "bands": [], "covered": False,
                           "crs": None, "crs_xy": None, "pixel": None}
    groups: dict[Grid | None, list[int]] = {}
    for i, b in enumerate(bands):
        groups.setdefault(b.grid, []).append(i)
    results: dict[int, dict] = {}
    for grid, idx in groups.items():
        if grid is None:  # constants: valid everywhere, any 1 x 1 grid will do
            one = Grid(None, Affine.identity(), 1, 1)
            px = None
        else:
            px = (x, -y) if pixel_mode else _to_crs(x, y, grid)
            col, row = ~grid.transform @ px
            if out["crs_xy"] is None:
                out["crs"] = "pixel" if grid.crs is None else crs_code(grid.crs)
                out["crs_xy"] = px
            if not (0 <= col < grid.width and 0 <= row < grid.height):
                for i in idx:
                    results[i] = {"name": bands[i].name, "value": None, "mask": None, "covered": False}
                continue
            c, r = int(math.floor(col)), int(math.floor(row))
            if out["pixel"] is None:
                out["pixel"] = (c, r)
            one = grid.window(c, r, 1, 1)
        layers = evaluate(img.select(idx).node, one)
        for i, l in zip(idx, layers):
            v = np.asarray(l.values).reshape(-1)[0]
            m = 1.0 if l.mask is None else float(np.asarray(l.mask).reshape(-1)[0])
            value = v.item() if hasattr(v, "item") else v
            results[i] = {"name": bands[i].name, "value": value, "mask": m, "covered": True}
    out["bands"] = [results[i] for i in range(len(bands))]
    out["covered"] = any(b["covered"] for b in out["bands"])
    if layer.kind == "classes" and out["bands"] and out["bands"][0]["covered"]:
        b = out["bands"][0]
        classes = layer.effective_classes()
        if b["mask"] and b["value"] is not None and classes is not None:
            cid = int(b["value"])
            out["class"] = {"id": cid, "name": classes.name(cid), "color": classes.color(cid),
                            "hidden": cid in layer.hidden_classes}
    if len(img.bands) > MAX_BANDS_SHOWN:
        out["more_bands"] = len(img.bands) - MAX_BANDS_SHOWN
    return out


def inspect_point(state: MapState, x: float, y: float) -> dict:
    """Everything the inspector shows for map point (x, y) (EPSG:3857, or pixel x, -row)."""
    result: dict[str, Any] = {"x": x, "y": y, "layers": []}
    if state.pixel_mode:
        result["pixel_xy"] = (x, -y)
    else:
        result["lonlat"] = mercator_to_lonlat(x, y)
    for layer in reversed(state.layers):  # top layer first, as drawn
        if layer.visible:
            result["layers"].append(inspect_layer(layer, x, y, state.pixel_mode))
    return result


def render_html(result: dict | None) -> str:
    if not result:
        return "<p class='viewer-hint'>Click the map to read the pixel values of every visible layer.</p>"
    e = html.escape
    parts = []
    if "lonlat" in result:
        lon, lat = result["lonlat"]
        parts.append(f"<div class='viewer-coords'><b>lon/lat</b> {lon:.6f}, {lat:.6f}"
                     f"<br><b>EPSG:3857</b> {result['x']:.1f}, {result['y']:.1f}</div>")
    else:
        px, py = result["pixel_xy"]
        parts.append(f"<div class='viewer-coords'><b>pixel x/y</b> {px:.2f}, {py:.2f}</div>")
    if not result["layers"]:
        parts.append("<p>No visible layer.</p>")
    outside = [lay["name"] for lay in result["layers"] if not lay["covered"]]
    for lay in result["layers"]:
        if not lay["covered"]:
            continue
        head = f"<div class='viewer-inspect-layer'><b>{e(lay['name'])}</b> <small>({lay['kind']})</small>"
        crs_xy = lay.get("crs_xy")
        if crs_xy is not None:
            head += f"<br><small>{e(str(lay['crs']))}: {crs_xy[0]:.2f}, {crs_xy[1]:.2f}"
            if lay.get("pixel"):
                head += f" &middot; col {lay['pixel'][0]}, row {lay['pixel'][1]}"
            head += "</small>"
        if "class" in lay:
            c = lay["class"]
            head += (f"<br><span class='viewer-swatch' style='background:{e(c['color'])}'></span> "
                     f"class <b>{e(c['name'])}</b> (id {c['id']}){' — hidden' if c['hidden'] else ''}")
        rows = "".join(
            f"<tr><td>{e(b['name'])}</td><td class='viewer-num'>{_fmt(b['value']) if b['covered'] else '—'}</td>"
            f"<td class='viewer-num'>{_fmt(b['mask']) if b['covered'] else 'outside'}</td></tr>"
            for b in lay["bands"])
        more = f"<tr><td colspan=3><i>+{lay['more_bands']} more bands</i></td></tr>" if lay.get("more_bands") else ""
        parts.append(head + "<table class='viewer-table'><tr><th>band</th><th>value</th><th>mask</th></tr>"
                     + rows + more + "</table></div>")
    if outside:  # one line for the layers that do not cover the point (the list stays short)
        parts.append(f"<div class='viewer-inspect-outside viewer-small'><i>no data here (outside the layer)</i>: "
                     f"{e(', '.join(outside))}</div>")
    return "".join(parts)


class Inspector(pn.viewable.Viewer):
    """Shows :func:`inspect_point` for the last click on the map."""

    result = param.Dict(default=None, allow_None=True)
    busy = param.Boolean(default=False)

    def __init__(self, state: MapState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._html = pn.pane.HTML(render_html(None), sizing_mode="stretch_width", css_classes=["viewer-inspector"])
        self._gen = 0

    def inspect(self, x: float, y: float) -> dict:
        """Inspect synchronously (used by tests and scripts)."""
        self.result = inspect_point(self.state, x, y)
        return self.result

    def on_click(self, x: float, y: float) -> None:
        """Map click handler: read values off the event loop when one is running."""
        self._gen += 1
        if not spawn(functools.partial(self._inspect_async, self._gen, x, y)):
            self.inspect(x, y)

    async def _inspect_async(self, gen: int, x: float, y: float) -> None:
        self.busy = True
        try:
            result = await asyncio.get_running_loop().run_in_executor(EXECUTOR, inspect_point, self.state, x, y)
            if gen == self._gen:
                self.result = result
        except Exception as exc:  # noqa: BLE001 - shown to the user, never as a traceback
            notify_error(exc, "inspector")
        finally:
            self.busy = False

    @param.depends("result", watch=True)
    def _render(self) -> None:
        self._html.object = render_html(self.result)

    def __panel__(self):
        return pn.Column(self._html, sizing_mode="stretch_width",
                         loading=self.param.busy)
