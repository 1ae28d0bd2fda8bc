"""kill -9 at any point of a publish: the published repository stays one
that clients accept, it always holds exactly a prefix of the queued
changes, and the next publish completes without losing or duplicating a
change.

A publisher subprocess is killed with SIGKILL many times: at chosen steps
(it sends SIGKILL to itself at the Nth file write, rename, sync or queue
commit, so every step of the protocol is hit) and at random moments.
After every kill, tufc's Updater (and python-tuf's ngclient every few
kills) must accept the repository and resolve exactly the state after the
first n changes, where n is what the queue records as published.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tufc.repository import Layout, Repository
from tufc.repository.store import SqliteStore

from tests.repo_clients import client_view, expected_view
from tests.test_repository_engine import state_of, target

PUBLISHER = r"""
import os, signal, sys
from tufc import _atomic
from tufc.repository import Repository, metadata_io, store

kill_at = int(sys.argv[2])
steps = [0]

def step():
    steps[0] += 1
    if steps[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

def wrapped(func):
    def call(*args, **kwargs):
        step()
        result = func(*args, **kwargs)
        step()
        return result
    return call

metadata_io.write = wrapped(metadata_io.write)
metadata_io.sync_files = wrapped(metadata_io.sync_files)
from tufc.repository import pgstore
for cls in (store.SqliteStore, pgstore.PostgresStore):
    cls.mark_published = wrapped(cls.mark_published)
    cls.reconcile = wrapped(cls.reconcile)
_atomic.os.replace = wrapped(os.replace)
repo = Repository(sys.argv[1])
print("go", flush=True)
repo.publish_all(batch=int(sys.argv[3]))
print("steps", steps[0], flush=True)
"""


def _changes(seed: int, count: int, paths: int) -> list:
    """A random history over a few paths: adds (new contents each time)
    and removals of paths present at that point."""
    rng = random.Random(seed)
    names = [f"pkg/{i % 7}/file-{i}.whl" for i in range(paths)]
    present, out = set(), []
    for n in range(count):
        path = rng.choice(names)
        if path in present and rng.random() < 0.35:
            out.append(("remove", path))
            present.discard(path)
        else:
            out.append(("add", target(path, salt=str(n))))
            present.add(path)
    return out


def _published_ids(repo: Repository, snapshot: int) -> list:
    """Ids of the changes marked published in ``snapshot`` or before, read
    straight from the queue's database."""
    sql = ("SELECT id FROM tufc_changes WHERE published_in IS NOT NULL AND published_in <= {} "
           "ORDER BY id")
    if isinstance(repo.store, SqliteStore):
        db = sqlite3.connect(repo.store.path)
        try:
            return [row[0] for row in db.execute(sql.format("?"), (snapshot,))]
        finally:
            db.close()
    import psycopg

    with psycopg.connect(repo.store._conninfo) as db:
        return [row[0] for row in db.execute(sql.format("%s"), (snapshot,))]


def _query_one(repo: Repository, sql: str):
    if isinstance(repo.store, SqliteStore):
        db = sqlite3.connect(repo.store.path)
        try:
            return db.execute(sql).fetchone()[0]
        finally:
            db.close()
    import psycopg

    with psycopg.connect(repo.store._conninfo) as db:
        return db.execute(sql).fetchone()[0]


def _published_prefix(repo: Repository, first_id: int) -> int:
    """How many changes the published timestamp includes, checking that
    they are exactly the oldest ones (ids from ``first_id`` on)."""
    timestamp = json.loads(open(os.path.join(repo.metadata_dir, "timestamp.json"), "rb").read())
    snapshot = timestamp["signed"]["meta"]["snapshot.json"]["version"]
    ids = _published_ids(repo, snapshot)
    assert ids == list(range(first_id, first_id + len(ids))), "the published changes are not a prefix"
    return len(ids)


def _enqueue(repo: Repository, changes) -> None:
    for op, item in changes:
        if op == "add":
            repo.add_targets([item])
        else:
            repo.remove_targets([item], check=False)


def _run_publisher(folder, kill_at: int, batch: int, kill_after: float | None):
    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(folder), str(kill_at), str(batch)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "go", proc.stderr.read()
        if kill_after is not None:
            time.sleep(kill_after)
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def _check(repo: Repository, changes, paths, python_tuf: bool, first_id: int) -> int:
    published = _published_prefix(repo, first_id)
    assert client_view(repo.folder, paths, python_tuf=python_tuf) == expected_view(
        state_of(changes[:published]), paths)
    return published


def _queue(request, tmp_path, kind: str) -> str:
    """The queue's URL: a SQLite file, or a fresh PostgreSQL database."""
    if kind == "sqlite":
        return str(tmp_path / "queue.sqlite")
    return request.getfixturevalue("postgres_url")


# the layout does not change the queue's protocol: PostgreSQL runs one
@pytest.mark.slow
@pytest.mark.parametrize("kind,queue_kind", [("pep458", "sqlite"), ("rstuf", "sqlite"),
                                             ("pep458", "postgres")])
def test_kill_minus_nine_anywhere_in_a_publish(tmp_path, kind, queue_kind, request):
    queue = _queue(request, tmp_path, queue_kind)
    repo = Repository.create(tmp_path / "repo", Layout(kind, 16), store=queue, remember_store=True)
    changes = _changes(seed=len(kind), count=400, paths=40)
    _enqueue(repo, changes)
    first_id = repo.store.pending(1)[0][0]
    paths = sorted({item["path"] if op == "add" else item for op, item in changes})
    rng = random.Random(7)

    kills = 0
    progress = []
    # at chosen steps: each run dies at its Nth step, N sweeping one publish
    for kill_at in range(1, 41):
        code, _, err = _run_publisher(repo.folder, kill_at, 3, None)
        assert code == -signal.SIGKILL, err
        kills += 1
        progress.append(_check(repo, changes, paths, python_tuf=kill_at % 8 == 0, first_id=first_id))
    # at random moments
    for i in range(25):
        code, out, err = _run_publisher(repo.folder, 0, 3, rng.uniform(0.0, 0.06))
        if code == 0:
            break  # it finished before the kill: the queue is drained
        assert code == -signal.SIGKILL, err
        kills += 1
        progress.append(_check(repo, changes, paths, python_tuf=i % 8 == 0, first_id=first_id))
    assert kills >= 50
    assert progress[-1] > progress[0]  # kills did not stop progress

    # the next publish completes: every change exactly once
    code, out, err = _run_publisher(repo.folder, 0, 50, None)
    assert code == 0, err
    assert _check(repo, changes, paths, python_tuf=True, first_id=first_id) == len(changes)
    assert _query_one(repo, "SELECT COUNT(*) FROM tufc_changes WHERE published_in IS NULL") == 0
    # each change is counted by exactly one recorded publish
    assert _query_one(repo, "SELECT SUM(changes) FROM tufc_publishes") == len(changes)
