"""Benchmark the core's pixel fetch against a bare GDAL warp, side by side in one run.

    uv run python benchmarks/bench_core.py [REPEAT] [--size 2048] [--checkout PATH] [--only pixels]

1. ``computePixels`` (``NUMPY_NDARRAY``) against the bare ``rasterio.warp.reproject`` call for the
   same grid, over a matrix: downsampling (16x, 6x, 2x), identity (the source's own grid) and
   upsampling (2x, 6x, 16x) grids, one band and three bands, nearest and bilinear. The source is
   an 8192 x 8192 x 3 uint8 COG in EPSG:32616 (30 m, AVERAGE overviews) generated once under
   ``benchmarks/_data/``; every grid except identity is in EPSG:3857 at ``factor`` x 30 m on the
   ground around the scene centre, ``--size`` pixels a side (less where the source is too small to
   fill it), inside the source and again centred on its top-left corner (three quarters off it).
   The bare call reads the overview level the viewer reads (GDAL's AUTO rule, as
   ``gdalwarp`` does by default), single-threaded, warm, with the dataset kept open; both return
   arrays. Plus the case of issue 9: 4096 x 4096 EPSG:3857 over the bundled Landsat sample, B4.
2. Class statistics (``class_counts_array``) for a 1920 x 1080 viewport of class ids.

Prints medians, the ratio viewer / bare and how many values (and validity) are identical.
``--checkout PATH`` imports ``viewer`` from another checkout (e.g. ``git worktree add
/tmp/before <commit>``) so before and after run with the same script on the same machine.
Timing assertions do not belong in tests.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("GDAL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from affine import Affine  # noqa: E402
from rasterio.crs import CRS  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.warp import reproject, transform as warp_points  # noqa: E402

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


MASKED = DATA / "masked_uint16_4096.tif"


def make_masked() -> Path:
    """A 4096 x 4096, 3-band uint16 COG with nodata 0: values 1..4000 with zero blocks (seeded)."""
    if MASKED.exists():
        return MASKED
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    data = rng.integers(1, 4000, (3, 4096, 4096), dtype=np.uint16)
    for _ in range(40):
        r, c = rng.integers(0, 3800, 2)
        data[:, r:r + 256, c:c + 256] = 0
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as gdal_copy

    prof = dict(driver="GTiff", width=4096, height=4096, count=3, dtype="uint16", crs=SRC_CRS, transform=SRC_T,
                nodata=0, tiled=True, blockxsize=512, blockysize=512)
    with MemoryFile() as mem:
        with mem.open(**prof) as dst:
            dst.write(data)
        with mem.open() as src:
            gdal_copy(src, MASKED, driver="COG", BLOCKSIZE=512, COMPRESS="DEFLATE", OVERVIEW_RESAMPLING="NEAREST")
    return MASKED


def masked_grid(edge: bool):
    """2048^2 EPSG:3857 at the masked source's pixel size: inside it, or centred on its top-left corner."""
    from viewer.core.grid import Grid

    mx, my, k = _centre_mercator()
    (lon,), (lat,) = warp_points(SRC_CRS, "EPSG:4326", [SRC_T.c + 4096 * 15], [SRC_T.f - 4096 * 15])
    (mx,), (my,) = warp_points("EPSG:4326", "EPSG:3857", [lon], [lat])
    if edge:
        (mx,), (my,) = warp_points(SRC_CRS, "EPSG:3857", [SRC_T.c], [SRC_T.f])
    res = 30.0 * k
    return Grid(CRS.from_epsg(3857), Affine(res, 0, mx - 1024 * res, 0, -res, my + 1024 * res), 2048, 2048)


# grids ----------------------------------------------------------------------------------------
#: (label, factor): output pixel = factor x the source pixel on the ground; None = the source's own grid.
SCALES = (("down 16x", 16.0), ("down 6x", 6.0), ("down 2x", 2.0), ("identity", None),
          ("up 2x", 0.5), ("up 6x", 1 / 6), ("up 16x", 1 / 16))


