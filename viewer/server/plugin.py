"""Panel server plugin: ``panel serve app.py --plugins viewer.server.plugin``.

Panel imports each ``--plugins`` module and adds its ``ROUTES`` (Tornado URL patterns) to
the server, under the server's ``--prefix``.
"""
from .routes import tile_routes

__all__ = ["ROUTES"]

ROUTES = tile_routes()
