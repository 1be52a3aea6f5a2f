"""The evaluator against an independent reference: GDAL called directly through rasterio."""
import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject, transform as warp_points

import viewer
from viewer.core.evaluate import evaluate
from viewer.core.grid import Grid

def b4_path() -> str:
    return viewer.get_catalog().image("LANDSAT/LC08/SAMPLE").bands[3].path


def reference(grid: Grid, method: Resampling) -> np.ndarray:
    """Bare rasterio.warp.reproject from the full-resolution file onto the grid."""
    out = np.zeros(grid.shape, np.uint16)
    with rasterio.open(b4_path()) as src:
        reproject(rasterio.band(src, 1), out, dst_transform=grid.transform, dst_crs=grid.crs,
                  resampling=method, src_nodata=None, dst_nodata=0)
    return out


def centre_lonlat():
    with rasterio.open(b4_path()) as src:
        b = src.bounds
        xs, ys = warp_points(src.crs, "EPSG:4326", [(b.left + b.right) / 2], [(b.bottom + b.top) / 2])
    return xs[0], ys[0]


def grids() -> dict[str, Grid]:
    lon, lat = centre_lonlat()
    with rasterio.open(b4_path()) as src:
        crs = src.crs
        b = src.bounds
    out = {}
    # Web Mercator, ~1.3x the native pixel size (no overview used), fully inside the scene
    x, y = warp_points("EPSG:4326", "EPSG:3857", [lon], [lat])
    out["3857"] = Grid(CRS.from_epsg(3857), Affine(35.0, 0, x[0] - 3000, 0, -35.0, y[0] + 3000), 171, 171)
    # Geographic lon/lat grid
    out["4326"] = Grid(CRS.from_epsg(4326), Affine(0.0003, 0, lon - 0.05, 0, -0.0003, lat + 0.05), 333, 333)
    # Neighbouring UTM zone
    x, y = warp_points("EPSG:4326", "EPSG:32617", [lon], [lat])
    out["32617"] = Grid(CRS.from_epsg(32617), Affine(31.0, 0, x[0] - 4000, 0, -31.0, y[0] + 4000), 250, 250)
    # Shear / rotation in the native CRS (20 degrees)
    a = math.radians(20)
    rot = Affine(30 * math.cos(a), -30 * math.sin(a), (b.left + b.right) / 2 - 2000,
                 30 * math.sin(a), -30 * math.cos(a), (b.bottom + b.top) / 2 + 2000)
    out["shear"] = Grid(crs, rot, 160, 140)
    # Crossing the source's top-left edge, at a non-aligned 25 m pixel
    out["edge"] = Grid(crs, Affine(25.0, 0, b.left - 1000.5, 0, -25.0, b.top + 1000.5), 200, 200)
    return out


@pytest.mark.parametrize("crs_code", ["EPSG:4326", "OGC:CRS84", "EPSG:3857"])
def test_getpixels_onto_a_crs_alone_covers_the_scene_and_equals_bare_gdal(crs_code):
    """grid = {"crsCode": ...} only: the scene in that CRS at about its own resolution (a geographic CRS
    was refused before: rasterio needs densified bounds there)."""
    import io
    tif = viewer.data.getPixels({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "fileFormat": "GEO_TIFF",
                                 "grid": {"crsCode": crs_code}})
    with rasterio.open(io.BytesIO(tif)) as ds:
        grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
        values, valid = ds.read(1), ds.read_masks(1) > 0
    with rasterio.open(b4_path()) as src:
        corners = warp_points(src.crs, grid.crs, [src.bounds.left, src.bounds.right], [src.bounds.top, src.bounds.bottom])
    left, right, top, bottom = *sorted(corners[0]), *sorted(corners[1], reverse=True)
    g = grid.transform
    assert g.c <= left and g.c + g.a * grid.width >= right and g.f >= top and g.f + g.e * grid.height <= bottom
    assert 0.5 < valid.mean() < 1  # the rotated scene inside its bounding box
    ref = reference(grid, Resampling.nearest)
    assert np.array_equal(values[valid], ref[valid]) and np.array_equal(~valid, ref == 0)


