"""load_metadata and EntryMap, on both cores.

Oracles: the stdlib json module (what the envelope must be), and
securesystemslib's encode_canonical (what the signed bytes must be), on
documents from hypothesis and from python-tuf (tests/repo_builder.py).
"""

from __future__ import annotations

import copy
import gc
import json
import pickle
import re
from collections.abc import Mapping
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner
from tuf.api import metadata as tuf_md
from tuf.api.serialization.json import CanonicalJSONSerializer

from tufc.exceptions import FormatError

from tests.repo_builder import RepoBuilder


def ssl_canonical(obj) -> bytes:
    return encode_canonical(obj).encode("utf-8")


def plain(env):
    """The envelope with its EntryMaps (only ever in "signed") as dicts."""
    if type(env) is not dict or type(env.get("signed")) is not dict:
        return env
    signed = {k: (v.to_dict() if hasattr(v, "rolled_back") else v) for k, v in env["signed"].items()}
    return {**env, "signed": signed}


def envelope(signed) -> bytes:
    return json.dumps({"signatures": [], "signed": signed}).encode()


def check_against_oracles(core, data: bytes):
    env, canonical = core.load_metadata(data)
    expected = json.loads(data)
    assert plain(env) == expected
    assert type(canonical) is bytes and canonical == ssl_canonical(expected["signed"])
    check_view(core, data, canonical)
    return env, canonical


def check_view(core, data: bytes, canonical: bytes) -> None:
    """load_metadata_view: the same envelope and bytes; a view of the input
    exactly when the input holds the canonical bytes verbatim."""
    env, signed = core.load_metadata_view(data)
    assert plain(env) == json.loads(data)
    assert bytes(signed) == canonical
    if type(signed) is memoryview:
        assert signed.readonly and signed.obj is data
    else:
        assert type(signed) is bytes and canonical not in data


# --- documents that must load --------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63 - 2, max_value=2**70) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    signed=st.dictionaries(TEXT, JSON, max_size=6),
    sort_keys=st.booleans(),
    ensure_ascii=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
)
def test_any_json_document_matches_json_and_securesystemslib(core, signed, sort_keys, ensure_ascii, indent):
    data = json.dumps(
        {"signed": signed, "signatures": [{"keyid": "k", "sig": "00"}]},
        sort_keys=sort_keys, ensure_ascii=ensure_ascii, indent=indent,
    ).encode()
    check_against_oracles(core, data)


ENTRY = st.fixed_dictionaries(
    {"version": st.integers(1, 2**80)},
    optional={"length": st.integers(0, 2**70), "hashes": st.dictionaries(TEXT, st.sampled_from(["ab", "00FF", "deadbeef"]), min_size=1, max_size=2), "x": JSON},
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=st.dictionaries(TEXT, ENTRY, max_size=20), sort_keys=st.booleans(), compact=st.booleans())
def test_snapshot_meta_becomes_a_sorted_entry_map(core, meta, sort_keys, compact):
    """``compact``: no whitespace, as canonical JSON and real snapshots, so
    entries of the usual shape take the native core's quick path."""
    signed = {"_type": "snapshot", "version": 1, "meta": meta}
    data = json.dumps(
        {"signed": signed, "signatures": []}, sort_keys=sort_keys, ensure_ascii=False,
        separators=(",", ":") if compact else None,
    ).encode()
    env, _ = check_against_oracles(core, data)
    entries = env["signed"]["meta"]
    assert isinstance(entries, core.EntryMap)
    assert list(entries) == sorted(meta) == entries.keys()
    assert len(entries) == len(meta)
    for name, entry in meta.items():
        assert name in entries
        assert entries[name] == entry
        assert entries.version(name) == entry["version"]
    assert entries.to_dict() == meta


def test_python_tuf_metadata_matches_oracles(core):
    repo = RepoBuilder()
    repo.add_target("a/b.txt", b"data", custom={"x": [1, "\u00e9"]})
    repo.add_delegation("targets", "role1", paths=["a/*"])
    repo.add_target("a/c.txt", b"more", role="role1")
    repo.add_succinct_roles("role1", 3, "bin")
    repo.publish()
    for role in ("root", "timestamp", "snapshot", "targets", "role1"):
        env, canonical = check_against_oracles(core, repo.role_bytes(role))
        # the signatures python-tuf made verify over these bytes
        md = tuf_md.Metadata.from_bytes(repo.role_bytes(role))
        assert canonical == CanonicalJSONSerializer().serialize(md.signed)


