#!/usr/bin/env python3
"""Differential fuzzing of load_metadata and EntryMap: native core vs pure core.

An input is either raw metadata bytes (the seeds are real metadata and
hostile snippets; a NUL byte, which JSON cannot contain, splits it into two
documents so ``rolled_back`` compares two maps), or, after a leading 0x01
byte, a recipe for a snapshot/targets document with boundary values
(versions around 2**63, booleans, odd or non-hex digests, escaped and
duplicate names) written out with random escapes, whitespace and key order.

Both cores must give the same outcome: the same envelope and canonical bytes,
or both FormatError (UnsupportedAlgorithmError counts as itself); anything
else raised escapes and is a finding.  Every EntryMap is then exercised on
both cores (lookups of present and absent names, iteration, ``version``,
``rolled_back`` against the other document's map, pickling) and the answers
compared.  Where the cores accept, the stdlib json module and
securesystemslib are the oracles for the envelope and the canonical bytes.

    python fuzz/loader_fuzz.py -dict=fuzz/json.dict fuzz/seeds/loader -max_total_time=600

needs ``atheris``; the seeds also run as ordinary tests
(tests/test_fuzz_seeds.py), without it.
"""

from __future__ import annotations

import ctypes
import json
import pickle
import sys
from collections.abc import Mapping

from securesystemslib.formats import encode_canonical

from tufc import _pure
from tufc.exceptions import FormatError, UnsupportedAlgorithmError

try:
    from tufc import _tufc as native
except ImportError:  # pure-only install: the pure core against the oracles
    native = None

CORES = [core for core in (native, _pure) if core is not None]

# --- the recipe mode: documents built from fuzz bytes ------------------------------

_INTS = [0, 1, -1, 2, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 2, 2**63 - 1, 2**63, 2**64 - 1,
         2**64, 2**64 + 1, -(2**63), -(2**63) - 1, 10**30, -(10**30), 10**4299]
_NAMES = ["", "a", "b", "a/b.txt", "\u00e9", "\U0001f600", "\x00", "\\\"", "A", "a\x7f",
          "role1", "role1.json", "z" * 40]
_POSITIVE = [1, 2, 3, 2**31, 2**53 + 1, 2**63 - 2, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1, 10**30]
_GOOD_DIGESTS = ["ab", "AB", "0123456789abcdef0123456789ABCDEF", "00" * 64]
_DIGESTS = ["", "a", "ab", "AB", "0123456789abcdef", "0123456789abcdef0", "0g", "\u00e9\u00e9",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]


