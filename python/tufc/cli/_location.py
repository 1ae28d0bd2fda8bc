"""Where a client's trusted metadata and settings live, and the options
that say so (``--repo``, ``--metadata-dir``, ...).

People name a repository by URL and get a per-user folder keyed by it;
conformance harnesses name the folder (``--metadata-dir``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import urllib.parse

from .. import _atomic
from ._common import CliError

SETTINGS_FILE = "repository.json"


# The options naming the repository and the folders, each as the argparse
# flags, keywords and help it gets.
_OPTIONS = {
    "repo": (("--repo", "--metadata-url"), dict(
        dest="metadata_url", metavar="URL",
        help="base URL of the repository's metadata")),
    "metadata-dir": (("--metadata-dir",), dict(
        metavar="DIR",
        help="folder of trusted metadata (default: a per-user folder keyed "
        "by the repository URL)")),
    "target-base-url": (("--target-base-url",), dict(
        metavar="URL",
        help="base URL of the target files (default: the one saved by init, "
        "else METADATA_URL/../targets/)")),
    "target-dir": (("--target-dir",), dict(
        metavar="DIR",
        help="folder for downloaded targets, named as the conformance "
        "protocol's clients name them")),
    "target-name": (("--target-name",), dict(
        dest="target_names", action="append", metavar="PATH",
        help="a target to download (repeatable; conformance form)")),
}
ALL = tuple(_OPTIONS)


def add_location_options(
    parser: argparse.ArgumentParser, nested: bool, names=ALL
) -> None:
    """Add the location options ``names`` to ``parser``.

    All are accepted before the subcommand (the conformance protocol's
    form) and the ones a command takes after it (what people type).  After
    it they must not reset values given before it, hence SUPPRESS there.
    """
    group = parser.add_argument_group("repository and folders")
    for name in names:
        flags, keywords = _OPTIONS[name]
        keywords = dict(keywords, default=argparse.SUPPRESS if nested else None)
        group.add_argument(*flags, **keywords)


def check_url(option: str, url: str) -> None:
    """A one-line error for what is not an http(s) or file URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return
    if parts.scheme.lower() == "file":
        return
    raise CliError(
        f"{option}: not a URL: {url!r} (it needs its scheme: "
        "https://..., http://... or file://...)"
    )


def with_slash(url: str) -> str:
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
    url = with_slash(metadata_url)
    parts = urllib.parse.urlsplit(url)
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", parts.netloc + parts.path)
    readable = readable.strip("_.")[:64] or "repository"
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return os.path.join(data_home(), "tufc", f"{readable}-{digest}")


def default_target_base_url(metadata_url: str) -> str:
    """``.../metadata/`` -> ``.../targets/``; anything else -> ``URL/targets/``."""
    url = with_slash(metadata_url)
    if url.endswith("/metadata/"):
        return url[: -len("metadata/")] + "targets/"
    return url + "targets/"


class Location:
    """The folders and URLs one invocation works with."""

    def __init__(self, args: argparse.Namespace):
        self.metadata_url: str | None = args.metadata_url
        self.target_base_url: str | None = args.target_base_url
        if self.metadata_url is not None:
            check_url("--repo", self.metadata_url)
        if self.target_base_url is not None:
            check_url("--target-base-url", self.target_base_url)
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
        write_file(
            self.settings_path,
            json.dumps(settings, indent=1, sort_keys=True).encode("utf-8"),
        )

    def require_url(self) -> str:
        if self.metadata_url is None:
            raise CliError("this command needs the repository URL: --repo URL")
        return with_slash(self.metadata_url)

    def resolved_target_base_url(self) -> str:
        if self.target_base_url is not None:
            return with_slash(self.target_base_url)
        return default_target_base_url(self.require_url())

    def root_path(self) -> str:
        return os.path.join(self.metadata_dir, "root.json")


def write_file(path: str, data: bytes) -> None:
    """``_atomic.write_atomic``, creating the folder first."""
    folder = os.path.dirname(path) or os.curdir
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {folder}: {exc.strerror}") from exc
    _atomic.write_atomic(path, data)
