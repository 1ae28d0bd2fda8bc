"""canonical_json: byte-identical to securesystemslib, and fails closed.

The oracle is securesystemslib's ``encode_canonical`` (plus a few hand-built
expected strings where securesystemslib itself cannot go: deep nesting).
Every test runs on both cores through the ``core`` fixture.
"""

from __future__ import annotations

import collections
import enum
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from securesystemslib.formats import encode_canonical

from tests import fuzz_seeds
from tests.conftest import block_growth
from tufc.exceptions import FormatError


# the core fixtures are stateless modules: sharing them across examples is fine
FIXTURES_OK = [HealthCheck.function_scoped_fixture]


def reference(obj) -> bytes:
    return encode_canonical(obj).encode("utf-8")


# -- documents ---------------------------------------------------------------

# Text with every kind of character (hypothesis' text() leaves out lone
# surrogates), and text dense in the two escaped characters to exercise the
# encoders' clean-run copying at every offset.
any_text = st.text()
escape_dense = st.text(alphabet='ab"\\\n\t\x00\x7f\u00e9\u2028\U0001f600', max_size=40)
texts = st.one_of(any_text, escape_dense)
ints = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64,
                     10**1000, -(10**1000)]),
)
scalars = st.one_of(texts, ints, st.booleans(), st.none())
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(texts, children, max_size=6),
    ),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES_OK)
@given(documents)
def test_matches_securesystemslib(core, doc):
    assert core.canonical_json(doc) == reference(doc)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES_OK)
@given(documents)
def test_native_equals_pure(native, pure, doc):
    assert native.canonical_json(doc) == pure.canonical_json(doc)


@pytest.mark.parametrize(
    "doc, expected",
    [
        ({}, b"{}"),
        ([], b"[]"),
        ((), b"[]"),
        ("", b'""'),
        (True, b"true"),
        (False, b"false"),
        (None, b"null"),
        ([True, 1, False, 0], b"[true,1,false,0]"),
        ({"b": 1, "a": 2}, b'{"a":2,"b":1}'),
        ('a"b\\c', b'"a\\"b\\\\c"'),
        ("\n\t\x00\x1f", b'"\n\t\x00\x1f"'),  # control characters stay raw
        ("\u00e9\U0001f600", '"\u00e9\U0001f600"'.encode()),
        (-(2**200), str(-(2**200)).encode()),
    ],
)
def test_known_encodings(core, doc, expected):
    assert core.canonical_json(doc) == expected
    assert reference(doc) == expected


def test_keys_sorted_by_code_point(core):
    # UTF-16 order would put U+1F600 before U+FFFD; code point order is after.
    doc = {"\ufffd": 1, "\U0001f600": 2, "Z": 3, "a": 4, "\u00e9": 5, "": 6}
    out = core.canonical_json(doc)
    assert out == reference(doc)
    assert out.index("\ufffd".encode()) < out.index("\U0001f600".encode())


def test_unsorted_and_sorted_large_dicts(core):
    sorted_doc = {f"bins-{i:04x}.json": {"version": i} for i in range(5000)}
    reversed_doc = dict(reversed(list(sorted_doc.items())))
    assert core.canonical_json(sorted_doc) == reference(sorted_doc)
    assert core.canonical_json(reversed_doc) == reference(sorted_doc)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES_OK)
@given(
    prefix=st.text(alphabet="bins-/\x00\u00e9", max_size=20),
    suffixes=st.lists(st.text(alphabet="ab\x00\x7f\u00e9\U0001f600", max_size=12),
                      min_size=1, max_size=300, unique=True),
    order=st.sampled_from(["as drawn", "sorted", "reversed", "one moved", "interleaved"]),
)
def test_large_dicts_in_any_key_order(core, prefix, suffixes, order):
    # beyond the insertion-sort size: runs, merges, shared key prefixes,
    # keys that are prefixes of others, NUL bytes and non-ASCII
    keys = [prefix + s for s in suffixes]
    if order == "sorted":
        keys.sort()
    elif order == "reversed":
        keys.sort(reverse=True)
    elif order == "one moved":
        keys.sort()
        keys.append(keys.pop(0))
    elif order == "interleaved":
        keys.sort()
        keys = keys[::2] + keys[1::2]
    doc = {key: i for i, key in enumerate(keys)}
    assert core.canonical_json(doc) == reference(doc)


def test_long_strings(core):
    # longer than any initial buffer, escapes spread through it
    s = ("x" * 1000 + '"' + "\\" * 3 + "\u00e9") * 300
    doc = {"k" * 5000: [s, s]}
    assert core.canonical_json(doc) == reference(doc)


