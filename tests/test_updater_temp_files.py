"""Temporary files left by killed writers are removed, and nothing else.

``_atomic.remove_stale`` is tested on planted files (names, ages,
symlinks); the Updater's use of it with real kills: a subprocess is killed
with SIGKILL while it writes (a large target streaming in from a slow local
server, or a metadata file whose rename never returns), and the temporary
files are counted before and after the next run.
"""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import time

import pytest

from tufc import _atomic
from tufc.updater import Updater

from tests.updater_harness import listing

HOUR = 3600
needs_kill = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="kills need POSIX signals"
)


def _age(path: pathlib.Path, seconds: float) -> None:
    """Set the mtime of ``path`` itself (a symlink: the link) to the past."""
    when = time.time() - seconds
    os.utime(path, (when, when), follow_symlinks=False)


def temps(folder: pathlib.Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(".tufc-")) if folder.exists() else []


# --- remove_stale on planted files ------------------------------------------------


def test_only_tufc_temp_names_are_removed(tmp_path):
    ours = [_atomic.temp_name() for _ in range(2)] + [".tufc-0123456789abcdef.tmp"]
    others = [
        "root.json",
        ".tufc-abc.tmp",  # too short
        ".tufc-FEDCBA9876543210.tmp",  # not what temp_name makes
        ".tufc-0123456789abcdef.tmp.json",
        "x.tufc-0123456789abcdef.tmp",
        ".tufc-0123456789abcdef.tmpx",
        ".tufc-0123456789abcdef0.tmp",
        ".tufc-demo",
    ]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"partial")
        _age(tmp_path / name, 2 * HOUR)
    assert _atomic.remove_stale(str(tmp_path), HOUR) == 3
    assert sorted(os.listdir(tmp_path)) == sorted(others)


def test_age_rule_keeps_recent_files(tmp_path):
    old, recent = _atomic.temp_name(), _atomic.temp_name()
    (tmp_path / old).write_bytes(b"x")
    (tmp_path / recent).write_bytes(b"x")
    _age(tmp_path / old, HOUR + 5)
    _age(tmp_path / recent, HOUR - 60)
    assert _atomic.remove_stale(str(tmp_path), HOUR) == 1
    assert os.listdir(tmp_path) == [recent]
    assert _atomic.remove_stale(str(tmp_path), None) == 1  # lock held: all
    assert os.listdir(tmp_path) == []


def test_symlinks_are_removed_as_links_never_followed(tmp_path):
    """A symlink with a temporary name is removed as a link (the file it
    points to is untouched), and its own age counts, not its target's."""
    folder = tmp_path / "targets"
    folder.mkdir()
    outside = tmp_path / "precious"
    outside.write_bytes(b"keep me")
    _age(outside, 2 * HOUR)
    old_link, new_link = folder / _atomic.temp_name(), folder / _atomic.temp_name()
    old_link.symlink_to(outside)
    new_link.symlink_to(outside)
    _age(old_link, 2 * HOUR)
    dangling = folder / _atomic.temp_name()
    dangling.symlink_to(tmp_path / "nothing")
    _age(dangling, 2 * HOUR)
    assert _atomic.remove_stale(str(folder), HOUR) == 2
    assert os.listdir(folder) == [new_link.name]
    assert outside.read_bytes() == b"keep me"


def test_directories_and_subfolders_are_left_alone(tmp_path):
    named = tmp_path / _atomic.temp_name()
    named.mkdir()
    below = tmp_path / "sub"
    below.mkdir()
    (below / _atomic.temp_name()).write_bytes(b"x")
    for path in (named, *below.iterdir()):
        _age(path, 2 * HOUR)
    assert _atomic.remove_stale(str(tmp_path), None) == 0
    assert named.is_dir() and len(os.listdir(below)) == 1


def test_missing_folder_is_nothing_to_do(tmp_path):
    assert _atomic.remove_stale(str(tmp_path / "absent"), None) == 0


# --- real kills: target_dir ------------------------------------------------------------

BIG = bytes(range(256)) * (16 * 1024)  # 4 MiB


def _download_worker(metadata_dir, metadata_url, target_dir, targets_url, root):
    updater = Updater(metadata_dir, metadata_url, target_dir, targets_url, bootstrap=root)
    updater.download_target(updater.get_targetinfo("big.bin"))


