"""Bad input gets a typed error naming the bad value and what is allowed (table-driven)."""
import numpy as np
import pytest

import viewer
from viewer.core.errors import InvalidArgument, LimitExceeded, UnknownAsset, UnknownBand, UnknownCRS, ViewerError

L8 = "LANDSAT/LC08/SAMPLE"
GOOD_GRID = {"dimensions": {"width": 8, "height": 8}, "crsCode": "EPSG:32616",
             "affineTransform": {"scaleX": 30, "shearX": 0, "translateX": 460000, "shearY": 0, "scaleY": -30,
                                 "translateY": 3400000}}


def req(**over):
    base = {"assetId": L8, "bandIds": ["B4"], "grid": GOOD_GRID, "fileFormat": "NUMPY_NDARRAY"}
    base.update(over)
    return base


def grid(**over):
    g = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD_GRID.items()}
    for k, v in over.items():
        if k in ("width", "height"):
            g["dimensions"][k] = v
        elif k in g["affineTransform"]:
            g["affineTransform"][k] = v
        else:
            g[k] = v
    return g


CASES = [
    # (id, request, error class, builtin, message fragments)
    ("unknown asset", req(assetId="LANDSAT/NOPE"), UnknownAsset, KeyError, ["'LANDSAT/NOPE'", "LANDSAT/LC08/SAMPLE"]),
    ("unknown band", req(bandIds=["B99"]), UnknownBand, KeyError, ["'B99'", "BQA"]),
    ("path as asset id", req(assetId="/etc/passwd"), InvalidArgument, ValueError, ["'/etc/passwd'", "asset id"]),
    ("vsi as asset id", req(assetId="/vsicurl/http://x/y.tif"), InvalidArgument, ValueError, ["/vsicurl", "asset id"]),
    ("relative path as asset id", req(assetId="assets/landsat8/B4.tif"), InvalidArgument, ValueError,
     ["B4.tif", "Image.open"]),
    ("zero width", req(grid=grid(width=0)), InvalidArgument, ValueError, ["width 0", "positive integer"]),
    ("negative height", req(grid=grid(height=-5)), InvalidArgument, ValueError, ["height -5", "positive integer"]),
    ("NaN width", req(grid=grid(width=float("nan"))), InvalidArgument, ValueError, ["nan", "positive integer"]),
    ("singular transform", req(grid=grid(scaleX=0, shearX=0)), InvalidArgument, ValueError, ["singular"]),
    ("NaN transform", req(grid=grid(translateX=float("nan"))), InvalidArgument, ValueError, ["finite"]),
    ("unknown CRS", req(grid=grid(crsCode="EPSG:999999")), UnknownCRS, ValueError, ["'EPSG:999999'", "EPSG"]),
    ("garbage CRS", req(grid=grid(crsCode="not a crs")), UnknownCRS, ValueError, ["'not a crs'"]),
    ("malformed GeoJSON type", req(region={"type": "Blob", "coordinates": []}), InvalidArgument, ValueError,
     ["Blob", "Polygon"]),
    ("malformed GeoJSON coords", req(region={"type": "Polygon", "coordinates": [[["a", 1]]]}), InvalidArgument,
     ValueError, ["position"]),
    ("ranges min == max", req(visualizationOptions={"ranges": [{"min": 5, "max": 5}]}, fileFormat="PNG"),
     InvalidArgument, ValueError, ["min 5", "must differ"]),
    ("empty palette", req(visualizationOptions={"ranges": [{"min": 0, "max": 1}], "paletteColors": []},
                          fileFormat="PNG"), InvalidArgument, ValueError, ["palette", "non-empty"]),
    ("bad palette colour", req(visualizationOptions={"ranges": [{"min": 0, "max": 1}],
                                                     "paletteColors": ["zzzzzz"]}, fileFormat="PNG"),
     InvalidArgument, ValueError, ["'zzzzzz'", "CSS"]),
    ("unknown file format", req(fileFormat="BMP"), InvalidArgument, ValueError, ["'BMP'", "GEO_TIFF"]),
    ("unknown request key", req(bandIDs=["B4"]), InvalidArgument, ValueError, ["bandIDs", "bandIds"]),
    ("raw PNG of uint16", req(fileFormat="PNG"), InvalidArgument, ValueError, ["uint16", "visualizationOptions"]),
    ("too many bytes", req(grid=grid(width=8000, height=8000), bandIds=["B4"]), LimitExceeded, ValueError,
     ["8000x8000", "128000000 bytes", "50331648"]),
    ("too many pixels per side", req(grid=grid(width=40000, height=1)), LimitExceeded, ValueError,
     ["40000x1", "32768"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_request_raises_typed_error(case):
    _, request, cls, builtin, fragments = case
    with pytest.raises(cls) as info:
        viewer.data.getPixels(request)
    err = info.value
    assert isinstance(err, ViewerError) and isinstance(err, builtin)
    for frag in fragments:
        assert frag in str(err), (frag, str(err))


def test_too_many_bands():
    img = viewer.Image.from_array(np.zeros((1025, 5, 5), np.uint8))
    with pytest.raises(LimitExceeded, match="1025 bands; the limit is 1024"):
        viewer.data.computePixels({"expression": img, "fileFormat": "NPY"})


def test_compute_pixels_needs_an_image_expression():
    with pytest.raises(InvalidArgument, match="expression 'LANDSAT/LC08/SAMPLE' must be a viewer.Image"):
        viewer.data.computePixels({"expression": L8})


@pytest.mark.parametrize("call, cls, fragment", [
    (lambda: viewer.Image(L8).select("nope"), UnknownBand, "'nope' does not exist"),
    (lambda: viewer.Image(L8).select(42), UnknownBand, "band index 42"),
    (lambda: viewer.Image(L8).rename("a"), InvalidArgument, "rename needs 12 distinct names"),
    (lambda: viewer.Image(L8).addBands(viewer.Image(L8).select("B1")), InvalidArgument, "'B1' already exists"),
    (lambda: viewer.Image(L8).select(["B1", "B2"]).add(viewer.Image(L8).select(["B1", "B2", "B3"])),
     InvalidArgument, "band counts 2 and 3"),
    (lambda: viewer.Image(L8).visualize(bands=["B4", "B3"]), InvalidArgument, "1 or 3 bands, got 2"),
    (lambda: viewer.Image(L8).visualize(bands=["B4"], min=3, max=3), InvalidArgument, "min 3.0 == max 3.0"),
    (lambda: viewer.Image(L8).visualize(bands=["B4"], palette="nocolour"), InvalidArgument, "'nocolour'"),
    (lambda: viewer.Image("./local.tif"), InvalidArgument, "not an asset id"),
    (lambda: viewer.Image.open("/no/such/file.tif"), viewer.ReadError, "/no/such/file.tif"),
    (lambda: viewer.Image.from_array(np.zeros((2, 2, 2, 2))), InvalidArgument, "H x W"),
    (lambda: viewer.Image.from_array(np.array([["a"]])), InvalidArgument, "dtype <U1"),
    (lambda: viewer.ImageCollection("NOPE/COLL"), UnknownAsset, "'NOPE/COLL'"),
    (lambda: viewer.ImageCollection("COPERNICUS/S2").filterMetadata("x", "like", 1), InvalidArgument, "'like'"),
    (lambda: viewer.Projection("EPSG:4326").atScale(-1), InvalidArgument, "scale -1"),
    (lambda: viewer.Projection("EPSG:0"), UnknownCRS, "'EPSG:0'"),
    (lambda: viewer.Geometry.Rectangle([1, 2, 3]), InvalidArgument, "[xmin, ymin, xmax, ymax]"),
])
def test_api_misuse_raises_typed_error(call, cls, fragment):
    with pytest.raises(cls) as info:
        call()
    assert fragment in str(info.value)


def test_errors_leave_the_core_usable():
    with pytest.raises(UnknownAsset):
        viewer.data.getPixels(req(assetId="LANDSAT/NOPE"))
    out = viewer.data.getPixels(req())
    assert out.shape == (8, 8) and out["B4"].min() > 0
