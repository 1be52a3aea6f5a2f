"""Pixel grids: a CRS, a pixel-is-area affine transform and dimensions.

Also the geography the map needs anywhere on Earth:

* :func:`lonlat_bounds` and :func:`mercator_bounds` give a grid's extent in degrees and in
  Web Mercator metres *continuous across the antimeridian*: ``west < east`` always, and
  ``east`` may exceed 180° (``HALF_WORLD`` metres) for a source that crosses it (an
  EPSG:4326 raster stored at 170°..190°, a UTM zone 60 scene). GDAL's ``transform_bounds``
  answers such a box with ``west > east``; adding 360° to ``east`` gives this form. Web
  Mercator bounds stop at its latitude limit (±85.0511°), so a polar source (EPSG:3413 or
  EPSG:3031 covering the pole) has a finite box up to the map's edge.
* :func:`center_long` is GDAL's ``CENTER_LONG`` rule (``InsertCenterLong`` in
  ``gdaltransformer.cpp``): when a geographic source's columns leave [-180°, 180°], every
  longitude transformed into it is first wrapped into ``[center - 180, center + 180]``, so a
  map pixel at 179°W finds the source pixel stored at 181°E. GDAL's warper does this for
  every geographic source; :func:`wrap_longitudes` lets the nearest sampler and footprints
  do the same, so tiles show both halves of such a source.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_bounds

from .cache import memoized
from .access import configure_gdal
from .errors import InvalidArgument, UnknownCRS

__all__ = ["Grid", "parse_crs", "crs_code", "PIXEL_CRS", "WEB_MERCATOR", "WGS84", "EARTH_RADIUS", "HALF_WORLD",
           "MAX_LATITUDE", "lonlat_bounds", "mercator_bounds", "center_long", "wrap_longitudes", "grid_key",
           "crs_token", "same_crs", "split_at_antimeridian"]

#: Stand-in CRS given to GDAL for images that live in plain pixel coordinates.
PIXEL_CRS = CRS.from_epsg(3857)
#: The map's CRS and the geographic CRS of longitudes and latitudes.
WEB_MERCATOR = CRS.from_epsg(3857)
WGS84 = CRS.from_epsg(4326)
#: Web Mercator's sphere radius (m), half the world's width (m) and its latitude limit (degrees).
EARTH_RADIUS = 6378137.0
HALF_WORLD = math.pi * EARTH_RADIUS
MAX_LATITUDE = math.degrees(2 * math.atan(math.exp(math.pi)) - math.pi / 2)


_CRS_ALLOWED = "an authority code such as 'EPSG:4326', 'ESRI:54009' or 'OGC:CRS84', WKT text or PROJJSON text"
_AUTHORITY_CODE = re.compile(r"(?P<auth>[A-Za-z][A-Za-z0-9_]{0,31}):(?P<code>[A-Za-z0-9_.]{1,32})\Z")
_WKT = re.compile(r"[A-Z][A-Z0-9_]*\s*[\[(]")
#: Words by which PROJ/GDAL would open a grid or init file, or fetch a URL, while resolving a CRS.
_FILE_REFERENCES = re.compile(r"/vsi|://|\+init|nadgrids|geoidgrids|hgridshift|vgridshift|PARAMETERFILE|"
                              r"parameter_file|PROJ4_GRIDS|\bgrids\b", re.I)
_MAX_CRS_TEXT = 65536


@memoized("CRS from text", 256)
def _crs_from_text(text: str) -> CRS:
    """An authority code, WKT or PROJJSON; each through its own constructor (never GDAL's
    user-input guessing, which also accepts file names and URLs)."""
    configure_gdal()  # PROJ_NETWORK=OFF before PROJ resolves anything a request named
    code = _AUTHORITY_CODE.match(text)
    if code:
        if code["auth"].upper() == "EPSG" and code["code"].isdigit():
            return CRS.from_epsg(int(code["code"]))
        return CRS.from_authority(code["auth"].upper(), code["code"])
    if text.startswith("{"):
        return CRS.from_string(text)
    return CRS.from_wkt(text)


def _without_schema(text: str) -> str:
    """PROJJSON without its ``$schema`` URL (the only URL a CRS may carry; it is never fetched)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise _crs_error(text, "is not valid PROJJSON") from None
    if not isinstance(doc, dict):
        raise _crs_error(text, "is not a PROJJSON object")
    doc.pop("$schema", None)
    return json.dumps(doc, sort_keys=True)


