"""The server's share of many sessions at once: N Bokeh sessions opened together, no browser.

    uv run python benchmarks/bench_sessions.py                  # 1, 5, 20 sessions, viewer and bare page
    uv run python benchmarks/bench_sessions.py --counts 1,5 --hold 12
    uv run python benchmarks/bench_sessions.py --procs 2             # viewer serve --num-procs 2

``bench_page.py --sessions`` opens N Chromium pages at once, but on a 2-core machine the
browser then takes most of the CPU (20 bare pages alone need 45-53 s), so it cannot show what
the *server* spends. This script does what a page does, without a browser: it asks for the
page, opens the websocket with the session token the page names and pulls the document (raw
frames, not decoded: a browser decodes on its own CPU), N at once. Its socket sends at once
(``TCP_NODELAY``, as Chromium's): without it the pull request's three frames wait ~40 ms for the
server's delayed ACK, which a browser never sees. The server builds (or takes
from its pool of sessions built ahead, ``viewer serve --session-pool``) and sends each session's
document exactly as for a browser. Both servers of ``bench_page.py`` run side by side
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
import asyncio
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import websocket_connect

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


async def _one_session(url: str, hold: float) -> float:
    """Ask for the page, as a browser does, open the websocket with the page's token and pull the
    document without decoding it (a browser decodes on its own CPU); seconds until it arrived."""
    t0 = time.perf_counter()
    page = (await AsyncHTTPClient().fetch(url, request_timeout=120)).body.decode()
    token = re.search(r'"token":\s*"([^"]+)"', page).group(1)
    ws = await websocket_connect(url.split("?")[0].replace("http", "ws", 1) + "ws", subprotocols=["bokeh", token])
    ws.protocol.set_nodelay(True)  # as a browser's socket: Bokeh's 3-frame request is not held back by Nagle

    async def until(msgtype: str) -> None:  # a message: header, metadata, content, a header + payload per buffer
        while True:
            header = json.loads(await ws.read_message())
            for _ in range(2 + 2 * header.get("num_buffers", 0)):
                await ws.read_message()
            if header["msgtype"] == msgtype:
                return

    await until("ACK")  # the server has its side of the connection ready
    for frame in (json.dumps({"msgid": "1", "msgtype": "PULL-DOC-REQ"}), "{}", "{}"):
        await ws.write_message(frame)
    await until("PULL-DOC-REPLY")
    elapsed = time.perf_counter() - t0
    await asyncio.sleep(hold)
    ws.close()
    return elapsed


def open_sessions(url: str, n: int, hold: float) -> list[float]:
    """Open ``n`` sessions at once; each one's seconds from its page request to its document."""
    async def all_at_once() -> list[float]:
        return list(await asyncio.gather(*(_one_session(url, hold) for _ in range(n))))
    return asyncio.run(all_at_once())


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
    p.add_argument("--settle", type=float, default=25.0,
                   help="seconds of rest between rounds (the viewer refills its session pool of 20 after 3 s idle, "
                        "one build about every 0.4 s)")
    p.add_argument("--procs", type=int, default=1, help="viewer serve --num-procs N (the bare page: one process)")
    p.add_argument("--viewer-args", default="", help="more arguments of viewer serve, e.g. '--session-pool 0'")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    env = {**os.environ, "VIEWER_STATE_DIR": tempfile.mkdtemp(prefix="bench-sessions-"), "PYTHONUNBUFFERED": "1"}
    log_dir = Path(tempfile.mkdtemp(prefix="bench-sessions-logs-"))
    print(f"load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs; hold {args.hold:g} s; viewer processes "
          f"{args.procs}")
    results = {}
    viewer = [sys.executable, "-m", "viewer.cli", "serve", "--address", "127.0.0.1", "--num-procs", str(args.procs),
              *args.viewer_args.split()]
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
