"""Issue 7: every bad input ends in a clear, typed error (table-driven).

Over HTTP: a 4xx (503 for an unavailable source) with a one-line plain-text reason that
names the bad value and what is allowed, never a 500 or a traceback, and the server keeps
serving. In Python: a ``viewer.ViewerError`` subclass that is also the matching builtin,
with a message naming the bad value.
"""
from __future__ import annotations

import concurrent.futures
import copy
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import viewer
from viewer.core.catalog import Catalog
from viewer.core.errors import (InvalidArgument, InvalidMask, LimitExceeded, ReadError, UnknownAsset, UnknownBand,
                                UnknownCRS, ViewerError)
from viewer.core.grid import parse_crs
from viewer.core.pixels import computePixels, getPixels
from viewer.core.serialize import from_json, to_json
from viewer.core.tiles import tile_grid

from test_server import decode, layers, scene_tiles, server, state_dir  # noqa: F401 - fixtures

ASSETS = Path(__file__).resolve().parents[1] / "assets"
L8 = "LANDSAT/LC08/SAMPLE"
UNKNOWN = "f" * 64  # well-formed, never registered
GOOD_TILE = scene_tiles(12)[4]
JSON = {"Content-Type": "application/json"}


# ----------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------
def GET(path, status, fragment, id, headers=None, method="GET"):  # noqa: N802, A002 - table helper
    return pytest.param((method, path, None, headers or {}), status, fragment, id=id)


def POST(body, status, fragment, id, headers=None, path="/pixels"):  # noqa: N802, A002 - table helper
    return pytest.param(("POST", path, body, JSON if headers is None else headers), status, fragment, id=id)


def px(**over):
    """A small, valid getPixels request body with some keys replaced (``None`` drops a key)."""
    body = {"assetId": L8, "bandIds": ["B4"], "fileFormat": "NPY",
            "grid": {"dimensions": {"width": 4, "height": 4}}}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def grid(**over):
    g = {"dimensions": {"width": 4, "height": 4}, "crsCode": "EPSG:32616",
         "affineTransform": {"scaleX": 30, "shearX": 0, "translateX": 460000, "shearY": 0, "scaleY": -30,
                             "translateY": 3400000}}
    for k, v in over.items():
        if k in ("width", "height"):
            g["dimensions"][k] = v
        elif k in g["affineTransform"]:
            g["affineTransform"][k] = v
        elif v is None:
            g.pop(k, None)
        else:
            g[k] = v
    return g


def polygon(*ring):
    return {"type": "Polygon", "coordinates": [list(map(list, ring)) + [list(ring[0])]]}


def _graph_with_file_source(path: str) -> dict:
    """A computePixels-style graph whose source names ``path`` instead of a catalog asset."""
    doc = to_json(viewer.Image(L8).select(["B4"]))
    src = next(n for n in doc["nodes"].values() if n["op"] == "source")
    src["args"][0] = None
    src["args"][1][0][0] = path
    return doc


def _graph_chain(n: int) -> dict:
    """A hand-made chain of ``n`` selfMask nodes over B4 (to_json cannot make one past the depth limit)."""
    doc = to_json(viewer.Image(L8).select(["B4"]))
    nodes, prev = dict(doc["nodes"]), doc["result"]
    bands = doc["nodes"][prev]["bands"]
    for i in range(n):
        key = f"{i:064x}"
        nodes[key] = {"op": "selfMask", "args": [{"$node": prev}], "bands": copy.deepcopy(bands)}
        prev = key
    return {"viewerGraph": 1, "result": prev, "nodes": nodes}


def _graph_edit(edit) -> dict:
    """``to_json`` of B4 + 1, changed by ``edit(doc, result_key, select_key)``."""
    doc = to_json(viewer.Image(L8).select(["B4"]).add(1))
    res = doc["result"]
    sel = doc["nodes"][res]["args"][1]["$node"]
    edit(doc, res, sel)
    return doc


def _cycle(doc, res, sel):
    doc["nodes"][sel]["args"][0] = {"$node": res}


def _self_reference(doc, res, sel):
    doc["nodes"][res]["args"][1] = {"$node": res}


def _unknown_op(doc, res, sel):
    doc["nodes"][res]["op"] = "exec"


def _content_mismatch(doc, res, sel):
    doc["nodes"][res]["args"][0] = "subtract"  # the key still says "add"


def _nested_args(doc, res, sel):
    value = 1
    for _ in range(900):
        value = [value]
    doc["nodes"][res]["args"][2] = value


def _graph_doc(kind: str) -> dict:
    return {
        "path": lambda: _graph_with_file_source("/etc/passwd"),
        "vsicurl": lambda: _graph_with_file_source("/vsicurl/http://127.0.0.1:1/x.tif"),
        "cycle": lambda: _graph_edit(_cycle),
        "deep": lambda: _graph_chain(1500),
        "unknown-op": lambda: _graph_edit(_unknown_op),
        "mismatch": lambda: _graph_edit(_content_mismatch),
    }[kind]()


def _big_int_json(path: tuple, digits: int = 400) -> bytes:
    """A request body with a ``digits``-digit integer at ``path`` (JSON numbers have no size limit)."""
    body = px(grid=grid(), region=None)
    target = body
    for k in path[:-1]:
        target = target.setdefault(k, {})
    target[path[-1]] = 10 ** digits
    return json.dumps(body).encode()


