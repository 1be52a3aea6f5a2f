"""Drawing a region on the map: Bokeh's box and polygon draw tools, and the region in Python.

``RegionState`` holds the map's region (a lon/lat GeoJSON geometry, the last one drawn or
passed in Python) and the scale it is reduced at; :func:`region_state` gives the one of a
:class:`~viewer.ui.state.MapState`. ``RegionTool`` puts two ColumnDataSources (named
:data:`BOX_SOURCE` and :data:`POLY_SOURCE`, so a page script can find them with
``Bokeh.documents[0].get_model_by_name``), their glyphs and a ``BoxEditTool`` and
``PolyDrawTool`` on a map figure, and keeps them and the ``RegionState`` in step.

The map figure rewrites its renderer list when layers change; the tool puts its glyph
renderers back (after the figure's own update of the same state change, and on a Bokeh
``on_change`` of ``renderers``), so figure.py needs no hook.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import param
from bokeh.models import BoxEditTool, ColumnDataSource, Patches, PolyDrawTool, Rect, Scatter

from ..core.errors import InvalidArgument
from ..core.geometry import Geometry, to_geojson
from .basemaps import lonlat_to_mercator, mercator_to_lonlat
from .figure import glyph_renderer
from .notify import guarded
from .state import MapState

__all__ = ["RegionState", "RegionTool", "region_state", "set_region", "user_roi", "box_geometry", "polygon_geometry",
           "BOX_SOURCE", "POLY_SOURCE", "REGION_COLOR"]

BOX_SOURCE = "viewer-region-box"
POLY_SOURCE = "viewer-region-polygon"
REGION_COLOR = "#ffb300"


class RegionState(param.Parameterized):
    """The map's region: a lon/lat GeoJSON geometry (``None``: no region) and its scale."""

    geometry = param.Dict(default=None, allow_None=True, doc="Lon/lat GeoJSON of the last region drawn or set.")
    scale = param.Number(default=None, allow_None=True, bounds=(0, None), inclusive_bounds=(False, True),
                         doc="Metres per pixel the region is reduced at (None: chosen from the layers).")
    source = param.Selector(default="python", objects=["python", "box", "polygon"],
                            doc="Where the region came from.")


def region_state(state: MapState) -> RegionState:
    """The :class:`RegionState` of a map (made on first use), kept on the map's state: a module-level
    weak-key dict leaked every session's map (its watchers refer back to the state)."""
    region = getattr(state, "_region_state", None)
    if region is None:
        region = state._region_state = RegionState()
    return region


def set_region(state: MapState, geometry: Any) -> Geometry:
    """Make ``geometry`` (a :class:`Geometry` or GeoJSON dict, lon/lat) the map's region."""
    if state.pixel_mode:
        raise InvalidArgument("regions need a georeferenced map; this map shows pixel coordinates",
                              value="pixel_mode", allowed="a map of georeferenced layers")
    gj = to_geojson(geometry)
    if gj["type"] not in ("Polygon", "MultiPolygon"):
        raise InvalidArgument(f"a region must be a Polygon or MultiPolygon, got a {gj['type']}",
                              value=gj["type"], allowed=["Polygon", "MultiPolygon"])
    region_state(state).param.update(geometry=gj, source="python")
    return Geometry(gj)


def user_roi(state: MapState) -> Geometry | None:
    """The map's region as a :class:`Geometry` (geemap's ``Map.user_roi``), None when there is none."""
    gj = region_state(state).geometry
    return None if gj is None else Geometry(gj)


