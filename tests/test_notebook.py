"""A notebook without internet shows the map (issue 10).

A real notebook runs in a kernel (nbclient); its outputs, put in a page in output order (what
JupyterLab renders), are loaded in Chromium with every request that is not to this machine
aborted. The map must draw the layer's tiles from the kernel's background tile server, at the
port and public URL the options give, and no request may go to a CDN.
"""
from __future__ import annotations

import html
import io
import socket
from urllib.parse import urlparse

import nbformat
import numpy as np
import pytest
from affine import Affine
from nbclient import NotebookClient
from PIL import Image as PILImage

from viewer import InvalidArgument
from viewer.core.image import Image
from viewer.core.layers import image_layer
from viewer.core.tiles import render_rgba
from viewer.ui.tileserver import TileServerOptions, ensure_tile_server, tile_server_options, wants_local_server

SETUP = """
import numpy as np
from affine import Affine
import viewer
data = np.zeros((64, 64), np.uint8)
data[:, :32] = 200
data[:32, :] = 100
img = viewer.Image.from_array(data, crs="EPSG:3857", transform=Affine(100, 0, 0, 0, -100, 6400))
m = viewer.Map()
layer = m.add_layer(img, {"min": 0, "max": 255, "palette": "viridis"}, "blocks")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _page(nb) -> str:
    """The outputs in order, as a notebook front end shows them: JavaScript run, HTML inserted."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "application/javascript" in data:
                parts.append(f"<script>{data['application/javascript']}</script>")
            elif "text/html" in data:
                parts.append(f"<div class='output'>{data['text/html']}</div>")
            elif "text/plain" in data:
                parts.append(f"<pre>{html.escape(data['text/plain'])}</pre>")
            elif out.get("output_type") == "error":
                raise AssertionError("\n".join(out.get("traceback", [])))
    return "<!doctype html><html><head><meta charset='utf-8'></head><body>" + "".join(parts) + "</body></html>"


def _expected_colours() -> set[tuple[int, int, int]]:
    data = np.zeros((64, 64), np.uint8)
    data[:, :32] = 200
    data[:32, :] = 100
    img = Image.from_array(data, crs="EPSG:3857", transform=Affine(100, 0, 0, 0, -100, 6400))
    spec = image_layer(img, {"min": 0, "max": 255, "palette": "viridis"})
    rgba = render_rgba(spec, spec.node.native_grid())
    return {tuple(int(v) for v in c) for c in np.unique(rgba[..., :3].reshape(-1, 3), axis=0)}


@pytest.mark.browser
def test_notebook_map_draws_offline(chromium, tmp_path, monkeypatch):
    port = _free_port()
    public = f"http://localhost:{port}/"  # another spelling of this machine: proves the public URL is used
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("VIEWER_TILE_PORT", str(port))
    monkeypatch.setenv("VIEWER_TILE_URL", public)
    monkeypatch.delenv("PANEL_INLINE", raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell("m")])
    client = NotebookClient(nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():  # the kernel (and its tile server) stays up while the browser reads
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        page_file = tmp_path / "notebook.html"
        page_file.write_text(_page(nb), encoding="utf-8")

        outside, tiles, errors = [], [], []

        def route(r):
            url = urlparse(r.request.url)
            if url.scheme == "file" or url.scheme == "data" or url.hostname in ("127.0.0.1", "localhost"):
                if "/tiles/" in url.path:
                    tiles.append(r.request.url)
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()

        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", route)
        try:
            page.goto(page_file.as_uri())
            page.locator("canvas").first.wait_for(timeout=60000)
            page.wait_for_function(f"() => performance.getEntriesByType('resource')"
                                   f".filter(e => e.name.includes('/tiles/')).length > 0", timeout=60000)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(tmp_path / "notebook.png"))
            box = page.locator("canvas").first.bounding_box()
            shot = np.asarray(PILImage.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB"))
            bar = page.locator(".viewer-colorbar").first.bounding_box()  # the legend's styles reached it
        finally:
            page.close()
    assert outside == [], f"requests left this machine: {outside[:5]}"
    assert errors == [], errors
    assert tiles and all(t.startswith(public + "tiles/") for t in tiles), tiles[:3]
    pixels = {tuple(int(v) for v in c): n for c, n in zip(*np.unique(shot.reshape(-1, 3), axis=0, return_counts=True))}
    for colour in _expected_colours():
        assert pixels.get(colour, 0) > 2000, (colour, sorted(pixels.items(), key=lambda kv: -kv[1])[:6])
    assert bar is not None and bar["height"] >= 10 and bar["width"] > 200, bar


def test_tile_server_options(monkeypatch):
    for name in ("VIEWER_TILE_HOST", "VIEWER_TILE_PORT", "VIEWER_TILE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert tile_server_options() == TileServerOptions("127.0.0.1", 0, None) and wants_local_server()
    assert TileServerOptions("127.0.0.1", 0, None).url_for(8123) == "http://127.0.0.1:8123/"
    assert TileServerOptions("0.0.0.0", 0, None).url_for(8123) == "http://127.0.0.1:8123/"
    assert TileServerOptions("::1", 0, None).url_for(8123) == "http://[::1]:8123/"
    monkeypatch.setenv("VIEWER_TILE_URL", "https://hub.example.org/user/me/proxy/8765")
    assert not wants_local_server()  # tiles from another server: the kernel starts none
    monkeypatch.setenv("VIEWER_TILE_PORT", "8765")
    monkeypatch.setenv("VIEWER_TILE_HOST", "0.0.0.0")
    opts = tile_server_options()
    assert opts == TileServerOptions("0.0.0.0", 8765, "https://hub.example.org/user/me/proxy/8765")
    assert wants_local_server() and opts.url_for(8765) == "https://hub.example.org/user/me/proxy/8765/"
    explicit = tile_server_options(host="127.0.0.1", port=9000, public_url="/p/")
    assert explicit == TileServerOptions("127.0.0.1", 9000, "/p/")
    monkeypatch.setenv("VIEWER_TILE_PORT", "eighty")
    with pytest.raises(InvalidArgument, match="VIEWER_TILE_PORT"):
        tile_server_options()
    monkeypatch.delenv("VIEWER_TILE_PORT")
    with pytest.raises(InvalidArgument, match="port 70000 is not allowed"):
        ensure_tile_server(port=70000)
