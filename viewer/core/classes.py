"""Class tables and class colours (Weights & Biases ``Classes``), and fast class colouring.

Public API::

    Classes([{"name": "person", "id": 0}, {"name": "car", "id": 2, "color": "red"}], background=None)
    Classes.from_labels({0: "person", 1: "tree"})        # W&B ``class_labels`` dict
    Classes.from_band(band_info_or_classes_tuple)        # a class band's table (catalog, ImageMask)
    classes.lut(hidden=(), opacity=1.0) -> (256, 4) uint8 RGBA lookup table
    colorize_classes(values, mask, classes, hidden=(), opacity=1.0) -> (H, W, 4) uint8
    classes.to_band_classes() -> the table as the ``classColors`` display node and ``BandInfo`` hold it
    default_color(class_id) -> "#rrggbb"

Default colours come from a fixed categorical palette indexed by class id (d3/Tableau
``category10`` for ids 0-9, its light companions for 10-19, then golden-angle hues), so
a class keeps its colour across runs, sessions and processes. User colours are CSS names
or hex. ``background=<id>`` makes that class transparent (napari's label background).
Hidden classes get alpha 0 (never black); ids without an entry are transparent. The
lookup tables and the colouring itself live in :mod:`viewer.core.visualize` (colour in one place).
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from .cache import memoized
from .errors import InvalidArgument
from .ops import MAX_CLASS_ID
from .visualize import class_lut, colorize, to_hex

__all__ = ["Classes", "ClassEntry", "colorize_classes", "default_color", "DEFAULT_PALETTE", "MAX_CLASS_ID"]


#: Ids 0-9: d3 / Tableau "category10"; ids 10-19: the light halves of "category20".
DEFAULT_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)

_ENTRY_KEYS = {"id", "name", "color", "description", "transparent"}


def default_color(class_id: int) -> str:
    """The stable default colour of a class id (``#rrggbb``)."""
    if class_id < len(DEFAULT_PALETTE):
        return DEFAULT_PALETTE[class_id]
    hue = (class_id * 0.6180339887498949) % 1.0  # golden-angle steps keep neighbours apart
    sat = (0.55, 0.75, 0.95)[class_id % 3]
    val = (0.95, 0.75)[(class_id // 3) % 2]
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return "#{:02x}{:02x}{:02x}".format(round(r * 255), round(g * 255), round(b * 255))


def _check_id(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument(f"{where}: class id {value!r} must be an integer in 0..{MAX_CLASS_ID}",
                              value=value, allowed=f"integer 0..{MAX_CLASS_ID}")
    if not 0 <= int(value) <= MAX_CLASS_ID:
        raise InvalidArgument(f"{where}: class id {value!r} is out of range; allowed 0..{MAX_CLASS_ID}",
                              value=value, allowed=f"integer 0..{MAX_CLASS_ID}")
    return int(value)


@dataclass(frozen=True)
class ClassEntry:
    """One class: id, readable name, colour (``#rrggbb``) and an optional description."""

    id: int
    name: str
    color: str
    description: str | None = None

    def to_dict(self) -> dict:
        out = {"id": self.id, "name": self.name, "color": self.color}
        if self.description:
            out["description"] = self.description
        return out


class Classes:
    """An immutable class table, as ``wandb.Classes([{"name": ..., "id": ...}])``.

    Each entry needs an integer ``id`` (0..65535) and a string ``name``; ``color`` is
    optional (CSS name or hex; default: :func:`default_color`). ``background`` names the
    id drawn transparent (default ``None``: every class is drawn).
    """

    __slots__ = ("_entries", "_by_id", "background")

    def __init__(self, class_set: Iterable[Mapping[str, Any]] = (), *, background: int | None = None) -> None:
        if isinstance(class_set, Classes):
            background = class_set.background if background is None else background
            class_set = class_set.to_list()
        if isinstance(class_set, (str, bytes, Mapping)) or not isinstance(class_set, Iterable):
            raise InvalidArgument(
                f"class_set {class_set!r} must be a list of dicts like {{'name': 'car', 'id': 2}}",
                value=class_set, allowed="list of {'name': str, 'id': int, 'color': optional}")
        entries: dict[int, ClassEntry] = {}
        for i, item in enumerate(class_set):
            where = f"class_set[{i}]"
            if not isinstance(item, Mapping):
                raise InvalidArgument(f"{where} {item!r} must be a dict with 'name' and 'id'", value=item,
                                      allowed="{'name': str, 'id': int, 'color': optional}")
            unknown = sorted(set(map(str, item)) - _ENTRY_KEYS)
            if unknown:
                raise InvalidArgument(f"{where} has unknown keys {unknown}; allowed: {sorted(_ENTRY_KEYS)}",
                                      value=unknown, allowed=sorted(_ENTRY_KEYS))
            if "id" not in item or "name" not in item:
                raise InvalidArgument(f"{where} {dict(item)!r} needs both 'id' and 'name'", value=dict(item),
                                      allowed="{'name': str, 'id': int}")
            cid = _check_id(item["id"], where)
            name = item["name"]
            if not isinstance(name, str) or not name:
                raise InvalidArgument(f"{where}: class name {name!r} must be a non-empty string", value=name,
                                      allowed="non-empty string")
            if cid in entries:
                raise InvalidArgument(f"{where}: class id {cid} appears twice; ids must be unique", value=cid,
                                      allowed="unique ids")
            color = item.get("color")
            color = default_color(cid) if color is None else to_hex(color)
            desc = item.get("description")
            if desc is not None and not isinstance(desc, str):
                raise InvalidArgument(f"{where}: description {desc!r} must be a string", value=desc)
            if item.get("transparent"):
                if background is not None and background != cid:
                    raise InvalidArgument(f"{where}: only one class can be transparent (already {background})",
                                          value=cid)
                background = cid
            entries[cid] = ClassEntry(cid, name, color, desc)
        if background is not None:
            background = _check_id(background, "background")
        self._entries = tuple(entries[k] for k in sorted(entries))
        self._by_id = {e.id: e for e in self._entries}
        self.background = background

    # construction -----------------------------------------------------------------------
    @classmethod
    def from_labels(cls, labels: Mapping[int, str], *, background: int | None = None) -> "Classes":
        """From a W&B ``class_labels`` dict ``{id: name}`` (default colours)."""
        if not isinstance(labels, Mapping):
            raise InvalidArgument(f"class labels {labels!r} must be a dict of int -> str", value=labels,
                                  allowed="dict[int, str]")
        return cls([{"id": k, "name": v} for k, v in labels.items()], background=background)

    @classmethod
    def coerce(cls, value: Any) -> "Classes":
        """A table from a ``Classes``, a W&B ``{id: name}`` dict or a list of ``{"id", "name", "color"}``."""
        if isinstance(value, Classes):
            return value
        if isinstance(value, Mapping):
            return cls.from_labels(value)
        return cls(value)

    @classmethod
    def from_band(cls, band: Any) -> "Classes":
        """The table of a class band: a ``BandInfo`` or its ``classes`` tuple of item tuples."""
        items = getattr(band, "classes", band)
        return cls([dict(c) for c in (items or ())])

    # queries ----------------------------------------------------------------------------
    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(e.id for e in self._entries)

    @property
    def names(self) -> dict[int, str]:
        return {e.id: e.name for e in self._entries}

    @property
    def colors(self) -> dict[int, str]:
        return {e.id: e.color for e in self._entries}

    def get(self, class_id: int) -> ClassEntry | None:
        return self._by_id.get(int(class_id))

    def name(self, class_id: int) -> str:
        """The class name, or ``class_<id>`` for ids without an entry (W&B's default)."""
        e = self._by_id.get(int(class_id))
        return e.name if e else f"class_{int(class_id)}"

    def color(self, class_id: int) -> str:
        e = self._by_id.get(int(class_id))
        return e.color if e else default_color(int(class_id))

    def to_list(self) -> list[dict]:
        """``[{"id", "name", "color"[, "description"]}]`` sorted by id."""
        return [e.to_dict() for e in self._entries]

    def to_band_classes(self) -> tuple:
        """The ``BandInfo.classes`` form (sorted item tuples; the background carries ``transparent``)."""
        out = []
        for e in self._entries:
            d = e.to_dict()
            if e.id == self.background:
                d["transparent"] = True
            out.append(tuple(sorted(d.items())))
        return tuple(out)

    def with_ids(self, ids: Iterable[int]) -> "Classes":
        """This table plus ``class_<id>`` entries (default colours) for ids it lacks."""
        extra = [{"id": int(i), "name": f"class_{int(i)}"} for i in ids if int(i) not in self._by_id]
        if not extra:
            return self
        return Classes(self.to_list() + extra, background=self.background)

    def merged(self, other: "Classes") -> "Classes":
        """Entries of ``other`` override entries with the same id (name, colour)."""
        table = {e["id"]: e for e in self.to_list()}
        table.update({e["id"]: e for e in other.to_list()})
        bg = other.background if other.background is not None else self.background
        return Classes(list(table.values()), background=bg)

    # colouring --------------------------------------------------------------------------
    def lut(self, hidden: Iterable[int] = (), opacity: float = 1.0, size: int = 256) -> np.ndarray:
        """A ``size`` x 4 uint8 RGBA table indexed by class id (:func:`viewer.core.visualize.class_lut`).

        Ids without an entry, the background class and ``hidden`` classes have alpha 0
        (their colour channels keep the class colour, so nothing turns black).
        """
        hidden_ids = tuple(_check_id(h, "hidden") for h in hidden)
        return class_lut(self.to_band_classes(), self.background, hidden_ids, opacity, size)

    # protocol ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict]:
        return iter(self.to_list())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, class_id: object) -> bool:
        return isinstance(class_id, (int, np.integer)) and int(class_id) in self._by_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Classes) and (self._entries, self.background) == (other._entries, other.background)

    def __hash__(self) -> int:
        return hash((self._entries, self.background))

    def __repr__(self) -> str:
        body = ", ".join(f"{e.id}: {e.name!r} {e.color}" for e in self._entries)
        bg = "" if self.background is None else f", background={self.background}"
        return f"Classes({{{body}}}{bg})"


@memoized("class tables", 256)
def _table(classes: Classes) -> tuple:
    return classes.to_band_classes()


def colorize_classes(
    values: np.ndarray,
    mask: np.ndarray | None,
    classes: Classes,
    hidden: Iterable[int] = (),
    opacity: float = 1.0,
) -> np.ndarray:
    """Class ids (H x W) -> H x W x 4 uint8 RGBA through one lookup table.

    ``mask`` (float in [0, 1] or bool; ``None`` = all valid) scales alpha, so masked
    pixels are transparent. Ids without a class entry, negative ids, NaN, hidden classes
    and the background class are transparent.
    """
    if not isinstance(classes, Classes):
        raise InvalidArgument(f"classes {classes!r} must be a viewer.Classes", value=classes)
    values = np.asarray(values)
    if values.ndim != 2:
        raise InvalidArgument(f"class values of shape {values.shape} must be 2-D (H x W)", value=values.shape)
    hidden_t = tuple(sorted({_check_id(h, "hidden") for h in hidden}))
    return colorize(values, mask, _table(classes), classes.background, hidden_t, opacity)
