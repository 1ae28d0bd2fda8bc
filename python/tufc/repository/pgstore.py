"""The change queue in PostgreSQL (psycopg 3): many workers, many machines.

Same tables and the same crash-safety protocol as ``SqliteStore`` (see
``tufc.repository.store``).  The publisher lock is a session-level advisory
lock held on a connection of its own: when the holder dies its connection
closes, the server drops the lock and another worker takes over.

psycopg is imported on first use, so ``tufc`` needs it only here.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator, Sequence

from ..exceptions import PublisherBusyError, StoreError
from .changes import Change
from .store import Store

__all__ = ["PostgresStore"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tufc_changes (
        id BIGSERIAL PRIMARY KEY,
        op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
        path TEXT NOT NULL,
        entry BYTEA,
        enqueued_at DOUBLE PRECISION NOT NULL,
        published_in BIGINT
    )""",
    "CREATE INDEX IF NOT EXISTS tufc_changes_pending ON tufc_changes (id) WHERE published_in IS NULL",
    "CREATE INDEX IF NOT EXISTS tufc_changes_published ON tufc_changes (published_in)"
    " WHERE published_in IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS tufc_changes_pending_path ON tufc_changes (path, id)"
    " WHERE published_in IS NULL",
    """CREATE TABLE IF NOT EXISTS tufc_publishes (
        snapshot_version BIGINT PRIMARY KEY,
        changes INTEGER NOT NULL,
        published_at DOUBLE PRECISION NOT NULL
    )""",
)

# WITH ORDINALITY keeps the batch's order in its ids
_INSERT = (
    "INSERT INTO tufc_changes (op, path, entry, enqueued_at)"
    " SELECT op, path, entry, %s"
    " FROM unnest(%s::text[], %s::text[], %s::bytea[]) WITH ORDINALITY AS c (op, path, entry, n)"
    " ORDER BY n"
)

# Defaults for what the DSN leaves unset: give up on a server that does not
# answer instead of hanging (a Unix socket ignores the TCP ones).
_CONNECT_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


def _psycopg():
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            "a postgresql:// queue needs psycopg 3: pip install psycopg (or 'psycopg[binary]')"
        ) from exc
    return psycopg


def _one_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    text = (getattr(diag, "message_primary", None) or str(exc) or type(exc).__name__).strip()
    return " ".join(text.split())


