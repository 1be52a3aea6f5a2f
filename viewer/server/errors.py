"""The one table that maps viewer errors to HTTP status codes, and one-line reasons."""
from __future__ import annotations

from ..core.errors import (InvalidArgument, InvalidMask, LimitExceeded, ReadError, SourceChanged, SourceUnavailable,
                           UnknownAsset, UnknownBand, UnknownCRS, ViewerError)
from ..core.layers import UnknownLayer

__all__ = ["NotFound", "CrossSite", "UnsupportedMediaType", "RenderTimeout", "RenderUnavailable", "STATUS", "status_for",
           "reason"]


class NotFound(ViewerError, LookupError):
    """A URL that names no resource of the viewer's HTTP edge (e.g. a malformed tile path)."""


class CrossSite(ViewerError, PermissionError):
    """A state-changing request from another site's page."""


class UnsupportedMediaType(InvalidArgument):
    """A request body in a media type the endpoint does not take."""


class RenderTimeout(ViewerError, TimeoutError):
    """A render that did not finish within its deadline (a slow or stalled source)."""


class RenderUnavailable(ViewerError):
    """No render process could draw the tile (it stopped, or none could be started): try again."""


#: Most specific first: the first class an error is an instance of gives its status.
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (NotFound, 404),
    (CrossSite, 403),
    (UnsupportedMediaType, 415),
    (RenderTimeout, 503),
    (RenderUnavailable, 503),
    (SourceChanged, 410),
    (SourceUnavailable, 503),
    (UnknownLayer, 404),
    (UnknownAsset, 404),
    (UnknownBand, 400),
    (LimitExceeded, 413),
    (UnknownCRS, 400),
    (InvalidMask, 400),
    (InvalidArgument, 400),
    (ReadError, 500),
    (ViewerError, 500),
)

_MAX_REASON = 400


def status_for(exc: BaseException) -> int:
    """HTTP status of an error (500 for anything that is not a known viewer error)."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def reason(exc: BaseException) -> str:
    """A one-line, traceback-free reason for a response body.

    Client errors (4xx) carry the error's own message (it names the bad value and what is
    allowed), and so do unavailable sources and timeouts (their messages name assets, never
    paths); other server errors name only the error class, the details go to the server log.
    """
    status = status_for(exc)
    if status >= 500 and not isinstance(exc, (SourceUnavailable, RenderTimeout, RenderUnavailable)):
        return f"{status} server error ({type(exc).__name__}); the server log has the details"
    text = " ".join(str(exc).split())
    if len(text) > _MAX_REASON:
        text = text[:_MAX_REASON - 3] + "..."
    return f"{status} {text}"
