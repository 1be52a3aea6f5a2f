"""geemap calls that tutorial code uses, on viewer.Map (no browser needed)."""
from __future__ import annotations

import panel as pn
import pytest

import viewer
from viewer.ui.user_legends import user_legend_html


def test_map_center_zoom_and_basemaps():
    m = viewer.Map(center=(30.7, -87.4), zoom=10)  # geemap: center is (lat, lon)
    lon, lat = m.state.center
    assert (round(lat, 4), round(lon, 4), m.state.zoom) == (30.7, -87.4, 10)
    for name, expected in (("SATELLITE", "Esri World Imagery (satellite)"), ("OpenStreetMap", "OpenStreetMap"),
                           ("ROADMAP", "CartoDB Positron (light)")):
        m.add_basemap(name)
        assert m.state.basemap == expected
    m.add_layer_control()  # the layer panel is always there: accepted, nothing to do
    with pytest.raises(viewer.InvalidArgument, match="basemap"):
        m.add_basemap("Stamen.Watercolor")


# add_colorbar / add_legend ---------------------------------------------------------------------------
def test_add_colorbar_from_vis_params():
    m = viewer.Map()
    entry = m.add_colorbar({"min": -1, "max": 1, "palette": ["red", "ffffff", "#0000ff"]}, label="NDVI",
                           position="bottomright", font_size=9)
    assert entry == {"kind": "colorbar", "colors": ["#ff0000", "#ffffff", "#0000ff"], "min": -1.0, "max": 1.0,
                     "label": "NDVI", "discrete": False, "orientation": "horizontal", "layer_name": None}
    assert m.user_legends == [entry]
    html = user_legend_html(entry)
    assert "linear-gradient(to right, #ff0000, #ffffff, #0000ff)" in html
    assert ">-1<" in html and ">1<" in html and "NDVI" in html


def test_add_colorbar_named_palette_cmap_and_discrete():
    m = viewer.Map()
    viridis = m.add_colorbar({"min": 0, "max": 100, "palette": "viridis"})
    assert viridis["colors"][0] == "#440154" and viridis["colors"][-1] == "#fde725"
    gray = m.add_colorbar({"min": [0], "max": [255]}, cmap="Greys")  # no palette: the cmap
    assert (gray["min"], gray["max"]) == (0.0, 255.0) and gray["colors"][0] == "#ffffff"
    steps = m.add_colorbar({"min": 0, "max": 3, "palette": ["red", "blue"]}, discrete=True, orientation="vertical")
    html = user_legend_html(steps)
    assert "to top, #ff0000 0% 50%, #0000ff 50% 100%" in html
    assert len(m.user_legends) == 3


@pytest.mark.parametrize("call, match", [
    (lambda m: m.add_colorbar("viridis"), "vis_params must be a dict"),
    (lambda m: m.add_colorbar({"min": 5, "max": 1, "palette": "viridis"}), "min 5 must be below max 1"),
    (lambda m: m.add_colorbar({"min": [0, 0, 0], "max": 1}), "one band"),
    (lambda m: m.add_colorbar({"min": 0, "max": 1, "palette": "no-such-palette"}), "no-such-palette"),
    (lambda m: m.add_colorbar({"min": 0, "max": 1}, orientation="diagonal"), "orientation 'diagonal'"),
    (lambda m: m.add_colorbar({"min": 0, "max": 1}, colour="red"), r"unexpected keyword\(s\) \['colour'\]"),
    (lambda m: m.add_legend(legend_dict=["a", "b"]), "legend_dict must be a dict"),
    (lambda m: m.add_legend(keys=["a", "b"], colors=["red"]), "2 labels and 1 colours"),
    (lambda m: m.add_legend(), "needs legend_dict"),
    (lambda m: m.add_legend(legend_dict={"a": "not a colour"}), "colour 'not a colour'"),
    (lambda m: m.add_legend(builtin_legend="CORINE"), "builtin_legend 'CORINE' is not allowed"),
    (lambda m: m.add_legend(keys=["a"], labels=["a"], colors=["red"]), "keys or labels"),
])
def test_bad_legend_calls_are_typed(call, match):
    m = viewer.Map()
    with pytest.raises(viewer.InvalidArgument, match=match):
        call(m)
    assert m.user_legends == []


def test_add_legend_forms():
    m = viewer.Map()
    a = m.add_legend(title="Land cover", legend_dict={"Trees": "006400", "Water": (0, 100, 200)})
    assert a["items"] == [("Trees", "#006400"), ("Water", "#0064c8")] and a["title"] == "Land cover"
    b = m.add_legend(title="Masks", keys=["cloud", "shadow"], colors=["white", "#333333"])
    c = m.add_legend(title="Masks", labels=["cloud", "shadow"], colors=["white", "#333333"])  # foliumap
    d = m.add_legend(legend_title="Masks", legend_keys=["cloud", "shadow"], legend_colors=["white", "#333333"])
    assert b["items"] == c["items"] == d["items"] == [("cloud", "#ffffff"), ("shadow", "#333333")]
    assert d["title"] == "Masks"
    nlcd = m.add_legend(title="NLCD Land Cover", builtin_legend="NLCD")
    assert nlcd["items"][0] == ("11 Open Water", "#466b9f") and len(nlcd["items"]) == 20
    esa = m.add_legend(builtin_legend="esa_worldcover")  # case-insensitive
    assert ("80 Open water", "#0064c8") in esa["items"] and esa["title"] == "Legend"
    assert [e["title"] for e in m.user_legends] == ["Land cover", "Masks", "Masks", "Masks", "NLCD Land Cover",
                                                    "Legend"]


def test_user_legend_panel_shows_escaped_entries():
    m = viewer.Map()
    panel = m.user_legend_panel()
    assert panel.column.objects == []  # nothing to show: no HTML pane at all
    m.add_legend(title="<img src=x onerror=alert(1)>", legend_dict={"a <b>": "red"})
    m.add_colorbar({"min": 0, "max": 1, "palette": "viridis"}, label="x & y")
    [pane] = panel.column.objects
    text = pane.object
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "<img" not in text
    assert "a &lt;b&gt;" in text and "background:#ff0000" in text
    assert "x &amp; y" in text and "#440154" in text
    assert text.index("&lt;img") < text.index("x &amp; y")  # in the order added


def test_user_legends_show_in_the_map_views_legend(tmp_path, monkeypatch):
    """add_colorbar on a displayed map: the colour bar appears in the legend card (page) and tab (notebook)."""
    monkeypatch.setenv("VIEWER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("VIEWER_TILE_URL", "")
    m = viewer.Map()
    m.add_layer(viewer.Image("COPERNICUS/S2/SAMPLE"), {"bands": ["B4"], "min": 0, "max": 3000}, "s2")
    view = m.view
    legend_card = view._side_cards()[0]
    tabs = view.layout()[1][1]
    m.add_colorbar({"min": 0, "max": 3000, "palette": "viridis"}, label="B4 reflectance")
    for holder in (legend_card, tabs[1]):
        html = [p.object for p in holder.select(pn.pane.HTML)]
        assert any("B4 reflectance" in h and "#440154" in h for h in html), html
