"""A small HTTP server on 127.0.0.1 for end-to-end client tests.

It serves an in-memory dict of files (``repo.files["metadata/1.root.json"] =
b"..."``), records every request, and can misbehave on demand: answer with
an HTTP error, stall, trickle, or send data without end.  Tests drive a real
socket so the client's real fetcher, timeouts and length limits are
exercised, not a mock.

    with HttpRepo({"metadata/timestamp.json": data}) as repo:
        url = repo.url + "metadata/"
        ...
        assert repo.requests == ["/metadata/timestamp.json"]
"""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

CHUNK = 16 * 1024
ENDLESS_CAP = 256 * 1024 * 1024  # a client that never stops still ends here


@dataclass
class Request:
    """One request the server received."""

    path: str  # the decoded URL path, without query
    raw_path: str  # exactly as sent on the request line
    headers: dict = field(default_factory=dict)


class HttpRepo:
    """Threaded HTTP server over a dict of files, with fault injection.

    Keys of ``files`` are URL paths without the leading "/", percent-decoded
    (so a file for the URL ``/metadata/%3F.json`` is ``"metadata/?.json"``).

    Fault injection (keys as for ``files``):
      ``errors[path] = status``     answer with that HTTP status
      ``endless.add(path)``         send the file's bytes then zeros forever
                                    (until the client hangs up)
      ``stall[path] = seconds``     wait that long before the status line
      ``trickle[path] = seconds``   send headers and one byte, then pause
                                    that long before each further byte
      ``pace[path] = (size, seconds)``  the same with ``size`` bytes at a
                                    time (slow but steady: a large file)
      ``headers[path] = {...}``     extra response headers (a Content-Type
                                    replaces the default one)
      ``on_request``                called with each path before it is served
    ``sent[path]`` counts body bytes written for the latest request of path.
    """

    def __init__(self, files: dict[str, bytes] | None = None):
        self.files: dict[str, bytes] = dict(files or {})
        self.errors: dict[str, int] = {}
        self.endless: set[str] = set()
        self.stall: dict[str, float] = {}
        self.trickle: dict[str, float] = {}
        self.pace: dict[str, tuple[int, float]] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.on_request: Callable[[str], None] | None = None
        self.requests: list[Request] = []
        self.sent: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), _handler_for(self)
        )
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, with a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> HttpRepo:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> HttpRepo:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers for tests ------------------------------------------------

    def paths_requested(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def count(self, path: str) -> int:
        """How many times ``path`` (no leading "/") was requested."""
        return self.paths_requested().count("/" + path)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _handler_for(repo: HttpRepo) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            raw = self.path
            path = urllib.parse.unquote(urllib.parse.urlsplit(raw).path)
            repo._record(Request(path, raw, dict(self.headers)))
            key = path[1:]
            if repo.on_request is not None:
                repo.on_request(key)
            try:
                self._serve(key)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up: that is what limits are for

        def _serve(self, key: str) -> None:
            if key in repo.stall and repo._stop.wait(repo.stall[key]):
                return
            status = repo.errors.get(key)
            data = repo.files.get(key)
            if status is None and data is None:
                status = 404
            if status is not None:
                body = f"status {status}\n".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            extra = repo.headers.get(key, {})
            if "Content-Type" not in extra:
                self.send_header("Content-Type", "application/octet-stream")
            if key not in repo.endless:
                self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            repo.sent[key] = 0
            if key in repo.trickle:
                self._trickle(key, data, 1, repo.trickle[key])
            elif key in repo.pace:
                self._trickle(key, data, *repo.pace[key])
            elif key in repo.endless:
                self._endless(key, data)
            else:
                self.wfile.write(data)
                repo.sent[key] = len(data)

        def _trickle(self, key: str, data: bytes, size: int, pause: float) -> None:
            for i in range(0, len(data), size):
                if i and repo._stop.wait(pause):
                    return
                self.wfile.write(data[i : i + size])
                self.wfile.flush()
                repo.sent[key] += len(data[i : i + size])

        def _endless(self, key: str, data: bytes) -> None:
            self.wfile.write(data)
            repo.sent[key] = len(data)
            filler = b"\0" * CHUNK
            while repo.sent[key] < ENDLESS_CAP and not repo._stop.is_set():
                self.wfile.write(filler)
                repo.sent[key] += CHUNK

    return Handler
