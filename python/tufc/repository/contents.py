"""What the metadata lists against what the registry recorded and stores.

``check_records``: the registry's own export (CSV or JSON lines of path,
length, blake2b-256) and the repository's targets must be the same set
with the same lengths and digests.  ``check_target_files``: every target
file, streamed, has its entry's length and every listed hash.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from .._backend import Hasher
from ..exceptions import DownloadLengthMismatchError, UnsupportedAlgorithmError
from .problems import Problem
from .reader import ReadError, Source

__all__ = ["read_records", "check_records", "check_target_files"]

_FIELDS = ("path", "length", "blake2b-256")
FILE_THREADS = 4  # target files: I/O bound, hashed with the GIL released


def read_records(path, problems: list) -> dict:
    """path -> (length, blake2b-256 hex) from a CSV or JSON lines export."""
    records: dict = {}
    try:
        with open(os.fspath(path), "r", encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem("invalid-record", None, os.fspath(path), f"cannot read the records: {exc}"))
        return records
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    rows = _json_rows(lines) if first.lstrip().startswith("{") else _csv_rows(text)
    for number, row in rows:
        record = _record(row)
        if isinstance(record, str):
            problems.append(Problem("invalid-record", None, f"line {number}", record))
            continue
        path_, length, digest = record
        if path_ in records:
            problems.append(Problem("invalid-record", None, path_, f"line {number}: recorded twice"))
            continue
        records[path_] = (length, digest)
    return records


def _json_rows(lines):
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            yield number, f"not JSON: {exc}"


def _csv_rows(text: str):
    reader = csv.reader(io.StringIO(text))
    for number, row in enumerate(reader, 1):
        if not row or (number == 1 and [c.strip() for c in row] == list(_FIELDS)):
            continue
        yield number, dict(zip(_FIELDS, row)) if len(row) == 3 else f"expected 3 columns, got {len(row)}"


def _record(row):
    """(path, length, digest) or the reason the row is unusable."""
    if isinstance(row, str):
        return row
    if not isinstance(row, dict) or any(k not in row for k in _FIELDS):
        return "expected fields path, length, blake2b-256"
    path, length, digest = row["path"], row["length"], row["blake2b-256"]
    if isinstance(length, str) and length.strip().isdigit():
        length = int(length.strip())
    if not isinstance(path, str) or not path:
        return "path must be a non-empty string"
    if type(length) is not int or length < 0:
        return f"{path}: length must be an integer >= 0"
    if not isinstance(digest, str) or len(digest.strip()) != 64:
        return f"{path}: blake2b-256 must be 64 hex digits"
    digest = digest.strip().lower()
    if any(c not in "0123456789abcdef" for c in digest):
        return f"{path}: blake2b-256 must be 64 hex digits"
    return path, length, digest


def check_records(path, entries: list, problems: list) -> None:
    """Records and repository targets: same paths, lengths, blake2b-256."""
    records = read_records(path, problems)
    for target, length, hashes in entries:
        record = records.pop(target, None)
        if record is None:
            problems.append(Problem("unrecorded-target", None, target, "in the repository, not in the records"))
            continue
        digest = hashes.get("blake2b-256")
        if record[0] != length:
            problems.append(Problem("record-mismatch", None, target,
                                    f"length {length:,} in the repository, {record[0]:,} recorded"))
        elif digest is None or not hmac.compare_digest(digest.lower(), record[1]):
            what = "no blake2b-256" if digest is None else "a different blake2b-256"
            problems.append(Problem("record-mismatch", None, target, f"the repository lists {what}"))
    for target in sorted(records):
        problems.append(Problem("record-missing", None, target, "recorded, not in the repository"))


def _candidates(path: str, hashes: dict, consistent: bool) -> list:
    """Where a target may be stored: hash-prefixed names first when consistent."""
    names = []
    if consistent:
        dirname, sep, basename = path.rpartition("/")
        names = [f"{dirname}{sep}{digest}.{basename}" for digest in hashes.values()]
    return names + [path]


def _check_file(source: Source, entry, consistent: bool) -> Optional[Problem]:
    path, length, hashes = entry
    try:
        hasher = Hasher(list(hashes), max_length=length)
    except UnsupportedAlgorithmError as exc:
        return Problem("target-mismatch", None, path, f"cannot check: {exc}")
    for name in _candidates(path, hashes, consistent):
        try:
            for chunk in source.stream(name, length):
                hasher.update(chunk)
        except ReadError as exc:
            if exc.kind == "missing":
                continue
            if exc.kind == "too-large":
                return Problem("target-mismatch", None, path, f"{name}: longer than {length:,} bytes")
            return Problem(exc.kind, None, path, exc.message)
        except DownloadLengthMismatchError:
            return Problem("target-mismatch", None, path, f"{name}: longer than {length:,} bytes")
        if hasher.length != length:
            return Problem("target-mismatch", None, path,
                           f"{name}: {hasher.length:,} bytes, the entry says {length:,}")
        digests = hasher.hexdigests()
        for algorithm, expected in hashes.items():
            if not hmac.compare_digest(digests[algorithm], expected.lower()):
                return Problem("target-mismatch", None, path, f"{name}: {algorithm} differs")
        return None
    return Problem("target-missing", None, path, "no file at " + " or ".join(_candidates(path, hashes, consistent)))


def check_target_files(source: Source, entries: list, consistent: bool, problems: list) -> None:
    """Stream every target file and check it against its entry."""
    with ThreadPoolExecutor(FILE_THREADS) as pool:
        for problem in pool.map(lambda e: _check_file(source, e, consistent), entries):
            if problem is not None:
                problems.append(problem)
