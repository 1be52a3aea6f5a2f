"""Tornado handlers: map tiles, layer descriptions and pixel export.

Each endpoint does four things: parse the request, call the core (in a thread pool, so
the event loop that also serves the Panel sessions stays live), encode, and map errors
to a status code through :mod:`viewer.server.errors`. Error bodies are one plain-text
line; tracebacks go to the server log only. Handlers never open a path taken from a URL:
tiles render only layers registered through :func:`viewer.core.layers.register`.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import sys
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Callable
from urllib.parse import urlsplit

from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler

from ..core.access import reset_gdal_errors
from ..core.cache import BoundedCache, named_cache
from ..core.config import settings
from ..core.errors import InvalidArgument, LimitExceeded
from ..core.export import export
from ..core.layers import UnknownLayer, check_token, describe, resolve, resolve_cached
from ..core.tiles import check_format, check_tile, media_type, render_tile
from .activity import tile_activity
from .errors import CrossSite, NotFound, RenderTimeout, UnsupportedMediaType, reason, status_for
from .render_procs import RenderProcesses

__all__ = ["TileHandler", "LayerHandler", "PixelsHandler", "tile_executor", "export_executor", "lookup_executor",
           "CACHE_CONTROL",
           "RENDER_VERSION", "MAX_BODY_BYTES", "parse_tile_path", "tile_cache"]

log = logging.getLogger("viewer.server")

CACHE_CONTROL = "public, max-age=86400, immutable"
#: Part of every ETag: bump when the rendering of an unchanged token changes.
RENDER_VERSION = "2"
MAX_BODY_BYTES = 1 << 20
_DIGITS = re.compile(r"[0-9]{1,10}")
_executors: dict[str, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def _pool(name: str, threads: int) -> ThreadPoolExecutor:
    with _executors_lock:
        if name not in _executors:
            _executors[name] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"viewer-{name}")
        return _executors[name]


def tile_executor() -> ThreadPoolExecutor:
    """The process-wide pool map tiles render in (``$VIEWER_TILE_THREADS``, default one per core: more threads
    only contend for the GIL)."""
    return _pool("tile", settings().tile_threads)


def export_executor() -> ThreadPoolExecutor:
    """A separate, small pool for ``/pixels`` exports (``$VIEWER_EXPORT_THREADS``, default 2), so that
    large or slow exports never take the threads the map's tiles need."""
    return _pool("export", settings().export_threads)


def lookup_executor() -> ThreadPoolExecutor:
    """Two threads for spec-store lookups of tokens not in memory and layer descriptions: an
    unknown token's 404 and a ``/layers`` answer never wait behind the tiles being rendered."""
    return _pool("lookup", 2)


def _job(fn: Callable, args: tuple) -> Any:
    reset_gdal_errors()  # a failed read on this thread must not fail the next request
    return fn(*args)


class _Base(RequestHandler):
    """Thin edge: handlers raise; :meth:`write_error` maps every error through one table to
    a one-line plain-text response (tracebacks of 5xx go to the server log only)."""

    timeout_setting = "tile_timeout"

    def initialize(self, executor: Executor | None = None, renderer: RenderProcesses | None = None) -> None:
        self.executor = executor or tile_executor()
        self.renderer = renderer

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")

    async def prepare(self) -> None:
        """Behind the same login as the app: when the Panel/Bokeh server has an auth
        provider (``--basic-auth``, OAuth), requests without a logged-in user get a 401."""
        self.auth_required = False
        provider = getattr(self.application, "auth_provider", None)
        if provider is None:
            return
        if getattr(provider, "get_user_async", None) is not None:
            user = await provider.get_user_async(self)
        elif getattr(provider, "get_user", None) is not None:
            user = provider.get_user(self)
        else:
            return  # no authentication configured
        self.auth_required = True
        if not user:
            self._plain(401, "401 login required: log in to the viewer app first")

    async def run(self, fn: Callable, *args: Any, executor: Executor | None = None) -> Any:
        """``fn(*args)`` on a render thread, with a deadline (``$VIEWER_TILE_TIMEOUT`` or
        ``$VIEWER_EXPORT_TIMEOUT`` seconds: :attr:`timeout_setting`)."""
        return await self.deadline(IOLoop.current().run_in_executor(executor or self.executor, _job, fn, args))

    async def deadline(self, awaitable: Any) -> Any:
        """``awaitable``'s result, or :class:`RenderTimeout` after the endpoint's deadline (cancelling it)."""
        seconds = getattr(settings(), self.timeout_setting)
        try:
            return await asyncio.wait_for(awaitable, seconds)
        except asyncio.TimeoutError:
            raise RenderTimeout(f"rendering took longer than {seconds:g} s (a slow or stalled source); "
                                "try again later", value=seconds, allowed=f"<= {seconds:g} s") from None

    def cache_headers(self) -> None:
        """Immutable caching; private (never in a shared cache) when the app has a login."""
        if self.auth_required:
            self.set_header("Cache-Control", CACHE_CONTROL.replace("public", "private"))
        else:
            self.set_header("Cache-Control", CACHE_CONTROL)
            self.set_header("Access-Control-Allow-Origin", "*")

    def _plain(self, status: int, text: str) -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(text + "\n")

    def log_exception(self, typ, value, tb) -> None:  # noqa: ANN001 - tornado's signature
        if value is None or isinstance(value, HTTPError) or status_for(value) >= 500:
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if exc is None or isinstance(exc, HTTPError):  # tornado's own errors (405, ...)
            self._plain(status_code, f"{status_code} {self._reason}")
        else:
            self._plain(status_for(exc), reason(exc))


