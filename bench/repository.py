"""Benchmark of the repository engine (tufc.repository) against python-tuf.

    python bench/repository.py                    # every part, full PEP 458 shape
    python bench/repository.py --quick            # fewer repetitions
    python bench/repository.py --only import      # parts: import, publish, sustained
    python bench/repository.py --tmpdir /dev/shm  # scratch repositories on tmpfs
    python bench/repository.py --profile publish --count 1000   # cProfile instead
    python bench/repository.py --profile import

The PEP 458 shape: 2,273,539 targets (bench/_shape.py's paths and
blake2b-256 + sha256 hashes) in 16,384 succinct hash bins.  The targets
are written once as a CSV file into bench/.cache/ and reused; the
repository they are imported into (the base of the publish figures) too.

Figures:
  import     Repository.import_targets of the CSV into a new repository, in
             a fresh process: wall time, peak RSS of the process (VmHWM) and
             of its worker processes (RUSAGE_CHILDREN).  python-tuf has no
             bulk import: its figure is an estimate, a sample of bins built
             and signed with tuf.api.metadata + CryptoSigner, extrapolated.
  publish    1, 100, 1,000, 5,000 new targets into the imported repository:
             tufc add_targets + publish vs python-tuf reading each affected
             bin, adding the TargetFiles, bumping, signing (CryptoSigner,
             ed25519), serializing (compact JSON) and writing it, then a new
             snapshot and timestamp; each on its own copy of the same files.
             First publish of a fresh process, and best of N successive
             publishes in one process (implementations alternating).
  sustained  8 writer processes enqueue 10,000 uploads (one add_targets
             each, its own transaction) while one publisher process runs
             publish_all in a loop: time from the last enqueue to all
             published, and the publisher's batch sizes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _shape  # noqa: E402
from _timing import format_table  # noqa: E402

CACHE = HERE / ".cache"
FORMAT = 1  # bump when the cached CSV or repository layout changes
DEFAULT_TARGETS = 2_273_539
BINS = 2 ** _shape.BIT_LENGTH
PUBLISH_COUNTS = (1, 100, 1000, 5000)
IMPLS = ("python-tuf", "tufc")
# python-tuf figures measured on this machine when the engine was planned
# (the same work, an earlier script): printed for comparison only
PLANNED_REFERENCE = {1: 0.064, 100: 0.206, 1000: 1.32, 5000: 5.8}


# --- the data ------------------------------------------------------------------


def csv_path(targets: int, seed: int = 0) -> Path:
    return CACHE / f"targets-v{FORMAT}-t{targets}-s{seed}.csv"


def write_csv(path: Path, first: int, count: int, seed: int = 0) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["path", "length", "blake2b-256", "sha256"])
        for serial in range(first, first + count):
            entry = _shape.target_entry(serial, seed)
            hashes = entry["hashes"]
            out.writerow([_shape.target_path(serial, seed), entry["length"],
                          hashes["blake2b-256"], hashes["sha256"]])


def ensure_csv(targets: int, seed: int = 0, log=print) -> Path:
    path = csv_path(targets, seed)
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        log(f"generating {path} (once; reused afterwards)")
        started = time.monotonic()
        partial = path.with_name(path.name + ".partial")
        write_csv(partial, 0, targets, seed)
        os.replace(partial, path)
        log(f"  {path.stat().st_size / 1e6:.0f} MB in {time.monotonic() - started:.0f} s")
    return path


def base_dir(targets: int, seed: int = 0) -> Path:
    return CACHE / f"engine-v{FORMAT}-t{targets}-b{_shape.BIT_LENGTH}-s{seed}"


def ensure_base(targets: int, seed: int = 0, log=print) -> Path:
    """The imported repository every publish figure starts from."""
    out = base_dir(targets, seed)
    if (out / "imported.json").exists():
        return out
    source = ensure_csv(targets, seed, log)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log(f"importing into {out} (once; reused afterwards)")
    result = run_child(["import", "--folder", str(partial), "--csv", str(source), "--keep"])
    (partial / "imported.json").write_text(json.dumps(dict(result, targets=targets, seed=seed)))
    os.replace(partial, out)
    return out


def new_targets(first: int, count: int, seed: int = 0) -> list:
    """``count`` targets (dicts) with serials from ``first``: new paths,
    none of them in the imported repository."""
    out = []
    for serial in range(first, first + count):
        entry = _shape.target_entry(serial, seed)
        out.append({"path": _shape.target_path(serial, seed), "length": entry["length"],
                    "hashes": entry["hashes"]})
    return out


# --- processes -----------------------------------------------------------------


def peak_rss_kb() -> int:
    """This process's own peak RSS (VmHWM: ru_maxrss survives exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_child(args: list, nice: bool = False) -> dict:
    """Run this script as ``--child ...`` in a fresh process; its last line
    of output is a JSON object."""
    cmd = [sys.executable, __file__, "--child"] + args
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed: "
                           + (proc.stderr.strip().splitlines() or ["?"])[-1][:200])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall"] = wall
    return result


