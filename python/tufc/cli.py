"""The ``tufc`` command line.

Two audiences share one parser:

* conformance harnesses, which drive the client through global options
  (``--metadata-dir``, ``--metadata-url``, ``--target-name``, ``--target-dir``,
  ``--target-base-url``) placed before the subcommand
  (see the TUF conformance client protocol);
* people, who type ``tufc init --repo URL ...``, ``tufc download NAME``,
  ``tufc info NAME``, ``tufc verify --as-of TIME`` and ``tufc demo``, with the
  trusted metadata kept in a per-user folder keyed by the repository URL.

Every failure is one readable line on stderr and exit status 1 (argparse's
usage errors included); success is 0.  ``-v`` logs the steps, ``-vv`` also
prints tracebacks.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import urllib.parse
from typing import Sequence

from . import exceptions

logger = logging.getLogger("tufc.cli")

EXIT_OK = 0
EXIT_FAILURE = 1

# 1.root.json fetched for trust on first use / pinned keys: python-tuf's
# default root_max_length.
ROOT_MAX_LENGTH = 512000
SETTINGS_FILE = "repository.json"


class CliError(Exception):
    """A failure the command line reports as one line (exit status 1)."""


# --- error messages ---------------------------------------------------------

# What each failure means, looked up along the exception's class hierarchy
# so the most specific class gives the explanation.
_WHY = {
    exceptions.EqualVersionNumberError: "version check failed (same version as the trusted copy)",
    exceptions.BadVersionNumberError: "version check failed (rollback or mismatched version)",
    exceptions.ExpiredMetadataError: "expiry check failed (metadata expired: freeze attack or stale repository)",
    exceptions.UnsignedMetadataError: "signature check failed (not signed by a threshold of trusted keys)",
    exceptions.LengthOrHashMismatchError: "length/hash check failed (tampered or mixed-and-matched data)",
    exceptions.DeserializationError: "format check failed (malformed metadata)",
    exceptions.RepositoryError: "repository check failed",
    exceptions.DownloadLengthMismatchError: "length limit exceeded (endless data)",
    exceptions.SlowRetrievalError: "download too slow",
    exceptions.DownloadHTTPError: "server error",
    exceptions.DownloadError: "download failed",
    exceptions.UnsupportedAlgorithmError: "unsupported algorithm (failing closed)",
    exceptions.FormatError: "format check failed",
    exceptions.StorageError: "local storage failed",
}


def explain(exc: BaseException) -> str:
    """One line naming which check failed and why, for any tufc exception."""
    detail = str(exc).strip().splitlines()
    detail_line = detail[0] if detail else ""
    for cls in type(exc).__mro__:
        why = _WHY.get(cls)
        if why is not None:
            break
    else:
        if isinstance(exc, OSError):
            why = "local file error"
            detail_line = f"{exc.strerror or exc}" + (
                f": {exc.filename}" if exc.filename else ""
            )
        else:
            why = type(exc).__name__
    if isinstance(exc, Exception) and getattr(exc, "status_code", None):
        why = f"{why} (HTTP {exc.status_code})"
    return f"{why}: {detail_line}" if detail_line else why


# --- argument parsing ---------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; the protocol allows only 0 and 1."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILURE, f"{self.prog}: error: {message}\n")


def _add_location_options(parser: argparse.ArgumentParser, nested: bool) -> None:
    # The same options are accepted before the subcommand (the conformance
    # protocol's form) and after it (what people type).  After it they must
    # not reset values given before it, hence SUPPRESS there.
    def default(value):
        return argparse.SUPPRESS if nested else value

    group = parser.add_argument_group("repository and folders")
    group.add_argument(
        "--repo", "--metadata-url", dest="metadata_url", metavar="URL",
        default=default(None),
        help="base URL of the repository's metadata",
    )
    group.add_argument(
        "--metadata-dir", metavar="DIR", default=default(None),
        help="folder of trusted metadata (default: a per-user folder keyed "
        "by the repository URL)",
    )
    group.add_argument(
        "--target-base-url", metavar="URL", default=default(None),
        help="base URL of the target files (default: the one saved by init, "
        "else METADATA_URL/../targets/)",
    )
    group.add_argument(
        "--target-dir", metavar="DIR", default=default(None),
        help="folder for downloaded targets",
    )
    group.add_argument(
        "--target-name", dest="target_names", action="append", metavar="PATH",
        default=default(None),
        help="a target to download (repeatable; conformance form)",
    )
    group.add_argument(
        "-v", "--verbose", action="count", default=default(0),
        help="log the steps (-vv: also tracebacks)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tufc",
        description="Securely fetch files from a TUF repository.",
        epilog="Try 'tufc demo' to watch TUF refuse real attacks, offline.",
    )
    _add_location_options(parser, nested=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_location_options(sub, nested=True)
        return sub

    init = command("init", "establish trust in a repository's root")
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

    command("refresh", "update the trusted metadata")

    download = command("download", "download and verify targets")
    download.add_argument("targets", nargs="*", metavar="TARGET")
    download.add_argument(
        "-o", "--output", metavar="DIR",
        help="where to put the files (default: the current folder)",
    )

    info = command("info", "show what the repository says about a target")
    info.add_argument("target", metavar="TARGET")

    verify = command("verify", "check a metadata folder offline")
    verify.add_argument(
        "folder", nargs="?", metavar="DIR",
        help="the metadata folder (default: --metadata-dir or the per-user one)",
    )
    verify.add_argument(
        "--as-of", metavar="TIME",
        help="the time to check expiry against, RFC 3339 (default: now)",
    )

    command("demo", "replay real attacks against a local repository (offline)")
    return parser


# --- where things live --------------------------------------------------------


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def data_home() -> str:
    """The per-user data folder (XDG_DATA_HOME, else ~/.local/share)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        return xdg
    return os.path.join(os.path.expanduser("~"), ".local", "share")


