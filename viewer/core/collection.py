"""``ImageCollection``: filter, sort and pick catalog images, Earth Engine style."""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from .catalog import get_catalog
from .errors import InvalidArgument
from .geometry import geojson_bounds, to_geojson
from .image import EEList, Image

__all__ = ["ImageCollection", "Number"]


class Number(int):
    """An integer that also answers ``getInfo()`` (Earth Engine's ``ee.Number``)."""

    def getInfo(self) -> int:
        return int(self)


def _millis(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dt.datetime):
        d = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return d.timestamp() * 1000
    if isinstance(value, str):
        try:
            d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument(f"date {value!r} is not an ISO date such as '2020-04-01'", value=value) from None
        return _millis(d)
    raise InvalidArgument(f"date {value!r} must be an ISO string, datetime or milliseconds", value=value)


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda a, b: a == b,
    "not_equals": lambda a, b: a != b,
    "less_than": lambda a, b: a < b,
    "greater_than": lambda a, b: a > b,
    "not_less_than": lambda a, b: a >= b,
    "not_greater_than": lambda a, b: a <= b,
    "starts_with": lambda a, b: str(a).startswith(str(b)),
    "ends_with": lambda a, b: str(a).endswith(str(b)),
    "not_starts_with": lambda a, b: not str(a).startswith(str(b)),
    "not_ends_with": lambda a, b: not str(a).endswith(str(b)),
    "contains": lambda a, b: str(b) in str(a),
    "not_contains": lambda a, b: str(b) not in str(a),
}


def _bbox_intersects(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


class ImageCollection:
    """A list of catalog images: ``ImageCollection('COPERNICUS/S2')``."""

    def __init__(self, args: Any) -> None:
        if isinstance(args, str):
            self._id: str | None = args
            self._images = [Image(i) for i in get_catalog().collection_images(args)]
        elif isinstance(args, (list, tuple)) and all(isinstance(i, Image) for i in args):
            self._id, self._images = None, list(args)
        else:
            raise InvalidArgument(f"ImageCollection({args!r}) needs a collection id or a list of Images",
                                  value=args)

    def _with(self, images: list[Image]) -> "ImageCollection":
        out = ImageCollection(images)
        out._id = self._id
        return out

    def filterBounds(self, geometry) -> "ImageCollection":
        """Images whose ``system:footprint`` bounding box intersects the geometry's."""
        box = geojson_bounds(to_geojson(geometry))
        keep = []
        for img in self._images:
            fp = img.get("system:footprint")
            if fp is not None and _bbox_intersects(geojson_bounds(to_geojson(fp)), box):
                keep.append(img)
        return self._with(keep)

    def filterDate(self, start, end=None) -> "ImageCollection":
        """Images with ``system:time_start`` in [start, end); undated images are dropped, as in EE."""
        t0 = _millis(start)
        t1 = _millis(end) if end is not None else t0 + 86400000
        keep = [i for i in self._images if i.get("system:time_start") is not None
                and t0 <= _millis(i.get("system:time_start")) < t1]
        return self._with(keep)

    def filterMetadata(self, name: str, operator: str, value) -> "ImageCollection":
        if operator not in _OPERATORS:
            raise InvalidArgument(f"operator {operator!r} is not allowed; allowed: {sorted(_OPERATORS)}",
                                  value=operator, allowed=sorted(_OPERATORS))
        fn = _OPERATORS[operator]
        keep = []
        for i in self._images:
            v = i.get(name)
            try:
                if v is not None and fn(v, value):
                    keep.append(i)
            except TypeError:
                continue
        return self._with(keep)

    def sort(self, prop: str, ascending: bool = True) -> "ImageCollection":
        """Sorted by a property; images without it go last (either direction)."""
        have = [i for i in self._images if i.get(prop) is not None]
        missing = [i for i in self._images if i.get(prop) is None]
        have.sort(key=lambda i: i.get(prop), reverse=not ascending)
        return self._with(have + missing)

    def first(self) -> Image:
        if not self._images:
            raise InvalidArgument(f"collection {self._id!r} is empty after filtering; nothing to return",
                                  value=self._id)
        return self._images[0]

    def size(self) -> Number:
        return Number(len(self._images))

    def toList(self, count: int | None = None, offset: int = 0) -> EEList:
        end = None if count is None else offset + count
        return EEList(self._images[offset:end])

    def map(self, fn: Callable[[Image], Image]) -> "ImageCollection":
        return self._with([fn(i) for i in self._images])

    def getInfo(self) -> dict:
        return {"type": "ImageCollection", "id": self._id, "features": [i.getInfo() for i in self._images]}

    def __iter__(self):
        return iter(self._images)

    def __len__(self) -> int:
        return len(self._images)