def copy_repo(source: Path, dest: Path) -> None:
    """A private copy of a repository folder.  On the same filesystem the
    metadata files are hard links (neither implementation rewrites a file
    in place: new versions get new names, and both replace timestamp.json
    by a new file); the queue, the configuration and timestamp.json are
    copied."""
    dest.mkdir(parents=True)
    for name in os.listdir(source):
        if name in ("metadata", "imported.json") or name.endswith("-lock"):
            continue
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    meta_src, meta_dst = source / "metadata", dest / "metadata"
    meta_dst.mkdir()
    same_fs = os.stat(source).st_dev == os.stat(dest).st_dev
    for name in os.listdir(meta_src):
        if same_fs and name != "timestamp.json":
            os.link(meta_src / name, meta_dst / name)
        else:
            shutil.copy2(meta_src / name, meta_dst / name)


def read_all(folder: Path) -> int:
    """Read every file under ``folder`` once (page cache warm for both)."""
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                total += len(f.read())
    return total


# --- the two publishers -----------------------------------------------------------


class TufcPublisher:
    name = "tufc"

    def __init__(self, folder: Path):
        from tufc.repository import Repository

        self.repo = Repository(str(folder))

    def run(self, targets: list) -> tuple:
        """(queue + publish seconds, publish seconds)."""
        start = time.perf_counter()
        self.repo.add_targets(targets)
        queued = time.perf_counter()
        result = self.repo.publish()
        end = time.perf_counter()
        assert result.changes == len(targets), result
        return end - start, end - queued

    def check(self, targets: list) -> None:
        for t in (targets[0], targets[-1]):
            entry = self.repo.get_target(t["path"])
            if entry is None or entry["hashes"] != t["hashes"] or entry["length"] != t["length"]:
                raise AssertionError(f"tufc: {t['path']} not published")

    def close(self) -> None:
        self.repo.close()


