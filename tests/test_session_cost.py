"""What a session's first document holds (issue 9, "Many users"): every Bokeh model there is
Python work for every session, so models the first screen does not show are left out.

No timings here: ``benchmarks/bench_sessions.py`` and ``benchmarks/profile_session.py`` measure.
"""
from __future__ import annotations

import collections

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.events import Tap
from bokeh.models import GlyphRenderer, Grid, Title

from viewer.ui.demo import demo_map
from viewer.ui.region_tool import BOX_SOURCE, POLY_SOURCE
from viewer.ui.sidepanel import BAR_WIDTH, SidePanel


@pytest.fixture(autouse=True)
def _state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("VIEWER_TILE_URL", "")


def _types(models) -> collections.Counter:
    return collections.Counter(type(m).__name__ for m in models)


def test_the_map_figure_holds_no_glyph_copies_grids_title_or_tap_marker():
    view = demo_map().view
    mf = view.map_figure
    fig = mf.fig
    models = fig.references()
    renderers = [r for r in fig.renderers if isinstance(r, GlyphRenderer)]
    # graticule lines and labels, region box, polygon and its vertices; no tap marker before a tap
    assert len(renderers) == 5 and mf.tap_source not in {r.data_source for r in renderers}
    assert all(r.nonselection_glyph == "auto" and r.muted_glyph == "auto" for r in renderers)
    counts = _types(models)
    assert counts["Scatter"] == counts["Rect"] == counts["Patches"] == counts["MultiLine"] == counts["Text"] == 1
    assert not any(isinstance(m, (Grid, Title)) for m in models)
    assert {m.name for m in models if type(m).__name__ == "ColumnDataSource"} >= {BOX_SOURCE, POLY_SOURCE}
    assert counts["CustomJS"] == 3  # the view report, the first-paint target, the page's scripts in one


def test_a_tap_adds_the_marker_after_the_region_glyphs_and_keeps_them():
    view = demo_map().view
    mf = view.map_figure
    before = list(mf.fig.renderers)
    mf.fig._trigger_event(Tap(mf.fig, x=-9.73e6, y=3.6e6))
    after = list(mf.fig.renderers)
    assert after[:-1] == before  # appended: a polygon being drawn keeps its renderers
    marker = after[-1]
    assert marker.data_source is mf.tap_source and mf.tap_source.data == {"x": [-9.73e6], "y": [3.6e6]}
    assert marker.glyph.marker == "circle_cross" and marker.glyph.line_color == "#e6007e"
    mf.fig._trigger_event(Tap(mf.fig, x=-9.70e6, y=3.61e6))
    assert list(mf.fig.renderers) == after and mf.tap_source.data["x"] == [-9.70e6]
    mf.sync()  # the figure's own update (a layer shown) keeps the marker
    assert marker in mf.fig.renderers


def test_side_panel_is_one_column_and_makes_its_bar_on_the_first_collapse():
    contents = pn.Column(pn.widgets.StaticText(value="cards"))
    panel = SidePanel(contents, "Layers", side="left", width=305)
    root = pn.panel(panel).get_root(Document())
    assert _types(root.select({}))["Button"] == 1  # the "hide" button only
    assert panel.show_button is None
    panel.collapsed = True
    assert panel.show_button is not None and panel.show_button.visible
    assert panel.panel.width == BAR_WIDTH and not contents.visible and not panel.head.visible
    assert panel.panel.styles["background"] == "#f6f8fa"
    panel.collapsed = False
    assert panel.panel.width == 305 and contents.visible and panel.head.visible and not panel.show_button.visible
    assert panel.panel.styles["background"] == "transparent"  # the bar's colour taken back in the page
