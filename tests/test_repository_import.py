"""Bulk import (``Repository.import_targets``): every bin rebuilt from a
stream of records, the result accepted by both clients, the bins' bytes
canonical JSON as securesystemslib encodes it, and bad input refused with
nothing published."""

from __future__ import annotations

import json
import os

import pytest

from tufc import exceptions
from tufc.repository import Layout, Repository
from tufc.repository.importer import read_records

from tests.repo_clients import client_view, expected_view
from tests.test_repository_engine import Clock, files, target


def make(tmp_path, bins=32, kind="pep458") -> Repository:
    return Repository.create(tmp_path / "repo", Layout(kind, bins), clock=Clock())


@pytest.mark.parametrize("kind", ["pep458", "rstuf"])
def test_import_then_clients_resolve_everything(tmp_path, kind):
    repo = make(tmp_path, kind=kind)
    repo.add_targets([target("old/kept"), target("old/replaced")])
    repo.publish()
    records = [target(f"packages/{i % 13}/p{i}-1.0.tar.gz", custom={"n": i} if i % 5 == 0 else None)
               for i in range(2000)]
    for r in records:
        if r.get("custom") is None:
            r.pop("custom", None)
    records.append(target("old/replaced", salt="new"))
    result = repo.import_targets(iter(records))  # a generator: streamed
    assert result.changes == 2001 and result.bins == 32 and result.snapshot_version == 3
    state = {r["path"]: r for r in records}
    state["old/kept"] = target("old/kept")
    paths = ["old/kept", "old/replaced", "missing/path"] + [r["path"] for r in records[::97]]
    assert client_view(repo.folder, paths) == expected_view(state, paths)
    # publishing goes on from the imported versions
    repo.add_targets([target("after/import")])
    assert repo.publish().snapshot_version == 4
    assert client_view(repo.folder, ["after/import"]) == expected_view(
        {"after/import": target("after/import")}, ["after/import"])


def test_imported_bins_are_canonical(tmp_path):
    from securesystemslib.formats import encode_canonical

    repo = make(tmp_path, bins=4)
    records = [target(f'odd/"quote"/ü-{i}') for i in range(50)] + [target("a/b", custom={"z": "\n"})]
    repo.import_targets(records)
    for name, data in files(repo).items():
        obj = json.loads(data)
        canonical = encode_canonical(obj["signed"]).encode("utf-8")
        if b"\n" not in canonical:
            assert data == encode_canonical(obj).encode("utf-8"), name
    view = client_view(repo.folder, ["a/b", 'odd/"quote"/ü-7'])
    assert view["a/b"] is not None and view['odd/"quote"/ü-7'] is not None


def test_one_and_two_workers_write_the_same_bytes(tmp_path):
    outputs = []
    for workers in (1, 2):
        repo = Repository.create(tmp_path / f"w{workers}", Layout("pep458", 16), clock=Clock(),
                                 signer_uris=None)
        outputs.append(repo)
    # the same keys for both: copy the first repository before importing
    import shutil

    shutil.rmtree(outputs[1].folder)
    shutil.copytree(outputs[0].folder, outputs[1].folder)
    records = [target(f"x/{i}") for i in range(500)]
    result = {}
    for workers, repo in zip((1, 2), outputs):
        repo = Repository(repo.folder, clock=outputs[0].clock)
        repo.import_targets(records, workers=workers)
        result[workers] = files(repo)
    assert result[1] == result[2]


@pytest.mark.parametrize("bad", [
    target("dup/path"),                       # the same path twice
    dict(target("neg"), length=-5),
    dict(target("alg"), hashes={"md5": "0" * 32}),
    dict(target("x"), path="../escape"),
    {"path": "no/hashes", "length": 1},
])
def test_bad_records_publish_nothing(tmp_path, bad):
    repo = make(tmp_path)
    before = files(repo)
    with pytest.raises(exceptions.InvalidChangeError):
        repo.import_targets([target("dup/path")] + [target(f"ok/{i}") for i in range(100)] + [bad])
    assert files(repo)["timestamp.json"] == before["timestamp.json"]
    assert not [n for n in os.listdir(repo.folder) if n.startswith("tufc-import-")]
    client_view(repo.folder, ["ok/1"], python_tuf=False)


def test_csv_and_jsonl_records(tmp_path):
    records = [target(f"c/{i}") for i in range(5)]
    csv_path = tmp_path / "files.csv"
    lines = ["path,length,sha256,blake2b-256,custom"]
    for r in records:
        lines.append(f'{r["path"]},{r["length"]},{r["hashes"]["sha256"]},{r["hashes"]["blake2b-256"]},')
    lines[-1] = lines[-1] + '"{""yanked"": true}"'
    csv_path.write_text("\n".join(lines) + "\n")
    read = list(read_records(str(csv_path)))
    assert [r["path"] for r in read] == [r["path"] for r in records]
    assert read[0]["hashes"] == records[0]["hashes"] and read[-1]["custom"] == {"yanked": True}

    jsonl = tmp_path / "files.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert list(read_records(str(jsonl))) == records

    repo = make(tmp_path)
    repo.import_targets(read_records(str(csv_path)))
    assert repo.get_target("c/4")["custom"] == {"yanked": True}


