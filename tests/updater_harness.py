"""The harness of the Updater tests (test_updater.py, test_updater_attacks.py).

``Impl`` is one client (tufc's Updater or python-tuf's), ``Env`` a
repository built with python-tuf (tests/repo_builder.py, an independent
producer) and served over HTTP on 127.0.0.1 (tests/http_repo.py).  The
fixtures that use them (``impl``, ``env``, ...) are in conftest.py.
"""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import urllib.parse

from tufc import exceptions
from tufc.updater import Updater, UpdaterConfig

from tests.http_repo import HttpRepo
from tests.repo_builder import RepoBuilder

# --- clients and repositories -------------------------------------------------------------------


class Impl:
    """One client implementation: tufc's Updater or python-tuf's."""

    def __init__(self, name: str):
        self.name = name
        if name == "tufc":
            self.updater_cls = Updater
            self.config_cls = UpdaterConfig
            self.exceptions = exceptions
        else:
            from tuf.api import exceptions as tuf_exceptions
            from tuf.ngclient import Updater as TufUpdater
            from tuf.ngclient import UpdaterConfig as TufConfig

            self.updater_cls = TufUpdater
            self.config_cls = TufConfig
            self.exceptions = tuf_exceptions

    @property
    def is_tufc(self) -> bool:
        return self.name == "tufc"

    def __repr__(self) -> str:
        return self.name


class Raises:
    """``with Raises("BadVersionNumberError"):`` expects exactly that class
    (by name: each library has its own classes)."""

    def __init__(self, name: str):
        self.name = name
        self.value = None

    def __enter__(self) -> Raises:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert exc_type is not None, f"expected {self.name}, nothing raised"
        if exc_type.__name__ != self.name:
            raise AssertionError(
                f"expected {self.name}, got {exc_type.__name__}: {exc}"
            ) from exc
        self.value = exc
        return True


class Env:
    """A RepoBuilder served over HTTP, and folders for one client."""

    def __init__(self, tmp_path: pathlib.Path, server: HttpRepo, **builder_kw):
        self.tmp = tmp_path
        self.server = server
        self.repo = RepoBuilder(**builder_kw)
        self.trusted_root = self.repo.root_bytes(1)
        self.metadata_dir = tmp_path / "metadata"
        self.target_dir = tmp_path / "targets"
        self.metadata_url = server.url + "metadata/"
        self.targets_url = server.url + "targets/"
        self.publish_files()

    def publish(self) -> None:
        self.repo.publish()
        self.publish_files()

    def publish_files(self) -> None:
        """Serve the builder's current files (timestamp.json last, so a
        concurrent client never sees a timestamp before its snapshot)."""
        # the server looks files up by decoded URL path: role names in
        # published names are quoted, so decode them here
        files = {
            "metadata/" + urllib.parse.unquote(n): d
            for n, d in self.repo.metadata_files().items()
        }
        files.update(
            {"targets/" + n: d for n, d in self.repo.target_files().items()}
        )
        timestamp = files.pop("metadata/timestamp.json", None)
        for name in list(self.server.files):
            if name not in files and name != "metadata/timestamp.json":
                del self.server.files[name]
        self.server.files.update(files)
        if timestamp is not None:
            self.server.files["metadata/timestamp.json"] = timestamp

    def updater(self, impl: Impl, bootstrap=..., config=None, **kw):
        if bootstrap is ...:
            bootstrap = self.trusted_root
        kw.setdefault("target_dir", str(self.target_dir))
        kw.setdefault("target_base_url", self.targets_url)
        return impl.updater_cls(
            str(self.metadata_dir),
            self.metadata_url,
            config=config,
            bootstrap=bootstrap,
            **kw,
        )

    def requests(self) -> list[str]:
        return self.server.paths_requested()


def listing(folder: pathlib.Path) -> set[str]:
    """Every file and symlink under ``folder``, relative, "/"-separated."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = os.path.relpath(os.path.join(dirpath, name), folder)
            found.add(rel.replace(os.sep, "/"))
    return found


def _cross_check_here() -> bool:
    """python-tuf's results do not depend on tufc's core: compare with it in
    the native pass only, not again in the pure and sanitizer passes."""
    if os.environ.get("TUFC_CROSS_CHECK", "").strip() not in ("", "0"):
        return True
    pure = os.environ.get("TUFC_PURE_PYTHON", "").strip() not in ("", "0")
    return not pure and os.environ.get("HYPOTHESIS_PROFILE") != "sanitizer"


def _reference_is_mirrored() -> bool:
    """tufc mirrors python-tuf 7.  python-tuf 6 (the newest for Python 3.9)
    differs where 7 fixed it: it checks a role reached through two
    delegators with the first one's keys only, and its fetcher lets
    urllib3's ReadTimeoutError escape.  Compare with 7 or later only."""
    major = importlib.metadata.version("tuf").split(".")[0]
    return major.isdigit() and int(major) >= 7


REFERENCE_MIRRORED = _reference_is_mirrored()

# Not generated at all outside the native pass (rather than skipped).
IMPLS = ["tufc", "python-tuf"] if _cross_check_here() and REFERENCE_MIRRORED else ["tufc"]


def add_delegated_target(env: Env, path="deleg/file.txt", data=b"delegated data"):
    env.repo.add_delegation("targets", "role1", paths=["deleg/*"])
    env.repo.add_target(path, data, role="role1")
