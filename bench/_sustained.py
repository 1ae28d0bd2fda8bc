"""The sustained figure of bench/repository.py: many writers, one publisher.

8 writer processes each enqueue their share of 10,000 uploads, one
``add_targets`` of one target per transaction, as fast as they can, while
one publisher process runs ``publish_all`` in a loop (sleeping 5 ms when
the queue is empty).  Reported: the time from the last enqueue (the latest
of all writers) to the moment the publish that released the last pending
change returned, and the publisher's batch sizes.

The queue is PostgreSQL when ``tufc.repository.pgstore`` exists and a
private server can be started (tests/pg_server.py), or ``--store`` names
one; else the repository's SQLite queue (and the output says so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _args(extra: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", default=None)
    parser.add_argument("--total", type=int, default=0)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--serial", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0)
    return parser.parse_args(extra)


def _open(folder: str, store):
    from tufc.repository import Repository

    return Repository(folder, store=store) if store else Repository(folder)


def writer(args, extra: argparse.Namespace) -> dict:
    import repository as bench

    repo = _open(args.folder, extra.store)
    targets = bench.new_targets(extra.serial, args.count)
    delay = extra.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    first = time.time()
    latencies = []
    for t in targets:
        start = time.perf_counter()
        repo.add_targets([t])
        latencies.append(time.perf_counter() - start)
    last = time.time()
    repo.close()
    return {"first": first, "last": last, "count": len(targets),
            "enqueue_median": statistics.median(latencies), "enqueue_max": max(latencies)}


def publisher(args, extra: argparse.Namespace) -> dict:
    repo = _open(args.folder, extra.store)
    repo.publish_all()  # nothing pending: loads the state, the signer
    ready = time.time()
    published = 0
    batches = []  # (end time, changes, bins, seconds)
    deadline = time.monotonic() + extra.timeout
    idle = 0
    while published < extra.total and time.monotonic() < deadline:
        results = repo.publish_all()
        if not results:
            idle += 1
            time.sleep(0.005)
            continue
        for r in results:
            published += r.changes
            batches.append((time.time(), r.changes, r.bins, r.seconds))
    repo.close()
    return {"ready": ready, "published": published, "batches": batches, "idle_polls": idle}


def child(args, extra_argv: list) -> dict:
    sys.path.insert(0, str(HERE))
    extra = _args(extra_argv)
    extra.store = extra.store or args.store
    return writer(args, extra) if args.child == "writer" else publisher(args, extra)


def _postgres(scratch: Path):
    """(server, None) with a private PostgreSQL server started
    (tests/pg_server.py's, but with fsync on, as a registry runs it), or
    (None, why not)."""
    try:
        import tufc.repository.pgstore  # noqa: F401
    except ImportError as exc:
        return None, f"tufc.repository.pgstore is not there ({exc})"
    sys.path.insert(0, str(HERE.parent))
    try:
        from tests import pg_server
    except ImportError as exc:
        return None, f"tests/pg_server.py is not there ({exc})"
    try:
        server = pg_server.PgServer().init()
        server._run("pg_ctl", "-D", server.data, "-o", f"-k {server.root} -c listen_addresses=''",
                    "-l", server.log, "-w", "-t", "60", "start")
        server.running = True
    except Exception as exc:  # noqa: BLE001 - reported
        return None, f"no PostgreSQL server could be started: {exc}"
    return server, None


def report(args, base: Path, scratch: Path, targets_list: list, writers: int = 8,
           total: int = 10_000) -> None:
    import repository as bench

    folder = scratch / "sustained"
    bench.copy_repo(base, folder)
    store, kind, note = args.store, "sqlite", ""
    server = None
    if store is None:
        server, reason = _postgres(scratch)
        if server is not None:
            store, kind = server.url(), "postgresql (a private server, fsync on)"
        else:
            note = f"PostgreSQL not used: {reason}"
    elif store.startswith("postgres"):
        kind = "postgresql"
    try:
        common = ["--folder", str(folder)] + (["--store", store] if store else [])
        cmd = [sys.executable, str(HERE / "repository.py"), "--child"]
        pub = subprocess.Popen(cmd + ["publisher"] + common + ["--total", str(total)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.0 if not args.quick else 2.0)  # the publisher loads the state first
        start_at = time.time() + 1.0
        share = total // writers
        procs = []
        for w in range(writers):
            count = share if w < writers - 1 else total - share * (writers - 1)
            procs.append(subprocess.Popen(
                cmd + ["writer"] + common + ["--count", str(count), "--start-at", str(start_at),
                                             "--serial", str(args.targets + 10_000_000 + w * share)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = []
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"writer failed: {(err.strip().splitlines() or ['?'])[-1]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        out, err = pub.communicate(timeout=900)
        if pub.returncode != 0:
            raise RuntimeError(f"publisher failed: {(err.strip().splitlines() or ['?'])[-1]}")
        published = json.loads(out.strip().splitlines()[-1])
    finally:
        if server is not None:
            server.cleanup()
    first = min(r["first"] for r in results)
    last = max(r["last"] for r in results)
    batches = published["batches"]
    done = batches[-1][0] if batches else float("nan")
    sizes = [b[1] for b in batches]
    lag = done - last
    print(f"sustained: {total:,} uploads by {writers} writer processes (one add_targets of one "
          f"target each, its own transaction), one publisher running publish_all in a loop; "
          f"queue: {kind}" + (f" ({note})" if note else ""))
    print(f"  enqueue: {total:,} in {last - first:.2f} s ({total / (last - first):.0f}/s); "
          f"per add_targets median {statistics.median(r['enqueue_median'] for r in results) * 1e3:.2f}"
          f" ms, max {max(r['enqueue_max'] for r in results) * 1e3:.0f} ms")
    print(f"  published: {published['published']:,} changes in {len(batches)} publishes; "
          f"last published {lag:.2f} s after the last enqueue "
          f"({done - first:.2f} s after the first)")
    if sizes:
        print(f"  batch sizes: min {min(sizes)}, median {statistics.median(sizes):.0f}, "
              f"max {max(sizes)}; publish time median "
              f"{statistics.median(b[3] for b in batches) * 1e3:.0f} ms, max "
              f"{max(b[3] for b in batches) * 1e3:.0f} ms")
        print("  batches in order: " + " ".join(str(s) for s in sizes[:60])
              + (" ..." if len(sizes) > 60 else ""))
    print()
    targets_list.append((f"sustained ({kind}): all published <= 10 s after the last enqueue "
                         f"({lag:.2f} s)", lag <= 10 and published["published"] == total))
