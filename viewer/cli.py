"""The ``viewer`` command: serve the map app (default) or print the catalog.

    viewer                                   # same as: viewer serve (on 127.0.0.1:5006)
    viewer serve --catalog PATH --port 5006 --address 0.0.0.0 --num-procs 2 \\
                 --allow-websocket-origin example.org --basic-auth users.txt
    viewer catalog [--json]

Start-up problems (port in use, bad catalog, bad password file) print one line,
``viewer: error: ...``, and exit with status 1.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

from tornado.httpclient import AsyncHTTPClient
from tornado.process import task_id

from .core.access import configure_gdal
from .core.catalog import get_catalog, set_catalog
from .core.config import keep_to_this_process, settings
from .core.errors import ViewerError
from .core.read import source_identity
from .core.image import Image
from .server.memory import when_no_page_is_open
from .server.render_procs import RenderProcesses
from .server.routes import tile_routes

__all__ = ["main", "build_parser", "serve", "print_catalog", "StartupError", "read_password_file",
           "basic_auth_setting", "DEFAULT_ADDRESS"]

DEFAULT_ADDRESS = "127.0.0.1"
_ALL_INTERFACES = ("0.0.0.0", "::", "")
#: How often (ms) Bokeh looks for sessions whose browser has gone; one is destroyed (its memory
#: freed) once unused for Bokeh's 15 s. Bokeh's own period is 17 s: destroyed 15-32 s after the
#: page closed, now 15-18 s. The 15 s stay: a slow browser still connects to the session built
#: for its page request.
CHECK_UNUSED_SESSIONS_MS = 3000
#: Sessions each process builds ahead while idle (``--session-pool``): a burst of this many
#: visitors (a link shared in a meeting) finds theirs built. 20 ready sessions hold about 16 MB
#: more than 8 (186 against 170 MB at rest with the demo).
SESSION_POOL = 20


def _pool_size(text: str) -> int:
    """``--session-pool``: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: an integer >= 0")
    return value


