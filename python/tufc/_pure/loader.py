"""Pure-Python twin of the native metadata loader (``_tufc/loader.c``).

``load_metadata(data) -> (envelope, canonical bytes of envelope["signed"])``
with the native core's rules: RFC 8259 JSON in strict UTF-8, integers only
(at most ``MAX_INT_DIGITS`` digits), no duplicate keys, no lone surrogate
escapes (canonical JSON cannot write them), nesting at most ``MAX_DEPTH``
containers, a top-level object whose "signed" is an object.  A snapshot's
``meta`` and a targets role's ``targets`` become an ``EntryMap`` whose
entries were all checked against their schema at load.
"""

from __future__ import annotations

import json
import operator
import re
import sys
from collections.abc import Mapping
from itertools import chain
from typing import Any, Iterator

from ..exceptions import FormatError
from .canonical import MAX_DEPTH, canonical_json

__all__ = ["EntryMap", "MAX_INT_DIGITS", "load_metadata", "load_metadata_view"]

MAX_INT_DIGITS = 4300  # CPython's default int/str conversion limit
MAX_INPUT = 2**32 - 1

_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _bad(what: str) -> FormatError:
    return FormatError(f"not valid metadata JSON: {what}")


def _object(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _bad("duplicate key in object")
    return obj


def _reject_float(text: str) -> Any:
    raise _bad("floating point numbers are not allowed")


def _reject_constant(text: str) -> Any:
    raise _bad(f"{text} is not allowed")


def _int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS and len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _bad("integer literal too long")
    try:
        return int(text)
    except ValueError:  # over a lowered int/str digit limit
        raise _bad("integer literal too long") from None


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_float=_reject_float,
    parse_constant=_reject_constant,
)
# When int() does not itself stop at MAX_INT_DIGITS digits (Python < 3.11,
# or a changed sys.set_int_max_str_digits), each integer literal is checked.
_CHECKING_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_float=_reject_float,
    parse_constant=_reject_constant,
    parse_int=_int,
)


def _check_depth(root: dict) -> None:
    """At most MAX_DEPTH nested containers (json.loads allows ~1000)."""
    level: list = [root]
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise _bad("nesting too deep")
        dicts = [c for c in level if type(c) is dict]
        values = chain(chain.from_iterable(map(dict.values, dicts)),
                       chain.from_iterable(c for c in level if type(c) is list))
        level = [v for v in values if type(v) is dict or type(v) is list]
        depth += 1


def _check_strings(root: dict) -> None:
    """No lone surrogate in any key or string (json.loads lets them in)."""
    stack: list = [root]
    while stack:
        obj = stack.pop()
        if type(obj) is dict:
            if any(_SURROGATE.search(k) for k in obj):
                raise _bad("lone surrogate escape")
            values = obj.values()
        else:
            values = obj
        for value in values:
            kind = type(value)
            if kind is dict or kind is list:
                stack.append(value)
            elif kind is str and _SURROGATE.search(value):
                raise _bad("lone surrogate escape")


def load_metadata(data: Any) -> tuple[dict, bytes]:
    """Parse metadata bytes strictly; see the module docstring."""
    if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_INPUT:  # the native core's offsets are 32-bit
        raise _bad("longer than 4 GiB")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("invalid UTF-8") from None
    limit = getattr(sys, "get_int_max_str_digits", None)
    decoder = _DECODER if limit is not None and limit() == MAX_INT_DIGITS else _CHECKING_DECODER
    try:
        envelope = decoder.decode(text)
    except RecursionError:
        raise _bad("nesting too deep") from None
    except FormatError:  # from the hooks: already worded
        raise
    except ValueError as exc:  # JSONDecodeError
        raise _bad(str(exc)) from None
    if type(envelope) is not dict:
        raise _bad("the top level is not an object")
    if text.count("{") + text.count("[") > MAX_DEPTH:
        _check_depth(envelope)
    if _SURROGATE_ESCAPE.search(text) is not None:
        _check_strings(envelope)
    signed = envelope.get("signed")
    if type(signed) is not dict:
        raise FormatError(
            "metadata: missing field 'signed'" if "signed" not in envelope
            else "signed: expected an object"
        )
    canonical = canonical_json(signed)
    kind = signed.get("_type")
    if kind == "snapshot" and type(signed.get("meta")) is dict:
        signed["meta"] = EntryMap(signed["meta"], "m")
    elif kind == "targets" and type(signed.get("targets")) is dict:
        signed["targets"] = EntryMap(signed["targets"], "t")
    return envelope, canonical


def load_metadata_view(data: Any) -> tuple[dict, Any]:
    """``load_metadata``, but the canonical bytes of "signed" are a
    read-only memoryview of the input where the input holds them verbatim
    (as the native core returns them when "signed" is canonical there)."""
    envelope, canonical = load_metadata(data)
    source = data if type(data) is bytes else bytes(data)
    at = source.find(canonical)
    if at < 0:
        return envelope, canonical
    return envelope, memoryview(source)[at:at + len(canonical)]


# --- EntryMap ------------------------------------------------------------------


def _int_at_least(value: Any, minimum: int) -> bool:
    return type(value) is int and value >= minimum


