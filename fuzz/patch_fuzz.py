#!/usr/bin/env python3
"""Differential fuzzing of patch_targets: native core vs pure core vs a dict oracle.

An input is one of two kinds.

Raw (the first byte is not 0x01): the bytes up to the first ``FF FF`` are
``signed`` as they are (so a seed can be plain canonical JSON); the bytes
after it, the *tail*, choose ``version``, ``expires`` and ``changes`` (with
no tail: version 2, the fixed expiry and changes drawn from the names the
document holds).  Change paths come from a list of awkward names, from the
strings found in ``signed`` and from near misses of them (a NUL or a byte
appended, the last character dropped or bumped), so the merge meets equal,
adjacent and prefix keys.

Recipe (after a leading 0x01 byte): the bytes build a targets role -- keys
with quotes, backslashes, non-ASCII, control characters and NUL, keys that
sort next to each other or to "_type"/"expires"/"targets"/"version",
entries with nested custom values, sometimes nested to around MAX_DEPTH or
a role that is canonical but not a valid targets role -- encode it with
securesystemslib's ``encode_canonical``, then apply a few byte mutations
(none, most of the time), and decode the changes from what follows.

Both cores must give the same outcome: the same ``(bytes, absent, control)`` or the
same exception class and message -- FormatError (the byte it names
included), and TypeError/ValueError/UnicodeEncodeError from the argument
checks; anything else raised escapes and is a finding.  Where ``signed`` is
canonical JSON (``encode_canonical`` gives it back byte for byte) and the
arguments are valid, the oracle decides: a valid targets role (nesting
within MAX_DEPTH) must give the dict patched by hand through
``encode_canonical`` and the indices of the changes whose path it did not
hold; anything else must be a FormatError.

    python fuzz/patch_fuzz.py -dict=fuzz/json.dict CORPUS fuzz/seeds/patch -max_total_time=600

needs ``atheris``; the seeds also run as ordinary tests
(tests/test_fuzz_seeds.py), without it.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
import sys

from securesystemslib.formats import encode_canonical

from tufc import _pure
from tufc.exceptions import FormatError

try:
    from tufc import _tufc as native
except ImportError:  # pure-only install: the pure core against the oracle
    native = None

CORES = [core for core in (native, _pure) if core is not None]
MAX_DEPTH = _pure.MAX_DEPTH
EXPIRES = "2031-02-03T04:05:06Z"
SEPARATOR = b"\xff\xff"  # never in UTF-8 text


class _Int(int):
    """An int subclass (accepted: the value counts)."""


class _Enum(enum.IntEnum):
    V = 5


class _Str(str):
    """A str subclass (accepted: the characters count)."""


_NAMES = ["", "a", "b", "ab", "a/b.txt", "a\x00", "\x00", "\x01", "\x1f", "\x7f", '"', "\\", '\\"',
          '"\\', 'a"b', "a\\b", "a\\", "\u00e9", "e\u0301", "\uffff", "\U00010000", "\U0001f600",
          "_type", "expires", "targets", "version", "targets\x00", "target", "~", "zz" * 20]
# top-level keys next to the four the patch looks at, and around them
_EXTRA_KEYS = ["", "A", "_", "_a", "_typ", "_type\x00", "_typf", "delegations", "expire", "expires\x00",
               "expiret", "spec_version", "target", "targets\x00", "targetsa", "targett", "versio",
               "version\x00", "versioo", "x-custom", "~", '"', "\\", "\u00e9", "\x00"]
_VERSIONS = [1, 2, 3, 9, 10, 99, 2**31, 2**53 + 1, 2**63 - 2, 2**63 - 1, _Int(7), _Enum.V]
_BAD_VERSIONS = [0, -1, 2**63, 2**64, -(2**63), -(2**64), 10**30, True, False, 1.0, "1", b"1", None]
_EXPIRES = [EXPIRES, "", "x", 'a"b', "a\\b", '\\"', "\u00e9", "\U0001f600", "\x00", "\x01\x7f",
            "z" * 300, _Str(EXPIRES)]
_BAD_EXPIRES = ["\ud800", "a\udfff", b"x", None, 1]
_ENTRIES = [{"length": 1, "hashes": {"sha256": "ab"}},
            {"length": 0, "hashes": {"sha256": "ab" * 32, "sha512": "cd" * 64}},
            {"custom": {"x": [1, {"y": None}], "z": "\x01\"\\"}, "hashes": {"sha256": "cd"}, "length": 2},
            {}, {"": {}}, {"a": []}]
_BAD_ENTRIES = [b"", b"{", b"}", b"[]", b"{}x", b"x{}", b" {}", bytearray(b"{}"), "{}", 1, b"\"{}\""]
_MUTATION_BYTES = b'"\\{}[],: \x00\n10-a\xff\xc3'
_VALUE_WORDS = [None, True, False, 0, -1, 2**63, 10**20, "", "s", '"', "\\", "\x00", "\u00e9"]


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

    def pick(self, options):
        return options[self.byte() % len(options)]

    def raw(self, limit: int) -> bytes:
        raw = self.data[self.pos : self.pos + self.byte() % limit]
        self.pos += len(raw)
        return raw

    def text(self) -> str:
        if self.byte() % 3:
            return self.pick(_NAMES)
        return self.raw(12).decode("utf-8", "replace")

    def value(self, depth: int = 0) -> object:
        op = self.byte() % 8
        if depth > 3 or op < 4:
            return self.pick(_VALUE_WORDS) if op % 2 else self.text()
        if op < 6:
            return [self.value(depth + 1) for _ in range(self.byte() % 3)]
        return {self.text(): self.value(depth + 1) for _ in range(self.byte() % 3)}

    def deep(self) -> object:
        """A value nested around MAX_DEPTH (the limit counts each value alone)."""
        depth = self.pick([2, 50, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 1, 700])
        value = self.value(4)
        for i in range(depth):
            value = [value] if (i + self.byte()) % 2 else {self.pick(_NAMES[:4]): value}
        return value

    def entry(self) -> object:
        op = self.byte() % 8
        if op < 4:
            return self.pick(_ENTRIES)
        if op < 6:
            return {"length": self.pick([0, 1, 2**40]), "hashes": {"sha256": "ab"},
                    "custom": {self.text(): self.value() for _ in range(self.byte() % 3)}}
        if op == 6 and self.byte() % 4 == 0:
            return self.deep()
        return self.value()  # not an entry at all: the patch copies values as they are


def _near(name: str) -> list:
    """Names that sort right next to name."""
    out = [name, name + "\x00", name + "a", name[:-1]]
    if name:
        last = ord(name[-1])
        out += [name[:-1] + chr(last + 1) if last + 1 not in range(0xD800, 0xE000) and last < 0x10FFFF
                else name + "\x01",
                name[:-1] + chr(last - 1) if last and last - 1 not in range(0xD800, 0xE000) else name[:-1]]
    return out


_STRING = re.compile(rb'"((?:[^"\\]|\\.)*)"', re.S)


def _strings_in(signed: bytes) -> list:
    """The (unescaped) strings of a document, as text."""
    found = []
    for m in _STRING.finditer(signed[:4096]):
        raw = m.group(1).replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        found.append(raw.decode("utf-8", "replace"))
        if len(found) == 24:
            break
    return found


class _Args:
    """version, expires and changes as the tail chooses them.  ``build`` makes
    fresh objects each time (a generator of changes is used up by one core);
    ``valid`` says the argument checks must pass."""

    def __init__(self, r: _Reader, names: list):
        self.valid = True
        pool = list(dict.fromkeys(names)) + [n for name in names[:6] for n in _near(name)]
        if r.pos >= len(r.data):  # no tail: renew, and replace or remove a few names it holds
            self.version, self.expires, self.container = 2, EXPIRES, 0
            entry = encode_canonical(_ENTRIES[0]).encode("utf-8")
            chosen = sorted({n.encode("utf-8"): n for n in pool[:3]}.items())
            self.changes = [(n, None if i % 2 else entry) for i, (_, n) in enumerate(chosen)]
            return
        op = r.byte()
        if op % 16 == 15:
            self.version = self._bad(r.pick(_BAD_VERSIONS))
        else:
            self.version = 2 if op % 4 == 0 else r.pick(_VERSIONS)
        op = r.byte()
        if op % 16 == 15:
            self.expires = self._bad(r.pick(_BAD_EXPIRES))
        else:
            self.expires = EXPIRES if op % 4 == 0 else r.pick(_EXPIRES)
        changes = []
        for _ in range(r.byte() % 7):
            path = r.pick(pool) if pool and r.byte() % 4 else r.text()
            if r.byte() % 32 == 31:
                path = self._bad(r.pick([path + "\ud800", "\udc80" + path, path.encode("utf-8"), None, 1]))
            op = r.byte() % 16
            if op < 5:
                entry = None
            elif op < 13:
                value = r.entry()
                entry = encode_canonical(value if isinstance(value, dict) else {"v": value}).encode("utf-8")
            elif op < 15:
                entry = b"{" + r.raw(24) + b"}"  # braced: the only check an entry gets
            else:
                entry = self._bad(r.pick(_BAD_ENTRIES))
            changes.append((path, entry))
        if r.byte() % 16 != 15:  # sorted by UTF-8 path, each path once
            unique = {}
            for path, entry in changes:
                key = path.encode("utf-8", "surrogatepass") if isinstance(path, str) else repr(path).encode()
                unique.setdefault(key, (path, entry))
            changes = [unique[key] for key in sorted(unique)]
        elif len(changes) > 1:
            self.valid = False  # as drawn: unsorted, repeated, or sorted by chance
        self.changes = changes
        self.container = r.byte() % 32
        if self.container > 5:
            self.container = 0
        elif self.container > 2:
            self.bad_container = self._bad(r.pick([None, 1, b"ab", "ab", {"a": None}, [("a",)]]))

    def _bad(self, value):
        self.valid = False
        return value

    def changes_arg(self):
        items = list(self.changes)
        if self.container == 0:
            return items
        if self.container == 1:
            return tuple(items)
        if self.container == 2:
            return (item for item in items)
        if self.container == 3:
            return [list(item) for item in items] or [["a", None]]
        if self.container == 4:
            return [item + (None,) for item in items] or [("a", None, None)]
        return self.bad_container

    def build(self) -> tuple:
        return self.version, self.expires, self.changes_arg()


# --- the inputs ----------------------------------------------------------------------


def _role(r: _Reader) -> tuple:
    """A targets role (sometimes a canonical non-role) and its targets' names."""
    names = [r.text() for _ in range(r.byte() % 9)]
    if r.byte() % 4 == 0:  # keys that sort next to each other
        names += [n for n in _near(r.pick(names or _NAMES))[: 1 + r.byte() % 5]]
    targets = {name: r.entry() for name in names}
    signed = {"_type": "targets", "expires": "2030-01-01T00:00:00Z", "spec_version": "1.0.31",
              "targets": targets, "version": r.pick([1, 3, 2**63 - 1, 2**63, 10**25])}
    for _ in range(r.byte() % 4):
        signed[r.pick(_EXTRA_KEYS)] = r.deep() if r.byte() % 8 == 0 else r.value()
    op = r.byte() % 32  # an exhausted reader gives 0s: the valid role
    if op == 26:
        signed["_type"] = r.pick(["root", "Targets", "targets\x00", "", 1, None])
    elif op == 27:
        signed["expires"] = r.pick([1, None, [], {}, True])
    elif op == 28:
        signed["version"] = r.pick([0, -1, "3", None, True, [], -(2**70)])
    elif op == 29:
        signed["targets"] = r.pick([[], "x", None, 1, [{}]])
    elif op == 30:
        del signed[r.pick(["_type", "expires", "targets", "version"])]
    elif op == 31:
        signed = r.pick([{}, [], "targets", None, {"targets": {}}])
    return signed, list(targets)


