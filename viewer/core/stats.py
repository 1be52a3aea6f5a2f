"""View-level band statistics and stretch presets, through the one evaluator.

The map asks for these after a pan or zoom ("stretch to view" in the layer panel). The
estimate is computed on the view's grid subsampled to at most :data:`MAX_SIDE` pixels per
side (same extent, coarser pixels; the evaluator reads the matching overview), so it
costs about the same for any window size. ``count`` is the number of valid pixels of
that subsampled grid, and the grid actually used is reported with each result.
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

from .errors import InvalidArgument
from .evaluate import evaluate
from .grid import Grid
from .image import Image
from .regions import histogram

__all__ = ["band_stats", "band_histograms", "stretch_range", "stats_grid", "PRESETS", "MAX_SIDE", "DEFAULT_PERCENTILES"]

MAX_SIDE = 512
DEFAULT_PERCENTILES = (1, 2, 5, 95, 98, 99)
#: Earth Engine Code Editor stretch presets.
PRESETS = ("1sigma", "2sigma", "3sigma", "90%", "98%", "100%")


def stats_grid(grid: Grid, max_side: int = MAX_SIDE) -> Grid:
    """``grid`` itself, or the same extent with at most ``max_side`` pixels per side."""
    if not isinstance(grid, Grid):
        raise InvalidArgument(f"grid {grid!r} must be a viewer Grid", value=type(grid).__name__, allowed="Grid")
    factor = max(grid.width, grid.height) / max_side
    if factor <= 1:
        return grid
    return grid.scaled(max(1, math.ceil(grid.width / factor)), max(1, math.ceil(grid.height / factor)))


def _check_percentiles(percentiles: Sequence[float]) -> tuple[float, ...]:
    try:
        out = tuple(float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise InvalidArgument(f"percentiles {percentiles!r} must be numbers in 0..100", value=percentiles,
                              allowed="numbers in 0..100") from None
    bad = [p for p in out if not 0 <= p <= 100]
    if bad:
        raise InvalidArgument(f"percentiles {bad} are out of range; allowed 0..100", value=bad, allowed="0..100")
    return out


def _key(p: float) -> str:
    return f"p{p:g}"


def band_stats(image: Image, grid: Grid, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> list[dict]:
    """Per band: ``count`` of valid pixels, ``min``, ``max``, ``mean``, ``std`` (population) and
    ``percentiles`` (``{"p1": .., "p99": ..}``, linear interpolation) over the valid pixels.

    Masked pixels (mask 0) and NaN are not counted. A band without valid pixels has
    ``count`` 0 and ``None`` statistics. Each dict also names the ``band`` and the
    ``grid`` (width, height) the estimate was computed on.
    """
    if not isinstance(image, Image):
        raise InvalidArgument(f"band_stats needs a viewer.Image, got {type(image).__name__}",
                              value=type(image).__name__, allowed="Image")
    pcts = _check_percentiles(percentiles)
    out = []
    for name, x, g in _valid_values(image, grid):
        entry: dict = {"band": name, "count": int(x.size), "grid": {"width": g.width, "height": g.height}}
        if x.size:
            q = np.percentile(x, pcts) if pcts else []
            entry.update(min=float(x.min()), max=float(x.max()), mean=float(x.mean()), std=float(x.std()),
                         percentiles={_key(p): float(val) for p, val in zip(pcts, q)})
        else:
            entry.update(min=None, max=None, mean=None, std=None, percentiles={_key(p): None for p in pcts})
        out.append(entry)
    return out


def stretch_range(image: Image, grid: Grid, preset: str) -> list[tuple[float, float]]:
    """(min, max) per band for a Code Editor stretch preset over the view.

    ``"1sigma"``/``"2sigma"``/``"3sigma"``: mean -/+ n standard deviations, clipped to the
    band's min and max. ``"90%"``/``"98%"``/``"100%"``: the (100 - p)/2 and 100 - (100 - p)/2
    percentiles (``"100%"`` is min..max). A range that collapses to one value is widened
    to ``(v, v + 1)`` so it can be used as visualization parameters.
    """
    if preset not in PRESETS:
        raise InvalidArgument(f"stretch preset {preset!r} is not allowed; allowed: {list(PRESETS)}",
                              value=preset, allowed=list(PRESETS))
    if preset.endswith("sigma"):
        pcts: tuple[float, ...] = ()
    else:
        p = float(preset[:-1])
        pcts = ((100 - p) / 2, 100 - (100 - p) / 2)
    out = []
    for s in band_stats(image, grid, pcts):
        if not s["count"]:
            raise InvalidArgument(f"band {s['band']!r} has no valid pixels in this view; pan to the image or "
                                  "choose a fixed range", value=s["band"], allowed="a view with valid pixels")
        if preset.endswith("sigma"):
            n = int(preset[0])
            lo = max(s["mean"] - n * s["std"], s["min"])
            hi = min(s["mean"] + n * s["std"], s["max"])
        else:
            lo, hi = (s["percentiles"][_key(p)] for p in pcts)
        if hi <= lo:
            hi = lo + 1.0
        out.append((float(lo), float(hi)))
    return out


def band_histograms(image: Image, grid: Grid, buckets: int = 64) -> list[dict]:
    """Per band the histogram of the valid pixels of ``grid`` (subsampled as :func:`band_stats`),
    in the ``histogram`` reducer's form: ``{"band", "count", "grid", "histogram"}`` where
    ``histogram`` is ``{"bucketMin", "bucketWidth", "histogram", "bucketMeans"}`` (None without
    valid pixels). Masked pixels and NaN are left out."""
    if not isinstance(image, Image):
        raise InvalidArgument(f"band_histograms needs a viewer.Image, got {type(image).__name__}",
                              value=type(image).__name__, allowed="Image")
    if isinstance(buckets, bool) or not isinstance(buckets, int) or not 1 <= buckets <= 1024:
        raise InvalidArgument(f"buckets {buckets!r} must be an integer in 1..1024", value=buckets, allowed="1..1024")
    return [{"band": name, "count": int(x.size), "grid": {"width": g.width, "height": g.height},
             "histogram": histogram(x, buckets) if x.size else None} for name, x, g in _valid_values(image, grid)]


def _valid_values(image: Image, grid: Grid) -> Iterator[tuple[str, np.ndarray, Grid]]:
    """Per band: its name, its valid values (mask > 0, not NaN) as float64 on the subsampled
    :func:`stats_grid` of ``grid``, and that grid."""
    g = stats_grid(grid)
    for info, layer in zip(image.bands, evaluate(image.node, g)):
        v = layer.values
        valid = np.ones(v.shape, bool) if layer.mask is None else layer.mask > 0
        if v.dtype.kind == "f":
            valid &= ~np.isnan(v)
        yield info.name, v[valid].astype(np.float64), g
