"""The Updater's cache across power cuts: what is fsynced, and torn files.

Only the trusted root files are made durable (fsync of root_history/N,
then of root_history/ and metadata_dir for the names), and of those only
the ones a caller does not pass in again on the next start; every other
cached file is replaced atomically but not fsynced, because it is verified
again when read.  These tests damage cached files the way a power cut can (empty,
cut short, garbage) and check that both clients refresh to the right
answer and the cache is repaired.
"""

from __future__ import annotations

import hashlib
import os
import sys

import pytest

from tests.updater_harness import Env

PATH, DATA = "pkg/file.txt", b"the file's data"


def _with_bins(env: Env) -> str:
    """Hash bins under targets, one target in one of them; its bin name."""
    env.repo.add_succinct_roles("targets", 2, "bin")
    bin_name = env.repo.bin_for("targets", PATH)
    env.repo.add_target(PATH, DATA, role=bin_name)
    env.publish()
    return bin_name


DAMAGE = {
    "empty": lambda good: b"",
    "cut short": lambda good: good[: len(good) // 2],
    "garbage": lambda good: os.urandom(len(good)),
    "zeros": lambda good: bytes(len(good)),  # what ext4 can leave after a crash
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets", "bin"])
def test_a_torn_cached_file_is_downloaded_again(env, impl, role, damage):
    bin_name = _with_bins(env)
    name = bin_name if role == "bin" else role
    first = env.updater(impl)
    first.refresh()
    assert first.get_targetinfo(PATH) is not None
    cached = env.metadata_dir / f"{name}.json"
    good = cached.read_bytes()
    cached.write_bytes(DAMAGE[damage](good))

    env.server.clear_requests()
    updater = env.updater(impl)
    updater.refresh()
    info = updater.get_targetinfo(PATH)
    assert info is not None and info.length == len(DATA)
    assert info.hashes["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert cached.read_bytes() == good  # the cache is repaired
    assert "/metadata/" + env.repo.metadata_name(name) in env.requests()


def _fsynced(monkeypatch) -> list:
    """Patch os.fsync to record what each call synced: the path behind the
    descriptor (Linux's /proc/self/fd) and whether it is a folder."""
    real, synced = os.fsync, []

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        synced.append((path, os.path.isdir(path)))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/fd")
def test_only_the_root_files_and_their_folders_are_fsynced(env, tufc_impl, monkeypatch):
    _with_bins(env)
    history = str(env.metadata_dir / "root_history")
    synced = _fsynced(monkeypatch)
    updater = env.updater(tufc_impl)
    updater.refresh()
    updater.download_target(updater.get_targetinfo(PATH))
    # the bootstrap root comes from the caller, who passes it again on every
    # start: stored (atomically) but not fsynced; nor is anything else (the
    # timestamp, snapshot, targets, bin or the target file)
    assert synced == []
    assert os.readlink(env.metadata_dir / "root.json") == "root_history/1.root.json"

    # a new root learned from the repository: its file and both folders
    env.repo.rotate_keys("snapshot")
    env.publish()
    synced.clear()
    env.updater(tufc_impl).refresh()
    files = [p for p, is_dir in synced if not is_dir]
    folders = [p for p, is_dir in synced if is_dir]
    assert len(files) == 1 and os.path.dirname(files[0]) == history
    assert folders == [history, str(env.metadata_dir)]
    assert os.readlink(env.metadata_dir / "root.json") == "root_history/2.root.json"

    # a returning client with nothing new writes nothing durable
    synced.clear()
    env.updater(tufc_impl).refresh()
    assert synced == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/fd")
def test_a_root_json_the_caller_placed_is_replaced_durably(env, tufc_impl, monkeypatch):
    """With bootstrap=None the trusted root is the caller's own root.json
    file: replacing it by a link into root_history/ must survive a power
    cut, or the client would be left with no root at all."""
    _with_bins(env)
    env.metadata_dir.mkdir(parents=True, exist_ok=True)
    (env.metadata_dir / "root.json").write_bytes(env.trusted_root)
    history = str(env.metadata_dir / "root_history")
    synced = _fsynced(monkeypatch)
    env.updater(tufc_impl, bootstrap=None).refresh()
    files = [p for p, is_dir in synced if not is_dir]
    folders = [p for p, is_dir in synced if is_dir]
    assert len(files) == 1 and os.path.dirname(files[0]) == history
    assert folders == [history, str(env.metadata_dir)]
    assert os.readlink(env.metadata_dir / "root.json") == "root_history/1.root.json"


ROOT_DAMAGE = dict(DAMAGE, removed=None)


@pytest.mark.parametrize("damage", sorted(ROOT_DAMAGE))
def test_a_torn_bootstrap_root_is_stored_again(env, tufc_impl, damage):
    """What a power cut can do to the unsynced copy of a caller's bootstrap
    root (root.json then links to a torn file, or dangles): the next start
    with the same bootstrap stores it again and refreshes."""
    _with_bins(env)
    env.updater(tufc_impl).refresh()
    copy = env.metadata_dir / "root_history" / "1.root.json"
    if damage == "removed":
        copy.unlink()
    else:
        copy.write_bytes(DAMAGE[damage](env.trusted_root))
    updater = env.updater(tufc_impl)
    updater.refresh()
    assert updater.get_targetinfo(PATH).length == len(DATA)
    assert copy.read_bytes() == env.trusted_root
    assert (env.metadata_dir / "root.json").read_bytes() == env.trusted_root


def test_a_failed_root_write_leaves_root_json_on_a_stored_root(env, tufc_impl, monkeypatch):
    """A root that root_history/ could not store (a full disk, a read-only
    folder) is not where root.json points: the refresh fails with the write's
    own error, root.json still names a root on disk, and the next Updater
    reading it (bootstrap=None, as the command line does) refreshes."""
    from tufc import _atomic, exceptions
    from tufc.updater import Updater

    env.updater(tufc_impl).refresh()
    for _ in range(2):  # roots 2 and 3
        env.repo.bump("root")
        env.publish()
    real = _atomic.write_atomic

    def write_atomic(path, data, *args, **kwargs):
        if os.path.basename(path) == "3.root.json":
            raise exceptions.StorageError(f"Cannot write in {os.path.dirname(path)}: no space left")
        return real(path, data, *args, **kwargs)

    monkeypatch.setattr(_atomic, "write_atomic", write_atomic)
    with pytest.raises(exceptions.StorageError, match="Cannot write in .*root_history: no space left"):
        env.updater(tufc_impl).refresh()
    link = env.metadata_dir / "root.json"
    assert link.exists()
    if link.is_symlink():
        assert os.readlink(link) == "root_history/2.root.json"
    assert not (env.metadata_dir / "root_history" / "3.root.json").exists()

    monkeypatch.setattr(_atomic, "write_atomic", real)
    updater = Updater(str(env.metadata_dir), env.metadata_url, bootstrap=None)
    updater.refresh()
    assert updater._trusted_set.root.version == 3
    assert os.readlink(link) == "root_history/3.root.json"
