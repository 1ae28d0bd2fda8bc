"""One test per attack and per rule of the client workflow.

Each repository is built with python-tuf (tests/repo_builder.py), changed
the way an attacker (or a broken repository) would, and served over HTTP.
Tests run against tufc and python-tuf (fixture ``impl``) and expect the
same exception class; where tufc deliberately differs, the test says so.
"""

from __future__ import annotations

import datetime
import hashlib
import pathlib
import time
import urllib.parse

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import MetaFile

from tufc.fetcher import Urllib3Fetcher, download_seconds
from tufc.updater import UpdaterConfig

from tests.http_repo import ENDLESS_CAP
from tests.updater_harness import Env, Impl, Raises, add_delegated_target, listing

UTC = datetime.timezone.utc
PAST = datetime.datetime(2001, 1, 1, tzinfo=UTC)


def refreshed(env: Env, impl: Impl, **kw):
    updater = env.updater(impl, **kw)
    updater.refresh()
    return updater


def new_version(env: Env, role: str = "targets") -> None:
    env.repo.bump(role)
    env.publish()


# --- rollback -------------------------------------------------------------------


def test_timestamp_rollback(env, impl):
    old = env.repo.role_bytes("timestamp")
    new_version(env)
    refreshed(env, impl)
    env.server.files["metadata/timestamp.json"] = old
    with Raises("BadVersionNumberError"):
        refreshed(env, impl, bootstrap=None)


def test_timestamp_rolls_back_snapshot_version(env, impl):
    new_version(env)  # timestamp v2 names snapshot v2
    refreshed(env, impl)
    timestamp = env.repo.md["timestamp"].signed
    timestamp.version += 1
    timestamp.snapshot_meta = MetaFile(1)
    env.repo.sign("timestamp")
    env.publish_files()
    with Raises("BadVersionNumberError"):
        refreshed(env, impl, bootstrap=None)


def test_snapshot_rolls_back_targets_version(env, impl):
    new_version(env)  # snapshot v2 lists targets v2
    refreshed(env, impl)
    snapshot = env.repo.md["snapshot"].signed
    snapshot.meta["targets.json"] = MetaFile(1)
    env.repo.bump("snapshot")
    env.publish()
    with Raises("BadVersionNumberError"):
        refreshed(env, impl, bootstrap=None)


def test_rollback_in_shorter_snapshot(henv, impl):
    """The cached snapshot is the rollback baseline even when the new
    timestamp gives a shorter length (targets v10 -> v9 saves a byte)."""
    while henv.repo.md["targets"].signed.version < 10:
        henv.repo.bump("targets")
        henv.repo.publish()
    henv.publish_files()
    refreshed(henv, impl)
    henv.repo.md["targets"].signed.version = 8
    new_version(henv)  # snapshot lists targets v9
    with Raises("BadVersionNumberError"):
        refreshed(henv, impl, bootstrap=None)


def test_snapshot_drops_a_role(env, impl):
    add_delegated_target(env)
    env.publish()
    refreshed(env, impl)
    del env.repo.md["snapshot"].signed.meta["role1.json"]
    env.repo.bump("snapshot")
    env.publish()
    with Raises("RepositoryError"):
        refreshed(env, impl, bootstrap=None)


def test_snapshot_older_than_timestamp_says(env, impl):
    old = env.repo.role_bytes("snapshot")
    new_version(env)
    name = "metadata/" + env.repo.metadata_name("snapshot")
    env.server.files[name] = old  # v1 where the timestamp names v2
    with Raises("BadVersionNumberError"):
        refreshed(env, impl)


def test_targets_older_than_snapshot_says(env, impl):
    old = env.repo.role_bytes("targets")
    new_version(env)
    env.server.files["metadata/" + env.repo.metadata_name("targets")] = old
    with Raises("BadVersionNumberError"):
        refreshed(env, impl)


def test_delegated_older_than_snapshot_says(env, impl):
    add_delegated_target(env)
    env.publish()
    old = env.repo.role_bytes("role1")
    new_version(env, "role1")
    env.server.files["metadata/" + env.repo.metadata_name("role1")] = old
    updater = refreshed(env, impl)
    with Raises("BadVersionNumberError"):
        updater.get_targetinfo("deleg/file.txt")


