"""Big exports: chunked on Dask, written as a COG, identical to computePixels in one piece."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from distributed import Client, LocalCluster
import rasterio.warp
from rasterio.io import MemoryFile

from viewer import Image, Map, data
from viewer.core.chunked import export_chunks, plan, plan_chunks, prepare_big, render_chunk
from viewer.core.errors import InvalidArgument, LimitExceeded
from viewer.jobs import big_export
from viewer.jobs.big_export import ExportCancelled, SchedulerUnavailable, connect, start_export
from viewer.ui.export import ExportPanel

LANDSAT = "LANDSAT/LC08/SAMPLE"
ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="module")
def client():
    """Two single-threaded workers in this process (a few seconds less than worker processes)."""
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    c = Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


def lattice_grid(width: int = 3000, height: int = 2500, res: float = 6.0) -> dict:
    """A grid in the scene's UTM zone on a whole-metre lattice, reaching past the scene's edge
    (so the mask has invalid pixels), upsampling the 30 m bands 5x."""
    t = Image(LANDSAT).bands[0].grid.transform
    return {"dimensions": {"width": width, "height": height}, "crsCode": "EPSG:32616",
            "affineTransform": {"scaleX": res, "shearX": 0.0, "translateX": t.c + 1002.0,
                                "shearY": 0.0, "scaleY": -res, "translateY": t.f - 498.0}}


def one_piece(image: Image, grid: dict) -> tuple[np.ndarray, np.ndarray, rasterio.Affine, str]:
    tif = data.computePixels({"expression": image, "grid": grid, "fileFormat": "GEO_TIFF"})
    with MemoryFile(tif) as mem, mem.open() as ds:
        return ds.read(), ds.read_masks(1), ds.transform, ds.crs.to_string()


CASES = {
    "nearest": lambda: Image(LANDSAT).select(["B4"]),
    "bilinear": lambda: Image(LANDSAT).select(["B4", "B3"]).resample("bilinear"),
    "normalizedDifference": lambda: Image(LANDSAT).resample("bilinear").normalizedDifference(["B5", "B4"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_chunks_on_dask_equal_computePixels_in_one_piece(case, client, tmp_path):
    image, grid = CASES[case](), lattice_grid()
    values, mask, transform, crs = one_piece(image, grid)
    job = start_export({"expression": image, "grid": grid}, tmp_path / "out.tif", client=client, chunk=512)
    path = job.result(timeout=120)
    assert job.progress == (30, 30) and job.status == "finished"  # ceil(3000/512) x ceil(2500/512)
    with rasterio.open(path) as ds:
        got, got_mask = ds.read(), ds.read_masks(1)
        assert ds.transform == transform and ds.crs.to_string() == crs
        assert [ds.descriptions[i] for i in range(ds.count)] == list(image.bandNames())
    assert got.dtype == values.dtype and got.tobytes() == values.tobytes()
    assert np.array_equal(got_mask, mask)
    assert 0 < (mask == 0).sum() < mask.size / 10  # some pixels lie beyond the scene, most inside
    assert np.unique(got).size > 100  # real data, not a constant


def mercator_grid(width: int, height: int, shift: tuple[float, float] = (0.0, 0.0)) -> dict:
    """A Web Mercator grid over the scene (whole-metre origin), ``shift`` of its size off it."""
    native = Image(LANDSAT).bands[0].grid
    left, bottom, right, top = rasterio.warp.transform_bounds(native.crs, "EPSG:3857", *native.bounds)
    res = max(right - left, top - bottom) / max(width, height)
    return {"dimensions": {"width": width, "height": height}, "crsCode": "EPSG:3857",
            "affineTransform": {"scaleX": res, "shearX": 0.0, "translateX": float(round(left + shift[0] * width * res)),
                                "shearY": 0.0, "scaleY": -res,
                                "translateY": float(round(top - shift[1] * height * res))}}


@pytest.mark.parametrize("case", list(CASES))
def test_across_crss_the_chunks_are_gdals_and_equal_computePixels(case, client, tmp_path):
    """Across CRSs a warp's pixels depend on the chunk GDAL warps them in: the export's chunks
    are GDAL's own (here split by its source-window fill ratio: two thirds lie off the scene)."""
    image, grid = CASES[case](), mercator_grid(3000, 2500, (0.6, 0.3))
    values, mask, _, _ = one_piece(image, grid)
    job = start_export({"expression": image, "grid": grid}, tmp_path / "m.tif", client=client, chunk=512)
    path = job.result(timeout=120)
    assert job.progress == (2, 2)
    with rasterio.open(path) as ds:
        assert ds.read().tobytes() == values.tobytes() and np.array_equal(ds.read_masks(1), mask)
    assert 0.5 < (mask == 0).mean() < 0.8