class StartupError(Exception):
    """A problem found before serving; ``main`` prints it as one line."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="viewer", description="Map viewer for images, masks and segmentation overlays.")
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="serve the map app with its tile routes (default command)")
    s.add_argument("--catalog", default=None,
                   help="catalog JSON (default: $VIEWER_CATALOG or the bundled sample catalog)")
    s.add_argument("--port", type=int, default=5006)
    s.add_argument("--address", default=DEFAULT_ADDRESS,
                   help=f"address to listen on (default: {DEFAULT_ADDRESS}, this machine only; "
                        "0.0.0.0 for every interface)")
    s.add_argument("--num-procs", type=int, default=1, help="worker processes (0 = one per CPU)")
    s.add_argument("--session-pool", type=_pool_size, default=SESSION_POOL, metavar="N",
                   help=f"sessions built ahead while idle, per process (default {SESSION_POOL}; "
                        "0 turns it off; off behind a login)")
    s.add_argument("--allow-websocket-origin", action="append", default=None, metavar="HOST[:PORT]",
                   help="host allowed to open the websocket (repeatable)")
    s.add_argument("--basic-auth", default=None, metavar="PASSWORD|FILE",
                   help="one shared password, or a file of user:password lines ('#' comments)")
    s.add_argument("--cookie-secret", default=None,
                   help="secret to sign login cookies (required with OAuth; with --basic-auth a random one "
                        "is made, so logins end when the server restarts)")
    s.add_argument("--oauth-provider", default=None, help="Panel OAuth provider (github, google, azure, ...)")
    s.add_argument("--oauth-key", default=None)
    s.add_argument("--oauth-secret", default=None)
    s.add_argument("--oauth-redirect-uri", default=None)
    s.add_argument("--oauth-encryption-key", default=None)
    s.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler that runs big file exports, e.g. tcp://host:8786 "
                        "(default: $VIEWER_DASK_SCHEDULER, else a local cluster started on the first big export)")
    s.add_argument("--show", action="store_true", help="open a browser tab")
    c = sub.add_parser("catalog", help="print the images of the catalog")
    c.add_argument("--catalog", default=None, help="catalog JSON (default: $VIEWER_CATALOG or the bundled one)")
    c.add_argument("--json", action="store_true", help="print getInfo() of every image as JSON")
    return p


def print_catalog(path: str | None, as_json: bool = False, out: TextIO | None = None) -> None:
    """The catalog's images and collections (or every image's ``getInfo()`` as JSON) to ``out`` (stdout)."""
    out = out or sys.stdout  # looked up per call (tests and callers may swap sys.stdout)

    if path:
        set_catalog(path)
    cat = get_catalog()
    if as_json:
        json.dump({i: Image(i).getInfo() for i in sorted(cat.images)}, out, indent=2, default=str)
        out.write("\n")
        return
    out.write(f"catalog {cat.path}\n")
    for image_id in sorted(cat.images):
        entry = cat.images[image_id]
        kinds = {}
        for b in entry.bands:
            kinds.setdefault(b.kind, []).append(b.id)
        desc = "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items())
        out.write(f"  {image_id}  ({len(entry.bands)} bands — {desc})\n")
    for cid, spec in sorted(cat.collections.items()):
        out.write(f"  collection {cid}: {', '.join(spec.get('images', []))}\n")


def _say(message: str) -> None:
    print(f"viewer: {message}", file=sys.stderr, flush=True)


# login ------------------------------------------------------------------------------------
def read_password_file(path: str | os.PathLike) -> dict[str, str]:
    """``{user: password}`` from a file of ``user:password`` lines (blank lines and ``#`` comments
    ignored). Errors name the file and line, never the line's text (it holds a password)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(f"--basic-auth file {path}: cannot read it ({exc})") from None
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"--basic-auth file {path}, line {number}"
        if line.startswith("{"):
            raise StartupError(f"{where}: looks like JSON; write one user:password per line")
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise StartupError(f"{where}: expected user:password")
        if user in users:
            raise StartupError(f"{where}: user {user!r} is listed twice")
        users[user] = password
    if not users:
        raise StartupError(f"--basic-auth file {path} has no user:password line")
    return users


def basic_auth_setting(value: str) -> dict[str, str] | str:
    """What Panel's basic auth takes for ``--basic-auth``: ``{user: password}`` read from a file
    (Panel itself would parse a file as JSON), else the value itself as one shared password."""
    if os.path.isfile(value):
        return read_password_file(value)
    _say("--basic-auth is not a file, so it is the shared password (any user name logs in with it)")
    return value


def _cookie_secret(args: argparse.Namespace) -> str | None:
    """The secret that signs login cookies; a random one for basic auth when none is given."""
    secret = args.cookie_secret or settings().cookie_secret
    if args.oauth_provider and not secret:
        raise StartupError("--oauth-provider needs --cookie-secret")
    if args.basic_auth and not secret:
        secret = secrets.token_urlsafe(32)
        _say("no --cookie-secret given: logins are signed with a random secret made now, so they end when "
             "the server restarts and other servers do not accept them; give --cookie-secret to keep them")
    return secret


