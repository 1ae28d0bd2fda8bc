"""``tufc repo ...``, run as a subprocess: a repository made, changed,
published and refreshed from the command line is one both clients accept;
every failure is one line and exit status 1."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.repo_clients import client_view
from tests.test_cli import one_line_error, run


def repo(*args):
    return run("repo", *args)


@pytest.fixture
def folder(tmp_path):
    result = repo("init", str(tmp_path / "r"), "--bins", "16", "--root-keys", "3",
                  "--root-threshold", "2")
    assert result.returncode == 0, result.stderr
    assert "16 bins" in result.stdout
    return tmp_path / "r"


def test_init_add_publish_remove(tmp_path, folder):
    (tmp_path / "pkg-1.0.tar.gz").write_bytes(b"sdist bytes")
    (tmp_path / "index.html").write_bytes(b"<html>")
    result = repo("add", str(folder), str(tmp_path / "pkg-1.0.tar.gz"), "--prefix", "packages/x")
    assert result.returncode == 0 and "enqueued 1 target" in result.stdout
    records = tmp_path / "r.jsonl"
    records.write_text(json.dumps({"path": "simple/pkg/index.html", "length": 6,
                                   "hashes": {"sha256": hashlib.sha256(b"<html>").hexdigest()}}) + "\n")
    assert repo("add", str(folder), "--records", str(records)).returncode == 0
    status = json.loads(repo("status", str(folder), "--json").stdout)
    assert status["pending"] == 2 and status["snapshot_version"] == 1
    result = repo("publish", str(folder))
    assert result.returncode == 0 and "published snapshot 2: 2 changes" in result.stdout
    view = client_view(folder, ["packages/x/pkg-1.0.tar.gz", "simple/pkg/index.html"])
    assert view["packages/x/pkg-1.0.tar.gz"] == (11, {
        "sha256": hashlib.sha256(b"sdist bytes").hexdigest(),
        "blake2b-256": hashlib.blake2b(b"sdist bytes", digest_size=32).hexdigest()})
    assert view["simple/pkg/index.html"][0] == 6

    result = repo("remove", str(folder), "packages/x/pkg-1.0.tar.gz", "--publish")
    assert result.returncode == 0 and "published snapshot 3" in result.stdout
    assert client_view(folder, ["packages/x/pkg-1.0.tar.gz"]) == {"packages/x/pkg-1.0.tar.gz": None}
    root = json.loads((folder / "metadata" / "1.root.json").read_text())["signed"]
    assert root["roles"]["root"]["threshold"] == 2 and len(root["roles"]["root"]["keyids"]) == 3


def test_import_and_refresh(tmp_path, folder):
    lines = ["path,length,sha256,blake2b-256"]
    for i in range(300):
        data = f"file {i}".encode()
        lines.append(f"p/{i}.whl,{len(data)},{hashlib.sha256(data).hexdigest()},"
                     f"{hashlib.blake2b(data, digest_size=32).hexdigest()}")
    (tmp_path / "files.csv").write_text("\n".join(lines) + "\n")
    result = repo("import", str(folder), str(tmp_path / "files.csv"))
    assert result.returncode == 0, result.stderr
    assert "imported 300 targets into 16 bins" in result.stdout
    assert client_view(folder, ["p/7.whl"])["p/7.whl"][0] == len(b"file 7")
    result = repo("refresh", str(folder))
    assert result.returncode == 0 and "nothing expires" in result.stdout


@pytest.mark.parametrize("args,message", [
    (("remove", "{f}", "no/such/path"), "no such target"),
    (("add", "{f}", "/no/such/file"), "cannot read /no/such/file"),
    (("add", "{f}"), "nothing to add"),
    (("init", "{f}"), "already holds a repository"),
    (("status", "{f}/../elsewhere"), "not a tufc repository"),
    (("init", "{f}2", "--bins", "1000"), "power of two"),
    (("publish", "{f}", "--database", "/no/such/dir/q.sqlite"), "queue database"),
])
def test_errors_are_one_line(folder, args, message):
    result = repo(*(a.replace("{f}", str(folder)) for a in args))
    assert result.returncode == 1
    assert message in one_line_error(result)


def test_bad_records_enqueue_nothing(tmp_path, folder):
    records = tmp_path / "bad.jsonl"
    records.write_text(json.dumps({"path": "../x", "length": 1, "hashes": {"sha256": "0" * 64}}) + "\n")
    result = repo("add", str(folder), "--records", str(records))
    assert result.returncode == 1 and "invalid change" in one_line_error(result)
    assert json.loads(repo("status", str(folder), "--json").stdout)["pending"] == 0


def test_ceremonies(tmp_path, folder):
    assert repo("add", str(folder), "--records", str(_one_record(tmp_path)), "--publish").returncode == 0
    result = repo("rotate-online", str(folder))
    assert result.returncode == 0, result.stderr
    assert "online key is now" in result.stdout and "root v2" in result.stdout
    result = repo("renew", str(folder), "targets", "--days", "400")
    assert result.returncode == 0 and "renewed targets; snapshot" in result.stdout
    assert repo("renew", str(folder), "root").returncode == 0
    assert client_view(folder, ["one"])["one"] is not None
    result = repo("rotate-online", str(folder), "--resume")
    assert result.returncode == 1 and "no online key rotation to resume" in one_line_error(result)


def _one_record(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"path": "one", "length": 1, "hashes": {"sha256": "0" * 64}}) + "\n")
    return path