def _crs_error(value: Any, why: str) -> UnknownCRS:
    shown = value if not isinstance(value, str) or len(value) <= 120 else value[:117] + "..."
    return UnknownCRS(f"CRS {shown!r} {why}; allowed: {_CRS_ALLOWED} (resolved offline, never a path or URL)",
                      value=shown, allowed=_CRS_ALLOWED)


def parse_crs(value: Any) -> CRS | None:
    """Resolve an authority code (``EPSG:4326``), WKT or PROJJSON offline; ``None`` stays ``None``.

    Anything that looks like a path, a URL or a PROJ string naming grid files is refused
    before GDAL or PROJ see it.
    """
    if value is None or isinstance(value, CRS):
        return value
    if not isinstance(value, str) or not value.strip():
        raise _crs_error(value, "is not a CRS code or text")
    text = value.strip()
    if text.startswith("{") and len(text) <= _MAX_CRS_TEXT:
        text = _without_schema(text)
    if len(text) > _MAX_CRS_TEXT or "\x00" in text:
        raise _crs_error(value, f"is longer than {_MAX_CRS_TEXT} characters or has a NUL byte")
    if not (_AUTHORITY_CODE.match(text) or _WKT.match(text) or text.startswith("{")) or _FILE_REFERENCES.search(text):
        raise _crs_error(value, "is not an authority code, WKT or PROJJSON, or refers to a file or URL")
    try:
        return _crs_from_text(text)
    except (CRSError, ValueError, TypeError) as exc:
        raise _crs_error(value, f"cannot be resolved: {' '.join(str(exc).split())[:200]}") from None


def crs_code(crs: CRS | None) -> str | None:
    """``EPSG:nnnn`` when the CRS has an EPSG code, else its WKT; ``None`` for pixel space."""
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


_crs_tokens: dict[int, tuple] = {}


def crs_token(crs: CRS | None) -> str | None:
    """A CRS as its WKT, computed once per CRS object (hashing a rasterio CRS exports its WKT each
    time); the object is kept with it, so its id cannot be reused while cached."""
    if crs is None:
        return None
    hit = _crs_tokens.get(id(crs))
    if hit is None or hit[0] is not crs:
        if len(_crs_tokens) > 1024:
            _crs_tokens.clear()
        hit = _crs_tokens[id(crs)] = (crs, crs.to_wkt())
    return hit[1]


