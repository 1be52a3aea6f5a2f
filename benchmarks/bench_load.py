"""Load test of the tile server: N concurrent keep-alive HTTP clients for T seconds.

    uv run python benchmarks/bench_load.py --clients 50 --seconds 60
    uv run python benchmarks/bench_load.py --url http://127.0.0.1:5006 [--pid PID]
    uv run python benchmarks/bench_load.py --vs-titiler /path/to/titiler-env/bin/python   # + titiler beside it

Without ``--url`` it starts ``viewer serve`` of this checkout on a free 127.0.0.1 port with a
temporary ``$VIEWER_STATE_DIR``; with ``--url`` the server must share this process's state
directory (same ``$VIEWER_STATE_DIR``, or both on the default). Layers registered: Landsat 8
true colour, Landsat B5 with a palette, the Landsat rules class layer, Sentinel-2 true colour.
Each client is one HTTP/1.1 keep-alive connection (minimal asyncio client) looping, until the
time is up or ``--max-requests`` are sent, over: ``warm`` (40 %, 7 tiles per layer, fetched
once before the run), ``cold`` (30 %, tiles never requested, walking each layer's extent at
z10..z18), ``304`` (20 %, a fetched tile with ``If-None-Match: <its ETag>``) and ``bad`` (10 %,
malformed/unknown tokens, bad or out-of-range z/x/y, bad extensions). Expected: 200 + PNG,
200 + PNG, 304, 4xx; anything else (5xx, other status, connection error, 30 s timeout) is an
error. Prints counts by status and type, client-side latency percentiles (send to last byte),
and the VmRSS of the server process and its children before and after the run.

``--vs-titiler PYTHON`` (a Python with ``titiler.core`` and ``uvicorn``, e.g. a separate venv) then
serves titiler's ``TilerFactory`` with uvicorn (``--titiler-workers`` processes, default ``--procs``, default
one; loopback; ``viewer serve`` gets ``--num-procs`` of ``--procs``, and with one process renders tiles in
one worker process per CPU) and runs the same clients against both servers, one after the other, over
the same tiles of one layer (Landsat B5, grey, 6000..20000): distinct tiles (the first ``--titiler-tiles``
of a z10..z18 walk over the scene, each rendered once, the same tiles on both sides) and a repeat set
of 7 tiles for ``--titiler-seconds``, and prints tiles/s of each and the ratio. ``--titiler-cog PATH
--titiler-bands 1,2,3 --titiler-range 0,255`` compares on another COG (the same bands and stretch on both
sides; titiler gets ``bidx`` and ``rescale`` per band); ``--titiler-only`` skips the mixed load:

    uv run python benchmarks/bench_load.py --vs-titiler /tmp/titiler-env/bin/python --titiler-only \
        --titiler-cog benchmarks/_data/bench_32616.tif --titiler-bands 1,2,3 --titiler-range 0,255
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
MIX = (("warm", 0.4), ("cold", 0.3), ("304", 0.2), ("bad", 0.1))
TIMEOUT = 30.0
Tile = tuple[str, int, int, int]  # token, z, x, y


def make_layers() -> list[tuple[str, str, tuple[float, float, float, float]]]:
    """Register the layers; (name, token, lon/lat bounds) each."""
    sys.path.insert(0, str(ROOT))
    import viewer
    from viewer.core.layers import class_layer, describe, image_layer, register

    l8 = viewer.Image("LANDSAT/LC08/SAMPLE")
    specs = {
        "L8 true colour": image_layer(l8, {"bands": ["B4", "B3", "B2"], "min": 7000, "max": 14000}),
        "L8 B5 palette": image_layer(l8, {"bands": ["B5"], "min": 6000, "max": 20000,
                                          "palette": ["a52a2a", "ffff00", "006400"]}),
        "L8 classes": class_layer(viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")),
        "S2 true colour": image_layer(viewer.Image("COPERNICUS/S2/SAMPLE"),
                                      {"bands": ["B4", "B3", "B2"], "min": 0, "max": 2700, "gamma": 1.3}),
    }
    return [(name, register(s), tuple(describe(s)["bounds_wgs84"])) for name, s in specs.items()]


def tile_sets(layers: list) -> tuple[list[Tile], list[Tile]]:
    """(warm tiles, cold tiles): warm = the centre tile at z10..z12 + 2x2 at z13 per layer; cold = every
    other tile over each layer's bounds at z10..z18, interleaved across layers and zooms."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    warm: list[Tile] = []
    walks: list[list[Tile]] = []
    for _, token, (w, s, e, n) in layers:
        cx, cy = (w + e) / 2, (s + n) / 2
        warm += [(token, z, t.x, t.y) for z in (10, 11, 12) for t in [tms.tile(cx, cy, z)]]
        t = tms.tile(cx, cy, 13)
        warm += [(token, 13, t.x + dx, t.y + dy) for dx in (0, 1) for dy in (0, 1)]
        for z in range(10, 19):
            walks.append([(token, z, t.x, t.y) for t in tms.tiles(w, s, e, n, [z])])
    seen = set(warm)
    cold = [t for i in range(max(map(len, walks))) for walk in walks if i < len(walk) for t in [walk[i]]
            if t not in seen]
    return warm, cold