def test_root_rollback(env, impl):
    env.server.files["metadata/2.root.json"] = env.repo.root_bytes(1)
    with Raises("BadVersionNumberError"):
        refreshed(env, impl)


# --- freeze (expiry) ----------------------------------------------------------------


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets"])
def test_expired_top_level_role(env, impl, role):
    env.repo.expire(role, PAST)
    env.publish()
    with Raises("ExpiredMetadataError"):
        refreshed(env, impl)


def test_expired_delegated_role(env, impl):
    add_delegated_target(env)
    env.repo.expire("role1", PAST)
    env.publish()
    updater = refreshed(env, impl)
    with Raises("ExpiredMetadataError"):
        updater.get_targetinfo("deleg/file.txt")


def test_expired_final_root(env, impl):
    env.repo.expire("root", PAST)
    env.publish()
    with Raises("ExpiredMetadataError"):
        refreshed(env, impl)


def test_expired_intermediate_root_is_fine(env, impl):
    env.repo.expire("root", PAST)
    env.publish()
    env.repo.expire("root", datetime.datetime(2099, 1, 1, tzinfo=UTC))
    env.publish()
    refreshed(env, impl)
    assert (env.metadata_dir / "root.json").read_bytes() == env.repo.root_bytes(3)


def test_expired_cached_timestamp_is_replaced(env, impl):
    """A cached timestamp that has expired since is only a rollback
    baseline: the repository's newer one replaces it."""
    refreshed(env, impl)
    env.repo.expire("timestamp", PAST)
    env.publish()
    stale = env.repo.role_bytes("timestamp")
    (env.metadata_dir / "timestamp.json").write_bytes(stale)
    env.repo.expire("timestamp", datetime.datetime(2099, 1, 1, tzinfo=UTC))
    env.publish()
    refreshed(env, impl, bootstrap=None)
    data = (env.metadata_dir / "timestamp.json").read_bytes()
    assert data == env.repo.role_bytes("timestamp")


def test_expired_cached_timestamp_still_blocks_rollback(env, impl):
    refreshed(env, impl)
    old = env.repo.role_bytes("timestamp")
    env.repo.expire("timestamp", PAST)
    env.publish()
    (env.metadata_dir / "timestamp.json").write_bytes(env.repo.role_bytes("timestamp"))
    env.server.files["metadata/timestamp.json"] = old
    with Raises("BadVersionNumberError"):
        refreshed(env, impl, bootstrap=None)


# --- mix-and-match --------------------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["consistent", "plain"])
def henv(request, tmp_path, server) -> Env:
    """Snapshot and timestamp list lengths and hashes."""
    return Env(tmp_path, server, consistent_snapshot=request.param, meta_hashes=True)


def test_snapshot_not_matching_timestamp_hashes(henv, impl):
    """A validly signed snapshot of the right version but other content
    (from another repository state) is refused before it is parsed."""
    henv.repo.add_target("a", b"a")
    henv.publish()
    snapshot = henv.repo.md["snapshot"].signed
    snapshot.meta["targets.json"] = MetaFile(snapshot.meta["targets.json"].version)
    henv.repo.sign("snapshot")  # same version, other bytes; timestamp unchanged
    henv.publish_files()
    with Raises("LengthOrHashMismatchError"):
        refreshed(henv, impl)


def test_targets_not_matching_snapshot_hashes(henv, impl):
    henv.repo.add_target("a", b"a")
    henv.publish()
    henv.repo.add_target("a", b"b")
    henv.repo.sign("targets")  # same version and length, other content
    henv.publish_files()
    with Raises("LengthOrHashMismatchError"):
        refreshed(henv, impl)


def test_snapshot_longer_than_timestamp_says(henv, impl):
    name = "metadata/" + henv.repo.metadata_name("snapshot")
    henv.server.files[name] = henv.server.files[name] + b" "
    with Raises("DownloadLengthMismatchError"):
        refreshed(henv, impl)