@pytest.mark.parametrize("name", ["3857", "4326", "32617", "shear", "edge"])
def test_nearest_identical_to_bare_gdal(name):
    grid = grids()[name]
    ref = reference(grid, Resampling.nearest)
    layer = evaluate(viewer.Image("LANDSAT/LC08/SAMPLE").select("B4").node, grid)[0]
    valid = layer.mask_or_ones() > 0
    assert valid.any()
    assert np.array_equal(layer.values[valid].astype(np.uint16), ref[valid])
    # the source has no zeros: reference zeros are exactly where we report masked pixels
    assert np.array_equal(~valid, ref == 0)
    if name == "edge":
        assert (~valid).any() and valid.any()


@pytest.mark.parametrize("name", ["3857", "4326", "32617", "shear", "edge"])
def test_bilinear_within_one_unit_of_bare_gdal(name):
    grid = grids()[name]
    ref = reference(grid, Resampling.bilinear)
    img = viewer.Image("LANDSAT/LC08/SAMPLE").select("B4").resample("bilinear")
    layer = evaluate(img.node, grid)[0]
    full = layer.mask_or_ones() >= 1
    both = full & (ref > 0)
    assert both.mean() > 0.3
    diff = np.abs(layer.values[both].astype(np.float64) - ref[both].astype(np.float64))
    assert diff.max() <= 1.0


def test_identity_grid_returns_source_bytes_exactly():
    raw = viewer.data.getPixels({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "fileFormat": "NPY"})
    import io

    arr = np.load(io.BytesIO(raw))
    with rasterio.open(b4_path()) as src:
        direct = src.read(1)
    assert arr["B4"].dtype == np.uint16
    assert arr["B4"].tobytes() == direct.tobytes()


def test_window_of_native_grid_is_exact_subset():
    with rasterio.open(b4_path()) as src:
        direct = src.read(1)
        t = src.transform @ Affine.translation(100, 50)
        crs = src.crs
    grid = Grid(crs, t, 64, 32)
    layer = evaluate(viewer.Image("LANDSAT/LC08/SAMPLE").select("B4").node, grid)[0]
    assert layer.mask is None
    assert np.array_equal(layer.values, direct[50:82, 100:164])


def test_zoomed_out_reads_overview_not_full_resolution():
    with rasterio.open(b4_path()) as src:
        assert src.overviews(1), "sample COG must carry overviews"
        factor = src.overviews(1)[0]
        crs = src.crs
        with rasterio.open(b4_path(), overview_level=0) as ovr:
            ovr_data = ovr.read(1)
            ovr_t = ovr.transform
    grid = Grid(crs, ovr_t, ovr_data.shape[1], ovr_data.shape[0])
    layer = evaluate(viewer.Image("LANDSAT/LC08/SAMPLE").select("B4").node, grid)[0]
    # onto the overview's own grid, values equal the overview's (average-resampled) pixels
    assert np.array_equal(layer.values, ovr_data)
    assert factor >= 2


def test_initial_mask_from_nodata_internal_mask_and_alpha(tmp_path):
    data = np.arange(1, 17, dtype=np.uint16).reshape(4, 4)
    data[0, 0] = 9999
    t = Affine(10, 0, 500000, 0, -10, 4000000)
    prof = dict(driver="GTiff", width=4, height=4, count=1, dtype="uint16", crs="EPSG:32616", transform=t)
    with rasterio.open(tmp_path / "nodata.tif", "w", nodata=9999, **prof) as dst:
        dst.write(data, 1)
    with rasterio.Env(GDAL_TIF_INTERNAL_MASK=True):
        with rasterio.open(tmp_path / "mask.tif", "w", **prof) as dst:
            dst.write(data, 1)
            m = np.full((4, 4), 255, np.uint8)
            m[3, 3] = 0
            dst.write_mask(m)
    rgba = dict(prof, count=2, dtype="uint8")
    with rasterio.open(tmp_path / "alpha.tif", "w", photometric="MINISBLACK", **rgba) as dst:
        dst.write(np.full((4, 4), 7, np.uint8), 1)
        alpha = np.full((4, 4), 255, np.uint8)
        alpha[1, 2] = 0
        dst.write(alpha, 2)
        dst.colorinterp = [rasterio.enums.ColorInterp.gray, rasterio.enums.ColorInterp.alpha]

    for name, hole in (("nodata.tif", (0, 0)), ("mask.tif", (3, 3)), ("alpha.tif", (1, 2))):
        img = viewer.Image.open(tmp_path / name)
        assert img.bandNames().getInfo() == ["b1"], name  # the alpha band is the mask, not a band
        out = viewer.data.computePixels({"expression": img.mask(), "fileFormat": "NUMPY_NDARRAY"})
        expected = np.ones((4, 4))
        expected[hole] = 0
        assert out["b1"].tolist() == expected.tolist(), name
        # also through the warp path: a grid one pixel larger on each side
        grid = Grid(img.bands[0].grid.crs, t @ Affine.translation(-1, -1), 6, 6)
        layer = evaluate(img.node, grid)[0]
        m = layer.mask_or_ones()
        assert m[hole[0] + 1, hole[1] + 1] == 0, name
        assert m[0, 0] == 0 and m[5, 5] == 0 and m[3, 2] == 1 and m.sum() == 15, name


