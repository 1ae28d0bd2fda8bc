"""A small TUF repository writer, on tufc's own metadata and signer API.

It exists for ``tufc demo``: a complete, consistent-snapshot repository in a
folder (``metadata/`` and hash-prefixed ``targets/``), signed with fresh
Ed25519 keys, that the demo can update honestly and that its attacker can
copy, replay and re-sign.  It is deliberately small: one process, keys in
memory, no key storage.  Not a tool for running a production repository.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from datetime import datetime, timedelta, timezone

from .metadata import (
    DelegatedRole,
    Delegations,
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from .signer import Ed25519Signer

__all__ = ["Repository", "EXPIRY"]

TOP_LEVEL = ("root", "timestamp", "snapshot", "targets")

# How long each role stays valid: the timestamp is renewed often, so it is
# the role a freeze attack runs into first.
EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "delegated": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}


class Repository:
    """A signed TUF repository written to ``folder``.

    ``signers[role]`` holds each role's signers; ``metadata[role]`` its
    current ``Metadata`` (editable); ``published`` every file written, by
    its path under ``folder`` (so old versions can be replayed).
    """

    def __init__(
        self,
        folder: str,
        root_keys: int = 3,
        root_threshold: int = 2,
        now: datetime | None = None,
    ):
        self.folder = folder
        self.now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        self.signers: dict[str, list[Ed25519Signer]] = {}
        self.metadata: dict[str, Metadata] = {}
        self.parent: dict[str, str] = {}  # delegated role -> delegating role
        self.target_data: dict[str, bytes] = {}
        self.published: dict[str, bytes] = {}
        self._dirty: set[str] = set()

        root = Root(expires=self._expiry("root"), consistent_snapshot=True)
        for role in TOP_LEVEL:
            count = root_keys if role == "root" else 1
            self.signers[role] = [Ed25519Signer.generate() for _ in range(count)]
            for signer in self.signers[role]:
                root.add_key(signer.public_key, role)
        root.roles["root"].threshold = root_threshold
        self.metadata["root"] = Metadata(root)
        self.metadata["targets"] = Metadata(Targets(expires=self._expiry("targets")))
        self.metadata["snapshot"] = Metadata(
            Snapshot(expires=self._expiry("snapshot"), meta={})
        )
        self.metadata["timestamp"] = Metadata(
            Timestamp(expires=self._expiry("timestamp"))
        )
        self._dirty.add("targets")

    # --- content ----------------------------------------------------------

    def _expiry(self, role: str) -> datetime:
        return self.now + EXPIRY.get(role, EXPIRY["delegated"])

    def delegate(self, name: str, paths: list[str], parent: str = "targets") -> None:
        """Delegate the target paths matching ``paths`` to a new role."""
        signer = Ed25519Signer.generate()
        delegator = self.metadata[parent].signed
        if delegator.delegations is None:
            delegator.delegations = Delegations({}, roles={})
        delegator.delegations.roles[name] = DelegatedRole(
            name, [], 1, terminating=True, paths=list(paths)
        )
        delegator.add_key(signer.public_key, name)
        self.signers[name] = [signer]
        self.parent[name] = parent
        self.metadata[name] = Metadata(Targets(expires=self._expiry(name)))
        self._dirty.update((parent, name))

    def add_target(
        self, path: str, data: bytes, role: str = "targets", custom: dict | None = None
    ) -> TargetFile:
        """Add or replace a target file listed by ``role``."""
        target = TargetFile.from_data(path, data, ["sha256"])
        if custom:
            target.unrecognized_fields["custom"] = dict(custom)
        self.metadata[role].signed.targets[path] = target
        self.target_data[path] = data
        self._write(self.target_file_name(path), data)
        self._dirty.add(role)
        return target

    def remove_target(self, path: str, role: str = "targets") -> None:
        """Stop listing ``path`` in ``role`` (takes effect on publish)."""
        self.metadata[role].signed.targets.pop(path)
        self.target_data.pop(path, None)
        self._dirty.add(role)

    # --- names ------------------------------------------------------------

    @staticmethod
    def metadata_file_name(role: str, version: int | None) -> str:
        """Path under the folder: version-prefixed except for the timestamp."""
        quoted = urllib.parse.quote(role, safe="")
        if version is None:
            return f"metadata/{quoted}.json"
        return f"metadata/{version}.{quoted}.json"

    def target_file_name(self, path: str) -> str:
        """``targets/DIR/SHA256.NAME``: the consistent-snapshot name."""
        digest = hashlib.sha256(self.target_data[path]).hexdigest()
        directory, _, name = path.rpartition("/")
        prefix = f"{directory}/" if directory else ""
        return f"targets/{prefix}{digest}.{name}"

    # --- signing and publishing ----------------------------------------------

    def sign(self, role: str, signers: list | None = None) -> bytes:
        """Sign ``role`` as it is with ``signers`` (default: its own)."""
        md = self.metadata[role]
        md.signatures.clear()
        for signer in self.signers[role] if signers is None else signers:
            md.sign(signer, append=True)
        return md.to_bytes()

    def publish_root(self, extra_signers: list | None = None) -> bytes:
        """Write ``N.root.json`` signed by the root keys (and ``extra_signers``,
        e.g. the previous root's keys after a rotation)."""
        signers = list(self.signers["root"]) + list(extra_signers or [])
        data = self.sign("root", signers)
        self._write(self.metadata_file_name("root", self.root.version), data)
        return data

    def publish(self) -> None:
        """Release what changed: re-sign each changed targets role with a new
        version, then a new snapshot listing them (version, length, sha256),
        then a new timestamp."""
        if self.metadata_file_name("root", 1) not in self.published:
            self.publish_root()
        snapshot = self.metadata["snapshot"]
        for role in list(self.metadata):
            if role in ("root", "timestamp", "snapshot") or role not in self._dirty:
                continue
            signed = self.metadata[role].signed
            name = self.metadata_file_name(role, signed.version)
            if name in self.published:
                signed.version += 1
                name = self.metadata_file_name(role, signed.version)
            data = self.sign(role)
            self._write(name, data)
            snapshot.signed.meta[f"{role}.json"] = MetaFile.from_data(
                signed.version, data, ["sha256"]
            )
        self._dirty.clear()
        self._publish_snapshot_and_timestamp()

    def renew_timestamp(self) -> bytes:
        """A new timestamp version for the same snapshot (routine renewal)."""
        timestamp = self.metadata["timestamp"].signed
        timestamp.version += 1
        data = self.sign("timestamp")
        self._write(self.metadata_file_name("timestamp", None), data)
        return data

    def _publish_snapshot_and_timestamp(self) -> None:
        snapshot = self.metadata["snapshot"].signed
        if self.metadata_file_name("snapshot", snapshot.version) in self.published:
            snapshot.version += 1
        data = self.sign("snapshot")
        self._write(self.metadata_file_name("snapshot", snapshot.version), data)
        timestamp = self.metadata["timestamp"].signed
        timestamp.snapshot_meta = MetaFile.from_data(snapshot.version, data, ["sha256"])
        if self.metadata_file_name("timestamp", None) in self.published:
            timestamp.version += 1
        self._write(self.metadata_file_name("timestamp", None), self.sign("timestamp"))

    @property
    def root(self) -> Root:
        return self.metadata["root"].signed

    def _write(self, name: str, data: bytes) -> None:
        path = os.path.join(self.folder, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        self.published[name] = data

    def current(self, name: str) -> bytes:
        """The bytes last written under ``name`` (e.g. "metadata/timestamp.json")."""
        return self.published[name]
