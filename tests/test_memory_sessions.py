"""A closed session's map is garbage: nothing module-level keeps a session's objects alive.

Each served page builds a ``Map`` with its ``MapState``, ``MapView`` and Bokeh models. Weak-key
registries whose values referred back to their key (the region tools by view, the region state
by map state) kept every session's map, figure and document alive for the life of the process
(``benchmarks/bench_page.py --sessions``: 5 Bokeh documents more after every 5 pages closed).
"""
from __future__ import annotations

import asyncio
import gc
import weakref

from viewer.ui.app import demo_map
from viewer.ui.region_tool import region_state, set_region


def _collected(ref: weakref.ref) -> bool:
    gc.collect()
    return ref() is None


def test_a_map_view_with_its_region_tools_and_a_region_is_collected():
    m = demo_map()
    view = m.view  # the page's map: figure, region draw tools and cards, time card
    set_region(m.state, {"type": "Polygon", "coordinates": [[[-87.5, 30.6], [-87.2, 30.6], [-87.2, 30.85],
                                                             [-87.5, 30.6]]]})
    assert region_state(m.state).geometry is not None
    refs = {"Map": weakref.ref(m), "MapView": weakref.ref(view), "MapState": weakref.ref(m.state),
            "figure": weakref.ref(view.map_figure.fig)}
    del m, view
    assert {name: _collected(r) for name, r in refs.items()} == dict.fromkeys(refs, True)


def test_panels_busy_timer_starts_outside_any_session(monkeypatch):
    """``viewer serve`` starts Panel's process-wide busy-cleanup timer at start; a session that
    gets busy later does not start it (its task would keep that session's document forever)."""
    from bokeh.document import Document
    from panel.io.state import set_curdoc, state

    from viewer.cli import _start_busy_cleanup

    monkeypatch.setattr(type(state), "_busy_cleanup_scheduled", None)
    seen: list[object] = []

    async def scenario() -> None:
        _start_busy_cleanup(state)
        timer = type(state)._busy_cleanup_scheduled
        seen.append(timer is not None and timer.running)
        with set_curdoc(Document()):
            state._add_busy_event("a session's event")
            state._remove_busy_event("a session's event")
        seen.append(type(state)._busy_cleanup_scheduled is timer)
        timer.stop()

    asyncio.run(scenario())
    assert seen == [True, True]
