"""The ``tufc`` command line, run as a subprocess (``python -m tufc``).

Repositories come from python-tuf (tests/repo_builder.py), served over real
HTTP on 127.0.0.1 (tests/http_repo.py).  The scenarios follow the conformance
client protocol (../shared/docs/client-cli-protocol.md): exit codes 0 and 1
only, the exact request sequence of a plain refresh, target caching, quoted
role names, expiry, rollback, key rotation, unknown hash algorithms; then
the commands for people (init by pinned key ids or trust on first use,
download, info, verify) and their error messages.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import urllib.parse
from datetime import datetime, timezone

import pytest

pytest.importorskip("tuf")  # the independent producer of test repositories

from tuf.api.metadata import Metadata  # noqa: E402

from tests.http_repo import HttpRepo  # noqa: E402
from tests.repo_builder import RepoBuilder  # noqa: E402

TIMEOUT = 120


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m tufc ARGS``; every run must exit exactly 0 or 1."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "tufc", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=full_env,
    )
    assert result.returncode in (0, 1), (result.returncode, result.stderr)
    return result


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The failure report: exit 1, exactly one line, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error_lines = [line for line in lines if "error:" in line]
    assert len(error_lines) == 1, result.stderr
    return error_lines[0]


class Served:
    """A RepoBuilder published on an HttpRepo under metadata/ and targets/."""

    def __init__(self, builder: RepoBuilder, http: HttpRepo):
        self.builder = builder
        self.http = http
        self.sync()

    @property
    def metadata_url(self) -> str:
        return self.http.url + "metadata/"

    @property
    def targets_url(self) -> str:
        return self.http.url + "targets/"

    def sync(self) -> None:
        """Serve exactly what the builder has published (decoded paths)."""
        files = {}
        for name, data in self.builder.metadata_files().items():
            files["metadata/" + urllib.parse.unquote(name)] = data
        for name, data in self.builder.target_files().items():
            files["targets/" + name] = data
        self.http.files = files

    def requests(self) -> list[str]:
        return self.http.paths_requested()


@pytest.fixture
def served():
    builder = RepoBuilder()
    builder.add_target("file.txt", b"hello, world\n")
    builder.add_target("dir/sub/data.bin", bytes(range(256)) * 8)
    builder.publish()
    with HttpRepo() as http:
        yield Served(builder, http)


@pytest.fixture
def client(tmp_path, served):
    """A protocol-style client: DIR initialized from the served 1.root.json."""
    root_file = tmp_path / "root-v1.json"
    root_file.write_bytes(served.builder.root_bytes(1))
    metadata_dir = tmp_path / "metadata"
    result = run("--metadata-dir", str(metadata_dir), "init", str(root_file))
    assert result.returncode == 0, result.stderr
    return Client(served, metadata_dir, tmp_path / "targets")


class Client:
    def __init__(self, served: Served, metadata_dir, target_dir):
        self.served = served
        self.metadata_dir = metadata_dir
        self.target_dir = target_dir

    def refresh(self) -> subprocess.CompletedProcess:
        return run(
            "--metadata-url", self.served.metadata_url,
            "--metadata-dir", str(self.metadata_dir),
            "refresh",
        )

    def download(self, *names: str) -> subprocess.CompletedProcess:
        args = ["--metadata-url", self.served.metadata_url,
                "--metadata-dir", str(self.metadata_dir)]
        for name in names:
            args += ["--target-name", name]
        args += ["--target-dir", str(self.target_dir),
                 "--target-base-url", self.served.targets_url, "download"]
        return run(*args)

    def stored(self) -> dict[str, bytes]:
        """The *.json files directly in the metadata folder."""
        return {
            entry.name: entry.read_bytes()
            for entry in self.metadata_dir.iterdir()
            if entry.name.endswith(".json")
        }


# --- conformance protocol ----------------------------------------------------


def test_init_stores_exact_root_bytes(client, served):
    assert (client.metadata_dir / "root.json").read_bytes() == served.builder.root_bytes(1)
    assert served.requests() == []  # init never touches the network


def test_init_refuses_root_not_signed_by_its_threshold(tmp_path, served):
    builder = served.builder
    builder.set_threshold("root", 2)  # one root key, threshold 2
    builder.sign("root")
    root_file = tmp_path / "root.json"
    root_file.write_bytes(builder.md["root"].to_bytes())
    result = run("--metadata-dir", str(tmp_path / "m"), "init", str(root_file))
    line = one_line_error(result)
    assert "root" in line and "signature" in line
    assert not (tmp_path / "m" / "root.json").exists()


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"signed": {}, "signatures": []}'])
def test_init_refuses_malformed_root(tmp_path, content):
    root_file = tmp_path / "root.json"
    root_file.write_bytes(content)
    one_line_error(run("--metadata-dir", str(tmp_path / "m"), "init", str(root_file)))
    assert not (tmp_path / "m" / "root.json").exists()


def test_init_missing_file(tmp_path):
    line = one_line_error(
        run("--metadata-dir", str(tmp_path / "m"), "init", str(tmp_path / "nope.json"))
    )
    assert "nope.json" in line


def test_plain_refresh_requests_exactly_four_files(client, served):
    builder = served.builder
    assert client.refresh().returncode == 0
    assert served.requests() == [
        "/metadata/2.root.json",
        "/metadata/timestamp.json",
        f"/metadata/{builder.md['snapshot'].signed.version}.snapshot.json",
        f"/metadata/{builder.md['targets'].signed.version}.targets.json",
    ]
    stored = client.stored()
    assert stored == {
        "root.json": builder.root_bytes(1),
        "timestamp.json": builder.role_bytes("timestamp"),
        "snapshot.json": builder.role_bytes("snapshot"),
        "targets.json": builder.role_bytes("targets"),
    }


def test_fresh_repository_refresh_requests(tmp_path):
    """The protocol's exact sequence on a repository at version 1 everywhere."""
    builder = RepoBuilder()
    with HttpRepo() as http:
        served = Served(builder, http)
        root_file = tmp_path / "root.json"
        root_file.write_bytes(builder.root_bytes(1))
        metadata_dir = str(tmp_path / "metadata")
        assert run("--metadata-dir", metadata_dir, "init", str(root_file)).returncode == 0
        result = run("--metadata-url", served.metadata_url,
                     "--metadata-dir", metadata_dir, "refresh")
        assert result.returncode == 0, result.stderr
        assert served.requests() == [
            "/metadata/2.root.json",
            "/metadata/timestamp.json",
            "/metadata/1.snapshot.json",
            "/metadata/1.targets.json",
        ]


