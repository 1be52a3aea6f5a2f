"""The first screen (issue 10): layout, graticule, legends, busy text, basemap notice, tooltips,
the add-layer card and the demo's prediction-vs-truth pair.

Unit tests run anywhere; the ``browser`` tests run the served app in headless Chromium (see
``conftest.py``) and check what a user sees: sizes, DOM text, decoded tile pixels.
"""
from __future__ import annotations

import inspect
import io
import math
import re
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image as PILImage
from pyproj import Transformer

import viewer
from viewer.core.class_stats import compare_masks
from viewer.core.classes import Classes
from viewer.ui import map as map_module
from viewer.ui.add_layer import AddLayerPanel, catalog_assets, vis_params
from viewer.ui.basemaps import graticule, graticule_step, lonlat_to_mercator, mercator_to_lonlat
from viewer.ui.demo import KMEANS_ID, PREDICTION, RULES_ID, TRUTH, demo_map, majority_relabel
from viewer.ui.legends import band_legend_html, class_label, in_view, legend_title
from viewer.ui.mapview import BUSY_TEXT

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TILE = re.compile(r"/tiles/([0-9a-f]{64})/(\d+)/(\d+)/(\d+)\.png$")


@pytest.fixture(autouse=True)
def _state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))


# graticule ------------------------------------------------------------------------------------
@pytest.mark.parametrize("zoom", [3, 8, 13, 14, 16, 19])
def test_graticule_lines_are_spaced_for_the_view_and_carry_no_labels(zoom):
    """About six lines per axis at any zoom (as the axes' ticks), never closer than 1/12 of the view."""
    w, h = 1280, 760
    res = 2 * math.pi * 6378137 / 256 / 2 ** zoom
    cx, cy = lonlat_to_mercator(-87.4, 30.72)
    box = (cx - res * w / 2, cy - res * h / 2, cx + res * w / 2, cy + res * h / 2)
    g = graticule(*box)
    assert not any(g["text"]) and len(g["lx"]) == len(g["xs"])  # the axes label the lines
    xs = sorted(x[0] for x, y in zip(g["xs"], g["ys"]) if x[0] == x[1])
    ys = sorted(y[0] for x, y in zip(g["xs"], g["ys"]) if y[0] == y[1])
    for lines, size in ((xs, w), (ys, h)):
        assert 3 <= len(lines) <= 12
        gaps_px = np.diff(lines) / res
        assert gaps_px.min() >= size / 12
    lons = [mercator_to_lonlat(x, 0)[0] for x in xs]
    step = graticule_step(mercator_to_lonlat(box[2], 0)[0] - mercator_to_lonlat(box[0], 0)[0])
    assert all(abs(l / step - round(l / step)) < 1e-6 for l in lons)  # on multiples of the step


def test_graticule_step_is_the_axis_tickers_interval():
    # BokehJS AdaptiveTicker (mantissas 1, 2, 5; 6 ticks): 20 degrees -> 5, 10 -> 2, 0.2 -> 0.05, 0.13 -> 0.02
    assert [graticule_step(s) for s in (20, 10, 0.2, 0.13)] == pytest.approx([5, 2, 0.05, 0.02])


# legends -------------------------------------------------------------------------------------
def test_legend_names_the_band_of_a_one_band_layer_and_its_palette():
    m = viewer.Map()
    layer = m.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B5"], "min": 5000, "max": 20000,
                                                            "palette": "viridis"}, "Landsat 8 true colour")
    assert legend_title(layer, layer.spec()) == "Landsat 8 · B5"
    text = band_legend_html(layer, layer.spec())
    assert "true colour" not in text and "viridis" in text and "B5" in text
    rgb = m.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4", "B3", "B2"], "min": 0, "max": 1},
                      "RGB <b>x</b>")
    assert legend_title(rgb, rgb.spec()) == "RGB <b>x</b>"
    assert "RGB &lt;b&gt;x&lt;/b&gt;" in band_legend_html(rgb, rgb.spec())


def test_class_counts_say_which_pixels():
    entry = {"id": 2, "name": "vegetation", "count": 2500, "area_m2": 2.25e6, "pixels": "native"}
    assert class_label(entry) == "vegetation — 2,500 native px · 2.25 km²"
    assert class_label(dict(entry, pixels="screen")).startswith("vegetation — 2,500 screen px")


