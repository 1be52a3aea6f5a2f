"""Map tiles rendered in worker processes (``viewer serve``'s default): the same pixels as in the
server's own process, errors with their types, a lost or stalled worker replaced, and a layer only
the server process holds still served."""
from __future__ import annotations

import asyncio
import io
import os
import shutil

import numpy as np
import pytest
import rasterio
from PIL import Image as PILImage
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from viewer import Image
from viewer.core.errors import SourceChanged
from viewer.core.layer_store import spec_path
from viewer.core.layers import UnknownLayer, class_layer, image_layer, register
from viewer.core.tiles import render_tile
from viewer.server.errors import RenderUnavailable
from viewer.server.render_procs import RenderProcesses
from viewer.server.routes import make_app

TILES = [(12, 1053, 1680), (13, 2107, 3360), (14, 4214, 6721), (11, 526, 840)]  # over the Landsat sample


@pytest.fixture()
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))  # the workers read the same folder
    return tmp_path


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGBA"))


def run(coro_fn, n: int = 2, at_rest: int | None = None, **options):
    """``coro_fn(renderer)`` on a fresh event loop with ``n`` render processes (``at_rest`` of them
    started before the first tile; ``options`` as :class:`RenderProcesses` takes them), stopped after."""
    async def main():
        renderer = RenderProcesses(n, **options)
        renderer.start(at_rest)
        try:
            return await coro_fn(renderer)
        finally:
            renderer.close()
    return asyncio.run(main())


async def until(condition, what: str) -> None:
    """Wait (at most 10 s) until ``condition()`` holds."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still not {what}")


def test_workers_draw_the_pixels_the_server_process_draws(state):
    rgb = image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4", "B3", "B2"], "min": 7000, "max": 14000})
    classes = class_layer(Image("VIEWER/SAMPLE_CLASSES/LC08_RULES"))
    jobs = [(register(spec), spec, *t) for spec in (rgb, classes) for t in TILES]

    async def draw(renderer):
        return await asyncio.gather(*(renderer.render(token, z, x, y, "png") for token, _, z, x, y in jobs))

    drawn = run(draw)
    for (token, spec, z, x, y), data in zip(jobs, drawn):
        here = pixels(render_tile(spec, z, x, y, "png"))
        assert here[..., 3].any(), (z, x, y)  # tiles over the scene, not empty ones
        np.testing.assert_array_equal(pixels(data), here)


def test_errors_keep_their_type_and_message(state):
    async def unknown(renderer):
        with pytest.raises(UnknownLayer, match="unknown layer token '(ab)+'"):
            await renderer.render("ab" * 32, *TILES[0], "png")
        return True
    assert run(unknown, 1)

    path = state / "b5.tif"
    shutil.copy(_landsat_b5(), path)
    token = register(image_layer(Image(path), {"min": 6000, "max": 20000}))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed after the layer was made

    async def changed(renderer):
        with pytest.raises(SourceChanged, match="its file changed since this layer was made"):
            await renderer.render(token, *TILES[0], "png")
        return True
    assert run(changed, 1)


def _landsat_b5() -> str:
    from viewer.core.catalog import get_catalog
    return str(next(p for p in get_catalog().local_files() if p.endswith("landsat8/B5.tif")))


def test_a_lost_worker_is_replaced_and_its_tile_fails_with_a_clear_error(state):
    spec = image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B5"], "min": 6000, "max": 20000})
    token = register(spec)
    want = pixels(render_tile(spec, *TILES[0], "png"))

    async def scenario(renderer):
        assert await renderer.render(token, *TILES[0], "png")  # both workers up
        first = {w.process.pid for w in renderer._workers}
        tasks = [asyncio.ensure_future(renderer.render(token, *TILES[i % 4], "png")) for i in range(12)]
        await asyncio.sleep(0)  # the first jobs are in the workers' pipes
        for w in list(renderer._workers):
            os.kill(w.process.pid, 9)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:  # drawn in full by a worker, or failed with a clear error: never a wrong tile
            if isinstance(r, BaseException):
                assert isinstance(r, RenderUnavailable) and "render process stopped" in str(r), r
        assert not all(isinstance(r, BaseException) for r in results)  # the rest went to the new workers
        again = await renderer.render(token, *TILES[0], "png")
        np.testing.assert_array_equal(pixels(again), want)
        assert len(renderer._workers) == 2 and not first & {w.process.pid for w in renderer._workers}
        return True
    assert run(scenario)


def test_a_tile_nobody_waits_for_stops_its_worker(state):
    """A render past its deadline is cancelled; its worker, rendering it for ``stall_s`` already, is stopped
    (a stalled read cannot keep a core) and replaced."""
    token = register(image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B5"], "min": 6000, "max": 20000}))

    async def scenario(renderer):
        await renderer.render(token, *TILES[0], "png")
        (worker,) = renderer._workers
        task = asyncio.ensure_future(renderer.render(token, *TILES[1], "png"))
        await asyncio.sleep(0)
        assert worker.jobs  # sent to the worker
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        worker.process.join(5)
        assert worker.process.exitcode is not None  # stopped
        assert pixels(await renderer.render(token, *TILES[1], "png"))[..., 3].any()  # a new worker draws
        assert renderer._workers[0] is not worker
        return True
    assert run(scenario, 1, stall_s=0.0)


def test_a_tile_cancelled_as_soon_as_sent_leaves_its_worker_alone(state):
    """On an overloaded server a tile's deadline may pass in the queue, right after it was sent: its
    worker is not stopped for that (a restart would cost more), the answer is dropped."""
    spec = image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B5"], "min": 6000, "max": 20000})
    token = register(spec)

    async def scenario(renderer):
        await renderer.render(token, *TILES[0], "png")
        (worker,) = renderer._workers
        task = asyncio.ensure_future(renderer.render(token, *TILES[1], "png"))
        await asyncio.sleep(0)
        assert worker.jobs
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        again = await renderer.render(token, *TILES[2], "png")  # answered after the dropped one
        np.testing.assert_array_equal(pixels(again), pixels(render_tile(spec, *TILES[2], "png")))
        assert renderer._workers == [worker] and worker.process.is_alive()
        return True
    assert run(scenario, 1)


def test_over_http_a_layer_only_the_server_process_holds_is_drawn_there(state):
    """A spec whose file left the state folder (pruned, or a folder it could not write) is still in the
    server process's memory: the worker does not know it, the server draws it on a render thread."""
    spec = image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B4", "B3", "B2"], "min": 7000, "max": 14000})
    token = register(spec)
    spec_path(state / "state", token).unlink()

    async def scenario(renderer):
        sock, port = bind_unused_port()
        server = HTTPServer(make_app(renderer=renderer))
        server.add_sockets([sock])
        try:
            client = AsyncHTTPClient()
            z, x, y = TILES[1]
            response = await client.fetch(f"http://127.0.0.1:{port}/tiles/{token}/{z}/{x}/{y}.png")
            return response.code, response.body
        finally:
            server.stop()

    status, body = run(scenario, 1)
    assert status == 200
    np.testing.assert_array_equal(pixels(body), pixels(render_tile(spec, *TILES[1], "png")))


