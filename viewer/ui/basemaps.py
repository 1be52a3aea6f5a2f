"""Basemaps: online XYZ tile services with attribution, and an offline graticule.

The offline default needs no network (demos behind firewalls): a plain background
with a longitude/latitude graticule drawn as Bokeh glyphs, recomputed for the view.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Basemap", "BASEMAPS", "OFFLINE", "graticule", "lonlat_to_mercator", "mercator_to_lonlat",
           "EARTH_RADIUS", "HALF_WORLD"]

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


_STEPS = (30, 20, 10, 5, 2, 1, 0.5, 0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.0025, 0.001)


def _step(span_deg: float, target: int = 6) -> float:
    for s in _STEPS:
        if span_deg / s >= target:
            return s
    return _STEPS[-1]


def _fmt(value: float, step: float, pos: str, neg: str) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    hemi = pos if value > 0 else neg if value < 0 else ""
    return f"{abs(value):.{decimals}f}\u00b0{hemi}"


def graticule(x0: float, y0: float, x1: float, y1: float, samples: int = 32) -> dict[str, list]:
    """Meridians and parallels covering a Web Mercator box, with labels.

    Returns ``{"xs", "ys"}`` (line vertices for ``multi_line``) and ``{"lx", "ly", "text"}``
    (label anchors at the left/bottom edge of the box).
    """
    x0, x1 = max(min(x0, x1), -HALF_WORLD), min(max(x0, x1), HALF_WORLD)
    y0, y1 = max(min(y0, y1), -HALF_WORLD), min(max(y0, y1), HALF_WORLD)
    lon0, lat0 = mercator_to_lonlat(x0, y0)
    lon1, lat1 = mercator_to_lonlat(x1, y1)
    step = _step(max(lon1 - lon0, lat1 - lat0, 1e-6))
    xs: list[list[float]] = []
    ys: list[list[float]] = []
    lx: list[float] = []
    ly: list[float] = []
    text: list[str] = []
    lon = math.floor(lon0 / step) * step
    while lon <= lon1 + 1e-12:
        x, _ = lonlat_to_mercator(lon, 0)
        xs.append([x, x])
        ys.append([y0, y1])
        lx.append(x)
        ly.append(y0)
        text.append(_fmt(round(lon, 6), step, "E", "W"))
        lon += step
    lat = math.floor(lat0 / step) * step
    while lat <= lat1 + 1e-12:
        if -MAX_LAT <= lat <= MAX_LAT:
            _, y = lonlat_to_mercator(0, lat)
            xs.append([x0, x1])
            ys.append([y, y])
            lx.append(x0)
            ly.append(y)
            text.append(_fmt(round(lat, 6), step, "N", "S"))
        lat += step
    return {"xs": xs, "ys": ys, "lx": lx, "ly": ly, "text": text}
