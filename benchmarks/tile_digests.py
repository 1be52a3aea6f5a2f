"""Digests of a fixed set of tiles, pixel fetches and exports, to prove a refactor changes no byte.

    cd <checkout> && uv run python <this checkout>/benchmarks/tile_digests.py > digests.json

Run it in two checkouts (e.g. ``git worktree add /tmp/before <commit>``) and compare the two
JSON files: every key is one output (PNG/JPEG/WebP tiles of image, mask and class layers in
map and pixel coordinates, ``render_rgba`` on a UTM grid, ``getPixels``/``computePixels`` in
every format, and the HTTP layer exports), every value the first 20 hex digits of the
SHA-256 of its bytes. The script imports the ``viewer`` of the working directory and uses
only APIs that exist since commit 0923679.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile

os.environ.setdefault("VIEWER_STATE_DIR", tempfile.mkdtemp())
sys.path.insert(0, os.getcwd())

import morecantile
import numpy as np
from affine import Affine

import viewer
from viewer.core import pixels
from viewer.core.grid import Grid, parse_crs
from viewer.core.layers import class_layer, describe, image_layer, mask_layer
from viewer.core.tiles import render_rgba, render_tile, tile_grid
from viewer.server import handlers
from viewer.core.layers import register

TMS = morecantile.tms.get("WebMercatorQuad")
out: dict[str, str] = {}


def h(data) -> str:
    if isinstance(data, np.ndarray):
        data = data.tobytes() + str((data.dtype.descr, data.shape)).encode()
    return hashlib.sha256(data).hexdigest()[:20]


ls = viewer.Image("LANDSAT/LC08/SAMPLE")
s2 = viewer.Image("COPERNICUS/S2/SAMPLE")
rules = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")
kmeans = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_KMEANS")
qa = ls.select("BQA")
cloud = qa.rightShift(14).bitwiseAnd(3).eq(3)
ndvi = ls.normalizedDifference(["B5", "B4"])
rng = np.random.default_rng(7)
arr = rng.integers(0, 255, (300, 420, 3), dtype=np.uint8)
ids = (np.arange(300 * 420).reshape(300, 420) // 997 % 6).astype(np.uint8)
pix = viewer.Image.from_array(arr, masks={"pred": {"mask_data": ids, "class_labels": {0: "a", 1: "b", 3: "d"}}})
from viewer.core.segmentation import overlays
pix_cls = overlays(pix)["pred"].image()
geo_arr = viewer.Image.from_array(rng.random((2, 200, 260)).astype(np.float32), crs="EPSG:32616",
                                  transform=Affine(30, 0, 452475, 0, -30, 3408645),
                                  mask=np.clip(rng.random((200, 260)) * 2 - 0.3, 0, 1))

specs = {
    "img_rgb": image_layer(ls, {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 12000}),
    "img_rgb_gamma_opacity": image_layer(ls, {"bands": ["B5", "B4", "B3"], "min": [6000, 6500, 7000],
                                              "max": [15000, 12000, 11000], "gamma": 1.4, "opacity": 0.6}),
    "img_palette": image_layer(ndvi, {"min": -0.2, "max": 0.8, "palette": ["red", "yellow", "00ff00"]}),
    "img_masked": image_layer(ls.select(["B4", "B3", "B2"]).updateMask(cloud.Not()), {"min": 6000, "max": 12000}),
    "img_bilinear": image_layer(ls, {"bands": ["B4"], "min": 6000, "max": 12000}, resampling="bilinear"),
    "img_bicubic_s2": image_layer(s2, {"bands": ["B4", "B3", "B2"], "min": 500, "max": 3000}, resampling="bicubic"),
    "img_s2": image_layer(s2, {"bands": ["B8", "B4", "B3"], "min": 500, "max": 4000}),
    "img_unmask": image_layer(ls.select("B4").updateMask(cloud).unmask(3000), {"min": 2000, "max": 12000}),
    "img_geo_arr": image_layer(geo_arr, {"bands": ["b1"], "min": 0, "max": 1, "palette": ["000000", "ffffff"]}),
    "img_default_range": image_layer(ls.select("B4")),
    "mask_get": mask_layer(ls.select("B4").mask()),
    "mask_cloud": mask_layer(cloud, ["ff0000"], 0.7),
    "mask_multi": mask_layer(ls.select(["B4", "B5"]).updateMask(cloud).mask(), ["000000", "00ffff", "ffffff"]),
    "mask_selfmask": mask_layer(ndvi.gt(0.3).selfMask()),
    "mask_geo_arr": mask_layer(geo_arr.select("b1").mask(), ["0000ff", "ffff00"], 0.5),
    "cls_rules": class_layer(rules),
    "cls_rules_hidden": class_layer(rules, hidden=[1, 3], opacity=0.8),
    "cls_kmeans": class_layer(kmeans),
    "cls_custom": class_layer(rules, [{"id": 0, "name": "zero", "color": "black"}, {"id": 2, "name": "two",
                                                                                    "color": "#abcdef"}]),
    "cls_masked": class_layer(rules.updateMask(cloud.Not())),
}
pixel_specs = {
    "pix_img": image_layer(pix, {"min": 0, "max": 255}),
    "pix_cls": class_layer(pix_cls),
    "pix_cls_hidden": class_layer(pix_cls, hidden=[0], opacity=0.5),
    "pix_mask": mask_layer(pix_cls.eq(1), ["orange"]),
}

lon0, lat0, lon1, lat1 = describe(specs["img_rgb"])["bounds_wgs84"]
tiles = []
for z in (8, 10, 11, 12, 13, 14):
    tl = list(TMS.tiles(lon0, lat0, lon1, lat1, [z]))
    step = max(1, len(tl) // 12)
    tiles += [(t.z, t.x, t.y) for t in tl[::step]]
print(len(tiles), "geo tiles", file=sys.stderr)

for name, spec in specs.items():
    for z, x, y in tiles:
        out[f"tile/{name}/{z}/{x}/{y}.png"] = h(render_tile(spec, z, x, y, "png"))
    for z, x, y in tiles[-4:]:
        for fmt in ("jpg", "webp"):
            out[f"tile/{name}/{z}/{x}/{y}.{fmt}"] = h(render_tile(spec, z, x, y, fmt))
for name, spec in pixel_specs.items():
    for z in range(0, 4):
        for x in range(2 ** z):
            for y in range(2 ** z):
                out[f"tile/{name}/{z}/{x}/{y}.png"] = h(render_tile(spec, z, x, y, "png"))

# render_rgba on non-tile grids
grid = Grid(parse_crs("EPSG:32616"), Affine(45, 0, 452000, 0, -45, 3408600), 300, 220)
for name, spec in specs.items():
    out[f"rgba/{name}"] = h(render_rgba(spec, grid))

# pixel fetch
reqs = {
    "png": {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4", "B3", "B2"], "fileFormat": "PNG",
            "visualizationOptions": {"ranges": [{"min": 6000, "max": 12000}]}, "grid": grid.to_dict()},
    "png_pal": {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B5"], "fileFormat": "PNG",
                "visualizationOptions": {"ranges": [{"min": 6000, "max": 15000}], "paletteColors": ["blue", "red"],
                                         "gamma": {"value": 1.3}, "opacity": 0.8}},
    "jpeg": {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4", "B3", "B2"], "fileFormat": "JPEG",
             "visualizationOptions": {"ranges": [{"min": 6000, "max": 12000}]}, "grid": grid.to_dict()},
    "auto": {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4", "B3", "B2"], "fileFormat": "AUTO_JPEG_PNG",
             "visualizationOptions": {"ranges": [{"min": 6000, "max": 12000}]}, "grid": grid.to_dict()},
    "npy": {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4", "BQA"], "fileFormat": "NPY", "grid": grid.to_dict()},
    "tif": {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4", "B3"], "fileFormat": "GEO_TIFF",
            "grid": grid.to_dict()},
    "nd": {"assetId": "VIEWER/SAMPLE_CLASSES/LC08_RULES", "fileFormat": "NUMPY_NDARRAY"},
    "region": {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B2"], "fileFormat": "NPY",
               "region": {"type": "Polygon", "coordinates": [[[-87.45, 30.7], [-87.4, 30.7], [-87.4, 30.75],
                                                              [-87.45, 30.75], [-87.45, 30.7]]]},
               "grid": {"crsCode": "EPSG:4326", "dimensions": {"width": 90, "height": 70}}},
}
for name, req in reqs.items():
    data = pixels.getPixels(req)
    out[f"getPixels/{name}"] = h(data)
exprs = {
    "masked_tif": (ls.select(["B4", "B3"]).updateMask(cloud.Not()), "GEO_TIFF"),
    "ndvi_npy": (ndvi, "NPY"),
    "unmask_nd": (ls.select("B4").updateMask(cloud).unmask(5), "NUMPY_NDARRAY"),
    "vis_png": (ndvi.visualize(min=-0.2, max=0.8, palette=["red", "green"]), "PNG"),
    "geo_arr_tif": (geo_arr, "GEO_TIFF"),
}
for name, (img, fmt) in exprs.items():
    out[f"computePixels/{name}"] = h(pixels.computePixels({"expression": img, "fileFormat": fmt,
                                                          "grid": grid.to_dict()}))

# HTTP layer exports (the handler's core logic)
for name, spec in specs.items():
    token = register(spec)
    for fmt in ("PNG", "JPEG", "GEO_TIFF", "NPY"):
        body = {"layer": token, "fileFormat": fmt, "grid": grid.to_dict()}
        data, mime, ext = handlers._export(body)
        out[f"export/{name}/{fmt}"] = f"{h(data)} {mime} {ext}"
print(json.dumps(out, indent=0, sort_keys=True))