def test_in_view_uses_the_layer_extent():
    m = demo_map()
    state = m.state
    landsat, s2 = state.layer("Landsat 8 true colour"), state.layer("Sentinel-2 true colour")
    state.view = state.layer_extent("Landsat 8 true colour")
    assert in_view(state, landsat) and not in_view(state, s2)


def test_legend_leaves_out_layers_out_of_view_and_classes_without_pixels():
    m = demo_map()
    state, legends = m.state, m.view.legends
    titles = lambda: " ".join(o.object for o in legends.column.objects if hasattr(o, "object"))  # noqa: E731
    state.view = state.layer_extent("Landsat 8 true colour")
    legends.sync()
    assert "Landsat 8 true colour" in titles() and "Sentinel-2" not in titles()
    # a small window of the scene without water: the water row is left out, not "0 px"
    rules = rasterio.open(ASSETS / "landsat8" / "classes_rules.tif")
    ids = rules.read(1)
    r0, c0 = next((r, c) for r in range(0, ids.shape[0] - 20, 10) for c in range(0, ids.shape[1] - 20, 10)
                  if not (ids[r:r + 20, c:c + 20] == 1).any() and (ids[r:r + 20, c:c + 20] == 2).any())
    to_merc = Transformer.from_crs(rules.crs, "EPSG:3857", always_xy=True)
    (x0, y0), (x1, y1) = (to_merc.transform(*rules.xy(r0 + 16, c0 + 4, offset="ul")),
                          to_merc.transform(*rules.xy(r0 + 4, c0 + 16, offset="ul")))
    state.viewport = (400, 400)
    state.set_view(x0, y0, x1, y1)
    state.refresh_stats()
    rows = legends.class_legend(TRUTH).buttons
    assert rows[2].visible and "native px" in rows[2].label
    assert not rows[1].visible  # water: no pixel in view
    assert all(" 0 " not in b.label for b in rows.values() if b.visible)


# busy text, cards, imports -------------------------------------------------------------------
def test_busy_text_shows_only_while_the_view_figures_are_computed():
    m = demo_map()
    status = m.view.status
    assert status.value == BUSY_TEXT and not status.visible
    m.state.stats_loading = True
    assert status.visible
    m.state.stats_loading = False
    assert not status.visible


def test_tool_cards_go_to_the_right_panel():
    m = demo_map()
    built = []
    m.view.add_card("My <tool>", lambda: built.append(1) or [viewer.ui.mapview.pn.pane.Str("hello")])
    cards = m.view.side_panels().objects
    titles = [c.title for c in cards]
    assert titles[:3] == ["Legend of the current view", "Inspector", "Prediction vs truth (IoU in view)"]
    assert titles[-1] == "My &lt;tool&gt;" and not built  # built when opened
    cards[-1].collapsed = False
    assert built == [1]


def test_map_imports_mapview_at_the_top():
    source = inspect.getsource(map_module)
    assert "from .mapview import MapView" in source and "from .app import" not in source


# add layer -----------------------------------------------------------------------------------
def test_add_layer_panel_adds_image_and_class_layers():
    m = demo_map()
    panel = AddLayerPanel(m)
    assert "LANDSAT/LC08/SAMPLE" in panel.asset.options and panel.asset.options == catalog_assets()
    panel.asset.value = "LANDSAT/LC08/SAMPLE"
    assert [w.value for w in panel.channels] == ["B4", "B3", "B2"] and panel.mode.value == "RGB"
    panel.mode.value = "1 band"
    panel.band.value = "B5"
    panel.palette.value = "viridis"
    panel.layer_name.value = "NIR <i>B5</i>"
    layer = panel.add()
    assert layer.name == "NIR <i>B5</i>" and layer.bands == ["B5"] and m.state.selected == layer.name
    assert m.layers[-1] is layer and layer.visible
    lo, hi = layer.vmin[0], layer.vmax[0]
    assert 0 < lo < hi  # the 2-98 % default stretch of 16-bit DNs
    panel.asset.value = RULES_ID
    assert panel.classes and not panel.range_box.visible
    overlay = panel.add()
    assert overlay.kind == "classes" and overlay.classes.name(2) == "vegetation"
    assert vis_params("RGB", ["B4", "B3", "B2"], "B5", "viridis", 1, 2) == {"bands": ["B4", "B3", "B2"], "min": 1.0,
                                                                          "max": 2.0}


