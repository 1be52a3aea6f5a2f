"""The HTTP edge on a real Panel (Tornado) server: tiles, caching, errors, layer JSON, pixel export."""
from __future__ import annotations

import concurrent.futures
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request

import morecantile
import numpy as np
import pytest
from PIL import Image as PILImage
from rasterio.io import MemoryFile

from viewer import Image
from viewer.core.layers import class_layer, image_layer, register
from viewer.core.pixels import computePixels
from viewer.core.tiles import empty_tile, tile_grid
from viewer.server import STATUS, status_for, tile_routes

TMS = morecantile.tms.get("WebMercatorQuad")
TRUE_COLOUR = {"bands": ["B4", "B3", "B2"], "min": 7000, "max": 14000}
CENTRE = (-87.398, 30.728)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 60):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGBA"))


def wait_up(url: str, proc: subprocess.Popen | None = None, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.2)
    pytest.fail(f"server at {url} did not start")


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("layers")
    old = os.environ.get("VIEWER_STATE_DIR")
    os.environ["VIEWER_STATE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("VIEWER_STATE_DIR", None)
    else:
        os.environ["VIEWER_STATE_DIR"] = old


@pytest.fixture(scope="module")
def server(state_dir):
    """A Panel server (Bokeh/Tornado) in a background thread with the tile routes as extra patterns."""
    import panel as pn

    port = free_port()
    thread = pn.serve({"app": lambda: pn.pane.Markdown("viewer test app")}, port=port, address="127.0.0.1",
                      show=False, start=True, threaded=True, verbose=False, extra_patterns=tile_routes(),
                      websocket_origin=[f"127.0.0.1:{port}"])
    base = f"http://127.0.0.1:{port}"
    wait_up(base + "/app")
    yield base
    thread.stop()


@pytest.fixture(scope="module")
def layers(state_dir):
    rgb = image_layer(Image("LANDSAT/LC08/SAMPLE"), TRUE_COLOUR)
    cls = class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"))
    return {"rgb": register(rgb), "classes": register(cls)}


def scene_tiles(z: int) -> list[tuple[int, int, int]]:
    t = TMS.tile(*CENTRE, z)
    return [(z, t.x + dx, t.y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


@pytest.mark.parametrize("z", [10, 12, 13, 14])
def test_tiles_over_the_scene_have_visible_pixels(server, layers, z):
    for kind in ("rgb", "classes"):
        visible = 0
        for tz, x, y in scene_tiles(z):
            status, headers, body = fetch(f"{server}/tiles/{layers[kind]}/{tz}/{x}/{y}.png")
            assert status == 200 and headers["Content-Type"] == "image/png"
            rgba = decode(body)
            assert rgba.shape == (256, 256, 4)
            shown = rgba[..., 3] > 0
            if shown.any():
                assert rgba[shown, :3].max() > 0  # not all black
                visible += 1
        assert visible >= (9 if z >= 12 else 1)


def test_tile_pixels_equal_compute_pixels_of_the_same_grid(server, layers):
    z, x, y = scene_tiles(13)[4]
    status, _, body = fetch(f"{server}/tiles/{layers['rgb']}/{z}/{x}/{y}.png")
    ref = computePixels({"expression": Image("LANDSAT/LC08/SAMPLE").select(["B4", "B3", "B2"]),
                         "grid": tile_grid(z, x, y).to_dict(), "fileFormat": "PNG",
                         "visualizationOptions": {"ranges": [{"min": 7000, "max": 14000}] * 3}})
    assert status == 200
    np.testing.assert_array_equal(decode(body), decode(ref))


def test_etag_cache_control_and_304(server, layers):
    z, x, y = scene_tiles(12)[0]
    url = f"{server}/tiles/{layers['rgb']}/{z}/{x}/{y}.png"
    status, headers, body = fetch(url)
    etag = headers["Etag"]
    assert status == 200 and etag.startswith('"') and len(etag) > 20
    assert headers["Cache-Control"] == "public, max-age=86400, immutable"
    status2, headers2, body2 = fetch(url)
    assert headers2["Etag"] == etag and body2 == body
    status3, headers3, body3 = fetch(url, headers={"If-None-Match": etag})
    assert status3 == 304 and body3 == b"" and headers3["Etag"] == etag
    assert fetch(url, headers={"If-None-Match": '"other"'})[0] == 200
    other = fetch(f"{server}/tiles/{layers['rgb']}/{z}/{x}/{y}.webp")
    assert other[0] == 200 and other[1]["Etag"] != etag and other[1]["Content-Type"] == "image/webp"
    jpg = fetch(f"{server}/tiles/{layers['rgb']}/{z}/{x}/{y}.jpg")
    assert jpg[0] == 200 and jpg[1]["Content-Type"] == "image/jpeg" and jpg[2][:2] == b"\xff\xd8"


def test_outside_footprint_is_a_transparent_200(server, layers):
    status, headers, body = fetch(f"{server}/tiles/{layers['rgb']}/12/5/7.png")
    assert status == 200 and headers["Content-Type"] == "image/png" and body == empty_tile()
    assert decode(body)[..., 3].max() == 0


def bad_requests(tokens: dict) -> list[tuple[str, int, str]]:
    tok = tokens["rgb"]
    return [
        (f"/tiles/{'f' * 64}/12/1052/1680.png", 404, "unknown layer token"),
        (f"/tiles/{'0' * 63}g/12/1052/1680.png", 400, "is malformed; allowed: 64 lowercase hex"),
        ("/tiles/..%2F..%2Fetc%2Fpasswd/1/0/0.png", 404, "is not /tiles/<token>/<z>/<x>/<y>.<ext>"),
        ("/tiles/%2e%2e/1/0/0.png", 400, "layer token '..' is malformed"),
        (f"/tiles/{tok}/25/0/0.png", 400, "tile z 25 is out of range; allowed 0..24"),
        (f"/tiles/{tok}/3/8/0.png", 400, "tile x 8 is out of range; allowed 0..7"),
        (f"/tiles/{tok}/3/0/99999999999.png", 400, "tile y '99999999999' is not a non-negative integer"),
        (f"/tiles/{tok}/3/-1/0.png", 400, "tile x '-1' is not a non-negative integer"),
        (f"/tiles/{tok}/abc/0/0.png", 400, "tile z 'abc' is not a non-negative integer"),
        (f"/tiles/{tok}/3/0/0.gif", 400, "tile format 'gif' is not allowed"),
        (f"/tiles/{tok}/3/0/0", 400, "has no extension"),
        (f"/tiles/{tok}/3/0", 404, "is not /tiles/<token>/<z>/<x>/<y>.<ext>"),
        (f"/tiles/{tok}/3/0/0/1.png", 404, "is not /tiles/<token>/<z>/<x>/<y>.<ext>"),
        (f"/layers/{'e' * 64}", 404, "unknown layer token"),
        ("/layers/nope", 400, "is malformed"),
    ]


def test_bad_requests_get_one_line_4xx_and_the_server_keeps_serving(server, layers):
    for path, status, text in bad_requests(layers):
        got, headers, body = fetch(server + path)
        line = body.decode()
        assert got == status, (path, got, line)
        assert headers["Content-Type"].startswith("text/plain")
        assert line.endswith("\n") and line.count("\n") == 1 and line.startswith(str(status)), line
        assert text in line and "Traceback" not in line
    z, x, y = scene_tiles(12)[4]
    ok, _, body = fetch(f"{server}/tiles/{layers['rgb']}/{z}/{x}/{y}.png")
    assert ok == 200 and decode(body)[..., 3].max() == 255
    assert fetch(f"{server}/tiles/{layers['rgb']}/{z}/{x}/{y}.png", data=b"x")[0] == 405


def test_layer_description(server, layers):
    status, headers, body = fetch(f"{server}/layers/{layers['classes']}")
    doc = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert doc["token"] == layers["classes"] and doc["kind"] == "classes"
    assert [c["name"] for c in doc["classes"]] == ["other", "water", "vegetation", "cloud"]
    assert doc["tile_url"] == f"/tiles/{layers['classes']}/{{z}}/{{x}}/{{y}}.png"
    rgb = json.loads(fetch(f"{server}/layers/{layers['rgb']}")[2])
    assert rgb["band_names"] == ["B4", "B3", "B2"] and rgb["style"]["vis"]["min"] == [7000.0] * 3


def post(server: str, body) -> tuple[int, dict, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return fetch(server + "/pixels", data=data, headers={"Content-Type": "application/json"})


def test_pixels_endpoint_exports_assets_and_layers(server, layers):
    grid = tile_grid(*scene_tiles(12)[4]).to_dict()
    status, headers, body = post(server, {"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B4", "B3", "B2"],
                                          "grid": grid, "fileFormat": "PNG",
                                          "visualizationOptions": {"ranges": [{"min": 7000, "max": 14000}] * 3}})
    assert status == 200 and headers["Content-Type"] == "image/png"
    tile = fetch(f"{server}/tiles/{layers['rgb']}/{'/'.join(map(str, scene_tiles(12)[4]))}.png")[2]
    np.testing.assert_array_equal(decode(body), decode(tile))
    status, headers, body = post(server, {"layer": layers["rgb"], "grid": grid, "fileFormat": "GEO_TIFF"})
    assert status == 200 and headers["Content-Type"] == "image/tiff"
    with MemoryFile(body) as mem, mem.open() as ds:
        assert ds.count == 3 and ds.descriptions == ("B4", "B3", "B2") and ds.crs.to_epsg() == 3857
        assert ds.read(1).max() > 7000
    status, headers, body = post(server, {"layer": layers["classes"], "grid": grid, "fileFormat": "PNG"})
    assert status == 200 and decode(body)[..., 3].max() == 255


@pytest.mark.parametrize("body, status, text", [
    (b"{not json", 400, "request body is not valid JSON"),
    ([1, 2], 400, "request body must be a JSON object"),
    ({"assetId": "NOPE/NOPE"}, 404, "unknown asset id 'NOPE/NOPE'"),
    ({"assetId": "/etc/passwd"}, 400, "is a path or URL, not an asset id"),
    ({"assetId": "LANDSAT/LC08/SAMPLE", "fileFormat": "NUMPY_NDARRAY"}, 400, "is not available over HTTP"),
    ({"assetId": "LANDSAT/LC08/SAMPLE", "bandIds": ["B99"]}, 400, "band 'B99' does not exist"),
    ({"assetId": "LANDSAT/LC08/SAMPLE", "fileFormat": "NPY",
      "grid": {"dimensions": {"width": 30000, "height": 30000}}}, 413, "the limit is"),
    ({"layer": "f" * 64, "fileFormat": "PNG"}, 404, "unknown layer token"),
    (b"x" * (1 << 20 + 1), 413, "is over the limit"),
])
def test_pixels_endpoint_errors(server, body, status, text):
    got, headers, raw = post(server, body)
    line = raw.decode()
    assert got == status, line
    assert text in line and line.count("\n") == 1 and "Traceback" not in line


def test_rendering_runs_off_the_event_loop(server, layers, monkeypatch):
    """A slow tile does not hold up other requests: the loop answers while the render runs."""
    import viewer.server.handlers as handlers

    real = handlers._render

    def slow(*args):
        time.sleep(1.5)
        return real(*args)

    monkeypatch.setattr(handlers, "_render", slow)
    z, x, y = scene_tiles(11)[4]
    done: dict[str, float] = {}

    def get_tile():
        fetch(f"{server}/tiles/{layers['rgb']}/{z}/{x}/{y}.png")
        done["tile"] = time.perf_counter()

    t = threading.Thread(target=get_tile)
    start = time.perf_counter()
    t.start()
    time.sleep(0.2)
    status, _, _ = fetch(f"{server}/layers/{layers['rgb']}")
    done["layer"] = time.perf_counter()
    t.join()
    assert status == 200
    assert done["layer"] - start < 1.2 < done["tile"] - start


def test_concurrent_tile_requests(server, layers):
    urls = [f"{server}/tiles/{layers[k]}/{z}/{x}/{y}.png" for k in ("rgb", "classes") for z, x, y in scene_tiles(13)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, urls))
    assert all(r[0] == 200 for r in results)
    assert sum(decode(r[2])[..., 3].max() > 0 for r in results) == len(urls)


def test_error_table_is_ordered_most_specific_first():
    from viewer.core.errors import InvalidArgument, LimitExceeded, ReadError, UnknownAsset
    from viewer.core.layers import UnknownLayer

    assert status_for(LimitExceeded("x")) == 413 and status_for(InvalidArgument("x")) == 400
    assert status_for(UnknownLayer("x")) == 404 and status_for(UnknownAsset("x")) == 404
    assert status_for(ReadError("x")) == 500 and status_for(RuntimeError("x")) == 500
    classes = [c for c, _ in STATUS]
    for i, a in enumerate(classes):
        for b in classes[i + 1:]:
            assert not issubclass(b, a), f"{b.__name__} is shadowed by {a.__name__}"


def test_panel_serve_plugin_in_another_process(state_dir, layers, tmp_path):
    """``panel serve --plugins viewer.server.plugin`` serves tiles of layers registered elsewhere."""
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent("""
        import panel as pn
        pn.pane.Markdown("plugin test").servable()
    """))
    port = free_port()
    env = dict(os.environ, VIEWER_STATE_DIR=str(state_dir))
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(app), "--plugins", "viewer.server.plugin",
                             "--port", str(port), "--address", "127.0.0.1", "--allow-websocket-origin",
                             f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base + "/app", proc)
        z, x, y = scene_tiles(13)[4]
        status, headers, body = fetch(f"{base}/tiles/{layers['classes']}/{z}/{x}/{y}.png")
        assert status == 200 and decode(body)[..., 3].max() == 255
        status, _, body = fetch(f"{base}/tiles/{'d' * 64}/{z}/{x}/{y}.png")
        assert status == 404 and body.startswith(b"404 unknown layer token")
    finally:
        proc.terminate()
        proc.wait(10)


