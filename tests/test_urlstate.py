"""The shared link (issue 10): every layer's full state by uid, encode/decode round trips, bad
values ignored; and the map anywhere on Earth at the state level (a source across 180 degrees).

No browser here; ``tests/test_shared_link.py`` reloads the page in Chromium.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine

import viewer
from viewer.core.grid import HALF_WORLD
from viewer.core.tiles import render_rgba
from viewer.ui.state import layer_uid
from viewer.ui.urlstate import MAX_LINK_LAYERS, apply_query, decode_query, encode_state, query_string


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWER_TILE_URL", "")
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))


def demo() -> viewer.Map:
    """A small map with every kind of layer and a mask switch."""
    m = viewer.Map()
    img = viewer.Image("LANDSAT/LC08/SAMPLE")
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3).rename("cloud")
    tc = m.add_layer(img, {"bands": ["B4", "B3", "B2"], "min": [6000, 6800, 7700], "max": 11000, "gamma": 1.3},
                     "true colour")
    tc.param.update(mask_image=cloud, mask_label="cloud mask")
    m.add_layer(img, {"bands": ["B5"], "min": 5000, "max": 20000}, "nir")
    m.add_overlay(viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"), "rules", opacity=0.45)
    m.add_mask_layer(cloud, "clouds", opacity=0.7)
    return m


def reload(m: viewer.Map) -> viewer.Map:
    """A fresh copy of the same map with ``m``'s link applied (as a page reload does)."""
    other = demo()
    apply_query(decode_query(query_string(encode_state(m.state))), other.state)
    return other


def test_uids_are_short_stable_and_unique():
    a, b = demo(), demo()
    uids = [l.uid for l in a.layers]
    assert uids == [l.uid for l in b.layers] and len(set(uids)) == 4
    assert all(len(u) == 6 and u.isalnum() for u in uids)
    assert uids[0] == layer_uid(0, "true colour")
    a.remove_layer("nir")
    again = a.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B5"], "min": 0, "max": 1}, "nir")
    assert again.uid not in uids  # a layer added later never takes a removed layer's id


def test_every_setting_round_trips_to_the_same_tokens():
    m = demo()
    tc, nir, rules, clouds = m.layers
    tc.param.update(mode="1 band")
    tc.channels[0].band = "B6"
    tc.palette = "viridis"
    tc.set_range([6843.285714285714], [21000.5])
    tc.gamma = [0.7]
    tc.mask_applied = True
    nir.gamma = [1.7]
    nir.palette = ["#000000", "#ff8800", "#ffffff"]  # custom colours
    nir.param.update(stretch="98%", freeze=True)
    rules.hidden_classes = [2, 3]
    clouds.param.update(visible=False, opacity=0.25)
    m.state.move("rules", -2)  # reorder: rules first
    m.remove_layer("nir")
    m.set_center(-87.41234567, 30.7654321, 12.3456)
    query = encode_state(m.state)
    assert query["layers"] == f"{rules.uid},{tc.uid},{clouds.uid}"
    assert nir.uid not in query
    text = query[tc.uid]
    assert "mode:1;bands:B6;min:6843.285714285714;max:21000.5;gamma:0.7;pal:viridis;mask:1" in text

    other = reload(m)
    assert [l.name for l in other.layers] == ["rules", "true colour", "clouds"]  # order kept, removal kept
    assert [l.token for l in other.layers] == [l.token for l in m.layers]  # byte-identical tile URLs
    assert [l.uid for l in other.layers] == [l.uid for l in m.layers]
    o_rules, o_tc, o_clouds = other.layers
    assert o_tc.bands == ["B6"] and o_tc.palette_name == "viridis" and o_tc.gamma == [0.7] and o_tc.mask_applied
    assert o_rules.hidden_classes == [2, 3] and not o_clouds.visible and o_clouds.opacity == 0.25
    assert other.state.center == (-87.4123457, 30.7654321) and other.state.zoom == 12.3456


