"""The local catalog: asset ids -> band files and properties (JSON, paths relative to it)."""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .access import is_remote, remote_url
from .classes import Classes
from .config import BUNDLED_CATALOG, settings
from .errors import InvalidArgument, ReadError, UnknownAsset

__all__ = [
    "BandSource",
    "ImageEntry",
    "Catalog",
    "default_catalog_path",
    "get_catalog",
    "set_catalog",
    "check_asset_id",
]

BAND_KINDS = ("continuous", "class", "bitmask", "mask")
_ASSET_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-./]*$")


def default_catalog_path() -> Path:
    """``$VIEWER_CATALOG`` if set, else the bundled ``assets/catalog.json``."""
    return settings().catalog or BUNDLED_CATALOG


def check_asset_id(asset_id: Any) -> str:
    """Refuse anything that is not an Earth Engine-style asset id (paths, /vsi strings, URLs)."""
    allowed = "an asset id such as 'LANDSAT/LC08/SAMPLE' (use Image.open(path) for files)"
    if not isinstance(asset_id, str) or not asset_id:
        raise InvalidArgument(f"asset id {asset_id!r} must be a non-empty string; allowed: {allowed}",
                              value=asset_id, allowed=allowed)
    looks_like_path = (
        asset_id.startswith(("/", ".", "~", "\\")) or is_remote(asset_id)
        or "/vsi" in asset_id.lower() or ".." in asset_id.split("/")
        or re.search(r"\.(tif|tiff|jp2|vrt|png|jpg|img|nc)$", asset_id, re.I) is not None
        or ":" in asset_id
    )
    if looks_like_path or not _ASSET_ID.match(asset_id):
        raise InvalidArgument(f"{asset_id!r} is a path or URL, not an asset id; allowed: {allowed}",
                              value=asset_id, allowed=allowed)
    return asset_id


@dataclass(frozen=True)
class BandSource:
    """One band of a catalog image: where its pixels live and what they mean."""

    id: str
    path: str
    band: int = 1
    kind: str = "continuous"
    classes: tuple = ()
    description: str | None = None
    units: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ImageEntry:
    id: str
    bands: tuple[BandSource, ...]
    properties: dict = field(default_factory=dict, compare=False, hash=False)


def _bad(where: str, what: str, value: Any, allowed: Any) -> InvalidArgument:
    return InvalidArgument(f"catalog {where}: {what}; allowed: {allowed}", value=value, allowed=allowed)


