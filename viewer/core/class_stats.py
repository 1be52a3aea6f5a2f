"""Class statistics for class legends, and prediction-vs-truth comparison.

Public API::

    class_counts(image, grid, classes=None) -> [{"id", "name", "color", "count", "area_m2", "percent"}]
    view_class_counts(image, view, classes=None)  # counts of the image's own pixels in a map view
    class_counts_array(ids, mask, classes, pixel_area=None)   # the pure-array kernel
    pixel_area(grid) -> m2 per pixel: float, (H, 1) or (H, W) array; None without a CRS
    cmp = compare_masks(pred, truth, grid, classes=None)
    cmp.confusion (rows = truth, cols = prediction), cmp.per_class, cmp.accuracy, cmp.mean_iou
    cmp.difference_image(class_id=None) -> one-band class Image (0 agree, 1 FP, 2 FN | 1 disagree)

A map view's legend counts with :func:`view_class_counts`: ``count`` is always in the class
image's *native* pixels (the window of its native grid covering the view: exact, e.g. the
W&B example's 2,500 per quadrant at any zoom or pan), never in screen pixels; a view
holding more than ``MAX_COUNT_PIXELS`` native pixels is counted on every ``k``-th pixel
each way and its counts scaled by ``k * k`` (``sample_step`` = k, 1 when exact).

Both evaluate the class band with :func:`viewer.core.evaluate.evaluate` on the grid asked
for (a map view, a tile, a getPixels grid), so class ids are never mixed (nearest).
Counts are pixels whose mask is > 0. Areas are true ground areas on the CRS's ellipsoid:
the nominal pixel area (|det(transform)| x unit factor^2) corrected for the projection's
areal distortion (so a Web Mercator view and a UTM view of one field agree); geographic
grids get per-row (or per-pixel) ellipsoidal areas.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer

from .cache import memoized
from .classes import MAX_CLASS_ID, Classes
from .errors import InvalidArgument
from .evaluate import evaluate
from .grid import Grid
from .image import Image
from .sources import array_node

__all__ = ["class_counts", "view_class_counts", "class_counts_array", "pixel_area", "compare_masks", "Comparison",
           "DIFFERENCE_COLORS", "MAX_COUNT_PIXELS"]

#: Most native pixels :func:`view_class_counts` counts one by one (larger views are sampled).
MAX_COUNT_PIXELS = 4_000_000

#: Colours of :meth:`Comparison.difference_image` (agree is also transparent on a map).
DIFFERENCE_COLORS = {"agree": "#9e9e9e", "false_positive": "#d62728", "false_negative": "#1f77b4",
                     "disagree": "#d62728"}

_LATTICE = 33  # samples per axis used to model pixel-area variation across a grid
_FLAT = 1e-3  # relative variation below which a pixel area is treated as constant


# pixel areas -------------------------------------------------------------------------------
@memoized("geodesy of a CRS", 32)
def _geodesy(wkt: str):
    crs = CRS.from_wkt(wkt)
    geod = crs.geodetic_crs
    if geod is None:
        return None
    to_geod = Transformer.from_crs(crs, geod, always_xy=True)
    rad = geod.axis_info[0].unit_conversion_factor  # radians per angular unit
    ell = geod.ellipsoid
    return to_geod, rad, ell.semi_major_metre, ell.semi_minor_metre


def _areas_at(grid: Grid, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Ground area (m2) of the pixels centred at fractional (cols, rows), on the ellipsoid."""
    to_geod, rad, a, b = _geodesy(grid.crs.to_wkt())
    t = grid.transform
    h = 0.5

    def lonlat(c, r):
        x, y = t.a * c + t.b * r + t.c, t.d * c + t.e * r + t.f
        lon, lat = to_geod.transform(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(lon) * rad, np.asarray(lat) * rad

    lon_e, lat_e = lonlat(cols + h, rows)
    lon_w, lat_w = lonlat(cols - h, rows)
    lon_s, lat_s = lonlat(cols, rows + h)
    lon_n, lat_n = lonlat(cols, rows - h)
    dlon_c = np.angle(np.exp(1j * (lon_e - lon_w)))  # wrap across the antimeridian
    dlon_r = np.angle(np.exp(1j * (lon_s - lon_n)))
    dlat_c, dlat_r = lat_e - lat_w, lat_s - lat_n
    lat = 0.25 * (lat_e + lat_w + lat_s + lat_n)
    e2 = 1.0 - (b * b) / (a * a)
    w = 1.0 - e2 * np.sin(lat) ** 2
    m = a * (1.0 - e2) / w ** 1.5  # meridional radius of curvature
    n = a / np.sqrt(w)  # prime vertical radius of curvature
    return np.abs(dlon_c * dlat_r - dlon_r * dlat_c) * m * n * np.cos(lat)


@memoized("pixel areas", 256)
def pixel_area(grid: Grid) -> float | np.ndarray | None:
    """Ground area in m2 of each pixel of ``grid``: a float when constant to 0.1%, else an
    array broadcastable to (H, W) (``(H, 1)`` when it only varies by row). ``None`` for
    grids in pixel coordinates (no CRS)."""
    if grid.crs is None or _geodesy(grid.crs.to_wkt()) is None:
        return None
    ny, nx = min(grid.height, _LATTICE), min(grid.width, _LATTICE)
    rs = np.linspace(0.5, grid.height - 0.5, ny)
    cs = np.linspace(0.5, grid.width - 0.5, nx)
    cc, rr = np.meshgrid(cs, rs)
    with np.errstate(all="ignore"):
        area = _areas_at(grid, cc, rr)
    ok = np.isfinite(area) & (area > 0)
    if not ok.any():
        return None
    if not ok.all():  # outside the projection's domain: borrow the nearest sensible value
        area = np.where(ok, area, np.nanmean(np.where(ok, area, np.nan)))
    mean = float(area.mean())
    if float(area.max() - area.min()) <= _FLAT * mean:
        return mean
    wr = _interp_matrix(grid.height, rs)
    if float(np.max(area.max(axis=1) - area.min(axis=1))) <= _FLAT * mean:
        return wr @ area.mean(axis=1)[:, None]
    return wr @ area @ _interp_matrix(grid.width, cs).T


def _interp_matrix(n: int, positions: np.ndarray) -> np.ndarray:
    """(n, len(positions)) weights interpolating lattice values linearly to pixel centres."""
    x = np.arange(n) + 0.5
    eye = np.eye(len(positions))
    return np.stack([np.interp(x, positions, eye[j]) for j in range(len(positions))], axis=1)


# counting ----------------------------------------------------------------------------------
def _int_ids(ids: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Non-negative integer ids and the validity (bool or None = all valid)."""
    ids = np.asarray(ids)
    valid = None if mask is None else np.asarray(mask) > 0
    if ids.dtype.kind == "f":
        ok = np.isfinite(ids) & (ids >= 0)
        valid = ok if valid is None else valid & ok
        ids = np.where(ok, np.rint(ids), 0).astype(np.int64)
    elif ids.dtype.kind == "b":
        ids = ids.view(np.uint8)
    elif ids.dtype.kind == "i":
        if ids.size and ids.min() < 0:
            ok = ids >= 0
            valid = ok if valid is None else valid & ok
            ids = np.where(ok, ids, 0)
    elif ids.dtype.kind != "u":
        raise InvalidArgument(f"class ids of dtype {ids.dtype} are not allowed; allowed: numbers",
                              value=str(ids.dtype))
    if valid is not None and valid.all():
        valid = None
    return ids, valid


def _row_counts(ids: np.ndarray, valid: np.ndarray | None) -> np.ndarray | None:
    """(H, K) pixel counts per (row, id) with one bincount, or None when K is too large."""
    h = ids.shape[0]
    top = 255 if ids.dtype == np.uint8 else int(ids.max(initial=0))
    k = top + 1
    if h * k > 4_000_000:
        return None
    comb = ids.astype(np.int32, copy=False) + (np.arange(h, dtype=np.int32) * k)[:, None]
    sel = comb.ravel() if valid is None else comb[valid]
    return np.bincount(sel, minlength=h * k).reshape(h, k)


def _bincount(ids: np.ndarray, valid: np.ndarray | None, weights: Any = None) -> dict[int, float]:
    flat = ids.ravel()
    v = None if valid is None else valid.ravel()
    w = None
    if weights is not None:
        w = np.broadcast_to(weights, ids.shape).ravel()
        w = w if v is None else w[v]
    sel = flat if v is None else flat[v]
    if sel.size == 0:
        return {}
    if sel.dtype.itemsize > 2 and int(sel.max()) > MAX_CLASS_ID:
        uniq, inv = np.unique(sel, return_inverse=True)
        sums = np.bincount(inv, weights=w, minlength=len(uniq))
        return {int(u): s for u, s in zip(uniq, sums) if s}
    counts = np.bincount(sel, weights=w)
    nz = np.flatnonzero(counts)
    return dict(zip(nz.tolist(), counts[nz].tolist()))


def class_counts_array(
    ids: np.ndarray,
    mask: np.ndarray | None,
    classes: Classes | None,
    pixel_area: float | np.ndarray | None = None,
) -> list[dict]:
    """Per-class pixel counts of a 2-D id array where ``mask`` > 0 (``None`` = all valid).

    Every class of the table is listed (count 0 if absent), plus ids found that the table
    lacks (named ``class_<id>``). ``area_m2`` uses ``pixel_area`` (m2 per pixel, scalar or
    broadcastable to ids), or is ``None``. ``percent`` is of the counted pixels.
    """
    classes = Classes() if classes is None else classes
    ids, valid = _int_ids(ids, mask)
    areas: dict[int, float] | None = None
    shape = np.shape(pixel_area)
    per_row = _row_counts(ids, valid) if pixel_area is not None and shape == (ids.shape[0], 1) else None
    if per_row is not None:  # area varies by row only (e.g. Web Mercator views): exact per row
        tot, sums = per_row.sum(axis=0), np.asarray(pixel_area, float).ravel() @ per_row
        nz = np.flatnonzero(tot)
        counts = dict(zip(nz.tolist(), tot[nz].tolist()))
        areas = dict(zip(nz.tolist(), sums[nz].tolist()))
    else:
        counts = _bincount(ids, valid)
        if pixel_area is not None:
            areas = ({k: c * float(pixel_area) for k, c in counts.items()} if len(shape) == 0
                     else _bincount(ids, valid, pixel_area))
    total = sum(counts.values())
    out = []
    for cid in sorted(set(classes.ids) | set(counts)):
        n = int(counts.get(cid, 0))
        out.append({
            "id": cid, "name": classes.name(cid), "color": classes.color(cid), "count": n,
            "area_m2": None if areas is None else float(areas.get(cid, 0.0)),
            "percent": 100.0 * n / total if total else 0.0,
        })
    return out


def _class_band(image: Any, what: str):
    bands = getattr(image, "bands", None)
    if bands is None or not hasattr(image, "node"):
        raise InvalidArgument(f"{what} {image!r} must be a viewer.Image", value=image, allowed="viewer.Image")
    if len(bands) != 1:
        names = [b.name for b in bands]
        raise InvalidArgument(f"{what} has {len(bands)} bands {names}; class statistics need exactly one "
                              "class band (use .select(name))", value=names, allowed="one band")
    band = bands[0]
    if band.kind != "class" and np.dtype(band.dtype).kind not in "uib":
        raise InvalidArgument(f"{what} band {band.name!r} ({band.kind}, {band.dtype}) is not a class band; "
                              "allowed: a band of kind 'class' or with an integer dtype",
                              value=band.name, allowed="class or integer band")
    return band


def _table(classes: Any, *bands) -> Classes:
    if classes is None:
        table = Classes()
        for band in reversed(bands):  # the first band's table wins
            table = table.merged(Classes.from_band(band))
        return table
    return Classes.coerce(classes)


def _evaluate_ids(image: Any, grid: Grid):
    layer = evaluate(image.node, grid)[0]
    return layer.values, layer.mask


def class_counts(image: Any, grid: Grid, classes: Classes | list | dict | None = None) -> list[dict]:
    """Per-class ``count`` and ``area_m2`` of a one-band class image on ``grid``.

    ``classes`` defaults to the band's class table; each entry is
    ``{"id", "name", "color", "count", "area_m2", "percent"}``, sorted by id.
    """
    band = _class_band(image, "image")
    if not isinstance(grid, Grid):
        raise InvalidArgument(f"grid {grid!r} must be a Grid", value=grid, allowed="viewer Grid")
    table = _table(classes, band)
    values, mask = _evaluate_ids(image, grid)
    return class_counts_array(values, mask, table, pixel_area(grid))


def view_class_counts(image: Any, view: Grid, classes: Classes | list | dict | None = None,
                      max_pixels: int = MAX_COUNT_PIXELS) -> list[dict]:
    """Per-class counts of the image's *native* pixels inside a map view (a legend's figures).

    The counts are taken on the window of the image's native grid that covers ``view``'s
    bounding box (:meth:`Grid.covering`), so ``count`` is in the image's own pixels at every
    zoom and pan. Each entry is a :func:`class_counts` entry plus ``sample_step``: 1 when every
    native pixel was counted; ``k`` when the window held more than ``max_pixels`` pixels and
    every ``k``-th pixel each way was counted, ``count`` then being that count times ``k * k``
    (``area_m2`` and ``percent`` are consistent with it). Images without a pixel grid
    (constants) are counted on ``view`` itself.
    """
    band = _class_band(image, "image")
    if not isinstance(view, Grid):
        raise InvalidArgument(f"view {view!r} must be a Grid", value=view, allowed="viewer Grid")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise InvalidArgument(f"max_pixels {max_pixels!r} must be a positive integer", value=max_pixels,
                              allowed="integer >= 1")
    table = _table(classes, band)
    native = image.native_grid()
    window = view if native is None else native.covering(view)
    if window is None:  # the view misses the image: every class of the table, count 0
        out = class_counts_array(np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.float32), table,
                                 None if view.crs is None else 0.0)
        step = 1
    else:
        step = max(1, math.ceil(math.sqrt(window.width * window.height / int(max_pixels))))
        grid = window if step == 1 else Grid(window.crs, window.transform @ Affine.scale(step),
                                             math.ceil(window.width / step), math.ceil(window.height / step))
        out = class_counts(image, grid, table)
    for entry in out:
        entry["count"] *= step * step
        entry["sample_step"] = step
    return out


# comparison --------------------------------------------------------------------------------
def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


@dataclass(frozen=True, eq=False)
class Comparison:
    """Prediction vs truth on one grid: confusion (rows truth, cols prediction) and scores."""

    grid: Grid
    classes: Classes
    ids: tuple[int, ...]
    confusion: np.ndarray
    per_class: list[dict]
    accuracy: float | None
    mean_iou: float | None
    pixel_count: int
    excluded_count: int  # valid pixels whose truth or prediction id is not in the table
    _pred: np.ndarray = field(repr=False)
    _truth: np.ndarray = field(repr=False)
    _valid: np.ndarray | None = field(repr=False)

    @property
    def iou(self) -> dict[int, float | None]:
        return {c["id"]: c["iou"] for c in self.per_class}

    @property
    def precision(self) -> dict[int, float | None]:
        return {c["id"]: c["precision"] for c in self.per_class}

    @property
    def recall(self) -> dict[int, float | None]:
        return {c["id"]: c["recall"] for c in self.per_class}

    def to_dict(self) -> dict:
        return {"ids": list(self.ids), "confusion": self.confusion.tolist(), "per_class": self.per_class,
                "accuracy": self.accuracy, "mean_iou": self.mean_iou, "pixel_count": self.pixel_count,
                "excluded_count": self.excluded_count, "grid": self.grid.to_dict()}

    def difference_image(self, class_id: int | None = None):
        """A one-band class Image on :attr:`grid`: with ``class_id``, 0 agree, 1 false
        positive (predicted the class, truth is not), 2 false negative; without it,
        0 agree, 1 disagree. Agree is the transparent background; masked where either
        input is masked."""
        p, t = self._pred, self._truth
        if class_id is None:
            diff = (p != t).astype(np.uint8)
            table = Classes([
                {"id": 0, "name": "agree", "color": DIFFERENCE_COLORS["agree"]},
                {"id": 1, "name": "disagree", "color": DIFFERENCE_COLORS["disagree"]},
            ], background=0)
        else:
            if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)):
                raise InvalidArgument(f"class_id {class_id!r} must be an integer class id or None",
                                      value=class_id, allowed=list(self.ids))
            c = int(class_id)
            name = self.classes.name(c)
            diff = np.zeros(p.shape, np.uint8)
            diff[(p == c) & (t != c)] = 1
            diff[(t == c) & (p != c)] = 2
            table = Classes([
                {"id": 0, "name": "agree", "color": DIFFERENCE_COLORS["agree"]},
                {"id": 1, "name": "false positive", "color": DIFFERENCE_COLORS["false_positive"],
                 "description": f"predicted {name!r} where the truth is another class"},
                {"id": 2, "name": "false negative", "color": DIFFERENCE_COLORS["false_negative"],
                 "description": f"truth is {name!r} but another class was predicted"},
            ], background=0)
        mask = None if self._valid is None else self._valid.astype(np.float32)
        if mask is not None:
            diff[~self._valid] = 0
        g = self.grid
        node = array_node(diff, g.crs, g.transform, ["difference"], mask, kind="class",
                          classes=table.to_band_classes())
        return Image(_node=node)


def compare_masks(pred: Any, truth: Any, grid: Grid, classes: Classes | list | dict | None = None) -> Comparison:
    """Compare a predicted and a true class image on ``grid`` (pixels valid in both).

    The confusion matrix covers the ids of the class table (``classes``, else the truth's
    table merged over the prediction's, else the ids found). IoU, precision and recall
    are ``None`` where undefined (e.g. a class absent from both).
    """
    pband, tband = _class_band(pred, "pred"), _class_band(truth, "truth")
    if not isinstance(grid, Grid):
        raise InvalidArgument(f"grid {grid!r} must be a Grid", value=grid, allowed="viewer Grid")
    table = _table(classes, tband, pband)
    pv, pm = _evaluate_ids(pred, grid)
    tv, tm = _evaluate_ids(truth, grid)
    p, pvalid = _int_ids(pv, pm)
    t, tvalid = _int_ids(tv, tm)
    valid = pvalid if tvalid is None else (tvalid if pvalid is None else pvalid & tvalid)
    if not len(table):
        sel = (lambda a: a) if valid is None else (lambda a: a[valid])
        table = table.with_ids(sorted(set(np.unique(sel(p)).tolist()) | set(np.unique(sel(t)).tolist())))
    ids = table.ids
    k = len(ids)
    index = np.full((max(ids) if k else 0) + 2, k, np.int64)  # ids beyond the table map to k ("excluded")
    index[list(ids)] = np.arange(k)
    pi = index[np.minimum(p, len(index) - 1)]
    ti = index[np.minimum(t, len(index) - 1)]
    inside = (pi < k) & (ti < k)
    n_valid = p.size if valid is None else int(valid.sum())
    use = inside if valid is None else inside & valid
    conf = np.bincount((ti[use] * k + pi[use]).ravel(), minlength=k * k).reshape(k, k).astype(np.int64)
    total = int(conf.sum())
    per_class, ious = [], []
    for i, cid in enumerate(ids):
        tp = int(conf[i, i])
        fp = int(conf[:, i].sum()) - tp
        fn = int(conf[i, :].sum()) - tp
        iou = _ratio(tp, tp + fp + fn)
        if iou is not None:
            ious.append(iou)
        per_class.append({"id": cid, "name": table.name(cid), "color": table.color(cid),
                          "iou": iou, "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
                          "true_positive": tp, "false_positive": fp, "false_negative": fn,
                          "truth_count": tp + fn, "pred_count": tp + fp})
    return Comparison(grid, table, ids, conf, per_class, _ratio(int(np.trace(conf)), total),
                      float(np.mean(ious)) if ious else None, total, n_valid - total, p, t, valid)
