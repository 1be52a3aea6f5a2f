"""Property-based fuzzing of the request surface (issue 7): generated getPixels request dicts,
image graphs and tile URLs only ever end in a ``ViewerError`` (Python) or a 2xx/3xx/4xx/503
answer (HTTP), never an untyped exception or a 500.

CI runs a few hundred examples, derandomized so that a failure reproduces. For a long run::

    VIEWER_FUZZ_EXAMPLES=10000 uv run pytest tests/test_fuzz.py     # or: uv run python benchmarks/fuzz_long.py

(a long run draws fresh random examples each time and prints a reproduction blob on failure).
"""
from __future__ import annotations

import copy
import json
import os
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import viewer
from viewer.core.errors import ViewerError
from viewer.core.pixels import getPixels, prepare
from viewer.core.serialize import from_json, to_json
from viewer.server import status_for
from viewer.server.handlers import parse_tile_path

from test_server import layers, server, state_dir  # noqa: F401 - fixtures

LONG = int(os.environ.get("VIEWER_FUZZ_EXAMPLES", "0") or 0)
HTTP_OK = {200, 304, 400, 403, 404, 405, 410, 413, 415, 503}
L8 = "LANDSAT/LC08/SAMPLE"


def fuzz(examples: int):
    """Hypothesis settings: ``examples`` in CI (derandomized), ``$VIEWER_FUZZ_EXAMPLES`` in a long run."""
    return settings(max_examples=LONG or examples, deadline=None, derandomize=not LONG, database=None,
                    print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                            HealthCheck.filter_too_much])


# ----------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------
NASTY_STRINGS = [
    "", " ", "\n", "\x00", "..", "../x", "/etc/passwd", "/etc/shadow", "~/x.tif", "C:\\x.tif", "x.vrt",
    "assets/landsat8/B4.tif", "/vsicurl/http://127.0.0.1:1/x.tif", "http://127.0.0.1:1/x.tif", "s3://b/x.tif",
    "/vsizip//tmp/x.zip/x.tif", "file:///etc/passwd", "+proj=longlat +nadgrids=/etc/shadow", "EPSG:4326",
    "EPSG:99999999", "GEOGCS[garbage", '{"type": "GeographicCRS"}', "NaN", "1e309", "B4", "B.*", "(", "(a+)+$",
    "\ud800", "é" * 3, "A" * 300,
]
NUMBERS = st.one_of(
    st.integers(-10, 300),
    st.sampled_from([0, -1, 2 ** 31, 2 ** 63, 32768, 32769, 10 ** 30, -(10 ** 400), 10 ** 400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1e-300, 1e300, -0.0]),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, st.sampled_from(NASTY_STRINGS), st.text(max_size=12))
JUNK = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(["type", "coordinates", "min", "max", "width", "height", "$node"]),
                              st.text(max_size=6)), inner, max_size=4)), max_leaves=12)


SIZE = st.one_of(st.integers(-3, 40), st.sampled_from([0, 32768, 32769, 100_000, 10 ** 400, 1.5, 4.0]))
CRS = st.sampled_from(["EPSG:4326", "EPSG:3857", "EPSG:32616", "OGC:CRS84", "ESRI:54009", "EPSG:99999999",
                       "epsg:4326", "/etc/shadow", "http://127.0.0.1:1/x.wkt", "/vsicurl/http://127.0.0.1:1/x.wkt",
                       "+proj=longlat +nadgrids=/etc/shadow", "GEOGCS[garbage", "IAU_2015:30100", "EPSG:0"])
#: Anything a mutation may put in place of a valid value.
BAD = st.one_of(NUMBERS, st.sampled_from(NASTY_STRINGS), CRS, SIZE, JUNK)

# Mostly-valid requests (so that fuzzing gets past the first check), then 0-3 mutations.
LON = st.floats(-87.5, -87.3)
LAT = st.floats(30.6, 30.8)
VALID_REGION = st.one_of(
    st.builds(lambda x, y: {"type": "Point", "coordinates": [x, y]}, LON, LAT),
    st.builds(lambda x0, y0, dx, dy: {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + dx, y0],
                                                                          [x0 + dx, y0 + dy], [x0, y0]]]},
              LON, LAT, st.floats(0.001, 0.05), st.floats(0.001, 0.05)),
)
VALID_GRID = st.fixed_dictionaries({}, optional={
    "dimensions": st.fixed_dictionaries({"width": st.integers(1, 48), "height": st.integers(1, 48)}),
    "crsCode": st.sampled_from(["EPSG:32616", "EPSG:3857", "EPSG:4326"]),
    "affineTransform": st.fixed_dictionaries({
        "scaleX": st.sampled_from([30.0, 60.0, 240.0]), "shearX": st.just(0.0),
        "translateX": st.floats(452000.0, 470000.0), "shearY": st.just(0.0),
        "scaleY": st.sampled_from([-30.0, -60.0, -240.0]), "translateY": st.floats(3390000.0, 3408000.0)}),
})
VALID_VIS = st.fixed_dictionaries({"ranges": st.lists(st.fixed_dictionaries({"min": st.just(7000), "max": st.just(14000)}),
                                                      min_size=1, max_size=1)},
                                  optional={"paletteColors": st.lists(st.sampled_from(["red", "00ff00", "fff"]),
                                                                      min_size=1, max_size=3),
                                            "gamma": st.sampled_from([0.5, 1.0, 2.0]),
                                            "opacity": st.sampled_from([0, 0.5, 1])})