def _centre_mercator() -> tuple[float, float, float]:
    """Scene centre in EPSG:3857 and the Mercator scale factor there (3857 metres per ground metre)."""
    cx, cy = SRC_T.c + SIZE * 15, SRC_T.f - SIZE * 15
    (lon,), (lat,) = warp_points(SRC_CRS, "EPSG:4326", [cx], [cy])
    (mx,), (my,) = warp_points("EPSG:4326", "EPSG:3857", [lon], [lat])
    return mx, my, 1 / np.cos(np.radians(lat))


def grid_for(factor: float | None, size: int, edge: bool = False):
    """The output grid of one row of the matrix (see the module docstring): inside the source, or
    with ``edge`` centred on the source's top-left corner (three quarters of it off the source, so
    the viewer must tell written pixels from unwritten ones)."""
    from viewer.core.grid import Grid

    if factor is None:  # a window of the source's own grid
        n = min(size, SIZE)
        off = -n // 2 if edge else (SIZE - n) // 2
        return Grid(SRC_CRS, SRC_T * Affine.translation(off, off), n, n)
    mx, my, k = _centre_mercator()
    res = 30.0 * factor * k
    n = min(size, int(0.9 * SIZE / factor / 1.1))  # stays inside the (rotated) source
    if edge:
        (mx,), (my,) = warp_points(SRC_CRS, "EPSG:3857", [SRC_T.c], [SRC_T.f])
    return Grid(CRS.from_epsg(3857), Affine(res, 0, mx - n / 2 * res, 0, -res, my + n / 2 * res), n, n)


def landsat_grid():
    """Issue 9's case: 4096 x 4096 in EPSG:3857 over the bundled Landsat sample's bounds."""
    import viewer
    from rasterio.warp import transform_bounds
    from viewer.core.grid import Grid

    with rasterio.open(viewer.get_catalog().image("LANDSAT/LC08/SAMPLE").bands[3].path) as ds:
        left, bottom, right, top = transform_bounds(ds.crs, "EPSG:3857", *ds.bounds)
    res = max(right - left, top - bottom) / 4096
    return Grid(CRS.from_epsg(3857), Affine(res, 0, left, 0, -res, top), 4096, 4096)


# the two sides --------------------------------------------------------------------------------
_handles: dict = {}


def _open(path, level):
    key = (str(path), level)
    if key not in _handles:
        _handles[key] = rasterio.open(path, **({} if level is None else {"overview_level": level}))
    return _handles[key]


def bare_warp(path, bands: list[int], grid, method: Resampling, level) -> np.ndarray:
    """The bare GDAL call onto ``grid`` from overview ``level`` (dataset kept open: warm, like the viewer's)."""
    src = _open(path, level)
    out = np.zeros((len(bands), grid.height, grid.width), src.dtypes[bands[0] - 1])
    reproject(rasterio.band(src, bands if len(bands) > 1 else bands[0]), out if len(bands) > 1 else out[0],
              dst_transform=grid.transform, dst_crs=grid.crs, resampling=method, num_threads=1,
              init_dest_nodata=False)
    return out


def cold() -> None:
    """Forget the sampler's index maps, so every call computes its grid from scratch (as a new
    request does; the bare call has nothing to keep)."""
    from viewer.core import cache, sampling

    for c in getattr(cache, "_registry", {}).values():
        if c.name in ("index maps", "index map requests"):
            c.clear()
    maps = getattr(getattr(sampling, "_local", None), "maps", None)  # before the named cache
    if maps is not None:
        maps.clear()


def ours(image, grid, fmt: str = "NUMPY_NDARRAY"):
    import viewer

    cold()
    return viewer.data.computePixels({"expression": image, "grid": grid.to_dict(), "fileFormat": fmt})


def overview_level(path, grid):
    """The overview the viewer's reader picks for ``grid`` (None = full resolution)."""
    from viewer.core.read import _pick_overview

    ds = _open(path, None)
    return _pick_overview(ds, 1, grid, ds.crs)


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def interleaved(fa, fb, repeat: int) -> tuple[list[float], list[float]]:
    """Timings of ``fa`` and ``fb`` run alternately (so drift and load hit both alike), after one warm run."""
    fa(), fb()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, acc in ((fa, ta), (fb, tb)):
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    return ta, tb