def test_one_worker_at_rest_and_the_others_with_the_first_tile(state):
    """``viewer serve`` starts one render process with the server: a page's first tiles find it ready;
    the first tile starts the others."""
    spec = image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B5"], "min": 6000, "max": 20000})
    token = register(spec)

    async def scenario(renderer):
        await until(lambda: renderer.ready, "the worker at rest up")
        await asyncio.sleep(0.5)
        assert len(renderer._workers) == 1 and renderer._starting == 0  # one, and no other on its way
        await renderer.render(token, *TILES[0], "png")
        assert len(renderer._workers) + renderer._starting == 3
        return True
    assert run(scenario, 3, at_rest=1)


def test_idle_workers_stop_and_a_fresh_one_stands_by(state):
    """After ``idle_s`` without a tile a worker that rendered stops (its caches go with it) and a fresh
    one is started to stand by; that one is kept while nothing asks, and renders the next tile."""
    spec = image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B5"], "min": 6000, "max": 20000})
    token = register(spec)
    want = pixels(render_tile(spec, *TILES[0], "png"))

    async def scenario(renderer):
        assert not renderer.ready  # just started: importing
        np.testing.assert_array_equal(pixels(await renderer.render(token, *TILES[0], "png")), want)
        assert renderer.ready
        (worker,) = renderer._workers
        await until(lambda: worker not in renderer._workers, "stopped when idle")  # idle_s = 1
        # reaped by the pool's own thread (a second join here could miss its status)
        await until(lambda: worker.process.exitcode is not None, "exited")
        assert worker.process.exitcode == 0  # told to stop
        await until(lambda: renderer.ready, "a fresh worker standing by")
        (standby,) = renderer._workers
        assert standby is not worker and not standby.answered
        await asyncio.sleep(2.5)  # idle again: a worker that never rendered is kept
        assert renderer._workers == [standby] and standby.process.exitcode is None
        np.testing.assert_array_equal(pixels(await renderer.render(token, *TILES[0], "png")), want)
        assert renderer._workers == [standby] and standby.answered
        return True
    assert run(scenario, 1, idle_s=1.0)


def test_once_no_page_is_open_the_workers_that_rendered_stop_after_a_short_quiet(state):
    """``release_when_quiet`` (called when the last page's session is destroyed) stops the workers that
    rendered after ``quiet_s`` without a tile, not ``idle_s``; a tile asked for in the meantime means
    someone still uses the tiles: ``idle_s`` again, and the workers stay."""
    spec = image_layer(Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B5"], "min": 6000, "max": 20000})
    token = register(spec)
    want = pixels(render_tile(spec, *TILES[0], "png"))

    async def scenario(renderer):
        await renderer.render(token, *TILES[0], "png")
        (worker,) = renderer._workers
        renderer.release_when_quiet(quiet_s=1.5)
        await asyncio.sleep(0.5)
        np.testing.assert_array_equal(pixels(await renderer.render(token, *TILES[1], "png")),
                                      pixels(render_tile(spec, *TILES[1], "png")))
        await asyncio.sleep(3.0)  # past quiet_s, far from idle_s: kept
        assert renderer._workers == [worker] and worker.process.exitcode is None
        renderer.release_when_quiet(quiet_s=1.5)
        await until(lambda: worker not in renderer._workers, "stopped once quiet")
        await until(lambda: worker.process.exitcode is not None, "exited")
        assert worker.process.exitcode == 0  # told to stop
        await until(lambda: renderer.ready, "a fresh worker standing by")
        (standby,) = renderer._workers
        assert standby is not worker and not standby.answered
        np.testing.assert_array_equal(pixels(await renderer.render(token, *TILES[0], "png")), want)
        return True
    assert run(scenario, 1, idle_s=600.0)