def test_layers_added_from_the_catalog_come_back_with_a_link():
    """The "add layer" control's layers are in the link (asset id, kind, name and settings) and a
    reload adds them again under the same uid, with the same tokens; removed ones stay removed."""
    from viewer.ui.add_layer import AddLayerPanel

    m = demo()
    panel = AddLayerPanel(m)
    panel.asset.value = "COPERNICUS/S2/SAMPLE"
    panel.mode.value = "1 band"
    panel.band.value = "B8"
    panel.palette.value = "viridis"
    panel.vmin.value, panel.vmax.value = 200.0, 3500.0
    panel.layer_name.value = "S2 NIR"
    s2 = panel.add()
    panel.asset.value = "VIEWER/SAMPLE_CLASSES/LC08_KMEANS"
    panel.layer_name.value = "clusters"
    clusters = panel.add()
    clusters.hidden_classes = [1]
    link = query_string(encode_state(m.state))
    assert "src:COPERNICUS/S2/SAMPLE;kind:image;name:S2 NIR" in decode_query(link)[s2.uid]
    other = reload(m)
    assert [l.uid for l in other.layers] == [l.uid for l in m.layers]
    assert [l.name for l in other.layers] == [l.name for l in m.layers]
    assert [l.token for l in other.layers] == [l.token for l in m.layers]
    assert other.layer("S2 NIR").asset == "COPERNICUS/S2/SAMPLE" and other.layer("clusters").hidden_classes == [1]
    m.remove_layer("S2 NIR")
    assert "S2 NIR" not in [l.name for l in reload(m).layers]


@pytest.mark.parametrize("src,kind", [("/etc/passwd", "image"), ("NO/SUCH/ASSET", "image"),
                                      ("http://127.0.0.1:9/x.tif", "image"), ("../assets/x.tif", "image"),
                                      ("<script>", "image"), ("LANDSAT/LC08/SAMPLE", "mask")])
def test_a_link_adds_only_catalog_assets(src, kind):
    m = demo()
    before = [l.uid for l in m.layers]
    query = decode_query(query_string(encode_state(m.state)))
    query["layers"] += ",abcdef"
    query["abcdef"] = f"vis:1;op:1;src:{src};kind:{kind};name:x"
    apply_query(query, m.state)
    assert [l.uid for l in m.layers] == before


def test_a_link_adds_at_most_max_link_layers_catalog_layers():
    """A crafted link naming 285 catalog layers held the server's event loop for 30 s."""
    m = demo()
    before = [l.uid for l in m.layers]
    query = decode_query(query_string(encode_state(m.state)))
    uids = [f"{i:06x}" for i in range(0xa00000, 0xa00000 + 100)]
    query["layers"] += "," + ",".join(uids)
    for i, uid in enumerate(uids):
        query[uid] = f"vis:1;op:1;src:LANDSAT/LC08/SAMPLE;kind:image;mode:1;bands:B4;min:{i};max:9000"
    apply_query(query, m.state)
    assert [l.uid for l in m.layers] == before + uids[:MAX_LINK_LAYERS]
    assert m.layers[-1].vmin == [MAX_LINK_LAYERS - 1]


def test_custom_palette_stretch_and_freeze_round_trip():
    m = demo()
    nir = m.layer("nir")
    nir.palette = ["#000000", "#ff8800", "#ffffff"]
    nir.param.update(stretch="98%", freeze=True)
    lo, hi = nir.vmin, nir.vmax
    assert nir.stretch == "98%" and lo != [5000.0]  # the preset applied at once
    query = encode_state(m.state)
    assert "pal:000000,ff8800,ffffff;stretch:98%;freeze:1" in query[nir.uid]
    o_nir = reload(m).layer("nir")
    assert (o_nir.stretch, o_nir.freeze, o_nir.vmin, o_nir.vmax) == ("98%", True, lo, hi)
    assert o_nir.palette == ["#000000", "#ff8800", "#ffffff"] and o_nir.token == nir.token


def test_a_live_stretch_keeps_the_links_range_for_the_links_view():
    m = demo()
    nir = m.layer("nir")
    nir.stretch = "90%"
    other = reload(m)
    o_nir = other.layer("nir")
    assert o_nir.vmin == nir.vmin and o_nir.token == nir.token
    other.state.refresh_stats()  # the same view: the link's range stays
    assert o_nir.token == nir.token
    x0, y0, x1, y1 = other.state.view
    other.state.set_view(x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)  # another view: recomputed
    other.state.refresh_stats()
    assert o_nir.vmin != nir.vmin and o_nir.stretch == "90%"


def test_unticking_freeze_recomputes_at_once():
    m = demo()
    nir = m.layer("nir")
    nir.param.update(stretch="100%", freeze=True)
    full = nir.vmax
    x0, y0, x1, y1 = m.state.view
    m.state.set_view(x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)
    m.state.refresh_stats()
    assert nir.vmax == full  # frozen
    nir.freeze = False  # recomputed now, not at the next pan
    assert nir.vmax != full