HTTP_CASES = [
    # -- tile URLs ------------------------------------------------------------------------
    GET("/tiles/{tok}/3/0/0.gif", 400, "tile format 'gif' is not allowed", "tile-ext-gif"),
    GET("/tiles/{tok}/3/0/0.tif", 400, "tile format 'tif' is not allowed", "tile-ext-tif"),
    GET("/tiles/{tok}/3/0/0.png%0A", 400, "tile format 'png\\n' is not allowed", "tile-ext-trailing-newline"),
    GET("/tiles/{tok}/3/0/0", 400, "has no extension", "tile-no-extension"),
    GET("/tiles/{tok}/3/0/0.png.png", 400, "tile y '0.png' is not a non-negative integer", "tile-double-extension"),
    GET("/tiles/" + "0" * 63 + "g/12/1052/1680.png", 400, "is malformed; allowed: 64 lowercase hex",
        "tile-token-non-hex"),
    GET("/tiles/" + "F" * 64 + "/12/1052/1680.png", 400, "'" + "F" * 64 + "' is malformed", "tile-token-uppercase"),
    GET("/tiles/" + "f" * 63 + "/12/1052/1680.png", 400, "is malformed; allowed: 64 lowercase hex",
        "tile-token-63-chars"),
    GET("/tiles/" + "f" * 65 + "/12/1052/1680.png", 400, "is malformed; allowed: 64 lowercase hex",
        "tile-token-65-chars"),
    GET("/tiles/{tok}%0A/12/1052/1680.png", 400, "\\n' is malformed", "tile-token-trailing-newline"),
    GET("/tiles/%00/1/0/0.png", 400, "layer token '\\x00' is malformed", "tile-token-nul"),
    GET("/tiles//1/0/0.png", 400, "layer token '' is malformed", "tile-token-empty"),
    GET("/tiles/%2e%2e/1/0/0.png", 400, "layer token '..' is malformed", "tile-token-dotdot"),
    GET("/tiles/..%2F..%2Fetc%2Fpasswd/1/0/0.png", 404, "is not /tiles/<token>/<z>/<x>/<y>.<ext>",
        "tile-token-encoded-path"),
    GET("/tiles/{tok}/12%0A/1052/1680.png", 400, "tile z '12\\n' is not a non-negative integer", "tile-z-newline"),
    GET("/tiles/{tok}/12/1052%0A/1680.png", 400, "tile x '1052\\n' is not a non-negative integer", "tile-x-newline"),
    GET("/tiles/{tok}/12/1052/1680%0A.png", 400, "tile y '1680\\n' is not a non-negative integer", "tile-y-newline"),
    GET("/tiles/{tok}/-1/0/0.png", 400, "tile z '-1' is not a non-negative integer", "tile-z-negative"),
    GET("/tiles/{tok}/3/-1/0.png", 400, "tile x '-1' is not a non-negative integer", "tile-x-negative"),
    GET("/tiles/{tok}/3/0/-1.png", 400, "tile y '-1' is not a non-negative integer", "tile-y-negative"),
    GET("/tiles/{tok}/+3/0/0.png", 400, "tile z '+3' is not a non-negative integer", "tile-z-plus-sign"),
    GET("/tiles/{tok}/%203/0/0.png", 400, "tile z ' 3' is not a non-negative integer", "tile-z-space"),
    GET("/tiles/{tok}/%D9%A3/0/0.png", 400, "is not a non-negative integer", "tile-z-arabic-digit"),
    GET("/tiles/{tok}/3.0/0/0.png", 400, "tile z '3.0' is not a non-negative integer", "tile-z-float"),
    GET("/tiles/{tok}/abc/0/0.png", 400, "tile z 'abc' is not a non-negative integer", "tile-z-letters"),
    GET("/tiles/{tok}/25/0/0.png", 400, "tile z 25 is out of range; allowed 0..24", "tile-z-25"),
    GET("/tiles/{tok}/9999999999/0/0.png", 400, "tile z 9999999999 is out of range; allowed 0..24", "tile-z-huge"),
    GET("/tiles/{tok}/99999999999/0/0.png", 400, "tile z '99999999999' is not a non-negative integer",
        "tile-z-11-digits"),
    GET("/tiles/{tok}/3/8/0.png", 400, "tile x 8 is out of range; allowed 0..7", "tile-x-out-of-range"),
    GET("/tiles/{tok}/3/0/8.png", 400, "tile y 8 is out of range; allowed 0..7", "tile-y-out-of-range"),
    GET("/tiles/{tok}/0/1/0.png", 400, "tile x 1 is out of range; allowed 0..0", "tile-x-out-of-range-z0"),
    GET("/tiles/{tok}/3/0/" + "9" * 3000 + ".png", 400, "is not a non-negative integer", "tile-y-3000-digits"),
    GET("/tiles/{tok}/3/0/0/1.png", 404, "is not /tiles/<token>/<z>/<x>/<y>.<ext>", "tile-extra-segment"),
    GET("/tiles/{tok}/3/0/0.png/", 404, "is not /tiles/<token>/<z>/<x>/<y>.<ext>", "tile-trailing-slash"),
    GET("/tiles/{tok}/3/0", 404, "is not /tiles/<token>/<z>/<x>/<y>.<ext>", "tile-missing-segment"),
    GET("/tiles/", 404, "is not /tiles/<token>/<z>/<x>/<y>.<ext>", "tile-empty-path"),
    GET("/tiles", 404, "is not /tiles/<token>/<z>/<x>/<y>.<ext>", "tile-bare-prefix"),
    GET("/tiles/{unk}/12/1052/1680.png", 404, "unknown layer token", "tile-unknown-token"),
    GET("/tiles/{unk}/12/1052/1680.png", 404, "unknown layer token", "tile-unknown-token-if-none-match-star",
        headers={"If-None-Match": "*"}),
    GET("/tiles/{unk}/12/1052/1680.png", 404, "unknown layer token", "tile-unknown-token-if-none-match-etag",
        headers={"If-None-Match": '"0123456789"'}),
    GET("/tiles/{tok}/12/1052/1680.png", 304, "", "tile-known-token-if-none-match-star",
        headers={"If-None-Match": "*"}),
    GET("/tiles/{tok}/3/0/0.gif", 400, "", "tile-head-bad-ext", method="HEAD"),
    GET("/tiles/{tok}/3/0/0.png", 405, "405 Method Not Allowed", "tile-delete", method="DELETE"),
    POST(b"x", 405, "405 Method Not Allowed", "tile-post", path="/tiles/{tok}/3/0/0.png"),
    # -- /layers --------------------------------------------------------------------------
    GET("/layers/nope", 400, "layer token 'nope' is malformed", "layers-token-short"),
    GET("/layers/" + "A" * 64, 400, "is malformed; allowed: 64 lowercase hex", "layers-token-uppercase"),
    GET("/layers/" + "a" * 63, 400, "is malformed; allowed: 64 lowercase hex", "layers-token-63-chars"),
    GET("/layers/" + "a" * 65, 400, "is malformed; allowed: 64 lowercase hex", "layers-token-65-chars"),
    GET("/layers/{tok}%0A", 400, "\\n' is malformed", "layers-token-trailing-newline"),
    GET("/layers/%2e%2e", 400, "layer token '..' is malformed", "layers-token-dotdot"),
    GET("/layers/", 400, "layer token '' is malformed", "layers-token-empty"),
    GET("/layers/{unk}", 404, "unknown layer token", "layers-unknown-token"),
    GET("/layers/{tok}/", 404, "is not /layers/<token>", "layers-trailing-slash"),
    GET("/layers/a/b", 404, "'/layers/a/b' is not /layers/<token>", "layers-extra-segment"),
    GET("/layers", 404, "is not /layers/<token>", "layers-bare-prefix"),
    POST(b"{}", 405, "405 Method Not Allowed", "layers-post", path="/layers/{tok}"),
    # -- POST /pixels: transport ----------------------------------------------------------
    POST(px(), 415, "Content-Type 'text/plain' is not allowed; allowed: application/json", "pixels-text-plain",
         headers={"Content-Type": "text/plain"}),
    POST(px(), 415, "Content-Type 'application/x-www-form-urlencoded' is not allowed", "pixels-form-encoded",
         headers={"Content-Type": "application/x-www-form-urlencoded"}),
    POST(px(), 403, "cross-site request from 'http://evil.example' refused", "pixels-cross-site-origin",
         headers={**JSON, "Origin": "http://evil.example"}),
    POST(px(), 403, "cross-site request from 'null' refused", "pixels-null-origin",
         headers={**JSON, "Origin": "null"}),
    POST(px(), 403, "cross-site request from 'http://[::1' refused", "pixels-unparsable-origin",
         headers={**JSON, "Origin": "http://[::1"}),
    POST(px(), 403, "Sec-Fetch-Site 'cross-site'", "pixels-sec-fetch-cross-site",
         headers={**JSON, "Sec-Fetch-Site": "cross-site"}),
    POST(px(), 403, "Sec-Fetch-Site 'same-site'", "pixels-sec-fetch-same-site",
         headers={**JSON, "Sec-Fetch-Site": "same-site"}),
    POST(b"{not json", 400, "request body is not valid JSON", "pixels-not-json"),
    POST(b"{\"assetId\": \"\xc3\x28\"}", 400, "request body is not valid JSON", "pixels-not-utf8"),
    POST(b"[" * 200_000, 400, "request body is not valid JSON: it is nested too deeply", "pixels-200kb-brackets"),
    POST(b"x" * ((1 << 20) + 1), 413, "is over the limit of 1048576 bytes", "pixels-body-over-1mb"),
    POST([1, 2], 400, "request body must be a JSON object", "pixels-array-body"),
    POST(b"", 400, "request body must be a JSON object", "pixels-empty-body"),
    POST(b"\"LANDSAT/LC08/SAMPLE\"", 400, "request body must be a JSON object", "pixels-string-body"),
    POST(px(), 404, "is not /pixels", "pixels-extra-path", path="/pixels/x"),
    GET("/pixels", 405, "405 Method Not Allowed", "pixels-get"),
    # -- POST /pixels: keys, formats, assets, bands -----------------------------------------
    POST(px(bandIDs=["B4"]), 400, "unknown request keys ['bandIDs']; allowed:", "pixels-unknown-key"),
    POST(px(fileFormat="BMP"), 400, "fileFormat 'BMP' is not available over HTTP; allowed:", "pixels-format-bmp"),
    POST(px(fileFormat="NUMPY_NDARRAY"), 400, "'NUMPY_NDARRAY' is not available over HTTP", "pixels-format-ndarray"),
    POST(px(fileFormat=5), 400, "fileFormat 5 is not available over HTTP", "pixels-format-number"),
    POST(px(fileFormat=["PNG"]), 400, "fileFormat ['PNG'] is not available", "pixels-format-list"),
    POST(px(assetId="/etc/passwd"), 400, "'/etc/passwd' is a path or URL, not an asset id", "pixels-asset-abs-path"),
    POST(px(assetId="../x"), 400, "'../x' is a path or URL, not an asset id", "pixels-asset-dotdot"),
    POST(px(assetId="/vsicurl/http://127.0.0.1:1/x.tif"), 400, "is a path or URL, not an asset id",
         "pixels-asset-vsicurl"),
    POST(px(assetId="http://127.0.0.1:1/x.tif"), 400, "'http://127.0.0.1:1/x.tif' is a path or URL",
         "pixels-asset-url"),
    POST(px(assetId="assets/landsat8/B4.tif"), 400, "is a path or URL, not an asset id", "pixels-asset-rel-path"),
    POST(px(assetId="NOPE/NOPE"), 404, "unknown asset id 'NOPE/NOPE'", "pixels-asset-unknown"),
    POST(px(assetId=5), 400, "assetId 5 must be an asset id string", "pixels-asset-number"),
    POST(px(assetId=["x"]), 400, "assetId ['x'] must be an asset id string", "pixels-asset-list"),
    POST(px(assetId=None), 400, "assetId None must be an asset id string", "pixels-asset-missing"),
    POST(px(bandIds=["B99"]), 400, "band 'B99' does not exist", "pixels-band-unknown"),
    POST(px(bandIds=["B4", "B4"]), 400, "bandIds ['B4', 'B4'] name a band twice", "pixels-band-duplicated"),
    POST(px(bandIds=[]), 400, "bandIds [] must be a non-empty list", "pixels-band-empty"),
    POST(px(bandIds="B4"), 400, "bandIds 'B4' must be a non-empty list", "pixels-band-string"),
    POST(px(bandIds=[{"a": 1}]), 400, "band selector {'a': 1} must be a name", "pixels-band-object"),
    POST(px(bandIds=[99]), 400, "band index 99 is out of range", "pixels-band-index"),
    # -- POST /pixels: CRS --------------------------------------------------------------------
    POST(px(grid=grid(crsCode="http://127.0.0.1:1/x.wkt")), 400, "'http://127.0.0.1:1/x.wkt' is not an authority",
         "pixels-crs-url"),
    POST(px(grid=grid(crsCode="/vsicurl/http://127.0.0.1:1/x.wkt")), 400, "never a path or URL",
         "pixels-crs-vsicurl"),
    POST(px(grid=grid(crsCode="/etc/shadow")), 400, "CRS '/etc/shadow' is not an authority code", "pixels-crs-path"),
    POST(px(grid=grid(crsCode="+proj=longlat +nadgrids=/etc/shadow")), 400, "refers to a file or URL",
         "pixels-crs-nadgrids"),
    POST(px(grid=grid(crsCode="EPSG:99999999")), 400, "CRS 'EPSG:99999999' cannot be resolved", "pixels-crs-unknown"),
    POST(px(grid=grid(crsCode=None, crsWkt="GEOGCS[garbage")), 400, "CRS 'GEOGCS[garbage' cannot be resolved",
         "pixels-crswkt-garbage"),
    POST(px(grid=grid(crsWkt="GEOGCS[\"x\"]")), 400, "give grid.crsCode or grid.crsWkt, not both",
         "pixels-crs-both"),
    POST(px(grid=grid(crsCode=4326)), 400, "CRS 4326 is not a CRS code or text", "pixels-crs-number"),
    # -- POST /pixels: dimensions and transform ---------------------------------------------
    POST(px(grid=grid(width=0)), 400, "grid.dimensions.width 0 is not allowed; allowed: a positive integer",
         "pixels-dims-zero"),
    POST(px(grid=grid(height=-5)), 400, "grid.dimensions.height -5 is not allowed", "pixels-dims-negative"),
    POST(px(grid=grid(width=1.5)), 400, "grid.dimensions.width 1.5 is not allowed", "pixels-dims-float"),
    POST(px(grid=grid(width="8")), 400, "grid.dimensions.width '8' is not allowed", "pixels-dims-string"),
    POST(px(grid=grid(width=40000, height=1)), 413, "requested 40000x1 pixels; the limit is 32768 pixels per side",
         "pixels-dims-over-32768"),
    POST(px(grid=grid(width=8000, height=8000)), 413, "the limit is 50331648 bytes (48 MiB)",
         "pixels-dims-over-48mib"),
    POST(px(grid=grid(width=1e300)), 413, "the limit is 32768 pixels per side", "pixels-dims-1e300"),
    POST(_big_int_json(("grid", "dimensions", "width")), 413, "the limit is 32768 pixels per side",
         "pixels-dims-400-digits"),
    POST(px(grid=grid(scaleX=0, scaleY=0)), 400, "is singular (determinant 0)", "pixels-affine-singular"),
    POST(px(grid=grid(translateX=float("nan"))), 400, "affineTransform.translateX nan must be a finite number",
         "pixels-affine-nan"),
    POST(px(grid=grid(scaleX=float("inf"))), 400, "affineTransform.scaleX inf must be a finite number",
         "pixels-affine-inf"),
    POST(_big_int_json(("grid", "affineTransform", "scaleX")), 400, "must be a finite number",
         "pixels-affine-400-digits"),
    POST(json.dumps(px(grid=grid(width=123456789))).replace("123456789", "9" * 5000).encode(), 400,
         "request body is not valid JSON: a number has more than 4300 digits", "pixels-5000-digit-number"),
    POST(px(grid=grid(affineTransform=[1, 2, 3])), 400, "grid.affineTransform [1, 2, 3] must be a dict",
         "pixels-affine-short-list"),
    POST(px(grid=[4, 4]), 400, "grid [4, 4] must be a dict", "pixels-grid-list"),
    POST(px(grid={"affineTransform": {"scaleX": 0}}), 400, "is singular", "pixels-affine-singular-no-dims"),
    POST(px(grid=grid(crsCode="IAU_2015:30100")), 400, "cannot be transformed to the image's CRS 'EPSG:32616'",
         "pixels-crs-of-the-moon"),
    POST(px(grid={"crsCode": "IAU_2015:30100"}), 400, "the image's bounds cannot be expressed in CRS",
         "pixels-crs-of-the-moon-no-dims"),
    # -- POST /pixels: regions -------------------------------------------------------------
    POST(px(grid=None, region=polygon((0, 95), (1, 95), (1, 96))), 400, "position [0, 95] is not a longitude/latitude",
         "pixels-region-lat-95"),
    POST(px(grid=None, region={"type": "Point", "coordinates": [1e300, 0]}), 400,
         "[1e+300, 0] is not a longitude/latitude", "pixels-region-lon-1e300"),
    POST(px(grid=None, region={"type": "Point", "coordinates": [10 ** 400, 0]}), 400, "has a bad position",
         "pixels-region-lon-400-digits"),
    POST(px(grid=None, region={"type": "GeometryCollection", "geometries": []}), 400,
         "is not a GeoJSON geometry; allowed types:", "pixels-region-geometry-collection"),
    POST(px(grid=None, region={"type": "Polygon", "coordinates": "0 0 1 1"}), 400, "coordinates '0 0 1 1'",
         "pixels-region-coordinates-string"),
    POST(px(grid=None, region="POLYGON((0 0,1 0,1 1,0 0))"), 400, "is not a GeoJSON geometry", "pixels-region-wkt"),
    POST(px(grid=None, region={"type": "Feature", "geometry": None}), 400, "region None is not a GeoJSON geometry",
         "pixels-region-empty-feature"),
    # -- POST /pixels: visualization -------------------------------------------------------
    POST(px(bandIds=["B4", "B5"], fileFormat="PNG", visualizationOptions={"ranges": [{"min": 0, "max": 1}]}), 400,
         "visualizationOptions need 1 or 3 bands, got 2", "pixels-vis-two-bands"),
    POST(px(fileFormat="PNG", visualizationOptions={"ranges": [{"min": 0, "max": 1}], "colour": 1}), 400,
         "visualizationOptions has unknown keys ['colour']", "pixels-vis-unknown-key"),
    POST(px(fileFormat="PNG", visualizationOptions={"ranges": [{"min": float("nan"), "max": 1}]}), 400,
         "min [nan] must be finite", "pixels-vis-nan-range"),
    POST(px(fileFormat="PNG", visualizationOptions={"ranges": [{"min": 0, "max": 1}], "paletteColors": ["zz"]}),
         400, "colour 'zz' is not allowed", "pixels-vis-bad-colour"),
    POST(px(fileFormat="PNG", visualizationOptions={"ranges": [{"min": 0, "max": 1}], "gamma": -10 ** 400}), 400,
         "visualizationOptions.gamma -1000", "pixels-vis-gamma-400-digits"),
    # -- POST /pixels: expressions (graphs) are not taken over HTTP --------------------------
    POST(lambda: px(assetId=None, bandIds=None, expression=_graph_doc("path")), 400,
         "image expressions are not accepted over HTTP", "pixels-expression-file-source"),
    POST(lambda: px(assetId=None, bandIds=None, expression=_graph_doc("vsicurl")), 400,
         "image expressions are not accepted over HTTP", "pixels-expression-vsicurl-source"),
    POST(lambda: px(assetId=None, bandIds=None, expression=_graph_doc("cycle")), 400,
         "image expressions are not accepted over HTTP", "pixels-expression-cycle"),
    POST(lambda: px(assetId=None, bandIds=None, expression=_graph_doc("deep")), 400,
         "image expressions are not accepted over HTTP", "pixels-expression-1500-deep"),
    POST(lambda: px(assetId=None, bandIds=None, expression=_graph_doc("unknown-op")), 400,
         "image expressions are not accepted over HTTP", "pixels-expression-unknown-op"),
    POST(lambda: px(assetId=None, bandIds=None, expression=_graph_doc("mismatch")), 400,
         "image expressions are not accepted over HTTP", "pixels-expression-content-mismatch"),
    # -- POST /pixels: layer exports -------------------------------------------------------
    POST({"layer": "{unk}", "fileFormat": "PNG"}, 404, "unknown layer token", "export-unknown-token"),
    POST({"layer": "nope", "fileFormat": "PNG"}, 400, "layer token 'nope' is malformed", "export-malformed-token"),
    POST({"layer": "{tok}\n", "fileFormat": "PNG"}, 400, "\\n' is malformed", "export-token-trailing-newline"),
    POST({"layer": 5, "fileFormat": "PNG"}, 400, "layer token 5 is malformed", "export-token-number"),
    POST({"layer": "{tok}", "fileFormat": "PNG", "assetId": L8}, 400, "layer export has unknown keys ['assetId']",
         "export-unknown-key"),
    POST({"layer": "{tok}", "fileFormat": "PNG", "grid": grid(width=40000)}, 413, "the limit is 32768 pixels",
         "export-dims-over-32768"),
    POST({"layer": "{tok}", "fileFormat": "PNG", "grid": grid(crsCode="/etc/shadow")}, 400, "never a path or URL",
         "export-crs-path"),
    POST({"layer": "{tok}", "fileFormat": "NPY", "bandIds": "B4"}, 400, "bandIds 'B4' must be a non-empty list",
         "export-band-string"),
    POST({"layer": "{tok}", "fileFormat": "PNG", "bandIds": ["B9"]}, 400, "bandIds pick raw bands: only with GEO_TIFF "
         "or NPY, not PNG", "export-layer-png-bandids"),
    POST({"layer": "{tok}", "fileFormat": "PNG", "region": {"type": "Point", "coordinates": [0, 95]}}, 400,
         "[0, 95] is not a longitude/latitude", "export-region-lat-95"),
]


