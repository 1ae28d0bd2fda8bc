"""patch_targets: a targets role's next version as bytes.  The oracle is
securesystemslib's canonical encoder over the dict patched by hand; the
two cores must also agree on every malformed input, error for error."""

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from securesystemslib.formats import encode_canonical

from tufc.exceptions import FormatError
from tests.conftest import block_growth

FIXTURES_OK = [HealthCheck.function_scoped_fixture]
EXPIRES = "2031-02-03T04:05:06Z"

# keys and strings with what canonical JSON escapes, raw control characters
# and non-ASCII (no lone surrogates: no metadata can hold one)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
paths = st.one_of(text, st.sampled_from(['a"b', "a\\b", "\\", '"', "a", "ab", "é", "\x00", "\x7f"]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), text)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)), max_leaves=8)
entries = st.fixed_dictionaries(
    {"length": st.integers(0, 2**40), "hashes": st.dictionaries(
        st.sampled_from(["sha256", "blake2b-256"]), st.text("0123456789abcdef", min_size=2, max_size=8),
        min_size=1)},
    optional={"custom": st.dictionaries(text, values, max_size=3)})
extra_fields = st.dictionaries(
    st.sampled_from(["delegations", "spec_version", "x-custom", "A", "~"]), values, max_size=3)


def canonical(obj) -> bytes:
    return encode_canonical(obj).encode("utf-8")


def targets_role(targets, extra=None, version=3):
    signed = {"_type": "targets", "expires": "2030-01-01T00:00:00Z", "spec_version": "1.0.31",
              "targets": targets, "version": version}
    signed.update(extra or {})
    return signed


def expected(signed, version, changes):
    out = dict(signed, version=version, expires=EXPIRES, targets=dict(signed["targets"]))
    for path, entry in changes:
        if entry is None:
            out["targets"].pop(path, None)
        else:
            out["targets"][path] = json.loads(entry, strict=False)  # raw controls
    return canonical(out)


def as_changes(raw):
    """(path, entry bytes | None) sorted by UTF-8 path, each path once."""
    unique = {path: entry for path, entry in raw}
    return [(p, None if e is None else canonical(e))
            for p, e in sorted(unique.items(), key=lambda item: item[0].encode())]


@settings(suppress_health_check=FIXTURES_OK, max_examples=300)
@given(st.dictionaries(paths, entries, max_size=12), extra_fields,
       st.lists(st.tuples(paths, st.one_of(st.none(), entries)), max_size=12),
       st.integers(1, 2**63 - 1))
def test_matches_the_dict_patch_through_securesystemslib(native, pure, targets, extra, raw, version):
    signed = targets_role(targets, extra)
    changes = as_changes(raw)
    want_absent = [i for i, (path, _) in enumerate(changes) if path not in targets]
    want = expected(signed, version, changes)
    for core in (native, pure):
        control = any(b < 0x20 for b in want)
        assert core.patch_targets(canonical(signed), version, EXPIRES, changes) == (
            want, want_absent, control)


def test_a_bin_as_the_engine_writes_it(core):
    """load_metadata's canonical "signed" bytes are the engine's input."""
    targets = {f"packages/{i:02x}/p{i}-1.0.tar.gz": {"length": i, "hashes": {"sha256": "ab" * 32}}
               for i in range(150)}
    data = canonical({"signatures": [], "signed": targets_role(targets)})
    signed = core.load_metadata(data)[1]
    changes = as_changes([("packages/00/p0-1.0.tar.gz", None), ("packages/05/new.whl", {
        "length": 9, "hashes": {"blake2b-256": "cd" * 32}}), ("zzz/not-there", None)])
    out, absent, control = core.patch_targets(signed, 4, EXPIRES, changes)
    assert out == expected(targets_role(targets), 4, changes)
    assert absent == [1, 2] and not control
    assert core.load_metadata(b'{"signatures":[],"signed":' + out + b"}")[1] == out


def test_no_changes_renews(core):
    signed = canonical(targets_role({}))
    assert core.patch_targets(signed, 9, EXPIRES, []) == (expected(targets_role({}), 9, []), [], False)
    out, absent, _ = core.patch_targets(signed, 9, EXPIRES, [("a", None)])
    assert absent == [0] and out == expected(targets_role({}), 9, [])