# the demo's prediction-vs-truth pair ---------------------------------------------------------
def test_demo_pairs_layers_that_share_the_rule_class_table():
    mapping = majority_relabel(viewer.Image(KMEANS_ID), viewer.Image(RULES_ID))
    assert mapping == {0: 3, 1: 2, 2: 2, 3: 2}  # cluster 0 is mostly cloud, the others vegetation
    m = demo_map()
    pred, truth = m.state.layer(PREDICTION), m.state.layer(TRUTH)
    assert pred.classes.to_list() == truth.classes.to_list()
    rules = viewer.Image(RULES_ID)
    cmp = compare_masks(pred.image, truth.image, rules.native_grid(), Classes.from_band(rules.bands[0]))
    iou = {c["name"]: c["iou"] for c in cmp.per_class}
    assert iou["vegetation"] > 0.8 and 0.3 < iou["cloud"] < 0.6 and iou["water"] == 0
    # the relabelled prediction equals the stored clusters mapped pixel by pixel
    k = rasterio.open(ASSETS / "landsat8" / "classes_kmeans.tif").read(1)
    got = viewer.data.computePixels({"expression": pred.image, "fileFormat": "NUMPY_NDARRAY",
                                     "grid": rules.native_grid().to_dict()})
    values = got[pred.image.bands[0].name] if got.dtype.names else got
    assert np.array_equal(np.asarray(values).reshape(k.shape), np.vectorize(mapping.get)(k))


# in the browser ------------------------------------------------------------------------------
def _open(chromium, base_url: str, width: int = 1280, height: int = 800, block_web: bool = False):
    from test_ui_browser import App

    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    if block_web:
        page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
    app = App(page, base_url)
    app.open()
    return context, app


_RANGES_JS = """() => {
  for (const d of Bokeh.documents) for (const m of d._all_models.values())
    if (m.x_range !== undefined && m.inner_width !== undefined)
      return [m.x_range.start, m.x_range.end, m.y_range.start, m.y_range.end, m.inner_width, m.inner_height];
}"""


def _aspect_error(app) -> float:
    x0, x1, y0, y1, w, h = app.page.evaluate(_RANGES_JS)
    return abs(((x1 - x0) / w) / ((y1 - y0) / h) - 1)


@pytest.mark.browser
@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_map_takes_most_of_the_window_and_the_side_panels_collapse(chromium, viewer_server, size):
    width, height = size
    context, app = _open(chromium, viewer_server, width, height)
    try:
        page = app.page
        box = app.map_box()
        assert box["width"] >= 0.5 * width and box["height"] >= 0.9 * height, box
        assert page.get_by_text("Legend of the current view").is_visible()
        assert page.get_by_text("Inspector", exact=True).is_visible()
        box = app.map_box()  # the user zooms in (the fitted first view is fitted again instead, see below)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -200)
        app.wait_for(lambda: "zoom=" in page.url and page.evaluate(_RANGES_JS)[1] - page.evaluate(_RANGES_JS)[0] > 0,
                     "a zoom")
        app.settle()
        page.wait_for_timeout(600)  # the scale recorded (every 200 ms)
        x0, x1, y0, y1, w, _ = page.evaluate(_RANGES_JS)
        scale, centre = (x1 - x0) / w, ((x0 + x1) / 2, (y0 + y1) / 2)
        for i in range(2):  # hide both panels: the map takes their room, without stretching
            page.locator(".viewer-panel-hide button").nth(i).click()
        app.wait_for(lambda: app.map_box()["width"] >= 0.9 * width, "the map widened")
        app.settle()
        assert _aspect_error(app) < 0.01
        # ... at the same centre and scale the user chose (more of the map around it), as web maps keep them
        app.wait_for(lambda: abs((lambda r: (r[1] - r[0]) / r[4])(page.evaluate(_RANGES_JS)) / scale - 1) < 1e-6,
                     "the scale kept")
        x0, x1, y0, y1, *_ = page.evaluate(_RANGES_JS)
        assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx(centre, abs=scale)
        assert not page.get_by_text("Legend of the current view").is_visible()
        page.locator(".viewer-panel-show button").nth(1).click()  # reopen the right panel
        app.wait_for(lambda: page.get_by_text("Legend of the current view").is_visible(), "legend back")
        app.wait_for(lambda: app.map_box()["width"] < 0.9 * width, "the map narrowed")
        app.settle()
        assert _aspect_error(app) < 0.01
        app.assert_no_errors()
    finally:
        context.close()


