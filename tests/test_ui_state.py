"""UI state classes and the Bokeh model they produce (no browser).

The seed examples (Earth Engine ``Image.mask`` page, W&B ``ImageMask`` page) run with
``ee``/``geemap``/``wandb`` replaced by ``viewer``.
"""
from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import rasterio
from PIL import Image as PILImage

import viewer
from viewer.core.grid import Grid
from viewer.core.layers import resolve
from viewer.core.tiles import render_rgba, tile_grid

ASSETS = __import__("pathlib").Path(__file__).resolve().parents[1] / "assets"
TOKEN = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(autouse=True)
def _relative_tiles(monkeypatch):
    # Tile URLs relative to the server root (no background tile server in these tests).
    monkeypatch.setenv("VIEWER_TILE_URL", "")


def tile_sources(m):
    from bokeh.models import TileRenderer

    return [r.tile_source for r in m.figure.renderers if isinstance(r, TileRenderer)]


# seeds -------------------------------------------------------------------------------------
def test_seed_mask_page_runs_with_viewer():
    img = viewer.Image("COPERNICUS/S2/SAMPLE")
    true_color_viz = {"bands": ["B4", "B3", "B2"], "min": 0, "max": 2700, "gamma": 1.3}
    m = viewer.Map()
    m.set_center(-122.36, 37.47, 10)
    m.add_layer(img, true_color_viz, "Sentinel-2 image")
    multi_band_mask_img = img.mask()
    m.add_layer(multi_band_mask_img, None, "Multi-band mask image")
    single_band_mask_img = img.select("B1").mask()
    m.add_layer(single_band_mask_img, None, "Single-band mask image")

    assert [l.name for l in m.layers] == ["Sentinel-2 image", "Multi-band mask image", "Single-band mask image"]
    assert [l.kind for l in m.layers] == ["image", "mask", "mask"]
    s2, multi, single = m.layers
    assert s2.bands == ["B4", "B3", "B2"] and s2.vmin == [0, 0, 0] and s2.vmax == [2700] * 3 and s2.gamma == [1.3] * 3
    assert multi.bands == list(img.bandNames()) and single.bands == ["B1"]
    tokens = [l.token for l in m.layers]
    assert all(TOKEN.match(t) for t in tokens) and len(set(tokens)) == 3
    assert resolve(s2.token).style["vis"]["max"] == [2700.0] * 3
    assert resolve(multi.token).kind == "mask"
    # set_center wins over fitting the first layer
    assert m.state.center == (-122.36, 37.47) and m.state.zoom == 10
    assert [s.url for s in tile_sources(m)] == [f"tiles/{t}/{{Z}}/{{X}}/{{Y}}.png" for t in tokens]
    # the mask layer really draws: a tile over the scene is white where valid
    grid = tile_grid(13, 2375, 3169)
    rgba = render_rgba(resolve(single.token), grid)
    assert rgba[..., 3].max() == 255 and (rgba[rgba[..., 3] > 0][:, :3] == 255).all()


def _wandb_masks():
    predicted_mask = np.empty((100, 100), dtype=np.uint8)
    ground_truth_mask = np.empty((100, 100), dtype=np.uint8)
    predicted_mask[:50, :50] = 0
    predicted_mask[50:, :50] = 1
    predicted_mask[:50, 50:] = 2
    predicted_mask[50:, 50:] = 3
    ground_truth_mask[:25, :25] = 0
    ground_truth_mask[25:, :25] = 1
    ground_truth_mask[:25, 25:] = 2
    ground_truth_mask[25:, 25:] = 3
    return predicted_mask, ground_truth_mask