def test_delegated_role_of_another_state(env, impl):
    """A delegated role with the right version from another branch of
    history: its signature is fine but its hashes in snapshot are not."""
    env.repo.meta_hashes = True
    add_delegated_target(env)
    env.publish()
    env.repo.add_target("deleg/file.txt", b"delegated dat4", role="role1")
    env.repo.sign("role1")  # same version and length, other content
    env.publish_files()
    updater = refreshed(env, impl)
    with Raises("LengthOrHashMismatchError"):
        updater.get_targetinfo("deleg/file.txt")


# --- endless data -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["root", "timestamp", "snapshot", "targets", "role1"])
def test_endless_metadata(env, impl, role):
    add_delegated_target(env)
    env.repo.bump("root")
    env.publish()
    name = "metadata/" + (
        "2.root.json" if role == "root" else env.repo.metadata_name(role)
    )
    env.server.endless.add(urllib.parse.unquote(name))
    config = impl.config_cls(snapshot_max_length=300_000, targets_max_length=300_000)
    updater = env.updater(impl, config=config)
    with Raises("DownloadLengthMismatchError"):
        updater.get_targetinfo("deleg/file.txt")
    assert env.server.sent[name] < ENDLESS_CAP // 4


def test_endless_snapshot_limited_by_timestamp_length(henv, impl):
    name = "metadata/" + henv.repo.metadata_name("snapshot")
    henv.server.endless.add(name)
    with Raises("DownloadLengthMismatchError"):
        refreshed(henv, impl)
    assert henv.server.sent[name] < ENDLESS_CAP // 4


def test_slow_timestamp(env, impl):
    env.server.stall["metadata/timestamp.json"] = 5
    if impl.is_tufc:
        from tufc.fetcher import Urllib3Fetcher
    else:
        from tuf.ngclient import Urllib3Fetcher
    with Raises("SlowRetrievalError"):
        refreshed(env, impl, fetcher=Urllib3Fetcher(socket_timeout=0.15))


# --- slow retrieval: a deadline for every download ------------------------------------------

# a timestamp (16 KiB limit) gets 0.3 + 16384 / 65536 = 0.55 s
FAST_DEADLINE = {"min_download_rate": 65536, "download_grace_period": 0.3}


def _fails_in_time(run, seconds: float) -> None:
    """``run()`` raises SlowRetrievalError, within ``seconds``."""
    start = time.monotonic()
    with Raises("SlowRetrievalError"):
        run()
    assert time.monotonic() - start < seconds


@pytest.mark.parametrize("role", ["root", "timestamp", "snapshot", "targets", "role1"])
def test_dripping_metadata_hits_the_deadline(env, tufc_impl, role):
    """A server sending one byte every 50 ms (never idle for a socket
    timeout) fails the download once its deadline has passed, long before
    the file would be complete (a 30 s socket timeout alone would wait for
    it), for every role."""
    add_delegated_target(env)
    env.repo.bump("root")
    env.publish()
    name = "metadata/" + (
        "2.root.json" if role == "root" else env.repo.metadata_name(role)
    )
    name = urllib.parse.unquote(name)
    size = len(env.server.files[name])
    assert size * 0.05 > 10  # the drip would take longer than 10 s
    env.server.trickle[name] = 0.05
    # a limit of 16 KiB (a timestamp's) for every role: 0.55 s each
    limits = {f"{r}_max_length": 16384 for r in ("root", "snapshot", "targets")}
    config = UpdaterConfig(**FAST_DEADLINE, **limits)
    updater = env.updater(tufc_impl, config=config)
    _fails_in_time(lambda: updater.get_targetinfo("deleg/file.txt"), 5)
    assert env.server.sent[name] < size


def test_dripping_target_hits_the_deadline_and_leaves_nothing(env, tufc_impl):
    """The target's deadline comes from its length: 3,000 bytes at 6,000
    bytes/s is half a second; the drip would take 30 s."""
    env.repo.add_target("a/f", b"x" * 3000)
    env.publish()
    updater = refreshed(env, tufc_impl)
    info = updater.get_targetinfo("a/f")
    env.server.trickle["targets/" + env.repo.target_name("a/f")] = 0.01
    config = UpdaterConfig(min_download_rate=6000, download_grace_period=0)
    updater = env.updater(tufc_impl, config=config)
    dest = env.tmp / "out"
    _fails_in_time(lambda: updater.download_target(info, str(dest / "f")), 5)
    assert listing(dest) == set()


