"""The layer store: specs as JSON and arrays as .npz in the state directory, never pickles; bounded
in memory (LRU) and on disk (oldest files pruned first); resolvable in a fresh process."""
from __future__ import annotations

import gc
import io
import json
import os
import pickle
import subprocess
import sys
import time
import zipfile
from collections import OrderedDict

import morecantile
import numpy as np
import pytest
from affine import Affine
from PIL import Image as PILImage
from pyproj import Transformer
from rasterio.crs import CRS

from viewer import Image, InvalidArgument, ReadError
from viewer.core import layers, sources
from viewer.core.layers import UnknownLayer, class_layer, image_layer, mask_layer, register, resolve
from viewer.core.serialize import from_json, to_json
from viewer.core.sources import array_node, get_array
from viewer.core.tiles import render_tile

TRUE_COLOUR = {"bands": ["B4", "B3", "B2"], "min": 7000, "max": 14000}
LANDSAT_TILE = (12, *morecantile.tms.get("WebMercatorQuad").tile(-87.398, 30.728, 12)[:2])
UTM = {"crs": "EPSG:32616", "transform": Affine(30, 0, 452475, 0, -30, 3408645)}


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """A fresh state directory and a fresh in-memory registry for every test."""
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))
    for name in ("VIEWER_LAYER_CACHE", "VIEWER_STATE_MAX_FILES", "VIEWER_STATE_MAX_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(layers, "_specs", OrderedDict())
    return tmp_path / "state"


def forget_memory(monkeypatch) -> None:
    monkeypatch.setattr(layers, "_specs", OrderedDict())


def spec_files(state_dir) -> list[str]:
    return sorted(p.name for p in state_dir.glob("*.json"))


def landsat(max_value: int = 14000):
    return image_layer(Image("LANDSAT/LC08/SAMPLE"), dict(TRUE_COLOUR, max=max_value))


def array_image(seed: int = 7, size: int = 300) -> Image:
    rng = np.random.default_rng(seed)
    values = rng.random((2, size, size), dtype=np.float32)
    mask = (rng.random((size, size)) > 0.2).astype(np.float32)
    return Image.from_array(values, mask=mask, **UTM)


# the format -------------------------------------------------------------------------------
def test_a_spec_is_stored_as_json_and_its_arrays_as_npz(state_dir):
    spec = image_layer(array_image(), {"bands": ["b1"], "min": 0, "max": 1})
    register(spec)
    doc = json.loads((state_dir / f"{spec.token}.json").read_text())
    assert set(doc) == {"version", "kind", "style", "graph"} and doc["version"] == 2
    assert doc["kind"] == "image" and doc["style"] == spec.style and doc["graph"]["result"] == spec.node.key
    [npz] = (state_dir / "arrays").iterdir()
    assert npz.suffix == ".npz" and zipfile.is_zipfile(npz)
    with np.load(npz, allow_pickle=False) as z:
        assert set(z.files) == {"values", "mask", "crs", "transform"} and z["values"].shape == (2, 300, 300)
    assert not list(state_dir.rglob("*.pickle"))


@pytest.mark.parametrize("data, kwargs", [
    (np.arange(12, dtype=np.uint8).reshape(3, 4), {}),
    (np.ones((4, 5), dtype=bool), {"crs": "EPSG:4326", "transform": Affine(0.1, 0, -87, 0, -0.1, 31)}),
    (np.linspace(0, 1, 2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7),
     {"crs": "EPSG:32616", "transform": Affine(30, 0, 452475, 0, -30, 3408645),
      "mask": np.linspace(-0.5, 1.5, 2 * 6 * 7).reshape(2, 6, 7)}),  # clipped to [0, 1]
    (np.arange(5 * 7 * 3, dtype=np.int16).reshape(5, 7, 3), {"mask": np.eye(5, 7)}),  # H x W x C input
    (np.arange(20, dtype=">f4").reshape(4, 5), {"crs": CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=10").to_wkt(),
                                                "transform": [2.5, 0.5, 10, 0.25, -2.5, 20]}),
])
def test_array_round_trip_reproduces_the_digest(state_dir, monkeypatch, data, kwargs):
    image = Image(_node=array_node(data, **kwargs))
    digest = image.node.args[0]
    original = get_array(digest)
    token = register(image_layer(image, {"bands": [image.bands[0].name], "min": 0, "max": 1}))
    forget_memory(monkeypatch)
    monkeypatch.delitem(sources._arrays, digest)  # as in a fresh process
    assert resolve(token).token == token  # the .npz was read and its digest recomputed
    loaded = get_array(digest)
    assert loaded is not original and loaded.grid == original.grid
    assert [v.dtype for v in loaded.values] == [v.dtype for v in original.values]
    assert np.array_equal(loaded.values, original.values)
    assert [m is None for m in loaded.masks] == [m is None for m in original.masks]
    if original.masks[0] is not None:
        assert np.array_equal(loaded.masks, original.masks)


def test_an_edited_array_file_is_refused(state_dir, monkeypatch):
    image = array_image(size=40)
    digest = image.node.args[0]
    token = register(image_layer(image, {"bands": ["b1"], "min": 0, "max": 1}))
    path = state_dir / "arrays" / f"{digest}.npz"
    with np.load(path, allow_pickle=False) as z:
        parts = {k: z[k] for k in z.files}
    parts["values"] = parts["values"] * 2
    buf = io.BytesIO()
    np.savez(buf, **parts)
    path.write_bytes(buf.getvalue())
    forget_memory(monkeypatch)
    monkeypatch.delitem(sources._arrays, digest)
    with pytest.raises(ReadError, match=f"stored layer {token} .* does not match its digest {digest}"):
        resolve(token)


# how long an array lives ----------------------------------------------------------------------
def _held_digests() -> set[str]:
    gc.collect()
    return set(sources._arrays.keys())


def test_arrays_of_dropped_images_are_freed_as_a_training_loop_logs_masks():
    """W&B style: an image with a class mask per step; each step's arrays go with its image."""
    before = _held_digests()
    rng = np.random.default_rng(3)
    kept = []
    for step in range(12):
        pixels = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        classes = rng.integers(0, 4, (64, 64), dtype=np.uint8)
        image = Image.from_array(pixels, masks={"pred": {"mask_data": classes, "class_labels": {0: "a", 1: "b"}}})
        if step == 5:
            kept.append(image)
    del image
    digests = _held_digests() - before
    own = {n["args"][0] for n in to_json(kept[0])["nodes"].values() if n["op"] == "array"}
    assert digests == own and own  # the kept step's arrays; the other 11 steps' are freed
    assert all(get_array(d) for d in digests)
    kept.clear()
    assert _held_digests() - before == set()


def test_an_array_lives_while_any_image_or_layer_uses_it(state_dir):
    image = array_image(size=40)
    digest = image.node.args[0]
    doubled = image.multiply(2)  # a derived image holds its source array
    token = register(image_layer(image, {"bands": ["b1"], "min": 0, "max": 1}))
    del image
    assert digest in _held_digests()
    del doubled
    assert digest in _held_digests()  # the registered layer's spec holds it
    lon, lat = Transformer.from_crs("EPSG:32616", "EPSG:4326", always_xy=True).transform(452475 + 600, 3408645 - 600)
    tile = (16, *morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 16)[:2])
    png = render_tile(resolve(token), *tile)
    assert (np.asarray(PILImage.open(io.BytesIO(png)).convert("RGBA"))[..., 3] == 255).sum() > 100  # the array drawn
    layers._specs.clear()  # (this test's own registry, see state_dir)
    assert digest not in _held_digests()  # no spec, no image: freed ...
    assert render_tile(resolve(token), *tile) == png  # ... and read back from the state directory
    assert digest in _held_digests()


