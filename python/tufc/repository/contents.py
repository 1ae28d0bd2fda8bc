"""What the metadata lists against what the registry recorded and stores.

``check_records``: the registry's own export (CSV or JSON lines of path,
length, blake2b-256) and the repository's targets must be the same set
with the same lengths and digests.  ``check_target_files``: every target
file, streamed, has its entry's length and every listed hash.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from .._backend import Hasher
from ..exceptions import DownloadLengthMismatchError, UnsupportedAlgorithmError
from .problems import Problem
from .reader import ReadError, Source

__all__ = ["iter_records", "fingerprint", "check_records", "check_file", "check_target_files"]

_FIELDS = ("path", "length", "blake2b-256")
FILE_THREADS = 4  # target files: I/O bound, hashed with the GIL released


def iter_records(path, problems: list):
    """(path, length, blake2b-256 hex) of each usable line of a CSV or JSON
    lines export, streamed; unusable lines become problems."""
    try:
        f = open(os.fspath(path), "r", encoding="utf-8", newline="")
    except OSError as exc:
        problems.append(Problem("invalid-record", None, os.fspath(path), f"cannot read the records: {exc}"))
        return
    with f:
        try:
            first = f.readline()
            f.seek(0)
            rows = _json_rows(f) if first.lstrip().startswith("{") else _csv_rows(f)
            for number, row in rows:
                record = _record(row)
                if isinstance(record, str):
                    problems.append(Problem("invalid-record", None, f"line {number}", record))
                else:
                    yield record
        except (UnicodeDecodeError, csv.Error) as exc:
            problems.append(Problem("invalid-record", None, os.fspath(path), f"cannot read the records: {exc}"))


def fingerprint(path: str, length: int, digest) -> int:
    """One target's share of its bin's order-independent sum."""
    data = f"{path}\0{length}\0{digest}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "big")


def _json_rows(lines):
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            yield number, f"not JSON: {exc}"


def _csv_rows(f):
    reader = csv.reader(f)
    for row in reader:
        number = reader.line_num
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
    if isinstance(length, str) and length.strip().isascii() and length.strip().isdigit():
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


_MOD = 1 << 128


def check_records(path, direct: dict, bin_of, bin_prints: dict, load_bin, problems: list) -> None:
    """Records and repository targets: the same paths, lengths, blake2b-256.

    ``direct``: path -> (role, length, digest) of the targets outside hash
    bins; ``bin_of(path)``: the bin a path belongs in (None without bins);
    ``bin_prints``: bin -> (fingerprint sum, count) of what it holds;
    ``load_bin(bin)``: its (path, length, digest) list.  The records are
    streamed and summed per bin, so memory does not grow with them; only
    the bins whose sums differ are compared path by path.
    """
    seen: set = set()
    sums: dict = {}
    for record in iter_records(path, problems):
        target = record[0]
        if target in direct:
            if target in seen:
                problems.append(Problem("invalid-record", direct[target][0], target, "recorded twice"))
                continue
            seen.add(target)
            _compare(direct[target][0], target, direct[target][1:], record[1:], problems)
            continue
        name = bin_of(target)
        if name is None:
            problems.append(Problem("record-missing", None, target, "recorded, not in the repository"))
            continue
        acc = sums.setdefault(name, [0, 0])
        acc[0] = (acc[0] + fingerprint(*record)) % _MOD
        acc[1] += 1
    for target in sorted(set(direct) - seen):
        problems.append(Problem("unrecorded-target", direct[target][0], target,
                                "in the repository, not in the records"))
    differing = sorted(name for name in set(sums) | set(bin_prints)
                       if tuple(sums.get(name, (0, 0))) != tuple(bin_prints.get(name, (0, 0))))
    if differing:
        _compare_bins(path, direct, bin_of, set(differing), load_bin, problems)


def _compare_bins(path, direct, bin_of, differing: set, load_bin, problems) -> None:
    """Path by path over the bins whose sums differ (a misplaced target's
    record sums into another bin: both differ, so compare their union)."""
    records: dict = {}
    for record in iter_records(path, []):  # second pass: reported already
        target = record[0]
        if target in direct or bin_of(target) not in differing:
            continue
        if target in records:
            problems.append(Problem("invalid-record", bin_of(target), target, "recorded twice"))
            continue
        records[target] = record[1:]
    held: dict = {}
    for name in sorted(differing):
        for target, length, digest in load_bin(name):
            held[target] = (name, length, digest)
    for target in sorted(set(held) | set(records)):
        if target not in records:
            problems.append(Problem("unrecorded-target", held[target][0], target,
                                    "in the repository, not in the records"))
        elif target not in held:
            problems.append(Problem("record-missing", bin_of(target), target,
                                    "recorded, not in the repository"))
        else:
            _compare(held[target][0], target, held[target][1:], records[target], problems)


def _compare(role, target, held, recorded, problems) -> None:
    length, digest = held
    if recorded[0] != length:
        problems.append(Problem("record-mismatch", role, target,
                                f"length {length:,} in the repository, {recorded[0]:,} recorded"))
    elif digest is None or not hmac.compare_digest(digest.lower(), recorded[1]):
        what = "no blake2b-256" if digest is None else "a different blake2b-256"
        problems.append(Problem("record-mismatch", role, target, f"the repository lists {what}"))


def _candidates(path: str, hashes: dict, consistent: bool) -> list:
    """Where a target may be stored: hash-prefixed names first when consistent."""
    names = []
    if consistent:
        dirname, sep, basename = path.rpartition("/")
        names = [f"{dirname}{sep}{digest}.{basename}" for digest in hashes.values()]
    return names + [path]


def check_file(source: Source, role: str, path: str, length: int, hashes: dict,
               consistent: bool) -> Optional[Problem]:
    """Stream one target file: its entry's length and every listed hash."""
    try:
        hasher = Hasher(list(hashes), max_length=length)
    except UnsupportedAlgorithmError as exc:
        return Problem("target-mismatch", role, path, f"cannot check: {exc}")
    for name in _candidates(path, hashes, consistent):
        try:
            for chunk in source.stream(name, length):
                hasher.update(chunk)
        except ReadError as exc:
            if exc.kind == "missing":
                continue
            if exc.kind == "too-large":
                return Problem("target-mismatch", role, path, f"{name}: longer than {length:,} bytes")
            return Problem(exc.kind, role, path, exc.message)
        except DownloadLengthMismatchError:
            return Problem("target-mismatch", role, path, f"{name}: longer than {length:,} bytes")
        if hasher.length != length:
            return Problem("target-mismatch", role, path,
                           f"{name}: {hasher.length:,} bytes, the entry says {length:,}")
        digests = hasher.hexdigests()
        for algorithm, expected in hashes.items():
            if not hmac.compare_digest(digests[algorithm], expected.lower()):
                return Problem("target-mismatch", role, path, f"{name}: {algorithm} differs")
        return None
    return Problem("target-missing", role, path, "no file at " + " or ".join(_candidates(path, hashes, consistent)))


def check_target_files(source: Source, entries: list, consistent: bool, problems: list) -> None:
    """check_file of (role, path, length, hashes) entries, a few at a time."""
    with ThreadPoolExecutor(FILE_THREADS) as pool:
        for problem in pool.map(lambda e: check_file(source, *e, consistent), entries):
            if problem is not None:
                problems.append(problem)
