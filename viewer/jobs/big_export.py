"""Big exports on Dask ``distributed``: the chunks of :mod:`viewer.core.chunked` as tasks.

:func:`start_export` validates the request, the output path and the scheduler at once (typed
errors naming the bad value), then a :class:`BigExport` submits one task per chunk
(:func:`viewer.core.chunked.render_chunk`: the graph as JSON plus this process's catalog
path, so a worker resolves the same catalog) and writes each result as it arrives into a
:class:`~viewer.core.chunked.CogWriter`; a bounded number of tasks is in flight, so neither
the workers nor this process hold more than a few chunks. The cluster is an existing
scheduler (``scheduler=`` or ``VIEWER_DASK_SCHEDULER``, ``viewer serve --dask-scheduler``;
its workers need the viewer installed and the catalog's files at the same paths) or, by
default, one local cluster per process (worker processes, one per CPU, one thread each),
started on first use and shut down after :data:`LOCAL_IDLE_S` seconds without a running
export (its worker processes hold about 80 MB each); the next export starts it again.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from distributed import Client, Future, LocalCluster, as_completed
from tqdm.auto import tqdm

from ..core.chunked import DEFAULT_CHUNK, BigRequest, CogWriter, plan, prepare_big, render_chunk
from ..core.config import settings
from ..core.errors import InvalidArgument, LimitExceeded, ViewerError

__all__ = ["BigExport", "ExportCancelled", "SchedulerUnavailable", "start_export", "connect", "local_client",
           "computePixelsToFile"]

#: Seconds to wait for a scheduler named by address.
CONNECT_TIMEOUT = 5.0
#: Seconds without a running export after which the local cluster is shut down (a server's memory
#: at rest: two worker processes hold about 160 MB; starting the cluster again takes 2-5 s).
LOCAL_IDLE_S = 120.0
_SCHEDULER_ALLOWED = "the address of a running Dask scheduler such as 'tcp://host:8786', or none for a local cluster"


class SchedulerUnavailable(InvalidArgument):
    """The Dask scheduler given by address cannot be reached."""


class ExportCancelled(ViewerError):
    """The export was cancelled before it finished (no file was left under its name)."""


_lock = threading.Lock()
_clients: dict[str, Client] = {}
_local_jobs = 0  # exports running on the local cluster
_local_used = 0.0  # time.monotonic() of the local cluster's last use (handed out, or an export's end)


def local_client(n_workers: int | None = None) -> Client:
    """The process's local Dask cluster (worker processes, one per CPU unless ``n_workers``), started on
    first use; shut down :data:`LOCAL_IDLE_S` s after its last export ended (then started again)."""
    global _local_used
    with _lock:
        client = _clients.get("local")
        if client is None or client.status not in ("running", "connecting"):
            n = n_workers or os.cpu_count() or 1
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            client = _clients["local"] = Client(cluster, set_as_default=False)
        _local_used = time.monotonic()
        return client


def _export_started(client: Client) -> bool:
    """Count an export on the local cluster (True if ``client`` is that cluster's)."""
    global _local_jobs
    with _lock:
        if client is not _clients.get("local"):
            return False
        _local_jobs += 1
        return True


def _export_ended() -> None:
    """An export counted by :func:`_export_started` ended: shut the cluster down once idle."""
    global _local_jobs, _local_used
    with _lock:
        _local_jobs -= 1
        _local_used = time.monotonic()
        if _local_jobs == 0:
            _close_local_later(LOCAL_IDLE_S)


def _close_local_later(delay: float) -> None:
    timer = threading.Timer(delay, _close_local_if_idle)
    timer.daemon = True
    timer.start()


def _close_local_if_idle() -> None:
    """Shut the local cluster down if no export ran on it for :data:`LOCAL_IDLE_S` s (else look again then)."""
    with _lock:
        client = _clients.get("local")
        if client is None or _local_jobs:
            return
        left = _local_used + LOCAL_IDLE_S - time.monotonic()
        if left > 0:  # used again since: look again when it may have become idle
            _close_local_later(left)
            return
        del _clients["local"]
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


def connect(scheduler: str | None = None) -> Client:
    """A client of ``scheduler`` (default ``VIEWER_DASK_SCHEDULER``), or of the local cluster when neither is set."""
    address = scheduler if scheduler is not None else settings().dask_scheduler
    if address is None:
        return local_client()
    if not isinstance(address, str) or not address.strip():
        raise SchedulerUnavailable(f"Dask scheduler {address!r} is not an address; allowed: {_SCHEDULER_ALLOWED}",
                                   value=address, allowed=_SCHEDULER_ALLOWED)
    address = address.strip()
    with _lock:
        client = _clients.get(address)
        if client is not None and client.status == "running":
            return client
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            why = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise SchedulerUnavailable(f"Dask scheduler {address!r} cannot be reached ({why}); allowed: "
                                       f"{_SCHEDULER_ALLOWED}", value=address, allowed=_SCHEDULER_ALLOWED) from None
        _clients[address] = client
        return client


class BigExport:
    """One running export: ``progress`` (chunks done, total), ``cancel()``, ``result()`` (the COG's path)."""

    def __init__(self, request: BigRequest, writer: CogWriter, client: Client, chunk: int,
                 in_flight: int | None = None) -> None:
        self.request, self.path, self.client = request, writer.path, client
        self.id = uuid.uuid4().hex[:12]
        self._writer = writer
        self._windows = plan(request, chunk)
        self._done_chunks = 0
        self._status = "running"
        self._error: BaseException | None = None
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._pending: dict[str, Future] = {}
        self._pending_lock = threading.Lock()
        threads = sum(client.nthreads().values()) or 1
        self._in_flight = max(2, in_flight or 2 * threads)
        self.started = time.perf_counter()
        self.elapsed: float | None = None
        self._on_local = _export_started(client)
        self._thread = threading.Thread(target=self._run, name=f"big-export-{self.id}", daemon=True)
        self._thread.start()

    # state -----------------------------------------------------------------------------------
    @property
    def progress(self) -> tuple[int, int]:
        """(chunks written, chunks in all)."""
        return self._done_chunks, len(self._windows)

    @property
    def fraction(self) -> float:
        done, total = self.progress
        return done / total if total else 1.0

    @property
    def status(self) -> str:
        """``running``, ``finished``, ``cancelled`` or ``error``."""
        return self._status

    def done(self) -> bool:
        return self._finished.is_set()

    def cancel(self) -> None:
        """Stop: no new chunks, the running ones cancelled, the temporary files removed."""
        self._cancel.set()
        with self._pending_lock:
            futures = list(self._pending.values())
        if futures:
            self.client.cancel(futures)

    def result(self, timeout: float | None = None) -> Path:
        """The COG's path once written (raises the export's error, or :class:`ExportCancelled`)."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"export to {str(self.path)!r} still running after {timeout} s "
                               f"({self._done_chunks}/{len(self._windows)} chunks)")
        if self._error is not None:
            raise self._error
        if self._status == "cancelled":
            raise ExportCancelled(f"export to {str(self.path)!r} was cancelled; no file was written",
                                  value=str(self.path))
        return self.path

    def wait(self, progress: bool = True) -> Path:
        """Block until done, with a progress bar (a widget in notebooks, text elsewhere); an interrupt
        (Ctrl-C, the notebook's stop button) cancels the export."""
        bar = tqdm(total=len(self._windows), unit="chunk", desc=self.path.name, disable=not progress)
        try:
            while not self._finished.wait(0.2):
                bar.update(self._done_chunks - bar.n)
            bar.update(self._done_chunks - bar.n)
        except KeyboardInterrupt:
            self.cancel()
            self._finished.wait()
            raise
        finally:
            bar.close()
        return self.result()

    def __repr__(self) -> str:
        done, total = self.progress
        return f"<BigExport {self.path.name}: {self._status}, {done}/{total} chunks>"

    # the loop --------------------------------------------------------------------------------
    def _submit(self, todo, doc: Any, arrays: Any, futures: as_completed) -> None:
        if self._cancel.is_set():
            return
        for index, window in todo:
            key = f"viewer-chunk-{self.id}-{index}"
            box = (int(window.col_off), int(window.row_off), int(window.width), int(window.height))
            future = self.client.submit(render_chunk, doc, box, arrays, key=key, pure=False, retries=1)
            with self._pending_lock:
                self._pending[key] = future
            futures.add(future)
            return

    def _run(self) -> None:
        todo = iter(enumerate(self._windows))
        windows = {f"viewer-chunk-{self.id}-{i}": w for i, w in enumerate(self._windows)}
        try:
            # the request and its in-memory arrays go to every worker once, not with every task
            [doc] = self.client.scatter([self.request.to_dict()], broadcast=True, hash=False)
            arrays = None
            if self.request.arrays:
                [arrays] = self.client.scatter([self.request.arrays], broadcast=True, hash=False)
            futures = as_completed(loop=self.client.loop)
            for _ in range(self._in_flight):
                self._submit(todo, doc, arrays, futures)
            for future in futures:
                with self._pending_lock:
                    self._pending.pop(future.key, None)
                if self._cancel.is_set():
                    break
                values, valid = future.result()
                future.release()
                self._writer.write(windows[future.key], values, valid)
                self._done_chunks += 1
                self._submit(todo, doc, arrays, futures)
            if self._cancel.is_set():
                self.cancel()
                self._writer.abort()
                self._status = "cancelled"
            else:
                self._writer.finish()
                self._status = "finished"
        except BaseException as exc:  # noqa: BLE001 - kept for result(); the temporaries go
            cancelled = self._cancel.is_set()  # e.g. a chunk cancelled between the check and its result
            self.cancel()
            self._writer.abort()
            if cancelled:
                self._status = "cancelled"
            else:
                self._error, self._status = exc, "error"
        finally:
            self.elapsed = time.perf_counter() - self.started
            if self._on_local:
                _export_ended()
            self._finished.set()


def start_export(params: dict, path: str | os.PathLike, *, client: Client | None = None,
                 scheduler: str | None = None, chunk: int = DEFAULT_CHUNK,
                 max_bytes: int | None = None) -> BigExport:
    """Start a big export of a ``computePixels``-style request to a COG at ``path`` (see
    :func:`viewer.core.chunked.prepare_big`); returns at once with the running :class:`BigExport`.
    ``max_bytes`` caps the uncompressed size (the app's downloads)."""
    request = prepare_big(params)
    if max_bytes is not None and request.nbytes > max_bytes:
        grid = request.grid
        raise LimitExceeded(f"export of {grid.width}x{grid.height} pixels x {len(request.names)} bands = "
                            f"{request.nbytes / 2**20:.0f} MiB uncompressed; the limit here is "
                            f"{max_bytes / 2**20:.0f} MiB (larger exports: viewer.data.computePixelsToFile)",
                            value=request.nbytes, allowed=max_bytes)
    plan(request, chunk)  # checks the chunk size before anything is written
    client = client if client is not None else connect(scheduler)
    writer = CogWriter(request, path, chunk)
    return BigExport(request, writer, client, chunk)


def computePixelsToFile(params: dict, path: str | os.PathLike, *, scheduler: str | None = None,
                        chunk: int = DEFAULT_CHUNK, wait: bool = True, progress: bool = True,
                        client: Client | None = None) -> Any:
    """``data.computePixels`` without its 48 MiB limit, written to a Cloud Optimized GeoTIFF at ``path``.

    ``params`` are those of ``computePixels`` (``expression``, ``grid``, ``region``, ``bandIds``;
    ``fileFormat`` GEO_TIFF); the chunks run on Dask (``scheduler`` address, else
    ``VIEWER_DASK_SCHEDULER``, else a local cluster). With ``wait`` (default) it shows a progress
    bar and returns the path (an interrupt cancels); ``wait=False`` returns the :class:`BigExport`.
    """
    job = start_export(params, path, client=client, scheduler=scheduler, chunk=chunk)
    return job.wait(progress) if wait else job
