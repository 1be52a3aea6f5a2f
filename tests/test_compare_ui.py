"""Compare panel (prediction vs truth in view), split maps, collection layers with a time slider and the
point time series: figures checked against compare_masks, numpy, rendered tiles and rasterio reads."""
from __future__ import annotations

import io
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
from viewer.core.errors import InvalidArgument
from viewer.core.grid import parse_crs
from viewer.core.sources import array_node
from viewer.core.tiles import render_tile
from viewer.ui.collection_layer import TimeSlider
from viewer.ui.compare import ComparePanel, comparison_grid, default_pair, render_comparison
from viewer.ui.map import Map
from viewer.ui.split import SplitMap
from viewer.ui.timeseries import TimePanel, TimeSeriesPanel, point_series

UTM = parse_crs("EPSG:32616")
ORIGIN = Affine(30.0, 0.0, 452475.0, 0.0, -30.0, 3408645.0)
TABLE = Classes([{"id": 0, "name": "background"}, {"id": 1, "name": "water"}, {"id": 2, "name": "forest"},
                 {"id": 3, "name": "urban"}], background=0)
OTHER = Classes([{"id": 0, "name": "a"}, {"id": 1, "name": "b"}])
COLLECTION = "LANDSAT/LC08/C01/T1_RT"
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "landsat8_224"
TRUE_COLOUR = {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 12000}


def class_image(ids: np.ndarray, table: Classes = TABLE, mask: np.ndarray | None = None) -> viewer.Image:
    node = array_node(ids, UTM, ORIGIN, None, mask, kind="class", classes=table.to_band_classes())
    return viewer.Image(_node=node)


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(11)
    truth = np.repeat(np.repeat(rng.integers(0, 4, (12, 12), dtype=np.uint8), 10, 0), 10, 1)  # 120 x 120 blocks
    pred = truth.copy()
    flip = rng.random(truth.shape) < 0.2
    pred[flip] = rng.integers(0, 4, int(flip.sum()), dtype=np.uint8)
    mask = np.ones(truth.shape, np.float32)
    mask[:, :7] = 0  # a masked strip on the truth
    return class_image(pred), class_image(truth, mask=mask)


@pytest.fixture
def compare_map(pair):
    return make_compare_map(pair)


def make_compare_map(pair) -> Map:
    """Three class overlays (an unrelated one, truth, prediction), framed on the truth."""
    pred, truth = pair
    m = Map()
    m.add_overlay(class_image(np.zeros((120, 120), np.uint8), OTHER), "unrelated")
    m.add_overlay(truth, "truth")
    m.add_overlay(pred, "prediction")
    m.center_object("truth")
    return m


def numpy_confusion(pred: viewer.Image, truth: viewer.Image, grid) -> np.ndarray:
    req = {"grid": grid.to_dict(), "fileFormat": "NUMPY_NDARRAY"}
    p = viewer.data.computePixels(dict(req, expression=pred))
    t = viewer.data.computePixels(dict(req, expression=truth))
    tm = viewer.data.computePixels(dict(req, expression=truth.mask()))
    pm = viewer.data.computePixels(dict(req, expression=pred.mask()))
    name = pred.bands[0].name
    valid = (tm[truth.bands[0].name] > 0) & (pm[name] > 0)
    conf = np.zeros((4, 4), np.int64)
    np.add.at(conf, (t[truth.bands[0].name][valid].astype(int), p[name][valid].astype(int)), 1)
    return conf


# compare ------------------------------------------------------------------------------------
def test_default_pair_is_the_pair_sharing_a_class_table(compare_map, pair):
    assert default_pair(compare_map.state) == ("prediction", "truth")
    m = Map()
    m.add_overlay(pair[0], "model: relabelled k-means")  # lower, but a prediction ("relabelled" is not "label")
    m.add_overlay(pair[1], "Ground truth")
    assert default_pair(m.state) == ("model: relabelled k-means", "Ground truth")
    m = Map()
    m.add_overlay(pair[1], "a")
    m.add_overlay(pair[0], "b")
    assert default_pair(m.state) == ("b", "a")  # no hint in the names: the upper layer is the prediction
    panel = ComparePanel(compare_map)
    assert (panel.prediction, panel.truth) == ("prediction", "truth")
    assert panel.pred_select.options == ["unrelated", "truth", "prediction"]