def test_python_tuf_fetcher_gets_the_deadline(env, tufc_impl):
    """python-tuf's own fetcher (no deadline of its own, its download_bytes
    never called): the Updater enforces the deadline around its chunks."""
    from tuf.ngclient import Urllib3Fetcher as TufUrllib3Fetcher

    env.server.trickle["metadata/timestamp.json"] = 0.05
    updater = env.updater(
        tufc_impl,
        fetcher=TufUrllib3Fetcher(chunk_size=8),
        config=UpdaterConfig(**FAST_DEADLINE),
    )
    _fails_in_time(updater.refresh, 5)


def test_steady_downloads_meet_the_deadline(env, tufc_impl):
    """The same strict pace that fails a drip lets a normal update through."""
    add_delegated_target(env)
    env.publish()
    updater = env.updater(tufc_impl, config=UpdaterConfig(**FAST_DEADLINE))
    info = updater.get_targetinfo("deleg/file.txt")
    assert pathlib.Path(updater.download_target(info)).read_bytes() == b"delegated data"


def test_default_timestamp_deadline_within_a_minute():
    """On a default config a timestamp download fails within 60 s however
    the server paces it: its deadline, plus at most one socket timeout of
    the default fetcher (blocked in a read when the deadline passes)."""
    config = UpdaterConfig()
    seconds = download_seconds(
        config.timestamp_max_length,
        config.min_download_rate,
        config.download_grace_period,
    )
    assert seconds + Urllib3Fetcher().socket_timeout <= 60


@pytest.mark.parametrize(
    "field, value",
    [
        ("min_download_rate", 0),
        ("min_download_rate", -1),
        ("min_download_rate", float("nan")),
        ("min_download_rate", float("inf")),
        ("min_download_rate", "2048"),
        ("min_download_rate", True),
        ("download_grace_period", -0.5),
        ("download_grace_period", None),
    ],
)
def test_download_pace_config_checked(env, tufc_impl, field, value):
    with pytest.raises(ValueError, match=field):
        env.updater(tufc_impl, config=UpdaterConfig(**{field: value}))


def test_server_error_is_not_end_of_root_chain(env, impl):
    env.server.errors["metadata/2.root.json"] = 500
    with Raises("DownloadHTTPError") as caught:
        refreshed(env, impl)
    assert caught.value.status_code == 500


def test_403_ends_root_chain(env, impl):
    env.server.errors["metadata/2.root.json"] = 403
    refreshed(env, impl)


# --- fast-forward attack recovery ---------------------------------------------------------


def test_fast_forward_recovery_timestamp(env, impl):
    """An attacker with the timestamp key pushed timestamp v99; rotating the
    timestamp key lets clients accept the real v2 again."""
    refreshed(env, impl)
    timestamp = env.repo.md["timestamp"].signed
    timestamp.version = 99
    env.repo.sign("timestamp")
    env.publish_files()
    refreshed(env, impl, bootstrap=None)  # the client now trusts v99
    timestamp.version = 1
    new_version(env)  # the real timestamp v2: refused
    with Raises("BadVersionNumberError"):
        refreshed(env, impl, bootstrap=None)
    env.repo.rotate_keys("timestamp")
    env.publish()
    refreshed(env, impl, bootstrap=None)
    data = (env.metadata_dir / "timestamp.json").read_bytes()
    assert data == env.repo.role_bytes("timestamp")


def test_fast_forward_recovery_snapshot(env, impl):
    """An attacker with the snapshot and timestamp keys pushed a snapshot
    that lists targets v99; rotating the snapshot (and timestamp) keys
    lets clients recover."""
    refreshed(env, impl)
    env.repo.md["targets"].signed.version = 98
    new_version(env)  # targets v99, snapshot v2, timestamp v2
    refreshed(env, impl, bootstrap=None)
    env.repo.md["targets"].signed.version = 1
    new_version(env)  # targets v2 < v99: refused
    with Raises("BadVersionNumberError"):
        refreshed(env, impl, bootstrap=None)
    env.repo.rotate_keys("snapshot")
    env.repo.rotate_keys("timestamp")
    env.publish()
    refreshed(env, impl, bootstrap=None)
    data = (env.metadata_dir / "targets.json").read_bytes()
    assert data == env.repo.role_bytes("targets")