def bad_paths(token: str) -> list[str]:
    """Requests that must get a 4xx (400 or 404)."""
    rnd = secrets.token_hex(32)
    return ["/tiles/not-a-token/1/0/0.png", f"/tiles/{token.upper()}/1/0/0.png", f"/tiles/{token}/a/0/0.png",
            f"/tiles/{token}/1/0/-1.png", f"/tiles/{token}/3/8/0.png", f"/tiles/{token}/25/0/0.png",
            f"/tiles/{token}/1/0/0.gif", f"/tiles/{token}/1/0/0", f"/tiles/{token}/1/0.png",
            f"/tiles/{rnd}/10/0/0.png", f"/layers/{rnd}", f"/tiles/{token}/99999999999/0/0.png"]


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.w is not None:
            self.w.close()
        self.r = self.w = None

    async def get(self, path: str, etag: str | None = None) -> tuple[int, dict[str, str], bytes]:
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(self.host, self.port)
        assert self.r is not None
        extra = f"If-None-Match: {etag}\r\n" if etag else ""
        self.w.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}\r\n".encode())
        try:  # the status line and headers in one read: the client's CPU is taken from the server's
            head = await self.r.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise ConnectionError("connection closed by the server") from exc
        status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        for line in lines:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if status == 304:
            body = b""
        elif "content-length" in headers:
            body = await self.r.readexactly(int(headers["content-length"]))
        else:  # no chunked bodies from this server's handlers
            body, headers["connection"] = await self.r.read(), "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body


