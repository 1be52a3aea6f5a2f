"""The bare page of ``bench_page.py``: one Bokeh figure in Web Mercator showing the demo's visible
layers from this server's own tile routes (``viewer.server.tile_routes()``), nothing else.

    uv run python benchmarks/bare_page.py --port 5007

The layer tokens come from ``viewer.ui.app.demo_map()`` built once at start (so the specs are
in ``$VIEWER_STATE_DIR`` and in this process's memory, as in ``viewer serve``). The view and the
plot frame size can be given in the query string (``x0, y0, x1, y1`` in EPSG:3857 metres, ``fw``,
``fh`` in pixels) so that the page asks for exactly the tiles a viewer page showed; without them
the figure fills the window at the demo's fitted view.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import panel as pn  # noqa: E402
from bokeh.models import Range1d, TileRenderer, WMTSTileSource  # noqa: E402
from bokeh.plotting import figure  # noqa: E402

from viewer.server.routes import tile_routes  # noqa: E402
from viewer.ui.app import demo_map  # noqa: E402

_DEMO = demo_map()
LAYERS = [(l.name, l.token, l.opacity) for l in _DEMO.state.layers if l.visible]  # bottom first
VIEW = _DEMO.state.view_for(*_DEMO.state.center, _DEMO.state.zoom)


def _arg(name: str, default: float | None) -> float | None:
    values = (pn.state.session_args or {}).get(name)
    try:
        return float(values[0]) if values else default
    except (TypeError, ValueError):
        return default


def page():
    x0, y0, x1, y1 = (_arg(k, d) for k, d in zip(("x0", "y0", "x1", "y1"), VIEW))
    fw, fh = _arg("fw", None), _arg("fh", None)
    size = ({"frame_width": int(fw), "frame_height": int(fh)} if fw and fh
            else {"sizing_mode": "stretch_both", "min_height": 400})
    fig = figure(x_range=Range1d(x0, x1), y_range=Range1d(y0, y1), x_axis_type="mercator",
                 y_axis_type="mercator", tools="pan,wheel_zoom,reset", active_scroll="wheel_zoom", **size)
    fig.toolbar.logo = None
    for name, token, alpha in LAYERS:
        fig.renderers.append(TileRenderer(tile_source=WMTSTileSource(url=f"tiles/{token}/{{Z}}/{{X}}/{{Y}}.png",
                                                                     wrap_around=False, max_zoom=24),
                                          alpha=alpha, name=name))
    return pn.pane.Bokeh(fig, sizing_mode="stretch_both" if not fw else None)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=5007)
    args = p.parse_args(argv)
    print(f"bare page: serving http://127.0.0.1:{args.port}/ with {len(LAYERS)} layers", flush=True)
    pn.serve({"/": page}, port=args.port, address="127.0.0.1", websocket_origin=[f"127.0.0.1:{args.port}"],
             show=False, extra_patterns=tile_routes(), verbose=False, title="bare")


if __name__ == "__main__":
    main()
