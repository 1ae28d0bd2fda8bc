"""The verifying index behind ``tufc proxy``: project pages and their files,
each verified before any byte of it is handed out.

A page is a TUF target (length and hashes from the verified metadata).  A
file is the target its link names, when TUF lists it, and must also match
the hash in the verified page's link; a file TUF does not list is checked
against that page hash alone, and one with neither is refused.  Verified
bytes are cached on disk under the name of their expected hash, and
hashed again every time they are served, from the same open file that is
then sent (so what is sent is what was checked).

TUF metadata is refreshed at most every ``refresh_interval`` seconds, each
time with a new ``Updater`` over the same metadata folder (an Updater
refreshes once; the trusted metadata on disk keeps rollback protection
across them), so one install sees one snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass

from .. import _atomic, _backend
from ..exceptions import (
    DownloadLengthMismatchError,
    FormatError,
    LengthOrHashMismatchError,
    NotListedError,
    StorageError,
    TufcError,
)
from ..config import UpdaterConfig
from ..fetcher import Urllib3Fetcher, download_seconds, limited
from ..updater import Updater
from . import pages

logger = logging.getLogger(__name__)

_CHUNK = 256 * 1024
# A file no TUF entry gives a length for is read up to this many bytes.
MAX_UNLISTED_LENGTH = 2 << 30
_ALGORITHMS = ("sha256", "sha384", "sha512", "blake2b-256", "blake2b")


@dataclass(frozen=True)
class Names:
    """Where projects' pages and files are among the targets.

    ``page``: the target path of a project's page (``{project}`` is its
    normalized name).  ``files_url``: the URL the target paths of files are
    relative to (None: the targets base URL); a link outside it has no
    target path.  ``file_hash_prefix``: download a file target by its
    consistent snapshot name (``DIR/SHA256.NAME``), as tufc's engine
    publishes them; Warehouse's files are named by their BLAKE2b already
    (its pages, like every target here, are fetched by their consistent
    snapshot name when the root says so).
    """

    page: str = "simple/{project}/index.html"
    files_url: str | None = None
    file_hash_prefix: bool = True

    def page_target(self, project: str) -> str:
        return self.page.format(project=project)


# The two layouts in use: tufc's repository engine and Warehouse (PEP 458).
LAYOUTS = {
    "tufc": Names(),
    "warehouse": Names(files_url="https://files.pythonhosted.org/", file_hash_prefix=False),
}


class Verified:
    """An open file whose bytes matched what was expected; ``length`` bytes
    from offset 0."""

    def __init__(self, file, length: int):
        self.file, self.length = file, length

    def chunks(self):
        while True:
            chunk = self.file.read(_CHUNK)
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        self.file.close()


class _Snapshot:
    """One refresh: its Updater (or why it failed) and the pages verified."""

    def __init__(self, updater: Updater | None, error: Exception | None):
        self.updater, self.error = updater, error
        self.started = time.monotonic()
        self.pages: dict = {}  # project -> list of pages.Link, or its failure
        self.locks: dict = {}  # project -> the lock its page loads under
        self.lock = threading.Lock()


class Index:
    """Verified pages and files of one TUF repository.

    ``metadata_dir`` must hold a trusted root.json; ``cache_dir`` receives
    verified files.  Methods raise ``NotListedError`` for what TUF does not
    list and another ``TufcError`` for what failed a check.
    """

    def __init__(self, metadata_dir: str, metadata_url: str, target_base_url: str,
                 cache_dir: str, names: Names = LAYOUTS["tufc"],
                 refresh_interval: float = 300.0, timeout: float = 30.0):
        self.metadata_dir = metadata_dir
        self.metadata_url = metadata_url
        self.target_base_url = _slash(target_base_url)
        self.files_url = _slash(names.files_url or self.target_base_url)
        self.cache_dir = cache_dir
        self.names = names
        self.refresh_interval = refresh_interval
        self._fetcher = Urllib3Fetcher(socket_timeout=timeout)
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._lock_table = threading.Lock()
        self._downloads: dict = {}  # cache path -> (its lock, how many use it)

    # --- snapshots -------------------------------------------------------------

    def refresh(self) -> _Snapshot:
        """Refresh now; the new snapshot (its ``error`` says if it failed:
        then every page fails with it until the next refresh)."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> _Snapshot:
        try:
            updater = Updater(self.metadata_dir, self.metadata_url,
                              target_base_url=self.target_base_url,
                              fetcher=self._fetcher, bootstrap=None)
            updater.refresh()
            snapshot = _Snapshot(updater, None)
            logger.info("refreshed TUF metadata from %s", self.metadata_url)
        except TufcError as exc:
            logger.error("refresh failed: %s", _one_line(exc))
            snapshot = _Snapshot(None, exc)
        self._snapshot = snapshot
        return snapshot

    def current(self) -> _Snapshot:
        """The snapshot to answer from, refreshed if it is older than the
        refresh interval."""
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or time.monotonic() - snapshot.started >= self.refresh_interval:
                snapshot = self._refresh()
            return snapshot

    # --- pages -----------------------------------------------------------------

    def links(self, project: str, snapshot: _Snapshot | None = None) -> list:
        """The verified links of ``project``'s page (a normalized name)."""
        snapshot = snapshot or self.current()
        with snapshot.lock:
            lock = snapshot.locks.setdefault(project, threading.Lock())
        with lock:  # pages of different projects load in parallel
            cached = snapshot.pages.get(project)
            if cached is None:
                cached = self._load_page(snapshot, project)
                snapshot.pages[project] = cached
        if isinstance(cached, Exception):
            raise cached
        return cached

    def _load_page(self, snapshot: _Snapshot, project: str):
        """The page's links, or the exception to answer every request for it
        with in this snapshot (a failed download is not cached)."""
        if snapshot.error is not None:
            return snapshot.error
        target = self.names.page_target(project)
        info = snapshot.updater.get_targetinfo(target)
        if info is None:
            return NotListedError(f"TUF lists no simple page for {project!r} ({target})")
        path = self._cache_path(info.hashes)
        verified = _open_verified(path, info.length, info.hashes)
        if verified is None:
            snapshot.updater.download_target(info, path)
            verified = _open_verified(path, info.length, info.hashes)
            if verified is None:
                raise LengthOrHashMismatchError(f"{target}: cached copy changed after download")
        try:
            data = b"".join(verified.chunks())
        finally:
            verified.close()
        try:
            return pages.parse(data, self.target_base_url + urllib.parse.quote(target))
        except FormatError as exc:
            return FormatError(f"{target}: {exc}")

    # --- files -----------------------------------------------------------------

    def file(self, project: str, filename: str) -> Verified:
        """The verified file ``filename`` of ``project``'s page (its
        ``.metadata`` file for a name ending so), open for reading."""
        snapshot = self.current()
        links = {link.filename: link for link in self.links(project, snapshot)}
        metadata = False
        link = links.get(filename)
        if link is None and filename.endswith(".metadata"):
            link = links.get(filename[: -len(".metadata")])
            metadata = link is not None and link.metadata_hashes is not None
            if not metadata:
                link = None
        if link is None:
            raise NotListedError(f"the verified page of {project!r} lists no {filename!r}")
        url = link.url + (".metadata" if metadata else "")
        page_hashes = link.metadata_hashes if metadata else link.hashes
        page_hashes = {k: v for k, v in page_hashes.items() if k in _ALGORITHMS}
        target = self._target_of(url)
        info = snapshot.updater.get_targetinfo(target) if target is not None else None
        if info is not None:
            for name, value in page_hashes.items():
                if info.hashes.get(name, value) != value:
                    raise LengthOrHashMismatchError(
                        f"{filename}: the page's {name} differs from TUF's for {target}")
            hashes, length = dict(page_hashes, **info.hashes), info.length
        elif page_hashes:
            hashes, length = page_hashes, None
        else:
            raise LengthOrHashMismatchError(
                f"{filename}: TUF lists no target {target or url} and the page gives no hash")
        path = self._cache_path(hashes)
        verified = _open_verified(path, length, hashes)
        if verified is not None:
            return verified
        if info is not None:
            # the consistent snapshot name uses the first hash, as the Updater's
            first = next(iter(info.hashes.values())) if self.names.file_hash_prefix else None
            url = self.files_url + _url_path(target, first)
        with self._download_lock(path):  # parallel requests for it wait for one download
            verified = _open_verified(path, length, hashes)
            if verified is None:
                self._download(url, path, hashes, length)
                verified = _open_verified(path, length, hashes)
        if verified is None:
            raise LengthOrHashMismatchError(f"{filename}: cached copy changed after download")
        return verified

    @contextlib.contextmanager
    def _download_lock(self, path: str):
        with self._lock_table:
            lock, users = self._downloads.get(path, (threading.Lock(), 0))
            self._downloads[path] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock_table:
                lock, users = self._downloads[path]
                if users == 1:
                    del self._downloads[path]
                else:
                    self._downloads[path] = (lock, users - 1)

    def _target_of(self, url: str) -> str | None:
        """The target path a file's URL names (None: outside ``files_url``)."""
        if not url.startswith(self.files_url):
            return None
        return urllib.parse.unquote(url[len(self.files_url):])

    def _download(self, url: str, path: str, hashes: dict, length: int | None) -> None:
        """Fetch ``url`` into ``path``, renamed into place only if it has
        ``length`` (None: a file TUF does not list) and ``hashes``; the
        download stops as soon as it is longer."""
        _makedirs(os.path.dirname(path))
        limit = MAX_UNLISTED_LENGTH if length is None else length
        hasher = _backend.Hasher(list(hashes), max_length=limit)
        # the Updater's slow-retrieval defence: a deadline from the length
        config = UpdaterConfig()
        deadline = time.monotonic() + download_seconds(
            limit, config.min_download_rate, config.download_grace_period)
        with _atomic.AtomicFile(path) as out, limited(
            self._fetcher.fetch(url), url, limit, deadline
        ) as chunks:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
            if length is not None:
                hasher.verify(length, hashes)
            _check_digests(hasher, hashes, url)
            out.commit()

    def _cache_path(self, hashes: dict) -> str:
        """A content-addressed name: the first expected hash (so concurrent
        downloads of one file write the same bytes to the same name)."""
        name, value = sorted(hashes.items())[0]
        safe = urllib.parse.quote(f"{name}-{value}", safe="")
        return os.path.join(self.cache_dir, safe[:2 + len(name) + 1], safe)


