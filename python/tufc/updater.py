"""The TUF client workflow: ``Updater`` does all of the client's I/O.

``Updater`` mirrors python-tuf's ``tuf.ngclient.Updater``: the same
constructor, methods, exceptions and metadata_dir layout, so applications
switch by changing one import.  What is trusted, and what may replace it,
is decided by ``TrustedMetadataSet`` (``_trusted.py``, bytes in, no I/O);
this module only finds the bytes (local cache first where the
specification allows, then the repository) and stores what was accepted.

metadata_dir layout (python-tuf 6/7's; a cache written by either library
works with the other):

    root.json               the current trusted root (a symlink into
                            root_history/ where the OS allows, else a copy)
    root_history/N.root.json   every root version ever trusted
    timestamp.json, snapshot.json, targets.json, <quoted role>.json
    latest_known_time       its modification time is the newest time a
                            refresh judged expiry at (tufc's clock-rollback
                            check; no ".json": it is not metadata, and tools
                            listing *.json skip it)

Writes are atomic (temp file in the same folder, rename; temp names never
end in ".json").  Only the trusted root files (root_history/N.root.json,
root.json and their folders) are fsynced: they are what the client cannot
re-derive safely.  Every other cached file is verified again whenever it
is read, and one a power cut left empty or torn is downloaded again.  A
refresh holds an advisory lock (``flock`` on
the folder itself) so several processes may share one metadata_dir.
Temporary files a killed process left behind are removed: in metadata_dir
while holding that lock, before an Updater first writes there; in a target
folder once they are old (``_atomic.remove_stale``).

Every download has a deadline derived from its length limit and the
configured minimum rate (the slow-retrieval defence); it is enforced here,
around the chunks of whatever fetcher is used.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import stat
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple
from urllib import parse

from . import _atomic, _backend
from ._trusted import TrustedMetadataSet
from .config import EnvelopeType, UpdaterConfig
from .exceptions import (
    ClockRollbackError,
    DownloadError,
    DownloadHTTPError,
    EqualVersionNumberError,
    FormatError,
    LengthOrHashMismatchError,
    OfflineError,
    RepositoryError,
    StorageError,
    TufcError,
)
from .fetcher import (
    FetcherInterface,
    Urllib3Fetcher,
    as_download_error,
    download_seconds,
    guarded,
    limited,
)
from .metadata import TargetFile, Targets

try:  # advisory locking of metadata_dir (not available on Windows)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

__all__ = ["Updater", "UpdaterConfig", "Urllib3Fetcher", "FetcherInterface"]

_ROOT_HISTORY = "root_history"
_TIME_FILE = "latest_known_time"
_TOP_LEVEL = ("root", "timestamp", "snapshot", "targets")
_CHUNK = 1 << 20
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
# Characters a URL path may hold as they are (RFC 3986 "pchar" and "/"):
# target paths keep them; anything else (space, "?", "#", "%", non-ASCII)
# is percent-encoded so it cannot change the meaning of the URL.
_URL_PATH_SAFE = "/-._~!$&'()*+,;=:@"
# A "." segment is sent encoded (a server that resolves it anyway stays
# where it was).  A ".." segment is refused, not encoded: RFC 3986 makes
# "%2E%2E" the same segment as "..", and servers (python -m http.server,
# nginx) resolve it after decoding, so no encoding keeps it from climbing
# out of the targets base URL.
_DOT_SEGMENTS = {".": "%2E"}
# Role names quote() leaves unchanged (with safe=""): ASCII letters and
# digits and "_.-~" (bin names, "targets", most delegated role names).
_PLAIN_ROLE = re.compile(r"[A-Za-z0-9_.~-]+\Z")
# What latest_known_time holds: the record is the file's modification time,
# moved forward with one utime() call per refresh rather than a new file (a
# new inode costs 0.1-0.3 ms on ext4, a warm start's 5 %).
_TIME_FILE_TEXT = (
    b"tufc: this file's modification time is the newest time a refresh of\n"
    b"this metadata_dir judged expiry at (the clock-rollback check).\n"
)


class _Unloaded(NamedTuple):
    """A targets role a search needs next and that is not loaded yet."""

    role: str
    delegator: str


class _Unset:
    def __repr__(self) -> str:
        return "<bootstrap not given>"


_UNSET = _Unset()


class Updater:
    """A TUF client for one repository, with a local metadata cache.

    Args:
        metadata_dir: local metadata cache; created (with its parents) when
            missing.  With ``bootstrap=None`` it must hold a trusted
            ``root.json``.
        metadata_base_url: base URL of the repository's metadata.
        target_dir: default folder for downloaded targets.
        target_base_url: default base URL of target files.
        fetcher: the ``FetcherInterface`` used for all downloads (a fetcher
            written for python-tuf works too); default ``Urllib3Fetcher``,
            which also reads ``file://`` URLs.
        config: an ``UpdaterConfig``.
        bootstrap: the trusted root's bytes, shipped with the application.
            ``None`` trusts ``metadata_dir/root.json`` instead.  (Omitting it
            does the same, for python-tuf 6 callers, with a warning.)

    Raises:
        TypeError: an argument of the wrong type.
        StorageError: metadata_dir cannot be created or root.json read.
        RepositoryError: the initial root is not valid.
        ValueError: an unsupported config value.
    """

    def __init__(
        self,
        metadata_dir: str | os.PathLike,
        metadata_base_url: str,
        target_dir: str | os.PathLike | None = None,
        target_base_url: str | None = None,
        fetcher: FetcherInterface | None = None,
        config: UpdaterConfig | None = None,
        bootstrap: bytes | None | _Unset = _UNSET,
    ):
        if bootstrap is _UNSET:
            warnings.warn(
                "Updater() without bootstrap trusts the cached root.json; "
                "pass the trusted root's bytes (or bootstrap=None to opt in)",
                DeprecationWarning,
                stacklevel=2,
            )
            bootstrap = None
        if bootstrap is not None and not isinstance(
            bootstrap, (bytes, bytearray, memoryview)
        ):
            raise TypeError("bootstrap must be the trusted root's bytes or None")
        self._dir = _path_arg("metadata_dir", metadata_dir)
        self._metadata_base_url = _ensure_trailing_slash(
            _str_arg("metadata_base_url", metadata_base_url)
        )
        self.target_dir = _path_arg("target_dir", target_dir, optional=True)
        target_base_url = _str_arg("target_base_url", target_base_url, optional=True)
        self._target_base_url = (
            None
            if target_base_url is None
            else _ensure_trailing_slash(target_base_url)
        )
        if fetcher is not None and not callable(getattr(fetcher, "fetch", None)):
            raise TypeError(
                f"fetcher must be a FetcherInterface or None, not {type(fetcher).__name__}"
            )
        if config is not None and not isinstance(config, UpdaterConfig):
            raise TypeError(
                f"config must be an UpdaterConfig or None, not {type(config).__name__}"
            )
        self.config = config or UpdaterConfig()
        _check_config(self.config)
        self._min_rate, self._grace = _download_pace(self.config)
        if fetcher is None:
            # looked up in this module's namespace now, so tests and
            # applications can replace ``tufc.updater.Urllib3Fetcher``
            fetcher = Urllib3Fetcher(app_user_agent=self.config.app_user_agent)
        self._fetcher = fetcher
        self._lock = threading.RLock()
        self._lock_depth = 0
        self._lock_fd: int | None = None
        # (delegator, role) -> Targets verified against that delegator's
        # keys: a role reached through two delegators is checked for each
        self._verified: dict[tuple[str, str], Targets] = {}
        self._swept: set[str] = set()  # target folders cleaned of temp files
        self._swept_metadata_dir = False  # see _before_writing
        self._refreshed_at = 0.0  # time.monotonic() of the last good refresh
        self._time_seen: datetime.datetime | None = None  # see _checked_time

        try:
            if not os.path.isdir(self._dir):  # one stat where it exists
                os.makedirs(self._dir, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create {self._dir}: {exc}") from exc
        with self._locked():
            # A root the caller passes in is passed in again on every start:
            # losing its copy to a power cut loses nothing, so it is stored
            # atomically but not fsynced (the first start on ext4 would pay
            # three fsyncs for it).  Durable where the copy replaces the
            # caller's own root.json file, and for every root a refresh
            # learns from the repository.
            durable = bootstrap is None or _is_plain_file(
                os.path.join(self._dir, "root.json")
            )
            if bootstrap is None:
                bootstrap = self._read_local("root.json", self.config.root_max_length)
            bootstrap = bytes(bootstrap)
            self._trusted_set = TrustedMetadataSet(
                bootstrap, self._reference_time()
            )
            version = self._trusted_set.root.version
            self._persist_root(version, bootstrap, durable)
            if _linked_root_version(self._dir) < version:
                # not pointed back at an older root that a refresh would
                # move on again: a root.json already at a newer version
                # was verified (from this chain) when it was written
                self._point_root_json(version, durable)

    # --- public API ------------------------------------------------------------

    def refresh(self) -> None:
        """Load the newest top-level metadata: root, timestamp, snapshot,
        targets, in the order and with the checks of the specification.

        Like python-tuf's, an Updater refreshes once, unless
        ``config.refresh_interval`` is set (long-running processes): then
        ``refresh()`` may be called again, and refreshes again once that
        many seconds passed since the last successful refresh (at once
        after a failed one); sooner, it returns without any I/O.  No
        version goes below what an earlier refresh of this Updater trusted,
        even if the cache lost it.  Delegated targets roles are loaded
        later, on demand, by ``get_targetinfo``.

        Raises:
            RepositoryError: metadata failed a check.
            DownloadError: a download failed.
            StorageError: the cache could not be written.
            RuntimeError: this Updater already got past the root in an
                earlier refresh (also the one ``get_targetinfo`` starts
                after a failed refresh), as with python-tuf.
        """
        with self._locked():
            interval = self.config.refresh_interval
            again = interval is not None and "timestamp" in self._trusted_set
            if (
                again
                and "targets" in self._trusted_set
                and time.monotonic() - self._refreshed_at < interval
            ):
                return  # recent enough
            when = self._checked_time()
            if again:
                self._trusted_set = TrustedMetadataSet.next_refresh(
                    self._trusted_set, when
                )
                self._verified = {}
            self._trusted_set.reference_time = when
            try:
                self._load_root()
                self._load_timestamp()
                self._load_snapshot()
                self._load_targets("targets", "root")
                self._refreshed_at = time.monotonic()
                self._record_time(self._trusted_set.reference_time)
            except RuntimeError as exc:  # the trusted set's order rules
                raise RuntimeError(
                    f"{exc}: this Updater has refreshed already (an Updater "
                    "refreshes once; create a new one to refresh again, or "
                    "set UpdaterConfig.refresh_interval)"
                ) from exc

    def get_targetinfo(self, target_path: str) -> TargetFile | None:
        """The ``TargetFile`` for ``target_path``, or None if no role the
        delegation search reaches lists it.  Refreshes first if needed and
        loads the delegated roles the search visits."""
        _str_arg("target_path", target_path)
        with self._locked():
            if "targets" not in self._trusted_set:
                self.refresh()
            return self._preorder_depth_first_walk(target_path)

    def get_targetinfos(self, target_paths: Iterable[str]) -> list[TargetFile | None]:
        """``get_targetinfo`` of each path, in order, the roles the searches
        need fetched and verified in parallel: at most
        ``config.parallel_downloads`` at once (the fetcher is called from
        several threads).  Refreshes first if needed.

        The searches run in rounds: each goes as far as the loaded roles
        take it, then the roles they stopped at are loaded together (for
        hash bins: every bin in one round).  The answers and the roles
        loaded are those of calling ``get_targetinfo`` for each path.

        Raises what ``get_targetinfo`` raises, the first failure once the
        round it happened in has ended; the roles that verified stay
        trusted.
        """
        paths = _str_list_arg("target_paths", target_paths)
        with self._locked():
            if "targets" not in self._trusted_set:
                self.refresh()
            answers: dict[str, TargetFile | None] = {}
            pending = list(dict.fromkeys(paths))
            while pending:
                needed: dict[_Unloaded, None] = {}  # in order, once each
                waiting = []
                for path in pending:
                    found = self._preorder_depth_first_walk(path, loaded_only=True)
                    if isinstance(found, _Unloaded):
                        needed[found] = None
                        waiting.append(path)
                    else:
                        answers[path] = found
                if needed:
                    self._load_many_targets(list(needed))
                pending = waiting
            return [answers[path] for path in paths]

    def find_cached_target(
        self, targetinfo: TargetFile, filepath: str | os.PathLike | None = None
    ) -> str | None:
        """``filepath`` (default: under target_dir) if that file has the
        target's length and hashes, else None.  The file is re-verified on
        every call."""
        _check_targetinfo(targetinfo)
        filepath = _path_arg("filepath", filepath, optional=True)
        if filepath is None:
            filepath = self._generate_target_file_path(targetinfo)
        try:
            hasher = _target_hasher(targetinfo)
            with open(filepath, "rb") as local:
                while True:
                    chunk = local.read(_CHUNK)
                    if not chunk:
                        break
                    hasher.update(chunk)
            hasher.verify(targetinfo.length, targetinfo.hashes)
        except (OSError, TufcError):
            return None
        return filepath

    def download_target(
        self,
        targetinfo: TargetFile,
        filepath: str | os.PathLike | None = None,
        target_base_url: str | None = None,
    ) -> str:
        """Download the target, verify it and store it at ``filepath``
        (default: under target_dir); return that path.

        The data is hashed while it streams in and the download stops the
        moment it is longer than the target; it is written to a temporary
        file next to ``filepath`` and renamed into place only once length
        and every hash match, so a failure leaves nothing behind (and an
        existing file untouched).

        Raises:
            TypeError: an argument of the wrong type.
            ValueError: no target_dir or target_base_url to use.
            RepositoryError: the target path has a ".." segment (its URL
                would leave the targets base URL); nothing is requested.
            DownloadError: the download failed, was too long or too slow.
            LengthOrHashMismatchError: the data is not the target.
            StorageError: the file could not be written.
        """
        _check_targetinfo(targetinfo)
        filepath = _path_arg("filepath", filepath, optional=True)
        target_base_url = _str_arg("target_base_url", target_base_url, optional=True)
        if ".." in targetinfo.path.split("/"):
            raise RepositoryError(
                f"target path {targetinfo.path!r} has a '..' segment: its URL "
                "would leave the targets base URL (servers resolve it, "
                "percent-encoded or not); not downloading it"
            )
        if filepath is None:
            filepath = self._generate_target_file_path(targetinfo)
        if target_base_url is None:
            if self._target_base_url is None:
                raise ValueError(
                    "target_base_url must be set in either "
                    "download_target() or constructor"
                )
            target_base_url = self._target_base_url
        else:
            target_base_url = _ensure_trailing_slash(target_base_url)

        hasher = _target_hasher(targetinfo)  # fails closed before any I/O
        path = targetinfo.path
        if (
            self._trusted_set.root.consistent_snapshot
            and self.config.prefix_targets_with_hash
        ):
            first_hash = next(iter(targetinfo.hashes.values()))
            dirname, sep, basename = path.rpartition("/")
            path = f"{dirname}{sep}{first_hash}.{basename}"
        url = target_base_url + _url_path(path)

        folder = os.path.dirname(os.path.abspath(filepath))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create {folder}: {exc}") from exc
        self._sweep_target_folder(folder)
        # not fsynced: find_cached_target re-verifies a cached target
        with _atomic.AtomicFile(filepath, durable=False) as out, self._stream(
            url, targetinfo.length
        ) as chunks:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
            hasher.verify(targetinfo.length, targetinfo.hashes)
            out.commit()
        logger.debug("Downloaded target %s", targetinfo.path)
        return filepath

    def download_targets(
        self, targetinfos: Iterable[TargetFile], target_base_url: str | None = None
    ) -> list[str]:
        """``download_target`` of each target (to its default path under
        target_dir), at most ``config.parallel_downloads`` at once; the
        local paths, in order.

        Every download runs to its end; then the first failure (in the
        order given) is raised, the targets that arrived are kept.
        """
        if isinstance(targetinfos, TargetFile) or not isinstance(targetinfos, Iterable):
            raise TypeError(
                "targetinfos must be an iterable of TargetFile, "
                f"not {type(targetinfos).__name__}"
            )
        infos = list(targetinfos)
        for info in infos:
            _check_targetinfo(info)
        if len(infos) <= 1:
            return [self.download_target(i, None, target_base_url) for i in infos]
        workers = min(self.config.parallel_downloads, len(infos))
        with ThreadPoolExecutor(workers, thread_name_prefix="tufc-download") as pool:
            futures = [
                pool.submit(self.download_target, info, None, target_base_url)
                for info in infos
            ]
        for future in futures:
            if future.exception() is not None:
                raise future.exception()
        return [future.result() for future in futures]

    # --- the workflow --------------------------------------------------------

    def _load_root(self) -> None:
        """Walk the root chain: N+1, N+2, ... from the cache, else remote,
        until the repository has no newer root (403/404)."""
        start = self._trusted_set.root.version
        upper = start + 1 + self.config.max_root_rotations
        cached_root = None  # the newest root known before any download
        stored = start  # the newest root that root_history/ holds
        try:
            for version in range(start + 1, upper):
                name = f"{_ROOT_HISTORY}/{version}.root.json"
                try:
                    data = self._read_local(name, self.config.root_max_length)
                    self._trusted_set.update_root(data)
                    stored = version
                    continue
                except (OSError, StorageError, RepositoryError) as exc:
                    logger.debug("Cached root v%d not usable: %s", version, exc)
                if self.config.offline:
                    break  # the newest root the cache holds
                if cached_root is None:
                    cached_root = self._trusted_set.root
                try:
                    data = self._download_metadata(
                        "root", self.config.root_max_length, version
                    )
                except DownloadHTTPError as exc:
                    if exc.status_code not in (403, 404):
                        raise
                    break  # no newer root published
                self._trusted_set.update_root(data)
                self._persist_root(version, data)
                stored = version
        finally:
            # root.json points at a root that was stored: after a failed
            # write in root_history/ (a full disk, a read-only folder),
            # a link to the root that failed would dangle, and the next
            # Updater without a bootstrap could not start
            if stored != start:
                self._point_root_json(stored)
        if cached_root is not None and _keys_rotated(
            cached_root, self._trusted_set.root
        ):
            # Fast-forward attack recovery (spec 5.3.11): the cached
            # timestamp and snapshot must not serve as rollback baseline
            # once their keys were replaced.
            for role in ("timestamp", "snapshot"):
                _atomic.remove(os.path.join(self._dir, _role_file(role)))

    def _load_timestamp(self) -> None:
        limit = self.config.timestamp_max_length
        if self.config.offline:
            self._trusted_set.update_timestamp(self._read_offline("timestamp", limit))
            return
        try:
            data = self._read_local("timestamp.json", limit)
            self._trusted_set.update_timestamp(data)
        except (OSError, StorageError, RepositoryError) as exc:
            logger.debug("Cached timestamp not usable as final: %s", exc)
        data = self._download_metadata("timestamp", limit)
        try:
            self._trusted_set.update_timestamp(data)
        except EqualVersionNumberError:
            return  # the same version as trusted: keep the cached one
        self._persist_metadata("timestamp", data)

    def _load_snapshot(self) -> None:
        meta = self._trusted_set.timestamp.snapshot_meta
        limit = meta.length or self.config.snapshot_max_length
        if self.config.offline:
            # checked against the timestamp's length and hashes, as a download
            data = self._read_offline(
                "snapshot", max(limit, self.config.snapshot_max_length)
            )
            self._trusted_set.update_snapshot(data)
            return
        try:
            # The cached snapshot is read whatever the new length: even when
            # it is not the final one it is the rollback baseline.
            data = self._read_local(
                "snapshot.json", max(limit, self.config.snapshot_max_length)
            )
            self._trusted_set.update_snapshot(data, trusted=True)
            logger.debug("Cached snapshot is valid: not downloading")
            return
        except (OSError, StorageError, RepositoryError) as exc:
            logger.debug("Cached snapshot not usable as final: %s", exc)
        version = meta.version if self._consistent() else None
        data = self._download_metadata("snapshot", limit, version)
        self._trusted_set.update_snapshot(data)
        self._persist_metadata("snapshot", data)

    def _load_targets(self, role: str, delegator: str) -> Targets:
        """The verified metadata of targets role ``role`` as delegated by
        ``delegator``: from the cache if valid, else downloaded."""
        known = self._verified.get((delegator, role))
        if known is not None:
            return known
        return self._trust_targets(role, delegator, *self._check_targets(role, delegator))

    def _load_many_targets(self, roles: list) -> None:
        """``_load_targets`` of each ``(role, delegator)``: checked in
        parallel threads (download, parse, verify; the trusted set is only
        read meanwhile), then trusted one by one in this thread, in order.
        The first failure is raised once all have ended; the roles that
        passed are trusted."""
        if len(roles) == 1:
            self._load_targets(*roles[0])
            return
        workers = min(self.config.parallel_downloads, len(roles))
        with ThreadPoolExecutor(workers, thread_name_prefix="tufc-metadata") as pool:
            futures = [pool.submit(self._check_targets, *key) for key in roles]
        failure = None
        for key, future in zip(roles, futures):
            if future.exception() is not None:
                failure = failure or future.exception()
            else:
                self._trust_targets(*key, *future.result())
        if failure is not None:
            raise failure

    def _trust_targets(self, role: str, delegator: str, md, data: bytes | None) -> Targets:
        """Add what ``_check_targets`` returned to the trusted set; store
        ``data`` (newly downloaded bytes) in the cache."""
        targets = self._trusted_set.add_delegated_targets(md, role, delegator)
        if data is not None:
            self._persist_metadata(role, data)
        self._verified[(delegator, role)] = targets
        return targets

    def _check_targets(self, role: str, delegator: str) -> tuple:
        """``(metadata, downloaded bytes or None)`` of ``role``, from the
        cache if valid, else downloaded; verified, not yet trusted.
        Changes nothing: safe in several threads at once."""
        if delegator != "root" and role in _TOP_LEVEL:
            raise RepositoryError(f"A top-level role name {role!r} delegated")
        meta = self._trusted_set.snapshot.meta.get(f"{role}.json")
        if meta is None:
            raise RepositoryError(
                f"Role {role} was delegated but is not part of snapshot"
            )
        limit = meta.length or self.config.targets_max_length
        if self.config.offline:
            data = self._read_offline(role, max(limit, self.config.targets_max_length))
            return self._trusted_set.check_delegated_targets(data, role, delegator), None
        try:
            data = self._read_local(
                _role_file(role), max(limit, self.config.targets_max_length),
                missing_ok=True,
            )
            if data is not None:
                md = self._trusted_set.check_delegated_targets(data, role, delegator)
                logger.debug("Cached %s is valid: not downloading", role)
                return md, None
        except (OSError, StorageError, RepositoryError) as exc:
            logger.debug("Cached %s not usable: %s", role, exc)
        version = meta.version if self._consistent() else None
        data = self._download_metadata(role, limit, version)
        return self._trusted_set.check_delegated_targets(data, role, delegator), data

    def _preorder_depth_first_walk(
        self, target_path: str, loaded_only: bool = False
    ) -> TargetFile | None | _Unloaded:
        """Search the delegation graph in pre-order, depth first, in listed
        order; a terminating delegation ends backtracking; at most
        ``max_delegations`` roles (as python-tuf counts them).

        ``loaded_only``: stop at the first role the search needs that is
        not loaded yet and return it as ``_Unloaded`` (the search is the
        same each time, so it goes on where it stopped once that role is
        loaded)."""
        to_visit = [("targets", "root")]
        visited: set[str] = set()
        while to_visit and len(visited) <= self.config.max_delegations:
            role, delegator = to_visit.pop()
            if role in visited:
                continue  # a cycle or a diamond seen already
            targets = self._verified.get((delegator, role))
            if targets is None:
                if loaded_only:
                    return _Unloaded(role, delegator)
                targets = self._load_targets(role, delegator)
            target = targets.targets.get(target_path)
            if target is not None:
                return target
            visited.add(role)
            delegations = targets.delegations
            if delegations is None:
                continue
            if delegations.succinct_roles is not None:
                # one bin holds the path, and bins terminate the search
                bin_name = delegations.succinct_roles.get_role_for_target(target_path)
                to_visit = [(bin_name, role)]
                continue
            children = []
            for child, terminating in delegations.get_roles_for_target(target_path):
                children.append((child, role))
                if terminating:
                    to_visit = []  # nothing after this child is searched
                    break
            to_visit.extend(reversed(children))
        if to_visit:
            logger.debug(
                "%d roles left unvisited: max_delegations %d reached",
                len(to_visit),
                self.config.max_delegations,
            )
        return None

    # --- downloads -----------------------------------------------------------

    def _consistent(self) -> bool:
        return bool(self._trusted_set.root.consistent_snapshot)

    def _download_metadata(
        self, role: str, max_length: int, version: int | None = None
    ) -> bytes:
        name = _quote_role(role)
        if version is None:
            url = f"{self._metadata_base_url}{name}.json"
        else:
            url = f"{self._metadata_base_url}{version}.{name}.json"
        with self._stream(url, max_length) as chunks:
            return b"".join(chunks)

    @contextlib.contextmanager
    def _stream(self, url: str, max_length: int) -> Iterator[Iterator[bytes]]:
        """Chunks of ``url`` from the fetcher, at most ``max_length`` bytes
        and within the deadline for that length (every fetcher, python-tuf's
        too: the Updater calls ``fetch`` and limits what it yields).
        Foreign fetchers' errors are mapped to tufc's and the source is
        closed however iteration ends."""
        if self.config.offline:
            raise OfflineError(f"offline: not downloading {url}")
        seconds = download_seconds(max_length, self._min_rate, self._grace)
        deadline = time.monotonic() + seconds  # connecting counts
        try:
            chunks = self._fetcher.fetch(url)
        except DownloadError:
            raise
        except Exception as exc:
            raise as_download_error(exc, url) from exc
        with limited(guarded(chunks, url), url, max_length, deadline) as limited_chunks:
            yield limited_chunks

    # --- the local cache -----------------------------------------------------

    def _read_local(self, name: str, max_length: int, missing_ok: bool = False) -> bytes | None:
        """A cached file's bytes; one longer than ``max_length`` is not
        trusted as cache (StorageError).  ``missing_ok``: None for a file
        that does not exist (the usual case for a role not fetched yet,
        answered without raising)."""
        path = os.path.join(self._dir, name)
        try:
            # os-level calls: five system calls for a hit, one for a miss
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError as exc:
            if missing_ok:
                return None
            raise StorageError(f"Cannot read {path}: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"Cannot read {path}: {exc}") from exc
        try:
            data = _read_at_most(fd, max_length + 1)
        except OSError as exc:
            raise StorageError(f"Cannot read {path}: {exc}") from exc
        finally:
            os.close(fd)
        if len(data) > max_length:
            raise StorageError(f"{path} is longer than {max_length} bytes")
        return data

    def _read_offline(self, role: str, max_length: int) -> bytes:
        """The cached metadata of ``role``, which offline must be there."""
        data = self._read_local(_role_file(role), max_length, missing_ok=True)
        if data is None:
            raise OfflineError(
                f"offline: no cached {role} metadata (an online refresh "
                "must have fetched it first)"
            )
        return data

    def _persist_metadata(self, role: str, data: bytes) -> None:
        """Atomic, not durable: a torn copy fails verification when it is
        next read and is downloaded again."""
        self._before_writing()
        _atomic.write_atomic(
            os.path.join(self._dir, _role_file(role)), data, durable=False
        )

    def _persist_root(self, version: int, data: bytes, durable: bool = True) -> None:
        folder = os.path.join(self._dir, _ROOT_HISTORY)
        path = os.path.join(folder, f"{version}.root.json")
        try:
            with open(path, "rb") as f:
                if f.read(len(data) + 1) == data:
                    return  # already stored: no rewrite, no fsync
        except OSError:
            pass
        self._before_writing()
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create {folder}: {exc}") from exc
        # durable, with its name (unless the caller passes it in on every
        # start): the root chain is the trust anchor a client cannot
        # re-derive (a lost root would mean trusting an older one, or none)
        _atomic.write_atomic(path, data, durable=durable)
        if durable:
            _atomic.sync_folder(folder)

    def _point_root_json(self, version: int, durable: bool = True) -> None:
        """Make root.json the current root: a symlink into root_history/
        (python-tuf 7's layout), replaced atomically; a copy where symlinks
        are not available.  ``durable`` also fsyncs metadata_dir."""
        link = os.path.join(self._dir, "root.json")
        target = f"{_ROOT_HISTORY}/{version}.root.json"
        try:
            if os.readlink(link) == target:
                return
        except OSError:
            pass
        self._before_writing()
        temp = os.path.join(self._dir, _atomic.temp_name())
        try:
            os.symlink(target, temp)
        except (OSError, NotImplementedError, AttributeError):
            # e.g. Windows without the symlink privilege: a copy instead
            data = self._read_local(target, self.config.root_max_length)
            _atomic.write_atomic(link, data, durable=durable)
            if durable:
                _atomic.sync_folder(self._dir)
            return
        try:
            os.replace(temp, link)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise StorageError(f"Cannot update {link}: {exc}") from exc
        if durable:
            _atomic.sync_folder(self._dir)

    def _before_writing(self) -> None:
        """Before this Updater's first new file in metadata_dir: sweep it.
        Not at every start: a start that writes nothing would pay 0.05-0.1
        ms (a directory's first read in a process) for nothing, and stale
        files are only clutter (their names never end in ".json")."""
        if not self._swept_metadata_dir:
            self._swept_metadata_dir = True
            self._sweep_metadata_dir()

    def _sweep_metadata_dir(self) -> None:
        """Remove temporary files killed writers left in metadata_dir and
        root_history/.  Called holding the folder lock, which every writer
        there holds while its temporary file exists, so each one found is
        stale; without flock (Windows) only old ones are removed."""
        older_than = None if self._lock_fd is not None else _atomic.STALE_AFTER
        history = os.path.join(self._dir, _ROOT_HISTORY)
        removed = _atomic.remove_stale(self._dir, older_than)
        if not os.path.islink(history):
            removed += _atomic.remove_stale(history, older_than)
        if removed:
            logger.debug("Removed %d stale temporary files from %s", removed, self._dir)

    def _sweep_target_folder(self, folder: str) -> None:
        """Once per folder: remove temporary files of killed downloads.  No
        lock covers target folders, so only files unmodified for longer
        than any live download pauses (``_atomic.STALE_AFTER``)."""
        if folder in self._swept:
            return
        self._swept.add(folder)
        removed = _atomic.remove_stale(folder, _atomic.STALE_AFTER)
        if removed:
            logger.debug("Removed %d stale temporary files from %s", removed, folder)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the metadata_dir lock (re-entrant within this Updater)."""
        with self._lock:
            if self._lock_depth == 0 and fcntl is not None:
                try:
                    fd = os.open(self._dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
                except OSError as exc:
                    raise StorageError(f"Cannot open {self._dir}: {exc}") from exc
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError as exc:
                    os.close(fd)
                    raise StorageError(f"Cannot lock {self._dir}: {exc}") from exc
                self._lock_fd = fd
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0 and self._lock_fd is not None:
                    fd, self._lock_fd = self._lock_fd, None
                    with contextlib.suppress(OSError):
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)

    # --- helpers ---------------------------------------------------------------

    def _reference_time(self) -> datetime.datetime:
        """The time expiry is judged at: the configured one, or now (read
        through the ``datetime`` module's attributes at call time, so a
        test that substitutes ``datetime.datetime`` moves it)."""
        if self.config.reference_time is not None:
            return self.config.reference_time
        return datetime.datetime.now(datetime.timezone.utc)

    def _checked_time(self) -> datetime.datetime:
        """The reference time of a refresh: the configured one, or the
        larger of the local clock and the newest time a successful refresh
        saw here (``_TIME_FILE``).  A clock more than
        ``clock_rollback_tolerance`` behind that is a ``ClockRollbackError``
        rather than a judge of expiry."""
        now = self._reference_time()
        if self.config.reference_time is not None:
            return now  # the caller's choice: neither checked nor recorded
        seen = self._time_seen = self._recorded_time()
        if seen is None or now >= seen:
            return now
        tolerance = datetime.timedelta(seconds=self.config.clock_rollback_tolerance)
        if now < seen - tolerance:
            raise ClockRollbackError(
                f"the local clock ({now:%Y-%m-%d %H:%M:%S} UTC) is behind the "
                f"newest time seen ({seen:%Y-%m-%d %H:%M:%S} UTC, in "
                f"{os.path.join(self._dir, _TIME_FILE)}) by more than "
                f"{tolerance}: correct the clock, or remove that file if "
                "the time in it was wrong"
            )
        return seen

    def _recorded_time(self) -> datetime.datetime | None:
        """The modification time of ``_TIME_FILE``, to the second; None
        when there is no such regular file (it is a bound kept for safety,
        not a trust anchor: a missing one is made again at the next
        successful refresh).  Its content is not read."""
        try:
            info = os.lstat(os.path.join(self._dir, _TIME_FILE))
            if not stat.S_ISREG(info.st_mode):
                return None
            return datetime.datetime.fromtimestamp(
                info.st_mtime_ns // 1_000_000_000, datetime.timezone.utc
            )
        except (OSError, OverflowError, ValueError):
            return None

    def _record_time(self, when: datetime.datetime) -> None:
        """Keep ``when`` (the reference time of a successful refresh, so
        never past the trusted timestamp's expiry) if newer than the
        record, as ``_TIME_FILE``'s modification time: one utime() on the
        existing file, which is atomic; the file is made (atomically, not
        fsynced, like the other cached files) only where there is none."""
        if self.config.reference_time is not None:
            return
        seen = self._time_seen  # as read at the start of this refresh
        if seen is not None and seen >= when:
            return
        path = os.path.join(self._dir, _TIME_FILE)
        stamp = int(when.timestamp()) * 1_000_000_000
        if seen is not None:
            try:
                _set_mtime(path, stamp)
                return
            except OSError as exc:  # e.g. another user's file: make ours
                logger.debug("Cannot set the time of %s: %s", path, exc)
        self._before_writing()
        _atomic.write_atomic(path, _TIME_FILE_TEXT, durable=False)
        try:
            _set_mtime(path, stamp)
        except OSError as exc:
            raise StorageError(f"Cannot set the time of {path}: {exc}") from exc

    def _generate_target_file_path(self, targetinfo: TargetFile) -> str:
        if self.target_dir is None:
            raise ValueError("target_dir must be set if filepath is not given")
        return os.path.join(self.target_dir, parse.quote(targetinfo.path, safe=""))


def _check_config(config: UpdaterConfig) -> None:
    envelope = config.envelope_type
    if envelope is not EnvelopeType.METADATA and getattr(
        envelope, "name", None
    ) != "METADATA":
        raise ValueError(
            f"config: envelope_type {envelope!r} is not supported "
            "(tufc reads EnvelopeType.METADATA only)"
        )
    when = config.reference_time
    if when is not None:
        if not isinstance(when, datetime.datetime) or when.utcoffset() is None:
            raise ValueError(
                "config: reference_time must be a timezone-aware datetime"
            )
    interval = config.refresh_interval
    if interval is not None and (not _is_number(interval) or not 0 <= interval < float("inf")):
        raise ValueError(
            f"config: refresh_interval must be None or seconds >= 0, not {interval!r}"
        )
    tolerance = config.clock_rollback_tolerance
    if not _is_number(tolerance) or not 0 <= tolerance < float("inf"):
        raise ValueError(
            f"config: clock_rollback_tolerance must be seconds >= 0, not {tolerance!r}"
        )
    if not isinstance(config.offline, bool):
        raise ValueError(f"config: offline must be a bool, not {config.offline!r}")
    parallel = config.parallel_downloads
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
        raise ValueError(
            f"config: parallel_downloads must be an int >= 1, not {parallel!r}"
        )


def _download_pace(config: UpdaterConfig) -> tuple[float, float]:
    """``(min_download_rate, download_grace_period)`` of ``config``, checked."""
    rate, grace = config.min_download_rate, config.download_grace_period
    if not _is_number(rate) or not 0 < rate < float("inf"):
        raise ValueError(f"config: min_download_rate must be > 0 bytes/s, not {rate!r}")
    if not _is_number(grace) or not 0 <= grace < float("inf"):
        raise ValueError(f"config: download_grace_period must be >= 0 s, not {grace!r}")
    return rate, grace


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str_arg(name: str, value, optional: bool = False):
    """``value`` if it is a str (or None where ``optional``), else a
    TypeError naming the argument (not an AttributeError from deep inside)."""
    if isinstance(value, str) or (optional and value is None):
        return value
    expected = "a str or None" if optional else "a str"
    raise TypeError(f"{name} must be {expected}, not {type(value).__name__}")


def _str_list_arg(name: str, values) -> list:
    """``values`` as a list of str: an iterable of them, not one str."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(
            f"{name} must be an iterable of str, not {type(values).__name__}"
        )
    values = list(values)
    for value in values:
        _str_arg(f"each of {name}", value)
    return values


def _path_arg(name: str, value, optional: bool = False) -> str | None:
    """``value`` as a str path (a str or an os.PathLike giving one; None
    where ``optional``), else a TypeError naming the argument."""
    if isinstance(value, str) or (optional and value is None):
        return value
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    expected = "a str or os.PathLike" + (" or None" if optional else "")
    raise TypeError(f"{name} must be {expected}, not {type(value).__name__}")


def _check_targetinfo(targetinfo) -> None:
    if not isinstance(targetinfo, TargetFile):
        raise TypeError(
            "targetinfo must be a TargetFile (from get_targetinfo), "
            f"not {type(targetinfo).__name__}"
        )


def _is_plain_file(path: str) -> bool:
    """A file that is not a symlink (a root.json the caller placed, or a
    copy where symlinks are not available)."""
    return os.path.isfile(path) and not os.path.islink(path)


def _set_mtime(path: str, ns: int) -> None:
    """Set a file's times to ``ns``, not following a symlink put there in
    the meantime (where the OS allows)."""
    nofollow = os.utime in os.supports_follow_symlinks
    os.utime(path, ns=(ns, ns), follow_symlinks=not nofollow)


def _linked_root_version(folder: str) -> int:
    """The version root.json links to in root_history/, or 0.  Parsed by
    hand: a regular expression compiled here cost 0.1 ms of every start."""
    try:
        target = os.readlink(os.path.join(folder, "root.json"))
    except OSError:
        return 0
    prefix, suffix = _ROOT_HISTORY + "/", ".root.json"
    if not (target.startswith(prefix) and target.endswith(suffix)):
        return 0
    digits = target[len(prefix):-len(suffix)]
    if not (0 < len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        return 0
    return 0 if digits[0] == "0" else int(digits)


def _keys_rotated(old, new) -> bool:
    """Whether the timestamp or snapshot keys differ between two roots."""
    return any(
        set(old.roles[role].keyids) != set(new.roles[role].keyids)
        for role in ("timestamp", "snapshot")
    )


def _target_hasher(targetinfo: TargetFile):
    """A Hasher for every hash the target lists, limited to its length;
    no hashes or an unknown algorithm fail closed."""
    algorithms = list(targetinfo.hashes or ())
    if not algorithms:
        raise LengthOrHashMismatchError(f"{targetinfo.path}: no hashes listed")
    try:
        return _backend.Hasher(algorithms, max_length=targetinfo.length)
    except (FormatError, TypeError, ValueError) as exc:
        raise LengthOrHashMismatchError(
            f"{targetinfo.path}: cannot check hashes: {exc}"
        ) from exc


def _quote_role(role: str) -> str:
    """``role`` percent-encoded for use as one file name or URL segment."""
    if _PLAIN_ROLE.match(role) is not None:
        return role  # what quote() would return, without its overhead
    return parse.quote(role, safe="")


def _url_path(path: str) -> str:
    """A target path percent-encoded for use under the targets base URL."""
    segments = parse.quote(path, safe=_URL_PATH_SAFE).split("/")
    return "/".join(_DOT_SEGMENTS.get(segment, segment) for segment in segments)


def _role_file(role: str) -> str:
    return f"{_quote_role(role)}.json"


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd``, until end of file.

    The first read asks for the file's size plus one byte (so a file of
    known size takes one read and one to see its end, with no oversized
    buffer); the size is only a hint, reading goes on until end of file.
    """
    parts = []
    remaining = limit
    want = os.fstat(fd).st_size + 1
    while remaining > 0:
        chunk = os.read(fd, min(remaining, want))
        want = 1 << 16  # a file that grew, or whose size was not known
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _ensure_trailing_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
