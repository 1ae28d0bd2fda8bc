"""Differential fuzzing of canonical_json: native core, pure core, securesystemslib.

The fuzz input is decoded into a document (dicts, lists, tuples, text with
lone surrogates and escapes, huge ints, floats, bytes, non-str keys, deep
nesting) and encoded by all three.  The cores must agree on every input;
where they succeed, securesystemslib must give the same bytes; where
securesystemslib succeeds on a document within tufc's limits, the cores must
succeed too.

    python fuzz/canonical_fuzz.py fuzz/seeds/canonical -max_total_time=60

needs ``atheris``; the seed files also run as ordinary tests
(tests/test_canonical.py), without it.
"""

from __future__ import annotations

import sys

from securesystemslib.formats import encode_canonical

from tufc import _pure
from tufc.exceptions import FormatError

try:
    from tufc import _tufc as native
except ImportError:  # pure-only install: still fuzz the twin vs securesystemslib
    native = None


class _Reader:
    """Deterministic decoding of fuzz bytes into values."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def text(self) -> str:
        raw = self.take(self.byte() % 24)
        # invalid UTF-8 becomes lone surrogates: those must be refused
        return raw.decode("utf-8", "surrogateescape")

    def value(self, depth: int = 0):
        op = self.byte() % 13
        if op == 0 or depth > 600:
            return self.text()
        if op == 1:
            return int.from_bytes(self.take(self.byte() % 40), "big", signed=True)
        if op == 2:
            return (True, False, None)[self.byte() % 3]
        if op == 3:
            return self.byte() / 7
        if op == 4:
            return [self.value(depth + 1) for _ in range(self.byte() % 5)]
        if op == 5:
            return tuple(self.value(depth + 1) for _ in range(self.byte() % 5))
        if op == 6:
            doc = {}
            for _ in range(self.byte() % 5):
                key = self.text() if self.byte() % 8 else self.byte()
                doc[key] = self.value(depth + 1)
            return doc
        if op == 7:
            # deep nesting around the 512 limit
            n = 500 + self.byte() % 20
            doc = self.value(depth + n)
            for _ in range(n):
                doc = [doc] if self.byte() % 2 else {"k": doc}
            return doc
        if op == 8:
            return self.take(self.byte() % 8)
        if op == 9:
            return '"\\' * (self.byte() % 9) + self.text() + "\\"
        if op == 10:
            return 10 ** (self.byte() * 20)  # up to 5100 digits: past the limit
        if op == 11:
            return "\u00e9\U0001f600\n\x00" + self.text()
        return {self.text(): self.value(depth + 1), self.text(): self.value(depth + 1)}


def _outcome(encode, doc):
    try:
        return encode(doc)
    except FormatError:
        return FormatError


def _depth(doc) -> int:
    """Deepest nesting of containers (stops looking past 600)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            deepest = max(deepest, depth)
            if depth <= 600:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return deepest


def check(data: bytes) -> None:
    """One fuzz input; raises AssertionError on any disagreement."""
    doc = _Reader(data).value()
    pure = _outcome(_pure.canonical_json, doc)
    if native is not None:
        ours = _outcome(native.canonical_json, doc)
        assert ours == pure, (ours, pure)
    try:
        reference = encode_canonical(doc).encode("utf-8")
    except Exception:  # noqa: BLE001 - any refusal by the reference
        reference = None
    if pure is not FormatError:
        assert pure == reference, (pure, reference)
    elif reference is not None:
        # the reference accepted: only tufc's own limits may refuse
        assert _depth(doc) > 512, "refused a document the reference accepts"


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    sys.setrecursionlimit(10_000)  # the reference recurses; tufc does not need it
    atheris.Fuzz()


if __name__ == "__main__":
    main()