def same_crs(a: CRS | None, b: CRS | None) -> bool:
    """``a == b`` for CRSs (``None`` = pixel space), remembered per pair of WKTs: rasterio compares
    two different CRSs through GDAL each time (about 9 us, several times per map tile)."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    if not (isinstance(a, CRS) and isinstance(b, CRS)):
        return bool(a == b)
    return crs_token(a) == crs_token(b) or _gdal_same_crs(a, b)


@memoized("CRS equality", 1024, key=lambda a, b: (crs_token(a), crs_token(b)))
def _gdal_same_crs(a: CRS, b: CRS) -> bool:
    return bool(a == b)


def grid_key(grid: "Grid") -> tuple:
    """A cheap hashable key of a grid (equal grids give equal keys), computed once per grid."""
    return grid.key


@memoized("grid bounds", 4096, key=lambda grid, crs: (grid.key, crs_token(crs)))
def _bounds_in(grid: "Grid", crs: CRS) -> tuple[float, float, float, float]:
    # cached: every band read of a map tile asks for the same bounds (overview choice, coverage); keyed by
    # the grid's key and the CRS's WKT (hashing a rasterio CRS exports its WKT each time)
    if same_crs(crs, WEB_MERCATOR):
        return mercator_bounds(grid)
    if same_crs(crs, WGS84):
        return lonlat_bounds(grid)
    left, bottom, right, top = transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)
    if crs.is_geographic and left > right:  # GDAL's form of a box across the antimeridian
        right += 360.0
    return left, bottom, right, top


def _mercator_lon(x: float) -> float:
    return math.degrees(x / EARTH_RADIUS)


def _mercator_lat(y: float) -> float:
    return math.degrees(2 * math.atan(math.exp(y / EARTH_RADIUS)) - math.pi / 2)


@memoized("grid lon/lat bounds", 4096)
def lonlat_bounds(grid: "Grid") -> tuple[float, float, float, float]:
    """(west, south, east, north) of a georeferenced grid in degrees, continuous across the
    antimeridian: ``west < east``, and ``east`` may exceed 180 (``west`` be below -180) when
    the grid crosses it. Latitudes lie in [-90, 90]; a grid covering a pole reaches ±90.
    """
    crs = grid.crs
    if crs is None:
        raise InvalidArgument("a grid in pixel coordinates has no longitude/latitude bounds", value=None,
                              allowed="a grid with a CRS")
    left, bottom, right, top = grid.bounds
    if same_crs(crs, WEB_MERCATOR):  # exact (EPSG:3857's inverse), and not wrapped
        return (_mercator_lon(left), _mercator_lat(bottom), _mercator_lon(right), _mercator_lat(top))
    if same_crs(crs, WGS84):
        return (left, max(bottom, -90.0), right, min(top, 90.0))
    west, south, east, north = transform_bounds(crs, WGS84, left, bottom, right, top, densify_pts=21)
    if west > east:  # GDAL's form of a box across the antimeridian
        east += 360.0
    if crs.is_geographic:  # another datum: keep the longitudes where the grid stores them
        shift = 360.0 * round((left - west) / 360.0)
        west, east = west + shift, east + shift
    return (west, max(south, -90.0), east, min(north, 90.0))


def mercator_bounds(grid: "Grid") -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a grid in Web Mercator metres: :func:`lonlat_bounds` through
    EPSG:3857's formulas, so ``right`` may exceed :data:`HALF_WORLD` for a grid across the
    antimeridian, and latitudes are clipped at Mercator's limit (a polar grid ends at the map's edge).
    """
    if same_crs(grid.crs, WEB_MERCATOR):
        return grid.bounds
    west, south, east, north = lonlat_bounds(grid)

    def y(lat: float) -> float:
        lat = max(-MAX_LATITUDE, min(MAX_LATITUDE, lat))
        return EARTH_RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    return (EARTH_RADIUS * math.radians(west), y(south), EARTH_RADIUS * math.radians(east), y(north))


def center_long(crs: CRS | None, transform: Affine, width: int, height: int) -> float | None:
    """GDAL's ``CENTER_LONG`` for a source grid: the centre of its longitudes when it is geographic,
    spans at most 360° and leaves [-180°, 180°]; else ``None`` (no wrapping needed).

    GDAL's warper wraps longitudes transformed into a geographic source around this centre
    (``gdaltransformer.cpp``, ``InsertCenterLong``, from the four corners); GDAL does it for
    every geographic source, which changes nothing for one inside [-180°, 180°].
    """
    if crs is None or not crs.is_geographic:  # before the cache: a projected CRS needs no key
        return None
    return _center_long(crs_token(crs), transform, width, height)


@memoized("grid centre longitude", 1024)
def _center_long(_crs: str, transform: Affine, width: int, height: int) -> float | None:
    """:func:`center_long` of a geographic CRS (given by its WKT, which only keys the cache)."""
    xs = [(transform @ (c, r))[0] for c, r in ((0, 0), (width, 0), (0, height), (width, height))]
    lo, hi = min(xs), max(xs)
    if hi - lo > 360.0 or (lo >= -180.0 and hi <= 180.0):
        return None
    return (lo + hi) / 2.0


