"""Panel's ``/components/<module>/<class>/<attribute>/<path>`` route, without importing what a URL names.

Panel's own handler imports the module a URL names: ``/components/this/a/b/c`` printed the Zen of
Python into the server's log, ``/components/antigravity/a/b/c`` called ``webbrowser.open``, and
``/components/../../etc/passwd`` answered 500 with a traceback. This one serves the same component
resources from modules the server has imported already, and answers 404 for anything else.
"""
from __future__ import annotations

import sys

from panel.io.resources import COMPONENT_PATH
from panel.io.server import ComponentResourceHandler
from tornado.web import HTTPError

__all__ = ["component_routes", "KnownModuleResources"]


class KnownModuleResources(ComponentResourceHandler):
    """Component resources of modules already imported; 404 for other or malformed module names."""

    def parse_url_path(self, path: str) -> str:
        module = path.split("/", 1)[0]
        if module not in sys.modules:  # also '..' and other malformed names
            raise HTTPError(404, "Module not found")
        try:
            return super().parse_url_path(path)
        except HTTPError:
            raise
        except Exception:  # noqa: BLE001 - anything else a crafted path makes Panel's lookup raise
            raise HTTPError(404, "Resource not found") from None


def component_routes() -> list[tuple[str, type, dict]]:
    """The route, for ``panel.serve(extra_patterns=...)`` ahead of Panel's own (the first match wins)."""
    return [(f"/{COMPONENT_PATH}(.*)", KnownModuleResources, {})]
