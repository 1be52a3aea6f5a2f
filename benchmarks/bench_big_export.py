"""Benchmark a big export three ways on the same grid, side by side in one run.

    uv run python benchmarks/bench_big_export.py [--size 12000] [--chunk 2048] [--workers N] [--crs EPSG:3857]

The grid: ``--size`` x ``--size`` pixels in ``--crs`` (default Web Mercator) covering the bundled
Landsat sample's scene, one band (B4, uint16), bilinear. Written three ways:

1. **Dask**: :func:`viewer.jobs.big_export.start_export` on a local cluster of ``--workers``
   worker processes (default: one per CPU), one thread each; the chunks' arrays travel back to
   this process, which writes them into the tiled GeoTIFF and copies that as a COG. The
   cluster's start is timed apart (a server keeps its cluster).
2. **One process**: :func:`viewer.core.chunked.export_chunks`, the same chunks one after another
   in this process, the same writer.
3. **Bare GDAL**: one ``rasterio.warp.reproject`` of the band file onto the whole grid (bilinear,
   single-threaded, into memory), and the same array written as a COG with rasterio (the same
   creation options, ``viewer.core.chunked.COG_OPTIONS``), to compare the whole job.

Prints the seconds of each (median of ``--repeat``), the ratios, and whether the Dask COG equals
the one-process COG and the bare warp pixel for pixel (across CRSs the chunks are GDAL's own
chunks of the whole grid, :func:`viewer.core.chunked.gdal_windows`, so they should).
Timing assertions do not belong in tests.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GDAL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import rasterio.shutil  # noqa: E402
from affine import Affine  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.warp import reproject, transform_bounds  # noqa: E402

from viewer import Image  # noqa: E402
from viewer.core.catalog import get_catalog  # noqa: E402
from viewer.core.chunked import COG_OPTIONS, export_chunks, plan, prepare_big  # noqa: E402
from viewer.jobs.big_export import start_export  # noqa: E402

ASSET = "LANDSAT/LC08/SAMPLE"


def grid_over_scene(size: int, crs: str) -> dict:
    """``size`` x ``size`` pixels in ``crs`` over the scene, square pixels, a whole-unit origin."""
    native = Image(ASSET).bands[0].grid
    left, bottom, right, top = transform_bounds(native.crs, crs, *native.bounds)
    res = max(right - left, top - bottom) / size
    return {"dimensions": {"width": size, "height": size}, "crsCode": crs,
            "affineTransform": {"scaleX": res, "shearX": 0.0, "translateX": float(round(left)),
                                "shearY": 0.0, "scaleY": -res, "translateY": float(round(top))}}


def band_path() -> str:
    entry = get_catalog().image(ASSET)
    return next(b.path for b in entry.bands if b.id == "B4")


def bare(grid_spec: dict, out: Path) -> tuple[float, float, np.ndarray]:
    """(seconds to warp, seconds to warp and write the COG, the warped array)."""
    request = prepare_big({"expression": Image(ASSET).select(["B4"]), "grid": grid_spec})
    grid = request.grid
    t0 = time.perf_counter()
    with rasterio.open(band_path()) as src:
        warped = np.zeros((grid.height, grid.width), np.uint16)
        reproject(rasterio.band(src, 1), warped, dst_transform=grid.transform, dst_crs=grid.crs,
                  resampling=Resampling.bilinear, num_threads=1, init_dest_nodata=False)
    t1 = time.perf_counter()
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": "uint16",
               "crs": grid.crs, "transform": grid.transform, "tiled": True, "blockxsize": 512,
               "blockysize": 512, "compress": "ZSTD", "zstd_level": 1, "bigtiff": "IF_SAFER"}
    tmp = out.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as ds:
        ds.write(warped, 1)
    rasterio.shutil.copy(tmp, out, **COG_OPTIONS, overview_resampling="AVERAGE")
    tmp.unlink()
    return t1 - t0, time.perf_counter() - t0, warped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=12000)
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--crs", default="EPSG:3857")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    grid = grid_over_scene(args.size, args.crs)
    params = {"expression": Image(ASSET).select(["B4"]).resample("bilinear"), "grid": grid}
    request = prepare_big(params)
    mib = request.nbytes / 2**20
    windows = plan(request, args.chunk)
    kind = "GDAL's own chunks" if request.gdal_windows else f"chunks of {args.chunk}"
    print(f"grid {args.size}x{args.size} {args.crs}, 1 band uint16 ({mib:.0f} MiB), bilinear, {len(windows)} {kind} "
          f"(largest {max(w.width * w.height for w in windows) / 1e6:.1f} Mpx); {os.cpu_count()} CPUs, "
          f"{args.workers} Dask worker processes")
    folder = Path(tempfile.mkdtemp(prefix="bench_big_export_"))
    t = time.perf_counter()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster, set_as_default=False)
    start = time.perf_counter() - t
    times: dict[str, list[float]] = {"dask": [], "one process": [], "bare warp": [], "bare warp + COG": []}
    warped = None
    for i in range(args.repeat):
        t = time.perf_counter()
        start_export(params, folder / f"dask{i}.tif", client=client, chunk=args.chunk).result()
        times["dask"].append(time.perf_counter() - t)
        t = time.perf_counter()
        export_chunks(request, folder / f"one{i}.tif", args.chunk)
        times["one process"].append(time.perf_counter() - t)
        warp, whole, warped = bare(grid, folder / f"bare{i}.tif")
        times["bare warp"].append(warp)
        times["bare warp + COG"].append(whole)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'method':<18}{'seconds':>9}{'vs bare warp + COG':>21}{'vs bare warp':>14}")
    for k, v in med.items():
        print(f"{k:<18}{v:9.2f}{v / med['bare warp + COG']:20.2f}x{v / med['bare warp']:13.2f}x")
    print(f"(local cluster start: {start:.1f} s, not counted)")
    with rasterio.open(folder / "dask0.tif") as a, rasterio.open(folder / "one0.tif") as b:
        got = a.read(1)
        same_chunked = np.array_equal(got, b.read(1)) and np.array_equal(a.read_masks(1), b.read_masks(1))
    equal = float((got == warped).mean())
    print(f"dask COG == one-process COG: {same_chunked}; dask COG == bare warp: {np.array_equal(got, warped)} "
          f"({equal:.4%} of pixels identical)")
    print(f"file sizes: dask {os.path.getsize(folder / 'dask0.tif') / 2**20:.1f} MB, "
          f"bare {os.path.getsize(folder / 'bare0.tif') / 2**20:.1f} MB")
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
