"""``viewer.Map``: a geemap-style map for notebooks and the served app.

    m = viewer.Map()
    m.set_center(-87.3, 30.8, 11)
    m.add_layer(img, {"bands": ["B4", "B3", "B2"], "min": 5000, "max": 12000}, "true colour")
    m.add_mask_layer(cloud, "clouds")           # 0/1 mask drawn in one colour
    m.add_overlay(viewer.ImageMask(...), "pred") # segmentation overlay with its classes
    m                                          # displays in Jupyter (through Panel)

``addLayer``/``setCenter``/``centerObject`` are Earth Engine Code Editor aliases.
"""
from __future__ import annotations

from typing import Any

import panel as pn
import param

from ..core.classes import Classes
from ..core.errors import InvalidArgument
from ..core.image import Image
from ..core.segmentation import ImageMask, overlays
from .basemaps import BASEMAPS, OFFLINE
from .html_export import MAX_TILES, export_html, export_size, map_html
from .mapview import MapView
from .notebook import load_extension
from .state import LayerState, MapState, class_table, make_layer
from .tileserver import ensure_tile_server, wants_local_server
from .user_legends import UserLegends, colorbar_entry, legend_entry
from ..core.class_stats import Comparison
from ..core.collection import ImageCollection
from .collection_layer import make_collection_layer
from .compare import compare_view
from .difference import add_difference_layer, difference
from .split import SplitMap
from ..core.geometry import Geometry
from .region_panel import map_region_stats
from .region_tool import set_region, user_roi

__all__ = ["Map"]


#: geemap / ipyleaflet basemap names and the viewer's basemap each one means.
_GEEMAP_BASEMAPS = {
    "OpenStreetMap": "OpenStreetMap", "OpenStreetMap.Mapnik": "OpenStreetMap", "ROADMAP": "CartoDB Positron (light)",
    "CartoDB.Positron": "CartoDB Positron (light)", "SATELLITE": "Esri World Imagery (satellite)",
    "HYBRID": "Esri World Imagery (satellite)", "Esri.WorldImagery": "Esri World Imagery (satellite)",
    "OFFLINE": OFFLINE,
}