def test_seed_wandb_image_mask_runs_with_viewer():
    image = np.random.default_rng(0).integers(low=0, high=256, size=(100, 100, 3), dtype=np.uint8)
    predicted_mask, ground_truth_mask = _wandb_masks()
    class_labels = {0: "person", 1: "tree", 2: "car", 3: "road"}
    class_set = viewer.Classes([{"name": "person", "id": 0}, {"name": "tree", "id": 1},
                                {"name": "car", "id": 2}, {"name": "road", "id": 3}])
    masked_image = viewer.Image(image, masks={
        "predictions": {"mask_data": predicted_mask, "class_labels": class_labels},
        "ground_truth": {"mask_data": ground_truth_mask, "class_labels": class_labels},
    }, classes=class_set)
    m = viewer.Map()
    base = m.add_layer(masked_image, None, "image")

    assert [(l.name, l.kind) for l in m.layers] == [("image", "image"), ("predictions", "classes"),
                                                     ("ground_truth", "classes")]
    assert m.state.pixel_mode and base.pixel_mode
    assert base.bands == ["b1", "b2", "b3"] and base.vmin == [0, 0, 0] and base.vmax == [255] * 3
    pred = m.layer("predictions")
    assert pred.group == "image" and pred.effective_classes().names == class_labels
    # pixel-coordinate figure: linear axes and the pixel tile scheme
    src = tile_sources(m)[1]
    assert src.url == f"tiles/{pred.token}/{{Z}}/{{X}}/{{Y}}.png"
    assert src.initial_resolution == 1.0 and src.y_origin_offset == 256.0 and not src.wrap_around
    # class counts over the whole image equal numpy's
    m.state.set_center(50, 50, 0)
    grid = Grid(None, __import__("affine").Affine.identity(), 100, 100)
    counts = m.state.compute_stats(grid)["counts"]
    assert [c["count"] for c in counts["predictions"]] == np.bincount(predicted_mask.ravel()).tolist()
    # prediction vs truth: disagreement pixels as in numpy
    diff = m.add_difference("predictions", "ground_truth")
    d = m.state.compute_stats(grid)["counts"][diff.name]
    assert {c["name"]: c["count"] for c in d}["disagree"] == int((predicted_mask != ground_truth_mask).sum())


