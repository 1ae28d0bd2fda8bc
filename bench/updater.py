"""Benchmark of tufc's Updater against python-tuf's ngclient.

    python bench/updater.py                   # default backend (native if built)
    python bench/updater.py --backend pure    # tufc's pure-Python core
    python bench/updater.py --quick           # fewer repetitions

Both clients run on the PEP 458-shaped repository built by pypi_repo.py
(generated once into bench/.cache/ if missing) and read it from disk through
a fetcher that maps URLs to files, so compute is compared, not the network.
Implementations alternate within each repetition; each operation is timed
on its own (setup excluded) and the best and the median are printed.  Every
repository file a timed operation reads is read once before timing, so both
clients find it in the page cache (otherwise whichever client ran first in
a repetition paid the disk read).

Figures:
  cold     new Updater on an empty metadata_dir (bootstrap root bytes) + refresh()
  lookup   get_targetinfo() of a path whose bin was not fetched yet (after
           refresh; a different bin each repetition)
  floor    tufc's fetch + parse + signature check of those bins and nothing
           else, in the same alternation: python-tuf's lookup over it bounds
           the ratio any lookup could reach
  warm     new Updater over a filled metadata_dir (bootstrap root bytes) +
           refresh() + get_targetinfo() of a path whose bin is cached
  rss      peak RSS (VmHWM) of a fresh process doing cold + lookup
  first    as a user runs it: each client in a fresh process (imports done,
           not timed), its first cold refresh and first lookup in an
           uncached bin; then another fresh process for the warm start
           over that metadata_dir.  No best-of inside a process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _shape  # noqa: E402
import pypi_repo  # noqa: E402
from _timing import describe_failure, format_table  # noqa: E402

BASE_URL = "https://pypi.bench.invalid/metadata/"
CLIENTS = ("python-tuf", "tufc")


# --- the two clients ----------------------------------------------------------


def _disk_fetch(folder: Path, url: str, http_error):
    """The bytes of ``url`` read from ``folder``; 404 like a server."""
    if not url.startswith(BASE_URL):
        raise http_error(f"unexpected URL {url}", 404)
    path = folder / unquote(url[len(BASE_URL):])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise http_error(f"not found: {url}", 404) from None
    yield data


class Client:
    """One Updater implementation: how to make a fetcher and an Updater."""

    def __init__(self, name: str, repo: Path):
        self.name = name
        self.repo = repo
        self.metadata = repo / "metadata"
        self.root = (self.metadata / "1.root.json").read_bytes()
        if name == "python-tuf":
            from tuf.api.exceptions import DownloadHTTPError
            from tuf.ngclient import FetcherInterface, Updater
        else:
            from tufc.exceptions import DownloadHTTPError
            from tufc.fetcher import FetcherInterface
            from tufc.updater import Updater
        folder = self.metadata

        class DiskFetcher(FetcherInterface):
            def _fetch(self, url):
                return _disk_fetch(folder, url, DownloadHTTPError)

        self._fetcher_class = DiskFetcher
        self._updater_class = Updater

    def updater(self, metadata_dir: str):
        return self._updater_class(metadata_dir, BASE_URL, None, None,
                                   self._fetcher_class(), bootstrap=self.root)


def load_clients(repo: Path) -> tuple[dict, dict]:
    clients, missing = {}, {}
    for name in CLIENTS:
        try:
            clients[name] = Client(name, repo)
        except Exception as exc:  # noqa: BLE001 - reported
            reason = describe_failure(exc)
            if not reason.startswith("n/a ("):
                reason = reason[:-1]
            missing[name] = (reason.rstrip(")") + f": {type(exc).__name__}: {exc}")[:90] + ")"
    return clients, missing


def expected_info(path: str, seed: int) -> tuple[int, dict]:
    serial = int(re.search(r"/project(\d+)-", path).group(1))
    entry = _shape.target_entry(serial, seed)
    return entry["length"], entry["hashes"]


def check_info(info, path: str, seed: int) -> None:
    if info is None:
        raise AssertionError(f"target not found: {path}")
    length, hashes = expected_info(path, seed)
    if info.length != length or dict(info.hashes) != hashes:
        raise AssertionError(f"wrong TargetFile for {path}")


# --- timing -------------------------------------------------------------------


class Scratch:
    """Temporary metadata folders, removed at the end."""

    def __init__(self, parent):
        self.parent = tempfile.mkdtemp(prefix="tufc-bench-", dir=parent)
        self.count = 0

    def new(self) -> str:
        self.count += 1
        path = os.path.join(self.parent, f"m{self.count}")
        return path  # not created: both clients must create metadata_dir

    def cleanup(self) -> None:
        shutil.rmtree(self.parent, ignore_errors=True)


def alternate(clients: dict, repeat: int, run) -> dict:
    """``run(name, client, rep) -> seconds`` for each client, alternating order."""
    times = {name: [] for name in clients}
    failures = {}
    order = list(clients)
    for rep in range(repeat):
        if rep % 2:
            order = order[::-1]
        for name in order:
            if name in failures:
                continue
            try:
                times[name].append(run(name, clients[name], rep))
            except Exception as exc:  # noqa: BLE001 - reported
                failures[name] = f"failed: {type(exc).__name__}: {exc}"[:100]
    return {name: (times[name], failures.get(name)) for name in clients}


def fig_cold(clients, scratch, repeat):
    def run(name, client, rep):
        d = scratch.new()
        start = time.perf_counter()
        client.updater(d).refresh()
        return time.perf_counter() - start
    return alternate(clients, repeat, run)


def warm_page_cache(repo: Path, paths: list, bit_length: int) -> None:
    """Read the top-level metadata files and the bin files of ``paths`` once
    (any version), so neither client pays a disk read the other does not."""
    names = _shape.bin_names(bit_length)
    folder = repo / "metadata"
    prefix = names[0].rsplit("-", 1)[0] + "-"
    with os.scandir(folder) as entries:
        for entry in entries:
            if prefix not in entry.name and entry.is_file():
                Path(entry.path).read_bytes()
    for path in paths:
        name = names[_shape.bin_index(path, bit_length)]
        for file in folder.glob(f"*.{name}.json"):
            file.read_bytes()


FLOOR = "tufc floor"


class LookupFloor:
    """tufc's three steps a lookup in an uncached bin cannot skip, and
    nothing else: fetch the bin, parse it (canonical bytes of "signed"),
    verify its signature with the top-level targets' keys.  No cache probe,
    lock, write, delegation walk or version/expiry check.  python-tuf's
    lookup over this time is the best ratio any lookup built on these steps
    could reach."""

    def __init__(self, client: "Client", paths: list, bit_length: int):
        from tufc.metadata import Metadata

        self._from_bytes = Metadata.from_bytes
        folder = client.metadata
        newest = max(folder.glob("*.targets.json"), key=lambda f: int(f.name.split(".")[0]))
        self.top = Metadata.from_bytes(newest.read_bytes()).signed
        self.fetcher = client._fetcher_class()
        names = _shape.bin_names(bit_length)
        self.bins = {}
        for path in paths:  # file names found before timing
            name = names[_shape.bin_index(path, bit_length)]
            self.bins[path] = (name, BASE_URL + next(folder.glob(f"*.{name}.json")).name)

    def run(self, path: str) -> float:
        name, url = self.bins[path]
        start = time.perf_counter()
        md = self._from_bytes(self.fetcher.download_bytes(url, 5_000_000))
        self.top.verify_delegate(name, md)
        return time.perf_counter() - start


def fig_lookup(clients, scratch, repeat, paths, seed, bit_length):
    """Lookups in bins not fetched yet; with both clients present, the
    floor (LookupFloor) takes its turn in the same alternation."""
    updaters = {}
    runners = dict(clients)
    floor = None
    if set(CLIENTS) <= set(clients):
        floor = LookupFloor(clients["tufc"], paths[:repeat], bit_length)
        runners[FLOOR] = None

    def run(name, client, rep):
        path = paths[rep]
        if name == FLOOR:
            return floor.run(path)
        if name not in updaters:
            updaters[name] = client.updater(scratch.new())
            updaters[name].refresh()
        start = time.perf_counter()
        info = updaters[name].get_targetinfo(path)
        elapsed = time.perf_counter() - start
        check_info(info, path, seed)
        return elapsed
    return alternate(runners, repeat, run)


def fig_warm(clients, scratch, repeat, path, seed):
    filled = {}
    for name, client in clients.items():
        try:
            d = scratch.new()
            u = client.updater(d)
            u.refresh()
            check_info(u.get_targetinfo(path), path, seed)
            filled[name] = d
        except Exception:  # noqa: BLE001 - the timed run reports it
            filled[name] = scratch.new()

    def run(name, client, rep):
        start = time.perf_counter()
        u = client.updater(filled[name])
        u.refresh()
        info = u.get_targetinfo(path)
        elapsed = time.perf_counter() - start
        check_info(info, path, seed)
        return elapsed
    return alternate(clients, repeat, run)


def fig_rss(clients, args, repo, repeat):
    """Peak RSS of a child process per client (cold refresh + one lookup)."""
    out = {}
    for name in CLIENTS:
        if name not in clients:
            continue
        peaks, baselines, error = [], [], None
        for _ in range(repeat):
            cmd = [sys.executable, __file__, "--child", name, "--repo", str(repo)]
            if args.tmpdir:
                cmd += ["--tmpdir", args.tmpdir]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                error = (proc.stderr.strip().splitlines() or ["?"])[-1][:100]
                break
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            peaks.append(result["peak_kb"])
            baselines.append(result["after_imports_kb"])
        out[name] = (peaks, baselines, error)
    return out


def peak_rss_kb() -> int:
    """This process's peak resident set size in KiB.

    Linux keeps ``ru_maxrss`` across exec, so a child spawned by a big
    parent reports the parent's size; VmHWM belongs to the new image only.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(name: str, repo: Path, tmpdir) -> int:
    """Run in a fresh process: imports, cold refresh, one lookup; print RSS."""
    if name == "python-tuf":
        import tuf.ngclient  # noqa: F401
    else:
        import tufc.updater  # noqa: F401
    after_imports = peak_rss_kb()
    manifest = json.loads((repo / "manifest.json").read_text())
    path = next(p for p in manifest["lookup_paths"] if p)
    client = Client(name, repo)
    with tempfile.TemporaryDirectory(prefix="tufc-bench-", dir=tmpdir) as d:
        u = client.updater(os.path.join(d, "m"))
        u.refresh()
        check_info(u.get_targetinfo(path), path, manifest["seed"])
    peak = peak_rss_kb()
    print(json.dumps({"peak_kb": peak, "after_imports_kb": after_imports}))
    return 0