class Load:
    def __init__(self, host: str, port: int, layers: list, seed: int = 0) -> None:
        self.host, self.port, self.tokens = host, port, [t for _, t, _ in layers]
        self.warm, self.cold = tile_sets(layers)
        self.cold_i = 0
        self.etags: dict[str, str] = {}
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter] = defaultdict(Counter)
        self.errors: Counter = Counter()
        self.examples: list[str] = []
        self.rng = random.Random(seed)

    def pick(self) -> tuple[str, str, str | None]:
        """(type, path, etag) of the next request."""
        kind = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == "cold" and self.cold_i >= len(self.cold):
            kind = "warm"  # every cold tile was used; counted as warm
        if kind == "304" and self.etags:
            path = self.rng.choice(list(self.etags))
            return kind, path, self.etags[path]
        if kind == "bad":
            return kind, self.rng.choice(bad_paths(self.rng.choice(self.tokens))), None
        if kind == "cold":
            tile, self.cold_i = self.cold[self.cold_i], self.cold_i + 1
        else:
            kind, tile = "warm", self.rng.choice(self.warm)
        return kind, "/tiles/{}/{}/{}/{}.png".format(*tile), None

    def check(self, kind: str, path: str, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status[kind][status] += 1
        if status == 200 and path.startswith("/tiles/") and "etag" in headers:
            self.etags.setdefault(path, headers["etag"])
        ok = {"warm": status == 200 and body[:4] == b"\x89PNG", "cold": status == 200 and body[:4] == b"\x89PNG",
              "304": status == 304, "bad": 400 <= status < 500}[kind]
        if status >= 500:
            self.error("5xx", f"{status} {kind} {path[:90]}: {body[:120]!r}")
        elif not ok:
            self.error("unexpected", f"{status} for {kind} {path[:90]}: {body[:80]!r}")

    def error(self, what: str, example: str) -> None:
        self.errors[what] += 1
        self.examples += [f"{what}: {example}"] if len(self.examples) < 8 else []

    async def client(self, deadline: float, max_requests: int) -> None:
        conn, n = Conn(self.host, self.port), 0
        while time.monotonic() < deadline and n < max_requests:
            n += 1
            kind, path, etag = self.pick()
            t0 = time.perf_counter()
            try:
                status, headers, body = await asyncio.wait_for(conn.get(path, etag), TIMEOUT)
            except (TimeoutError, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                conn.close()
                self.status[kind]["conn-error"] += 1
                self.error("connection", f"{kind} {path[:90]}: {type(exc).__name__} {exc}")
                await asyncio.sleep(0.05)
                continue
            self.lat[kind].append(time.perf_counter() - t0)
            self.check(kind, path, status, headers, body)
        conn.close()

    async def run(self, clients: int, seconds: float, max_requests: int) -> float:
        conn = Conn(self.host, self.port)
        for path in ["/tiles/{}/{}/{}/{}.png".format(*tile) for tile in self.warm]:  # warm them up
            status, headers, body = await conn.get(path)
            if status != 200:
                raise SystemExit(f"priming {path} answered {status}: {body[:200]!r}")
            self.etags[path] = headers["etag"]
        conn.close()
        t0 = time.monotonic()
        per_client = max(1, max_requests // clients)
        await asyncio.gather(*(self.client(t0 + seconds, per_client) for _ in range(clients)))
        return time.monotonic() - t0


def rss_kib(pid: int) -> tuple[int, int]:
    """(summed VmRSS in KiB, process count) of ``pid`` and all its descendants."""
    def field(p: int | str, name: str) -> str:
        try:
            text = Path(f"/proc/{p}/status").read_text()
        except OSError:
            return "0"
        return next((ln.split()[1] for ln in text.splitlines() if ln.startswith(name + ":")), "0")

    parent = {int(d): int(field(d, "PPid")) for d in os.listdir("/proc") if d.isdigit()}
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += [c for c, pp in parent.items() if pp == tree[-1]]
    return sum(int(field(p, "VmRSS")) for p in tree), len(tree)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return 1e3 * s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def start_server(state: str, log_path: Path, procs: int = 1) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VIEWER_STATE_DIR": state}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "viewer.cli", "serve", "--port", str(port), "--address",
                                 "127.0.0.1", "--num-procs", str(procs)], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    return wait_listening(proc, port, log_path, "viewer serve")


def wait_listening(proc: subprocess.Popen, port: int, log_path: Path, what: str) -> tuple[subprocess.Popen, int]:
    """``(proc, port)`` once ``proc`` accepts connections on ``port`` (at most 120 s), else exit with its log."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"{what} did not start; log:\n{log_path.read_text()[-3000:]}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--max-requests", type=int, default=5_000_000, help="upper bound on requests of the run")
    p.add_argument("--url", help="an already running server (http://127.0.0.1:PORT); default: start one")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory")
    p.add_argument("--rest", type=float, default=0.0, help="then wait this many seconds and print the server's "
                   "RSS again (default 0: not)")
    p.add_argument("--vs-titiler", metavar="PYTHON", help="a Python with titiler.core and uvicorn: compare throughput")
    p.add_argument("--titiler-seconds", type=float, default=20.0, help="seconds per server on the repeat set (default 20)")
    p.add_argument("--titiler-tiles", type=int, default=1500, help="distinct tiles both servers render: the first N "
                   "of the walk, each once (default 1500)")
    p.add_argument("--procs", type=int, default=1, help="server processes: viewer serve --num-procs N and, with "
                   "--vs-titiler, uvicorn --workers N (default 1)")
    p.add_argument("--titiler-workers", type=int, help="uvicorn workers of titiler (default: --procs)")
    p.add_argument("--titiler-cog", metavar="PATH", help="with --vs-titiler: this COG instead of Landsat B5 (e.g. "
                   "benchmarks/_data/bench_32616.tif, bench_tiles.py's 16k^2 three-band UTM COG)")
    p.add_argument("--titiler-bands", default="1", help="band indexes of --titiler-cog, e.g. 1,2,3 (default 1)")
    p.add_argument("--titiler-range", default="6000,20000", help="min,max stretch of every band (default 6000,20000)")
    p.add_argument("--titiler-only", action="store_true", help="skip the mixed load; only --vs-titiler")
    args = p.parse_args(argv)
    if args.titiler_only:
        if not args.vs_titiler:
            p.error("--titiler-only needs --vs-titiler PYTHON")
        os.environ.setdefault("VIEWER_STATE_DIR", tempfile.mkdtemp(prefix="viewer-titiler-"))
        versus_titiler(args)
        return
    proc = None
    if args.url:
        u = urlsplit(args.url)
        host, port, pid = u.hostname or "127.0.0.1", u.port or 80, args.pid
    else:
        tmp = tempfile.TemporaryDirectory(prefix="viewer-load-")
        os.environ["VIEWER_STATE_DIR"] = tmp.name
        proc, port = start_server(tmp.name, Path(tmp.name) / "server.log", args.procs)
        host, pid = "127.0.0.1", proc.pid
    try:
        layers = make_layers()
        load = Load(host, port, layers)
        print(f"== {args.clients} clients x {args.seconds:g} s, keep-alive, http://{host}:{port} "
              f"({os.cpu_count()} CPUs) ==")
        print(f"layers: {', '.join(n for n, _, _ in layers)}; warm set {len(load.warm)} tiles, "
              f"cold pool {len(load.cold)} tiles")
        before = rss_kib(pid) if pid else None
        wall = asyncio.run(load.run(args.clients, args.seconds, args.max_requests))
        after = rss_kib(pid) if pid else None
        report(load, wall, args, before, after)
        if args.rest and pid:
            time.sleep(args.rest)
            rss, n = rss_kib(pid)
            print(f"server RSS {args.rest:g} s after the load: {rss / 1024:.0f} MiB ({n} process(es); render processes "
                  "stop after 120 s without a tile)")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.vs_titiler:
        versus_titiler(args)


TITILER_APP = """
from fastapi import FastAPI
from titiler.core.factory import TilerFactory
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers

app = FastAPI()
app.include_router(TilerFactory().router, prefix="/cog")
add_exception_handlers(app, DEFAULT_STATUS_CODES)
"""


def start_titiler(python: str, tmp: Path, workers: int = 1) -> tuple[subprocess.Popen, int]:
    """titiler (``TilerFactory`` under uvicorn, ``workers`` processes) on a free loopback port."""
    (tmp / "titiler_app.py").write_text(TITILER_APP)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp / "titiler.log", "wb")
    proc = subprocess.Popen([python, "-m", "uvicorn", "titiler_app:app", "--host", "127.0.0.1", "--port", str(port),
                             "--no-access-log", "--log-level", "warning", "--workers", str(workers)], cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    return wait_listening(proc, port, tmp / "titiler.log", "titiler")


async def tiles_only(host: str, port: int, paths: list[str], clients: int, seconds: float,
                     repeat: bool) -> tuple[int, float, list[float], Counter]:
    """N keep-alive clients over ``paths`` (in turn; ``repeat``: round and round, else each once)."""
    lat: list[float] = []
    statuses: Counter = Counter()
    state = {"i": 0}
    deadline = time.monotonic() + seconds

    async def client() -> None:
        conn = Conn(host, port)
        while time.monotonic() < deadline and (repeat or state["i"] < len(paths)):
            path, state["i"] = paths[state["i"] % len(paths)], state["i"] + 1
            t0 = time.perf_counter()
            try:
                status, _, body = await asyncio.wait_for(conn.get(path), TIMEOUT)
            except (TimeoutError, OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                conn.close()
                statuses["conn-error"] += 1
                continue
            lat.append(time.perf_counter() - t0)
            statuses[status if body[:4] == b"\x89PNG" or status != 200 else "not-png"] += 1
        conn.close()

    t0 = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(lat), time.monotonic() - t0, lat, statuses


def versus_titiler(args: argparse.Namespace) -> None:
    """Tiles/s of a fresh ``viewer serve`` and of a fresh titiler over the same tiles of one COG (Landsat B5, grey,
    6000..20000, or ``--titiler-cog`` with ``--titiler-bands`` and ``--titiler-range``), one server at a time."""
    sys.path.insert(0, str(ROOT))
    import viewer
    from viewer.core.config import settings
    from viewer.core.layers import describe, image_layer, register

    lo, hi = (float(v) for v in args.titiler_range.split(","))
    bidx = [int(b) for b in args.titiler_bands.split(",")]
    if args.titiler_cog:
        cog = Path(args.titiler_cog).resolve()
        image = viewer.Image(cog)  # a .tif path opens as a raster (the state folder is trusted to name it)
        names = [image.bands[b - 1].name for b in bidx]
        label = f"{cog.name} bands {args.titiler_bands}"
    else:
        cog = ROOT / "assets" / "landsat8" / "B5.tif"
        image, names, label = viewer.Image("LANDSAT/LC08/SAMPLE"), ["B5"], "Landsat B5"
    spec = image_layer(image, {"bands": names, "min": lo, "max": hi})
    token = register(spec)
    warm, cold = tile_sets([("cog", token, tuple(describe(spec)["bounds_wgs84"]))])
    cold = cold[:args.titiler_tiles]  # equal work: both servers render exactly these tiles, in this order
    ours = {"distinct": ["/tiles/{}/{}/{}/{}.png".format(*t) for t in cold],
            "repeat": ["/tiles/{}/{}/{}/{}.png".format(*t) for t in warm]}
    query = "".join(f"&bidx={b}" for b in bidx) + f"&rescale={lo:g},{hi:g}" * len(bidx)
    theirs = {k: [f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url={cog}{query}"
                  for _, z, x, y in (cold if k == "distinct" else warm)] for k in ours}
    with tempfile.TemporaryDirectory(prefix="titiler-") as tmp:
        vproc, port = start_server(str(settings().state_dir), Path(tmp) / "viewer.log", args.procs)
        tproc, tport = start_titiler(args.vs_titiler, Path(tmp), args.titiler_workers or args.procs)
        host = "127.0.0.1"
        try:
            print(f"\n== tiles/s: viewer serve --num-procs {args.procs}, titiler with "
                  f"{args.titiler_workers or args.procs} uvicorn worker(s): {label}, {lo:g}..{hi:g}, "
                  f"{args.clients} clients; distinct: the same {len(cold)} tiles each; repeat set: "
                  f"{args.titiler_seconds:g} s each ==")
            for h, p, paths in ((host, port, ours["repeat"]), ("127.0.0.1", tport, theirs["repeat"])):
                asyncio.run(tiles_only(h, p, paths[:1], 1, 60.0, repeat=False))  # started and ready, both
            time.sleep(2.0)
            for kind in ("distinct", "repeat"):
                rates = {}
                for name, (h, p, paths) in (("viewer", (host, port, ours[kind])),
                                            ("titiler", ("127.0.0.1", tport, theirs[kind]))):
                    seconds = args.titiler_seconds if kind == "repeat" else 900.0
                    n, wall, lat, st = asyncio.run(tiles_only(h, p, paths, args.clients, seconds,
                                                              repeat=kind == "repeat"))
                    rates[name] = n / wall
                    print(f"  {kind:8s} {name:7s} {n:6d} tiles in {wall:5.1f} s = {n / wall:7.1f} tiles/s, p50/p99 "
                          f"{pct(lat, .5):.1f}/{pct(lat, .99):.1f} ms, statuses {dict(st)}")
                print(f"  {kind:8s} viewer / titiler: {rates['viewer'] / max(rates['titiler'], 1e-9):.1f}x")
            print("  (titiler answers 404 for a tile outside the image, the viewer a transparent PNG)")
        finally:
            for proc in (vproc, tproc):
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def report(load: Load, wall: float, args: argparse.Namespace, before: tuple | None, after: tuple | None) -> None:
    every = [x for v in load.lat.values() for x in v]
    statuses = sum(load.status.values(), Counter())
    total = sum(statuses.values())
    print(f"total requests: {total} in {wall:.1f} s -> {total / wall:.1f} req/s (by status: see 'all')")
    print(f"{'type':6s} {'count':>7s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s}  statuses")
    for kind, lat, st in [(k, load.lat[k], load.status[k]) for k, _ in MIX] + [("all", every, statuses)]:
        n, by = sum(st.values()), ", ".join(f"{k}: {v}" for k, v in sorted(st.items(), key=str))
        print(f"{kind:6s} {n:7d} {n / wall:7.1f} {pct(lat, .5):8.1f} {pct(lat, .95):8.1f} {pct(lat, .99):8.1f}  {by}")
    nerr = sum(load.errors.values())
    print(f"cold tiles requested: {load.cold_i} of {len(load.cold)}\nerrors: {nerr} (5xx: {load.errors['5xx']}, "
          f"connection: {load.errors['connection']}, unexpected status/body: {load.errors['unexpected']})")
    print("".join(f"  {ex}\n" for ex in load.examples), end="")
    mem = (f"{before[0] / 1024:.0f} MiB -> {after[0] / 1024:.0f} MiB" if before and after
           else "n/a (pass --pid with --url)")
    print(f"server RSS before -> after: {mem}" + (f" ({after[1]} process(es))" if after else ""))
    print(f"SUMMARY: {args.clients} clients x {args.seconds:g} s: {total} requests, {total / wall:.1f} req/s, "
          f"p50/p95/p99 {pct(every, .5):.1f}/{pct(every, .95):.1f}/{pct(every, .99):.1f} ms, "
          f"warm p50 {pct(load.lat['warm'], .5):.1f} ms, cold p50 {pct(load.lat['cold'], .5):.1f} ms, "
          f"304 p50 {pct(load.lat['304'], .5):.1f} ms, errors {nerr}, server RSS {mem}")


if __name__ == "__main__":
    main()