def _big_snapshot(n: int) -> bytes:
    meta = {f"bin-{i:04x}.json": tuf_md.MetaFile(i % 7 + 1) for i in range(n)}
    md = tuf_md.Metadata(tuf_md.Snapshot(meta=meta, expires=datetime(2090, 1, 1, tzinfo=timezone.utc)))
    md.sign(CryptoSigner.generate_ed25519())
    return md.to_bytes()


def test_big_python_tuf_snapshot(core):
    data = _big_snapshot(3000)
    env, _ = check_against_oracles(core, data)
    assert len(env["signed"]["meta"]) == 3000


@pytest.mark.parametrize("signed, canonical", [
    (b'{"a":1,"b":[true,null,"x"]}', True),
    (b'{"b":1,"a":2}', False),                 # members out of order
    (b'{"a":1, "b":2}', False),                # whitespace
    (b'{"a":"\\u0041"}', False),             # an escape canonical JSON drops
    (b'{"a":-0}', False),
    (b'{"a":{"c":1,"d":{"e":[1,2]}},"z":1}', True),
    (b'{"a":{"c":1,"d":{"e":[1,2]}},"z":1 }', False),   # differs at the last member
    (b'{"a":{"d":1,"c":2}}', False),           # differs only deep inside
    (b'{"a":"\\\\"}', True),                  # the two escapes canonical JSON keeps
    (b'{"a\\"":"x\\"y"}', True),
    (b'{"a":"\\\\","b":"\\u0041"}', False),   # ... then one it drops
])
@pytest.mark.parametrize("head", [b'{"signatures":[],"signed":', b'{"signed":'])
def test_the_view_is_a_span_of_canonical_input_only(core, signed, canonical, head):
    data = head + signed + (b"}" if head.endswith(b'"signed":') and b"signatures" in head
                            else b',"signatures":[]}')
    want = ssl_canonical(json.loads(signed))
    _, plain_bytes = core.load_metadata(data)
    assert plain_bytes == want
    _, view = core.load_metadata_view(data)
    assert bytes(view) == want
    if canonical:
        start = data.index(signed)
        assert type(view) is memoryview and view.obj is data
        if core.__name__.endswith("_tufc"):  # the pure core finds any equal span
            assert view == memoryview(data)[start:start + len(signed)]
    elif core.__name__.endswith("_tufc"):
        assert type(view) is bytes


def test_a_parsed_role_verifies_from_its_view():
    """Metadata keeps the view (of the active core); signed_bytes gives
    bytes when asked, and so do pickling and copying."""
    from tufc import metadata

    data = _big_snapshot(20)
    md = metadata.Metadata.from_bytes(data)
    assert type(md._signed_payload()) is memoryview
    for other in (pickle.loads(pickle.dumps(md)), copy.deepcopy(md), copy.copy(md)):
        assert type(other._signed_payload()) is bytes and other.signed_bytes == md.signed_bytes
    assert type(md.signed_bytes) is bytes and md.signed_bytes == ssl_canonical(json.loads(data)["signed"])


def test_an_input_over_4_gib_is_refused_before_parsing(core):
    """The native core keeps 32-bit offsets (half the memory for a big
    snapshot's entries); a longer input is refused, never truncated."""
    data = bytes(2**32 + 1)  # calloc'ed: no page is touched unless parsed
    with pytest.raises(FormatError, match="longer than 4 GiB"):
        core.load_metadata(data)


@pytest.mark.parametrize(
    "literal, canonical",
    [
        (b"-0", b"0"),
        (b"0", b"0"),
        (b"-12", b"-12"),
        (b"9" * 4300, b"9" * 4300),
        (b'"\\ud83d\\ude00"', '"\U0001F600"'.encode()),
        (b'"\\u0000\\n\\t\\/"', b'"\x00\n\t/"'),
        (b'"q\\"b\\\\"', b'"q\\"b\\\\"'),
        (b'"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"', b'"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"'),
        (b"[" * 510 + b"]" * 510, b"[" * 510 + b"]" * 510),  # 512 containers in all
    ],
    ids=lambda v: repr(v[:20]),
)
def test_edge_values(core, literal, canonical):
    data = b'{"signed": {"x": ' + literal + b'}, "signatures": []}'
    env, out = check_against_oracles(core, data)
    assert out == b'{"x":' + canonical + b"}"


