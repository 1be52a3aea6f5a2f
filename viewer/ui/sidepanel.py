"""A side panel of the page that collapses to a thin bar (and opens again).

Plain Panel widgets (Bokeh buttons and a column), no template: open, the panel shows a title
row with a "hide" button above its contents; collapsed, only a narrow bar with a "show"
button is left, and the map takes the room.
"""
from __future__ import annotations

from typing import Any

import panel as pn
import param

__all__ = ["SidePanel", "BAR_WIDTH"]

#: Width (px) of a collapsed panel's bar.
BAR_WIDTH = 30

_BAR_BUTTON_CSS = """
.bk-btn { writing-mode: vertical-rl; padding: 10px 2px; font-size: 13px; letter-spacing: 0.5px; }
"""
_TITLE_STYLE = {"font-weight": "600", "font-size": "14px", "color": "#1f6f8b"}


class SidePanel(pn.viewable.Viewer):
    """``contents`` in a column of ``width`` px on the ``side`` ("left" or "right") of the map.

    The collapsed bar is made when the panel is first collapsed: a session's first document
    holds only what the open panel shows (each Panel object is Python work for every session)."""

    collapsed = param.Boolean(default=False, doc="Only the thin bar is shown.")

    def __init__(self, contents: pn.viewable.Viewable, title: str, side: str = "left", width: int = 300,
                 **params: Any) -> None:
        super().__init__(**params)
        self.side = side
        self.title = title
        inward = "◀" if side == "left" else "▶"
        self.hide_button = pn.widgets.Button(label=f"{inward} hide", width=62, height=28, margin=(4, 4),
                                             color="light", css_classes=["viewer-panel-hide"])
        self.hide_button.on_click(lambda e: setattr(self, "collapsed", True))
        # the title stretches and pushes the button to the far side (no spacer model)
        title_text = pn.widgets.StaticText(value=title, margin=(8, 10, 4, 10), styles=_TITLE_STYLE,
                                           sizing_mode="stretch_width")
        head = pn.Row(title_text, self.hide_button, sizing_mode="stretch_width", margin=0)
        self._border = "border-right" if side == "left" else "border-left"
        self.panel = pn.Column(head, contents, width=width, sizing_mode="stretch_height", scroll=True, margin=0,
                               styles={self._border: "1px solid #dee2e6"}, css_classes=[f"viewer-panel-{side}"])
        self.show_button: pn.widgets.Button | None = None
        self.bar: pn.Column | None = None
        self._row = pn.Row(self.panel, sizing_mode="stretch_height", margin=0)

    def _make_bar(self) -> pn.Column:
        self.show_button = pn.widgets.Button(label=f"show {self.title.lower()}", width=BAR_WIDTH - 4, height=170,
                                             margin=(6, 2), color="light", stylesheets=[_BAR_BUTTON_CSS],
                                             css_classes=["viewer-panel-show"])
        self.show_button.on_click(lambda e: setattr(self, "collapsed", False))
        bar = pn.Column(self.show_button, width=BAR_WIDTH, sizing_mode="stretch_height", margin=0, visible=False,
                        styles={self._border: "1px solid #dee2e6", "background": "#f6f8fa"},
                        css_classes=[f"viewer-bar-{self.side}"])
        self._row.objects = [self.panel, bar] if self.side == "left" else [bar, self.panel]
        return bar

    @param.depends("collapsed", watch=True)
    def _sync(self) -> None:
        if self.bar is None:
            self.bar = self._make_bar()
        self.panel.visible = not self.collapsed
        self.bar.visible = self.collapsed

    def __panel__(self):
        return self._row