def test_panel_figures_equal_compare_masks_and_numpy_on_the_view_grid(compare_map, pair):
    pred, truth = pair
    panel = ComparePanel(compare_map)
    got = panel.refresh()
    grid = comparison_grid(compare_map.state, "truth")
    assert got.grid == grid
    ref = compare_masks(pred, truth, grid, TABLE)
    assert got.per_class == ref.per_class and got.mean_iou == ref.mean_iou
    np.testing.assert_array_equal(got.confusion, ref.confusion)
    np.testing.assert_array_equal(got.confusion, numpy_confusion(pred, truth, grid))
    assert 0 < got.pixel_count < grid.width * grid.height  # the masked strip and the outside are left out
    # the page shows those numbers
    text = panel.html.object
    for c in ref.per_class:
        assert f"<td class='viewer-num viewer-cmp-iou'>{c['iou']:.3f}</td>" in text
    assert f"{ref.pixel_count:,}</span> px" in text
    # Map.compare is the same call
    assert compare_masks is not None and compare_map.compare("prediction", "truth").per_class == ref.per_class


def test_figures_follow_the_view(compare_map, pair):
    pred, truth = pair
    panel = ComparePanel(compare_map)
    whole = panel.refresh()
    x0, y0, x1, y1 = compare_map.state.view
    compare_map.state.set_view(x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)  # zoom into the lower left quarter
    part = panel.refresh()
    grid = comparison_grid(compare_map.state, "truth")
    assert part.grid == grid and part.grid != whole.grid
    np.testing.assert_array_equal(part.confusion, numpy_confusion(pred, truth, grid))
    assert part.pixel_count < whole.pixel_count


def test_choices_errors_and_escaping(compare_map):
    panel = ComparePanel(compare_map)
    panel.truth = "prediction"
    assert not panel.ready and panel.refresh() is None and "Add two class layers" in panel.html.object
    with pytest.raises(InvalidArgument, match="choose two different class layers"):
        panel.compute()
    compare_map.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4"], "min": 0, "max": 1}, "<b>img</b>")
    with pytest.raises(InvalidArgument, match="is a image layer; allowed: class layers"):
        compare_map.compare("<b>img</b>", "truth")
    cmp = compare_map.compare("prediction", "truth")
    assert "&lt;b&gt;x&lt;/b&gt;" in render_comparison(cmp, "<b>x</b>", "truth")


def test_difference_layer_replaces_the_previous_one(compare_map, pair):
    panel = ComparePanel(compare_map)
    first = panel.show_difference()
    assert first.name == "difference: prediction vs truth" and first.kind == "classes"
    by_map = compare_map.add_difference("prediction", "truth", name="by Map")
    req = {"grid": pair[1].native_grid().to_dict(), "fileFormat": "NUMPY_NDARRAY"}
    ours, theirs = (viewer.data.computePixels(dict(req, expression=l.image))["difference"] for l in (first, by_map))
    np.testing.assert_array_equal(ours, theirs)  # the same pixels as Map.add_difference
    assert set(np.unique(ours).tolist()) == {0, 1}
    compare_map.remove_layer("by Map")
    panel.class_id.value = 2
    second = panel.show_difference()
    names = [l.name for l in compare_map.state.layers]
    assert second.name in names and first.name not in names
    assert [c["name"] for c in second.classes.to_list()] == ["agree", "false positive", "false negative"]
    assert "difference: prediction vs truth (class 2)" not in panel.pred_select.options


# split map ---------------------------------------------------------------------------------
def test_split_map_two_stacks_one_view(compare_map):
    split = SplitMap(compare_map, "truth", ["unrelated", "prediction"], right_label="model")
    left, right = split.figures
    assert left.fig.x_range is right.fig.x_range and left.fig.y_range is right.fig.y_range
    urls = lambda f: [r.tile_source.url for r in f.layer_renderers()]  # noqa: E731
    state = compare_map.state
    assert urls(left) == [f"tiles/{state.layer('truth').token}/{{Z}}/{{X}}/{{Y}}.png"]
    assert urls(right) == [f"tiles/{state.layer(n).token}/{{Z}}/{{X}}/{{Y}}.png" for n in ("unrelated", "prediction")]
    assert (split.left_label, split.right_label) == ("truth", "model")
    split.right_state.set_view(1000.0, 2000.0, 3000.0, 4000.0)  # a pan on the right figure
    # the sides schedule no view statistics of their own (MapState.schedule_stats counts its requests)
    assert split.left_state._generation == split.right_state._generation == 0
    assert split.left_state.view == (1000.0, 2000.0, 3000.0, 4000.0)
    assert [l.name for l in state.layers] == ["unrelated", "truth", "prediction"]  # the main map is untouched
    # swipe: the left stack on top, drawn (and clickable) left of the divider only; the slider moves it
    cells = [(c[0], c[1], c[2]) for c in split.layout.children]
    assert cells[:2] == [(right.fig, 0, 0), (left.fig, 0, 0)]
    assert left.fig.styles["clip-path"] == "inset(0 50% 0 0)"
    split.value = 30
    assert split.slider.value == 30 and left.fig.styles["clip-path"] == "inset(0 70% 0 0)"
    assert split.divider.styles["margin-left"] == "calc(30% - 8px)"
    assert f"get_model_by_id(&#x27;{split.slider.id}&#x27;)" in split.divider.text  # the line's grip drives the slider
    split.mode = "side by side"
    assert [(c[0], c[1], c[2]) for c in split.layout.children][:2] == [(left.fig, 0, 0), (right.fig, 0, 1)]
    assert left.fig.styles["clip-path"] == "none"
    with pytest.raises(InvalidArgument, match="no layer named 'nope'"):
        SplitMap(compare_map, "nope", "truth")


