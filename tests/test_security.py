"""Issue 7 regressions: no request reaches a file or URL the operator did not allow, a changed
or broken source gives a typed answer, and one slow source never stalls the other requests."""
from __future__ import annotations

import concurrent.futures
import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import viewer
from viewer.core import layers as layers_mod
from viewer.core.catalog import Catalog, set_catalog
from viewer.core.layers import image_layer, register
from viewer.core.pixels import getPixels
from viewer.core.serialize import to_json
from viewer.core.tiles import tile_grid

from test_server import decode, fetch, scene_tiles, server, state_dir  # noqa: F401 - fixtures

ASSETS = Path(__file__).resolve().parents[1] / "assets"


# fixtures ---------------------------------------------------------------------------------
class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'GEOGCS["x"]')

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def trap():
    """A loopback HTTP server that records every request: any hit means GDAL/PROJ fetched a URL."""
    _Counter.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Counter.hits
    httpd.shutdown()


@pytest.fixture
def own_catalog(tmp_path):
    """A catalog of one band (a copy of the Landsat B4 COG) in a temporary folder."""
    shutil.copy(ASSETS / "landsat8" / "B4.tif", tmp_path / "b4.tif")
    doc = {"images": {"TEST/ONE": {"bands": [{"id": "B4", "path": "b4.tif"}]}}}
    (tmp_path / "catalog.json").write_text(json.dumps(doc))
    set_catalog(tmp_path / "catalog.json")
    yield tmp_path
    set_catalog(None)