def test_second_refresh_uses_cached_snapshot_and_targets(client, served):
    assert client.refresh().returncode == 0
    served.http.clear_requests()
    assert client.refresh().returncode == 0
    assert served.requests() == ["/metadata/2.root.json", "/metadata/timestamp.json"]


def test_download_fetches_each_target_once(client, served):
    result = client.download("file.txt", "dir/sub/data.bin")
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(b"hello, world\n").hexdigest()
    assert served.http.count(f"targets/{digest}.file.txt") == 1
    files = {p.name: p.read_bytes() for p in client.target_dir.rglob("*") if p.is_file()}
    assert b"hello, world\n" in files.values()
    assert bytes(range(256)) * 8 in files.values()

    served.http.clear_requests()
    result = client.download("file.txt")
    assert result.returncode == 0, result.stderr
    assert not [p for p in served.requests() if p.startswith("/targets/")]


def test_changed_artifact_is_downloaded_again_to_the_same_name(client, served):
    assert client.download("file.txt").returncode == 0
    (path,) = [p for p in client.target_dir.rglob("*") if p.is_file()]
    served.builder.add_target("file.txt", b"version two\n")
    served.builder.publish()
    served.sync()
    result = client.download("file.txt")
    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == b"version two\n"
    assert [p for p in client.target_dir.rglob("*") if p.is_file()] == [path]


def test_download_stops_at_first_missing_target(client, served):
    result = client.download("file.txt", "missing.txt", "dir/sub/data.bin")
    line = one_line_error(result)
    assert "missing.txt" in line and "not found" in line
    assert served.http.count("targets/dir/sub/" + served.builder.target_name(
        "dir/sub/data.bin").rpartition("/")[2]) == 0


def test_tampered_target_is_refused_and_not_kept(client, served):
    name = served.builder.target_name("file.txt")
    served.http.files["targets/" + name] = b"hello, World\n"  # same length
    line = one_line_error(client.download("file.txt"))
    assert "file.txt" in line and "hash" in line
    if client.target_dir.exists():
        assert not [p for p in client.target_dir.rglob("*") if p.is_file()]


@pytest.mark.parametrize("role_name", ["?", "#", "/x", "../x", "a b%"])
def test_role_names_are_quoted(client, served, role_name):
    builder = served.builder
    builder.add_delegation("targets", role_name, paths=["delegated/*"])
    builder.add_target("delegated/t.txt", b"delegated\n", role=role_name)
    builder.publish()
    served.sync()
    result = client.download("delegated/t.txt")
    assert result.returncode == 0, result.stderr
    quoted = urllib.parse.quote(role_name, safe="")
    raw = [r.raw_path for r in served.http.requests]
    assert f"/metadata/1.{quoted}.json" in raw
    assert (client.metadata_dir / f"{quoted}.json").read_bytes() == builder.role_bytes(role_name)
    # nothing escaped the metadata folder
    outside = [p for p in client.metadata_dir.parent.rglob("*.json")
               if client.metadata_dir not in p.parents and p.name != "root-v1.json"]
    assert outside == []


def test_expired_timestamp_fails(client, served):
    served.builder.expire("timestamp")
    served.builder.publish()
    served.sync()
    line = one_line_error(client.refresh())
    assert "timestamp" in line and "expir" in line


def test_timestamp_rollback_fails(client, served):
    old = served.builder.role_bytes("timestamp")
    served.builder.bump("timestamp")
    served.builder.publish()
    served.sync()
    assert client.refresh().returncode == 0
    served.http.files["metadata/timestamp.json"] = old
    line = one_line_error(client.refresh())
    assert "timestamp" in line and "version" in line
    # the newer trusted timestamp is kept
    assert (client.metadata_dir / "timestamp.json").read_bytes() == served.builder.role_bytes("timestamp")


