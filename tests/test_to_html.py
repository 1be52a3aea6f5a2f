"""``Map.to_html``: one self-contained HTML file that opens offline with pan and zoom (issue 10)."""
from __future__ import annotations

import io
import re
from urllib.parse import urlparse

import numpy as np
import pytest
from affine import Affine
from PIL import Image as PILImage

import viewer
from viewer import InvalidArgument, LimitExceeded
from viewer.core.tiles import render_tile
from viewer.ui.html_export import MAX_TILES

QUAD_COLOURS = {(255, 0, 0), (0, 128, 0), (0, 0, 255), (255, 255, 0)}


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))


def quads_map() -> viewer.Map:
    """A 2.56 km square in Web Mercator, four quadrants drawn red, green, blue and yellow."""
    data = np.zeros((256, 256), np.uint8)
    data[:128, 128:], data[128:, :128], data[128:, 128:] = 85, 170, 255
    img = viewer.Image.from_array(data, crs="EPSG:3857", transform=Affine(10, 0, 1_000_000, 0, -10, 6_000_000))
    m = viewer.Map()
    m.add_layer(img, {"min": 0, "max": 255, "palette": ["red", "green", "blue", "yellow"]}, "quads <i>")
    return m


def embedded_tiles(text: str) -> int:
    """PNG data URLs in the document's JSON (BokehJS's own code has a few icons too)."""
    docs = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', text, re.S).group(1)
    return docs.count("data:image/png;base64,")


def test_file_is_self_contained_and_bounded(tmp_path):
    m = quads_map()
    m.add_legend(title="classes <script>", legend_dict={"a & b": "ff0000"})
    path = m.to_html(str(tmp_path / "map.html"))
    text = open(path, encoding="utf-8").read()
    srcs = re.findall(r"<(?:script|link)[^>]*(?:src|href)=", text)
    assert srcs == []  # BokehJS and everything else inline
    # (BokehJS's code names CDNs for features this file does not use; the browser test checks requests)
    assert 0 < embedded_tiles(text) <= MAX_TILES
    # user text is escaped in the legend's HTML (which Bokeh's document JSON escapes once more)
    assert "classes &amp;lt;script&amp;gt;" in text and "a &amp;amp; b" in text
    assert "classes <script>" not in text and "classes &lt;script&gt;" not in text


def test_bad_calls_are_typed(tmp_path):
    m = quads_map()
    with pytest.raises(InvalidArgument, match=r"\.html"):
        m.to_html(str(tmp_path / "map.png"))
    with pytest.raises(LimitExceeded, match="max_tiles=2"):
        m.to_html(str(tmp_path / "map.html"), max_tiles=2)
    with pytest.raises(InvalidArgument, match="max_tiles"):
        m.to_html(str(tmp_path / "map.html"), max_tiles=0)
    m.layer("quads <i>").visible = False
    with pytest.raises(InvalidArgument, match="no visible layer"):
        m.to_html(str(tmp_path / "map.html"))


def test_online_basemap_is_left_out_and_said(tmp_path):
    m = quads_map()
    m.add_basemap("SATELLITE")
    text = m.to_html()
    assert "arcgisonline" not in text.lower() and "tile.openstreetmap" not in text
    assert "is online tiles and is not included" in text


def test_small_cap_keeps_the_current_level_only(tmp_path):
    m = quads_map()
    path = m.to_html(str(tmp_path / "map.html"), max_tiles=12)
    text = open(path, encoding="utf-8").read()
    n = embedded_tiles(text)
    levels = re.search(r"zoom levels (\d+)\\u2013(\d+) embedded \((\d+) tiles, at most 12\)", text)
    assert levels and int(levels.group(3)) == n <= 12
    z = round(m.state.zoom)
    assert int(levels.group(1)) <= z <= int(levels.group(2)) < z + 1  # the current level, none finer


