"""Typed errors: one root, each subclass also inherits the matching builtin."""
from __future__ import annotations

from typing import Any

__all__ = [
    "ViewerError",
    "InvalidArgument",
    "UnknownAsset",
    "UnknownBand",
    "UnknownCRS",
    "LimitExceeded",
    "ReadError",
    "SourceUnavailable",
    "SourceChanged",
    "InvalidMask",
]


class ViewerError(Exception):
    """Root of every error the viewer raises on purpose.

    ``value`` is the offending value and ``allowed`` says what would have been accepted.
    """

    def __init__(self, message: str, *, value: Any = None, allowed: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.value = value
        self.allowed = allowed

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class InvalidArgument(ViewerError, ValueError):
    """A parameter has a value outside what is allowed."""


class UnknownAsset(ViewerError, KeyError):
    """An asset id that is not in the catalog."""


class UnknownBand(ViewerError, KeyError):
    """A band name or index that the image does not have."""


class UnknownCRS(InvalidArgument):
    """A CRS code or WKT that cannot be resolved offline."""


class LimitExceeded(InvalidArgument):
    """A request larger than the per-request limits."""


class ReadError(ViewerError, OSError):
    """A raster file that cannot be opened or read."""


class SourceUnavailable(ReadError):
    """A source of an image cannot be read now (missing, truncated, corrupt, or too slow).

    Its message names the asset and band, never a server path, so it may be shown to a user.
    """


class SourceChanged(SourceUnavailable):
    """A source file changed after the graph (and layer token) naming it was built."""


class InvalidMask(InvalidArgument, TypeError):
    """A segmentation mask that does not follow the ImageMask contract (also a TypeError, as in W&B)."""