# issue 9: outputs past the tile sampler stay identical to a bare GDAL warp ---------------------------
def _scene(tmp_path, size=900, bands=1, dtype="uint16") -> str:
    """A UTM scene without zeros (so a bare warp's zeros are exactly its unwritten pixels)."""
    rng = np.random.default_rng(9)
    data = rng.integers(1, 4000, (bands, size, size)).astype(dtype)
    path = tmp_path / f"scene_{bands}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=bands, dtype=dtype,
                       crs="EPSG:32616", transform=Affine(30, 0, 400000, 0, -30, 3420000), tiled=True,
                       blockxsize=256, blockysize=256) as dst:
        dst.write(data)
    return str(path)


def _grids(path: str, n: int) -> dict[str, Grid]:
    """Web Mercator, geographic and rotated grids of n x n pixels: inside the scene, across its corner
    (most of the grid off it: GDAL splits such a warp into chunks) and around it."""
    with rasterio.open(path) as src:
        b, crs = src.bounds, src.crs
    (lon,), (lat,) = warp_points(crs, "EPSG:4326", [(b.left + b.right) / 2], [(b.bottom + b.top) / 2])
    (mx,), (my,) = warp_points("EPSG:4326", "EPSG:3857", [lon], [lat])
    (cx,), (cy,) = warp_points(crs, "EPSG:3857", [b.left], [b.top])
    merc = CRS.from_epsg(3857)
    out = {
        "inside": Grid(merc, Affine(20.0, 0, mx - n * 10, 0, -20.0, my + n * 10), n, n),
        "corner": Grid(merc, Affine(30.0, 0, cx - n * 15, 0, -30.0, cy + n * 15), n, n),
        "around": Grid(merc, Affine(45.0, 0, mx - n * 22.5, 0, -45.0, my + n * 22.5), n, n),
        "lonlat": Grid(CRS.from_epsg(4326), Affine(0.0004, 0, lon - n * 0.0002, 0, -0.0004, lat + n * 0.0002), n, n),
    }
    a = math.radians(15)
    out["rotated"] = Grid(crs, Affine(25 * math.cos(a), -25 * math.sin(a), b.left - 2000, 25 * math.sin(a),
                                      -25 * math.cos(a), b.top + 3000), n, n)
    return out


def _bare(path: str, grid: Grid, method: Resampling, bands: list[int]) -> np.ndarray:
    out = np.zeros((len(bands), grid.height, grid.width), np.uint16)
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, bands), out, dst_transform=grid.transform, dst_crs=grid.crs,
                  resampling=method, num_threads=1)
    return out


@pytest.mark.parametrize("name", ["inside", "corner", "around", "lonlat", "rotated"])
def test_exact_sampler_above_the_tile_threshold_is_identical_to_bare_gdal(tmp_path, name):
    """Nearest grids between TILE_SAMPLER_PIXELS and SAMPLER_MAX_PIXELS take the exact sampler from
    their second request on: values and written pixels equal a bare reproject (GDAL's chunks and
    edge retries reproduced), as the GDAL warp of the first request does."""
    from viewer.core import read

    path = _scene(tmp_path, bands=3)
    n = 600
    assert read.TILE_SAMPLER_PIXELS < n * n <= read.SAMPLER_MAX_PIXELS
    grid = _grids(path, n)[name]
    ref = _bare(path, grid, Resampling.nearest, [1, 2, 3])
    img = viewer.Image.open(path)
    first = evaluate(img.node, grid)  # GDAL warp
    key = ("gdal", 48, 48) + read._map_key(*_native(path), grid)
    assert read._maps.get(key) is None
    second = evaluate(img.node, grid)  # exact sampler
    assert read._maps.get(key) is not None
    for raster in (first, second):
        valid = raster[0].mask_or_ones() > 0
        np.testing.assert_array_equal(valid, ref[0] > 0)
        for i in range(3):
            np.testing.assert_array_equal(raster[i].values, ref[i])  # masked pixels are 0 in both
    if name in ("corner", "rotated"):
        assert 0 < (ref[0] > 0).mean() < 1


