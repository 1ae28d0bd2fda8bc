"""A throwaway PostgreSQL server for the tests.

``initdb`` and ``pg_ctl`` (Debian's ``postgresql`` package) in a temporary
folder, listening only on a Unix socket in that folder, with ``fsync=off``:
nothing it holds outlives the test session.  PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.parse

__all__ = ["PgServer", "PgUnavailable", "find_bindir", "start_postgres"]

USER = "tufc"  # the superuser initdb creates (trust authentication)
TIMEOUT = 120
_NOT_FOR_THE_SERVER = {"LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS"}


class PgUnavailable(Exception):
    """No PostgreSQL server can be started on this machine (binaries or the
    unprivileged user to run them are missing)."""


def find_bindir() -> str | None:
    """The folder holding initdb and pg_ctl: $TUFC_PG_BINDIR, then
    ``pg_config --bindir``, then Debian's /usr/lib/postgresql/N/bin (newest),
    then $PATH."""
    candidates = []
    if os.environ.get("TUFC_PG_BINDIR"):
        candidates.append(os.environ["TUFC_PG_BINDIR"])
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                 timeout=30, check=True).stdout.strip()
            candidates.append(out)
        except (OSError, subprocess.SubprocessError):
            pass

    def version(path: str) -> tuple:
        return tuple(int(n) for n in re.findall(r"\d+", path))

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    if shutil.which("initdb"):
        candidates.append(os.path.dirname(os.path.realpath(shutil.which("initdb"))))
    for folder in candidates:
        if all(os.access(os.path.join(folder, tool), os.X_OK) for tool in ("initdb", "pg_ctl")):
            return folder
    return None


class PgServer:
    """One server in its own temporary folder: ``init()``, ``start()``,
    ``stop()`` (immediate: the tests never need its data again), and
    ``cleanup()`` to stop it and delete the folder."""

    def __init__(self):
        self.bindir = find_bindir()
        if self.bindir is None:
            raise PgUnavailable(
                "no PostgreSQL server binaries (initdb, pg_ctl) found: install Debian's"
                " 'postgresql' package or set TUFC_PG_BINDIR"
            )
        self._as = []
        self._owner = None
        if os.geteuid() == 0:
            runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
            try:
                self._owner = pwd.getpwnam("postgres")
            except KeyError:
                self._owner = None
            if runuser is None or self._owner is None:
                raise PgUnavailable(
                    "running as root, PostgreSQL needs an unprivileged 'postgres' user and runuser"
                )
            self._as = [runuser, "-u", "postgres", "--"]
        self.root = tempfile.mkdtemp(prefix="tufc-pg-")  # short: the socket path has a limit
        if self._owner is not None:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "log")
        self.running = False
        self._names = itertools.count(1)

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self._as, os.path.join(self.bindir, tool), *args]
        # the server is not under test: no sanitizer runtimes preloaded into it
        env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_THE_SERVER}
        # its own process group, so a hung tool is killed with its children
        proc = subprocess.Popen(cmd, cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**env, "LC_ALL": "C"}, start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"{tool} did not finish in {TIMEOUT} s (killed)") from None
        if proc.returncode != 0:
            log = ""
            if os.path.exists(self.log):
                with open(self.log, errors="replace") as f:
                    log = f.read()[-2000:]
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {stderr.strip()}\n{log}")

    def init(self) -> "PgServer":
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", USER, "-E", "UTF8",
                  "--locale=C", "--no-sync")
        return self

    def start(self) -> "PgServer":
        options = f"-k {self.root} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", self.log, "-w", "-t", "60", "start")
        self.running = True
        return self

    def stop(self) -> None:
        """Stop at once, as a crash would (``-m immediate``)."""
        if self.running:
            self.running = False
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.root} user={USER} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """The same as a postgresql:// URL (socket folder as ``host``)."""
        return f"postgresql://{USER}@/{dbname}?host={urllib.parse.quote(self.root, safe='')}"

    def create_database(self) -> str:
        """A new empty database; its name."""
        import psycopg

        name = f"tufc_test_{next(self._names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return name


def start_postgres() -> PgServer:
    """A started PgServer, or a pytest skip where none can be started (a
    failure instead when TUFC_REQUIRE_POSTGRES is set, as in CI)."""
    import pytest

    required = os.environ.get("TUFC_REQUIRE_POSTGRES", "") not in ("", "0")
    try:
        import psycopg  # noqa: F401

        server = PgServer()
    except (ImportError, PgUnavailable) as exc:
        if required:
            pytest.fail(f"TUFC_REQUIRE_POSTGRES is set but no PostgreSQL server can be started: {exc}")
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")
    try:
        server.init().start()
    except BaseException:
        server.cleanup()
        raise
    return server
