"""What the core may open, and GDAL/PROJ set up for serving.

:func:`configure_gdal` applies the serving configuration; it is idempotent and called before
the first open (:func:`viewer.core.read.open_raster`) and the first CRS resolved from text
(:func:`viewer.core.grid.parse_crs`), and by ``viewer serve`` and the tile routes at start
(importing :mod:`viewer.core` changes nothing):

* GDAL never lists a directory on open and never fetches sidecar files
  (``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR``); HTTP reads have a timeout and one retry;
  ``/vsicurl/`` only fetches raster extensions; PROJ never uses the network; GDAL's block
  cache holds at most 128 MB (``GDAL_CACHEMAX``; GDAL's default is 5 % of the RAM).
* A raster opens with an explicit list of drivers: GeoTIFF/COG, PNG, JPEG, JPEG 2000 and
  WebP. VRT (which can read any other file) only for paths a catalog entry opts in.
* A source is a regular local file (no FIFO, device or directory) or a URL under one of
  the prefixes the catalog lists. Every other string is refused before GDAL sees it.
* A remote source's identity is its HTTP ETag, asked with one HEAD at most once a minute
  (:func:`remote_identity`; a local file's is one stat, :func:`viewer.core.read.source_identity`).

Settings already in the environment win: they come from the operator, who is trusted.
"""
from __future__ import annotations

import ctypes
import glob
import logging
import os
import stat
import threading
import time
import urllib.request
from functools import lru_cache

import rasterio

from .config import settings
from .errors import InvalidArgument, ReadError

__all__ = ["GDAL_CONFIG", "RASTER_DRIVERS", "REMOTE_PREFIXES", "configure_gdal", "gdal_path", "remote_identity",
           "raster_drivers", "reset_gdal_errors", "is_remote", "remote_url"]

log = logging.getLogger("viewer.core")

GDAL_CONFIG: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.png,.jpg,.jpeg,.jp2,.webp",
    "GDAL_HTTP_TIMEOUT": "10",
    "GDAL_HTTP_CONNECTTIMEOUT": "5",
    "GDAL_HTTP_MAX_RETRY": "1",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_UNSAFESSL": "NO",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    "PROJ_NETWORK": "OFF",
    # GDAL's block cache, megabytes per process (GDAL's own default is 5 % of the RAM: 1.2 GB on a
    # 24 GB host, per server process); the tile and index-map caches hold 128 MB each too
    "GDAL_CACHEMAX": "128",
}

RASTER_DRIVERS = ("GTiff", "PNG", "JPEG", "JP2OpenJPEG", "WEBP")
_REMOTE_SCHEMES = {"https://": "/vsicurl/", "http://": "/vsicurl/", "s3://": "/vsis3/", "gs://": "/vsigs/"}
#: Lower-case prefixes of remote sources (URLs and GDAL's virtual file systems).
REMOTE_PREFIXES = tuple(_REMOTE_SCHEMES) + ("/vsi",)


_configured = False


def configure_gdal() -> None:
    """Put the serving configuration into the environment (where GDAL and PROJ read it), once per
    process; values already set win (the operator's)."""
    global _configured
    if _configured:
        return
    for key, value in GDAL_CONFIG.items():
        os.environ.setdefault(key, value)
    _configured = True


def is_remote(path: str) -> bool:
    return path.lower().startswith(REMOTE_PREFIXES)


def remote_url(raw: str) -> str:
    """``https://host/x.tif`` -> ``/vsicurl/https://host/x.tif`` (GDAL's form of a remote source)."""
    low = raw.lower()
    for scheme, vsi in _REMOTE_SCHEMES.items():
        if low.startswith(scheme):
            return vsi + (raw if vsi == "/vsicurl/" else raw[len(scheme):])
    return raw


def _allowed_remote(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path.startswith(remote_url(p)) for p in prefixes) and ".." not in path.split("/")


def raster_drivers(path: str, vrt_paths: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The GDAL drivers a path may be opened with (VRT only where the catalog opts in)."""
    return RASTER_DRIVERS + ("VRT",) if path in vrt_paths else RASTER_DRIVERS


def gdal_path(path: object, remote_prefixes: tuple[str, ...] = ()) -> str:
    """The path GDAL may open, or a typed error: a regular file, or a URL under an allowed prefix."""
    allowed = "a regular local raster file, or a URL under a prefix the catalog lists in 'remote_prefixes'"
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgument(f"source {path!r} must be a path string; allowed: {allowed}", value=path,
                              allowed=allowed)
    text = os.fspath(path)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise InvalidArgument(f"source {str(text)[:80]!r} is not a usable path; allowed: {allowed}",
                              value=str(text)[:80], allowed=allowed)
    if is_remote(text):
        vsi = remote_url(text)
        if not _allowed_remote(vsi, remote_prefixes):
            raise InvalidArgument(f"remote source {text[:120]!r} is not under a prefix the catalog allows "
                                  f"({list(remote_prefixes)}); allowed: {allowed}", value=text[:120],
                                  allowed=list(remote_prefixes))
        return vsi
    try:
        st = os.stat(text)
    except FileNotFoundError:
        raise ReadError(f"raster file {text!r} does not exist", value=text) from None
    except OSError as exc:
        raise ReadError(f"raster file {text!r} cannot be opened: {exc.strerror}", value=text) from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgument(f"source {text!r} is not a regular file (a directory, FIFO or device); "
                              f"allowed: {allowed}", value=text, allowed=allowed)
    return text


#: Seconds a remote source's identity (its HTTP ETag) is trusted before it is asked again.
REMOTE_IDENTITY_TTL = 60.0
_remote_ids: dict[str, tuple[float, str]] = {}
_remote_lock = threading.Lock()


def remote_identity(path: str) -> str:
    """ETag (else Last-Modified and size) of an ``http(s)`` source from one HEAD request, cached
    for :data:`REMOTE_IDENTITY_TTL` s; "" when the server gives none or for ``s3://``/``gs://``."""
    if not path.startswith("/vsicurl/http"):
        return ""
    now = time.monotonic()
    with _remote_lock:
        hit = _remote_ids.get(path)
    if hit is not None and now - hit[0] < REMOTE_IDENTITY_TTL:
        return hit[1]
    url = path[len("/vsicurl/"):]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),
                                    timeout=settings().http_timeout) as r:
            h = r.headers
            identity = h.get("ETag") or f"{h.get('Last-Modified', '')}-{h.get('Content-Length', '')}".strip("-")
    except OSError:  # unreachable now: keep what was known (the read itself will fail if it must)
        return hit[1] if hit is not None else ""
    with _remote_lock:
        _remote_ids[path] = (now, identity)
    return identity


@lru_cache(maxsize=1)
def _cpl_error_reset():
    here = os.path.dirname(rasterio.__file__)
    for candidate in glob.glob(os.path.join(here, "..", "rasterio.libs", "libgdal*.so*")) + ["libgdal.so"]:
        try:
            return ctypes.CDLL(candidate).CPLErrorReset
        except OSError:
            continue
    log.warning("libgdal not found through ctypes; GDAL error state is not reset per request")
    return None


def reset_gdal_errors() -> None:
    """Clear this thread's GDAL error state, so one failed read cannot fail the next request."""
    fn = _cpl_error_reset()
    if fn is not None:
        fn()
