"""Atomic file writes for the metadata and target caches.

A file is written under a temporary name in its destination folder and
renamed into place, so a reader sees the old file or the whole new one,
never part of one; on failure the temporary file is removed.  Failures are
``StorageError``.  fsync is the caller's choice (``durable``): the client
makes only its trusted root files durable, because every other cached file
is verified again when it is read, and one a power cut tore is fetched
again.

A process killed mid-write leaves its temporary file behind;
``remove_stale`` removes such files, recognised by their exact name.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import stat
import sys
import time

from .exceptions import StorageError

# A live writer modifies its temporary file as data arrives (the default
# fetcher waits at most a 30 s socket timeout for more) and renames it right
# after the last write: one untouched for an hour was left by a dead writer.
STALE_AFTER = 3600.0  # seconds
_TEMP_NAME = re.compile(r"\.tufc-[0-9a-f]{16}\.tmp\Z")
# Bytes per write(2).  On Linux 6.18's ext4 (large folios) one 508 KB write
# took 1.0-1.2 ms and the same bytes in 64 KiB writes 0.13-0.24 ms (tmpfs:
# 0.2 ms either way); a PyPI snapshot is written at every refresh that
# fetches one.  More calls cost microseconds where chunks make no difference.
WRITE_CHUNK = 1 << 16


def temp_name() -> str:
    # never ends in ".json": a crash cannot leave something that looks like
    # metadata, and cleaning up is unambiguous
    return f".tufc-{secrets.token_hex(8)}.tmp"


def remove_stale(folder: str, older_than: float | None) -> int:
    """Remove the temporary files writers that died left in ``folder``
    (not below it); return how many.

    Only names ``temp_name`` makes are touched.  A symlink of that name is
    removed as a link, never followed (its own mtime counts); directories
    are skipped.  ``older_than=None`` removes every such file (for a caller
    holding the lock that all writers in ``folder`` hold); otherwise only
    files not modified for that many seconds.  Best effort: a file that
    vanishes or cannot be removed is skipped, never an error.
    """
    now = time.time()
    removed = 0
    try:
        entries = os.scandir(folder)
    except OSError:
        return 0
    with entries:
        for entry in entries:
            name = entry.name
            if not name.startswith(".tufc-") or _TEMP_NAME.match(name) is None:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    continue
                if older_than is not None and now - info.st_mtime < older_than:
                    continue
                os.unlink(entry.path)
            except OSError:
                continue
            removed += 1
    return removed


def create_temp(folder: str) -> tuple:
    """A new file in ``folder`` with a name no reader mistakes for metadata:
    ``(descriptor, path)``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = os.path.join(folder, temp_name())
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
        except OSError as exc:
            raise StorageError(f"Cannot write in {folder}: {exc}") from exc
    raise StorageError(  # pragma: no cover - 100 collisions of 64 random bits
        f"Cannot create a temporary file in {folder}"
    )


class AtomicFile:
    """Write a file via a temporary file in the same folder; ``commit()``
    renames it into place (fsynced first when ``durable``), anything else
    removes it."""

    def __init__(self, path: str, durable: bool = True):
        self.path = path
        self.durable = durable
        self._file = None
        self._temp = None

    def __enter__(self) -> AtomicFile:
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, temp = create_temp(folder)
        self._temp = temp
        self._file = os.fdopen(fd, "wb")
        return self

    def write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            for start in range(0, len(view), WRITE_CHUNK):
                self._file.write(view[start:start + WRITE_CHUNK])
        except OSError as exc:
            raise StorageError(f"Cannot write {self.path}: {exc}") from exc

    def commit(self) -> None:
        try:
            self._file.flush()
            if self.durable:
                os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temp, self.path)
        except OSError as exc:
            raise StorageError(f"Cannot write {self.path}: {exc}") from exc
        self._temp = None

    def __exit__(self, *exc_info) -> None:
        if not self._file.closed:
            self._file.close()
        if self._temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._temp)


def remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(f"Cannot remove {path}: {exc}") from exc


def write_atomic(path: str, data: bytes, durable: bool = True, rename_if=None) -> bool:
    """``AtomicFile`` for bytes in hand, without a buffered file object:
    temp file, write, fsync, rename; the temp file is removed on failure.

    ``durable=False`` skips the fsync (the rename is still atomic): for many
    files made durable together by ``sync_files`` before anything refers to
    them.  ``rename_if``, a context manager factory yielding a bool, guards
    the rename: the file is renamed into place inside it only if it yields
    True, else discarded (a writer thread whose batch was abandoned must not
    replace a file a later batch wrote).  Returns whether it was renamed."""
    folder = os.path.dirname(path) or os.curdir
    fd, temp = create_temp(folder)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view[:WRITE_CHUNK]):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if rename_if is None:
            os.replace(temp, path)
            return True
        with rename_if() as wanted:
            if wanted:
                os.replace(temp, path)
                return True
        os.unlink(temp)
        return False
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise StorageError(f"Cannot write {path}: {exc}") from exc
        raise


@functools.lru_cache(maxsize=None)
def _syncfs():
    """Linux's syncfs(2) (one filesystem's dirty data in one call), or None.
    Looked up on first use: clients never need it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        func = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]

    def syncfs(fd: int) -> None:
        if func(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return syncfs


def sync_files(paths, folder: str | None = None) -> None:
    """Make the files in ``paths`` durable (then ``folder`` itself, so
    their names are too): fsync each, or for many files one syncfs of the
    filesystem that holds ``folder``, far cheaper than thousands of fsyncs."""
    paths = list(paths)
    try:
        syncfs = _syncfs() if folder is not None and len(paths) > 16 else None
        if syncfs is not None:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                syncfs(fd)
            finally:
                os.close(fd)
        else:
            for path in paths:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        if folder is not None:
            sync_folder(folder)
    except OSError as exc:
        raise StorageError(f"Cannot sync {folder or 'files'}: {exc}") from exc


def sync_folder(folder: str) -> None:
    """fsync a folder, so the names renamed into it survive a power cut.
    A no-op on Windows, where a folder cannot be opened to be synced."""
    if os.name == "nt":  # pragma: no cover - Windows
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise StorageError(f"Cannot open {folder}: {exc}") from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        raise StorageError(f"Cannot sync {folder}: {exc}") from exc
    finally:
        os.close(fd)
