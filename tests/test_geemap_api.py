"""geemap calls that tutorial code uses, on viewer.Map (no browser needed)."""
from __future__ import annotations

import pytest

import viewer


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