def _url_path(target: str, prefix: str | None) -> str:
    """A target path as a URL path, its last part ``PREFIX.NAME`` if given."""
    if prefix:
        folder, sep, name = target.rpartition("/")
        target = f"{folder}{sep}{prefix}.{name}"
    return urllib.parse.quote(target, safe="/-._~")


def _open_verified(path: str, length: int | None, hashes: dict) -> Verified | None:
    """``path`` open at offset 0 if its bytes have ``length`` (None: any) and
    every one of ``hashes``; None if missing or different."""
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        hasher = _backend.Hasher(list(hashes), max_length=length)
        while True:
            chunk = file.read(_CHUNK)
            if not chunk:
                break
            hasher.update(chunk)
        if length is not None:
            hasher.verify(length, hashes)
        else:
            _check_digests(hasher, hashes, path)
        file.seek(0)
        return Verified(file, hasher.length)
    except (LengthOrHashMismatchError, DownloadLengthMismatchError):
        file.close()
        return None
    except BaseException:
        file.close()
        raise


def _check_digests(hasher, hashes: dict, what: str) -> None:
    digests = hasher.hexdigests()
    for name, value in hashes.items():
        if digests[name] != value:
            raise LengthOrHashMismatchError(f"{what}: {name} hash mismatch")


def _makedirs(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {folder}: {exc.strerror}") from exc


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _one_line(exc: BaseException) -> str:
    from ..cli._common import explain

    return explain(exc)
