"""Legends read from a layer's display expression (the node its tiles evaluate), so they cannot drift.

:func:`legend` says what the colours of a ``visualize``, ``maskRamp`` or ``classColors`` node
mean: the bands and ranges of an image, the ramp of a mask, the class table of an overlay.
Pixel counts per class come from :func:`viewer.core.class_stats.class_counts` of the
display's input (``node.args[0]``).
"""
from __future__ import annotations

from typing import Any

from .errors import InvalidArgument
from .graph import Node
from .ops import DISPLAY_OPS
from .visualize import to_hex

__all__ = ["legend"]


def _bands(node: Node) -> list[dict]:
    return [{"name": b.name, "units": b.units} for b in node.bands]


def legend(display: Node) -> dict[str, Any]:
    """What a display node's colours mean, as JSON-able data.

    * ``visualize``: ``{"kind": "image", "bands", "min", "max", "gamma", "palette" (hex or None), "opacity"}``;
    * ``maskRamp``: ``{"kind": "mask", "bands", "palette", "opacity"}`` (0 and masked are transparent);
    * ``classColors``: ``{"kind": "classes", "bands", "classes": [{"id", "name", "color", "hidden"}],
      "background", "opacity"}`` (hidden and background classes are transparent).
    """
    if not isinstance(display, Node) or display.op not in DISPLAY_OPS:
        shown = display.op if isinstance(display, Node) else type(display).__name__
        raise InvalidArgument(f"legend needs a display node ({', '.join(DISPLAY_OPS)}), got {shown!r}",
                              value=shown, allowed=list(DISPLAY_OPS))
    src = display.args[0]
    if display.op == "visualize":
        vis = display.args[1]
        return {"kind": "image", "bands": _bands(src), "min": list(vis["min"]), "max": list(vis["max"]),
                "gamma": list(vis["gamma"]), "opacity": vis["opacity"],
                "palette": [to_hex(tuple(c)) for c in vis["palette"]] if vis["palette"] else None}
    if display.op == "maskRamp":
        _, palette, opacity = display.args
        return {"kind": "mask", "bands": _bands(src), "palette": [to_hex(tuple(c)) for c in palette],
                "opacity": opacity}
    _, table, background, hidden, opacity = display.args
    classes = []
    for entry in table:
        e = dict(entry)
        classes.append({"id": e["id"], "name": e["name"], "color": e["color"], "hidden": e["id"] in hidden})
    return {"kind": "classes", "bands": _bands(src), "classes": classes, "background": background,
            "opacity": opacity}
