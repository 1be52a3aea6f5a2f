"""Sessions built ahead: a plain page request gets a session that already exists.

A real Panel server (in a thread) with :func:`viewer.ui.session_pool.pooled_pages`; pages are
asked for over HTTP and their documents pulled over the websocket as a browser does.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import re
import time
import urllib.request

import panel as pn
import pytest
from bokeh.client import pull_session
from bokeh.core.json_encoder import serialize_json
from bokeh.core.serialization import Serialized
from bokeh.document import Document
from bokeh.models import Div, Plot
from bokeh.protocol.messages.pull_doc_reply import pull_doc_reply
from bokeh.util.token import get_session_id

from tests.test_server import free_port
from viewer.cli import build_parser
from viewer.core.errors import InvalidArgument
from viewer.ui.session_pool import SerializedAhead, SessionPool, building_ahead, pooled_pages


def _page_session(url: str) -> str:
    page = urllib.request.urlopen(url, timeout=60).read().decode()
    return get_session_id(re.search(r'"token":\s*"([^"]+)"', page).group(1))


def _until(condition, what: str, bound: float = 60.0) -> None:
    end = time.monotonic() + bound
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"still not {what} after {bound:g} s")
        time.sleep(0.05)


def _text(session) -> str:
    return " ".join(getattr(m, "text", "") or "" for m in session.document.roots[0].references())


@contextlib.contextmanager
def serving(app, pool: SessionPool, **server_options):
    """``app`` served by a real Panel server (a thread) whose pages come from ``pool``; yields its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    pn.config.reuse_sessions = "warm"
    with pooled_pages(pool):
        thread = pn.serve({"/": app}, port=port, address="127.0.0.1", websocket_origin=[f"127.0.0.1:{port}"],
                          show=False, start=True, threaded=True, verbose=False, **server_options)
        _until(lambda: _answers(base), "serving")
    try:
        yield base
    finally:
        thread.stop()
        pn.config.reuse_sessions = False


@pytest.fixture
def pooled_server():
    """A server whose sessions say which build they were; the pool holds 2, the files' state is a dict."""
    counter = itertools.count(1)
    files = {"identity": "a"}
    pool = SessionPool(2, idle_s=0.2, sources=lambda: files["identity"])
    with serving(lambda: pn.pane.Str(f"build {next(counter)}"), pool) as base:
        yield base, pool, files


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).read()
        return True
    except OSError:
        return False


def test_a_plain_page_gets_a_session_built_before_it_was_asked_for(pooled_server):
    base, pool, _files = pooled_server
    _until(lambda: len(pool.ready) == 2, "2 sessions ready")
    ready = pool.ready
    sid = _page_session(base)
    assert sid == ready[0] and pool.handed == 1
    session = pull_session(session_id=sid, url=base)
    try:  # the websocket got that very session, the pool's first (build 1 is Panel's page shell)
        assert re.findall(r"build \d+", _text(session)) == ["build 2"]
    finally:
        session.close()
    _until(lambda: len(pool.ready) == 2, "the pool refilled")
    assert pool.built == 3 and sid not in pool.ready


