"""Region panel in Chromium (issue 11): a box drawn on the served map, the panel's numbers against
Image.reduceRegion in Python, the region's downloads decoded, and the view histogram."""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

import viewer
from viewer.core.region_stats import region_comparison, region_export, region_request
from viewer.ui.basemaps import lonlat_to_mercator
from viewer.ui.charts import VIEW_CHART, layer_image
from viewer.ui.demo import PREDICTION, TRUTH, demo_map
from viewer.ui.region_panel import HISTOGRAM_CARD, REGION_CARD
from viewer.ui.region_tool import BOX_SOURCE, POLY_SOURCE, box_geometry, polygon_geometry

LANDSAT_LAYER = "Landsat 8 true colour"
SCALE = 60
SHOTS = Path(os.environ.get("VIEWER_SHOTS", "/tmp"))  # screenshots (docs/ keeps copies)


@pytest.fixture
def page(chromium, viewer_server):
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.goto(viewer_server)
    page.get_by_text(REGION_CARD, exact=True).first.wait_for(timeout=60000)
    yield page
    context.close()


def wait_for(page, predicate, what: str, timeout: float = 30.0):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(150)


def draw_box(page, lon0: float, lat0: float, lon1: float, lat1: float) -> tuple[float, float, float, float]:
    """A box as the box edit tool leaves it (centre, width, height in Web Mercator), set through BokehJS."""
    x0, y0 = lonlat_to_mercator(lon0, lat0)
    x1, y1 = lonlat_to_mercator(lon1, lat1)
    box = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
    page.evaluate("""([name, b]) => {
        const src = Bokeh.documents[0].get_model_by_name(name);
        src.data = {x: [b[0]], y: [b[1]], width: [b[2]], height: [b[3]]};
    }""", [BOX_SOURCE, list(box)])
    return box


def show_layer(page, name: str) -> None:
    """Expand the layer's card (header "<name> · classes") and tick its "visible" checkbox."""
    title = f"{name} · classes"
    card = page.locator(".card").filter(has=page.get_by_text(title)).first
    card.get_by_text(title).click()
    box = card.locator("input[type=checkbox]").first
    box.wait_for()
    box.check()


def cell_values(block) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for row in block.locator("tr[data-band]").all():
        cells = {}
        for td in row.locator("td[data-stat]").all():
            raw = td.get_attribute("data-value")
            cells[td.get_attribute("data-stat")] = None if raw == "none" else float(raw)
        out[row.get_attribute("data-band")] = cells
    return out


def download(page, label: str, filename: str) -> bytes:
    with page.expect_download(timeout=60000) as info:
        page.get_by_role("button", name=label).click()
    assert info.value.suggested_filename == filename
    return Path(info.value.path()).read_bytes()


def test_drawn_box_panel_equals_reduce_region_and_exports(page):
    show_layer(page, PREDICTION)  # the prediction is hidden in the demo; shown, the pair is scored
    box = draw_box(page, -87.45, 30.70, -87.40, 30.75)
    page.get_by_text(REGION_CARD, exact=True).first.click()
    scale_input = page.locator(".viewer-region-scale-input input")
    scale_input.fill(str(SCALE))
    scale_input.press("Enter")
    block = page.locator(f".viewer-region-layer[data-layer='{LANDSAT_LAYER}']")
    wait_for(page, lambda: page.locator(f".viewer-region-scale[data-scale='{float(SCALE)!r}']").count()
             and block.count() and page.locator(".viewer-region-pair").count(), "the region figures")
    assert page.locator(".notyf__toast").count() == 0, page.locator(".notyf__toast").all_inner_texts()

    geometry = box_geometry(*box)
    m = demo_map()
    image = layer_image(m.layer(LANDSAT_LAYER))[0]
    shown = cell_values(block)
    assert list(shown) == ["B4", "B3", "B2"]
    for stat in ("count", "mean", "min", "max", "stdDev"):
        expected = image.reduceRegion(getattr(viewer.Reducer, stat)(), geometry, SCALE)
        assert {band: cells[stat] for band, cells in shown.items()} == expected, stat
    assert shown["B4"]["count"] > 5000

    truth_image = layer_image(m.layer(TRUTH))[0]
    freq = truth_image.reduceRegion(viewer.Reducer.frequencyHistogram(), geometry, SCALE)
    truth_block = page.locator(f".viewer-region-layer[data-layer='{TRUTH}']")
    counts = {row.get_attribute("data-class"): int(float(row.locator("td[data-stat='count']").get_attribute(
        "data-value"))) for row in truth_block.locator(".viewer-region-classes tr[data-class]").all()}
    assert {k: v for k, v in counts.items() if v} == freq[truth_image.bands[0].name]

    cmp = region_comparison(layer_image(m.layer(PREDICTION))[0], truth_image, geometry, SCALE,
                            classes=m.layer(TRUTH).effective_classes())
    scores = page.locator(".viewer-region-scores tr[data-class]").all()
    assert len(scores) == len(cmp.per_class)
    for row, c in zip(scores, cmp.per_class):
        iou = row.locator("td").nth(1).inner_text()
        assert iou == ("—" if c["iou"] is None else f"{100 * c['iou']:.1f} %")

    # downloads: the chosen layer within the region, and the request reproducing them
    page.locator(".viewer-region-export select").select_option(LANDSAT_LAYER)
    page.wait_for_timeout(300)
    tif = download(page, "GeoTIFF of the region", "Landsat_8_true_colour_region.tif")
    npy = download(page, "NPY of the region", "Landsat_8_true_colour_region.npy")
    request = json.loads(download(page, "computePixels request JSON", "Landsat_8_true_colour_region.json"))
    assert request["layer"] == LANDSAT_LAYER
    assert viewer.data.computePixels(request["request"]) == tif == region_export(image, geometry, SCALE, "GEO_TIFF")
    assert npy == region_export(image, geometry, SCALE, "NPY")
    assert request["request"] == json.loads(json.dumps(region_request(image, geometry, SCALE, "GEO_TIFF")))
    arr = np.load(io.BytesIO(npy))
    with rasterio.open(io.BytesIO(tif)) as ds:
        b4, valid = ds.read(1), ds.read_masks(1) > 0
    assert np.array_equal(arr["B4"], b4)
    assert int(valid.sum()) == shown["B4"]["count"]
    assert b4[valid].astype(float).mean() == shown["B4"]["mean"]
    assert b4[valid].max() == shown["B4"]["max"]

    block.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "region_panel.png"))


