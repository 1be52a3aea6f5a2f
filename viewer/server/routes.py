"""URL routes of the viewer's HTTP edge, for ``panel.serve(extra_patterns=...)`` or any Tornado app."""
from __future__ import annotations

import sys
from concurrent.futures import Executor

from tornado.web import Application

from ..core.access import configure_gdal
from .handlers import LayerHandler, PixelsHandler, TileHandler, tile_executor
from .render_procs import RenderProcesses

__all__ = ["tile_routes", "make_app", "SWITCH_INTERVAL_S"]

#: The interpreter's thread switch interval while serving, in seconds (Python's default is 5 ms).
#: The event loop answers warm tiles and the sessions between renders and needs the GIL back
#: after every socket call; a render thread keeps it for up to this long. Under 50 clients this
#: was 20 % of the loop's time at 5 ms.
SWITCH_INTERVAL_S = 0.001


def tile_routes(prefix: str = "", executor: Executor | None = None,
                renderer: RenderProcesses | None = None) -> list[tuple[str, type, dict]]:
    """``[(pattern, handler, kwargs)]`` for ``/tiles/...``, ``/layers/<token>`` and ``/pixels``.

    Pass them as ``extra_patterns`` to ``panel.serve`` / a Bokeh ``Server`` (which add their
    own ``--prefix``), or to ``tornado.web.Application``. ``prefix`` is for other hosts.
    Also configures the process for serving: GDAL's settings, and a thread switch interval of at
    most :data:`SWITCH_INTERVAL_S`. With ``renderer``, map tiles render in its worker processes
    (``viewer serve`` does this), else on ``executor``'s threads.
    """
    configure_gdal()  # before the first request, on the thread that starts serving
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    p = "/" + prefix.strip("/") if prefix.strip("/") else ""
    kwargs = {"executor": executor or tile_executor()}
    return [
        # the optional tails route malformed paths (/tiles, /layers/a/b, /pixels/x) to these handlers,
        # so that they too get a one-line plain-text 404
        (rf"{p}/tiles(?:/(.*))?", TileHandler, {**kwargs, "renderer": renderer}),
        (rf"{p}/layers(?:/(.*))?", LayerHandler, kwargs),
        (rf"{p}/pixels(/.*)?", PixelsHandler, kwargs),
    ]


def make_app(prefix: str = "", renderer: RenderProcesses | None = None, **settings) -> Application:
    """A bare Tornado application serving only the viewer's routes (tests, tile-only servers)."""
    return Application(tile_routes(prefix, renderer=renderer), **settings)