def _kill_when(process, ready, what: str) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` holds (at most 60 s)."""
    deadline = time.monotonic() + 60
    while not ready():
        assert process.is_alive(), f"the child ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within 60 s"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    assert process.exitcode == -signal.SIGKILL


def _partial_temp_in(folder: pathlib.Path, known: set) -> bool:
    for name in temps(folder):
        if name not in known and (folder / name).stat().st_size > 0:
            return True
    return False


@needs_kill
def test_killed_downloads_leave_temp_files_that_the_next_run_removes(env, tufc_impl):
    """Three downloads of a 4 MiB target from a server sending 64 KiB every
    50 ms are killed mid-way: three partial temporary files.  The next run
    removes those older than STALE_AFTER (aged here, as time would) and
    keeps the recent one, which a live download could still be writing."""
    env.repo.add_target("big.bin", BIG)
    env.publish()
    name = "targets/" + env.repo.target_name("big.bin")
    env.server.pace[name] = (64 * 1024, 0.05)
    ctx = multiprocessing.get_context("spawn")
    args = (str(env.metadata_dir), env.metadata_url, str(env.target_dir),
            env.targets_url, env.trusted_root)
    for _ in range(3):
        known = set(temps(env.target_dir))
        child = ctx.Process(target=_download_worker, args=args)
        child.start()
        _kill_when(child, lambda: _partial_temp_in(env.target_dir, known), "partial target")
    before = temps(env.target_dir)
    assert len(before) == 3
    assert all((env.target_dir / n).stat().st_size < len(BIG) for n in before)
    for stale in before[:2]:
        _age(env.target_dir / stale, _atomic.STALE_AFTER + 60)

    del env.server.pace[name]
    updater = env.updater(tufc_impl)
    path = updater.download_target(updater.get_targetinfo("big.bin"))
    assert pathlib.Path(path).read_bytes() == BIG
    assert temps(env.target_dir) == before[2:]
    assert temps(env.metadata_dir) == []


# --- real kills: metadata_dir ----------------------------------------------------------


def _stuck_writer(metadata_dir, metadata_url, root, stuck_at):
    """Refresh, with the ``stuck_at``-th rename of a temporary file never
    returning (a write the kill interrupts after the temporary file was
    written; not every file is fsynced, but every one is renamed)."""
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(src)
        if len(calls) >= stuck_at:
            time.sleep(HOUR)
        real_replace(src, dst)

    os.replace = replace
    Updater(metadata_dir, metadata_url, bootstrap=root).refresh()


@needs_kill
def test_killed_metadata_writers_leave_temp_files_that_the_next_run_removes(env, tufc_impl):
    """metadata_dir's lock is held by every writer there, so the next
    Updater removes every temporary file it finds, however recent."""
    ctx = multiprocessing.get_context("spawn")
    history = env.metadata_dir / "root_history"
    args = (str(env.metadata_dir), env.metadata_url, env.trusted_root)

    # killed writing root_history/1.root.json (the first write)
    child = ctx.Process(target=_stuck_writer, args=args + (1,))
    child.start()
    _kill_when(child, lambda: bool(temps(history)), "temporary root")
    assert len(temps(history)) == 1 and temps(env.metadata_dir) == []

    # killed writing timestamp.json (after root_history/1.root.json and the
    # root.json link); its own start removed the root's
    child = ctx.Process(target=_stuck_writer, args=args + (3,))
    child.start()
    _kill_when(child, lambda: bool(temps(env.metadata_dir)), "temporary timestamp")
    assert temps(history) == []
    assert len(temps(env.metadata_dir)) == 1

    env.updater(tufc_impl).refresh()
    assert temps(env.metadata_dir) == [] and temps(history) == []
    assert listing(env.metadata_dir) == {
        "root.json",
        "root_history/1.root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "latest_known_time",
    }


def test_metadata_dir_is_swept_before_an_updaters_first_write(env, tufc_impl):
    """Stale temporary files go before the first file an Updater writes
    there, young or old (the lock is held); a start that writes no file
    (same timestamp: the time record is moved with utime) leaves them."""
    env.publish()
    env.updater(tufc_impl).refresh()
    history = env.metadata_dir / "root_history"
    planted = [env.metadata_dir / _atomic.temp_name(), history / _atomic.temp_name()]
    for path in planted:
        path.write_bytes(b"half a file")

    env.updater(tufc_impl).refresh()  # nothing new: no file written
    assert all(path.exists() for path in planted)

    env.repo.add_target("new.txt", b"new")
    env.publish()  # a new timestamp, snapshot and targets to store
    env.updater(tufc_impl).refresh()
    assert temps(env.metadata_dir) == [] and temps(history) == []
