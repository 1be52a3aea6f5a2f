"""End to end in a real headless Chromium (Playwright, system browser) against ``viewer serve``.

Without a browser these tests skip (and fail when ``CI`` is set); see ``conftest.py``.
"""
from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image as PILImage
from pyproj import Transformer

from viewer.ui.demo import PREDICTION

pytestmark = pytest.mark.browser

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TILE = re.compile(r"/tiles/([0-9a-f]{64})/(\d+)/(\d+)/(\d+)\.png$")


class App:
    """One page of the served app, with a log of the tile responses it received."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.tiles: list = []
        page.on("response", lambda r: self.tiles.append(r) if TILE.search(r.url) else None)

    def open(self, query: str = "") -> "App":
        self.page.goto(self.base_url + query)
        self.class_button("vegetation").wait_for(timeout=60000)
        self.wait_for(lambda: " px" in self.class_button("vegetation").inner_text(), "class counts")
        self.settle()
        return self

    def card(self, title: str):
        """The layer card whose header reads ``title``."""
        return self.page.locator(".card").filter(has=self.page.get_by_text(title)).first

    def class_button(self, name: str):
        return self.page.get_by_role("button", name=re.compile(rf"^{name}\b"))

    def wait_for(self, predicate, what: str, timeout: float = 20.0) -> None:
        deadline = time.time() + timeout
        while not predicate():
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.page.wait_for_timeout(100)

    def settle(self, quiet_ms: int = 800, timeout: float = 20.0) -> None:
        """Wait until no tile response arrived for ``quiet_ms``."""
        deadline = time.time() + timeout
        last = -1
        while time.time() < deadline:
            n = len(self.tiles)
            self.page.wait_for_timeout(quiet_ms)
            if n == len(self.tiles) == last:
                return
            last = len(self.tiles)

    def assert_no_errors(self) -> None:
        toasts = self.page.locator(".notyf__toast")
        assert toasts.count() == 0, toasts.all_inner_texts()
        assert "Traceback" not in self.page.content()

    def urls(self) -> set[str]:
        return {r.url for r in self.tiles}

    def map_box(self) -> dict:
        return self.page.locator("canvas").first.bounding_box()

    def map_shot(self) -> np.ndarray:
        b = self.map_box()
        clip = {"x": b["x"] + 70, "y": b["y"] + 10, "width": b["width"] - 110, "height": b["height"] - 80}
        return np.asarray(PILImage.open(io.BytesIO(self.page.screenshot(clip=clip))).convert("RGB")).astype(int)


def changed_fraction(a: np.ndarray, b: np.ndarray, threshold: int = 30) -> float:
    """Share of pixels whose colour changed by more than ``threshold`` in some channel."""
    return float((np.abs(a - b).max(axis=-1) > threshold).mean())


@pytest.fixture
def app(chromium, viewer_server):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    yield App(page, viewer_server)
    context.close()


def test_page_loads_and_tiles_have_pixels(app):
    app.open()
    app.assert_no_errors()
    assert len(app.tiles) >= 20
    assert {r.status for r in app.tiles} == {200}
    visible = 0
    for r in app.tiles:
        assert r.headers["content-type"] == "image/png"
        rgba = np.asarray(PILImage.open(io.BytesIO(r.body())).convert("RGBA"))
        visible += int(rgba[..., 3].max() > 0)
    assert visible >= 10  # tiles over the Landsat scene draw pixels; the rest are transparent


@pytest.fixture
def demo_tokens(tmp_path, monkeypatch):
    """layer name -> token of the demo (content-addressed: the same as the server's)."""
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))
    from viewer.ui.app import demo_map

    return {l.name: l.token for l in demo_map().state.layers}


