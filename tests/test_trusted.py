"""TrustedMetadataSet: one test per rule and attack of the client workflow.

Repositories come from python-tuf (tests/repo_builder.py). Every scenario is
replayed on python-tuf's own TrustedMetadataSet with the same bytes and the
same reference time, and both must fail (or succeed) with the same exception
class -- tufc must be a drop-in. Where tufc is deliberately stricter, the
test says so and checks tufc alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tuf.ngclient._internal.trusted_metadata_set import TrustedMetadataSet as TufTrustedSet
from tuf.ngclient.config import EnvelopeType

import tufc.keys
from tufc._trusted import TrustedMetadataSet
from tufc.exceptions import (
    BadVersionNumberError,
    DeserializationError,
    EqualVersionNumberError,
    ExpiredMetadataError,
    LengthOrHashMismatchError,
    RepositoryError,
    UnsignedMetadataError,
)
from tufc.metadata import Metadata, Targets

from tests.conftest import shared_testdata
from tests.repo_builder import RepoBuilder

NOW = datetime.now(timezone.utc)
SOON = NOW + timedelta(days=1)
PAST = NOW - timedelta(days=1)


class Both:
    """Drive tufc's and python-tuf's trusted sets in lockstep on the same bytes."""

    def __init__(self, root: bytes, reference_time: datetime = NOW, expect=None):
        self.sets = []
        outcomes = []
        for make in (lambda: TrustedMetadataSet(root, reference_time), lambda: _tuf_set(root, reference_time)):
            try:
                self.sets.append(make())
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001 - compared below
                outcomes.append(type(exc).__name__)
        _check(outcomes, expect, "constructor")

    @property
    def ours(self) -> TrustedMetadataSet:
        return self.sets[0]

    def __getattr__(self, method):
        def call(*args, expect=None, **kwargs):
            outcomes = []
            for trusted_set in self.sets:
                try:
                    getattr(trusted_set, method)(*args, **kwargs)
                    outcomes.append(None)
                except Exception as exc:  # noqa: BLE001 - compared below
                    outcomes.append(type(exc).__name__)
            _check(outcomes, expect, method)
        return call


def _tuf_set(root: bytes, reference_time: datetime) -> TufTrustedSet:
    trusted_set = TufTrustedSet(root, EnvelopeType.METADATA)
    trusted_set.reference_time = reference_time
    return trusted_set


def _check(outcomes, expect, what):
    name = expect.__name__ if expect is not None else None
    assert outcomes == [name, name], f"{what}: tufc raised {outcomes[0]}, python-tuf {outcomes[1]}, expected {name}"


def load_all(repo: RepoBuilder, reference_time: datetime = NOW) -> Both:
    """A set with the full chain of roots and the current top-level roles."""
    both = Both(repo.root_bytes(1), reference_time)
    for version in range(2, len(repo.root_history) + 1):
        both.update_root(repo.root_bytes(version))
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_snapshot(repo.role_bytes("snapshot"))
    both.update_targets(repo.role_bytes("targets"))
    return both


@pytest.fixture
def repo() -> RepoBuilder:
    r = RepoBuilder()
    r.add_target("a/b.txt", b"data")
    r.add_delegation("targets", "role1", paths=["a/*"])
    r.add_target("a/c.txt", b"more", role="role1")
    r.publish()
    return r


@pytest.fixture
def hashed_repo() -> RepoBuilder:
    """Snapshot and timestamp list length and sha256 of what they name."""
    r = RepoBuilder(meta_hashes=True)
    r.add_delegation("targets", "role1", paths=["a/*"])
    r.publish()
    return r


# --- happy path and the mapping interface ------------------------------------------


def test_full_load_and_accessors(repo):
    both = load_all(repo)
    both.update_delegated_targets(repo.role_bytes("role1"), "role1", "targets")
    ts = both.ours
    assert list(ts) == ["root", "timestamp", "snapshot", "targets", "role1"]
    assert len(ts) == 5 and "role1" in ts and "role2" not in ts
    assert isinstance(ts["role1"], Metadata)
    assert ts["role1"].signed.targets["a/c.txt"].length == 4
    assert ts.root.version == 1 and ts.timestamp.version == ts["timestamp"].signed.version
    assert ts.snapshot.version == repo.md["snapshot"].signed.version
    assert isinstance(ts.targets, Targets)
    assert ts.contains("role1", "targets") and ts.contains("targets", "root")
    assert not ts.contains("role1", "root")


def test_reference_time_must_be_aware(repo):
    with pytest.raises(ValueError):
        TrustedMetadataSet(repo.root_bytes(1), datetime.now())


def test_out_of_order_calls(repo):
    both = Both(repo.root_bytes(1))
    both.update_snapshot(repo.role_bytes("snapshot"), expect=RuntimeError)
    both.update_targets(repo.role_bytes("targets"), expect=RuntimeError)
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_root(repo.root_bytes(1), expect=RuntimeError)
    both.update_targets(repo.role_bytes("targets"), expect=RuntimeError)
    both.update_snapshot(repo.role_bytes("snapshot"))
    both.update_delegated_targets(repo.role_bytes("role1"), "role1", "targets", expect=RuntimeError)
    both.update_targets(repo.role_bytes("targets"))
    both.update_timestamp(repo.role_bytes("timestamp"), expect=RuntimeError)
    both.update_snapshot(repo.role_bytes("snapshot"), expect=RuntimeError)


@pytest.mark.parametrize(
    "garbage,error",
    [(b"not json", DeserializationError), (b"{}", DeserializationError), (b"[]", DeserializationError)],
)
def test_garbage_at_every_step(repo, garbage, error):
    Both(garbage, expect=error)
    both = Both(repo.root_bytes(1))
    both.update_root(garbage, expect=error)
    both.update_timestamp(garbage, expect=error)
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_snapshot(garbage, expect=error)
    both.update_snapshot(repo.role_bytes("snapshot"))
    both.update_targets(garbage, expect=error)


def test_wrong_role_type(repo):
    both = Both(repo.role_bytes("timestamp"), expect=RepositoryError)
    both = Both(repo.root_bytes(1))
    both.update_root(repo.role_bytes("targets"), expect=RepositoryError)
    both.update_timestamp(repo.role_bytes("snapshot"), expect=RepositoryError)
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_snapshot(repo.role_bytes("timestamp"), expect=RepositoryError)


# --- root ------------------------------------------------------------------------


def test_initial_root_must_be_self_signed(repo):
    repo.sign("root", signers=[])
    Both(repo.root_bytes(1), expect=UnsignedMetadataError)


def test_initial_root_may_be_expired_but_not_final(repo):
    repo.expire("root")
    repo.sign("root")
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.role_bytes("timestamp"), expect=ExpiredMetadataError)


def test_root_rotation_with_threshold_change(repo):
    repo.rotate_keys("root", count=3, threshold=2)
    repo.publish()
    repo.rotate_keys("root", count=1, threshold=1)
    repo.publish()
    assert len(repo.root_history) == 3
    both = load_all(repo)
    assert both.ours.root.version == 3


def test_new_root_needs_old_root_threshold(repo):
    old_signers = list(repo.signers["root"])
    repo.rotate_keys("root")
    repo.root.version += 1
    repo.sign("root")  # only the new key
    both = Both(repo.root_bytes(1))
    both.update_root(repo.root_bytes(2), expect=UnsignedMetadataError)
    repo.sign("root", signers=old_signers + repo.signers["root"])
    both.update_root(repo.root_bytes(2))


def test_new_root_needs_its_own_threshold(repo):
    old_signers = list(repo.signers["root"])
    repo.rotate_keys("root")
    repo.root.version += 1
    repo.sign("root", signers=old_signers)  # not by its own new key
    both = Both(repo.root_bytes(1))
    both.update_root(repo.root_bytes(2), expect=UnsignedMetadataError)


def test_root_threshold_not_met(repo):
    repo.rotate_keys("root", count=3, threshold=3)
    repo.publish()  # v2, signed by v1's key and all three new keys
    new_signers = repo.signers["root"]
    repo.bump("root")
    repo.root.version += 1
    repo.sign("root", signers=new_signers[:2])  # v3 by 2 of 3
    both = Both(repo.root_bytes(1))
    both.update_root(repo.root_bytes(2))
    both.update_root(repo.root_bytes(3), expect=UnsignedMetadataError)


@pytest.mark.parametrize("offered", [1, 2, 4], ids=["older", "same", "skip"])
def test_root_version_must_be_next(repo, offered):
    repo.root.version = 2
    both = Both(repo.sign("root"))
    repo.root.version = offered
    both.update_root(repo.sign("root"), expect=BadVersionNumberError)


def test_intermediate_root_may_be_expired(repo):
    repo.expire("root")
    repo.publish()  # root v2 expired
    repo.expire("root", SOON + timedelta(days=30))
    repo.publish()  # root v3 valid
    both = load_all(repo)
    assert both.ours.root.version == 3


def test_final_root_expired(repo):
    repo.expire("root")
    repo.publish()
    both = Both(repo.root_bytes(1))
    both.update_root(repo.root_bytes(2))
    both.update_timestamp(repo.role_bytes("timestamp"), expect=ExpiredMetadataError)



def test_expiry_error_names_role_version_and_times(repo):
    repo.expire("timestamp")  # expires 2000-01-01
    repo.publish()
    trusted = TrustedMetadataSet(repo.root_bytes(1), datetime(2030, 5, 6, tzinfo=timezone.utc))
    with pytest.raises(ExpiredMetadataError) as caught:
        trusted.update_timestamp(repo.role_bytes("timestamp"))
    version = repo.md["timestamp"].signed.version
    assert str(caught.value) == (
        f"timestamp.json version {version} expired at 2000-01-01T00:00:00Z "
        "(checked as of 2030-05-06T00:00:00Z)"
    )

def test_root_same_key_under_two_keyids_counts_once():
    """Deliberately stricter than python-tuf, which counts such a key twice."""
    from securesystemslib.signer import CryptoSigner, SSlibKey

    repo = RepoBuilder()
    signer = repo.signers["root"][0]
    key = signer.public_key
    twin_id = "f" * 64
    twin = SSlibKey(twin_id, key.keytype, key.scheme, dict(key.keyval))
    repo.root.add_key(twin, "root")
    repo.root.roles["root"].threshold = 2
    repo.root.version += 1
    md = repo.md["root"]
    md.signatures.clear()
    md.sign(signer, append=True)
    twin_signer = CryptoSigner(signer._private_key, twin)
    md.sign(twin_signer, append=True)
    data = md.to_bytes()
    trusted = TrustedMetadataSet(repo.root_bytes(1), NOW)
    with pytest.raises(UnsignedMetadataError):
        trusted.update_root(data)
    _tuf_set(repo.root_bytes(1), NOW).update_root(data)  # python-tuf accepts it


def test_each_root_signature_verified_once(monkeypatch):
    repo = RepoBuilder()
    repo.rotate_keys("root", count=3, threshold=2)
    repo.publish()
    repo.bump("root")
    repo.publish()  # v3: same keys as v2
    pairs = []
    real = tufc.keys.verify_many
    monkeypatch.setattr(tufc.keys, "verify_many", lambda data, p: pairs.append(len(p)) or real(data, p))
    trusted = TrustedMetadataSet(repo.root_bytes(2), NOW)
    pairs.clear()
    trusted.update_root(repo.root_bytes(3))
    assert sum(pairs) == 3  # three signatures, each checked once for both roots


# --- timestamp -----------------------------------------------------------------


def test_timestamp_rollback(repo):
    old = repo.role_bytes("timestamp")
    repo.bump("timestamp")
    repo.publish()
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_timestamp(old, expect=BadVersionNumberError)


def test_timestamp_equal_version_keeps_trusted(repo):
    first = repo.role_bytes("timestamp")
    both = Both(repo.root_bytes(1))
    both.update_timestamp(first)
    repo.md["timestamp"].signed.expires = SOON + timedelta(days=5)
    same_version = repo.sign("timestamp")
    both.update_timestamp(same_version, expect=EqualVersionNumberError)
    assert both.ours["timestamp"].signed.expires == repo.expires


def test_timestamp_snapshot_version_rollback(repo):
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.role_bytes("timestamp"))
    ts = repo.md["timestamp"].signed
    ts.version += 1
    ts.snapshot_meta.version -= 1
    both.update_timestamp(repo.sign("timestamp"), expect=BadVersionNumberError)


def test_timestamp_expired_is_intermediate(repo):
    repo.expire("timestamp")
    repo.publish()
    expired = repo.role_bytes("timestamp")
    both = Both(repo.root_bytes(1))
    both.update_timestamp(expired, expect=ExpiredMetadataError)
    assert both.ours.timestamp.version == repo.md["timestamp"].signed.version
    both.update_snapshot(repo.role_bytes("snapshot"), expect=ExpiredMetadataError)
    # still the rollback baseline: an older one is refused, a newer one loads
    repo.expire("timestamp", SOON)
    repo.publish()
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_snapshot(repo.role_bytes("snapshot"))


def test_timestamp_wrong_key(repo):
    other = RepoBuilder()
    both = Both(repo.root_bytes(1))
    both.update_timestamp(other.role_bytes("timestamp"), expect=UnsignedMetadataError)
    repo.sign("timestamp", signers=repo.signers["snapshot"])
    both.update_timestamp(repo.role_bytes("timestamp"), expect=UnsignedMetadataError)


def test_timestamp_threshold(repo):
    repo.rotate_keys("timestamp", count=2, threshold=2)
    repo.publish()
    signers = repo.signers["timestamp"]
    both = Both(repo.root_bytes(1))
    both.update_root(repo.root_bytes(2))
    repo.md["timestamp"].signed.version += 1
    both.update_timestamp(repo.sign("timestamp", signers=signers[:1]), expect=UnsignedMetadataError)
    both.update_timestamp(repo.sign("timestamp", signers=signers))


# --- snapshot ------------------------------------------------------------------


def test_snapshot_hashes_checked_before_parsing(hashed_repo):
    both = Both(hashed_repo.root_bytes(1))
    both.update_timestamp(hashed_repo.role_bytes("timestamp"))
    good = hashed_repo.role_bytes("snapshot")
    # same length, not even JSON: the hash check must come first
    both.update_snapshot(b"x" * len(good), expect=LengthOrHashMismatchError)
    # same JSON content, other bytes (whitespace): hash mismatch, no parsing
    both.update_snapshot(json.dumps(json.loads(good), indent=1).encode(), expect=LengthOrHashMismatchError)
    both.update_snapshot(good + b" ", expect=LengthOrHashMismatchError)
    both.update_snapshot(good)


def test_snapshot_trusted_skips_hashes(hashed_repo):
    old_snapshot = hashed_repo.role_bytes("snapshot")
    hashed_repo.bump("targets")
    hashed_repo.publish()
    both = Both(hashed_repo.root_bytes(1))
    both.update_timestamp(hashed_repo.role_bytes("timestamp"))
    both.update_snapshot(old_snapshot, expect=LengthOrHashMismatchError)
    # a cached copy: loads as intermediate (version behind the timestamp)
    both.update_snapshot(old_snapshot, trusted=True, expect=BadVersionNumberError)
    both.update_targets(hashed_repo.role_bytes("targets"), expect=BadVersionNumberError)
    both.update_snapshot(hashed_repo.role_bytes("snapshot"))
    both.update_targets(hashed_repo.role_bytes("targets"))


def test_snapshot_version_must_match_timestamp(repo):
    """Mix-and-match: an old (validly signed) snapshot with a new timestamp."""
    old_snapshot = repo.role_bytes("snapshot")
    repo.bump("targets")
    repo.publish()
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_snapshot(old_snapshot, expect=BadVersionNumberError)
    both.update_targets(repo.role_bytes("targets"), expect=BadVersionNumberError)


def test_snapshot_targets_version_rollback_explicit(repo):
    # trusted snapshot lists targets v5; the new one lists v4
    repo.md["targets"].signed.version = 4
    repo.bump("targets")
    repo.publish()  # targets v5
    cached = repo.role_bytes("snapshot")
    sn = repo.md["snapshot"].signed
    sn.version += 1
    sn.meta["targets.json"].version = 4
    new = repo.sign("snapshot")
    ts = repo.md["timestamp"].signed
    ts.version += 1
    ts.snapshot_meta.version = sn.version
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.sign("timestamp"))
    both.update_snapshot(cached, trusted=True, expect=BadVersionNumberError)
    both.update_snapshot(new, expect=BadVersionNumberError)


def test_snapshot_role_removed(repo):
    cached = repo.role_bytes("snapshot")
    sn = repo.md["snapshot"].signed
    sn.version += 1
    del sn.meta["role1.json"]
    new = repo.sign("snapshot")
    ts = repo.md["timestamp"].signed
    ts.version += 1
    ts.snapshot_meta.version = sn.version
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.sign("timestamp"))
    both.update_snapshot(cached, trusted=True, expect=BadVersionNumberError)
    both.update_snapshot(new, expect=RepositoryError)


def test_snapshot_expired(repo):
    repo.expire("snapshot")
    repo.publish()
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_snapshot(repo.role_bytes("snapshot"), expect=ExpiredMetadataError)
    both.update_targets(repo.role_bytes("targets"), expect=ExpiredMetadataError)


def test_snapshot_wrong_key(repo):
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.role_bytes("timestamp"))
    repo.sign("snapshot", signers=repo.signers["timestamp"])
    both.update_snapshot(repo.role_bytes("snapshot"), expect=UnsignedMetadataError)


def test_snapshot_length_only(repo):
    repo.md["timestamp"].signed.snapshot_meta.length = len(repo.role_bytes("snapshot")) - 1
    repo.md["timestamp"].signed.version += 1
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.sign("timestamp"))
    both.update_snapshot(repo.role_bytes("snapshot"), expect=LengthOrHashMismatchError)


# --- targets and delegated targets -------------------------------------------------


def _to_snapshot(repo: RepoBuilder) -> Both:
    both = Both(repo.root_bytes(1))
    for version in range(2, len(repo.root_history) + 1):
        both.update_root(repo.root_bytes(version))
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_snapshot(repo.role_bytes("snapshot"))
    return both


def test_targets_version_must_match_snapshot(repo):
    old_targets = repo.role_bytes("targets")
    repo.bump("targets")
    repo.publish()
    both = _to_snapshot(repo)
    both.update_targets(old_targets, expect=BadVersionNumberError)
    both.update_targets(repo.role_bytes("targets"))


def test_targets_hashes_from_snapshot(hashed_repo):
    both = _to_snapshot(hashed_repo)
    good = hashed_repo.role_bytes("targets")
    both.update_targets(b"y" * len(good), expect=LengthOrHashMismatchError)
    both.update_targets(good[:-1], expect=LengthOrHashMismatchError)
    both.update_targets(good)
    both.update_delegated_targets(hashed_repo.role_bytes("role1")[1:], "role1", "targets", expect=LengthOrHashMismatchError)
    both.update_delegated_targets(hashed_repo.role_bytes("role1"), "role1", "targets")


def test_targets_expired(repo):
    repo.expire("targets")
    repo.publish()
    both = _to_snapshot(repo)
    both.update_targets(repo.role_bytes("targets"), expect=ExpiredMetadataError)
    assert "targets" not in both.ours


def test_targets_wrong_key(repo):
    repo.sign("targets", signers=repo.signers["role1"])
    both = _to_snapshot(repo)
    both.update_targets(repo.role_bytes("targets"), expect=UnsignedMetadataError)


def test_delegated_role_missing_from_snapshot(repo):
    repo.add_delegation("targets", "role2")
    repo.publish()
    sn = repo.md["snapshot"].signed
    del sn.meta["role2.json"]
    sn.version += 1
    repo.sign("snapshot")
    repo.md["timestamp"].signed.version += 1
    repo.md["timestamp"].signed.snapshot_meta.version = sn.version
    repo.sign("timestamp")
    both = _to_snapshot(repo)
    both.update_targets(repo.role_bytes("targets"))
    both.update_delegated_targets(repo.role_bytes("role2"), "role2", "targets", expect=RepositoryError)


def test_delegated_before_delegator(repo):
    both = _to_snapshot(repo)
    both.update_delegated_targets(repo.role_bytes("role1"), "role1", "targets", expect=RuntimeError)


def test_delegator_key_mismatch(repo):
    old_signers = list(repo.signers["role1"])
    repo.rotate_keys("role1")
    repo.publish()
    # role1 as published (right version) but signed with the key the
    # delegator no longer trusts
    stale = repo.sign("role1", signers=old_signers)
    both = _to_snapshot(repo)
    both.update_targets(repo.role_bytes("targets"))
    both.update_delegated_targets(stale, "role1", "targets", expect=UnsignedMetadataError)
    both.update_delegated_targets(repo.sign("role1"), "role1", "targets")


def test_delegated_signed_by_other_delegations_key(repo):
    repo.add_delegation("targets", "role2", paths=["b/*"])
    repo.publish()
    repo.sign("role1", signers=repo.signers["role2"])
    both = _to_snapshot(repo)
    both.update_targets(repo.role_bytes("targets"))
    both.update_delegated_targets(repo.role_bytes("role1"), "role1", "targets", expect=UnsignedMetadataError)


def test_role_not_delegated_by_that_delegator(repo):
    repo.add_delegation("role1", "deep", paths=["a/*"])
    repo.publish()
    both = _to_snapshot(repo)
    both.update_targets(repo.role_bytes("targets"))
    both.update_delegated_targets(repo.role_bytes("deep"), "deep", "targets", expect=ValueError)
    both.update_delegated_targets(repo.role_bytes("role1"), "role1", "targets")
    both.update_delegated_targets(repo.role_bytes("deep"), "deep", "role1")
    assert both.ours.contains("deep", "role1")


def test_delegated_version_and_expiry(repo):
    old_role1 = repo.role_bytes("role1")
    repo.bump("role1")
    repo.publish()
    both = _to_snapshot(repo)
    both.update_targets(repo.role_bytes("targets"))
    both.update_delegated_targets(old_role1, "role1", "targets", expect=BadVersionNumberError)
    repo.expire("role1")
    repo.publish()
    both = _to_snapshot(repo)
    both.update_targets(repo.role_bytes("targets"))
    both.update_delegated_targets(repo.role_bytes("role1"), "role1", "targets", expect=ExpiredMetadataError)


def test_succinct_hash_bins():
    repo = RepoBuilder()
    names = repo.add_succinct_roles("targets", 4, "bin")
    path = "pkg/thing-1.0.tar.gz"
    name = repo.bin_for("targets", path)
    repo.add_target(path, b"payload", role=name)
    repo.publish()
    both = _to_snapshot(repo)
    both.update_targets(repo.role_bytes("targets"))
    both.update_delegated_targets(repo.role_bytes(name), name, "targets")
    assert both.ours[name].signed.targets[path].length == 7
    other = names[0] if names[0] != name else names[1]
    both.update_delegated_targets(repo.role_bytes(other), other, "targets")
    assert path not in both.ours[other].signed.targets
    # a name outside the bins is not delegated
    both.update_delegated_targets(repo.role_bytes(other), "bin-10", "targets", expect=RepositoryError)


# --- fast-forward attack recovery --------------------------------------------------


def test_fast_forward_recovery_timestamp(repo):
    # an attacker with the timestamp key pushed the client to timestamp v1000
    ts = repo.md["timestamp"].signed
    saved = ts.version
    ts.version = 1000
    forwarded = repo.sign("timestamp")
    both = Both(repo.root_bytes(1))
    both.update_timestamp(forwarded)
    ts.version = saved + 1
    honest = repo.sign("timestamp")
    # without key rotation the forwarded timestamp blocks every honest one
    both = Both(repo.root_bytes(1))
    both.update_timestamp(forwarded)
    both.update_timestamp(honest, expect=BadVersionNumberError)
    # the repository rotates the timestamp key: the cached forwarded file no
    # longer verifies against the new root, so it is no baseline
    repo.rotate_keys("timestamp")
    repo.publish()
    both = Both(repo.root_bytes(1))
    both.update_root(repo.root_bytes(2))
    both.update_timestamp(forwarded, expect=UnsignedMetadataError)
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_snapshot(repo.role_bytes("snapshot"))
    assert both.ours.timestamp.version < 1000


def test_fast_forward_recovery_snapshot(repo):
    sn = repo.md["snapshot"].signed
    sn.meta["targets.json"].version = 999
    forwarded = repo.sign("snapshot")
    sn.meta["targets.json"].version = repo.md["targets"].signed.version
    repo.rotate_keys("snapshot")
    repo.bump("targets")
    repo.publish()
    both = Both(repo.root_bytes(1))
    both.update_root(repo.root_bytes(2))
    both.update_timestamp(repo.role_bytes("timestamp"))
    both.update_snapshot(forwarded, trusted=True, expect=UnsignedMetadataError)
    both.update_snapshot(repo.role_bytes("snapshot"))
    both.update_targets(repo.role_bytes("targets"))


# --- reference time ----------------------------------------------------------------


def test_reference_time_decides_expiry(repo):
    expires = repo.md["timestamp"].signed.expires
    repo.expire("timestamp", NOW + timedelta(hours=1))
    repo.publish()
    Both(repo.root_bytes(1), NOW).update_timestamp(repo.role_bytes("timestamp"))
    later = NOW + timedelta(hours=1)
    Both(repo.root_bytes(1), later).update_timestamp(repo.role_bytes("timestamp"), expect=ExpiredMetadataError)
    assert expires > later


# --- real data: Sigstore --------------------------------------------------------


def test_sigstore_chain_and_delegation():
    base = shared_testdata("sigstore-root-signing")
    as_of = datetime(2026, 8, 22, tzinfo=timezone.utc)
    trusted = TrustedMetadataSet((base / "root_history" / "1.root.json").read_bytes(), as_of)
    for version in range(2, 16):
        trusted.update_root((base / "root_history" / f"{version}.root.json").read_bytes())
    assert trusted.root.version == 15
    trusted.update_timestamp((base / "timestamp.json").read_bytes())
    trusted.update_snapshot((base / "snapshot.json").read_bytes())
    trusted.update_targets((base / "targets.json").read_bytes())
    delegated = trusted.update_delegated_targets(
        (base / "registry.npmjs.org.json").read_bytes(), "registry.npmjs.org", "targets"
    )
    assert delegated.version == 8
    # roots 1-3 carry RFC 3339 offsets that python-tuf refuses; tufc reads them
    from tuf.api.serialization import DeserializationError as TufDeserializationError

    with pytest.raises(TufDeserializationError):
        _tuf_set((base / "root_history" / "1.root.json").read_bytes(), as_of)


def test_sigstore_root_out_of_order():
    base = shared_testdata("sigstore-root-signing")
    as_of = datetime(2026, 8, 22, tzinfo=timezone.utc)
    trusted = TrustedMetadataSet((base / "root_history" / "5.root.json").read_bytes(), as_of)
    with pytest.raises(BadVersionNumberError):
        trusted.update_root((base / "root_history" / "7.root.json").read_bytes())
    with pytest.raises(UnsignedMetadataError):
        # root 1 is not signed by a threshold of root 5's root keys
        trusted.update_root((base / "root_history" / "1.root.json").read_bytes())


@pytest.mark.parametrize("attack", ["none", "rollback", "removed"])
def test_snapshot_rollback_check_at_scale(repo, attack):
    from tuf.api.metadata import MetaFile as TufMetaFile

    sn = repo.md["snapshot"].signed
    for i in range(5000):
        sn.meta[f"bin-{i:04x}.json"] = TufMetaFile(i % 9 + 2)
    cached = repo.sign("snapshot")
    sn.version += 1
    if attack == "rollback":
        sn.meta["bin-0abc.json"] = TufMetaFile(1)
    elif attack == "removed":
        del sn.meta["bin-0abc.json"]
    else:
        sn.meta["bin-0abc.json"] = TufMetaFile(100)
    new = repo.sign("snapshot")
    ts = repo.md["timestamp"].signed
    ts.version += 1
    ts.snapshot_meta.version = sn.version
    both = Both(repo.root_bytes(1))
    both.update_timestamp(repo.sign("timestamp"))
    both.update_snapshot(cached, trusted=True, expect=BadVersionNumberError)
    expect = {"none": None, "rollback": BadVersionNumberError, "removed": RepositoryError}[attack]
    both.update_snapshot(new, expect=expect)


def test_root_with_an_unsupported_key_still_works(repo):
    """An exotic key in root must not make it unreadable; it just never counts.

    Deliberately more lenient than python-tuf, which refuses the whole root
    (so one unknown key type in a new root would stop its clients).
    """
    from securesystemslib.signer import SSlibKey

    exotic = SSlibKey("e" * 64, "sphincs", "sphincs-shake-256f", {"public": "00" * 32})
    repo.root.add_key(exotic, "root")
    repo.bump("root")
    repo.publish()
    trusted = TrustedMetadataSet(repo.root_bytes(1), NOW)
    trusted.update_root(repo.root_bytes(2))
    from tuf.api.serialization import DeserializationError as TufDeserializationError

    with pytest.raises(TufDeserializationError):
        _tuf_set(repo.root_bytes(1), NOW).update_root(repo.root_bytes(2))
    # threshold 2 and the exotic key is the only other one: not met
    repo.set_threshold("root", 2)
    repo.publish()
    with pytest.raises(UnsignedMetadataError):
        trusted.update_root(repo.root_bytes(3))


# --- differential: random call sequences, tufc vs python-tuf -----------------------


@pytest.fixture(scope="module")
def blob_pool():
    """Bytes of every role across a history with rotations, expiry and rollbacks."""
    repo = RepoBuilder(meta_hashes=True)
    repo.add_delegation("targets", "role1", paths=["a/*"])
    pool = {"root": [], "timestamp": [], "snapshot": [], "targets": [], "role1": []}

    def collect():
        for role in pool:
            if role != "root":
                pool[role].append(repo.role_bytes(role))

    repo.publish()
    collect()
    repo.bump("role1")
    repo.publish()
    collect()
    repo.rotate_keys("timestamp")
    repo.publish()
    collect()
    repo.expire("snapshot")
    repo.publish()
    collect()
    repo.expire("snapshot", SOON + timedelta(days=9))
    repo.rotate_keys("snapshot")
    repo.bump("targets")
    repo.publish()
    collect()
    repo.expire("role1")
    repo.publish()
    collect()
    repo.sign("targets", signers=repo.signers["role1"])  # wrongly signed
    collect()
    pool["root"] = list(repo.root_history)
    pool["garbage"] = [b"{}", b"\x00"]
    return pool


OPS = [
    ("update_root", "root"),
    ("update_timestamp", "timestamp"),
    ("update_snapshot", "snapshot"),
    ("update_snapshot_trusted", "snapshot"),
    ("update_targets", "targets"),
    ("update_delegated_targets", "role1"),
]


@given(data=st.data())
def test_random_sequences_match_python_tuf(blob_pool, data):
    start = data.draw(st.sampled_from(blob_pool["root"][:2]), label="root")
    both = Both(start)
    for _ in range(data.draw(st.integers(1, 12), label="steps")):
        method, role = data.draw(st.sampled_from(OPS), label="op")
        source = data.draw(st.sampled_from([role, role, role, "garbage", "timestamp", "targets"]), label="from")
        blob = data.draw(st.sampled_from(blob_pool[source]), label="blob")
        if method == "update_snapshot_trusted":
            _same_outcome(both, "update_snapshot", blob, trusted=True)
        elif method == "update_delegated_targets":
            _same_outcome(both, method, blob, "role1", "targets")
        else:
            _same_outcome(both, method, blob)


def _same_outcome(both: Both, method: str, *args, **kwargs) -> None:
    outcomes = []
    for trusted_set in both.sets:
        try:
            getattr(trusted_set, method)(*args, **kwargs)
            outcomes.append(None)
        except Exception as exc:  # noqa: BLE001 - compared below
            outcomes.append(type(exc).__name__)
    assert outcomes[0] == outcomes[1], f"{method}: tufc {outcomes[0]}, python-tuf {outcomes[1]}"
    # and the trusted state is the same afterwards
    ours, theirs = both.sets
    assert list(ours) == [name for name in ("root", "timestamp", "snapshot", "targets", "role1")
                          if name in theirs._trusted_set]
    for name in ours:
        assert ours[name].signed.version == theirs[name].version