def repository_folder(metadata_url: str) -> str:
    """The per-user folder for one repository, keyed by its metadata URL.

    A readable part of the URL plus a digest of the whole URL: two URLs that
    sanitize alike still get different folders.
    """
    url = _with_slash(metadata_url)
    parts = urllib.parse.urlsplit(url)
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", parts.netloc + parts.path)
    readable = readable.strip("_.")[:64] or "repository"
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return os.path.join(data_home(), "tufc", f"{readable}-{digest}")


def default_target_base_url(metadata_url: str) -> str:
    """``.../metadata/`` -> ``.../targets/``; anything else -> ``URL/targets/``."""
    url = _with_slash(metadata_url)
    if url.endswith("/metadata/"):
        return url[: -len("metadata/")] + "targets/"
    return url + "targets/"


class Location:
    """The folders and URLs one invocation works with."""

    def __init__(self, args: argparse.Namespace):
        self.metadata_url: str | None = args.metadata_url
        self.target_base_url: str | None = args.target_base_url
        self.settings_path: str | None = None
        if args.metadata_dir is not None:
            self.metadata_dir = args.metadata_dir
        elif self.metadata_url is not None:
            folder = repository_folder(self.metadata_url)
            self.metadata_dir = os.path.join(folder, "metadata")
            self.settings_path = os.path.join(folder, SETTINGS_FILE)
            self._load_settings()
        else:
            raise CliError(
                "no repository given: use --repo URL (or --metadata-dir DIR)"
            )

    def _load_settings(self) -> None:
        try:
            with open(self.settings_path, encoding="utf-8") as f:  # type: ignore[arg-type]
                saved = json.load(f)
        except (OSError, ValueError):
            return
        if self.target_base_url is None and isinstance(
            saved.get("target_base_url"), str
        ):
            self.target_base_url = saved["target_base_url"]

    def save_settings(self) -> None:
        """Remember the URLs next to (never inside) the metadata folder."""
        if self.settings_path is None:
            return
        settings = {
            "metadata_url": self.metadata_url,
            "target_base_url": self.resolved_target_base_url(),
        }
        atomic_write(
            self.settings_path,
            json.dumps(settings, indent=1, sort_keys=True).encode("utf-8"),
        )

    def require_url(self) -> str:
        if self.metadata_url is None:
            raise CliError("this command needs the repository URL: --repo URL")
        return _with_slash(self.metadata_url)

    def resolved_target_base_url(self) -> str:
        if self.target_base_url is not None:
            return _with_slash(self.target_base_url)
        return default_target_base_url(self.require_url())

    def root_path(self) -> str:
        return os.path.join(self.metadata_dir, "root.json")


