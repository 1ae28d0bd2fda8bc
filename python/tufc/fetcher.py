"""Network access for the Updater: ``FetcherInterface`` and its default.

A fetcher turns a URL into a stream of byte chunks.  Subclasses implement
only ``_fetch`` (python-tuf's contract); the base class supplies ``fetch``
(every failure becomes a ``DownloadError``), and ``download_bytes`` /
``download_file``, which stop reading the moment more than ``max_length``
bytes arrived (the endless-data defence) or, given a ``timeout``, once the
download has taken longer than that (the slow-retrieval defence).
``limited`` applies both to any iterator of chunks: the Updater uses it
around every fetcher's ``fetch``, python-tuf's fetchers included.

``Urllib3Fetcher`` is the default: urllib3 over HTTP(S) with timeouts, a
user agent and the usual proxy environment variables; ``file://`` URLs are
read from the local file system by ``FileFetcher``, with no HTTP involved.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import IO

from .exceptions import (
    DownloadError,
    DownloadHTTPError,
    DownloadLengthMismatchError,
    SlowRetrievalError,
)

logger = logging.getLogger(__name__)

__all__ = ["FetcherInterface", "FileFetcher", "Urllib3Fetcher", "download_seconds"]


_POOL_SIZE = 16


class FetcherInterface(metaclass=abc.ABCMeta):
    """Abstract downloader: implement ``_fetch``, use the rest.

    ``_fetch(url)`` returns an iterator of ``bytes`` chunks and raises
    ``DownloadHTTPError(message, status_code)`` for an HTTP error status
    (the Updater treats 403 and 404 for the next root as "no newer root").
    Any other exception it raises is reported as a ``DownloadError``.
    """

    @abc.abstractmethod
    def _fetch(self, url: str) -> Iterator[bytes]:
        """Start downloading ``url``; return an iterator of its chunks."""
        raise NotImplementedError  # pragma: no cover

    def fetch(self, url: str) -> Iterator[bytes]:
        """Chunks of ``url``; every failure, now or while iterating, is a
        ``DownloadError`` (or one of its subclasses)."""
        try:
            chunks = self._fetch(url)
        except DownloadError:
            raise
        except Exception as exc:
            raise as_download_error(exc, url) from exc
        return guarded(chunks, url)

    def download_bytes(
        self, url: str, max_length: int, timeout: float | None = None
    ) -> bytes:
        """The content of ``url``, at most ``max_length`` bytes.

        Raises ``DownloadLengthMismatchError`` as soon as a chunk takes the
        total past ``max_length``; nothing more is read then.  With a
        ``timeout`` (seconds for the whole download, e.g. from
        ``download_seconds``), ``SlowRetrievalError`` once it has passed.
        """
        deadline = _deadline(timeout)
        parts = []
        with limited(self.fetch(url), url, max_length, deadline) as chunks:
            for chunk in chunks:
                parts.append(chunk)
        return b"".join(parts)

    @contextlib.contextmanager
    def download_file(
        self, url: str, max_length: int, timeout: float | None = None
    ) -> Iterator[IO[bytes]]:
        """A temporary file holding the content of ``url`` (read position
        at its start), with the same limits as ``download_bytes``; the file
        is deleted when the ``with`` block ends."""
        deadline = _deadline(timeout)
        with tempfile.TemporaryFile() as temp_file:
            with limited(self.fetch(url), url, max_length, deadline) as chunks:
                for chunk in chunks:
                    temp_file.write(chunk)
            temp_file.seek(0)
            yield temp_file


_FOREIGN = {
    "DownloadHTTPError": DownloadHTTPError,
    "DownloadLengthMismatchError": DownloadLengthMismatchError,
    "SlowRetrievalError": SlowRetrievalError,
    "DownloadError": DownloadError,
}


def as_download_error(exc: BaseException, url: str) -> DownloadError:
    """tufc's ``DownloadError`` for ``exc`` raised while fetching ``url``.

    Fetchers written for python-tuf raise python-tuf's exception classes;
    they are mapped by class name to ours (keeping an HTTP status code, on
    which the root chain depends).  Anything else is a plain DownloadError.
    """
    if isinstance(exc, DownloadError):
        return exc
    for cls in type(exc).__mro__:
        ours = _FOREIGN.get(cls.__name__)
        if ours is None:
            continue
        if ours is DownloadHTTPError:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and not isinstance(status, bool):
                return DownloadHTTPError(str(exc), status)
            continue
        return ours(str(exc) or f"Failed to download {url}")
    return DownloadError(f"Failed to download {url}: {exc!r}")


def guarded(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    """Re-raise anything but a ``DownloadError`` as one, and close the
    underlying iterator (and so its connection) however iteration ends."""
    try:
        for chunk in chunks:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise DownloadError(
                    f"Fetcher returned {type(chunk).__name__}, not bytes, "
                    f"for {url}"
                )
            yield bytes(chunk) if not isinstance(chunk, bytes) else chunk
    except DownloadError:
        raise
    except Exception as exc:
        raise as_download_error(exc, url) from exc
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def download_seconds(
    max_length: int, min_rate: float, grace_period: float
) -> float:
    """The time a download of at most ``max_length`` bytes may take: the
    grace period plus that length at the minimum rate (bytes/second).

    Derived from the length limit, not from what arrives, so a server
    cannot stretch it by sending slowly.
    """
    return grace_period + max_length / min_rate


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


@contextlib.contextmanager
def limited(
    chunks: Iterator[bytes],
    url: str,
    max_length: int,
    deadline: float | None = None,
):
    """Iterate ``chunks`` but fail the moment the total exceeds
    ``max_length`` (``DownloadLengthMismatchError``) or, when a
    ``deadline`` (a ``time.monotonic()`` value) is given, once it has
    passed (``SlowRetrievalError``); the source is closed on every way out.

    The time is checked as each chunk arrives and at the end: a fetcher
    blocked inside one read is bounded by its own timeouts (the default
    fetcher returns whatever arrived, so it notices within one socket
    timeout).
    """

    def late() -> SlowRetrievalError:
        return SlowRetrievalError(
            f"Download of {url} (at most {max_length} bytes) not complete "
            "by its deadline: the server sends too slowly"
        )

    def limit():
        received = 0
        for chunk in chunks:
            if deadline is not None and time.monotonic() > deadline:
                raise late()
            received += len(chunk)
            if received > max_length:
                raise DownloadLengthMismatchError(
                    f"Downloaded more than the maximum of {max_length} "
                    f"bytes from {url}"
                )
            yield chunk
        if deadline is not None and time.monotonic() > deadline:
            raise late()

    gen = limit()
    try:
        yield gen
    finally:
        gen.close()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


# --- file:// -----------------------------------------------------------------


class FileFetcher(FetcherInterface):
    """Reads ``file://`` URLs from the local file system (a mirror folder).

    A missing file is reported as ``DownloadHTTPError`` with status 404 and
    an unreadable one as 403, so a local mirror behaves like a web server
    (the root chain ends at the first missing version).  A URL path segment
    whose percent-decoding would contain a path separator or be "." or ".."
    is kept encoded, as the literal file name: a role named ``../x`` is the
    file ``..%2Fx.json`` inside the mirror, never a file outside it.
    """

    def __init__(self, chunk_size: int = 400000):
        self.chunk_size = chunk_size

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = file_url_to_path(url)
        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed by _read)
        except FileNotFoundError as exc:
            raise DownloadHTTPError(f"{url}: no such file", 404) from exc
        except PermissionError as exc:
            raise DownloadHTTPError(f"{url}: permission denied", 403) from exc
        except OSError as exc:
            raise DownloadError(f"{url}: {exc}") from exc
        return self._read(handle)

    def _read(self, handle: IO[bytes]) -> Iterator[bytes]:
        with handle:
            while True:
                chunk = handle.read(self.chunk_size)
                if not chunk:
                    return
                yield chunk


def file_url_to_path(url: str) -> str:
    """The local path of a ``file://`` URL (host empty or "localhost")."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "file":
        raise DownloadError(f"Not a file URL: {url}")
    if parts.netloc not in ("", "localhost"):
        raise DownloadError(f"File URL with a remote host: {url}")
    segments = []
    for segment in parts.path.split("/"):
        decoded = urllib.parse.unquote(segment)
        if "/" in decoded or "\\" in decoded or (
            decoded in (".", "..") and decoded != segment
        ) or "\0" in decoded:
            # keep it as its literal encoded name: escape the "%" once more
            segment = segment.replace("%", "%25")
        segments.append(segment)
    return urllib.request.url2pathname("/".join(segments))