def test_across_crss_a_big_grid_equals_one_bare_gdal_warp(client, tmp_path):
    image, grid = Image(LANDSAT).select(["B4"]), mercator_grid(6000, 6000)  # 69 MiB: GDAL warps it in 2 chunks
    request = prepare_big({"expression": image, "grid": grid})
    assert [(w.col_off, w.row_off, w.width, w.height) for w in plan(request)] == [(0, 0, 6000, 3000),
                                                                                 (0, 3000, 6000, 3000)]
    path = start_export({"expression": image, "grid": grid}, tmp_path / "b.tif", client=client).result(120)
    g = request.grid
    whole = np.zeros((g.height, g.width), np.uint16)
    with rasterio.open(ASSETS / "landsat8" / "B4.tif") as src:
        rasterio.warp.reproject(rasterio.band(src, 1), whole, dst_transform=g.transform, dst_crs=g.crs,
                                resampling=rasterio.enums.Resampling.nearest, init_dest_nodata=False)
    with rasterio.open(path) as ds:
        assert np.array_equal(ds.read(1), whole)


def test_one_process_chunks_equal_dask_chunks(client, tmp_path):
    image, grid = CASES["normalizedDifference"](), lattice_grid(1600, 1200)
    a = export_chunks(prepare_big({"expression": image, "grid": grid}), tmp_path / "a.tif", 512)
    b = start_export({"expression": image, "grid": grid}, tmp_path / "b.tif", client=client, chunk=1024).result(60)
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert x.read().tobytes() == y.read().tobytes()
        assert np.array_equal(x.read_masks(1), y.read_masks(1))


