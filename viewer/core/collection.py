"""``ImageCollection``: filter, sort and pick catalog images, Earth Engine style."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any, Callable

from affine import Affine

from .catalog import get_catalog
from .errors import InvalidArgument, UnknownBand
from .geometry import geojson_bounds, to_geojson
from .graph import BandInfo, Node
from .grid import Grid
from .image import EEList, Image
from .reducers import Reducer, reduced_dtype

__all__ = ["ImageCollection", "Number", "Filter", "Date"]


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
        """A collection of ``fn(image)`` for every image (``fn`` is a Python function of an Image)."""
        if not callable(fn):
            raise InvalidArgument(f"map needs a function of an Image, got {type(fn).__name__}",
                                  value=type(fn).__name__, allowed="callable")
        out = []
        for img in self._images:
            result = fn(img)
            if not isinstance(result, Image):
                raise InvalidArgument(f"the mapped function returned {type(result).__name__}, not an Image",
                                      value=type(result).__name__, allowed="viewer.Image")
            out.append(result)
        return self._with(out)

    def select(self, *args, **kwargs) -> "ImageCollection":
        """The same bands of every image (``Image.select`` arguments)."""
        return self._with([img.select(*args, **kwargs) for img in self._images])

    def filter(self, flt: "Filter") -> "ImageCollection":
        """Images that pass an :class:`Filter` (``Filter.date``, ``Filter.eq``, ``Filter.bounds``)."""
        if not isinstance(flt, Filter):
            raise InvalidArgument(f"filter needs a viewer.Filter, got {type(flt).__name__}",
                                  value=type(flt).__name__, allowed="viewer.Filter")
        return flt.apply(self)

    # reducers: one image, evaluated per tile / per computePixels grid like any other ------
    def _reduce(self, reducer: Reducer) -> Image:
        nodes = _common_bands(self._images, self._id)
        bands = []
        for i, b in enumerate(nodes[0].bands):
            grid = _union_grid([n.bands[i].grid for n in nodes])
            for name in reducer.output_names(b.name):
                kind = b.kind if reducer.name in ("mosaic", "min", "max") else "continuous"
                bands.append(BandInfo(name, reduced_dtype(reducer.name, b.dtype), grid, kind,
                                      b.classes if kind != "continuous" else ()))
        return Image(_node=Node("reduce", (reducer.name, tuple(nodes), reducer.percentiles), tuple(bands)))

    def reduce(self, reducer: Reducer) -> Image:
        """Per-pixel reduction of the collection (``Reducer.median()``, ``Reducer.percentile([90])``...)."""
        if not isinstance(reducer, Reducer):
            raise InvalidArgument(f"reduce needs a viewer.Reducer, got {type(reducer).__name__}",
                                  value=type(reducer).__name__, allowed="viewer.Reducer")
        return self._reduce(reducer)

    def mosaic(self) -> Image:
        """Later images on top of earlier ones where they are valid."""
        return self._reduce(Reducer("mosaic"))

    def median(self) -> Image:
        return self._reduce(Reducer.median())

    def mean(self) -> Image:
        return self._reduce(Reducer.mean())

    def min(self) -> Image:  # noqa: A003 - Earth Engine's name
        return self._reduce(Reducer.min())

    def max(self) -> Image:  # noqa: A003
        return self._reduce(Reducer.max())

    def sum(self) -> Image:  # noqa: A003
        return self._reduce(Reducer.sum())

    def count(self) -> Image:
        return self._reduce(Reducer.count())

    def qualityMosaic(self, qualityBand: str) -> Image:
        """Per pixel, every band of the image whose ``qualityBand`` is highest."""
        nodes = _common_bands(self._images, self._id)
        names = [b.name for b in nodes[0].bands]
        if qualityBand not in names:
            raise UnknownBand(f"quality band {qualityBand!r} is not a band of the collection; allowed: {names}",
                              value=qualityBand, allowed=names)
        bands = tuple(BandInfo(b.name, b.dtype, _union_grid([n.bands[i].grid for n in nodes]), b.kind, b.classes)
                      for i, b in enumerate(nodes[0].bands))
        return Image(_node=Node("qualityMosaic", (tuple(nodes), names.index(qualityBand)), bands))

    def getInfo(self) -> dict:
        return {"type": "ImageCollection", "id": self._id, "features": [i.getInfo() for i in self._images]}

    def __iter__(self):
        return iter(self._images)

    def __len__(self) -> int:
        return len(self._images)


def _common_bands(images: list[Image], cid: str | None) -> list[Node]:
    """The images' nodes, checked to have the same band names (Earth Engine's rule for reducers)."""
    if not images:
        raise InvalidArgument(f"collection {cid!r} is empty (after filtering); nothing to reduce", value=cid,
                              allowed="at least one image")
    first = [b.name for b in images[0].bands]
    for img in images[1:]:
        names = [b.name for b in img.bands]
        if names != first:
            raise InvalidArgument(f"images of collection {cid!r} have different bands ({first} and {names}); "
                                  "select the same bands first", value=names, allowed=first)
    return [img.node for img in images]


def _union_grid(grids: list[Grid | None]) -> Grid | None:
    """A grid covering all ``grids``, in the first one's CRS and resolution."""
    known = [g for g in grids if g is not None]
    if not known:
        return None
    base = known[0]
    if len(known) == 1 or base.transform.b != 0 or base.transform.d != 0:
        return base
    boxes = [g.bounds_in(base.crs) for g in known]
    left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
    rx, ry = abs(base.transform.a), abs(base.transform.e)
    return Grid(base.crs, Affine(rx, 0.0, left, 0.0, -ry, top), max(1, math.ceil((right - left) / rx)),
                max(1, math.ceil((top - bottom) / ry)))


