"""The link you share is the view they see (issue 10), in a real headless Chromium.

Edit a layer's band, palette, gamma and range, hide a class, reorder, remove and hide layers;
reload the page's URL: the same layers, in the same order, with byte-identical tile URLs;
open it in a window of another size: the same centre and zoom.
"""
from __future__ import annotations

import os
import re
import sys
import urllib.parse

import numpy as np
import pytest
import rasterio
from affine import Affine

from conftest import _free_port, served
from viewer.ui.viewport import WORLD_RES
from test_ui_browser import TILE, App

pytestmark = pytest.mark.browser

#: (layer name, tile source URL) of every shown layer's tile renderer, bottom first (a hidden
#: layer has no renderer until first shown, or a hidden one).
RENDERERS_JS = """() => {
  const out = [];
  for (const d of Bokeh.documents) for (const m of d._all_models.values()) {
    if (m.renderers === undefined || m.x_range === undefined) continue;
    for (const r of m.renderers) if (r.visible && r.tile_source && r.tile_source.url.includes('tiles/')) {
      out.push([r.name, r.tile_source.url]);
    }
  }
  return out;
}"""


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def layer_names(app: App) -> list[str]:
    """The layer cards' titles, top first."""
    titles = app.page.get_by_text(re.compile(r" · (image|mask|classes)$")).all_inner_texts()
    return [t.rsplit(" · ", 1)[0] for t in titles]


def tiles_of_view(app: App) -> set[str]:
    """The tile URLs the page asked for, without the server's address."""
    return {TILE.search(r.url).group(0) for r in app.tiles}


def opened(context, url: str) -> App:
    page = context.new_page()
    app = App(page, "")
    app.open(url)
    app.wait_for(lambda: "layers=" in app.page.url, "the state in the URL")
    return app


@pytest.fixture
def context_of(chromium):
    contexts = []

    def make(width: int, height: int):
        contexts.append(chromium.new_context(viewport={"width": width, "height": height}))
        return contexts[-1]

    yield make
    for c in contexts:
        c.close()


def test_a_reloaded_link_draws_the_same_tiles_and_keeps_centre_and_zoom(context_of, viewer_server, tmp_path):
    small = context_of(1280, 800)
    app = opened(small, viewer_server)
    page = app.page
    start = query(page.url)

    # band, palette, gamma and range of the Landsat layer (its card is open: the selected layer)
    card = app.card("Landsat 8 true colour · image")
    card.get_by_role("button", name="1 band").click()
    card.locator("select").first.select_option("B5")
    card.locator("select").filter(has=page.locator("option", has_text="viridis")).first.select_option("viridis")
    for i, value in enumerate(("5000", "21000", "0.8")):  # min, max, gamma of the one band
        box = card.locator("input.bk-input").nth(i)
        box.fill(value)
        box.press("Enter")
    app.wait_for(lambda: "pal:viridis" in page.url and "gamma:0.8" in page.url and "max:21000" in page.url,
                 "the band edits in the URL")
    assert "min/max" not in card.inner_text() and "R min" not in card.inner_text()  # one band: "min", "max"
    # a hidden class
    app.class_button("vegetation").click()
    app.wait_for(lambda: "hide:2" in page.url, "the hidden class in the URL")
    # reorder: Sentinel-2 above Landsat; then hide it
    s2 = app.card("Sentinel-2 true colour · image")
    s2.get_by_text("Sentinel-2 true colour · image").click()
    s2.get_by_role("button", name="▲").click()
    s2.locator("input[type=checkbox]").first.uncheck()
    # remove the cloud mask layer
    cloud = app.card("Cloud mask (BQA high confidence) · mask")
    cloud.get_by_text("Cloud mask (BQA high confidence) · mask").click()
    cloud.get_by_role("button", name="✕").click()
    app.wait_for(lambda: "Cloud mask (BQA" not in " ".join(layer_names(app)), "the removed layer's card gone")
    app.wait_for(lambda: len(query(page.url)["layers"].split(",")) == len(start["layers"].split(",")) - 1,
                 "the removal in the URL")
    app.settle()
    link = page.url
    edited = page.evaluate(RENDERERS_JS)
    names = layer_names(app)
    assert names.index("Sentinel-2 true colour") < names.index("Landsat 8 true colour")  # top first
    assert "Cloud mask (BQA high confidence)" not in names

    # reload in a window of the same size, twice: same layers, same tile URLs, same view
    first, second = opened(small, link), opened(small, link)
    for again in (first, second):
        again.settle()
        assert layer_names(again) == names
        assert again.page.evaluate(RENDERERS_JS) == edited  # same tokens, order, shown layers
        q = query(again.page.url)
        assert {k: q[k] for k in ("lon", "lat", "zoom")} == {k: query(link)[k] for k in ("lon", "lat", "zoom")}
    assert tiles_of_view(first) == tiles_of_view(second)
    tokens = {re.search(r"tiles/([0-9a-f]{64})/", u).group(1) for _, u in edited}
    assert {TILE.search(u).group(1) for u in tiles_of_view(first)} == tokens
    assert "viewer-class-hidden" in first.class_button("vegetation").evaluate("el => el.getRootNode().host.className")
    card = first.card("Landsat 8 true colour · image")
    card.get_by_text("Landsat 8 true colour · image").click() if card.locator("select").count() == 0 else None
    assert card.locator("select").filter(has=first.page.locator("option", has_text="viridis")).first \
        .input_value() == "viridis"
    first.assert_no_errors()

    # another window size: the same centre and zoom (more or less of the map around it)
    large = opened(context_of(1920, 1080), link)
    large.settle()
    q, want = query(large.page.url), query(link)
    assert abs(float(q["lon"]) - float(want["lon"])) < 1e-6 and abs(float(q["lat"]) - float(want["lat"])) < 1e-6
    assert abs(float(q["zoom"]) - float(want["zoom"])) < 1e-3
    assert large.page.evaluate(RENDERERS_JS) == edited
    large.page.screenshot(path=str(tmp_path / "shared_link_1920.png"))
    large.assert_no_errors()


