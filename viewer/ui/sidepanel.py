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

    One column does both: open, it shows the title row and ``contents``; collapsed, it narrows to
    :data:`BAR_WIDTH` and shows only the "show" button, which is made on the first collapse (a
    session's first document holds only what the open panel shows: every Panel object is
    Python work for every session)."""

    collapsed = param.Boolean(default=False, doc="Only the thin bar is shown.")

    def __init__(self, contents: pn.viewable.Viewable, title: str, side: str = "left", width: int = 300,
                 **params: Any) -> None:
        super().__init__(**params)
        self.side = side
        self.title = title
        self._open_width = width
        inward = "◀" if side == "left" else "▶"
        self.hide_button = pn.widgets.Button(label=f"{inward} hide", width=62, height=28, margin=(4, 4),
                                             color="light", css_classes=["viewer-panel-hide"])
        self.hide_button.on_click(lambda e: setattr(self, "collapsed", True))
        # the title stretches and pushes the button to the far side (no spacer model)
        title_text = pn.widgets.StaticText(value=title, margin=(8, 10, 4, 10), styles=_TITLE_STYLE,
                                           sizing_mode="stretch_width")
        self.head = pn.Row(title_text, self.hide_button, sizing_mode="stretch_width", margin=0)
        self.contents = contents
        self._border = "border-right" if side == "left" else "border-left"
        self.show_button: pn.widgets.Button | None = None
        self.panel = pn.Column(self.head, contents, width=width, sizing_mode="stretch_height", scroll=True, margin=0,
                               styles=self._styles(), css_classes=[f"viewer-panel-{side}"])

    def _styles(self) -> dict:
        styles = {self._border: "1px solid #dee2e6"}
        if self.collapsed:
            styles["background"] = "#f6f8fa"
        elif self.show_button is not None:  # reopened: a style left out of the dict is not unset in the page
            styles["background"] = "transparent"
        return styles

    @param.depends("collapsed", watch=True)
    def _sync(self) -> None:
        if self.collapsed and self.show_button is None:
            self.show_button = pn.widgets.Button(label=f"show {self.title.lower()}", width=BAR_WIDTH - 4, height=170,
                                                 margin=(6, 2), color="light", stylesheets=[_BAR_BUTTON_CSS],
                                                 css_classes=["viewer-panel-show"])
            self.show_button.on_click(lambda e: setattr(self, "collapsed", False))
            self.panel.append(self.show_button)
        self.head.visible = self.contents.visible = not self.collapsed
        if self.show_button is not None:
            self.show_button.visible = self.collapsed
        self.panel.param.update(width=BAR_WIDTH if self.collapsed else self._open_width, styles=self._styles())

    def __panel__(self):
        return self.panel
