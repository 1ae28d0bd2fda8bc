"""The client commands: ``init``, ``refresh``, ``download``, ``info`` and
``verify``.

Conformance harnesses drive them with the global options before the
subcommand (``tufc --metadata-dir DIR init ROOT``, see the TUF conformance
client protocol); people type ``tufc init --repo URL ...``, with the
trusted metadata kept in a per-user folder keyed by the repository URL.
Both get the same output; only the exit status matters to a harness.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import shutil
import sys
import tempfile
import urllib.parse

from .. import _atomic, exceptions
from ._common import CliError, parse_time, step, when
from ._fetch import CliFetcher
from ._location import ALL, Location, add_location_options, write_file
from ._progress import Progress
from ._trust import ROOT_HISTORY, RootInfo, fetch_first_root, pinned_chain

logger = logging.getLogger("tufc.cli")

DEFAULT_TIMEOUT = 30.0  # seconds, Urllib3Fetcher's default


def register(add_command) -> None:
    init = add_command("init", "establish trust in a repository's root")
    add_location_options(init, True, ("repo", "metadata-dir", "target-base-url"))
    init.add_argument(
        "trusted_root", nargs="?", metavar="TRUSTED_ROOT",
        help="a root metadata file you obtained securely",
    )
    init.add_argument(
        "--root-keyid", dest="root_keyids", action="append", metavar="KEYID",
        default=[],
        help="accept the repository's 1.root.json only if signed by this "
        "pinned key: a full key id, or a SHA256:... fingerprint as printed "
        "by --trust-on-first-use (repeatable)",
    )
    init.add_argument(
        "--threshold", type=int, metavar="N",
        help="how many of the pinned key ids must have signed (default: all)",
    )
    init.add_argument(
        "--force", action="store_true",
        help="replace a root already trusted in the metadata folder",
    )
    init.add_argument(
        "--trust-on-first-use", action="store_true",
        help="accept the repository's 1.root.json as is (verified against "
        "nothing: check the printed fingerprints out of band)",
    )
    _add_timeout(init)
    init.set_defaults(handler=_with_location(cmd_init))

    refresh = add_command("refresh", "update the trusted metadata")
    add_location_options(refresh, True, ("repo", "metadata-dir"))
    _add_as_of(refresh)
    _add_timeout(refresh)
    refresh.set_defaults(handler=_with_location(cmd_refresh))

    download = add_command("download", "download and verify targets")
    add_location_options(download, True, ALL)
    download.add_argument("targets", nargs="*", metavar="TARGET")
    download.add_argument(
        "-o", "--output", metavar="DIR",
        help="where to put the files, each named after the last part of "
        "its target path (default: the current folder)",
    )
    _add_as_of(download)
    _add_timeout(download)
    download.set_defaults(handler=_with_location(cmd_download))

    info = add_command("info", "show what the repository says about a target")
    add_location_options(info, True, ("repo", "metadata-dir"))
    info.add_argument("target", metavar="TARGET")
    _add_as_of(info)
    _add_timeout(info)
    info.set_defaults(handler=_with_location(cmd_info))

    verify = add_command("verify", "check a metadata folder offline")
    add_location_options(verify, True, ("repo", "metadata-dir"))
    verify.add_argument(
        "folder", nargs="?", metavar="DIR",
        help="the metadata folder (default: --metadata-dir or the per-user one)",
    )
    verify.add_argument(
        "--root", metavar="FILE",
        help="the root to anchor trust in (default: the first root the "
        "folder trusted, kept in its root_history/)",
    )
    _add_as_of(verify)
    verify.set_defaults(handler=run_verify)


def _add_as_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of", metavar="TIME",
        help="judge expiry as of this time, RFC 3339 (default: now)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds above 0: {text!r}")
    return value


def _add_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help="seconds to wait for a server to connect or send data "
        f"(default: {DEFAULT_TIMEOUT:g})",
    )


def _with_location(command):
    """A handler that finds the folders and URLs, then runs ``command``."""

    def handler(args: argparse.Namespace) -> None:
        command(args, Location(args))

    return handler


def _as_of(args: argparse.Namespace) -> datetime.datetime | None:
    return parse_time(args.as_of) if getattr(args, "as_of", None) else None


# --- init -----------------------------------------------------------------------


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
        unchanged = _check_replacement(location, info, args.trusted_root, args.force)
    else:
        # Trust fetched from the network never silently replaces trust
        # already established (like SSH's known_hosts).
        unchanged = _check_replacement(
            location, None, "the repository's 1.root.json", args.force
        )
        fetcher = CliFetcher(args.timeout)
        data = step("fetching 1.root.json", fetch_first_root, location, fetcher,
                    note=fetcher.note)
        info = step("1.root.json", RootInfo, data, note=fetcher.note)
        if info.root.version != 1:
            raise CliError(
                f"1.root.json has version {info.root.version}, expected 1"
            )
        info.check_self_signed()
        if args.root_keyids:
            _check_pins(info, args.root_keyids, args.threshold)
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

    if not unchanged:
        _store_root(location, data)
    if location.metadata_url is not None:
        location.save_settings()
    logger.info("trusted root version %d stored in %s",
                info.root.version, location.root_path())
    print(f"Trusting root version {info.root.version} "
          f"(expires {when(info.root.expires)}) in {location.metadata_dir}")


def _check_pins(info: RootInfo, pins: list[str], threshold: int | None) -> None:
    pinned = list(dict.fromkeys(pins))
    if threshold is None:
        threshold = len(pinned)
    if not 1 <= threshold <= len(pinned):
        raise CliError(f"--threshold must be between 1 and {len(pinned)}")
    for pin in pinned:
        longer = [k for k in info.root.keys if k.startswith(pin) and k != pin]
        if pin not in info.root.keys and longer:
            raise CliError(
                f"--root-keyid {pin}: a short key id; full key ids are "
                f"needed (this one starts {longer[0]})"
            )
    result = info.signed_by(info.resolve_pins(pinned), threshold)
    if not result:
        raise CliError(
            "root: pinned key check failed: 1.root.json is signed by "
            f"{len(result.verified)} of the pinned keys, {threshold} required"
        )


def _check_replacement(
    location: Location, new: RootInfo | None, source: str, force: bool
) -> bool:
    """Refuse to replace a trusted root with another one without --force;
    True if ``new`` is the trusted root already (no change).

    Any other root, older, newer or another repository's, would bypass
    the signed root chain through which ``refresh`` updates trust."""
    path = location.root_path()
    try:
        with open(path, "rb") as f:
            old_data = f.read()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if new is not None and new.data == old_data:
        return True
    if force:
        return False
    try:
        old = RootInfo(old_data).root
        trusted = f"root version {old.version} (expires {when(old.expires)})"
    except (CliError, exceptions.TufcError):
        old, trusted = None, "a root.json that does not parse"
    if new is None:
        replacement = source
    else:
        version = new.root.version
        if old is None or version == old.version:
            kind = "a different root"
        else:
            kind = "an older root" if version < old.version else "a newer root"
        replacement = f"{source} ({kind}: version {version})"
    raise CliError(
        f"{location.metadata_dir} already trusts {trusted}; refusing to "
        f"replace it with {replacement}: 'tufc refresh' updates trust through "
        "the repository's signed roots; --force replaces it"
    )


def _store_root(location: Location, data: bytes) -> None:
    """Trust ``data`` as the root; roots kept from a trust it replaces go
    (so ``verify`` anchors in this one)."""
    write_file(location.root_path(), data)  # replaces a symlink, not its target
    history = os.path.join(location.metadata_dir, ROOT_HISTORY)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(history):
            if entry.endswith(".root.json"):
                _atomic.remove(os.path.join(history, entry))


# --- refresh, download, info --------------------------------------------------


class _Client:
    """One Updater over the trusted folder, with the options of one run."""

    def __init__(self, args: argparse.Namespace, location: Location,
                 target_dir: str | None = None, progress: Progress | None = None,
                 metadata_dir: str | None = None):
        from ..config import UpdaterConfig
        from ..updater import Updater

        self.fetcher = CliFetcher(args.timeout, progress)
        self.folder = folder = metadata_dir or location.metadata_dir
        if not os.path.exists(os.path.join(folder, "root.json")):
            raise CliError(
                f"no trusted root in {location.metadata_dir}: run 'tufc init' first"
            )
        target_base_url = None
        if location.metadata_url is not None:
            target_base_url = location.resolved_target_base_url()
        self.updater = step(
            "loading the trusted metadata",
            lambda: Updater(
                folder,
                location.require_url(),
                target_dir,
                target_base_url,
                self.fetcher,
                UpdaterConfig(reference_time=_as_of(args)),
                bootstrap=None,  # the root trusted so far: DIR/root.json
            ),
        )

    def step(self, what: str, func, *func_args):
        return step(what, func, *func_args, note=self.note)

    def note(self, exc: BaseException) -> str:
        text = self.fetcher.note(exc, self._consistent())
        if isinstance(exc, exceptions.ExpiredMetadataError):
            text += "; to check as of an earlier time, add --as-of TIME"
        return text

    def _consistent(self) -> bool:
        """Whether the trusted root says consistent snapshots."""
        try:
            with open(os.path.join(self.folder, "root.json"), "rb") as f:
                return bool(RootInfo(f.read()).root.consistent_snapshot)
        except (OSError, CliError, exceptions.TufcError):
            return False

    def lookup(self, name: str):
        info = self.step(f"target {name!r}: looking it up",
                         self.updater.get_targetinfo, name)
        if info is None:
            raise CliError(f"target {name!r}: not found in the repository's metadata")
        return info


def cmd_refresh(args: argparse.Namespace, location: Location) -> None:
    client = _Client(args, location)
    logger.info("refreshing top-level metadata from %s", location.metadata_url)
    client.step("refresh", client.updater.refresh)
    logger.info("refresh complete")
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
    local = {}
    if people:
        local = _local_paths(names, out_dir)

    progress = Progress() if sys.stderr.isatty() else None
    with _usable_folder(location) as folder:
        client = _Client(args, location, out_dir, progress, folder)
        client.step("refresh", client.updater.refresh)
        for name in names:
            info = client.lookup(name)
            filepath = local.get(name)
            cached = client.updater.find_cached_target(info, filepath)
            if cached is not None:
                logger.info("%s: up to date in %s (no download)", name, cached)
                print(f"{name}: already up to date: {cached}")
                continue
            if progress is not None:
                progress.start(name, info.length)
            try:
                path = client.step(f"target {name!r}: download",
                                   client.updater.download_target, info, filepath)
            finally:
                if progress is not None:
                    progress.finish()
            logger.info("%s: verified %d bytes, saved to %s", name, info.length, path)
            print(f"{name}: verified, saved to {path}")


def _local_paths(names: list[str], out_dir: str) -> dict[str, str]:
    """Each target's file under ``out_dir``; two targets that would share
    one file are refused before anything is downloaded."""
    paths: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name in names:
        path = os.path.join(out_dir, _local_name(name))
        other = owner.setdefault(path, name)
        if other != name:
            raise CliError(
                f"targets {other!r} and {name!r} would both be saved as "
                f"{path}: download them with different -o folders"
            )
        paths[name] = path
    return paths


def _local_name(target_path: str) -> str:
    """A person's file name for a target: its last path part, made safe."""
    base = target_path.rstrip("/").rpartition("/")[2]
    if base in ("", ".", "..") or "\\" in base:
        return urllib.parse.quote(target_path, safe="")
    return base


