"""Which modules of ``viewer/`` one tile render touches (issue 8: at most four below the handler).

    uv run python benchmarks/trace_tile.py [--checkout DIR]

Renders one map tile of an image, a mask and a class layer with ``tiles.render_tile``, cold
(first render in the process) and warm (the same tile again), under ``sys.setprofile``, and
prints for each the modules of ``viewer/`` whose Python functions were called, with the
functions. Value types and containers (``grid``, ``graph``, ``raster``, ``cache``) are listed
apart: their methods are a value's own operations (a grid's bounds and key, a raster's mask
algebra, a bounded dict's get), not a step of the path; ``--values`` counts them too (see
docs/ARCHITECTURE.md "The path of a tile" for the rule).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("VIEWER_STATE_DIR", tempfile.mkdtemp())

#: Value types and containers: their methods are a value's own operations (properties, mask algebra,
#: a grid's bounds, a bounded dict's get), listed apart from the modules that do a tile's work.
VALUE_MODULES = ("grid", "graph", "raster", "cache")


def trace(fn, root: str) -> dict[str, set[str]]:
    """Modules under ``root`` (dotted names relative to ``viewer``) whose Python functions ``fn`` called."""
    seen: dict[str, set[str]] = defaultdict(set)

    def profile(frame, event, _arg):
        if event != "call":
            return
        path = frame.f_code.co_filename
        if path.startswith(root):
            module = path[len(root):].removesuffix(".py").replace(os.sep, ".")
            seen[module].add(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return seen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkout", help="import viewer from this checkout instead of this one")
    p.add_argument("--values", action="store_true", help="count value types and containers as modules too")
    p.add_argument("--tile", help="z,x,y (default: the zoom-12 tile at the centre of the Landsat sample)")
    args = p.parse_args()
    checkout = Path(args.checkout or Path(__file__).resolve().parents[1]).resolve()
    sys.path.insert(0, str(checkout))

    import viewer
    import morecantile
    from viewer.core.layers import class_layer, describe, image_layer, mask_layer
    from viewer.core.tiles import render_tile

    root = str(Path(viewer.__file__).parent) + os.sep
    ls = viewer.Image("LANDSAT/LC08/SAMPLE")
    cloud = ls.select("BQA").rightShift(14).bitwiseAnd(3).eq(3)
    specs = {
        "image": image_layer(ls, {"bands": ["B4", "B3", "B2"], "min": 6000, "max": 12000}),
        "mask": mask_layer(cloud, ["ff0000"], 0.7),
        "class": class_layer(viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")),
    }
    if args.tile:
        z, x, y = (int(v) for v in args.tile.split(","))
    else:
        left, bottom, right, top = describe(specs["image"])["bounds_wgs84"]
        t = morecantile.tms.get("WebMercatorQuad").tile((left + right) / 2, (bottom + top) / 2, 12)
        z, x, y = t.z, t.x, t.y
    print(f"viewer from {checkout}; tile {z}/{x}/{y}; modules of viewer/ called below tiles.render_tile")
    worst = 0
    for kind, spec in specs.items():
        for state in ("cold", "warm"):
            seen = trace(lambda: render_tile(spec, z, x, y, "png"), root)
            work = {m: f for m, f in seen.items() if args.values or m.rsplit(".", 1)[-1] not in VALUE_MODULES}
            values = {m: f for m, f in seen.items() if m not in work}
            worst = max(worst, len(work))
            print(f"\n{kind} {state}: {len(work)} modules: {', '.join(sorted(work))}"
                  + (f"  (+ values and containers: {', '.join(sorted(values))})" if values else ""))
            for m in sorted(seen):
                print(f"  {m:22s} {', '.join(sorted(seen[m]))}")
    print(f"\nat most {worst} modules on one render")


if __name__ == "__main__":
    main()