def test_escaped_and_unsorted_keys(core):
    data = b'{"signed": {"\\u00e9": 1, "b": {"z": 1, "a\\"": 2}, "a": 3, "\\ud83d\\ude00": 4, "\\u0061b": 5}, "signatures": []}'
    check_against_oracles(core, data)


@pytest.mark.parametrize(
    "text",
    ["\u00e9" + "x" * 100, "line\n" + "y" * 80, "\"" + "z" * 40, "\\" * 30 + "w" * 30],
    ids=["non-ascii", "newline", "quote", "backslashes"],
)
def test_long_escaped_string_at_the_end(core, text):
    """Regression (loader fuzzing): the native core reserved twice a decoded
    string's length in the input-sized output buffer, so a long string with
    one escape near the end of the document raised SystemError."""
    data = json.dumps({"signatures": [], "signed": {"a": 1, "z": text}}).encode()
    check_against_oracles(core, data)
    with pytest.raises(FormatError):  # the truncated form fuzzing found
        core.load_metadata(b'{"signed":{"":"\\u99999999999999999type"')


# --- documents that must not load ----------------------------------------------

BAD = [
    b"",
    b" ",
    b"[]",
    b"null",
    b'"x"',
    b"{",
    b"{}",  # no "signed"
    b'{"signed": []}',
    b'{"signed": {}, "signatures": []} x',
    b'{"signed": {}, "signatures": []}{}',
    b'\xef\xbb\xbf{"signed": {}}',
    "{}".encode("utf-16"),
    b'{"signed": {"x": 1.0}}',
    b'{"signed": {"x": 1e5}}',
    b'{"signed": {"x": 1E5}}',
    b'{"signed": {"x": 1.}}',
    b'{"signed": {"x": -}}',
    b'{"signed": {"x": 01}}',
    b'{"signed": {"x": +1}}',
    b'{"signed": {"x": NaN}}',
    b'{"signed": {"x": Infinity}}',
    b'{"signed": {"x": -Infinity}}',
    b'{"signed": {"x": ' + b"9" * 4301 + b"}}",
    b'{"signed": {"x": -' + b"9" * 4301 + b"}}",
    b'{"signed": {"x": "\\ud800"}}',
    b'{"signed": {"x": "\\udc00"}}',
    b'{"signed": {"x": "\\ud800\\u0041"}}',
    b'{"signed": {"x": "\\ud800\\ud800"}}',
    b'{"signed": {}, "signatures": ["\\udfff"]}',  # outside "signed" too
    b'{"signed": {"\\ud800": 1}}',
    b'{"signed": {"x": "\\u12"}}',
    b'{"signed": {"x": "\\x41"}}',
    b'{"signed": {"x": "a\nb"}}',
    b'{"signed": {"x": "a\tb"}}',
    b'{"signed": {"x": "\xff"}}',
    b'{"signed": {"x": "\xc0\xaf"}}',  # overlong
    b'{"signed": {"x": "\xed\xa0\x80"}}',  # encoded surrogate
    b'{"signed": {"x": "\xf4\x90\x80\x80"}}',  # above U+10FFFF
    b'{"signed": {"x": "\xe2\x82"}}',  # truncated
    b'{"signed": {"x": "abc}}',
    b'{"signed": {"x": [1,]}}',
    b'{"signed": {"x": 1,}}',
    b'{"signed": {"x" 1}}',
    b'{"signed": {x: 1}}',
    b'{"signed": {"x": tru}}',
    b'{"signed": {"x": 1, "x": 2}}',
    b'{"signed": {"x": 1, "\\u0078": 2}}',
    b'{"signed": {"b": 1, "a": 2, "b": 3}}',
    b'{"signed": {}, "signed": {}}',
    b'{"signed": {}, "signatures": [{"a": 1, "a": 1}]}',
    b'{"signed": {"_type": "snapshot", "meta": {"a": {"version": 1}, "a": {"version": 1}}}}',
    b'{"signed": {"_type": "snapshot", "meta": {"a": {"version": 1, "version": 2}}}}',
    b'{"signed": {"x": ' + b"[" * 511 + b"]" * 511 + b"}}",  # 513 containers
    b'{"signed": {}, "signatures": ' + b"[" * 600 + b"]" * 600 + b"}",
    b"[" * 100000 + b"]" * 100000,
]