def _mutations(signed: bytes):
    """Malformed variants of a valid role: truncations, single-byte edits,
    whitespace, escapes, reordered keys."""
    for cut in range(0, len(signed), 3):
        yield signed[:cut]
    for i in range(0, len(signed), 2):
        for b in (b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b" ", b"\x00", b"1"):
            yield signed[:i] + b + signed[i + 1:]
    yield signed + b" "
    yield signed + b"{}"
    yield signed.replace(b'"expires"', b'"expires" ')
    yield signed.replace(b'"1.0.31"', b'"1.0.\\u0033"')
    yield signed.replace(b'"_type":"targets"', b'"_type":"root"')
    yield signed.replace(b'"version":3', b'"version":03')
    yield signed.replace(b'"version":3', b'"version":-3')
    yield signed.replace(b'"version":3', b'"version":"3"')
    yield signed.replace(b'"expires":"2030-01-01T00:00:00Z"', b'"expires":1')
    yield signed.replace(b'"targets":{', b'"targets":[').replace(b"}},", b"}],", 1)
    for field in (b'"_type":"targets",', b'"expires":"2030-01-01T00:00:00Z",'):
        yield signed.replace(field, b"")
    yield signed.replace(b',"version":3', b"")
    yield b"{" + b'"zz":1,' + signed[1:]


def test_both_cores_refuse_the_same_malformed_inputs_alike(native, pure):
    targets = {'a"b': {"length": 1, "hashes": {"sha256": "ab"}},
               "b\\c": {"custom": {"x": [1, {"y": None}], "z": "\x01"}, "hashes": {"sha256": "cd"},
                        "length": 2}}
    signed = canonical(targets_role(targets))
    changes = as_changes([("b\\c", None), ("c", {"length": 3, "hashes": {"sha256": "ef"}})])
    outcomes = set()
    for variant in _mutations(signed):
        results = []
        for core in (native, pure):
            try:
                results.append(core.patch_targets(variant, 4, EXPIRES, changes))
            except FormatError as exc:
                results.append(("FormatError", str(exc)))
        assert results[0] == results[1], variant
        outcomes.add(results[0][0] == "FormatError")
    assert outcomes == {True, False}  # some variants are still patchable


@pytest.mark.parametrize("signed, message", [
    (b"", "expected an object at byte 0"),
    (b"[]", "expected an object at byte 0"),
    (b"{}", "missing field '_type'"),
    (b'{"_type":"targets"}', "missing field 'expires'"),
    (b'{"_type":"targets","expires":"x","version":1}', "missing field 'targets'"),
    (b'{"_type":"targets","expires":"x","targets":{},"version":0}', "version: expected an integer"),
    (b'{"_type":"targets","expires":"x","targets":{"b":{},"a":{}},"version":1}', "out of order"),
    (b'{"_type":"targets","expires":"x","targets":{"a":{},"a":{}},"version":1}', "repeated"),
    (b'{"_type":"targets","expires":"x","targets":{"a":{]},"version":1}', "unbalanced"),
    (b'{"_type":"targets","expires":"x\\n","targets":{},"version":1}', "an escape other than"),
    (b'{"_type":"targets","expires":"x","targets":{"a":[' + b"[" * 600, "nested too deeply"),
    (b'{"_type":"targets","expires":"x","targets":{"a":[\x00\x00', "unexpected end of data"),
    (b'{"_type":"targets","expires":"x","targets":{},"version":1}x', "extra data"),
    (b'{"_type":"targets","expires":"x","targets":{},"version":1', "expected ',' or '}'"),
])
def test_malformed_signed_is_a_format_error(core, signed, message):
    with pytest.raises(FormatError, match="signed: .*" + message.replace("(", r"\(")):
        core.patch_targets(signed, 2, EXPIRES, [("a", None)])