def atomic_write(path: str, data: bytes) -> None:
    """Write via a temp file (not ending in .json) and rename into place."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tufc-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- root checks (init) -------------------------------------------------------


class RootInfo:
    """A parsed root and the key ids whose signatures over it verified."""

    def __init__(self, data: bytes):
        from .metadata import Metadata, Root

        self.data = data
        self.metadata = Metadata.from_bytes(data)
        self.root = self.metadata.signed
        if not isinstance(self.root, Root):
            raise CliError("not root metadata (its _type is not 'root')")

    def signed_by(self, keyids, threshold: int):
        """The threshold result of ``keyids`` over this root's signed part."""
        from .keys import verify_threshold

        signatures = {
            keyid: sig.signature for keyid, sig in self.metadata.signatures.items()
        }
        return verify_threshold(
            self.metadata.signed_bytes, signatures, self.root.keys,
            list(keyids), threshold,
        )

    def check_self_signed(self) -> None:
        role = self.root.roles["root"]
        result = self.signed_by(role.keyids, role.threshold)
        if not result:
            raise CliError(
                "root: signature check failed: signed by "
                f"{len(result.verified)} of its {len(role.keyids)} root keys, "
                f"threshold {role.threshold}"
            )

    def resolve_pins(self, pins: list[str]) -> list[str]:
        """Key ids for pinned key ids or ``SHA256:`` fingerprints.

        A fingerprint names key material, so it pins every key id under
        which that material appears (the threshold counts it once).
        """
        keyids = []
        for pin in pins:
            if pin.startswith("SHA256:"):
                keyids.extend(
                    keyid for keyid, key in self.root.keys.items()
                    if _fingerprint(key) == pin
                )
            else:
                keyids.append(pin)
        return keyids

    def describe_keys(self) -> list[str]:
        role = self.root.roles["root"]
        lines = []
        for keyid in role.keyids:
            key = self.root.keys.get(keyid)
            if key is None:
                lines.append(f"  {keyid}  (missing from the key table)")
                continue
            lines.append(f"  {keyid}  {key.keytype}  {_fingerprint(key)}")
        return lines


def _canonical(obj) -> bytes:
    from ._backend import canonical_json

    return canonical_json(obj)


def _fingerprint(key) -> str:
    """SSH-style SHA256 fingerprint of the key material (or of its keyval)."""
    material = getattr(key, "fingerprint", None)
    if not isinstance(material, bytes):
        material = _canonical(key.keyval)
    digest = hashlib.sha256(material).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _fetch_first_root(location: Location) -> bytes:
    from .fetcher import Urllib3Fetcher

    url = location.require_url() + "1.root.json"
    logger.info("fetching %s", url)
    return Urllib3Fetcher().download_bytes(url, ROOT_MAX_LENGTH)


# --- commands -----------------------------------------------------------------


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
        info = _step("trusted root", RootInfo, data)
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
        data = _step("fetching 1.root.json", _fetch_first_root, location)
        info = _step("1.root.json", RootInfo, data)
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

    atomic_write(location.root_path(), data)
    if location.metadata_url is not None:
        location.save_settings()
    logger.info("trusted root version %d stored in %s",
                info.root.version, location.root_path())
    print(f"Trusting root version {info.root.version} "
          f"(expires {_when(info.root.expires)}) in {location.metadata_dir}",
          file=sys.stderr if _protocol_mode(args) else sys.stdout)


def _protocol_mode(args: argparse.Namespace) -> bool:
    return args.metadata_dir is not None


def _when(value) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    return str(value)


