"""Safe to serve (issue 7): escaped names in the page, login, loopback by default, clean stop.

The browser tests run in headless Chromium (see ``conftest.py``); the others start
``viewer serve`` in a subprocess on a free port with a private ``VIEWER_STATE_DIR``.
"""
from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from conftest import _free_port

TESTS = Path(__file__).resolve().parent
P_IMG = '<img src=x onerror="window.__xss=1">'
P_SCRIPT = "<script>window.__xss=2</script>"
P_SVG = '<svg onload="window.__xss=3"></svg>'


# helpers ------------------------------------------------------------------------------------
@contextlib.contextmanager
def running(command: list[str], tmp_path: Path, port: int, env: dict | None = None,
            ) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """Run a server command; yield (process, base URL, log file) once it answers HTTP."""
    full_env = dict(os.environ, VIEWER_STATE_DIR=str(tmp_path / "state"), PYTHONUNBUFFERED="1")
    full_env.pop("VIEWER_TILE_URL", None)
    full_env.update(env or {})
    log = tmp_path / f"server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=TESTS.parent)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 90
        while not _answers(url):
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"server did not start: {log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield proc, url, log
    finally:
        workers = _children(proc.pid)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        _kill(workers)  # in case the parent left them running


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer: the server is up
    except OSError:
        return False


def viewer_serve(*args: str, port: int) -> list[str]:
    return [sys.executable, "-m", "viewer.cli", "serve", "--port", str(port), *args]


def _children(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in children.read_text().split()]
    return found


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(url: str, data: dict | None = None, cookies: http.cookiejar.CookieJar | None = None,
            follow: bool = True) -> tuple[int, dict, str]:
    """(status, headers, body) of a GET (or a form POST with ``data``)."""
    handlers: list = [urllib.request.HTTPCookieProcessor(cookies if cookies is not None else http.cookiejar.CookieJar())]
    if not follow:
        handlers.append(_NoRedirect())
    opener = urllib.request.build_opener(*handlers)
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


def login(base: str, user: str, password: str) -> tuple[http.cookiejar.CookieJar, int, str]:
    """Log in through Panel's form as a browser does; (cookies, status, body of the page after it)."""
    jar = http.cookiejar.CookieJar()
    request(base, cookies=jar)  # -> /login?next=/ (sets the next_url cookie)
    status, _, body = request(base + "login", {"username": user, "password": password}, cookies=jar)
    return jar, status, body


