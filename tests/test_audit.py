"""tufc.repository.verify: whole-repository audits of repositories python-tuf
built, each with one or more problems planted, every problem reported by
name and the audit going on to report the rest."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import DelegatedRole, Delegations, TargetFile

from tufc.repository import AuditResult, Problem, verify
from tufc.repository import audit as audit_module
from tufc.repository.problems import KINDS
from tests.http_repo import HttpRepo
from tests.repo_builder import RepoBuilder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def found(result: AuditResult) -> set:
    """(kind, role, path) of every problem reported."""
    assert all(p.kind in KINDS for p in result.problems), result.problems
    return {(p.kind, p.role, p.path) for p in result.problems}


def binned(bit_length=3, count=40, **kw) -> RepoBuilder:
    """PEP 458's shape: targets delegates everything to hash bins."""
    repo = RepoBuilder(**kw)
    repo.add_succinct_roles("targets", bit_length, "bins")
    for i in range(count):
        path = f"packages/p{i}/p{i}-1.0.tar.gz"
        repo.add_target(path, b"x" * i, role=repo.bin_for("targets", path))
    repo.publish()
    return repo


def delegated() -> RepoBuilder:
    """Ordinary delegations: targets -> a (a/*) -> c (a/c/*), targets -> b."""
    repo = RepoBuilder()
    repo.add_target("top.txt", b"top")
    repo.add_delegation("targets", "a", paths=["a/*", "a/*/*"])
    repo.add_delegation("a", "c", paths=["a/c/*"])
    repo.add_delegation("targets", "b", paths=["b/*"])
    repo.add_target("a/1.txt", b"a1", role="a")
    repo.add_target("a/c/2.txt", b"c2", role="c")
    repo.add_target("b/3.txt", b"b3", role="b")
    repo.publish()
    return repo


def meta(tmp_path, name) -> str:
    return str(tmp_path / "metadata" / name)


# --- healthy repositories --------------------------------------------------------


def test_healthy_binned_repository(tmp_path):
    repo = binned()
    repo.write(tmp_path)
    result = verify(tmp_path, targets=tmp_path / "targets")
    assert result.ok and result.problems == [], result.problems
    assert result.summary["roles"] == 4 + 8
    assert result.summary["targets"] == 40
    keys = result.summary["trusted_root"]["keys"]
    assert [k["keyid"] for k in keys] == repo.root.roles["root"].keyids
    assert all(len(k["fingerprint"]) == 64 for k in keys)
    assert result.verdict.startswith("OK:")
    assert json.loads(result.to_json())["ok"] is True


def test_healthy_delegated_repository(tmp_path):
    delegated().write(tmp_path)
    result = verify(tmp_path, targets=tmp_path / "targets")
    assert result.problems == []
    assert result.summary["roles"] == 4 + 3 and result.summary["targets"] == 4


def test_metadata_folder_itself_and_plain_names(tmp_path):
    repo = binned(consistent_snapshot=False)
    repo.write(tmp_path)
    assert verify(tmp_path / "metadata", targets=tmp_path / "targets").problems == []


def test_meta_hashes_pinned(tmp_path):
    repo = binned(meta_hashes=True)
    repo.write(tmp_path)
    assert verify(tmp_path).problems == []
    with open(meta(tmp_path, "1.bins-3.json"), "ab") as f:
        f.write(b" ")
    assert ("length-mismatch", "bins-3", "1.bins-3.json") in found(verify(tmp_path))


# --- each bad input of the issue, planted ------------------------------------------


def test_missing_bins_and_the_rest_still_checked(tmp_path):
    repo = binned()
    repo.write(tmp_path)
    os.remove(meta(tmp_path, "1.bins-2.json"))
    os.remove(meta(tmp_path, "1.bins-5.json"))
    with open(meta(tmp_path, "1.bins-6.json"), "wb") as f:
        f.write(b"not json at all")
    result = verify(tmp_path)
    assert not result.ok
    assert found(result) == {
        ("missing-metadata", "bins-2", "1.bins-2.json"),
        ("missing-metadata", "bins-5", "1.bins-5.json"),
        ("not-json", "bins-6", "1.bins-6.json"),
    }
    assert result.summary["roles"] == 4 + 5