def test_view_histogram_follows_the_view(page):
    page.get_by_text(HISTOGRAM_CARD, exact=True).first.click()

    def bars():
        return page.evaluate("""(name) => {
            const doc = Bokeh.documents[0];
            const b = doc.get_model_by_name(name + '-bars'), m = doc.get_model_by_name(name + '-marks');
            if (!b || !m) { return null; }
            const total = b.data.top.reduce((a, v) => a + v, 0);
            return {total, n: b.data.top.length, marks: Array.from(m.data.x), left0: b.data.left[0]};
        }""", VIEW_CHART)

    first = wait_for(page, lambda: (lambda r: r if r and r["total"] > 0 else None)(bars()), "the view histogram")
    layer = demo_map().layer(LANDSAT_LAYER)  # the demo's selected layer
    assert sorted(first["marks"]) == sorted(float(v) for pair in zip(layer.vmin, layer.vmax) for v in pair)
    assert first["n"] == 3 * 64
    page.get_by_text("valid pixels of the view").first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "view_histogram.png"))
    # zoom into the scene's south-west corner: the chart is computed again for the new view
    canvas = page.locator("canvas").first.bounding_box()
    page.mouse.move(canvas["x"] + canvas["width"] * 0.3, canvas["y"] + canvas["height"] * 0.7)
    for _ in range(4):
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(150)
    second = wait_for(page, lambda: (lambda r: r if r and r["total"] > 0 and r["total"] != first["total"]
                                     else None)(bars()), "the histogram of the zoomed view")
    assert second["total"] != first["total"]
    page.screenshot(path=str(SHOTS / "view_histogram_zoomed.png"))


def test_box_edit_tool_drag_draws_the_region(page):
    page.locator("[title^='Draw a region (box)']").first.click()  # the box edit tool in the map's toolbar
    c = page.locator("canvas").first.bounding_box()
    x0, y0 = c["x"] + c["width"] * 0.35, c["y"] + c["height"] * 0.35
    page.keyboard.down("Shift")  # shift+drag draws a box
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 60, y0 + 40, steps=5)
    page.mouse.move(x0 + 120, y0 + 90, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    data = wait_for(page, lambda: (lambda d: d if d and len(d["x"]) == 1 else None)(page.evaluate(
        "(name) => Bokeh.documents[0].get_model_by_name(name).data", BOX_SOURCE)), "the drawn box")
    box = tuple(float(data[k][0]) for k in ("x", "y", "width", "height"))
    assert box[2] > 0 and box[3] > 0
    page.get_by_text(REGION_CARD, exact=True).first.click()
    block = page.locator(f".viewer-region-layer[data-layer='{LANDSAT_LAYER}']")
    wait_for(page, lambda: block.count(), "the region figures")
    scale = float(page.locator(".viewer-region-scale").get_attribute("data-scale"))
    image = layer_image(demo_map().layer(LANDSAT_LAYER))[0]
    expected = image.reduceRegion(viewer.Reducer.mean(), box_geometry(*box), scale)
    assert {band: cells["mean"] for band, cells in cell_values(block).items()} == expected
    page.locator(".viewer-region-layer").last.scroll_into_view_if_needed()  # the histograms below the tables
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "region_drawn.png"))

    # the polygon tool (Bokeh 3.9): press and hold for the first vertex, click the next, press and hold the last
    page.locator("[title^='Draw a region (polygon)']").first.click()

    def at(fx: float, fy: float) -> None:
        page.mouse.move(c["x"] + c["width"] * fx, c["y"] + c["height"] * fy)

    at(0.40, 0.40)
    page.mouse.down()
    page.wait_for_timeout(450)
    page.mouse.up()
    for fx, fy in ((0.55, 0.40), (0.50, 0.60)):
        at(fx, fy)
        page.mouse.down()
        page.mouse.up()
        page.wait_for_timeout(400)
    at(0.42, 0.58)
    page.mouse.down()
    page.wait_for_timeout(450)
    page.mouse.up()
    poly = wait_for(page, lambda: (lambda d: d if d["xs"] and len(d["xs"][0]) >= 4 else None)(page.evaluate(
        "(name) => Bokeh.documents[0].get_model_by_name(name).data", POLY_SOURCE)), "the drawn polygon")
    assert page.evaluate("(name) => Bokeh.documents[0].get_model_by_name(name).data.x.length", BOX_SOURCE) == 0
    geometry = polygon_geometry(poly["xs"][0], poly["ys"][0])
    expected = image.reduceRegion(viewer.Reducer.count(), geometry, scale)
    wait_for(page, lambda: {band: cells["count"] for band, cells in cell_values(block).items()} == expected,
             "the polygon's figures")