_COMMON = {"fileFormat": st.sampled_from(["NPY", "NUMPY_NDARRAY", "GEO_TIFF", "PNG", "JPEG", "AUTO_JPEG_PNG"]),
           "grid": VALID_GRID, "region": VALID_REGION, "visualizationOptions": VALID_VIS,
           "workloadTag": st.just("fuzz")}
VALID_REQUEST = st.one_of(
    st.fixed_dictionaries({"assetId": st.sampled_from([L8, "COPERNICUS/S2/SAMPLE"]),
                           "bandIds": st.lists(st.sampled_from(["B2", "B3", "B4", "B8"]), min_size=1, max_size=3,
                                               unique=True).filter(lambda b: len(b) != 2)}, optional=_COMMON),
    st.fixed_dictionaries({"assetId": st.just("VIEWER/SAMPLE_CLASSES/LC08_RULES")},
                          optional={"bandIds": st.just(["classification"]), **_COMMON}),
)
MUTATION_PATHS = [
    ("assetId",), ("bandIds",), ("bandIds", 0), ("bandIds", 1), ("fileFormat",), ("grid",), ("grid", "dimensions"),
    ("grid", "dimensions", "width"), ("grid", "dimensions", "height"), ("grid", "crsCode"), ("grid", "crsWkt"),
    ("grid", "affineTransform"), ("grid", "affineTransform", "scaleX"), ("grid", "affineTransform", "shearY"),
    ("grid", "affineTransform", "translateY"), ("grid", "affineTransform", "extra"), ("region",),
    ("region", "type"), ("region", "coordinates"), ("region", "coordinates", 0), ("region", "coordinates", 0, 0),
    ("region", "coordinates", 0, 0, 1), ("visualizationOptions",), ("visualizationOptions", "ranges"),
    ("visualizationOptions", "ranges", 0, "min"), ("visualizationOptions", "paletteColors"),
    ("visualizationOptions", "paletteColors", 0), ("visualizationOptions", "gamma"), ("workloadTag",),
    ("expression",), ("unknownKey",),
]


def _mutate(doc: dict, mutations: list) -> dict:
    """``doc`` with each (path, value) set, creating dicts on the way (paths into lists that are too short
    or into non-containers are skipped)."""
    doc = copy.deepcopy(doc)
    for path, value in mutations:
        target = doc
        for k in path[:-1]:
            if isinstance(target, dict):
                target = target.setdefault(k, {} if isinstance(k, str) else [])
            elif isinstance(target, list) and isinstance(k, int) and k < len(target):
                target = target[k]
            else:
                break
        else:
            k = path[-1]
            if isinstance(target, dict):
                target[k] = value
            elif isinstance(target, list) and isinstance(k, int) and k < len(target):
                target[k] = value
    return doc


REQUEST = st.builds(_mutate, VALID_REQUEST,
                    st.lists(st.tuples(st.sampled_from(MUTATION_PATHS), BAD), max_size=3))
#: Requests of any shape (every key junk), for the checks at the very start.
JUNK_REQUEST = st.dictionaries(st.sampled_from(sorted({p[0] for p in MUTATION_PATHS})), BAD, max_size=5)


def _expect_typed(fn, *args, **kwargs):
    """``fn(...)``, or None when it raised a ViewerError (any other exception fails the test)."""
    try:
        out = fn(*args, **kwargs)
    except ViewerError as exc:
        event(f"{fn.__name__}: {type(exc).__name__}")  # --hypothesis-show-statistics shows the mix
        assert status_for(exc) in HTTP_OK - {200, 304}, (type(exc), exc)
        assert str(exc).strip(), type(exc)
        return None
    event(f"{fn.__name__}: ok")
    return out


