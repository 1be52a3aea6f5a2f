"""Browser fixtures: the system Chromium through Playwright, and a real ``viewer serve``."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def find_chromium() -> str | None:
    """``$VIEWER_CHROMIUM``, else the system Chromium (``/usr/bin/chromium`` first)."""
    env = os.environ.get("VIEWER_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
        if path:
            return path
    return None


def _no_browser(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tests must run)")
    pytest.skip(f"{reason}; install Debian's chromium (apt-get install chromium) to run the browser tests")


@pytest.fixture(autouse=True)
def _no_borrowed_event_loop(request):
    """Tests that drive no browser run as a script does, without a running event loop.

    Playwright's sync API (the session-wide ``chromium`` fixture) leaves its event loop marked
    as running in the main thread for the rest of the session, where it never runs a task: code
    that schedules work when a loop runs (``viewport.spawn``) would then wait forever, and a test
    would pass or fail by the order the files run in."""
    if "chromium" in request.fixturenames:
        yield
        return
    loop = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(loop)


@pytest.fixture(scope="session")
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("playwright is not installed")
    path = find_chromium()
    if path is None:
        _no_browser("no Chromium browser found (looked for $VIEWER_CHROMIUM, /usr/bin/chromium, chromium, "
                    "chromium-browser, google-chrome)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(cmd: list[str], url: str, log: Path, env: dict, what: str, cwd: Path | None = None):
    """Run the server ``cmd`` (output to ``log``) until ``url`` answers 200, then stop it on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"{what} did not start: {log.read_text()[-3000:]}")
        time.sleep(0.3)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def viewer_serve(state: Path, log: Path, *args: str, **env: str):
    """``viewer serve`` (more ``args``, more ``env``) on a free loopback port with its own state folder,
    until its page answers; yields (process, base URL)."""
    port = _free_port()
    environ = dict(os.environ, VIEWER_STATE_DIR=str(state), PYTHONUNBUFFERED="1", **env)
    environ.pop("VIEWER_TILE_URL", None)
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "viewer.cli", "serve", "--port", str(port), "--address", "127.0.0.1", *args]
    with served(cmd, url, log, environ, "viewer serve") as proc:
        yield proc, url


@pytest.fixture(scope="session")
def viewer_server(tmp_path_factory):
    """``viewer serve`` in a subprocess on a free port; yields its base URL."""
    with viewer_serve(tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("server") / "server.log") as (_, url):
        yield url
