"""Bulk import (backsigning): every bin rebuilt from millions of targets,
streaming, in two passes, without a Python object per target kept alive.

Pass 1 reads the records once, validates each, and appends its path and
canonical entry to one of a few hundred spill files by bin group; given
``read_records`` of a file (8 MiB or more), one process per core reads a
byte range of it, each into spill files of its own.  Pass 2
(one process per core) builds each group's bins: the bin's current
targets plus the imported ones, sorted, assembled as canonical JSON
directly from the entry bytes, signed and written.  Then one snapshot and
one timestamp publish them all, as a publish does (``Repository._commit``'s
order: bins, snapshot, queue mark, timestamp).
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import multiprocessing
import os
import shutil
import signal
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

__all__ = ["import_targets", "read_records", "FileRecords"]


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0

_HEADER = struct.Struct("<III")  # bin index, path length, entry length
_FLUSH = 256 << 10
_SPEC = mio.SPEC_VERSION.encode()


class FileRecords:
    """The records of a CSV or JSON-lines file, streamed (what
    ``read_records`` returns): an iterator, like a generator, that also
    knows its file, so ``import_targets`` can split the file's first pass
    across its worker processes by byte ranges."""

    def __init__(self, path: str):
        self.path = os.fspath(path)
        self._iterator: Iterator[dict] | None = None

    def __iter__(self) -> Iterator[dict]:
        # the generator itself: a for loop pays no extra call per record
        if self._iterator is None:
            self._iterator = _read_file(self.path)
        return self._iterator

    def __next__(self) -> dict:
        return next(iter(self))

    @property
    def started(self) -> bool:
        return self._iterator is not None


def read_records(path: str) -> FileRecords:
    """Targets from a CSV file (header: ``path,length`` and one column per
    hash algorithm, e.g. ``sha256,blake2b-256``; an optional ``custom``
    column of JSON) or a JSON-lines file (``.jsonl``: one target object a
    line).  Streams: one record in memory at a time."""
    return FileRecords(path)


def _is_jsonl(path: str) -> bool:
    return path.endswith((".jsonl", ".ndjson"))


def _read_file(path: str) -> Iterator[dict]:
    try:
        handle = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    with handle:
        if _is_jsonl(path):
            yield from _jsonl_records(handle, path, 1)
            return
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            return
        yield from _csv_records(reader, _csv_columns(header, path), path, 2)


class _RowError(Exception):
    """A bad row at a number local to one byte range (pass 1 in parallel)."""

    def __init__(self, path: str, number: int, detail: str):
        super().__init__(path, number, detail)
        self.path, self.number, self.detail = path, number, detail

    def error(self, offset: int = 0) -> InvalidChangeError:
        return InvalidChangeError(f"{self.path}:{self.number + offset}: {self.detail}")


def _jsonl_records(lines: Iterable[str], path: str, first: int, local: bool = False) -> Iterator[dict]:
    for number, line in enumerate(lines, first):
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError as exc:
                error = _RowError(path, number, f"not JSON: {exc}")
                if local:
                    raise error from None
                raise error.error() from None
            yield record


def _csv_columns(header: list, path: str) -> tuple:
    if "path" not in header or "length" not in header:
        raise InvalidChangeError(f"{path}: the CSV header needs path and length columns")
    at_custom = header.index("custom") if "custom" in header else None
    hash_columns = [(i, name) for i, name in enumerate(header)
                    if name not in ("path", "length", "custom")]
    return len(header), header.index("path"), header.index("length"), at_custom, hash_columns


def _csv_records(rows: Iterable[list], columns: tuple, path: str, first: int,
                 local: bool = False) -> Iterator[dict]:
    width, at_path, at_length, at_custom, hash_columns = columns
    for number, row in enumerate(rows, first):
        detail = None
        if len(row) != width:
            detail = f"{len(row)} columns, expected {width}"
        else:
            try:
                length = int(row[at_length])
            except ValueError:
                detail = f"length {row[at_length]!r} is not an integer"
        if detail is None:
            record = {"path": row[at_path], "length": length,
                      "hashes": {name: row[i] for i, name in hash_columns if row[i]}}
            if at_custom is not None and row[at_custom]:
                try:
                    record["custom"] = json.loads(row[at_custom])
                except ValueError:
                    detail = "custom is not JSON"
        if detail is not None:
            error = _RowError(path, number, detail)
            if local:
                raise error
            raise error.error()
        yield record


def _json_key(path: bytes) -> bytes:
    """Canonical JSON of a target path (only ``"`` and ``\\`` escaped)."""
    if b'"' in path or b"\\" in path:
        path = path.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + path + b'"'


def _spill(records: Iterable[Any], layout, folder: str, groups: int,
           progress: Callable[[int], None] | None, every: int = 100_000) -> int:
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
            if progress is not None and count % every == 0:
                progress(count)
        for group in range(groups):
            files[group].write(b"".join(buffers[group]))
    except OSError as exc:
        raise StorageError(f"cannot write the import's spill files in {folder}: {exc}") from exc
    finally:
        for f in files:
            f.close()
    return count


# --- pass 1 across processes: a file's byte ranges ---------------------------

# a file smaller than this is read by one process (starting workers costs more)
PARALLEL_MIN_BYTES = 8 << 20
_CHUNK = 4 << 20


def _range_lines(path: str, start: int, end: int) -> Iterator[str]:
    """The lines of bytes ``start`` to ``end`` of a file (both at line
    starts), as a text file opened with ``newline=""`` gives them."""
    with open(path, "rb") as f:
        f.seek(start)
        left, tail = end - start, b""
        while left > 0:
            data = f.read(min(_CHUNK, left))
            if not data:
                break
            left -= len(data)
            data = tail + data
            cut = data.rfind(b"\n") + 1 if left > 0 else len(data)
            tail = data[cut:]
            if cut:
                yield from io.StringIO(data[:cut].decode("utf-8"), newline="")
        if tail:
            yield from io.StringIO(tail.decode("utf-8"), newline="")


def _next_line(f, position: int, size: int) -> int:
    """The offset just after the first newline at or after ``position``
    (``size`` if there is none)."""
    f.seek(position)
    while position < size:
        data = f.read(1 << 16)
        if not data:
            break
        at = data.find(b"\n")
        if at >= 0:
            return position + at + 1
        position += len(data)
    return size


def _count_quotes(f, start: int, end: int) -> int:
    f.seek(start)
    count = 0
    while start < end:
        data = f.read(min(_CHUNK, end - start))
        if not data:
            break
        count += data.count(b'"')
        start += len(data)
    return count


def _split_file(path: str, parts: int) -> tuple | None:
    """``(columns or None, [(start, end), ...])``: the file's records in up
    to ``parts`` byte ranges, each starting at a record's first line; None
    when the file cannot be split safely (then one process reads it).

    A CSV field in quotes may hold a newline; a line start is a record
    start when the number of ``"`` before it (after the header) is even,
    since a quote inside a quoted field is doubled.  JSON lines hold no raw
    newline inside a value."""
    try:
        size = os.path.getsize(path)
        f = open(path, "rb")
    except OSError:
        return None  # the sequential reader reports it
    with f:
        columns = None
        start = 0
        if not _is_jsonl(path):
            header_line = f.readline()
            if not header_line.endswith(b"\n") or b'"' in header_line or b"\r" in header_line[:-1]:
                return None
            try:
                header = next(csv.reader([header_line.decode("utf-8")]))
            except (UnicodeDecodeError, StopIteration, csv.Error):
                return None
            columns = _csv_columns(header, path)
            start = len(header_line)
        points = [start]
        for k in range(1, parts):
            point = _next_line(f, max(points[-1], start + (size - start) * k // parts), size)
            if columns is not None:
                quotes = _count_quotes(f, points[-1], point)
                while quotes % 2 and point < size:  # inside a quoted field: move on
                    f.seek(point)
                    data = f.read(1 << 16)
                    at = data.find(b'"')
                    if at < 0:
                        following = min(size, point + len(data))
                    else:
                        following = _next_line(f, point + at + 1, size)
                    quotes += _count_quotes(f, point, following)
                    point = following
                if quotes % 2:
                    break
            if point >= size:
                break
            if point > points[-1]:
                points.append(point)
        points.append(size)
        return columns, [(a, b) for a, b in zip(points, points[1:]) if b > a]


def _spill_range(part: int) -> tuple:
    """Pass 1 for one byte range, in a worker: ``("ok", rows, count)`` or
    ``("row", number, detail)`` / ``("error", exception)``."""
    job = _JOB
    path, columns = job["path"], job["columns"]
    start, end = job["ranges"][part]
    counters = job["counters"]
    rows = [0]  # lines (JSON lines) or rows (CSV) read: how read_records numbers them

    def report(n):
        counters[part] = n

    try:
        if columns is None:
            lines = _counted(_range_lines(path, start, end), rows)
            records = _jsonl_records(lines, path, 1, local=True)
        else:
            reader = csv.reader(_range_lines(path, start, end))
            records = _csv_records(_counted(reader, rows), columns, path, 1, local=True)
        count = _spill(records, job["layout"], job["spills"][part], job["groups"], report,
                       every=10_000)
    except _RowError as exc:
        return ("row", exc.number, exc.detail)
    except Exception as exc:  # noqa: BLE001 - re-raised by the parent, in file order
        return ("error", exc)
    counters[part] = count
    return ("ok", rows[0], count)


def _counted(items: Iterable, box: list) -> Iterator:
    for item in items:
        box[0] += 1
        yield item


def _spill_parallel(records: FileRecords, layout, folder: str, groups: int, workers: int,
                    progress: Callable[[int], None] | None) -> tuple | None:
    """Pass 1 by ``workers`` processes over byte ranges of the records'
    file: ``(count, spill folders)``, or None when the file is not split."""
    split = _split_file(records.path, workers)
    if split is None or len(split[1]) < 2:
        return None
    columns, ranges = split
    spills = []
    for part in range(len(ranges)):
        spills.append(os.path.join(folder, f"w{part}"))
        os.mkdir(spills[-1])
    counters = multiprocessing.get_context("fork").Array("q", len(ranges), lock=False)
    _JOB.update(path=records.path, columns=columns, ranges=ranges, counters=counters,
                layout=layout, spills=spills, groups=groups)
    try:
        with _worker_pool(len(ranges)) as pool:
            futures = [pool.submit(_spill_range, part) for part in range(len(ranges))]
            try:
                reported = 0
                while concurrent.futures.wait(futures, timeout=0.2).not_done:
                    if progress is not None:
                        done = sum(counters)
                        if done - reported >= 100_000:
                            reported = done - done % 100_000
                            progress(reported)
                results = [future.result() for future in futures]
            except concurrent.futures.BrokenExecutor as exc:
                raise _worker_died(exc) from exc
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        _JOB.clear()
    first = 1 if columns is None else 2  # the number of the first record (as read_records counts)
    offset = first - 1
    count = 0
    for result in results:  # the first failure in file order, as one reader would meet it
        if result[0] == "row":
            raise _RowError(records.path, result[1], result[2]).error(offset)
        if result[0] == "error":
            raise result[1]
        offset += result[1]
        count += result[2]
    return count, spills


def _bin_signed(expires: bytes, version: int, entries: list) -> bytes:
    """The canonical JSON of a bin's signed part: entries are
    ``(path bytes, entry bytes)`` sorted by path (UTF-8 byte order is
    code point order, the order canonical JSON sorts keys in)."""
    body = b",".join(_json_key(path) + b":" + entry for path, entry in entries)
    return (b'{"_type":"targets","expires":"' + expires + b'","spec_version":"' + _SPEC
            + b'","targets":{' + body + b'},"version":' + str(version).encode() + b"}")


# state a forked worker inherits (set just before the pool starts)
_JOB: dict = {}


def _worker_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """Worker processes forked from this one, so they inherit ``_JOB``.
    concurrent.futures rather than multiprocessing.Pool: a worker that dies
    breaks the pool (BrokenExecutor) instead of hanging it, and a failure
    cancels the queued work without Pool.terminate(), which can deadlock
    against Pool's task thread (seen on Python 3.9)."""
    return concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_started)


def _worker_died(exc: BaseException) -> PublishError:
    return PublishError(f"an import worker process died ({exc}); nothing was published")


def _worker_started() -> None:
    # the CLI's SIGTERM handler raises Terminated: a worker just ends; an
    # interrupt is the parent's to handle (it cancels what is queued)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _build_group(group: int) -> list:
    """Pass 2 for one spill file: write its bins; returns
    ``[(bin name, version, target count)]``."""
    job = _JOB
    layout, folder, metadata_dir = job["layout"], job["folder"], job["metadata_dir"]
    per_group = layout.bins // job["groups"]
    parts = []
    for spill in job.get("spills") or [folder]:
        with open(os.path.join(spill, f"{group:04x}.spill"), "rb") as f:
            parts.append(f.read())
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    del parts
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
            read_progress = (lambda n: progress("read", n)) if progress else None
            parallel = None
            if (workers > 1 and isinstance(records, FileRecords) and not records.started
                    and sys.platform.startswith("linux")
                    and _file_size(records.path) >= PARALLEL_MIN_BYTES):
                parallel = _spill_parallel(records, layout, spill, groups, workers, read_progress)
            if parallel is None:
                count, spills = _spill(records, layout, spill, groups, read_progress), [spill]
            else:
                count, spills = parallel
            now = repo.clock().replace(microsecond=0)
            signers = repo.online_signers()
            _JOB.update(layout=layout, folder=spill, metadata_dir=repo.metadata_dir, groups=groups,
                        versions=state.meta, expires=mio.format_time(now + repo.expiry["bin-n"]).encode(),
                        current=_current_entries(repo.metadata_dir), signers=signers,
                        spills=spills)
            built = []
            try:
                if workers > 1 and sys.platform.startswith("linux"):
                    with _worker_pool(workers) as pool:
                        futures = [pool.submit(_build_group, group) for group in range(groups)]
                        try:
                            for future in concurrent.futures.as_completed(futures):
                                built += future.result()
                                if progress:
                                    progress("bins", len(built))
                        except concurrent.futures.BrokenExecutor as exc:
                            raise _worker_died(exc) from exc
                        except BaseException:
                            pool.shutdown(wait=True, cancel_futures=True)
                            raise
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
