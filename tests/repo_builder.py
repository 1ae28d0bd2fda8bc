"""Build signed TUF repositories with python-tuf, an independent producer.

Tests must not check tufc against metadata tufc wrote itself, so every
repository in the suite comes from python-tuf's Metadata API and
securesystemslib's ed25519 ``CryptoSigner``.

Typical use::

    repo = RepoBuilder()                       # v1 of every role, signed
    repo.add_target("a/b.txt", b"data")        # marks "targets" changed
    repo.add_delegation("targets", "role1", paths=["a/*"])
    repo.add_target("a/c.txt", b"more", role="role1")
    repo.publish()                             # re-sign what changed,
                                               # then snapshot, timestamp
    repo.rotate_keys("timestamp")              # new root version
    repo.publish()
    repo.metadata_files()   # {"1.root.json": b"...", "2.root.json": ...,
                            #  "timestamp.json": ..., "3.snapshot.json": ...}
    repo.target_files()     # {"a/<sha256>.b.txt": b"data", ...}
    repo.write(tmp_path)    # tmp_path/metadata/..., tmp_path/targets/...

The model objects stay editable (``repo.md["snapshot"].signed...``). After
editing one by hand, either ``repo.bump(role)`` so the next ``publish()``
re-signs it with a new version, or, for attacks, ``repo.sign(role)``: it
signs the role as it is (no version bump, no snapshot/timestamp update;
``signers=`` to sign with other keys) and returns the bytes.
``repo.role_bytes(role)`` is what was signed last for a role; tests keep
older bytes themselves to replay them (rollback, freeze).

Rules of ``publish()``: every changed role gets version + 1 (a role added
since the last publish keeps version 1); the snapshot is re-signed when any
targets role changed, the timestamp when the snapshot changed; a changed
root is signed by its own keys AND the keys of the previous root version.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from datetime import datetime, timezone
from typing import Iterable
from urllib.parse import quote

from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    TOP_LEVEL_ROLE_NAMES,
    DelegatedRole,
    Delegations,
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)

__all__ = ["RepoBuilder", "SPEC_VERSION", "DEFAULT_EXPIRY", "bin_index"]

SPEC_VERSION = "1.0.31"
# Far enough ahead that no test run meets it, fixed so bytes are reproducible
# for a given set of keys.
DEFAULT_EXPIRY = datetime(2099, 1, 1, tzinfo=timezone.utc)
PAST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def bin_index(path: str, bit_length: int) -> int:
    """The succinct hash bin (TAP 15) of a target path, computed here."""
    digest = hashlib.sha256(path.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - bit_length)


class RepoBuilder:
    """A TUF repository in memory, signed with python-tuf.

    ``md[role]`` is the python-tuf ``Metadata`` object of each role (top-level
    and delegated); ``signers[role]`` the securesystemslib signers holding
    its keys. ``consistent_snapshot`` picks the published file names;
    ``meta_hashes`` adds length and sha256 to the snapshot's and the
    timestamp's MetaFile entries (off: version only, python-tuf's default).
    """

    def __init__(
        self,
        consistent_snapshot: bool = True,
        meta_hashes: bool = False,
        expires: datetime = DEFAULT_EXPIRY,
    ) -> None:
        self.consistent_snapshot = consistent_snapshot
        self.meta_hashes = meta_hashes
        self.expires = expires
        self.md: dict[str, Metadata] = {}
        self.signers: dict[str, list[Signer]] = {}
        self.targets_data: dict[str, bytes] = {}  # target path -> content
        self.root_history: list[bytes] = []  # index v-1 -> root version v
        # Published metadata: role -> {version: bytes}, and the bytes signed
        # last for each role (what the repository serves now).
        self._published: dict[str, dict[int, bytes]] = {}
        self._latest: dict[str, bytes] = {}
        self._changed: set[str] = set()
        self._root_signers_published: list[Signer] = []

        root = Root(
            version=1,
            spec_version=SPEC_VERSION,
            expires=expires,
            consistent_snapshot=consistent_snapshot,
        )
        self.md["root"] = Metadata(root)
        for role in TOP_LEVEL_ROLE_NAMES:
            self.signers[role] = []
            self._new_key(role)
        self.md["timestamp"] = Metadata(
            Timestamp(1, SPEC_VERSION, expires, MetaFile(1))
        )
        self.md["snapshot"] = Metadata(Snapshot(1, SPEC_VERSION, expires, {}))
        self.md["targets"] = Metadata(Targets(1, SPEC_VERSION, expires))
        self._changed.update(TOP_LEVEL_ROLE_NAMES)
        self._publish_root()
        self._changed.discard("root")
        self.publish()

    # --- accessors ---------------------------------------------------------

    @property
    def root(self) -> Root:
        return self.md["root"].signed

    def role_bytes(self, role: str) -> bytes:
        """The bytes of ``role`` signed last (by ``publish`` or ``sign``)."""
        if role == "root":
            return self.root_history[-1]
        return self._latest[role]

    def root_bytes(self, version: int) -> bytes:
        """The signed bytes of root version ``version`` (1-based)."""
        return self.root_history[version - 1]

    def delegator_of(self, role: str) -> str:
        """Name of the role that delegates to ``role`` ("root" for top-level)."""
        if role in TOP_LEVEL_ROLE_NAMES:
            return "root"
        for name, md in self.md.items():
            delegations = getattr(md.signed, "delegations", None)
            if delegations is None:
                continue
            if delegations.roles is not None and role in delegations.roles:
                return name
            succinct = delegations.succinct_roles
            if succinct is not None and succinct.is_delegated_role(role):
                return name
        raise KeyError(f"no role delegates to {role!r}")

    # --- file names ----------------------------------------------------------

    def metadata_name(self, role: str, version: int | None = None) -> str:
        """Published file name of a role's metadata (URL-quoted role name)."""
        if role == "root":
            return f"{version or self.root.version}.root.json"
        if role == "timestamp" or not self.consistent_snapshot:
            return f"{quote(role, safe='')}.json"
        if version is None:
            version = self.md[role].signed.version
        return f"{version}.{quote(role, safe='')}.json"

    def target_name(self, path: str) -> str:
        """Published file name of a target (hash-prefixed when consistent)."""
        if not self.consistent_snapshot:
            return path
        digest = hashlib.sha256(self.targets_data[path]).hexdigest()
        dirname, _, basename = path.rpartition("/")
        return f"{dirname}/{digest}.{basename}" if dirname else f"{digest}.{basename}"

    def metadata_files(self) -> dict[str, bytes]:
        """Every published metadata file keyed by its published name.

        Consistent snapshots keep every version of snapshot and targets roles;
        otherwise only the latest. Root is always version-prefixed; the
        latest root is also under "root.json".
        """
        files = {f"{v}.root.json": data for v, data in enumerate(self.root_history, 1)}
        files["root.json"] = self.root_history[-1]
        for role, versions in self._published.items():
            if self.consistent_snapshot and role != "timestamp":
                for version, data in versions.items():
                    files[self.metadata_name(role, version)] = data
            else:
                files[self.metadata_name(role)] = self._latest[role]
        return files

    def target_files(self) -> dict[str, bytes]:
        """Every target's content keyed by its published name."""
        return {self.target_name(p): data for p, data in self.targets_data.items()}

    def write(self, directory: str | os.PathLike) -> pathlib.Path:
        """Write ``metadata/`` and ``targets/`` under ``directory``; return it."""
        base = pathlib.Path(directory)
        for sub, files in (("metadata", self.metadata_files()), ("targets", self.target_files())):
            for name, data in files.items():
                path = base / sub / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        return base

    # --- keys ----------------------------------------------------------------

    def _new_key(self, role: str) -> CryptoSigner:
        signer = CryptoSigner.generate_ed25519()
        self.signers.setdefault(role, []).append(signer)
        if role in TOP_LEVEL_ROLE_NAMES:
            self.root.add_key(signer.public_key, role)
        else:
            self.md[self.delegator_of(role)].signed.add_key(signer.public_key, role)
        return signer

    def rotate_keys(self, role: str, count: int = 1, threshold: int | None = None) -> list[CryptoSigner]:
        """Replace every key of ``role`` with ``count`` new ones.

        Changes the delegator (root for top-level roles, which then gets a
        new version on the next publish) and re-signs the role. For a succinct hash bin every bin
        shares the keys, so all bins get the new keys.
        """
        delegator = self.delegator_of(role)
        signed = self.md[delegator].signed
        old = list(signed.get_delegated_role(role).keyids)
        for keyid in old:
            signed.revoke_key(keyid, role)
        shared = self._bins_of(delegator) if delegator != "root" else []
        group = shared if role in shared else [role]
        for name in group:
            self.signers[name] = []
        new = []
        for _ in range(count):
            signer = self._new_key(role)
            new.append(signer)
            for name in group:
                self.signers[name] = list(new)
        if threshold is not None:
            signed.get_delegated_role(role).threshold = threshold
        self._changed.add(delegator)
        self._changed.update(group)  # re-signed with the new keys
        return new

    def add_key(self, role: str) -> CryptoSigner:
        """Add one new key to ``role`` (threshold unchanged)."""
        signer = self._new_key(role)
        self._changed.update((self.delegator_of(role), role))
        return signer

    def set_threshold(self, role: str, threshold: int) -> None:
        """Set the signature threshold of ``role`` (in its delegator)."""
        delegator = self.delegator_of(role)
        signed = self.md[delegator].signed
        signed.get_delegated_role(role).threshold = threshold
        self._changed.add(delegator)

    # --- content -------------------------------------------------------------

    def add_target(self, path: str, data: bytes, role: str = "targets", custom: dict | None = None) -> TargetFile:
        """Add (or replace) a target file in ``role``."""
        target = TargetFile.from_data(path, data, ["sha256"])
        if custom is not None:
            target.unrecognized_fields["custom"] = custom
        self.md[role].signed.targets[path] = target
        self.targets_data[path] = data
        self._changed.add(role)
        return target

    def add_delegation(
        self,
        delegator: str,
        name: str,
        paths: list[str] | None = None,
        path_hash_prefixes: list[str] | None = None,
        terminating: bool = False,
        keys: int = 1,
        threshold: int = 1,
    ) -> Metadata:
        """Delegate from ``delegator`` to a new targets role ``name``."""
        if paths is None and path_hash_prefixes is None:
            paths = ["*"]
        signed = self.md[delegator].signed
        if signed.delegations is None:
            signed.delegations = Delegations({}, roles={})
        role = DelegatedRole(name, [], threshold, terminating, paths, path_hash_prefixes)
        signed.delegations.roles[name] = role
        self.md[name] = Metadata(Targets(1, SPEC_VERSION, self.expires))
        self.signers[name] = []
        for _ in range(keys):
            self._new_key(name)
        self._changed.update((delegator, name))
        return self.md[name]

    def add_succinct_roles(self, delegator: str, bit_length: int, name_prefix: str, keys: int = 1, threshold: int = 1) -> list[str]:
        """Delegate from ``delegator`` to 2**bit_length hash bins (TAP 15).

        Every bin gets an (empty) targets metadata and the same signers.
        Returns the bin names in order.
        """
        signed = self.md[delegator].signed
        signers = [CryptoSigner.generate_ed25519() for _ in range(keys)]
        succinct = SuccinctRoles([], threshold, bit_length, name_prefix)
        signed.delegations = Delegations({}, succinct_roles=succinct)
        for signer in signers:
            signed.add_key(signer.public_key)
        names = list(succinct.get_roles())
        for name in names:
            self.md[name] = Metadata(Targets(1, SPEC_VERSION, self.expires))
            self.signers[name] = list(signers)
        self._changed.add(delegator)
        self._changed.update(names)
        return names

    def _bins_of(self, delegator: str) -> list[str]:
        delegations = self.md[delegator].signed.delegations
        if delegations is None or delegations.succinct_roles is None:
            return []
        return list(delegations.succinct_roles.get_roles())

    def bin_for(self, delegator: str, path: str) -> str:
        """Name of the hash bin of ``delegator`` that holds ``path``."""
        return self.md[delegator].signed.delegations.succinct_roles.get_role_for_target(path)

    def expire(self, role: str, when: datetime = PAST) -> None:
        """Set ``role`` to expire at ``when`` (default: long ago)."""
        self.md[role].signed.expires = when
        self._changed.add(role)

    def bump(self, role: str) -> None:
        """Mark ``role`` changed: the next publish gives it a new version."""
        self._changed.add(role)

    # --- signing -------------------------------------------------------------

    def sign(self, role: str, signers: Iterable[Signer] | None = None) -> bytes:
        """Sign ``role`` as it is now (no bump) and record it as published.

        ``signers`` defaults to the role's own. Root is recorded as the
        version it carries (replacing an entry of the same version).
        """
        md = self.md[role]
        md.signatures.clear()
        for signer in self.signers[role] if signers is None else signers:
            md.sign(signer, append=True)
        data = md.to_bytes()
        if role == "root":
            version = md.signed.version
            if version <= len(self.root_history):
                self.root_history[version - 1] = data
                del self.root_history[version:]
            else:
                self.root_history.append(data)
        else:
            self._published.setdefault(role, {})[md.signed.version] = data
            self._latest[role] = data
        return data

    def _publish_root(self) -> None:
        signers = dict.fromkeys(self.signers["root"])
        for signer in self._root_signers_published:
            signers.setdefault(signer)
        self.sign("root", signers)
        self._root_signers_published = list(self.signers["root"])

    def _meta_file(self, role: str) -> MetaFile:
        version = self.md[role].signed.version
        if not self.meta_hashes:
            return MetaFile(version)
        data = self.role_bytes(role)
        return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})

    def publish(self) -> dict[str, bytes]:
        """Re-sign every changed role, then snapshot and timestamp.

        Returns ``metadata_files()``.
        """
        changed, self._changed = self._changed, set()
        if "root" in changed:
            self.root.version += 1
            self._publish_root()
        targets_roles = [r for r in self.md if r not in ("root", "timestamp", "snapshot")]
        snapshot = self.md["snapshot"].signed
        for role in targets_roles:
            if role not in changed:
                continue
            if role in self._published:
                self.md[role].signed.version += 1
            self.sign(role)
            snapshot.meta[f"{role}.json"] = self._meta_file(role)
        if "snapshot" in changed or any(r in changed for r in targets_roles):
            if "snapshot" in self._published:
                snapshot.version += 1
            self.sign("snapshot")
            changed.add("snapshot")
        if "snapshot" in changed or "timestamp" in changed:
            timestamp = self.md["timestamp"].signed
            timestamp.snapshot_meta = self._meta_file("snapshot")
            if "timestamp" in self._published:
                timestamp.version += 1
            self.sign("timestamp")
        return self.metadata_files()
