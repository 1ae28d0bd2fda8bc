"""The client commands: ``init``, ``refresh``, ``download``, ``info`` and
``verify``.

Conformance harnesses drive them with the global options before the
subcommand (``tufc --metadata-dir DIR init ROOT``, see the TUF conformance
client protocol); people type ``tufc init --repo URL ...``, with the
trusted metadata kept in a per-user folder keyed by the repository URL.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
import urllib.parse

from .. import exceptions
from ._common import CliError, parse_time, step, when
from ._location import Location, write_file
from ._progress import Progress, progress_fetcher
from ._trust import RootInfo, fetch_first_root

logger = logging.getLogger("tufc.cli")


def register(add_command) -> None:
    init = add_command("init", "establish trust in a repository's root")
    init.add_argument(
        "trusted_root", nargs="?", metavar="TRUSTED_ROOT",
        help="a root metadata file you obtained securely",
    )
    init.add_argument(
        "--root-keyid", dest="root_keyids", action="append", metavar="KEYID",
        default=[],
        help="accept the repository's 1.root.json only if signed by this "
        "pinned key: a key id, or a SHA256:... fingerprint as printed by "
        "--trust-on-first-use (repeatable)",
    )
    init.add_argument(
        "--threshold", type=int, metavar="N",
        help="how many of the pinned key ids must have signed (default: all)",
    )
    init.add_argument(
        "--force", action="store_true",
        help="with --root-keyid or --trust-on-first-use: replace a root "
        "already trusted in the metadata folder",
    )
    init.add_argument(
        "--trust-on-first-use", action="store_true",
        help="accept the repository's 1.root.json as is (verified against "
        "nothing: check the printed fingerprints out of band)",
    )
    init.set_defaults(handler=with_location(cmd_init))

    refresh = add_command("refresh", "update the trusted metadata")
    refresh.set_defaults(handler=with_location(cmd_refresh))

    download = add_command("download", "download and verify targets")
    download.add_argument("targets", nargs="*", metavar="TARGET")
    download.add_argument(
        "-o", "--output", metavar="DIR",
        help="where to put the files (default: the current folder)",
    )
    download.set_defaults(handler=with_location(cmd_download))

    info = add_command("info", "show what the repository says about a target")
    info.add_argument("target", metavar="TARGET")
    info.set_defaults(handler=with_location(cmd_info))

    verify = add_command("verify", "check a metadata folder offline")
    verify.add_argument(
        "folder", nargs="?", metavar="DIR",
        help="the metadata folder (default: --metadata-dir or the per-user one)",
    )
    verify.add_argument(
        "--as-of", metavar="TIME",
        help="the time to check expiry against, RFC 3339 (default: now)",
    )
    verify.set_defaults(handler=run_verify)


def with_location(command):
    """A handler that finds the folders and URLs, then runs ``command``."""

    def handler(args: argparse.Namespace) -> None:
        command(args, Location(args))

    return handler


def run_verify(args: argparse.Namespace) -> None:
    if args.folder and args.metadata_dir is None and args.metadata_url is None:
        cmd_verify(args, None)
    else:
        cmd_verify(args, Location(args))


def cmd_init(args: argparse.Namespace, location: Location) -> None:
    modes = sum(
        [bool(args.trusted_root), bool(args.root_keyids), args.trust_on_first_use]
    )
    if modes != 1:
        raise CliError(
            "init needs exactly one of: a TRUSTED_ROOT file, --root-keyid "
            "KEYID... [--threshold N], or --trust-on-first-use"
        )
    if args.threshold is not None and not args.root_keyids:
        raise CliError("--threshold goes with --root-keyid")

    if args.trusted_root:
        try:
            with open(args.trusted_root, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise CliError(
                f"cannot read trusted root {args.trusted_root}: {exc.strerror}"
            ) from exc
        info = step("trusted root", RootInfo, data)
        info.check_self_signed()
    else:
        # Trust fetched from the network never silently replaces trust
        # already established (like SSH's known_hosts).
        if os.path.exists(location.root_path()) and not args.force:
            raise CliError(
                f"{location.metadata_dir} already holds a trusted root: "
                "'tufc refresh' updates it; use --force to replace it with "
                "the repository's 1.root.json"
            )
        data = step("fetching 1.root.json", fetch_first_root, location)
        info = step("1.root.json", RootInfo, data)
        if info.root.version != 1:
            raise CliError(
                f"1.root.json has version {info.root.version}, expected 1"
            )
        info.check_self_signed()
        if args.root_keyids:
            pinned = list(dict.fromkeys(args.root_keyids))
            threshold = args.threshold if args.threshold is not None else len(pinned)
            if not 1 <= threshold <= len(pinned):
                raise CliError(
                    f"--threshold must be between 1 and {len(pinned)}"
                )
            result = info.signed_by(info.resolve_pins(pinned), threshold)
            if not result:
                raise CliError(
                    "root: pinned key check failed: 1.root.json is signed by "
                    f"{len(result.verified)} of the pinned keys, {threshold} "
                    "required"
                )
        else:
            role = info.root.roles["root"]
            print(
                "WARNING: trust on first use: this root was verified against "
                "nothing but itself. Compare these root key fingerprints with "
                "ones published by the repository owner (any "
                f"{role.threshold} of these {len(role.keyids)} keys sign "
                "root updates):",
                file=sys.stderr,
            )
            for line in info.describe_keys():
                print(line, file=sys.stderr)

    write_file(location.root_path(), data)
    if location.metadata_url is not None:
        location.save_settings()
    logger.info("trusted root version %d stored in %s",
                info.root.version, location.root_path())
    print(f"Trusting root version {info.root.version} "
          f"(expires {when(info.root.expires)}) in {location.metadata_dir}",
          file=sys.stderr if _protocol_mode(args) else sys.stdout)


def _protocol_mode(args: argparse.Namespace) -> bool:
    return args.metadata_dir is not None


def _make_updater(location: Location, fetcher=None, target_dir=None):
    from ..updater import Updater

    if not os.path.exists(location.root_path()):
        raise CliError(
            f"no trusted root in {location.metadata_dir}: run 'tufc init' first"
        )
    target_base_url = None
    if location.metadata_url is not None:
        target_base_url = location.resolved_target_base_url()
    return step(
        "loading the trusted metadata",
        lambda: Updater(
            location.metadata_dir,
            location.require_url(),
            target_dir,
            target_base_url,
            fetcher,
            bootstrap=None,  # the root trusted so far: DIR/root.json
        ),
    )


def cmd_refresh(args: argparse.Namespace, location: Location) -> None:
    updater = _make_updater(location)
    logger.info("refreshing top-level metadata from %s", location.metadata_url)
    step("refresh", updater.refresh)
    logger.info("refresh complete")
    if not _protocol_mode(args):
        print(f"Up to date: {_versions(location.metadata_dir)}")


def _versions(metadata_dir: str) -> str:
    """"root v3, timestamp v8, ..." from the trusted top-level files."""
    from ..metadata import Metadata

    parts = []
    for role in ("root", "timestamp", "snapshot", "targets"):
        try:
            with open(os.path.join(metadata_dir, f"{role}.json"), "rb") as f:
                signed = Metadata.from_bytes(f.read()).signed
        except (OSError, exceptions.TufcError):
            continue
        parts.append(f"{role} v{signed.version}")
    return ", ".join(parts)


def cmd_download(args: argparse.Namespace, location: Location) -> None:
    names = list(args.target_names or []) + list(args.targets)
    if not names:
        raise CliError("download needs at least one target name")
    # The protocol names --target-dir (files named as the Updater does);
    # people name -o (files named after the target's last path part).
    people = args.target_dir is None
    if args.output and not people:
        raise CliError("use either --target-dir or -o, not both")
    out_dir = args.target_dir if not people else (args.output or ".")

    progress = Progress() if sys.stderr.isatty() else None
    fetcher = None
    url = location.require_url()
    if progress is not None and url.startswith(("http://", "https://")):
        fetcher = progress_fetcher(progress)
    updater = _make_updater(location, fetcher, target_dir=out_dir)
    step("refresh", updater.refresh)

    for name in names:
        info = step(f"target {name!r}: looking it up", updater.get_targetinfo, name)
        if info is None:
            raise CliError(f"target {name!r}: not found in the repository's metadata")
        filepath = None
        if people:
            filepath = os.path.join(out_dir, _local_name(name))
        cached = updater.find_cached_target(info, filepath)
        if cached is not None:
            logger.info("%s: up to date in %s (no download)", name, cached)
            if people:
                print(f"{name}: already up to date: {cached}")
            continue
        if progress is not None:
            progress.start(name, info.length)
        try:
            path = step(
                f"target {name!r}: download", updater.download_target, info, filepath
            )
        finally:
            if progress is not None:
                progress.finish()
        logger.info("%s: verified %d bytes, saved to %s", name, info.length, path)
        if people:
            print(f"{name}: verified, saved to {path}")


def _local_name(target_path: str) -> str:
    """A person's file name for a target: its last path part, made safe."""
    base = target_path.rstrip("/").rpartition("/")[2]
    if base in ("", ".", ".."):
        return urllib.parse.quote(target_path, safe="")
    return base


