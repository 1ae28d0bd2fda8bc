"""Audit a whole published repository (and its change from a previous state).

:func:`verify` walks what a client would trust, from a trusted root: the
root chain, timestamp, snapshot, targets and every delegated role reachable
(succinct hash bins and ordinary delegations), and checks what no client
looks at: every target in the role the delegation graph assigns it, no path
twice, every role the snapshot lists, optionally the registry's records and
the target files.  Every problem is reported and the audit goes on.

The hash bins are checked in worker processes (``fork``): parsing a bin
needs the GIL, and on PyPI's 16,384 bins it is a third of the work, so
threads would leave the second core idle for that third; each worker reads,
parses and verifies its own share and sends back only problems and counts.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta, timezone
from typing import Optional, Union

from ..metadata import DelegatedRole, Metadata, SuccinctRoles
from .contents import check_records, check_target_files
from .problems import AuditResult, Problem
from .reader import Source, open_source
from .roles import (
    BatchContext,
    Pin,
    RoleJob,
    check_common,
    check_roles,
    check_signed,
    load_role,
    role_file,
)

__all__ = ["verify", "DEFAULT_MAX_LENGTH"]

DEFAULT_MAX_LENGTH = 64 * 1024 * 1024  # a role file the snapshot does not pin
MAX_ROOT_ROTATIONS = 1024
PARALLEL_MIN_JOBS = 256  # fewer roles are checked in this process


def verify(
    repository: Union[str, os.PathLike],
    *,
    trusted_root: Union[bytes, str, os.PathLike, None] = None,
    as_of: Optional[datetime] = None,
    expires_within: Optional[timedelta] = None,
    previous: Union[str, os.PathLike, None] = None,
    records: Union[str, os.PathLike, None] = None,
    targets: Union[str, os.PathLike, None] = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    timeout: float = 10.0,
    workers: Optional[int] = None,
) -> AuditResult:
    """Audit the repository at ``repository`` (a folder or an http(s) URL).

    ``trusted_root``: root metadata bytes or a file (default: the
    repository's own ``1.root.json``, whose key fingerprints the summary
    reports).  ``as_of``: reference time for expiry (default now);
    ``expires_within``: also warn about what expires before then.
    ``previous``: the repository's previous state (folder or URL).
    ``records``: the registry's export (CSV or JSON lines of path, length,
    blake2b-256).  ``targets``: the target files (folder or base URL).
    ``workers``: processes for the hash bins (default: one per core).
    """
    started = time.monotonic()
    as_of = as_of or datetime.now(timezone.utc)
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=timezone.utc)
    soon = None
    if expires_within is not None:
        try:
            soon = as_of + expires_within
        except OverflowError:  # beyond year 9999: everything expires "soon"
            soon = datetime.max.replace(tzinfo=timezone.utc)
    source = open_source(repository, timeout)
    audit = _Audit(source, as_of, soon, max_length, workers or os.cpu_count() or 1)
    audit.fingerprints = records is not None
    if targets is not None:
        audit.target_files = open_source(targets, timeout, metadata=False)
    if previous is not None:
        audit.previous = _Audit(open_source(previous, timeout), as_of, None, max_length, 1)
    audit.run(trusted_root)
    if audit.done and records is not None:
        audit.check_records(records)
    result = AuditResult(source.location, audit.problems)
    result.summary = dict(audit.summary, seconds=round(time.monotonic() - started, 3))
    if previous is not None:
        result.changes = {"removed": sorted(audit.removed), "changed": sorted(audit.changed),
                          "removed_roles": audit.removed_roles}
    return result


class _Audit:
    """The state of one audit: trusted roles so far, problems, counts."""

    def __init__(self, source: Source, as_of: datetime, soon: Optional[datetime],
                 max_length: int, workers: int):
        self.source = source
        self.as_of = as_of
        self.soon = soon
        self.max_length = max_length
        self.workers = workers
        self.problems: list = []
        self.summary = {"roles": 0, "targets": 0, "bytes": 0}
        self.previous: Optional[_Audit] = None
        self.fingerprints = False
        self.target_files: Optional[Source] = None
        self.direct: dict = {}  # path -> (role, length, blake2b-256), outside bins
        self.removed: list = []
        self.changed: list = []
        self.removed_roles: list = []
        self.root_origin = "the trusted root given"
        self.done = False
        self.root = None
        self.consistent = True
        self.snapshot = None
        self.pins: dict = {}  # role -> Pin (from the snapshot)
        self.owner: dict = {}  # target path -> role (paths outside hash bins)
        self.reached: dict = {}  # role -> list of (delegator, DelegatedRole | None)
        self.bins: list = []  # (delegator, SuccinctRoles, {bin: report})

    def problem(self, kind, role, path, message) -> None:
        self.problems.append(Problem(kind, role, path, message))

    # --- top-level roles ------------------------------------------------------

    def run(self, trusted_root) -> None:
        if self.previous is not None and self.previous.run_top(None):
            if trusted_root is None:  # rotations since then must follow from it
                trusted_root = self.previous.root.to_bytes()
                self.root_origin = "the previous state's newest root"
        if not self.run_top(trusted_root):
            return
        self.walk()
        self.check_paths()
        self.check_snapshot_coverage()
        self.compare_previous()
        self.done = True

    def run_top(self, trusted_root) -> bool:
        """Root chain, timestamp, snapshot, targets; False if the rest cannot be checked."""
        root = self.load_trusted_root(trusted_root)
        if root is None:
            return False
        root = self.root_chain(root)
        self.root = root
        self.summary["roles"] += 1
        self.consistent = root.signed.consistent_snapshot
        check_common(root.signed, "root", f"{root.signed.version}.root.json", None,
                     self.as_of, self.soon, self.problems)
        timestamp = self.top_role("timestamp", None, root.signed)
        if timestamp is None:
            return False
        meta = timestamp.signed.snapshot_meta
        snapshot = self.top_role("snapshot", Pin(meta.version, meta.length, meta.hashes), root.signed)
        if snapshot is None:
            return False
        self.snapshot = snapshot
        self.pins = self.snapshot_pins(snapshot)
        targets_pin = self.pins.get("targets")
        if targets_pin is None:
            self.problem("not-in-snapshot", "targets", None, "the snapshot does not list targets.json")
            return False
        targets = self.top_role("targets", targets_pin, root.signed)
        if targets is None:
            return False
        self.targets = targets
        return True

    def load_trusted_root(self, trusted_root) -> Optional[Metadata]:
        problems: list = []
        if trusted_root is None:
            md, n = load_role(self.source, "root", "1.root.json", None, self.max_length, "root", problems)
            origin = "the repository's own 1.root.json"
        else:
            from .reader import LocalSource

            data = trusted_root
            if not isinstance(trusted_root, (bytes, bytearray)):
                path = os.fspath(trusted_root)
                data_source = LocalSource(os.path.dirname(path) or ".")
                md, n = load_role(data_source, "root", os.path.basename(path), None,
                                  self.max_length, "root", problems)
            else:
                md, n = _root_from_bytes(bytes(data), problems)
            origin = self.root_origin
        self.problems.extend(problems)
        if md is None:
            return None
        self.summary["bytes"] += n
        check_signed(md, "root", f"{md.signed.version}.root.json", md.signed.keys,
                     md.signed.roles["root"].keyids, md.signed.roles["root"].threshold,
                     self.problems)
        self.summary["trusted_root"] = {
            "origin": origin,
            "version": md.signed.version,
            "keys": _fingerprints(md.signed),
        }
        return md

    def root_chain(self, root: Metadata) -> Metadata:
        """Follow N+1.root.json while each is signed by the old and new keys."""
        for _ in range(MAX_ROOT_ROTATIONS):
            version = root.signed.version + 1
            fname = f"{version}.root.json"
            problems: list = []
            new, n = load_role(self.source, "root", fname, None, self.max_length, "root", problems)
            if new is None:
                if not (problems and problems[0].kind == "missing-metadata"):
                    self.problems.extend(problems)
                break
            self.summary["bytes"] += n
            old_role, new_role = root.signed.roles["root"], new.signed.roles["root"]
            broken: list = []
            check_signed(new, "root", fname, root.signed.keys, old_role.keyids, old_role.threshold,
                         broken)
            check_signed(new, "root", fname, new.signed.keys, new_role.keyids, new_role.threshold,
                         broken)
            if new.signed.version != version:
                broken.append(Problem("root-chain", "root", fname, f"holds version {new.signed.version}"))
            if broken:
                for p in broken:
                    self.problem("root-chain", "root", fname,
                                 f"{p.message}; the chain stops at version {version - 1}")
                break
            root = new
        self.summary["root_version"] = root.signed.version
        return root

    def top_role(self, role: str, pin: Optional[Pin], root_signed) -> Optional[Metadata]:
        fname = role_file(role, pin.version if pin else 0, self.consistent)
        limit = self.max_length
        md, n = load_role(self.source, role, fname, pin, limit, role, self.problems)
        self.summary["bytes"] += n
        if md is None:
            return None
        self.summary["roles"] += 1
        spec = root_signed.roles[role]
        check_signed(md, role, fname, root_signed.keys, spec.keyids, spec.threshold, self.problems)
        check_common(md.signed, role, fname, pin, self.as_of, self.soon, self.problems)
        return md

    def snapshot_pins(self, snapshot: Metadata) -> dict:
        pins = {}
        raw = snapshot.signed.meta._raw
        for name in raw:
            if not name.endswith(".json"):
                self.problem("invalid-metadata", "snapshot", name, "a meta entry not named ROLE.json")
                continue
            entry = raw[name]
            pins[name[:-5]] = Pin(entry["version"], entry.get("length"), entry.get("hashes"))
        return pins

    # --- the delegation graph --------------------------------------------------

    def walk(self) -> None:
        """Breadth first from targets; each delegator's roles as one batch."""
        self.reached["targets"] = []
        self.take_targets("targets", self.targets.signed.targets._raw)
        self.summary["targets"] += len(self.targets.signed.targets._raw)
        items = [(p, e["length"], e["hashes"]) for p, e in self.targets.signed.targets._raw.items()]
        if self.fingerprints:
            self.direct.update((p, ("targets", n, h.get("blake2b-256"))) for p, n, h in items)
        if self.target_files is not None:
            check_target_files(self.target_files, [("targets",) + item for item in items],
                               self.consistent, self.problems)
        queue = [("targets", self.targets.signed)]
        while queue:
            delegator, signed = queue.pop(0)
            delegations = signed.delegations
            if delegations is None:
                continue
            if delegations.succinct_roles is not None:
                reports = self.run_bins(delegator, delegations)
            else:
                reports = self.run_roles(delegator, delegations)
            for report in reports:
                if report.delegations is not None:
                    queue.append((report.name, _DelegatesOnly(report.delegations)))

    def new_edges(self, delegator: str, roles) -> list:
        """Record delegator -> role edges; the roles not reached before."""
        fresh = []
        for name, spec in roles:
            if name in self.reached:
                self.reached[name].append((delegator, spec))
                continue
            self.reached[name] = [(delegator, spec)]
            fresh.append(name)
        return fresh

    def jobs_for(self, names, bins: Optional[SuccinctRoles] = None) -> list:
        jobs = []
        old_pins = self.previous.pins if self.previous is not None else {}
        for i, name in enumerate(names):
            pin = self.pins.get(name)
            if pin is None:
                self.problem("not-in-snapshot", name, None, "delegated, but the snapshot does not list it")
                continue
            jobs.append(RoleJob(name, pin, i if bins is not None else None, old_pins.get(name)))
        return jobs

    def context(self, delegations, roles: dict, bit_length=None, want_paths=False) -> BatchContext:
        prev = self.previous
        return BatchContext(
            self.source, self.consistent, dict(delegations.keys), roles, self.as_of, self.soon,
            self.max_length, bit_length,
            previous=prev.source if prev is not None and prev.root is not None else None,
            previous_consistent=prev.consistent if prev is not None else True,
            want_paths=want_paths, fingerprints=self.fingerprints,
            target_files=self.target_files,
        )

    def run_bins(self, delegator: str, delegations) -> list:
        succinct = delegations.succinct_roles
        names = list(succinct.get_roles())
        self.new_edges(delegator, ((n, succinct) for n in names))
        ctx = self.context(delegations, {"": (succinct.keyids, succinct.threshold)},
                           succinct.bit_length)
        reports = self.run_jobs(ctx, self.jobs_for(names, succinct))
        by_name = {}
        for report in reports:
            by_name[report.name] = report
            for path in report.misplaced:
                right = succinct.get_role_for_target(path)
                self.problem("misplaced-target", report.name, path, f"belongs in {right}")
                self.take_path(path, report.name)
        self.bins.append((delegator, succinct, by_name))
        return reports

    def run_roles(self, delegator: str, delegations) -> list:
        roles = delegations.roles or {}
        fresh = self.new_edges(delegator, roles.items())
        ctx = self.context(delegations, {n: (r.keyids, r.threshold) for n, r in roles.items()},
                           want_paths=True)
        reports = self.run_jobs(ctx, self.jobs_for(fresh))
        for report in reports:
            self.take_targets(report.name, report.paths or ())
        return reports

    def run_jobs(self, ctx: BatchContext, jobs: list) -> list:
        if len(jobs) < PARALLEL_MIN_JOBS or self.workers < 2:
            reports = check_roles(ctx, jobs)
        else:
            reports = _parallel(ctx, jobs, self.workers)
        for report in reports:
            self.problems.extend(report.problems)
            self.summary["bytes"] += report.nbytes
            if report.loaded:
                self.summary["roles"] += 1
                self.summary["targets"] += report.targets
            if report.entries:
                self.direct.update((p, (report.name, n, d)) for p, n, d in report.entries)
            self.removed.extend(report.removed)
            self.changed.extend(report.changed)
        return reports

    def take_targets(self, role: str, paths) -> None:
        for path in paths:
            self.take_path(path, role)

    def take_path(self, path: str, role: str) -> None:
        other = self.owner.get(path)
        if other is not None and other != role:
            self.problem("duplicate-target", role, path, f"also listed by {other}")
        else:
            self.owner[path] = role

    # --- checks over the whole graph -------------------------------------------

    def check_paths(self) -> None:
        """Ordinary roles' targets inside their delegated paths; paths
        outside the bins listed in a bin too; delegation cycles."""
        for path, role in list(self.owner.items()):
            if role == "targets" or _is_bin(self.reached.get(role)):
                continue
            if not self.allowed(role, path, ()):
                self.problem("undelegated-target", role, path,
                             "outside every path pattern delegated to this role")
        self.check_bin_duplicates()
        self.check_cycles()

    def allowed(self, role: str, path: str, seen: tuple) -> bool:
        if role == "targets":
            return True
        if role in seen:
            return False
        for delegator, spec in self.reached.get(role, ()):
            delegated = spec.is_delegated_path(path) if isinstance(spec, DelegatedRole) else True
            if delegated and self.allowed(delegator, path, seen + (role,)):
                return True
        return False

    def check_bin_duplicates(self) -> None:
        """A path held outside a bin (or in the wrong bin) and in its own bin."""
        for delegator, succinct, reports in self.bins:
            wanted: dict = {}
            for path, role in self.owner.items():
                right = succinct.get_role_for_target(path)
                if right != role:
                    wanted.setdefault(right, []).append((path, role))
            for right, items in sorted(wanted.items()):
                report = reports.get(right)
                if report is None or not report.loaded:
                    continue
                problems: list = []
                md, _ = load_role(self.source, right, role_file(right, report.version, self.consistent),
                                  None, self.max_length, "targets", problems)
                if md is None:
                    continue
                for path, role in items:
                    if path in md.signed.targets._raw:
                        self.problem("duplicate-target", role, path, f"also listed by {right}")

    def check_cycles(self) -> None:
        """A delegation edge back to a role on the path that reached it."""
        edges: dict = {}
        for role, incoming in self.reached.items():
            for delegator, _spec in incoming:
                edges.setdefault(delegator, []).append(role)
        state: dict = {}
        stack = [("targets", iter(edges.get("targets", ())))]
        state["targets"] = 1
        trail = ["targets"]
        while stack:
            role, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                trail.pop()
                state[role] = 2
                continue
            if state.get(child) == 1:
                cycle = trail[trail.index(child):] + [child]
                self.problem("delegation-cycle", role, None,
                             "delegations loop: " + " -> ".join(cycle))
            elif child not in state:
                state[child] = 1
                trail.append(child)
                stack.append((child, iter(edges.get(child, ()))))

    def check_records(self, records) -> None:
        """The registry's records against every target (contents.py)."""
        if len(self.bins) > 1:
            self.problem("invalid-argument", None, os.fspath(records),
                         "records are checked against one group of hash bins; this repository has "
                         f"{len(self.bins)}")
            return
        succinct = self.bins[0][1] if self.bins else None
        reports = self.bins[0][2] if self.bins else {}
        prints = {name: r.fingerprint for name, r in reports.items() if r.fingerprint[1]}

        def bin_of(path):
            return succinct.get_role_for_target(path) if succinct is not None else None

        def load_bin(name):
            report = reports.get(name)
            if report is None or not report.loaded:
                return []
            md, _ = load_role(self.source, name, role_file(name, report.version, self.consistent),
                              None, self.max_length, "targets", [])
            if md is None:
                return []
            return [(p, e["length"], e["hashes"].get("blake2b-256"))
                    for p, e in md.signed.targets._raw.items()]

        check_records(records, self.direct, bin_of, prints, load_bin, self.problems)

    def check_snapshot_coverage(self) -> None:
        for name in self.pins:
            if name not in self.reached and name != "targets":
                self.problem("unreachable-role", name, None,
                             "listed in the snapshot but delegated by no reachable role")

    def compare_previous(self) -> None:
        """No role's version goes down (timestamp, snapshot, root and every
        role the old snapshot lists)."""
        old = self.previous
        if old is None or old.snapshot is None:
            if old is not None:
                self.problem("invalid-argument", None, old.source.location,
                             "the previous state could not be read: "
                             + "; ".join(str(p) for p in old.problems[:3]))
            return
        pairs = [("root", old.root.signed.version, self.root.signed.version),
                 ("snapshot", old.snapshot.signed.version, self.snapshot.signed.version)]
        for name, pin in old.pins.items():
            new = self.pins.get(name)
            if new is None:
                continue
            pairs.append((name, pin.version, new.version))
        for name, before, now in pairs:
            if now < before:
                self.problem("rollback", name, None, f"version {now}, the previous state had {before}")
        self.removed_roles = sorted(set(old.pins) - set(self.pins))