# in Chromium, network off ---------------------------------------------------------------------------
_FRAME_JS = """() => { const p = Bokeh.documents[0].get_model_by_name('viewer-map');
  const v = Bokeh.index.find_one(p); const bb = v.frame.bbox;
  return {left: bb.left, top: bb.top, width: bb.width, height: bb.height, z: p.tags[0],
          x0: p.x_range.start, x1: p.x_range.end, y0: p.y_range.start, y1: p.y_range.end}; }"""

_ZOOM_IN_JS = """() => { const p = Bokeh.documents[0].get_model_by_name('viewer-map');
  const xr = p.x_range, yr = p.y_range; const cx = (xr.start + xr.end) / 2, cy = (yr.start + yr.end) / 2;
  const hw = (xr.end - xr.start) / 4, hh = (yr.end - yr.start) / 4;
  xr.setv({start: cx - hw, end: cx + hw}); yr.setv({start: cy - hh, end: cy + hh}); }"""


def _expected_pixel(spec, z: int, mx: float, my: float) -> tuple[int, int, int]:
    """The colour of the core's tile of level ``z`` at Web Mercator point (mx, my)."""
    half = 20037508.342789244
    span = 2 * half / 2 ** z
    tx, ty = int((mx + half) // span), int((half - my) // span)
    png = render_tile(spec, z, tx, ty, "png")
    px = int((mx + half - tx * span) / span * 256)
    py = int((half - my - ty * span) / span * 256)
    return tuple(np.asarray(PILImage.open(io.BytesIO(png)).convert("RGBA"))[py, px, :3].tolist())


def _check_pixels(page, spec) -> int:
    """Compare screen pixels inside the four quadrants with the tiles' pixels; return the level shown."""
    f = page.evaluate(_FRAME_JS)
    shot = np.asarray(PILImage.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)
    box = page.locator("canvas").first.bounding_box()
    seen = set()
    for qx, qy in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)):
        mx = 1_000_000 + qx * 2560
        my = 6_000_000 - qy * 2560
        if not (f["x0"] < mx < f["x1"] and f["y0"] < my < f["y1"]):
            continue
        sx = box["x"] + f["left"] + (mx - f["x0"]) / (f["x1"] - f["x0"]) * f["width"]
        sy = box["y"] + f["top"] + (f["y1"] - my) / (f["y1"] - f["y0"]) * f["height"]
        got = tuple(shot[int(sy), int(sx)].tolist())
        want = _expected_pixel(spec, f["z"], mx, my)
        assert max(abs(a - b) for a, b in zip(got, want)) <= 2, (qx, qy, got, want)
        seen.add(want)
    assert seen and seen <= QUAD_COLOURS
    return f["z"]


@pytest.mark.browser
def test_opens_offline_and_zooms_within_the_embedded_levels(chromium, tmp_path):
    m = quads_map()
    m.add_legend(title="classes <b>x</b>", legend_dict={"a & b": "ff0000"})
    m.add_colorbar({"min": 0, "max": 255, "palette": ["red", "green", "blue", "yellow"]}, label="value")
    path = m.to_html(str(tmp_path / "map.html"))
    spec = m.layer("quads <i>").spec()
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    requests, errors = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if urlparse(r.request.url).scheme in ("file", "data"):
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    try:
        page.goto(f"file://{path}")
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                               "Bokeh.documents[0].get_model_by_name('viewer-map') !== null")
        page.wait_for_timeout(1500)  # the tile images decode
        page.screenshot(path=str(tmp_path / "to_html.png"))
        z = _check_pixels(page, spec)
        assert z == round(m.state.zoom)
        legend = page.locator(".viewer-user-colorbar").first
        assert "value" in legend.inner_text()
        legends = page.locator(".viewer-user-legend").first
        assert "classes <b>x</b>" in legends.inner_text() and "a & b" in legends.inner_text()
        assert legends.locator("b").count() == 0  # shown as text, not markup
        assert "quads <i>" in page.locator("text=quads").first.inner_text()
        page.evaluate(_ZOOM_IN_JS)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(tmp_path / "to_html_zoomed.png"))
        assert _check_pixels(page, spec) == z + 1
        assert requests == [] and errors == []
    finally:
        page.close()


