"""The metadata model against python-tuf and securesystemslib as oracles.

Metadata is produced by python-tuf (tests/repo_builder.py) and checked field
by field against python-tuf's own parse; canonical bytes are compared with
securesystemslib's encoder; malformed inputs must be DeserializationError.
The suite runs once per core (TUFC_PURE_PYTHON=1 for the pure one).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner
from tuf.api import metadata as tuf_md

import tufc.metadata as metadata_module
from tufc.exceptions import (
    DeserializationError,
    LengthOrHashMismatchError,
    UnsignedMetadataError,
)
from tufc.metadata import (
    DelegatedRole,
    Delegations,
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tufc.signer import Ed25519Signer

from tests.conftest import shared_testdata
from tests.repo_builder import RepoBuilder


def canonical(obj) -> bytes:
    return encode_canonical(obj).encode("utf-8")


@pytest.fixture(scope="module")
def repo() -> RepoBuilder:
    r = RepoBuilder(meta_hashes=True)
    r.add_target("a/b.txt", b"data", custom={"k": [1, "x"]})
    r.add_target("top.bin", b"\x00" * 100)
    r.add_delegation("targets", "role1", paths=["a/*", "c/*.txt"], terminating=True, keys=2, threshold=2)
    r.add_delegation("targets", "role2", path_hash_prefixes=["ab", "0"])
    r.add_target("a/c.txt", b"more", role="role1")
    r.publish()
    return r


ROLES = ["root", "timestamp", "snapshot", "targets", "role1", "role2"]


# --- round trip against python-tuf ---------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_canonical_bytes_match_python_tuf(repo, role):
    data = repo.role_bytes(role)
    ours = Metadata.from_bytes(data)
    theirs = tuf_md.Metadata.from_bytes(data)
    assert ours.signed_bytes == theirs.signed_bytes
    assert ours.to_bytes() == canonical(theirs.to_dict())
    assert ours.to_dict() == theirs.to_dict()
    assert ours.signed.to_dict() == theirs.signed.to_dict()


@pytest.mark.parametrize("role", ROLES)
def test_common_fields(repo, role):
    data = repo.role_bytes(role)
    ours = Metadata.from_bytes(data).signed
    theirs = tuf_md.Metadata.from_bytes(data).signed
    assert ours.type == theirs.type
    assert ours.version == theirs.version
    assert ours.spec_version == theirs.spec_version
    assert ours.expires == theirs.expires
    assert ours.expires.tzinfo is not None


def test_signatures(repo):
    data = repo.role_bytes("role1")
    ours = Metadata.from_bytes(data)
    theirs = tuf_md.Metadata.from_bytes(data)
    assert set(ours.signatures) == set(theirs.signatures) and len(ours.signatures) == 2
    for keyid, sig in theirs.signatures.items():
        assert ours.signatures[keyid].keyid == keyid
        assert ours.signatures[keyid].signature == sig.signature


def test_root_fields(repo):
    data = repo.role_bytes("root")
    ours: Root = Metadata.from_bytes(data).signed
    theirs = tuf_md.Metadata.from_bytes(data).signed
    assert ours.consistent_snapshot is theirs.consistent_snapshot is True
    assert set(ours.keys) == set(theirs.keys)
    for keyid, key in theirs.keys.items():
        assert ours.keys[keyid].to_dict() == key.to_dict()
        assert ours.get_key(keyid).keyid == keyid
    for name, role in theirs.roles.items():
        assert ours.roles[name].keyids == role.keyids
        assert ours.roles[name].threshold == role.threshold


def test_timestamp_and_snapshot_fields(repo):
    ts_data = repo.role_bytes("timestamp")
    ours: Timestamp = Metadata.from_bytes(ts_data).signed
    theirs = tuf_md.Metadata.from_bytes(ts_data).signed
    assert ours.snapshot_meta.version == theirs.snapshot_meta.version
    assert ours.snapshot_meta.length == theirs.snapshot_meta.length == len(repo.role_bytes("snapshot"))
    assert ours.snapshot_meta.hashes == theirs.snapshot_meta.hashes
    sn_data = repo.role_bytes("snapshot")
    ours_sn: Snapshot = Metadata.from_bytes(sn_data).signed
    theirs_sn = tuf_md.Metadata.from_bytes(sn_data).signed
    assert set(ours_sn.meta) == set(theirs_sn.meta) == {"targets.json", "role1.json", "role2.json"}
    for name, mf in theirs_sn.meta.items():
        assert ours_sn.meta[name] == MetaFile(mf.version, mf.length, mf.hashes)
        assert ours_sn.meta_version(name) == mf.version
    assert ours_sn.meta_version("nope.json") is None
    assert ours_sn.meta.get("nope.json") is None


def test_targets_fields(repo):
    data = repo.role_bytes("targets")
    ours: Targets = Metadata.from_bytes(data).signed
    theirs = tuf_md.Metadata.from_bytes(data).signed
    assert set(ours.targets) == set(theirs.targets)
    for path, tf in theirs.targets.items():
        mine = ours.targets[path]
        assert (mine.path, mine.length, mine.hashes, mine.custom) == (tf.path, tf.length, tf.hashes, tf.custom)
    assert ours.targets["a/b.txt"].custom == {"k": [1, "x"]}
    d_ours, d_theirs = ours.delegations, theirs.delegations
    assert set(d_ours.keys) == set(d_theirs.keys)
    assert list(d_ours.roles) == list(d_theirs.roles) == ["role1", "role2"]
    for name, role in d_theirs.roles.items():
        mine = d_ours.roles[name]
        assert (mine.name, mine.keyids, mine.threshold, mine.terminating, mine.paths, mine.path_hash_prefixes) == (
            role.name, role.keyids, role.threshold, role.terminating, role.paths, role.path_hash_prefixes)
    assert d_ours.succinct_roles is None


@pytest.mark.parametrize("role", ["root", "timestamp", "snapshot", "targets"])
def test_root_verifies_top_level(repo, role):
    root = Metadata.from_bytes(repo.role_bytes("root"))
    md = Metadata.from_bytes(repo.role_bytes(role))
    root.signed.verify_delegate(role, md)
    root.verify_delegate(role, md)
    root.signed.verify_delegate(role, md.signed_bytes, md.signatures)
    assert root.signed.get_verification_result(role, md)


def test_targets_verifies_delegates_and_threshold(repo):
    targets = Metadata.from_bytes(repo.role_bytes("targets"))
    role1 = Metadata.from_bytes(repo.role_bytes("role1"))
    targets.verify_delegate("role1", role1)
    # threshold 2: one signature is not enough
    first = next(iter(role1.signatures))
    del role1.signatures[first]
    result = targets.signed.get_verification_result("role1", role1)
    assert not result and len(result.verified) == 1
    with pytest.raises(UnsignedMetadataError):
        targets.verify_delegate("role1", role1)
    # a role the delegator does not delegate to
    with pytest.raises(ValueError):
        targets.verify_delegate("nobody", role1)


def test_tampered_signed_part_fails(repo):
    obj = json.loads(repo.role_bytes("targets"))
    obj["signed"]["targets"]["a/b.txt"]["length"] = 5
    root = Metadata.from_bytes(repo.role_bytes("root"))
    with pytest.raises(UnsignedMetadataError):
        root.verify_delegate("targets", Metadata.from_bytes(json.dumps(obj).encode()))


def test_whitespace_and_key_order_do_not_matter(repo):
    obj = json.loads(repo.role_bytes("snapshot"))
    pretty = json.dumps(obj, indent=3, sort_keys=False).encode()
    root = Metadata.from_bytes(repo.role_bytes("root"))
    md = Metadata.from_bytes(pretty)
    root.verify_delegate("snapshot", md)
    assert md.signed_bytes == canonical(obj["signed"])


# --- unknown fields ----------------------------------------------------------------


def _with_unknown_fields() -> tuple[bytes, bytes]:
    """Root + targets whose every object carries unknown fields, signed by python-tuf."""
    extra = {"x-extra": {"nested": [1, "two", None, True]}}
    root_signer = CryptoSigner.generate_ed25519()
    delegate_signer = CryptoSigner.generate_ed25519()
    expires = datetime(2090, 1, 1, tzinfo=timezone.utc)
    root = tuf_md.Root(expires=expires, unrecognized_fields=dict(extra))
    for name in ("root", "timestamp", "snapshot", "targets"):
        root.add_key(root_signer.public_key, name)
        root.roles[name].unrecognized_fields.update(extra)
    root.keys[root_signer.public_key.keyid].unrecognized_fields.update(extra)
    root_md = tuf_md.Metadata(root, unrecognized_fields=dict(extra))
    root_md.sign(root_signer)
    root_md.signatures[root_signer.public_key.keyid].unrecognized_fields.update(extra)

    target = tuf_md.TargetFile.from_data("f.txt", b"abc", ["sha256", "sha512"])
    target.unrecognized_fields.update(extra)
    role = tuf_md.DelegatedRole("d", [], 1, False, paths=["*"], unrecognized_fields=dict(extra))
    delegations = tuf_md.Delegations({}, roles={"d": role}, unrecognized_fields=dict(extra))
    targets = tuf_md.Targets(expires=expires, targets={"f.txt": target}, delegations=delegations,
                             unrecognized_fields=dict(extra))
    targets.add_key(delegate_signer.public_key, "d")
    targets_md = tuf_md.Metadata(targets)
    targets_md.sign(root_signer)
    return root_md.to_bytes(), targets_md.to_bytes()


def test_unknown_fields_survive_and_signatures_verify():
    root_bytes, targets_bytes = _with_unknown_fields()
    root = Metadata.from_bytes(root_bytes)
    targets = Metadata.from_bytes(targets_bytes)
    root.verify_delegate("root", root)
    root.verify_delegate("targets", targets)
    extra = {"x-extra": {"nested": [1, "two", None, True]}}
    assert root.unrecognized_fields == extra
    assert root.signed.unrecognized_fields == extra
    assert root.signed.roles["root"].unrecognized_fields == extra
    assert next(iter(root.signed.keys.values())).unrecognized_fields == extra
    assert next(iter(root.signatures.values())).unrecognized_fields == extra
    assert targets.signed.unrecognized_fields == extra
    assert targets.signed.targets["f.txt"].unrecognized_fields == extra
    assert targets.signed.delegations.unrecognized_fields == extra
    assert targets.signed.delegations.roles["d"].unrecognized_fields == extra
    for data in (root_bytes, targets_bytes):
        md = Metadata.from_bytes(data)
        assert md.to_bytes() == canonical(json.loads(data))
        # re-serializing the model (not the cached bytes) reproduces what was signed
        md._signed_bytes = None
        assert md.signed_bytes == canonical(json.loads(data)["signed"])


def test_edited_lazy_entry_is_serialized():
    r = RepoBuilder()
    r.add_target("x", b"1")
    r.add_target("y", b"2")
    r.publish()
    md = Metadata.from_bytes(r.role_bytes("targets"))
    md.signed.targets["x"].length = 99
    md.signed.targets["z"] = TargetFile.from_data("z", b"zzz")
    out = md.signed.to_dict()["targets"]
    assert out["x"]["length"] == 99 and out["y"]["length"] == 1
    assert out["z"] == {"length": 3, "hashes": {"sha256": hashlib.sha256(b"zzz").hexdigest()}}
    del md.signed.targets["y"]
    assert list(md.signed.to_dict()["targets"]) == ["x", "z"]


# --- malformed input ---------------------------------------------------------------

def _mutations():
    """(id, role, function mutating the parsed file) for invalid metadata."""
    def setp(path, value):
        def f(obj):
            cur = obj
            for key in path[:-1]:
                cur = cur[key]
            cur[path[-1]] = value
        return f

    def delp(path):
        def f(obj):
            cur = obj
            for key in path[:-1]:
                cur = cur[key]
            del cur[path[-1]]
        return f

    S = "signed"
    cases = [
        ("no-signed", "root", delp([S])),
        ("no-signatures", "root", delp(["signatures"])),
        ("signed-list", "root", setp([S], [])),
        ("signatures-dict", "root", setp(["signatures"], {})),
        ("sig-not-object", "root", setp(["signatures", 0], "x")),
        ("sig-no-keyid", "root", delp(["signatures", 0, "keyid"])),
        ("sig-int", "root", setp(["signatures", 0, "sig"], 5)),
        ("type-missing", "root", delp([S, "_type"])),
        ("type-unknown", "root", setp([S, "_type"], "mirrors")),
        ("type-int", "root", setp([S, "_type"], 1)),
        ("version-missing", "root", delp([S, "version"])),
        ("version-zero", "root", setp([S, "version"], 0)),
        ("version-negative", "timestamp", setp([S, "version"], -1)),
        ("version-bool", "root", setp([S, "version"], True)),
        ("version-str", "snapshot", setp([S, "version"], "1")),
        ("spec-missing", "root", delp([S, "spec_version"])),
        ("spec-major-2", "root", setp([S, "spec_version"], "2.0.0")),
        ("spec-garbage", "root", setp([S, "spec_version"], "1.0.0.0")),
        ("spec-int", "root", setp([S, "spec_version"], 1)),
        ("expires-missing", "root", delp([S, "expires"])),
        ("expires-no-tz", "root", setp([S, "expires"], "2030-01-01T00:00:00")),
        ("expires-date-only", "root", setp([S, "expires"], "2030-01-01")),
        ("expires-bad-month", "root", setp([S, "expires"], "2030-13-01T00:00:00Z")),
        ("expires-bad-day", "root", setp([S, "expires"], "2030-02-30T00:00:00Z")),
        ("expires-int", "root", setp([S, "expires"], 1893456000)),
        ("expires-space", "root", setp([S, "expires"], "2030-01-01 00:00:00Z")),
        ("expires-bad-offset", "root", setp([S, "expires"], "2030-01-01T00:00:00+25:00")),
        ("root-keys-list", "root", setp([S, "keys"], [])),
        ("root-key-no-keyval", "root", lambda o: [k.pop("keyval") for k in o[S]["keys"].values()]),
        ("root-roles-missing-one", "root", delp([S, "roles", "snapshot"])),
        ("root-roles-extra", "root", setp([S, "roles", "mirror"], {"keyids": [], "threshold": 1})),
        ("root-threshold-zero", "root", setp([S, "roles", "root", "threshold"], 0)),
        ("root-threshold-bool", "root", setp([S, "roles", "root", "threshold"], True)),
        ("root-keyids-dup", "root", lambda o: o[S]["roles"]["root"]["keyids"].append(o[S]["roles"]["root"]["keyids"][0])),
        ("root-keyids-int", "root", setp([S, "roles", "root", "keyids"], [1])),
        ("root-consistent-str", "root", setp([S, "consistent_snapshot"], "true")),
        ("ts-meta-missing", "timestamp", delp([S, "meta"])),
        ("ts-meta-empty", "timestamp", setp([S, "meta"], {})),
        ("ts-meta-extra", "timestamp", setp([S, "meta", "targets.json"], {"version": 1})),
        ("ts-length-negative", "timestamp", setp([S, "meta", "snapshot.json", "length"], -1)),
        ("ts-length-bool", "timestamp", setp([S, "meta", "snapshot.json", "length"], False)),
        ("ts-hashes-empty", "timestamp", setp([S, "meta", "snapshot.json", "hashes"], {})),
        ("ts-hash-not-hex", "timestamp", setp([S, "meta", "snapshot.json", "hashes", "sha256"], "zz")),
        ("ts-hash-odd", "timestamp", setp([S, "meta", "snapshot.json", "hashes", "sha256"], "abc")),
        ("ts-hash-int", "timestamp", setp([S, "meta", "snapshot.json", "hashes", "sha256"], 12)),
        ("sn-meta-list", "snapshot", setp([S, "meta"], [])),
        ("sn-entry-no-version", "snapshot", setp([S, "meta", "targets.json"], {"length": 1})),
        ("sn-entry-version-bool", "snapshot", setp([S, "meta", "targets.json"], {"version": True})),
        ("sn-entry-str", "snapshot", setp([S, "meta", "targets.json"], "1")),
        ("sn-entry-str-version", "snapshot", setp([S, "meta", "targets.json"], "version")),
        ("sn-entry-list", "snapshot", setp([S, "meta", "targets.json"], ["version"])),
        ("sn-entry-null", "snapshot", setp([S, "meta", "targets.json"], None)),
        ("sn-entry-version-null", "snapshot", setp([S, "meta", "targets.json"], {"version": None})),
        ("sn-entry-version-zero", "snapshot", setp([S, "meta", "targets.json"], {"version": 0})),
        ("sn-entry-empty", "snapshot", setp([S, "meta", "targets.json"], {})),
        ("sn-entry-length-str", "snapshot", setp([S, "meta", "role1.json", "length"], "5")),
        ("tg-targets-missing", "targets", delp([S, "targets"])),
        ("tg-length-missing", "targets", delp([S, "targets", "a/b.txt", "length"])),
        ("tg-hashes-missing", "targets", delp([S, "targets", "a/b.txt", "hashes"])),
        ("tg-length-negative", "targets", setp([S, "targets", "a/b.txt", "length"], -5)),
        ("tg-hash-bad-hex", "targets", setp([S, "targets", "a/b.txt", "hashes", "sha256"], "xy" * 32)),
        ("tg-entry-list", "targets", setp([S, "targets", "a/b.txt"], [])),
        ("dg-no-keys", "targets", delp([S, "delegations", "keys"])),
        ("dg-both", "targets", setp([S, "delegations", "succinct_roles"],
                                    {"keyids": [], "threshold": 1, "bit_length": 2, "name_prefix": "b"})),
        ("dg-neither", "targets", delp([S, "delegations", "roles"])),
        ("dg-roles-dict", "targets", setp([S, "delegations", "roles"], {})),
        ("dg-name-top-level", "targets", setp([S, "delegations", "roles", 0, "name"], "snapshot")),
        ("dg-name-empty", "targets", setp([S, "delegations", "roles", 0, "name"], "")),
        ("dg-name-dup", "targets", setp([S, "delegations", "roles", 1, "name"], "role1")),
        ("dg-terminating-missing", "targets", delp([S, "delegations", "roles", 0, "terminating"])),
        ("dg-terminating-int", "targets", setp([S, "delegations", "roles", 0, "terminating"], 1)),
        ("dg-paths-and-prefixes", "targets", setp([S, "delegations", "roles", 0, "path_hash_prefixes"], ["ab"])),
        ("dg-paths-str", "targets", setp([S, "delegations", "roles", 0, "paths"], "a/*")),
        ("dg-paths-int", "targets", setp([S, "delegations", "roles", 0, "paths"], [1])),
        ("dg-threshold-zero", "targets", setp([S, "delegations", "roles", 0, "threshold"], 0)),
        ("root-consistent-null", "root", setp([S, "consistent_snapshot"], None)),
        ("dg-null", "targets", setp([S, "delegations"], None)),
        ("dg-paths-null", "targets", setp([S, "delegations", "roles", 0, "paths"], None)),
        ("dg-prefixes-null", "targets", setp([S, "delegations", "roles", 1, "path_hash_prefixes"], None)),
        ("ts-length-null", "timestamp", setp([S, "meta", "snapshot.json", "length"], None)),
        ("ts-hashes-null", "timestamp", setp([S, "meta", "snapshot.json", "hashes"], None)),
        ("float-version", "targets", setp([S, "version"], 1.0)),
        ("float-nested", "targets", setp([S, "x-custom"], {"a": [0.5]})),
    ]
    return cases


@pytest.mark.parametrize("case", _mutations(), ids=lambda c: c[0])
def test_malformed_field_is_deserialization_error(repo, case):
    _, role, mutate = case
    obj = json.loads(repo.role_bytes(role))
    obj = copy.deepcopy(obj)
    mutate(obj)
    with pytest.raises(DeserializationError):
        Metadata.from_bytes(json.dumps(obj).encode())


def test_error_names_the_field(repo):
    obj = json.loads(repo.role_bytes("snapshot"))
    obj["signed"]["meta"]["role1.json"]["version"] = True
    with pytest.raises(DeserializationError, match=r"role1\.json.*version"):
        Metadata.from_bytes(json.dumps(obj).encode())


def test_succinct_roles_malformed(repo):
    r = RepoBuilder()
    r.add_succinct_roles("targets", 3, "bin")
    r.publish()
    good = json.loads(r.role_bytes("targets"))
    Metadata.from_bytes(json.dumps(good).encode())
    for field, value in [("bit_length", 0), ("bit_length", 33), ("bit_length", True), ("bit_length", "3"),
                         ("name_prefix", 5), ("threshold", 0)]:
        obj = copy.deepcopy(good)
        obj["signed"]["delegations"]["succinct_roles"][field] = value
        with pytest.raises(DeserializationError):
            Metadata.from_bytes(json.dumps(obj).encode())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"null",
        b"\"x\"",
        b"{",
        b'{"signed": {}, "signatures": []',
        b"\xff\xfe{}",
        "{}".encode("utf-16"),
        b'\xef\xbb\xbf{"signed": {}, "signatures": []}',
        b'{"signed": {"_type": "root", "x": NaN}, "signatures": []}',
        b'{"signed": {"_type": "root", "x": Infinity}, "signatures": []}',
        b'{"signed": {"_type": "root", "x": 1e5}, "signatures": []}',
        b'{"signed": {"_type": "root", "x": "\\ud800"}, "signatures": []}',
        b'{"signed": {"_type": "root", "x": ' + b"9" * 5000 + b"}, \"signatures\": []}",
        b"[" * 100000 + b"]" * 100000,
        b'{"signed": {"_type": "root", "x": ' + b"[" * 600 + b"]" * 600 + b'}, "signatures": []}',
    ],
    ids=lambda d: repr(d[:24]),
)
def test_not_metadata_json(data):
    with pytest.raises(DeserializationError):
        Metadata.from_bytes(data)


def test_non_bytes_input():
    with pytest.raises(DeserializationError):
        Metadata.from_bytes("{}")  # type: ignore[arg-type]


def test_duplicate_signature_keyid(repo):
    obj = json.loads(repo.role_bytes("root"))
    obj["signatures"].append(dict(obj["signatures"][0]))
    with pytest.raises(DeserializationError, match="duplicate"):
        Metadata.from_bytes(json.dumps(obj).encode())


def test_wrong_type_for_class(repo):
    with pytest.raises(DeserializationError):
        Root.from_dict(json.loads(repo.role_bytes("targets"))["signed"])


# --- dates and versions -----------------------------------------------------------


UTC = timezone.utc


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2030-01-02T03:04:05Z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2021-12-18T13:28:12.99008-06:00", datetime(2021, 12, 18, 19, 28, 12, 990080, tzinfo=UTC)),
        ("2021-12-18T13:28:12+05:30", datetime(2021, 12, 18, 7, 58, 12, tzinfo=UTC)),
        ("2021-12-18t13:28:12.1z", datetime(2021, 12, 18, 13, 28, 12, 100000, tzinfo=UTC)),
        ("1999-02-28T23:59:59.123456789+00:00", datetime(1999, 2, 28, 23, 59, 59, 123456, tzinfo=UTC)),
    ],
)
def test_expires_rfc3339(repo, text, expected):
    obj = json.loads(repo.role_bytes("root"))
    obj["signed"]["expires"] = text
    md = Metadata.from_bytes(json.dumps(obj).encode())
    assert md.signed.expires == expected
    assert md.signed.expires.utcoffset() == timedelta(0)
    # the original string is what was signed, so it is kept
    assert md.signed.to_dict()["expires"] == text


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1),
        timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-6)), timezone(timedelta(hours=5, minutes=30))]),
    )
)
def test_expires_hypothesis(when):
    text = when.isoformat()  # RFC 3339 with offset, fraction when non-zero
    parsed = metadata_module._parse_expires(text, "expires")
    assert parsed == when and parsed.tzinfo == timezone.utc


def test_is_expired_boundary(repo):
    md = Metadata.from_bytes(repo.role_bytes("root"))
    expires = md.signed.expires
    assert md.signed.is_expired(expires)
    assert not md.signed.is_expired(expires - timedelta(microseconds=1))


@pytest.mark.parametrize("spec", ["1.0", "1.0.0", "1.0.31", "1.2.3"])
def test_spec_version_accepted(repo, spec):
    obj = json.loads(repo.role_bytes("root"))
    obj["signed"]["spec_version"] = spec
    assert Metadata.from_bytes(json.dumps(obj).encode()).signed.spec_version == spec


# --- scale: lazy entries, canonicalize once ---------------------------------------


def _big_snapshot(n: int) -> bytes:
    meta = {f"bin-{i:04x}.json": tuf_md.MetaFile(i % 7 + 1) for i in range(n)}
    meta["targets.json"] = tuf_md.MetaFile(3)
    md = tuf_md.Metadata(tuf_md.Snapshot(meta=meta, expires=datetime(2090, 1, 1, tzinfo=timezone.utc)))
    md.sign(CryptoSigner.generate_ed25519())
    return md.to_bytes()


def test_snapshot_entries_built_only_on_lookup(monkeypatch):
    data = _big_snapshot(4096)
    built = []
    real = metadata_module._make_metafile
    monkeypatch.setattr(metadata_module, "_make_metafile", lambda raw, name: built.append(name) or real(raw, name))
    md = Metadata.from_bytes(data)
    assert built == []
    assert len(md.signed.meta) == 4097
    assert md.signed.meta_version("bin-0abc.json") == 0xABC % 7 + 1
    assert built == []
    assert md.signed.meta["bin-0abc.json"].version == 0xABC % 7 + 1
    assert built == ["bin-0abc.json"]
    md.signed.meta["bin-0abc.json"]
    assert built == ["bin-0abc.json"]  # cached


def test_target_entries_built_only_on_lookup(monkeypatch):
    r = RepoBuilder()
    for i in range(200):
        r.add_target(f"p/{i}", str(i).encode())
    r.publish()
    built = []
    real = metadata_module._make_targetfile
    monkeypatch.setattr(metadata_module, "_make_targetfile", lambda raw, path: built.append(path) or real(raw, path))
    md = Metadata.from_bytes(r.role_bytes("targets"))
    assert built == [] and len(md.signed.targets) == 200
    assert md.signed.targets["p/7"].length == 1
    assert built == ["p/7"]


def test_signed_part_canonicalized_once(repo, monkeypatch):
    """The canonical bytes come out of the one parsing pass: neither parsing
    nor verifying canonicalizes the signed part again."""
    calls = []
    real = metadata_module._backend.canonical_json
    monkeypatch.setattr(metadata_module._backend, "canonical_json", lambda obj: calls.append(1) or real(obj))
    root = Metadata.from_bytes(repo.role_bytes("root"))
    targets = Metadata.from_bytes(repo.role_bytes("targets"))
    root.verify_delegate("targets", targets)
    root.verify_delegate("root", root)
    assert calls == []
    theirs = tuf_md.Metadata.from_bytes(repo.role_bytes("targets"))
    assert targets.signed_bytes == theirs.signed_bytes


def test_big_snapshot_round_trip():
    data = _big_snapshot(2000)
    md = Metadata.from_bytes(data)
    theirs = tuf_md.Metadata.from_bytes(data)
    assert md.signed_bytes == theirs.signed_bytes
    assert md.to_bytes() == canonical(json.loads(data))


# --- target files and meta files ------------------------------------------------


def test_targetfile_from_data_matches_hashlib_and_python_tuf():
    data = b"hello world" * 1000
    algos = ["sha256", "sha512"]
    ours = TargetFile.from_data("d/f.txt", data, algos)
    theirs = tuf_md.TargetFile.from_data("d/f.txt", data, algos)
    assert ours.length == len(data)
    assert ours.hashes == {"sha256": hashlib.sha256(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}
    assert ours.to_dict() == theirs.to_dict()
    assert ours.get_prefixed_paths() == theirs.get_prefixed_paths()
    assert TargetFile.from_data("f", io.BytesIO(data), algos).hashes == ours.hashes
    assert TargetFile.from_data("f", data).hashes == {"sha256": hashlib.sha256(data).hexdigest()}


def test_targetfile_from_file(tmp_path):
    path = tmp_path / "t.bin"
    path.write_bytes(b"\x01\x02" * 3000)
    tf = TargetFile.from_file("t.bin", str(path), ["blake2b-256"])
    assert tf.hashes == {"blake2b-256": hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest()}
    assert tf.length == 6000


def test_get_prefixed_paths():
    tf = TargetFile(3, {"sha256": "aa" * 32, "sha512": "bb" * 64}, "dir/sub/name.tar.gz")
    assert tf.get_prefixed_paths() == ["dir/sub/" + "aa" * 32 + ".name.tar.gz", "dir/sub/" + "bb" * 64 + ".name.tar.gz"]
    assert TargetFile(3, {"sha256": "cc"}, "top").get_prefixed_paths() == ["cc.top"]


@pytest.mark.parametrize("wrap", [bytes, bytearray, io.BytesIO], ids=["bytes", "bytearray", "file"])
def test_verify_length_and_hashes(wrap):
    data = b"target content"
    tf = TargetFile.from_data("x", data, ["sha256", "sha512"])
    tf.verify_length_and_hashes(wrap(data))
    bad = [
        data + b"!",             # longer
        data[:-1],               # shorter
        data[:-1] + b"?",        # same length, other content
        b"",
    ]
    for other in bad:
        with pytest.raises(LengthOrHashMismatchError):
            tf.verify_length_and_hashes(wrap(other))
    tf.hashes["sha512"] = "00" * 64  # one good hash does not save a bad one
    with pytest.raises(LengthOrHashMismatchError):
        tf.verify_length_and_hashes(wrap(data))


def test_unknown_hash_algorithm_fails_closed():
    data = b"abc"
    tf = TargetFile(3, {"md5": hashlib.md5(data).hexdigest()}, "x")
    with pytest.raises(LengthOrHashMismatchError):
        tf.verify_length_and_hashes(data)
    mf = MetaFile(1, 3, {"sha256": hashlib.sha256(data).hexdigest(), "sha3-256": "00" * 32})
    with pytest.raises(LengthOrHashMismatchError):
        mf.verify_length_and_hashes(data)


def test_metafile_checks():
    data = b"snapshot bytes"
    MetaFile(1).verify_length_and_hashes(b"anything at all")
    MetaFile(1, len(data)).verify_length_and_hashes(data)
    MetaFile(1, len(data)).verify_length_and_hashes(io.BytesIO(data))
    with pytest.raises(LengthOrHashMismatchError):
        MetaFile(1, len(data) - 1).verify_length_and_hashes(data)
    with pytest.raises(LengthOrHashMismatchError):
        MetaFile(1, len(data) + 1).verify_length_and_hashes(io.BytesIO(data))
    digest = {"sha256": hashlib.sha256(data).hexdigest()}
    MetaFile(1, None, digest).verify_length_and_hashes(data)
    with pytest.raises(LengthOrHashMismatchError):
        MetaFile(1, None, digest).verify_length_and_hashes(data + b"x")
    mf = MetaFile.from_data(4, data, ["sha256"])
    assert (mf.version, mf.length, mf.hashes) == (4, len(data), digest)
    assert mf.to_dict() == tuf_md.MetaFile.from_data(4, data, ["sha256"]).to_dict()


def test_model_constructors_refuse_bad_values():
    for bad in (0, -1, True, "1"):
        with pytest.raises(ValueError):
            MetaFile(bad)
    with pytest.raises(ValueError):
        MetaFile(1, -1)
    with pytest.raises(ValueError):
        TargetFile(-1, {"sha256": "00"}, "x")
    with pytest.raises(ValueError):
        TargetFile(1, {}, "x")
    with pytest.raises(ValueError):
        Delegations({}, roles={"targets": DelegatedRole("targets", [], 1, False, paths=[])})
    with pytest.raises(ValueError):
        Delegations({})
    with pytest.raises(ValueError):
        DelegatedRole("d", [], 1, False, paths=["a"], path_hash_prefixes=["b"])
    with pytest.raises(ValueError):
        SuccinctRoles([], 1, 0, "bin")
    with pytest.raises(ValueError):
        SuccinctRoles([], 1, 33, "bin")


# --- delegation matching ---------------------------------------------------------

SEGMENT = st.text(alphabet="ab*?.[]!-", min_size=0, max_size=4)


@given(
    path=st.lists(st.text(alphabet="ab.-/", max_size=4), min_size=1, max_size=4).map("/".join),
    patterns=st.lists(st.lists(SEGMENT, min_size=1, max_size=4).map("/".join), min_size=1, max_size=3),
)
def test_paths_match_python_tuf(path, patterns):
    ours = DelegatedRole("d", [], 1, False, paths=patterns)
    theirs = tuf_md.DelegatedRole("d", [], 1, False, paths=patterns)
    assert ours.is_delegated_path(path) == theirs.is_delegated_path(path)


@pytest.mark.parametrize(
    "pattern,path,expected",
    [
        ("a/*", "a/b", True),
        ("a/*", "a/b/c", False),        # "*" does not cross "/"
        ("*", "a/b", False),
        ("a/*/c", "a/xyz/c", True),
        ("a/*.txt", "a/b.txt", True),
        ("a/*.txt", "a/b.TXT", False),   # case-sensitive
        ("a/b?", "a/bc", True),
        ("a/[bc]", "a/c", True),
        ("a/[!bc]", "a/c", False),
        ("/a", "a", False),
        ("a/", "a/", True),
        ("", "", True),
    ],
)
def test_paths_examples(pattern, path, expected):
    assert DelegatedRole("d", [], 1, False, paths=[pattern]).is_delegated_path(path) is expected


def test_path_hash_prefixes_and_neither():
    path = "some/target.tgz"
    digest = hashlib.sha256(path.encode()).hexdigest()
    assert DelegatedRole("d", [], 1, False, path_hash_prefixes=[digest[:3]]).is_delegated_path(path)
    assert DelegatedRole("d", [], 1, False, path_hash_prefixes=["zz", digest]).is_delegated_path(path)
    other = "0" if digest[0] != "0" else "1"
    assert not DelegatedRole("d", [], 1, False, path_hash_prefixes=[other]).is_delegated_path(path)
    assert not DelegatedRole("d", [], 1, False).is_delegated_path(path)
    assert not DelegatedRole("d", [], 1, False, paths=[]).is_delegated_path(path)


@given(bit_length=st.integers(1, 32), path=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_succinct_roles_match_python_tuf(bit_length, path):
    ours = SuccinctRoles([], 1, bit_length, "bin")
    theirs = tuf_md.SuccinctRoles([], 1, bit_length, "bin")
    name = ours.get_role_for_target(path)
    assert name == theirs.get_role_for_target(path)
    digest = hashlib.sha256(path.encode()).digest()
    index = int.from_bytes(digest[:4], "big") >> (32 - bit_length)
    assert int(name.split("-")[1], 16) == index
    assert ours.is_delegated_role(name)


@pytest.mark.parametrize("bit_length", [1, 4, 5, 8])
def test_succinct_get_roles(bit_length):
    ours = list(SuccinctRoles([], 1, bit_length, "pfx").get_roles())
    theirs = list(tuf_md.SuccinctRoles([], 1, bit_length, "pfx").get_roles())
    assert ours == theirs
    assert len(ours) == 2 ** bit_length and len(set(ours)) == len(ours)


def test_succinct_is_delegated_role():
    sr = SuccinctRoles([], 1, 8, "bin")
    assert sr.is_delegated_role("bin-00") and sr.is_delegated_role("bin-ff")
    for name in ["bin-100", "bin-0", "bin-FF", "bin-+1", "bin- 1", "bin-0x", "bin-", "bin00", "xbin-00", "bin--1"]:
        assert not sr.is_delegated_role(name), name
    sr5 = SuccinctRoles([], 1, 5, "b")  # 32 bins: b-00 .. b-1f
    assert sr5.is_delegated_role("b-1f") and not sr5.is_delegated_role("b-20")


def test_delegations_get_roles_for_target(repo):
    targets = Metadata.from_bytes(repo.role_bytes("targets")).signed
    theirs = tuf_md.Metadata.from_bytes(repo.role_bytes("targets")).signed
    for path in ["a/x", "c/y.txt", "zz", "a/b/c"]:
        assert list(targets.delegations.get_roles_for_target(path)) == list(theirs.delegations.get_roles_for_target(path))


def test_get_delegated_role_for_bins():
    r = RepoBuilder()
    names = r.add_succinct_roles("targets", 4, "bin")
    r.publish()
    targets = Metadata.from_bytes(r.role_bytes("targets"))
    bin_md = Metadata.from_bytes(r.role_bytes(names[3]))
    targets.verify_delegate(names[3], bin_md)
    with pytest.raises(UnsignedMetadataError):
        # a bin's metadata signed by a key the delegation does not trust
        other = RepoBuilder()
        targets.verify_delegate(names[3], Metadata.from_bytes(other.role_bytes("targets")))
    with pytest.raises(ValueError):
        targets.signed.get_delegated_role("bin-10")


# --- signing ------------------------------------------------------------------------


def test_ed25519_signer_matches_independent_tools():
    seed = bytes(range(32))
    signer = Ed25519Signer(seed)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.signer import SSlibKey

    private = Ed25519PrivateKey.from_private_bytes(seed)
    reference = SSlibKey.from_crypto(private.public_key())
    assert signer.public_key.keyid == reference.keyid
    assert signer.public_key.to_dict() == reference.to_dict()
    sig = signer.sign(b"message")
    assert bytes.fromhex(sig) == private.sign(b"message")
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer.public_key.keyval["public"])).verify(bytes.fromhex(sig), b"message")
    assert Ed25519Signer.generate().public_key.keyid != signer.public_key.keyid
    with pytest.raises(ValueError):
        Ed25519Signer(b"short")


def test_metadata_sign_verified_by_python_tuf():
    root_signer, ts_signer = Ed25519Signer.generate(), Ed25519Signer.generate()
    root = Root(expires=datetime(2090, 1, 1, tzinfo=timezone.utc))
    for name in ("root", "snapshot", "targets"):
        root.add_key(root_signer.public_key, name)
    root.add_key(ts_signer.public_key, "timestamp")
    root_md = Metadata(root)
    root_md.sign(root_signer)
    ts_md = Metadata(Timestamp(version=3, expires=datetime(2090, 1, 1, tzinfo=timezone.utc), snapshot_meta=MetaFile(2)))
    ts_md.sign(ts_signer)

    theirs_root = tuf_md.Metadata.from_bytes(root_md.to_bytes())
    theirs_root.verify_delegate("root", theirs_root)
    theirs_root.verify_delegate("timestamp", tuf_md.Metadata.from_bytes(ts_md.to_bytes()))
    # and tufc reads its own output back
    ours_root = Metadata.from_bytes(root_md.to_bytes())
    ours_root.verify_delegate("timestamp", Metadata.from_bytes(ts_md.to_bytes()))


def test_sign_append_and_replace():
    signers = [Ed25519Signer.generate() for _ in range(3)]
    md = Metadata(Targets(expires=datetime(2090, 1, 1, tzinfo=timezone.utc)))
    md.sign(signers[0])
    md.sign(signers[1], append=True)
    assert set(md.signatures) == {signers[0].public_key.keyid, signers[1].public_key.keyid}
    md.sign(signers[2])
    assert set(md.signatures) == {signers[2].public_key.keyid}


def test_sign_with_securesystemslib_signer():
    signer = CryptoSigner.generate_ed25519()
    root = Root(expires=datetime(2090, 1, 1, tzinfo=timezone.utc))
    root.add_key(metadata_module.Key.from_dict(signer.public_key.keyid, signer.public_key.to_dict()), "root")
    md = Metadata(root)
    md.sign(signer)
    md.verify_delegate("root", Metadata.from_bytes(md.to_bytes()))


def test_sign_after_edit_refreshes_signed_bytes(repo):
    signer = Ed25519Signer.generate()
    md = Metadata.from_bytes(repo.role_bytes("targets"))
    md.signed.version += 1
    md.sign(signer)
    assert md.signed_bytes == canonical(md.signed.to_dict())
    assert json.loads(md.signed_bytes)["version"] == md.signed.version


# --- real data: Sigstore --------------------------------------------------------


def _sigstore_files():
    base = shared_testdata("sigstore-root-signing")
    files = sorted((base / "root_history").glob("*.root.json"), key=lambda p: int(p.name.split(".")[0]))
    return files + [base / n for n in ("timestamp.json", "snapshot.json", "targets.json", "registry.npmjs.org.json")]


def test_sigstore_metadata_parses_and_canonicalizes():
    for path in _sigstore_files():
        data = path.read_bytes()
        md = Metadata.from_bytes(data)
        assert md.signed_bytes == canonical(json.loads(data)["signed"]), path.name
        assert md.to_dict() == json.loads(data), path.name


def test_sigstore_root_chain_signatures():
    files = _sigstore_files()[:15]
    roots = [Metadata.from_bytes(p.read_bytes()) for p in files]
    assert [r.signed.version for r in roots] == list(range(1, 16))
    assert roots[0].signed.expires == datetime(2021, 12, 18, 19, 28, 12, 990080, tzinfo=timezone.utc)
    assert roots[0].signed.consistent_snapshot is False and roots[5].signed.consistent_snapshot is True
    for prev, new in zip(roots, roots[1:]):
        prev.verify_delegate("root", new)
        new.verify_delegate("root", new)


# --- fuzz: any change to valid metadata parses or is a DeserializationError --------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, prefix + (i,))


@pytest.fixture(scope="module")
def fuzz_docs(repo):
    r = RepoBuilder(meta_hashes=True)
    r.add_succinct_roles("targets", 2, "bin")
    r.publish()
    docs = [json.loads(repo.role_bytes(role)) for role in ROLES] + [json.loads(r.role_bytes("targets"))]
    return [(doc, list(_paths(doc))) for doc in docs]


@given(data=st.data())
def test_fuzzed_metadata_never_raises_other_errors(fuzz_docs, data):
    doc, paths = data.draw(st.sampled_from(fuzz_docs))
    doc = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(paths[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON_VALUES)
    try:
        md = Metadata.from_bytes(json.dumps(doc).encode())
    except DeserializationError:
        return
    # what parsed must serialize back to what was parsed
    assert md.to_dict() == doc


@pytest.mark.parametrize(
    "bad",
    [None, "version", ["version"], {}, {"version": True}, {"version": 0}, {"version": -3}, {"version": "2"},
     {"version": 2.0}, {"version": 1, "length": -1}, {"version": 1, "hashes": {}}, {"length": 1}],
    ids=repr,
)
def test_bad_entry_in_version_only_snapshot(bad):
    obj = json.loads(_big_snapshot(300))
    obj["signed"]["meta"]["bin-0042.json"] = bad
    # floats are refused by the JSON reader already, before any field is seen
    named = "float" if "2.0" in repr(bad) else "bin-0042.json"
    with pytest.raises(DeserializationError, match=named):
        Metadata.from_bytes(json.dumps(obj).encode())
    obj["signed"]["meta"]["bin-0042.json"] = {"version": 5, "length": 0, "hashes": {"sha256": "ab"}}
    assert Metadata.from_bytes(json.dumps(obj).encode()).signed.meta["bin-0042.json"].length == 0


def _many_targets(n: int) -> dict:
    r = RepoBuilder()
    for i in range(n):
        r.add_target(f"t/{i}", str(i).encode())
    r.publish()
    return json.loads(r.role_bytes("targets"))


@pytest.mark.parametrize(
    "bad",
    [None, [], {}, {"length": 1}, {"hashes": {"sha256": "ab"}}, {"length": -1, "hashes": {"sha256": "ab"}},
     {"length": True, "hashes": {"sha256": "ab"}}, {"length": 1, "hashes": {}}, {"length": 1, "hashes": []},
     {"length": 1, "hashes": {"sha256": ""}}, {"length": 1, "hashes": {"sha256": "abc"}},
     {"length": 1, "hashes": {"sha256": "ab cd"}}, {"length": 1, "hashes": {"sha256": "ab\n\n"}},
     {"length": 1, "hashes": {"sha256": "gg"}}, {"length": 1, "hashes": {"sha256": "\u0660\u0661"}},
     {"length": 1, "hashes": {"sha256": 12}}, {"length": 1, "hashes": {"sha256": "ab", "sha512": "x"}}],
    ids=repr,
)
def test_bad_entry_among_many_targets(bad):
    obj = _many_targets(50)
    obj["signed"]["targets"]["t/7"] = bad
    with pytest.raises(DeserializationError, match="t/7"):
        Metadata.from_bytes(json.dumps(obj).encode())


def test_many_targets_with_custom_and_uppercase_hex():
    obj = _many_targets(20)
    obj["signed"]["targets"]["t/3"] = {"length": 0, "hashes": {"sha256": "AB" * 32}, "custom": {"x": 1}}
    md = Metadata.from_bytes(json.dumps(obj).encode())
    assert md.signed.targets["t/3"].custom == {"x": 1}
    assert md.signed_bytes == canonical(obj["signed"])


def test_from_file(repo, tmp_path):
    from tufc.exceptions import StorageError

    path = tmp_path / "root.json"
    path.write_bytes(repo.role_bytes("root"))
    assert Metadata.from_file(str(path)).signed_bytes == Metadata.from_bytes(repo.role_bytes("root")).signed_bytes
    with pytest.raises(StorageError):
        Metadata.from_file(str(tmp_path / "missing.json"))


def test_root_verification_result():
    r = RepoBuilder()
    r.rotate_keys("root", count=2, threshold=2)
    r.publish()
    v1 = Metadata.from_bytes(r.root_bytes(1)).signed
    v2_md = Metadata.from_bytes(r.root_bytes(2))
    v2 = v2_md.signed
    result = v2.get_root_verification_result(v1, v2_md.signed_bytes, v2_md.signatures)
    assert result and result.first and result.second
    assert result.signed == set(v1.roles["root"].keyids) | set(v2.roles["root"].keyids)
    assert not result.unsigned
    assert v1.get_root_verification_result(None, Metadata.from_bytes(r.root_bytes(1)))
    # drop one of the new root's signatures: the old threshold still holds
    del v2_md.signatures[v2.roles["root"].keyids[0]]
    partial = v2.get_root_verification_result(v1, v2_md)
    assert partial.first and not partial.second and not partial
    assert partial.unsigned == {v2.roles["root"].keyids[0]}
    with pytest.raises(ValueError):
        v2.get_root_verification_result(v2, v2_md)


# --- server-side editing and writing, as python-tuf does it ------------------------


def _delegating_targets(succinct: bool) -> dict:
    """A targets "signed" dict delegating to two roles (or to bins) with
    three keys, one of them shared by both roles."""
    keys = {f"k{i}": Ed25519Signer.generate().public_key for i in range(3)}
    if succinct:
        delegations = {
            "keys": {k: v.to_dict() for k, v in keys.items()},
            "succinct_roles": {"keyids": ["k0", "k1"], "threshold": 1, "bit_length": 4, "name_prefix": "bins"},
        }
    else:
        delegations = {
            "keys": {k: v.to_dict() for k, v in keys.items()},
            "roles": [
                {"name": "A", "keyids": ["k0", "k1"], "threshold": 1, "terminating": False, "paths": ["a/*"]},
                {"name": "B", "keyids": ["k1", "k2"], "threshold": 1, "terminating": True, "paths": ["b/*"]},
            ],
        }
    return {"_type": "targets", "spec_version": "1.0.31", "version": 1,
            "expires": "2090-01-01T00:00:00Z", "targets": {}, "delegations": delegations}


def _edit_outcome(signed, op, *args):
    try:
        getattr(signed, op)(*args)
    except ValueError:
        return "ValueError"
    return "ok"


@pytest.mark.parametrize("succinct", [False, True], ids=["roles", "succinct"])
def test_targets_add_and_revoke_key_match_python_tuf(succinct):
    signed_dict = _delegating_targets(succinct)
    ours = Targets.from_dict(copy.deepcopy(signed_dict))
    theirs = tuf_md.Targets.from_dict(copy.deepcopy(signed_dict))
    extra = Ed25519Signer.generate().public_key
    their_extra = tuf_md.Key.from_dict(extra.keyid, extra.to_dict())
    steps = [
        ("revoke_key", "k1", "A"),   # still used by B: stays in the key table
        ("revoke_key", "k1", "A"),   # not used by A any more
        ("revoke_key", "k1", "B"),   # last use: leaves the key table
        ("revoke_key", "k0", "C"),   # no such role
        ("revoke_key", "k0", None),
        ("revoke_key", "nope", "A"),
        ("add_key", extra, "B"),
        ("add_key", extra, "B"),     # added once
        ("add_key", extra, "C"),
        ("add_key", extra, None),
        ("revoke_key", extra.keyid, "B"),
    ]
    for op, first, role in steps:
        their_first = their_extra if first is extra else first
        got = _edit_outcome(ours, op, first, role)
        want = _edit_outcome(theirs, op, their_first, role)
        assert got == want, (op, first, role)
        assert canonical(ours.to_dict()) == canonical(theirs.to_dict()), (op, first, role)


def test_targets_key_edits_without_delegations():
    targets = Targets(expires=datetime(2090, 1, 1, tzinfo=timezone.utc))
    key = Ed25519Signer.generate().public_key
    with pytest.raises(ValueError):
        targets.add_key(key, "A")
    with pytest.raises(ValueError):
        targets.revoke_key(key.keyid, "A")
    with pytest.raises(ValueError, match="key comes first"):
        Targets.from_dict(_delegating_targets(False)).add_key("A", key)


@pytest.mark.parametrize("role", ["root", "targets", "role1"])
def test_to_bytes_and_to_file_with_python_tuf_serializers(repo, role, tmp_path):
    from securesystemslib.storage import FilesystemBackend
    from tuf.api.serialization.json import JSONSerializer

    data = repo.role_bytes(role)
    ours, theirs = Metadata.from_bytes(data), tuf_md.Metadata.from_bytes(data)
    for serializer in (JSONSerializer(), JSONSerializer(compact=True)):
        assert ours.to_bytes(serializer) == theirs.to_bytes(serializer)
    assert ours.to_bytes() == canonical(json.loads(data))

    ours.to_file(tmp_path / "plain.json")
    ours.to_file(str(tmp_path / "compact.json"), JSONSerializer(compact=True))
    ours.to_file(tmp_path / "backend.json", JSONSerializer(), FilesystemBackend())
    assert (tmp_path / "plain.json").read_bytes() == ours.to_bytes()
    assert (tmp_path / "compact.json").read_bytes() == theirs.to_bytes(JSONSerializer(compact=True))
    assert (tmp_path / "backend.json").read_bytes() == theirs.to_bytes(JSONSerializer())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backend.json", "compact.json", "plain.json"]
    assert Metadata.from_file(str(tmp_path / "compact.json")) == ours


def test_to_file_failure_is_storage_error_and_leaves_nothing(repo, tmp_path):
    from tufc.exceptions import StorageError

    md = Metadata.from_bytes(repo.role_bytes("targets"))
    with pytest.raises(StorageError):
        md.to_file(tmp_path / "missing-folder" / "targets.json")
    (tmp_path / "a-folder.json").mkdir()  # the rename onto a folder fails
    with pytest.raises(StorageError):
        md.to_file(tmp_path / "a-folder.json")
    assert [p.name for p in tmp_path.iterdir()] == ["a-folder.json"]
