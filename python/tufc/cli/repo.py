"""``tufc repo ...``: run a repository with the engine (``tufc.repository``).

    tufc repo init FOLDER [--layout pep458|rstuf] [--bins N] [--database URL]
    tufc repo add FOLDER FILE... | --records FILE.csv   (enqueue; --publish)
    tufc repo remove FOLDER PATH...                     (enqueue; --publish)
    tufc repo publish FOLDER [--watch SECONDS]          (drain the queue)
    tufc repo refresh FOLDER                            (re-sign what expires)
    tufc repo import FOLDER RECORDS                     (bulk, every bin anew)
    tufc repo status FOLDER [--json]
    tufc repo rotate-online FOLDER [--new-key FILE] [--resume]   (ceremony)
    tufc repo renew FOLDER root|targets|bins [--days N]         (ceremony)
    tufc repo verify PATH_OR_URL [--as-of TIME] [--expires-within DAYS]
                     [--previous OLD_PATH] [--records FILE] [--targets DIR_OR_URL]
                     [--root FILE] [--json]            (audit a published repository)

``--database`` is a SQLite path or a ``postgresql://`` DSN (default: the one
``init`` recorded, else ``FOLDER/queue.sqlite``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ._common import EXIT_FAILURE, CliError, parse_time


def register(add_command) -> None:
    repo = add_command("repo", "run a TUF repository: publish, refresh, import, status")
    commands = repo.add_subparsers(dest="repo_command", metavar="COMMAND")
    repo.set_defaults(handler=lambda args: _usage(repo))

    def sub(name, help_text, handler):
        parser = commands.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("folder", metavar="FOLDER", help="the repository folder")
        parser.add_argument("--database", metavar="URL",
                            help="the change queue: a SQLite path or a postgresql:// DSN")
        parser.set_defaults(handler=handler)
        return parser

    init = sub("init", "create a repository: keys, root, every bin, snapshot, timestamp", cmd_init)
    init.add_argument("--layout", choices=("pep458", "rstuf"), default="pep458",
                      help="pep458: targets -> bins -> bin-N; rstuf: targets -> bins-N (default pep458)")
    init.add_argument("--bins", type=int, default=16384, help="number of hash bins (a power of two)")
    init.add_argument("--root-keys", type=int, default=1, metavar="N", help="root keys to generate")
    init.add_argument("--root-threshold", type=int, default=1, metavar="N")
    init.add_argument("--simple-page", default="simple/{project}/index.html", metavar="TEMPLATE",
                      help="target path of a project's simple page")

    add = sub("add", "enqueue targets: local files (hashed here) or records", cmd_add)
    add.add_argument("files", nargs="*", metavar="FILE", help="local files to add as targets")
    add.add_argument("--prefix", default="", metavar="PATH",
                     help="target path prefix for FILEs (default: none)")
    add.add_argument("--records", metavar="FILE", help="CSV (path,length,sha256,...) or JSON lines")
    add.add_argument("--publish", action="store_true", help="publish right away")

    remove = sub("remove", "enqueue removals of target paths", cmd_remove)
    remove.add_argument("paths", nargs="+", metavar="PATH")
    remove.add_argument("--publish", action="store_true", help="publish right away")

    publish = sub("publish", "publish pending changes (one snapshot per batch)", cmd_publish)
    publish.add_argument("--batch", type=int, default=10_000, metavar="N",
                         help="changes per snapshot (default 10000)")
    publish.add_argument("--watch", type=float, metavar="SECONDS",
                         help="keep publishing, polling the queue this often")
    publish.add_argument("--lock-timeout", type=float, metavar="SECONDS",
                         help="give up if another publisher holds the lock this long")

    refresh = sub("refresh", "re-sign online roles that expire soon", cmd_refresh)
    refresh.add_argument("--limit", type=int, metavar="N", help="at most N bins at once")

    imp = sub("import", "bulk import: every bin anew from a CSV or JSON-lines file", cmd_import)
    imp.add_argument("records", metavar="RECORDS", help="CSV (path,length,sha256,blake2b-256) or .jsonl")
    imp.add_argument("--workers", type=int, metavar="N", help="processes (default: 2)")

    rotate = sub("rotate-online", "ceremony: replace the online key (needs the root keys)",
                 cmd_rotate_online)
    rotate.add_argument("--new-key", metavar="FILE",
                        help="a tufc key file to use (default: generate FOLDER/keys/online-N.key)")
    rotate.add_argument("--resume", action="store_true", help="finish a rotation that was interrupted")

    renew = sub("renew", "ceremony: a new version of an offline role with a new expiry", cmd_renew)
    renew.add_argument("role", choices=("root", "targets", "bins"))
    renew.add_argument("--days", type=int, metavar="N", help="valid for N days (default: the role's)")

    status = sub("status", "show versions, expiry and the queue", cmd_status)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    text = "audit a published repository (any publisher's): every role, signature, bin and target"
    verify = commands.add_parser("verify", help=text, description=text)
    verify.add_argument("location", metavar="PATH_OR_URL",
                        help="the repository: a folder (with metadata/ or the metadata itself) or a URL")
    verify.add_argument("--as-of", metavar="TIME", help="check expiry at TIME (default: now)")
    verify.add_argument("--expires-within", type=float, metavar="DAYS",
                        help="also report what expires within DAYS")
    verify.add_argument("--previous", metavar="OLD_PATH",
                        help="the previous state: check that this one may follow it")
    verify.add_argument("--records", metavar="FILE",
                        help="the registry's records (CSV or JSON lines: path, length, blake2b-256)")
    verify.add_argument("--targets", metavar="DIR_OR_URL", help="also check every target file there")
    verify.add_argument("--root", metavar="FILE",
                        help="trusted root (default: the repository's own 1.root.json)")
    verify.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="per HTTP request (default 10)")
    verify.add_argument("--workers", type=int, metavar="N", help="processes (default: one per core)")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(handler=cmd_verify)


def _usage(parser) -> int:
    parser.print_help(sys.stderr)
    return 1


def _open(args):
    from ..repository import Repository

    return Repository(args.folder, store=args.database)


def cmd_init(args: argparse.Namespace) -> None:
    from ..repository import Layout, Repository

    layout = Layout(args.layout, args.bins, args.simple_page)
    if os.path.exists(os.path.join(args.folder, "repository.json")):
        raise CliError(f"{args.folder} already holds a repository")
    if args.root_keys < args.root_threshold:
        raise CliError("--root-keys must be at least --root-threshold")
    started = time.perf_counter()
    repo = Repository.create(args.folder, layout, root_threshold=args.root_threshold,
                             root_keys=args.root_keys, store=args.database,
                             remember_store=args.database is not None)
    print(f"created {repo.folder}: {args.layout}, {layout.bins} bins "
          f"({time.perf_counter() - started:.1f} s)")
    print(f"  serve {repo.metadata_dir}/ ; keys in {os.path.join(repo.folder, 'keys')}/ "
          "(move the root and targets keys offline)")


def _hash_file(path: str) -> dict:
    from .._backend import hash_file

    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    return {"length": size, "hashes": hash_file(path, ["sha256", "blake2b-256"])}


def cmd_add(args: argparse.Namespace) -> None:
    if not args.files and not args.records:
        raise CliError("nothing to add: give FILEs or --records")
    repo = _open(args)
    targets = []
    prefix = args.prefix.strip("/")
    for path in args.files:
        name = os.path.basename(path)
        targets.append(dict(_hash_file(path), path=f"{prefix}/{name}" if prefix else name))
    if args.records:
        from ..repository.importer import read_records

        targets.extend(read_records(args.records))
    count = repo.add_targets(targets)
    print(f"enqueued {count} target{'s' if count != 1 else ''}")
    if args.publish:
        _print_results(repo.publish_all())


def cmd_remove(args: argparse.Namespace) -> None:
    repo = _open(args)
    count = repo.remove_targets(args.paths)
    print(f"enqueued {count} removal{'s' if count != 1 else ''}")
    if args.publish:
        _print_results(repo.publish_all())


def _print_results(results) -> None:
    if not results:
        print("nothing to publish")
    for r in results:
        print(f"published snapshot {r.snapshot_version}: {r.changes} changes in {r.bins} bins "
              f"({r.seconds * 1e3:.1f} ms)")
    sys.stdout.flush()


def cmd_publish(args: argparse.Namespace) -> None:
    repo = _open(args)
    if args.watch is None:
        _print_results(repo.publish_all(args.batch, args.lock_timeout))
        return
    if args.watch <= 0:
        raise CliError("--watch takes a positive number of seconds")
    while True:  # a publisher daemon: Ctrl-C or SIGTERM ends it between publishes
        results = repo.publish_all(args.batch, args.lock_timeout)
        if results:
            _print_results(results)
        time.sleep(args.watch)


def cmd_refresh(args: argparse.Namespace) -> None:
    repo = _open(args)
    result = repo.refresh(limit=args.limit)
    if result is None:
        print("nothing expires within its margin")
    else:
        print(f"re-signed {result.bins} bins; snapshot {result.snapshot_version}, "
              f"timestamp {result.timestamp_version} ({result.seconds * 1e3:.1f} ms)")


def cmd_import(args: argparse.Namespace) -> None:
    from ..repository.importer import read_records

    repo = _open(args)
    tty = sys.stderr.isatty()

    def progress(stage: str, count: int) -> None:
        if tty:
            total = f"/{repo.layout.bins}" if stage == "bins" else ""
            sys.stderr.write(f"\r{stage}: {count:,}{total}   ")
            sys.stderr.flush()

    started = time.perf_counter()
    result = repo.import_targets(read_records(args.records), workers=args.workers, progress=progress)
    if tty:
        sys.stderr.write("\n")
    print(f"imported {result.changes:,} targets into {result.bins:,} bins: snapshot "
          f"{result.snapshot_version} ({time.perf_counter() - started:.1f} s)")


def cmd_rotate_online(args: argparse.Namespace) -> None:
    from ..repository import rotate_online_key
    from ..repository.signing import read_key_file, write_key_file
    from ..signer import Ed25519Signer

    repo = _open(args)
    if args.new_key:
        path = os.path.abspath(args.new_key)
        signer = read_key_file(path)
    elif args.resume and repo.config.get("rotating"):
        entry = [e for e in repo.config["signers"]["online"] if e["keyid"] == repo.config["rotating"]]
        if not entry or not (entry[0].get("uri") or "").startswith("file:"):
            raise CliError("give the new key with --new-key")
        path = os.path.join(repo.folder, entry[0]["uri"][len("file:"):])
        signer = read_key_file(path)
    else:
        signer = Ed25519Signer.generate()
        n = 2
        while os.path.exists(os.path.join(repo.folder, "keys", f"online-{n}.key")):
            n += 1
        path = os.path.join(repo.folder, "keys", f"online-{n}.key")
        write_key_file(path, signer)
    uri = "file:" + os.path.relpath(path, repo.folder)
    result = rotate_online_key(repo, signer, uri, resume=args.resume)
    print(f"online key is now {signer.public_key.keyid[:16]}...: root v{repo._root()['version']}, "
          f"{result.bins} roles re-signed, snapshot {result.snapshot_version}")


def cmd_renew(args: argparse.Namespace) -> None:
    import datetime

    from ..repository import renew

    repo = _open(args)
    days = None if args.days is None else datetime.timedelta(days=args.days)
    if args.days is not None and args.days <= 0:
        raise CliError("--days takes a positive number")
    result = renew(repo, args.role, expires_in=days)
    where = "" if result is None else f"; snapshot {result.snapshot_version}"
    print(f"renewed {args.role}{where}")


def cmd_status(args: argparse.Namespace) -> None:
    repo = _open(args)
    status = repo.status()
    if args.json:
        print(json.dumps(status, indent=1, sort_keys=True))
        return
    layout = status["layout"]
    print(f"{status['folder']}: {layout['kind']}, {layout['bins']} bins")
    print(f"  snapshot v{status['snapshot_version']} (expires {status['snapshot_expires']}), "
          f"timestamp v{status['timestamp_version']} (expires {status['timestamp_expires']})")
    print(f"  queue: {status['pending']} pending, {status['published_changes']} published")


def cmd_verify(args: argparse.Namespace) -> int | None:
    """Exit 0 only when the audit found nothing (warnings included: with
    --expires-within, something expiring soon is what was asked about)."""
    import datetime

    from ..repository import verify

    if args.expires_within is not None and not args.expires_within >= 0:
        raise CliError("--expires-within takes a number of days >= 0")
    if args.workers is not None and args.workers < 1:
        raise CliError("--workers takes a number >= 1")
    if args.timeout <= 0:
        raise CliError("--timeout takes a positive number of seconds")
    for option, path in (("--root", args.root), ("--records", args.records)):
        if path is not None and not os.path.isfile(path):
            raise CliError(f"{option}: no such file: {path}")
    within = None if args.expires_within is None else datetime.timedelta(days=args.expires_within)
    result = verify(args.location, trusted_root=args.root,
                    as_of=parse_time(args.as_of) if args.as_of else None,
                    expires_within=within, previous=args.previous, records=args.records,
                    targets=args.targets, timeout=args.timeout, workers=args.workers)
    if args.json:
        print(result.to_json())
    else:
        _print_audit(result)
    return None if not result.problems else EXIT_FAILURE


def _print_audit(result) -> None:
    summary = result.summary
    verdict = result.verdict
    if result.ok and result.problems:
        verdict = "WARN" + verdict[2:]
    print(verdict)
    rows = [("roles", f"{summary.get('roles', 0):,}"),
            ("targets", f"{summary.get('targets', 0):,}"),
            ("metadata bytes", f"{summary.get('bytes', 0):,}"),
            ("root version", str(summary.get("root_version", "-"))),
            ("time", f"{summary.get('seconds', 0):.2f} s")]
    kinds: dict = {}
    for problem in result.problems:
        kinds[problem.kind] = kinds.get(problem.kind, 0) + 1
    rows.append(("problems", f"{len(result.problems):,}"))
    rows += [(f"  {kind}", f"{count:,}") for kind, count in sorted(kinds.items())]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    trusted = summary.get("trusted_root")
    if trusted:
        print(f"trusted root: version {trusted['version']}, {trusted['origin']}; root keys:")
        for key in trusted["keys"]:
            print(f"  {key['keyid']}  {key['keytype']}  sha256:{key['fingerprint']}")
    changes = result.changes
    if changes:
        print(f"since the previous state: {len(changes['removed']):,} targets removed, "
              f"{len(changes['changed']):,} changed")
        for path in changes["removed"]:
            print(f"  removed  {path}")
        for path in changes["changed"]:
            print(f"  changed  {path}")
    for problem in result.problems:
        print(problem)
