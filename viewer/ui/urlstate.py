"""The map's state in the page URL, so a shared link reproduces the view exactly.

Query parameters (bottom layer first; every layer by its stable ``uid``, never by position)::

    ?lon=-87.3512345&lat=30.7612345&zoom=12.5&basemap=Offline (graticule)
    &layers=3f9c2a,b71e04,...                     # drawing order; a layer not listed was removed
    &3f9c2a=vis:1;op:0.6;mode:rgb;bands:B4,B3,B2;min:6000,6800,7700;max:10500,10500,11000;gamma:1.3
    &b71e04=vis:0;op:0.45;hide:2,3
    &c0ffee=vis:1;op:1;mode:1;bands:B5;min:0;max:0.5;gamma:1;pal:viridis;stretch:98%;freeze:1;mask:1
    &split=b71e04,c0ffee,swipe,50                 # a split view: left and right layer, mode, divider %

Per-layer fields: ``vis`` (0/1), ``op`` (opacity), ``mode`` (``rgb`` or ``1``), ``bands``,
``min``, ``max``, ``gamma`` (one value, or one per band), ``pal`` (a named palette, or up to
:data:`MAX_COLOURS` ``rrggbb`` colours), ``stretch`` (a preset), ``freeze`` (0/1),
``hide`` (hidden class ids), ``mask`` (the image layer's mask switch, 0/1); a collection
layer (one with a time slider) carries ``t`` (the step shown), ``red`` (a composite: mosaic,
median, ...) and ``win`` (its window in days); a layer added
from the catalog (the "add layer" control) also carries ``src`` (its catalog asset id),
``kind`` and ``name``, so a link adds it again: only ids of the catalog are added, under
the link's uid, at most :data:`MAX_LINK_LAYERS` of them. A difference layer (prediction against
truth, from the compare panel or ``Map.add_difference``) carries ``diff`` (the two layers' uids and
the class id, or ``all``): a link computes it again, at most :data:`MAX_LINK_DIFFERENCES` of them,
each on a truth of at most :data:`MAX_LINK_DIFFERENCE_PIXELS` native pixels. Numbers are
written in Python's shortest round-trip form, so the reloaded layers make the same specs,
the same tokens and byte-identical tile URLs. Values that do not fit (unknown ids, bands,
names, out-of-range numbers, oversized text) are ignored; nothing from the URL reaches the
page as HTML.
"""
from __future__ import annotations

import math
import re
import urllib.parse
from typing import Any, Mapping

from ..core.catalog import get_catalog
from ..core.errors import ViewerError
from ..core.image import Image
from ..core.palettes import named_palette
from .difference import add_difference_layer, difference, difference_label
from .state import CUSTOM_PALETTE, STRETCHES, LayerState, MapState, class_table, make_layer

__all__ = ["encode_state", "decode_query", "apply_query", "query_string", "link_url", "MAX_COLOURS",
           "MAX_VALUE_CHARS", "MAX_LINK_LAYERS", "MAX_LINK_DIFFERENCES", "MAX_LINK_DIFFERENCE_PIXELS"]

#: Most colours a custom palette may carry in a link (a longer one is left out of the link).
MAX_COLOURS = 32
#: Longest query value read; longer ones are ignored.
MAX_VALUE_CHARS = 2000
#: Most catalog layers a link adds (the rest are ignored): a page with hundreds of them stalled the
#: server's event loop for seconds (285 layers: 30 s for every other user).
MAX_LINK_LAYERS = 32
#: Most difference layers a link computes again (each reads its two class layers whole).
MAX_LINK_DIFFERENCES = 2
#: Largest truth (native pixels) whose difference a link computes again while the page is built.
MAX_LINK_DIFFERENCE_PIXELS = 4_000_000
_SAFE = ",:;!~*'()%"
_UID = re.compile(r"[0-9a-f]{6}\Z")
_HEX = re.compile(r"#?([0-9a-fA-F]{6})\Z")
_BAND = re.compile(r"[^,;:&=#%]{1,64}\Z")
_ASSET = re.compile(r"[A-Za-z0-9_./-]{1,200}\Z")
_NAME = re.compile(r"[^,;:&=#%]{1,80}\Z")
_CLASS_ID = re.compile(r"[0-9]{1,5}\Z")
#: Split view modes in a link (``split=<left uid>,<right uid>,<mode>,<divider %>``).
_SPLIT_MODES = {"swipe": "swipe", "side": "side by side"}
_SPLIT_CODES = {mode: code for code, mode in _SPLIT_MODES.items()}


