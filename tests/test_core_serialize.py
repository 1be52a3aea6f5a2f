"""Image graphs round-trip through JSON, and loading cannot be steered to other files."""
import json

import numpy as np
import pytest

import viewer
from viewer.core.serialize import from_json, to_json

GRID = {"dimensions": {"width": 32, "height": 32}, "crsCode": "EPSG:3857",
        "affineTransform": {"scaleX": 40, "shearX": 0, "translateX": -9733000, "shearY": 0, "scaleY": -40,
                            "translateY": 3600000}}


def derived():
    img = viewer.Image("LANDSAT/LC08/SAMPLE")
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3).eq(3)
    return img.updateMask(cloud.Not()).select(["B4", "B3", "B2"]).unmask(5).clip(
        viewer.Geometry.Rectangle([-87.45, 30.70, -87.40, 30.75]))


def test_round_trip_keeps_the_content_key_and_the_pixels():
    img = derived()
    doc = json.loads(json.dumps(to_json(img)))  # through real JSON text
    back = from_json(doc)
    assert back.node.key == img.node.key
    a = viewer.data.computePixels({"expression": img, "grid": GRID, "fileFormat": "NUMPY_NDARRAY"})
    b = viewer.data.computePixels({"expression": doc, "grid": GRID, "fileFormat": "NUMPY_NDARRAY"})
    assert np.array_equal(a, b) and (a["B4"] > 0).any()


def test_visualized_and_array_graphs_round_trip():
    arr = viewer.Image.from_array(np.arange(12, dtype=np.uint8).reshape(3, 4))
    vis = arr.visualize(min=0, max=11, palette=["black", "red"])
    back = from_json(json.loads(json.dumps(to_json(vis))))
    assert back.node.key == vis.node.key


def test_edited_graph_is_refused():
    doc = to_json(derived())
    node = next(n for n in doc["nodes"].values() if n["op"] == "unmask")
    node["args"][2] = False  # flip sameFootprint without updating the key
    with pytest.raises(viewer.InvalidArgument, match="does not match its content"):
        from_json(doc)


def test_catalog_sources_ignore_paths_in_the_json_and_file_sources_can_be_refused(tmp_path):
    doc = to_json(viewer.Image("LANDSAT/LC08/SAMPLE").select("B4"))
    src = next(n for n in doc["nodes"].values() if n["op"] == "source")
    src["args"][1][3][0] = "/etc/passwd"  # a forged path is never opened: the catalog's is used
    source = from_json(doc).node.args[0]
    assert source.op == "source" and "/etc/passwd" not in str(source.args)
    assert source.args[1][3][0].endswith("landsat8/B4.tif")
    import rasterio
    from affine import Affine

    with rasterio.open(tmp_path / "f.tif", "w", driver="GTiff", width=2, height=2, count=1, dtype="uint8",
                       crs="EPSG:3857", transform=Affine(1, 0, 0, 0, -1, 2)) as dst:
        dst.write(np.ones((2, 2), np.uint8), 1)
    fdoc = to_json(viewer.Image.open(tmp_path / "f.tif"))
    assert from_json(fdoc, allow_files=True).node.key == viewer.Image.open(tmp_path / "f.tif").node.key
    with pytest.raises(viewer.InvalidArgument, match="reads files by path"):
        from_json(fdoc)  # refused unless the caller opts in (issue 7)
    with pytest.raises(viewer.InvalidArgument, match="reads files by path"):
        from_json(fdoc, allow_files=False)


@pytest.mark.parametrize("doc, fragment", [
    ({"nodes": {}}, "not a viewer graph"),
    ({"viewerGraph": 1, "result": "abc", "nodes": {"abc": {"op": "os.system", "args": [], "bands": []}}},
     "unknown op 'os.system'"),
])
def test_malformed_graphs(doc, fragment):
    with pytest.raises(viewer.InvalidArgument, match=fragment):
        from_json(doc)
