"""The difference of two class layers (a prediction against a truth) as a layer of the map.

The compare panel's button, ``Map.add_difference`` and a shared link make it the same way: on the
truth's native grid, without a class id 1 = disagree, with one 1 false positive, 2 false
negative. The layer remembers what it is the difference of (``difference_of``: the two layers'
uids and the class id), so that a link carries the recipe, not the pixels.
"""
from __future__ import annotations

from ..core.class_stats import compare_masks
from ..core.errors import InvalidArgument
from ..core.image import Image
from .state import LayerState, MapState, class_table, make_layer

__all__ = ["difference", "difference_label", "add_difference_layer", "class_layer", "class_layers",
           "DIFFERENCE_PREFIX"]

#: Name prefix of the difference layers the compare panel adds (so they are not offered as inputs).
DIFFERENCE_PREFIX = "difference: "


def class_layers(state: MapState) -> list[LayerState]:
    """The class layers that can be compared (difference layers left out)."""
    return [l for l in state.layers if l.kind == "classes" and not l.name.startswith(DIFFERENCE_PREFIX)
            and getattr(l, "comparison", None) is None]


def class_layer(state: MapState, name: str, what: str) -> LayerState:
    """The class layer ``name`` of ``state`` (``what``: its role, for the error)."""
    layer = state.layer(name)
    if layer.kind != "classes":
        allowed = [l.name for l in class_layers(state)]
        raise InvalidArgument(f"{what} layer {name!r} is a {layer.kind} layer; allowed: class layers {allowed}",
                              value=name, allowed=allowed)
    return layer


def difference_label(prediction: str, truth: str, class_id: int | None) -> str:
    """The name the compare panel (and a link without one) gives a difference layer."""
    return f"{DIFFERENCE_PREFIX}{prediction} vs {truth}" + ("" if class_id is None else f" (class {class_id})")


def difference(state: MapState, prediction: str, truth: str, class_id: int | None = None) -> tuple[Image, dict]:
    """(difference image, comparison summary) of two class layers on the truth's native grid
    (thread-safe: reads the layers, changes nothing)."""
    pred, ref = class_layer(state, prediction, "prediction"), class_layer(state, truth, "truth")
    cmp = compare_masks(pred.image.select([0]), ref.image.select([0]), ref.image.native_grid(),
                        ref.effective_classes())
    return cmp.difference_image(class_id), cmp.to_dict()


def add_difference_layer(state: MapState, made: tuple[Image, dict], prediction: str, truth: str,
                         class_id: int | None, name: str, opacity: float = 0.8,
                         uid: str | None = None) -> LayerState:
    """Add ``made`` (what :func:`difference` returned for these arguments) as a shown class layer
    on top, in the truth's group, under ``uid`` when given and free."""
    image, summary = made
    pred, ref = state.layer(prediction), state.layer(truth)
    layer = make_layer(image, None, name, True, opacity, kind="classes", classes=class_table(image), group=ref.group)
    layer.comparison = summary
    layer.difference_of = (pred.uid, ref.uid, class_id)
    return state.add(layer, uid=uid)
