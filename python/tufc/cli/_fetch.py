"""The command line's fetcher: the default one, remembering what it fetched
last so that an error can name the URL and say what the server sent."""

from __future__ import annotations

import re
import urllib.parse

from .. import exceptions
from ..fetcher import Urllib3Fetcher

# N.ROLE.json or HASH.NAME: the names only consistent snapshots publish
_VERSIONED = re.compile(r"([0-9]+|[0-9a-f]{64}|[0-9a-f]{128})\.[^/]+\Z")


class CliFetcher(Urllib3Fetcher):
    """``Urllib3Fetcher`` that reports progress (optionally) and remembers
    the last URL, its Content-Type and its first bytes."""

    def __init__(self, socket_timeout: float, progress=None):
        super().__init__(socket_timeout=socket_timeout)
        self.progress = progress
        self.url: str | None = None
        self.content_type: str | None = None
        self.head = b""

    def _fetch(self, url: str):
        self.url, self.content_type, self.head = url, None, b""
        return super()._fetch(url)

    def _chunks(self, response, url: str):
        # "" for an HTTP response without one; None for file:// URLs
        self.content_type = response.headers.get("Content-Type", "")
        for chunk in super()._chunks(response, url):
            if len(self.head) < 64:
                self.head += chunk[:64]
            if self.progress is not None:
                self.progress.advance(len(chunk))
            yield chunk

    def note(self, exc: BaseException, consistent: bool = False) -> str:
        """What to add to the error line for ``exc``: the URL it is about,
        that the response is not JSON, or why a file may be missing
        (``consistent``: the trusted root says consistent snapshots)."""
        url = self.url
        if url is None:
            return ""
        if isinstance(exc, exceptions.DownloadHTTPError) and exc.status_code == 404:
            base, _, name = url.rpartition("/")
            if name.endswith(".root.json"):
                return f"; is {base}/ the repository's metadata URL?"
            if consistent and _VERSIONED.match(name):
                return (
                    f"; {url} is missing: the repository publishes consistent "
                    "snapshots (files named VERSION.ROLE.json and HASH.NAME), "
                    "and this copy lacks them -- serve the repository as "
                    "published, not a plain checkout of its files"
                )
            return ""
        if isinstance(exc, exceptions.DownloadError):
            return "" if url in str(exc) else f" ({url})"
        if isinstance(exc, exceptions.DeserializationError) and \
                self.content_type is not None and not _json_like(self.head):
            kind = self.content_type or "none"
            return (
                f"; {url} is not JSON (Content-Type: {kind}): a web page "
                "instead of metadata? (a captive portal, or a wrong URL)"
            )
        if isinstance(exc, (exceptions.DeserializationError,
                            exceptions.LengthOrHashMismatchError)) \
                or _names_role_of(str(exc), url):
            return f" ({url})"
        return ""


def _json_like(head: bytes) -> bool:
    return head.lstrip()[:1] in (b"{", b"[")


def _names_role_of(message: str, url: str) -> bool:
    """Whether ``message`` is about the role ``url`` serves."""
    name = urllib.parse.unquote(url.rpartition("/")[2])
    name = re.sub(r"\A[0-9]+\.", "", name)
    role = name[: -len(".json")] if name.endswith(".json") else name
    return bool(role) and re.search(
        rf"(?<![\w.-]){re.escape(role)}(?![\w-])", message
    ) is not None