def _native(path: str):
    with rasterio.open(path) as src:
        return src.transform, src.crs, src.width, src.height


@pytest.mark.parametrize("method", ["nearest", "bilinear", "cubic"])
def test_warp_without_alpha_writes_the_pixels_an_alpha_warp_marks(tmp_path, method):
    """Larger grids warp without an alpha band; approx.valid_mask tells which pixels GDAL wrote, equal
    to the alpha band of the same warp, also where GDAL splits the warp for its memory limit."""
    from viewer.core import approx

    path = _scene(tmp_path)
    radius = {"nearest": 0, "bilinear": 1, "cubic": 2}[method]
    with rasterio.open(path) as src:
        for name, grid in _grids(path, 700).items():
            for limit_mb in (64, 1):  # 1 MB: GDAL splits the warp into many chunks
                dst = np.zeros((2, grid.height, grid.width), np.uint16)
                reproject(rasterio.band(src, 1), dst, dst_transform=grid.transform, dst_crs=grid.crs,
                          resampling=Resampling[method], dst_alpha=2, num_threads=1, warp_mem_limit=limit_mb)
                chunks = approx.warp_chunks(src.transform, src.crs, src.width, src.height, grid, radius, 16, 48,
                                            memory_limit=limit_mb * 1024 * 1024)
                assert chunks is not None and (limit_mb == 64 or len(chunks) > 1)
                mask = approx.chunks_mask(chunks, src.transform, src.crs, src.width, src.height, grid)
                written = np.ones(grid.shape, bool) if mask is None else mask > 0
                np.testing.assert_array_equal(written, dst[1] > 0, err_msg=f"{name} {limit_mb} MB")


@pytest.mark.parametrize("method", [Resampling.nearest, Resampling.bilinear])
def test_large_grid_across_the_edge_equals_bare_gdal_and_masks_unwritten_pixels(tmp_path, method):
    """A grid past SAMPLER_MAX_PIXELS, mostly off the scene: one GDAL warp without alpha; values equal a
    bare reproject; the (lazy) mask is 0 exactly where the bare warp wrote nothing."""
    from viewer.core import read

    path = _scene(tmp_path)
    n = 1100
    assert n * n > read.SAMPLER_MAX_PIXELS
    grid = _grids(path, n)["corner"]
    ref = _bare(path, grid, method, [1])[0]
    img = viewer.Image.open(path)
    if method != Resampling.nearest:
        img = img.resample(method.name)
    raw = viewer.data.computePixels({"expression": img, "grid": grid.to_dict(), "fileFormat": "NUMPY_NDARRAY"})
    np.testing.assert_array_equal(raw["b1"], ref)
    band = evaluate(img.node, grid)[0]
    np.testing.assert_array_equal(band.mask_or_ones() > 0, ref > 0)