@pytest.mark.parametrize("args, exc", [
    (("x", 1, EXPIRES, []), TypeError),
    ((bytearray(b"{}"), 1, EXPIRES, []), TypeError),
    ((b"{}", 1.0, EXPIRES, []), TypeError),
    ((b"{}", True, EXPIRES, []), TypeError),
    ((b"{}", 0, EXPIRES, []), ValueError),
    ((b"{}", 2**63, EXPIRES, []), ValueError),
    ((b"{}", 1, b"x", []), TypeError),
    ((b"{}", 1, EXPIRES, None), TypeError),
    ((b"{}", 1, EXPIRES, [["a", None]]), TypeError),
    ((b"{}", 1, EXPIRES, [("a", None, 1)]), TypeError),
    ((b"{}", 1, EXPIRES, [(b"a", None)]), TypeError),
    ((b"{}", 1, EXPIRES, [("a", "{}")]), TypeError),
    ((b"{}", 1, EXPIRES, [("a", b"[]")]), ValueError),
    ((b"{}", 1, EXPIRES, [("a", b"{")]), ValueError),
    ((b"{}", 1, EXPIRES, [("b", None), ("a", None)]), ValueError),
    ((b"{}", 1, EXPIRES, [("a", None), ("a", None)]), ValueError),
    ((b"{}", 1, EXPIRES, [("\ud800", None)]), UnicodeEncodeError),
])
def test_wrong_arguments(core, args, exc):
    with pytest.raises(exc):
        core.patch_targets(*args)


@pytest.mark.parametrize("where", ["kept", "added", "expires"])
def test_a_raw_control_character_is_reported(core, where):
    kept = {"kept": {"custom": {"x": "a\x1fb" if where == "kept" else "ab"}, "hashes": {"sha256": "ab"},
                     "length": 1}}
    added = b'{"custom":{"y":"\n"},"hashes":{"sha256":"ab"},"length":1}' if where == "added" else None
    out, _, control = core.patch_targets(canonical(targets_role(kept)), 2,
                                         "2031\x7f\x00" if where == "expires" else EXPIRES,
                                         [("new", added)] if added else [])
    assert control is True and any(b < 0x20 for b in out)
    _, _, control = core.patch_targets(canonical(targets_role({})), 2, EXPIRES, [])
    assert control is False


def test_an_int_subclass_version_is_written_as_its_number(core):
    import enum

    class V(enum.IntEnum):  # str() of an IntEnum is its name before Python 3.11
        FIVE = 5

    out, _, _ = core.patch_targets(canonical(targets_role({})), V.FIVE, EXPIRES, [])
    assert out == expected(targets_role({}), 5, [])


@pytest.mark.parametrize("where", ["a kept entry", "an unterminated string"])
def test_a_long_run_of_escapes_is_scanned_in_linear_time(core, where):
    """Finding the closing quote again after every escape is quadratic: 0.8 MB
    of escapes took 1.4 s, so 4 MB would take about 35 s. One scan takes
    milliseconds (pure: under a second). The bound sits far from both."""
    import time

    run = "\\" * 2_000_000  # 4 MB of escaped backslashes: about 35 s if quadratic
    targets = {"a": {"length": 1, "hashes": {"sha256": "ab"}, "custom": {"x": run}}}
    signed = canonical(targets_role(targets))
    if where == "an unterminated string":
        signed = signed[:signed.index(run.encode()) + len(run)]
    changes = [("b", b'{"hashes":{"sha256":"ab"},"length":1}')]
    began = time.monotonic()
    if where == "a kept entry":
        out, absent, _ = core.patch_targets(signed, 4, EXPIRES, changes)
        assert absent == [0] and out == expected(targets_role(targets), 4, changes)
    else:
        with pytest.raises(FormatError, match="unterminated string"):
            core.patch_targets(signed, 4, EXPIRES, changes)
    assert time.monotonic() - began < 10


def test_changes_are_ordered_by_utf8_not_code_units(core):
    # U+FFFF sorts before U+10000 in UTF-8 and in code points alike; "é" after "z"
    signed = canonical(targets_role({}))
    changes = [("z", None), ("é", b'{"hashes":{"sha256":"ab"},"length":1}'), ("\uffff", None),
               ("\U00010000", None)]
    out, absent, _ = core.patch_targets(signed, 2, EXPIRES, changes)
    assert absent == [0, 1, 2, 3] and out == expected(targets_role({}), 2, changes)


def test_no_leak(native):
    signed = canonical(targets_role({"a": {"length": 1, "hashes": {"sha256": "ab"}}}))
    changes = [("a", None), ("b", b'{"hashes":{"sha256":"ab"},"length":1}')]

    def run(n):
        for _ in range(n):
            native.patch_targets(signed, 2, EXPIRES, changes)
            with pytest.raises(FormatError):
                native.patch_targets(signed[:-1], 2, EXPIRES, changes)
            with pytest.raises(ValueError):
                native.patch_targets(signed, 2, EXPIRES, changes[::-1])

    assert block_growth(run, 2000) < 200
