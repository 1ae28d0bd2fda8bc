"""``tufc repo verify``, run as a subprocess on repositories python-tuf built:
one-line verdict, summary, every problem; exit 0 only when nothing was found."""

from __future__ import annotations

import json
import os

from tests.repo_builder import RepoBuilder
from tests.test_cli import one_line_error, run


def binned(tmp_path):
    repo = RepoBuilder()
    repo.add_succinct_roles("targets", 3, "bins")
    for i in range(20):
        path = f"packages/p{i}.tar.gz"
        repo.add_target(path, b"x" * i, role=repo.bin_for("targets", path))
    repo.publish()
    repo.write(tmp_path / "repo")
    return repo, tmp_path / "repo"


def test_healthy(tmp_path):
    repo, folder = binned(tmp_path)
    result = run("repo", "verify", str(folder), "--targets", str(folder / "targets"))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("OK: ") and "12 roles, 20 targets" in lines[0]
    assert any(line.split() == ["targets", "20"] for line in lines)
    for keyid in repo.root.roles["root"].keyids:
        assert keyid in result.stdout  # the trusted root's keys, with fingerprints


def test_problems_listed_and_exit_1(tmp_path):
    repo, folder = binned(tmp_path)
    os.remove(folder / "metadata" / "1.bins-2.json")
    (folder / "metadata" / "1.bins-5.json").write_bytes(b"{\"signed\": ")
    result = run("repo", "verify", str(folder))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    out = result.stdout
    assert out.startswith("FAIL: ")
    assert "error: missing-metadata [bins-2 1.bins-2.json]" in out
    assert "error: truncated [bins-5 1.bins-5.json]" in out


def test_json_and_expiring_soon_is_exit_1(tmp_path):
    repo, folder = binned(tmp_path)
    result = run("repo", "verify", str(folder), "--json", "--expires-within", "36500000")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is True  # warnings only
    assert {p["kind"] for p in report["problems"]} == {"expires-soon"}
    later = run("repo", "verify", str(folder), "--json", "--as-of", "2100-01-01T00:00:00Z")
    assert {p["kind"] for p in json.loads(later.stdout)["problems"]} == {"expired"}


def test_previous_and_records(tmp_path):
    import hashlib
    import shutil

    repo, folder = binned(tmp_path)
    shutil.copytree(folder / "metadata", tmp_path / "old")
    gone = "packages/p3.tar.gz"
    del repo.md[repo.bin_for("targets", gone)].signed.targets[gone]
    repo.bump(repo.bin_for("targets", gone))
    repo.publish()
    repo.write(folder)
    result = run("repo", "verify", str(folder), "--previous", str(tmp_path / "old"))
    assert result.returncode == 0, result.stdout
    assert f"removed  {gone}" in result.stdout
    records = tmp_path / "records.csv"
    records.write_text("path,length,blake2b-256\n" + "".join(
        f"packages/p{i}.tar.gz,{i},{hashlib.blake2b(b'x' * i, digest_size=32).hexdigest()}\n"
        for i in range(20)))
    result = run("repo", "verify", str(folder), "--records", str(records))
    assert result.returncode == 1
    assert f"record-missing [{repo.bin_for('targets', gone)} {gone}]" in result.stdout


def test_bad_options_are_one_line(tmp_path):
    _, folder = binned(tmp_path)
    assert "--as-of" in one_line_error(run("repo", "verify", str(folder), "--as-of", "soon"))
    assert "--records" in one_line_error(run("repo", "verify", str(folder), "--records", "/no/such"))
    assert "--expires-within" in one_line_error(
        run("repo", "verify", str(folder), "--expires-within", "-1"))
    result = run("repo", "verify", str(tmp_path / "nothing"))
    assert result.returncode == 1 and "missing-metadata [root 1.root.json]" in result.stdout
