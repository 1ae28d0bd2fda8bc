"""Reading and writing the engine's own metadata files.

The engine writes compact canonical JSON (the envelope is canonical too:
``{"signatures":[...],"signed":{...}}``), which python-tuf's ngclient and
tufc's Updater both read.  Files are ``VERSION.ROLE.json`` except
``timestamp.json``; every write is atomic (a crash leaves the old file or
the whole new one).
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from datetime import datetime, timezone

from .. import _atomic, _backend
from ..exceptions import DeserializationError, FormatError, StorageError

__all__ = ["SPEC_VERSION", "envelope_bytes", "format_time", "parse_time", "role_file",
           "read_file", "load", "MAX_METADATA"]

SPEC_VERSION = "1.0.31"
# a role file larger than this is not one of ours (PEP 458's snapshot is ~0.5 MB)
MAX_METADATA = 256 << 20


_CONTROL = bytes(range(0x20))


def has_control(data: bytes) -> bool:
    """Whether canonical JSON bytes hold a raw control character."""
    return len(data.translate(None, _CONTROL)) != len(data)


def envelope_bytes(signatures: list, signed_bytes: bytes, plain: bool = False) -> bytes:
    """The file: ``{"signatures": signatures, "signed": <signed>}`` in
    compact sorted JSON.

    That is canonical JSON, reusing the already canonical ``signed_bytes``,
    unless a string holds a control character (a PEM key's newlines, a
    custom field): canonical JSON leaves those raw, which no JSON parser
    accepts, so such a file is written with JSON escapes instead.
    Signatures always cover the canonical bytes.  ``plain`` says the
    caller knows there is no control character (the scan is skipped).
    """
    if not plain and has_control(signed_bytes):
        signed = json.loads(signed_bytes.decode("utf-8"), strict=False)
        return json.dumps({"signatures": signatures, "signed": signed}, sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b'{"signatures":' + _backend.canonical_json(signatures) + b',"signed":' + signed_bytes + b"}"


def format_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        raise DeserializationError(f"expires: not a UTC date-time: {text!r}") from None


def role_file(role: str, version: int | None) -> str:
    """The file name under ``metadata/``: version-prefixed except the
    timestamp's, the role name quoted as clients quote it."""
    quoted = urllib.parse.quote(role, safe="")
    return f"{quoted}.json" if version is None else f"{version}.{quoted}.json"


def read_file(path: str, limit: int = MAX_METADATA) -> bytes:
    """The bytes of a metadata file, refusing one longer than ``limit``."""
    try:
        with open(path, "rb", buffering=0) as f:
            # the size it has now plus one byte to see it grew: read(limit)
            # would allocate the whole limit for every file
            size = min(os.fstat(f.fileno()).st_size, limit)
            data = f.read(size + 1)
            if len(data) > size:
                data += f.read(limit + 1 - len(data))
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    if len(data) > limit:
        raise StorageError(f"{path} is longer than {limit} bytes")
    return data


def read_json_object(path: str, limit: int, kind: str, file_format) -> dict:
    """A small JSON file of ours (configuration, key file): a dict whose
    ``"format"`` is ``file_format``, or StorageError / FormatError."""
    data = read_file(path, limit)
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise FormatError(f"{path} is not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != file_format:
        raise FormatError(f"{path} is not a {kind}")
    return obj


def load(path: str) -> tuple:
    """``(envelope, signed_bytes, raw_bytes)`` of one of our metadata files."""
    data = read_file(path)
    try:
        envelope, signed_bytes = _backend.load_metadata(data)
    except FormatError as exc:
        raise DeserializationError(f"{os.path.basename(path)}: {exc}") from exc
    return envelope, signed_bytes, data


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(folder: str, name: str, data: bytes, durable: bool = True, rename_if=None) -> bool:
    return _atomic.write_atomic(os.path.join(folder, name), data, durable=durable,
                                rename_if=rename_if)


sync_files = _atomic.sync_files
sync_folder = _atomic.sync_folder
