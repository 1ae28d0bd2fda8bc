"""The durable change queue: rows in the database the registry runs.

A change is a row (``op``, ``path``, ``entry``) that stays pending until a
publish names it: ``published_in`` is then the snapshot version that first
contains it.  The publisher marks a batch *before* it writes the timestamp
that makes the batch visible, and on every start it compares the marks with
the timestamp actually published (``reconcile``): marks above it are from a
publish that died before its timestamp, so those rows are pending again.
Rows are never marked by id range, because with concurrent writers ids
commit out of order.

Two stores behind one interface: ``SqliteStore`` (a file, nothing to
start) and ``PostgresStore`` (``tufc.repository.pgstore``; many workers on
many machines).  ``open_store(url)`` picks one.
"""

from __future__ import annotations

import abc
import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence

from ..exceptions import PublisherBusyError, StoreError
from .changes import Change

__all__ = ["Store", "SqliteStore", "open_store"]


class Store(abc.ABC):
    """The queue's interface.  Every database failure is a ``StoreError``."""

    @abc.abstractmethod
    def enqueue(self, changes: Sequence[Change], connection=None) -> None:
        """Append ``changes`` in one transaction: commit it, or, when the
        caller passes its own ``connection`` (a Warehouse upload's
        transaction), add the rows to it and leave the commit to the caller."""

    @abc.abstractmethod
    def pending(self, limit: int | None = None) -> list:
        """Up to ``limit`` pending changes as ``(id, Change)``, oldest first."""

    def pending_ops(self, paths: Sequence[str]) -> dict:
        """``{path: op}`` of the newest pending change of each of ``paths``
        that has one.  Stores answer from an index on the pending rows'
        paths; this fallback reads the whole queue."""
        wanted = set(paths)
        return {change.path: change.op for _, change in self.pending() if change.path in wanted}

    @abc.abstractmethod
    def mark_published(self, ids: Sequence[int], snapshot_version: int) -> None:
        """Record, in one committed transaction, that the changes ``ids``
        are published in ``snapshot_version``.  Fails (StoreError) if that
        snapshot version was already recorded: two publishers raced."""

    @abc.abstractmethod
    def reconcile(self, published_snapshot: int) -> int:
        """Make changes marked for snapshots newer than the published one
        pending again; return how many."""

    @abc.abstractmethod
    def publisher_lock(self, timeout: float | None = None) -> contextlib.AbstractContextManager:
        """Hold the one-publisher-at-a-time lock (released if the process
        dies).  ``timeout`` None waits; otherwise PublisherBusyError."""

    @abc.abstractmethod
    def lock_alive(self) -> bool:
        """Whether this store still holds the publisher lock.  A publisher
        asks just before its commit point: a lock whose connection died may
        already be another worker's, so the publish must stop there."""

    @abc.abstractmethod
    def counts(self) -> dict:
        """``{"pending": n, "published": n, "last_snapshot": v or None}``."""

    def close(self) -> None:
        """Release connections (the store is unusable afterwards)."""