# map state ---------------------------------------------------------------------------------
@pytest.fixture
def landsat_map():
    m = viewer.Map()
    img = viewer.Image("LANDSAT/LC08/SAMPLE")
    m.add_layer(img, {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 13000}, "tc")
    m.add_overlay(viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"), "rules", opacity=0.5)
    return m


def test_first_layer_fits_view_and_renderers_follow_state(landsat_map):
    m = landsat_map
    lon, lat = m.state.center
    assert -87.6 < lon < -87.2 and 30.6 < lat < 30.9 and 11 <= m.state.zoom <= 13
    tc, rules = m.layers
    srcs = tile_sources(m)
    assert [s.url.split("/")[1] for s in srcs] == [tc.token, rules.token]
    renderers = m.view.map_figure.layer_renderers()
    assert renderers[1].alpha == 0.5
    rules.opacity = 0.2
    tc.visible = False
    assert renderers[1].alpha == 0.2 and renderers[0].visible is False
    m.state.move("tc", +1)
    assert [r.tile_source.url.split("/")[1] for r in m.view.map_figure.layer_renderers()] == [rules.token, tc.token]
    old = tc.token
    tc.vmax = [12000.0, 12000.0, 12000.0]
    assert tc.token != old and m.view.map_figure.layer_renderers()[1].tile_source.url.split("/")[1] == tc.token
    m.remove_layer("rules")
    assert [l.name for l in m.layers] == ["tc"] and len(m.view.map_figure.layer_renderers()) == 1


def test_hidden_classes_and_colours_change_token_and_pixels(landsat_map):
    rules = landsat_map.layer("rules")
    grid = tile_grid(12, 1053, 1680)
    before = render_rgba(rules.spec(), grid)
    token = rules.token
    rules.hidden_classes = [2]  # vegetation
    assert rules.token != token
    after = render_rgba(rules.spec(), grid)
    veg = np.all(before[..., :3] == [0x33, 0xA0, 0x2C], axis=-1) & (before[..., 3] > 0)
    assert veg.sum() > 1000 and (after[veg][:, 3] == 0).all()
    rules.class_colors = {3: "#ff0000"}
    assert (render_rgba(rules.spec(), grid)[..., :3] == [255, 0, 0]).all(axis=-1).any()


def test_default_vis_follows_earth_engine():
    m = viewer.Map()
    img = viewer.Image("LANDSAT/LC08/SAMPLE")
    l8 = m.add_layer(img.select(["B4", "B3", "B2"]))
    assert l8.name == "Layer 1" and l8.bands == ["B4", "B3", "B2"]
    # uint16: the 2nd-98th percentiles over the native extent (estimated on <= 512 px per side)
    b4 = rasterio.open(ASSETS / "landsat8" / "B4.tif").read(1)
    lo, hi = np.percentile(b4, [2, 98])
    assert abs(l8.vmin[0] - lo) < 0.02 * lo and abs(l8.vmax[0] - hi) < 0.02 * hi
    gray = m.add_layer(img.select("B5").divide(30000))  # float -> 0..1
    assert gray.bands == ["B5"] and gray.vmin == [0.0] and gray.vmax == [1.0]
    rules = m.add_layer(viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"))  # a class band with a table
    assert rules.kind == "classes" and rules.effective_classes().names == {0: "other", 1: "water",
                                                                          2: "vegetation", 3: "cloud"}
    clouds = m.add_layer(img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3))  # a 0/1 comparison
    assert clouds.vmin == [0.0] and clouds.vmax == [1.0]
    arr = m.add_layer(viewer.Image.from_array(np.zeros((4, 4), np.uint8), crs="EPSG:32616",
                                              transform=(30, 0, 452475, 0, -30, 3408645)))
    assert arr.vmin == [0.0] and arr.vmax == [255.0]


def test_stretch_presets_give_ranges_as_people_write_them(landsat_map):
    """1 sigma over Landsat DNs gave 10423.979373839265 (the field showed "10423.97", cut off); reflectances
    keep four significant digits of their span."""
    from viewer.core.stats import stretch_range
    from viewer.ui.specs import stretch_for_view

    tc = landsat_map.layer("tc")
    grid = landsat_map.state.current_grid()
    exact = stretch_range(tc.vis_image(), grid, "1sigma")
    lo, hi = stretch_for_view(tc.vis_image(), grid, "1sigma")
    assert lo == [round(a) for a, _ in exact] and hi == [round(b) for _, b in exact]
    assert any(a != round(a) for a, _ in exact)  # (the exact ones are not whole)
    reflectance = tc.vis_image().multiply(0.0001)
    lo, hi = stretch_for_view(reflectance, grid, "1sigma")
    exact = stretch_range(reflectance, grid, "1sigma")
    assert all(abs(a - e) <= 5e-5 and len(repr(a).split(".")[1]) <= 4 for a, (e, _) in zip(lo, exact))


def test_stretch_presets_over_the_view_and_freeze(landsat_map):
    m = landsat_map
    tc = m.layer("tc")
    grid = m.state.current_grid()
    tc.stretch = "100%"
    tc.apply_stretch(grid)
    from viewer.core.evaluate import evaluate
    from viewer.core.stats import stats_grid

    # the view's grid, subsampled as the core's statistics do (<= 512 px per side)
    vals = [l.values[l.mask_or_ones() > 0] for l in evaluate(tc.vis_image().node, stats_grid(grid))]
    assert tc.vmin == [float(v.min()) for v in vals] and tc.vmax == [float(v.max()) for v in vals]
    # live: a new view recomputes; frozen: it does not
    x0, y0, x1, y1 = m.state.view
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    m.state.set_view(cx - 3000, cy - 2000, cx + 3000, cy + 2000)
    m.state.refresh_stats()
    zoomed = list(tc.vmax)
    assert zoomed != [float(v.max()) for v in vals]
    tc.freeze = True
    m.state.set_view(x0, y0, x1, y1)
    m.state.refresh_stats()
    assert tc.vmax == zoomed


def test_mask_switch_applies_and_removes_cloud_mask():
    m = viewer.Map()
    img = viewer.Image("LANDSAT/LC08/SAMPLE")
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3)
    tc = m.add_layer(img, {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 13000}, "tc")
    m.add_mask_layer(cloud, "clouds")
    tc.param.update(mask_image=cloud, mask_label="clouds")
    grid = next(b.grid for b in img.bands)
    plain = tc.token
    tc.mask_applied = True
    masked = render_rgba(tc.spec(), grid)
    qa = rasterio.open(ASSETS / "landsat8" / "BQA.tif").read(1)
    clouds = ((qa >> 14) & 3) == 3
    assert tc.token != plain and (masked[clouds, 3] == 0).all() and (masked[~clouds, 3] == 255).all()
    tc.mask_applied = False
    assert tc.token == plain
    mask_rgba = render_rgba(m.layer("clouds").spec(), grid)
    assert (mask_rgba[clouds, :3] == [255, 0, 255]).all() and (mask_rgba[~clouds, 3] == 0).all()