def _num(v: float) -> str:
    """Shortest text that reads back as the same float (``6000``, ``0.45``, ``6843.285714285714``)."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _nums(values: list[float]) -> str:
    return ",".join(_num(v) for v in values)


def encode_layer(layer: LayerState) -> str:
    """One layer's settings as ``key:value`` fields joined by ``;``."""
    fields = [("vis", "1" if layer.visible else "0"), ("op", _num(layer.opacity))]
    made_of = getattr(layer, "difference_of", None)
    if made_of is not None and layer.kind == "classes":
        pred, truth, class_id = made_of
        fields.append(("diff", f"{pred},{truth},{'all' if class_id is None else int(class_id)}"))
        if _NAME.match(layer.name):
            fields.append(("name", layer.name))
    elif layer.asset and _ASSET.match(layer.asset) and layer.kind in ("image", "classes"):
        fields += [("src", layer.asset), ("kind", layer.kind)]
        if _NAME.match(layer.name):
            fields.append(("name", layer.name))
    if layer.kind == "image":
        bands = layer.bands
        if all(_BAND.match(b) for b in bands):
            fields.append(("mode", "rgb" if layer.mode == "RGB" else "1"))
            fields.append(("bands", ",".join(bands)))
        fields += [("min", _nums(layer.vmin)), ("max", _nums(layer.vmax))]
        gamma = layer.gamma
        fields.append(("gamma", _nums(gamma[:1] if len(set(gamma)) == 1 else gamma)))
        if layer.mode != "RGB" and layer.palette_name:
            if layer.palette_name != CUSTOM_PALETTE:
                fields.append(("pal", layer.palette_name))
            elif len(layer.custom_palette) <= MAX_COLOURS and all(_HEX.match(c) for c in layer.custom_palette):
                fields.append(("pal", ",".join(_HEX.match(c).group(1).lower() for c in layer.custom_palette)))
        if layer.stretch != "custom":
            fields.append(("stretch", layer.stretch))
        if layer.freeze:
            fields.append(("freeze", "1"))
        if layer.mask_image is not None:
            fields.append(("mask", "1" if layer.mask_applied else "0"))
    elif layer.kind == "classes":
        fields.append(("hide", ",".join(str(int(c)) for c in layer.hidden_classes)))
    time = getattr(layer, "time", None)  # a collection layer: the step its time slider shows
    if time is not None:
        if time.reducer:
            fields += [("red", time.reducer), ("win", _num(time.window_days))]
        fields.append(("t", str(int(time.index))))
    return ";".join(f"{k}:{v}" for k, v in fields)


def encode_state(state: MapState) -> dict[str, str]:
    """The query parameters of the map's whole state (ordered: view, basemap, layer order, layers)."""
    lon, lat = state.center
    query = {"lon": _num(round(lon, 7)), "lat": _num(round(lat, 7)), "zoom": _num(round(state.zoom, 4)),
             "basemap": state.basemap, "layers": ",".join(l.uid for l in state.layers)}
    for layer in state.layers:
        query[layer.uid] = encode_layer(layer)
    if state.split is not None:
        left, right, mode, divider = state.split
        query["split"] = f"{left},{right},{_SPLIT_CODES[mode]},{int(divider)}"
    return query


def query_string(query: Mapping[str, str]) -> str:
    """``?k=v&...`` with the separators of the layer fields left readable."""
    return "?" + "&".join(f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(str(v), safe=_SAFE)}"
                          for k, v in query.items())