def test_from_json_of_a_dropped_in_memory_image_names_the_array():
    doc = to_json(array_image(size=20))
    gc.collect()
    with pytest.raises(InvalidArgument, match="names an array .* that is not registered in this process"):
        from_json(doc)


# another process --------------------------------------------------------------------------
def test_a_fresh_process_resolves_and_renders_every_kind_byte_for_byte(state_dir, tmp_path):
    img = Image("LANDSAT/LC08/SAMPLE")
    cloud = img.select("BQA").rightShift(14).bitwiseAnd(3)
    classes = [{"id": 0, "name": "none"}, {"id": 1, "name": "low"}, {"id": 2, "name": "medium"},
               {"id": 3, "name": "high"}]
    pixel_classes = Image.from_array(np.arange(64 * 48, dtype=np.uint8).reshape(48, 64) % 3)  # pixel space
    cases = [
        (image_layer(img, TRUE_COLOUR), LANDSAT_TILE),
        (mask_layer(img.select("B4").updateMask(cloud.neq(3)).mask(), palette=["ff0000"], opacity=0.7),
         LANDSAT_TILE),
        (class_layer(cloud, classes, hidden=[0]), LANDSAT_TILE),
        (class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"), hidden=[1]), LANDSAT_TILE),
        (image_layer(array_image(), {"bands": ["b2", "b1", "b2"], "min": 0, "max": 1}), LANDSAT_TILE),
        (class_layer(pixel_classes, {0: "a", 1: "b", 2: "c"}), (0, 0, 0)),
    ]
    here = {register(spec): render_tile(spec, *tile, "png") for spec, tile in cases}
    out = tmp_path / "tiles"
    out.mkdir()
    code = ("import sys, pathlib\n"
            "from viewer.core.layers import resolve\n"
            "from viewer.core.tiles import render_tile\n"
            "for arg in sys.argv[2:]:\n"
            "    token, z, x, y = arg.split(',')\n"
            "    tile = render_tile(resolve(token), int(z), int(x), int(y), 'png')\n"
            "    (pathlib.Path(sys.argv[1]) / (token + '.png')).write_bytes(tile)\n")
    args = [",".join(map(str, (spec.token, *tile))) for spec, tile in cases]
    subprocess.run([sys.executable, "-c", code, str(out)] + args, check=True, capture_output=True, text=True)
    for token, tile in here.items():
        assert (out / f"{token}.png").read_bytes() == tile
    assert len(set(here.values())) == len(cases)  # six different layers, six different tiles


def test_a_layer_of_a_file_opened_by_path_resolves_from_disk(state_dir, tmp_path, monkeypatch):
    import rasterio

    path = tmp_path / "notebook.tif"
    values = np.arange(64 * 64, dtype=np.uint16).reshape(1, 64, 64)
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint16", crs="EPSG:32616",
                       transform=UTM["transform"]) as ds:
        ds.write(values)
    spec = image_layer(Image.open(str(path)), {"min": 0, "max": 4096})
    z, x, y = 14, *morecantile.tms.get("WebMercatorQuad").tile(-87.4868, 30.8013, 14)[:2]
    tile = render_tile(spec, z, x, y, "png")
    assert np.asarray(PILImage.open(io.BytesIO(tile)).convert("RGBA"))[..., 3].max() == 255
    forget_memory(monkeypatch)
    token = register(spec)
    forget_memory(monkeypatch)
    assert render_tile(resolve(token), z, x, y, "png") == tile