def _div_texts(serialized) -> list[str]:
    """The ``text`` of each Div in a serialized document (``Document.to_json()``)."""
    out = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("name") == "Div":
                out.append(value["attributes"]["text"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
    walk(serialized.content)
    return out


def test_a_document_serialized_ahead_is_what_its_pull_sends_until_it_changes():
    doc = Document()
    div = Div(text="first")
    doc.add_root(div)
    stale: list[int] = []
    copy = SerializedAhead(doc, on_stale=lambda: stale.append(1))
    made = doc.to_json()  # what Bokeh's PULL-DOC-REPLY calls
    assert copy.current and _div_texts(made) == ["first"] and doc.to_json() is made
    doc.add_timeout_callback(lambda: None, 1000)  # a session's timer is not in the serialized form
    assert copy.current and stale == []
    div.text = "second"
    assert not copy.current and stale == [1]
    assert _div_texts(doc.to_json()) == ["second"]  # a pull now serializes the document as it is
    div.text = "third"
    assert stale == [1]  # told once until made again
    copy.refresh()
    assert copy.current and _div_texts(doc.to_json()) == ["third"] and doc.to_json() is doc.to_json()
    assert doc.to_json(deferred=False)["roots"][0]["attributes"]["text"] == "third"


def test_a_pull_reply_of_a_copy_made_ahead_sends_its_json_encoded_ahead():
    doc = Document()
    div = Div(text="first")
    doc.add_root(div)
    copy = SerializedAhead(doc)
    reply = pull_doc_reply.create("1", doc)  # what the server sends a pulling browser
    fresh = serialize_json(Serialized(reply.content, reply.buffers))  # Bokeh's own encoding of it
    assert reply.content_json is copy.reply_json(reply.content["doc"]) and reply.content_json == fresh
    assert json.loads(reply.content_json)["doc"]["roots"][0]["attributes"]["text"] == "first"
    div.text = "second"  # stale: the reply is encoded afresh, from the document as it is
    reply = pull_doc_reply.create("2", doc)
    assert json.loads(reply.content_json)["doc"]["roots"][0]["attributes"]["text"] == "second"
    copy.refresh()
    reply = pull_doc_reply.create("3", doc)
    assert reply.content_json is copy.reply_json(reply.content["doc"])
    assert json.loads(reply.content_json)["doc"]["roots"][0]["attributes"]["text"] == "second"


def test_a_ready_session_changed_after_it_was_built_is_pulled_as_it_is_now(pooled_server):
    base, pool, _files = pooled_server
    _until(lambda: len(pool.ready) == 2, "2 sessions ready")
    ready = pool._ready[0]
    copy = ready.document.to_json  # the SerializedAhead the pool made
    assert copy.current  # serialized while the server was idle

    def rename() -> None:
        for model in ready.document.roots[0].references():
            if "build 2" in (getattr(model, "text", None) or ""):
                model.text = model.text.replace("build 2", "build 2, changed")
    ready._loop.add_callback(ready.with_document_locked, rename)  # on the server's loop, as a callback would
    _until(lambda: not copy.current, "the change seen")
    _until(lambda: copy.current, "serialized again while idle")
    sid = _page_session(base)
    assert sid == ready.id
    session = pull_session(session_id=sid, url=base)
    try:
        assert "build 2, changed" in _text(session)
    finally:
        session.close()


def test_a_pooled_page_is_panels_own_page_with_the_ready_sessions_token(pooled_server):
    """The page is rendered once per page shell and only its token changes: a pooled page is the
    page Panel renders for a request it builds a session for, token aside (and the ids, made once
    per shell, of the element the map goes in and of an empty script element)."""
    base, pool, _files = pooled_server
    _until(lambda: len(pool.ready) == 2, "2 sessions ready")

    def page(url: str) -> tuple[str, str]:
        text = urllib.request.urlopen(url, timeout=60).read().decode()
        token = re.search(r'"token":\s*"([^"]+)"', text).group(1)
        uuids = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # the root's element id
        text = re.sub(uuids, "ELEMENT", text.replace(token, "TOKEN"))
        script = re.search(r'<script type="application/json" id="(p\d+)">', text).group(1)  # (an empty one)
        return re.sub(rf"\b{script}\b", "SCRIPT", text), token

    ready = pool.ready
    first, second = page(base), page(base)
    panels, _ = page(base + "?a=1")  # no adopt: Panel's own handler renders this one
    assert {get_session_id(first[1]), get_session_id(second[1])} == set(ready) and first[1] != second[1]
    assert first[0] == second[0] == panels and first[0].count("TOKEN") == 1


def test_a_shared_link_is_built_from_its_own_query_not_taken_from_the_pool(pooled_server):
    base, pool, _files = pooled_server
    _until(lambda: len(pool.ready) == 2, "2 sessions ready")
    ready = pool.ready
    sid = _page_session(base + "?lon=1&lat=2")
    assert sid not in ready and pool.ready == ready and pool.handed == 0


def test_sessions_built_before_a_file_changed_are_not_handed_out(pooled_server):
    base, pool, files = pooled_server
    _until(lambda: len(pool.ready) == 2, "2 sessions ready")
    stale = pool.ready
    contexts = [s for s in pool._ready]
    files["identity"] = "b"  # the operator replaced a file
    sid = _page_session(base)
    assert sid not in stale and pool.handed == 0
    assert not any(s.expiration_blocked for s in contexts)  # Bokeh may now destroy them as unused
    _until(lambda: len(pool.ready) == 2, "the pool refilled")
    assert not set(pool.ready) & set(stale)


def test_session_pool_size_is_checked():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--session-pool", "-1"])
    assert build_parser().parse_args(["serve", "--session-pool", "0"]).session_pool == 0
    with pytest.raises(InvalidArgument, match="-2"):
        SessionPool(-2)


def test_when_the_pool_cannot_build_pages_are_built_for_their_visitors(caplog):
    """A failure while building ahead (here: the sources' identity cannot be read) is logged, the
    pool tries again later, and visitors get sessions built for them as without a pool."""
    builds = itertools.count(1)

    def unreadable():
        raise OSError("catalog folder unmounted")

    pool = SessionPool(2, idle_s=0.2, sources=unreadable)
    with serving(lambda: pn.pane.Str(f"build {next(builds)}"), pool) as base:
        _until(lambda: "could not build a session ahead" in caplog.text, "the failure logged")
        assert "catalog folder unmounted" in caplog.text and pool.ready == () and pool.built == 0
        sid = _page_session(base)  # Panel's own path: the visitor's session is built for them
        session = pull_session(session_id=sid, url=base)
        try:
            assert re.findall(r"build \d+", _text(session)) == ["build 2"]  # build 1: the page shell
        finally:
            session.close()


def test_sources_that_cannot_be_read_any_more_drop_the_ready_sessions(pooled_server, caplog):
    base, pool, files = pooled_server
    _until(lambda: len(pool.ready) == 2, "2 sessions ready")
    stale = pool.ready
    pool.sources = lambda: (_ for _ in ()).throw(OSError("catalog folder unmounted"))
    sid = _page_session(base)  # answered (Panel's own path), not a 500
    assert sid not in stale and pool.ready == () and "cannot tell whether" in caplog.text


def test_a_shared_link_is_applied_to_a_session_built_ahead_of_the_viewer():
    """The real app: a link's centre, zoom and basemap are applied to a ready session before its
    page is answered, so the document the browser pulls already shows the link's view."""
    from viewer.ui.app import _LINKED, adopt_session, build_app

    pool = SessionPool(1, idle_s=0.2, adopt=adopt_session)
    with serving(build_app, pool) as base:
        _until(lambda: len(pool.ready) == 1, "a session ready")
        ready = pool._ready[0]
        state = _LINKED[ready.document]()
        assert state.zoom != 14  # the demo's own view is not the link's
        sid = _page_session(base + "?lon=-87.41&lat=30.72&zoom=14&basemap=Offline%20(graticule)")
        assert sid == ready.id and pool.handed == 1
        assert state.center == pytest.approx((-87.41, 30.72), abs=1e-6) and state.zoom == 14
        assert state.basemap == "Offline (graticule)"
        session = pull_session(session_id=sid, url=base)
        try:  # the pulled figure frames the link's centre (Web Mercator metres)
            x = -87.41 * 20037508.342789244 / 180
            figures = {m for root in session.document.roots for m in root.references() if isinstance(m, Plot)}
            fig = max(figures, key=lambda f: f.width or 0)  # the map (not the time-series chart)
            assert fig.x_range.start < x < fig.x_range.end
            assert abs((fig.x_range.start + fig.x_range.end) / 2 - x) < 100
        finally:
            session.close()


def test_the_app_can_tell_a_session_built_ahead_from_one_built_for_a_visitor():
    seen: list[bool] = []

    def app():
        seen.append(building_ahead())
        return pn.pane.Str("built")

    pool = SessionPool(1, idle_s=0.2)
    with serving(app, pool) as base:
        _until(lambda: len(pool.ready) == 1, "a session ready")
        _page_session(base + "?a=1")  # no adopt: a link is built for its visitor
        _until(lambda: len(seen) == 3, "the link's session built")
    assert seen == [False, True, False]  # the page shell, the pool's session, the link's


def test_a_handed_out_session_is_freed_soon_after_its_browser_left_not_after_the_claim_time():
    """Bokeh expires a pooled session once its browser has come and gone (unused lifetime, here 1 s),
    as any session; one whose browser has not come yet is kept for the claim time (here 60 s)."""
    pool = SessionPool(2, idle_s=0.2, claim_s=60.0)
    with serving(lambda: pn.pane.Str("pooled"), pool, check_unused_sessions_milliseconds=300,
                 unused_session_lifetime_milliseconds=1000) as base:
        _until(lambda: len(pool.ready) == 2, "2 sessions ready")
        visited, waiting = list(pool._ready)
        assert _page_session(base) == visited.id and _page_session(base) == waiting.id
        browser = pull_session(session_id=visited.id, url=base)  # the first page's browser connects ...
        try:
            assert "pooled" in _text(browser)
        finally:
            browser.close()  # ... and leaves
        _until(lambda: visited.destroyed, "the left session destroyed", bound=15.0)
        assert not waiting.destroyed  # its browser may still be loading the page's scripts
        late = pull_session(session_id=waiting.id, url=base)
        try:
            assert "pooled" in _text(late) and not waiting.destroyed
        finally:
            late.close()