def test_tiles_sit_behind_the_app_login(state_dir, layers):
    """With --basic-auth the tile, layer and pixel routes refuse requests without a login."""
    import panel as pn

    port = free_port()
    thread = pn.serve({"app": lambda: pn.pane.Markdown("secret")}, port=port, address="127.0.0.1", show=False,
                      start=True, threaded=True, verbose=False, extra_patterns=tile_routes(),
                      websocket_origin=[f"127.0.0.1:{port}"], basic_auth="s3cret-password",
                      cookie_secret="test-cookie-secret")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base + "/login")
        x, y, z = scene_tiles(12)[0][1], scene_tiles(12)[0][2], 12
        status, headers, body = fetch(f"{base}/tiles/{layers['rgb']}/{z}/{x}/{y}.png")
        assert status == 401 and b"log in" in body
        assert fetch(f"{base}/layers/{layers['rgb']}")[0] == 401
        # after logging in through Panel's basic-auth form, the same tile is served
        import http.cookiejar

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = urllib.parse.urlencode({"username": "viewer", "password": "s3cret-password"}).encode()
        try:
            opener.open(base + "/login", data=form, timeout=30)
        except urllib.error.HTTPError:
            pass
        with opener.open(f"{base}/tiles/{layers['rgb']}/{z}/{x}/{y}.png", timeout=60) as r:
            assert r.status == 200 and r.headers["Cache-Control"].startswith("private")
            assert decode(r.read())[..., 3].max() == 255
    finally:
        thread.stop()
