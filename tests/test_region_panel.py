"""Region panel figures (issue 11): equal to Image.reduceRegion, class areas, scores, exports, draw tools."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import rasterio
from bokeh.plotting import figure

import viewer
from viewer.core.class_stats import pixel_area
from viewer.core.region_stats import region_comparison, region_export, region_request, region_summary
from viewer.core.regions import region_grid
from viewer.core.stats import band_histograms
from viewer.ui.basemaps import lonlat_to_mercator
from viewer.ui.charts import ViewHistogram, histogram_columns, view_histogram
from viewer.ui.map import Map
from viewer.ui.region_panel import (AUTO_PIXELS, auto_scale, compute_region, export_bytes, region_html,
                                    request_json)
from viewer.ui.region_tool import RegionState, RegionTool, region_state, set_region, user_roi

RECT = viewer.Geometry.Rectangle([-87.45, 30.70, -87.40, 30.75])
TRIANGLE = viewer.Geometry.Polygon([[[-87.45, 30.70], [-87.40, 30.70], [-87.45, 30.75], [-87.45, 30.70]]])
LANDSAT = "LANDSAT/LC08/SAMPLE"
RULES = "VIEWER/SAMPLE_CLASSES/LC08_RULES"
KMEANS = "VIEWER/SAMPLE_CLASSES/LC08_KMEANS"
STATS = ("count", "mean", "min", "max", "stdDev", "histogram")


def region_pixels(image, geometry, scale):
    grid = region_grid(image, geometry, scale)
    req = {"grid": grid.to_dict(), "fileFormat": "NUMPY_NDARRAY"}
    return (viewer.data.computePixels({**req, "expression": image}),
            viewer.data.computePixels({**req, "expression": image.clip(geometry).mask()}))


def demo() -> Map:
    m = Map()
    img = viewer.Image(LANDSAT)
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3)
    m.add_layer(img.updateMask(cloud.Not()), {"bands": ["B4", "B3", "B2"], "min": [6000, 6800, 7700],
                                              "max": [10500, 10500, 11000]}, "clear <b>sky</b>")
    rules = viewer.Image(RULES)
    m.add_overlay(rules, "rules (truth)")
    # k-means clusters shown with the rule layer's class table: a prediction sharing its table
    m.add_overlay(viewer.Image(KMEANS), "k-means as prediction", classes=m.layer("rules (truth)").classes)
    m.add_mask_layer(cloud, "cloud mask", shown=False)
    return m


@pytest.mark.parametrize("geometry", [RECT, TRIANGLE], ids=["rectangle", "triangle"])
@pytest.mark.parametrize("scale", [30, 75])
def test_summary_is_reduce_region(geometry, scale):
    img = viewer.Image(LANDSAT).select(["B4", "B5", "BQA"])
    got = region_summary(img, geometry, scale)
    assert [b["band"] for b in got["bands"]] == ["B4", "B5", "BQA"] and got["classes"] is None
    for stat in STATS:
        expected = img.reduceRegion(getattr(viewer.Reducer, stat)(), geometry, scale)
        assert {b["band"]: b[stat] for b in got["bands"]} == expected, stat  # exactly the same numbers
    values, valid = region_pixels(img, geometry, scale)
    v = values["B5"][valid["B5"] > 0].astype(float)
    b5 = got["bands"][1]
    assert b5["count"] == v.size > 100 and b5["mean"] == pytest.approx(v.mean()) and b5["max"] == v.max()
    assert sum(b5["histogram"]["histogram"]) == v.size


def test_masked_pixels_and_empty_region():
    img = viewer.Image(LANDSAT)
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3)
    clear = img.select(["B4"]).updateMask(cloud.Not())
    n_all = region_summary(img.select(["B4"]), RECT, 30)["bands"][0]["count"]
    n_clear = region_summary(clear, RECT, 30)["bands"][0]["count"]
    assert 0 < n_clear < n_all
    outside = viewer.Geometry.Rectangle([10.0, 10.0, 10.01, 10.01])
    empty = region_summary(clear, outside, 30)["bands"][0]
    assert empty == {"band": "B4", "count": None, "mean": None, "min": None, "max": None, "stdDev": None,
                     "histogram": None}
    assert empty["count"] == clear.reduceRegion(viewer.Reducer.count(), outside, 30)["B4"]


def test_class_areas_are_frequency_histogram_times_pixel_area():
    rules = viewer.Image(RULES)
    got = region_summary(rules, TRIANGLE, 30)
    freq = rules.reduceRegion(viewer.Reducer.frequencyHistogram(), TRIANGLE, 30)["classification"]
    counts = {str(c["id"]): c["count"] for c in got["classes"] if c["count"]}
    assert counts == freq
    assert [c["name"] for c in got["classes"][:4]] == ["other", "water", "vegetation", "cloud"]
    area = pixel_area(got["grid"])
    total = sum(c["count"] for c in got["classes"])
    for c in got["classes"]:
        assert c["area_m2"] == pytest.approx(c["count"] * np.mean(area), rel=1e-3)
        assert c["percent"] == pytest.approx(100 * c["count"] / total)
    assert 800 < float(np.mean(area)) < 1000  # 30 m pixels in UTM, on the ellipsoid


def test_comparison_scores_match_numpy():
    truth, pred = viewer.Image(RULES), viewer.Image(KMEANS)
    cmp = region_comparison(pred, truth, TRIANGLE, 30)
    tv, tm = region_pixels(truth, TRIANGLE, 30)
    pv, pm = region_pixels(pred, TRIANGLE, 30)
    t, p = tv["classification"], pv[pred.bands[0].name]
    valid = (tm["classification"] > 0) & (pm[pred.bands[0].name] > 0)
    assert cmp.pixel_count == int(valid.sum()) > 1000
    for c in cmp.per_class:
        k = c["id"]
        tp = int(((t == k) & (p == k) & valid).sum())
        fp = int(((t != k) & (p == k) & valid).sum())
        fn = int(((t == k) & (p != k) & valid).sum())
        assert (c["true_positive"], c["false_positive"], c["false_negative"]) == (tp, fp, fn)
        assert c["iou"] == (tp / (tp + fp + fn) if tp + fp + fn else None)
        assert c["precision"] == (tp / (tp + fp) if tp + fp else None)
        assert c["recall"] == (tp / (tp + fn) if tp + fn else None)


@pytest.mark.parametrize("fmt", ["GEO_TIFF", "NPY"])
def test_request_json_reproduces_the_export(fmt):
    img = viewer.Image(LANDSAT).select(["B4", "B3"])
    data = region_export(img, TRIANGLE, 30, fmt)
    request = json.loads(json.dumps(region_request(img, TRIANGLE, 30, fmt)))  # through JSON text
    assert viewer.data.computePixels(request) == data
    values, valid = region_pixels(img, TRIANGLE, 30)
    if fmt == "NPY":
        arr = np.load(io.BytesIO(data))
        assert arr.dtype.names == ("B4", "B3")
        for band in ("B4", "B3"):
            inside = valid[band] > 0
            assert np.array_equal(arr[band][inside], values[band][inside])
            assert not arr[band][~inside].any()  # outside the triangle: zeros, as Earth Engine
    else:
        with rasterio.open(io.BytesIO(data)) as ds:
            grid = region_grid(img, TRIANGLE, 30)
            assert ds.crs.to_epsg() == 32616 and ds.transform == grid.transform
            assert (ds.width, ds.height) == (grid.width, grid.height)
            b4, mask = ds.read(1), ds.read_masks(1)
        inside = valid["B4"] > 0
        assert np.array_equal(mask > 0, inside)
        assert np.array_equal(b4[inside], values["B4"][inside])
        assert b4[inside].astype(float).mean() == img.reduceRegion(viewer.Reducer.mean(), TRIANGLE, 30)["B4"]


def test_panel_figures_are_reduce_region_of_each_visible_layer():
    m = demo()
    result = compute_region(m.state, RECT.getInfo(), 60)
    assert result["scale"] == 60
    names = [e["name"] for e in result["layers"]]
    assert names == ["clear <b>sky</b>", "rules (truth)", "k-means as prediction"]  # the hidden mask is left out
    clear = m.layer("clear <b>sky</b>")
    image = clear.vis_image()
    for stat in STATS:
        expected = image.reduceRegion(getattr(viewer.Reducer, stat)(), RECT, 60)
        assert {b["band"]: b[stat] for b in result["layers"][0]["summary"]["bands"]} == expected
    assert result["layers"][0]["marks"] == [("B4", 6000.0, 10500.0), ("B3", 6800.0, 10500.0),
                                             ("B2", 7700.0, 11000.0)]
    [cmp] = result["comparisons"]
    assert (cmp["prediction"], cmp["truth"]) == ("k-means as prediction", "rules (truth)")
    direct = region_comparison(viewer.Image(KMEANS), viewer.Image(RULES), RECT, 60)
    assert cmp["per_class"] == direct.per_class and cmp["mean_iou"] == direct.mean_iou
    page = region_html(result)
    assert "clear &lt;b&gt;sky&lt;/b&gt;" in page and "<b>sky" not in page
    mean_b4 = image.reduceRegion(viewer.Reducer.mean(), RECT, 60)["B4"]
    assert f"data-value='{mean_b4!r}'" in page


def test_map_region_api_and_auto_scale():
    m = demo()
    assert m.user_roi is None
    m.add_region(TRIANGLE)
    assert m.user_roi.getInfo() == TRIANGLE.getInfo()
    stats = m.region_stats(scale=45)
    b4 = m.layer("clear <b>sky</b>").vis_image().select(["B4"])
    assert stats["layers"][0]["summary"]["bands"][0]["mean"] == \
        b4.reduceRegion(viewer.Reducer.mean(), TRIANGLE, 45)["B4"]
    assert auto_scale(m.state, RECT.getInfo()) == 30.0  # small: the finest native resolution
    big = viewer.Geometry.Rectangle([-87.75, 30.55, -87.05, 31.05])
    s = auto_scale(m.state, big.getInfo())
    g = region_grid(viewer.Image(LANDSAT), big, s)
    assert s > 30 and g.width * g.height <= AUTO_PIXELS
    with pytest.raises(viewer.InvalidArgument, match="Polygon"):
        m.add_region(viewer.Geometry.Point([-87.4, 30.7]))


def test_export_helpers_use_the_panel_image():
    m = demo()
    layer = m.layer("rules (truth)")
    data = export_bytes(layer, RECT.getInfo(), 30, "NPY")
    req = request_json(layer, RECT.getInfo(), 30, "NPY")
    assert req["method"] == "data.computePixels" and req["layer"] == "rules (truth)"
    assert viewer.data.computePixels(json.loads(json.dumps(req))["request"]) == data
    arr = np.load(io.BytesIO(data))
    freq = viewer.Image(RULES).reduceRegion(viewer.Reducer.frequencyHistogram(), RECT, 30)["classification"]
    assert int((arr["classification"] == 2).sum()) == freq["2"]


def test_region_tool_box_polygon_and_python():
    region = RegionState()
    tool = RegionTool(region)
    fig = figure(x_axis_type="mercator", y_axis_type="mercator")
    tool.attach(fig)
    x0, y0 = lonlat_to_mercator(-87.45, 30.70)
    x1, y1 = lonlat_to_mercator(-87.40, 30.75)
    tool.box_source.data = {"x": [(x0 + x1) / 2], "y": [(y0 + y1) / 2], "width": [x1 - x0], "height": [y1 - y0]}
    assert region.source == "box"
    ring = region.geometry["coordinates"][0]
    assert np.allclose(ring, RECT.getInfo()["coordinates"][0])
    tool.poly_source.data = {"xs": [[x0, x1, x0]], "ys": [[y0, y0, y1]]}
    assert region.source == "polygon" and not tool.box_source.data["x"]  # the box gave way
    assert np.allclose(region.geometry["coordinates"][0], TRIANGLE.getInfo()["coordinates"][0])
    # the map figure rewrites its renderer list (a layer added): the region's glyphs come back
    fig.renderers = [r for r in fig.renderers if r not in tool._renderers]
    assert all(r in fig.renderers for r in tool._renderers)
    region.param.update(geometry=RECT.getInfo(), source="python")
    assert np.allclose(tool.poly_source.data["xs"][0], [x0, x1, x1, x0])
    tool.clear()
    assert region.geometry is None and tool.poly_source.data["xs"] == []


def test_region_state_per_map_and_user_roi():
    m1, m2 = demo(), Map()
    set_region(m1.state, RECT)
    assert user_roi(m1.state).getInfo() == RECT.getInfo() and user_roi(m2.state) is None
    assert region_state(m1.state) is region_state(m1.state)


def test_view_histogram_of_the_selected_layer():
    m = demo()
    m.state.selected = "clear <b>sky</b>"
    layer = m.layer("clear <b>sky</b>")
    grid = m.state.current_grid()
    result = view_histogram(layer, grid)
    direct = band_histograms(layer.vis_image(), grid, 64)
    assert [s[1] for s in result["series"]] == [d["histogram"] for d in direct]
    assert sum(result["series"][0][1]["histogram"]) == direct[0]["count"] > 1000
    chart = ViewHistogram(m.state)
    chart.refresh()
    bars = chart.bars.data
    assert sum(t for t, b in zip(bars["top"], bars["band"]) if b == "B4") == direct[0]["count"]
    assert sorted(chart.marks.data["x"]) == sorted([6000.0, 10500.0, 6800.0, 10500.0, 7700.0, 11000.0])
    assert chart.fig.title.text == "clear <b>sky</b>"  # a Bokeh title is drawn as text


def test_histogram_columns():
    hist = {"bucketMin": 0.0, "bucketWidth": 2.0, "histogram": [1, 0, 3], "bucketMeans": [1.0, 3.0, 5.0]}
    cols = histogram_columns([("a", hist), ("b", None)])
    assert cols["left"] == [0.0, 2.0, 4.0] and cols["right"] == [2.0, 4.0, 6.0] and cols["top"] == [1, 0, 3]
    assert cols["band"] == ["a"] * 3


def test_mask_layer_is_reduced_as_values_not_classes():
    m = demo()
    mask = m.layer("cloud mask")
    mask.visible = True
    entry = next(e for e in compute_region(m.state, RECT.getInfo(), 30)["layers"] if e["name"] == "cloud mask")
    assert entry["summary"]["classes"] is None
    expected = mask.display_image().reduceRegion(viewer.Reducer.mean(), RECT, 30)
    assert {b["band"]: b["mean"] for b in entry["summary"]["bands"]} == expected
    assert 0 < list(expected.values())[0] < 1  # the cloudy share of the region


def test_region_set_before_the_view_is_drawn_and_computed_without_a_loop():
    m = demo()
    m.add_region(TRIANGLE)
    view = m.view  # the tool and the cards are made now, after the region
    polys = view.map_figure.fig.select({"name": "viewer-region-polygon"})
    [source] = [p for p in polys if hasattr(p, "data")]
    x0, y0 = lonlat_to_mercator(-87.45, 30.70)
    assert np.allclose(source.data["xs"][0][0], x0) and np.allclose(source.data["ys"][0][0], y0)
    tabs = [t.title for t in view.tools]
    assert tabs[-2:] == ["Region", "View histogram"]
    panel = view.tools[-2].build()[0]  # no event loop here: the figures are computed at once
    assert panel.result["layers"][0]["summary"]["bands"][0]["count"] == \
        m.layer("clear <b>sky</b>").vis_image().select(["B4"]).reduceRegion(
            viewer.Reducer.count(), TRIANGLE, panel.result["scale"])["B4"]
    assert "clear &lt;b&gt;sky&lt;/b&gt;" in panel.charts.objects[0].object


def test_too_many_pixels_is_a_message_per_layer():
    m = demo()
    big = viewer.Geometry.Rectangle([-87.75, 30.55, -87.05, 31.05])
    result = compute_region(m.state, big.getInfo(), 1)
    assert result["layers"] and all("maxPixels" in e["error"] for e in result["layers"])
    assert all("maxPixels" in c["error"] for c in result["comparisons"])
    page = region_html(result)
    assert "role='alert'" in page and "use a larger scale" in page
    with pytest.raises(viewer.InvalidArgument, match="no region"):
        Map().region_stats()


def test_region_area_is_geodesic_and_matches_the_pixels():
    m = demo()
    result = compute_region(m.state, TRIANGLE.getInfo(), 30)
    assert result["area_m2"] == pytest.approx(TRIANGLE.area()) and RECT.area() == pytest.approx(2 * TRIANGLE.area(),
                                                                                                rel=1e-3)
    rules = next(e for e in result["layers"] if e["name"] == "rules (truth)")
    pixels_area = sum(c["area_m2"] for c in rules["summary"]["classes"])
    assert pixels_area == pytest.approx(result["area_m2"], rel=0.01)  # pixel centres inside vs the true shape
    assert "region of 13.3 km²" in region_html(result)
    assert viewer.Geometry.Point([-87.4, 30.7]).area() == 0.0
