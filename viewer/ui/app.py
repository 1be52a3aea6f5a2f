"""App assembly: the page (title bar, map, collapsible side panels) and the demo.

Serve it with ``uv run viewer`` (tile routes included), or with Panel itself::

    panel serve viewer/ui/app.py --plugins viewer.server.plugin
"""
from __future__ import annotations

import functools
import html
import os
import time
import weakref
from pathlib import Path
from typing import Any

import panel as pn
from bokeh.models import Div
from bokeh.settings import settings as bokeh_settings
from panel.io.resources import LOCAL_DIST
from panel.io.state import set_curdoc, state as panel_state

from viewer.core.catalog import get_catalog, set_catalog
from viewer.core.config import settings
from viewer.server.memory import release_memory_soon
from viewer.ui.demo import demo_map
from viewer.ui.map import Map
from viewer.ui.mapview import CSS, MapView, layer_errors_html, tile_base_url
from viewer.ui.notify import notify_error
from viewer.ui.session_pool import building_ahead
from viewer.ui.sidepanel import SidePanel
from viewer.ui.urlstate import apply_query, decode_query, link_url

__all__ = ["MapView", "build_app", "adopt_session", "page", "demo_map", "tile_base_url", "layer_errors_html", "CSS", "TITLE",
           "LEFT_WIDTH", "RIGHT_WIDTH"]

TITLE = "viewer — images, masks and segmentation overlays"
#: Seconds after which a served page builds its side panels even if the map has not finished drawing.
PANELS_FALLBACK_S = 10.0
HEADER_COLOR = "#1f6f8b"
#: Widths (px) of the open side panels: layers on the left; legend, inspector and export on the right.
LEFT_WIDTH = 305
RIGHT_WIDTH = 295
_HEADER_STYLE = {"color": "white", "background": HEADER_COLOR, "font-size": "1.15em", "padding": "6px 16px",
                 "white-space": "nowrap", "overflow": "hidden"}


def _local_stylesheets(doc) -> None:
    """Components take their stylesheets from this server, also in a session built after its page
    was sent (``viewer serve`` answers page requests with a page built earlier: Panel's
    ``reuse_sessions``). Panel points stylesheets at its CDN unless the document names the local
    dist folder, which it only does while rendering a page; without this such a session would ask
    a CDN (unreachable offline) for its CSS."""
    if "dist_url" not in doc.template_variables:
        rel = pn.state.rel_path
        doc.template_variables["dist_url"] = f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST


def _forget_views_when_closed(doc) -> None:
    """When the session ends, drop what Panel still registers for its document.

    Panel 1.9 removes a closed session's page from ``pn.state._views`` but not its notification
    area (a root of the document too), which keeps the destroyed document and the area's models
    alive for the life of the process: a leak of every session (found with ``gc.get_referrers``
    after closing pages; ``benchmarks/bench_page.py --sessions`` shows the memory). Then the
    freed memory is handed back to the system (:func:`~viewer.server.memory.release_memory_soon`),
    and, when no page is open any more, what the render processes cache for the pages."""
    ref = weakref.ref(doc)

    def forget(session_context) -> None:
        # in 2 s, once sessions stop closing: the freed pages back to the system
        release_memory_soon(pages_open=functools.partial(_open_pages, session_context.server_context))
        views = getattr(panel_state, "_views", None)
        closed = ref()
        if closed is None or not isinstance(views, dict):
            return
        for key, view in list(views.items()):
            if isinstance(view, tuple) and len(view) > 2 and view[2] is closed:
                views.pop(key, None)

    doc.on_session_destroyed(forget)


def _open_pages(server_context) -> int:
    """Sessions of the app that a browser is connected to (not those built ahead, nor closed ones)."""
    return sum(not session.destroyed and session.connection_count > 0 for session in server_context.sessions)


def _connected(doc) -> bool:
    session = getattr(doc.session_context, "session", None)
    return session is not None and getattr(session, "connection_count", 0) > 0


def _arm_panels_fallback(doc) -> None:
    """Build the side panels :data:`PANELS_FALLBACK_S` from now if the page has not reported its
    document ready by then (:func:`_load_anyway`)."""
    doc.add_timeout_callback(functools.partial(_load_anyway, doc), int(PANELS_FALLBACK_S * 1000))


def _load_anyway(doc) -> None:
    """Run the page's onload callbacks (the side panels) if BokehJS has not reported the document
    idle within :data:`PANELS_FALLBACK_S`: it never does while a shown tile layer has no tile in
    view (a pixel-coordinate view beside the image) or an online basemap never answers."""
    if not _connected(doc):
        return  # no browser on this session: nothing to show the panels to
    with set_curdoc(doc):
        if pn.state.loaded:
            return
    schedule = getattr(pn.state, "_schedule_on_load", None)  # what Panel runs on document_ready
    if schedule is not None:
        schedule(doc, None)


#: The map state of each served document, for :func:`adopt_session` (weak both ways: no leak).
_LINKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def adopt_session(session: Any, query: str) -> None:
    """Ready a session built ahead (``viewer serve``'s session pool) for the visitor it is handed
    to: its side panels' fallback starts now, and a shared link's query string (``query``, empty
    for the plain page) is applied as :func:`~viewer.ui.urlstate.link_url` applies it to a session
    built for the link. Raises ``LookupError`` if the session's document has no map."""
    ref = _LINKED.get(session.document)
    state = ref() if ref is not None else None
    if state is None:
        raise LookupError("this session's document has no map to apply a link to")

    def adopt() -> None:
        with set_curdoc(session.document):
            if query:
                apply_query(decode_query(query), state)
            _arm_panels_fallback(session.document)

    await session.with_document_locked(adopt)