@pytest.mark.parametrize("data", BAD, ids=lambda d: repr(d[:40]))
def test_rejected(core, data):
    with pytest.raises(FormatError):
        core.load_metadata(data)


def test_float_message_says_float(core):
    with pytest.raises(FormatError, match="float"):
        core.load_metadata(b'{"signed": {"version": 2.0}}')


@pytest.mark.parametrize("data", ["{}", 3, None, ["x"]], ids=repr)
def test_non_bytes_is_type_error(core, data):
    with pytest.raises(TypeError):
        core.load_metadata(data)


@pytest.mark.parametrize("wrap", [bytearray, memoryview], ids=lambda w: w.__name__)
def test_bytes_like_input_is_kept_alive(core, wrap):
    buf = bytearray(_big_snapshot(50))
    env, _ = core.load_metadata(wrap(buf))
    entries = env["signed"]["meta"]
    buf[:] = b"x" * len(buf)  # the map indexes its own copy
    del buf, env
    gc.collect()
    assert entries["bin-0031.json"] == {"version": 0x31 % 7 + 1}


# --- the usual snapshot entry, "name":{"version":N} ------------------------------
# The native core records such entries in one step, and falls back to the
# general path for anything else; these are the edges of that shape.


def _compact_snapshot(entries: bytes) -> bytes:
    return b'{"signatures":[],"signed":{"_type":"snapshot","meta":{' + entries + b'},"version":1}}'


@pytest.mark.parametrize("entries", [
    b'"a.json":{"version":1}',
    b'"a.json":{"version":999999999999999999}',          # 18 digits: the most it takes
    b'"a.json":{"version":1000000000000000000}',         # 19: the general path
    b'"a.json":{"version":9999999999999999999}',         # ... which is past int64
    b'"a.json":{"version":123456789012345678901234567}',
    b'"a.json":{"version":1 }',
    b'"a.json":{ "version":1}',
    b'"a.json" :{"version":1}',
    b'"a.json":{"version" :1}',
    b'"a.json":{"version":1,"length":2}',
    b'"a.json":{"length":2,"version":1}',                 # out of order: rewritten
    b'"a.json":{"version":1,"hashes":{"sha256":"ab"}}',
    b'"a.json":{"version":1,"x":[1]}',
    b'"\\u0061.json":{"version":1}',                   # an escaped key
    b'"a\\\".json":{"version":3}',
    b'"\xc3\xa9.json":{"version":2}',                   # UTF-8 in a key
    b'"~ !#$%&()*+/;<=>?@[]^_`{|}.json":{"version":4}',  # every PLAIN punctuation
    b'"":{"version":1}',
    b'"b.json":{"version":2},"a.json":{"version":1}',     # unsorted entries
    b'"a.json":{"version":1},"b.json":{"version":2,"length":0},"c.json":{"version":3}',
    b'"a.json":{"version":1} , "b.json":{"version":2}',
    # keys stay in the input until one has an escape, then all move
    b'"a.json":{"version":1},"b.json":{"version":2},"\\u0063.json":{"version":3},"d.json":{"version":4}',
    b'"z.json":{"version":1},"y.json":{"version":2,"length":1},"\\u0061.json":{"version":3},"m.json":{"version":4}',
    b'"\\"":{"version":1},"a":{"version":2}',
])
def test_usual_entries_and_their_neighbours_load_as_json_says(core, entries):
    data = _compact_snapshot(entries)
    env, _ = check_against_oracles(core, data)
    meta = json.loads(data)["signed"]["meta"]
    assert env["signed"]["meta"].to_dict() == meta
    for name, entry in meta.items():
        assert env["signed"]["meta"].version(name) == entry["version"]