def _send(server: str, tokens: dict, case: tuple) -> tuple[int, dict, bytes]:
    method, path, body, headers = case

    def fill(text: str) -> str:
        return text.replace("{tok}", tokens["rgb"]).replace("{unk}", UNKNOWN)

    if callable(body):
        body = body()
    if body is not None and not isinstance(body, bytes):
        body = fill(json.dumps(body)).encode()
    req = urllib.request.Request(server + fill(path), data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.mark.parametrize("case, status, fragment", HTTP_CASES)
def test_http_bad_input(server, layers, case, status, fragment):  # noqa: F811 - fixtures
    got, headers, raw = _send(server, layers, case)
    text = raw.decode("utf-8", "replace")
    assert got == status, (got, text)
    assert "Traceback" not in text and "server error" not in text
    if case[0] == "HEAD" or status == 304:
        assert raw == b""
        return
    assert headers["Content-Type"].startswith("text/plain"), headers["Content-Type"]
    assert text.startswith(f"{status} ") and text.endswith("\n") and text.count("\n") == 1, text
    assert fragment in text, (fragment, text)


# ----------------------------------------------------------------------------------------
# Python API
# ----------------------------------------------------------------------------------------
def case(call, error, builtin, fragment, id):  # noqa: A002 - table helper
    return pytest.param(call, error, builtin, fragment, id=id)


def write_catalog(tmp: Path, doc=None, raw: bytes | None = None) -> Catalog:
    path = tmp / "catalog.json"
    path.write_bytes(raw if raw is not None else json.dumps(doc).encode())
    return Catalog(path)


def one_band(**band) -> dict:
    """A catalog with one image whose one band is ``band`` (path defaults to a file in the folder)."""
    return {"images": {"TEST/ONE": {"bands": [{"id": "b", "path": "b4.tif", **band}]}}}


def fifo(tmp: Path) -> Path:
    path = tmp / "pipe.tif"
    os.mkfifo(path)
    return path


def vrt_as_tif(tmp: Path) -> Path:
    """VRT XML (which can read any other file) saved under a GeoTIFF name."""
    shutil.copy(ASSETS / "landsat8" / "B4.tif", tmp / "secret.tif")
    path = tmp / "innocent.tif"
    path.write_text(f'<VRTDataset rasterXSize="4" rasterYSize="4"><VRTRasterBand dataType="UInt16" band="1">'
                    f'<SimpleSource><SourceFilename relativeToVRT="0">{tmp / "secret.tif"}</SourceFilename>'
                    '<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>')
    return path


def add_chain(n: int):
    img = viewer.Image(L8).select(["B4"])
    for _ in range(n):
        img = img.add(1)
    return img


def gp(**over):
    body = px(**over)
    body["fileFormat"] = body.get("fileFormat", "NUMPY_NDARRAY")
    return getPixels(body)


WKT_WITH_GRIDS = ('PROJCS["x",GEOGCS["y",DATUM["z",SPHEROID["s",6378137,298.257]],PRIMEM["p",0],UNIT["d",0.0174]],'
                  'PROJECTION["Transverse_Mercator"],EXTENSION["PROJ4","+proj=longlat +nadgrids=/etc/shadow"]]')

PY_CASES = [
    # -- Image ids that are paths or URLs, odd constants -----------------------------------
    case(lambda t: viewer.Image("/etc/passwd"), InvalidArgument, ValueError, "'/etc/passwd' is a path or URL",
         "image-abs-path"),
    case(lambda t: viewer.Image("../x"), InvalidArgument, ValueError, "'../x' is a path or URL", "image-dotdot"),
    case(lambda t: viewer.Image("LANDSAT/../x"), InvalidArgument, ValueError, "'LANDSAT/../x' is a path",
         "image-inner-dotdot"),
    case(lambda t: viewer.Image("~/x.tif"), InvalidArgument, ValueError, "'~/x.tif' is a path", "image-home"),
    case(lambda t: viewer.Image("http://127.0.0.1:1/x.tif"), InvalidArgument, ValueError,
         "'http://127.0.0.1:1/x.tif' is a path or URL, not an asset id", "image-url"),
    case(lambda t: viewer.Image("/vsicurl/http://127.0.0.1:1/x.tif"), InvalidArgument, ValueError,
         "'/vsicurl/http://127.0.0.1:1/x.tif' is a path or URL", "image-vsicurl"),
    case(lambda t: viewer.Image("s3://bucket/x"), InvalidArgument, ValueError, "'s3://bucket/x' is a path",
         "image-s3"),
    case(lambda t: viewer.Image("A\x00B"), InvalidArgument, ValueError, "'A\\x00B' is a path or URL", "image-nul"),
    case(lambda t: viewer.Image(""), InvalidArgument, ValueError, "asset id '' must be a non-empty string",
         "image-empty-id"),
    case(lambda t: viewer.Image("NOPE/NOPE"), UnknownAsset, KeyError, "unknown asset id 'NOPE/NOPE'",
         "image-unknown-asset"),
    case(lambda t: viewer.Image({"a": 1}), InvalidArgument, ValueError, "constant {'a': 1} must be a number",
         "image-dict"),
    case(lambda t: viewer.Image(10 ** 400), InvalidArgument, ValueError, "must be a number or a list of numbers",
         "image-400-digit-int"),
    case(lambda t: add_chain(1500), LimitExceeded, ValueError, "over the limit of 200", "image-add-chain-1500"),
    case(lambda t: viewer.Image(L8).select("B99"), UnknownBand, KeyError, "band 'B99' does not exist",
         "image-select-unknown"),
    # -- from_array ------------------------------------------------------------------------
    case(lambda t: viewer.Image.from_array(np.zeros((3, 3)), transform=[1, 0, 0]), InvalidArgument, ValueError,
         "transform [1, 0, 0] must be an Affine or 6 numbers", "from-array-transform-3"),
    case(lambda t: viewer.Image.from_array(np.zeros((3, 3)), transform=[float("nan"), 0, 0, 0, 1, 0]),
         InvalidArgument, ValueError, "non-finite coefficients", "from-array-transform-nan"),
    case(lambda t: viewer.Image.from_array(np.zeros((3, 3)), transform=[0, 0, 0, 0, 0, 0]), InvalidArgument,
         ValueError, "is singular", "from-array-transform-singular"),
    case(lambda t: viewer.Image.from_array(np.zeros((3, 3)), transform=[10 ** 400, 0, 0, 0, 1, 0]),
         InvalidArgument, ValueError, "must be an Affine or 6 numbers", "from-array-transform-400-digits"),
    case(lambda t: viewer.Image.from_array(np.zeros((3, 3)), transform="abcdef"), InvalidArgument, ValueError,
         "transform 'abcdef' must be an Affine", "from-array-transform-string"),
    case(lambda t: viewer.Image.from_array(np.zeros((3, 3)), crs="/etc/shadow"), UnknownCRS, ValueError,
         "CRS '/etc/shadow'", "from-array-crs-path"),
    case(lambda t: viewer.Image.from_array(np.zeros((3, 3)), band_names=[5]), InvalidArgument, ValueError,
         "band_names [5] must be 1 distinct non-empty strings", "from-array-band-name-number"),
    case(lambda t: viewer.Image(L8).normalizedDifference(5), InvalidArgument, ValueError,
         "normalizedDifference bandNames 5 must be a list of 2 band names", "image-normalized-difference-number"),
    case(lambda t: viewer.Image.from_array(np.array([[None]])), InvalidArgument, ValueError,
         "array dtype object is not allowed", "from-array-object"),
    # -- regions and geometry --------------------------------------------------------------
    case(lambda t: viewer.Geometry.Point([1e300, 0]), InvalidArgument, ValueError,
         "[1e+300, 0] is not a longitude/latitude", "geometry-point-lon-1e300"),
    case(lambda t: viewer.Geometry.Rectangle([0, 0, 1e300, 1]), InvalidArgument, ValueError,
         "is not a longitude/latitude", "geometry-rectangle-lon-1e300"),
    case(lambda t: viewer.Image(L8).clip({"type": "Point", "coordinates": [1e300, 0]}), InvalidArgument, ValueError,
         "[1e+300, 0] is not a longitude/latitude", "clip-lon-1e300"),
    case(lambda t: gp(grid=None, region={"type": "Point", "coordinates": [1e300, 0]}), InvalidArgument, ValueError,
         "[1e+300, 0] is not a longitude/latitude", "getpixels-region-lon-1e300"),
    case(lambda t: gp(grid=None, region=polygon((0, 95), (1, 95), (1, 96))), InvalidArgument, ValueError,
         "[0, 95] is not a longitude/latitude", "getpixels-region-lat-95"),
    case(lambda t: gp(grid=None, region={"type": "Point", "coordinates": [10 ** 400, 0]}), InvalidArgument,
         ValueError, "has a bad position", "getpixels-region-400-digits"),
    case(lambda t: viewer.Geometry.Rectangle(["a", 0, 1, 1]), InvalidArgument, ValueError,
         "Rectangle ['a', 0, 1, 1] needs [xmin, ymin, xmax, ymax]", "geometry-rectangle-string"),
    case(lambda t: viewer.Geometry.Point(5), InvalidArgument, ValueError, "Point 5 needs [lon, lat]",
         "geometry-point-number"),
    case(lambda t: viewer.Geometry.Polygon(5), InvalidArgument, ValueError, "Polygon 5 needs a list of rings",
         "geometry-polygon-number"),
    case(lambda t: viewer.Geometry.Polygon([[[0, 0], 5]]), InvalidArgument, ValueError,
         "needs a list of rings of [lon, lat] positions", "geometry-polygon-bad-position"),
    case(lambda t: viewer.Projection("EPSG:4326").atScale(10 ** 400), InvalidArgument, ValueError,
         "must be a positive number of meters", "projection-scale-400-digits"),
    case(lambda t: viewer.Projection("EPSG:4326", "abcdef"), InvalidArgument, ValueError,
         "transform 'abcdef' must be 6 finite numbers", "projection-transform-string"),
    # -- getPixels / computePixels ---------------------------------------------------------
    case(lambda t: gp(assetId=5), InvalidArgument, ValueError, "assetId 5 must be an asset id string",
         "getpixels-asset-number"),
    case(lambda t: gp(assetId=None), InvalidArgument, ValueError, "(it is missing)", "getpixels-asset-missing"),
    case(lambda t: gp(grid=grid(affineTransform={"scaleX": 10 ** 400})), InvalidArgument, ValueError,
         "affineTransform.scaleX 1000", "getpixels-affine-400-digits"),
    case(lambda t: gp(grid={"affineTransform": {"scaleX": 0}}), InvalidArgument, ValueError, "is singular",
         "getpixels-affine-singular-no-dims"),
    case(lambda t: gp(grid={"crs": "EPSG:4326", "dimensions": {"width": 5, "height": 5}}), InvalidArgument,
         ValueError, "unknown grid key(s) ['crs']; allowed: ['dimensions', 'affineTransform', 'crsCode', 'crsWkt']",
         "getpixels-grid-unknown-key"),
    case(lambda t: gp(grid=grid(crsCode="IAU_2015:30100")), InvalidArgument, ValueError,
         "grid CRS 'IAU_2015:30100' cannot be transformed", "getpixels-crs-of-the-moon"),
    case(lambda t: gp(fileFormat="PNG", visualizationOptions={"ranges": [{"min": 10 ** 400, "max": 1}]}),
         InvalidArgument, ValueError, "visualizationOptions.ranges.min 1000", "getpixels-vis-min-400-digits"),
    case(lambda t: computePixels({"expression": L8}), InvalidArgument, ValueError,
         "expression 'LANDSAT/LC08/SAMPLE' must be a viewer.Image", "computepixels-expression-string"),
    case(lambda t: computePixels({"expression": _graph_doc("path")}), InvalidArgument, ValueError,
         "graph reads files by path", "computepixels-graph-file-source"),
    case(lambda t: computePixels({"expression": _graph_doc("vsicurl")}), InvalidArgument, ValueError,
         "graph reads files by path", "computepixels-graph-vsicurl-source"),
    case(lambda t: computePixels({"expression": _graph_doc("cycle")}), InvalidArgument, ValueError,
         "refers to itself (a cycle)", "computepixels-graph-cycle"),
    case(lambda t: computePixels({"expression": _graph_doc("deep")}), LimitExceeded, ValueError,
         "graph is deeper than 200 nodes", "computepixels-graph-1500-deep"),
    # -- from_json -------------------------------------------------------------------------
    case(lambda t: from_json({"viewerGraph": 1, "nodes": {}}), InvalidArgument, ValueError,
         "graph reference 'None' is not a node key", "from-json-missing-result"),
    case(lambda t: from_json({"viewerGraph": 1, "result": "x"}), InvalidArgument, ValueError,
         "expression is not a viewer graph", "from-json-missing-nodes"),
    case(lambda t: from_json({"viewerGraph": 2, "result": "x", "nodes": {}}), InvalidArgument, ValueError,
         "expression is not a viewer graph", "from-json-wrong-version"),
    case(lambda t: from_json([]), InvalidArgument, ValueError, "expression is not a viewer graph",
         "from-json-list"),
    case(lambda t: from_json({"viewerGraph": 1, "result": "x", "nodes": {}}), InvalidArgument, ValueError,
         "graph node 'x' is missing", "from-json-dangling-result"),
    case(lambda t: from_json(_graph_edit(lambda d, r, s: d["nodes"][r].pop("args"))), InvalidArgument, ValueError,
         "cannot be rebuilt: KeyError: 'args'", "from-json-node-missing-args"),
    case(lambda t: from_json(_graph_edit(lambda d, r, s: d["nodes"][r].pop("bands"))), InvalidArgument, ValueError,
         "cannot be rebuilt: KeyError: 'bands'", "from-json-node-missing-bands"),
    case(lambda t: from_json(_graph_edit(_cycle)), InvalidArgument, ValueError, "refers to itself (a cycle)",
         "from-json-cycle"),
    case(lambda t: from_json(_graph_edit(_self_reference)), InvalidArgument, ValueError, "(a cycle)",
         "from-json-self-reference"),
    case(lambda t: from_json(_graph_chain(1500)), LimitExceeded, ValueError, "graph is deeper than 200 nodes",
         "from-json-1500-deep"),
    case(lambda t: from_json(_graph_edit(_nested_args)), LimitExceeded, ValueError,
         "has arguments nested deeper than 32 levels", "from-json-900-nested-args"),
    case(lambda t: from_json(_graph_edit(lambda d, r, s: d["nodes"][r]["bands"][0]["grid"]["dimensions"].__setitem__(
        "width", float("inf")))), InvalidArgument, ValueError, "cannot be rebuilt: OverflowError",
         "from-json-band-width-inf"),
    case(lambda t: from_json(_graph_edit(lambda d, r, s: d["nodes"][r]["bands"][0]["grid"]["affineTransform"]
                                         .__setitem__("scaleX", 10 ** 400))), InvalidArgument, ValueError,
         "cannot be rebuilt: OverflowError", "from-json-band-affine-400-digits"),
    case(lambda t: from_json(_graph_edit(_unknown_op)), InvalidArgument, ValueError, "unknown op 'exec'",
         "from-json-unknown-op"),
    case(lambda t: from_json(_graph_edit(_content_mismatch)), InvalidArgument, ValueError,
         "(binary) does not match its content", "from-json-content-mismatch"),
    case(lambda t: from_json(_graph_with_file_source(str(ASSETS / "landsat8" / "B4.tif"))), InvalidArgument,
         ValueError, "graph reads files by path; not allowed here", "from-json-file-source"),
    case(lambda t: from_json(_graph_with_file_source("/vsicurl/http://127.0.0.1:1/x.tif")), InvalidArgument,
         ValueError, "graph reads files by path", "from-json-vsicurl-source"),
    case(lambda t: from_json(_graph_with_file_source("/vsicurl/http://127.0.0.1:1/x.tif"), allow_files=True),
         InvalidArgument, ValueError, "is not under a prefix the catalog allows", "from-json-vsicurl-allow-files"),
    case(lambda t: from_json(_graph_edit(lambda d, r, s: next(
        n for n in d["nodes"].values() if n["op"] == "source")["args"].__setitem__(0, "/etc/passwd"))),
         InvalidArgument, ValueError, "'/etc/passwd' is a path or URL", "from-json-asset-id-path"),
    case(lambda t: from_json({"viewerGraph": 1, "result": "a",
                              "nodes": {"a": {"op": "array", "args": ["0" * 64], "bands": []}}}),
         InvalidArgument, ValueError, "is not registered in this process", "from-json-unknown-array"),
    case(lambda t: from_json({"viewerGraph": 1, "result": "0", "nodes": {str(i): {} for i in range(10_001)}}),
         LimitExceeded, ValueError, "graph of 10001 nodes is over the limit of 10000", "from-json-too-many-nodes"),
    # -- catalogs --------------------------------------------------------------------------
    case(lambda t: write_catalog(t, []), InvalidArgument, ValueError, "catalog file: [] is a list",
         "catalog-top-level-list"),
    case(lambda t: write_catalog(t, one_band(id=None)), InvalidArgument, ValueError,
         "catalog image 'TEST/ONE' band id: None", "catalog-band-without-id"),
    case(lambda t: write_catalog(t, one_band(classes=["water", "land"])), InvalidArgument, ValueError,
         "classes: 'water' is a str", "catalog-classes-strings"),
    case(lambda t: write_catalog(t, one_band(classes=[{"id": 1, "name": 5}])), InvalidArgument, ValueError,
         "class name 5 must be a non-empty string", "catalog-class-name-number"),
    case(lambda t: write_catalog(t, one_band(classes=[{"id": 1, "name": "w", "color": "nocolour"}])),
         InvalidArgument, ValueError, "'nocolour'", "catalog-class-bad-colour"),
    case(lambda t: write_catalog(t, one_band(path="b4\x00.tif")), InvalidArgument, ValueError,
         "path 'b4\\x00.tif' is empty or has a NUL byte", "catalog-path-nul"),
    case(lambda t: write_catalog(t, one_band(path="../../etc/passwd")), InvalidArgument, ValueError,
         "path '../../etc/passwd' is outside the catalog's folders", "catalog-path-outside"),
    case(lambda t: write_catalog(t, one_band(path="/etc/passwd")), InvalidArgument, ValueError,
         "path '/etc/passwd' is outside the catalog's folders", "catalog-abs-path-outside"),
    case(lambda t: write_catalog(t, one_band(path="mosaic.vrt")), InvalidArgument, ValueError,
         "'mosaic.vrt' is a VRT (it can read other files); set \"allow_vrt\": true", "catalog-vrt-without-opt-in"),
    case(lambda t: write_catalog(t, one_band(path="https://evil.example/x.tif")), InvalidArgument, ValueError,
         "URL 'https://evil.example/x.tif' is not under the catalog's remote_prefixes", "catalog-url-no-prefixes"),
    case(lambda t: write_catalog(t, {**one_band(path="https://evil.example/x.tif"),
                                     "remote_prefixes": ["https://good.example/"]}), InvalidArgument, ValueError,
         "is not under the catalog's remote_prefixes; allowed: ['https://good.example/']", "catalog-url-other-host"),
    case(lambda t: write_catalog(t, {**one_band(path="https://good.example/a/../b/x.tif"),
                                     "remote_prefixes": ["https://good.example/a/"]}), InvalidArgument, ValueError,
         "'https://good.example/a/../b/x.tif' is not under", "catalog-url-dotdot"),
    case(lambda t: write_catalog(t, one_band(path="/vsicurl/https://x/x.tif")), InvalidArgument, ValueError,
         "is a GDAL virtual path", "catalog-vsi-path"),
    case(lambda t: write_catalog(t, {"remote_prefixes": ["file:///etc/"]}), InvalidArgument, ValueError,
         "'file:///etc/' is not a URL prefix", "catalog-prefix-not-url"),
    case(lambda t: write_catalog(t, one_band(band=0)), InvalidArgument, ValueError, "band index 0",
         "catalog-band-index-zero"),
    case(lambda t: write_catalog(t, one_band(kind="weird")), InvalidArgument, ValueError, "kind 'weird'",
         "catalog-band-kind"),
    case(lambda t: write_catalog(t, {"images": {"/etc/passwd": {"bands": []}}}), InvalidArgument, ValueError,
         "'/etc/passwd' is a path or URL", "catalog-image-id-path"),
    case(lambda t: write_catalog(t, raw=b"{"), ReadError, OSError, "cannot be read as JSON", "catalog-bad-json"),
    case(lambda t: write_catalog(t, raw=b"[" * 100_000), ReadError, OSError, "cannot be read as JSON",
         "catalog-nested-json"),
    case(lambda t: write_catalog(t, raw=b"\xff\xfe{}"), ReadError, OSError, "cannot be read as JSON",
         "catalog-not-utf8"),
    case(lambda t: Catalog(t / "missing.json"), ReadError, OSError, "missing.json' does not exist",
         "catalog-missing-file"),
    # -- ImageMask -------------------------------------------------------------------------
    case(lambda t: viewer.ImageMask({"path": "/vsicurl/http://127.0.0.1:1/m.png"}, key="k"), InvalidMask,
         (ValueError, TypeError), "'/vsicurl/http://127.0.0.1:1/m.png' is not under a prefix", "mask-vsicurl"),
    case(lambda t: viewer.ImageMask({"path": "http://127.0.0.1:1/m.png"}, key="k"), InvalidMask,
         (ValueError, TypeError), "is not under a prefix the catalog allows", "mask-url"),
    case(lambda t: viewer.ImageMask({"path": str(fifo(t))}, key="k"), InvalidMask, (ValueError, TypeError),
         "is not a regular file", "mask-fifo"),
    case(lambda t: viewer.ImageMask({"mask_data": np.zeros((1, 40000), np.uint8)}, key="k"), LimitExceeded,
         ValueError, "mask_data of 40000x1 pixels is over the limit", "mask-over-side-limit"),
    case(lambda t: viewer.ImageMask({"mask_data": np.broadcast_to(np.zeros((1, 1), bool), (20000, 20000))}, key="k"),
         LimitExceeded, ValueError, "over the limit of 100,000,000 pixels", "mask-bool-over-pixel-limit"),
    case(lambda t: viewer.ImageMask({"mask_data": np.broadcast_to(np.zeros((1, 1)), (20000, 20000))}, key="k"),
         LimitExceeded, ValueError, "over the limit of 100,000,000 pixels", "mask-float-over-pixel-limit"),
    case(lambda t: viewer.ImageMask({"mask_data": np.broadcast_to(np.zeros((1, 1), np.uint8), (20000, 20000))},
                                    key="k"), LimitExceeded, ValueError, "over the limit of 100,000,000 pixels",
         "mask-over-pixel-limit"),
    case(lambda t: viewer.ImageMask({"mask_data": np.full((3, 3), 0.5)}, key="k"), InvalidMask, (ValueError, TypeError),
         "holds 0.5, not a whole number", "mask-float"),
    case(lambda t: viewer.ImageMask({"mask_data": np.full((3, 3), 300, np.uint16)}, key="k"), InvalidMask,
         (ValueError, TypeError), "holds class id 300", "mask-id-300"),
    case(lambda t: viewer.ImageMask({"mask_data": np.zeros((3, 3), np.uint8), "class_labels": {"0": "a"}}, key="k"),
         InvalidMask, (ValueError, TypeError), "class_labels key '0' (str) must be an integer", "mask-label-key-str"),
    # -- Image.open ------------------------------------------------------------------------
    case(lambda t: viewer.Image.open(fifo(t)), InvalidArgument, ValueError, "is not a regular file (a directory, FIFO",
         "open-fifo"),
    case(lambda t: viewer.Image.open(vrt_as_tif(t)), ReadError, OSError, "not recognized as being in a supported",
         "open-vrt-as-tif"),
    case(lambda t: viewer.Image.open(t), InvalidArgument, ValueError, "is not a regular file", "open-directory"),
    case(lambda t: viewer.Image.open("/dev/zero"), InvalidArgument, ValueError, "'/dev/zero' is not a regular file",
         "open-device"),
    case(lambda t: viewer.Image.open("a\x00b.tif"), InvalidArgument, ValueError, "has a NUL byte", "open-nul"),
    case(lambda t: viewer.Image.open("/vsicurl/http://127.0.0.1:1/x.tif"), InvalidArgument, ValueError,
         "is not under a prefix the catalog allows", "open-vsicurl"),
    case(lambda t: viewer.Image.open(t / "missing.tif"), ReadError, OSError, "missing.tif' does not exist",
         "open-missing"),
    case(lambda t: viewer.Image.open(5), InvalidArgument, ValueError, "path 5 must be a string", "open-number"),
    # -- parse_crs -------------------------------------------------------------------------
    case(lambda t: parse_crs("http://127.0.0.1:1/x.wkt"), UnknownCRS, ValueError, "never a path or URL",
         "crs-url"),
    case(lambda t: parse_crs("/vsicurl/http://127.0.0.1:1/x.wkt"), UnknownCRS, ValueError,
         "CRS '/vsicurl/http://127.0.0.1:1/x.wkt' is not an authority code", "crs-vsicurl"),
    case(lambda t: parse_crs("/etc/shadow"), UnknownCRS, ValueError, "CRS '/etc/shadow' is not an authority code",
         "crs-path"),
    case(lambda t: parse_crs("+proj=longlat +nadgrids=/etc/shadow"), UnknownCRS, ValueError,
         "refers to a file or URL", "crs-proj-nadgrids"),
    case(lambda t: parse_crs(WKT_WITH_GRIDS), UnknownCRS, ValueError, "refers to a file or URL",
         "crs-wkt-proj4-extension-nadgrids"),
    case(lambda t: parse_crs("EPSG:99999999"), UnknownCRS, ValueError, "CRS 'EPSG:99999999' cannot be resolved",
         "crs-epsg-unknown"),
    case(lambda t: parse_crs("EPSG:4326.5"), UnknownCRS, ValueError, "CRS 'EPSG:4326.5' cannot be resolved",
         "crs-epsg-fraction"),
    case(lambda t: parse_crs("GEOGCS[garbage"), UnknownCRS, ValueError, "CRS 'GEOGCS[garbage' cannot be resolved",
         "crs-wkt-garbage"),
    case(lambda t: parse_crs('{"type": "GeographicCRS", "name": 5}'), UnknownCRS, ValueError, "cannot be resolved",
         "crs-projjson-garbage"),
    case(lambda t: parse_crs(4326), UnknownCRS, ValueError, "CRS 4326 is not a CRS code or text", "crs-number"),
    case(lambda t: parse_crs(""), UnknownCRS, ValueError, "CRS '' is not a CRS code or text", "crs-empty"),
    case(lambda t: parse_crs("A" * 70_000), UnknownCRS, ValueError, "is longer than 65536 characters",
         "crs-70000-chars"),
]


@pytest.mark.parametrize("call, error, builtin, fragment", PY_CASES)
def test_python_bad_input(tmp_path, call, error, builtin, fragment):
    with pytest.raises(ViewerError) as info:
        call(tmp_path)
    err = info.value
    assert isinstance(err, error), (type(err), err)
    builtins = builtin if isinstance(builtin, tuple) else (builtin,)
    assert all(isinstance(err, b) for b in builtins), (type(err).__mro__, builtin)
    assert fragment in str(err), (fragment, str(err))


def test_the_tables_have_at_least_100_named_cases():
    ids = [p.id for p in HTTP_CASES + PY_CASES]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)


