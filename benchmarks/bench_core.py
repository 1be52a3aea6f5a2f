"""Benchmark the core's pixel fetch against a bare GDAL warp, side by side in one run.

    uv run python benchmarks/bench_core.py

1. ``computePixels`` of a 4096 x 4096, 3-band grid reprojected to EPSG:3857 from a large COG
   generated once under ``benchmarks/_data/`` versus the bare ``rasterio.warp.reproject`` call
   for the same grid (same resampling, single-threaded GDAL in both, warm caches).
2. Class statistics (``class_counts_array``) for a 1920 x 1080 viewport of class ids.
Prints medians and the ratio; timing assertions do not belong in tests.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform as warp_points

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "_data"
COG = DATA / "large_rgb_8192.tif"
SIZE = 8192
SRC_CRS = CRS.from_epsg(32616)
SRC_T = Affine(30.0, 0, 300000.0, 0, -30.0, 3500000.0)


def make_cog() -> Path:
    """An 8192 x 8192, 3-band uint8 COG with smooth structure plus noise (seeded)."""
    if COG.exists():
        return COG
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(42)
    tmp = DATA / "tmp_large.tif"
    prof = dict(driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8", crs=SRC_CRS, transform=SRC_T,
                tiled=True, blockxsize=512, blockysize=512, compress="deflate")
    y = np.linspace(0, 8 * np.pi, 1024, dtype=np.float32)[:, None]
    with rasterio.open(tmp, "w", **prof) as dst:
        for r in range(0, SIZE, 1024):
            x = np.linspace(0, 8 * np.pi, SIZE, dtype=np.float32)[None, :]
            base = (np.sin(x + r / 400.0) * np.cos(y * 0.7 + r / 300.0) + 1) * 100
            for b in range(3):
                noise = rng.integers(0, 40, size=(1024, SIZE), dtype=np.uint8)
                dst.write((base * (0.7 + 0.15 * b) + noise).astype(np.uint8), b + 1,
                          window=rasterio.windows.Window(0, r, SIZE, 1024))
    from rasterio.shutil import copy as gdal_copy

    gdal_copy(tmp, COG, driver="COG", BLOCKSIZE=512, COMPRESS="DEFLATE", OVERVIEW_RESAMPLING="AVERAGE")
    tmp.unlink()
    return COG


def target_grid():
    from viewer.core.grid import Grid

    cx, cy = SRC_T.c + SIZE * 15, SRC_T.f - SIZE * 15  # scene centre (UTM)
    (lon,), (lat,) = warp_points(SRC_CRS, "EPSG:4326", [cx], [cy])
    (mx,), (my,) = warp_points("EPSG:4326", "EPSG:3857", [lon], [lat])
    res = 40.0  # Web Mercator metres: ~1.2x the source pixel on the ground, so full resolution is read
    return Grid(CRS.from_epsg(3857), Affine(res, 0, mx - 2048 * res, 0, -res, my + 2048 * res), 4096, 4096)


_bare_handle: dict = {}


def bare_warp(grid, method: Resampling) -> np.ndarray:
    """The bare GDAL call, with the dataset kept open across runs (warm, like the viewer's)."""
    src = _bare_handle.setdefault("ds", rasterio.open(COG))
    out = np.zeros((3, grid.height, grid.width), np.uint8)
    reproject(rasterio.band(src, [1, 2, 3]), out, dst_transform=grid.transform, dst_crs=grid.crs,
              resampling=method, num_threads=1, init_dest_nodata=False)
    return out


def ours(grid, method: str):
    import viewer

    img = viewer.Image.open(COG)
    if method != "nearest":
        img = img.resample(method)
    return viewer.data.computePixels({"expression": img, "grid": grid.to_dict(), "fileFormat": "NUMPY_NDARRAY"})


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_pixels(repeat: int) -> None:
    make_cog()
    grid = target_grid()
    print(f"computePixels vs bare rasterio.warp.reproject: {grid.width}x{grid.height}x3 uint8, "
          f"EPSG:32616 -> EPSG:3857, source {SIZE}x{SIZE} COG")
    for method, gdal_method in (("nearest", Resampling.nearest), ("bilinear", Resampling.bilinear)):
        a = ours(grid, method)
        b = bare_warp(grid, gdal_method)
        agree = np.mean([np.mean(a[n] == b[i]) for i, n in enumerate(a.dtype.names)])
        within1 = np.mean([np.mean(np.abs(a[n].astype(int) - b[i]) <= 1) for i, n in enumerate(a.dtype.names)])
        t_ours = timed(lambda: ours(grid, method), repeat)
        t_bare = timed(lambda: bare_warp(grid, gdal_method), repeat)
        mo, mb = statistics.median(t_ours), statistics.median(t_bare)
        print(f"  {method:8s} viewer {mo * 1000:8.1f} ms   bare GDAL {mb * 1000:8.1f} ms   "
              f"ratio {mo / mb:5.2f}x   identical {agree * 100:.3f} %, within 1 {within1 * 100:.3f} %")


def bench_class_stats(repeat: int) -> None:
    """Class legend figures for a 1920 x 1080 view: the counting kernel, and the full call
    (evaluate the catalog class layer onto a Web Mercator viewport, count, ground areas)."""
    import viewer
    from viewer.core.class_stats import class_counts, class_counts_array
    from viewer.core.classes import Classes
    from viewer.core.grid import Grid

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, size=(1080, 1920), dtype=np.uint8)
    mask = (rng.random((1080, 1920)) > 0.1).astype(np.float32)
    classes = Classes([{"id": i, "name": f"c{i}"} for i in range(6)])
    t = timed(lambda: class_counts_array(ids, mask, classes, 900.0), repeat * 4)
    print(f"class statistics, 1920x1080 uint8 ids + mask, counting kernel: median "
          f"{statistics.median(t) * 1000:.2f} ms (target < 20 ms)")
    layer = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")
    (mx,), (my,) = warp_points("EPSG:4326", "EPSG:3857", [-87.45], [30.70])
    view = Grid(CRS.from_epsg(3857), Affine(12.0, 0, mx - 960 * 12, 0, -12.0, my + 540 * 12), 1920, 1080)
    t = timed(lambda: class_counts(layer, view), repeat * 2)
    print(f"class statistics, full class_counts of LC08_RULES on a 1920x1080 EPSG:3857 view "
          f"(warp + count + ground area): median {statistics.median(t) * 1000:.2f} ms")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    bench_pixels(n)
    bench_class_stats(n)
