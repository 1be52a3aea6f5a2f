"""The bundled demo map, and its prediction-vs-truth pair.

The sample catalog has two class layers of the Landsat scene made by unrelated schemes
(``assets/README.md``): rule classes (other, water, vegetation, cloud) and k-means
clusters numbered by mean NDVI. Clusters and classes share no table, so comparing them
directly (IoU of "cluster 2" against "vegetation") means nothing. The demo's prediction is
therefore the k-means result **relabelled to the rule classes by majority vote**: each
cluster takes the rule class that most of its pixels have over the whole scene (computed
from the data when the demo is first built, :func:`majority_relabel`). Prediction and truth
then share the rule-class table, so IoU, precision and recall are per rule class. Neither
layer is ground truth; the relabelling uses the truth itself, so the scores show how well
four spectral clusters can reproduce the rule classes, not a model's accuracy.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ..core.cache import memoized
from ..core.catalog import Catalog, get_catalog
from ..core.classes import Classes
from ..core.evaluate import evaluate
from ..core.collection import ImageCollection
from ..core.image import Image
from .map import Map

__all__ = ["demo_map", "majority_relabel", "relabel", "PREDICTION", "TRUTH", "KMEANS_ID", "RULES_ID"]

KMEANS_ID = "VIEWER/SAMPLE_CLASSES/LC08_KMEANS"
RULES_ID = "VIEWER/SAMPLE_CLASSES/LC08_RULES"
COLLECTION_ID = "LANDSAT/LC08/C01/T1_RT"
#: Layer names of the demo's prediction-vs-truth pair (one class table: the rule classes).
PREDICTION = "Prediction: k-means as rule classes"
TRUTH = "Rule-based classes"


def majority_relabel(pred: Image, truth: Image) -> dict[int, int]:
    """Cluster id -> the truth class most of its pixels have (ties: the lower id), counted on the
    truth's native grid over pixels valid in both."""
    grid = truth.native_grid()
    p, t = evaluate(pred.node, grid)[0], evaluate(truth.node, grid)[0]
    valid = np.ones(p.values.shape, bool)
    for band in (p, t):
        if band.mask is not None:
            valid &= np.asarray(band.mask) > 0
    pv, tv = np.asarray(p.values)[valid].astype(np.int64), np.asarray(t.values)[valid].astype(np.int64)
    out = {}
    for cid in np.unique(pv).tolist():
        out[int(cid)] = int(np.bincount(tv[pv == cid]).argmax())
    return out


def relabel(image: Image, mapping: dict[int, int]) -> Image:
    """``image`` with each id ``k`` replaced by ``mapping[k]`` (ids not in ``mapping`` become 0), as an
    expression of the image (so tiles, counts and comparisons read the stored ids with nearest)."""
    out = None
    for src, dst in sorted(mapping.items()):
        term = image.eq(src).multiply(dst)
        out = term if out is None else out.add(term)
    if out is None:
        return image.multiply(0)
    return out


@functools.cache
def _kmeans_mapping() -> tuple[tuple[int, int], ...]:
    return tuple(sorted(majority_relabel(Image(KMEANS_ID), Image(RULES_ID)).items()))


class _DemoImages(NamedTuple):
    landsat: Image
    cloud: Image
    sentinel2: Image
    collection: ImageCollection
    rules: Image
    table: Classes
    kmeans: Image


@memoized("demo images", 2)
def _demo_images(catalog: Catalog) -> _DemoImages:
    """The demo's images, built once per catalog: images are immutable values (each operation
    returns a new one), and building their graphs (content keys of every node) was about a
    tenth of a served session's time when every session built them again."""
    img = Image("LANDSAT/LC08/SAMPLE")
    # Pre-Collection BQA: cloud confidence is bits 14-15 (11 = high).
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3).rename("cloud")
    rules = Image(RULES_ID)
    kmeans = relabel(Image(KMEANS_ID), dict(_kmeans_mapping())).rename("class")
    return _DemoImages(img, cloud, Image("COPERNICUS/S2/SAMPLE"), ImageCollection(COLLECTION_ID), rules,
                       Classes.from_band(rules.bands[0]), kmeans)


def demo_map() -> Map:
    """The bundled demo: Landsat true colour, its cloud mask, the cloud-masked composite, the
    prediction-vs-truth pair (k-means relabelled to the rule classes vs the rule classes), the
    Sentinel-2 scene and (hidden) a dated Landsat collection with a time slider, centred on the
    Landsat scene."""
    m = Map()
    images = _demo_images(get_catalog())
    img, cloud = images.landsat, images.cloud
    true_colour = {"bands": ["B4", "B3", "B2"], "min": [6000, 6800, 7700], "max": [10500, 10500, 11000],
                   "gamma": 1.3}
    # hidden, at the bottom: two dated Landsat 8 scenes (Paraguay, 2020-05-18) with a time slider
    collection_vis = {"bands": ["B4", "B3", "B2"], "min": [6000, 6700, 7400], "max": [8600, 8300, 8500]}
    m.add_layer(images.collection, collection_vis, "Landsat 8 collection (time slider)", shown=False)
    m.add_layer(images.sentinel2, {"bands": ["B4", "B3", "B2"], "min": 300, "max": 1800, "gamma": 1.2},
                "Sentinel-2 true colour")
    tc = m.add_layer(img, true_colour, "Landsat 8 true colour")
    tc.param.update(mask_image=cloud, mask_label="cloud mask", mask_invert=True)
    m.add_layer(img.updateMask(cloud.Not()), true_colour, "Cloud-masked composite", shown=False)
    m.add_overlay(images.kmeans, PREDICTION, classes=images.table, shown=False, opacity=0.6)
    m.add_overlay(images.rules, TRUTH, opacity=0.45)
    m.add_mask_layer(cloud, "Cloud mask (BQA high confidence)", color="#ff00ff", opacity=0.7)
    m.state.selected = "Landsat 8 true colour"
    m.center_object("Landsat 8 true colour")
    return m
