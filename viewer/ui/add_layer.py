""""Add a layer": pick a catalog asset, its bands and visualization, and put it on the map.

Asset ids and band names come from the catalog (trusted, but shown as text: they go to
Select options and text inputs, which Bokeh renders as text, never as HTML). A one-band
class asset becomes a segmentation overlay with its class table; other assets an image
layer (RGB of three bands, or one band with an optional palette). Without min/max the
Earth Engine defaults apply (a 2-98 % stretch over the layer for 16-bit DNs).
"""
from __future__ import annotations

from typing import Any

import panel as pn

from ..core.catalog import get_catalog
from ..core.image import Image
from .notify import guarded
from ..core.palettes import PALETTES
from .state import LayerState

__all__ = ["AddLayerPanel", "catalog_assets", "vis_params"]

_NO_PALETTE = "(none)"


def catalog_assets() -> list[str]:
    """The asset ids of the process's catalog, sorted."""
    return sorted(get_catalog().images)


def vis_params(mode: str, rgb: list[str], band: str, palette: str, vmin: float | None,
               vmax: float | None) -> dict:
    """Earth Engine ``vis_params`` for the panel's choices (``mode`` "RGB" or "1 band")."""
    vis: dict[str, Any] = {"bands": list(rgb) if mode == "RGB" else [band]}
    if vmin is not None and vmax is not None:
        vis["min"], vis["max"] = float(vmin), float(vmax)
    if mode != "RGB" and palette in PALETTES:
        vis["palette"] = palette  # a named palette (the core knows its colours)
    return vis


class AddLayerPanel(pn.viewable.Viewer):
    """Widgets that add a catalog asset to ``map_obj`` (a :class:`~viewer.ui.map.Map`)."""

    def __init__(self, map_obj: Any, **params: Any) -> None:
        super().__init__(**params)
        self.map = map_obj
        assets = catalog_assets()
        self.asset = pn.widgets.Select(label="catalog asset", options=assets, value=assets[0] if assets else None,
                                       sizing_mode="stretch_width")
        self.mode = pn.widgets.RadioButtonGroup(options=["RGB", "1 band"], value="RGB", color="light")
        self.channels = [pn.widgets.Select(label=ch, options=[], width=78) for ch in ("R", "G", "B")]
        self.band = pn.widgets.Select(label="band", options=[], width=110)
        self.palette = pn.widgets.Select(label="palette", options=[_NO_PALETTE] + list(PALETTES), width=120)
        self.vmin = pn.widgets.FloatInput(label="min (empty: auto)", value=None, width=115)
        self.vmax = pn.widgets.FloatInput(label="max (empty: auto)", value=None, width=115)
        self.layer_name = pn.widgets.TextInput(label="layer name", sizing_mode="stretch_width")
        self.info = pn.widgets.StaticText(value="", sizing_mode="stretch_width",
                                          styles={"font-size": "12px", "color": "#555"})
        self.button = pn.widgets.Button(label="Add layer", color="primary", sizing_mode="stretch_width")
        self.rgb_box = pn.Row(*self.channels, margin=0)
        self.one_box = pn.Row(self.band, self.palette, margin=0)
        self.range_box = pn.Row(self.vmin, self.vmax, margin=0)
        self.asset.param.watch(guarded("asset")(lambda e: self._asset_changed()), "value")
        self.mode.param.watch(lambda e: self._show_mode(), "value")
        self.button.on_click(guarded("add layer")(lambda e: self.add()))
        self._asset_changed()

    def _asset_changed(self) -> None:
        asset = self.asset.value
        if asset is None:
            self.info.value = "The catalog has no images."
            self.button.disabled = True
            return
        image = Image(asset)
        names = list(image.bandNames())
        self.classes = len(names) == 1 and image.bands[0].kind == "class"
        for i, w in enumerate(self.channels):
            w.options = names
            w.value = _default_rgb(names)[i]
        self.band.options = names
        self.band.value = names[0]
        self.mode.value = "RGB" if len(names) >= 3 and not self.classes else "1 band"
        self.mode.disabled = len(names) < 3 or self.classes
        self.layer_name.value = asset
        self.info.value = (f"{len(names)} band{'s' if len(names) != 1 else ''}"
                           + (": a class layer, added as an overlay with its classes" if self.classes else ""))
        self.button.disabled = False
        self._show_mode()

    def _show_mode(self) -> None:
        rgb = self.mode.value == "RGB"
        self.rgb_box.visible = rgb and not self.classes
        self.one_box.visible = not rgb and not self.classes
        self.range_box.visible = not self.classes

    def add(self) -> LayerState:
        """Add the chosen asset as a layer (shown, on top, selected and fitted into view)."""
        asset = self.asset.value
        image = Image(asset)
        name = self.layer_name.value.strip() or asset
        if self.classes:
            layer = self.map.add_overlay(image, name)
        else:
            vis = vis_params(self.mode.value, [w.value for w in self.channels], self.band.value,
                             self.palette.value, self.vmin.value, self.vmax.value)
            layer = self.map.add_layer(image, vis, name)
        layer.asset = asset  # a shared link names the asset to add it again
        state = self.map.state
        state.selected = layer.name
        if image.native_grid() is not None:
            state.fit_layer(layer.name)
        return layer

    def __panel__(self):
        return pn.Column(self.asset, self.info, self.mode, self.rgb_box, self.one_box, self.range_box, self.layer_name,
                         self.button, sizing_mode="stretch_width")


def _default_rgb(names: list[str]) -> list[str]:
    """True colour bands where the names are Landsat 8 / Sentinel-2 style, else the first three."""
    for rgb in (["B4", "B3", "B2"],):
        if all(b in names for b in rgb):
            return rgb
    first = names[:3] or [""]
    return (first + [first[-1]] * 3)[:3]