@pytest.mark.parametrize("entries, problem, marker", [
    (b'"a.json":{"version":01}', "expected ',' or '}'", b'1}'),
    (b'"a.json":{"version":1.5}', "floating point", b'.5'),
    (b'"a.json":{"version":1e3}', "floating point", b'e3'),
    (b'"a.json":{"version":0}', r"\.version", None),
    (b'"a.json":{"version":-1}', r"\.version", None),
    (b'"a.json":{"version":"1"}', r"\.version", None),
    (b'"a.json":{"versions":1}', "missing field 'version'", None),
    (b'"a\x01.json":{"version":1}', "control character", b'\x01'),
    (b'"a\xff.json":{"version":1}', "invalid UTF-8", b'\xff'),
    (b'"a.json":{"version":1},"a.json":{"version":2}', "duplicate key", None),
    (b'"a.json":{"version":1}"b.json":{"version":2}', "expected ',' or '}'", b'"b.json'),
])
def test_entries_near_the_usual_shape_are_refused_where_they_break(native, pure, entries, problem, marker):
    data = _compact_snapshot(entries)
    for core in (native, pure):
        with pytest.raises(FormatError, match=problem if core is native else None):
            core.load_metadata(data)
    if marker is not None:  # the native core names the offending byte
        with pytest.raises(FormatError, match=f"at byte {data.index(marker)}$"):
            native.load_metadata(data)


@pytest.mark.parametrize("cut", range(40, 75))
def test_a_usual_entry_cut_short_is_refused(native, pure, cut):
    data = _compact_snapshot(b'"a.json":{"version":1},"b.json":{"version":123}')[:cut]
    for core in (native, pure):
        with pytest.raises(FormatError):
            core.load_metadata(data)


# --- entry schemas ---------------------------------------------------------------


def _snapshot_with(entry) -> bytes:
    return envelope({"_type": "snapshot", "meta": {"a.json": {"version": 1}, "bad.json": entry, "z.json": {"version": 2}}})


def _targets_with(entry) -> bytes:
    good = {"length": 1, "hashes": {"sha256": "ab"}}
    return envelope({"_type": "targets", "targets": {"a": good, "bad": entry, "z": good}})


@pytest.mark.parametrize(
    "entry, problem",
    [
        (None, "expected an object"),
        ([], "expected an object"),
        ({}, "missing field 'version'"),
        ({"length": 1}, "missing field 'version'"),
        ({"version": True}, r"\.version"),
        ({"version": 0}, r"\.version"),
        ({"version": -1}, r"\.version"),
        ({"version": -(2**70)}, r"\.version"),
        ({"version": "1"}, r"\.version"),
        ({"version": 1, "length": -1}, r"\.length"),
        ({"version": 1, "length": None}, r"\.length"),
        ({"version": 1, "hashes": {}}, r"\.hashes"),
        ({"version": 1, "hashes": []}, r"\.hashes"),
        ({"version": 1, "hashes": {"sha256": "abc"}}, r"\.hashes"),
        ({"version": 1, "hashes": {"sha256": ""}}, r"\.hashes"),
        ({"version": 1, "hashes": {"sha256": "ab\n"}}, r"\.hashes"),
        ({"version": 1, "hashes": {"sha256": "\u0660\u0661"}}, r"\.hashes"),
        ({"version": 1, "hashes": {"sha256": 12}}, r"\.hashes"),
    ],
    ids=repr,
)
def test_bad_snapshot_entry_is_named(core, entry, problem):
    with pytest.raises(FormatError, match=r"snapshot\.meta\['bad\.json'\]" + ".*" + problem):
        core.load_metadata(_snapshot_with(entry))


@pytest.mark.parametrize(
    "entry, problem",
    [
        ("x", "expected an object"),
        ({"hashes": {"sha256": "ab"}}, "missing field 'length'"),
        ({"length": -1, "hashes": {"sha256": "ab"}}, r"\.length"),
        ({"length": False, "hashes": {"sha256": "ab"}}, r"\.length"),
        ({"length": 1}, "missing field 'hashes'"),
        ({"length": 1, "hashes": {}}, r"\.hashes"),
        ({"length": 1, "hashes": {"a": "ab", "b": "xy"}}, r"\.hashes"),
        ({"length": 1, "hashes": {"a": "ab", "b": None}}, r"\.hashes"),
    ],
    ids=repr,
)
def test_bad_target_entry_is_named(core, entry, problem):
    with pytest.raises(FormatError, match=r"targets\.targets\['bad'\]" + ".*" + problem):
        core.load_metadata(_targets_with(entry))


def test_entries_with_extra_fields_and_uppercase_hex_load(core):
    for data in (
        _snapshot_with({"version": 3, "length": 0, "hashes": {"sha256": "AbCd"}, "x": [1.5e0 if False else 1]}),
        _targets_with({"length": 0, "hashes": {"sha256": "AB"}, "custom": {"k": [None, True]}}),
    ):
        check_against_oracles(core, data)


