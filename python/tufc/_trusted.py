"""The trusted-state machine of a TUF client: bytes in, no I/O.

``TrustedMetadataSet`` holds the metadata trusted so far in one update and
decides whether new bytes may join it (specification section 5, "detailed
client workflow"). Method names and failure classes follow python-tuf's
``tuf/ngclient/_internal/trusted_metadata_set.py`` so an Updater written
against either behaves the same; the reference time is the caller's, fixed
for the whole update.

Loading order is root -> timestamp -> snapshot -> targets -> delegated
targets; calling out of order is a ``RuntimeError`` (a caller bug, not a
repository failure). As in python-tuf, a timestamp or snapshot that is
signed correctly but expired (or, for the snapshot, not the version the
timestamp names) is still kept as "intermediate" metadata so it can serve
as the rollback baseline for the next one, and then the error is raised;
nothing can be loaded on top of intermediate metadata.

Fast-forward recovery needs no extra state here: a cached timestamp or
snapshot is loaded through the same checks as a downloaded one, so after the
root rotated those keys, the old file fails verification and never becomes
the baseline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone

from .exceptions import (
    BadVersionNumberError,
    EqualVersionNumberError,
    ExpiredMetadataError,
    RepositoryError,
    UnsignedMetadataError,
)
from .keys import verify_threshold
from .metadata import Metadata, Root, Signed, Snapshot, Targets, Timestamp, _sig_map

__all__ = ["TrustedMetadataSet"]


def _load(data: bytes, expected: type[Signed]) -> Metadata:
    md = Metadata.from_bytes(data)
    if md.signed.type != expected.type:
        raise RepositoryError(f"expected {expected.type!r} metadata, got {md.signed.type!r}")
    return md


def _root_signers(old: Root, new_md: Metadata) -> tuple[int, int]:
    """How many distinct keys of the old root's and of the new root's root
    role signed ``new_md``.

    Each signature is verified once: a key both roots trust under the same
    key id is checked in one ``verify_threshold`` call over both key sets.
    When merging could blur the count (one key id naming two different keys,
    or one key under two key ids) the roots are counted apart.
    """
    new: Root = new_md.signed  # type: ignore[assignment]
    old_ids, new_ids = old.roles["root"].keyids, new.roles["root"].keyids
    merged = {k: old.keys[k] for k in old_ids if k in old.keys}
    separate = False
    for keyid in new_ids:
        key = new.keys.get(keyid)
        if key is not None:
            if merged.setdefault(keyid, key) != key:
                separate = True
    if not separate:
        fingerprints = [key.fingerprint for key in merged.values()]
        known = [fp for fp in fingerprints if fp is not None]
        separate = len(set(known)) != len(known)
    if separate:
        return (
            len(old.get_verification_result("root", new_md).verified),
            len(new.get_verification_result("root", new_md).verified),
        )
    result = verify_threshold(
        new_md._signed_payload(), _sig_map(new_md.signatures), merged, list(merged), 1
    )
    verified = result.verified
    return (
        sum(1 for k in dict.fromkeys(old_ids) if k in verified),
        sum(1 for k in dict.fromkeys(new_ids) if k in verified),
    )


class TrustedMetadataSet(Mapping):
    """The verified metadata of one update, keyed by role name.

    ``set[role]`` is the trusted ``Metadata``; ``root``, ``timestamp``,
    ``snapshot`` and ``targets`` are the ``Signed`` parts of the top-level
    roles. Every ``update_*`` raises a ``RepositoryError`` subclass when the
    bytes may not be trusted.
    """

    def __init__(self, root_data: bytes | None, reference_time: datetime):
        """Trust ``root_data``: it must be signed by a threshold of its own
        root keys (its expiry is checked once the timestamp is loaded).
        ``None`` is for ``next_refresh`` only."""
        if not isinstance(reference_time, datetime) or reference_time.tzinfo is None:
            raise ValueError("reference_time must be a timezone-aware datetime")
        self.reference_time = reference_time
        self._trusted: dict[str, Metadata] = {}
        self._delegations: set[tuple[str, str]] = set()
        # the timestamp and snapshot an earlier refresh trusted: no new one
        # may go below them (see ``next_refresh``)
        self._floor: dict[str, Signed] = {}
        if root_data is not None:
            md = _load(root_data, Root)
            md.signed.verify_delegate("root", md)
            self._add("root", md, "root")

    @classmethod
    def next_refresh(cls, previous: TrustedMetadataSet, reference_time: datetime) -> TrustedMetadataSet:
        """A set for another refresh in the same process: ``previous``'s
        root, and its timestamp and snapshot (or the ones it had as floor)
        as the floor no new version may go below, whatever the cache still
        holds.  The floor is dropped when a new root rotates the timestamp
        or snapshot keys (fast-forward recovery, as for cached files)."""
        new = cls(None, reference_time)  # type: ignore[arg-type]
        new._add("root", previous._trusted["root"], "root")
        for role in ("timestamp", "snapshot"):
            md = previous._trusted.get(role)
            floor = md.signed if md is not None else previous._floor.get(role)
            if floor is not None:
                new._floor[role] = floor
        return new

    def _baseline(self, role: str) -> Signed | None:
        """What a new ``role`` is checked against for rollback: the trusted
        one, else the floor from an earlier refresh."""
        md = self._trusted.get(role)
        return md.signed if md is not None else self._floor.get(role)

    # --- mapping -------------------------------------------------------------

    def __getitem__(self, role: str) -> Metadata:
        return self._trusted[role]

    def __contains__(self, role: object) -> bool:
        return role in self._trusted

    def __iter__(self) -> Iterator[str]:
        return iter(self._trusted)

    def __len__(self) -> int:
        return len(self._trusted)

    def contains(self, role: str, delegator: str) -> bool:
        """True when ``role`` is trusted and was verified with ``delegator``'s keys."""
        return (delegator, role) in self._delegations

    def _add(self, role: str, md: Metadata, delegator: str) -> None:
        # Verified: its signed bytes (as large as the file) are not needed
        # again.  Letting them go keeps a bin at one copy in memory, and
        # the next bin's bytes reuse the freed pages (fewer page faults
        # per lookup).  ``signed_bytes`` recomputes them if asked.
        md._signed_bytes = None
        self._trusted[role] = md
        self._delegations.add((delegator, role))

    @property
    def root(self) -> Root:
        return self._trusted["root"].signed  # type: ignore[return-value]

    @property
    def timestamp(self) -> Timestamp:
        return self._trusted["timestamp"].signed  # type: ignore[return-value]

    @property
    def snapshot(self) -> Snapshot:
        return self._trusted["snapshot"].signed  # type: ignore[return-value]

    @property
    def targets(self) -> Targets:
        return self._trusted["targets"].signed  # type: ignore[return-value]

    # --- updates -------------------------------------------------------------

    def update_root(self, data: bytes) -> Root:
        """Trust root version N+1, signed by N's root keys and its own.

        An intermediate root may be expired.
        """
        if "timestamp" in self._trusted:
            raise RuntimeError("Cannot update root after timestamp")
        md = _load(data, Root)
        new: Root = md.signed  # type: ignore[assignment]
        old = self.root
        old_count, new_count = _root_signers(old, md)
        threshold = old.roles["root"].threshold
        if old_count < threshold:
            raise UnsignedMetadataError(
                f"root was signed by {old_count}/{threshold} keys of the trusted root"
            )
        if new.version != old.version + 1:
            raise BadVersionNumberError(
                f"expected root version {old.version + 1}, got {new.version}"
            )
        threshold = new.roles["root"].threshold
        if new_count < threshold:
            raise UnsignedMetadataError(
                f"root was signed by {new_count}/{threshold} of its own root keys"
            )
        if self._floor and any(
            set(old.roles[role].keyids) != set(new.roles[role].keyids)
            for role in ("timestamp", "snapshot")
        ):
            self._floor.clear()
        self._add("root", md, "root")
        return new

    def update_timestamp(self, data: bytes) -> Timestamp:
        """Trust a new timestamp; the final root must not be expired.

        Same version as the trusted one: ``EqualVersionNumberError`` and the
        trusted one stays. An expired timestamp is kept as intermediate and
        ``ExpiredMetadataError`` raised.
        """
        if "snapshot" in self._trusted:
            raise RuntimeError("Cannot update timestamp after snapshot")
        if self.root.is_expired(self.reference_time):
            raise _expired("final root.json", self.root, self.reference_time)
        md = _load(data, Timestamp)
        self.root.verify_delegate("timestamp", md)
        new: Timestamp = md.signed  # type: ignore[assignment]
        old = self._baseline("timestamp")
        if old is not None:
            if new.version < old.version:
                raise BadVersionNumberError(
                    f"new timestamp version {new.version} must be >= {old.version}"
                )
            if new.version == old.version and "timestamp" in self._trusted:
                raise EqualVersionNumberError(f"timestamp version {new.version} is already trusted")
            if new.snapshot_meta.version < old.snapshot_meta.version:
                raise BadVersionNumberError(
                    f"new snapshot version must be >= {old.snapshot_meta.version}, "
                    f"got {new.snapshot_meta.version}"
                )
        self._add("timestamp", md, "root")
        self._check_final_timestamp()
        return new

    def _check_final_timestamp(self) -> None:
        if self.timestamp.is_expired(self.reference_time):
            raise _expired("timestamp.json", self.timestamp, self.reference_time)

    def update_snapshot(self, data: bytes, trusted: bool | None = False) -> Snapshot:
        """Trust a new snapshot.

        Length and hashes from the timestamp are checked before parsing
        (skipped when ``trusted``: bytes this set verified before, e.g. the
        cached copy). No role the trusted snapshot lists may vanish or go
        back in version. Expired, or not the version the timestamp names:
        kept as intermediate, then the error is raised.
        """
        if "timestamp" not in self._trusted:
            raise RuntimeError("Cannot update snapshot before timestamp")
        if "targets" in self._trusted:
            raise RuntimeError("Cannot update snapshot after targets")
        self._check_final_timestamp()
        if not trusted:
            self.timestamp.snapshot_meta.verify_length_and_hashes(data)
        md = _load(data, Snapshot)
        self.root.verify_delegate("snapshot", md)
        new: Snapshot = md.signed  # type: ignore[assignment]
        old = self._baseline("snapshot")
        if old is not None:
            self._check_snapshot_rollback(old, new)
        self._add("snapshot", md, "root")
        self._check_final_snapshot()
        return new

    @staticmethod
    def _check_snapshot_rollback(old: Snapshot, new: Snapshot) -> None:
        """Every role in ``old`` is in ``new`` with a version not lower.

        One merge pass over the two sorted entry maps (snapshots can name
        tens of thousands of roles), building no MetaFile.
        """
        name = old.meta.rolled_back(new.meta)
        if name is None:
            return
        now = new.meta_version(name)
        if now is None:
            raise RepositoryError(f"new snapshot is missing info for {name!r}")
        raise BadVersionNumberError(
            f"{name} version went back from {old.meta_version(name)} to {now}"
        )

    def _check_final_snapshot(self) -> None:
        if self.snapshot.is_expired(self.reference_time):
            raise _expired("snapshot.json", self.snapshot, self.reference_time)
        expected = self.timestamp.snapshot_meta.version
        if self.snapshot.version != expected:
            raise BadVersionNumberError(
                f"expected snapshot version {expected}, got {self.snapshot.version}"
            )

    def update_targets(self, data: bytes) -> Targets:
        """Trust the top-level targets (signed by root's targets keys)."""
        return self.update_delegated_targets(data, "targets", "root")

    def update_delegated_targets(self, data: bytes, role_name: str, delegator_name: str) -> Targets:
        """Trust ``role_name``'s metadata, delegated by ``delegator_name``.

        The role must be listed in the snapshot; length and hashes from the
        snapshot are checked before parsing; version must equal the
        snapshot's; not expired.
        """
        md = self.check_delegated_targets(data, role_name, delegator_name)
        return self.add_delegated_targets(md, role_name, delegator_name)

    def add_delegated_targets(self, md: Metadata, role_name: str, delegator_name: str) -> Targets:
        """Trust what ``check_delegated_targets`` of this set returned for
        the same role and delegator (the set has not moved on since: it
        only moves on in a new refresh)."""
        self._add(role_name, md, delegator_name)
        return md.signed  # type: ignore[return-value]

    def check_delegated_targets(self, data: bytes, role_name: str, delegator_name: str) -> Metadata:
        """Every check of ``update_delegated_targets``, changing nothing:
        several threads may check roles at once while the set is not
        updated, then add them with ``add_delegated_targets`` one by one."""
        if "snapshot" not in self._trusted:
            raise RuntimeError("Cannot load targets before snapshot")
        self._check_final_snapshot()
        delegator_md = self._trusted.get(delegator_name)
        if delegator_md is None:
            raise RuntimeError("Cannot load targets before delegator")
        meta = self.snapshot.meta.get(f"{role_name}.json")
        if meta is None:
            raise RepositoryError(f"snapshot does not contain information for {role_name!r}")
        meta.verify_length_and_hashes(data)
        md = _load(data, Targets)
        delegator_md.signed.verify_delegate(role_name, md)  # type: ignore[attr-defined]
        new: Targets = md.signed  # type: ignore[assignment]
        if new.version != meta.version:
            raise BadVersionNumberError(f"expected {role_name} v{meta.version}, got v{new.version}")
        if new.is_expired(self.reference_time):
            raise _expired(f"new {role_name}", new, self.reference_time)
        return md


def _expired(what: str, signed: Signed, reference_time: datetime) -> ExpiredMetadataError:
    """The expiry error naming the role, its version and both times."""

    def utc(moment: datetime) -> str:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    return ExpiredMetadataError(
        f"{what} version {signed.version} expired at {utc(signed.expires)} "
        f"(checked as of {utc(reference_time)})"
    )
