"""The server's share of many sessions at once: N Bokeh sessions opened together, no browser.

    uv run python benchmarks/bench_sessions.py                  # 1, 5, 20 sessions, viewer and bare page
    uv run python benchmarks/bench_sessions.py --counts 1,5 --hold 12
    uv run python benchmarks/bench_sessions.py --procs 2             # viewer serve --num-procs 2

``bench_page.py --sessions`` opens N Chromium pages at once, but on a 2-core machine the
browser then takes most of the CPU (20 bare pages alone need 45-53 s), so it cannot show what
the *server* spends. This script opens the sessions with ``bokeh.client.pull_session`` instead:
the server builds each session's document exactly as for a browser and sends it over the
websocket, and the client only decodes it. Both servers of ``bench_page.py`` run side by side
(``viewer serve`` on the demo, ``benchmarks/bare_page.py``: one figure with the same tiles),
one after the other, fresh processes, after one warm-up session each.

For each N it prints the slowest session's time to its document (wall), the slowest / one
alone ratio, the server's CPU time (utime + stime of the process, from ``/proc``) per session,
and the server's RSS. ``--hold S`` keeps each session connected for S s before closing (the
viewer builds its side panels on the page's document-ready, or after ``PANELS_FALLBACK_S`` =
10 s without one; a client session never reports ready, so ``--hold 12`` includes them).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import panel  # noqa: F401 - registers Panel's Bokeh models, which the client must decode
import panel.models  # noqa: F401
import panel_material_ui  # noqa: F401 - the viewer's widgets' models
from bokeh.client import pull_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_page import ROOT, Server, rss_kib  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its children (``--num-procs`` workers) in seconds."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def open_sessions(url: str, n: int, hold: float) -> list[float]:
    """Open ``n`` sessions at once; each one's seconds until its document arrived."""
    times: list[float] = [float("nan")] * n
    start = threading.Barrier(n)

    def one(i: int) -> None:
        start.wait()
        t0 = time.perf_counter()
        session = pull_session(url=url)
        times[i] = time.perf_counter() - t0
        time.sleep(hold)
        session.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def measure(server: Server, counts: list[int], hold: float, settle: float) -> dict[int, tuple]:
    """Per N: (slowest s, mean s, server CPU s per session, RSS MB with N open)."""
    open_sessions(server.url, 1, hold)  # warm-up: imports, caches, the first document
    time.sleep(settle)
    out = {}
    for n in counts:
        rss = [0.0]
        c0 = cpu_seconds(server.proc.pid)
        sampler = threading.Thread(target=lambda: rss.__setitem__(0, _peak_rss(server, hold + 2)), daemon=True)
        sampler.start()
        times = open_sessions(server.url, n, hold)
        sampler.join()
        time.sleep(settle)  # let the server finish closing the sessions before counting its CPU
        cpu = cpu_seconds(server.proc.pid) - c0
        out[n] = (max(times), sum(times) / n, cpu / n, rss[0])
    return out


def _peak_rss(server: Server, seconds: float) -> float:
    peak, end = 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        peak = max(peak, rss_kib(server.proc.pid) / 1024)
        time.sleep(0.1)
    return peak


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", default="1,5,20", help="session counts, comma separated; the first is 'alone'")
    p.add_argument("--hold", type=float, default=1.0, help="seconds each session stays connected")
    p.add_argument("--settle", type=float, default=3.0, help="seconds of rest between rounds")
    p.add_argument("--procs", type=int, default=1, help="viewer serve --num-procs N (the bare page: one process)")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    env = {**os.environ, "VIEWER_STATE_DIR": tempfile.mkdtemp(prefix="bench-sessions-"), "PYTHONUNBUFFERED": "1"}
    log_dir = Path(tempfile.mkdtemp(prefix="bench-sessions-logs-"))
    print(f"load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs; hold {args.hold:g} s; viewer processes "
          f"{args.procs}")
    results = {}
    viewer = [sys.executable, "-m", "viewer.cli", "serve", "--address", "127.0.0.1", "--num-procs", str(args.procs)]
    for name, command in (("viewer", viewer),
                          ("bare", [sys.executable, str(ROOT / "benchmarks" / "bare_page.py")])):
        server = Server(name, command, env, log_dir)
        try:
            server.wait_ready(120)
            results[name] = measure(server, counts, args.hold, args.settle)
        finally:
            server.stop()
    alone = {k: v[counts[0]][0] for k, v in results.items()}
    print(f"{'sessions':>8s} | {'viewer: slowest':>15s} {'x alone':>7s} {'CPU/session':>11s} {'RSS MB':>7s} | "
          f"{'bare: slowest':>13s} {'x alone':>7s} {'CPU/session':>11s} {'RSS MB':>7s}")
    for n in counts:
        row = []
        for name in ("viewer", "bare"):
            slowest, _, cpu, rss = results[name][n]
            row.append(f"{slowest:13.2f} s {slowest / alone[name]:6.1f}x {cpu:9.3f} s {rss:7.0f}")
        print(f"{n:8d} | {row[0]} | {row[1]}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