def test_split_controls_take_the_maps_place_and_give_it_back(compare_map):
    panel = ComparePanel(compare_map)
    controls = panel.split
    assert (controls.left.value, controls.right.value) == ("truth", "prediction")  # truth left, prediction right
    view = compare_map.view
    compare_map.layer("prediction").visible = False  # hidden on the map: drawn in the split, hidden after it
    split = controls.open()
    assert view.pane.object is split.layout and controls.button.label == "Close split view"
    assert compare_map.layer("prediction").visible and len(split.right_figure.layer_renderers()) == 1
    controls.mode.value = "side by side"
    assert split.mode == "side by side"
    split.left_state.set_view(-9728000.0, 3590000.0, -9718000.0, 3600000.0)  # a pan in the split view
    controls.close()
    assert view.pane.object is view.map_figure.fig and controls.button.label == "Open split view"
    assert not compare_map.layer("prediction").visible
    assert compare_map.state.view == (-9728000.0, 3590000.0, -9718000.0, 3600000.0)  # the map is where the split was
    controls.left.value = controls.right.value
    with pytest.raises(InvalidArgument, match="choose two different layers"):
        controls.open()


# collection layer --------------------------------------------------------------------------
def decoded(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("RGBA"))


#: A tile over the north end of the strip (row 077 only) and one over the south end (row 078 only).
NORTH_TILE, SOUTH_TILE = (13, 2852, 4686), (13, 2852, 4695)


def test_collection_layer_steps_are_the_images_tiles():
    col = viewer.ImageCollection(COLLECTION)
    m = Map()
    layer = m.add_layer(col, TRUE_COLOUR, "time")
    time = layer.time
    assert time.labels == ["2020-05-18 · LC08_224077_20200518", "2020-05-18 · LC08_224078_20200518"]
    single = Map()
    tokens = [single.add_layer(viewer.Image(i.getInfo()["id"]), TRUE_COLOUR, f"one {k}").token
              for k, i in enumerate(col)]
    slider = TimeSlider(time)
    tiles = []
    for step in (0, 1):
        slider.slider.value = step  # the widget moves the layer
        assert time.index == step and layer.token == tokens[step]  # the same spec as the image alone
        tiles.append([decoded(render_tile(layer.spec(), *t)) for t in (NORTH_TILE, SOUTH_TILE)])
    (a_north, a_south), (b_north, b_south) = tiles
    assert a_north[..., 3].mean() > 200 and b_north[..., 3].max() == 0  # row 077 only in the north
    assert a_south[..., 3].max() == 0 and b_south[..., 3].mean() > 200


def test_collection_layer_reducer_over_a_date_window():
    col = viewer.ImageCollection(COLLECTION)
    m = Map()
    layer = m.add_collection_layer(col, TRUE_COLOUR, "mosaic", reducer="mosaic")
    assert layer.time.labels == ["2020-05-18 · mosaic of 2"]
    mosaic_tiles = [decoded(render_tile(layer.spec(), *t)) for t in (NORTH_TILE, SOUTH_TILE)]
    assert all(t[..., 3].mean() > 200 for t in mosaic_tiles)  # both ends drawn
    before = layer.token
    layer.time.reducer = ""
    assert layer.token != before and len(layer.time.steps) == 2
    with pytest.raises(InvalidArgument, match="no step on or after"):
        layer.time.show_date("2021-01-01")
    with pytest.raises(InvalidArgument, match="empty"):
        m.add_layer(col.filterDate("2011-01-01", "2012-01-01"), TRUE_COLOUR)


