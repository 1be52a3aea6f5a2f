"""Sessions of the plain page built ahead of time, while the server is idle.

Building a visitor's session (the map, its figure, Panel's ``server_doc``) is 0.2-0.5 s of
Python on the event loop. Panel's ``reuse_sessions="warm"`` answers the page at once but builds
the session right after, on the same loop that is sending the page's 3 MB of scripts, and N
visitors arriving together wait for N builds in a row. A :class:`SessionPool` builds up to
``size`` sessions of the page when no page was asked for during
``idle_s``, one at a time, and :class:`PooledDocHandler` answers a plain page request with one of
them: the page names the ready session, the browser's websocket finds it built, and the pool
builds a replacement once the server is idle again. Each ready session's document is also
serialized and encoded as the pull's reply while idle (:class:`SerializedAhead`): the browser's
pull of it, 20 ms of Bokeh's serializer and 0.5 ms of JSON encoding for the map's first screen,
then only sends it.

With ``adopt`` (the app's :func:`viewer.ui.app.adopt_session`) a session is readied for its
visitor before the page is answered: a shared link's query string is applied to it, so links get
ready sessions too. While the pool builds, :func:`building_ahead` is true (the app starts its
visitor timers at hand-out instead).
Pages behind a login never do: a logged-in visitor's session carries their cookies.
A pooled session is built from a request with only ``Host: localhost`` (nothing of a visitor's
request reaches another visitor); the browser then tells the session its own location.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextvars import ContextVar
from typing import Any

from bokeh.document import Document
from bokeh.core.json_encoder import serialize_json
from bokeh.core.serialization import Serialized
from bokeh.document.events import DocumentChangedEvent, SessionCallbackAdded, SessionCallbackRemoved
from bokeh.protocol.messages.pull_doc_reply import pull_doc_reply
from bokeh.server.auth_provider import NullAuth
from bokeh.server.contexts import ApplicationContext
from bokeh.server.session import ServerSession
from bokeh.server.urls import per_app_patterns
from bokeh.util.token import generate_jwt_token, generate_session_id, get_token_payload
from panel.config import config as panel_config
from panel.io.resources import Resources
from panel.io.server import DocHandler, server_html_page_for_session
from panel.io.state import set_curdoc, state as panel_state
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.ioloop import IOLoop
from tornado.web import Application, authenticated

from viewer.core.errors import InvalidArgument
from viewer.server.activity import tile_activity

__all__ = ["SessionPool", "PooledDocHandler", "SerializedAhead", "pooled_pages", "shell_page", "building_ahead",
           "IDLE_S", "CLAIM_S", "BUSY", "TOKEN_SLOT"]

#: Seconds without a page request before the pool builds (so a visitor's tiles go first).
IDLE_S = 3.0
#: Seconds a handed-out session waits for its browser before Bokeh may expire it as unused (once its
#: browser has connected, Bokeh expires it as any session: when it has been left for 15 s).
CLAIM_S = 60.0
#: Seconds between two looks at whether a handed-out session's browser has connected.
_CLAIM_POLL_S = 1.0
#: Seconds between two builds while filling (tile requests get the loop in between).
_GAP_S = 0.25
#: Share of one CPU above which the process counts as busy, and the pool waits.
BUSY = 0.2
#: Seconds without a tile request before the pool builds (tiles first).
_TILES_QUIET_S = 1.0
#: Seconds before the pool tries again after a build failed.
_RETRY_S = 30.0
#: What stands for the session token in a page rendered once per page shell (:func:`shell_page`).
TOKEN_SLOT = "viewer-pooled-page-token"
_shell_pages: dict[str, str] = {}  # page shell's session id -> its page, TOKEN_SLOT for the token
_log = logging.getLogger(__name__)


_BUILDING: ContextVar[bool] = ContextVar("viewer_building_ahead", default=False)


def building_ahead() -> bool:
    """Is the session being built now one that a :class:`SessionPool` builds ahead (no visitor yet)?"""
    return _BUILDING.get()


class SerializedAhead:
    """A document's serialized form (``Document.to_json()``), made while the server is idle and
    answered by the document's ``to_json`` until the document changes.

    Bokeh serializes a session's document when its browser pulls it (``PULL-DOC-REPLY``); for a
    session built ahead that work can be done before its visitor comes. A change of the document
    (its first view's statistics arriving, a shared link's view applied) drops the copy and calls
    ``on_stale``; :meth:`refresh` makes it again, and a pull in between serializes afresh.
    """

    def __init__(self, document: Document, on_stale: Callable[[], None] | None = None) -> None:
        self._document = document
        self._on_stale = on_stale
        self._serialized: Any = None
        self._reply_json: str | None = None  # the pull reply's content, JSON-encoded, of _serialized
        document.on_change(self._changed)
        document.to_json = self  # type: ignore[method-assign] - the pull serializes through this
        _send_replies_encoded_ahead()
        self.refresh()

    @property
    def current(self) -> bool:
        """Is the copy made ahead the document as it is now?"""
        return self._serialized is not None

    def refresh(self) -> None:
        """Serialize the document now, and encode the pull's reply, if it changed since the last time."""
        if self._serialized is None:
            serialized = Document.to_json(self._document)
            # what Bokeh's Message.content_json would encode for a PULL-DOC-REPLY of this copy
            self._reply_json = serialize_json(Serialized({"doc": serialized.content}, serialized.buffers))
            self._serialized = serialized

    def reply_json(self, content: Any) -> str | None:
        """The encoded reply content for ``content`` if it is the copy's (else ``None``: encode it afresh)."""
        serialized = self._serialized
        return self._reply_json if serialized is not None and content is serialized.content else None

    def _changed(self, event: DocumentChangedEvent) -> None:
        if isinstance(event, (SessionCallbackAdded, SessionCallbackRemoved)) or self._serialized is None:
            return  # a session's timers are not part of its document's serialized form
        self._serialized = self._reply_json = None
        if self._on_stale is not None:
            self._on_stale()

    def __call__(self, *, deferred: bool = True) -> Any:
        if deferred and self._serialized is not None:
            return self._serialized
        return Document.to_json(self._document, deferred=deferred)