def test_view_stats_class_counts_match_the_file(landsat_map):
    m = landsat_map
    rules_img = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")
    grid = rules_img.bands[0].grid
    counts = m.state.compute_stats(grid)["counts"]["rules"]
    data = rasterio.open(ASSETS / "landsat8" / "classes_rules.tif").read(1)
    assert [c["count"] for c in counts] == np.bincount(data.ravel(), minlength=4).tolist()
    assert counts[2]["area_m2"] == pytest.approx(counts[2]["count"] * 900, rel=0.01)


def test_legends_come_from_the_layer_spec(landsat_map):
    m = landsat_map
    legends = m.view.legends
    tc = m.layer("tc")
    html = legends._band_panes[id(tc)].object
    assert "B4" in html and "6000 – 13000" in html
    tc.vmin = [5000.0, 5000.0, 5000.0]
    assert "5000 – 13000" in legends._band_panes[id(tc)].object
    m.state.refresh_stats()
    cl = legends.class_legend("rules")
    assert cl.buttons[2].label.startswith("vegetation — ") and " px" in cl.buttons[2].label
    cl.buttons[2].clicks += 1  # a click in the legend hides the class
    assert m.layer("rules").hidden_classes == [2]
    assert cl.buttons[2].css_classes == ["viewer-class-hidden"]
    pal = m.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B10"], "min": 20000, "max": 30000,
                                                             "palette": ["blue", "red"]}, "thermal")
    html = legends._band_panes[id(pal)].object
    assert "linear-gradient(to right, #0000ff, #ff0000)" in html and "20000" in html and "DN" in html


def test_inspector_reads_native_values(landsat_map):
    m = landsat_map
    b4 = rasterio.open(ASSETS / "landsat8" / "B4.tif")
    col, row = 300, 200
    x, y = b4.xy(row, col)  # pixel centre in EPSG:32616
    from pyproj import Transformer

    mx, my = Transformer.from_crs(b4.crs, "EPSG:3857", always_xy=True).transform(x, y)
    result = m.view.inspector.inspect(mx, my)
    tc = next(l for l in result["layers"] if l["name"] == "tc")
    values = {b["name"]: b["value"] for b in tc["bands"]}
    assert values["B4"] == int(b4.read(1)[row, col]) and tc["pixel"] == (col, row)
    assert tc["crs"] == "EPSG:32616"
    rules = next(l for l in result["layers"] if l["name"] == "rules")
    cls = int(rasterio.open(ASSETS / "landsat8" / "classes_rules.tif").read(1)[row, col])
    assert rules["class"]["id"] == cls
    # a point outside every layer
    far = m.view.inspector.inspect(0.0, 0.0)
    assert all(not l["covered"] for l in far["layers"])