# time series -------------------------------------------------------------------------------
def rasterio_value(path: Path, x: float, y: float) -> float | None:
    with rasterio.open(path) as ds:
        ux, uy = Transformer.from_crs("EPSG:3857", ds.crs, always_xy=True).transform(x, y)
        row, col = ds.index(ux, uy)
        if not (0 <= row < ds.height and 0 <= col < ds.width):
            return None
        v = ds.read(1, window=((row, row + 1), (col, col + 1)))[0, 0]
        return None if v == ds.nodata else float(v)


@pytest.mark.parametrize("utm_y", [-2771000.5, -2800000.5, -2822000.5])  # north only, overlap, south only
def test_point_series_equals_the_files(utm_y):
    x, y = Transformer.from_crs("EPSG:32621", "EPSG:3857", always_xy=True).transform(737512.3, utm_y)
    series = point_series(viewer.ImageCollection(COLLECTION), x, y)
    assert series["ids"] == [f"{COLLECTION}/LC08_224077_20200518", f"{COLLECTION}/LC08_224078_20200518"]
    assert [d.strftime("%Y-%m-%d") for d in series["dates"]] == ["2020-05-18"] * 2
    for band, values in series["bands"].items():
        expected = [rasterio_value(ASSETS / f"LC08_{scene}_20200518_{band}.tif", x, y)
                    for scene in ("224077", "224078")]
        assert values == expected
    assert sum(v is not None for v in series["bands"]["B4"]) >= 1


def click(panel: TimeSeriesPanel, x: float, y: float) -> None:
    """What a click does, synchronously (``on_click`` without an event loop; under Playwright's sync API,
    run by the browser tests of the same session, a loop is running and it would schedule a task)."""
    panel.point = (x, y)
    panel.show(panel.compute(x, y))


def test_time_series_panel_charts_the_clicked_collection():
    m = Map()
    m.add_layer(viewer.ImageCollection(COLLECTION), TRUE_COLOUR, "time")
    panel = TimeSeriesPanel(m.state)
    assert not panel.fig.visible  # no empty chart before a click
    x, y = Transformer.from_crs("EPSG:32621", "EPSG:3857", always_xy=True).transform(737512.3, -2800000.5)
    click(panel, x, y)
    assert panel.fig.visible and set(panel.series["bands"]) == {"B2", "B3", "B4"}
    assert [item.label["value"] for item in panel.legend.items] == ["B2", "B3", "B4"]
    lines = [r for r in panel.fig.renderers if type(r.glyph).__name__ == "Line"]
    assert len(lines) == 3
    b4 = next(r for r in lines if r.data_source.data["band"][0] == "B4")
    assert list(b4.data_source.data["value"]) == panel.series["bands"]["B4"]
    assert "time at lon/lat" in panel.note.value and "2 images" in panel.note.value
    m.layer("time").visible = False
    click(panel, x, y)
    assert panel.series is None and "No visible collection layer" in panel.note.value and not panel.fig.visible


def test_time_panel_lists_the_collection_layers():
    m = Map()
    m.add_layer(viewer.ImageCollection(COLLECTION), TRUE_COLOUR, "time")
    panel = TimePanel(m.view)
    (slider,) = panel._made.values()
    assert isinstance(slider, TimeSlider) and slider.time is m.layer("time").time and len(panel.sliders) == 1
    assert list(slider.slider.options) == m.layer("time").time.labels
    m.remove_layer("time")
    assert "No collection layer" in panel.sliders.objects[0].value


def test_the_time_card_comes_with_a_collection_layer():
    m = Map()
    m.add_layer(viewer.ImageCollection(COLLECTION), TRUE_COLOUR, "time")
    assert [t.title for t in m.view.tools if t.title.startswith("Time")] == ["Time series (collections)"]
    plain = Map()
    plain.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4"], "min": 0, "max": 1}, "image")
    assert not [t for t in plain.view.tools if t.title.startswith("Time")]