@pytest.mark.parametrize(
    "meta_hashes",
    [False, True],
    ids=["versions", "hashes"],
)
def test_targets_rollback_in_new_snapshot_fails(tmp_path, meta_hashes):
    """The cached snapshot is the rollback baseline, even when the new
    snapshot is shorter than the cached one (10 -> 9 saves a byte)."""
    builder = RepoBuilder(meta_hashes=meta_hashes)
    while builder.md["targets"].signed.version < 10:
        builder.bump("targets")
        builder.publish()
    with HttpRepo() as http:
        served = Served(builder, http)
        root_file = tmp_path / "root.json"
        root_file.write_bytes(builder.root_bytes(1))
        client = Client(served, tmp_path / "metadata", tmp_path / "targets")
        assert run("--metadata-dir", str(client.metadata_dir), "init", str(root_file)).returncode == 0
        assert client.refresh().returncode == 0
        builder.md["targets"].signed.version = 8
        builder.bump("targets")  # published as version 9
        builder.publish()
        served.sync()
        line = one_line_error(client.refresh())
        assert "targets" in line and "version" in line
        stored = Metadata.from_bytes((client.metadata_dir / "snapshot.json").read_bytes())
        assert stored.signed.meta["targets.json"].version == 10


def test_root_key_rotation(client, served):
    served.builder.rotate_keys("root")
    served.builder.publish()
    served.builder.rotate_keys("timestamp")
    served.builder.publish()
    served.sync()
    assert client.refresh().returncode == 0
    assert (client.metadata_dir / "root.json").read_bytes() == served.builder.root_bytes(3)


def test_root_signed_by_old_keys_only_fails(client, served):
    builder = served.builder
    old_signers = list(builder.signers["root"])
    builder.rotate_keys("root")
    builder.root.version += 1
    builder.sign("root", old_signers)  # new root not signed by its own keys
    served.sync()
    line = one_line_error(client.refresh())
    assert "root" in line and "signature" in line


def test_unknown_hash_algorithm_fails_closed(client, served):
    builder = served.builder
    target = builder.md["targets"].signed.targets["file.txt"]
    target.hashes["made-up-hash"] = "00" * 32
    builder.bump("targets")
    builder.publish()
    served.sync()
    result = client.download("file.txt")
    one_line_error(result)
    assert not client.target_dir.exists() or not any(client.target_dir.iterdir())


def test_only_trusted_metadata_in_metadata_dir(client, served):
    assert client.download("file.txt").returncode == 0
    names = set(client.stored())
    assert names == {"root.json", "timestamp.json", "snapshot.json", "targets.json"}


@pytest.mark.parametrize(
    "make_signer",
    [
        pytest.param(lambda s: s.generate_ecdsa(), id="ecdsa-sha2-nistp256"),
        pytest.param(lambda s: s.generate_rsa(scheme="rsassa-pss-sha256"), id="rsassa-pss-sha256"),
        pytest.param(lambda s: s.generate_rsa(scheme="rsa-pkcs1v15-sha256"), id="rsa-pkcs1v15-sha256"),
    ],
)
def test_key_types(client, served, make_signer):
    """Every role signed with another key type, by python-tuf's signers."""
    from securesystemslib.signer import CryptoSigner

    builder = served.builder
    for role in ("root", "timestamp", "snapshot", "targets"):
        signer = make_signer(CryptoSigner)
        for keyid in list(builder.root.roles[role].keyids):
            builder.root.revoke_key(keyid, role)
        builder.root.add_key(signer.public_key, role)
        builder.signers[role] = [signer]
        builder.bump(role)
    builder.publish()
    served.sync()
    result = client.download("file.txt")
    assert result.returncode == 0, result.stderr
    assert (client.metadata_dir / "root.json").read_bytes() == builder.root_bytes(2)


def _libfaketime():
    for folder in ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime",
                   "/usr/lib/faketime", "/usr/local/lib/faketime"):
        path = pathlib.Path(folder) / "libfaketime.so.1"
        if path.exists():
            return str(path)
    return None


@pytest.mark.skipif(_libfaketime() is None, reason="libfaketime not installed")
def test_expiry_follows_the_libc_clock(client, served):
    """Under faketime the client judges expiry by the faked clock."""
    base = ["--metadata-url", served.metadata_url,
            "--metadata-dir", str(client.metadata_dir), "refresh"]
    env = dict(os.environ, FAKETIME="@2100-01-01 00:00:00", LD_PRELOAD=_libfaketime())
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        # libfaketime deadlocks inside ASan's start-up, and the sanitizer
        # build of the native core cannot load without ASan preloaded. The
        # clock is read in Python, whichever core runs: use the pure one.
        env["TUFC_PURE_PYTHON"] = "1"
        env.pop("TUFC_REQUIRE_NATIVE", None)
    faked = subprocess.run(
        [sys.executable, "-m", "tufc", *base],
        capture_output=True, text=True, timeout=TIMEOUT, env=env,
    )
    assert faked.returncode == 1, faked.stderr
    assert "expir" in faked.stderr
    assert client.refresh().returncode == 0


