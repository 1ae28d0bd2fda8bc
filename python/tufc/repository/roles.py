"""Checking one role file: read bounded, pinned length/hashes, parse,
signatures, version, expiry, and (for a hash bin) every target's bin.

This is the unit of work the audit spreads over processes: everything a
worker needs is in a :class:`RoleJob` and its :class:`BatchContext`, and
all it sends back is a small :class:`RoleReport` (problems, counts, and
paths or entries only when asked for).
"""

from __future__ import annotations

import hmac
import json
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from .._backend import Hasher, misplaced_targets
from ..exceptions import DeserializationError, FormatError, UnsupportedAlgorithmError
from ..keys import verify_threshold
from ..metadata import Metadata, Signed
from .contents import check_file, fingerprint
from .problems import Problem
from .reader import ReadError, Source

__all__ = ["RoleJob", "BatchContext", "RoleReport", "role_file", "load_role", "check_roles"]


@dataclass(frozen=True)
class Pin:
    """What the snapshot (or timestamp) says about a role's file."""

    version: int
    length: Optional[int] = None
    hashes: Optional[dict] = None


@dataclass(frozen=True)
class RoleJob:
    name: str
    pin: Pin
    bin_index: Optional[int] = None  # a succinct hash bin: its index
    old_pin: Optional[Pin] = None  # the role in the previous state


@dataclass
class BatchContext:
    """What every job of one batch (one delegator's roles) shares."""

    source: Source
    consistent: bool
    keys: dict  # keyid -> Key
    roles: dict  # role name -> (keyids, threshold); "" for all bins
    as_of: datetime
    soon: Optional[datetime]
    max_length: int
    bit_length: Optional[int] = None
    previous: Optional[Source] = None
    previous_consistent: bool = True
    want_paths: bool = False
    fingerprints: bool = False  # for the records check
    target_files: Optional[Source] = None  # stream and check every target file


@dataclass
class RoleReport:
    name: str
    version: Optional[int] = None
    problems: list = field(default_factory=list)
    targets: int = 0
    nbytes: int = 0
    target_bytes: int = 0
    misplaced: list = field(default_factory=list)
    paths: Optional[list] = None
    entries: Optional[list] = None  # (path, length, blake2b-256): outside bins
    fingerprint: tuple = (0, 0)  # a bin's (sum, count) for the records check
    delegations: Any = None
    removed: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    loaded: bool = False


def role_file(name: str, version: int, consistent: bool) -> str:
    """The published file name of a role (python-tuf quotes the name)."""
    quoted = urllib.parse.quote(name, safe="")
    if name == "timestamp" or not consistent:
        return f"{quoted}.json"
    return f"{version}.{quoted}.json"


def _parse_problem(data: bytes, role: str, fname: str, exc: Exception) -> Problem:
    """Truncated, not JSON, or JSON that is not valid metadata (and where)."""
    try:
        text = data.decode("utf-8")
        parsed = json.loads(text)
    except UnicodeDecodeError:
        return Problem("not-json", role, fname, "not UTF-8 text")
    except ValueError as err:  # json.JSONDecodeError
        # the parser ran into the end of the input: a string never closed
        # (reported where it starts) or a value cut short
        at_end = str(err).startswith("Unterminated string") or getattr(err, "pos", 0) >= len(text.rstrip())
        if text.lstrip()[:1] in ("{", "[") and at_end:
            return Problem("truncated", role, fname, f"ends inside its JSON after {len(data):,} bytes")
        return Problem("not-json", role, fname, f"not JSON: {err}")
    bad = _bad_target(parsed)
    if bad is not None:
        return Problem("invalid-target", role, bad[0], f"{fname}: {bad[1]}")
    return Problem("invalid-metadata", role, fname, str(exc))


def _bad_target(parsed: Any):
    """The first malformed target entry of a parsed targets file, if any."""
    try:
        targets = parsed["signed"]["targets"]
        items = sorted(targets.items())
    except (TypeError, KeyError, AttributeError):
        return None
    from .._pure.loader import EntryMap

    for path, entry in items:
        try:
            EntryMap({path: entry}, "t")
        except FormatError as err:
            return path, str(err)
    return None


def load_role(source: Source, role: str, fname: str, pin: Optional[Pin], max_length: int,
              expected: str, problems: list) -> tuple[Optional[Metadata], int]:
    """Read and parse one role file; problems appended, None if unusable."""
    limit = pin.length if pin is not None and pin.length is not None else max_length
    try:
        data = source.read(fname, limit)
    except ReadError as exc:
        kind = "missing-metadata" if exc.kind == "missing" else exc.kind
        if exc.kind == "too-large" and pin is not None and pin.length is not None:
            kind = "length-mismatch"
        problems.append(Problem(kind, role, fname, exc.message))
        return None, 0
    if pin is not None and pin.length is not None and len(data) != pin.length:
        problems.append(Problem("length-mismatch", role, fname,
                                f"{len(data):,} bytes, pinned {pin.length:,}"))
        return None, len(data)
    if pin is not None and pin.hashes:
        problem = _check_hashes(data, pin.hashes, role, fname)
        if problem is not None:
            problems.append(problem)
            return None, len(data)
    try:
        md = Metadata.from_bytes(data)
    except DeserializationError as exc:
        problems.append(_parse_problem(data, role, fname, exc))
        return None, len(data)
    if md.signed.type != expected:
        problems.append(Problem("invalid-metadata", role, fname,
                                f"a {md.signed.type} role where {expected} was expected"))
        return None, len(data)
    return md, len(data)