#: Map units per screen pixel of the main map, along x and along y.
SCALE_JS = """() => {
  for (const d of Bokeh.documents) for (const m of d._all_models.values()) {
    if (m.type == 'Figure' && m.x_range && m.inner_width > 300) {
      return [(m.x_range.end - m.x_range.start) / m.inner_width, (m.y_range.end - m.y_range.start) / m.inner_height];
    }
  }
  return null;
}"""


def test_a_link_opens_at_its_zoom_in_any_window_and_reloads_without_drift(context_of, viewer_server):
    """A session built ahead took a link's view as the box of an assumed 900 px viewport: zoom 14
    opened at 13.36 in a 1280 px window and at 14.44 in a 1920 px one, and each reload drifted on."""
    want = WORLD_RES / 2 ** 14
    for width, height in ((1280, 800), (1920, 1080)):
        link = viewer_server + "?lon=-87.403&lat=30.724&zoom=14"
        for _ in range(2):  # the link, then the link the page wrote
            app = App(context_of(width, height).new_page(), "").open(link)
            q = query(app.page.url)
            assert (q["lon"], q["lat"], float(q["zoom"])) == ("-87.403", "30.724", 14.0), (width, q)
            rx, ry = app.page.evaluate(SCALE_JS)
            assert abs(rx / want - 1) < 1e-6 and abs(ry / want - 1) < 1e-6, (width, rx, ry, want)
            link = app.page.url
        # a wheel zoom on the link's page stays (a frame 6 px narrower from the new tick labels undid it)
        box = app.map_box()
        app.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        app.page.mouse.wheel(0, -300)
        app.page.wait_for_timeout(300)
        zoomed = app.page.evaluate(SCALE_JS)[0]
        assert zoomed < 0.75 * want, (zoomed, want)
        app.page.wait_for_timeout(1500)
        assert app.page.evaluate(SCALE_JS)[0] == pytest.approx(zoomed, rel=0.02)
        app.page.close()