# -- subclasses ---------------------------------------------------------------


class Text(str):
    pass


class Number(int):
    pass


class Mapping(dict):
    pass


class Sequence(list):
    pass


class Color(enum.IntEnum):
    RED = 7


def test_plain_subclasses_like_securesystemslib(core):
    doc = Mapping(
        {
            Text("b"): Sequence([Number(5), Text('q"'), (Number(-3),)]),
            "a": collections.OrderedDict(z=1, y=2),
            "c": collections.namedtuple("Point", "x y")(1, 2),
        }
    )
    assert core.canonical_json(doc) == reference(doc)


def test_int_subclass_written_as_int_repr(core):
    class Loud(int):
        def __str__(self):
            return "loud"

        __repr__ = __str__

    assert core.canonical_json([Loud(12), Color.RED]) == b"[12,7]"


def test_str_subclass_written_as_its_value(core):
    class Odd(str):
        def __str__(self):
            return "other"

        def __lt__(self, other):
            raise AssertionError("user comparison must not run")

    doc = {Odd("b"): Odd("v"), Odd("a"): 1}
    assert core.canonical_json(doc) == b'{"a":1,"b":"v"}'


def test_duplicate_keys_from_str_subclass_rejected(core):
    class Twin(str):
        __hash__ = object.__hash__

        def __eq__(self, other):
            return self is other

    doc = {Twin("a"): 1, Twin("a"): 2}
    assert len(doc) == 2
    with pytest.raises(FormatError):
        core.canonical_json(doc)


# -- rejections ----------------------------------------------------------------


class Opaque:
    pass


@pytest.mark.parametrize(
    "doc",
    [
        1.0,
        float("nan"),
        [1, 2.5],
        {"a": 0.0},
        b"bytes",
        bytearray(b"x"),
        {"a"},
        frozenset(),
        object(),
        Opaque(),
        1j,
        {1: "int key"},
        {True: "bool key"},
        {None: "None key"},
        {(1,): "tuple key"},
        {b"k": "bytes key"},
        {"a": 1, 2: "mixed keys"},
        "\ud800",
        ["ok", "x\udfffy"],
        {"\udc80": 1},
        {"k": {"\ud800": 1}},
    ],
    ids=repr,
)
def test_rejected(core, doc):
    with pytest.raises(FormatError):
        core.canonical_json(doc)


def test_cycles_rejected(core):
    lst: list = []
    lst.append(lst)
    dct: dict = {}
    dct["self"] = dct
    deep: list = [[[]]]
    deep[0][0].append(deep)
    via_tuple: list = []
    via_tuple.append((via_tuple,))
    for doc in (lst, dct, deep, via_tuple, {"a": [dct]}):
        with pytest.raises(FormatError):
            core.canonical_json(doc)


def test_shared_but_acyclic_is_fine(core):
    shared = {"x": [1]}
    doc = [shared, shared, {"a": shared}]
    assert core.canonical_json(doc) == reference(doc)


def nested_lists(depth: int):
    doc: list = []
    for _ in range(depth - 1):
        doc = [doc]
    return doc


def nested_dicts(depth: int):
    doc: dict = {}
    for _ in range(depth - 1):
        doc = {"a": doc}
    return doc


def test_max_depth_value(core):
    assert core.MAX_DEPTH == 512


def test_depth_512_accepted(core):
    assert core.canonical_json(nested_lists(512)) == b"[" * 512 + b"]" * 512
    assert (
        core.canonical_json(nested_dicts(512))
        == b'{"a":' * 511 + b"{}" + b"}" * 511
    )
    mixed = nested_lists(256)
    for _ in range(256):
        mixed = {"k": mixed}
    assert core.canonical_json(mixed) == b'{"k":' * 256 + b"[" * 256 + b"]" * 256 + b"}" * 256


def test_depth_513_rejected(core):
    for doc in (nested_lists(513), nested_dicts(513), nested_lists(100_000)):
        with pytest.raises(FormatError):
            core.canonical_json(doc)


def test_depth_limit_is_on_containers_not_scalars(core):
    doc = nested_lists(511)
    inner = doc
    while inner:
        inner = inner[0]
    inner.append("scalar at depth 512")
    assert core.canonical_json(doc).count(b"[") == 511


has_digit_limit = pytest.mark.skipif(
    not hasattr(sys, "get_int_max_str_digits"), reason="no int digit limit"
)