# --- SQLite ------------------------------------------------------------------

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS tufc_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
    path TEXT NOT NULL,
    entry BLOB,
    enqueued_at REAL NOT NULL,
    published_in INTEGER
);
CREATE INDEX IF NOT EXISTS tufc_changes_pending ON tufc_changes (id) WHERE published_in IS NULL;
CREATE INDEX IF NOT EXISTS tufc_changes_published ON tufc_changes (published_in) WHERE published_in IS NOT NULL;
CREATE INDEX IF NOT EXISTS tufc_changes_pending_path ON tufc_changes (path, id) WHERE published_in IS NULL;
CREATE TABLE IF NOT EXISTS tufc_publishes (
    snapshot_version INTEGER PRIMARY KEY,
    changes INTEGER NOT NULL,
    published_at REAL NOT NULL
);
"""


_SQLITE_CHUNK = 500  # host parameters per statement (SQLite allows 999 at least)


@contextlib.contextmanager
def _sqlite_errors(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"queue database: {what} failed: {exc}") from exc


class SqliteStore(Store):
    """The queue in a SQLite file (WAL mode: writers do not block the
    publisher's reads).  The publisher lock is an advisory ``flock`` on
    ``PATH.publisher-lock``, which the kernel drops when the holder dies."""

    def __init__(self, path: str, busy_timeout: float = 10.0):
        self.path = os.fspath(path)
        self._busy_timeout = busy_timeout
        self._lock_held = False
        with _sqlite_errors(f"opening {self.path}"):
            if not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
                raise sqlite3.OperationalError("its folder does not exist")
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SQLITE_SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    @contextlib.contextmanager
    def _transaction(self, what: str, db=None) -> Iterator[sqlite3.Connection]:
        db = self._db if db is None else db
        with _sqlite_errors(what):
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def enqueue(self, changes: Sequence[Change], connection=None) -> None:
        now = time.time()
        rows = [(c.op, c.path, c.entry, now) for c in changes]
        sql = "INSERT INTO tufc_changes (op, path, entry, enqueued_at) VALUES (?, ?, ?, ?)"
        if connection is not None:
            with _sqlite_errors("enqueue"):
                connection.executemany(sql, rows)
            return
        with self._transaction("enqueue") as db:
            db.executemany(sql, rows)

    def pending(self, limit: int | None = None) -> list:
        sql = "SELECT id, op, path, entry FROM tufc_changes WHERE published_in IS NULL ORDER BY id"
        with _sqlite_errors("reading pending changes"):
            if limit is not None:
                rows = self._db.execute(sql + " LIMIT ?", (int(limit),)).fetchall()
            else:
                rows = self._db.execute(sql).fetchall()
        return [(row[0], Change(row[1], row[2], row[3])) for row in rows]

    def pending_ops(self, paths: Sequence[str]) -> dict:
        paths = list(dict.fromkeys(paths))
        out = {}
        with _sqlite_errors("reading pending changes"):
            for start in range(0, len(paths), _SQLITE_CHUNK):
                chunk = paths[start:start + _SQLITE_CHUNK]
                rows = self._db.execute(
                    "SELECT path, op FROM tufc_changes WHERE published_in IS NULL AND path IN "
                    f"({','.join('?' * len(chunk))}) ORDER BY id", chunk).fetchall()
                out.update(rows)  # oldest first: the newest wins
        return out

    def mark_published(self, ids: Sequence[int], snapshot_version: int) -> None:
        with self._transaction("recording a publish") as db:
            db.execute(
                "INSERT INTO tufc_publishes (snapshot_version, changes, published_at) VALUES (?, ?, ?)",
                (snapshot_version, len(ids), time.time()),
            )
            db.executemany(
                "UPDATE tufc_changes SET published_in = ? WHERE id = ? AND published_in IS NULL",
                ((snapshot_version, i) for i in ids),
            )

    def reconcile(self, published_snapshot: int) -> int:
        # every mark records its snapshot in tufc_publishes in the same
        # transaction: nothing above the published one, nothing to undo (and
        # no durable write on the way of every publish)
        with _sqlite_errors("reconciling with the published timestamp"):
            if self._db.execute("SELECT 1 FROM tufc_publishes WHERE snapshot_version > ? LIMIT 1",
                                (published_snapshot,)).fetchone() is None:
                return 0
        with self._transaction("reconciling with the published timestamp") as db:
            db.execute("DELETE FROM tufc_publishes WHERE snapshot_version > ?", (published_snapshot,))
            cursor = db.execute(
                "UPDATE tufc_changes SET published_in = NULL WHERE published_in > ?",
                (published_snapshot,),
            )
            return cursor.rowcount

    @contextlib.contextmanager
    def publisher_lock(self, timeout: float | None = None) -> Iterator[None]:
        import fcntl

        lock_path = self.path + ".publisher-lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the publisher lock {lock_path}: {exc}") from exc
        acquired = False
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise PublisherBusyError(
                            f"another publisher holds {lock_path}"
                        ) from None
                    time.sleep(0.01)
            self._lock_held = acquired = True
            yield
        finally:
            if acquired:
                self._lock_held = False
            os.close(fd)  # closing drops the lock

    def lock_alive(self) -> bool:
        # a flock lives as long as its descriptor: held means alive
        return self._lock_held

    def counts(self) -> dict:
        with _sqlite_errors("counting changes"):
            pending, published = self._db.execute(
                "SELECT COUNT(*) FILTER (WHERE published_in IS NULL),"
                " COUNT(*) FILTER (WHERE published_in IS NOT NULL) FROM tufc_changes"
            ).fetchone()
            last = self._db.execute("SELECT MAX(snapshot_version) FROM tufc_publishes").fetchone()[0]
        return {"pending": pending, "published": published, "last_snapshot": last}

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


def open_store(url: str) -> Store:
    """``postgresql://...`` (or ``postgres://``): PostgresStore; anything
    else (``sqlite:///path`` or a plain path): SqliteStore."""
    if not isinstance(url, str):
        url = os.fspath(url)
    if url.startswith(("postgresql://", "postgres://")):
        from .pgstore import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite://"):]
    elif url.startswith("sqlite:"):
        url = url[len("sqlite:"):]
    return SqliteStore(url)
