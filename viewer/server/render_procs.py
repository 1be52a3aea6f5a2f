"""Map tiles rendered in worker processes, so that one server process renders on every core.

A tile's render is mostly Python and numpy glue around GDAL reads, and it holds the GIL: in one
process, two render threads gave 1.1-1.3x one thread and took the GIL from the event loop that
also serves the Panel sessions. :class:`RenderProcesses` keeps ``n`` worker processes
(spawned, running :func:`viewer.jobs.render_worker.worker_main`: they import the core only,
never Tornado, Panel or Bokeh), each rendering one tile at a time. ``viewer serve`` keeps one
at rest (a page's first tiles find it ready) and starts the others with the first tile; after
:data:`IDLE_S` without a tile (:data:`QUIET_S` once no page is open: :meth:`RenderProcesses.release_when_quiet`)
the workers that rendered stop (their memory, with their caches, goes back to the system) and a fresh
one stands by; until one is up, tiles render on the server's
threads as before. (All kept at rest, they held 160 MB; none, a cold page's tiles came 1.12-1.17x
the bare page's in ``bench_page.py`` instead of 1.05x; started when a visitor asks for a page,
their start competed with the page's load: 1.27-1.38x.) A worker renders by token: it resolves the layer from the state directory, as a
second ``viewer serve`` process would (:func:`viewer.core.layers.resolve`); tokens name their content, so every
process renders a token identically. A worker starts with the server's environment as it is then
(the same state folder, catalog and GDAL settings).

The event loop talks to the workers over one pipe each (no helper thread): a job is sent to an
idle worker, its answer is read when the pipe is readable. A worker that dies is replaced and its
tile fails with :class:`~viewer.server.errors.RenderUnavailable`; a tile past its deadline that its
worker has been drawing for :data:`STALL_S` stops that worker (a stalled read cannot hold a core for
ever), which is then replaced too.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import pickle
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..jobs.render_worker import worker_main
from .errors import RenderUnavailable

__all__ = ["RenderProcesses"]

log = logging.getLogger("viewer.server")

#: Socket buffer of a worker's pipe, each way (bytes).
PIPE_BUFFER_BYTES = 1 << 20
#: Seconds without a tile after which the workers that rendered stop (a fresh one then stands by).
IDLE_S = 120.0
#: Once no page is open (:meth:`RenderProcesses.release_when_quiet`): seconds without a tile after which
#: the workers that rendered stop, instead of :data:`IDLE_S`.
QUIET_S = 10.0
#: Seconds a cancelled tile has been rendering after which its worker is taken for stalled, and stopped.
STALL_S = 5.0
#: Jobs sent to a worker at once: the next one waits in its pipe while it renders, so it does not
#: wait for the event loop between tiles.
JOBS_PER_WORKER = 2
#: A tile's area is the column of its ancestor at this zoom level (or its own column, above it): about
#: 33 km wide at 30 degrees of latitude, 6 blocks of 512 pixels of 10 m imagery. Columns alternate
#: between the workers (see :meth:`RenderProcesses._next_job`), so one GDAL block is decoded by one
#: worker except along a column's edges. On the first 2000 tiles of ``bench_load.py --titiler-cog``'s
#: walk, 102-114 of 385-395 block decodes were a second worker's (columns at zoom 10), 140-144
#: (ancestors alternating like a checkerboard), 117-231 (ancestors hashed with the token: Python's
#: string hashing differs from process to process, and so did the split), 150-234 (columns at zoom 9,
#: 11 or 12).
AREA_ZOOM = 10
#: Queued jobs looked at for one of a worker's own areas.
AREA_LOOKAHEAD = 32
#: After this many workers lost in a row (none answered between), tiles render in threads again.
MAX_DEATHS_IN_A_ROW = 5


def _pipe() -> tuple[Connection, Connection]:
    """A duplex pipe whose buffers hold a few encoded tiles: a worker's answer does not wait for the
    event loop to read the one before."""
    a, b = socket.socketpair()
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER_BYTES)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PIPE_BUFFER_BYTES)
    return Connection(a.detach()), Connection(b.detach())


@dataclass
class _Job:
    args: tuple
    future: asyncio.Future
    area: int  # tiles of one area (a column, AREA_ZOOM) go to one worker when they can (its block cache has it)
    head_since: float = 0.0  # loop time it became the job its worker renders


@dataclass
class _Worker:
    process: Any  # multiprocessing's process object
    conn: Connection
    jobs: deque = field(default_factory=deque)  # sent, in order; the first is being rendered
    alive: bool = True
    ready: bool = False  # its imports are done
    answered: bool = False  # it has rendered (its GDAL block cache and index maps hold something)


@dataclass
class RenderProcesses:
    """``n`` render worker processes, started by :meth:`start` (or by the first :meth:`render`); after
    ``idle_s`` seconds without a tile those that rendered stop and one fresh worker stands by.

    Used from one event loop (the server's); a worker is started on a short-lived thread and is
    ready about half a second later (its imports).
    """

    n: int
    idle_s: float = IDLE_S
    stall_s: float = STALL_S
    _workers: list[_Worker] = field(default_factory=list)
    _queue: deque = field(default_factory=deque)
    _loop: asyncio.AbstractEventLoop | None = None
    _starting: int = 0
    _deaths: int = 0  # workers lost in a row without an answer between
    _used: float = 0.0  # loop time of the last tile asked for
    _idle_limit: float | None = None  # seconds without a tile before the idle stop: idle_s, or less once no page is open
    _idle_timer: asyncio.TimerHandle | None = None
    failed: str | None = None

    def start(self, count: int | None = None) -> None:
        """Start workers in the background (on the running event loop) until ``count`` (default all
        :attr:`n`) are up or starting; returns at once. Nothing once they could not be started
        (:attr:`available` is false: tiles render in threads)."""
        if self.failed is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._used = self._now()
        wanted = self.n if count is None else min(count, self.n)
        for _ in range(wanted - len(self._workers) - self._starting):
            self._spawn()
        if self._idle_timer is None and self.n:
            self._idle_timer = self._loop.call_later(self.idle_s, self._stop_when_idle)

    def _now(self) -> float:
        assert self._loop is not None  # set by start(), before any worker or job exists
        return self._loop.time()

    @property
    def ready(self) -> bool:
        """A worker is up: tiles asked for now are rendered by the workers."""
        return any(w.ready and w.alive for w in self._workers)

    def release_when_quiet(self, quiet_s: float = QUIET_S) -> None:
        """No page is open any more: the workers that rendered stop (their caches' memory goes back to
        the system) once no tile has been asked for ``quiet_s`` s, not :attr:`idle_s`; the next tile
        asked for restores :attr:`idle_s`. Call it on the event loop's thread."""
        if self._loop is None or not self.n:
            return
        self._idle_limit = min(quiet_s, self.idle_s)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = self._loop.call_soon(self._stop_when_idle)

    def _stop_when_idle(self) -> None:
        assert self._loop is not None
        self._idle_timer = None
        limit = self.idle_s if self._idle_limit is None else self._idle_limit
        idle = self._now() - self._used
        if idle < limit or self._queue or any(w.jobs for w in self._workers) or self._starting:
            self._idle_timer = self._loop.call_later(max(limit - idle, 1.0), self._stop_when_idle)
            return
        self._idle_limit = None
        for worker in [w for w in self._workers if w.answered]:
            self._stop(worker)
        self.start(1)  # a fresh one stands by (kept while nothing asks: nothing in its caches)

    def _stop(self, worker: _Worker) -> None:
        """Stop an idle worker (it exits when told; its memory goes back to the system)."""
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send(None)
        self._detach(worker)
        threading.Thread(target=worker.process.join, args=(5,), daemon=True).start()  # reaped off the loop

    def _spawn(self) -> None:
        self._starting += 1
        threading.Thread(target=self._make_worker, name="viewer-render-start", daemon=True).start()

    def _make_worker(self) -> None:
        try:
            ctx = multiprocessing.get_context("spawn")
            parent, child = _pipe()
            process = ctx.Process(target=worker_main, args=(child,), name="viewer-render", daemon=True)
            process.start()
            child.close()
            worker: _Worker | None = _Worker(process, parent)
            error = None
        except Exception as exc:  # noqa: BLE001 - no processes here: tiles render in threads instead
            worker, error = None, f"{type(exc).__name__}: {exc}"
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._adopt, worker, error)

    def _adopt(self, worker: _Worker | None, error: str | None) -> None:
        self._starting -= 1
        if worker is None:
            log.warning("render processes unavailable (%s); tiles render in threads", error)
            self.failed = error
            self._fail_queue()
            return
        assert self._loop is not None
        self._workers.append(worker)
        self._loop.add_reader(worker.conn.fileno(), self._answer, worker)
        self._dispatch()

    @property
    def available(self) -> bool:
        """False once a worker could not be started: the caller renders in a thread instead."""
        return self.failed is None

    async def render(self, token: str, z: int, x: int, y: int, ext: str) -> bytes:
        """The encoded tile, rendered by a worker (queued while all are busy)."""
        if len(self._workers) + self._starting < self.n:  # one started at rest: the others with the first tile
            self.start()
        self._used = self._now()
        self._idle_limit = None  # someone uses the tiles: the full idle_s again
        job = _Job((token, z, x, y, ext), asyncio.get_running_loop().create_future(), x >> max(0, z - AREA_ZOOM))
        self._queue.append(job)
        self._dispatch()
        try:
            return await job.future
        except asyncio.CancelledError:  # the deadline passed (or the request went away)
            self._drop(job)
            raise

    def _dispatch(self) -> None:
        for index, worker in enumerate(self._workers):
            while worker.alive and worker.ready and len(worker.jobs) < JOBS_PER_WORKER and self._queue:
                job = self._next_job(index)
                if job.future.done():
                    continue
                worker.jobs.append(job)
                if len(worker.jobs) == 1:
                    job.head_since = self._now()
                try:
                    worker.conn.send(job.args)
                except (OSError, ValueError):  # its pipe closed: it died; handled outside this loop
                    worker.alive = False
                    assert self._loop is not None
                    self._loop.call_soon(self._lost, worker)

    def _next_job(self, index: int) -> _Job:
        """The first queued job of worker ``index``'s areas among the next :data:`AREA_LOOKAHEAD`,
        else the first job: with every worker busy tiles keep to their areas, with one idle it
        takes what comes (a single view's tiles still render on every worker)."""
        n = len(self._workers)
        for i, job in enumerate(itertools.islice(self._queue, AREA_LOOKAHEAD)):
            if job.area % n == index:
                del self._queue[i]
                return job
        return self._queue.popleft()

    def _answer(self, worker: _Worker) -> None:
        try:
            raw = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._lost(worker)
            return
        # a pickle (protocol 2 and up starts with 0x80) is "ready" (None) or an error; anything else is
        # an encoded tile (PNG 0x89, JPEG 0xff, WebP "R")
        message = pickle.loads(raw) if raw[:1] == b"\x80" else raw
        if message is None:  # its imports are done
            worker.ready = True
            self._dispatch()
            return
        self._deaths = 0
        worker.answered = True
        job = worker.jobs.popleft() if worker.jobs else None
        if worker.jobs:
            worker.jobs[0].head_since = self._now()
        if job is not None and not job.future.done():
            if isinstance(message, BaseException):
                job.future.set_exception(message)
            else:
                job.future.set_result(message)
        self._dispatch()

    def _drop(self, job: _Job) -> None:
        """A job nobody waits for: out of the queue, or, rendered for :attr:`stall_s` already, its worker
        stopped (a stalled read). A job sent a moment ago (its deadline spent in the queue of an
        overloaded server) is left to finish: stopping its worker would cost a restart. A job
        behind it is skipped when answered."""
        try:
            self._queue.remove(job)
            return
        except ValueError:
            pass
        for worker in self._workers:
            if worker.jobs and worker.jobs[0] is job and self._now() - job.head_since >= self.stall_s:
                worker.process.kill()
                self._lost(worker, died=False)
                return

    def _lost(self, worker: _Worker, died: bool = True) -> None:
        """``worker`` is gone (``died``: on its own, else stopped here): its jobs fail or move, a new one starts."""
        if worker not in self._workers:
            return
        self._detach(worker)
        worker.process.join(1)  # gone already, or killed: for its exit code
        if worker.jobs:  # the first was being rendered; the ones behind it go to another worker
            job = worker.jobs.popleft()
            if not job.future.done():
                job.future.set_exception(RenderUnavailable(
                    f"the render process stopped (exit code {worker.process.exitcode}) while drawing this tile; "
                    "try again", value=worker.process.exitcode))
            self._queue.extendleft(reversed(worker.jobs))
            worker.jobs.clear()
        self._deaths += died
        if self._deaths > MAX_DEATHS_IN_A_ROW:
            self.failed = f"{self._deaths} render processes stopped in a row"
            log.warning("%s; tiles render in threads", self.failed)
            self._fail_queue()
        elif len(self._workers) + self._starting < self.n:
            self._spawn()
        self._dispatch()

    def _detach(self, worker: _Worker) -> None:
        """Out of the pool: no longer read from, nor sent jobs."""
        assert self._loop is not None
        worker.alive = False
        self._workers.remove(worker)
        self._loop.remove_reader(worker.conn.fileno())
        worker.conn.close()

    def _fail_queue(self) -> None:
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(RenderUnavailable("no render process could be started; try again"))

    def close(self) -> None:
        """Stop the workers (jobs in flight fail)."""
        self.n = 0
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        for worker in list(self._workers):
            worker.process.kill()
            self._lost(worker, died=False)
