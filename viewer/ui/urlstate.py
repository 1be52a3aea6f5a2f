"""The view state in the URL, so a link reproduces the view (``pn.state.location.sync``).

Query parameters: ``lon``, ``lat``, ``zoom``, ``basemap``, ``layers`` (indices of the
visible layers, bottom first, e.g. ``0,2``), ``opacity`` (one value per layer) and
``stretch`` (one entry per layer: a preset such as ``98%``, or ``min~max`` ranges with
``|`` between bands, e.g. ``6300~12500|7000~12500|7900~13000``; ``-`` for overlays).
"""
from __future__ import annotations

from typing import Any

import param

from .state import STRETCHES, LayerState, MapState

__all__ = ["UrlState", "link_url", "encode_stretch", "decode_stretch"]


def encode_stretch(layer: LayerState) -> str:
    if layer.kind != "image":
        return "-"
    if layer.stretch != "custom":
        return layer.stretch + ("!" if layer.freeze else "")
    return "|".join(f"{lo:g}~{hi:g}" for lo, hi in zip(layer.vmin, layer.vmax))


def decode_stretch(text: str, layer: LayerState) -> dict:
    """LayerState updates for one ``stretch`` entry (empty when it does not apply)."""
    text = text.strip()
    if layer.kind != "image" or text in ("", "-"):
        return {}
    freeze = text.endswith("!")
    preset = text.rstrip("!")
    if preset in STRETCHES and preset != "custom":
        return {"stretch": preset, "freeze": freeze}
    parts = [p.split("~") for p in text.split("|")]
    if not all(len(p) == 2 for p in parts) or len(parts) not in (1, len(layer.bands) or 1):
        return {}
    lo, hi = [float(p[0]) for p in parts], [float(p[1]) for p in parts]
    return {"vmin": lo, "vmax": hi, "stretch": "custom"}


class UrlState(param.Parameterized):
    """The URL-facing copy of the view (plain values, untyped so query strings always parse)."""

    lon = param.Number(default=None, allow_None=True)
    lat = param.Number(default=None, allow_None=True)
    zoom = param.Number(default=None, allow_None=True)
    basemap = param.String(default=None, allow_None=True)
    layers = param.Parameter(default=None)
    opacity = param.Parameter(default=None)
    stretch = param.Parameter(default=None)


def _snapshot(state: MapState) -> dict[str, Any]:
    lon, lat = state.center
    return {
        "lon": round(lon, 5), "lat": round(lat, 5), "zoom": round(state.zoom, 2), "basemap": state.basemap,
        "layers": ",".join(str(i) for i, l in enumerate(state.layers) if l.visible),
        "opacity": ",".join(f"{l.opacity:g}" for l in state.layers),
        "stretch": ";".join(encode_stretch(l) for l in state.layers),
    }


def apply_url(url: UrlState, state: MapState) -> None:
    """Apply URL values to the map (values that do not fit are ignored)."""
    if url.lon is not None and url.lat is not None:
        try:
            state.set_center(float(url.lon), float(url.lat), float(url.zoom) if url.zoom is not None else None)
        except (ValueError, TypeError):
            pass
    if url.basemap in state.param.basemap.objects:
        state.basemap = url.basemap
    layers = state.layers
    if url.layers is not None:
        text = str(url.layers)
        visible = {int(t) for t in text.split(",") if t.strip().lstrip("-").isdigit()}
        for i, l in enumerate(layers):
            l.visible = i in visible
    if url.opacity is not None:
        for l, t in zip(layers, str(url.opacity).split(",")):
            try:
                l.opacity = min(1.0, max(0.0, float(t)))
            except ValueError:
                pass
    if url.stretch is not None:
        for l, t in zip(layers, str(url.stretch).split(";")):
            try:
                update = decode_stretch(t, l)
                if update:
                    l.param.update(**update)
            except (ValueError, TypeError):
                pass


def link_url(state: MapState, location: Any) -> UrlState:
    """Keep ``state`` and the page URL in step (both directions) through ``location.sync``."""
    url = UrlState(**_snapshot(state))
    busy = {"flag": False}

    def to_url(*_):
        if busy["flag"]:
            return
        busy["flag"] = True
        try:
            snap = _snapshot(state)
            url.param.update(**snap)
            # write every key (not only the changed ones), so any copied link is complete
            location.update_query(**{k: str(v) for k, v in snap.items() if v is not None})
        finally:
            busy["flag"] = False

    def from_url(*_):
        if busy["flag"]:
            return
        busy["flag"] = True
        try:
            apply_url(url, state)
        finally:
            busy["flag"] = False
        to_url()

    state.param.watch(to_url, ["center", "zoom", "basemap", "revision"])
    for l in state.layers:
        l.param.watch(to_url, ["vmin", "vmax", "stretch", "freeze"])
    url.param.watch(from_url, ["lon", "lat", "zoom", "basemap", "layers", "opacity", "stretch"])
    location.sync(url, {"lon": "lon", "lat": "lat", "zoom": "zoom", "basemap": "basemap", "layers": "layers",
                        "opacity": "opacity", "stretch": "stretch"})
    return url
