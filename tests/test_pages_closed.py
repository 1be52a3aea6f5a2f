"""When the last page closes, what the render processes cached for it goes back to the system.

A real ``viewer serve`` with two render processes and real Chromium pages: the workers that drew a
page's tiles hold its GDAL blocks and index maps (about 50 MB each with the demo); they stop once
no page is open (Bokeh destroys a closed page's session 15-18 s after it closed), not only after
two minutes without a tile, and a fresh worker stands by. While another page is open they stay.
Allocator settings given to ``viewer serve`` stay with the server process.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import viewer_serve

TILE_PATH = "/tiles/"


def _children(pid: int) -> dict[int, bytes]:
    """Child processes of ``pid`` and their command lines."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("PPid:"))
        if ppid == pid:
            kids[int(entry)] = cmdline
    return kids


def _workers(pid: int) -> set[int]:
    """The render processes of the server ``pid`` (multiprocessing's spawned children, not its resource tracker)."""
    return {k for k, cmd in _children(pid).items() if b"spawn_main" in cmd and b"resource_tracker" not in cmd}


def _until(condition, what: str, bound: float) -> None:
    end = time.monotonic() + bound
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"still not {what} after {bound:g} s")
        time.sleep(0.25)


def _open(chromium, url: str):
    """A page of the app in its own browser context, once it has drawn map tiles."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    with page.expect_response(lambda r: TILE_PATH in r.url and r.status == 200, timeout=90_000):
        page.goto(url)
    return context


def test_workers_that_drew_tiles_stop_once_no_page_is_open(chromium, tmp_path):
    with viewer_serve(tmp_path / "state", tmp_path / "server.log", "--session-pool", "2",
                      VIEWER_RENDER_PROCESSES="2") as (server, url):
        _until(lambda: len(_workers(server.pid)) == 1, "one render process standing by", 30)
        first = _open(chromium, url)
        second = _open(chromium, url)
        _until(lambda: len(_workers(server.pid)) == 2, "two render processes", 30)
        drew = _workers(server.pid)

        first.close()
        time.sleep(30)  # the first page's session destroyed; the second page is still open
        assert _workers(server.pid) == drew

        second.close()
        _until(lambda: not (drew & _workers(server.pid)),
               "stopped after the last page closed (well before the 2 minutes without a tile)", 60)
        _until(lambda: len(_workers(server.pid)) == 1, "a fresh render process standing by", 30)


def test_allocator_settings_are_the_server_process_own(tmp_path):
    """``PYTHONMALLOC=malloc MALLOC_ARENA_MAX=2`` (DEPLOY.md, "Memory") apply to the server process;
    its render processes start without them (CPython's allocator renders tiles faster)."""
    with viewer_serve(tmp_path / "state", tmp_path / "server.log", "--session-pool", "0",
                      VIEWER_RENDER_PROCESSES="1", PYTHONMALLOC="malloc", MALLOC_ARENA_MAX="2") as (server, _):
        _until(lambda: len(_workers(server.pid)) == 1, "one render process standing by", 30)
        (worker,) = _workers(server.pid)
        server_env = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        worker_env = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
        assert b"PYTHONMALLOC=malloc" in server_env and b"MALLOC_ARENA_MAX=2" in server_env
        assert not [v for v in worker_env if v.startswith((b"PYTHONMALLOC=", b"MALLOC_ARENA_MAX="))]
        assert any(v.startswith(b"VIEWER_STATE_DIR=") for v in worker_env)  # the rest of it is passed on
