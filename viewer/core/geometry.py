"""``Geometry`` and ``Projection``: the small Earth Engine value types the API needs."""
from __future__ import annotations

import math
from typing import Any

from pyproj import Geod
from rasterio.warp import transform_geom

from .errors import InvalidArgument
from .grid import crs_code, parse_crs

__all__ = ["Geometry", "Projection", "to_geojson", "geojson_bounds", "geodesic_area"]

_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
METERS_PER_DEGREE = 2 * math.pi * 6378137.0 / 360.0


def _finite(v: Any) -> bool:
    """A finite int or float (not a bool; an integer too large for a float is not finite)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _numbers(what: str, values: Any, n: int | None = None) -> list[float]:
    """``values`` as floats, or InvalidArgument naming them (``n``: how many are required)."""
    ok = isinstance(values, (list, tuple)) and (n is None or len(values) == n) and all(_finite(v) for v in values)
    if not ok:
        count = "numbers" if n is None else f"{n} finite numbers"
        raise InvalidArgument(f"{what} {_shown(values)} must be {count}", value=_shown(values),
                              allowed=count)
    return [float(v) for v in values]


def _check_coords(obj: Any, depth: int, gtype: str) -> None:
    if depth == 0:
        if not (isinstance(obj, (list, tuple)) and len(obj) >= 2 and all(_finite(v) for v in obj)):
            raise InvalidArgument(f"GeoJSON {gtype} has a bad position {obj!r}; positions are [x, y] numbers",
                                  value=obj, allowed="[x, y]")
        if not (-540 <= obj[0] <= 540 and -90 <= obj[1] <= 90):
            raise InvalidArgument(f"GeoJSON {gtype} position {list(obj)[:2]!r} is not a longitude/latitude; "
                                  "allowed: longitude in [-540, 540], latitude in [-90, 90]", value=list(obj)[:2],
                                  allowed="lon in [-540, 540], lat in [-90, 90]")
        return
    if not isinstance(obj, (list, tuple)) or len(obj) == 0:
        raise InvalidArgument(f"GeoJSON {gtype} coordinates {obj!r} are malformed", value=obj)
    for o in obj:
        _check_coords(o, depth - 1, gtype)


_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def to_geojson(geometry: Any) -> dict:
    """A validated GeoJSON geometry dict (lon/lat, EPSG:4326) from a Geometry or dict."""
    if isinstance(geometry, Geometry):
        return geometry.getInfo()
    if isinstance(geometry, dict) and geometry.get("type") == "Feature":
        geometry = geometry.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in _TYPES:
        raise InvalidArgument(
            f"region {geometry!r} is not a GeoJSON geometry; allowed types: {list(_TYPES)}",
            value=geometry, allowed=list(_TYPES))
    gtype = geometry["type"]
    coords = geometry.get("coordinates")
    _check_coords(coords, _DEPTH[gtype], gtype)
    if gtype == "Polygon":
        for ring in coords:
            if len(ring) < 4:
                raise InvalidArgument(f"GeoJSON Polygon ring {ring!r} needs at least 4 positions", value=ring)
    return {"type": gtype, "coordinates": coords}


def _flat_positions(coords: Any):
    if isinstance(coords[0], (int, float)):
        yield coords
    else:
        for c in coords:
            yield from _flat_positions(c)


def geojson_bounds(geometry: dict, crs=None) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of a lon/lat GeoJSON geometry in ``crs`` (vertices only)."""
    g = geometry
    if crs is not None:
        try:
            g = transform_geom("EPSG:4326", crs, geometry)
        except Exception as exc:  # noqa: BLE001 - PROJ's errors for points outside the CRS's domain
            raise InvalidArgument(f"region cannot be expressed in {crs_code(crs)!s:.60} ({' '.join(str(exc).split())[:80]})",
                                  value=geometry.get("type"), allowed="a region inside the CRS's area of use") from None
    pts = list(_flat_positions(g["coordinates"]))
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if not all(math.isfinite(v) for v in xs + ys):
        raise InvalidArgument(f"region cannot be expressed in {crs_code(crs)!s:.60} (non-finite coordinates)",
                              value=geometry.get("type"), allowed="a region inside the CRS's area of use")
    return min(xs), min(ys), max(xs), max(ys)


_GEOD = Geod(ellps="WGS84")


def geodesic_area(geometry: dict) -> float:
    """Area (m2) of a lon/lat GeoJSON (Multi)Polygon on the WGS 84 ellipsoid; 0 for other types."""
    gtype = geometry["type"]
    if gtype not in ("Polygon", "MultiPolygon"):
        return 0.0
    polys = [geometry["coordinates"]] if gtype == "Polygon" else geometry["coordinates"]
    total = 0.0
    for poly in polys:
        for i, ring in enumerate(poly):
            lons, lats = [p[0] for p in ring], [p[1] for p in ring]
            area = abs(_GEOD.polygon_area_perimeter(lons, lats)[0])
            total += area if i == 0 else -area
    return total