def wrap_longitudes(lon: np.ndarray, center: float) -> np.ndarray:
    """Longitudes wrapped into ``[center - 180, center + 180]`` as GDAL's ``CENTER_LONG`` does
    (one turn added or removed; PROJ's outputs lie in [-180, 180])."""
    lon = np.asarray(lon, np.float64)
    return np.where(lon < center - 180.0, lon + 360.0, np.where(lon > center + 180.0, lon - 360.0, lon))


def split_at_antimeridian(geometry: dict) -> dict:
    """A lon/lat GeoJSON (Multi)Polygon whose edges cross the antimeridian (a step of more than 180°
    in longitude, as Earth Engine reads ``[[179, 0], [-179, 0], ...]``: 2° wide, not 358°) as a
    MultiPolygon of its parts east and west of it, each inside [-180°, 180°]; other geometries as
    they are. Edges are cut where they are straight in lon/lat."""
    if geometry.get("type") == "Polygon":
        polygons = [geometry["coordinates"]]
    elif geometry.get("type") == "MultiPolygon":
        polygons = geometry["coordinates"]
    else:
        return geometry
    if not any(_crosses(ring) for poly in polygons for ring in poly):
        return geometry
    parts = []
    for poly in polygons:
        rings = _unwrapped(poly)
        lo, hi = min(x for x, _ in rings[0]), max(x for x, _ in rings[0])
        if hi > 180.0:  # the part east of 180° goes round to the west edge
            halves = ((180.0, False, 0.0), (180.0, True, -360.0))
        elif lo < -180.0:
            halves = ((-180.0, True, 0.0), (-180.0, False, 360.0))
        else:
            parts.append(poly)
            continue
        for edge, keep_east, shift in halves:
            cut = [_half(ring, edge, keep_east) for ring in rings]
            if cut[0] is not None:
                parts.append([[[x + shift, y] for x, y in ring] for ring in cut if ring is not None])
    return {"type": "MultiPolygon", "coordinates": parts}


def _crosses(ring: list) -> bool:
    return any(abs(b[0] - a[0]) > 180.0 for a, b in zip(ring, ring[1:]))


def _unwrapped(poly: list) -> list[list[tuple[float, float]]]:
    """The polygon's rings with longitudes continuous (each step at most 180°), holes in the exterior's turn."""
    out = []
    for i, ring in enumerate(poly):
        x = float(ring[0][0])
        if i:  # a hole starts in the same turn as the exterior
            x += 360.0 * round((out[0][0][0] - x) / 360.0)
        pts = [(x, float(ring[0][1]))]
        for a, b in zip(ring, ring[1:]):
            x += (float(b[0]) - float(a[0]) + 180.0) % 360.0 - 180.0
            pts.append((x, float(b[1])))
        out.append(pts)
    return out


def _half(ring: list[tuple[float, float]], edge: float, keep_east: bool) -> list[tuple[float, float]] | None:
    """The part of a closed ring east (or west) of the meridian ``edge`` (Sutherland-Hodgman), closed;
    ``None`` when less than a triangle is left."""
    def inside(p: tuple[float, float]) -> bool:
        return p[0] >= edge if keep_east else p[0] <= edge

    out: list[tuple[float, float]] = []
    for p, q in zip(ring, ring[1:]):
        if inside(p):
            out.append(p)
        if inside(p) != inside(q):
            t = (edge - p[0]) / (q[0] - p[0])
            out.append((edge, p[1] + t * (q[1] - p[1])))
    if len(out) < 3:
        return None
    return out + [out[0]]


