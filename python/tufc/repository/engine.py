"""The repository engine: keep a hash-binned TUF repository signed and
consistent as targets are added and removed.

A publish drains pending changes from the queue (``store.py``) in one group
commit: each affected bin gets one new version, patched from its current
file (never rebuilt from a table), then one new snapshot and one new
timestamp.  Files are written bins -> snapshot -> (queue marks) ->
timestamp, and nothing a published timestamp refers to is ever rewritten,
so a client never sees a snapshot naming a missing bin, and a publisher
killed at any point leaves the previous repository valid: the next publish
reconciles the queue with the timestamp on disk and redoes what was lost.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from .. import _backend
from ..exceptions import (
    DeserializationError,
    FormatError,
    PublishError,
    StorageError,
    StoreError,
    TargetNotFoundError,
)
from ..keys import Key
from ..signer import Ed25519Signer
from . import metadata_io as mio
from .changes import normalize_removals, normalize_targets
from .layout import DEFAULT_EXPIRY, Layout
from .bin_patch import write_next_versions
from .signing import keyid_of, load_signer, sign_all, signature_of, signer_entry, write_key_file
from .snapshot_meta import SnapshotMeta, snapshot_signed_bytes
from .store import Store, open_store

__all__ = ["Repository", "PublishResult", "CONFIG_NAME"]

log = logging.getLogger(__name__)

CONFIG_NAME = "repository.json"
CONFIG_FORMAT = 1
DEFAULT_MARGIN = {  # refresh re-signs a role this close to its expiry
    "timestamp": timedelta(hours=6),
    "snapshot": timedelta(hours=6),
    "bin-n": timedelta(days=1),
}


def _read_config(folder: str) -> dict:
    try:
        return mio.read_json_object(os.path.join(folder, CONFIG_NAME), 1 << 20,
                                    "tufc repository configuration", CONFIG_FORMAT)
    except StorageError as exc:
        raise StorageError(f"{folder} is not a tufc repository: {exc}") from exc


def write_config(folder: str, config: dict) -> None:
    mio.write(folder, CONFIG_NAME, json.dumps(config, indent=1, sort_keys=True).encode() + b"\n")


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector.  A publish makes hundreds of
    thousands of short-lived dicts (every entry of every bin it patches),
    none of them in a cycle, so reference counting frees them all; the
    collector would only rescan every live object again and again (a third
    to half of a 1,000-target publish).  It is paused for the whole
    process (other threads too) and resumed as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class PublishResult(NamedTuple):
    """What one publish released."""

    snapshot_version: int
    timestamp_version: int
    changes: int
    bins: int
    seconds: float


class _State:
    """The published repository as the timestamp on disk names it."""

    __slots__ = ("timestamp_bytes", "timestamp_version", "snapshot_version",
                 "snapshot_signed", "meta")

    def __init__(self, timestamp_bytes, timestamp_version, snapshot_version, snapshot_signed, meta):
        self.timestamp_bytes = timestamp_bytes
        self.timestamp_version = timestamp_version
        self.snapshot_version = snapshot_version
        self.snapshot_signed = snapshot_signed  # the snapshot's signed dict, less meta
        self.meta = meta  # SnapshotMeta: "ROLE.json" -> version


def _expiry_config(obj: dict | None) -> dict:
    expiry = dict(DEFAULT_EXPIRY)
    for key, seconds in (obj or {}).items():
        if key not in expiry or type(seconds) is not int or seconds <= 0:
            raise FormatError(f"expiry: bad entry {key!r}: {seconds!r}")
        expiry[key] = timedelta(seconds=seconds)
    return expiry


class Repository:
    """A repository folder managed by the engine.

    ``folder/metadata/`` is what is served; ``folder/repository.json`` the
    configuration (layout, expiry, which signers sign what); keys generated
    by ``create`` go to ``folder/keys/``.  ``store`` is the change queue
    (default: SQLite at ``folder/queue.sqlite``), ``online_signers`` override
    the configured online signers (e.g. a KMS signer object), ``clock``
    returns the current aware UTC time.
    """

    def __init__(self, folder: str, store: Store | str | None = None,
                 online_signers: Sequence[Any] | None = None, clock=None, workers: int = 2):
        self.folder = os.path.abspath(os.fspath(folder))
        self.metadata_dir = os.path.join(self.folder, "metadata")
        config = _read_config(self.folder)
        self.config = config
        self.layout = Layout.from_dict(config.get("layout"))
        self.expiry = _expiry_config(config.get("expiry"))
        self.clock = clock or _utcnow
        self.workers = workers
        self._online = list(online_signers) if online_signers is not None else None
        if store is None:
            store = config.get("store") or os.path.join(self.folder, "queue.sqlite")
        self.store = open_store(store) if not isinstance(store, Store) else store
        self._state: _State | None = None
        self._loaded: dict[str, list] = {}
        self._root_cache: tuple | None = None

    # --- creation --------------------------------------------------------------

    @classmethod
    def create(cls, folder: str, layout: Layout | None = None, *,
               root_signers: Sequence[Any] | None = None, root_threshold: int = 1,
               root_keys: int | None = None,
               targets_signers: Sequence[Any] | None = None,
               online_signers: Sequence[Any] | None = None,
               signer_uris: dict | None = None,
               expiry: dict | None = None, store: Store | str | None = None,
               remember_store: bool = False, clock=None, workers: int = 2) -> Repository:
        """A new repository in ``folder`` (which must not hold one): root,
        targets (and PEP 458's ``bins``), every bin empty, snapshot and
        timestamp, all version 1.

        Signers not given are generated as Ed25519 key files in
        ``folder/keys/`` (``root_keys`` of them for root; move the offline
        ones offline).  ``signer_uris`` maps "root", "targets", "online" to
        lists of the URIs that load the given signers again (stored in
        repository.json with their public keys); a generated key's URI is
        its file.  ``remember_store`` records a ``store`` URL in
        repository.json for later opens.
        """
        layout = layout or Layout()
        folder = os.path.abspath(os.fspath(folder))
        if os.path.exists(os.path.join(folder, CONFIG_NAME)):
            raise PublishError(f"{folder} already holds a repository")
        metadata_dir = os.path.join(folder, "metadata")
        try:
            os.makedirs(metadata_dir, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {metadata_dir}: {exc}") from exc
        if os.listdir(metadata_dir):
            raise PublishError(f"{metadata_dir} is not empty")
        uris = dict(signer_uris or {})
        entries: dict[str, list] = {}

        def signers_for(role, given, count=1):
            if given is not None:
                given = list(given)
                role_uris = list(uris.get(role) or [None] * len(given))
                if len(role_uris) != len(given):
                    raise FormatError(f"signer_uris[{role!r}] must name one URI per signer")
                entries[role] = [signer_entry(s, u) for s, u in zip(given, role_uris)]
                return given
            keys_dir = os.path.join(folder, "keys")
            os.makedirs(keys_dir, mode=0o700, exist_ok=True)
            made = []
            for i in range(count):
                signer = Ed25519Signer.generate()
                name = f"{role}-{i + 1}.key" if count > 1 else f"{role}.key"
                write_key_file(os.path.join(keys_dir, name), signer)
                made.append(signer)
            entries[role] = [signer_entry(s, f"file:keys/{n}") for s, n in zip(
                made, [f"{role}-{i + 1}.key" if count > 1 else f"{role}.key" for i in range(count)])]
            return made

        if type(root_threshold) is not int or root_threshold < 1:
            raise FormatError("root_threshold must be an integer >= 1")
        root_signers = signers_for("root", root_signers, root_keys or root_threshold)
        if len(root_signers) < root_threshold:
            raise FormatError("fewer root signers than the root threshold")
        if layout.kind == "rstuf":  # targets is online: the online key signs it
            targets_signers = []
        else:
            targets_signers = signers_for("targets", targets_signers)
        online_signers = signers_for("online", online_signers)

        expiry_seconds = {k: int(v.total_seconds()) for k, v in _expiry_config(
            {k: int(v.total_seconds()) if isinstance(v, timedelta) else v
             for k, v in (expiry or {}).items()}).items()}
        config = {
            "format": CONFIG_FORMAT,
            "layout": layout.to_dict(),
            "expiry": expiry_seconds,
            "signers": entries,
        }
        if remember_store and isinstance(store, str):  # later opens find the queue
            config["store"] = store
        now = (clock or _utcnow)().replace(microsecond=0)
        repo_expiry = {k: timedelta(seconds=v) for k, v in expiry_seconds.items()}
        _Bootstrap(metadata_dir, layout, repo_expiry, now, root_signers, root_threshold,
                   targets_signers, online_signers, workers).write()
        write_config(folder, config)
        return cls(folder, store=store, online_signers=online_signers, clock=clock, workers=workers)

    # --- signers ---------------------------------------------------------------

    def _root(self) -> dict:
        """The newest root's signed dict (cached; one stat per call)."""
        version, signed = self._root_cache or (1, None)
        while os.path.exists(os.path.join(self.metadata_dir, mio.role_file("root", version + 1))):
            version, signed = version + 1, None
        if signed is None:
            envelope, _, _ = mio.load(os.path.join(self.metadata_dir, mio.role_file("root", version)))
            signed = envelope["signed"]
            self._root_cache = (version, signed)
        return signed

    def signers(self, role: str) -> list:
        """Every signer repository.json configures for ``role`` ("root",
        "targets" or "online"), loaded once; a signer without a URI
        (passed as an object to ``create``) cannot be loaded again."""
        cached = self._loaded.get(role)
        if cached is None:
            cached = []
            for entry in self.config.get("signers", {}).get(role) or []:
                if not entry.get("uri"):
                    raise PublishError(f"a {role} signer has no URI in repository.json: pass it in")
                public = Key.from_dict(entry["keyid"], entry["public"])
                cached.append(load_signer(entry["uri"], public, self.folder))
            self._loaded[role] = cached
        return cached

    def online_signers(self) -> list:
        """The signers of the online roles: those passed in (else the
        configured ones) whose keys the newest root names for the timestamp,
        so after a key rotation the retired key stops signing."""
        keyids = set(self._root()["roles"]["timestamp"]["keyids"])
        candidates = self._online if self._online is not None else self.signers("online")
        signers = [s for s in candidates if keyid_of(s) in keyids]
        if not signers:
            raise PublishError("no configured online signer holds a key the root names for the timestamp")
        return signers

    # --- changes -----------------------------------------------------------------

    def add_targets(self, targets: Iterable[Any], connection=None) -> int:
        """Enqueue targets to add (or replace): ``Target``s, dicts with
        path/length/hashes[/custom], or TargetFiles.  Validated first: a bad
        one (InvalidChangeError) enqueues nothing.  With ``connection`` the
        rows join the caller's transaction."""
        changes = normalize_targets(targets)
        self.store.enqueue(changes, connection=connection)
        return len(changes)

    def remove_targets(self, paths: Iterable[str], connection=None, check: bool = True) -> int:
        """Enqueue removals.  With ``check``, a path neither published nor
        pending as an addition is a TargetNotFoundError (nothing enqueued)."""
        changes = normalize_removals(paths)
        if check:
            missing = self._missing(change.path for change in changes)
            if missing:
                raise TargetNotFoundError(
                    f"not in the repository: {', '.join(missing[:5])}"
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                )
        self.store.enqueue(changes, connection=connection)
        return len(changes)

    def _missing(self, paths: Iterable[str]) -> list:
        paths = list(paths)
        present = {path: op == "add" for path, op in self.store.pending_ops(paths).items()}
        state = self._load_state()
        by_bin: dict[str, list] = {}
        for path in paths:
            if path not in present:
                by_bin.setdefault(self.layout.bin_for(path), []).append(path)
        for name, bin_paths in by_bin.items():
            targets = self._read_bin(state, name)[0]["signed"].get("targets", {})
            for path in bin_paths:
                present[path] = path in targets
        return [path for path in paths if not present.get(path)]

    def get_target(self, path: str) -> dict | None:
        """The published target entry for ``path`` (or None)."""
        state = self._load_state()
        entry = self._read_bin(state, self.layout.bin_for(path))[0]["signed"].get("targets", {}).get(path)
        return None if entry is None else dict(entry)

    # --- the published state -----------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self.metadata_dir, name)

    def _load_state(self) -> _State:
        """The published state, re-read unless the timestamp on disk is the
        one this object wrote or read last."""
        timestamp_bytes = mio.read_file(self._path("timestamp.json"), 1 << 20)
        cached = self._state
        if cached is not None and cached.timestamp_bytes == timestamp_bytes:
            return cached
        try:
            envelope, _ = _backend.load_metadata(timestamp_bytes)
            signed = envelope["signed"]
            snapshot_meta = signed["meta"]["snapshot.json"]
            snapshot_version = snapshot_meta["version"]
            timestamp_version = signed["version"]
        except (FormatError, KeyError, TypeError) as exc:
            raise DeserializationError(f"timestamp.json is not the engine's: {exc}") from exc
        envelope, signed_bytes, data = mio.load(self._path(mio.role_file("snapshot", snapshot_version)))
        if "length" in snapshot_meta and len(data) != snapshot_meta["length"]:
            raise DeserializationError(f"{snapshot_version}.snapshot.json does not match the timestamp")
        signed = envelope["signed"]
        meta = SnapshotMeta.load(signed, signed_bytes)
        snapshot_signed = {k: v for k, v in signed.items() if k != "meta"}
        self._state = _State(timestamp_bytes, timestamp_version, snapshot_version,
                             snapshot_signed, meta)
        return self._state

    @staticmethod
    def _bin_version(state: _State, name: str) -> int:
        version = state.meta.version(f"{name}.json")
        if version is None:
            raise DeserializationError(f"the snapshot does not list {name}")
        return version

    def _read_bin(self, state: _State, name: str) -> tuple:
        version = self._bin_version(state, name)
        envelope, _, _ = mio.load(self._path(mio.role_file(name, version)))
        return envelope, version

    # --- publishing ------------------------------------------------------------------

    @contextlib.contextmanager
    def publishing(self, lock_timeout: float | None = None, during_rotation: bool = False):
        """Hold the publisher lock and yield the published state, with the
        queue reconciled to it (marks of a publish that died before its
        timestamp are undone)."""
        with self.store.publisher_lock(lock_timeout), _gc_paused():
            config = _read_config(self.folder)
            if config != self.config:  # e.g. another process rotated a key
                self.config = config
                self._loaded.clear()
            if self.config.get("rotating") and not during_rotation:
                raise PublishError("an online key rotation did not finish: run "
                                   "'tufc repo rotate-online FOLDER --resume' (or rotate_online_key)")
            state = self._load_state()  # re-read if another publisher wrote since
            self.store.reconcile(state.snapshot_version)
            yield state

    def publish(self, limit: int | None = None, lock_timeout: float | None = None) -> PublishResult | None:
        """Publish up to ``limit`` pending changes as one new snapshot;
        None when nothing is pending.  Holds the publisher lock."""
        started = time.perf_counter()
        with self.publishing(lock_timeout) as state:
            rows = self.store.pending(limit)
            if not rows:
                return None
            by_bin: dict[int, list] = {}
            for _, change in rows:
                by_bin.setdefault(self.layout.bin_index(change.path), []).append(change)
            now = self.clock().replace(microsecond=0)
            jobs = [(name, self._bin_version(state, name), changes) for name, changes in
                    ((self.layout.bin_name(index), changes) for index, changes in by_bin.items())]
            return self._commit(state, jobs, [row_id for row_id, _ in rows], now, started)

    def publish_all(self, batch: int = 10_000, lock_timeout: float | None = None) -> list:
        """Publish until the queue is empty, ``batch`` changes at a time."""
        results = []
        while True:
            result = self.publish(batch, lock_timeout)
            if result is None:
                return results
            results.append(result)

    def _commit(self, state: _State, jobs: list, ids: list, now: datetime,
                started: float, force_timestamp: bool = False) -> PublishResult:
        """Write the next version of the bins in ``jobs`` (``(name, current
        version, changes)``), then ``_commit_versions``."""
        signers = self.online_signers()
        expires = mio.format_time(now + self.expiry["bin-n"])
        versions = write_next_versions(self.metadata_dir, jobs, expires, signers,
                                       workers=self.workers)
        return self._commit_versions(state, versions, ids, now, started, len(ids),
                                     snapshot=bool(jobs) or not force_timestamp)

    def _commit_versions(self, state: _State, versions: dict, ids: list, now: datetime,
                         started: float, changes: int, snapshot: bool = True,
                         signers: list | None = None) -> PublishResult:
        """Publish role files already written (unsynced) at ``versions``:
        the new snapshot naming them, everything synced, ``ids`` marked
        published, then the new timestamp.  With ``snapshot`` False, a new
        timestamp for the same snapshot (a renewal)."""
        signers = signers or self.online_signers()
        written = [self._path(mio.role_file(name, version)) for name, version in versions.items()]
        meta = state.meta.updated({f"{name}.json": version for name, version in versions.items()})
        if snapshot:
            snapshot_version = state.snapshot_version + 1
            snapshot_signed = dict(state.snapshot_signed)
            snapshot_signed.update(version=snapshot_version,
                                   expires=mio.format_time(now + self.expiry["snapshot"]))
            signed_bytes = snapshot_signed_bytes(snapshot_signed, meta)
            plain = meta.plain and not mio.has_control(_backend.canonical_json(snapshot_signed))
            snapshot_data = mio.envelope_bytes(
                [signature_of(s, signed_bytes) for s in signers], signed_bytes, plain)
            snapshot_name = mio.role_file("snapshot", snapshot_version)
            mio.write(self.metadata_dir, snapshot_name, snapshot_data, durable=False)
            written.append(self._path(snapshot_name))
        else:
            snapshot_version = state.snapshot_version
            snapshot_signed = state.snapshot_signed
            snapshot_data = mio.read_file(self._path(mio.role_file("snapshot", snapshot_version)))
        mio.sync_files(written, self.metadata_dir)  # all of it durable before the timestamp

        if not self.store.lock_alive():
            raise StoreError("the publisher lock was lost (its database session ended): "
                             "another publisher may be running; nothing was published")
        if snapshot:  # the commit point of the queue; also fences a racing publisher
            self.store.mark_published(ids, snapshot_version)
        timestamp_version = state.timestamp_version + 1
        timestamp = {
            "_type": "timestamp",
            "spec_version": mio.SPEC_VERSION,
            "version": timestamp_version,
            "expires": mio.format_time(now + self.expiry["timestamp"]),
            "meta": {"snapshot.json": {
                "version": snapshot_version,
                "length": len(snapshot_data),
                "hashes": {"sha256": mio.sha256_hex(snapshot_data)},
            }},
        }
        timestamp_signed = _backend.canonical_json(timestamp)
        timestamp_data = mio.envelope_bytes(  # numbers, hashes and a date only
            [signature_of(s, timestamp_signed) for s in signers], timestamp_signed, plain=True)
        mio.write(self.metadata_dir, "timestamp.json", timestamp_data)
        mio.sync_folder(self.metadata_dir)
        self._state = _State(timestamp_data, timestamp_version, snapshot_version,
                             snapshot_signed, meta)
        result = PublishResult(snapshot_version, timestamp_version, changes, len(versions),
                               time.perf_counter() - started)
        log.info("published snapshot %d: %d changes in %d bins (%.1f ms)", snapshot_version,
                 changes, len(versions), result.seconds * 1e3)
        return result

    def import_targets(self, records: Iterable[Any], workers: int | None = None,
                       progress=None, lock_timeout: float | None = None) -> PublishResult:
        """Bulk import (backsigning): every bin anew with ``records`` added,
        streaming; see ``tufc.repository.importer``."""
        from .importer import import_targets

        return import_targets(self, records, workers=workers, progress=progress,
                              lock_timeout=lock_timeout)

    # --- expiry ------------------------------------------------------------------------

    def expiring(self, margin: dict | None = None) -> dict:
        """Online roles that expire within their margin: name -> expiry."""
        margins = dict(DEFAULT_MARGIN, **(margin or {}))
        now = self.clock()
        state = self._load_state()
        out = {}
        for name in state.meta:
            version = state.meta.version(name)
            role = name[: -len(".json")]
            if self.layout.expiry_class(role) != "bin-n":
                continue
            expires = _header_expires(self._path(mio.role_file(role, version)))
            if expires - now <= margins["bin-n"]:
                out[role] = expires
        snapshot_expires = mio.parse_time(state.snapshot_signed["expires"])
        if snapshot_expires - now <= margins["snapshot"]:
            out["snapshot"] = snapshot_expires
        envelope, _ = _backend.load_metadata(state.timestamp_bytes)
        timestamp_expires = mio.parse_time(envelope["signed"]["expires"])
        if timestamp_expires - now <= margins["timestamp"]:
            out["timestamp"] = timestamp_expires
        return out

    def refresh(self, margin: dict | None = None, lock_timeout: float | None = None,
                limit: int | None = None) -> PublishResult | None:
        """Re-sign the online roles that expire within their margin (bins:
        a day, snapshot and timestamp: six hours, by default); at most
        ``limit`` bins at once.  None when nothing needed it."""
        started = time.perf_counter()
        with self.publishing(lock_timeout) as state:
            due = self.expiring(margin)
            bins = sorted((r for r in due if r not in ("snapshot", "timestamp")),
                          key=lambda r: due[r])[:limit]
            if not due:
                return None
            now = self.clock().replace(microsecond=0)
            jobs = [(name, self._bin_version(state, name), ()) for name in bins]
            renew_only = not jobs and "snapshot" not in due
            return self._commit(state, jobs, [], now, started, force_timestamp=renew_only)

    # --- status ----------------------------------------------------------------

    def status(self) -> dict:
        state = self._load_state()
        counts = self.store.counts()
        envelope, _ = _backend.load_metadata(state.timestamp_bytes)
        return {
            "folder": self.folder,
            "layout": self.layout.to_dict(),
            "snapshot_version": state.snapshot_version,
            "timestamp_version": state.timestamp_version,
            "timestamp_expires": envelope["signed"]["expires"],
            "snapshot_expires": state.snapshot_signed["expires"],
            "pending": counts["pending"],
            "published_changes": counts["published"],
        }

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _header_expires(path: str) -> datetime:
    """A bin's expiry, from the start of the file when it is the engine's
    canonical form (``"signed":{"_type":"targets","expires":"..."``)."""
    head = _read_head(path)
    marker = b'"signed":{"_type":"targets","expires":"'
    at = head.find(marker)
    if at >= 0:
        end = head.find(b'"', at + len(marker))
        if end > 0:
            return mio.parse_time(head[at + len(marker):end].decode("ascii", "replace"))
    envelope, _, _ = mio.load(path)
    return mio.parse_time(envelope["signed"]["expires"])


def _read_head(path: str, size: int = 8192) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


class _Bootstrap:
    """Version 1 of every role of a new repository."""

    def __init__(self, metadata_dir, layout, expiry, now, root_signers, root_threshold,
                 targets_signers, online_signers, workers):
        self.dir = metadata_dir
        self.layout = layout
        self.expiry = expiry
        self.now = now
        self.root_signers = list(root_signers)
        self.root_threshold = root_threshold
        self.targets_signers = list(targets_signers)
        self.online_signers = list(online_signers)
        self.workers = workers

    def _expires(self, role: str) -> str:
        return mio.format_time(self.now + self.expiry[self.layout.expiry_class(role)])

    def _signed(self, kind: str, role: str, **fields) -> dict:
        return {"_type": kind, "spec_version": mio.SPEC_VERSION, "version": 1,
                "expires": self._expires(role), **fields}

    def _write(self, role: str, signed: dict, signers, version: int | None = 1) -> bytes:
        data = _backend.canonical_json(signed)
        out = mio.envelope_bytes([signature_of(s, data) for s in signers], data)
        mio.write(self.dir, mio.role_file(role, version), out, durable=False)
        return out

    @staticmethod
    def _keys(signers) -> dict:
        out = {}
        for signer in signers:
            key = signer.public_key
            out[key.keyid] = key.to_dict()
        return out

    def write(self) -> None:
        layout = self.layout
        online_ids = [keyid_of(s) for s in self.online_signers]
        targets_ids = [keyid_of(s) for s in self.targets_signers]
        root_ids = [keyid_of(s) for s in self.root_signers]
        succinct = {"keyids": online_ids, "threshold": 1, "bit_length": layout.bit_length,
                    "name_prefix": layout.prefix}
        online_keys = self._keys(self.online_signers)

        # the bins, empty, with expiries spread over the second half of
        # their validity so that re-signing them is a steady trickle
        names = layout.bin_names()
        lifetime = self.expiry["bin-n"]
        payloads = []
        for i, name in enumerate(names):
            expires = self.now + lifetime * (0.5 + 0.5 * (i + 1) / len(names))
            signed = {"_type": "targets", "spec_version": mio.SPEC_VERSION, "version": 1,
                      "expires": mio.format_time(expires.replace(microsecond=0)), "targets": {}}
            payloads.append(_backend.canonical_json(signed))
        signatures = sign_all(self.online_signers, payloads, workers=self.workers)
        for name, sigs, data in zip(names, signatures, payloads):
            mio.write(self.dir, mio.role_file(name, 1), mio.envelope_bytes(sigs, data), durable=False)

        if layout.kind == "pep458":
            bins = self._signed("targets", "bins", targets={},
                                delegations={"keys": online_keys, "succinct_roles": succinct})
            self._write("bins", bins, self.targets_signers)
            targets = self._signed("targets", "targets", targets={}, delegations={
                "keys": self._keys(self.targets_signers),
                "roles": [{"name": "bins", "keyids": targets_ids, "threshold": 1,
                           "terminating": True,
                           "path_hash_prefixes": [f"{i:x}" for i in range(16)]}],
            })
            self._write("targets", targets, self.targets_signers)
            targets_role_ids = targets_ids
            top = ["targets", "bins"]
        else:
            targets = self._signed("targets", "targets", targets={},
                                   delegations={"keys": online_keys, "succinct_roles": succinct})
            self._write("targets", targets, self.online_signers)
            targets_role_ids = online_ids
            top = ["targets"]

        meta = {f"{role}.json": {"version": 1} for role in top + names}
        snapshot = self._signed("snapshot", "snapshot", meta=meta)
        snapshot_data = self._write("snapshot", snapshot, self.online_signers)

        keys = {**self._keys(self.root_signers), **online_keys}
        if layout.kind == "pep458":
            keys.update(self._keys(self.targets_signers))
        root = self._signed("root", "root", consistent_snapshot=True, keys=keys, roles={
            "root": {"keyids": root_ids, "threshold": self.root_threshold},
            "targets": {"keyids": targets_role_ids, "threshold": 1},
            "snapshot": {"keyids": online_ids, "threshold": 1},
            "timestamp": {"keyids": online_ids, "threshold": 1},
        })
        self._write("root", root, self.root_signers)
        mio.sync_files([os.path.join(self.dir, n) for n in os.listdir(self.dir)], self.dir)
        timestamp = self._signed("timestamp", "timestamp", meta={"snapshot.json": {
            "version": 1, "length": len(snapshot_data),
            "hashes": {"sha256": mio.sha256_hex(snapshot_data)}}})
        self._write("timestamp", timestamp, self.online_signers, version=None)
        mio.sync_files([os.path.join(self.dir, mio.role_file("timestamp", None))], self.dir)