def test_export_png_geotiff_and_request_json(landsat_map):
    from viewer.ui.export import composite_view, layer_geotiff, view_requests

    m = landsat_map
    m.layer("rules").visible = False
    grid = m.state.current_grid()
    rgba = composite_view(m.state, grid)
    assert rgba.shape == (grid.height, grid.width, 4) and rgba[..., 3].max() == 255
    req = view_requests(m.state, grid)["layers"][0]
    assert req["method"] == "data.getPixels" and req["request"]["assetId"] == "LANDSAT/LC08/SAMPLE"
    png = viewer.data.getPixels(json.loads(json.dumps(req["request"])))
    again = np.asarray(PILImage.open(io.BytesIO(png)).convert("RGBA"))
    assert np.array_equal(again, rgba)  # the JSON reproduces the exported view
    tif = layer_geotiff(m.state, m.layer("tc"), grid)
    with rasterio.MemoryFile(tif) as mem, mem.open() as ds:
        assert ds.crs.to_epsg() == 32616 and ds.res == (30.0, 30.0) and ds.count == 3
        b4 = rasterio.open(ASSETS / "landsat8" / "B4.tif")
        c0, r0 = (round(v) for v in ~b4.transform @ (ds.transform.c, ds.transform.f))
        # the overlap of the view and the image holds the stored values, untouched
        rows = slice(max(0, -r0), min(ds.height, b4.height - r0))
        cols = slice(max(0, -c0), min(ds.width, b4.width - c0))
        got = ds.read(1)[rows, cols]
        want = b4.read(1)[rows.start + r0:rows.stop + r0, cols.start + c0:cols.stop + c0]
        assert got.size > 10000 and np.array_equal(got, want)
        assert not ds.read_masks(1)[0, 0] if (r0 > 0 or c0 > 0) else True


def test_url_state_round_trip(landsat_map):
    """The link names layers by uid (not position): settings land on the right layer after a reorder."""
    from viewer.ui.urlstate import apply_query, decode_query, encode_state, query_string

    m = landsat_map
    m.layer("tc").stretch = "98%"
    tc, rules = m.layers
    query = encode_state(m.state)
    assert query["layers"] == f"{tc.uid},{rules.uid}"
    assert "vis:1;op:1;mode:rgb;bands:B4,B3,B2;" in query[tc.uid] and "stretch:98%" in query[tc.uid]
    assert query[rules.uid] == "vis:1;op:0.5;hide:"
    other = viewer.Map()
    other.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4", "B3", "B2"], "min": 0, "max": 1}, "tc")
    other.add_overlay(viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"), "rules")
    otc, orules = other.layers
    assert (otc.uid, orules.uid) == (tc.uid, rules.uid)  # the same map built the same way: the same ids
    link = (f"?lon=-87.3&lat=30.75&zoom=13.5&layers={rules.uid},{tc.uid}&{rules.uid}=vis:1;op:0.3;hide:2"
            f"&{tc.uid}=vis:0;op:1;mode:rgb;bands:B5,B4,B3;min:5000,1,3;max:9000,2,4;gamma:1.5,1,0.8")
    apply_query(decode_query(link), other.state)
    assert other.state.center == (-87.3, 30.75) and other.state.zoom == 13.5
    assert other.layers == [orules, otc]  # the link's order
    assert not otc.visible and orules.visible and orules.opacity == 0.3 and orules.hidden_classes == [2]
    assert otc.bands == ["B5", "B4", "B3"] and otc.vmin == [5000, 1, 3] and otc.vmax == [9000, 2, 4]
    assert otc.gamma == [1.5, 1.0, 0.8]
    assert decode_query(query_string(encode_state(other.state))) == encode_state(other.state)


def test_bad_input_raises_viewer_errors():
    m = viewer.Map()
    with pytest.raises(viewer.InvalidArgument, match="opacity"):
        m.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4"]}, opacity=2)
    with pytest.raises(viewer.InvalidArgument, match="visualization parameters"):
        m.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"band": ["B4"]})
    with pytest.raises(viewer.UnknownBand):
        m.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B99"]})
    with pytest.raises(viewer.InvalidArgument, match="lon -180..180"):
        m.set_center(200, 0, 3)
    with pytest.raises(viewer.InvalidArgument, match="viewer.Image"):
        m.add_layer("LANDSAT/LC08/SAMPLE")
    m.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4"], "min": 0, "max": 1})
    with pytest.raises(viewer.InvalidArgument, match="pixel coordinates"):
        m.add_layer(viewer.Image.from_array(np.zeros((5, 5), np.uint8)))


