"""The change queue's behaviour, one suite run against both stores.

``SqliteStore`` in a temporary folder and ``PostgresStore`` on the test
session's PostgreSQL server (tests/pg_server.py), each test in a fresh file
or database.  What they must share is the crash-safety protocol of
tufc/repository/store.py: pending in id order, enqueue inside the caller's
transaction, marks per snapshot (a version recorded once), reconcile above
the published snapshot, marks by id list (ids commit out of order), one
publisher at a time across processes; and every failure a StoreError.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

import tufc
from tufc.exceptions import PublisherBusyError, StoreError
from tufc.repository.changes import Change
from tufc.repository.store import SqliteStore, open_store

TIMEOUT = 60

ADD_A = Change("add", "a/a-1.0.tar.gz", b'{"hashes":{"sha256":"00"},"length":1}')
ADD_B = Change("add", "b/b-2.0-py3-none-any.whl", b'{"hashes":{"sha256":"11"},"length":2}')
REMOVE_C = Change("remove", "c/c-0.1.tar.gz", None)


def changes(n: int, prefix: str = "p") -> list:
    return [Change("add", f"{prefix}/{i}.tar.gz", b'{"length":%d}' % i) for i in range(n)]


class SqliteBackend:
    kind = "sqlite"

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "queue.sqlite")
        self.url = f"sqlite:///{self.path}"

    def open(self, timeout: float = 10.0):
        return SqliteStore(self.path, busy_timeout=timeout)

    def connect(self):
        """A caller's connection; its first write opens a transaction."""
        return sqlite3.connect(self.path)

    @contextlib.contextmanager
    def other_writer(self):
        """Another writer holding the database's write lock."""
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()