BAD = [
    "?layers=<script>alert(1)</script>&lon=abc&lat=1e999&zoom=-3",
    "?lon=200&lat=95&zoom=99&basemap=<b>x</b>",
    "?layers=ffffff,000000",
    "?{tc}=vis:2;op:7;mode:rgb;bands:B4,B3;min:1,2,3,4;max:x;gamma:0,99;pal:nope;stretch:50%;freeze:9;mask:x",
    "?{tc}=mode:1;bands:<img src=x>;pal:" + ",".join(["ff0000"] * 40),
    "?{tc}=min:7000;max:7000",  # min == max: the core refuses the range, the layer stays as it was
    "?{rules}=hide:1,x,3&{clouds}=" + "vis:1;" * 1000,
    "?{tc}=min:nan;max:inf;op:-0.5",
    "?layers=" + "a" * 5000,
    "?split=<b>{tc}</b>,{rules},swipe,50", "?split={tc},{tc},swipe,50", "?split={tc},{rules},fade,50",
    "?split={tc},{rules},swipe,500", "?split=../../etc/passwd,{rules},side,1", "?split=" + "a," * 3000,
    "?{tc}=t:9999;red:<script>;win:1e9",  # time fields on a layer without a time slider
]


@pytest.mark.parametrize("link", BAD)
def test_values_that_do_not_fit_are_ignored(link):
    m = demo()
    uids = {l.name.split()[0]: l.uid for l in m.layers}
    before = {l.uid: (l.token, l.visible, l.opacity, l.hidden_classes) for l in m.layers}
    center, zoom, basemap = m.state.center, m.state.zoom, m.state.basemap
    apply_query(decode_query(link.format(tc=uids["true"], rules=uids["rules"], clouds=uids["clouds"])), m.state)
    assert {l.uid: (l.token, l.visible, l.opacity, l.hidden_classes) for l in m.layers} == before
    assert (m.state.center, m.state.zoom, m.state.basemap, m.state.split) == (center, zoom, basemap, None)


def test_the_link_is_readable_and_bounded():
    m = demo()
    text = query_string(encode_state(m.state))
    assert text.startswith("?lon=") and "&layers=" in text and "bands:B4,B3,B2;" in text
    assert len(text) < 1000 and "<" not in text and "#" not in text


# anywhere on Earth --------------------------------------------------------------------------
@pytest.fixture
def across_180(tmp_path) -> str:
    """EPSG:4326 stored at 170..190 E, 10 S..10 N (0.1 degree pixels): 1 west of 180, 2 east."""
    v = np.ones((200, 200), np.uint8)
    v[:, 100:] = 2
    path = tmp_path / "geo.tif"
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(0.1, 0, 170, 0, -0.1, 10), nodata=0) as ds:
        ds.write(v, 1)
    return str(path)


def test_a_source_across_the_antimeridian_is_fitted_whole_and_drawn_on_both_sides(across_180):
    m = viewer.Map()
    layer = m.add_layer(viewer.Image.open(across_180), {"min": 0, "max": 2}, "across")
    x0, _, x1, _ = m.state.layer_extent("across")
    assert x0 == pytest.approx(HALF_WORLD * 170 / 180) and x1 == pytest.approx(HALF_WORLD * 190 / 180)
    lon, lat = m.state.center
    assert abs(abs(lon) - 180) < 1e-6 and abs(lat) < 1e-6 and 3 <= m.state.zoom <= 6
    assert m.view.map_figure.renderer(layer).tile_source.wrap_around  # tiles repeat across the line
    vx0, _, vx1, _ = m.state.view
    assert vx0 % (2 * HALF_WORLD) < HALF_WORLD * 171 / 180 and (vx1 - vx0) > HALF_WORLD * 20 / 180  # all of it
    grid = m.state.current_grid()  # the view's grid spans the line (not clipped at 180 degrees)
    rgba = render_rgba(layer.spec(), grid)
    drawn = rgba[..., 3] > 0
    cols = np.nonzero(drawn.any(axis=0))[0]
    west, east = rgba[:, cols[0] + 1, 0], rgba[:, cols[-1] - 1, 0]
    assert set(west[drawn[:, cols[0] + 1]]) == {128} and set(east[drawn[:, cols[-1] - 1]]) == {255}
    width_deg = (cols[-1] - cols[0] + 1) * grid.transform.a / HALF_WORLD * 180
    assert width_deg == pytest.approx(20, abs=0.5)  # the whole source, both halves
    # a view centred on the line from the west side (x < -HALF_WORLD) still sees the layer
    res = HALF_WORLD / 2 ** 12
    m.state.set_view(-HALF_WORLD - 500 * res, -300 * res, -HALF_WORLD + 500 * res, 300 * res)
    assert m.state.center[0] in (180.0, -180.0) and m.state.layer_in_view("across")
    m.state.set_view(0, 0, 1000, 1000)  # off the coast of Africa
    assert not m.state.layer_in_view("across")


