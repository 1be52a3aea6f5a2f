"""The tile endpoint's activity and the view statistics that wait for it; the memory release after sessions."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

import viewer
from viewer.core.layers import image_layer, register
from viewer.server import make_app
from viewer.server.activity import TileActivity, tile_activity
from viewer.server import memory
from viewer.server.memory import HAS_MALLOC_TRIM, release_memory, release_memory_soon, when_no_page_is_open
from viewer.ui import viewport
from viewer.ui.state import MapState, make_layer


def test_wait_quiet_returns_at_once_when_no_tile_was_asked_for():
    act = TileActivity()
    assert act.in_flight == 0
    assert asyncio.run(act.wait_quiet(quiet=0.1, cap=5.0)) < 5.0


def test_wait_quiet_waits_for_the_tile_in_flight():
    act = TileActivity()
    order: list[str] = []

    async def scenario() -> None:
        act.begin()
        waiter = asyncio.ensure_future(act.wait_quiet(quiet=0.02, cap=30.0))
        await asyncio.sleep(0.1)
        order.append("tile answered" if not waiter.done() else "waiter returned early")
        act.end()
        await waiter
        order.append("waiter returned")

    asyncio.run(scenario())
    assert order == ["tile answered", "waiter returned"]
    assert act.in_flight == 0


def test_wait_quiet_gives_up_at_the_cap():
    act = TileActivity()
    act.begin()  # never answered: a busy server
    waited = asyncio.run(act.wait_quiet(quiet=10.0, cap=0.05))
    assert act.in_flight == 1 and waited >= 0.05


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tile_requests_are_counted_in_and_out(tmp_path, monkeypatch):
    """Answered, 304 and failed tile requests all leave the count where it was."""
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path))
    token = register(image_layer(viewer.Image.from_array(np.arange(64 * 64, dtype="uint16").reshape(64, 64)),
                                 {"min": 0, "max": 4095}))

    async def scenario() -> list[int]:
        sock, port = bind_unused_port()
        server = HTTPServer(make_app())
        server.add_sockets([sock])
        client = AsyncHTTPClient()
        base = f"http://127.0.0.1:{port}/tiles"
        codes = []
        try:
            for path in (f"{token}/0/0/0.png", f"{token}/0/0/0.png", "not-a-token/0/0/0.png", f"{token}/1/5/0.png"):
                r = await client.fetch(f"{base}/{path}", raise_error=False)
                codes.append(r.code)
            etag = (await client.fetch(f"{base}/{token}/0/0/0.png")).headers["ETag"]
            r = await client.fetch(f"{base}/{token}/0/0/0.png", headers={"If-None-Match": etag}, raise_error=False)
            codes.append(r.code)
        finally:
            server.stop()
        return codes

    before = tile_activity.in_flight
    codes = asyncio.run(scenario())
    assert codes == [200, 200, 400, 400, 304]  # rendered, from the cache, bad token, bad tile, not modified
    assert tile_activity.in_flight == before
    assert tile_activity.quiet_for() >= 0


def test_release_memory_runs_where_there_is_malloc_trim():
    assert release_memory() is HAS_MALLOC_TRIM


def test_release_memory_soon_runs_once_for_a_burst(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(memory, "release_memory", lambda: calls.append(1) or True)

    async def scenario() -> None:
        for _ in range(5):
            release_memory_soon(delay=0.05)
        await asyncio.sleep(0.5)

    asyncio.run(scenario())
    assert calls == [1]


def test_callbacks_run_when_the_last_closing_session_finds_no_page_open(monkeypatch):
    """The pages count of the burst's last call decides: callbacks run once, and not while a page is open."""
    monkeypatch.setattr(memory, "release_memory", lambda: True)
    calls: list[str] = []
    remove = when_no_page_is_open(lambda: calls.append("released"))

    async def scenario(counts: list[int]) -> None:
        for n in counts:
            release_memory_soon(delay=0.05, pages_open=lambda n=n: n)
        await asyncio.sleep(0.3)

    try:
        asyncio.run(scenario([2, 1]))
        assert calls == []
        asyncio.run(scenario([1, 0]))
        assert calls == ["released"]
        remove()
        asyncio.run(scenario([0]))
        assert calls == ["released"]
    finally:
        remove()


def test_view_statistics_start_once_the_tiles_are_served(tmp_path, monkeypatch):
    """After a view change the class counts wait while a tile request of this process is in flight
    (up to the cap), then run on the one statistics thread and give the file's counts."""
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(viewport, "TILES_WAIT_CAP_S", 30.0)
    state = MapState(debounce=0.0)
    rules = viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")
    state.add(make_layer(rules, None, "rules", True, 1.0, kind="classes"))
    grid = rules.native_grid()
    x0, y0, x1, y1 = grid.bounds_in(viewport.MERCATOR)
    seen: list[str] = []

    async def scenario() -> None:
        tile_activity.begin()  # the browser is fetching the new view's tiles
        try:
            state.view = (x0, y0, x1, y1)  # schedules the statistics
            await asyncio.sleep(0.5)
            seen.append("counts before the tiles" if state.class_stats else "no counts while tiles load")
        finally:
            tile_activity.end()
        for _ in range(200):
            await asyncio.sleep(0.05)
            if state.class_stats:
                break
        seen.append("counts after the tiles" if state.class_stats else "no counts")

    asyncio.run(scenario())
    assert seen == ["no counts while tiles load", "counts after the tiles"]
    counts = state.class_stats["rules"]
    assert sum(c["count"] for c in counts) > 0 and {c["pixels"] for c in counts} == {"native"}
    assert state.stats_error == ""