# --- HTTP(S) with urllib3 -------------------------------------------------------


class Urllib3Fetcher(FetcherInterface):
    """The default fetcher: urllib3 for HTTP(S), ``FileFetcher`` for files.

    Args:
        socket_timeout: seconds allowed to connect and between two received
            bytes; exceeding it is a ``SlowRetrievalError`` (no retries).
        chunk_size: bytes read per chunk.
        app_user_agent: put before "tufc/<version>" in the User-Agent.

    Responses are read undecoded (``Accept-Encoding: identity``): a
    compressed body cannot expand past the length limits, it just fails the
    hash check.  ``http_proxy``/``https_proxy``/``no_proxy`` are honoured.
    """

    def __init__(
        self,
        socket_timeout: float = 30,
        chunk_size: int = 400000,
        app_user_agent: str | None = None,
    ) -> None:
        import urllib3

        from . import __version__

        self._urllib3 = urllib3
        self.socket_timeout = socket_timeout
        self.chunk_size = chunk_size
        user_agent = f"tufc/{__version__}"
        if app_user_agent is not None:
            user_agent = f"{app_user_agent} {user_agent}"
        self.user_agent = user_agent
        self._headers = {"User-Agent": user_agent, "Accept-Encoding": "identity"}
        self._pools: dict[str | None, object] = {}
        self._files = FileFetcher(chunk_size)

    def _pool_for(self, url: str):
        """A PoolManager, or a ProxyManager when the environment says so."""
        parts = urllib.parse.urlsplit(url)
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy and parts.hostname and urllib.request.proxy_bypass(
            parts.hostname
        ):
            proxy = None
        pool = self._pools.get(proxy)
        if pool is None:
            urllib3 = self._urllib3
            # connections kept per host: Updater.download_targets and
            # get_targetinfos use up to UpdaterConfig.parallel_downloads
            kw = {"headers": self._headers, "maxsize": _POOL_SIZE}
            if proxy:
                pool = urllib3.ProxyManager(proxy, **kw)
            else:
                pool = urllib3.PoolManager(**kw)
            self._pools[proxy] = pool
        return pool

    def _fetch(self, url: str) -> Iterator[bytes]:
        if url.lower().startswith("file:"):
            return self._files._fetch(url)
        urllib3 = self._urllib3
        try:
            response = self._pool_for(url).request(
                "GET",
                url,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(
                    connect=self.socket_timeout, read=self.socket_timeout
                ),
                # no retries: a stalled server would take the timeout
                # several times over; redirects are still followed
                retries=urllib3.Retry(connect=0, read=0, redirect=10, status=0),
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            # urllib3 counts a refused connection as a connect timeout; it
            # is not a slow server, so it is a plain DownloadError here
            if isinstance(
                reason, urllib3.exceptions.TimeoutError
            ) and not isinstance(reason, urllib3.exceptions.NewConnectionError):
                raise SlowRetrievalError(f"Timed out fetching {url}") from exc
            raise DownloadError(f"Failed to fetch {url}: {reason}") from exc

        if response.status >= 400:
            response.close()
            response.release_conn()
            raise DownloadHTTPError(
                f"HTTP error {response.status} for {url}", response.status
            )
        return self._chunks(response, url)

    def _chunks(self, response, url: str) -> Iterator[bytes]:
        urllib3 = self._urllib3
        # read1 (urllib3 2.2 and later) returns what one socket read got, so
        # a deadline around this iterator is checked while a trickle
        # arrives; read(), the fallback, waits for a whole chunk first
        read = getattr(response, "read1", None) or response.read
        complete = False
        try:
            while True:
                chunk = read(self.chunk_size, decode_content=False)
                if not chunk:
                    break
                yield chunk
            complete = True
        except urllib3.exceptions.TimeoutError as exc:
            raise SlowRetrievalError(f"Timed out reading {url}") from exc
        except urllib3.exceptions.HTTPError as exc:
            # e.g. the connection broke or ended before Content-Length
            raise DownloadError(f"Failed reading {url}: {exc}") from exc
        except OSError as exc:
            raise DownloadError(f"Failed reading {url}: {exc}") from exc
        finally:
            if not complete:
                # stopped early (length limit, error): the rest of the body
                # is unwanted, so the connection cannot be reused
                response.close()
            response.release_conn()
