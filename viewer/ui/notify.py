"""Errors as notifications (never tracebacks in the page) and safe document updates."""
from __future__ import annotations

import functools
import html
import logging
from typing import Any, Callable

import panel as pn
from panel.io.document import unlocked

from ..core.errors import ViewerError

__all__ = ["notify_error", "notify_text", "guarded", "doc_runner", "message_for"]

log = logging.getLogger("viewer.ui")


def message_for(exc: BaseException) -> str:
    """A one-line, user-facing message for an exception."""
    if isinstance(exc, ViewerError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def notify_error(exc: BaseException, where: str = "") -> str:
    """Show ``exc`` as an error notification (logged with its traceback on the server)."""
    msg = message_for(exc)
    if isinstance(exc, ViewerError):
        log.info("%s: %s", where or "viewer", msg)
    else:
        log.error("%s failed", where or "viewer", exc_info=exc)
    text = f"{where}: {msg}" if where else msg
    _toast(text)
    return text


def notify_text(text: str) -> None:
    """Show an already formatted error message as a notification."""
    log.info("%s", text)
    _toast(text)


def _toast(text: str) -> None:
    """An error notification showing ``text`` as text (the notification area renders HTML)."""
    notifications = getattr(pn.state, "notifications", None)
    if notifications is not None:
        notifications.error(html.escape(text), duration=8000)


def guarded(where: str) -> Callable:
    """Decorator: run a UI callback; report any exception as a notification."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - shown to the user instead of a traceback
                notify_error(exc, where)
                return None

        return inner

    return wrap


def doc_runner(get_doc: Callable[[], Any], push: Callable[[], None] | None = None) -> Callable:
    """A function that runs ``fn`` where Bokeh models may be changed.

    On a Panel server, with the document lock (next tick) unless it is already held; in a
    notebook or script, at once (then ``push`` sends the changes to the notebook).
    """

    def run(fn: Callable[[], None]) -> None:
        doc = get_doc()
        if doc is None or doc.session_context is None:
            fn()
            if push is not None:
                try:
                    push()
                except Exception:  # noqa: BLE001 - nothing displayed yet
                    pass
            return
        if pn.state._unblocked(doc):
            # This session's thread: change the models now and let Panel dispatch the events
            # (also right when an async task runs without holding the document lock).
            with unlocked():
                fn()
            return
        doc.add_next_tick_callback(guarded("map update")(fn))

    return run
