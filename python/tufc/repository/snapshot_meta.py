"""A snapshot's ``meta`` kept as canonical JSON pieces, one per role.

PyPI's snapshot names 16,384 bins.  A publish changes a few of them, so
rebuilding and re-encoding 16,384 dicts per publish (the obvious way)
costs more than everything else in it.  Here each entry is kept as its
canonical bytes (``"bin-0a1f.json":{"version":7}``, in sorted order); a
publish replaces the changed pieces and joins the list, which gives the
same bytes as canonical JSON of the whole dict (tests compare them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .. import _backend
from .metadata_io import has_control

__all__ = ["SnapshotMeta"]


def _piece(name: str, version: int) -> bytes:
    return _backend.canonical_json(name) + b':{"version":%d}' % version


class SnapshotMeta:
    """Read-only view ``"ROLE.json" -> version`` plus the canonical pieces."""

    __slots__ = ("_names", "_pieces", "_base", "_overlay", "_pos", "plain")

    def __init__(self, names: list, pieces: list, base: Mapping, overlay: dict, pos: dict | None,
                 plain: bool):
        self._names = names  # sorted, as canonical JSON orders keys
        self._pieces = pieces
        self._base = base  # the loaded entries (an EntryMap): name -> entry dict
        self._overlay = overlay  # name -> version, changed since loading
        self._pos = pos
        self.plain = plain  # no control character in any piece (see envelope_bytes)

    @classmethod
    def load(cls, signed: Mapping, signed_bytes: bytes) -> SnapshotMeta:
        """From a loaded snapshot: its signed dict (``meta`` an EntryMap)
        and the canonical bytes of it, whose meta section is reused as is
        when every entry is a flat object."""
        meta = signed["meta"]
        names = list(meta)
        pieces = None
        head, tail = _around_meta({k: v for k, v in signed.items() if k != "meta"})
        if head is not None and signed_bytes.startswith(head) and signed_bytes.endswith(tail):
            section = signed_bytes[len(head) + 1:len(signed_bytes) - len(tail) - 1]
            # one "{" per entry (no nested objects, none in strings) and no
            # "}," inside a string: then "}," separates entries exactly
            if names and section.count(b"{") == len(names) and section.count(b"},") == len(names) - 1:
                parts = section.split(b"},")
                pieces = [part + b"}" for part in parts[:-1]]
                pieces.append(parts[-1])
        if pieces is None:
            pieces = [_backend.canonical_json(name) + b":" + _backend.canonical_json(dict(meta[name]))
                      for name in names]
        return cls(names, pieces, meta, {}, None, not has_control(signed_bytes))

    @classmethod
    def new(cls, versions: Mapping[str, int]) -> SnapshotMeta:
        names = sorted(versions)
        base = {name: {"version": versions[name]} for name in names}
        pieces = [_piece(n, versions[n]) for n in names]
        return cls(names, pieces, base, {}, None, not any(has_control(p) for p in pieces))

    def version(self, name: str) -> int | None:
        version = self._overlay.get(name)
        if version is not None:
            return version
        entry = self._base.get(name)
        return None if entry is None else entry["version"]

    def __contains__(self, name: object) -> bool:
        return name in self._overlay or name in self._base

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def updated(self, versions: Mapping[str, int]) -> SnapshotMeta:
        """A new meta with these roles at these versions (``"ROLE.json"``
        names; a role not listed yet is added)."""
        if self._pos is None:
            self._pos = {name: i for i, name in enumerate(self._names)}
        pos, pieces, names = self._pos, list(self._pieces), self._names
        added = [name for name in versions if name not in pos]
        if added:
            names = sorted(set(names) | set(added))
            old = dict(zip(self._names, self._pieces))
            pieces = [old.get(name) or _piece(name, versions[name]) for name in names]
            pos = {name: i for i, name in enumerate(names)}
        plain = self.plain
        for name, version in versions.items():
            piece = pieces[pos[name]] = _piece(name, version)
            plain = plain and not has_control(piece)
        overlay = dict(self._overlay)
        overlay.update(versions)
        return SnapshotMeta(names, pieces, self._base, overlay, pos, plain)

    def to_dict(self) -> dict:
        """Every entry as a dict (slow: for the rare odd snapshot)."""
        return {name: {"version": self._overlay[name]} if name in self._overlay
                else dict(self._base[name]) for name in self._names}

    def canonical(self) -> bytes:
        """The canonical JSON of the meta object."""
        return b"{" + b",".join(self._pieces) + b"}"


_PLACEHOLDER = "\x00tufc-meta\x00"
_MARKER = b'"meta":"\x00tufc-meta\x00"'


def _around_meta(fields: dict) -> tuple:
    """The canonical bytes before and after the meta object in a snapshot
    with these other fields, or (None, None)."""
    encoded = _backend.canonical_json(dict(fields, meta=_PLACEHOLDER))
    if encoded.count(_MARKER) != 1:
        return None, None
    at = encoded.find(_MARKER)
    return encoded[:at] + b'"meta":', encoded[at + len(_MARKER):]


def snapshot_signed_bytes(fields: dict, meta: SnapshotMeta) -> bytes:
    """The canonical JSON of a snapshot's signed part: ``fields`` (all but
    meta) with ``meta``, without re-encoding the meta entries."""
    head, tail = _around_meta(fields)
    if head is None:
        return _backend.canonical_json(dict(fields, meta=meta.to_dict()))
    return head + meta.canonical() + tail
