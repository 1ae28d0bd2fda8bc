"""The repository engine (tufc.repository.Repository) publishes what clients
accept: every repository here is checked by python-tuf's ngclient and
tufc's Updater (tests/repo_clients.py), and every bad input is refused
with a specific exception while the previous repository stays valid."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from tufc import exceptions
from tufc.repository import Layout, Repository, Target
from tufc.repository import engine as engine_module
from tufc.repository import metadata_io
from tufc.signer import Ed25519Signer

from tests.repo_clients import client_view, expected_view

NOW = datetime.now(timezone.utc).replace(microsecond=0)  # clients check at the real time


def digest(text: str, algorithm: str = "sha256") -> str:
    if algorithm == "blake2b-256":
        return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()
    return hashlib.new(algorithm, text.encode()).hexdigest()


def target(path: str, salt: str = "", length: int | None = None, **custom) -> dict:
    out = {"path": path, "length": len(path + salt) if length is None else length,
           "hashes": {"sha256": digest(path + salt), "blake2b-256": digest(path + salt, "blake2b-256")}}
    if custom:
        out["custom"] = custom
    return out


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def make(tmp_path, kind="pep458", bins=16, clock=None, **kw) -> Repository:
    return Repository.create(tmp_path / "repo", Layout(kind, bins), clock=clock or Clock(), **kw)


def files(repo: Repository) -> dict:
    return {n: open(os.path.join(repo.metadata_dir, n), "rb").read()
            for n in sorted(os.listdir(repo.metadata_dir))}


def state_of(changes) -> dict:
    state = {}
    for op, t in changes:
        if op == "add":
            state[t["path"]] = t
        else:
            state.pop(t, None)
    return state


def metadata(repo: Repository, name: str) -> dict:
    return json.loads(open(os.path.join(repo.metadata_dir, name), "rb").read())


# --- what clients see ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pep458", "rstuf"])
def test_published_targets_resolve_in_both_clients(tmp_path, kind):
    repo = make(tmp_path, kind, clock=None)
    added = [target(f"packages/{i:02x}/pkg-{i}.tar.gz") for i in range(40)]
    added.append(target(repo.layout.simple_page_path("pkg"), custom={"kind": "simple"}))
    assert repo.add_targets(added) == 41
    result = repo.publish()
    assert result.changes == 41 and result.snapshot_version == 2
    paths = [t["path"] for t in added] + ["packages/none/absent.whl"]
    assert client_view(repo.folder, paths) == expected_view(state_of(("add", t) for t in added), paths)

    repo.remove_targets([added[0]["path"], added[1]["path"]])
    repo.add_targets([target(added[2]["path"], salt="v2")])
    repo.publish()
    expected = state_of([("add", t) for t in added] + [("remove", added[0]["path"]),
                        ("remove", added[1]["path"]), ("add", target(added[2]["path"], salt="v2"))])
    assert client_view(repo.folder, paths) == expected_view(expected, paths)


def test_layout_shapes(tmp_path):
    pep = make(tmp_path / "a", "pep458", bins=32)
    targets = metadata(pep, "1.targets.json")["signed"]
    assert [r["name"] for r in targets["delegations"]["roles"]] == ["bins"]
    bins = metadata(pep, "1.bins.json")["signed"]
    assert bins["delegations"]["succinct_roles"]["bit_length"] == 5
    assert bins["delegations"]["succinct_roles"]["name_prefix"] == "bin"
    assert os.path.exists(os.path.join(pep.metadata_dir, "1.bin-1f.json"))
    root = metadata(pep, "1.root.json")["signed"]
    online = root["roles"]["timestamp"]["keyids"]
    assert root["roles"]["snapshot"]["keyids"] == online
    assert root["roles"]["targets"]["keyids"] != online  # targets is offline in PEP 458
    assert bins["delegations"]["succinct_roles"]["keyids"] == online

    rstuf = make(tmp_path / "b", "rstuf", bins=16)
    targets = metadata(rstuf, "1.targets.json")["signed"]
    assert targets["delegations"]["succinct_roles"]["name_prefix"] == "bins"
    root = metadata(rstuf, "1.root.json")["signed"]
    assert root["roles"]["targets"]["keyids"] == root["roles"]["timestamp"]["keyids"]
    assert not os.path.exists(os.path.join(rstuf.metadata_dir, "1.bins.json"))


def test_bin_assignment_is_python_tufs(tmp_path):
    from tuf.api.metadata import SuccinctRoles

    layout = Layout("pep458", 1024)
    succinct = SuccinctRoles([], 1, layout.bit_length, layout.prefix)
    for i in range(500):
        path = f"packages/{i}/f-{i}.whl"
        assert layout.bin_for(path) == succinct.get_role_for_target(path)
    assert layout.bin_names() == list(succinct.get_roles())


def test_files_are_canonical_json(tmp_path):
    from securesystemslib.formats import encode_canonical

    repo = make(tmp_path)
    repo.add_targets([target("a/ü.txt", custom={"z": [1, "é"], "a": None})])
    repo.publish()
    for name, data in files(repo).items():
        assert data == encode_canonical(json.loads(data)).encode("utf-8"), name


def test_a_publish_is_one_version_per_changed_bin(tmp_path):
    repo = make(tmp_path, bins=64)
    before = set(files(repo))
    batch = [target(f"p/{i}.whl") for i in range(10)]
    result = repo.publish() or None
    assert result is None  # nothing pending, nothing written
    repo.add_targets(batch)
    result = repo.publish()
    new = set(files(repo)) - before
    bins = {repo.layout.bin_for(t["path"]) for t in batch}
    assert result.bins == len(bins)
    assert new == {f"2.{name}.json" for name in bins} | {"2.snapshot.json"}
    meta = metadata(repo, "2.snapshot.json")["signed"]["meta"]
    assert {n for n, e in meta.items() if e["version"] == 2} == {f"{b}.json" for b in bins}
    # the untouched bins and the offline roles stay as they were
    assert meta["targets.json"] == {"version": 1} and meta["bins.json"] == {"version": 1}
    assert metadata(repo, "timestamp.json")["signed"]["meta"]["snapshot.json"]["version"] == 2


def test_patched_bins_keep_their_other_targets(tmp_path):
    repo = make(tmp_path, bins=2)  # two bins: many targets share one
    first = [target(f"a/{i}") for i in range(30)]
    repo.add_targets(first)
    repo.publish()
    repo.add_targets([target("b/new")])
    repo.publish()
    paths = [t["path"] for t in first] + ["b/new"]
    assert client_view(repo.folder, paths) == expected_view(
        state_of([("add", t) for t in first + [target("b/new")]]), paths)


def test_changes_to_one_path_apply_in_order(tmp_path):
    repo = make(tmp_path)
    repo.add_targets([target("x/y", salt="1")])
    repo.remove_targets(["x/y"])
    repo.add_targets([target("x/y", salt="3")])
    repo.remove_targets(["x/y"])
    repo.add_targets([target("x/y", salt="5")])
    assert repo.publish().changes == 5
    assert client_view(repo.folder, ["x/y"]) == expected_view({"x/y": target("x/y", salt="5")}, ["x/y"])


def test_publish_limit_and_publish_all(tmp_path):
    repo = make(tmp_path)
    repo.add_targets([target(f"t/{i}") for i in range(25)])
    assert repo.publish(limit=10).changes == 10
    assert repo.store.counts()["pending"] == 15
    results = repo.publish_all(batch=10)
    assert [r.changes for r in results] == [10, 5]
    assert repo.status()["snapshot_version"] == 4 and repo.status()["pending"] == 0


def test_accepts_target_objects(tmp_path):
    from tuf.api.metadata import TargetFile as TufTargetFile
    from tufc.metadata import TargetFile

    repo = make(tmp_path)
    ours = TargetFile.from_data("a/ours.txt", b"ours", ["sha256"])
    theirs = TufTargetFile.from_data("a/theirs.txt", b"theirs", ["sha256", "blake2b-256"])
    theirs.unrecognized_fields["custom"] = {"k": 1}
    named = Target("a/named.txt", 3, {"sha256": digest("n")})
    repo.add_targets([ours, theirs, named])
    repo.publish()
    assert repo.get_target("a/theirs.txt") == {"length": 6, "hashes": dict(theirs.hashes),
                                               "custom": {"k": 1}}
    assert repo.get_target("a/named.txt")["length"] == 3
    assert repo.get_target("a/ours.txt")["hashes"] == {"sha256": hashlib.sha256(b"ours").hexdigest()}


def test_a_second_engine_sees_the_first_ones_publishes(tmp_path):
    a = make(tmp_path)
    b = Repository(a.folder, clock=Clock())
    a.add_targets([target("one")])
    a.publish()
    b.add_targets([target("two")])
    assert b.publish().snapshot_version == 3
    a.add_targets([target("three")])
    assert a.publish().snapshot_version == 4  # re-read what b published
    assert client_view(a.folder, ["one", "two", "three"]) == expected_view(
        state_of(("add", target(p)) for p in ["one", "two", "three"]), ["one", "two", "three"])


# --- bad input ------------------------------------------------------------------------


BAD_TARGETS = [
    ("leading slash", {"path": "/etc/passwd"}),
    ("dot dot", {"path": "a/../b"}),
    ("dot", {"path": "a/./b"}),
    ("empty", {"path": ""}),
    ("double slash", {"path": "a//b"}),
    ("trailing slash", {"path": "a/"}),
    ("backslash", {"path": "a\\b"}),
    ("control char", {"path": "a\nb"}),
    ("not a str", {"path": b"a/b"}),
    ("lone surrogate", {"path": "a\ud800"}),
    ("too long", {"path": "a" * 5000}),
    ("negative length", {"length": -1}),
    ("bool length", {"length": True}),
    ("float length", {"length": 1.0}),
    ("unknown algorithm", {"hashes": {"md5": "0" * 32}}),
    ("no hashes", {"hashes": {}}),
    ("short digest", {"hashes": {"sha256": "ab"}}),
    ("upper-case digest", {"hashes": {"sha256": "A" * 64}}),
    ("non-hex digest", {"hashes": {"sha256": "g" * 64}}),
    ("custom not a mapping", {"custom": [1]}),
    ("custom float", {"custom": {"x": 1.5}}),
]


@pytest.mark.parametrize("what,override", BAD_TARGETS, ids=[b[0] for b in BAD_TARGETS])
def test_bad_targets_enqueue_nothing(tmp_path, what, override):
    repo = make(tmp_path)
    bad = dict(target("ok/path"), **override)
    with pytest.raises(exceptions.InvalidChangeError):
        repo.add_targets([target("good/one"), bad])
    assert repo.store.counts()["pending"] == 0


def test_bad_batches(tmp_path):
    repo = make(tmp_path)
    with pytest.raises(exceptions.InvalidChangeError, match="twice"):
        repo.add_targets([target("a"), target("a", salt="x")])
    with pytest.raises(exceptions.InvalidChangeError, match="twice"):
        repo.remove_targets(["a", "a"], check=False)
    with pytest.raises(exceptions.InvalidChangeError):
        repo.add_targets(target("a"))  # one target, not a list
    with pytest.raises(exceptions.InvalidChangeError):
        repo.remove_targets("a")
    with pytest.raises(exceptions.InvalidChangeError, match="missing"):
        repo.add_targets([{"path": "a", "length": 1}])
    with pytest.raises(exceptions.InvalidChangeError):
        repo.add_targets([42])
    assert repo.store.counts()["pending"] == 0


def test_removing_an_absent_path(tmp_path):
    repo = make(tmp_path)
    repo.add_targets([target("here")])
    repo.remove_targets(["here"])  # pending as an addition: fine
    repo.publish()
    with pytest.raises(exceptions.TargetNotFoundError, match="here"):
        repo.remove_targets(["here"])  # published removal
    with pytest.raises(exceptions.TargetNotFoundError, match="never/was"):
        repo.remove_targets(["never/was"])
    assert repo.store.counts()["pending"] == 0


class FailingSigner:
    def __init__(self, real, fail=True, delay=0.0):
        self.real, self.fail, self.delay = real, fail, delay
        self.public_key = real.public_key

    def sign(self, data):
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("HSM unavailable")
        return self.real.sign(data)


def _assert_unchanged_and_recoverable(repo, before, good_signers=None):
    """The failed publish left the published repository as it was and the
    queue full; a working publish then releases everything."""
    assert files(repo)["timestamp.json"] == before["timestamp.json"]
    client_view(repo.folder, ["p/1"], python_tuf=False)
    pending = repo.store.counts()["pending"]
    assert pending > 0
    fresh = Repository(repo.folder, online_signers=good_signers, clock=repo.clock)
    assert fresh.publish().changes == pending
    assert client_view(repo.folder, ["p/1"]) == expected_view({"p/1": target("p/1")}, ["p/1"])


@pytest.mark.parametrize("how", ["raises", "times out", "returns junk"])
def test_a_failing_signer_publishes_nothing(tmp_path, how):
    online = Ed25519Signer.generate()
    repo = make(tmp_path, online_signers=[online], signer_uris={"online": ["file:none"]})
    before = files(repo)
    if how == "raises":
        bad = FailingSigner(online)
    elif how == "times out":
        bad = FailingSigner(online, fail=False, delay=0.5)
    else:
        bad = FailingSigner(online, fail=False)
        bad.sign = lambda data: 42
    repo = Repository(repo.folder, online_signers=[bad], clock=Clock())
    if how == "times out":
        orig = engine_module.write_next_versions
        engine_module.write_next_versions = lambda *a, **k: orig(*a, **dict(k, timeout=0.1))
    try:
        repo.add_targets([target("p/1")] + [target(f"p/x{i}") for i in range(8)])
        with pytest.raises(exceptions.SigningError):
            repo.publish()
    finally:
        if how == "times out":
            engine_module.write_next_versions = orig
    repo.remove_targets([f"p/x{i}" for i in range(8)])
    _assert_unchanged_and_recoverable(repo, before, [online])


def test_store_failure_at_the_commit_point(tmp_path, monkeypatch):
    repo = make(tmp_path)
    before = files(repo)
    repo.add_targets([target("p/1")])

    def gone(*args, **kw):
        raise exceptions.StoreError("queue database: connection lost")

    monkeypatch.setattr(repo.store, "mark_published", gone)
    with pytest.raises(exceptions.StoreError):
        repo.publish()
    monkeypatch.undo()
    _assert_unchanged_and_recoverable(repo, before)


@pytest.mark.parametrize("failing_write", [0, 1, 2])
def test_a_full_disk_publishes_nothing(tmp_path, monkeypatch, failing_write):
    repo = make(tmp_path)
    before = files(repo)
    repo.add_targets([target("p/1"), target("p/2")])
    real_write = os.write
    calls = []

    def write(fd, data):
        calls.append(fd)
        if len(calls) > failing_write:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(exceptions.StorageError, match="No space"):
        repo.publish()
    monkeypatch.undo()
    assert not [n for n in os.listdir(repo.metadata_dir) if n.endswith(".tmp")]
    repo.remove_targets(["p/2"])
    _assert_unchanged_and_recoverable(repo, before)


def test_a_busy_publisher_lock(tmp_path):
    repo = make(tmp_path)
    with repo.store.publisher_lock():
        other = Repository(repo.folder, clock=Clock())
        other.add_targets([target("a")])
        with pytest.raises(exceptions.PublisherBusyError):
            other.publish(lock_timeout=0.1)
    assert other.publish(lock_timeout=0.1).changes == 1


def test_create_refuses_an_existing_repository(tmp_path):
    make(tmp_path)
    with pytest.raises(exceptions.PublishError, match="already"):
        make(tmp_path)
    with pytest.raises(exceptions.FormatError):
        Layout("pep458", 1000)
    with pytest.raises(exceptions.FormatError):
        Layout("flat", 16)
    with pytest.raises(exceptions.StorageError, match="not a tufc repository"):
        Repository(tmp_path / "nothing")


# --- signers ------------------------------------------------------------------------


@pytest.mark.parametrize("keytype", ["ed25519", "ecdsa"])
def test_securesystemslib_signers(tmp_path, keytype):
    from securesystemslib.signer import CryptoSigner

    make_signer = CryptoSigner.generate_ed25519 if keytype == "ed25519" else CryptoSigner.generate_ecdsa
    online = make_signer()
    repo = make(tmp_path, root_signers=[make_signer()], targets_signers=[make_signer()],
                online_signers=[online], clock=None)
    repo.add_targets([target("s/1")])
    repo.publish()
    assert client_view(repo.folder, ["s/1"]) == expected_view({"s/1": target("s/1")}, ["s/1"])


def test_online_signer_from_a_securesystemslib_uri(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    (tmp_path / "online.pem").write_bytes(pem)
    from securesystemslib.signer import CryptoSigner

    signer = CryptoSigner(private)
    uri = f"file2:{tmp_path / 'online.pem'}"
    repo = make(tmp_path, online_signers=[signer], signer_uris={"online": [uri]}, clock=None)
    repo.close()
    reopened = Repository(repo.folder)  # loads the online signer from its URI
    reopened.add_targets([target("u/1")])
    reopened.publish()
    assert client_view(repo.folder, ["u/1"]) == expected_view({"u/1": target("u/1")}, ["u/1"])


def test_generated_keys_are_private(tmp_path):
    repo = make(tmp_path)
    keys = os.path.join(repo.folder, "keys")
    assert oct(os.stat(keys).st_mode & 0o777) == "0o700"
    for name in os.listdir(keys):
        assert oct(os.stat(os.path.join(keys, name)).st_mode & 0o777) == "0o600"
    config = json.loads(open(os.path.join(repo.folder, "repository.json")).read())
    online = repo.online_signers()[0].public_key
    assert config["signers"]["online"] == [{"uri": "file:keys/online.key", "keyid": online.keyid,
                                            "public": online.to_dict()}]
    assert "seed" not in open(os.path.join(repo.folder, "repository.json")).read()


# --- expiry ------------------------------------------------------------------------------


def test_bin_expiries_are_spread(tmp_path):
    repo = make(tmp_path, bins=64)
    expiries = {metadata(repo, f"1.{name}.json")["signed"]["expires"] for name in repo.layout.bin_names()}
    assert len(expiries) >= 60
    first, last = min(expiries), max(expiries)
    assert metadata_io.parse_time(last) - metadata_io.parse_time(first) >= timedelta(days=3)


def test_refresh_re_signs_only_what_expires(tmp_path):
    clock = Clock()
    repo = make(tmp_path, bins=64, clock=clock)
    repo.add_targets([target("keep/me")])
    repo.publish()
    assert repo.refresh() is None  # nothing is due yet
    clock.now = NOW + timedelta(hours=20)  # timestamp and snapshot due (1 day, 6 h margin)
    result = repo.refresh()
    assert result.bins == 0 and result.snapshot_version == 3
    clock.now = NOW + timedelta(days=4, hours=12)  # the earliest bins now expire within a day
    due = [r for r in repo.expiring() if r not in ("snapshot", "timestamp")]
    assert 0 < len(due) < 64
    result = repo.refresh()
    assert result.bins == len(due)
    assert not [r for r in repo.expiring() if r not in ("snapshot", "timestamp")]
    assert client_view(repo.folder, ["keep/me"]) == expected_view({"keep/me": target("keep/me")}, ["keep/me"])
    # a client checking at that time accepts everything
    clock.now = NOW + timedelta(days=6, hours=23)
    due_later = repo.refresh()
    assert due_later.bins > 0


def test_timestamp_only_renewal(tmp_path):
    clock = Clock()
    repo = make(tmp_path, clock=clock, expiry={"snapshot": timedelta(days=3)})
    clock.now = NOW + timedelta(hours=19)
    result = repo.refresh()
    assert result.snapshot_version == 1 and result.timestamp_version == 2 and result.bins == 0
    assert set(files(repo)) == {n for n in files(repo)}  # no new snapshot file
    assert "2.snapshot.json" not in files(repo)
    client_view(repo.folder, [])


# --- both cores ----------------------------------------------------------------------------


_BUILD = r"""
import json, sys
from datetime import datetime, timezone
from tufc.repository import Layout, Repository
from tufc.signer import Ed25519Signer
now = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)
seed = lambda n: bytes([n]) * 32
repo = Repository.create(sys.argv[1], Layout(sys.argv[2], 8), clock=lambda: now,
    root_signers=[Ed25519Signer(seed(1))], targets_signers=[Ed25519Signer(seed(2))],
    online_signers=[Ed25519Signer(seed(3))], signer_uris={"online": ["file:x"]}, workers=1)
