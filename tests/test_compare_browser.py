"""Compare in Chromium: the swipe map shows each layer on its side of the divider (and the divider moves),
the compare panel's IoU text is compare_masks's on the view's grid (also after a pan), and the time
slider changes the collection layer's tiles; a click charts the point's values (the files' values)."""
from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image as PILImage
from pyproj import Transformer

import viewer
from viewer.core.class_stats import compare_masks
from viewer.core.classes import Classes
from viewer.core.grid import Grid, parse_crs

from compare_app import COLLECTION, PREDICTION_COLORS, RULES, TRUE_COLOUR, prediction
from conftest import _free_port, served

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets" / "landsat8_224"
SHOTS = Path(os.environ.get("VIEWER_SHOTS", "/tmp"))
RULE_COLORS = {c["id"]: c["color"] for c in Classes.from_band(viewer.Image(RULES).bands[0]).to_list()}


@pytest.fixture(scope="module")
def compare_server(tmp_path_factory):
    port = _free_port()
    env = dict(os.environ, VIEWER_STATE_DIR=str(tmp_path_factory.mktemp("state")), PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT))
    env.pop("VIEWER_TILE_URL", None)
    log = tmp_path_factory.mktemp("server") / "compare_app.log"
    url = f"http://127.0.0.1:{port}/"
    with served([sys.executable, str(ROOT / "tests" / "compare_app.py"), str(port)], url + "split", log, env,
                "the compare app", cwd=ROOT):
        yield url


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.tiles = []
    pg.on("response", lambda r: pg.tiles.append(r) if "/tiles/" in r.url else None)
    yield pg
    context.close()


#: Map units per screen pixel, x and y, of every map figure in the page.
SCALES_JS = """() => {
  const out = [];
  for (const d of Bokeh.documents) for (const m of d._all_models.values()) {
    if (m.type == 'Figure' && m.x_range && m.inner_width > 100 && m.document != null) {
      out.push((m.x_range.end - m.x_range.start) / m.inner_width, (m.y_range.end - m.y_range.start) / m.inner_height);
    }
  }
  return out;
}"""


def settle(pg, quiet_ms: int = 800, timeout: float = 30.0) -> None:
    """Wait until no tile response arrived for ``quiet_ms``."""
    deadline, last = time.time() + timeout, -1
    while time.time() < deadline:
        n = len(pg.tiles)
        pg.wait_for_timeout(quiet_ms)
        if n == len(pg.tiles) == last:
            return
        last = len(pg.tiles)


def wait_for(pg, predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pg.wait_for_timeout(100)


def shot(pg, box: dict, name: str) -> np.ndarray:
    pg.screenshot(path=str(SHOTS / name))
    png = pg.screenshot(clip=box)
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("RGB")).astype(int)


def data_left_edge(rgb: np.ndarray) -> int:
    """The first column where many pixels are vegetation in either colour (the cloud grey is too close to the
    map's background to tell apart)."""
    colours = [RULE_COLORS[2], PREDICTION_COLORS[2]]
    hit = np.zeros(rgb.shape[:2], bool)
    for c in colours:
        want = np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)])
        hit |= np.abs(rgb - want).max(axis=-1) <= 6
    cols = np.flatnonzero(hit.mean(axis=0) > 0.3)
    return int(cols[0]) if cols.size else -1


def share(rgb: np.ndarray, color: str, tol: int = 6) -> float:
    want = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(rgb - want).max(axis=-1) <= tol).mean())


