"""An HTTP server for the benchmarks: files of one folder, each response
delayed by a fixed latency, run in a process of its own (so serving does
not share the clients' GIL).

    python bench/_latency_server.py FOLDER SECONDS   # prints the port, serves until killed

HTTP/1.1 with keep-alive, a thread per connection; the delay is slept
before each response, as a distant server's round trip would add it.
"""

from __future__ import annotations

import http.server
import os
import sys
import time
from urllib.parse import unquote


def serve(folder: str, latency: float) -> None:
    root = os.path.realpath(folder)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave at once

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            time.sleep(latency)
            path = os.path.realpath(os.path.join(root, unquote(self.path.split("?")[0]).lstrip("/")))
            try:
                if not path.startswith(root + os.sep):
                    raise FileNotFoundError(path)
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], float(sys.argv[2]))