def test_written_pixels_across_the_antimeridian_and_over_the_pole(tmp_path):
    """The emulation of GDAL's chunks also holds for a geographic source stored across 180 degrees
    (GDAL wraps longitudes around its centre) and a polar one; a pole inside the grid falls back."""
    from viewer.core import approx
    from viewer.core.tiles import tile_grid

    rng = np.random.default_rng(3)
    sources = {
        "across 180": ("EPSG:4326", Affine(0.1, 0, 170, 0, -0.1, 10), (200, 200)),
        "polar": ("EPSG:3413", Affine(10000, 0, -1500000, 0, -10000, 1500000), (300, 300)),
        "global": ("EPSG:4326", Affine(1, 0, -180, 0, -1, 90), (180, 360)),
    }
    grids = {
        "across 180": [tile_grid(4, 0, 7), tile_grid(4, 15, 7), tile_grid(3, 7, 3),
                       Grid(CRS.from_epsg(4326), Affine(0.05, 0, 165, 0, -0.05, 12), 600, 500)],
        "polar": [tile_grid(2, 1, 0), tile_grid(1, 0, 0),
                  Grid(CRS.from_epsg(4326), Affine(0.5, 0, -180, 0, -0.25, 90), 720, 120)],
        "global": [tile_grid(2, 3, 1)],
    }
    for name, (crs, transform, (h, w)) in sources.items():
        path = tmp_path / f"{name.replace(' ', '_')}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="uint8", crs=crs,
                           transform=transform) as dst:
            dst.write(rng.integers(1, 200, (h, w)).astype(np.uint8), 1)
        with rasterio.open(path) as src:
            for grid in grids[name]:
                for method, radius in ((Resampling.nearest, 0), (Resampling.bilinear, 1)):
                    ref = np.zeros((2, grid.height, grid.width), np.uint8)
                    reproject(rasterio.band(src, 1), ref, dst_transform=grid.transform, dst_crs=grid.crs,
                              resampling=method, dst_alpha=2, num_threads=1)
                    chunks = approx.warp_chunks(src.transform, src.crs, src.width, src.height, grid, radius, 8, 40)
                    assert chunks is not None, name
                    mask = approx.chunks_mask(chunks, src.transform, src.crs, src.width, src.height, grid)
                    written = np.ones(grid.shape, bool) if mask is None else mask > 0
                    assert (ref[1] > 0).any()
                    np.testing.assert_array_equal(written, ref[1] > 0, err_msg=f"{name} {method.name}")
        if name == "global":  # the north pole on a polar stereographic grid: GDAL samples a grid of points
            north = Grid(CRS.from_epsg(3413), Affine(20000, 0, -3000000, 0, -20000, 3000000), 300, 300)
            assert approx.warp_chunks(transform, CRS.from_string(crs), w, h, north, 0, 8, 40) is None


def _scene_typed(tmp_path, dtype: str, bands: int = 2, nodata=None, size: int = 600) -> str:
    """A UTM scene of ``dtype`` without zeros (and, with ``nodata``, a block of nodata pixels)."""
    rng = np.random.default_rng(11)
    data = rng.integers(1, 250, (bands, size, size)).astype(dtype)
    if dtype.startswith("float"):
        data += rng.random((bands, size, size)).astype(dtype)
    if nodata is not None:
        data[:, 40:140, 60:200] = nodata
    path = tmp_path / f"typed_{dtype}_{bands}_{nodata}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=bands, dtype=dtype, nodata=nodata,
                       crs="EPSG:32616", transform=Affine(30, 0, 400000, 0, -30, 3420000), tiled=True,
                       blockxsize=256, blockysize=256) as dst:
        dst.write(data)
    return str(path)


def _bare_typed(path: str, grid: Grid, method: Resampling, count: int) -> np.ndarray:
    with rasterio.open(path) as src:
        out = np.zeros((count, grid.height, grid.width), src.dtypes[0])
        reproject(rasterio.band(src, list(range(1, count + 1))), out, dst_transform=grid.transform, dst_crs=grid.crs,
                  resampling=method, num_threads=1, init_dest_nodata=False)
    return out


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
@pytest.mark.parametrize("method", ["nearest", "bilinear", "bicubic"])
def test_native_grid_shifted_partly_off_the_source_is_read_without_a_warp(tmp_path, monkeypatch, dtype, method):
    """The source's own grid shifted by whole pixels and partly (or wholly) off it: the overlap is read as
    is, no GDAL warp; values equal a bare reproject's, and the (lazy) mask is 1 exactly where it wrote."""
    from viewer.core import read

    path = _scene_typed(tmp_path, dtype)
    with rasterio.open(path) as src:
        native = Grid(src.crs, src.transform, src.width, src.height)
    warps = []
    real = read.reproject
    monkeypatch.setattr(read, "reproject", lambda *a, **k: warps.append(1) or real(*a, **k))
    img = viewer.Image.open(path)
    if method != "nearest":
        img = img.resample(method)
    for col, row, w, h in ((-250, -180, 700, 500), (200, 300, 500, 400), (-100, 100, 800, 300),
                           (650, 0, 400, 400)):
        grid = native.window(col, row, w, h)
        assert w * h > read.TILE_SAMPLER_PIXELS
        ref = _bare_typed(path, grid, Resampling[method.replace("bicubic", "cubic")], 2)
        raw = viewer.data.computePixels({"expression": img, "grid": grid.to_dict(), "fileFormat": "NUMPY_NDARRAY"})
        for i, name in enumerate(["b1", "b2"]):
            np.testing.assert_array_equal(raw[name], ref[i], err_msg=f"{dtype} {method} {col},{row}")
        raster = evaluate(img.node, grid)
        np.testing.assert_array_equal(raster[0].mask_or_ones() > 0, ref[0] > 0)
    assert not warps