def cmd_info(args: argparse.Namespace, location: Location) -> None:
    from ..metadata import Metadata, Targets

    updater = _make_updater(location)
    step("refresh", updater.refresh)
    name = args.target
    info = step(f"target {name!r}: looking it up", updater.get_targetinfo, name)
    if info is None:
        raise CliError(f"target {name!r}: not found in the repository's metadata")

    roles = _load_trusted_roles(location.metadata_dir, Metadata)
    snapshot = roles.get("snapshot")
    vouching = []
    for role_name, md in roles.items():
        if not isinstance(md.signed, Targets):
            continue
        entry = md.signed.targets.get(name)
        if entry is None or entry != info:
            continue
        listed = snapshot.signed.meta.get(f"{role_name}.json") if snapshot else None
        if listed is not None and listed.version != md.signed.version:
            continue  # a stale copy of a role the snapshot moved past
        vouching.append((role_name, md))

    print(f"target:   {info.path}")
    print(f"length:   {info.length}")
    for algorithm, digest in info.hashes.items():
        print(f"{algorithm + ':':9} {digest}")
    custom = getattr(info, "custom", None) or {}
    if custom:
        print(f"custom:   {json.dumps(custom, sort_keys=True)}")
    for role_name, md in vouching:
        print(f"signed by role {role_name!r} (version {md.signed.version}, "
              f"expires {when(md.signed.expires)})")
    for role_name in ("root", "timestamp", "snapshot", "targets"):
        md = roles.get(role_name)
        if md is not None:
            print(f"{role_name + ':':10} version {md.signed.version}, "
                  f"expires {when(md.signed.expires)}")


