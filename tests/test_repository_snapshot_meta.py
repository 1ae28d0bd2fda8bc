"""SnapshotMeta keeps a snapshot's meta as canonical pieces: whatever the
entries hold, its bytes must be canonical JSON of the whole snapshot as
securesystemslib encodes it (the oracle), before and after updates."""

from __future__ import annotations

from hypothesis import given, strategies as st

from securesystemslib.formats import encode_canonical

from tufc import _backend
from tufc.repository.snapshot_meta import SnapshotMeta, snapshot_signed_bytes

# no control characters: canonical JSON leaves them raw, so no such
# snapshot can be read back (the engine's role names have none)
text = st.characters(blacklist_categories=("Cs", "Cc"))
names = st.text(text, min_size=1, max_size=12).map(lambda s: s + ".json")
scalars = st.one_of(st.integers(0, 10**6), st.text(text, max_size=6), st.booleans(), st.none())
entries = st.one_of(
    st.builds(lambda v: {"version": v}, st.integers(1, 10**9)),
    st.builds(lambda v, n: {"version": v, "length": n}, st.integers(1, 99), st.integers(0, 99)),
    st.builds(lambda v, h: {"version": v, "hashes": {"sha256": h}}, st.integers(1, 99),
              st.binary(min_size=1, max_size=8).map(bytes.hex)),
    st.builds(lambda v, x: {"version": v, "x-extra": x}, st.integers(1, 99), scalars),
)
extra_fields = st.dictionaries(st.sampled_from(["custom", "zz", "a"]), scalars, max_size=2)


def loaded(signed: dict):
    """What the engine has after reading a snapshot: the loader's signed
    dict (meta an EntryMap) and canonical bytes."""
    data = _backend.canonical_json({"signatures": [], "signed": signed})
    envelope, signed_bytes = _backend.load_metadata(data)
    return envelope["signed"], signed_bytes


@given(st.dictionaries(names, entries, min_size=1, max_size=20), extra_fields,
       st.dictionaries(names, st.integers(1, 10**9), max_size=5))
def test_pieces_are_canonical(meta, extra, changes):
    fields = {"_type": "snapshot", "expires": "2030-01-01T00:00:00Z", "spec_version": "1.0.31",
              "version": 3, **extra}
    signed = dict(fields, meta=meta)
    loaded_signed, signed_bytes = loaded(signed)
    sm = SnapshotMeta.load(loaded_signed, signed_bytes)
    assert snapshot_signed_bytes(fields, sm) == encode_canonical(signed).encode("utf-8")
    assert all(sm.version(n) == e["version"] for n, e in meta.items())
    after = sm.updated(changes)
    expected = dict(meta)
    for name, version in changes.items():
        expected[name] = {"version": version}
    assert snapshot_signed_bytes(fields, after) == encode_canonical(dict(fields, meta=expected)).encode("utf-8")
    assert sorted(after) == sorted(expected)
    assert all(after.version(n) == e["version"] for n, e in expected.items())
    assert sm.plain and after.plain  # no control characters generated here
    # the original is unchanged (publishes that fail leave the state as it was)
    assert snapshot_signed_bytes(fields, sm) == encode_canonical(signed).encode("utf-8")


def test_control_characters_are_tracked():
    """A name with an escaped control character (valid JSON) is canonical
    with the raw character: such a snapshot is not plain and must be
    written with escapes."""
    data = b'{"signatures":[],"signed":{"_type":"snapshot","expires":"2030-01-01T00:00:00Z",' \
           b'"meta":{"a\\u0001.json":{"version":1}},"spec_version":"1.0.31","version":1}}'
    envelope, signed_bytes = _backend.load_metadata(data)
    sm = SnapshotMeta.load(envelope["signed"], signed_bytes)
    assert not sm.plain and not sm.updated({"b.json": 2}).plain
    assert SnapshotMeta.new({"a.json": 1}).updated({"b.json": 2}).plain
    assert not SnapshotMeta.new({"a.json": 1}).updated({"c\x02.json": 2}).plain


def test_new_meta():
    sm = SnapshotMeta.new({"b.json": 2, "a.json": 1})
    assert sm.canonical() == b'{"a.json":{"version":1},"b.json":{"version":2}}'
    assert sm.version("b.json") == 2 and sm.version("c.json") is None and "a.json" in sm
