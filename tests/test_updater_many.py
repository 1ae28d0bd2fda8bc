"""Many lookups and downloads at once: ``get_targetinfos`` and
``download_targets``.

The oracle is the sequential loop, in tufc and in python-tuf's ngclient:
the answers must be the same, the metadata fetched the same set of files.
That the work really runs in parallel, and never more than
``parallel_downloads`` at once, is checked at the server: requests wait at
a barrier that only that many concurrent requests pass.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import threading
from urllib.parse import quote

import pytest

from tufc import exceptions
from tufc.updater import UpdaterConfig

from tests.updater_harness import Env, Impl

BITS = 3  # 8 bins


def _paths_in_every_bin(env: Env, per_bin: int = 2) -> list:
    """Targets in every bin of a succinct delegation under targets, and
    delegated roles two levels deep (role1 -> role2) for "deep/" paths."""
    env.repo.add_succinct_roles("targets", BITS, "bin")
    counts: dict[str, int] = {}
    paths, i = [], 0
    while len(paths) < per_bin * 2**BITS:
        path = f"pkg/{i}.tar.gz"
        i += 1
        name = env.repo.bin_for("targets", path)
        if counts.get(name, 0) < per_bin:
            counts[name] = counts.get(name, 0) + 1
            env.repo.add_target(path, f"data of {path}".encode(), role=name)
            paths.append(path)
    env.publish()
    return paths


def _nested(env: Env) -> list:
    env.repo.add_delegation("targets", "role1", paths=["deep/*", "deep/x/*"])
    env.repo.add_delegation("role1", "role2", paths=["deep/x/*"])
    env.repo.add_target("deep/a.txt", b"in role1", role="role1")
    env.repo.add_target("deep/x/b.txt", b"in role2", role="role2")
    env.publish()
    return ["deep/a.txt", "deep/x/b.txt", "deep/x/missing.txt", "deep/missing.txt"]


def _answer(info):
    return None if info is None else (info.path, info.length, dict(info.hashes))


@pytest.mark.parametrize("shape", ["bins", "nested"])
def test_get_targetinfos_answers_as_the_sequential_loops(env, tufc_impl, shape):
    if shape == "bins":
        paths = _paths_in_every_bin(env) + ["pkg/missing.tar.gz", "nothing/here"]
        paths += ["pkg/missing2.tar.gz", "pkg/missing3.tar.gz"]
    else:
        env.repo.add_target("top.txt", b"in targets")
        nested = _nested(env)
        paths = nested[:2] + ["top.txt"] + nested[2:]
    paths = paths + paths[:5]  # repeats are answered too

    sequential = env.updater(tufc_impl)
    expected = [_answer(sequential.get_targetinfo(p)) for p in paths]
    fetched_sequentially = set(env.requests())
    assert expected.count(None) == 4

    env.server.clear_requests()
    shutil.rmtree(env.metadata_dir)
    updater = env.updater(tufc_impl)
    infos = updater.get_targetinfos(paths)
    assert [_answer(i) for i in infos] == expected
    assert set(env.requests()) == fetched_sequentially
    # every file once: the searches share the roles they load
    assert len(env.requests()) == len(set(env.requests()))
    # and the Updater goes on as usual
    assert _answer(updater.get_targetinfo(paths[0])) == expected[0]
    assert updater.get_targetinfos([]) == []

    shutil.rmtree(env.metadata_dir)
    reference = env.updater(Impl("python-tuf"))
    assert [_answer(reference.get_targetinfo(p)) for p in paths] == expected


class _Gate:
    """Let requests of chosen files through only ``width`` at a time, and
    only once ``width`` of them are waiting together (a barrier): a client
    that does not run ``width`` at once times out; one that runs more is
    counted."""

    def __init__(self, server, width: int, chosen):
        self.width = width
        self.chosen = chosen
        self.barrier = threading.Barrier(width, timeout=20)
        self.lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.broken = False
        server.on_request = self

    def __call__(self, key: str) -> None:
        if not self.chosen(key):
            return
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            self.broken = True
        finally:
            with self.lock:
                self.inside -= 1


def test_bins_are_fetched_in_parallel_at_most_parallel_downloads_at_once(env, tufc_impl):
    paths = _paths_in_every_bin(env, per_bin=1)
    updater = env.updater(tufc_impl, config=UpdaterConfig(parallel_downloads=4))
    updater.refresh()
    gate = _Gate(env.server, 4, lambda key: "bin-" in key)
    infos = updater.get_targetinfos(paths)
    assert [i.path for i in infos] == paths
    assert not gate.broken and gate.most == 4


def test_download_targets_in_parallel(env, tufc_impl):
    paths = _paths_in_every_bin(env, per_bin=1)
    updater = env.updater(tufc_impl, config=UpdaterConfig(parallel_downloads=4))
    infos = updater.get_targetinfos(paths)
    gate = _Gate(env.server, 4, lambda key: key.startswith("targets/"))
    files = updater.download_targets(infos)
    assert not gate.broken and gate.most == 4
    assert files == [os.path.join(str(env.target_dir), quote(p, safe="")) for p in paths]
    for path, info, local in zip(paths, infos, files):
        assert pathlib.Path(local).read_bytes() == f"data of {path}".encode()
        assert updater.find_cached_target(info) == local
    assert updater.download_targets([]) == []


def test_a_failing_bin_fails_get_targetinfos_as_get_targetinfo(env, tufc_impl):
    paths = _paths_in_every_bin(env, per_bin=1)
    bad = env.repo.bin_for("targets", paths[3])
    env.server.files["metadata/" + env.repo.metadata_name(bad)] = b"{}"
    updater = env.updater(tufc_impl)
    with pytest.raises(exceptions.RepositoryError) as sequential:
        updater.get_targetinfo(paths[3])
    updater = env.updater(tufc_impl)  # a new cache: the other bins are not there yet
    with pytest.raises(type(sequential.value)):
        updater.get_targetinfos(paths)
    # the bins that verified stay trusted; only the bad one fails again
    assert updater.get_targetinfo(paths[0]).path == paths[0]


def test_a_failing_download_fails_download_targets_after_the_others(env, tufc_impl):
    paths = _paths_in_every_bin(env, per_bin=1)
    updater = env.updater(tufc_impl)
    infos = updater.get_targetinfos(paths)
    name = "targets/" + env.repo.target_name(paths[2])
    env.server.files[name] = b"not the target"
    with pytest.raises(exceptions.LengthOrHashMismatchError):
        updater.download_targets(infos)
    for i, info in enumerate(infos):
        cached = updater.find_cached_target(info)
        assert (cached is None) == (i == 2)


@pytest.mark.parametrize("bad", ["pkg/a", None, [b"pkg/a"], [None]])
def test_get_targetinfos_checks_its_argument(env, tufc_impl, bad):
    updater = env.updater(tufc_impl)
    with pytest.raises(TypeError):
        updater.get_targetinfos(bad)
    assert env.requests() == []


@pytest.mark.parametrize("bad", [None, "x", [None]])
def test_download_targets_checks_its_argument(env, tufc_impl, bad):
    updater = env.updater(tufc_impl)
    updater.refresh()
    env.server.clear_requests()
    with pytest.raises(TypeError):
        updater.download_targets(bad)
    assert env.requests() == []


def test_parallel_downloads_is_checked(env, tufc_impl):
    for bad in (0, -1, 1.5, True, None):
        with pytest.raises(ValueError):
            env.updater(tufc_impl, config=UpdaterConfig(parallel_downloads=bad))