# worker processes -------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    """Process ids of ``pid``'s children (Linux ``/proc``, elsewhere ``pgrep -P``)."""
    tasks = Path(f"/proc/{pid}/task")
    if tasks.is_dir():
        found: list[int] = []
        for task in tasks.iterdir():
            with contextlib.suppress(OSError):
                found += [int(p) for p in (task / "children").read_text().split()]
        return found
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _stop(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM ``pids`` (children of this process), reap them, SIGKILL what is left after ``timeout``."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    pending, deadline = set(pids), time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done = os.waitpid(pid, os.WNOHANG)[0] == pid
            except ChildProcessError:
                done = True
            if done:
                pending.discard(pid)
        time.sleep(0.05)
    for pid in pending:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _stop_workers_with_parent() -> None:
    """With ``--num-procs``, Tornado forks the workers and the parent waits on them (restarting
    any that die) with no signal handler, so a SIGTERM to the parent used to leave the workers
    running. In the parent, SIGTERM/SIGINT now stop the workers and then the parent; the
    workers get the default handlers back right after the fork."""
    parent = os.getpid()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def stop(signum: int, frame: Any) -> None:
        _stop(_children(parent))
        raise SystemExit(0)

    def in_worker() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    for s in previous:
        signal.signal(s, stop)
    os.register_at_fork(after_in_child=in_worker)


# serve ------------------------------------------------------------------------------------
def _load_catalog(path: str | None) -> None:
    """Load the catalog now, so a missing or malformed one stops the start (not the first page)."""
    if path:
        os.environ["VIEWER_CATALOG"] = os.fspath(path)  # worker processes and sessions read it
        set_catalog(path)
    else:
        get_catalog()


def _use_scheduler(address: str) -> None:
    """``--dask-scheduler``: connect now, so an unreachable scheduler stops the start; sessions and
    worker processes read it from the environment."""
    os.environ["VIEWER_DASK_SCHEDULER"] = address
    # Dask loads here, only with the flag (about three seconds of imports); no cycle
    from .jobs.big_export import connect

    connect(address)


def _url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/"


def _login_options(args: argparse.Namespace) -> dict[str, Any]:
    """``pn.serve``'s login options, those that are set."""
    options = {
        "basic_auth": basic_auth_setting(args.basic_auth) if args.basic_auth else None,
        "cookie_secret": _cookie_secret(args), "oauth_provider": args.oauth_provider,
        "oauth_key": args.oauth_key, "oauth_secret": args.oauth_secret,
        "oauth_redirect_uri": args.oauth_redirect_uri, "oauth_encryption_key": args.oauth_encryption_key,
    }
    return {k: v for k, v in options.items() if v is not None}


def _websocket_origins(args: argparse.Namespace) -> list[str]:
    """``--allow-websocket-origin``, else this machine's names (and ``--address`` if it is one host)."""
    if args.allow_websocket_origin:
        return list(args.allow_websocket_origin)
    origins = [f"localhost:{args.port}", f"127.0.0.1:{args.port}"]
    if args.address not in _ALL_INTERFACES:
        origins.append(f"{args.address}:{args.port}")
    return origins


def serve(args: argparse.Namespace) -> None:
    """Serve the app (blocks); raises :class:`StartupError` or ``ViewerError`` if it cannot start."""
    settings()  # a bad environment variable stops the start, with its name and what is allowed
    keep_to_this_process()  # the allocator settings: not for the render processes it starts
    configure_gdal()
    _load_catalog(args.catalog)
    if args.dask_scheduler is not None:
        _use_scheduler(args.dask_scheduler)
    kwargs = _login_options(args)
    # Panel, Bokeh and the UI load here, not at the top: ``viewer catalog``, ``--help`` and the
    # start-up checks above do not need them (about a second and a half of imports); no cycle.
    import panel as pn

    from .ui.app import TITLE, adopt_session, build_app
    from .ui.component_route import component_routes
    from .ui.session_pool import SessionPool, pooled_pages

    address = args.address
    if address in _ALL_INTERFACES:
        _say(f"warning: listening on every interface ({address or 'all'}): anyone who can reach this machine "
             f"can open the app; use --basic-auth or OAuth, and --allow-websocket-origin HOST:{args.port} "
             "for the host name browsers use")
    if args.num_procs != 1:
        kwargs["num_procs"] = args.num_procs
        _stop_workers_with_parent()
    # Every visitor gets the same page shell (the template; the map and panels come over the
    # websocket), so Panel may answer a page request from a page built earlier and build the
    # visitor's own session right after answering ("warm"): the first byte does not wait for it.
    pn.config.reuse_sessions = "warm"
    # Better still, sessions are built ahead while the server is idle, and a page request takes one
    # (a shared link's query applied to it; not behind a login: a session carries its visitor's cookies).
    login = bool(args.basic_auth or args.oauth_provider)
    pool = SessionPool(0 if login else args.session_pool, sources=_catalog_files_identity, adopt=adopt_session)
    renderer = _renderer(args.num_procs)
    if renderer is not None:  # their caches go a few seconds after the last page closes, not 2 minutes
        when_no_page_is_open(renderer.release_when_quiet)
    try:
        with pooled_pages(pool):
            server = pn.serve({"/": lambda: build_app(args.catalog)}, port=args.port, address=address,
                              websocket_origin=_websocket_origins(args), show=args.show, title=TITLE,
                              extra_patterns=tile_routes(renderer=renderer) + component_routes(), verbose=False, start=False,
                              check_unused_sessions_milliseconds=CHECK_UNUSED_SESSIONS_MS, **kwargs)
    except OSError as exc:  # bind failed: port in use, address not on this machine, unknown host name
        raise StartupError(f"cannot listen on {address}:{args.port}: {exc.strerror or exc}") from None
    if task_id() in (None, 0):  # one line, also with several worker processes
        print(f"viewer: serving {_url(address or '0.0.0.0', server.port)}", flush=True)
    # What start-up made lives as long as the process: out of the collector's sight, the collections
    # that sessions trigger walk only the sessions' objects (generation 2: 19 -> 2 ms per session).
    gc.collect()
    gc.freeze()
    server.start()
    if renderer is not None:  # in each server process, after Tornado's fork with --num-procs
        # one render process at rest (~80 MB; the first page's tiles find it ready), the others with the first tile
        server.io_loop.add_callback(renderer.start, 1)
    server.io_loop.add_callback(_start_busy_cleanup, pn.state)
    if not login:  # behind a login the first visitor builds it
        server.io_loop.add_callback(_build_page_shell, address, server.port)
    server.io_loop.start()


def _renderer(num_procs: int) -> RenderProcesses | None:
    """Render processes for the map tiles (``$VIEWER_RENDER_PROCESSES``; by default one per CPU this
    process may use, none when Tornado forks several server processes)."""
    n = settings().render_processes
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        n = n if num_procs == 1 else 0
    return RenderProcesses(n) if n > 0 else None


def _catalog_files_identity() -> tuple[str, ...]:
    """Size and modification time of the catalog and its local files: a pooled session built
    before one of them changed is not handed out (it would show the old file, then 410s)."""
    return tuple(source_identity(path) for path in get_catalog().local_files())


def _start_busy_cleanup(panel_state: Any) -> None:
    """Start Panel's process-wide timer that expires its busy-indicator events now, outside any
    session. Panel starts it from the first session that gets busy, and the timer's task keeps
    that session's context, whose current document then lives as long as the process."""
    start = getattr(panel_state, "_schedule_busy_cleanup", None)  # private in Panel 1.9
    if start is not None:
        start()


async def _build_page_shell(address: str, port: int) -> None:
    """Ask this server for its page once, at start: the page it builds is the shell Panel serves
    to later visitors (``reuse_sessions``), so the first visitor does not wait for it either."""
    host = "127.0.0.1" if address in _ALL_INTERFACES else address
    try:
        await AsyncHTTPClient().fetch(_url(host, port), request_timeout=120, follow_redirects=False,
                                      raise_error=False)
    except Exception as exc:  # noqa: BLE001 - only a warm-up: the first visitor builds the page instead
        _say(f"warning: could not build the page at start ({exc}); the first visitor will")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["serve"] + argv
    args = build_parser().parse_args(argv)
    try:
        if args.command == "catalog":
            print_catalog(args.catalog, args.json)
        else:
            serve(args)
    except (StartupError, ViewerError) as exc:
        print(f"viewer: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
