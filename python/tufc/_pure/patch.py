"""A targets role's next version as bytes, in pure Python: the twin of
``_tufc.patch_targets`` (same checks, same order, same output; see
``_tufc/patch.c`` for why the publisher patches bytes)."""

from __future__ import annotations

import re
from typing import Sequence

from ..exceptions import FormatError
from .canonical import MAX_DEPTH

# a number or a literal: up to the next structural byte or whitespace
_SCALAR = re.compile(rb'[^,:{}\[\]" \t\n\r]+')
_CLOSE = {ord("{"): ord("}"), ord("["): ord("]")}
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_CONTROL = bytes(range(0x20))


class _Fail(Exception):
    def __init__(self, what: str, pos: int):
        self.what, self.pos = what, pos


def _unescape(raw: bytes) -> bytes:
    return raw.replace(b'\\"', b'"').replace(b"\\\\", b"\\") if b"\\" in raw else raw


def _escape(raw: bytes) -> bytes:
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class _Scanner:
    def __init__(self, data: bytes):
        self.s = data
        self.pos = 0

    def fail(self, what: str):
        raise _Fail(what, self.pos)

    def string(self) -> tuple:
        """(start, end) of a string's contents; pos past its closing quote."""
        s = self.s
        if self.pos >= len(s) or s[self.pos] != _QUOTE:
            self.fail("expected a string")
        i = start = self.pos + 1
        # The next '"' at or after i (len(s): none), kept until an escape
        # consumes it: finding it again after every escape is quadratic.
        q = -1
        while True:
            if q < i:
                q = s.find(b'"', i)
                if q < 0:
                    q = len(s)
            b = s.find(b"\\", i, q)
            if b >= 0:
                if b + 1 >= len(s) or s[b + 1] not in (_QUOTE, _BACKSLASH):
                    self.fail('not canonical JSON (an escape other than \\" or \\\\)')
                i = b + 2
                continue
            if q == len(s):
                self.fail("unterminated string")
            self.pos = q + 1
            return start, q

    def value(self) -> tuple:
        s = self.s
        stack = []
        start = self.pos
        while True:
            if self.pos >= len(s):
                self.fail("unexpected end of data")
            c = s[self.pos]
            if c == _QUOTE:
                self.string()
            elif c in _CLOSE:
                if len(stack) == MAX_DEPTH:
                    self.fail("nested too deeply")
                stack.append(_CLOSE[c])
                self.pos += 1
            elif c in b"}]":
                if not stack or stack[-1] != c:
                    self.fail("unbalanced brackets")
                stack.pop()
                self.pos += 1
            elif c in b",:":
                if not stack:
                    self.fail("expected a value")
                self.pos += 1
            elif c in b" \t\n\r":
                self.fail("not canonical JSON (whitespace)")
            else:
                self.pos = _SCALAR.match(s, self.pos).end()
            if not stack:
                return start, self.pos

    def key(self, prev: bytes | None) -> tuple:
        start, end = self.string()
        key = _unescape(self.s[start:end])
        if prev is not None and prev >= key:
            self.fail("not canonical JSON (keys out of order or repeated)")
        if self.pos >= len(self.s) or self.s[self.pos] != ord(":"):
            self.fail("expected ':'")
        self.pos += 1
        return start, end, key

    def next(self) -> bool:
        s = self.s
        if self.pos < len(s) and s[self.pos] == ord(","):
            self.pos += 1
            return True
        if self.pos < len(s) and s[self.pos] == ord("}"):
            self.pos += 1
            return False
        self.fail("expected ',' or '}'")


