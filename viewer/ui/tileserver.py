"""A background tile server for notebooks and scripts (no Panel server to host the routes).

``ensure_tile_server()`` starts, once per process, a Tornado server with the same tile
routes as ``viewer serve``, in a daemon thread with its own event loop, and returns the URL
the browser should use for it. Three options, as arguments or environment variables:

* ``VIEWER_TILE_HOST``: the address it listens on (``127.0.0.1``; ``0.0.0.0`` for a remote kernel);
* ``VIEWER_TILE_PORT``: its port (default: any free port), e.g. a port that
  jupyter-server-proxy forwards;
* ``VIEWER_TILE_URL``: the public URL of its routes, as the browser reaches them (e.g.
  ``https://hub.example.org/user/me/proxy/8765/``); default ``http://<host>:<port>/``.

``VIEWER_TILE_URL`` without ``VIEWER_TILE_PORT`` means tiles come from another server (e.g. a
``viewer serve`` elsewhere): then a notebook starts nothing (:func:`wants_local_server`).
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..core.config import settings
from ..core.errors import InvalidArgument
from ..server.routes import make_app

__all__ = ["TileServerOptions", "tile_server_options", "ensure_tile_server",
           "wants_local_server"]

_lock = threading.Lock()
_url: str | None = None
_bound: tuple[str, int] | None = None


@dataclass(frozen=True)
class TileServerOptions:
    """Where the background tile server listens and the URL the browser uses for it."""

    host: str
    port: int  # 0: any free port
    public_url: str | None  # None: http://<host>:<port>/

    def url_for(self, port: int) -> str:
        if self.public_url is not None:
            return self.public_url if self.public_url.endswith("/") else self.public_url + "/"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"


def _port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgument(f"tile server port {port!r} is not allowed; allowed: an integer 0..65535 "
                              f"(0: any free port)", value=port, allowed="0..65535")
    return port


def tile_server_options(host: str | None = None, port: int | None = None,
                        public_url: str | None = None) -> TileServerOptions:
    """The options: arguments first, then ``VIEWER_TILE_HOST``/``VIEWER_TILE_PORT``/``VIEWER_TILE_URL``
    (read through :func:`viewer.core.config.settings`)."""
    s = settings()
    return TileServerOptions(host=host or s.tile_host, port=_port(port if port is not None else s.tile_port),
                             public_url=public_url if public_url is not None else s.tile_url)


def wants_local_server() -> bool:
    """Whether a notebook should run the background server: not when ``VIEWER_TILE_URL`` names
    another server (set without ``VIEWER_TILE_PORT``)."""
    opts = tile_server_options()
    return opts.public_url is None or opts.port != 0


def ensure_tile_server(host: str | None = None, port: int | None = None, public_url: str | None = None) -> str:
    """Start this process's background tile server (once) and return its URL for the browser.

    A second call returns the same URL; asking then for another host or port raises
    :class:`InvalidArgument` (one server per process)."""
    global _url, _bound
    opts = tile_server_options(host, port, public_url)
    with _lock:
        if _url is not None:
            if (host is not None or port) and _bound is not None and \
                    (opts.host, opts.port or _bound[1]) != _bound:
                raise InvalidArgument(f"the tile server already listens on {_bound[0]}:{_bound[1]}; "
                                      f"it cannot move to {opts.host}:{opts.port}", value=(opts.host, opts.port),
                                      allowed=_bound)
            return _url
        try:
            sockets = bind_sockets(opts.port, opts.host)
        except OSError as exc:
            raise InvalidArgument(f"the tile server cannot listen on {opts.host}:{opts.port}: {exc.strerror or exc}",
                                  value=(opts.host, opts.port)) from exc
        bound = sockets[0].getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            server = HTTPServer(make_app())
            server.add_sockets(sockets)
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, name="viewer-tiles", daemon=True).start()
        ready.wait(10)
        _bound = (opts.host, bound)
        _url = opts.url_for(bound)
        return _url
