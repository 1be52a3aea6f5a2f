"""Export of the current view: PNG of what is shown, GeoTIFF of raw bands, request JSON.

* PNG: every visible layer rendered on the view grid with the same renderer as the tiles
  (:func:`viewer.core.tiles.render_rgba`), composited bottom to top with its opacity.
* GeoTIFF: ``data.computePixels`` of the selected layer's bands (mask applied) on its
  native grid, cut to the view (a ``region``), so values are the stored ones.
* JSON: the ``getPixels`` request (catalog assets) or ``computePixels`` request (with the
  expression graph) that reproduces each visible layer on the view grid.
* Big GeoTIFF: the same raw bands at any pixel size, beyond the interactive 48 MiB limit, as
  chunked tasks on Dask (:mod:`viewer.jobs.big_export`) written as a COG in the state folder
  (:data:`BIG_MAX_BYTES` uncompressed at most, the newest :data:`BIG_KEEP` files kept), with a
  progress bar and a cancel button; the file is offered for download when done.
"""
from __future__ import annotations

import importlib
import io
import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import panel as pn

from ..core.config import settings
from ..core.export import layer_request as display_request
from ..core.graph import Node
from ..core.grid import Grid
from ..core.pixels import computePixels
from ..core.tiles import render_rgba
from ..core.visualize import encode_png, to_hex
from .basemaps import mercator_to_lonlat
from .notify import notify_error
from .state import LayerState, MapState

__all__ = ["composite_view", "view_png", "layer_geotiff", "layer_request", "view_requests", "big_params",
           "big_export_path", "ExportPanel", "BIG_MAX_BYTES", "BIG_KEEP"]

#: Uncompressed size cap of a big export made in the app (the file is downloaded over the websocket).
BIG_MAX_BYTES = 512 * 2**20
#: Big export files kept in the state folder (older ones are deleted when a new one starts).
BIG_KEEP = 4


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


def big_params(state: MapState, layer: LayerState, grid: Grid | None = None, scale: float | None = None) -> dict:
    """The file export request of the layer's raw bands over the view (see :func:`layer_geotiff`),
    on its native pixel lattice or at pixel size ``scale`` (in the units of the layer's CRS)."""
    grid = grid or state.current_grid()
    image = layer.display_image()
    if layer.kind == "image" and layer.bands:
        image = image.select(list(layer.bands))
    native = image.native_grid()
    params: dict[str, Any] = {"expression": image, "fileFormat": "GEO_TIFF"}
    if native is not None and native.crs is not None and grid.crs is not None:
        lattice = {k: v for k, v in native.to_dict().items() if k != "dimensions"}
        if scale:
            t = native.transform
            lattice["affineTransform"] = {"scaleX": float(scale), "shearX": 0.0, "translateX": t.c,
                                          "shearY": 0.0, "scaleY": -float(scale), "translateY": t.f}
        params["grid"], params["region"] = lattice, _view_region(state, grid)
    else:
        params["grid"] = grid.to_dict()
    return params


