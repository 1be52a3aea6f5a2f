"""A small app for the compare browser tests (tests/test_compare_browser.py): three pages on one server.

``/compare``: the Landsat sample with a prediction/truth pair sharing the rule-class table and the
compare panel; ``/split``: a swipe map, rule classes left, the prediction right; ``/time``: the dated
Landsat collection as a layer with its time slider and the click time series.

    python tests/compare_app.py PORT
"""
from __future__ import annotations

import sys

import panel as pn

import viewer
from viewer.core.classes import Classes
from viewer.server.routes import tile_routes
from viewer.ui.compare import ComparePanel
from viewer.ui.map import Map
from viewer.ui.timeseries import TimePanel

RULES = "VIEWER/SAMPLE_CLASSES/LC08_RULES"
KMEANS = "VIEWER/SAMPLE_CLASSES/LC08_KMEANS"
#: k-means cluster -> rule class (cluster 0 is mostly cloud, the others mostly vegetation: assets/catalog.json)
RELABEL = {0: 3, 1: 2, 2: 2, 3: 2}
COLLECTION = "LANDSAT/LC08/C01/T1_RT"
TRUE_COLOUR = {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 12000}
HEIGHT = 560


def prediction() -> viewer.Image:
    km = viewer.Image(KMEANS)
    out = None
    for src, dst in RELABEL.items():
        term = km.eq(src).multiply(dst)
        out = term if out is None else out.add(term)
    return out.rename("prediction")


#: The prediction's colours (same ids and names as the rule classes, other colours): each side of a swipe
#: is then told apart by colour alone.
PREDICTION_COLORS = {0: "#6a3d9a", 1: "#e31a1c", 2: "#ffd700", 3: "#ff7f00"}


def prediction_table() -> Classes:
    rules = Classes.from_band(viewer.Image(RULES).bands[0])
    return Classes([dict(c, color=PREDICTION_COLORS[c["id"]]) for c in rules.to_list()])


def pair_map() -> Map:
    m = Map(height=HEIGHT)
    m.add_overlay(viewer.Image(RULES), "truth: rule classes", opacity=1.0)
    m.add_overlay(prediction(), "prediction: k-means relabelled", classes=prediction_table(), opacity=1.0)
    m.center_object("truth: rule classes")
    return m


def compare_page() -> pn.viewable.Viewable:
    m = pair_map()
    panel = ComparePanel(m)
    page = pn.Row(m.view.pane, pn.Column(panel, width=380), sizing_mode="stretch_both")
    page.map, page.panel = m, panel
    return page


def split_page() -> pn.viewable.Viewable:
    m = pair_map()
    return m.split_map("truth: rule classes", "prediction: k-means relabelled", left_label="truth",
                       right_label="prediction")


def time_page() -> pn.viewable.Viewable:
    m = Map(height=HEIGHT)
    m.add_layer(viewer.ImageCollection(COLLECTION), TRUE_COLOUR, "Landsat 8 path 224")
    return pn.Row(m.view.pane, pn.Column(TimePanel(m.view), width=420), sizing_mode="stretch_both")


def serve(port: int) -> None:
    pn.extension()
    pn.serve({"compare": compare_page, "split": split_page, "time": time_page}, port=port, address="127.0.0.1",
             show=False, extra_patterns=tile_routes(), websocket_origin=[f"127.0.0.1:{port}"])


if __name__ == "__main__":
    serve(int(sys.argv[1]))
