"""Bounded reads from a published repository: a local folder or an http(s) URL.

The audit reads files an attacker or a broken publisher may have written,
so no read is unbounded: each asks for at most ``limit`` bytes (the length
the snapshot or timestamp pins, else a configured maximum) and a longer
file is refused after ``limit + 1`` bytes, never read whole.  Every failure
is a :class:`ReadError` with a kind the audit reports as a problem.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Iterator

__all__ = ["ReadError", "Source", "LocalSource", "HttpSource", "open_source"]

CHUNK = 1 << 20


class ReadError(Exception):
    """A file could not be read: ``kind`` is "missing", "too-large",
    "timeout" or "unreadable"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class Source:
    """Where a repository's files are; ``read`` and ``stream`` are bounded."""

    location: str

    def read(self, name: str, limit: int) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def stream(self, name: str, limit: int) -> Iterator[bytes]:  # pragma: no cover
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        try:
            for _ in self.stream(name, 0):
                break
        except ReadError as exc:
            return exc.kind == "too-large"
        return True


class LocalSource(Source):
    """Files under a folder (names are relative, "/"-separated)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.location = folder

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, *_parts(name))

    def _open(self, name: str, limit: int):
        return self._open_sized(name, limit)[0]

    def _open_sized(self, name: str, limit: int):
        try:
            f = open(self._path(name), "rb")
        except FileNotFoundError:
            raise ReadError("missing", f"{name}: not published") from None
        except OSError as exc:
            raise ReadError("unreadable", f"{name}: {exc.strerror or exc}") from None
        try:
            size = os.fstat(f.fileno()).st_size
        except OSError:
            size = 0
        if size > limit:
            f.close()
            raise ReadError("too-large", f"{name}: {size:,} bytes, more than the {limit:,} allowed")
        return f, size

    def read(self, name: str, limit: int) -> bytes:
        # os-level: a BufferedReader costs as much as the read of a bin
        try:
            fd = os.open(self._path(name), os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            raise ReadError("missing", f"{name}: not published") from None
        except OSError as exc:
            raise ReadError("unreadable", f"{name}: {exc.strerror or exc}") from None
        try:
            size = os.fstat(fd).st_size
            if size > limit:
                raise ReadError("too-large", f"{name}: {size:,} bytes, more than the {limit:,} allowed")
            # the size it has now plus one byte to see it grew (reading
            # the whole limit would allocate it for every file)
            parts = [os.read(fd, size + 1)]
            total = len(parts[0])
            while parts[-1] and total <= limit and total > size:
                parts.append(os.read(fd, min(CHUNK, limit + 1 - total)))
                total += len(parts[-1])
        except OSError as exc:
            raise ReadError("unreadable", f"{name}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        if total > limit:
            raise ReadError("too-large", f"{name}: more than the {limit:,} bytes allowed")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def stream(self, name: str, limit: int) -> Iterator[bytes]:
        f = self._open(name, limit)
        return _bounded_chunks(name, limit, f.read, f.close)


class HttpSource(Source):
    """Files under a base URL, fetched with urllib3 (one pool per process)."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.location = self.base_url
        self.timeout = timeout
        self._pool = None
        self._pid = None

    def _manager(self):
        import urllib3

        if self._pool is None or self._pid != os.getpid():  # not shared across fork
            self._pool = urllib3.PoolManager(num_pools=4, maxsize=8, retries=False)
            self._pid = os.getpid()
        return self._pool

    def _get(self, name: str, limit: int):
        import urllib3

        # as clients build it: metadata names come quoted (role_file),
        # target paths are used as they are (python-tuf's ngclient)
        url = self.base_url + "/".join(_parts(name))
        try:
            response = self._manager().request(
                "GET", url, preload_content=False, redirect=False,
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            )
        except urllib3.exceptions.TimeoutError:
            raise ReadError("timeout", f"{name}: no answer within {self.timeout:g} s") from None
        except urllib3.exceptions.HTTPError as exc:
            raise ReadError("unreadable", f"{name}: {exc}") from None
        if response.status == 404:
            response.release_conn()
            raise ReadError("missing", f"{name}: not published (HTTP 404)")
        if response.status != 200:
            response.release_conn()
            raise ReadError("unreadable", f"{name}: HTTP {response.status}")
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response.release_conn()
            raise ReadError("too-large", f"{name}: {int(declared):,} bytes, more than the {limit:,} allowed")
        return response

    def _chunks(self, name: str, limit: int) -> Iterator[bytes]:
        import urllib3

        response = self._get(name, limit)

        def read(size: int) -> bytes:
            try:
                return response.read(size)
            except urllib3.exceptions.TimeoutError:
                raise ReadError("timeout", f"{name}: stalled for {self.timeout:g} s") from None
            except urllib3.exceptions.HTTPError as exc:
                raise ReadError("unreadable", f"{name}: {exc}") from None

        return _bounded_chunks(name, limit, read, response.release_conn)

    def read(self, name: str, limit: int) -> bytes:
        return b"".join(self._chunks(name, limit))

    def stream(self, name: str, limit: int) -> Iterator[bytes]:
        return self._chunks(name, limit)


def _parts(name: str) -> list:
    """The segments of a relative name; none may leave the base (a target
    path is the repository's to choose, not the reader's to follow)."""
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in name or "\0" in name:
        raise ReadError("missing", f"{name}: not a plain relative name")
    return parts


def _bounded_chunks(name, limit, read, close) -> Iterator[bytes]:
    """Chunks of ``read`` until EOF; ReadError("too-large") past ``limit``."""
    total = 0
    try:
        while True:
            try:
                chunk = read(min(CHUNK, limit + 1 - total))
            except OSError as exc:
                raise ReadError("unreadable", f"{name}: {exc.strerror or exc}") from None
            if not chunk:
                return
            total += len(chunk)
            if total > limit:
                raise ReadError("too-large", f"{name}: more than the {limit:,} bytes allowed")
            yield chunk
    finally:
        close()


def open_source(location: str, timeout: float = 10.0, metadata: bool = True) -> Source:
    """The Source for ``location``: an http(s) URL or a folder.

    With ``metadata``, a folder holding ``metadata/`` is read from there (a
    repository as published: ``metadata/`` and ``targets/``), and a URL
    without ``1.root.json`` from its ``metadata/``.
    """
    location = os.fspath(location)
    if location.startswith(("http://", "https://")):
        source: Source = HttpSource(location, timeout)
        if metadata and not source.exists("1.root.json"):
            nested = HttpSource(source.base_url + "metadata/", timeout)
            if nested.exists("1.root.json"):
                return nested
        return source
    if location.startswith("file://"):
        location = urllib.parse.unquote(urllib.parse.urlparse(location).path)
    if metadata and os.path.isdir(os.path.join(location, "metadata")):
        location = os.path.join(location, "metadata")
    return LocalSource(location)
