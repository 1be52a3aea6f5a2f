"""Page benchmark: the viewer's demo page against a bare Panel page showing the same tiles.

    uv run python benchmarks/bench_page.py                       # cold, warm, pan, zoom (3 runs)
    uv run python benchmarks/bench_page.py --runs 1 --sessions 1,5,20 --after-close 90

Both servers run this checkout on free 127.0.0.1 ports with one temporary ``$VIEWER_STATE_DIR``:
``viewer serve`` (the demo app) and ``benchmarks/bare_page.py`` (``pn.serve`` of one Bokeh figure
in Web Mercator with a ``WMTSTileSource`` per visible demo layer, served by the viewer's own tile
routes). Headless Chromium (``$VIEWER_CHROMIUM`` or ``/usr/bin/chromium``, the flags of
``tests/conftest.py``) at 1280x800, one new browser context per page load (empty browser cache).

Page mode, per run (fresh servers each run):

* cold: the first page of each server process (server tile cache empty); the bare page is opened
  with the view and plot frame size the viewer page ended at, so it asks for the same tiles;
* warm: a second page of each (server caches warm, browser cache empty);
* pan: on the warm page, move the view 1.35 widths left and 0.6 heights down; zoom: 5x in about
  the centre (two zoom levels: BokehJS has prefetched the next level's tiles around the view). By default (``--gestures js``) the plot's ranges are set in the page, as BokehJS's
  pan and wheel-zoom tools do; ``--gestures mouse`` drags and wheels with Playwright's mouse
  instead, which mostly measures how fast headless Chromium works through synthetic input events
  (0.5-1.5 s for the bare page alone).

For each it prints the time to the first byte of the page (navigation timing ``responseStart``),
to the first tile request, to the last response of a tile at the zoom level the view is drawn at
("visible tiles loaded": BokehJS asks for the tiles of the view plus a ring of one tile) and to
the last tile response of all (with BokehJS's prefetch of the next level's tiles, which it starts
500 ms after the map last painted). For page loads also the phases before the first tile: all scripts and
stylesheets the page asked for before DOMContentLoaded received, DOMContentLoaded (the scripts
evaluated), the websocket open, and the Bokeh document received over it (the page's WebSocket is
wrapped to note the times). Tile responses are counted until no tile request started or
ended for ``--quiet`` s and every requested tile was answered. Also the number of tile requests
(at the view's level / all) and viewer/bare ratios. For pan and zoom, times are from the start of the gesture. The viewer's
requests for layers that are not shown are counted separately ("hidden").

Sessions mode (``--sessions 1,5,20``): one ``viewer serve`` and one bare page server; after a
warm-up page on each, for each N opens N viewer pages at once (N browser contexts) and prints each
one's time to usable (its visible map tiles loaded, as above) and when its legend appeared, the
server's RSS (VmRSS of the process and its children, from /proc) before, at its peak and with the N
pages open, then closes them and samples the RSS until ``--after-close`` s later (split by role: the
server process, its render processes, multiprocessing's resource tracker); then the same N
bare pages at once, as the floor this machine and browser set (both share the 2 cores).
"One alone" is the first count given (use 1 first).

Only loopback addresses are used; every wait is bounded (``--timeout``). Requests the pages make
to other hosts are counted and reported (there should be none).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TILE = re.compile(r"/tiles/([0-9a-f]{64})/(\d+)/(\d+)/(\d+)\.png")
VIEWPORT = {"width": 1280, "height": 800}
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

_TIMINGS_JS = r"""() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const tiles = performance.getEntriesByType('resource')
      .filter(e => /\/tiles\/[0-9a-f]{64}\//.test(e.name))
      .map(e => [e.name, e.startTime, e.responseEnd]);
  let level = null;  // the zoom level BokehJS draws the current view at
  if (typeof Bokeh !== 'undefined' && Bokeh.index != null) {
    const v = Bokeh.index.query_one(v => v.frame != null && v.model != null && v.model.x_range != null);
    const r = v == null ? null : v.model.renderers.find(r => r.tile_source != null && r.visible);
    if (r != null) {
      const xr = v.model.x_range, yr = v.model.y_range, b = v.frame.bbox;
      level = r.tile_source.get_level_by_extent([xr.start, yr.start, xr.end, yr.end], b.height, b.width);
    }
  }
  const dcl = nav ? nav.domContentLoadedEventStart : null;
  const assets = performance.getEntriesByType('resource')
      .filter(e => /\/static\//.test(e.name) && dcl != null && e.startTime < dcl).map(e => e.responseEnd);
  const phases = window._bench_phases || {};
  return {first_byte: nav ? nav.responseStart : null, tiles: tiles, level: level, now: performance.now(),
          assets: assets.length ? Math.max(...assets) : null, dcl: dcl, ws_open: phases.ws_open ?? null,
          doc: phases.doc ?? null};
}"""

#: Page phases (ms from navigation start): when the websocket opened and when the Bokeh document
#: arrived over it (its content frame), recorded by wrapping the page's WebSocket.
_PHASES_INIT = r"""
window._bench_phases = {};
const _BenchWS = window.WebSocket;
window.WebSocket = function (...args) {
  const ws = new _BenchWS(...args);
  ws.addEventListener('open', () => { window._bench_phases.ws_open ??= performance.now(); });
  ws.addEventListener('message', (e) => {
    if (typeof e.data === 'string' && e.data.startsWith('{"doc"')) { window._bench_phases.doc ??= performance.now(); }
  });
  return ws;
};
window.WebSocket.prototype = _BenchWS.prototype;
for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) { window.WebSocket[k] = _BenchWS[k]; }
"""

_FRAME_JS = r"""() => {
  if (typeof Bokeh === 'undefined' || Bokeh.index == null) { return null; }
  const v = Bokeh.index.query_one(v => v.frame != null && v.model != null && v.model.x_range != null);
  if (v == null) { return null; }
  const r = v.canvas_view.el.getBoundingClientRect(), b = v.frame.bbox;
  return {x0: v.model.x_range.start, x1: v.model.x_range.end, y0: v.model.y_range.start,
          y1: v.model.y_range.end, fw: b.width, fh: b.height,
          cx: r.left + b.left + b.width / 2, cy: r.top + b.top + b.height / 2};
}"""


# servers ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_by_process(pid: int) -> dict[str, int]:
    """VmRSS (KiB) of ``pid`` and its descendants, summed by role: ``server`` (``pid``), ``workers``
    (multiprocessing's spawned render processes), ``tracker`` (its resource tracker), ``other``."""
    def status(p: int | str) -> str:
        try:
            return Path(f"/proc/{p}/status").read_text()
        except OSError:
            return ""

    def field(text: str, name: str) -> str:
        return next((ln.split()[1] for ln in text.splitlines() if ln.startswith(name + ":")), "0")

    def role(p: int) -> str:
        if p == pid:
            return "server"
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            return "other"
        return "tracker" if b"resource_tracker" in cmd else "workers" if b"spawn_main" in cmd else "other"

    parent = {int(d): int(field(status(d), "PPid")) for d in os.listdir("/proc") if d.isdigit()}
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += [c for c, pp in parent.items() if pp == tree[-1]]
    roles: dict[str, int] = {}
    for p in tree:
        name = role(p)
        roles[name] = roles.get(name, 0) + int(field(status(p), "VmRSS"))
    return roles


def rss_kib(pid: int) -> int:
    """Summed VmRSS (KiB) of ``pid`` and all its descendants."""
    return sum(rss_by_process(pid).values())


class Server:
    """A server subprocess on a free loopback port."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = log_dir / f"{name}-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([*command, "--port", str(self.port)], cwd=ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/"

    def wait_ready(self, timeout: float) -> None:
        """Until the event loop answers (a 404 from the tile routes: no session is made)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "tiles", timeout=5):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise SystemExit(f"{self.name} did not start; log:\n{self.log.read_text()[-3000:]}")

    def rss_mb(self) -> float:
        return rss_kib(self.proc.pid) / 1024

    def rss_roles(self) -> str:
        """The process tree's RSS by role, e.g. ``server 190 + workers 170 + tracker 12``."""
        return " + ".join(f"{role} {kib / 1024:.0f}" for role, kib in rss_by_process(self.proc.pid).items())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def demo_tokens() -> dict[str, tuple[str, bool]]:
    """token -> (layer name, shown) of the demo map (registers its specs in $VIEWER_STATE_DIR)."""
    sys.path.insert(0, str(ROOT))
    from viewer.ui.app import demo_map

    return {l.token: (l.name, l.visible) for l in demo_map().state.layers}


