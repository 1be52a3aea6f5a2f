"""Where a served session's server time goes: cProfile of ``viewer serve``'s event loop.

    uv run python benchmarks/profile_session.py                 # 10 sessions, top 40 by cumulative time
    uv run python benchmarks/profile_session.py --sessions 20 --out /tmp/session.prof --sort tottime

``viewer serve`` runs in this process (its ``main``); a client thread opens sessions one after
the other with ``bokeh.client.pull_session`` (the server builds each document and sends it, as
for a page), after one warm-up session. Only the event loop's thread is profiled (cProfile
profiles the thread that enabled it), and only while the measured sessions are open: what the
server spends per session, not the client's decoding. It also prints the first document's
models by type and its size as sent (JSON).
"""
from __future__ import annotations

import argparse
import collections
import cProfile
import gc
import os
import pstats
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import panel  # noqa: F401 - registers Panel's Bokeh models, which the client must decode
import panel.models  # noqa: F401
import tornado.ioloop
import tornado.platform.asyncio
from bokeh.client import pull_session
from bokeh.core.json_encoder import serialize_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from viewer import cli  # noqa: E402

_loop: list[tornado.ioloop.IOLoop] = []
_start = tornado.platform.asyncio.BaseAsyncIOLoop.start


_freeze = [False]


def _start_and_keep(self: tornado.ioloop.IOLoop) -> None:
    _loop.append(self)
    if _freeze[0]:  # what --gc-freeze measures: the objects of the started server kept out of collections
        gc.collect()
        gc.freeze()
    _start(self)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("viewer serve did not start")


def describe(session) -> None:
    """Models of the first document by type, and its JSON size."""
    doc = session.document
    counts = collections.Counter(type(m).__name__ for m in doc.models)
    size = len(serialize_json(doc.to_json()))
    print(f"first document: {len(doc.models)} models, {size / 1024:.1f} KiB of JSON")
    for name, n in counts.most_common():
        print(f"  {n:4d} {name}")


class GcTimer:
    """Time spent in the garbage collector, per generation (``gc.callbacks``), while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if not self.on:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._t0
            self.counts[info["generation"]] += 1


GC = GcTimer()


class _NoProfile:
    def enable(self) -> None:
        pass

    def disable(self) -> None:
        pass


def client(port: int, n: int, prof: cProfile.Profile | None, times: list[float], cpu: list[float]) -> None:
    try:
        _client(port, n, prof or _NoProfile(), times, cpu)
    finally:
        os.kill(os.getpid(), signal.SIGINT)


def _client(port: int, n: int, prof, times: list[float], cpu: list[float]) -> None:
    url = f"http://127.0.0.1:{port}/"
    wait_listening(port)
    time.sleep(2)  # the page shell built at start
    with pull_session(url=url) as s:  # warm-up: imports, caches
        describe(s)
    time.sleep(1)
    _loop[0].add_callback(lambda: cpu.append(time.thread_time()))
    _loop[0].add_callback(lambda: setattr(GC, "on", True))
    _loop[0].add_callback(prof.enable)
    time.sleep(0.2)
    for _ in range(n):
        t0 = time.perf_counter()
        s = pull_session(url=url)
        times.append(time.perf_counter() - t0)
        s.close()
    time.sleep(1)
    _loop[0].add_callback(prof.disable)
    _loop[0].add_callback(lambda: setattr(GC, "on", False))
    _loop[0].add_callback(lambda: cpu.append(time.thread_time()))
    time.sleep(0.3)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--out", default=None, help="write the pstats file here")
    p.add_argument("--sort", default="cumulative")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--no-profile", action="store_true",
                   help="only the event loop's CPU time per session (thread time, without cProfile's overhead)")
    p.add_argument("--gc-freeze", action="store_true",
                   help="gc.freeze() when the event loop starts (after imports, before any session)")
    p.add_argument("serve_args", nargs="*", help="more arguments of viewer serve (after --)")
    args = p.parse_args(argv)
    os.environ.setdefault("VIEWER_STATE_DIR", tempfile.mkdtemp(prefix="profile-session-"))
    tornado.platform.asyncio.BaseAsyncIOLoop.start = _start_and_keep
    _freeze[0] = args.gc_freeze
    port = free_port()
    prof = None if args.no_profile else cProfile.Profile()
    times: list[float] = []
    cpu: list[float] = []
    threading.Thread(target=client, args=(port, args.sessions, prof, times, cpu), daemon=True).start()
    try:
        cli.main(["serve", "--address", "127.0.0.1", "--port", str(port), *args.serve_args])
    except KeyboardInterrupt:
        pass
    if not times:
        raise SystemExit("no session was measured")
    n = len(times)
    print(f"{n} sessions one after the other: {sum(times) / n:.3f} s each (client wall), "
          f"event loop CPU {(cpu[1] - cpu[0]) / n:.3f} s per session")
    print("garbage collections per session (generation 0, 1, 2): "
          + ", ".join(f"{c / n:.1f} x, {t / n * 1000:.1f} ms" for c, t in zip(GC.counts, GC.seconds)))
    if prof is None:
        return
    prof.disable()
    if args.out:
        prof.dump_stats(args.out)
    stats = pstats.Stats(prof)
    print(f"profiled event-loop time per session: {stats.total_tt / n:.3f} s")
    stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
