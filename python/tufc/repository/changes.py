"""Repository changes: a target to add (path, length, hashes, custom) or a
path to remove, validated before anything is enqueued.

A target's entry is kept as the canonical JSON of its TUF target object
(``{"custom":..., "hashes":..., "length":...}``): that is what the queue
stores and what the bin will hold, byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .. import _backend
from ..exceptions import FormatError, InvalidChangeError

__all__ = ["Target", "Change", "target_entry", "check_path", "normalize_targets",
           "normalize_removals", "HASH_LENGTHS"]

# hex digest lengths of the algorithms tufc can verify (fail closed on others)
HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128, "blake2b-256": 64, "blake2b": 128}
MAX_PATH = 4096
_DIGEST = {name: re.compile(f"[0-9a-f]{{{n}}}\\Z").match for name, n in HASH_LENGTHS.items()}
# control characters, backslashes, and empty, "." or ".." segments (which
# also catches a leading or trailing "/") have no place in a target path
_BAD_CHAR = re.compile(r"[\x00-\x1f\x7f\\]").search
# the canonical JSON of a target entry without custom whose hashes are all
# known algorithms with well-formed digests, their names strictly increasing
# (canonical order, no repeats): the common case, checked in one match
# (anything else takes the field-by-field path, which says what is wrong)
def _plain_entry_pattern() -> bytes:
    pairs = [b'"%s":"[0-9a-f]{%d}"' % (name.encode(), HASH_LENGTHS[name])
             for name in sorted(HASH_LENGTHS, key=str.encode)]
    # a non-empty subsequence of the sorted names: choose the first, then
    # each later one may follow, in order
    firsts = [pair + b"".join(b"(?:,%s)?" % later for later in pairs[i + 1:])
              for i, pair in enumerate(pairs)]
    return rb'\{"hashes":\{(?:%s)\},"length":(?:0|[1-9][0-9]*)\}\Z' % b"|".join(firsts)


PLAIN_ENTRY = re.compile(_plain_entry_pattern()).match


def _bad_segment(path: str) -> bool:
    """An empty, "." or ".." segment (also a leading or trailing "/")."""
    return ("//" in path or path[0] == "/" or path[-1] == "/" or "/./" in path or "/../" in path
            or path.startswith(("./", "../")) or path.endswith(("/.", "/..")) or path in (".", ".."))


class Target(NamedTuple):
    """A target file to publish: what Warehouse stores for every file."""

    path: str
    length: int
    hashes: Mapping[str, str]
    custom: Mapping[str, Any] | None = None


class Change(NamedTuple):
    """One queued change: ``op`` is "add" (with the canonical ``entry``) or
    "remove" (``entry`` is None)."""

    op: str
    path: str
    entry: bytes | None


def check_path(path: Any) -> str:
    """``path`` if it is a valid target path, else InvalidChangeError.

    Relative, "/"-separated, no empty, "." or ".." segments, no control
    characters or backslashes, at most 4096 characters, encodable as UTF-8:
    a path no client can resolve outside the targets base URL.
    """
    if type(path) is not str and not isinstance(path, str):
        raise InvalidChangeError(f"a target path must be a str, not {type(path).__name__}")
    if not path or len(path) > MAX_PATH:
        raise InvalidChangeError(f"a target path must have 1 to {MAX_PATH} characters")
    if _BAD_CHAR(path) is not None or _bad_segment(path):
        raise InvalidChangeError(
            f"target path {path!r} has a control character, a backslash, or an empty, '.' or "
            "'..' segment (or a leading or trailing '/')"
        )
    if not path.isascii():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidChangeError(f"target path {path!r} is not valid Unicode") from None
    return path


def _check_hashes(path: str, hashes: Any) -> dict:
    if type(hashes) is not dict:
        if not isinstance(hashes, Mapping):
            hashes = None
        else:
            hashes = dict(hashes)
    if not hashes:
        raise InvalidChangeError(f"{path}: hashes must be a non-empty mapping of algorithm to hex digest")
    for algorithm, digest in hashes.items():
        match = _DIGEST.get(algorithm) if type(algorithm) is str else None
        if match is None:
            raise InvalidChangeError(
                f"{path}: unknown hash algorithm {algorithm!r} (known: {', '.join(HASH_LENGTHS)})"
            )
        if type(digest) is not str or match(digest) is None:
            raise InvalidChangeError(
                f"{path}: the {algorithm} digest must be {HASH_LENGTHS[algorithm]} lower-case hex characters"
            )
    return hashes


def target_entry(length: Any, hashes: Any, custom: Any = None, path: str = "target") -> bytes:
    """The canonical JSON of a TUF target object, validated."""
    if type(length) is not int or length < 0:
        raise InvalidChangeError(f"{path}: length must be an integer >= 0, not {length!r}")
    if custom is None and type(hashes) is dict:
        try:
            data = _backend.canonical_json({"hashes": hashes, "length": length})
        except FormatError:
            data = None
        if data is not None and PLAIN_ENTRY(data) is not None:
            return data
    obj = {"length": length, "hashes": _check_hashes(path, hashes)}
    if custom is not None:
        if not isinstance(custom, Mapping):
            raise InvalidChangeError(f"{path}: custom must be a mapping")
        obj["custom"] = dict(custom)
    try:
        return _backend.canonical_json(obj)
    except FormatError as exc:
        raise InvalidChangeError(f"{path}: custom is not canonical-JSON data: {exc}") from None


def _fields(target: Any) -> tuple:
    """(path, length, hashes, custom) of a Target, a dict, or a TargetFile
    (tufc's or python-tuf's)."""
    if type(target) is dict or isinstance(target, Mapping):
        try:
            return target["path"], target["length"], target["hashes"], target.get("custom")
        except KeyError as exc:
            raise InvalidChangeError(f"a target needs path, length and hashes (missing {exc})") from None
    try:
        path, length, hashes = target.path, target.length, target.hashes
    except AttributeError:
        raise InvalidChangeError(
            f"a target must be a tufc.repository.Target, a mapping or a TargetFile, "
            f"not {type(target).__name__}"
        ) from None
    custom = getattr(target, "custom", None)
    if custom is None:  # python-tuf keeps custom among unrecognized fields
        custom = (getattr(target, "unrecognized_fields", None) or {}).get("custom")
    return path, length, hashes, custom


def normalize_targets(targets: Iterable[Any]) -> list:
    """Validated add changes, one per target; a path twice is an error."""
    if isinstance(targets, (str, bytes, Mapping)):
        raise InvalidChangeError("add_targets takes a list of targets")
    changes, seen = [], set()
    for target in targets:
        path, length, hashes, custom = _fields(target)
        check_path(path)
        if path in seen:
            raise InvalidChangeError(f"{path}: the same path appears twice in one batch")
        seen.add(path)
        changes.append(Change("add", path, target_entry(length, hashes, custom, path)))
    return changes


def normalize_removals(paths: Iterable[Any]) -> list:
    """Validated remove changes; a path twice is an error."""
    if isinstance(paths, (str, bytes)):
        raise InvalidChangeError("remove_targets takes a list of paths")
    changes, seen = [], set()
    for path in paths:
        check_path(path)
        if path in seen:
            raise InvalidChangeError(f"{path}: the same path appears twice in one batch")
        seen.add(path)
        changes.append(Change("remove", path, None))
    return changes


def entry_from_text(text: str | bytes) -> dict:
    """A stored entry back to its dict (the queue keeps canonical JSON)."""
    return json.loads(text)