def box_geometry(x: float, y: float, width: float, height: float) -> dict:
    """Lon/lat GeoJSON of a Web Mercator box given by its centre and size (a lon/lat rectangle)."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (x, y, width, height)):
        raise InvalidArgument(f"box {(x, y, width, height)!r} must be finite numbers", value=(x, y, width, height))
    lon0, lat0 = mercator_to_lonlat(x - abs(width) / 2, y - abs(height) / 2)
    lon1, lat1 = mercator_to_lonlat(x + abs(width) / 2, y + abs(height) / 2)
    return Geometry.Rectangle([lon0, lat0, lon1, lat1]).getInfo()


def polygon_geometry(xs: list[float], ys: list[float]) -> dict:
    """Lon/lat GeoJSON of a Web Mercator ring."""
    pts = [mercator_to_lonlat(float(x), float(y)) for x, y in zip(xs, ys)]
    if len(pts) < 3:
        raise InvalidArgument(f"a polygon needs at least 3 vertices, got {len(pts)}", value=len(pts), allowed=">= 3")
    return Geometry.Polygon([[list(p) for p in pts]]).getInfo()


def _mercator_rings(gj: dict) -> list[tuple[list[float], list[float]]]:
    """Outer rings of a lon/lat (Multi)Polygon in Web Mercator."""
    polys = [gj["coordinates"]] if gj["type"] == "Polygon" else gj["coordinates"]
    out = []
    for poly in polys:
        xy = [lonlat_to_mercator(p[0], p[1]) for p in poly[0][:-1]]
        out.append(([p[0] for p in xy], [p[1] for p in xy]))
    return out


class RegionTool:
    """Box and polygon drawing on a Bokeh map figure, linked to a :class:`RegionState`.

    ``in_doc`` runs a function where the figure's models may be changed (see
    :func:`viewer.ui.notify.doc_runner`).
    """

    def __init__(self, region: RegionState, in_doc: Callable[[Callable[[], None]], None] | None = None,
                 state: MapState | None = None) -> None:
        self.region = region
        self._in_doc = in_doc or (lambda fn: fn())
        self.box_source = ColumnDataSource({"x": [], "y": [], "width": [], "height": []}, name=BOX_SOURCE)
        self.poly_source = ColumnDataSource({"xs": [], "ys": []}, name=POLY_SOURCE)
        self.box_source.on_change("data", self._on_box)
        self.poly_source.on_change("data", self._on_poly)
        self.fig = None
        self._renderers: list = []
        self._echo = False
        region.param.watch(lambda e: self._in_doc(self._draw), "geometry")
        if region.geometry is not None:
            self._draw_any()
        if state is not None:
            # The map figure rewrites its renderer list on these (in the document, as this does, and
            # first: it watches from its creation). On a served page a Python-side change made while
            # Panel holds the document's events runs no on_change callback, so put ours back here too.
            state.watch_layers(lambda *e: self._in_doc(self._restore), ["visible"])
            state.param.watch(lambda e: self._in_doc(self._restore), "basemap")

    # figure -----------------------------------------------------------------------------
    def attach(self, fig) -> None:
        """Put the glyphs and the draw tools on ``fig`` (a new figure replaces the previous one)."""
        if fig is self.fig:
            return
        style = dict(fill_color=REGION_COLOR, fill_alpha=0.08, line_color=REGION_COLOR, line_width=2,
                     line_dash="dashed")
        box = glyph_renderer(Rect(x="x", y="y", width="width", height="height", **style), self.box_source)
        poly = glyph_renderer(Patches(xs="xs", ys="ys", **style), self.poly_source)
        vertices = glyph_renderer(Scatter(x="x", y="y", size=7, fill_color=REGION_COLOR, line_color=REGION_COLOR),
                                  ColumnDataSource({"x": [], "y": []}))
        fig.renderers = [*fig.renderers, box, poly, vertices]
        box_tool = BoxEditTool(renderers=[box], num_objects=1, description="Draw a region (box): pick this tool, then shift+drag on the map")
        poly_tool = PolyDrawTool(renderers=[poly], num_objects=1, vertex_renderer=vertices,
                                 description="Draw a region (polygon): press and hold for the first vertex, click "
                                             "the next ones, press and hold for the last")
        fig.add_tools(box_tool, poly_tool)
        self.fig = fig
        self._renderers = [box, poly, vertices]
        fig.on_change("renderers", functools.partial(self._keep_renderers, fig))

    def _keep_renderers(self, fig, attr, old, new) -> None:
        if fig is self.fig:  # not a figure replaced since
            self._restore()

    def _restore(self) -> None:
        fig = self.fig
        missing = [] if fig is None else [r for r in self._renderers if r not in fig.renderers]
        if missing:
            fig.renderers = list(fig.renderers) + missing

    # browser -> state -------------------------------------------------------------------
    @guarded("region")
    def _on_box(self, attr, old, new) -> None:
        if self._echo or not new.get("x"):
            if not self._echo and not new.get("x") and self.region.source == "box":
                self.region.geometry = None
            return
        gj = box_geometry(*(float(new[k][-1]) for k in ("x", "y", "width", "height")))
        self._set(gj, "box", clear=self.poly_source)

    @guarded("region")
    def _on_poly(self, attr, old, new) -> None:
        if self._echo:
            return
        rings = [(xs, ys) for xs, ys in zip(new.get("xs", []), new.get("ys", [])) if len(xs) >= 3]
        if not rings:
            if not new.get("xs") and self.region.source == "polygon":
                self.region.geometry = None
            return
        gj = polygon_geometry(*rings[-1])
        self._set(gj, "polygon", clear=self.box_source)

    def _set(self, gj: dict, source: str, clear: ColumnDataSource) -> None:
        self._echo = True
        try:
            if any(len(v) for v in clear.data.values()):
                clear.data = {k: [] for k in clear.data}
            self.region.param.update(geometry=gj, source=source)
        finally:
            self._echo = False

    # state -> browser -------------------------------------------------------------------
    def _draw(self) -> None:
        """Show a region set in Python (a drawn one is already on the map)."""
        if self.region.source == "python":
            self._draw_any()

    def _draw_any(self) -> None:
        gj = self.region.geometry
        self._echo = True
        try:
            self.box_source.data = {"x": [], "y": [], "width": [], "height": []}
            if gj is None:
                self.poly_source.data = {"xs": [], "ys": []}
            else:
                rings = _mercator_rings(gj)
                self.poly_source.data = {"xs": [r[0] for r in rings], "ys": [r[1] for r in rings]}
        finally:
            self._echo = False

    def clear(self) -> None:
        """Remove the region."""
        self.region.param.update(geometry=None, source="python")