@pytest.mark.parametrize("text,match", [
    ("path,sha256\na,00\n", "path and length"),
    ("path,length,sha256\na,xx,00\n", "not an integer"),
    ("path,length,sha256\na,1\n", "columns"),
])
def test_bad_csv(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(exceptions.InvalidChangeError, match=match):
        list(read_records(str(path)))
    with pytest.raises(exceptions.StorageError):
        list(read_records(str(tmp_path / "missing.csv")))


# --- pass 1 split across processes by byte ranges of the records' file ---------------

def _csv_text(count: int, tricky_at: int | None = None) -> str:
    lines = ["path,length,sha256,blake2b-256,custom"]
    for i in range(count):
        r = target(f"packages/{i % 7}/ü-p{i}-1.0.tar.gz")
        custom = ""
        if i == tricky_at:  # a quoted field over many lines, quotes and commas inside
            value = json.dumps({f"k{k}": f'say "hi", {k}' for k in range(400)}, indent=1)
            custom = '"' + value.replace('"', '""') + '"'
        elif i % 9 == 0:
            custom = '"{""n"": %d, ""t"": ""x,y""}"' % i
        lines.append(f'{r["path"]},{r["length"]},{r["hashes"]["sha256"]},{r["hashes"]["blake2b-256"]},{custom}')
    return "\n".join(lines) + "\n"


def _twin_repositories(tmp_path):
    import shutil

    first = Repository.create(tmp_path / "one", Layout("pep458", 16), clock=Clock())
    shutil.copytree(first.folder, tmp_path / "two")
    return first.folder, str(tmp_path / "two")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_split_pass1_writes_the_same_bytes(tmp_path, monkeypatch, suffix):
    from tufc.repository import importer

    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    path = tmp_path / f"files{suffix}"
    if suffix == ".csv":
        path.write_text(_csv_text(1500, tricky_at=760), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(target(f"j/ü{i}")) + ("\n\n" if i % 50 == 0 else "\n")
                                for i in range(1500)), encoding="utf-8")
    split = importer._split_file(str(path), 2)
    assert split is not None and len(split[1]) == 2  # the parallel path is taken
    outputs = []
    for workers, folder in zip((1, 2), _twin_repositories(tmp_path)):
        repo = Repository(folder, clock=Clock())
        result = repo.import_targets(read_records(str(path)), workers=workers)
        assert result.changes == 1500
        outputs.append(files(repo))
    assert outputs[0] == outputs[1]
    view = client_view(folder, ["packages/3/ü-p759-1.0.tar.gz" if suffix == ".csv" else "j/ü7"])
    assert all(v is not None for v in view.values())


def test_split_points_are_record_starts(tmp_path):
    import csv

    from tufc.repository import importer

    path = tmp_path / "files.csv"
    text = _csv_text(400, tricky_at=200)
    path.write_text(text, encoding="utf-8")
    full = list(csv.reader(open(path, encoding="utf-8", newline="")))[1:]
    for parts in (2, 3, 5, 8):
        columns, ranges = importer._split_file(str(path), parts)
        assert columns[0] == 5
        rows = []
        for start, end in ranges:
            rows += list(csv.reader(importer._range_lines(str(path), start, end)))
        assert rows == full, parts
    # the middle of the file is inside the 400-line field: no split lands in it
    columns, ranges = importer._split_file(str(path), 2)
    data = path.read_bytes()
    assert data[:ranges[1][0]].count(b'"') % 2 == 0


@pytest.mark.parametrize("where", ["first", "second", "both"])
def test_split_pass1_reports_the_first_bad_row_as_one_reader(tmp_path, monkeypatch, where):
    from tufc.repository import importer

    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    lines = _csv_text(1000).splitlines()
    if where in ("first", "both"):
        lines[100] = lines[100].replace(",", ",x", 1)  # length not an integer
    if where in ("second", "both"):
        lines[900] = lines[900] + ",extra"
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(exceptions.InvalidChangeError) as one_reader:
        list(read_records(str(path)))
    repo = make(tmp_path)
    before = files(repo)
    with pytest.raises(exceptions.InvalidChangeError) as split:
        repo.import_targets(read_records(str(path)), workers=2)
    assert str(split.value) == str(one_reader.value)
    assert (":101:" if where != "second" else ":901:") in str(split.value)
    assert files(repo)["timestamp.json"] == before["timestamp.json"]

    jsonl = tmp_path / "bad.jsonl"
    rows = [json.dumps(target(f"j/{i}")) for i in range(1000)]
    rows[850] = "{not json"
    jsonl.write_text("\n".join(rows) + "\n")
    with pytest.raises(exceptions.InvalidChangeError) as one_reader:
        list(read_records(str(jsonl)))
    with pytest.raises(exceptions.InvalidChangeError) as split:
        repo.import_targets(read_records(str(jsonl)), workers=2)
    assert str(split.value) == str(one_reader.value) and ":851:" in str(split.value)


def test_split_pass1_duplicate_across_ranges(tmp_path, monkeypatch):
    from tufc.repository import importer

    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    lines = _csv_text(1000).splitlines()
    lines[950] = lines[3]  # the same path in both halves
    path = tmp_path / "dup.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    repo = make(tmp_path)
    with pytest.raises(exceptions.InvalidChangeError, match="twice"):
        repo.import_targets(read_records(str(path)), workers=2)


def _worker_that_dies(group):
    os._exit(3)  # as a worker killed by the kernel would: no exception, no result


@pytest.mark.parametrize("stage", ["_build_group", "_spill_range"])
def test_a_worker_that_dies_fails_the_import_and_publishes_nothing(tmp_path, monkeypatch, stage):
    from tufc.repository import importer

    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(importer, stage, _worker_that_dies)
    path = tmp_path / "records.csv"
    path.write_text(_csv_text(1000), encoding="utf-8")
    repo = make(tmp_path)
    before = files(repo)
    with pytest.raises(exceptions.PublishError, match="worker process died"):
        repo.import_targets(read_records(str(path)), workers=2)
    assert files(repo) == before
    assert repo.status()["snapshot_version"] == 1