class Map(pn.viewable.Viewer):
    """An interactive map of image layers, mask layers and segmentation overlays.

    ``center`` is ``(lat, lon)`` as in geemap/ipyleaflet; ``set_center`` takes
    ``(lon, lat, zoom)`` as Earth Engine does.
    """

    height = param.Integer(default=600, bounds=(200, None))
    user_legends = param.List(default=[], doc="Colour bars and legends from add_colorbar/add_legend (dicts).")

    def __init__(self, center: tuple[float, float] | None = None, zoom: float | None = None,
                 basemap: str = OFFLINE, **params: Any) -> None:
        super().__init__(**params)
        if basemap not in BASEMAPS:
            raise InvalidArgument(f"basemap {basemap!r} is not allowed; allowed: {list(BASEMAPS)}",
                                  value=basemap, allowed=list(BASEMAPS))
        self.state = MapState(basemap=basemap)
        self._centered = False
        if center is not None or zoom is not None:
            lat, lon = center if center is not None else (self.state.center[1], self.state.center[0])
            self.set_center(lon, lat, zoom)
        self._view = None

    # view -------------------------------------------------------------------------------
    def set_center(self, lon: float, lat: float, zoom: float | None = None) -> None:
        """Centre the map on (lon, lat) at an XYZ zoom level (0 world .. 24)."""
        self.state.set_center(lon, lat, zoom)
        self._centered = True

    def center_object(self, obj: Any, zoom: float | None = None) -> None:
        """Centre on an image, an :class:`ImageMask` or a layer (by name); without ``zoom``
        the zoom that fits it in the map."""
        if isinstance(obj, str):
            self.state.fit_layer(obj)
            if zoom is not None:
                self.set_center(*self.state.center, zoom)
            self._centered = True
            return
        image = obj.image() if isinstance(obj, ImageMask) else obj
        if not isinstance(image, Image) or image.native_grid() is None:
            raise InvalidArgument(f"center_object needs an image with a pixel grid, an ImageMask or a layer name, "
                                  f"got {obj!r}", value=repr(obj))
        probe = MapState(viewport=self.state.viewport)
        probe.add(make_layer(image, {"bands": [image.bands[0].name], "min": 0, "max": 1}, "probe", False, 1.0))
        probe.fit_layer("probe")
        lon, lat = probe.center
        self.set_center(lon, lat, probe.zoom if zoom is None else zoom)

    # layers -----------------------------------------------------------------------------
    @property
    def layers(self) -> list[LayerState]:
        return list(self.state.layers)

    def layer(self, name: str) -> LayerState:
        return self.state.layer(name)

    def _default_name(self) -> str:
        return f"Layer {len(self.state.layers) + 1}"

    def _add(self, layer: LayerState) -> LayerState:
        layer = self.state.add(layer)
        if not self._centered and layer.image.native_grid() is not None:
            self.state.fit_layer(layer.name)
            self._centered = True
        return layer

    def add_layer(self, ee_object: Any, vis_params: dict | None = None, name: str | None = None,
                  shown: bool = True, opacity: float = 1.0) -> LayerState:
        """Add an image, mask image, class image or :class:`ImageMask` as a layer.

        Without ``vis_params`` the Earth Engine defaults apply: the first band (or the first
        three bands as RGB), with min/max from the data type (0..255 for uint8, 0..1 for
        floats and masks); for wider integer types (uint16 DNs) a 2-98 % percentile stretch
        over the layer's native extent. An image carrying segmentation masks
        (``Image.from_array(..., masks=...)``) adds the image and one overlay per mask key.
        """
        if isinstance(ee_object, ImageMask):
            return self.add_overlay(ee_object, name, shown=shown, opacity=opacity)
        if isinstance(ee_object, ImageCollection):
            return self.add_collection_layer(ee_object, vis_params, name, shown, opacity)
        if not isinstance(ee_object, Image):
            raise InvalidArgument(f"add_layer takes a viewer.Image or ImageMask, got {type(ee_object).__name__}",
                                  value=type(ee_object).__name__, allowed="viewer.Image, viewer.ImageMask")
        name = name or self._default_name()
        masks = overlays(ee_object)
        classes = class_table(ee_object) if len(ee_object.bands) == 1 else None
        if classes is not None and vis_params is None:
            layer = make_layer(ee_object, None, name, shown, opacity, kind="classes", classes=classes)
        else:
            layer = make_layer(ee_object, vis_params, name, shown, opacity)
        layer = self._add(layer)
        for key, mask in masks.items():
            self.add_overlay(mask, key, shown=shown, opacity=0.6, group=layer.name)
        return layer

    def add_mask_layer(self, image: Image, name: str | None = None, color: str | None = "#ff00ff",
                       shown: bool = True, opacity: float = 1.0) -> LayerState:
        """A mask (values 0..1, e.g. ``img.mask()`` or a 0/1 cloud mask) as a layer.

        With ``color`` the mask is drawn in that colour with alpha = mask value (0 is
        transparent); with ``color=None`` as grayscale 0 black .. 1 white (Earth Engine).
        """
        if not isinstance(image, Image):
            raise InvalidArgument(f"add_mask_layer takes a viewer.Image, got {type(image).__name__}",
                                  value=type(image).__name__)
        layer = make_layer(image, None, name or self._default_name(), shown, opacity, kind="mask",
                           mask_color=color)
        return self._add(layer)

    def add_overlay(self, mask: ImageMask | Image, name: str | None = None, classes: Any = None,
                    shown: bool = True, opacity: float = 0.6, group: str = "") -> LayerState:
        """A segmentation overlay: an :class:`ImageMask` or a one-band class image."""
        if isinstance(mask, ImageMask):
            image = mask.image()
            table = mask.classes
            name = name or mask.key
        elif isinstance(mask, Image):
            image = mask.select([0])
            table = class_table(image)
        else:
            raise InvalidArgument(f"add_overlay takes an ImageMask or a class Image, got {type(mask).__name__}",
                                  value=type(mask).__name__, allowed="ImageMask, Image")
        if classes is not None:
            table = Classes.coerce(classes)
        layer = make_layer(image, None, name or self._default_name(), shown, opacity, kind="classes",
                           classes=table, group=group)
        return self._add(layer)

    def add_difference(self, prediction: str, truth: str, name: str | None = None,
                       class_id: int | None = None, opacity: float = 0.8) -> LayerState:
        """The prediction-vs-truth difference of two overlays (on the truth's native grid).

        Without ``class_id``: 1 = disagree; with it: 1 false positive, 2 false negative.
        """
        label = name or f"{prediction} vs {truth}" + ("" if class_id is None else f" (class {class_id})")
        made = difference(self.state, prediction, truth, class_id)
        return add_difference_layer(self.state, made, prediction, truth, class_id, label, opacity)

    def remove_layer(self, name: str) -> None:
        self.state.remove(name)

    def add_basemap(self, basemap: str = "OpenStreetMap") -> None:
        """Switch the basemap (geemap's names ``OpenStreetMap``, ``SATELLITE``/``Esri.WorldImagery``,
        ``CartoDB.Positron``/``ROADMAP``, or one of :data:`~viewer.ui.basemaps.BASEMAPS`)."""
        name = _GEEMAP_BASEMAPS.get(basemap, basemap) if isinstance(basemap, str) else basemap
        if name not in BASEMAPS:
            allowed = list(BASEMAPS) + sorted(_GEEMAP_BASEMAPS)
            raise InvalidArgument(f"basemap {str(basemap)[:60]!r} is not allowed; allowed: {allowed}",
                                  value=str(basemap)[:60], allowed=allowed)
        self.state.basemap = name

    def add_layer_control(self, *args: Any, **kwargs: Any) -> None:
        """geemap's layer control: the map always shows its layer panel, so this does nothing."""

    # legends the user adds (geemap) ---------------------------------------------------------
    def add_colorbar(self, vis_params: dict | None = None, cmap: str = "gray", discrete: bool = False,
                     label: str | None = None, orientation: str = "horizontal", layer_name: str | None = None,
                     **kwargs: Any) -> dict:
        """geemap's colour bar: ``vis_params`` ``min``, ``max`` and ``palette`` (colours or a palette
        name; without it ``cmap``), with a ``label``. It goes to the legend panel and ``to_html``;
        geemap's layout keywords (``position``, ``font_size``, ...) are accepted. Returns the entry."""
        entry = colorbar_entry(vis_params, cmap, discrete, label, orientation, layer_name, **kwargs)
        self.user_legends = [*self.user_legends, entry]
        return entry

    def add_legend(self, title: str = "Legend", legend_dict: dict | None = None, keys: list | None = None,
                   colors: list | None = None, position: str = "bottomright", builtin_legend: str | None = None,
                   layer_name: str | None = None, *, labels: list | None = None, legend_title: str | None = None,
                   legend_keys: list | None = None, legend_colors: list | None = None, **kwargs: Any) -> dict:
        """geemap's legend: ``legend_dict`` (label -> colour), ``keys``/``labels`` + ``colors``, or a
        ``builtin_legend`` (``'NLCD'``, ``'ESA_WorldCover'``, ``'Dynamic_World'``). Older geemap names
        (``legend_title``, ``legend_keys``, ``legend_colors``) work too. Returns the entry."""
        if keys is not None and labels is not None:
            raise InvalidArgument("give keys or labels, not both", value=("keys", "labels"), allowed="one of them")
        entry = legend_entry(legend_title if legend_title is not None else title, legend_dict,
                             next((k for k in (keys, labels, legend_keys) if k is not None), None),
                             colors if colors is not None else legend_colors, builtin_legend, layer_name,
                             position=position, **kwargs)
        self.user_legends = [*self.user_legends, entry]
        return entry

    def user_legend_panel(self) -> UserLegends:
        """The colour bars and legends added with :meth:`add_colorbar`/:meth:`add_legend` (a Panel viewer)."""
        return UserLegends(self)

    # a file you can send --------------------------------------------------------------------
    def to_html(self, filename: str | None = None, title: str | None = None, width: int | str | None = None,
                height: int | str | None = None, max_tiles: int = MAX_TILES, **kwargs: Any) -> str:
        """Write the map as one self-contained HTML file that opens offline: the visible layers' tiles
        for the current view and zoom levels around it (at most ``max_tiles`` tiles), legends and a
        layer switch; pan and zoom within the embedded levels. ``width``/``height``: the map's size
        in pixels (``880``, ``"880px"``; geemap's ``"100%"`` means the current view's). Returns the
        path written; without ``filename`` the HTML text (as geemap does)."""
        unknown = sorted(set(kwargs) - {"add_layer_control"})
        if unknown:
            raise InvalidArgument(f"to_html got unexpected keyword(s) {unknown}", value=unknown,
                                  allowed=["filename", "title", "width", "height", "max_tiles"])
        size = export_size(width, height, self.state.viewport)
        if filename is None:
            return map_html(self.state, self.user_legends, title or "viewer map", size, max_tiles)
        return str(export_html(self.state, filename, self.user_legends, title, size, max_tiles))

    # Earth Engine Code Editor / geemap aliases
    addLayer = add_layer
    setCenter = set_center
    centerObject = center_object
    add_ee_layer = add_layer

    # display ----------------------------------------------------------------------------
    @property
    def view(self):
        """The :class:`~viewer.ui.mapview.MapView` (figure, layer panel, legends, inspector)."""
        if self._view is None:
            if not _served() and wants_local_server():
                ensure_tile_server()  # before the view asks for the tile URL (VIEWER_TILE_PORT/URL)
            self._view = MapView(self)
            self._view.show_split()  # a shared link's split view, now that there is a view to replace
        return self._view

    @property
    def figure(self):
        """The Bokeh figure (built on first use)."""
        return self.view.map_figure.fig

    def __panel__(self):
        return self.view.layout()

    def _repr_mimebundle_(self, include=None, exclude=None):
        """Jupyter display; loads Panel's notebook extension on first use (as geemap needs no setup),
        with its JavaScript inline so that a notebook without internet shows the map
        (:mod:`viewer.ui.notebook`)."""
        load_extension()
        return super()._repr_mimebundle_(include, exclude)

    def __repr__(self) -> str:
        lon, lat = self.state.center
        return f"viewer.Map(center=({lat:.4f}, {lon:.4f}), zoom={self.state.zoom:g}, " \
               f"layers={[l.name for l in self.state.layers]})"

    # compare, split and collections (issue 11) ----------------------------------------------
    # Thin delegates to viewer/ui/split.py, compare.py and collection_layer.py (kept by their owner).
    def split_map(self, left_layer: Any, right_layer: Any, left_label: str | None = None,
                  right_label: str | None = None, mode: str = "swipe") -> SplitMap:
        """geemap's split map: ``left_layer`` and ``right_layer`` (layer names, Images or lists of them)
        left and right of a draggable divider over one view (``mode="side by side"``: two linked maps)."""
        return SplitMap(self, left_layer, right_layer, left_label, right_label, mode=mode,
                        base_url=self.view.map_figure.base_url, height=self.height)

    def compare(self, prediction: str, truth: str, grid: Any = None) -> Comparison:
        """Prediction vs truth (two class layers) in the current view, as the compare panel shows it:
        confusion matrix and per-class IoU/precision/recall (``grid``: count on another grid)."""
        return compare_view(self.state, prediction, truth, grid)

    def add_collection_layer(self, collection: ImageCollection, vis_params: dict | None = None,
                             name: str | None = None, shown: bool = True, opacity: float = 1.0,
                             reducer: str = "", window_days: float = 1.0) -> LayerState:
        """A collection as one layer with a time slider (``layer.time``): one image at a time, or
        ``reducer`` ('mosaic', 'median', ...) over windows of ``window_days`` from each date."""
        return self._add(make_collection_layer(collection, vis_params, name or self._default_name(), shown,
                                               opacity, reducer, window_days))

    # regions (issue 11) ----------------------------------------------------------------------
    # Thin delegates to viewer/ui/region_tool.py and region_panel.py (kept by their owner).
    def add_region(self, geometry: Any) -> Geometry:
        """Make a lon/lat ``Geometry`` (or GeoJSON) polygon the map's region (as if drawn on the map)."""
        return set_region(self.state, geometry)

    @property
    def user_roi(self) -> Geometry | None:
        """The last region drawn on the map or added (geemap's ``Map.user_roi``); None when there is none."""
        return user_roi(self.state)

    def region_stats(self, scale: float | None = None) -> dict:
        """The region panel's figures for the region (``Image.reduceRegion``'s numbers; ``scale`` in metres)."""
        return map_region_stats(self.state, scale)


def _served() -> bool:
    """Whether this runs in a Panel server session (which serves the tile routes itself)."""
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None