_bokeh_pull_reply = pull_doc_reply.create.__func__


def _pull_reply(cls: type[pull_doc_reply], request_id: Any, document: Document, **metadata: Any) -> pull_doc_reply:
    """Bokeh's ``PULL-DOC-REPLY``, its content's JSON taken from the document's :class:`SerializedAhead`
    when the reply carries that copy (Bokeh encodes a message's content when it sends it)."""
    msg = _bokeh_pull_reply(cls, request_id, document, **metadata)
    ahead = document.to_json
    if isinstance(ahead, SerializedAhead):
        encoded = ahead.reply_json(msg.content["doc"])
        if encoded is not None:
            msg._content_json = encoded
    return msg


def _send_replies_encoded_ahead() -> None:
    """Make Bokeh's pull replies use :func:`_pull_reply` (once per process, when the first copy is made)."""
    if pull_doc_reply.create.__func__ is not _pull_reply:
        pull_doc_reply.create = classmethod(_pull_reply)  # type: ignore[method-assign, assignment]


class SessionPool:
    """Up to ``size`` ready sessions of one application's plain page (``size`` 0: none)."""

    def __init__(self, size: int, idle_s: float = IDLE_S, claim_s: float = CLAIM_S,
                 sources: Callable[[], Hashable] | None = None,
                 adopt: Callable[[ServerSession, str], Awaitable[None]] | None = None) -> None:
        if size < 0:
            raise InvalidArgument(f"session pool size {size!r} is not allowed; allowed: an integer >= 0",
                                  value=size, allowed="an integer >= 0")
        self.size = size
        self.sources = sources  # what the sessions were built from (e.g. the files' identities)
        self.adopt = adopt  # readies a session for its visitor, given the page's query string (may be "")
        self._sources_built: Hashable = None
        self.idle_s = idle_s
        self.claim_s = claim_s
        self.built = 0  # sessions built ahead so far
        self.handed = 0  # page requests answered with one of them
        self._ready: deque[ServerSession] = deque()
        self._last_page = 0.0
        self._timer: object | None = None
        self._app: Application | None = None
        self._context: ApplicationContext | None = None
        self._wall_mark, self._cpu_mark = time.monotonic(), time.process_time()

    @property
    def ready(self) -> tuple[str, ...]:
        """The ids of the sessions waiting for a visitor."""
        return tuple(s.id for s in self._ready)

    def take(self) -> ServerSession | None:
        """A ready session, or ``None``; Bokeh may expire it as unused once its browser has come and
        gone, or :attr:`claim_s` after this if no browser comes.

        If :attr:`sources` now differs from when the ready sessions were built (a file replaced),
        they are all dropped: a visitor never gets a session showing what is no longer there."""
        if self._ready and not self._current():
            self._drop_ready()
        while self._ready:
            session = self._ready.popleft()
            if session.destroyed:
                continue
            self.handed += 1
            self._release_when_claimed(session, time.monotonic())
            return session
        return None

    def _release_when_claimed(self, session: ServerSession, handed: float) -> None:
        """Let Bokeh expire a handed-out session as any other (15 s after its browser left) as soon as a
        browser has connected to it, or after :attr:`claim_s` if none does; look again in a moment."""
        waited = time.monotonic() - handed
        # connected now, or connected and left since it was handed out
        claimed = session.connection_count > 0 or session.milliseconds_since_last_unsubscribe < waited * 1000
        if claimed or waited >= self.claim_s or session.destroyed:
            session.unblock_expiration()
            return
        IOLoop.current().call_later(_CLAIM_POLL_S, self._release_when_claimed, session, handed)

    def _current(self) -> bool:
        """Were the ready sessions built from the sources as they are now (unknown: no)?"""
        try:
            return self.sources is None or self.sources() == self._sources_built
        except Exception:  # noqa: BLE001 - the page is then built for its visitor, who sees the error
            _log.warning("cannot tell whether the sessions built ahead are current", exc_info=True)
            return False

    def _drop_ready(self) -> None:
        while self._ready:
            self._ready.popleft().unblock_expiration()  # Bokeh destroys it as unused

    def page_requested(self, app: Application, context: ApplicationContext) -> None:
        """A page was asked for: build (more) sessions once no page was asked for in :attr:`idle_s`."""
        if self.size == 0:
            return
        first = self._context is None  # the server's own request for its page shell, at start
        self._app, self._context = app, context
        self._last_page = 0.0 if first else time.monotonic()
        self._schedule(_GAP_S if first else self.idle_s)

    def _schedule(self, delay: float) -> None:
        if self._timer is None:
            self._timer = IOLoop.current().call_later(delay, self._tick)

    def _busy(self) -> bool:
        """Did this process use more than :data:`BUSY` of a CPU since the last look (tiles,
        sessions Panel builds for visitors the pool could not serve), or serve a tile within the last
        second (tiles render in worker processes, whose CPU this process does not count)?"""
        wall, cpu = time.monotonic(), time.process_time()
        used = (cpu - self._cpu_mark) / max(wall - self._wall_mark, 1e-3)
        self._wall_mark, self._cpu_mark = wall, cpu
        return used > BUSY or tile_activity.quiet_for() < _TILES_QUIET_S

    async def _tick(self) -> None:
        self._timer = None
        quiet = time.monotonic() - self._last_page
        if quiet < self.idle_s:
            self._schedule(self.idle_s - quiet)
        elif self._busy():
            self._schedule(_GAP_S * 4)
        elif self._refresh_one():
            self._busy()  # nor does serializing a ready session's document
            self._schedule(_GAP_S)
        elif len(self._ready) < self.size:
            try:
                await self._build()
            except Exception:  # noqa: BLE001 - visitors then get sessions built for them, and see the error
                _log.warning("could not build a session ahead; trying again in %g s", _RETRY_S, exc_info=True)
                self._schedule(_RETRY_S)
                return
            self._busy()  # the build itself does not count as the server being busy
            self._schedule(_GAP_S)

    def _refresh_one(self) -> bool:
        """Serialize again the document of one ready session that changed since (if any)."""
        for session in self._ready:
            copy = session.document.to_json  # the SerializedAhead made at its build
            if not copy.current and not session.destroyed:
                copy.refresh()
                return True
        return False

    async def _build(self) -> None:
        app, context = self._app, self._context
        assert app is not None and context is not None
        session_id = generate_session_id(secret_key=app.secret_key, signed=app.sign_sessions)
        token = generate_jwt_token(session_id, secret_key=app.secret_key, signed=app.sign_sessions,
                                   expiration=app.session_token_expiration,
                                   extra_payload={"headers": {}, "cookies": {}, "arguments": {}})
        request = HTTPServerRequest(start_line=RequestStartLine("GET", "/", "HTTP/1.1"),
                                    headers=HTTPHeaders({"Host": "localhost"}))
        sources = self.sources() if self.sources is not None else None
        if sources != self._sources_built:  # what the sessions already ready show is gone
            self._drop_ready()
            self._sources_built = sources
        building = _BUILDING.set(True)
        try:
            session = await context.create_session_if_needed(session_id, request, token)
        finally:
            _BUILDING.reset(building)
        session.block_expiration()  # waits in the pool however long it takes a visitor to come
        SerializedAhead(session.document, on_stale=lambda: self._schedule(_GAP_S))  # the document's to_json now
        self._ready.append(session)
        self.built += 1