def first_child(name: str, repo: Path, metadata_dir: str, path: str, warm: bool) -> int:
    """In a fresh process: the first cold refresh and first lookup (or,
    ``warm``, the first warm start) of this process; print the times."""
    if name == "python-tuf":
        import tuf.ngclient  # noqa: F401
    else:
        import tufc.updater  # noqa: F401
    manifest = json.loads((repo / "manifest.json").read_text())
    client = Client(name, repo)
    out = {}
    start = time.perf_counter()
    u = client.updater(metadata_dir)
    u.refresh()
    if warm:
        info = u.get_targetinfo(path)
        out["warm"] = time.perf_counter() - start
    else:
        out["cold"] = time.perf_counter() - start
        start = time.perf_counter()
        info = u.get_targetinfo(path)
        out["lookup"] = time.perf_counter() - start
    check_info(info, path, manifest["seed"])
    print(json.dumps(out))
    return 0


def fig_first(clients, args, repo, scratch, repeat, paths):
    """``first_child`` per client, alternating; each repetition a new path
    (a bin not in the page cache's favour of either: both read it)."""
    def spawn(name, d, path, warm):
        cmd = [sys.executable, __file__, "--first-child", name, "--repo", str(repo),
               "--dir", d, "--path", path] + (["--warm"] if warm else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError((proc.stderr.strip().splitlines() or ["?"])[-1][:100])
        return json.loads(proc.stdout.strip().splitlines()[-1])

    times = {(n, f): [] for n in clients for f in ("cold", "lookup", "warm")}
    order = list(clients)
    for rep in range(repeat):
        order = order[::-1]
        for name in order:
            d = scratch.new()
            for key, value in spawn(name, d, paths[rep], False).items():
                times[(name, key)].append(value)
            for key, value in spawn(name, d, paths[rep], True).items():
                times[(name, key)].append(value)
    return times


def profile(client: "Client", tmpdir, lookups: list, warm_path: str, top: int = 12) -> None:
    """cProfile of one client's cold refresh, lookups and warm start."""
    import cProfile
    import pstats

    scratch = Scratch(tmpdir)
    try:
        def report(label, fn, count):
            prof = cProfile.Profile()
            prof.enable()
            for i in range(count):
                fn(i)
            prof.disable()
            print(f"=== {client.name}: {label} x{count}, by own time")
            pstats.Stats(prof).sort_stats("tottime").print_stats(top)

        report("cold refresh", lambda i: client.updater(scratch.new()).refresh(), 10)
        u = client.updater(scratch.new())
        u.refresh()
        report("lookup, uncached bin", lambda i: u.get_targetinfo(lookups[i]), len(lookups))
        filled = scratch.new()
        w = client.updater(filled)
        w.refresh()
        w.get_targetinfo(warm_path)

        def warm(i):
            w = client.updater(filled)
            w.refresh()
            w.get_targetinfo(warm_path)
        report("warm start", warm, 10)
    finally:
        scratch.cleanup()


# --- output -----------------------------------------------------------------


def print_environment(backend_note: str, repo: Path, manifest: dict, tmpdir) -> None:
    import platform

    import tuf

    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"python-tuf {tuf.__version__}")
    print(f"tufc: {backend_note}")
    sizes = {n: (repo / "metadata" / n).stat().st_size
             for n in ("1.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json")}
    print(f"repository: {repo.name}: {manifest['targets']:,} targets in "
          f"{2 ** manifest['bit_length']:,} bins, mean bin "
          f"{manifest['bin_bytes_total'] / 2 ** manifest['bit_length'] / 1e3:.1f} KB; "
          + ", ".join(f"{n} {s / 1e3:.1f} KB" for n, s in sizes.items()))
    print(f"metadata_dir on: {tmpdir or tempfile.gettempdir()}")
    print()