# swipe -------------------------------------------------------------------------------------
def test_swipe_shows_each_stack_on_its_side_and_the_divider_moves(page, compare_server):
    page.goto(compare_server + "split")
    slider = page.locator(".viewer-swipe-slider").first
    slider.wait_for(timeout=60000)
    settle(page)
    grid_box = page.locator(".viewer-swipe-slider").first.bounding_box()
    x0, width = grid_box["x"], grid_box["width"]
    y = grid_box["y"] + 120  # inside the map's frame, below the labels

    def strip(a: float, b: float, img_box: dict, img: np.ndarray) -> np.ndarray:
        c0, c1 = int(width * a) - int(img_box["x"] - x0), int(width * b) - int(img_box["x"] - x0)
        return img[:, c0:c1]

    box = {"x": x0, "y": y, "width": width, "height": 400}
    before = shot(page, box, "compare_swipe_50.png")
    left, right = strip(0.30, 0.47, box, before), strip(0.53, 0.70, box, before)
    veg_truth, veg_pred = RULE_COLORS[2], PREDICTION_COLORS[2]
    assert share(left, veg_truth) > 0.2 and share(left, veg_pred) < 0.001  # the truth left of the divider
    assert share(right, veg_pred) > 0.2 and share(right, veg_truth) < 0.001  # the prediction right of it
    # drag the divider line itself from the middle to 80 %
    grip = page.locator(".viewer-swipe-grip").first.bounding_box()
    assert abs(grip["x"] + grip["width"] / 2 - (x0 + width * 0.5)) < 3
    handle_y = y + 200
    page.mouse.move(grip["x"] + grip["width"] / 2, handle_y)
    page.mouse.down()
    page.mouse.move(x0 + width * 0.65, handle_y, steps=5)
    page.mouse.move(x0 + width * 0.8, handle_y, steps=5)
    page.mouse.up()
    page.wait_for_timeout(500)
    after = shot(page, box, "compare_swipe_80.png")
    moved = strip(0.53, 0.75, box, after)
    assert share(moved, veg_truth) > 0.2 and share(moved, veg_pred) < 0.001  # now left of the divider
    assert share(strip(0.85, 0.95, box, after), veg_truth) < 0.001
    grip = page.locator(".viewer-swipe-grip").first.bounding_box()
    assert abs(grip["x"] + grip["width"] / 2 - (x0 + width * 0.8)) < 3  # the line is where it was dropped
    # the slider above the map moves it too: its handle, from 80 % back to 40 %
    handle_y = grid_box["y"] + grid_box["height"] / 2
    page.mouse.move(x0 + width * 0.8, handle_y)
    page.mouse.down()
    page.mouse.move(x0 + width * 0.4, handle_y, steps=8)
    page.mouse.up()
    page.wait_for_timeout(500)
    back = shot(page, box, "compare_swipe_40.png")
    right_part = strip(0.45, 0.75, box, back)
    assert share(right_part, veg_pred) > 0.2 and share(right_part, veg_truth) < 0.001
    assert share(strip(0.30, 0.38, box, back), veg_truth) > 0.2
    after = back
    # a pan on the right side moves both sides (one view)
    page.mouse.move(x0 + width * 0.9, y + 200)
    page.mouse.down()
    page.mouse.move(x0 + width * 0.9 - 150, y + 200, steps=8)
    page.mouse.up()
    settle(page)
    panned = shot(page, box, "compare_swipe_panned.png")
    assert abs(data_left_edge(after) - data_left_edge(panned) - 150) < 8  # both sides moved 150 px left
    left_now, right_now = strip(0.10, 0.37, box, panned), strip(0.43, 0.58, box, panned)
    assert share(left_now, veg_pred) < 0.001 and share(left_now, veg_truth) > 0.1
    assert share(right_now, veg_truth) < 0.001 and share(right_now, veg_pred) > 0.1
    # side by side: both maps whole
    swipe_scale = page.evaluate(SCALES_JS)[0]
    page.get_by_role("button", name="side by side").click()
    page.wait_for_timeout(800)
    settle(page)
    side = shot(page, {"x": x0, "y": y, "width": width, "height": 400}, "compare_side_by_side.png")
    assert share(side[:, : int(width * 0.48)], veg_truth) > 0.05
    assert share(side[:, int(width * 0.52):], veg_pred) > 0.05
    # ... at the scale of the swipe map, square pixels (Bokeh kept the ranges of the twice-wider frame:
    # pixels 2.4x narrower than tall)
    wait_for(page, lambda: len({round(r, 6) for r in page.evaluate(SCALES_JS)}) == 1, "one scale on both axes")
    assert page.evaluate(SCALES_JS)[0] == pytest.approx(swipe_scale, rel=1e-6)