def test_graphs_up_to_the_depth_limit_still_load():
    """The loader is iterative: a graph as deep as ``Image`` allows round-trips (it used to hit RecursionError)."""
    img = add_chain(198)  # source -> select -> 198 adds = 200 nodes deep
    back = from_json(to_json(img))
    assert back.node.key == img.node.key
    out = computePixels({"expression": to_json(img), "grid": {"dimensions": {"width": 2, "height": 2}},
                         "fileFormat": "NUMPY_NDARRAY"})
    ref = computePixels({"expression": viewer.Image(L8).select(["B4"]), "grid": {"dimensions": {"width": 2,
                                                                                               "height": 2}},
                         "fileFormat": "NUMPY_NDARRAY"})
    np.testing.assert_array_equal(out["B4"], ref["B4"].astype(np.int64) + 198)


def test_the_server_still_serves_after_every_bad_request(server, layers):  # noqa: F811 - fixtures
    """All bad requests again, 8 at a time, then a good tile, a layer description and an export."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: _send(server, layers, p.values[0]), HTTP_CASES))
    assert all(status < 500 for status, _, _ in results), sorted({s for s, _, _ in results})
    z, x, y = GOOD_TILE
    status, headers, body = _send(server, layers, ("GET", f"/tiles/{{tok}}/{z}/{x}/{y}.png", None, {}))
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert decode(body)[..., 3].max() == 255
    status, _, body = _send(server, layers, ("GET", "/layers/{tok}", None, {}))
    assert status == 200 and json.loads(body)["token"] == layers["rgb"]
    status, headers, body = _send(server, layers, ("POST", "/pixels", {
        "assetId": L8, "bandIds": ["B4"], "fileFormat": "NPY", "grid": tile_grid(z, x, y).to_dict()}, JSON))
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