def test_fast_forward_recovery_snapshot_key_only(env, impl):
    """Only the snapshot key rotates. The specification (5.3.11) discards
    the trusted timestamp and snapshot then; tufc does, python-tuf keeps
    the cached timestamp as baseline and stays stuck (known difference)."""
    refreshed(env, impl)
    snapshot = env.repo.md["snapshot"].signed
    snapshot.version = 49
    new_version(env)  # snapshot v50, timestamp v2 names it
    refreshed(env, impl, bootstrap=None)
    snapshot.version = 1
    env.repo.rotate_keys("snapshot")
    env.publish()  # root v2, snapshot v2, timestamp v3 names snapshot v2
    if impl.is_tufc:
        refreshed(env, impl, bootstrap=None)
        data = (env.metadata_dir / "snapshot.json").read_bytes()
        assert data == env.repo.role_bytes("snapshot")
    else:
        with Raises("BadVersionNumberError"):
            refreshed(env, impl, bootstrap=None)


# --- root chains ---------------------------------------------------------------------------


def test_root_chain_with_key_rotations_and_threshold_change(env, impl):
    env.repo.rotate_keys("root")
    env.publish()  # v2: new key, signed by old and new
    env.repo.add_key("root")
    env.repo.set_threshold("root", 2)
    env.publish()  # v3: 2 of 2
    env.repo.rotate_keys("root", count=3, threshold=2)
    env.publish()  # v4: 2 of 3 new keys, signed by v3's too
    refreshed(env, impl)
    assert (env.metadata_dir / "root.json").read_bytes() == env.repo.root_bytes(4)
    for version in range(1, 5):
        path = env.metadata_dir / f"root_history/{version}.root.json"
        assert path.read_bytes() == env.repo.root_bytes(version)


def test_root_chain_continues_from_cache(env, impl):
    env.repo.rotate_keys("root")
    env.publish()
    refreshed(env, impl)
    env.repo.rotate_keys("root")
    env.publish()
    env.server.clear_requests()
    refreshed(env, impl)  # bootstrap v1 again: v2 from the cache
    assert env.requests()[:2] == ["/metadata/3.root.json", "/metadata/4.root.json"]


def test_new_root_not_signed_by_old_keys(env, impl):
    env.repo.rotate_keys("root")
    env.publish()
    env.repo.sign("root", env.repo.signers["root"])  # new keys only
    env.publish_files()
    with Raises("UnsignedMetadataError"):
        refreshed(env, impl)


def test_new_root_below_its_own_threshold(env, impl):
    old = list(env.repo.signers["root"])
    env.repo.add_key("root")
    env.repo.set_threshold("root", 2)
    env.publish()
    env.repo.sign("root", old)  # old threshold met, new one (2) not
    env.publish_files()
    with Raises("UnsignedMetadataError"):
        refreshed(env, impl)


def test_root_version_skipped(env, impl):
    new_version(env, "root")
    new_version(env, "root")
    env.server.files["metadata/2.root.json"] = env.repo.root_bytes(3)
    with Raises("BadVersionNumberError"):
        refreshed(env, impl)


def test_max_root_rotations(env, impl):
    for _ in range(4):
        new_version(env, "root")  # roots v2..v5
    env.server.clear_requests()
    refreshed(env, impl, config=impl.config_cls(max_root_rotations=2))
    assert (env.metadata_dir / "root.json").read_bytes() == env.repo.root_bytes(3)
    assert "/metadata/4.root.json" not in env.requests()


def test_root_of_wrong_type(env, impl):
    env.server.files["metadata/2.root.json"] = env.repo.role_bytes("timestamp")
    with pytest.raises(Exception) as caught:
        refreshed(env, impl)
    assert type(caught.value).__name__ in ("DeserializationError", "RepositoryError")


# --- signatures and keys ----------------------------------------------------------------------