# an app whose names carry script ----------------------------------------------------------------
def payload_app():
    """The app with a layer, band, class names and a W&B mask key that carry HTML/script."""
    import panel as pn

    import viewer
    from viewer.core.errors import InvalidArgument
    from viewer.ui.app import build_app
    from viewer.ui.notify import notify_error

    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    seg = (np.arange(64 * 64).reshape(64, 64) // 1400).astype(np.uint8)  # classes 0, 1, 2
    labels = {0: P_IMG, 1: P_SCRIPT, 2: P_SVG}
    img = viewer.Image.from_array(pixels, band_names=[P_IMG, P_SCRIPT, "b"],
                                  masks={P_IMG: {"mask_data": seg, "class_labels": labels}})
    m = viewer.Map()
    m.add_layer(img, {"bands": [P_IMG, P_SCRIPT, "b"], "min": 0, "max": 255}, P_SCRIPT)  # + overlay P_IMG
    m.add_overlay(viewer.ImageMask({"mask_data": seg[::-1].copy(), "class_labels": labels}, P_SVG))
    m.add_mask_layer(viewer.Image.from_array((seg == 1).astype(np.uint8), band_names=[P_SVG]), f"{P_IMG} mask")
    template = build_app(map_obj=m)
    pn.state.onload(lambda: notify_error(InvalidArgument(f"no layer named {P_IMG}"), "test"))
    return template


def serve_test_app(name: str, port: int) -> None:
    """Serve ``name()`` (a factory of this module) with the tile routes (run in a subprocess)."""
    import panel as pn

    from viewer.server.routes import tile_routes

    factory = globals()[name]
    pn.serve({"/": factory}, port=port, address="127.0.0.1", websocket_origin=[f"127.0.0.1:{port}"],
             show=False, extra_patterns=tile_routes(), verbose=False)


def app_command(name: str, port: int) -> list[str]:
    """The command that serves the factory ``name`` of this module."""
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_security_ui as t; " \
           f"t.serve_test_app({name!r}, {port})"
    return [sys.executable, "-c", code]


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


# 4. stored XSS ------------------------------------------------------------------------------------
@pytest.mark.browser
def test_names_with_script_show_as_text_and_never_run(page, tmp_path):
    port = _free_port()
    with running(app_command("payload_app", port), tmp_path, port) as (_, url, _log):
        page.goto(url)
        page.get_by_text("click a class to hide/show it").first.wait_for(timeout=60000)
        page.locator(".notyf__toast").first.wait_for(timeout=20000)
        box = page.locator("canvas").first.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # the inspector
        page.locator(".viewer-inspect-layer").first.wait_for(timeout=20000)
        page.wait_for_timeout(1000)
        assert page.evaluate("typeof window.__xss") == "undefined"
        # open the overlay's card and its colour pickers (class names as labels)
        title = page.get_by_text(f"{P_IMG} · classes")
        title.first.click()
        page.locator(".card").filter(has=title).first.get_by_text("class colours").click()
        page.wait_for_timeout(1000)
        page.screenshot(path="/tmp/viewer-xss.png", full_page=True)
        assert page.evaluate("typeof window.__xss") == "undefined"
        for title in (f"{P_SCRIPT} · image", f"{P_IMG} · classes", f"{P_IMG} mask · mask"):  # layer cards
            assert page.get_by_text(title, exact=True).count() == 1, title  # (the mask key names an overlay)
        for label in (f"0: {P_IMG}", f"1: {P_SCRIPT}", f"2: {P_SVG}"):  # class colour pickers
            assert page.get_by_text(label, exact=True).count() >= 1, label
        for payload in (P_IMG, P_SCRIPT, P_SVG):
            assert page.locator(".viewer-legend-title", has_text=payload).count() >= 1  # legends
            assert page.get_by_role("button", name=payload).count() >= 1  # class legend buttons
        inspector = page.locator(".viewer-inspect-layer").first.inner_text()
        assert P_IMG in inspector or P_SCRIPT in inspector  # band and class names
        assert f"test: no layer named {P_IMG}" in page.locator(".notyf__toast").first.inner_text()
        assert page.locator("img[src=x]").count() == 0 and page.locator("svg[onload]").count() == 0


# 10. unusable layer state folder ------------------------------------------------------------------
@pytest.mark.browser
def test_unusable_state_folder_is_an_alert_in_the_page(page, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    port = _free_port()
    env = {"VIEWER_STATE_DIR": str(tmp_path / "a-file" / "layers")}
    with running(viewer_serve(port=port), tmp_path, port, env) as (_, url, _log):
        page.goto(url)
        alert = page.locator(".viewer-alert")
        alert.wait_for(timeout=60000)
        text = alert.inner_text()
        assert "could not be stored" in text and "a-file" in text and "VIEWER_STATE_DIR" in text
        # the rest of the page works: layer cards, legends with class counts of the view
        page.get_by_text("Landsat 8 true colour · image").first.wait_for(timeout=20000)
        vegetation = page.get_by_role("button", name="vegetation")
        vegetation.wait_for(timeout=20000)
        deadline = time.time() + 30
        while " px" not in vegetation.inner_text():
            assert time.time() < deadline, "no class counts"
            page.wait_for_timeout(200)
        assert "Traceback" not in page.content()


def test_a_layer_that_cannot_be_stored_keeps_the_map_and_says_why(tmp_path, monkeypatch):
    import viewer
    from viewer.ui.app import layer_errors_html

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "a-file" / "layers"))
    m = viewer.Map()
    layer = m.add_layer(viewer.Image.from_array(np.zeros((8, 8), np.uint8)), None, P_IMG)  # no exception
    assert "a-file" in layer.error and layer.token == layer.spec().token
    alert = layer_errors_html(m.state)
    assert "&lt;img src=x" in alert and "<img" not in alert
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))
    layer.gamma = 1.5  # stored again: the alert goes away
    assert layer.error == "" and layer_errors_html(m.state) == ""


