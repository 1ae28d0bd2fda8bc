"""Key ceremonies: rotating the online key and renewing offline roles.

A rotation must never leave a moment in which a client refuses the
repository, whether the client last saw the old root or sees the new one,
even when the rotation is killed halfway (then publishing refuses to run
until the rotation is resumed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from tufc import exceptions
from tufc.repository import Layout, Repository, renew, rotate_online_key
from tufc.signer import Ed25519Signer
from tufc.updater import Updater

from tests.repo_clients import client_view, expected_view
from tests.test_repository_engine import Clock, metadata, target


class ReturningClient:
    """A tufc Updater and a python-tuf ngclient that keep their metadata
    folders between refreshes (clients that saw the old root)."""

    def __init__(self, tmp_path, repo):
        self.url = pathlib_uri(repo.metadata_dir)
        self.root = open(os.path.join(repo.metadata_dir, "1.root.json"), "rb").read()
        self.dirs = {name: tmp_path / f"client-{name}" for name in ("tufc", "tuf")}
        for d in self.dirs.values():
            d.mkdir()

    def lookup(self, path):
        from tuf.ngclient import Updater as TufUpdater

        from tests.repo_clients import _python_tuf_fetcher

        ours = Updater(str(self.dirs["tufc"]), self.url, None, self.url, bootstrap=self.root)
        ours.refresh()
        theirs = TufUpdater(str(self.dirs["tuf"]), self.url, None, self.url,
                            fetcher=_python_tuf_fetcher(), bootstrap=self.root)
        theirs.refresh()
        a, b = ours.get_targetinfo(path), theirs.get_targetinfo(path)
        assert (a is None) == (b is None)
        return None if a is None else a.length


def pathlib_uri(folder):
    import pathlib

    return pathlib.Path(folder).resolve().as_uri() + "/"


@pytest.mark.parametrize("kind", ["pep458", "rstuf"])
def test_rotate_online_key(tmp_path, kind):
    repo = Repository.create(tmp_path / "repo", Layout(kind, 16), clock=Clock())
    repo.add_targets([target("before/rotation")])
    repo.publish()
    returning = ReturningClient(tmp_path, repo)
    assert returning.lookup("before/rotation") == target("before/rotation")["length"]
    old_id = repo.online_signers()[0].public_key.keyid

    new = Ed25519Signer.generate()
    rotate_online_key(repo, new, None)
    root = metadata(repo, "2.root.json")["signed"]
    assert root["roles"]["timestamp"]["keyids"] == [new.public_key.keyid]
    assert old_id not in root["keys"]
    assert returning.lookup("before/rotation") == target("before/rotation")["length"]

    # from now on the new key alone signs
    repo.add_targets([target("after/rotation")])
    repo.publish()
    assert [s["keyid"] for s in metadata(repo, "timestamp.json")["signatures"]] == [new.public_key.keyid]
    assert returning.lookup("after/rotation") == target("after/rotation")["length"]
    paths = ["before/rotation", "after/rotation"]
    assert client_view(repo.folder, paths) == expected_view({p: target(p) for p in paths}, paths)


def test_rotation_needs_the_root_threshold(tmp_path):
    repo = Repository.create(tmp_path / "repo", Layout("pep458", 16), clock=Clock(),
                             root_threshold=2, root_keys=2)
    before = sorted(os.listdir(repo.metadata_dir))
    with pytest.raises(exceptions.SigningError, match="threshold is 2"):
        rotate_online_key(repo, Ed25519Signer.generate(), root_signers=repo.signers("root")[:1])
    assert sorted(os.listdir(repo.metadata_dir)) == before
    assert "rotating" not in json.loads(open(os.path.join(repo.folder, "repository.json")).read())


ROTATOR = r"""
import os, signal, sys
from tufc.repository import Repository, metadata_io, rotate_online_key
from tufc.repository.signing import read_key_file
kill_at, steps = int(sys.argv[2]), [0]
def wrapped(func):
    def call(*args, **kwargs):
        steps[0] += 1
        if steps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return func(*args, **kwargs)
    return call
metadata_io.write = wrapped(metadata_io.write)
metadata_io.sync_files = wrapped(metadata_io.sync_files)
repo = Repository(sys.argv[1])
rotate_online_key(repo, read_key_file(sys.argv[3]), "file:" + sys.argv[3], resume=sys.argv[4] == "1")
print("steps", steps[0])
"""


def _rotate(folder, key_file, kill_at, resume=False):
    return subprocess.run([sys.executable, "-c", ROTATOR, str(folder), str(kill_at), str(key_file),
                           "1" if resume else "0"], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_killed_rotation_is_always_accepted_and_resumes(tmp_path):
    from tufc.repository.signing import write_key_file

    probe = Repository.create(tmp_path / "probe", Layout("rstuf", 4))
    key_file = tmp_path / "new.key"
    write_key_file(str(key_file), Ed25519Signer.generate())
    done = _rotate(probe.folder, key_file, 0)
    assert done.returncode == 0, done.stderr
    total = int(done.stdout.split()[-1])
    assert total > 8

    for kill_at in range(1, total + 1):
        folder = tmp_path / f"r{kill_at}"
        repo = Repository.create(folder, Layout("rstuf", 4))
        repo.add_targets([target("kept")])
        repo.publish()
        (tmp_path / f"c{kill_at}").mkdir()
        returning = ReturningClient(tmp_path / f"c{kill_at}", repo)
        assert returning.lookup("kept") is not None
        run = _rotate(folder, key_file, kill_at)
        assert run.returncode == -signal.SIGKILL, run.stderr
        # whatever the moment, both kinds of clients accept the repository
        assert returning.lookup("kept") is not None
        assert client_view(folder, ["kept"]) == expected_view({"kept": target("kept")}, ["kept"])
        repo = Repository(folder)
        repo.add_targets([target("later")])
        rotating = "rotating" in json.loads((folder / "repository.json").read_text())
        if rotating:
            with pytest.raises(exceptions.PublishError, match="rotation did not finish"):
                repo.publish()
            resumed = _rotate(folder, key_file, 0, resume=True)
            assert resumed.returncode == 0, resumed.stderr
        repo.publish()
        assert returning.lookup("later") is not None
        assert client_view(folder, ["kept", "later"]) == expected_view(
            {"kept": target("kept"), "later": target("later")}, ["kept", "later"])


def test_renew_offline_roles(tmp_path):
    clock = Clock()
    repo = Repository.create(tmp_path / "repo", Layout("pep458", 16), clock=clock)
    returning = ReturningClient(tmp_path, repo)
    returning.lookup("x")
    clock.now += timedelta(days=300)
    assert renew(repo, "root") is None
    assert metadata(repo, "2.root.json")["signed"]["version"] == 2
    for role in ("targets", "bins"):
        result = renew(repo, role)
        assert metadata(repo, f"2.{role}.json")["signed"]["expires"] > metadata(repo, f"1.{role}.json")["signed"]["expires"]
        assert result.bins == 1
    repo.add_targets([target("renewed")])
    repo.publish()
    assert returning.lookup("renewed") is not None
    with pytest.raises(exceptions.FormatError, match="not an offline role"):
        renew(repo, "snapshot")
    with pytest.raises(exceptions.SigningError):
        renew(repo, "root", signers=[Ed25519Signer.generate()])