@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")
def test_progress_bar_only_on_a_terminal(tmp_path, client, served):
    import pty

    base = ["--metadata-url", served.metadata_url,
            "--metadata-dir", str(client.metadata_dir), "download",
            "dir/sub/data.bin"]
    master, slave = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tufc", *base, "-o", str(tmp_path / "tty")],
            stdout=subprocess.PIPE, stderr=slave, timeout=TIMEOUT,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    assert result.returncode == 0
    assert b"100%" in b"".join(chunks)

    plain = run(*base, "-o", str(tmp_path / "plain"))
    assert plain.returncode == 0
    assert "%" not in plain.stderr


# --- exit codes and usage -----------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [[], ["--bogus"], ["refresh", "--no-such-option"], ["nosuchcommand"],
     ["init", "--threshold", "x"], ["refresh", "--timeout", "0"]],
)
def test_usage_errors_exit_1(args):
    result = run(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_help_exits_0():
    result = run("--help")
    assert result.returncode == 0
    for command in ("init", "refresh", "download", "info", "verify", "demo"):
        assert command in result.stdout


def test_refresh_without_init(tmp_path, served):
    line = one_line_error(run("--metadata-url", served.metadata_url,
                              "--metadata-dir", str(tmp_path / "empty"), "refresh"))
    assert "init" in line


def test_unreachable_server(client, served):
    served.http.stop()
    line = one_line_error(client.refresh())
    assert "refresh" in line


# --- commands for people --------------------------------------------------------


@pytest.fixture
def home(tmp_path):
    """An isolated per-user data folder."""
    return {"XDG_DATA_HOME": str(tmp_path / "data")}


def test_trust_on_first_use_then_download_by_repo_url(tmp_path, served, home):
    result = run("init", "--repo", served.metadata_url, "--trust-on-first-use", env=home)
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr and "verified against nothing" in result.stderr
    assert "SHA256:" in result.stderr
    for keyid in served.builder.root.roles["root"].keyids:
        public = served.builder.root.keys[keyid].keyval["public"]
        assert _ssh_fingerprint(public) in result.stderr
    for keyid in served.builder.root.roles["root"].keyids:
        assert keyid in result.stderr
    assert served.requests() == ["/metadata/1.root.json"]

    out = tmp_path / "out"
    result = run("download", "dir/sub/data.bin", "--repo", served.metadata_url,
                 "-o", str(out), env=home)
    assert result.returncode == 0, result.stderr
    assert (out / "data.bin").read_bytes() == bytes(range(256)) * 8

    served.http.clear_requests()
    result = run("download", "dir/sub/data.bin", "--repo", served.metadata_url,
                 "-o", str(out), env=home)
    assert result.returncode == 0, result.stderr
    assert not [p for p in served.requests() if p.startswith("/targets/")]


def test_network_init_never_silently_replaces_trust(served, home):
    args = ["init", "--repo", served.metadata_url, "--trust-on-first-use"]
    assert run(*args, env=home).returncode == 0
    served.http.clear_requests()
    line = one_line_error(run(*args, env=home))
    assert "--force" in line
    assert served.requests() == []
    assert run(*args, "--force", env=home).returncode == 0


def test_trust_on_first_use_refuses_root_not_self_signed(served, home):
    builder = served.builder
    builder.set_threshold("root", 2)
    builder.sign("root")
    served.sync()
    line = one_line_error(run("init", "--repo", served.metadata_url,
                              "--trust-on-first-use", env=home))
    assert "signature" in line



def test_trust_on_first_use_of_a_web_page(served, home):
    served.http.files["metadata/1.root.json"] = b"<html>Sign in</html>"
    served.http.headers["metadata/1.root.json"] = {"Content-Type": "text/html"}
    line = one_line_error(run("init", "--repo", served.metadata_url,
                              "--trust-on-first-use", env=home))
    assert served.metadata_url + "1.root.json is not JSON (Content-Type: text/html)" in line
    served.http.files.pop("metadata/1.root.json")
    line = one_line_error(run("init", "--repo", served.metadata_url,
                              "--trust-on-first-use", env=home))
    assert "HTTP 404" in line and "metadata URL?" in line

def test_pinned_root_keyids(served, home):
    keyids = served.builder.root.roles["root"].keyids
    args = ["init", "--repo", served.metadata_url]
    for keyid in keyids:
        args += ["--root-keyid", keyid]
    result = run(*args, "--threshold", "1", env=home)
    assert result.returncode == 0, result.stderr
    result = run("refresh", "--repo", served.metadata_url, env=home)
    assert result.returncode == 0, result.stderr
    targets_version = served.builder.md["targets"].signed.version
    assert f"targets v{targets_version}" in result.stdout


def _ssh_fingerprint(public_hex: str) -> str:
    """OpenSSH-style SHA256 fingerprint of raw Ed25519 key bytes."""
    import base64

    digest = hashlib.sha256(bytes.fromhex(public_hex)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def test_pinned_root_fingerprints(served, home):
    builder = served.builder
    args = ["init", "--repo", served.metadata_url]
    for keyid in builder.root.roles["root"].keyids:
        args += ["--root-keyid", _ssh_fingerprint(builder.root.keys[keyid].keyval["public"])]
    result = run(*args, env=home)
    assert result.returncode == 0, result.stderr


def test_pinned_fingerprint_of_another_key(served, home):
    other = _ssh_fingerprint("11" * 32)
    line = one_line_error(run("init", "--repo", served.metadata_url,
                              "--root-keyid", other, env=home))
    assert "pinned" in line


def test_pinned_root_keyids_mismatch(served, home):
    wrong = hashlib.sha256(b"not a key").hexdigest()
    line = one_line_error(run("init", "--repo", served.metadata_url,
                              "--root-keyid", wrong, env=home))
    assert "pinned" in line
    line = one_line_error(run("refresh", "--repo", served.metadata_url, env=home))
    assert "init" in line


def test_init_needs_a_trust_source(served, home):
    line = one_line_error(run("init", "--repo", served.metadata_url, env=home))
    assert "trust-on-first-use" in line


def test_info(client, served):
    builder = served.builder
    builder.add_delegation("targets", "team", paths=["team/*"])
    builder.add_target("team/tool.tgz", b"tool", role="team", custom={"build": 7})
    builder.publish()
    served.sync()
    result = run("--metadata-url", served.metadata_url,
                 "--metadata-dir", str(client.metadata_dir), "info", "team/tool.tgz")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "length:   4" in out
    assert hashlib.sha256(b"tool").hexdigest() in out
    assert '"build": 7' in out
    assert "'team'" in out and "expires 2099-01-01T00:00:00Z" in out


def test_verify_as_of(client, served):
    builder = served.builder
    builder.add_delegation("targets", "team", paths=["team/*"])
    builder.add_target("team/tool.tgz", b"tool", role="team")
    builder.publish()
    served.sync()
    assert client.download("team/tool.tgz").returncode == 0
    folder = str(client.metadata_dir)
    ok = run("verify", "--as-of", "2030-01-01T00:00:00Z", folder)
    assert ok.returncode == 0, ok.stderr
    assert "team" in ok.stdout
    line = one_line_error(run("verify", "--as-of", "2100-01-01T00:00:00Z", folder))
    assert "expir" in line
    line = one_line_error(run("verify", "--as-of", "yesterday", folder))
    assert "--as-of" in line


def test_verify_detects_tampered_snapshot(client, served):
    builder = served.builder
    assert client.refresh().returncode == 0
    (client.metadata_dir / "snapshot.json").write_bytes(
        builder.role_bytes("snapshot").replace(b"2099-", b"2098-", 1)
    )
    line = one_line_error(run("verify", str(client.metadata_dir)))
    assert "snapshot" in line


def test_verbose_logs_steps(client, served):
    result = run("-v", "--metadata-url", served.metadata_url,
                 "--metadata-dir", str(client.metadata_dir), "refresh")
    assert result.returncode == 0
    assert "refresh" in result.stderr


def test_repository_folder_is_keyed_by_url(monkeypatch, tmp_path):
    from tufc.cli import _location as cli

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    a = cli.repository_folder("https://example.com/metadata/")
    assert a == cli.repository_folder("https://example.com/metadata")
    assert a != cli.repository_folder("https://example.com/metadata_/")
    assert a.startswith(str(tmp_path / "tufc"))
    assert cli.default_target_base_url("https://h/repo/metadata") == "https://h/repo/targets/"


def test_parse_time():
    from tufc.cli import _common as cli

    assert cli.parse_time("2030-01-02T03:04:05Z") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert cli.parse_time("2030-01-02") == datetime(2030, 1, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "name, word",
    [("ExpiredMetadataError", "expir"), ("BadVersionNumberError", "rollback"),
     ("EqualVersionNumberError", "same version"), ("UnsignedMetadataError", "signature"),
     ("LengthOrHashMismatchError", "hash"), ("DownloadLengthMismatchError", "endless"),
     ("DeserializationError", "malformed"), ("UnsupportedAlgorithmError", "unsupported"),
     ("StorageError", "storage")],
)
def test_explain_names_the_check_in_one_line(name, word):
    from tufc import exceptions
    from tufc.cli import _common as cli

    line = cli.explain(getattr(exceptions, name)("first line\nsecond line"))
    assert word in line and "first line" in line and "\n" not in line
    assert "second" not in line


def test_explain_http_status():
    from tufc import exceptions
    from tufc.cli import _common as cli

    line = cli.explain(exceptions.DownloadHTTPError("HTTP error 500 for u", 500))
    assert "HTTP 500" in line


# --- round 2: real repositories, exact errors, no trust downgrade ----------------


def _rotate_root(served: Served, times: int = 1) -> None:
    for _ in range(times):
        served.builder.rotate_keys("root")
        served.builder.publish()
    served.sync()


def test_init_refuses_to_replace_trust_with_an_older_root(tmp_path, client, served):
    _rotate_root(served, 2)
    assert client.refresh().returncode == 0  # trusts root v3 now
    before = (client.metadata_dir / "root.json").read_bytes()
    root_v1 = tmp_path / "root-v1.json"
    line = one_line_error(run("--metadata-dir", str(client.metadata_dir), "init", str(root_v1)))
    assert "root version 3" in line and "older root: version 1" in line
    assert "--force" in line and str(root_v1) in line
    assert (client.metadata_dir / "root.json").read_bytes() == before

    result = run("--metadata-dir", str(client.metadata_dir), "init", str(root_v1), "--force")
    assert result.returncode == 0, result.stderr
    assert (client.metadata_dir / "root.json").read_bytes() == served.builder.root_bytes(1)
    # the replaced trust's roots are gone: the new root is the pinned one
    assert not list((client.metadata_dir / "root_history").glob("*.root.json"))
    assert client.refresh().returncode == 0


def test_init_refuses_another_repositorys_root_but_accepts_the_same_again(tmp_path, client):
    root_v1 = tmp_path / "root-v1.json"
    again = run("--metadata-dir", str(client.metadata_dir), "init", str(root_v1))
    assert again.returncode == 0, again.stderr
    other = tmp_path / "other-root.json"
    other.write_bytes(RepoBuilder().root_bytes(1))
    line = one_line_error(run("--metadata-dir", str(client.metadata_dir), "init", str(other)))
    assert "already trusts root version 1" in line and "a different root" in line
    assert (client.metadata_dir / "root.json").read_bytes() == root_v1.read_bytes()


def _swap_in(folder: pathlib.Path, other: RepoBuilder) -> None:
    """Replace the folder's current metadata with another repository's."""
    (folder / "root.json").unlink()  # a symlink into root_history/
    (folder / "root.json").write_bytes(other.role_bytes("root"))
    for role in ("timestamp", "snapshot", "targets"):
        (folder / f"{role}.json").write_bytes(other.role_bytes(role))


def test_verify_is_anchored_in_the_pinned_root(tmp_path, client, served):
    _rotate_root(served)
    assert client.refresh().returncode == 0
    ok = run("verify", str(client.metadata_dir))
    assert ok.returncode == 0, ok.stderr
    pinned = client.metadata_dir / "root_history" / "1.root.json"
    assert f"trust anchored in the pinned root {pinned}, version 1" in ok.stdout
    assert "root       version 2" in ok.stdout

    other = RepoBuilder()
    other.publish()
    _swap_in(client.metadata_dir, other)
    line = one_line_error(run("verify", str(client.metadata_dir)))
    assert "root.json is not reached from the pinned root" in line

    other_root = tmp_path / "other-root.json"
    other_root.write_bytes(other.root_bytes(1))
    line = one_line_error(run("verify", "--root", str(other_root), str(client.metadata_dir)))
    assert "root chain" in line and "signature" in line  # the folder's history is not other's


def test_verify_before_any_refresh_anchors_in_root_json(client):
    (client.metadata_dir / "timestamp.json").write_bytes(client.served.builder.role_bytes("timestamp"))
    line = one_line_error(run("verify", str(client.metadata_dir)))
    assert "snapshot: missing" in line
    result = run("verify", str(client.metadata_dir))
    assert f"reached from {client.metadata_dir / 'root.json'} itself" in result.stdout


def test_verify_with_root_file(tmp_path, client, served):
    assert client.refresh().returncode == 0
    root_file = tmp_path / "root-v1.json"
    ok = run("verify", "--root", str(root_file), "--metadata-dir", str(client.metadata_dir))
    assert ok.returncode == 0, ok.stderr
    assert f"trust anchored in {root_file} (--root), version 1" in ok.stdout
    other = tmp_path / "other.json"
    other.write_bytes(RepoBuilder().root_bytes(1))
    line = one_line_error(run("verify", "--root", str(other), str(client.metadata_dir)))
    assert "not reached from" in line


def test_download_refuses_two_targets_saved_as_one_file(tmp_path, client, served):
    served.builder.add_target("a/x.txt", b"first\n")
    served.builder.add_target("b/x.txt", b"second\n")
    served.builder.publish()
    served.sync()
    out = tmp_path / "out"
    line = one_line_error(run(
        "--metadata-url", served.metadata_url, "--metadata-dir", str(client.metadata_dir),
        "download", "a/x.txt", "b/x.txt", "-o", str(out)))
    assert "'a/x.txt' and 'b/x.txt'" in line and str(out / "x.txt") in line
    assert not [p for p in served.requests() if not p.startswith("/metadata/")]
    assert not out.exists()


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_sigterm_mid_download_removes_the_partial_file(tmp_path, client, served):
    import signal
    import time

    name = served.builder.target_name("dir/sub/data.bin")
    served.http.trickle["targets/" + name] = 0.05  # 2048 bytes: ~100 s
    out = tmp_path / "out"
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tufc", "--metadata-url", served.metadata_url,
         "--metadata-dir", str(client.metadata_dir), "download", "dir/sub/data.bin",
         "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and list(out.iterdir())
                   and served.http.sent.get("targets/" + name, 0) > 2):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    assert "terminated" in stderr and "Traceback" not in stderr
    assert list(out.iterdir()) == []


def test_dot_dot_segment_target_is_refused(tmp_path, client, served):
    """A signed target named ../evil.txt is not fetched at all (a server
    resolves "%2E%2E" as ".." and would serve it from outside the targets
    base URL): one line naming it, nothing saved, nothing requested."""
    served.builder.add_target("../evil.txt", b"signed\n")
    served.builder.publish()
    served.sync()
    served.http.files["evil.txt"] = b"signed\n"
    out = tmp_path / "out"
    result = run("--metadata-url", served.metadata_url, "--metadata-dir", str(client.metadata_dir),
                 "download", "../evil.txt", "-o", str(out))
    line = one_line_error(result)
    assert "'../evil.txt'" in line and "'..' segment" in line
    assert not out.exists() or list(out.iterdir()) == []
    assert all(p.startswith("/metadata/") for p in
               (r.raw_path for r in served.http.requests))


def test_as_of_on_refresh_info_and_download(tmp_path, client, served):
    served.builder.expire("timestamp")  # 2000-01-01
    served.builder.publish()
    served.sync()
    base = ["--metadata-url", served.metadata_url, "--metadata-dir", str(client.metadata_dir)]
    line = one_line_error(run(*base, "refresh"))
    version = served.builder.md["timestamp"].signed.version
    assert f"timestamp.json version {version} expired at 2000-01-01T00:00:00Z" in line
    assert "--as-of TIME" in line
    assert served.metadata_url + "timestamp.json" in line

    past = "1999-12-31T00:00:00Z"
    assert run(*base, "refresh", "--as-of", past).returncode == 0
    info = run(*base, "info", "file.txt", "--as-of", past)
    assert info.returncode == 0, info.stderr
    assert "length:   13" in info.stdout
    out = tmp_path / "out"
    result = run(*base, "download", "file.txt", "-o", str(out), "--as-of", past)
    assert result.returncode == 0, result.stderr
    assert (out / "file.txt").read_bytes() == b"hello, world\n"
    one_line_error(run(*base, "info", "file.txt"))  # now: still expired
    assert "--as-of" in one_line_error(run(*base, "refresh", "--as-of", "soon"))


def test_html_page_instead_of_metadata(client, served):
    page = b"<!DOCTYPE html><html><body>Log in to the Wi-Fi</body></html>\n"
    served.http.files["metadata/timestamp.json"] = page
    served.http.headers["metadata/timestamp.json"] = {"Content-Type": "text/html; charset=utf-8"}
    line = one_line_error(client.refresh())
    assert (served.metadata_url + "timestamp.json is not JSON "
            "(Content-Type: text/html; charset=utf-8)") in line


def test_signature_error_names_the_url(client, served):
    builder = served.builder
    builder.md["timestamp"].signed.version += 1
    builder.sign("timestamp", list(builder.signers["snapshot"]))  # wrong key
    served.sync()
    line = one_line_error(client.refresh())
    assert "signature" in line and served.metadata_url + "timestamp.json" in line


def test_tampered_target_error_names_the_url(client, served):
    name = served.builder.target_name("file.txt")
    served.http.files["targets/" + name] = b"hello, World\n"
    line = one_line_error(client.download("file.txt"))
    assert "hash" in line and served.targets_url + name in line


def test_stalled_server_reported_within_the_timeout(client, served):
    import time

    served.http.stall["metadata/timestamp.json"] = 60
    start = time.monotonic()
    line = one_line_error(run("--metadata-url", served.metadata_url,
                              "--metadata-dir", str(client.metadata_dir),
                              "refresh", "--timeout", "1"))
    assert time.monotonic() - start < 20  # one timeout and start-up, not 4
    assert "too slow" in line and served.metadata_url + "timestamp.json" in line
    assert served.http.count("metadata/timestamp.json") == 1


def test_consistent_snapshot_repository_copied_without_versioned_files(client, served):
    """A plain checkout of a published folder has only the plain names."""
    builder = served.builder
    files = {"metadata/1.root.json": builder.root_bytes(1)}
    for role in ("timestamp", "snapshot", "targets"):
        files[f"metadata/{role}.json"] = builder.role_bytes(role)
    served.http.files = files
    line = one_line_error(client.refresh())
    assert "HTTP 404" in line and "consistent snapshots" in line
    snapshot_version = builder.md["snapshot"].signed.version
    assert f"{served.metadata_url}{snapshot_version}.snapshot.json is missing" in line



def test_missing_target_without_consistent_snapshots_gets_no_such_hint(tmp_path):
    builder = RepoBuilder(consistent_snapshot=False)
    builder.add_target("releases/1.2.tar.gz", b"release\n")
    builder.publish()
    with HttpRepo() as http:
        served = Served(builder, http)
        root_file = tmp_path / "root.json"
        root_file.write_bytes(builder.root_bytes(1))
        client = Client(served, tmp_path / "metadata", tmp_path / "targets")
        assert run("--metadata-dir", str(client.metadata_dir), "init", str(root_file)).returncode == 0
        del http.files["targets/releases/1.2.tar.gz"]
        line = one_line_error(client.download("releases/1.2.tar.gz"))
    assert "HTTP 404" in line and served.targets_url + "releases/1.2.tar.gz" in line
    assert "consistent" not in line

def _make_read_only(folder: pathlib.Path):
    """Make ``folder`` and its subfolders unwritable, even for root; the
    function that undoes it, or None where that is not possible."""
    folders = [folder, *[p for p in folder.rglob("*") if p.is_dir()]]
    if os.geteuid() != 0:
        for path in folders:
            path.chmod(0o555)
        return lambda: [path.chmod(0o755) for path in folders]
    import shutil

    if shutil.which("chattr") is None:
        return None
    for path in folders:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            for done in folders:
                subprocess.run(["chattr", "-i", str(done)], capture_output=True)
            return None
    return lambda: [subprocess.run(["chattr", "-i", str(p)], check=True) for p in folders]


def test_read_only_trust_folder(tmp_path, client, served):
    assert client.refresh().returncode == 0
    served.builder.add_target("new.txt", b"new\n")
    served.builder.publish()
    served.sync()
    before = client.stored()
    undo = _make_read_only(client.metadata_dir)
    if undo is None:
        pytest.skip("cannot make a folder read-only here")
    try:
        base = ["--metadata-url", served.metadata_url, "--metadata-dir", str(client.metadata_dir)]
        result = run(*base, "info", "new.txt")
        download = run(*base, "download", "new.txt", "-o", str(tmp_path / "out"))
        verify = run("verify", str(client.metadata_dir))
        refresh = run(*base, "refresh")
    finally:
        undo()
    assert result.returncode == 0, result.stderr
    assert "length:   4" in result.stdout
    assert download.returncode == 0, download.stderr
    assert (tmp_path / "out" / "new.txt").read_bytes() == b"new\n"
    assert verify.returncode == 0, verify.stderr
    assert "local storage failed" in one_line_error(refresh)  # it is its job to write
    assert client.stored() == before


def test_protocol_invocations_keep_human_output(tmp_path, served):
    root_file = tmp_path / "root.json"
    root_file.write_bytes(served.builder.root_bytes(1))
    metadata_dir = str(tmp_path / "metadata")
    init = run("--metadata-dir", metadata_dir, "init", str(root_file))
    assert init.returncode == 0 and "Trusting root version 1" in init.stdout
    refresh = run("--metadata-url", served.metadata_url, "--metadata-dir", metadata_dir, "refresh")
    assert refresh.returncode == 0 and "Up to date: root v1" in refresh.stdout
    download = run("--metadata-url", served.metadata_url, "--metadata-dir", metadata_dir,
                   "--target-name", "file.txt", "--target-dir", str(tmp_path / "t"),
                   "--target-base-url", served.targets_url, "download")
    assert download.returncode == 0 and "file.txt: verified, saved to" in download.stdout


@pytest.mark.parametrize("url", ["example.com/metadata/", "127.0.0.1:8080/metadata", "ftp://h/m/"])
def test_url_without_scheme_is_one_line(tmp_path, home, url):
    result = run("init", "--repo", url, "--trust-on-first-use", env=home)
    line = one_line_error(result)
    assert f"--repo: not a URL: {url!r}" in line
    assert "Warning" not in result.stderr
    assert not (tmp_path / "data").exists()
    result = run("--metadata-url", url, "--metadata-dir", str(tmp_path / "m"), "refresh")
    assert "not a URL" in one_line_error(result)


def test_version():
    from tufc import __version__

    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"tufc {__version__}"


def test_the_console_script(tmp_path, client, served):
    """The ``tufc`` command pip installs (the other tests run ``python -m
    tufc``, the same main): its version, and a refresh and a download
    through it against the repository on 127.0.0.1."""
    import shutil
    import sysconfig

    from tufc import __version__

    script = shutil.which("tufc", path=sysconfig.get_path("scripts"))
    if script is None:
        pytest.skip("the tufc console script is not installed next to this python")
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=TIMEOUT)
    assert version.returncode == 0 and version.stdout.strip() == f"tufc {__version__}"
    base = [script, "--metadata-url", served.metadata_url, "--metadata-dir", str(client.metadata_dir)]
    refresh = subprocess.run([*base, "refresh"], capture_output=True, text=True, timeout=TIMEOUT)
    assert refresh.returncode == 0 and "Up to date: root v1" in refresh.stdout, refresh.stderr
    out = tmp_path / "out"
    download = subprocess.run([*base, "download", "dir/sub/data.bin", "-o", str(out)],
                              capture_output=True, text=True, timeout=TIMEOUT)
    assert download.returncode == 0, download.stderr
    assert (out / "data.bin").read_bytes() == bytes(range(256)) * 8