def _make_updater(location: Location, fetcher=None, target_dir=None):
    from .updater import Updater

    if not os.path.exists(location.root_path()):
        raise CliError(
            f"no trusted root in {location.metadata_dir}: run 'tufc init' first"
        )
    target_base_url = None
    if location.metadata_url is not None:
        target_base_url = location.resolved_target_base_url()
    return _step(
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
    _step("refresh", updater.refresh)
    logger.info("refresh complete")
    if not _protocol_mode(args):
        print(f"Up to date: {_versions(location.metadata_dir)}")


def _versions(metadata_dir: str) -> str:
    """"root v3, timestamp v8, ..." from the trusted top-level files."""
    from .metadata import Metadata

    parts = []
    for role in ("root", "timestamp", "snapshot", "targets"):
        try:
            with open(os.path.join(metadata_dir, f"{role}.json"), "rb") as f:
                signed = Metadata.from_bytes(f.read()).signed
        except (OSError, exceptions.TufcError):
            continue
        parts.append(f"{role} v{signed.version}")
    return ", ".join(parts)


def _step(what: str, func, *func_args):
    """Run one step; a failure becomes a CliError naming the step."""
    try:
        return func(*func_args)
    except CliError:
        raise
    except (exceptions.TufcError, OSError, ValueError) as exc:
        raise CliError(f"{what}: {explain(exc)}") from exc


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

    progress = _Progress() if sys.stderr.isatty() else None
    fetcher = None
    url = location.require_url()
    if progress is not None and url.startswith(("http://", "https://")):
        fetcher = _progress_fetcher(progress)
    updater = _make_updater(location, fetcher, target_dir=out_dir)
    _step("refresh", updater.refresh)

    for name in names:
        info = _step(f"target {name!r}: looking it up", updater.get_targetinfo, name)
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
            path = _step(
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


class _Progress:
    """A one-line progress bar on stderr (only used when it is a terminal)."""

    def __init__(self):
        self.name = ""
        self.total = 0
        self.done = 0
        self.active = False

    def start(self, name: str, total: int) -> None:
        self.name, self.total, self.done, self.active = name, total, 0, True
        self._draw()

    def advance(self, count: int) -> None:
        if self.active:
            self.done += count
            self._draw()

    def _draw(self) -> None:
        width = 30
        fraction = min(1.0, self.done / self.total) if self.total else 1.0
        bar = "#" * int(width * fraction)
        sys.stderr.write(
            f"\r{self.name[:30]:30} [{bar:{width}}] {fraction:4.0%} "
            f"{self.done}/{self.total} B"
        )
        sys.stderr.flush()

    def finish(self) -> None:
        if self.active:
            sys.stderr.write("\n")
            self.active = False


def _progress_fetcher(progress: _Progress):
    """A fetcher that reports target download progress to ``progress``."""
    from .fetcher import FetcherInterface, Urllib3Fetcher

    class ProgressFetcher(FetcherInterface):
        def __init__(self):
            self._inner = Urllib3Fetcher()

        def _fetch(self, url: str):
            for chunk in self._inner.fetch(url):
                progress.advance(len(chunk))
                yield chunk

    return ProgressFetcher()


def cmd_info(args: argparse.Namespace, location: Location) -> None:
    from .metadata import Metadata, Targets

    updater = _make_updater(location)
    _step("refresh", updater.refresh)
    name = args.target
    info = _step(f"target {name!r}: looking it up", updater.get_targetinfo, name)
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
              f"expires {_when(md.signed.expires)})")
    for role_name in ("root", "timestamp", "snapshot", "targets"):
        md = roles.get(role_name)
        if md is not None:
            print(f"{role_name + ':':10} version {md.signed.version}, "
                  f"expires {_when(md.signed.expires)}")


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


def parse_time(text: str) -> datetime.datetime:
    """RFC 3339 (``2030-01-01T00:00:00Z``) or a date; naive means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CliError(
            f"--as-of: not a time: {text!r} (use e.g. 2030-01-01T00:00:00Z)"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc)


def cmd_verify(args: argparse.Namespace, location: Location | None) -> None:
    from ._trusted import TrustedMetadataSet
    from .metadata import Targets

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

    trusted = _step("root", TrustedMetadataSet, read("root"), as_of)
    print(f"root       version {trusted.root.version}: self-signed by a threshold")
    for role, update in (
        ("timestamp", trusted.update_timestamp),
        ("snapshot", trusted.update_snapshot),
        ("targets", trusted.update_targets),
    ):
        signed = _step(role, update, read(role))
        print(f"{role:10} version {signed.version}: valid as of {_when(as_of)} "
              f"(expires {_when(signed.expires)})")

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
            child_signed = _step(
                child.name, trusted.update_delegated_targets,
                read(child.name), child.name, parent,
            )
            print(f"{child.name:10} version {child_signed.version}: valid "
                  f"(delegated by {parent})")
            if isinstance(child_signed, Targets):
                queue.append((child.name, child_signed))
    print(f"OK: {folder} is valid as of {_when(as_of)}")


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(verbose=bool(args.verbose))


# --- entry point --------------------------------------------------------------


def _setup_logging(verbosity: int) -> None:
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tufc: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 or 1)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (1)
        return EXIT_OK if exc.code in (0, None) else EXIT_FAILURE
    if args.command is None:
        build_parser().print_help(sys.stderr)
        return EXIT_FAILURE
    _setup_logging(args.verbose or 0)
    try:
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "verify" and args.folder and args.metadata_dir is None \
                and args.metadata_url is None:
            cmd_verify(args, None)
            return EXIT_OK
        location = Location(args)
        handler = {
            "init": cmd_init,
            "refresh": cmd_refresh,
            "download": cmd_download,
            "info": cmd_info,
            "verify": cmd_verify,
        }[args.command]
        handler(args, location)
        return EXIT_OK
    except CliError as exc:
        _report(args, str(exc), exc)
    except KeyboardInterrupt:
        _report(args, "interrupted", None)
    except BrokenPipeError:  # e.g. `tufc demo | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except Exception as exc:  # expected tufc failures outside a _step, or a bug
        if isinstance(exc, (exceptions.TufcError, OSError)):
            _report(args, explain(exc), exc)
        else:
            _report(args, f"internal error: {type(exc).__name__}: {exc}", exc)
    return EXIT_FAILURE


def _report(args: argparse.Namespace, message: str, exc) -> None:
    if exc is not None and (args.verbose or 0) >= 2:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    command = getattr(args, "command", None)
    prefix = f"tufc {command}" if command else "tufc"
    print(f"{prefix}: error: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