def test_wandb_masks_compare_in_pixel_coordinates():
    """A picture with W&B prediction and ground-truth masks: the pair is found and the view's figures are
    compare_masks's on the view's pixel grid."""
    rng = np.random.default_rng(3)
    truth = np.repeat(np.repeat(rng.integers(0, 3, (8, 8), dtype=np.uint8), 8, 0), 8, 1)  # 64 x 64
    pred = np.where(rng.random(truth.shape) < 0.15, (truth + 1) % 3, truth).astype(np.uint8)
    labels = {0: "sky", 1: "road", 2: "car"}
    picture = viewer.Image(np.zeros((64, 64, 3), np.uint8), masks={
        "predictions": {"mask_data": pred, "class_labels": labels},
        "ground_truth": {"mask_data": truth, "class_labels": labels}})
    m = Map()
    m.add_layer(picture, None, "photo")
    assert default_pair(m.state) == ("predictions", "ground_truth")
    m.center_object("photo")
    got = ComparePanel(m).refresh()
    grid = comparison_grid(m.state, "ground_truth")
    assert grid.crs is None and got.grid == grid
    ref = compare_masks(m.layer("predictions").image, m.layer("ground_truth").image, grid)
    assert got.per_class == ref.per_class
    np.testing.assert_array_equal(got.confusion, ref.confusion)
    assert 0 < got.pixel_count <= 64 * 64
    # on the image's own grid, Map.compare is numpy's confusion of the two arrays
    native = m.layer("ground_truth").image.native_grid()
    conf = np.zeros((3, 3), np.int64)
    np.add.at(conf, (truth.ravel(), pred.ravel()), 1)
    np.testing.assert_array_equal(m.compare("predictions", "ground_truth", grid=native).confusion, conf)


def test_a_split_view_is_in_the_link_and_a_link_opens_it(compare_map, pair):
    from viewer.ui.urlstate import apply_query, decode_query, encode_state, query_string

    view = compare_map.view
    controls = view.compare.split
    assert compare_map.state.split is None and "split" not in encode_state(compare_map.state)
    split = controls.open()
    uid = {l.name: l.uid for l in compare_map.layers}
    assert compare_map.state.split == (uid["truth"], uid["prediction"], "swipe", 50)
    split.value = 30
    controls.mode.value = "side by side"
    link = query_string(encode_state(compare_map.state))
    assert f"split={uid['truth']},{uid['prediction']},side,30" in link

    # a page opened on the link: the state names the split, the view shows it as soon as it exists
    other = make_compare_map(pair)  # as a shared link's page makes it: same layers, same uids
    apply_query(decode_query(link), other.state)
    assert other.state.split == (uid["truth"], uid["prediction"], "side by side", 30)
    shown = other.view.compare.split.split
    assert shown is not None and other.view.pane.object is shown.layout
    assert (shown.left_label, shown.right_label, shown.mode, shown.value) == ("truth", "prediction", "side by side", 30)

    # a link applied to a view that exists (a session built ahead): the split opens then; closing clears it
    later = make_compare_map(pair)
    later_view = later.view
    assert later_view.pane.object is later_view.map_figure.fig
    apply_query(decode_query(link), later.state)
    assert later_view.pane.object is later_view.compare.split.split.layout
    later_view.compare.split.close()
    assert later.state.split is None and "split" not in encode_state(later.state)
    assert later_view.pane.object is later_view.map_figure.fig


@pytest.mark.parametrize("value", ["nope", "a,b,swipe,50", "{t},{t},swipe,50", "{t},{p},fade,50", "{t},{p},swipe,101",
                                   "{t},{p},swipe,-1", "{t},{p},swipe,5e1", "{t},{p},swipe", "<b>{t}</b>,{p},swipe,5"])
def test_a_split_view_in_a_link_that_does_not_fit_is_ignored(compare_map, value):
    from viewer.ui.urlstate import apply_query

    uid = {l.name: l.uid for l in compare_map.layers}
    apply_query({"split": value.format(t=uid["truth"], p=uid["prediction"])}, compare_map.state)
    assert compare_map.state.split is None
    assert compare_map.view.pane.object is compare_map.view.map_figure.fig


def test_split_map_takes_images_as_geemap_does():
    m = Map()
    m.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4"], "min": 6000, "max": 12000}, "B4")
    rules, kmeans = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"), viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_KMEANS")
    split = m.split_map(rules, kmeans, left_label="rules", right_label="k-means")
    (left,), (right,) = split.left_layers, split.right_layers
    assert left.kind == right.kind == "classes" and left.classes.name(1) == "water"  # class colours
    assert left.token != right.token and [l.name for l in m.layers] == ["B4"]  # the map keeps its own layers
    assert [r.tile_source.url for r in split.right_figure.layer_renderers()] == [
        f"{split.right_figure.base_url}tiles/{right.token}/{{Z}}/{{X}}/{{Y}}.png"]
    assert "rules" in split.left_tag.text and "k-means" in split.right_tag.text
    with pytest.raises(InvalidArgument, match="right_layer 3 is not allowed"):
        m.split_map("B4", 3)
