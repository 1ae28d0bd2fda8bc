"""The publisher's bin step (tufc.repository.bin_patch): removals that find
nothing are logged, bins in either file form are patched, queued entries
are canonical whatever the database returns, and a failed batch never
renames a file into place after it has failed."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import pytest

from tufc import exceptions
from tufc.repository import bin_patch
from tufc.repository import metadata_io as mio
from tufc.repository.changes import Change
from tufc.signer import Ed25519Signer

from tests.repo_clients import client_view, expected_view
from tests.test_repository_engine import make, metadata, target

TWICE = "removed twice"


def _warnings(caplog) -> list:
    return [r.getMessage() for r in caplog.records
            if r.name == bin_patch.__name__ and r.levelno == logging.WARNING]


def test_a_removal_that_finds_nothing_is_logged(tmp_path, caplog):
    repo = make(tmp_path, bins=2)
    repo.add_targets([target("kept"), target("gone")])
    repo.publish()
    caplog.set_level(logging.WARNING, logger=bin_patch.__name__)
    repo.add_targets([target("fresh")])
    repo.remove_targets(["fresh", "gone"])  # added, then removed: no warning
    repo.remove_targets(["gone", "never/was"], check=False)
    repo.publish()
    assert sorted(_warnings(caplog)) == [f"removal of gone: not in its bin ({TWICE}?)",
                                         f"removal of never/was: not in its bin ({TWICE}?)"]
    assert client_view(repo.folder, ["kept", "gone", "fresh"]) == expected_view(
        {"kept": target("kept")}, ["kept", "gone", "fresh"])


def test_a_bin_written_with_json_escapes_is_patched(tmp_path):
    """A control character in custom makes the engine write the bin with
    JSON escapes (canonical JSON would leave it raw): the next publish
    reads that form too."""
    repo = make(tmp_path, bins=2)
    odd = target("odd", note="line\nbreak\x01")
    repo.add_targets([odd])
    repo.publish()
    name = next(n for n in os.listdir(repo.metadata_dir) if n.startswith("2.bin"))
    raw = open(os.path.join(repo.metadata_dir, name), "rb").read()
    assert b"\\n" in raw and b"\n" not in raw
    same_bin = next(p for p in (f"next/{i}" for i in range(64))
                    if repo.layout.bin_for(p) == repo.layout.bin_for("odd"))
    repo.add_targets([target(same_bin)])
    repo.publish()
    paths = ["odd", same_bin]
    assert client_view(repo.folder, paths) == expected_view(
        {"odd": odd, same_bin: target(same_bin)}, paths)


def test_queued_entries_are_canonicalized(tmp_path):
    repo = make(tmp_path, bins=2)
    entry = b'{ "length": 3, "hashes": {"sha256": "' + b"ab" * 32 + b'"}, "custom": {"b": 1, "a": [2]} }'
    repo.store.enqueue([Change("add", "by/hand", entry)])
    repo.publish()
    name = next(n for n in os.listdir(repo.metadata_dir) if n.startswith("2.bin"))
    raw = open(os.path.join(repo.metadata_dir, name), "rb").read()
    assert b'"by/hand":{"custom":{"a":[2],"b":1},"hashes":{"sha256":"' in raw
    assert metadata(repo, name)["signed"]["targets"]["by/hand"]["length"] == 3


def test_queued_hashes_out_of_order_are_sorted(tmp_path):
    """Hashes and length only, but not in canonical order: signed as they
    came, a client that encodes the role again gets other bytes and refuses
    the bin, so the entry must be encoded again like any other."""
    repo = make(tmp_path, bins=2)
    sha256, blake = "ab" * 32, "cd" * 32
    entry = b'{"hashes":{"sha256":"%s","blake2b-256":"%s"},"length":3}' % (sha256.encode(), blake.encode())
    repo.store.enqueue([Change("add", "by/hand", entry)])
    repo.publish()
    name = next(n for n in os.listdir(repo.metadata_dir) if n.startswith("2.bin"))
    raw = open(os.path.join(repo.metadata_dir, name), "rb").read()
    assert b'"by/hand":{"hashes":{"blake2b-256":"%s","sha256":"%s"},"length":3}' % (
        blake.encode(), sha256.encode()) in raw
    assert client_view(repo.folder, ["by/hand"]) == expected_view(
        {"by/hand": {"length": 3, "hashes": {"sha256": sha256, "blake2b-256": blake}}}, ["by/hand"])


@pytest.mark.parametrize("entry", [b"not json", b"[1, 2]", b'"text"'])
def test_a_queued_entry_that_is_no_object_publishes_nothing(tmp_path, entry):
    repo = make(tmp_path, bins=2)
    before = sorted(os.listdir(repo.metadata_dir))
    repo.store.enqueue([Change("add", "by/hand", entry)])
    with pytest.raises(exceptions.PublishError, match="by/hand"):
        repo.publish()
    assert sorted(os.listdir(repo.metadata_dir)) == before


class _Signer:
    """Fails the first payload it is given; delays every other."""

    def __init__(self, delay: float):
        self.real = Ed25519Signer.generate()
        self.public_key = self.real.public_key
        self.delay = delay
        self.calls = 0
        self.lock = threading.Lock()

    def sign(self, data):
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            raise RuntimeError("HSM unavailable")
        time.sleep(self.delay)
        return self.real.sign(data)


def _bins(tmp_path, count: int) -> tuple:
    """A metadata folder with ``count`` engine bins at version 1."""
    folder = tmp_path / "metadata"
    folder.mkdir()
    signer = Ed25519Signer.generate()
    jobs = []
    for i in range(count):
        signed = json.dumps({"_type": "targets", "expires": "2030-01-01T00:00:00Z",
                             "spec_version": "1.0.31", "targets": {}, "version": 1},
                            separators=(",", ":"), sort_keys=True).encode()
        sig = {"keyid": signer.public_key.keyid, "sig": signer.sign(signed)}
        mio.write(str(folder), f"1.bin-{i}.json", mio.envelope_bytes([sig], signed))
        jobs.append((f"bin-{i}", 1, [Change("add", f"p/{i}", b'{"hashes":{"sha256":"ab"},"length":1}')]))
    return folder, jobs


@pytest.mark.parametrize("how", ["fails", "times out"])
def test_a_failed_batch_renames_nothing_afterwards(tmp_path, how):
    folder, jobs = _bins(tmp_path, 8)
    signer = _Signer(delay=0.3)
    if how == "times out":
        signer.calls = 1  # nothing fails: every payload is late
    with pytest.raises(exceptions.SigningError):
        bin_patch.write_next_versions(str(folder), jobs, "2031-01-01T00:00:00Z", [signer],
                                      workers=2, timeout=0.1 if how == "times out" else 60)
    time.sleep(1.0)  # the tasks still running when it raised have finished
    assert sorted(os.listdir(folder)) == [f"1.bin-{i}.json" for i in range(8)]


def test_a_batch_writes_every_bin(tmp_path):
    folder, jobs = _bins(tmp_path, 9)
    versions = bin_patch.write_next_versions(str(folder), jobs, "2031-01-01T00:00:00Z",
                                             [Ed25519Signer.generate()], workers=2)
    assert versions == {f"bin-{i}": 2 for i in range(9)}
    for i in range(9):
        signed = json.loads((folder / f"2.bin-{i}.json").read_bytes())["signed"]
        assert signed["targets"] == {f"p/{i}": {"hashes": {"sha256": "ab"}, "length": 1}}
        assert (signed["version"], signed["expires"]) == (2, "2031-01-01T00:00:00Z")