def test_timestamp_signed_by_unknown_key(env, impl):
    env.repo.bump("targets")
    env.repo.publish()
    env.repo.sign("timestamp", [CryptoSigner.generate_ed25519()])
    env.publish_files()
    with Raises("UnsignedMetadataError"):
        refreshed(env, impl)


def test_targets_below_threshold(env, impl):
    env.repo.add_key("targets")
    env.repo.set_threshold("targets", 2)
    env.publish()
    env.repo.sign("targets", env.repo.signers["targets"][:1])
    env.publish_files()
    with Raises("UnsignedMetadataError"):
        refreshed(env, impl)


def test_delegated_role_signed_by_delegators_key(env, impl):
    add_delegated_target(env)
    env.publish()
    env.repo.sign("role1", env.repo.signers["targets"])
    env.publish_files()
    updater = refreshed(env, impl)
    with Raises("UnsignedMetadataError"):
        updater.get_targetinfo("deleg/file.txt")


def test_cached_metadata_tampered_is_redownloaded(env, impl):
    add_delegated_target(env)
    env.publish()
    env.updater(impl).get_targetinfo("deleg/file.txt")
    for role in ("snapshot", "targets", "role1"):
        path = env.metadata_dir / f"{role}.json"
        path.write_bytes(path.read_bytes().replace(b'"2099-', b'"2098-'))
    env.server.clear_requests()
    assert env.updater(impl, bootstrap=None).get_targetinfo("deleg/file.txt")
    assert len(env.requests()) == 5  # root, timestamp, snapshot, targets, role1
    for role in ("snapshot", "targets", "role1"):
        assert (env.metadata_dir / f"{role}.json").read_bytes() == env.repo.role_bytes(role)


# --- delegation search ---------------------------------------------------------------------------


@pytest.mark.parametrize("terminating", [True, False])
def test_terminating_delegation(env, impl, terminating):
    env.repo.add_delegation("targets", "A", paths=["a/*"], terminating=terminating)
    env.repo.add_delegation("targets", "B", paths=["a/*"])
    env.repo.add_target("a/f", b"in B", role="B")
    env.publish()
    info = refreshed(env, impl).get_targetinfo("a/f")
    if terminating:
        assert info is None
        assert "/metadata/" + env.repo.metadata_name("B") not in env.requests()
    else:
        assert info is not None and info.length == 4


def test_terminating_stops_backtracking_to_ancestors(env, impl):
    env.repo.add_delegation("targets", "A", paths=["a/*"])
    env.repo.add_delegation("A", "A1", paths=["a/*"], terminating=True)
    env.repo.add_delegation("targets", "B", paths=["a/*"])
    env.repo.add_target("a/f", b"in B", role="B")
    env.publish()
    assert refreshed(env, impl).get_targetinfo("a/f") is None


def test_listed_order_wins(env, impl):
    env.repo.add_delegation("targets", "A", paths=["a/*"])
    env.repo.add_delegation("targets", "B", paths=["a/*"])
    env.repo.add_target("a/f", b"from A", role="A")
    env.repo.add_target("a/f", b"from B!", role="B")
    env.publish()
    info = refreshed(env, impl).get_targetinfo("a/f")
    assert info.length == len(b"from A")


def test_preorder_depth_first(env, impl):
    env.repo.add_delegation("targets", "A", paths=["a/*"])
    env.repo.add_delegation("A", "A1", paths=["a/*"])
    env.repo.add_delegation("targets", "B", paths=["a/*"])
    env.repo.add_target("a/f", b"from A1", role="A1")
    env.repo.add_target("a/f", b"from B", role="B")
    env.publish()
    assert refreshed(env, impl).get_targetinfo("a/f").length == len(b"from A1")


def test_delegated_role_cannot_escape_its_paths(env, impl):
    env.repo.add_delegation("targets", "A", paths=["a/*"])
    env.repo.add_delegation("A", "C", paths=["*/*"])  # wider than A's
    env.repo.add_target("b/f", b"escape", role="C")
    env.repo.add_target("b/g", b"escape", role="A")
    env.repo.add_target("a/f", b"fine", role="C")
    env.publish()
    updater = refreshed(env, impl)
    assert updater.get_targetinfo("b/f") is None
    assert updater.get_targetinfo("b/g") is None
    assert updater.get_targetinfo("a/f").length == 4


