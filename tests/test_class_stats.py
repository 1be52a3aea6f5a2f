"""Class counts, areas, prediction-vs-truth comparison, and downsampling that never invents ids."""

import numpy as np
import pytest
from affine import Affine
from rasterio.warp import transform_bounds
from pyproj import Geod, Transformer

import viewer
from viewer.core.class_stats import class_counts, class_counts_array, compare_masks, pixel_area
from viewer.core.classes import Classes
from viewer.core.errors import InvalidArgument
from viewer.core.evaluate import evaluate
from viewer.core.grid import Grid, parse_crs
from viewer.core.segmentation import overlays
from viewer.core.sources import array_node

UTM = parse_crs("EPSG:32616")
UTM_T = Affine(30.0, 0.0, 452475.0, 0.0, -30.0, 3408645.0)
PIXELS = Grid(None, Affine.identity(), 4, 4)

TRUTH = np.array([[0, 0, 1, 1],
                  [0, 0, 1, 1],
                  [2, 2, 1, 1],
                  [2, 2, 2, 2]], np.uint8)
PRED = np.array([[0, 1, 1, 1],
                 [0, 0, 1, 2],
                 [2, 0, 1, 1],
                 [2, 2, 2, 0]], np.uint8)
TABLE = Classes([{"id": 0, "name": "bg"}, {"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}])


def class_image(ids, mask=None, classes=TABLE, crs=None, transform=None):
    """A one-band class image (kind 'class', with a table) from an array."""
    node = array_node(ids, crs, transform, None, mask, kind="class",
                      classes=classes.to_band_classes() if classes is not None else ())
    return viewer.Image(_node=node)


def by_id(rows, key):
    return {r["id"]: r[key] for r in rows}


# counts ---------------------------------------------------------------------------------------
def test_class_counts_hand_computed():
    rows = class_counts(class_image(TRUTH), PIXELS)
    assert [(r["id"], r["name"], r["count"]) for r in rows] == [(0, "bg", 4), (1, "a", 6), (2, "b", 6), (3, "c", 0)]
    assert [r["color"] for r in rows] == ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    assert by_id(rows, "area_m2") == {0: None, 1: None, 2: None, 3: None}  # pixel coordinates: no area
    assert by_id(rows, "percent") == {0: 25.0, 1: 37.5, 2: 37.5, 3: 0.0}


def test_class_counts_respect_the_mask_and_list_unknown_ids():
    mask = np.ones((4, 4), np.float32)
    mask[0, :] = 0  # two 0s and two 1s are masked
    mask[3, 3] = 0.25  # partially valid still counts (mask > 0)
    ids = TRUTH.copy()
    ids[3, 0] = 7  # not in the table
    rows = class_counts(class_image(ids, mask), PIXELS)
    assert by_id(rows, "count") == {0: 2, 1: 4, 2: 5, 3: 0, 7: 1}
    assert by_id(rows, "name")[7] == "class_7"
    # the pure-array kernel: float ids with NaN (as a warp can return), negative ids, scalar area
    vals = np.array([[1.0, np.nan], [2.0, -1.0]])
    out = class_counts_array(vals, None, Classes.from_labels({1: "x"}), pixel_area=4.0)
    assert [(r["id"], r["count"], r["area_m2"]) for r in out] == [(1, 1, 4.0), (2, 1, 4.0)]
    assert class_counts_array(np.zeros((2, 2), np.uint8), np.zeros((2, 2)), TABLE)[0]["count"] == 0


def test_class_counts_on_the_catalog_rule_layer_native_grid():
    img = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")
    grid = img.bands[0].grid
    rows = class_counts(img, grid)
    assert by_id(rows, "count") == {0: 13986, 1: 1835, 2: 295865, 3: 66395}
    assert by_id(rows, "name") == {0: "other", 1: "water", 2: "vegetation", 3: "cloud"}
    assert by_id(rows, "color")[1] == "#1f78b4"
    expected = img.get("class_percent")
    for r in rows:
        assert r["percent"] == pytest.approx(expected[str(r["id"])], abs=0.006)
    # true ground area: 30 m pixels enlarged by the UTM scale factor (k ~ 0.9996 here), not 900 m2 flat
    area = pixel_area(grid)
    assert isinstance(area, float) and 900.3 < area < 901.0
    assert by_id(rows, "area_m2")[2] == pytest.approx(295865 * area)


def test_areas_agree_across_utm_web_mercator_and_geographic_views():
    img = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")
    native = img.bands[0].grid
    ref = by_id(class_counts(img, native), "area_m2")
    total = sum(ref.values())
    for code, size in (("EPSG:3857", (700, 820)), ("EPSG:4326", (760, 700))):
        crs = parse_crs(code)
        left, bottom, right, top = transform_bounds(UTM, crs, *native.bounds, densify_pts=21)
        w, h = size
        grid = Grid(crs, Affine((right - left) / w, 0, left, 0, -(top - bottom) / h, top), w, h)
        got = by_id(class_counts(img, grid), "area_m2")
        assert sum(got.values()) == pytest.approx(total, rel=0.005), code
        for cid in (0, 2, 3):  # the classes with many pixels
            assert got[cid] == pytest.approx(ref[cid], rel=0.01), (code, cid)
        if code == "EPSG:3857":  # the nominal |det| would overstate the area by 1/cos^2(30.7 deg) ~ 1.35
            nominal = abs(grid.transform.determinant) * sum(by_id(class_counts(img, grid), "count").values())
            assert nominal / total > 1.3


def zone_area(lat1, lat2, dlon, a=6378137.0, f=1 / 298.257223563):
    """Exact area (m2) of a lat/lon cell on the ellipsoid (authalic latitude formula, Snyder 1987)."""
    e2 = f * (2 - f)
    e = np.sqrt(e2)

    def q(lat):
        s = np.sin(np.radians(lat))
        return s / (1 - e2 * s * s) - np.log((1 - e * s) / (1 + e * s)) / (2 * e)

    return a * a * (1 - e2) / 2 * np.radians(dlon) * abs(q(lat2) - q(lat1))


def test_geographic_pixel_area_on_the_ellipsoid():
    one_degree = Grid(parse_crs("EPSG:4326"), Affine(1, 0, 0, 0, -1, 1), 1, 1)
    # the formula agrees with pyproj's geodesic area of the cell (edges densified along the parallels)
    lons = np.linspace(0, 1, 201)
    geodesic, _ = Geod(ellps="WGS84").polygon_area_perimeter(
        np.concatenate([lons, lons[::-1]]), np.concatenate([np.zeros(201), np.ones(201)]))
    assert zone_area(0, 1, 1) == pytest.approx(abs(geodesic), rel=1e-6)
    assert pixel_area(one_degree) == pytest.approx(zone_area(0, 1, 1), rel=1e-4)
    high = Grid(parse_crs("EPSG:4326"), Affine(1, 0, 0, 0, -1, 61), 1, 1)
    assert pixel_area(high) == pytest.approx(zone_area(60, 61, 1), rel=1e-4)
    fine = Grid(parse_crs("EPSG:4326"), Affine(0.01, 0, 10, 0, -0.01, 61), 100, 100)
    assert np.sum(np.broadcast_to(pixel_area(fine), (100, 100))) == pytest.approx(zone_area(60, 61, 1), rel=1e-5)
    tall = Grid(parse_crs("EPSG:4326"), Affine(0.1, 0, 0, 0, -0.1, 80), 4, 600)  # 80N .. 20S
    rows = pixel_area(tall)
    assert np.shape(rows) == (600, 1)
    assert rows[0, 0] < rows[300, 0] and rows[-1, 0] > rows[0, 0]
    assert pixel_area(PIXELS) is None


# comparison -----------------------------------------------------------------------------------
def test_compare_masks_hand_computed():
    cmp = compare_masks(class_image(PRED), class_image(TRUTH), PIXELS)
    assert cmp.ids == (0, 1, 2, 3)
    assert cmp.confusion.tolist() == [[3, 1, 0, 0], [0, 5, 1, 0], [2, 0, 4, 0], [0, 0, 0, 0]]
    assert cmp.accuracy == 12 / 16 and cmp.pixel_count == 16 and cmp.excluded_count == 0
    assert cmp.iou == {0: 3 / 6, 1: 5 / 7, 2: 4 / 7, 3: None}
    assert cmp.precision == {0: 3 / 5, 1: 5 / 6, 2: 4 / 5, 3: None}
    assert cmp.recall == {0: 3 / 4, 1: 5 / 6, 2: 4 / 6, 3: None}
    assert cmp.mean_iou == pytest.approx((3 / 6 + 5 / 7 + 4 / 7) / 3)
    c1 = cmp.per_class[1]
    assert (c1["true_positive"], c1["false_positive"], c1["false_negative"], c1["truth_count"]) == (5, 1, 1, 6)
    assert cmp.to_dict()["confusion"][1] == [0, 5, 1, 0]


def test_compare_masks_masked_and_unlisted_pixels_are_left_out():
    mask = np.ones((4, 4), np.float32)
    mask[0, 1] = 0  # the (truth 0, pred 1) pixel
    pred = PRED.copy()
    pred[3, 3] = 7  # an id the table does not list
    cmp = compare_masks(class_image(pred), class_image(TRUTH, mask), PIXELS)
    # pred[3, 3] was 0 with truth 2: that (2, 0) pixel leaves the matrix
    assert cmp.confusion.tolist() == [[3, 0, 0, 0], [0, 5, 1, 0], [1, 0, 4, 0], [0, 0, 0, 0]]
    assert cmp.pixel_count == 14 and cmp.excluded_count == 1 and cmp.accuracy == 12 / 14
    assert cmp.precision[1] == 1.0


def test_difference_image_fp_fn_and_disagree():
    cmp = compare_masks(class_image(PRED), class_image(TRUTH), PIXELS)
    diff = cmp.difference_image(1)
    band = diff.bands[0]
    assert band.kind == "class" and band.grid == PIXELS and band.name == "difference"
    table = Classes.from_band(band)
    assert table.names == {0: "agree", 1: "false positive", 2: "false negative"}
    assert table.colors == {0: "#9e9e9e", 1: "#d62728", 2: "#1f77b4"} and table.background == 0
    values = evaluate(diff.node, PIXELS)[0].values
    expected = np.zeros((4, 4), np.uint8)
    expected[0, 1] = 1  # predicted 1, truth 0
    expected[1, 3] = 2  # truth 1, predicted 2
    np.testing.assert_array_equal(values, expected)
    any_diff = evaluate(cmp.difference_image().node, PIXELS)[0].values
    np.testing.assert_array_equal(any_diff, (PRED != TRUTH).astype(np.uint8))
    assert by_id(class_counts(cmp.difference_image(), PIXELS), "count") == {0: 12, 1: 4}
    with pytest.raises(InvalidArgument, match="class_id 'a' must be an integer"):
        cmp.difference_image("a")


def test_seed_example_comparison():
    """The W&B seed masks: prediction quadrants of 50 px vs truth split at 25 px."""
    pred = np.empty((100, 100), np.uint8)
    truth = np.empty((100, 100), np.uint8)
    pred[:50, :50], pred[50:, :50], pred[:50, 50:], pred[50:, 50:] = 0, 1, 2, 3
    truth[:25, :25], truth[25:, :25], truth[:25, 25:], truth[25:, 25:] = 0, 1, 2, 3
    labels = {0: "person", 1: "tree", 2: "car", 3: "road"}
    img = viewer.Image.from_array(np.zeros((100, 100, 3), np.uint8), masks={
        "predictions": {"mask_data": pred, "class_labels": labels},
        "ground_truth": {"mask_data": truth, "class_labels": labels}})
    ov = overlays(img)
    grid = ov["predictions"].grid
    cmp = compare_masks(ov["predictions"].image(), ov["ground_truth"].image(), grid)
    # truth person (25x25) lies inside predicted person; truth tree [25:100, :25] is 25 rows person + 50 tree
    assert cmp.confusion.tolist() == [[625, 0, 0, 0], [625, 1250, 0, 0], [625, 0, 1250, 0],
                                      [625, 1250, 1250, 2500]]
    assert cmp.accuracy == 5625 / 10000
    assert cmp.iou == {0: 625 / 2500, 1: 1250 / 3125, 2: 1250 / 3125, 3: 2500 / 5625}
    assert [c["name"] for c in cmp.per_class] == ["person", "tree", "car", "road"]


# downsampling never invents class ids ------------------------------------------------------------
STRIPE_IDS = {1, 5, 9}


def stripes():
    rows, cols = np.mgrid[0:512, 0:512]
    return np.array([1, 1, 5, 9], np.uint8)[(cols + rows // 4) % 4]  # averages would be ~4


def view_grids(src: Grid):
    """A much coarser grid, a rotated one, and Web Mercator / geographic views of ``src``."""
    cx, cy = src.transform @ (src.width / 2, src.height / 2)
    rotated = Grid(src.crs, Affine.translation(cx, cy) @ Affine.rotation(30) @ Affine.scale(110, -110)
                   @ Affine.translation(-70, -70), 140, 140)
    out = {"coarse": src.scaled(37, 41), "rotated": rotated}
    for code, (w, h) in (("EPSG:3857", (97, 83)), ("EPSG:4326", (61, 67))):
        crs = parse_crs(code)
        left, bottom, right, top = transform_bounds(src.crs, crs, *src.bounds, densify_pts=21)
        out[code] = Grid(crs, Affine((right - left) / w, 0, left, 0, -(top - bottom) / h, top), w, h)
        ccx, ccy = (left + right) / 2, (bottom + top) / 2
        px = (right - left) / w * 1.5
        out[code + " rotated"] = Grid(crs, Affine.translation(ccx, ccy) @ Affine.rotation(-20)
                                      @ Affine.scale(px, -px) @ Affine.translation(-30, -30), 60, 60)
    return out


def xy(t, c, r):
    return t.a * c + t.b * r + t.c, t.d * c + t.e * r + t.f


def ids_found(img, grid, resampling="nearest"):
    layer = evaluate(img.node, grid, resampling)[0]
    valid = np.ones(layer.values.shape, bool) if layer.mask is None else layer.mask > 0
    return layer.values[valid], valid.sum()


def test_class_downsampling_never_invents_ids():
    src = Grid(UTM, Affine(10, 0, 452475, 0, -10, 3408645), 512, 512)
    img = class_image(stripes(), crs=UTM, transform=src.transform,
                      classes=Classes.from_labels({1: "a", 5: "b", 9: "c"}))
    for name, grid in view_grids(src).items():
        for resampling in ("nearest", "average", "bilinear"):  # class bands ignore the request
            vals, n_valid = ids_found(img, grid, resampling)
            assert n_valid > 100, name
            found = set(np.unique(vals).tolist())
            assert found <= STRIPE_IDS and len(found) >= 2, (name, resampling, found)
        counted = {r["id"] for r in class_counts(img, grid) if r["count"]}
        assert counted <= STRIPE_IDS and len(counted) >= 2, name


def test_the_downsampling_check_can_fail():
    """The same stripes as a continuous band, averaged, do produce ids that do not exist."""
    src = Grid(UTM, Affine(10, 0, 452475, 0, -10, 3408645), 512, 512)
    cont = viewer.Image.from_array(stripes(), crs=UTM, transform=src.transform)
    vals, _ = ids_found(cont, src.scaled(37, 41), "average")
    assert not set(np.unique(vals).tolist()) <= STRIPE_IDS


@pytest.mark.parametrize("asset", ["VIEWER/SAMPLE_CLASSES/LC08_RULES", "VIEWER/SAMPLE_CLASSES/LC08_KMEANS"])
def test_catalog_class_layers_never_invent_ids(asset):
    img = viewer.Image(asset)
    band = img.bands[0]
    table = set(Classes.from_band(band).ids)
    src = band.grid
    ds_values = evaluate(img.node, src)[0].values
    to_src = {}
    for name, grid in view_grids(src).items():
        layer = evaluate(img.node, grid, "average")[0]
        valid = np.ones(grid.shape, bool) if layer.mask is None else layer.mask > 0
        found = set(np.unique(layer.values[valid]).tolist())
        assert found <= table and len(found) >= 2, (asset, name, found)
        # each output id exists in the source near the spot its pixel centre maps to (nearest
        # overviews may pick a neighbour, averaging would not give a nearby source value)
        rows, cols = np.nonzero(valid)
        x, y = xy(grid.transform, cols + 0.5, rows + 0.5)
        if grid.crs != src.crs:
            key = str(grid.crs)
            to_src.setdefault(key, Transformer.from_crs(grid.crs, src.crs, always_xy=True))
            x, y = to_src[key].transform(x, y)
        c, r = xy(~src.transform, np.asarray(x), np.asarray(y))
        c, r = np.floor(c).astype(int), np.floor(r).astype(int)
        ok = np.zeros(len(c), bool)
        for dr in range(-3, 4):
            for dc in range(-3, 4):
                rr = np.clip(r + dr, 0, src.height - 1)
                cc = np.clip(c + dc, 0, src.width - 1)
                ok |= ds_values[rr, cc] == layer.values[rows, cols]
        assert ok.mean() > 0.995, (asset, name, ok.mean())


# errors and speed -----------------------------------------------------------------------------
def test_class_stats_errors():
    three = viewer.Image.from_array(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(InvalidArgument, match=r"has 3 bands \['b1', 'b2', 'b3'\]; class statistics need exactly one"):
        class_counts(three, PIXELS)
    floats = viewer.Image.from_array(np.zeros((4, 4), np.float32))
    with pytest.raises(InvalidArgument, match="band 'b1' \\(continuous, float32\\) is not a class band"):
        class_counts(floats, PIXELS)
    with pytest.raises(InvalidArgument, match="must be a Grid"):
        class_counts(class_image(TRUTH), {"width": 4})
    with pytest.raises(InvalidArgument, match="must be a viewer.Image"):
        compare_masks(TRUTH, class_image(TRUTH), PIXELS)
    # an integer band without a table is fine: ids are named class_<id>
    ints = viewer.Image.from_array(TRUTH)
    assert by_id(class_counts(ints, PIXELS), "name") == {0: "class_0", 1: "class_1", 2: "class_2"}


def test_class_counts_of_a_full_hd_view_with_a_cold_area_cache():
    """A 1920x1080 view counted again after the pixel-area cache was cleared (timing: benchmarks)."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 12, size=(1080, 1920), dtype=np.uint8)
    grid = Grid(parse_crs("EPSG:3857"), Affine(20, 0, -9730000, 0, -20, 3600000), 1920, 1080)
    img = class_image(ids, crs=grid.crs, transform=grid.transform, classes=Classes.from_labels({0: "x"}))
    class_counts(img, grid)
    pixel_area.cache_clear()
    rows = class_counts(img, grid)
    assert sum(r["count"] for r in rows) == ids.size
    assert by_id(rows, "count")[3] == int((ids == 3).sum())
