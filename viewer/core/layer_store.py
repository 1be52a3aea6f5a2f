"""The state directory: layer specs as JSON and in-memory arrays as ``.npz``, bounded in size.

Layout of :func:`state_dir` (``$VIEWER_STATE_DIR``, else ``~/.cache/viewer/layers``, honouring
``$XDG_CACHE_HOME``):

* ``<token>.json``: one layer spec document (its content is up to :mod:`viewer.core.layers`);
* ``arrays/<digest>.npz``: an in-memory array that ``array`` nodes name by sha256 digest:
  ``values`` (C, H, W), ``mask`` (only if it has one), ``crs`` (WKT, empty for pixel space)
  and ``transform`` (6 floats). It is read with ``allow_pickle=False`` and its digest is
  recomputed (through :func:`~viewer.core.sources.array_node`, which also registers it).

Nothing here writes or reads a pickle; ``.pickle`` files left by older versions are ignored
(and never deleted). Files are written atomically (temporary file, then rename), so a
reader in another process never sees half a file. Paths are built only from names of the
two forms above (64 lowercase hex characters), so a token or digest cannot leave the folder.

Bounds. The folder holds at most ``$VIEWER_STATE_MAX_FILES`` spec files (default 20000) and
``$VIEWER_STATE_MAX_MB`` megabytes in all (default 1024); pruning deletes the oldest files
(by mtime) first, and only files named as above. A directory scan is not done on every
write: a process prunes after its first write to a folder, then after every
``max(1, min(256, max_files // 8))`` new files or ``max_bytes / 8`` new bytes, so each writing
process overshoots the caps by at most about an eighth. :func:`touch` (on register and
resolve) renews a spec's mtime and then its arrays', so an array is never older than a spec
that uses it: in the oldest-first order an array comes after every spec that refers to it,
and is deleted only once those are gone (ties put specs first).
"""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Iterable

import numpy as np

from .config import settings
from .errors import ReadError
from .raster import Raster
from .sources import array_node, get_array

__all__ = ["state_dir", "spec_path", "array_path", "read_doc", "save", "load_arrays", "touch",
           "prune", "DOC_VERSION"]

DOC_VERSION = 2
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SPEC_FILE = re.compile(r"^[0-9a-f]{64}\.json$")
_ARRAY_FILE = re.compile(r"^[0-9a-f]{64}\.npz$")
_ARRAY_KEYS = {"values", "mask", "crs", "transform"}


def state_dir() -> Path:
    """Where specs are persisted: ``$VIEWER_STATE_DIR`` or the per-user cache directory."""
    return settings().state_dir


def _hex(name: str) -> str:
    if not isinstance(name, str) or not _HEX64.match(name):
        raise ValueError(f"{str(name)[:80]!r} is not 64 lowercase hex characters")
    return name


def spec_path(root: Path, token: str) -> Path:
    return root / f"{_hex(token)}.json"


def array_path(root: Path, digest: str) -> Path:
    return root / "arrays" / f"{_hex(digest)}.npz"


def _write_atomic(path: Path, payload: bytes) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(payload)


def _array_bytes(data: Raster) -> bytes:
    values = np.stack(data.values).astype(data.values[0].dtype, copy=False)  # keeps the byte order
    crs = data.grid.crs.to_wkt() if data.grid.crs is not None else ""
    parts = {"values": values, "crs": np.array(crs),
             "transform": np.array(tuple(data.grid.transform)[:6], dtype=np.float64)}
    if any(m is not None for m in data.masks):
        parts["mask"] = np.stack(data.masks)
    buf = io.BytesIO()
    np.savez_compressed(buf, **parts)
    return buf.getvalue()


def _read_array(path: Path, digest: str) -> Raster:
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
        if not {"values", "crs", "transform"} <= keys <= _ARRAY_KEYS:
            raise ValueError(f"array file {path.name} holds {sorted(keys)}; expected {sorted(_ARRAY_KEYS)}")
        values = z["values"]
        mask = z["mask"] if "mask" in keys else None
        crs, transform = str(z["crs"]), [float(v) for v in z["transform"]]
    if len(transform) != 6:
        raise ValueError(f"array file {path.name} has a transform of {len(transform)} numbers, not 6")
    node = array_node(values, crs=crs or None, transform=transform, mask=mask)  # registers it
    if node.args[0] != digest:
        raise ReadError(f"stored array {path} does not match its digest {digest}", value=digest)
    return node.held