def online_crypto_signer(folder: Path):
    """securesystemslib's CryptoSigner over the repository's online key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.signer import CryptoSigner, SSlibKey

    config = json.loads((folder / "repository.json").read_text())
    entry = config["signers"]["online"][0]
    uri = entry["uri"] if isinstance(entry, dict) else entry
    key_file = folder / uri[len("file:"):]
    key = json.loads(key_file.read_text())
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key["seed"]))
    public = SSlibKey(key["keyid"], "ed25519", "ed25519", {"public": key["public"]})
    return CryptoSigner(private, public)


class PythonTufPublisher:
    """What a publisher built on python-tuf's Metadata API does for the same
    change: read each affected bin, add the TargetFiles, bump the version
    and expiry, sign (CryptoSigner, ed25519), serialize (compact JSON),
    write the new version; then read the current snapshot, update the bins'
    versions, bump, sign, write, and the same for the timestamp (with the
    snapshot's length and sha256, as the engine's).  Files are written with
    a plain write (no fsync: to_file would fsync each one, which would
    only make python-tuf slower on a disk)."""

    name = "python-tuf"

    def __init__(self, folder: Path):
        from securesystemslib.hash import digest  # noqa: F401 - imported before timing
        from tuf.api.metadata import Metadata, MetaFile, TargetFile  # noqa: F401
        from tuf.api.serialization.json import JSONSerializer

        self.folder = folder
        self.metadata = folder / "metadata"
        self.signer = online_crypto_signer(folder)
        self.serializer = JSONSerializer(compact=True)
        config = json.loads((folder / "repository.json").read_text())
        self.bins = config["layout"]["bins"]
        self.prefix = "bin" if config["layout"]["kind"] == "pep458" else "bins"

    def _write(self, name: str, md) -> bytes:
        data = md.to_bytes(self.serializer)
        with open(self.metadata / name, "wb") as f:
            f.write(data)
        return data

    def run(self, targets: list) -> tuple:
        import hashlib

        from tuf.api.metadata import Metadata, MetaFile, SuccinctRoles, TargetFile

        start = time.perf_counter()
        now = datetime.now(timezone.utc).replace(microsecond=0)
        timestamp = Metadata.from_file(str(self.metadata / "timestamp.json"))
        snapshot_version = timestamp.signed.snapshot_meta.version
        snapshot = Metadata.from_file(str(self.metadata / f"{snapshot_version}.snapshot.json"))
        succinct = SuccinctRoles([], 1, self.bins.bit_length() - 1, self.prefix)
        by_bin: dict = {}
        for t in targets:
            by_bin.setdefault(succinct.get_role_for_target(t["path"]), []).append(
                TargetFile(t["length"], t["hashes"], t["path"]))
        for role, files in by_bin.items():
            meta = snapshot.signed.meta[f"{role}.json"]
            md = Metadata.from_file(str(self.metadata / f"{meta.version}.{role}.json"))
            for target_file in files:
                md.signed.targets[target_file.path] = target_file
            md.signed.version += 1
            md.signed.expires = now + timedelta(days=7)
            md.signatures.clear()
            md.sign(self.signer)
            self._write(f"{md.signed.version}.{role}.json", md)
            meta.version = md.signed.version
        snapshot.signed.version += 1
        snapshot.signed.expires = now + timedelta(days=1)
        snapshot.signatures.clear()
        snapshot.sign(self.signer)
        data = self._write(f"{snapshot.signed.version}.snapshot.json", snapshot)
        timestamp.signed.snapshot_meta = MetaFile(
            snapshot.signed.version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})
        timestamp.signed.version += 1
        timestamp.signed.expires = now + timedelta(days=1)
        timestamp.signatures.clear()
        timestamp.sign(self.signer)
        self._write("timestamp.json", timestamp)
        seconds = time.perf_counter() - start
        return seconds, seconds

    def check(self, targets: list) -> None:
        from tuf.api.metadata import Metadata, SuccinctRoles

        timestamp = Metadata.from_file(str(self.metadata / "timestamp.json"))
        snapshot = Metadata.from_file(
            str(self.metadata / f"{timestamp.signed.snapshot_meta.version}.snapshot.json"))
        succinct = SuccinctRoles([], 1, self.bins.bit_length() - 1, self.prefix)
        for t in (targets[0], targets[-1]):
            role = succinct.get_role_for_target(t["path"])
            version = snapshot.signed.meta[f"{role}.json"].version
            md = Metadata.from_file(str(self.metadata / f"{version}.{role}.json"))
            found = md.signed.targets.get(t["path"])
            if found is None or found.hashes != t["hashes"]:
                raise AssertionError(f"python-tuf: {t['path']} not published")

    def close(self) -> None:
        pass


PUBLISHERS = {"tufc": TufcPublisher, "python-tuf": PythonTufPublisher}


# --- children (fresh processes) ----------------------------------------------------


def child_import(args) -> dict:
    import tufc
    from tufc.repository import Repository
    from tufc.repository.importer import read_records

    folder = Path(args.folder)
    if args.one_reader:  # pass 1 by one process, as before it was split
        from tufc.repository import importer

        importer.PARALLEL_MIN_BYTES = 1 << 62
    started = time.perf_counter()
    repo = Repository.create(str(folder))
    created = time.perf_counter()
    rss_before = peak_rss_kb()
    cpu_before = cpu_seconds()
    marks = {}

    def progress(stage, count):
        marks.setdefault(stage, time.perf_counter())
        marks["last " + stage] = time.perf_counter()

    result = repo.import_targets(read_records(args.csv), workers=args.workers, progress=progress)
    end = time.perf_counter()
    seconds = end - created
    repo.close()
    out = {
        "seconds": seconds,
        # phases: pass 1 until the first bin group is done (one group's
        # build included), pass 2, then snapshot + sync + timestamp
        "pass1": marks.get("bins", end) - created,
        "pass2": marks.get("last bins", end) - marks.get("bins", end),
        "commit": end - marks.get("last bins", end),
        "create_seconds": created - started,
        "changes": result.changes,
        "bins": result.bins,
        "cpu": cpu_seconds() - cpu_before,
        "peak_kb": peak_rss_kb(),
        "peak_after_create_kb": rss_before,
        "children_peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "backend": tufc.BACKEND,
    }
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def child_read(args) -> dict:
    """read_records over the CSV alone (pass 1's floor: CSV to dicts)."""
    from tufc.repository.importer import read_records

    started = time.perf_counter()
    count = sum(1 for _ in read_records(args.csv))
    return {"seconds": time.perf_counter() - started, "records": count, "peak_kb": peak_rss_kb()}


def child_publish(args) -> dict:
    started = time.perf_counter()
    # the modules each publish uses, imported before the clock starts
    # (tufc.repository itself is lazy: its engine loads on first use)
    if args.impl == "tufc":
        import tufc.repository.engine  # noqa: F401
        import tufc.repository.store  # noqa: F401
    else:
        import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401
        import securesystemslib.signer  # noqa: F401
        import tuf.api.metadata  # noqa: F401
        import tuf.api.serialization.json  # noqa: F401
    imported = time.perf_counter()
    targets = new_targets(args.first, args.count)
    begin = time.perf_counter()
    publisher = PUBLISHERS[args.impl](Path(args.folder))
    opened = time.perf_counter()
    total, publish = publisher.run(targets)
    end = time.perf_counter()
    publisher.check(targets)
    publisher.close()
    return {"imports": imported - started, "open": opened - begin,
            "total": end - begin, "publish": publish, "peak_kb": peak_rss_kb()}


# --- the figures ----------------------------------------------------------------


def fig_import(args, csv_file: Path, scratch: Path, repeat: int) -> dict:
    """Fresh processes, alternating: the import as shipped, and with pass 1
    read by one process (as before it was split across the workers)."""
    runs, one_reader = [], []
    for i in range(repeat):
        for variant in ((False, True) if i % 2 == 0 else (True, False)):
            folder = scratch / f"import-{i}-{int(variant)}"
            cmd = ["import", "--folder", str(folder), "--csv", str(csv_file),
                   "--workers", str(args.workers)] + (["--one-reader"] if variant else [])
            (one_reader if variant else runs).append(run_child(cmd))
    return {"runs": runs, "one_reader": one_reader}


def reference_import(base: Path, scratch: Path, sample: int) -> dict:
    """python-tuf building ``sample`` of the 16,384 bins (the targets of the
    imported repository's bins, as dicts in memory: reading and validating
    the CSV and distributing the records by bin is not counted), signing and
    writing each, then the snapshot and timestamp; extrapolated."""
    from tuf.api.metadata import Metadata, MetaFile, Snapshot, TargetFile, Targets, Timestamp
    from tuf.api.serialization.json import JSONSerializer

    signer = online_crypto_signer(base)
    serializer = JSONSerializer(compact=True)
    out_dir = scratch / "python-tuf-import"
    out_dir.mkdir()
    meta = base / "metadata"
    step = BINS // sample
    names = [f"bin-{i:04x}" for i in range(0, BINS, step)][:sample]
    inputs = []
    for name in names:
        version = max(int(f.name.split(".")[0]) for f in meta.glob(f"*.{name}.json"))
        inputs.append((name, json.loads((meta / f"{version}.{name}.json").read_bytes())
                       ["signed"]["targets"]))
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=7)
    targets_total = 0
    start = time.perf_counter()
    for name, entries in inputs:
        files = {path: TargetFile(e["length"], e["hashes"], path) for path, e in entries.items()}
        targets_total += len(files)
        md = Metadata(Targets(version=2, expires=expires, targets=files))
        md.sign(signer)
        with open(out_dir / f"2.{name}.json", "wb") as f:
            f.write(md.to_bytes(serializer))
    bins_seconds = time.perf_counter() - start
    start = time.perf_counter()
    snapshot = Metadata(Snapshot(version=2, expires=expires, meta={
        f"bin-{i:04x}.json": MetaFile(2) for i in range(BINS)}))
    snapshot.signed.meta["targets.json"] = MetaFile(1)
    snapshot.signed.meta["bins.json"] = MetaFile(1)
    snapshot.sign(signer)
    data = snapshot.to_bytes(serializer)
    with open(out_dir / "2.snapshot.json", "wb") as f:
        f.write(data)
    import hashlib

    timestamp = Metadata(Timestamp(version=2, expires=expires, snapshot_meta=MetaFile(
        2, len(data), {"sha256": hashlib.sha256(data).hexdigest()})))
    timestamp.sign(signer)
    with open(out_dir / "timestamp.json", "wb") as f:
        f.write(timestamp.to_bytes(serializer))
    top_seconds = time.perf_counter() - start
    shutil.rmtree(out_dir, ignore_errors=True)
    return {"sample": len(inputs), "sample_targets": targets_total, "bins_seconds": bins_seconds,
            "top_seconds": top_seconds,
            "estimate": bins_seconds * BINS / len(inputs) + top_seconds}


