"""A project's simple page: parsed from the verified PEP 503 HTML, then
written again as HTML or PEP 691 JSON with every link pointing at the proxy.

Re-rendering from a parsed model (instead of editing the upstream text)
means nothing of the upstream page reaches the client except what the
model holds, each value escaped again.
"""

from __future__ import annotations

import html
import html.parser
import json
import re
import urllib.parse
from dataclasses import dataclass, field

from ..exceptions import FormatError

HTML_TYPE = "application/vnd.pypi.simple.v1+html"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_NORMALIZE = re.compile(r"[-_.]+")
# Anchor attributes kept as they are (PEP 503, 592, 658, 714); href is rewritten.
_KEPT = ("data-requires-python", "data-yanked", "data-core-metadata",
         "data-dist-info-metadata", "data-gpg-sig")


def normalize(name: str) -> str:
    """PEP 503's normalized project name."""
    return _NORMALIZE.sub("-", name).lower()


@dataclass
class Link:
    """One distribution file the page lists."""

    filename: str
    url: str  # the upstream URL, resolved against the page, no fragment
    hashes: dict  # from the #name=value fragment (0 or 1 entries)
    attrs: dict = field(default_factory=dict)  # the kept attributes

    @property
    def metadata_hashes(self) -> dict | None:
        """The PEP 658/714 metadata file's hashes ({} if it has none given),
        or None if the page lists no metadata file."""
        value = self.attrs.get("data-core-metadata", self.attrs.get("data-dist-info-metadata"))
        if value is None or value.lower() == "false":
            return None
        name, sep, digest = value.partition("=")
        return {name: digest.lower()} if sep and name and digest else {}


class _Anchors(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.anchors: list = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open = {name: (value if value is not None else "") for name, value in attrs}
            self.anchors.append(self._open)

    def handle_endtag(self, tag):
        if tag == "a":
            self._open = None


def parse(data: bytes, page_url: str) -> list:
    """The links of a PEP 503 page fetched from ``page_url``, by file name.

    A page that is not UTF-8, lists an anchor without href, or one file
    name twice is refused (FormatError): a link must name one file.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"simple page is not UTF-8: {exc}") from exc
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    links, seen = [], set()
    for anchor in parser.anchors:
        href = anchor.get("href")
        if not href:
            raise FormatError("simple page has an anchor without href")
        url, _, fragment = urllib.parse.urljoin(page_url, href).partition("#")
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rpartition("/")[2])
        if not filename or filename in (".", "..") or filename.endswith(".metadata"):
            raise FormatError(f"simple page links to no file name: {href!r}")
        if filename in seen:
            raise FormatError(f"simple page lists {filename!r} twice")
        seen.add(filename)
        name, sep, digest = fragment.partition("=")
        hashes = {name: digest.lower()} if sep and name and digest else {}
        attrs = {k: anchor[k] for k in _KEPT if k in anchor}
        links.append(Link(filename, url, hashes, attrs))
    return links


def file_path(project: str, filename: str) -> str:
    """The proxy's URL path of a file (absolute path, percent-encoded)."""
    return f"/files/{urllib.parse.quote(project)}/{urllib.parse.quote(filename)}"


def _href(project: str, link: Link) -> str:
    fragment = "".join(f"#{k}={v}" for k, v in link.hashes.items())
    return file_path(project, link.filename) + fragment


def render_html(project: str, links: list) -> bytes:
    lines = ["<!DOCTYPE html>", "<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">",
             f"<title>Links for {html.escape(project)}</title></head><body>",
             f"<h1>Links for {html.escape(project)}</h1>"]
    for link in links:
        attrs = "".join(f' {k}="{html.escape(v, quote=True)}"' for k, v in link.attrs.items())
        lines.append(f'<a href="{html.escape(_href(project, link), quote=True)}"{attrs}>'
                     f"{html.escape(link.filename)}</a><br/>")
    lines.append("</body></html>\n")
    return "\n".join(lines).encode("utf-8")


def render_json(project: str, links: list) -> bytes:
    files = []
    for link in links:
        entry = {"filename": link.filename, "url": file_path(project, link.filename),
                 "hashes": dict(link.hashes)}
        if "data-requires-python" in link.attrs:
            entry["requires-python"] = link.attrs["data-requires-python"]
        if "data-yanked" in link.attrs:
            entry["yanked"] = link.attrs["data-yanked"] or True
        metadata = link.metadata_hashes
        if metadata is not None:
            entry["core-metadata"] = metadata or True
            entry["dist-info-metadata"] = metadata or True
        if "data-gpg-sig" in link.attrs:
            entry["gpg-sig"] = link.attrs["data-gpg-sig"].lower() == "true"
        files.append(entry)
    page = {"meta": {"api-version": "1.0"}, "name": project, "files": files}
    return json.dumps(page, sort_keys=True).encode("utf-8")


def negotiate(accept: str | None) -> str | None:
    """The content type to answer with for an Accept header (PEP 691):
    JSON or HTML by the client's q-values, HTML when it sends none;
    None if it accepts neither."""
    if not accept:
        return HTML_TYPE
    best, best_q = None, 0.0
    offered = {JSON_TYPE: JSON_TYPE, HTML_TYPE: HTML_TYPE, "text/html": "text/html",
               "application/vnd.pypi.simple.latest+json": JSON_TYPE,
               "application/vnd.pypi.simple.latest+html": HTML_TYPE, "*/*": HTML_TYPE}
    for item in accept.split(","):
        kind, *params = [part.strip() for part in item.split(";")]
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        answer = offered.get(kind.lower())
        if answer is not None and q > best_q:
            best, best_q = answer, q
    return best
