"""The HTTP side of ``tufc proxy``: the standard library's
``ThreadingHTTPServer``, one thread per connection.

Why this server: the Updater is blocking code, so a thread per connection
is its natural host (an asyncio server would hand every request to a
thread pool anyway); HTTP/1.1 keep-alive works with it as long as every
response has a Content-Length, which verified files always have (they are
complete before the first byte goes out); files are streamed from disk in
chunks; and it adds no dependency.  The listen backlog is raised so that
uv's parallel downloads are not refused.

Routes: ``/simple/<project>/`` (PEP 503 HTML or PEP 691 JSON by the
Accept header) and ``/files/<project>/<file>`` (a file or its
``.metadata``).  Range requests are ignored (a full 200 answer); nothing
is ever redirected to the upstream.

Refusals: a name TUF does not list is a 404; anything that failed
verification is a 409 Conflict (:data:`REFUSED`: what the upstream serves
conflicts with what TUF signed) with the one-line reason as its status
text and body.  The status is chosen for what pip and uv do with it:

- not a 5xx: pip retries 500, 502, 503, 520 and 527 and then reports only
  "too many 502 error responses"; uv retries every 5xx (and 408, 429);
- not a 401 or 403: uv takes either from an index page as "not found in
  the package registry" with a hint to check the credentials, and drops
  the reason (even with ``-v``);
- not a 404, which both take as "no such project or file".

Both show a 409's reason: uv always, pip for files (for pages with
``-vv``), and neither retries it.
"""

from __future__ import annotations

import http.server
import logging
import sys
import threading
import urllib.parse

from ..exceptions import NotListedError, TufcError
from . import pages
from .index import Index

logger = logging.getLogger(__name__)

#: The status of a failed verification (see the module docstring).
REFUSED = 409


class ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, index: Index, port: int = 0, host: str = "127.0.0.1"):
        self.index = index
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def handle_error(self, request, client_address) -> None:
        """A client that went away (reset, broken pipe) is logged, not
        printed as a traceback; anything else is a bug and keeps one."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("%s went away: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)

    def start(self) -> threading.Thread:
        """Serve in a background thread (``shutdown()`` stops it)."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                  name="tufc-proxy", daemon=True)
        thread.start()
        return thread


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without TCP_NODELAY the
    # body of a small page waits for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: ProxyServer

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):  # noqa: N802 (http.server's name)
        self._answer(send_body=True)

    def do_HEAD(self):  # noqa: N802
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        parts = path.split("/")
        try:
            if len(parts) in (3, 4) and parts[1] == "simple" and parts[2] and parts[3:] in ([], [""]):
                self._page(parts[2], send_body)
            elif len(parts) == 4 and parts[1] == "files" and parts[2] and parts[3]:
                self._file(parts[2], parts[3], send_body)
            else:
                self._fail(404, "tufc proxy: not a project page or file (the proxy lists no projects)")
        except NotListedError as exc:
            self._fail(404, f"tufc proxy: {exc}")
        except TufcError as exc:
            from ..cli._common import explain

            logger.warning("%s: %s", path, explain(exc))
            self._fail(REFUSED, f"tufc proxy: {explain(exc)}")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _page(self, name: str, send_body: bool) -> None:
        kind = pages.negotiate(self.headers.get("Accept"))
        if kind is None:
            self._fail(406, "tufc proxy: only PEP 503 HTML and PEP 691 JSON pages")
            return
        project = pages.normalize(name)
        links = self.server.index.links(project)
        render = pages.render_json if kind == pages.JSON_TYPE else pages.render_html
        body = render(project, links)
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Vary", "Accept")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _file(self, name: str, filename: str, send_body: bool) -> None:
        verified = self.server.index.file(pages.normalize(name), filename)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(verified.length))
            self.end_headers()
            if send_body:
                for chunk in verified.chunks():
                    self.wfile.write(chunk)
        finally:
            verified.close()

    def _fail(self, status: int, reason: str) -> None:
        """The one-line reason in the status line (pip shows it) and body."""
        line = " ".join(reason.split()).encode("ascii", "replace").decode("ascii")[:400]
        body = (line + "\n").encode("ascii")
        self.send_response(status, line)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