def test_paths_glob_does_not_cross_slash(env, impl):
    env.repo.add_delegation("targets", "A", paths=["a/*.txt"])
    env.repo.add_target("a/b/c.txt", b"deep", role="A")
    env.repo.add_target("a/c.txt", b"flat", role="A")
    env.publish()
    updater = refreshed(env, impl)
    assert updater.get_targetinfo("a/b/c.txt") is None
    assert updater.get_targetinfo("a/c.txt") is not None


def test_path_hash_prefixes(env, impl):
    path = "pkg/file.tar.gz"
    prefix = hashlib.sha256(path.encode()).hexdigest()[:2]
    other = "%02x" % ((int(prefix, 16) + 1) % 256)
    env.repo.add_delegation("targets", "wrong", path_hash_prefixes=[other])
    env.repo.add_delegation("targets", "right", path_hash_prefixes=[prefix])
    env.repo.add_target(path, b"wrong bin", role="wrong")
    env.repo.add_target(path, b"right", role="right")
    env.publish()
    assert refreshed(env, impl).get_targetinfo(path).length == 5


@pytest.mark.parametrize("limit,found", [(3, False), (4, True)])
def test_max_delegations(env, impl, limit, found):
    parent = "targets"
    for name in ("d1", "d2", "d3", "d4"):
        env.repo.add_delegation(parent, name, paths=["*"])
        parent = name
    env.repo.add_target("f", b"deep", role="d4")
    env.publish()
    updater = refreshed(env, impl, config=impl.config_cls(max_delegations=limit))
    assert (updater.get_targetinfo("f") is not None) is found


def test_delegation_cycle(env, impl):
    env.repo.add_delegation("targets", "A", paths=["*"])
    env.repo.add_delegation("A", "B", paths=["*"])
    signed = env.repo.md["B"].signed
    from tuf.api.metadata import DelegatedRole, Delegations

    a_role = env.repo.md["targets"].signed.delegations.roles["A"]
    signed.delegations = Delegations(
        {k: env.repo.md["targets"].signed.delegations.keys[k] for k in a_role.keyids},
        roles={"A": DelegatedRole("A", list(a_role.keyids), 1, False, ["*"])},
    )
    env.repo.add_target("x", b"in B", role="B")
    env.publish()
    updater = refreshed(env, impl)
    assert updater.get_targetinfo("missing") is None
    assert updater.get_targetinfo("x").length == 4


def test_diamond(env, impl):
    """targets -> A, B; A -> C and B -> C: C is loaded once per search and
    verified with the keys of the delegator that led to it."""
    env.repo.add_delegation("targets", "A", paths=["*"])
    env.repo.add_delegation("targets", "B", paths=["*"])
    env.repo.add_delegation("A", "C", paths=["*"])
    c_keys = env.repo.md["A"].signed.delegations.roles["C"].keyids
    from tuf.api.metadata import DelegatedRole, Delegations

    env.repo.md["B"].signed.delegations = Delegations(
        {k: env.repo.md["A"].signed.delegations.keys[k] for k in c_keys},
        roles={"C": DelegatedRole("C", list(c_keys), 1, False, ["*"])},
    )
    env.repo.add_target("c", b"in C", role="C")
    env.repo.add_target("b", b"in B", role="B")
    env.publish()
    updater = refreshed(env, impl)
    assert updater.get_targetinfo("c").length == 4
    assert updater.get_targetinfo("b").length == 4
    assert updater.get_targetinfo("none") is None
    c_name = "/metadata/" + env.repo.metadata_name("C")
    assert env.requests().count(c_name) == 1


def test_diamond_checks_each_delegators_keys(env, impl):
    """C is delegated by A (with C's real key) and by B (with another key).
    Found through A it is trusted; reached through B it must be checked
    against B's keys again, and fails."""
    from tuf.api.metadata import DelegatedRole, Delegations

    env.repo.add_delegation("targets", "A", paths=["a/*"])
    env.repo.add_delegation("targets", "B", paths=["b/*"])
    env.repo.add_delegation("A", "C", paths=["*/*"])
    stranger = CryptoSigner.generate_ed25519().public_key
    env.repo.md["B"].signed.delegations = Delegations(
        {stranger.keyid: stranger},
        roles={"C": DelegatedRole("C", [stranger.keyid], 1, False, ["*/*"])},
    )
    env.repo.add_target("a/x", b"via A", role="C")
    env.repo.add_target("b/x", b"via B", role="C")
    env.publish()
    updater = refreshed(env, impl)
    assert updater.get_targetinfo("a/x").length == 5
    with Raises("UnsignedMetadataError"):
        updater.get_targetinfo("b/x")