class PooledDocHandler(DocHandler):
    """Panel's page handler, answering a plain page request with a session from :attr:`pool`."""

    pool: SessionPool

    @authenticated  # as Panel's: a login (if any) first
    async def get(self, *args: Any, **kwargs: Any) -> None:
        self.pool.page_requested(self.application, self.application_context)
        shell = self._page_shell()
        session = self.pool.take() if shell is not None else None
        if session is not None and self.pool.adopt is not None and not await self._adopted(session):
            session = None
        if session is None:
            await super().get(*args, **kwargs)
            return
        self.set_header("Cache-Control", "no-store")  # the page names a session: never cached
        payload = get_token_payload(session.token)
        payload.update(self._generate_token_payload())
        payload.pop("session_expiry", None)
        app = self.application
        token = generate_jwt_token(session.id, secret_key=app.secret_key, signed=app.sign_sessions,
                                   expiration=app.session_token_expiration, extra_payload=payload)
        self.set_header("Content-Type", "text/html")
        self.write(shell_page(shell, app, token))

    async def _adopted(self, session: ServerSession) -> bool:
        """Ready ``session`` for this page's visitor (its query string, a shared link's view);
        ``False`` if that failed (the session is then left to expire and the page is built for its
        visitor)."""
        try:
            await self.pool.adopt(session, self.request.query)
            return True
        except Exception:  # noqa: BLE001 - the visitor's own session then shows the link, or its error
            _log.warning("could not apply a link to a session built ahead", exc_info=True)
            return False

    def _page_shell(self) -> ServerSession | None:
        """Panel's page shell for this request if it may get a pooled session: no login, no
        authorization callback, and no query string unless the pool can adopt one."""
        request = self.request
        if (request.query and self.pool.adopt is None) or panel_config.authorize_callback or not isinstance(
                self.application.auth_provider, NullAuth):
            return None
        key = panel_state._session_key_funcs.get(request.path)
        return panel_state._sessions.get(key(request)) if key is not None else None