class _Reader:
    """Deterministic decoding of fuzz bytes into choices."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def pick(self, options: list):
        return options[self.byte() % len(options)]

    def text(self) -> str:
        if self.byte() % 2:
            return self.pick(_NAMES)
        raw = self.data[self.pos : self.pos + self.byte() % 12]
        self.pos += len(raw)
        return raw.decode("utf-8", "replace")

    def number(self) -> object:
        op = self.byte() % 8
        if op < 5:
            return self.pick(_INTS)
        if op == 5:
            return self.byte() - 3
        if op == 6:
            return self.pick([True, False, None, "1", 1.5, [], {}])
        return int.from_bytes(self.data[self.pos : self.pos + 9], "big")

    def hashes(self) -> object:
        op = self.byte() % 6
        if op == 0:
            return self.pick([{}, [], "ab", None])
        return {self.pick(["sha256", "sha512", "", "x"]): self.pick(_DIGESTS) if self.byte() % 4 else self.number()
                for _ in range(1 + self.byte() % 3)}

    def valid_entry(self, kind: object) -> dict:
        """An entry the schema accepts (or, rarely, a near miss)."""
        big = lambda: self.pick(_POSITIVE) if self.byte() % 4 else self.number()  # noqa: E731
        hashes = lambda: {self.pick(["sha256", "sha512"]): self.pick(_GOOD_DIGESTS)}  # noqa: E731
        if kind == "snapshot":
            entry = {"version": big()}
            if self.byte() % 3 == 0:
                entry.update(length=self.pick(_POSITIVE) - 1, hashes=hashes())
            return entry
        entry = {"length": self.pick(_POSITIVE) - 1, "hashes": hashes()}
        if self.byte() % 3 == 0:
            entry["custom"] = {"k": [self.text(), self.number()]}
        return entry

    def entry(self) -> object:
        if self.byte() % 16 == 0:
            return self.pick([None, [], "x", 1, True])
        entry = {}
        for _ in range(self.byte() % 5):
            field = self.pick(["version", "length", "hashes", "custom", "x", "version", "length"])
            entry[field] = self.hashes() if field == "hashes" else (
                {"k": [self.text()]} if field == "custom" else self.number())
        return entry

    def signed(self) -> dict:
        kind = self.pick(["snapshot", "targets", "snapshot", "targets", "root", 1, None])
        field = self.pick(["meta", "targets", "meta", "targets", "other"])
        entries = {self.text(): self.valid_entry(kind) if self.byte() % 4 else self.entry()
                   for _ in range(self.byte() % 6)}
        signed = {"_type": kind, field: entries, "version": self.number()}
        if self.byte() % 4 == 0:
            signed["spec_version"] = self.text()
        return signed


def _write(value, r: _Reader) -> str:
    """JSON text for value with fuzz-chosen escapes, spacing and key order."""
    space = lambda: " \t\n\r"[: r.byte() % 3]  # noqa: E731
    if isinstance(value, dict):
        items = list(value.items())
        if r.byte() % 3 == 0:
            items.reverse()
        if items and r.byte() % 23 == 22:
            items.append(items[0])  # a duplicate key
        body = ",".join(f"{space()}{_string(k, r)}{space()}:{space()}{_write(v, r)}" for k, v in items)
        return "{" + body + space() + "}"
    if isinstance(value, list):
        return "[" + ",".join(space() + _write(v, r) for v in value) + space() + "]"
    if isinstance(value, str):
        return _string(value, r)
    return json.dumps(value)


def _string(text: str, r: _Reader) -> str:
    out = []
    for char in text:
        how = r.byte() % 8
        if how == 0:
            if ord(char) > 0xFFFF:
                code = ord(char) - 0x10000
                out.append("\\u%04x\\u%04X" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)))
            else:
                out.append("\\u%04X" % ord(char))
        elif how == 1 and r.byte() % 8 == 7:
            out.append("\\ud83d")  # a lone surrogate
        else:
            out.append(json.dumps(char, ensure_ascii=False)[1:-1])
    return '"' + "".join(out) + '"'


def _recipe(data: bytes) -> list:
    r = _Reader(data)
    docs = []
    for _ in range(2):
        env = {"signatures": [], "signed": r.signed()}
        docs.append(_write(env, r).encode("utf-8"))
    return docs


# --- running both cores ------------------------------------------------------------


def _plain(env):
    """The envelope with its EntryMaps as dicts (they occur only in "signed")."""
    signed = env["signed"]
    return {**env, "signed": {k: (v.to_dict() if _is_map(v) else v) for k, v in signed.items()}}


def _is_map(value) -> bool:
    return type(value).__name__ == "EntryMap"


def _attempt(call):
    """A call's result, or the expected exception's class, or KeyError."""
    try:
        return call()
    except (FormatError, KeyError, TypeError) as exc:  # FormatError covers its subclass
        return type(exc)


def _load(core, data: bytes):
    try:
        env, canonical = core.load_metadata(data)
    except FormatError as exc:
        return type(exc), None
    return (_plain(env), canonical), env


def _maps(env) -> list:
    return [v for v in env["signed"].values() if _is_map(v)] if env is not None else []


class _Str(str):
    """A str subclass that compares and hashes unlike its characters."""

    def __eq__(self, other):
        return False

    def __hash__(self):
        return 0


def _probe_names(entry_map) -> list:
    names = list(entry_map)
    probes = names[:8] + [n + "\x00" for n in names[:2]] + [n[:-1] for n in names[:2]]
    probes += [_Str(n) for n in names[:2]] + ["\ud800", "a\udfff"]
    return probes + ["", "zzz", "\U0001f600", 1, None, b"a", ("a",)]


def _exercise(entry_map, other_maps: list) -> list:
    """Everything the EntryMap answers, as comparable values."""
    m = entry_map
    seen = [len(m), list(m), m.keys(), m.values(), m.items(), m.to_dict(), repr(m),
            pickle.loads(pickle.dumps(m)), _attempt(lambda: m.rolled_back(m)),
            isinstance(m, Mapping), m == m.to_dict(), m != m.to_dict(), m == {}, m == 1,
            _attempt(lambda: hash(m))]
    for name in _probe_names(m):
        seen += [name in m, _attempt(lambda: m[name]), _attempt(lambda: m.get(name)),
                 _attempt(lambda: m.get(name, 7)), _attempt(lambda: m.version(name))]
    for other in other_maps:
        seen += [m == other, m != other, m == other.to_dict(),
                 _attempt(lambda: m.rolled_back(other)), _attempt(lambda: other.rolled_back(m))]
    seen.append(_attempt(lambda: m.rolled_back({})))
    return seen


def _run(core, docs: list) -> list:
    loaded = [_load(core, doc) for doc in docs]
    outcomes = [outcome for outcome, _ in loaded]
    all_maps = [_maps(env) for _, env in loaded]
    for i, maps in enumerate(all_maps):
        others = [m for j, ms in enumerate(all_maps) if j != i for m in ms]
        outcomes += [_exercise(m, others) for m in maps]
    return outcomes


def _check_oracles(doc: bytes, outcome) -> None:
    if not isinstance(outcome, tuple):
        return
    envelope, canonical = outcome
    assert envelope == json.loads(doc), "envelope differs from json.loads"
    assert canonical == encode_canonical(envelope["signed"]).encode("utf-8"), "canonical bytes differ"


# --- load_metadata_view ---------------------------------------------------------------


class _PyBuffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
                ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p)]


_GetBuffer = ctypes.pythonapi.PyObject_GetBuffer
_GetBuffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_ReleaseBuffer = ctypes.pythonapi.PyBuffer_Release
_ReleaseBuffer.argtypes = [ctypes.POINTER(_PyBuffer)]


def _address(obj) -> int:
    """The address of the first byte an object's buffer exposes."""
    b = _PyBuffer()
    if _GetBuffer(obj, ctypes.byref(b), 0) != 0:
        raise RuntimeError("no buffer")
    try:
        return b.buf
    finally:
        _ReleaseBuffer(ctypes.byref(b))