@dataclass(frozen=True)
class Grid:
    """An immutable pixel grid. ``crs=None`` means plain pixel coordinates."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise InvalidArgument(
                    f"grid {name} {v!r} is not allowed; it must be a positive integer",
                    value=v, allowed="integer >= 1",
                )
        coeffs = tuple(self.transform)[:6]
        if not all(math.isfinite(c) for c in coeffs):
            raise InvalidArgument(
                f"affine transform {coeffs} has non-finite coefficients", value=coeffs,
                allowed="finite numbers",
            )
        if abs(self.transform.determinant) < 1e-300 or self.transform.is_degenerate:
            raise InvalidArgument(
                f"affine transform {coeffs} is singular (determinant 0); "
                "scaleX*scaleY - shearX*shearY must be non-zero",
                value=coeffs, allowed="an invertible affine transform",
            )

    def __hash__(self) -> int:
        # the key's hash: the dataclass's would hash the rasterio CRS, which exports its WKT each time
        return hash(self.key)

    @cached_property
    def key(self) -> tuple:
        """(transform coefficients, CRS WKT, width, height): hashable, equal for equal grids, made once."""
        return (tuple(self.transform)[:6], crs_token(self.crs), self.width, self.height)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the grid's corners in its own CRS."""
        xs, ys = [], []
        for c, r in ((0, 0), (self.width, 0), (0, self.height), (self.width, self.height)):
            x, y = self.transform @ (c, r)
            xs.append(x)
            ys.append(y)
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def gdal_crs(self) -> CRS:
        return self.crs if self.crs is not None else PIXEL_CRS

    def bounds_in(self, crs: CRS | None) -> tuple[float, float, float, float]:
        """Bounds of this grid expressed in another CRS (densified edges).

        In EPSG:4326 and EPSG:3857 these are :func:`lonlat_bounds` and :func:`mercator_bounds`
        (continuous across the antimeridian, Mercator latitudes clipped at its limit); in any
        geographic CRS ``left < right``, ``right`` possibly above 180.
        """
        if crs is None or self.crs is None or same_crs(crs, self.crs):
            return self.bounds
        return _bounds_in(self, crs)

    def resolution(self) -> tuple[float, float]:
        """Pixel size along x and y in CRS units (norm of the transform's columns)."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    def scaled(self, width: int, height: int) -> "Grid":
        """Same extent resampled to other dimensions."""
        t = self.transform @ Affine.scale(self.width / width, self.height / height)
        return Grid(self.crs, t, width, height)

    def window(self, col_off: int, row_off: int, width: int, height: int) -> "Grid":
        return Grid(self.crs, self.transform @ Affine.translation(col_off, row_off), width, height)

    def covering(self, other: "Grid") -> "Grid | None":
        """The window of this grid (whole pixels, clipped to its extent) that covers ``other``'s
        bounding box in this grid's CRS; ``None`` when they do not overlap.

        Counting a class image on ``image.native_grid().covering(view)`` counts the image's own
        pixels in a map view (a sub-grid of the native grid reads the source's bytes exactly).
        A geographic grid stored across the antimeridian is matched one turn east or west.
        """
        if (self.crs is None) != (other.crs is None):
            raise InvalidArgument("cannot cover a grid in pixel coordinates with one in map coordinates, or the "
                                  "other way round", value=str(other.crs), allowed="grids of the same kind")
        left, bottom, right, top = other.bounds_in(self.crs)
        if self.crs is not None and self.crs.is_geographic:  # the turn of the longitudes this grid stores
            own = self.bounds
            turn = 360.0 * round(((own[0] + own[2]) - (left + right)) / 720.0)
            left, right = left + turn, right + turn
        inv = ~self.transform
        corners = [inv @ (x, y) for x, y in ((left, bottom), (left, top), (right, bottom), (right, top))]
        cols, rows = [c for c, _ in corners], [r for _, r in corners]
        c0, c1 = max(0, math.floor(min(cols) + 1e-9)), min(self.width, math.ceil(max(cols) - 1e-9))
        r0, r1 = max(0, math.floor(min(rows) + 1e-9)), min(self.height, math.ceil(max(rows) - 1e-9))
        if c1 <= c0 or r1 <= r0:
            return None
        return self.window(c0, r0, c1 - c0, r1 - r0)

    def to_dict(self) -> dict:
        t = self.transform
        return {
            "dimensions": {"width": self.width, "height": self.height},
            "affineTransform": {
                "scaleX": t.a, "shearX": t.b, "translateX": t.c,
                "shearY": t.d, "scaleY": t.e, "translateY": t.f,
            },
            "crsCode": crs_code(self.crs),
        }