def test_a_link_keeps_the_time_sliders_step(context_of, viewer_server):
    """Move the demo's collection layer to its second scene: the link names the step, and the
    page it opens shows that step (slider and the layer's tile source)."""
    context = context_of(1280, 800)
    app = opened(context, viewer_server)
    page = app.page
    card = page.locator(".card").filter(has=page.get_by_text("Time series (collections)")).first
    label = card.get_by_text("Landsat 8 collection (time slider):")
    label.wait_for(timeout=30000)
    first_step = label.inner_text()
    handle = card.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    uid = next(u for u, v in query(page.url).items() if v.endswith(";t:0") or v.endswith(";t:1"))
    app.wait_for(lambda: query(page.url)[uid].endswith(";t:1"), "the step in the URL")
    second_step = label.inner_text()
    assert second_step != first_step
    token = query(page.url)["layers"]  # the step changes the layer's image, not the layer order
    app.settle()
    link = page.url

    again = opened(context, link)
    again.settle()
    card = again.page.locator(".card").filter(has=again.page.get_by_text("Time series (collections)")).first
    shown = card.get_by_text("Landsat 8 collection (time slider):")
    shown.wait_for(timeout=30000)
    assert shown.inner_text() == second_step
    assert query(again.page.url)[uid] == query(link)[uid] and query(again.page.url)["layers"] == token
    again.assert_no_errors()


def test_a_link_opens_the_split_view_it_was_taken_in(context_of, viewer_server, tmp_path):
    """Open the compare card's split view (truth left, prediction right) and share the link: the page
    it opens shows the same split view, both sides drawn, the same centre and zoom."""
    context = context_of(1280, 800)
    app = opened(context, viewer_server)
    page = app.page
    card = page.locator(".viewer-compare")
    card.get_by_text("Prediction vs truth (IoU in view)").click()
    card.locator(".viewer-split-toggle button").first.click()
    page.locator(".viewer-swipe-slider").first.wait_for(timeout=30000)
    app.wait_for(lambda: "split" in query(page.url), "the split view in the URL")
    left, right, mode, divider = query(page.url)["split"].split(",")
    assert (mode, divider) == ("swipe", "50") and left != right
    # side by side and back: half-width maps do not fold the side panels (the page folds them only for a
    # window too narrow when it opens; side by side folded them, hiding the split view's own controls)
    card.get_by_role("button", name="side by side").click()
    app.wait_for(lambda: ",side," in query(page.url).get("split", ""), "side by side in the URL")
    page.wait_for_timeout(1000)
    assert page.get_by_text("Legend of the current view").is_visible()
    card.get_by_role("button", name="swipe").click()
    app.wait_for(lambda: ",swipe," in query(page.url).get("split", ""), "swipe in the URL")
    app.settle()
    link = page.url

    again = App(context.new_page(), "")  # not App.open: both class layers are shown, two "vegetation" entries
    again.page.goto(link)
    again.page.locator(".viewer-swipe-slider").first.wait_for(timeout=60000)
    again.page.get_by_role("button", name=re.compile(r"^vegetation\b")).nth(1).wait_for(timeout=60000)
    again.settle()
    tags = [again.page.locator(c).first.inner_text() for c in (".viewer-swipe-left", ".viewer-swipe-right")]
    assert tags == [page.locator(".viewer-swipe-left").first.inner_text(),
                    page.locator(".viewer-swipe-right").first.inner_text()]
    q = query(again.page.url)
    assert q["split"] == query(link)["split"] and (q["lon"], q["lat"], q["zoom"]) == (
        query(link)["lon"], query(link)["lat"], query(link)["zoom"])
    assert again.page.locator(".viewer-split-toggle button").count() == 0 or \
        again.page.locator(".viewer-split-toggle button").first.inner_text() == "Close split view"
    again.page.screenshot(path=str(tmp_path / "shared_split.png"))
    again.assert_no_errors()