def _merge(sc: _Scanner, out: list, changes: list, absent: list) -> None:
    s = sc.s
    if sc.pos >= len(s) or s[sc.pos] != ord("{"):
        sc.fail("targets: expected an object")
    sc.pos += 1
    members = []
    more = True
    if sc.pos < len(s) and s[sc.pos] == ord("}"):
        sc.pos += 1
        more = False
    prev = None
    j = 0
    while True:
        if more:
            ks, ke, key = sc.key(prev)
            prev = key
            vs, ve = sc.value()
        while j < len(changes) and (not more or key > changes[j][0]):
            absent.append(j)
            if changes[j][1] is not None:
                members.append(_escape(changes[j][0]) + b":" + changes[j][1])
            j += 1
        if not more:
            break
        value = s[vs:ve]
        if j < len(changes) and key == changes[j][0]:
            value = changes[j][1]
            j += 1
        if value is not None:
            members.append(s[ks - 1:ke + 1] + b":" + value)
        more = sc.next()
    out.append(b"{" + b",".join(members) + b"}")


def _check_changes(changes) -> list:
    out = []
    for item in tuple(changes):
        if type(item) is not tuple or len(item) != 2:
            raise TypeError("changes must be (path, entry) tuples")
        path, entry = item
        if not isinstance(path, str):
            raise TypeError("a change's path must be a str")
        raw = path.encode("utf-8")
        if entry is not None:
            if type(entry) is not bytes:
                raise TypeError("a change's entry must be bytes or None")
            if len(entry) < 2 or entry[:1] != b"{" or entry[-1:] != b"}":
                raise ValueError("a change's entry must be the canonical JSON of an object")
        if out and out[-1][0] >= raw:
            raise ValueError("changes must be sorted by path, each path once")
        out.append((raw, entry))
    return out


def patch_targets(signed: bytes, version: int, expires: str, changes: Sequence) -> tuple:
    """``(new signed bytes, indices of changes the input did not hold,
    whether the output has a raw control character)``; see
    ``_tufc.patch_targets``."""
    if type(signed) is not bytes:
        raise TypeError("signed must be bytes")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError("version must be an int")
    if not 1 <= version < 1 << 63:
        raise ValueError("version must be 1 to 2**63 - 1")
    if not isinstance(expires, str):
        raise TypeError("expires must be a str")
    expires_raw = expires.encode("utf-8")
    checked = _check_changes(changes)
    sc = _Scanner(signed)
    absent: list = []
    try:
        out = _patch(sc, str(int(version)).encode(), expires_raw, checked, absent)  # int subclasses too
    except _Fail as exc:
        raise FormatError(f"signed: {exc.what} at byte {exc.pos}") from None
    return out, absent, len(out.translate(None, _CONTROL)) != len(out)


def _patch(sc: _Scanner, version: bytes, expires: bytes, changes: list, absent: list) -> bytes:
    s = sc.s
    if not s or s[0] != ord("{"):
        sc.fail("expected an object")
    sc.pos = 1
    out = []
    seen = set()
    more = True
    if len(s) > 1 and s[1] == ord("}"):
        sc.pos = 2
        more = False
    prev = None
    while more:
        ks, ke, key = sc.key(prev)
        prev = key
        raw_key = s[ks:ke]
        out.append(s[ks - 1:ke + 2])  # "key":
        if raw_key == b"targets":
            seen.add("targets")
            _merge(sc, out, changes, absent)
        else:
            vs, ve = sc.value()
            value = s[vs:ve]
            if raw_key == b"expires":
                if s[vs] != _QUOTE:
                    sc.fail("expires: expected a string")
                seen.add("expires")
                out.append(_escape(expires))
            elif raw_key == b"version":
                if not (value[:1] in b"123456789" and value[:1] and value.isdigit()):
                    sc.fail("version: expected an integer >= 1")
                seen.add("version")
                out.append(version)
            else:
                if raw_key == b"_type":
                    if value != b'"targets"':
                        sc.fail("_type: not a targets role")
                    seen.add("_type")
                out.append(value)
        out.append(b",")
        more = sc.next()
    if sc.pos != len(s):
        sc.fail("extra data after the object")
    for field in ("_type", "expires", "version", "targets"):
        if field not in seen:
            sc.fail(f"missing field '{field}'")
    if out:
        out.pop()  # the last ","
    return b"{" + b"".join(out) + b"}"