class _DelegatesOnly:
    """What the walk needs of a role parsed in a worker: its delegations."""

    def __init__(self, delegations):
        self.delegations = delegations


def _is_bin(incoming) -> bool:
    return bool(incoming) and isinstance(incoming[0][1], SuccinctRoles)


def _root_from_bytes(data: bytes, problems: list):
    from .roles import _parse_problem
    from ..exceptions import DeserializationError

    try:
        md = Metadata.from_bytes(data)
    except DeserializationError as exc:
        problems.append(_parse_problem(data, "root", "trusted root", exc))
        return None, len(data)
    if md.signed.type != "root":
        problems.append(Problem("invalid-metadata", "root", "trusted root", "not a root role"))
        return None, len(data)
    return md, len(data)


def _fingerprints(root_signed) -> list:
    """Each root key: key id, type and SHA-256 of its key material."""
    out = []
    for keyid in root_signed.roles["root"].keyids:
        key = root_signed.keys.get(keyid)
        fp = key.fingerprint if key is not None else None
        out.append({
            "keyid": keyid,
            "keytype": key.keytype if key is not None else None,
            "fingerprint": hashlib.sha256(fp).hexdigest() if fp is not None else None,
        })
    return out


# --- worker processes ----------------------------------------------------------

_WORKER_CTX: Optional[BatchContext] = None


def _init_worker(ctx: BatchContext) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx


def _run_chunk(jobs: list) -> list:
    return check_roles(_WORKER_CTX, jobs)


def _parallel(ctx: BatchContext, jobs: list, workers: int) -> list:
    """check_roles over ``workers`` processes, in chunks, results in order."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    chunks = workers * 4
    size = -(-len(jobs) // chunks)
    parts = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    reports: list = []
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                 initializer=_init_worker, initargs=(ctx,)) as pool:
            for part in pool.map(_run_chunk, parts):
                reports.extend(part)
    except BrokenProcessPool:  # a worker was killed (out of memory?): no workers then
        done = {report.name for report in reports}
        reports.extend(check_roles(ctx, [job for job in jobs if job.name not in done]))
    return reports