class PostgresBackend:
    kind = "postgres"

    def __init__(self, server, dbname):
        self.dsn = server.dsn(dbname)
        self.url = server.url(dbname)

    def open(self, timeout: float = 10.0):
        from tufc.repository.pgstore import PostgresStore

        return PostgresStore(self.dsn, lock_timeout=timeout)

    def connect(self):
        import psycopg

        return psycopg.connect(self.dsn)  # not autocommit: a transaction

    @contextlib.contextmanager
    def other_writer(self):
        with self.connect() as db:
            db.execute("LOCK TABLE tufc_changes, tufc_publishes IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                db.rollback()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return SqliteBackend(tmp_path)
    server = request.getfixturevalue("postgres_server")
    return PostgresBackend(server, server.create_database())


@pytest.fixture
def store(backend):
    s = backend.open()
    yield s
    s.close()


def ids_of(rows) -> list:
    return [i for i, _ in rows]


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message, message
    return message


# --- the queue ---------------------------------------------------------------


def test_pending_is_every_change_oldest_first(store):
    assert store.pending() == []
    store.enqueue([ADD_A, REMOVE_C])
    store.enqueue([ADD_B])
    rows = store.pending()
    assert [c for _, c in rows] == [ADD_A, REMOVE_C, ADD_B]
    assert ids_of(rows) == sorted(ids_of(rows))
    assert store.pending(limit=2) == rows[:2]
    assert store.counts() == {"pending": 3, "published": 0, "last_snapshot": None}


def test_pending_ops_is_the_newest_pending_change_of_each_path(store):
    from tufc.repository.store import Store

    assert store.pending_ops([ADD_A.path]) == {}
    store.enqueue([ADD_A, REMOVE_C, Change("remove", ADD_A.path, None)])
    store.enqueue([ADD_B, Change("add", REMOVE_C.path, b"{}")])
    first = ids_of(store.pending())[0]
    store.mark_published([first], 1)  # a published change is not pending
    paths = [ADD_A.path, ADD_B.path, REMOVE_C.path, "not/queued", ADD_A.path]
    want = {ADD_A.path: "remove", ADD_B.path: "add", REMOVE_C.path: "add"}
    assert store.pending_ops(paths) == want
    assert Store.pending_ops(store, paths) == want  # the interface's fallback agrees
    many = changes(1200)  # more paths than one SQLite statement takes
    store.enqueue(many)
    assert store.pending_ops([c.path for c in many]) == {c.path: "add" for c in many}


def test_enqueue_keeps_a_large_batch_in_order(store):
    batch = changes(500)
    store.enqueue(batch)
    assert [c for _, c in store.pending()] == batch


def test_enqueue_in_callers_transaction_is_visible_only_after_its_commit(backend, store):
    conn = backend.connect()
    try:
        store.enqueue([ADD_A, ADD_B], connection=conn)
        assert store.pending() == []  # the caller has not committed
        conn.commit()
    finally:
        conn.close()
    assert [c for _, c in store.pending()] == [ADD_A, ADD_B]


def test_enqueue_in_rolled_back_transaction_is_never_published(backend, store):
    conn = backend.connect()
    try:
        store.enqueue([ADD_A], connection=conn)
        conn.rollback()
    finally:
        conn.close()
    store.enqueue([ADD_B])
    rows = store.pending()
    assert [c for _, c in rows] == [ADD_B]
    store.mark_published(ids_of(rows), 1)
    assert store.pending() == []
    assert store.counts() == {"pending": 0, "published": 1, "last_snapshot": 1}


def test_mark_published_takes_changes_out_of_pending(store):
    store.enqueue([ADD_A, ADD_B, REMOVE_C])
    first, second, third = ids_of(store.pending())
    store.mark_published([first, third], 1)
    assert store.pending() == [(second, ADD_B)]
    assert store.counts() == {"pending": 1, "published": 2, "last_snapshot": 1}
    # a change already published keeps the snapshot that first held it
    store.mark_published([first, second], 2)
    assert store.pending() == []
    store.reconcile(1)
    assert store.pending() == [(second, ADD_B)]


def test_second_mark_of_a_snapshot_version_fails_and_marks_nothing(store):
    store.enqueue([ADD_A, ADD_B])
    first, second = ids_of(store.pending())
    store.mark_published([first], 5)
    with pytest.raises(StoreError) as exc:
        store.mark_published([second], 5)
    one_line(exc)
    assert store.pending() == [(second, ADD_B)]
    assert store.counts() == {"pending": 1, "published": 1, "last_snapshot": 5}


def test_reconcile_resets_exactly_the_rows_above_the_published_snapshot(store):
    store.enqueue(changes(6))
    ids = ids_of(store.pending())
    store.mark_published(ids[0:2], 1)
    store.mark_published(ids[2:4], 2)
    store.mark_published(ids[4:5], 3)
    # the publish of snapshot 2 and 3 died before their timestamps
    assert store.reconcile(1) == 3
    assert ids_of(store.pending()) == ids[2:]
    assert store.counts() == {"pending": 4, "published": 2, "last_snapshot": 1}
    assert store.reconcile(1) == 0
    store.mark_published(ids[2:], 2)  # version 2 is free again
    assert store.counts() == {"pending": 0, "published": 6, "last_snapshot": 2}


# SQLite has one writer at a time (its ids commit in order): PostgreSQL only
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_out_of_order_commits_are_all_published(backend, store):
    early, late = backend.connect(), backend.connect()
    try:
        store.enqueue([ADD_A], connection=early)  # takes the lower id
        store.enqueue([ADD_B], connection=late)
        late.commit()  # the higher id commits first
        [(late_id, change)] = store.pending()
        assert change == ADD_B
        store.mark_published([late_id], 1)
        early.commit()
    finally:
        early.close()
        late.close()
    [(early_id, change)] = store.pending()
    assert change == ADD_A and early_id < late_id  # marking up to an id would lose it
    store.mark_published([early_id], 2)
    assert store.pending() == []
    assert store.counts() == {"pending": 0, "published": 2, "last_snapshot": 2}


def test_counts_of_an_empty_queue(store):
    assert store.counts() == {"pending": 0, "published": 0, "last_snapshot": None}


def test_a_second_store_on_the_same_database_sees_the_queue(backend, store):
    store.enqueue([ADD_A])
    other = backend.open()
    try:
        assert [c for _, c in other.pending()] == [ADD_A]
    finally:
        other.close()


# --- the publisher lock ------------------------------------------------------

HOLDER = """
import sys, time
from tufc.repository.store import open_store
store = open_store(sys.argv[1])
with store.publisher_lock(timeout=30):
    print("held", flush=True)
    time.sleep(600)
"""


def _env() -> dict:
    python_dir = os.path.dirname(os.path.dirname(os.path.abspath(tufc.__file__)))
    path = os.pathsep.join(filter(None, [python_dir, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _readline(proc: subprocess.Popen, timeout: float = TIMEOUT) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def test_publisher_lock_is_exclusive_across_processes_and_freed_when_the_holder_dies(backend, store):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, backend.url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert _readline(holder) == "held\n", holder.stderr.read() if holder.poll() is not None else ""
        start = time.monotonic()
        with pytest.raises(PublisherBusyError):
            with store.publisher_lock(timeout=0.2):
                pass
        assert 0.2 <= time.monotonic() - start < 5
        assert not store.lock_alive()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(TIMEOUT)
        # the server may take a moment to see the holder's connection close
        with store.publisher_lock(timeout=TIMEOUT):
            assert store.lock_alive()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(TIMEOUT)
        holder.stdout.close()
        holder.stderr.close()


def test_publisher_lock_is_exclusive_between_stores_and_released_on_exit(backend, store):
    other = backend.open()
    try:
        assert not store.lock_alive()
        with store.publisher_lock(timeout=0):
            assert store.lock_alive()
            with pytest.raises(PublisherBusyError) as exc:
                with other.publisher_lock(timeout=0):
                    pass
            one_line(exc)
            assert not other.lock_alive()
        assert not store.lock_alive()
        with other.publisher_lock(timeout=0):
            assert other.lock_alive()
    finally:
        other.close()


def test_publisher_lock_is_exclusive_within_one_store(store):
    with store.publisher_lock(timeout=0):
        with pytest.raises(PublisherBusyError):
            with store.publisher_lock(timeout=0.1):
                pass
        assert store.lock_alive()  # the failed attempt did not drop the held lock
    assert not store.lock_alive()


def test_publisher_lock_without_timeout_waits_for_the_holder(backend, store):
    other = backend.open()
    held, release = threading.Event(), threading.Event()

    def hold():
        with other.publisher_lock(timeout=0):
            held.set()
            release.wait(TIMEOUT)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(TIMEOUT)
        threading.Timer(0.3, release.set).start()
        start = time.monotonic()
        with store.publisher_lock(timeout=None):
            assert time.monotonic() - start >= 0.25
            assert store.lock_alive()
    finally:
        release.set()
        thread.join(TIMEOUT)
        other.close()


# --- failures ----------------------------------------------------------------


def test_a_database_locked_by_another_writer_is_a_store_error(backend, store):
    store.enqueue([ADD_A])
    ids = ids_of(store.pending())
    locked = backend.open(timeout=0.2)
    try:
        with backend.other_writer():
            start = time.monotonic()
            with pytest.raises(StoreError) as exc:
                locked.enqueue([ADD_B])
            assert time.monotonic() - start < 5
            assert "lock" in one_line(exc)
            with pytest.raises(StoreError):
                locked.mark_published(ids, 1)
        assert [c for _, c in store.pending()] == [ADD_A]  # nothing half-done
    finally:
        locked.close()


def test_sqlite_database_in_a_missing_folder_is_a_store_error(tmp_path):
    with pytest.raises(StoreError) as exc:
        SqliteStore(str(tmp_path / "missing" / "queue.sqlite"))
    assert "missing" in one_line(exc)
    with pytest.raises(StoreError):
        open_store(f"sqlite:///{tmp_path}/missing/queue.sqlite")


def test_postgres_where_nothing_listens_is_a_store_error_quickly():
    pytest.importorskip("psycopg")
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(StoreError) as exc:
        open_store(f"postgresql://tufc@127.0.0.1:{port}/tufc")
    assert time.monotonic() - start < 5
    assert str(port) in one_line(exc)


def test_postgres_bad_dsn_is_a_store_error():
    pytest.importorskip("psycopg")
    from tufc.repository.pgstore import PostgresStore

    with pytest.raises(StoreError) as exc:
        PostgresStore("no such option=1")
    one_line(exc)


def test_postgres_without_psycopg_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import fails
    from tufc.repository.pgstore import PostgresStore

    with pytest.raises(StoreError, match="pip install psycopg"):
        PostgresStore("host=/nonexistent")


def test_open_store_routes_postgresql_urls(postgres_server):
    from tufc.repository.pgstore import PostgresStore

    store = open_store(postgres_server.url(postgres_server.create_database()))
    try:
        assert isinstance(store, PostgresStore)
        store.enqueue([ADD_A])
        assert store.counts()["pending"] == 1
    finally:
        store.close()


def test_postgres_enqueue_rejects_a_foreign_connection(postgres_dsn, tmp_path):
    from tufc.repository.pgstore import PostgresStore

    store = PostgresStore(postgres_dsn)
    try:
        with pytest.raises(StoreError, match="psycopg Connection"):
            store.enqueue([ADD_A], connection=sqlite3.connect(str(tmp_path / "x.sqlite")))
    finally:
        store.close()


def test_postgres_concurrent_first_use_creates_the_tables_once(postgres_dsn):
    from tufc.repository.pgstore import PostgresStore

    workers = 8
    barrier, errors, stores = threading.Barrier(workers), [], []

    def first_use():
        barrier.wait(TIMEOUT)
        try:
            stores.append(PostgresStore(postgres_dsn))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    try:
        assert errors == []
        assert len(stores) == workers
    finally:
        for s in stores:
            s.close()


def test_postgres_server_gone_mid_batch_is_a_store_error_and_a_restart_recovers():
    from tests.pg_server import start_postgres
    from tufc.repository.pgstore import PostgresStore

    server = start_postgres()  # private: the session's server must survive
    try:
        store = PostgresStore(server.dsn())
        store.enqueue([ADD_A, ADD_B])
        with store.publisher_lock(timeout=0):
            batch = ids_of(store.pending())
            server.stop()
            assert not store.lock_alive()  # the publisher must stop before its commit point
            with pytest.raises(StoreError) as exc:
                store.mark_published(batch, 1)
            one_line(exc)
        for operation in (store.pending, store.counts, lambda: store.enqueue([REMOVE_C]),
                          lambda: store.reconcile(0)):
            with pytest.raises(StoreError) as exc:
                operation()
            one_line(exc)
        with pytest.raises(StoreError):
            with store.publisher_lock(timeout=0):
                pass
        server.start()
        # reconnected; the batch that was never recorded is still pending
        assert [c for _, c in store.pending()] == [ADD_A, ADD_B]
        assert store.counts() == {"pending": 2, "published": 0, "last_snapshot": None}
        store.close()
    finally:
        server.cleanup()