def test_succinct_hash_bins(env, impl):
    bins = env.repo.add_succinct_roles("targets", 4, "bin")
    paths = [f"pkg/{i}.tar.gz" for i in range(8)]
    for path in paths:
        env.repo.add_target(path, path.encode(), role=env.repo.bin_for("targets", path))
    env.publish()
    updater = refreshed(env, impl)
    env.server.clear_requests()
    info = updater.get_targetinfo(paths[0])
    assert info.length == len(paths[0])
    name = env.repo.bin_for("targets", paths[0])
    assert name in bins and name.startswith("bin-") and len(name) == len("bin-") + 1
    assert env.requests() == ["/metadata/" + env.repo.metadata_name(name)]
    for path in paths[1:]:
        assert updater.get_targetinfo(path).length == len(path)
    assert updater.get_targetinfo("pkg/absent") is None


def test_target_in_wrong_bin_not_found(env, impl):
    env.repo.add_succinct_roles("targets", 2, "bin")
    path = "pkg/x"
    right = env.repo.bin_for("targets", path)
    wrong = next(b for b in ("bin-0", "bin-1", "bin-2", "bin-3") if b != right)
    env.repo.add_target(path, b"misplaced", role=wrong)
    env.publish()
    assert refreshed(env, impl).get_targetinfo(path) is None


def test_delegated_role_missing_from_snapshot(env, impl):
    add_delegated_target(env)
    env.publish()
    del env.repo.md["snapshot"].signed.meta["role1.json"]
    env.repo.bump("snapshot")
    env.publish()
    updater = refreshed(env, impl)
    with Raises("RepositoryError"):
        updater.get_targetinfo("deleg/file.txt")


# --- hostile role names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../x", "?", "#", "/x", "a/../../b", "..", "%2F", "x y", "\u00e9"]
)
def test_role_names_quoted(env, impl, name):
    env.repo.add_delegation("targets", name, paths=["deleg/*"])
    env.repo.add_target("deleg/f", b"data", role=name)
    env.publish()
    updater = refreshed(env, impl)
    assert updater.get_targetinfo("deleg/f").length == 4
    quoted = urllib.parse.quote(name, safe="")
    expected = env.repo.metadata_name(name)
    assert expected.endswith(f"{quoted}.json")
    assert env.server.requests[-1].raw_path == "/metadata/" + expected
    files = listing(env.tmp)
    assert f"metadata/{quoted}.json" in files
    assert all(f.startswith("metadata/") for f in files)


# --- the cache is not trusted blindly -------------------------------------------------------------


def test_cache_with_unexpected_files_is_left_alone(env, impl):
    refreshed(env, impl)
    (env.metadata_dir / "notes.txt").write_text("mine")
    refreshed(env, impl)
    assert (env.metadata_dir / "notes.txt").read_text() == "mine"


def test_oversized_cached_timestamp_is_ignored(env, tufc_impl):
    refreshed(env, tufc_impl)
    (env.metadata_dir / "timestamp.json").write_bytes(b" " * 20000)
    refreshed(env, tufc_impl, bootstrap=None)
    data = (env.metadata_dir / "timestamp.json").read_bytes()
    assert data == env.repo.role_bytes("timestamp")


def test_download_target_leaves_no_temp_files_on_error(env, tufc_impl):
    env.repo.add_target("a/f", b"data")
    env.publish()
    updater = refreshed(env, tufc_impl)
    info = updater.get_targetinfo("a/f")
    env.server.errors["targets/" + env.repo.target_name("a/f")] = 500
    dest = env.tmp / "out"
    with Raises("DownloadHTTPError"):
        updater.download_target(info, str(dest / "f"))
    assert listing(dest) == set()