def read_doc(token: str) -> dict:
    """The JSON document stored under ``token`` (``FileNotFoundError`` when there is none)."""
    doc = json.loads(spec_path(state_dir(), token).read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"the stored document is a {type(doc).__name__}, not an object")
    return doc


def load_arrays(digests: Iterable[str]) -> list[Raster]:
    """Register the stored arrays of ``digests`` that this process does not hold yet (content checked).

    Returns them all: an array stays registered while something holds it, so keep the list until
    the graph that names them is rebuilt (its nodes then hold them).
    """
    root = state_dir()
    held = []
    for digest in digests:
        try:
            held.append(get_array(_hex(digest)))
        except KeyError:
            held.append(_read_array(array_path(root, digest), digest))
    return held


def touch(token: str, digests: Iterable[str]) -> None:
    """Renew the mtime of a spec, then of its arrays (so arrays stay newer than their specs)."""
    root = state_dir()
    os.utime(spec_path(root, token))
    for digest in digests:
        os.utime(array_path(root, digest))


def save(token: str, doc: dict, digests: Iterable[str]) -> None:
    """Store ``doc`` under ``token`` and the arrays it names, unless stored already; then touch them."""
    root = state_dir()
    digests = sorted(set(digests))
    try:
        files = size = 0
        for digest in digests:
            path = array_path(root, digest)
            if not path.exists():
                files, size = files + 1, size + _write_atomic(path, _array_bytes(get_array(digest)))
        path = spec_path(root, token)
        if not path.exists():
            text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
            files, size = files + 1, size + _write_atomic(path, text.encode())
        touch(token, digests)
        if files:
            _after_write(root, files, size, keep={spec_path(root, token)} | {array_path(root, d) for d in digests})
    except OSError as exc:
        raise ReadError(f"cannot store layer {token} in the state directory {str(root)!r} ({exc}); set "
                        "VIEWER_STATE_DIR to a writable directory", value=str(root)) from None


# pruning ------------------------------------------------------------------------------------
_prune_lock = threading.Lock()
_written: dict[str, list[int]] = {}  # folder -> [files, bytes] written since this process last pruned it


def _after_write(root: Path, files: int, size: int, keep: set[Path]) -> None:
    max_files, max_bytes = _caps()
    with _prune_lock:
        first = str(root) not in _written
        counts = _written.setdefault(str(root), [0, 0])
        counts[0] += files
        counts[1] += size
        due = first or counts[0] >= max(1, min(256, max_files // 8)) or counts[1] >= max_bytes / 8
        if due:
            counts[:] = [0, 0]
    if due:
        prune(root, keep)


def _caps() -> tuple[int, float]:
    s = settings()
    return s.state_max_files, s.state_max_mb * 2 ** 20


def _scan(root: Path) -> list[tuple[float, int, int, str]]:
    """(mtime, is_array, size, path) of the spec and array files, oldest first (specs first on ties)."""
    found = []
    for folder, pattern, is_array in ((root, _SPEC_FILE, 0), (root / "arrays", _ARRAY_FILE, 1)):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if not pattern.match(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # pruned by another process meanwhile
                continue
            found.append((st.st_mtime, is_array, st.st_size, entry.path))
    return sorted(found)


def prune(root: Path | None = None, keep: Iterable[Path] = ()) -> int:
    """Delete the oldest spec and array files until the folder is within its caps; the number deleted."""
    root = state_dir() if root is None else root
    max_files, max_bytes = _caps()
    keep_paths = {str(p) for p in keep}
    entries = _scan(root)
    specs = sum(1 for e in entries if not e[1])
    total = sum(e[2] for e in entries)
    deleted = 0
    for _, is_array, size, path in entries:
        if specs <= max_files and total <= max_bytes:
            break
        if path in keep_paths:
            continue
        try:
            os.unlink(path)
            deleted += 1
        except FileNotFoundError:
            pass  # another process pruned it first
        specs -= not is_array
        total -= size
    return deleted
