"""The bounded caches and the server's encoded-tile cache (warm tiles cost a lookup)."""
from __future__ import annotations

import viewer
from viewer.core.cache import BoundedCache, cache_stats
from viewer.core.layers import image_layer, register

from test_server import fetch, scene_tiles
from test_security import server, state_dir  # noqa: F401 - fixtures


def test_bounded_cache_evicts_oldest_first_by_items_and_bytes():
    c = BoundedCache("t", max_items=3, max_bytes=10)
    for k in "abc":
        c.put(k, b"xx")
    assert c.get("a") == b"xx"  # a is now the newest
    c.put("d", b"xx")
    assert c.get("b") is None and c.get("a") == b"xx"
    c.put("e", b"x" * 8)  # over 10 bytes: the oldest go until it fits
    s = c.stats()
    assert s.bytes <= 10 and c.get("e") == b"x" * 8
    assert (s.hits, s.misses) == (2, 1) and s.evictions >= 2
    c.put("huge", b"x" * 11)  # larger than the cache: not stored
    assert c.get("huge") is None


def test_warm_tiles_come_from_the_cache_with_identical_bytes(server):  # noqa: F811
    token = register(image_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B6"], "min": 7000, "max": 14000}))
    z, x, y = scene_tiles(13)[2]
    first = fetch(f"{server}/tiles/{token}/{z}/{x}/{y}.png")
    second = fetch(f"{server}/tiles/{token}/{z}/{x}/{y}.png")
    assert first[0] == second[0] == 200
    assert first[1]["X-Viewer-Cache"] == "miss" and second[1]["X-Viewer-Cache"] == "hit"
    assert first[2] == second[2]
    tiles = next(s for s in cache_stats() if s.name == "tiles")
    assert tiles.hits >= 1 and tiles.items >= 1


def test_jpg_and_jpeg_are_one_tile_with_one_etag(server):  # noqa: F811
    token = register(image_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B7"], "min": 7000, "max": 14000}))
    z, x, y = scene_tiles(13)[1]
    jpg = fetch(f"{server}/tiles/{token}/{z}/{x}/{y}.jpg")
    jpeg = fetch(f"{server}/tiles/{token}/{z}/{x}/{y}.jpeg")
    assert jpg[0] == jpeg[0] == 200 and jpg[2] == jpeg[2] and jpg[2][:3] == b"\xff\xd8\xff"
    assert jpg[1]["Etag"] == jpeg[1]["Etag"] and jpeg[1]["X-Viewer-Cache"] == "hit"
    assert jpg[1]["Content-Type"] == jpeg[1]["Content-Type"] == "image/jpeg"