@pytest.mark.parametrize(
    "command, takes, not_takes",
    [("init", ["--repo", "--force", "--root-keyid", "--timeout"], ["--target-name", "--as-of", "-o"]),
     ("refresh", ["--repo", "--as-of", "--timeout"], ["--target-dir", "--target-name", "--force"]),
     ("download", ["--target-dir", "--target-name", "-o", "--as-of"], ["--force", "--root"]),
     ("info", ["--as-of", "--metadata-dir"], ["--target-dir", "-o", "--force"]),
     ("verify", ["--as-of", "--root"], ["--target-base-url", "--timeout", "--force"]),
     ("demo", ["-v"], ["--repo", "--metadata-dir", "--as-of"])],
)
def test_help_lists_only_the_options_a_command_takes(command, takes, not_takes):
    result = run(command, "--help")
    assert result.returncode == 0
    options = {word.strip("[],") for word in result.stdout.split() if word.startswith(("-", "[-"))}
    assert set(takes) <= options, options
    assert not set(not_takes) & options, options
    refused = run(command, not_takes[0], "x")
    assert refused.returncode == 1 and "unrecognized" in refused.stderr


def test_short_root_keyid_needs_the_full_key_id(served, home):
    keyid = served.builder.root.roles["root"].keyids[0]
    line = one_line_error(run("init", "--repo", served.metadata_url,
                              "--root-keyid", keyid[:8], env=home))
    assert f"--root-keyid {keyid[:8]}" in line and "full key ids are needed" in line
