"""Every environment variable the viewer reads, with its default and its check, in one place.

:func:`settings` reads them when asked, never at import, and checks all of them at once: a
value outside what is allowed raises :class:`~viewer.core.errors.InvalidArgument` naming the
variable, the value and what is allowed (``viewer serve`` calls it at start, so a bad value
stops the start). The result is cached per environment: the variables are looked up on every
call (a few microseconds) and parsed again only when one of them changed, so a test's
``monkeypatch.setenv`` takes effect at the next call; :func:`clear` drops the cache.

An empty value counts as unset, except ``VIEWER_TILE_URL``, where ``""`` means tile URLs
relative to the page. :data:`VARIABLES` is the table the README's "Configuration" section shows.

GDAL and PROJ read their own variables (``GDAL_*``, ``CPL_*``, ``PROJ_NETWORK``);
:func:`viewer.core.access.configure_gdal` puts the serving defaults among them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .errors import InvalidArgument

__all__ = ["Settings", "Variable", "VARIABLES", "settings", "clear", "BUNDLED_CATALOG", "SERVER_ONLY_ENV",
           "keep_to_this_process"]

#: The sample catalog shipped with the viewer (the default of ``VIEWER_CATALOG``).
BUNDLED_CATALOG = Path(__file__).resolve().parents[2] / "assets" / "catalog.json"


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, the :class:`Settings` field it sets, default and meaning."""

    name: str
    field: str
    default: str
    allowed: str
    doc: str


VARIABLES: tuple[Variable, ...] = (
    Variable("VIEWER_CATALOG", "catalog", "the bundled assets/catalog.json", "a path to a catalog JSON file",
             "catalog of asset ids (``viewer serve --catalog`` sets it for worker processes)"),
    Variable("VIEWER_STATE_DIR", "state_dir", "$XDG_CACHE_HOME/viewer/layers (~/.cache/viewer/layers)",
             "a directory path", "where layer specs and in-memory arrays are stored; shared by server processes"),
    Variable("XDG_CACHE_HOME", "cache_home", "~/.cache", "a directory path",
             "parent of the default state directory"),
    Variable("VIEWER_STATE_MAX_FILES", "state_max_files", "20000", "a positive number",
             "spec files kept in the state directory (oldest pruned first)"),
    Variable("VIEWER_STATE_MAX_MB", "state_max_mb", "1024", "a positive number",
             "megabytes kept in the state directory"),
    Variable("VIEWER_LAYER_CACHE", "layer_cache", "2048", "a positive number",
             "layer specs kept in memory per process"),
    Variable("VIEWER_TILE_TIMEOUT", "tile_timeout", "20", "a positive number of seconds",
             "deadline of one tile or layer description (503 after it)"),
    Variable("VIEWER_EXPORT_TIMEOUT", "export_timeout", "120", "a positive number of seconds",
             "deadline of one ``/pixels`` export"),
    Variable("VIEWER_TILE_THREADS", "tile_threads", "min(8, CPUs)", "a positive integer",
             "threads rendering tiles"),
    Variable("VIEWER_RENDER_PROCESSES", "render_processes", "CPUs (0 with ``--num-procs`` other than 1)",
             "an integer 0..256", "worker processes ``viewer serve`` renders map tiles in; 0: render threads of the "
             "server process"),
    Variable("VIEWER_EXPORT_THREADS", "export_threads", "2", "a positive integer",
             "threads running ``/pixels`` exports (apart from the tiles')"),
    Variable("VIEWER_TILE_CACHE_MB", "tile_cache_mb", "128", "a number >= 0 (0 turns the cache off)",
             "megabytes of encoded tiles kept in memory per process"),
    Variable("VIEWER_TILE_URL", "tile_url", "unset", "a URL prefix, or empty for page-relative URLs",
             "prefix of tile URLs in the app (e.g. behind jupyter-server-proxy); unset: the server's "
             "own routes, or a background tile server in notebooks"),
    Variable("VIEWER_TILE_HOST", "tile_host", "127.0.0.1", "a host name or address",
             "address of the background tile server of notebooks and scripts"),
    Variable("VIEWER_TILE_PORT", "tile_port", "0 (any free port)", "an integer 0..65535",
             "port of the background tile server (e.g. one jupyter-server-proxy forwards)"),
    Variable("VIEWER_DASK_SCHEDULER", "dask_scheduler", "unset (a local Dask cluster)",
             "a Dask scheduler address such as tcp://host:8786",
             "scheduler that runs big file exports (``viewer serve --dask-scheduler`` sets it)"),
    Variable("GDAL_HTTP_TIMEOUT", "http_timeout", "10", "a positive number of seconds",
             "timeout of remote reads (GDAL's own variable; also the HEAD request for a remote file's identity)"),
    Variable("PANEL_COOKIE_SECRET", "cookie_secret", "unset", "any text",
             "secret signing login cookies when ``--cookie-secret`` is not given"),
)