@has_digit_limit
def test_int_at_digit_limit(core):
    limit = sys.get_int_max_str_digits()
    if limit == 0:
        pytest.skip("int digit limit disabled")
    big = 10 ** (limit - 1)  # exactly `limit` digits
    assert core.canonical_json([big, -big]) == f"[{big},{-big}]".encode()


@has_digit_limit
def test_int_beyond_digit_limit_rejected(core):
    limit = sys.get_int_max_str_digits()
    if limit == 0:
        pytest.skip("int digit limit disabled")
    with pytest.raises(FormatError):
        core.canonical_json({"n": 10**limit})


def test_error_leaves_no_partial_result(core):
    # the same encoder works normally right after a failure
    with pytest.raises(FormatError):
        core.canonical_json({"a": [1, 2, {"b": 1.5}]})
    assert core.canonical_json({"a": [1, 2]}) == b'{"a":[1,2]}'


# -- leaks ---------------------------------------------------------------------


def test_no_leak(core):
    doc = {
        "signed": {f"t{i}": {"hashes": {"sha256": "ab" * 32}, "length": i} for i in range(50)},
        "u": ["\u00e9" * 10, Text("x"), Number(2**70), None, True],
    }
    cyc: list = []
    cyc.append(cyc)
    bad = [{"a": 1}, {"b": [1, 2, 1.5]}, {1: 2}, "\ud800", cyc, nested_lists(600)]

    def run(n):
        for _ in range(n):
            core.canonical_json(doc)
            for b in bad:
                try:
                    core.canonical_json(b)
                except FormatError:
                    pass

    assert block_growth(run, 1000) < 100
    cyc.clear()


# -- fuzz seeds (fuzz/seeds/canonical), run without the fuzzer ------------------

@pytest.mark.parametrize("seed", fuzz_seeds.seeds("canonical"), ids=lambda p: p.name)
def test_fuzz_seed(seed):
    fuzz_seeds.harness("canonical_fuzz").check(seed.read_bytes())


def test_deep_caller_stack_still_format_error(pure):
    # The pure twin recurses once per level: from deep in the caller's own
    # recursion it must still refuse with FormatError, never RecursionError.
    def nest(n):
        if n:
            return nest(n - 1)
        return pure.canonical_json(nested_lists(512))

    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(700)
        with pytest.raises(FormatError):
            nest(400)
    finally:
        sys.setrecursionlimit(limit)


# -- real signed metadata: the signatures are the oracle --------------------------


def _sigstore_documents():
    """(name, document, keys, keyids, threshold) for every signed file."""
    import json

    from tests.conftest import shared_testdata

    folder = shared_testdata("sigstore-root-signing")
    out = []
    for path in sorted((folder / "root_history").iterdir()):
        doc = json.loads(path.read_bytes())
        role = doc["signed"]["roles"]["root"]
        out.append((path.name, doc, doc["signed"]["keys"], role["keyids"], role["threshold"]))
    root = json.loads((folder / "root.json").read_bytes())["signed"]
    for name in ("timestamp", "snapshot", "targets"):
        doc = json.loads((folder / f"{name}.json").read_bytes())
        role = root["roles"][name]
        out.append((name, doc, root["keys"], role["keyids"], role["threshold"]))
    targets = json.loads((folder / "targets.json").read_bytes())["signed"]
    delegations = targets["delegations"]
    for role in delegations["roles"]:
        doc = json.loads((folder / f"{role['name']}.json").read_bytes())
        out.append((role["name"], doc, delegations["keys"], role["keyids"], role["threshold"]))
    return out


def _ecdsa_key(keydict):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = keydict["keyval"]["public"]
    if public.startswith("-----BEGIN"):
        return serialization.load_pem_public_key(public.encode())
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(public))


def test_sigstore_signatures_verify_over_our_bytes(core):
    # Sigstore signed these files over securesystemslib-style canonical JSON
    # (ECDSA P-256): a threshold of them verifies only over the exact bytes.
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    for name, doc, keys, keyids, threshold in _sigstore_documents():
        signed_bytes = core.canonical_json(doc["signed"])
        assert signed_bytes == reference(doc["signed"]), name
        verified = set()
        for entry in doc["signatures"]:
            if entry["keyid"] not in keyids or not entry["sig"]:
                continue
            try:
                _ecdsa_key(keys[entry["keyid"]]).verify(
                    bytes.fromhex(entry["sig"]), signed_bytes, ec.ECDSA(hashes.SHA256())
                )
            except InvalidSignature:
                continue
            verified.add(entry["keyid"])
        assert len(verified) >= threshold, name