@pytest.mark.browser
def test_a_narrow_window_folds_the_side_panels_and_fits_the_scene_in_the_map(chromium, viewer_server):
    """At 800 x 600 the two open panels left the map 100 px wide, the scene a thumbnail in it."""
    from viewer.ui.figure import FIT_PADDING

    state = demo_map().state
    x0, y0, x1, y1 = state.layer_extent(state.fit_target)
    context = chromium.new_context(viewport={"width": 800, "height": 600})
    try:
        page = context.new_page()
        page.goto(viewer_server)
        page.locator(".viewer-panel-show button").nth(1).wait_for(timeout=60000)  # both panels folded
        assert not page.get_by_text("Legend of the current view").is_visible()
        page.wait_for_function("""() => { for (const d of Bokeh.documents) for (const m of d._all_models.values())
                                   if (m.x_range !== undefined && m.inner_width > 500) return true; return false; }""",
                               timeout=30000)
        want = (1 + 2 * FIT_PADDING) * max(x1 - x0, y1 - y0)  # the padded extent's longer side, in metres
        deadline = time.time() + 20
        while True:
            rx0, rx1, ry0, ry1, w, h = page.evaluate(_RANGES_JS)
            fitted = max((x1 - x0) * (1 + 2 * FIT_PADDING) / w, (y1 - y0) * (1 + 2 * FIT_PADDING) / h)
            if abs((rx1 - rx0) / w / fitted - 1) < 1e-3 or time.time() > deadline:
                break
            page.wait_for_timeout(200)
        assert w >= 500 and abs((rx1 - rx0) / w / fitted - 1) < 1e-3, (w, (rx1 - rx0) / w, fitted, want)
        assert ((rx0 + rx1) / 2, (ry0 + ry1) / 2) == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2), abs=fitted)
    finally:
        context.close()


@pytest.mark.browser
def test_legend_shows_layers_in_view_only_and_no_zero_rows(chromium, viewer_server):
    context, app = _open(chromium, viewer_server)
    try:
        page = app.page
        titles = page.locator(".viewer-legend-title").all_inner_texts()
        assert any("Landsat 8 true colour" in t for t in titles)
        assert not any("Sentinel-2" in t for t in titles)  # the Sentinel-2 scene is far away
        rows = [t for t in page.get_by_role("button", name=re.compile(r" (native|screen) px")).all_inner_texts()]
        assert rows and all(not re.search(r"— 0 (native |screen )?px", t) for t in rows)
        assert all(re.search(r"— [\d,]+ (native|screen) px", t) for t in rows)
        # the prediction (k-means as rule classes) has no "other" or "water" pixel: no such rows
        card = app.card(f"{PREDICTION} · classes")
        card.get_by_text(f"{PREDICTION} · classes").click()
        card.locator("input[type=checkbox]").first.check()
        page.locator(".viewer-legend-title", has_text=PREDICTION).first.wait_for(timeout=20000)
        count = lambda name: page.get_by_role("button", name=re.compile(rf"^{name} — [\d,]+ native px")).count()  # noqa
        app.wait_for(lambda: count("vegetation") == 2 and count("cloud") == 2, "the prediction's class rows")
        app.settle()
        assert count("other") == 1 and count("water") == 1  # the truth's rows only
        app.assert_no_errors()
    finally:
        context.close()


@pytest.mark.browser
def test_add_layer_card_adds_a_layer_whose_tiles_have_pixels(chromium, viewer_server):
    context, app = _open(chromium, viewer_server)
    try:
        page = app.page
        before = {TILE.search(r.url).group(1) for r in app.tiles}
        card = page.locator(".viewer-add-layer")
        card.get_by_text("Add a layer from the catalog").click()
        card.locator("select").first.select_option("LANDSAT/LC08/SAMPLE")
        card.get_by_text("1 band", exact=True).click()
        band, palette = card.locator("select").nth(4), card.locator("select").nth(5)
        band.select_option("B5")
        palette.select_option("viridis")
        name = card.locator("input[type=text]").last
        name.fill("NIR <b>B5</b>")
        name.press("Enter")
        card.get_by_role("button", name="Add layer").click()
        page.locator(".viewer-legend-title", has_text="NIR <b>B5</b> · B5").first.wait_for(timeout=30000)
        app.wait_for(lambda: {TILE.search(r.url).group(1) for r in app.tiles} - before, "the new layer's tiles")
        app.settle()
        new = [r for r in app.tiles if TILE.search(r.url).group(1) not in before and r.status == 200]
        drawn = 0
        for r in new:
            rgba = np.asarray(PILImage.open(io.BytesIO(r.body())).convert("RGBA")).astype(int)
            opaque = rgba[rgba[..., 3] > 0]
            if len(opaque):
                drawn += 1
                assert (np.ptp(opaque[:, :3], axis=1) > 20).mean() > 0.5  # viridis colours, not grey
        assert drawn >= 2
        assert "viridis" in page.locator(".viewer-legend-title", has_text="NIR").locator("xpath=..").first.inner_text()
        app.assert_no_errors()
    finally:
        context.close()