def test_the_file_is_a_cog_with_overviews(client, tmp_path):
    grid = lattice_grid(3100, 1700)  # past the scene's east edge: a mask
    path = data.computePixelsToFile({"expression": CASES["bilinear"](), "grid": grid}, tmp_path / "cog.tif",
                                    chunk=512, client=client, progress=False)
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.overviews(1) == [2, 4, 8] and ds.block_shapes[0] == (512, 512)
        assert ds.crs.to_epsg() == 32616 and ds.transform == prepare_big({"expression": CASES["bilinear"](),
                                                                          "grid": grid}).grid.transform
        assert ds.transform.a == 6.0 and ds.transform.e == -6.0 and (ds.width, ds.height) == (3100, 1700)
        assert ds.mask_flag_enums[0] == [rasterio.enums.MaskFlags.per_dataset]
        assert (ds.read_masks(1)[:, -20:] == 0).all() and (ds.read_masks(1)[:, :2000] == 255).mean() > 0.9
        overview = ds.read(1, out_shape=(ds.height // 8, ds.width // 8))
        assert overview.max() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cog.tif"]  # no temporaries left


def test_beyond_the_interactive_limit(client, tmp_path):
    # 4100 x 3100 float32 x 2 bands = 97 MiB: computePixels refuses it, the file export writes it
    image = Image(LANDSAT).select(["B5", "B4"]).toFloat()
    grid = lattice_grid(4100, 3100, 4.0)
    with pytest.raises(LimitExceeded):
        data.computePixels({"expression": image, "grid": grid, "fileFormat": "GEO_TIFF"})
    path = start_export({"expression": image, "grid": grid}, tmp_path / "big.tif", client=client,
                        chunk=1024).result(120)
    # any window equals computePixels of that window's grid (here the chunk at column 2048, row 1024)
    g = prepare_big({"expression": image, "grid": grid}).grid.window(2048, 1024, 700, 600)
    values, mask, _, _ = one_piece(image, g.to_dict())
    with rasterio.open(path) as ds:
        window = rasterio.windows.Window(2048, 1024, 700, 600)
        assert ds.read(window=window).tobytes() == values.tobytes()
        assert np.array_equal(ds.read_masks(1, window=window), mask)


def test_progress_reaches_total_and_cancel_leaves_no_file(client, tmp_path):
    image = CASES["normalizedDifference"]()
    job = start_export({"expression": image, "grid": lattice_grid(6000, 5000, 3.0)}, tmp_path / "x.tif",
                       client=client, chunk=256)
    assert job.progress[1] == 24 * 20
    deadline = time.time() + 60
    while job.progress[0] < 2 and time.time() < deadline:
        time.sleep(0.02)
    job.cancel()
    with pytest.raises(ExportCancelled, match="x.tif"):
        job.result(timeout=60)
    assert job.status == "cancelled" and 2 <= job.progress[0] < job.progress[1]
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file


def test_plan_and_render_chunk():
    request = prepare_big({"expression": CASES["nearest"](), "grid": lattice_grid(1100, 600)})
    windows = plan_chunks(request.grid, 512)
    assert [(w.col_off, w.row_off, w.width, w.height) for w in windows] == [
        (0, 0, 512, 512), (512, 0, 512, 512), (1024, 0, 76, 512),
        (0, 512, 512, 88), (512, 512, 512, 88), (1024, 512, 76, 88)]
    values, valid = render_chunk(request.to_dict(), windows[2])
    assert values.shape == (1, 512, 76) and values.dtype == np.uint16
    assert valid is None or valid.shape == (512, 76)
    with pytest.raises(InvalidArgument, match="chunk 500"):
        plan_chunks(request.grid, 500)


@pytest.mark.parametrize("path, words", [
    ("nowhere/deeper/out.tif", "does not exist"),
    ("out.png", "must end in .tif"),
    (".", "is a folder"),
])
def test_bad_output_path_names_it(path, words, client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if path == ".":
        (tmp_path / "folder.tif").mkdir()
        path = "folder.tif"
    with pytest.raises(InvalidArgument, match=words) as info:
        start_export({"expression": CASES["nearest"](), "grid": lattice_grid()}, path, client=client)
    assert path.split("/")[-1] in str(info.value)


def test_bad_format_and_keys_name_them(client, tmp_path):
    params = {"expression": CASES["nearest"](), "grid": lattice_grid()}
    with pytest.raises(InvalidArgument, match="fileFormat 'PNG'.*allowed: 'GEO_TIFF'"):
        start_export({**params, "fileFormat": "PNG"}, tmp_path / "a.tif", client=client)
    with pytest.raises(InvalidArgument, match="visualizationOptions"):
        start_export({**params, "visualizationOptions": {}}, tmp_path / "a.tif", client=client)
    assert list(tmp_path.iterdir()) == []


def test_bad_scheduler_address_names_it(monkeypatch):
    monkeypatch.setattr(big_export, "CONNECT_TIMEOUT", 1.0)
    with pytest.raises(SchedulerUnavailable, match="tcp://127.0.0.1:9"):
        connect("tcp://127.0.0.1:9")
    with pytest.raises(SchedulerUnavailable, match="'  '"):
        connect("  ")
    monkeypatch.setenv("VIEWER_DASK_SCHEDULER", "tcp://127.0.0.1:9")
    with pytest.raises(SchedulerUnavailable, match="cannot be reached"):
        connect()


def test_cli_dask_scheduler_flag_stops_the_start(monkeypatch, capsys):
    from viewer.cli import main

    monkeypatch.setattr(big_export, "CONNECT_TIMEOUT", 1.0)
    monkeypatch.setenv("VIEWER_DASK_SCHEDULER", "")  # recorded, so the value serve sets is undone after
    assert main(["serve", "--port", "0", "--dask-scheduler", "tcp://127.0.0.1:9"]) == 1
    assert "Dask scheduler 'tcp://127.0.0.1:9' cannot be reached" in capsys.readouterr().err


@pytest.fixture
def export_panel(client, tmp_path, monkeypatch) -> ExportPanel:
    """The app's export card over a map of Landsat true colour (selected), exports in ``tmp_path``."""
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path))
    m = Map()
    m.add_layer(Image(LANDSAT), {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 13000}, "tc")
    m.state.selected = "tc"
    return ExportPanel(m.state, client=client)


def test_export_card_progress_reaches_100_and_offers_the_file(export_panel, tmp_path):
    panel = export_panel
    panel.big_scale.value = 15.0  # half the native 30 m
    panel.start_big()
    deadline = time.time() + 60
    while panel.big_download.visible is False and time.time() < deadline:
        time.sleep(0.1)
        panel.poll_big()
    assert panel.big_progress.value == 100 and panel.big_download.visible
    assert panel.big_status.object.startswith("done: ") and not panel.big_cancel.visible
    path = panel.big_download.file
    assert path.startswith(str(tmp_path / "exports")) and path.endswith(".tif")
    with rasterio.open(path) as ds:
        assert ds.transform.a == 15.0 and ds.crs.to_epsg() == 32616 and ds.count == 3
        assert list(ds.descriptions) == ["B4", "B3", "B2"] and ds.read(1).max() > 6000
    assert panel.big_download.filename == Path(path).name and panel.big_download.filename.startswith("tc-")


@pytest.mark.browser
def test_export_card_in_the_browser_offers_the_cog(chromium, viewer_server, tmp_path):
    from test_ui_browser import App

    context = chromium.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    app = App(context.new_page(), viewer_server)
    try:
        app.open()
        app.page.get_by_text("Export", exact=True).click()  # expand the export card
        app.page.get_by_role("button", name="Big GeoTIFF (COG) of the layer").click()
        download = app.page.get_by_text(re.compile(r"^Download the COG \([\d.]+ MB\)"))
        download.wait_for(timeout=120000)  # the first export starts the local cluster's worker processes
        assert app.page.get_by_text(re.compile(r"^done: \d+ chunks? in [\d.]+ s")).count() == 1
        bar = app.page.locator("progress").first
        assert bar.get_attribute("value") == "100"
        app.page.screenshot(path=str(Path(os.environ.get("VIEWER_SCREENSHOTS", tmp_path)) / "big_export_card.png"))
        with app.page.expect_download(timeout=30000) as info:
            download.click()
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
        with rasterio.open(saved) as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG" and ds.crs is not None
            assert ds.read(1).max() > 0
        app.assert_no_errors()
    finally:
        context.close()


def test_in_memory_arrays_travel_to_a_fresh_process(tmp_path):
    """Image.from_array lives in this process only: the request carries its data, and a new
    process (as a Dask worker process is) renders a chunk equal to computePixels here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    arr = np.random.default_rng(0).integers(0, 1000, (300, 400)).astype(np.int16)
    image = Image.from_array(arr, crs="EPSG:32616", transform=[30, 0, 452475, 0, -30, 3408645]).multiply(2)
    grid = {"dimensions": {"width": 1600, "height": 1200}, "crsCode": "EPSG:32616",
            "affineTransform": {"scaleX": 7.5, "shearX": 0.0, "translateX": 452475.0,
                                "shearY": 0.0, "scaleY": -7.5, "translateY": 3408645.0}}
    request = prepare_big({"expression": image, "grid": grid})
    assert list(request.arrays) and all(isinstance(v[0], np.ndarray) for v in request.arrays.values())
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        values, valid = pool.submit(render_chunk, request.to_dict(), (512, 512, 512, 512), request.arrays).result()
    expected, _, _, _ = one_piece(image, prepare_big({"expression": image, "grid": grid}).grid
                                  .window(512, 512, 512, 512).to_dict())
    assert values.tobytes() == expected.tobytes() and valid is None


def test_export_card_cancel_and_size_cap(export_panel, tmp_path):
    panel = export_panel
    panel.big_scale.value = 1.0  # 3 bands at 1 m over the view: over the app's 512 MiB cap
    panel.start_big()
    deadline = time.time() + 30
    while "limit" not in panel.big_status.object and time.time() < deadline:
        time.sleep(0.05)
        panel.poll_big()
    assert "MiB uncompressed; the limit here is 512 MiB" in panel.big_status.object
    assert not panel.big_download.visible and not panel.big_cancel.visible
    panel.big_scale.value = 4.0
    panel.start_big()
    while (panel.job is None or panel.job.progress[0] < 1) and time.time() < deadline:
        time.sleep(0.02)
        panel.poll_big()
    assert panel.big_cancel.visible and panel.job.progress[1] > 4, (panel.big_status.object, panel.job)
    panel.cancel_big()
    while panel.big_cancel.visible and time.time() < deadline:
        time.sleep(0.05)
        panel.poll_big()
    assert panel.big_status.object == "cancelled; no file written" and not panel.big_download.visible
    assert list((tmp_path / "exports").iterdir()) == []


def test_app_exports_keep_the_newest_files_and_never_a_running_exports_temporaries(tmp_path, monkeypatch):
    from viewer.ui.export import BIG_KEEP, big_export_path

    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path))
    folder = tmp_path / "exports"
    folder.mkdir()
    running = folder / ".a-1.tif.0123456789ab.chunks.tif"
    running.write_bytes(b"x")
    for i in range(BIG_KEEP + 2):
        (folder / f"old-{i}.tif").write_bytes(b"x")
        os.utime(folder / f"old-{i}.tif", (1000 + i, 1000 + i))
    path = big_export_path("../../etc/passwd layer")
    assert path.parent == folder and path.name.startswith("etc_passwd_layer-") and path.suffix == ".tif"
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == [running.name] + [f"old-{i}.tif" for i in range(3, BIG_KEEP + 2)]  # room for the new one


def _descendants() -> set[int]:
    """Process ids of this process's children and their children (from /proc), without
    multiprocessing's resource tracker (one small process kept for the life of its parent)."""
    found, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            todo.extend(kids - found)
            found |= kids
    return {p for p in found if b"resource_tracker" not in _cmdline(p)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_the_local_cluster_stops_when_idle_and_starts_again(tmp_path, monkeypatch):
    """No client given: the local cluster's worker processes run the export, are gone LOCAL_IDLE_S
    after it ended (a server's memory at rest), and the next export starts them again."""
    monkeypatch.setattr(big_export, "LOCAL_IDLE_S", 1.5)
    image, grid = CASES["nearest"](), lattice_grid(900, 700)
    before = _descendants()
    first = start_export({"expression": image, "grid": grid}, tmp_path / "a.tif", chunk=256).result(120)
    workers = _descendants() - before
    assert workers and all(_alive(p) for p in workers), "the export ran on local worker processes"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and ("local" in big_export._clients or any(_alive(p) for p in workers)):
        time.sleep(0.25)
    assert "local" not in big_export._clients
    left = [(p, _cmdline(p)[:200]) for p in workers if _alive(p)]
    assert not left, f"the idle cluster's worker processes are gone: {left}"
    second = start_export({"expression": image, "grid": grid}, tmp_path / "b.tif", chunk=256).result(120)
    with rasterio.open(first) as a, rasterio.open(second) as b:
        assert a.read().tobytes() == b.read().tobytes() and a.read(1).max() > 0
    expected, _, _, _ = one_piece(image, grid)
    with rasterio.open(second) as b:
        assert b.read().tobytes() == expected.tobytes()
    deadline = time.monotonic() + 60  # leave no worker processes behind
    while time.monotonic() < deadline and "local" in big_export._clients:
        time.sleep(0.25)
    assert "local" not in big_export._clients