def test_bin_signed_by_the_wrong_key(tmp_path):
    repo = binned()
    repo.sign("bins-1", signers=[CryptoSigner.generate_ed25519()])
    repo.write(tmp_path)
    result = verify(tmp_path)
    assert found(result) == {("unsigned", "bins-1", "1.bins-1.json")}
    assert "not trusted" in result.problems[0].message


def test_target_in_another_bin(tmp_path):
    repo = binned()
    path = "packages/p3/p3-1.0.tar.gz"
    right = repo.bin_for("targets", path)
    wrong = "bins-0" if right != "bins-0" else "bins-1"
    repo.md[wrong].signed.targets[path] = TargetFile.from_data(path, b"x" * 3, ["sha256"])
    stray = "packages/stray.tar.gz"
    stray_right = repo.bin_for("targets", stray)
    stray_wrong = "bins-7" if stray_right != "bins-7" else "bins-6"
    repo.md[stray_wrong].signed.targets[stray] = TargetFile.from_data(stray, b"s", ["sha256"])
    repo.bump(wrong)
    repo.bump(stray_wrong)
    repo.publish()
    repo.write(tmp_path)
    assert found(verify(tmp_path)) == {
        ("misplaced-target", wrong, path),
        ("duplicate-target", wrong, path),  # also in its own bin
        ("misplaced-target", stray_wrong, stray),
    }


def test_snapshot_names_a_version_not_published(tmp_path):
    repo = binned()
    repo.md["snapshot"].signed.meta["bins-4.json"].version = 7
    repo.bump("snapshot")
    repo.publish()
    repo.write(tmp_path)
    assert found(verify(tmp_path)) == {("missing-metadata", "bins-4", "7.bins-4.json")}


