"""tufc proxy against a plain local index (issue 10).

Thirty hand-written wheels (``p00`` requires ``p01`` ... ``p29``) are
published twice from the same bytes: as a plain PEP 503 folder served by
``python -m http.server``, and signed into a TUF repository (tufc's engine,
16 bins) served by http.server's handler with a backlog of 256 (below), with ``tufc proxy``
(in this process, on 127.0.0.1) in front of it.  Each figure alternates
the two indexes, best and median of N after a warm-up:

* install: ``uv pip install p00`` (and ``pip install``) into a fresh venv,
  with the installer's own cache empty every time;
  warm = the proxy running, metadata refreshed and files cached;
  cold = a new proxy: fresh metadata folder (trust from root.json, first
  refresh) and empty cache, so every page and file comes from upstream.
* page: one project page over a kept-alive connection, warm (ms each):
  again (served from the snapshot's parsed pages) and the first in a new
  snapshot (metadata and files cached on disk).

uv opens many connections at once, and ``python -m http.server`` listens
with a backlog of 5: refused SYNs are retried after a second, which makes
that baseline slow for uv.  So uv is also compared with the same files
from http.server's handler with a backlog of 256 and keep-alive
("backlog 256"), the fair baseline for it.

    python bench/proxy.py [--repeats N] [--no-pip]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))  # tests.proxy_repo
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from tests.proxy_repo import ProxyRepo  # noqa: E402

from tufc.proxy import Index, ProxyServer  # noqa: E402

N_PACKAGES = 30


def build(folder: str) -> tuple[str, str]:
    """The plain index folder and the TUF upstream folder."""
    repo = ProxyRepo(os.path.join(folder, "repo"))
    plain = os.path.join(folder, "plain")
    for i in range(N_PACKAGES):
        name = f"p{i:02d}"
        requires = [f"p{j:02d}" for j in range(1, N_PACKAGES)] if i == 0 else []
        repo.add_project(name, requires=requires, body="x = 1\n" * 200)
    repo.publish()
    for path, data in repo.targets.items():
        _write(os.path.join(plain, path), data)
    upstream = os.path.join(folder, "upstream")
    for path, data in repo.files().items():
        _write(os.path.join(upstream, path), data)
    return plain, upstream, repo.root()


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# http.server's own server with the proxy's listen backlog (256, not 5)
# and HTTP/1.1: the same files without the SYN retries uv's parallel
# connections cause against ``python -m http.server`` (a fairer baseline).
_BACKLOG_SERVER = """
import functools, http.server, sys
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *args):
        pass
Server(("127.0.0.1", int(sys.argv[2])), functools.partial(Handler, directory=sys.argv[1])).serve_forever()
"""


class HttpServer:
    """``python -m http.server`` over a folder, on a free port (``backlog``:
    the variant above)."""

    def __init__(self, folder: str, backlog: bool = False):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        command = ([sys.executable, "-c", _BACKLOG_SERVER, folder, str(self.port)] if backlog else
                   [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", folder, str(self.port)])
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/"
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=1).request("GET", "/")
                return
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def new_proxy(work: str, upstream_url: str, root: bytes) -> ProxyServer:
    metadata = tempfile.mkdtemp(dir=work)
    with open(os.path.join(metadata, "root.json"), "wb") as f:
        f.write(root)
    index = Index(metadata, upstream_url + "metadata/", upstream_url + "targets/",
                  tempfile.mkdtemp(dir=work))
    server = ProxyServer(index)
    server.start()
    return server


def install(tool: str, index_url: str, work: str) -> float:
    venv = tempfile.mkdtemp(dir=work)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               UV_NO_CONFIG="1", UV_CACHE_DIR=tempfile.mkdtemp(dir=work))
    if tool == "uv":
        command = [shutil.which("uv"), "pip", "install", "--python", python, "--default-index", index_url, "p00"]
    else:
        command = [sys.executable, "-m", "pip", "--python", python, "install", "--index-url", index_url, "p00"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    shutil.rmtree(venv)
    shutil.rmtree(env["UV_CACHE_DIR"])
    return seconds


def page_ms(base_url: str, repeats: int, before=None) -> float:
    """Best mean time per page over one kept-alive connection, in ms;
    ``before`` (untimed) runs before each pass: a refresh makes every page
    the first of its snapshot (target lookup, cached copy re-hashed,
    parsed), with the disk cache warm."""
    host, port = base_url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    names = [f"/simple/p{i:02d}/" for i in range(N_PACKAGES)]
    best = None
    for _ in range(repeats + 1):
        if before is not None:
            before()
        start = time.perf_counter()
        for name in names:
            conn.request("GET", name, headers={"Accept": "text/html"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (name, response.status)
        mean = (time.perf_counter() - start) / len(names) * 1000
        best = mean if best is None else min(best, mean)
    conn.close()
    return best


def row(label: str, plain: list, proxy: list) -> None:
    bp, bx = min(plain), min(proxy)
    mp, mx = statistics.median(plain), statistics.median(proxy)
    print(f"{label:<28} plain {bp:7.3f} s (median {mp:7.3f})   proxy {bx:7.3f} s "
          f"(median {mx:7.3f})   overhead {100 * (mx / mp - 1):+6.1f}% (medians)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-pip", action="store_true", help="uv only")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tufc-bench-proxy-")
    try:
        plain_dir, upstream_dir, root = build(work)
        plain, upstream = HttpServer(plain_dir), HttpServer(upstream_dir, backlog=True)
        plain256 = HttpServer(plain_dir, backlog=True)
        warm = new_proxy(work, upstream.url, root)
        tools = ["uv"] + ([] if args.no_pip else ["pip"])
        print(f"{N_PACKAGES} packages; best and median of {args.repeats}, alternating; "
              f"uv {subprocess.run(['uv', '--version'], capture_output=True, text=True).stdout.strip()}")
        for tool in tools:
            install(tool, warm.url + "simple/", work)  # warm-up: fills the proxy's cache
            times = {"plain": [], "plain256": [], "warm": [], "cold": []}
            for _ in range(args.repeats):
                times["plain"].append(install(tool, plain.url + "simple/", work))
                times["plain256"].append(install(tool, plain256.url + "simple/", work))
                times["warm"].append(install(tool, warm.url + "simple/", work))
                cold = new_proxy(work, upstream.url, root)
                start = time.perf_counter()
                cold.index.refresh()  # counted: the first refresh is part of a cold start
                refresh = time.perf_counter() - start
                times["cold"].append(refresh + install(tool, cold.url + "simple/", work))
                cold.shutdown()
                cold.server_close()
            row(f"{tool} install, warm proxy", times["plain"], times["warm"])
            row(f"{tool} install, cold proxy", times["plain"], times["cold"])
            row(f"{tool}, warm vs backlog 256", times["plain256"], times["warm"])
            row(f"{tool}, cold vs backlog 256", times["plain256"], times["cold"])
        plain_page = page_ms(plain.url, args.repeats)
        proxy_page = page_ms(warm.url, args.repeats)
        print(f"{'page, warm (keep-alive)':<28} plain {plain_page:7.3f} ms   proxy {proxy_page:7.3f} ms"
              f"   overhead {proxy_page - plain_page:+.3f} ms per page")
        verify_page = page_ms(warm.url, args.repeats, before=warm.index.refresh)
        print(f"{'page, first in a snapshot':<28} plain {plain_page:7.3f} ms   proxy {verify_page:7.3f} ms"
              f"   overhead {verify_page - plain_page:+.3f} ms per page (lookup, re-hash, parse)")
        warm.shutdown()
        plain.stop()
        plain256.stop()
        upstream.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