def _load_trusted_roles(metadata_dir: str, metadata_cls) -> dict:
    """Every ``*.json`` in the metadata folder, parsed, by role name."""
    roles = {}
    for entry in sorted(os.listdir(metadata_dir)):
        if not entry.endswith(".json"):
            continue
        path = os.path.join(metadata_dir, entry)
        with open(path, "rb") as f:
            roles[urllib.parse.unquote(entry[: -len(".json")])] = (
                metadata_cls.from_bytes(f.read())
            )
    return roles


def cmd_verify(args: argparse.Namespace, location: Location | None) -> None:
    from .._trusted import TrustedMetadataSet
    from ..metadata import Targets

    folder = args.folder or (location.metadata_dir if location else None)
    if folder is None:
        raise CliError("verify needs a metadata folder (DIR, --metadata-dir or --repo)")
    as_of = parse_time(args.as_of) if args.as_of else datetime.datetime.now(
        datetime.timezone.utc
    )

    def read(role: str) -> bytes:
        path = os.path.join(folder, f"{urllib.parse.quote(role, safe='')}.json")
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise CliError(f"{role}: missing from {folder}") from None

    trusted = step("root", TrustedMetadataSet, read("root"), as_of)
    print(f"root       version {trusted.root.version}: self-signed by a threshold")
    for role, update in (
        ("timestamp", trusted.update_timestamp),
        ("snapshot", trusted.update_snapshot),
        ("targets", trusted.update_targets),
    ):
        signed = step(role, update, read(role))
        print(f"{role:10} version {signed.version}: valid as of {when(as_of)} "
              f"(expires {when(signed.expires)})")

    # Delegated roles present in the folder, walked from the top.
    queue = [("targets", trusted.targets)]
    seen = {"targets"}
    while queue:
        parent, signed = queue.pop(0)
        delegations = getattr(signed, "delegations", None)
        if delegations is None or not delegations.roles:
            continue
        for child in delegations.roles.values():
            if child.name in seen:
                continue
            seen.add(child.name)
            path = os.path.join(folder, f"{urllib.parse.quote(child.name, safe='')}.json")
            if not os.path.exists(path):
                print(f"{child.name:10} not in the folder (loaded on demand)")
                continue
            child_signed = step(
                child.name, trusted.update_delegated_targets,
                read(child.name), child.name, parent,
            )
            print(f"{child.name:10} version {child_signed.version}: valid "
                  f"(delegated by {parent})")
            if isinstance(child_signed, Targets):
                queue.append((child.name, child_signed))
    print(f"OK: {folder} is valid as of {when(as_of)}")