# compare panel -----------------------------------------------------------------------------
def panel_figures(page) -> tuple[dict, dict[int, str]]:
    summary = page.locator(".viewer-cmp-summary").first
    grid = json.loads(summary.get_attribute("data-grid"))
    rows = page.locator(".viewer-cmp-scores tr[data-class-id]")
    scores = {int(rows.nth(i).get_attribute("data-class-id")):
              tuple(rows.nth(i).locator(f".viewer-cmp-{k}").inner_text() for k in ("iou", "precision", "recall"))
              for i in range(rows.count())}
    return grid, scores


def grid_of(d: dict) -> Grid:
    t = d["affineTransform"]
    return Grid(parse_crs(d["crsCode"]), Affine(t["scaleX"], t["shearX"], t["translateX"], t["shearY"],
                                                t["scaleY"], t["translateY"]),
                d["dimensions"]["width"], d["dimensions"]["height"])


def expected_ious(grid: Grid) -> dict[int, tuple[str, str, str]]:
    truth = viewer.Image(RULES)
    cmp = compare_masks(prediction(), truth, grid, Classes.from_band(truth.bands[0]))
    text = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    return {c["id"]: (text(c["iou"]), text(c["precision"]), text(c["recall"])) for c in cmp.per_class}


def test_compare_panel_iou_is_compare_masks_on_the_view(page, compare_server):
    page.goto(compare_server + "compare")
    page.locator(".viewer-cmp-iou").first.wait_for(timeout=60000)
    settle(page)
    grid, ious = panel_figures(page)
    assert ious == expected_ious(grid_of(grid))
    assert set(ious) == {0, 1, 2, 3} and all(v[0] != "—" for k, v in ious.items() if k in (2, 3))
    summary = page.locator(".viewer-cmp-summary").first.inner_text()
    assert summary.startswith("prediction: k-means relabelled (prediction) vs truth: rule classes (truth)")
    page.screenshot(path=str(SHOTS / "compare_panel.png"))
    # pan and zoom: the figures follow the view
    box = page.locator("canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
    page.mouse.move(cx, cy)
    for _ in range(3):
        page.mouse.wheel(0, -240)
        page.wait_for_timeout(150)
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 60, steps=6)
    page.mouse.up()
    wait_for(page, lambda: panel_figures(page)[0] != grid, "new figures after the pan")
    settle(page)
    page.wait_for_timeout(1000)
    grid2, ious2 = panel_figures(page)
    assert grid_of(grid2).bounds != grid_of(grid).bounds
    assert ious2 == expected_ious(grid_of(grid2))
    page.screenshot(path=str(SHOTS / "compare_panel_zoomed.png"))


# time slider and time series ---------------------------------------------------------------
def single_tokens() -> list[str]:
    from viewer.ui.map import Map

    m = Map()
    ids = [f"{COLLECTION}/LC08_224077_20200518", f"{COLLECTION}/LC08_224078_20200518"]
    return [m.add_layer(viewer.Image(i), TRUE_COLOUR, f"scene {k}").token for k, i in enumerate(ids)]


def rasterio_value(path: Path, x: float, y: float) -> str:
    with rasterio.open(path) as ds:
        ux, uy = Transformer.from_crs("EPSG:3857", ds.crs, always_xy=True).transform(x, y)
        row, col = ds.index(ux, uy)
        if not (0 <= row < ds.height and 0 <= col < ds.width):
            return "—"
        v = ds.read(1, window=((row, row + 1), (col, col + 1)))[0, 0]
        return "—" if v == ds.nodata else str(int(v))