def test_maps_only_for_their_role_type(core):
    weird = {"a": "not an entry"}
    for kind in ("root", "timestamp", "mirrors", 5):
        env, _ = check_against_oracles(core, envelope({"_type": kind, "meta": weird, "targets": weird}))
        assert type(env["signed"]["meta"]) is dict and type(env["signed"]["targets"]) is dict
    env, _ = check_against_oracles(core, envelope({"_type": "snapshot", "meta": {}, "targets": weird}))
    assert isinstance(env["signed"]["meta"], core.EntryMap) and type(env["signed"]["targets"]) is dict
    env, _ = check_against_oracles(core, envelope({"_type": "targets", "meta": weird, "targets": {}}))
    assert type(env["signed"]["meta"]) is dict and isinstance(env["signed"]["targets"], core.EntryMap)
    # a non-object "meta" is left for the metadata model to refuse
    env, _ = check_against_oracles(core, envelope({"_type": "snapshot", "meta": [1]}))
    assert env["signed"]["meta"] == [1]


# --- EntryMap ---------------------------------------------------------------------


def _meta(core, versions: dict):
    data = envelope({"_type": "snapshot", "meta": {k: {"version": v} for k, v in versions.items()}})
    return core.load_metadata(data)[0]["signed"]["meta"]


def test_entry_map_mapping_behaviour(core):
    m = _meta(core, {"b.json": 2, "a.json": 1, "\u00e9.json": 3})
    assert len(m) == 3
    assert list(m) == ["a.json", "b.json", "\u00e9.json"]
    assert m.keys() == ["a.json", "b.json", "\u00e9.json"]
    assert m.values() == [{"version": 1}, {"version": 2}, {"version": 3}]
    assert m.items()[0] == ("a.json", {"version": 1})
    assert "a.json" in m and "c.json" not in m and 5 not in m and "\ud800" not in m
    assert m.get("c.json") is None and m.get("c.json", 7) == 7 and m.get("a.json") == {"version": 1}
    with pytest.raises(KeyError):
        m["c.json"]
    with pytest.raises(KeyError):
        m[5]
    first = m["a.json"]
    first["version"] = 99  # a lookup hands out a fresh dict
    assert m["a.json"] == {"version": 1}
    assert dict(m) == {"a.json": {"version": 1}, "b.json": {"version": 2}, "\u00e9.json": {"version": 3}}
    assert m.version("b.json") == 2 and m.version("nope") is None
    assert copy.copy(m) is m and copy.deepcopy(m) is m
    assert pickle.loads(pickle.dumps(m)) == dict(m)
    assert "3" in repr(m)


def test_entry_map_is_a_mapping(core):
    """Regression (seen while writing the loader fuzz harness): the pure map,
    a collections.abc.Mapping, compared equal to a dict of its items and was
    unhashable; the native one compared by identity and was not a Mapping."""
    m = _meta(core, {"a.json": 1, "b.json": 2})
    same = _meta(core, {"b.json": 2, "a.json": 1})
    assert isinstance(m, Mapping)
    assert m == same and not (m != same)
    assert m == {"a.json": {"version": 1}, "b.json": {"version": 2}}
    assert m != {"a.json": {"version": 1}} and m != _meta(core, {"a.json": 1, "b.json": 3})
    assert m != [("a.json", {"version": 1}), ("b.json", {"version": 2})]  # not a Mapping
    with pytest.raises(TypeError):
        hash(m)