@pytest.mark.browser
def test_online_basemap_without_network_shows_a_notice(chromium, viewer_server):
    context, app = _open(chromium, viewer_server, block_web=True)
    try:
        page = app.page
        notice = page.get_by_text(re.compile("did not load"))
        assert notice.count() == 0
        page.locator(".viewer-panel-left select").first.select_option("OpenStreetMap")
        notice.first.wait_for(timeout=20000)
        assert "OpenStreetMap" in notice.first.inner_text() and "Offline (graticule)" in notice.first.inner_text()
        page.locator(".viewer-panel-left select").first.select_option("Offline (graticule)")
        notice.first.wait_for(state="hidden", timeout=20000)
    finally:
        context.close()


@pytest.mark.browser
def test_busy_text_and_no_stale_tooltip_after_a_reorder(chromium, viewer_server):
    from test_ui_browser import App

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f if isinstance(f, str) else "")))
    app = App(page, viewer_server).open()
    try:
        assert not page.get_by_text(BUSY_TEXT).is_visible()  # idle: nothing that looks like a control
        assert page.locator(".pn-loading, .bk-spinner").count() == 0
        busy = page.evaluate("""() => { for (const d of Bokeh.documents) for (const m of d._all_models.values())
                                  if (m.css_classes && m.css_classes.includes('viewer-busy')) return m.id; }""")
        seen = len(frames)
        box = app.map_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 300)  # a zoom: the view figures are recomputed, the text shows meanwhile
        shown = lambda v: [f for f in frames[seen:]  # noqa: E731
                           if '"id":"%s"},"attr":"visible","new":%s' % (busy, v) in f]
        app.wait_for(lambda: shown("true") and shown("false"), "the busy text shown, then hidden")
        app.settle()
        assert not page.get_by_text(BUSY_TEXT).is_visible()
        up = app.card("Landsat 8 true colour · image").get_by_role("button", name="▲").first
        up.hover()
        page.wait_for_timeout(800)
        up.click()  # the card moves up; the pointer is now over another card's buttons
        page.wait_for_timeout(1000)
        page.mouse.move(640, 400, steps=5)
        app.wait_for(lambda: page.locator("body > .bk-Tooltip").filter(
            has_text="draw above").count() == 0 or not page.locator("body > .bk-Tooltip").first.is_visible(),
            "the tooltip gone")
        app.assert_no_errors()
    finally:
        context.close()


@pytest.mark.browser
def test_compare_card_shows_iou_of_the_demo_pair(chromium, viewer_server):
    context, app = _open(chromium, viewer_server)
    try:
        page = app.page
        card = page.locator(".viewer-compare")
        card.get_by_text("Prediction vs truth (IoU in view)").click()
        summary = card.get_by_text(re.compile(r"mean IoU"))
        summary.first.wait_for(timeout=40000)
        assert re.search(r"accuracy 0\.\d+ · mean IoU 0\.\d+", summary.first.inner_text())
        assert card.get_by_text(re.compile(rf"{re.escape(PREDICTION)} \(prediction\) vs {TRUTH} \(truth\)")).count()
        app.assert_no_errors()
    finally:
        context.close()


def test_inspector_lists_layers_outside_the_point_on_one_line():
    from viewer.ui.inspector import render_html

    m = demo_map()
    x, y = lonlat_to_mercator(-87.4, 30.72)
    result = m.view.inspector.inspect(x, y)
    text = render_html(result)
    assert text.count("class='viewer-inspect-layer'") == len([l for l in result["layers"] if l["covered"]]) == 3
    assert re.search(r"no data here \(outside the layer\)</i>: Sentinel-2 true colour</div>$", text)