def post_json(base: str, body: dict, headers: dict | None = None):
    return fetch(f"{base}/pixels", json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


# 1. CRS strings never reach GDAL/PROJ as paths or URLs ------------------------------------
@pytest.mark.parametrize("key, value", [
    ("crsCode", "{trap}/x.wkt"), ("crsWkt", "{trap}/x.wkt"), ("crsCode", "/vsicurl/{trap}/x.wkt"),
    ("crsCode", "/etc/shadow"), ("crsCode", "+proj=longlat +nadgrids=/vsicurl/{trap}/g.tif"),
])
def test_crs_strings_that_are_paths_or_urls_are_refused_before_gdal(server, trap, key, value):
    url, hits = trap
    before = len(hits)
    grid = {key: value.format(trap=url), "dimensions": {"width": 8, "height": 8}}
    status, _, body = post_json(server, {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "grid": grid,
                                         "fileFormat": "NPY"})
    assert status == 400, body
    assert b"never a path or URL" in body
    assert len(hits) == before  # nothing was fetched


def test_authority_codes_wkt_and_projjson_still_work():
    import pyproj

    for text in ("EPSG:3857", "OGC:CRS84", "ESRI:54009", pyproj.CRS.from_epsg(32616).to_wkt(),
                 pyproj.CRS.from_epsg(32616).to_json()):
        grid = {"crsCode": text, "dimensions": {"width": 4, "height": 4}}
        out = getPixels({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "grid": grid, "fileFormat": "NPY"})
        assert np.load(__import__("io").BytesIO(out)).shape == (4, 4)


@pytest.mark.parametrize("headers, status", [
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
    ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
])
def test_cross_site_posts_are_refused(server, headers, status):
    body = json.dumps({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "fileFormat": "NPY",
                       "grid": {"dimensions": {"width": 4, "height": 4}}}).encode()
    got, _, text = fetch(f"{server}/pixels", body, headers)
    assert got == status, text
    same_origin = {"Content-Type": "application/json", "Origin": server, "Sec-Fetch-Site": "same-origin"}
    assert fetch(f"{server}/pixels", body, same_origin)[0] == 200


# 2. image graphs from a request name catalog assets only ----------------------------------
def test_serialized_graph_with_file_or_url_sources_is_refused(server, trap, tmp_path):
    from viewer.core.pixels import computePixels

    url, hits = trap
    shutil.copy(ASSETS / "landsat8" / "B4.tif", tmp_path / "secret.tif")
    doc = to_json(viewer.Image.open(tmp_path / "secret.tif"))
    with pytest.raises(viewer.InvalidArgument, match="reads files by path"):
        computePixels({"expression": doc, "fileFormat": "NPY"})
    status, _, body = post_json(server, {"expression": doc, "fileFormat": "NPY"})
    assert status == 400, body
    src = next(n for n in doc["nodes"].values() if n["op"] == "source")
    src["args"][1][0][0] = f"/vsicurl/{url}/x.tif"
    with pytest.raises(viewer.InvalidArgument, match="reads files by path"):
        computePixels({"expression": doc, "fileFormat": "NPY"})
    with pytest.raises(viewer.InvalidArgument, match="not under a prefix"):
        viewer.core.serialize.from_json(doc, allow_files=True)
    assert not hits


def test_from_json_refuses_files_unless_the_caller_opts_in(tmp_path):
    shutil.copy(ASSETS / "landsat8" / "B4.tif", tmp_path / "f.tif")
    doc = to_json(viewer.Image.open(tmp_path / "f.tif"))
    with pytest.raises(viewer.InvalidArgument, match="reads files by path"):
        viewer.core.serialize.from_json(doc)
    assert viewer.core.serialize.from_json(doc, allow_files=True).bandNames() == viewer.Image.open(
        tmp_path / "f.tif").bandNames()


# 3. catalog, VRT and mask paths -----------------------------------------------------------
def _vrt_xml(target: Path) -> str:
    return (f'<VRTDataset rasterXSize="4" rasterYSize="4"><VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
            f'<SourceFilename relativeToVRT="0">{target}</SourceFilename><SourceBand>1</SourceBand></SimpleSource>'
            '</VRTRasterBand></VRTDataset>')


def test_vrt_disguised_as_tif_is_not_opened(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(ASSETS / "landsat8" / "B4.tif", outside / "private.tif")
    (tmp_path / "evil.tif").write_text(_vrt_xml(outside / "private.tif"))
    with pytest.raises(viewer.ReadError, match="not recognized"):
        viewer.Image.open(tmp_path / "evil.tif")


def test_catalog_vrt_needs_an_opt_in_and_paths_stay_in_the_catalog_folder(tmp_path):
    (tmp_path / "cat").mkdir()
    shutil.copy(ASSETS / "landsat8" / "B4.tif", tmp_path / "cat" / "b4.tif")
    (tmp_path / "cat" / "v.vrt").write_text(_vrt_xml(tmp_path / "cat" / "b4.tif"))
    cat = tmp_path / "cat" / "catalog.json"

    def write(images: dict, **extra) -> Path:
        cat.write_text(json.dumps({"images": images, **extra}))
        return cat

    with pytest.raises(viewer.InvalidArgument, match="allow_vrt"):
        Catalog(write({"A/VRT": {"bands": [{"id": "b", "path": "v.vrt"}]}}))
    with pytest.raises(viewer.InvalidArgument, match="outside the catalog's folders"):
        Catalog(write({"A/OUT": {"bands": [{"id": "b", "path": "../elsewhere.tif"}]}}))
    with pytest.raises(viewer.InvalidArgument, match="remote_prefixes"):
        Catalog(write({"A/URL": {"bands": [{"id": "b", "path": "https://example.org/x.tif"}]}}))
    ok = Catalog(write({"A/URL": {"bands": [{"id": "b", "path": "https://example.org/cogs/x.tif"}]}},
                       remote_prefixes=["https://example.org/cogs/"]))
    assert ok.image("A/URL").bands[0].path == "/vsicurl/https://example.org/cogs/x.tif"
    set_catalog(write({"A/VRT": {"allow_vrt": True, "bands": [{"id": "b", "path": "v.vrt"}]}}))
    try:
        out = getPixels({"assetId": "A/VRT", "fileFormat": "NPY"})
        assert np.load(__import__("io").BytesIO(out)).shape == (4, 4)
    finally:
        set_catalog(None)


def test_image_mask_path_never_fetches_a_url(trap):
    url, hits = trap
    with pytest.raises(viewer.InvalidMask, match="not under a prefix"):
        viewer.ImageMask({"path": f"/vsicurl/{url}/m.png"}, key="k")
    with pytest.raises(viewer.InvalidMask):
        viewer.ImageMask({"path": f"{url}/m.png"}, key="k")
    assert not hits


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "hang.tif"
    os.mkfifo(fifo)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(viewer.Image.open, fifo)
        with pytest.raises(viewer.InvalidArgument, match="not a regular file"):
            future.result(timeout=10)


# 7. a replaced file makes new tokens; the old token does not serve new pixels -------------
def test_replaced_source_changes_the_token_and_old_tokens_answer_410(server, own_catalog):
    layer = image_layer(viewer.Image("TEST/ONE"), {"min": 7000, "max": 14000})
    token = register(layer)
    z, x, y = scene_tiles(12)[4]
    status, headers, before = fetch(f"{server}/tiles/{token}/{z}/{x}/{y}.png")
    assert status == 200
    etag = headers["Etag"]
    time.sleep(0.01)
    data = (own_catalog / "b4.tif").read_bytes()
    shutil.copy(ASSETS / "landsat8" / "B5.tif", own_catalog / "b4.tif")  # same grid, other pixels
    assert (own_catalog / "b4.tif").read_bytes() != data
    status, _, body = fetch(f"{server}/tiles/{token}/{z}/{x}/{y + 1}.png")  # a cold tile of the old token
    assert status == 410 and b"changed since this layer was made" in body and b"b4.tif" not in body
    with layers_mod._lock:
        layers_mod._specs.clear()  # as another process would: the old token from the state folder
    status, _, body = fetch(f"{server}/tiles/{token}/{z}/{x + 1}/{y + 1}.png")
    assert status == 410 and b"changed since this graph was made" in body, body
    new = register(image_layer(viewer.Image("TEST/ONE"), {"min": 7000, "max": 14000}))
    assert new != token
    status, headers, after = fetch(f"{server}/tiles/{new}/{z}/{x}/{y}.png", headers={"If-None-Match": etag})
    assert status == 200 and headers["Etag"] != etag
    assert not np.array_equal(decode(before), decode(after))


def test_deleted_and_corrupt_sources_give_a_reason_naming_asset_and_band(server, own_catalog):
    blob = (own_catalog / "b4.tif").read_bytes()
    (own_catalog / "b4.tif").write_bytes(blob[: len(blob) // 3])  # header intact, tiles cut off
    token = register(image_layer(viewer.Image("TEST/ONE"), {"min": 7000, "max": 14000}))
    z, x, y = scene_tiles(14)[4]
    status, _, body = fetch(f"{server}/tiles/{token}/{z}/{x}/{y}.png")
    assert status == 503, body
    assert b"'TEST/ONE'" in body and b"B4" in body and str(own_catalog).encode() not in body
    (own_catalog / "b4.tif").unlink()
    status, _, body = fetch(f"{server}/tiles/{token}/{z}/{x + 1}/{y}.png")
    assert status in (410, 503) and b"'TEST/ONE'" in body
    set_catalog(None)  # the server goes on serving the bundled catalog's layers
    good = register(image_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4"], "min": 7000, "max": 14000}))
    assert fetch(f"{server}/tiles/{good}/{z}/{x}/{y}.png")[0] == 200


# 8. one slow source never stalls everyone -------------------------------------------------
def test_gdal_error_state_does_not_leak_to_the_next_read(own_catalog, tmp_path):
    from viewer.core.access import reset_gdal_errors
    from viewer.core.read import read_bands

    broken = tmp_path / "broken.tif"
    blob = (own_catalog / "b4.tif").read_bytes()
    broken.write_bytes(blob[: len(blob) // 3])
    grid = tile_grid(*scene_tiles(14)[4])

    def failing_then_good():
        with pytest.raises(Exception):
            read_bands(str(broken), (1,), grid, "bilinear")
        reset_gdal_errors()
        return read_bands(str(own_catalog / "b4.tif"), (1,), grid, "bilinear")[0][0]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # one thread: the same GDAL error state
        values = pool.submit(failing_then_good).result(timeout=60)
    assert values.max() > 0


def test_slow_exports_do_not_take_the_tile_threads(server, monkeypatch):
    import viewer.server.handlers as handlers

    real = handlers._export

    def slow(body):
        time.sleep(3)
        return real(body)

    monkeypatch.setattr(handlers, "_export", slow)
    token = register(image_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4"], "min": 7000, "max": 14000}))
    body = {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "fileFormat": "NPY",
            "grid": {"dimensions": {"width": 4, "height": 4}}}
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        exports = [pool.submit(post_json, server, body) for _ in range(10)]
        time.sleep(0.3)
        start = time.perf_counter()
        tiles = [fetch(f"{server}/tiles/{token}/{z}/{x}/{y}.png") for z, x, y in scene_tiles(13)]
        elapsed = time.perf_counter() - start
        assert all(t[0] == 200 for t in tiles)
        assert elapsed < 3, "tiles waited for the exports"
        assert all(f.result()[0] == 200 for f in exports)


def test_a_render_past_its_deadline_is_a_503_and_the_server_keeps_serving(server, monkeypatch):
    import viewer.server.handlers as handlers

    real = handlers._render
    monkeypatch.setenv("VIEWER_TILE_TIMEOUT", "0.5")
    monkeypatch.setattr(handlers, "_render", lambda *a: (time.sleep(2), real(*a))[1])
    token = register(image_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B3"], "min": 7000, "max": 14000}))
    z, x, y = scene_tiles(12)[0]
    status, _, body = fetch(f"{server}/tiles/{token}/{z}/{x}/{y}.png")
    assert status == 503 and b"longer than 0.5 s" in body
    monkeypatch.setattr(handlers, "_render", real)
    assert fetch(f"{server}/tiles/{token}/{z}/{x}/{y}.png")[0] == 200


# 9. remaining 5xx -------------------------------------------------------------------------
@pytest.mark.parametrize("body, status, fragment", [
    ({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4"], "region": {"type": "Polygon", "coordinates": [
        [[0, 95], [1, 95], [1, 96], [0, 96], [0, 95]]]}}, 400, "latitude"),
    ({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B1", "B1"], "fileFormat": "NPY"}, 400, "twice"),
    ({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4", "B5"], "fileFormat": "PNG",
      "visualizationOptions": {"ranges": [{"min": 0, "max": 1}]}}, 400, "1 or 3 bands"),
])
def test_former_500s_are_typed(server, body, status, fragment):
    got, _, text = post_json(server, body)
    assert got == status and fragment.encode() in text, text


def test_nested_brackets_and_unknown_token_conditionals(server):
    got, _, text = fetch(f"{server}/pixels", b"[" * 200_000, {"Content-Type": "application/json"})
    assert got == 400 and b"nested too deeply" in text
    unknown = "0" * 64
    got, _, _ = fetch(f"{server}/tiles/{unknown}/3/1/1.png", headers={"If-None-Match": "*"})
    assert got == 404
    got, _, text = fetch(f"{server}/tiles/{unknown}/3/1/1%0A.png")
    assert got == 400


def test_state_is_never_unpickled(state_dir):
    assert "import pickle" not in Path(layers_mod.__file__).read_text()