def _lock_key(purpose: str, schema: str) -> int:
    """A signed 64-bit advisory lock key, one per queue (schema) and purpose."""
    digest = hashlib.blake2b(f"tufc {purpose} {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore(Store):
    """The queue in a PostgreSQL database (the schema the DSN's
    ``search_path`` selects; tables are created on first use).

    ``lock_timeout`` (seconds) bounds waits for row and table locks, as
    ``busy_timeout`` does for SQLite: past it an operation is a StoreError.
    The publisher lock needs a real session: connect directly, not through
    a transaction-pooling proxy (PgBouncer's transaction mode).
    """

    def __init__(self, dsn: str, lock_timeout: float = 10.0):
        self._psycopg = _psycopg()
        self._lock_timeout_ms = max(1, int(lock_timeout * 1000))
        self._mutex = threading.Lock()
        self._lock_conn = None
        self._db = None
        self._where = "postgresql"
        with self._errors("parsing the database URL"):
            params = self._psycopg.conninfo.conninfo_to_dict(dsn)
            for name, value in _CONNECT_DEFAULTS.items():
                params.setdefault(name, value)
            self._conninfo = self._psycopg.conninfo.make_conninfo(**params)
        port = f":{params['port']}" if params.get("port") else ""
        self._where = f"{params.get('host') or 'localhost'}{port}/{params.get('dbname', '')}"
        self._db = self._connect("connecting")
        try:
            self._create_schema()
        except BaseException:
            self._db.close()
            raise

    def _create_schema(self) -> None:
        with self._errors("creating the queue tables"):
            schema = self._db.execute("SELECT current_schema()").fetchone()[0] or ""
            self._publisher_key = _lock_key("publisher", schema)
            # Concurrent CREATE ... IF NOT EXISTS can still collide in the
            # catalogs: the first worker creates, the others wait and see.
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("schema", schema),))
                for statement in _SCHEMA:
                    self._db.execute(statement)

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._psycopg.Error as exc:
            if isinstance(exc, self._psycopg.errors.LockNotAvailable):
                detail = "the queue's tables are locked by another transaction"
            elif isinstance(exc, self._psycopg.errors.UniqueViolation):
                detail = "that snapshot version is already recorded (two publishers raced)"
            else:
                detail = _one_line(exc)
            raise StoreError(f"queue database {self._where}: {what} failed: {detail}") from exc

    def _connect(self, what: str):
        with self._errors(what):
            conn = self._psycopg.connect(self._conninfo, autocommit=True)
            try:
                conn.execute(f"SET lock_timeout = {self._lock_timeout_ms}")
            except BaseException:
                conn.close()
                raise
            return conn

    @contextlib.contextmanager
    def _conn(self, what: str) -> Iterator:
        """The store's connection (reconnected if the server dropped it), one
        thread at a time, every failure a StoreError."""
        with self._mutex:
            if self._db is None or self._db.closed or self._db.broken:
                if self._db is not None:
                    self._db.close()
                self._db = self._connect(what)
            with self._errors(what):
                yield self._db

    def enqueue(self, changes: Sequence[Change], connection=None) -> None:
        """As ``Store.enqueue``; ``connection`` is a psycopg Connection (under
        SQLAlchemy: ``session.connection().connection.driver_connection``)."""
        # one statement, so the batch is atomic even on an autocommit connection
        params = (
            time.time(),
            [c.op for c in changes],
            [c.path for c in changes],
            [c.entry for c in changes],
        )
        if connection is None:
            with self._conn("enqueue") as db:
                db.execute(_INSERT, params)
            return
        if not isinstance(connection, self._psycopg.Connection):
            raise StoreError(
                f"enqueue: connection must be a psycopg Connection, not {type(connection).__name__}"
            )
        with self._errors("enqueue"):
            connection.execute(_INSERT, params)

    def pending(self, limit: int | None = None) -> list:
        sql = "SELECT id, op, path, entry FROM tufc_changes WHERE published_in IS NULL ORDER BY id"
        with self._conn("reading pending changes") as db:
            if limit is not None:
                rows = db.execute(sql + " LIMIT %s", (int(limit),)).fetchall()
            else:
                rows = db.execute(sql).fetchall()
        return [(row[0], Change(row[1], row[2], row[3])) for row in rows]

    def pending_ops(self, paths: Sequence[str]) -> dict:
        paths = list(dict.fromkeys(paths))
        with self._conn("reading pending changes") as db:
            rows = db.execute("SELECT path, op FROM tufc_changes WHERE published_in IS NULL"
                              " AND path = ANY(%s) ORDER BY id", (paths,)).fetchall()
        return dict(rows)  # oldest first: the newest wins

    def mark_published(self, ids: Sequence[int], snapshot_version: int) -> None:
        ids = [int(i) for i in ids]
        with self._conn("recording a publish") as db, db.transaction():
            db.execute(
                "INSERT INTO tufc_publishes (snapshot_version, changes, published_at) VALUES (%s, %s, %s)",
                (snapshot_version, len(ids), time.time()),
            )
            db.execute(
                "UPDATE tufc_changes SET published_in = %s WHERE id = ANY(%s) AND published_in IS NULL",
                (snapshot_version, ids),
            )

    def reconcile(self, published_snapshot: int) -> int:
        with self._conn("reconciling with the published timestamp") as db:
            # as in SqliteStore: no mark above the published snapshot, no write
            if db.execute("SELECT 1 FROM tufc_publishes WHERE snapshot_version > %s LIMIT 1",
                          (published_snapshot,)).fetchone() is None:
                return 0
        with self._conn("reconciling with the published timestamp") as db, db.transaction():
            db.execute("DELETE FROM tufc_publishes WHERE snapshot_version > %s", (published_snapshot,))
            cursor = db.execute(
                "UPDATE tufc_changes SET published_in = NULL WHERE published_in > %s",
                (published_snapshot,),
            )
            return cursor.rowcount

    @contextlib.contextmanager
    def publisher_lock(self, timeout: float | None = None) -> Iterator[None]:
        conn = self._connect("taking the publisher lock")
        try:
            with self._errors("taking the publisher lock"):
                if timeout is None:
                    conn.execute("SELECT pg_advisory_lock(%s)", (self._publisher_key,))
                else:
                    deadline = time.monotonic() + timeout
                    while not conn.execute(
                        "SELECT pg_try_advisory_lock(%s)", (self._publisher_key,)
                    ).fetchone()[0]:
                        if time.monotonic() >= deadline:
                            raise PublisherBusyError(
                                f"another publisher holds the publisher lock of {self._where}"
                            )
                        time.sleep(0.02)
            self._lock_conn = conn
            yield
        finally:
            if self._lock_conn is conn:
                self._lock_conn = None
                # released before this returns: the server drops a closed
                # session's locks only once its backend has exited, so a
                # publisher starting right after would find it still held
                with contextlib.suppress(self._psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (self._publisher_key,))
            conn.close()  # ending the session drops the lock in any case

    def lock_alive(self) -> bool:
        conn = self._lock_conn
        if conn is None or conn.closed:
            return False
        key = self._publisher_key & 0xFFFFFFFFFFFFFFFF
        try:
            # a bigint key is (classid, objid) = (high, low) 32 bits, objsubid 1
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = %s::oid AND objid = %s::oid AND objsubid = 1",
                (key >> 32, key & 0xFFFFFFFF),
            ).fetchone()
        except self._psycopg.Error:
            return False
        return row[0] == 1

    def counts(self) -> dict:
        with self._conn("counting changes") as db:
            pending, published, last = db.execute(
                "SELECT COUNT(*) FILTER (WHERE published_in IS NULL),"
                " COUNT(*) FILTER (WHERE published_in IS NOT NULL),"
                " (SELECT MAX(snapshot_version) FROM tufc_publishes) FROM tufc_changes"
            ).fetchone()
        return {"pending": pending, "published": published, "last_snapshot": last}

    def close(self) -> None:
        with self._mutex:
            if self._db is not None:
                with contextlib.suppress(self._psycopg.Error):
                    self._db.close()
