"""Jupyter set-up for :class:`viewer.Map`: Panel's extension with its JavaScript inline.

By default Panel's notebook extension makes the browser fetch BokehJS and Panel from CDNs, so
a notebook without internet shows a blank map. The first map displayed loads the extension with
``inline=True`` (the JavaScript and CSS travel inside the notebook output, about 3 MB once per
notebook) unless ``PANEL_INLINE`` says otherwise or the notebook called ``pn.extension()``
itself. Panel does not inline the notification area's script (Notyf) in that mode, so it is
published here first from Panel's own copy.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import panel as pn
from panel.config import panel_extension

__all__ = ["in_ipython", "load_extension", "inline_default"]

_NOTYF = Path(pn.__file__).parent / "dist" / "bundled" / "notificationarea" / "notyf@3" / "notyf.min.js"


def in_ipython() -> bool:
    """Whether this runs in an IPython kernel or shell."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def inline_default() -> bool:
    """Inline resources unless ``PANEL_INLINE`` is set to a false value."""
    raw = os.environ.get("PANEL_INLINE")
    return raw is None or raw.strip().lower() not in ("0", "false", "no", "off")


@lru_cache(maxsize=1)
def _notyf_js() -> str:
    # Panel's copy of Notyf is an IIFE assigning ``var Notyf``; JupyterLab runs JavaScript outputs
    # inside a function, so the class is put on ``window`` explicitly.
    return "(function () {\n" + _NOTYF.read_text(encoding="utf-8") + "\nwindow.Notyf = Notyf;\n})();"


def load_extension() -> bool:
    """Load Panel's notebook extension (inline resources by default) unless it is loaded.

    Returns whether it loaded it now. Outside IPython it does nothing."""
    if panel_extension._loaded or not in_ipython():
        return False
    inline = inline_default()
    if inline and _NOTYF.exists():
        from IPython.display import publish_display_data

        publish_display_data({"application/javascript": _notyf_js()})
    pn.extension(notifications=True, inline=inline)
    return True