@contextlib.contextmanager
def _usable_folder(location: Location):
    """The trusted folder, or where it cannot be written (a read-only
    folder), a temporary copy of it: what the run learns is not kept."""
    folder = location.metadata_dir
    if not os.path.isdir(folder) or os.access(folder, os.W_OK):
        yield None
        return
    logger.info("%s is read-only: working on a temporary copy", folder)
    with tempfile.TemporaryDirectory(prefix="tufc-") as temp:
        copy = os.path.join(temp, "metadata")
        try:
            shutil.copytree(folder, copy, symlinks=True)
        except OSError as exc:
            raise CliError(f"cannot copy read-only {folder}: {exc}") from exc
        yield copy


def cmd_info(args: argparse.Namespace, location: Location) -> None:
    from ..metadata import Metadata, Targets

    with _usable_folder(location) as folder:
        client = _Client(args, location, metadata_dir=folder)
        client.step("refresh", client.updater.refresh)
        info = client.lookup(args.target)
        roles = _load_trusted_roles(folder or location.metadata_dir, Metadata)
    name = args.target
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


# --- verify ---------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> None:
    if args.folder and args.metadata_dir is None and args.metadata_url is None:
        cmd_verify(args, None)
    else:
        cmd_verify(args, Location(args))


def cmd_verify(args: argparse.Namespace, location: Location | None) -> None:
    from ..metadata import Targets

    folder = args.folder or (location.metadata_dir if location else None)
    if folder is None:
        raise CliError("verify needs a metadata folder (DIR, --metadata-dir or --repo)")
    as_of = _as_of(args) or datetime.datetime.now(datetime.timezone.utc)

    def read(role: str) -> bytes:
        path = os.path.join(folder, f"{urllib.parse.quote(role, safe='')}.json")
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise CliError(f"{role}: missing from {folder}") from None

    trusted, anchor = pinned_chain(folder, args.root, as_of)
    print(f"root       version {trusted.root.version}: reached from {anchor}")

    def note(exc):
        if isinstance(exc, exceptions.ExpiredMetadataError):
            return "; to check as of an earlier time, add --as-of TIME"
        return ""

    for role, update in (
        ("timestamp", trusted.update_timestamp),
        ("snapshot", trusted.update_snapshot),
        ("targets", trusted.update_targets),
    ):
        signed = step(role, update, read(role), note=note)
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
                read(child.name), child.name, parent, note=note,
            )
            print(f"{child.name:10} version {child_signed.version}: valid "
                  f"(delegated by {parent})")
            if isinstance(child_signed, Targets):
                queue.append((child.name, child_signed))
    print(f"OK: {folder} is valid as of {when(as_of)}, trust anchored in {anchor}")