repo.add_targets([{"path": f"pkg/{i}/f-é-{i}.whl", "length": i, "hashes": {"sha256": "%064x" % i},
                   "custom": {"i": i}} for i in range(12)])
repo.publish()
repo.remove_targets(["pkg/3/f-é-3.whl"])
repo.publish()
print(__import__("tufc").BACKEND)
"""


@pytest.mark.parametrize("kind", ["pep458", "rstuf"])
def test_both_cores_publish_the_same_bytes(tmp_path, kind):
    outputs = {}
    for backend, env in (("native", {"TUFC_REQUIRE_NATIVE": "1"}), ("python", {"TUFC_PURE_PYTHON": "1"})):
        folder = tmp_path / backend
        environ = {k: v for k, v in os.environ.items() if k not in ("TUFC_PURE_PYTHON", "TUFC_REQUIRE_NATIVE")}
        run = subprocess.run([sys.executable, "-c", _BUILD, str(folder), kind],
                             env=dict(environ, **env), capture_output=True, text=True)
        if backend == "native" and "not installed" in run.stderr:
            pytest.skip("the native core is not built here")
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == backend
        md = folder / "metadata"
        outputs[backend] = {n: (md / n).read_bytes() for n in sorted(os.listdir(md))}
    assert outputs["native"] == outputs["python"]
    assert len(outputs["native"]) > 10


def test_the_garbage_collector_is_resumed(tmp_path, monkeypatch):
    import gc

    repo = make(tmp_path)
    repo.add_targets([target("a")])
    repo.publish()
    assert gc.isenabled()

    def gone(*args, **kw):
        raise exceptions.StoreError("queue database: connection lost")

    monkeypatch.setattr(repo.store, "mark_published", gone)
    repo.add_targets([target("b")])
    with pytest.raises(exceptions.StoreError):
        repo.publish()
    assert gc.isenabled()
    gc.disable()  # a caller that runs without it keeps it off
    try:
        monkeypatch.undo()
        repo.publish()
        assert not gc.isenabled()
    finally:
        gc.enable()
