"""Median of N overlapping scenes for one 256 x 256 map tile, against numpy on the same stack.

    uv run python benchmarks/bench_reducers.py [--images 2,8,32] [--repeat 30]

The viewer side is the whole reduction kernel (:func:`viewer.core.reducers.reduce_stack`:
masks applied, masked pixels left out, all-masked pixels masked); the peer is
``numpy.nanmedian`` on the same already-read stack with NaN where a pixel is masked (the
same work minus the mask bookkeeping). The stack is the bundled Landsat pair's B4 on a real
tile, repeated with seeded random masks to N images. Prints medians and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import morecantile
import numpy as np

import viewer
from viewer.core.evaluate import evaluate
from viewer.core.reducers import reduce_stack
from viewer.core.tiles import tile_grid

IDS = ["LANDSAT/LC08/C01/T1_RT/LC08_224077_20200518", "LANDSAT/LC08/C01/T1_RT/LC08_224078_20200518"]


def _stack(n: int) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    t = morecantile.tms.get("WebMercatorQuad").tile(-54.642, -25.253, 13)
    grid = tile_grid(t.z, t.x, t.y)
    read = [evaluate(viewer.Image(i).select(["B4"]).node, grid)[0] for i in IDS]
    rng = np.random.default_rng(0)
    values, masks = [], []
    for k in range(n):
        band = read[k % 2]
        m = band.mask if band.mask is not None else np.ones(grid.shape, np.float32)
        values.append(band.values)
        masks.append(m * (rng.random(grid.shape) > 0.2).astype(np.float32))
    return values, masks


def _time(fn, repeat: int) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default="2,8,32")
    p.add_argument("--repeat", type=int, default=30)
    args = p.parse_args()
    print(f"{'images':>6} {'viewer ms':>10} {'nanmedian ms':>13} {'ratio':>6}  identical")
    for n in (int(x) for x in args.images.split(",")):
        values, masks = _stack(n)
        nan_stack = np.stack([np.where(m > 0, v.astype(np.float64), np.nan) for v, m in zip(values, masks)])

        def ours():
            return reduce_stack("median", values, masks)

        def peer():
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmedian(nan_stack, axis=0)

        a, b = _time(ours, args.repeat), _time(peer, args.repeat)
        out, mask = ours()
        with np.errstate(all="ignore"):
            ref = np.nan_to_num(peer(), nan=0.0)
        print(f"{n:>6} {a:>10.2f} {b:>13.2f} {a / b:>5.2f}x  {np.array_equal(out, ref)}")


if __name__ == "__main__":
    main()
