"""Benchmark: this app's tile path against rio-tiler on the tiles a real viewport asks for.

    uv run python benchmarks/bench_tiles.py [--crs EPSG:3857|EPSG:32616|both] [--passes 3]
                                            [--layers rgb,grey] [--checkout PATH]

A large COG (8192 x 8192, 3 bands uint16, smooth field + noise, DEFLATE, 512 x 512 tiles,
AVERAGE overviews) is generated once under ``benchmarks/_data/`` (gitignored). The tile set
is what Bokeh's WMTS tile renderer requests for a 1280 x 800 map (the visible tiles plus a
one-tile border ring, ``get_tiles_by_extent(extent, level, tile_border=1)``) at the native
zoom, native - 1 and native - 3, plus four pans at the native zoom; tiles that do not touch
the image are left out of both runs (this app answers them with a cached empty tile,
rio-tiler raises ``TileOutsideBounds``).

Two layers: RGB (bands 1-3) and one band (band 1, grey: no palette). Both paths run in this
process, single-threaded, with the same GDAL settings (set in the environment before rasterio
loads), nearest resampling and the same stretch, and both produce PNG bytes:

* viewer: ``viewer.core.tiles.render_tile(spec, z, x, y, "png")`` (ISA-L deflate level 1; a
  one-band layer is written as a grey + alpha or grey PNG);
* rio-tiler: ``Reader.tile(x, y, z, tilesize=256, resampling_method="nearest",
  reproject_method="nearest")`` -> ``ImageData.rescale(in_range=...)`` ->
  ``ImageData.render(img_format="PNG")`` (GDAL's PNG driver at its default ZLEVEL 6), and
  the same with ``render(img_format="PNG", zlevel=1)``, the same deflate level as ours; the
  Reader is kept open.

The stretch maps ``VMIN..VMAX`` to 0..255 and rounds (Earth Engine's ``visualize``);
rio-tiler's ``rescale`` truncates, so it is given the same mapping shifted by half a step
(``in_range = (VMIN - s/2, VMAX - s/2)``, ``s = (VMAX - VMIN) / 255``): the two produce the
same pixels (with an even range width a few values land exactly half-way, where float32 and
float64 arithmetic round apart: 7000..12000 gave 99.89 % identical RGBA instead of 100 %).

"Warm" = after one untimed pass over the whole set; the timed passes alternate between the
paths (viewer, rio-tiler, rio-tiler zlevel 1, viewer, ...) so that load on the machine hits
all alike. Agreement is measured on the outputs: the decoded RGBA of both PNGs (exactly
equal, and within 1 DN), and the warped uint16 source values before any stretch (``evaluate``
vs ``Reader.tile``), which isolates the resampling. Transparent pixels count as equal when
both are transparent. A last column compares the viewer's warped values with one bare GDAL
warp (``rasterio.warp.reproject``, nearest) onto the same tile grid from the same overview
level: rio-tiler differs from both where it warps to an intermediate grid at the image's own
resolution and then decimates (tiles coarser than the image in another CRS).
``--checkout PATH`` imports ``viewer`` from another checkout, for before/after runs of this
same script. Timing assertions do not belong in tests; this is a script.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("GDAL_CACHEMAX", "1024")  # MB, for both paths (same process)
os.environ.setdefault("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
os.environ.setdefault("GDAL_NUM_THREADS", "1")

import morecantile  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from affine import Affine  # noqa: E402
from PIL import Image as PILImage  # noqa: E402
from rasterio.shutil import copy as rio_copy  # noqa: E402

ROOT = Path(__file__).resolve().parent

#: The stretch. An odd width (5001) puts no integer value exactly half-way between two output
#: values, so float32 (ours) and float64 (rio-tiler) arithmetic cannot round a tie apart.
VMIN, VMAX = 7000, 12001
VIEW_W, VIEW_H = 1280, 800
TMS = morecantile.tms.get("WebMercatorQuad")
HALF = math.pi * 6378137


# the benchmark COG ---------------------------------------------------------------------------
SIZE = 8192
#: Web Mercator resolution of zoom 0 for 256-pixel tiles (metres per pixel).
Z0_RES = 2 * math.pi * 6378137 / 256


def _content(n: int, seed: int = 0) -> np.ndarray:
    """Three uint16 bands: low-frequency waves + a finer pattern + Gaussian noise (~7000..12000)."""
    rng = np.random.default_rng(seed)
    out = np.empty((3, n, n), np.uint16)
    step = 1024
    x = (np.arange(n, dtype=np.float32) / n)[None, :]
    for b in range(3):
        for r0 in range(0, n, step):
            y = (np.arange(r0, r0 + step, dtype=np.float32) / n)[:, None]
            f = (9500 + 1500 * np.sin(2 * np.pi * (3 + b) * x + b) * np.cos(2 * np.pi * (2 + b) * y)
                 + 800 * np.sin(2 * np.pi * 17 * (x + y) + b))
            f = f + rng.normal(0, 150, (step, n)).astype(np.float32)
            out[b, r0:r0 + step] = np.clip(f, 1, 65535).astype(np.uint16)
    return out


def grid_for(crs: str, native_zoom: int = 14) -> tuple[Affine, str]:
    """Transform of the COG: EPSG:3857 aligned with the zoom-``native_zoom`` tile grid, or
    EPSG:32616 (UTM 16N, 10 m) near the bundled Landsat scene."""
    if crs == "EPSG:3857":
        res = Z0_RES / 2 ** native_zoom
        half = math.pi * 6378137
        # tile column/row of lon -87.6, lat 30.4 at the native zoom
        tx = int((-87.6 + 180) / 360 * 2 ** native_zoom)
        lat = math.radians(30.4)
        ty = int((1 - math.log(math.tan(lat) + 1 / math.cos(lat)) / math.pi) / 2 * 2 ** native_zoom)
        return Affine(res, 0, -half + tx * 256 * res, 0, -res, half - ty * 256 * res), crs
    if crs == "EPSG:32616":
        return Affine(10.0, 0, 400000.0, 0, -10.0, 3420000.0), crs
    raise ValueError(f"crs {crs!r}; allowed EPSG:3857 or EPSG:32616")


def make_cog(path: Path, crs: str) -> Path:
    """Write the COG once (DEFLATE, 512 x 512 tiles, AVERAGE overviews); reuse it afterwards."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    transform, crs = grid_for(crs)
    data = _content(SIZE)
    tmp = path.with_suffix(".tmp.tif")
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 3, "dtype": "uint16",
               "crs": crs, "transform": transform, "tiled": True, "blockxsize": 512, "blockysize": 512}
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
    del data
    part = path.with_suffix(".part.tif")
    rio_copy(tmp, part, driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES", BLOCKSIZE=512,
             OVERVIEW_RESAMPLING="AVERAGE", NUM_THREADS="ALL_CPUS")
    tmp.unlink()
    part.rename(path)
    print(f"generated {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
    return path


# the viewport's tiles -------------------------------------------------------------------------
def bokeh_tiles(cx: float, cy: float, z: int, width: int = VIEW_W, height: int = VIEW_H) -> list[tuple[int, int, int]]:
    """The tiles Bokeh's WMTSTileSource asks for when a width x height map shows (cx, cy) at z.

    A port of MercatorTileSource.get_tiles_by_extent (tile_border=1) and the WMTS y flip.
    """
    res = 2 * HALF / 256 / 2 ** z
    xmin, xmax = cx - width / 2 * res, cx + width / 2 * res
    ymin, ymax = cy - height / 2 * res, cy + height / 2 * res

    def to_tile(mx: float, my: float) -> tuple[int, int]:
        px, py = (mx + HALF) / res, (my + HALF) / res
        tx = math.ceil(px / 256)
        tx = tx if tx == 0 else tx - 1
        ty = max(math.ceil(py / 256) - 1, 0)
        return tx, ty

    txmin, tymin = to_tile(xmin, ymin)
    txmax, tymax = to_tile(xmax, ymax)
    out = []
    for ty in range(tymax + 1, tymin - 2, -1):
        for tx in range(txmin - 1, txmax + 2):
            if 0 <= tx < 2 ** z and 0 <= ty < 2 ** z:
                out.append((z, tx, 2 ** z - 1 - ty))
    return out


def session_tiles(path: Path, native: int) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """Views of one session: native-3, native-1, native, then four pans at native zoom."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as ds:
        left, bottom, right, top = transform_bounds(ds.crs, "EPSG:3857", *ds.bounds)
    cx, cy = (left + right) / 2, (bottom + top) / 2
    res = 2 * HALF / 256 / 2 ** native
    views = [(f"z{native - 3}", cx, cy, native - 3), (f"z{native - 1}", cx, cy, native - 1),
             (f"z{native}", cx, cy, native)]
    for name, dx, dy in (("pan E", 640, 0), ("pan S", 0, -400), ("pan SE", 640, -400), ("pan W", -960, 0)):
        views.append((f"z{native} {name}", cx + dx * res, cy + dy * res, native))
    inside = []
    for name, x, y, z in views:
        tiles = [t for t in bokeh_tiles(x, y, z) if _touches(t, (left, bottom, right, top))]
        inside.append((name, tiles))
    return inside


def _touches(tile: tuple[int, int, int], bounds: tuple[float, float, float, float]) -> bool:
    z, x, y = tile
    b = TMS.xy_bounds(morecantile.Tile(x, y, z))
    return b.left < bounds[2] and b.right > bounds[0] and b.bottom < bounds[3] and b.top > bounds[1]


def decode(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("RGBA"))


def agreement(a: np.ndarray, b: np.ndarray, tol: int) -> tuple[int, int]:
    """(agreeing pixels, pixels) of two RGBA arrays; both-transparent pixels agree."""
    both_clear = (a[..., 3] == 0) & (b[..., 3] == 0)
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) <= tol
    return int((both_clear | diff).sum()), a.shape[0] * a.shape[1]


def gdal_warp(path: Path, grid, bands: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One bare GDAL warp (``rasterio.warp.reproject``, nearest) of ``bands`` onto ``grid``,
    from the overview level the viewer's evaluator picks for it."""
    import rasterio
    from rasterio.warp import reproject

    from viewer.core.read import _pick_overview

    with rasterio.open(path) as ds:
        level = _pick_overview(ds, 1, grid, ds.crs)
    with rasterio.open(path, **({} if level is None else {"overview_level": level})) as src:
        n = len(bands)
        dst = np.zeros((n + 1, grid.height, grid.width), np.uint16)
        reproject(rasterio.band(src, bands), dst, dst_transform=grid.transform, dst_crs=grid.crs,
                  dst_alpha=n + 1, init_dest_nodata=False, num_threads=1)
    return dst[:n], dst[n] > 0


LAYERS = {"rgb": ["b1", "b2", "b3"], "grey": ["b1"]}


def run(path: Path, passes: int, layer: str) -> dict:
    import rasterio
    from rio_tiler.io import Reader

    from viewer.core.evaluate import evaluate
    from viewer.core.image import Image
    from viewer.core.layers import image_layer
    from viewer.core.tiles import render_tile, tile_grid

    bands = LAYERS[layer]
    indexes = tuple(int(b[1:]) for b in bands)
    with rasterio.open(path) as ds:
        crs = ds.crs.to_string()
    reader = Reader(str(path))
    native = reader.maxzoom
    views = session_tiles(path, native)
    tiles: list[tuple[int, int, int]] = []
    for _, ts in views:
        tiles.extend(t for t in ts if t not in tiles)
    image = Image.open(str(path))
    spec = image_layer(image, {"bands": bands, "min": VMIN, "max": VMAX})
    half = (VMAX - VMIN) / 255 / 2
    in_range = ((VMIN - half, VMAX - half),) * len(bands)  # rio-tiler truncates: same mapping as rounding

    def ours(z: int, x: int, y: int) -> bytes:
        return render_tile(spec, z, x, y, "png")

    def rio(z: int, x: int, y: int, **render) -> bytes:
        img = reader.tile(x, y, z, tilesize=256, indexes=indexes, resampling_method="nearest",
                          reproject_method="nearest")
        img.rescale(in_range=in_range)
        return img.render(img_format="PNG", **render)

    paths = {"viewer": ours, "rio-tiler": rio, "rio-tiler zlevel=1": lambda z, x, y: rio(z, x, y, zlevel=1)}
    out = {"crs": crs, "native": native, "views": [(n, len(t)) for n, t in views], "tiles": len(tiles),
           "layer": layer}
    timings: dict[str, list[float]] = {name: [] for name in paths}
    totals: dict[str, list[float]] = {name: [] for name in paths}
    results: dict[str, dict] = {name: {} for name in paths}
    for name, fn in paths.items():
        for t in tiles:  # warm-up pass (opens files, fills GDAL's block cache)
            results[name][t] = fn(*t)
    for _ in range(passes):  # alternate the paths pass by pass
        for name, fn in paths.items():
            t_all = time.perf_counter()
            for t in tiles:
                t0 = time.perf_counter()
                fn(*t)
                timings[name].append(time.perf_counter() - t0)
            totals[name].append(time.perf_counter() - t_all)
    for name in timings:
        lat = sorted(timings[name])
        out[name] = {
            "tiles_per_s": len(tiles) / statistics.median(totals[name]),
            "p50_ms": 1e3 * lat[len(lat) // 2],
            "p95_ms": 1e3 * lat[min(len(lat) - 1, int(len(lat) * 0.95))],
            "bytes": sum(len(v) for v in results[name].values()) / len(tiles),
        }
    out["ratio"] = out["viewer"]["tiles_per_s"] / out["rio-tiler"]["tiles_per_s"]
    out["ratio_z1"] = out["viewer"]["tiles_per_s"] / out["rio-tiler zlevel=1"]["tiles_per_s"]
    # agreement of the outputs, overall and per zoom
    per_zoom: dict[int, list[int]] = {}
    for t in tiles:
        a, b = decode(results["viewer"][t]), decode(results["rio-tiler"][t])
        e, n = agreement(a, b, 0)
        w1, _ = agreement(a, b, 1)
        src = evaluate(image.select(bands).node, tile_grid(*t))
        rt = reader.tile(t[1], t[2], t[0], tilesize=256, indexes=indexes, resampling_method="nearest",
                         reproject_method="nearest")
        valid_a = np.ones((256, 256), bool) if src[0].mask is None else src[0].mask > 0
        valid_b = ~np.ma.getmaskarray(rt.array).any(axis=0)
        same = np.all([s.values == rt.array.data[i] for i, s in enumerate(src)], axis=0)
        src_ok = int(((valid_a == valid_b) & (~valid_a | same)).sum())
        gv, gvalid = gdal_warp(path, tile_grid(*t), list(indexes))
        same_g = np.all([s.values == gv[i] for i, s in enumerate(src)], axis=0)
        gdal_ok = int(((valid_a == gvalid) & (~valid_a | same_g)).sum())
        acc = per_zoom.setdefault(t[0], [0, 0, 0, 0, 0])
        acc[0] += e
        acc[1] += w1
        acc[2] += src_ok
        acc[3] += gdal_ok
        acc[4] += n
    keys = ("rgba_exact", "rgba_within_1", "source_values", "gdal_warp")
    out["agreement"] = {z: {k: v[i] / v[4] for i, k in enumerate(keys)}
                        for z, v in sorted(per_zoom.items(), reverse=True)}
    tot = np.sum(list(per_zoom.values()), axis=0)
    out["agreement"]["all"] = {k: tot[i] / tot[4] for i, k in enumerate(keys)}
    reader.close()
    return out


def report(r: dict) -> None:
    print(f"\n== COG 8192x8192x3 uint16 in {r['crs']}, native zoom {r['native']}, layer {r['layer']} "
          f"({'3 bands' if r['layer'] == 'rgb' else 'band 1, grey'}) ==")
    print("views (tiles touching the image): " + ", ".join(f"{n}: {c}" for n, c in r["views"]))
    print(f"unique tiles rendered per pass: {r['tiles']}")
    print(f"{'path':20s} {'tiles/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'KiB/tile':>9s}")
    for name in ("viewer", "rio-tiler", "rio-tiler zlevel=1"):
        v = r[name]
        print(f"{name:20s} {v['tiles_per_s']:8.1f} {v['p50_ms']:8.2f} {v['p95_ms']:8.2f} {v['bytes'] / 1024:9.1f}")
    print(f"ratio viewer / rio-tiler: {r['ratio']:.2f}x (default zlevel 6), {r['ratio_z1']:.2f}x (zlevel 1)")
    print("pixel agreement with rio-tiler (decoded RGBA exact | RGBA within 1 DN | warped uint16 values exact)")
    print("and the viewer's warped values vs one bare GDAL warp onto the tile grid (same overview):")
    for z, a in r["agreement"].items():
        print(f"  {z!s:>4}: {100 * a['rgba_exact']:7.3f} % | {100 * a['rgba_within_1']:7.3f} % | "
              f"{100 * a['source_values']:7.3f} %   vs GDAL warp: {100 * a['gdal_warp']:7.3f} %")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crs", default="both", choices=["EPSG:3857", "EPSG:32616", "both"])
    p.add_argument("--passes", type=int, default=3, help="timed passes after the warm-up pass")
    p.add_argument("--layers", default="rgb,grey", help="comma-separated: rgb, grey")
    p.add_argument("--checkout", help="import viewer from this checkout instead of this one")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(args.checkout).resolve() if args.checkout else ROOT.parent))
    import viewer

    crss = ["EPSG:3857", "EPSG:32616"] if args.crs == "both" else [args.crs]
    print(f"viewer from {Path(viewer.__file__).parent.parent}; GDAL_CACHEMAX={os.environ['GDAL_CACHEMAX']} "
          f"GDAL_NUM_THREADS={os.environ['GDAL_NUM_THREADS']}, single thread, nearest, stretch {VMIN}..{VMAX}, PNG")
    for crs in crss:
        path = make_cog(ROOT / "_data" / f"bench_{crs.split(':')[1]}.tif", crs)
        for layer in args.layers.split(","):
            report(run(path, args.passes, layer.strip()))


if __name__ == "__main__":
    main()