def test_hidden_layers_ask_for_no_tiles_and_the_map_comes_before_the_panels(app, demo_tokens):
    requested: list[str] = []
    app.page.on("request", lambda r: requested.append(r.url) if TILE.search(r.url) else None)
    app.page.goto(app.base_url)
    legend = app.page.locator(".viewer-legend-title")
    deadline = time.time() + 60
    while legend.count() == 0:  # the side panels are built once the map has drawn its tiles
        assert time.time() < deadline, "no legend"
        app.page.wait_for_timeout(20)
    asked, answered = list(requested), {r.url for r in app.tiles}
    assert len(asked) >= 20, "the legend came before the map asked for its tiles"
    first_level = min(int(TILE.search(u).group(2)) for u in asked)
    first_screen = {u for u in asked if int(TILE.search(u).group(2)) == first_level}
    assert first_screen <= answered, "the legend came before the map's first tiles arrived"
    app.class_button("vegetation").wait_for(timeout=20000)
    app.settle()
    hidden = ["Cloud-masked composite", PREDICTION, "Landsat 8 collection (time slider)"]
    shown = [name for name in demo_tokens if name not in hidden]
    tokens_asked = {TILE.search(u).group(1) for u in requested}
    assert {demo_tokens[n] for n in shown} <= tokens_asked
    assert not {demo_tokens[n] for n in hidden} & tokens_asked  # hidden layers asked for no tiles
    card = app.card(f"{PREDICTION} · classes")  # shown: now its tiles are asked for
    card.get_by_text(f"{PREDICTION} · classes").click()  # expand the card
    card.locator("input[type=checkbox]").first.check()  # its "visible" checkbox
    app.wait_for(lambda: any(demo_tokens[PREDICTION] in u for u in requested), "the shown layer's tiles")
    assert not any(demo_tokens["Cloud-masked composite"] in u for u in requested)
    app.assert_no_errors()


def test_side_panels_come_even_if_the_map_never_finishes_drawing(app, demo_tokens):
    from viewer.ui.app import PANELS_FALLBACK_S

    stalled = demo_tokens["Rule-based classes"]
    held = []
    app.page.route(re.compile(rf"/tiles/{stalled}/"), lambda route: held.append(route))  # never answered
    t0 = time.time()
    app.page.goto(app.base_url)
    app.page.locator(".viewer-legend-title").first.wait_for(timeout=(PANELS_FALLBACK_S + 30) * 1000)
    assert held and time.time() - t0 >= PANELS_FALLBACK_S * 0.8  # built by the fallback, not document-ready
    app.class_button("vegetation").wait_for(timeout=20000)
    app.assert_no_errors()


def test_pan_and_zoom_request_tiles_and_update_class_legend(app):
    app.open()
    before_urls, before_label = app.urls(), app.class_button("vegetation").inner_text()
    b = app.map_box()
    cx, cy = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
    app.page.mouse.move(cx, cy)
    app.page.mouse.down()
    app.page.mouse.move(cx + 180, cy + 120, steps=8)
    app.page.mouse.up()
    before_query = app.page.url
    app.wait_for(lambda: app.urls() - before_urls, "tiles after the pan")
    app.wait_for(lambda: app.class_button("vegetation").inner_text() != before_label, "legend after the pan")
    app.wait_for(lambda: "lon=" in app.page.url and app.page.url != before_query, "the view in the URL")
    app.settle()
    # a live stretch preset: recomputed over the view after every change (new token, new tiles)
    card = app.card("Landsat 8 true colour · image")
    card.locator("select").filter(has=app.page.locator("option", has_text="98%")).first.select_option("98%")
    legend = app.page.locator(".viewer-legend-title", has_text="Landsat 8 true colour").locator("xpath=..").first
    app.wait_for(lambda: "stretch: 98%" in legend.inner_text(), "the stretch in the band legend")
    app.settle()
    panned_urls, panned_label = app.urls(), app.class_button("vegetation").inner_text()
    stretched = legend.inner_text()
    zooms = {int(TILE.search(u).group(2)) for u in panned_urls}
    app.page.mouse.move(cx, cy)
    for _ in range(3):
        app.page.mouse.wheel(0, -300)
        app.page.wait_for_timeout(120)
    app.wait_for(lambda: any(int(TILE.search(u).group(2)) > max(zooms) for u in app.urls() - panned_urls),
                 "tiles of a deeper zoom level")
    app.wait_for(lambda: app.class_button("vegetation").inner_text() != panned_label, "legend after the zoom")
    app.wait_for(lambda: legend.inner_text() != stretched, "the stretch recomputed over the new view")
    app.assert_no_errors()