def _mutate(data: bytes, r: _Reader) -> bytes:
    out = bytearray(data)
    for _ in range(max(0, r.byte() % 8 - 4)):
        at = (r.byte() << 8 | r.byte()) % (len(out) + 1)
        op = r.byte() % 6
        if op == 0 and out:
            out[min(at, len(out) - 1)] = r.pick(_MUTATION_BYTES)
        elif op == 1:
            out[at:at] = bytes([r.pick(_MUTATION_BYTES)])
        elif op == 2:
            del out[at : at + 1 + r.byte() % 8]
        elif op == 3:
            del out[at:]
        elif op == 4:
            out[at:at] = out[at : at + 1 + r.byte() % 16]
        else:
            out[at:at] = r.raw(8)
    return bytes(out)


def _decode(data: bytes) -> tuple:
    """(signed, _Args)"""
    if data[:1] == b"\x01":
        r = _Reader(data[1:])
        role, names = _role(r)
        signed = _mutate(encode_canonical(role).encode("utf-8"), r)
        return signed, _Args(r, names)
    signed, _, tail = data.partition(SEPARATOR)
    return signed, _Args(_Reader(tail), _strings_in(signed))


# --- running both cores and the oracle ----------------------------------------------


_ARG_ERRORS = (FormatError, TypeError, ValueError)  # UnicodeEncodeError is a ValueError