def big_export_path(name: str) -> Path:
    """A new file in the state folder's ``exports`` (never a path from the page), the oldest beyond
    :data:`BIG_KEEP` deleted."""
    folder = settings().state_dir / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    # finished files only: a running export's temporaries are hidden (".name.*.tif")
    old = sorted((p for p in folder.glob("*.tif") if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime)
    for p in old[:max(0, len(old) - BIG_KEEP + 1)]:
        p.unlink(missing_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "layer").strip("._")[:40] or "layer"
    return folder / f"{stem}-{uuid.uuid4().hex[:8]}.tif"


def _big_jobs():
    # Dask loads on the first big export only (about three seconds and 25 MB per server process)
    return importlib.import_module("viewer.jobs.big_export")


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

    A plain catalog image layer with one gamma gives an Earth Engine ``getPixels`` request (asset,
    bands, visualization options); every other layer (per-band gammas too) (class and mask overlays, derived images) a
    ``computePixels`` request of its display expression, which draws exactly its tiles
    (hidden classes included).
    """
    spec = layer.spec()
    sel = _asset_selection(spec.node) if spec.kind == "image" else None
    if sel is not None and len(set(spec.style["vis"]["gamma"])) > 1:
        sel = None  # getPixels takes one gamma for all bands: per-band gammas go as the display expression
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

    def __init__(self, state: MapState, client: Any = None, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self.client = client  # a dask Client for big exports (default: VIEWER_DASK_SCHEDULER or a local cluster)
        self.job: Any = None
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._poller: Any = None
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
        self.big_scale = pn.widgets.FloatInput(label="pixel size of the big GeoTIFF (empty: native)", value=None,
                                               start=0, sizing_mode="stretch_width")
        self.big_button = pn.widgets.Button(label="Big GeoTIFF (COG) of the layer", sizing_mode="stretch_width")
        self.big_button.on_click(lambda *_: self.start_big())
        self.big_progress = pn.indicators.Progress(value=0, max=100, visible=False, sizing_mode="stretch_width")
        self.big_cancel = pn.widgets.Button(label="Cancel", color="warning", visible=False)
        self.big_cancel.on_click(lambda *_: self.cancel_big())
        self.big_status = pn.pane.Str("", sizing_mode="stretch_width", css_classes=["big-export-status"])
        self.big_download = pn.widgets.FileDownload(file=None, filename="export.tif", label="Download",
                                                    visible=False, color="success",
                                                    sizing_mode="stretch_width")

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

    # big exports ---------------------------------------------------------------------------
    def start_big(self) -> None:
        """Start the big export of the selected layer (off the event loop; :meth:`poll_big` follows it)."""
        if self.job is not None and not self.job.done() or self._starting is not None:
            return
        name = self.state.selected or (self.state.layers[-1].name if self.state.layers else None)
        try:
            params = big_params(self.state, self.state.layer(name), scale=self.big_scale.value or None)
            path = big_export_path(name or "layer")
        except Exception as exc:  # noqa: BLE001 - reported as a notification
            notify_error(exc, "big export")
            return
        self.job, self._start_error = None, None
        self.big_download.visible = False
        self.big_progress.value, self.big_progress.visible, self.big_cancel.visible = 0, True, True
        self.big_status.object = "starting ..."

        def start() -> None:
            try:
                self.job = _big_jobs().start_export(params, path, client=self.client, max_bytes=BIG_MAX_BYTES)
            except Exception as exc:  # noqa: BLE001 - shown by poll_big on the session's loop
                self._start_error = exc

        self._starting = threading.Thread(target=start, name="big-export-start", daemon=True)
        self._starting.start()
        if pn.state.curdoc is not None and self._poller is None:
            self._poller = pn.state.add_periodic_callback(self.poll_big, period=300)

    def cancel_big(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self.big_status.object = "cancelling ..."

    def poll_big(self) -> None:
        """Show the running export's progress; when it ends, offer the file (or the error)."""
        if self._starting is not None and not self._starting.is_alive():
            self._starting = None
        if self._start_error is not None:
            exc, self._start_error = self._start_error, None
            self._end_big(notify_error(exc, "big export"))
            return
        job = self.job
        if job is None:
            return
        done, total = job.progress
        self.big_progress.value = round(100 * done / total) if total else 100
        self.big_status.object = f"{done}/{total} chunks"
        if not job.done():
            return
        if job.status == "finished":
            size = job.path.stat().st_size
            self.big_download.file, self.big_download.filename = str(job.path), job.path.name
            self.big_download.label = f"Download the COG ({size / 2**20:.1f} MB)"
            self.big_download.visible = True
            self._end_big(f"done: {total} chunk{'s' if total != 1 else ''} in {job.elapsed:.1f} s")
        elif job.status == "cancelled":
            self._end_big("cancelled; no file written")
        else:
            try:
                job.result()
            except Exception as exc:  # noqa: BLE001 - reported as a notification
                self._end_big(notify_error(exc, "big export"))
        self.job = None if job.status != "finished" else job

    def _end_big(self, text: str) -> None:
        self.big_status.object = text
        self.big_cancel.visible = False
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    def __panel__(self):
        return pn.Column(self.png, self.layer_select, self.tif, self.json, self.big_scale, self.big_button,
                         self.big_progress, pn.Row(self.big_status, self.big_cancel, sizing_mode="stretch_width"),
                         self.big_download, sizing_mode="stretch_width")
