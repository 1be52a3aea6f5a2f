"""A background tile server for notebooks and scripts (no Panel server to host the routes).

``ensure_tile_server()`` starts, once per process, a Tornado server with the same tile
routes as ``viewer serve`` on ``127.0.0.1`` and a free port, in a daemon thread with its
own event loop, and returns its base URL. ``$VIEWER_TILE_URL`` bypasses it (e.g. behind
jupyter-server-proxy).
"""
from __future__ import annotations

import asyncio
import os
import threading

__all__ = ["ensure_tile_server", "tile_server_url"]

_lock = threading.Lock()
_url: str | None = None


def tile_server_url() -> str | None:
    return _url


def ensure_tile_server(host: str | None = None) -> str:
    """Base URL (``http://127.0.0.1:<port>/``) of this process's background tile server."""
    global _url
    with _lock:
        if _url is not None:
            return _url
        from tornado.httpserver import HTTPServer
        from tornado.netutil import bind_sockets

        from ..server.routes import make_app

        host = host or os.environ.get("VIEWER_TILE_HOST", "127.0.0.1")
        sockets = bind_sockets(0, host)
        port = sockets[0].getsockname()[1]
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
        _url = f"http://{host}:{port}/"
        return _url