def test_a_link_brings_back_the_difference_layer_it_was_taken_with(context_of, viewer_server, tmp_path):
    """Show the compare card's difference and share the link: the page it opens computes the same
    difference layer again (same name on top, the same tiles: its token names its pixels)."""
    context = context_of(1280, 800)
    app = opened(context, viewer_server)
    page = app.page
    card = page.locator(".viewer-compare")
    card.get_by_text("Prediction vs truth (IoU in view)").click()
    app.settle()
    before = {TILE.search(r.url).group(1) for r in app.tiles}
    card.get_by_role("button", name="Show difference").click()
    app.wait_for(lambda: any("diff:" in v for v in query(page.url).values()), "the difference in the URL")
    app.settle()
    difference = {TILE.search(r.url).group(1) for r in app.tiles} - before
    assert len(difference) == 1  # the new layer's tiles
    link = page.url
    uid = next(k for k, v in query(link).items() if "diff:" in v)
    names = layer_names(app)
    assert names[0].startswith("difference: ")

    again = opened(context, link)
    again.wait_for(lambda: layer_names(again)[:1] == names[:1], "the difference layer's card")
    again.settle()
    assert layer_names(again) == names and query(again.page.url)[uid] == query(link)[uid]
    drawn = [r for r in again.tiles if TILE.search(r.url).group(1) in difference]
    assert drawn and {r.status for r in drawn} == {200}
    again.page.screenshot(path=str(tmp_path / "shared_difference.png"))
    again.assert_no_errors()


APP_ACROSS_180 = '''
import viewer
from viewer.ui.app import build_app
m = viewer.Map()
m.add_layer(viewer.Image.open({path!r}), {{"min": 0, "max": 2}}, "across 180")
build_app(map_obj=m).servable()
'''


@pytest.fixture
def across_180_server(tmp_path):
    """``panel serve`` of a map with one EPSG:4326 GeoTIFF stored at 170..190 E (1 west of 180, 2 east)."""
    values = np.ones((200, 200), np.uint8)
    values[:, 100:] = 2
    tif = tmp_path / "geo.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=200, height=200, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=Affine(0.1, 0, 170, 0, -0.1, 10), nodata=0) as ds:
        ds.write(values, 1)
    script = tmp_path / "across.py"
    script.write_text(APP_ACROSS_180.format(path=str(tif)))
    port = _free_port()
    env = dict(os.environ, VIEWER_STATE_DIR=str(tmp_path / "state"))
    env.pop("VIEWER_TILE_URL", None)
    url = f"http://127.0.0.1:{port}/across"
    with served([sys.executable, "-m", "panel", "serve", str(script), "--port", str(port), "--address", "127.0.0.1",
                 "--allow-websocket-origin", f"127.0.0.1:{port}", "--plugins", "viewer.server.plugin"],
                url, tmp_path / "panel.log", env, "panel serve"):
        yield url


def test_a_source_across_the_antimeridian_is_drawn_whole_and_fitted_in_the_browser(context_of, across_180_server):
    import io

    import numpy as np
    from PIL import Image as PILImage

    page = context_of(1280, 800).new_page()
    app = App(page, "")
    page.goto(across_180_server)
    page.get_by_text("across 180 · image").first.wait_for(timeout=60000)
    app.wait_for(lambda: "layers=" in page.url and len(app.tiles) > 4, "tiles and the state in the URL")
    app.settle()
    z = max(int(TILE.search(r.url).group(2)) for r in app.tiles)
    colours = {}
    for r in app.tiles:
        _, tz, x, _ = TILE.search(r.url).groups()
        if int(tz) != z:
            continue
        rgba = np.asarray(PILImage.open(io.BytesIO(r.body())).convert("RGBA"))
        side = "west" if int(x) >= 2 ** z // 2 else "east"
        colours.setdefault(side, set()).update(rgba[..., 0][rgba[..., 3] > 0].tolist())
    assert colours["west"] == {128} and colours["east"] == {255}  # tiles either side of the line, both drawn
    shot = app.map_shot()  # inside the map's frame
    grey = (np.abs(shot - 128).max(axis=-1) <= 2).sum()
    white = (shot.min(axis=-1) >= 254).sum()
    assert grey > 50_000 and white > 50_000 and 0.7 < grey / white < 1.4  # the whole source, both halves
    lon = float(query(page.url)["lon"])
    assert abs(abs(lon) - 180) < 0.01  # "fit" centres the source on the line
    app.assert_no_errors()