class Geometry:
    """A geometry in lon/lat: ``Geometry.Point``, ``Geometry.Rectangle``, ``Geometry.Polygon``."""

    def __init__(self, geo_json: dict) -> None:
        self._geojson = to_geojson(geo_json)

    @classmethod
    def Point(cls, coords, *rest) -> "Geometry":
        if rest:
            coords = [coords, *rest]
        if not isinstance(coords, (list, tuple)):
            raise InvalidArgument(f"Point {_shown(coords)} needs [lon, lat]", value=_shown(coords),
                                  allowed="[lon, lat]")
        return cls({"type": "Point", "coordinates": list(coords)[:2]})

    @classmethod
    def Rectangle(cls, coords, *rest) -> "Geometry":
        c = [coords, *rest] if rest else list(coords)
        if len(c) == 2 and all(isinstance(p, (list, tuple)) for p in c):
            c = [*c[0], *c[1]]
        if len(c) != 4 or not all(_finite(v) for v in c):
            raise InvalidArgument(f"Rectangle {_shown(c)} needs [xmin, ymin, xmax, ymax] (finite numbers)",
                                  value=_shown(c), allowed="[xmin, ymin, xmax, ymax]")
        x0, y0, x1, y1 = (float(v) for v in c)
        return cls({"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]})

    @classmethod
    def Polygon(cls, coords) -> "Geometry":
        rings = coords
        if rings and isinstance(rings, (list, tuple)) and isinstance(rings[0], (list, tuple)) and rings[0] \
                and isinstance(rings[0][0], (int, float)):
            rings = [rings]  # one ring given as its positions
        if not isinstance(rings, (list, tuple)) or not all(
                isinstance(r, (list, tuple)) and all(isinstance(p, (list, tuple)) for p in r) for r in rings):
            raise InvalidArgument(f"Polygon {_shown(coords)} needs a list of rings of [lon, lat] positions",
                                  value=_shown(coords), allowed="[[[lon, lat], ...], ...]")
        rings = [list(map(list, r)) for r in rings]
        for r in rings:
            if r and r[0] != r[-1]:
                r.append(list(r[0]))
        return cls({"type": "Polygon", "coordinates": rings})

    def getInfo(self) -> dict:
        return dict(self._geojson)

    def type(self) -> str:
        return self._geojson["type"]

    def bounds(self) -> "Geometry":
        x0, y0, x1, y1 = geojson_bounds(self._geojson)
        return Geometry.Rectangle([x0, y0, x1, y1])

    def coordinates(self):
        return self._geojson["coordinates"]

    def area(self, maxError: float | None = None) -> float:  # noqa: N803 - Earth Engine's name
        """Area in square metres on the WGS 84 ellipsoid (geodesic edges; holes subtracted; 0 for
        points and lines). ``maxError`` is accepted for Earth Engine compatibility."""
        return geodesic_area(self._geojson)

    def __repr__(self) -> str:
        return f"viewer.Geometry({self._geojson})"


class Projection:
    """A CRS plus an affine transform: ``Projection('EPSG:4326').atScale(10).getInfo()``."""

    def __init__(self, crs: str, transform=None) -> None:
        self._crs = parse_crs(crs)
        self._crs_text = crs if isinstance(crs, str) else crs_code(self._crs)
        t = transform if transform is not None else [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        self._transform = _numbers("transform", list(t) if isinstance(t, tuple) else t, 6)

    def atScale(self, meters: float) -> "Projection":
        """The same CRS with square pixels of ``meters`` (degrees at the equator for geographic CRSs)."""
        if not _finite(meters) or meters <= 0:
            raise InvalidArgument(f"scale {_shown(meters)} must be a positive number of meters", value=_shown(meters),
                                  allowed="a finite number > 0")
        if self._crs.is_geographic:
            s = meters / METERS_PER_DEGREE
        else:
            factor = self._crs.linear_units_factor[1] if self._crs.linear_units_factor else 1.0
            s = meters / factor
        return Projection(self._crs_text, [s, 0.0, 0.0, 0.0, s, 0.0])

    def nominalScale(self) -> float:
        s = abs(self._transform[0])
        return s * METERS_PER_DEGREE if self._crs.is_geographic else s

    def crs(self) -> str:
        return self._crs_text

    def getInfo(self) -> dict:
        return {"type": "Projection", "crs": self._crs_text, "transform": list(self._transform)}
