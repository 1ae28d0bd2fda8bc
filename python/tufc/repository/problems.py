"""What a repository audit reports: named problems and the result.

Every problem has a kind from :data:`KINDS` (stable names for scripts and
``--json``), the role and path it is about, and a message for people.
Warnings (expiring soon, roles nobody delegates to) do not fail the audit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["KINDS", "PROBLEM_KINDS", "WARNINGS", "Problem", "AuditResult"]

# kind -> what it means (errors unless listed in WARNINGS)
KINDS = {
    "missing-metadata": "a metadata file the repository needs is not published",
    "unreadable": "a file could not be read (I/O error, HTTP error)",
    "timeout": "the server did not answer in time",
    "too-large": "a file is longer than its pinned length or the configured maximum",
    "truncated": "a metadata file ends in the middle of its JSON",
    "not-json": "a metadata file is not JSON",
    "invalid-metadata": "JSON, but not valid metadata of the expected role type",
    "invalid-target": "a target entry is malformed",
    "length-mismatch": "a file's length differs from what snapshot/timestamp pin",
    "hash-mismatch": "a file's hash differs from what snapshot/timestamp pin",
    "version-mismatch": "a role's version differs from the version pinned for it",
    "unsigned": "a role's signature threshold is not met by its delegator's keys",
    "root-chain": "a root version does not validly follow the one before",
    "expired": "a role expired before the reference time",
    "expires-soon": "a role expires within the given window",
    "not-in-snapshot": "a delegated role the snapshot does not list",
    "unreachable-role": "the snapshot lists a role nothing delegates to",
    "delegation-cycle": "delegations lead back to a role on their own path",
    "misplaced-target": "a target is not in the hash bin its path hashes to",
    "undelegated-target": "a target lies outside the paths delegated to its role",
    "duplicate-target": "a target path is listed by more than one role",
    "rollback": "a role's version is lower than in the previous state",
    "changed-without-version": "a role's bytes changed but its version did not",
    "invalid-record": "a line of the records export cannot be read",
    "record-missing": "a record's path is not in the repository",
    "record-mismatch": "a record's length or blake2b-256 differs from the repository",
    "unrecorded-target": "the repository holds a target the records lack",
    "target-missing": "a target file is not where the repository says",
    "target-mismatch": "a target file's length or hashes differ from its entry",
    "invalid-argument": "an option of the audit itself cannot be used",
    "audit-error": "the audit failed on this role in a way no check foresaw (a bug: report it)",
}
WARNINGS = frozenset({"expires-soon", "unreachable-role"})
PROBLEM_KINDS = KINDS


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or, for warnings, worth knowing) in the repository."""

    kind: str
    role: Optional[str]
    path: Optional[str]
    message: str

    @property
    def severity(self) -> str:
        return "warning" if self.kind in WARNINGS else "error"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "severity": self.severity, "role": self.role,
                "path": self.path, "message": self.message}

    def __str__(self) -> str:
        where = " ".join(x for x in (self.role, self.path) if x)
        return f"{self.severity}: {self.kind}" + (f" [{where}]" if where else "") + f": {self.message}"


@dataclass
class AuditResult:
    """The outcome of :func:`tufc.repository.verify`.

    ``ok`` is true when no error was found (warnings allowed).  ``summary``
    counts roles, targets and bytes and gives the time taken and the
    trusted root's key fingerprints; ``changes`` (with ``previous``) lists
    the targets removed and changed since the previous state.
    """

    location: str
    problems: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)

    @property
    def errors(self) -> list:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def verdict(self) -> str:
        errors, warnings = len(self.errors), len(self.warnings)
        if errors:
            return f"FAIL: {self.location}: {errors} error(s), {warnings} warning(s)"
        extra = f", {warnings} warning(s)" if warnings else ""
        return (f"OK: {self.location}: {self.summary.get('roles', 0):,} roles, "
                f"{self.summary.get('targets', 0):,} targets verified{extra}")

    def kinds(self) -> set:
        return {p.kind for p in self.problems}

    def to_dict(self) -> dict:
        return {"ok": self.ok, "verdict": self.verdict, "location": self.location,
                "summary": self.summary, "changes": self.changes,
                "problems": [p.to_dict() for p in self.problems]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)