def _check_hashes(data: bytes, hashes: dict, role: str, fname: str) -> Optional[Problem]:
    try:
        hasher = Hasher(list(hashes))
    except UnsupportedAlgorithmError as exc:
        return Problem("hash-mismatch", role, fname, f"cannot check: {exc}")
    hasher.update(data)
    digests = hasher.hexdigests()
    for algorithm, expected in hashes.items():
        if not hmac.compare_digest(digests[algorithm], expected.lower()):
            return Problem("hash-mismatch", role, fname, f"{algorithm} differs from the pinned digest")
    return None


def check_signed(md: Metadata, role: str, fname: str, keys, keyids, threshold: int,
                 problems: list) -> None:
    """The threshold of ``keyids`` (each key once) signed ``md``."""
    sigs = {keyid: sig.signature for keyid, sig in md.signatures.items()}
    result = verify_threshold(md._signed_payload(), sigs, keys, keyids, threshold)
    if not result:
        strangers = sorted(set(sigs) - set(keyids))
        extra = f"; signed by key(s) not trusted for it: {', '.join(strangers)}" if strangers else ""
        problems.append(Problem("unsigned", role, fname,
                                f"{len(result.verified)} of {threshold} required signatures{extra}"))


def check_common(signed: Signed, role: str, fname: str, pin: Optional[Pin], as_of: datetime,
                 soon: Optional[datetime], problems: list) -> None:
    """Version as pinned, and expiry at the reference time."""
    if pin is not None and signed.version != pin.version:
        problems.append(Problem("version-mismatch", role, fname,
                                f"version {signed.version}, pinned {pin.version}"))
    if signed.expires <= as_of:
        problems.append(Problem("expired", role, fname, f"expired {signed._expires_str}"))
    elif soon is not None and signed.expires <= soon:
        problems.append(Problem("expires-soon", role, fname, f"expires {signed._expires_str}"))


def _check_one(ctx: BatchContext, job: RoleJob) -> RoleReport:
    report = RoleReport(job.name)
    fname = role_file(job.name, job.pin.version, ctx.consistent)
    md, report.nbytes = load_role(ctx.source, job.name, fname, job.pin, ctx.max_length,
                                  "targets", report.problems)
    if md is None:
        return report
    report.loaded = True
    signed = md.signed
    report.version = signed.version
    keyids, threshold = ctx.roles[job.name if job.bin_index is None else ""]
    check_signed(md, job.name, fname, ctx.keys, keyids, threshold, report.problems)
    check_common(signed, job.name, fname, job.pin, ctx.as_of, ctx.soon, report.problems)
    raw = signed.targets._raw
    report.targets = len(raw)
    if job.bin_index is not None:
        report.misplaced = misplaced_targets(raw, ctx.bit_length, job.bin_index)
    if ctx.want_paths or job.bin_index is None:
        report.paths = list(raw)
    if ctx.fingerprints or ctx.target_files is not None:
        _check_contents(ctx, job, raw, report)
    report.delegations = signed.delegations
    if ctx.previous is not None and job.old_pin is not None:
        _compare_previous(ctx, job, md, fname, report)
    return report


def _check_contents(ctx: BatchContext, job: RoleJob, raw, report: RoleReport) -> None:
    """The records' view of this role, and its target files."""
    items = [(path, entry["length"], entry["hashes"]) for path, entry in raw.items()]
    if ctx.fingerprints:
        if job.bin_index is None:
            report.entries = [(p, n, h.get("blake2b-256")) for p, n, h in items]
        else:
            total = sum(fingerprint(p, n, h.get("blake2b-256")) for p, n, h in items)
            report.fingerprint = (total % (1 << 128), len(items))
    if ctx.target_files is not None:
        for path, length, hashes in items:
            problem = check_file(ctx.target_files, job.name, path, length, hashes, ctx.consistent)
            if problem is not None:
                report.problems.append(problem)


def _compare_previous(ctx: BatchContext, job: RoleJob, md: Metadata, fname: str,
                      report: RoleReport) -> None:
    """Same version: same bytes.  Newer: which targets went or changed."""
    old_name = role_file(job.name, job.old_pin.version, ctx.previous_consistent)
    if job.old_pin.version > job.pin.version:
        return  # a rollback: reported from the snapshots
    ignored: list = []
    old, _ = load_role(ctx.previous, job.name, old_name, None, ctx.max_length, "targets", ignored)
    if old is None:
        return  # the previous state is not this audit's to report on
    if job.old_pin.version == job.pin.version:
        if old.signed_bytes != md.signed_bytes:
            report.problems.append(Problem("changed-without-version", job.name, fname,
                                           f"content differs from the previous state's at version {job.pin.version}"))
        return
    new_raw, old_raw = md.signed.targets._raw, old.signed.targets._raw
    for path in old_raw:
        if path not in new_raw:
            report.removed.append(path)
        elif old_raw[path] != new_raw[path]:
            report.changed.append(path)


def check_roles(ctx: BatchContext, jobs: list) -> list:
    """Check each job's role file; one report per job, in order."""
    return [_guarded(ctx, job) for job in jobs]


def _guarded(ctx: BatchContext, job: RoleJob) -> RoleReport:
    # An audit reports, it does not crash: a failure no check foresaw is a
    # problem of this role (and a bug to report), and the audit goes on.
    try:
        return _check_one(ctx, job)
    except Exception as exc:  # noqa: BLE001
        report = RoleReport(job.name)
        report.problems.append(Problem("audit-error", job.name, None,
                                       f"{type(exc).__name__}: {exc}"))
        return report
