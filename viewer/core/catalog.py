"""The local catalog: asset ids -> band files and properties (JSON, paths relative to it)."""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
_REMOTE = ("https://", "http://", "s3://", "gs://")


def default_catalog_path() -> Path:
    """``$VIEWER_CATALOG`` if set, else the bundled ``assets/catalog.json``."""
    env = os.environ.get("VIEWER_CATALOG")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "assets" / "catalog.json"


def check_asset_id(asset_id: Any) -> str:
    """Refuse anything that is not an Earth Engine-style asset id (paths, /vsi strings, URLs)."""
    allowed = "an asset id such as 'LANDSAT/LC08/SAMPLE' (use Image.open(path) for files)"
    if not isinstance(asset_id, str) or not asset_id:
        raise InvalidArgument(f"asset id {asset_id!r} must be a non-empty string; allowed: {allowed}",
                              value=asset_id, allowed=allowed)
    looks_like_path = (
        asset_id.startswith(("/", ".", "~", "\\")) or asset_id.lower().startswith(_REMOTE)
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


def _resolve_path(raw: str, base: Path) -> str:
    if raw.lower().startswith(("https://", "http://")):
        return "/vsicurl/" + raw
    if raw.lower().startswith("s3://"):
        return "/vsis3/" + raw[5:]
    if raw.lower().startswith("gs://"):
        return "/vsigs/" + raw[5:]
    p = Path(raw)
    return str(p if p.is_absolute() else (base / p).resolve())


class Catalog:
    """Images and collections read from a catalog file."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).resolve()
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise ReadError(f"catalog file {str(path)!r} does not exist", value=str(path)) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ReadError(f"catalog file {str(path)!r} cannot be read as JSON: {exc}",
                            value=str(path)) from None
        base = self.path.parent
        self.images: dict[str, ImageEntry] = {}
        for image_id, spec in doc.get("images", {}).items():
            bands = []
            for b in spec.get("bands", []):
                kind = b.get("kind", "continuous")
                if kind not in BAND_KINDS:
                    raise InvalidArgument(f"catalog band {image_id}/{b.get('id')} has kind {kind!r}; "
                                          f"allowed: {BAND_KINDS}", value=kind, allowed=BAND_KINDS)
                known = {"id", "path", "band", "kind", "classes", "description", "units"}
                bands.append(BandSource(
                    id=b["id"], path=_resolve_path(b["path"], base), band=int(b.get("band", 1)),
                    kind=kind, classes=tuple(tuple(sorted(c.items())) for c in b.get("classes", [])),
                    description=b.get("description"), units=b.get("units"),
                    extra={k: v for k, v in b.items() if k not in known},
                ))
            props = dict(spec.get("properties", {}))
            self.images[image_id] = ImageEntry(image_id, tuple(bands), props)
        self.collections: dict[str, dict] = dict(doc.get("collections", {}))

    def image(self, asset_id: str) -> ImageEntry:
        check_asset_id(asset_id)
        try:
            return self.images[asset_id]
        except KeyError:
            raise UnknownAsset(
                f"unknown asset id {asset_id!r}; the catalog {str(self.path)!r} has: "
                f"{sorted(self.images)}", value=asset_id, allowed=sorted(self.images),
            ) from None

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