@dataclass(frozen=True)
class Settings:
    """The checked values of :data:`VARIABLES` (see there for meanings and defaults; ``catalog`` is
    ``None`` when unset: :data:`BUNDLED_CATALOG` unless the process chose another)."""

    catalog: Path | None
    state_dir: Path
    cache_home: Path
    state_max_files: int
    state_max_mb: float
    layer_cache: int
    tile_timeout: float
    export_timeout: float
    tile_threads: int
    render_processes: int | None
    export_threads: int
    tile_cache_mb: float
    tile_url: str | None
    tile_host: str
    tile_port: int
    dask_scheduler: str | None
    http_timeout: float
    cookie_secret: str | None


_NAMES = tuple(v.name for v in VARIABLES)
_ALLOWED = {v.name: v.allowed for v in VARIABLES}


def _number(name: str, raw: str | None, default: float, ok: Callable[[float], bool]) -> float:
    if not raw or not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and ok(value)):
        allowed = _ALLOWED[name]
        raise InvalidArgument(f"{name}={raw!r} is not allowed; allowed: {allowed}", value=raw, allowed=allowed)
    return value


def _positive(name: str, raw: str | None, default: float) -> float:
    return _number(name, raw, default, lambda v: v > 0)


def _integer(name: str, raw: str | None, default: int) -> int:
    return int(_number(name, raw, default, lambda v: v >= 1 and v == int(v)))


def _text(raw: str | None) -> str | None:
    return raw if raw and raw.strip() else None


@lru_cache(maxsize=8)
def _parse(env: tuple[str | None, ...]) -> Settings:
    e = dict(zip(_NAMES, env))
    cache_home = Path(_text(e["XDG_CACHE_HOME"]) or os.path.join(os.path.expanduser("~"), ".cache"))
    return Settings(
        catalog=Path(e["VIEWER_CATALOG"]) if _text(e["VIEWER_CATALOG"]) else None,
        state_dir=Path(_text(e["VIEWER_STATE_DIR"]) or cache_home / "viewer" / "layers"),
        cache_home=cache_home,
        state_max_files=max(1, int(_positive("VIEWER_STATE_MAX_FILES", e["VIEWER_STATE_MAX_FILES"], 20000))),
        state_max_mb=_positive("VIEWER_STATE_MAX_MB", e["VIEWER_STATE_MAX_MB"], 1024),
        layer_cache=max(1, int(_positive("VIEWER_LAYER_CACHE", e["VIEWER_LAYER_CACHE"], 2048))),
        tile_timeout=_positive("VIEWER_TILE_TIMEOUT", e["VIEWER_TILE_TIMEOUT"], 20.0),
        export_timeout=_positive("VIEWER_EXPORT_TIMEOUT", e["VIEWER_EXPORT_TIMEOUT"], 120.0),
        tile_threads=_integer("VIEWER_TILE_THREADS", e["VIEWER_TILE_THREADS"], min(8, os.cpu_count() or 2)),
        render_processes=(None if not _text(e["VIEWER_RENDER_PROCESSES"]) else int(_number(
            "VIEWER_RENDER_PROCESSES", e["VIEWER_RENDER_PROCESSES"], 0, lambda v: 0 <= v <= 256 and v == int(v)))),
        export_threads=_integer("VIEWER_EXPORT_THREADS", e["VIEWER_EXPORT_THREADS"], 2),
        tile_cache_mb=_number("VIEWER_TILE_CACHE_MB", e["VIEWER_TILE_CACHE_MB"], 128.0, lambda v: v >= 0),
        tile_url=e["VIEWER_TILE_URL"],
        tile_host=_text(e["VIEWER_TILE_HOST"]) or "127.0.0.1",
        tile_port=int(_number("VIEWER_TILE_PORT", e["VIEWER_TILE_PORT"], 0, lambda v: 0 <= v <= 65535 and v == int(v))),
        dask_scheduler=_text(e["VIEWER_DASK_SCHEDULER"]),
        http_timeout=_positive("GDAL_HTTP_TIMEOUT", e["GDAL_HTTP_TIMEOUT"], 10.0),
        cookie_secret=_text(e["PANEL_COOKIE_SECRET"]),
    )


def settings() -> Settings:
    """The viewer's settings from the environment as it is now (checked; cached per environment)."""
    return _parse(tuple(os.environ.get(name) for name in _NAMES))


def clear() -> None:
    """Forget the parsed settings (the next :func:`settings` parses the environment again)."""
    _parse.cache_clear()


#: Allocator settings for the server process only (docs/DEPLOY.md, "Memory"); its render processes
#: run faster on CPython's own allocator.
SERVER_ONLY_ENV = ("PYTHONMALLOC", "MALLOC_ARENA_MAX")


def keep_to_this_process(names: tuple[str, ...] = SERVER_ONLY_ENV) -> None:
    """Take ``names`` out of the environment that processes started from now on inherit (this
    process read them when it started)."""
    for name in names:
        os.environ.pop(name, None)