@pytest.mark.browser
def test_layer_switch_hides_a_layer(chromium, tmp_path):
    m = quads_map()
    over = viewer.Image.from_array(np.full((64, 64), 1, np.uint8), crs="EPSG:3857",
                                   transform=Affine(10, 0, 1_000_000, 0, -10, 6_000_000))
    m.add_layer(over, {"min": 0, "max": 1, "palette": ["black", "white"]}, "white corner")
    path = m.to_html(str(tmp_path / "map.html"))
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    page.route("**/*", lambda r: r.continue_() if urlparse(r.request.url).scheme in ("file", "data") else r.abort())
    try:
        page.goto(f"file://{path}")
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
        page.wait_for_timeout(1500)
        f = page.evaluate(_FRAME_JS)
        box = page.locator("canvas").first.bounding_box()
        mx, my = 1_000_000 + 320, 6_000_000 - 320  # inside the white square, in the red quadrant
        sx = box["x"] + f["left"] + (mx - f["x0"]) / (f["x1"] - f["x0"]) * f["width"]
        sy = box["y"] + f["top"] + (f["y1"] - my) / (f["y1"] - f["y0"]) * f["height"]

        def pixel():
            shot = np.asarray(PILImage.open(io.BytesIO(page.screenshot())).convert("RGB"))
            return tuple(shot[int(sy), int(sx)].tolist())

        assert pixel() == (255, 255, 255)
        labels = page.locator("label")
        assert labels.nth(0).inner_text().strip() == "white corner"  # top layer first
        labels.nth(0).click()
        page.wait_for_timeout(500)
        assert pixel() == (255, 0, 0)
    finally:
        page.close()


def test_geemap_call_forms(tmp_path):
    m = quads_map()
    text = m.to_html()  # geemap: no filename -> the HTML
    assert text.startswith("<!DOCTYPE html>") and embedded_tiles(text) > 0
    assert "<title>a &lt;/title&gt;&lt;b&gt;</title>" in m.to_html(title="a </title><b>")
    path = m.to_html(str(tmp_path / "m.html"), title="My Map", width="100%", height="500px")
    page = open(path, encoding="utf-8").read()
    assert "<title>My Map</title>" in page and '"frame_height":500' in page.replace(" ", "")
    with pytest.raises(InvalidArgument, match="width 'wide' is not allowed"):
        m.to_html(str(tmp_path / "m.html"), width="wide")
    with pytest.raises(InvalidArgument, match=r"unexpected keyword\(s\) \['zoom'\]"):
        m.to_html(str(tmp_path / "m.html"), zoom=3)


@pytest.mark.browser
def test_across_the_antimeridian_both_sides_are_drawn(chromium, tmp_path):
    data = np.full((200, 200), 200, np.uint8)  # lon 179.9 .. 180.1
    img = viewer.Image.from_array(data, crs="EPSG:4326", transform=Affine(0.001, 0, 179.9, 0, -0.001, 10.1))
    m = viewer.Map()
    m.add_layer(img, {"min": 0, "max": 255}, "across 180")
    path = m.to_html(str(tmp_path / "map.html"))
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    page.route("**/*", lambda r: r.continue_() if urlparse(r.request.url).scheme in ("file", "data") else r.abort())
    try:
        page.goto(f"file://{path}")
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(tmp_path / "antimeridian.png"))
        f = page.evaluate(_FRAME_JS)
        box = page.locator("canvas").first.bounding_box()
        shot = np.asarray(PILImage.open(io.BytesIO(page.screenshot())).convert("RGB"))
        half = 20037508.342789244
        my = 1118889.97  # 10 degrees north
        for lon in (179.95, 180.05):  # west and east of the line
            mx = lon / 180 * half
            sx = box["x"] + f["left"] + (mx - f["x0"]) / (f["x1"] - f["x0"]) * f["width"]
            sy = box["y"] + f["top"] + (f["y1"] - my) / (f["y1"] - f["y0"]) * f["height"]
            assert tuple(shot[int(sy), int(sx)].tolist()) == (200, 200, 200), lon
    finally:
        page.close()