# ----------------------------------------------------------------------------------------
# Python
# ----------------------------------------------------------------------------------------
@fuzz(150)
@given(st.one_of(REQUEST, REQUEST, REQUEST, JUNK_REQUEST), st.booleans())
def test_prepare_raises_only_typed_errors(params, compute):
    if compute and "assetId" in params:  # computePixels takes an expression: give it the asset's image
        params = {**params, "expression": params["assetId"]}
        params.pop("assetId")
        try:
            params["expression"] = viewer.Image(params["expression"])
        except ViewerError:
            pass
    _expect_typed(prepare, params, compute=compute)


@fuzz(40)
@given(REQUEST)
def test_get_pixels_raises_only_typed_errors(params):
    _expect_typed(getPixels, params)


def _graph_paths(value, path=()):
    """Every (path, value) inside a JSON document."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _graph_paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _graph_paths(v, path + (i,))


_BASE_GRAPHS: list[dict] = []


def _base_graphs() -> list[dict]:
    if not _BASE_GRAPHS:
        img = viewer.Image(L8)
        _BASE_GRAPHS.extend(to_json(i) for i in (
            img.select(["B4", "B3", "B2"]).visualize(min=7000, max=14000),
            img.normalizedDifference(["B5", "B4"]).updateMask(img.select("BQA").eq(0)),
            img.select("B4").add(1).unmask(3, False).clip({"type": "Point", "coordinates": [-87.4, 30.7]}),
        ))
    return _BASE_GRAPHS


@fuzz(60)
@given(st.integers(0, 2), st.lists(st.tuples(st.integers(0, 10 ** 6), st.one_of(
    JUNK, st.builds(lambda k: {"$node": k}, st.sampled_from(["", "x", 5])))), min_size=1, max_size=3),
    st.booleans())
def test_from_json_of_edited_graphs_raises_only_typed_errors(which, edits, allow_files):
    doc = copy.deepcopy(_base_graphs()[which])
    for where, value in edits:
        paths = [p for p, _ in _graph_paths(doc) if p]
        path = paths[where % len(paths)]
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        parent[path[-1]] = value
    image = _expect_typed(from_json, doc, allow_files=allow_files)
    if image is not None:
        _expect_typed(prepare, {"expression": image, "grid": {"dimensions": {"width": 4, "height": 4}}},
                      compute=True)


# ----------------------------------------------------------------------------------------
# tile URLs
# ----------------------------------------------------------------------------------------
HEX = "0123456789abcdef"
TOKEN = st.one_of(st.text(HEX, min_size=64, max_size=64), st.text(HEX + "ABCDEFgx\n.%/", min_size=0, max_size=66),
                  st.sampled_from(["", "..", "f" * 64 + "\n", "F" * 64, "f" * 63, "f" * 65]))
NUMBER_TEXT = st.one_of(st.integers(0, 30).map(str), st.integers(-5, 2 ** 40).map(str),
                        st.text("0123456789-+ .\n\x00e٣", min_size=0, max_size=12))
EXT = st.sampled_from(["png", "jpg", "jpeg", "webp", "PNG", "gif", "tif", "", "png\n", "png.png", "png/x"])
VALID_TILE = st.integers(0, 24).flatmap(lambda z: st.tuples(
    st.just(str(z)), st.integers(0, 2 ** z - 1).map(str), st.integers(0, 2 ** z - 1).map(str)))


def _tile_path(token: str, zxy: tuple, ext: str, junk: tuple) -> str:
    """``token/z/x/y.ext`` with at most one part (index ``junk[0]``) replaced by ``junk[1]``."""
    parts = [token, *zxy, ext]
    if junk is not None:
        parts[junk[0]] = junk[1]
    t, z, x, y, e = parts
    return f"{t}/{z}/{x}/{y}.{e}" if e else f"{t}/{z}/{x}/{y}"


TILE_PATH = st.one_of(
    st.builds(_tile_path, st.text(HEX, min_size=64, max_size=64), VALID_TILE, st.sampled_from(["png", "jpg", "webp"]),
              st.one_of(st.none(), st.tuples(st.just(0), TOKEN), st.tuples(st.integers(1, 3), NUMBER_TEXT),
                        st.tuples(st.just(4), EXT))),
    st.builds(lambda t, z, x, y, e: f"{t}/{z}/{x}/{y}.{e}" if e else f"{t}/{z}/{x}/{y}", TOKEN, NUMBER_TEXT,
              NUMBER_TEXT, NUMBER_TEXT, EXT),
    st.lists(st.text(max_size=10), max_size=6).map("/".join),
)


@fuzz(150)
@given(TILE_PATH)
def test_parse_tile_path_raises_only_typed_errors(path):
    out = _expect_typed(parse_tile_path, path)
    if out is not None:
        token, z, x, y, ext = out
        assert len(token) == 64 and set(token) <= set(HEX)
        assert 0 <= z <= 24 and 0 <= x < 2 ** z and 0 <= y < 2 ** z and ext in ("png", "jpg", "jpeg", "webp")


def _request(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _check_answer(status: int, headers: dict, body: bytes) -> None:
    event(f"HTTP {status}")
    assert status in HTTP_OK, (status, body[:300])
    if status >= 400:
        text = body.decode("utf-8", "replace")
        assert headers["Content-Type"].startswith("text/plain"), headers
        assert text.startswith(f"{status} ") and text.count("\n") == 1 and "Traceback" not in text, text


@fuzz(60)
@given(st.one_of(TILE_PATH, st.builds(_tile_path, st.just("{tok}"), VALID_TILE, st.sampled_from(["png", "jpg"]),
                                      st.one_of(st.none(), st.tuples(st.integers(1, 3), NUMBER_TEXT),
                                                st.tuples(st.just(4), EXT)))),
       st.sampled_from([{}, {"If-None-Match": "*"}, {"If-None-Match": '"x"'}]))
def test_live_tile_urls_answer_4xx_not_500(server, layers, path, headers):  # noqa: F811 - fixtures
    quoted = "/".join(urllib.parse.quote(seg, safe="") for seg in path.split("/"))
    url = f"{server}/tiles/{quoted}".replace("%7Btok%7D", layers["rgb"])
    _check_answer(*_request(url, headers=headers))


@fuzz(50)
@given(st.one_of(REQUEST, st.builds(_mutate, st.fixed_dictionaries(
    {"layer": st.just("{tok}"), "fileFormat": st.sampled_from(["PNG", "JPEG", "NPY", "GEO_TIFF"])},
    optional={"grid": VALID_GRID, "region": VALID_REGION, "bandIds": st.just(["B4"])}),
    st.lists(st.tuples(st.sampled_from([("layer",), ("fileFormat",), *MUTATION_PATHS[5:22]]), BAD), max_size=2))))
def test_live_pixel_requests_answer_4xx_not_500(server, layers, body):  # noqa: F811 - fixtures
    data = json.dumps(body).replace("{tok}", layers["rgb"]).encode()
    _check_answer(*_request(f"{server}/pixels", data, {"Content-Type": "application/json"}))


_LATIN1 = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=40)
_HEADER_WORDS = st.sampled_from(["null", "*", '"x"', "application/json", "application/json; charset=utf-8",
                                 "text/plain", "", " ", "bytes=0-1", "gzip", "same-origin", "cross-site"])
HEADER_VALUE = st.one_of(_HEADER_WORDS, _HEADER_WORDS, _LATIN1)
ORIGIN = st.one_of(st.sampled_from(["null", "http://[::1", "http://[", "http://]", "http://127.0.0.1:1", "://",
                                    "https://evil.example", "http://a:b@c", "file://", "http://%zz", ""]), _LATIN1)
SEC_FETCH_SITE = st.one_of(st.sampled_from(["same-origin", "none", "cross-site", "same-site"]), _LATIN1)


@fuzz(60)
@given(st.sampled_from(["tile", "layer", "pixels", "pixels"]),
       st.fixed_dictionaries({}, optional={name: HEADER_VALUE for name in (
           "Content-Type", "If-None-Match", "Range", "Accept", "Content-Encoding")}),
       st.fixed_dictionaries({}, optional={"Origin": ORIGIN, "Sec-Fetch-Site": SEC_FETCH_SITE}))
def test_live_headers_answer_4xx_not_500(server, layers, route, headers, site):  # noqa: F811 - fixtures
    z, x, y = 12, 1052, 1680
    if route == "pixels":  # the origin checks run after the media type check: keep it JSON here
        body = json.dumps({"assetId": L8, "bandIds": ["B4"], "fileFormat": "NPY",
                           "grid": {"dimensions": {"width": 4, "height": 4}}}).encode()
        answer = _request(f"{server}/pixels", body, {**headers, "Content-Type": "application/json", **site})
    else:
        path = f"tiles/{layers['rgb']}/{z}/{x}/{y}.png" if route == "tile" else f"layers/{layers['rgb']}"
        answer = _request(f"{server}/{path}", None, {**headers, **site})
    _check_answer(*answer)


def test_the_server_still_serves_after_fuzzing(server, layers):  # noqa: F811 - fixtures
    from test_server import decode, scene_tiles

    z, x, y = scene_tiles(12)[4]
    status, _, body = _request(f"{server}/tiles/{layers['rgb']}/{z}/{x}/{y}.png")
    assert status == 200 and decode(body)[..., 3].max() == 255

