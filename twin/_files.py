"""Files shared between processes: checksums, a lock per entry, private temporaries, atomic renames.

The build cache (:mod:`twin.cache`) and the PBF conversion (:mod:`twin.osm`) write into one cache
folder that several processes use at once (a notebook, the CLI, parallel test workers, a Dask
cluster). Each writer takes the entry's lock (:mod:`filelock`), writes into a temporary named
after its process, and renames it into place, so that a reader sees either the old entry or the
new one, never half of one. A cache folder that cannot be written (read-only, or a path that
cannot be made) is reported once per process and the work goes on without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

__all__ = [
    "LOCK_TIMEOUT_S",
    "Lock",
    "fsync_file",
    "locked",
    "private_temp",
    "publish_dir",
    "remove_leftovers",
    "sha256_bytes",
    "sha256_file",
    "warn_unwritable",
]

log = logging.getLogger("twin.cache")

#: How long a process waits for another one that builds the same entry before going on alone, s.
LOCK_TIMEOUT_S = 900.0

_warned: set[str] = set()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes.

    >>> sha256_bytes(b"")[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's content, read in blocks of 1 MiB.

    Remembered per process while the file's path, size and modification time stay the same, so
    that a load which keys its cache entry and its inventory on the same input files reads each
    of them once. An edited file gets a new size or time and is read again.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as fh:
    ...     sha256_file(fh.name)[:12]
    'e3b0c44298fc'
    """
    p = Path(path).resolve()
    st = p.stat()
    return _sha256_of(str(p), st.st_size, st.st_mtime_ns)


def warn_unwritable(folder: Path, exc: OSError | str) -> None:
    """Say once per process and folder that the cache folder cannot be written."""
    key = str(folder)
    if key in _warned:
        return
    _warned.add(key)
    reason = exc if isinstance(exc, str) else (exc.strerror or type(exc).__name__)
    log.warning(
        "twin: cache folder %s cannot be written (%s); results are kept in memory only",
        folder,
        reason,
    )


def private_temp(final: Path, suffix: str = ".tmp") -> Path:
    """A temporary path beside ``final``, unique to this process and call (hidden by a dot).

    >>> p = private_temp(Path("cache/twins/bondy-0a1b"))
    >>> p.parent.as_posix(), p.name.startswith(".bondy-0a1b."), p.suffix
    ('cache/twins', True, '.tmp')
    """
    return final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{suffix}")


def remove_leftovers(final: Path) -> None:
    """Remove temporaries that crashed writers of ``final`` left behind (call under its lock)."""
    for p in final.parent.glob(f".{final.name}.*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def fsync_file(path: Path) -> None:
    """Flush a written file to disk, so that a rename after it never publishes a hole."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_dir(tmp: Path, final: Path) -> None:
    """Move a finished folder into place, replacing any previous one (call under its lock)."""
    old = None
    if final.exists():
        old = private_temp(final, ".old")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclasses.dataclass
class Lock:
    """What :func:`locked` gives: whether the lock is held, and why not.

    It is true when held. When the folder cannot be written, ``error`` says why, and
    :meth:`cannot_write` says it (once per process and folder) when the caller needed to write.
    """

    held: bool
    folder: Path
    error: OSError | None = None

    def __bool__(self) -> bool:
        return self.held

    def cannot_write(self) -> None:
        """Say, once, that the folder cannot be written (when that is why the lock is not held)."""
        if self.error is not None:
            warn_unwritable(self.folder, self.error)


@contextlib.contextmanager
def locked(
    lock_path: Path, *, folder: Path, what: str, timeout_s: float = LOCK_TIMEOUT_S
) -> Iterator[Lock]:
    """Hold a lock file (made with its folders when missing) for a ``with`` block.

    Parameters
    ----------
    lock_path : Path
        The lock file; one per entry.
    folder : Path
        The cache folder, named when it cannot be written.
    what : str
        What the lock guards, for the message when another process holds it too long.
    timeout_s : float
        How long to wait for another process holding it.

    Yields
    ------
    Lock
        True when the lock is held and the entry may be written. False when the folder cannot
        be written (a reader may still read it) or another process held the lock for
        ``timeout_s`` (said each time): the caller then reads what it can and writes nothing.
    """
    lock = filelock.FileLock(lock_path, timeout=timeout_s)
    state = Lock(held=False, folder=folder)
    try:
        lock.acquire()
        state.held = True
    except filelock.Timeout:  # a TimeoutError, hence an OSError: caught first
        log.warning(
            "twin: %s is being written by another process for more than %.0f s; going on "
            "without the cache",
            what,
            timeout_s,
        )
    except OSError as exc:
        state.error = exc
    try:
        yield state
    finally:
        if state.held:
            lock.release()


def read_report(path: Path, made_by: str) -> dict[str, Any]:
    """A JSON report another command wrote, or an error naming the file and that command.

    Raises
    ------
    InputValidationError
        No such file (``made_by`` says which run writes it), or a file that is not JSON.
    """
    import json

    from twin._errors import InputValidationError

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{path}: no such file (the folder of a `{made_by}` run is needed)"
        raise InputValidationError(msg) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{path}: cannot be read as JSON ({exc})"
        raise InputValidationError(msg) from None
    if not isinstance(report, dict):
        msg = f"{path}: a JSON object is needed, not {type(report).__name__}"
        raise InputValidationError(msg)
    return report