def test_graticule_and_view_grid():
    from viewer.ui.basemaps import graticule, lonlat_to_mercator, mercator_to_lonlat
    from viewer.ui.state import view_grid, zoom_for

    x0, y0 = lonlat_to_mercator(-10, 40)
    x1, y1 = lonlat_to_mercator(10, 50)
    g = graticule(x0, y0, x1, y1)
    lons = [round(mercator_to_lonlat(xs[0], 0)[0], 6) for xs, ys in zip(g["xs"], g["ys"]) if xs[0] == xs[1]]
    assert lons == [-10, -5, 0, 5, 10] and not any(g["text"])  # at the axis ticks; the axes label them
    assert mercator_to_lonlat(*lonlat_to_mercator(12.5, -33.25)) == pytest.approx((12.5, -33.25))
    grid = view_grid((x0, y0, x1, y1), (2000, 1000))
    assert max(grid.width, grid.height) == 1024 and grid.crs.to_epsg() == 3857
    assert grid.bounds == pytest.approx((x0, y0, x1, y1))
    assert zoom_for(-20037508.34, 20037508.34, 256) == pytest.approx(0, abs=1e-6)
    assert zoom_for(0, 20037508.34 / 2 ** 9, 512) == pytest.approx(11, abs=1e-6)


def test_demo_app_builds_with_all_layers():
    from viewer.ui.app import build_app

    app = build_app()
    m = app.map
    assert [(l.name, l.kind, l.visible) for l in m.layers] == [
        ("Landsat 8 collection (time slider)", "image", False),
        ("Sentinel-2 true colour", "image", True), ("Landsat 8 true colour", "image", True),
        ("Cloud-masked composite", "image", False), ("Prediction: k-means as rule classes", "classes", False),
        ("Rule-based classes", "classes", True), ("Cloud mask (BQA high confidence)", "mask", True)]
    # one tile source per shown layer: a hidden layer gets its renderer (and asks for tiles) when shown
    shown = [l for l in m.layers if l.visible]
    assert [s.url.split("/")[1] for s in tile_sources(m)] == [l.token for l in shown]
    m.layer("Prediction: k-means as rule classes").visible = True
    assert [s.url.split("/")[1] for s in tile_sources(m)] == [l.token for l in m.layers if l.visible]
    m.layer("Prediction: k-means as rule classes").visible = False
    assert len(tile_sources(m)) == 5 and not m.view.map_figure.layer_renderers()[2].visible  # k-means, kept
    lon, lat = m.state.center
    assert -87.6 < lon < -87.2 and 30.6 < lat < 30.9


def test_cli_parses_and_prints_catalog(capsys):
    from viewer.cli import build_parser, main

    args = build_parser().parse_args(["serve", "--port", "5100", "--num-procs", "2",
                                      "--allow-websocket-origin", "example.org"])
    assert args.port == 5100 and args.num_procs == 2 and args.allow_websocket_origin == ["example.org"]
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert "LANDSAT/LC08/SAMPLE" in out and "bitmask: BQA" in out


def test_map_shown_before_its_first_layer_switches_to_pixel_coordinates():
    m = viewer.Map()
    fig = m.figure  # displayed empty (as in a notebook), in Web Mercator
    assert fig.xaxis[0].axis_label == "longitude"
    layer = m.add_layer(viewer.Image.from_array(np.zeros((64, 96), np.uint8)), None, "photo")
    assert m.figure is not fig and m.figure.xaxis[0].axis_label == "column"
    assert m.view.pane.object is m.figure and tile_sources(m)[0].url.split("/")[1] == layer.token


def test_basemap_switch_and_offline_graticule(landsat_map):
    from viewer.ui.basemaps import BASEMAPS

    m = landsat_map
    fig = m.view.map_figure
    assert m.state.basemap.startswith("Offline") and len(fig.grat_source.data["xs"]) > 4
    assert len(tile_sources(m)) == 2  # no network basemap by default
    m.state.basemap = "Esri World Imagery (satellite)"
    src = tile_sources(m)[0]
    assert src.url == BASEMAPS["Esri World Imagery (satellite)"].url and "Esri" in src.attribution
    assert fig.grat_source.data["xs"] == [] and len(tile_sources(m)) == 3
    m.state.basemap = "OpenStreetMap"
    assert "OpenStreetMap" in tile_sources(m)[0].attribution