def test_truncated_and_not_json_and_not_metadata(tmp_path):
    repo = binned()
    repo.write(tmp_path)
    data = open(meta(tmp_path, "1.bins-0.json"), "rb").read()
    with open(meta(tmp_path, "1.bins-0.json"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(meta(tmp_path, "1.bins-1.json"), "wb") as f:
        f.write(b"\xff\xfe binary")
    with open(meta(tmp_path, "1.bins-2.json"), "wb") as f:
        f.write(b'{"signed": {"_type": "targets"}, "signatures": []}')
    with open(meta(tmp_path, "1.bins-3.json"), "wb") as f:
        f.write(repo.role_bytes("snapshot"))  # valid metadata, wrong role type
    assert found(verify(tmp_path)) == {
        ("truncated", "bins-0", "1.bins-0.json"),
        ("not-json", "bins-1", "1.bins-1.json"),
        ("invalid-metadata", "bins-2", "1.bins-2.json"),
        ("invalid-metadata", "bins-3", "1.bins-3.json"),
    }


def test_malformed_target_entry_named(tmp_path):
    repo = binned()
    repo.write(tmp_path)
    doc = json.loads(repo.role_bytes("bins-5"))
    path = sorted(doc["signed"]["targets"])[0]
    doc["signed"]["targets"][path]["length"] = -1
    with open(meta(tmp_path, "1.bins-5.json"), "w") as f:
        json.dump(doc, f)
    assert found(verify(tmp_path)) == {("invalid-target", "bins-5", path)}


def test_role_file_of_one_gigabyte_is_not_read(tmp_path):
    repo = binned()
    repo.write(tmp_path)
    with open(meta(tmp_path, "1.bins-3.json"), "r+b") as f:
        f.truncate(1 << 30)  # sparse: 1 GB on paper
    result = verify(tmp_path)
    assert found(result) == {("too-large", "bins-3", "1.bins-3.json")}
    assert result.summary["bytes"] < 1 << 20
    # a smaller configured maximum applies to every unpinned file
    assert found(verify(tmp_path, max_length=100)) == {("too-large", "root", "1.root.json")}


def test_delegation_cycle(tmp_path):
    repo = delegated()
    a_role = repo.md["a"].signed.delegations.roles["c"]
    # c delegates back to a, with a's own keys
    key = repo.signers["a"][0].public_key
    repo.md["c"].signed.delegations = Delegations(
        {key.keyid: key}, roles={"a": DelegatedRole("a", [key.keyid], 1, False, ["a/*"])})
    assert a_role.name == "c"
    repo.bump("c")
    repo.publish()
    repo.write(tmp_path)
    result = verify(tmp_path)
    cycles = [p for p in result.problems if p.kind == "delegation-cycle"]
    assert len(cycles) == 1 and "a -> c -> a" in cycles[0].message
    assert found(result) == {("delegation-cycle", "c", None)}


def test_url_that_times_out(tmp_path):
    repo = binned()
    files = {f"metadata/{k}": v for k, v in repo.metadata_files().items()}
    with HttpRepo(files) as server:
        server.stall["metadata/1.bins-2.json"] = 3
        server.trickle["metadata/1.bins-4.json"] = 3
        server.errors["metadata/1.bins-6.json"] = 500
        result = verify(server.url, timeout=0.5)
    assert found(result) == {
        ("timeout", "bins-2", "1.bins-2.json"),
        ("timeout", "bins-4", "1.bins-4.json"),
        ("unreadable", "bins-6", "1.bins-6.json"),
    }
    assert result.summary["roles"] == 4 + 5


def test_endless_http_file_is_bounded(tmp_path):
    repo = binned()
    files = {f"metadata/{k}": v for k, v in repo.metadata_files().items()}
    with HttpRepo(files) as server:
        server.endless.add("metadata/1.bins-1.json")
        result = verify(server.url + "metadata/", max_length=1 << 16)
        assert server.sent["metadata/1.bins-1.json"] < 1 << 22
    assert found(result) == {("too-large", "bins-1", "1.bins-1.json")}


def test_http_repository_healthy(tmp_path):
    repo = delegated()
    files = {f"metadata/{k}": v for k, v in repo.metadata_files().items()}
    files.update({f"targets/{k}": v for k, v in repo.target_files().items()})
    with HttpRepo(files) as server:
        result = verify(server.url, targets=server.url + "targets/")
    assert result.problems == [] and result.summary["targets"] == 4


def test_unreachable_and_not_in_snapshot(tmp_path):
    repo = delegated()
    del repo.md["snapshot"].signed.meta["b.json"]
    repo.md["snapshot"].signed.meta["ghost.json"] = repo.md["snapshot"].signed.meta["a.json"]
    repo.bump("snapshot")
    repo.publish()
    repo.write(tmp_path)
    result = verify(tmp_path)
    assert found(result) == {("not-in-snapshot", "b", None), ("unreachable-role", "ghost", None)}
    assert [p.severity for p in result.problems if p.kind == "unreachable-role"] == ["warning"]


def test_undelegated_and_duplicate_targets(tmp_path):
    repo = delegated()
    repo.add_target("b/elsewhere.txt", b"x", role="a")  # a may hold a/* only
    repo.add_target("a/1.txt", b"a1", role="c")  # c: a/c/* only, and a has it
    repo.publish()
    repo.write(tmp_path)
    assert found(verify(tmp_path)) == {
        ("undelegated-target", "a", "b/elsewhere.txt"),
        ("duplicate-target", "c", "a/1.txt"),
    }


def test_expiry_and_expiring_soon(tmp_path):
    repo = binned()
    repo.expire("bins-1")
    repo.expire("timestamp", datetime.now(timezone.utc) + timedelta(days=3))
    repo.publish()
    repo.write(tmp_path)
    result = verify(tmp_path)
    assert found(result) == {("expired", "bins-1", "2.bins-1.json")}
    result = verify(tmp_path, expires_within=timedelta(days=7))
    assert ("expires-soon", "timestamp", "timestamp.json") in found(result)
    later = verify(tmp_path, as_of=datetime.now(timezone.utc) + timedelta(days=10))
    assert ("expired", "timestamp", "timestamp.json") in found(later)


def test_root_chain(tmp_path):
    repo = binned()
    repo.rotate_keys("root", 2, threshold=2)
    repo.publish()
    repo.rotate_keys("timestamp")
    repo.publish()
    repo.write(tmp_path)
    result = verify(tmp_path)
    assert result.problems == [] and result.summary["root_version"] == 3
    # the first root as trusted root, given
    first = tmp_path / "metadata" / "1.root.json"
    assert verify(tmp_path, trusted_root=first).problems == []
    assert verify(tmp_path, trusted_root=first.read_bytes()).problems == []
    # a version 4 signed by its own keys only: not a valid rotation
    repo.rotate_keys("root")
    repo.md["root"].signed.version += 1
    bad = repo.sign("root")  # own keys only
    (tmp_path / "metadata" / "4.root.json").write_bytes(bad)
    result = verify(tmp_path)
    assert ("root-chain", "root", "4.root.json") in found(result)
    assert result.summary["root_version"] == 3


def test_trusted_root_of_another_repository(tmp_path):
    binned().write(tmp_path / "one")
    other = binned()
    result = verify(tmp_path / "one", trusted_root=other.root_bytes(1))
    assert not result.ok
    assert ("unsigned", "timestamp", "timestamp.json") in found(result)


def test_unusable_trusted_root(tmp_path):
    binned().write(tmp_path)
    first = open(meta(tmp_path, "1.root.json"), "rb").read()
    assert found(verify(tmp_path, trusted_root=first[:-30])) == {("truncated", "root", "trusted root")}
    assert found(verify(tmp_path, trusted_root=b"{oops")) == {("not-json", "root", "trusted root")}
    os.remove(meta(tmp_path, "1.root.json"))
    assert found(verify(tmp_path)) == {("missing-metadata", "root", "1.root.json")}


# --- previous state -----------------------------------------------------------------


def test_previous_state_followed(tmp_path):
    repo = binned()
    repo.write(tmp_path / "old")
    gone = "packages/p1/p1-1.0.tar.gz"
    changed = "packages/p2/p2-1.0.tar.gz"
    del repo.md[repo.bin_for("targets", gone)].signed.targets[gone]
    repo.bump(repo.bin_for("targets", gone))
    repo.add_target(changed, b"new content", role=repo.bin_for("targets", changed))
    repo.rotate_keys("root")
    repo.publish()
    repo.write(tmp_path / "new")
    result = verify(tmp_path / "new", previous=tmp_path / "old")
    assert result.problems == []
    assert result.changes["removed"] == [gone]
    assert result.changes["changed"] == [changed]
    assert result.summary["trusted_root"]["origin"] == "the previous state's newest root"


def test_previous_state_rollback_and_silent_change(tmp_path):
    repo = binned()
    late = repo.bin_for("targets", "packages/late.tar.gz")
    repo.add_target("packages/late.tar.gz", b"late", role=late)
    repo.publish()
    repo.write(tmp_path / "old")
    old_snapshot = repo.md["snapshot"].signed
    # new state: bins-0 rolled back to version 1 in the snapshot, bins-3
    # re-signed with other content at the same version
    target = "packages/quiet.tar.gz"
    late = repo.bin_for("targets", "packages/late.tar.gz")
    quiet = "bins-3" if late != "bins-3" else "bins-4"
    repo.md[quiet].signed.targets[target] = TargetFile.from_data(target, b"q", ["sha256"])
    repo.sign(quiet)
    rolled = f"{late}.json"
    old_snapshot.meta[rolled].version = 1
    repo.bump("snapshot")
    repo.publish()
    repo.write(tmp_path / "new")
    got = found(verify(tmp_path / "new", previous=tmp_path / "old"))
    assert ("rollback", rolled[:-5], None) in got
    assert ("changed-without-version", quiet, f"1.{quiet}.json") in got
    assert ("misplaced-target", quiet, target) in got or repo.bin_for("targets", target) == quiet


def test_previous_with_invalid_root_rotation(tmp_path):
    repo = binned()
    repo.write(tmp_path / "old")
    repo.rotate_keys("root")
    repo.md["root"].signed.version += 1
    repo.sign("root")  # version 2, signed by the new key only
    repo.write(tmp_path / "new")
    result = verify(tmp_path / "new", previous=tmp_path / "old")
    assert ("root-chain", "root", "2.root.json") in found(result)


def test_previous_unreadable(tmp_path):
    binned().write(tmp_path / "new")
    result = verify(tmp_path / "new", previous=tmp_path / "nothing")
    assert ("invalid-argument", None, str(tmp_path / "nothing")) in found(result)


# --- records and target files ------------------------------------------------------


def _records(repo: RepoBuilder):
    import hashlib

    return [{"path": p, "length": len(d), "blake2b-256": hashlib.blake2b(d, digest_size=32).hexdigest()}
            for p, d in repo.targets_data.items()]


def _with_blake2b(repo: RepoBuilder) -> None:
    """Give every target a blake2b-256 digest too (Warehouse's hash)."""
    for role, md in repo.md.items():
        if md.signed.type == "targets":
            for path in list(md.signed.targets):
                md.signed.targets[path] = TargetFile.from_data(
                    path, repo.targets_data[path], ["sha256", "blake2b-256"])
                repo.bump(role)
    repo.publish()


@pytest.mark.parametrize("form", ["csv", "jsonl"])
def test_records(tmp_path, form):
    repo = binned(count=12)
    _with_blake2b(repo)
    repo.write(tmp_path)
    records = _records(repo)
    assert verify(tmp_path, records=_write_records(tmp_path, records, form)).problems == []
    missing, unrecorded = records[0], records[1]
    records = records[2:]
    records[0] = dict(records[0], length=records[0]["length"] + 1)
    records[1] = dict(records[1], **{"blake2b-256": "0" * 64})
    records.append({"path": "packages/only-recorded.tar.gz", "length": 1, "blake2b-256": "1" * 64})
    records.append({"path": "bad", "length": "x", "blake2b-256": "2"})
    result = verify(tmp_path, records=_write_records(tmp_path, records, form))
    got = {(p.kind, p.path) for p in result.problems}
    assert got == {
        ("unrecorded-target", missing["path"]),
        ("unrecorded-target", unrecorded["path"]),
        ("record-mismatch", records[0]["path"]),
        ("record-mismatch", records[1]["path"]),
        ("record-missing", "packages/only-recorded.tar.gz"),
        ("invalid-record", "line 13" if form == "csv" else "line 12"),
    }
    bins = {p.path: p.role for p in result.problems if p.kind != "invalid-record"}
    assert bins[missing["path"]] == repo.bin_for("targets", missing["path"])
    assert bins["packages/only-recorded.tar.gz"] == repo.bin_for("targets", "packages/only-recorded.tar.gz")


def test_records_outside_bins_and_twice(tmp_path):
    repo = delegated()
    _with_blake2b(repo)
    repo.write(tmp_path)
    records = _records(repo)
    assert verify(tmp_path, records=_write_records(tmp_path, records, "jsonl")).problems == []
    records.append(records[0])
    records[1] = dict(records[1], length=99)
    got = found(verify(tmp_path, records=_write_records(tmp_path, records[1:], "csv")))
    role_of = {"top.txt": "targets", "a/1.txt": "a", "a/c/2.txt": "c", "b/3.txt": "b"}
    first, second = records[0]["path"], records[1]["path"]
    assert got == {("record-mismatch", role_of[second], second)} | (
        set() if first == second else set())
    got = found(verify(tmp_path, records=_write_records(tmp_path, records, "csv")))
    assert ("invalid-record", role_of[first], first) in got


def test_records_against_a_misplaced_target(tmp_path):
    repo = binned(count=12)
    _with_blake2b(repo)
    path = "packages/stray.tar.gz"
    right = repo.bin_for("targets", path)
    wrong = "bins-0" if right != "bins-0" else "bins-1"
    repo.targets_data[path] = b"stray"
    repo.md[wrong].signed.targets[path] = TargetFile.from_data(path, b"stray", ["sha256", "blake2b-256"])
    repo.bump(wrong)
    repo.publish()
    repo.write(tmp_path)
    got = found(verify(tmp_path, records=_write_records(tmp_path, _records(repo), "csv")))
    assert got == {("misplaced-target", wrong, path)}  # the records agree with the bins


def test_unreadable_records(tmp_path):
    binned().write(tmp_path)
    result = verify(tmp_path, records=tmp_path / "nope.csv")
    assert {p.kind for p in result.problems} == {"invalid-record", "unrecorded-target"}
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00")
    assert "invalid-record" in verify(tmp_path, records=tmp_path / "bin.csv").kinds()


def _write_records(tmp_path, records, form):
    path = tmp_path / f"records.{form}"
    with open(path, "w", newline="") as f:
        if form == "csv":
            f.write("path,length,blake2b-256\n")
            for r in records:
                f.write(f"{r['path']},{r['length']},{r['blake2b-256']}\n")
        else:
            for r in records:
                f.write(json.dumps(r) + "\n")
    return path


def test_target_files(tmp_path):
    repo = delegated()
    repo.write(tmp_path)
    names = repo.target_files()
    corrupt = next(n for n in names if n.startswith("a/c/"))
    (tmp_path / "targets" / corrupt).write_bytes(b"XX")
    gone = next(n for n in names if n.startswith("b/"))
    os.remove(tmp_path / "targets" / gone)
    assert found(verify(tmp_path, targets=tmp_path / "targets")) == {
        ("target-mismatch", "c", "a/c/2.txt"),
        ("target-missing", "b", "b/3.txt"),
    }


# --- processes and cores ------------------------------------------------------------


def test_parallel_and_serial_agree(tmp_path, monkeypatch):
    repo = binned(bit_length=6, count=100)
    repo.sign("bins-11", signers=[CryptoSigner.generate_ed25519()])
    repo.write(tmp_path)
    os.remove(meta(tmp_path, "1.bins-20.json"))
    monkeypatch.setattr(audit_module, "PARALLEL_MIN_JOBS", 2)
    parallel = verify(tmp_path, workers=2)
    serial = verify(tmp_path, workers=1)
    assert parallel.problems == serial.problems
    assert found(parallel) == {("unsigned", "bins-11", "1.bins-11.json"),
                               ("missing-metadata", "bins-20", "1.bins-20.json")}
    assert parallel.summary["targets"] == serial.summary["targets"]


def test_pure_core_gives_the_same_report(tmp_path):
    repo = binned()
    repo.sign("bins-1", signers=[CryptoSigner.generate_ed25519()])
    repo.write(tmp_path)
    os.remove(meta(tmp_path, "1.bins-2.json"))
    code = ("import json, sys; from tufc.repository import verify; "
            "r = verify(sys.argv[1]).to_dict(); r['summary'].pop('seconds'); "
            "print(json.dumps(r, sort_keys=True))")
    outputs = []
    for pure in ("0", "1"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUFC_")}
        env.update(TUFC_PURE_PYTHON=pure, PYTHONPATH=os.path.join(ROOT, "python"))
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                             capture_output=True, text=True, check=True).stdout
        outputs.append(json.loads(out))
    assert outputs[0] == outputs[1]
    assert not outputs[0]["ok"] and len(outputs[0]["problems"]) == 2


def test_problem_and_result_forms():
    problem = Problem("misplaced-target", "bins-1", "a/b", "belongs in bins-2")
    assert str(problem) == "error: misplaced-target [bins-1 a/b]: belongs in bins-2"
    result = AuditResult("here", [problem, Problem("expires-soon", "timestamp", None, "soon")])
    assert not result.ok and len(result.errors) == 1 and len(result.warnings) == 1
    assert result.to_dict()["problems"][1]["severity"] == "warning"
    assert result.verdict.startswith("FAIL: here: 1 error(s), 1 warning(s)")


# --- repositories the publishing engine wrote ------------------------------------


def _engine_target(path: str, salt: str = "") -> dict:
    import hashlib

    data = (path + salt).encode()
    return {"path": path, "length": len(data),
            "hashes": {"sha256": hashlib.sha256(data).hexdigest(),
                       "blake2b-256": hashlib.blake2b(data, digest_size=32).hexdigest()}}


@pytest.mark.parametrize("kind", ["pep458", "rstuf"])
def test_engine_published_repository(tmp_path, kind):
    import shutil

    from tufc.repository import Layout, Repository

    repo = Repository.create(tmp_path / "repo", Layout(kind, 16))
    paths = [f"packages/{i:02x}/p{i}-1.0.tar.gz" for i in range(30)]
    repo.add_targets([_engine_target(p) for p in paths])
    repo.publish()
    result = verify(tmp_path / "repo")
    assert result.problems == [] and result.summary["targets"] == 30
    shutil.copytree(tmp_path / "repo" / "metadata", tmp_path / "old")
    repo.remove_targets(paths[:2])
    repo.add_targets([_engine_target(paths[5], salt="v2")])
    repo.publish()
    records = tmp_path / "records.jsonl"
    with open(records, "w") as f:
        for p in paths[2:]:
            t = _engine_target(p, "v2" if p == paths[5] else "")
            f.write(json.dumps({"path": p, "length": t["length"],
                                "blake2b-256": t["hashes"]["blake2b-256"]}) + "\n")
    result = verify(tmp_path / "repo", previous=tmp_path / "old", records=records)
    assert result.problems == []
    assert result.changes["removed"] == sorted(paths[:2])
    assert result.changes["changed"] == [paths[5]]
    # a bin the engine published, gone
    snapshot = max(os.listdir(tmp_path / "repo" / "metadata"), key=lambda n: (
        n.endswith(".snapshot.json"), int(n.split(".")[0]) if n[0].isdigit() else 0))
    pinned = json.loads((tmp_path / "repo" / "metadata" / snapshot).read_bytes())["signed"]["meta"]
    victim = next(n for n in sorted(pinned) if n not in ("targets.json", "bins.json"))
    name = f"{pinned[victim]['version']}.{victim}"
    os.remove(tmp_path / "repo" / "metadata" / name)
    assert found(verify(tmp_path / "repo")) == {("missing-metadata", victim[:-5], name)}


def test_an_unforeseen_failure_is_a_problem(tmp_path, monkeypatch):
    from tufc.repository import roles

    binned().write(tmp_path)
    real = roles._check_one

    def flaky(ctx, job):
        if job.name == "bins-3":
            raise KeyError("boom")
        return real(ctx, job)

    monkeypatch.setattr(roles, "_check_one", flaky)
    result = verify(tmp_path)
    assert found(result) == {("audit-error", "bins-3", None)}
    assert result.summary["roles"] == 4 + 7


def test_target_path_leaving_the_folder_is_not_followed(tmp_path):
    repo = RepoBuilder()
    repo.add_target("a/../../outside.txt", b"x")
    repo.publish()
    repo.write(tmp_path / "repo")
    (tmp_path / "outside.txt").write_bytes(b"x")  # where ../.. would lead
    result = verify(tmp_path / "repo", targets=tmp_path / "repo" / "targets")
    assert found(result) == {("target-missing", "targets", "a/../../outside.txt")}