def compare(label: str, image, names: list[str], path, bands: list[int], grid, method: str, repeat: int) -> float:
    gdal_method = Resampling[method]
    level = overview_level(path, grid)
    a = ours(image, grid)
    b = bare_warp(path, bands, grid, gdal_method, level)
    same = float(np.mean([np.mean(a[n] == b[i]) for i, n in enumerate(names)]))
    if same < 1:
        print(f"    {label}: {sum(int((a[n] != b[i]).sum()) for i, n in enumerate(names))} values differ")
    t_ours, t_bare = interleaved(lambda: ours(image, grid), lambda: bare_warp(path, bands, grid, gdal_method, level),
                                 repeat)
    mo, mb = statistics.median(t_ours), statistics.median(t_bare)
    ovr = "full" if level is None else f"ovr {level}"
    print(f"  {label:9s} {len(bands)} band{'s' if len(bands) > 1 else ' '} {method:8s} {grid.width:5d}^2 {ovr:6s} "
          f"viewer {mo * 1000:8.2f} ms  bare GDAL {mb * 1000:8.2f} ms  ratio {mo / mb:5.2f}x  "
          f"identical {same * 100:7.3f} %", flush=True)
    return mo / mb


def bench_pixels(repeat: int, size: int) -> None:
    import viewer

    make_cog()
    print(f"computePixels (NUMPY_NDARRAY) vs bare rasterio.warp.reproject, source {SIZE}x{SIZE}x3 uint8 "
          f"EPSG:32616 COG, grids EPSG:3857 (identity: the source grid), up to {size}^2, median of {repeat}")
    full = viewer.Image.open(COG)
    ratios = []
    for edge in (False, True):
        if ratios:
            print(f"  inside: worst {max(ratios):.2f}x, median {statistics.median(ratios):.2f}x over {len(ratios)} cases")
        print("grids inside the source" if not edge else
              "grids centred on the source's top-left corner (3/4 off the source: unwritten pixels are masked)")
        for method in ("nearest", "bilinear"):
            for names in (["b1"], ["b1", "b2", "b3"]):
                img = full.select(names)
                if method != "nearest":
                    img = img.resample(method)
                bands = [int(n[1:]) for n in names]
                for label, factor in SCALES:
                    ratios.append(compare(label, img, names, COG, bands, grid_for(factor, size, edge), method,
                                          repeat))
    corner = ratios[len(ratios) // 2:]
    print(f"  corner: worst {max(corner):.2f}x, median {statistics.median(corner):.2f}x over {len(corner)} cases")
    over = sum(r > 1.2 for r in ratios)
    print(f"  worst ratio {max(ratios):.2f}x, median {statistics.median(ratios):.2f}x over {len(ratios)} cases, "
          f"{over} above 1.2x")
    masked = make_masked()
    print("a masked source: 4096x4096x3 uint16 COG, nodata 0 (zero blocks), nearest, 2048^2 grids")
    for edge in (False, True):
        for names in (["b1"], ["b1", "b2", "b3"]):
            bands = [int(n[1:]) for n in names]
            compare("inside" if not edge else "corner", viewer.Image.open(masked).select(names), names, masked, bands,
                    masked_grid(edge), "nearest", repeat)
    landsat = viewer.Image("LANDSAT/LC08/SAMPLE")
    path = viewer.get_catalog().image("LANDSAT/LC08/SAMPLE").bands[3].path
    print("issue 9's case: Landsat sample B4 (627x603 uint16) onto 4096^2 EPSG:3857 over its bounds")
    for method in ("nearest", "bilinear"):
        img = landsat.select(["B4"])
        if method != "nearest":
            img = img.resample(method)
        compare("landsat", img, ["B4"], path, [1], landsat_grid(), method, repeat)


def gdal_png(planes: list[np.ndarray], zlevel: int) -> bytes:
    """The same pixel planes through GDAL's PNG driver (``rasterio``, in memory) at ``zlevel``."""
    from rasterio.io import MemoryFile

    h, w = planes[0].shape
    with MemoryFile() as mem:
        with mem.open(driver="PNG", width=w, height=h, count=len(planes), dtype="uint8", zlevel=zlevel) as ds:
            ds.write(np.stack(planes))
        return mem.read()


def bench_png(repeat: int) -> None:
    """computePixels PNG end to end (before/after with --checkout), and its encoder against GDAL's PNG
    driver on the same pixels (grey / grey + alpha / RGB / RGB + alpha planes)."""
    import io
    import warnings

    from PIL import Image as PILImage

    import viewer
    from viewer.core.evaluate import evaluate
    from viewer.core.visualize import rgba_planes
    try:
        from viewer.core.visualize import encode_png_planes
    except ImportError:  # a --checkout from before the picture formats moved to visualize
        from viewer.core.encode import encode_png_planes

    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    landsat = viewer.Image("LANDSAT/LC08/SAMPLE")
    over = landsat_grid().scaled(2048, 2048)  # the scene's bounds: transparent around the rotated scene
    inside = grid_for(1.0, 2048)  # inside the COG: opaque
    cog = viewer.Image.open(COG)
    cases = [("1 band, masked", landsat.select(["B4"]), over, [6000], [12000]),
             ("3 bands, masked", landsat.select(["B4", "B3", "B2"]), over, [6000] * 3, [12000] * 3),
             ("1 band, opaque", cog.select(["b1"]), inside, [20], [220]),
             ("3 bands, opaque", cog, inside, [20] * 3, [220] * 3)]
    print("PNG: computePixels end to end, and the same pixels encoded by the viewer vs GDAL's PNG driver "
          f"(2048^2, median of {repeat})")
    for label, img, grid, lo, hi in cases:
        vis = {"ranges": [{"min": a, "max": b} for a, b in zip(lo, hi)]}
        params = {"expression": img, "grid": grid.to_dict(), "fileFormat": "PNG", "visualizationOptions": vis}
        png = viewer.data.computePixels(params)
        t_cp = statistics.median(interleaved(lambda: viewer.data.computePixels(params), lambda: None, repeat)[0])
        planes, alpha = rgba_planes(evaluate(img.visualize(min=lo, max=hi).node, grid))
        grey = len(img.bands) == 1
        chans = ([planes[0]] if grey else list(planes)) + ([] if alpha is None else [alpha])
        mode = PILImage.open(io.BytesIO(png)).mode
        line = f"  {label:16s} computePixels {t_cp * 1e3:7.1f} ms {len(png) / 1024:6.0f} KiB ({mode:4s})"
        if "isal" in encode_png_planes.__code__.co_varnames:  # the encoder comparison needs this version
            from viewer.core.pixels import PNG_ISAL, PNG_LEVEL

            def ours():
                return encode_png_planes(planes, alpha, PNG_LEVEL, isal=PNG_ISAL)

            t_ours, t_g6 = interleaved(ours, lambda: gdal_png(chans, 6), repeat)
            t_g1 = interleaved(lambda: gdal_png(chans, 1), lambda: None, repeat)[0]
            same = all(np.array_equal(np.asarray(PILImage.open(io.BytesIO(x)).convert("RGBA")),
                                      np.asarray(PILImage.open(io.BytesIO(ours())).convert("RGBA")))
                       for x in (gdal_png(chans, 6), gdal_png(chans, 1)))
            kib = {level: len(gdal_png(chans, level)) / 1024 for level in (6, 1)}
            line += (f" | encode: viewer {statistics.median(t_ours) * 1e3:6.1f} ms {len(ours()) / 1024:6.0f} KiB, "
                     f"GDAL zlevel 6 {statistics.median(t_g6) * 1e3:6.1f} ms {kib[6]:6.0f} KiB, "
                     f"zlevel 1 {statistics.median(t_g1) * 1e3:6.1f} ms {kib[1]:6.0f} KiB, same RGBA: {same}")
        print(line, flush=True)


def bench_threshold(repeat: int) -> None:
    """read_bands (nearest, 3 bands) on grids around the sampler thresholds: one GDAL warp, the exact
    sampler building its index map (a grid's second request) and using it from the cache."""
    from viewer.core import read, sampling

    sample = getattr(read, "sample_dataset", None) or sampling.sample_dataset  # in read since issue 8
    if not hasattr(read, "TILE_SAMPLER_PIXELS"):
        print("(threshold table: needs read.TILE_SAMPLER_PIXELS)")
        return
    print(f"read_bands nearest, 3 bands uint8, EPSG:3857 grids inside the COG at 1.3x its pixel (median of {repeat}); "
          f"tile sampler up to {read.TILE_SAMPLER_PIXELS} px, exact sampler up to {read.SAMPLER_MAX_PIXELS} px")
    path = str(COG)
    mx, my, k = _centre_mercator()

    def grid_of(n: int):
        from viewer.core.grid import Grid

        res = 30.0 * 1.3 * k
        return Grid(CRS.from_epsg(3857), Affine(res, 0, mx - n / 2 * res, 0, -res, my + n / 2 * res), n, n)

    def gdal(g):
        saved = read.TILE_SAMPLER_PIXELS, read.SAMPLER_MAX_PIXELS
        read.TILE_SAMPLER_PIXELS = read.SAMPLER_MAX_PIXELS = 0
        try:
            return read.read_bands(path, (1, 2, 3), g)
        finally:
            read.TILE_SAMPLER_PIXELS, read.SAMPLER_MAX_PIXELS = saved

    def sampler_cold(g):
        cold()
        if g.width * g.height <= read.TILE_SAMPLER_PIXELS:
            return read.read_bands(path, (1, 2, 3), g)
        return sample(read.open_dataset(path), (1, 2, 3), g, True, exact_bits=(24, 24))

    def sampler_warm(g):
        if g.width * g.height <= read.TILE_SAMPLER_PIXELS:
            return read.read_bands(path, (1, 2, 3), g)
        return sample(read.open_dataset(path), (1, 2, 3), g, True, exact_bits=(24, 24))

    print(f"  {'grid':>7s} {'GDAL warp':>10s} {'sampler, map built':>19s} {'sampler, map cached':>20s}  same")
    for n in (256, 362, 363, 512, 724, 1024, 1448):
        g = grid_of(n)
        a, b = gdal(g), sampler_warm(g)
        same = all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
        t_g, t_c = interleaved(lambda: gdal(g), lambda: sampler_cold(g), repeat)
        sampler_warm(g)
        t_w = interleaved(lambda: sampler_warm(g), lambda: None, repeat)[0]
        print(f"  {n:5d}^2 {statistics.median(t_g) * 1e3:8.2f} ms {statistics.median(t_c) * 1e3:16.2f} ms "
              f"{statistics.median(t_w) * 1e3:17.2f} ms  {same}", flush=True)


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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("repeat", nargs="?", type=int, default=7, help="timed runs per case (median)")
    p.add_argument("--size", type=int, default=2048, help="output pixels per side (at most)")
    p.add_argument("--checkout", help="import viewer from this checkout instead of this one")
    p.add_argument("--only", choices=["pixels", "png", "threshold", "classes"], help="run one part")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(args.checkout).resolve() if args.checkout else ROOT.parent))
    import viewer

    print(f"viewer from {Path(viewer.__file__).parent.parent}, rasterio {rasterio.__version__}, "
          f"GDAL {rasterio.__gdal_version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    if args.only in (None, "pixels"):
        bench_pixels(args.repeat, args.size)
    if args.only in (None, "png"):
        bench_png(args.repeat)
    if args.only in (None, "threshold"):
        bench_threshold(args.repeat)
    if args.only in (None, "classes"):
        bench_class_stats(args.repeat)


if __name__ == "__main__":
    main()