# 5. --basic-auth ----------------------------------------------------------------------------------------
def test_basic_auth_with_a_user_password_file(tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("# viewers\n\nalice:s3cret:with:colons\nbob:hunter2\n")
    port = _free_port()
    with running(viewer_serve("--basic-auth", str(users), port=port), tmp_path, port) as (_, url, log):
        status, headers, _ = request(url, follow=False)
        assert status == 302 and urllib.parse.urljoin(url, headers["Location"]).startswith(url + "login")
        assert request(url + "tiles/" + "0" * 64 + "/0/0/0.png")[0] == 401
        _, _, body = login(url, "alice", "wrong")
        assert "Invalid username or password" in body
        jar, status, body = login(url, "alice", "s3cret:with:colons")
        assert status == 200 and "<title>viewer" in body
        status, _, body = request(url, cookies=jar)
        assert status == 200 and "<title>viewer" in body
        assert request(url + "tiles/" + "0" * 64 + "/0/0/0.png", cookies=jar)[0] != 401  # tiles behind login too
        assert login(url, "bob", "hunter2")[1] == 200
        out = log.read_text()
        assert "random secret" in out and "--cookie-secret" in out
        assert "hunter2" not in out and "Traceback" not in out


def test_component_urls_never_import_a_module_and_bad_ones_are_404(tmp_path):
    """Panel's /components/<module>/... imported any module a URL named (``this`` printed the Zen of
    Python into the log; ``antigravity`` opens a browser) and answered 500 for ``..``."""
    port = _free_port()
    with running(viewer_serve(port=port), tmp_path, port) as (_, url, log):
        for path in ("/components/this/a/b/c", "/components/antigravity/a/b/c", "/components/../../etc/passwd",
                     "/components/os.path/join/_css/x", "/components/panel/Row/_css/x.css"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)  # sent as is: no client-side normalisation of ".."
            response = conn.getresponse()
            assert response.status == 404, (path, response.status)
            conn.close()
        assert request(url)[0] == 200  # still serving
        out = log.read_text()
        assert "Beautiful is better than ugly" not in out and "Traceback" not in out


def test_basic_auth_with_one_shared_password(tmp_path):
    port = _free_port()
    with running(viewer_serve("--basic-auth", "shared-pass", port=port), tmp_path, port) as (_, url, log):
        assert request(url, follow=False)[0] == 302
        jar, status, body = login(url, "anyone", "shared-pass")
        assert status == 200 and "<title>viewer" in body
        assert "Invalid username or password" in login(url, "anyone", "other")[2]
        assert "shared password" in log.read_text()


# 6. loopback by default, workers stop with the parent ----------------------------------------------
def _listening_addresses(port: int) -> set[str]:
    """Local addresses in LISTEN state on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                found.add(".".join(str(b) for b in raw[::-1]) if len(raw) == 4 else raw.hex())
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc/net/tcp")
def test_serves_on_loopback_only_by_default(tmp_path):
    port = _free_port()
    with running(viewer_serve(port=port), tmp_path, port) as (_, url, log):
        assert _listening_addresses(port) == {"127.0.0.1"}
        assert f"serving http://127.0.0.1:{port}/" in log.read_text()
        assert "warning" not in log.read_text()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc/net/tcp")
def test_every_interface_only_when_asked_and_with_a_warning(tmp_path):
    port = _free_port()
    with running(viewer_serve("--address", "0.0.0.0", port=port), tmp_path, port) as (_, url, log):
        assert _listening_addresses(port) == {"0.0.0.0"}
        out = log.read_text()
        assert "warning: listening on every interface" in out and f"serving http://0.0.0.0:{port}/" in out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds worker processes in Linux /proc")
def test_sigterm_to_the_parent_stops_every_worker(tmp_path):
    port = _free_port()
    with running(viewer_serve("--num-procs", "2", port=port), tmp_path, port) as (proc, url, log):
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
            deadline = time.time() + 10
            while any(_alive(pid) for pid in workers) and time.time() < deadline:
                time.sleep(0.1)
            assert not any(_alive(pid) for pid in workers)
        finally:
            _kill(workers)
        assert log.read_text().count("viewer: serving") == 1