def test_class_counts_across_the_antimeridian_are_native_pixels(across_180):
    m = viewer.Map()
    img = viewer.Image.open(across_180)
    m.add_overlay(img, "halves", classes={1: "west", 2: "east"})
    counts = m.state.refresh_stats()["counts"]["halves"]
    by_name = {c["name"]: c for c in counts}
    assert by_name["west"]["count"] == by_name["east"]["count"] == 200 * 100  # exact, both sides
    assert {c["pixels"] for c in counts} == {"native"}


def test_wandb_counts_are_exact_native_pixels():
    predicted = np.zeros((100, 100), np.uint8)
    predicted[50:, :50], predicted[:50, 50:], predicted[50:, 50:] = 1, 2, 3
    m = viewer.Map()
    m.add_layer(viewer.Image(np.zeros((100, 100, 3), np.uint8), masks={
        "predictions": {"mask_data": predicted, "class_labels": {0: "person", 1: "tree", 2: "car", 3: "road"}}}),
        None, "image")
    counts = m.state.refresh_stats()["counts"]["predictions"]
    assert [c["count"] for c in counts] == [2500] * 4 and {c["pixels"] for c in counts} == {"native"}


def test_view_grid_keeps_a_view_across_180_and_caps_one_wider_than_the_world():
    from viewer.ui.viewport import view_grid

    g = view_grid((HALF_WORLD - 1000, -500, HALF_WORLD + 1000, 500), (200, 100))
    assert g.bounds == pytest.approx((HALF_WORLD - 1000, -500, HALF_WORLD + 1000, 500))
    wide = view_grid((-3 * HALF_WORLD, -HALF_WORLD, 3 * HALF_WORLD, HALF_WORLD), (600, 200))
    assert wide.bounds[2] - wide.bounds[0] == pytest.approx(2 * HALF_WORLD)
    assert math.isclose((wide.bounds[0] + wide.bounds[2]) / 2, 0.0, abs_tol=1e-6)


def test_a_polar_source_is_fitted_up_to_web_mercators_limit(tmp_path):
    """EPSG:3413 over the North Pole: the extent reaches the map's top edge and the fitted view is drawn
    there (not as a strip)."""
    v = np.ones((400, 400), np.uint8)
    v[:, 200:] = 2
    path = tmp_path / "pole.tif"
    with rasterio.open(path, "w", driver="GTiff", width=400, height=400, count=1, dtype="uint8", crs="EPSG:3413",
                       transform=Affine(10_000, 0, -2_000_000, 0, -10_000, 2_000_000), nodata=0) as ds:
        ds.write(v, 1)
    m = viewer.Map()
    layer = m.add_layer(viewer.Image.open(str(path)), {"min": 0, "max": 2}, "pole")
    x0, y0, x1, y1 = m.state.layer_extent("pole")
    assert y1 == pytest.approx(HALF_WORLD) and x1 - x0 == pytest.approx(2 * HALF_WORLD, rel=1e-3)
    assert m.state.center[1] > 60 and m.state.zoom <= 2
    grid = m.state.current_grid()
    rgba = render_rgba(layer.spec(), grid)
    top = np.nonzero(rgba[..., 3].any(axis=1))[0]
    rows_in_view = grid.height
    assert len(top) > rows_in_view * 0.2  # a tall area up to the map's edge, not a strip
    values = set(rgba[..., 0][rgba[..., 3] > 0].tolist())
    assert values == {128, 255}  # both halves


def collection_map() -> viewer.Map:
    """A map with a collection layer (two dated Landsat scenes: a time slider of two steps)."""
    m = viewer.Map()
    m.add_layer(viewer.ImageCollection("LANDSAT/LC08/C01/T1_RT"), {"bands": ["B4", "B3", "B2"], "min": 0,
                                                                    "max": 3000}, "scenes")
    return m


def test_a_links_collection_step_and_composite_come_back():
    m = collection_map()
    layer = m.state.layer("scenes")
    first = layer.token
    layer.time.index = 1
    assert layer.token != first
    query = encode_state(m.state)
    assert query[layer.uid].endswith(";t:1")
    other = collection_map()
    apply_query(decode_query(query_string(query)), other.state)
    again = other.state.layer("scenes")
    assert again.time.index == 1 and again.token == layer.token
    assert again.time.step.label == layer.time.step.label

    layer.time.param.update(reducer="mosaic", window_days=2)
    query = encode_state(m.state)
    assert "red:mosaic;win:2;t:0" in query[layer.uid]
    apply_query(decode_query(query_string(query)), other.state)
    assert (again.time.reducer, again.time.window_days, again.time.index) == ("mosaic", 2.0, 0)
    assert again.token == layer.token and "mosaic of 2" in again.time.step.label


