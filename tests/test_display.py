"""One carrier, one renderer: Raster algebra, the op registry, display expressions, legends, import contract."""
from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import morecantile
import numpy as np
import pytest
from affine import Affine
from PIL import Image as PILImage

from viewer import Image, InvalidArgument
from viewer.core import ops
from viewer.core.evaluate import _Evaluator, evaluate
from viewer.core.export import layer_request
from viewer.core.graph import Node
from viewer.core.grid import Grid, parse_crs
from viewer.core.layers import class_layer, image_layer, mask_layer
from viewer.core.legend import legend
from viewer.core.pixels import computePixels
from viewer.core.raster import EVERYWHERE, Band, Footprint, Raster
from viewer.core.serialize import from_json, to_json
from viewer.core.tiles import render_rgba, render_tile, tile_grid
from viewer.core.visualize import encode_planes, rgba_planes, to_hex

TMS = morecantile.tms.get("WebMercatorQuad")
CENTRE = (-87.398, 30.728)
CORE = Path(__file__).resolve().parents[1] / "viewer" / "core"


def decode(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGBA"))


def cloud():
    return Image("LANDSAT/LC08/SAMPLE").select("BQA").rightShift(14).bitwiseAnd(3).eq(3)


def layers() -> dict:
    ls, rules = Image("LANDSAT/LC08/SAMPLE"), Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")
    return {
        "image": image_layer(ls, {"bands": ["B4", "B3", "B2"], "min": 7000, "max": 14000, "gamma": 1.3}),
        "image_bilinear": image_layer(ls, {"bands": ["B5"], "min": 7000, "max": 20000, "palette": ["blue", "red"]},
                                      resampling="bilinear"),
        "image_masked": image_layer(ls.select(["B4", "B3", "B2"]).updateMask(cloud().Not()),
                                    {"min": 7000, "max": 14000, "opacity": 0.7}),
        "mask": mask_layer(cloud(), ["ff0000"], 0.6),
        "mask_ramp": mask_layer(ls.select(["B4", "B5"]).mask(), ["000000", "00ffff", "ffffff"]),
        "classes": class_layer(rules, hidden=[1], opacity=0.8),
        "classes_masked": class_layer(rules.updateMask(cloud().Not())),
    }


# the carrier ---------------------------------------------------------------------------------
def test_band_mask_algebra_keeps_earth_engine_polarity():
    half = np.array([[0.5, 1.0], [0.0, 1.0]], np.float32)
    b = Band(np.array([[1, 2], [3, 4]], np.uint8), half)
    assert b.narrowed(None) is not b and b.narrowed(None).mask is half  # None narrows nothing
    np.testing.assert_array_equal(b.narrowed(half).mask, half * half)  # updateMask multiplies
    assert Band(b.values).narrowed(half).mask is half
    np.testing.assert_array_equal(b.min_mask(Band(b.values, np.full((2, 2), 0.75, np.float32))),
                                  [[0.5, 0.75], [0.0, 0.75]])
    assert Band(b.values).min_mask(Band(b.values)) is None
    np.testing.assert_array_equal(b.mask_or_ones(), half)
    np.testing.assert_array_equal(Band(b.values).mask_or_ones(), np.ones((2, 2), np.float32))
    # values as a mask: clipped to [0, 1], NaN and masked pixels 0, None when valid everywhere
    f = Band(np.array([[-1, 0.25], [np.nan, 3]], np.float32), np.array([[1, 1], [1, 0]], np.float32))
    np.testing.assert_array_equal(f.as_mask(), [[0, 0.25], [0, 0]])
    assert Band(np.ones((2, 2), np.uint8)).as_mask() is None
    # raw outputs: masked pixels are 0, floats round into integer types
    raw = Band(np.array([[1.6, 2.4], [3.5, 9.0]]), np.array([[1, 1], [1, 0]], np.float32)).raw("int16")
    assert raw.dtype == np.int16 and raw.tolist() == [[2, 2], [4, 0]]


def test_footprints_are_lazy_and_computed_once():
    calls = []

    def inside():
        calls.append(1)
        return np.array([[True, False]])

    fp = Footprint(inside)
    both = fp & EVERYWHERE
    either = fp | Footprint(lambda: np.array([[False, True]]))
    assert calls == [] and (EVERYWHERE & fp) is fp and (fp | EVERYWHERE) is EVERYWHERE
    assert both().tolist() == [[True, False]] and either().tolist() == [[True, True]]
    assert fp().tolist() == [[True, False]] and calls == [1]
    assert EVERYWHERE() is None


def test_raster_is_a_sequence_of_bands_with_metadata():
    grid = Grid(None, Affine.identity(), 2, 1)
    m = np.array([[1.0, 0.0]], np.float32)
    r = Raster.from_arrays([np.array([[1, 2]], np.uint8), np.array([[3.0, 4.0]])], [m, None], grid, ["a", "b"])
    assert len(r) == r.count == 2 and r.names == ["a", "b"] and r.dtypes == ["uint8", "float64"]
    assert r.shape == (1, 2) and [b.values.tolist() for b in r] == [[[1, 2]], [[3.0, 4.0]]]
    assert r.mask() is m and r.masks == [m, None] and r.raw()[0].tolist() == [[1, 0]]
    shared = Raster((Band(r[0].values, m), Band(r[0].values, m)), grid)
    assert shared.mask() is m  # one common mask is not recomputed


def test_evaluate_returns_a_raster_with_the_graph_metadata():
    img = Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")
    r = evaluate(img.node, tile_grid(*_tile(13)))
    assert isinstance(r, Raster) and r.names == ["classification"] and r.classes[0] == img.bands[0].classes
    assert r.grid == tile_grid(*_tile(13)) and r[0].values.shape == (256, 256)


# the registry --------------------------------------------------------------------------------
def test_one_registry_for_image_the_evaluator_and_serialize():
    methods = {name[3:] for name in dir(_Evaluator) if name.startswith("op_")}
    assert methods == set(ops.OPS)
    for name in ops.BINARY + ops.UNARY:
        assert callable(getattr(Image, name)), name
    assert ops.COMPARISONS <= set(ops.BINARY) and ops.INTEGER_OPS <= set(ops.BINARY)
    img = Image("LANDSAT/LC08/SAMPLE").select("B4")
    assert img.gt(1).bands[0].dtype == "uint8" and img.sqrt().bands[0].dtype == "float64"


@pytest.mark.parametrize("op, args, bad", [
    ("maskRamp", lambda n: (n, ((0, 0, 0),), 2.0), "opacity over 1"),
    ("maskRamp", lambda n: (n, ((0, 0, 300),), 1.0), "colour channel over 255"),
    ("classColors", lambda n: (n, ((("id", "x"),),), None, (), 1.0), "non-integer class id"),
    ("classColors", lambda n: (n, (), None, ("a",), 1.0), "hidden ids not integers"),
    ("visualize", lambda n: (n, "vis"), "params not a dict"),
])
def test_display_nodes_from_json_are_checked(op, args, bad):
    src = Image("VIEWER/SAMPLE_CLASSES/LC08_RULES").node
    assert not ops.check_args(op, args(src)), bad


@pytest.mark.parametrize("args", [
    lambda d: (d.args[0], ((("color", "#ff0000"), ("id", 10 ** 9), ("name", "x")),), None, (), 1.0),  # huge LUT
    lambda d: (d.args[0], ((("id", 1), ("name", "x")),), None, (), 1.0),  # no colour
    lambda d: (d.args[0], d.args[1], -1, (), 1.0),  # background out of range
])
def test_crafted_class_colours_with_valid_keys_are_refused(args):
    """A client can recompute content keys; the registry's checks still bound what evaluation allocates."""
    d = class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")).display()
    with pytest.raises(InvalidArgument, match="malformed arguments"):
        from_json(to_json(Node("classColors", args(d), d.bands)))


@pytest.mark.parametrize("vis", [
    {"min": [0.0], "max": [0.0], "gamma": [1.0], "palette": None, "opacity": 1.0},  # min == max
    {"min": [0.0], "max": [1.0], "gamma": [0.0], "palette": None, "opacity": 1.0},  # gamma 0
    {"min": [0.0], "max": [1.0], "gamma": [1.0], "palette": None},  # a key missing
    {"min": [0.0, 1.0], "max": [1.0], "gamma": [1.0], "palette": None, "opacity": 1.0},  # one value per band
    {"min": [0.0], "max": [float("inf")], "gamma": [1.0], "palette": None, "opacity": 1.0},
    {"min": [0.0], "max": [1.0], "gamma": [1.0], "palette": [[0, 0, 256]], "opacity": 1.0},
])
def test_crafted_visualize_params_are_refused(vis):
    src = Image("LANDSAT/LC08/SAMPLE").select("B4").node
    with pytest.raises(InvalidArgument, match="malformed arguments"):
        from_json(to_json(Node("visualize", (src, vis), Image("LANDSAT/LC08/SAMPLE").select("B4").visualize().bands)))


def test_a_tampered_display_expression_is_refused():
    doc = to_json(class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")).display())
    node = doc["nodes"][doc["result"]]
    node["args"][-1] = 5  # opacity out of range
    with pytest.raises(InvalidArgument, match="malformed arguments"):
        from_json(doc)


# display expressions ---------------------------------------------------------------------------
def _tile(z: int) -> tuple[int, int, int]:
    t = TMS.tile(*CENTRE, z)
    return z, t.x, t.y


@pytest.mark.parametrize("name", list(layers()))
def test_a_tile_is_encode_of_evaluate_of_the_display(name):
    spec = layers()[name]
    for z in (11, 13):
        grid = tile_grid(*_tile(z))
        planes, alpha = rgba_planes(evaluate(spec.display(), grid))
        assert render_tile(spec, *_tile(z)) == encode_planes(planes, alpha, "png")


@pytest.mark.parametrize("name", list(layers()))
def test_display_expression_round_trips_and_computepixels_draws_the_tiles(name):
    spec = layers()[name]
    doc = json.loads(json.dumps(to_json(spec.display())))
    assert from_json(doc).node.key == spec.display().key
    grid = tile_grid(*_tile(13))
    png = computePixels({"expression": doc, "grid": grid.to_dict(), "fileFormat": "PNG"})
    np.testing.assert_array_equal(decode(png), render_rgba(spec, grid))
    np.testing.assert_array_equal(decode(png), decode(render_tile(spec, *_tile(13))))
    request = json.loads(json.dumps(layer_request(spec, grid)))  # the export JSON runs (class layers too)
    assert computePixels(request) == png


def test_overlays_keep_an_alpha_channel_where_images_are_opaque():
    """A fully covered class or mask tile is RGBA (alpha from the overlay); an unmasked image tile is RGB."""
    z, x, y = _tile(14)
    assert PILImage.open(io.BytesIO(render_tile(layers()["image"], z, x, y))).mode == "RGB"
    rules = class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"))
    valid = mask_layer(Image("LANDSAT/LC08/SAMPLE").select("B4").mask())
    for spec in (rules, valid):
        tile = PILImage.open(io.BytesIO(render_tile(spec, z, x, y)))  # grey + alpha where the colours are grey
        assert tile.mode in ("RGBA", "LA") and np.asarray(tile.convert("RGBA"))[..., 3].min() == 255


def test_display_outputs_three_vis_bands_on_the_native_grid():
    for spec in layers().values():
        d = spec.display()
        assert d.op in ops.DISPLAY_OPS and [b.name for b in d.bands] == list(ops.VIS_BANDS)
        assert all(b.dtype == "uint8" and b.grid == spec.node.native_grid() for b in d.bands)
        assert spec.display() is d  # built once per spec
    assert layers()["image_bilinear"].display().args[0].op == "resample"


def test_legends_read_the_display_expression():
    ls = layers()
    img = legend(ls["image_bilinear"].display())
    assert img["kind"] == "image" and img["bands"][0]["name"] == "B5" and img["palette"] == ["#0000ff", "#ff0000"]
    assert img["min"] == [7000.0] and img["max"] == [20000.0] and img["gamma"] == [1.0]
    mask = legend(ls["mask"].display())
    assert mask == {"kind": "mask", "bands": [{"name": "BQA", "units": None}], "palette": ["#ff0000"],
                    "opacity": 0.6}
    cls = legend(ls["classes"].display())
    table = ls["classes"].classes()
    assert [c["id"] for c in cls["classes"]] == list(table.ids) and cls["opacity"] == 0.8
    assert [c["id"] for c in cls["classes"] if c["hidden"]] == [1]
    assert all(c["color"] == table.color(c["id"]) and c["name"] == table.name(c["id"]) for c in cls["classes"])
    with pytest.raises(InvalidArgument, match="legend needs a display node"):
        legend(ls["image"].node)


def test_to_hex_is_the_one_colour_formatter():
    assert to_hex([255, 0, 16]) == "#ff0010" and to_hex("red", prefix="") == "ff0000" and to_hex("0F0") == "#00ff00"
    with pytest.raises(InvalidArgument):
        to_hex([1.5, 2, 3])


def test_pixel_space_display():
    ids = (np.arange(60 * 80).reshape(60, 80) // 97 % 4).astype(np.uint8)
    img = Image.from_array(ids, band_names=["c"])
    spec = class_layer(img, [{"id": i, "name": f"k{i}"} for i in range(4)], hidden=[2])
    grid = Grid(None, Affine.identity(), 80, 60)
    rgba = render_rgba(spec, grid)
    assert (rgba[..., 3][ids == 2] == 0).all() and (rgba[..., 3][ids != 2] == 255).all()
    assert evaluate(spec.display(), grid).names == list(ops.VIS_BANDS)


# import contract -------------------------------------------------------------------------------
def _imports(path: Path) -> tuple[set[str], list[str]]:
    """(modules of viewer.core a module imports at its top, imports of viewer modules inside functions)."""
    tree = ast.parse(path.read_text())
    top = {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
    nested = [f"{path.name}:{n.lineno}" for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f) if isinstance(n, ast.ImportFrom) and n.level >= 1]
    return top, nested


def test_core_modules_form_no_cycle_and_import_nothing_inside_functions():
    graph, nested = {}, []
    for path in CORE.glob("*.py"):
        graph[path.stem], inner = _imports(path)
        nested += inner
    assert nested == []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in graph.get(name, ()):
            assert state.get(dep) != 1, f"import cycle: {' -> '.join(trail + [dep])}"
            if dep not in state:
                visit(dep, trail + [dep])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_core_imports_no_web_framework_and_encode_only_encodes():
    banned = ("panel", "bokeh", "tornado", "param")
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for n in ast.walk(tree):
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else \
                [n.module or ""] if isinstance(n, ast.ImportFrom) and n.level == 0 else []
            assert not any(x.split(".")[0] in banned for x in names), path.name
    assert _imports(CORE / "encode.py")[0] <= {"errors", "grid"}


def test_grid_carries_through_reprojection():
    grid = Grid(parse_crs("EPSG:32616"), Affine(60, 0, 452000, 0, -60, 3408600), 50, 40)
    r = evaluate(layers()["classes"].display(), grid)
    assert r.grid is grid and all(b.values.shape == (40, 50) and b.values.dtype == np.uint8 for b in r)


def _imports_in_functions(path: Path) -> list[str]:
    """Every import statement (absolute or relative) inside a function of one module."""
    tree = ast.parse(path.read_text())
    return [f"{path.name}:{f.name}:{', '.join(a.name for a in n.names) if isinstance(n, ast.Import) else n.module}"
            for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_server_and_cli_import_at_the_top():
    server = CORE.parent / "server"
    assert [i for p in sorted(server.glob("*.py")) for i in _imports_in_functions(p)] == []
    # the exceptions: ``viewer serve`` loads Panel and the UI, and Dask only with ``--dask-scheduler``;
    # ``viewer catalog``/``--help`` do not need them
    assert _imports_in_functions(CORE.parent / "cli.py") == ["cli.py:_use_scheduler:jobs.big_export",
                                                             "cli.py:serve:panel", "cli.py:serve:ui.app",
                                                             "cli.py:serve:ui.component_route",
                                                             "cli.py:serve:ui.session_pool"]


def test_core_modules_import_only_their_row_or_rows_below_as_the_architecture_draws():
    doc = (CORE.parents[1] / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    picture = doc.split("inside the core, a module imports only", 1)[1].split("```", 1)[0]
    rows = [line.split()[1:] for line in picture.splitlines()[2:] if line.strip()]
    level = {m: len(rows) - i for i, row in enumerate(rows) for m in row}
    modules = {p.stem for p in CORE.glob("*.py")} - {"__init__"}
    assert modules == set(level), f"not drawn: {sorted(modules - set(level))}, gone: {sorted(set(level) - modules)}"
    upward = []
    for path in CORE.glob("*.py"):
        if path.stem == "__init__":
            continue
        for dep in _imports(path)[0]:
            if level.get(dep, 0) > level[path.stem]:
                upward.append(f"{path.stem} -> {dep}")
    assert upward == []
