"""Pixel grids: a CRS, a pixel-is-area affine transform and dimensions."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_bounds

from .errors import InvalidArgument, UnknownCRS

__all__ = ["Grid", "parse_crs", "crs_code", "PIXEL_CRS"]

#: Stand-in CRS given to GDAL for images that live in plain pixel coordinates.
PIXEL_CRS = CRS.from_epsg(3857)


_CRS_ALLOWED = "an authority code such as 'EPSG:4326', 'ESRI:54009' or 'OGC:CRS84', WKT text or PROJJSON text"
_AUTHORITY_CODE = re.compile(r"(?P<auth>[A-Za-z][A-Za-z0-9_]{0,31}):(?P<code>[A-Za-z0-9_.]{1,32})\Z")
_WKT = re.compile(r"[A-Z][A-Z0-9_]*\s*[\[(]")
#: Words by which PROJ/GDAL would open a grid or init file, or fetch a URL, while resolving a CRS.
_FILE_REFERENCES = re.compile(r"/vsi|://|\+init|nadgrids|geoidgrids|hgridshift|vgridshift|PARAMETERFILE|"
                              r"parameter_file|PROJ4_GRIDS|\bgrids\b", re.I)
_MAX_CRS_TEXT = 65536


@lru_cache(maxsize=256)
def _crs_from_text(text: str) -> CRS:
    """An authority code, WKT or PROJJSON; each through its own constructor (never GDAL's
    user-input guessing, which also accepts file names and URLs)."""
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


@lru_cache(maxsize=4096)
def _bounds_in(grid: "Grid", crs: CRS) -> tuple[float, float, float, float]:
    # cached: every band read of a map tile asks for the same bounds (overview choice, coverage)
    return transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)


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

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the grid's corners in its own CRS."""
        xs, ys = [], []
        for c, r in ((0, 0), (self.width, 0), (0, self.height), (self.width, self.height)):
            x, y = self.transform @ (c, r)
            xs.append(x)
            ys.append(y)
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def is_rectilinear(self) -> bool:
        return self.transform.b == 0 and self.transform.d == 0

    @property
    def gdal_crs(self) -> CRS:
        return self.crs if self.crs is not None else PIXEL_CRS

    def bounds_in(self, crs: CRS | None) -> tuple[float, float, float, float]:
        """Bounds of this grid expressed in another CRS (densified edges)."""
        if crs is None or self.crs is None or crs == self.crs:
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
