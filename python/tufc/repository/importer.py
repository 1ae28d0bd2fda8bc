"""Bulk import (backsigning): every bin rebuilt from millions of targets,
streaming, in two passes, without a Python object per target kept alive.

Pass 1 reads the records once, validates each, and appends its path and
canonical entry to one of a few hundred spill files by bin group.  Pass 2
(one process per core) builds each group's bins: the bin's current
targets plus the imported ones, sorted, assembled as canonical JSON
directly from the entry bytes, signed and written.  Then one snapshot and
one timestamp publish them all, as a publish does (``Repository._commit``'s
order: bins, snapshot, queue mark, timestamp).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .. import _backend
from ..exceptions import InvalidChangeError, PublishError, StorageError
from . import metadata_io as mio
from .changes import _fields, check_path, target_entry
from .signing import signature_of

__all__ = ["import_targets", "read_records"]

_HEADER = struct.Struct("<III")  # bin index, path length, entry length
_FLUSH = 256 << 10
_SPEC = mio.SPEC_VERSION.encode()


def read_records(path: str) -> Iterator[dict]:
    """Targets from a CSV file (header: ``path,length`` and one column per
    hash algorithm, e.g. ``sha256,blake2b-256``; an optional ``custom``
    column of JSON) or a JSON-lines file (``.jsonl``: one target object a
    line).  Streams: one record in memory at a time."""
    try:
        handle = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    with handle:
        if path.endswith((".jsonl", ".ndjson")):
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as exc:
                        raise InvalidChangeError(f"{path}:{number}: not JSON: {exc}") from None
            return
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            return
        if "path" not in header or "length" not in header:
            raise InvalidChangeError(f"{path}: the CSV header needs path and length columns")
        at_path, at_length = header.index("path"), header.index("length")
        at_custom = header.index("custom") if "custom" in header else None
        hash_columns = [(i, name) for i, name in enumerate(header)
                        if name not in ("path", "length", "custom")]
        for number, row in enumerate(reader, 2):
            if len(row) != len(header):
                raise InvalidChangeError(f"{path}:{number}: {len(row)} columns, expected {len(header)}")
            try:
                length = int(row[at_length])
            except ValueError:
                raise InvalidChangeError(f"{path}:{number}: length {row[at_length]!r} is not an integer") from None
            record = {"path": row[at_path], "length": length,
                      "hashes": {name: row[i] for i, name in hash_columns if row[i]}}
            if at_custom is not None and row[at_custom]:
                try:
                    record["custom"] = json.loads(row[at_custom])
                except ValueError:
                    raise InvalidChangeError(f"{path}:{number}: custom is not JSON") from None
            yield record


def _json_key(path: bytes) -> bytes:
    """Canonical JSON of a target path (only ``"`` and ``\\`` escaped)."""
    if b'"' in path or b"\\" in path:
        path = path.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + path + b'"'


def _spill(records: Iterable[Any], layout, folder: str, groups: int,
           progress: Callable[[int], None] | None) -> int:
    """Pass 1: validate and distribute the records; returns their count."""
    shift = layout.bit_length - (groups.bit_length() - 1)
    buffers = [[] for _ in range(groups)]
    sizes = [0] * groups
    files = [open(os.path.join(folder, f"{g:04x}.spill"), "wb") for g in range(groups)]
    bin_index = layout.bin_index
    pack = _HEADER.pack
    count = 0
    try:
        for record in records:
            path, length, hashes, custom = _fields(record)
            check_path(path)
            entry = target_entry(length, hashes, custom, path)
            raw = path.encode("utf-8")
            index = bin_index(path)
            group = index >> shift
            buffers[group].append(pack(index, len(raw), len(entry)) + raw + entry)
            sizes[group] += len(raw) + len(entry) + 12
            if sizes[group] > _FLUSH:
                files[group].write(b"".join(buffers[group]))
                buffers[group], sizes[group] = [], 0
            count += 1
            if progress is not None and count % 100_000 == 0:
                progress(count)
        for group in range(groups):
            files[group].write(b"".join(buffers[group]))
    except OSError as exc:
        raise StorageError(f"cannot write the import's spill files in {folder}: {exc}") from exc
    finally:
        for f in files:
            f.close()
    return count


def _bin_signed(expires: bytes, version: int, entries: list) -> bytes:
    """The canonical JSON of a bin's signed part: entries are
    ``(path bytes, entry bytes)`` sorted by path (UTF-8 byte order is
    code point order, the order canonical JSON sorts keys in)."""
    body = b",".join(_json_key(path) + b":" + entry for path, entry in entries)
    return (b'{"_type":"targets","expires":"' + expires + b'","spec_version":"' + _SPEC
            + b'","targets":{' + body + b'},"version":' + str(version).encode() + b"}")


# state a forked worker inherits (set just before the pool starts)
_JOB: dict = {}


def _build_group(group: int) -> list:
    """Pass 2 for one spill file: write its bins; returns
    ``[(bin name, version, target count)]``."""
    job = _JOB
    layout, folder, metadata_dir = job["layout"], job["folder"], job["metadata_dir"]
    per_group = layout.bins // job["groups"]
    with open(os.path.join(folder, f"{group:04x}.spill"), "rb") as f:
        data = f.read()
    by_bin: dict[int, list] = {}
    offset, end, unpack = 0, len(data), _HEADER.unpack_from
    while offset < end:
        index, path_len, entry_len = unpack(data, offset)
        offset += 12
        path = data[offset:offset + path_len]
        offset += path_len
        by_bin.setdefault(index, []).append((path, data[offset:offset + entry_len]))
        offset += entry_len
    del data
    out = []
    payloads, names, versions = [], [], []
    for index in range(group * per_group, (group + 1) * per_group):
        name = layout.bin_name(index)
        version = job["versions"].version(f"{name}.json")
        imported = by_bin.pop(index, [])
        current = job["current"](name, version)
        if current:
            seen = {path for path, _ in imported}
            imported += [(p, e) for p, e in current if p not in seen]
        imported.sort()
        for i in range(1, len(imported)):
            if imported[i][0] == imported[i - 1][0]:
                raise InvalidChangeError(
                    f"{imported[i][0].decode('utf-8')}: the same path appears twice in the import")
        payloads.append(_bin_signed(job["expires"], version + 1, imported))
        names.append(name)
        versions.append(version + 1)
        out.append((name, version + 1, len(imported)))
    signers = job["signers"]
    for name, version, payload in zip(names, versions, payloads):
        sigs = [signature_of(s, payload) for s in signers]
        mio.write(metadata_dir, mio.role_file(name, version), mio.envelope_bytes(sigs, payload),
                  durable=False)
    return out


def _current_entries(metadata_dir: str):
    """A reader of a bin's present targets as sorted ``(path, entry)`` bytes."""

    def read(name: str, version: int) -> list:
        envelope, _, _ = mio.load(os.path.join(metadata_dir, mio.role_file(name, version)))
        signed = envelope["signed"]
        if set(signed) - {"_type", "spec_version", "version", "expires", "targets"}:
            raise PublishError(f"{name} has fields the import cannot keep; publish instead")
        targets = signed.get("targets", {})
        return [(path.encode("utf-8"), _backend.canonical_json(dict(entry)))
                for path, entry in targets.items()]

    return read


def import_targets(repo, records: Iterable[Any], workers: int | None = None,
                   progress: Callable[[str, int], None] | None = None,
                   spill_dir: str | None = None, lock_timeout: float | None = None):
    """Publish every bin anew with ``records`` (targets, as ``add_targets``
    takes them) added: one new version of every bin, one snapshot, one
    timestamp.  An imported path replaces the same path already published;
    a path twice in the records is an InvalidChangeError and nothing is
    published.  ``progress(stage, count)`` reports "read" (records) and
    "bins"."""
    workers = workers or min(2, os.cpu_count() or 1)
    layout = repo.layout
    groups = min(layout.bins, 256)
    started = time.perf_counter()
    with repo.publishing(lock_timeout) as state:
        spill = tempfile.mkdtemp(prefix="tufc-import-", dir=spill_dir or repo.folder)
        try:
            count = _spill(records, layout, spill, groups,
                           (lambda n: progress("read", n)) if progress else None)
            now = repo.clock().replace(microsecond=0)
            signers = repo.online_signers()
            _JOB.update(layout=layout, folder=spill, metadata_dir=repo.metadata_dir, groups=groups,
                        versions=state.meta, expires=mio.format_time(now + repo.expiry["bin-n"]).encode(),
                        current=_current_entries(repo.metadata_dir), signers=signers)
            built = []
            try:
                if workers > 1 and sys.platform.startswith("linux"):
                    context = multiprocessing.get_context("fork")
                    with context.Pool(workers) as pool:
                        for part in pool.imap_unordered(_build_group, range(groups)):
                            built += part
                            if progress:
                                progress("bins", len(built))
                else:
                    for group in range(groups):
                        built += _build_group(group)
                        if progress:
                            progress("bins", len(built))
            finally:
                _JOB.clear()
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        return repo._commit_versions(state, {name: version for name, version, _ in built},
                                     [], now, started, count)