def _int(name: str, text: str) -> int:
    if not _DIGITS.fullmatch(text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidArgument(f"tile {name} {shown!r} is not a non-negative integer", value=shown,
                              allowed="decimal digits")
    return int(text)


def parse_tile_path(path: str) -> tuple[str, int, int, int, str]:
    """``<token>/<z>/<x>/<y>.<ext>`` -> (token, z, x, y, ext), validated (no file access)."""
    parts = path.split("/")
    if len(parts) != 4:
        raise NotFound(f"tile path {('/tiles/' + path)[:80]!r} is not /tiles/<token>/<z>/<x>/<y>.<ext>",
                       value=path[:80], allowed="/tiles/<token>/<z>/<x>/<y>.<png|jpg|webp>")
    token, z_text, x_text, last = parts
    y_text, dot, ext = last.rpartition(".")
    if not dot:
        raise InvalidArgument(f"tile {last[:40]!r} has no extension; allowed: .png, .jpg, .webp", value=last[:40],
                              allowed=["png", "jpg", "webp"])
    check_token(token)
    z, x, y = check_tile(_int("z", z_text), _int("x", x_text), _int("y", y_text))
    return token, z, x, y, check_format(ext)


def _etag(token: str, z: int, x: int, y: int, ext: str) -> str:
    digest = hashlib.sha256(f"{RENDER_VERSION}/{token}/{z}/{x}/{y}.{ext}".encode()).hexdigest()[:40]
    return f'"{digest}"'


def _render(spec: Any, z: int, x: int, y: int, ext: str) -> bytes:
    return render_tile(spec, z, x, y, ext)


def tile_cache() -> BoundedCache:
    """Encoded tiles by (token, z, x, y, format): warm tiles cost a lookup
    (``$VIEWER_TILE_CACHE_MB``, default 128; 0 turns it off)."""
    megabytes = settings().tile_cache_mb
    return named_cache("tiles", 1_000_000 if megabytes > 0 else 0, int(megabytes * 2 ** 20))


class TileHandler(_Base):
    """``GET /tiles/<token>/<z>/<x>/<y>.<png|jpg|jpeg|webp>``: one rendered map tile.

    Strong ETag from token, z/x/y and format; ``304`` on a matching ``If-None-Match`` for a
    known token (answered without rendering; an unknown token is a 404 even with ``*``).
    Outside a layer's footprint: 200 with a transparent PNG.
    """

    async def get(self, path: str | None = None) -> None:
        tile_activity.begin()  # background work of this process (view statistics) waits for the tiles
        try:
            await self._tile(path)
        finally:
            tile_activity.end()

    async def _tile(self, path: str | None) -> None:
        token, z, x, y, ext = parse_tile_path(path or "")
        # conditionals skip the render pool; a token not in memory is looked up apart from the renders
        spec = resolve_cached(token) or await self.run(resolve, token, executor=lookup_executor())
        self.set_header("ETag", _etag(token, z, x, y, ext))
        self.cache_headers()
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        cache = tile_cache()
        data = cache.get((token, z, x, y, ext))
        self.set_header("X-Viewer-Cache", "miss" if data is None else "hit")
        if data is None:
            data = await self._render(spec, token, z, x, y, ext)
            cache.put((token, z, x, y, ext), data)
        self.set_header("Content-Type", media_type(data))
        self.finish(data)

    async def _render(self, spec: Any, token: str, z: int, x: int, y: int, ext: str) -> bytes:
        """In a render process when the server has them (while they start, and for a layer only this
        process holds, its state folder being unusable: on a render thread)."""
        renderer = self.renderer
        if renderer is not None and renderer.available:
            if renderer.ready:
                try:
                    return await self.deadline(renderer.render(token, z, x, y, ext))
                except UnknownLayer:
                    pass
            else:
                renderer.start()  # stopped when idle: started again (no-op while starting)
        return await self.run(_render, spec, z, x, y, ext)

    async def head(self, path: str | None = None) -> None:
        await self.get(path)

    def compute_etag(self) -> str | None:  # the ETag set above is the only one
        return None


class LayerHandler(_Base):
    """``GET /layers/<token>``: the layer's JSON description (bands, style, class table, bounds)."""

    async def get(self, token: str | None = None) -> None:
        if token is None or "/" in token:
            shown = ("/layers/" + (token or ""))[:80]
            raise NotFound(f"layer path {shown!r} is not /layers/<token>", value=shown, allowed="/layers/<token>")
        check_token(token)
        doc = await self.run(lambda: describe(resolve(token)), executor=lookup_executor())
        self.set_header("Content-Type", "application/json")
        self.cache_headers()
        self.finish(json.dumps(doc))


def _export(body: dict) -> tuple[bytes, str, str]:
    """Run a getPixels request (``assetId``) or a layer export (``layer`` token) -> bytes, media type, extension."""
    return export(body)


def _netloc(url: str) -> str | None:
    """host[:port] of an Origin header (None when it does not parse, e.g. 'http://[::1')."""
    try:
        return urlsplit(url).netloc
    except ValueError:
        return None


class PixelsHandler(_Base):
    """``POST /pixels``: a JSON getPixels request (``assetId``, ``grid``, ``region``, ``bandIds``,
    ``visualizationOptions``, ``fileFormat``) or a layer export (``{"layer": token, "grid": ...,
    "fileFormat": "PNG" | "JPEG" | "GEO_TIFF" | "NPY"}``: PNG/JPEG as the map shows the layer,
    GeoTIFF/NPY its raw bands) -> the encoded bytes."""

    timeout_setting = "export_timeout"

    def check_origin(self) -> None:
        """Refuse cross-site posts: JSON only (so a browser must preflight), same origin only."""
        ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise UnsupportedMediaType(f"Content-Type {ctype[:60]!r} is not allowed; allowed: application/json",
                                       value=ctype[:60], allowed="application/json")
        origin = self.request.headers.get("Origin")
        site = self.request.headers.get("Sec-Fetch-Site", "same-origin")
        if site not in ("same-origin", "none"):
            raise CrossSite(f"cross-site request (Sec-Fetch-Site {site[:40]!r}) refused; allowed: same-origin "
                            "requests from the viewer's own pages", value=site[:40], allowed="same-origin")
        if origin is not None and _netloc(origin) != self.request.host:
            raise CrossSite(f"cross-site request from {str(origin)[:80]!r} refused; allowed: the viewer's own pages",
                            value=str(origin)[:80], allowed=self.request.host)

    async def post(self, rest: str | None = None) -> None:
        if rest:
            shown = ("/pixels" + rest)[:80]
            raise NotFound(f"path {shown!r} is not /pixels", value=shown, allowed="/pixels")
        self.check_origin()
        if len(self.request.body) > MAX_BODY_BYTES:
            raise LimitExceeded(f"request body of {len(self.request.body)} bytes is over the limit of "
                                f"{MAX_BODY_BYTES} bytes", value=len(self.request.body), allowed=MAX_BODY_BYTES)
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            if isinstance(exc, RecursionError):
                why = "it is nested too deeply"
            elif "integer string conversion" in str(exc):  # Python's limit, not its sys.set_int_max_str_digits advice
                why = f"a number has more than {sys.get_int_max_str_digits()} digits"
            else:
                why = str(exc)[:120]
            raise InvalidArgument(f"request body is not valid JSON: {why}", value="body") from None
        if not isinstance(body, dict):
            raise InvalidArgument("request body must be a JSON object (a getPixels request)",
                                  value=type(body).__name__, allowed="object")
        data, mime, ext = await self.run(_export, body, executor=export_executor())
        if mime == "image/png" and not data.startswith(b"\x89PNG"):
            mime = media_type(data)
        self.set_header("Content-Type", mime)
        self.set_header("Content-Disposition", f'attachment; filename="viewer-export.{ext}"')
        self.set_header("Cache-Control", "no-store")
        self.finish(data)