_DECODER = json.JSONDecoder()


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def _signed_span(doc: bytes) -> tuple:
    """Byte offsets [start, end) of envelope["signed"]'s value in doc (an
    accepted document), found with the stdlib json scanner, not the cores."""
    text = doc.decode("utf-8")
    i = _skip(text, 0)
    assert text[i] == "{"
    i = _skip(text, i + 1)
    found = None
    if text[i] != "}":
        while True:
            i = _skip(text, i)
            key, i = json.decoder.scanstring(text, i + 1, True)
            i = _skip(text, i)
            assert text[i] == ":"
            i = _skip(text, i + 1)
            _, end = _DECODER.raw_decode(text, i)
            if key == "signed":
                found = (i, end)
            i = _skip(text, end)
            if text[i] == ",":
                i += 1
                continue
            assert text[i] == "}"
            break
    assert found is not None
    start, end = found
    b_start = len(text[:start].encode("utf-8"))
    return b_start, b_start + len(text[start:end].encode("utf-8"))


def _view_of(core, data):
    try:
        env, signed = core.load_metadata_view(data)
    except FormatError as exc:
        return type(exc), None
    return _plain(env), signed


def _check_views(doc: bytes) -> None:
    """load_metadata_view on every core against load_metadata and the input."""
    kinds = {}
    for core in CORES:
        name = "native" if core is native else "pure"
        want = _load(core, doc)[0]
        got_env, signed = _view_of(core, doc)
        if not isinstance(want, tuple):
            assert got_env is want, ("view: outcome differs from load_metadata", name, want, got_env)
            continue
        want_env, canonical = want
        assert got_env == want_env, ("view: envelope differs from load_metadata", name)
        assert type(signed) in (bytes, memoryview), ("view: result type", name, type(signed))
        assert bytes(signed) == canonical, ("view: bytes(view) != load_metadata bytes", name,
                                            bytes(signed), canonical)
        start, end = _signed_span(doc)
        in_place = doc[start:end] == canonical
        if type(signed) is memoryview:
            assert signed.readonly and signed.ndim == 1 and signed.format == "B" and signed.obj is doc, (
                "view: not a read-only byte view of the input", name)
            offset = _address(signed) - _address(doc)
            assert 0 <= offset <= len(doc) - len(signed) and doc[offset:offset + len(signed)] == canonical, (
                "view: does not point into the input at its bytes", name, offset)
            if core is native:
                assert offset == start and len(signed) == end - start, (
                    "view (native): view is not the span of signed's value", offset, len(signed), start, end)
        if core is native:
            assert (type(signed) is memoryview) == in_place, (
                "view (native): memoryview exactly when signed is canonical in place",
                type(signed).__name__, in_place, doc[start:end], canonical)
        # other buffer types: the same answer, and the view outlives changes to the input
        for wrap in (bytearray, memoryview):
            mutable = wrap(bytearray(doc)) if wrap is memoryview else wrap(doc)
            env2, signed2 = _view_of(core, mutable)
            assert env2 == want_env and type(signed2) is type(signed) and bytes(signed2) == canonical, (
                "view: differs for a", wrap.__name__, "input", name, type(signed2))
            mutable[:] = b"\x00" * len(doc)
            assert bytes(signed2) == canonical, ("view: changes with its", wrap.__name__, "input", name)
        kinds[name] = (type(signed), in_place, canonical)
    if len(kinds) == 2 and kinds["native"][0] is not kinds["pure"][0]:
        n_type, in_place, canonical = kinds["native"]
        assert n_type is bytes and kinds["pure"][0] is memoryview and canonical in doc and not in_place, (
            "view: the cores' types differ though the canonical bytes are not only elsewhere",
            n_type.__name__, kinds["pure"][0].__name__, in_place)


def check(data: bytes) -> None:
    """One fuzz input; raises AssertionError on any disagreement."""
    if data[:1] == b"\x01":
        docs = _recipe(data[1:])
    else:
        docs = data.split(b"\x00", 1)
    results = [_run(core, docs) for core in CORES]
    for other in results[1:]:
        assert other == results[0], (results[0], other)
    for doc, outcome in zip(docs, results[0]):
        if outcome is not UnsupportedAlgorithmError:
            _check_oracles(doc, outcome)
    for doc in docs:
        _check_views(doc)


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    sys.setrecursionlimit(10_000)  # the oracles recurse on deep documents
    atheris.Fuzz()


if __name__ == "__main__":
    main()