def shell_page(shell: ServerSession, app: Application, token: str) -> str:
    """The page Panel answers with for its page shell (``reuse_sessions``), naming ``token``.

    Only the token differs between visitors, so the page is rendered once per shell with
    :data:`TOKEN_SLOT` in its place (Jinja, Bokeh's bundling and the roots' CSS: about 10 ms per page
    request otherwise)."""
    page = _shell_pages.get(shell.id)
    if page is None:
        page = _render_shell(shell, app, TOKEN_SLOT)
        if page.count(TOKEN_SLOT) != 1:  # not a plain slot (a template of Panel's that repeats it)
            return _render_shell(shell, app, token)
        if len(_shell_pages) >= 16:
            _shell_pages.clear()
        _shell_pages[shell.id] = page
    return page.replace(TOKEN_SLOT, token)


def _render_shell(shell: ServerSession, app: Application, token: str) -> str:
    with set_curdoc(shell.document):
        return server_html_page_for_session(
            shell, resources=Resources.from_bokeh(app.resources()), title=shell.document.title, token=token,
            template=shell.document.template, template_variables=shell.document.template_variables)


@contextlib.contextmanager
def pooled_pages(pool: SessionPool) -> Iterator[None]:
    """Bokeh servers made inside this block answer page requests from ``pool``."""
    handler = type("PooledDocHandler", (PooledDocHandler,), {"pool": pool})
    index = next(i for i, route in enumerate(per_app_patterns) if route[1] is DocHandler)
    original = per_app_patterns[index]
    per_app_patterns[index] = (original[0], handler)
    try:
        yield
    finally:
        per_app_patterns[index] = original