def _hashes_ok(value: Any) -> bool:
    return type(value) is dict and bool(value) and all(
        type(d) is str and not len(d) % 2 and _HEX.match(d) for d in value.values()
    )


def _meta_problem(entry: Any) -> str | None:
    if type(entry) is not dict:
        return ": expected an object"
    if "version" not in entry:
        return ": missing field 'version'"
    if not _int_at_least(entry["version"], 1):
        return ".version: expected an integer >= 1"
    if "length" in entry and not _int_at_least(entry["length"], 0):
        return ".length: expected an integer >= 0"
    if "hashes" in entry and not _hashes_ok(entry["hashes"]):
        return ".hashes: expected a non-empty object of hex digests"
    return None


def _target_problem(entry: Any) -> str | None:
    if type(entry) is not dict:
        return ": expected an object"
    if "length" not in entry:
        return ": missing field 'length'"
    if not _int_at_least(entry["length"], 0):
        return ".length: expected an integer >= 0"
    if "hashes" not in entry:
        return ": missing field 'hashes'"
    if not _hashes_ok(entry["hashes"]):
        return ".hashes: expected a non-empty object of hex digests"
    return None


def _copy(value: Any) -> Any:
    """A fresh copy of parsed JSON (the native map builds a new one per lookup)."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return value


_get_version = operator.itemgetter("version")
_get_length = operator.itemgetter("length")
_get_hashes = operator.itemgetter("hashes")


def _all_version_only(entries: list) -> bool:
    """Every entry is exactly {"version": int >= 1}: the usual big snapshot,
    checked in C-level passes; False sends the caller entry by entry."""
    try:
        versions = list(map(_get_version, entries))
    except (KeyError, TypeError):
        return False
    if sum(map(len, entries)) != len(versions):  # some entry has more fields
        return False
    return not versions or (set(map(type, versions)) == {int} and min(versions) >= 1)


def _all_plain_targets(entries: list) -> bool:
    """Every entry has an int "length" >= 0 and non-empty "hashes" of hex
    strings (other fields free), checked in C-level passes."""
    if not entries:
        return True
    try:
        lengths = list(map(_get_length, entries))
        hashes = list(map(_get_hashes, entries))
    except (KeyError, TypeError):
        return False
    if set(map(type, lengths)) != {int} or min(lengths) < 0:
        return False
    if set(map(type, hashes)) != {dict} or min(map(len, hashes)) < 1:
        return False
    digests = list(chain.from_iterable(map(dict.values, hashes)))
    if set(map(type, digests)) != {str}:
        return False
    return all(map(_HEX.match, digests)) and not any(len(d) % 2 for d in digests)


def _as_name(name: object) -> str | None:
    """The plain str value of a str (subclass): looked up by its characters,
    as the native map does, whatever the subclass's __eq__ and __hash__."""
    return str.__str__(name) if isinstance(name, str) else None


class EntryMap(Mapping):
    """Read-only name -> entry dict map, sorted by name, every entry valid.

    ``kind`` is "m" (a snapshot's meta: the ``version``/``rolled_back``
    helpers work) or "t" (a targets role's targets).
    """

    __slots__ = ("_entries", "_names", "_kind")

    def __init__(self, entries: dict, kind: str):
        names = sorted(entries)
        bulk_ok = _all_version_only if kind == "m" else _all_plain_targets
        if not bulk_ok(list(entries.values())):
            problem_of = _meta_problem if kind == "m" else _target_problem
            where = "snapshot.meta" if kind == "m" else "targets.targets"
            for name in names:
                problem = problem_of(entries[name])
                if problem is not None:
                    raise FormatError(f"{where}[{name!r}]{problem}")
        self._entries = entries
        self._names = names
        self._kind = kind

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __contains__(self, name: object) -> bool:
        return _as_name(name) in self._entries

    def __getitem__(self, name: str) -> dict:
        key = _as_name(name)
        if key not in self._entries:
            raise KeyError(name)
        return _copy(self._entries[key])

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def keys(self) -> list:  # type: ignore[override]
        return list(self._names)

    def values(self) -> list:  # type: ignore[override]
        return [self[name] for name in self._names]

    def items(self) -> list:  # type: ignore[override]
        return [(name, self[name]) for name in self._names]

    def to_dict(self) -> dict:
        return {name: self[name] for name in self._names}

    def _check_meta(self) -> None:
        if self._kind != "m":
            raise TypeError("versions are read from a snapshot's meta only")

    def version(self, name: str) -> int | None:
        self._check_meta()
        entry = self._entries.get(_as_name(name))
        return None if entry is None else entry["version"]

    def rolled_back(self, newer: EntryMap) -> str | None:
        if type(newer) is not type(self):
            raise TypeError("rolled_back() needs another EntryMap")
        self._check_meta()
        newer._check_meta()
        new_entries = newer._entries
        for name in self._names:
            entry = new_entries.get(name)
            if entry is None or entry["version"] < self._entries[name]["version"]:
                return name
        return None

    def __reduce__(self) -> tuple:
        return (dict, (self.to_dict(),))

    def __copy__(self) -> EntryMap:
        return self

    def __deepcopy__(self, memo: Any) -> EntryMap:
        return self

    def __repr__(self) -> str:
        return f"<EntryMap of {len(self)} entries>"
