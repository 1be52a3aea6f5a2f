"""The Panel map viewer: ``Map`` (geemap style), its state classes and the served app."""
from .map import Map
from .state import LayerState, MapState

__all__ = ["Map", "MapState", "LayerState", "build_app"]


def build_app(catalog=None, map_obj=None):
    """The served app (see :func:`viewer.ui.app.build_app`)."""
    from .app import build_app as _build

    return _build(catalog, map_obj)