# decoding ---------------------------------------------------------------------------------------
def _float(text: str, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and lo <= v <= hi else None


def _floats(text: str, n: int | None = None, lo: float = -math.inf, hi: float = math.inf) -> list[float] | None:
    parts = text.split(",")
    vals = [_float(p, lo, hi) for p in parts]
    if not vals or any(v is None for v in vals) or (n is not None and len(vals) not in (1, n)):
        return None
    return vals


def _flag(text: str) -> bool | None:
    return {"1": True, "0": False}.get(text)


def _palette(text: str) -> str | list[str] | None:
    """A named palette (as the menu writes it) or a list of ``rrggbb`` colours; None if neither."""
    if text and text == text.lower() and not text.endswith("_r") and named_palette(text) is not None:
        return text
    colours = text.split(",")
    if 1 <= len(colours) <= MAX_COLOURS and all(_HEX.match(c) for c in colours):
        return ["#" + c.lower() for c in colours]
    return None


def decode_layer(text: str, layer: LayerState) -> dict[str, Any]:
    """The settings a layer's query value asks for, checked against the layer (unknown or
    unfitting fields are left out)."""
    out: dict[str, Any] = {}
    if not isinstance(text, str) or len(text) > MAX_VALUE_CHARS:
        return out
    fields = _fields(text)
    if (v := _flag(fields.get("vis", ""))) is not None:
        out["visible"] = v
    if (v := _float(fields.get("op", ""), 0.0, 1.0)) is not None:
        out["opacity"] = v
    if layer.kind == "classes" and "hide" in fields:
        ids = [p for p in fields["hide"].split(",") if p]
        if all(re.fullmatch(r"-?\d{1,9}", p) for p in ids):
            out["hidden_classes"] = sorted({int(p) for p in ids})
    if layer.kind != "image":
        return out
    names = set(layer.image.bandNames())
    bands = fields.get("bands", "").split(",")
    mode = {"rgb": "RGB", "1": "1 band"}.get(fields.get("mode", ""))
    if mode is not None and len(bands) == (3 if mode == "RGB" else 1) and all(b in names for b in bands):
        out["bands"] = bands
    n = len(out.get("bands", layer.bands)) or 1
    for key, attr in (("min", "vmin"), ("max", "vmax")):
        if (v := _floats(fields.get(key, ""), n)) is not None:
            out[attr] = v
    if (v := _floats(fields.get("gamma", ""), n, 0.05, 10.0)) is not None:
        out["gamma"] = v
    palette = _palette(fields.get("pal", "")) if n == 1 else None
    if palette is not None:
        out["palette"] = palette
    elif "bands" in out:  # the link names the bands and no palette: none
        out["palette"] = None
    out["stretch"] = fields["stretch"] if fields.get("stretch") in STRETCHES else "custom"
    out["freeze"] = bool(_flag(fields.get("freeze", "0")))
    if layer.mask_image is not None and (v := _flag(fields.get("mask", ""))) is not None:
        out["mask_applied"] = v
    return out


def decode_time(text: str, layer: LayerState) -> dict[str, Any]:
    """The time slider settings (``reducer``, ``window_days``, ``index``) a collection layer's query
    value asks for; empty for any other layer (unfitting fields are left out)."""
    time = getattr(layer, "time", None)
    if time is None or not isinstance(text, str) or len(text) > MAX_VALUE_CHARS:
        return {}
    fields, out = _fields(text), {}
    if "red" in fields or "t" in fields:  # a step without "red" is one image at a time
        reducer = fields.get("red", "")
        if reducer in time.param.reducer.objects:
            out["reducer"] = reducer
    lo, hi = time.param.window_days.bounds
    if (v := _float(fields.get("win", ""), lo, hi)) is not None:
        out["window_days"] = v
    if re.fullmatch(r"\d{1,6}", fields.get("t", "")):
        out["index"] = int(fields["t"])
    return out


def _apply_time(layer: LayerState, settings: dict[str, Any]) -> None:
    """Show the link's step of a collection layer (composite and window first: they make the steps);
    a step the collection does not have is ignored."""
    time = layer.time
    try:
        time.param.update(**{k: settings[k] for k in ("reducer", "window_days") if k in settings})
    except ViewerError:  # e.g. a composite over a collection without dates: one image at a time
        time.param.update(reducer="")
    if "index" in settings and settings["index"] <= time.param.index.bounds[1]:
        time.index = settings["index"]


def decode_split(text: str, state: MapState) -> tuple | None:
    """The split view a link's ``split`` value names (two different layers of the map, a mode, a divider
    position 0..100), or None when it does not fit."""
    parts = text.split(",") if isinstance(text, str) and len(text) <= 64 else []
    if len(parts) != 4:
        return None
    left, right, mode, divider = parts
    uids = {l.uid for l in state.layers}
    if left not in uids or right not in uids or left == right or mode not in _SPLIT_MODES:
        return None
    if not re.fullmatch(r"\d{1,3}", divider) or int(divider) > 100:
        return None
    return (left, right, _SPLIT_MODES[mode], int(divider))


def _apply_layer(layer: LayerState, settings: dict[str, Any], view_key: tuple) -> None:
    plain = {k: settings[k] for k in ("visible", "opacity", "hidden_classes", "mask_applied") if k in settings}
    before = {k: getattr(layer, k) for k in ("bands", "vmin", "vmax", "gamma", "palette", "stretch", "freeze")}
    before.update({k: getattr(layer, k) for k in plain})
    try:
        with layer.restoring():
            for key in ("bands", "vmin", "vmax", "gamma", "palette"):
                if key in settings:
                    setattr(layer, key, settings[key])
            layer.param.update(**plain, **{k: settings[k] for k in ("stretch", "freeze") if k in settings})
            layer.stretch_view = view_key
    except (ViewerError, ValueError, TypeError):  # a combination the core refuses: keep the layer as it was
        with layer.restoring():
            for key in ("bands", "vmin", "vmax", "gamma", "palette"):
                setattr(layer, key, before[key])
            layer.param.update(**{k: before[k] for k in before if k not in ("bands", "vmin", "vmax", "gamma",
                                                                               "palette")})


def decode_query(search: str) -> dict[str, str]:
    """``?a=1&b=2`` -> ``{"a": "1", "b": "2"}`` (plain strings; oversized values dropped)."""
    text = search[1:] if search.startswith("?") else search
    return {k: v for k, v in urllib.parse.parse_qsl(text[:64 * MAX_VALUE_CHARS]) if len(v) <= MAX_VALUE_CHARS}


def _fields(text: str) -> dict[str, str]:
    return dict(f.split(":", 1) for f in text.split(";") if ":" in f) if len(text) <= MAX_VALUE_CHARS else {}


def catalog_layer(text: str) -> LayerState | None:
    """The layer a link's ``src`` field adds again (a catalog asset, as the "add layer" control
    adds it), or None when the value names no asset of the catalog."""
    fields = _fields(text)
    asset, kind = fields.get("src", ""), fields.get("kind", "image")
    if not _ASSET.match(asset) or asset not in get_catalog().images or kind not in ("image", "classes"):
        return None
    name = fields.get("name", "") if _NAME.match(fields.get("name", "")) else asset
    image = Image(asset)
    if kind == "classes":
        layer = make_layer(image.select([0]), None, name, True, 0.6, kind="classes", classes=class_table(image))
    else:
        names = set(image.bandNames())
        bands = [b for b in fields.get("bands", "").split(",") if b in names]
        vis = {"bands": bands, "min": 0, "max": 1} if len(bands) in (1, 3) else None  # the link sets the range
        layer = make_layer(image, vis, name, True, 1.0)
    layer.asset = asset
    return layer


def difference_layer(text: str, uid: str, known: Mapping[str, LayerState], state: MapState) -> LayerState | None:
    """The difference layer a link's ``diff`` field makes again (added to ``state`` under ``uid``),
    or None when it names no two class layers of ``known`` (by uid), no class of the truth, or a
    truth larger than :data:`MAX_LINK_DIFFERENCE_PIXELS`."""
    fields = _fields(text)
    parts = fields.get("diff", "").split(",")
    if len(parts) != 3 or parts[0] not in known or parts[1] not in known:
        return None
    pred, truth = known[parts[0]], known[parts[1]]
    if pred.kind != "classes" or truth.kind != "classes":
        return None
    class_id = None
    if parts[2] != "all":
        table = truth.effective_classes()
        if not _CLASS_ID.match(parts[2]) or table is None or int(parts[2]) not in table.ids:
            return None
        class_id = int(parts[2])
    grid = truth.image.native_grid()
    if grid is None or grid.width * grid.height > MAX_LINK_DIFFERENCE_PIXELS:
        return None
    name = fields.get("name", "")
    if not _NAME.match(name):
        name = difference_label(pred.name, truth.name, class_id)
    made = difference(state, pred.name, truth.name, class_id)
    return add_difference_layer(state, made, pred.name, truth.name, class_id, name, uid=uid)


def apply_query(query: Mapping[str, str], state: MapState) -> None:
    """Apply a link's parameters to the map: layer order and removals, layers added from the
    catalog, each layer's settings, basemap, centre and zoom. What does not fit is ignored."""
    order = [u for u in str(query.get("layers", "")).split(",") if _UID.match(u)]
    known = {l.uid: l for l in state.layers}
    added = 0
    for uid in dict.fromkeys(order):
        if uid not in known and "src:" in str(query.get(uid, "")) and added < MAX_LINK_LAYERS:
            added += 1
            try:
                layer = catalog_layer(str(query[uid]))
                if layer is not None:
                    known[uid] = state.add(layer, uid=uid)
            except ViewerError:  # e.g. a georeferenced asset on a pixel-coordinate map
                pass
    differences = 0
    for uid in dict.fromkeys(order):  # after the catalog's: a difference may be of layers a link added
        if uid not in known and "diff:" in str(query.get(uid, "")) and differences < MAX_LINK_DIFFERENCES:
            differences += 1
            try:
                layer = difference_layer(str(query[uid]), uid, known, state)
                if layer is not None:
                    known[uid] = layer
            except ViewerError:  # e.g. the two layers share no pixel
                pass
    if any(u in known for u in order):
        kept = [known[u] for u in dict.fromkeys(order) if u in known]
        if kept != list(state.layers):
            if state.selected not in {l.name for l in kept}:
                state.selected = kept[-1].name if kept else None
            state.layers = kept
    basemap = query.get("basemap")
    if basemap in state.param.basemap.objects:
        state.basemap = basemap
    lon, lat, zoom = (_float(str(query.get(k, ""))) for k in ("lon", "lat", "zoom"))
    if lon is not None and lat is not None:
        try:
            state.set_center(lon, lat, zoom)
        except ViewerError:
            pass
    for layer in state.layers:  # after the view: a live stretch keeps the link's range for this view
        if layer.uid in query:
            time = decode_time(str(query[layer.uid]), layer)
            if time:  # the step first: it sets the layer's image, the settings below style it
                _apply_time(layer, time)
            _apply_layer(layer, decode_layer(str(query[layer.uid]), layer), state.view_key())
    split = decode_split(str(query.get("split", "")), state)
    if split is not None:  # shown in the map's place once there is a view (MapView.show_split)
        state.split = split


def link_url(state: MapState, location: Any) -> None:
    """Apply the page URL to ``state`` once, then keep the URL in step with the state
    (``location`` is Panel's ``pn.state.location``; its whole query is rewritten)."""
    apply_query(decode_query(location.search or ""), state)

    def to_url(*_):
        search = query_string(encode_state(state))
        if location.search != search:
            location.search = search

    state.param.watch(to_url, ["center", "zoom", "basemap", "split"])
    state.watch_layers(to_url, ["token", "visible", "opacity", "stretch", "freeze"])
    to_url()
