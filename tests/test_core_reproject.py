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