def fig_publish_fresh(args, copies: dict, repeat: int, counts, serials) -> dict:
    """First publish of a fresh process, each implementation on its copy."""
    out = {(impl, n): [] for impl in IMPLS for n in counts}
    for rep in range(repeat):
        for n in counts:
            first = serials.take(n)
            order = IMPLS if (rep + counts.index(n)) % 2 == 0 else IMPLS[::-1]
            for impl in order:
                out[(impl, n)].append(run_child(
                    ["publish", "--impl", impl, "--folder", str(copies[impl]),
                     "--count", str(n), "--first", str(first)]))
    return out


def fig_publish_best(copies: dict, repeat: int, counts, serials) -> dict:
    """Best of ``repeat`` successive publishes in one process per
    implementation (alternating), after one untimed warm-up publish."""
    publishers = {impl: PUBLISHERS[impl](copies[impl]) for impl in IMPLS}
    out = {}
    try:
        for n in counts:
            times = {impl: [] for impl in IMPLS}
            for rep in range(repeat + 1):
                targets = new_targets(serials.take(n), n)
                order = IMPLS if rep % 2 == 0 else IMPLS[::-1]
                for impl in order:
                    result = publishers[impl].run(targets)
                    if rep:
                        times[impl].append(result)
                    else:
                        publishers[impl].check(targets)
            out[n] = times
    finally:
        for p in publishers.values():
            p.close()
    return out