def test_toggling_a_class_and_a_layer_changes_the_map(app):
    app.open()
    first = app.map_shot()
    app.class_button("vegetation").click()
    app.wait_for(lambda: "viewer-class-hidden" in (app.class_button("vegetation").evaluate(
        "el => el.getRootNode().host.className") or ""), "vegetation hidden in the legend")
    app.page.wait_for_timeout(500)
    app.settle()
    no_vegetation = app.map_shot()
    assert changed_fraction(first, no_vegetation) > 0.2  # vegetation covers ~78 % of the scene
    masks = app.card("Cloud mask (BQA high confidence) · mask")
    masks.get_by_text("Cloud mask (BQA high confidence) · mask").click()  # expand the card
    masks.locator("input[type=checkbox]").first.uncheck()  # its "visible" checkbox
    app.page.wait_for_timeout(500)
    app.settle()
    no_cloud_layer = app.map_shot()
    assert changed_fraction(no_vegetation, no_cloud_layer) > 0.01  # the magenta cloud pixels are gone
    card = app.card("Landsat 8 true colour · image")
    card.get_by_role("switch").locator(".bk-knob").click()  # "apply mask": hide the cloudy pixels
    app.wait_for(lambda: card.get_by_role("switch").get_attribute("aria-checked") == "true", "mask switch on")
    app.page.wait_for_timeout(500)
    app.settle()
    cloud_masked = app.map_shot()
    # bright clouds turn into the (light) background: a small but clear change
    assert 0.01 < changed_fraction(no_cloud_layer, cloud_masked, 6) < 0.5
    card.locator("input[type=checkbox]").first.uncheck()  # the "visible" checkbox
    app.page.wait_for_timeout(500)
    app.settle()
    no_true_colour = app.map_shot()
    assert changed_fraction(cloud_masked, no_true_colour) > 0.2
    app.assert_no_errors()


def test_inspector_shows_native_band_values(app):
    b4 = rasterio.open(ASSETS / "landsat8" / "B4.tif")
    col, row = 300, 200
    lon, lat = Transformer.from_crs(b4.crs, "EPSG:4326", always_xy=True).transform(*b4.xy(row, col))
    app.open(f"?lon={lon:.6f}&lat={lat:.6f}&zoom=17")
    box = app.map_box()
    # the plot frame sits between the y axis (left), the toolbar (right) and the x axis (bottom)
    app.page.mouse.click(box["x"] + 60 + (box["width"] - 95) / 2, box["y"] + 5 + (box["height"] - 60) / 2)
    layer = app.page.locator(".viewer-inspect-layer").filter(has_text="Landsat 8 true colour")
    layer.first.wait_for(timeout=20000)
    text = layer.first.inner_text()
    c, r = map(int, re.search(r"col (\d+), row (\d+)", text).groups())
    assert abs(c - col) <= 2 and abs(r - row) <= 2
    value = int(re.search(r"\bB4\s+(\d+)", text).group(1))
    assert value == int(b4.read(1)[r, c])
    assert "EPSG:32616" in text
    assert re.search(r"lon/lat\s+-87\.\d+, 30\.\d+", app.page.locator(".viewer-coords").first.inner_text())
    app.assert_no_errors()


def test_export_downloads_and_core_errors_as_notifications(app):
    app.open()
    app.page.get_by_text("Export", exact=True).click()  # expand the export card
    for label, suffix, magic in (("PNG of the view", ".png", b"\x89PNG"),
                                 ("GeoTIFF of the layer's raw bands", ".tif", b"II*\x00"),
                                 ("getPixels request JSON", ".json", b"{")):
        with app.page.expect_download(timeout=30000) as info:
            app.page.get_by_text(label).click()  # the server computes the file, the browser saves it
        path = info.value.path()
        assert info.value.suggested_filename.endswith(suffix)
        assert Path(path).read_bytes().startswith(magic)
    app.assert_no_errors()
    card = app.card("Landsat 8 true colour · image")
    r_max = card.locator("input.bk-input").nth(1)  # R min, R max, G min, ...
    r_max.fill("6000")  # == R min: the core refuses an empty range
    r_max.press("Enter")
    toast = app.page.get_by_text(re.compile("min and max must differ"))
    toast.first.wait_for(timeout=15000)
    assert app.page.locator(".notyf__toast").count() >= 1  # the selector assert_no_errors relies on
    assert "Traceback" not in app.page.content()