@pytest.mark.parametrize("fields, reducer, index", [
    ("t:7", "", 0), ("t:-1", "", 0), ("t:1e3", "", 0), ("t:<b>1</b>", "", 0),
    ("red:evil;t:1", "", 1),  # an unknown composite: one image at a time, the step kept
    ("red:mosaic;win:-4;t:0", "mosaic", 0),  # a window out of range: the default window
])
def test_a_collection_step_that_does_not_fit_is_ignored(fields, reducer, index):
    m = collection_map()
    layer = m.state.layer("scenes")
    apply_query({"layers": layer.uid, layer.uid: f"vis:1;op:1;{fields}"}, m.state)
    assert (layer.time.reducer, layer.time.window_days, layer.time.index) == (reducer, 1.0, index)


def _with_differences() -> tuple[viewer.Map, list]:
    """The demo map with a catalog class layer and two differences of it against the rules overlay."""
    from viewer.ui.add_layer import AddLayerPanel

    m = demo()
    panel = AddLayerPanel(m)
    panel.asset.value = "VIEWER/SAMPLE_CLASSES/LC08_KMEANS"
    panel.layer_name.value = "clusters"
    panel.add()
    rules = m.state.layer("rules")
    class_id = rules.effective_classes().ids[1]
    return m, [m.add_difference("clusters", "rules"),
               m.add_difference("clusters", "rules", name="one class", class_id=class_id)]


def test_a_links_difference_layers_are_computed_again():
    """A difference layer's link carries what it is the difference of (the two layers' uids, the
    class id); a reload computes it again: same uid, name, token and drawn pixels, its classes hidden
    as they were."""
    m, (everything, one_class) = _with_differences()
    one_class.hidden_classes = [0]
    query = decode_query(query_string(encode_state(m.state)))
    clusters, rules = m.state.layer("clusters").uid, m.state.layer("rules").uid
    assert f"diff:{clusters},{rules},all" in query[everything.uid]
    assert f"diff:{clusters},{rules},{one_class.difference_of[2]}" in query[one_class.uid]
    other = reload(m)
    assert [l.uid for l in other.layers] == [l.uid for l in m.layers]
    assert [l.name for l in other.layers] == [l.name for l in m.layers]
    assert [l.token for l in other.layers] == [l.token for l in m.layers]
    again = other.state.layer_by_uid(one_class.uid)
    assert again.difference_of == one_class.difference_of and again.hidden_classes == [0]
    assert again.comparison == one_class.comparison
    grid = m.state.layer("rules").image.native_grid()
    for layer in (everything, one_class):
        want = render_rgba(layer.spec(), grid)
        got = render_rgba(other.state.layer_by_uid(layer.uid).spec(), grid)
        assert np.array_equal(got, want) and (want[..., 3] > 0).any()  # something drawn: the classes disagree


@pytest.mark.parametrize("diff", ["abcdef,{rules},all",  # an unknown layer
                                  "{nir},{rules},all",  # an image layer, not classes
                                  "{clusters},{rules},999",  # no such class in the truth
                                  "{clusters},{rules},-1", "{clusters},{rules},1e3", "{clusters},{rules}",
                                  "{clusters},{rules},all,x", "<b>,{rules},all", "{clusters},{rules},\u00b2",
                                  "{clusters},{rules},\u0661"])
def test_a_difference_that_does_not_fit_is_ignored(diff):
    m, _ = _with_differences()
    uids = {name: m.state.layer(name).uid for name in ("clusters", "rules", "nir")}
    query = decode_query(query_string(encode_state(m.state)))
    query["layers"] += ",0a0a0a"
    query["0a0a0a"] = "vis:1;op:1;diff:" + diff.format(**uids)
    other = demo()
    apply_query(query, other.state)
    assert "0a0a0a" not in [l.uid for l in other.layers]
    assert len(other.layers) == len(m.layers)  # the two differences of the link came back


def test_a_link_computes_at_most_max_link_differences_and_none_of_a_large_truth(monkeypatch):
    from viewer.ui import urlstate

    m, _ = _with_differences()
    m.add_difference("clusters", "rules", name="third")
    assert len(reload(m).layers) == len(m.layers) - 1  # MAX_LINK_DIFFERENCES = 2
    monkeypatch.setattr(urlstate, "MAX_LINK_DIFFERENCE_PIXELS", 1000)
    assert len(reload(m).layers) == len(m.layers) - 3