# tampering and old pickles ----------------------------------------------------------------
def edit(path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def set_max(doc):
    doc["style"]["vis"]["max"] = [1.0, 1.0, 1.0]


def flip_select(doc):
    node = next(n for n in doc["graph"]["nodes"].values() if n["op"] == "select")
    node["args"][1] = [2, 1, 0]


def other_result(doc):
    doc["graph"]["result"] = next(k for k, n in doc["graph"]["nodes"].items() if n["op"] == "source")


def other_kind(doc):
    doc["kind"] = "mask"


@pytest.mark.parametrize("change, message", [
    (set_max, "does not match its token"),
    (other_kind, "does not match its token"),
    (other_result, "does not match its token"),
    (flip_select, r"cannot be read \(InvalidArgument: graph node .* does not match its content"),
])
def test_an_edited_spec_file_is_refused(state_dir, monkeypatch, change, message):
    token = register(landsat())
    edit(state_dir / f"{token}.json", change)
    forget_memory(monkeypatch)
    with pytest.raises(ReadError, match=f"stored layer {token} in .*{message}"):
        resolve(token)


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_pickles_in_the_state_dir_are_never_loaded(state_dir, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    spec = landsat()
    state_dir.mkdir(parents=True)
    evil = pickle.dumps({"version": 1, "spec": Payload(marker), "arrays": []})
    (state_dir / f"{spec.token}.pickle").write_bytes(evil)
    with pytest.raises(UnknownLayer, match="no layer with this token is registered"):
        resolve(spec.token)
    register(spec)  # a JSON spec next to the old pickle is what resolves
    forget_memory(monkeypatch)
    assert resolve(spec.token).token == spec.token
    assert not marker.exists() and "pickle" not in layers.__dict__


def test_an_unusable_state_dir_names_the_dir_and_the_variable(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for path in (blocker / "state", blocker):
        monkeypatch.setenv("VIEWER_STATE_DIR", str(path))
        with pytest.raises(ReadError) as err:
            register(landsat())
        assert str(path) in str(err.value) and "set VIEWER_STATE_DIR" in str(err.value)
    monkeypatch.setenv("VIEWER_STATE_DIR", str(blocker / "state"))
    with pytest.raises(ReadError, match="cannot read the state directory .*set VIEWER_STATE_DIR"):
        resolve("1" * 64)


def test_limits_from_the_environment_are_checked(monkeypatch):
    monkeypatch.setenv("VIEWER_LAYER_CACHE", "many")
    with pytest.raises(InvalidArgument, match="VIEWER_LAYER_CACHE='many' is not allowed; allowed: a positive"):
        register(landsat())


# bounds -----------------------------------------------------------------------------------
def test_memory_is_an_lru_and_evicted_layers_resolve_from_disk(state_dir, monkeypatch):
    monkeypatch.setenv("VIEWER_LAYER_CACHE", "3")
    specs = [landsat(10000 + i) for i in range(8)]
    tokens = [register(s) for s in specs]
    assert list(layers._specs) == tokens[-3:]
    resolve(tokens[-3])  # used: now the most recent
    assert list(layers._specs) == [tokens[-2], tokens[-1], tokens[-3]]
    for spec in specs[:3]:
        back = resolve(spec.token)  # from disk
        assert back == spec and back is not spec and back.style == spec.style
        assert len(layers._specs) == 3
    assert list(layers._specs) == tokens[:3]


def test_disk_keeps_the_newest_and_the_recently_resolved_files(state_dir, monkeypatch):
    monkeypatch.setenv("VIEWER_STATE_MAX_FILES", "4")
    monkeypatch.setenv("VIEWER_LAYER_CACHE", "1")  # so resolve reads (and touches) the file
    specs = [landsat(10000 + i) for i in range(6)]
    for spec in specs[:4]:
        register(spec)
        time.sleep(0.02)  # file times tick coarsely
    resolve(specs[0].token)
    time.sleep(0.02)
    for spec in specs[4:]:
        register(spec)
        time.sleep(0.02)
        assert len(spec_files(state_dir)) == 4
    assert spec_files(state_dir) == sorted(f"{s.token}.json" for s in (specs[0], specs[3], specs[4], specs[5]))
    with pytest.raises(UnknownLayer):
        resolve(specs[1].token)


def test_disk_bytes_are_capped_and_arrays_go_after_their_specs(state_dir, monkeypatch):
    monkeypatch.setenv("VIEWER_STATE_MAX_MB", "0.5")  # each array below is ~0.2 MB (random, incompressible)
    foreign = [state_dir / "notes.txt", state_dir / ("A" * 64 + ".json"), state_dir / ("2" * 64 + ".pickle")]
    state_dir.mkdir(parents=True)
    for path in foreign:
        path.write_text("not ours")
    specs = []
    for seed in range(5):
        values = np.random.default_rng(seed).integers(0, 255, (3, 256, 256), dtype=np.uint8)
        specs.append(image_layer(Image.from_array(values, **UTM), {"min": 0, "max": 255}))
        register(specs[-1])
        time.sleep(0.02)
    files = [p for p in state_dir.rglob("*") if p.is_file() and p not in foreign]
    assert sum(p.stat().st_size for p in files) <= 0.5 * 2 ** 20
    kept = {p.name for p in state_dir.glob("*.json")} - {foreign[1].name}
    assert f"{specs[-1].token}.json" in kept and f"{specs[0].token}.json" not in kept
    referenced = {next(n["args"][0] for n in json.loads((state_dir / name).read_text())["graph"]["nodes"].values()
                       if n["op"] == "array") for name in kept}
    assert {p.stem for p in (state_dir / "arrays").glob("*.npz")} == referenced  # no orphan, no dangling spec
    assert all(p.exists() for p in foreign)


def test_a_layer_served_from_memory_is_kept_on_disk(state_dir, monkeypatch):
    spec = landsat()
    register(spec)
    path = state_dir / f"{spec.token}.json"
    path.unlink()  # e.g. pruned by another process
    assert resolve(spec.token) is spec and not path.exists()  # renewed at most once a minute
    monkeypatch.setattr(layers, "_TOUCH_EVERY", 0.0)
    assert resolve(spec.token) is spec and path.exists()