# one page ----------------------------------------------------------------------------------------
class TileLog:
    """Tile requests of one page (Playwright events), to know when the map has gone quiet."""

    def __init__(self, page) -> None:
        self.started = 0
        self.ended = 0
        self.failed = 0
        self.urls: list[str] = []
        self.external: list[str] = []
        self.last = time.monotonic()
        page.on("request", self._request)
        page.on("requestfinished", lambda r: self._end(r, False))
        page.on("requestfailed", lambda r: self._end(r, True))

    def _request(self, request) -> None:
        host = urlsplit(request.url).hostname or ""
        if request.url.startswith("http") and host not in LOOPBACK:
            self.external.append(request.url)
        if TILE.search(request.url):
            self.started += 1
            self.urls.append(request.url)
            self.last = time.monotonic()

    def _end(self, request, failed: bool) -> None:
        if TILE.search(request.url):
            self.ended += 1
            self.failed += failed
            self.last = time.monotonic()

    async def wait_quiet(self, quiet: float, timeout: float, since: int = 0, first: float | None = None) -> bool:
        """Until at least one tile request after ``since`` was made, all were answered, and nothing
        happened for ``quiet`` s. False on timeout, or when no tile was asked for within ``first`` s."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if (self.started > since and self.ended == self.started
                    and time.monotonic() - self.last >= quiet):
                return True
            if first is not None and self.started == since and time.monotonic() - t0 > first:
                return False
            await asyncio.sleep(0.05)
        return False


async def new_page(browser):
    context = await browser.new_context(viewport=VIEWPORT)
    # the default buffer holds 250 entries; a map page makes more tile requests than that
    await context.add_init_script("performance.setResourceTimingBufferSize(100000)")
    await context.add_init_script(_PHASES_INIT)
    page = await context.new_page()
    return context, page


def summarize(timings: dict, since_ms: float, tokens: dict, log: TileLog) -> dict:
    """Seconds from ``since_ms`` (page: navigation start) to the first tile request, to the last
    response of a tile at the zoom level the view is drawn at ("visible tiles loaded"; BokehJS asks
    for the view plus a ring of one tile) and to the last tile response of all (with BokehJS's
    prefetch of the next level's tiles, 500 ms after the map last painted)."""
    entries = [e for e in timings["tiles"] if e[1] >= since_ms]
    hidden = sum(1 for url, *_ in entries if tokens.get(TILE.search(url).group(1), ("", True))[1] is False)
    zooms = sorted({int(TILE.search(url).group(2)) for url, *_ in entries})
    level = timings.get("level")
    visible = [e for e in entries if level is None or int(TILE.search(e[0]).group(2)) == level]
    return {
        "first_byte": timings["first_byte"] / 1e3 if since_ms == 0 and timings["first_byte"] else None,
        **{key: (timings[key] / 1e3 if since_ms == 0 and timings.get(key) is not None else None) for key in PHASES},
        "first_tile": (min(e[1] for e in entries) - since_ms) / 1e3 if entries else None,
        "tiles_loaded": (max(e[2] for e in visible) - since_ms) / 1e3 if visible else None,
        "last_tile": (max(e[2] for e in entries) - since_ms) / 1e3 if entries else None,
        "requests": len(entries), "visible": len(visible), "level": level, "hidden": hidden, "zooms": zooms,
        "failed": log.failed, "external": len(log.external),
    }


async def wait_panels(page, selector: str, timeout: float) -> float | None:
    """Seconds from navigation start until ``selector`` is attached (None on timeout)."""
    try:
        await page.locator(selector).first.wait_for(state="attached", timeout=timeout * 1e3)
        return await page.evaluate("performance.now()") / 1e3
    except Exception:  # noqa: BLE001 - reported as missing
        return None


async def load(browser, url: str, tokens: dict, args, panels: str | None = None) -> tuple:
    """Open ``url`` in a new context; (context, page, log, result)."""
    context, page = await new_page(browser)
    log = TileLog(page)
    panel_task = asyncio.ensure_future(wait_panels(page, panels, args.timeout)) if panels else None
    await page.goto(url, wait_until="commit", timeout=args.timeout * 1e3)
    ok = await log.wait_quiet(args.quiet, args.timeout)
    result = summarize(await page.evaluate(_TIMINGS_JS), 0.0, tokens, log)
    result["timeout"] = not ok
    if panel_task is not None:
        result["panels"] = await panel_task
    return context, page, log, result


_MOVE_JS = r"""([kind]) => {
  const v = Bokeh.index.query_one(v => v.frame != null && v.model != null && v.model.x_range != null);
  const xr = v.model.x_range, yr = v.model.y_range;
  const w = xr.end - xr.start, h = yr.end - yr.start;
  const t0 = performance.now();
  if (kind === 'pan') {          // 1.35 views left and 0.6 views down: past the ring of tiles at any level
    xr.setv({start: xr.start - 1.35 * w, end: xr.end - 1.35 * w});
    yr.setv({start: yr.start - 0.6 * h, end: yr.end - 0.6 * h});
  } else {                       // zoom in 5x about the centre: two levels down, past BokehJS's prefetch
    const cx = (xr.start + xr.end) / 2, cy = (yr.start + yr.end) / 2;
    xr.setv({start: cx - w / 10, end: cx + w / 10});
    yr.setv({start: cy - h / 10, end: cy + h / 10});
  }
  return t0;
}"""


async def gesture(page, log: TileLog, kind: str, tokens: dict, args) -> dict:
    """Pan or zoom the map and time its tiles from the moment of the change.

    ``--gestures js`` (default) sets the plot's ranges in the page, as BokehJS's pan and wheel-zoom
    tools do at the end of a gesture; ``mouse`` drags / wheels with Playwright's mouse, whose timing
    is dominated by how fast headless Chromium works through the synthetic input events."""
    frame = await page.evaluate(_FRAME_JS)
    cx, cy = frame["cx"], frame["cy"]
    since = log.started
    if args.gestures == "js":
        t0 = await page.evaluate(_MOVE_JS, [kind])
    else:
        t0 = await page.evaluate("performance.now()")
        await page.mouse.move(cx, cy)
        if kind == "pan":  # three drags, 1.35 frame widths to the left and 0.6 heights up in all: past the
            for _ in range(3):  # ring of tiles BokehJS loads around the view, at any zoom level
                await page.mouse.move(cx + 0.225 * frame["fw"], cy + 0.1 * frame["fh"])
                await page.mouse.down()
                await page.mouse.move(cx - 0.225 * frame["fw"], cy - 0.1 * frame["fh"], steps=6)
                await page.mouse.up()
        else:
            for _ in range(3):
                await page.mouse.wheel(0, -200)
                await page.wait_for_timeout(100)
    ok = await log.wait_quiet(args.quiet, args.timeout, since=since, first=min(args.timeout, 20.0))
    result = summarize(await page.evaluate(_TIMINGS_JS), t0, tokens, log)
    result["timeout"] = not ok
    return result


# reporting ---------------------------------------------------------------------------------------
def fmt_s(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} s"


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b <= 0 else f"{a / b:.2f}×"


def print_case(case: str, viewer: dict, bare: dict) -> None:
    print(f"  {case}:")
    for key, label in CASE_ROWS:
        if viewer.get(key) is None and bare.get(key) is None:
            continue
        print(f"    {label:24s} viewer {fmt_s(viewer[key]):>9s}   bare {fmt_s(bare[key]):>9s}   "
              f"ratio {ratio(viewer[key], bare[key])}")
    print(f"    {'tile requests':24s} viewer {viewer['requests']:>7d}   bare {bare['requests']:>7d}   "
          f"(at the view's level {viewer['level']}/{bare['level']}: viewer {viewer['visible']}, bare "
          f"{bare['visible']}; viewer: {viewer['hidden']} for hidden layers; levels viewer {viewer['zooms']}, "
          f"bare {bare['zooms']})")
    if viewer.get("panels") is not None:
        print(f"    {'side panels shown':22s} viewer {fmt_s(viewer['panels']):>9s}")
    notes = [f"{who}: {r['failed']} failed tile requests" for who, r in (("viewer", viewer), ("bare", bare))
             if r["failed"]]
    notes += [f"{who}: timed out" for who, r in (("viewer", viewer), ("bare", bare)) if r["timeout"]]
    notes += [f"{who}: {r['external']} requests to other hosts" for who, r in (("viewer", viewer), ("bare", bare))
              if r["external"]]
    for n in notes:
        print(f"    ! {n}")


#: Page load phases (page loads only): scripts and stylesheets the page asked for before
#: DOMContentLoaded all received; DOMContentLoaded (scripts evaluated); websocket open; document received.
PHASES = {"assets": "page scripts/styles loaded", "dcl": "DOMContentLoaded", "ws_open": "websocket open",
          "doc": "document received"}
CASE_ROWS = (("first_byte", "first byte"), *PHASES.items(), ("first_tile", "first tile requested"),
             ("tiles_loaded", "visible tiles loaded"), ("last_tile", "last tile (with prefetch)"))


def spread(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    return f"{statistics.median(vals):.2f} ({min(vals):.2f}–{max(vals):.2f})"


# modes -------------------------------------------------------------------------------------------
def viewer_command(args) -> list[str]:
    """``viewer serve`` on loopback, with ``--viewer-args``."""
    return [sys.executable, "-m", "viewer.cli", "serve", "--address", "127.0.0.1", *args.viewer_args.split()]


async def page_mode(browser, args, env: dict, log_dir: Path, tokens: dict) -> None:
    results: dict[str, list[tuple[dict, dict]]] = {"cold": [], "warm": [], "pan": [], "zoom": []}
    for run in range(1, args.runs + 1):
        viewer = Server("viewer", viewer_command(args), env,
                        log_dir)
        bare = Server("bare", [sys.executable, str(ROOT / "benchmarks" / "bare_page.py")], env, log_dir)
        try:
            viewer.wait_ready(args.timeout)
            bare.wait_ready(args.timeout)
            await asyncio.sleep(args.rest)
            print(f"run {run}: viewer {viewer.url} (RSS {viewer.rss_mb():.0f} MB), bare {bare.url} "
                  f"(RSS {bare.rss_mb():.0f} MB)", flush=True)
            pages = {}
            for case in ("cold", "warm"):
                for old in pages.values():
                    await old[0].close()
                vc, vp, vlog, vr = await load(browser, viewer.url, tokens, args, panels=".viewer-legend-title")
                frame = await vp.evaluate(_FRAME_JS)
                await asyncio.sleep(args.rest)  # let the viewer finish its deferred work before the bare page
                query = urlencode({k: repr(frame[k]) for k in ("x0", "y0", "x1", "y1", "fw", "fh")})
                bc, bp, blog, br = await load(browser, f"{bare.url}?{query}", tokens, args)
                await asyncio.sleep(args.rest)
                pages = {"viewer": (vc, vp, vlog), "bare": (bc, bp, blog)}
                results[case].append((vr, br))
                print_case(case, vr, br)
            for case in ("pan", "zoom"):
                vr = await gesture(pages["viewer"][1], pages["viewer"][2], case, tokens, args)
                await asyncio.sleep(args.rest)
                br = await gesture(pages["bare"][1], pages["bare"][2], case, tokens, args)
                await asyncio.sleep(args.rest)
                results[case].append((vr, br))
                print_case(case, vr, br)
            for c, _p, _l in pages.values():
                await c.close()
        finally:
            viewer.stop()
            bare.stop()
    if args.runs > 1:
        print(f"\nsummary over {args.runs} runs: median (min–max)")
        for case, pairs in results.items():
            for key, label in CASE_ROWS:
                v = [p[0][key] for p in pairs]
                b = [p[1][key] for p in pairs]
                if all(x is None for x in v):
                    continue
                r = [x / y for x, y in zip(v, b) if x is not None and y]
                print(f"  {case:5s} {label:26s} viewer {spread(v):>20s} s   bare {spread(b):>20s} s   "
                      f"ratio {spread(r)}")
            n_v = [f"{p[0]['visible']}/{p[0]['requests']}" for p in pairs]
            n_b = [f"{p[1]['visible']}/{p[1]['requests']}" for p in pairs]
            print(f"  {case:5s} {'tile requests (view level/all)':26s} viewer {n_v}   bare {n_b}")


async def open_many(browser, url: str, n: int, tokens: dict, args, panels: str | None) -> tuple[list, float]:
    """N pages at once, each in its own context; (load results, seconds until all were done)."""
    t0 = time.monotonic()
    loads = await asyncio.gather(*(load(browser, url, tokens, args, panels=panels) for _ in range(n)))
    return loads, time.monotonic() - t0


async def sessions_mode(browser, args, env: dict, log_dir: Path, tokens: dict) -> None:
    viewer = Server("viewer", viewer_command(args), env,
                    log_dir)
    bare = Server("bare", [sys.executable, str(ROOT / "benchmarks" / "bare_page.py")], env, log_dir)
    try:
        viewer.wait_ready(args.timeout)
        bare.wait_ready(args.timeout)
        await asyncio.sleep(args.rest)
        print(f"sessions: viewer {viewer.url}; RSS at rest (no page opened yet) {viewer.rss_mb():.0f} MB ({viewer.rss_roles()})",
              flush=True)
        for server, panels in ((viewer, ".viewer-legend-title"), (bare, None)):
            context, _page, _log, warm = await load(browser, server.url, tokens, args, panels=panels)
            await context.close()
            print(f"  {server.name} warm-up page: usable {fmt_s(warm['tiles_loaded'])}"
                  + (f", legend {fmt_s(warm.get('panels'))}" if panels else ""), flush=True)
        await settle_memory(viewer, args.after_close, "after the warm-up page closed")
        alone: dict[str, float | None] = {}
        for n in args.sessions:
            before = viewer.rss_mb()
            peak = [before]
            stop = asyncio.Event()

            async def sample() -> None:
                while not stop.is_set():
                    peak.append(viewer.rss_mb())
                    await asyncio.sleep(0.25)

            sampler = asyncio.ensure_future(sample())
            loads, wall = await open_many(browser, viewer.url, n, tokens, args, ".viewer-legend-title")
            during = viewer.rss_mb()
            stop.set()
            await sampler
            slowest = report_many("viewer", n, loads, wall, alone)
            print(f"    RSS before {before:.0f} MB, peak {max(peak):.0f} MB, with {n} open {during:.0f} MB "
                  f"(+{(during - before) / n:.1f} MB per page)", flush=True)
            for context, *_ in loads:
                await context.close()
            await settle_memory(viewer, args.after_close, f"after the {n} closed")
            bare_loads, bare_wall = await open_many(browser, bare.url, n, tokens, args, None)
            bare_slowest = report_many("bare", n, bare_loads, bare_wall, alone)
            for context, *_ in bare_loads:
                await context.close()
            print(f"    slowest viewer / slowest bare: {ratio(slowest, bare_slowest)}", flush=True)
            await asyncio.sleep(args.rest)
    finally:
        viewer.stop()
        bare.stop()


def report_many(name: str, n: int, loads: list, wall: float, alone: dict) -> float | None:
    usable = [r["tiles_loaded"] for *_, r in loads]
    slowest = max((u for u in usable if u is not None), default=None)
    if name not in alone:
        alone[name] = slowest
    panels = [r.get("panels") for *_, r in loads]
    print(f"  {name}, {n} at once: usable (visible map tiles loaded) "
          + ", ".join(fmt_s(u) for u in sorted(usable, key=lambda u: 1e9 if u is None else u)))
    legend = ""
    if name == "viewer":
        legend = (f"; legends shown: slowest {fmt_s(max((p for p in panels if p is not None), default=None))} "
                  f"({sum(p is None for p in panels)} missing)")
    print(f"    slowest {fmt_s(slowest)} = {ratio(slowest, alone[name])} the first count's slowest{legend}; "
          f"all done after {wall:.1f} s; tile requests per page {sorted({r['requests'] for *_, r in loads})}; "
          f"timeouts {sum(r['timeout'] for *_, r in loads)}", flush=True)
    return slowest


async def settle_memory(server: Server, seconds: float, what: str) -> None:
    marks = []
    t0 = time.monotonic()
    step = max(1.0, seconds / 3) if seconds > 0 else 0
    while True:
        elapsed = time.monotonic() - t0
        marks.append(f"{elapsed:.0f} s {server.rss_mb():.0f} MB ({server.rss_roles()})")
        if elapsed >= seconds:
            break
        await asyncio.sleep(min(step, seconds - elapsed))
    print(f"    RSS {what}: " + ", ".join(marks), flush=True)


async def main_async(args) -> None:
    from playwright.async_api import async_playwright

    chromium = os.environ.get("VIEWER_CHROMIUM") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp:
        tmp_path = Path(tmp)
        env = {**os.environ, "VIEWER_STATE_DIR": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
        env.pop("VIEWER_TILE_URL", None)
        os.environ["VIEWER_STATE_DIR"] = env["VIEWER_STATE_DIR"]
        tokens = demo_tokens()
        print(f"demo layers: " + "; ".join(f"{name} ({'shown' if shown else 'hidden'})"
                                           for name, shown in tokens.values()))
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            try:
                if args.sessions:
                    await sessions_mode(browser, args, env, tmp_path, tokens)
                else:
                    await page_mode(browser, args, env, tmp_path, tokens)
            finally:
                await browser.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="page mode: runs, each with fresh servers (default 3)")
    p.add_argument("--sessions", default="", help="sessions mode: comma-separated page counts, e.g. 1,5,20")
    p.add_argument("--after-close", type=float, default=90.0,
                   help="sessions mode: seconds to watch the server's memory after the pages close (default 90)")
    p.add_argument("--quiet", type=float, default=1.0, help="seconds without tile traffic that end a load")
    p.add_argument("--gestures", choices=("js", "mouse"), default="js",
                   help="pan/zoom by setting the plot's ranges in the page (js, default) or with the mouse")
    p.add_argument("--rest", type=float, default=2.0, help="pause between steps, seconds (default 2)")
    p.add_argument("--timeout", type=float, default=600.0, help="bound of every wait, seconds")
    p.add_argument("--viewer-args", default="", help="more arguments of viewer serve, e.g. '--session-pool 0'")
    args = p.parse_args(argv)
    args.sessions = [int(n) for n in args.sessions.split(",") if n.strip()]
    if any(n < 1 or n > 100 for n in args.sessions):
        raise SystemExit("--sessions: counts between 1 and 100")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
