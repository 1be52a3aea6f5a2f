"""The viewer's HTTP edge: tile, layer and pixel endpoints for a Panel/Bokeh (Tornado) server.

``tile_routes()`` gives the URL patterns for ``panel.serve(..., extra_patterns=tile_routes())``;
``viewer.server.plugin`` exposes them as ``ROUTES`` for ``panel serve --plugins``.
"""
from .errors import STATUS, reason, status_for
from .handlers import LayerHandler, PixelsHandler, TileHandler, tile_executor
from .routes import make_app, tile_routes

__all__ = ["tile_routes", "make_app", "TileHandler", "LayerHandler", "PixelsHandler", "tile_executor", "STATUS",
           "status_for", "reason"]