def _outcome(core, signed: bytes, args: _Args):
    try:
        return core.patch_targets(signed, *args.build())
    except _ARG_ERRORS as exc:
        return type(exc), str(exc)


@contextlib.contextmanager
def _deep_recursion():
    """The stdlib and securesystemslib recurse per nesting level."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _depth(value) -> int:
    """Containers around the deepest point of value (0 for a scalar)."""
    depth, level = 0, [value]
    while True:
        level = [c for c in level if isinstance(c, (dict, list))]
        if not level:
            return depth
        depth += 1
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c)]


def _canonical(data: bytes):
    """The document, if data is canonical JSON; else None."""
    try:
        doc = json.loads(data.decode("utf-8"), strict=False)
        if encode_canonical(doc).encode("utf-8") == data:
            return doc
    except Exception:  # not JSON, not canonical (floats), too big an int...
        pass
    return None


def _is_role(doc) -> bool:
    return (isinstance(doc, dict) and doc.get("_type") == "targets" and isinstance(doc.get("expires"), str)
            and type(doc.get("version")) is int and doc["version"] >= 1 and isinstance(doc.get("targets"), dict))


def _too_deep(doc: dict) -> bool:
    values = [v for k, v in doc.items() if k != "targets"] + list(doc["targets"].values())
    return any(_depth(v) > MAX_DEPTH for v in values)


def _oracle(signed: bytes, args: _Args):
    """The expected outcome: (bytes, absent, raw control character),
    FormatError, or None (no oracle)."""
    if not args.valid:
        return None
    entries = []
    for path, entry in args.changes:
        if entry is None:
            entries.append(None)
            continue
        value = _canonical(entry)
        if value is None:
            return None  # braced bytes the patch copies as they are
        entries.append(value)
    doc = _canonical(signed)
    if doc is None:
        return None  # the patch may accept what it does not rely on
    if not _is_role(doc) or _too_deep(doc):
        return FormatError
    targets = dict(doc["targets"])
    absent = [i for i, (path, _) in enumerate(args.changes) if path not in targets]
    for (path, _), value in zip(args.changes, entries):
        if value is None:
            targets.pop(path, None)
        else:
            targets[path] = value
    patched = dict(doc, version=int(args.version), expires=str.__str__(args.expires), targets=targets)
    out = encode_canonical(patched).encode("utf-8")
    return out, absent, any(b < 0x20 for b in out)


def check(data: bytes) -> None:
    """One fuzz input; raises AssertionError on any disagreement."""
    with _deep_recursion():
        signed, args = _decode(data)
        results = [_outcome(core, signed, args) for core in CORES]
        for other in results[1:]:
            assert other == results[0], (signed, args.build(), results[0], other)
        want = _oracle(signed, args)
    got = results[0]
    if want is FormatError:
        assert got[0] is FormatError, (signed, args.build(), "want FormatError", got)
    elif want is not None:
        assert got == want, (signed, args.build(), want, got)


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