def test_entry_map_str_subclass_names(core):
    """Regression (seen while writing the loader fuzz harness, which now
    probes it): the native map looked up str subclasses
    by their characters, the pure one refused them; both now do as a dict
    does for a plain subclass, and ignore an overridden __eq__/__hash__."""

    class Plain(str):
        pass

    class Odd(str):
        def __eq__(self, other):
            return False

        def __hash__(self):
            return 0

    m = _meta(core, {"a.json": 1, "b.json": 2})
    for name in (Plain("b.json"), Odd("b.json")):
        assert name in m
        assert m[name] == {"version": 2} and m.get(name) == {"version": 2}
        assert m.version(name) == 2
    assert Plain("c.json") not in m and m.get(Odd("c.json")) is None


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ({}, {}, None),
        ({"a": 1}, {"a": 1}, None),
        ({"a": 1}, {"a": 2, "b": 1}, None),
        ({"a": 2}, {"a": 1}, "a"),
        ({"a": 1, "b": 5, "c": 1}, {"a": 1, "b": 4, "c": 0 + 1}, "b"),
        ({"a": 1, "b": 1}, {"b": 1}, "a"),
        ({"a": 1, "b": 1}, {"a": 1, "c": 1}, "b"),
        ({"a": 1, "z": 1}, {"a": 1, "m": 1}, "z"),
        ({"a": 2**70}, {"a": 2**70 + 1}, None),
        ({"a": 2**70 + 1}, {"a": 2**70}, "a"),
        ({"a": 2**70}, {"a": 5}, "a"),
        ({"a": 5}, {"a": 2**70}, None),
    ],
)
def test_rolled_back(core, old, new, expected):
    assert _meta(core, old).rolled_back(_meta(core, new)) == expected


def test_versions_only_on_meta(core):
    data = _targets_with({"length": 1, "hashes": {"s": "ab"}})
    targets = core.load_metadata(data)[0]["signed"]["targets"]
    with pytest.raises(TypeError):
        targets.version("a")
    with pytest.raises(TypeError):
        targets.rolled_back(targets)
    with pytest.raises(TypeError):
        _meta(core, {"a": 1}).rolled_back({"a": 1})


# --- both cores agree on hostile input --------------------------------------------


def _seed_documents() -> list[bytes]:
    repo = RepoBuilder()
    repo.add_target("a/b.txt", b"data", custom={"x": [1, "\u00e9\\\""]})
    repo.add_target("c", b"")
    repo.publish()
    docs = [repo.role_bytes(role) for role in ("root", "timestamp", "snapshot", "targets")]
    docs.append(_big_snapshot(5))
    docs.append(_compact_snapshot(  # the native core's quick path, to mutate
        b'"a.json":{"version":1},"b\\u0062.json":{"version":999999999999999999},'
        b'"c.json":{"version":12,"length":3},"d.json":{"version":1000000000000000000}'
    ))
    docs.append(b'{"signed": {"_type": "targets", "targets": {"\\u00e9": {"length": 1, "hashes": {"s": "ab"}}}, "x": ["\\ud83d\\ude00", -0, 12345678901234567890123]}, "signatures": []}')
    return docs


SEEDS = _seed_documents()
INTERESTING = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"-", b"0", b"1", b".", b"e", b" ", b"\\u", b"\\ud800", b"\xff", b"\xc3", b"\xed\xa0\x80", b"null", b'"version"', b'"length"', b'"hashes"']


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 3), st.integers(0, 8), st.sampled_from(INTERESTING) | st.binary(max_size=3)),
        min_size=1, max_size=4,
    ),
)
def test_cores_agree_on_mutated_metadata(native, pure, seed, edits):
    data = bytearray(seed)
    for where, how, span, piece in edits:
        at = int(where * len(data))
        if how == 0:
            data[at:at + span] = piece  # replace
        elif how == 1:
            data[at:at] = piece  # insert
        elif how == 2:
            del data[at:at + span]  # delete
        else:
            data[at:at + span] = bytes(reversed(data[at:at + span]))
    data = bytes(data)
    results = []
    for core in (native, pure):
        try:
            env, canonical = core.load_metadata(data)
        except FormatError:
            results.append("FormatError")
        else:
            results.append((plain(env), canonical))
    assert results[0] == results[1]
    if results[0] != "FormatError":
        assert results[0][0] == json.loads(data)
        assert results[0][1] == ssl_canonical(results[0][0]["signed"])


@pytest.mark.parametrize("length, at", [(16, 3), (16, 13), (18, 17)])
def test_digest_hex_check_every_character(core, length, at):
    """Each character in the word-at-a-time part and in the tail."""
    base = "0123456789abcdefAB"[:length]
    for code in range(1, 0x250):
        digest = base[:at] + chr(code) + base[at + 1:]
        data = json.dumps(
            {"signed": {"_type": "targets", "targets": {"x": {"length": 1, "hashes": {"s": digest}}}}},
            ensure_ascii=False,
        ).encode()
        expected = re.fullmatch("[0-9a-fA-F]+", digest) is not None
        try:
            core.load_metadata(data)
            loaded = True
        except FormatError:
            loaded = False
        assert loaded == expected, digest