def _expect(value: Any, kind: type | tuple, where: str, allowed: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _bad(where, f"{value!r:.80} is a {type(value).__name__}", value, allowed)
    return value


def _classes(raw: Any, where: str) -> tuple:
    allowed = "a list of {'id': int, 'name': str, 'color': hex} objects"
    out = []
    for c in _expect(raw, list, where, allowed):
        _expect(c, dict, where, allowed)
        if "id" not in c or isinstance(c["id"], bool) or not isinstance(c["id"], int):
            raise _bad(where, f"class {c!r:.80} has no integer id", c, allowed)
        out.append(tuple(sorted((str(k), v) for k, v in c.items())))
    try:  # the class table the legend and colouring build from these entries
        Classes([dict(c) for c in out])
    except InvalidArgument as exc:
        raise _bad(where, exc.message, exc.value, allowed) from None
    return tuple(out)


def _text(raw: Any, where: str) -> str | None:
    return None if raw is None else _expect(raw, str, where, "a string")


class Catalog:
    """Images and collections read from a catalog file (trusted: written by the operator).

    Band paths are relative to the catalog or absolute, and must resolve inside one of
    the catalog's ``folders`` (default: the catalog's own folder), or be URLs under one of
    its ``remote_prefixes``. A ``.vrt`` band needs ``"allow_vrt": true`` on its entry.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).resolve()
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise ReadError(f"catalog file {str(path)!r} does not exist", value=str(path)) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ReadError(f"catalog file {str(path)!r} cannot be read as JSON: {exc}",
                            value=str(path)) from None
        base = self.path.parent
        _expect(doc, dict, "file", "a JSON object with 'images' (and 'collections')")
        folders = _expect(doc.get("folders", ["."]), list, "folders", "a list of folders")
        self.folders = tuple(os.path.realpath(base / _expect(f, str, "folders", "a folder path")) for f in folders)
        prefixes = _expect(doc.get("remote_prefixes", []), list, "remote_prefixes", "a list of URL prefixes")
        self.remote_prefixes = tuple(self._prefix(p) for p in prefixes)
        self.vrt_paths: frozenset[str] = frozenset()
        self.images: dict[str, ImageEntry] = {}
        images = _expect(doc.get("images", {}), dict, "images", "an object of asset id -> image")
        for image_id, spec in images.items():
            self.images[image_id] = self._entry(image_id, spec, base)
        collections = _expect(doc.get("collections", {}), dict, "collections", "an object of id -> collection")
        for cid, spec in collections.items():
            _expect(spec, dict, f"collection {cid!r}", "an object with 'images'")
            for i in _expect(spec.get("images", []), list, f"collection {cid!r} images", "a list of asset ids"):
                _expect(i, str, f"collection {cid!r} images", "asset ids")
        self.collections: dict[str, dict] = dict(collections)

    @staticmethod
    def _prefix(raw: Any) -> str:
        allowed = "an https://, http://, s3:// or gs:// prefix ending in '/'"
        if not isinstance(raw, str) or not is_remote(raw) or raw.lower().startswith("/vsi") or not raw.endswith("/"):
            raise _bad("remote_prefixes", f"{raw!r:.80} is not a URL prefix", raw, allowed)
        return raw

    def _entry(self, image_id: str, spec: Any, base: Path) -> ImageEntry:
        where = f"image {image_id!r}"
        check_asset_id(image_id)
        _expect(spec, dict, where, "an object with 'bands'")
        allow_vrt = spec.get("allow_vrt", False) is True
        bands = []
        for b in _expect(spec.get("bands", []), list, f"{where} bands", "a list of bands"):
            _expect(b, dict, f"{where} band", "an object with 'id' and 'path'")
            band_id, raw_path = b.get("id"), b.get("path")
            _expect(band_id, str, f"{where} band id", "a band name")
            wb = f"band {image_id}/{band_id}"
            kind = b.get("kind", "continuous")
            if kind not in BAND_KINDS:
                raise _bad(wb, f"kind {kind!r}", kind, BAND_KINDS)
            bidx = b.get("band", 1)
            if isinstance(bidx, bool) or not isinstance(bidx, int) or bidx < 1:
                raise _bad(wb, f"band index {bidx!r}", bidx, "an integer >= 1")
            path = self._source(_expect(raw_path, str, f"{wb} path", "a file path or URL"), base, wb, allow_vrt)
            known = {"id", "path", "band", "kind", "classes", "description", "units"}
            bands.append(BandSource(
                id=band_id, path=path, band=bidx, kind=kind, classes=_classes(b.get("classes", []), f"{wb} classes"),
                description=_text(b.get("description"), f"{wb} description"), units=_text(b.get("units"), f"{wb} units"),
                extra={k: v for k, v in b.items() if k not in known},
            ))
        props = dict(_expect(spec.get("properties", {}), dict, f"{where} properties", "an object"))
        return ImageEntry(image_id, tuple(bands), props)

    def _source(self, raw: str, base: Path, where: str, allow_vrt: bool) -> str:
        if not raw or "\x00" in raw:
            raise _bad(where, f"path {raw!r:.80} is empty or has a NUL byte", raw, "a file path or URL")
        if is_remote(raw):
            if raw.lower().startswith("/vsi"):
                raise _bad(where, f"path {raw!r:.80} is a GDAL virtual path", raw, "a file path or URL")
            if not any(raw.startswith(p) for p in self.remote_prefixes) or ".." in raw.split("/"):
                raise _bad(where, f"URL {raw!r:.120} is not under the catalog's remote_prefixes", raw,
                           list(self.remote_prefixes))
            path = remote_url(raw)
        else:
            path = os.path.realpath(base / raw)
            if not any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in self.folders):
                raise _bad(where, f"path {raw!r:.120} is outside the catalog's folders", raw, list(self.folders))
        if path.lower().endswith(".vrt"):
            if not allow_vrt:
                raise _bad(where, f"{raw!r:.120} is a VRT (it can read other files); set \"allow_vrt\": true on "
                                  "the image entry to allow it", raw, "GeoTIFF/COG, PNG, JPEG, JPEG 2000, WebP")
            self.vrt_paths = self.vrt_paths | {path}
        return path

    def image(self, asset_id: str) -> ImageEntry:
        check_asset_id(asset_id)
        try:
            return self.images[asset_id]
        except KeyError:
            raise UnknownAsset(
                f"unknown asset id {asset_id!r}; the catalog has: "
                f"{sorted(self.images)}", value=asset_id, allowed=sorted(self.images),
            ) from None

    def local_files(self) -> list[str]:
        """The catalog file and every local band file it names (not remote URLs), each once."""
        bands = (b.path for entry in self.images.values() for b in entry.bands if not is_remote(b.path))
        return list(dict.fromkeys([str(self.path), *bands]))

    def collection_images(self, collection_id: str) -> list[str]:
        check_asset_id(collection_id)
        if collection_id in self.collections:
            return list(self.collections[collection_id].get("images", []))
        prefix = collection_id.rstrip("/") + "/"
        ids = [i for i in self.images if i.startswith(prefix)]
        if not ids:
            raise UnknownAsset(
                f"unknown collection id {collection_id!r}; the catalog has: {sorted(self.collections)}",
                value=collection_id, allowed=sorted(self.collections),
            )
        return ids


_lock = threading.Lock()
_current: Catalog | None = None


def get_catalog() -> Catalog:
    """The process-wide catalog (loaded on first use from :func:`default_catalog_path`)."""
    global _current
    with _lock:
        if _current is None:
            _current = Catalog(default_catalog_path())
        return _current


def set_catalog(path: str | os.PathLike | None) -> Catalog | None:
    """Point the process at another catalog file (``None`` resets to the default)."""
    global _current
    with _lock:
        _current = Catalog(path) if path is not None else None
        return _current
