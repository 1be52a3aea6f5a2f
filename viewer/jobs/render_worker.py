"""A render worker process's loop: map tiles rendered by token, asked for and answered over a pipe.

The server's :class:`viewer.server.render_procs.RenderProcesses` spawns processes that run
:func:`worker_main`. This module sits outside :mod:`viewer.server` so that a worker imports the
core only (no Tornado, no handlers): a worker costs its imports' memory once per CPU.
"""
from __future__ import annotations

import traceback
from multiprocessing.connection import Connection

from ..core.access import configure_gdal, reset_gdal_errors
from ..core.errors import ViewerError
from ..core.layers import resolve
from ..core.tiles import render_tile

__all__ = ["render_registered", "worker_main"]


def render_registered(token: str, z: int, x: int, y: int, ext: str) -> bytes:
    """The tile ``z/x/y.ext`` of the layer registered under ``token`` (what a worker runs)."""
    reset_gdal_errors()
    return render_tile(resolve(token), z, x, y, ext)


def worker_main(conn: Connection) -> None:
    """A worker's loop: ``(token, z, x, y, ext)`` in, the encoded tile's bytes or a pickled error out;
    a pickled ``None`` first (ready), ``None`` in (stop)."""
    configure_gdal()
    conn.send(None)  # ready: imports done
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):  # the server went away
            return
        if job is None:  # stop
            return
        try:
            tile = render_registered(*job)
        except ViewerError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - a bug: its traceback goes to the server's log
            traceback.print_exc()
            error = ViewerError(f"{type(exc).__name__} in a render process")
        else:
            try:
                conn.send_bytes(tile)  # the encoded tile as it is (no pickle, no copy)
            except (EOFError, OSError):
                return
            continue
        try:
            conn.send(error)
        except (EOFError, OSError):
            return
        except Exception:  # noqa: BLE001 - an error that does not pickle
            conn.send(ViewerError(f"{type(error).__name__} in a render process"))
