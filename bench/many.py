"""Benchmark of many lookups over a slow network: tufc's
``Updater.get_targetinfos`` against python-tuf's sequential loop.

    python bench/many.py                   # 200 lookups, 20 ms per request
    python bench/many.py --lookups 50 --latency 0.05 --repeat 1

The PEP 458 repository of pypi_repo.py is served over HTTP on 127.0.0.1 by
a server in its own process that sleeps ``--latency`` seconds before each
response (bench/_latency_server.py), as a distant server's round trip
would.  Each client uses its library's default fetcher (Urllib3Fetcher).
Every repetition starts from an empty metadata_dir and an untimed
refresh(); then the lookups, of paths in ``--lookups`` different bins, are
timed: python-tuf's ``get_targetinfo`` in a loop (the reference), tufc's
in a loop, and tufc's ``get_targetinfos`` of all paths at once (its
default ``parallel_downloads``).  Every answer is checked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pypi_repo  # noqa: E402
from _timing import format_table  # noqa: E402
from updater import check_info, tufc_note  # noqa: E402


def start_server(folder: Path, latency: float):
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_latency_server.py"), str(folder), str(latency)],
        stdout=subprocess.PIPE, text=True,
    )
    port = int(server.stdout.readline())
    return server, f"http://127.0.0.1:{port}/"


def make_updater(name: str, metadata_dir: str, url: str, root: bytes):
    if name == "python-tuf":
        from tuf.ngclient import Updater
    else:
        from tufc.updater import Updater
    return Updater(metadata_dir, url + "metadata/", bootstrap=root)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=pypi_repo.DEFAULT_TARGETS)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.020, help="seconds per request")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tmpdir", help="parent of the metadata_dirs (default: TMPDIR)")
    args = parser.parse_args(argv)

    repo = pypi_repo.ensure(args.targets)
    manifest = json.loads((repo / "manifest.json").read_text())
    seed = manifest["seed"]
    root = (repo / "metadata" / "1.root.json").read_bytes()
    candidates = [p for p in manifest["lookup_paths"] if p]
    step = max(1, len(candidates) // args.lookups)
    paths = candidates[::step][: args.lookups]
    print(f"tufc: {tufc_note()}")
    print(f"{len(paths)} lookups, {args.latency * 1e3:.0f} ms per request, "
          f"best of {args.repeat}; metadata_dir under {args.tmpdir or tempfile.gettempdir()}")

    runs = {
        "python-tuf, get_targetinfo loop": ("python-tuf", False),
        "tufc, get_targetinfo loop": ("tufc", False),
        "tufc, get_targetinfos": ("tufc", True),
    }
    times = {label: [] for label in runs}
    server, url = start_server(repo, args.latency)
    scratch = tempfile.mkdtemp(prefix="tufc-bench-many-", dir=args.tmpdir)
    try:
        for rep in range(args.repeat):
            for n, (label, (name, batch)) in enumerate(runs.items()):
                folder = os.path.join(scratch, f"r{rep}-{n}")
                updater = make_updater(name, folder, url, root)
                updater.refresh()
                start = time.perf_counter()
                if batch:
                    infos = updater.get_targetinfos(paths)
                else:
                    infos = [updater.get_targetinfo(p) for p in paths]
                times[label].append(time.perf_counter() - start)
                for path, info in zip(paths, infos):
                    check_info(info, path, seed)
                shutil.rmtree(folder)
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(scratch, ignore_errors=True)

    reference = min(times["python-tuf, get_targetinfo loop"])
    rows = []
    for label, seconds in times.items():
        rows.append([label, f"{min(seconds) * 1e3:.0f}", f"{statistics.median(seconds) * 1e3:.0f}",
                     f"{reference / min(seconds):.1f}x"])
    print(format_table(["lookups", "best ms", "median ms", "python-tuf loop / this"], rows))
    ratio = reference / min(times["tufc, get_targetinfos"])
    print(f"target: get_targetinfos >= 10x python-tuf's loop: {'met' if ratio >= 10 else 'MISSED'} ({ratio:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