def test_time_slider_changes_the_tiles_and_a_click_charts_the_files_values(page, compare_server):
    first, second = single_tokens()
    page.goto(compare_server + "time")
    page.locator("canvas").first.wait_for(timeout=60000)
    settle(page)
    assert page.tiles and all(f"/tiles/{first}/" in r.url for r in page.tiles)
    box = page.locator("canvas").first.bounding_box()
    before = shot(page, box, "compare_time_step1.png")
    n = len(page.tiles)
    handle = page.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    wait_for(page, lambda: any(f"/tiles/{second}/" in r.url for r in page.tiles[n:]), "tiles of the second image")
    settle(page)
    assert all(r.status == 200 for r in page.tiles[n:])
    after = shot(page, box, "compare_time_step2.png")
    assert float((np.abs(after - before).max(axis=-1) > 30).mean()) > 0.02  # the north end is gone, the south drawn
    # click the middle of the map: the series table shows the files' values
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    table = page.locator(".viewer-series").first
    table.wait_for(timeout=30000)
    x, y = float(table.get_attribute("data-x")), float(table.get_attribute("data-y"))
    rows = table.locator("tr")
    assert rows.count() == 3
    for i, scene in enumerate(("224077", "224078")):
        cells = rows.nth(i + 1).locator("td").all_inner_texts()
        assert cells[:2] == ["2020-05-18", f"LC08_{scene}_20200518"]
        assert cells[2:] == [rasterio_value(ASSETS / f"LC08_{scene}_20200518_{b}.tif", x, y)
                             for b in ("B2", "B3", "B4")]
    page.screenshot(path=str(SHOTS / "compare_time_series.png"))


def test_the_compare_card_opens_a_split_view_in_the_maps_place(page, compare_server):
    page.goto(compare_server + "compare")
    page.locator(".viewer-cmp-iou").first.wait_for(timeout=60000)
    settle(page)
    page.locator(".viewer-split-toggle button").first.click()
    slider = page.locator(".viewer-swipe-slider").first
    slider.wait_for(timeout=30000)
    settle(page)
    b = slider.bounding_box()
    box = {"x": b["x"], "y": b["y"] + 120, "width": b["width"], "height": 400}
    img = shot(page, box, "compare_split_in_page.png")
    w = img.shape[1]
    left, right = img[:, int(w * 0.2): int(w * 0.47)], img[:, int(w * 0.53): int(w * 0.8)]
    assert share(left, RULE_COLORS[2]) > 0.2 and share(left, PREDICTION_COLORS[2]) < 0.001  # truth left
    assert share(right, PREDICTION_COLORS[2]) > 0.2 and share(right, RULE_COLORS[2]) < 0.001  # prediction right
    page.locator(".viewer-split-toggle button").first.click()
    wait_for(page, lambda: page.locator(".viewer-swipe-slider").count() == 0, "the split view to close")
    settle(page)
    assert page.locator(".viewer-split-toggle button").first.inner_text() == "Open split view"


def test_show_difference_adds_the_disagreement_layer(page, compare_server):
    page.goto(compare_server + "compare")
    page.locator(".viewer-cmp-iou").first.wait_for(timeout=60000)
    settle(page)
    before = {r.url.split("/tiles/")[1].split("/")[0] for r in page.tiles}
    n = len(page.tiles)
    page.get_by_role("button", name="Show difference").click()
    wait_for(page, lambda: any(r.url.split("/tiles/")[1].split("/")[0] not in before for r in page.tiles[n:]),
             "tiles of the difference layer")
    settle(page)
    new = [r for r in page.tiles[n:] if r.url.split("/tiles/")[1].split("/")[0] not in before]
    assert {r.status for r in new} == {200}
    rgba = [np.asarray(PILImage.open(io.BytesIO(r.body())).convert("RGBA")) for r in new]
    drawn = np.concatenate([t[t[..., 3] > 0][:, :3] for t in rgba])
    assert len(drawn) > 1000 and len({tuple(c) for c in drawn.tolist()}) == 1  # one colour: "disagree"
    page.screenshot(path=str(SHOTS / "compare_difference.png"))
