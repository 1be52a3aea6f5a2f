"""Remote COGs: read through /vsicurl/ only under the catalog's prefixes, and their HTTP ETag
is part of the layer token (a replaced remote file makes new tokens; old ones answer 410)."""
from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import viewer
from viewer.core import access
from viewer.core.catalog import set_catalog
from viewer.core.layers import image_layer
from viewer.core.tiles import render_tile

ASSETS = Path(__file__).resolve().parents[1] / "assets"


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """A static file server with byte ranges and an ETag (what GDAL's /vsicurl/ needs)."""

    root: Path

    def _file(self) -> Path | None:
        p = self.root / self.path.lstrip("/")
        return p if p.is_file() else None

    def _headers(self, p: Path, status: int, length: int, extra: dict | None = None) -> None:
        st = p.stat()
        self.send_response(status)
        self.send_header("ETag", f'"{st.st_size}-{st.st_mtime_ns}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def do_HEAD(self):  # noqa: N802
        p = self._file()
        if p is None:
            self.send_error(404)
            return
        self._headers(p, 200, p.stat().st_size)

    def do_GET(self):  # noqa: N802
        p = self._file()
        if p is None:
            self.send_error(404)
            return
        data = p.read_bytes()
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
            self._headers(p, 206, end - start + 1, {"Content-Range": f"bytes {start}-{end}/{len(data)}"})
            self.wfile.write(data[start:end + 1])
        else:
            self._headers(p, 200, len(data))
            self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def remote(tmp_path, monkeypatch):
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(ASSETS / "landsat8" / "B4.tif", root / "b4.tif")
    handler = type("H", (_RangeHandler,), {"root": root})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    doc = {"remote_prefixes": [base], "images": {"R/B4": {"bands": [{"id": "B4", "path": base + "b4.tif"}]}}}
    (tmp_path / "catalog.json").write_text(json.dumps(doc))
    set_catalog(tmp_path / "catalog.json")
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(access, "REMOTE_IDENTITY_TTL", 0.0)  # ask the server every time in this test
    yield root, base
    set_catalog(None)
    httpd.shutdown()


def test_a_remote_cog_reads_like_the_local_file(remote):
    root, base = remote
    grid = {"dimensions": {"width": 64, "height": 64}}
    got = viewer.data.getPixels({"assetId": "R/B4", "grid": grid, "fileFormat": "NUMPY_NDARRAY"})["B4"]
    local = viewer.Image.open(ASSETS / "landsat8" / "B4.tif")
    want = viewer.data.computePixels({"expression": local, "grid": {**grid, **viewer.Image("R/B4").native_grid()
                                      .to_dict(), "dimensions": grid["dimensions"]}, "fileFormat": "NUMPY_NDARRAY"})
    np.testing.assert_array_equal(got, want[want.dtype.names[0]])
    identity = viewer.Image("R/B4").node.args[1][0][3]
    assert identity.startswith('"') and identity.endswith('"')  # the server's ETag


def test_a_replaced_remote_file_changes_the_token_and_old_tokens_are_gone(remote):
    import morecantile

    root, base = remote
    old = image_layer(viewer.Image("R/B4"), {"min": 7000, "max": 14000})
    t = morecantile.tms.get("WebMercatorQuad").tile(-87.398, 30.728, 12)
    assert render_tile(old, t.z, t.x, t.y)
    shutil.copy(ASSETS / "landsat8" / "B5.tif", root / "b4.tif")
    os.utime(root / "b4.tif", ns=(1, 1))  # a new ETag
    new = image_layer(viewer.Image("R/B4"), {"min": 7000, "max": 14000})
    assert new.token != old.token
    with pytest.raises(viewer.core.errors.SourceChanged):
        render_tile(old, t.z, t.x + 1, t.y)


def test_urls_outside_the_prefixes_are_refused(remote):
    root, base = remote
    with pytest.raises(viewer.InvalidArgument, match="not under a prefix"):
        viewer.Image.open("/vsicurl/http://127.0.0.1:9/elsewhere.tif")