def test_notebook_map_serves_tiles_from_a_background_server(monkeypatch):
    import urllib.request

    monkeypatch.delenv("VIEWER_TILE_URL")
    m = viewer.Map()
    layer = m.add_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4", "B3", "B2"], "min": 6000,
                                                               "max": 11000}, "tc")
    url = tile_sources(m)[0].url
    assert re.match(rf"^http://127\.0\.0\.1:\d+/tiles/{layer.token}/\{{Z\}}/\{{X\}}/\{{Y\}}\.png$", url)
    with urllib.request.urlopen(url.format(Z=12, X=1053, Y=1680), timeout=30) as r:
        rgba = np.asarray(PILImage.open(io.BytesIO(r.read())).convert("RGBA"))
    assert r.status == 200 and rgba[..., 3].max() == 255


def test_request_json_of_a_derived_layer_is_executable():
    """The export JSON of the cloud-masked composite (a computePixels graph) reproduces its tiles' pixels."""
    from viewer.core.tiles import render_rgba
    from viewer.ui.app import build_app
    from viewer.ui.export import layer_request

    m = build_app().map
    layer = next(l for l in m.layers if l.name == "Cloud-masked composite")
    grid = m.state.current_grid()
    req = layer_request(layer, grid)
    assert req["method"] == "data.computePixels"
    png = viewer.data.computePixels(json.loads(json.dumps(req["request"])))
    got = np.asarray(PILImage.open(io.BytesIO(png)).convert("RGBA"))
    want = render_rgba(layer.spec(), grid)
    assert got.shape == want.shape
    assert (got[..., 3] == 0).any() and (got[..., 3] == 255).any()  # clouds are holes
    assert np.array_equal(got[..., 3] > 0, want[..., 3] > 0)
    assert np.abs(got[..., :3].astype(int) - want[..., :3]).max() <= 1


def test_two_layers_with_one_name_get_unique_names(tmp_path, monkeypatch):
    """geemap code often adds layers under one name: the second becomes 'name (2)'."""
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path))
    m = viewer.Map()
    img = viewer.Image("COPERNICUS/S2/SAMPLE")
    m.add_layer(img, {"bands": ["B4"], "min": 0, "max": 3000}, "x")
    m.add_layer(img, {"bands": ["B3"], "min": 0, "max": 3000}, "x")
    assert [l.name for l in m.layers] == ["x", "x (2)"]
    assert m.layer("x (2)").bands == ["B3"]


def test_request_json_of_a_layer_with_per_band_gammas_keeps_them(tmp_path, monkeypatch):
    """getPixels takes one gamma; a layer with a gamma per band exports its display expression,
    and that request draws the layer's tiles' pixels (each band with its own gamma)."""
    from viewer.core.tiles import render_rgba
    from viewer.ui.export import layer_request

    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path))
    m = viewer.Map()
    vis = {"bands": ["B4", "B3", "B2"], "min": 300, "max": 1800}
    one = m.add_layer(viewer.Image("COPERNICUS/S2/SAMPLE"), dict(vis, gamma=1.3), "one gamma")
    per = m.add_layer(viewer.Image("COPERNICUS/S2/SAMPLE"), dict(vis, gamma=[0.6, 1.0, 2.0]), "per band")
    grid = m.state.current_grid()
    assert layer_request(one, grid)["method"] == "data.getPixels"
    req = layer_request(per, grid)
    assert req["method"] == "data.computePixels"
    got = np.asarray(PILImage.open(io.BytesIO(viewer.data.computePixels(json.loads(json.dumps(req["request"]))))))
    want = render_rgba(per.spec(), grid)
    assert got.shape[:2] == want.shape[:2] and np.abs(got[..., :3].astype(int) - want[..., :3]).max() <= 1
    assert not np.array_equal(want, render_rgba(one.spec(), grid))  # the gammas do change the pixels