@pytest.mark.parametrize("method", [Resampling.nearest, Resampling.bilinear])
def test_mask_of_a_warp_without_alpha_is_built_only_when_asked_and_falls_back_to_gdal(tmp_path, monkeypatch,
                                                                                      method):
    """A raw output of a grid across the source's edge never reproduces GDAL's chunks (its values are 0
    where nothing was written); the mask, asked for, comes from the chunks, or where they cannot be
    reproduced from the alpha band of the same warp: both equal the pixels a bare warp wrote."""
    from viewer.core import approx, read

    path = _scene(tmp_path, bands=3)
    grid = _grids(path, 1100)["corner"]
    ref = _bare(path, grid, method, [1, 2, 3])
    img = viewer.Image.open(path)
    if method != Resampling.nearest:
        img = img.resample(method.name)
    calls = []
    monkeypatch.setattr(read, "warp_chunks", lambda *a, **k: calls.append(1) or approx.warp_chunks(*a, **k))
    raw = viewer.data.computePixels({"expression": img, "grid": grid.to_dict(), "fileFormat": "NUMPY_NDARRAY"})
    for i, name in enumerate(["b1", "b2", "b3"]):
        np.testing.assert_array_equal(raw[name], ref[i])
    assert not calls  # the raw output asked for no mask
    raw["b1"] = 7  # the structured array is the caller's own (a view of the fresh warp, not of a cache)
    again = viewer.data.computePixels({"expression": img, "grid": grid.to_dict(), "fileFormat": "NUMPY_NDARRAY"})
    np.testing.assert_array_equal(again["b1"], ref[0])
    summed = evaluate(img.select("b1").multiply(2).add(img.select("b3")).node, grid)[0]  # planes of one warp
    np.testing.assert_array_equal(summed.values[ref[0] > 0], (ref[0] * 2.0 + ref[2])[ref[0] > 0])
    raster = evaluate(img.node, grid)
    np.testing.assert_array_equal(raster.mask() > 0, ref[0] > 0)
    assert calls
    monkeypatch.setattr(read, "warp_chunks", lambda *a, **k: None)  # a grid the emulation does not reproduce
    raster = evaluate(img.node, grid)
    np.testing.assert_array_equal(raster[1].values, ref[1])
    np.testing.assert_array_equal(raster.mask() > 0, ref[0] > 0)


@pytest.mark.parametrize("nodata", [0, 7])
@pytest.mark.parametrize("method", [Resampling.nearest, Resampling.bilinear])
def test_masked_source_across_its_corner_equals_bare_gdal(tmp_path, method, nodata):
    """A source with nodata on a grid across its corner (and the native grid shifted off it): raw values
    equal a bare reproject's of each band (nodata and unwritten pixels 0; each band masked by its own
    nodata pixels, Earth Engine's band masks: a multi-band GDAL warp would keep a pixel that is nodata in
    one band only), the mask is 0 exactly there. Nearest reads the bands in one warp without an alpha band."""
    path = _scene_typed(tmp_path, "uint16", bands=3, nodata=nodata)
    with rasterio.open(path) as src:
        native = Grid(src.crs, src.transform, src.width, src.height)
    img = viewer.Image.open(path)
    if method != Resampling.nearest:
        img = img.resample(method.name)
    for grid in (_grids(path, 700)["corner"], _grids(path, 700)["rotated"], native.window(-300, -200, 700, 700)):
        with rasterio.open(path) as src:
            ref = np.zeros((3, grid.height, grid.width), np.uint16)
            for i in range(3):
                reproject(rasterio.band(src, i + 1), ref[i], dst_transform=grid.transform, dst_crs=grid.crs,
                          resampling=method, num_threads=1, init_dest_nodata=False)
        raw = viewer.data.computePixels({"expression": img, "grid": grid.to_dict(), "fileFormat": "NUMPY_NDARRAY"})
        for i, name in enumerate(["b1", "b2", "b3"]):
            np.testing.assert_array_equal(raw[name], ref[i])
        raster = evaluate(img.node, grid)
        for i in range(3):
            np.testing.assert_array_equal(raster[i].mask_or_ones() > 0, ref[i] > 0)
        band3 = evaluate(img.select(["b3"]).node, grid)[0]  # a band not numbered 1 alone (was an error)
        np.testing.assert_array_equal(band3.values, ref[2])
