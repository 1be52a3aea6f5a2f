"""Basemaps: online XYZ tile services with attribution, and an offline graticule.

The offline default needs no network (demos behind firewalls): a plain background
with a longitude/latitude graticule drawn as Bokeh glyphs, recomputed for the view at
the axes' tick positions (the axes label it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Basemap", "BASEMAPS", "OFFLINE", "graticule", "graticule_step", "BASEMAP_PROBE_JS",
           "lonlat_to_mercator", "mercator_to_lonlat", "EARTH_RADIUS", "HALF_WORLD"]

EARTH_RADIUS = 6378137.0
HALF_WORLD = math.pi * EARTH_RADIUS  # 20037508.34 m: the Web Mercator world is [-HALF_WORLD, HALF_WORLD]^2
MAX_LAT = 85.0511287798066


@dataclass(frozen=True)
class Basemap:
    """One basemap choice: ``url`` is a Bokeh ``{X}/{Y}/{Z}`` template (None = offline)."""

    name: str
    url: str | None
    attribution: str
    max_zoom: int = 19


OFFLINE = "Offline (graticule)"

BASEMAPS: dict[str, Basemap] = {b.name: b for b in (
    Basemap(OFFLINE, None, "Graticule drawn locally: no network needed"),
    Basemap("OpenStreetMap", "https://tile.openstreetmap.org/{Z}/{X}/{Y}.png",
            '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'),
    Basemap("CartoDB Positron (light)", "https://a.basemaps.cartocdn.com/light_all/{Z}/{X}/{Y}.png",
            '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors '
            '&copy; <a href="https://carto.com/attributions">CARTO</a>', 20),
    Basemap("Esri World Imagery (satellite)",
            "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{Z}/{Y}/{X}",
            "Tiles &copy; Esri &mdash; Source: Esri, i-cubed, USDA, USGS, AEX, GeoEye, Getmapping, Aerogrid, "
            "IGN, IGP, UPR-EGP, and the GIS User Community"),
)}


def lonlat_to_mercator(lon: float, lat: float) -> tuple[float, float]:
    """EPSG:4326 degrees -> EPSG:3857 metres (latitude clamped to the Mercator limit)."""
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    x = math.radians(lon) * EARTH_RADIUS
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * EARTH_RADIUS
    return x, y


def mercator_to_lonlat(x: float, y: float) -> tuple[float, float]:
    """EPSG:3857 metres -> EPSG:4326 degrees."""
    lon = math.degrees(x / EARTH_RADIUS)
    lat = math.degrees(2 * math.atan(math.exp(y / EARTH_RADIUS)) - math.pi / 2)
    return lon, lat


#: Mantissas and the number of ticks Bokeh's axis ticker aims for (``AdaptiveTicker``: mantissas
#: 1, 2, 5 extended by 0.5 and 10; ``desired_num_ticks`` 6): the graticule uses the same steps.
_MANTISSAS = (0.5, 1.0, 2.0, 5.0, 10.0)
DESIRED_LINES = 6


def graticule_step(span_deg: float, desired: int = DESIRED_LINES) -> float:
    """The spacing (degrees) of the lines over a span of ``span_deg`` degrees: the interval Bokeh's
    mercator axis ticks use for the same span, so every line meets a labelled axis tick."""
    if not span_deg > 0 or not math.isfinite(span_deg):
        return 1.0
    ideal = span_deg / desired
    magnitude = 10.0 ** math.floor(math.log10(ideal))
    best = min(_MANTISSAS, key=lambda m: abs(desired - span_deg / (m * magnitude)))
    return best * magnitude


def _lines(lo: float, hi: float, step: float) -> list[float]:
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def graticule(x0: float, y0: float, x1: float, y1: float, samples: int = 32) -> dict[str, list]:
    """Meridians and parallels covering a Web Mercator box, at the axes' tick positions.

    Returns ``{"xs", "ys"}`` (line vertices for ``multi_line``) and ``{"lx", "ly", "text"}`` with
    empty texts (the columns of one Bokeh source have one length): the map's axes label the lines (in-map labels repeated the axis labels and ran together when
    zoomed in). Meridians are spaced by the longitude span and parallels by the latitude span,
    each with about :data:`DESIRED_LINES` lines whatever the view's size, as the axis ticks are.
    """
    x0, x1 = max(min(x0, x1), -HALF_WORLD), min(max(x0, x1), HALF_WORLD)
    y0, y1 = max(min(y0, y1), -HALF_WORLD), min(max(y0, y1), HALF_WORLD)
    lon0, lat0 = mercator_to_lonlat(x0, y0)
    lon1, lat1 = mercator_to_lonlat(x1, y1)
    xs: list[list[float]] = []
    ys: list[list[float]] = []
    for lon in _lines(lon0, lon1, graticule_step(lon1 - lon0)):
        x, _ = lonlat_to_mercator(lon, 0)
        xs.append([x, x])
        ys.append([y0, y1])
    for lat in _lines(lat0, lat1, graticule_step(lat1 - lat0)):
        if -MAX_LAT <= lat <= MAX_LAT:
            _, y = lonlat_to_mercator(0, lat)
            xs.append([x0, x1])
            ys.append([y, y])
    return {"xs": xs, "ys": ys, "lx": [x[0] for x in xs], "ly": [y[0] for y in ys], "text": [""] * len(xs)}


#: Browser-side check that the online basemap answers (a ``CustomJS`` on the map figure, args
#: ``plot``, ``notice`` (a Bokeh Div) and ``online`` (URL template -> basemap name)). BokehJS
#: reports no tile errors, so the page loads the basemap's zoom-0 tile as an image once per
#: basemap, and again on a later pan if it failed; a failure shows the notice.
BASEMAP_PROBE_JS = """
const r = plot.renderers.find((r) => r.tile_source != null && online[r.tile_source.url] !== undefined);
if (r == null) { plot._viewer_probe = null; notice.visible = false; return; }
const url = r.tile_source.url;
const now = Date.now();
if (plot._viewer_probe === url && !(plot._viewer_probe_failed && now - plot._viewer_probe_failed > 5000)) { return; }
plot._viewer_probe = url;
plot._viewer_probe_failed = 0;
const img = new Image();
img.onload = () => { if (plot._viewer_probe === url) { notice.visible = false; } };
img.onerror = () => {
  if (plot._viewer_probe !== url) { return; }
  plot._viewer_probe_failed = Date.now();
  notice.text = "The basemap \u201c" + online[url] + "\u201d did not load (no network, or the tile service " +
    "is unreachable). Choose \u201cOffline (graticule)\u201d in the layer panel's basemap menu.";
  notice.visible = true;
};
img.src = url.replace("{X}", "0").replace("{Y}", "0").replace("{Z}", "0");
"""