def _skip_document_validation() -> None:
    """Served sessions' documents are not validated: Bokeh's integrity checks walk every model of
    a new session's document on the event loop (20-57 ms of a 0.2-0.48 s session build, measured
    in ``viewer serve``) and only log warnings (``BOKEH_VALIDATE_DOC=true`` turns them back on)."""
    if "BOKEH_VALIDATE_DOC" not in os.environ and bokeh_settings.perform_document_validation():
        bokeh_settings.perform_document_validation.set_value(False)


def _placeholder(text: str) -> pn.widgets.StaticText:
    """Plain text (a Bokeh Div): no HTML pane in the first document, so no MathJax (see ``MapView.alert``)."""
    return pn.widgets.StaticText(value=text, sizing_mode="stretch_width", margin=(8, 10),
                                 styles={"color": "#666", "font-style": "italic"})


def _header() -> pn.pane.Bokeh:
    """The page's title bar (a Bokeh Div: plain HTML, no MathJax)."""
    return pn.pane.Bokeh(Div(text=html.escape(TITLE), disable_math=True, sizing_mode="stretch_width", margin=0,
                             styles=_HEADER_STYLE), sizing_mode="stretch_width", margin=0)


#: A map narrower than this (screen px) when the page opens folds the side panels away ...
NARROW_MAP_PX = 400
#: ... within this many seconds of the browser's first report of its size.
FOLD_WINDOW_S = 3.0


def page(view: MapView, sidebar: pn.viewable.Viewable, side: pn.viewable.Viewable) -> pn.Column:
    """Title bar; the map between two collapsible panels: layers (and "add a layer") on the left,
    legend, inspector, export and tool cards on the right.

    A plain layout rather than one of Panel's templates: a template puts 9 roots, Bootstrap's CSS
    and JavaScript and (through its HTML panes) MathJax into the page, which made building each
    session about twice as slow and the page's first paint later. The returned column has the
    panels as ``.left`` and ``.right`` (:class:`~viewer.ui.sidepanel.SidePanel`).
    """
    left = SidePanel(sidebar, "Layers", side="left", width=LEFT_WIDTH)
    right = SidePanel(side, "Legend & tools", side="right", width=RIGHT_WIDTH)
    main = pn.Column(view.alert, view.notice_pane, view.pane, sizing_mode="stretch_both", margin=(0, 4))
    view.status.styles = dict(view.status.styles, color="white")
    head = pn.Row(_header(), view.status, sizing_mode="stretch_width", margin=0,
                  styles={"background": HEADER_COLOR})
    layout = pn.Column(head, pn.Row(left, main, right, sizing_mode="stretch_both", margin=0),
                       sizing_mode="stretch_both", margin=0)
    layout.left, layout.right = left, right
    _fold_when_narrow(view.map.state, left, right)
    return layout


def _fold_when_narrow(state: Any, *panels: SidePanel) -> None:
    """Fold the side panels once if one of the browser's first frame sizes is narrower than
    :data:`NARROW_MAP_PX` (an 800 px window left the map 100 px wide between two open panels; the
    first size may be measured before the panels are in the page); the fitted first view is fitted
    again in the wider map (``figure._KEEP_SCALE_JS``)."""
    first: float | None = None  # when the first report came

    def on_size(event) -> None:
        nonlocal first
        first = time.monotonic() if first is None else first
        if time.monotonic() - first > FOLD_WINDOW_S or state.split is not None:  # a split view's half maps
            state.param.unwatch(watcher)
        elif event.new[0] < NARROW_MAP_PX:
            state.param.unwatch(watcher)
            # Once the page's document is ready (now, if it is): changes made before that did not always
            # reach the page (the panels stayed open when the size came before the tiles were drawn).
            pn.state.onload(fold)

    def fold() -> None:
        for panel in panels:
            panel.collapsed = True

    watcher = state.param.watch(on_size, "viewport")


def build_app(catalog: str | os.PathLike | None = None, map_obj: Map | None = None) -> pn.Column:
    """The served app: the demo map (or ``map_obj``) and its side panels (see :func:`page`).

    What the first screen needs is built now: the page, the map figure with its shown layers,
    and placeholders. The layer cards, legends, inspector and export are built once the page has
    drawn the map (``pn.state.onload``: Bokeh's document-ready, which waits for the map's tiles),
    so neither the page's first byte nor the map's tiles wait for them. The returned layout has
    the :class:`Map` as ``.map`` (for tests and scripts).
    """
    pn.extension(notifications=True, raw_css=[CSS])
    pn.config.notifications = True
    pn.config.exception_handler = lambda exc: notify_error(exc)
    catalog = catalog or settings().catalog
    if catalog and Path(catalog).resolve() != get_catalog().path:  # once per process, not per session
        set_catalog(catalog)
    m = map_obj or demo_map()
    location = pn.state.location
    url_state = None
    if location is not None:
        url_state = link_url(m.state, location)  # before the figure: it starts at the linked view
    view = m.view
    if url_state is not None:
        view.url_state = url_state
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:  # served: the panels after the map
        _local_stylesheets(doc)
        _forget_views_when_closed(doc)
        _LINKED[doc] = weakref.ref(m.state)
        _skip_document_validation()
        sidebar = pn.Column(_placeholder("Loading the layer controls…"), sizing_mode="stretch_width")
        side = pn.Column(_placeholder("Loading the legend…"), sizing_mode="stretch_width")
        pn.state.onload(functools.partial(view.fill_panels, sidebar, side))
        if not building_ahead():  # a session built ahead starts its fallback when handed out
            _arm_panels_fallback(doc)
    else:
        sidebar, side = view.sidebar(), view.side_panels()
    layout = page(view, sidebar, side)
    layout.map, layout.view = m, view
    return layout


if __name__.startswith("bokeh"):
    build_app().servable(title=TITLE)
