"""Export of the current view: PNG of what is shown, GeoTIFF of raw bands, request JSON.

* PNG: every visible layer rendered on the view grid with the same renderer as the tiles
  (:func:`viewer.core.tiles.render_rgba`), composited bottom to top with its opacity.
* GeoTIFF: ``data.computePixels`` of the selected layer's bands (mask applied) on its
  native grid, cut to the view (a ``region``), so values are the stored ones.
* JSON: the ``getPixels`` request (catalog assets) or ``computePixels`` request (with the
  expression graph) that reproduces each visible layer on the view grid.
"""
from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import panel as pn

from ..core.encode import encode_png
from ..core.export import layer_request as display_request
from ..core.graph import Node
from ..core.grid import Grid
from ..core.pixels import computePixels
from ..core.tiles import render_rgba
from ..core.visualize import to_hex
from .basemaps import mercator_to_lonlat
from .notify import notify_error
from .state import LayerState, MapState

__all__ = ["composite_view", "view_png", "layer_geotiff", "layer_request", "view_requests",
           "ExportPanel"]


def composite_view(state: MapState, grid: Grid | None = None) -> np.ndarray:
    """H x W x 4 uint8: the visible layers on ``grid`` (default: the current view), as drawn."""
    grid = grid or state.current_grid()
    out = np.zeros((grid.height, grid.width, 4), np.float32)
    for layer in state.layers:
        if not layer.visible or layer.opacity <= 0:
            continue
        rgba = render_rgba(layer.spec(), grid).astype(np.float32) / 255.0
        a = rgba[..., 3:4] * layer.opacity
        out[..., :3] = rgba[..., :3] * a + out[..., :3] * (1 - a)
        out[..., 3:4] = a + out[..., 3:4] * (1 - a)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def view_png(state: MapState, grid: Grid | None = None) -> bytes:
    return encode_png(composite_view(state, grid), 6)


def _view_region(state: MapState, grid: Grid) -> dict | None:
    if grid.crs is None:
        return None
    x0, y0, x1, y1 = grid.bounds
    (lon0, lat0), (lon1, lat1) = mercator_to_lonlat(x0, y0), mercator_to_lonlat(x1, y1)
    return {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1],
                                                [lon0, lat0]]]}


def layer_geotiff(state: MapState, layer: LayerState, grid: Grid | None = None) -> bytes:
    """Raw bands of ``layer`` (its displayed bands, mask applied) on its native grid, cut to the view."""
    grid = grid or state.current_grid()
    image = layer.display_image()
    if layer.kind == "image" and layer.bands:
        image = image.select(list(layer.bands))
    native = image.native_grid()
    params: dict[str, Any] = {"expression": image, "fileFormat": "GEO_TIFF"}
    if native is not None and native.crs is not None and grid.crs is not None:
        # the native CRS and pixel lattice, cut to the view by the region (no dimensions)
        params["grid"] = {k: v for k, v in native.to_dict().items() if k != "dimensions"}
        params["region"] = _view_region(state, grid)
    else:
        params["grid"] = grid.to_dict()
    return computePixels(params)


def _asset_selection(node: Node) -> tuple[str, list[str]] | None:
    """(assetId, bandIds) when the node only selects (possibly repeatedly) bands of a catalog asset."""
    names = [b.name for b in node.bands]
    index = list(range(len(node.bands)))
    while node.op == "select":
        index = [node.args[1][i] for i in index]
        node = node.args[0]
    if node.op != "source" or not node.args[0]:
        return None
    if names != [node.bands[i].name for i in index]:  # renamed bands: not a plain asset request
        return None
    return node.args[0], names


def layer_request(layer: LayerState, grid: Grid) -> dict:
    """The request reproducing the layer's pixels on ``grid`` as the map shows them (PNG).

    A plain catalog image layer gives an Earth Engine ``getPixels`` request (asset, bands,
    visualization options); every other layer (class and mask overlays, derived images) a
    ``computePixels`` request of its display expression, which draws exactly its tiles
    (hidden classes included).
    """
    spec = layer.spec()
    sel = _asset_selection(spec.node) if spec.kind == "image" else None
    if sel is None:
        return {"method": "data.computePixels", "layer": layer.name, "request": display_request(spec, grid),
                "note": "expression is the layer's display graph: pass the request to viewer.data.computePixels"}
    vis = spec.style["vis"]
    req: dict[str, Any] = {"fileFormat": "PNG", "grid": grid.to_dict()}
    req["visualizationOptions"] = {"ranges": [{"min": lo, "max": hi} for lo, hi in zip(vis["min"], vis["max"])],
                                   "gamma": {"value": vis["gamma"][0]}}
    if vis["palette"]:
        req["visualizationOptions"]["paletteColors"] = [to_hex(c, prefix="") for c in vis["palette"]]
    req["assetId"], req["bandIds"] = sel
    return {"method": "data.getPixels", "layer": layer.name, "request": req}


def view_requests(state: MapState, grid: Grid | None = None) -> dict:
    grid = grid or state.current_grid()
    return {"grid": grid.to_dict(), "center": list(state.center), "zoom": state.zoom,
            "layers": [layer_request(l, grid) for l in state.layers if l.visible]}


class ExportPanel(pn.viewable.Viewer):
    """Download buttons for the current view."""

    def __init__(self, state: MapState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self.layer_select = pn.widgets.Select.from_param(state.param.selected, label="layer for GeoTIFF",
                                                         options=[l.name for l in state.layers],
                                                         sizing_mode="stretch_width")
        state.param.watch(lambda *_: self._options(), ["layers"])
        self.png = pn.widgets.FileDownload(callback=self._png, filename="view.png", label="PNG of the view",
                                           color="primary", sizing_mode="stretch_width")
        self.tif = pn.widgets.FileDownload(callback=self._tif, filename="layer.tif",
                                           label="GeoTIFF of the layer's raw bands", sizing_mode="stretch_width")
        self.json = pn.widgets.FileDownload(callback=self._json, filename="requests.json",
                                            label="getPixels request JSON", sizing_mode="stretch_width")

    def _options(self) -> None:
        self.layer_select.options = [l.name for l in self.state.layers]

    def _safe(self, what: str, fn) -> io.BytesIO:
        try:
            return io.BytesIO(fn())
        except Exception as exc:  # noqa: BLE001 - reported as a notification
            notify_error(exc, f"export {what}")
            return io.BytesIO(b"")

    def _png(self) -> io.BytesIO:
        return self._safe("PNG", lambda: view_png(self.state))

    def _tif(self) -> io.BytesIO:
        name = self.state.selected or (self.state.layers[-1].name if self.state.layers else None)
        self.tif.filename = f"{(name or 'layer').replace(' ', '_').replace('/', '_')}.tif"
        return self._safe("GeoTIFF", lambda: layer_geotiff(self.state, self.state.layer(name)))

    def _json(self) -> io.BytesIO:
        return self._safe("JSON", lambda: json.dumps(view_requests(self.state), indent=2).encode())

    def __panel__(self):
        return pn.Column(self.png, self.layer_select, self.tif, self.json, sizing_mode="stretch_width")