def tufc_note() -> str:
    try:
        import tufc
    except Exception as exc:  # noqa: BLE001
        return f"n/a (import tufc failed: {type(exc).__name__}: {exc})"
    note = f"backend {tufc.BACKEND} ({os.path.dirname(tufc.__file__)})"
    error = getattr(getattr(tufc, "_backend", None), "NATIVE_IMPORT_ERROR", None)
    if error is not None and tufc.BACKEND != "native":
        note += f"; native import error: {error}"
    return note


# The targets the client is held to (native core): python-tuf / tufc for
# cold refresh and warm start, best of N and first in process alike; a
# lookup in an uncached bin at most LOOKUP_OVER_FLOOR times the floor.
COLD_RATIO, WARM_RATIO, LOOKUP_OVER_FLOOR = 20, 25, 1.3


def timing_rows(label, results, missing, targets_list, target_ratio):
    rows = []
    best = {}
    for name in CLIENTS:
        if name in missing:
            rows.append([label, name, missing[name], "", "", ""])
            continue
        times, error = results[name]
        if error or not times:
            rows.append([label, name, error or "no data", "", "", ""])
            continue
        best[name] = min(times)
        rows.append([label, name, f"{min(times) * 1e3:.2f}",
                     f"{statistics.median(times) * 1e3:.2f}", str(len(times)), ""])
    ratio = None
    if len(best) == 2:
        ratio = best["python-tuf"] / best["tufc"]
        rows[-1][5] = f"{ratio:.1f}x"
    if target_ratio is not None:
        targets_list.append((f"{label}: tufc >= {target_ratio}x faster than python-tuf",
                             None if ratio is None else ratio >= target_ratio))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["auto", "native", "pure"], default="auto",
                        help="tufc core: pure sets TUFC_PURE_PYTHON=1, native "
                             "TUFC_REQUIRE_NATIVE=1 (also for the RSS subprocesses)")
    parser.add_argument("--targets", type=int, default=pypi_repo.DEFAULT_TARGETS,
                        help="repository size (generated once if missing)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", choices=["cold", "lookup", "warm", "rss", "first"],
                        action="append")
    parser.add_argument("--tmpdir", help="parent of the metadata_dirs (default: TMPDIR)")
    parser.add_argument("--profile", choices=CLIENTS,
                        help="print cProfile hot spots of one client instead of timing")
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--repo", help=argparse.SUPPRESS)
    parser.add_argument("--first-child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.first_child:
        return first_child(args.first_child, Path(args.repo), args.dir, args.path, args.warm)
    if args.child:
        return child(args.child, Path(args.repo), args.tmpdir)
    if args.backend == "pure":
        os.environ["TUFC_PURE_PYTHON"] = "1"
    elif args.backend == "native":
        os.environ["TUFC_REQUIRE_NATIVE"] = "1"

    repo = pypi_repo.ensure(args.targets)
    manifest = json.loads((repo / "manifest.json").read_text())
    seed = manifest["seed"]
    clients, missing = load_clients(repo)
    print_environment(tufc_note(), repo, manifest, args.tmpdir)

    parts = args.only or ["cold", "lookup", "warm", "rss", "first"]
    cold_n, lookup_n, warm_n, rss_n = (5, 20, 5, 1) if args.quick else (15, 60, 15, 3)
    lookup_paths = [p for p in manifest["lookup_paths"] if p]
    # Lookups walk bins spread over the whole range; the warm start uses a
    # bin the lookups never touch.
    step = max(1, len(lookup_paths) // (lookup_n + 1))
    lookups = lookup_paths[::step][:lookup_n]
    warm_path = lookup_paths[step // 2] if step > 1 else lookup_paths[-1]

    if args.profile:
        if args.profile in missing:
            print(f"{args.profile}: {missing[args.profile]}")
            return 1
        warm_page_cache(repo, lookups + [warm_path], manifest["bit_length"])
        profile(clients[args.profile], args.tmpdir, lookups, warm_path)
        return 0

    targets_list = []
    rows = []
    notes = []
    warm_page_cache(repo, lookups + [warm_path], manifest["bit_length"])
    scratch = Scratch(args.tmpdir)
    try:
        if "cold" in parts:
            rows += timing_rows("cold refresh", fig_cold(clients, scratch, cold_n),
                                missing, targets_list, COLD_RATIO)
        if "lookup" in parts:
            results = fig_lookup(clients, scratch, len(lookups), lookups, seed,
                                 manifest["bit_length"])
            floor, floor_error = results.pop(FLOOR, (None, None))
            rows += timing_rows("lookup, uncached bin", results,
                                missing, targets_list, None)
            reference = results["python-tuf"][0] if "python-tuf" in results else None
            ours = results.get("tufc", (None, None))[0]
            if floor and ours and not floor_error:
                targets_list.append((
                    f"lookup, uncached bin: tufc's best within {LOOKUP_OVER_FLOOR}x of the floor's "
                    f"best (here {min(ours) / min(floor):.2f}x)",
                    min(ours) <= LOOKUP_OVER_FLOOR * min(floor)))
            if floor and reference and not floor_error:
                notes.append(
                    f"lookup floor (tufc: fetch + parse + verify of the bin, nothing "
                    f"else; timed in the same alternation): best {min(floor) * 1e3:.2f} "
                    f"ms, median {statistics.median(floor) * 1e3:.2f} ms.\n"
                    f"python-tuf's best lookup / floor = {min(reference) / min(floor):.1f}x: "
                    f"the most a lookup doing these steps could reach here."
                )
            elif floor_error:
                notes.append(f"lookup floor: {floor_error}")
        if "warm" in parts:
            rows += timing_rows("warm start", fig_warm(clients, scratch, warm_n, warm_path, seed),
                                missing, targets_list, WARM_RATIO)
    finally:
        scratch.cleanup()
    if rows:
        print(format_table(["figure", "client", "best ms", "median ms", "runs",
                            "python-tuf / tufc"], rows))
        print()
    for note in notes:
        print(note)
        print()

    if "first" in parts and not missing:
        first_n = 3 if args.quick else 7
        scratch = Scratch(args.tmpdir)
        try:
            times = fig_first(clients, args, repo, scratch, first_n, lookups[-first_n:])
        finally:
            scratch.cleanup()
        first_rows = []
        for figure in ("cold", "lookup", "warm"):
            med = {n: statistics.median(times[(n, figure)]) for n in CLIENTS}
            for n in CLIENTS:
                first_rows.append([f"{figure}, first in process", n,
                                   f"{min(times[(n, figure)]) * 1e3:.2f}",
                                   f"{med[n] * 1e3:.2f}", str(len(times[(n, figure)])),
                                   f"{med['python-tuf'] / med['tufc']:.1f}x" if n == "tufc" else ""])
        for figure, ratio in (("cold", COLD_RATIO), ("warm", WARM_RATIO)):
            med = {n: statistics.median(times[(n, figure)]) for n in CLIENTS}
            targets_list.append((f"{figure}, first in process: tufc >= {ratio}x faster "
                                 "than python-tuf (medians)",
                                 med["python-tuf"] / med["tufc"] >= ratio))
        print("each client in a fresh process per step (medians compared):")
        print(format_table(["figure", "client", "best ms", "median ms", "runs",
                            "python-tuf / tufc (median)"], first_rows))
        print()

    if "rss" in parts:
        rss = fig_rss(clients, args, repo, rss_n)
        rss_rows = []
        for name in CLIENTS:
            if name in missing:
                rss_rows.append([name, missing[name], "", ""])
                continue
            peaks, baselines, error = rss.get(name, ([], [], "not run"))
            if error or not peaks:
                rss_rows.append([name, f"failed: {error}", "", ""])
                continue
            rss_rows.append([name, f"{min(peaks) / 1024:.1f}",
                             f"{min(baselines) / 1024:.1f}",
                             f"{(min(peaks) - min(baselines)) / 1024:.1f}"])
        print(format_table(["client (cold + lookup, own process)", "peak RSS MB",
                            "after imports MB", "growth MB"], rss_rows))
        print()
        peak = {n: min(v[0]) for n, v in rss.items() if v[0] and not v[2]}
        ok = peak["tufc"] < peak["python-tuf"] if len(peak) == 2 else None
        if ok is not None:
            print(f"peak RSS python-tuf / tufc: {peak['python-tuf'] / peak['tufc']:.2f}x")
        targets_list.append(("peak RSS: tufc below python-tuf", ok))

    not_native = os.environ.get("TUFC_PURE_PYTHON") == "1" or "backend native" not in tufc_note()
    print("targets (set for the native backend"
          + ("; this run is NOT native, so they are for information only):" if not_native else "):"))
    for description, met in targets_list:
        status = "n/a" if met is None else ("met" if met else "MISSED")
        print(f"  [{status:6}] {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