class Date:
    """A point in time, Earth Engine style: ``Date('2020-05-18')``, ``Date(millis)``."""

    def __init__(self, value: Any) -> None:
        self._millis = _millis(value.millis() if isinstance(value, Date) else value)

    def millis(self) -> float:
        return self._millis

    def advance(self, delta: float, unit: str) -> "Date":
        units = {"second": 1e3, "minute": 6e4, "hour": 3.6e6, "day": 8.64e7, "week": 6.048e8}
        if unit.rstrip("s") not in units:
            raise InvalidArgument(f"unit {unit!r} is not allowed; allowed: {sorted(units)}", value=unit,
                                  allowed=sorted(units))
        return Date(self._millis + delta * units[unit.rstrip("s")])

    def format(self, fmt: str = "%Y-%m-%d") -> str:
        return dt.datetime.fromtimestamp(self._millis / 1000, dt.timezone.utc).strftime(fmt)

    def getInfo(self) -> dict:
        return {"type": "Date", "value": self._millis}

    def __repr__(self) -> str:
        return f"Date({self.format('%Y-%m-%dT%H:%M:%SZ')!r})"


class Filter:
    """Earth Engine-style filters: ``Filter.date(start, end)``, ``Filter.eq(name, value)``, ``Filter.bounds(geom)``."""

    def __init__(self, apply: Callable[["ImageCollection"], "ImageCollection"], text: str) -> None:
        self.apply = apply
        self._text = text

    @classmethod
    def date(cls, start, end=None) -> "Filter":
        s = start.millis() if isinstance(start, Date) else start
        e = end.millis() if isinstance(end, Date) else end
        return cls(lambda c: c.filterDate(s, e), f"date({start!r}, {end!r})")

    @classmethod
    def eq(cls, name: str, value) -> "Filter":
        return cls(lambda c: c.filterMetadata(name, "equals", value), f"eq({name!r}, {value!r})")

    @classmethod
    def neq(cls, name: str, value) -> "Filter":
        return cls(lambda c: c.filterMetadata(name, "not_equals", value), f"neq({name!r}, {value!r})")

    @classmethod
    def bounds(cls, geometry) -> "Filter":
        return cls(lambda c: c.filterBounds(geometry), "bounds(...)")

    def __repr__(self) -> str:
        return f"Filter.{self._text}"