class Serials:
    """Serials of new targets, never used twice in one run (the copies are
    fresh for every run)."""

    def __init__(self, start: int):
        self.next = start

    def take(self, n: int) -> int:
        first = self.next
        self.next += n
        return first


# --- profile -------------------------------------------------------------------


def profile(args, base: Path, csv_file: Path, scratch: Path, top: int = 25) -> None:
    import cProfile
    import pstats

    from tufc.repository import Repository

    if args.profile == "import":
        from tufc.repository.importer import read_records

        folder = scratch / "profile-import"
        repo = Repository.create(str(folder))
        # CPU time, not wall: on a shared machine the wall clock counts the
        # moments other processes hold the cores
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        repo.import_targets(read_records(str(csv_file)), workers=1)
        prof.disable()
        print(f"=== import_targets of {csv_file.name}, workers=1 (every bin built in "
              "this process, so the profile sees them), process CPU time, by own time")
        pstats.Stats(prof).sort_stats("tottime").print_stats(top)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
        return
    folder = scratch / "profile-publish"
    copy_repo(base, folder)
    impl = args.profile_impl
    publisher = PUBLISHERS[impl](folder)
    serials = Serials(args.targets)
    publisher.run(new_targets(serials.take(args.count), args.count))  # warm-up
    prof = cProfile.Profile()
    runs = max(1, min(20, 2000 // args.count))
    for _ in range(runs):
        targets = new_targets(serials.take(args.count), args.count)
        prof.enable()
        publisher.run(targets)
        prof.disable()
    print(f"=== {impl}: add_targets + publish of {args.count} new targets, x{runs}, by own time")
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


# --- output ---------------------------------------------------------------------


def ms(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.3g} ms" if seconds * 1e3 < 100 else f"{seconds * 1e3:.0f} ms"


def spread(values: list) -> str:
    if len(values) < 2:
        return ms(values[0])
    return f"{ms(min(values))} (median {ms(statistics.median(values))}, max {ms(max(values))})"


def print_environment(args, scratch_parent: str) -> None:
    import platform

    import tuf

    import tufc

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f
                    if line.startswith("model name")), "?")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"python-tuf {tuf.__version__}")
    print(f"tufc: backend {tufc.BACKEND} ({os.path.dirname(tufc.__file__)})")
    fs = "?"
    try:
        fs = subprocess.run(["stat", "-f", "-c", "%T", scratch_parent], capture_output=True,
                            text=True).stdout.strip()
    except OSError:
        pass
    print(f"scratch repositories in: {scratch_parent} ({fs})")
    print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=DEFAULT_TARGETS,
                        help="targets in the imported repository (CSV generated once)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", choices=["import", "publish", "sustained"], action="append")
    parser.add_argument("--tmpdir", help="parent of the scratch repositories (default: TMPDIR)")
    parser.add_argument("--workers", type=int, default=2, help="import worker processes")
    parser.add_argument("--counts", help="publish sizes, comma separated (default 1,100,1000,5000)")
    parser.add_argument("--profile", choices=["import", "publish"],
                        help="cProfile hot spots instead of timings")
    parser.add_argument("--profile-impl", choices=IMPLS, default="tufc")
    parser.add_argument("--count", type=int, default=1, help="targets per profiled publish")
    parser.add_argument("--uploads", type=int, default=10_000, help="sustained: uploads in all")
    parser.add_argument("--store", help="queue URL for the sustained figure (default: a private "
                        "PostgreSQL server when one can be started, else SQLite)")
    parser.add_argument("--child", choices=["import", "read", "publish", "writer", "publisher"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-reader", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args(argv)

    if args.child:
        handlers = {"import": child_import, "read": child_read, "publish": child_publish}
        if args.child in handlers:
            result = handlers[args.child](args)
        else:
            import _sustained

            result = _sustained.child(args, extra)
        print(json.dumps(result))
        return 0

    csv_file = ensure_csv(args.targets)
    base = ensure_base(args.targets)
    scratch_parent = args.tmpdir or tempfile.gettempdir()
    scratch = Path(tempfile.mkdtemp(prefix="tufc-bench-repo-", dir=scratch_parent))
    try:
        if args.profile:
            profile(args, base, csv_file, scratch)
            return 0
        print_environment(args, scratch_parent)
        parts = args.only or ["import", "publish", "sustained"]
        targets_list = []
        if "import" in parts:
            report_import(args, base, csv_file, scratch, targets_list)
        if "publish" in parts:
            report_publish(args, base, scratch, targets_list)
        if "sustained" in parts:
            import _sustained

            _sustained.report(args, base, scratch, targets_list, total=args.uploads)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("targets (set for the native backend, 2 cores):")
    for description, met in targets_list:
        status = "n/a" if met is None else ("met" if met else "MISSED")
        print(f"  [{status:6}] {description}")
    return 0


def report_import(args, base, csv_file, scratch, targets_list) -> None:
    repeat = 1 if args.quick else 3
    read = run_child(["read", "--csv", str(csv_file)])
    sample = 64 if args.quick else 256
    reference = reference_import(base, scratch, sample)
    figures = fig_import(args, csv_file, scratch, repeat)
    runs, one_reader = figures["runs"], figures["one_reader"]
    best = min(r["seconds"] for r in runs)
    print(f"bulk import: {args.targets:,} targets from {csv_file.name} "
          f"({csv_file.stat().st_size / 1e6:.0f} MB) into {BINS:,} signed bins, a fresh process "
          f"each ({repeat} run{'s' if repeat > 1 else ''}, workers={args.workers})")
    rows = [
        ["tufc import_targets (wall)", spread([r["seconds"] for r in runs]), "1.00x"],
        ["python-tuf, estimated (see below)", ms(reference["estimate"]),
         f"{reference['estimate'] / best:.1f}x slower"],
        ["tufc, pass 1 by one process", spread([r["seconds"] for r in one_reader]),
         f"{min(r['seconds'] for r in one_reader) / best:.2f}x slower"],
        ["  CPU time (process + workers)", spread([r["cpu"] for r in runs]),
         "wall / CPU shows the share of the 2 cores it got"],
        ["  pass 1 (read, validate, spill)", spread([r["pass1"] for r in runs]), ""],
        ["  pass 2 (build, sign, write bins)", spread([r["pass2"] for r in runs]), ""],
        ["  snapshot, sync, timestamp", spread([r["commit"] for r in runs]), ""],
        ["  pass 1 by one process", spread([r["pass1"] for r in one_reader]), ""],
        ["  read_records alone (CSV to dicts)", ms(read["seconds"]), ""],
        ["  create of the empty repository", spread([r["create_seconds"] for r in runs]), "(not in import)"],
        ["  whole process (start, create, import)", spread([r["process_wall"] for r in runs]), ""],
    ]
    print(format_table(["figure", "time", "vs tufc"], rows))
    peak = max(r["peak_kb"] for r in runs) / 1024
    children = max(r["children_peak_kb"] for r in runs) / 1024
    print(f"peak RSS: importing process {peak:.0f} MB (after create: "
          f"{max(r['peak_after_create_kb'] for r in runs) / 1024:.0f} MB), "
          f"largest worker process {children:.0f} MB (RUSAGE_CHILDREN; a forked worker's "
          "figure counts the pages it shares with its parent)")
    print(f"python-tuf estimate: {reference['sample']} of {BINS:,} bins "
          f"({reference['sample_targets']:,} targets) built from dicts with TargetFile + "
          f"Targets + Metadata, signed (CryptoSigner), serialized (compact) and written in "
          f"{ms(reference['bins_seconds'])}, times {BINS // reference['sample']}, plus the "
          f"snapshot and timestamp ({ms(reference['top_seconds'])}); reading the CSV is not "
          "counted")
    print()
    targets_list.append((f"bulk import <= 30 s (best {best:.1f} s)", best <= 30))
    targets_list.append((f"bulk import peak RSS < 500 MB (process {peak:.0f} MB, worker "
                         f"{children:.0f} MB)", max(peak, children) < 500))


def report_publish(args, base, scratch, targets_list) -> None:
    counts = tuple(int(c) for c in args.counts.split(",")) if args.counts else PUBLISH_COUNTS
    fresh_n, best_n = (1, 3) if args.quick else (3, 7)
    copies = {}
    for impl in IMPLS:
        copies[impl] = scratch / f"publish-{impl}"
        copy_repo(base, copies[impl])
    read_all(copies["tufc"])  # page cache: both copies (hard links) or tmpfs
    read_all(copies["python-tuf"])
    serials = Serials(args.targets)
    fresh = fig_publish_fresh(args, copies, fresh_n, list(counts), serials)
    best = fig_publish_best(copies, best_n, counts, serials)

    print(f"publish of new targets into the imported repository ({args.targets:,} targets, "
          f"{BINS:,} bins); each implementation on its own copy, successive publishes")
    rows = []
    for n in counts:
        ref_fresh = min(r["total"] for r in fresh[("python-tuf", n)])
        ref_best = min(t[0] for t in best[n]["python-tuf"])
        t_fresh = [r["total"] for r in fresh[("tufc", n)]]
        p_fresh = [r["publish"] for r in fresh[("tufc", n)]]
        t_best = [t[0] for t in best[n]["tufc"]]
        p_best = [t[1] for t in best[n]["tufc"]]
        rows.append([f"{n:,}", "fresh process", ms(ref_fresh), ms(min(t_fresh)),
                     f"{ref_fresh / min(t_fresh):.1f}x", ms(min(p_fresh)),
                     f"{ref_fresh / min(p_fresh):.1f}x"])
        rows.append(["", f"best of {best_n}", ms(ref_best), ms(min(t_best)),
                     f"{ref_best / min(t_best):.1f}x", ms(min(p_best)),
                     f"{ref_best / min(p_best):.1f}x"])
        rows.append(["", "median", ms(statistics.median(t[0] for t in best[n]["python-tuf"])),
                     ms(statistics.median(t_best)), "", ms(statistics.median(p_best)), ""])
        if n == 1:
            targets_list.append((f"publish of 1 new target <= 5 ms (best {ms(min(p_best))}, "
                                 f"fresh process {ms(min(p_fresh))})", min(p_best) <= 0.005))
            targets_list.append((f"publish of 1 new target >= 12x python-tuf "
                                 f"({ref_best / min(p_best):.1f}x)", ref_best / min(p_best) >= 12))
        if n == 1000:
            targets_list.append((f"publish of 1,000 new targets >= 15x python-tuf "
                                 f"({ref_best / min(p_best):.1f}x)", ref_best / min(p_best) >= 15))
    print(format_table(["targets", "run", "python-tuf", "tufc queue+publish", "ratio",
                        "tufc publish", "ratio"], rows))
    print(f"fresh process: {fresh_n} run(s) each, the work after imports (tufc: Repository() + "
          "add_targets + publish; python-tuf: signer + the publish); best shown. "
          "Ratios: python-tuf / tufc.")
    imports = {impl: min(r["imports"] for n in counts for r in fresh[(impl, n)]) for impl in IMPLS}
    print(f"imports in a fresh process (not counted): python-tuf {ms(imports['python-tuf'])}, "
          f"tufc {ms(imports['tufc'])}")
    print()


if __name__ == "__main__":
    sys.exit(main())
